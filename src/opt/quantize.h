/* opt/quantize: float ONNX model -> int8 ONNX model in the standard operator formats that
 * ONNX Runtime also runs (dynamic: DynamicQuantizeLinear + MatMulInteger/ConvInteger; static:
 * QuantizeLinear/DequantizeLinear pairs). The formats are described in docs/QUANTIZE.md. */
#ifndef IFD_OPT_QUANTIZE_H
#define IFD_OPT_QUANTIZE_H

#include "inferd/inferd.h"

#include <stdbool.h>

typedef enum ifd_quantize_mode { IFD_QUANTIZE_DYNAMIC, IFD_QUANTIZE_STATIC } ifd_quantize_mode;

typedef enum ifd_calibration_method {
    IFD_CALIBRATE_MINMAX,     /* observed min and max */
    IFD_CALIBRATE_PERCENTILE, /* symmetric: the given percentile of |x| clips the range */
    IFD_CALIBRATE_ENTROPY     /* the |x| threshold minimising KL divergence (2048 bins) */
} ifd_calibration_method;

typedef struct ifd_quantize_options {
    ifd_quantize_mode mode;          /* default dynamic */
    bool per_channel;                /* default true: one weight scale per output channel */
    ifd_calibration_method method;   /* static only; default minmax */
    double percentile;               /* for IFD_CALIBRATE_PERCENTILE; default 99.99 */
    const char *calibration_dir;     /* required for static and for report */
    size_t n_exclude;                /* node names kept float */
    const char *const *exclude;
    size_t n_nodes;                  /* when > 0: quantize only these; each must be quantizable */
    const char *const *nodes;
    bool include_first_last;         /* static: also the first and last quantizable layers */
    bool report;                     /* measure each quantized node's error on the calibration data */
    int num_threads;                 /* for calibration and report runs; <= 0: all cores */
} ifd_quantize_options;

void ifd_quantize_options_init(ifd_quantize_options *o);

/* One MatMul/Gemm/Conv/Gather node of the input model. */
typedef struct ifd_quantize_node {
    char *name;
    char *op_type;
    bool quantized;
    char *reason;          /* why it stays float (NULL when quantized) */
    bool has_error;        /* report: error of this node's output on the calibration data */
    double max_abs_error;  /* max |quantized - float| */
    double rel_error;      /* ||quantized - float||_2 / ||float||_2 */
} ifd_quantize_node;

typedef struct ifd_quantize_output {
    char *name;
    double cosine;         /* cosine similarity to the float model over all batches */
    double max_abs_error;
} ifd_quantize_output;

typedef struct ifd_quantize_result {
    size_t n_nodes;
    ifd_quantize_node *nodes;
    size_t n_quantized;
    size_t n_outputs; /* report only */
    ifd_quantize_output *outputs;
    int64_t opset_in, opset_out;
    size_t bytes_in, bytes_out;
    size_t calibration_batches;
} ifd_quantize_result;

/* Quantize in_path into out_path (written as OUT.tmp then renamed; on any failure no file is
 * left at out_path nor at OUT.tmp). *result (may be NULL) receives what was done, also on
 * some failures (then it may be partial); free it with ifd_quantize_result_free. */
ifd_status ifd_quantize_file(const char *in_path, const char *out_path,
                             const ifd_quantize_options *options, ifd_quantize_result **result);
void ifd_quantize_result_free(ifd_quantize_result *r);

#endif
