/*
 * held_alloc.h — the bytes kithara holds, counted by an allocator a benchmark gives it
 * (kithara/alloc.h). Each block carries its size in front of it. The C library's own figures
 * (mallinfo2, RSS) also count blocks it keeps for reuse, which drift by hundreds of KiB with
 * the order of frees.
 *
 * Thread-safety: the count is atomic; kithara's threads allocate through it concurrently.
 */
#ifndef KTH_BENCH_HELD_ALLOC_H
#define KTH_BENCH_HELD_ALLOC_H

#include <kithara/status.h>

#include <stdint.h>

/* Makes kithara allocate through the counting allocator. Call before any other kithara call.
 * Returns kth_set_allocator's status. */
kth_status held_alloc_install(void);

/* The bytes kithara holds now. Any thread. */
int64_t held_alloc_bytes(void);

#endif
