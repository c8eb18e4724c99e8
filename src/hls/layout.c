/*
 * layout.c — entries of a variant's byte space, their sizes and prefix offsets.
 *
 * Lock: layout->lock is a leaf; it guards sizes and the prefix. Invariant: entries
 * [0, known_prefix) all have known sizes, prefix_end is the sum of their sizes, and
 * marks[k] = the sum of the sizes before entry k * MARK_EVERY, for k * MARK_EVERY <=
 * known_prefix; marks beyond are not meaningful yet. An entry's offset is its mark plus the
 * sizes between (fewer than MARK_EVERY).
 */
#include "hls/layout.h"

#include "platform/sync.h"
#include "platform/mem.h"

#include <stdlib.h>
#include <string.h>

/* An entry costs 4.25 bytes once some entry's size is known: its size in 32 bits, and a prefix
 * offset (a mark) for every MARK_EVERY entries; until then (a variant that has not been
 * played) nothing. A size of 4 GiB or more goes to a side list (a playlist whose segments are
 * that large has few). While no segment has an init section, entry i is segment i and that is
 * all; once one has, the index maps between entries and segments are kept too (4 more bytes
 * per entry, 8 per segment). Everything else an hls_entry says is read from the playlist's
 * segment. */
#define SIZE_UNKNOWN UINT64_MAX
#define SIZE32_NONE  UINT32_MAX       /* in sizes: unknown */
#define SIZE32_BIG   (UINT32_MAX - 1) /* in sizes: in the side list */
#define MARK_SHIFT   5
#define MARK_EVERY   ((size_t)1 << MARK_SHIFT)
#define ENTRY_INIT   UINT32_C(0x80000000) /* in entry_segment: the entry is an init section */
#define INDEX_NONE   UINT32_MAX           /* in segment_init: no init section */
#define MAX_INDEX    (ENTRY_INIT - 1)     /* entries and segments are counted below this */

struct hls_layout {
    platform_mutex lock; /* leaf */
    const hls_media_playlist *media;
    size_t count, cap;   /* entries */
    bool sized;          /* some size is known: sizes and marks are kept */
    uint32_t *sizes;     /* per entry: plaintext bytes, SIZE32_NONE or SIZE32_BIG */
    uint64_t *marks;     /* cap / MARK_EVERY + 1 prefix sums, valid up to known_prefix */
    uint64_t prefix_end; /* the sum of the sizes of entries [0, known_prefix) */
    struct big_size {
        size_t index;
        uint64_t size;
    } * bigs; /* the sizes of SIZE32_BIG entries, in the order they came */
    size_t big_count, big_cap;
    size_t segment_count, segment_cap;
    bool mapped;             /* some entry is an init section: the three maps below are kept */
    uint32_t *entry_segment; /* per entry: its segment (INIT: the one it precedes) | ENTRY_INIT */
    uint32_t *segment_entry; /* segment index -> entry index */
    uint32_t *segment_init;  /* segment index -> init entry index or INDEX_NONE */
    size_t known_prefix;
    size_t current_map, current_init; /* of the last segment added */
    bool open;                        /* a live playlist: more segments may come */
};

static size_t marks_for(size_t entries)
{
    return (entries >> MARK_SHIFT) + 1;
}

static uint64_t size_of(const hls_layout *l, size_t index)
{
    uint32_t s = l->sized ? l->sizes[index] : SIZE32_NONE;
    if (s == SIZE32_NONE)
        return SIZE_UNKNOWN;
    if (s != SIZE32_BIG)
        return s;
    for (size_t i = 0; i < l->big_count; i++)
        if (l->bigs[i].index == index)
            return l->bigs[i].size;
    return SIZE_UNKNOWN; /* not reached: a BIG entry is always listed */
}

/* The offset of entry `index` <= known_prefix. Lock held. */
static uint64_t offset_of(const hls_layout *l, size_t index)
{
    if (index == l->known_prefix)
        return l->prefix_end;
    uint64_t offset = l->marks[index >> MARK_SHIFT];
    for (size_t i = index & ~(MARK_EVERY - 1); i < index; i++)
        offset += size_of(l, i);
    return offset;
}

/* Extends the known prefix over entries whose sizes are now known. Lock held. */
static void extend_prefix(hls_layout *l)
{
    while (l->sized && l->known_prefix < l->count) {
        uint64_t size = size_of(l, l->known_prefix);
        uint64_t next = l->prefix_end + size;
        if (size == SIZE_UNKNOWN || next < l->prefix_end)
            break; /* unknown; or overflow: leave the rest unknown rather than wrap */
        l->prefix_end = next;
        if (++l->known_prefix % MARK_EVERY == 0)
            l->marks[l->known_prefix >> MARK_SHIFT] = next;
    }
}

/* The entries a playlist's segments [from, to) add to a layout whose last map is `map`: one per
 * segment, and one per change of init section. */
static size_t entries_needed(const hls_media_playlist *m, size_t from, size_t to, size_t map)
{
    size_t n = 0;
    for (size_t i = from; i < to; i++) {
        if (hls_media_segment(m, i).map != map && hls_media_segment(m, i).map != HLS_NONE)
            n++;
        map = hls_media_segment(m, i).map;
        n++;
    }
    return n;
}

/* Makes room for `segments` segments and `entries` entries, growing by at least half so that a
 * live playlist's reloads cost amortized constant time. Lock held. */
static bool reserve(hls_layout *l, size_t segments, size_t entries)
{
    if (segments > MAX_INDEX || entries > MAX_INDEX)
        return false;
    if (!l->mapped) {
        l->segment_cap = segments > l->segment_cap ? segments : l->segment_cap;
    } else if (segments > l->segment_cap) {
        size_t n = segments < l->segment_cap + l->segment_cap / 2
                       ? l->segment_cap + l->segment_cap / 2
                       : segments;
        uint32_t *se = platform_realloc(l->segment_entry, n * sizeof *se);
        if (se)
            l->segment_entry = se;
        uint32_t *si = se ? platform_realloc(l->segment_init, n * sizeof *si) : NULL;
        if (!si)
            return false;
        l->segment_init = si;
        l->segment_cap = n;
    }
    if (entries > l->cap) {
        size_t n = entries < l->cap + l->cap / 2 ? l->cap + l->cap / 2 : entries;
        uint32_t *sizes = l->sized ? platform_realloc(l->sizes, n * sizeof *sizes) : NULL;
        if (sizes)
            l->sizes = sizes;
        uint64_t *marks = sizes ? platform_realloc(l->marks, marks_for(n) * sizeof *marks) : NULL;
        if (marks)
            l->marks = marks;
        uint32_t *es = l->mapped ? platform_realloc(l->entry_segment, n * sizeof *es) : NULL;
        if (es)
            l->entry_segment = es;
        if ((l->sized && !marks) || (l->mapped && !es))
            return false;
        l->cap = n;
    }
    return true;
}

/* Starts keeping sizes and marks, all unknown so far, for the room reserved. Lock held. */
static bool start_sizes(hls_layout *l)
{
    size_t cap = l->cap > 0 ? l->cap : 1;
    l->sizes = platform_malloc(cap * sizeof *l->sizes);
    l->marks = platform_malloc(marks_for(cap) * sizeof *l->marks);
    if (!l->sizes || !l->marks) {
        platform_free(l->sizes);
        platform_free(l->marks);
        l->sizes = NULL;
        l->marks = NULL;
        return false;
    }
    for (size_t i = 0; i < l->count; i++)
        l->sizes[i] = SIZE32_NONE;
    l->marks[0] = 0;
    l->sized = true;
    return true;
}

/* Makes room in the side list for `more` sizes of 4 GiB or more. Lock held. */
static bool reserve_bigs(hls_layout *l, size_t more)
{
    if (more <= l->big_cap - l->big_count)
        return true;
    size_t n = l->big_count + more;
    n = n < 2 * l->big_cap ? 2 * l->big_cap : n;
    struct big_size *bigs = platform_realloc(l->bigs, n * sizeof *bigs);
    if (!bigs)
        return false;
    l->bigs = bigs;
    l->big_cap = n;
    return true;
}

/* Whether a segment from `from` on, or its init section, has a size known from the playlist
 * (a gap, or a clear byte range); *bigs counts those of 4 GiB or more (an upper bound: an init
 * section counts at each of its segments). */
static bool knows_a_size(const hls_media_playlist *m, size_t from, size_t *bigs)
{
    bool known = false;
    for (size_t i = from; i < m->segment_count; i++) {
        hls_segment seg = hls_media_segment(m, i);
        bool clear = seg.range.present && seg.key == HLS_NONE;
        const hls_map *map = seg.map != HLS_NONE ? &m->maps[seg.map] : NULL;
        bool map_clear = map && map->range.present && map->key == HLS_NONE;
        known |= seg.gap || clear || map_clear;
        *bigs += (clear && seg.range.length >= SIZE32_BIG) +
                 (map_clear && map->range.length >= SIZE32_BIG);
    }
    return known;
}

/* Records the size of entry `index` (< cap), SIZE_UNKNOWN included, over an unknown one. Lock
 * held. False when out of memory (only when no size was kept yet, or a size of 4 GiB or more
 * finds no room reserved). */
static bool put_size(hls_layout *l, size_t index, uint64_t size)
{
    if (!l->sized && (size == SIZE_UNKNOWN || !start_sizes(l)))
        return size == SIZE_UNKNOWN;
    if (size == SIZE_UNKNOWN) {
        l->sizes[index] = SIZE32_NONE;
    } else if (size < SIZE32_BIG) {
        l->sizes[index] = (uint32_t)size;
    } else {
        if (!reserve_bigs(l, 1))
            return false;
        l->bigs[l->big_count++] = (struct big_size){index, size};
        l->sizes[index] = SIZE32_BIG;
    }
    return true;
}

/* Starts keeping the index maps, as identities over what is there (a live playlist whose
 * reload brings the first init section). Lock held. */
static bool start_maps(hls_layout *l)
{
    size_t segments = l->segment_cap > 0 ? l->segment_cap : 1, entries = l->cap > 0 ? l->cap : 1;
    l->segment_entry = platform_malloc(segments * sizeof *l->segment_entry);
    l->segment_init = platform_malloc(segments * sizeof *l->segment_init);
    l->entry_segment = platform_malloc(entries * sizeof *l->entry_segment);
    if (!l->segment_entry || !l->segment_init || !l->entry_segment) {
        platform_free(l->segment_entry);
        platform_free(l->segment_init);
        platform_free(l->entry_segment);
        l->segment_entry = l->segment_init = l->entry_segment = NULL;
        return false;
    }
    for (size_t i = 0; i < l->count; i++) {
        l->segment_entry[i] = l->entry_segment[i] = (uint32_t)i;
        l->segment_init[i] = INDEX_NONE;
    }
    l->mapped = true;
    return true;
}

/* Adds segment i of the playlist (and the init entry in front of it when its map changes).
 * Lock held; room reserved, and sizes kept when the playlist knows one (knows_a_size), so that
 * it cannot fail. */
static void add_segment(hls_layout *l, const hls_media_playlist *m, size_t i)
{
    const hls_segment seg_seg = hls_media_segment(m, i), *seg = &seg_seg;
    uint64_t size = SIZE_UNKNOWN;
    if (seg->gap)
        size = 0;
    else if (seg->range.present && seg->key == HLS_NONE)
        size = seg->range.length;
    if (!l->mapped) {
        put_size(l, l->count++, size);
        l->segment_count = i + 1;
        return;
    }
    if (seg->map != l->current_map) {
        l->current_map = seg->map;
        l->current_init = HLS_NONE;
        if (seg->map != HLS_NONE) {
            const hls_map *map = &m->maps[seg->map];
            /* An encrypted init section's plaintext size is known only once decrypted. */
            bool known = map->range.present && map->key == HLS_NONE;
            put_size(l, l->count, known ? map->range.length : SIZE_UNKNOWN);
            l->entry_segment[l->count] = (uint32_t)i | ENTRY_INIT;
            l->current_init = l->count++;
        }
    }
    put_size(l, l->count, size);
    l->entry_segment[l->count] = (uint32_t)i;
    l->segment_init[i] = l->current_init == HLS_NONE ? INDEX_NONE : (uint32_t)l->current_init;
    l->segment_entry[i] = (uint32_t)l->count++;
    l->segment_count = i + 1;
}

kth_status hls_layout_new(const hls_playlist *pl, hls_layout **out)
{
    if (!pl || !out || pl->kind != HLS_PLAYLIST_MEDIA || pl->media.segment_count == 0)
        return KTH_ERR_INVALID_ARG;
    const hls_media_playlist *m = &pl->media;
    hls_layout *l = platform_calloc(1, sizeof *l);
    if (!l)
        return KTH_ERR_NO_MEMORY;
    size_t entries = entries_needed(m, 0, m->segment_count, HLS_NONE);
    l->mapped = entries != m->segment_count;
    if (!reserve(l, m->segment_count, entries) || platform_mutex_init(&l->lock) != KTH_OK) {
        platform_free(l->entry_segment);
        platform_free(l->segment_entry);
        platform_free(l->segment_init);
        platform_free(l);
        return KTH_ERR_NO_MEMORY;
    }
    l->media = m;
    l->current_map = l->current_init = HLS_NONE;
    size_t bigs = 0;
    if (knows_a_size(m, 0, &bigs) && (!start_sizes(l) || !reserve_bigs(l, bigs))) {
        hls_layout_free(l);
        return KTH_ERR_NO_MEMORY;
    }
    for (size_t i = 0; i < m->segment_count; i++)
        add_segment(l, m, i);
    extend_prefix(l);
    *out = l;
    return KTH_OK;
}

kth_status hls_layout_grow(hls_layout *l, const hls_playlist *pl)
{
    const hls_media_playlist *m = &pl->media;
    platform_mutex_lock(&l->lock);
    kth_status st = KTH_OK;
    size_t added = 0;
    if (pl->kind != HLS_PLAYLIST_MEDIA || m->segment_count < l->segment_count)
        st = KTH_ERR_INVALID_ARG;
    else
        added = entries_needed(m, l->segment_count, m->segment_count, l->current_map);
    if (st == KTH_OK && !l->mapped && added != m->segment_count - l->segment_count &&
        !start_maps(l))
        st = KTH_ERR_NO_MEMORY;
    if (st == KTH_OK && !reserve(l, m->segment_count, l->count + added))
        st = KTH_ERR_NO_MEMORY;
    /* Sizes first: with room for them taken, adding segments cannot fail half way. */
    size_t bigs = 0;
    bool knows = st == KTH_OK && knows_a_size(m, l->segment_count, &bigs);
    if (knows && ((!l->sized && !start_sizes(l)) || !reserve_bigs(l, bigs)))
        st = KTH_ERR_NO_MEMORY;
    if (st == KTH_OK) {
        for (size_t i = l->segment_count; i < m->segment_count; i++)
            add_segment(l, m, i);
        l->media = m;
        extend_prefix(l);
    }
    platform_mutex_unlock(&l->lock);
    return st;
}

void hls_layout_set_open(hls_layout *l, bool open)
{
    platform_mutex_lock(&l->lock);
    l->open = open;
    platform_mutex_unlock(&l->lock);
}

bool hls_layout_is_open(hls_layout *l)
{
    platform_mutex_lock(&l->lock);
    bool open = l->open;
    platform_mutex_unlock(&l->lock);
    return open;
}

void hls_layout_free(hls_layout *l)
{
    if (!l)
        return;
    platform_mutex_destroy(&l->lock);
    platform_free(l->sizes);
    platform_free(l->entry_segment);
    platform_free(l->marks);
    platform_free(l->bigs);
    platform_free(l->segment_entry);
    platform_free(l->segment_init);
    platform_free(l);
}

size_t hls_layout_entry_count(hls_layout *l)
{
    platform_mutex_lock(&l->lock);
    size_t n = l->count;
    platform_mutex_unlock(&l->lock);
    return n;
}

size_t hls_layout_segment_count(hls_layout *l)
{
    platform_mutex_lock(&l->lock);
    size_t n = l->segment_count;
    platform_mutex_unlock(&l->lock);
    return n;
}

double hls_layout_total_duration(hls_layout *l)
{
    platform_mutex_lock(&l->lock);
    double d = l->media->total_duration;
    platform_mutex_unlock(&l->lock);
    return d;
}

kth_status hls_layout_entry(hls_layout *l, size_t index, hls_entry *entry)
{
    platform_mutex_lock(&l->lock);
    if (index >= l->count) {
        platform_mutex_unlock(&l->lock);
        return KTH_ERR_OUT_OF_RANGE;
    }
    uint32_t es = l->mapped ? l->entry_segment[index] : (uint32_t)index;
    const hls_segment seg_seg = hls_media_segment(l->media, es & ~ENTRY_INIT), *seg = &seg_seg;
    entry->kind = es & ENTRY_INIT ? HLS_ENTRY_INIT : HLS_ENTRY_SEGMENT;
    entry->segment = es & ~ENTRY_INIT;
    entry->map = seg->map;
    entry->size_known = size_of(l, index) != SIZE_UNKNOWN;
    entry->size = entry->size_known ? size_of(l, index) : 0;
    entry->start = seg->start;
    entry->duration = es & ENTRY_INIT ? 0 : seg->duration;
    entry->offset_known = index <= l->known_prefix;
    entry->offset = entry->offset_known && l->sized ? offset_of(l, index) : 0;
    platform_mutex_unlock(&l->lock);
    return KTH_OK;
}

kth_status hls_layout_entry_of_segment(hls_layout *l, size_t segment, size_t *entry,
                                       size_t *init_entry)
{
    platform_mutex_lock(&l->lock);
    bool in = segment < l->segment_count;
    if (in && entry)
        *entry = l->mapped ? l->segment_entry[segment] : segment;
    if (in && init_entry)
        *init_entry = !l->mapped || l->segment_init[segment] == INDEX_NONE
                          ? HLS_NONE
                          : l->segment_init[segment];
    platform_mutex_unlock(&l->lock);
    return in ? KTH_OK : KTH_ERR_OUT_OF_RANGE;
}

kth_status hls_layout_set_size(hls_layout *l, size_t index, uint64_t size)
{
    kth_status st = KTH_OK;
    platform_mutex_lock(&l->lock);
    if (index >= l->count) {
        platform_mutex_unlock(&l->lock);
        return KTH_ERR_OUT_OF_RANGE;
    }
    if (size == SIZE_UNKNOWN) {
        st = KTH_ERR_INVALID_ARG;
    } else if (size_of(l, index) != SIZE_UNKNOWN) {
        if (size_of(l, index) != size)
            st = KTH_ERR_CHANGED;
    } else if (!put_size(l, index, size)) {
        st = KTH_ERR_NO_MEMORY;
    } else {
        extend_prefix(l);
    }
    platform_mutex_unlock(&l->lock);
    return st;
}

kth_status hls_layout_locate(hls_layout *l, uint64_t offset, size_t *entry, uint64_t *within)
{
    platform_mutex_lock(&l->lock);
    kth_status st;
    /* Binary search over the marks of the known prefix, then a walk from the last mark at or
     * before `offset` to the entry whose end is past it (it has a size > 0). */
    if (l->known_prefix > 0 && offset < l->prefix_end) {
        size_t lo = 0, hi = (l->known_prefix >> MARK_SHIFT) + 1; /* marks[lo] <= offset */
        while (hi - lo > 1) {
            size_t mid = lo + (hi - lo) / 2;
            if (l->marks[mid] <= offset)
                lo = mid;
            else
                hi = mid;
        }
        size_t i = lo << MARK_SHIFT;
        uint64_t at = l->marks[lo];
        for (uint64_t size; i < l->known_prefix && at + (size = size_of(l, i)) <= offset; i++)
            at += size;
        *entry = i;
        *within = offset - at;
        st = KTH_OK;
    } else if (l->known_prefix == l->count && !l->open) {
        st = KTH_ERR_OUT_OF_RANGE;
    } else {
        *entry = l->known_prefix; /* its size is the next one needed */
        *within = 0;
        st = KTH_ERR_RETRY;
    }
    platform_mutex_unlock(&l->lock);
    return st;
}

/* The first segment whose end is past `seconds`, clamped to the last. Lock held. */
static size_t segment_at_time(const hls_media_playlist *m, double seconds)
{
    if (!(seconds > 0))
        return 0;
    size_t lo = 0, hi = m->segment_count; /* first segment whose end > seconds */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (hls_media_segment(m, mid).start + hls_media_segment(m, mid).duration <= seconds)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < m->segment_count ? lo : m->segment_count - 1;
}

size_t hls_layout_segment_at_time(hls_layout *l, double seconds)
{
    platform_mutex_lock(&l->lock);
    size_t k = segment_at_time(l->media, seconds);
    platform_mutex_unlock(&l->lock);
    return k;
}

size_t hls_layout_segment_nearest_start(hls_layout *l, double seconds)
{
    platform_mutex_lock(&l->lock);
    const hls_media_playlist *m = l->media;
    size_t k = segment_at_time(m, seconds);
    if (k + 1 < m->segment_count &&
        hls_media_segment(m, k + 1).start - seconds < seconds - hls_media_segment(m, k).start)
        k++;
    platform_mutex_unlock(&l->lock);
    return k;
}

bool hls_layout_total_length(hls_layout *l, uint64_t *length)
{
    platform_mutex_lock(&l->lock);
    bool known = l->known_prefix == l->count && !l->open;
    if (known && length)
        *length = l->prefix_end;
    platform_mutex_unlock(&l->lock);
    return known;
}

size_t hls_layout_first_unknown_before(hls_layout *l, size_t index)
{
    platform_mutex_lock(&l->lock);
    size_t r = l->known_prefix < index && l->known_prefix < l->count ? l->known_prefix : HLS_NONE;
    platform_mutex_unlock(&l->lock);
    return r;
}
