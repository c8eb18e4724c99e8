/*
 * defaults.c — the process-wide default cache, opened on demand, and kth_shutdown.
 *
 * defaults_lock (a leaf) guards the pointer and the text of the last failure.
 */
#include <kithara/kithara.h>

#include "api/defaults.h"
#include "platform/log.h"

#include <pthread.h>
#include <stdio.h>

static pthread_mutex_t defaults_lock = PTHREAD_MUTEX_INITIALIZER;
static kth_cache *default_cache;
static char default_cache_error[512];

kth_cache *api_default_cache(char *err, size_t errlen)
{
    pthread_mutex_lock(&defaults_lock);
    if (!default_cache) {
        char why[400];
        why[0] = '\0';
        kth_status st = kth_cache_open(NULL, &default_cache, why, sizeof why);
        if (st != KTH_OK) {
            default_cache = NULL;
            snprintf(default_cache_error, sizeof default_cache_error,
                     "cannot open the default cache: %s", why[0] ? why : kth_strerror(st));
        }
    }
    kth_cache *c = default_cache;
    if (!c && err && errlen)
        snprintf(err, errlen, "%s", default_cache_error);
    pthread_mutex_unlock(&defaults_lock);
    if (!c)
        platform_log(KTH_LOG_ERROR, "api", "%s", default_cache_error);
    return c;
}

kth_cache *kth_cache_default(void)
{
    return api_default_cache(NULL, 0);
}

void kth_shutdown(void)
{
    pthread_mutex_lock(&defaults_lock);
    kth_cache *c = default_cache;
    default_cache = NULL;
    pthread_mutex_unlock(&defaults_lock);
    kth_cache_close(c);
    kth_downloader_shutdown_default();
}
