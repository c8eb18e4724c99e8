/*
 * kithara/events.h — typed events and the bus that carries them.
 *
 * Streams and the downloader publish what happens to them (a seek, a request that started,
 * retried or failed, an ABR decision) on a kth_bus. Anyone may subscribe. Each subscription has
 * its own bounded queue: publishing never blocks and never waits for a slow subscriber; when a
 * queue is full its oldest event is dropped and the next event delivered to that subscriber says
 * how many were lost (kth_event.dropped).
 *
 * A subscription is read either by polling (kth_events_next) or through a callback that runs on
 * a thread owned by the subscription, never on the publisher's thread.
 */
#ifndef KITHARA_EVENTS_H
#define KITHARA_EVENTS_H

#include <kithara/status.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct kth_bus kth_bus;
typedef struct kth_subscription kth_subscription;

/* New kinds are only ever appended, so stored numbers keep their meaning. */
typedef enum kth_event_kind {
    KTH_EVENT_NONE = 0,
    /* Stream: opened (text = URL), seek (payload.seek), end of stream proven, failed
     * (status, text = detail), closed. */
    KTH_EVENT_STREAM_OPENED = 1,
    KTH_EVENT_STREAM_SEEK = 2,
    KTH_EVENT_STREAM_EOF = 3,
    KTH_EVENT_STREAM_ERROR = 4,
    KTH_EVENT_STREAM_CLOSED = 5,
    /* Downloader requests (payload.request, text = URL). */
    KTH_EVENT_REQUEST_ENQUEUED = 20,
    KTH_EVENT_REQUEST_STARTED = 21,
    KTH_EVENT_REQUEST_FIRST_BYTE = 22,
    KTH_EVENT_REQUEST_RETRYING = 23,
    KTH_EVENT_REQUEST_COMPLETED = 24,
    KTH_EVENT_REQUEST_FAILED = 25,
    KTH_EVENT_REQUEST_CANCELLED = 26,
    /* Work is pending and nothing moved for the configured time (payload.request.duration_ns =
     * how long). */
    KTH_EVENT_DOWNLOADER_STALLED = 27,
    /* Adaptive bitrate (payload.abr, text = reason: "up", "down", "stay-best", ...; an HLS
     * stream's rescue of a download that stalls or falls behind the reader is "urgent-down"). */
    KTH_EVENT_ABR_DECISION = 40,
    KTH_EVENT_VARIANT_CHANGED = 41,
    /* Something was skipped or tolerated (text says what), e.g. a variant with no known audio
     * codec. */
    KTH_EVENT_WARNING = 60,
    /* HLS segments (payload.segment, text = the segment's URL). STARTED: its download was asked
     * for. COMPLETED: its download ended; status KTH_OK when every byte is in the cache, else
     * why not (KTH_ERR_CANCELLED when it was given up, e.g. left behind by a seek or replaced by
     * a rescue down-switch). One of each per download. */
    KTH_EVENT_HLS_SEGMENT_STARTED = 80,
    KTH_EVENT_HLS_SEGMENT_COMPLETED = 81,
    /* An AES-128 key became usable or could not be had (payload.key, text = the key URI as the
     * playlist names it, status = KTH_OK or the failure). Once per key and session. */
    KTH_EVENT_HLS_KEY = 82,
    /* The media seconds present ahead of the reader (of the played time while the player
     * reports it: kth_stream_abr_report_played) (payload.buffer), as the download sees
     * them when it looks again (the reader moved to another segment, a download ended, ...):
     * published when they moved by a quarter second or more since the last one, or became
     * zero or non-zero. */
    KTH_EVENT_HLS_BUFFER_LEVEL = 83,
    /* Everything from the reader's position to the end of the presentation is in the cache:
     * nothing more is downloaded unless the reader seeks (payload.buffer). */
    KTH_EVENT_HLS_END_OF_STREAM = 84,
    /* Playback progress: the reader read the first bytes of a segment (payload.segment:
     * variant, index, its size when known, start_seconds = the media time reached, duration).
     * Published on the reading thread. */
    KTH_EVENT_HLS_PLAYBACK_PROGRESS = 85,
    /* Decoder (kithara/decode.h; payload.decode, text = the codec's FFmpeg name). At a variant
     * switch the codec decoder was KEPT (same configuration) or RESTARTED (a new one). FORMAT:
     * the source's sample rate or channels changed (the output format does not). TRIMMED:
     * encoder delay or padding the file declares was dropped (payload.decode.frames, in the
     * source's frames). Published on the reading thread. */
    KTH_EVENT_DECODER_KEPT = 100,
    KTH_EVENT_DECODER_RESTARTED = 101,
    KTH_EVENT_DECODER_FORMAT = 102,
    KTH_EVENT_DECODER_TRIMMED = 103,
    /* Internet radio (Icecast/SHOUTcast, payload.radio). TITLE: a metadata block named a
     * StreamTitle (text = the title, cut to fit; payload.radio.offset = the stream offset of
     * the first audio byte after the block). URL: the same for a StreamUrl, never cut: one
     * longer than text can hold comes with status KTH_ERR_LIMIT and an empty text. DROPPED: the
     * connection ended (status = why; payload.radio.delay_ns = the back-off before the next
     * attempt, attempt = consecutive failed attempts). RECONNECTED: a new connection's bytes
     * continue the stream at payload.radio.offset, behind a fence (kth_stream_clear_variant_fence):
     * the bytes before and after it are not one stream. Published on the downloader's
     * thread. */
    KTH_EVENT_RADIO_TITLE = 120,
    KTH_EVENT_RADIO_URL = 121,
    KTH_EVENT_RADIO_DROPPED = 122,
    KTH_EVENT_RADIO_RECONNECTED = 123,
    /* Live HLS (a media playlist without EXT-X-ENDLIST). RELOADED: a reload of the playlist
     * added segments (text says how many and the media sequence range; the stream's length
     * stays unknown until the playlist ends). ENDED: the playlist got EXT-X-ENDLIST: the stream
     * ends after its last segment. RESET: the media sequence went backwards (the server
     * restarted its stream): the stream goes on from the new playlist's start position, behind
     * a fence. DISCONTINUITY: an added segment follows EXT-X-DISCONTINUITY (or a stretch the
     * reloads missed): the reader meets a fence there (kth_stream_clear_variant_fence), as at a
     * variant switch. SKIPPED: the reader fell behind the window (a long pause), so segments it
     * had not got left the playlist and the server no longer serves them: the stream goes on at
     * the first segment still listed, behind a fence (text names the media sequences skipped).
     * Published on the downloader's thread. */
    KTH_EVENT_HLS_LIVE_RELOADED = 130,
    KTH_EVENT_HLS_LIVE_ENDED = 131,
    KTH_EVENT_HLS_LIVE_RESET = 132,
    KTH_EVENT_HLS_LIVE_DISCONTINUITY = 133,
    KTH_EVENT_HLS_LIVE_SKIPPED = 134,
    /* The cache's budget (payload.cache). OVER: an eviction pass left the cache above its
     * budget because everything it holds is in use (leased by open streams, of this process or
     * another, or pinned), so it grows past the budget instead of taking bytes from a stream;
     * text says by how much. WITHIN: it is back within the budget. Published, on the
     * downloader's thread, on the bus of each stream that writes into that cache, once per
     * change as that stream's next write sees it: a stream told OVER is told WITHIN later. */
    KTH_EVENT_CACHE_OVER_BUDGET = 140,
    KTH_EVENT_CACHE_WITHIN_BUDGET = 141,
} kth_event_kind;

typedef struct kth_event_seek {
    uint64_t position; /* byte position after the seek */
    uint64_t epoch;    /* seek epoch after the seek */
} kth_event_seek;

typedef struct kth_event_request {
    uint64_t request_id;
    uint64_t bytes;         /* body bytes so far (completed: total) */
    int64_t duration_ns;    /* from start to now, time to first byte included */
    double bits_per_second; /* completed: bytes * 8 / duration */
    int http_status;        /* 0 when no response was received */
    int attempt;            /* 1 for the first try */
    bool retryable;         /* failed: whether the failure was transient */
    uint64_t range_start;   /* requested range, or 0/UINT64_MAX for the whole body */
    uint64_t range_end;
} kth_event_request;

typedef struct kth_event_abr {
    int from_variant;
    int to_variant;
    double estimate_bps;
    double buffer_seconds;
} kth_event_abr;

typedef struct kth_event_segment {
    int variant;          /* index in the ladder */
    bool init;            /* an init section; index is then the first segment it serves */
    uint64_t index;       /* the segment's index in its variant's media playlist (live: counted
                           * from the first segment of the first playlist of that variant the
                           * stream loaded, so variants count from different segments; not the
                           * media sequence number; the download events' text is the segment's
                           * URL) */
    uint64_t bytes;       /* STARTED: its size when known, else 0; COMPLETED: bytes stored */
    double start_seconds; /* media time where the segment starts */
    double duration;      /* its EXTINF seconds (0 for an init section) */
    int64_t download_ns;  /* COMPLETED: from the request to its end */
    /* EXT-X-PROGRAM-DATE-TIME at the segment's start (an init section: at the start of the
     * segment it precedes), ms since the Unix epoch, UTC: from its own tag, or the last one
     * before it plus the durations in between; 0 when the playlist dates nothing before it. */
    int64_t program_time_ms;
} kth_event_segment;

typedef struct kth_event_key {
    bool from_cache; /* read from the asset cache, not fetched */
    int http_status; /* the key response's HTTP status; 0 when none (cache, no response) */
} kth_event_key;

typedef struct kth_event_buffer {
    double seconds;        /* media seconds present contiguously ahead of the reader */
    double target_seconds; /* how far ahead the download aims (kth_hls_options) */
    int variant;           /* the variant at the reader's position */
} kth_event_buffer;

typedef struct kth_event_decode {
    int from_variant;     /* KEPT / RESTARTED: the variant before the switch (-1: not HLS) */
    int to_variant;       /* the variant after it */
    uint64_t frame;       /* output frame position where it happened */
    uint64_t frames;      /* TRIMMED: source frames dropped */
    uint32_t sample_rate; /* the source's rate and channel count from here on */
    uint32_t channels;
} kth_event_decode;

typedef struct kth_event_radio {
    uint64_t offset;     /* TITLE, URL, RECONNECTED: stream offset (see the kinds) */
    uint64_t connection; /* 1 for the first connection, counting every attempt that answered */
    unsigned attempt;    /* DROPPED: consecutive attempts that brought no audio */
    int64_t delay_ns;    /* DROPPED: wait before the next attempt (downloader's clock) */
} kth_event_radio;

typedef struct kth_event_cache {
    uint64_t bytes;  /* bytes the cache holds: recorded, plus written and not recorded yet */
    uint64_t budget; /* its budget (kth_cache_options.max_bytes) */
} kth_event_cache;

typedef struct kth_event {
    kth_event_kind kind;
    int64_t time_ns;  /* monotonic time of publication */
    uint64_t origin;  /* id of the publishing stream or downloader (0 = process-wide) */
    uint64_t dropped; /* events this subscription lost just before this one (queue overflow) */
    int status;       /* kth_status for failures, KTH_OK otherwise */
    union {
        kth_event_seek seek;
        kth_event_request request;
        kth_event_abr abr;
        kth_event_segment segment;
        kth_event_key key;
        kth_event_buffer buffer;
        kth_event_decode decode;
        kth_event_radio radio;
        kth_event_cache cache;
    } payload;
    /* URL or message for display, NUL-terminated, truncated to fit: a longer URL is cut here,
     * so never fetch or key anything by it (kth_stream_variant_info gives whole URLs). */
    char text[256];
} kth_event;

/* Creates a bus. The caller owns one reference. Returns KTH_ERR_NO_MEMORY on allocation
 * failure. Any thread. */
KTH_API kth_status kth_bus_new(kth_bus **out);

/* Reference counting (NULL-safe). Every subscription holds a reference of its own, so the bus
 * lives until its last owner and its last subscription are gone. Any thread. */
KTH_API kth_bus *kth_bus_ref(kth_bus *bus);
KTH_API void kth_bus_unref(kth_bus *bus);

/* A polled subscription with room for `capacity` events (0 = 256). The caller owns it and frees
 * it with kth_subscription_free. Returns KTH_ERR_INVALID_ARG for a NULL bus or out, or
 * KTH_ERR_NO_MEMORY. Any thread. */
KTH_API kth_status kth_bus_subscribe(kth_bus *bus, size_t capacity, kth_subscription **out);

/* Takes the oldest queued event into *ev, waiting up to timeout_ms (KTH_NO_WAIT: do not wait;
 * KTH_WAIT_FOREVER, or any value < 0: without limit). Returns KTH_OK, KTH_ERR_TIMEOUT when nothing
 * arrived in time, or KTH_ERR_INVALID_ARG for a callback subscription. One thread at a time per
 * subscription. */
KTH_API kth_status kth_events_next(kth_subscription *sub, kth_event *ev, int64_t timeout_ms);

/* Callback subscription: `fn(ev, user)` is called for every event, in order, on a thread owned
 * by the subscription (started here). The event is valid only during the call. Returns
 * KTH_ERR_INVALID_ARG, KTH_ERR_NO_MEMORY, or KTH_ERR_LIMIT when no thread could be started. */
KTH_API kth_status kth_bus_subscribe_callback(kth_bus *bus, size_t capacity,
                                              void (*fn)(const kth_event *ev, void *user),
                                              void *user, kth_subscription **out);

/* Ends a subscription and frees it. For a callback subscription, waits for a callback in
 * progress to return — except when called from inside the callback, where the subscription is
 * released after that callback returns. Not to be called concurrently with kth_events_next on
 * the same subscription. NULL-safe. */
KTH_API void kth_subscription_free(kth_subscription *sub);

/* Events published and events dropped for this subscription since it began. Any thread. */
KTH_API void kth_subscription_counts(kth_subscription *sub, uint64_t *delivered, uint64_t *dropped);

/* Publishes a copy of `ev` to every current subscriber; fills time_ns when it is 0. Never
 * blocks on a subscriber. Intended for the library's own layers; applications may publish
 * their own events too. Any thread; NULL bus or event does nothing. */
KTH_API void kth_bus_publish(kth_bus *bus, const kth_event *ev);

/* A short name for an event kind ("REQUEST_COMPLETED"); static storage. Any thread. */
KTH_API const char *kth_event_kind_name(kth_event_kind kind);

#ifdef __cplusplus
}
#endif

#endif /* KITHARA_EVENTS_H */
