/* Operator family: normalization. */
#include "ops/op.h"

const ifd_op_def ifd_ops_normalization[] = {
    {0},
};
