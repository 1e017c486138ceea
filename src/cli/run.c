/* inferd run MODEL.onnx [-i NAME=FILE.npy|FILE.pb]... [-o OUTDIR] [--threads N] */
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void usage(FILE *f) {
    fprintf(f, "usage: inferd run MODEL.onnx [-i NAME=FILE.npy|FILE.pb]... [-o OUTDIR] [--threads N]\n"
               "  -i NAME=FILE   bind a graph input to a .npy or TensorProto .pb file (NAME= may be\n"
               "                 left out for a single-input model)\n"
               "  -o OUTDIR      write each output to OUTDIR/NAME.npy (NAME with characters outside\n"
               "                 [A-Za-z0-9._-] replaced by '_'); without it, print a summary\n"
               "  --threads N    worker threads (default: all cores)\n");
}

static void print_summary(const char *name, const ifd_tensor *t) {
    char shape[256] = "[";
    size_t used = 1;
    for (int d = 0; d < ifd_tensor_rank(t); d++)
        used += (size_t)snprintf(shape + used, sizeof shape - used, d ? ",%lld" : "%lld",
                                 (long long)ifd_tensor_dims(t)[d]);
    snprintf(shape + used, sizeof shape - used, "]");
    printf("%s: %s %s", name, ifd_dtype_name(ifd_tensor_dtype(t)), shape);
    int64_t n = ifd_tensor_count(t);
    const void *p = ifd_tensor_cdata(t);
    printf(" [");
    for (int64_t i = 0; i < n && i < 8; i++) {
        switch (ifd_tensor_dtype(t)) {
        case IFD_DTYPE_FLOAT: printf("%s%g", i ? ", " : "", ((const float *)p)[i]); break;
        case IFD_DTYPE_DOUBLE: printf("%s%g", i ? ", " : "", ((const double *)p)[i]); break;
        case IFD_DTYPE_INT64: printf("%s%lld", i ? ", " : "", (long long)((const int64_t *)p)[i]); break;
        case IFD_DTYPE_INT32: printf("%s%d", i ? ", " : "", ((const int32_t *)p)[i]); break;
        default: printf("%s?", i ? ", " : ""); break;
        }
    }
    printf("%s]\n", n > 8 ? ", ..." : "");
}

int ifd_cli_run(int argc, char **argv) {
    const char *model_path = NULL, *out_dir = NULL;
    const char *specs[64];
    int n_specs = 0, rc = 1;
    long long threads = 0;
    ifd_model *model = NULL;
    ifd_session *session = NULL;
    ifd_cli_inputs in = {0};
    ifd_tensor *outputs[256] = {0};
    size_t n_out = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "-i") && i + 1 < argc && n_specs < 64) {
            specs[n_specs++] = argv[++i];
        } else if (!strcmp(a, "-o") && i + 1 < argc) {
            out_dir = argv[++i];
        } else if (!strcmp(a, "--threads") && i + 1 < argc) {
            if (!ifd_cli_parse_int(argv[++i], 1, 1024, &threads)) {
                fprintf(stderr, "inferd run: --threads wants a number in 1..1024\n");
                return 2;
            }
        } else if (a[0] != '-' && !model_path) {
            model_path = a;
        } else {
            fprintf(stderr, "inferd run: unexpected argument '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (!model_path) {
        usage(stderr);
        return 2;
    }
    if ((rc = ifd_cli_open(model_path, threads, n_specs, specs, &in, &model, &session))) goto out;
    rc = 1;
    ifd_status st;
    n_out = ifd_session_output_count(session);
    if (n_out > 256) {
        fprintf(stderr, "inferd run: too many outputs\n");
        goto out;
    }
    st = ifd_session_run(session, in.n, (const char *const *)in.names,
                         (const ifd_tensor *const *)in.tensors, n_out, NULL, outputs);
    if (st) {
        rc = ifd_cli_error("run", st);
        goto out;
    }
    if (out_dir && mkdir(out_dir, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "inferd run: cannot create %s: %s\n", out_dir, strerror(errno));
        goto out;
    }
    for (size_t i = 0; i < n_out; i++) {
        ifd_io_info info;
        ifd_session_output_info(session, i, &info);
        if (!out_dir) {
            print_summary(info.name, outputs[i]);
            continue;
        }
        char safe[512], path[1200];
        snprintf(safe, sizeof safe, "%s", info.name);
        for (char *p = safe; *p; p++)
            if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
                  *p == '.' || *p == '_' || *p == '-'))
                *p = '_';
        snprintf(path, sizeof path, "%s/%s.npy", out_dir, safe);
        if ((st = ifd_npy_write(path, outputs[i])) != IFD_OK) {
            rc = ifd_cli_error(path, st);
            goto out;
        }
    }
    rc = 0;
out:
    for (size_t i = 0; i < n_out && i < 256; i++) ifd_tensor_free(outputs[i]);
    ifd_cli_inputs_free(&in);
    ifd_session_free(session);
    ifd_model_free(model);
    return rc;
}
