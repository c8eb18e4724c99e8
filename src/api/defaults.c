/*
 * defaults.c — the process-wide default cache, opened on demand, and kth_shutdown.
 *
 * defaults_lock (a leaf) guards the pointer and the text of the last failure.
 */
#include <kithara/kithara.h>

#include "api/defaults.h"
#include "net/downloader.h"
#include "platform/log.h"

#include <pthread.h>
#include <stdio.h>

static pthread_mutex_t defaults_lock = PTHREAD_MUTEX_INITIALIZER;
static kth_cache *default_cache;
static kth_status default_cache_status = KTH_OK;
static char default_cache_error[512];

kth_status api_default_cache(kth_cache **out, char *err, size_t errlen)
{
    pthread_mutex_lock(&defaults_lock);
    if (!default_cache) {
        char why[400];
        why[0] = '\0';
        kth_status st = kth_cache_open(NULL, &default_cache, why, sizeof why);
        if (st != KTH_OK) {
            default_cache = NULL;
            default_cache_status = st;
            snprintf(default_cache_error, sizeof default_cache_error,
                     "cannot open the default cache: %s", why[0] ? why : kth_strerror(st));
        }
    }
    kth_cache *c = default_cache;
    kth_status st = c ? KTH_OK : default_cache_status;
    if (!c && err && errlen)
        snprintf(err, errlen, "%s", default_cache_error);
    pthread_mutex_unlock(&defaults_lock);
    if (!c)
        platform_log(KTH_LOG_ERROR, "api", "%s", default_cache_error);
    *out = c;
    return st;
}

kth_cache *kth_cache_default(void)
{
    kth_cache *c = NULL;
    (void)api_default_cache(&c, NULL, 0);
    return c;
}

void kth_shutdown(void)
{
    pthread_mutex_lock(&defaults_lock);
    kth_cache *c = default_cache;
    default_cache = NULL;
    pthread_mutex_unlock(&defaults_lock);
    kth_cache_unref(c);
    net_downloader_shutdown_default();
}
