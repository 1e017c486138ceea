/* Drift: how the data a model version sees in production compares with a baseline recorded from
 * sample inputs before deployment.
 *
 * For every model input and output the server keeps streaming summaries (count, mean, std, min,
 * max, NaN and infinity counts) and a histogram of recent values over the baseline's fixed bins
 * (its deciles); outputs of classifiers ([batch, classes] with 2..1024 classes) also keep a
 * histogram of the predicted class (argmax). The drift score of a tensor is the population
 * stability index (PSI) between the baseline's bin proportions and the recent ones:
 *     PSI = sum_i (q_i - p_i) * ln(q_i / p_i)      (p baseline, q recent, both floored at 1e-4)
 * Rules of thumb: < 0.1 no change, 0.1..0.25 moderate, > 0.25 a shift. "Recent" is an
 * exponentially decayed count: once the window's element count passes `window`, every count is
 * halved, so the score follows the last ~window..2*window sampled values.
 *
 * The baseline is a JSON file beside the model version (DIR/<model>/<version>/baseline.json),
 * written by `inferd baseline MODEL.onnx --data DIR` (ifd_drift_baseline_build). Each request
 * samples at most IFD_DRIFT_SAMPLE elements of each tensor (evenly strided), so watching costs
 * the same for large and small tensors. Thread-safe: observe from any worker thread. */
#ifndef IFD_SERVE_DRIFT_H
#define IFD_SERVE_DRIFT_H

#include "serve/serve.h"

#define IFD_DRIFT_BINS 10
#define IFD_DRIFT_MAX_CLASSES 1024
#define IFD_DRIFT_SAMPLE 4096

typedef struct ifd_drift ifd_drift;

typedef struct ifd_drift_summary {
    const char *name;
    bool is_output;
    int64_t count;               /* sampled elements since load */
    double mean, std, min, max;  /* over finite values */
    int64_t nan_count, inf_count;
    bool has_baseline;
    double score;                /* PSI of values (NaN: no baseline or no data yet) */
    int n_classes;               /* > 0: a classifier output */
    double class_score;          /* PSI of predicted classes (NaN when none) */
} ifd_drift_summary;

/* Drift state for tensors named names[0..n) (inputs first, is_output[i] says which); rank2[i]
 * is the tensor's declared dim 1 when its rank is 2 (else 0), used to spot classifiers.
 * baseline_json (may be NULL: summaries only) is the baseline file's text; a baseline that does
 * not parse or does not match the tensors is an error naming the problem. window: the decay
 * window in sampled elements (0: 20000). */
ifd_status ifd_drift_create(size_t n, const char *const *names, const bool *is_output,
                            const int64_t *rank2, const char *baseline_json, size_t baseline_len,
                            int64_t window, ifd_drift **out);
void ifd_drift_free(ifd_drift *d);
size_t ifd_drift_count(const ifd_drift *d);
/* Record tensor i of one request (any numeric dtype). */
void ifd_drift_observe(ifd_drift *d, size_t i, const ifd_tensor *t);
void ifd_drift_summarize(ifd_drift *d, size_t i, ifd_drift_summary *out);
/* The larger of the value and class scores of tensor i, NaN when neither exists. */
double ifd_drift_score(ifd_drift *d, size_t i);
/* {"tensors":[{"name","kind","count","mean","std","min","max","nan","inf","score",
 *  "class_score"}]} for the stats endpoint; NaN as null. */
void ifd_drift_render_json(ifd_drift *d, ifd_sbuf *b);

/* Build a baseline from sample batches: batches[b][i] is tensor i of batch b (inputs and
 * outputs of one model run). Appends the baseline JSON to out. */
ifd_status ifd_drift_baseline_build(size_t n, const char *const *names, const bool *is_output,
                                    const int64_t *rank2, size_t n_batches,
                                    const ifd_tensor *const *const *batches, ifd_sbuf *out);

#endif
