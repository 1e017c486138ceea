/* serve/metrics: Prometheus metrics and the dashboard's in-process history.
 *
 * Two layers in one module:
 *
 *   ifd_metrics_*          a generic registry: counter, gauge and histogram families with fixed
 *                          label names, series created on demand and removed explicitly, gauges
 *                          computed at scrape time, rendering to the Prometheus text format 0.0.4.
 *   ifd_serve_metrics_*    inferd's own metric set (the names in docs/METRICS.md) on top of it:
 *                          one bundle of series per model version, the server gauges, and a
 *                          sampler thread keeping one hour of per-second history for the
 *                          dashboard, rendered as JSON.
 *
 * How the server uses it (all of it also works with sm == NULL or vm == NULL: every call is a
 * no-op then, so "metrics off" is one pointer):
 *
 *     ifd_serve_metrics *sm;
 *     ifd_serve_metrics_create(&sm);
 *     ifd_serve_metrics_start_sampler(sm, 1000);               // history for the dashboard
 *
 *     // a version appears in the repository (before its workers start):
 *     ifd_version_metrics *vm;
 *     ifd_serve_metrics_version_add(sm, "resnet", 3, &vm);
 *     ifd_version_metrics_loaded(vm, true, load_seconds);      // or ..._load_failure(sm, name)
 *
 *     // hot path, any thread, lock-free and allocation-free:
 *     ifd_version_metrics_pending(vm, +1);   ... ifd_version_metrics_pending(vm, -1);
 *     ifd_version_metrics_batch(vm, 8);                        // one session run of 8 elements
 *     ifd_request_timing t = {.request_s = .., .queue_s = .., .input_s = .., .compute_s = ..,
 *                             .output_s = ..};
 *     ifd_version_metrics_request(vm, IFD_OUTCOME_SUCCESS, &t);
 *     ifd_serve_metrics_http_request(sm, 200);
 *     ifd_serve_metrics_connections_add(sm, +1);
 *
 *     // GET /metrics and GET /api/stats?since=<unix ms>:
 *     ifd_sbuf b = {.limit = 64 << 20};
 *     ifd_serve_metrics_render(sm, &b);                  // Content-Type: IFD_METRICS_CONTENT_TYPE
 *     ifd_serve_metrics_history_json(sm, since_ms, &b);  // application/json
 *
 *     // the version goes away (after its workers are joined: no call on vm after this):
 *     ifd_serve_metrics_version_remove(sm, vm);
 *     // the model leaves the repository: its load-failure counter (and any version left)
 *     ifd_serve_metrics_model_remove(sm, "resnet");
 *
 *     ifd_serve_metrics_free(sm);                        // stops the sampler first
 *
 * Lifetime and threads (the rules every caller must keep):
 *   - A series handle (ifd_metric_series *) or a version bundle (ifd_version_metrics *) is valid
 *     from its creation until the call that removes it. Removal frees it at once. The caller must
 *     make sure no thread is still inside, or will later enter, an update call on that handle when
 *     it calls remove (for the server: join or drain the version's workers first, and remove on
 *     the thread that owns the version's lifetime). Rendering and history sampling running at the
 *     same time as removal are safe: they run under locks that removal also takes.
 *   - Updates (counter add, gauge set/add, histogram observe, the ifd_version_metrics_* calls) are
 *     lock-free (C11 atomics) and never allocate; any number of threads may update the same series
 *     while another renders. A render sees each counter atomically but not all of them at one
 *     instant (a histogram's _sum may lag its buckets by the observations in flight); _count is
 *     always the +Inf bucket.
 *   - Creating and removing series takes a mutex: do it at load/unload time, not per request.
 *   - Label values are copied; the registry owns all its memory; ifd_metrics_free frees every
 *     family and series.
 */
#ifndef IFD_SERVE_METRICS_H
#define IFD_SERVE_METRICS_H

#include "serve/serve.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IFD_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define IFD_METRICS_MAX_LABELS 8        /* label names per family */
#define IFD_METRICS_MAX_BUCKETS 64      /* finite bucket bounds per histogram family */
#define IFD_METRICS_MAX_LABEL_VALUE 1024 /* bytes in one label value */

/* ---- the generic registry ------------------------------------------------------------------ */

typedef struct ifd_metrics ifd_metrics;
typedef struct ifd_metric_family ifd_metric_family;
typedef struct ifd_metric_series ifd_metric_series;

typedef enum ifd_metric_type {
    IFD_METRIC_COUNTER,   /* monotonic; the name must end in _total */
    IFD_METRIC_GAUGE,
    IFD_METRIC_HISTOGRAM, /* rendered as name_bucket{le=..}, name_sum, name_count */
} ifd_metric_type;

/* max_series caps the series of all families together (0: 100000), so a bug that labels by
 * request data cannot grow memory without bound (RELIABILITY 26): creation past it fails with
 * IFD_ERR_TOO_BIG. */
ifd_status ifd_metrics_create(size_t max_series, ifd_metrics **out);
void ifd_metrics_free(ifd_metrics *r); /* NULL: no-op */

/* Register a family. name: [a-zA-Z_:][a-zA-Z0-9_:]*, unique in the registry; labels:
 * [a-zA-Z_][a-zA-Z0-9_]*, not "__..."; "le" is refused (histograms add it). bounds (histograms
 * only, else n_bounds 0): strictly increasing finite upper bounds; +Inf is implied. help is
 * copied. The family lives until ifd_metrics_free. */
ifd_status ifd_metrics_family_create(ifd_metrics *r, ifd_metric_type type, const char *name,
                                     const char *help, size_t n_labels,
                                     const char *const *label_names, size_t n_bounds,
                                     const double *bounds, ifd_metric_family **out);
/* The family registered under name, or NULL. */
ifd_metric_family *ifd_metrics_family_find(ifd_metrics *r, const char *name);

/* The series for these label values (one per label name, in the family's order; valid UTF-8, at
 * most IFD_METRICS_MAX_LABEL_VALUE bytes), created at zero when it does not exist yet. Calling it
 * again with the same values returns the same handle (there is one series, not one per caller). */
ifd_status ifd_metric_series_get(ifd_metric_family *f, const char *const *label_values,
                                 ifd_metric_series **out);
/* Unlink and free one series (NULL: no-op). See the lifetime rules above. */
void ifd_metric_series_remove(ifd_metric_series *s);
/* Remove, from every family that has all these label names, each series whose values equal
 * the given ones (e.g. {"model","version"} = {"resnet","3"}). Returns how many were removed. */
size_t ifd_metrics_remove_matching(ifd_metrics *r, size_t n, const char *const *label_names,
                                   const char *const *label_values);
/* Series currently registered, all families together. */
size_t ifd_metrics_series_count(ifd_metrics *r);

/* A label-less gauge or counter whose value fn(arg) computes at scrape time (process CPU,
 * resident memory...). fn runs on the rendering thread with the registry lock held: it must
 * be quick and must not call back into the registry. */
typedef double (*ifd_metric_value_fn)(void *arg);
ifd_status ifd_metrics_callback_create(ifd_metrics *r, ifd_metric_type type, const char *name,
                                       const char *help, ifd_metric_value_fn fn, void *arg);

/* Hot path: lock-free, no allocation; s NULL is a no-op. The type must match the family's. */
void ifd_counter_add(ifd_metric_series *s, uint64_t n);
void ifd_gauge_set(ifd_metric_series *s, double v);
void ifd_gauge_add(ifd_metric_series *s, double v);
/* v lands in the first bucket whose bound is >= v; NaN is ignored (it would poison _sum). */
void ifd_histogram_observe(ifd_metric_series *s, double v);

/* Reading back (tests, the history sampler): a counter's count, a gauge's value; for a
 * histogram, its observation count. */
double ifd_metric_series_value(const ifd_metric_series *s);
/* A histogram's state: counts[0..n_bounds] per bucket, NOT cumulative (the last is +Inf);
 * returns the number of buckets written (at most max), *sum the sum of observations. */
size_t ifd_histogram_read(const ifd_metric_series *s, uint64_t *counts, size_t max, double *sum);

/* Append the whole registry in the text exposition format 0.0.4: families in registration
 * order, each with # HELP and # TYPE once (families without series are left out), series in
 * creation order. On out-of-memory or the buffer's limit b->failed is set. */
void ifd_metrics_render(ifd_metrics *r, ifd_sbuf *b);

/* Write v as Prometheus parses it: shortest text that reads back as the same double,
 * "+Inf", "-Inf", "NaN". buf needs 32 bytes. Returns buf. */
const char *ifd_metrics_format_double(double v, char *buf, size_t size);

/* Interpolated quantile q (0..1) of a histogram given its per-bucket (non-cumulative) counts and
 * finite bounds, as Prometheus's histogram_quantile does: linear inside the bucket, the first
 * bucket starting at 0 (or at its bound when that is negative), the +Inf bucket answering the
 * highest finite bound. NaN when the counts sum to 0. */
double ifd_histogram_quantile(double q, const double *bounds, size_t n_bounds,
                              const uint64_t *counts);

/* ---- inferd's metrics ------------------------------------------------------------------------ */

/* Why a request ended: the outcome label of inferd_requests_total. */
typedef enum ifd_outcome {
    IFD_OUTCOME_SUCCESS,
    IFD_OUTCOME_INVALID_INPUT, /* 400: bad body, shape, dtype, names */
    IFD_OUTCOME_NOT_FOUND,     /* the version exists but cannot serve (loading, failed, gone) */
    IFD_OUTCOME_QUEUE_FULL,    /* 503 from a full queue */
    IFD_OUTCOME_TIMEOUT,       /* deadline passed before or while running */
    IFD_OUTCOME_INTERNAL,      /* run failure, out of memory, anything else */
    IFD_OUTCOME_COUNT
} ifd_outcome;

/* "success", "invalid_input", ... (NULL for an out-of-range value). */
const char *ifd_outcome_name(ifd_outcome o);

/* Bucket bounds of the duration histograms (seconds, 0.1 ms .. 10 s) and of inferd_batch_size. */
extern const double ifd_metrics_latency_bounds[];
extern const size_t ifd_metrics_latency_bounds_count;
extern const double ifd_metrics_batch_bounds[];
extern const size_t ifd_metrics_batch_bounds_count;

typedef struct ifd_serve_metrics ifd_serve_metrics;
typedef struct ifd_version_metrics ifd_version_metrics;

/* Registers every inferd family and the process/server series; records the start time. */
ifd_status ifd_serve_metrics_create(ifd_serve_metrics **out);
/* Stops the sampler, frees every bundle, series and history. NULL: no-op. */
void ifd_serve_metrics_free(ifd_serve_metrics *sm);
/* The underlying registry, for modules that add their own families. */
ifd_metrics *ifd_serve_metrics_registry(ifd_serve_metrics *sm);
/* (Series the server metrics create themselves, such as inferd_http_requests_total's, are cached
 * by them: remove series only through ifd_serve_metrics_* calls or in families you added.) */

/* Create the series of one model version (loaded = 0) and its history ring (3600 points,
 * about 200 KB). Adding a model+version that is already there fails with
 * IFD_ERR_INVALID_ARGUMENT. With sm NULL, *out is NULL and IFD_OK is returned. */
ifd_status ifd_serve_metrics_version_add(ifd_serve_metrics *sm, const char *model,
                                         int64_t version, ifd_version_metrics **out);
/* Remove every series labelled with this model+version (drift series included) and free the
 * bundle and its history. No update call on vm may run during or after it. */
void ifd_serve_metrics_version_remove(ifd_serve_metrics *sm, ifd_version_metrics *vm);
/* inferd_model_load_failures_total{model} += 1 (the series is created on first failure). */
void ifd_serve_metrics_load_failure(ifd_serve_metrics *sm, const char *model);
/* Remove every series with this model label (versions' bundles included: they are freed). */
void ifd_serve_metrics_model_remove(ifd_serve_metrics *sm, const char *model);

/* Server-wide, lock-free: inferd_http_requests_total{code} (100..599; others are ignored) and
 * inferd_http_open_connections. */
void ifd_serve_metrics_http_request(ifd_serve_metrics *sm, int code);
void ifd_serve_metrics_connections_add(ifd_serve_metrics *sm, int delta);

/* inferd_model_loaded = loaded ? 1 : 0; inferd_model_load_duration_seconds = seconds (kept
 * when seconds < 0). */
void ifd_version_metrics_loaded(ifd_version_metrics *vm, bool loaded, double seconds);
/* inferd_pending_requests += delta (queued or running). */
void ifd_version_metrics_pending(ifd_version_metrics *vm, int delta);
/* One session run of `elements` batch elements: executions_total += 1, inferences_total +=
 * elements, batch_size observes elements. */
void ifd_version_metrics_batch(ifd_version_metrics *vm, int64_t elements);

/* Per-request stage times in seconds; a negative value means the stage was not reached and is
 * not observed. With batching, compute_s is the run of the batch the request was part of. */
typedef struct ifd_request_timing {
    double request_s; /* arrival to reply ready */
    double queue_s;   /* enqueued to picked by a worker */
    double input_s;   /* body decode and checks */
    double compute_s; /* session run */
    double output_s;  /* reply encode */
} ifd_request_timing;

/* inferd_requests_total{outcome} += 1, and each stage time >= 0 in t (NULL: none) into its
 * histogram. The caller decides which outcomes carry times; the server observes all of them
 * for successes and request_s (only) for failures, so p99 reflects what clients saw. */
void ifd_version_metrics_request(ifd_version_metrics *vm, ifd_outcome outcome,
                                 const ifd_request_timing *t);

/* Drift (set by the drift module): inferd_drift_score{model,version,tensor} and
 * inferd_drift_threshold{model,version}. The series are created on first use (that call locks
 * and may allocate; keep the handle from ifd_version_metrics_drift_series for later updates) and
 * go away with the version. */
ifd_status ifd_version_metrics_drift_series(ifd_version_metrics *vm, const char *tensor,
                                            ifd_metric_series **out);
ifd_status ifd_version_metrics_drift_threshold(ifd_version_metrics *vm, double threshold);

/* The Prometheus page: ifd_metrics_render of the registry (process gauges read now). */
void ifd_serve_metrics_render(ifd_serve_metrics *sm, ifd_sbuf *b);

/* ---- history for the dashboard ---------------------------------------------------------- */

#define IFD_HISTORY_POINTS 3600 /* one hour at one point per second */

/* Take one history point now for the server and for every version: rates over the time since
 * the previous point. now_ms is the wall-clock time (unix ms) stamped on the point and used for
 * the rates; 0 takes the clock. The sampler thread calls this; tests call it with made-up times
 * to get exact rates. Points whose time does not advance are skipped. */
void ifd_serve_metrics_sample(ifd_serve_metrics *sm, int64_t now_ms);
/* Sample every interval_ms (0: 1000) on a thread of its own until stop. Starting twice fails. */
ifd_status ifd_serve_metrics_start_sampler(ifd_serve_metrics *sm, int interval_ms);
void ifd_serve_metrics_stop_sampler(ifd_serve_metrics *sm);

/* Append the history as JSON, only points with t > since_ms (0: the whole hour), columnar so a
 * chart takes the arrays as they are:
 *   {"now":<ms>,"interval_ms":1000,
 *    "server":{"t":[..],"cpu_cores":[..],"rss_bytes":[..],"allocator_bytes":[..],
 *              "open_connections":[..]},
 *    "models":[{"model":"m","version":"1","loaded":1,"pending":0,
 *               "t":[..],"request_rate":[..],"inference_rate":[..],
 *               "errors":{"invalid_input":[..],"not_found":[..],"queue_full":[..],
 *                         "timeout":[..],"internal":[..]},
 *               "latency_p50_s":[..],"latency_p95_s":[..],"latency_p99_s":[..],
 *               "queue_mean_s":[..],"batch_mean":[..],
 *               "drift":{"<tensor>":<score>,..},"drift_threshold":<v or null>}, ..]}
 * Rates are per second; errors are per second by outcome; a value with nothing to measure in
 * its interval (a percentile with no requests) is null. Models sorted by name then version. */
void ifd_serve_metrics_history_json(ifd_serve_metrics *sm, int64_t since_ms, ifd_sbuf *b);

#endif
