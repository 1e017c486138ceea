/* Drift summaries and the population stability index against a recorded baseline (drift.h). */
#include "serve/drift.h"

#include "base/dtype_convert.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BASELINE_FORMAT "inferd-drift-baseline/1"
#define BASELINE_MAX_VALUES 200000
#define PSI_FLOOR 1e-4

typedef struct drift_tensor {
    pthread_mutex_t mu;
    char *name;
    bool is_output;
    int n_classes;                 /* > 0: classifier output, argmax histogram kept */
    /* since load */
    int64_t count, nan_count, inf_count, finite;
    double sum, sumsq, min, max;
    /* baseline */
    bool has_baseline;
    double edges[IFD_DRIFT_BINS - 1];
    double base_p[IFD_DRIFT_BINS];
    bool has_class_baseline;
    double *base_class;            /* [n_classes] */
    /* recent, decayed */
    double hist[IFD_DRIFT_BINS], hist_total;
    double *class_hist, class_total; /* [n_classes] */
} drift_tensor;

struct ifd_drift {
    size_t n;
    int64_t window, class_window;
    drift_tensor *t;
};

/* Element i of t as a double (0 for types without a numeric value; NaN for strings, which
 * callers skip before asking: their element array holds pointers, not numbers). */
static double element(const ifd_tensor *t, int64_t i) {
    const void *base = ifd_tensor_cdata(t);
    switch (ifd_tensor_dtype(t)) {
    case IFD_DTYPE_STRING: return NAN;
    case IFD_DTYPE_FLOAT: return ((const float *)base)[i];
    case IFD_DTYPE_DOUBLE: return ((const double *)base)[i];
    case IFD_DTYPE_INT64: return (double)((const int64_t *)base)[i];
    case IFD_DTYPE_INT32: return ((const int32_t *)base)[i];
    case IFD_DTYPE_UINT8: return ((const uint8_t *)base)[i];
    case IFD_DTYPE_INT8: return ((const int8_t *)base)[i];
    case IFD_DTYPE_BOOL: return ((const uint8_t *)base)[i] != 0;
    default: {
        size_t es = ifd_dtype_size(ifd_tensor_dtype(t));
        double d = 0;
        if (es == 0 || ifd_convert(ifd_tensor_dtype(t), (const char *)base + (size_t)i * es,
                                   IFD_DTYPE_DOUBLE, &d, 1, false) != IFD_OK)
            return 0;
        return d;
    }
    }
}

static int bin_of(const double *edges, double x) {
    /* values equal to an edge go to the bin above it, in the baseline and live alike */
    int lo = 0, hi = IFD_DRIFT_BINS - 1;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (x < edges[mid]) hi = mid;
        else lo = mid + 1;
    }
    return lo;
}

static double psi(const double *p, const double *counts, double total, int n) {
    if (total <= 0) return NAN;
    double s = 0;
    for (int i = 0; i < n; i++) {
        double a = p[i] < PSI_FLOOR ? PSI_FLOOR : p[i];
        double b = counts[i] / total;
        if (b < PSI_FLOOR) b = PSI_FLOOR;
        s += (b - a) * log(b / a);
    }
    return s;
}

static int classes_of(const bool *is_output, const int64_t *rank2, size_t i) {
    return is_output[i] && rank2[i] >= 2 && rank2[i] <= IFD_DRIFT_MAX_CLASSES ? (int)rank2[i] : 0;
}

/* Row argmax of a [rows, classes] tensor into hist (+1 per row). */
static void count_classes(const ifd_tensor *t, int n_classes, double *hist, double *total) {
    if (ifd_tensor_rank(t) != 2 || ifd_tensor_dims(t)[1] != n_classes) return;
    int64_t rows = ifd_tensor_dims(t)[0];
    for (int64_t r = 0; r < rows; r++) {
        int best = 0;
        double bv = element(t, r * n_classes);
        for (int c = 1; c < n_classes; c++) {
            double v = element(t, r * n_classes + c);
            if (v > bv) {
                bv = v;
                best = c;
            }
        }
        hist[best] += 1;
        *total += 1;
    }
}

/* ---- baseline file ------------------------------------------------------------------------------ */

static bool get_numbers(const json_t *a, double *out, size_t n) {
    if (!json_is_array(a) || json_array_size(a) != n) return false;
    for (size_t i = 0; i < n; i++) {
        const json_t *v = json_array_get(a, i);
        if (!json_is_number(v)) return false;
        out[i] = json_number_value(v);
        if (!isfinite(out[i])) return false;
    }
    return true;
}

static ifd_status load_baseline(ifd_drift *d, const char *text, size_t len) {
    json_error_t je;
    ifd_status st = IFD_OK;
    if (!ifd_kserve_depth_ok(text, len, 8))
        return ifd_error(IFD_ERR_INVALID_ARGUMENT, "baseline.json nests too deep");
    json_t *root = json_loadb(text, len, 0, &je);
    if (!root)
        return ifd_error(IFD_ERR_INVALID_ARGUMENT, "baseline.json: %s (line %d)", je.text,
                         je.line);
    const json_t *fmt = json_object_get(root, "format");
    const json_t *tensors = json_object_get(root, "tensors");
    if (!json_is_string(fmt) || strcmp(json_string_value(fmt), BASELINE_FORMAT) ||
        !json_is_array(tensors)) {
        st = ifd_error(IFD_ERR_INVALID_ARGUMENT, "baseline.json is not an inferd baseline (want "
                       "\"format\": \"" BASELINE_FORMAT "\" and a \"tensors\" array)");
        goto out;
    }
    for (size_t k = 0; k < json_array_size(tensors); k++) {
        const json_t *e = json_array_get(tensors, k);
        const char *name = json_string_value(json_object_get(e, "name"));
        if (!name) {
            st = ifd_error(IFD_ERR_INVALID_ARGUMENT, "baseline.json tensor %zu has no name", k);
            goto out;
        }
        size_t i = 0;
        while (i < d->n && strcmp(d->t[i].name, name)) i++;
        if (i == d->n) continue; /* a tensor the model no longer has: ignored */
        drift_tensor *t = &d->t[i];
        double p[IFD_DRIFT_BINS];
        if (!get_numbers(json_object_get(e, "edges"), t->edges, IFD_DRIFT_BINS - 1) ||
            !get_numbers(json_object_get(e, "proportions"), p, IFD_DRIFT_BINS)) {
            st = ifd_error(IFD_ERR_INVALID_ARGUMENT, "baseline.json tensor '%s' needs %d finite "
                           "\"edges\" and %d \"proportions\"", name, IFD_DRIFT_BINS - 1,
                           IFD_DRIFT_BINS);
            goto out;
        }
        for (int b = 1; b < IFD_DRIFT_BINS - 1; b++)
            if (t->edges[b] < t->edges[b - 1]) {
                st = ifd_error(IFD_ERR_INVALID_ARGUMENT, "baseline.json tensor '%s': edges must "
                               "not decrease", name);
                goto out;
            }
        memcpy(t->base_p, p, sizeof p);
        t->has_baseline = true;
        const json_t *cp = json_object_get(e, "class_proportions");
        if (cp && t->n_classes > 0) {
            if (!get_numbers(cp, t->base_class, (size_t)t->n_classes)) {
                st = ifd_error(IFD_ERR_INVALID_ARGUMENT, "baseline.json tensor '%s' needs %d "
                               "\"class_proportions\"", name, t->n_classes);
                goto out;
            }
            t->has_class_baseline = true;
        }
    }
out:
    json_decref(root);
    return st;
}

/* ---- state ---------------------------------------------------------------------------------------- */

ifd_status ifd_drift_create(size_t n, const char *const *names, const bool *is_output,
                            const int64_t *rank2, const char *baseline_json, size_t baseline_len,
                            int64_t window, ifd_drift **out) {
    ifd_status st;
    *out = NULL;
    ifd_drift *d = ifd_calloc(1, sizeof *d);
    if (!d || !(d->t = ifd_calloc(n ? n : 1, sizeof *d->t))) {
        ifd_free(d);
        return ifd_error(IFD_ERR_NO_MEMORY, "out of memory");
    }
    d->window = window > 0 ? window : 20000;
    d->class_window = d->window / 10 > 100 ? d->window / 10 : 100;
    for (size_t i = 0; i < n; i++) {
        drift_tensor *t = &d->t[i];
        pthread_mutex_init(&t->mu, NULL);
        d->n++;
        t->is_output = is_output[i];
        t->n_classes = classes_of(is_output, rank2, i);
        t->min = INFINITY;
        t->max = -INFINITY;
        if (!(t->name = ifd_strdup(names[i])) ||
            (t->n_classes && (!(t->class_hist = ifd_calloc((size_t)t->n_classes, sizeof(double))) ||
                              !(t->base_class = ifd_calloc((size_t)t->n_classes,
                                                           sizeof(double)))))) {
            st = ifd_error(IFD_ERR_NO_MEMORY, "out of memory");
            goto fail;
        }
    }
    if (baseline_json && (st = load_baseline(d, baseline_json, baseline_len)) != IFD_OK)
        goto fail;
    *out = d;
    return IFD_OK;
fail:
    ifd_drift_free(d);
    return st;
}

void ifd_drift_free(ifd_drift *d) {
    if (!d) return;
    for (size_t i = 0; i < d->n; i++) {
        pthread_mutex_destroy(&d->t[i].mu);
        ifd_free(d->t[i].name);
        ifd_free(d->t[i].class_hist);
        ifd_free(d->t[i].base_class);
    }
    ifd_free(d->t);
    ifd_free(d);
}

size_t ifd_drift_count(const ifd_drift *d) { return d->n; }

void ifd_drift_observe(ifd_drift *d, size_t i, const ifd_tensor *x) {
    if (!d || i >= d->n || ifd_tensor_dtype(x) == IFD_DTYPE_STRING) return;
    drift_tensor *t = &d->t[i];
    int64_t n = ifd_tensor_count(x);
    if (n <= 0) return;
    int64_t stride = n > IFD_DRIFT_SAMPLE ? n / IFD_DRIFT_SAMPLE : 1;
    /* sample and bin outside the lock; only the sums are shared */
    int64_t cnt = 0, nan = 0, inf = 0, fin = 0;
    double sum = 0, sumsq = 0, mn = INFINITY, mx = -INFINITY, hist[IFD_DRIFT_BINS] = {0};
    for (int64_t k = 0; k < n && cnt < IFD_DRIFT_SAMPLE; k += stride) {
        double v = element(x, k);
        cnt++;
        if (isnan(v)) {
            nan++;
            continue;
        }
        if (isinf(v)) inf++;
        else {
            fin++;
            sum += v;
            sumsq += v * v;
            if (v < mn) mn = v;
            if (v > mx) mx = v;
        }
        if (t->has_baseline) hist[bin_of(t->edges, v)] += 1;
    }
    pthread_mutex_lock(&t->mu);
    t->count += cnt;
    t->nan_count += nan;
    t->inf_count += inf;
    t->finite += fin;
    t->sum += sum;
    t->sumsq += sumsq;
    if (mn < t->min) t->min = mn;
    if (mx > t->max) t->max = mx;
    if (t->has_baseline) {
        for (int b = 0; b < IFD_DRIFT_BINS; b++) t->hist[b] += hist[b];
        t->hist_total += (double)(cnt - nan);
        if (t->hist_total >= (double)d->window) {
            for (int b = 0; b < IFD_DRIFT_BINS; b++) t->hist[b] *= 0.5;
            t->hist_total *= 0.5;
        }
    }
    if (t->n_classes) {
        count_classes(x, t->n_classes, t->class_hist, &t->class_total);
        if (t->class_total >= (double)d->class_window) {
            for (int c = 0; c < t->n_classes; c++) t->class_hist[c] *= 0.5;
            t->class_total *= 0.5;
        }
    }
    pthread_mutex_unlock(&t->mu);
}

void ifd_drift_summarize(ifd_drift *d, size_t i, ifd_drift_summary *s) {
    memset(s, 0, sizeof *s);
    s->score = s->class_score = NAN;
    s->mean = s->std = s->min = s->max = NAN;
    if (!d || i >= d->n) return;
    drift_tensor *t = &d->t[i];
    pthread_mutex_lock(&t->mu);
    s->name = t->name;
    s->is_output = t->is_output;
    s->count = t->count;
    s->nan_count = t->nan_count;
    s->inf_count = t->inf_count;
    if (t->finite > 0) {
        double m = t->sum / (double)t->finite;
        double var = t->sumsq / (double)t->finite - m * m;
        s->mean = m;
        s->std = sqrt(var > 0 ? var : 0);
        s->min = t->min;
        s->max = t->max;
    }
    s->has_baseline = t->has_baseline;
    if (t->has_baseline) s->score = psi(t->base_p, t->hist, t->hist_total, IFD_DRIFT_BINS);
    s->n_classes = t->n_classes;
    if (t->has_class_baseline)
        s->class_score = psi(t->base_class, t->class_hist, t->class_total, t->n_classes);
    pthread_mutex_unlock(&t->mu);
}

double ifd_drift_score(ifd_drift *d, size_t i) {
    ifd_drift_summary s;
    ifd_drift_summarize(d, i, &s);
    if (isnan(s.score)) return s.class_score;
    if (isnan(s.class_score)) return s.score;
    return s.score > s.class_score ? s.score : s.class_score;
}

static void put_num(ifd_sbuf *b, double v) {
    if (isfinite(v)) ifd_sbuf_printf(b, "%.9g", v);
    else ifd_sbuf_puts(b, "null");
}

void ifd_drift_render_json(ifd_drift *d, ifd_sbuf *b) {
    ifd_sbuf_puts(b, "{\"tensors\":[");
    for (size_t i = 0; d && i < d->n; i++) {
        ifd_drift_summary s;
        ifd_drift_summarize(d, i, &s);
        ifd_sbuf_puts(b, i ? ",{\"name\":" : "{\"name\":");
        ifd_sbuf_json_string(b, s.name);
        ifd_sbuf_printf(b, ",\"kind\":\"%s\",\"count\":%lld,\"nan\":%lld,\"inf\":%lld,\"mean\":",
                        s.is_output ? "output" : "input", (long long)s.count,
                        (long long)s.nan_count, (long long)s.inf_count);
        put_num(b, s.mean);
        ifd_sbuf_puts(b, ",\"std\":");
        put_num(b, s.std);
        ifd_sbuf_puts(b, ",\"min\":");
        put_num(b, s.min);
        ifd_sbuf_puts(b, ",\"max\":");
        put_num(b, s.max);
        ifd_sbuf_puts(b, ",\"score\":");
        put_num(b, s.score);
        ifd_sbuf_puts(b, ",\"class_score\":");
        put_num(b, s.class_score);
        ifd_sbuf_puts(b, "}");
    }
    ifd_sbuf_puts(b, "]}");
}

/* ---- building a baseline ----------------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

ifd_status ifd_drift_baseline_build(size_t n, const char *const *names, const bool *is_output,
                                    const int64_t *rank2, size_t n_batches,
                                    const ifd_tensor *const *const *batches, ifd_sbuf *out) {
    ifd_status st = IFD_OK;
    double *vals = ifd_malloc(BASELINE_MAX_VALUES * sizeof *vals);
    double *classes = ifd_calloc(IFD_DRIFT_MAX_CLASSES, sizeof *classes);
    if (!vals || !classes) {
        st = ifd_error(IFD_ERR_NO_MEMORY, "out of memory");
        goto out;
    }
    if (n_batches == 0) {
        st = ifd_error(IFD_ERR_INVALID_ARGUMENT, "no sample batches to build a baseline from");
        goto out;
    }
    ifd_sbuf_puts(out, "{\"format\":\"" BASELINE_FORMAT "\",\"tensors\":[");
    int64_t per_batch = BASELINE_MAX_VALUES / (int64_t)n_batches;
    if (per_batch < 1) per_batch = 1;
    bool first = true;
    for (size_t i = 0; i < n; i++) {
        size_t nv = 0;
        double sum = 0, sumsq = 0, class_total = 0;
        int nc = classes_of(is_output, rank2, i);
        /* string tensors have no numeric distribution: no entry (the server keeps no
         * histogram for them either) */
        if (n_batches && ifd_tensor_dtype(batches[0][i]) == IFD_DTYPE_STRING) continue;
        memset(classes, 0, IFD_DRIFT_MAX_CLASSES * sizeof *classes);
        for (size_t bi = 0; bi < n_batches; bi++) {
            const ifd_tensor *x = batches[bi][i];
            int64_t total = ifd_tensor_count(x);
            int64_t take = total < per_batch ? total : per_batch;
            int64_t stride = take > 0 ? total / take : 1;
            for (int64_t k = 0, got = 0; k < total && got < take && nv < BASELINE_MAX_VALUES;
                 k += stride, got++) {
                double v = element(x, k);
                if (!isfinite(v)) continue;
                vals[nv++] = v;
                sum += v;
                sumsq += v * v;
            }
            if (nc) count_classes(x, nc, classes, &class_total);
        }
        if (nv == 0) {
            st = ifd_error(IFD_ERR_INVALID_ARGUMENT, "tensor '%s' has no finite values in the "
                           "samples", names[i]);
            goto out;
        }
        qsort(vals, nv, sizeof *vals, cmp_double);
        double edges[IFD_DRIFT_BINS - 1], counts[IFD_DRIFT_BINS] = {0};
        for (int b = 1; b < IFD_DRIFT_BINS; b++) edges[b - 1] = vals[nv * (size_t)b / IFD_DRIFT_BINS];
        for (size_t k = 0; k < nv; k++) counts[bin_of(edges, vals[k])] += 1;
        double mean = sum / (double)nv, var = sumsq / (double)nv - mean * mean;
        ifd_sbuf_puts(out, first ? "{\"name\":" : ",{\"name\":");
        first = false;
        ifd_sbuf_json_string(out, names[i]);
        ifd_sbuf_printf(out, ",\"kind\":\"%s\",\"count\":%zu,\"mean\":%.9g,\"std\":%.9g,"
                        "\"min\":%.9g,\"max\":%.9g,\"edges\":[", is_output[i] ? "output" : "input",
                        nv, mean, sqrt(var > 0 ? var : 0), vals[0], vals[nv - 1]);
        for (int b = 0; b < IFD_DRIFT_BINS - 1; b++)
            ifd_sbuf_printf(out, b ? ",%.9g" : "%.9g", edges[b]);
        ifd_sbuf_puts(out, "],\"proportions\":[");
        for (int b = 0; b < IFD_DRIFT_BINS; b++)
            ifd_sbuf_printf(out, b ? ",%.9g" : "%.9g", counts[b] / (double)nv);
        ifd_sbuf_puts(out, "]");
        if (nc && class_total > 0) {
            ifd_sbuf_puts(out, ",\"class_proportions\":[");
            for (int c = 0; c < nc; c++)
                ifd_sbuf_printf(out, c ? ",%.9g" : "%.9g", classes[c] / class_total);
            ifd_sbuf_puts(out, "]");
        }
        ifd_sbuf_puts(out, "}");
    }
    ifd_sbuf_puts(out, "]}\n");
    if (out->failed) st = ifd_error(IFD_ERR_NO_MEMORY, "out of memory");
out:
    ifd_free(vals);
    ifd_free(classes);
    return st;
}
