/* Operator family: attention. */
#include "ops/op.h"

const ifd_op_def ifd_ops_attention[] = {
    {0},
};
