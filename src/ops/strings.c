/* Operator family: strings. Kernels on string tensors (IFD_DTYPE_STRING): StringConcat,
 * StringSplit, StringNormalizer, RegexFullMatch, ai.onnx.ml LabelEncoder, and the string paths of Equal,
 * Where and Cast (elementwise.c and cast.c call ifd_string_equal/where/cast for them).
 *
 * Every output element is written with ifd_tensor_set_string or ifd_tensor_copy_strings (deep
 * copies); no kernel here moves ifd_string structs raw. Strings are byte strings: comparisons
 * are bytewise, case mapping is ASCII-only (documented per operator). These kernels run on one
 * thread: they allocate per element, which the pool would only serialize on the allocator. */
#include "ops/op.h"

#include "base/dtype_convert.h"

#include <errno.h>
#include <math.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ------------------------------------------------------------------------------- */

static ifd_status node_error_prefix(const ifd_kernel_ctx *ctx, ifd_status st) {
    return ifd_error_prefix(st, "node '%s' (%s)", ctx->node->name, ctx->node->op_type);
}

static ifd_status require_string(const ifd_kernel_ctx *ctx, int index, const char *what) {
    ifd_status st = ifd_kernel_require_input(ctx, index);
    if (st) return st;
    if (ctx->inputs[index]->dtype != IFD_DTYPE_STRING)
        return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "%s must be a string tensor, not %s",
                                what, ifd_dtype_name(ctx->inputs[index]->dtype));
    return IFD_OK;
}

/* Element offsets into t for every element of the broadcast output (od, orank), row-major:
 * offs[count]. t's shape must broadcast to od (checked by ifd_broadcast_shape). */
static void broadcast_offsets(const ifd_tensor *t, int orank, const int64_t *od, int64_t count,
                              int64_t *offs) {
    int64_t str[IFD_MAX_RANK], coord[IFD_MAX_RANK] = {0};
    int64_t acc = 1;
    for (int i = orank - 1; i >= 0; i--) {
        int j = i - (orank - t->rank);
        str[i] = (j < 0 || t->dims[j] == 1) ? 0 : acc;
        if (j >= 0) acc *= t->dims[j];
    }
    int64_t off = 0;
    for (int64_t p = 0; p < count; p++) {
        offs[p] = off;
        for (int i = orank - 1; i >= 0; i--) {
            off += str[i];
            if (++coord[i] < od[i]) break;
            off -= coord[i] * str[i];
            coord[i] = 0;
        }
    }
}

/* Broadcast shape of n inputs, and per input the element offsets for every output element
 * (scratch). */
static ifd_status broadcast_inputs(ifd_kernel_ctx *ctx, int n, const ifd_tensor *const *ts,
                                   int *orank, int64_t *od, int64_t **offs) {
    ifd_status st;
    int r = ts[0]->rank;
    memcpy(od, ts[0]->dims, sizeof(int64_t) * (size_t)r);
    for (int i = 1; i < n; i++) {
        int64_t tmp[IFD_MAX_RANK];
        memcpy(tmp, od, sizeof(int64_t) * (size_t)r);
        if ((st = ifd_broadcast_shape(r, tmp, ts[i]->rank, ts[i]->dims, &r, od)))
            return node_error_prefix(ctx, st);
    }
    int64_t count;
    if ((st = ifd_shape_count(r, od, &count))) return node_error_prefix(ctx, st);
    st = IFD_OK;
    for (int i = 0; i < n; i++) {
        offs[i] = ifd_kernel_scratch_array(ctx, (size_t)IFD_MAX(count, (int64_t)1), sizeof(int64_t),
                                           &st);
        if (st) return st;
        broadcast_offsets(ts[i], r, od, count, offs[i]);
    }
    *orank = r;
    return IFD_OK;
}

static bool string_eq(const ifd_string *a, const ifd_string *b) {
    return a->len == b->len && (a->len == 0 || !memcmp(a->data, b->data, a->len));
}

/* ---- Equal / Where on strings (called from elementwise.c) ------------------------------------ */

ifd_status ifd_string_equal(ifd_kernel_ctx *ctx) {
    ifd_status st;
    if ((st = require_string(ctx, 0, "A")) || (st = require_string(ctx, 1, "B"))) return st;
    const ifd_tensor *ts[2] = {ctx->inputs[0], ctx->inputs[1]};
    int64_t od[IFD_MAX_RANK], *offs[2];
    int orank;
    if ((st = broadcast_inputs(ctx, 2, ts, &orank, od, offs))) return st;
    ifd_tensor *y;
    if ((st = ifd_kernel_output(ctx, 0, IFD_DTYPE_BOOL, orank, od, &y)) || !y) return st;
    uint8_t *out = y->data;
    for (int64_t i = 0; i < y->count; i++)
        out[i] = string_eq(ifd_tensor_string_at(ts[0], offs[0][i]),
                           ifd_tensor_string_at(ts[1], offs[1][i]));
    return IFD_OK;
}

ifd_status ifd_string_where(ifd_kernel_ctx *ctx) {
    ifd_status st;
    if ((st = ifd_kernel_require_input(ctx, 0)) || (st = require_string(ctx, 1, "X")) ||
        (st = require_string(ctx, 2, "Y")))
        return st;
    if (ctx->inputs[0]->dtype != IFD_DTYPE_BOOL)
        return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT, "condition must be bool, got %s",
                                ifd_dtype_name(ctx->inputs[0]->dtype));
    const ifd_tensor *ts[3] = {ctx->inputs[0], ctx->inputs[1], ctx->inputs[2]};
    int64_t od[IFD_MAX_RANK], *offs[3];
    int orank;
    if ((st = broadcast_inputs(ctx, 3, ts, &orank, od, offs))) return st;
    ifd_tensor *y;
    if ((st = ifd_kernel_output(ctx, 0, IFD_DTYPE_STRING, orank, od, &y)) || !y) return st;
    const uint8_t *c = ts[0]->data;
    for (int64_t i = 0; i < y->count; i++) {
        bool pick_x = c[offs[0][i]] != 0;
        const ifd_tensor *src = pick_x ? ts[1] : ts[2];
        if ((st = ifd_tensor_copy_strings(y, i, src, pick_x ? offs[1][i] : offs[2][i], 1)))
            return node_error_prefix(ctx, st);
    }
    return IFD_OK;
}

/* ---- Cast to and from strings (called from cast.c) -------------------------------------------- */

/* Shortest "%.Ng" that converts back to the same value of dtype (a float type), NumPy-style:
 * integral values get ".0", special values are "inf", "-inf", "nan". */
static void format_float(ifd_dtype dtype, double v, char *buf, size_t size) {
    if (isnan(v)) {
        snprintf(buf, size, "nan");
        return;
    }
    if (isinf(v)) {
        snprintf(buf, size, v < 0 ? "-inf" : "inf");
        return;
    }
    unsigned char want[8] = {0}, got[8] = {0};
    (void)ifd_convert(IFD_DTYPE_DOUBLE, &v, dtype, want, 1, false);
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, size, "%.*g", prec, v);
        double back = strtod(buf, NULL);
        memset(got, 0, sizeof got);
        (void)ifd_convert(IFD_DTYPE_DOUBLE, &back, dtype, got, 1, false);
        if (!memcmp(want, got, ifd_dtype_size(dtype))) break;
    }
    if (!strpbrk(buf, ".en")) {
        size_t n = strlen(buf);
        if (n + 2 < size) memcpy(buf + n, ".0", 3);
    }
}

/* Case-insensitive prefix match of the reserved words (ONNX Cast: "INF", "+INF", "-INF",
 * "NaN" in any case); strtod accepts the same and "infinity". */
static ifd_status parse_double(const ifd_kernel_ctx *ctx, const ifd_string *s, int64_t i,
                               double *out) {
    char *end;
    const char *p = s->data ? s->data : "";
    errno = 0;
    double v = strtod(p, &end);
    /* the element is NUL-terminated; an embedded NUL stops the parse early and fails below */
    if (end == p || (size_t)(end - p) != s->len)
        return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT,
                                "element %lld (\"%.40s\") is not a number", (long long)i, p);
    *out = v;
    return IFD_OK;
}

static ifd_status parse_int(const ifd_kernel_ctx *ctx, const ifd_string *s, int64_t i,
                            bool is_unsigned, int64_t *out) {
    const char *p = s->data ? s->data : "";
    char *end;
    errno = 0;
    if (is_unsigned && p[0] != '-') {
        unsigned long long u = strtoull(p, &end, 10);
        if (end != p && (size_t)(end - p) == s->len && !errno) {
            *out = (int64_t)u;
            return IFD_OK;
        }
    } else {
        long long v = strtoll(p, &end, 10);
        if (end != p && (size_t)(end - p) == s->len && !errno) {
            *out = v;
            return IFD_OK;
        }
    }
    /* "100.5" or "1e3" into an integer: through double, truncated (as the spec allows) */
    double d;
    ifd_status st = parse_double(ctx, s, i, &d);
    if (st) return st;
    if (!(d > -9.3e18 && d < 1.85e19))
        return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT,
                                "element %lld (\"%.40s\") is out of the integer range",
                                (long long)i, p);
    *out = d < 0 || d < 9.2e18 ? (int64_t)d : (int64_t)(uint64_t)d;
    return IFD_OK;
}

static ifd_status cast_from_string(ifd_kernel_ctx *ctx, const ifd_tensor *x, ifd_dtype to) {
    ifd_status st = IFD_OK;
    bool to_int = ifd_dtype_is_signed_int(to) || ifd_dtype_is_unsigned_int(to);
    if (!to_int && !ifd_dtype_is_float(to) && to != IFD_DTYPE_BOOL)
        return ifd_kernel_error(ctx, IFD_ERR_UNSUPPORTED, "cast from string to %s is not supported",
                                ifd_dtype_name(to));
    /* parse everything first: a bad element fails the node before any output exists */
    void *tmp = ifd_kernel_scratch_array(ctx, (size_t)IFD_MAX(x->count, (int64_t)1), 8, &st);
    if (st) return st;
    for (int64_t i = 0; i < x->count; i++) {
        const ifd_string *s = ifd_tensor_string_at(x, i);
        if (to_int) {
            if ((st = parse_int(ctx, s, i, ifd_dtype_is_unsigned_int(to), &((int64_t *)tmp)[i])))
                return st;
        } else if ((st = parse_double(ctx, s, i, &((double *)tmp)[i]))) {
            return st;
        }
    }
    ifd_tensor *y;
    if ((st = ifd_kernel_output(ctx, 0, to, x->rank, x->dims, &y)) || !y) return st;
    if (!x->count) return IFD_OK;
    ifd_dtype from = to_int ? (to == IFD_DTYPE_UINT64 ? IFD_DTYPE_UINT64 : IFD_DTYPE_INT64)
                            : IFD_DTYPE_DOUBLE;
    if ((st = ifd_convert(from, tmp, to, y->data, x->count, true))) return node_error_prefix(ctx, st);
    return IFD_OK;
}

static ifd_status cast_to_string(ifd_kernel_ctx *ctx, const ifd_tensor *x) {
    ifd_status st = IFD_OK;
    ifd_dtype from = x->dtype;
    bool is_float = ifd_dtype_is_float(from);
    if (!is_float && !ifd_dtype_is_signed_int(from) && !ifd_dtype_is_unsigned_int(from) &&
        from != IFD_DTYPE_BOOL)
        return ifd_kernel_error(ctx, IFD_ERR_UNSUPPORTED, "cast from %s to string is not supported",
                                ifd_dtype_name(from));
    ifd_tensor *y;
    if ((st = ifd_kernel_output(ctx, 0, IFD_DTYPE_STRING, x->rank, x->dims, &y)) || !y) return st;
    size_t es = ifd_dtype_size(from);
    for (int64_t i = 0; i < x->count; i++) {
        char buf[64];
        const void *p = (const char *)x->data + (size_t)i * es;
        if (from == IFD_DTYPE_BOOL) {
            /* as NumPy's astype(str) and the ONNX reference */
            snprintf(buf, sizeof buf, "%s", *(const uint8_t *)p ? "True" : "False");
        } else if (is_float) {
            double v;
            (void)ifd_convert(from, p, IFD_DTYPE_DOUBLE, &v, 1, false);
            format_float(from, v, buf, sizeof buf);
        } else if (from == IFD_DTYPE_UINT64) {
            uint64_t v;
            memcpy(&v, p, sizeof v);
            snprintf(buf, sizeof buf, "%llu", (unsigned long long)v);
        } else {
            int64_t v;
            (void)ifd_convert(from, p, IFD_DTYPE_INT64, &v, 1, false);
            snprintf(buf, sizeof buf, "%lld", (long long)v);
        }
        if ((st = ifd_tensor_set_string(y, i, buf, strlen(buf)))) return node_error_prefix(ctx, st);
    }
    return IFD_OK;
}

ifd_status ifd_string_cast(ifd_kernel_ctx *ctx, ifd_dtype to) {
    ifd_status st = ifd_kernel_require_input(ctx, 0);
    if (st) return st;
    const ifd_tensor *x = ctx->inputs[0];
    if (x->dtype == IFD_DTYPE_STRING && to == IFD_DTYPE_STRING) {
        ifd_tensor *y;
        if ((st = ifd_kernel_output(ctx, 0, IFD_DTYPE_STRING, x->rank, x->dims, &y)) || !y)
            return st;
        if ((st = ifd_tensor_copy_strings(y, 0, x, 0, x->count))) return node_error_prefix(ctx, st);
        return IFD_OK;
    }
    if (x->dtype == IFD_DTYPE_STRING) return cast_from_string(ctx, x, to);
    return cast_to_string(ctx, x);
}

/* ---- StringConcat (opset 20) ----------------------------------------------------------------- */

static ifd_status run_string_concat(ifd_kernel_ctx *ctx) {
    ifd_status st;
    if ((st = require_string(ctx, 0, "X")) || (st = require_string(ctx, 1, "Y"))) return st;
    const ifd_tensor *ts[2] = {ctx->inputs[0], ctx->inputs[1]};
    int64_t od[IFD_MAX_RANK], *offs[2];
    int orank;
    if ((st = broadcast_inputs(ctx, 2, ts, &orank, od, offs))) return st;
    ifd_tensor *y;
    if ((st = ifd_kernel_output(ctx, 0, IFD_DTYPE_STRING, orank, od, &y)) || !y) return st;
    char *buf = NULL;
    size_t cap = 0;
    for (int64_t i = 0; i < y->count; i++) {
        const ifd_string *a = ifd_tensor_string_at(ts[0], offs[0][i]);
        const ifd_string *b = ifd_tensor_string_at(ts[1], offs[1][i]);
        size_t n;
        if (!ifd_add_size(a->len, b->len, &n)) {
            st = ifd_kernel_error(ctx, IFD_ERR_TOO_BIG, "element %lld is too long", (long long)i);
            break;
        }
        if (n > cap) {
            char *nb = ifd_realloc(buf, n);
            if (!nb) {
                st = ifd_kernel_error(ctx, IFD_ERR_NO_MEMORY, "out of memory for %zu bytes", n);
                break;
            }
            buf = nb;
            cap = n;
        }
        if (a->len) memcpy(buf, a->data, a->len);
        if (b->len) memcpy(buf + a->len, b->data, b->len);
        if ((st = ifd_tensor_set_string(y, i, buf, n))) {
            node_error_prefix(ctx, st);
            break;
        }
    }
    ifd_free(buf);
    return st;
}

/* ---- StringNormalizer (opset 10) -------------------------------------------------------------- */

/* Case mapping and case-insensitive comparison are ASCII-only: the spec leaves them to the
 * locale attribute, and a library must not switch the process locale. Bytes >= 0x80 (UTF-8)
 * pass through unchanged. */
static char ascii_lower(char c) { return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c; }
static char ascii_upper(char c) { return c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') : c; }

static bool is_stopword(const ifd_node *node, const ifd_string *s, bool case_sensitive) {
    const ifd_attr *a = ifd_attr_find(node, "stopwords");
    if (!a || a->type != IFD_ATTR_STRINGS) return false;
    for (size_t k = 0; k < a->n; k++) {
        const char *w = a->strings[k];
        size_t wl = strlen(w);
        if (wl != s->len) continue;
        bool eq = true;
        for (size_t c = 0; c < wl && eq; c++)
            eq = case_sensitive ? w[c] == s->data[c]
                                : ascii_lower(w[c]) == ascii_lower(s->data[c]);
        if (eq) return true;
    }
    return false;
}

static ifd_status run_string_normalizer(ifd_kernel_ctx *ctx) {
    ifd_status st = require_string(ctx, 0, "X");
    if (st) return st;
    const ifd_tensor *x = ctx->inputs[0];
    if (!(x->rank == 1 || (x->rank == 2 && x->dims[0] == 1)))
        return ifd_kernel_error(ctx, IFD_ERR_SHAPE, "input must be [C] or [1, C]");
    const char *action = ifd_attr_string(ctx->node, "case_change_action", "NONE");
    int mode; /* 0 none, 1 lower, 2 upper */
    if (!strcmp(action, "NONE")) mode = 0;
    else if (!strcmp(action, "LOWER")) mode = 1;
    else if (!strcmp(action, "UPPER")) mode = 2;
    else
        return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT,
                                "case_change_action '%s' is not NONE, LOWER or UPPER", action);
    bool case_sensitive = ifd_attr_int(ctx->node, "is_case_sensitive", 0) != 0;
    int64_t n = x->count, kept = 0;
    bool *keep = ifd_kernel_scratch_array(ctx, (size_t)IFD_MAX(n, (int64_t)1), sizeof(bool), &st);
    if (st) return st;
    for (int64_t i = 0; i < n; i++) {
        keep[i] = !is_stopword(ctx->node, ifd_tensor_string_at(x, i), case_sensitive);
        kept += keep[i];
    }
    /* everything filtered: one empty string, keeping the rank (as the reference does) */
    int64_t dims[2] = {1, kept ? kept : 1};
    ifd_tensor *y;
    if ((st = ifd_kernel_output(ctx, 0, IFD_DTYPE_STRING, x->rank, x->rank == 1 ? dims + 1 : dims,
                                &y)) ||
        !y)
        return st;
    int64_t o = 0;
    for (int64_t i = 0; i < n; i++) {
        if (!keep[i]) continue;
        if ((st = ifd_tensor_copy_strings(y, o, x, i, 1))) return node_error_prefix(ctx, st);
        if (mode) {
            /* y owns this copy: change its bytes in place */
            ifd_string *e = &((ifd_string *)y->data)[o];
            char *p = (char *)e->data;
            for (size_t c = 0; c < e->len; c++) p[c] = mode == 1 ? ascii_lower(p[c]) : ascii_upper(p[c]);
        }
        o++;
    }
    return IFD_OK;
}

/* ---- StringSplit (opset 20) --------------------------------------------------------------------- */

/* Python's str.split: with a delimiter, every occurrence splits ("" gives one empty piece);
 * without one (absent or ""), runs of whitespace split and leading/trailing whitespace gives no
 * piece. Whitespace is ASCII (space, \t \n \v \f \r). At most maxsplit splits when maxsplit
 * >= 0; the rest is the last piece. Calls emit for each piece (when not NULL); *count = pieces. */
static bool split_space(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

typedef ifd_status (*split_emit_fn)(void *arg, const char *p, size_t n);

static ifd_status split_one(const ifd_string *e, const char *delim, size_t dl, int64_t maxsplit,
                            split_emit_fn emit, void *arg, int64_t *count) {
    const char *p = e->data ? e->data : "", *end = p + e->len;
    int64_t n = 0, splits = 0;
    ifd_status st;
    *count = 0;
    if (dl) {
        const char *start = p;
        for (const char *q = p; (size_t)(end - q) >= dl;) {
            if ((maxsplit < 0 || splits < maxsplit) && !memcmp(q, delim, dl)) {
                if (emit && (st = emit(arg, start, (size_t)(q - start)))) return st;
                n++;
                splits++;
                q += dl;
                start = q;
            } else {
                q++;
            }
        }
        if (emit && (st = emit(arg, start, (size_t)(end - start)))) return st;
        *count = n + 1;
        return IFD_OK;
    }
    const char *q = p;
    for (;;) {
        while (q < end && split_space(*q)) q++;
        if (q == end) break;
        const char *start = q;
        if (maxsplit >= 0 && splits >= maxsplit) {
            q = end; /* the rest, trailing whitespace included (as Python) */
        } else {
            while (q < end && !split_space(*q)) q++;
            splits++;
        }
        if (emit && (st = emit(arg, start, (size_t)(q - start)))) return st;
        n++;
    }
    *count = n;
    return IFD_OK;
}

typedef struct split_fill {
    ifd_tensor *y;
    int64_t at;
} split_fill;

static ifd_status split_emit(void *arg, const char *p, size_t n) {
    split_fill *f = arg;
    return ifd_tensor_set_string(f->y, f->at++, p, n);
}

static ifd_status run_string_split(ifd_kernel_ctx *ctx) {
    ifd_status st = require_string(ctx, 0, "X");
    if (st) return st;
    const ifd_tensor *x = ctx->inputs[0];
    if (x->rank + 1 > IFD_MAX_RANK)
        return ifd_kernel_error(ctx, IFD_ERR_TOO_BIG, "output rank %d exceeds %d", x->rank + 1,
                                IFD_MAX_RANK);
    const ifd_attr *da = ifd_attr_find(ctx->node, "delimiter");
    const char *delim = da && da->type == IFD_ATTR_STRING ? da->s : "";
    size_t dl = da && da->type == IFD_ATTR_STRING ? da->s_len : 0;
    int64_t maxsplit = ifd_attr_has(ctx->node, "maxsplit") ? ifd_attr_int(ctx->node, "maxsplit", -1)
                                                            : -1;
    int64_t widest = 0;
    ifd_tensor *z;
    if ((st = ifd_kernel_output(ctx, 1, IFD_DTYPE_INT64, x->rank, x->dims, &z)) || !z) return st;
    for (int64_t i = 0; i < x->count; i++) {
        int64_t n;
        if ((st = split_one(ifd_tensor_string_at(x, i), delim, dl, maxsplit, NULL, NULL, &n)))
            return st;
        ((int64_t *)z->data)[i] = n;
        widest = IFD_MAX(widest, n);
    }
    int64_t dims[IFD_MAX_RANK];
    memcpy(dims, x->dims, sizeof(int64_t) * (size_t)x->rank);
    dims[x->rank] = widest;
    ifd_tensor *y;
    if ((st = ifd_kernel_output(ctx, 0, IFD_DTYPE_STRING, x->rank + 1, dims, &y)) || !y) return st;
    for (int64_t i = 0; i < x->count; i++) {
        split_fill f = {y, i * widest};
        int64_t n;
        if ((st = split_one(ifd_tensor_string_at(x, i), delim, dl, maxsplit, split_emit, &f, &n)))
            return node_error_prefix(ctx, st);
    }
    return IFD_OK;
}

/* ---- RegexFullMatch (opset 20) ---------------------------------------------------------------- */

/* The pattern is RE2 syntax; this build matches with POSIX extended regular expressions
 * (glibc, which adds \w \W \s \S \b \B), after translating the RE2 escapes POSIX lacks:
 * \d \D, and escapes inside [...] (\w \d \s and escaped punctuation such as \. \- \]).
 * Constructs POSIX cannot express the same way are refused when the session is
 * created, never approximated: (?...) groups and flags, lazy quantifiers (*? +? ?? }?), \p{...} classes,
 * \A \z, and octal/hex/unicode escapes. Matching is on bytes in the C locale: '.' matches one
 * byte, where RE2 matches one UTF-8 character (patterns on ASCII text agree). A full match
 * exists iff POSIX's leftmost-longest match spans the whole string. */

typedef struct re_buf {
    char *p;
    size_t n, cap;
    bool oom;
} re_buf;

static void re_put(re_buf *b, const char *s) {
    size_t l = strlen(s);
    if (b->oom) return;
    if (b->n + l + 1 > b->cap) {
        size_t cap = (b->n + l + 1) * 2;
        char *np = ifd_realloc(b->p, cap);
        if (!np) {
            b->oom = true;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, l + 1);
    b->n += l;
}

static void re_putc(re_buf *b, char c) {
    char s[2] = {c, 0};
    re_put(b, s);
}

/* RE2 -> POSIX ERE. Returns NULL with *why set when the pattern uses what we refuse. */
static char *translate_re2(const char *pat, size_t len, const char **why) {
    re_buf b = {0};
    *why = NULL;
    re_put(&b, "");
    for (size_t i = 0; i < len && !*why; i++) {
        char c = pat[i];
        if (c == 0) {
            *why = "a NUL byte";
        } else if (c == '(' && i + 1 < len && pat[i + 1] == '?') {
            *why = "(?...) groups and flags";
        } else if ((c == '*' || c == '+' || c == '?' || c == '}') && i + 1 < len &&
                   pat[i + 1] == '?') {
            *why = "lazy quantifiers";
        } else if (c == '\\') {
            if (++i >= len) {
                *why = "a trailing backslash";
                break;
            }
            char e = pat[i];
            switch (e) {
            case 'd': re_put(&b, "[0-9]"); break;
            case 'D': re_put(&b, "[^0-9]"); break;
            case 'w': case 'W': case 's': case 'S': case 'b': case 'B':
                re_putc(&b, '\\');
                re_putc(&b, e);
                break;
            case 'n': re_putc(&b, '\n'); break;
            case 't': re_putc(&b, '\t'); break;
            case 'r': re_putc(&b, '\r'); break;
            case 'f': re_putc(&b, '\f'); break;
            case 'v': re_putc(&b, '\v'); break;
            default:
                if ((e >= 'a' && e <= 'z') || (e >= 'A' && e <= 'Z') || (e >= '0' && e <= '9')) {
                    *why = "this escape (\\p, \\A, \\z, octal, hex, backreferences...)";
                } else {
                    re_putc(&b, '\\');
                    re_putc(&b, e);
                }
                break;
            }
        } else if (c == '[') {
            /* a bracket expression: collect members, then write them in POSIX order
             * (']' first, '-' last) so that no escaping is needed */
            size_t j = i + 1;
            bool neg = false;
            if (j < len && pat[j] == '^') {
                neg = true;
                j++;
            }
            re_buf items = {0};
            bool has_rbracket = false, has_dash = false, closed = false;
            re_put(&items, "");
            for (bool first = true; j < len; j++, first = false) {
                char m = pat[j];
                if (m == ']' && !first) {
                    closed = true;
                    break;
                }
                if (m == '[' && j + 1 < len && pat[j + 1] == ':') {
                    /* a POSIX class [:alpha:] is the same in RE2 */
                    const char *endc = NULL;
                    for (size_t k = j + 2; k + 1 < len; k++)
                        if (pat[k] == ':' && pat[k + 1] == ']') {
                            endc = pat + k;
                            break;
                        }
                    if (!endc) {
                        *why = "an unterminated [: class";
                        break;
                    }
                    for (const char *q = pat + j; q <= endc + 1; q++) re_putc(&items, *q);
                    j = (size_t)(endc + 1 - pat);
                    continue;
                }
                char lit = m;
                if (m == '\\') {
                    if (++j >= len) {
                        *why = "a trailing backslash";
                        break;
                    }
                    char e = pat[j];
                    if (e == 'w') { re_put(&items, "[:alnum:]_"); continue; }
                    if (e == 'd') { re_put(&items, "0-9"); continue; }
                    if (e == 's') { re_put(&items, "[:space:]"); continue; }
                    if (e == 'n') lit = '\n';
                    else if (e == 't') lit = '\t';
                    else if (e == 'r') lit = '\r';
                    else if ((e >= 'a' && e <= 'z') || (e >= 'A' && e <= 'Z') ||
                             (e >= '0' && e <= '9')) {
                        *why = "this escape inside [...] (\\W, \\D, \\S, \\p...)";
                        break;
                    } else {
                        lit = e;
                    }
                } else if (m == '-' && !first && j + 1 < len && pat[j + 1] != ']') {
                    /* a range a-z: keep the dash between its ends */
                    re_putc(&items, '-');
                    continue;
                }
                if (lit == ']') has_rbracket = true;
                else if (lit == '-') has_dash = true;
                else if (lit == 0) *why = "a NUL byte";
                else re_putc(&items, lit);
            }
            if (!*why && !closed) *why = "an unterminated [";
            if (!*why) {
                re_putc(&b, '[');
                if (neg) re_putc(&b, '^');
                if (has_rbracket) re_putc(&b, ']');
                re_put(&b, items.p ? items.p : "");
                if (has_dash) re_putc(&b, '-');
                re_putc(&b, ']');
                if (items.oom) b.oom = true;
                i = j;
            }
            ifd_free(items.p);
        } else {
            re_putc(&b, c);
        }
    }
    if (*why || b.oom) {
        if (!*why) *why = "out of memory";
        ifd_free(b.p);
        return NULL;
    }
    return b.p;
}

typedef struct regex_state {
    regex_t re;
} regex_state;

static void regex_release(void *state) {
    regex_state *s = state;
    if (!s) return;
    regfree(&s->re);
    ifd_free(s);
}

static ifd_status regex_prepare(ifd_prepare_ctx *pc) {
    const ifd_attr *a = ifd_attr_find(pc->node, "pattern");
    const char *why;
    if (!a || a->type != IFD_ATTR_STRING)
        return ifd_error(IFD_ERR_INVALID_ARGUMENT, "node '%s' (RegexFullMatch): attribute "
                         "'pattern' is required", pc->node->name);
    char *posix = translate_re2(a->s, a->s_len, &why);
    if (!posix)
        return ifd_error(!strcmp(why, "out of memory") ? IFD_ERR_NO_MEMORY : IFD_ERR_UNSUPPORTED,
                         "node '%s' (RegexFullMatch): pattern '%.200s' uses %s, which this build "
                         "(POSIX regular expressions) does not support", pc->node->name, a->s, why);
    regex_state *s = ifd_calloc(1, sizeof *s);
    if (!s) {
        ifd_free(posix);
        return ifd_error(IFD_ERR_NO_MEMORY, "out of memory");
    }
    int rc = regcomp(&s->re, posix, REG_EXTENDED);
    ifd_free(posix);
    if (rc) {
        char msg[128];
        regerror(rc, &s->re, msg, sizeof msg);
        ifd_free(s);
        return ifd_error(IFD_ERR_INVALID_ARGUMENT,
                         "node '%s' (RegexFullMatch): pattern '%.200s' is invalid: %s",
                         pc->node->name, a->s, msg);
    }
    pc->state = s;
    return IFD_OK;
}

static ifd_status run_regex_full_match(ifd_kernel_ctx *ctx) {
    ifd_status st = require_string(ctx, 0, "X");
    if (st) return st;
    regex_state *s = ctx->state;
    if (!s) return ifd_kernel_error(ctx, IFD_ERR_INTERNAL, "pattern was not compiled");
    const ifd_tensor *x = ctx->inputs[0];
    ifd_tensor *y;
    if ((st = ifd_kernel_output(ctx, 0, IFD_DTYPE_BOOL, x->rank, x->dims, &y)) || !y) return st;
    uint8_t *out = y->data;
    for (int64_t i = 0; i < x->count; i++) {
        const ifd_string *e = ifd_tensor_string_at(x, i);
        const char *p = e->data ? e->data : "";
        if (strlen(p) != e->len) {
            /* regexec stops at a NUL: such an element cannot be matched whole */
            return ifd_kernel_error(ctx, IFD_ERR_UNSUPPORTED,
                                    "element %lld holds a NUL byte (not supported by POSIX regex)",
                                    (long long)i);
        }
        regmatch_t m;
        int rc = regexec(&s->re, p, 1, &m, 0);
        out[i] = rc == 0 && m.rm_so == 0 && (size_t)m.rm_eo == e->len;
    }
    return IFD_OK;
}

/* ---- ai.onnx.ml LabelEncoder (opsets 1-4) ------------------------------------------------------ */

/* Keys and values: string, int64 or floating; from the keys_* and values_* lists or (opset 4)
 * keys_tensor/values_tensor. Lookup is a binary search over the keys sorted once at load. */
typedef enum le_kind { LE_STRING, LE_INT, LE_FLOAT } le_kind;

typedef struct le_item {
    ifd_string s;
    int64_t i;
    double f;
} le_item;

typedef struct le_state {
    le_kind key_kind, value_kind;
    ifd_dtype value_dtype; /* output type */
    ifd_dtype key_dtype;   /* the input type keys_tensor names (0 for lists: by kind) */
    int64_t n;
    le_item *keys;   /* sorted */
    le_item *values; /* values[k] belongs to keys[k] */
    le_item dflt;
} le_state;

static void le_release(void *state) {
    le_state *s = state;
    if (!s) return;
    ifd_free(s->keys);
    ifd_free(s->values);
    ifd_free(s);
}

static int le_cmp(le_kind k, const le_item *a, const le_item *b) {
    switch (k) {
    case LE_STRING: {
        size_t n = IFD_MIN(a->s.len, b->s.len);
        int c = n ? memcmp(a->s.data, b->s.data, n) : 0;
        if (c) return c;
        return a->s.len < b->s.len ? -1 : a->s.len > b->s.len;
    }
    case LE_INT: return a->i < b->i ? -1 : a->i > b->i;
    default:
        /* NaN sorts last and equals NaN, so that a NaN key can be looked up */
        if (isnan(a->f) || isnan(b->f)) return isnan(a->f) - isnan(b->f);
        return a->f < b->f ? -1 : a->f > b->f;
    }
}

/* One list of keys or values from the node: *kind, *dtype, count and items (ifd_malloc'd).
 * Item strings point into the model's attribute storage, which outlives the session. */
static ifd_status le_read_list(const ifd_node *node, const char *prefix, le_kind *kind,
                               ifd_dtype *dtype, int64_t *count, le_item **items) {
    char name[32];
    const ifd_attr *a;
    *items = NULL;
    *count = -1;
    snprintf(name, sizeof name, "%s_tensor", prefix);
    if ((a = ifd_attr_find(node, name)) && a->type == IFD_ATTR_TENSOR && a->t) {
        const ifd_tensor *t = a->t;
        *dtype = t->dtype;
        *count = t->count;
        if (t->dtype == IFD_DTYPE_STRING) *kind = LE_STRING;
        else if (ifd_dtype_is_signed_int(t->dtype) || ifd_dtype_is_unsigned_int(t->dtype))
            *kind = LE_INT;
        else if (ifd_dtype_is_std_float(t->dtype)) *kind = LE_FLOAT;
        else
            return ifd_error(IFD_ERR_UNSUPPORTED, "%s of type %s is not supported", name,
                             ifd_dtype_name(t->dtype));
        *items = ifd_calloc((size_t)IFD_MAX(t->count, (int64_t)1), sizeof **items);
        if (!*items) return ifd_error(IFD_ERR_NO_MEMORY, "out of memory");
        for (int64_t k = 0; k < t->count; k++) {
            if (*kind == LE_STRING) (*items)[k].s = *ifd_tensor_string_at(t, k);
            else if (*kind == LE_INT) (*items)[k].i = ifd_tensor_get_i64(t, k);
            else (*items)[k].f = ifd_tensor_get_f64(t, k);
        }
        return IFD_OK;
    }
    static const char *const suffix[] = {"strings", "int64s", "floats"};
    for (int kk = 0; kk < 3; kk++) {
        snprintf(name, sizeof name, "%s_%s", prefix, suffix[kk]);
        a = ifd_attr_find(node, name);
        if (!a) continue;
        if (*count >= 0)
            return ifd_error(IFD_ERR_INVALID_ARGUMENT, "more than one %s_* attribute", prefix);
        *kind = (le_kind)kk;
        *dtype = kk == 0 ? IFD_DTYPE_STRING : kk == 1 ? IFD_DTYPE_INT64 : IFD_DTYPE_FLOAT;
        *count = (int64_t)a->n;
        *items = ifd_calloc(a->n ? a->n : 1, sizeof **items);
        if (!*items) return ifd_error(IFD_ERR_NO_MEMORY, "out of memory");
        for (size_t k = 0; k < a->n; k++) {
            if (kk == 0 && a->type == IFD_ATTR_STRINGS) {
                /* list entries are NUL-terminated in the loaded model (no lengths) */
                (*items)[k].s.data = a->strings[k];
                (*items)[k].s.len = strlen(a->strings[k]);
            } else if (kk == 1 && a->type == IFD_ATTR_INTS) {
                (*items)[k].i = a->ints[k];
            } else if (kk == 2 && a->type == IFD_ATTR_FLOATS) {
                (*items)[k].f = a->floats[k];
            } else {
                return ifd_error(IFD_ERR_INVALID_ARGUMENT, "attribute '%s' has the wrong type",
                                 name);
            }
        }
    }
    if (*count < 0)
        return ifd_error(IFD_ERR_INVALID_ARGUMENT, "no %s_strings, %s_int64s, %s_floats or "
                         "%s_tensor attribute", prefix, prefix, prefix, prefix);
    return IFD_OK;
}

/* A key with its value and position, sorted by key (qsort has no context: one comparator per
 * key kind). */
typedef struct le_pair {
    le_item key, value;
    int64_t index;
} le_pair;

static int le_cmp_pair_string(const void *a, const void *b) {
    return le_cmp(LE_STRING, &((const le_pair *)a)->key, &((const le_pair *)b)->key);
}
static int le_cmp_pair_int(const void *a, const void *b) {
    return le_cmp(LE_INT, &((const le_pair *)a)->key, &((const le_pair *)b)->key);
}
static int le_cmp_pair_float(const void *a, const void *b) {
    return le_cmp(LE_FLOAT, &((const le_pair *)a)->key, &((const le_pair *)b)->key);
}

static ifd_status le_build(const ifd_node *node, le_state *s) {
    ifd_status st;
    int64_t nv;
    le_item *keys = NULL, *values = NULL;
    le_pair *pairs = NULL;
    if ((st = le_read_list(node, "keys", &s->key_kind, &s->key_dtype, &s->n, &keys))) goto out;
    if ((st = le_read_list(node, "values", &s->value_kind, &s->value_dtype, &nv, &values))) goto out;
    if (nv != s->n) {
        st = ifd_error(IFD_ERR_INVALID_ARGUMENT, "%lld keys but %lld values", (long long)s->n,
                       (long long)nv);
        goto out;
    }
    /* default: default_tensor (opset 4), else the typed default attribute */
    const ifd_tensor *dt = ifd_attr_tensor(node, "default_tensor");
    if (dt) {
        if (dt->count != 1 || dt->dtype != s->value_dtype) {
            st = ifd_error(IFD_ERR_INVALID_ARGUMENT,
                           "default_tensor must be one %s element", ifd_dtype_name(s->value_dtype));
            goto out;
        }
        if (s->value_kind == LE_STRING) s->dflt.s = *ifd_tensor_string_at(dt, 0);
        else if (s->value_kind == LE_INT) s->dflt.i = ifd_tensor_get_i64(dt, 0);
        else s->dflt.f = ifd_tensor_get_f64(dt, 0);
    } else if (s->value_kind == LE_STRING) {
        const ifd_attr *a = ifd_attr_find(node, "default_string");
        if (a && a->type == IFD_ATTR_STRING) {
            s->dflt.s.data = a->s;
            s->dflt.s.len = a->s_len;
        } else {
            s->dflt.s.data = "_Unused";
            s->dflt.s.len = 7;
        }
    } else if (s->value_kind == LE_INT) {
        s->dflt.i = ifd_attr_int(node, "default_int64", -1);
    } else {
        s->dflt.f = ifd_attr_float(node, "default_float", -0.0f);
    }
    /* sort keys (and values with them); a repeated key is an error */
    pairs = ifd_calloc((size_t)IFD_MAX(s->n, (int64_t)1), sizeof *pairs);
    s->keys = ifd_calloc((size_t)IFD_MAX(s->n, (int64_t)1), sizeof *s->keys);
    s->values = ifd_calloc((size_t)IFD_MAX(s->n, (int64_t)1), sizeof *s->values);
    if (!pairs || !s->keys || !s->values) {
        st = ifd_error(IFD_ERR_NO_MEMORY, "out of memory");
        goto out;
    }
    for (int64_t k = 0; k < s->n; k++) pairs[k] = (le_pair){keys[k], values[k], k};
    qsort(pairs, (size_t)s->n, sizeof *pairs,
          s->key_kind == LE_STRING ? le_cmp_pair_string
          : s->key_kind == LE_INT  ? le_cmp_pair_int
                                   : le_cmp_pair_float);
    for (int64_t k = 0; k < s->n; k++) {
        s->keys[k] = pairs[k].key;
        s->values[k] = pairs[k].value;
        if (k && !le_cmp(s->key_kind, &s->keys[k - 1], &s->keys[k])) {
            st = ifd_error(IFD_ERR_INVALID_ARGUMENT, "key %lld appears twice",
                           (long long)pairs[k].index);
            goto out;
        }
    }
out:
    ifd_free(keys);
    ifd_free(values);
    ifd_free(pairs);
    return st;
}

static ifd_status le_prepare(ifd_prepare_ctx *pc) {
    le_state *s = ifd_calloc(1, sizeof *s);
    if (!s) return ifd_error(IFD_ERR_NO_MEMORY, "out of memory");
    ifd_status st = le_build(pc->node, s);
    if (st) {
        le_release(s);
        return ifd_error_prefix(st, "node '%s' (LabelEncoder)", pc->node->name);
    }
    pc->state = s;
    return IFD_OK;
}

static bool le_input_ok(const le_state *s, ifd_dtype dt) {
    switch (s->key_kind) {
    case LE_STRING: return dt == IFD_DTYPE_STRING;
    case LE_INT: return ifd_dtype_is_signed_int(dt) || ifd_dtype_is_unsigned_int(dt);
    default: return ifd_dtype_is_std_float(dt);
    }
}

static ifd_status run_label_encoder(ifd_kernel_ctx *ctx) {
    ifd_status st = ifd_kernel_require_input(ctx, 0);
    if (st) return st;
    const le_state *s = ctx->state;
    if (!s) return ifd_kernel_error(ctx, IFD_ERR_INTERNAL, "encoder was not prepared");
    const ifd_tensor *x = ctx->inputs[0];
    if (!le_input_ok(s, x->dtype))
        return ifd_kernel_error(ctx, IFD_ERR_INVALID_ARGUMENT,
                                "input is %s but the keys are %s", ifd_dtype_name(x->dtype),
                                s->key_kind == LE_STRING ? "strings"
                                : s->key_kind == LE_INT  ? "integers"
                                                         : "floats");
    ifd_tensor *y;
    if ((st = ifd_kernel_output(ctx, 0, s->value_dtype, x->rank, x->dims, &y)) || !y) return st;
    for (int64_t i = 0; i < x->count; i++) {
        le_item key;
        memset(&key, 0, sizeof key);
        if (s->key_kind == LE_STRING) key.s = *ifd_tensor_string_at(x, i);
        else if (s->key_kind == LE_INT) key.i = ifd_tensor_get_i64(x, i);
        else key.f = ifd_tensor_get_f64(x, i);
        const le_item *v = &s->dflt;
        int64_t lo = 0, hi = s->n;
        while (lo < hi) {
            int64_t mid = lo + (hi - lo) / 2;
            int c = le_cmp(s->key_kind, &s->keys[mid], &key);
            if (c == 0) {
                v = &s->values[mid];
                break;
            }
            if (c < 0) lo = mid + 1;
            else hi = mid;
        }
        if (s->value_kind == LE_STRING) {
            if ((st = ifd_tensor_set_string(y, i, v->s.data, v->s.len)))
                return node_error_prefix(ctx, st);
        } else {
            ifd_store_f64(y->data, s->value_dtype, i, s->value_kind == LE_INT ? (double)v->i : v->f);
            if (s->value_dtype == IFD_DTYPE_INT64) ((int64_t *)y->data)[i] = v->i; /* exact */
        }
    }
    return IFD_OK;
}

const ifd_op_def ifd_ops_strings[] = {
    {"", "StringConcat", 20, run_string_concat, NULL, NULL, IFD_OP_STRINGS},
    {"", "StringSplit", 20, run_string_split, NULL, NULL, IFD_OP_STRINGS},
    {"", "StringNormalizer", 10, run_string_normalizer, NULL, NULL, IFD_OP_STRINGS},
    {"", "RegexFullMatch", 20, run_regex_full_match, regex_prepare, regex_release, IFD_OP_STRINGS},
    {"ai.onnx.ml", "LabelEncoder", 1, run_label_encoder, le_prepare, le_release, IFD_OP_STRINGS},
    {0},
};
