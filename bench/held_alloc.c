/*
 * held_alloc.c — the counting allocator of held_alloc.h.
 */
#include "held_alloc.h"

#include <kithara/alloc.h>

#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>

static _Atomic int64_t in_use;

typedef union header {
    size_t size;
    max_align_t align;
} header;

static void *count_alloc(void *user, size_t size)
{
    (void)user;
    header *h = malloc(sizeof *h + size);
    if (!h)
        return NULL;
    h->size = size;
    atomic_fetch_add(&in_use, (int64_t)size);
    return h + 1;
}

static void *count_resize(void *user, void *ptr, size_t size)
{
    (void)user;
    header *old = (header *)ptr - 1;
    size_t was = old->size;
    header *h = realloc(old, sizeof *h + size);
    if (!h)
        return NULL;
    h->size = size;
    atomic_fetch_add(&in_use, (int64_t)size - (int64_t)was);
    return h + 1;
}

static void count_release(void *user, void *ptr)
{
    (void)user;
    header *h = (header *)ptr - 1;
    atomic_fetch_sub(&in_use, (int64_t)h->size);
    free(h);
}

kth_status held_alloc_install(void)
{
    static const kth_allocator counting = {count_alloc, count_resize, count_release, NULL};
    return kth_set_allocator(&counting);
}

int64_t held_alloc_bytes(void)
{
    return atomic_load(&in_use);
}
