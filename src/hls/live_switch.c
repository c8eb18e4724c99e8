/*
 * live_switch.c — changing variants on a live stream: matching segments across variants by
 * media sequence number, fetching a fresh playlist of the variant a switch needs, and leaving
 * a playlist that is stuck for another one.
 *
 * Each variant's model numbers its segments from its own first load, so segment k of one model
 * and segment k of another are not the same content. What is the same across variants is the
 * media sequence number the server gives them (RFC 8216 §6.2.1 asks a server to keep them
 * aligned), and a model knows it for the segments its last playlist listed
 * (hls_variant_state.live). A switch is made only at a segment both variants' last playlists
 * list; when the target's playlist is too old to list it, a fresh one is fetched at once (at
 * most every half target duration), and the peer looks again when it arrives.
 *
 * Media times are those of each variant's own model: after a switch, a stream's segment times
 * may differ by whole segments from those the other variant gave (both count from the first
 * playlist of their variant that the stream loaded).
 *
 * Everything here runs with session.lock held, except hls_live_publish_rescue.
 */
#include "hls/session.h"

#include <stdio.h>
#include <string.h>

/* Segments of variant v's model that its last playlist lists: [window_start, count). */
static size_t listed(const hls_variant_state *v)
{
    size_t count = v->pl->media.segment_count;
    return count > v->live.window_start ? count - v->live.window_start : 0;
}

/* Fetches of a variant's playlist that may fail in a row before it is no longer switched to. */
#define MAX_FAILURES 3

/* A variant a switch may go to: loaded, tracked, and its playlist neither stuck nor failing. */
static bool switchable(const hls_session *s, size_t v)
{
    return v < s->ladder.count && v != s->live.variant && s->variants[v].pl &&
           s->variants[v].live.tracked && !s->variants[v].live.stuck &&
           s->variants[v].live.failures < MAX_FAILURES;
}

hls_live_match hls_live_map(hls_session *s, size_t segment, size_t to, int64_t now_ns,
                            size_t *to_segment)
{
    const hls_variant_state *from = &s->variants[s->live.variant];
    if (!switchable(s, to) || segment < from->live.window_start)
        return HLS_LIVE_NO_MATCH; /* the boundary left the window: the reader skips it anyway */
    const hls_variant_state *v = &s->variants[to];
    uint64_t seq = from->live.window_seq + (segment - from->live.window_start);
    if (seq < v->live.window_seq)
        return HLS_LIVE_NO_MATCH; /* its window is past the boundary: a later one may match */
    if (seq - v->live.window_seq < listed(v)) {
        *to_segment = v->live.window_start + (size_t)(seq - v->live.window_seq);
        return HLS_LIVE_MATCH;
    }
    /* Its playlist is older than the boundary: a fresh one may list it (hls_live_poll fetches
     * it while the playlist has not ended, and another variant is not wanted first). */
    if (!s->live.open || (s->live.want != SIZE_MAX && s->live.want != to))
        return HLS_LIVE_NO_MATCH;
    s->live.want = to;
    if (s->live.want_loading)
        return HLS_LIVE_WAIT;
    int64_t due = v->live.requested_ns + hls_live_reload_delay_ns(&v->pl->media, false);
    return now_ns >= due ? HLS_LIVE_WAIT : HLS_LIVE_NO_MATCH;
}

/* The variant to leave a stuck one for: the nearest below it on the ladder, else above. */
static size_t pick_rescue(const hls_session *s)
{
    size_t from = s->live.variant;
    for (size_t d = 1; d < s->ladder.count; d++) {
        if (d <= from && switchable(s, from - d))
            return from - d;
        if (from + d < s->ladder.count && switchable(s, from + d))
            return from + d;
    }
    return SIZE_MAX;
}

/* Switches from the stuck live variant to `to` after the last segment the stuck one lists, at
 * the segment of `to` with the next media sequence (or its first listed one, when its window
 * has moved past that). False while `to` does not list that segment yet. */
static bool rescue_to(hls_session *s, size_t to)
{
    const hls_variant_state *from = &s->variants[s->live.variant];
    const hls_variant_state *v = &s->variants[to];
    size_t end = from->pl->media.segment_count;
    uint64_t seq = from->live.window_seq + listed(from);
    if (seq >= v->live.window_seq + listed(v))
        return false;
    size_t first =
        v->live.window_start + (seq > v->live.window_seq ? (size_t)(seq - v->live.window_seq) : 0);
    size_t was = s->live.variant;
    if (!session_append_period(s, to, first, end))
        return false;
    s->stats.switches++;
    s->segments_since_switch = 0;
    s->live.rescue_note = true;
    s->live.rescue_abr = (kth_event_abr){
        .from_variant = (int)was, .to_variant = (int)to, .buffer_seconds = s->last_buffer_s};
    hls_live_switched(s, to, first);
    return true;
}

bool hls_live_rescue(hls_session *s)
{
    if (s->live.rescue && switchable(s, s->live.want)) {
        if (rescue_to(s, s->live.want) || !session_periods_full(s))
            return true;         /* else its next fetch is tried again */
        s->live.want = SIZE_MAX; /* no period can be added: the stream is stuck */
        s->live.rescue = false;
        return false;
    }
    size_t to = pick_rescue(s);
    s->live.want = to;
    s->live.rescue = to != SIZE_MAX;
    return s->live.rescue;
}

void hls_live_publish_rescue(hls_session *s)
{
    platform_mutex_lock(&s->lock);
    bool note = s->live.rescue_note;
    kth_event_abr abr = s->live.rescue_abr;
    s->live.rescue_note = false;
    platform_mutex_unlock(&s->lock);
    if (note)
        session_publish(s, KTH_EVENT_VARIANT_CHANGED, KTH_OK, &abr,
                        "the live playlist of variant %d stopped changing", abr.from_variant);
}
