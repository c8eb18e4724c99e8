/*
 * progressive.c — a single media file over HTTP: one shared download per (cache, URL) that
 * follows its readers, and a stream source per reader.
 *
 * Objects:
 * - file_shared: the writer side. It owns the cache lease and resource handle, the peer
 *   registered with the downloader (online, even for a complete file: a cached block that fails
 *   its checksum is dropped and fetched again), and the state of the one fetch in flight. Shared
 *   by every stream of the same URL and cache through a process-wide registry (registry_lock, a
 *   leaf taken only to find/insert/remove entries and count references).
 * - file_source: one stream's reader side. It reads through an inner resource source over the
 *   shared storage resource (so waiting, reading and media probing are the resource source's),
 *   and adds what the network needs: waking the peer when bytes are missing, moving the fetch on
 *   a seek, resuming a paused fetch as the reader advances, and offline misses.
 *
 * Lock: file_shared.lock guards the fetch state, the reader list and the storage pointer. Lock
 * order: stream state → file_shared → cache handle → resource → cache index. Callbacks of the
 * downloader take it briefly; cache writes (which may sync to disk) run without it. Nothing is
 * ever cancelled or woken with it held.
 *
 * Invariants:
 * - At most one fetch of a file is in flight (fetch_active), and it writes only into the gap it
 *   was started for: the writer stops at the first byte already present, so present bytes are
 *   never rewritten by a second, possibly different, body.
 * - generation moves when the cached bytes were invalidated (the server's file changed), and
 *   once when partly cached bytes were confirmed valid; a reader that handed out bytes of an
 *   older generation fails with KTH_ERR_CHANGED, so no reader ever sees two versions.
 */
#include "file/progressive.h"

#include "cache/cache.h"
#include "file/radio.h"
#include "net/downloader.h"
#include "platform/log.h"
#include "platform/sync.h"
#include "stream/resource_source.h"
#include "platform/mem.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_READAHEAD    ((uint64_t)16 << 20)
#define DEFAULT_RADIO_WINDOW ((uint64_t)2 << 20)

typedef struct file_source file_source;
typedef struct file_shared file_shared;

struct file_shared {
    /* Registry fields, guarded by registry_lock. */
    int refs;
    bool dying; /* last reference gone; still listed until its cache handle is closed */
    file_shared *next;
    kth_cache *cache;
    char *url;

    platform_mutex lock; /* see the file comment for what it guards and its lock order */
    cache_asset *asset;
    cache_resource *res;
    storage_resource *storage; /* current storage of res (reference held) */
    _Atomic uint64_t generation;
    /* Partly cached bytes are not served until a response of this session confirmed that the
     * server still has the same file. Until then readers wait on `placeholder`, an empty
     * resource that is failed with KTH_ERR_CHANGED once the check is done, which makes them
     * follow the generation to the real (or fresh) storage. */
    bool validated;
    storage_resource *placeholder;
    net_peer *peer; /* NULL when nothing will ever be fetched (offline, or no downloader) */
    uint64_t readahead;
    char content_type[CACHE_TEXT_MAX];

    file_source **readers;
    size_t reader_count, reader_cap;
    size_t reader_slots; /* sources that exist (attached or not); reader_cap >= reader_slots */

    bool fetch_active;
    bool stop_requested; /* the writer (or a seek) ended the fetch on purpose */
    platform_cancel *fetch_cancel;
    uint64_t fetch_start, write_pos, gap_end; /* gap_end UINT64_MAX: open */
    /* Paused: the reader position beyond which the peer should be woken (UINT64_MAX: none). */
    _Atomic uint64_t resume_at;
    /* A reader waits for the length (SEEK_END): fetch to the end regardless of read-ahead. */
    atomic_bool length_wanted;
    /* Readers blocked waiting for bytes or the length: the fetch then must keep up the
     * downloader's waiting_min_bytes_per_second, or it is abandoned and resumed. */
    atomic_uint waiting_readers;
    /* Moves each time a failed download is given another try (revive_locked): readers then
     * take the fresh storage, which holds the same bytes. */
    _Atomic uint64_t revival;
    /* Set once, when the first response turned out to be a radio stream; from then on every
     * byte goes there and the storage above is failed (nothing of it is cached). */
    _Atomic(radio_feed *) radio;
    uint64_t radio_window;
    int64_t radio_due_ns; /* the next connection is due (downloader's clock); lock held */
    atomic_uint_fast64_t budget_seen; /* the cache's budget state last told the readers */
    /* Why the cache refused the body's bytes (a full disk, ...), for the readers' message;
     * written by the downloader's thread before the fetch ends, read when it ends. */
    char *write_error; /* NULL when none; owned */
    kth_downloader *downloader;
    /* Another process writes the file's cached copy (this handle follows it): what it had
     * recorded at the last look, when that last grew (downloader's clock) and where its newest
     * bytes end (UINT64_MAX: unknown); whether the first look's benefit of the doubt was
     * given. Downloader thread, lock held. */
    bool following, follow_granted;
    uint64_t follow_recorded;
    uint64_t follow_front;
    int64_t follow_moved_ns;
};

struct file_source {
    stream_source base;
    file_shared *sh;
    /* Joined the shared reader list (which the downloader thread reads, timeline included).
     * Joining waits for the first call from the stream, because the stream sets base.timeline
     * only after the source is created. */
    atomic_bool attached;
    /* Resource source over the generation's storage. The reader thread replaces it (and only
     * it does, so its own calls need no lock); calls from other threads (length, media info,
     * notify, last error) hold inner_lock, which the swap holds too. inner_lock is a leaf
     * above the resource's own lock. */
    stream_source *inner;
    platform_mutex inner_lock;
    uint64_t revival; /* sh->revival the inner source's storage belongs to */
    uint64_t generation;
    bool delivered;            /* bytes were handed out (reader thread only) */
    char error[512];           /* reader thread only */
    kth_bus *bus;              /* this reader's events (reference), or NULL */
    radio_reader radio_fences; /* reader thread only */
    /* Radio: the feed offset of this stream's offset 0. A stream that opens on a radio already
     * playing starts at its newest byte, not at bytes long gone. */
    uint64_t radio_base;
};

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t registry_cond = PTHREAD_COND_INITIALIZER; /* a dying entry left */
static file_shared *registry;

/* ---- writer side (downloader thread) ---- */

/* The furthest byte the fetch may run to before pausing: readahead past the furthest reader.
 * Lock held. */
static uint64_t readahead_limit_locked(file_shared *sh)
{
    if (atomic_load(&sh->length_wanted) && !storage_resource_length(sh->storage, NULL))
        return UINT64_MAX;
    uint64_t furthest = 0;
    for (size_t i = 0; i < sh->reader_count; i++) {
        const stream_timeline *t = sh->readers[i]->base.timeline;
        uint64_t p = t ? stream_timeline_position(t) : 0;
        if (p > furthest)
            furthest = p;
    }
    return furthest > UINT64_MAX - sh->readahead ? UINT64_MAX : furthest + sh->readahead;
}

/* Picks the next range to fetch: the nearest missing byte ahead of a reader within readahead;
 * else, when every reader has everything to the end, the first hole anywhere. Lock held. */
static bool choose_gap_locked(file_shared *sh, storage_range *out)
{
    uint64_t length = 0;
    bool length_known = storage_resource_length(sh->storage, &length);
    uint64_t limit = length_known ? length : UINT64_MAX;
    bool found = false, ahead_missing = false;
    uint64_t best_distance = UINT64_MAX;
    for (size_t i = 0; i < sh->reader_count; i++) {
        const stream_timeline *t = sh->readers[i]->base.timeline;
        uint64_t p = t ? stream_timeline_position(t) : 0;
        storage_range gap;
        if (p >= limit || !storage_resource_first_gap(sh->storage, p, limit, &gap))
            continue;
        ahead_missing = true;
        uint64_t distance = gap.start - p;
        if (distance < sh->readahead && distance < best_distance) {
            best_distance = distance;
            *out = gap;
            found = true;
        }
    }
    if (found)
        return true;
    /* A reader waits for the length: run to the end, filling what lies on the way. */
    if (!length_known && atomic_load(&sh->length_wanted))
        return storage_resource_first_gap(sh->storage, 0, UINT64_MAX, out);
    if (!sh->validated && sh->reader_count > 0)
        return storage_resource_first_gap(sh->storage, 0, UINT64_MAX, out); /* to validate */
    if (ahead_missing || sh->reader_count == 0)
        return false; /* paused: readers have enough ahead of them */
    /* Everything ahead of every reader is present: fill holes left behind by seeks. */
    return storage_resource_first_gap(sh->storage, 0, limit, out);
}

static radio_feed *radio_of(file_shared *sh)
{
    return atomic_load(&sh->radio);
}

/* Hands an event to the bus of every reader (each publishes to its own); a radio event's offset
 * is moved into each reader's byte space. Downloader thread, no lock held. */
static void publish_readers(file_shared *sh, const kth_event *ev)
{
    bool radio = ev->kind >= KTH_EVENT_RADIO_TITLE && ev->kind <= KTH_EVENT_RADIO_RECONNECTED;
    platform_mutex_lock(&sh->lock);
    for (size_t i = 0; i < sh->reader_count; i++) {
        file_source *fs = sh->readers[i];
        if (!fs->bus)
            continue;
        kth_event mine = *ev;
        if (radio) {
            uint64_t o = mine.payload.radio.offset;
            mine.payload.radio.offset = o > fs->radio_base ? o - fs->radio_base : 0;
        }
        kth_bus_publish(fs->bus, &mine);
    }
    platform_mutex_unlock(&sh->lock);
}

/* Keeps the cache's sentence for a write it refused, whole, for the readers' message. On the
 * downloader's thread, as the fetch's completion that reads it. Out of memory: the message
 * goes without it. */
static void keep_write_error(file_shared *sh, cache_resource *res)
{
    size_t n = cache_resource_last_error(res, NULL, 0);
    char *text = platform_malloc(n + 1);
    if (!text)
        return;
    cache_resource_last_error(res, text, n + 1);
    platform_free(sh->write_error);
    sh->write_error = text;
}

/* Asks for a poll when the bytes written so far are due to be recorded in the cache's index,
 * so a download that stalls after them still records them (for other processes, and against a
 * crash) within the cache's checkpoint interval. Downloader's thread. */
static void arm_record(file_shared *sh, cache_resource *res)
{
    int64_t due = cache_resource_record_due(res);
    if (due > 0)
        net_peer_wake_after(sh->peer, due);
}

static kth_status on_write(void *user, uint64_t offset, const void *data, size_t n)
{
    file_shared *sh = user;
    radio_feed *rf = radio_of(sh);
    if (rf)
        return radio_feed_body(rf, data, n);
    platform_mutex_lock(&sh->lock);
    size_t keep = n;
    if (offset >= sh->gap_end)
        keep = 0;
    else if (sh->gap_end - offset < n)
        keep = (size_t)(sh->gap_end - offset);
    /* Nothing past the read-ahead is kept (one receive buffer may hold far more than a small
     * read-ahead asked for): the fetch stops there. */
    uint64_t limit = readahead_limit_locked(sh);
    if (offset < limit && limit - offset < keep)
        keep = (size_t)(limit - offset);
    cache_resource *res = sh->res;
    platform_mutex_unlock(&sh->lock);

    if (keep > 0) {
        kth_status st = cache_resource_write(res, offset, data, keep);
        if (st != KTH_OK) {
            keep_write_error(sh, res);
            return st;
        }
        kth_event ev;
        if (cache_resource_budget_news(res, &sh->budget_seen, &ev) != KTH_EVENT_NONE)
            publish_readers(sh, &ev);
        arm_record(sh, res);
    }

    platform_mutex_lock(&sh->lock);
    sh->write_pos = offset + keep;
    bool reached_present = keep < n;
    bool past_readahead = sh->write_pos >= readahead_limit_locked(sh);
    if (reached_present || past_readahead)
        sh->stop_requested = true;
    bool stop = sh->stop_requested;
    platform_mutex_unlock(&sh->lock);
    return stop ? KTH_ERR_CANCELLED : KTH_OK;
}

/* Drops the cached bytes (the file changed on the server) and moves to the fresh storage.
 * Lock held. */
static kth_status invalidate_locked(file_shared *sh)
{
    kth_status st = cache_resource_invalidate(sh->res);
    if (st != KTH_OK)
        return st;
    storage_resource_unref(sh->storage);
    sh->storage = cache_resource_storage(sh->res);
    atomic_fetch_add(&sh->generation, 1);
    platform_log(KTH_LOG_INFO, "file", "%s changed on the server; fetching it anew", sh->url);
    return KTH_OK;
}

/* The cached bytes are confirmed (or were replaced): release readers held on the placeholder.
 * Lock held. */
static void mark_validated_locked(file_shared *sh)
{
    sh->validated = true;
    if (sh->placeholder) {
        atomic_fetch_add(&sh->generation, 1);
        storage_resource_fail(sh->placeholder, KTH_ERR_CHANGED, "validated");
    }
}

static bool differs(const char *now, const char *before)
{
    return now && *now && before[0] && strcmp(now, before) != 0;
}

static kth_status on_response(void *user, const net_response *resp)
{
    (void)user;
    return resp->status >= 200 && resp->status <= 299 ? KTH_OK : KTH_ERR_HTTP;
}

/* Takes in the validators and length of a response whose body is the file's: drops cached
 * bytes of another version, records the new ones, and releases readers held until the cached
 * bytes were confirmed. Lock not held. */
static kth_status record_response(file_shared *sh, const net_response *resp)
{
    platform_mutex_lock(&sh->lock);
    cache_resource_info info;
    kth_status st = cache_resource_get_info(sh->res, &info);
    if (st == KTH_OK && info.present_bytes > 0 &&
        (differs(resp->etag, info.etag) ||
         (!(resp->etag && *resp->etag) && differs(resp->last_modified, info.last_modified))))
        st = invalidate_locked(sh);
    if (st == KTH_OK) {
        st = cache_resource_set_meta(sh->res, resp->etag, resp->last_modified, resp->content_type);
        if (st == KTH_ERR_CHANGED && (st = invalidate_locked(sh)) == KTH_OK)
            st = cache_resource_set_meta(sh->res, resp->etag, resp->last_modified,
                                         resp->content_type);
    }
    if (st == KTH_OK && resp->has_total_length) {
        st = cache_resource_set_length(sh->res, resp->total_length);
        if (st == KTH_ERR_STATE && (st = invalidate_locked(sh)) == KTH_OK)
            st = cache_resource_set_length(sh->res, resp->total_length);
    }
    if (resp->content_type)
        snprintf(sh->content_type, sizeof sh->content_type, "%s", resp->content_type);
    if (st == KTH_OK && !sh->validated)
        mark_validated_locked(sh);
    platform_mutex_unlock(&sh->lock);
    return st;
}

/* A radio event, for every reader's bus. Downloader thread, no lock held. */
static void publish_radio(void *user, const kth_event *ev)
{
    publish_readers(user, ev);
}

/* The first response is an endless radio stream: its bytes go to a window in memory, never to
 * the cache, whose storage is failed so readers waiting there come back and follow the radio.
 * Downloader thread, lock not held. */
static kth_status become_radio(file_shared *sh, const net_response *resp)
{
    radio_feed *rf;
    kth_status st = radio_feed_new(sh->url, sh->radio_window, publish_radio, sh, &rf);
    if (st != KTH_OK)
        return st;
    if ((st = radio_feed_connected(rf, resp)) != KTH_OK) {
        radio_feed_free(rf);
        return st;
    }
    if (resp->no_resume)
        *resp->no_resume = true; /* a drop reconnects (radio_complete), never resumes */
    platform_mutex_lock(&sh->lock);
    atomic_store(&sh->radio, rf);
    const char *why = "an endless radio stream is not cached";
    storage_resource_fail(sh->storage, KTH_ERR_UNSUPPORTED, why);
    if (sh->placeholder)
        storage_resource_fail(sh->placeholder, KTH_ERR_UNSUPPORTED, why);
    platform_mutex_unlock(&sh->lock);
    platform_log(KTH_LOG_INFO, "file", "%s is a radio stream", sh->url);
    return KTH_OK;
}

/* An HTML page (a login or error page served with 200) is not the file: refused by its
 * Content-Type, and by its first bytes when they are the file's first bytes (a resumed body
 * begins anywhere in the file, where any bytes may stand). Only a body that passes is taken in
 * (record_response), so nothing of a page, not even its length, is kept. */
static kth_status validate_body(void *user, const net_response *resp, const void *prefix, size_t n,
                                char *msg, size_t msglen)
{
    file_shared *sh = user;
    kth_status st =
        net_validate_not_html(user, resp, resp->offset == 0 ? prefix : NULL, n, msg, msglen);
    if (st != KTH_OK)
        return st;
    if (radio_of(sh))
        return radio_feed_connected(radio_of(sh), resp); /* a reconnection */
    if (radio_response_is_radio(resp))
        return become_radio(sh, resp);
    return record_response(user, resp);
}

static bool reader_waits(void *user)
{
    file_shared *sh = user;
    return !radio_of(sh) && atomic_load(&sh->waiting_readers) > 0;
}

/* Commits once every byte up to a known length is present. Lock held. */
static void commit_if_complete_locked(file_shared *sh)
{
    uint64_t length;
    if (storage_resource_state(sh->storage) != STORAGE_ACTIVE ||
        !storage_resource_length(sh->storage, &length) ||
        !storage_resource_contains(sh->storage, 0, length))
        return;
    kth_status st = cache_resource_commit(sh->res, length);
    if (st != KTH_OK)
        platform_log(KTH_LOG_WARN, "file", "%s: recording the complete file failed: %s", sh->url,
                     kth_strerror(st));
}

/* A download that failed (its storage ended FAILED) gets another try when a stream opens or
 * seeks: the cache gives a fresh storage with the same bytes, and a fresh placeholder replaces
 * a failed one. Without a peer nothing would fetch, so nothing changes. Lock held. */
static void revive_locked(file_shared *sh)
{
    if (!sh->peer || radio_of(sh))
        return;
    bool revived = false;
    storage_state state = storage_resource_state(sh->storage);
    if (state == STORAGE_FAILED || state == STORAGE_CANCELLED) {
        kth_status st = cache_resource_revive(sh->res);
        if (st != KTH_OK) {
            platform_log(KTH_LOG_WARN, "file", "%s: cannot retry the download: %s", sh->url,
                         kth_strerror(st));
            return;
        }
        storage_resource_unref(sh->storage);
        sh->storage = cache_resource_storage(sh->res);
        revived = true;
    }
    if (!sh->validated && sh->placeholder &&
        storage_resource_state(sh->placeholder) == STORAGE_FAILED) {
        storage_resource *fresh;
        if (storage_resource_new_memory(1, &fresh) == KTH_OK) {
            storage_resource_unref(sh->placeholder);
            sh->placeholder = fresh;
            revived = true;
        }
    }
    if (revived)
        atomic_fetch_add(&sh->revival, 1);
}

/* A radio connection ended: schedule the next one (radio_feed_dropped says when). */
static void radio_complete(file_shared *sh, radio_feed *rf, const net_result *r)
{
    platform_mutex_lock(&sh->lock);
    sh->fetch_active = false;
    sh->stop_requested = false;
    platform_cancel *token = sh->fetch_cancel;
    sh->fetch_cancel = NULL;
    platform_mutex_unlock(&sh->lock);
    bool closing = r->status == KTH_ERR_CANCELLED && platform_cancel_is_cancelled(token);
    platform_cancel_unref(token);
    if (closing)
        return; /* the stream closes */
    kth_status why = r->status == KTH_OK ? KTH_ERR_NETWORK : r->status;
    if (r->http_status == 404 || r->http_status == 410)
        why = KTH_ERR_NOT_FOUND;
    char message[512];
    snprintf(message, sizeof message, "%s",
             r->message && *r->message ? r->message : "the radio stream ended");
    int64_t delay = 0;
    kth_event ev;
    bool again = radio_feed_dropped(rf, why, message, &delay, &ev);
    platform_mutex_lock(&sh->lock);
    sh->radio_due_ns = again ? net_downloader_now(sh->downloader) + delay : INT64_MAX;
    platform_mutex_unlock(&sh->lock);
    if (again)
        net_peer_wake_after(sh->peer, delay);
    radio_feed_publish(rf, &ev);
}

/* Fails the storage (and a placeholder readers wait at) with the fetch's message and, when
 * the cache refused its bytes, why; both whole, the URL among them. Lock held. */
static void fail_fetch_locked(file_shared *sh, const net_result *r)
{
    const char *what = r->message && *r->message ? r->message : sh->url;
    const char *why = sh->write_error ? sh->write_error : "";
    size_t size = strlen(what) + 2 + strlen(why) + 1;
    char *message = platform_malloc(size);
    if (message)
        snprintf(message, size, "%s%s%s", what, *why ? ": " : "", why);
    const char *told = message ? message : what; /* out of memory: without the cause */
    storage_resource_fail(sh->storage, r->status, told);
    if (!sh->validated && sh->placeholder) /* readers held there learn it too */
        storage_resource_fail(sh->placeholder, r->status, told);
    cache_resource_checkpoint(sh->res);
    platform_free(message);
}

static void on_complete(void *user, const net_result *r)
{
    file_shared *sh = user;
    radio_feed *rf = radio_of(sh);
    if (rf) {
        radio_complete(sh, rf, r);
        return;
    }
    platform_mutex_lock(&sh->lock);
    bool stopped = sh->stop_requested;
    sh->fetch_active = false;
    sh->stop_requested = false;
    platform_cancel *token = sh->fetch_cancel;
    sh->fetch_cancel = NULL;
    if (r->status == KTH_OK) {
        /* Every fetch asks for everything from its start on, so a body that ended without error
         * ended at the end of the file: without a declared length, that is the length. */
        if (!storage_resource_length(sh->storage, NULL))
            cache_resource_set_length(sh->res, sh->write_pos);
        commit_if_complete_locked(sh);
    } else if (r->status == KTH_ERR_CANCELLED || stopped) {
        commit_if_complete_locked(sh); /* paused, moved by a seek, or shutting down */
    } else if (r->status == KTH_ERR_OUT_OF_RANGE && r->has_total_length &&
               r->total_length == sh->fetch_start && sh->fetch_start > 0 &&
               !storage_resource_length(sh->storage, NULL)) {
        /* 416 for "from byte N on" with the file N bytes long: everything is here (a body
         * that came without a length, cut exactly at its end). */
        cache_resource_set_length(sh->res, r->total_length);
        commit_if_complete_locked(sh);
        if (!sh->validated && storage_resource_state(sh->storage) == STORAGE_COMMITTED)
            mark_validated_locked(sh); /* complete as cached, like a file committed earlier */
    } else {
        fail_fetch_locked(sh, r);
    }
    platform_free(sh->write_error); /* told, or not this fetch's end */
    sh->write_error = NULL;
    platform_mutex_unlock(&sh->lock);
    platform_cancel_unref(token);
}

/* Starts the fetch of [gap.start, open end). Lock held; unlocks it. */
static net_poll_result start_fetch_unlock(file_shared *sh, net_batch *batch, storage_range gap)
{
    /* A whole-file GET asks for radio metadata: a server that does not do ICY ignores it. */
    static const char *const icy_headers[] = {"Icy-MetaData: 1", NULL};
    platform_cancel *token = platform_cancel_new(net_peer_cancel_token(sh->peer));
    net_fetch_spec spec;
    memset(&spec, 0, sizeof spec);
    spec.url = sh->url;
    spec.method = NET_GET;
    /* A whole-file GET when nothing is held yet works with servers that ignore Range too. */
    spec.has_range = gap.start > 0;
    spec.range_start = gap.start;
    spec.range_end = NET_RANGE_OPEN;
    spec.headers = gap.start == 0 ? icy_headers : NULL;
    spec.no_resume = radio_of(sh) != NULL;
    spec.priority = NET_FETCH_HIGH;
    spec.cancel = token;
    spec.on_response = on_response;
    spec.validate = validate_body;
    spec.reader_waits = reader_waits;
    spec.write = on_write;
    spec.complete = on_complete;
    spec.user = sh;
    sh->fetch_active = true;
    sh->stop_requested = false;
    sh->fetch_cancel = token;
    sh->fetch_start = sh->write_pos = gap.start;
    sh->gap_end = gap.end;
    platform_mutex_unlock(&sh->lock);

    kth_status st = net_batch_add(batch, &spec, NULL);
    if (st != KTH_OK) {
        platform_mutex_lock(&sh->lock);
        sh->fetch_active = false;
        sh->fetch_cancel = NULL;
        storage_resource_fail(sh->storage, st, "could not start the download");
        platform_mutex_unlock(&sh->lock);
        platform_cancel_unref(token);
    }
    return NET_POLL_BATCH;
}

/* Radio: one connection at a time, the next one once its back-off has passed. Lock held;
 * unlocks it. */
static net_poll_result radio_poll_unlock(file_shared *sh, net_batch *batch)
{
    bool ended = sh->radio_due_ns == INT64_MAX; /* a failure no retry cures */
    int64_t wait = ended ? 0 : sh->radio_due_ns - net_downloader_now(sh->downloader);
    bool active = sh->fetch_active;
    if (active || ended || wait > 0) {
        platform_mutex_unlock(&sh->lock);
        if (!active && !ended)
            net_peer_wake_after(sh->peer, wait);
        return NET_POLL_IDLE;
    }
    storage_range whole = {0, UINT64_MAX};
    return start_fetch_unlock(sh, batch, whole);
}

/* How far past the other process's newest recorded bytes a gap may start and still be left
 * to it; how long after its record last grew it counts as fetching (its interval, at most
 * FOLLOW_INTERVAL_CAP_NS, and a grace). A writer that records less often than the cap has its
 * followers fetch for themselves rather than wait long on it. */
#define FOLLOW_REACH           ((uint64_t)8 << 20)
#define FOLLOW_GRACE_NS        ((int64_t)500 * 1000 * 1000)
#define FOLLOW_INTERVAL_CAP_NS ((int64_t)2000 * 1000 * 1000)

static int64_t follow_interval_ns(const cache_follow *f)
{
    return f->interval_ns < FOLLOW_INTERVAL_CAP_NS ? f->interval_ns : FOLLOW_INTERVAL_CAP_NS;
}

/* Another process may write the file's cached copy (this handle follows it): takes in what it
 * recorded (readers move to the refreshed storage) and notes when and where that last grew.
 * Its record growing means it is fetching now, its response checked against the server: the
 * cached bytes need no check of this session's own. The first look counts as growth once, so
 * a writer that has just opened gets an interval to record. Downloader thread, no lock held. */
static void follow_writer(file_shared *sh, cache_resource *res, cache_follow *f)
{
    if (cache_resource_follow(res, f) != KTH_OK)
        f->follower = false; /* whatever is wrong, this process fetches what it needs */
    int64_t now = net_downloader_now(sh->downloader);
    storage_resource *old = NULL;
    platform_mutex_lock(&sh->lock);
    if (f->refreshed) {
        old = sh->storage;
        sh->storage = cache_resource_storage(res);
        atomic_fetch_add(&sh->revival, 1);
    }
    bool grew = sh->following && f->follower && f->recorded > sh->follow_recorded;
    bool first = f->follower && !sh->following && !sh->follow_granted;
    if (grew || first) {
        sh->follow_moved_ns = now;
        /* Growth over bytes this process holds says nothing of where the writer goes. */
        sh->follow_front = f->newest_end ? f->newest_end : first ? f->frontier : UINT64_MAX;
        sh->follow_granted = true;
    }
    if (f->follower)
        sh->follow_recorded = f->recorded;
    if (grew && !sh->validated)
        mark_validated_locked(sh);
    sh->following = f->follower;
    platform_mutex_unlock(&sh->lock);
    if (old) {
        storage_resource_wake_waiters(old); /* its waiters go on over the fresh storage */
        storage_resource_unref(old);
    }
}

/* Whether `gap` is left to the process that writes the cached copy: it is fetching (its record
 * grew lately), and the gap starts at or a little past where its newest bytes end, so its
 * download reaches the gap soon. Then each byte comes from the server once for both
 * processes. Lock held. */
static bool left_to_writer_locked(file_shared *sh, const cache_follow *f, const storage_range *gap)
{
    int64_t now = net_downloader_now(sh->downloader);
    return sh->following && !f->diverged &&
           now - sh->follow_moved_ns < follow_interval_ns(f) + FOLLOW_GRACE_NS &&
           sh->follow_front <= gap->start && gap->start - sh->follow_front < FOLLOW_REACH;
}

static net_poll_result on_poll(void *user, net_batch *batch)
{
    file_shared *sh = user;
    platform_mutex_lock(&sh->lock);
    if (radio_of(sh))
        return radio_poll_unlock(sh, batch);
    cache_resource *res = sh->res;
    bool fetching = sh->fetch_active;
    platform_mutex_unlock(&sh->lock);
    cache_follow follow = {.follower = false};
    if (res) {
        arm_record(sh, res); /* records, or asks to be woken when it is due */
        if (!fetching)
            follow_writer(sh, res, &follow);
    }
    platform_mutex_lock(&sh->lock);
    if (sh->fetch_active || storage_resource_state(sh->storage) != STORAGE_ACTIVE) {
        platform_mutex_unlock(&sh->lock);
        return NET_POLL_IDLE;
    }
    storage_range gap;
    bool found = choose_gap_locked(sh, &gap);
    if (found && follow.follower && left_to_writer_locked(sh, &follow, &gap)) {
        platform_mutex_unlock(&sh->lock);
        net_peer_wake_after(sh->peer, follow_interval_ns(&follow) / 2); /* look again */
        return NET_POLL_IDLE;
    }
    if (!found) {
        /* Paused: ask readers to wake us once they use up half the read-ahead. */
        uint64_t limit = readahead_limit_locked(sh);
        atomic_store(&sh->resume_at, limit == UINT64_MAX ? UINT64_MAX : limit - sh->readahead / 2);
        platform_mutex_unlock(&sh->lock);
        return NET_POLL_IDLE;
    }
    atomic_store(&sh->resume_at, UINT64_MAX);
    return start_fetch_unlock(sh, batch, gap);
}

/* ---- the shared object and its registry ---- */

/* Stops the download and closes the cache handle (recording what it holds). */
static void shared_close(file_shared *sh)
{
    if (sh->peer)
        net_peer_unregister(sh->peer); /* every callback is over after this */
    if (sh->res) {
        platform_mutex_lock(&sh->lock);
        commit_if_complete_locked(sh);
        platform_mutex_unlock(&sh->lock);
        cache_resource_close(sh->res);
        sh->res = NULL;
    }
    sh->peer = NULL;
}

static void shared_destroy(file_shared *sh)
{
    shared_close(sh);
    storage_resource_unref(sh->storage);
    storage_resource_unref(sh->placeholder);
    radio_feed_free(radio_of(sh));
    cache_asset_release(sh->asset);
    platform_mutex_destroy(&sh->lock);
    platform_free(sh->readers);
    platform_free(sh->url);
    platform_free(sh->write_error);
    platform_free(sh);
}

static kth_status shared_create(const char *url, const file_source_options *opts, file_shared **out,
                                char *err, size_t errlen)
{
    file_shared *sh = platform_calloc(1, sizeof *sh);
    if (!sh || platform_mutex_init(&sh->lock) != KTH_OK) {
        platform_free(sh);
        return KTH_ERR_NO_MEMORY;
    }
    sh->url = platform_strdup(url);
    sh->cache = opts->cache;
    sh->refs = 1;
    sh->readahead = opts->readahead_bytes ? opts->readahead_bytes : DEFAULT_READAHEAD;
    sh->radio_window = opts->readahead_bytes ? opts->readahead_bytes : DEFAULT_RADIO_WINDOW;
    sh->downloader = opts->downloader;
    atomic_init(&sh->radio, NULL);
    atomic_init(&sh->generation, 0);
    atomic_init(&sh->resume_at, UINT64_MAX);
    atomic_init(&sh->length_wanted, false);
    atomic_init(&sh->waiting_readers, 0);
    atomic_init(&sh->revival, 0);
    if (!sh->url) {
        shared_destroy(sh);
        return KTH_ERR_NO_MEMORY;
    }
    kth_status st = cache_asset_open(opts->cache, url, &sh->asset, err, errlen);
    if (st == KTH_OK) {
        bool offline = cache_is_offline(opts->cache);
        cache_resource_info info;
        st = cache_resource_open(sh->asset, url, offline ? 0 : CACHE_OPEN_CREATE, &sh->res, &info,
                                 err, errlen);
        if (st == KTH_OK) {
            sh->storage = cache_resource_storage(sh->res);
            snprintf(sh->content_type, sizeof sh->content_type, "%s", info.content_type);
            if (!info.committed && info.length_known && info.present_bytes >= info.length) {
                /* Every byte is here but the commit was not recorded (a crash right after
                 * the last write): asking for more would only earn a 416. */
                commit_if_complete_locked(sh);
                info.committed = storage_resource_state(sh->storage) == STORAGE_COMMITTED;
            }
            sh->validated = offline || info.committed || info.present_bytes == 0;
            if (!sh->validated)
                st = storage_resource_new_memory(1, &sh->placeholder);
            /* A complete file gets a peer too (idle while it stays complete): a block found
             * damaged on its first read is dropped, and the peer fetches it again. */
            if (st == KTH_OK && !offline && (opts->downloader || !info.committed)) {
                if (!opts->downloader) {
                    st = KTH_ERR_INVALID_ARG;
                    if (err && errlen)
                        snprintf(err, errlen, "%s: no downloader to fetch it with", url);
                } else {
                    net_peer_ops ops = {on_poll, NULL};
                    st = net_peer_register(opts->downloader, &ops, sh, NET_PEER_FOREGROUND, NULL,
                                           &sh->peer);
                }
            }
        }
    }
    if (st != KTH_OK) {
        shared_destroy(sh);
        return st;
    }
    *out = sh;
    return KTH_OK;
}

static kth_status shared_acquire(const char *url, const file_source_options *opts,
                                 file_shared **out, char *err, size_t errlen)
{
    /* Creation happens under the registry lock so two streams opening the same URL at once
     * still share one writer. It does index lookups only (no network). */
    pthread_mutex_lock(&registry_lock);
    for (file_shared *sh = registry; sh;) {
        if (sh->cache == opts->cache && strcmp(sh->url, url) == 0) {
            if (sh->dying) {
                /* Its cache handle is still open: a second writer must not start beside it.
                 * Wait for it to leave, then look again. */
                pthread_cond_wait(&registry_cond, &registry_lock);
                sh = registry;
                continue;
            }
            sh->refs++;
            pthread_mutex_unlock(&registry_lock);
            *out = sh;
            return KTH_OK;
        }
        sh = sh->next;
    }
    file_shared *sh;
    kth_status st = shared_create(url, opts, &sh, err, errlen);
    if (st == KTH_OK) {
        sh->next = registry;
        registry = sh;
        *out = sh;
    }
    pthread_mutex_unlock(&registry_lock);
    return st;
}

static void shared_release(file_shared *sh)
{
    pthread_mutex_lock(&registry_lock);
    bool last = --sh->refs == 0;
    if (last)
        sh->dying = true;
    pthread_mutex_unlock(&registry_lock);
    if (!last)
        return;
    shared_close(sh); /* outside the registry lock: it may wait for the downloader and disk */
    pthread_mutex_lock(&registry_lock);
    for (file_shared **p = &registry; *p; p = &(*p)->next) {
        if (*p == sh) {
            *p = sh->next;
            break;
        }
    }
    pthread_cond_broadcast(&registry_cond);
    pthread_mutex_unlock(&registry_lock);
    shared_destroy(sh);
}

/* ---- reader side ---- */

static file_source *from_base(stream_source *src)
{
    return (file_source *)src;
}

static void wake_peer(file_shared *sh)
{
    if (sh->peer)
        net_peer_wake(sh->peer);
}

/* Joins the reader list on the stream's first call (see file_source.attached). */
static void attach(file_source *fs)
{
    if (atomic_load(&fs->attached))
        return;
    file_shared *sh = fs->sh;
    platform_mutex_lock(&sh->lock);
    if (!atomic_load(&fs->attached)) {
        /* Room was reserved when the source was created. */
        sh->readers[sh->reader_count++] = fs;
        atomic_store(&fs->attached, true);
    }
    platform_mutex_unlock(&sh->lock);
}

/* What readers read: the placeholder until the cached bytes are validated. Lock held. */
static storage_resource *reader_storage_locked(file_shared *sh)
{
    return sh->validated ? sh->storage : sh->placeholder;
}

/* Makes the inner source read the current generation's storage. False when bytes of an older
 * generation were already handed out: the stream must fail with KTH_ERR_CHANGED. */
static bool follow_generation(file_source *fs)
{
    file_shared *sh = fs->sh;
    bool same_generation = atomic_load(&sh->generation) == fs->generation;
    if (same_generation && atomic_load(&sh->revival) == fs->revival)
        return true;
    if (!same_generation && fs->delivered) {
        platform_mutex_lock(&fs->inner_lock);
        snprintf(fs->error, sizeof fs->error, "%s changed on the server while it was being read",
                 sh->url);
        platform_mutex_unlock(&fs->inner_lock);
        return false;
    }
    platform_mutex_lock(&sh->lock);
    storage_resource *storage = storage_resource_ref(reader_storage_locked(sh));
    uint64_t generation = atomic_load(&sh->generation);
    uint64_t revival = atomic_load(&sh->revival);
    kth_media_info hint = {.variant = -1};
    hint.container = kth_container_from_content_type(sh->content_type);
    platform_mutex_unlock(&sh->lock);
    if (generation != fs->generation && fs->delivered) { /* it moved again meanwhile */
        storage_resource_unref(storage);
        return follow_generation(fs);
    }
    stream_source *inner;
    if (stream_resource_source_new(storage, sh->url, &hint, &inner) == KTH_OK) {
        inner->timeline = fs->base.timeline;
        stream_resource_source_watch(inner, &sh->revival, revival); /* a refresh ends its waits */
        platform_mutex_lock(&fs->inner_lock);
        stream_source *old = fs->inner;
        fs->inner = inner;
        fs->generation = generation;
        fs->revival = revival;
        platform_mutex_unlock(&fs->inner_lock);
        old->ops->destroy(old);
    }
    storage_resource_unref(storage);
    return fs->generation == generation;
}

/* After the inner source reported KTH_ERR_CHANGED: waits out the invalidation or validation
 * that caused it. Both fail the old storage and move the generation under sh->lock, so once
 * the lock is free the new generation is visible and follow_generation does not miss it. */
static void settle(file_shared *sh)
{
    platform_mutex_lock(&sh->lock);
    platform_mutex_unlock(&sh->lock);
}

/* Offline (no peer): a missing byte will never come. Fills fs->error and returns the status. */
static kth_status offline_miss(file_source *fs, uint64_t offset)
{
    storage_range missing;
    char why[sizeof fs->error];
    why[0] = '\0';
    kth_status st =
        cache_resource_check_range(fs->sh->res, offset, offset + 1, &missing, why, sizeof why);
    if (st == KTH_OK)
        return KTH_ERR_RETRY;
    platform_mutex_lock(&fs->inner_lock);
    snprintf(fs->error, sizeof fs->error, "%s", why);
    platform_mutex_unlock(&fs->inner_lock);
    return st;
}

/* Whether a wait that ended interrupted was ended by a refresh of the storage (the revival
 * moved: another process's writes were taken in), not by a seek. Reader thread. */
static bool refreshed_meanwhile(const file_source *fs, const stream_wait_ctx *ctx)
{
    bool seek = ctx->epoch && atomic_load(ctx->epoch) != ctx->seen_epoch;
    return !seek && atomic_load(&fs->sh->revival) != fs->revival;
}

/* Waits on the inner source, going on over a refreshed storage (a refresh is no seek, so
 * never INTERRUPTED for one). Each pass ends with a refresh, which comes only when the writer
 * recorded more; ctx's deadline, absolute, bounds the whole. Reader thread. */
static source_wait inner_wait(file_source *fs, bool length, uint64_t start, uint64_t end,
                              const stream_wait_ctx *ctx, kth_status *status)
{
    for (;;) {
        source_wait w = length ? fs->inner->ops->wait_length(fs->inner, ctx, status)
                               : fs->inner->ops->wait_range(fs->inner, start, end, ctx, status);
        if (w != SOURCE_WAIT_INTERRUPTED || !refreshed_meanwhile(fs, ctx))
            return w;
        uint64_t seen = fs->revival;
        if (!follow_generation(fs)) {
            *status = KTH_ERR_CHANGED;
            return SOURCE_WAIT_ERROR;
        }
        if (fs->revival == seen) { /* no memory for a source over the fresh storage */
            *status = KTH_ERR_NO_MEMORY;
            return SOURCE_WAIT_ERROR;
        }
    }
}

static source_wait fs_wait_range(stream_source *src, uint64_t start, uint64_t end,
                                 const stream_wait_ctx *ctx, kth_status *status)
{
    file_source *fs = from_base(src);
    attach(fs);
    if (radio_of(fs->sh))
        return radio_feed_wait(radio_of(fs->sh), fs->radio_base + start, ctx, status);
    if (!follow_generation(fs)) {
        *status = KTH_ERR_CHANGED;
        return SOURCE_WAIT_ERROR;
    }
    if (!fs->sh->peer) {
        kth_status st = offline_miss(fs, start);
        if (st != KTH_ERR_RETRY && st != KTH_OK) {
            *status = st;
            return SOURCE_WAIT_ERROR;
        }
    } else {
        wake_peer(fs->sh);
    }
    atomic_fetch_add(&fs->sh->waiting_readers, 1);
    source_wait w = inner_wait(fs, false, start, end, ctx, status);
    if (w == SOURCE_WAIT_ERROR && radio_of(fs->sh)) { /* it turned out to be radio */
        atomic_fetch_sub(&fs->sh->waiting_readers, 1);
        return radio_feed_wait(radio_of(fs->sh), fs->radio_base + start, ctx, status);
    }
    /* The file changed while we waited: a reader that handed out nothing yet moves to the new
     * version (bounded: each pass needs another change on the server). */
    for (int pass = 0; w == SOURCE_WAIT_ERROR && *status == KTH_ERR_CHANGED && pass < 4; pass++) {
        settle(fs->sh);
        if (!follow_generation(fs))
            break;
        w = inner_wait(fs, false, start, end, ctx, status);
    }
    atomic_fetch_sub(&fs->sh->waiting_readers, 1);
    return w;
}

static source_read radio_read(file_source *fs, uint64_t offset, void *buf, size_t n)
{
    return radio_feed_read(radio_of(fs->sh), &fs->radio_fences, fs->radio_base + offset, buf, n);
}

static source_read fs_read_at(stream_source *src, uint64_t offset, void *buf, size_t n)
{
    file_source *fs = from_base(src);
    source_read r = {KTH_READ_ERROR, 0, KTH_PENDING_NONE, KTH_ERR_CHANGED};
    attach(fs);
    if (radio_of(fs->sh))
        return radio_read(fs, offset, buf, n);
    if (!follow_generation(fs))
        return r;
    r = fs->inner->ops->read_at(fs->inner, offset, buf, n);
    if (r.kind == KTH_READ_ERROR && radio_of(fs->sh))
        return radio_read(fs, offset, buf, n);
    if (r.kind == KTH_READ_ERROR && r.status == KTH_ERR_CHANGED && !fs->delivered) {
        settle(fs->sh);
        if (follow_generation(fs))
            r = fs->inner->ops->read_at(fs->inner, offset, buf, n);
    }
    if (r.kind == KTH_READ_BYTES) {
        fs->delivered = true;
        if (offset + r.n >= atomic_load(&fs->sh->resume_at))
            wake_peer(fs->sh); /* the paused download should move on */
    } else if (r.kind == KTH_READ_PENDING && r.reason == KTH_PENDING_NOT_READY && fs->sh->peer) {
        wake_peer(fs->sh); /* a reader that does not wait (try_read, no timeout) still asks */
    } else if (r.kind == KTH_READ_PENDING && r.reason == KTH_PENDING_NOT_READY && !fs->sh->peer) {
        kth_status st = offline_miss(fs, offset);
        if (st != KTH_ERR_RETRY && st != KTH_OK) {
            r.kind = KTH_READ_ERROR;
            r.status = st;
        }
    }
    return r;
}

static bool fs_length(stream_source *src, uint64_t *length)
{
    file_source *fs = from_base(src);
    if (radio_of(fs->sh))
        return false; /* endless */
    platform_mutex_lock(&fs->inner_lock);
    bool known = fs->inner->ops->length(fs->inner, length);
    platform_mutex_unlock(&fs->inner_lock);
    return known;
}

/* A radio stream has no length: SEEK_END and time seeks (which wait for one) fail at once. */
static source_wait radio_no_length(file_source *fs, kth_status *status)
{
    platform_mutex_lock(&fs->inner_lock);
    snprintf(fs->error, sizeof fs->error,
             "%s is an endless radio stream: it has no length and cannot be seeked by time",
             fs->sh->url);
    platform_mutex_unlock(&fs->inner_lock);
    *status = KTH_ERR_UNSUPPORTED;
    return SOURCE_WAIT_ERROR;
}

static source_wait fs_wait_length(stream_source *src, const stream_wait_ctx *ctx,
                                  kth_status *status)
{
    file_source *fs = from_base(src);
    attach(fs);
    if (radio_of(fs->sh))
        return radio_no_length(fs, status);
    if (!follow_generation(fs)) {
        *status = KTH_ERR_CHANGED;
        return SOURCE_WAIT_ERROR;
    }
    atomic_store(&fs->sh->length_wanted, true);
    wake_peer(fs->sh);
    atomic_fetch_add(&fs->sh->waiting_readers, 1);
    source_wait w = inner_wait(fs, true, 0, 0, ctx, status);
    if (w == SOURCE_WAIT_ERROR && radio_of(fs->sh)) {
        atomic_fetch_sub(&fs->sh->waiting_readers, 1);
        return radio_no_length(fs, status);
    }
    /* Released from the placeholder (validated) or the file changed: as in fs_wait_range. */
    for (int pass = 0; w == SOURCE_WAIT_ERROR && *status == KTH_ERR_CHANGED && pass < 4; pass++) {
        settle(fs->sh);
        if (!follow_generation(fs))
            break;
        w = inner_wait(fs, true, 0, 0, ctx, status);
    }
    atomic_fetch_sub(&fs->sh->waiting_readers, 1);
    return w;
}

static void fs_notify_waiting(stream_source *src)
{
    file_source *fs = from_base(src);
    platform_mutex_lock(&fs->inner_lock);
    fs->inner->ops->notify_waiting(fs->inner);
    platform_mutex_unlock(&fs->inner_lock);
    if (radio_of(fs->sh))
        radio_feed_wake(radio_of(fs->sh));
}

static void fs_set_position(stream_source *src, uint64_t position, uint64_t epoch)
{
    (void)epoch;
    file_source *fs = from_base(src);
    file_shared *sh = fs->sh;
    attach(fs);
    if (!sh->peer || radio_of(sh))
        return; /* radio: the one connection goes on wherever the reader is */
    platform_cancel *move = NULL;
    platform_mutex_lock(&sh->lock);
    revive_locked(sh); /* a seek after a failed download tries again */
    /* A fetch that will not reach the new position soon is stopped, so the next poll starts an
     * urgent one there. Bytes it already wrote stay: they are the file's bytes at their offsets. */
    if (sh->fetch_active && !sh->stop_requested &&
        !storage_resource_contains(sh->storage, position, position + 1) &&
        (position < sh->fetch_start || position > sh->write_pos + sh->readahead / 4)) {
        sh->stop_requested = true;
        move = platform_cancel_ref(sh->fetch_cancel);
    }
    platform_mutex_unlock(&sh->lock);
    if (move) {
        platform_cancel_cancel(move);
        platform_cancel_unref(move);
    }
    wake_peer(sh);
}

static void fs_media_info(stream_source *src, kth_media_info *info)
{
    file_source *fs = from_base(src);
    if (radio_of(fs->sh)) {
        radio_feed_media_info(radio_of(fs->sh), info);
        return;
    }
    platform_mutex_lock(&fs->inner_lock);
    fs->inner->ops->media_info(fs->inner, info);
    platform_mutex_unlock(&fs->inner_lock);
}

static size_t fs_last_error(stream_source *src, char *buf, size_t size)
{
    file_source *fs = from_base(src);
    platform_mutex_lock(&fs->inner_lock);
    size_t len;
    if (fs->error[0]) {
        int n = snprintf(buf, size, "%s", fs->error);
        len = n > 0 ? (size_t)n : 0;
    } else if (radio_of(fs->sh)) {
        len = radio_feed_last_error(radio_of(fs->sh), buf, size);
    } else {
        len = fs->inner->ops->last_error(fs->inner, buf, size);
    }
    platform_mutex_unlock(&fs->inner_lock);
    return len;
}

static void fs_destroy(stream_source *src)
{
    file_source *fs = from_base(src);
    file_shared *sh = fs->sh;
    platform_mutex_lock(&sh->lock);
    for (size_t i = 0; i < sh->reader_count; i++) {
        if (sh->readers[i] == fs) {
            sh->readers[i] = sh->readers[--sh->reader_count];
            break;
        }
    }
    sh->reader_slots--;
    platform_mutex_unlock(&sh->lock);
    fs->inner->ops->destroy(fs->inner);
    platform_mutex_destroy(&fs->inner_lock);
    kth_bus_unref(fs->bus);
    shared_release(sh);
    platform_free(fs);
}

/* Radio joins are the fences of a progressive source (see radio.h). Reader thread. */
static bool fs_variant_change_pending(stream_source *src)
{
    file_source *fs = from_base(src);
    return radio_of(fs->sh) && fs->radio_fences.fence_pending;
}

static void fs_clear_variant_fence(stream_source *src)
{
    file_source *fs = from_base(src);
    fs->radio_fences.cleared = fs->radio_fences.pending;
    fs->radio_fences.fence_pending = false;
}

static const stream_source_ops file_source_ops = {
    .name = "progressive",
    .wait_range = fs_wait_range,
    .read_at = fs_read_at,
    .length = fs_length,
    .wait_length = fs_wait_length,
    .notify_waiting = fs_notify_waiting,
    .set_position = fs_set_position,
    .media_info = fs_media_info,
    .variant_change_pending = fs_variant_change_pending,
    .clear_variant_fence = fs_clear_variant_fence,
    .last_error = fs_last_error,
    .destroy = fs_destroy,
};

kth_status file_source_new(const char *url, const file_source_options *opts, stream_source **out,
                           char *err, size_t errlen)
{
    if (!url || !opts || !opts->cache || !out)
        return KTH_ERR_INVALID_ARG;
    file_source *fs = platform_calloc(1, sizeof *fs);
    if (!fs)
        return KTH_ERR_NO_MEMORY;
    if (platform_mutex_init(&fs->inner_lock) != KTH_OK) {
        platform_free(fs);
        return KTH_ERR_NO_MEMORY;
    }
    kth_status st = shared_acquire(url, opts, &fs->sh, err, errlen);
    if (st != KTH_OK) {
        platform_mutex_destroy(&fs->inner_lock);
        platform_free(fs);
        return st;
    }
    file_shared *sh = fs->sh;
    platform_mutex_lock(&sh->lock);
    revive_locked(sh); /* a new stream after a failed download tries again */
    storage_resource *storage = storage_resource_ref(reader_storage_locked(sh));
    fs->generation = atomic_load(&sh->generation);
    fs->revival = atomic_load(&sh->revival);
    kth_media_info hint = {.variant = -1};
    hint.container = kth_container_from_content_type(sh->content_type);
    platform_mutex_unlock(&sh->lock);
    st = stream_resource_source_new(storage, url, &hint, &fs->inner);
    storage_resource_unref(storage);
    if (st == KTH_OK)
        stream_resource_source_watch(fs->inner, &sh->revival, fs->revival);
    if (st == KTH_OK) {
        /* Reserve the reader's slot now so attaching later cannot fail. */
        platform_mutex_lock(&sh->lock);
        if (sh->reader_slots + 1 > sh->reader_cap) {
            size_t cap = sh->reader_cap ? sh->reader_cap * 2 : 4;
            file_source **readers = platform_realloc(sh->readers, cap * sizeof *readers);
            if (readers) {
                sh->readers = readers;
                sh->reader_cap = cap;
            } else {
                st = KTH_ERR_NO_MEMORY;
            }
        }
        if (st == KTH_OK)
            sh->reader_slots++;
        platform_mutex_unlock(&sh->lock);
    }
    if (st != KTH_OK) {
        if (fs->inner)
            fs->inner->ops->destroy(fs->inner);
        platform_mutex_destroy(&fs->inner_lock);
        shared_release(sh);
        platform_free(fs);
        return st;
    }
    fs->base.ops = &file_source_ops;
    fs->bus = kth_bus_ref(opts->bus);
    if (radio_of(sh)) {
        uint64_t start;
        radio_feed_window(radio_of(sh), &start, &fs->radio_base);
        fs->radio_fences.cleared = fs->radio_base; /* joins before it are not this stream's */
    }
    atomic_init(&fs->attached, false);
    *out = &fs->base;
    return KTH_OK;
}
