/* NumPy .npy files: versions 1.0, 2.0 and 3.0, little-endian, C order. The header is a Python
 * dict literal; we read only 'descr', 'fortran_order' and 'shape' with a small strict scanner. */
#include "base.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NPY_MAX_HEADER 65536

static const struct {
    const char *descr;
    ifd_dtype dtype;
} g_descr[] = {
    {"f4", IFD_DTYPE_FLOAT},  {"f8", IFD_DTYPE_DOUBLE}, {"f2", IFD_DTYPE_FLOAT16},
    {"i1", IFD_DTYPE_INT8},   {"u1", IFD_DTYPE_UINT8},  {"i2", IFD_DTYPE_INT16},
    {"u2", IFD_DTYPE_UINT16}, {"i4", IFD_DTYPE_INT32},  {"u4", IFD_DTYPE_UINT32},
    {"i8", IFD_DTYPE_INT64},  {"u8", IFD_DTYPE_UINT64}, {"b1", IFD_DTYPE_BOOL},
};

static const char *find_key(const char *h, const char *key) {
    const char *p = strstr(h, key);
    if (!p) return NULL;
    p += strlen(key);
    while (*p == ' ') p++;
    if (*p != ':') return NULL;
    p++;
    while (*p == ' ') p++;
    return p;
}

ifd_status ifd_npy_read_memory(const void *data, size_t size, ifd_tensor **out) {
    const unsigned char *b = data;
    char header[NPY_MAX_HEADER + 1];
    size_t hlen, off;
    ifd_dtype dtype = IFD_DTYPE_UNDEFINED;
    int rank = 0;
    int64_t dims[IFD_MAX_RANK];
    *out = NULL;
    if (size < 10 || memcmp(b, "\x93NUMPY", 6) != 0)
        return ifd_error(IFD_ERR_INVALID_ARGUMENT, "not a .npy file (bad magic)");
    if (b[6] == 1) {
        hlen = (size_t)b[8] | (size_t)b[9] << 8;
        off = 10;
    } else if (b[6] == 2 || b[6] == 3) {
        if (size < 12) return ifd_error(IFD_ERR_INVALID_ARGUMENT, ".npy header truncated");
        hlen = (size_t)b[8] | (size_t)b[9] << 8 | (size_t)b[10] << 16 | (size_t)b[11] << 24;
        off = 12;
    } else
        return ifd_error(IFD_ERR_UNSUPPORTED, ".npy version %d is not supported", b[6]);
    if (hlen > NPY_MAX_HEADER || hlen > size - off)
        return ifd_error(IFD_ERR_INVALID_ARGUMENT, ".npy header length %zu is invalid", hlen);
    memcpy(header, b + off, hlen);
    header[hlen] = 0;
    off += hlen;
    const char *p = find_key(header, "'descr'");
    if (!p || *p != '\'') return ifd_error(IFD_ERR_INVALID_ARGUMENT, ".npy header has no descr");
    p++;
    char endian = *p;
    if (endian == '>')
        return ifd_error(IFD_ERR_UNSUPPORTED, ".npy big-endian data is not supported");
    if (endian == '<' || endian == '|' || endian == '=') p++;
    for (size_t i = 0; i < IFD_ARRAY_LEN(g_descr); i++)
        if (!strncmp(p, g_descr[i].descr, 2) && p[2] == '\'') dtype = g_descr[i].dtype;
    if (dtype == IFD_DTYPE_UNDEFINED) {
        char d[16];
        snprintf(d, sizeof d, "%.8s", p);
        return ifd_error(IFD_ERR_UNSUPPORTED, ".npy dtype '%s' is not supported", d);
    }
    p = find_key(header, "'fortran_order'");
    if (!p) return ifd_error(IFD_ERR_INVALID_ARGUMENT, ".npy header has no fortran_order");
    if (!strncmp(p, "True", 4))
        return ifd_error(IFD_ERR_UNSUPPORTED, ".npy fortran_order arrays are not supported");
    p = find_key(header, "'shape'");
    if (!p || *p != '(') return ifd_error(IFD_ERR_INVALID_ARGUMENT, ".npy header has no shape");
    p++;
    for (;;) {
        while (*p == ' ' || *p == ',') p++;
        if (*p == ')') break;
        if (*p < '0' || *p > '9') return ifd_error(IFD_ERR_INVALID_ARGUMENT, ".npy shape is malformed");
        if (rank == IFD_MAX_RANK) return ifd_error(IFD_ERR_UNSUPPORTED, ".npy rank above %d", IFD_MAX_RANK);
        errno = 0;
        char *end;
        long long v = strtoll(p, &end, 10);
        if (errno || v < 0) return ifd_error(IFD_ERR_INVALID_ARGUMENT, ".npy dimension out of range");
        dims[rank++] = v;
        p = end;
        while (*p == 'L') p++;
    }
    ifd_tensor *t = NULL;
    ifd_tensor probe;
    ifd_status st = ifd_tensor_set_shape(&probe, dtype, rank, dims);
    if (st) return st;
    if (probe.nbytes > size - off)
        return ifd_error(IFD_ERR_INVALID_ARGUMENT, ".npy data holds %zu bytes, shape needs %zu",
                         size - off, probe.nbytes);
    st = ifd_tensor_create(dtype, rank, dims, &t);
    if (st) return st;
    if (t->nbytes) memcpy(t->data, b + off, t->nbytes);
    *out = t;
    return IFD_OK;
}

ifd_status ifd_npy_read(const char *path, ifd_tensor **out) {
    void *data;
    size_t size;
    *out = NULL;
    ifd_status st = ifd_read_file(path, 0, &data, &size);
    if (st) return st;
    st = ifd_npy_read_memory(data, size, out);
    ifd_free(data);
    if (st) return ifd_error_prefix(st, "%s", path);
    return IFD_OK;
}

ifd_status ifd_npy_write(const char *path, const ifd_tensor *t) {
    const char *descr = NULL;
    for (size_t i = 0; i < IFD_ARRAY_LEN(g_descr); i++)
        if (g_descr[i].dtype == t->dtype) descr = g_descr[i].descr;
    if (!descr)
        return ifd_error(IFD_ERR_UNSUPPORTED, "cannot write %s to .npy (numpy has no such dtype)",
                         ifd_dtype_name(t->dtype));
    char shape[512], header[640];
    size_t used = 0;
    shape[0] = 0;
    for (int i = 0; i < t->rank; i++)
        used += (size_t)snprintf(shape + used, sizeof shape - used, "%lld,%s", (long long)t->dims[i],
                                 (i + 1 < t->rank) ? " " : "");
    if (t->rank > 1) shape[used - 1] = 0; /* "(2, 3)" not "(2, 3,)" */
    int n = snprintf(header, sizeof header, "{'descr': '%c%s', 'fortran_order': False, 'shape': (%s), }",
                     descr[0] == 'b' || descr[1] == '1' ? '|' : '<', descr, shape);
    /* pad with spaces so that data starts at a multiple of 64, header ends with '\n' */
    size_t total = 10 + (size_t)n + 1;
    size_t pad = (64 - total % 64) % 64;
    FILE *f = fopen(path, "wb");
    if (!f) return ifd_error(IFD_ERR_IO, "cannot write '%s': %s", path, strerror(errno));
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, 0, 0};
    size_t hl = (size_t)n + pad + 1;
    pre[8] = (unsigned char)(hl & 0xff);
    pre[9] = (unsigned char)(hl >> 8);
    bool ok = fwrite(pre, 1, 10, f) == 10 && fwrite(header, 1, (size_t)n, f) == (size_t)n;
    for (size_t i = 0; ok && i < pad; i++) ok = fputc(' ', f) != EOF;
    ok = ok && fputc('\n', f) != EOF;
    if (ok && t->nbytes) ok = fwrite(t->data, 1, t->nbytes, f) == t->nbytes;
    if (fclose(f) != 0) ok = false;
    if (!ok) return ifd_error(IFD_ERR_IO, "error writing '%s'", path);
    return IFD_OK;
}
