/* base/: status details, the accounted allocator, checked arithmetic, arenas, tensors.
 * Everything above base/ includes this header. */
#ifndef IFD_BASE_H
#define IFD_BASE_H

#include "inferd/inferd.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#define IFD_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define IFD_LIKELY(x) __builtin_expect(!!(x), 1)
#define IFD_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define IFD_PRINTF(f, a)
#define IFD_LIKELY(x) (x)
#define IFD_UNLIKELY(x) (x)
#endif

#define IFD_MIN(a, b) ((a) < (b) ? (a) : (b))
#define IFD_MAX(a, b) ((a) > (b) ? (a) : (b))
#define IFD_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Record a detail message for this thread and return status (for `return ifd_error(...)`). */
ifd_status ifd_error(ifd_status status, const char *fmt, ...) IFD_PRINTF(2, 3);
/* Prefix the current detail message with context ("node 'conv1' (Conv): ..."). */
ifd_status ifd_error_prefix(ifd_status status, const char *fmt, ...) IFD_PRINTF(2, 3);
void ifd_error_clear(void);

/* ---- accounted allocator: all memory goes through here ---------------------------------- */
void *ifd_malloc(size_t size);
void *ifd_calloc(size_t count, size_t size);
void *ifd_realloc(void *ptr, size_t size);
void ifd_free(void *ptr);
char *ifd_strdup(const char *s);
/* printf into a new ifd_malloc'd string (cut at 1023 bytes); NULL when out of memory. */
char *ifd_strdup_printf(const char *fmt, ...) IFD_PRINTF(1, 2);
char *ifd_strndup(const char *s, size_t n);
/* 64-byte aligned allocation (for SIMD buffers); free with ifd_free_aligned. */
void *ifd_malloc_aligned(size_t size);
void ifd_free_aligned(void *ptr);
/* Fault injection for tests: the Nth allocation from now fails (0 disables). Also set from the
 * environment variable IFD_FAIL_ALLOC_AT at first use. */
void ifd_alloc_fail_at(long n);
/* Number of allocations made so far (tests check the inference path makes none). */
size_t ifd_alloc_count(void);

/* ---- checked arithmetic: false on overflow --------------------------------------------- */
static inline bool ifd_mul_size(size_t a, size_t b, size_t *out) {
    return !__builtin_mul_overflow(a, b, out);
}
static inline bool ifd_add_size(size_t a, size_t b, size_t *out) {
    return !__builtin_add_overflow(a, b, out);
}
static inline bool ifd_mul_i64(int64_t a, int64_t b, int64_t *out) {
    return !__builtin_mul_overflow(a, b, out);
}
static inline bool ifd_add_i64(int64_t a, int64_t b, int64_t *out) {
    return !__builtin_add_overflow(a, b, out);
}

/* ---- arena: many small allocations freed together ---------------------------------------- */
typedef struct ifd_arena ifd_arena;
ifd_arena *ifd_arena_create(size_t block_size);
void ifd_arena_free(ifd_arena *arena);
void *ifd_arena_alloc(ifd_arena *arena, size_t size); /* zeroed, 16-byte aligned; NULL on OOM */
char *ifd_arena_strdup(ifd_arena *arena, const char *s);
char *ifd_arena_strndup(ifd_arena *arena, const char *s, size_t n);

/* ---- tensors ------------------------------------------------------------------------------ */

/* The tensor struct is visible inside the library (opaque to users).
 *   dims[0..rank)  the shape; count = product of dims; nbytes = count * dtype size.
 *   data           64-byte aligned when owned; may be NULL when count is 0.
 */
struct ifd_tensor {
    ifd_dtype dtype;
    int rank;
    int64_t dims[IFD_MAX_RANK];
    int64_t count;
    size_t nbytes;
    void *data;
    bool owns_data;
};

/* String tensors (IFD_DTYPE_STRING): data is an array of count ifd_string; element i owns
 * its bytes (one ifd_malloc of len + 1, NUL-terminated) or is {NULL, 0}, the empty string.
 * nbytes is 0 for them (ifd_tensor_nbytes() computes the public sum of lengths), so that code
 * which moves nbytes raw bytes can never duplicate the element pointers (a double free later).
 * ifd_dtype_size(IFD_DTYPE_STRING) stays 0 and ifd_tensor_set_shape refuses the type: numeric
 * code cannot make a string tensor by accident. Elements move between tensors only through
 * ifd_tensor_copy_strings (a deep copy); element arrays are freed only by
 * ifd_tensor_free_data. */
/* Set a string tensor's dtype/shape/count (nbytes 0; no allocation). */
ifd_status ifd_tensor_set_string_shape(ifd_tensor *t, int rank, const int64_t *dims);
/* Allocate t's zeroed element array (every element "") for t->count elements; t->data must be
 * NULL. The caller owns it and frees it with ifd_tensor_free_data. */
ifd_status ifd_tensor_alloc_strings(ifd_tensor *t);
/* Free t's data: for a string tensor every element's bytes first, then the array. Sets
 * t->data to NULL. Does not look at owns_data (the caller knows it owns the data). */
void ifd_tensor_free_data(ifd_tensor *t);
/* dst[di + k] = deep copy of src[si + k] for k in [0, n); both string tensors, ranges checked
 * by the caller. Old dst elements are freed. IFD_ERR_NO_MEMORY on failure (dst then holds a
 * mix of old and new elements, all owned: freeing it is still correct). */
ifd_status ifd_tensor_copy_strings(ifd_tensor *dst, int64_t di, const ifd_tensor *src, int64_t si,
                                   int64_t n);
/* After a raw copy of whole ifd_string structs from another string tensor (the data-movement
 * kernels move elements as opaque bytes), t's elements alias the source's strings: give each
 * its own copy. On failure the elements not yet copied become "", so t stays safe to free. */
ifd_status ifd_tensor_strings_unshare(ifd_tensor *t);
/* Element i of a string tensor (no checks). */
static inline const ifd_string *ifd_tensor_string_at(const ifd_tensor *t, int64_t i) {
    return &((const ifd_string *)t->data)[i];
}
/* Bytes a tensor holds in memory: nbytes, or for a string tensor the element array plus the
 * string bytes (saturates at SIZE_MAX). */
size_t ifd_tensor_storage_bytes(const ifd_tensor *t);

/* Element count of a shape, checked: fails on negative dims or overflow. */
ifd_status ifd_shape_count(int rank, const int64_t *dims, int64_t *count);
/* Set dtype/shape/count/nbytes (no allocation). */
ifd_status ifd_tensor_set_shape(ifd_tensor *t, ifd_dtype dtype, int rank, const int64_t *dims);
/* Deep copy. */
ifd_status ifd_tensor_clone(const ifd_tensor *src, ifd_tensor **out);
/* "[1,3,224,224]" into buf. */
const char *ifd_shape_str(int rank, const int64_t *dims, char *buf, size_t size);
bool ifd_dtype_is_float(ifd_dtype dtype);   /* any floating type incl. fp16/bf16/fp8/fp4 */
bool ifd_dtype_is_signed_int(ifd_dtype dtype);
bool ifd_dtype_is_unsigned_int(ifd_dtype dtype);

/* ---- files --------------------------------------------------------------------------------- */
/* Read a whole file (capped at max_bytes; 0 means no cap beyond SIZE_MAX). */
ifd_status ifd_read_file(const char *path, size_t max_bytes, void **data, size_t *size);

#endif
