/*
 * test_net_bodies.c — the downloader against bodies that are not what they claim to be: a body
 * encoded with a Content-Encoding nobody asked for (refused for media, decoded for whole-body
 * text fetches), a body that stops half-way with the connection left open, and a trickle that
 * a reader waits on. Time-dependent verdicts run on a virtual clock the test moves, so a 20 s
 * stall timeout is checked to the millisecond in a fraction of a second.
 */
#include "test_net_support.h"

#include "platform/clock.h"

#include <stdatomic.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#define SEED 11

static void add_fault(net_fixture *f, const char *path, kts_fault fault)
{
    assert_int_equal(kts_add_fault(f->srv, path, &fault), KTH_OK);
}

/* Submits spec and waits for its completion. */
static void run(net_fixture *f, net_fetch_spec *spec, rec *r)
{
    assert_int_equal(net_downloader_submit(f->d, spec, NULL), KTH_OK);
    assert_true(rec_wait(r, NET_WAIT_MS));
}

/* ---- content codings --------------------------------------------------------------------- */

/* A media fetch (no Accept-Encoding) answered with a gzip body fails at once, naming the URL and
 * the coding, and not one encoded byte reaches the writer: whole, ranged, or resumed. */
static void test_unasked_gzip_fails_a_media_fetch_clearly(void **state)
{
    net_fixture *f = *state;
    const size_t size = 300000;
    assert_int_equal(kts_add_synth(f->srv, "/song.mp3", size, SEED, NULL), KTH_OK);
    add_fault(f, "/song.mp3", (kts_fault){.kind = KTS_FAULT_GZIP});
    char url[512];
    net_url(f, "/song.mp3", url);

    for (int ranged = 0; ranged < 2; ranged++) {
        rec r;
        rec_init(&r, size, 0);
        net_fetch_spec s = rec_spec(&r, url);
        s.has_range = ranged;
        s.range_start = 0;
        s.range_end = NET_RANGE_OPEN;
        run(f, &s, &r);
        assert_int_equal(r.completions, 1);
        assert_int_equal(r.result.status, KTH_ERR_FORMAT);
        assert_false(r.result.retryable);
        assert_int_equal(r.result.attempts, 1);
        assert_int_equal(r.written, 0);
        assert_non_null(strstr(r.message, url));
        assert_non_null(strstr(r.message, "Content-Encoding gzip"));
        rec_free(&r);
    }

    /* The first response is plain and cut; the resumed one comes encoded: refused too, and what
     * the writer got is only the plain prefix. */
    assert_int_equal(kts_add_synth(f->srv, "/cut.mp3", size, SEED, NULL), KTH_OK);
    add_fault(f, "/cut.mp3",
              (kts_fault){.kind = KTS_FAULT_CLOSE_AFTER, .bytes = 100000, .last_request = 1});
    add_fault(f, "/cut.mp3", (kts_fault){.kind = KTS_FAULT_GZIP, .first_request = 2});
    rec r;
    rec_init(&r, size, 0);
    net_fetch_spec s = rec_spec(&r, net_url(f, "/cut.mp3", url));
    run(f, &s, &r);
    assert_int_equal(r.result.status, KTH_ERR_FORMAT);
    assert_int_equal(r.result.attempts, 2);
    assert_true(r.written <= 100000);
    assert_int_equal(kts_synth_check(SEED, 0, r.buf, (size_t)r.written), r.written);
    assert_non_null(strstr(r.message, "gzip"));
    rec_free(&r);
}

/* A HEAD (a size probe) of an encoded representation would report the encoded length: refused
 * as well. */
static void test_unasked_gzip_fails_a_head(void **state)
{
    net_fixture *f = *state;
    assert_int_equal(kts_add_synth(f->srv, "/seg.ts", 5000, SEED, NULL), KTH_OK);
    add_fault(f, "/seg.ts", (kts_fault){.kind = KTS_FAULT_GZIP});
    char url[512];
    rec r;
    rec_init(&r, 0, 0);
    net_fetch_spec s = rec_spec(&r, net_url(f, "/seg.ts", url));
    s.method = NET_HEAD;
    run(f, &s, &r);
    assert_int_equal(r.result.status, KTH_ERR_FORMAT);
    assert_int_equal(r.responses, 0);
    assert_non_null(strstr(r.message, "gzip"));
    rec_free(&r);
}

/* A whole-body fetch that accepts gzip (playlists, keys) gets the decoded bytes, also when the
 * body is cut and fetched again. */
static void test_gzip_is_decoded_for_whole_body_fetches(void **state)
{
    net_fixture *f = *state;
    const size_t size = 150000;
    assert_int_equal(kts_add_synth(f->srv, "/list.m3u8", size, SEED, NULL), KTH_OK);
    add_fault(f, "/list.m3u8", (kts_fault){.kind = KTS_FAULT_GZIP});
    add_fault(f, "/list.m3u8",
              (kts_fault){.kind = KTS_FAULT_CLOSE_AFTER, .bytes = 70000, .last_request = 1});
    char url[512];
    rec r;
    rec_init(&r, size, 0);
    net_fetch_spec s = rec_spec(&r, net_url(f, "/list.m3u8", url));
    s.accept_gzip = true;
    run(f, &s, &r);
    assert_int_equal(r.result.status, KTH_OK);
    assert_false(r.discontiguous);
    assert_int_equal(r.written, size);
    assert_int_equal(kts_synth_check(SEED, 0, r.buf, size), size);
    assert_int_equal(r.result.attempts, 2);
    rec_free(&r);
}

/* ---- stalls on the downloader's clock ------------------------------------------------------ */

static double no_jitter(void *user)
{
    (void)user;
    return 0.0; /* retries are due at once: only the stall verdict takes time */
}

typedef struct clocked {
    platform_virtual_clock vc;
    kth_downloader *d;
} clocked;

/* A downloader on a virtual clock with the default 20 s stall timeout. */
static void clocked_up(clocked *c, uint64_t waiting_min)
{
    platform_virtual_clock_init(&c->vc, 1000000000);
    net_downloader_hooks hooks = {.clock = &c->vc.base, .random = no_jitter};
    kth_downloader_options o;
    net_test_options(&o);
    o.stall_timeout_ms = 20000;
    o.waiting_min_bytes_per_second = waiting_min;
    o.watchdog_ms = -1;
    assert_int_equal(net_downloader_new(&o, &hooks, &c->d, NULL, 0), KTH_OK);
}

/* Moves the clock and lets the loop run a turn on the new time. */
static void advance_ms(clocked *c, int64_t ms)
{
    platform_virtual_clock_advance(&c->vc, ms * 1000000);
    net_downloader_wake(c->d);
    assert_int_equal(net_downloader_barrier(c->d, NET_WAIT_MS), KTH_OK);
}

static uint64_t written(rec *r)
{
    pthread_mutex_lock(&r->m);
    uint64_t n = r->written;
    pthread_mutex_unlock(&r->m);
    return n;
}

/* Waits (bounded, real time) until the writer has more than `than` bytes. */
static bool wait_written_above(clocked *c, rec *r, uint64_t than)
{
    for (int i = 0; i < 2000; i++) {
        if (written(r) > than)
            return true;
        assert_int_equal(net_downloader_barrier(c->d, NET_WAIT_MS), KTH_OK);
        struct timespec ts = {0, 2000000};
        nanosleep(&ts, NULL);
    }
    return false;
}

/* A body that stops after 300 KiB with the connection left open is abandoned when the stall
 * timeout has passed since its last byte — not a whole window later — and resumed byte exact. */
static void test_stall_is_detected_within_the_stall_timeout(void **state)
{
    net_fixture *f = *state;
    clocked c;
    clocked_up(&c, 0);
    const size_t size = 400 * 1024, stop = 300 * 1024;
    assert_int_equal(kts_add_synth(f->srv, "/stop.mp3", size, SEED, NULL), KTH_OK);
    add_fault(f, "/stop.mp3",
              (kts_fault){.kind = KTS_FAULT_STALL_AFTER, .bytes = stop, .last_request = 1});
    char url[512];
    rec r;
    rec_init(&r, size, 0);
    net_fetch_spec s = rec_spec(&r, net_url(f, "/stop.mp3", url));
    assert_int_equal(net_downloader_submit(c.d, &s, NULL), KTH_OK);
    assert_int_equal(kts_wait_stalled(f->srv, "/stop.mp3", 1, NET_WAIT_MS), KTH_OK);
    assert_true(wait_written_above(&c, &r, stop - 1));
    assert_int_equal(written(&r), stop);

    /* The window in which the bytes arrived ends with plenty of them: that must not restart
     * the count from its end. */
    advance_ms(&c, 19999);
    assert_int_equal(kts_request_count(f->srv, "/stop.mp3", NULL), 1);
    advance_ms(&c, 1);
    assert_int_equal(kts_wait_requests(f->srv, "/stop.mp3", 2, NET_WAIT_MS), KTH_OK);
    assert_true(rec_wait(&r, NET_WAIT_MS));
    assert_int_equal(r.result.status, KTH_OK);
    assert_int_equal(r.result.attempts, 2);
    assert_false(r.discontiguous);
    assert_int_equal(r.written, size);
    assert_int_equal(kts_synth_check(SEED, 0, r.buf, size), size);
    kts_log_entry e;
    assert_int_equal(kts_log_find(f->srv, "/stop.mp3", 2, &e), KTH_OK);
    assert_string_equal(e.range, "bytes=307200-");
    kth_downloader_unref(c.d);
    kts_stall_release(f->srv, "/stop.mp3", KTS_RELEASE_ALL);
    rec_free(&r);
}

static atomic_bool reader_blocked;

static bool reader_waits(void *user)
{
    (void)user;
    return atomic_load(&reader_blocked);
}

/* Trickles a body at 100 B/s, one virtual second per step, for at most `steps` steps; returns
 * the step (virtual seconds since the start) at which the transfer was abandoned (0: never). */
static int trickle(net_fixture *f, clocked *c, rec *r, const char *path, int steps)
{
    char url[512];
    net_fetch_spec s = rec_spec(r, net_url(f, path, url));
    s.reader_waits = reader_waits;
    assert_int_equal(net_downloader_submit(c->d, &s, NULL), KTH_OK);
    for (int step = 1; step <= steps; step++) {
        assert_true(wait_written_above(c, r, written(r)));
        advance_ms(c, 1000);
        kth_downloader_stats stats;
        kth_downloader_get_stats(c->d, &stats);
        if (stats.retries > 0)
            return step;
    }
    return 0;
}

/* A trickle is progress enough for the stall rule (1 byte per second), but not for a reader
 * that waits on it: with one blocked, it is abandoned once a stall window shows it under
 * waiting_min_bytes_per_second, and the retry resumes byte exact. */
static void test_trickle_a_reader_waits_on_is_abandoned_and_resumed(void **state)
{
    net_fixture *f = *state;
    const size_t size = 50000;
    clocked c;
    clocked_up(&c, 1000);
    assert_int_equal(kts_add_synth(f->srv, "/slow.mp3", size, SEED, NULL), KTH_OK);
    add_fault(f, "/slow.mp3", (kts_fault){.kind = KTS_FAULT_RATE, .bytes = 100, .last_request = 1});
    rec r;
    rec_init(&r, size, 0);
    atomic_store(&reader_blocked, true);
    /* Judged as soon as the attempt has run a whole window (20 s). */
    assert_int_equal(trickle(f, &c, &r, "/slow.mp3", 30), 20);
    assert_true(rec_wait(&r, NET_WAIT_MS));
    assert_int_equal(r.result.status, KTH_OK);
    assert_int_equal(r.result.attempts, 2);
    assert_false(r.discontiguous);
    assert_int_equal(r.written, size);
    assert_int_equal(kts_synth_check(SEED, 0, r.buf, size), size);
    kts_log_entry e;
    assert_int_equal(kts_log_find(f->srv, "/slow.mp3", 2, &e), KTH_OK);
    assert_true(strncmp(e.range, "bytes=", 6) == 0 && strcmp(e.range, "bytes=0-") != 0);
    kth_downloader_unref(c.d);
    rec_free(&r);
}

/* The same trickle with nobody waiting for it is left alone. */
static void test_trickle_nobody_waits_on_is_left_alone(void **state)
{
    net_fixture *f = *state;
    const size_t size = 50000;
    clocked c;
    clocked_up(&c, 1000);
    assert_int_equal(kts_add_synth(f->srv, "/ahead.mp3", size, SEED, NULL), KTH_OK);
    add_fault(f, "/ahead.mp3", (kts_fault){.kind = KTS_FAULT_RATE, .bytes = 100});
    rec r;
    rec_init(&r, size, 0);
    atomic_store(&reader_blocked, false);
    assert_int_equal(trickle(f, &c, &r, "/ahead.mp3", 30), 0);
    kth_downloader_unref(c.d); /* cancels it */
    assert_true(rec_wait(&r, NET_WAIT_MS));
    assert_int_equal(r.result.status, KTH_ERR_CANCELLED);
    assert_int_equal(r.result.attempts, 1);
    rec_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, net_fixture_up, net_fixture_down)
        T(test_unasked_gzip_fails_a_media_fetch_clearly),
        T(test_unasked_gzip_fails_a_head),
        T(test_gzip_is_decoded_for_whole_body_fetches),
        T(test_stall_is_detected_within_the_stall_timeout),
        T(test_trickle_a_reader_waits_on_is_abandoned_and_resumed),
        T(test_trickle_nobody_waits_on_is_left_alone),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
