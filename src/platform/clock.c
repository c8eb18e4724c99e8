/*
 * clock.c — the system monotonic clock and a virtual clock for tests.
 */
#include "platform/clock.h"

#include "platform/sync.h"

static int64_t system_now(const platform_clock *clock)
{
    (void)clock;
    return platform_monotonic_ns();
}

static const platform_clock system_clock = {system_now};

const platform_clock *platform_clock_system(void)
{
    return &system_clock;
}

int64_t platform_clock_now(const platform_clock *clock)
{
    if (!clock)
        clock = &system_clock;
    return clock->now_ns(clock);
}

static int64_t virtual_now(const platform_clock *clock)
{
    const platform_virtual_clock *vc = (const platform_virtual_clock *)clock;
    return atomic_load(&((platform_virtual_clock *)vc)->now);
}

void platform_virtual_clock_init(platform_virtual_clock *vc, int64_t start_ns)
{
    vc->base.now_ns = virtual_now;
    atomic_init(&vc->now, start_ns);
}

void platform_virtual_clock_set(platform_virtual_clock *vc, int64_t now_ns)
{
    atomic_store(&vc->now, now_ns);
}

void platform_virtual_clock_advance(platform_virtual_clock *vc, int64_t delta_ns)
{
    atomic_fetch_add(&vc->now, delta_ns);
}
