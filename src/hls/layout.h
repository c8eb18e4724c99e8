/*
 * hls/layout.h — the virtual byte space of one HLS variant.
 *
 * A decoder reads a variant as if it were one file: the bytes of its init section (EXT-X-MAP)
 * followed by segment 0, segment 1, …, all decrypted. When the init section changes between
 * segments (a new EXT-X-MAP after a discontinuity), the new init bytes sit in front of the first
 * segment that uses it, exactly where a file made by concatenation would have them.
 *
 * The layout is a list of entries (an init section or a segment) with their plaintext sizes,
 * which arrive over time (EXT-X-BYTERANGE of clear segments at once; Content-Length or a
 * finished download otherwise). An entry's offset is known once every size before it is
 * known, and never changes afterwards: a second, different size for an entry is refused
 * (KTH_ERR_CHANGED), so byte offsets handed out keep their meaning.
 *
 * A live playlist's layout is open: reloads append segments (hls_layout_grow), never changing
 * an entry that exists, and its length stays unknown until it is closed (the playlist ended).
 *
 * Thread-safety: every function may be called from any thread; an internal leaf lock guards
 * the sizes and the entries. The playlist the layout was built from (or last grown with) must
 * outlive it.
 */
#ifndef KTH_HLS_LAYOUT_H
#define KTH_HLS_LAYOUT_H

#include <kithara/status.h>

#include "hls/playlist.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct hls_layout hls_layout;

typedef enum hls_entry_kind {
    HLS_ENTRY_INIT = 1,    /* an init section (EXT-X-MAP) */
    HLS_ENTRY_SEGMENT = 2, /* a media segment */
} hls_entry_kind;

typedef struct hls_entry {
    hls_entry_kind kind;
    size_t segment; /* SEGMENT: index into the playlist's segments; INIT: the segment it
                       precedes */
    size_t map;     /* INIT: index into the playlist's maps; SEGMENT: its map or HLS_NONE */
    bool size_known;
    uint64_t size; /* plaintext bytes, when size_known */
    bool offset_known;
    uint64_t offset; /* first byte in the variant's space, when offset_known */
    double start;    /* seconds: the segment's start (INIT: that of the segment it precedes) */
    double duration; /* seconds (INIT: 0) */
} hls_entry;

/* Builds the layout of a media playlist. Sizes known from the playlist alone are filled in:
 * byte ranges of clear segments and init sections, and 0 for EXT-X-GAP segments (never
 * fetched). Returns KTH_ERR_INVALID_ARG for a playlist that is not a media playlist or has no
 * segments, KTH_ERR_NO_MEMORY (also for more than 2^31 entries). The layout costs nothing per
 * segment until some size is known, then 4.25 bytes (a 32-bit size, and a prefix offset for
 * every 32 entries), and 12 more with init sections (index maps); the rest of an entry is read
 * from the playlist. */
kth_status hls_layout_new(const hls_playlist *media, hls_layout **out);
void hls_layout_free(hls_layout *layout);

/* Appends the segments of `media` past the ones the layout has: `media` is the playlist the
 * layout was built from, or last grown with, with segments added at its end (its first
 * segments and their keys and maps are those already laid out). From now on the layout reads
 * `media`, which must outlive it. KTH_ERR_INVALID_ARG when media is not a media playlist or
 * has fewer segments; KTH_ERR_NO_MEMORY (the layout is unchanged but may have grown its
 * arrays). */
kth_status hls_layout_grow(hls_layout *layout, const hls_playlist *media);
/* Marks the layout open (more segments may come: no end, no total length) or closed. */
void hls_layout_set_open(hls_layout *layout, bool open);
bool hls_layout_is_open(hls_layout *layout);

size_t hls_layout_entry_count(hls_layout *layout);
size_t hls_layout_segment_count(hls_layout *layout);
double hls_layout_total_duration(hls_layout *layout);

/* Copies entry `index` into *entry. KTH_ERR_OUT_OF_RANGE past the end. */
kth_status hls_layout_entry(hls_layout *layout, size_t index, hls_entry *entry);

/* The entry of segment `segment`, and the init entry in force for it (HLS_NONE when the
 * segment has no init section). KTH_ERR_OUT_OF_RANGE past the end. */
kth_status hls_layout_entry_of_segment(hls_layout *layout, size_t segment, size_t *entry,
                                       size_t *init_entry);

/* Records the plaintext size of entry `index`. The same size again is accepted; a different one
 * is KTH_ERR_CHANGED (the layout keeps the first). KTH_ERR_OUT_OF_RANGE for a bad index,
 * KTH_ERR_INVALID_ARG for a size of UINT64_MAX (no resource is that long), KTH_ERR_NO_MEMORY
 * when the first size known makes the layout allocate its sizes (nothing is recorded then). */
kth_status hls_layout_set_size(hls_layout *layout, size_t index, uint64_t size);

/* The entry holding byte `offset` and the offset within it. KTH_OK; KTH_ERR_OUT_OF_RANGE when
 * the offset is at or past the (known) end of the space (an open layout has none: past its
 * last entry it is KTH_ERR_RETRY with *entry = the entry count); KTH_ERR_RETRY when a size before
 * the offset is still unknown, with *entry set to the first entry whose size is needed. Zero-size
 * entries never hold a byte. */
kth_status hls_layout_locate(hls_layout *layout, uint64_t offset, size_t *entry, uint64_t *within);

/* The segment containing time `seconds` (clamped to [0, total duration]); the last segment at
 * or past the end. */
size_t hls_layout_segment_at_time(hls_layout *layout, double seconds);

/* The segment whose start time is nearest `seconds` (the earlier of two equally near): where a
 * new variant picks up at a switch made at a boundary at `seconds` of another variant. When
 * the two variants' segments are not aligned in time, this repeats or skips less than half a
 * segment of media, where the segment containing `seconds` could repeat almost a whole one. */
size_t hls_layout_segment_nearest_start(hls_layout *layout, double seconds);

/* True and *length set when every size is known. */
bool hls_layout_total_length(hls_layout *layout, uint64_t *length);

/* The first entry before `index` (exclusive) whose size is unknown, or HLS_NONE. */
size_t hls_layout_first_unknown_before(hls_layout *layout, size_t index);

#endif
