/* Operator family: pool. */
#include "ops/op.h"

const ifd_op_def ifd_ops_pool[] = {
    {0},
};
