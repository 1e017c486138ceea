/* What one small KServe v2 infer request costs the server outside its HTTP layer: the
 * repository path http.c takes for an inline request (ifd_serve_acquire, ifd_serve_try_inline:
 * decode, session run, encode, drift, metrics; ifd_serve_metrics_http_request; freeing the
 * reply; ifd_serve_version_release), in process, in ns per request and allocations per
 * request; then each stage alone.
 *
 * Build (after the usual cmake build into BUILD; not part of the CMake targets):
 *   BUILD=/tmp/handler-build
 *   gcc -O2 -g -std=c11 -D_GNU_SOURCE -I include -I src -I $BUILD/gen bench/serve_handler.c \
 *       $BUILD/libinferd_serve.a $BUILD/libinferd_core.a $BUILD/libifd_onnx_proto.a \
 *       -lprotobuf-c -levent_pthreads -levent -ljansson -lm -lpthread -o /tmp/serve_handler
 * Run:
 *   /tmp/serve_handler [MODEL.onnx] [ITERATIONS] [request-only]
 * (default /work/shared/onnx-tests/node/test_identity/model.onnx, 200000). The model is copied
 * into a fresh repository under /tmp as ident/1/model.onnx; the body is the benchmark's
 * {"inputs":[{"name":"x","shape":[1,1,2,2],"datatype":"FP32","data":[1.0,2.0,3.0,4.0]}]}
 * (the input's name is taken from the model). */
#include "serve/metrics.h"
#include "serve/serve.h"

#include <inferd/inferd.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static atomic_int g_done;

static void on_done(ifd_serve_job *job, void *arg) { atomic_fetch_add(&g_done, 1); }

static void *jansson_malloc(size_t n) { return ifd_malloc(n); }
static void jansson_free(void *p) { ifd_free(p); }

static inline void spin_pause(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int copy_file(const char *from, const char *to) {
    FILE *in = fopen(from, "rb"), *out = in ? fopen(to, "wb") : NULL;
    if (!in || !out) {
        if (in) fclose(in);
        return -1;
    }
    char buf[1 << 16];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0) fwrite(buf, 1, n, out);
    fclose(in);
    return fclose(out);
}

#define TIME_LOOP(label, iters, body)                                                         \
    do {                                                                                      \
        size_t a0_ = ifd_alloc_count();                                                       \
        double t0_ = now_s();                                                                 \
        for (long i_ = 0; i_ < (iters); i_++) {                                               \
            body;                                                                             \
        }                                                                                     \
        double dt_ = now_s() - t0_;                                                           \
        printf("%-34s %8.0f ns  %5.2f allocs\n", label, dt_ * 1e9 / (double)(iters),          \
               (double)(ifd_alloc_count() - a0_) / (double)(iters));                          \
    } while (0)

int main(int argc, char **argv) {
    const char *model = argc > 1 ? argv[1] : "/work/shared/onnx-tests/node/test_identity/model.onnx";
    long iters = argc > 2 ? atol(argv[2]) : 200000;
    char dir[256], path[512];
    snprintf(dir, sizeof dir, "/tmp/serve_handler_repo.%d", (int)getpid());
    snprintf(path, sizeof path, "%s/ident", dir);
    mkdir(dir, 0755);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/ident/1", dir);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/ident/1/model.onnx", dir);
    if (copy_file(model, path)) {
        fprintf(stderr, "cannot copy %s to %s\n", model, path);
        return 1;
    }
    json_set_alloc_funcs(jansson_malloc, jansson_free);
    ifd_serve_options o;
    ifd_serve_options_init(&o);
    o.model_repository = dir;
    o.threads = 1;
    ifd_serve_repo *repo = NULL;
    if (ifd_serve_repo_create(&o, on_done, NULL, &repo) != IFD_OK ||
        ifd_serve_repo_start(repo) != IFD_OK) {
        fprintf(stderr, "repository: %s\n", ifd_last_error());
        return 1;
    }
    while (!atomic_load(&repo->ready)) usleep(1000);
    char err[1024];
    ifd_serve_version *v = NULL;
    if (ifd_serve_acquire(repo, "ident", 0, NULL, &v, err, sizeof err) != 200) {
        fprintf(stderr, "acquire: %s\n", err);
        return 1;
    }
    char body[512];
    int body_len = snprintf(body, sizeof body,
                            "{\"inputs\":[{\"name\":\"%s\",\"shape\":[1,1,2,2],\"datatype\":"
                            "\"FP32\",\"data\":[1.0,2.0,3.0,4.0]}]}",
                            v->inputs[0].name);
    ifd_serve_version_release(v);

    /* the workers measure the model's cost first; then the inline session appears */
    ifd_serve_job job;
    for (int k = 0; k < 1000 && !atomic_load(&v->inline_session); k++) {
        memset(&job, 0, sizeof job);
        ifd_serve_acquire(repo, "ident", 0, NULL, &v, err, sizeof err);
        job.body = body;
        job.body_len = (size_t)body_len;
        job.version = v;
        int want = atomic_load(&g_done) + 1;
        if (!ifd_serve_submit(&job)) return 1;
        while (atomic_load(&g_done) < want) usleep(10);
        if (job.status != 200) {
            fprintf(stderr, "status %d: %.*s\n", job.status, (int)job.reply_len, job.reply);
            return 1;
        }
        ifd_free(job.reply);
        ifd_serve_version_release(v);
        usleep(100);
    }
    if (!atomic_load(&v->inline_session)) {
        fprintf(stderr, "no inline session\n");
        return 1;
    }
    printf("body %d bytes, %ld iterations\n", body_len, iters);

    /* the whole path, as http.c's submit_job + send_job_reply take it */
    long failed = 0, not_inline = 0;
    for (int round = 0; round < 2; round++)
        TIME_LOOP(round ? "request (acquire..release)" : "request (warm-up)", iters, {
            memset(&job, 0, sizeof job);
            ifd_serve_acquire(repo, "ident", 0, NULL, &v, err, sizeof err);
            job.body = body;
            job.body_len = (size_t)body_len;
            job.version = v;
            if (!ifd_serve_try_inline(&job)) {
                /* as http.c does: to a worker (whose cost measures bring inline runs back
                 * after a hiccup, a preemption, made the moving average too high) */
                not_inline++;
                int want = atomic_load(&g_done) + 1;
                if (!ifd_serve_submit(&job)) return 1;
                while (atomic_load(&g_done) < want) spin_pause();
            }
            if (job.status != 200) failed++;
            ifd_serve_metrics_http_request(repo->metrics, job.status);
            ifd_free(job.reply);
            ifd_serve_version_release(v);
        });
    if (not_inline) printf("%ld requests went to a worker\n", not_inline);
    if (failed) printf("%ld requests failed\n", failed);

    if (argc > 3 && !strcmp(argv[3], "request-only")) goto done; /* for perf record */

    /* the stages alone, on the inline session */
    ifd_session *s = atomic_load(&v->inline_session);
    ifd_serve_acquire(repo, "ident", 0, NULL, &v, err, sizeof err);
    TIME_LOOP("acquire + release", iters, {
        ifd_serve_acquire(repo, "ident", 0, NULL, &v, err, sizeof err);
        ifd_serve_version_release(v);
    });
    ifd_kserve_request req;
    TIME_LOOP("kserve parse + free", iters, {
        if (ifd_kserve_request_parse(body, (size_t)body_len, o.max_tensor_bytes, &req, err,
                                     sizeof err))
            failed++;
        ifd_kserve_request_free(&req);
    });
    memset(&job, 0, sizeof job);
    job.body = body;
    job.body_len = (size_t)body_len;
    job.version = v;
    ifd_serve_call c;
    TIME_LOOP("serve decode + call free", iters, {
        if (!ifd_serve_decode(v, &job, &o, &c)) failed++;
        ifd_serve_call_free(&c);
    });
    ifd_serve_decode(v, &job, &o, &c);
    TIME_LOOP("session run + output free", iters, {
        if (ifd_session_run(s, v->n_inputs, c.in_names, c.in_tensors, c.n_out, c.out_names,
                            c.outs) != IFD_OK)
            failed++;
        for (size_t j = 0; j < c.n_out; j++) {
            ifd_tensor_free(c.outs[j]);
            c.outs[j] = NULL;
        }
    });
    ifd_session_run(s, v->n_inputs, c.in_names, c.in_tensors, c.n_out, c.out_names, c.outs);
    TIME_LOOP("serve encode + reply free", iters, {
        job.reply = NULL;
        ifd_serve_encode(v, &job, &c);
        ifd_free(job.reply);
    });
    job.reply = NULL;
    TIME_LOOP("drift observe", iters,
              ifd_serve_observe(v, c.in_tensors, c.n_out, c.out_names, c.outs));
    ifd_request_timing t = {.request_s = 4e-6, .queue_s = 1e-7, .input_s = 1e-6,
                            .compute_s = 1e-6, .output_s = 1e-6};
    TIME_LOOP("version metrics (pending, batch, request)", iters, {
        ifd_version_metrics_pending(v->vm, +1);
        ifd_version_metrics_batch(v->vm, 1);
        ifd_version_metrics_request(v->vm, IFD_OUTCOME_SUCCESS, &t);
        ifd_version_metrics_pending(v->vm, -1);
    });
    TIME_LOOP("http request metric", iters,
              ifd_serve_metrics_http_request(repo->metrics, 200));
    TIME_LOOP("clock_gettime(MONOTONIC)", iters, (void)ifd_serve_now_ns());
    ifd_serve_call_free(&c);
    ifd_serve_version_release(v);
    if (failed) printf("%ld stage calls failed\n", failed);

done:;
    ifd_serve_job *left = ifd_serve_repo_stop(repo);
    (void)left;
    ifd_serve_repo_free(repo);
    unlink(path);
    snprintf(path, sizeof path, "rm -rf %s", dir);
    if (system(path)) return 1;
    return failed ? 1 : 0;
}
