/*
 * sync.c — pthread wrappers with monotonic-clock condition variables.
 */
#include "platform/sync.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void sync_die(const char *what, int err)
{
    /* Only reached on a corrupted or misused synchronisation object: continuing would turn a
     * bug into silent data corruption. */
    fprintf(stderr, "kithara: fatal: %s failed: %s\n", what, strerror(err));
    abort();
}

kth_status platform_mutex_init(platform_mutex *m)
{
    return pthread_mutex_init(&m->m, NULL) == 0 ? KTH_OK : KTH_ERR_NO_MEMORY;
}

void platform_mutex_destroy(platform_mutex *m)
{
    pthread_mutex_destroy(&m->m);
}

void platform_mutex_lock(platform_mutex *m)
{
    int rc = pthread_mutex_lock(&m->m);
    if (rc != 0)
        sync_die("pthread_mutex_lock", rc);
}

void platform_mutex_unlock(platform_mutex *m)
{
    int rc = pthread_mutex_unlock(&m->m);
    if (rc != 0)
        sync_die("pthread_mutex_unlock", rc);
}

kth_status platform_cond_init(platform_cond *c)
{
    pthread_condattr_t attr;
    if (pthread_condattr_init(&attr) != 0)
        return KTH_ERR_NO_MEMORY;
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(&c->c, &attr);
    pthread_condattr_destroy(&attr);
    return rc == 0 ? KTH_OK : KTH_ERR_NO_MEMORY;
}

void platform_cond_destroy(platform_cond *c)
{
    pthread_cond_destroy(&c->c);
}

void platform_cond_signal(platform_cond *c)
{
    pthread_cond_signal(&c->c);
}

void platform_cond_broadcast(platform_cond *c)
{
    pthread_cond_broadcast(&c->c);
}

void platform_cond_wait(platform_cond *c, platform_mutex *m)
{
    int rc = pthread_cond_wait(&c->c, &m->m);
    if (rc != 0)
        sync_die("pthread_cond_wait", rc);
}

bool platform_cond_wait_until(platform_cond *c, platform_mutex *m, int64_t deadline_ns)
{
    if (deadline_ns == PLATFORM_NO_DEADLINE) {
        platform_cond_wait(c, m);
        return true;
    }
    struct timespec ts;
    ts.tv_sec = (time_t)(deadline_ns / 1000000000);
    ts.tv_nsec = (long)(deadline_ns % 1000000000);
    if (ts.tv_nsec < 0) {
        ts.tv_sec -= 1;
        ts.tv_nsec += 1000000000;
    }
    int rc = pthread_cond_timedwait(&c->c, &m->m, &ts);
    if (rc == ETIMEDOUT)
        return false;
    if (rc != 0)
        sync_die("pthread_cond_timedwait", rc);
    return true;
}

kth_status platform_thread_start(platform_thread *t, void *(*fn)(void *), void *arg,
                                 const char *name)
{
    int rc = pthread_create(&t->t, NULL, fn, arg);
    if (rc != 0)
        return rc == EAGAIN ? KTH_ERR_LIMIT : KTH_ERR_NO_MEMORY;
    if (name) {
        char shortname[16];
        snprintf(shortname, sizeof shortname, "%s", name);
        pthread_setname_np(t->t, shortname);
    }
    return KTH_OK;
}

void platform_thread_join(platform_thread *t)
{
    int rc = pthread_join(t->t, NULL);
    if (rc != 0)
        sync_die("pthread_join", rc);
}

bool platform_thread_is_current(const platform_thread *t)
{
    return pthread_equal(t->t, pthread_self()) != 0;
}

int64_t platform_monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t platform_deadline_after_ms(int64_t ms)
{
    if (ms < 0)
        return PLATFORM_NO_DEADLINE;
    int64_t now = platform_monotonic_ns();
    if (ms > (PLATFORM_NO_DEADLINE - now) / 1000000)
        return PLATFORM_NO_DEADLINE;
    return now + ms * 1000000;
}
