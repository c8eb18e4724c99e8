/*
 * test_hls_abr.c — variant switching on the loopback server: under a throughput cap that
 * changes during playback, ABR steps down and later back up, never switches more often than
 * allowed without an urgent reason, and every byte across every switch is exactly the
 * concatenation of the segments of the variant it belongs to; a manual choice made while the
 * download is idle takes effect at the next segment boundary, behind a variant fence.
 */
#include "test_hls_support.h"

#include <time.h>

#define MAX_PERIODS 32

typedef struct played {
    bytes data[MAX_PERIODS];
    int variant[MAX_PERIODS];
    uint64_t fence_at[MAX_PERIODS]; /* stream offset where each period begins */
    size_t count;
} played;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_s(double s)
{
    if (s <= 0)
        return;
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
}

/* Checks that the bytes of every period are whole consecutive segments of its variant, each
 * period continuing at the segment where the one before stopped; the last may end inside a
 * segment. Returns the segment count of each period in counts. */
static void verify_periods(const played *p, const char *root, size_t *counts)
{
    static const char *names[] = {"v64", "v128", "v256"};
    size_t next_segment = 0;
    for (size_t i = 0; i < p->count; i++) {
        char dir[256];
        snprintf(dir, sizeof dir, "%s/%s", root, names[p->variant[i]]);
        variant_files files = list_variant(dir);
        size_t at = 0, k = next_segment;
        const bytes *b = &p->data[i];
        counts[i] = 0;
        while (at < b->len) {
            if (k >= files.count)
                fail_msg("period %zu: %zu bytes past the last segment", i, b->len - at);
            char path[1024];
            snprintf(path, sizeof path, "%s/%s/%s", FIXTURES, dir, files.names[k]);
            bytes seg = read_file(path);
            size_t n = seg.len < b->len - at ? seg.len : b->len - at;
            if (memcmp(seg.data, b->data + at, n) != 0)
                fail_msg("period %zu (variant %d): segment %zu differs", i, p->variant[i], k);
            if (n < seg.len && i + 1 < p->count)
                fail_msg("period %zu ends inside segment %zu", i, k);
            at += n;
            free(seg.data);
            k++;
            counts[i]++;
        }
        next_segment = k;
    }
}

/* Reads the stream paced at real time (media seconds from each variant's bandwidth), for at
 * most `media_limit` seconds; calls phase(user, media_s) as playback advances. */
static void play_paced(kth_stream *s, played *p, double media_limit,
                       void (*phase)(void *user, double media_s), void *user)
{
    uint8_t buf[4096];
    double media = 0, start = now_s();
    p->count = 1;
    p->variant[0] = -1;
    for (int guard = 0; guard < 200000 && media < media_limit; guard++) {
        int64_t n = kth_stream_read(s, buf, sizeof buf);
        if (n == 0)
            break;
        if (n == KTH_ERR_VARIANT_CHANGE) {
            assert_true(p->count < MAX_PERIODS);
            p->fence_at[p->count] = kth_stream_position(s);
            p->variant[p->count++] = -1;
            assert_int_equal(kth_stream_clear_variant_fence(s), KTH_OK);
            continue;
        }
        if (n < 0) {
            char detail[1024];
            kth_stream_last_error(s, detail, sizeof detail);
            fail_msg("read: %s (%s)", kth_strerror((int)n), detail);
        }
        int v = kth_stream_current_variant(s);
        if (p->variant[p->count - 1] < 0)
            p->variant[p->count - 1] = v;
        assert_int_equal(p->variant[p->count - 1], v);
        bytes_append(&p->data[p->count - 1], buf, (size_t)n);
        kth_hls_variant_info info;
        kth_stream_variant_info(s, (size_t)v, &info);
        media += (double)n * 8.0 / (double)info.bandwidth * 0.9;
        if (phase)
            phase(user, media);
        sleep_s(media - (now_s() - start) - 0.25); /* keep a quarter second in hand */
    }
}

struct rate_phases {
    kts_server *srv;
    int phase;
};

static void change_rate(void *user, double media_s)
{
    struct rate_phases *r = user;
    if (r->phase == 0 && media_s >= 7.0) {
        kts_clear_faults(r->srv, "*");
        kts_add_fault(r->srv, "*", &(kts_fault){.kind = KTS_FAULT_RATE, .bytes = 400 * 1000});
        r->phase = 1;
    }
}

static void test_abr_steps_down_under_a_cap_and_back_up_after(void **state)
{
    struct hls_env *e = *state;
    kth_subscription *sub;
    assert_int_equal(kth_bus_subscribe(e->bus, 1024, &sub), KTH_OK);
    /* 12 kB/s: only the 64 kbit/s variant keeps up. */
    kts_add_fault(e->srv, "*", &(kts_fault){.kind = KTS_FAULT_RATE, .bytes = 12 * 1000});
    kth_hls_options h;
    kth_hls_options_init(&h);
    h.initial_variant = 1;
    h.max_fetches = 1; /* the cap is per response: one at a time makes it a link */
    h.buffer_target_s = 6;
    kth_stream *s = hls_open(e, "/abr/master.m3u8", NULL, &h);
    played p;
    memset(&p, 0, sizeof p);
    struct rate_phases r = {e->srv, 0};
    play_paced(s, &p, 16.0, change_rate, &r);
    kth_stream_close(s);

    size_t counts[MAX_PERIODS];
    verify_periods(&p, "abr", counts);
    bool rescue[MAX_PERIODS];
    size_t changes = 0;
    kth_event ev;
    bool down = false, up_after_down = false;
    while (kth_events_next(sub, &ev, 0) == KTH_OK) {
        if (ev.kind == KTH_EVENT_ABR_DECISION)
            printf("decision %d -> %d (%s) estimate %.0f bit/s, buffer %.2f s\n",
                   ev.payload.abr.from_variant, ev.payload.abr.to_variant, ev.text,
                   ev.payload.abr.estimate_bps, ev.payload.abr.buffer_seconds);
        if (ev.kind != KTH_EVENT_VARIANT_CHANGED)
            continue;
        printf("switch %d -> %d (%s) estimate %.0f bit/s, buffer %.2f s\n",
               ev.payload.abr.from_variant, ev.payload.abr.to_variant, ev.text,
               ev.payload.abr.estimate_bps, ev.payload.abr.buffer_seconds);
        if (changes < MAX_PERIODS) {
            /* A rescue: urgent, manual, or a step down with under two segments buffered. */
            rescue[changes] = strcmp(ev.text, "urgent-down") == 0 ||
                              strcmp(ev.text, "manual") == 0 ||
                              (ev.payload.abr.to_variant < ev.payload.abr.from_variant &&
                               ev.payload.abr.buffer_seconds < 2.0);
            changes++;
        }
        if (ev.payload.abr.to_variant < ev.payload.abr.from_variant) {
            if (!down) /* the first step down comes while audio is still buffered */
                assert_true(ev.payload.abr.buffer_seconds > 0);
            down = true;
        } else if (down)
            up_after_down = true;
    }
    for (size_t i = 0; i < p.count; i++)
        printf("period %zu: variant %d, %zu segments\n", i, p.variant[i], counts[i]);
    assert_true(down);
    assert_true(up_after_down);
    /* Every switch the reader met is one the peer announced, in order. */
    assert_true(p.count - 1 <= changes);
    for (size_t i = 1; i + 1 < p.count; i++) {
        if (!rescue[i] && counts[i] < h.min_segments_between_switches)
            fail_msg("period %zu lasted %zu segments", i, counts[i]);
    }
    for (size_t i = 0; i < p.count; i++)
        free(p.data[i].data);
    kth_subscription_free(sub);
}

static void test_manual_switch_wakes_an_idle_download(void **state)
{
    struct hls_env *e = *state;
    kth_hls_options h;
    kth_hls_options_init(&h);
    h.initial_variant = 0;
    h.buffer_target_s = 8;
    kth_stream *s = hls_open(e, "/abr/master.m3u8", NULL, &h);
    assert_int_equal(kth_stream_abr_set_manual(s, 0), KTH_OK);
    played p;
    memset(&p, 0, sizeof p);
    p.count = 1;
    p.variant[0] = 0;
    uint8_t buf[4096];
    int64_t n = kth_stream_read(s, buf, sizeof buf);
    assert_true(n > 0);
    bytes_append(&p.data[0], buf, (size_t)n);
    /* The read-ahead fills its target and the peer goes idle. */
    assert_int_equal(kts_wait_completed(e->srv, "/abr/v64/seg7.ts", 1, 10000), KTH_OK);
    /* The other variants' playlists load in the background; the switch needs the target's. */
    kth_hls_variant_info info;
    for (int i = 0; i < 5000; i++) {
        assert_int_equal(kth_stream_variant_info(s, 2, &info), KTH_OK);
        if (info.usable)
            break;
        sleep_s(0.001);
    }
    assert_true(info.usable);
    assert_int_equal(kth_stream_abr_set_manual(s, 2), KTH_OK);
    for (int guard = 0; guard < 100000; guard++) {
        n = kth_stream_read(s, buf, sizeof buf);
        if (n == 0)
            break;
        if (n == KTH_ERR_VARIANT_CHANGE) {
            assert_int_equal(p.count, 1);
            p.fence_at[p.count] = kth_stream_position(s);
            p.variant[p.count++] = 2;
            assert_int_equal(kth_stream_clear_variant_fence(s), KTH_OK);
            continue;
        }
        assert_true(n > 0);
        bytes_append(&p.data[p.count - 1], buf, (size_t)n);
    }
    assert_int_equal(p.count, 2);
    size_t counts[MAX_PERIODS];
    verify_periods(&p, "abr", counts);
    /* It switched right after the reader's segment, not after the buffered ones. */
    printf("manual switch after %zu segments of variant 0\n", counts[0]);
    assert_true(counts[0] <= 2);
    assert_int_equal(kth_stream_current_variant(s), 2);
    kth_stream_close(s);
    for (size_t i = 0; i < p.count; i++)
        free(p.data[i].data);
}

static void test_bandwidth_cap_holds_automatic_choice_below_it(void **state)
{
    struct hls_env *e = *state;
    kth_hls_options h;
    kth_hls_options_init(&h);
    h.initial_variant = 2;
    h.buffer_target_s = 4;
    /* A high first estimate, so nothing but the cap moves ABR off the top variant, even when
     * a decision comes before the cap is set (the download starts at open). */
    h.initial_estimate_bps = 10000000;
    kth_stream *s = hls_open(e, "/abr/master.m3u8", NULL, &h);
    assert_int_equal(kth_stream_abr_set_cap(s, 100000), KTH_OK); /* only v64 (80 kbit/s) */
    played p;
    memset(&p, 0, sizeof p);
    play_paced(s, &p, 5.0, NULL, NULL);
    kth_stream_close(s);
    size_t counts[MAX_PERIODS];
    verify_periods(&p, "abr", counts);
    assert_true(p.count >= 2);
    for (size_t i = 1; i < p.count; i++)
        assert_int_equal(p.variant[i], 0);
    for (size_t i = 0; i < p.count; i++)
        free(p.data[i].data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_abr_steps_down_under_a_cap_and_back_up_after,
                                        hls_setup, hls_teardown),
        cmocka_unit_test_setup_teardown(test_manual_switch_wakes_an_idle_download, hls_setup,
                                        hls_teardown),
        cmocka_unit_test_setup_teardown(test_bandwidth_cap_holds_automatic_choice_below_it,
                                        hls_setup, hls_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
