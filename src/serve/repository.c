/* The model repository: DIR/<name>/[config.json] and DIR/<name>/<version>/model.onnx.
 * One loader thread scans and loads at start, then rescans (poll mode, SIGHUP), runs explicit
 * load/unload requests and frees released versions; each loaded version gets instance_count
 * sessions, each owned by one worker thread that takes jobs from the version's queue (with
 * dynamic batching when configured). Models live until the repository is freed; versions are
 * reference counted (serve.h) and leave as the folder and the version policy say. */
#include "serve/serve.h"
#include "serve/accesslog.h"
#include "serve/drift.h"
#include "serve/metrics.h"

#include <dirent.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_MODELS 4096
#define MAX_VERSIONS_SCANNED 4096

bool ifd_serve_valid_model_name(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n > IFD_KSERVE_MAX_NAME || s[0] == '.') return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == '-' || *s == '.'))
            return false;
    return true;
}

bool ifd_serve_parse_version(const char *s, int64_t *out) {
    size_t n = strlen(s);
    if (n == 0 || n > 18 || s[0] == '0') return false;
    int64_t v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9') return false;
        v = v * 10 + (*s - '0');
    }
    *out = v;
    return true;
}

static char *path_join(const char *a, const char *b, const char *c) {
    size_t n = strlen(a) + strlen(b) + (c ? strlen(c) : 0) + 3;
    char *p = ifd_malloc(n);
    if (p) snprintf(p, n, c ? "%s/%s/%s" : "%s/%s", a, b, c);
    return p;
}

static bool is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Error texts go to clients: drop the repository's own path from them ("DIR/m/1/model.onnx"
 * becomes "m/1/model.onnx"). */
static void strip_root(char *msg, const char *root) {
    size_t n = strlen(root);
    while (n > 1 && root[n - 1] == '/') n--;
    if (n == 0) return;
    for (char *p = strstr(msg, root); p; p = strstr(p, root)) {
        size_t cut = n;
        if (p[cut] == '/') cut++;
        else if (p[cut] != 0 && p[cut] != '\'' && p[cut] != ' ') {
            p += n;
            continue;
        }
        memmove(p, p + cut, strlen(p + cut) + 1);
    }
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int cmp_model(const void *a, const void *b) {
    return strcmp((*(ifd_serve_model *const *)a)->name, (*(ifd_serve_model *const *)b)->name);
}

int64_t ifd_serve_now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}

/* Tests make models slow with IFD_SERVE_TEST_INFER_DELAY_MS=MS or MS1,MS2,...: each session
 * run sleeps the next value of the list, in turn (a known latency distribution). */
static int g_delays[16];
static int g_n_delays;
static atomic_uint g_delay_turn;
static pthread_once_t g_delay_once = PTHREAD_ONCE_INIT;

static void read_delays(void) {
    const char *e = getenv("IFD_SERVE_TEST_INFER_DELAY_MS");
    while (e && *e && g_n_delays < (int)IFD_ARRAY_LEN(g_delays)) {
        char *end;
        long ms = strtol(e, &end, 10);
        if (end == e || ms < 0 || ms > 600000) break;
        g_delays[g_n_delays++] = (int)ms;
        e = *end == ',' ? end + 1 : end;
    }
}

void ifd_serve_test_delay(void) {
    pthread_once(&g_delay_once, read_delays);
    if (g_n_delays == 0) return;
    int ms = g_delays[atomic_fetch_add(&g_delay_turn, 1) % (unsigned)g_n_delays];
    if (ms > 0) usleep((useconds_t)ms * 1000u);
}

/* A job's reply is ready: record it, then hand it to the front end. */
static double stage_s(int64_t from, int64_t to) {
    return from && to && to >= from ? (double)(to - from) / 1e9 : -1;
}

static void record_job(ifd_serve_version *v, ifd_serve_job *j) {
    ifd_serve_repo *repo = v->model->repo;
    if (repo->access_log) ifd_access_log_record(repo->access_log, v->model->name, v->number, j);
    if (v->vm) {
        int64_t end = j->t_encoded ? j->t_encoded : ifd_serve_now_ns();
        ifd_request_timing t = {.request_s = stage_s(j->t_enqueued, end), .queue_s = -1,
                                .input_s = -1, .compute_s = -1, .output_s = -1};
        ifd_outcome o = j->status == 200                          ? IFD_OUTCOME_SUCCESS
                        : j->status == 400 || j->status == 413    ? IFD_OUTCOME_INVALID_INPUT
                        : j->status == 503                        ? IFD_OUTCOME_TIMEOUT
                                                                  : IFD_OUTCOME_INTERNAL;
        if (o == IFD_OUTCOME_SUCCESS) {
            t.queue_s = stage_s(j->t_enqueued, j->t_dequeued);
            t.input_s = stage_s(j->t_dequeued, j->t_decoded);
            t.compute_s = stage_s(j->t_decoded, j->t_computed);
            t.output_s = stage_s(j->t_computed, j->t_encoded);
        }
        ifd_version_metrics_request(v->vm, o, &t);
        ifd_version_metrics_pending(v->vm, -1);
    }
}

static void finish_job(ifd_serve_version *v, ifd_serve_job *j) {
    record_job(v, j);
    v->model->repo->done(j, v->model->repo->done_arg);
}

void ifd_serve_count_rejected(ifd_serve_version *v) {
    ifd_version_metrics_request(v->vm, IFD_OUTCOME_QUEUE_FULL, NULL);
}

/* ---- workers ------------------------------------------------------------------------------ */

typedef struct worker_arg {
    ifd_serve_version *v;
    int index;
} worker_arg;

/* ---- dynamic batching -----------------------------------------------------------------------
 * One worker at a time gathers (v->gathering): it takes queued requests in arrival order,
 * decodes each, and keeps those that can share a session run with the oldest one (same
 * non-batch dims, same requested outputs) while the batch stays <= max_batch_size. It sends
 * as soon as the largest preferred size (else max_batch_size) is reached; when the queue runs
 * dry first it sends the largest preferred-size prefix gathered so far, else waits for more
 * until max_queue_delay_microseconds after the oldest request's arrival and sends what it has.
 * Requests it could not use go back to the head of the queue for the next batch. */

#define MAX_BATCH_JOBS 1024

static long since_us(const struct timespec *t) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - t->tv_sec) * 1000000L + (now.tv_nsec - t->tv_nsec) / 1000L;
}

static void job_drop_call(ifd_serve_job *j) {
    if (!j->call) return;
    ifd_serve_call_free(j->call);
    ifd_free(j->call);
    j->call = NULL;
}

static int64_t call_batch(const ifd_serve_call *c) { return ifd_tensor_dims(c->in_tensors[0])[0]; }

static bool calls_compatible(const ifd_serve_version *v, const ifd_serve_call *a,
                             const ifd_serve_call *b) {
    for (size_t k = 0; k < v->n_inputs; k++) {
        const ifd_tensor *x = a->in_tensors[k], *y = b->in_tensors[k];
        int r = ifd_tensor_rank(x);
        if (r != ifd_tensor_rank(y) || ifd_tensor_dtype(x) != ifd_tensor_dtype(y)) return false;
        if (memcmp(ifd_tensor_dims(x) + 1, ifd_tensor_dims(y) + 1,
                   (size_t)(r - 1) * sizeof(int64_t)))
            return false;
    }
    if (a->n_out != b->n_out) return false;
    for (size_t j = 0; j < a->n_out; j++)
        if (strcmp(a->out_names[j], b->out_names[j])) return false;
    return true;
}

/* Timeout check and decode, without the lock. False: the job got its error reply (sent). */
static bool batch_take(ifd_serve_version *v, ifd_serve_job *j) {
    ifd_serve_repo *repo = v->model->repo;
    if (!j->t_dequeued) j->t_dequeued = ifd_serve_now_ns();
    int64_t timeout = v->config.default_timeout_us;
    if (timeout && since_us(&j->enqueued) > timeout) {
        job_drop_call(j);
        ifd_serve_job_error(j, 503, "request waited longer than the model's timeout of %lld us",
                            (long long)timeout);
        finish_job(v, j);
        return false;
    }
    if (j->call) return true;
    ifd_serve_call *c = ifd_malloc(sizeof *c);
    if (!c) {
        ifd_serve_job_error(j, 500, "out of memory");
    } else if (ifd_serve_decode(v, j, repo->opts, c)) {
        j->call = c;
        j->t_decoded = ifd_serve_now_ns();
        j->batch_elements = call_batch(c);
        return true;
    }
    ifd_free(c);
    finish_job(v, j);
    return false;
}

/* One session run for jobs[0..n) (compatible, `total` batch elements); fills every reply. */
static void batch_run(ifd_serve_version *v, ifd_session *session, ifd_serve_job **jobs, size_t n,
                      int64_t total) {
    ifd_serve_call *c0 = jobs[0]->call;
    const ifd_tensor **ins = ifd_calloc(v->n_inputs + 1, sizeof *ins);
    ifd_tensor **cat = ifd_calloc(v->n_inputs + 1, sizeof *cat);
    ifd_tensor **outs = ifd_calloc(c0->n_out + 1, sizeof *outs);
    ifd_status st = IFD_OK;
    ifd_serve_test_delay();
    if (!ins || !cat || !outs) goto oom;
    if (n == 1) {
        /* nothing to concatenate or split: the request's own tensors */
        st = ifd_session_run(session, v->n_inputs, c0->in_names, c0->in_tensors, c0->n_out,
                             c0->out_names, c0->outs);
        atomic_fetch_add(&v->execution_count, 1);
        ifd_version_metrics_batch(v->vm, total);
        jobs[0]->t_computed = ifd_serve_now_ns();
        jobs[0]->exec_elements = total;
        if (st != IFD_OK) {
            ifd_serve_job_run_error(jobs[0], st);
        } else {
            ifd_serve_observe(v, c0->in_tensors, c0->n_out, c0->out_names, c0->outs);
            ifd_serve_encode(v, jobs[0], c0);
            jobs[0]->t_encoded = ifd_serve_now_ns();
            if (jobs[0]->status == 200) atomic_fetch_add(&v->inference_count, total);
        }
        goto out;
    }
    /* inputs: the requests' tensors end to end along dim 0, [total, ...] (strings copied) */
    const ifd_tensor **parts = ifd_calloc(n, sizeof *parts);
    if (!parts) goto oom;
    for (size_t k = 0; k < v->n_inputs; k++) {
        for (size_t i = 0; i < n; i++) parts[i] = jobs[i]->call->in_tensors[k];
        if (ifd_serve_tensor_concat(parts, n, total, &cat[k]) != IFD_OK) {
            ifd_free(parts);
            goto oom;
        }
        ins[k] = cat[k];
    }
    ifd_free(parts);
    st = ifd_session_run(session, v->n_inputs, c0->in_names, ins, c0->n_out, c0->out_names, outs);
    atomic_fetch_add(&v->execution_count, 1);
    ifd_version_metrics_batch(v->vm, total);
    int64_t t_run = ifd_serve_now_ns();
    for (size_t i = 0; i < n; i++) {
        jobs[i]->t_computed = t_run;
        jobs[i]->exec_elements = total;
    }
    if (st != IFD_OK) {
        for (size_t i = 0; i < n; i++) ifd_serve_job_run_error(jobs[i], st);
        goto out;
    }
    ifd_serve_observe(v, ins, c0->n_out, c0->out_names, outs);
    /* outputs: each request gets its rows of every output */
    for (size_t j = 0; j < c0->n_out; j++) {
        int rank = ifd_tensor_rank(outs[j]);
        if (rank == 0 || ifd_tensor_dims(outs[j])[0] != total) {
            for (size_t i = 0; i < n; i++)
                ifd_serve_job_error(jobs[i], 500, "output '%.256s' has no batch dim 0 of size "
                                    "%lld, so the batched requests cannot get their parts of it",
                                    c0->out_names[j], (long long)total);
            goto out;
        }
        int64_t first = 0;
        for (size_t i = 0; i < n; i++) {
            int64_t rows = call_batch(jobs[i]->call);
            if (ifd_serve_tensor_rows(outs[j], first, rows, &jobs[i]->call->outs[j]) != IFD_OK)
                goto oom;
            first += rows;
        }
    }
    for (size_t i = 0; i < n; i++) {
        ifd_serve_encode(v, jobs[i], jobs[i]->call);
        jobs[i]->t_encoded = ifd_serve_now_ns();
        if (jobs[i]->status == 200)
            atomic_fetch_add(&v->inference_count, call_batch(jobs[i]->call));
    }
    goto out;
oom:
    for (size_t i = 0; i < n; i++) ifd_serve_job_error(jobs[i], 500, "out of memory");
out:
    for (size_t k = 0; cat && k < v->n_inputs; k++) ifd_tensor_free(cat[k]);
    for (size_t j = 0; outs && j < c0->n_out; j++) ifd_tensor_free(outs[j]);
    ifd_free(ins);
    ifd_free(cat);
    ifd_free(outs);
}

static void batch_worker(ifd_serve_version *v, ifd_session *session, ifd_serve_job **batch) {
    const ifd_serve_config *cfg = &v->config;
    int64_t max = cfg->max_batch_size, target = 0;
    for (size_t i = 0; i < cfg->n_preferred; i++)
        if (cfg->preferred_batch[i] > target) target = cfg->preferred_batch[i];
    if (!target) target = max;
    for (;;) {
        size_t n = 0, n_pref = 0;
        int64_t total = 0, total_pref = 0;
        ifd_serve_job *skipped = NULL, **skipped_tail = &skipped;
        struct timespec deadline = {0};
        pthread_mutex_lock(&v->mu);
        while ((v->gathering || !v->head) && !v->stop) pthread_cond_wait(&v->cv, &v->mu);
        if (v->stop) {
            pthread_mutex_unlock(&v->mu);
            break;
        }
        v->gathering = true;
        for (;;) {
            while (v->head && total < target && n < MAX_BATCH_JOBS) {
                ifd_serve_job *j = v->head;
                v->head = j->next;
                if (!v->head) v->tail = NULL;
                v->queued--;
                atomic_store_explicit(&v->queued_hint, v->queued, memory_order_relaxed);
                j->next = NULL;
                pthread_mutex_unlock(&v->mu);
                bool ok = batch_take(v, j);
                pthread_mutex_lock(&v->mu);
                if (!ok) continue;
                int64_t b = call_batch(j->call);
                if (n > 0 && (total + b > max || !calls_compatible(v, batch[0]->call, j->call))) {
                    *skipped_tail = j;
                    skipped_tail = &j->next;
                    continue;
                }
                if (n == 0) {
                    long long ns = j->enqueued.tv_nsec + cfg->max_queue_delay_us * 1000LL;
                    deadline.tv_sec = j->enqueued.tv_sec + (time_t)(ns / 1000000000LL);
                    deadline.tv_nsec = (long)(ns % 1000000000LL);
                }
                batch[n++] = j;
                total += b;
                for (size_t i = 0; i < cfg->n_preferred; i++)
                    if (cfg->preferred_batch[i] == total) {
                        n_pref = n;
                        total_pref = total;
                    }
            }
            if (n == 0 || total >= target || n == MAX_BATCH_JOBS || v->stop) break;
            if (n_pref) {
                /* the queue ran dry: send the largest preferred batch, keep the rest queued */
                for (size_t i = n; i-- > n_pref;) {
                    batch[i]->next = skipped;
                    if (!skipped) skipped_tail = &batch[i]->next;
                    skipped = batch[i];
                }
                n = n_pref;
                total = total_pref;
                break;
            }
            if (since_us(&batch[0]->enqueued) >= cfg->max_queue_delay_us) break;
            pthread_cond_timedwait(&v->cv, &v->mu, &deadline);
        }
        if (skipped) {
            size_t k = 0;
            for (ifd_serve_job *j = skipped; j; j = j->next) k++;
            *skipped_tail = v->head;
            if (!v->head) v->tail = (ifd_serve_job *)((char *)skipped_tail -
                                                      offsetof(ifd_serve_job, next));
            v->head = skipped;
            v->queued += k;
            atomic_store_explicit(&v->queued_hint, v->queued, memory_order_relaxed);
        }
        v->gathering = false;
        pthread_cond_broadcast(&v->cv);
        pthread_mutex_unlock(&v->mu);
        if (n == 0) continue;
        batch_run(v, session, batch, n, total);
        for (size_t i = 0; i < n; i++) {
            job_drop_call(batch[i]);
            finish_job(v, batch[i]);
        }
    }
}

/* ~10-20 us of pause instructions */
#define WORKER_SPIN 2000

static inline void spin_pause(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* Inline runs (struct ifd_serve_version): bodies larger than this always go to a worker, so
 * one big request cannot hold an I/O thread whatever the model's average cost. */
#define INLINE_MAX_BODY (16u << 10)
/* requests a worker measures before the inline session is made */
#define INLINE_WARMUP 32

/* Moving average (1/8 weight) of what a request costs its thread: decode, run, encode. A sample
 * counts at most 4x the average, so one preemption in the middle of a request does not turn
 * inline runs off (a model that really got dearer still crosses --inline-max-us within a dozen
 * requests). Racy read-modify-write between threads is fine: it is an estimate. */
static void note_cost(ifd_serve_version *v, const ifd_serve_job *j) {
    if (j->status != 200 || !j->t_dequeued || j->t_encoded < j->t_dequeued) return;
    long long x = j->t_encoded - j->t_dequeued;
    long long c = atomic_load_explicit(&v->cost_ns, memory_order_relaxed);
    if (c > 0 && x > 4 * c) x = 4 * c;
    atomic_store_explicit(&v->cost_ns, c + (x - c) / 8, memory_order_relaxed);
}

/* On a worker: once the model has proven cheap, make the single-threaded session that the I/O
 * threads run inline requests on (once per version; freed with the version). */
static void maybe_make_inline(ifd_serve_version *v) {
    ifd_serve_repo *repo = v->model->repo;
    if (v->batching || repo->opts->inline_max_us <= 0 ||
        atomic_load_explicit(&v->execution_count, memory_order_relaxed) < INLINE_WARMUP ||
        atomic_load_explicit(&v->cost_ns, memory_order_relaxed) >
            (long long)repo->opts->inline_max_us * 1000 ||
        atomic_load_explicit(&v->inline_making, memory_order_relaxed) ||
        atomic_exchange(&v->inline_making, true))
        return;
    ifd_session_options so;
    ifd_session_options_init(&so);
    so.num_threads = 1;
    ifd_session *s = NULL;
    if (ifd_session_create(v->onnx, &so, &s) != IFD_OK) return; /* stays off for this version */
    atomic_store_explicit(&v->inline_session, s, memory_order_release);
}

static void *worker_main(void *p) {
    worker_arg *wa = p;
    ifd_serve_version *v = wa->v;
    ifd_session *session = v->sessions[wa->index];
    ifd_serve_repo *repo = v->model->repo;
    ifd_free(wa);
    pthread_setname_np(pthread_self(), "inferd-worker"); /* top and the tests tell them apart */
    if (v->batching) {
        ifd_serve_job **batch = ifd_calloc(MAX_BATCH_JOBS, sizeof *batch);
        if (batch) {
            batch_worker(v, session, batch);
            ifd_free(batch);
            return NULL;
        }
        /* no memory for the batch array: serve one request at a time */
    }
    for (;;) {
        /* a worker that just finished waits a few microseconds for the next request before it
         * sleeps: under load that saves the futex sleep and wakeup (two context switches)
         * per request, which cost more than a small model's inference */
        for (int spin = 0; spin < WORKER_SPIN &&
                           !atomic_load_explicit(&v->queued_hint, memory_order_relaxed);
             spin++)
            spin_pause();
        pthread_mutex_lock(&v->mu);
        while (!v->head && !v->stop) pthread_cond_wait(&v->cv, &v->mu);
        if (v->stop) {
            pthread_mutex_unlock(&v->mu);
            break;
        }
        ifd_serve_job *job = v->head;
        v->head = job->next;
        if (!v->head) v->tail = NULL;
        v->queued--;
        atomic_store_explicit(&v->queued_hint, v->queued, memory_order_relaxed);
        pthread_mutex_unlock(&v->mu);
        job->next = NULL;
        ifd_serve_infer(v, session, job, repo->opts);
        note_cost(v, job);
        maybe_make_inline(v);
        finish_job(v, job);
    }
    return NULL;
}

bool ifd_serve_try_inline(ifd_serve_job *job) {
    ifd_serve_version *v = job->version;
    ifd_serve_repo *repo = v->model->repo;
    ifd_session *session = atomic_load_explicit(&v->inline_session, memory_order_acquire);
    if (!session || job->body_len > INLINE_MAX_BODY ||
        atomic_load_explicit(&v->queued_hint, memory_order_relaxed) ||
        atomic_load_explicit(&v->cost_ns, memory_order_relaxed) >
            (long long)repo->opts->inline_max_us * 1000)
        return false;
    if (atomic_exchange_explicit(&v->inline_busy, true, memory_order_acquire)) return false;
    clock_gettime(CLOCK_MONOTONIC, &job->enqueued);
    job->t_enqueued = (int64_t)job->enqueued.tv_sec * 1000000000LL + job->enqueued.tv_nsec;
    job->t_dequeued = job->t_enqueued; /* no queue: one clock read for both */
    ifd_version_metrics_pending(v->vm, +1);
    ifd_serve_infer(v, session, job, repo->opts);
    note_cost(v, job);
    atomic_store_explicit(&v->inline_busy, false, memory_order_release);
    record_job(v, job);
    return true;
}

bool ifd_serve_submit(ifd_serve_job *job) {
    ifd_serve_version *v = job->version;
    bool ok = false;
    clock_gettime(CLOCK_MONOTONIC, &job->enqueued);
    job->t_enqueued = (int64_t)job->enqueued.tv_sec * 1000000000LL + job->enqueued.tv_nsec;
    pthread_mutex_lock(&v->mu);
    int64_t cap = v->config.max_queue_size;
    if (!v->stop && (cap == 0 || v->queued < (size_t)cap)) {
        job->next = NULL;
        if (v->tail) v->tail->next = job;
        else v->head = job;
        v->tail = job;
        v->queued++;
        atomic_store_explicit(&v->queued_hint, v->queued, memory_order_relaxed);
        /* a gathering batcher must hear it, not only some idle worker */
        if (v->batching) pthread_cond_broadcast(&v->cv);
        else pthread_cond_signal(&v->cv);
        ok = true;
    }
    pthread_mutex_unlock(&v->mu);
    if (ok) ifd_version_metrics_pending(v->vm, +1);
    return ok;
}

/* ---- version references ------------------------------------------------------------------------ */

void ifd_serve_version_acquire(ifd_serve_version *v) { atomic_fetch_add(&v->refs, 1); }

/* The last reference hands the version to the loader thread, which stops its workers and frees
 * it (a worker or the I/O thread cannot join the workers itself). */
void ifd_serve_version_release(ifd_serve_version *v) {
    if (atomic_fetch_sub(&v->refs, 1) != 1) return;
    ifd_serve_repo *repo = v->model->repo;
    pthread_mutex_lock(&repo->mu);
    v->next_dead = repo->dead;
    repo->dead = v;
    pthread_cond_broadcast(&repo->cv);
    pthread_mutex_unlock(&repo->mu);
}

/* ---- loading -------------------------------------------------------------------------------- */

static void file_sig(const char *path, struct ifd_serve_file_sig *sig) {
    struct stat st;
    memset(sig, 0, sizeof *sig);
    if (stat(path, &st) != 0) return;
    sig->dev = (long long)st.st_dev;
    sig->ino = (long long)st.st_ino;
    sig->size = (long long)st.st_size;
    sig->mtime_ns = (long long)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
}

/* The metrics bundle of version `number` of m, shared by every load of that number. Loader
 * thread only (and the final free). NULL when metrics are off or out of memory. */
static struct ifd_version_metrics *vm_slot_acquire(ifd_serve_model *m, int64_t number) {
    ifd_serve_repo *repo = m->repo;
    if (!repo->metrics) return NULL;
    for (size_t i = 0; i < m->n_vm_slots; i++)
        if (m->vm_slots[i].number == number) {
            m->vm_slots[i].users++;
            return m->vm_slots[i].vm;
        }
    struct ifd_vm_slot *slots = ifd_realloc(m->vm_slots, (m->n_vm_slots + 1) * sizeof *slots);
    if (!slots) return NULL;
    m->vm_slots = slots;
    ifd_version_metrics *vm = NULL;
    if (ifd_serve_metrics_version_add(repo->metrics, m->name, number, &vm) != IFD_OK || !vm)
        return NULL;
    slots[m->n_vm_slots++] = (struct ifd_vm_slot){number, vm, 1};
    return vm;
}

/* After the last load of that number is freed (its workers joined), its series go. */
static void vm_slot_release(ifd_serve_model *m, int64_t number) {
    ifd_serve_repo *repo = m->repo;
    for (size_t i = 0; i < m->n_vm_slots; i++) {
        if (m->vm_slots[i].number != number || --m->vm_slots[i].users > 0) continue;
        ifd_serve_metrics_version_remove(repo->metrics, m->vm_slots[i].vm);
        m->vm_slots[i] = m->vm_slots[--m->n_vm_slots];
        break;
    }
    if (m->n_vm_slots == 0 && m->removed) ifd_serve_metrics_model_remove(repo->metrics, m->name);
}

static ifd_serve_version *version_new(ifd_serve_model *m, int64_t number,
                                      const ifd_serve_config *cfg) {
    ifd_serve_version *v = ifd_calloc(1, sizeof *v);
    if (!v) return NULL;
    v->model = m;
    v->number = number;
    v->config = *cfg;
    atomic_init(&v->refs, 1); /* the model's list, or the loader until it is listed */
    atomic_init(&v->state, IFD_VERSION_LOADING);
    pthread_mutex_init(&v->mu, NULL);
    pthread_condattr_t ca; /* the batcher's deadlines are CLOCK_MONOTONIC, as job->enqueued */
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&v->cv, &ca);
    pthread_condattr_destroy(&ca);
    /* every version is on the live list, so that stopping the server reaches retired ones */
    ifd_serve_repo *repo = m->repo;
    v->vm = vm_slot_acquire(m, number);
    pthread_mutex_lock(&repo->mu);
    v->live_next = repo->live;
    if (repo->live) repo->live->live_prev = v;
    repo->live = v;
    pthread_mutex_unlock(&repo->mu);
    return v;
}

/* Check config.json's input/output entries against the model, and let their dims fix what the
 * model leaves free (requests are then checked against them). */
static ifd_status apply_io_config(ifd_serve_version *v) {
    const ifd_serve_config *cfg = &v->config;
    int batch = cfg->max_batch_size > 0;
    for (size_t i = 0; i < cfg->n_io; i++) {
        const ifd_serve_io_config *io = &cfg->io[i];
        const char *kind = io->is_output ? "output" : "input";
        ifd_io_info *list = io->is_output ? v->outputs : v->inputs;
        size_t n = io->is_output ? v->n_outputs : v->n_inputs, k = 0;
        while (k < n && strcmp(list[k].name, io->name)) k++;
        if (k == n) {
            char names[512] = "";
            for (size_t j = 0; j < n; j++)
                snprintf(names + strlen(names), sizeof names - strlen(names), "%s'%s'",
                         j ? ", " : "", list[j].name);
            return ifd_error(IFD_ERR_INVALID_ARGUMENT, "config.json %s '%s' is not an %s of the "
                             "model (it has %s)", kind, io->name, kind, n ? names : "none");
        }
        ifd_io_info *mi = &list[k];
        if (io->dtype != IFD_DTYPE_UNDEFINED && io->dtype != mi->dtype)
            return ifd_error(IFD_ERR_INVALID_ARGUMENT, "config.json %s '%s' has data_type %s but "
                             "the model's is %s", kind, io->name, ifd_dtype_name(io->dtype),
                             ifd_dtype_name(mi->dtype));
        if (io->rank < 0) continue;
        if (io->rank + batch != mi->rank)
            return ifd_error(IFD_ERR_INVALID_ARGUMENT, "config.json %s '%s' has %d dims%s but the "
                             "model's has rank %d", kind, io->name, io->rank,
                             batch ? " (plus the batch dim, as max_batch_size > 0)" : "",
                             mi->rank);
        for (int d = 0; d < io->rank; d++) {
            int64_t want = io->dims[d], *have = &mi->dims[d + batch];
            if (want < 0) continue;
            if (*have >= 0 && *have != want)
                return ifd_error(IFD_ERR_INVALID_ARGUMENT, "config.json %s '%s' dim %d is %lld "
                                 "but the model fixes it to %lld", kind, io->name, d,
                                 (long long)want, (long long)*have);
            *have = want;
        }
    }
    return IFD_OK;
}

/* Drift watching for every input and output, against <version>/baseline.json when present. */
static ifd_status drift_setup(ifd_serve_version *v, const char *model_path) {
    if (!v->config.drift_enabled || v->model->repo->opts->no_drift) return IFD_OK;
    ifd_status st = IFD_OK;
    size_t n = v->n_inputs + v->n_outputs;
    const char **names = ifd_calloc(n + 1, sizeof *names);
    bool *is_output = ifd_calloc(n + 1, sizeof *is_output);
    int64_t *rank2 = ifd_calloc(n + 1, sizeof *rank2);
    char *bpath = ifd_malloc(strlen(model_path) + sizeof "baseline.json");
    void *text = NULL;
    size_t len = 0;
    if (!names || !is_output || !rank2 || !bpath) {
        st = ifd_error(IFD_ERR_NO_MEMORY, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        const ifd_io_info *io = i < v->n_inputs ? &v->inputs[i] : &v->outputs[i - v->n_inputs];
        names[i] = io->name;
        is_output[i] = i >= v->n_inputs;
        rank2[i] = io->rank == 2 ? io->dims[1] : 0;
    }
    strcpy(bpath, model_path);
    char *slash = strrchr(bpath, '/');
    strcpy(slash ? slash + 1 : bpath, "baseline.json");
    if (access(bpath, F_OK) == 0 && (st = ifd_read_file(bpath, 64 << 20, &text, &len)) != IFD_OK)
        goto out;
    st = ifd_drift_create(n, names, is_output, rank2, text, len, v->config.drift_window,
                          &v->drift);
    if (st != IFD_OK) {
        st = ifd_error(st, "%s", ifd_last_error());
        goto out;
    }
    /* scores are exported only for tensors that have a baseline */
    if (v->vm && text) {
        if (!(v->drift_series = ifd_calloc(n + 1, sizeof *v->drift_series))) {
            st = ifd_error(IFD_ERR_NO_MEMORY, "out of memory");
            goto out;
        }
        for (size_t i = 0; i < n; i++) {
            ifd_drift_summary sum;
            ifd_drift_summarize(v->drift, i, &sum);
            if (sum.has_baseline &&
                (st = ifd_version_metrics_drift_series(v->vm, names[i],
                                                       &v->drift_series[i])) != IFD_OK)
                goto out;
        }
        if ((st = ifd_version_metrics_drift_threshold(v->vm, v->config.drift_threshold)) != IFD_OK)
            goto out;
    }
out:
    ifd_free(names);
    ifd_free(is_output);
    ifd_free(rank2);
    ifd_free(bpath);
    ifd_free(text);
    return st;
}

static ifd_status version_load(ifd_serve_version *v, const char *path, int threads) {
    ifd_status st;
    ifd_session_options so;
    ifd_session_options_init(&so);
    so.num_threads = threads;
    if ((st = ifd_model_load_file(path, &v->onnx)) != IFD_OK) return st;
    v->n_instances = v->config.instance_count;
    v->sessions = ifd_calloc((size_t)v->n_instances, sizeof *v->sessions);
    v->threads = ifd_calloc((size_t)v->n_instances, sizeof *v->threads);
    if (!v->sessions || !v->threads) return ifd_error(IFD_ERR_NO_MEMORY, "out of memory");
    for (int i = 0; i < v->n_instances; i++)
        if ((st = ifd_session_create(v->onnx, &so, &v->sessions[i])) != IFD_OK) return st;
    v->n_inputs = ifd_session_input_count(v->sessions[0]);
    v->n_outputs = ifd_session_output_count(v->sessions[0]);
    v->inputs = ifd_calloc(v->n_inputs ? v->n_inputs : 1, sizeof *v->inputs);
    v->outputs = ifd_calloc(v->n_outputs ? v->n_outputs : 1, sizeof *v->outputs);
    if (!v->inputs || !v->outputs) return ifd_error(IFD_ERR_NO_MEMORY, "out of memory");
    for (size_t i = 0; i < v->n_inputs; i++) {
        if ((st = ifd_session_input_info(v->sessions[0], i, &v->inputs[i])) != IFD_OK) return st;
        if (!ifd_kserve_dtype_name(v->inputs[i].dtype))
            return ifd_error(IFD_ERR_UNSUPPORTED, "input '%s' has type %s, which KServe v2 JSON "
                             "cannot carry yet", v->inputs[i].name,
                             ifd_dtype_name(v->inputs[i].dtype));
    }
    for (size_t i = 0; i < v->n_outputs; i++) {
        if ((st = ifd_session_output_info(v->sessions[0], i, &v->outputs[i])) != IFD_OK)
            return st;
        if (!ifd_kserve_dtype_name(v->outputs[i].dtype))
            return ifd_error(IFD_ERR_UNSUPPORTED, "output '%s' has type %s, which KServe v2 JSON "
                             "cannot carry yet", v->outputs[i].name,
                             ifd_dtype_name(v->outputs[i].dtype));
    }
    if ((st = apply_io_config(v)) != IFD_OK) return st;
    if ((st = drift_setup(v, path)) != IFD_OK) return st;
    const ifd_serve_config *cfg = &v->config;
    v->batching = cfg->dynamic_batching && cfg->max_batch_size > 0 && v->n_inputs > 0;
    for (size_t i = 0; v->batching && i < v->n_inputs; i++)
        if (v->inputs[i].rank == 0 || (v->inputs[i].rank > 0 && v->inputs[i].dims[0] >= 0)) {
            fprintf(stderr, "inferd: model '%s' version %lld: input '%s' has no variable dim 0 "
                    "to batch along; dynamic_batching is off\n", v->model->name,
                    (long long)v->number, v->inputs[i].name);
            v->batching = false;
        }
    for (int i = 0; i < v->n_instances; i++) {
        worker_arg *wa = ifd_malloc(sizeof *wa);
        if (!wa) return ifd_error(IFD_ERR_NO_MEMORY, "out of memory");
        wa->v = v;
        wa->index = i;
        if (pthread_create(&v->threads[i], NULL, worker_main, wa)) {
            ifd_free(wa);
            return ifd_error(IFD_ERR_INTERNAL, "cannot start a worker thread");
        }
        v->n_threads_started++;
    }
    return IFD_OK;
}

static void version_stop(ifd_serve_version *v, ifd_serve_job **leftover) {
    pthread_mutex_lock(&v->mu);
    v->stop = true;
    pthread_cond_broadcast(&v->cv);
    pthread_mutex_unlock(&v->mu);
    for (int i = 0; i < v->n_threads_started; i++) pthread_join(v->threads[i], NULL);
    v->n_threads_started = 0;
    while (v->head) {
        ifd_serve_job *j = v->head;
        job_drop_call(j);
        v->head = j->next;
        j->next = *leftover;
        *leftover = j;
    }
    v->tail = NULL;
    v->queued = 0;
    atomic_store_explicit(&v->queued_hint, 0, memory_order_relaxed);
}

static void version_free(ifd_serve_version *v) {
    if (!v) return;
    ifd_serve_repo *repo = v->model->repo;
    pthread_mutex_lock(&repo->mu);
    if (v->live_prev) v->live_prev->live_next = v->live_next;
    else repo->live = v->live_next;
    if (v->live_next) v->live_next->live_prev = v->live_prev;
    pthread_mutex_unlock(&repo->mu);
    for (int i = 0; v->sessions && i < v->n_instances; i++) ifd_session_free(v->sessions[i]);
    ifd_session_free(atomic_load(&v->inline_session));
    ifd_free(v->sessions);
    ifd_free(v->threads);
    ifd_free(v->inputs);
    ifd_free(v->outputs);
    ifd_model_free(v->onnx);
    ifd_drift_free(v->drift);
    ifd_free(v->drift_series);
    if (v->vm) vm_slot_release(v->model, v->number);
    ifd_free(v->error);
    pthread_mutex_destroy(&v->mu);
    pthread_cond_destroy(&v->cv);
    ifd_free(v);
}

/* A version that failed to load keeps only its number and error (it is listed for status). */
static void version_drop_runtime(ifd_serve_version *v) {
    ifd_serve_job *left = NULL;
    version_stop(v, &left);
    for (int i = 0; v->sessions && i < v->n_instances; i++) ifd_session_free(v->sessions[i]);
    ifd_session_free(atomic_exchange(&v->inline_session, NULL));
    ifd_free(v->sessions);
    v->sessions = NULL;
    v->n_instances = 0;
    v->n_inputs = v->n_outputs = 0; /* their names belonged to the sessions */
    ifd_model_free(v->onnx);
    v->onnx = NULL;
    ifd_drift_free(v->drift);
    v->drift = NULL;
    ifd_free(v->drift_series);
    v->drift_series = NULL;
}

/* Stop and free a version nobody references (the loader's dead list, a failed replacement). */
static void version_destroy(ifd_serve_version *v) {
    ifd_serve_job *left = NULL;
    version_stop(v, &left); /* no job can be queued: each would hold a reference */
    version_free(v);
}

static void model_free(ifd_serve_model *m) {
    if (!m) return;
    for (size_t i = 0; i < m->n_versions; i++) version_free(m->versions[i]);
    ifd_free(m->versions);
    ifd_free(m->vm_slots);
    ifd_free(m->name);
    ifd_free(m->error);
    pthread_mutex_destroy(&m->mu);
    ifd_free(m);
}

static void set_string(char **dst, const char *src) {
    ifd_free(*dst);
    *dst = src ? ifd_strdup(src) : NULL;
}

/* Index of version `number` in m->versions, or n_versions. Caller holds m->mu. */
static size_t find_version(const ifd_serve_model *m, int64_t number) {
    size_t i = 0;
    while (i < m->n_versions && m->versions[i]->number != number) i++;
    return i;
}

/* Insert v keeping the list ascending. Caller holds m->mu. */
static bool insert_version(ifd_serve_model *m, ifd_serve_version *v) {
    if (m->n_versions == m->cap_versions) {
        size_t cap = m->cap_versions ? m->cap_versions * 2 : 4;
        ifd_serve_version **nv = ifd_realloc(m->versions, cap * sizeof *nv);
        if (!nv) return false;
        m->versions = nv;
        m->cap_versions = cap;
    }
    size_t i = m->n_versions;
    while (i > 0 && m->versions[i - 1]->number > v->number) {
        m->versions[i] = m->versions[i - 1];
        i--;
    }
    m->versions[i] = v;
    m->n_versions++;
    return true;
}

/* Take versions[i] off the list (its reference passes to the caller). Caller holds m->mu. */
static ifd_serve_version *remove_version(ifd_serve_model *m, size_t i) {
    ifd_serve_version *v = m->versions[i];
    memmove(m->versions + i, m->versions + i + 1, (m->n_versions - i - 1) * sizeof *m->versions);
    m->n_versions--;
    return v;
}

/* Take every version off the list and drop the list's references. */
static void model_retire_all(ifd_serve_model *m) {
    for (;;) {
        pthread_mutex_lock(&m->mu);
        ifd_serve_version *v = m->n_versions ? remove_version(m, m->n_versions - 1) : NULL;
        pthread_mutex_unlock(&m->mu);
        if (!v) break;
        ifd_serve_version_release(v);
    }
}

static bool policy_wants(const ifd_serve_config *c, const int64_t *all, size_t n, size_t i) {
    switch (c->policy) {
    case IFD_POLICY_ALL: return true;
    case IFD_POLICY_LATEST: return i + (size_t)c->latest_n >= n;
    default:
        for (size_t k = 0; k < c->n_specific; k++)
            if (c->specific[k] == all[i]) return true;
        return false;
    }
}

/* The config without what can change while versions keep serving (labels, traffic). */
static void config_core(const ifd_serve_config *c, ifd_serve_config *out) {
    *out = *c;
    out->n_labels = 0;
    memset(out->labels, 0, sizeof out->labels);
    memset(out->label_version, 0, sizeof out->label_version);
    out->n_traffic = 0;
    memset(out->traffic_version, 0, sizeof out->traffic_version);
    memset(out->traffic_weight, 0, sizeof out->traffic_weight);
}

static bool same_core(const ifd_serve_config *a, const ifd_serve_config *b) {
    ifd_serve_config *x = ifd_malloc(2 * sizeof *x);
    if (!x) return false;
    config_core(a, &x[0]);
    config_core(b, &x[1]);
    bool same = memcmp(&x[0], &x[1], sizeof *x) == 0;
    ifd_free(x);
    return same;
}

static double seconds_since(const struct timespec *t) { return (double)since_us(t) / 1e6; }

/* Load version `number` of m (new, changed on disk, or retried) and put it on the list; an
 * available version of the same number keeps serving when the new load fails. */
static void sync_version(ifd_serve_repo *repo, ifd_serve_model *m, const char *dir, int64_t number,
                         const struct ifd_serve_file_sig *sig, const ifd_serve_config *cfg) {
    char vname[32], err[512];
    snprintf(vname, sizeof vname, "%lld", (long long)number);
    ifd_serve_version *v = version_new(m, number, cfg);
    char *path = path_join(dir, vname, "model.onnx");
    if (!v || !path) {
        ifd_free(path);
        if (v) version_free(v);
        pthread_mutex_lock(&m->mu);
        set_string(&m->error, "out of memory while loading");
        pthread_mutex_unlock(&m->mu);
        return;
    }
    v->sig = *sig;
    /* a version seen for the first time is listed as LOADING while it loads */
    pthread_mutex_lock(&m->mu);
    bool listed = find_version(m, number) == m->n_versions && insert_version(m, v);
    pthread_mutex_unlock(&m->mu);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    ifd_status st = version_load(v, path, repo->opts->threads);
    ifd_free(path);
    v->load_seconds = seconds_since(&t0);
    err[0] = 0;
    if (st != IFD_OK) {
        snprintf(err, sizeof err, "%s", ifd_last_error()[0] ? ifd_last_error()
                                                            : ifd_status_string(st));
        strip_root(err, repo->opts->model_repository);
        fprintf(stderr, "inferd: model '%s' version %lld failed to load: %s\n", m->name,
                (long long)number, err);
        version_drop_runtime(v);
    } else {
        fprintf(stderr, "inferd: model '%s' version %lld loaded in %.3f s\n", m->name,
                (long long)number, v->load_seconds);
    }
    ifd_serve_version *old = NULL, *drop = NULL;
    pthread_mutex_lock(&m->mu);
    size_t i = find_version(m, number);
    if (listed) {
        /* v is on the list (nobody could take it while LOADING) */
        if (st != IFD_OK) set_string(&v->error, err);
    } else if (i == m->n_versions) {
        /* the old entry went away meanwhile (an unload): list v only if it works */
        if (st != IFD_OK || !insert_version(m, v)) drop = v;
    } else if (st == IFD_OK || atomic_load(&m->versions[i]->state) != IFD_VERSION_AVAILABLE) {
        old = m->versions[i];
        m->versions[i] = v;
        if (st != IFD_OK) set_string(&v->error, err);
    } else {
        /* the reload failed: the serving version stays and carries the error */
        char msg[600];
        snprintf(msg, sizeof msg, "reload failed, still serving the previous load: %s", err);
        set_string(&m->versions[i]->error, msg);
        drop = v;
    }
    if (drop != v)
        atomic_store(&v->state, st == IFD_OK ? IFD_VERSION_AVAILABLE : IFD_VERSION_FAILED);
    pthread_mutex_unlock(&m->mu);
    if (st != IFD_OK) ifd_serve_metrics_load_failure(repo->metrics, m->name);
    /* a failed reload shares its series with the version still serving: leave them */
    if (drop != v) ifd_version_metrics_loaded(v->vm, st == IFD_OK, v->load_seconds);
    if (old) ifd_serve_version_release(old);
    if (drop) version_destroy(drop);
}

/* Bring model m in line with its folder: config.json, the versions on disk and the version
 * policy. Returns 200, or an HTTP status with the reason in msg (for explicit load requests). */
static int model_sync(ifd_serve_repo *repo, ifd_serve_model *m, bool retry_failed, char *msg,
                      size_t msgsize) {
    const char *root = repo->opts->model_repository;
    char err[512];
    int status = 200;
    int64_t *numbers = NULL;
    struct ifd_serve_file_sig *sigs = NULL;
    bool *on_disk_wanted = NULL;
    size_t n_numbers = 0;
    ifd_serve_config *cfg = ifd_malloc(sizeof *cfg);
    char *dir = path_join(root, m->name, NULL);
    char *cfg_path = dir ? path_join(dir, "config.json", NULL) : NULL;
    DIR *d = NULL;
    msg[0] = 0;
    if (!cfg || !cfg_path) {
        snprintf(msg, msgsize, "out of memory");
        status = 500;
        goto out;
    }
    if (!is_dir(dir)) {
        model_retire_all(m);
        pthread_mutex_lock(&m->mu);
        m->removed = true;
        set_string(&m->error, "the model's folder is gone from the repository");
        pthread_mutex_unlock(&m->mu);
        snprintf(msg, msgsize, "no model folder '%s' in the repository", m->name);
        status = 404;
        goto out;
    }
    ifd_serve_config_default(cfg);
    bool has_cfg = access(cfg_path, F_OK) == 0;
    if (has_cfg) {
        void *text = NULL;
        size_t len = 0;
        ifd_status st = ifd_read_file(cfg_path, 1 << 20, &text, &len);
        bool ok = st == IFD_OK && ifd_serve_config_parse(text, len, m->name, cfg, err, sizeof err);
        if (st != IFD_OK) snprintf(err, sizeof err, "config.json: %s", ifd_last_error());
        ifd_free(text);
        if (!ok) {
            strip_root(err, root);
            /* the versions already serving keep serving under their old config */
            pthread_mutex_lock(&m->mu);
            if (!m->error || strcmp(m->error, err))
                fprintf(stderr, "inferd: model '%s': %s\n", m->name, err);
            set_string(&m->error, err);
            m->removed = false;
            pthread_mutex_unlock(&m->mu);
            snprintf(msg, msgsize, "%s", err);
            status = 400;
            goto out;
        }
    }
    if (!(d = opendir(dir))) {
        snprintf(msg, msgsize, "cannot read the model's folder: %s", strerror(errno));
        status = 500;
        goto out;
    }
    numbers = ifd_calloc(MAX_VERSIONS_SCANNED, sizeof *numbers);
    sigs = ifd_calloc(MAX_VERSIONS_SCANNED, sizeof *sigs);
    on_disk_wanted = ifd_calloc(MAX_VERSIONS_SCANNED, sizeof *on_disk_wanted);
    if (!numbers || !sigs || !on_disk_wanted) {
        snprintf(msg, msgsize, "out of memory");
        status = 500;
        goto out;
    }
    struct dirent *e;
    while ((e = readdir(d)) && n_numbers < MAX_VERSIONS_SCANNED) {
        int64_t v;
        if (!ifd_serve_parse_version(e->d_name, &v)) continue;
        char *p = path_join(dir, e->d_name, "model.onnx");
        if (!p) continue;
        struct stat st;
        if (stat(p, &st) == 0 && S_ISREG(st.st_mode)) numbers[n_numbers++] = v;
        ifd_free(p);
    }
    qsort(numbers, n_numbers, sizeof *numbers, cmp_i64);
    for (size_t i = 0; i < n_numbers; i++) {
        char vname[32];
        snprintf(vname, sizeof vname, "%lld", (long long)numbers[i]);
        char *p = path_join(dir, vname, "model.onnx");
        if (p) file_sig(p, &sigs[i]);
        ifd_free(p);
        on_disk_wanted[i] = policy_wants(cfg, numbers, n_numbers, i);
    }
    /* labels and traffic apply at once; other changes reload every version */
    pthread_mutex_lock(&m->mu);
    bool reload_all = m->has_config != has_cfg || !same_core(cfg, &m->config);
    if (m->config.n_traffic != cfg->n_traffic ||
        memcmp(m->config.traffic_version, cfg->traffic_version, sizeof cfg->traffic_version) ||
        memcmp(m->config.traffic_weight, cfg->traffic_weight, sizeof cfg->traffic_weight))
        memset(m->traffic_credit, 0, sizeof m->traffic_credit);
    m->config = *cfg;
    m->has_config = has_cfg;
    m->removed = false;
    m->unloaded = false;
    set_string(&m->error, n_numbers ? NULL
                          : "no version folder (a positive integer) holds a model.onnx");
    pthread_mutex_unlock(&m->mu);
    for (size_t i = 0; i < n_numbers; i++) {
        if (!on_disk_wanted[i]) continue;
        pthread_mutex_lock(&m->mu);
        size_t k = find_version(m, numbers[i]);
        bool need = k == m->n_versions;
        if (!need) {
            ifd_serve_version *v = m->versions[k];
            bool changed = memcmp(&v->sig, &sigs[i], sizeof sigs[i]) != 0;
            int state = atomic_load(&v->state);
            need = changed || reload_all ||
                   (retry_failed && state == IFD_VERSION_FAILED);
        }
        pthread_mutex_unlock(&m->mu);
        if (need) sync_version(repo, m, dir, numbers[i], &sigs[i], cfg);
    }
    /* retire what the policy no longer wants; with "latest", an older version that is still on
     * disk keeps serving while a newer one it would give way to cannot load */
    pthread_mutex_lock(&m->mu);
    size_t want_avail = 0, avail = 0;
    for (size_t i = 0; i < n_numbers; i++) {
        if (!on_disk_wanted[i]) continue;
        want_avail++;
        size_t k = find_version(m, numbers[i]);
        if (k < m->n_versions && atomic_load(&m->versions[k]->state) == IFD_VERSION_AVAILABLE)
            avail++;
        else if (status == 200) {
            const char *why = k < m->n_versions && m->versions[k]->error ? m->versions[k]->error
                                                                         : "not loaded";
            snprintf(msg, msgsize, "version %lld: %s", (long long)numbers[i], why);
            status = 400;
        }
    }
    size_t spare = cfg->policy == IFD_POLICY_LATEST && avail < want_avail ? want_avail - avail : 0;
    pthread_mutex_unlock(&m->mu);
    for (;;) {
        ifd_serve_version *gone = NULL;
        pthread_mutex_lock(&m->mu);
        for (size_t k = m->n_versions; k-- > 0 && !gone;) {
            ifd_serve_version *v = m->versions[k];
            size_t i = 0;
            while (i < n_numbers && numbers[i] != v->number) i++;
            if (i < n_numbers && on_disk_wanted[i]) continue;
            if (i < n_numbers && spare && atomic_load(&v->state) == IFD_VERSION_AVAILABLE) {
                spare--;
                on_disk_wanted[i] = true; /* kept: do not count it twice */
                continue;
            }
            gone = remove_version(m, k);
        }
        pthread_mutex_unlock(&m->mu);
        if (!gone) break;
        fprintf(stderr, "inferd: model '%s' version %lld unloaded\n", m->name,
                (long long)gone->number);
        ifd_serve_version_release(gone);
    }
    if (n_numbers == 0) {
        snprintf(msg, msgsize, "no version folder (a positive integer) holds a model.onnx");
        status = 400;
    } else if (want_avail == 0) {
        pthread_mutex_lock(&m->mu);
        set_string(&m->error, "version_policy selects none of the versions on disk");
        pthread_mutex_unlock(&m->mu);
        snprintf(msg, msgsize, "version_policy selects none of the versions on disk");
        status = 400;
    }
out:
    if (d) closedir(d);
    ifd_free(numbers);
    ifd_free(sigs);
    ifd_free(on_disk_wanted);
    ifd_free(cfg_path);
    ifd_free(dir);
    ifd_free(cfg);
    return status;
}

/* The model named `name`, created (unlisted, no versions) if new; NULL when the repository is
 * full or out of memory. */
static ifd_serve_model *model_get(ifd_serve_repo *repo, const char *name) {
    ifd_serve_model *m = ifd_serve_repo_find(repo, name);
    if (m) return m;
    m = ifd_calloc(1, sizeof *m);
    if (!m || !(m->name = ifd_strdup(name))) {
        ifd_free(m);
        return NULL;
    }
    m->repo = repo;
    m->removed = true;
    pthread_mutex_init(&m->mu, NULL);
    ifd_serve_config_default(&m->config);
    pthread_mutex_lock(&repo->mu);
    if (repo->n_models < MAX_MODELS) {
        /* keep the array sorted; readers copy pointers under the lock */
        repo->models[repo->n_models++] = m;
        qsort(repo->models, repo->n_models, sizeof *repo->models, cmp_model);
    } else {
        fprintf(stderr, "inferd: more than %d models; '%s' is ignored\n", MAX_MODELS, name);
        model_free(m);
        m = NULL;
    }
    pthread_mutex_unlock(&repo->mu);
    return m;
}

/* Every model folder; models whose folder went away lose their versions. In explicit mode
 * only the loaded models are synced (the others are listed as unloaded). */
static void scan_all(ifd_serve_repo *repo, bool initial) {
    const char *root = repo->opts->model_repository;
    bool explicit_mode = repo->opts->model_control_mode == IFD_CONTROL_EXPLICIT;
    char msg[512];
    DIR *d = opendir(root);
    if (!d) {
        fprintf(stderr, "inferd: cannot read model repository '%s': %s\n", root, strerror(errno));
        return;
    }
    size_t n_seen = 0;
    char **seen = ifd_calloc(MAX_MODELS, sizeof *seen);
    struct dirent *e;
    while (seen && (e = readdir(d)) && n_seen < MAX_MODELS) {
        if (!ifd_serve_valid_model_name(e->d_name)) continue;
        char *dir = path_join(root, e->d_name, NULL);
        bool ok = dir && is_dir(dir);
        ifd_free(dir);
        if (!ok || !(seen[n_seen] = ifd_strdup(e->d_name))) continue;
        n_seen++;
    }
    closedir(d);
    for (size_t i = 0; i < n_seen; i++) {
        ifd_serve_model *m = model_get(repo, seen[i]);
        if (!m) continue;
        if (explicit_mode) {
            bool load = false;
            for (size_t k = 0; initial && k < repo->opts->n_load_models; k++)
                load |= !strcmp(repo->opts->load_models[k], "*") ||
                        !strcmp(repo->opts->load_models[k], m->name);
            pthread_mutex_lock(&m->mu);
            bool fresh = m->removed && m->n_versions == 0;
            if (fresh && !load) {
                m->removed = false;
                m->unloaded = true;
            }
            bool skip = !load && m->unloaded;
            pthread_mutex_unlock(&m->mu);
            if (skip) continue;
        }
        model_sync(repo, m, initial, msg, sizeof msg);
    }
    /* models whose folder is gone */
    pthread_mutex_lock(&repo->mu);
    size_t n = repo->n_models;
    pthread_mutex_unlock(&repo->mu);
    for (size_t i = 0; i < n; i++) {
        pthread_mutex_lock(&repo->mu);
        ifd_serve_model *m = repo->models[i];
        pthread_mutex_unlock(&repo->mu);
        bool found = false;
        for (size_t k = 0; k < n_seen && !found; k++) found = !strcmp(seen[k], m->name);
        if (found) continue;
        pthread_mutex_lock(&m->mu);
        bool listed = !m->removed || m->n_versions;
        pthread_mutex_unlock(&m->mu);
        if (!listed) continue;
        model_retire_all(m);
        pthread_mutex_lock(&m->mu);
        m->removed = true;
        pthread_mutex_unlock(&m->mu);
        fprintf(stderr, "inferd: model '%s' left the repository\n", m->name);
    }
    for (size_t i = 0; i < n_seen; i++) ifd_free(seen[i]);
    ifd_free(seen);
}

struct ifd_serve_control {
    ifd_serve_control *next;
    bool load;
    char name[IFD_KSERVE_MAX_NAME + 1];
    ifd_serve_control_fn done;
    void *arg;
};

static void run_control(ifd_serve_repo *repo, ifd_serve_control *c) {
    char msg[1024], inner[512];
    int status = 200;
    char *dir = path_join(repo->opts->model_repository, c->name, NULL);
    bool exists = dir && is_dir(dir);
    ifd_free(dir);
    ifd_serve_model *m = exists ? model_get(repo, c->name) : ifd_serve_repo_find(repo, c->name);
    msg[0] = 0;
    if (c->load) {
        if (!exists) {
            status = 404;
            snprintf(msg, sizeof msg, "no model folder '%s' in the repository", c->name);
        } else if (!m) {
            status = 500;
            snprintf(msg, sizeof msg, "cannot add model '%s' (too many models)", c->name);
        } else {
            status = model_sync(repo, m, true, inner, sizeof inner);
            if (status != 200) snprintf(msg, sizeof msg, "failed to load '%s': %s", c->name, inner);
        }
    } else if (!m) {
        status = 404;
        snprintf(msg, sizeof msg, "unknown model '%s'", c->name);
    } else {
        model_retire_all(m);
        pthread_mutex_lock(&m->mu);
        m->unloaded = true;
        m->removed = !exists;
        set_string(&m->error, NULL);
        pthread_mutex_unlock(&m->mu);
        fprintf(stderr, "inferd: model '%s' unloaded on request\n", c->name);
    }
    c->done(c->arg, status, msg);
}

static void free_dead(ifd_serve_repo *repo, ifd_serve_version *dead);

static void *loader_main(void *p) {
    ifd_serve_repo *repo = p;
    scan_all(repo, true);
    const char *delay = getenv("IFD_SERVE_TEST_LOAD_DELAY_MS"); /* tests observe not-ready */
    if (delay) usleep((useconds_t)atoi(delay) * 1000u);
    atomic_store(&repo->ready, true);
    bool poll = repo->opts->model_control_mode == IFD_CONTROL_POLL;
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    next.tv_sec += repo->opts->repository_poll_secs;
    pthread_mutex_lock(&repo->mu);
    for (;;) {
        bool due = false;
        while (!repo->stopping && !repo->controls && !repo->dead && !repo->rescan) {
            if (!poll) {
                pthread_cond_wait(&repo->cv, &repo->mu);
                continue;
            }
            if (pthread_cond_timedwait(&repo->cv, &repo->mu, &next) == ETIMEDOUT) {
                due = true;
                break;
            }
        }
        if (repo->stopping) break;
        ifd_serve_version *dead = repo->dead;
        ifd_serve_control *controls = repo->controls;
        bool rescan = repo->rescan || due;
        repo->dead = NULL;
        repo->controls = NULL;
        repo->controls_tail = &repo->controls;
        repo->rescan = false;
        pthread_mutex_unlock(&repo->mu);
        free_dead(repo, dead);
        while (controls) {
            ifd_serve_control *c = controls;
            controls = c->next;
            run_control(repo, c);
            ifd_free(c);
        }
        if (rescan) {
            scan_all(repo, false);
            clock_gettime(CLOCK_MONOTONIC, &next);
            next.tv_sec += repo->opts->repository_poll_secs;
        }
        pthread_mutex_lock(&repo->mu);
    }
    pthread_mutex_unlock(&repo->mu);
    return NULL;
}

/* ---- the repository --------------------------------------------------------------------------- */

static void free_dead(ifd_serve_repo *repo, ifd_serve_version *dead) {
    while (dead) {
        ifd_serve_version *v = dead;
        dead = v->next_dead;
        version_destroy(v);
    }
}

ifd_status ifd_serve_repo_create(const ifd_serve_options *opts, ifd_serve_done_fn done,
                                 void *done_arg, ifd_serve_repo **out) {
    ifd_serve_repo *r = ifd_calloc(1, sizeof *r);
    if (!r || !(r->models = ifd_calloc(MAX_MODELS, sizeof *r->models))) {
        ifd_free(r);
        return ifd_error(IFD_ERR_NO_MEMORY, "out of memory");
    }
    r->opts = opts;
    r->done = done;
    r->done_arg = done_arg;
    r->controls_tail = &r->controls;
    pthread_mutex_init(&r->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&r->cv, &ca);
    pthread_condattr_destroy(&ca);
    atomic_init(&r->ready, false);
    if (!opts->no_metrics && ifd_serve_metrics_create(&r->metrics) != IFD_OK) {
        ifd_serve_repo_free(r);
        return ifd_error(IFD_ERR_NO_MEMORY, "cannot create the metrics: %s", ifd_last_error());
    }
    if (opts->access_log) {
        ifd_status st = ifd_access_log_open(opts->access_log, opts->access_log_sample > 0
                                                                  ? opts->access_log_sample : 1,
                                            &r->access_log);
        if (st != IFD_OK) {
            ifd_serve_repo_free(r);
            return st;
        }
    }
    *out = r;
    return IFD_OK;
}

ifd_status ifd_serve_repo_start(ifd_serve_repo *repo) {
    if (repo->metrics && ifd_serve_metrics_start_sampler(repo->metrics, 1000) != IFD_OK)
        return ifd_error(IFD_ERR_INTERNAL, "cannot start the metrics sampler");
    if (pthread_create(&repo->loader, NULL, loader_main, repo))
        return ifd_error(IFD_ERR_INTERNAL, "cannot start the loader thread");
    repo->loader_started = true;
    return IFD_OK;
}

void ifd_serve_repo_rescan(ifd_serve_repo *repo) {
    pthread_mutex_lock(&repo->mu);
    repo->rescan = true;
    pthread_cond_broadcast(&repo->cv);
    pthread_mutex_unlock(&repo->mu);
}

int ifd_serve_repo_control(ifd_serve_repo *repo, bool load, const char *name,
                           ifd_serve_control_fn done, void *arg, char *err, size_t errsize) {
    if (repo->opts->model_control_mode != IFD_CONTROL_EXPLICIT) {
        snprintf(err, errsize, "explicit model %s is not allowed: the server runs with "
                 "--model-control-mode %s", load ? "load" : "unload",
                 repo->opts->model_control_mode == IFD_CONTROL_POLL ? "poll" : "none");
        return 400;
    }
    if (!ifd_serve_valid_model_name(name)) {
        snprintf(err, errsize, "bad model name");
        return 400;
    }
    ifd_serve_control *c = ifd_calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errsize, "out of memory");
        return 500;
    }
    c->load = load;
    snprintf(c->name, sizeof c->name, "%s", name);
    c->done = done;
    c->arg = arg;
    pthread_mutex_lock(&repo->mu);
    bool stopping = repo->stopping;
    if (!stopping) {
        *repo->controls_tail = c;
        repo->controls_tail = &c->next;
        pthread_cond_broadcast(&repo->cv);
    }
    pthread_mutex_unlock(&repo->mu);
    if (stopping) {
        ifd_free(c);
        snprintf(err, errsize, "server is shutting down");
        return 503;
    }
    return 0;
}

ifd_serve_job *ifd_serve_repo_stop(ifd_serve_repo *repo) {
    ifd_serve_job *left = NULL;
    pthread_mutex_lock(&repo->mu);
    repo->stopping = true;
    pthread_cond_broadcast(&repo->cv);
    pthread_mutex_unlock(&repo->mu);
    if (repo->loader_started) pthread_join(repo->loader, NULL);
    repo->loader_started = false;
    /* requests to load or unload that never ran */
    ifd_serve_control *c = repo->controls;
    repo->controls = NULL;
    repo->controls_tail = &repo->controls;
    while (c) {
        ifd_serve_control *next = c->next;
        c->done(c->arg, 503, "server is shutting down");
        ifd_free(c);
        c = next;
    }
    /* listed and retired versions alike (the loader is gone: nothing adds or frees any) */
    for (ifd_serve_version *v = repo->live; v; v = v->live_next) version_stop(v, &left);
    return left;
}

void ifd_serve_repo_free(ifd_serve_repo *repo) {
    if (!repo) return;
    /* versions released after the loader stopped; retired ones still referenced by a request
     * cannot exist here: the front end releases every job before freeing the repository */
    free_dead(repo, repo->dead);
    repo->dead = NULL;
    ifd_access_log_close(repo->access_log);
    for (size_t i = 0; i < repo->n_models; i++) model_free(repo->models[i]);
    ifd_serve_metrics_free(repo->metrics);
    ifd_free(repo->models);
    pthread_mutex_destroy(&repo->mu);
    pthread_cond_destroy(&repo->cv);
    ifd_free(repo);
}

ifd_serve_model *ifd_serve_repo_find(ifd_serve_repo *repo, const char *name) {
    ifd_serve_model *found = NULL;
    pthread_mutex_lock(&repo->mu);
    size_t lo = 0, hi = repo->n_models;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(repo->models[mid]->name, name);
        if (c == 0) {
            found = repo->models[mid];
            break;
        }
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    pthread_mutex_unlock(&repo->mu);
    return found;
}

/* Smooth weighted round robin over the traffic entries whose version can serve (nginx's
 * upstream algorithm: exact proportions over every window of sum-of-weights requests).
 * Caller holds m->mu. */
static ifd_serve_version *pick_traffic(ifd_serve_model *m) {
    const ifd_serve_config *c = &m->config;
    int64_t total = 0;
    size_t best = SIZE_MAX;
    ifd_serve_version *bv = NULL;
    for (size_t i = 0; i < c->n_traffic; i++) {
        size_t k = find_version(m, c->traffic_version[i]);
        if (k == m->n_versions || c->traffic_weight[i] == 0 ||
            atomic_load(&m->versions[k]->state) != IFD_VERSION_AVAILABLE)
            continue;
        m->traffic_credit[i] += c->traffic_weight[i];
        total += c->traffic_weight[i];
        if (best == SIZE_MAX || m->traffic_credit[i] > m->traffic_credit[best]) {
            best = i;
            bv = m->versions[k];
        }
    }
    if (bv) m->traffic_credit[best] -= total;
    return bv;
}

static const char *unready_reason(const ifd_serve_model *m) {
    if (m->error) return m->error;
    for (size_t i = m->n_versions; i-- > 0;)
        if (m->versions[i]->error) return m->versions[i]->error;
    if (m->unloaded) return "the model is unloaded";
    return m->n_versions ? "loading" : "no version is loaded";
}

int ifd_serve_acquire(ifd_serve_repo *repo, const char *model, int64_t number, const char *label,
                      ifd_serve_version **out, char *err, size_t errsize) {
    *out = NULL;
    ifd_serve_model *m = ifd_serve_repo_find(repo, model);
    if (!m) {
        if (!atomic_load(&repo->ready)) {
            snprintf(err, errsize, "server is not ready: models are still loading");
            return 503;
        }
        snprintf(err, errsize, "unknown model '%s'", model);
        return 404;
    }
    int status = 200;
    pthread_mutex_lock(&m->mu);
    if (m->removed && m->n_versions == 0) {
        snprintf(err, errsize, "unknown model '%s'", model);
        status = 404;
        goto out;
    }
    if (label) {
        size_t i = 0;
        while (i < m->config.n_labels && strcmp(m->config.labels[i], label)) i++;
        if (i == m->config.n_labels) {
            snprintf(err, errsize, "model '%s' has no version label '%s'", model, label);
            status = 404;
            goto out;
        }
        number = m->config.label_version[i];
    }
    ifd_serve_version *v = NULL;
    if (number) {
        size_t k = find_version(m, number);
        if (k == m->n_versions) {
            if (label) {
                snprintf(err, errsize, "model '%s' version %lld (label '%s') is not loaded",
                         model, (long long)number, label);
                status = 503;
            } else {
                snprintf(err, errsize, "unknown version %lld of model '%s'", (long long)number,
                         model);
                status = 404;
            }
            goto out;
        }
        v = m->versions[k];
        if (atomic_load(&v->state) != IFD_VERSION_AVAILABLE) {
            snprintf(err, errsize, "model '%s' version %lld is not ready: %s", model,
                     (long long)number, v->error ? v->error : "loading");
            ifd_version_metrics_request(v->vm, IFD_OUTCOME_NOT_FOUND, NULL);
            status = 503;
            goto out;
        }
    } else {
        v = pick_traffic(m);
        for (size_t k = m->n_versions; !v && k-- > 0;)
            if (atomic_load(&m->versions[k]->state) == IFD_VERSION_AVAILABLE) v = m->versions[k];
        if (!v) {
            snprintf(err, errsize, "model '%s' is not ready: %s", model, unready_reason(m));
            /* counted on the newest listed version (a model without any has no series) */
            if (m->n_versions)
                ifd_version_metrics_request(m->versions[m->n_versions - 1]->vm,
                                            IFD_OUTCOME_NOT_FOUND, NULL);
            status = 503;
            goto out;
        }
    }
    ifd_serve_version_acquire(v);
    *out = v;
out:
    pthread_mutex_unlock(&m->mu);
    return status;
}

void ifd_serve_model_put_versions(ifd_serve_model *m, ifd_sbuf *b) {
    bool first = true;
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < m->n_versions; i++) {
        if (atomic_load(&m->versions[i]->state) != IFD_VERSION_AVAILABLE) continue;
        ifd_sbuf_printf(b, first ? "\"%lld\"" : ",\"%lld\"", (long long)m->versions[i]->number);
        first = false;
    }
    pthread_mutex_unlock(&m->mu);
}

void ifd_serve_repo_index(ifd_serve_repo *repo, bool ready_only, ifd_sbuf *b) {
    bool first = true;
    ifd_sbuf_puts(b, "[");
    pthread_mutex_lock(&repo->mu);
    for (size_t i = 0; i < repo->n_models; i++) {
        ifd_serve_model *m = repo->models[i];
        pthread_mutex_lock(&m->mu);
        if (m->n_versions == 0 && !m->removed && !ready_only) {
            ifd_sbuf_puts(b, first ? "{\"name\":" : ",{\"name\":");
            first = false;
            ifd_sbuf_json_string(b, m->name);
            ifd_sbuf_puts(b, ",\"state\":\"UNAVAILABLE\",\"reason\":");
            ifd_sbuf_json_string(b, m->error ? m->error : m->unloaded ? "unloaded" : "");
            ifd_sbuf_puts(b, "}");
        }
        for (size_t k = 0; k < m->n_versions; k++) {
            ifd_serve_version *v = m->versions[k];
            int st = atomic_load(&v->state);
            if (ready_only && st != IFD_VERSION_AVAILABLE) continue;
            ifd_sbuf_puts(b, first ? "{\"name\":" : ",{\"name\":");
            first = false;
            ifd_sbuf_json_string(b, m->name);
            ifd_sbuf_printf(b, ",\"version\":\"%lld\",\"state\":\"%s\",\"reason\":",
                            (long long)v->number,
                            st == IFD_VERSION_AVAILABLE ? "READY"
                            : st == IFD_VERSION_LOADING ? "LOADING" : "UNAVAILABLE");
            ifd_sbuf_json_string(b, v->error ? v->error : m->error ? m->error : "");
            /* Triton's statistics names: batch elements served, session runs */
            ifd_sbuf_printf(b, ",\"inference_count\":%lld,\"execution_count\":%lld}",
                            (long long)atomic_load(&v->inference_count),
                            (long long)atomic_load(&v->execution_count));
        }
        pthread_mutex_unlock(&m->mu);
    }
    pthread_mutex_unlock(&repo->mu);
    ifd_sbuf_puts(b, "]");
}

void ifd_serve_repo_drift_json(ifd_serve_repo *repo, ifd_sbuf *b) {
    bool first = true;
    ifd_sbuf_puts(b, "[");
    pthread_mutex_lock(&repo->mu);
    for (size_t i = 0; i < repo->n_models; i++) {
        ifd_serve_model *m = repo->models[i];
        pthread_mutex_lock(&m->mu);
        for (size_t k = 0; k < m->n_versions; k++) {
            ifd_serve_version *v = m->versions[k];
            if (!v->drift || atomic_load(&v->state) != IFD_VERSION_AVAILABLE) continue;
            ifd_sbuf_puts(b, first ? "{\"model\":" : ",{\"model\":");
            first = false;
            ifd_sbuf_json_string(b, m->name);
            ifd_sbuf_printf(b, ",\"version\":\"%lld\",\"threshold\":%.9g,\"summary\":",
                            (long long)v->number, v->config.drift_threshold);
            ifd_drift_render_json(v->drift, b);
            ifd_sbuf_puts(b, "}");
        }
        pthread_mutex_unlock(&m->mu);
    }
    pthread_mutex_unlock(&repo->mu);
    ifd_sbuf_puts(b, "]");
}

size_t ifd_serve_repo_ready_count(ifd_serve_repo *repo) {
    size_t n = 0;
    pthread_mutex_lock(&repo->mu);
    for (size_t i = 0; i < repo->n_models; i++) {
        ifd_serve_model *m = repo->models[i];
        pthread_mutex_lock(&m->mu);
        bool ready = false;
        for (size_t k = 0; k < m->n_versions && !ready; k++)
            ready = atomic_load(&m->versions[k]->state) == IFD_VERSION_AVAILABLE;
        pthread_mutex_unlock(&m->mu);
        n += ready;
    }
    pthread_mutex_unlock(&repo->mu);
    return n;
}
