/* inferd baseline MODEL.onnx --data DIR [-o FILE] [--threads N]: record the drift baseline of a
 * model version from sample inputs (src/serve/drift.h): the model runs on every batch of the
 * dataset folder, and the distribution of each input and output is written as JSON, by default
 * to baseline.json beside the model (DIR/<model>/<version>/baseline.json in a repository, where
 * the server picks it up when it loads the version). */
#include "cli.h"
#include "opt/dataset.h"
#include "serve/drift.h"

#include <stdlib.h>
#include <string.h>

static void usage(FILE *f) {
    fprintf(f, "usage: inferd baseline MODEL.onnx --data DIR [-o FILE] [--threads N]\n"
               "  --data DIR     sample inputs: DIR/*.npy, one batch each, for a one-input model;\n"
               "                 DIR/<sample>/<input>.npy or DIR/<input>.npy for several inputs\n"
               "  -o FILE        where to write the baseline (default: baseline.json beside\n"
               "                 MODEL.onnx, where `inferd serve` looks for it)\n"
               "  --threads N    worker threads (default: all cores)\n");
}

static char *default_output(const char *model_path) {
    const char *slash = strrchr(model_path, '/');
    size_t dir = slash ? (size_t)(slash - model_path) + 1 : 0;
    char *p = malloc(dir + sizeof "baseline.json");
    if (!p) return NULL;
    memcpy(p, model_path, dir);
    strcpy(p + dir, "baseline.json");
    return p;
}

int ifd_cli_baseline(int argc, char **argv) {
    const char *model_path = NULL, *data = NULL, *out_path = NULL;
    long long threads = 0;
    int rc = 1;
    ifd_model *model = NULL;
    ifd_session *session = NULL;
    ifd_dataset *ds = NULL;
    ifd_io_info *infos = NULL;
    const char **names = NULL;
    bool *is_output = NULL;
    int64_t *rank2 = NULL;
    ifd_tensor **outs = NULL;
    const ifd_tensor ***rows = NULL;
    char *default_out = NULL;
    size_t n_in = 0, n_out = 0, n_batches = 0;
    ifd_sbuf json = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--data") && i + 1 < argc) {
            data = argv[++i];
        } else if (!strcmp(a, "-o") && i + 1 < argc) {
            out_path = argv[++i];
        } else if (!strcmp(a, "--threads") && i + 1 < argc) {
            if (!ifd_cli_parse_int(argv[++i], 0, 1024, &threads)) {
                fprintf(stderr, "inferd baseline: --threads wants a number in 0..1024\n");
                return 2;
            }
        } else if (a[0] != '-' && !model_path) {
            model_path = a;
        } else {
            fprintf(stderr, "inferd baseline: unexpected argument '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (!model_path || !data) {
        fprintf(stderr, "inferd baseline: MODEL.onnx and --data DIR are required\n");
        usage(stderr);
        return 2;
    }
    ifd_status st;
    if ((st = ifd_model_load_file(model_path, &model)) != IFD_OK) {
        rc = ifd_cli_error(model_path, st);
        goto out;
    }
    ifd_session_options so;
    ifd_session_options_init(&so);
    so.num_threads = (int)threads;
    if ((st = ifd_session_create(model, &so, &session)) != IFD_OK) {
        rc = ifd_cli_error(model_path, st);
        goto out;
    }
    n_in = ifd_session_input_count(session);
    n_out = ifd_session_output_count(session);
    size_t n = n_in + n_out;
    infos = calloc(n ? n : 1, sizeof *infos);
    names = calloc(n ? n : 1, sizeof *names);
    is_output = calloc(n ? n : 1, sizeof *is_output);
    rank2 = calloc(n ? n : 1, sizeof *rank2);
    if (!infos || !names || !is_output || !rank2) goto oom;
    for (size_t i = 0; i < n; i++) {
        st = i < n_in ? ifd_session_input_info(session, i, &infos[i])
                      : ifd_session_output_info(session, i - n_in, &infos[i]);
        if (st != IFD_OK) {
            rc = ifd_cli_error(model_path, st);
            goto out;
        }
        names[i] = infos[i].name;
        is_output[i] = i >= n_in;
        rank2[i] = infos[i].rank == 2 ? infos[i].dims[1] : 0;
    }
    if ((st = ifd_dataset_open(data, n_in, infos, &ds)) != IFD_OK) {
        rc = ifd_cli_error(data, st);
        goto out;
    }
    n_batches = ifd_dataset_count(ds);
    outs = calloc(n_batches * (n_out ? n_out : 1), sizeof *outs);
    rows = calloc(n_batches ? n_batches : 1, sizeof *rows);
    if (!outs || !rows) goto oom;
    const char **out_names = names + n_in;
    for (size_t b = 0; b < n_batches; b++) {
        const ifd_tensor *const *ins = ifd_dataset_batch(ds, b);
        st = ifd_session_run(session, n_in, ifd_dataset_input_names(ds), ins, n_out, out_names,
                             outs + b * n_out);
        if (st != IFD_OK) {
            fprintf(stderr, "inferd baseline: batch %zu: ", b);
            rc = ifd_cli_error(model_path, st);
            goto out;
        }
        if (!(rows[b] = calloc(n ? n : 1, sizeof **rows))) goto oom;
        for (size_t i = 0; i < n_in; i++) rows[b][i] = ins[i];
        for (size_t j = 0; j < n_out; j++) rows[b][n_in + j] = outs[b * n_out + j];
    }
    st = ifd_drift_baseline_build(n, names, is_output, rank2, n_batches,
                                  (const ifd_tensor *const *const *)rows, &json);
    if (st != IFD_OK) {
        rc = ifd_cli_error(data, st);
        goto out;
    }
    if (!out_path && !(out_path = default_out = default_output(model_path))) goto oom;
    FILE *f = fopen(out_path, "wb");
    if (!f || fwrite(json.data, 1, json.len, f) != json.len || fclose(f) != 0) {
        if (f) fclose(f);
        fprintf(stderr, "inferd baseline: cannot write '%s'\n", out_path);
        rc = 1;
        goto out;
    }
    printf("baseline of %zu inputs and %zu outputs from %zu batches (%lld samples) written to %s\n",
           n_in, n_out, n_batches, (long long)ifd_dataset_total_rows(ds), out_path);
    rc = 0;
    goto out;
oom:
    fprintf(stderr, "inferd baseline: out of memory\n");
    rc = 1;
out:
    for (size_t i = 0; outs && i < n_batches * n_out; i++) ifd_tensor_free(outs[i]);
    for (size_t b = 0; rows && b < n_batches; b++) free(rows[b]);
    free(outs);
    free(rows);
    free(infos);
    free(names);
    free(is_output);
    free(rank2);
    free(default_out);
    ifd_sbuf_free(&json);
    ifd_dataset_free(ds);
    ifd_session_free(session);
    ifd_model_free(model);
    return rc;
}
