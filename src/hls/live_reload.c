/*
 * live_reload.c — a live or event HLS stream: where it starts, and its playlist reloaded on the
 * peer's timer (net_peer_wake_after through the poll's recheck, never a sleep), each reload's
 * new segments appended to the variant's layout so that no byte offset handed out changes
 * meaning, and the end proven only once the playlist says EXT-X-ENDLIST.
 *
 * The live variant is the one the stream's last period plays: its playlist is reloaded on the
 * timer. The other variants' playlists load once in the background (for the ABR ladder) and
 * again only when a switch to one of them needs a fresh window (live_switch.c); each variant's
 * model grows by the reloads it got, and is tracked on its own (hls_variant_state.live).
 *
 * The playing model grows by merging (hls_live_merge). A model it replaces is freed at the next
 * reload: nothing holds on to it past the session lock (segment fetches own their URLs and key
 * URIs). It was kept while any fetch was in flight, which with short segments was nearly always,
 * so the replaced models piled up (a 1 s stream grew by about 4 KiB a segment).
 *
 * A segment that left the window and that the reader has passed is of no more use (the server
 * no longer serves it, so no seek could play it again): after each reload its cache resource
 * is dropped, so the cache holds the window plus what the reader has not played yet, however
 * long the stream runs (release_passed). The same holds for a variant the stream switched
 * away from, up to where a later period plays it again. The next merge keeps no URI or title
 * of a released segment, so the model costs a few bytes a segment however the server names
 * them; a reader sent back to one by a byte seek gets a clear failure (session_open_slot).
 *
 * A reader that fell behind the window (a long pause) would ask for segments the server no
 * longer serves: a fetch that fails with 404 or 410 for a segment that already left the
 * playlist ends the stream's bytes before it and goes on at the first segment still listed,
 * behind a fence (hls_live_skip_gone), instead of failing the stream.
 *
 * Threads: hls_live_open runs before the session is shared; hls_live_poll and the reload's
 * completion run on the downloader thread, under session.lock for the state.
 */
#include "hls/session.h"
#include "platform/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_RELOAD_FAILURES 3
#define NS_PER_S            1e9

/* Remembers what the live variant's last playlist lists, for kth_stream_playlist_info: from
 * its model, whose segments from window_start on are that playlist's. */
static void note_window(hls_session *s)
{
    const hls_variant_state *v = &s->variants[s->live.variant];
    const hls_media_playlist *m = &v->pl->media;
    size_t first = v->live.window_start < m->segment_count ? v->live.window_start : 0;
    s->live.target = m->target_duration;
    s->live.window_s = m->segment_count ? m->total_duration - hls_media_segment(m, first).start : 0;
    s->live.window_segments = m->segment_count - first;
}

/* Starts tracking variant v's model, its first playlist (`start` on taken). */
static void track(hls_session *s, size_t v, size_t start, int64_t request_ns, hls_live_update *u)
{
    hls_variant_state *vs = &s->variants[v];
    hls_live_tracker_start(&vs->live.tracker, vs->pl, start, request_ns, u);
    vs->live.tracked = true;
    vs->live.window_start = 0;
    vs->live.window_seq = vs->pl->media.media_sequence;
    vs->live.run_start = 0;
    vs->live.released = 0;
    vs->live.requested_ns = request_ns;
    vs->live.learned_ns = request_ns;
    vs->live.stuck = false;
    vs->live.failures = 0;
}

kth_status hls_live_open(hls_session *s, size_t v, int64_t request_ns, size_t *start, char *err,
                         size_t errlen)
{
    const hls_playlist *pl = s->variants[v].pl;
    *start = 0;
    s->live.kind = hls_live_kind_of(&pl->media);
    s->live.variant = v;
    s->live.want = SIZE_MAX;
    s->live.unfenced = SIZE_MAX;
    note_window(s);
    if (hls_live_kind_of(&pl->media) == HLS_LIVE_KIND_VOD)
        return KTH_OK;
    if (s->offline) {
        snprintf(err, errlen, "offline: %s is a live playlist, which is never cached",
                 PLATFORM_SHOWN(s->variants[v].uri));
        return KTH_ERR_OFFLINE_MISS;
    }
    kth_status st = storage_resource_new_memory(1, &s->live.edge);
    if (st != KTH_OK)
        return st;
    *start = hls_live_start_segment(pl, s->master);
    hls_live_update u;
    track(s, v, *start, request_ns, &u);
    s->live.on = true;
    s->live.open = true;
    s->live.next_ns = u.next_reload_ns;
    hls_layout_set_open(s->variants[v].layout, true);
    return KTH_OK;
}

void hls_live_variant_loaded(hls_session *s, size_t v, int64_t request_ns)
{
    if (!s->live.on || v == s->live.variant)
        return;
    hls_live_update u;
    track(s, v, 0, request_ns, &u);
    hls_layout_set_open(s->variants[v].layout, !u.ended);
}

/* Frees the replaced models. Lock held (or the session is closing), no fetch in flight. */
static void free_retired(hls_session_live *l)
{
    for (size_t i = 0; i < l->retired_count; i++)
        hls_playlist_free(l->retired[i]);
    l->retired_count = 0;
}

void hls_live_free(hls_session *s)
{
    free_retired(&s->live);
    platform_free(s->live.retired);
    storage_resource_unref(s->live.edge);
}

typedef struct live_fetch {
    hls_body body; /* first: hls_playlist_on_write sees it as its own */
    hls_session *s;
    size_t variant;
    bool timed; /* the live variant's reload on the timer (else a switch asked for it) */
    int64_t started_ns;
} live_fetch;

/* Makes room to retire one more model. False when out of memory. */
static bool reserve_retired(hls_session_live *l)
{
    if (l->retired_count < l->retired_cap)
        return true;
    size_t cap = l->retired_cap ? 2 * l->retired_cap : 16;
    hls_playlist **r = platform_realloc(l->retired, cap * sizeof *r);
    if (!r)
        return false;
    l->retired = r;
    l->retired_cap = cap;
    return true;
}

/* A fence at segment k of the live variant: a new period of the same variant starts there.
 * With the period table full (a reader standing still far behind), the fence waits for room
 * (live.unfenced); when memory runs out, the stream fails: without the fence the decoder would
 * meet the discontinuity unwarned. */
static void fence_at(hls_session *s, size_t k)
{
    const hls_period *last = &s->periods[s->period_count - 1];
    if (last->variant != s->live.variant || k <= last->first_segment ||
        session_append_period(s, s->live.variant, k, k))
        return;
    if (session_periods_full(s)) {
        if (k < s->live.unfenced)
            s->live.unfenced = k;
    } else if (s->period_count == s->period_cap) {
        session_fail_locked(s, KTH_ERR_NO_MEMORY, "live playlist %s: out of memory",
                            PLATFORM_SHOWN(s->variants[s->live.variant].uri));
    }
}

/* Makes the fences that waited for room, once there may be some. Lock held. */
static void fence_waiting(hls_session *s)
{
    size_t from = s->live.unfenced;
    s->live.unfenced = SIZE_MAX;
    if (from != SIZE_MAX)
        hls_live_fences(s, from);
}

void hls_live_make_room(hls_session *s)
{
    if (s->live.unfenced != SIZE_MAX && session_drop_released_periods(s) > 0)
        fence_waiting(s);
}

void hls_live_refence_after(hls_session *s, size_t k)
{
    s->live.unfenced = SIZE_MAX; /* those before k are not in the stream any more */
    hls_live_fences(s, k + 1);
}

void hls_live_fences(hls_session *s, size_t from)
{
    const hls_media_playlist *m = &s->variants[s->live.variant].pl->media;
    for (size_t k = from; k < m->segment_count; k++)
        if (hls_media_segment(m, k).discontinuity)
            fence_at(s, k);
}

/* Appends u's segments of `pl` to variant vi's model; the stream's last period grows with it
 * when it is vi's. Lock held. False when the session failed (recorded). */
static bool append(hls_session *s, size_t vi, const hls_playlist *pl, const hls_live_update *u)
{
    hls_variant_state *v = &s->variants[vi];
    char err[HLS_ERR_MAX];
    hls_playlist *merged = NULL;
    kth_status st = hls_live_merge(v->pl, v->live.released, pl, u->first_new, u->new_count,
                                   u->reset || u->skipped, v->uri, &merged, err, sizeof err);
    if (st != KTH_OK) {
        session_fail_locked(s, st, "live playlist %s: %s", PLATFORM_SHOWN(v->uri), err);
        return false;
    }
    size_t old_entries = v->entry_count;
    size_t old_segments = hls_layout_segment_count(v->layout);
    /* Everything that can fail before the layout takes the new model (it fails whole), so a
     * failure leaves the layout on the model it had: it read a freed one after the session
     * failed, when room for the slots or the retired model ran out after it grew. A segment
     * adds at most two entries (its init section and itself). */
    size_t added = merged->media.segment_count - old_segments;
    st = reserve_retired(&s->live) ? KTH_OK : KTH_ERR_NO_MEMORY;
    if (st == KTH_OK)
        st = session_grow_slots(v, hls_layout_entry_count(v->layout) + 2 * added);
    if (st == KTH_OK)
        st = hls_layout_grow(v->layout, merged);
    if (st != KTH_OK) {
        hls_playlist_free(merged);
        session_fail_locked(s, KTH_ERR_NO_MEMORY, "live playlist %s: out of memory",
                            PLATFORM_SHOWN(v->uri));
        return false;
    }
    s->live.retired[s->live.retired_count++] = v->pl; /* freed at the next reload */
    v->pl = merged;
    v->entry_count = hls_layout_entry_count(v->layout);
    hls_period *last = &s->periods[s->period_count - 1];
    if (last->variant == vi && last->end_entry == old_entries)
        last->end_entry = v->entry_count;
    if (vi == s->live.variant)
        hls_live_fences(s, old_segments);
    return true;
}

/* What take_in did. */
typedef enum taken {
    TAKEN,       /* *u says what the reload brought */
    TAKEN_STALE, /* older than what was taken in already (two fetches crossed): ignored */
    TAKEN_FAILED /* the session failed (recorded) */
} taken;

/* True when segment `i` of playlist m is what segment k of variant v's model is (the model
 * holds its URI): the same URI, duration and byte range, and, when both are dated, a date
 * within half a second. Lock held. */
static bool same_segment(const hls_variant_state *v, size_t k, const hls_media_playlist *m,
                         size_t i)
{
    hls_segment a = hls_media_segment(&v->pl->media, k), b = hls_media_segment(m, i);
    int64_t apart = a.program_time_ms - b.program_time_ms;
    if (a.duration != b.duration || a.range.present != b.range.present ||
        (a.range.present &&
         (a.range.offset != b.range.offset || a.range.length != b.range.length)) ||
        (a.program_time_ms && b.program_time_ms && (apart > 500 || apart < -500)))
        return false;
    char *had = hls_media_segment_uri(&v->pl->media, k);
    char *has = hls_media_segment_uri(m, i);
    bool same = had && has && strcmp(had, has) == 0;
    platform_free(had);
    platform_free(has);
    return same;
}

/* True when `pl` is an older copy of what variant v took in, as a CDN edge behind the origin
 * serves: it goes back (the tracker would call it a reset), ends no later than what was taken,
 * and every segment it lists that the model still names (since the last reset, not released)
 * has the URI and duration the model holds under that media sequence number. A restart that
 * reuses the old names, numbers and durations cannot be told from it; one playlist that names
 * none of the held segments is taken as a reset. Lock held. */
static bool older_copy(const hls_variant_state *v, const hls_playlist *pl)
{
    const hls_media_playlist *m = &pl->media;
    const hls_live_tracker *t = &v->live.tracker;
    uint64_t end = m->media_sequence + m->segment_count;
    if (m->segment_count == 0 || end > t->next_sequence || end <= v->live.window_seq ||
        (m->media_sequence >= t->window_first && end == t->next_sequence))
        return false; /* not behind what was taken, or not reaching the window it listed */
    size_t count = v->pl->media.segment_count, held = v->live.run_start;
    if (held < v->live.released)
        held = v->live.released;
    size_t compared = 0;
    for (size_t i = 0; i < m->segment_count; i++) {
        uint64_t seq = m->media_sequence + i;
        /* Model segment k has sequence window_seq + (k - window_start). */
        if (seq + v->live.window_start < v->live.window_seq + held)
            continue;
        size_t k = (size_t)(seq + v->live.window_start - v->live.window_seq);
        if (k >= count || !same_segment(v, k, m, i))
            return false;
        compared++;
    }
    return compared > 0;
}

/* Takes a reload of variant vi into its model and tracker. Lock held. */
static taken take_in(hls_session *s, size_t vi, const hls_playlist *pl, int64_t started_ns,
                     hls_live_update *u)
{
    hls_variant_state *v = &s->variants[vi];
    if (started_ns < v->live.requested_ns)
        return TAKEN_STALE; /* an older playlist would look like a server reset */
    if (older_copy(v, pl)) {
        /* Nothing new, and its window is older than the one held: that one stands, and so
         * does the time it was learned (what may have left since is counted from it). */
        hls_live_tracker_same(&v->live.tracker, started_ns, u);
        v->live.requested_ns = started_ns; /* the next is asked for no sooner than due */
        v->live.failures = 0;
        v->live.stuck = u->stuck;
        return TAKEN;
    }
    hls_live_tracker_update(&v->live.tracker, pl, started_ns, u);
    v->live.requested_ns = started_ns;
    v->live.learned_ns = started_ns;
    v->live.failures = 0;
    v->live.stuck = u->stuck;
    if (u->stuck)
        return TAKEN;
    free_retired(&s->live);             /* replaced at the last reload: nobody reads it since */
    if (pl->media.segment_count == 0) { /* no window to place: the last one stands */
        if (u->ended)
            hls_layout_set_open(v->layout, false);
        return TAKEN;
    }
    if (u->new_count > 0 && !append(s, vi, pl, u))
        return TAKEN_FAILED;
    /* The playlist's segments from first_new on are the model's last new_count; those before
     * first_new are the ones before them, back to the start of the current run (a restart or a
     * jump starts a new run: what the model holds before it is not in this playlist). Model
     * segment k is then the playlist's segment first_new + k - appended. */
    size_t count = v->pl->media.segment_count, appended = count - u->new_count;
    if (u->reset || u->skipped)
        v->live.run_start = appended;
    size_t start = appended >= u->first_new ? appended - u->first_new : 0;
    if (start < v->live.run_start)
        start = v->live.run_start;
    v->live.window_start = start;
    v->live.window_seq = pl->media.media_sequence + (u->first_new + start - appended);
    if (u->ended)
        hls_layout_set_open(v->layout, false);
    return TAKEN;
}

/* Wakes a reader waiting at the live edge, to look again. Lock held. */
static void wake_reader(hls_session *s)
{
    atomic_fetch_add(&s->wake_epoch, 1);
    if (s->waiting)
        storage_resource_wake_waiters(s->waiting);
}

/* The live variant's playlist is stuck: another variant is tried (hls_live_rescue); when none
 * is left, the reader still gets every listed byte, and at the edge this failure. Lock held. */
static void stuck(hls_session *s, int64_t started_ns)
{
    if (hls_live_rescue(s))
        return;
    const hls_variant_state *v = &s->variants[s->live.variant];
    const hls_media_playlist *m = &v->pl->media;
    s->live.stuck = true;
    snprintf(s->live.stuck_msg, sizeof s->live.stuck_msg,
             "live playlist %s has not changed for %.1f s (more than 3.5 target durations "
             "of %llu s): the stream is stuck",
             PLATFORM_SHOWN(v->uri), (double)(started_ns - v->live.tracker.changed_ns) / NS_PER_S,
             (unsigned long long)m->target_duration);
    wake_reader(s);
}

void hls_live_switched(hls_session *s, size_t to, size_t first)
{
    hls_variant_state *v = &s->variants[to];
    s->live.variant = to;
    s->live.stuck = false;
    s->live.failures = 0;
    s->live.unfenced = SIZE_MAX; /* the variant left has no more periods to come */
    if (s->live.want == to) {
        s->live.want = SIZE_MAX;
        s->live.rescue = false;
    }
    s->live.next_ns = v->live.requested_ns + hls_live_reload_delay_ns(&v->pl->media, true);
    if (v->live.tracker.ended)
        s->live.open = false;
    hls_layout_set_open(v->layout, !v->live.tracker.ended);
    note_window(s);
    hls_live_fences(s, first + 1);
    wake_reader(s);
}

/* After the live variant's server restarted its numbering, the other variants' last playlists
 * are of the numbering before: a switch matched against them took their windows for newer ones
 * and never matched (or matched a segment of the old numbering). Their windows are forgotten
 * until a fresh playlist of each comes, which a switch to one fetches (live_switch.c). */
static void forget_other_windows(hls_session *s)
{
    for (size_t x = 0; x < s->ladder.count; x++) {
        hls_variant_state *v = &s->variants[x];
        if (x == s->live.variant || !v->pl || !v->live.tracked)
            continue;
        v->live.window_start = v->pl->media.segment_count; /* lists nothing */
        v->live.window_seq = 0;
    }
}

/* Takes in a reload of the live variant. Lock held. Fills *ev (kind 0: nothing to publish). */
static void take_reload(hls_session *s, const hls_playlist *pl, int64_t started_ns, kth_event *ev)
{
    hls_live_update u;
    if (take_in(s, s->live.variant, pl, started_ns, &u) != TAKEN)
        return;
    if (u.reset)
        forget_other_windows(s);
    s->live.next_ns = u.next_reload_ns;
    if (u.stuck) {
        stuck(s, started_ns);
        return;
    }
    if (s->live.rescue && u.changed) { /* it moves again: no need to leave it */
        s->live.rescue = false;
        s->live.want = SIZE_MAX;
    }
    note_window(s);
    if (u.ended) {
        s->live.open = false;
        s->live.want = SIZE_MAX; /* nothing more to switch to */
    }
    bool broken = u.skipped;
    for (size_t k = u.first_new; k < u.first_new + u.new_count; k++)
        broken |= hls_media_segment(&pl->media, k).discontinuity;
    ev->kind = u.reset           ? KTH_EVENT_HLS_LIVE_RESET
               : broken          ? KTH_EVENT_HLS_LIVE_DISCONTINUITY
               : u.ended         ? KTH_EVENT_HLS_LIVE_ENDED
               : u.new_count > 0 ? KTH_EVENT_HLS_LIVE_RELOADED
                                 : 0;
    if (u.new_count > 0) {
        uint64_t first = hls_media_segment(&pl->media, u.first_new).sequence;
        snprintf(ev->text, sizeof ev->text, "%zu segment(s) added, media sequence %llu to %llu%s",
                 u.new_count, (unsigned long long)first,
                 (unsigned long long)(first + u.new_count - 1),
                 u.ended ? "; the playlist ended" : "");
    } else if (u.ended) {
        snprintf(ev->text, sizeof ev->text, "the playlist ended");
    }
    wake_reader(s);
}

/* A reload failed: tried again at the next reload time; a few in a row fail the stream. */
static void reload_failed(hls_session *s, live_fetch *f, const net_result *r)
{
    const char *uri = s->variants[s->live.variant].uri;
    s->live.next_ns =
        f->started_ns + hls_live_reload_delay_ns(&s->variants[s->live.variant].pl->media, false);
    if (++s->live.failures < MAX_RELOAD_FAILURES)
        return;
    if (f->body.http_status >= 300)
        session_fail_locked(s, KTH_ERR_HTTP, "live playlist %s: HTTP %d (%u reloads in a row)",
                            PLATFORM_SHOWN(uri), f->body.http_status, s->live.failures);
    else
        session_fail_locked(s, r->status != KTH_OK ? r->status : KTH_ERR_FORMAT,
                            "live playlist %s: %s (%u reloads in a row)", PLATFORM_SHOWN(uri),
                            r->message && *r->message ? r->message : kth_strerror(r->status),
                            s->live.failures);
}

/* A list of cache keys, to drop after the lock. */
typedef struct key_list {
    char **keys;
    size_t count, cap;
} key_list;

/* Where the reader is: at its position, or, at the live edge (past every byte known), at the
 * last byte it read. Lock held. */
static bool reader_place(hls_session *s, hls_place *place, size_t *segment)
{
    hls_entry e;
    uint64_t pos = session_reader_position(s);
    if (session_locate(s, pos, place) != HLS_LOCATED &&
        (pos == 0 || session_locate(s, pos - 1, place) != HLS_LOCATED))
        return false;
    if (hls_layout_entry(s->variants[place->variant].layout, place->entry, &e) != KTH_OK)
        return false;
    *segment = e.segment; /* an init section's is the segment it precedes */
    return true;
}

/* The first segment of variant x the stream may still read: the reader's own when it reads x,
 * else the first of x's periods after the reader's; SIZE_MAX when none. Lock held. */
static size_t first_still_read(const hls_session *s, size_t x, const hls_place *reader,
                               size_t reader_segment)
{
    size_t first = SIZE_MAX;
    for (size_t i = reader->period; i < s->period_count; i++) {
        const hls_period *p = &s->periods[i];
        size_t k = i == reader->period ? reader_segment : p->first_segment;
        if (p->variant == x && k < first)
            first = k;
    }
    return first;
}

/* Collects the keys of variant x's segments that left its window and that the stream will not
 * read again, from the first not released yet up to the first still in use (open or
 * fetching). Lock held. */
static void release_variant(hls_session *s, size_t x, size_t end, key_list *out)
{
    hls_variant_state *v = &s->variants[x];
    size_t k = v->live.released;
    if (end > v->live.window_start)
        end = v->live.window_start;
    if (k >= end)
        return;
    if (out->cap - out->count < end - k) {
        size_t cap = out->count + (end - k);
        char **keys = platform_realloc(out->keys, cap * sizeof *keys);
        if (!keys)
            return;
        out->keys = keys;
        out->cap = cap;
    }
    for (; k < end; k++) {
        size_t entry, init;
        if (hls_layout_entry_of_segment(v->layout, k, &entry, &init) != KTH_OK)
            break;
        const hls_slot *slot = session_slot(v, entry);
        if (slot->res || slot->fetching)
            break; /* its turn comes at a later reload */
        char *key = session_entry_key(s, x, entry);
        if (!key)
            break;
        out->keys[out->count++] = key;
    }
    v->live.released = k;
}

/* Collects the keys of every tracked variant's segments that are of no more use. Lock held. */
static void release_passed(hls_session *s, key_list *out)
{
    hls_place reader;
    size_t segment;
    if (!reader_place(s, &reader, &segment))
        return;
    for (size_t x = 0; x < s->ladder.count; x++)
        if (s->variants[x].pl && s->variants[x].live.tracked)
            release_variant(s, x, first_still_read(s, x, &reader, segment), out);
}

/* Drops what release_passed collected. No lock held. */
static void drop_keys(hls_session *s, key_list *l)
{
    for (size_t i = 0; i < l->count; i++) {
        cache_asset_drop_resource(s->asset, l->keys[i]); /* busy elsewhere: it stays */
        platform_free(l->keys[i]);
    }
    platform_free(l->keys);
}

/* Takes in a fetched playlist of f's variant. Lock held. */
static void take_fetched(hls_session *s, live_fetch *f, const hls_playlist *pl, kth_event *ev)
{
    if (f->variant == s->live.variant) {
        s->live.failures = 0;
        take_reload(s, pl, f->started_ns, ev);
        return;
    }
    hls_live_update u;
    if (!s->variants[f->variant].pl || !s->variants[f->variant].live.tracked ||
        take_in(s, f->variant, pl, f->started_ns, &u) != TAKEN)
        return;
    if (s->live.rescue && s->live.want == f->variant)
        stuck(s, f->started_ns); /* the stuck variant is left now, or another is tried */
}

static void reload_complete(void *user, const net_result *r)
{
    live_fetch *f = user;
    hls_session *s = f->s;
    hls_playlist *pl = NULL;
    char err[HLS_ERR_MAX];
    kth_status st = r->status;
    if (st == KTH_OK) {
        const char *base = f->body.final_url ? f->body.final_url : s->variants[f->variant].uri;
        st = hls_playlist_parse(f->body.data, f->body.len, base, NULL, &pl, err, sizeof err);
        if (st == KTH_OK && pl->kind != HLS_PLAYLIST_MEDIA)
            st = KTH_ERR_FORMAT;
    }
    kth_event ev;
    memset(&ev, 0, sizeof ev);
    key_list passed = {0};
    platform_mutex_lock(&s->lock);
    if (f->timed)
        s->live.reloading = false;
    else
        s->live.want_loading = false;
    if (!f->timed && !s->live.rescue && s->live.want == f->variant)
        s->live.want = SIZE_MAX; /* asked again if a switch still finds no match */
    if (s->failure == KTH_OK && s->live.open && st != KTH_ERR_CANCELLED) {
        if (st == KTH_OK) {
            take_fetched(s, f, pl, &ev);
            release_passed(s, &passed);
            if (session_drop_released_periods(s) > 0)
                fence_waiting(s);
        } else if (f->timed && f->variant == s->live.variant) {
            reload_failed(s, f, r);
        } else {
            /* A playlist a switch asked for: not again before half its target, and a variant
             * whose playlist keeps failing is no longer switched to (live_switch.c). */
            hls_variant_state *v = &s->variants[f->variant];
            if (f->started_ns > v->live.requested_ns)
                v->live.requested_ns = f->started_ns;
            v->live.failures++;
        }
    }
    platform_mutex_unlock(&s->lock);
    drop_keys(s, &passed);
    hls_playlist_free(pl);
    hls_body_free(&f->body);
    platform_free(f);
    if (ev.kind && s->bus) {
        ev.origin = s->origin;
        kth_bus_publish(s->bus, &ev);
    }
    hls_live_publish_rescue(s);
    hls_peer_wake(s); /* the new segments are the peer's to fetch */
}

/* Adds a fetch of variant v's playlist to the batch. Lock held. */
static bool add_fetch(hls_session *s, net_batch *batch, size_t v, bool timed, int64_t now_ns)
{
    live_fetch *f = platform_calloc(1, sizeof *f);
    if (!f)
        return false;
    f->s = s;
    f->variant = v;
    f->timed = timed;
    f->started_ns = now_ns;
    f->body.max = HLS_DEFAULT_MAX_PLAYLIST_BYTES;
    net_fetch_spec spec;
    memset(&spec, 0, sizeof spec);
    spec.url = s->variants[v].uri;
    spec.method = NET_GET;
    spec.priority = NET_FETCH_HIGH;
    spec.accept_gzip = true;
    spec.cancel = net_peer_cancel_token(s->peer);
    spec.on_response = hls_playlist_on_response;
    spec.validate = net_validate_not_html;
    spec.write = hls_playlist_on_write;
    spec.complete = reload_complete;
    spec.user = f;
    if (net_batch_add(batch, &spec, NULL) != KTH_OK) {
        platform_free(f);
        return false;
    }
    return true;
}

/* The smaller of two waits, 0 meaning none. */
static double sooner(double a, double b)
{
    return a <= 0 ? b : b <= 0 || a < b ? a : b;
}

double hls_live_poll(hls_session *s, net_batch *batch, int64_t now_ns)
{
    double wait = 0;
    if (s->live.open && s->live.want != SIZE_MAX && !s->live.want_loading) {
        /* A variant a switch waits for: at once, but not twice within half its target. */
        const hls_variant_state *w = &s->variants[s->live.want];
        int64_t due = w->live.requested_ns + hls_live_reload_delay_ns(&w->pl->media, false);
        if (now_ns < due)
            wait = (double)(due - now_ns) / NS_PER_S;
        else if (add_fetch(s, batch, s->live.want, false, now_ns))
            s->live.want_loading = true;
        else
            wait = 0.1;
    }
    if (!s->live.open || s->live.reloading || s->live.stuck)
        return wait;
    if (now_ns < s->live.next_ns)
        return sooner(wait, (double)(s->live.next_ns - now_ns) / NS_PER_S);
    if (!add_fetch(s, batch, s->live.variant, true, now_ns))
        return sooner(wait, 0.1);
    s->live.reloading = true;
    return wait;
}

/* ---- a reader that fell behind the window ---- */

/* The period at or after the reader's furthest that holds `entry` of `variant` as one of its
 * segments; SIZE_MAX when none does. Lock held. */
static size_t period_of(const hls_session *s, size_t variant, size_t entry)
{
    for (size_t i = s->period_count; i-- > s->reader.period;) {
        const hls_period *p = &s->periods[i];
        if (p->variant == variant && entry >= p->first_entry && entry < p->end_entry)
            return i;
    }
    return SIZE_MAX;
}

/* True when `entry` of `variant` is part of the stream's byte space (in one of its periods).
 * Lock held. */
static bool in_periods(const hls_session *s, size_t variant, size_t entry)
{
    for (size_t i = 0; i < s->period_count; i++) {
        const hls_period *p = &s->periods[i];
        if (p->variant == variant &&
            (entry == p->prefix_init || (entry >= p->first_entry && entry < p->end_entry)))
            return true;
    }
    return false;
}

/* True when segment k's entry has its bytes (its size is known once its fetch committed). */
static bool segment_has_bytes(hls_layout *l, size_t k)
{
    size_t entry, init;
    hls_entry e;
    return hls_layout_entry_of_segment(l, k, &entry, &init) == KTH_OK &&
           hls_layout_entry(l, entry, &e) == KTH_OK && e.size_known;
}

/* The skip's splice (skip_to). Lock held. */
static bool splice_past(hls_session *s, size_t v, size_t w)
{
    size_t acked = s->reader.acked_period, fence = s->reader.fence_period;
    bool pending = s->reader.fence_pending;
    size_t index;
    uint64_t base;
    if (!session_splice(s, v, w, &index, &base))
        return false;
    if (base > 0) { /* bytes were handed out before the splice: the reader meets a fence */
        s->reader.acked_period = acked < index ? acked : index - 1;
        if (pending && fence < index) { /* one it met before stays pending */
            s->reader.fence_pending = true;
            s->reader.fence_period = fence;
        }
    }
    return true;
}

/* Ends the stream's bytes before segment j of the live variant, which period `at` holds, and
 * goes on at segment w behind a fence: the periods after `at` go (no read reached them), and
 * a new period starts after what is kept, when the reader is still before j; else a splice at
 * what the reader has been handed (it is waiting at j), keeping the fence the reader must
 * meet. The discontinuities after w are fenced again. Lock held. */
static bool skip_to(hls_session *s, size_t at, size_t j, size_t w)
{
    size_t v = s->live.variant;
    bool skipped;
    if (j > s->periods[at].first_segment) {
        skipped = session_drop_periods_after(s, at) && session_append_period(s, v, w, j);
    } else if (at > 0) { /* j opens its period: that one goes too, the one before ends as it did */
        size_t end = session_period_end_segment(s, at - 1); /* before the drop lets it run on */
        skipped = session_drop_periods_after(s, at - 1) && session_append_period(s, v, w, end);
    } else {
        skipped = false;
    }
    if (!skipped && !splice_past(s, v, w))
        return false;
    hls_live_refence_after(s, w);
    return true;
}

/* The mean duration of the segments the last playlist of v listed, in seconds: how fast
 * segments come, and so leave (one stub among them does not make them all short). The target
 * duration when they list no time. */
static double mean_listed(const hls_variant_state *v)
{
    const hls_media_playlist *m = &v->pl->media;
    double total = 0;
    size_t n = 0;
    for (size_t k = v->live.window_start; k < m->segment_count; k++, n++)
        total += hls_media_segment(m, k).duration;
    double mean = n > 0 ? total / (double)n : 0;
    if (!(mean > 0))
        mean = m->target_duration ? (double)m->target_duration : 1.0;
    return mean > 0.001 ? mean : 0.001;
}

/* How many of the first segments the last playlist of v listed the server may have dropped
 * since: one for each of its segments, at their mean duration, that fits in the time since
 * that playlist's request started (a segment leaves as each new one comes), and one more for
 * the playlist's own age. A reader that fell behind goes on at the first listed segment, which is
 * the next to leave: when it has left too, its 404 is a skip again, not a failure. None for an
 * EVENT playlist (it drops nothing), and no more than one while the playlist is stuck (its request
 * time no longer moves). Lock held. */
static size_t left_since_reload(hls_session *s, const hls_variant_state *v)
{
    if (s->live.kind == HLS_LIVE_KIND_EVENT)
        return 0;
    if (v->live.stuck)
        return 1;
    int64_t since = net_downloader_now(s->downloader) - v->live.learned_ns;
    if (since <= 0)
        return 1;
    double count = (double)since / (mean_listed(v) * NS_PER_S);
    return count < (double)(SIZE_MAX / 2) ? (size_t)count + 1 : SIZE_MAX / 2;
}

bool hls_live_skip_gone(hls_session *s, size_t variant, size_t entry, int http_status,
                        kth_event *ev)
{
    if (!s->live.on || variant != s->live.variant || (http_status != 404 && http_status != 410))
        return false;
    if (!in_periods(s, variant, entry)) {
        ev->kind = 0;
        return true; /* skipped already: nobody reads it */
    }
    const hls_variant_state *v = &s->variants[variant];
    hls_entry e;
    hls_layout_entry(v->layout, entry, &e);
    const hls_media_playlist *m = &v->pl->media;
    size_t first_listed = v->live.window_start; /* the model's first segment still listed */
    if (e.kind != HLS_ENTRY_SEGMENT || e.segment >= m->segment_count ||
        e.segment >= first_listed + left_since_reload(s, v))
        return false; /* still listed (or not a segment): a real failure */
    /* A reader that went back (a byte seek) before the furthest entry it had reached is not one
     * that fell behind the window: the bytes there keep their meaning, which the server can no
     * longer give. A skip placed after what it was handed would leave it waiting where nothing
     * is fetched. */
    size_t at = period_of(s, variant, entry);
    if (at == SIZE_MAX || (s->reader.period == at && entry < s->reader.entry))
        return false;
    /* The skip starts at the first segment of that period that has no bytes: the server drops
     * segments in order, so each one before this left too, and a fetch of one may still be
     * under way (its 404 may come second). */
    size_t j = s->periods[at].first_segment, w;
    for (; j < e.segment; j++)
        if (!segment_has_bytes(v->layout, j))
            break;
    w = e.segment + 1 > first_listed ? e.segment + 1 : first_listed;
    if (w >= m->segment_count || !skip_to(s, at, j, w))
        return false;
    memset(ev, 0, sizeof *ev);
    ev->kind = KTH_EVENT_HLS_LIVE_SKIPPED;
    ev->origin = s->origin;
    snprintf(ev->text, sizeof ev->text,
             "the reader fell behind the live window: media sequence %llu to %llu left the "
             "playlist before they were fetched; the stream goes on at %llu behind a fence",
             (unsigned long long)hls_media_segment(m, j).sequence,
             (unsigned long long)hls_media_segment(m, w - 1).sequence,
             (unsigned long long)hls_media_segment(m, w).sequence);
    wake_reader(s);
    return true;
}
