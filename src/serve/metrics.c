/* Prometheus metrics and the dashboard history (see metrics.h for the API and its lifetime
 * rules). Values live in C11 atomics inside each series so updates take no lock and allocate
 * nothing; locks guard only the lists (which families, which series), taken by creation,
 * removal, rendering and sampling. Lock order: serve-metrics mu -> registry mu -> family mu. */
#include "serve/metrics.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* ---- registry structures -------------------------------------------------------------------- */

struct ifd_metric_series {
    ifd_metric_family *family;
    ifd_metric_series *prev, *next;   /* in the family's list, creation order */
    char **values;                    /* [n_labels] raw label values */
    char *label_text;                 /* 'a="x",b="y"' escaped, "" without labels */
    _Atomic uint64_t count;           /* counter value */
    _Atomic uint64_t bits;            /* gauge value / histogram sum, as double bits */
    _Atomic uint64_t buckets[];       /* histogram: [n_bounds + 1], per bucket (not cumulative) */
};

struct ifd_metric_family {
    ifd_metrics *registry;
    ifd_metric_family *next;
    ifd_metric_type type;
    char *name, *help;
    size_t n_labels;
    char *labels[IFD_METRICS_MAX_LABELS];
    size_t n_bounds;
    double bounds[IFD_METRICS_MAX_BUCKETS];
    ifd_metric_value_fn fn; /* callback family: value computed at render */
    void *fn_arg;
    pthread_mutex_t mu;     /* guards head/tail and the series links */
    ifd_metric_series *head, *tail;
};

struct ifd_metrics {
    pthread_mutex_t mu; /* guards the family list; held while rendering */
    ifd_metric_family *head, *tail;
    size_t max_series;
    atomic_size_t n_series;
};

/* ---- atomics on doubles --------------------------------------------------------------------- */

static double bits_to_double(uint64_t u) {
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

static uint64_t double_to_bits(double d) {
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}

static void atomic_add_double(_Atomic uint64_t *p, double v) {
    uint64_t old = atomic_load_explicit(p, memory_order_relaxed), next;
    do {
        next = double_to_bits(bits_to_double(old) + v);
    } while (!atomic_compare_exchange_weak_explicit(p, &old, next, memory_order_relaxed,
                                                    memory_order_relaxed));
}

static double atomic_load_double(const _Atomic uint64_t *p) {
    return bits_to_double(atomic_load_explicit((_Atomic uint64_t *)p, memory_order_relaxed));
}

/* ---- names and values ----------------------------------------------------------------------- */

static bool valid_metric_name(const char *s) {
    if (!s || !*s) return false;
    for (const char *p = s; *p; p++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
                  (p != s && c >= '0' && c <= '9');
        if (!ok) return false;
    }
    return true;
}

static bool valid_label_name(const char *s) {
    if (!s || !*s || strncmp(s, "__", 2) == 0) return false;
    for (const char *p = s; *p; p++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                  (p != s && c >= '0' && c <= '9');
        if (!ok) return false;
    }
    return true;
}

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* A scrape with one invalid UTF-8 label value is rejected whole by Prometheus, so values are
 * checked once at series creation (overlong forms and surrogates refused). */
static bool valid_utf8(const unsigned char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t len;
        unsigned min;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            len = 2, min = 0x80, c &= 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            len = 3, min = 0x800, c &= 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            len = 4, min = 0x10000, c &= 0x07;
        } else {
            return false;
        }
        if (n - i < len) return false;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return false;
            c = (c << 6) | (s[i + k] & 0x3F);
        }
        if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return false;
        i += len;
    }
    return true;
}

const char *ifd_metrics_format_double(double v, char *buf, size_t size) {
    if (isnan(v)) {
        snprintf(buf, size, "NaN");
    } else if (isinf(v)) {
        snprintf(buf, size, v > 0 ? "+Inf" : "-Inf");
    } else {
        /* 15 significant digits already give the shortest form of anything that has one that
         * short; more digits only where needed to read back the same double. */
        for (int prec = 15; prec <= 17; prec++) {
            snprintf(buf, size, "%.*g", prec, v);
            if (strtod(buf, NULL) == v) break;
        }
    }
    return buf;
}

/* Label value escaping of the text format: backslash, double quote, newline. */
static void append_label_value(ifd_sbuf *b, const char *s) {
    const char *run = s;
    for (; *s; s++) {
        const char *esc = *s == '\\' ? "\\\\" : *s == '"' ? "\\\"" : *s == '\n' ? "\\n" : NULL;
        if (!esc) continue;
        ifd_sbuf_append(b, run, (size_t)(s - run));
        ifd_sbuf_puts(b, esc);
        run = s + 1;
    }
    ifd_sbuf_append(b, run, (size_t)(s - run));
}

/* HELP escaping: backslash and newline only (quotes stay). */
static void append_help(ifd_sbuf *b, const char *s) {
    const char *run = s;
    for (; *s; s++) {
        const char *esc = *s == '\\' ? "\\\\" : *s == '\n' ? "\\n" : NULL;
        if (!esc) continue;
        ifd_sbuf_append(b, run, (size_t)(s - run));
        ifd_sbuf_puts(b, esc);
        run = s + 1;
    }
    ifd_sbuf_append(b, run, (size_t)(s - run));
}

/* ---- registry ------------------------------------------------------------------------------- */

ifd_status ifd_metrics_create(size_t max_series, ifd_metrics **out) {
    *out = NULL;
    ifd_metrics *r = ifd_calloc(1, sizeof *r);
    if (!r) return ifd_error(IFD_ERR_NO_MEMORY, "metrics registry: out of memory");
    if (pthread_mutex_init(&r->mu, NULL) != 0) {
        ifd_free(r);
        return ifd_error(IFD_ERR_INTERNAL, "metrics registry: mutex init failed");
    }
    r->max_series = max_series ? max_series : 100000;
    *out = r;
    return IFD_OK;
}

static void family_free(ifd_metric_family *f) {
    ifd_metric_series *s = f->head;
    while (s) {
        ifd_metric_series *next = s->next;
        ifd_free(s);
        s = next;
    }
    for (size_t i = 0; i < f->n_labels; i++) ifd_free(f->labels[i]);
    ifd_free(f->name);
    ifd_free(f->help);
    pthread_mutex_destroy(&f->mu);
    ifd_free(f);
}

void ifd_metrics_free(ifd_metrics *r) {
    if (!r) return;
    ifd_metric_family *f = r->head;
    while (f) {
        ifd_metric_family *next = f->next;
        family_free(f);
        f = next;
    }
    pthread_mutex_destroy(&r->mu);
    ifd_free(r);
}

static ifd_metric_family *find_locked(ifd_metrics *r, const char *name) {
    for (ifd_metric_family *f = r->head; f; f = f->next)
        if (strcmp(f->name, name) == 0) return f;
    return NULL;
}

ifd_metric_family *ifd_metrics_family_find(ifd_metrics *r, const char *name) {
    if (!r || !name) return NULL;
    pthread_mutex_lock(&r->mu);
    ifd_metric_family *f = find_locked(r, name);
    pthread_mutex_unlock(&r->mu);
    return f;
}

/* Shared by ordinary and callback families: checks, builds, appends under the registry lock. */
static ifd_status family_add(ifd_metrics *r, ifd_metric_type type, const char *name,
                             const char *help, size_t n_labels, const char *const *label_names,
                             size_t n_bounds, const double *bounds, ifd_metric_value_fn fn,
                             void *fn_arg, ifd_metric_family **out) {
    ifd_status st = IFD_OK;
    ifd_metric_family *f = NULL;
    if (out) *out = NULL;
    if (!r) return ifd_error(IFD_ERR_INVALID_ARGUMENT, "metrics: no registry");
    if (type != IFD_METRIC_COUNTER && type != IFD_METRIC_GAUGE && type != IFD_METRIC_HISTOGRAM)
        return ifd_error(IFD_ERR_INVALID_ARGUMENT, "metric family: unknown type %d", (int)type);
    if (!valid_metric_name(name))
        return ifd_error(IFD_ERR_INVALID_ARGUMENT,
                         "metric name '%s' is not [a-zA-Z_:][a-zA-Z0-9_:]*",
                         name ? name : "(null)");
    if (type == IFD_METRIC_COUNTER && !ends_with(name, "_total"))
        return ifd_error(IFD_ERR_INVALID_ARGUMENT, "counter '%s': name must end in _total", name);
    if (type != IFD_METRIC_HISTOGRAM && n_bounds)
        return ifd_error(IFD_ERR_INVALID_ARGUMENT, "metric '%s': only histograms have buckets",
                         name);
    if (type == IFD_METRIC_HISTOGRAM && (n_bounds == 0 || !bounds))
        return ifd_error(IFD_ERR_INVALID_ARGUMENT, "histogram '%s': no bucket bounds", name);
    if (n_bounds > IFD_METRICS_MAX_BUCKETS)
        return ifd_error(IFD_ERR_TOO_BIG, "histogram '%s': %zu buckets (at most %d)", name,
                         n_bounds, IFD_METRICS_MAX_BUCKETS);
    for (size_t i = 0; i < n_bounds; i++) {
        if (!isfinite(bounds[i]) || (i && !(bounds[i] > bounds[i - 1])))
            return ifd_error(IFD_ERR_INVALID_ARGUMENT,
                             "histogram '%s': bucket bound %zu must be finite and greater than "
                             "the one before",
                             name, i);
    }
    if (n_labels > IFD_METRICS_MAX_LABELS)
        return ifd_error(IFD_ERR_TOO_BIG, "metric '%s': %zu labels (at most %d)", name, n_labels,
                         IFD_METRICS_MAX_LABELS);
    for (size_t i = 0; i < n_labels; i++) {
        const char *l = label_names ? label_names[i] : NULL;
        if (!valid_label_name(l))
            return ifd_error(IFD_ERR_INVALID_ARGUMENT,
                             "metric '%s': label name '%s' is not [a-zA-Z_][a-zA-Z0-9_]* or "
                             "starts with __",
                             name, l ? l : "(null)");
        if (type == IFD_METRIC_HISTOGRAM && strcmp(l, "le") == 0)
            return ifd_error(IFD_ERR_INVALID_ARGUMENT,
                             "histogram '%s': label name 'le' is reserved for buckets", name);
        for (size_t k = 0; k < i; k++)
            if (strcmp(label_names[k], l) == 0)
                return ifd_error(IFD_ERR_INVALID_ARGUMENT, "metric '%s': label '%s' given twice",
                                 name, l);
    }

    f = ifd_calloc(1, sizeof *f);
    if (!f) return ifd_error(IFD_ERR_NO_MEMORY, "metric '%s': out of memory", name);
    if (pthread_mutex_init(&f->mu, NULL) != 0) {
        ifd_free(f);
        return ifd_error(IFD_ERR_INTERNAL, "metric '%s': mutex init failed", name);
    }
    f->registry = r;
    f->type = type;
    f->fn = fn;
    f->fn_arg = fn_arg;
    f->name = ifd_strdup(name);
    f->help = ifd_strdup(help ? help : "");
    if (!f->name || !f->help) goto oom;
    for (size_t i = 0; i < n_labels; i++) {
        if (!(f->labels[i] = ifd_strdup(label_names[i]))) goto oom;
        f->n_labels = i + 1;
    }
    f->n_bounds = n_bounds;
    if (n_bounds) memcpy(f->bounds, bounds, n_bounds * sizeof *bounds);

    pthread_mutex_lock(&r->mu);
    if (find_locked(r, name)) {
        pthread_mutex_unlock(&r->mu);
        st = ifd_error(IFD_ERR_INVALID_ARGUMENT, "metric '%s' is already registered", name);
        goto fail;
    }
    if (r->tail) r->tail->next = f;
    else r->head = f;
    r->tail = f;
    pthread_mutex_unlock(&r->mu);
    if (out) *out = f;
    return IFD_OK;
oom:
    st = ifd_error(IFD_ERR_NO_MEMORY, "metric '%s': out of memory", name);
fail:
    family_free(f);
    return st;
}

ifd_status ifd_metrics_family_create(ifd_metrics *r, ifd_metric_type type, const char *name,
                                     const char *help, size_t n_labels,
                                     const char *const *label_names, size_t n_bounds,
                                     const double *bounds, ifd_metric_family **out) {
    return family_add(r, type, name, help, n_labels, label_names, n_bounds, bounds, NULL, NULL,
                      out);
}

ifd_status ifd_metrics_callback_create(ifd_metrics *r, ifd_metric_type type, const char *name,
                                       const char *help, ifd_metric_value_fn fn, void *arg) {
    if (!fn) return ifd_error(IFD_ERR_INVALID_ARGUMENT, "metric '%s': no callback",
                              name ? name : "(null)");
    if (type == IFD_METRIC_HISTOGRAM)
        return ifd_error(IFD_ERR_INVALID_ARGUMENT,
                         "metric '%s': a callback gives a counter or a gauge, not a histogram",
                         name ? name : "(null)");
    return family_add(r, type, name, help, 0, NULL, 0, NULL, fn, arg, NULL);
}

/* ---- series --------------------------------------------------------------------------------- */

static bool values_equal(const ifd_metric_series *s, size_t n, const char *const *values) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(s->values[i], values[i]) != 0) return false;
    return true;
}

/* One allocation: the struct, its buckets, the value pointers, the raw values and the escaped
 * label text, so removal is one free. */
static ifd_status series_new(ifd_metric_family *f, const char *const *values,
                             ifd_metric_series **out) {
    size_t n_buckets = f->type == IFD_METRIC_HISTOGRAM ? f->n_bounds + 1 : 0;
    ifd_sbuf text = {0};
    size_t raw = 0;
    for (size_t i = 0; i < f->n_labels; i++) {
        if (i) ifd_sbuf_puts(&text, ",");
        ifd_sbuf_puts(&text, f->labels[i]);
        ifd_sbuf_puts(&text, "=\"");
        append_label_value(&text, values[i]);
        ifd_sbuf_puts(&text, "\"");
        raw += strlen(values[i]) + 1; /* bounded: each value <= IFD_METRICS_MAX_LABEL_VALUE */
    }
    if (text.failed) {
        ifd_sbuf_free(&text);
        return ifd_error(IFD_ERR_NO_MEMORY, "metric '%s': out of memory", f->name);
    }
    size_t head = sizeof(ifd_metric_series) + n_buckets * sizeof(_Atomic uint64_t);
    size_t ptrs = f->n_labels * sizeof(char *);
    size_t total = head + ptrs + raw + text.len + 1;
    ifd_metric_series *s = ifd_calloc(1, total);
    if (!s) {
        ifd_sbuf_free(&text);
        return ifd_error(IFD_ERR_NO_MEMORY, "metric '%s': out of memory", f->name);
    }
    s->family = f;
    s->values = (char **)((char *)s + head);
    char *p = (char *)s + head + ptrs;
    for (size_t i = 0; i < f->n_labels; i++) {
        size_t n = strlen(values[i]) + 1;
        memcpy(p, values[i], n);
        s->values[i] = p;
        p += n;
    }
    s->label_text = p;
    if (text.len) memcpy(p, text.data, text.len);
    p[text.len] = 0;
    ifd_sbuf_free(&text);
    atomic_init(&s->count, 0);
    atomic_init(&s->bits, double_to_bits(0.0));
    for (size_t i = 0; i < n_buckets; i++) atomic_init(&s->buckets[i], 0);
    *out = s;
    return IFD_OK;
}

ifd_status ifd_metric_series_get(ifd_metric_family *f, const char *const *label_values,
                                 ifd_metric_series **out) {
    *out = NULL;
    if (!f) return ifd_error(IFD_ERR_INVALID_ARGUMENT, "metric series: no family");
    if (f->fn)
        return ifd_error(IFD_ERR_INVALID_ARGUMENT,
                         "metric '%s' is computed by a callback and has no series", f->name);
    if (f->n_labels && !label_values)
        return ifd_error(IFD_ERR_INVALID_ARGUMENT, "metric '%s': label values missing", f->name);
    for (size_t i = 0; i < f->n_labels; i++) {
        const char *v = label_values[i];
        if (!v)
            return ifd_error(IFD_ERR_INVALID_ARGUMENT, "metric '%s': value of label '%s' missing",
                             f->name, f->labels[i]);
        size_t n = strnlen(v, IFD_METRICS_MAX_LABEL_VALUE + 1);
        if (n > IFD_METRICS_MAX_LABEL_VALUE)
            return ifd_error(IFD_ERR_TOO_BIG,
                             "metric '%s': value of label '%s' is longer than %d bytes", f->name,
                             f->labels[i], IFD_METRICS_MAX_LABEL_VALUE);
        if (!valid_utf8((const unsigned char *)v, n))
            return ifd_error(IFD_ERR_INVALID_ARGUMENT,
                             "metric '%s': value of label '%s' is not valid UTF-8", f->name,
                             f->labels[i]);
    }
    ifd_metrics *r = f->registry;
    ifd_status st = IFD_OK;
    pthread_mutex_lock(&f->mu);
    for (ifd_metric_series *s = f->head; s; s = s->next) {
        if (values_equal(s, f->n_labels, label_values)) {
            *out = s;
            goto out;
        }
    }
    if (atomic_fetch_add(&r->n_series, 1) >= r->max_series) {
        atomic_fetch_sub(&r->n_series, 1);
        st = ifd_error(IFD_ERR_TOO_BIG, "metric '%s': the registry holds its maximum of %zu series",
                       f->name, r->max_series);
        goto out;
    }
    ifd_metric_series *s = NULL;
    if ((st = series_new(f, label_values, &s)) != IFD_OK) {
        atomic_fetch_sub(&r->n_series, 1);
        goto out;
    }
    s->prev = f->tail;
    if (f->tail) f->tail->next = s;
    else f->head = s;
    f->tail = s;
    *out = s;
out:
    pthread_mutex_unlock(&f->mu);
    return st;
}

static void unlink_locked(ifd_metric_family *f, ifd_metric_series *s) {
    if (s->prev) s->prev->next = s->next;
    else f->head = s->next;
    if (s->next) s->next->prev = s->prev;
    else f->tail = s->prev;
    atomic_fetch_sub(&f->registry->n_series, 1);
}

void ifd_metric_series_remove(ifd_metric_series *s) {
    if (!s) return;
    ifd_metric_family *f = s->family;
    pthread_mutex_lock(&f->mu);
    unlink_locked(f, s);
    pthread_mutex_unlock(&f->mu);
    ifd_free(s);
}

size_t ifd_metrics_remove_matching(ifd_metrics *r, size_t n, const char *const *label_names,
                                   const char *const *label_values) {
    if (!r || n > IFD_METRICS_MAX_LABELS) return 0;
    size_t removed = 0;
    pthread_mutex_lock(&r->mu);
    for (ifd_metric_family *f = r->head; f; f = f->next) {
        size_t idx[IFD_METRICS_MAX_LABELS];
        bool has_all = true;
        for (size_t i = 0; i < n && has_all; i++) {
            has_all = false;
            for (size_t k = 0; k < f->n_labels; k++) {
                if (strcmp(f->labels[k], label_names[i]) == 0) {
                    idx[i] = k;
                    has_all = true;
                    break;
                }
            }
        }
        if (!has_all) continue;
        pthread_mutex_lock(&f->mu);
        ifd_metric_series *s = f->head;
        while (s) {
            ifd_metric_series *next = s->next;
            bool match = true;
            for (size_t i = 0; i < n && match; i++)
                match = strcmp(s->values[idx[i]], label_values[i]) == 0;
            if (match) {
                unlink_locked(f, s);
                ifd_free(s);
                removed++;
            }
            s = next;
        }
        pthread_mutex_unlock(&f->mu);
    }
    pthread_mutex_unlock(&r->mu);
    return removed;
}

size_t ifd_metrics_series_count(ifd_metrics *r) { return r ? atomic_load(&r->n_series) : 0; }

/* ---- hot path ------------------------------------------------------------------------------- */

void ifd_counter_add(ifd_metric_series *s, uint64_t n) {
    if (s) atomic_fetch_add_explicit(&s->count, n, memory_order_relaxed);
}

void ifd_gauge_set(ifd_metric_series *s, double v) {
    if (s) atomic_store_explicit(&s->bits, double_to_bits(v), memory_order_relaxed);
}

void ifd_gauge_add(ifd_metric_series *s, double v) {
    if (s) atomic_add_double(&s->bits, v);
}

void ifd_histogram_observe(ifd_metric_series *s, double v) {
    if (!s || isnan(v)) return;
    const ifd_metric_family *f = s->family;
    /* first bound >= v (le is "less or equal"); n_bounds means +Inf */
    size_t lo = 0, hi = f->n_bounds;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (v <= f->bounds[mid]) hi = mid;
        else lo = mid + 1;
    }
    atomic_fetch_add_explicit(&s->buckets[lo], 1, memory_order_relaxed);
    atomic_add_double(&s->bits, v);
}

double ifd_metric_series_value(const ifd_metric_series *s) {
    if (!s) return 0;
    switch (s->family->type) {
    case IFD_METRIC_COUNTER:
        return (double)atomic_load_explicit((_Atomic uint64_t *)&s->count, memory_order_relaxed);
    case IFD_METRIC_GAUGE:
        return atomic_load_double(&s->bits);
    case IFD_METRIC_HISTOGRAM: {
        uint64_t total = 0;
        for (size_t i = 0; i <= s->family->n_bounds; i++)
            total += atomic_load_explicit((_Atomic uint64_t *)&s->buckets[i],
                                          memory_order_relaxed);
        return (double)total;
    }
    }
    return 0;
}

size_t ifd_histogram_read(const ifd_metric_series *s, uint64_t *counts, size_t max, double *sum) {
    if (sum) *sum = 0;
    if (!s || s->family->type != IFD_METRIC_HISTOGRAM) return 0;
    size_t n = IFD_MIN(max, s->family->n_bounds + 1);
    for (size_t i = 0; i < n; i++)
        counts[i] = atomic_load_explicit((_Atomic uint64_t *)&s->buckets[i], memory_order_relaxed);
    if (sum) *sum = atomic_load_double(&s->bits);
    return n;
}

double ifd_histogram_quantile(double q, const double *bounds, size_t n_bounds,
                              const uint64_t *counts) {
    uint64_t total = 0;
    for (size_t i = 0; i <= n_bounds; i++) total += counts[i];
    if (total == 0 || isnan(q)) return NAN;
    if (q < 0) return -INFINITY;
    if (q > 1) return INFINITY;
    double rank = q * (double)total;
    uint64_t below = 0;
    size_t b = 0;
    /* the first bucket whose cumulative count reaches the rank */
    for (; b <= n_bounds; b++) {
        if ((double)(below + counts[b]) >= rank && counts[b] > 0) break;
        below += counts[b];
    }
    if (b > n_bounds) b = n_bounds; /* rounding: the rank sits at the very top */
    if (b == n_bounds) return n_bounds ? bounds[n_bounds - 1] : NAN;
    double upper = bounds[b];
    double lower = b ? bounds[b - 1] : (upper > 0 ? 0 : upper);
    if (b == 0 && upper <= 0) return upper;
    double in_bucket = rank - (double)below;
    return lower + (upper - lower) * (in_bucket / (double)counts[b]);
}

/* ---- rendering ------------------------------------------------------------------------------ */

static void put_double(ifd_sbuf *b, double v) {
    char buf[32];
    ifd_sbuf_puts(b, ifd_metrics_format_double(v, buf, sizeof buf));
}

/* name{labels[,le="x"]} value */
static void put_sample(ifd_sbuf *b, const char *name, const char *suffix, const char *labels,
                       const char *le) {
    ifd_sbuf_puts(b, name);
    if (suffix) ifd_sbuf_puts(b, suffix);
    if (*labels || le) {
        ifd_sbuf_puts(b, "{");
        ifd_sbuf_puts(b, labels);
        if (le) {
            ifd_sbuf_puts(b, *labels ? ",le=\"" : "le=\"");
            ifd_sbuf_puts(b, le);
            ifd_sbuf_puts(b, "\"");
        }
        ifd_sbuf_puts(b, "}");
    }
    ifd_sbuf_puts(b, " ");
}

static void render_series(ifd_sbuf *b, const ifd_metric_family *f, const ifd_metric_series *s) {
    switch (f->type) {
    case IFD_METRIC_COUNTER:
        put_sample(b, f->name, NULL, s->label_text, NULL);
        ifd_sbuf_printf(b, "%llu\n", (unsigned long long)atomic_load_explicit(
                                         (_Atomic uint64_t *)&s->count, memory_order_relaxed));
        break;
    case IFD_METRIC_GAUGE:
        put_sample(b, f->name, NULL, s->label_text, NULL);
        put_double(b, atomic_load_double(&s->bits));
        ifd_sbuf_puts(b, "\n");
        break;
    case IFD_METRIC_HISTOGRAM: {
        uint64_t cum = 0;
        char le[32];
        for (size_t i = 0; i <= f->n_bounds; i++) {
            cum += atomic_load_explicit((_Atomic uint64_t *)&s->buckets[i], memory_order_relaxed);
            ifd_metrics_format_double(i < f->n_bounds ? f->bounds[i] : INFINITY, le, sizeof le);
            put_sample(b, f->name, "_bucket", s->label_text, le);
            ifd_sbuf_printf(b, "%llu\n", (unsigned long long)cum);
        }
        /* _count is the +Inf bucket read above, so the two always agree */
        put_sample(b, f->name, "_sum", s->label_text, NULL);
        put_double(b, atomic_load_double(&s->bits));
        ifd_sbuf_puts(b, "\n");
        put_sample(b, f->name, "_count", s->label_text, NULL);
        ifd_sbuf_printf(b, "%llu\n", (unsigned long long)cum);
        break;
    }
    }
}

static const char *type_name(ifd_metric_type t) {
    return t == IFD_METRIC_COUNTER ? "counter" : t == IFD_METRIC_GAUGE ? "gauge" : "histogram";
}

static void render_header(ifd_sbuf *b, const ifd_metric_family *f) {
    ifd_sbuf_puts(b, "# HELP ");
    ifd_sbuf_puts(b, f->name);
    ifd_sbuf_puts(b, " ");
    append_help(b, f->help);
    ifd_sbuf_printf(b, "\n# TYPE %s %s\n", f->name, type_name(f->type));
}

void ifd_metrics_render(ifd_metrics *r, ifd_sbuf *b) {
    if (!r) return;
    pthread_mutex_lock(&r->mu);
    for (ifd_metric_family *f = r->head; f && !b->failed; f = f->next) {
        if (f->fn) {
            double v = f->fn(f->fn_arg);
            render_header(b, f);
            ifd_sbuf_puts(b, f->name);
            ifd_sbuf_puts(b, " ");
            put_double(b, v);
            ifd_sbuf_puts(b, "\n");
            continue;
        }
        pthread_mutex_lock(&f->mu);
        if (f->head) render_header(b, f);
        for (ifd_metric_series *s = f->head; s; s = s->next) render_series(b, f, s);
        pthread_mutex_unlock(&f->mu);
    }
    pthread_mutex_unlock(&r->mu);
}

/* ---- inferd's metric set -------------------------------------------------------------------- */

/* 1-2.5-5 steps from 0.1 ms to 10 s: requests on a small CPU model take well under a
 * millisecond, a large one seconds; 16 buckets keep the per-series cost at 17 counters. */
const double ifd_metrics_latency_bounds[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                             0.01,   0.025,   0.05,   0.1,   0.25,   0.5,
                                             1,      2.5,     5,      10};
const size_t ifd_metrics_latency_bounds_count = IFD_ARRAY_LEN(ifd_metrics_latency_bounds);
const double ifd_metrics_batch_bounds[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024};
const size_t ifd_metrics_batch_bounds_count = IFD_ARRAY_LEN(ifd_metrics_batch_bounds);

#define LAT_BUCKETS (IFD_ARRAY_LEN(ifd_metrics_latency_bounds) + 1)
#define N_ERRORS (IFD_OUTCOME_COUNT - 1)

static const char *const g_outcome_names[IFD_OUTCOME_COUNT] = {
    [IFD_OUTCOME_SUCCESS] = "success",       [IFD_OUTCOME_INVALID_INPUT] = "invalid_input",
    [IFD_OUTCOME_NOT_FOUND] = "not_found",   [IFD_OUTCOME_QUEUE_FULL] = "queue_full",
    [IFD_OUTCOME_TIMEOUT] = "timeout",       [IFD_OUTCOME_INTERNAL] = "internal",
};

const char *ifd_outcome_name(ifd_outcome o) {
    return (unsigned)o < IFD_OUTCOME_COUNT ? g_outcome_names[o] : NULL;
}

enum { STAGE_REQUEST, STAGE_QUEUE, STAGE_INPUT, STAGE_COMPUTE, STAGE_OUTPUT, STAGE_COUNT };

/* Counters read at one sample, kept to take the deltas at the next one. */
typedef struct version_snapshot {
    uint64_t requests[IFD_OUTCOME_COUNT];
    uint64_t inferences;
    uint64_t latency[LAT_BUCKETS];
    uint64_t queue[LAT_BUCKETS];
    double queue_sum;
    uint64_t batch[IFD_ARRAY_LEN(ifd_metrics_batch_bounds) + 1];
    double batch_sum;
} version_snapshot;

/* One second of one version. Floats: 7 digits are plenty for a chart, and halve the ring. */
typedef struct version_point {
    float request_rate, inference_rate;
    float errors[N_ERRORS];
    float p50, p95, p99;
    float queue_mean, batch_mean;
} version_point;

typedef struct server_point {
    double cpu_cores, rss_bytes, allocator_bytes, open_connections;
} server_point;

struct ifd_version_metrics {
    ifd_serve_metrics *sm;
    ifd_version_metrics *next; /* sorted by model, then version */
    char *model;
    int64_t version;
    char version_str[24];
    ifd_metric_series *requests[IFD_OUTCOME_COUNT];
    ifd_metric_series *inferences, *executions;
    ifd_metric_series *stage[STAGE_COUNT];
    ifd_metric_series *batch_size, *pending, *loaded, *load_duration;
    /* history, touched only under sm->mu */
    version_snapshot prev;
    int64_t prev_ms;
    size_t start, n; /* ring of IFD_HISTORY_POINTS */
    int64_t t[IFD_HISTORY_POINTS];
    version_point points[IFD_HISTORY_POINTS];
};

struct ifd_serve_metrics {
    ifd_metrics *registry;
    ifd_metric_family *requests, *inferences, *executions, *stage[STAGE_COUNT], *batch_size,
        *pending, *loaded, *load_duration, *load_failures, *drift_score, *drift_threshold,
        *http_requests, *open_connections, *build_info;
    ifd_metric_series *open_connections_series;
    _Atomic(ifd_metric_series *) http_code[500]; /* 100..599, created on first use */
    double start_time_s;                         /* unix seconds */
    struct timespec start_mono;
    pthread_mutex_t mu; /* guards the version list and every history */
    ifd_version_metrics *versions;
    /* server history */
    double prev_cpu;
    int64_t prev_ms;
    size_t start, n;
    int64_t t[IFD_HISTORY_POINTS];
    server_point points[IFD_HISTORY_POINTS];
    /* sampler thread */
    pthread_mutex_t sampler_mu;
    pthread_cond_t sampler_cv;
    pthread_t sampler;
    bool sampler_running, sampler_stop;
    atomic_int interval_ms;
};

/* ---- process readings ----------------------------------------------------------------------- */

static double timespec_s(struct timespec t) { return (double)t.tv_sec + (double)t.tv_nsec * 1e-9; }

static double process_cpu_seconds(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return NAN;
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
}

/* Read a small /proc file into buf (NUL-terminated); false when it cannot be read. */
static bool read_proc(const char *path, char *buf, size_t size) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    size_t len = 0;
    while (len + 1 < size) {
        ssize_t n = read(fd, buf + len, size - 1 - len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        len += (size_t)n;
    }
    close(fd);
    buf[len] = 0;
    return len > 0;
}

static double process_rss_bytes(void) {
    char buf[256];
    unsigned long long size, resident;
    if (!read_proc("/proc/self/statm", buf, sizeof buf) ||
        sscanf(buf, "%llu %llu", &size, &resident) != 2)
        return NAN;
    long page = sysconf(_SC_PAGESIZE);
    return (double)resident * (double)(page > 0 ? page : 4096);
}

/* The kernel's start time of this process (field 22 of /proc/self/stat, clock ticks after boot,
 * plus btime from /proc/stat), as client libraries report it; fallback: the given time. */
static double process_start_time(double fallback) {
    char stat[2048], buf[8192];
    if (!read_proc("/proc/self/stat", stat, sizeof stat)) return fallback;
    const char *p = strrchr(stat, ')'); /* comm may hold spaces and parens */
    if (!p) return fallback;
    p++;
    unsigned long long start_ticks = 0;
    /* after ')' come field 3 (state) .. field 22 (starttime): skip 19 fields */
    for (int field = 3; field < 22; field++) {
        while (*p == ' ') p++;
        while (*p && *p != ' ') p++;
    }
    if (sscanf(p, " %llu", &start_ticks) != 1) return fallback;
    if (!read_proc("/proc/stat", buf, sizeof buf)) return fallback;
    const char *bt = strstr(buf, "\nbtime ");
    unsigned long long btime;
    if (!bt || sscanf(bt + 7, "%llu", &btime) != 1) return fallback;
    long hz = sysconf(_SC_CLK_TCK);
    if (hz <= 0) return fallback;
    return (double)btime + (double)start_ticks / (double)hz;
}

static double cb_cpu(void *arg) { return process_cpu_seconds(); }
static double cb_rss(void *arg) { return process_rss_bytes(); }
static double cb_start(void *arg) { return ((ifd_serve_metrics *)arg)->start_time_s; }
static double cb_allocator(void *arg) { return (double)ifd_memory_in_use(); }

static double cb_open_fds(void *arg) {
    DIR *d = opendir("/proc/self/fd");
    if (!d) return NAN;
    double n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n - 1; /* the descriptor opendir holds */
}

static double cb_uptime(void *arg) {
    ifd_serve_metrics *sm = arg;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return timespec_s(now) - timespec_s(sm->start_mono);
}

static int64_t wall_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* ---- serve metrics: creation ---------------------------------------------------------------- */

static const char *const L_MODEL_VERSION[] = {"model", "version"};
static const char *const L_MODEL_VERSION_OUTCOME[] = {"model", "version", "outcome"};
static const char *const L_MODEL_VERSION_TENSOR[] = {"model", "version", "tensor"};
static const char *const L_MODEL[] = {"model"};
static const char *const L_CODE[] = {"code"};
static const char *const L_VERSION[] = {"version"};

ifd_status ifd_serve_metrics_create(ifd_serve_metrics **out) {
    *out = NULL;
    ifd_status st;
    ifd_serve_metrics *sm = ifd_calloc(1, sizeof *sm);
    if (!sm) return ifd_error(IFD_ERR_NO_MEMORY, "metrics: out of memory");
    bool mu = false, smu = false, cv = false;
    if (!(mu = pthread_mutex_init(&sm->mu, NULL) == 0) ||
        !(smu = pthread_mutex_init(&sm->sampler_mu, NULL) == 0)) {
        st = ifd_error(IFD_ERR_INTERNAL, "metrics: mutex init failed");
        goto fail;
    }
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    cv = pthread_cond_init(&sm->sampler_cv, &ca) == 0;
    pthread_condattr_destroy(&ca);
    if (!cv) {
        st = ifd_error(IFD_ERR_INTERNAL, "metrics: condition variable init failed");
        goto fail;
    }
    for (size_t i = 0; i < IFD_ARRAY_LEN(sm->http_code); i++) atomic_init(&sm->http_code[i], NULL);
    clock_gettime(CLOCK_MONOTONIC, &sm->start_mono);
    sm->start_time_s = process_start_time((double)wall_ms() / 1000.0);
    sm->prev_cpu = process_cpu_seconds();
    sm->prev_ms = wall_ms();
    if ((st = ifd_metrics_create(0, &sm->registry)) != IFD_OK) goto fail;

    ifd_metrics *r = sm->registry;
    const double *lat = ifd_metrics_latency_bounds;
    size_t nlat = ifd_metrics_latency_bounds_count;
    static const char *const stage_names[STAGE_COUNT] = {
        "inferd_request_duration_seconds", "inferd_queue_duration_seconds",
        "inferd_input_duration_seconds", "inferd_compute_duration_seconds",
        "inferd_output_duration_seconds"};
    static const char *const stage_help[STAGE_COUNT] = {
        "Time from a request's arrival to its reply being ready, in seconds.",
        "Time a request waited in its version's queue before a worker took it, in seconds.",
        "Time spent decoding and checking a request's input tensors, in seconds.",
        "Time of the session run that computed a request (its whole batch), in seconds.",
        "Time spent encoding a request's output tensors, in seconds."};
#define FAM(type, name, help, nl, labels, nb, bounds, dst)                                         \
    if ((st = ifd_metrics_family_create(r, type, name, help, nl, labels, nb, bounds, dst)) !=      \
        IFD_OK)                                                                                    \
        goto fail;
    FAM(IFD_METRIC_COUNTER, "inferd_requests_total",
        "Inference requests that reached a model version, by outcome.", 3, L_MODEL_VERSION_OUTCOME,
        0, NULL, &sm->requests);
    FAM(IFD_METRIC_COUNTER, "inferd_inferences_total",
        "Inferences performed: batch elements, so a batch of 8 counts 8.", 2, L_MODEL_VERSION, 0,
        NULL, &sm->inferences);
    FAM(IFD_METRIC_COUNTER, "inferd_executions_total",
        "Model executions (session runs); with dynamic batching one run serves several requests.",
        2, L_MODEL_VERSION, 0, NULL, &sm->executions);
    for (int i = 0; i < STAGE_COUNT; i++)
        FAM(IFD_METRIC_HISTOGRAM, stage_names[i], stage_help[i], 2, L_MODEL_VERSION, nlat, lat,
            &sm->stage[i]);
    FAM(IFD_METRIC_HISTOGRAM, "inferd_batch_size", "Batch elements per model execution.", 2,
        L_MODEL_VERSION, ifd_metrics_batch_bounds_count, ifd_metrics_batch_bounds, &sm->batch_size);
    FAM(IFD_METRIC_GAUGE, "inferd_pending_requests",
        "Requests queued or running on a model version.", 2, L_MODEL_VERSION, 0, NULL,
        &sm->pending);
    FAM(IFD_METRIC_GAUGE, "inferd_model_loaded",
        "1 when the model version is loaded and can serve, else 0.", 2, L_MODEL_VERSION, 0, NULL,
        &sm->loaded);
    FAM(IFD_METRIC_GAUGE, "inferd_model_load_duration_seconds",
        "Time the model version's last load took, in seconds.", 2, L_MODEL_VERSION, 0, NULL,
        &sm->load_duration);
    FAM(IFD_METRIC_COUNTER, "inferd_model_load_failures_total",
        "Failed attempts to load a version of the model.", 1, L_MODEL, 0, NULL, &sm->load_failures);
    FAM(IFD_METRIC_GAUGE, "inferd_drift_score",
        "Population stability index of a model input or output against its baseline.", 3,
        L_MODEL_VERSION_TENSOR, 0, NULL, &sm->drift_score);
    FAM(IFD_METRIC_GAUGE, "inferd_drift_threshold",
        "Drift score above which the model version's data counts as drifted (config.json).", 2,
        L_MODEL_VERSION, 0, NULL, &sm->drift_threshold);
    FAM(IFD_METRIC_COUNTER, "inferd_http_requests_total", "HTTP requests answered, by status code.",
        1, L_CODE, 0, NULL, &sm->http_requests);
    FAM(IFD_METRIC_GAUGE, "inferd_http_open_connections", "HTTP connections open now.", 0, NULL,
        0, NULL, &sm->open_connections);
#undef FAM
#define CB(type, name, help, fn)                                                               \
    if ((st = ifd_metrics_callback_create(r, type, name, help, fn, sm)) != IFD_OK) goto fail;
    CB(IFD_METRIC_COUNTER, "process_cpu_seconds_total",
       "Total user and system CPU time spent in seconds.", cb_cpu);
    CB(IFD_METRIC_GAUGE, "process_resident_memory_bytes", "Resident memory size in bytes.",
       cb_rss);
    CB(IFD_METRIC_GAUGE, "process_start_time_seconds",
       "Start time of the process since unix epoch in seconds.", cb_start);
    CB(IFD_METRIC_GAUGE, "process_open_fds", "Number of open file descriptors.", cb_open_fds);
    CB(IFD_METRIC_GAUGE, "inferd_allocator_bytes",
       "Bytes held through inferd's accounted allocator (models, sessions, requests).",
       cb_allocator);
    CB(IFD_METRIC_GAUGE, "inferd_uptime_seconds", "Seconds since the server started.",
       cb_uptime);
#undef CB
    if ((st = ifd_metrics_family_create(r, IFD_METRIC_GAUGE, "inferd_build_info",
                                        "Always 1; the version label is inferd's version.", 1,
                                        L_VERSION, 0, NULL, &sm->build_info)) != IFD_OK)
        goto fail;
    ifd_metric_series *bi;
    if ((st = ifd_metric_series_get(sm->build_info, (const char *[]){IFD_VERSION_STRING}, &bi)) !=
        IFD_OK)
        goto fail;
    ifd_gauge_set(bi, 1);
    if ((st = ifd_metric_series_get(sm->open_connections, NULL, &sm->open_connections_series)) !=
        IFD_OK)
        goto fail;
    *out = sm;
    return IFD_OK;
fail:
    ifd_metrics_free(sm->registry);
    if (cv) pthread_cond_destroy(&sm->sampler_cv);
    if (smu) pthread_mutex_destroy(&sm->sampler_mu);
    if (mu) pthread_mutex_destroy(&sm->mu);
    ifd_free(sm);
    return st;
}

static void version_free(ifd_version_metrics *vm) {
    if (!vm) return;
    ifd_free(vm->model);
    ifd_free(vm);
}

void ifd_serve_metrics_free(ifd_serve_metrics *sm) {
    if (!sm) return;
    ifd_serve_metrics_stop_sampler(sm);
    ifd_version_metrics *vm = sm->versions;
    while (vm) {
        ifd_version_metrics *next = vm->next;
        version_free(vm);
        vm = next;
    }
    ifd_metrics_free(sm->registry); /* frees every series */
    pthread_cond_destroy(&sm->sampler_cv);
    pthread_mutex_destroy(&sm->sampler_mu);
    pthread_mutex_destroy(&sm->mu);
    ifd_free(sm);
}

ifd_metrics *ifd_serve_metrics_registry(ifd_serve_metrics *sm) { return sm ? sm->registry : NULL; }

void ifd_serve_metrics_render(ifd_serve_metrics *sm, ifd_sbuf *b) {
    if (sm) ifd_metrics_render(sm->registry, b);
}

/* ---- versions ------------------------------------------------------------------------------- */

static int version_cmp(const ifd_version_metrics *a, const char *model, int64_t version) {
    int c = strcmp(a->model, model);
    if (c) return c;
    return a->version < version ? -1 : a->version > version;
}

static void snapshot_version(const ifd_version_metrics *vm, version_snapshot *s);

ifd_status ifd_serve_metrics_version_add(ifd_serve_metrics *sm, const char *model,
                                         int64_t version, ifd_version_metrics **out) {
    *out = NULL;
    if (!sm) return IFD_OK;
    if (!model || !*model)
        return ifd_error(IFD_ERR_INVALID_ARGUMENT, "metrics: model name is empty");
    ifd_status st = IFD_OK;
    ifd_version_metrics *vm = ifd_calloc(1, sizeof *vm);
    if (!vm) return ifd_error(IFD_ERR_NO_MEMORY, "metrics for model '%s': out of memory", model);
    vm->sm = sm;
    vm->version = version;
    snprintf(vm->version_str, sizeof vm->version_str, "%lld", (long long)version);
    if (!(vm->model = ifd_strdup(model))) {
        version_free(vm);
        return ifd_error(IFD_ERR_NO_MEMORY, "metrics for model '%s': out of memory", model);
    }
    pthread_mutex_lock(&sm->mu);
    ifd_version_metrics **link = &sm->versions;
    while (*link && version_cmp(*link, model, version) < 0)
        link = &(*link)->next;
    if (*link && version_cmp(*link, model, version) == 0) {
        st =
            ifd_error(IFD_ERR_INVALID_ARGUMENT, "metrics: model '%s' version %lld is already there",
                      model, (long long)version);
        goto fail;
    }
    const char *mv[] = {model, vm->version_str};
    for (int o = 0; o < IFD_OUTCOME_COUNT; o++) {
        const char *mvo[] = {model, vm->version_str, g_outcome_names[o]};
        if ((st = ifd_metric_series_get(sm->requests, mvo, &vm->requests[o])) != IFD_OK)
            goto fail_series;
    }
    struct {
        ifd_metric_family *f;
        ifd_metric_series **s;
    } plain[] = {
        {sm->inferences, &vm->inferences},   {sm->executions, &vm->executions},
        {sm->stage[0], &vm->stage[0]},       {sm->stage[1], &vm->stage[1]},
        {sm->stage[2], &vm->stage[2]},       {sm->stage[3], &vm->stage[3]},
        {sm->stage[4], &vm->stage[4]},       {sm->batch_size, &vm->batch_size},
        {sm->pending, &vm->pending},         {sm->loaded, &vm->loaded},
        {sm->load_duration, &vm->load_duration},
    };
    for (size_t i = 0; i < IFD_ARRAY_LEN(plain); i++)
        if ((st = ifd_metric_series_get(plain[i].f, mv, plain[i].s)) != IFD_OK) goto fail_series;
    /* the baseline for the first history point */
    snapshot_version(vm, &vm->prev);
    vm->prev_ms = sm->prev_ms;
    vm->next = *link;
    *link = vm;
    pthread_mutex_unlock(&sm->mu);
    *out = vm;
    return IFD_OK;
fail_series:
    ifd_metrics_remove_matching(sm->registry, 2, L_MODEL_VERSION, mv);
fail:
    pthread_mutex_unlock(&sm->mu);
    version_free(vm);
    return st;
}

void ifd_serve_metrics_version_remove(ifd_serve_metrics *sm, ifd_version_metrics *vm) {
    if (!sm || !vm) return;
    pthread_mutex_lock(&sm->mu);
    for (ifd_version_metrics **link = &sm->versions; *link; link = &(*link)->next) {
        if (*link == vm) {
            *link = vm->next;
            break;
        }
    }
    const char *mv[] = {vm->model, vm->version_str};
    ifd_metrics_remove_matching(sm->registry, 2, L_MODEL_VERSION, mv);
    pthread_mutex_unlock(&sm->mu);
    version_free(vm);
}

void ifd_serve_metrics_load_failure(ifd_serve_metrics *sm, const char *model) {
    ifd_metric_series *s;
    if (sm && model && ifd_metric_series_get(sm->load_failures, &model, &s) == IFD_OK)
        ifd_counter_add(s, 1);
}

void ifd_serve_metrics_model_remove(ifd_serve_metrics *sm, const char *model) {
    if (!sm || !model) return;
    pthread_mutex_lock(&sm->mu);
    ifd_version_metrics **link = &sm->versions;
    while (*link) {
        ifd_version_metrics *vm = *link;
        if (strcmp(vm->model, model) == 0) {
            *link = vm->next;
            version_free(vm);
        } else {
            link = &vm->next;
        }
    }
    ifd_metrics_remove_matching(sm->registry, 1, L_MODEL, &model);
    pthread_mutex_unlock(&sm->mu);
}

void ifd_serve_metrics_http_request(ifd_serve_metrics *sm, int code) {
    if (!sm || code < 100 || code > 599) return;
    _Atomic(ifd_metric_series *) *slot = &sm->http_code[code - 100];
    ifd_metric_series *s = atomic_load_explicit(slot, memory_order_acquire);
    if (IFD_UNLIKELY(!s)) {
        /* first response with this code: create the series (locks once per code); two threads
         * racing here get the same series back */
        char text[8];
        snprintf(text, sizeof text, "%d", code);
        const char *v = text;
        if (ifd_metric_series_get(sm->http_requests, &v, &s) != IFD_OK) return;
        atomic_store_explicit(slot, s, memory_order_release);
    }
    ifd_counter_add(s, 1);
}

void ifd_serve_metrics_connections_add(ifd_serve_metrics *sm, int delta) {
    if (sm) ifd_gauge_add(sm->open_connections_series, delta);
}

void ifd_version_metrics_loaded(ifd_version_metrics *vm, bool loaded, double seconds) {
    if (!vm) return;
    ifd_gauge_set(vm->loaded, loaded ? 1 : 0);
    if (seconds >= 0) ifd_gauge_set(vm->load_duration, seconds);
}

void ifd_version_metrics_pending(ifd_version_metrics *vm, int delta) {
    if (vm) ifd_gauge_add(vm->pending, delta);
}

void ifd_version_metrics_batch(ifd_version_metrics *vm, int64_t elements) {
    if (!vm || elements < 0) return;
    ifd_counter_add(vm->executions, 1);
    ifd_counter_add(vm->inferences, (uint64_t)elements);
    ifd_histogram_observe(vm->batch_size, (double)elements);
}

void ifd_version_metrics_request(ifd_version_metrics *vm, ifd_outcome outcome,
                                 const ifd_request_timing *t) {
    if (!vm) return;
    if ((unsigned)outcome >= IFD_OUTCOME_COUNT) outcome = IFD_OUTCOME_INTERNAL;
    ifd_counter_add(vm->requests[outcome], 1);
    if (!t) return;
    const double v[STAGE_COUNT] = {t->request_s, t->queue_s, t->input_s, t->compute_s,
                                   t->output_s};
    for (int i = 0; i < STAGE_COUNT; i++)
        if (v[i] >= 0) ifd_histogram_observe(vm->stage[i], v[i]);
}

ifd_status ifd_version_metrics_drift_series(ifd_version_metrics *vm, const char *tensor,
                                            ifd_metric_series **out) {
    *out = NULL;
    if (!vm) return IFD_OK;
    if (!tensor) return ifd_error(IFD_ERR_INVALID_ARGUMENT, "drift metric: no tensor name");
    const char *v[] = {vm->model, vm->version_str, tensor};
    return ifd_metric_series_get(vm->sm->drift_score, v, out);
}

ifd_status ifd_version_metrics_drift_threshold(ifd_version_metrics *vm, double threshold) {
    if (!vm) return IFD_OK;
    const char *v[] = {vm->model, vm->version_str};
    ifd_metric_series *s;
    ifd_status st = ifd_metric_series_get(vm->sm->drift_threshold, v, &s);
    if (st == IFD_OK) ifd_gauge_set(s, threshold);
    return st;
}

/* ---- history -------------------------------------------------------------------------------- */

static void snapshot_version(const ifd_version_metrics *vm, version_snapshot *s) {
    memset(s, 0, sizeof *s);
    for (int o = 0; o < IFD_OUTCOME_COUNT; o++)
        s->requests[o] = (uint64_t)ifd_metric_series_value(vm->requests[o]);
    s->inferences = (uint64_t)ifd_metric_series_value(vm->inferences);
    double unused;
    ifd_histogram_read(vm->stage[STAGE_REQUEST], s->latency, LAT_BUCKETS, &unused);
    ifd_histogram_read(vm->stage[STAGE_QUEUE], s->queue, LAT_BUCKETS, &s->queue_sum);
    ifd_histogram_read(vm->batch_size, s->batch, IFD_ARRAY_LEN(s->batch), &s->batch_sum);
}

static uint64_t sum_u64(const uint64_t *v, size_t n) {
    uint64_t t = 0;
    for (size_t i = 0; i < n; i++) t += v[i];
    return t;
}

static void sample_version(ifd_version_metrics *vm, int64_t now_ms) {
    version_snapshot cur;
    snapshot_version(vm, &cur);
    if (now_ms <= vm->prev_ms) {
        /* the clock went back: start again from here rather than report a negative rate */
        vm->prev = cur;
        vm->prev_ms = now_ms;
        return;
    }
    const version_snapshot *p = &vm->prev;
    double dt = (double)(now_ms - vm->prev_ms) / 1000.0;
    version_point pt;
    uint64_t req = 0;
    for (int o = 0; o < IFD_OUTCOME_COUNT; o++) req += cur.requests[o] - p->requests[o];
    pt.request_rate = (float)((double)req / dt);
    pt.inference_rate = (float)((double)(cur.inferences - p->inferences) / dt);
    for (int o = 1; o < IFD_OUTCOME_COUNT; o++)
        pt.errors[o - 1] = (float)((double)(cur.requests[o] - p->requests[o]) / dt);
    uint64_t lat[LAT_BUCKETS];
    for (size_t i = 0; i < LAT_BUCKETS; i++) lat[i] = cur.latency[i] - p->latency[i];
    size_t nb = ifd_metrics_latency_bounds_count;
    pt.p50 = (float)ifd_histogram_quantile(0.50, ifd_metrics_latency_bounds, nb, lat);
    pt.p95 = (float)ifd_histogram_quantile(0.95, ifd_metrics_latency_bounds, nb, lat);
    pt.p99 = (float)ifd_histogram_quantile(0.99, ifd_metrics_latency_bounds, nb, lat);
    uint64_t qn = sum_u64(cur.queue, LAT_BUCKETS) - sum_u64(p->queue, LAT_BUCKETS);
    pt.queue_mean = qn ? (float)((cur.queue_sum - p->queue_sum) / (double)qn) : NAN;
    size_t bb = IFD_ARRAY_LEN(cur.batch);
    uint64_t bn = sum_u64(cur.batch, bb) - sum_u64(p->batch, bb);
    pt.batch_mean = bn ? (float)((cur.batch_sum - p->batch_sum) / (double)bn) : NAN;

    size_t slot = (vm->start + vm->n) % IFD_HISTORY_POINTS;
    if (vm->n == IFD_HISTORY_POINTS) vm->start = (vm->start + 1) % IFD_HISTORY_POINTS;
    else vm->n++;
    vm->t[slot] = now_ms;
    vm->points[slot] = pt;
    vm->prev = cur;
    vm->prev_ms = now_ms;
}

static void sample_server(ifd_serve_metrics *sm, int64_t now_ms) {
    double cpu = process_cpu_seconds();
    if (now_ms <= sm->prev_ms) {
        sm->prev_cpu = cpu;
        sm->prev_ms = now_ms;
        return;
    }
    double dt = (double)(now_ms - sm->prev_ms) / 1000.0;
    server_point pt = {
        .cpu_cores = (cpu - sm->prev_cpu) / dt,
        .rss_bytes = process_rss_bytes(),
        .allocator_bytes = (double)ifd_memory_in_use(),
        .open_connections = ifd_metric_series_value(sm->open_connections_series),
    };
    size_t slot = (sm->start + sm->n) % IFD_HISTORY_POINTS;
    if (sm->n == IFD_HISTORY_POINTS) sm->start = (sm->start + 1) % IFD_HISTORY_POINTS;
    else sm->n++;
    sm->t[slot] = now_ms;
    sm->points[slot] = pt;
    sm->prev_cpu = cpu;
    sm->prev_ms = now_ms;
}

void ifd_serve_metrics_sample(ifd_serve_metrics *sm, int64_t now_ms) {
    if (!sm) return;
    if (now_ms == 0) now_ms = wall_ms();
    pthread_mutex_lock(&sm->mu);
    sample_server(sm, now_ms);
    for (ifd_version_metrics *vm = sm->versions; vm; vm = vm->next) sample_version(vm, now_ms);
    pthread_mutex_unlock(&sm->mu);
}

static void *sampler_main(void *arg) {
    ifd_serve_metrics *sm = arg;
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    pthread_mutex_lock(&sm->sampler_mu);
    while (!sm->sampler_stop) {
        /* deadlines on a fixed grid so the points stay evenly spaced whatever sampling costs */
        next.tv_sec += sm->interval_ms / 1000;
        next.tv_nsec += (long)(sm->interval_ms % 1000) * 1000000L;
        if (next.tv_nsec >= 1000000000L) {
            next.tv_sec++;
            next.tv_nsec -= 1000000000L;
        }
        int rc = 0;
        while (!sm->sampler_stop && rc != ETIMEDOUT)
            rc = pthread_cond_timedwait(&sm->sampler_cv, &sm->sampler_mu, &next);
        if (sm->sampler_stop) break;
        pthread_mutex_unlock(&sm->sampler_mu);
        ifd_serve_metrics_sample(sm, 0);
        pthread_mutex_lock(&sm->sampler_mu);
        /* fell behind (a suspended process): skip the missed ticks instead of bursting */
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (timespec_s(now) > timespec_s(next) + (double)sm->interval_ms / 1000.0) next = now;
    }
    pthread_mutex_unlock(&sm->sampler_mu);
    return NULL;
}

ifd_status ifd_serve_metrics_start_sampler(ifd_serve_metrics *sm, int interval_ms) {
    if (!sm) return IFD_OK;
    if (interval_ms < 0)
        return ifd_error(IFD_ERR_INVALID_ARGUMENT, "metrics sampler: interval %d ms is negative",
                         interval_ms);
    pthread_mutex_lock(&sm->sampler_mu);
    if (sm->sampler_running) {
        pthread_mutex_unlock(&sm->sampler_mu);
        return ifd_error(IFD_ERR_INVALID_ARGUMENT, "metrics sampler: already running");
    }
    sm->interval_ms = interval_ms ? interval_ms : 1000;
    sm->sampler_stop = false;
    int rc = pthread_create(&sm->sampler, NULL, sampler_main, sm);
    sm->sampler_running = rc == 0;
    pthread_mutex_unlock(&sm->sampler_mu);
    if (rc != 0)
        return ifd_error(IFD_ERR_INTERNAL, "metrics sampler: cannot start a thread (%s)",
                         strerror(rc));
    return IFD_OK;
}

void ifd_serve_metrics_stop_sampler(ifd_serve_metrics *sm) {
    if (!sm) return;
    pthread_mutex_lock(&sm->sampler_mu);
    bool running = sm->sampler_running;
    sm->sampler_stop = true;
    pthread_cond_broadcast(&sm->sampler_cv);
    pthread_mutex_unlock(&sm->sampler_mu);
    if (!running) return;
    pthread_join(sm->sampler, NULL);
    pthread_mutex_lock(&sm->sampler_mu);
    sm->sampler_running = false;
    pthread_mutex_unlock(&sm->sampler_mu);
}

/* JSON number, or null for NaN and infinities (JSON has no literal for them). */
static void json_number(ifd_sbuf *b, double v, bool single) {
    if (!isfinite(v)) {
        ifd_sbuf_puts(b, "null");
        return;
    }
    /* enough digits for a chart and for byte counts up to 10 GB, without the noise of the
     * shortest round-trip form (9.999999999999159e-07) */
    ifd_sbuf_printf(b, single ? "%.7g" : "%.10g", v);
}

/* One JSON array of a ring's points newer than since: field at byte offset `off` of each point
 * (a float when single, else a double). */
static void json_column(ifd_sbuf *b, const char *name, const void *points, size_t stride,
                        size_t off, bool single, const int64_t *t, size_t start, size_t n,
                        int64_t since) {
    ifd_sbuf_printf(b, "\"%s\":[", name);
    bool first = true;
    for (size_t k = 0; k < n; k++) {
        size_t i = (start + k) % IFD_HISTORY_POINTS;
        if (t[i] <= since) continue;
        if (!first) ifd_sbuf_puts(b, ",");
        first = false;
        const char *p = (const char *)points + i * stride + off;
        if (single) {
            float f;
            memcpy(&f, p, sizeof f);
            json_number(b, f, true);
        } else {
            double d;
            memcpy(&d, p, sizeof d);
            json_number(b, d, false);
        }
    }
    ifd_sbuf_puts(b, "]");
}

static void json_times(ifd_sbuf *b, const int64_t *t, size_t start, size_t n, int64_t since) {
    ifd_sbuf_puts(b, "\"t\":[");
    bool first = true;
    for (size_t k = 0; k < n; k++) {
        size_t i = (start + k) % IFD_HISTORY_POINTS;
        if (t[i] <= since) continue;
        ifd_sbuf_printf(b, first ? "%lld" : ",%lld", (long long)t[i]);
        first = false;
    }
    ifd_sbuf_puts(b, "]");
}

/* "drift":{tensor:score,..},"drift_threshold":x for one version, read from the registry. */
static void json_drift(ifd_serve_metrics *sm, const ifd_version_metrics *vm, ifd_sbuf *b) {
    ifd_sbuf_puts(b, ",\"drift\":{");
    ifd_metric_family *f = sm->drift_score;
    bool first = true;
    pthread_mutex_lock(&f->mu);
    for (ifd_metric_series *s = f->head; s; s = s->next) {
        if (strcmp(s->values[0], vm->model) != 0 || strcmp(s->values[1], vm->version_str) != 0)
            continue;
        if (!first) ifd_sbuf_puts(b, ",");
        first = false;
        ifd_sbuf_json_string(b, s->values[2]);
        ifd_sbuf_puts(b, ":");
        json_number(b, ifd_metric_series_value(s), false);
    }
    pthread_mutex_unlock(&f->mu);
    ifd_sbuf_puts(b, "},\"drift_threshold\":");
    f = sm->drift_threshold;
    double threshold = NAN;
    pthread_mutex_lock(&f->mu);
    for (ifd_metric_series *s = f->head; s; s = s->next)
        if (strcmp(s->values[0], vm->model) == 0 && strcmp(s->values[1], vm->version_str) == 0)
            threshold = ifd_metric_series_value(s);
    pthread_mutex_unlock(&f->mu);
    json_number(b, threshold, false);
}

void ifd_serve_metrics_history_json(ifd_serve_metrics *sm, int64_t since_ms, ifd_sbuf *b) {
    if (!sm) {
        ifd_sbuf_puts(b, "{\"now\":0,\"interval_ms\":0,\"server\":null,\"models\":[]}");
        return;
    }
    pthread_mutex_lock(&sm->mu);
    ifd_sbuf_printf(b, "{\"now\":%lld,\"interval_ms\":%d,\"server\":{", (long long)wall_ms(),
                    sm->interval_ms ? sm->interval_ms : 1000);
    json_times(b, sm->t, sm->start, sm->n, since_ms);
    static const struct {
        const char *name;
        size_t off;
    } server_cols[] = {
        {"cpu_cores", offsetof(server_point, cpu_cores)},
        {"rss_bytes", offsetof(server_point, rss_bytes)},
        {"allocator_bytes", offsetof(server_point, allocator_bytes)},
        {"open_connections", offsetof(server_point, open_connections)},
    };
    for (size_t c = 0; c < IFD_ARRAY_LEN(server_cols); c++) {
        ifd_sbuf_puts(b, ",");
        json_column(b, server_cols[c].name, sm->points, sizeof(server_point), server_cols[c].off,
                    false, sm->t, sm->start, sm->n, since_ms);
    }
    ifd_sbuf_puts(b, "},\"models\":[");
    static const struct {
        const char *name;
        size_t off;
    } version_cols[] = {
        {"request_rate", offsetof(version_point, request_rate)},
        {"inference_rate", offsetof(version_point, inference_rate)},
        {"latency_p50_s", offsetof(version_point, p50)},
        {"latency_p95_s", offsetof(version_point, p95)},
        {"latency_p99_s", offsetof(version_point, p99)},
        {"queue_mean_s", offsetof(version_point, queue_mean)},
        {"batch_mean", offsetof(version_point, batch_mean)},
    };
    for (ifd_version_metrics *vm = sm->versions; vm && !b->failed; vm = vm->next) {
        if (vm != sm->versions) ifd_sbuf_puts(b, ",");
        ifd_sbuf_puts(b, "{\"model\":");
        ifd_sbuf_json_string(b, vm->model);
        ifd_sbuf_printf(b, ",\"version\":\"%s\",\"loaded\":", vm->version_str);
        json_number(b, ifd_metric_series_value(vm->loaded), false);
        ifd_sbuf_puts(b, ",\"pending\":");
        json_number(b, ifd_metric_series_value(vm->pending), false);
        ifd_sbuf_puts(b, ",");
        json_times(b, vm->t, vm->start, vm->n, since_ms);
        for (size_t c = 0; c < IFD_ARRAY_LEN(version_cols); c++) {
            ifd_sbuf_puts(b, ",");
            json_column(b, version_cols[c].name, vm->points, sizeof(version_point),
                        version_cols[c].off, true, vm->t, vm->start, vm->n, since_ms);
        }
        ifd_sbuf_puts(b, ",\"errors\":{");
        for (int o = 1; o < IFD_OUTCOME_COUNT; o++) {
            if (o > 1) ifd_sbuf_puts(b, ",");
            json_column(b, g_outcome_names[o], vm->points, sizeof(version_point),
                        offsetof(version_point, errors) + (size_t)(o - 1) * sizeof(float), true,
                        vm->t, vm->start, vm->n, since_ms);
        }
        ifd_sbuf_puts(b, "}");
        json_drift(sm, vm, b);
        ifd_sbuf_puts(b, "}");
    }
    ifd_sbuf_puts(b, "]}");
    pthread_mutex_unlock(&sm->mu);
}
