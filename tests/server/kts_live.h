/*
 * kts_live.h — a live HLS stream on the test server: a media playlist whose window of segments
 * advances with a clock the test controls (never the wall clock), with the ways real live
 * servers misbehave.
 *
 * At stream time t (milliseconds, set by kts_live_advance), segments 0 .. produced - 1 exist,
 * where produced = window + floor(t / (target_duration * 1000)): one more each target
 * duration (each segment_ms when that is set: segments shorter than the target). The playlist at
 * <dir>/live.m3u8 lists the last `window` of them (all of them for an EVENT stream); segment n is
 * <dir>/seg<n>.ts, `segment_size` bytes of the MPEG-TS-framed pattern of seed + n
 * (kts_ts_synth_check), each lasting target_duration seconds (or segment_ms). A segment that left
 * the window stops being served (404), as on a real server.
 *
 * Modes change that picture from segment `mode_at` on:
 *   KTS_LIVE_STUCK          the playlist stops advancing once mode_at segments exist
 *   KTS_LIVE_ENDLIST        production stops at mode_at segments and the playlist gets
 *                           EXT-X-ENDLIST
 *   KTS_LIVE_RESET          the server restarts once more than mode_at segments exist: media
 *                           sequence numbers start again from 0 for the segments produced
 *                           since, served as <dir>/r<n>.ts with the pattern of seed + 1000000 + n
 *   KTS_LIVE_DISCONTINUITY  EXT-X-DISCONTINUITY before segment mode_at (counted by
 *                           EXT-X-DISCONTINUITY-SEQUENCE once it leaves the window)
 *   KTS_LIVE_DISCONTINUITIES  the same before every segment from mode_at on (a stream that
 *                           breaks its timestamps at each segment, as some ad-stitching
 *                           servers do)
 *
 * Thread-safety: a stream belongs to the test thread; the server serves its bodies from its own
 * threads through kts_add_body and kts_add_ts_synth, which are thread-safe.
 */
#ifndef KTS_LIVE_H
#define KTS_LIVE_H

#include "testserver.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum kts_live_mode {
    KTS_LIVE_NORMAL = 0,
    KTS_LIVE_STUCK,
    KTS_LIVE_ENDLIST,
    KTS_LIVE_RESET,
    KTS_LIVE_DISCONTINUITY,
    KTS_LIVE_DISCONTINUITIES,
} kts_live_mode;

typedef struct kts_live {
    unsigned window;          /* segments listed (> 0) */
    unsigned target_duration; /* seconds (> 0); every segment lasts this long, */
    unsigned segment_ms;      /* or this many milliseconds when not 0 (at most the target) */
    uint64_t segment_size;    /* bytes of each segment (> 0) */
    uint64_t seed;
    bool event; /* EXT-X-PLAYLIST-TYPE:EVENT: nothing leaves the playlist */
    kts_live_mode mode;
    uint64_t mode_at; /* see the file comment */
    /* When not 0: production stops at end_at segments and the playlist gets EXT-X-ENDLIST, in
     * any mode (as KTS_LIVE_ENDLIST does alone). */
    uint64_t end_at;
} kts_live;

typedef struct kts_live_stream kts_live_stream;

/* Serves the stream under `dir` (e.g. "/live", no trailing slash) at stream time 0. Returns
 * KTH_OK, KTH_ERR_INVALID_ARG for a zero window, duration or size or a bad dir,
 * KTH_ERR_NO_MEMORY. The stream must be freed before the server stops. */
int kts_live_start(kts_server *srv, const char *dir, const kts_live *live, kts_live_stream **out);

/* Moves the stream to time `ms` (never backwards): publishes the playlist of that time,
 * serves the segments it lists and forgets those that left it. Returns KTH_OK or the
 * server's status. */
int kts_live_advance(kts_live_stream *ls, int64_t ms);

/* The playlist at stream time `ms` as text into buf (NUL-terminated); returns its length, or
 * 0 when it does not fit. Pure: the text kts_live_advance publishes. */
size_t kts_live_playlist(const kts_live *live, int64_t ms, char *buf, size_t size);

/* The seed of the pattern of the segment named by its media sequence `sequence` in a playlist
 * of epoch `reset` (false: before a KTS_LIVE_RESET restart, true: after). */
uint64_t kts_live_segment_seed(const kts_live *live, uint64_t sequence, bool reset);

/* Stops serving (forgets every body it registered) and frees the stream. NULL is a no-op. */
void kts_live_free(kts_live_stream *ls);

#endif /* KTS_LIVE_H */
