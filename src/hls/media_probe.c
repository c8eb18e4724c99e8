/*
 * media_probe.c — what a decoder needs to know before the first segment plays (codec, sample
 * rate, channels), learned from as few bytes as possible: the init section of an fMP4 variant,
 * or the first bytes of its first segment (a TS segment's PAT, PMT and first PES carry the ADTS
 * header; packed audio begins with its first frame). One ranged GET into memory, decrypted
 * in place when the segment is AES-128; nothing but the key reaches the cache.
 */
#include "hls/session.h"

#include "platform/sync.h"
#include "platform/mem.h"

#include <stdlib.h>
#include <string.h>

#define HLS_MEDIA_PROBE_BYTES 8192

enum { INFO_NOT_ASKED = 0, INFO_FETCHING = 1, INFO_DONE = 2 };

typedef struct first_bytes {
    char *uri;
    uint64_t start, end; /* [start, end) of the resource */
    char *key_uri;       /* NULL when clear */
    uint8_t iv[16];
} first_bytes;

/* Chooses the bytes to ask for: the variant's init section, else its first segment (on a live
 * stream the first one still held). Lock held. False when the variant's playlist is not loaded
 * or memory runs out. */
static bool choose_bytes(hls_session *s, size_t variant, first_bytes *fb)
{
    const hls_playlist *pl = s->variants[variant].pl;
    if (!pl || pl->media.segment_count == 0)
        return false;
    const hls_media_playlist *m = &pl->media;
    size_t first = session_first_held_segment(&s->variants[variant]);
    const hls_segment seg_seg = hls_media_segment(m, first), *seg = &seg_seg;
    hls_byterange range = seg->range;
    size_t key = seg->key;
    uint64_t sequence = seg->sequence;
    if (seg->map != HLS_NONE) {
        range = m->maps[seg->map].range;
        key = m->maps[seg->map].key;
        sequence = 0;
    }
    fb->start = range.present ? range.offset : 0;
    uint64_t want = range.present && range.length < HLS_MEDIA_PROBE_BYTES ? range.length
                                                                          : HLS_MEDIA_PROBE_BYTES;
    fb->end = fb->start + want;
    fb->uri = seg->map != HLS_NONE ? platform_strdup(m->maps[seg->map].uri)
                                   : hls_media_segment_uri(m, first);
    if (key != HLS_NONE) {
        hls_key_iv(&m->keys[key], sequence, fb->iv);
        fb->key_uri = platform_strdup(m->keys[key].uri);
        return fb->uri && fb->key_uri;
    }
    return fb->uri != NULL;
}

/* Decrypts the whole blocks of body in place (CBC from the segment's IV). */
static kth_status decrypt_head(hls_session *s, const first_bytes *fb, const stream_wait_ctx *ctx,
                               hls_body *body)
{
    uint8_t key[16];
    kth_status st = hls_keys_load_blocking(s, fb->key_uri, key, ctx);
    if (st != KTH_OK)
        return st;
    size_t whole = body->len - body->len % DRM_AES128_BLOCK;
    uint8_t *plain = platform_malloc(whole + DRM_AES128_BLOCK);
    drm_aes128 *d = NULL;
    char why[HLS_ERR_MAX];
    size_t n = 0;
    st = plain ? drm_aes128_new(key, 16, fb->iv, &d, why, sizeof why) : KTH_ERR_NO_MEMORY;
    if (st == KTH_OK)
        st = drm_aes128_update(d, body->data, whole, plain, &n);
    drm_aes128_free(d);
    if (st == KTH_OK) {
        memcpy(body->data, plain, n);
        body->len = n;
    }
    platform_free(plain);
    return st;
}

void hls_media_probe(hls_session *s, size_t variant, kth_media_info *info)
{
    int expected = INFO_NOT_ASKED;
    if (!s->offline && s->downloader &&
        atomic_compare_exchange_strong(&s->info_state, &expected, INFO_FETCHING)) {
        first_bytes fb;
        memset(&fb, 0, sizeof fb);
        platform_mutex_lock(&s->lock);
        bool chosen = choose_bytes(s, variant, &fb);
        platform_mutex_unlock(&s->lock);
        kth_media_info found = {.variant = -1};
        if (chosen) {
            stream_wait_ctx ctx = {.deadline_ns =
                                       platform_monotonic_ns() + (int64_t)s->timeout_ms * 1000000,
                                   .cancel = NULL};
            hls_body body;
            kth_status st =
                hls_fetch_blocking(s->downloader, fb.uri, NET_GET, true, fb.start, fb.end, NULL,
                                   false, HLS_MEDIA_PROBE_BYTES, ctx.deadline_ns, NULL, &body);
            if (st == KTH_OK && fb.key_uri)
                st = decrypt_head(s, &fb, &ctx, &body);
            if (st == KTH_OK && body.len > 0)
                kth_media_probe(body.data, body.len, &found);
            hls_body_free(&body);
        }
        platform_free(fb.uri);
        platform_free(fb.key_uri);
        platform_mutex_lock(&s->lock);
        s->info_probed = found;
        platform_mutex_unlock(&s->lock);
        atomic_store(&s->info_state, INFO_DONE);
    }
    if (atomic_load(&s->info_state) != INFO_DONE)
        return;
    platform_mutex_lock(&s->lock);
    kth_media_info found = s->info_probed;
    platform_mutex_unlock(&s->lock);
    if (found.codec != KTH_CODEC_UNKNOWN &&
        (info->codec == KTH_CODEC_UNKNOWN || found.codec != KTH_CODEC_AAC_LC))
        info->codec = found.codec;
    if (found.sample_rate)
        info->sample_rate = found.sample_rate;
    if (found.channels)
        info->channels = found.channels;
    if (info->container == KTH_CONTAINER_UNKNOWN)
        info->container = found.container;
}
