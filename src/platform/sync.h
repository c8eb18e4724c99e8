/*
 * sync.h — mutex, condition variable and thread wrappers over pthreads.
 *
 * Condition variables use CLOCK_MONOTONIC, so deadlines are immune to wall-clock changes. A
 * deadline is an absolute monotonic time in nanoseconds (platform_monotonic_ns()); the value
 * PLATFORM_NO_DEADLINE waits without limit. Failures of pthread calls on valid objects are
 * programming errors and abort; creation failures are reported.
 */
#ifndef KTH_PLATFORM_SYNC_H
#define KTH_PLATFORM_SYNC_H

#include <kithara/status.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define PLATFORM_NO_DEADLINE INT64_MAX

typedef struct platform_mutex {
    pthread_mutex_t m;
} platform_mutex;

typedef struct platform_cond {
    pthread_cond_t c;
} platform_cond;

typedef struct platform_thread {
    pthread_t t;
} platform_thread;

kth_status platform_mutex_init(platform_mutex *m);
void platform_mutex_destroy(platform_mutex *m);
void platform_mutex_lock(platform_mutex *m);
void platform_mutex_unlock(platform_mutex *m);

kth_status platform_cond_init(platform_cond *c);
void platform_cond_destroy(platform_cond *c);
void platform_cond_signal(platform_cond *c);
void platform_cond_broadcast(platform_cond *c);
void platform_cond_wait(platform_cond *c, platform_mutex *m);
/* Waits until signalled or until the monotonic deadline. Returns false when the deadline passed
 * (the caller re-checks its predicate either way; spurious wake-ups return true). */
bool platform_cond_wait_until(platform_cond *c, platform_mutex *m, int64_t deadline_ns);

/* Starts a joinable thread running fn(arg); name (<= 15 chars) shows in debuggers. */
kth_status platform_thread_start(platform_thread *t, void *(*fn)(void *), void *arg,
                                 const char *name);
void platform_thread_join(platform_thread *t);
bool platform_thread_is_current(const platform_thread *t);

/* Monotonic time in nanoseconds since an arbitrary origin. */
int64_t platform_monotonic_ns(void);

/* now + ms as a deadline; ms < 0 gives PLATFORM_NO_DEADLINE; saturates instead of overflowing. */
int64_t platform_deadline_after_ms(int64_t ms);

#endif
