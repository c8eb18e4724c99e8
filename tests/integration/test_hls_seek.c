/*
 * test_hls_seek.c — seeking in HLS streams and playing them offline: a seek by time lands on
 * the segment holding the time, with the init section in front where the container needs it,
 * without a request for anything that lies before it; a seek into cached audio is
 * immediate, byte seeks and SEEK_END work, and a presentation played once replays offline
 * byte-exact while anything not cached fails at once with KTH_ERR_OFFLINE_MISS.
 */
#include "test_hls_support.h"

#include <time.h>
#include <unistd.h>

typedef struct segment_times {
    double start[64];
    double duration[64];
    size_t count;
} segment_times;

static segment_times read_times(const char *dir)
{
    segment_times t;
    memset(&t, 0, sizeof t);
    char path[1024];
    snprintf(path, sizeof path, "%s/%s/index.m3u8", FIXTURES, dir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[1024];
    double at = 0;
    while (fgets(line, sizeof line, f) && t.count < 64) {
        if (strncmp(line, "#EXTINF:", 8) == 0) {
            t.start[t.count] = at;
            t.duration[t.count] = atof(line + 8);
            at += t.duration[t.count++];
        }
    }
    fclose(f);
    return t;
}

/* Stream offset of segment k: the sizes of the files (clear_dir: plaintext) before it. */
static uint64_t offset_of_segment(const char *dir, const char *clear_dir, size_t k)
{
    variant_files v = list_variant(dir);
    uint64_t offset = 0;
    size_t first_segment = v.has_init ? 1 : 0;
    for (size_t i = 0; i < first_segment + k; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s/%s", FIXTURES, clear_dir ? clear_dir : dir, v.names[i]);
        bytes b = read_file(path);
        offset += b.len;
        free(b.data);
    }
    return offset;
}

static void read_exact(kth_stream *s, uint8_t *buf, size_t n)
{
    size_t have = 0;
    while (have < n) {
        int64_t r = kth_stream_read(s, buf + have, n - have);
        if (r <= 0) {
            char detail[1024];
            kth_stream_last_error(s, detail, sizeof detail);
            fail_msg("read: %s (%s)", kth_strerror((int)r), detail);
        }
        have += (size_t)r;
    }
}

static kth_stream *open_small_buffer(struct hls_env *e, const char *path, int variant,
                                     kth_cache *cache)
{
    kth_hls_options h;
    kth_hls_options_init(&h);
    h.fixed_start = variant >= 0;
    h.initial_variant = variant;
    h.start_manual = true;
    h.buffer_target_s = 1.0; /* fetch little ahead, so what a seek skips stays unfetched */
    /* start_manual holds the variant; a kth_stream_abr_set_manual call would start fetching
     * from the start before the test's first seek. */
    return hls_open(e, path, cache, &h);
}

/* What a fresh demuxer reads after a time seek to segment k: the init section (fMP4), then
 * segment k and every later one. The caller frees it. */
static bytes expected_from_segment(const char *dir, const char *clear_dir, size_t k)
{
    bytes all = expected_variant(dir, clear_dir);
    uint64_t init = offset_of_segment(dir, clear_dir, 0);
    uint64_t at = offset_of_segment(dir, clear_dir, k);
    bytes b = {malloc(all.len), 0};
    assert_non_null(b.data);
    memcpy(b.data, all.data, (size_t)init);
    memcpy(b.data + init, all.data + at, (size_t)(all.len - at));
    b.len = (size_t)(init + all.len - at);
    free(all.data);
    return b;
}

/* Seeks to each time and checks the anchor's segment, that the position is the anchor and
 * that the bytes from there are those of expected_from_segment. */
static void check_seek_times(kth_stream *s, const char *dir, const char *clear_dir,
                             const double *times, size_t count)
{
    segment_times st = read_times(dir);
    for (size_t i = 0; i < count; i++) {
        size_t k = 0;
        while (k + 1 < st.count && times[i] >= st.start[k] + st.duration[k])
            k++;
        kth_seek_anchor a;
        kth_status status = kth_stream_seek_time(s, times[i], &a);
        if (status != KTH_OK) {
            char detail[1024];
            kth_stream_last_error(s, detail, sizeof detail);
            fail_msg("seek_time %.3f: %s (%s)", times[i], kth_strerror(status), detail);
        }
        assert_int_equal(a.segment_index, k);
        assert_int_equal(kth_stream_position(s), a.offset);
        assert_true(a.segment_start <= times[i] + 1e-9 || k + 1 == st.count);
        bytes want = expected_from_segment(dir, clear_dir, k);
        uint8_t buf[3000];
        size_t n = want.len < sizeof buf ? want.len : sizeof buf;
        read_exact(s, buf, n);
        assert_memory_equal(buf, want.data, n);
        free(want.data);
    }
}

/* Requests made for segments of `dir` before segment k (any method). */
static unsigned requests_before(struct hls_env *e, const char *dir, const char *ext, size_t k)
{
    unsigned n = 0;
    for (size_t i = 0; i < k; i++) {
        char path[128];
        snprintf(path, sizeof path, "/%s/seg%zu.%s", dir, i, ext);
        unsigned c = kts_request_count(e->srv, path, NULL);
        for (unsigned j = 1; j <= c; j++) {
            kts_log_entry le;
            if (kts_log_find(e->srv, path, j, &le) == KTH_OK)
                printf("requested before the target: %s %s (range \"%s\")\n", le.method, le.path,
                       le.range);
        }
        n += c;
    }
    return n;
}

static void test_seek_time_lands_on_segment_offsets_without_fetching_before(void **state)
{
    struct hls_env *e = *state;
    kts_add_fault(e->srv, "*", &(kts_fault){.kind = KTS_FAULT_LATENCY, .ms = 20});
    kth_stream *s = open_small_buffer(e, "/ts/master.m3u8", 1, NULL);
    const double first[] = {13.7};
    check_seek_times(s, "ts/v128", NULL, first, 1);
    /* A cold seek places the time without a byte or a size of what lies before it. */
    assert_int_equal(requests_before(e, "ts/v128", "ts", 6), 0);
    const double times[] = {0, 0.5, 2.03, 5.0, 9.99, 19.5, 19.99, 25.0, 7.3, 3.9, 11.0};
    check_seek_times(s, "ts/v128", NULL, times, sizeof times / sizeof times[0]);
    kth_stream_close(s);
}

static void test_seek_time_in_fmp4_and_encrypted_variants(void **state)
{
    struct hls_env *e = *state;
    kth_stream *s = open_small_buffer(e, "/fmp4/master.m3u8", 0, NULL);
    const double times[] = {6.5, 0.1, 4.0, 2.5, 8.0};
    check_seek_times(s, "fmp4/v64", NULL, times, sizeof times / sizeof times[0]);
    assert_int_equal(kts_request_count(e->srv, "/fmp4/v64/seg0.m4s", "HEAD"), 0);
    kth_stream_close(s);

    s = open_small_buffer(e, "/aes/master.m3u8", 0, NULL);
    const double first[] = {6.5};
    check_seek_times(s, "aes/v64", "aes/clear/v64", first, 1);
    /* Nothing of segments 0..2 was asked for: the key and segment 3 place and decode it. */
    assert_int_equal(requests_before(e, "aes/v64", "ts", 3), 0);
    const double times2[] = {0, 7.99, 2.1, 4.5};
    check_seek_times(s, "aes/v64", "aes/clear/v64", times2, sizeof times2 / sizeof times2[0]);
    kth_stream_close(s);
}

/* A time seek made after reading splices the byte space where the reads ended: the bytes read
 * before keep their offsets (a byte seek back reads them again, behind a fence), the old part
 * ends exactly at the splice, and the splice holds the target segment. */
static void test_time_seek_splice_keeps_the_offsets_read_before(void **state)
{
    struct hls_env *e = *state;
    kth_stream *s = open_small_buffer(e, "/fmp4/master.m3u8", 0, NULL);
    bytes all = expected_variant("fmp4/v64", NULL);
    enum { READ = 7000 };
    uint8_t buf[READ];
    read_exact(s, buf, READ);
    assert_memory_equal(buf, all.data, READ);
    kth_seek_anchor a;
    assert_int_equal(kth_stream_seek_time(s, 6.5, &a), KTH_OK);
    assert_int_equal(a.offset, READ); /* one past the last byte handed out */
    bytes want = expected_from_segment("fmp4/v64", NULL, a.segment_index);
    read_exact(s, buf, 3000);
    assert_memory_equal(buf, want.data, 3000);
    /* Back to the bytes read first: the same bytes, behind a fence (another splice). */
    assert_int_equal(kth_stream_seek(s, 100, SEEK_SET, NULL), KTH_OK);
    assert_int_equal(kth_stream_read(s, buf, 10), KTH_ERR_VARIANT_CHANGE);
    assert_int_equal(kth_stream_clear_variant_fence(s), KTH_OK);
    read_exact(s, buf, READ - 100);
    assert_memory_equal(buf, all.data + 100, READ - 100);
    /* The old part ends at the splice: the next byte is the splice's, behind its fence. */
    assert_int_equal(kth_stream_read(s, buf, 10), KTH_ERR_VARIANT_CHANGE);
    assert_int_equal(kth_stream_clear_variant_fence(s), KTH_OK);
    read_exact(s, buf, 100);
    assert_memory_equal(buf, want.data, 100);
    free(want.data);
    free(all.data);
    kth_stream_close(s);
}

/* A fence met by a read ahead (as a demuxer's probe meets it) and left by a byte seek back
 * stays pending: clearing it later succeeds, and a read that comes back to it meets it again at
 * the same offset. */
static void test_fence_met_then_seeked_away_from_stays_pending(void **state)
{
    struct hls_env *e = *state;
    kth_stream *s = open_small_buffer(e, "/ts/master.m3u8", 0, NULL);
    bytes low = expected_variant("ts/v64", NULL);
    uint8_t buf[4096];
    read_exact(s, buf, 100);
    hls_wait_usable(s, 2);
    assert_int_equal(kth_stream_abr_set_manual(s, 2), KTH_OK);
    int64_t n = 0;
    for (int guard = 0; guard < 100000; guard++) {
        n = kth_stream_read(s, buf, sizeof buf);
        if (n <= 0)
            break;
    }
    assert_int_equal(n, KTH_ERR_VARIANT_CHANGE);
    uint64_t fence = kth_stream_position(s);
    assert_true(fence > 100 && fence < low.len);
    /* Back to the start, as a demuxer does after a probe: the old bytes, the fence pending. */
    assert_int_equal(kth_stream_seek(s, 0, SEEK_SET, NULL), KTH_OK);
    read_exact(s, buf, 1000);
    assert_memory_equal(buf, low.data, 1000);
    assert_int_equal(kth_stream_seek(s, (int64_t)fence - 10, SEEK_SET, NULL), KTH_OK);
    read_exact(s, buf, 10);
    assert_memory_equal(buf, low.data + fence - 10, 10);
    assert_int_equal(kth_stream_read(s, buf, sizeof buf), KTH_ERR_VARIANT_CHANGE);
    assert_int_equal(kth_stream_position(s), fence);
    assert_int_equal(kth_stream_seek(s, 500, SEEK_SET, NULL), KTH_OK);
    read_exact(s, buf, 10);
    /* Cleared after the seek: it was still pending. */
    assert_int_equal(kth_stream_clear_variant_fence(s), KTH_OK);
    assert_int_equal(kth_stream_seek(s, (int64_t)fence, SEEK_SET, NULL), KTH_OK);
    n = kth_stream_read(s, buf, 188);
    assert_int_equal(n, 188);
    assert_int_equal(buf[0], 0x47);
    assert_int_equal(kth_stream_current_variant(s), 2);
    free(low.data);
    kth_stream_close(s);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void test_seek_into_cached_audio_is_immediate(void **state)
{
    struct hls_env *e = *state;
    kth_stream *s = hls_open_variant(e, "/ts/master.m3u8", 2);
    bytes all = read_to_end(s, false);
    enum { N = 200 };
    double took[N];
    uint8_t buf[4096];
    for (int i = 0; i < N; i++) {
        double t = (double)((i * 7919) % 2000) / 100.0;
        double t0 = now_ms();
        kth_seek_anchor a;
        assert_int_equal(kth_stream_seek_time(s, t, &a), KTH_OK);
        int64_t n = kth_stream_read(s, buf, sizeof buf);
        took[i] = now_ms() - t0;
        assert_true(n > 0);
        assert_memory_equal(buf, all.data + a.offset, (size_t)n);
    }
    qsort(took, N, sizeof took[0], compare_doubles);
    printf("seek_time + first read into cached audio: median %.3f ms, p99 %.3f ms\n", took[N / 2],
           took[N * 99 / 100]);
    /* Sanitizer builds run several times slower; the figure itself comes from bench_hls. */
    assert_true(took[N / 2] < 5.0);
    free(all.data);
    kth_stream_close(s);
}

static void test_byte_seeks_and_seek_end_are_byte_exact(void **state)
{
    struct hls_env *e = *state;
    kth_stream *s = open_small_buffer(e, "/ts/master.m3u8", 0, NULL);
    bytes want = expected_variant("ts/v64", NULL);
    uint64_t end = 0;
    /* SEEK_END needs every size: they are probed, not downloaded. */
    assert_int_equal(kth_stream_seek(s, 0, SEEK_END, &end), KTH_OK);
    assert_int_equal(end, want.len);
    assert_int_equal(kts_request_count(e->srv, "/ts/v64/seg8.ts", "GET"), 0);
    unsigned seed = 5;
    for (int i = 0; i < 40; i++) {
        seed = seed * 1103515245u + 12345u;
        uint64_t at = (seed >> 8) % want.len;
        assert_int_equal(kth_stream_seek(s, (int64_t)at, SEEK_SET, NULL), KTH_OK);
        uint8_t buf[5000];
        size_t n = want.len - at < sizeof buf ? (size_t)(want.len - at) : sizeof buf;
        read_exact(s, buf, n);
        assert_memory_equal(buf, want.data + at, n);
    }
    assert_int_equal(kth_stream_seek(s, 0, SEEK_END, NULL), KTH_OK);
    uint8_t b;
    assert_int_equal(kth_stream_read(s, &b, 1), 0);
    free(want.data);
    kth_stream_close(s);
}

static void test_offline_replay_is_byte_exact_and_misses_fail_fast(void **state)
{
    struct hls_env *e = *state;
    /* Played once online: a clear and an encrypted presentation, fully; fMP4 only begun. */
    kth_stream *s = hls_open_variant(e, "/ts/master.m3u8", 0);
    bytes ts = read_to_end(s, false);
    kth_stream_close(s);
    s = hls_open_variant(e, "/aes/master.m3u8", 0);
    bytes aes = read_to_end(s, false);
    kth_stream_close(s);
    s = open_small_buffer(e, "/fmp4/master.m3u8", 0, NULL);
    uint8_t buf[4096];
    read_exact(s, buf, sizeof buf);
    kth_stream_close(s);

    kth_cache_unref(e->cache);
    e->cache = hls_open_cache(e->dir, true);
    kts_reset(e->srv);

    s = hls_open_variant(e, "/ts/master.m3u8", 0);
    bytes again = read_to_end(s, false);
    assert_same_bytes(&again, &ts);
    free(again.data);
    kth_stream_close(s);

    s = hls_open_variant(e, "/aes/master.m3u8", 0);
    again = read_to_end(s, false);
    assert_same_bytes(&again, &aes);
    free(again.data);
    kth_stream_close(s);

    /* The fMP4 stream opens (its playlists are cached) and fails at the first missing byte. */
    s = hls_open_variant(e, "/fmp4/master.m3u8", 0);
    int64_t n;
    do {
        n = kth_stream_read(s, buf, sizeof buf);
    } while (n > 0);
    assert_int_equal(n, KTH_ERR_OFFLINE_MISS);
    char detail[1024];
    kth_stream_last_error(s, detail, sizeof detail);
    assert_non_null(strstr(detail, ".m4s"));
    kth_stream_close(s);

    /* Never played: fails at open. */
    kth_stream *none = NULL;
    char err[1024];
    assert_int_equal(hls_try_open(e, "/byterange/index.m3u8", NULL, NULL, &none, err, sizeof err),
                     KTH_ERR_OFFLINE_MISS);
    assert_int_equal(kts_log_count(e->srv), 0); /* offline means no network at all */
    free(ts.data);
    free(aes.data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_seek_time_lands_on_segment_offsets_without_fetching_before, hls_setup,
            hls_teardown),
        cmocka_unit_test_setup_teardown(test_seek_time_in_fmp4_and_encrypted_variants, hls_setup,
                                        hls_teardown),
        cmocka_unit_test_setup_teardown(test_time_seek_splice_keeps_the_offsets_read_before,
                                        hls_setup, hls_teardown),
        cmocka_unit_test_setup_teardown(test_fence_met_then_seeked_away_from_stays_pending,
                                        hls_setup, hls_teardown),
        cmocka_unit_test_setup_teardown(test_seek_into_cached_audio_is_immediate, hls_setup,
                                        hls_teardown),
        cmocka_unit_test_setup_teardown(test_byte_seeks_and_seek_end_are_byte_exact, hls_setup,
                                        hls_teardown),
        cmocka_unit_test_setup_teardown(test_offline_replay_is_byte_exact_and_misses_fail_fast,
                                        hls_setup, hls_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
