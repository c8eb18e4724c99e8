/*
 * mem.c — kithara's allocations through the program's allocator: see mem.h and
 * kithara/alloc.h.
 *
 * The allocator is read with one atomic load per call. It may only change while no block is
 * in use (`live` counts them), so a block is always freed by the allocator that made it.
 */
#include <kithara/alloc.h>

#include "platform/mem.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void *libc_alloc(void *user, size_t size)
{
    (void)user;
    return malloc(size);
}

static void *libc_resize(void *user, void *ptr, size_t size)
{
    (void)user;
    return realloc(ptr, size);
}

static void libc_release(void *user, void *ptr)
{
    (void)user;
    free(ptr);
}

static const kth_allocator libc_allocator = {libc_alloc, libc_resize, libc_release, NULL};
static kth_allocator program_allocator;
static _Atomic(const kth_allocator *) current = &libc_allocator;
static atomic_size_t live;

kth_status kth_set_allocator(const kth_allocator *a)
{
    if (a && (!a->alloc || !a->resize || !a->release))
        return KTH_ERR_INVALID_ARG;
    if (atomic_load(&live) != 0)
        return KTH_ERR_BUSY;
    if (!a) {
        atomic_store(&current, &libc_allocator);
        return KTH_OK;
    }
    /* Nothing of kithara runs now (the caller's promise), so the copy is not raced. */
    program_allocator = *a;
    atomic_store(&current, &program_allocator);
    return KTH_OK;
}

void *platform_malloc(size_t size)
{
    const kth_allocator *a = atomic_load_explicit(&current, memory_order_acquire);
    void *p = a->alloc(a->user, size ? size : 1);
    if (p)
        atomic_fetch_add_explicit(&live, 1, memory_order_relaxed);
    return p;
}

void *platform_calloc(size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size)
        return NULL;
    size_t bytes = n * size;
    void *p = platform_malloc(bytes);
    if (p)
        memset(p, 0, bytes > 0 ? bytes : 1);
    return p;
}

void *platform_realloc(void *ptr, size_t size)
{
    if (!ptr)
        return platform_malloc(size);
    const kth_allocator *a = atomic_load_explicit(&current, memory_order_acquire);
    return a->resize(a->user, ptr, size ? size : 1);
}

char *platform_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = platform_malloc(n);
    if (p)
        memcpy(p, s, n);
    return p;
}

char *platform_strndup(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *p = platform_malloc(len + 1);
    if (p) {
        memcpy(p, s, len);
        p[len] = '\0';
    }
    return p;
}

void platform_free(void *ptr)
{
    if (!ptr)
        return;
    const kth_allocator *a = atomic_load_explicit(&current, memory_order_acquire);
    a->release(a->user, ptr);
    atomic_fetch_sub_explicit(&live, 1, memory_order_relaxed);
}
