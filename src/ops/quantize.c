/* Operator family: quantize. */
#include "ops/op.h"

const ifd_op_def ifd_ops_quantize[] = {
    {0},
};
