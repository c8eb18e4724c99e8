/*
 * mem.h — every allocation kithara makes itself, through the allocator a program may set
 * (kithara/alloc.h).
 *
 * Use these instead of the C library's functions everywhere in src/, and free with
 * platform_free only what they returned: memory from a library (curl, SQLite, FFmpeg) goes
 * back to that library. They count the blocks in use, so the allocator can only be swapped
 * when none is.
 */
#ifndef KTH_PLATFORM_MEM_H
#define KTH_PLATFORM_MEM_H

#include <stddef.h>

/* As malloc (size 0 gives a unique block). NULL when memory runs out. Any thread. */
void *platform_malloc(size_t size);
/* As calloc: n × size zeroed bytes; NULL on overflow or when memory runs out. Any thread. */
void *platform_calloc(size_t n, size_t size);
/* As realloc on a block from these functions (NULL: a new block; size 0 keeps a one-byte
 * block, unlike realloc, which would free it). NULL when memory runs out: the block is then
 * unchanged. Any thread. */
void *platform_realloc(void *ptr, size_t size);
/* A copy of the string s (NULL when memory runs out). Any thread. */
char *platform_strdup(const char *s);
/* A string of at most n bytes of s (stops at a NUL), NUL-terminated. Any thread. */
char *platform_strndup(const char *s, size_t n);
/* Frees a block from these functions (NULL: nothing). Any thread. */
void platform_free(void *ptr);

#endif
