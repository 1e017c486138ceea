/* libFuzzer target: the KServe v2 JSON infer request decoder (serve/kserve_json.c), and the
 * response encoder on whatever it decoded. */
#include "serve/serve.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[512];
    ifd_kserve_request req;
    /* a small tensor cap keeps the fuzzer's memory flat */
    if (ifd_kserve_request_parse((const char *)data, size, 1 << 20, &req, err, sizeof err) == 0) {
        ifd_sbuf b = {.limit = 16u << 20};
        for (size_t i = 0; i < req.n_inputs; i++)
            ifd_kserve_encode_tensor(&b, req.inputs[i].name, req.inputs[i].tensor);
        ifd_sbuf_free(&b);
    }
    ifd_kserve_request_free(&req);
    return 0;
}
