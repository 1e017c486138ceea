/* Tensors and element types. */
#include "base.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const struct {
    const char *name;
    size_t size;
} g_dtypes[IFD_DTYPE_COUNT] = {
    [IFD_DTYPE_UNDEFINED] = {"undefined", 0},
    [IFD_DTYPE_FLOAT] = {"float32", 4},
    [IFD_DTYPE_UINT8] = {"uint8", 1},
    [IFD_DTYPE_INT8] = {"int8", 1},
    [IFD_DTYPE_UINT16] = {"uint16", 2},
    [IFD_DTYPE_INT16] = {"int16", 2},
    [IFD_DTYPE_INT32] = {"int32", 4},
    [IFD_DTYPE_INT64] = {"int64", 8},
    [IFD_DTYPE_STRING] = {"string", 0},
    [IFD_DTYPE_BOOL] = {"bool", 1},
    [IFD_DTYPE_FLOAT16] = {"float16", 2},
    [IFD_DTYPE_DOUBLE] = {"float64", 8},
    [IFD_DTYPE_UINT32] = {"uint32", 4},
    [IFD_DTYPE_UINT64] = {"uint64", 8},
    [IFD_DTYPE_COMPLEX64] = {"complex64", 8},
    [IFD_DTYPE_COMPLEX128] = {"complex128", 16},
    [IFD_DTYPE_BFLOAT16] = {"bfloat16", 2},
    [IFD_DTYPE_FLOAT8E4M3FN] = {"float8e4m3fn", 1},
    [IFD_DTYPE_FLOAT8E4M3FNUZ] = {"float8e4m3fnuz", 1},
    [IFD_DTYPE_FLOAT8E5M2] = {"float8e5m2", 1},
    [IFD_DTYPE_FLOAT8E5M2FNUZ] = {"float8e5m2fnuz", 1},
    [IFD_DTYPE_UINT4] = {"uint4", 1},
    [IFD_DTYPE_INT4] = {"int4", 1},
    [IFD_DTYPE_FLOAT4E2M1] = {"float4e2m1", 1},
    [IFD_DTYPE_FLOAT8E8M0] = {"float8e8m0", 1},
    [IFD_DTYPE_UINT2] = {"uint2", 1},
    [IFD_DTYPE_INT2] = {"int2", 1},
};
_Static_assert(IFD_ARRAY_LEN(g_dtypes) == IFD_DTYPE_COUNT, "dtype table covers every dtype");

const char *ifd_dtype_name(ifd_dtype dtype) {
    if ((unsigned)dtype >= IFD_DTYPE_COUNT) return "undefined";
    return g_dtypes[dtype].name;
}

size_t ifd_dtype_size(ifd_dtype dtype) {
    if ((unsigned)dtype >= IFD_DTYPE_COUNT) return 0;
    return g_dtypes[dtype].size;
}

bool ifd_dtype_is_float(ifd_dtype d) {
    switch (d) {
    case IFD_DTYPE_FLOAT: case IFD_DTYPE_DOUBLE: case IFD_DTYPE_FLOAT16: case IFD_DTYPE_BFLOAT16:
    case IFD_DTYPE_FLOAT8E4M3FN: case IFD_DTYPE_FLOAT8E4M3FNUZ: case IFD_DTYPE_FLOAT8E5M2:
    case IFD_DTYPE_FLOAT8E5M2FNUZ: case IFD_DTYPE_FLOAT4E2M1: case IFD_DTYPE_FLOAT8E8M0:
        return true;
    default:
        return false;
    }
}

bool ifd_dtype_is_signed_int(ifd_dtype d) {
    return d == IFD_DTYPE_INT8 || d == IFD_DTYPE_INT16 || d == IFD_DTYPE_INT32 ||
           d == IFD_DTYPE_INT64 || d == IFD_DTYPE_INT4 || d == IFD_DTYPE_INT2;
}

bool ifd_dtype_is_unsigned_int(ifd_dtype d) {
    return d == IFD_DTYPE_UINT8 || d == IFD_DTYPE_UINT16 || d == IFD_DTYPE_UINT32 ||
           d == IFD_DTYPE_UINT64 || d == IFD_DTYPE_UINT4 || d == IFD_DTYPE_UINT2;
}

ifd_status ifd_shape_count(int rank, const int64_t *dims, int64_t *count) {
    int64_t n = 1;
    if (rank < 0 || rank > IFD_MAX_RANK)
        return ifd_error(IFD_ERR_INVALID_ARGUMENT, "rank %d outside [0, %d]", rank, IFD_MAX_RANK);
    /* Check every dim first so that a zero dim cannot hide an overflow in another order. */
    for (int i = 0; i < rank; i++)
        if (dims[i] < 0)
            return ifd_error(IFD_ERR_INVALID_ARGUMENT, "negative dimension %lld at axis %d",
                             (long long)dims[i], i);
    bool zero = false;
    for (int i = 0; i < rank; i++) {
        if (dims[i] == 0) {
            zero = true;
            continue;
        }
        if (!ifd_mul_i64(n, dims[i], &n))
            return ifd_error(IFD_ERR_TOO_BIG, "shape element count overflows at axis %d", i);
    }
    *count = zero ? 0 : n;
    return IFD_OK;
}

ifd_status ifd_tensor_set_shape(ifd_tensor *t, ifd_dtype dtype, int rank, const int64_t *dims) {
    int64_t count;
    size_t bytes;
    ifd_status st = ifd_shape_count(rank, dims, &count);
    if (st) return st;
    /* strings go through ifd_tensor_set_string_shape: their data is not nbytes raw bytes */
    if (dtype == IFD_DTYPE_STRING)
        return ifd_error(IFD_ERR_UNSUPPORTED, "string tensors are not supported here");
    if ((unsigned)dtype >= IFD_DTYPE_COUNT || ifd_dtype_size(dtype) == 0)
        return ifd_error(IFD_ERR_UNSUPPORTED, "unsupported element type %d", (int)dtype);
    if (!ifd_mul_size((size_t)count, ifd_dtype_size(dtype), &bytes))
        return ifd_error(IFD_ERR_TOO_BIG, "tensor byte size overflows");
    t->dtype = dtype;
    t->rank = rank;
    for (int i = 0; i < rank; i++) t->dims[i] = dims[i];
    t->count = count;
    t->nbytes = bytes;
    return IFD_OK;
}

/* ---- string tensors ------------------------------------------------------------------------ */

ifd_status ifd_tensor_set_string_shape(ifd_tensor *t, int rank, const int64_t *dims) {
    int64_t count;
    size_t bytes;
    ifd_status st = ifd_shape_count(rank, dims, &count);
    if (st) return st;
    /* the element array must be addressable even though nbytes stays 0 */
    if (!ifd_mul_size((size_t)count, sizeof(ifd_string), &bytes))
        return ifd_error(IFD_ERR_TOO_BIG, "string tensor element count overflows");
    t->dtype = IFD_DTYPE_STRING;
    t->rank = rank;
    for (int i = 0; i < rank; i++) t->dims[i] = dims[i];
    t->count = count;
    t->nbytes = 0;
    return IFD_OK;
}

ifd_status ifd_tensor_alloc_strings(ifd_tensor *t) {
    size_t bytes;
    if (t->dtype != IFD_DTYPE_STRING || t->data)
        return ifd_error(IFD_ERR_INTERNAL, "ifd_tensor_alloc_strings on a %s tensor%s",
                         ifd_dtype_name(t->dtype), t->data ? " that has data" : "");
    if (t->count == 0) return IFD_OK;
    if (!ifd_mul_size((size_t)t->count, sizeof(ifd_string), &bytes))
        return ifd_error(IFD_ERR_TOO_BIG, "string tensor element count overflows");
    t->data = ifd_malloc_aligned(bytes);
    if (!t->data)
        return ifd_error(IFD_ERR_NO_MEMORY, "out of memory for %lld string elements",
                         (long long)t->count);
    memset(t->data, 0, bytes);
    return IFD_OK;
}

void ifd_tensor_free_data(ifd_tensor *t) {
    if (!t || !t->data) return;
    if (t->dtype == IFD_DTYPE_STRING) {
        ifd_string *e = t->data;
        for (int64_t i = 0; i < t->count; i++) ifd_free((void *)e[i].data);
    }
    ifd_free_aligned(t->data);
    t->data = NULL;
}

/* One owned copy of len bytes plus a NUL; {NULL, 0} for the empty string. */
static ifd_status string_dup(const void *bytes, size_t len, ifd_string *out) {
    size_t size;
    out->data = NULL;
    out->len = 0;
    if (len == 0) return IFD_OK;
    if (!ifd_add_size(len, 1, &size))
        return ifd_error(IFD_ERR_TOO_BIG, "string of %zu bytes is too long", len);
    char *p = ifd_malloc(size);
    if (!p) return ifd_error(IFD_ERR_NO_MEMORY, "out of memory for a string of %zu bytes", len);
    memcpy(p, bytes, len);
    p[len] = 0;
    out->data = p;
    out->len = len;
    return IFD_OK;
}

ifd_status ifd_tensor_copy_strings(ifd_tensor *dst, int64_t di, const ifd_tensor *src, int64_t si,
                                   int64_t n) {
    ifd_string *d = dst->data;
    const ifd_string *s = src->data;
    for (int64_t k = 0; k < n; k++) {
        ifd_string copy;
        /* copy first, free after: safe even when an element is copied onto itself */
        ifd_status st = string_dup(s[si + k].data, s[si + k].len, &copy);
        if (st) return st;
        ifd_free((void *)d[di + k].data);
        d[di + k] = copy;
    }
    return IFD_OK;
}

ifd_status ifd_tensor_strings_unshare(ifd_tensor *t) {
    ifd_string *e = t->data;
    for (int64_t i = 0; i < t->count; i++) {
        ifd_string copy;
        ifd_status st = string_dup(e[i].data, e[i].len, &copy);
        if (st) {
            /* the rest still alias the source: drop them, never free them */
            memset(&e[i], 0, (size_t)(t->count - i) * sizeof *e);
            return st;
        }
        e[i] = copy;
    }
    return IFD_OK;
}

size_t ifd_tensor_storage_bytes(const ifd_tensor *t) {
    if (t->dtype != IFD_DTYPE_STRING) return t->nbytes;
    size_t total = (size_t)t->count * sizeof(ifd_string); /* checked by set_string_shape */
    const ifd_string *e = t->data;
    for (int64_t i = 0; e && i < t->count; i++)
        if (!ifd_add_size(total, e[i].len, &total)) return SIZE_MAX;
    return total;
}

ifd_status ifd_tensor_set_string(ifd_tensor *t, int64_t index, const void *bytes, size_t len) {
    if (!t) return ifd_error(IFD_ERR_INVALID_ARGUMENT, "ifd_tensor_set_string: tensor is NULL");
    if (t->dtype != IFD_DTYPE_STRING)
        return ifd_error(IFD_ERR_INVALID_ARGUMENT,
                         "ifd_tensor_set_string: the tensor is %s, not string",
                         ifd_dtype_name(t->dtype));
    if (index < 0 || index >= t->count)
        return ifd_error(IFD_ERR_INVALID_ARGUMENT,
                         "ifd_tensor_set_string: index %lld outside [0, %lld)", (long long)index,
                         (long long)t->count);
    if (!bytes && len)
        return ifd_error(IFD_ERR_INVALID_ARGUMENT,
                         "ifd_tensor_set_string: bytes is NULL with length %zu", len);
    ifd_string copy;
    ifd_status st = string_dup(bytes, len, &copy);
    if (st) return st;
    ifd_string *e = &((ifd_string *)t->data)[index];
    ifd_free((void *)e->data);
    *e = copy;
    return IFD_OK;
}

const char *ifd_tensor_get_string(const ifd_tensor *t, int64_t index, size_t *len) {
    if (len) *len = 0;
    if (!t || t->dtype != IFD_DTYPE_STRING || index < 0 || index >= t->count) return NULL;
    const ifd_string *e = ifd_tensor_string_at(t, index);
    if (len) *len = e->len;
    return e->data ? e->data : "";
}

/* ---- tensors ------------------------------------------------------------------------------- */

ifd_status ifd_tensor_create(ifd_dtype dtype, int rank, const int64_t *dims, ifd_tensor **out) {
    ifd_tensor *t = ifd_calloc(1, sizeof *t);
    *out = NULL;
    if (!t) return ifd_error(IFD_ERR_NO_MEMORY, "out of memory for a tensor");
    ifd_status st;
    if (dtype == IFD_DTYPE_STRING) {
        if ((st = ifd_tensor_set_string_shape(t, rank, dims)) != IFD_OK) goto fail;
        if ((st = ifd_tensor_alloc_strings(t)) != IFD_OK) goto fail;
        t->owns_data = true;
        *out = t;
        return IFD_OK;
    }
    st = ifd_tensor_set_shape(t, dtype, rank, dims);
    if (st) goto fail;
    t->owns_data = true;
    if (t->nbytes) {
        t->data = ifd_malloc_aligned(t->nbytes);
        if (!t->data) {
            st = ifd_error(IFD_ERR_NO_MEMORY, "out of memory for a tensor of %zu bytes", t->nbytes);
            goto fail;
        }
        memset(t->data, 0, t->nbytes);
    }
    *out = t;
    return IFD_OK;
fail:
    ifd_free(t);
    return st;
}

ifd_status ifd_tensor_wrap(ifd_dtype dtype, int rank, const int64_t *dims, void *data,
                           size_t nbytes, ifd_tensor **out) {
    *out = NULL;
    /* The tensor must own its strings (ifd_tensor_free frees every element): a borrowed array
     * of pointers would be freed or outlived by whoever lent it. */
    if (dtype == IFD_DTYPE_STRING)
        return ifd_error(IFD_ERR_INVALID_ARGUMENT,
                         "ifd_tensor_wrap cannot wrap a string tensor: create it with "
                         "ifd_tensor_create and fill it with ifd_tensor_set_string");
    ifd_tensor *t = ifd_calloc(1, sizeof *t);
    if (!t) return ifd_error(IFD_ERR_NO_MEMORY, "out of memory for a tensor");
    ifd_status st = ifd_tensor_set_shape(t, dtype, rank, dims);
    if (st) goto fail;
    if (nbytes != t->nbytes) {
        st = ifd_error(IFD_ERR_INVALID_ARGUMENT, "buffer holds %zu bytes, shape needs %zu",
                       nbytes, t->nbytes);
        goto fail;
    }
    t->data = data;
    t->owns_data = false;
    *out = t;
    return IFD_OK;
fail:
    ifd_free(t);
    return st;
}

void ifd_tensor_free(ifd_tensor *t) {
    if (!t) return;
    if (t->owns_data) ifd_tensor_free_data(t);
    ifd_free(t);
}

ifd_status ifd_tensor_clone(const ifd_tensor *src, ifd_tensor **out) {
    ifd_status st = ifd_tensor_create(src->dtype, src->rank, src->dims, out);
    if (st) return st;
    if (src->dtype == IFD_DTYPE_STRING) {
        st = ifd_tensor_copy_strings(*out, 0, src, 0, src->count);
        if (st) {
            ifd_tensor_free(*out);
            *out = NULL;
        }
        return st;
    }
    if (src->nbytes) memcpy((*out)->data, src->data, src->nbytes);
    return IFD_OK;
}

ifd_dtype ifd_tensor_dtype(const ifd_tensor *t) { return t->dtype; }
int ifd_tensor_rank(const ifd_tensor *t) { return t->rank; }
const int64_t *ifd_tensor_dims(const ifd_tensor *t) { return t->dims; }
int64_t ifd_tensor_count(const ifd_tensor *t) { return t->count; }
size_t ifd_tensor_nbytes(const ifd_tensor *t) {
    if (t->dtype != IFD_DTYPE_STRING) return t->nbytes;
    size_t total = 0; /* the strings exist in memory, so the sum cannot really overflow */
    for (int64_t i = 0; i < t->count; i++)
        if (!ifd_add_size(total, ifd_tensor_string_at(t, i)->len, &total)) return SIZE_MAX;
    return total;
}
void *ifd_tensor_data(ifd_tensor *t) { return t->data; }
const void *ifd_tensor_cdata(const ifd_tensor *t) { return t->data; }

const char *ifd_shape_str(int rank, const int64_t *dims, char *buf, size_t size) {
    size_t used = 0;
    if (size == 0) return buf;
    buf[0] = 0;
    used += (size_t)snprintf(buf + used, size - used, "[");
    for (int i = 0; i < rank && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, i ? ",%lld" : "%lld", (long long)dims[i]);
    if (used < size) snprintf(buf + used, size - used, "]");
    return buf;
}

ifd_status ifd_read_file(const char *path, size_t max_bytes, void **data, size_t *size) {
    ifd_status st = IFD_OK;
    unsigned char *buf = NULL;
    size_t cap = 0, len = 0;
    FILE *f = fopen(path, "rb");
    *data = NULL;
    *size = 0;
    if (!f) return ifd_error(IFD_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    if (max_bytes == 0) max_bytes = SIZE_MAX;
    for (;;) {
        if (len == cap) {
            size_t ncap = cap ? cap * 2 : 65536;
            if (ncap < cap) ncap = SIZE_MAX;
            unsigned char *n = ifd_realloc(buf, ncap);
            if (!n) {
                st = ifd_error(IFD_ERR_NO_MEMORY, "out of memory reading '%s'", path);
                goto out;
            }
            buf = n;
            cap = ncap;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (len > max_bytes) {
            st = ifd_error(IFD_ERR_TOO_BIG, "'%s' is larger than %zu bytes", path, max_bytes);
            goto out;
        }
        if (got == 0) break;
    }
    if (ferror(f)) {
        st = ifd_error(IFD_ERR_IO, "error reading '%s'", path);
        goto out;
    }
    *data = buf;
    *size = len;
    buf = NULL;
out:
    ifd_free(buf);
    fclose(f);
    return st;
}
