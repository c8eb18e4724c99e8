/*
 * clock.h — an injectable monotonic clock.
 *
 * Logic that reasons about time (retry back-off, ABR decisions, watchdogs) reads the time through
 * a platform_clock so tests can drive it with a virtual clock and get deterministic results.
 * Blocking waits (condition variables) always use the real monotonic clock: a virtual clock
 * changes what the logic believes the time is, not how long a thread sleeps.
 */
#ifndef KTH_PLATFORM_CLOCK_H
#define KTH_PLATFORM_CLOCK_H

#include <stdatomic.h>
#include <stdint.h>

typedef struct platform_clock platform_clock;

struct platform_clock {
    /* Returns nanoseconds on a monotonic scale. Must be safe to call from any thread. */
    int64_t (*now_ns)(const platform_clock *clock);
};

/* The real monotonic clock (a static object; never freed). */
const platform_clock *platform_clock_system(void);

/* The time on `clock`, or on the system clock when `clock` is NULL. Any thread. */
int64_t platform_clock_now(const platform_clock *clock);

/* A clock that moves only when told to. Embed it, initialise it, and pass &vc->base. Reading and
 * advancing are atomic, so any thread may do either. */
typedef struct platform_virtual_clock {
    platform_clock base;
    _Atomic int64_t now;
} platform_virtual_clock;

void platform_virtual_clock_init(platform_virtual_clock *vc, int64_t start_ns);
void platform_virtual_clock_set(platform_virtual_clock *vc, int64_t now_ns);
void platform_virtual_clock_advance(platform_virtual_clock *vc, int64_t delta_ns);

#endif
