/* serve/: the model server. A model repository (repository.c) loads DIR/<name>/<version>/
 * model.onnx with an optional DIR/<name>/config.json (config.c) and runs each loaded version's
 * requests on its own worker threads, one session per thread; http.c is the libevent front end
 * (one I/O thread) and the KServe v2 REST routes; kserve_json.c decodes and encodes JSON tensors;
 * infer.c turns one request body into one response on a worker thread.
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
} ifd_serve_options;

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
} ifd_kserve_request;

/* Parse an infer request body. Returns 0, or an HTTP status (400, 413) with a message in err.
 * max_tensor_bytes caps the decoded bytes of all inputs together (checked before allocating). */
int ifd_kserve_request_parse(const char *body, size_t len, size_t max_tensor_bytes,
                             ifd_kserve_request *out, char *err, size_t errsize);
void ifd_kserve_request_free(ifd_kserve_request *r);
/* Append {"name","datatype","shape","data"} for one output tensor. NaN and infinities are
 * written as the strings "NaN", "Infinity", "-Infinity" (JSON has no literal for them); the
 * decoder accepts the same strings for floating-point inputs. */
void ifd_kserve_encode_tensor(ifd_sbuf *b, const char *name, const ifd_tensor *t);

/* ---- model configuration (config.c) -------------------------------------------------------- */

enum { IFD_POLICY_LATEST, IFD_POLICY_SPECIFIC, IFD_POLICY_ALL };

typedef struct ifd_serve_config {
    int64_t max_batch_size;             /* accepted, batching not implemented yet */
    int instance_count;                 /* sessions (and worker threads) per version: 1 */
    int policy;                         /* IFD_POLICY_*: latest 1 */
    int latest_n;
    size_t n_specific;
    int64_t specific[64];
    bool dynamic_batching;              /* validated and kept; the batcher comes later */
    int64_t max_queue_delay_us;
    size_t n_preferred;
    int64_t preferred_batch[16];
    int64_t max_queue_size;             /* 0: unbounded */
    int64_t default_timeout_us;         /* 0: none */
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
} ifd_serve_job;

typedef void (*ifd_serve_done_fn)(ifd_serve_job *job, void *arg);

struct ifd_serve_version {
    ifd_serve_model *model;
    int64_t number;
    atomic_int state;               /* IFD_VERSION_* */
    char *error;                    /* why it failed to load */
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
    bool stop;
};

struct ifd_serve_model {
    ifd_serve_repo *repo;
    char *name;
    char *error;                    /* config error: the model cannot load */
    ifd_serve_config config;
    size_t n_versions;              /* loaded or failed, ascending by number */
    ifd_serve_version **versions;
};

struct ifd_serve_repo {
    const ifd_serve_options *opts;
    ifd_serve_done_fn done;
    void *done_arg;
    pthread_mutex_t mu;             /* guards the models array */
    size_t n_models;
    ifd_serve_model **models;       /* sorted by name; entries live until repo_free */
    atomic_bool ready;              /* the initial scan finished */
    pthread_t loader;
    bool loader_started;
};

ifd_status ifd_serve_repo_create(const ifd_serve_options *opts, ifd_serve_done_fn done,
                                 void *done_arg, ifd_serve_repo **out);
/* Scan and load in a background thread; repo->ready turns true when done. */
ifd_status ifd_serve_repo_start(ifd_serve_repo *repo);
/* Stop workers (each finishes its current job), join threads; queued jobs are returned as a
 * list for the caller to dispose of. */
ifd_serve_job *ifd_serve_repo_stop(ifd_serve_repo *repo);
void ifd_serve_repo_free(ifd_serve_repo *repo);
ifd_serve_model *ifd_serve_repo_find(ifd_serve_repo *repo, const char *name);
/* The version that serves `number` (0: the newest available), or NULL. */
ifd_serve_version *ifd_serve_model_version(ifd_serve_model *m, int64_t number);
bool ifd_serve_model_ready(ifd_serve_model *m);
/* Queue a job on its version; false (job untouched) when the queue is full or stopping. */
bool ifd_serve_submit(ifd_serve_job *job);
size_t ifd_serve_repo_ready_count(ifd_serve_repo *repo);

/* ---- one inference (infer.c) -------------------------------------------------------------- */

void ifd_serve_infer(ifd_serve_version *v, ifd_session *session, ifd_serve_job *job,
                     const ifd_serve_options *opts);
/* Set job->status and an {"error": msg} body. */
void ifd_serve_job_error(ifd_serve_job *job, int status, const char *fmt, ...) IFD_PRINTF(3, 4);
/* ifd_malloc'd {"error": msg}. */
char *ifd_serve_error_json(const char *msg, size_t *len);

#endif
