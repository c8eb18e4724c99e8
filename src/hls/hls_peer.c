/*
 * hls_peer.c — what an HLS stream fetches next, and how segment bytes reach the cache.
 *
 * The peer is pulled by the downloader (poll_next), woken when the reader enters another entry,
 * seeks, waits for bytes nobody fetches yet, or changes the ABR controls. Each poll walks the
 * stream's entries from the reader's position forward, across periods, and:
 *   - counts the seconds of media present contiguously ahead of the reader (the ABR buffer);
 *   - starts fetches for missing entries up to the buffer target (seconds) and byte cap, at most
 *     max_fetches at once — the entry the reader is in gets NET_FETCH_HIGH, read-ahead LOW;
 *   - at the first segment that needs a fetch in the last period, asks the ABR controller which
 *     variant it should come from; a different answer appends a period (a variant switch);
 *   - cancels fetches that fell out of the window (after a seek) and closes the cache handles of
 *     entries left behind, so open files and memory stay bounded.
 *
 * Segment bytes: clear entries are written as they arrive at their offset within the entry
 * (byte ranges: the response offset minus the range start). Encrypted entries go through a
 * streaming AES-128-CBC decryptor, and their plaintext size is recorded only when the last
 * block was decrypted and its padding checked. A size is recorded in the layout before the
 * resource learns its length, so a reader woken by the length always finds it placed.
 *
 * Threads: poll, the fetch callbacks and on_sample run on the downloader thread; the estimator
 * and controller are touched only there. session.lock is taken briefly; cache writes of segment
 * bytes run without it (the slot cannot be closed while its fetch runs).
 */
#include "hls/session.h"

#include "platform/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CANCELS 64
#define MAX_EVENTS  8
#define CHUNK       (64 * 1024)
#define PROBE_BYTES 564 /* three MPEG-TS packets: enough to recognise every container we play */

typedef struct segment_fetch {
    hls_session *s;
    size_t variant, entry;
    cache_resource *res; /* borrowed from the slot (kept open while fetching) */
    bool encrypted;
    const char *key_uri; /* encrypted: borrowed from the playlist, which outlives the fetch */
    bool has_range;
    uint64_t range_start;
    drm_aes128 *decrypt;
    uint64_t cipher_next;
    uint64_t plain_written;
    int http_status;
    /* Encrypted entries: the first plaintext bytes, held back until they look like media (a
     * wrong key gives noise, which must never reach a reader or the cache). */
    bool probed;
    size_t probe_len;
    uint8_t probe[PROBE_BYTES];
    uint8_t out[CHUNK + DRM_AES128_BLOCK];
} segment_fetch;

typedef struct pending_event {
    kth_event_kind kind;
    kth_event_abr abr;
    char text[160];
} pending_event;

/* ---- fetch callbacks ---- */

static kth_status seg_on_response(void *user, const net_response *resp)
{
    segment_fetch *f = user;
    f->http_status = resp->status;
    if (resp->status < 200 || resp->status > 299)
        return KTH_ERR_HTTP;
    if (!f->encrypted && !f->has_range && resp->has_total_length) {
        hls_session *s = f->s;
        platform_mutex_lock(&s->lock);
        kth_status st = session_set_entry_size(s, f->variant, f->entry, resp->total_length);
        platform_mutex_unlock(&s->lock);
        return st;
    }
    return KTH_OK;
}

/* Writes decrypted bytes, holding the first PROBE_BYTES back until they are recognised as a
 * container (or `final`: the segment ended sooner). KTH_ERR_DECRYPT when they are not. */
static kth_status write_plain(segment_fetch *f, const uint8_t *p, size_t n, bool final)
{
    if (!f->probed) {
        size_t take = PROBE_BYTES - f->probe_len < n ? PROBE_BYTES - f->probe_len : n;
        memcpy(f->probe + f->probe_len, p, take);
        f->probe_len += take;
        p += take;
        n -= take;
        if (f->probe_len < PROBE_BYTES && !final)
            return KTH_OK;
        f->probed = true;
        /* An ID3 tag (packed audio) may be longer than the probe: its header is enough. */
        bool media = (f->probe_len >= 3 && memcmp(f->probe, "ID3", 3) == 0) ||
                     kth_container_detect(f->probe, f->probe_len) != KTH_CONTAINER_UNKNOWN;
        if (!media && f->probe_len > 0)
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
    if (st == KTH_OK)
        f->plain_written += n;
    return st;
}

static kth_status seg_on_write(void *user, uint64_t offset, const void *data, size_t n)
{
    segment_fetch *f = user;
    if (offset < f->range_start)
        return KTH_ERR_FORMAT;
    uint64_t rel = offset - f->range_start;
    if (!f->encrypted) {
        kth_status st = cache_resource_write(f->res, rel, data, n);
        if (st == KTH_OK)
            f->plain_written = rel + n > f->plain_written ? rel + n : f->plain_written;
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
        size_t take = n < CHUNK ? n : CHUNK;
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

static void seg_on_complete(void *user, const net_result *r)
{
    segment_fetch *f = user;
    hls_session *s = f->s;
    kth_status st = r->status;
    char why[HLS_ERR_MAX];
    why[0] = '\0';
    if (st == KTH_OK && f->encrypted) {
        size_t out_len = 0;
        st = drm_aes128_finish(f->decrypt, f->out, &out_len, why, sizeof why);
        if (st == KTH_OK)
            st = write_plain(f, f->out, out_len, true);
        if (st != KTH_OK && !why[0])
            snprintf(why, sizeof why, "%s", kth_strerror(st));
    } else if (st == KTH_ERR_DECRYPT) {
        snprintf(why, sizeof why, "the key does not decrypt it (the plaintext is not audio)");
    } else if (st != KTH_OK && st != KTH_ERR_CANCELLED) {
        if (f->http_status >= 300)
            snprintf(why, sizeof why, "HTTP %d", f->http_status);
        else
            snprintf(why, sizeof why, "%s",
                     r->message && *r->message ? r->message : kth_strerror(st));
    }

    /* Bytes a wrong key produced (noise that passed the first check) must not stay cached, nor
     * the key itself. */
    if (st == KTH_ERR_DECRYPT && f->encrypted) {
        if (f->plain_written > 0)
            cache_resource_invalidate(f->res);
        hls_keys_forget(s, f->key_uri);
    }

    platform_mutex_lock(&s->lock);
    hls_slot *slot = &s->variants[f->variant].slots[f->entry];
    if (st == KTH_OK) {
        st = session_set_entry_size(s, f->variant, f->entry, f->plain_written);
        if (st == KTH_OK) {
            st = cache_resource_commit(f->res, f->plain_written);
            uint64_t length = 0;
            if (st == KTH_ERR_IO)
                st = KTH_OK; /* readers see it committed; only its record failed */
            else if (st == KTH_ERR_STATE &&
                     storage_resource_state(slot->storage) == STORAGE_COMMITTED &&
                     storage_resource_length(slot->storage, &length) && length == f->plain_written)
                st = KTH_OK; /* the same resource at another place was completed first */
            else if (st != KTH_OK)
                snprintf(why, sizeof why, "the body ended before the segment was complete");
        }
    }
    if (st != KTH_OK && st != KTH_ERR_CANCELLED && s->failure == KTH_OK) {
        char name[1400];
        session_entry_name(s, f->variant, f->entry, name, sizeof name);
        session_fail_locked(s, st == KTH_ERR_HTTP && r->status == KTH_ERR_HTTP ? KTH_ERR_HTTP : st,
                            "%s: %s", name, why);
    }
    slot->fetching = false;
    slot->urgent = false;
    platform_cancel *token = slot->fetch_cancel;
    slot->fetch_cancel = NULL;
    s->in_flight--;
    platform_mutex_unlock(&s->lock);
    platform_cancel_unref(token);
    drm_aes128_free(f->decrypt);
    free(f);
}

static void on_sample(void *user, const net_sample *sample)
{
    hls_session *s = user;
    abr_sample a = {
        .bytes = sample->bytes,
        .duration_ns = sample->duration_ns > 0 ? (uint64_t)sample->duration_ns : 0,
        .ttfb_ns = sample->ttfb_ns > 0 ? (uint64_t)sample->ttfb_ns : 0,
        .now_ns = (uint64_t)platform_monotonic_ns(),
    };
    abr_estimator_add_sample(&s->estimator, &a);
}

/* ---- starting fetches ---- */

/* Starts the fetch of one entry. Lock held. KTH_ERR_RETRY: its key is not there yet. */
static kth_status start_fetch(hls_session *s, size_t variant, size_t entry, bool urgent,
                              net_batch *batch)
{
    hls_variant_state *v = &s->variants[variant];
    hls_slot *slot = &v->slots[entry];
    hls_entry e;
    hls_layout_entry(v->layout, entry, &e);
    const hls_media_playlist *m = &v->pl->media;
    const char *uri;
    hls_byterange range;
    size_t key_index;
    uint8_t iv[16];
    if (e.kind == HLS_ENTRY_INIT) {
        uri = m->maps[e.map].uri;
        range = m->maps[e.map].range;
        key_index = m->maps[e.map].key;
        if (key_index != HLS_NONE)
            hls_key_iv(&m->keys[key_index], 0, iv); /* an init section's key always has an IV */
    } else {
        uri = m->segments[e.segment].uri;
        range = m->segments[e.segment].range;
        key_index = m->segments[e.segment].key;
        if (key_index != HLS_NONE)
            hls_key_iv(&m->keys[key_index], m->segments[e.segment].sequence, iv);
    }
    segment_fetch *f = calloc(1, sizeof *f);
    if (!f)
        return KTH_ERR_NO_MEMORY;
    f->s = s;
    f->variant = variant;
    f->entry = entry;
    f->res = slot->res;
    f->has_range = range.present;
    f->range_start = range.present ? range.offset : 0;
    if (key_index != HLS_NONE) {
        hls_key_state *k = hls_keys_get(s, m->keys[key_index].uri);
        if (!k) {
            free(f);
            return KTH_ERR_NO_MEMORY;
        }
        if (!k->loaded) {
            free(f);
            if (!k->fetching) {
                kth_status st = hls_keys_fetch(s, k, batch);
                if (st != KTH_OK)
                    return st;
            }
            return KTH_ERR_RETRY;
        }
        char err[256];
        kth_status st = drm_aes128_new(k->key, 16, iv, &f->decrypt, err, sizeof err);
        if (st != KTH_OK) {
            free(f);
            return st;
        }
        f->encrypted = true;
        f->key_uri = m->keys[key_index].uri;
    }
    platform_cancel *token = platform_cancel_new(net_peer_cancel_token(s->peer));
    if (!token) {
        drm_aes128_free(f->decrypt);
        free(f);
        return KTH_ERR_NO_MEMORY;
    }
    net_fetch_spec spec;
    memset(&spec, 0, sizeof spec);
    spec.url = uri;
    spec.method = NET_GET;
    spec.has_range = range.present;
    spec.range_start = range.offset;
    spec.range_end = range.offset + range.length;
    spec.priority = urgent ? NET_FETCH_HIGH : NET_FETCH_LOW;
    spec.cancel = token;
    spec.on_response = seg_on_response;
    spec.write = seg_on_write;
    spec.complete = seg_on_complete;
    spec.user = f;
    kth_status st = net_batch_add(batch, &spec, NULL);
    if (st != KTH_OK) {
        platform_cancel_unref(token);
        drm_aes128_free(f->decrypt);
        free(f);
        return st;
    }
    slot->fetching = true;
    slot->urgent = urgent;
    slot->fetch_cancel = token;
    slot->fetch_started_ns = platform_monotonic_ns();
    s->in_flight++;
    return KTH_OK;
}

/* ---- the walk ---- */

typedef struct walk {
    size_t period;
    size_t entry;
    bool in_prefix;
} walk;

static void walk_start_period(hls_session *s, walk *w, size_t period)
{
    const hls_period *p = &s->periods[period];
    w->period = period;
    w->in_prefix = p->prefix_init != HLS_NONE;
    w->entry = w->in_prefix ? p->prefix_init : p->first_entry;
}

static bool walk_valid(hls_session *s, const walk *w)
{
    const hls_period *p = &s->periods[w->period];
    return w->in_prefix || w->entry < p->end_entry;
}

static bool walk_next(hls_session *s, walk *w)
{
    const hls_period *p = &s->periods[w->period];
    if (w->in_prefix) {
        w->in_prefix = false;
        w->entry = p->first_entry;
    } else {
        w->entry++;
    }
    while (!walk_valid(s, w)) {
        if (w->period + 1 >= s->period_count)
            return false;
        walk_start_period(s, w, w->period + 1);
    }
    return true;
}

/* Asks the controller which variant segment `segment` of the last period should come from;
 * appends a period when it is another one. Lock held. True when a switch was made. */
static bool decide(hls_session *s, size_t segment, double buffer_s, pending_event *events,
                   size_t *event_count)
{
    hls_period *last = &s->periods[s->period_count - 1];
    if (s->abr_count < 2 || segment <= last->first_segment)
        return false;
    size_t current_level = 0;
    for (size_t v = 0; v < last->variant; v++)
        if (s->variants[v].pl)
            current_level++;
    const hls_variant_state *cv = &s->variants[last->variant];
    const hls_segment *seg = &cv->pl->media.segments[segment];
    abr_input in;
    memset(&in, 0, sizeof in);
    in.ladder = s->abr_ladder;
    in.ladder_count = s->abr_count;
    abr_estimator_get(&s->estimator, &in.estimate);
    in.buffer_s = buffer_s;
    in.has_previous = 1;
    in.previous_level = current_level;
    in.segment_s = seg->duration > 0.1             ? seg->duration
                   : cv->pl->media.target_duration ? (double)cv->pl->media.target_duration
                                                   : 2.0;
    in.segments_left = cv->pl->media.segment_count - segment;
    in.now_ns = (uint64_t)platform_monotonic_ns();
    abr_controls_snapshot(&s->controls, &in.controls);
    if (in.controls.mode == ABR_MODE_MANUAL) {
        /* The controls name a variant; the controller counts usable rungs. */
        size_t wanted = in.controls.manual_level, level = 0;
        if (wanted >= s->ladder.count || !s->variants[wanted].pl)
            wanted = last->variant;
        for (size_t v = 0; v < wanted; v++)
            if (s->variants[v].pl)
                level++;
        in.controls.manual_level = level;
    }
    abr_decision d;
    if (abr_controller_decide(&s->controller, &in, &d) != 0)
        return false;
    s->segments_since_switch++;
    size_t target = d.level < s->abr_count ? d.level : current_level;
    /* Switches are spaced by min_segments_between_switches, except a rescue: the controller's
     * urgent down-switch, a manual choice, or any step down while less than two segments are
     * buffered (waiting there would let the buffer run dry). */
    bool rescue = target < current_level && buffer_s < 2 * in.segment_s;
    bool allowed = d.reason == ABR_REASON_URGENT_DOWN || d.reason == ABR_REASON_MANUAL || rescue ||
                   s->segments_since_switch > s->hls.min_segments_between_switches;
    /* Map the level back to a variant: the usable variants in ladder order. */
    size_t variant = last->variant, seen = 0;
    for (size_t v = 0; v < s->ladder.count; v++) {
        if (!s->variants[v].pl)
            continue;
        if (seen++ == target) {
            variant = v;
            break;
        }
    }
    bool switched = false;
    size_t from = last->variant;
    if (variant != last->variant && allowed) {
        /* The new variant starts at its segment holding the boundary's time (with segments
         * that are not aligned, a little audio repeats rather than goes missing). */
        double t = seg->start;
        size_t first = hls_layout_segment_at_time(s->variants[variant].layout, t + 1e-3);
        if (session_append_period(s, variant, first, segment)) {
            switched = true;
            s->segments_since_switch = 0;
        }
    }
    if (*event_count < MAX_EVENTS) {
        pending_event *ev = &events[(*event_count)++];
        ev->kind = KTH_EVENT_ABR_DECISION;
        ev->abr.from_variant = (int)from;
        ev->abr.to_variant = (int)(switched ? variant : from);
        ev->abr.estimate_bps = d.estimate_bps;
        ev->abr.buffer_seconds = d.buffer_s;
        snprintf(ev->text, sizeof ev->text, "%s", abr_reason_name(d.reason));
    }
    if (switched && *event_count < MAX_EVENTS) {
        pending_event *ev = &events[(*event_count)++];
        *ev = events[*event_count - 2];
        ev->kind = KTH_EVENT_VARIANT_CHANGED;
    }
    return switched;
}

/* True when another entry sharing `slot`'s resource (the same URI and range at several
 * places in the playlists) is being fetched: one writer per resource. Lock held. */
static bool fetching_elsewhere(hls_session *s, const hls_slot *slot)
{
    for (size_t vi = 0; vi < s->ladder.count; vi++) {
        const hls_variant_state *v = &s->variants[vi];
        for (size_t e = 0; v->slots && e < v->entry_count; e++) {
            const hls_slot *o = &v->slots[e];
            if (o != slot && o->fetching && o->storage == slot->storage)
                return true;
        }
    }
    return false;
}

static net_poll_result on_poll(void *user, net_batch *batch)
{
    hls_session *s = user;
    platform_cancel *cancels[MAX_CANCELS];
    size_t cancel_count = 0;
    pending_event events[MAX_EVENTS];
    size_t event_count = 0;
    bool added = false;
    static _Atomic uint64_t generation_source = 1;
    uint64_t mark = atomic_fetch_add(&generation_source, 1);

    platform_mutex_lock(&s->lock);
    if (s->failure != KTH_OK) {
        platform_mutex_unlock(&s->lock);
        return NET_POLL_IDLE;
    }
    hls_variants_load_more(s, batch);
    uint64_t position = session_reader_position(s);
    hls_place place = {0};
    hls_locate where = session_locate(s, position, &place);
    /* Entries in the window: [reader entry, ...) per variant; everything else may be closed. */
    size_t window_variant = where == HLS_PAST_END ? SIZE_MAX : place.variant;
    size_t window_first = place.entry;
    double buffer_s = 0, ahead_s = 0;
    uint64_t ahead_bytes = 0;
    bool contiguous = true, first = true, stop = false, key_wait = false;
    walk w;
    bool past_end = where == HLS_PAST_END;
    if (!past_end) {
        w.period = place.period;
        w.entry = place.entry;
        w.in_prefix = s->periods[place.period].prefix_init == place.entry;
        atomic_store(&s->current_variant, place.variant);
    } else {
        /* The reader is at (or past) the end: its EOF is proven by the commit of the last
         * entry with bytes, so that one entry is the window. */
        size_t lv, le;
        session_last_entry_with_bytes(s, &lv, &le);
        w.period = s->period_count - 1;
        w.entry = le;
        w.in_prefix = s->periods[w.period].prefix_init == le;
        window_variant = lv;
        window_first = le;
    }
    /* A manual choice of another variant switches at the next segment boundary after the
     * reader, even when the old variant is buffered past it (the user asked for it now). */
    abr_controls_state controls;
    abr_controls_snapshot(&s->controls, &controls);
    const hls_period *last_period = &s->periods[s->period_count - 1];
    bool manual_pending =
        controls.mode == ABR_MODE_MANUAL && controls.manual_level < s->ladder.count &&
        s->variants[controls.manual_level].pl && controls.manual_level != last_period->variant;
    size_t walked = 0;
    while (!stop && walked++ < 4096) {
        hls_variant_state *v = &s->variants[s->periods[w.period].variant];
        size_t vi = (size_t)(v - s->variants);
        hls_entry e;
        hls_layout_entry(v->layout, w.entry, &e);
        if (e.kind == HLS_ENTRY_SEGMENT && v->pl->media.segments[e.segment].gap) {
            /* EXT-X-GAP: no bytes, never fetched; its time still counts as buffered. */
            if (contiguous)
                buffer_s += e.duration;
            ahead_s += e.duration;
            if (past_end || !walk_next(s, &w))
                break;
            continue;
        }
        char err[HLS_ERR_MAX];
        kth_status st = session_open_slot(s, vi, w.entry, err, sizeof err);
        if (st != KTH_OK) {
            session_fail_locked(s, st, "%s", err);
            break;
        }
        if (manual_pending && e.kind == HLS_ENTRY_SEGMENT && w.period == s->period_count - 1 &&
            !first && e.segment > s->periods[w.period].first_segment &&
            !(w.period == s->reader_period && w.entry <= s->reader_entry)) {
            manual_pending = false;
            if (decide(s, e.segment, buffer_s, events, &event_count)) {
                walk_start_period(s, &w, s->period_count - 1);
                continue;
            }
        }
        hls_slot *slot = &v->slots[w.entry];
        slot->mark = mark;
        storage_state state = storage_resource_state(slot->storage);
        if (state == STORAGE_COMMITTED) {
            uint64_t length;
            if (!e.size_known && storage_resource_length(slot->storage, &length) &&
                session_set_entry_size(s, vi, w.entry, length) == KTH_OK) {
                e.size_known = true; /* completed as another entry of the same resource */
                e.size = length;
            }
            if (contiguous)
                buffer_s += e.duration;
        } else if (slot->fetching || fetching_elsewhere(s, slot)) {
            contiguous = false;
        } else if (state == STORAGE_ACTIVE && s->in_flight < s->hls.max_fetches && !key_wait) {
            contiguous = false;
            if (e.kind == HLS_ENTRY_SEGMENT && w.period == s->period_count - 1 && !first &&
                !(w.period == s->reader_period && w.entry <= s->reader_entry) &&
                decide(s, e.segment, buffer_s, events, &event_count)) {
                /* A switch: continue with the new period's first entry. */
                walk_start_period(s, &w, s->period_count - 1);
                continue;
            }
            st = start_fetch(s, vi, w.entry, first, batch);
            if (st == KTH_ERR_RETRY || st == KTH_ERR_LIMIT) {
                key_wait = true; /* the key comes first (or the batch is full) */
            } else if (st != KTH_OK) {
                char name[1400];
                session_entry_name(s, vi, w.entry, name, sizeof name);
                session_fail_locked(s, st, "%s: could not start its download: %s", name,
                                    kth_strerror(st));
                break;
            } else {
                added = true;
            }
        } else if (state == STORAGE_ACTIVE) {
            contiguous = false; /* wanted, but no room to start it now */
        } else {
            break; /* failed: the failure is reported to the reader */
        }
        first = false;
        ahead_s += e.duration;
        if (e.size_known)
            ahead_bytes += e.size;
        if (ahead_s >= s->hls.buffer_target_s || ahead_bytes >= s->hls.buffer_max_bytes)
            stop = true;
        if (past_end || !walk_next(s, &w))
            break;
    }
    s->last_buffer_s = buffer_s;

    /* Cancel fetches outside the window (left behind by a seek); close far handles. */
    for (size_t vi = 0; vi < s->ladder.count; vi++) {
        hls_variant_state *v = &s->variants[vi];
        for (size_t e = 0; v->slots && e < v->entry_count; e++) {
            hls_slot *slot = &v->slots[e];
            if (!slot->res)
                continue;
            if (slot->mark == mark)
                continue;
            /* Kept open: the two entries just behind the reader (a short seek back). */
            bool near = vi == window_variant && e <= window_first && e + 2 >= window_first;
            if (slot->fetching && !near && cancel_count < MAX_CANCELS)
                cancels[cancel_count++] = platform_cancel_ref(slot->fetch_cancel);
            else if (!slot->fetching && !near)
                session_close_slot(s, vi, e);
        }
    }
    platform_mutex_unlock(&s->lock);

    for (size_t i = 0; i < cancel_count; i++) {
        platform_cancel_cancel(cancels[i]);
        platform_cancel_unref(cancels[i]);
    }
    for (size_t i = 0; i < event_count; i++)
        session_publish(s, events[i].kind, KTH_OK, &events[i].abr, "%s", events[i].text);
    return added ? NET_POLL_BATCH : NET_POLL_IDLE;
}

static void controls_wake(void *ctx)
{
    hls_peer_wake(ctx);
}

kth_status hls_peer_start(hls_session *s)
{
    abr_estimator_init(&s->estimator, NULL);
    abr_controller_init(&s->controller, NULL);
    s->segments_since_switch = s->hls.min_segments_between_switches + 1; /* none yet */
    abr_controls_set_wake(&s->controls, controls_wake, s);
    net_peer_ops ops = {on_poll, on_sample};
    return net_peer_register(s->downloader, &ops, s, NET_PEER_FOREGROUND, NULL, &s->peer);
}

void hls_peer_wake(hls_session *s)
{
    if (s->peer)
        net_peer_wake(s->peer);
}

void hls_peer_manual_switch(hls_session *s)
{
    abr_controls_state controls;
    abr_controls_snapshot(&s->controls, &controls);
    if (controls.mode != ABR_MODE_MANUAL)
        return;
    kth_event_abr abr = {0};
    bool switched = false;
    platform_mutex_lock(&s->lock);
    size_t target = controls.manual_level;
    hls_period *last = &s->periods[s->period_count - 1];
    uint64_t position = session_reader_position(s);
    hls_place place;
    if (s->failure == KTH_OK && target < s->ladder.count && s->variants[target].pl &&
        target != last->variant && session_locate(s, position, &place) != HLS_PAST_END &&
        place.period == s->period_count - 1) {
        if (s->reader_period == place.period && s->reader_entry > place.entry)
            place.entry = s->reader_entry; /* a read may have gone further already */
        /* The boundary after the reader's segment, mapped by time into the chosen variant. */
        hls_entry e;
        hls_layout_entry(s->variants[last->variant].layout, place.entry, &e);
        const hls_media_playlist *m = &s->variants[last->variant].pl->media;
        if (e.segment + 1 < m->segment_count) {
            double t = m->segments[e.segment + 1].start;
            size_t first = hls_layout_segment_at_time(s->variants[target].layout, t + 1e-3);
            abr.from_variant = (int)last->variant;
            if (first > 0 && session_append_period(s, target, first, e.segment + 1)) {
                switched = true;
                s->segments_since_switch = 0;
                abr.to_variant = (int)target;
                abr.buffer_seconds = s->last_buffer_s;
            }
        }
    }
    platform_mutex_unlock(&s->lock);
    if (switched) {
        session_publish(s, KTH_EVENT_ABR_DECISION, KTH_OK, &abr, "%s",
                        abr_reason_name(ABR_REASON_MANUAL));
        session_publish(s, KTH_EVENT_VARIANT_CHANGED, KTH_OK, &abr, "%s",
                        abr_reason_name(ABR_REASON_MANUAL));
    }
    hls_peer_wake(s);
}
