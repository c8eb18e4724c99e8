/*
 * bus.c — the event bus: fan-out of typed events to bounded per-subscriber queues.
 *
 * Locks: bus->lock guards the subscriber list; each subscription's lock guards its ring. Order:
 * bus->lock → subscription->lock. Publishing takes them only to copy an event; no callback is
 * ever called with either held (callbacks run on the subscription's own thread).
 *
 * Invariants: a ring holds at most `cap` events; when full, the oldest is overwritten and
 * `pending_dropped` counts it, to be reported on the next event taken.
 */
#include <kithara/events.h>

#include "events/bus.h"
#include "platform/sync.h"
#include "platform/mem.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_CAPACITY 256

struct kth_subscription {
    kth_bus *bus;
    platform_mutex lock; /* guards everything below; after bus->lock in the lock order */
    platform_cond cond;
    kth_event *ring;
    size_t cap, head, count;
    uint64_t pending_dropped, delivered, dropped_total;
    uint64_t lost_before_next; /* lost by a publisher (bus_note_dropped): told by the next event */
    bool closing;
    void (*fn)(const kth_event *ev, void *user);
    void *user;
    platform_thread thread;
    bool has_thread;
    bool free_on_exit;                    /* freed from inside its own callback */
    struct kth_subscription *prev, *next; /* bus list, guarded by bus->lock */
};

struct kth_bus {
    atomic_int refs;
    platform_mutex lock; /* guards subs; first in the bus lock order */
    kth_subscription *subs;
};

kth_status kth_bus_new(kth_bus **out)
{
    if (!out)
        return KTH_ERR_INVALID_ARG;
    kth_bus *bus = platform_calloc(1, sizeof *bus);
    if (!bus)
        return KTH_ERR_NO_MEMORY;
    if (platform_mutex_init(&bus->lock) != KTH_OK) {
        platform_free(bus);
        return KTH_ERR_NO_MEMORY;
    }
    atomic_init(&bus->refs, 1);
    *out = bus;
    return KTH_OK;
}

kth_bus *kth_bus_ref(kth_bus *bus)
{
    if (bus)
        atomic_fetch_add(&bus->refs, 1);
    return bus;
}

void kth_bus_unref(kth_bus *bus)
{
    if (!bus || atomic_fetch_sub(&bus->refs, 1) != 1)
        return;
    platform_mutex_destroy(&bus->lock);
    platform_free(bus);
}

static void sub_destroy(kth_subscription *sub)
{
    kth_bus *bus = sub->bus;
    platform_cond_destroy(&sub->cond);
    platform_mutex_destroy(&sub->lock);
    platform_free(sub->ring);
    platform_free(sub);
    kth_bus_unref(bus);
}

static kth_status sub_create(kth_bus *bus, size_t capacity, kth_subscription **out)
{
    if (!bus || !out)
        return KTH_ERR_INVALID_ARG;
    if (capacity == 0)
        capacity = DEFAULT_CAPACITY;
    kth_subscription *sub = platform_calloc(1, sizeof *sub);
    if (!sub)
        return KTH_ERR_NO_MEMORY;
    sub->ring = platform_calloc(capacity, sizeof *sub->ring);
    if (!sub->ring || platform_mutex_init(&sub->lock) != KTH_OK) {
        platform_free(sub->ring);
        platform_free(sub);
        return KTH_ERR_NO_MEMORY;
    }
    if (platform_cond_init(&sub->cond) != KTH_OK) {
        platform_mutex_destroy(&sub->lock);
        platform_free(sub->ring);
        platform_free(sub);
        return KTH_ERR_NO_MEMORY;
    }
    sub->cap = capacity;
    sub->bus = kth_bus_ref(bus);
    *out = sub;
    return KTH_OK;
}

static void sub_attach(kth_subscription *sub)
{
    kth_bus *bus = sub->bus;
    platform_mutex_lock(&bus->lock);
    sub->next = bus->subs;
    if (bus->subs)
        bus->subs->prev = sub;
    bus->subs = sub;
    platform_mutex_unlock(&bus->lock);
}

static void sub_detach(kth_subscription *sub)
{
    kth_bus *bus = sub->bus;
    platform_mutex_lock(&bus->lock);
    if (sub->prev)
        sub->prev->next = sub->next;
    else
        bus->subs = sub->next;
    if (sub->next)
        sub->next->prev = sub->prev;
    sub->prev = sub->next = NULL;
    platform_mutex_unlock(&bus->lock);
}

kth_status kth_bus_subscribe(kth_bus *bus, size_t capacity, kth_subscription **out)
{
    kth_status st = sub_create(bus, capacity, out);
    if (st == KTH_OK)
        sub_attach(*out);
    return st;
}

void bus_note_dropped(kth_bus *bus, uint64_t n)
{
    if (!bus || n == 0)
        return;
    platform_mutex_lock(&bus->lock);
    for (kth_subscription *sub = bus->subs; sub; sub = sub->next) {
        platform_mutex_lock(&sub->lock);
        sub->lost_before_next += n;
        sub->dropped_total += n;
        platform_mutex_unlock(&sub->lock);
    }
    platform_mutex_unlock(&bus->lock);
}

/* Called with sub->lock held and sub->count > 0. */
static void sub_pop_locked(kth_subscription *sub, kth_event *ev)
{
    *ev = sub->ring[sub->head];
    ev->dropped += sub->pending_dropped; /* it carries the losses just before it was published */
    sub->pending_dropped = 0;
    sub->head = (sub->head + 1) % sub->cap;
    sub->count--;
}

kth_status kth_events_next(kth_subscription *sub, kth_event *ev, int64_t timeout_ms)
{
    if (!sub || !ev || sub->fn)
        return KTH_ERR_INVALID_ARG;
    int64_t deadline = platform_deadline_after_ms(timeout_ms);
    platform_mutex_lock(&sub->lock);
    while (sub->count == 0) {
        if (timeout_ms == 0 || !platform_cond_wait_until(&sub->cond, &sub->lock, deadline)) {
            if (sub->count > 0)
                break;
            platform_mutex_unlock(&sub->lock);
            return KTH_ERR_TIMEOUT;
        }
    }
    sub_pop_locked(sub, ev);
    platform_mutex_unlock(&sub->lock);
    return KTH_OK;
}

static void *sub_dispatch_main(void *arg)
{
    kth_subscription *sub = arg;
    kth_event ev;
    platform_mutex_lock(&sub->lock);
    for (;;) {
        while (sub->count == 0 && !sub->closing)
            platform_cond_wait(&sub->cond, &sub->lock);
        if (sub->closing)
            break;
        sub_pop_locked(sub, &ev);
        platform_mutex_unlock(&sub->lock);
        sub->fn(&ev, sub->user);
        platform_mutex_lock(&sub->lock);
    }
    bool free_here = sub->free_on_exit;
    platform_mutex_unlock(&sub->lock);
    if (free_here) {
        pthread_detach(pthread_self());
        sub_destroy(sub);
    }
    return NULL;
}

kth_status kth_bus_subscribe_callback(kth_bus *bus, size_t capacity,
                                      void (*fn)(const kth_event *ev, void *user), void *user,
                                      kth_subscription **out)
{
    if (!fn)
        return KTH_ERR_INVALID_ARG;
    kth_subscription *sub;
    kth_status st = sub_create(bus, capacity, &sub);
    if (st != KTH_OK)
        return st;
    sub->fn = fn;
    sub->user = user;
    st = platform_thread_start(&sub->thread, sub_dispatch_main, sub, "kth-events");
    if (st != KTH_OK) {
        sub_destroy(sub);
        return st;
    }
    sub->has_thread = true;
    sub_attach(sub);
    *out = sub;
    return KTH_OK;
}

void kth_subscription_free(kth_subscription *sub)
{
    if (!sub)
        return;
    sub_detach(sub);
    if (sub->has_thread) {
        platform_mutex_lock(&sub->lock);
        sub->closing = true;
        bool inside_callback = platform_thread_is_current(&sub->thread);
        sub->free_on_exit = inside_callback;
        platform_cond_broadcast(&sub->cond);
        platform_mutex_unlock(&sub->lock);
        if (inside_callback)
            return; /* the dispatcher frees it once this callback returns */
        platform_thread_join(&sub->thread);
    }
    sub_destroy(sub);
}

void kth_subscription_counts(kth_subscription *sub, uint64_t *delivered, uint64_t *dropped)
{
    if (!sub)
        return;
    platform_mutex_lock(&sub->lock);
    if (delivered)
        *delivered = sub->delivered;
    if (dropped)
        *dropped = sub->dropped_total;
    platform_mutex_unlock(&sub->lock);
}

void kth_bus_publish(kth_bus *bus, const kth_event *ev)
{
    if (!bus || !ev)
        return;
    kth_event copy = *ev;
    if (copy.time_ns == 0)
        copy.time_ns = platform_monotonic_ns();
    copy.dropped = 0;
    copy.text[sizeof copy.text - 1] = '\0';

    platform_mutex_lock(&bus->lock);
    for (kth_subscription *sub = bus->subs; sub; sub = sub->next) {
        platform_mutex_lock(&sub->lock);
        if (sub->count == sub->cap) {
            sub->pending_dropped += 1 + sub->ring[sub->head].dropped;
            sub->head = (sub->head + 1) % sub->cap;
            sub->count--;
            sub->dropped_total++;
        }
        copy.dropped = sub->lost_before_next;
        sub->lost_before_next = 0;
        sub->ring[(sub->head + sub->count) % sub->cap] = copy;
        sub->count++;
        sub->delivered++;
        platform_cond_signal(&sub->cond);
        platform_mutex_unlock(&sub->lock);
    }
    platform_mutex_unlock(&bus->lock);
}

const char *kth_event_kind_name(kth_event_kind kind)
{
    switch (kind) {
    case KTH_EVENT_NONE:
        return "NONE";
    case KTH_EVENT_STREAM_OPENED:
        return "STREAM_OPENED";
    case KTH_EVENT_STREAM_SEEK:
        return "STREAM_SEEK";
    case KTH_EVENT_STREAM_EOF:
        return "STREAM_EOF";
    case KTH_EVENT_STREAM_ERROR:
        return "STREAM_ERROR";
    case KTH_EVENT_STREAM_CLOSED:
        return "STREAM_CLOSED";
    case KTH_EVENT_REQUEST_ENQUEUED:
        return "REQUEST_ENQUEUED";
    case KTH_EVENT_REQUEST_STARTED:
        return "REQUEST_STARTED";
    case KTH_EVENT_REQUEST_FIRST_BYTE:
        return "REQUEST_FIRST_BYTE";
    case KTH_EVENT_REQUEST_RETRYING:
        return "REQUEST_RETRYING";
    case KTH_EVENT_REQUEST_COMPLETED:
        return "REQUEST_COMPLETED";
    case KTH_EVENT_REQUEST_FAILED:
        return "REQUEST_FAILED";
    case KTH_EVENT_REQUEST_CANCELLED:
        return "REQUEST_CANCELLED";
    case KTH_EVENT_DOWNLOADER_STALLED:
        return "DOWNLOADER_STALLED";
    case KTH_EVENT_ABR_DECISION:
        return "ABR_DECISION";
    case KTH_EVENT_VARIANT_CHANGED:
        return "VARIANT_CHANGED";
    case KTH_EVENT_WARNING:
        return "WARNING";
    case KTH_EVENT_HLS_SEGMENT_STARTED:
        return "HLS_SEGMENT_STARTED";
    case KTH_EVENT_HLS_SEGMENT_COMPLETED:
        return "HLS_SEGMENT_COMPLETED";
    case KTH_EVENT_HLS_KEY:
        return "HLS_KEY";
    case KTH_EVENT_HLS_BUFFER_LEVEL:
        return "HLS_BUFFER_LEVEL";
    case KTH_EVENT_HLS_END_OF_STREAM:
        return "HLS_END_OF_STREAM";
    case KTH_EVENT_HLS_PLAYBACK_PROGRESS:
        return "HLS_PLAYBACK_PROGRESS";
    case KTH_EVENT_DECODER_KEPT:
        return "DECODER_KEPT";
    case KTH_EVENT_DECODER_RESTARTED:
        return "DECODER_RESTARTED";
    case KTH_EVENT_DECODER_FORMAT:
        return "DECODER_FORMAT";
    case KTH_EVENT_DECODER_TRIMMED:
        return "DECODER_TRIMMED";
    case KTH_EVENT_RADIO_TITLE:
        return "RADIO_TITLE";
    case KTH_EVENT_RADIO_URL:
        return "RADIO_URL";
    case KTH_EVENT_RADIO_DROPPED:
        return "RADIO_DROPPED";
    case KTH_EVENT_RADIO_RECONNECTED:
        return "RADIO_RECONNECTED";
    case KTH_EVENT_HLS_LIVE_RELOADED:
        return "HLS_LIVE_RELOADED";
    case KTH_EVENT_HLS_LIVE_ENDED:
        return "HLS_LIVE_ENDED";
    case KTH_EVENT_HLS_LIVE_RESET:
        return "HLS_LIVE_RESET";
    case KTH_EVENT_HLS_LIVE_DISCONTINUITY:
        return "HLS_LIVE_DISCONTINUITY";
    case KTH_EVENT_HLS_LIVE_SKIPPED:
        return "HLS_LIVE_SKIPPED";
    case KTH_EVENT_CACHE_OVER_BUDGET:
        return "CACHE_OVER_BUDGET";
    case KTH_EVENT_CACHE_WITHIN_BUDGET:
        return "CACHE_WITHIN_BUDGET";
    }
    return "UNKNOWN";
}
