/*
 * hls/presentation.h — what to play from a master playlist: the audio ladder.
 *
 * A master lists variant streams, some of which may carry video, and audio renditions. kithara
 * plays audio only, so the ladder it adapts over is, in order of preference:
 *   1. the variants without video (audio-only variants), if the master has any;
 *   2. else the audio renditions (EXT-X-MEDIA TYPE=AUDIO with a URI) the video variants point
 *      to — one rung per distinct rendition playlist;
 *   3. else the video variants themselves (their audio is muxed in), with a warning.
 * Variants whose CODECS names no audio codec kithara knows are skipped with a warning; a
 * variant without CODECS is kept (many audio-only masters omit it).
 *
 * Rungs are sorted by bandwidth, ascending. A rung made from a rendition has no bandwidth of
 * its own in the playlist; it takes the lowest (average, else peak) bandwidth of the variants
 * that use its group — an upper bound, since those include video — and says so in
 * bandwidth_is_upper_bound.
 *
 * Pure; the result borrows strings from the playlist, which must outlive it.
 */
#ifndef KTH_HLS_PRESENTATION_H
#define KTH_HLS_PRESENTATION_H

#include <kithara/media.h>
#include <kithara/status.h>

#include "hls/playlist.h"

typedef struct hls_rung {
    const char *uri;         /* media playlist URL (borrowed) */
    uint64_t bandwidth;      /* bits per second used for ranking and ABR */
    uint64_t peak_bandwidth; /* BANDWIDTH of the source variant */
    bool bandwidth_is_upper_bound;
    kth_codec codec;                /* the first audio codec named, or UNKNOWN */
    size_t variant;                 /* index in the master's variants (for a rendition: the first
                                       variant using its group) */
    const hls_rendition *rendition; /* the rendition played, or NULL */
} hls_rung;

typedef struct hls_ladder {
    hls_rung *rungs; /* ascending bandwidth */
    size_t count;
} hls_ladder;

/* Receives one sentence per skipped or tolerated item. */
typedef void (*hls_warn_fn)(const char *message, void *user);

/* Builds the ladder of a master playlist. Returns KTH_ERR_UNSUPPORTED (with a sentence in err)
 * when nothing playable remains, KTH_ERR_INVALID_ARG for a media playlist, KTH_ERR_NO_MEMORY. */
kth_status hls_ladder_from_master(const hls_playlist *master, hls_ladder *out, hls_warn_fn warn,
                                  void *user, char *err, size_t errlen);

/* A one-rung ladder for a media playlist fetched from `url` (borrowed). */
kth_status hls_ladder_single(const char *url, hls_ladder *out);

void hls_ladder_free(hls_ladder *ladder);

#endif
