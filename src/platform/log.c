/*
 * log.c — the process-wide log handler.
 *
 * The handler triple is guarded by handler_lock only while it is copied; the handler itself is
 * called with no lock held.
 */
#include "platform/log.h"
#include "platform/text.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>

static pthread_mutex_t handler_lock = PTHREAD_MUTEX_INITIALIZER;
static kth_log_fn handler_fn;
static void *handler_user;
static kth_log_level handler_max = KTH_LOG_WARN;

void kth_set_log_handler(kth_log_fn fn, void *user, kth_log_level max_level)
{
    pthread_mutex_lock(&handler_lock);
    handler_fn = fn;
    handler_user = user;
    handler_max = max_level;
    pthread_mutex_unlock(&handler_lock);
}

void platform_log(kth_log_level level, const char *component, const char *fmt, ...)
{
    pthread_mutex_lock(&handler_lock);
    kth_log_fn fn = handler_fn;
    void *user = handler_user;
    kth_log_level max = handler_max;
    pthread_mutex_unlock(&handler_lock);
    if (!fn || level > max)
        return;

    char message[1024];
    va_list ap;
    va_start(ap, fmt);
    platform_vexcerptf(message, sizeof message, fmt, ap); /* a long line keeps its end */
    va_end(ap);
    fn(level, component, message, user);
}
