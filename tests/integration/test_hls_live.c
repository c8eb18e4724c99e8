/*
 * test_hls_live.c — the live playlist rules against the test server's live mode, in virtual
 * time: a client that reloads when hls_live_tracker says, over a window the test's clock
 * advances, takes every segment exactly once and byte-exact, in media sequence order, and
 * sees the stream end, stop (stuck), restart (reset) and break (discontinuity) when the server
 * does.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <kithara/hls.h>
#include <kithara/kithara.h>

#include <pthread.h>
#include <stdatomic.h>

#include "hls/live.h"
#include "hls/playlist.h"
#include "kts_live.h"
#include "net/downloader.h"
#include "platform/clock.h"
#include "test_support.h"
#include "testclient.h"
#include "testserver.h"

#define NS_PER_MS 1000000LL

typedef struct client {
    kts_server *srv;
    kts_live_stream *ls;
    kts_live cfg;
    hls_live_tracker tracker;
    char url[512];
    uint64_t next_expected; /* media sequence the next appended segment must have */
    bool reset_seen;        /* segments are of the server's second epoch */
    size_t taken;
} client;

static hls_playlist *load(client *c)
{
    ktc_response r = {0};
    ktc_fetch(c->url, NULL, &r);
    assert_int_equal(r.status, 200);
    hls_playlist *pl = NULL;
    char err[256] = "";
    if (hls_playlist_parse(r.body, r.len, c->url, NULL, &pl, err, sizeof err) != KTH_OK)
        fail_msg("parse: %s", err);
    ktc_response_free(&r);
    return pl;
}

/* Fetches the segments the update says to append and checks each byte. */
static void take(client *c, const hls_playlist *pl, const hls_live_update *u)
{
    for (size_t i = u->first_new; i < u->first_new + u->new_count; i++) {
        const hls_segment seg_seg = hls_media_segment(&pl->media, i), *seg = &seg_seg;
        assert_int_equal(seg->sequence, c->next_expected);
        ktc_response r = {0};
        char *uri = hls_media_segment_uri(&pl->media, i);
        assert_non_null(uri);
        ktc_fetch(uri, NULL, &r);
        free(uri);
        assert_int_equal(r.status, 200);
        assert_int_equal(r.len, c->cfg.segment_size);
        uint64_t seed = kts_live_segment_seed(&c->cfg, seg->sequence, c->reset_seen);
        assert_int_equal(kts_ts_synth_check(seed, 0, r.body, r.len), r.len);
        ktc_response_free(&r);
        c->next_expected++;
        c->taken++;
    }
}

static void client_start(client *c, const kts_live *cfg)
{
    memset(c, 0, sizeof *c);
    kts_config sc = {0};
    assert_int_equal(kts_start(&sc, &c->srv), KTH_OK);
    c->cfg = *cfg;
    assert_int_equal(kts_live_start(c->srv, "/tv", cfg, &c->ls), KTH_OK);
    kts_url(c->srv, "/tv/live.m3u8", c->url, sizeof c->url);
}

static void client_stop(client *c)
{
    kts_live_free(c->ls);
    kts_stop(c->srv);
}

/* The first load at time 0: *u says what to take and when to reload. */
static void first_load(client *c, hls_live_update *u)
{
    hls_playlist *pl = load(c);
    size_t start = hls_live_start_segment(pl, NULL);
    hls_live_tracker_start(&c->tracker, pl, start, 0, u);
    c->next_expected = hls_media_segment(&pl->media, start).sequence;
    take(c, pl, u);
    hls_playlist_free(pl);
}

/* Advances the server to the reload time u->next_reload_ns and reloads. */
static hls_playlist *reload(client *c, hls_live_update *u)
{
    int64_t at = u->next_reload_ns;
    assert_int_equal(kts_live_advance(c->ls, at / NS_PER_MS), KTH_OK);
    hls_playlist *pl = load(c);
    hls_live_tracker_update(&c->tracker, pl, at, u);
    return pl;
}

static void test_window_slides_every_segment_once(void **state)
{
    (void)state;
    client c;
    client_start(&c,
                 &(kts_live){.window = 6, .target_duration = 4, .segment_size = 3000, .seed = 7});
    hls_live_update u;
    first_load(&c, &u);
    /* 24 s of window, start 12 s before the end: segments 3, 4 and 5. */
    assert_int_equal(c.taken, 3);
    assert_int_equal(u.next_reload_ns, 4000 * NS_PER_MS);
    unsigned unchanged = 0;
    for (int i = 0; i < 40; i++) {
        hls_playlist *pl = reload(&c, &u);
        assert_false(u.reset || u.skipped || u.stuck || u.ended);
        unchanged += !u.changed;
        take(&c, pl, &u);
        hls_playlist_free(pl);
    }
    /* Reloads at the target duration keep pace with one segment per target duration. */
    assert_int_equal(unchanged, 0);
    assert_int_equal(c.taken, 3 + 40);
    /* A segment that left the window is gone from the server. */
    char old[512];
    kts_url(c.srv, "/tv/seg0.ts", old, sizeof old);
    ktc_response r = {0};
    ktc_fetch(old, NULL, &r);
    assert_int_equal(r.status, 404);
    ktc_response_free(&r);
    client_stop(&c);
}

static void test_endlist_ends_after_the_last_segment(void **state)
{
    (void)state;
    client c;
    client_start(&c, &(kts_live){.window = 4,
                                 .target_duration = 2,
                                 .segment_size = 1880,
                                 .seed = 11,
                                 .mode = KTS_LIVE_ENDLIST,
                                 .mode_at = 9});
    hls_live_update u;
    first_load(&c, &u);
    int reloads = 0;
    while (!u.ended && reloads < 50) {
        hls_playlist *pl = reload(&c, &u);
        take(&c, pl, &u);
        hls_playlist_free(pl);
        reloads++;
    }
    assert_true(u.ended);
    assert_int_equal(c.next_expected, 9); /* ends after segment 8, the last produced */
    client_stop(&c);
}

static void test_stuck_playlist_is_reported(void **state)
{
    (void)state;
    client c;
    client_start(&c, &(kts_live){.window = 3,
                                 .target_duration = 2,
                                 .segment_size = 188,
                                 .seed = 3,
                                 .mode = KTS_LIVE_STUCK,
                                 .mode_at = 5});
    hls_live_update u;
    first_load(&c, &u);
    int64_t last_change = 0, at = 0;
    int reloads = 0;
    while (!u.stuck && reloads < 50) {
        at = u.next_reload_ns;
        hls_playlist *pl = reload(&c, &u);
        if (u.changed)
            last_change = at;
        take(&c, pl, &u);
        hls_playlist_free(pl);
        reloads++;
    }
    assert_true(u.stuck);
    assert_int_equal(c.next_expected, 5);
    /* Said once the playlist had not changed for more than 3.5 target durations (7 s), and no
     * later than the next unchanged reload (half a target after). */
    assert_true(at - last_change > 7000 * NS_PER_MS);
    assert_true(at - last_change <= 8000 * NS_PER_MS);
    client_stop(&c);
}

static void test_server_reset_reanchors(void **state)
{
    (void)state;
    client c;
    client_start(&c, &(kts_live){.window = 5,
                                 .target_duration = 2,
                                 .segment_size = 376,
                                 .seed = 21,
                                 .mode = KTS_LIVE_RESET,
                                 .mode_at = 8});
    hls_live_update u;
    first_load(&c, &u);
    int reloads = 0;
    while (!u.reset && reloads < 50) {
        hls_playlist *pl = reload(&c, &u);
        if (u.reset) {
            c.reset_seen = true;
            c.next_expected = hls_media_segment(&pl->media, u.first_new).sequence;
        }
        take(&c, pl, &u);
        hls_playlist_free(pl);
        reloads++;
    }
    assert_true(u.reset);
    /* After the restart, the new epoch's segments come in order from the new anchor. */
    for (int i = 0; i < 6; i++) {
        hls_playlist *pl = reload(&c, &u);
        assert_false(u.reset);
        take(&c, pl, &u);
        hls_playlist_free(pl);
    }
    client_stop(&c);
}

static void test_discontinuity_is_marked(void **state)
{
    (void)state;
    client c;
    client_start(&c, &(kts_live){.window = 4,
                                 .target_duration = 2,
                                 .segment_size = 188,
                                 .seed = 5,
                                 .mode = KTS_LIVE_DISCONTINUITY,
                                 .mode_at = 6});
    hls_live_update u;
    first_load(&c, &u);
    bool seen = false;
    for (int i = 0; i < 10; i++) {
        hls_playlist *pl = reload(&c, &u);
        for (size_t k = u.first_new; k < u.first_new + u.new_count; k++) {
            const hls_segment seg_seg = hls_media_segment(&pl->media, k), *seg = &seg_seg;
            assert_int_equal(seg->discontinuity, seg->sequence == 6);
            seen |= seg->discontinuity;
        }
        take(&c, pl, &u);
        hls_playlist_free(pl);
    }
    assert_true(seen);
    client_stop(&c);
}

/* ---- a live stream played through kth_stream, in virtual time ---- */

#define T0_NS 1000000000LL

typedef struct player {
    client c;
    platform_virtual_clock vc;
    kth_downloader *d;
    kth_cache *cache;
    kth_bus *bus;
    kth_subscription *sub;
    char *dir;
    kth_stream *stream;
    pthread_t reader;
    bool reader_joined;
    uint64_t first_segment; /* where the stream starts */
    unsigned char *got;
    size_t got_len, got_cap;
    /* For each read that returned bytes: where they went in got, and their stream offset
     * (reads.n of them, under lock): a seek's bytes are found by the anchor's offset. */
    struct {
        size_t n, cap;
        size_t *got_at;
        uint64_t *offset;
    } reads;
    int64_t result;          /* the read that ended the reader: 0 EOF, or a status */
    char error[512];         /* its message */
    unsigned fences;         /* KTH_ERR_VARIANT_CHANGE met (and cleared) */
    _Atomic size_t progress; /* got_len, for the driving thread */
    kth_bus *dbus;           /* the downloader's: its request events */
    kth_subscription *dsub;
    pthread_mutex_t lock; /* with moved: the reader signals each read, the bus each request */
    pthread_cond_t moved;
    bool paused; /* under lock: the reader waits before its next read */
    _Atomic int done;
} player;

/* The server's request log, for a failure's message. */
static void dump_log(player *p)
{
    size_t n = kts_log_count(p->c.srv);
    for (size_t i = 0; i < n; i++) {
        kts_log_entry e;
        if (kts_log_get(p->c.srv, i, &e) == KTH_OK)
            fprintf(stderr, "  %s %s -> %d (%s)\n", e.method, e.path, e.status, e.range);
    }
}

/* Wakes settle() when one of the downloader's requests ends (the bus's thread). */
static void on_request(const kth_event *ev, void *user)
{
    player *p = user;
    if (ev->kind != KTH_EVENT_REQUEST_COMPLETED && ev->kind != KTH_EVENT_REQUEST_FAILED &&
        ev->kind != KTH_EVENT_REQUEST_CANCELLED)
        return;
    pthread_mutex_lock(&p->lock);
    pthread_cond_broadcast(&p->moved);
    pthread_mutex_unlock(&p->lock);
}

/* Records a read's bytes (lock held). */
static void note_read(player *p, const unsigned char *buf, size_t n, uint64_t start)
{
    if (p->got_len + n > p->got_cap) {
        p->got_cap = (p->got_len + n) * 2;
        p->got = realloc(p->got, p->got_cap);
    }
    if (p->reads.n == p->reads.cap) {
        p->reads.cap = p->reads.cap ? p->reads.cap * 2 : 256;
        p->reads.got_at = realloc(p->reads.got_at, p->reads.cap * sizeof *p->reads.got_at);
        p->reads.offset = realloc(p->reads.offset, p->reads.cap * sizeof *p->reads.offset);
    }
    p->reads.got_at[p->reads.n] = p->got_len;
    p->reads.offset[p->reads.n++] = start;
    memcpy(p->got + p->got_len, buf, n);
    p->got_len += n;
}

static void *read_all(void *arg)
{
    player *p = arg;
    unsigned char buf[4096];
    for (int i = 0; i < 100000; i++) {
        pthread_mutex_lock(&p->lock);
        while (p->paused)
            pthread_cond_wait(&p->moved, &p->lock);
        pthread_mutex_unlock(&p->lock);
        /* kth_stream_try_read: its outcome gives the bytes' position from the same call, so a
         * seek from the test cannot come between the read and where it read. */
        kth_read_outcome o;
        kth_stream_try_read(p->stream, buf, sizeof buf, 20000, &o);
        if (o.kind == KTH_READ_PENDING && o.reason == KTH_PENDING_VARIANT_CHANGE) {
            p->fences++;
            kth_stream_clear_variant_fence(p->stream);
            continue;
        }
        if (o.kind == KTH_READ_PENDING &&
            (o.reason == KTH_PENDING_SEEK || o.reason == KTH_PENDING_RETRY))
            continue; /* a time seek from the test: read on from where it moved */
        if (o.kind != KTH_READ_BYTES) {
            p->result = o.kind == KTH_READ_EOF     ? 0
                        : o.kind == KTH_READ_ERROR ? o.status
                        : o.cause != KTH_OK        ? o.cause
                                                   : KTH_ERR_TIMEOUT;
            if (p->result < 0)
                kth_stream_last_error(p->stream, p->error, sizeof p->error);
            break;
        }
        /* Under the lock: a test may look at what was got while the reader goes on. */
        pthread_mutex_lock(&p->lock);
        note_read(p, buf, o.n, o.position - o.n);
        atomic_store(&p->progress, p->got_len);
        pthread_cond_broadcast(&p->moved);
        pthread_mutex_unlock(&p->lock);
    }
    pthread_mutex_lock(&p->lock);
    atomic_store(&p->done, 1);
    pthread_cond_broadcast(&p->moved);
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

/* Opens the stream (buffer_target_s 0: the default) and starts its reader. */
static void player_open(player *p, const kts_live *cfg, uint64_t first_segment,
                        double buffer_target_s)
{
    memset(p, 0, sizeof *p);
    p->first_segment = first_segment;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->moved, NULL);
    client_start(&p->c, cfg);
    platform_virtual_clock_init(&p->vc, T0_NS);
    net_downloader_hooks hooks = {.clock = &p->vc.base};
    kth_downloader_options o;
    kth_downloader_options_init(&o);
    assert_int_equal(kth_bus_new(&p->dbus), KTH_OK);
    assert_int_equal(kth_bus_subscribe_callback(p->dbus, 4096, on_request, p, &p->dsub), KTH_OK);
    o.bus = p->dbus;
    assert_int_equal(net_downloader_new(&o, &hooks, &p->d, NULL, 0), KTH_OK);
    p->dir = test_make_dir();
    kth_cache_options co;
    kth_cache_options_init(&co);
    co.dir = p->dir;
    co.no_sync = true;
    char err[512] = "";
    assert_int_equal(kth_cache_open(&co, &p->cache, err, sizeof err), KTH_OK);
    assert_int_equal(kth_bus_new(&p->bus), KTH_OK);
    assert_int_equal(kth_bus_subscribe(p->bus, 256, &p->sub), KTH_OK);
    kth_stream_options so;
    kth_stream_options_init(&so);
    so.read_timeout_ms = 20000; /* hang guard only */
    so.downloader = p->d;
    so.cache = p->cache;
    so.bus = p->bus;
    kth_hls_options hls;
    kth_hls_options_init(&hls);
    hls.buffer_target_s = buffer_target_s;
    so.hls = &hls;
    kth_status st = kth_stream_open(p->c.url, &so, &p->stream, err, sizeof err);
    if (st != KTH_OK)
        fail_msg("open: %s (%s)", kth_strerror(st), err);
    assert_int_equal(pthread_create(&p->reader, NULL, read_all, p), 0);
    /* The clock starts once the reader is reading (its first segment asked for). */
    char first[64];
    snprintf(first, sizeof first, "/tv/seg%llu.ts", (unsigned long long)p->first_segment);
    assert_int_equal(kts_wait_requests(p->c.srv, first, 1, 10000), KTH_OK);
}

/* Segment requests the server answered with 404 (segments that had left the window): they
 * give the reader nothing. */
static size_t segments_refused(player *p)
{
    size_t n = 0, count = kts_log_count(p->c.srv);
    for (size_t i = 0; i < count; i++) {
        kts_log_entry e;
        if (kts_log_get(p->c.srv, i, &e) == KTH_OK && e.status == 404 &&
            strncmp(e.path, "/tv/seg", 7) == 0)
            n++;
    }
    return n;
}

/* Lets what the last step started finish: the downloader has nothing queued or running (its
 * own figures, current after two turns of its loop: the request events reach the bus's thread
 * later, so counting them raced a loaded machine), its completions were taken in, and the
 * reader has read every segment fetched, as a real player at the live edge keeps pace. Waits
 * on conditions, never sleeps; each wait bounded. A request waiting for a retry time waits for
 * the clock, which only the next step moves. */
static void settle(player *p)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 20;
    for (int i = 0, quiet = 0; i < 4000 && quiet < 2; i++) {
        assert_int_equal(net_downloader_barrier(p->d, 5000), KTH_OK);
        assert_int_equal(net_downloader_barrier(p->d, 5000), KTH_OK);
        kth_downloader_stats st;
        kth_downloader_get_stats(p->d, &st);
        /* Idle twice in a row: a completion's wake found nothing more to start either. */
        quiet = st.queued == 0 && st.running == 0 ? quiet + 1 : 0;
        if (quiet > 0)
            continue;
        /* A transfer runs in real time: wait for a request to end (bounded). */
        struct timespec soon;
        clock_gettime(CLOCK_REALTIME, &soon);
        soon.tv_nsec += 10 * NS_PER_MS;
        if (soon.tv_nsec >= 1000000000L) {
            soon.tv_sec++;
            soon.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&p->lock);
        pthread_cond_timedwait(&p->moved, &p->lock, &soon);
        pthread_mutex_unlock(&p->lock);
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        if (now.tv_sec > until.tv_sec)
            fail_msg("the downloader did not settle in 20 s");
    }
    size_t fetched =
        (size_t)(kts_completed_count(p->c.srv, NULL) -
                 kts_completed_count(p->c.srv, "/tv/live.m3u8") - segments_refused(p)) *
        (size_t)p->c.cfg.segment_size;
    pthread_mutex_lock(&p->lock);
    while (!p->paused && !atomic_load(&p->done) && atomic_load(&p->progress) < fetched)
        if (pthread_cond_timedwait(&p->moved, &p->lock, &until) != 0)
            break;
    pthread_mutex_unlock(&p->lock);
}

/* Moves the server and then the downloader's clock on by `step_ms`, step after step, each
 * settled, until the reader is done or `max_steps` passed. */
static void play(player *p, int64_t step_ms, int max_steps)
{
    for (int i = 0; i < max_steps && !atomic_load(&p->done); i++) {
        int64_t now_ms = (platform_clock_now(&p->vc.base) - T0_NS) / NS_PER_MS + step_ms;
        assert_int_equal(kts_live_advance(p->c.ls, now_ms), KTH_OK);
        platform_virtual_clock_advance(&p->vc, step_ms * NS_PER_MS);
        net_downloader_wake(p->d);
        settle(p);
    }
}

/* Ends the reader with a cancel and checks that the cancel is what ended it (else prints the
 * server's log and fails with the read's status and message). */
static void stop_reading(player *p)
{
    kth_stream_cancel(p->stream);
    pthread_join(p->reader, NULL);
    p->reader_joined = true;
    if (p->result != KTH_ERR_CANCELLED) {
        dump_log(p);
        fail_msg("the read ended with %lld: %s", (long long)p->result, p->error);
    }
}

static void player_close(player *p)
{
    if (!p->reader_joined)
        pthread_join(p->reader, NULL);
    kth_stream_close(p->stream);
    kth_subscription_free(p->sub);
    kth_bus_unref(p->bus);
    kth_cache_unref(p->cache);
    kth_downloader_unref(p->d);
    kth_subscription_free(p->dsub);
    kth_bus_unref(p->dbus);
    client_stop(&p->c);
    test_remove_tree(p->dir);
    free(p->dir);
    free(p->got);
    free(p->reads.got_at);
    free(p->reads.offset);
    pthread_cond_destroy(&p->moved);
    pthread_mutex_destroy(&p->lock);
}

/* Counts the events of `kind` published so far. */
static unsigned count_events(player *p, kth_event_kind kind)
{
    unsigned n = 0;
    kth_event ev;
    while (kth_events_next(p->sub, &ev, 0) == KTH_OK)
        n += ev.kind == kind;
    return n;
}

/* Checks that the reader got segments [first, end) of the stream, each byte-exact. */
static void expect_segments(player *p, uint64_t first, uint64_t end)
{
    uint64_t size = p->c.cfg.segment_size;
    assert_int_equal(p->got_len, (end - first) * size);
    for (uint64_t k = first; k < end; k++) {
        uint64_t seed = kts_live_segment_seed(&p->c.cfg, k, false);
        assert_int_equal(kts_ts_synth_check(seed, 0, p->got + (k - first) * size, size), size);
    }
}

/* A live stream plays from three target durations before the live edge, follows the window
 * as it slides (reloads on the downloader's clock), and ends exactly after the last segment
 * once the playlist says EXT-X-ENDLIST: every byte once, in order, none missing. */
static void test_live_stream_plays_to_its_end(void **state)
{
    (void)state;
    player p;
    player_open(&p,
                &(kts_live){.window = 6,
                            .target_duration = 4,
                            .segment_size = 3760,
                            .seed = 7,
                            .mode = KTS_LIVE_ENDLIST,
                            .mode_at = 14},
                3, 0);
    uint64_t length;
    assert_false(kth_stream_length(p.stream, &length));
    kth_hls_playlist_info pi;
    assert_int_equal(kth_stream_playlist_info(p.stream, &pi), KTH_OK);
    assert_string_equal(pi.kind, "live");
    assert_int_equal(pi.target_duration, 4);
    assert_true(pi.window_s == 24.0);
    assert_int_equal(pi.window_segments, 6);
    assert_false(pi.ended);
    play(&p, 500, 400);
    assert_true(atomic_load(&p.done));
    if (p.result != 0) /* a proven EOF */
        fail_msg("the read ended with %lld: %s", (long long)p.result, p.error);
    expect_segments(&p, 3, 14);
    assert_int_equal(p.fences, 0);
    assert_true(kth_stream_length(p.stream, &length));
    assert_int_equal(length, 11 * 3760);
    assert_int_equal(kth_stream_playlist_info(p.stream, &pi), KTH_OK);
    assert_true(pi.ended);
    assert_true(count_events(&p, KTH_EVENT_HLS_LIVE_RELOADED) >= 1);
    /* Reloads came at the pace of the playlist: the server saw no more than one a target
     * duration while it changed (8 changes), and a few more (half a target each) around the
     * end; a reload that came late may have taken two changes at once. */
    unsigned reloads = kts_request_count(p.c.srv, "/tv/live.m3u8", NULL);
    if (reloads < 1 + 4 || reloads > 1 + 8 + 3)
        fail_msg("%u playlist requests", reloads);
    player_close(&p);
}

/* The segments the reader has played and the window has left are dropped from the cache: a
 * live stream's cache holds the window and what the reader has not played, however long it
 * runs. Checked after every step of a 40-segment run, and the bytes stay exact. */
static void test_live_cache_keeps_only_the_window_and_what_is_unplayed(void **state)
{
    (void)state;
    player p;
    const uint64_t size = 3760;
    player_open(&p,
                &(kts_live){.window = 4,
                            .target_duration = 2,
                            .segment_size = size,
                            .seed = 11,
                            .mode = KTS_LIVE_ENDLIST,
                            .mode_at = 40},
                1, 0);
    uint64_t most = 0;
    for (int i = 0; i < 400 && !atomic_load(&p.done); i++) {
        play(&p, 500, 1);
        kth_cache_stats st;
        assert_int_equal(kth_cache_get_stats(p.cache, &st), KTH_OK);
        most = st.resources > most ? st.resources : most;
    }
    assert_true(atomic_load(&p.done));
    if (p.result != 0)
        fail_msg("the read ended with %lld: %s", (long long)p.result, p.error);
    expect_segments(&p, 1, 40);
    /* The window (4), the segment being read, one fetched ahead of it and one the release has
     * not reached yet (it runs at reloads). */
    if (most > 4 + 3)
        fail_msg("the cache held up to %llu segments of a 4-segment window",
                 (unsigned long long)most);
    player_close(&p);
}

/* The same after a server reset: the media sequence starts again from 0, while the stream's
 * model numbers on, and the segments before the reset all leave at once. */
static void test_live_cache_stays_flat_across_a_server_reset(void **state)
{
    (void)state;
    player p;
    const uint64_t size = 1880;
    kts_live cfg = {.window = 4, .target_duration = 2, .segment_size = size, .seed = 19};
    cfg.mode = KTS_LIVE_RESET;
    cfg.mode_at = 8;
    player_open(&p, &cfg, 1, 0);
    size_t want = (7 + 24) * size; /* segments 1..7, then r0.. */
    uint64_t most = 0;
    for (int i = 0; i < 400 && atomic_load(&p.progress) < want; i++) {
        play(&p, 500, 1);
        kth_cache_stats st;
        assert_int_equal(kth_cache_get_stats(p.cache, &st), KTH_OK);
        most = st.resources > most ? st.resources : most;
    }
    stop_reading(&p);
    assert_true(p.got_len >= want);
    assert_int_equal(p.fences, 1);
    if (most > 4 + 3)
        fail_msg("the cache held up to %llu segments of a 4-segment window",
                 (unsigned long long)most);
    player_close(&p);
}

/* A discontinuity in the live window reaches the reader as a fence at that segment, as a
 * variant switch does, and the bytes on both sides are exact. A window of 12 segments of 2 s
 * (wide, so that a reader scheduled late never falls behind it) starts the stream at segment
 * 9; the discontinuity is before segment `at`. The stream never ends: the reader reads through
 * segment at + 2 and stops. */
static void discontinuity_run(uint64_t at)
{
    player p;
    kts_live cfg = {.window = 12, .target_duration = 2, .segment_size = 1880, .seed = 9};
    cfg.mode = KTS_LIVE_DISCONTINUITY;
    cfg.mode_at = at;
    player_open(&p, &cfg, 9, 0);
    size_t want = (size_t)(at + 3 - 9) * 1880;
    for (int i = 0; i < 400 && atomic_load(&p.progress) < want; i++)
        play(&p, 500, 1);
    stop_reading(&p);
    assert_true(p.got_len >= want);
    assert_int_equal(p.fences, 1);
    for (uint64_t k = 9; k < at + 3; k++) {
        uint64_t seed = kts_live_segment_seed(&p.c.cfg, k, false);
        assert_int_equal(kts_ts_synth_check(seed, 0, p.got + (k - 9) * 1880, 1880), 1880);
    }
    /* A discontinuity a reload brings is announced; one in the first playlist is not news. */
    assert_int_equal(count_events(&p, KTH_EVENT_HLS_LIVE_DISCONTINUITY), at >= 12 ? 1 : 0);
    player_close(&p);
}

/* The discontinuity comes with a reload. */
static void test_live_discontinuity_is_a_fence(void **state)
{
    (void)state;
    discontinuity_run(14);
}

/* The discontinuity is in the first playlist, after the start segment. */
static void test_live_discontinuity_in_first_playlist_is_a_fence(void **state)
{
    (void)state;
    discontinuity_run(11);
}

/* A playlist that stops changing for more than 3.5 target durations fails the stream with a
 * clear sentence, once the reader has read every segment it listed. */
static void test_live_stuck_playlist_fails_the_stream(void **state)
{
    (void)state;
    player p;
    kts_live cfg = {.window = 4, .target_duration = 2, .segment_size = 1880, .seed = 13};
    cfg.mode = KTS_LIVE_STUCK;
    cfg.mode_at = 6;
    player_open(&p, &cfg, 1, 0);
    play(&p, 500, 400);
    assert_true(atomic_load(&p.done));
    assert_int_equal(p.result, KTH_ERR_NETWORK);
    assert_non_null(strstr(p.error, "the stream is stuck"));
    expect_segments(&p, 1, 6);
    player_close(&p);
}

/* The server restarts its stream (the media sequence goes back to 0): the reader meets a fence
 * and goes on with the new stream's segments, each byte-exact, and the event says so. */
static void test_live_server_reset_reanchors_behind_a_fence(void **state)
{
    (void)state;
    player p;
    kts_live cfg = {.window = 4, .target_duration = 2, .segment_size = 1880, .seed = 17};
    cfg.window = 8;
    cfg.mode = KTS_LIVE_RESET;
    cfg.mode_at = 12;
    player_open(&p, &cfg, 5, 0);
    size_t want = (7 + 3) * 1880; /* segments 5..11, then r0..r2 */
    for (int i = 0; i < 400 && atomic_load(&p.progress) < want; i++)
        play(&p, 500, 1);
    stop_reading(&p);
    assert_true(p.got_len >= want);
    assert_int_equal(p.fences, 1);
    for (uint64_t k = 0; k < 10; k++) {
        bool after = k >= 7;
        uint64_t seed = kts_live_segment_seed(&p.c.cfg, after ? k - 7 : k + 5, after);
        assert_int_equal(kts_ts_synth_check(seed, 0, p.got + k * 1880, 1880), 1880);
    }
    assert_int_equal(count_events(&p, KTH_EVENT_HLS_LIVE_RESET), 1);
    player_close(&p);
}

static void set_paused(player *p, bool paused)
{
    pthread_mutex_lock(&p->lock);
    p->paused = paused;
    pthread_cond_broadcast(&p->moved);
    pthread_mutex_unlock(&p->lock);
}

/* The media sequence of each segment the reader got, in order (*count of them), found by
 * their patterns: each is the one after the last, or a later one (a skip). */
static size_t sequences_got(player *p, uint64_t first, uint64_t *seq, size_t max)
{
    uint64_t size = p->c.cfg.segment_size;
    size_t count = p->got_len / size;
    assert_true(count <= max);
    uint64_t next = first;
    for (size_t k = 0; k < count; k++) {
        uint64_t s = next;
        while (s < next + 100 && kts_ts_synth_check(kts_live_segment_seed(&p->c.cfg, s, false), 0,
                                                    p->got + k * size, size) != size)
            s++;
        if (s == next + 100)
            fail_msg("segment %zu the reader got is no segment from %llu on", k,
                     (unsigned long long)next);
        seq[k] = s;
        next = s + 1;
    }
    return count;
}

/* A reader that pauses for longer than the window falls behind it: the segments it had not
 * got left the playlist, and the server answers 404 for them. The stream goes on at the first
 * segment still listed, behind a fence, with an event; every byte on both sides is exact. */
static void test_live_reader_behind_the_window_goes_on_at_its_start(void **state)
{
    (void)state;
    player p;
    kts_live cfg = {.window = 4, .target_duration = 2, .segment_size = 1880, .seed = 23};
    player_open(&p, &cfg, 1, 4.0);
    for (int i = 0; i < 100 && atomic_load(&p.progress) < 3 * 1880; i++)
        play(&p, 500, 1);
    set_paused(&p, true);
    play(&p, 500, 40); /* 20 s: ten segments more, the window of four far past the reader */
    set_paused(&p, false);
    size_t before = atomic_load(&p.progress);
    for (int i = 0; i < 200 && atomic_load(&p.progress) < before + 8 * 1880; i++)
        play(&p, 500, 1);
    stop_reading(&p);
    assert_int_equal(p.got_len % 1880, 0);
    uint64_t seq[256];
    size_t n = sequences_got(&p, 1, seq, 256);
    size_t skips = 0;
    for (size_t k = 1; k < n; k++)
        skips += seq[k] != seq[k - 1] + 1;
    /* Usually one skip. A second is right when the window moved on again between the skip and
     * the fetch of the segment it went to (the skip knows the window of the last reload): seen
     * about once in 16 runs with four test processes at once. Each skip is one jump in the
     * sequences, one fence and one event. */
    assert_true(skips >= 1 && skips <= 2);
    assert_int_equal(p.fences, skips);
    assert_int_equal(count_events(&p, KTH_EVENT_HLS_LIVE_SKIPPED), skips);
    player_close(&p);
}

/* Checks that the reader got, from the last read that started at stream offset `offset` (a
 * seek's anchor) on, `count` whole segments from media sequence `first` on, in order. */
static void expect_from(player *p, uint64_t offset, uint64_t first, size_t count)
{
    uint64_t size = p->c.cfg.segment_size;
    size_t bad = count, mark = SIZE_MAX;
    pthread_mutex_lock(&p->lock); /* the reader is still reading */
    for (size_t r = p->reads.n; r-- > 0 && mark == SIZE_MAX;)
        if (p->reads.offset[r] == offset)
            mark = p->reads.got_at[r];
    bool enough = mark != SIZE_MAX && p->got_len >= mark + count * size;
    for (size_t k = 0; enough && bad == count && k < count; k++) {
        uint64_t seed = kts_live_segment_seed(&p->c.cfg, first + k, false);
        if (kts_ts_synth_check(seed, 0, p->got + mark + k * size, size) != size)
            bad = k;
    }
    pthread_mutex_unlock(&p->lock);
    assert_true(enough);
    if (bad < count)
        fail_msg("segment %zu after the seek is not segment %llu", bad,
                 (unsigned long long)(first + bad));
}

/* Bytes the reader got from its last read at stream offset `offset` on (0: none yet). */
static size_t got_since(player *p, uint64_t offset)
{
    size_t since = 0;
    pthread_mutex_lock(&p->lock);
    for (size_t r = p->reads.n; r-- > 0;)
        if (p->reads.offset[r] == offset) {
            since = p->got_len - p->reads.got_at[r];
            break;
        }
    pthread_mutex_unlock(&p->lock);
    return since;
}

/* Reads on (the clock moving) until the reader has `bytes` from stream offset `offset` on. */
static void play_from(player *p, uint64_t offset, size_t bytes)
{
    for (int i = 0; i < 200 && got_since(p, offset) < bytes; i++)
        play(p, 500, 1);
    assert_true(got_since(p, offset) >= bytes);
}

/* Reads on (the clock moving) until the reader has `bytes` more than `from`. */
static void play_until(player *p, size_t from, size_t bytes)
{
    for (int i = 0; i < 200 && atomic_load(&p->progress) < from + bytes; i++)
        play(p, 500, 1);
    assert_true(atomic_load(&p->progress) >= from + bytes);
}

/* Seeks the live stream of 2 s segments to `t`, checks it lands on the segment starting at
 * `want_start`, and that the reader then gets `count` segments from there, byte-exact. */
static void seek_and_expect(player *p, double t, double want_start, size_t count)
{
    kth_seek_anchor a;
    assert_int_equal(kth_stream_seek_time(p->stream, t, &a), KTH_OK);
    if (a.segment_start != want_start)
        fail_msg("a seek to %.1f s landed at %.1f s, not %.1f s", t, a.segment_start, want_start);
    play_from(p, a.offset, count * 1880);
    expect_from(p, a.offset, (uint64_t)(want_start / 2.0), count); /* n starts at 2n s */
}

/* DVR: a time seek on a live stream moves within the window the server lists (a time before
 * it plays from its first segment) and to the live edge (a time past it); nothing else moves,
 * no fence, and the bytes are the segments of those times. */
static void test_live_seek_by_time_moves_within_the_window_and_to_the_edge(void **state)
{
    (void)state;
    player p;
    kts_live cfg = {.window = 6, .target_duration = 2, .segment_size = 1880, .seed = 31};
    player_open(&p, &cfg, 3, 4.0);
    play_until(&p, 0, 5 * 1880); /* segments 3 to 7: the window lists 2 to 7 by then */
    kth_hls_playlist_info pi;
    assert_int_equal(kth_stream_playlist_info(p.stream, &pi), KTH_OK);
    printf("window from %.1f s, live edge %.1f s\n", pi.window_start_s, pi.live_edge_s);
    assert_true(pi.window_start_s > 0 && pi.live_edge_s > pi.window_start_s);
    /* Into the window: the segment holding the time, from its start. */
    seek_and_expect(&p, pi.window_start_s + 2.5, pi.window_start_s + 2.0, 3);
    /* Before the window (it has moved on since): its first segment. */
    play(&p, 500, 8);
    assert_int_equal(kth_stream_playlist_info(p.stream, &pi), KTH_OK);
    seek_and_expect(&p, 0.0, pi.window_start_s, 2);
    /* Past the edge: the live edge. */
    assert_int_equal(kth_stream_playlist_info(p.stream, &pi), KTH_OK);
    seek_and_expect(&p, 1e9, pi.live_edge_s, 2);
    stop_reading(&p);
    assert_int_equal(p.fences, 0);
    player_close(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_window_slides_every_segment_once),
        cmocka_unit_test(test_live_reader_behind_the_window_goes_on_at_its_start),
        cmocka_unit_test(test_live_seek_by_time_moves_within_the_window_and_to_the_edge),
        cmocka_unit_test(test_endlist_ends_after_the_last_segment),
        cmocka_unit_test(test_stuck_playlist_is_reported),
        cmocka_unit_test(test_server_reset_reanchors),
        cmocka_unit_test(test_discontinuity_is_marked),
        cmocka_unit_test(test_live_stream_plays_to_its_end),
        cmocka_unit_test(test_live_cache_keeps_only_the_window_and_what_is_unplayed),
        cmocka_unit_test(test_live_cache_stays_flat_across_a_server_reset),
        cmocka_unit_test(test_live_discontinuity_is_a_fence),
        cmocka_unit_test(test_live_discontinuity_in_first_playlist_is_a_fence),
        cmocka_unit_test(test_live_stuck_playlist_fails_the_stream),
        cmocka_unit_test(test_live_server_reset_reanchors_behind_a_fence),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
