/* libFuzzer target: the ONNX model loader and session compiler on arbitrary bytes.
 * Any input must give IFD_OK or a clean error: no crash, leak or sanitizer report. */
#include "inferd/inferd.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ifd_model *model = NULL;
    /* mutated attributes can ask for huge tensors (pads of 10^5): that must be an error */
    ifd_memory_set_limit((size_t)1 << 30);
    ifd_session *session = NULL;
    if (ifd_model_load_memory(data, size, NULL, &model) != IFD_OK) return 0;
    ifd_session_options o;
    ifd_session_options_init(&o);
    o.num_threads = 1;
    o.plan_at_load = 0; /* the loader and compiler are under test, not inference time */
    if (ifd_session_create(model, &o, &session) == IFD_OK) ifd_session_free(session);
    ifd_model_free(model);
    return 0;
}
