/*
 * test_hls_abr.c — variant switching on the loopback server: every byte across every switch is
 * exactly the concatenation of the segments of the variant it belongs to; a manual choice made
 * while the download is idle takes effect at the next segment boundary, behind a variant fence;
 * when the reader is already in a segment whose download stalls, the segment's bytes stay and the
 * rescue starts at the next one, with one download per segment; a seek holds the variant until its
 * first bytes are read; the current variant moves only at the fence the reader is handed; and the
 * HLS events (a segment's start and end, keys, buffer level, end of stream) describe what was
 * played, with the times they report read on the downloader's clock. (Stepping down when the link
 * drops and back up when it recovers, with the dwell between switches, the rescue of a segment
 * that trickles, stalls or stays silent before the reader waits for it, and a bandwidth cap
 * holding ABR's choice, are test_abr_pipeline's, in virtual time.)
 */
#include "test_hls_support.h"

#include "net/downloader.h"

#include <time.h>

#define MAX_PERIODS 32

typedef struct played {
    bytes data[MAX_PERIODS];
    int variant[MAX_PERIODS];
    uint64_t fence_at[MAX_PERIODS]; /* stream offset where each period begins */
    size_t count;
    double longest_read_s; /* the longest a kth_stream_read call blocked */
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

/* One read into p: the bytes go to the current period, and a variant fence opens the next one.
 * Returns the bytes read, 0 at the end, -1 at a fence (cleared). Fails the test on an error or
 * when the bytes' variant is not the period's. */
static int64_t play_step(kth_stream *s, played *p, uint8_t *buf, size_t size)
{
    double before = now_s();
    int64_t n = kth_stream_read(s, buf, size);
    if (now_s() - before > p->longest_read_s)
        p->longest_read_s = now_s() - before;
    if (n == 0)
        return 0;
    if (n == KTH_ERR_VARIANT_CHANGE) {
        assert_true(p->count < MAX_PERIODS);
        p->fence_at[p->count] = kth_stream_position(s);
        p->variant[p->count++] = -1;
        assert_int_equal(kth_stream_clear_variant_fence(s), KTH_OK);
        return -1;
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
    return n;
}

/* Reads the stream to its end as fast as it comes, recording its periods. */
static void play_all(kth_stream *s, played *p)
{
    uint8_t buf[4096];
    p->count = 1;
    p->variant[0] = -1;
    for (int guard = 0; guard < 200000; guard++) {
        if (play_step(s, p, buf, sizeof buf) == 0)
            return;
    }
    fail_msg("play_all: no end");
}

static void print_periods(const played *p, const size_t *counts)
{
    for (size_t i = 0; i < p->count; i++)
        printf("period %zu: variant %d, %zu segments\n", i, p->variant[i], counts[i]);
}

static void free_played(played *p)
{
    for (size_t i = 0; i < p->count; i++)
        free(p->data[i].data);
}

/* GET requests the server saw for segment k of a variant folder of /abr. */
static unsigned segment_gets(struct hls_env *e, const char *variant, size_t k)
{
    char path[128];
    snprintf(path, sizeof path, "/abr/%s/seg%zu.ts", variant, k);
    return kts_request_count(e->srv, path, "GET");
}

/* No segment of any variant was downloaded twice. */
static void assert_one_download_per_segment(struct hls_env *e)
{
    static const char *names[] = {"v64", "v128", "v256"};
    for (size_t v = 0; v < 3; v++)
        for (size_t k = 0; k < 31; k++)
            if (segment_gets(e, names[v], k) > 1)
                fail_msg("%s/seg%zu.ts was requested %u times", names[v], k,
                         segment_gets(e, names[v], k));
}

/* Replaces the test's downloader by one with the default stall timeout (20 s), far longer
 * than any wait here: only the stream's own rescue can end a stalled download in time. */
static void use_patient_downloader(struct hls_env *e)
{
    kth_downloader_unref(e->d);
    kth_downloader_options o;
    kth_downloader_options_init(&o);
    o.retry_base_ms = 5;
    o.retry_cap_ms = 50;
    char err[256];
    if (kth_downloader_new(&o, &e->d, err, sizeof err) != KTH_OK)
        fail_msg("downloader: %s", err);
}

static void test_manual_switch_wakes_an_idle_download(void **state)
{
    struct hls_env *e = *state;
    kth_hls_options h;
    kth_hls_options_init(&h);
    h.fixed_start = true;
    h.initial_variant = 0;
    h.start_manual = true;
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

/* The current variant is the one of the bytes the reader gets next: up to the fence it stays
 * the old one, even once the downloader has looked past the reader's position. */
static void test_current_variant_changes_only_at_the_fence(void **state)
{
    struct hls_env *e = *state;
    kth_hls_options h;
    kth_hls_options_init(&h);
    h.fixed_start = true;
    h.initial_variant = 0;
    h.start_manual = true;
    kth_stream *s = hls_open(e, "/abr/master.m3u8", NULL, &h);
    kth_hls_variant_info info;
    for (int i = 0; i < 5000; i++) {
        assert_int_equal(kth_stream_variant_info(s, 2, &info), KTH_OK);
        if (info.usable)
            break;
        sleep_s(0.001);
    }
    assert_true(info.usable);
    assert_int_equal(kth_stream_abr_set_manual(s, 2), KTH_OK);
    uint8_t buf[4096];
    int variant = 0;
    bool fenced = false;
    for (int guard = 0; guard < 100000; guard++) {
        int64_t n = kth_stream_read(s, buf, sizeof buf);
        if (n == 0 || n == KTH_ERR_VARIANT_CHANGE) {
            fenced = n != 0;
            break;
        }
        assert_true(n > 0);
        /* Wake the downloader and give it time to walk its window from the reader's new
         * position (at the last read before the fence: the first byte of the new variant). */
        assert_int_equal(kth_stream_abr_set_manual(s, 2), KTH_OK);
        sleep_s(0.02);
        assert_int_equal(kth_stream_current_variant(s), variant);
    }
    assert_true(fenced);
    assert_int_equal(kth_stream_clear_variant_fence(s), KTH_OK);
    assert_int_equal(kth_stream_current_variant(s), 2);
    assert_true(kth_stream_read(s, buf, sizeof buf) > 0);
    assert_int_equal(kth_stream_current_variant(s), 2);
    kth_stream_close(s);
}

static void test_stall_in_the_readers_segment_keeps_it_and_rescues_the_next(void **state)
{
    struct hls_env *e = *state;
    use_patient_downloader(e);
    kth_subscription *sub;
    assert_int_equal(kth_bus_subscribe(e->bus, 4096, &sub), KTH_OK);
    /* Segment 3 of the top variant pauses for 2.5 s after 8000 bytes, then ends normally. */
    kts_add_fault(e->srv, "/abr/v256/seg3.ts",
                  &(kts_fault){.kind = KTS_FAULT_STALL_AFTER, .bytes = 8000, .ms = 2500});
    kth_hls_options h;
    kth_hls_options_init(&h);
    h.fixed_start = true;
    h.initial_variant = 2;
    h.initial_estimate_bps = 10000000;
    h.buffer_target_s = 2;
    kth_stream *s = hls_open(e, "/abr/master.m3u8", NULL, &h);
    played p;
    memset(&p, 0, sizeof p);
    play_all(s, &p); /* as fast as it comes: the reader is inside segment 3 when it stalls */
    kth_stream_close(s);

    size_t counts[MAX_PERIODS];
    verify_periods(&p, "abr", counts);
    print_periods(&p, counts);
    /* Segment 3's bytes, the first of which the reader had, all come from the top variant;
     * the rescue starts after it. */
    assert_true(p.count >= 2);
    assert_int_equal(p.variant[0], 2);
    assert_true(counts[0] >= 4);
    assert_true(p.variant[1] < 2);
    kth_event ev;
    bool rescued = false, completed = false;
    while (kth_events_next(sub, &ev, 0) == KTH_OK) {
        if (ev.kind == KTH_EVENT_VARIANT_CHANGED && ev.payload.abr.from_variant == 2 && !rescued) {
            assert_string_equal(ev.text, "urgent-down");
            assert_false(completed); /* while segment 3 was still stalled */
            rescued = true;
        }
        if (ev.kind == KTH_EVENT_HLS_SEGMENT_COMPLETED && ev.payload.segment.variant == 2 &&
            ev.payload.segment.index == 3) {
            assert_int_equal(ev.status, KTH_OK);
            completed = true;
        }
    }
    assert_true(rescued);
    assert_true(completed);
    printf("longest read: %.3f s\n", p.longest_read_s);
    assert_true(p.longest_read_s > 1.0); /* the reader did wait in segment 3 */
    assert_int_equal(segment_gets(e, "v256", 3), 1);
    assert_one_download_per_segment(e);
    free_played(&p);
    kth_subscription_free(sub);
}

/* Drains the subscription; counts the ABR decisions that held the variant for a seek and
 * those that did not, and fails on a variant change. */
static void count_decisions(kth_subscription *sub, int *locked, int *free_)
{
    kth_event ev;
    *locked = *free_ = 0;
    while (kth_events_next(sub, &ev, 0) == KTH_OK) {
        if (ev.kind == KTH_EVENT_VARIANT_CHANGED)
            fail_msg("switch %d -> %d (%s)", ev.payload.abr.from_variant, ev.payload.abr.to_variant,
                     ev.text);
        if (ev.kind != KTH_EVENT_ABR_DECISION)
            continue;
        if (strcmp(ev.text, "stay-seek-lock") == 0)
            (*locked)++;
        else
            (*free_)++;
    }
}

/* Reads n bytes (no fence expected). */
static void read_bytes(kth_stream *s, size_t n)
{
    uint8_t buf[4096];
    while (n > 0) {
        int64_t got = kth_stream_read(s, buf, n < sizeof buf ? n : sizeof buf);
        if (got <= 0)
            fail_msg("read: %s", kth_strerror((int)got));
        n -= (size_t)got;
    }
}

static size_t fixture_size(const char *path)
{
    bytes b = read_file(path);
    free(b.data);
    return b.len;
}

static void test_a_seek_holds_the_variant_until_its_first_bytes_are_read(void **state)
{
    struct hls_env *e = *state;
    kth_subscription *sub;
    assert_int_equal(kth_bus_subscribe(e->bus, 4096, &sub), KTH_OK);
    kth_hls_options h;
    kth_hls_options_init(&h);
    h.fixed_start = true;
    h.initial_variant = 2;
    h.initial_estimate_bps = 10000000;
    h.buffer_target_s = 3;
    kth_stream *s = hls_open(e, "/abr/master.m3u8", NULL, &h);
    read_bytes(s, 1000);
    /* ABR decides once the other variants' playlists are in (they load in the background). */
    for (int v = 0; v < 3; v++) {
        kth_hls_variant_info vi = {0};
        for (int i = 0; i < 10000 && !vi.usable; i++) {
            assert_int_equal(kth_stream_variant_info(s, v, &vi), KTH_OK);
            if (!vi.usable)
                usleep(1000);
        }
        assert_true(vi.usable);
    }
    /* The read-ahead (segments 0 to 2) is done: nothing is decided until the seek. The server
     * sees a response end before the downloader takes it in: two turns of its loop later the
     * poll that followed has published what it decided, which is counted here, not below. */
    assert_int_equal(kts_wait_completed(e->srv, "/abr/v256/seg2.ts", 1, 10000), KTH_OK);
    assert_int_equal(net_downloader_barrier(e->d, 5000), KTH_OK);
    assert_int_equal(net_downloader_barrier(e->d, 5000), KTH_OK);
    int locked, unlocked;
    count_decisions(sub, &locked, &unlocked);

    /* Automatic: the decisions made between the seek and its first bytes hold the variant
     * (the buffer there is empty, which would otherwise weigh on them). */
    kth_seek_anchor a;
    assert_int_equal(kth_stream_seek_time(s, 15.5, &a), KTH_OK);
    assert_int_equal(a.segment_index, 15);
    assert_int_equal(kts_wait_requests(e->srv, "/abr/v256/seg17.ts", 1, 10000), KTH_OK);
    count_decisions(sub, &locked, &unlocked);
    printf("after the seek: %d held, %d free\n", locked, unlocked);
    assert_true(locked >= 1);
    assert_int_equal(unlocked, 0);
    /* Once bytes were read there, decisions are free again. */
    read_bytes(s, fixture_size(FIXTURES "/abr/v256/seg15.ts") + 1);
    /* The window (3 s from segment 16) ends at segment 19, whose fetch (and decision) waits for
     * room among the three in flight: wait for it too, so no decision of this phase is left to
     * be counted in the next. A decision is published before its fetch is sent. */
    assert_int_equal(kts_wait_requests(e->srv, "/abr/v256/seg18.ts", 1, 10000), KTH_OK);
    assert_int_equal(kts_wait_requests(e->srv, "/abr/v256/seg19.ts", 1, 10000), KTH_OK);
    count_decisions(sub, &locked, &unlocked);
    printf("after its first bytes: %d held, %d free\n", locked, unlocked);
    assert_true(unlocked >= 1);

    /* Explicit: held across the first bytes, until the program ends it. (Forward: no switch
     * is ever placed before the furthest segment the reader has been in.) */
    assert_int_equal(kth_stream_abr_seek_begin(s), KTH_OK);
    assert_int_equal(kth_stream_seek_time(s, 22.5, &a), KTH_OK);
    assert_int_equal(a.segment_index, 22);
    read_bytes(s, fixture_size(FIXTURES "/abr/v256/seg22.ts") + 1);
    assert_int_equal(kts_wait_requests(e->srv, "/abr/v256/seg25.ts", 1, 10000), KTH_OK);
    count_decisions(sub, &locked, &unlocked);
    printf("explicit lock: %d held, %d free\n", locked, unlocked);
    assert_true(locked >= 1);
    assert_int_equal(unlocked, 0);
    /* The window reached segment 26 at most (3 s past segment 23): 27 is decided after. */
    assert_int_equal(segment_gets(e, "v256", 27), 0);
    assert_int_equal(kth_stream_abr_seek_end(s), KTH_OK);
    read_bytes(s, fixture_size(FIXTURES "/abr/v256/seg23.ts") +
                      fixture_size(FIXTURES "/abr/v256/seg24.ts"));
    assert_int_equal(kts_wait_requests(e->srv, "/abr/v256/seg27.ts", 1, 10000), KTH_OK);
    count_decisions(sub, &locked, &unlocked);
    printf("after its end: %d held, %d free\n", locked, unlocked);
    assert_true(unlocked >= 1);
    assert_int_equal(kth_stream_current_variant(s), 2);
    kth_stream_close(s);
    kth_subscription_free(sub);
}

/* The events a subscription received, kept for a test to look at once the stream is closed. */
typedef struct event_log {
    kth_event ev[2048];
    size_t count;
} event_log;

/* Appends the queued events; with `until`, first waits (bounded) for an event of that kind:
 * reading a stream to its end does not wait for the last download's completion, and closing
 * the stream before it would cancel that download. */
static void log_events(kth_subscription *sub, event_log *log, kth_event_kind until)
{
    bool seen = until == KTH_EVENT_NONE;
    kth_event ev;
    while (kth_events_next(sub, &ev, seen ? 0 : 10000) == KTH_OK) {
        assert_int_equal(ev.dropped, 0);
        assert_true(log->count < sizeof log->ev / sizeof log->ev[0]);
        log->ev[log->count++] = ev;
        if (ev.kind == until)
            seen = true;
    }
    assert_true(seen);
}

static void test_segment_events_describe_every_segment_played(void **state)
{
    struct hls_env *e = *state;
    kth_subscription *sub;
    assert_int_equal(kth_bus_subscribe(e->bus, 4096, &sub), KTH_OK);
    event_log *log = calloc(1, sizeof *log);
    assert_non_null(log);
    /* The media playlist itself: one variant, nothing for ABR to switch. */
    kth_stream *s = hls_open(e, "/abr/v64/index.m3u8", NULL, NULL);
    bytes got = read_to_end(s, false);
    log_events(sub, log, KTH_EVENT_HLS_END_OF_STREAM);
    kth_stream_close(s);
    log_events(sub, log, KTH_EVENT_NONE);
    bytes want = expected_variant("abr/v64", NULL);
    assert_same_bytes(&got, &want);
    free(got.data);
    free(want.data);

    variant_files files = list_variant("abr/v64");
    unsigned started[64] = {0}, completed[64] = {0}, reached[64] = {0};
    unsigned levels = 0, ends = 0;
    double last_reached = -1;
    for (size_t i = 0; i < log->count; i++) {
        const kth_event ev = log->ev[i];
        if (ev.kind == KTH_EVENT_HLS_SEGMENT_STARTED ||
            ev.kind == KTH_EVENT_HLS_SEGMENT_COMPLETED) {
            const kth_event_segment *g = &ev.payload.segment;
            assert_int_equal(g->variant, 0);
            assert_false(g->init);
            assert_true(g->index < files.count);
            if (!strstr(ev.text, files.names[g->index]))
                fail_msg("segment %llu: %s", (unsigned long long)g->index, ev.text);
            assert_true((g->duration > 0.9 && g->duration < 1.1) || g->index == files.count - 1);
            if (ev.kind == KTH_EVENT_HLS_SEGMENT_STARTED) {
                started[g->index]++;
                continue;
            }
            completed[g->index]++;
            assert_int_equal(ev.status, KTH_OK);
            char path[1024];
            snprintf(path, sizeof path, "%s/abr/v64/%s", FIXTURES, files.names[g->index]);
            assert_int_equal(g->bytes, fixture_size(path));
            assert_true(g->download_ns > 0);
        } else if (ev.kind == KTH_EVENT_HLS_BUFFER_LEVEL) {
            levels++;
            assert_true(ev.payload.buffer.seconds >= 0);
            assert_true(ev.payload.buffer.seconds <= ev.payload.buffer.target_seconds + 2);
        } else if (ev.kind == KTH_EVENT_HLS_END_OF_STREAM) {
            ends++;
        } else if (ev.kind == KTH_EVENT_HLS_PLAYBACK_PROGRESS) {
            /* The reader reached each segment once, in order. */
            const kth_event_segment *g = &ev.payload.segment;
            assert_int_equal(g->variant, 0);
            assert_true(g->index < files.count);
            assert_true(g->start_seconds > last_reached);
            last_reached = g->start_seconds;
            reached[g->index]++;
        }
    }
    for (size_t k = 0; k < files.count; k++) {
        if (started[k] != 1 || completed[k] != 1 || reached[k] != 1)
            fail_msg("segment %zu: %u starts, %u completions, reached %u times", k, started[k],
                     completed[k], reached[k]);
    }
    printf("%zu segments, %u buffer levels, %u ends\n", files.count, levels, ends);
    assert_true(levels >= 1); /* read as fast as it comes: the buffer stays near empty */
    assert_int_equal(ends, 1);
    free(log);
    kth_subscription_free(sub);
}

/* The HLS_KEY events of a log: how many, and the last. */
static unsigned key_events(const event_log *log, kth_event *last)
{
    unsigned n = 0;
    for (size_t i = 0; i < log->count; i++) {
        const kth_event ev = log->ev[i];
        if (ev.kind == KTH_EVENT_HLS_KEY) {
            *last = ev;
            n++;
        } else if (ev.kind == KTH_EVENT_HLS_SEGMENT_COMPLETED && ev.status != KTH_OK) {
            /* Given up: read-ahead past a switch made before the manual choice. */
            assert_int_equal(ev.status, KTH_ERR_CANCELLED);
        } else if (ev.kind == KTH_EVENT_HLS_SEGMENT_COMPLETED) {
            /* The bytes of an encrypted segment are its plaintext's. */
            char path[1024];
            variant_files files =
                list_variant(ev.payload.segment.variant ? "aes/clear/v128" : "aes/clear/v64");
            snprintf(path, sizeof path, "%s/aes/clear/%s/%s", FIXTURES,
                     ev.payload.segment.variant ? "v128" : "v64",
                     files.names[ev.payload.segment.index]);
            assert_int_equal(ev.payload.segment.bytes, fixture_size(path));
        }
    }
    return n;
}

static void test_key_events_say_fetched_then_from_the_cache(void **state)
{
    struct hls_env *e = *state;
    kth_subscription *sub;
    assert_int_equal(kth_bus_subscribe(e->bus, 4096, &sub), KTH_OK);
    event_log *log = calloc(1, sizeof *log);
    assert_non_null(log);
    for (int v = 0; v < 2; v++) {
        /* The manual choice is made once the stream is open: a switch before it is allowed
         * (the bytes are checked in test_hls_playback; the events here say which variant). */
        kth_stream *s = hls_open_variant(e, "/aes/master.m3u8", v);
        bytes got = read_to_end(s, true);
        log->count = 0;
        log_events(sub, log, KTH_EVENT_HLS_END_OF_STREAM);
        kth_stream_close(s);
        log_events(sub, log, KTH_EVENT_NONE);
        assert_true(got.len > 0);
        free(got.data);
        kth_event ev;
        assert_int_equal(key_events(log, &ev), 1);
        printf("key %s: status %d, from cache %d, HTTP %d\n", ev.text, ev.status,
               ev.payload.key.from_cache, ev.payload.key.http_status);
        assert_int_equal(ev.status, KTH_OK);
        assert_non_null(strstr(ev.text, "/aes/key.bin"));
        /* Fetched for the first variant, then kept with the asset. */
        assert_int_equal(ev.payload.key.from_cache, v == 1);
        assert_int_equal(ev.payload.key.http_status, v == 0 ? 200 : 0);
    }
    assert_int_equal(kts_request_count(e->srv, "/aes/key.bin", NULL), 1);
    free(log);
    kth_subscription_free(sub);
}

/* With an argument, runs only the case of that name (ctest registers each case on its own, so
 * they run side by side); a name that is no case fails rather than run nothing. */
/* The peer times its fetches on the downloader's clock: with a virtual clock that does not
 * move, every segment's download took no time at all, and the stream still plays to its end. */
static void test_segment_download_time_is_read_on_the_downloaders_clock(void **state)
{
    struct hls_env *e = *state;
    platform_virtual_clock vc;
    platform_virtual_clock_init(&vc, 1000000000);
    net_downloader_hooks hooks = {.clock = &vc.base};
    kth_downloader_options o;
    kth_downloader_options_init(&o);
    kth_downloader_unref(e->d);
    e->d = NULL;
    char err[256] = "";
    if (net_downloader_new(&o, &hooks, &e->d, err, sizeof err) != KTH_OK)
        fail_msg("downloader: %s", err);
    kth_subscription *sub;
    assert_int_equal(kth_bus_subscribe(e->bus, 4096, &sub), KTH_OK);
    event_log *log = calloc(1, sizeof *log);
    assert_non_null(log);
    kth_stream *s = hls_open(e, "/abr/v64/index.m3u8", NULL, NULL);
    bytes got = read_to_end(s, false);
    log_events(sub, log, KTH_EVENT_HLS_END_OF_STREAM);
    kth_stream_close(s);
    log_events(sub, log, KTH_EVENT_NONE);
    bytes want = expected_variant("abr/v64", NULL);
    assert_same_bytes(&got, &want);
    free(got.data);
    free(want.data);
    unsigned completed = 0;
    for (size_t i = 0; i < log->count; i++) {
        if (log->ev[i].kind != KTH_EVENT_HLS_SEGMENT_COMPLETED)
            continue;
        completed++;
        assert_int_equal(log->ev[i].status, KTH_OK);
        assert_int_equal(log->ev[i].payload.segment.download_ns, 0);
    }
    assert_true(completed > 0);
    free(log);
    kth_subscription_free(sub);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_manual_switch_wakes_an_idle_download, hls_setup,
                                        hls_teardown),
        cmocka_unit_test_setup_teardown(test_current_variant_changes_only_at_the_fence, hls_setup,
                                        hls_teardown),
        cmocka_unit_test_setup_teardown(
            test_stall_in_the_readers_segment_keeps_it_and_rescues_the_next, hls_setup,
            hls_teardown),
        cmocka_unit_test_setup_teardown(
            test_a_seek_holds_the_variant_until_its_first_bytes_are_read, hls_setup, hls_teardown),
        cmocka_unit_test_setup_teardown(test_segment_events_describe_every_segment_played,
                                        hls_setup, hls_teardown),
        cmocka_unit_test_setup_teardown(test_key_events_say_fetched_then_from_the_cache, hls_setup,
                                        hls_teardown),
        cmocka_unit_test_setup_teardown(test_segment_download_time_is_read_on_the_downloaders_clock,
                                        hls_setup, hls_teardown),
    };
    if (argc > 1) {
        bool known = false;
        for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++)
            known = known || strcmp(tests[i].name, argv[1]) == 0;
        if (!known) {
            fprintf(stderr, "no test case named %s\n", argv[1]);
            return 1;
        }
        cmocka_set_test_filter(argv[1]);
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
