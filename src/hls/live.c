/*
 * live.c — start position, reload timing and reload verdicts of live and event playlists.
 */
#include "hls/live.h"

#include <string.h>

#define NS_PER_S      1000000000.0
#define MIN_RELOAD_NS ((int64_t)100000000)
#define STUCK_TARGETS 3.5
#define EDGE_TARGETS  3.0

hls_live_kind hls_live_kind_of(const hls_media_playlist *m)
{
    if (m->endlist || m->type == HLS_PLAYLIST_TYPE_VOD)
        return HLS_LIVE_KIND_VOD;
    return m->type == HLS_PLAYLIST_TYPE_EVENT ? HLS_LIVE_KIND_EVENT : HLS_LIVE_KIND_LIVE;
}

const char *hls_live_kind_name(hls_live_kind kind)
{
    switch (kind) {
    case HLS_LIVE_KIND_VOD:
        return "vod";
    case HLS_LIVE_KIND_EVENT:
        return "event";
    case HLS_LIVE_KIND_LIVE:
        return "live";
    }
    return "unknown";
}

/* The segment holding time t (seconds from the playlist's start), clamped to the segments. */
static size_t segment_at(const hls_media_playlist *m, double t)
{
    for (size_t i = 0; i < m->segment_count; i++) {
        if (hls_media_segment(m, i).start + hls_media_segment(m, i).duration > t)
            return i;
    }
    return m->segment_count - 1;
}

size_t hls_live_start_segment(const hls_playlist *media, const hls_playlist *master)
{
    const hls_media_playlist *m = &media->media;
    if (m->segment_count == 0)
        return 0;
    double total = m->total_duration;
    const hls_playlist *start = media->has_start              ? media
                                : master && master->has_start ? master
                                                              : NULL;
    double t;
    if (start) {
        t = start->start_offset >= 0 ? start->start_offset : total + start->start_offset;
    } else if (m->endlist) {
        return 0;
    } else if (m->has_hold_back) {
        t = total - m->hold_back;
    } else {
        t = total - EDGE_TARGETS * (double)m->target_duration;
    }
    return t > 0 ? segment_at(m, t) : 0;
}

size_t hls_live_edge_segment(const hls_media_playlist *m)
{
    if (m->segment_count == 0)
        return 0;
    double back = m->has_hold_back ? m->hold_back : EDGE_TARGETS * (double)m->target_duration;
    double t = m->total_duration - back;
    return t > 0 ? segment_at(m, t) : 0;
}

int64_t hls_live_reload_delay_ns(const hls_media_playlist *m, bool changed)
{
    double s = (double)m->target_duration;
    if (changed && m->segment_count > 0 && hls_media_segment(m, m->segment_count - 1).duration < s)
        s = hls_media_segment(m, m->segment_count - 1).duration;
    if (!changed)
        s /= 2;
    int64_t ns = (int64_t)(s * NS_PER_S);
    return ns < MIN_RELOAD_NS ? MIN_RELOAD_NS : ns;
}

static void take(hls_live_tracker *t, const hls_media_playlist *m, size_t first, int64_t request_ns,
                 hls_live_update *out)
{
    out->first_new = first;
    out->new_count = m->segment_count - first;
    out->changed = true;
    t->next_sequence = m->media_sequence + m->segment_count;
    t->changed_ns = request_ns;
}

static void finish(hls_live_tracker *t, const hls_media_playlist *m, int64_t request_ns,
                   hls_live_update *out)
{
    if (m->endlist && !t->ended) {
        t->ended = true;
        out->changed = true;
    }
    out->ended = t->ended;
    if (m->segment_count > 0)
        t->window_first = m->media_sequence;
    t->target_duration = m->target_duration;
    out->window_first = t->window_first;
    out->next_reload_ns = request_ns + hls_live_reload_delay_ns(m, out->changed);
}

void hls_live_tracker_start(hls_live_tracker *t, const hls_playlist *media, size_t start_segment,
                            int64_t request_ns, hls_live_update *out)
{
    const hls_media_playlist *m = &media->media;
    memset(t, 0, sizeof *t);
    memset(out, 0, sizeof *out);
    take(t, m, start_segment < m->segment_count ? start_segment : m->segment_count, request_ns,
         out);
    finish(t, m, request_ns, out);
}

/* True when a reload at request_ns finds the playlist unchanged for too long. */
static bool stuck_at(const hls_live_tracker *t, int64_t request_ns)
{
    return !t->ended && (double)(request_ns - t->changed_ns) >
                            STUCK_TARGETS * (double)t->target_duration * NS_PER_S;
}

void hls_live_tracker_same(hls_live_tracker *t, int64_t request_ns, hls_live_update *out)
{
    memset(out, 0, sizeof *out);
    out->ended = t->ended;
    out->window_first = t->window_first;
    double half = (double)t->target_duration / 2 * NS_PER_S;
    out->next_reload_ns = request_ns + (half < MIN_RELOAD_NS ? MIN_RELOAD_NS : (int64_t)half);
    out->stuck = stuck_at(t, request_ns);
}

void hls_live_tracker_update(hls_live_tracker *t, const hls_playlist *media, int64_t request_ns,
                             hls_live_update *out)
{
    const hls_media_playlist *m = &media->media;
    memset(out, 0, sizeof *out);
    uint64_t end = m->media_sequence + m->segment_count;
    if (m->segment_count == 0) {
        /* A playlist that lists nothing says nothing of the window: a reset or a jump is
         * judged on the next one that lists segments (taken here, it lost its fence, and the
         * next playlist was then taken as a slide). */
        out->first_new = 0;
    } else if (m->media_sequence < t->window_first || end < t->next_sequence) {
        out->reset = true;
        take(t, m, hls_live_start_segment(media, NULL), request_ns, out);
    } else if (m->media_sequence > t->next_sequence) {
        out->skipped = true;
        take(t, m, 0, request_ns, out);
    } else if (end > t->next_sequence) {
        take(t, m, (size_t)(t->next_sequence - m->media_sequence), request_ns, out);
    } else {
        out->first_new = m->segment_count;
    }
    bool was_ended = t->ended;
    finish(t, m, request_ns, out);
    if (!out->changed && !was_ended && stuck_at(t, request_ns))
        out->stuck = true;
}
