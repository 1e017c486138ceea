/* The model repository: DIR/<name>/[config.json] and DIR/<name>/<version>/model.onnx.
 * A background thread scans and loads once at start; each loaded version gets instance_count
 * sessions, each owned by one worker thread that takes jobs from the version's queue.
 * Models and versions live until the repository is freed (hot reload comes later). */
#include "serve/serve.h"

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
    int64_t timeout = v->model->config.default_timeout_us;
    if (timeout && since_us(&j->enqueued) > timeout) {
        job_drop_call(j);
        ifd_serve_job_error(j, 503, "request waited longer than the model's timeout of %lld us",
                            (long long)timeout);
        repo->done(j, repo->done_arg);
        return false;
    }
    if (j->call) return true;
    ifd_serve_call *c = ifd_malloc(sizeof *c);
    if (!c) {
        ifd_serve_job_error(j, 500, "out of memory");
    } else if (ifd_serve_decode(v, j, repo->opts, c)) {
        j->call = c;
        return true;
    }
    ifd_free(c);
    repo->done(j, repo->done_arg);
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
    const char *delay = getenv("IFD_SERVE_TEST_INFER_DELAY_MS"); /* tests: a slow model */
    if (delay) usleep((useconds_t)atoi(delay) * 1000u);
    if (!ins || !cat || !outs) goto oom;
    if (n == 1) {
        /* nothing to concatenate or split: the request's own tensors */
        st = ifd_session_run(session, v->n_inputs, c0->in_names, c0->in_tensors, c0->n_out,
                             c0->out_names, c0->outs);
        atomic_fetch_add(&v->execution_count, 1);
        if (st != IFD_OK) {
            ifd_serve_job_run_error(jobs[0], st);
        } else {
            ifd_serve_encode(v, jobs[0], c0);
            if (jobs[0]->status == 200) atomic_fetch_add(&v->inference_count, total);
        }
        goto out;
    }
    /* inputs: the requests' tensors end to end along dim 0, [total, ...] */
    for (size_t k = 0; k < v->n_inputs; k++) {
        const ifd_tensor *t0 = c0->in_tensors[k];
        int64_t dims[IFD_MAX_RANK];
        int rank = ifd_tensor_rank(t0);
        memcpy(dims, ifd_tensor_dims(t0), (size_t)rank * sizeof *dims);
        dims[0] = total;
        if (ifd_tensor_create(ifd_tensor_dtype(t0), rank, dims, &cat[k]) != IFD_OK) goto oom;
        char *dst = ifd_tensor_data(cat[k]);
        for (size_t i = 0; i < n; i++) {
            const ifd_tensor *t = jobs[i]->call->in_tensors[k];
            size_t nb = ifd_tensor_nbytes(t);
            if (nb) memcpy(dst, ifd_tensor_cdata(t), nb);
            dst += nb;
        }
        ins[k] = cat[k];
    }
    st = ifd_session_run(session, v->n_inputs, c0->in_names, ins, c0->n_out, c0->out_names, outs);
    atomic_fetch_add(&v->execution_count, 1);
    if (st != IFD_OK) {
        for (size_t i = 0; i < n; i++) ifd_serve_job_run_error(jobs[i], st);
        goto out;
    }
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
        int64_t dims[IFD_MAX_RANK];
        memcpy(dims, ifd_tensor_dims(outs[j]), (size_t)rank * sizeof *dims);
        size_t row = total ? ifd_tensor_nbytes(outs[j]) / (size_t)total : 0;
        const char *src = ifd_tensor_cdata(outs[j]);
        for (size_t i = 0; i < n; i++) {
            ifd_serve_call *c = jobs[i]->call;
            dims[0] = call_batch(c);
            if (ifd_tensor_create(ifd_tensor_dtype(outs[j]), rank, dims, &c->outs[j]) != IFD_OK)
                goto oom;
            size_t nb = row * (size_t)dims[0];
            if (nb) memcpy(ifd_tensor_data(c->outs[j]), src, nb);
            src += nb;
        }
    }
    for (size_t i = 0; i < n; i++) {
        ifd_serve_encode(v, jobs[i], jobs[i]->call);
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
    ifd_serve_repo *repo = v->model->repo;
    const ifd_serve_config *cfg = &v->model->config;
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
        }
        v->gathering = false;
        pthread_cond_broadcast(&v->cv);
        pthread_mutex_unlock(&v->mu);
        if (n == 0) continue;
        batch_run(v, session, batch, n, total);
        for (size_t i = 0; i < n; i++) {
            job_drop_call(batch[i]);
            repo->done(batch[i], repo->done_arg);
        }
    }
}

static void *worker_main(void *p) {
    worker_arg *wa = p;
    ifd_serve_version *v = wa->v;
    ifd_session *session = v->sessions[wa->index];
    ifd_serve_repo *repo = v->model->repo;
    ifd_free(wa);
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
        pthread_mutex_unlock(&v->mu);
        job->next = NULL;
        ifd_serve_infer(v, session, job, repo->opts);
        repo->done(job, repo->done_arg);
    }
    return NULL;
}

bool ifd_serve_submit(ifd_serve_job *job) {
    ifd_serve_version *v = job->version;
    bool ok = false;
    clock_gettime(CLOCK_MONOTONIC, &job->enqueued);
    pthread_mutex_lock(&v->mu);
    int64_t cap = v->model->config.max_queue_size;
    if (!v->stop && (cap == 0 || v->queued < (size_t)cap)) {
        job->next = NULL;
        if (v->tail) v->tail->next = job;
        else v->head = job;
        v->tail = job;
        v->queued++;
        /* a gathering batcher must hear it, not only some idle worker */
        if (v->batching) pthread_cond_broadcast(&v->cv);
        else pthread_cond_signal(&v->cv);
        ok = true;
    }
    pthread_mutex_unlock(&v->mu);
    return ok;
}

/* ---- loading -------------------------------------------------------------------------------- */

static ifd_status version_load(ifd_serve_version *v, const char *path, int threads) {
    ifd_status st;
    ifd_session_options so;
    ifd_session_options_init(&so);
    so.num_threads = threads;
    if ((st = ifd_model_load_file(path, &v->onnx)) != IFD_OK) return st;
    v->n_instances = v->model->config.instance_count;
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
        if (!ifd_kserve_dtype_name(v->inputs[i].dtype) || v->inputs[i].dtype == IFD_DTYPE_STRING)
            return ifd_error(IFD_ERR_UNSUPPORTED, "input '%s' has type %s, which KServe v2 JSON "
                             "cannot carry yet", v->inputs[i].name,
                             ifd_dtype_name(v->inputs[i].dtype));
    }
    for (size_t i = 0; i < v->n_outputs; i++) {
        if ((st = ifd_session_output_info(v->sessions[0], i, &v->outputs[i])) != IFD_OK)
            return st;
        if (!ifd_kserve_dtype_name(v->outputs[i].dtype) || v->outputs[i].dtype == IFD_DTYPE_STRING)
            return ifd_error(IFD_ERR_UNSUPPORTED, "output '%s' has type %s, which KServe v2 JSON "
                             "cannot carry yet", v->outputs[i].name,
                             ifd_dtype_name(v->outputs[i].dtype));
    }
    const ifd_serve_config *cfg = &v->model->config;
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
}

static void version_free(ifd_serve_version *v) {
    if (!v) return;
    for (int i = 0; v->sessions && i < v->n_instances; i++) ifd_session_free(v->sessions[i]);
    ifd_free(v->sessions);
    ifd_free(v->threads);
    ifd_free(v->inputs);
    ifd_free(v->outputs);
    ifd_model_free(v->onnx);
    ifd_free(v->error);
    pthread_mutex_destroy(&v->mu);
    pthread_cond_destroy(&v->cv);
    ifd_free(v);
}

static void model_free(ifd_serve_model *m) {
    if (!m) return;
    for (size_t i = 0; i < m->n_versions; i++) version_free(m->versions[i]);
    ifd_free(m->versions);
    ifd_free(m->name);
    ifd_free(m->error);
    ifd_free(m);
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

static ifd_serve_model *model_scan(ifd_serve_repo *repo, const char *dir, const char *name) {
    char err[512];
    ifd_serve_model *m = ifd_calloc(1, sizeof *m);
    int64_t *numbers = NULL;
    size_t n_numbers = 0;
    char *cfg_path = NULL;
    DIR *d = NULL;
    if (!m || !(m->name = ifd_strdup(name))) goto oom;
    m->repo = repo;
    ifd_serve_config_default(&m->config);
    if (!(cfg_path = path_join(dir, "config.json", NULL))) goto oom;
    void *text = NULL;
    size_t len = 0;
    if (access(cfg_path, F_OK) == 0) {
        ifd_status st = ifd_read_file(cfg_path, 1 << 20, &text, &len);
        if (st != IFD_OK) {
            snprintf(err, sizeof err, "config.json: %s", ifd_last_error());
            m->error = ifd_strdup(err);
            goto done;
        }
        bool ok = ifd_serve_config_parse(text, len, name, &m->config, err, sizeof err);
        ifd_free(text);
        if (!ok) {
            m->error = ifd_strdup(err);
            goto done;
        }
    }
    if (!(d = opendir(dir))) {
        snprintf(err, sizeof err, "cannot read folder: %s", strerror(errno));
        m->error = ifd_strdup(err);
        goto done;
    }
    numbers = ifd_calloc(MAX_VERSIONS_SCANNED, sizeof *numbers);
    if (!numbers) goto oom;
    struct dirent *e;
    while ((e = readdir(d)) && n_numbers < MAX_VERSIONS_SCANNED) {
        int64_t v;
        if (!ifd_serve_parse_version(e->d_name, &v)) continue;
        char *p = path_join(dir, e->d_name, "model.onnx");
        if (!p) goto oom;
        if (access(p, F_OK) == 0) numbers[n_numbers++] = v;
        ifd_free(p);
    }
    qsort(numbers, n_numbers, sizeof *numbers, cmp_i64);
    if (n_numbers == 0) {
        m->error = ifd_strdup("no version folder (a positive integer) holds a model.onnx");
        goto done;
    }
    m->versions = ifd_calloc(n_numbers, sizeof *m->versions);
    if (!m->versions) goto oom;
    for (size_t i = 0; i < n_numbers; i++) {
        if (!policy_wants(&m->config, numbers, n_numbers, i)) continue;
        ifd_serve_version *v = ifd_calloc(1, sizeof *v);
        if (!v) goto oom;
        v->model = m;
        v->number = numbers[i];
        pthread_mutex_init(&v->mu, NULL);
        pthread_condattr_t ca; /* the batcher's deadlines are CLOCK_MONOTONIC, as job->enqueued */
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&v->cv, &ca);
        pthread_condattr_destroy(&ca);
        m->versions[m->n_versions++] = v;
        char vname[32];
        snprintf(vname, sizeof vname, "%lld", (long long)numbers[i]);
        char *p = path_join(dir, vname, "model.onnx");
        if (!p) goto oom;
        ifd_status st = version_load(v, p, repo->opts->threads);
        ifd_free(p);
        if (st != IFD_OK) {
            snprintf(err, sizeof err, "%s", ifd_last_error()[0] ? ifd_last_error()
                                                                : ifd_status_string(st));
            strip_root(err, repo->opts->model_repository);
            v->error = ifd_strdup(err);
            ifd_serve_job *left = NULL;
            version_stop(v, &left);
            atomic_store(&v->state, IFD_VERSION_FAILED);
            fprintf(stderr, "inferd: model '%s' version %lld failed to load: %s\n", name,
                    (long long)v->number, err);
        } else {
            atomic_store(&v->state, IFD_VERSION_AVAILABLE);
        }
    }
    if (m->n_versions == 0 && !m->error)
        m->error = ifd_strdup("version_policy selects none of the versions on disk");
    goto done;
oom:
    if (m && !m->error) m->error = ifd_strdup("out of memory while loading");
done:
    if (m && m->error) fprintf(stderr, "inferd: model '%s': %s\n", name, m->error);
    if (d) closedir(d);
    ifd_free(numbers);
    ifd_free(cfg_path);
    if (m && !m->name) {
        model_free(m);
        m = NULL;
    }
    return m;
}

static void *loader_main(void *p) {
    ifd_serve_repo *repo = p;
    const char *root = repo->opts->model_repository;
    DIR *d = opendir(root);
    if (!d) {
        fprintf(stderr, "inferd: cannot read model repository '%s': %s\n", root, strerror(errno));
        atomic_store(&repo->ready, true);
        return NULL;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!ifd_serve_valid_model_name(e->d_name)) continue;
        char *dir = path_join(root, e->d_name, NULL);
        if (!dir) break;
        bool ok = is_dir(dir);
        ifd_serve_model *m = ok ? model_scan(repo, dir, e->d_name) : NULL;
        ifd_free(dir);
        if (!m) continue;
        pthread_mutex_lock(&repo->mu);
        if (repo->n_models < MAX_MODELS) {
            /* keep the array sorted; readers copy pointers under the lock */
            repo->models[repo->n_models++] = m;
            qsort(repo->models, repo->n_models, sizeof *repo->models, cmp_model);
            m = NULL;
        }
        pthread_mutex_unlock(&repo->mu);
        if (m) {
            ifd_serve_job *left = NULL;
            for (size_t i = 0; i < m->n_versions; i++) version_stop(m->versions[i], &left);
            model_free(m);
        }
    }
    closedir(d);
    const char *delay = getenv("IFD_SERVE_TEST_LOAD_DELAY_MS"); /* tests observe not-ready */
    if (delay) usleep((useconds_t)atoi(delay) * 1000u);
    atomic_store(&repo->ready, true);
    return NULL;
}

/* ---- the repository --------------------------------------------------------------------------- */

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
    pthread_mutex_init(&r->mu, NULL);
    atomic_init(&r->ready, false);
    *out = r;
    return IFD_OK;
}

ifd_status ifd_serve_repo_start(ifd_serve_repo *repo) {
    if (pthread_create(&repo->loader, NULL, loader_main, repo))
        return ifd_error(IFD_ERR_INTERNAL, "cannot start the loader thread");
    repo->loader_started = true;
    return IFD_OK;
}

ifd_serve_job *ifd_serve_repo_stop(ifd_serve_repo *repo) {
    ifd_serve_job *left = NULL;
    if (repo->loader_started) pthread_join(repo->loader, NULL);
    repo->loader_started = false;
    for (size_t i = 0; i < repo->n_models; i++)
        for (size_t k = 0; k < repo->models[i]->n_versions; k++)
            version_stop(repo->models[i]->versions[k], &left);
    return left;
}

void ifd_serve_repo_free(ifd_serve_repo *repo) {
    if (!repo) return;
    for (size_t i = 0; i < repo->n_models; i++) model_free(repo->models[i]);
    ifd_free(repo->models);
    pthread_mutex_destroy(&repo->mu);
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

ifd_serve_version *ifd_serve_model_version(ifd_serve_model *m, int64_t number) {
    for (size_t i = m->n_versions; i-- > 0;) {
        ifd_serve_version *v = m->versions[i];
        if (number && v->number == number) return v;
        if (!number && atomic_load(&v->state) == IFD_VERSION_AVAILABLE) return v;
    }
    return NULL;
}

bool ifd_serve_model_ready(ifd_serve_model *m) { return ifd_serve_model_version(m, 0) != NULL; }

size_t ifd_serve_repo_ready_count(ifd_serve_repo *repo) {
    size_t n = 0;
    pthread_mutex_lock(&repo->mu);
    for (size_t i = 0; i < repo->n_models; i++) n += ifd_serve_model_ready(repo->models[i]);
    pthread_mutex_unlock(&repo->mu);
    return n;
}
