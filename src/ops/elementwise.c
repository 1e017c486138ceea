/* Operator family: elementwise. */
#include "ops/op.h"

const ifd_op_def ifd_ops_elementwise[] = {
    {0},
};
