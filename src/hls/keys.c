/*
 * keys.c — AES-128 keys of an HLS session: checked when a playlist loads, fetched once per URI
 * (through the key hook), validated, kept in memory and in the asset cache.
 *
 * A key that cannot be had fails the whole stream at once with a sentence naming the key URL
 * and the HTTP status: a reader never waits for a key that will not come, and never gets bytes
 * decrypted with something that is not the key.
 *
 * Keys live in the session's key table (guarded by session.lock). A fetch carries the index of
 * its key, not a pointer, because the table may grow while it runs.
 *
 * Other streams of the same URL share the key's cache resource: a fetch claims it as its one
 * writer, and a stream that finds it claimed waits for that fetch (the key then comes from the
 * cache) instead of fetching it again.
 *
 * Each key is announced once on the bus (KTH_EVENT_HLS_KEY): when its fetch ends (either way),
 * or when it was found in the cache. Events are published after session.lock is released.
 */
#include "hls/session.h"

#include "platform/log.h"
#include "platform/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY_FETCH_MAX 4096 /* a key response longer than this is not a key */

kth_status hls_keys_check_playlist(const hls_playlist *pl, const char *url, char *err,
                                   size_t errlen)
{
    for (size_t i = 0; i < pl->media.key_count; i++) {
        const hls_key *k = &pl->media.keys[i];
        if (k->method == HLS_KEY_AES_128 && strcmp(k->keyformat, "identity") == 0)
            continue;
        if (k->method == HLS_KEY_AES_128)
            snprintf(err, errlen, "%s line %zu: KEYFORMAT \"%s\" is not supported",
                     PLATFORM_SHOWN(url), k->line, k->keyformat);
        else
            snprintf(err, errlen, "%s line %zu: encryption METHOD=%s is not supported",
                     PLATFORM_SHOWN(url), k->line, k->method_name);
        return KTH_ERR_UNSUPPORTED;
    }
    return KTH_OK;
}

/* The cache resource name of key `uri` (heap; NULL when memory runs out). */
static char *key_cache_name(const char *uri)
{
    return platform_printf_new("key:%s", uri);
}

/* The URL to fetch key `uri` from: the hook's rewrite, or a copy of uri (heap; NULL when memory
 * runs out). */
static char *key_fetch_url(const kth_hls_key_hook *hook, const char *uri)
{
    char *rewritten = hook->rewrite_uri ? hook->rewrite_uri(hook->user, uri) : NULL;
    if (!rewritten)
        return platform_strdup(uri);
    /* The hook's string is the C library's (kithara/hls.h): copy it into kithara's heap. */
    char *url = platform_strdup(rewritten);
    free(rewritten);
    return url;
}

static void key_event(hls_session *s, kth_event *ev, const char *uri, kth_status status,
                      bool from_cache, int http_status)
{
    memset(ev, 0, sizeof *ev);
    ev->kind = KTH_EVENT_HLS_KEY;
    ev->origin = s->origin;
    ev->status = status;
    ev->payload.key.from_cache = from_cache;
    ev->payload.key.http_status = http_status;
    snprintf(ev->text, sizeof ev->text, "%s", uri);
}

size_t hls_keys_cached_events(hls_session *s, kth_event *out, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < s->key_count && n < max; i++) {
        if (!s->keys[i].announce)
            continue;
        s->keys[i].announce = false;
        key_event(s, &out[n++], s->keys[i].uri, KTH_OK, true, 0);
    }
    return n;
}

/* Loads a key the cache holds complete. Lock held. */
static void load_cached(hls_session *s, hls_key_state *k)
{
    char *name = key_cache_name(k->uri);
    cache_resource *res;
    cache_resource_info info;
    kth_status st =
        name ? cache_resource_open(s->asset, name, 0, &res, &info, NULL, 0) : KTH_ERR_NO_MEMORY;
    platform_free(name);
    if (st != KTH_OK)
        return; /* not cached (or no memory to look): it is fetched */
    if (info.committed && info.length == 16) {
        storage_resource *r = cache_resource_storage(res);
        size_t got = 0;
        if (storage_resource_read_at(r, 0, k->key, 16, &got) == KTH_OK && got == 16) {
            k->loaded = true;
            k->announce = true;
        }
        storage_resource_unref(r);
    }
    cache_resource_close(res);
}

hls_key_state *hls_keys_get(hls_session *s, const char *uri)
{
    for (size_t i = 0; i < s->key_count; i++)
        if (strcmp(s->keys[i].uri, uri) == 0)
            return &s->keys[i];
    if (s->key_count == s->key_cap) {
        size_t cap = s->key_cap ? s->key_cap * 2 : 4;
        hls_key_state *keys = platform_realloc(s->keys, cap * sizeof *keys);
        if (!keys)
            return NULL;
        s->keys = keys;
        s->key_cap = cap;
    }
    hls_key_state *k = &s->keys[s->key_count];
    memset(k, 0, sizeof *k);
    k->uri = platform_strdup(uri);
    if (!k->uri)
        return NULL;
    s->key_count++;
    load_cached(s, k);
    return k;
}

typedef struct key_fetch {
    hls_session *s;
    size_t index;
    cache_resource *res; /* the key's cache resource, claimed by this fetch; NULL: not shared */
    char *url;           /* after the hook's rewrite (heap) */
    int http_status;
    size_t len;
    bool too_long;
    uint8_t data[KEY_FETCH_MAX];
} key_fetch;

static kth_status key_on_response(void *user, const net_response *resp)
{
    key_fetch *f = user;
    f->http_status = resp->status;
    return resp->status >= 200 && resp->status <= 299 ? KTH_OK : KTH_ERR_HTTP;
}

static kth_status key_on_write(void *user, uint64_t offset, const void *data, size_t n)
{
    key_fetch *f = user;
    (void)offset;
    if (n > sizeof f->data - f->len) {
        f->too_long = true;
        return KTH_ERR_FORMAT;
    }
    memcpy(f->data + f->len, data, n);
    f->len += n;
    return KTH_OK;
}

/* Writes a key into its claimed cache resource, for offline use and for the other streams
 * waiting on it (a failure costs only that). */
static void write_key(cache_resource *res, const uint8_t key[16])
{
    if (cache_resource_write(res, 0, key, 16) == KTH_OK)
        cache_resource_commit(res, 16);
}

/* Stores a key fetched outside the poll, unless another fetch of it is its writer (that one
 * stores it). No lock held. */
static void store_key(hls_session *s, const char *uri, const uint8_t key[16])
{
    char *name = key_cache_name(uri);
    cache_resource *res;
    kth_status st =
        name ? cache_resource_open(s->asset, name, CACHE_OPEN_CREATE, &res, NULL, NULL, 0)
             : KTH_ERR_NO_MEMORY;
    platform_free(name);
    if (st != KTH_OK)
        return;
    if (cache_resource_claim_writer(res, &res, NULL) == KTH_OK) {
        write_key(res, key);
        cache_resource_release_writer(res, &res);
    }
    cache_resource_close(res);
}

void hls_keys_forget(hls_session *s, const char *uri)
{
    char *name = key_cache_name(uri);
    cache_resource *res;
    kth_status st =
        name ? cache_resource_open(s->asset, name, 0, &res, NULL, NULL, 0) : KTH_ERR_NO_MEMORY;
    platform_free(name);
    if (st != KTH_OK)
        return;
    cache_resource_invalidate(res);
    cache_resource_close(res);
}

static void key_on_complete(void *user, const net_result *r)
{
    key_fetch *f = user;
    hls_session *s = f->s;
    uint8_t key[16];
    kth_status st = r->status;
    char why[HLS_ERR_MAX];
    why[0] = '\0';
    if (st == KTH_OK && !s->hls.key_hook.transform && f->len != 16) {
        st = KTH_ERR_DECRYPT;
        snprintf(why, sizeof why, "the response is %zu bytes, a key is 16", f->len);
    } else if (st == KTH_OK && s->hls.key_hook.transform) {
        st = s->hls.key_hook.transform(s->hls.key_hook.user, f->url, f->data, f->len, key);
        if (st != KTH_OK) {
            snprintf(why, sizeof why, "the key hook refused it: %s", kth_strerror(st));
            st = KTH_ERR_DECRYPT;
        }
    } else if (st == KTH_OK) {
        memcpy(key, f->data, 16);
    } else if (f->too_long) {
        st = KTH_ERR_DECRYPT;
        snprintf(why, sizeof why, "the response is longer than %d bytes", KEY_FETCH_MAX);
    } else if (r->http_status >= 300 || f->http_status >= 300) {
        snprintf(why, sizeof why, "HTTP %d", f->http_status ? f->http_status : r->http_status);
    } else {
        snprintf(why, sizeof why, "%s", r->message && *r->message ? r->message : kth_strerror(st));
    }
    kth_event ev;
    if (st == KTH_OK && f->res)
        write_key(f->res, key); /* before the release: those waiting find it in the cache */
    platform_mutex_lock(&s->lock);
    hls_key_state *k = &s->keys[f->index];
    k->fetching = false;
    if (st == KTH_OK) {
        memcpy(k->key, key, 16);
        k->loaded = true;
    } else if (st != KTH_ERR_CANCELLED) {
        session_fail_locked(s, st, "AES-128 key %s: %s", PLATFORM_SHOWN(f->url), why);
    }
    key_event(s, &ev, k->uri, st, false, f->http_status ? f->http_status : r->http_status);
    platform_mutex_unlock(&s->lock);
    if (f->res) {
        cache_resource_release_writer(f->res, f);
        cache_resource_close(f->res);
    }
    if (st != KTH_ERR_CANCELLED && s->bus)
        kth_bus_publish(s->bus, &ev);
    platform_free(f->url);
    platform_free(f);
}

/* Claims the key's cache resource for fetch f (f->res stays NULL when it cannot be opened or
 * used: the key is then fetched unshared, as a store failure costs only the offline copy).
 * KTH_ERR_BUSY: another stream fetches it; the peer is woken when that ends. Lock held. */
static kth_status claim_key(hls_session *s, hls_key_state *k, key_fetch *f)
{
    char *name = key_cache_name(k->uri);
    if (!name)
        return KTH_ERR_NO_MEMORY;
    platform_cancel *released;
    kth_status st = session_claim_resource(s, name, f, &f->res, &released);
    platform_free(name);
    if (st == KTH_OK)
        return KTH_OK;
    if (st == KTH_ERR_BUSY && released)
        session_watch_release(s, released);
    if (st == KTH_ERR_STATE)
        load_cached(s, k); /* completed since it was looked at */
    return st == KTH_ERR_STATE && !k->loaded ? KTH_OK : st;
}

kth_status hls_keys_fetch(hls_session *s, hls_key_state *k, net_batch *batch)
{
    load_cached(s, k); /* another stream may have stored it since this session looked */
    if (k->loaded)
        return KTH_OK;
    key_fetch *f = platform_calloc(1, sizeof *f);
    if (!f)
        return KTH_ERR_NO_MEMORY;
    f->s = s;
    f->index = (size_t)(k - s->keys);
    kth_status claim = claim_key(s, k, f);
    if (claim != KTH_OK || k->loaded) {
        platform_free(f);
        return claim == KTH_ERR_STATE ? KTH_OK : claim;
    }
    const kth_hls_key_hook *hook = &s->hls.key_hook;
    f->url = key_fetch_url(hook, k->uri);
    if (!f->url) {
        platform_free(f);
        return KTH_ERR_NO_MEMORY;
    }
    net_fetch_spec spec;
    memset(&spec, 0, sizeof spec);
    spec.url = f->url;
    spec.method = NET_GET;
    spec.headers = hook->headers ? hook->headers(hook->user, k->uri) : NULL;
    spec.priority = NET_FETCH_HIGH;
    spec.accept_gzip = true; /* a whole body: a server that compresses it is decoded */
    spec.cancel = net_peer_cancel_token(s->peer);
    spec.on_response = key_on_response;
    spec.validate = net_validate_not_html;
    spec.write = key_on_write;
    spec.complete = key_on_complete;
    spec.user = f;
    kth_status st = net_batch_add(batch, &spec, NULL);
    if (st != KTH_OK) {
        if (f->res) {
            /* Under the lock: the claim is a moment old, and a waker only wakes a peer. */
            cache_resource_release_writer(f->res, f);
            cache_resource_close(f->res);
        }
        platform_free(f->url);
        platform_free(f);
        return st;
    }
    k->fetching = true;
    return KTH_OK;
}

kth_status hls_keys_load_blocking(hls_session *s, const char *uri, uint8_t key[16],
                                  const stream_wait_ctx *ctx)
{
    kth_event ev;
    platform_mutex_lock(&s->lock);
    hls_key_state *k = hls_keys_get(s, uri);
    bool loaded = k && k->loaded;
    if (loaded)
        memcpy(key, k->key, 16);
    size_t cached = hls_keys_cached_events(s, &ev, 1);
    platform_mutex_unlock(&s->lock);
    if (cached && s->bus)
        kth_bus_publish(s->bus, &ev);
    if (!k)
        return KTH_ERR_NO_MEMORY;
    if (loaded)
        return KTH_OK;
    if (s->offline) {
        platform_mutex_lock(&s->lock);
        session_fail_locked(s, KTH_ERR_OFFLINE_MISS, "offline: AES-128 key %s is not in the cache",
                            PLATFORM_SHOWN(uri));
        platform_mutex_unlock(&s->lock);
        return KTH_ERR_OFFLINE_MISS;
    }
    const kth_hls_key_hook *hook = &s->hls.key_hook;
    char *url = key_fetch_url(hook, uri);
    hls_body body;
    kth_status st =
        url ? hls_fetch_blocking(s->downloader, url, NET_GET, false, 0, 0,
                                 hook->headers ? hook->headers(hook->user, uri) : NULL, true,
                                 KEY_FETCH_MAX, ctx->deadline_ns, ctx->cancel, &body)
            : KTH_ERR_NO_MEMORY;
    char why[HLS_ERR_MAX];
    why[0] = '\0';
    if (!url) {
        memset(&body, 0, sizeof body);
        snprintf(why, sizeof why, "out of memory");
    } else if (st == KTH_OK) {
        if (hook->transform) {
            st = hook->transform(hook->user, url, body.data, body.len, key);
            if (st != KTH_OK) {
                snprintf(why, sizeof why, "the key hook refused it: %s", kth_strerror(st));
                st = KTH_ERR_DECRYPT;
            }
        } else if (body.len != 16) {
            st = KTH_ERR_DECRYPT;
            snprintf(why, sizeof why, "the response is %zu bytes, a key is 16", body.len);
        } else {
            memcpy(key, body.data, 16);
        }
    } else if (body.http_status >= 300) {
        snprintf(why, sizeof why, "HTTP %d", body.http_status);
    } else {
        snprintf(why, sizeof why, "%s", body.message);
    }
    int http_status = body.http_status;
    hls_body_free(&body);
    platform_mutex_lock(&s->lock);
    k = hls_keys_get(s, uri);
    bool announce = st != KTH_ERR_CANCELLED && st != KTH_ERR_TIMEOUT;
    if (st == KTH_OK && k) {
        announce = !k->loaded; /* a poll's fetch may have loaded it meanwhile */
        memcpy(k->key, key, 16);
        k->loaded = true;
        k->announce = false;
    } else if (st != KTH_OK && announce) {
        session_fail_locked(s, st, "AES-128 key %s: %s", PLATFORM_SHOWN(url ? url : uri), why);
    }
    key_event(s, &ev, uri, st, false, http_status);
    platform_mutex_unlock(&s->lock);
    if (st == KTH_OK && k)
        store_key(s, uri, key);
    platform_free(url);
    if (announce && s->bus)
        kth_bus_publish(s->bus, &ev);
    return st;
}
