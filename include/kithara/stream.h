/*
 * kithara/stream.h — the byte stream a decoder reads.
 *
 * A kth_stream behaves like a local file: read bytes, seek to an offset. Behind it, a source
 * (a local file, a progressive HTTP resource or an HLS presentation) makes the bytes available,
 * and reads block until they are.
 *
 * Contract:
 * - Offsets never change meaning. A read returns exactly the bytes at the stream position, or
 *   says why it cannot (pending, end, error) — never wrong bytes.
 * - End of stream is proven, never guessed: a read returns 0 only when the total length is
 *   known and every byte up to it is present.
 * - A time seek may splice the byte space (HLS): see kth_stream_seek_time. Offsets of bytes
 *   already handed out keep their meaning across a splice; offsets past them may not.
 * - Every seek moves the seek epoch. A read blocked in another thread when the seek happens
 *   returns KTH_ERR_SEEK_PENDING promptly, having consumed nothing; the next read continues
 *   from the new position.
 *
 * Threads: one thread reads at a time (the decoder's). kth_stream_seek, kth_stream_cancel and
 * the query functions may be called from any thread, concurrently with a blocked read.
 * kth_stream_close must not race any other call on the same stream: cancel, join the reader,
 * then close.
 */
#ifndef KITHARA_STREAM_H
#define KITHARA_STREAM_H

#include <stdio.h> /* SEEK_SET, SEEK_CUR, SEEK_END */

#include <kithara/cache.h>
#include <kithara/downloader.h>
#include <kithara/events.h>
#include <kithara/media.h>
#include <kithara/status.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct kth_hls_options; /* kithara/hls.h */

#ifdef __cplusplus
extern "C" {
#endif

typedef struct kth_stream kth_stream;

/* kth_stream_options.read_timeout_ms when it is 0. */
#define KTH_STREAM_DEFAULT_READ_TIMEOUT_MS 60000

/* Options. Every field left at zero takes its default, so `kth_stream_options o = {0};` (or
 * kth_stream_options_init) gives a default stream. `size` is sizeof(kth_stream_options) as the
 * caller's header has it (kth_stream_options_init sets it; 0 stands for the fields of version
 * 1, all of those below), so a program built against an older header keeps working when fields
 * are added at the end: what it does not have takes its default. */
typedef struct kth_stream_options {
    size_t size;
    /* How long kth_stream_read and a SEEK_END seek wait for bytes or the length before they
     * give up with KTH_ERR_TIMEOUT. 0: KTH_STREAM_DEFAULT_READ_TIMEOUT_MS; KTH_WAIT_FOREVER
     * (or any value < 0): without limit. (kth_stream_try_read takes its own wait.) */
    int64_t read_timeout_ms;
    /* A bus to publish the stream's events on (borrowed; the stream takes a reference).
     * NULL: no events. */
    kth_bus *bus;
    /* The downloader that fetches remote bytes (borrowed; the stream keeps it alive while
     * open). NULL: kth_downloader_default(). */
    kth_downloader *downloader;
    /* The asset cache the bytes go through (borrowed; kept alive while the stream is open).
     * NULL: kth_cache_default(). Whether the stream may use the network at all is the cache's
     * offline option. */
    kth_cache *cache;
    /* How far ahead of the reader a progressive download runs before it pauses, in bytes.
     * 0: default 16 MiB. For an internet radio stream (which never pauses): the most recent
     * bytes kept in memory, at least 64 KiB; 0: 2 MiB. */
    uint64_t readahead_bytes;
    /* Options for HLS streams (kithara/hls.h), read during kth_stream_open only; the pointed-to
     * struct is not kept. NULL: kth_hls_options_init defaults. Ignored for other streams. */
    const struct kth_hls_options *hls;
} kth_stream_options;

/* Fills *opts with the defaults: all zero but size. Any thread. */
KTH_API void kth_stream_options_init(kth_stream_options *opts);

/* Opens a stream over `url`: a local path or file:// URL (read in place, no cache); an http://
 * or https:// URL of an HLS VOD playlist (a path ending in .m3u8; master or media playlist: the
 * playlists load before this returns; segments are fetched through the downloader into the
 * cache from the first read, seek or manual variant choice on, never before, see
 * kithara/hls.h); or an http(s) URL of a single media file (progressive: fetched
 * through the downloader into the cache; reading starts as soon as the first bytes land). A
 * progressive URL that answers as internet radio (Icecast/SHOUTcast: ICY metadata, or icy-*
 * headers and no length) becomes an endless stream: the metadata is taken out of the bytes and
 * published as KTH_EVENT_RADIO_* events, only a window of recent bytes is kept (in memory, not
 * the cache; a read before it fails with KTH_ERR_UNSUPPORTED), the length stays unknown,
 * SEEK_END and kth_stream_seek_time fail with KTH_ERR_UNSUPPORTED, and a dropped connection is
 * reconnected behind a fence (KTH_ERR_VARIANT_CHANGE; clear it with
 * kth_stream_clear_variant_fence). Events of a radio stream reach the bus once the stream has
 * made its first read or wait.
 * `opts` may be NULL (defaults); it is copied. Offline, a URL the cache does not hold fails at
 * once with KTH_ERR_OFFLINE_MISS. On success *out is a new stream the caller closes with
 * kth_stream_close. Returns KTH_ERR_INVALID_ARG (NULL or empty url; an options size smaller
 * than a size_t), KTH_ERR_UNSUPPORTED (a scheme not supported; SAMPLE-AES, nothing playable in
 * a playlist; options of a newer header that set a field this kithara lacks),
 * KTH_ERR_NOT_FOUND / KTH_ERR_IO (the file, the cache), KTH_ERR_HTTP / KTH_ERR_NETWORK /
 * KTH_ERR_FORMAT / KTH_ERR_TIMEOUT (loading a playlist), KTH_ERR_NO_MEMORY. When it fails
 * and `err` is not NULL, a sentence naming the cause is written there (truncated to errlen).
 * Any thread. */
KTH_API kth_status kth_stream_open(const char *url, const kth_stream_options *opts,
                                   kth_stream **out, char *err, size_t errlen);

/* Closes the stream and frees it (NULL-safe). Must not race another call on the stream. */
KTH_API void kth_stream_close(kth_stream *stream);

/* Why a read could not return bytes yet. */
typedef enum kth_pending_reason {
    KTH_PENDING_NONE = 0,
    KTH_PENDING_SEEK,           /* a seek happened during this read; read again */
    KTH_PENDING_NOT_READY,      /* the bytes are not there yet (cause says why) */
    KTH_PENDING_VARIANT_CHANGE, /* variant fence: recreate the decoder, clear the fence */
    KTH_PENDING_RETRY,          /* the bytes vanished between wait and read; read again */
} kth_pending_reason;

typedef enum kth_read_kind {
    KTH_READ_BYTES,   /* n bytes were copied; position is the new stream position */
    KTH_READ_PENDING, /* nothing copied; reason says why */
    KTH_READ_EOF,     /* proven end of stream at position */
    KTH_READ_ERROR,   /* the stream failed; status and kth_stream_last_error say why */
} kth_read_kind;

typedef struct kth_read_outcome {
    kth_read_kind kind;
    size_t n;                  /* BYTES: bytes copied */
    uint64_t position;         /* position after the call */
    kth_pending_reason reason; /* PENDING */
    kth_status cause;          /* PENDING NOT_READY: KTH_ERR_TIMEOUT when a wait expired, or
                                  KTH_OK when the call was not allowed to wait */
    kth_status status;         /* ERROR: the failure; otherwise KTH_OK */
} kth_read_outcome;

/* Reads up to n bytes at the stream position, waiting at most timeout_ms for the first byte
 * (KTH_NO_WAIT: do not wait; KTH_WAIT_FOREVER: until bytes, end, a seek, a cancel or an error),
 * and reports a typed outcome in *out. On BYTES the position advances by out->n; every other
 * kind leaves it unchanged. Returns out->status for convenience (KTH_OK unless kind == ERROR;
 * KTH_ERR_INVALID_ARG for NULL arguments or n == 0). Reader thread. */
KTH_API kth_status kth_stream_try_read(kth_stream *stream, void *buf, size_t n, int64_t timeout_ms,
                                       kth_read_outcome *out);

/* The POSIX-shaped read: blocks up to the stream's read timeout and returns the number of bytes
 * copied (> 0), 0 at proven end of stream, or a negative kth_status: KTH_ERR_SEEK_PENDING (a
 * seek interrupted this read), KTH_ERR_VARIANT_CHANGE (variant fence reached),
 * KTH_ERR_TIMEOUT, KTH_ERR_CANCELLED, KTH_ERR_RETRY (bytes kept vanishing), or the stream's
 * failure; KTH_ERR_INVALID_ARG for NULL arguments or n == 0. Reader thread. */
KTH_API int64_t kth_stream_read(kth_stream *stream, void *buf, size_t n);

/* Moves the position: whence is SEEK_SET, SEEK_CUR or SEEK_END (from <stdio.h>). SEEK_END waits
 * (up to the read timeout) for the total length. Returns KTH_ERR_OUT_OF_RANGE for a negative
 * target or one past the known end (seeking exactly to the end is allowed), KTH_ERR_INVALID_ARG
 * for a bad whence, KTH_ERR_TIMEOUT / KTH_ERR_CANCELLED when the length did not come. On success
 * the epoch moves, a read blocked in another thread returns KTH_ERR_SEEK_PENDING, and *new_pos
 * (may be NULL) receives the position. On a live HLS stream, bytes of segments that left the
 * server's window and were dropped cannot be read again: a read there fails the stream with
 * KTH_ERR_NOT_FOUND (kth_stream_seek_time goes back within the window instead). Any thread. */
KTH_API kth_status kth_stream_seek(kth_stream *stream, int64_t offset, int whence,
                                   uint64_t *new_pos);

/* Where a time lands in the byte stream. */
typedef struct kth_seek_anchor {
    double requested;       /* the time asked for, seconds */
    uint64_t offset;        /* byte offset the stream moved to: bytes from here decode on their
                               own (see kth_stream_seek_time) */
    double segment_start;   /* seconds: start of the segment the bytes at offset begin */
    double segment_end;     /* seconds: its end */
    uint64_t segment_index; /* index of the segment in its playlist */
    int variant;            /* HLS variant index, -1 when not HLS */
} kth_seek_anchor;

/* Moves to the segment holding time `seconds` (clamped to the stream's duration) and fills
 * *anchor (may be NULL). On a live HLS stream (no EXT-X-ENDLIST yet) the time is clamped to the
 * window the server still lists and to the live edge (kth_hls_playlist_info: window_start_s to
 * live_edge_s): a time before the window plays from its first segment, a time past the edge
 * (INFINITY, say) from the edge. Once the playlist ended, a time before the window still plays
 * from its first segment (the segments before it are gone). Like kth_stream_seek it moves the epoch
 * and interrupts a blocked read.
 *
 * What it costs: nothing is fetched and no size is learned to place the time. The reads that
 * follow fetch, for a presentation never played, at most the key (AES-128, when not cached),
 * the init section (when not cached) and the target segment, then read ahead from there.
 *
 * Where it lands (HLS). The bytes from anchor->offset on are what a file made for playing from
 * that segment would hold: the init section in force for the segment (fMP4; nothing for
 * MPEG-TS, ADTS or MP3), then the segment and the ones after it, in the variant being read.
 * When the segment's start is already known in the byte space (its sizes were learned by
 * playing) and no init section is needed in front of it, anchor->offset is that start and the
 * byte space is unchanged. Otherwise the stream starts a new splice of its byte space: at the
 * offset one past the furthest byte any read has returned, the bytes become the target's;
 * offsets before it keep the meaning of what was read there (a seek back reads the same bytes,
 * behind a variant fence when they belong to another splice or variant), and offsets at or past
 * it now mean the new splice. A read in progress on another thread when the splice is made
 * returns KTH_PENDING_SEEK and hands out nothing. The stream's length may change at a time
 * seek (kth_stream_length reports the new one); it never changes otherwise.
 *
 * What a decoder must do after it: discard its demuxer state and open a fresh demuxer (or
 * flush it) reading from anchor->offset, with the bytes before that offset unseen; the first
 * read there needs no kth_stream_clear_variant_fence. Output starts at anchor->segment_start;
 * drop the decoded audio before `seconds` to land on the exact time. Do not seek the demuxer
 * by its own index afterwards across the splice: positions it learned before the seek may now
 * be in another splice; seek by time again instead.
 *
 * Where it lands (a single file, progressive or local). There are no segments: the file's own
 * header places the time, read through the stream (a cold seek fetches the header and its
 * table, not what lies between), and the byte space never changes. WAV lands on the exact
 * sample frame; FLAC on the SEEKTABLE point at or before the time; MP3 on the VBRI entry, the
 * Xing TOC's estimate (about 1 % of the duration) or, at a constant bit rate, the frame holding
 * the time. segment_start is the time of the byte landed on, segment_end the next point's,
 * segment_index the point's index. The bytes continue the file, so they suit a demuxer that
 * has already read its header (a FLAC or WAV file does not start again there). A time at or
 * before 0 lands on offset 0. May wait (up to the read timeout) for the header's bytes.
 *
 * Returns KTH_ERR_UNSUPPORTED for a file whose format or header gives no way to place the time
 * (AAC in ADTS, Ogg, MP4, a FLAC file without a SEEKTABLE), KTH_ERR_INVALID_ARG for a NaN
 * time, KTH_ERR_LIMIT when the stream has been spliced too often (4096 splices and variant
 * switches), KTH_ERR_TIMEOUT / KTH_ERR_CANCELLED, or the stream's failure. Any thread. */
KTH_API kth_status kth_stream_seek_time(kth_stream *stream, double seconds,
                                        kth_seek_anchor *anchor);

/* The current byte position. Any thread. */
KTH_API uint64_t kth_stream_position(kth_stream *stream);

/* The seek epoch: how many seeks have happened. Any thread. */
KTH_API uint64_t kth_stream_seek_epoch(kth_stream *stream);

/* True and *length filled when the total length is known (it may be known before every byte
 * has arrived). Any thread. */
KTH_API bool kth_stream_length(kth_stream *stream, uint64_t *length);

/* What is known of the media (container, codec, rate, channels; 0 or UNKNOWN for what is not
 * known). For HLS the first call learns them from the variant's CODECS and its first bytes
 * (the init section, or the first 8 KiB of the first segment, decrypted when AES-128): one
 * ranged GET kept in memory, waited for up to the read timeout; later calls reuse the answer.
 * A file's answer comes from the first bytes present. Returns KTH_OK, or KTH_ERR_INVALID_ARG.
 * Any thread. */
KTH_API kth_status kth_stream_media_info(kth_stream *stream, kth_media_info *info);

/* Clears a variant fence the reader has met (after recreating its decoder), so reads continue
 * into the new variant's bytes (or, for internet radio, the next connection's). A fence is pending
 * from the read that met it (KTH_PENDING_ VARIANT_CHANGE) until this call or a
 * kth_stream_seek_time: seeking by offset and reading elsewhere in the meantime (a demuxer probing
 * ahead and seeking back) leaves it pending, and a read that comes back to it meets it again.
 * Clearing makes the fence's side the one read without a fence; a read of the other side afterwards
 * meets a fence of its own. Returns KTH_ERR_STATE when no fence is pending. Reader thread. */
KTH_API kth_status kth_stream_clear_variant_fence(kth_stream *stream);

/* Cancels the stream: a blocked read returns KTH_ERR_CANCELLED promptly, and so does every later
 * read or waiting seek. Idempotent. Any thread. */
KTH_API void kth_stream_cancel(kth_stream *stream);

/* Copies the last failure's detail (what failed and where: path, URL, offset) into buf and
 * returns the length it has (like snprintf). Empty when nothing failed. A URL or path longer
 * than about 200 bytes appears as an excerpt (its head, "...", and its tail, where signed URLs
 * differ), and a detail that does not fit buf keeps its head and its end, where the cause is.
 * Any thread. */
KTH_API size_t kth_stream_last_error(kth_stream *stream, char *buf, size_t size);

#ifdef __cplusplus
}
#endif

#endif /* KITHARA_STREAM_H */
