/*
 * test_events.c — the event bus: fan-out, bounded queues that drop the oldest and say how
 * many, timeouts, callback subscriptions on their own thread, and a publisher that never waits
 * for a slow subscriber.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <kithara/events.h>

#include "events/bus.h"
#include "test_support.h"

static kth_event make_event(kth_event_kind kind, uint64_t n)
{
    kth_event ev;
    memset(&ev, 0, sizeof ev);
    ev.kind = kind;
    ev.origin = n;
    snprintf(ev.text, sizeof ev.text, "event %llu", (unsigned long long)n);
    return ev;
}

static void test_every_subscriber_gets_every_event_in_order(void **state)
{
    (void)state;
    kth_bus *bus;
    assert_int_equal(kth_bus_new(&bus), KTH_OK);
    kth_subscription *a, *b;
    assert_int_equal(kth_bus_subscribe(bus, 16, &a), KTH_OK);
    assert_int_equal(kth_bus_subscribe(bus, 16, &b), KTH_OK);
    for (uint64_t i = 0; i < 10; i++) {
        kth_event ev = make_event(KTH_EVENT_REQUEST_STARTED, i);
        kth_bus_publish(bus, &ev);
    }
    kth_event ev;
    for (uint64_t i = 0; i < 10; i++) {
        assert_int_equal(kth_events_next(a, &ev, 0), KTH_OK);
        assert_int_equal(ev.origin, i);
        assert_int_equal(ev.dropped, 0);
        assert_true(ev.time_ns > 0);
        assert_int_equal(kth_events_next(b, &ev, 0), KTH_OK);
        assert_int_equal(ev.origin, i);
    }
    assert_int_equal(kth_events_next(a, &ev, 0), KTH_ERR_TIMEOUT);
    int64_t t0 = test_now_ms();
    assert_int_equal(kth_events_next(b, &ev, 30), KTH_ERR_TIMEOUT);
    assert_true(test_now_ms() - t0 >= 29);
    kth_subscription_free(a);
    kth_subscription_free(b);
    kth_bus_unref(bus);
}

static void test_overflow_drops_oldest_and_reports_count(void **state)
{
    (void)state;
    kth_bus *bus;
    kth_bus_new(&bus);
    kth_subscription *sub;
    kth_bus_subscribe(bus, 4, &sub);
    for (uint64_t i = 0; i < 10; i++) {
        kth_event ev = make_event(KTH_EVENT_WARNING, i);
        kth_bus_publish(bus, &ev);
    }
    kth_event ev;
    assert_int_equal(kth_events_next(sub, &ev, 0), KTH_OK);
    assert_int_equal(ev.origin, 6); /* 0..5 were dropped */
    assert_int_equal(ev.dropped, 6);
    assert_string_equal(ev.text, "event 6");
    assert_int_equal(kth_events_next(sub, &ev, 0), KTH_OK);
    assert_int_equal(ev.origin, 7);
    assert_int_equal(ev.dropped, 0);
    uint64_t delivered, dropped;
    kth_subscription_counts(sub, &delivered, &dropped);
    assert_int_equal(delivered, 10);
    assert_int_equal(dropped, 6);
    kth_subscription_free(sub);
    kth_bus_unref(bus);
}

/* Events a publisher could not queue are told by the next event published, not by one
 * published before them, and counted with the queue's own losses. */
static void test_a_publishers_losses_are_told_by_the_next_event(void **state)
{
    (void)state;
    kth_bus *bus;
    kth_bus_new(&bus);
    kth_subscription *sub;
    kth_bus_subscribe(bus, 4, &sub);
    kth_event ev = make_event(KTH_EVENT_WARNING, 1);
    kth_bus_publish(bus, &ev);
    bus_note_dropped(bus, 3);
    ev = make_event(KTH_EVENT_WARNING, 2);
    kth_bus_publish(bus, &ev);
    assert_int_equal(kth_events_next(sub, &ev, 0), KTH_OK);
    assert_int_equal(ev.origin, 1);
    assert_int_equal(ev.dropped, 0);
    assert_int_equal(kth_events_next(sub, &ev, 0), KTH_OK);
    assert_int_equal(ev.origin, 2);
    assert_int_equal(ev.dropped, 3);
    /* An event carrying losses that the queue then overwrites hands them on. */
    bus_note_dropped(bus, 2);
    for (uint64_t i = 10; i < 15; i++) {
        ev = make_event(KTH_EVENT_WARNING, i);
        kth_bus_publish(bus, &ev);
    }
    assert_int_equal(kth_events_next(sub, &ev, 0), KTH_OK);
    assert_int_equal(ev.origin, 11);
    assert_int_equal(ev.dropped, 3); /* 2 lost before event 10, and event 10 */
    uint64_t delivered, dropped;
    kth_subscription_counts(sub, &delivered, &dropped);
    assert_int_equal(delivered, 7);
    assert_int_equal(dropped, 6);
    kth_subscription_free(sub);
    kth_bus_unref(bus);
}

/* A callback that blocks until released: the publisher must not wait for it. */
struct slow_cb {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool released;
    int calls;
    uint64_t last_origin;
    uint64_t dropped_seen;
};

static void slow_callback(const kth_event *ev, void *user)
{
    struct slow_cb *s = user;
    pthread_mutex_lock(&s->lock);
    while (!s->released)
        pthread_cond_wait(&s->cond, &s->lock);
    s->calls++;
    s->last_origin = ev->origin;
    s->dropped_seen += ev->dropped;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
}

static void test_publisher_never_waits_for_a_blocked_callback(void **state)
{
    (void)state;
    kth_bus *bus;
    kth_bus_new(&bus);
    struct slow_cb s = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, 0, 0, 0};
    kth_subscription *sub;
    assert_int_equal(kth_bus_subscribe_callback(bus, 8, slow_callback, &s, &sub), KTH_OK);
    int64_t t0 = test_now_ms();
    for (uint64_t i = 0; i < 1000; i++) {
        kth_event ev = make_event(KTH_EVENT_REQUEST_COMPLETED, i);
        kth_bus_publish(bus, &ev);
    }
    /* 1000 publishes against a stuck subscriber complete without waiting on it. */
    assert_true(test_now_ms() - t0 < 2000);
    pthread_mutex_lock(&s.lock);
    s.released = true;
    pthread_cond_broadcast(&s.cond);
    int64_t deadline = test_now_ms() + 10000;
    while (s.last_origin != 999 && test_now_ms() < deadline) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&s.cond, &s.lock, &ts);
    }
    /* One event may have been in the callback's hands when the queue overflowed. */
    assert_int_equal(s.last_origin, 999);
    assert_true(s.calls <= 9);
    assert_int_equal((uint64_t)s.calls + s.dropped_seen, 1000);
    pthread_mutex_unlock(&s.lock);
    kth_subscription_free(sub);
    kth_bus_unref(bus);
}

struct self_free {
    kth_subscription *sub;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool done;
};

static void freeing_callback(const kth_event *ev, void *user)
{
    (void)ev;
    struct self_free *s = user;
    pthread_mutex_lock(&s->lock);
    kth_subscription *sub = s->sub;
    pthread_mutex_unlock(&s->lock);
    kth_subscription_free(sub); /* from inside its own callback */
    pthread_mutex_lock(&s->lock);
    s->done = true;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
}

static void test_callback_subscription_may_free_itself(void **state)
{
    (void)state;
    kth_bus *bus;
    kth_bus_new(&bus);
    struct self_free s = {NULL, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false};
    pthread_mutex_lock(&s.lock);
    assert_int_equal(kth_bus_subscribe_callback(bus, 8, freeing_callback, &s, &s.sub), KTH_OK);
    pthread_mutex_unlock(&s.lock);
    kth_event ev = make_event(KTH_EVENT_WARNING, 1);
    kth_bus_publish(bus, &ev);
    pthread_mutex_lock(&s.lock);
    while (!s.done)
        pthread_cond_wait(&s.cond, &s.lock);
    pthread_mutex_unlock(&s.lock);
    kth_bus_publish(bus, &ev); /* no subscriber left */
    kth_bus_unref(bus);        /* the dispatcher thread drops the last reference if later */
}

static void test_invalid_arguments_are_reported(void **state)
{
    (void)state;
    kth_subscription *sub;
    assert_int_equal(kth_bus_new(NULL), KTH_ERR_INVALID_ARG);
    assert_int_equal(kth_bus_subscribe(NULL, 4, &sub), KTH_ERR_INVALID_ARG);
    kth_bus *bus;
    kth_bus_new(&bus);
    assert_int_equal(kth_bus_subscribe_callback(bus, 4, NULL, NULL, &sub), KTH_ERR_INVALID_ARG);
    assert_int_equal(kth_bus_subscribe_callback(bus, 4, slow_callback, NULL, &sub), KTH_OK);
    kth_event ev;
    assert_int_equal(kth_events_next(sub, &ev, 0), KTH_ERR_INVALID_ARG);
    kth_subscription_free(sub);
    kth_bus_publish(NULL, &ev);
    assert_string_equal(kth_event_kind_name(KTH_EVENT_REQUEST_RETRYING), "REQUEST_RETRYING");
    kth_bus_unref(bus);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_subscriber_gets_every_event_in_order),
        cmocka_unit_test(test_overflow_drops_oldest_and_reports_count),
        cmocka_unit_test(test_a_publishers_losses_are_told_by_the_next_event),
        cmocka_unit_test(test_publisher_never_waits_for_a_blocked_callback),
        cmocka_unit_test(test_callback_subscription_may_free_itself),
        cmocka_unit_test(test_invalid_arguments_are_reported),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
