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

#include "hls/live.h"
#include "hls/playlist.h"
#include "kts_live.h"
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
        const hls_segment *seg = &pl->media.segments[i];
        assert_int_equal(seg->sequence, c->next_expected);
        ktc_response r = {0};
        ktc_fetch(seg->uri, NULL, &r);
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
    c->next_expected = pl->media.segments[start].sequence;
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
            c.next_expected = pl->media.segments[u.first_new].sequence;
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
            const hls_segment *seg = &pl->media.segments[k];
            assert_int_equal(seg->discontinuity, seg->sequence == 6);
            seen |= seg->discontinuity;
        }
        take(&c, pl, &u);
        hls_playlist_free(pl);
    }
    assert_true(seen);
    client_stop(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_window_slides_every_segment_once),
        cmocka_unit_test(test_endlist_ends_after_the_last_segment),
        cmocka_unit_test(test_stuck_playlist_is_reported),
        cmocka_unit_test(test_server_reset_reanchors),
        cmocka_unit_test(test_discontinuity_is_marked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
