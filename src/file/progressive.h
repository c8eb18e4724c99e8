/*
 * file/progressive.h — the source of a single media file over HTTP (a progressive download).
 *
 * The file's bytes live in one resource of the asset cache, keyed by its URL. Reading starts
 * as soon as the first bytes land; one download runs at a time per file and follows the
 * readers: it starts at the first missing byte at or after a reader, runs at most
 * `readahead_bytes` ahead of the furthest-behind reader that needs it, pauses beyond that, and
 * after a seek past what has arrived moves to the new position at once (urgent), leaving the
 * gaps it skipped for later. When everything ahead is present, gaps behind are filled, so a
 * file played once plays again offline.
 *
 * Every stream of the same URL and cache in a process shares one of these downloads (one
 * writer); each stream is a reader of the shared resource.
 *
 * Validation: the response's ETag/Last-Modified are compared with those of the bytes already
 * cached; on a mismatch the cached bytes are dropped and the file is fetched anew, never
 * spliced. A stream that already handed out bytes of the old version then fails with
 * KTH_ERR_CHANGED; one that had not read anything continues transparently.
 *
 * A complete cached file is served without touching the network (no revalidation).
 *
 * Internet radio: a whole-file request asks for ICY metadata (Icy-MetaData: 1). An answer
 * with icy-metaint, or one without a length that carries icy-name or icy-br, is a radio stream,
 * not a file: from then
 * on the bytes go to a bounded in-memory window (radio.h) instead of the cache, the metadata
 * blocks are taken out and published as RADIO_TITLE / RADIO_URL events on each reader's bus, a
 * dropped connection is reconnected (at once, then with jittered back-off up to 30 s on the
 * downloader's clock) behind a fence, and length, SEEK_END and time seeks answer
 * KTH_ERR_UNSUPPORTED.
 */
#ifndef KTH_FILE_PROGRESSIVE_H
#define KTH_FILE_PROGRESSIVE_H

#include <kithara/cache.h>
#include <kithara/downloader.h>

#include "stream/source.h"

typedef struct file_source_options {
    kth_downloader *downloader; /* required unless the cache is offline */
    kth_cache *cache;           /* required */
    uint64_t readahead_bytes;   /* 0: 16 MiB; for radio, the window kept (0: 2 MiB) */
    kth_bus *bus;               /* where this reader's radio events go (borrowed); may be NULL */
} file_source_options;

/* Creates a source reading `url` (http or https). Offline, a URL the cache does not hold fails
 * here with KTH_ERR_OFFLINE_MISS. Errors: KTH_ERR_INVALID_ARG, KTH_ERR_NO_MEMORY, KTH_ERR_IO
 * (the cache), KTH_ERR_OFFLINE_MISS; err receives a sentence. Any thread. */
kth_status file_source_new(const char *url, const file_source_options *opts, stream_source **out,
                           char *err, size_t errlen);

#endif
