/*
 * session.c — the stream byte space of an HLS session: periods, where an offset lands, the
 * cache resources of entries, and the session's failure.
 *
 * Invariants:
 * - A period's base, once known, never changes; periods are only ever appended, each starting
 *   at a later segment than the one before, so every stream offset handed out keeps its
 *   meaning (DESIGN.md §4.2).
 * - Sizes are learned once (hls_layout refuses a second, different size); the stream length
 *   is known only when every entry of every period has its size.
 */
#include "hls/session.h"
#include "platform/mem.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t session_period_entries(const hls_period *p, size_t *first)
{
    *first = p->first_entry;
    return p->end_entry - p->first_entry;
}

const hls_slot hls_slot_closed = {0};

kth_status session_grow_slots(hls_variant_state *v, size_t count)
{
    if (count <= v->slot_cap)
        return KTH_OK;
    size_t chunks = (count + HLS_SLOT_CHUNK - 1) / HLS_SLOT_CHUNK;
    size_t have = v->slot_cap / HLS_SLOT_CHUNK;
    hls_slot **table = platform_realloc(v->slot_chunks, chunks * sizeof *table);
    if (!table)
        return KTH_ERR_NO_MEMORY;
    v->slot_chunks = table;
    for (size_t c = have; c < chunks; c++)
        table[c] = NULL;
    uint16_t *open = platform_realloc(v->chunk_open, chunks * sizeof *open);
    if (!open)
        return KTH_ERR_NO_MEMORY; /* the longer table is harmless; slot_cap still says what is */
    v->chunk_open = open;
    for (size_t c = have; c < chunks; c++)
        open[c] = 0;
    v->slot_cap = chunks * HLS_SLOT_CHUNK;
    return KTH_OK;
}

/* Makes the chunk holding the slot of `entry` (< slot_cap) if it is not made yet. Lock held. */
static kth_status make_slot_chunk(hls_variant_state *v, size_t entry)
{
    hls_slot **chunk = &v->slot_chunks[entry / HLS_SLOT_CHUNK];
    if (*chunk == NULL && (*chunk = platform_calloc(HLS_SLOT_CHUNK, sizeof **chunk)) == NULL)
        return KTH_ERR_NO_MEMORY;
    return KTH_OK;
}

void session_free_slots(hls_variant_state *v)
{
    for (size_t c = 0; c < v->slot_cap / HLS_SLOT_CHUNK; c++)
        platform_free(v->slot_chunks[c]);
    platform_free(v->slot_chunks);
    platform_free(v->chunk_open);
    v->slot_chunks = NULL;
    v->chunk_open = NULL;
    v->slot_cap = 0;
}

static bool entry_size(hls_session *s, size_t variant, size_t entry, uint64_t *size)
{
    hls_entry e;
    if (hls_layout_entry(s->variants[variant].layout, entry, &e) != KTH_OK || !e.size_known)
        return false;
    *size = e.size;
    return true;
}

/* The byte length of period p, or false with *unknown set to the first entry lacking a size. */
static bool period_length(hls_session *s, const hls_period *p, uint64_t *length, size_t *unknown)
{
    if (p->cut) {
        *length = p->cut_length;
        return true;
    }
    uint64_t total = 0, size;
    if (p->prefix_init != HLS_NONE) {
        if (!entry_size(s, p->variant, p->prefix_init, &size)) {
            *unknown = p->prefix_init;
            return false;
        }
        total += size;
    }
    hls_layout *l = s->variants[p->variant].layout;
    hls_entry first, end;
    bool end_known = p->end_entry == hls_layout_entry_count(l)
                         ? hls_layout_total_length(l, &end.offset)
                         : hls_layout_entry(l, p->end_entry, &end) == KTH_OK && end.offset_known;
    if (end_known && hls_layout_entry(l, p->first_entry, &first) == KTH_OK && first.offset_known) {
        *length = total + (end.offset - first.offset);
        return true;
    }
    for (size_t e = p->first_entry; e < p->end_entry; e++) {
        if (!entry_size(s, p->variant, e, &size)) {
            *unknown = e;
            return false;
        }
        total += size;
    }
    *length = total;
    return true;
}

void session_update_bases(hls_session *s)
{
    for (size_t i = 1; i < s->period_count; i++) {
        hls_period *p = &s->periods[i];
        if (p->base_known)
            continue;
        hls_period *prev = &s->periods[i - 1];
        uint64_t length;
        size_t unknown;
        if (!prev->base_known || !period_length(s, prev, &length, &unknown))
            return;
        p->base = prev->base + length;
        p->base_known = true;
    }
}

/* Locates rel (offset from the period's base) within period p. */
static hls_locate locate_in_period(hls_session *s, size_t index, uint64_t rel, hls_place *pl,
                                   uint64_t *consumed)
{
    hls_period *p = &s->periods[index];
    hls_layout *l = s->variants[p->variant].layout;
    pl->period = index;
    pl->variant = p->variant;
    if (p->cut && rel >= p->cut_length) {
        *consumed = p->cut_length;
        return HLS_PAST_END;
    }
    uint64_t size, start = 0;
    if (p->prefix_init != HLS_NONE) {
        if (!entry_size(s, p->variant, p->prefix_init, &size)) {
            pl->entry = p->prefix_init;
            pl->entry_stream_start = p->base;
            return HLS_NEED_SIZE;
        }
        if (rel < size) {
            pl->entry = p->prefix_init;
            pl->within = rel;
            pl->entry_stream_start = p->base;
            return HLS_LOCATED;
        }
        start = size;
    }
    hls_entry first;
    if (hls_layout_entry(l, p->first_entry, &first) == KTH_OK && first.offset_known) {
        /* Fast path: the variant's own prefix sums. */
        size_t e = 0;
        uint64_t within = 0, length;
        size_t unknown;
        kth_status st = hls_layout_locate(l, first.offset + (rel - start), &e, &within);
        if (st == KTH_OK && e < p->end_entry) {
            pl->entry = e;
            pl->within = within;
            pl->entry_stream_start = p->base + rel - within;
            return HLS_LOCATED;
        }
        if (st == KTH_ERR_RETRY && e < p->end_entry) {
            hls_entry en;
            hls_layout_entry(l, e, &en);
            pl->entry = e;
            pl->within = 0;
            pl->entry_stream_start = p->base + start + (en.offset - first.offset);
            return HLS_NEED_SIZE;
        }
        if (period_length(s, p, &length, &unknown)) {
            *consumed = length;
            return HLS_PAST_END;
        }
    }
    uint64_t pos = start;
    for (size_t e = p->first_entry; e < p->end_entry; e++) {
        if (!entry_size(s, p->variant, e, &size)) {
            pl->entry = e;
            pl->within = 0;
            pl->entry_stream_start = p->base + pos;
            return HLS_NEED_SIZE;
        }
        if (rel < pos + size) {
            pl->entry = e;
            pl->within = rel - pos;
            pl->entry_stream_start = p->base + pos;
            return HLS_LOCATED;
        }
        pos += size;
    }
    *consumed = pos;
    return HLS_PAST_END;
}

hls_locate session_locate(hls_session *s, uint64_t offset, hls_place *place)
{
    session_update_bases(s);
    if (offset < s->periods[0].base) {
        const hls_period *p = &s->periods[0];
        *place = (hls_place){.period = 0,
                             .variant = p->variant,
                             .entry = p->prefix_init != HLS_NONE ? p->prefix_init : p->first_entry,
                             .entry_stream_start = p->base};
        return HLS_RELEASED;
    }
    size_t i = s->period_count - 1;
    while (i > 0 && (!s->periods[i].base_known || s->periods[i].base > offset))
        i--;
    /* Periods after i either start past offset or have no base yet: in the latter case the
     * size that is missing lies in period i, which the walk below finds. */
    for (; i < s->period_count; i++) {
        uint64_t consumed = 0;
        hls_locate r = locate_in_period(s, i, offset - s->periods[i].base, place, &consumed);
        if (r != HLS_PAST_END)
            return r;
        if (i + 1 < s->period_count && !s->periods[i + 1].base_known)
            session_update_bases(s);
    }
    return HLS_PAST_END;
}

char *session_entry_key(hls_session *s, size_t variant, size_t entry)
{
    hls_variant_state *v = &s->variants[variant];
    hls_entry e;
    hls_layout_entry(v->layout, entry, &e);
    char *made = NULL;
    const char *uri;
    hls_byterange r;
    if (e.kind == HLS_ENTRY_INIT) {
        uri = v->pl->media.maps[e.map].uri;
        r = v->pl->media.maps[e.map].range;
    } else {
        uri = made = hls_media_segment_uri(&v->pl->media, e.segment);
        r = hls_media_segment(&v->pl->media, e.segment).range;
        if (uri == NULL)
            return NULL;
    }
    char *key = r.present
                    ? platform_printf_new("%s#bytes=%llu-%llu", uri, (unsigned long long)r.offset,
                                          (unsigned long long)(r.offset + r.length - 1))
                    : platform_printf_new("%s", uri);
    platform_free(made);
    return key;
}

void session_entry_name(hls_session *s, size_t variant, size_t entry, char *buf, size_t size)
{
    hls_entry e;
    hls_layout_entry(s->variants[variant].layout, entry, &e);
    char *key = session_entry_key(s, variant, entry);
    char shown[PLATFORM_SHOWN_MAX];
    platform_excerpt(key ? key : "?", shown, sizeof shown);
    platform_free(key);
    if (e.kind == HLS_ENTRY_INIT)
        snprintf(buf, size, "init section (%s) of variant %zu", shown, variant);
    else
        snprintf(buf, size, "segment %zu (%s) of variant %zu", e.segment, shown, variant);
}

kth_status session_set_entry_size(hls_session *s, size_t variant, size_t entry, uint64_t size)
{
    hls_variant_state *v = &s->variants[variant];
    kth_status st = hls_layout_set_size(v->layout, entry, size);
    if (st == KTH_ERR_CHANGED) {
        char name[HLS_ERR_MAX];
        session_entry_name(s, variant, entry, name, sizeof name);
        session_fail_locked(s, KTH_ERR_CHANGED, "%s: its size changed to %llu bytes", name,
                            (unsigned long long)size);
        return st;
    }
    hls_slot *slot = session_slot(v, entry);
    if (st == KTH_OK && slot->res && !storage_resource_length(slot->storage, NULL))
        cache_resource_set_length(slot->res, size);
    session_update_bases(s);
    return st;
}

kth_status session_open_slot(hls_session *s, size_t variant, size_t entry, char *err, size_t errlen)
{
    if (make_slot_chunk(&s->variants[variant], entry) != KTH_OK) {
        if (err && errlen)
            snprintf(err, errlen, "out of memory opening a cache entry");
        return KTH_ERR_NO_MEMORY;
    }
    hls_slot *slot = session_slot(&s->variants[variant], entry);
    if (slot->res)
        return KTH_OK;
    hls_entry e;
    hls_layout_entry(s->variants[variant].layout, entry, &e);
    if (e.kind == HLS_ENTRY_SEGMENT && e.segment < s->variants[variant].live.released) {
        /* Its bytes left the cache and its URI the model (hls_live_merge), and the server no
         * longer serves it: only a byte seek back leads here. */
        if (err && errlen)
            snprintf(err, errlen,
                     "segment %zu of variant %zu left the live window and was released: the "
                     "server no longer serves it (a time seek goes back within the window)",
                     e.segment, variant);
        return KTH_ERR_NOT_FOUND;
    }
    char *key = session_entry_key(s, variant, entry);
    cache_resource_info info;
    char detail[HLS_ERR_MAX];
    detail[0] = '\0';
    kth_status st = key ? cache_resource_open(s->asset, key, s->offline ? 0 : CACHE_OPEN_CREATE,
                                              &slot->res, &info, detail, sizeof detail)
                        : KTH_ERR_NO_MEMORY;
    platform_free(key);
    if (st != KTH_OK) {
        slot->res = NULL;
        char name[HLS_ERR_MAX];
        session_entry_name(s, variant, entry, name, sizeof name);
        if (err && errlen)
            snprintf(err, errlen, "%s: %s", name, detail[0] ? detail : kth_strerror(st));
        return st;
    }
    if (s->open_count == s->open_cap) {
        size_t cap = s->open_cap ? s->open_cap * 2 : 16;
        hls_open_slot *open = platform_realloc(s->open, cap * sizeof *open);
        if (!open) {
            cache_resource_close(slot->res);
            slot->res = NULL;
            if (err && errlen)
                snprintf(err, errlen, "out of memory opening a cache entry");
            return KTH_ERR_NO_MEMORY;
        }
        s->open = open;
        s->open_cap = cap;
    }
    slot->open_index = s->open_count;
    s->open[s->open_count++] = (hls_open_slot){variant, entry};
    s->variants[variant].chunk_open[entry / HLS_SLOT_CHUNK]++;
    slot->storage = cache_resource_storage(slot->res);
    if (info.length_known) {
        /* A length was recorded only once the plaintext size was certain. */
        st = session_set_entry_size(s, variant, entry, info.length);
        if (st != KTH_OK)
            return st;
    }
    return KTH_OK;
}

void session_close_slot(hls_session *s, size_t variant, size_t entry)
{
    hls_slot *slot = session_slot(&s->variants[variant], entry);
    if (!slot->res || slot->fetching)
        return;
    cache_resource_close(slot->res);
    storage_resource_unref(slot->storage);
    slot->res = NULL;
    slot->storage = NULL;
    hls_open_slot last = s->open[--s->open_count];
    s->open[slot->open_index] = last;
    session_slot(&s->variants[last.variant], last.entry)->open_index = slot->open_index;
    hls_variant_state *v = &s->variants[variant];
    if (--v->chunk_open[entry / HLS_SLOT_CHUNK] == 0) {
        platform_free(v->slot_chunks[entry / HLS_SLOT_CHUNK]); /* what the reader left behind */
        v->slot_chunks[entry / HLS_SLOT_CHUNK] = NULL;
    }
}

void session_fail_locked(hls_session *s, kth_status status, const char *fmt, ...)
{
    if (s->failure != KTH_OK)
        return;
    s->failure = status;
    va_list ap;
    va_start(ap, fmt);
    platform_vexcerptf(s->failure_msg, sizeof s->failure_msg, fmt, ap);
    va_end(ap);
    atomic_fetch_add(&s->wake_epoch, 1);
    if (s->waiting)
        storage_resource_wake_waiters(s->waiting);
}

/* A claim of another stream that the peer waits to end. */
typedef struct hls_watch {
    platform_cancel_waker waker;
    platform_cancel *released; /* reference */
    struct hls_watch *next;
} hls_watch;

static void watch_fired(void *arg)
{
    hls_peer_wake(arg);
}

static void watch_free(hls_watch *w)
{
    platform_cancel_remove_waker(&w->waker);
    platform_cancel_unref(w->released);
    platform_free(w);
}

kth_status session_claim_resource(hls_session *s, const char *name, const void *owner,
                                  cache_resource **res, platform_cancel **released)
{
    *released = NULL;
    if (cache_resource_open(s->asset, name, CACHE_OPEN_CREATE, res, NULL, NULL, 0) != KTH_OK) {
        *res = NULL;
        return KTH_OK;
    }
    kth_status st = cache_resource_claim_writer(*res, owner, released);
    if (st != KTH_OK) {
        cache_resource_close(*res);
        *res = NULL;
    }
    return st;
}

void session_watch_release(hls_session *s, platform_cancel *released)
{
    if (s->unwatched) {
        platform_cancel_unref(released);
        return;
    }
    /* Drop the watches whose claims ended (their wake went out), so the list stays short. */
    for (hls_watch **p = &s->watches; *p;) {
        hls_watch *w = *p;
        if (w->released == released && !platform_cancel_is_cancelled(released)) {
            platform_cancel_unref(released); /* watched already */
            return;
        }
        if (platform_cancel_is_cancelled(w->released)) {
            *p = w->next;
            watch_free(w);
        } else {
            p = &w->next;
        }
    }
    hls_watch *w = platform_calloc(1, sizeof *w);
    if (w && platform_cancel_add_waker(released, &w->waker, watch_fired, s)) {
        w->released = released;
        w->next = s->watches;
        s->watches = w;
        return;
    }
    platform_free(w);
    platform_cancel_unref(released);
    s->rewake = true; /* it ended already (or no memory to watch it): look again */
}

void session_unwatch_all(hls_session *s)
{
    platform_mutex_lock(&s->lock);
    hls_watch *list = s->watches;
    s->watches = NULL;
    s->unwatched = true;
    platform_mutex_unlock(&s->lock);
    while (list) {
        hls_watch *next = list->next;
        watch_free(list);
        list = next;
    }
}

/* Makes room for period number `count` (0-based). Lock held. */
static bool reserve_period(hls_session *s, size_t count)
{
    if (count >= HLS_MAX_PERIODS)
        return false;
    if (count >= s->period_cap) {
        size_t cap = s->period_cap ? s->period_cap * 2 : 4;
        hls_period *periods = platform_realloc(s->periods, cap * sizeof *periods);
        if (!periods)
            return false;
        s->periods = periods;
        s->period_cap = cap;
    }
    return true;
}

bool session_periods_full(const hls_session *s)
{
    return s->period_count >= HLS_MAX_PERIODS;
}

/* True when every segment of period p is one its live variant released. Lock held. */
static bool period_released(const hls_session *s, const hls_period *p)
{
    const hls_variant_state *v = &s->variants[p->variant];
    if (!v->live.tracked || p->end_entry <= p->first_entry)
        return v->live.tracked;
    hls_entry last;
    return hls_layout_entry(v->layout, p->end_entry - 1, &last) == KTH_OK &&
           last.segment < v->live.released;
}

/* Lowers *limit to the period of stream byte `offset`; false when it is not in a period. */
static bool below_period_of(hls_session *s, uint64_t offset, size_t *limit)
{
    hls_place pl;
    hls_locate r = session_locate(s, offset, &pl);
    if (r == HLS_RELEASED)
        return false;
    if (r != HLS_PAST_END && pl.period < *limit)
        *limit = pl.period;
    return true;
}

size_t session_drop_released_periods(hls_session *s)
{
    hls_session_reader *rd = &s->reader;
    size_t limit = rd->period < rd->acked_period ? rd->period : rd->acked_period;
    if (rd->fence_pending && rd->fence_period < limit)
        limit = rd->fence_period;
    if (!below_period_of(s, session_reader_position(s), &limit) ||
        (rd->served_end > 0 && !below_period_of(s, rd->served_end - 1, &limit)))
        return 0;
    size_t k = 0;
    while (k < limit && s->periods[k + 1].base_known &&
           (limit - k > HLS_KEEP_BEHIND || period_released(s, &s->periods[k])))
        k++;
    if (k == 0)
        return 0;
    memmove(s->periods, s->periods + k, (s->period_count - k) * sizeof *s->periods);
    s->period_count -= k;
    rd->period -= k;
    rd->acked_period -= k;
    rd->fence_period = rd->fence_period >= k ? rd->fence_period - k : 0;
    return k;
}

/* True when no byte of entry `entry` of the last period was handed out: the bytes handed out
 * end exactly at its start. Lock held. */
static bool nothing_handed_of(hls_session *s, size_t entry)
{
    hls_place pl;
    hls_locate r = session_locate(s, s->reader.served_end, &pl);
    return (r == HLS_LOCATED || r == HLS_NEED_SIZE) && pl.period == s->period_count - 1 &&
           pl.entry == entry && pl.within == 0 && pl.entry_stream_start == s->reader.served_end;
}

bool session_append_period(hls_session *s, size_t variant, size_t first_segment,
                           size_t prev_end_segment)
{
    if (!reserve_period(s, s->period_count))
        return false;
    hls_layout *l = s->variants[variant].layout;
    size_t seg_entry, init_entry;
    if (hls_layout_entry_of_segment(l, first_segment, &seg_entry, &init_entry) != KTH_OK)
        return false;
    hls_period p = {.variant = variant, .first_segment = first_segment};
    if (init_entry != HLS_NONE && init_entry + 1 == seg_entry) {
        p.prefix_init = HLS_NONE;
        p.first_entry = init_entry; /* the init section already sits in front of it */
    } else {
        p.prefix_init = init_entry;
        p.first_entry = seg_entry;
    }
    p.end_entry = hls_layout_entry_count(l);
    if (s->period_count > 0) {
        /* The previous period ends exactly at the boundary the caller chose in its own
         * variant (never at a boundary found by time in the other one: with segments that are
         * not aligned, that could fall before bytes the reader already has). */
        hls_period *prev = &s->periods[s->period_count - 1];
        const hls_variant_state *pv = &s->variants[prev->variant];
        if (prev_end_segment <= prev->first_segment)
            return false;
        size_t pe, pi, end;
        if (prev_end_segment == hls_layout_segment_count(pv->layout)) {
            end = hls_layout_entry_count(pv->layout); /* all of it (a live variant left) */
        } else if (hls_layout_entry_of_segment(pv->layout, prev_end_segment, &pe, &pi) != KTH_OK) {
            return false;
        } else {
            end = pi != HLS_NONE && pi + 1 == pe ? pi : pe;
        }
        /* The reader is in (or past) an entry of this period at or after the end: too late,
         * unless it is at the start of that very entry, nothing of it handed out. */
        bool cut_at_reader = false;
        if (s->reader.period == s->period_count - 1 && end <= s->reader.entry) {
            if (end < s->reader.entry || !nothing_handed_of(s, end))
                return false;
            cut_at_reader = true;
        }
        prev->end_entry = end;
        if (cut_at_reader) {
            s->reader.cut_generation++;          /* a read that located it goes again, */
            atomic_fetch_add(&s->wake_epoch, 1); /* and one waiting for it looks again */
            if (s->waiting)
                storage_resource_wake_waiters(s->waiting);
        }
    } else {
        p.base_known = true;
        p.base = 0;
    }
    s->periods[s->period_count++] = p;
    session_update_bases(s);
    return true;
}

bool session_drop_periods_after(hls_session *s, size_t index)
{
    const hls_session_reader *rd = &s->reader;
    hls_period *p = &s->periods[index];
    if (rd->period > index || rd->acked_period > index ||
        (rd->fence_pending && rd->fence_period > index) || p->cut)
        return false;
    s->period_count = index + 1;
    p->end_entry = hls_layout_entry_count(s->variants[p->variant].layout);
    session_update_bases(s);
    return true;
}

size_t session_period_end_segment(const hls_session *s, size_t index)
{
    const hls_period *p = &s->periods[index];
    const hls_variant_state *v = &s->variants[p->variant];
    hls_entry e;
    if (p->end_entry >= hls_layout_entry_count(v->layout) ||
        hls_layout_entry(v->layout, p->end_entry, &e) != KTH_OK)
        return hls_layout_segment_count(v->layout);
    return e.segment; /* an init section's is the segment it precedes */
}

bool session_splice(hls_session *s, size_t variant, size_t segment, size_t *index, uint64_t *base)
{
    hls_layout *l = s->variants[variant].layout;
    size_t seg_entry, init_entry;
    if (hls_layout_entry_of_segment(l, segment, &seg_entry, &init_entry) != KTH_OK)
        return false;
    uint64_t at = s->reader.served_end;
    size_t keep = 0;
    hls_place pl = {0};
    if (at > 0) {
        /* The byte before the splice was read, so it is placed: in an entry whose start is
         * known (LOCATED, or NEED_SIZE when that entry's own size is still unknown). */
        hls_locate r = session_locate(s, at - 1, &pl);
        if (r != HLS_LOCATED && r != HLS_NEED_SIZE)
            return false;
        keep = pl.period + 1;
    }
    if (!reserve_period(s, keep))
        return false;
    if (keep > 0) {
        hls_period *cut = &s->periods[pl.period];
        cut->end_entry = pl.entry == cut->prefix_init ? cut->first_entry : pl.entry + 1;
        cut->cut = true;
        cut->cut_length = at - cut->base;
    }
    hls_period p = {.variant = variant,
                    .first_segment = segment,
                    .prefix_init = init_entry,
                    .first_entry = seg_entry,
                    .end_entry = hls_layout_entry_count(l),
                    .base_known = true,
                    .base = at};
    s->periods[keep] = p;
    s->period_count = keep + 1;
    s->reader.splice_generation++;
    s->reader.period = keep;
    s->reader.entry = seg_entry;
    s->reader.acked_period = keep;
    s->reader.fence_pending = false;
    atomic_store(&s->current_variant, variant);
    *index = keep;
    *base = at;
    return true;
}

void session_last_entry_with_bytes(hls_session *s, size_t *variant, size_t *entry)
{
    hls_period *last = &s->periods[s->period_count - 1];
    *variant = last->variant;
    *entry = last->prefix_init != HLS_NONE ? last->prefix_init : last->first_entry;
    for (size_t e = last->end_entry; e-- > last->first_entry;) {
        hls_entry en;
        hls_layout_entry(s->variants[last->variant].layout, e, &en);
        if (en.size > 0 || !en.size_known) {
            *entry = e;
            return;
        }
    }
}

void session_publish(hls_session *s, kth_event_kind kind, int status, const kth_event_abr *abr,
                     const char *fmt, ...)
{
    if (!s->bus)
        return;
    kth_event ev;
    memset(&ev, 0, sizeof ev);
    ev.kind = kind;
    ev.origin = s->origin;
    ev.status = status;
    if (abr)
        ev.payload.abr = *abr;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ev.text, sizeof ev.text, fmt, ap);
    va_end(ap);
    kth_bus_publish(s->bus, &ev);
}

uint64_t session_reader_position(hls_session *s)
{
    const stream_timeline *t = atomic_load(&s->timeline);
    return t ? stream_timeline_position(t) : 0;
}

void session_attach(hls_session *s)
{
    if (!atomic_load(&s->timeline) && s->base.timeline)
        atomic_store(&s->timeline, s->base.timeline);
}
