/*
 * kithara/hls.h — controls and queries that only HLS streams have: the variant ladder, adaptive
 * bitrate (ABR) modes, the segment layout of the variant being read, and the AES-128 key hook.
 *
 * Byte space: an HLS stream reads like one file made of the current variant's init section and
 * segments, decrypted. The stream starts in one variant; when ABR (or a manual choice) moves to
 * another variant at a segment boundary, the reader meets a variant fence there: a read returns
 * KTH_PENDING_VARIANT_CHANGE (kth_stream_read: KTH_ERR_VARIANT_CHANGE) before any byte of the new
 * variant. The decoder is then recreated and kth_stream_clear_variant_fence called; the next
 * bytes are the new variant's init section (fMP4; none for MPEG-TS) followed by the segment the
 * switch happened at. Stream offsets keep growing across the switch: the stream offset of the
 * fence is the first byte of the new variant's part, and offsets before it keep meaning the old
 * variant's bytes (a seek back there reads them, behind a fence of its own). A time seek may
 * splice the byte space the same way (kithara/stream.h, kth_stream_seek_time), without a fence:
 * the decoder starts afresh there anyway.
 *
 * Cache: segments, keys and playlists go through the stream's asset cache, and the whole
 * presentation is one asset, kept (never evicted) while the stream is open. With a memory-only
 * cache everything fetched therefore stays in memory until the stream closes: max_bytes must
 * hold what is played (plus up to 64 KiB per playlist, key and segment), or fetches fail with
 * KTH_ERR_LIMIT.
 *
 * Every function here returns KTH_ERR_UNSUPPORTED (or 0 / false) for a stream that is not HLS.
 * Threads: any thread, concurrently with a blocked read, unless said otherwise.
 */
#ifndef KITHARA_HLS_H
#define KITHARA_HLS_H

#include <kithara/media.h>
#include <kithara/status.h>
#include <kithara/stream.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The AES-128 key hook: lets a program fetch keys from where its licence server wants them.
 * Each function may be NULL. They run on the downloader's thread, or on the thread of a
 * SEEK_END that needs a key to size a segment; they may run on several threads at once, must
 * not block for long and must not call back into the stream.
 *
 * With a cache, the 16-byte key the hook returns (after transform) is stored with the
 * presentation, so that it replays without asking again. In a protected cache
 * (kth_cache_options.secret) that key is stored wrapped under the cache secret (AES-256-CTR and
 * an HMAC-SHA256 tag), never bare, and the segments are encrypted at rest as well. A program
 * whose own DRM wraps keys keeps doing so: transform unwraps each fetched key; but since what
 * the cache keeps is the unwrapped key, such a program should protect its cache. */
typedef struct kth_hls_key_hook {
    /* Rewrites the key URI (resolved, absolute, of any length): returns the URL to fetch
     * instead as a NUL-terminated string allocated with malloc, which kithara frees, or NULL
     * to keep the original. */
    char *(*rewrite_uri)(void *user, const char *uri);
    /* Extra request header lines for the key request, NULL-terminated, owned by the program and
     * valid until the stream closes; NULL for none. */
    const char *const *(*headers)(void *user, const char *uri);
    /* Turns the fetched bytes into the 16-byte key (e.g. unwraps them). Return KTH_OK or a
     * failure, which fails the stream with KTH_ERR_DECRYPT naming the key URI. */
    kth_status (*transform)(void *user, const char *uri, const uint8_t *fetched, size_t len,
                            uint8_t key[16]);
    void *user;
} kth_hls_key_hook;

/* HLS options. Every field left at zero takes its default, so `kth_hls_options o = {0};` (or
 * kth_hls_options_init) gives the defaults. `size` is sizeof(kth_hls_options) as the caller's
 * header has it (kth_hls_options_init sets it; 0 stands for the fields of version 1, all of
 * those below), so a program built against an older header keeps working when fields are
 * added at the end. */
typedef struct kth_hls_options {
    size_t size;
    /* The variant to start with. By default (fixed_start false) it is picked from the estimate
     * (initial_estimate_bps): the highest rung whose declared bandwidth is at most the
     * estimate, else the lowest. With fixed_start, it is initial_variant (an index in the
     * ladder, ascending bandwidth; an index past the top means the top rung; a negative one
     * the lowest). */
    bool fixed_start;
    int initial_variant;
    /* Start in manual mode on the starting variant (as kth_stream_abr_set_manual would, but
     * from the first fetch on, so ABR never moves it in between); kth_stream_abr_set_auto
     * hands it to ABR later. Default false. */
    bool start_manual;
    /* Throughput assumed before anything is measured, bit/s. 0 (the default): what the
     * downloader remembers a stream of the same host (scheme, host and port of the URL)
     * measured last, and with nothing remembered the lowest rung. Streams that share a
     * downloader share this memory; each tells it its estimate as its segments arrive. */
    uint64_t initial_estimate_bps;
    /* Media seconds fetched ahead of the reader. 0: default 60, the buffer a player needs to
     * ride out a dip of the link on the top rung it can hold (about 1.9 MB ahead at 256 kbit/s;
     * at 30 s the stream stepped down in dips a 60 s buffer crosses). */
    double buffer_target_s;
    /* Byte cap on what is fetched ahead of the reader. 0: default 32 MiB. */
    uint64_t buffer_max_bytes;
    /* The most segment fetches in flight at once for this stream, 1..8. 0: default 3. Fewer
     * run where the link is the limit: parallel fetches share it, so while a segment's body
     * takes longer than the wait for its first byte (as measured), one runs at a time and the
     * segment the reader needs next has the whole link. */
    unsigned max_fetches;
    /* Variant switches are made at most once per this many segments unless the buffer is
     * about to run dry (the rescue is always allowed). 0: default 2. */
    unsigned min_segments_between_switches;
    kth_hls_key_hook key_hook;
} kth_hls_options;

/* Fills *opts with the defaults: all zero but size. Any thread. */
KTH_API void kth_hls_options_init(kth_hls_options *opts);

/* --- the ladder ------------------------------------------------------------------------- */

typedef struct kth_hls_variant_info {
    uint64_t bandwidth;         /* bit/s, as the master declares it (peak) */
    uint64_t average_bandwidth; /* AVERAGE-BANDWIDTH, 0 when absent */
    kth_codec codec;            /* the audio codec the master names, or UNKNOWN */
    bool usable;                /* its media playlist loaded (false: never chosen) */
    /* The media playlist URL, whole. Borrowed from the stream: valid until kth_stream_close,
     * never NULL for a variant kth_stream_variant_info described. */
    const char *uri;
    /* From its media playlist, once loaded (usable); zero / UNKNOWN before. */
    kth_container container; /* fMP4 with an init section (EXT-X-MAP), else from the first
                                segment's extension */
    bool encrypted;          /* some segment is AES-128 encrypted */
    size_t segment_count;
    double duration; /* seconds (sum of EXTINF) */
    /* For a rung made of an audio rendition of a video master: its NAME, LANGUAGE and the
     * channel count of CHANNELS; "" and 0 otherwise. The strings are whole and borrowed like
     * uri (valid until kth_stream_close), never NULL. */
    const char *rendition;
    const char *language;
    unsigned channels;
} kth_hls_variant_info;

/* Number of variants in the stream's ladder (ascending bandwidth); 0 when not HLS. Variant
 * indexes are ints everywhere in the API, from 0 to this count - 1; -1 says "none" where a
 * field may have no variant. */
KTH_API int kth_stream_variant_count(kth_stream *stream);

/* Describes variant `variant`. KTH_ERR_OUT_OF_RANGE (not an index of the ladder),
 * KTH_ERR_UNSUPPORTED, KTH_ERR_INVALID_ARG. */
KTH_API kth_status kth_stream_variant_info(kth_stream *stream, int variant,
                                           kth_hls_variant_info *info);

/* How much of variant `variant` the cache holds: *cached of its *total media segments are
 * complete in the cache (EXT-X-GAP segments count as held). A segment counts once its cache
 * entry is committed, which may be a moment after the reader has read its last bytes. Looks
 * each segment up in the cache
 * index, so it takes time in proportion to the segment count: for a display, not for a read
 * loop. KTH_ERR_NOT_FOUND while the variant's playlist is not loaded (kth_hls_variant_info:
 * not usable), KTH_ERR_OUT_OF_RANGE, KTH_ERR_INVALID_ARG (NULL), KTH_ERR_UNSUPPORTED,
 * KTH_ERR_NO_MEMORY. */
KTH_API kth_status kth_stream_variant_cached(kth_stream *stream, int variant, size_t *cached,
                                             size_t *total);

/* What kind of playlist the stream plays, from its playing variant's media playlist. */
typedef struct kth_hls_playlist_info {
    const char *kind;         /* "vod" (complete), "event" (grows) or "live" (a sliding
                                 window); static, never NULL */
    uint64_t target_duration; /* EXT-X-TARGETDURATION, seconds */
    /* The window: the media seconds and segments the last playlist fetched lists (the whole
     * presentation for vod and event). */
    double window_s;
    size_t window_segments;
    bool ended; /* a live or event playlist got EXT-X-ENDLIST since the stream opened */
    /* On the stream's timeline (the seconds kth_stream_seek_time takes): where the window's
     * first segment starts (0 for vod; for a live stream that ended, still the first segment
     * its last playlist listed), and the live edge, the start of the segment a live
     * player plays from (HOLD-BACK, else three target durations, before the end; for vod and
     * ended streams the end). A DVR slider runs from window_start_s to live_edge_s. On a live
     * stream these are times of the variant it reloads (its last switch's), which is the one
     * kth_stream_seek_time seeks in; another variant's times may differ by whole segments. */
    double window_start_s;
    double live_edge_s;
} kth_hls_playlist_info;

/* Describes the playlist of an HLS stream. KTH_OK, KTH_ERR_UNSUPPORTED (not HLS),
 * KTH_ERR_INVALID_ARG (NULL). Any thread. */
KTH_API kth_status kth_stream_playlist_info(kth_stream *stream, kth_hls_playlist_info *info);

/* What an HLS stream has downloaded, and how much of it was thrown away. */
typedef struct kth_hls_stats {
    uint64_t fetches;       /* segment and init section fetches that completed */
    uint64_t bytes_fetched; /* the body bytes they received (as served: ciphertext for AES-128) */
    /* Fetches that ended before their entry was complete (cancelled by a rescue, a seek or a
     * switch that made them unneeded, or failed), and the bytes they had received. Those
     * bytes stay in the cache, so a later fetch of the same entry may still use them. */
    uint64_t fetches_abandoned;
    uint64_t bytes_abandoned;
    uint64_t switches; /* variant switches made (ABR, rescue or manual) */
} kth_hls_stats;

/* Fills *out with the stream's figures so far. KTH_OK, KTH_ERR_UNSUPPORTED (not HLS; *out
 * zeroed), KTH_ERR_INVALID_ARG (NULL out). Any thread. */
KTH_API kth_status kth_stream_hls_stats(kth_stream *stream, kth_hls_stats *out);

/* The variant of the bytes at the reader's position (-1 when not HLS). */
KTH_API int kth_stream_current_variant(kth_stream *stream);

/* --- ABR modes (take effect at the next segment boundary; wake an idle download) ------- */

/* Automatic choice from the measured throughput and the buffer. */
KTH_API kth_status kth_stream_abr_set_auto(kth_stream *stream);
/* A fixed variant (index in the ladder). KTH_ERR_OUT_OF_RANGE for a bad index. A variant
 * whose media playlist could not be loaded (kth_hls_variant_info: not usable) is accepted but
 * never played: the stream stays on the variant it is on. */
KTH_API kth_status kth_stream_abr_set_manual(kth_stream *stream, int variant);
/* The highest declared bandwidth automatic mode may pick, bit/s; 0 removes the cap. */
KTH_API kth_status kth_stream_abr_set_cap(kth_stream *stream, uint64_t max_bps);

/* The buffer a player has: tells ABR how far playback has got, in media seconds on the
 * stream's timeline (the time kth_stream_seek_time takes). ABR then judges the media downloaded
 * ahead of what was played, not of what was read: a player that reads ahead of its output (a
 * decoder's queue, an audio device's buffer) has that much more in hand. Without reports the
 * stream counts what was read as played, which makes such a player look closer to a stall
 * than it is. Report often (after each read, or as the output plays); a seek forgets the last
 * report until the next one. A time past the read position counts as the read position; the
 * unplayed part counted is at most the buffer target (kth_hls_options.buffer_target_s). The
 * decoder (kithara/decode.h) reports by itself. Reader thread (the thread that reads).
 * KTH_ERR_UNSUPPORTED for a stream that is not HLS, KTH_ERR_INVALID_ARG for a negative or
 * non-finite time. */
KTH_API kth_status kth_stream_abr_report_played(kth_stream *stream, double seconds);

/* Seek lock: from kth_stream_abr_seek_begin to the matching kth_stream_abr_seek_end the variant
 * is not switched (in any mode: a manual choice made meanwhile takes effect at the end), so the
 * throughput and buffer of a seek — fetches cut short, nothing buffered at the new place —
 * move nothing. For a seek a program makes of several steps (a demuxer probing at a few
 * offsets before it settles). Pairs nest; an end without a begin does nothing. In automatic
 * mode, a seek through kth_stream_seek or kth_stream_seek_time holds such a lock by itself
 * until the first bytes at its new position have been read; that one does not hold back the
 * rescue of a fetch that stalls, nor a manual choice. */
KTH_API kth_status kth_stream_abr_seek_begin(kth_stream *stream);
KTH_API kth_status kth_stream_abr_seek_end(kth_stream *stream);

/* --- segment layout of the variant at the reader's position ---------------------------- */

/* Segments in the current variant's playlist. */
KTH_API size_t kth_stream_segment_count(kth_stream *stream);
/* Its total duration in seconds (sum of EXTINF). 0 when not HLS. */
KTH_API double kth_stream_total_duration(kth_stream *stream);
/* The segment holding time `seconds` (clamped), with its start and duration (may be NULL). */
KTH_API kth_status kth_stream_segment_at_time(kth_stream *stream, double seconds, size_t *index,
                                              double *start, double *duration);
/* The stream byte range [*start, *end) of the init section the decoder needs for the bytes at
 * the reader's position. KTH_ERR_NOT_FOUND when the variant has none (MPEG-TS, packed audio)
 * or the position is in bytes a live stream released, KTH_ERR_RETRY when a size needed to
 * place it is not known yet. */
KTH_API kth_status kth_stream_init_range(kth_stream *stream, uint64_t *start, uint64_t *end);

/* --- offline prefetch ------------------------------------------------------------------- */

/* kth_hls_prefetch's `variant`: every variant of the ladder, or the top (highest bandwidth)
 * one. Any other negative value is KTH_ERR_OUT_OF_RANGE. */
#define KTH_HLS_ALL_VARIANTS (-1)
#define KTH_HLS_TOP_VARIANT  (-2)

/* Where a prefetch stands, as its progress callback sees it. */
typedef struct kth_hls_progress {
    int variant;          /* the variant being fetched (index in the ladder) */
    int variants_done;    /* variants finished, this one included once it is finished */
    int variant_count;    /* variants this prefetch fetches (1, or the ladder's size) */
    uint64_t bytes;       /* stream bytes of this variant read so far (decrypted) */
    uint64_t total_bytes; /* this variant's stream length once known, else 0 */
    double seconds;       /* media seconds of this variant read so far */
    double total_seconds; /* its duration (sum of EXTINF) */
    uint64_t bytes_all;   /* stream bytes read so far by this prefetch, every variant */
} kth_hls_progress;

/* Called by kth_hls_prefetch on its own (the calling) thread with no lock held: once when a
 * variant starts (bytes 0), at least about every 250 ms while it runs (even when nothing
 * arrives), and once when it is finished (variants_done counts it). Return false to cancel. */
typedef bool (*kth_hls_progress_fn)(void *user, const kth_hls_progress *progress);

/* Downloads everything that offline playback of HLS variants needs into the cache: the master
 * and media playlists, keys, init sections and every segment. Afterwards, a stream opened on
 * the same URL through the same cache directory with `offline` set plays those variants
 * (kth_hls_options.fixed_start and initial_variant, or kth_stream_abr_set_manual, choose one)
 * without any network request.
 *
 * `variant` is an index in the ladder (ascending bandwidth; 0 for a media playlist URL),
 * KTH_HLS_ALL_VARIANTS or KTH_HLS_TOP_VARIANT. Each chosen variant is played by a stream of its
 * own, fixed to that variant, and read to its end with the bytes discarded, so everything goes
 * through the ordinary download path (retries, validation, decryption checks) into the cache
 * given in opts->cache (NULL: kth_cache_default()). `opts` may be NULL (defaults); its HLS
 * options (key hook, fetches in flight, ...) apply except the start variant, and its read_timeout
 * bounds how long the prefetch waits for bytes that do not come. A variant already cached is
 * read from the cache (nothing is fetched again); an offline cache therefore checks that it
 * holds everything (KTH_ERR_OFFLINE_MISS names what it lacks).
 *
 * `progress` may be NULL. Blocks until done, failed or cancelled. Any thread but the
 * downloader's; several prefetches may run at once, in one process or in several over one cache
 * directory.
 *
 * Returns KTH_OK; KTH_ERR_INVALID_ARG (NULL or empty url); KTH_ERR_UNSUPPORTED (not an http(s)
 * URL of an HLS playlist: a path ending in .m3u8; a live or event playlist without
 * EXT-X-ENDLIST, which has no end to fetch; SAMPLE-AES);
 * KTH_ERR_OUT_OF_RANGE (a variant index not in the ladder: found once the master playlist has
 * loaded); KTH_ERR_CANCELLED (the callback returned false); or the failure of the stream
 * (KTH_ERR_HTTP, KTH_ERR_NETWORK, KTH_ERR_FORMAT, KTH_ERR_DECRYPT, KTH_ERR_TIMEOUT,
 * KTH_ERR_OFFLINE_MISS, KTH_ERR_LIMIT, KTH_ERR_IO, ...). On failure, when `err` is not NULL, a
 * sentence naming the URL (and the variant and what failed) is written there (truncated to
 * errlen). What was fetched before a failure or cancel stays in the cache, and a later prefetch
 * does not fetch it again. */
KTH_API kth_status kth_hls_prefetch(const char *url, const kth_stream_options *opts, int variant,
                                    kth_hls_progress_fn progress, void *user, char *err,
                                    size_t errlen);

#ifdef __cplusplus
}
#endif

#endif /* KITHARA_HLS_H */
