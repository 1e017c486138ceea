/* Operator family: matmul. */
#include "ops/op.h"

const ifd_op_def ifd_ops_matmul[] = {
    {0},
};
