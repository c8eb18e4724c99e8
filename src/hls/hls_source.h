/*
 * hls/hls_source.h — the source of an HLS VOD presentation (master or media playlist URL).
 *
 * Creating the source loads the master playlist and the starting variant's media playlist
 * through the downloader (the other variants' playlists load in the background), validated and
 * stored in the asset cache, so that a presentation played once plays again offline. Segments are
 * then fetched by a downloader peer that follows the reader (see hls_peer.c), into cache resources;
 * the reader reads the variant's virtual byte space (hls/layout.h) through them. kithara/hls.h says
 * how variant switches map onto stream offsets.
 */
#ifndef KTH_HLS_HLS_SOURCE_H
#define KTH_HLS_HLS_SOURCE_H

#include <kithara/cache.h>
#include <kithara/downloader.h>
#include <kithara/events.h>
#include <kithara/hls.h>

#include "stream/source.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct hls_source_options {
    kth_downloader *downloader; /* required unless the cache is offline */
    kth_cache *cache;           /* required */
    kth_bus *bus;               /* may be NULL */
    int64_t timeout_ms;         /* for loading the playlists; <= 0: 60000 */
    kth_hls_options hls;        /* kth_hls_options_init defaults when zeroed */
} hls_source_options;

/* Creates a source for `url` (http or https; master or media playlist). Loads the playlists
 * before returning. Errors: KTH_ERR_INVALID_ARG, KTH_ERR_NO_MEMORY, KTH_ERR_HTTP / NOT_FOUND /
 * NETWORK / FORMAT (the playlist: a sentence with the URL and status in err), KTH_ERR_UNSUPPORTED
 * (SAMPLE-AES, unknown key formats, nothing playable), KTH_ERR_OFFLINE_MISS (also a live
 * playlist offline: it is never cached), KTH_ERR_IO (the cache), KTH_ERR_TIMEOUT. A live or event
 * playlist (no EXT-X-ENDLIST) plays from its live start, its variant fixed, reloaded by the peer
 * (live_reload.c). Any thread but the downloader's. */
kth_status hls_source_new(const char *url, const hls_source_options *opts, stream_source **out,
                          char *err, size_t errlen);

/* True when the URL, Content-Type or first bytes say "HLS playlist": a .m3u8 path, an
 * application/vnd.apple.mpegurl or audio/mpegurl type (x- variants too), or #EXTM3U at the
 * start (after an optional UTF-8 BOM). Any argument may be NULL / 0. */
bool hls_looks_like_playlist(const char *url, const char *content_type, const uint8_t *head,
                             size_t n);

/* True when `src` is an HLS source (for the kithara/hls.h controls). */
bool hls_source_is(const stream_source *src);

#endif
