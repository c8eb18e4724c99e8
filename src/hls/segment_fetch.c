/*
 * segment_fetch.c — how the body of one HLS entry reaches the cache: the response check, the
 * check that it begins like audio, writes at the entry's offsets, streaming decryption with the
 * plaintext probe, and the end of the body (segment_fetch.h). Downloader thread.
 */
#include "hls/segment_fetch.h"

#include "hls/session.h"
#include "platform/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

kth_status segment_fetch_new(hls_session *s, const segment_fetch_params *p, segment_fetch **out,
                             char *err, size_t errlen)
{
    *out = NULL;
    segment_fetch *f = platform_calloc(1, sizeof *f);
    if (f && !(f->url = platform_strdup(p->url))) {
        platform_free(f);
        f = NULL;
    }
    if (!f)
        return KTH_ERR_NO_MEMORY;
    f->s = s;
    f->variant = p->variant;
    f->entry = p->entry;
    f->res = p->res;
    f->kind = p->kind;
    f->has_range = p->has_range;
    f->range_start = p->range_start;
    if (p->key) {
        kth_status st = drm_aes128_new(p->key, 16, p->iv, &f->decrypt, err, errlen);
        if (st == KTH_OK && !(f->key_uri = platform_strdup(p->key_uri)))
            st = KTH_ERR_NO_MEMORY;
        if (st != KTH_OK) {
            drm_aes128_free(f->decrypt);
            platform_free(f->url);
            platform_free(f);
            return st;
        }
        f->encrypted = true;
    }
    f->has_expected = p->has_expected;
    f->expected = p->expected;
    f->info = p->info;
    f->started_ns = net_downloader_now(s->downloader);
    *out = f;
    return KTH_OK;
}

void segment_fetch_free(segment_fetch *f)
{
    if (!f)
        return;
    drm_aes128_free(f->decrypt);
    platform_free(f->key_uri);
    platform_free(f->url);
    platform_free(f);
}

static kth_status seg_on_response(void *user, const net_response *resp)
{
    segment_fetch *f = user;
    f->http_status = resp->status;
    if (resp->status < 200 || resp->status > 299)
        return KTH_ERR_HTTP;
    if (!f->has_expected && !f->has_range && resp->has_total_length) {
        f->has_expected = true;
        f->expected = resp->total_length;
    }
    if (!f->encrypted && !f->has_range && resp->has_total_length) {
        /* Recorded once the body proved to be a segment (seg_validate): the length of an error
         * page must not become the segment's size. */
        f->has_response_size = true;
        f->response_size = resp->total_length;
    }
    return KTH_OK;
}

/* Notes that the body reached `end` (relative to the entry's first byte). */
static void note_progress(segment_fetch *f, uint64_t end)
{
    int64_t now = net_downloader_now(f->s->downloader);
    if (f->first_byte_ns == 0)
        f->first_byte_ns = now;
    if (end > f->received) {
        f->received = end;
        f->progress_ns = now;
    }
}

/* After a write: tells the session's bus when the cache went over its budget or back.
 * Downloader thread, no lock held. */
static void tell_budget(segment_fetch *f)
{
    kth_event ev;
    if (f->s->bus && cache_resource_budget_news(f->res, &f->s->budget_seen, &ev) != KTH_EVENT_NONE)
        kth_bus_publish(f->s->bus, &ev);
}

/* Writes decrypted bytes, holding the first SEGMENT_FETCH_PROBE_BYTES back until they are
 * recognised as a container (or `final`: the segment ended sooner). KTH_ERR_DECRYPT when they are
 * not. */
static kth_status write_plain(segment_fetch *f, const uint8_t *p, size_t n, bool final)
{
    if (!f->probed) {
        size_t take = SEGMENT_FETCH_PROBE_BYTES - f->probe_len < n
                          ? SEGMENT_FETCH_PROBE_BYTES - f->probe_len
                          : n;
        memcpy(f->probe + f->probe_len, p, take);
        f->probe_len += take;
        p += take;
        n -= take;
        if (f->probe_len < SEGMENT_FETCH_PROBE_BYTES && !final)
            return KTH_OK;
        f->probed = true;
        /* An ID3 tag (packed audio) may be longer than the probe: its header is enough. */
        if (f->probe_len > 0 &&
            hls_check_body_start(f->probe, f->probe_len, f->kind, NULL, 0) != KTH_OK)
            return KTH_ERR_DECRYPT;
        if (f->probe_len > 0) {
            kth_status st = cache_resource_write(f->res, 0, f->probe, f->probe_len);
            if (st != KTH_OK)
                return st;
            f->plain_written = f->probe_len;
        }
    }
    if (n == 0)
        return KTH_OK;
    kth_status st = cache_resource_write(f->res, f->plain_written, p, n);
    if (st == KTH_OK) {
        f->plain_written += n;
        tell_budget(f);
    }
    return st;
}

/* The body must begin like audio before a byte of it is stored (a clear one here; an encrypted
 * one again after decryption, in write_plain). */
static kth_status seg_validate(void *user, const net_response *resp, const void *prefix, size_t n,
                               char *msg, size_t msglen)
{
    segment_fetch *f = user;
    kth_status st = hls_validate_segment(resp, prefix, n, f->kind, f->encrypted, msg, msglen);
    if (st == KTH_OK && f->has_response_size) {
        hls_session *s = f->s;
        platform_mutex_lock(&s->lock);
        st = session_set_entry_size(s, f->variant, f->entry, f->response_size);
        platform_mutex_unlock(&s->lock);
        if (st == KTH_ERR_CHANGED)
            snprintf(msg, msglen, "its size is not the one recorded before");
        else if (st != KTH_OK)
            snprintf(msg, msglen, "its size could not be recorded: %s", kth_strerror(st));
    }
    return st;
}

/* True while the reader waits on this entry's resource: the downloader then holds the fetch to
 * its pace for waiting readers (a trickle is abandoned and resumed). */
static bool seg_reader_waits(void *user)
{
    const segment_fetch *f = user;
    hls_session *s = f->s;
    platform_mutex_lock(&s->lock);
    const hls_slot *slot = session_slot(&s->variants[f->variant], f->entry);
    bool waits = s->waiting && s->waiting == slot->storage;
    platform_mutex_unlock(&s->lock);
    return waits;
}

static kth_status seg_on_write(void *user, uint64_t offset, const void *data, size_t n)
{
    segment_fetch *f = user;
    if (offset < f->range_start)
        return KTH_ERR_FORMAT;
    uint64_t rel = offset - f->range_start;
    note_progress(f, rel + n);
    if (!f->encrypted) {
        kth_status st = cache_resource_write(f->res, rel, data, n);
        if (st == KTH_OK) {
            f->plain_written = rel + n > f->plain_written ? rel + n : f->plain_written;
            tell_budget(f);
        }
        return st;
    }
    /* Ciphertext must arrive in order; a resumed body may repeat what we already have. */
    const uint8_t *p = data;
    if (rel > f->cipher_next)
        return KTH_ERR_FORMAT;
    uint64_t skip = f->cipher_next - rel;
    if (skip >= n)
        return KTH_OK;
    p += skip;
    n -= (size_t)skip;
    while (n > 0) {
        size_t take = n < SEGMENT_FETCH_CHUNK ? n : SEGMENT_FETCH_CHUNK;
        size_t out_len = 0;
        kth_status st = drm_aes128_update(f->decrypt, p, take, f->out, &out_len);
        if (st != KTH_OK)
            return st;
        if (out_len > 0 && (st = write_plain(f, f->out, out_len, false)) != KTH_OK)
            return st;
        f->cipher_next += take;
        p += take;
        n -= take;
    }
    return KTH_OK;
}

/* The body's own verdict on a fetch that ended with `r`: the end of its decryption, or the
 * sentence for a failure in why. A wrong key's bytes (noise that passed the first check) must
 * not stay cached, nor the key itself. */
static kth_status finish_body(segment_fetch *f, const net_result *r, char *why, size_t whylen)
{
    kth_status st = r->status;
    if (st == KTH_OK && f->encrypted) {
        size_t out_len = 0;
        st = drm_aes128_finish(f->decrypt, f->out, &out_len, why, whylen);
        if (st == KTH_OK)
            st = write_plain(f, f->out, out_len, true);
        if (st != KTH_OK && !why[0])
            snprintf(why, whylen, "%s", kth_strerror(st));
    } else if (st == KTH_ERR_DECRYPT) {
        snprintf(why, whylen, "the key does not decrypt it (the plaintext is not audio)");
    } else if (st != KTH_OK && st != KTH_ERR_CANCELLED) {
        if (f->http_status >= 300)
            snprintf(why, whylen, "HTTP %d", f->http_status);
        else
            snprintf(why, whylen, "%s", r->message && *r->message ? r->message : kth_strerror(st));
    }
    if (st == KTH_ERR_DECRYPT && f->encrypted) {
        if (f->plain_written > 0)
            cache_resource_invalidate(f->res);
        hls_keys_forget(f->s, f->key_uri);
    }
    return st;
}

static void seg_on_complete(void *user, const net_result *r)
{
    segment_fetch *f = user;
    char why[HLS_ERR_MAX];
    why[0] = '\0';
    kth_status st = finish_body(f, r, why, sizeof why);
    if (f->http_status == 0)
        f->http_status = r->http_status; /* an error status the downloader answered itself */
    hls_peer_segment_done(f, st, r->status, why, sizeof why);
    segment_fetch_free(f);
}

void segment_fetch_spec(segment_fetch *f, net_fetch_spec *spec)
{
    spec->on_response = seg_on_response;
    spec->validate = seg_validate;
    spec->reader_waits = seg_reader_waits;
    spec->write = seg_on_write;
    spec->complete = seg_on_complete;
    spec->user = f;
}
