/* inferd eval BASE.onnx CANDIDATE.onnx --data DIR [--labels FILE.npy] [--json] [--threads N]
 *                                      [--iters N] [--warmup N]
 *
 * What an optimization gained and what it cost: both models run on every batch of a dataset
 * folder (opt/dataset.h), and the candidate's outputs are compared with the base's (errors,
 * cosine, top-1 agreement, accuracy against labels); file size and latency at 1 and 2 threads
 * are measured side by side, so the ratios hold on a noisy machine. Fields: docs/EVAL.md. */
#include "cli.h"
#include "opt/dataset.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static void usage(FILE *f) {
    fprintf(f,
            "usage: inferd eval BASE.onnx CANDIDATE.onnx --data DIR [--labels FILE.npy] [--json]\n"
            "                   [--threads N] [--iters N] [--warmup N]\n"
            "  Runs both models on every batch in DIR and compares the candidate with the base.\n"
            "  --data DIR      input samples: DIR/*.npy, one batch each (one-input models);\n"
            "                  DIR/<sample>/<input>.npy, one batch per subfolder; or\n"
            "                  DIR/<input>.npy, one batch (names as `inferd run -o` writes them)\n"
            "  --labels FILE   int64 or int32 [samples]: class of each sample, in batch order;\n"
            "                  scored against the argmax of the first [N, classes] output\n"
            "  --threads N     threads for the comparison pass (default: all cores)\n"
            "  --iters N       timed runs of the first batch per model and thread count (20)\n"
            "  --warmup N      untimed runs before them, on the same session (3)\n"
            "  --json          print one JSON object instead of the table\n"
            "Reports: file size; median latency at 1 and 2 threads; per output: max and mean\n"
            "absolute error, cosine similarity over all samples, top-1 agreement (rank-2\n"
            "outputs); accuracy of each model and the difference in points (with --labels).\n"
            "Ratios are candidate / base.\n"
            "JSON fields (docs/EVAL.md): base and candidate {model, file_bytes, latency_ms\n"
            "{threads_1, threads_2}, accuracy_pct}, file_size_ratio, latency_ratio {threads_1,\n"
            "threads_2}, accuracy_diff_points, accuracy_output, labels, data, batches, samples,\n"
            "iters, warmup, outputs [{name, dtype, elements, max_abs_error, mean_abs_error,\n"
            "cosine_similarity, top1_agreement, top1_rows}]; a value that does not apply, or\n"
            "is not finite, is null.\n");
}

/* One of the two models under comparison. */
typedef struct eval_model {
    const char *path;
    ifd_model *model;
    ifd_session *session; /* the comparison pass, --threads */
    long long file_bytes;
    double latency_ms[2]; /* median at 1 and 2 threads */
    int64_t correct;      /* samples whose predicted class matches the label */
} eval_model;

/* Candidate-vs-base statistics of one output, accumulated over every batch. */
typedef struct output_stats {
    const char *name; /* the base model's (lives as long as it) */
    ifd_dtype dtype;
    bool comparable;  /* numeric dtype */
    int64_t elements;
    double max_abs, sum_abs, dot, norm_base, norm_cand;
    bool top1;        /* rank 2 [N, classes] in every batch */
    int64_t top1_rows, top1_agree;
} output_stats;

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, long long n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static double half_to_double(uint16_t h) {
    int sign = h >> 15, exp = (h >> 10) & 31, mant = h & 1023;
    double v;
    if (exp == 0)
        v = ldexp(mant, -24);
    else if (exp == 31)
        v = mant ? NAN : INFINITY;
    else
        v = ldexp(mant + 1024, exp - 25);
    return sign ? -v : v;
}

static double bf16_to_double(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static bool numeric(ifd_dtype dt) {
    switch (dt) {
    case IFD_DTYPE_FLOAT: case IFD_DTYPE_DOUBLE: case IFD_DTYPE_FLOAT16: case IFD_DTYPE_BFLOAT16:
    case IFD_DTYPE_INT8: case IFD_DTYPE_UINT8: case IFD_DTYPE_INT16: case IFD_DTYPE_UINT16:
    case IFD_DTYPE_INT32: case IFD_DTYPE_UINT32: case IFD_DTYPE_INT64: case IFD_DTYPE_UINT64:
    case IFD_DTYPE_BOOL:
        return true;
    default:
        return false;
    }
}

static bool integer(ifd_dtype dt) {
    switch (dt) {
    case IFD_DTYPE_INT8: case IFD_DTYPE_UINT8: case IFD_DTYPE_INT16: case IFD_DTYPE_UINT16:
    case IFD_DTYPE_INT32: case IFD_DTYPE_UINT32: case IFD_DTYPE_INT64: case IFD_DTYPE_UINT64:
        return true;
    default:
        return false;
    }
}

/* Element i of a tensor of an integer dtype (a predicted class), without a trip through
 * double: a uint64 past INT64_MAX wraps instead of being undefined. */
static int64_t int_at(const void *p, ifd_dtype dt, int64_t i) {
    switch (dt) {
    case IFD_DTYPE_INT8: return ((const int8_t *)p)[i];
    case IFD_DTYPE_UINT8: return ((const uint8_t *)p)[i];
    case IFD_DTYPE_INT16: return ((const int16_t *)p)[i];
    case IFD_DTYPE_UINT16: return ((const uint16_t *)p)[i];
    case IFD_DTYPE_INT32: return ((const int32_t *)p)[i];
    case IFD_DTYPE_UINT32: return ((const uint32_t *)p)[i];
    case IFD_DTYPE_INT64: return ((const int64_t *)p)[i];
    case IFD_DTYPE_UINT64: return (int64_t)((const uint64_t *)p)[i];
    default: return -1;
    }
}

/* Element i of a tensor of a numeric dtype, as double. */
static double value_at(const void *p, ifd_dtype dt, int64_t i) {
    switch (dt) {
    case IFD_DTYPE_FLOAT: return ((const float *)p)[i];
    case IFD_DTYPE_DOUBLE: return ((const double *)p)[i];
    case IFD_DTYPE_FLOAT16: return half_to_double(((const uint16_t *)p)[i]);
    case IFD_DTYPE_BFLOAT16: return bf16_to_double(((const uint16_t *)p)[i]);
    case IFD_DTYPE_INT8: return ((const int8_t *)p)[i];
    case IFD_DTYPE_UINT8: case IFD_DTYPE_BOOL: return ((const uint8_t *)p)[i];
    case IFD_DTYPE_INT16: return ((const int16_t *)p)[i];
    case IFD_DTYPE_UINT16: return ((const uint16_t *)p)[i];
    case IFD_DTYPE_INT32: return ((const int32_t *)p)[i];
    case IFD_DTYPE_UINT32: return ((const uint32_t *)p)[i];
    case IFD_DTYPE_INT64: return (double)((const int64_t *)p)[i];
    case IFD_DTYPE_UINT64: return (double)((const uint64_t *)p)[i];
    default: return NAN;
    }
}

/* Index of the largest of n values, the first on ties, and the first NaN if any (numpy's
 * argmax, so agreement and accuracy match a numpy check). */
static int64_t argmax_row(const void *p, ifd_dtype dt, int64_t start, int64_t n) {
    int64_t best = 0;
    double bv = value_at(p, dt, start);
    if (isnan(bv)) return 0;
    for (int64_t j = 1; j < n; j++) {
        double v = value_at(p, dt, start + j);
        if (isnan(v)) return j;
        if (v > bv) {
            bv = v;
            best = j;
        }
    }
    return best;
}

static void shape_text(const int64_t *dims, int rank, const char *const *names, char *buf,
                       size_t size) {
    size_t used = 0;
    if (rank < 0) {
        snprintf(buf, size, "(unknown rank)");
        return;
    }
    used += (size_t)snprintf(buf, size, "[");
    for (int d = 0; d < rank && used < size; d++) {
        if (dims[d] >= 0)
            used += (size_t)snprintf(buf + used, size - used, "%s%lld", d ? "," : "",
                                     (long long)dims[d]);
        else
            used += (size_t)snprintf(buf + used, size - used, "%s%s", d ? "," : "",
                                     names && names[d] && names[d][0] ? names[d] : "?");
    }
    if (used < size) snprintf(buf + used, size - used, "]");
}

/* Two declared inputs or outputs are interchangeable: same dtype, same rank, and every dim
 * that either model fixes is fixed to the same size in both (symbolic names may differ). */
static int check_same_io(const char *kind, const ifd_io_info *b, const ifd_io_info *c) {
    bool same = b->dtype == c->dtype && b->rank == c->rank;
    for (int d = 0; same && d < b->rank; d++)
        if ((b->dims[d] >= 0 || c->dims[d] >= 0) && b->dims[d] != c->dims[d]) same = false;
    if (same) return 0;
    char bs[256], cs[256];
    shape_text(b->dims, b->rank, b->dim_names, bs, sizeof bs);
    shape_text(c->dims, c->rank, c->dim_names, cs, sizeof cs);
    fprintf(stderr, "inferd eval: the models' %ss differ: '%s' is %s %s in the base, %s %s in the "
                    "candidate\n",
            kind, b->name, ifd_dtype_name(b->dtype), bs, ifd_dtype_name(c->dtype), cs);
    return 1;
}

/* The candidate must take the same inputs and give the same outputs as the base (matched by
 * name; the order may differ). */
static int check_same_interface(const eval_model *base, const eval_model *cand) {
    for (int pass = 0; pass < 2; pass++) {
        const char *kind = pass ? "output" : "input";
        size_t nb = pass ? ifd_model_output_count(base->model) : ifd_model_input_count(base->model);
        size_t nc = pass ? ifd_model_output_count(cand->model) : ifd_model_input_count(cand->model);
        if (nb != nc) {
            fprintf(stderr, "inferd eval: the models' %ss differ: the base has %zu, the "
                            "candidate %zu\n",
                    kind, nb, nc);
            return 1;
        }
        for (size_t i = 0; i < nb; i++) {
            ifd_io_info b, c;
            bool found = false;
            if (pass ? ifd_model_output_info(base->model, i, &b)
                     : ifd_model_input_info(base->model, i, &b))
                return ifd_cli_error(base->path, IFD_ERR_INTERNAL);
            for (size_t j = 0; j < nc && !found; j++) {
                if (pass ? ifd_model_output_info(cand->model, j, &c)
                         : ifd_model_input_info(cand->model, j, &c))
                    return ifd_cli_error(cand->path, IFD_ERR_INTERNAL);
                found = !strcmp(b.name, c.name);
            }
            if (!found) {
                fprintf(stderr, "inferd eval: the models' %ss differ: the base has '%s', the "
                                "candidate has no %s of that name\n",
                        kind, b.name, kind);
                return 1;
            }
            if (check_same_io(kind, &b, &c)) return 1;
        }
    }
    return 0;
}

static int load_model(eval_model *m, const char *role) {
    struct stat sb;
    ifd_status st = ifd_model_load_file(m->path, &m->model);
    if (st) return ifd_cli_error(role, st); /* the detail names the file */
    if (stat(m->path, &sb) == 0) m->file_bytes = (long long)sb.st_size;
    return 0;
}

static int create_session(eval_model *m, long long threads) {
    ifd_session_options opts;
    ifd_session_options_init(&opts);
    opts.num_threads = (int)threads;
    ifd_status st = ifd_session_create(m->model, &opts, &m->session);
    return st ? ifd_cli_error(m->path, st) : 0;
}

/* Labels: int64 or int32, one per sample, widened to int64. */
static int read_labels(const char *path, int64_t total_rows, int64_t **out) {
    ifd_tensor *t = NULL;
    int rc = 1;
    ifd_status st = ifd_npy_read(path, &t);
    if (st) return ifd_cli_error("--labels", st); /* the detail names the file */
    ifd_dtype dt = ifd_tensor_dtype(t);
    if (dt != IFD_DTYPE_INT64 && dt != IFD_DTYPE_INT32) {
        fprintf(stderr, "inferd eval: %s: labels are %s; expected int64 or int32\n", path,
                ifd_dtype_name(dt));
        goto out;
    }
    if (ifd_tensor_rank(t) != 1) {
        fprintf(stderr, "inferd eval: %s: labels have rank %d; expected one label per sample, "
                        "shape [%lld]\n",
                path, ifd_tensor_rank(t), (long long)total_rows);
        goto out;
    }
    int64_t n = ifd_tensor_count(t);
    if (n != total_rows) {
        fprintf(stderr, "inferd eval: %s holds %lld labels, but the data has %lld samples\n", path,
                (long long)n, (long long)total_rows);
        goto out;
    }
    int64_t *labels = malloc((size_t)(n ? n : 1) * sizeof *labels);
    if (!labels) {
        fprintf(stderr, "inferd eval: out of memory reading %s\n", path);
        goto out;
    }
    const void *p = ifd_tensor_cdata(t);
    for (int64_t i = 0; i < n; i++)
        labels[i] = dt == IFD_DTYPE_INT64 ? ((const int64_t *)p)[i] : ((const int32_t *)p)[i];
    *out = labels;
    rc = 0;
out:
    ifd_tensor_free(t);
    return rc;
}

/* The output scored against labels: the first declared [N, classes] output (argmax is the
 * class), else the first rank-1 integer output (the class itself). -1 when there is none. */
static long pick_prediction_output(const ifd_model *model) {
    size_t n = ifd_model_output_count(model);
    for (int want_rank = 2; want_rank >= 1; want_rank--)
        for (size_t i = 0; i < n; i++) {
            ifd_io_info info;
            if (ifd_model_output_info(model, i, &info)) continue;
            if (info.rank == 2 && want_rank == 2 && numeric(info.dtype)) return (long)i;
            if (info.rank == 1 && want_rank == 1 && integer(info.dtype)) return (long)i;
        }
    return -1;
}

/* Samples of a prediction output whose predicted class equals the label. */
static int count_correct(const char *path, const char *name, const ifd_tensor *t, int64_t rows,
                         const int64_t *labels, int64_t *correct) {
    int rank = ifd_tensor_rank(t);
    const int64_t *dims = ifd_tensor_dims(t);
    ifd_dtype dt = ifd_tensor_dtype(t);
    if (rank < 1 || rank > 2 || dims[0] != rows || (rank == 2 && (dims[1] < 1 || !numeric(dt))) ||
        (rank == 1 && !integer(dt))) {
        char s[256];
        shape_text(dims, rank, NULL, s, sizeof s);
        fprintf(stderr, "inferd eval: %s: output '%s' is %s %s for a batch of %lld samples; "
                        "expected one prediction per sample to score against the labels\n",
                path, name, ifd_dtype_name(dt), s, (long long)rows);
        return 1;
    }
    const void *p = ifd_tensor_cdata(t);
    for (int64_t r = 0; r < rows; r++) {
        int64_t pred = rank == 2 ? argmax_row(p, dt, r * dims[1], dims[1]) : int_at(p, dt, r);
        if (pred == labels[r]) (*correct)++;
    }
    return 0;
}

/* Fold one batch's outputs into the statistics. */
static int accumulate(output_stats *s, const ifd_tensor *b, const ifd_tensor *c, size_t batch,
                      bool first_batch) {
    char bs[256], cs[256];
    int rank = ifd_tensor_rank(b);
    const int64_t *dims = ifd_tensor_dims(b);
    bool same = ifd_tensor_dtype(b) == ifd_tensor_dtype(c) && rank == ifd_tensor_rank(c);
    for (int d = 0; same && d < rank; d++) same = dims[d] == ifd_tensor_dims(c)[d];
    if (!same) {
        shape_text(dims, rank, NULL, bs, sizeof bs);
        shape_text(ifd_tensor_dims(c), ifd_tensor_rank(c), NULL, cs, sizeof cs);
        fprintf(stderr, "inferd eval: batch %zu: output '%s' is %s %s from the base but %s %s "
                        "from the candidate\n",
                batch, s->name, ifd_dtype_name(ifd_tensor_dtype(b)), bs,
                ifd_dtype_name(ifd_tensor_dtype(c)), cs);
        return 1;
    }
    ifd_dtype dt = ifd_tensor_dtype(b);
    if (first_batch) {
        s->dtype = dt;
        s->comparable = numeric(dt);
        s->top1 = rank == 2;
    }
    s->top1 = s->top1 && rank == 2 && dims[1] > 0;
    if (!s->comparable) return 0;
    const void *pb = ifd_tensor_cdata(b), *pc = ifd_tensor_cdata(c);
    int64_t n = ifd_tensor_count(b);
    for (int64_t i = 0; i < n; i++) {
        double x = value_at(pb, dt, i), y = value_at(pc, dt, i), e = fabs(x - y);
        /* a NaN on either side makes the max NaN (as numpy's max would), not silently 0 */
        if ((isnan(e) || e > s->max_abs) && !isnan(s->max_abs)) s->max_abs = e;
        s->sum_abs += e;
        s->dot += x * y;
        s->norm_base += x * x;
        s->norm_cand += y * y;
    }
    s->elements += n;
    if (s->top1)
        for (int64_t r = 0; r < dims[0]; r++) {
            s->top1_agree += argmax_row(pb, dt, r * dims[1], dims[1]) ==
                             argmax_row(pc, dt, r * dims[1], dims[1]);
            s->top1_rows++;
        }
    return 0;
}

static void free_outputs(ifd_tensor **t, size_t n) {
    for (size_t i = 0; i < n; i++) {
        ifd_tensor_free(t[i]);
        t[i] = NULL;
    }
}

/* The comparison pass: every batch through both models. */
static int compare_all(eval_model *base, eval_model *cand, const ifd_dataset *ds,
                       output_stats *stats, size_t n_out, long pred, const int64_t *labels) {
    int rc = 1;
    size_t n_alloc = n_out ? n_out : 1;
    ifd_tensor **bo = calloc(n_alloc, sizeof *bo), **co = calloc(n_alloc, sizeof *co);
    const char **names = calloc(n_alloc, sizeof *names);
    const char *const *in_names = ifd_dataset_input_names(ds);
    size_t n_in = ifd_model_input_count(base->model);
    int64_t offset = 0;
    if (!bo || !co || !names) {
        fprintf(stderr, "inferd eval: out of memory\n");
        goto out;
    }
    for (size_t k = 0; k < n_out; k++) names[k] = stats[k].name;
    for (size_t b = 0; b < ifd_dataset_count(ds); b++) {
        const ifd_tensor *const *in = ifd_dataset_batch(ds, b);
        int64_t rows = ifd_dataset_batch_rows(ds, b);
        ifd_status st = ifd_session_run(base->session, n_in, in_names, in, n_out, names, bo);
        if (st) {
            rc = ifd_cli_error(base->path, st);
            goto out;
        }
        if ((st = ifd_session_run(cand->session, n_in, in_names, in, n_out, names, co))) {
            rc = ifd_cli_error(cand->path, st);
            goto out;
        }
        for (size_t k = 0; k < n_out; k++)
            if (accumulate(&stats[k], bo[k], co[k], b, b == 0)) goto out;
        if (labels && (count_correct(base->path, stats[pred].name, bo[pred], rows,
                                     labels + offset, &base->correct) ||
                       count_correct(cand->path, stats[pred].name, co[pred], rows,
                                     labels + offset, &cand->correct)))
            goto out;
        offset += rows;
        free_outputs(bo, n_out);
        free_outputs(co, n_out);
    }
    rc = 0;
out:
    if (bo) free_outputs(bo, n_out);
    if (co) free_outputs(co, n_out);
    free(bo);
    free(co);
    free(names);
    return rc;
}

/* Median latency of batch 0 at `threads` threads for both models. Each model gets one session
 * used for its warm-up and its timed runs; the runs alternate between the models, so that a
 * neighbour's load on the machine slows both alike. */
static int measure_latency(eval_model *m[2], const ifd_dataset *ds, int threads, long long iters,
                           long long warmup, int slot) {
    int rc = 1;
    ifd_session *sess[2] = {NULL, NULL};
    double *times[2] = {calloc((size_t)iters, sizeof(double)),
                        calloc((size_t)iters, sizeof(double))};
    size_t n_out = ifd_model_output_count(m[0]->model);
    ifd_tensor **outs = calloc(n_out ? n_out : 1, sizeof *outs);
    const char *const *in_names = ifd_dataset_input_names(ds);
    const ifd_tensor *const *in = ifd_dataset_batch(ds, 0);
    size_t n_in = ifd_model_input_count(m[0]->model);
    if (!times[0] || !times[1] || !outs) {
        fprintf(stderr, "inferd eval: out of memory\n");
        goto out;
    }
    for (int k = 0; k < 2; k++) {
        ifd_session_options opts;
        ifd_session_options_init(&opts);
        opts.num_threads = threads;
        ifd_status st = ifd_session_create(m[k]->model, &opts, &sess[k]);
        if (st) {
            rc = ifd_cli_error(m[k]->path, st);
            goto out;
        }
    }
    for (long long it = 0; it < warmup + iters; it++)
        for (int j = 0; j < 2; j++) {
            /* who goes first alternates too: the second of a pair may find caches warmer */
            int k = (int)((it + j) % 2);
            double t0 = now_ms();
            ifd_status st = ifd_session_run(sess[k], n_in, in_names, in, n_out, NULL, outs);
            double t1 = now_ms();
            free_outputs(outs, n_out);
            if (st) {
                rc = ifd_cli_error(m[k]->path, st);
                goto out;
            }
            if (it >= warmup) times[k][it - warmup] = t1 - t0;
        }
    for (int k = 0; k < 2; k++) m[k]->latency_ms[slot] = median(times[k], iters);
    rc = 0;
out:
    for (int k = 0; k < 2; k++) {
        ifd_session_free(sess[k]);
        free(times[k]);
    }
    free(outs);
    return rc;
}

/* ---- report ------------------------------------------------------------------------------ */

static void json_string(const char *s) {
    putchar('"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            printf("\\%c", *p);
        else if (*p < 0x20)
            printf("\\u%04x", *p);
        else
            putchar(*p);
    }
    putchar('"');
}

/* JSON has no NaN or Infinity: those, and values that do not apply, are null. */
static void json_number(double v, bool applies) {
    if (applies && isfinite(v))
        printf("%.10g", v);
    else
        printf("null");
}

static double ratio(double cand, double base) { return base > 0 ? cand / base : NAN; }

static double cosine(const output_stats *s) {
    if (s->norm_base == 0 && s->norm_cand == 0) return 1; /* both all zeros: identical */
    if (s->norm_base == 0 || s->norm_cand == 0) return 0;
    /* sqrt of the product, so identical outputs give exactly 1; rounding can still carry a
     * value a hair past +-1, which is clamped */
    double prod = s->norm_base * s->norm_cand;
    double c = s->dot / (isfinite(prod) ? sqrt(prod) : sqrt(s->norm_base) * sqrt(s->norm_cand));
    return c > 1 ? 1 : c < -1 ? -1 : c;
}

static double mean_abs(const output_stats *s) {
    return s->elements ? s->sum_abs / (double)s->elements : 0;
}

static double accuracy_pct(const eval_model *m, int64_t total) {
    return total ? 100.0 * (double)m->correct / (double)total : NAN;
}

typedef struct eval_report {
    eval_model *m[2];
    const char *data_dir, *labels_path;
    const ifd_dataset *ds;
    output_stats *stats;
    size_t n_out;
    long pred;
    long long iters, warmup;
} eval_report;

static void print_json(const eval_report *r) {
    int64_t total = ifd_dataset_total_rows(r->ds);
    bool acc = r->labels_path != NULL;
    printf("{");
    for (int k = 0; k < 2; k++) {
        const eval_model *m = r->m[k];
        printf("%s\"%s\": {\"model\": ", k ? ", " : "", k ? "candidate" : "base");
        json_string(m->path);
        printf(", \"file_bytes\": %lld, \"latency_ms\": {\"threads_1\": ", m->file_bytes);
        json_number(m->latency_ms[0], true);
        printf(", \"threads_2\": ");
        json_number(m->latency_ms[1], true);
        printf("}, \"accuracy_pct\": ");
        json_number(accuracy_pct(m, total), acc);
        printf("}");
    }
    printf(", \"file_size_ratio\": ");
    json_number(ratio((double)r->m[1]->file_bytes, (double)r->m[0]->file_bytes), true);
    printf(", \"latency_ratio\": {\"threads_1\": ");
    json_number(ratio(r->m[1]->latency_ms[0], r->m[0]->latency_ms[0]), true);
    printf(", \"threads_2\": ");
    json_number(ratio(r->m[1]->latency_ms[1], r->m[0]->latency_ms[1]), true);
    printf("}, \"accuracy_diff_points\": ");
    json_number(accuracy_pct(r->m[1], total) - accuracy_pct(r->m[0], total), acc);
    printf(", \"accuracy_output\": ");
    if (acc)
        json_string(r->stats[r->pred].name);
    else
        printf("null");
    printf(", \"labels\": ");
    if (acc)
        json_string(r->labels_path);
    else
        printf("null");
    printf(", \"data\": ");
    json_string(r->data_dir);
    printf(", \"batches\": %zu, \"samples\": %lld, \"iters\": %lld, \"warmup\": %lld, "
           "\"outputs\": [",
           ifd_dataset_count(r->ds), (long long)total, r->iters, r->warmup);
    for (size_t k = 0; k < r->n_out; k++) {
        const output_stats *s = &r->stats[k];
        printf("%s{\"name\": ", k ? ", " : "");
        json_string(s->name);
        printf(", \"dtype\": \"%s\", \"elements\": %lld, \"max_abs_error\": ",
               ifd_dtype_name(s->dtype), (long long)s->elements);
        json_number(s->max_abs, s->comparable);
        printf(", \"mean_abs_error\": ");
        json_number(mean_abs(s), s->comparable);
        printf(", \"cosine_similarity\": ");
        json_number(cosine(s), s->comparable);
        printf(", \"top1_agreement\": ");
        json_number(s->top1_rows ? (double)s->top1_agree / (double)s->top1_rows : NAN,
                    s->comparable && s->top1);
        printf(", \"top1_rows\": ");
        if (s->comparable && s->top1)
            printf("%lld", (long long)s->top1_rows);
        else
            printf("null");
        printf("}");
    }
    printf("]}\n");
}

static void print_size(long long bytes) {
    if (bytes >= 10 * 1024 * 1024)
        printf("%10.1f MB", (double)bytes / (1024.0 * 1024.0));
    else if (bytes >= 10 * 1024)
        printf("%10.1f KB", (double)bytes / 1024.0);
    else
        printf("%11lld B", bytes);
}

static void print_text(const eval_report *r) {
    const eval_model *b = r->m[0], *c = r->m[1];
    int64_t total = ifd_dataset_total_rows(r->ds);
    size_t nb = ifd_dataset_count(r->ds);
    printf("base       %s\ncandidate  %s\ndata       %s: %zu batch%s, %lld samples\n\n", b->path,
           c->path, r->data_dir, nb, nb == 1 ? "" : "es", (long long)total);
    printf("%-20s %13s %13s %10s\n", "", "base", "candidate", "ratio");
    printf("%-20s ", "file size");
    print_size(b->file_bytes);
    printf(" ");
    print_size(c->file_bytes);
    printf(" %10.3f\n", ratio((double)c->file_bytes, (double)b->file_bytes));
    for (int t = 0; t < 2; t++)
        printf("latency %d thread%-4s %10.3f ms %10.3f ms %10.3f\n", t + 1, t ? "s" : "",
               b->latency_ms[t], c->latency_ms[t], ratio(c->latency_ms[t], b->latency_ms[t]));
    printf("  (median of %lld runs of batch 0 after %lld warm-up)\n", r->iters, r->warmup);
    if (r->labels_path) {
        double ab = accuracy_pct(b, total), ac = accuracy_pct(c, total);
        printf("%-20s %11.2f %% %11.2f %% %+9.2f points\n", "accuracy", ab, ac, ac - ab);
        printf("  (argmax of '%s' against %s: %lld and %lld of %lld correct)\n",
               r->stats[r->pred].name, r->labels_path, (long long)b->correct,
               (long long)c->correct, (long long)total);
    }
    for (size_t k = 0; k < r->n_out; k++) {
        const output_stats *s = &r->stats[k];
        printf("\noutput '%s' %s, %lld values\n", s->name, ifd_dtype_name(s->dtype),
               (long long)s->elements);
        if (!s->comparable) {
            printf("  not compared (not a numeric type)\n");
            continue;
        }
        printf("  max abs error       %.6g\n  mean abs error      %.6g\n"
               "  cosine similarity   %.8f\n",
               s->max_abs, mean_abs(s), cosine(s));
        if (s->top1)
            printf("  top-1 agreement     %.6f (%lld of %lld rows)\n",
                   s->top1_rows ? (double)s->top1_agree / (double)s->top1_rows : 0.0,
                   (long long)s->top1_agree, (long long)s->top1_rows);
    }
}

int ifd_cli_eval(int argc, char **argv) {
    const char *paths[2] = {NULL, NULL}, *data_dir = NULL, *labels_path = NULL;
    long long threads = 0, iters = 20, warmup = 3;
    bool json = false;
    int rc = 1;
    eval_model base = {0}, cand = {0};
    eval_model *m[2] = {&base, &cand};
    ifd_dataset *ds = NULL;
    int64_t *labels = NULL;
    output_stats *stats = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--data") && i + 1 < argc) {
            data_dir = argv[++i];
        } else if (!strcmp(a, "--labels") && i + 1 < argc) {
            labels_path = argv[++i];
        } else if (!strcmp(a, "--json")) {
            json = true;
        } else if (!strcmp(a, "--threads") && i + 1 < argc) {
            if (!ifd_cli_parse_int(argv[++i], 1, 1024, &threads)) {
                fprintf(stderr, "inferd eval: --threads wants a number in 1..1024\n");
                return 2;
            }
        } else if (!strcmp(a, "--iters") && i + 1 < argc) {
            if (!ifd_cli_parse_int(argv[++i], 1, 1000000, &iters)) {
                fprintf(stderr, "inferd eval: --iters wants a number in 1..1000000\n");
                return 2;
            }
        } else if (!strcmp(a, "--warmup") && i + 1 < argc) {
            if (!ifd_cli_parse_int(argv[++i], 0, 1000000, &warmup)) {
                fprintf(stderr, "inferd eval: --warmup wants a number in 0..1000000\n");
                return 2;
            }
        } else if (a[0] != '-' && (!paths[0] || !paths[1])) {
            paths[paths[0] ? 1 : 0] = a;
        } else {
            fprintf(stderr, "inferd eval: unexpected argument '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (!paths[1] || !data_dir) {
        fprintf(stderr, "inferd eval: %s\n",
                !paths[1] ? "give two models, BASE.onnx and CANDIDATE.onnx"
                          : "--data DIR is required");
        usage(stderr);
        return 2;
    }
    base.path = paths[0];
    cand.path = paths[1];
    /* everything that can be wrong with the input is checked before the sessions are made
     * (making one may run the model once to plan its memory) */
    if (load_model(&base, "base model") || load_model(&cand, "candidate model") ||
        check_same_interface(&base, &cand))
        goto out;

    size_t n_in = ifd_model_input_count(base.model), n_out = ifd_model_output_count(base.model);
    ifd_io_info *infos = calloc(n_in ? n_in : 1, sizeof *infos);
    if (!infos) {
        fprintf(stderr, "inferd eval: out of memory\n");
        goto out;
    }
    for (size_t i = 0; i < n_in; i++) ifd_model_input_info(base.model, i, &infos[i]);
    ifd_status st = ifd_dataset_open(data_dir, n_in, infos, &ds);
    free(infos);
    if (st) {
        rc = ifd_cli_error("--data", st); /* the detail names the folder or file */
        goto out;
    }
    long pred = -1;
    if (labels_path) {
        if (read_labels(labels_path, ifd_dataset_total_rows(ds), &labels)) goto out;
        if ((pred = pick_prediction_output(base.model)) < 0) {
            fprintf(stderr, "inferd eval: --labels: the model has no output to score against "
                            "them (one of rank 2 [N, classes], or integer classes [N])\n");
            goto out;
        }
    }
    if (!(stats = calloc(n_out ? n_out : 1, sizeof *stats))) {
        fprintf(stderr, "inferd eval: out of memory\n");
        goto out;
    }
    for (size_t k = 0; k < n_out; k++) {
        ifd_io_info info;
        ifd_model_output_info(base.model, k, &info);
        stats[k].name = info.name;
    }
    if (create_session(&base, threads) || create_session(&cand, threads) ||
        compare_all(&base, &cand, ds, stats, n_out, pred, labels))
        goto out;
    if (measure_latency(m, ds, 1, iters, warmup, 0) || measure_latency(m, ds, 2, iters, warmup, 1))
        goto out;

    eval_report r = {.m = {&base, &cand}, .data_dir = data_dir, .labels_path = labels_path,
                     .ds = ds, .stats = stats, .n_out = n_out, .pred = pred, .iters = iters,
                     .warmup = warmup};
    if (json)
        print_json(&r);
    else
        print_text(&r);
    rc = fflush(stdout) == 0 ? 0 : 1;
out:
    free(stats);
    free(labels);
    ifd_dataset_free(ds);
    for (int k = 0; k < 2; k++) {
        ifd_session_free(m[k]->session);
        ifd_model_free(m[k]->model);
    }
    return rc;
}
