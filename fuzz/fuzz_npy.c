/* libFuzzer target: the .npy reader. */
#include "inferd/inferd.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ifd_tensor *t = NULL;
    if (ifd_npy_read_memory(data, size, &t) == IFD_OK) ifd_tensor_free(t);
    return 0;
}
