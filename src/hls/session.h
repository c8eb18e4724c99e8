/*
 * hls/session.h — the state one HLS stream shares between its reader side (hls_source.c), its
 * downloader peer (hls_peer.c), its keys (keys.c) and its size probes (probe.c).
 *
 * Byte spaces. Each variant has its own virtual byte space (hls_layout: [init] + segments,
 * decrypted). The stream's byte space is a sequence of periods: period 0 starts at stream
 * offset 0 in the initial variant; a variant switch at segment k appends a period whose first
 * byte is the stream offset where the previous period ends (the end of its last segment before
 * the switch), and whose bytes are the new variant's init section in force for segment k (if
 * any) followed by its entries from segment k on. A period's entries are a contiguous run of
 * its variant's layout entries, plus possibly that one init entry in front. Translation from a
 * stream offset to (variant, entry, offset within) happens only in session_locate.
 *
 * Time-seek splices. A time seek that cannot be placed in the existing periods without learning
 * sizes nobody has fetched (or that would land an fMP4 segment without its init section in
 * front) starts a new period instead, at a stream offset chosen so that no offset already handed
 * out changes meaning: the splice point is one past the furthest byte a read has handed out
 * (served_end). The period holding the byte before the splice point is cut there
 * (cut, cut_length: its bytes end mid-entry if need be), the periods after it are dropped (no
 * byte of them was handed out), and the new period has a known base, so placing it needs no
 * size at all: a cold seek fetches the (key,) init section and target segment only.
 *
 * Entry bytes live in cache resources, one per entry (key: the URL, plus "#bytes=a-b" for a
 * byte range), opened on demand into slots and closed again when far from the reader, so
 * memory stays flat however long the presentation is.
 *
 * Other streams of the same URL in this process open the same cache resources (the cache hands
 * out one handle per key), so every fetch first claims its resource as its one writer
 * (cache_resource_claim_writer). A resource another stream is writing is waited for, not
 * fetched: its bytes reach every reader through the shared storage, and the claim's release
 * token (watched through session_watch_release) wakes the peer when that writer ends, so a
 * stream whose writer went away (closed, seek, failure) fetches what is missing itself. A
 * session never ends a storage resource because of its own failure: others may be reading it.
 *
 * Lock: session.lock guards periods, slots, the fetch bookkeeping, the key table and the failure.
 * Lock order: stream state → session.lock → cache handle → resource → cache index; layouts and
 * ABR controls have leaf locks. Nothing is called out (downloader submit, peer wake, cancel,
 * bus publish) with session.lock held, except net_batch_add inside poll_next, which only queues.
 */
#ifndef KTH_HLS_SESSION_H
#define KTH_HLS_SESSION_H

#include <kithara/hls.h>
#include <kithara/media.h>

#include "abr/controller.h"
#include "abr/controls.h"
#include "abr/estimator.h"
#include "cache/cache.h"
#include "drm/aes128.h"
#include "hls/hls_source.h"
#include "hls/layout.h"
#include "hls/live.h"
#include "hls/playlist.h"
#include "hls/presentation.h"
#include "net/downloader.h"
#include "platform/sync.h"
#include "platform/text.h"
#include "stream/source.h"

#include <stdatomic.h>

#define HLS_MAX_PERIODS 4096
#define HLS_KEEP_BEHIND 256 /* periods a live stream keeps behind the reader (byte seeks back) */
#define HLS_ERR_MAX     512
struct segment_fetch; /* segment_fetch.h */

/* One layout entry's bytes. */
typedef struct hls_slot {
    cache_resource *res;       /* NULL when closed */
    storage_resource *storage; /* reference held while open */
    bool fetching;
    bool urgent; /* the fetch was started for a waiting reader */
    platform_cancel *fetch_cancel;
    int64_t fetch_started_ns;
    uint64_t mark; /* the last poll whose window held this entry */
    /* The running fetch while fetching (its progress, for the stall rescue); the downloader
     * thread's only. */
    struct segment_fetch *fetch;
    size_t open_index; /* while open: its place in the session's open list */
} hls_slot;

/* An open slot, as the session's open list names it. */
typedef struct hls_open_slot {
    size_t variant, entry;
} hls_open_slot;

typedef struct hls_variant_state {
    char *uri;        /* media playlist URL */
    hls_playlist *pl; /* NULL when it could not be loaded */
    hls_layout *layout;
    /* One slot per layout entry, in chunks of HLS_SLOT_CHUNK that never move (a slot's address
     * is its fetch's writer identity), reached through session_slot. A live playlist's reloads
     * add chunks. */
    hls_slot **slot_chunks;
    uint16_t *chunk_open; /* per chunk: its open slots; a chunk is freed when none is left */
    size_t slot_cap;      /* slots allocated: a multiple of HLS_SLOT_CHUNK, >= entry_count */
    size_t entry_count;
    /* A live stream's view of this variant's playlist (live_reload.c), valid once `tracked`:
     * what its reloads have taken in. The model's segment window_start + i is the last
     * playlist's segment i (media sequence tracker.window_first + i): this is how variants are
     * matched by media sequence number, since each model numbers its segments from its own
     * first load. */
    struct {
        bool tracked;
        hls_live_tracker tracker;
        size_t window_start; /* the model's first segment the last playlist lists */
        uint64_t window_seq; /* the media sequence of segment window_start */
        /* The model's first segment since the server last restarted or jumped: those before
         * it are not the current numbering's, so the window never starts before it. */
        size_t run_start;
        size_t released;      /* segments before it had their cached bytes dropped */
        int64_t requested_ns; /* downloader clock: start of its last playlist request */
        int64_t learned_ns;   /* start of the request whose playlist the window is from */
        bool stuck;           /* its playlist stopped changing */
        unsigned failures;    /* fetches of its playlist that failed in a row */
    } live;
} hls_variant_state;

#define HLS_SLOT_CHUNK 256

/* What every slot of a chunk not made yet reads as: closed. Read-only (a write to it faults). */
extern const hls_slot hls_slot_closed;

/* The slot of layout entry `entry` (< slot_cap) of a variant. Lock held. A chunk is made when
 * one of its slots is opened (session_open_slot) and freed when its last open slot closes, so a
 * long presentation costs what is open near the reader plus a pointer per HLS_SLOT_CHUNK
 * entries; a slot of a chunk not made is hls_slot_closed, which must not be written: write only
 * to a slot that is open. */
static inline hls_slot *session_slot(const hls_variant_state *v, size_t entry)
{
    hls_slot *chunk = v->slot_chunks[entry / HLS_SLOT_CHUNK];
    return chunk ? &chunk[entry % HLS_SLOT_CHUNK] : (hls_slot *)&hls_slot_closed;
}

/* The variant's first segment whose URI its model still holds: 0, or on a live stream the
 * first not released (hls_live_merge). What a variant's container or first bytes are judged
 * by. Lock held; the variant's playlist is loaded and has segments. */
static inline size_t session_first_held_segment(const hls_variant_state *v)
{
    size_t count = v->pl->media.segment_count;
    return v->live.released < count ? v->live.released : count - 1;
}

/* Makes room for `count` slots, the new ones closed (their chunks are made when first opened);
 * existing slots do not move. Lock held (or before the session is shared). KTH_ERR_NO_MEMORY
 * leaves the variant as it was. */
kth_status session_grow_slots(hls_variant_state *v, size_t count);
/* Frees the slot chunks (every slot closed). */
void session_free_slots(hls_variant_state *v);

typedef struct hls_period {
    size_t variant;
    size_t first_segment; /* in its variant */
    size_t prefix_init;   /* init entry in front of first_entry, or HLS_NONE */
    size_t first_entry;   /* first entry of the run */
    size_t end_entry;     /* one past the last entry (entry_count for the last period) */
    bool base_known;
    uint64_t base;       /* stream offset of its first byte */
    bool cut;            /* a time seek spliced the stream inside or at the end of this period */
    uint64_t cut_length; /* when cut: its bytes in the stream (the rest is never read) */
} hls_period;

/* A key, fetched once per URI. */
typedef struct hls_key_state {
    char *uri;
    bool loaded;
    bool fetching;
    bool announce; /* loaded from the cache; its KTH_EVENT_HLS_KEY is not published yet */
    uint8_t key[16];
} hls_key_state;

/* Where a stream offset lands. */
typedef struct hls_place {
    size_t period;
    size_t variant;
    size_t entry;
    uint64_t within;
    uint64_t entry_stream_start; /* stream offset of the entry's first byte */
} hls_place;

typedef enum hls_locate {
    HLS_LOCATED,   /* *place filled */
    HLS_NEED_SIZE, /* place->variant/entry name the entry whose size is needed */
    HLS_PAST_END,  /* at or past the proven end */
    HLS_RELEASED,  /* before the first period: a live stream dropped those bytes' periods
                      (session_drop_released_periods); *place names the first period's start */
} hls_locate;

/* The live side of a session (live_reload.c, live_switch.c). Guarded by the session lock. */
typedef struct hls_session_live {
    /* on: the stream's playlist had no end when it opened (never cleared); open: no
     * EXT-X-ENDLIST yet, the layout grows. */
    bool on, open;
    size_t variant;  /* the variant of the last period: the one reloaded on the timer */
    int64_t next_ns; /* downloader clock: when the next reload is due */
    bool reloading;
    /* A switch waits for a fresh playlist of `want` (SIZE_MAX: none), fetched at once
     * (want_loading while it is). rescue: the switch leaves a stuck playlist, so it is made
     * whatever ABR says, at the end of what the stuck one lists. */
    size_t want;
    bool want_loading, rescue;
    bool rescue_note; /* a rescue switched: rescue_abr is to be published */
    kth_event_abr rescue_abr;
    unsigned failures;  /* reloads failed in a row */
    hls_live_kind kind; /* of the first playlist */
    bool stuck;         /* no more reloads: a reader at the edge fails with the message */
    char stuck_msg[HLS_ERR_MAX];
    uint64_t target; /* the last playlist's target duration, seconds */
    double window_s; /* the last playlist's media seconds and segments */
    size_t window_segments;
    /* The first segment of the live variant whose fence waits for room in the period table
     * (a reader standing still far behind fills it), SIZE_MAX when none: fenced once periods
     * go (session_drop_released_periods) or a skip rebuilds the periods after the reader. */
    size_t unfenced;
    storage_resource *edge; /* never written: what a reader at the live edge waits on */
    hls_playlist **retired; /* models replaced by reloads, freed at close */
    size_t retired_count, retired_cap;
} hls_session_live;

/* Where the reader is and what it was handed (hls_source.c; the splices of time seeks and the
 * placing of switches and fences read it). Guarded by the session lock. */
typedef struct hls_session_reader {
    /* How far playback has got (kth_stream_abr_report_played): media seconds, valid while
     * played_known, which a seek clears. */
    double played_s;
    bool played_known;
    /* The furthest entry a read located: bytes up to its end may have been handed out, so a
     * switch is never placed before it, and at it only while no byte of it was handed out
     * (served_end at its start); such a switch moves cut_generation, and a read that located
     * the entry before hands out nothing (it reads again). */
    size_t period, entry;
    uint64_t cut_generation;
    /* One past the furthest stream byte a read handed out: a time-seek splice is placed here,
     * never before. A read that located its bytes before a splice (splice_generation moved)
     * hands out nothing and reports the seek instead. */
    uint64_t served_end;
    uint64_t splice_generation;
    /* The variant fence and the reader's last error. */
    size_t acked_period; /* the period whose bytes the reader may read without a fence */
    bool fence_pending;
    size_t fence_period;
    char error[HLS_ERR_MAX];
} hls_session_reader;

typedef struct hls_session hls_session;

struct hls_session {
    stream_source base;
    char *url;
    kth_hls_options hls;
    kth_downloader *downloader; /* reference held; NULL offline */
    kth_cache *cache;
    kth_bus *bus;                     /* reference held; may be NULL */
    uint64_t origin;                  /* event origin */
    atomic_uint_fast64_t budget_seen; /* the cache's budget state last told the bus */
    cache_asset *asset;
    bool offline;
    int64_t timeout_ms;

    hls_playlist *master; /* NULL when the URL was a media playlist */
    hls_ladder ladder;
    hls_variant_state *variants; /* ladder.count */
    bool *variant_loading;       /* ladder.count: a playlist fetch is running */
    bool *variant_failed;        /* ladder.count: its playlist could not be used */
    abr_variant abr_ladder[ABR_MAX_LEVELS];
    size_t abr_count; /* rungs ABR may choose (the first ABR_MAX_LEVELS usable ones) */

    platform_mutex lock; /* see the file comment */
    hls_period *periods; /* grows: never keep a pointer into it across an append */
    size_t period_count, period_cap;
    hls_key_state *keys;
    size_t key_count, key_cap;
    /* The open slots, in no order: what sweeps walk, so their cost follows what is open, not
     * the length of the presentation (whose slot arrays are never touched otherwise). */
    hls_open_slot *open;
    size_t open_count, open_cap;
    unsigned in_flight;
    unsigned segments_since_switch;
    kth_hls_stats stats; /* what kth_stream_hls_stats reports; under lock */
    kth_status failure;
    char failure_msg[HLS_ERR_MAX];
    /* The failure is that of entry failed_entry of failed_variant (a segment or init fetch): a
     * read of an entry before it whose bytes are there or on their way still gets them, and
     * the reader meets the failure where it stands (hls_source.c). */
    bool failure_at_entry;
    size_t failed_variant, failed_entry;
    net_peer *peer;
    storage_resource *waiting; /* the storage the reader waits on (reference), or NULL */
    /* Moves when the session fails, ending the reader's wait (the storage it waits on may be
     * another stream's, which goes on). */
    _Atomic uint64_t wake_epoch;
    struct hls_watch *watches; /* claims of other streams the peer waits to end */
    bool rewake;               /* a watched claim had ended already: poll again */
    bool unwatched;            /* closing: no new watches (their wakes would outlive the peer) */

    /* ABR: the estimator and controller belong to the downloader thread (on_sample, poll). */
    abr_controls controls;
    abr_estimator estimator;
    abr_controller controller;
    double last_buffer_s;
    uint64_t poll_generation; /* counts polls: a slot's mark says which last held it */
    /* Events the downloader thread publishes when a value changes (its own fields). */
    double published_buffer_s;     /* the last KTH_EVENT_HLS_BUFFER_LEVEL's, or < 0 */
    bool end_published;            /* KTH_EVENT_HLS_END_OF_STREAM holds for the current window */
    bool first_segment_in;         /* a segment fetch of this stream completed: until then the
                                      first segment the reader lacks is fetched alone */
    atomic_size_t current_variant; /* the variant of the reader's period, for queries */
    /* The stream's timeline, published for the downloader thread on the stream's first call
     * (the stream sets base.timeline only after the source exists). */
    _Atomic(const stream_timeline *) timeline;

    hls_session_live live; /* live_reload.c, live_switch.c; guarded by lock */

    hls_session_reader reader; /* hls_source.c, splices, switches; guarded by lock */

    /* Media info learned from the first bytes of the playing variant (media_probe.c): 0 not
     * asked yet, 1 being fetched, 2 done (info_probed valid, guarded by lock). */
    atomic_int info_state;
    kth_media_info info_probed;
};

/* The reader's position as the peer sees it (0 before the stream's first call). */
uint64_t session_reader_position(hls_session *s);
/* Publishes base.timeline for other threads; called at the top of every source op. */
void session_attach(hls_session *s);

/* --- session.c: periods, slots, failure ------------------------------------------------- */

/* Locates stream `offset`. Lock held. */
hls_locate session_locate(hls_session *s, uint64_t offset, hls_place *place);
/* Opens the slot of (variant, entry) if needed: cache lookup, sizes learned from what is
 * cached. Offline, a missing entry is KTH_ERR_OFFLINE_MISS with err; a live segment the stream
 * released (its bytes and URI dropped) is KTH_ERR_NOT_FOUND with err, and is never opened. Lock
 * held. */
kth_status session_open_slot(hls_session *s, size_t variant, size_t entry, char *err,
                             size_t errlen);
/* Closes a slot that is not fetching. Lock held. It may reorder the open list: a walk of it that
 * closes goes from its end to its start. */
void session_close_slot(hls_session *s, size_t variant, size_t entry);
/* The cache resource key of an entry (its URI, plus "#bytes=a-b" for a byte range) as a new
 * string the caller frees: whole, however long the URI; NULL when memory runs out. Lock held. */
char *session_entry_key(hls_session *s, size_t variant, size_t entry);
/* A sentence naming an entry for messages ("segment 3 (https://…/seg3.ts) of variant 1"),
 * its URI shown as an excerpt of at most PLATFORM_SHOWN_MAX - 1 bytes. Lock held. */
void session_entry_name(hls_session *s, size_t variant, size_t entry, char *buf, size_t size);
/* Records the plaintext size of an entry in its layout and resource. Lock held. */
kth_status session_set_entry_size(hls_session *s, size_t variant, size_t entry, uint64_t size);
/* Fails the stream: records status and message (first failure wins) and ends the reader's wait
 * (wake_epoch). Storage resources are left as they are: other streams may be reading them. Lock
 * held. */
void session_fail_locked(hls_session *s, kth_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Recomputes the bases of periods whose previous period's sizes are now known. Lock held. */
void session_update_bases(hls_session *s);
/* Appends a period for `variant` starting at its segment `first_segment`. The period before
 * (if any) ends where its own segment `prev_end_segment` begins, or at the end of its model
 * when that is its segment count (ignored for the first period). Lock held. Returns false, changing
 * nothing, when the table is full, the previous period would be left empty, or its end would fall
 * before the entry the reader is in, or at it when bytes of it were handed out. */
bool session_append_period(hls_session *s, size_t variant, size_t first_segment,
                           size_t prev_end_segment);
/* True when the period table is at its cap: no period can be appended or spliced. Lock held. */
bool session_periods_full(const hls_session *s);
/* Drops periods at the front of the table, so a live stream whose fences and switches keep
 * adding periods keeps a bounded table. Of those wholly before the reader's position, the
 * furthest entry a read located, the acknowledged and pending fence periods and the last byte
 * handed out, it drops each whose every segment its live variant released, and each more than
 * HLS_KEEP_BEHIND periods back (an event playlist releases nothing). Offsets before the first
 * period left are HLS_RELEASED from then on: a byte seek there fails, a time seek does not.
 * Every period index the session keeps (reader.period, acked_period, fence_period) moves down
 * with the table; indices are only held under the lock, so no read in flight holds one. Lock
 * held. Returns how many went. */
size_t session_drop_released_periods(hls_session *s);
/* Drops the periods after `index`, which becomes the last and runs to the end of its variant's
 * model again. Lock held. Returns false, changing nothing, when a read may have reached a
 * later period (the furthest entry located, the acknowledged or a pending fence is in one) or
 * a splice cut `index`. */
bool session_drop_periods_after(hls_session *s, size_t index);
/* The segment of its variant at which period `index` ends: its model's segment count when it
 * runs to the end. Lock held. */
size_t session_period_end_segment(const hls_session *s, size_t index);
/* Starts a time-seek splice (see the file comment): a new last period of `variant` from its
 * segment `segment`, with the init section in force for it in front, at stream offset
 * served_end. *index is the new period, *base its first stream byte. The reader is taken to
 * have acknowledged it (after a time seek the decoder starts afresh). Lock held. Returns false,
 * changing nothing, when the period table is full or memory runs out. */
bool session_splice(hls_session *s, size_t variant, size_t segment, size_t *index, uint64_t *base);
/* The last entry of the last period that holds bytes (or may: size unknown); its commit
 * proves the end of the stream. Lock held. */
void session_last_entry_with_bytes(hls_session *s, size_t *variant, size_t *entry);
/* The entries of a period, in stream order: prefix init (if any), then [first, end). */
size_t session_period_entries(const hls_period *p, size_t *first);
/* Opens the asset's cache resource `name` and claims it as its one writer for `owner`.
 * KTH_OK: *res is open and claimed, or NULL when the resource cannot be opened (the caller goes
 * on without the cache). KTH_ERR_BUSY: another writer holds it; *released (may be NULL) is a
 * reference, which the caller takes over, to a token that fires when that claim ends.
 * KTH_ERR_STATE: it is no longer being written (stored meanwhile, or unusable). On any status
 * but KTH_OK, *res is NULL. Lock held or not: it touches only the cache. */
kth_status session_claim_resource(hls_session *s, const char *name, const void *owner,
                                  cache_resource **res, platform_cancel **released);
/* Wakes the peer once the claim whose release token is `released` ends (another stream's
 * writer of a resource this session needs). Takes over the reference. When that claim has ended
 * already, sets rewake instead, for the poll to look again. Lock held. */
void session_watch_release(hls_session *s, platform_cancel *released);
/* Stops watching every claim, for good (before the peer goes away). Lock not held. */
void session_unwatch_all(hls_session *s);
/* Publishes an event (no lock held). */
void session_publish(hls_session *s, kth_event_kind kind, int status, const kth_event_abr *abr,
                     const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* --- fetch.c: one-off requests and cached text resources -------------------------------- */

typedef struct hls_body {
    uint8_t *data;
    size_t len, cap;
    size_t max;
    int http_status;
    kth_status status;
    bool has_total_length;
    uint64_t total_length;
    char *final_url; /* after redirects, whole (heap); NULL before a response */
    char message[HLS_ERR_MAX];
} hls_body;

/* Records the URL a response came from (a copy replaces any earlier one). KTH_ERR_NO_MEMORY
 * leaves final_url NULL. */
kth_status hls_body_set_final_url(hls_body *b, const char *url);

/* Fetches url (GET or HEAD, optional range [start, end)) into memory, waiting (condvar) until
 * it completes, `cancel` fires or the deadline passes. validate_html rejects HTML pages. Any
 * thread but the downloader's. */
kth_status hls_fetch_blocking(kth_downloader *d, const char *url, net_method method, bool has_range,
                              uint64_t start, uint64_t end, const char *const *headers,
                              bool validate_html, size_t max, int64_t deadline_ns,
                              platform_cancel *cancel, hls_body *out);
/* Frees the body's data and final URL (the struct itself is the caller's). */
void hls_body_free(hls_body *b);

/* Loads a playlist: from the asset's cache when it holds it complete, else over the network
 * (validated: not HTML; gzip accepted), and stores it. *out is the parsed model. */
kth_status hls_load_playlist(hls_session *s, const char *url, hls_playlist **out, char *err,
                             size_t errlen);

/* The playlist the cache holds complete: KTH_ERR_NOT_FOUND when it does not (online), or
 * KTH_ERR_OFFLINE_MISS (offline). */
kth_status hls_playlist_cached(hls_session *s, const char *url, hls_playlist **out, char *err,
                               size_t errlen);
/* Parses a fetched playlist and stores it in the cache (unless it is a live or event media
 * playlist, which may change). */
kth_status hls_playlist_accept(hls_session *s, const char *url, const char *final_url,
                               const uint8_t *body, size_t len, hls_playlist **out, char *err,
                               size_t errlen);

/* --- variants.c ------------------------------------------------------------------------- */

/* Makes variant v usable with its media playlist (owned from now on): keys checked, layout
 * and slots built, the ABR ladder extended. Lock held (or before the session is shared). On
 * failure pl is freed. */
kth_status hls_variant_setup(hls_session *s, size_t v, hls_playlist *pl, char *err, size_t errlen);
/* Loads the media playlists of variants not loaded yet: those the cache holds at once, then
 * one fetch added to the batch, and no new fetch while one runs (the next poll goes on); none
 * once a live stream has ended. Lock held; inside poll_next. */
void hls_variants_load_more(hls_session *s, net_batch *batch);
/* Net callbacks of a playlist fetch into memory: `user` points to an hls_body (or a struct
 * that begins with one). Non-2xx is KTH_ERR_HTTP; a body over the playlist limit
 * KTH_ERR_LIMIT. Downloader thread. */
kth_status hls_playlist_on_response(void *user, const net_response *resp);
kth_status hls_playlist_on_write(void *user, uint64_t offset, const void *data, size_t n);

/* --- live_reload.c: live and event playlists ------------------------------------------- */

/* Makes the session live when variant v's playlist (set up, the stream's first) has no end:
 * the stream starts at the live start segment (*start, else 0 for VOD), the layout stays open,
 * and the peer reloads the playlist on its timer. request_ns
 * is when the playlist's request started (downloader clock). Before the session is shared.
 * KTH_ERR_NO_MEMORY, or KTH_ERR_OFFLINE_MISS offline (a live stream cannot be replayed). */
kth_status hls_live_open(hls_session *s, size_t v, int64_t request_ns, size_t *start, char *err,
                         size_t errlen);
/* Puts a fence (a new period of the live variant) in front of every segment from `from` on that
 * follows EXT-X-DISCONTINUITY, after the stream's current last period. Lock held. */
void hls_live_fences(hls_session *s, size_t from);
/* The periods after segment k of the live variant were made anew (a skip or a time-seek splice
 * starts the last period there): the discontinuities after k get their fences again, and no
 * fence waits any more for one before. Lock held. */
void hls_live_refence_after(hls_session *s, size_t k);
/* When fences wait for room in the period table, lets go of the periods no read needs and makes
 * them (the reader moved on; reloads may have stopped). Lock held. */
void hls_live_make_room(hls_session *s);
/* In a poll: adds the reload to the batch when it is due; returns the seconds until it is
 * (0: nothing to wait for). Lock held. */
double hls_live_poll(hls_session *s, net_batch *batch, int64_t now_ns);
/* A fetch of `entry` of `variant` failed with HTTP `http_status`. When the stream is live, the
 * status is 404 or 410 and the entry is a segment that has left the playlist (the reader fell
 * behind the window), the stream's bytes end before it and go on at the first segment still
 * listed, behind a fence the reader meets there: true, and *ev is the event to publish (kind 0
 * when the entry had been skipped already). False: the failure is the stream's. Lock held. */
bool hls_live_skip_gone(hls_session *s, size_t variant, size_t entry, int http_status,
                        kth_event *ev);
/* A variant other than the first got its playlist (set up) while the stream is live, from a
 * request that started at request_ns: its reloads are tracked from now on, so that a switch
 * can find its segments by media sequence. Lock held. */
void hls_live_variant_loaded(hls_session *s, size_t v, int64_t request_ns);
/* Whether a live switch can be placed now (hls_live_map). */
typedef enum hls_live_match {
    HLS_LIVE_MATCH,    /* *to_segment is the place */
    HLS_LIVE_NO_MATCH, /* not at this segment */
    HLS_LIVE_WAIT,     /* a fresh playlist of the target is on its way: ask again when it is in */
} hls_live_match;
/* The segment of variant `to` with the media sequence of segment `segment` of the live
 * variant: HLS_LIVE_MATCH with *to_segment when to's last playlist lists it. When that
 * playlist is older than the segment, a fresh one is asked for (fetched at the next poll, at
 * most every half target duration; the peer is woken when it is in): HLS_LIVE_WAIT while it
 * can come at once, else HLS_LIVE_NO_MATCH. now_ns: the downloader's clock. Lock held. */
hls_live_match hls_live_map(hls_session *s, size_t segment, size_t to, int64_t now_ns,
                            size_t *to_segment);
/* A period of variant `to` from its segment `first` was appended: `to` is the live variant from
 * now on (reloaded on the timer, its discontinuities fenced, its end the stream's). Lock
 * held. */
void hls_live_switched(hls_session *s, size_t to, size_t first);
/* The live variant's playlist is stuck: leaves it for another variant whose playlist still
 * moves, at the end of what the stuck one lists. True while a switch is under way (a fresh
 * playlist of the chosen variant is fetched, and it is tried again when it arrives) or made;
 * false when no variant is left to try (the stream is stuck). Lock held. */
bool hls_live_rescue(hls_session *s);
/* Publishes the variant change a rescue made, if any. No lock held. */
void hls_live_publish_rescue(hls_session *s);
/* Frees what live state the session holds. */
void hls_live_free(hls_session *s);

/* --- keys.c ----------------------------------------------------------------------------- */

/* Checks that every key of a media playlist is one kithara can use (AES-128, identity). */
kth_status hls_keys_check_playlist(const hls_playlist *pl, const char *url, char *err,
                                   size_t errlen);
/* The key state for `uri`, created if new (from the cache when it holds it). Lock held. NULL on
 * allocation failure. */
hls_key_state *hls_keys_get(hls_session *s, const char *uri);
/* Makes sure key `uri` is loaded, fetching it and waiting when needed (for probes). Called
 * without the lock. */
kth_status hls_keys_load_blocking(hls_session *s, const char *uri, uint8_t key[16],
                                  const stream_wait_ctx *ctx);
/* Drops the cached copy of key `uri` (it failed to decrypt a segment), so a later session
 * fetches it anew. Called without the lock. */
void hls_keys_forget(hls_session *s, const char *uri);
/* Adds the fetch of a key to a poll batch. Lock held. */
kth_status hls_keys_fetch(hls_session *s, hls_key_state *k, net_batch *batch);
/* Fills out[0..max) with the KTH_EVENT_HLS_KEY events of keys loaded from the cache and not
 * announced yet (each is announced once), for the caller to publish once it has released the
 * lock. Returns how many. Lock held. */
size_t hls_keys_cached_events(hls_session *s, kth_event *out, size_t max);

/* --- hls_peer.c ------------------------------------------------------------------------- */

kth_status hls_peer_start(hls_session *s);
void hls_peer_wake(hls_session *s);
/* Applies a manual choice now: the period of the chosen variant begins at the segment boundary
 * after the reader's segment (when the reader is in the last period). No lock held. */
void hls_peer_manual_switch(hls_session *s);

/* --- media_probe.c ---------------------------------------------------------------------- */

/* Fills the codec, sample rate and channels *info lacks from the first bytes of `variant`: the
 * init section of an fMP4 variant, else the first HLS_MEDIA_PROBE_BYTES of its first segment
 * (decrypted when AES-128), fetched once per session with one ranged GET into memory (nothing
 * is written to the cache but the key). Later calls reuse the answer; a call while another is
 * fetching, an offline session or a failed fetch leaves *info as it was. Blocks up to the
 * session's timeout. Called without the lock, on any thread but the downloader's. */
void hls_media_probe(hls_session *s, size_t variant, kth_media_info *info);

/* --- probe.c ---------------------------------------------------------------------------- */

/* Learns the plaintext size of an entry without fetching all of it (HEAD, or the last two
 * blocks of an encrypted one). Called without the lock; honours ctx. */
kth_status hls_probe_size(hls_session *s, size_t variant, size_t entry, const stream_wait_ctx *ctx);

#endif
