/* Operator family: rnn. */
#include "ops/op.h"

const ifd_op_def ifd_ops_rnn[] = {
    {0},
};
