/* Operator family: activation. */
#include "ops/op.h"

const ifd_op_def ifd_ops_activation[] = {
    {0},
};
