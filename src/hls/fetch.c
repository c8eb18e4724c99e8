/*
 * fetch.c — one-off requests an HLS session waits for (playlists, size probes), and playlists
 * kept in the asset cache.
 *
 * A blocking fetch waits on its own condition variable for the command's one completion; a
 * deadline or the caller's cancel token cancels the command, and the wait then continues until
 * that completion arrives (it always does), so the callbacks never touch freed memory.
 *
 * A cached playlist is stored as its final URL (after redirects), a newline, then the body as
 * received, so relative URIs resolve offline exactly as they did online. Streams of the same
 * URL share it: a fetch claims the playlist's cache resource as its one writer, and a stream
 * that finds it claimed waits for that fetch and then reads the cache.
 */
#include "hls/live.h"
#include "hls/session.h"
#include "platform/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct blocking {
    platform_mutex lock;
    platform_cond cond;
    bool done;
    hls_body *body;
} blocking;

static kth_status on_response(void *user, const net_response *resp)
{
    blocking *b = user;
    platform_mutex_lock(&b->lock);
    b->body->http_status = resp->status;
    kth_status st = hls_body_set_final_url(b->body, resp->url);
    b->body->has_total_length = resp->has_total_length;
    b->body->total_length = resp->total_length;
    platform_mutex_unlock(&b->lock);
    if (st != KTH_OK)
        return st;
    return resp->status >= 200 && resp->status <= 299 ? KTH_OK : KTH_ERR_HTTP;
}

static kth_status on_write(void *user, uint64_t offset, const void *data, size_t n)
{
    blocking *b = user;
    (void)offset; /* bodies arrive in order; a resumed body continues where it stopped */
    hls_body *body = b->body;
    if (n > body->max - body->len)
        return KTH_ERR_LIMIT;
    if (body->len + n > body->cap) {
        size_t cap = body->cap ? body->cap : 4096;
        while (cap < body->len + n)
            cap *= 2;
        uint8_t *p = platform_realloc(body->data, cap);
        if (!p)
            return KTH_ERR_NO_MEMORY;
        body->data = p;
        body->cap = cap;
    }
    memcpy(body->data + body->len, data, n);
    body->len += n;
    return KTH_OK;
}

static void on_complete(void *user, const net_result *r)
{
    blocking *b = user;
    platform_mutex_lock(&b->lock);
    b->body->status = r->status;
    if (r->http_status)
        b->body->http_status = r->http_status;
    if (r->status != KTH_OK)
        snprintf(b->body->message, sizeof b->body->message, "%s",
                 r->message && *r->message ? r->message : kth_strerror(r->status));
    b->done = true;
    platform_cond_broadcast(&b->cond);
    platform_mutex_unlock(&b->lock);
}

kth_status hls_fetch_blocking(kth_downloader *d, const char *url, net_method method, bool has_range,
                              uint64_t start, uint64_t end, const char *const *headers,
                              bool validate_html, size_t max, int64_t deadline_ns,
                              platform_cancel *cancel, hls_body *out)
{
    memset(out, 0, sizeof *out);
    out->max = max;
    if (!d) {
        out->status = KTH_ERR_OFFLINE_MISS;
        snprintf(out->message, sizeof out->message, "%s: no downloader", PLATFORM_SHOWN(url));
        return out->status;
    }
    blocking b = {.body = out};
    if (platform_mutex_init(&b.lock) != KTH_OK)
        return KTH_ERR_NO_MEMORY;
    if (platform_cond_init(&b.cond) != KTH_OK) {
        platform_mutex_destroy(&b.lock);
        return KTH_ERR_NO_MEMORY;
    }
    platform_cancel *token = platform_cancel_new(cancel);
    net_fetch_spec spec;
    memset(&spec, 0, sizeof spec);
    spec.url = url;
    spec.method = method;
    spec.has_range = has_range;
    spec.range_start = start;
    spec.range_end = end;
    spec.headers = headers;
    spec.priority = NET_FETCH_HIGH;
    spec.accept_gzip = method == NET_GET && !has_range;
    spec.cancel = token;
    spec.on_response = on_response;
    spec.validate = validate_html ? net_validate_not_html : NULL;
    spec.write = method == NET_GET ? on_write : NULL;
    spec.complete = on_complete;
    spec.user = &b;
    kth_status st = token ? net_downloader_submit(d, &spec, NULL) : KTH_ERR_NO_MEMORY;
    if (st == KTH_OK) {
        platform_mutex_lock(&b.lock);
        bool cancelled = false;
        while (!b.done) {
            bool expired = !platform_cond_wait_until(&b.cond, &b.lock, deadline_ns) &&
                           deadline_ns != PLATFORM_NO_DEADLINE;
            if (!b.done && expired && !cancelled) {
                /* Give up: cancel, then wait for the completion the command still owes us. */
                cancelled = true;
                deadline_ns = PLATFORM_NO_DEADLINE;
                platform_mutex_unlock(&b.lock);
                platform_cancel_cancel(token);
                platform_mutex_lock(&b.lock);
                out->status = KTH_ERR_TIMEOUT;
            }
        }
        platform_mutex_unlock(&b.lock);
        st = cancelled ? KTH_ERR_TIMEOUT : out->status;
        if (cancelled) {
            out->status = KTH_ERR_TIMEOUT;
            snprintf(out->message, sizeof out->message, "%s: timed out", PLATFORM_SHOWN(url));
        }
    } else {
        out->status = st;
        snprintf(out->message, sizeof out->message, "%s: could not be requested: %s",
                 PLATFORM_SHOWN(url), kth_strerror(st));
    }
    platform_cancel_unref(token);
    platform_cond_destroy(&b.cond);
    platform_mutex_destroy(&b.lock);
    return st;
}

kth_status hls_body_set_final_url(hls_body *b, const char *url)
{
    platform_free(b->final_url);
    b->final_url = url ? platform_strdup(url) : NULL;
    return !url || b->final_url ? KTH_OK : KTH_ERR_NO_MEMORY;
}

void hls_body_free(hls_body *b)
{
    platform_free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
    platform_free(b->final_url);
    b->final_url = NULL;
}

/* Reads a whole committed resource into memory. */
static kth_status read_all(storage_resource *r, uint8_t **out, size_t *len)
{
    uint64_t length = 0;
    if (!storage_resource_length(r, &length) || length > HLS_DEFAULT_MAX_PLAYLIST_BYTES)
        return KTH_ERR_FORMAT;
    uint8_t *buf = platform_malloc(length ? (size_t)length : 1);
    if (!buf)
        return KTH_ERR_NO_MEMORY;
    size_t done = 0;
    while (done < length) {
        size_t got = 0;
        kth_status st = storage_resource_read_at(r, done, buf + done, (size_t)length - done, &got);
        if (st != KTH_OK || got == 0) {
            platform_free(buf);
            return st != KTH_OK ? st : KTH_ERR_IO;
        }
        done += got;
    }
    *out = buf;
    *len = done;
    return KTH_OK;
}

static kth_status parse_stored(const uint8_t *data, size_t len, const char *url, hls_playlist **out,
                               char *err, size_t errlen)
{
    const uint8_t *nl = memchr(data, '\n', len);
    if (!nl || nl == data || memchr(data, '\0', (size_t)(nl - data))) {
        snprintf(err, errlen, "%s: the cached playlist is damaged", PLATFORM_SHOWN(url));
        return KTH_ERR_FORMAT;
    }
    /* Not strndup: the stored bytes are not a C string (no NUL after the newline). */
    size_t base_len = (size_t)(nl - data);
    char *base = platform_malloc(base_len + 1);
    if (base) {
        memcpy(base, data, base_len);
        base[base_len] = '\0';
    }
    if (!base) {
        snprintf(err, errlen, "%s: out of memory", PLATFORM_SHOWN(url));
        return KTH_ERR_NO_MEMORY;
    }
    size_t off = (size_t)(nl - data) + 1;
    kth_status st = hls_playlist_parse(data + off, len - off, base, NULL, out, err, errlen);
    platform_free(base);
    return st;
}

/* A media playlist that may still change (live or event): never stored, since a later open
 * must see the window of its own time, not this one. */
static bool may_change(const hls_playlist *pl)
{
    return pl->kind == HLS_PLAYLIST_MEDIA && hls_live_kind_of(&pl->media) != HLS_LIVE_KIND_VOD;
}

kth_status hls_playlist_cached(hls_session *s, const char *url, hls_playlist **out, char *err,
                               size_t errlen)
{
    cache_resource *res = NULL;
    cache_resource_info info;
    char detail[HLS_ERR_MAX];
    detail[0] = '\0';
    kth_status st = cache_resource_open(s->asset, url, 0, &res, &info, detail, sizeof detail);
    if (st == KTH_ERR_NO_MEMORY) {
        snprintf(err, errlen, "playlist %s: out of memory", PLATFORM_SHOWN(url));
        return st;
    }
    if (st != KTH_OK) {
        if (s->offline)
            snprintf(err, errlen, "offline: playlist %s is not in the cache", PLATFORM_SHOWN(url));
        return s->offline ? KTH_ERR_OFFLINE_MISS : KTH_ERR_NOT_FOUND;
    }
    if (!info.committed) {
        cache_resource_close(res);
        if (s->offline)
            snprintf(err, errlen, "offline: playlist %s is not in the cache", PLATFORM_SHOWN(url));
        return s->offline ? KTH_ERR_OFFLINE_MISS : KTH_ERR_NOT_FOUND;
    }
    storage_resource *r = cache_resource_storage(res);
    uint8_t *data = NULL;
    size_t len = 0;
    st = read_all(r, &data, &len);
    storage_resource_unref(r);
    cache_resource_close(res);
    if (st == KTH_ERR_RETRY && !s->offline)
        return KTH_ERR_NOT_FOUND; /* damaged on disk and dropped: fetch it again */
    if (st == KTH_ERR_CORRUPT) {
        snprintf(err, errlen, "cached playlist %s failed its checksum (the cache file is damaged)",
                 url);
        return st;
    }
    if (st != KTH_OK) {
        snprintf(err, errlen, "cached playlist %s could not be read: %s", PLATFORM_SHOWN(url),
                 kth_strerror(st));
        return st;
    }
    char perr[HLS_ERR_MAX];
    st = parse_stored(data, len, url, out, perr, sizeof perr);
    platform_free(data);
    if (st != KTH_OK) {
        snprintf(err, errlen, "cached playlist %s: %s", PLATFORM_SHOWN(url), perr);
        return st;
    }
    if (may_change(*out)) { /* never stored since live playlists are not: not this one */
        hls_playlist_free(*out);
        *out = NULL;
        if (s->offline)
            snprintf(err, errlen, "offline: playlist %s is live and never cached",
                     PLATFORM_SHOWN(url));
        return s->offline ? KTH_ERR_OFFLINE_MISS : KTH_ERR_NOT_FOUND;
    }
    return KTH_OK;
}

kth_status hls_playlist_accept(hls_session *s, const char *url, const char *final_url,
                               const uint8_t *body, size_t len, hls_playlist **out, char *err,
                               size_t errlen)
{
    const char *base = final_url && *final_url ? final_url : url;
    char perr[HLS_ERR_MAX];
    kth_status st = hls_playlist_parse(body, len, base, NULL, out, perr, sizeof perr);
    if (st != KTH_OK) {
        snprintf(err, errlen, "playlist %s: %s", PLATFORM_SHOWN(url), perr);
        return st;
    }
    if (may_change(*out))
        return KTH_OK;
    /* Store it for offline use; a failure here costs only that. */
    cache_resource *res;
    if (cache_resource_open(s->asset, url, CACHE_OPEN_CREATE, &res, NULL, NULL, 0) == KTH_OK) {
        size_t blen = strlen(base);
        kth_status w = cache_resource_write(res, 0, base, blen);
        if (w == KTH_OK)
            w = cache_resource_write(res, blen, "\n", 1);
        if (w == KTH_OK && len)
            w = cache_resource_write(res, blen + 1, body, len);
        if (w == KTH_OK)
            cache_resource_commit(res, blen + 1 + len);
        cache_resource_close(res);
    }
    return KTH_OK;
}

/* Waits until the claim whose release token is `released` ends, or the deadline. */
typedef struct release_wait {
    platform_mutex lock;
    platform_cond cond;
    bool ended;
} release_wait;

static void release_fired(void *arg)
{
    release_wait *w = arg;
    platform_mutex_lock(&w->lock);
    w->ended = true;
    platform_cond_broadcast(&w->cond);
    platform_mutex_unlock(&w->lock);
}

static void wait_released(platform_cancel *released, int64_t deadline_ns)
{
    release_wait w = {.ended = false};
    if (platform_mutex_init(&w.lock) != KTH_OK)
        return;
    if (platform_cond_init(&w.cond) != KTH_OK) {
        platform_mutex_destroy(&w.lock);
        return;
    }
    platform_cancel_waker waker;
    if (platform_cancel_add_waker(released, &waker, release_fired, &w)) {
        platform_mutex_lock(&w.lock);
        while (!w.ended && platform_cond_wait_until(&w.cond, &w.lock, deadline_ns))
            ;
        platform_mutex_unlock(&w.lock);
        platform_cancel_remove_waker(&waker);
    }
    platform_cond_destroy(&w.cond);
    platform_mutex_destroy(&w.lock);
}

/* Claims the playlist's cache resource for this load (*res open and claimed by `owner`), or
 * waits for the stream that holds the claim to end it: KTH_ERR_RETRY then (look in the cache
 * again). *res stays NULL when the resource cannot be used: the playlist is then fetched
 * without it. */
static kth_status claim_playlist(hls_session *s, const char *url, const void *owner,
                                 cache_resource **res, int64_t deadline_ns)
{
    platform_cancel *released;
    kth_status st = session_claim_resource(s, url, owner, res, &released);
    if (st == KTH_OK)
        return KTH_OK;
    if (st == KTH_ERR_BUSY && released) {
        wait_released(released, deadline_ns);
        platform_cancel_unref(released);
        return KTH_ERR_RETRY;
    }
    return st == KTH_ERR_STATE ? KTH_ERR_RETRY : KTH_OK;
}

kth_status hls_load_playlist(hls_session *s, const char *url, hls_playlist **out, char *err,
                             size_t errlen)
{
    int64_t deadline = platform_deadline_after_ms(s->timeout_ms);
    cache_resource *res = NULL;
    kth_status st = KTH_ERR_NOT_FOUND;
    /* Bounded: each pass either claims, or waits for another stream's fetch to end. */
    for (int pass = 0; pass < 8; pass++) {
        st = hls_playlist_cached(s, url, out, err, errlen);
        if (st != KTH_ERR_NOT_FOUND)
            return st;
        if (platform_monotonic_ns() >= deadline ||
            claim_playlist(s, url, &res, &res, deadline) != KTH_ERR_RETRY)
            break;
    }
    hls_body body;
    st = hls_fetch_blocking(s->downloader, url, NET_GET, false, 0, 0, NULL, true,
                            HLS_DEFAULT_MAX_PLAYLIST_BYTES, deadline, NULL, &body);
    if (st == KTH_OK)
        st = hls_playlist_accept(s, url, body.final_url, body.data, body.len, out, err, errlen);
    else if (body.http_status >= 300)
        snprintf(err, errlen, "playlist %s: HTTP %d", PLATFORM_SHOWN(url), body.http_status);
    else if (strstr(body.message, url)) /* the downloader's message names the URL already */
        snprintf(err, errlen, "playlist %s", body.message);
    else
        snprintf(err, errlen, "playlist %s: %s", PLATFORM_SHOWN(url), body.message);
    hls_body_free(&body);
    if (res) {
        cache_resource_release_writer(res, &res);
        cache_resource_close(res);
    }
    return st;
}
