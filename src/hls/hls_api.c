/*
 * hls_api.c — the public HLS controls and queries of kithara/hls.h, over the session of a
 * stream's HLS source.
 *
 * Every function checks that the stream's source is an HLS source before touching it. ABR
 * controls go through abr_controls, whose wake (the peer) runs after its own lock is released;
 * session.lock is never held while a control is changed.
 */
#include <kithara/hls.h>

#include "hls/live.h"
#include "hls/session.h"
#include "platform/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>

static hls_session *session_of(kth_stream *stream)
{
    stream_source *src = stream ? stream_get_source(stream) : NULL;
    return hls_source_is(src) ? (hls_session *)src : NULL;
}

int kth_stream_variant_count(kth_stream *stream)
{
    hls_session *s = session_of(stream);
    /* The parser keeps ladders far below INT_MAX (hls_parse_limits.max_variants). */
    return s ? (int)s->ladder.count : 0;
}

/* True when `variant` names a rung of s's ladder; its size_t index is then in *index. */
static bool ladder_index(const hls_session *s, int variant, size_t *index)
{
    if (variant < 0 || (size_t)variant >= s->ladder.count)
        return false;
    *index = (size_t)variant;
    return true;
}

kth_status kth_stream_variant_info(kth_stream *stream, int variant, kth_hls_variant_info *info)
{
    if (!info)
        return KTH_ERR_INVALID_ARG;
    hls_session *s = session_of(stream);
    if (!s)
        return KTH_ERR_UNSUPPORTED;
    size_t index;
    if (!ladder_index(s, variant, &index))
        return KTH_ERR_OUT_OF_RANGE;
    const hls_rung *r = &s->ladder.rungs[index];
    memset(info, 0, sizeof *info);
    info->bandwidth = r->peak_bandwidth ? r->peak_bandwidth : r->bandwidth;
    info->average_bandwidth = r->bandwidth != info->bandwidth ? r->bandwidth : 0;
    info->codec = r->codec;
    info->uri = s->variants[index].uri;
    info->rendition = info->language = "";
    if (r->rendition) {
        info->rendition = r->rendition->name ? r->rendition->name : "";
        if (r->rendition->language)
            info->language = r->rendition->language;
        if (r->rendition->channels)
            info->channels = (unsigned)strtoul(r->rendition->channels, NULL, 10);
    }
    platform_mutex_lock(&s->lock);
    const hls_playlist *pl = s->variants[index].pl;
    info->usable = pl != NULL;
    if (pl) {
        const hls_media_playlist *m = &pl->media;
        info->segment_count = m->segment_count;
        for (size_t i = 0; i < m->segment_count; i++)
            info->duration += hls_media_segment(m, i).duration;
        for (size_t i = 0; i < m->key_count; i++)
            if (m->keys[i].method == HLS_KEY_AES_128)
                info->encrypted = true;
        char *first_uri =
            m->map_count == 0 && m->segment_count > 0
                ? hls_media_segment_uri(m, session_first_held_segment(&s->variants[index]))
                : NULL;
        info->container = m->map_count > 0 ? KTH_CONTAINER_FMP4
                          : first_uri      ? kth_container_from_extension(first_uri)
                                           : KTH_CONTAINER_UNKNOWN;
        platform_free(first_uri);
    }
    platform_mutex_unlock(&s->lock);
    return KTH_OK;
}

kth_status kth_stream_playlist_info(kth_stream *stream, kth_hls_playlist_info *info)
{
    if (!info)
        return KTH_ERR_INVALID_ARG;
    memset(info, 0, sizeof *info);
    hls_session *s = session_of(stream);
    if (!s)
        return KTH_ERR_UNSUPPORTED;
    platform_mutex_lock(&s->lock);
    info->kind = hls_live_kind_name(s->live.kind);
    info->target_duration = s->live.target;
    info->window_s = s->live.window_s;
    info->window_segments = s->live.window_segments;
    const hls_variant_state *v =
        &s->variants[s->live.on ? s->live.variant : atomic_load(&s->current_variant)];
    const hls_media_playlist *m = &v->pl->media;
    if (m->segment_count > 0) {
        size_t first = !s->live.on                               ? 0
                       : v->live.window_start < m->segment_count ? v->live.window_start
                                                                 : m->segment_count - 1;
        info->window_start_s = hls_media_segment(m, first).start;
        info->live_edge_s =
            s->live.open ? hls_media_segment(m, hls_live_edge_segment(m)).start : m->total_duration;
    }
    info->ended = s->live.on && !s->live.open;
    platform_mutex_unlock(&s->lock);
    return KTH_OK;
}

kth_status kth_stream_hls_stats(kth_stream *stream, kth_hls_stats *out)
{
    if (!out)
        return KTH_ERR_INVALID_ARG;
    memset(out, 0, sizeof *out);
    hls_session *s = session_of(stream);
    if (!s)
        return KTH_ERR_UNSUPPORTED;
    platform_mutex_lock(&s->lock);
    *out = s->stats;
    platform_mutex_unlock(&s->lock);
    return KTH_OK;
}

kth_status kth_stream_variant_cached(kth_stream *stream, int variant, size_t *cached, size_t *total)
{
    if (!cached || !total)
        return KTH_ERR_INVALID_ARG;
    *cached = *total = 0;
    hls_session *s = session_of(stream);
    if (!s)
        return KTH_ERR_UNSUPPORTED;
    size_t index;
    if (!ladder_index(s, variant, &index))
        return KTH_ERR_OUT_OF_RANGE;
    hls_variant_state *v = &s->variants[index];
    /* The session lock is taken per entry, never across a cache lookup, so the download of
     * the stream is not held up. */
    for (size_t e = 0;; e++) {
        char *key = NULL;
        platform_mutex_lock(&s->lock);
        if (!v->pl) {
            platform_mutex_unlock(&s->lock);
            return KTH_ERR_NOT_FOUND;
        }
        if (e >= hls_layout_entry_count(v->layout)) {
            platform_mutex_unlock(&s->lock);
            return KTH_OK;
        }
        hls_entry en;
        bool segment =
            hls_layout_entry(v->layout, e, &en) == KTH_OK && en.kind == HLS_ENTRY_SEGMENT;
        bool gap = segment && hls_media_segment(&v->pl->media, en.segment).gap;
        if (segment && !gap && !(key = session_entry_key(s, index, e))) {
            platform_mutex_unlock(&s->lock);
            return KTH_ERR_NO_MEMORY;
        }
        platform_mutex_unlock(&s->lock);
        if (!segment)
            continue;
        (*total)++;
        cache_resource *res;
        cache_resource_info info;
        if (gap)
            (*cached)++;
        else if (cache_resource_open(s->asset, key, 0, &res, &info, NULL, 0) == KTH_OK) {
            if (info.committed)
                (*cached)++;
            cache_resource_close(res);
        }
        platform_free(key);
    }
}

int kth_stream_current_variant(kth_stream *stream)
{
    hls_session *s = session_of(stream);
    return s ? (int)atomic_load(&s->current_variant) : -1;
}

kth_status kth_stream_abr_set_auto(kth_stream *stream)
{
    hls_session *s = session_of(stream);
    if (!s)
        return KTH_ERR_UNSUPPORTED;
    abr_controls_set_auto(&s->controls);
    return KTH_OK;
}

kth_status kth_stream_abr_set_manual(kth_stream *stream, int variant)
{
    hls_session *s = session_of(stream);
    if (!s)
        return KTH_ERR_UNSUPPORTED;
    size_t index;
    if (!ladder_index(s, variant, &index))
        return KTH_ERR_OUT_OF_RANGE;
    /* A variant index; the peer maps it onto the usable rungs at each decision. */
    abr_controls_set_manual(&s->controls, index);
    session_attach(s);
    hls_peer_manual_switch(s);
    return KTH_OK;
}

kth_status kth_stream_abr_set_cap(kth_stream *stream, uint64_t max_bps)
{
    hls_session *s = session_of(stream);
    if (!s)
        return KTH_ERR_UNSUPPORTED;
    abr_controls_set_cap(&s->controls, max_bps);
    return KTH_OK;
}

kth_status kth_stream_abr_report_played(kth_stream *stream, double seconds)
{
    hls_session *s = session_of(stream);
    if (!s)
        return KTH_ERR_UNSUPPORTED;
    if (!isfinite(seconds) || seconds < 0)
        return KTH_ERR_INVALID_ARG;
    platform_mutex_lock(&s->lock);
    s->reader.played_s = seconds;
    s->reader.played_known = true;
    platform_mutex_unlock(&s->lock);
    return KTH_OK;
}

kth_status kth_stream_abr_seek_begin(kth_stream *stream)
{
    hls_session *s = session_of(stream);
    if (!s)
        return KTH_ERR_UNSUPPORTED;
    abr_controls_seek_begin(&s->controls);
    return KTH_OK;
}

kth_status kth_stream_abr_seek_end(kth_stream *stream)
{
    hls_session *s = session_of(stream);
    if (!s)
        return KTH_ERR_UNSUPPORTED;
    abr_controls_seek_end(&s->controls); /* wakes the peer: decisions held back may go now */
    return KTH_OK;
}

/* The variant of the reader's position. */
static hls_variant_state *current(hls_session *s)
{
    return &s->variants[atomic_load(&s->current_variant)];
}

size_t kth_stream_segment_count(kth_stream *stream)
{
    hls_session *s = session_of(stream);
    return s ? hls_layout_segment_count(current(s)->layout) : 0;
}

double kth_stream_total_duration(kth_stream *stream)
{
    hls_session *s = session_of(stream);
    return s ? hls_layout_total_duration(current(s)->layout) : 0;
}

kth_status kth_stream_segment_at_time(kth_stream *stream, double seconds, size_t *index,
                                      double *start, double *duration)
{
    hls_session *s = session_of(stream);
    if (!s)
        return KTH_ERR_UNSUPPORTED;
    if (seconds != seconds)
        return KTH_ERR_INVALID_ARG;
    hls_variant_state *v = current(s);
    size_t k = hls_layout_segment_at_time(v->layout, seconds);
    if (index)
        *index = k;
    if (start)
        *start = hls_media_segment(&v->pl->media, k).start;
    if (duration)
        *duration = hls_media_segment(&v->pl->media, k).duration;
    return KTH_OK;
}

kth_status kth_stream_init_range(kth_stream *stream, uint64_t *start, uint64_t *end)
{
    hls_session *s = session_of(stream);
    if (!s)
        return KTH_ERR_UNSUPPORTED;
    uint64_t position = kth_stream_position(stream);
    kth_status st = KTH_ERR_RETRY;
    platform_mutex_lock(&s->lock);
    hls_place pl;
    hls_locate r = session_locate(s, position, &pl);
    if (r == HLS_RELEASED) { /* a live stream dropped what was there */
        platform_mutex_unlock(&s->lock);
        return KTH_ERR_NOT_FOUND;
    }
    if (r == HLS_PAST_END)
        pl.period = s->period_count - 1;
    const hls_period *p = &s->periods[pl.period];
    hls_layout *l = s->variants[p->variant].layout;
    hls_entry e;
    size_t segment;
    if (r == HLS_PAST_END) {
        segment = hls_layout_segment_count(l) - 1;
    } else {
        hls_layout_entry(l, pl.entry, &e);
        segment = e.segment;
    }
    size_t seg_entry, init_entry;
    hls_layout_entry_of_segment(l, segment, &seg_entry, &init_entry);
    if (init_entry == HLS_NONE) {
        st = KTH_ERR_NOT_FOUND;
    } else if (p->base_known) {
        uint64_t offset = p->base;
        bool known = true;
        if (p->prefix_init != HLS_NONE && p->prefix_init != init_entry) {
            hls_layout_entry(l, p->prefix_init, &e);
            known = e.size_known;
            offset += e.size;
        }
        for (size_t i = p->first_entry; known && p->prefix_init != init_entry && i < init_entry;
             i++) {
            hls_layout_entry(l, i, &e);
            known = e.size_known;
            offset += e.size;
        }
        hls_layout_entry(l, init_entry, &e);
        if (known && e.size_known) {
            *start = offset;
            *end = offset + e.size;
            st = KTH_OK;
        }
    }
    platform_mutex_unlock(&s->lock);
    return st;
}
