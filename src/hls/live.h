/*
 * hls/live.h — the rules of a live or event media playlist (RFC 8216 §6.3.3, §6.3.4): what
 * kind of playlist it is, where a client starts, when it reloads, and what a reload means
 * (new segments, the end, a stuck playlist, a server reset, a window that moved past what
 * was listed). Pure functions and a small tracker: no I/O, no clock of their own (times are
 * given in nanoseconds on any monotonic clock), no locks.
 *
 * Segments are identified across reloads by media sequence number: segment i of a playlist
 * has sequence media_sequence + i.
 *
 * Thread-safety: the functions are pure; a tracker belongs to one thread at a time.
 */
#ifndef KTH_HLS_LIVE_H
#define KTH_HLS_LIVE_H

#include "hls/playlist.h"

#include <kithara/status.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum hls_live_kind {
    HLS_LIVE_KIND_VOD = 1,   /* EXT-X-ENDLIST or PLAYLIST-TYPE:VOD: complete */
    HLS_LIVE_KIND_EVENT = 2, /* PLAYLIST-TYPE:EVENT without an end: segments are only added */
    HLS_LIVE_KIND_LIVE = 3,  /* no type, no end: a sliding window */
} hls_live_kind;

/* The kind of a media playlist. */
hls_live_kind hls_live_kind_of(const hls_media_playlist *m);
/* "vod", "event" or "live". */
const char *hls_live_kind_name(hls_live_kind kind);

/* The segment a client starts at, index into the segments of media (media has at least one
 * segment): EXT-X-START of the media playlist, else of the master (may be NULL), at the segment
 * holding that time (a negative offset counts from the end; out-of-range offsets are clamped);
 * else, for a playlist without EXT-X-ENDLIST, the segment holding HOLD-BACK seconds before
 * the end, else three target durations before the end; else 0. The start is always a segment
 * boundary: PRECISE=YES is not honoured inside a segment. */
size_t hls_live_start_segment(const hls_playlist *media, const hls_playlist *master);

/* The live edge of a model that grows: the segment holding HOLD-BACK seconds (else three
 * target durations) before its end, where a player that wants to be live plays from. 0 for an
 * empty model. Unlike hls_live_start_segment it ignores EXT-X-START, whose positive offsets
 * count from a playlist's first segment, not a merged model's. */
size_t hls_live_edge_segment(const hls_media_playlist *m);

/* How long to wait before reloading, from the time the last reload's request started: after a
 * playlist that changed, the target duration or the last segment's duration when shorter;
 * after one that did not change, half the target duration. At least 100 ms, so a playlist that
 * claims a target duration of 0 cannot make the client spin. */
int64_t hls_live_reload_delay_ns(const hls_media_playlist *m, bool changed);

/* What a client knows of a live playlist between reloads. */
typedef struct hls_live_tracker {
    uint64_t next_sequence;   /* sequence of the first segment not taken yet */
    uint64_t window_first;    /* media sequence of the last playlist seen */
    uint64_t target_duration; /* seconds, of the last playlist seen */
    int64_t changed_ns;       /* start of the last request whose answer changed */
    bool ended;               /* EXT-X-ENDLIST seen: no more reloads */
} hls_live_tracker;

/* What one reload brought. Segments to append are those of media at [first_new, first_new +
 * new_count). */
typedef struct hls_live_update {
    size_t first_new, new_count;
    bool changed; /* new segments, or the end, appeared */
    bool ended;   /* EXT-X-ENDLIST: the stream ends after the last segment appended */
    /* Unchanged for more than 3.5 target durations (measured between request starts): the
     * playlist is stuck; nothing is appended. */
    bool stuck;
    /* The media sequence went backwards (the server restarted its stream): nothing listed
     * before is in this playlist. The segments to append start again at the start position;
     * the bytes before and after are not one stream (the reader needs a fence). */
    bool reset;
    /* The window moved past segments that were never listed (reloads too slow): the append
     * starts at the window's first segment and the reader needs a fence at the gap. */
    bool skipped;
    /* Segments whose sequence is below this have left the server's window. */
    uint64_t window_first;
    /* When to reload next (request start + hls_live_reload_delay_ns); meaningless once ended. */
    int64_t next_reload_ns;
} hls_live_update;

/* Starts tracking a playlist of which segments [start_segment, segment_count) are taken (the
 * first playlist, fetched by a request that started at request_ns). *out tells what to append
 * and when to reload, as for hls_live_tracker_update. */
void hls_live_tracker_start(hls_live_tracker *t, const hls_playlist *media, size_t start_segment,
                            int64_t request_ns, hls_live_update *out);

/* Takes in a reloaded playlist whose request started at request_ns and says what it brought.
 * The tracker moves past the segments it tells to append. */
void hls_live_tracker_update(hls_live_tracker *t, const hls_playlist *media, int64_t request_ns,
                             hls_live_update *out);

/* Takes in a reload whose answer is an older copy of what was taken in already (a CDN edge
 * behind the origin; the caller judged it so): as an unchanged playlist, it appends nothing and
 * leaves the window where it was; it reloads after half the target duration, and counts toward
 * a stuck playlist. */
void hls_live_tracker_same(hls_live_tracker *t, int64_t request_ns, hls_live_update *out);

/* The URI a released segment has in a merged model: this prefix and its media sequence number.
 * No cache entry is opened and no fetch is made for it (session_open_slot refuses a released
 * segment), and a fetch of it would fail: no client knows the scheme. */
#define HLS_LIVE_RELEASED_URI "kithara-released:"

/* The playlist a live stream plays from after a reload: the segments of `played` (the playlist
 * the stream played so far, whose segments keep their indices, keys and maps) followed by
 * segments [first, first + count) of `reloaded`, with EXT-X-ENDLIST when `reloaded` has it.
 * `fence` puts a discontinuity in front of the first added segment (a reset or a skipped
 * stretch). Media sequence numbers continue those of `played`. The model is made by writing
 * both out as one playlist and parsing it (every URI is absolute already); `base_url` is any
 * absolute URL.
 * Segments [0, released) of `played` are ones the stream will never fetch again: they keep
 * their times, keys, maps, dates and flags, but not their URIs (each gets
 * HLS_LIVE_RELEASED_URI and its sequence number, which the model holds as one run whatever
 * the server named them), their titles nor their byte ranges (their cache keys were made when
 * they were released). So a day of segments named by a hash or a clock, or cut from one
 * resource by byte ranges, costs the model what numbered ones do. `released` may not exceed
 * played's segment count. Segments an earlier merge released already are copied, not written and
 * parsed again (hls_playlist_parse_after), so a merge costs what the window and the segments not
 * yet released hold, not the stream's age. KTH_OK with *out, or the parser's status with err;
 * KTH_ERR_FORMAT when the result would not keep the played segments as they were;
 * KTH_ERR_INVALID_ARG for counts out of range. Any thread. */
kth_status hls_live_merge(const hls_playlist *played, size_t released, const hls_playlist *reloaded,
                          size_t first, size_t count, bool fence, const char *base_url,
                          hls_playlist **out, char *err, size_t errlen);

/* The same merge with every segment written out and parsed: the model hls_live_merge must
 * equal, for the tests, and the benchmark's reference. */
kth_status hls_live_merge_whole(const hls_playlist *played, size_t released,
                                const hls_playlist *reloaded, size_t first, size_t count,
                                bool fence, const char *base_url, hls_playlist **out, char *err,
                                size_t errlen);

#endif /* KTH_HLS_LIVE_H */
