/* Golden tests: every model directory under ROOT (made by tests/golden/make_models.py, with
 * reference outputs from ONNX Runtime by tests/golden/reference.js) must match ONNX Runtime
 * within rtol 1e-4, atol 1e-5, at 1 and 2 threads.
 *
 *   test_golden ROOT [NAME...] */
#include "inferd/inferd.h"

#include <dirent.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define RTOL 1e-4
#define ATOL 1e-5

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static bool compare(const ifd_tensor *got, const ifd_tensor *want, char *msg, size_t size) {
    if (ifd_tensor_dtype(got) != ifd_tensor_dtype(want) || ifd_tensor_count(got) != ifd_tensor_count(want) ||
        ifd_tensor_rank(got) != ifd_tensor_rank(want)) {
        snprintf(msg, size, "type or shape differs (%s x %lld vs %s x %lld)",
                 ifd_dtype_name(ifd_tensor_dtype(got)), (long long)ifd_tensor_count(got),
                 ifd_dtype_name(ifd_tensor_dtype(want)), (long long)ifd_tensor_count(want));
        return false;
    }
    for (int d = 0; d < ifd_tensor_rank(got); d++)
        if (ifd_tensor_dims(got)[d] != ifd_tensor_dims(want)[d]) {
            snprintf(msg, size, "dim %d is %lld, expected %lld", d, (long long)ifd_tensor_dims(got)[d],
                     (long long)ifd_tensor_dims(want)[d]);
            return false;
        }
    if (ifd_tensor_dtype(got) != IFD_DTYPE_FLOAT) {
        if (memcmp(ifd_tensor_cdata(got), ifd_tensor_cdata(want), ifd_tensor_nbytes(got))) {
            snprintf(msg, size, "integer data differs");
            return false;
        }
        return true;
    }
    const float *x = ifd_tensor_cdata(got), *y = ifd_tensor_cdata(want);
    double max_err = 0;
    for (int64_t i = 0; i < ifd_tensor_count(got); i++) {
        double e = fabs((double)x[i] - y[i]);
        if (e > max_err) max_err = e;
        if (!(e <= ATOL + RTOL * fabs(y[i]))) {
            snprintf(msg, size, "element %lld: %.8g, ONNX Runtime %.8g", (long long)i, x[i], y[i]);
            return false;
        }
    }
    snprintf(msg, size, "max abs error %.3g", max_err);
    return true;
}

static int run_model(const char *dir, int threads, char *msg, size_t size) {
    char path[2048];
    ifd_model *model = NULL;
    ifd_session *session = NULL;
    ifd_tensor *inputs[16] = {0}, *outputs[16] = {0}, *refs[16] = {0};
    char *names[16] = {0};
    size_t n_in = 0, n_out;
    int ok = 0;
    snprintf(path, sizeof path, "%s/model.onnx", dir);
    if (ifd_model_load_file(path, &model)) {
        snprintf(msg, size, "load: %s", ifd_last_error());
        goto out;
    }
    ifd_session_options o;
    ifd_session_options_init(&o);
    o.num_threads = threads;
    if (ifd_session_create(model, &o, &session)) {
        snprintf(msg, size, "session: %s", ifd_last_error());
        goto out;
    }
    DIR *d = opendir(dir);
    char *files[64];
    int nf = 0;
    for (struct dirent *e; d && (e = readdir(d)) != NULL;)
        if (!strncmp(e->d_name, "input_", 6) && nf < 64) files[nf++] = strdup(e->d_name);
    if (d) closedir(d);
    qsort(files, (size_t)nf, sizeof *files, cmp_str);
    for (int i = 0; i < nf; i++) {
        /* input_<k>_<name>.npy */
        const char *p = strchr(files[i] + 6, '_');
        if (p && n_in < 16) {
            names[n_in] = strdup(p + 1);
            names[n_in][strlen(names[n_in]) - 4] = 0;
            snprintf(path, sizeof path, "%s/%s", dir, files[i]);
            if (ifd_npy_read(path, &inputs[n_in])) {
                snprintf(msg, size, "input: %s", ifd_last_error());
                for (int k = i; k < nf; k++) free(files[k]);
                goto out;
            }
            n_in++;
        }
        free(files[i]);
    }
    n_out = ifd_session_output_count(session);
    if (n_out > 16) n_out = 16;
    if (ifd_session_run(session, n_in, (const char *const *)names, (const ifd_tensor *const *)inputs,
                        n_out, NULL, outputs)) {
        snprintf(msg, size, "run: %s", ifd_last_error());
        goto out;
    }
    for (size_t k = 0; k < n_out; k++) {
        snprintf(path, sizeof path, "%s/reference_%zu.npy", dir, k);
        if (ifd_npy_read(path, &refs[k])) {
            snprintf(msg, size, "reference: %s", ifd_last_error());
            goto out;
        }
        if (!compare(outputs[k], refs[k], msg, size)) goto out;
    }
    ok = 1;
out:
    for (int i = 0; i < 16; i++) {
        ifd_tensor_free(inputs[i]);
        ifd_tensor_free(outputs[i]);
        ifd_tensor_free(refs[i]);
        free(names[i]);
    }
    ifd_session_free(session);
    ifd_model_free(model);
    return ok;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: test_golden ROOT [NAME...]\n");
        return 2;
    }
    const char *root = argv[1];
    const char *names[] = {"mlp", "cnn", "resnet18", "mobilenetv2", "bert", "lstm"};
    int pass = 0, fail = 0;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (argc > 2) {
            bool want = false;
            for (int a = 2; a < argc; a++) want |= !strcmp(argv[a], names[i]);
            if (!want) continue;
        }
        char dir[1024], ref[1100];
        struct stat st;
        snprintf(dir, sizeof dir, "%s/%s", root, names[i]);
        snprintf(ref, sizeof ref, "%s/reference_0.npy", dir);
        if (stat(ref, &st) != 0) {
            printf("FAIL golden/%s: no model or reference output in %s\n", names[i], dir);
            fail++;
            continue;
        }
        for (int threads = 1; threads <= 2; threads++) {
            char msg[1024];
            int ok = run_model(dir, threads, msg, sizeof msg);
            printf("%s golden/%s threads=%d: %s\n", ok ? "PASS" : "FAIL", names[i], threads, msg);
            ok ? pass++ : fail++;
        }
    }
    printf("%d passed, %d failed\n", pass, fail);
    return fail ? 1 : 0;
}
