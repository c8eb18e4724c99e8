/*
 * variants.c — the variants of an HLS session: making one usable once its media playlist is
 * in, and loading the playlists of the variants the stream did not start with.
 *
 * Only the starting variant's playlist is on the path to the first byte. The others load in
 * the background through the peer (from the cache when it holds them, else fetched one at a
 * time, so that only one playlist body is in memory at once), and join
 * the ABR ladder as they arrive; a variant whose playlist fails or uses what kithara cannot play
 * is left out with a warning, never chosen. A playlist another stream of the same URL is
 * fetching (it holds the claim of its cache resource) is not fetched again: the peer is woken
 * when that fetch ends, and the next poll finds it in the cache.
 *
 * Everything here runs with session.lock held, or before the session is shared.
 */
#include "hls/session.h"
#include "platform/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The ABR ladder: the usable variants, in ladder order (ascending bandwidth). */
static void rebuild_abr_ladder(hls_session *s)
{
    s->abr_count = 0;
    for (size_t v = 0; v < s->ladder.count && s->abr_count < ABR_MAX_LEVELS; v++) {
        if (!s->variants[v].pl)
            continue;
        const hls_rung *r = &s->ladder.rungs[v];
        abr_variant *a = &s->abr_ladder[s->abr_count++];
        a->bandwidth_bps = r->peak_bandwidth ? r->peak_bandwidth : r->bandwidth;
        a->average_bandwidth_bps = r->bandwidth;
    }
}

kth_status hls_variant_setup(hls_session *s, size_t v, hls_playlist *pl, char *err, size_t errlen)
{
    hls_variant_state *vs = &s->variants[v];
    kth_status st = KTH_OK;
    if (pl->kind != HLS_PLAYLIST_MEDIA) {
        snprintf(err, errlen, "%s: a master playlist where a media playlist was expected",
                 PLATFORM_SHOWN(vs->uri));
        st = KTH_ERR_FORMAT;
    } else if (pl->media.segment_count == 0) {
        snprintf(err, errlen, "%s: the playlist has no segments", PLATFORM_SHOWN(vs->uri));
        st = KTH_ERR_FORMAT;
    }
    if (st == KTH_OK)
        st = hls_keys_check_playlist(pl, vs->uri, err, errlen);
    hls_layout *layout = NULL;
    if (st == KTH_OK && (st = hls_layout_new(pl, &layout)) != KTH_OK)
        snprintf(err, errlen, "%s: %s", PLATFORM_SHOWN(vs->uri), kth_strerror(st));
    if (st == KTH_OK && (st = session_grow_slots(vs, hls_layout_entry_count(layout))) != KTH_OK)
        snprintf(err, errlen, "%s: %s", PLATFORM_SHOWN(vs->uri), kth_strerror(st));
    if (st != KTH_OK) {
        session_free_slots(vs);
        hls_layout_free(layout);
        hls_playlist_free(pl);
        s->variant_failed[v] = true;
        return st;
    }
    vs->pl = pl;
    vs->layout = layout;
    vs->entry_count = hls_layout_entry_count(layout);
    if (s->live.on && s->downloader)
        hls_live_variant_loaded(s, v, net_downloader_now(s->downloader));
    rebuild_abr_ladder(s);
    return KTH_OK;
}

typedef struct playlist_fetch {
    hls_body body; /* first: the body callbacks see it as theirs */
    hls_session *s;
    size_t variant;
    cache_resource *res; /* the playlist's cache resource, claimed by this fetch; or NULL */
} playlist_fetch;

kth_status hls_playlist_on_response(void *user, const net_response *resp)
{
    hls_body *b = user;
    b->http_status = resp->status;
    kth_status st = hls_body_set_final_url(b, resp->url);
    if (st != KTH_OK)
        return st;
    return resp->status >= 200 && resp->status <= 299 ? KTH_OK : KTH_ERR_HTTP;
}

kth_status hls_playlist_on_write(void *user, uint64_t offset, const void *data, size_t n)
{
    hls_body *b = user;
    (void)offset;
    if (n > HLS_DEFAULT_MAX_PLAYLIST_BYTES - b->len)
        return KTH_ERR_LIMIT;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n)
            cap *= 2;
        uint8_t *p = platform_realloc(b->data, cap);
        if (!p)
            return KTH_ERR_NO_MEMORY;
        b->data = p;
        b->cap = cap;
    }
    memcpy(b->data + b->len, data, n);
    b->len += n;
    return KTH_OK;
}

static void pl_on_complete(void *user, const net_result *r)
{
    playlist_fetch *f = user;
    hls_session *s = f->s;
    char err[HLS_ERR_MAX];
    err[0] = '\0';
    hls_playlist *pl = NULL;
    kth_status st = r->status;
    const char *uri = s->variants[f->variant].uri;
    if (st == KTH_OK)
        st = hls_playlist_accept(s, uri, f->body.final_url, f->body.data, f->body.len, &pl, err,
                                 sizeof err);
    else if (f->body.http_status >= 300)
        snprintf(err, sizeof err, "playlist %s: HTTP %d", PLATFORM_SHOWN(uri), f->body.http_status);
    else if (r->message && strstr(r->message, uri)) /* it names the URL already */
        snprintf(err, sizeof err, "playlist %s", r->message);
    else
        snprintf(err, sizeof err, "playlist %s: %s", PLATFORM_SHOWN(uri),
                 r->message && *r->message ? r->message : kth_strerror(st));
    platform_mutex_lock(&s->lock);
    s->variant_loading[f->variant] = false;
    if (st == KTH_OK)
        st = hls_variant_setup(s, f->variant, pl, err, sizeof err);
    else if (st != KTH_ERR_CANCELLED)
        s->variant_failed[f->variant] = true;
    platform_mutex_unlock(&s->lock);
    if (st != KTH_OK && st != KTH_ERR_CANCELLED)
        session_publish(s, KTH_EVENT_WARNING, st, NULL, "variant %zu left out: %s", f->variant,
                        err);
    if (f->res) {
        cache_resource_release_writer(f->res, f);
        cache_resource_close(f->res);
    }
    hls_body_free(&f->body);
    platform_free(f);
}

/* Claims the cache resource of variant v's playlist for fetch f. KTH_ERR_BUSY: another stream
 * fetches it (the peer is woken when that ends); KTH_ERR_STATE: it is no longer being written
 * (stored meanwhile, or unusable). f->res stays NULL when the resource cannot be used. Lock
 * held. */
static kth_status claim_playlist(hls_session *s, size_t v, playlist_fetch *f)
{
    platform_cancel *released;
    kth_status st = session_claim_resource(s, s->variants[v].uri, f, &f->res, &released);
    if (st == KTH_ERR_BUSY && released)
        session_watch_release(s, released);
    return st;
}

void hls_variants_load_more(hls_session *s, net_batch *batch)
{
    if (s->live.on && !s->live.open)
        return; /* the stream ended: no variant to switch to any more */
    /* One fetch at a time: a long presentation's playlists are megabytes of text each, and
     * their bodies held at once were the stream's peak of memory. */
    for (size_t v = 0; v < s->ladder.count; v++)
        if (s->variant_loading[v])
            return;
    for (size_t v = 0; v < s->ladder.count; v++) {
        if (s->variants[v].pl || s->variant_loading[v] || s->variant_failed[v])
            continue;
        playlist_fetch *f = platform_calloc(1, sizeof *f);
        if (!f)
            return;
        f->s = s;
        f->variant = v;
        /* Twice at most: a playlist stored by another stream between the look and the claim is
         * read from the cache; one that still is not there is fetched without the cache. */
        kth_status st = KTH_ERR_STATE;
        for (int pass = 0; pass < 2 && st == KTH_ERR_STATE; pass++) {
            hls_playlist *pl = NULL;
            char err[HLS_ERR_MAX];
            st = hls_playlist_cached(s, s->variants[v].uri, &pl, err, sizeof err);
            if (st == KTH_OK)
                hls_variant_setup(s, v, pl, err, sizeof err);
            else if (st != KTH_ERR_NOT_FOUND)
                s->variant_failed[v] = true;
            else
                st = pass == 0 ? claim_playlist(s, v, f) : KTH_OK;
        }
        if (st != KTH_OK || s->variants[v].pl || s->variant_failed[v]) {
            platform_free(f);
            continue;
        }
        net_fetch_spec spec;
        memset(&spec, 0, sizeof spec);
        spec.url = s->variants[v].uri;
        spec.method = NET_GET;
        spec.priority = NET_FETCH_LOW;
        spec.accept_gzip = true;
        spec.cancel = net_peer_cancel_token(s->peer);
        spec.on_response = hls_playlist_on_response;
        spec.validate = net_validate_not_html;
        spec.write = hls_playlist_on_write;
        spec.complete = pl_on_complete;
        spec.user = f;
        if (net_batch_add(batch, &spec, NULL) != KTH_OK) {
            if (f->res) {
                /* Under the lock: the claim is a moment old, and a waker only wakes a peer. */
                cache_resource_release_writer(f->res, f);
                cache_resource_close(f->res);
            }
            platform_free(f);
            return;
        }
        s->variant_loading[v] = true;
        return;
    }
}
