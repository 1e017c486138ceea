/* libFuzzer target: TensorProto decoding (test data, initializers). */
#include "inferd/inferd.h"
#include "onnx/model.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ifd_tensor *t = NULL;
    if (ifd_onnx_tensor_from_bytes(data, size, NULL, &t) == IFD_OK) ifd_tensor_free(t);
    return 0;
}
