/*
 * hls_peer.c — what an HLS stream fetches next, and how segment bytes reach the cache.
 *
 * The peer is pulled by the downloader (poll_next), woken when the reader enters another entry,
 * seeks, waits for bytes nobody fetches yet, or changes the ABR controls, and by a timer of its
 * own while a fetch the reader will soon need is in flight. Each poll walks the stream's entries
 * from the reader's position forward, across periods, and:
 *   - counts the seconds of media present contiguously ahead of the reader (the ABR buffer);
 *   - starts fetches for missing entries up to the buffer target (seconds) and byte cap, at most
 *     max_fetches at once, and only one where a segment's body outlasts the wait for its first
 *     byte (fetch_room) — the entry the reader is in gets NET_FETCH_HIGH, read-ahead LOW;
 *   - at the first segment that needs a fetch in the last period, asks the ABR controller which
 *     variant it should come from; a different answer appends a period (a variant switch);
 *   - watches the fetch of the first entry the reader lacks (the stall rescue, below);
 *   - cancels fetches that fell out of the window (after a seek) and closes the cache handles of
 *     entries left behind, so open files and memory stay bounded.
 *
 * Stall rescue. A fetch of the entry the reader needs next that has delivered nothing for
 * max(1 s, half the segment) while less than a segment is buffered, or whose pace so far would
 * end it after the buffer runs out, is put to the controller (with the fetch's progress as a
 * sample). When it answers with a lower rung, the switch is made at once: if the reader has
 * not entered that segment, its fetch is cancelled and the new period starts at it (fetches
 * wait until the cancelled one has ended, so one fetch per segment runs); if the reader is in
 * it, its bytes stay (offsets handed out keep their meaning) and the new period starts at the
 * first later segment not in the cache. While such a fetch runs, the peer asks the downloader
 * for a poll at the time the verdict could change (net_peer_wake_after), never in a loop. A
 * body without a length is taken to be as long as its variant's bandwidth says, so a trickle
 * that never quite stalls is judged by its pace too.
 *
 * Seek lock. From a seek until the reader has read bytes at its new position (the timeline's
 * flushing flag) automatic decisions are made with a seek lock, on top of any the user holds
 * (kth_stream_abr_seek_begin): the buffer is empty and the fetches were cut short by the seek,
 * which says nothing about the link. A stalled fetch is still rescued, and a manual choice
 * waits only for a lock the user holds.
 *
 * One writer per resource. Every fetch first claims its entry's cache resource (the slot is
 * the owner). Another stream of the same URL in this process shares the resource: when it holds
 * the claim, this peer starts nothing for that entry, its reader waits on the shared storage,
 * and the claim's release wakes this peer (session_watch_release). If that writer gave up (its
 * stream closed, seeked away or failed), the next poll claims the entry and fetches it itself.
 * A fetch that left the window is not cancelled while another stream has the resource open.
 *
 * Segment bytes (segment_fetch.c): a body must begin like audio before a byte of it is stored,
 * clear entries are written as they arrive, encrypted ones are decrypted as a stream. A size is
 * recorded in the layout before the resource learns its length, so a reader woken by the length
 * always finds it placed.
 *
 * Events (kithara/events.h): a segment's start and end, ABR decisions and switches, the buffer
 * level, the end of the stream in the cache, keys found in the cache. Those that arise inside
 * a poll are queued and published after session.lock is released.
 *
 * Threads: poll, the fetch callbacks and on_sample run on the downloader thread; the estimator
 * and controller are touched only there, and so is the progress of each fetch. session.lock is
 * taken briefly; cache writes of segment bytes run without it (the slot cannot be closed while
 * its fetch runs).
 */
#include "events/bus.h"
#include "hls/session.h"

#include "hls/segment_fetch.h"
#include "platform/log.h"
#include "platform/mem.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Room kept in the poll's own frame; a poll that needs more grows onto the heap. */
#define INLINE_CANCELS 16
#define INLINE_EVENTS  16 /* starts, decisions, a rescue, keys, buffer, end */
/* Stall rescue: a fetch is stalled after max(STALL_MIN_S, half its segment) without progress;
 * the peer looks again at least every WATCH_S while the buffer is under WATCH_SEGMENTS. */
#define STALL_MIN_S    1.0
#define WATCH_S        0.25
#define WATCH_SEGMENTS 3.0
#define RECHECK_MIN_S  0.02
#define RECHECK_MAX_S  5.0
/* Buffer level events: published when the level moved by this much, or became (non-)empty. */
#define BUFFER_EVENT_STEP_S 0.25

/* A claim taken in a poll whose fetch could not start. */
typedef struct dropped_claim {
    cache_resource *res; /* the slot's, open until the poll ends */
    const void *owner;
} dropped_claim;

/* What one poll gathers under session.lock and acts on after releasing it. */
typedef struct poll_state {
    int64_t now_ns;
    bool seeking;      /* no byte read since the last seek: decisions hold a seek lock */
    bool hold_fetches; /* a rescue cancelled a fetch: start nothing until it has ended */
    double recheck_s;  /* > 0: ask the downloader for a poll after this long */
    /* Growing lists (poll_grow): each starts in its inline array. */
    kth_event *events;
    size_t event_count, event_cap;
    uint64_t events_lost; /* not queued for want of memory: the bus reports them as dropped */
    platform_cancel **cancels;
    size_t cancel_count, cancel_cap;
    dropped_claim *dropped;
    size_t dropped_count, dropped_cap;
    char note[256]; /* logged after the lock is released (a rescue) */
    kth_event events_inline[INLINE_EVENTS];
    platform_cancel *cancels_inline[INLINE_CANCELS];
    dropped_claim dropped_inline[INLINE_CANCELS];
} poll_state;

static void poll_state_init(poll_state *ps)
{
    ps->events = ps->events_inline;
    ps->event_count = 0;
    ps->event_cap = INLINE_EVENTS;
    ps->events_lost = 0;
    ps->cancels = ps->cancels_inline;
    ps->cancel_count = 0;
    ps->cancel_cap = INLINE_CANCELS;
    ps->dropped = ps->dropped_inline;
    ps->dropped_count = 0;
    ps->dropped_cap = INLINE_CANCELS;
}

/* Makes room for one more element in a list that starts in `inline_items`: false when memory
 * runs out (the list is unchanged). */
static bool poll_grow(void **items, size_t *cap, size_t count, const void *inline_items,
                      size_t size)
{
    if (count < *cap)
        return true;
    size_t want = *cap * 2;
    void *grown = *items == inline_items ? platform_malloc(want * size)
                                         : platform_realloc(*items, want * size);
    if (!grown)
        return false;
    if (*items == inline_items)
        memcpy(grown, inline_items, count * size);
    *items = grown;
    *cap = want;
    return true;
}

static void poll_state_free(poll_state *ps)
{
    if (ps->events != ps->events_inline)
        platform_free(ps->events);
    if (ps->cancels != ps->cancels_inline)
        platform_free(ps->cancels);
    if (ps->dropped != ps->dropped_inline)
        platform_free(ps->dropped);
}

/* Queues the cancel of a fetch, done once the lock is released. False when memory runs out:
 * the fetch then runs on, and the caller asks for another look. */
static bool queue_cancel(poll_state *ps, platform_cancel *token)
{
    if (!poll_grow((void **)&ps->cancels, &ps->cancel_cap, ps->cancel_count, ps->cancels_inline,
                   sizeof *ps->cancels))
        return false;
    ps->cancels[ps->cancel_count++] = platform_cancel_ref(token);
    return true;
}

/* ---- events ---- */

static void publish(hls_session *s, const kth_event *ev)
{
    if (s->bus)
        kth_bus_publish(s->bus, ev);
}

static kth_event *queue_event(hls_session *s, poll_state *ps, kth_event_kind kind)
{
    if (!poll_grow((void **)&ps->events, &ps->event_cap, ps->event_count, ps->events_inline,
                   sizeof *ps->events)) {
        ps->events_lost++;
        return NULL;
    }
    kth_event *ev = &ps->events[ps->event_count++];
    memset(ev, 0, sizeof *ev);
    ev->kind = kind;
    ev->origin = s->origin;
    return ev;
}

/* Queues an ABR decision (and, when it switched, the variant change). */
static void queue_decision(hls_session *s, poll_state *ps, const kth_event_abr *abr, bool switched,
                           const char *reason)
{
    kth_event *ev = queue_event(s, ps, KTH_EVENT_ABR_DECISION);
    if (ev) {
        ev->payload.abr = *abr;
        snprintf(ev->text, sizeof ev->text, "%s", reason);
    }
    if (switched && (ev = queue_event(s, ps, KTH_EVENT_VARIANT_CHANGED)) != NULL) {
        ev->payload.abr = *abr;
        snprintf(ev->text, sizeof ev->text, "%s", reason);
    }
}

/* The event description of an entry. Lock held. */
static void describe_entry(hls_session *s, size_t variant, size_t entry, kth_event_segment *out)
{
    hls_entry e;
    hls_layout_entry(s->variants[variant].layout, entry, &e);
    memset(out, 0, sizeof *out);
    out->variant = (int)variant;
    out->init = e.kind == HLS_ENTRY_INIT;
    out->index = e.segment;
    out->bytes = e.size_known ? e.size : 0;
    out->start_seconds = e.start;
    out->duration = e.duration;
    const hls_media_playlist *m = &s->variants[variant].pl->media;
    if (e.segment < m->segment_count)
        out->program_time_ms = hls_media_segment(m, e.segment).program_time_ms;
}

/* ---- the end of a fetch ---- */

static bool rest_in_cache(hls_session *s, double *seconds);

/* Commits the body of a fetch that ended well: its size goes into the layout before the
 * resource learns its length. Lock held. Returns the fetch's final status (why says a
 * failure). */
static kth_status commit_body(hls_session *s, segment_fetch *f, hls_slot *slot, char *why,
                              size_t whylen)
{
    kth_status st = session_set_entry_size(s, f->variant, f->entry, f->plain_written);
    if (st != KTH_OK)
        return st;
    st = cache_resource_commit(f->res, f->plain_written);
    uint64_t length = 0;
    if (st == KTH_ERR_IO)
        st = KTH_OK; /* readers see it committed; only its record failed */
    else if (st == KTH_ERR_STATE && storage_resource_state(slot->storage) == STORAGE_COMMITTED &&
             storage_resource_length(slot->storage, &length) && length == f->plain_written)
        st = KTH_OK; /* the same resource at another place was completed first */
    else if (st != KTH_OK)
        snprintf(why, whylen, "the body ended before the segment was complete");
    return st;
}

/* Publishes a fetch's completion and, when it was the last entry missing, the end of the
 * stream in the cache. No lock held. */
static void publish_done(hls_session *s, const segment_fetch *f, kth_status st, bool end,
                         double rest_s, size_t reader_variant)
{
    kth_event ev;
    memset(&ev, 0, sizeof ev);
    ev.kind = KTH_EVENT_HLS_SEGMENT_COMPLETED;
    ev.origin = s->origin;
    ev.status = st;
    ev.payload.segment = f->info;
    ev.payload.segment.bytes = f->plain_written;
    ev.payload.segment.download_ns = net_downloader_now(s->downloader) - f->started_ns;
    snprintf(ev.text, sizeof ev.text, "%s", f->url);
    publish(s, &ev);
    if (end) {
        memset(&ev, 0, sizeof ev);
        ev.kind = KTH_EVENT_HLS_END_OF_STREAM;
        ev.origin = s->origin;
        ev.payload.buffer.seconds = rest_s;
        ev.payload.buffer.target_seconds = s->hls.buffer_target_s;
        ev.payload.buffer.variant = (int)reader_variant;
        publish(s, &ev);
    }
}

/* Tells the downloader what this stream measured, for the next stream of the same host to
 * start from: the smaller of the short-term and long-run estimates. Downloader thread. */
static void remember_rate(hls_session *s)
{
    abr_estimate est;
    abr_estimator_get(&s->estimator, &est);
    double bps = est.long_bps > 0 && est.long_bps < est.bps ? est.long_bps : est.bps;
    if (est.samples > 0 && bps >= 1)
        net_downloader_remember_rate(s->downloader, s->url, (uint64_t)bps);
}

/* Counts a fetch that ended, in the stream's stats. Lock held. */
static void count_fetch(hls_session *s, kth_status st, uint64_t received)
{
    if (st == KTH_OK) {
        s->stats.fetches++;
        s->stats.bytes_fetched += received;
    } else {
        s->stats.fetches_abandoned++;
        s->stats.bytes_abandoned += received;
    }
}

void hls_peer_segment_done(segment_fetch *f, kth_status st, kth_status net_status, char *why,
                           size_t whylen)
{
    hls_session *s = f->s;
    platform_mutex_lock(&s->lock);
    hls_slot *slot = session_slot(&s->variants[f->variant], f->entry);
    if (st == KTH_OK)
        st = commit_body(s, f, slot, why, whylen);
    if (st == KTH_OK) {
        hls_entry e;
        hls_layout_entry(s->variants[f->variant].layout, f->entry, &e);
        if (e.kind == HLS_ENTRY_SEGMENT) {
            s->first_segment_in = true; /* start-up is over: later fetches may share the link */
            remember_rate(s);
        }
    }
    kth_event skipped = {.kind = 0};
    if (st != KTH_OK && st != KTH_ERR_CANCELLED && s->failure == KTH_OK &&
        hls_live_skip_gone(s, f->variant, f->entry, f->http_status, &skipped)) {
        /* The reader fell behind the live window: the stream goes on past this segment. */
    } else if (st != KTH_OK && st != KTH_ERR_CANCELLED && s->failure == KTH_OK) {
        char name[HLS_ERR_MAX];
        session_entry_name(s, f->variant, f->entry, name, sizeof name);
        session_fail_locked(s, st == KTH_ERR_HTTP && net_status == KTH_ERR_HTTP ? KTH_ERR_HTTP : st,
                            "%s: %s", name, platform_message_after(why, f->url));
        s->failure_at_entry = true;
        s->failed_variant = f->variant;
        s->failed_entry = f->entry;
    } else if (st != KTH_OK && s->failure != KTH_OK) {
        /* A reader may wait for this entry before the failed one (hls_source.c): it looks
         * again, and meets the failure. */
        atomic_fetch_add(&s->wake_epoch, 1);
        if (s->waiting)
            storage_resource_wake_waiters(s->waiting);
    }
    slot->fetching = false;
    slot->urgent = false;
    slot->fetch = NULL;
    platform_cancel *token = slot->fetch_cancel;
    slot->fetch_cancel = NULL;
    s->in_flight--;
    count_fetch(s, st, f->received);
    /* This may have been the last entry missing before the end (a poll may not follow: the
     * reader can prove the end from here and close the stream). */
    double rest_s = 0;
    bool end = st == KTH_OK && !s->end_published && s->failure == KTH_OK && !s->live.open &&
               rest_in_cache(s, &rest_s);
    if (end)
        s->end_published = true;
    size_t reader_variant = atomic_load(&s->current_variant);
    platform_mutex_unlock(&s->lock);
    platform_cancel_unref(token);
    /* Done writing: a stream waiting on this resource takes over what is missing, if any. The
     * slot stays open until a later poll on this thread. */
    cache_resource_release_writer(f->res, slot);
    publish_done(s, f, st, end, rest_s, reader_variant);
    if (skipped.kind) {
        platform_log(KTH_LOG_INFO, "hls", "%s: %s", s->url, skipped.text);
        publish(s, &skipped);
        hls_peer_wake(s); /* the walk goes on in the new period */
    }
}

static void on_sample(void *user, const net_sample *sample)
{
    hls_session *s = user;
    abr_sample a = {
        .bytes = sample->bytes,
        .duration_ns = sample->duration_ns > 0 ? (uint64_t)sample->duration_ns : 0,
        .ttfb_ns = sample->ttfb_ns > 0 ? (uint64_t)sample->ttfb_ns : 0,
        .now_ns = (uint64_t)net_downloader_now(s->downloader),
    };
    abr_estimator_add_sample(&s->estimator, &a);
}

/* ---- starting fetches ---- */

/* Gives a claim back once the poll has released the lock (a waker may take locks). */
static void drop_claim(poll_state *ps, hls_slot *slot)
{
    if (poll_grow((void **)&ps->dropped, &ps->dropped_cap, ps->dropped_count, ps->dropped_inline,
                  sizeof *ps->dropped))
        ps->dropped[ps->dropped_count++] = (dropped_claim){slot->res, slot};
    else /* no memory: now, under the lock (its wakers only wake peers) */
        cache_resource_release_writer(slot->res, slot);
}

/* The key an encrypted entry needs, in *out: KTH_ERR_RETRY while it is not loaded (its fetch,
 * or another stream's, is under way). Lock held. */
static kth_status key_ready(hls_session *s, const char *uri, net_batch *batch, hls_key_state **out)
{
    hls_key_state *k = hls_keys_get(s, uri);
    if (!k)
        return KTH_ERR_NO_MEMORY;
    if (!k->loaded && !k->fetching) {
        kth_status st = hls_keys_fetch(s, k, batch);
        if (st != KTH_OK && st != KTH_ERR_BUSY)
            return st;
    }
    *out = k;
    return k->loaded ? KTH_OK : KTH_ERR_RETRY;
}

/* Where an entry's bytes come from: its URL (owned; NULL when out of memory), byte range and
 * key (with the IV it is used with). */
typedef struct entry_source {
    char *uri;
    hls_byterange range;
    size_t key_index; /* HLS_NONE: clear */
    uint8_t iv[16];
} entry_source;

static void entry_source_of(const hls_media_playlist *m, const hls_entry *e, entry_source *out)
{
    if (e->kind == HLS_ENTRY_INIT) {
        out->uri = platform_strdup(m->maps[e->map].uri);
        out->range = m->maps[e->map].range;
        out->key_index = m->maps[e->map].key;
        if (out->key_index != HLS_NONE) /* an init section's key always has an IV */
            hls_key_iv(&m->keys[out->key_index], 0, out->iv);
    } else {
        out->uri = hls_media_segment_uri(m, e->segment);
        out->range = hls_media_segment(m, e->segment).range;
        out->key_index = hls_media_segment(m, e->segment).key;
        if (out->key_index != HLS_NONE)
            hls_key_iv(&m->keys[out->key_index], hls_media_segment(m, e->segment).sequence,
                       out->iv);
    }
}

/* Hands fetch `f` of `slot` to the downloader and records it in the slot. Lock held. On failure
 * `f` is freed and the claim dropped. */
static kth_status submit_fetch(hls_session *s, hls_slot *slot, segment_fetch *f,
                               const entry_source *src, bool urgent, net_batch *batch,
                               poll_state *ps)
{
    platform_cancel *token = platform_cancel_new(net_peer_cancel_token(s->peer));
    if (!token) {
        segment_fetch_free(f);
        drop_claim(ps, slot);
        return KTH_ERR_NO_MEMORY;
    }
    net_fetch_spec spec;
    memset(&spec, 0, sizeof spec);
    spec.url = src->uri;
    spec.method = NET_GET;
    spec.has_range = src->range.present;
    spec.range_start = src->range.offset;
    spec.range_end = src->range.offset + src->range.length;
    spec.priority = urgent ? NET_FETCH_HIGH : NET_FETCH_LOW;
    spec.cancel = token;
    segment_fetch_spec(f, &spec);
    kth_status st = net_batch_add(batch, &spec, NULL);
    if (st != KTH_OK) {
        platform_cancel_unref(token);
        segment_fetch_free(f);
        drop_claim(ps, slot);
        return st;
    }
    /* The command's callbacks run on this thread, after this poll: f is still ours here. */
    slot->fetching = true;
    slot->urgent = urgent;
    slot->fetch_cancel = token;
    slot->fetch_started_ns = f->started_ns;
    slot->fetch = f;
    s->in_flight++;
    kth_event *ev = queue_event(s, ps, KTH_EVENT_HLS_SEGMENT_STARTED);
    if (ev) {
        ev->payload.segment = f->info;
        snprintf(ev->text, sizeof ev->text, "%s", f->url);
    }
    return KTH_OK;
}

/* start_fetch() once the entry's source is known. */
static kth_status start_source(hls_session *s, size_t variant, size_t entry, const hls_entry *e,
                               const entry_source *src, bool urgent, net_batch *batch,
                               poll_state *ps)
{
    hls_variant_state *v = &s->variants[variant];
    hls_slot *slot = session_slot(v, entry);
    const hls_media_playlist *m = &v->pl->media;
    hls_key_state *k = NULL;
    kth_status st =
        src->key_index == HLS_NONE ? KTH_OK : key_ready(s, m->keys[src->key_index].uri, batch, &k);
    if (st != KTH_OK)
        return st;
    /* One writer per resource: a fetch of it by another stream is waited for, not repeated. */
    platform_cancel *released = NULL;
    st = cache_resource_claim_writer(slot->res, slot, &released);
    if (st == KTH_ERR_BUSY && released)
        session_watch_release(s, released);
    if (st != KTH_OK)
        return st;
    segment_fetch_params p = {
        .variant = variant,
        .entry = entry,
        .res = slot->res,
        .kind = e->kind == HLS_ENTRY_INIT                          ? HLS_BODY_INIT
                : hls_media_segment(m, e->segment).map != HLS_NONE ? HLS_BODY_FRAGMENT
                                                                   : HLS_BODY_SEGMENT,
        .has_range = src->range.present,
        .range_start = src->range.present ? src->range.offset : 0,
        .key = k ? k->key : NULL,
        .iv = src->iv,
        .key_uri = k ? m->keys[src->key_index].uri : NULL,
        .url = src->uri,
    };
    /* The body's length: the range's, or the plaintext size of a clear entry. */
    if (src->range.present) {
        p.has_expected = true;
        p.expected = src->range.length;
    } else if (!k && e->size_known) {
        p.has_expected = true;
        p.expected = e->size;
    }
    describe_entry(s, variant, entry, &p.info);
    segment_fetch *f = NULL;
    char err[256];
    st = segment_fetch_new(s, &p, &f, err, sizeof err);
    if (st != KTH_OK) {
        drop_claim(ps, slot);
        return st;
    }
    return submit_fetch(s, slot, f, src, urgent, batch, ps);
}

/* Starts the fetch of one entry, as the one writer of its resource. Lock held. KTH_ERR_BUSY:
 * another stream (or another entry of the same resource) is writing it, and the peer is woken
 * when that ends; KTH_ERR_STATE: nothing is left to write; KTH_ERR_RETRY: its key is not there
 * yet. */
static kth_status start_fetch(hls_session *s, size_t variant, size_t entry, bool urgent,
                              net_batch *batch, poll_state *ps)
{
    hls_variant_state *v = &s->variants[variant];
    hls_entry e;
    hls_layout_entry(v->layout, entry, &e);
    entry_source src;
    entry_source_of(&v->pl->media, &e, &src);
    if (!src.uri)
        return KTH_ERR_NO_MEMORY;
    kth_status st = start_source(s, variant, entry, &e, &src, urgent, batch, ps);
    platform_free(src.uri);
    return st;
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

/* True when every entry from the reader's position to the end of the stream is in the cache
 * (a gap has nothing to fetch); *seconds is the media from the reader's entry to the end.
 * Lock held. */
static bool rest_in_cache(hls_session *s, double *seconds)
{
    *seconds = 0;
    hls_place place = {0};
    walk w;
    hls_locate where = session_locate(s, session_reader_position(s), &place);
    if (where == HLS_RELEASED)
        return false; /* the reader is in bytes a live stream let go */
    if (where == HLS_PAST_END) {
        session_last_entry_with_bytes(s, &place.variant, &place.entry);
        const hls_slot *slot = session_slot(&s->variants[place.variant], place.entry);
        return slot->storage && storage_resource_state(slot->storage) == STORAGE_COMMITTED;
    }
    w.period = place.period;
    w.entry = place.entry;
    w.in_prefix = s->periods[place.period].prefix_init == place.entry;
    for (size_t walked = 0; walked < 1000000; walked++) {
        const hls_variant_state *v = &s->variants[s->periods[w.period].variant];
        hls_entry e;
        hls_layout_entry(v->layout, w.entry, &e);
        const hls_slot *slot = session_slot(v, w.entry);
        bool gap = e.kind == HLS_ENTRY_SEGMENT && hls_media_segment(&v->pl->media, e.segment).gap;
        if (!gap && (!slot->storage || storage_resource_state(slot->storage) != STORAGE_COMMITTED))
            return false;
        *seconds += e.duration;
        if (!walk_next(s, &w))
            return true;
    }
    return false;
}

/* The ABR rung of a usable variant: how many usable variants come before it. Lock held. */
static size_t level_of_variant(const hls_session *s, size_t variant)
{
    size_t level = 0;
    for (size_t v = 0; v < variant; v++)
        if (s->variants[v].pl)
            level++;
    return level;
}

/* The variant of an ABR rung (the usable variants in ladder order), or `fallback`. */
static size_t variant_of_level(const hls_session *s, size_t level, size_t fallback)
{
    size_t seen = 0;
    for (size_t v = 0; v < s->ladder.count; v++) {
        if (!s->variants[v].pl)
            continue;
        if (seen++ == level)
            return v;
    }
    return fallback;
}

/* The duration the controller plans with for segment `segment` of a variant. */
static double planning_duration(const hls_variant_state *v, size_t segment)
{
    const hls_media_playlist *m = &v->pl->media;
    double d = hls_media_segment(m, segment).duration;
    return d > 0.1 ? d : m->target_duration ? (double)m->target_duration : 2.0;
}

/* The controller's input for a decision about `segment` of `variant` (controls included). */
static void fill_input(hls_session *s, size_t variant, size_t segment, double buffer_s,
                       const abr_estimator *estimator, int64_t now_ns, abr_input *in)
{
    const hls_variant_state *v = &s->variants[variant];
    memset(in, 0, sizeof *in);
    in->ladder = s->abr_ladder;
    in->ladder_count = s->abr_count;
    abr_estimator_get(estimator, &in->estimate);
    in->buffer_s = buffer_s;
    in->has_previous = 1;
    in->previous_level = level_of_variant(s, variant);
    in->segment_s = planning_duration(v, segment);
    /* A live playlist that has not ended lists only its window: how long the session goes on
     * is unknown (and no nearer end than the window's may be assumed). */
    in->segments_left = s->live.open ? 0 : v->pl->media.segment_count - segment;
    in->now_ns = (uint64_t)now_ns;
    abr_controls_snapshot(&s->controls, &in->controls);
}

/* What a decision did. */
typedef enum decided {
    DECIDED_STAY,   /* the segment comes from the variant playing */
    DECIDED_SWITCH, /* a period of another variant was appended at the segment */
    /* Another variant was chosen whose playlist must be fetched afresh first (a live stream):
     * the segment is not fetched until it is in, and the decision is made again then. */
    DECIDED_WAIT,
} decided;

/* Where a switch to `variant` at `segment` of the last period's variant starts in `variant`:
 * its segment starting nearest the boundary's time (the same boundary when the variants are
 * aligned, as ladders usually are); on a live stream, its segment of the same media sequence
 * number (live_switch.c), which may first need its playlist afresh. Lock held. */
static hls_live_match switch_point(hls_session *s, size_t segment, double start, size_t variant,
                                   int64_t now_ns, size_t *first)
{
    if (s->live.on)
        return hls_live_map(s, segment, variant, now_ns, first);
    *first = hls_layout_segment_nearest_start(s->variants[variant].layout, start);
    return HLS_LIVE_MATCH;
}

/* Asks the controller which variant segment `segment` of the last period should come from;
 * appends a period when it is another one. Lock held. */
static decided decide(hls_session *s, size_t segment, double buffer_s, poll_state *ps)
{
    hls_period *last = &s->periods[s->period_count - 1];
    if (s->abr_count < 2 || segment <= last->first_segment)
        return DECIDED_STAY;
    const hls_variant_state *cv = &s->variants[last->variant];
    const hls_segment seg_seg = hls_media_segment(&cv->pl->media, segment), *seg = &seg_seg;
    abr_input in;
    fill_input(s, last->variant, segment, buffer_s, &s->estimator, ps->now_ns, &in);
    size_t current_level = in.previous_level;
    if (ps->seeking && in.controls.mode != ABR_MODE_MANUAL)
        in.controls.seek_locks++; /* the automatic seek lock (see the file comment) */
    if (in.controls.mode == ABR_MODE_MANUAL) {
        /* The controls name a variant; the controller counts usable rungs. */
        size_t wanted = in.controls.manual_level;
        if (wanted >= s->ladder.count || !s->variants[wanted].pl)
            wanted = last->variant;
        in.controls.manual_level = level_of_variant(s, wanted);
    }
    abr_decision d;
    if (abr_controller_decide(&s->controller, &in, &d) != 0)
        return DECIDED_STAY;
    size_t target = d.level < s->abr_count ? d.level : current_level;
    /* Switches are spaced by min_segments_between_switches, except a rescue: the controller's
     * urgent down-switch, a manual choice, or any step down while less than two segments are
     * buffered (waiting there would let the buffer run dry). */
    bool rescue = target < current_level && buffer_s < 2 * in.segment_s;
    bool allowed = d.reason == ABR_REASON_URGENT_DOWN || d.reason == ABR_REASON_MANUAL || rescue ||
                   s->segments_since_switch + 1 > s->hls.min_segments_between_switches;
    size_t variant = variant_of_level(s, target, last->variant);
    bool switched = false;
    size_t from = last->variant;
    if (variant != last->variant && allowed) {
        size_t first = 0;
        hls_live_match m = switch_point(s, segment, seg->start, variant, ps->now_ns, &first);
        if (m == HLS_LIVE_WAIT)
            return DECIDED_WAIT;
        s->segments_since_switch++;
        if (m == HLS_LIVE_MATCH && session_append_period(s, variant, first, segment)) {
            s->stats.switches++;
            switched = true;
            s->segments_since_switch = 0;
            if (s->live.on)
                hls_live_switched(s, variant, first);
        }
    } else {
        s->segments_since_switch++;
    }
    kth_event_abr abr = {
        .from_variant = (int)from,
        .to_variant = (int)(switched ? variant : from),
        .estimate_bps = d.estimate_bps,
        .buffer_seconds = d.buffer_s,
    };
    queue_decision(s, ps, &abr, switched, abr_reason_name(d.reason));
    return switched ? DECIDED_SWITCH : DECIDED_STAY;
}

/* ---- the stall rescue ---- */

typedef enum rescue_result {
    RESCUE_NONE,  /* nothing changed */
    RESCUE_HERE,  /* the fetch was cancelled; a new period starts at its segment */
    RESCUE_LATER, /* the reader has its segment: a new period starts after it */
} rescue_result;

/* Asks for a poll in `seconds` (the earliest request of the poll wins). */
static void recheck(poll_state *ps, double seconds)
{
    if (seconds < RECHECK_MIN_S)
        seconds = RECHECK_MIN_S;
    if (seconds > RECHECK_MAX_S)
        seconds = RECHECK_MAX_S;
    if (ps->recheck_s <= 0 || seconds < ps->recheck_s)
        ps->recheck_s = seconds;
}

/* The first segment after `segment` of `variant`, within its period (entries before
 * `end_entry`), that is not in the cache; the segment count when there is none. Lock held. */
static size_t first_missing_after(hls_session *s, size_t variant, size_t segment, size_t end_entry)
{
    hls_variant_state *v = &s->variants[variant];
    size_t count = v->pl->media.segment_count;
    for (size_t k = segment + 1; k < count; k++) {
        size_t entry, init;
        if (hls_layout_entry_of_segment(v->layout, k, &entry, &init) != KTH_OK ||
            entry >= end_entry)
            return count;
        const hls_slot *slot = session_slot(v, entry);
        if (hls_media_segment(&v->pl->media, k).gap)
            continue;
        if (!slot->storage || storage_resource_state(slot->storage) != STORAGE_COMMITTED)
            return k;
    }
    return count;
}

/* The bytes a segment of `duration` seconds holds at the bandwidth the playlist gives rung
 * `level` (the average when known); 0 when it gives none. Lock held. */
static uint64_t planned_bytes(const hls_session *s, size_t level, double duration)
{
    const abr_variant *rung = &s->abr_ladder[level];
    double bps =
        (double)(rung->average_bandwidth_bps ? rung->average_bandwidth_bps : rung->bandwidth_bps);
    return bps > 0 && duration > 0 ? (uint64_t)(bps * duration / 8.0) : 0;
}

/* How the fetch of the entry the reader lacks is doing, as of a poll. */
typedef struct fetch_verdict {
    double duration;       /* the segment's planning duration */
    double stall_after;    /* seconds without progress that make a stall */
    double since_progress; /* seconds since bytes last arrived (or since it started) */
    double have;           /* media the reader has before the bytes not delivered yet */
    double rate;           /* the body's pace (bytes/s) once judged, else 0 */
    double eta;            /* seconds to its end at that pace, or INFINITY */
    bool stalled;
    bool slow; /* its pace would end it after the buffer runs out */
} fetch_verdict;

/* Judges fetch `f` of segment `segment` of rung `level`; `before_s` and `reader_within` as in
 * check_rescue. Lock held. */
static void judge_fetch(const hls_session *s, const segment_fetch *f, size_t level,
                        const hls_variant_state *v, size_t segment, double before_s,
                        uint64_t reader_within, int64_t now, fetch_verdict *out)
{
    double duration = planning_duration(v, segment);
    out->duration = duration;
    out->stall_after = duration / 2 > STALL_MIN_S ? duration / 2 : STALL_MIN_S;
    out->since_progress = (double)(now - (f->progress_ns ? f->progress_ns : f->started_ns)) * 1e-9;
    /* The body's length; without one (no Content-Length, no byte range), what the variant's
     * bandwidth says the segment holds, so a trickle is judged all the same. */
    uint64_t expected = f->has_expected ? f->expected : planned_bytes(s, level, duration);
    /* The media the reader has before the bytes this fetch has not delivered yet. */
    out->have = before_s;
    if (expected > 0) {
        uint64_t got = f->received < expected ? f->received : expected;
        if (got > reader_within)
            out->have += duration * (double)(got - reader_within) / (double)expected;
    }
    out->stalled = out->since_progress >= out->stall_after && out->have < duration;
    /* The body's pace since its first byte (its wait for the first byte is behind it), and the
     * seconds to its end at that pace; judged once it has run for a while. */
    double body_s = f->first_byte_ns ? (double)(now - f->first_byte_ns) * 1e-9 : 0;
    out->rate = 0;
    out->eta = INFINITY;
    if (f->received < expected && body_s >= out->stall_after / 2) {
        out->rate = (double)f->received / body_s;
        out->eta = (double)(expected - f->received) / out->rate;
    }
    out->slow = !out->stalled && out->eta > out->have && isfinite(out->eta);
}

/* The time a healthy fetch's verdict could change: no progress for stall_after with less than
 * a segment left, or sooner close to the end of the buffer (its pace is watched). */
static double next_look_s(const fetch_verdict *fv)
{
    double wait = fv->stall_after - fv->since_progress;
    if (fv->have - fv->duration > wait)
        wait = fv->have - fv->duration;
    if (fv->have < WATCH_SEGMENTS * fv->duration && wait > WATCH_S)
        wait = WATCH_S;
    return wait;
}

/* Asks the controller about a stalled or slow fetch as if it ended now (its progress is a
 * sample of the link), on copies of the estimator and controller, which the caller keeps only
 * when it switches. True with *d when it picks a rung below `level` that is worth it. */
static bool ask_lower_rung(hls_session *s, const segment_fetch *f, size_t variant, size_t segment,
                           size_t level, const fetch_verdict *fv, int64_t now,
                           abr_estimator *estimator, abr_controller *controller, abr_decision *d)
{
    *estimator = s->estimator;
    if (f->received > 0 && f->first_byte_ns > 0) {
        abr_sample sample = {
            .bytes = f->received,
            .duration_ns = (uint64_t)(now - f->started_ns),
            .ttfb_ns = (uint64_t)(f->first_byte_ns - f->started_ns),
            .now_ns = (uint64_t)now,
        };
        abr_estimator_add_sample(estimator, &sample);
    }
    abr_input in;
    fill_input(s, variant, segment, fv->have, estimator, now, &in);
    in.fetch_stalled = fv->stalled;
    in.since_progress_s = fv->since_progress;
    *controller = s->controller;
    if (in.controls.mode == ABR_MODE_MANUAL ||
        abr_controller_decide(controller, &in, d) != KTH_OK || d->level >= level)
        return false;
    if (fv->slow && fv->rate > 0) {
        /* Worth it only when the lower rung's segment would end sooner at the same pace. */
        const abr_variant *lower = &s->abr_ladder[d->level];
        double bps = (double)(lower->average_bandwidth_bps ? lower->average_bandwidth_bps
                                                           : lower->bandwidth_bps);
        if (bps * fv->duration / 8.0 / fv->rate >= fv->eta)
            return false;
    }
    return true;
}

/* Judges the fetch of entry `entry` (period `period`, variant `variant`), the first entry the
 * reader lacks; `before_s` is the media the reader has before it, `reader_within` the reader's
 * offset in it when the reader is in it (else 0). Rescues it when it is stalled or too slow and
 * the controller picks a lower rung; otherwise asks for a poll when the verdict could change.
 * Lock held. */
static rescue_result check_rescue(hls_session *s, poll_state *ps, size_t period, size_t variant,
                                  size_t entry, const hls_entry *e, double before_s,
                                  uint64_t reader_within)
{
    hls_slot *slot = session_slot(&s->variants[variant], entry);
    const segment_fetch *f = slot->fetch;
    if (!f || e->kind != HLS_ENTRY_SEGMENT || period != s->period_count - 1 || s->abr_count < 2)
        return RESCUE_NONE;
    size_t level = level_of_variant(s, variant);
    if (level == 0 || level >= s->abr_count)
        return RESCUE_NONE; /* nothing lower to go to */
    const hls_variant_state *v = &s->variants[variant];
    fetch_verdict fv;
    judge_fetch(s, f, level, v, e->segment, before_s, reader_within, ps->now_ns, &fv);
    if (!fv.stalled && !fv.slow) {
        recheck(ps, next_look_s(&fv));
        return RESCUE_NONE;
    }
    abr_estimator estimator;
    abr_controller controller;
    abr_decision d;
    if (!ask_lower_rung(s, f, variant, e->segment, level, &fv, ps->now_ns, &estimator, &controller,
                        &d)) {
        recheck(ps, WATCH_S);
        return RESCUE_NONE;
    }
    size_t target = variant_of_level(s, d.level, variant);
    const hls_period *p = &s->periods[period];
    const hls_media_playlist *m = &v->pl->media;
    bool reader_in = s->reader.period == period && s->reader.entry >= entry;
    rescue_result result = RESCUE_HERE;
    size_t at = e->segment;
    if (reader_in || e->segment <= p->first_segment) {
        /* Offsets in it may have been handed out (or it opens the period): it stays, and the
         * rescue starts at the first later segment the cache lacks. */
        result = RESCUE_LATER;
        at = first_missing_after(s, variant, e->segment, p->end_entry);
        if (at >= m->segment_count)
            return RESCUE_NONE;
    }
    size_t first = 0;
    if (switch_point(s, at, hls_media_segment(m, at).start, target, ps->now_ns, &first) !=
            HLS_LIVE_MATCH ||
        !session_append_period(s, target, first, at))
        return RESCUE_NONE; /* (live: tried again once a fresh playlist of it is in) */
    if (s->live.on)
        hls_live_switched(s, target, first);
    s->stats.switches++;
    s->controller = controller;
    s->segments_since_switch = 0;
    if (result == RESCUE_HERE) {
        /* The cancelled fetch delivers no sample of its own: its progress is the sample. */
        s->estimator = estimator;
        if (!queue_cancel(ps, slot->fetch_cancel))
            recheck(ps, RECHECK_MIN_S);
        ps->hold_fetches = true;
    }
    snprintf(ps->note, sizeof ps->note,
             "segment %zu of variant %zu %s (%.2f s without progress, %.2f s buffered): variant "
             "%zu from segment %zu",
             e->segment, variant, fv.stalled ? "stalled" : "is too slow", fv.since_progress,
             fv.have, target, first);
    kth_event_abr abr = {
        .from_variant = (int)variant,
        .to_variant = (int)target,
        .estimate_bps = d.estimate_bps,
        .buffer_seconds = fv.have,
    };
    queue_decision(s, ps, &abr, true, abr_reason_name(ABR_REASON_URGENT_DOWN));
    return result;
}

/* ---- one poll ---- */

/* The window a poll walks and what it found there (session.lock held while it is filled). */
typedef struct poll_window {
    uint64_t mark; /* this poll's generation: slots it visits carry it */
    bool past_end; /* the reader is at (or past) the end: one entry is the window */
    hls_place place;
    /* Entries in the window: [first, ...) of `variant`; everything else may be closed. */
    size_t variant, first;
    double buffer_s;      /* media present contiguously from the reader's entry, plus what was
                             read and not played (kth_stream_abr_report_played) */
    double ahead_s;       /* media walked */
    double reader_part_s; /* seconds of the reader's entry before its position */
    uint64_t ahead_bytes;
    bool contiguous;   /* no hole met yet */
    bool at_end;       /* the walk reached the end of the stream */
    bool added;        /* a fetch was added to the batch */
    bool lacking_seen; /* the first segment the reader lacks was met */
    bool exclusive;    /* it is the stream's first segment: nothing after it starts */
} poll_window;

/* Where the walk starts: the reader's entry, or the last entry with bytes past the end. */
static void window_begin(hls_session *s, poll_window *win, walk *w)
{
    memset(win, 0, sizeof *win);
    win->mark = ++s->poll_generation;
    win->contiguous = true;
    hls_locate where = session_locate(s, session_reader_position(s), &win->place);
    /* A reader in bytes a live stream released fails at its next read: nothing is fetched for
     * it, as for one at the end. */
    win->past_end = where == HLS_PAST_END || where == HLS_RELEASED;
    win->variant = win->past_end ? SIZE_MAX : win->place.variant;
    win->first = win->place.entry;
    if (!win->past_end) {
        w->period = win->place.period;
        w->entry = win->place.entry;
        w->in_prefix = s->periods[win->place.period].prefix_init == win->place.entry;
        /* Bytes behind a fence the reader has not seen yet are not its variant's yet: the
         * read that reaches them returns the fence, and clearing it moves the variant. */
        if (win->place.period == s->reader.acked_period)
            atomic_store(&s->current_variant, win->place.variant);
    } else {
        /* The reader is at (or past) the end: its EOF is proven by the commit of the last
         * entry with bytes, so that one entry is the window. */
        size_t lv, le;
        session_last_entry_with_bytes(s, &lv, &le);
        w->period = s->period_count - 1;
        w->entry = le;
        w->in_prefix = s->periods[w->period].prefix_init == le;
        win->variant = lv;
        win->first = le;
    }
}

/* What the walk carries from one entry to the next. */
typedef struct window_walk {
    walk w;
    bool first;          /* at the reader's entry */
    bool key_wait;       /* a key, room in the batch, or (live) a switch's playlist comes first:
                            start nothing more */
    bool manual_pending; /* a manual choice of another variant waits for a boundary */
} window_walk;

/* What visiting one entry tells the walk to do next. */
typedef enum visit_next {
    VISIT_ADVANCE, /* count the entry and go on */
    VISIT_RESTART, /* a switch appended a period: continue at its first entry */
    VISIT_STOP,    /* a failure (recorded, or the reader's to report): the walk ends */
} visit_next;

/* True when segment entry `entry` of period `period` is one an ABR decision may be made at: in
 * the last period, after the reader's entry. On a live stream also the reader's own entry
 * while the reader is at its start: a reader at the live edge always waits at the start of
 * the newest segment, and a switch there is placed only if no byte of it was handed out
 * (session_append_period). */
static bool may_decide_at(const hls_session *s, const window_walk *ww, const hls_entry *e,
                          uint64_t reader_within)
{
    if (e->kind != HLS_ENTRY_SEGMENT || ww->w.period != s->period_count - 1)
        return false;
    bool reader_here = ww->w.period == s->reader.period;
    if (s->live.on && ww->first && reader_within == 0 && reader_here &&
        ww->w.entry == s->reader.entry)
        return true;
    return !ww->first && !(reader_here && ww->w.entry <= s->reader.entry);
}

/* An entry with bytes in the cache: counts as buffered. */
static void visit_committed(hls_session *s, poll_window *win, size_t variant, size_t entry,
                            hls_entry *e, const hls_slot *slot)
{
    uint64_t length;
    if (!e->size_known && storage_resource_length(slot->storage, &length) &&
        session_set_entry_size(s, variant, entry, length) == KTH_OK) {
        e->size_known = true; /* completed as another entry of the same resource */
        e->size = length;
    }
    if (win->contiguous)
        win->buffer_s += e->duration;
}

/* An entry nobody fetches yet, with room to start it: an ABR decision, then its fetch. */
static visit_next visit_missing(hls_session *s, net_batch *batch, poll_state *ps, poll_window *win,
                                window_walk *ww, size_t variant, const hls_entry *e)
{
    win->contiguous = false;
    decided d = may_decide_at(s, ww, e, win->place.within)
                    ? decide(s, e->segment, win->buffer_s, ps)
                    : DECIDED_STAY;
    if (d == DECIDED_SWITCH)
        return VISIT_RESTART; /* a switch: continue with the new period's first entry */
    if (d == DECIDED_WAIT) {
        ww->key_wait = true; /* the other variant's playlist comes first: start nothing more */
        return VISIT_ADVANCE;
    }
    kth_status st = start_fetch(s, variant, ww->w.entry, ww->first, batch, ps);
    if (st == KTH_ERR_BUSY || st == KTH_ERR_STATE) {
        /* Another writer has it (or just completed it): its bytes come from there. */
    } else if (st == KTH_ERR_RETRY || st == KTH_ERR_LIMIT) {
        ww->key_wait = true; /* the key comes first (or the batch is full) */
    } else if (st != KTH_OK) {
        char name[HLS_ERR_MAX];
        session_entry_name(s, variant, ww->w.entry, name, sizeof name);
        session_fail_locked(s, st, "%s: could not start its download: %s", name, kth_strerror(st));
        return VISIT_STOP;
    } else {
        win->added = true;
    }
    return VISIT_ADVANCE;
}

/* How many segment fetches may run at once. Fetches in parallel share the link: where a
 * segment's body keeps the link busy longer than a request waits for its first byte, the
 * segment the reader needs next would arrive no sooner than the ones it needs later, so they
 * run one at a time. Only where the wait for the first byte is the larger part of a download
 * (small segments, a long round trip) do more run at once: one more per body time that fits
 * in that wait, up to max_fetches. Before anything is measured, max_fetches (the stream's
 * first segment has the link to itself by the walk's own rule). */
static unsigned fetch_room(const hls_session *s, size_t variant, double duration)
{
    unsigned cap = s->hls.max_fetches;
    abr_estimate est;
    abr_estimator_get(&s->estimator, &est);
    double bits = (double)s->ladder.rungs[variant].bandwidth * duration;
    if (!(est.bps > 0) || !(est.ttfb_s > 0) || !(bits > 0))
        return cap;
    double room = 1 + floor(est.ttfb_s / (bits / est.bps));
    return room < cap ? (unsigned)room : cap;
}

/* Visits the entry the walk is at once its slot is open: counts it as buffered, watches its
 * fetch or starts one. */
static visit_next visit_slot(hls_session *s, net_batch *batch, poll_state *ps, poll_window *win,
                             window_walk *ww, size_t variant, hls_entry *e, hls_slot *slot,
                             storage_state state)
{
    if (state == STORAGE_COMMITTED) {
        visit_committed(s, win, variant, ww->w.entry, e, slot);
    } else if (slot->fetching) {
        if (win->contiguous && !win->past_end) {
            /* The first entry the reader lacks: is its fetch keeping up? */
            double before =
                win->buffer_s - win->reader_part_s > 0 ? win->buffer_s - win->reader_part_s : 0;
            rescue_result r = check_rescue(s, ps, ww->w.period, variant, ww->w.entry, e, before,
                                           ww->first ? win->place.within : 0);
            if (r == RESCUE_HERE)
                return VISIT_RESTART; /* the reader continues in the new period at this segment */
        }
        win->contiguous = false;
    } else if (state == STORAGE_ACTIVE && s->in_flight < fetch_room(s, variant, e->duration) &&
               !ww->key_wait && !ps->hold_fetches && !win->exclusive) {
        return visit_missing(s, batch, ps, win, ww, variant, e);
    } else if (state == STORAGE_ACTIVE) {
        win->contiguous = false; /* wanted, but no room to start it now */
    } else {
        return VISIT_STOP; /* failed: the failure is reported to the reader */
    }
    return VISIT_ADVANCE;
}

/* Visits the entry the walk is at (not a gap): opens its slot, makes a pending manual switch,
 * counts it as buffered, watches its fetch or starts one. The first segment the reader lacks,
 * while no segment of the stream has arrived yet, has the link to itself: nothing after it is
 * started (on a slow link, later segments sharing it would delay the start by their size; an
 * init section before it is needed first and is let through). */
static visit_next visit_entry(hls_session *s, net_batch *batch, poll_state *ps, poll_window *win,
                              window_walk *ww, size_t variant, hls_entry *e)
{
    char err[HLS_ERR_MAX];
    kth_status st = session_open_slot(s, variant, ww->w.entry, err, sizeof err);
    if (st != KTH_OK) {
        session_fail_locked(s, st, "%s", err);
        return VISIT_STOP;
    }
    if (ww->manual_pending && may_decide_at(s, ww, e, win->place.within) &&
        e->segment > s->periods[ww->w.period].first_segment) {
        ww->manual_pending = false;
        decided d = decide(s, e->segment, win->buffer_s, ps);
        if (d == DECIDED_SWITCH)
            return VISIT_RESTART;
        if (d == DECIDED_WAIT)
            ww->key_wait = true; /* the other variant's playlist comes first */
    }
    hls_slot *slot = session_slot(&s->variants[variant], ww->w.entry);
    slot->mark = win->mark;
    storage_state state = storage_resource_state(slot->storage);
    bool first_lacking =
        state != STORAGE_COMMITTED && e->kind == HLS_ENTRY_SEGMENT && !win->lacking_seen;
    visit_next next = visit_slot(s, batch, ps, win, ww, variant, e, slot, state);
    if (first_lacking && next == VISIT_ADVANCE) {
        win->lacking_seen = true;
        win->exclusive = !s->first_segment_in && !win->past_end;
    }
    return next;
}

/* True when a manual choice of another variant waits: it switches at the next segment boundary
 * after the reader, even when the old variant is buffered past it (the user asked for it now). */
static bool manual_switch_pending(hls_session *s)
{
    abr_controls_state controls;
    abr_controls_snapshot(&s->controls, &controls);
    const hls_period *last_period = &s->periods[s->period_count - 1];
    return controls.mode == ABR_MODE_MANUAL && controls.manual_level < s->ladder.count &&
           s->variants[controls.manual_level].pl && controls.manual_level != last_period->variant;
}

/* Media read but not yet played, from the reader's time position and the player's last
 * report: it counts as buffered (the player has it in hand). At most the buffer target. */
static double unplayed_s(const hls_session *s, double read_s)
{
    if (!s->reader.played_known || !(s->reader.played_s < read_s))
        return 0;
    double d = read_s - s->reader.played_s;
    return d < s->hls.buffer_target_s ? d : s->hls.buffer_target_s;
}

/* Walks the entries from the reader's position forward up to the buffer target: counts the
 * buffer, makes ABR decisions, rescues a stalled fetch and starts missing ones. Lock held. */
static void walk_window(hls_session *s, net_batch *batch, poll_state *ps, poll_window *win)
{
    window_walk ww = {.first = true};
    window_begin(s, win, &ww.w);
    ww.manual_pending = manual_switch_pending(s);
    for (size_t walked = 0; walked < 4096; walked++) {
        hls_variant_state *v = &s->variants[s->periods[ww.w.period].variant];
        size_t vi = (size_t)(v - s->variants);
        hls_entry e;
        hls_layout_entry(v->layout, ww.w.entry, &e);
        bool full = false; /* the buffer target or byte cap is reached (a gap never ends it) */
        if (ww.first && !win->past_end && e.size_known && e.size > 0)
            win->reader_part_s = e.duration *
                                 (double)(win->place.within < e.size ? win->place.within : e.size) /
                                 (double)e.size;
        if (ww.first && !win->past_end)
            win->buffer_s = unplayed_s(s, e.start + win->reader_part_s);
        if (e.kind == HLS_ENTRY_SEGMENT && hls_media_segment(&v->pl->media, e.segment).gap) {
            /* EXT-X-GAP: no bytes, never fetched; its time still counts as buffered. */
            if (win->contiguous)
                win->buffer_s += e.duration;
            win->ahead_s += e.duration;
        } else {
            visit_next next = visit_entry(s, batch, ps, win, &ww, vi, &e);
            if (next == VISIT_STOP)
                return;
            if (next == VISIT_RESTART) {
                walk_start_period(s, &ww.w, s->period_count - 1);
                continue;
            }
            ww.first = false;
            win->ahead_s += e.duration;
            if (e.size_known)
                win->ahead_bytes += e.size;
            full = win->ahead_s >= s->hls.buffer_target_s ||
                   win->ahead_bytes >= s->hls.buffer_max_bytes;
        }
        if (win->past_end || !walk_next(s, &ww.w)) {
            win->at_end = true;
            return;
        }
        if (full)
            return;
    }
}

/* Cancels fetches outside the window (left behind by a seek, or by a rescue) and closes far
 * handles. Lock held. */
static void sweep_outside(hls_session *s, poll_state *ps, const poll_window *win)
{
    for (size_t i = s->open_count; i-- > 0;) {
        size_t vi = s->open[i].variant, e = s->open[i].entry;
        hls_slot *slot = session_slot(&s->variants[vi], e);
        if (slot->mark == win->mark)
            continue;
        /* Kept open: the two entries just behind the reader (a short seek back). */
        bool near = vi == win->variant && e <= win->first && e + 2 >= win->first;
        /* A fetch whose whole body has arrived is left to complete: the reader may have read it
         * and moved on before its completion came. */
        const segment_fetch *f = slot->fetch;
        bool arrived = f && f->has_expected && f->received >= f->expected;
        /* So is one whose resource another stream has open: that stream may be waiting for it,
         * and stopping it would only make it fetch the same bytes again. */
        bool needed = slot->fetching && !arrived && cache_resource_is_shared(slot->res);
        if (slot->fetching && !near && !arrived && !needed) {
            if (!queue_cancel(ps, slot->fetch_cancel))
                recheck(ps, RECHECK_MIN_S); /* swept again at the next look */
        } else if (!slot->fetching && !near)
            session_close_slot(s, vi, e);
    }
}

/* Queues the buffer level when it moved, and the end of the stream when the walk proved it is
 * in the cache. Lock held. */
static void queue_window_events(hls_session *s, poll_state *ps, const poll_window *win)
{
    double level = win->past_end                            ? 0
                   : win->buffer_s - win->reader_part_s > 0 ? win->buffer_s - win->reader_part_s
                                                            : 0;
    bool healthy = s->failure == KTH_OK;
    if (healthy &&
        (s->published_buffer_s < 0 || fabs(level - s->published_buffer_s) >= BUFFER_EVENT_STEP_S ||
         (level == 0) != (s->published_buffer_s == 0))) {
        kth_event *ev = queue_event(s, ps, KTH_EVENT_HLS_BUFFER_LEVEL);
        if (ev) {
            ev->payload.buffer.seconds = level;
            ev->payload.buffer.target_seconds = s->hls.buffer_target_s;
            ev->payload.buffer.variant = (int)win->variant;
            s->published_buffer_s = level;
        }
    }
    /* The walk proves the end is in the cache when it got there without a hole, and proves
     * the opposite with a hole (a seek moved the reader before entries never fetched). */
    if (healthy && win->at_end && win->contiguous && !s->end_published && !s->live.open) {
        kth_event *ev = queue_event(s, ps, KTH_EVENT_HLS_END_OF_STREAM);
        if (ev) {
            ev->payload.buffer.seconds = win->ahead_s;
            ev->payload.buffer.target_seconds = s->hls.buffer_target_s;
            ev->payload.buffer.variant = (int)win->variant;
            s->end_published = true;
        }
    } else if (!win->contiguous) {
        s->end_published = false;
    }
    /* Keys loaded from the cache, as many as there are: a key left unannounced for want of
     * memory is announced at a later look. */
    for (;;) {
        if (!poll_grow((void **)&ps->events, &ps->event_cap, ps->event_count, ps->events_inline,
                       sizeof *ps->events))
            break;
        size_t room = ps->event_cap - ps->event_count;
        size_t n = hls_keys_cached_events(s, ps->events + ps->event_count, room);
        ps->event_count += n;
        if (n < room)
            break;
    }
}

/* Acts on what the poll gathered, after session.lock was released: gives back dropped claims,
 * cancels, logs, publishes and asks for the next look. */
static void poll_finish(hls_session *s, poll_state *ps, bool rewake)
{
    for (size_t i = 0; i < ps->dropped_count; i++)
        cache_resource_release_writer(ps->dropped[i].res, ps->dropped[i].owner);
    if (rewake)
        hls_peer_wake(s); /* a claim it waited for had ended already */
    for (size_t i = 0; i < ps->cancel_count; i++) {
        platform_cancel_cancel(ps->cancels[i]);
        platform_cancel_unref(ps->cancels[i]);
    }
    if (ps->note[0])
        platform_log(KTH_LOG_INFO, "hls", "%s: %s", s->url, ps->note);
    for (size_t i = 0; i < ps->event_count; i++)
        publish(s, &ps->events[i]);
    if (ps->events_lost > 0 && s->bus)
        bus_note_dropped(s->bus, ps->events_lost);
    poll_state_free(ps);
    if (ps->recheck_s > 0)
        net_peer_wake_after(s->peer, (int64_t)(ps->recheck_s * 1e9));
}

static net_poll_result on_poll(void *user, net_batch *batch)
{
    hls_session *s = user;
    poll_state ps;
    ps.now_ns = net_downloader_now(s->downloader);
    const stream_timeline *timeline = atomic_load(&s->timeline);
    ps.seeking = timeline && stream_timeline_flushing(timeline);
    ps.hold_fetches = false;
    ps.recheck_s = 0;
    poll_state_init(&ps);
    ps.note[0] = '\0';

    platform_mutex_lock(&s->lock);
    if (s->failure != KTH_OK) {
        platform_mutex_unlock(&s->lock);
        return NET_POLL_IDLE;
    }
    hls_variants_load_more(s, batch);
    if (!timeline) { /* no read or seek yet: a stream opened to be asked about, not played */
        platform_mutex_unlock(&s->lock);
        return NET_POLL_IDLE;
    }
    poll_window win;
    walk_window(s, batch, &ps, &win);
    /* After the walk: a live switch it wanted to make may need a playlist first. */
    bool was_reloading = s->live.reloading, was_loading = s->live.want_loading;
    double reload_in = hls_live_poll(s, batch, ps.now_ns);
    if (reload_in > 0)
        recheck(&ps, reload_in);
    bool reload_added =
        (s->live.reloading && !was_reloading) || (s->live.want_loading && !was_loading);
    s->last_buffer_s = win.buffer_s;
    sweep_outside(s, &ps, &win);
    queue_window_events(s, &ps, &win);
    bool rewake = s->rewake;
    s->rewake = false;
    platform_mutex_unlock(&s->lock);

    poll_finish(s, &ps, rewake);
    return win.added || reload_added ? NET_POLL_BATCH : NET_POLL_IDLE;
}

static void controls_wake(void *ctx)
{
    hls_peer_wake(ctx);
}

kth_status hls_peer_start(hls_session *s)
{
    abr_estimator_init(&s->estimator, NULL);
    /* The peer asks about a stalled fetch only after max(1 s, half its segment) without
     * progress: the controller's own threshold must not be longer. */
    abr_controller_config config;
    abr_controller_config_default(&config);
    config.stall_after_s = STALL_MIN_S;
    abr_controller_init(&s->controller, &config);
    s->segments_since_switch = s->hls.min_segments_between_switches + 1; /* none yet */
    s->published_buffer_s = -1;
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
    if (controls.seek_locks > 0)
        return; /* held until the seek ends; its end wakes the peer, which switches then */
    platform_mutex_lock(&s->lock);
    size_t target = controls.manual_level;
    hls_period *last = &s->periods[s->period_count - 1];
    uint64_t position = session_reader_position(s);
    hls_place place;
    if (s->failure == KTH_OK && !s->live.on && target < s->ladder.count && s->variants[target].pl &&
        target != last->variant && session_locate(s, position, &place) != HLS_PAST_END &&
        place.period == s->period_count - 1) {
        if (s->reader.period == place.period && s->reader.entry > place.entry)
            place.entry = s->reader.entry; /* a read may have gone further already */
        /* The boundary after the reader's segment, mapped by time into the chosen variant. */
        hls_entry e;
        hls_layout_entry(s->variants[last->variant].layout, place.entry, &e);
        const hls_media_playlist *m = &s->variants[last->variant].pl->media;
        if (e.segment + 1 < m->segment_count) {
            double t = hls_media_segment(m, e.segment + 1).start;
            size_t first = hls_layout_segment_nearest_start(s->variants[target].layout, t);
            abr.from_variant = (int)last->variant;
            if (first > 0 && session_append_period(s, target, first, e.segment + 1)) {
                switched = true;
                s->stats.switches++;
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
