/* The accounted allocator. Every block carries a 64-byte header holding its size (so that
 * ifd_memory_in_use() is exact) and the pointer malloc returned; user pointers are 64-byte
 * aligned, so ifd_malloc_aligned is the same allocator. Plain malloc with the alignment done
 * here, not posix_memalign: the server makes many small blocks per request and glibc's
 * aligned path is several times slower. Fault injection (IFD_FAIL_ALLOC_AT=N) makes the
 * Nth allocation fail, for the allocation-failure tests. */
#include "base.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdint.h>
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

static void account_add(size_t add) {
    size_t now = atomic_fetch_add_explicit(&g_in_use, add, memory_order_relaxed) + add;
    size_t peak = atomic_load_explicit(&g_peak, memory_order_relaxed);
    while (now > peak && !atomic_compare_exchange_weak_explicit(&g_peak, &peak, now,
                                                                memory_order_relaxed,
                                                                memory_order_relaxed)) {
    }
}

void *ifd_malloc(size_t size) {
    size_t total;
    if (!ifd_add_size(size, 2 * HEADER, &total) || should_fail()) return NULL;
    size_t limit = atomic_load_explicit(&g_limit, memory_order_relaxed);
    if (limit && (size > limit || atomic_load(&g_in_use) > limit - size)) return NULL;
    char *raw = malloc(total);
    if (!raw) return NULL;
    /* the first 64-byte boundary at least HEADER bytes in */
    char *user = (char *)(((uintptr_t)raw + 2 * HEADER - 1) & ~(uintptr_t)(HEADER - 1));
    char *header = user - HEADER;
    memcpy(header, &size, sizeof size);
    memcpy(header + sizeof size, &raw, sizeof raw);
    account_add(size);
    atomic_fetch_add_explicit(&g_count, 1, memory_order_relaxed);
    return user;
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
    char *header = (char *)ptr - HEADER;
    size_t size;
    char *raw;
    memcpy(&size, header, sizeof size);
    memcpy(&raw, header + sizeof size, sizeof raw);
    atomic_fetch_sub_explicit(&g_in_use, size, memory_order_relaxed);
    free(raw);
}

void *ifd_realloc(void *ptr, size_t size) {
    if (!ptr) return ifd_malloc(size);
    size_t old;
    memcpy(&old, (char *)ptr - HEADER, sizeof old);
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

char *ifd_strdup_printf(const char *fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return ifd_strdup(buf);
}

size_t ifd_memory_in_use(void) { return atomic_load(&g_in_use); }
size_t ifd_memory_peak(void) { return atomic_load(&g_peak); }
size_t ifd_alloc_count(void) { return atomic_load(&g_count); }
void ifd_memory_set_limit(size_t bytes) { atomic_store(&g_limit, bytes); }
