/*
 * file/radio.h — the byte window of an internet radio stream (Icecast/SHOUTcast).
 *
 * An endless response (no length, icy-* headers) is not a file: nothing of it goes to the cache,
 * and nothing is asked for by range. The feed keeps only the most recent `window` bytes of audio
 * in memory, with the ICY metadata blocks taken out (icy.h), so memory stays bounded however long
 * the stream plays. Stream offsets count audio bytes from the first connection on; they never
 * change meaning. When a connection drops, the next one's bytes continue at the next offset
 * behind a join: a reader meets it as a fence (KTH_PENDING_VARIANT_CHANGE) and clears it with
 * kth_stream_clear_variant_fence, since the bytes before and after are not one stream.
 *
 * Threads: the writer functions run on the downloader's thread (one connection at a time); the
 * reader functions on the stream's reader thread; wake, media info, window and last error on
 * any thread. feed.lock is a leaf; the publisher is called without it.
 */
#ifndef KTH_FILE_RADIO_H
#define KTH_FILE_RADIO_H

#include <kithara/events.h>
#include <kithara/media.h>

#include "net/downloader.h"
#include "stream/source.h"

typedef struct radio_feed radio_feed;

/* Receives the feed's events (RADIO_*), on the downloader's thread, no feed lock held. */
typedef void (*radio_publish_fn)(void *user, const kth_event *ev);

/* Back-off between attempts that bring no audio: the first comes at once, then full jitter up
 * to this cap. */
#define RADIO_BACKOFF_BASE_NS ((int64_t)500 * 1000000)
#define RADIO_BACKOFF_CAP_NS  ((int64_t)30 * 1000000000)

/* True when a response is a radio stream: a whole-body answer with an icy-metaint header (its
 * body interleaves metadata, so it cannot be cached as a file even when it has a length), or
 * one without a length that carries an icy-name or icy-br header. */
bool radio_response_is_radio(const net_response *resp);

/* Creates a feed that keeps `window` bytes (at least 64 KiB). `url` is copied for messages.
 * Returns KTH_ERR_NO_MEMORY or KTH_OK. */
kth_status radio_feed_new(const char *url, uint64_t window, radio_publish_fn publish, void *user,
                          radio_feed **out);
void radio_feed_free(radio_feed *f);

/* --- writer side (downloader thread) --- */

/* A connection answered (`resp`, a radio response): its station headers become the media info,
 * its icy-metaint frames what follows; from the second connection on, a join is placed at the
 * current end and RADIO_RECONNECTED published. */
kth_status radio_feed_connected(radio_feed *f, const net_response *resp);

/* The raw body of the current connection, in order. */
kth_status radio_feed_body(radio_feed *f, const void *data, size_t n);

/* The current connection (or an attempt) ended with `status`. Returns true with the delay before
 * the next attempt (0 after a connection that brought audio, then jittered back-off up to
 * 30 s), or, for a failure that no retry can cure (404, 410, a page that is not audio), fails
 * the feed and returns false. *ev receives the RADIO_DROPPED event, for the caller to publish
 * (radio_feed_publish) once the next attempt is scheduled, so that whoever sees the event sees
 * the schedule too. */
bool radio_feed_dropped(radio_feed *f, kth_status status, const char *message, int64_t *delay_ns,
                        kth_event *ev);

/* Publishes an event through the feed's publisher. */
void radio_feed_publish(radio_feed *f, const kth_event *ev);

/* --- reader side --- */

/* One reader's fences: the joins it has cleared. */
typedef struct radio_reader {
    uint64_t cleared;   /* joins at or below this offset are cleared */
    bool fence_pending; /* a read met the join at `pending` */
    uint64_t pending;
} radio_reader;

/* Waits until the byte at `start` is present, the feed fails, or ctx ends the wait. */
source_wait radio_feed_wait(radio_feed *f, uint64_t start, const stream_wait_ctx *ctx,
                            kth_status *status);

/* Copies bytes at `offset` (up to the next join the reader has not cleared). A read at such a
 * join: PENDING VARIANT_CHANGE. Past the end: PENDING NOT_READY, or ERROR once the feed failed.
 * Before the window: ERROR KTH_ERR_UNSUPPORTED (the reader fell behind what is kept, or seeked
 * there: only the window can be read again). */
source_read radio_feed_read(radio_feed *f, radio_reader *r, uint64_t offset, void *buf, size_t n);

/* Wakes readers blocked in radio_feed_wait so they re-check their epoch and token. */
void radio_feed_wake(radio_feed *f);

/* The bytes kept now: [*start, *end). */
void radio_feed_window(radio_feed *f, uint64_t *start, uint64_t *end);

/* Fills the radio fields of *info (and container, codec, bitrate where the first bytes or the
 * headers say). */
void radio_feed_media_info(radio_feed *f, kth_media_info *info);

/* The last failure or fall-behind, snprintf-style. */
size_t radio_feed_last_error(radio_feed *f, char *buf, size_t size);

#endif
