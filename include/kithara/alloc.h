/*
 * kithara/alloc.h — the allocator kithara's own memory comes from.
 *
 * By default kithara allocates with the C library (malloc, realloc, free). A program with its
 * own allocator (an arena, a tracking allocator, a test that fails allocations on purpose) can
 * hand kithara its functions before anything else. Only kithara's own allocations go through
 * them: libcurl, OpenSSL, SQLite and FFmpeg keep their own allocators, and memory they hand
 * back is never freed through these functions.
 *
 * Every allocation failure inside kithara is reported as KTH_ERR_NO_MEMORY (or the failure of
 * the call that needed the memory), and leaves nothing allocated behind.
 */
#ifndef KITHARA_ALLOC_H
#define KITHARA_ALLOC_H

#include <kithara/status.h>

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* An allocator. alloc returns a block of at least `size` bytes (size > 0), aligned for any
 * type, or NULL; resize grows or shrinks a block alloc or resize returned (ptr never NULL,
 * size > 0), keeping its contents, or returns NULL and leaves the block as it was; release
 * frees a block (never NULL). All three are called from any of kithara's threads, concurrently,
 * and must be thread-safe. `user` is passed to each. */
typedef struct kth_allocator {
    void *(*alloc)(void *user, size_t size);
    void *(*resize)(void *user, void *ptr, size_t size);
    void (*release)(void *user, void *ptr);
    void *user;
} kth_allocator;

/* Makes kithara allocate through `a` (copied), or through the C library again when a is NULL.
 * Call it before any other kithara function, or once everything kithara made is gone (every
 * stream, decoder, cache, downloader, bus and subscription closed, kth_shutdown called): a
 * block must be freed by the allocator that made it. Returns KTH_OK; KTH_ERR_INVALID_ARG (a
 * function missing); KTH_ERR_BUSY while memory kithara allocated is still in use (the allocator
 * is then unchanged). Not to be called concurrently with any other kithara call. */
KTH_API kth_status kth_set_allocator(const kth_allocator *a);

#ifdef __cplusplus
}
#endif

#endif /* KITHARA_ALLOC_H */
