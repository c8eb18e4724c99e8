/*
 * test_hls_shared.c — several streams of one HLS URL in one process (DESIGN.md §5, pitfall 12):
 * two and four streams of a master (MPEG-TS, and AES-128) read to their end from separate
 * threads, each byte-exact for the variants it played whatever ABR chose for it, with one
 * download of each playlist, key and segment between them, also when streams wait for a
 * playlist or key another one is downloading; streams opened and closed in different
 * orders; and a stream that closes while it is the one downloading a segment another stream waits
 * for, which the other then downloads itself.
 */
#include "test_hls_support.h"

#include <pthread.h>

#define MAX_STREAMS 4
#define MAX_PERIODS 32

/* What one stream played: its bytes split at each variant fence, with each part's variant. */
typedef struct played {
    bytes data[MAX_PERIODS];
    int variant[MAX_PERIODS];
    size_t count;
} played;

static void free_played(played *p)
{
    for (size_t i = 0; i < p->count; i++)
        free(p->data[i].data);
    memset(p, 0, sizeof *p);
}

/* One read into p; a fence opens a new part. Returns the bytes read, 0 at the end, -1 at a
 * fence, or the negative status of an error (its detail in err). */
static int64_t play_step(kth_stream *s, played *p, uint8_t *buf, size_t size, char *err,
                         size_t errlen)
{
    if (p->count == 0) {
        p->count = 1;
        p->variant[0] = -1;
    }
    int64_t n = kth_stream_read(s, buf, size);
    if (n == KTH_ERR_VARIANT_CHANGE) {
        if (p->count >= MAX_PERIODS || kth_stream_clear_variant_fence(s) != KTH_OK) {
            snprintf(err, errlen, "too many variant fences");
            return KTH_ERR_INTERNAL;
        }
        p->variant[p->count++] = -1;
        return -1;
    }
    if (n < 0) {
        char detail[1024];
        kth_stream_last_error(s, detail, sizeof detail);
        snprintf(err, errlen, "read at %llu: %s (%s)", (unsigned long long)kth_stream_position(s),
                 kth_strerror((int)n), detail);
        return n;
    }
    if (n > 0) {
        if (p->variant[p->count - 1] < 0)
            p->variant[p->count - 1] = kth_stream_current_variant(s);
        bytes_append(&p->data[p->count - 1], buf, (size_t)n);
    }
    return n;
}

/* Checks that every part is whole consecutive segments of its variant (the plaintext from
 * clear_root when the variant is encrypted), each part continuing at the segment where the one
 * before stopped, the last ending with the last segment. */
static void verify_played(const played *p, const char *root, const char *clear_root)
{
    static const char *names[] = {"v64", "v128", "v256"};
    size_t next = 0, last_count = 0;
    for (size_t i = 0; i < p->count; i++) {
        if (p->variant[i] < 0 || p->variant[i] > 2)
            fail_msg("part %zu has no variant", i);
        char dir[256], clear[256];
        snprintf(dir, sizeof dir, "%s/%s", root, names[p->variant[i]]);
        snprintf(clear, sizeof clear, "%s/%s", clear_root ? clear_root : root,
                 names[p->variant[i]]);
        variant_files files = list_variant(dir);
        const bytes *b = &p->data[i];
        size_t at = 0, k = next;
        while (at < b->len) {
            if (k >= files.count)
                fail_msg("part %zu: %zu bytes past the last segment", i, b->len - at);
            char path[1024];
            snprintf(path, sizeof path, "%s/%s/%s", FIXTURES, clear, files.names[k]);
            bytes seg = read_file(path);
            if (seg.len > b->len - at)
                fail_msg("part %zu (variant %d) ends inside segment %zu", i, p->variant[i], k);
            if (memcmp(seg.data, b->data + at, seg.len) != 0)
                fail_msg("part %zu (variant %d): segment %zu differs", i, p->variant[i], k);
            at += seg.len;
            free(seg.data);
            k++;
        }
        next = k;
        last_count = files.count;
    }
    if (next != last_count)
        fail_msg("the stream ended after segment %zu of %zu", next, last_count);
}

/* ---- streams read from threads ---- */

typedef struct reader {
    struct hls_env *env;
    const char *path;
    pthread_barrier_t *start; /* NULL: the stream is already open */
    pthread_barrier_t *end;   /* when not NULL: waited at before closing */
    kth_stream *stream;       /* opened by the thread when NULL */
    bool close_at_end;
    played got;
    kth_status status;
    char err[1200];
    /* Set after `notify_after` bytes were read (0: never), under lock. */
    size_t notify_after;
    size_t total;
    bool reached;
    pthread_mutex_t lock;
    pthread_cond_t cond;
} reader;

static void reader_init(reader *r, struct hls_env *e, const char *path)
{
    memset(r, 0, sizeof *r);
    r->env = e;
    r->path = path;
    r->close_at_end = true;
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->cond, NULL);
}

static void reader_destroy(reader *r)
{
    free_played(&r->got);
    pthread_mutex_destroy(&r->lock);
    pthread_cond_destroy(&r->cond);
}

static void *reader_main(void *arg)
{
    reader *r = arg;
    if (r->start)
        pthread_barrier_wait(r->start);
    if (!r->stream)
        r->status = hls_try_open(r->env, r->path, NULL, NULL, &r->stream, r->err, sizeof r->err);
    uint8_t buf[8192];
    for (int guard = 0; r->status == KTH_OK && guard < 200000; guard++) {
        int64_t n = play_step(r->stream, &r->got, buf, sizeof buf, r->err, sizeof r->err);
        if (n == 0)
            break;
        if (n < -1) {
            r->status = (kth_status)n;
            break;
        }
        pthread_mutex_lock(&r->lock);
        r->total += n > 0 ? (size_t)n : 0;
        if (r->notify_after && r->total >= r->notify_after && !r->reached) {
            r->reached = true;
            pthread_cond_broadcast(&r->cond);
        }
        pthread_mutex_unlock(&r->lock);
    }
    pthread_mutex_lock(&r->lock);
    r->reached = true; /* also at the end or an error: nobody waits forever */
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->lock);
    if (r->end)
        pthread_barrier_wait(r->end);
    if (r->close_at_end && r->stream) {
        kth_stream_close(r->stream);
        r->stream = NULL;
    }
    return NULL;
}

/* Waits (bounded) until the reader has read its notify_after bytes, ended or failed; false when
 * the bound passed (checked by the caller once the thread is joined). */
static bool reader_wait_reached(reader *r)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 30;
    pthread_mutex_lock(&r->lock);
    int rc = 0;
    while (!r->reached && rc == 0)
        rc = pthread_cond_timedwait(&r->cond, &r->lock, &deadline);
    bool reached = r->reached;
    pthread_mutex_unlock(&r->lock);
    return reached;
}

static void reader_check(reader *r, const char *root, const char *clear_root)
{
    if (r->status != KTH_OK)
        fail_msg("%s: %s (%s)", r->path, kth_strerror(r->status), r->err);
    verify_played(&r->got, root, clear_root);
}

/* Whole downloads of path: GETs the server answered in full (one cut short because its stream
 * stopped it, a rescue or a close for example, does not count). */
static unsigned whole_downloads(struct hls_env *e, const char *path)
{
    unsigned gets = kts_request_count(e->srv, path, "GET");
    unsigned all = kts_request_count(e->srv, path, NULL);
    assert_int_equal(kts_wait_completed(e->srv, path, all, 20000), KTH_OK);
    unsigned whole = 0;
    for (unsigned i = 1; i <= all; i++) {
        kts_log_entry le;
        assert_int_equal(kts_log_find(e->srv, path, i, &le), KTH_OK);
        if (strcmp(le.method, "GET") == 0 && le.status >= 200 && le.status <= 299 && !le.cut)
            whole++;
    }
    assert_true(whole <= gets);
    return whole;
}

/* The streams shared their downloads: the master was requested once (every stream waited for
 * that request), and every media playlist and segment of the variants of `root` (fixture folder
 * names) was downloaded whole once at most (a stream that closed at its end may have cut short
 * a download another stream then made). */
static void assert_one_download_per_resource(struct hls_env *e, const char *root, size_t variants)
{
    static const char *names[] = {"v64", "v128", "v256"};
    char path[512];
    snprintf(path, sizeof path, "/%s/master.m3u8", root);
    if (kts_request_count(e->srv, path, "GET") != 1)
        fail_msg("%s was requested %u times", path, kts_request_count(e->srv, path, "GET"));
    for (size_t v = 0; v < variants; v++) {
        char dir[256];
        snprintf(dir, sizeof dir, "%s/%s", root, names[v]);
        snprintf(path, sizeof path, "/%s/index.m3u8", dir);
        if (whole_downloads(e, path) > 1)
            fail_msg("%s was downloaded whole %u times", path, whole_downloads(e, path));
        variant_files files = list_variant(dir);
        for (size_t k = 0; k < files.count; k++) {
            snprintf(path, sizeof path, "/%s/%s", dir, files.names[k]);
            unsigned whole = whole_downloads(e, path);
            if (whole > 1)
                fail_msg("%s was downloaded whole %u times", path, whole);
        }
    }
}

/* n streams of one URL, opened and read to their end at once from n threads, and closed once
 * all of them are at their end (a stream closed earlier ends downloads the others may then make
 * again: the tests that close streams early check that case). */
static void play_concurrently(struct hls_env *e, const char *path, size_t n, const char *root,
                              const char *clear_root, size_t variants)
{
    reader r[MAX_STREAMS];
    pthread_t t[MAX_STREAMS];
    pthread_barrier_t start, end;
    pthread_barrier_init(&start, NULL, (unsigned)n);
    pthread_barrier_init(&end, NULL, (unsigned)n);
    for (size_t i = 0; i < n; i++) {
        reader_init(&r[i], e, path);
        r[i].start = &start;
        r[i].end = &end;
        assert_int_equal(pthread_create(&t[i], NULL, reader_main, &r[i]), 0);
    }
    for (size_t i = 0; i < n; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&start);
    pthread_barrier_destroy(&end);
    for (size_t i = 0; i < n; i++)
        reader_check(&r[i], root, clear_root);
    assert_one_download_per_resource(e, root, variants);
    if (clear_root)
        assert_int_equal(kts_request_count(e->srv, "/aes/key.bin", "GET"), 1);
    for (size_t i = 0; i < n; i++)
        reader_destroy(&r[i]);
}

static void test_two_streams_of_a_ts_master_are_byte_exact(void **state)
{
    play_concurrently(*state, "/ts/master.m3u8", 2, "ts", NULL, 3);
}

static void test_four_streams_of_a_ts_master_are_byte_exact(void **state)
{
    play_concurrently(*state, "/ts/master.m3u8", 4, "ts", NULL, 3);
}

static void test_two_streams_of_an_aes128_master_are_byte_exact(void **state)
{
    play_concurrently(*state, "/aes/master.m3u8", 2, "aes", "aes/clear", 2);
}

static void test_four_streams_of_an_aes128_master_are_byte_exact(void **state)
{
    play_concurrently(*state, "/aes/master.m3u8", 4, "aes", "aes/clear", 2);
}

static void test_two_streams_of_an_aes128_media_playlist_are_byte_exact(void **state)
{
    struct hls_env *e = *state;
    reader r[2];
    pthread_t t[2];
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, 2);
    for (size_t i = 0; i < 2; i++) {
        reader_init(&r[i], e, "/aes/v128/index.m3u8");
        r[i].start = &start;
        assert_int_equal(pthread_create(&t[i], NULL, reader_main, &r[i]), 0);
    }
    for (size_t i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&start);
    bytes want = expected_variant("aes/v128", "aes/clear/v128");
    for (size_t i = 0; i < 2; i++) {
        if (r[i].status != KTH_OK)
            fail_msg("stream %zu: %s (%s)", i, kth_strerror(r[i].status), r[i].err);
        assert_int_equal(r[i].got.count, 1);
        assert_same_bytes(&r[i].got.data[0], &want);
        reader_destroy(&r[i]);
    }
    free(want.data);
    assert_int_equal(kts_request_count(e->srv, "/aes/key.bin", "GET"), 1);
}

/* Size of the first `count` files of a fixture variant, as played (plaintext). */
static size_t files_size(const char *dir, size_t count)
{
    variant_files v = list_variant(dir);
    size_t total = 0;
    for (size_t i = 0; i < count && i < v.count; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s/%s", FIXTURES, dir, v.names[i]);
        bytes b = read_file(path);
        total += b.len;
        free(b.data);
    }
    return total;
}

/* Two streams of one URL; the one closed first (`close_first`: 0 the first opened, 1 the
 * second) is read for a while on this thread and closed while the other is in the middle of
 * its reading on its own thread, which then reads on to the end, byte-exact. */
static void close_one_while_the_other_reads(struct hls_env *e, const char *path, int close_first,
                                            const char *root, const char *clear_root)
{
    kth_stream *s[2] = {hls_open(e, path, NULL, NULL), hls_open(e, path, NULL, NULL)};
    kth_stream *closed = s[close_first], *kept = s[1 - close_first];
    reader r;
    reader_init(&r, e, path);
    r.stream = kept;
    r.notify_after = 60000;
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, reader_main, &r), 0);
    played mine = {0};
    uint8_t buf[4096];
    char err[1200] = "";
    int64_t n = 1;
    for (size_t total = 0; total < 30000 && n != 0 && n >= -1;) {
        n = play_step(closed, &mine, buf, sizeof buf, err, sizeof err);
        total += n > 0 ? (size_t)n : 0;
    }
    bool reached = reader_wait_reached(&r);
    kth_stream_close(closed);
    pthread_join(t, NULL);
    if (n < -1)
        fail_msg("the stream closed first: %s", err);
    assert_true(reached);
    reader_check(&r, root, clear_root);
    reader_destroy(&r);
    free_played(&mine);
}

static void test_closing_the_first_stream_mid_read_leaves_the_second_byte_exact(void **state)
{
    close_one_while_the_other_reads(*state, "/ts/master.m3u8", 0, "ts", NULL);
    close_one_while_the_other_reads(*state, "/aes/master.m3u8", 0, "aes", "aes/clear");
}

static void test_closing_the_second_stream_mid_read_leaves_the_first_byte_exact(void **state)
{
    close_one_while_the_other_reads(*state, "/ts/master.m3u8", 1, "ts", NULL);
    close_one_while_the_other_reads(*state, "/aes/master.m3u8", 1, "aes", "aes/clear");
}

/* Stream A downloads segment 3 of variant v64, which stalls after 1000 bytes; stream B plays
 * up to there and waits on A's download; A is closed, cancelling it; B downloads the segment
 * itself and plays to the end byte-exact. */
static void writer_closes_while_another_stream_waits(struct hls_env *e, const char *root,
                                                     const char *clear_root)
{
    char master[128], seg3[128], dir[128], clear[128];
    snprintf(master, sizeof master, "/%s/master.m3u8", root);
    snprintf(seg3, sizeof seg3, "/%s/v64/seg3.ts", root);
    snprintf(dir, sizeof dir, "%s/v64", root);
    snprintf(clear, sizeof clear, "%s/v64", clear_root ? clear_root : root);
    kts_add_fault(e->srv, seg3,
                  &(kts_fault){.kind = KTS_FAULT_STALL_AFTER, .bytes = 1000, .last_request = 1});
    kth_stream *a = hls_open_variant(e, master, 0);
    assert_int_equal(kts_wait_stalled(e->srv, seg3, 1, 20000), KTH_OK);

    reader r;
    reader_init(&r, e, master);
    r.stream = hls_open_variant(e, master, 0);
    /* Segments 0-2 and what arrived of segment 3 (at least its first 400 plaintext bytes). */
    r.notify_after = files_size(clear, 3) + 400;
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, reader_main, &r), 0);
    bool reached = reader_wait_reached(&r);
    /* B waits for A's download rather than making its own: no second request comes (a bounded
     * wait for one that must not come; a second download would start at B's first poll). */
    int second = kts_wait_requests(e->srv, seg3, 2, 500);
    kth_stream_close(a);
    pthread_join(t, NULL);
    assert_true(reached);
    assert_int_equal(second, KTH_ERR_TIMEOUT);
    reader_check(&r, root, clear_root);
    assert_int_equal(r.got.count, 1);
    assert_int_equal(r.got.variant[0], 0);
    reader_destroy(&r);
    /* A's stalled download and B's own. A's other downloads that A's close cut short are B's
     * to make again too: each stream fetched each segment once at most. */
    assert_int_equal(kts_request_count(e->srv, seg3, "GET"), 2);
    variant_files files = list_variant(dir);
    for (size_t k = 0; k < files.count; k++) {
        char path[512];
        snprintf(path, sizeof path, "/%s/%s", dir, files.names[k]);
        if (kts_request_count(e->srv, path, "GET") > 2)
            fail_msg("%s was downloaded %u times", path, kts_request_count(e->srv, path, "GET"));
    }
}

static void test_a_stream_takes_over_the_download_of_a_closed_one(void **state)
{
    writer_closes_while_another_stream_waits(*state, "ts", NULL);
}

static void test_a_stream_takes_over_the_aes128_download_of_a_closed_one(void **state)
{
    writer_closes_while_another_stream_waits(*state, "aes", "aes/clear");
}

/* Streams opened while the download of `gated` (held at the server's gate) is under way wait
 * for it instead of asking again; released, it serves every stream, which play byte-exact. */
static void one_download_while_it_is_held(struct hls_env *e, const char *path, const char *gated,
                                          size_t streams, const char *want_dir,
                                          const char *clear_dir)
{
    kts_add_fault(e->srv, gated, &(kts_fault){.kind = KTS_FAULT_GATE});
    reader r[MAX_STREAMS];
    pthread_t t[MAX_STREAMS];
    for (size_t i = 0; i < streams; i++) {
        reader_init(&r[i], e, path);
        assert_int_equal(pthread_create(&t[i], NULL, reader_main, &r[i]), 0);
    }
    int gated_first = kts_wait_gated(e->srv, gated, 1, 20000);
    /* A bounded wait for a request that must not come: the others wait for this one. (Checked
     * once every thread is joined, so a failure leaves none running.) */
    int second = kts_wait_requests(e->srv, gated, 2, 500);
    kts_gate_release(e->srv, gated, KTS_RELEASE_ALL);
    for (size_t i = 0; i < streams; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(gated_first, KTH_OK);
    assert_int_equal(second, KTH_ERR_TIMEOUT);
    bytes want = expected_variant(want_dir, clear_dir);
    for (size_t i = 0; i < streams; i++) {
        if (r[i].status != KTH_OK)
            fail_msg("stream %zu: %s (%s)", i, kth_strerror(r[i].status), r[i].err);
        assert_int_equal(r[i].got.count, 1);
        assert_same_bytes(&r[i].got.data[0], &want);
        reader_destroy(&r[i]);
    }
    free(want.data);
    assert_int_equal(kts_request_count(e->srv, gated, "GET"), 1);
}

static void test_streams_opened_together_fetch_the_playlist_once(void **state)
{
    one_download_while_it_is_held(*state, "/ts/v64/index.m3u8", "/ts/v64/index.m3u8", 3, "ts/v64",
                                  NULL);
}

static void test_streams_waiting_for_a_key_fetch_it_once(void **state)
{
    one_download_while_it_is_held(*state, "/aes/v64/index.m3u8", "/aes/key.bin", 3, "aes/v64",
                                  "aes/clear/v64");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_two_streams_of_a_ts_master_are_byte_exact, hls_setup,
                                        hls_teardown),
        cmocka_unit_test_setup_teardown(test_four_streams_of_a_ts_master_are_byte_exact, hls_setup,
                                        hls_teardown),
        cmocka_unit_test_setup_teardown(test_two_streams_of_an_aes128_master_are_byte_exact,
                                        hls_setup, hls_teardown),
        cmocka_unit_test_setup_teardown(test_four_streams_of_an_aes128_master_are_byte_exact,
                                        hls_setup, hls_teardown),
        cmocka_unit_test_setup_teardown(test_two_streams_of_an_aes128_media_playlist_are_byte_exact,
                                        hls_setup, hls_teardown),
        cmocka_unit_test_setup_teardown(test_streams_opened_together_fetch_the_playlist_once,
                                        hls_setup, hls_teardown),
        cmocka_unit_test_setup_teardown(test_streams_waiting_for_a_key_fetch_it_once, hls_setup,
                                        hls_teardown),
        cmocka_unit_test_setup_teardown(
            test_closing_the_first_stream_mid_read_leaves_the_second_byte_exact, hls_setup,
            hls_teardown),
        cmocka_unit_test_setup_teardown(
            test_closing_the_second_stream_mid_read_leaves_the_first_byte_exact, hls_setup,
            hls_teardown),
        cmocka_unit_test_setup_teardown(test_a_stream_takes_over_the_download_of_a_closed_one,
                                        hls_setup, hls_teardown),
        cmocka_unit_test_setup_teardown(
            test_a_stream_takes_over_the_aes128_download_of_a_closed_one, hls_setup, hls_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
