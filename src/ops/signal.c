/* Operator family: signal. */
#include "ops/op.h"

const ifd_op_def ifd_ops_signal[] = {
    {0},
};
