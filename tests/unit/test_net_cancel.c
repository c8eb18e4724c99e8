/*
 * test_net_cancel.c — cancellation, shutdown and time: a running transfer's completion arrives
 * within 50 ms of its cancel, and one that comes after the last byte leaves the success
 * standing; queued and retry-waiting commands cancel too; a storm of cancels
 * at random moments still gives every command exactly one completion; 200 fetches at once all
 * arrive intact; freeing a downloader (also from its own callback) cancels what is left; the
 * default downloader comes and goes; back-off follows the injected clock; the watchdog speaks
 * up when nothing moves.
 */
#include "test_net_support.h"

#include "net/retry.h"
#include "platform/clock.h"

#include <stdatomic.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#define SEED 23

static void add_fault(net_fixture *f, const char *path, kts_fault fault)
{
    assert_int_equal(kts_add_fault(f->srv, path, &fault), KTH_OK);
}

/* Waits for the next event of `kind`, skipping others. */
static void wait_event(kth_subscription *sub, kth_event_kind kind, kth_event *ev)
{
    int64_t end = net_test_now_ms() + NET_WAIT_MS;
    while (net_test_now_ms() < end) {
        if (kth_events_next(sub, ev, 1000) == KTH_OK && ev->kind == kind)
            return;
    }
    fail_msg("no %s event", kth_event_kind_name(kind));
}

static void test_cancel_mid_body_completes_within_50ms(void **state)
{
    net_fixture *f = *state;
    assert_int_equal(kts_add_synth(f->srv, "/mid.bin", 1000000, SEED, NULL), KTH_OK);
    add_fault(f, "/mid.bin", (kts_fault){.kind = KTS_FAULT_STALL_AFTER, .bytes = 200000});
    platform_cancel *token = platform_cancel_new(NULL);
    char url[512];
    rec r;
    rec_init(&r, 1000000, 0);
    net_fetch_spec s = rec_spec(&r, net_url(f, "/mid.bin", url));
    s.cancel = token;
    assert_int_equal(net_downloader_submit(f->d, &s, NULL), KTH_OK);
    assert_int_equal(kts_wait_stalled(f->srv, "/mid.bin", 1, NET_WAIT_MS), KTH_OK);
    int64_t t0 = net_test_now_ms();
    platform_cancel_cancel(token);
    assert_true(rec_wait(&r, NET_WAIT_MS));
    int64_t took = r.completed_ms - t0;
    print_message("cancel of a running transfer completed in %lld ms\n", (long long)took);
    assert_true(took <= 50);
    assert_int_equal(r.result.status, KTH_ERR_CANCELLED);
    assert_int_equal(r.completions, 1);
    assert_false(r.discontiguous);
    assert_int_equal(kts_synth_check(SEED, 0, r.buf, r.written), r.written);
    platform_cancel_unref(token);
    kts_stall_release(f->srv, "/mid.bin", KTS_RELEASE_ALL);
    rec_free(&r);
}

/* A writer that cancels its command once it holds the whole body, as a reader that got what
 * it wanted and closed would. */
typedef struct cancel_at_end {
    rec r; /* first: rec's callbacks receive this struct as their rec */
    platform_cancel *token;
    size_t size;
} cancel_at_end;

static kth_status write_then_cancel(void *user, uint64_t offset, const void *data, size_t n)
{
    cancel_at_end *c = user;
    kth_status st = rec_write(&c->r, offset, data, n);
    if (st == KTH_OK && offset + n >= c->size)
        platform_cancel_cancel(c->token);
    return st;
}

static void test_cancel_after_the_last_byte_keeps_the_success(void **state)
{
    net_fixture *f = *state;
    const size_t size = 300000;
    assert_int_equal(kts_add_synth(f->srv, "/whole.bin", size, SEED, NULL), KTH_OK);
    for (int round = 0; round < 5; round++) {
        cancel_at_end c = {.token = platform_cancel_new(NULL), .size = size};
        rec_init(&c.r, size, 0);
        char url[512];
        net_fetch_spec s = rec_spec(&c.r, net_url(f, "/whole.bin", url));
        s.write = write_then_cancel;
        s.cancel = c.token;
        assert_int_equal(net_downloader_submit(f->d, &s, NULL), KTH_OK);
        assert_true(rec_wait(&c.r, NET_WAIT_MS));
        assert_int_equal(c.r.result.status, KTH_OK);
        assert_int_equal(c.r.completions, 1);
        assert_false(c.r.discontiguous);
        assert_int_equal(c.r.written, size);
        assert_int_equal(kts_synth_check(SEED, 0, c.r.buf, size), size);
        platform_cancel_unref(c.token);
        rec_free(&c.r);
    }
}

static double nearly_one(void *user)
{
    (void)user;
    return 0.99;
}

static void test_cancel_while_queued_or_waiting_for_a_retry(void **state)
{
    kts_server *srv = NULL;
    assert_int_equal(kts_start(NULL, &srv), KTH_OK);
    kth_bus *bus = NULL;
    kth_subscription *sub = NULL;
    assert_int_equal(kth_bus_new(&bus), KTH_OK);
    assert_int_equal(kth_bus_subscribe(bus, 1024, &sub), KTH_OK);
    kth_downloader_options o;
    net_test_options(&o);
    o.max_in_flight = 1;
    o.retry_base_ms = 5000; /* the retry would be seconds away */
    o.retry_cap_ms = 5000;
    o.bus = bus;
    net_downloader_hooks hooks = {.random = nearly_one};
    kth_downloader *d = NULL;
    assert_int_equal(net_downloader_new(&o, &hooks, &d, NULL, 0), KTH_OK);
    (void)state;

    kts_fault st = {.kind = KTS_FAULT_STATUS, .status = 503};
    assert_int_equal(kts_add_fault(srv, "/sick", &st), KTH_OK);
    assert_int_equal(kts_add_synth(srv, "/sick", 10, SEED, NULL), KTH_OK);
    platform_cancel *t1 = platform_cancel_new(NULL), *t2 = platform_cancel_new(NULL);
    char u1[512], u2[512];
    rec r1, r2;
    rec_init(&r1, 10, 0);
    rec_init(&r2, 10, 0);
    net_fetch_spec s1 = rec_spec(&r1, kts_url(srv, "/sick", u1, 512));
    s1.cancel = t1;
    assert_int_equal(net_downloader_submit(d, &s1, NULL), KTH_OK);
    kth_event ev;
    wait_event(sub, KTH_EVENT_REQUEST_RETRYING, &ev);
    assert_int_equal(ev.payload.request.attempt, 1);
    assert_non_null(strstr(ev.text, "503"));
    /* r1 waits for its retry; the slot is free, so r2 may run: hold it at a gate. */
    kts_fault g = {.kind = KTS_FAULT_GATE};
    assert_int_equal(kts_add_fault(srv, "/held", &g), KTH_OK);
    assert_int_equal(kts_add_synth(srv, "/held", 10, SEED, NULL), KTH_OK);
    net_fetch_spec s2 = rec_spec(&r2, kts_url(srv, "/held", u2, 512));
    s2.cancel = t2;
    assert_int_equal(net_downloader_submit(d, &s2, NULL), KTH_OK);
    assert_int_equal(kts_wait_gated(srv, "/held", 1, NET_WAIT_MS), KTH_OK);

    int64_t t0 = net_test_now_ms();
    platform_cancel_cancel(t1);
    assert_true(rec_wait(&r1, NET_WAIT_MS));
    assert_true(r1.completed_ms - t0 <= 50);
    assert_int_equal(r1.result.status, KTH_ERR_CANCELLED);
    assert_int_equal(kts_request_count(srv, "/sick", NULL), 1);

    /* A third command queues behind the held one; cancelled there, it is never sent. */
    platform_cancel *t3 = platform_cancel_new(NULL);
    rec r3;
    rec_init(&r3, 10, 0);
    char u3[512];
    net_fetch_spec s3 = rec_spec(&r3, kts_url(srv, "/synth/10", u3, 512));
    s3.cancel = t3;
    assert_int_equal(net_downloader_submit(d, &s3, NULL), KTH_OK);
    assert_int_equal(net_downloader_barrier(d, NET_WAIT_MS), KTH_OK);
    t0 = net_test_now_ms();
    platform_cancel_cancel(t3);
    assert_true(rec_wait(&r3, NET_WAIT_MS));
    assert_true(r3.completed_ms - t0 <= 50);
    assert_int_equal(r3.result.status, KTH_ERR_CANCELLED);
    assert_int_equal(r3.result.attempts, 0);
    assert_int_equal(kts_request_count(srv, "/synth/10", NULL), 0);
    wait_event(sub, KTH_EVENT_REQUEST_CANCELLED, &ev);

    platform_cancel_cancel(t2);
    assert_true(rec_wait(&r2, NET_WAIT_MS));
    kth_downloader_unref(d);
    kts_stop(srv);
    kth_subscription_free(sub);
    kth_bus_unref(bus);
    platform_cancel_unref(t1);
    platform_cancel_unref(t2);
    platform_cancel_unref(t3);
    rec_free(&r1);
    rec_free(&r2);
    rec_free(&r3);
}

#define STORM      120
#define STORM_BODY 65536

static void test_cancel_storm_gives_exactly_one_completion_each(void **state)
{
    net_fixture *f = *state;
    /* Every third body trickles, so cancels land before, during and after transfers. */
    for (int i = 0; i < STORM; i += 3) {
        char path[64];
        snprintf(path, sizeof path, "/storm/%d", i);
        assert_int_equal(kts_add_synth(f->srv, path, STORM_BODY, SEED + (uint64_t)i, NULL), KTH_OK);
        add_fault(f, path, (kts_fault){.kind = KTS_FAULT_RATE, .bytes = 1000000});
    }
    rec *r = calloc(STORM, sizeof *r);
    platform_cancel **tok = calloc(STORM, sizeof *tok);
    char url[512];
    for (int i = 0; i < STORM; i++) {
        char path[64];
        if (i % 3 == 0)
            snprintf(path, sizeof path, "/storm/%d", i);
        else
            snprintf(path, sizeof path, "/synth/64k?seed=%d", SEED + i);
        rec_init(&r[i], STORM_BODY, 0);
        tok[i] = platform_cancel_new(NULL);
        net_fetch_spec s = rec_spec(&r[i], net_url(f, path, url));
        s.cancel = tok[i];
        s.priority = i % 2 ? NET_FETCH_LOW : NET_FETCH_HIGH;
        assert_int_equal(net_downloader_submit(f->d, &s, NULL), KTH_OK);
    }
    uint64_t x = 0x2545F4914F6CDD1Dull;
    for (int k = 0; k < STORM; k++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        int i = (int)(x % STORM);
        if (x & 8) { /* roughly half are cancelled, at scattered moments */
            struct timespec pause = {0, (long)(x % 2000) * 1000};
            nanosleep(&pause, NULL);
            platform_cancel_cancel(tok[i]);
        }
    }
    unsigned ok = 0, cancelled = 0;
    for (int i = 0; i < STORM; i++) {
        assert_true(rec_wait(&r[i], NET_WAIT_MS));
        if (r[i].result.status == KTH_OK) {
            ok++;
            assert_int_equal(r[i].written, STORM_BODY);
            assert_int_equal(kts_synth_check(SEED + (uint64_t)i, 0, r[i].buf, STORM_BODY),
                             STORM_BODY);
        } else {
            assert_int_equal(r[i].result.status, KTH_ERR_CANCELLED);
            assert_true(platform_cancel_is_cancelled(tok[i]));
            cancelled++;
        }
    }
    assert_int_equal(net_downloader_barrier(f->d, NET_WAIT_MS), KTH_OK);
    for (int i = 0; i < STORM; i++)
        assert_int_equal(r[i].completions, 1);
    kth_downloader_stats st;
    kth_downloader_get_stats(f->d, &st);
    assert_int_equal(st.completed, ok);
    assert_int_equal(st.cancelled, cancelled);
    assert_int_equal(st.queued + st.running + st.waiting_retry, 0);
    print_message("storm: %u completed, %u cancelled\n", ok, cancelled);
    for (int i = 0; i < STORM; i++) {
        platform_cancel_unref(tok[i]);
        rec_free(&r[i]);
    }
    free(tok);
    free(r);
}

#define MANY 200

static void test_200_concurrent_fetches_all_arrive_intact(void **state)
{
    net_fixture *f = *state;
    rec *r = calloc(MANY, sizeof *r);
    char url[512];
    for (int i = 0; i < MANY; i++) {
        char path[64];
        snprintf(path, sizeof path, "/synth/20k?seed=%d", i);
        rec_init(&r[i], 20480, 0);
        net_fetch_spec s = rec_spec(&r[i], net_url(f, path, url));
        assert_int_equal(net_downloader_submit(f->d, &s, NULL), KTH_OK);
    }
    for (int i = 0; i < MANY; i++) {
        assert_true(rec_wait(&r[i], NET_WAIT_MS));
        assert_int_equal(r[i].result.status, KTH_OK);
        assert_int_equal(r[i].written, 20480);
        assert_int_equal(kts_synth_check((uint64_t)i, 0, r[i].buf, 20480), 20480);
        rec_free(&r[i]);
    }
    free(r);
    assert_int_equal(kts_request_count(f->srv, NULL, "GET"), MANY);
}

static void test_free_cancels_pending_requests_before_returning(void **state)
{
    net_fixture *f = *state;
    kth_downloader_options o;
    net_test_options(&o);
    kth_downloader *d = NULL;
    assert_int_equal(kth_downloader_new(&o, &d, NULL, 0), KTH_OK);
    add_fault(f, "/hold", (kts_fault){.kind = KTS_FAULT_GATE});
    assert_int_equal(kts_add_synth(f->srv, "/hold", 10, SEED, NULL), KTH_OK);
    char url[512];
    rec r[8];
    for (int i = 0; i < 8; i++) {
        rec_init(&r[i], 10, 0);
        net_fetch_spec s = rec_spec(&r[i], net_url(f, "/hold", url));
        assert_int_equal(net_downloader_submit(d, &s, NULL), KTH_OK);
    }
    assert_int_equal(kts_wait_gated(f->srv, "/hold", 6, NET_WAIT_MS), KTH_OK);
    kth_downloader_unref(d);
    for (int i = 0; i < 8; i++) {
        assert_int_equal(r[i].completions, 1);
        assert_int_equal(r[i].result.status, KTH_ERR_CANCELLED);
        rec_free(&r[i]);
    }
    kts_gate_release(f->srv, "/hold", KTS_RELEASE_ALL);
}

typedef struct self_free {
    kth_downloader *d;
    rec r;
} self_free;

static void free_in_completion(void *user, const net_result *res)
{
    self_free *sf = user;
    kth_downloader_unref(sf->d); /* the loop thread ends itself after this callback */
    rec_complete(&sf->r, res);
}

static void test_free_from_inside_a_callback(void **state)
{
    net_fixture *f = *state;
    self_free sf;
    kth_downloader_options o;
    net_test_options(&o);
    assert_int_equal(kth_downloader_new(&o, &sf.d, NULL, 0), KTH_OK);
    rec_init(&sf.r, 100, 0);
    char url[512];
    net_fetch_spec s = rec_spec(&sf.r, net_url(f, "/synth/100", url));
    s.complete = free_in_completion;
    s.user = &sf;
    s.write = NULL;
    s.on_response = NULL;
    assert_int_equal(net_downloader_submit(sf.d, &s, NULL), KTH_OK);
    assert_true(rec_wait(&sf.r, NET_WAIT_MS));
    assert_int_equal(sf.r.result.status, KTH_OK);
    rec_free(&sf.r);
}

static void test_default_downloader_is_created_once_and_shut_down(void **state)
{
    net_fixture *f = *state;
    kth_downloader *d = kth_downloader_default();
    assert_non_null(d);
    assert_ptr_equal(kth_downloader_default(), d);
    assert_true(kth_downloader_id(d) > 0);
    rec r;
    rec_init(&r, 1000, 0);
    char url[512];
    net_fetch_spec s = rec_spec(&r, net_url(f, "/synth/1000", url));
    assert_int_equal(net_downloader_submit(d, &s, NULL), KTH_OK);
    assert_true(rec_wait(&r, NET_WAIT_MS));
    assert_int_equal(r.result.status, KTH_OK);
    rec_free(&r);
    uint64_t first_id = kth_downloader_id(d);
    net_downloader_shutdown_default();
    kth_downloader *again = kth_downloader_default();
    assert_non_null(again);
    assert_true(kth_downloader_id(again) != first_id);
    net_downloader_shutdown_default();
    net_downloader_shutdown_default(); /* nothing left: harmless */
}

static void test_backoff_waits_follow_the_injected_clock(void **state)
{
    (void)state;
    kts_server *srv = NULL;
    assert_int_equal(kts_start(NULL, &srv), KTH_OK);
    kth_bus *bus = NULL;
    kth_subscription *sub = NULL;
    assert_int_equal(kth_bus_new(&bus), KTH_OK);
    assert_int_equal(kth_bus_subscribe(bus, 1024, &sub), KTH_OK);
    platform_virtual_clock vc;
    platform_virtual_clock_init(&vc, 1000000000);
    net_downloader_hooks hooks = {.clock = &vc.base, .random = nearly_one};
    kth_downloader_options o;
    net_test_options(&o);
    o.retry_base_ms = 100;
    o.retry_cap_ms = 300;
    o.watchdog_ms = -1;
    o.bus = bus;
    kth_downloader *d = NULL;
    assert_int_equal(net_downloader_new(&o, &hooks, &d, NULL, 0), KTH_OK);
    kts_fault st = {.kind = KTS_FAULT_STATUS, .status = 503, .last_request = 3};
    assert_int_equal(kts_add_fault(srv, "/vb.bin", &st), KTH_OK);
    assert_int_equal(kts_add_synth(srv, "/vb.bin", 5000, SEED, NULL), KTH_OK);
    rec r;
    rec_init(&r, 5000, 0);
    char url[512];
    net_fetch_spec s = rec_spec(&r, kts_url(srv, "/vb.bin", url, 512));
    assert_int_equal(net_downloader_submit(d, &s, NULL), KTH_OK);
    for (unsigned k = 1; k <= 3; k++) {
        kth_event ev;
        wait_event(sub, KTH_EVENT_REQUEST_RETRYING, &ev);
        assert_int_equal(ev.payload.request.attempt, (int)k);
        assert_int_equal(net_downloader_barrier(d, NET_WAIT_MS), KTH_OK);
        int64_t due = 0;
        assert_true(net_downloader_next_retry(d, &due));
        int64_t want = net_backoff_ns(k, 100000000, 300000000, 0.99);
        /* 99 ms, 198 ms, then the cap: 297 ms */
        assert_int_equal(want, k == 1 ? 99000000 : k == 2 ? 198000000 : 297000000);
        assert_int_equal(due - platform_clock_now(&vc.base), want);
        platform_virtual_clock_advance(&vc, want - 1000000);
        net_downloader_wake(d);
        assert_int_equal(net_downloader_barrier(d, NET_WAIT_MS), KTH_OK);
        assert_int_equal(kts_request_count(srv, "/vb.bin", NULL), k); /* not yet */
        platform_virtual_clock_advance(&vc, 1000000);
        net_downloader_wake(d);
        assert_int_equal(kts_wait_requests(srv, "/vb.bin", k + 1, NET_WAIT_MS), KTH_OK);
    }
    assert_true(rec_wait(&r, NET_WAIT_MS));
    assert_int_equal(r.result.status, KTH_OK);
    assert_int_equal(r.result.attempts, 4);
    assert_int_equal(kts_synth_check(SEED, 0, r.buf, 5000), 5000);
    assert_int_equal(net_downloader_barrier(d, NET_WAIT_MS), KTH_OK);
    assert_false(net_downloader_next_retry(d, NULL));
    kth_downloader_unref(d);
    kts_stop(srv);
    kth_subscription_free(sub);
    kth_bus_unref(bus);
    rec_free(&r);
}

static void test_watchdog_reports_when_nothing_moves(void **state)
{
    net_fixture *f = *state;
    kth_bus *bus = NULL;
    kth_subscription *sub = NULL;
    assert_int_equal(kth_bus_new(&bus), KTH_OK);
    assert_int_equal(kth_bus_subscribe(bus, 1024, &sub), KTH_OK);
    kth_downloader_options o;
    net_test_options(&o);
    o.watchdog_ms = 200;
    o.bus = bus;
    kth_downloader *d = NULL;
    assert_int_equal(kth_downloader_new(&o, &d, NULL, 0), KTH_OK);
    add_fault(f, "/frozen", (kts_fault){.kind = KTS_FAULT_GATE});
    assert_int_equal(kts_add_synth(f->srv, "/frozen", 10, SEED, NULL), KTH_OK);
    rec r;
    rec_init(&r, 10, 0);
    char url[512];
    net_fetch_spec s = rec_spec(&r, net_url(f, "/frozen", url));
    int64_t t0 = net_test_now_ms();
    assert_int_equal(net_downloader_submit(d, &s, NULL), KTH_OK);
    kth_event ev;
    wait_event(sub, KTH_EVENT_REQUEST_STARTED, &ev);
    assert_int_equal(ev.origin, kth_downloader_id(d));
    wait_event(sub, KTH_EVENT_DOWNLOADER_STALLED, &ev);
    assert_true(net_test_now_ms() - t0 >= 200);
    assert_true(ev.payload.request.duration_ns >= 200 * 1000000LL);
    kts_gate_release(f->srv, "/frozen", KTS_RELEASE_ALL);
    assert_true(rec_wait(&r, NET_WAIT_MS));
    assert_int_equal(r.result.status, KTH_OK);
    wait_event(sub, KTH_EVENT_REQUEST_COMPLETED, &ev);
    assert_int_equal(ev.payload.request.bytes, 10);
    assert_int_equal(ev.payload.request.http_status, 200);
    kth_downloader_unref(d);
    kth_subscription_free(sub);
    kth_bus_unref(bus);
    rec_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, net_fixture_up, net_fixture_down)
        T(test_cancel_mid_body_completes_within_50ms),
        T(test_cancel_after_the_last_byte_keeps_the_success),
        cmocka_unit_test(test_cancel_while_queued_or_waiting_for_a_retry),
        T(test_cancel_storm_gives_exactly_one_completion_each),
        T(test_200_concurrent_fetches_all_arrive_intact),
        T(test_free_cancels_pending_requests_before_returning),
        T(test_free_from_inside_a_callback),
        T(test_default_downloader_is_created_once_and_shut_down),
        cmocka_unit_test(test_backoff_waits_follow_the_injected_clock),
        T(test_watchdog_reports_when_nothing_moves),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
