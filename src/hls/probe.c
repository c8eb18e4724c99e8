/*
 * probe.c — learning a segment's plaintext size without downloading it, so a seek by time can
 * place a segment whose predecessors were never fetched.
 *
 * Clear segment: HEAD gives the Content-Length; a server that answers HEAD without one is asked
 * for `Range: bytes=0-0`, whose Content-Range carries the total. Encrypted segment: the
 * ciphertext size C comes the same way (or from its byte range), and the plaintext size is C
 * minus the PKCS#7 padding, which only the last block holds: the last 32 bytes are fetched and
 * the last block decrypted with the block before it as IV (CBC), its padding checked. A
 * one-block segment uses the segment's own IV.
 *
 * Probes wait on their fetch (event-driven, see fetch.c) with the caller's deadline and cancel
 * token, and never hold session.lock while they do.
 */
#include "hls/session.h"
#include "platform/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct probe_target {
    char *uri; /* copies (heap): the probe runs without session.lock */
    hls_byterange range;
    bool encrypted;
    char *key_uri;
    uint8_t iv[16];
    char name[HLS_ERR_MAX];
} probe_target;

/* The size of the whole resource (or of the range) in ciphertext/clear bytes. */
static kth_status resource_size(hls_session *s, const probe_target *t, const stream_wait_ctx *ctx,
                                uint64_t *size, char *why, size_t whylen)
{
    if (t->range.present) {
        *size = t->range.length;
        return KTH_OK;
    }
    hls_body body;
    kth_status st = hls_fetch_blocking(s->downloader, t->uri, NET_HEAD, false, 0, 0, NULL, false, 0,
                                       ctx->deadline_ns, ctx->cancel, &body);
    if (st == KTH_OK && body.has_total_length) {
        *size = body.total_length;
        hls_body_free(&body);
        return KTH_OK;
    }
    hls_body_free(&body);
    if (st == KTH_ERR_CANCELLED || st == KTH_ERR_TIMEOUT)
        return st;
    st = hls_fetch_blocking(s->downloader, t->uri, NET_GET, true, 0, 1, NULL, false, 16,
                            ctx->deadline_ns, ctx->cancel, &body);
    if (st == KTH_OK && body.has_total_length) {
        *size = body.total_length;
    } else if (st == KTH_OK) {
        st = KTH_ERR_FORMAT;
        snprintf(why, whylen, "the server tells no length");
    } else if (body.http_status >= 300) {
        snprintf(why, whylen, "HTTP %d", body.http_status);
    } else {
        snprintf(why, whylen, "%s", body.message);
    }
    hls_body_free(&body);
    return st;
}

static kth_status encrypted_size(hls_session *s, const probe_target *t, uint64_t cipher,
                                 const stream_wait_ctx *ctx, uint64_t *size, char *why,
                                 size_t whylen)
{
    if (cipher == 0 || cipher % DRM_AES128_BLOCK != 0) {
        snprintf(why, whylen, "its %llu bytes are not whole AES blocks",
                 (unsigned long long)cipher);
        return KTH_ERR_DECRYPT;
    }
    uint8_t key[16];
    kth_status st = hls_keys_load_blocking(s, t->key_uri, key, ctx);
    if (st != KTH_OK) {
        snprintf(why, whylen, "its key could not be loaded");
        return st;
    }
    uint64_t base = t->range.present ? t->range.offset : 0;
    uint64_t tail = cipher >= 32 ? 32 : 16;
    hls_body body;
    st = hls_fetch_blocking(s->downloader, t->uri, NET_GET, true, base + cipher - tail,
                            base + cipher, NULL, false, 64, ctx->deadline_ns, ctx->cancel, &body);
    if (st == KTH_OK && body.len != tail) {
        st = KTH_ERR_FORMAT;
        snprintf(why, whylen, "asked for its last %llu bytes, got %zu", (unsigned long long)tail,
                 body.len);
    } else if (st != KTH_OK) {
        if (body.http_status >= 300)
            snprintf(why, whylen, "HTTP %d", body.http_status);
        else
            snprintf(why, whylen, "%s", body.message);
    }
    if (st == KTH_OK) {
        const uint8_t *iv = tail == 32 ? body.data : t->iv;
        const uint8_t *last = body.data + tail - 16;
        drm_aes128 *d = NULL;
        uint8_t out[32];
        size_t n1 = 0, n2 = 0;
        st = drm_aes128_new(key, 16, iv, &d, why, whylen);
        if (st == KTH_OK)
            st = drm_aes128_update(d, last, 16, out, &n1);
        if (st == KTH_OK)
            st = drm_aes128_finish(d, out + n1, &n2, why, whylen);
        drm_aes128_free(d);
        if (st == KTH_OK)
            *size = cipher - 16 + n1 + n2;
    }
    hls_body_free(&body);
    return st;
}

kth_status hls_probe_size(hls_session *s, size_t variant, size_t entry, const stream_wait_ctx *ctx)
{
    probe_target t;
    memset(&t, 0, sizeof t);
    char err[HLS_ERR_MAX];
    platform_mutex_lock(&s->lock);
    hls_variant_state *v = &s->variants[variant];
    kth_status st = session_open_slot(s, variant, entry, err, sizeof err);
    hls_entry e;
    hls_layout_entry(v->layout, entry, &e);
    if (st != KTH_OK) {
        session_fail_locked(s, st, "%s", err);
        platform_mutex_unlock(&s->lock);
        return st;
    }
    if (e.size_known) {
        platform_mutex_unlock(&s->lock);
        return KTH_OK;
    }
    session_entry_name(s, variant, entry, t.name, sizeof t.name);
    if (s->offline) {
        session_fail_locked(s, KTH_ERR_OFFLINE_MISS, "offline: the size of %s is not in the cache",
                            t.name);
        platform_mutex_unlock(&s->lock);
        return KTH_ERR_OFFLINE_MISS;
    }
    const hls_media_playlist *m = &v->pl->media;
    size_t key_index;
    if (e.kind == HLS_ENTRY_INIT) {
        t.uri = platform_strdup(m->maps[e.map].uri);
        t.range = m->maps[e.map].range;
        key_index = m->maps[e.map].key;
        if (key_index != HLS_NONE)
            hls_key_iv(&m->keys[key_index], 0, t.iv);
    } else {
        t.uri = hls_media_segment_uri(m, e.segment);
        t.range = hls_media_segment(m, e.segment).range;
        key_index = hls_media_segment(m, e.segment).key;
        if (key_index != HLS_NONE)
            hls_key_iv(&m->keys[key_index], hls_media_segment(m, e.segment).sequence, t.iv);
    }
    if (key_index != HLS_NONE) {
        t.encrypted = true;
        t.key_uri = platform_strdup(m->keys[key_index].uri);
    }
    platform_mutex_unlock(&s->lock);

    char why[HLS_ERR_MAX];
    why[0] = '\0';
    uint64_t size = 0;
    st = !t.uri || (t.encrypted && !t.key_uri) ? KTH_ERR_NO_MEMORY : KTH_OK;
    if (st == KTH_OK)
        st = resource_size(s, &t, ctx, &size, why, sizeof why);
    else
        snprintf(why, sizeof why, "out of memory");
    if (st == KTH_OK && t.encrypted)
        st = encrypted_size(s, &t, size, ctx, &size, why, sizeof why);
    platform_free(t.uri);
    platform_free(t.key_uri);
    platform_mutex_lock(&s->lock);
    if (st == KTH_OK)
        st = session_set_entry_size(s, variant, entry, size);
    else if (st != KTH_ERR_CANCELLED && st != KTH_ERR_TIMEOUT)
        session_fail_locked(s, st, "%s: its size could not be learned: %s", t.name, why);
    platform_mutex_unlock(&s->lock);
    return st;
}
