/* inferd bench MODEL.onnx [-i NAME=FILE.npy]... [--threads N] [--iters N] [--warmup N]
 *                         [--dim NAME=V]... [--json] */
#include "cli.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void usage(FILE *f) {
    fprintf(f, "usage: inferd bench MODEL.onnx [-i NAME=FILE.npy]... [--threads N] [--iters N]\n"
               "                    [--warmup N] [--dim NAME=VALUE]... [--json]\n"
               "  Inputs not given are filled with random data of the declared shape; symbolic\n"
               "  dims are 1 unless set with --dim. Prints median and p90 latency.\n");
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int ifd_cli_bench(int argc, char **argv) {
    const char *model_path = NULL;
    const char *specs[64];
    int n_specs = 0, rc = 1;
    long long threads = 0, iters = 50, warmup = 5;
    bool json = false;
    ifd_cli_dims dims = {0};
    ifd_model *model = NULL;
    ifd_session *session = NULL;
    ifd_cli_inputs in = {0};
    double *times = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "-i") && i + 1 < argc && n_specs < 64) {
            specs[n_specs++] = argv[++i];
        } else if (!strcmp(a, "--threads") && i + 1 < argc) {
            if (!ifd_cli_parse_int(argv[++i], 1, 1024, &threads)) goto bad;
        } else if (!strcmp(a, "--iters") && i + 1 < argc) {
            if (!ifd_cli_parse_int(argv[++i], 1, 10000000, &iters)) goto bad;
        } else if (!strcmp(a, "--warmup") && i + 1 < argc) {
            if (!ifd_cli_parse_int(argv[++i], 0, 10000000, &warmup)) goto bad;
        } else if (!strcmp(a, "--dim") && i + 1 < argc) {
            if (ifd_cli_add_dim(&dims, argv[++i])) return 2;
        } else if (!strcmp(a, "--json")) {
            json = true;
        } else if (a[0] != '-' && !model_path) {
            model_path = a;
        } else {
            goto bad;
        }
    }
    if (!model_path) goto bad;
    if ((rc = ifd_cli_open(model_path, threads, n_specs, specs, &in, &model, &session))) goto out;
    rc = 1;
    ifd_status st;
    if (ifd_cli_fill_missing_inputs(&in, session, &dims, false)) goto out;
    size_t n_out = ifd_session_output_count(session);
    ifd_tensor **outs = calloc(n_out ? n_out : 1, sizeof *outs);
    times = calloc((size_t)iters, sizeof *times);
    if (!outs || !times) {
        free(outs);
        goto out;
    }
    for (long long it = 0; it < warmup + iters; it++) {
        double t0 = now_ms();
        st = ifd_session_run(session, in.n, (const char *const *)in.names,
                             (const ifd_tensor *const *)in.tensors, n_out, NULL, outs);
        double t1 = now_ms();
        for (size_t k = 0; k < n_out; k++) {
            ifd_tensor_free(outs[k]);
            outs[k] = NULL;
        }
        if (st) {
            free(outs);
            rc = ifd_cli_error("run", st);
            goto out;
        }
        if (it >= warmup) times[it - warmup] = t1 - t0;
    }
    free(outs);
    double sum = 0;
    for (long long i = 0; i < iters; i++) sum += times[i];
    qsort(times, (size_t)iters, sizeof *times, cmp_double);
    double median = iters % 2 ? times[iters / 2] : (times[iters / 2 - 1] + times[iters / 2]) / 2;
    long long p90i = (iters * 9 + 9) / 10 - 1;
    if (p90i < 0) p90i = 0;
    double p90 = times[p90i];
    int nthreads = threads > 0 ? (int)threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (json)
        printf("{\"model\": \"%s\", \"threads\": %d, \"iters\": %lld, \"warmup\": %lld, "
               "\"median_ms\": %.4f, \"p90_ms\": %.4f, \"mean_ms\": %.4f, \"min_ms\": %.4f, "
               "\"max_ms\": %.4f}\n",
               model_path, nthreads, iters, warmup, median, p90, sum / (double)iters, times[0],
               times[iters - 1]);
    else
        printf("%s: threads %d, %lld iterations after %lld warm-up\n"
               "  median %.3f ms  p90 %.3f ms  mean %.3f ms  min %.3f ms  max %.3f ms\n",
               model_path, nthreads, iters, warmup, median, p90, sum / (double)iters, times[0],
               times[iters - 1]);
    rc = 0;
out:
    free(times);
    ifd_cli_inputs_free(&in);
    ifd_session_free(session);
    ifd_model_free(model);
    return rc;
bad:
    usage(stderr);
    return 2;
}
