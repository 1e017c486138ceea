/* The accounted allocator. Every block carries a 64-byte header holding its size so that
 * ifd_memory_in_use() is exact; the header also keeps user pointers 64-byte aligned, so
 * ifd_malloc_aligned is the same allocator. Fault injection (IFD_FAIL_ALLOC_AT=N) makes the
 * Nth allocation fail, for the allocation-failure tests. */
#include "base.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define HEADER 64

static atomic_size_t g_in_use;
static atomic_size_t g_peak;
static atomic_size_t g_count;
static atomic_size_t g_limit; /* 0: none */
static atomic_long g_fail_at = -1; /* -1: read env on first use; 0: disabled */

void ifd_alloc_fail_at(long n) { atomic_store(&g_fail_at, n); }

static bool should_fail(void) {
    long v = atomic_load(&g_fail_at);
    if (v < 0) {
        const char *e = getenv("IFD_FAIL_ALLOC_AT");
        long n = e ? strtol(e, NULL, 10) : 0;
        long expect = -1;
        atomic_compare_exchange_strong(&g_fail_at, &expect, n > 0 ? n : 0);
        v = atomic_load(&g_fail_at);
    }
    if (v == 0) return false;
    long left = atomic_fetch_sub(&g_fail_at, 1);
    if (left == 1) return true;
    if (left <= 1) atomic_store(&g_fail_at, 0);
    return false;
}

static void account(size_t add, size_t sub) {
    size_t now = atomic_fetch_add(&g_in_use, add) + add;
    atomic_fetch_sub(&g_in_use, sub);
    size_t peak = atomic_load(&g_peak);
    while (now > peak && !atomic_compare_exchange_weak(&g_peak, &peak, now)) {
    }
}

void *ifd_malloc(size_t size) {
    size_t total;
    if (!ifd_add_size(size, HEADER, &total) || should_fail()) return NULL;
    size_t limit = atomic_load(&g_limit);
    if (limit && (size > limit || atomic_load(&g_in_use) > limit - size)) return NULL;
    void *p = NULL;
    if (posix_memalign(&p, HEADER, total) != 0) return NULL;
    *(size_t *)p = size;
    account(size, 0);
    atomic_fetch_add(&g_count, 1);
    return (char *)p + HEADER;
}

void *ifd_calloc(size_t count, size_t size) {
    size_t bytes;
    if (!ifd_mul_size(count, size, &bytes)) return NULL;
    void *p = ifd_malloc(bytes);
    if (p) memset(p, 0, bytes);
    return p;
}

void ifd_free(void *ptr) {
    if (!ptr) return;
    char *base = (char *)ptr - HEADER;
    account(0, *(size_t *)base);
    free(base);
}

void *ifd_realloc(void *ptr, size_t size) {
    if (!ptr) return ifd_malloc(size);
    size_t old = *(size_t *)((char *)ptr - HEADER);
    void *n = ifd_malloc(size);
    if (!n) return NULL;
    memcpy(n, ptr, old < size ? old : size);
    ifd_free(ptr);
    return n;
}

void *ifd_malloc_aligned(size_t size) { return ifd_malloc(size); }
void ifd_free_aligned(void *ptr) { ifd_free(ptr); }

char *ifd_strndup(const char *s, size_t n) {
    char *d = ifd_malloc(n + 1);
    if (!d) return NULL;
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

char *ifd_strdup(const char *s) { return ifd_strndup(s, strlen(s)); }

size_t ifd_memory_in_use(void) { return atomic_load(&g_in_use); }
size_t ifd_memory_peak(void) { return atomic_load(&g_peak); }
size_t ifd_alloc_count(void) { return atomic_load(&g_count); }
void ifd_memory_set_limit(size_t bytes) { atomic_store(&g_limit, bytes); }
