/*
 * radio.c — the bounded byte window of an internet radio stream (see radio.h).
 *
 * Lock: feed.lock guards the ring, the joins, the station headers and the failure; it is a leaf
 * (the publisher and the cancel waker's broadcast run without it held by this code).
 *
 * Invariants: end - start <= window; joins are increasing, each > 0 and <= end; the ring holds
 * byte `o` of the stream at o % window for every o in [start, end).
 */
#include "file/radio.h"

#include "file/icy.h"
#include "net/retry.h"
#include "platform/sync.h"
#include "platform/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIN_WINDOW ((uint64_t)64 << 10)
#define MAX_JOINS  64
#define HEAD_BYTES 4096

struct radio_feed {
    platform_mutex lock;
    platform_cond cond; /* bytes arrived, the feed failed, or a reader must re-check */
    char *url;
    radio_publish_fn publish;
    void *user;

    uint8_t *ring;
    uint64_t window, start, end;
    uint64_t joins[MAX_JOINS];
    size_t join_count;
    uint8_t head[HEAD_BYTES]; /* the first audio bytes, for media detection */
    size_t head_len;

    kth_status failed; /* KTH_OK while it goes on */
    char error[512];
    kth_media_info station;

    /* Writer state (downloader thread only). */
    icy_parser parser;
    uint64_t connection;
    uint64_t audio_this_connection;
    unsigned attempts_without_audio;
    uint64_t random_state;
};

bool radio_response_is_radio(const net_response *resp)
{
    char value[64];
    if (resp->offset != 0)
        return false;
    /* Metadata interleaved in the body (we asked for it) makes it radio whatever its length:
     * cached as a file, the blocks would be taken for audio. */
    if (net_response_header(resp, "icy-metaint", value, sizeof value))
        return true;
    return !resp->has_total_length && (net_response_header(resp, "icy-name", value, sizeof value) ||
                                       net_response_header(resp, "icy-br", value, sizeof value));
}

kth_status radio_feed_new(const char *url, uint64_t window, radio_publish_fn publish, void *user,
                          radio_feed **out)
{
    radio_feed *f = platform_calloc(1, sizeof *f);
    if (!f)
        return KTH_ERR_NO_MEMORY;
    f->window = window < MIN_WINDOW ? MIN_WINDOW : window;
    f->ring = platform_malloc((size_t)f->window);
    f->url = platform_strdup(url);
    if (!f->ring || !f->url || platform_mutex_init(&f->lock) != KTH_OK) {
        platform_free(f->ring);
        platform_free(f->url);
        platform_free(f);
        return KTH_ERR_NO_MEMORY;
    }
    if (platform_cond_init(&f->cond) != KTH_OK) {
        platform_mutex_destroy(&f->lock);
        platform_free(f->ring);
        platform_free(f->url);
        platform_free(f);
        return KTH_ERR_NO_MEMORY;
    }
    f->publish = publish;
    f->user = user;
    f->station.variant = -1;
    f->station.radio = true;
    f->random_state =
        (uint64_t)(uintptr_t)f ^ (uint64_t)platform_monotonic_ns() ^ 0x9e3779b97f4a7c15u;
    *out = f;
    return KTH_OK;
}

void radio_feed_free(radio_feed *f)
{
    if (!f)
        return;
    platform_cond_destroy(&f->cond);
    platform_mutex_destroy(&f->lock);
    platform_free(f->ring);
    platform_free(f->url);
    platform_free(f);
}

static void publish(radio_feed *f, kth_event_kind kind, int status, const char *text,
                    const kth_event_radio *radio)
{
    if (!f->publish)
        return;
    kth_event ev;
    memset(&ev, 0, sizeof ev);
    ev.kind = kind;
    ev.status = status;
    ev.payload.radio = *radio;
    if (text)
        snprintf(ev.text, sizeof ev.text, "%s", text);
    f->publish(f->user, &ev);
}

/* ---- writer side ---- */

/* Copies a header's value into a station field (left as it was when absent). */
static void take_header(const net_response *resp, const char *name, char *field, size_t size)
{
    char value[256];
    if (net_response_header(resp, name, value, sizeof value)) {
        size_t len = strlen(value) < size - 1 ? strlen(value) : size - 1;
        memcpy(field, value, len);
        field[len] = '\0';
    }
}

kth_status radio_feed_connected(radio_feed *f, const net_response *resp)
{
    char value[64];
    uint32_t metaint = 0;
    if (net_response_header(resp, "icy-metaint", value, sizeof value) &&
        !icy_parse_metaint(value, &metaint))
        return KTH_ERR_FORMAT;
    icy_parser_init(&f->parser, metaint);
    f->connection++;
    f->audio_this_connection = 0;

    platform_mutex_lock(&f->lock);
    take_header(resp, "icy-name", f->station.station_name, sizeof f->station.station_name);
    take_header(resp, "icy-genre", f->station.station_genre, sizeof f->station.station_genre);
    if (resp->content_type)
        snprintf(f->station.content_type, sizeof f->station.content_type, "%s", resp->content_type);
    if (net_response_header(resp, "icy-br", value, sizeof value)) {
        unsigned long kbps = strtoul(value, NULL, 10); /* "128" or "128,128" */
        if (kbps > 0 && kbps < 100000)
            f->station.bitrate = (uint32_t)kbps * 1000;
    }
    kth_container c = kth_container_from_content_type(f->station.content_type);
    if (c != KTH_CONTAINER_UNKNOWN)
        f->station.container = c;
    bool join = f->connection > 1 && f->end > 0 &&
                (f->join_count == 0 || f->joins[f->join_count - 1] != f->end);
    if (join) {
        if (f->join_count == MAX_JOINS) {
            memmove(f->joins, f->joins + 1, (MAX_JOINS - 1) * sizeof f->joins[0]);
            f->join_count--;
        }
        f->joins[f->join_count++] = f->end;
    }
    kth_event_radio ev = {.offset = f->end, .connection = f->connection};
    platform_mutex_unlock(&f->lock);
    if (f->connection > 1)
        publish(f, KTH_EVENT_RADIO_RECONNECTED, KTH_OK, f->url, &ev);
    return KTH_OK;
}

/* Appends audio to the ring (lock held). */
static void append_locked(radio_feed *f, const uint8_t *data, size_t n)
{
    if (f->head_len < HEAD_BYTES && f->connection == 1) {
        size_t take = n < HEAD_BYTES - f->head_len ? n : HEAD_BYTES - f->head_len;
        memcpy(f->head + f->head_len, data, take);
        f->head_len += take;
    }
    if (n > f->window) { /* only the last window's worth can stay */
        data += n - f->window;
        f->end += n - f->window;
        n = (size_t)f->window;
    }
    size_t at = (size_t)(f->end % f->window);
    size_t first = n < f->window - at ? n : (size_t)(f->window - at);
    memcpy(f->ring + at, data, first);
    memcpy(f->ring, data + first, n - first);
    f->end += n;
    if (f->end - f->start > f->window)
        f->start = f->end - f->window;
}

static kth_status on_audio(void *user, const uint8_t *data, size_t n)
{
    radio_feed *f = user;
    platform_mutex_lock(&f->lock);
    append_locked(f, data, n);
    platform_mutex_unlock(&f->lock);
    f->audio_this_connection += n;
    return KTH_OK;
}

static kth_status on_meta(void *user, const char *text, size_t len)
{
    (void)len;
    radio_feed *f = user;
    platform_mutex_lock(&f->lock);
    kth_event_radio ev = {.offset = f->end, .connection = f->connection};
    platform_mutex_unlock(&f->lock);
    platform_cond_broadcast(&f->cond); /* the audio before the block is readable first */
    /* A block holds at most 4,080 bytes: its fields fit here whole. A title is shown text and
     * may be cut to the event's text; a URL is never handed out cut. */
    char value[ICY_META_MAX + 1];
    kth_event probe;
    if (icy_meta_field(text, "StreamTitle", value, sizeof value))
        publish(f, KTH_EVENT_RADIO_TITLE, KTH_OK, value, &ev);
    if (icy_meta_field(text, "StreamUrl", value, sizeof value)) {
        bool fits = strlen(value) < sizeof probe.text;
        publish(f, KTH_EVENT_RADIO_URL, fits ? KTH_OK : KTH_ERR_LIMIT, fits ? value : "", &ev);
    }
    return KTH_OK;
}

kth_status radio_feed_body(radio_feed *f, const void *data, size_t n)
{
    icy_sink sink = {on_audio, on_meta, f};
    kth_status st = icy_parser_feed(&f->parser, data, n, &sink);
    platform_cond_broadcast(&f->cond);
    return st;
}

bool radio_feed_dropped(radio_feed *f, kth_status status, const char *message, int64_t *delay_ns,
                        kth_event *ev)
{
    if (f->audio_this_connection > 0)
        f->attempts_without_audio = 0;
    f->audio_this_connection = 0;
    unsigned attempt = ++f->attempts_without_audio;
    bool final = status == KTH_ERR_NOT_FOUND || status == KTH_ERR_FORMAT ||
                 status == KTH_ERR_UNSUPPORTED || status == KTH_ERR_NO_MEMORY;
    int64_t delay = attempt <= 1
                        ? 0
                        : net_backoff_ns(attempt - 1, RADIO_BACKOFF_BASE_NS, RADIO_BACKOFF_CAP_NS,
                                         net_random_next(&f->random_state));
    const char *why = message && *message ? message : f->url;
    memset(ev, 0, sizeof *ev);
    ev->kind = KTH_EVENT_RADIO_DROPPED;
    ev->status = status;
    snprintf(ev->text, sizeof ev->text, "%s", why);
    platform_mutex_lock(&f->lock);
    ev->payload.radio.offset = f->end;
    ev->payload.radio.connection = f->connection;
    ev->payload.radio.attempt = attempt;
    ev->payload.radio.delay_ns = final ? 0 : delay;
    if (final) {
        f->failed = status;
        snprintf(f->error, sizeof f->error, "%s", why);
    }
    platform_mutex_unlock(&f->lock);
    platform_cond_broadcast(&f->cond);
    *delay_ns = delay;
    return !final;
}

void radio_feed_publish(radio_feed *f, const kth_event *ev)
{
    if (f->publish)
        f->publish(f->user, ev);
}

/* ---- reader side ---- */

static void wake_cond(void *arg)
{
    radio_feed *f = arg;
    platform_mutex_lock(&f->lock);
    platform_cond_broadcast(&f->cond);
    platform_mutex_unlock(&f->lock);
}

source_wait radio_feed_wait(radio_feed *f, uint64_t start, const stream_wait_ctx *ctx,
                            kth_status *status)
{
    platform_cancel_waker waker;
    platform_cancel_add_waker(ctx->cancel, &waker, wake_cond, f);
    source_wait w;
    platform_mutex_lock(&f->lock);
    for (;;) {
        if (start < f->end) {
            w = SOURCE_WAIT_READY; /* or behind the window: read_at says so */
            break;
        }
        if (f->failed != KTH_OK) {
            *status = f->failed;
            w = SOURCE_WAIT_ERROR;
            break;
        }
        if (platform_cancel_is_cancelled(ctx->cancel)) {
            w = SOURCE_WAIT_CANCELLED;
            break;
        }
        if (ctx->epoch && atomic_load(ctx->epoch) != ctx->seen_epoch) {
            w = SOURCE_WAIT_INTERRUPTED;
            break;
        }
        if (!platform_cond_wait_until(&f->cond, &f->lock, ctx->deadline_ns) && start >= f->end &&
            f->failed == KTH_OK) {
            w = SOURCE_WAIT_TIMEOUT;
            break;
        }
    }
    platform_mutex_unlock(&f->lock);
    platform_cancel_remove_waker(&waker);
    return w;
}

/* The first join after `offset` that the reader has not cleared, or UINT64_MAX. Lock held. */
static uint64_t next_join_locked(radio_feed *f, const radio_reader *r, uint64_t offset)
{
    for (size_t i = 0; i < f->join_count; i++)
        if (f->joins[i] >= offset && f->joins[i] > r->cleared)
            return f->joins[i];
    return UINT64_MAX;
}

source_read radio_feed_read(radio_feed *f, radio_reader *r, uint64_t offset, void *buf, size_t n)
{
    source_read out = {KTH_READ_BYTES, 0, KTH_PENDING_NONE, KTH_OK};
    platform_mutex_lock(&f->lock);
    uint64_t join = next_join_locked(f, r, offset);
    if (offset < f->start) {
        snprintf(f->error, sizeof f->error,
                 "%s: offset %llu is no longer kept (radio keeps bytes %llu to %llu)", f->url,
                 (unsigned long long)offset, (unsigned long long)f->start,
                 (unsigned long long)f->end);
        out.kind = KTH_READ_ERROR;
        out.status = KTH_ERR_UNSUPPORTED;
    } else if (join == offset) {
        r->fence_pending = true;
        r->pending = join;
        out.kind = KTH_READ_PENDING;
        out.reason = KTH_PENDING_VARIANT_CHANGE;
    } else if (offset >= f->end) {
        out.kind = f->failed != KTH_OK ? KTH_READ_ERROR : KTH_READ_PENDING;
        out.reason = f->failed != KTH_OK ? KTH_PENDING_NONE : KTH_PENDING_NOT_READY;
        out.status = f->failed;
    } else {
        uint64_t stop = join < f->end ? join : f->end;
        size_t take = stop - offset < n ? (size_t)(stop - offset) : n;
        size_t at = (size_t)(offset % f->window);
        size_t first = take < f->window - at ? take : (size_t)(f->window - at);
        memcpy(buf, f->ring + at, first);
        memcpy((uint8_t *)buf + first, f->ring, take - first);
        out.n = take;
    }
    platform_mutex_unlock(&f->lock);
    return out;
}

void radio_feed_wake(radio_feed *f)
{
    wake_cond(f);
}

void radio_feed_window(radio_feed *f, uint64_t *start, uint64_t *end)
{
    platform_mutex_lock(&f->lock);
    *start = f->start;
    *end = f->end;
    platform_mutex_unlock(&f->lock);
}

void radio_feed_media_info(radio_feed *f, kth_media_info *info)
{
    platform_mutex_lock(&f->lock);
    kth_media_info station = f->station;
    uint8_t head[HEAD_BYTES];
    size_t head_len = f->head_len;
    memcpy(head, f->head, head_len);
    platform_mutex_unlock(&f->lock);
    if (head_len > 0)
        kth_media_probe(head, head_len, &station);
    *info = station;
}

size_t radio_feed_last_error(radio_feed *f, char *buf, size_t size)
{
    platform_mutex_lock(&f->lock);
    int n = snprintf(buf, size, "%s", f->error);
    platform_mutex_unlock(&f->lock);
    return n > 0 ? (size_t)n : 0;
}
