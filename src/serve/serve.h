/* serve/: the model server. A model repository (repository.c) loads DIR/<name>/<version>/
 * model.onnx with an optional DIR/<name>/config.json (config.c), reloads it as the folder
 * changes, and runs each loaded version's requests on its own worker threads, one session per
 * thread; http.c is the libevent front end (--http-threads I/O threads) with the KServe v2 and
 * TF Serving routes, the repository API, /metrics and the dashboard; kserve_json.c decodes and
 * encodes JSON tensors; infer.c turns one request body into one response on a worker thread;
 * metrics.c, drift.c and accesslog.c watch what happens.
 * Only the public API (include/inferd) and base/ are used below this layer. */
#ifndef IFD_SERVE_H
#define IFD_SERVE_H

#include "base/base.h"

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

/* ---- options ------------------------------------------------------------------------------ */

typedef struct ifd_serve_options {
    const char *model_repository;
    const char *http_address;      /* "0.0.0.0" */
    int http_port;                 /* 8000; 0 picks a free port */
    int threads;                   /* intra-op threads per model instance; 0: all cores */
    size_t max_body_bytes;         /* 64 MiB */
    size_t max_header_bytes;       /* 16 KiB, request line included */
    size_t max_tensor_bytes;       /* decoded input bytes per request: 256 MiB */
    int max_connections;           /* 1000 */
    int read_timeout_secs;         /* 30 */
    int write_timeout_secs;        /* 30 */
    int drain_timeout_secs;        /* 30: SIGTERM waits this long for in-flight requests */
    const char *access_log;        /* JSON-lines access log file; NULL: off */
    double access_log_sample;      /* fraction of requests logged (1) */
    bool no_metrics;               /* --no-metrics: no /metrics, history or dashboard data */
    int metrics_port;              /* also serve /metrics on this port; -1: only the HTTP port */
    bool no_drift;                 /* --no-drift: no drift watching whatever config.json says */
    int http_threads;              /* I/O threads running the HTTP front end; 0: 1 per 2 cores, >= 1 */
    int model_control_mode;        /* IFD_CONTROL_*: none */
    int repository_poll_secs;      /* poll mode: rescan interval (15) */
    const char *const *load_models;/* explicit mode: models loaded at start ("*": all) */
    size_t n_load_models;
    bool allow_remote_management;  /* repository API from other hosts than loopback */
    int inline_max_us;             /* run requests of models that cost less than this on the
                                    * I/O thread when their inline instance is idle (50); 0: off */
} ifd_serve_options;

/* Triton's --model-control-mode: none loads at start only (SIGHUP rescans); poll rescans the
 * repository every repository_poll_secs; explicit loads and unloads on request
 * (/v2/repository/models/{m}/load|unload) and loads load_models at start. */
enum { IFD_CONTROL_NONE = 0, IFD_CONTROL_POLL = 1, IFD_CONTROL_EXPLICIT = 2 };

void ifd_serve_options_init(ifd_serve_options *o);
/* Runs the server until SIGTERM/SIGINT; returns the process exit status. */
int ifd_serve_run(const ifd_serve_options *o);

/* ---- growable byte buffer with a cap -------------------------------------------------------- */

typedef struct ifd_sbuf {
    char *data;
    size_t len, cap, limit; /* limit 0: SIZE_MAX */
    bool failed;            /* an append hit the limit or ran out of memory */
} ifd_sbuf;

void ifd_sbuf_append(ifd_sbuf *b, const void *p, size_t n);
void ifd_sbuf_puts(ifd_sbuf *b, const char *s);
void ifd_sbuf_printf(ifd_sbuf *b, const char *fmt, ...) IFD_PRINTF(2, 3);
void ifd_sbuf_json_string(ifd_sbuf *b, const char *s);
void ifd_sbuf_free(ifd_sbuf *b);

/* ---- KServe v2 JSON tensors (kserve_json.c) ----------------------------------------------- */

#define IFD_KSERVE_MAX_DEPTH 64 /* JSON nesting accepted in a request body */
#define IFD_KSERVE_MAX_NAME 256

/* "FP32" -> IFD_DTYPE_FLOAT, "BYTES" -> IFD_DTYPE_STRING; IFD_DTYPE_UNDEFINED if unknown. */
ifd_dtype ifd_kserve_dtype_from_name(const char *name);
/* KServe name of a dtype, or NULL when the protocol has none. */
const char *ifd_kserve_dtype_name(ifd_dtype dtype);
/* False when JSON arrays/objects nest deeper than max_depth (strings are skipped). */
bool ifd_kserve_depth_ok(const char *body, size_t len, int max_depth);

typedef struct ifd_kserve_input {
    const char *name;    /* borrowed from the request's JSON */
    ifd_dtype dtype;
    ifd_tensor *tensor;  /* owned */
} ifd_kserve_input;

typedef struct ifd_kserve_request {
    json_t *root;
    const char *id;          /* NULL when absent */
    size_t n_inputs;
    ifd_kserve_input *inputs;
    size_t n_outputs;        /* 0: every output */
    const char **outputs;    /* requested names, borrowed from root */
    /* binary tensor data extension: request-level "binary_data_output", and per requested
     * output -1 (not said), 0 or 1 from its "binary_data" / "binary_data_output" parameter */
    bool binary_output;
    signed char *output_binary;
    int tfs_format;          /* TF Serving: IFD_TFS_ROW or IFD_TFS_COLUMNAR; 0 for KServe */
} ifd_kserve_request;

/* Parse an infer request body. Returns 0, or an HTTP status (400, 413) with a message in err.
 * max_tensor_bytes caps the decoded bytes of all inputs together (checked before allocating);
 * a BYTES element counts its length plus 16 bytes (its slot in the tensor). BYTES data are JSON
 * strings (escapes decoded, \u0000 included: the bytes are any bytes), or in the binary
 * extension each element is a 4-byte little-endian length and that many bytes, the input's
 * binary_data_size being their exact total. */
int ifd_kserve_request_parse(const char *body, size_t len, size_t max_tensor_bytes,
                             ifd_kserve_request *out, char *err, size_t errsize);
void ifd_kserve_request_free(ifd_kserve_request *r);
/* The same with Triton's binary tensor data extension: body[0, json_len) is the JSON header and
 * body[json_len, len) the binary section that inputs with "binary_data_size" take their bytes
 * from, in input order (wrapped without a copy when aligned: the body must outlive out).
 * json_len 0: no such header, the whole body is JSON. */
int ifd_kserve_request_parse_binary(const char *body, size_t len, size_t json_len,
                                    size_t max_tensor_bytes, ifd_kserve_request *out, char *err,
                                    size_t errsize);
/* Append the KServe infer response for outs[0..n) named names[j]; outputs asked for in binary
 * form follow the JSON as raw bytes (BYTES: each element as a 4-byte little-endian length and
 * its bytes) and *json_len is set to the JSON part's length (0 when the reply is plain JSON).
 * Returns 0, or an HTTP status with err set and nothing appended: 400 when a BYTES output to
 * be sent as JSON holds an element that is not UTF-8 (the message says to ask for it with
 * "binary_data": true). */
int ifd_kserve_encode_response(ifd_sbuf *b, const char *model_name, int64_t version,
                               const ifd_kserve_request *req, size_t n, const char *const *names,
                               ifd_tensor *const *outs, size_t *json_len, char *err,
                               size_t errsize);
/* Decode nested JSON arrays holding `count` elements in row-major order (ragged data refused)
 * into dst as dtype (a numeric dtype or BOOL; TF Serving's strings are read in tfserving.c);
 * name is for messages. Returns 0 or 400 with err set. */
int ifd_kserve_decode_values(const json_t *data, ifd_dtype dtype, int64_t count, void *dst,
                             const char *name, char *err, size_t errsize);
/* Append element i of data (a numeric dtype or BOOL) as a JSON value, NaN/infinities as
 * strings. */
void ifd_kserve_put_element(ifd_sbuf *b, ifd_dtype dtype, const void *data, int64_t i);
/* BYTES elements. ifd_kserve_put_string appends s[0, len) as a JSON string: '"', '\\' and
 * control characters escaped (NUL as \u0000), UTF-8 as it is; a byte that is not UTF-8 becomes
 * U+FFFD, so callers that must not lose bytes check with ifd_kserve_utf8_valid first (false:
 * *bad_at, when not NULL, is the offset of the first bad byte). */
void ifd_kserve_put_string(ifd_sbuf *b, const char *s, size_t len);
bool ifd_kserve_utf8_valid(const char *s, size_t len, size_t *bad_at);

/* ---- TF Serving REST (tfserving.c) -------------------------------------------------------- */

enum { IFD_TFS_ROW = 1, IFD_TFS_COLUMNAR = 2 };

/* TF Serving's name of a dtype ("DT_FLOAT"), or NULL. */
const char *ifd_tfs_dtype_name(ifd_dtype dtype);
/* Parse a :predict body ({"instances": ...} or {"inputs": ...}) against the model's inputs into
 * out (names borrowed from the JSON or from inputs[]). Returns 0 or an HTTP status with err. */
int ifd_tfs_request_parse(const char *body, size_t len, const ifd_io_info *inputs,
                          size_t n_inputs, size_t max_tensor_bytes, ifd_kserve_request *out,
                          char *err, size_t errsize);
/* Append {"predictions": ...} or {"outputs": ...} as TF Serving shapes them. Returns 0, or 400
 * with err set (row format with outputs that do not share dim 0). */
int ifd_tfs_encode_response(ifd_sbuf *b, const ifd_kserve_request *req, size_t n,
                            const char *const *names, ifd_tensor *const *outs, char *err,
                            size_t errsize);
/* Append {"name","datatype","shape","data"} for one output tensor. NaN and infinities are
 * written as the strings "NaN", "Infinity", "-Infinity" (JSON has no literal for them); the
 * decoder accepts the same strings for floating-point inputs. BYTES elements are JSON strings
 * (ifd_kserve_put_string). */
void ifd_kserve_encode_tensor(ifd_sbuf *b, const char *name, const ifd_tensor *t);

/* ---- model configuration (config.c) -------------------------------------------------------- */

enum { IFD_POLICY_LATEST, IFD_POLICY_SPECIFIC, IFD_POLICY_ALL };

#define IFD_SERVE_MAX_LABELS 16
#define IFD_SERVE_MAX_LABEL_LEN 63
#define IFD_SERVE_MAX_IO 32

typedef struct ifd_serve_io_config {
    bool is_output;
    char name[IFD_KSERVE_MAX_NAME + 1];
    ifd_dtype dtype;                    /* from Triton's "TYPE_FP32" names */
    int rank;                           /* -1: dims not given */
    int64_t dims[IFD_MAX_RANK];         /* -1: any */
} ifd_serve_io_config;

typedef struct ifd_serve_config {
    int64_t max_batch_size;             /* 0: no batch dim; else dim 0 of inputs, <= this */
    int instance_count;                 /* sessions (and worker threads) per version: 1 */
    int policy;                         /* IFD_POLICY_*: latest 1 */
    int latest_n;
    size_t n_specific;
    int64_t specific[64];
    bool dynamic_batching;              /* requests are batched along dim 0 (repository.c) */
    int64_t max_queue_delay_us;
    size_t n_preferred;
    int64_t preferred_batch[16];
    int64_t max_queue_size;             /* 0: unbounded */
    int64_t default_timeout_us;         /* 0: none */
    /* version_labels {"stable": 1}: TF Serving's /labels/{l} */
    size_t n_labels;
    char labels[IFD_SERVE_MAX_LABELS][IFD_SERVE_MAX_LABEL_LEN + 1];
    int64_t label_version[IFD_SERVE_MAX_LABELS];
    /* traffic {"1": 90, "2": 10}: weighted split of requests that name no version */
    size_t n_traffic;
    int64_t traffic_version[IFD_SERVE_MAX_LABELS];
    int64_t traffic_weight[IFD_SERVE_MAX_LABELS];
    /* input/output overrides: checked against the model at load; their dims (batch dim left
     * out when max_batch_size > 0) replace the model's where the model leaves a dim free */
    size_t n_io;
    ifd_serve_io_config io[IFD_SERVE_MAX_IO];
    /* "drift": {"enabled", "threshold", "window"} (drift.h) */
    bool drift_enabled;                 /* true */
    double drift_threshold;             /* 0.25: PSI above it counts as drift */
    int64_t drift_window;               /* 20000 sampled elements */
} ifd_serve_config;

void ifd_serve_config_default(ifd_serve_config *c);
/* Parse config.json text. On failure returns false with a message naming the field. */
bool ifd_serve_config_parse(const char *text, size_t len, const char *model_name,
                            ifd_serve_config *c, char *err, size_t errsize);

/* ---- repository (repository.c) -------------------------------------------------------------- */

typedef struct ifd_serve_version ifd_serve_version;
typedef struct ifd_serve_model ifd_serve_model;
typedef struct ifd_serve_repo ifd_serve_repo;

enum { IFD_VERSION_LOADING, IFD_VERSION_AVAILABLE, IFD_VERSION_FAILED };

/* One request on its way through a version's queue. The worker fills status/reply. */
typedef struct ifd_serve_job {
    struct ifd_serve_job *next;
    void *http_request;             /* the front end's handle; the repository never touches it */
    const char *body;               /* borrowed until the reply is sent */
    size_t body_len;
    ifd_serve_version *version;
    struct timespec enqueued;
    int status;                     /* HTTP status */
    char *reply;                    /* ifd_malloc'd JSON body */
    size_t reply_len;
    bool retry_after;               /* 503 for a full queue */
    struct ifd_serve_call *call;    /* batching: the decoded request while it waits for a batch */
    int protocol;                   /* IFD_SERVE_PROTO_* */
    size_t binary_header_len;       /* Inference-Header-Content-Length; 0: none */
    size_t reply_header_len;        /* the reply's JSON part when binary data follows; 0: none */
    /* CLOCK_MONOTONIC ns at each stage (0: not reached), for metrics and the access log */
    int64_t t_enqueued, t_dequeued, t_decoded, t_computed, t_encoded;
    int64_t batch_elements;         /* this request's batch elements (1 without a batch dim) */
    int64_t exec_elements;          /* batch elements of the session run that served it */
} ifd_serve_job;

int64_t ifd_serve_now_ns(void);
/* IFD_SERVE_TEST_INFER_DELAY_MS (tests only): sleep before a session run. */
void ifd_serve_test_delay(void);

enum { IFD_SERVE_PROTO_KSERVE = 0, IFD_SERVE_PROTO_TFS = 1 };

typedef void (*ifd_serve_done_fn)(ifd_serve_job *job, void *arg);

/* A loaded (or loading, or failed) model version. Reference counted: the model's list holds one
 * reference while the version is listed, and every request holds one from ifd_serve_acquire
 * until its reply is sent (ifd_serve_version_release). An unloaded or replaced version leaves
 * the list at once, finishes the requests it took, and is freed by the loader thread when the
 * last reference goes. Everything below is fixed once the version is AVAILABLE, except the
 * atomics and `error` (read under the model's lock). */
struct ifd_serve_version {
    ifd_serve_model *model;
    int64_t number;
    atomic_int state;               /* IFD_VERSION_* */
    atomic_int refs;
    char *error;                    /* why it failed to load, or why a reload failed */
    ifd_serve_config config;        /* the model's config when this version was loaded */
    struct ifd_serve_file_sig { long long dev, ino, size, mtime_ns; } sig; /* model.onnx */
    double load_seconds;
    struct ifd_drift *drift;        /* NULL when drift is off in config.json */
    struct ifd_version_metrics *vm; /* shared by every load of this number (NULL: metrics off) */
    struct ifd_metric_series **drift_series; /* [n_inputs + n_outputs], metrics of the scores */
    atomic_uint observed;           /* runs seen by the drift watcher */
    ifd_model *onnx;
    int n_instances;
    ifd_session **sessions;
    pthread_t *threads;
    int n_threads_started;
    size_t n_inputs, n_outputs;
    ifd_io_info *inputs, *outputs;  /* strings owned by sessions[0] */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    ifd_serve_job *head, *tail;
    size_t queued;
    atomic_size_t queued_hint;      /* `queued`, readable without the lock (idle workers spin) */
    bool stop;
    bool batching;                  /* dynamic batching along dim 0 applies to this version */
    bool gathering;                 /* a worker is forming a batch (the others wait) */
    atomic_llong inference_count;   /* batch elements (requests when not batching) served */
    atomic_llong execution_count;   /* session runs */
    /* Inline runs: a model whose requests cost less than --inline-max-us (decode + run +
     * encode, a moving average) gets one more single-threaded session, made by a worker once
     * the cost is known; the I/O thread runs a request on it when it is idle and nothing is
     * queued, skipping the two thread hand-offs that cost more than such a model's inference. */
    atomic_llong cost_ns;           /* moving average of a request's decode+run+encode time */
    atomic_bool inline_making;      /* a worker is making the inline session */
    _Atomic(ifd_session *) inline_session;
    atomic_bool inline_busy;
    ifd_serve_version *next_dead;   /* the loader's list of versions to free */
    ifd_serve_version *live_prev, *live_next; /* every version not yet freed (repo->mu) */
};

/* A model: lives from its first scan until the repository is freed (pointers stay valid);
 * a model whose folder disappears or that is unloaded just has no versions. */
struct ifd_serve_model {
    ifd_serve_repo *repo;
    char *name;
    pthread_mutex_t mu;             /* guards everything below */
    char *error;                    /* config/scan error (the versions listed keep serving) */
    ifd_serve_config config;        /* labels and traffic are read from here */
    bool has_config;
    bool removed;                   /* folder gone or unloaded: not listed as a model */
    bool unloaded;                  /* explicit mode: unloaded on request (or never loaded) */
    size_t n_versions;              /* ascending by number */
    size_t cap_versions;
    ifd_serve_version **versions;
    int64_t traffic_credit[IFD_SERVE_MAX_LABELS]; /* smooth weighted round robin state */
    /* metrics bundles by version number, shared by the loads of one number (a reload and the
     * version it replaces label the same series); the loader thread alone touches these */
    struct ifd_vm_slot { int64_t number; struct ifd_version_metrics *vm; int users; } *vm_slots;
    size_t n_vm_slots;
};

/* a management request's outcome, called on the loader thread */
typedef void (*ifd_serve_control_fn)(void *arg, int http_status, const char *message);

typedef struct ifd_serve_control ifd_serve_control;

struct ifd_serve_repo {
    const ifd_serve_options *opts;
    ifd_serve_done_fn done;
    void *done_arg;
    pthread_mutex_t mu;             /* guards the models array and the loader's inputs below */
    pthread_cond_t cv;
    size_t n_models;
    ifd_serve_model **models;       /* sorted by name; entries live until repo_free */
    atomic_bool ready;              /* the initial scan finished */
    pthread_t loader;
    bool loader_started;
    bool stopping;
    bool rescan;                    /* SIGHUP asked for a rescan */
    ifd_serve_control *controls, **controls_tail; /* load/unload requests, in order */
    ifd_serve_version *dead;        /* released versions waiting to be freed */
    ifd_serve_version *live;        /* every version not yet freed, listed or retired */
    struct ifd_access_log *access_log; /* NULL: off */
    struct ifd_serve_metrics *metrics; /* NULL: off */
};

/* Model names: [A-Za-z0-9_.-], not starting with '.', at most IFD_KSERVE_MAX_NAME bytes (the
 * same rule for folder names and URL segments, so no path can escape the repository). */
bool ifd_serve_valid_model_name(const char *s);
/* Versions: a positive decimal without leading zeros, at most 18 digits. */
bool ifd_serve_parse_version(const char *s, int64_t *out);

ifd_status ifd_serve_repo_create(const ifd_serve_options *opts, ifd_serve_done_fn done,
                                 void *done_arg, ifd_serve_repo **out);
/* Start the loader thread: the initial scan (repo->ready turns true when it is done), then
 * polling, rescans and load/unload requests, and freeing released versions. */
ifd_status ifd_serve_repo_start(ifd_serve_repo *repo);
/* Stop the loader and every version's workers (each finishes its current job) and join them;
 * queued jobs are returned as a list for the caller to dispose of (their versions released). */
ifd_serve_job *ifd_serve_repo_stop(ifd_serve_repo *repo);
void ifd_serve_repo_free(ifd_serve_repo *repo);
/* Rescan the repository soon (SIGHUP); safe from any thread. */
void ifd_serve_repo_rescan(ifd_serve_repo *repo);
/* Explicit mode: load (or reload) / unload a model by name, off the caller's thread; done is
 * called once from the loader thread with 200, or an HTTP status and a message. Returns 0
 * when queued, else an HTTP status with the message in err (wrong mode, bad name). */
int ifd_serve_repo_control(ifd_serve_repo *repo, bool load, const char *name,
                           ifd_serve_control_fn done, void *arg, char *err, size_t errsize);

/* The version a request names: number > 0 that version, else label != NULL the version with
 * that label, else the traffic split of config.json, else the newest available. On success a
 * reference is taken (release it with ifd_serve_version_release) and 200 returned; otherwise an
 * HTTP status (404 unknown model/version/label, 503 not loaded or not ready) with a message
 * in err. Only AVAILABLE versions are returned. */
int ifd_serve_acquire(ifd_serve_repo *repo, const char *model, int64_t number, const char *label,
                      ifd_serve_version **out, char *err, size_t errsize);
void ifd_serve_version_acquire(ifd_serve_version *v);
void ifd_serve_version_release(ifd_serve_version *v);
/* Append the available version numbers of v's model as JSON strings: "1","2". */
void ifd_serve_model_put_versions(ifd_serve_model *m, ifd_sbuf *b);
/* POST /v2/repository/index: every model and version with state and reason; ready_only: only
 * those that can serve. */
void ifd_serve_repo_index(ifd_serve_repo *repo, bool ready_only, ifd_sbuf *b);
/* [{"model","version","threshold","summary":{"tensors":[...]}}] for every available version
 * that watches drift (drift.h's ifd_drift_render_json). */
void ifd_serve_repo_drift_json(ifd_serve_repo *repo, ifd_sbuf *b);
/* Queue a job on its version (job->version holds the request's reference); false (job
 * untouched) when the queue is full or the version is stopping. */
bool ifd_serve_submit(ifd_serve_job *job);
/* Run the job now on the calling (I/O) thread when its version allows an inline run (see
 * struct ifd_serve_version); true with the reply in the job, metrics recorded and the done
 * callback NOT called; false (job untouched) when it must be submitted. */
bool ifd_serve_try_inline(ifd_serve_job *job);
/* Count a request the front end turned away after acquiring v (queue full: 503). */
void ifd_serve_count_rejected(ifd_serve_version *v);
size_t ifd_serve_repo_ready_count(ifd_serve_repo *repo);
ifd_serve_model *ifd_serve_repo_find(ifd_serve_repo *repo, const char *name);

/* ---- TF Serving model status and metadata (tfserving.c) ------------------------------------ */

/* GET /v1/models/{m}[/versions/{v}|/labels/{l}]: model_version_status (version 0 and no label:
 * every version). Returns 200 with the body in b, or an HTTP status with the message in err. */
int ifd_tfs_model_status(ifd_serve_repo *repo, const char *model, int64_t version,
                         const char *label, ifd_sbuf *b, char *err, size_t errsize);

/* GET .../metadata of a version that can serve. */
void ifd_tfs_model_metadata(ifd_serve_version *v, ifd_sbuf *b);

/* ---- one inference (infer.c) -------------------------------------------------------------- */

void ifd_serve_infer(ifd_serve_version *v, ifd_session *session, ifd_serve_job *job,
                     const ifd_serve_options *opts);
/* A decoded and checked request, between decoding and encoding; the batcher (repository.c)
 * runs several of them as one session run. */
typedef struct ifd_serve_call {
    ifd_kserve_request req;
    const char **in_names;          /* [v->n_inputs], model order */
    const ifd_tensor **in_tensors;  /* [v->n_inputs], borrowed from req */
    size_t n_out;
    const char **out_names;         /* [n_out] */
    ifd_tensor **outs;              /* [n_out], owned; filled by the run */
} ifd_serve_call;

/* Decode job's body and check it against the version's inputs/outputs. False: job holds the
 * error reply and c needs no freeing. */
bool ifd_serve_decode(ifd_serve_version *v, ifd_serve_job *job, const ifd_serve_options *opts,
                      ifd_serve_call *c);
/* Encode c->outs as job's reply (200), or an error reply. */
void ifd_serve_encode(ifd_serve_version *v, ifd_serve_job *job, ifd_serve_call *c);
void ifd_serve_call_free(ifd_serve_call *c);
/* After a successful run: feed the version's watchers (drift) with its inputs (model order,
 * ins[0..v->n_inputs)) and the outputs names[0..n) = outs[0..n). */
void ifd_serve_observe(ifd_serve_version *v, const ifd_tensor *const *ins, size_t n,
                       const char *const *names, ifd_tensor *const *outs);
/* Dynamic batching's copies, string tensors included (their elements are copied one by one;
 * the raw bytes of a string tensor are owned pointers, never to be memcpy'd):
 * ifd_serve_tensor_concat joins parts[0..n) (one dtype, equal dims past 0) along dim 0 into a
 * new tensor of dim 0 `total` (the sum of theirs); ifd_serve_tensor_rows copies rows
 * [first, first + rows) of dim 0 into a new tensor. */
ifd_status ifd_serve_tensor_concat(const ifd_tensor *const *parts, size_t n, int64_t total,
                                   ifd_tensor **out);
ifd_status ifd_serve_tensor_rows(const ifd_tensor *src, int64_t first, int64_t rows,
                                 ifd_tensor **out);
/* Set job's error reply for a failed ifd_session_run. */
void ifd_serve_job_run_error(ifd_serve_job *job, ifd_status st);
/* Set job->status and an {"error": msg} body. */
void ifd_serve_job_error(ifd_serve_job *job, int status, const char *fmt, ...) IFD_PRINTF(3, 4);
/* ifd_malloc'd {"error": msg}. */
char *ifd_serve_error_json(const char *msg, size_t *len);

#endif
