/*
 * hls_source.c — the reader side of an HLS stream: the source contract over the session's
 * byte space, and the creation of the session.
 *
 * read_at and wait_range translate a stream offset into (variant, entry, offset within) at one
 * place (session_locate) and then read or wait on that entry's storage resource, holding no
 * lock while they wait. An entry whose size is not known yet is read as far as its bytes go:
 * its end (the resource committed) makes the size known and the next locate moves on.
 *
 * The variant fence: a read whose offset lies in another period than the one the reader last
 * acknowledged returns PENDING(VARIANT_CHANGE) without a byte, and the fence is then pending:
 * it stays pending, whatever the reader seeks to and reads in the acknowledged period (a demuxer
 * that probes past the fence and seeks back has not dealt with it), until clear_variant_fence
 * acknowledges its period or a time seek restarts the reader. Fence state is guarded by
 * session.lock (set_position may run on any thread).
 *
 * EOF is proven: the offset is at or past the sum of every size, and the last entry with bytes
 * is committed.
 *
 * Time seeks place the target segment where the byte space already holds it decodably, else
 * splice the space at served_end (session.h); neither fetches nor probes anything, so a cold
 * seek costs the requests of the target alone. A read hands out bytes only if no splice was
 * made since it located them (hand_out), so served_end bounds every offset handed out.
 */
#include "hls/hls_source.h"

#include "hls/session.h"
#include "hls/live.h"
#include "platform/log.h"
#include "platform/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DEFAULT_TIMEOUT_MS                    60000
#define DEFAULT_BUFFER_S                      60.0
#define DEFAULT_BUFFER_MAX                    ((uint64_t)32 << 20)
#define DEFAULT_MAX_FETCHES                   3
#define DEFAULT_MIN_SEGMENTS_BETWEEN_SWITCHES 2
#define MAX_LOCATE_PASSES                     64

static const stream_source_ops hls_source_ops;

void kth_hls_options_init(kth_hls_options *opts)
{
    if (!opts)
        return;
    memset(opts, 0, sizeof *opts);
    opts->size = sizeof *opts;
}

bool hls_source_is(const stream_source *src)
{
    return src && src->ops == &hls_source_ops;
}

static hls_session *from_base(stream_source *src)
{
    return (hls_session *)src;
}

bool hls_looks_like_playlist(const char *url, const char *content_type, const uint8_t *head,
                             size_t n)
{
    if (content_type) {
        const char *types[] = {"application/vnd.apple.mpegurl", "application/x-mpegurl",
                               "audio/mpegurl", "audio/x-mpegurl"};
        for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
            if (strncasecmp(content_type, types[i], strlen(types[i])) == 0)
                return true;
    }
    if (head && n >= 3 && head[0] == 0xEF && head[1] == 0xBB && head[2] == 0xBF) {
        head += 3;
        n -= 3;
    }
    if (head && n >= 7 && memcmp(head, "#EXTM3U", 7) == 0)
        return true;
    if (url) {
        size_t len = strcspn(url, "?#");
        if (len >= 5 && strncasecmp(url + len - 5, ".m3u8", 5) == 0)
            return true;
    }
    return false;
}

/* ---- reader side ---- */

static void set_reader_error(hls_session_reader *r, const char *fmt, const char *detail)
{
    platform_excerptf(r->error, sizeof r->error, fmt, detail);
}

/* The stream length, when every size is known. Lock held. */
static bool length_locked(hls_session *s, uint64_t *length)
{
    hls_place pl;
    if (s->live.open || session_locate(s, UINT64_MAX, &pl) != HLS_PAST_END)
        return false;
    /* Past the end of everything: the last period's base plus its length. */
    hls_period *last = &s->periods[s->period_count - 1];
    if (!last->base_known)
        return false;
    uint64_t total = last->base, size;
    hls_layout *l = s->variants[last->variant].layout;
    size_t first;
    size_t count = session_period_entries(last, &first);
    if (last->prefix_init != HLS_NONE) {
        hls_entry e;
        hls_layout_entry(l, last->prefix_init, &e);
        total += e.size;
    }
    for (size_t i = 0; i < count; i++) {
        hls_entry e;
        hls_layout_entry(l, first + i, &e);
        size = e.size;
        total += size;
    }
    if (length)
        *length = total;
    return true;
}

typedef struct target {
    storage_resource *storage; /* reference */
    cache_resource *res;       /* borrowed: valid while the lock was held */
    uint64_t within;
    bool end_check; /* waiting for the last entry's commit (proof of EOF) */
    bool live_edge; /* past the last segment of a live playlist: waiting for a reload */
    size_t period;
    size_t entry;
    size_t variant;
    bool segment;            /* the entry is a media segment (not an init section) */
    kth_event_segment where; /* that segment, for the playback progress event */
    uint64_t room;           /* bytes readable from the offset before a splice cuts the period */
    uint64_t generation;     /* splice_generation when located */
    uint64_t cut;            /* cut_generation when located */
} target;

/* Offline there is no downloader peer, whose polls close the entries the reader has left:
 * the reader does it when it enters a new entry, keeping the two just behind it (a short seek
 * back). Keeps open files bounded however long the presentation. Lock held. */
static void close_behind_locked(hls_session *s, size_t variant, size_t entry)
{
    for (size_t i = s->open_count; i-- > 0;) {
        size_t vi = s->open[i].variant, e = s->open[i].entry;
        bool near = vi == variant && e <= entry && e + 2 >= entry;
        if (!near)
            session_close_slot(s, vi, e);
    }
}

/* KTH_EVENT_HLS_PLAYBACK_PROGRESS: the reader entered a segment. No lock held. */
static void publish_progress(hls_session *s, const kth_event_segment *where)
{
    if (!s->bus)
        return;
    kth_event ev;
    memset(&ev, 0, sizeof ev);
    ev.kind = KTH_EVENT_HLS_PLAYBACK_PROGRESS;
    ev.origin = s->origin;
    ev.payload.segment = *where;
    kth_bus_publish(s->bus, &ev);
}

/* Finds what holds stream byte `offset` and opens it. Lock held. */
static kth_status find_target(hls_session *s, uint64_t offset, target *t, char *err, size_t errlen)
{
    memset(t, 0, sizeof *t);
    hls_live_make_room(s);
    hls_place pl;
    hls_locate r = session_locate(s, offset, &pl);
    if (r == HLS_RELEASED) {
        snprintf(err, errlen,
                 "stream offset %llu lies before what the live stream keeps of its past "
                 "(segments that left the live window and were released, or more than %d "
                 "discontinuities back): a time seek goes back within the window",
                 (unsigned long long)offset, HLS_KEEP_BEHIND);
        return KTH_ERR_NOT_FOUND;
    }
    if (r == HLS_PAST_END && s->live.open && s->live.stuck) {
        snprintf(err, errlen, "%s", s->live.stuck_msg);
        return KTH_ERR_NETWORK;
    }
    if (r == HLS_PAST_END && s->live.open) {
        /* Nothing is there yet: the reader waits on the edge, which a reload wakes. */
        t->live_edge = true;
        t->period = s->period_count - 1;
        t->variant = s->periods[t->period].variant;
        t->room = UINT64_MAX;
        t->generation = s->reader.splice_generation;
        t->cut = s->reader.cut_generation;
        t->storage = storage_resource_ref(s->live.edge);
        return KTH_OK;
    }
    if (r == HLS_PAST_END) {
        session_last_entry_with_bytes(s, &pl.variant, &pl.entry);
        t->end_check = true;
        pl.period = s->period_count - 1;
        hls_entry e;
        hls_layout_entry(s->variants[pl.variant].layout, pl.entry, &e);
        t->within = e.size;
    } else {
        t->within = offset - pl.entry_stream_start;
        hls_entry e;
        if (hls_layout_entry(s->variants[pl.variant].layout, pl.entry, &e) == KTH_OK &&
            e.kind == HLS_ENTRY_SEGMENT) {
            t->segment = true;
            t->where.variant = (int)pl.variant;
            t->where.index = e.segment;
            t->where.bytes = e.size_known ? e.size : 0;
            t->where.start_seconds = e.start;
            t->where.duration = e.duration;
        }
    }
    t->period = pl.period;
    t->entry = pl.entry;
    t->variant = pl.variant;
    t->generation = s->reader.splice_generation;
    t->cut = s->reader.cut_generation;
    const hls_period *per = &s->periods[pl.period];
    t->room = per->cut && !t->end_check ? per->base + per->cut_length - offset : UINT64_MAX;
    if (!t->end_check && (pl.period > s->reader.period ||
                          (pl.period == s->reader.period && pl.entry > s->reader.entry))) {
        s->reader.period = pl.period;
        s->reader.entry = pl.entry;
        if (s->offline)
            close_behind_locked(s, pl.variant, pl.entry);
    }
    kth_status st = session_open_slot(s, pl.variant, pl.entry, err, errlen);
    if (st != KTH_OK)
        return st;
    hls_slot *slot = session_slot(&s->variants[pl.variant], pl.entry);
    t->storage = storage_resource_ref(slot->storage);
    t->res = slot->res;
    return KTH_OK;
}

static kth_status report_failure(hls_session *s)
{
    platform_excerpt(s->failure_msg, s->reader.error, sizeof s->reader.error);
    return s->failure;
}

/* True when entry `entry` of period `period` comes before the failed entry in the stream. */
static bool before_failed(const hls_session *s, size_t period, size_t entry)
{
    for (size_t i = 0; i < s->period_count; i++) {
        const hls_period *p = &s->periods[i];
        bool holds = p->variant == s->failed_variant &&
                     (s->failed_entry == p->prefix_init ||
                      (s->failed_entry >= p->first_entry && s->failed_entry < p->end_entry));
        if (holds) /* an init section in front of a period comes before its entries */
            return period < i || (period == i && entry < s->failed_entry);
    }
    return false; /* not in the stream (left behind by a switch): it stops every read */
}

/* True when the stream's failure stops a read at `offset`: always, except the failure of one
 * entry for a read of an entry before it whose bytes are in or on their way (they came before
 * the failure; the reader gets them first, and the failure where it stands). Looks only: it
 * opens nothing, since no poll closes what is opened after a failure. Lock held. */
static bool failure_stops(hls_session *s, uint64_t offset)
{
    if (s->failure == KTH_OK)
        return false;
    if (!s->failure_at_entry)
        return true;
    hls_place pl;
    hls_locate r = session_locate(s, offset, &pl);
    if ((r != HLS_LOCATED && r != HLS_NEED_SIZE) || !before_failed(s, pl.period, pl.entry))
        return true;
    const hls_slot *slot = session_slot(&s->variants[pl.variant], pl.entry);
    bool coming = slot->fetching ||
                  (slot->storage && storage_resource_state(slot->storage) == STORAGE_COMMITTED);
    return !coming;
}

/* Locates `offset` for a read, under the lock. True with *t (its storage referenced) when the
 * read goes on; false when *out says what the read returns (an error, or a variant fence). */
static bool locate_for_read(hls_session *s, uint64_t offset, target *t, source_read *out)
{
    char err[HLS_ERR_MAX];
    platform_mutex_lock(&s->lock);
    if (failure_stops(s, offset)) {
        out->kind = KTH_READ_ERROR;
        out->status = report_failure(s);
        platform_mutex_unlock(&s->lock);
        return false;
    }
    kth_status st = find_target(s, offset, t, err, sizeof err);
    if (st != KTH_OK) {
        if (s->offline || st != KTH_ERR_OFFLINE_MISS)
            session_fail_locked(s, st, "%s", err);
        out->kind = KTH_READ_ERROR;
        out->status = report_failure(s);
        platform_mutex_unlock(&s->lock);
        return false;
    }
    if (!t->end_check && !t->live_edge && t->period != s->reader.acked_period) {
        s->reader.fence_pending = true;
        s->reader.fence_period = t->period;
        platform_mutex_unlock(&s->lock);
        storage_resource_unref(t->storage);
        out->reason = KTH_PENDING_VARIANT_CHANGE;
        return false;
    }
    /* A fence met earlier stays pending (a seek away from it does not clear it). */
    atomic_store(&s->current_variant, t->variant);
    platform_mutex_unlock(&s->lock);
    return true;
}

/* The entry ended before the offset. Its size is known now: from its own fetch, or, for a
 * resource shared with another entry (one URI at several places), from the storage, recorded
 * here. Drops t's reference. */
static void learn_entry_size(hls_session *s, const target *t)
{
    uint64_t length;
    if (storage_resource_length(t->storage, &length)) {
        platform_mutex_lock(&s->lock);
        hls_entry e;
        hls_layout_entry(s->variants[t->variant].layout, t->entry, &e);
        if (!e.size_known)
            session_set_entry_size(s, t->variant, t->entry, length);
        platform_mutex_unlock(&s->lock);
    }
    storage_resource_unref(t->storage);
}

/* A read of the entry's storage failed with `st` (not KTH_ERR_RETRY): the reader's error. Drops
 * t's reference. */
static source_read read_failed(hls_session *s, const target *t, kth_status st)
{
    source_read out = {KTH_READ_ERROR, 0, KTH_PENDING_NOT_READY, st};
    storage_resource_unref(t->storage);
    platform_mutex_lock(&s->lock);
    if (st == KTH_ERR_CORRUPT) {
        char name[HLS_ERR_MAX];
        session_entry_name(s, t->variant, t->entry, name, sizeof name);
        snprintf(s->reader.error, sizeof s->reader.error,
                 "%.360s: cached bytes at offset %llu failed their checksum (the cache file is "
                 "damaged) and cannot be fetched again offline",
                 name, (unsigned long long)t->within);
    } else {
        set_reader_error(&s->reader, "%s", kth_strerror(st));
    }
    platform_mutex_unlock(&s->lock);
    return out;
}

/* The entry's storage failed or was cancelled: the session fails with its cause. Drops t's
 * reference. */
static source_read entry_failed(hls_session *s, const target *t)
{
    source_read out = {KTH_READ_ERROR, 0, KTH_PENDING_NOT_READY, KTH_OK};
    storage_resource_unref(t->storage);
    platform_mutex_lock(&s->lock);
    if (s->failure == KTH_OK) {
        char detail[HLS_ERR_MAX];
        kth_status fs = storage_resource_error(t->storage, detail, sizeof detail);
        session_fail_locked(s, fs != KTH_OK ? fs : KTH_ERR_CANCELLED, "%s", detail);
    }
    out.status = report_failure(s);
    platform_mutex_unlock(&s->lock);
    return out;
}

/* The bytes at t are not there yet: offline, a miss fails the session; online, the peer is
 * woken to fetch them. *out stays pending unless it failed. Drops t's reference. */
static void bytes_missing(hls_session *s, const target *t, source_read *out)
{
    if (s->offline) {
        char err[HLS_ERR_MAX];
        platform_mutex_lock(&s->lock);
        storage_range missing;
        kth_status st =
            cache_resource_check_range(t->res, t->within, t->within + 1, &missing, err, sizeof err);
        if (st != KTH_OK && st != KTH_ERR_NOT_FOUND) {
            char name[HLS_ERR_MAX];
            session_entry_name(s, t->variant, t->entry, name, sizeof name);
            session_fail_locked(s, st, "offline: %s is not in the cache (%s)", name, err);
            out->kind = KTH_READ_ERROR;
            out->status = report_failure(s);
        }
        platform_mutex_unlock(&s->lock);
    } else {
        hls_peer_wake(s);
    }
    storage_resource_unref(t->storage);
}

/* Bytes up to stream offset `end` located at t are about to be handed out: KTH_PENDING_NONE,
 * and served_end covers them, unless a time seek spliced the stream meanwhile (those offsets
 * may mean other bytes now; KTH_PENDING_SEEK, the seek is reported instead) or a switch was
 * placed at the entry (KTH_PENDING_RETRY: the offsets are the new variant's now). */
static kth_pending_reason hand_out(hls_session *s, const target *t, uint64_t end)
{
    platform_mutex_lock(&s->lock);
    kth_pending_reason r = t->generation != s->reader.splice_generation ? KTH_PENDING_SEEK
                           : t->cut != s->reader.cut_generation         ? KTH_PENDING_RETRY
                                                                        : KTH_PENDING_NONE;
    if (r == KTH_PENDING_NONE && end > s->reader.served_end)
        s->reader.served_end = end;
    platform_mutex_unlock(&s->lock);
    return r;
}

static source_read hs_read_at(stream_source *src, uint64_t offset, void *buf, size_t n)
{
    hls_session *s = from_base(src);
    session_attach(s);
    source_read out = {KTH_READ_PENDING, 0, KTH_PENDING_NOT_READY, KTH_OK};
    for (int pass = 0; pass < MAX_LOCATE_PASSES; pass++) {
        target t;
        if (!locate_for_read(s, offset, &t, &out))
            return out;
        size_t got = 0;
        storage_state state = storage_resource_state(t.storage);
        if (t.live_edge) {
            storage_resource_unref(t.storage);
            hls_peer_wake(s);
            return out; /* PENDING until a reload adds segments or ends the playlist */
        }
        if (t.end_check) {
            storage_resource_unref(t.storage);
            if (state == STORAGE_COMMITTED) {
                out.kind = KTH_READ_EOF;
                return out;
            }
            if (state == STORAGE_ACTIVE) {
                hls_peer_wake(s);
                return out; /* PENDING: the end is not proven yet */
            }
            continue; /* failed: the next pass reports it */
        }
        size_t want = t.room < n ? (size_t)t.room : n;
        kth_status st = storage_resource_read_at(t.storage, t.within, buf, want, &got);
        if (st == KTH_OK && got > 0) {
            storage_resource_unref(t.storage);
            kth_pending_reason why = hand_out(s, &t, offset + got);
            if (why != KTH_PENDING_NONE) {
                out.reason = why;
                return out;
            }
            out.kind = KTH_READ_BYTES;
            out.n = got;
            if (t.within == 0) {
                hls_peer_wake(s); /* entered an entry: the window moved */
                if (t.segment)
                    publish_progress(s, &t.where);
            }
            return out;
        }
        if (st == KTH_OK) {
            learn_entry_size(s, &t); /* then locate again */
            continue;
        }
        if (st != KTH_ERR_RETRY)
            return read_failed(s, &t, st);
        if (state == STORAGE_FAILED || state == STORAGE_CANCELLED)
            return entry_failed(s, &t);
        bytes_missing(s, &t, &out);
        return out;
    }
    return out;
}

static source_wait map_wait(hls_session *s, storage_wait w, storage_resource *r, kth_status *status)
{
    switch (w) {
    case STORAGE_WAIT_READY:
    case STORAGE_WAIT_EOF:
        return SOURCE_WAIT_READY; /* the caller re-reads; read_at sorts it out */
    case STORAGE_WAIT_INTERRUPTED:
        return SOURCE_WAIT_INTERRUPTED;
    case STORAGE_WAIT_TIMEOUT:
        return SOURCE_WAIT_TIMEOUT;
    case STORAGE_WAIT_CANCELLED:
        if (storage_resource_state(r) != STORAGE_CANCELLED)
            return SOURCE_WAIT_CANCELLED; /* the waiter's token */
        break;
    case STORAGE_WAIT_FAILED:
        break;
    }
    platform_mutex_lock(&s->lock);
    if (s->failure == KTH_OK) {
        char detail[HLS_ERR_MAX];
        kth_status fs = storage_resource_error(r, detail, sizeof detail);
        session_fail_locked(s, fs != KTH_OK ? fs : KTH_ERR_CANCELLED, "%s", detail);
    }
    *status = report_failure(s);
    platform_mutex_unlock(&s->lock);
    return SOURCE_WAIT_ERROR;
}

static source_wait hs_wait_range(stream_source *src, uint64_t start, uint64_t end,
                                 const stream_wait_ctx *ctx, kth_status *status)
{
    hls_session *s = from_base(src);
    session_attach(s);
    (void)end;
    char err[HLS_ERR_MAX];
    target t;
    platform_mutex_lock(&s->lock);
    if (failure_stops(s, start)) {
        *status = report_failure(s);
        platform_mutex_unlock(&s->lock);
        return SOURCE_WAIT_ERROR;
    }
    kth_status st = find_target(s, start, &t, err, sizeof err);
    if (st != KTH_OK) {
        session_fail_locked(s, st, "%s", err);
        *status = report_failure(s);
        platform_mutex_unlock(&s->lock);
        return SOURCE_WAIT_ERROR;
    }
    if (!t.end_check && !t.live_edge && t.period != s->reader.acked_period) {
        /* Behind a fence: the read reports it without waiting for a byte. */
        platform_mutex_unlock(&s->lock);
        storage_resource_unref(t.storage);
        return SOURCE_WAIT_READY;
    }
    storage_resource_unref(s->waiting);
    s->waiting = storage_resource_ref(t.storage);
    /* The session's own epoch ends the wait when the session fails: the storage may be
     * another stream's, which goes on. */
    storage_interrupt in = {.epoch = ctx->epoch,
                            .seen = ctx->seen_epoch,
                            .other_epoch = &s->wake_epoch,
                            .other_seen = atomic_load(&s->wake_epoch)};
    platform_mutex_unlock(&s->lock);

    hls_peer_wake(s);
    storage_wait w = storage_resource_wait_range(t.storage, t.within, t.within + 1,
                                                 ctx->deadline_ns, ctx->cancel, &in);
    source_wait r;
    if (w == STORAGE_WAIT_INTERRUPTED && atomic_load(&s->wake_epoch) != in.other_seen &&
        (!ctx->epoch || atomic_load(ctx->epoch) == ctx->seen_epoch)) {
        platform_mutex_lock(&s->lock);
        r = failure_stops(s, start) ? SOURCE_WAIT_ERROR : SOURCE_WAIT_READY;
        if (r == SOURCE_WAIT_ERROR)
            *status = report_failure(s);
        platform_mutex_unlock(&s->lock);
    } else {
        r = map_wait(s, w, t.storage, status);
    }
    platform_mutex_lock(&s->lock);
    if (s->waiting == t.storage) {
        storage_resource_unref(s->waiting);
        s->waiting = NULL;
    }
    platform_mutex_unlock(&s->lock);
    storage_resource_unref(t.storage);
    return r;
}

static bool hs_length(stream_source *src, uint64_t *length)
{
    hls_session *s = from_base(src);
    platform_mutex_lock(&s->lock);
    bool known = length_locked(s, length);
    platform_mutex_unlock(&s->lock);
    return known;
}

/* Probes sizes until the length is known. */
static source_wait hs_wait_length(stream_source *src, const stream_wait_ctx *ctx,
                                  kth_status *status)
{
    hls_session *s = from_base(src);
    for (int pass = 0; pass < 1000000; pass++) {
        hls_place pl;
        platform_mutex_lock(&s->lock);
        if (s->failure != KTH_OK) {
            *status = report_failure(s);
            platform_mutex_unlock(&s->lock);
            return SOURCE_WAIT_ERROR;
        }
        if (s->live.open) {
            snprintf(s->reader.error, sizeof s->reader.error,
                     "a live stream has no length until its playlist ends");
            platform_mutex_unlock(&s->lock);
            *status = KTH_ERR_UNSUPPORTED;
            return SOURCE_WAIT_ERROR;
        }
        hls_locate r = session_locate(s, UINT64_MAX, &pl);
        platform_mutex_unlock(&s->lock);
        if (r == HLS_PAST_END)
            return SOURCE_WAIT_READY;
        if (platform_cancel_is_cancelled(ctx->cancel))
            return SOURCE_WAIT_CANCELLED;
        kth_status st = hls_probe_size(s, pl.variant, pl.entry, ctx);
        if (st == KTH_ERR_TIMEOUT)
            return SOURCE_WAIT_TIMEOUT;
        if (st == KTH_ERR_CANCELLED)
            return SOURCE_WAIT_CANCELLED;
        if (st != KTH_OK) {
            *status = st;
            return SOURCE_WAIT_ERROR;
        }
    }
    return SOURCE_WAIT_TIMEOUT;
}

static void hs_notify_waiting(stream_source *src)
{
    hls_session *s = from_base(src);
    platform_mutex_lock(&s->lock);
    storage_resource *w = s->waiting ? storage_resource_ref(s->waiting) : NULL;
    platform_mutex_unlock(&s->lock);
    if (w) {
        storage_resource_wake_waiters(w);
        storage_resource_unref(w);
    }
}

static void hs_set_position(stream_source *src, uint64_t position, uint64_t epoch)
{
    (void)position;
    (void)epoch;
    hls_session *s = from_base(src);
    platform_mutex_lock(&s->lock);
    s->reader.played_known =
        false; /* a report from before the seek says nothing of the new place */
    platform_mutex_unlock(&s->lock);
    session_attach(s);
    hls_peer_wake(from_base(src));
}

static void hs_media_info(stream_source *src, kth_media_info *info)
{
    hls_session *s = from_base(src);
    size_t v = atomic_load(&s->current_variant);
    const hls_rung *r = &s->ladder.rungs[v];
    info->codec = r->codec;
    info->bitrate = r->bandwidth > UINT32_MAX ? UINT32_MAX : (uint32_t)r->bandwidth;
    info->variant = (int)v;
    platform_mutex_lock(&s->lock);
    hls_variant_state *vs = &s->variants[v];
    bool fmp4 = vs->pl && vs->pl->media.map_count > 0;
    char *first_uri = vs->pl && !fmp4 && vs->pl->media.segment_count > 0
                          ? hls_media_segment_uri(&vs->pl->media, session_first_held_segment(vs))
                          : NULL;
    platform_mutex_unlock(&s->lock);
    info->container = fmp4 ? KTH_CONTAINER_FMP4 : kth_container_from_extension(first_uri);
    platform_free(first_uri);
    hls_media_probe(s, v, info);
}

/* The bytes of period p from its first byte to the end of its entry `entry`, when known. */
static bool period_bytes_through(hls_layout *l, const hls_period *p, size_t entry, uint64_t *bytes)
{
    hls_entry first, e, prefix;
    if (hls_layout_entry(l, p->first_entry, &first) != KTH_OK || !first.offset_known ||
        hls_layout_entry(l, entry, &e) != KTH_OK || !e.offset_known || !e.size_known)
        return false;
    *bytes = e.offset + e.size - first.offset;
    if (p->prefix_init != HLS_NONE) {
        if (hls_layout_entry(l, p->prefix_init, &prefix) != KTH_OK || !prefix.size_known)
            return false;
        *bytes += prefix.size;
    }
    return true;
}

/* The stream offset where segment `k` of `variant` starts decodably inside an existing period
 * (its init section in front of it when it has one), found from sizes already known: nothing is
 * fetched to place it, and the segment lies whole in the period. True with *offset and *period;
 * false when no period holds it so. Lock held. */
static bool place_in_periods(hls_session *s, size_t variant, size_t k, uint64_t *offset,
                             size_t *period)
{
    hls_layout *l = s->variants[variant].layout;
    size_t seg_entry, init_entry;
    if (hls_layout_entry_of_segment(l, k, &seg_entry, &init_entry) != KTH_OK)
        return false;
    session_update_bases(s);
    for (size_t i = s->period_count; i-- > 0;) {
        const hls_period *p = &s->periods[i];
        if (p->variant != variant || !p->base_known || k < p->first_segment ||
            seg_entry >= p->end_entry)
            continue;
        bool opens = k == p->first_segment;
        /* Inside a period, a segment with an init section starts decodably only right after
         * it. */
        if (!opens && init_entry != HLS_NONE && init_entry + 1 != seg_entry)
            continue;
        uint64_t through, before = 0;
        if (!period_bytes_through(l, p, seg_entry, &through))
            continue;
        if (!opens) {
            size_t front = init_entry != HLS_NONE ? init_entry : seg_entry;
            if (front == p->first_entry || !period_bytes_through(l, p, front - 1, &before))
                continue;
        }
        if (p->cut && through > p->cut_length)
            continue;
        *offset = p->base + before;
        *period = i;
        return true;
    }
    return false;
}

/* A time seek (the contract is in kithara/stream.h): the segment holding the time in the
 * reader's variant, placed where its bytes are already known, else at a new splice. Either
 * way nothing is fetched here, and the reader's decoder starts afresh at the anchor, so the
 * period there counts as acknowledged (no variant fence at the anchor). */
static kth_status hs_seek_time_anchor(stream_source *src, double seconds,
                                      const stream_wait_ctx *ctx, kth_seek_anchor *anchor)
{
    (void)ctx;
    hls_session *s = from_base(src);
    /* No session_attach here: the peer starts fetching once the stream has a timeline, and it
     * must first see the position the seek moves to (set_position attaches), not the old one. */
    platform_mutex_lock(&s->lock);
    if (s->failure != KTH_OK) {
        kth_status st = report_failure(s);
        platform_mutex_unlock(&s->lock);
        return st;
    }
    /* A live stream seeks in the variant it reloads (the last period's): its window is the
     * one known. */
    size_t variant = s->live.on ? s->live.variant : atomic_load(&s->current_variant);
    hls_variant_state *v = &s->variants[variant];
    size_t k = hls_layout_segment_at_time(v->layout, seconds);
    if (s->live.on) {
        /* DVR: a time before the window plays from its first segment (the earlier ones are
         * gone from the server, and those the stream released are gone from it too, also once
         * the playlist ended), one past the live edge from the edge while it moves. */
        size_t first =
            v->live.window_start > v->live.released ? v->live.window_start : v->live.released;
        size_t last = v->pl->media.segment_count - 1; /* a last playlist may list none */
        k = k < first ? (first < last ? first : last) : k;
        if (s->live.open) {
            size_t edge = hls_live_edge_segment(&v->pl->media);
            k = k > edge ? edge : k;
        }
    }
    uint64_t offset = 0;
    size_t period = 0;
    if (place_in_periods(s, variant, k, &offset, &period)) {
        s->reader.acked_period = period;
        s->reader.fence_pending = false;
    } else if (session_splice(s, variant, k, &period, &offset)) {
        if (s->live.on) /* the fences after k went with the periods after it */
            hls_live_refence_after(s, k);
    } else {
        snprintf(s->reader.error, sizeof s->reader.error,
                 "seeking to %.3f s: no room for another splice of the stream (%d at most)",
                 seconds, HLS_MAX_PERIODS);
        platform_mutex_unlock(&s->lock);
        return KTH_ERR_LIMIT;
    }
    const hls_segment seg_seg = hls_media_segment(&v->pl->media, k), *seg = &seg_seg;
    anchor->offset = offset;
    anchor->segment_start = seg->start;
    anchor->segment_end = seg->start + seg->duration;
    anchor->segment_index = k;
    anchor->variant = (int)variant;
    platform_mutex_unlock(&s->lock);
    return KTH_OK;
}

static bool hs_variant_change_pending(stream_source *src)
{
    hls_session *s = from_base(src);
    platform_mutex_lock(&s->lock);
    bool pending = s->reader.fence_pending;
    platform_mutex_unlock(&s->lock);
    return pending;
}

static void hs_clear_variant_fence(stream_source *src)
{
    hls_session *s = from_base(src);
    platform_mutex_lock(&s->lock);
    if (s->reader.fence_pending) {
        s->reader.acked_period = s->reader.fence_period;
        s->reader.fence_pending = false;
        /* The reader's position now holds the new variant's bytes. */
        atomic_store(&s->current_variant, s->periods[s->reader.fence_period].variant);
    }
    platform_mutex_unlock(&s->lock);
}

static size_t hs_last_error(stream_source *src, char *buf, size_t size)
{
    hls_session *s = from_base(src);
    platform_mutex_lock(&s->lock);
    const char *text = s->failure != KTH_OK ? s->failure_msg : s->reader.error;
    size_t n = strlen(text);
    if (buf)
        platform_excerpt(text, buf, size); /* a short buffer keeps the end, where the cause is */
    platform_mutex_unlock(&s->lock);
    return n;
}

static void session_free(hls_session *s)
{
    abr_controls_set_wake(&s->controls, NULL, NULL); /* no control call wakes the peer now */
    session_unwatch_all(s);                          /* no other stream's writer wakes it either */
    if (s->peer)
        net_peer_unregister(s->peer); /* every callback is over after this */
    s->peer = NULL;
    for (size_t v = 0; s->variants && v < s->ladder.count; v++) {
        hls_variant_state *vs = &s->variants[v];
        for (size_t e = 0; e < vs->slot_cap; e++)
            session_close_slot(s, v, e);
        session_free_slots(vs);
        hls_layout_free(vs->layout);
        hls_playlist_free(vs->pl);
        platform_free(vs->uri);
    }
    platform_free(s->variants);
    platform_free(s->open);
    platform_free(s->variant_loading);
    platform_free(s->variant_failed);
    for (size_t i = 0; i < s->key_count; i++)
        platform_free(s->keys[i].uri);
    platform_free(s->keys);
    platform_free(s->periods);
    storage_resource_unref(s->waiting);
    hls_live_free(s);
    hls_ladder_free(&s->ladder);
    hls_playlist_free(s->master);
    cache_asset_release(s->asset);
    abr_controls_destroy(&s->controls);
    platform_mutex_destroy(&s->lock);
    if (s->downloader)
        net_downloader_unref(s->downloader);
    kth_bus_unref(s->bus);
    platform_free(s->url);
    platform_free(s);
}

static void hs_destroy(stream_source *src)
{
    session_free(from_base(src));
}

static const stream_source_ops hls_source_ops = {
    .name = "hls",
    .wait_range = hs_wait_range,
    .read_at = hs_read_at,
    .length = hs_length,
    .wait_length = hs_wait_length,
    .notify_waiting = hs_notify_waiting,
    .set_position = hs_set_position,
    .media_info = hs_media_info,
    .seek_time_anchor = hs_seek_time_anchor,
    .variant_change_pending = hs_variant_change_pending,
    .clear_variant_fence = hs_clear_variant_fence,
    .last_error = hs_last_error,
    .destroy = hs_destroy,
};

/* ---- creation ---- */

static void warn_skipped(const char *message, void *user)
{
    hls_session *s = user;
    session_publish(s, KTH_EVENT_WARNING, KTH_OK, NULL, "%s", message);
    platform_log(KTH_LOG_WARN, "hls", "%s: %s", s->url, message);
}

static size_t initial_variant(hls_session *s)
{
    if (s->hls.fixed_start) {
        if (s->hls.initial_variant < 0)
            return 0;
        return (size_t)s->hls.initial_variant < s->ladder.count ? (size_t)s->hls.initial_variant
                                                                : s->ladder.count - 1;
    }
    /* What is known of the link: the application's figure, else what the last stream of the
     * same host measured; with neither, the lowest rung (a start that stalls costs more than
     * one at a lower rate, and the first segment's download tells ABR the rest). */
    uint64_t estimate = s->hls.initial_estimate_bps;
    if (estimate == 0 && !s->offline)
        net_downloader_recall_rate(s->downloader, s->url, &estimate);
    size_t pick = 0;
    for (size_t v = 0; v < s->ladder.count; v++)
        if (s->ladder.rungs[v].bandwidth <= estimate)
            pick = v;
    return pick;
}

static kth_status open_session(hls_session *s, char *err, size_t errlen)
{
    kth_status st = cache_asset_open(s->cache, s->url, &s->asset, err, errlen);
    if (st != KTH_OK)
        return st;
    hls_playlist *top = NULL;
    int64_t requested_ns = s->downloader ? net_downloader_now(s->downloader) : 0;
    if ((st = hls_load_playlist(s, s->url, &top, err, errlen)) != KTH_OK)
        return st;
    if (top->kind == HLS_PLAYLIST_MASTER) {
        s->master = top;
        top = NULL;
        st = hls_ladder_from_master(s->master, &s->ladder, warn_skipped, s, err, errlen);
    } else {
        st = hls_ladder_single(s->url, &s->ladder);
    }
    if (st != KTH_OK) {
        hls_playlist_free(top);
        return st;
    }
    size_t n = s->ladder.count;
    s->variants = platform_calloc(n, sizeof *s->variants);
    s->variant_loading = platform_calloc(n, sizeof *s->variant_loading);
    s->variant_failed = platform_calloc(n, sizeof *s->variant_failed);
    if (!s->variants || !s->variant_loading || !s->variant_failed) {
        hls_playlist_free(top);
        return KTH_ERR_NO_MEMORY;
    }
    for (size_t v = 0; v < n; v++) {
        s->variants[v].uri = platform_strdup(s->ladder.rungs[v].uri);
        if (!s->variants[v].uri) {
            hls_playlist_free(top);
            return KTH_ERR_NO_MEMORY;
        }
    }
    size_t first = initial_variant(s);
    if (!top && s->downloader)
        requested_ns = net_downloader_now(s->downloader);
    if (!top && (st = hls_load_playlist(s, s->variants[first].uri, &top, err, errlen)) != KTH_OK)
        return st;
    if ((st = hls_variant_setup(s, first, top, err, errlen)) != KTH_OK)
        return st;
    size_t start = 0;
    if ((st = hls_live_open(s, first, requested_ns, &start, err, errlen)) != KTH_OK)
        return st;
    if (!session_append_period(s, first, start, 0))
        return KTH_ERR_NO_MEMORY;
    if (s->live.on)
        hls_live_fences(s, start + 1);
    atomic_store(&s->current_variant, first);
    if (s->hls.start_manual)
        abr_controls_set_manual(&s->controls, first); /* before the peer exists: no wake */
    if (!s->offline) {
        if (!s->downloader) {
            snprintf(err, errlen, "%s: no downloader to fetch it with", s->url);
            return KTH_ERR_INVALID_ARG;
        }
        st = hls_peer_start(s);
    } else {
        /* Offline: the other variants only from the cache (playable ones join the ladder). */
        for (size_t v = 0; v < n; v++) {
            hls_playlist *pl = NULL;
            char ignored[HLS_ERR_MAX];
            if (v != first &&
                hls_playlist_cached(s, s->variants[v].uri, &pl, ignored, sizeof ignored) == KTH_OK)
                hls_variant_setup(s, v, pl, ignored, sizeof ignored);
        }
    }
    return st;
}

kth_status hls_source_new(const char *url, const hls_source_options *opts, stream_source **out,
                          char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    if (!url || !*url || !opts || !opts->cache || !out)
        return KTH_ERR_INVALID_ARG;
    hls_session *s = platform_calloc(1, sizeof *s);
    if (!s)
        return KTH_ERR_NO_MEMORY;
    if (platform_mutex_init(&s->lock) != KTH_OK) {
        platform_free(s);
        return KTH_ERR_NO_MEMORY;
    }
    if (abr_controls_init(&s->controls) != 0) {
        platform_mutex_destroy(&s->lock);
        platform_free(s);
        return KTH_ERR_NO_MEMORY;
    }
    s->base.ops = &hls_source_ops;
    s->url = platform_strdup(url);
    s->cache = opts->cache;
    s->offline = cache_is_offline(opts->cache);
    s->downloader = opts->downloader ? net_downloader_ref(opts->downloader) : NULL;
    s->bus = kth_bus_ref(opts->bus);
    s->timeout_ms = opts->timeout_ms > 0 ? opts->timeout_ms : DEFAULT_TIMEOUT_MS;
    s->hls = opts->hls;
    if (!(s->hls.buffer_target_s > 0))
        s->hls.buffer_target_s = DEFAULT_BUFFER_S;
    if (s->hls.buffer_max_bytes == 0)
        s->hls.buffer_max_bytes = DEFAULT_BUFFER_MAX;
    if (s->hls.max_fetches == 0 || s->hls.max_fetches > 8)
        s->hls.max_fetches = s->hls.max_fetches ? 8 : DEFAULT_MAX_FETCHES;
    if (s->hls.min_segments_between_switches == 0)
        s->hls.min_segments_between_switches = DEFAULT_MIN_SEGMENTS_BETWEEN_SWITCHES;
    atomic_init(&s->current_variant, 0);
    atomic_init(&s->timeline, NULL);
    kth_status st = s->url ? open_session(s, err, errlen) : KTH_ERR_NO_MEMORY;
    if (st != KTH_OK) {
        session_free(s);
        return st;
    }
    *out = &s->base;
    return KTH_OK;
}
