/* Arena: bump allocation in blocks, all freed in one call (per model, per request). */
#include "base.h"

#include <string.h>

typedef struct arena_block {
    struct arena_block *next;
    size_t size, used;
    _Alignas(16) unsigned char data[];
} arena_block;

struct ifd_arena {
    arena_block *head;
    size_t block_size;
};

ifd_arena *ifd_arena_create(size_t block_size) {
    ifd_arena *a = ifd_calloc(1, sizeof *a);
    if (!a) return NULL;
    a->block_size = block_size ? block_size : 16384;
    return a;
}

void ifd_arena_free(ifd_arena *arena) {
    if (!arena) return;
    arena_block *b = arena->head;
    while (b) {
        arena_block *n = b->next;
        ifd_free(b);
        b = n;
    }
    ifd_free(arena);
}

void *ifd_arena_alloc(ifd_arena *arena, size_t size) {
    size_t need = (size + 15) & ~(size_t)15;
    if (need < size) return NULL;
    arena_block *b = arena->head;
    if (!b || b->size - b->used < need) {
        size_t bs = need > arena->block_size ? need : arena->block_size, total;
        if (!ifd_add_size(bs, sizeof(arena_block), &total)) return NULL;
        b = ifd_malloc(total);
        if (!b) return NULL;
        b->size = bs;
        b->used = 0;
        b->next = arena->head;
        arena->head = b;
    }
    void *p = b->data + b->used;
    b->used += need;
    memset(p, 0, size);
    return p;
}

char *ifd_arena_strndup(ifd_arena *arena, const char *s, size_t n) {
    size_t total;
    if (!ifd_add_size(n, 1, &total)) return NULL;
    char *d = ifd_arena_alloc(arena, total);
    if (!d) return NULL;
    if (n) memcpy(d, s, n);
    d[n] = 0;
    return d;
}

char *ifd_arena_strdup(ifd_arena *arena, const char *s) {
    return ifd_arena_strndup(arena, s ? s : "", s ? strlen(s) : 0);
}
