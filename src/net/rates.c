/*
 * rates.c — what the downloader remembers of each host's throughput: the estimate a stream
 * measured last, so the next stream of the same host starts on a rung that fits the link
 * instead of guessing. A few hosts only, the least recently told forgotten first; guarded by
 * the downloader's leaf lock.
 */
#include "net_internal.h"

#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "platform/mem.h"

void net_rates_free(net_rates *r)
{
    for (size_t i = 0; i < NET_RATE_HOSTS; i++)
        platform_free(r->hosts[i].key);
    memset(r, 0, sizeof *r);
}

/* The entry of key, else NULL. Lock held. */
static struct net_rate_host *find(net_rates *r, const char *key)
{
    for (size_t i = 0; i < NET_RATE_HOSTS; i++)
        if (r->hosts[i].key && strcmp(r->hosts[i].key, key) == 0)
            return &r->hosts[i];
    return NULL;
}

/* An empty entry, else the one told least recently (emptied). Lock held. */
static struct net_rate_host *take_room(net_rates *r)
{
    struct net_rate_host *oldest = &r->hosts[0];
    for (size_t i = 0; i < NET_RATE_HOSTS; i++) {
        if (!r->hosts[i].key)
            return &r->hosts[i];
        if (r->hosts[i].told < oldest->told)
            oldest = &r->hosts[i];
    }
    platform_free(oldest->key);
    oldest->key = NULL;
    return oldest;
}

void net_downloader_remember_rate(kth_downloader *d, const char *url, uint64_t bps)
{
    char *key = NULL;
    if (!d || !url || bps == 0 || net_host_key(url, &key) != KTH_OK)
        return;
    platform_mutex_lock(&d->lock);
    struct net_rate_host *h = find(&d->rates, key);
    if (!h) {
        h = take_room(&d->rates);
        h->key = key;
        key = NULL;
    }
    h->bps = bps;
    h->told = ++d->rates.tells;
    platform_mutex_unlock(&d->lock);
    platform_free(key);
}

bool net_downloader_recall_rate(kth_downloader *d, const char *url, uint64_t *bps)
{
    char *key = NULL;
    if (!d || !url || net_host_key(url, &key) != KTH_OK)
        return false;
    platform_mutex_lock(&d->lock);
    const struct net_rate_host *h = find(&d->rates, key);
    bool known = h != NULL;
    if (known)
        *bps = h->bps;
    platform_mutex_unlock(&d->lock);
    platform_free(key);
    return known;
}
