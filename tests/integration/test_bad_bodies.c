/*
 * test_bad_bodies.c — whole streams (progressive files and HLS) against servers that answer
 * with something other than the audio: a body gzip-encoded although nobody asked for it, an
 * HTML page (by Content-Type or by its bytes), a few bytes of junk, and a body that trickles
 * while the reader waits. Each bad body must fail the stream with a message naming the URL and
 * what was wrong, never reach the reader as audio nor stay in the cache; a trickle must be
 * given up and resumed within a bounded time; what is decoded or fetched again must be byte
 * exact.
 */
#include "test_hls_support.h"

#include <time.h>

#define SEED 21

/* Opens a progressive file at path through the env's downloader and cache. */
static kth_stream *open_file(struct hls_env *e, const char *path, int64_t timeout_ms)
{
    char url[512];
    kts_url(e->srv, path, url, sizeof url);
    kth_stream_options so;
    kth_stream_options_init(&so);
    so.downloader = e->d;
    so.cache = e->cache;
    so.read_timeout_ms = timeout_ms;
    kth_stream *s = NULL;
    char err[512];
    kth_status st = kth_stream_open(url, &so, &s, err, sizeof err);
    if (st != KTH_OK)
        fail_msg("open %s: %s (%s)", url, kth_strerror(st), err);
    return s;
}

/* Reads until the stream fails; checks the status and that the message names both needles.
 * Returns the bytes read before the failure (caller frees). */
static bytes expect_failure(kth_stream *s, kth_status status, const char *needle1,
                            const char *needle2)
{
    bytes got = {0};
    uint8_t buf[16384];
    int64_t n;
    for (int guard = 0; guard < 100000; guard++) {
        n = kth_stream_read(s, buf, sizeof buf);
        if (n <= 0)
            break;
        bytes_append(&got, buf, (size_t)n);
    }
    char detail[1024] = "";
    kth_stream_last_error(s, detail, sizeof detail);
    if (n != status)
        fail_msg("read ended with %lld (%s), not %s: %s", (long long)n,
                 n <= 0 ? kth_strerror((int)n) : "bytes", kth_strerror(status), detail);
    if (needle1 && !strstr(detail, needle1))
        fail_msg("'%s' does not name '%s'", detail, needle1);
    if (needle2 && !strstr(detail, needle2))
        fail_msg("'%s' does not name '%s'", detail, needle2);
    return got;
}

/* The bytes of the first `count` files of a fixture variant, concatenated. */
static bytes variant_prefix(const char *dir, size_t count)
{
    variant_files v = list_variant(dir);
    bytes all = {0};
    for (size_t i = 0; i < count && i < v.count; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s/%s", FIXTURES, dir, v.names[i]);
        bytes b = read_file(path);
        bytes_append(&all, b.data, b.len);
        free(b.data);
    }
    return all;
}

/* What was read before a failure is a prefix of what should have been read. */
static void assert_prefix_of(const bytes *got, const bytes *want)
{
    assert_true(got->len <= want->len);
    if (got->len)
        assert_memory_equal(got->data, want->data, got->len);
}

/* ---- Content-Encoding nobody asked for ------------------------------------------------------ */

static void test_gzip_mp3_fails_instead_of_playing_compressed_bytes(void **state)
{
    struct hls_env *e = *state;
    assert_int_equal(kts_add_synth(e->srv, "/song.mp3", 400000, SEED, NULL), KTH_OK);
    kts_add_fault(e->srv, "/song.mp3", &(kts_fault){.kind = KTS_FAULT_GZIP});
    kth_stream *s = open_file(e, "/song.mp3", 10000);
    bytes got = expect_failure(s, KTH_ERR_FORMAT, "/song.mp3", "Content-Encoding gzip");
    assert_int_equal(got.len, 0);
    kth_stream_close(s);
    free(got.data);
}

/* A segment served gzip-encoded fails the stream at that segment; the segments before it play
 * byte exact. */
static void gzip_segment_fails(struct hls_env *e, const char *master, const char *variant_dir,
                               const char *segment_path, size_t files_before)
{
    kts_add_fault(e->srv, segment_path, &(kts_fault){.kind = KTS_FAULT_GZIP});
    kth_stream *s = hls_open_variant(e, master, 0);
    bytes got = expect_failure(s, KTH_ERR_FORMAT, segment_path, "Content-Encoding gzip");
    bytes want = variant_prefix(variant_dir, files_before);
    assert_prefix_of(&got, &want);
    kth_stream_close(s);
    free(got.data);
    free(want.data);
}

static void test_gzip_ts_segment_fails_the_stream(void **state)
{
    gzip_segment_fails(*state, "/ts/master.m3u8", "ts/v64", "/ts/v64/seg1.ts", 1);
}

static void test_gzip_fmp4_segment_fails_the_stream(void **state)
{
    gzip_segment_fails(*state, "/fmp4/master.m3u8", "fmp4/v64", "/fmp4/v64/seg1.m4s", 2);
}

/* Playlists and keys are whole bodies: a server that gzips them unasked is decoded, and the
 * presentation plays byte exact. */
static void test_gzip_playlists_and_key_are_decoded(void **state)
{
    struct hls_env *e = *state;
    const char *paths[] = {"/aes/master.m3u8", "/aes/v64/index.m3u8", "/aes/key.bin"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++)
        kts_add_fault(e->srv, paths[i], &(kts_fault){.kind = KTS_FAULT_GZIP});
    kth_stream *s = hls_open_variant(e, "/aes/master.m3u8", 0);
    bytes got = read_to_end(s, false);
    bytes want = expected_variant("aes/v64", "aes/clear/v64");
    assert_same_bytes(&got, &want);
    kth_stream_close(s);
    free(got.data);
    free(want.data);
}

/* ---- segments that are not audio ---------------------------------------------------------- */

static const char html_page[] =
    "<!DOCTYPE html>\n<html><head><title>Sign in</title></head>\n"
    "<body><form action=\"/login\"><input name=\"user\"></form></body></html>\n";
static const uint8_t junk16[16] = {0x3a, 0x9f, 0x12, 0x00, 0x7e, 0x55, 0xc3, 0x01,
                                   0x99, 0x42, 0x10, 0xee, 0x08, 0x6d, 0x21, 0xb4};

/* Serves `path` with other content (same Content-Type) on its first request only. */
static void replace_once(struct hls_env *e, const char *path, const void *body, size_t len)
{
    kts_add_fault(
        e->srv, path,
        &(kts_fault){
            .kind = KTS_FAULT_CHANGE_BODY, .body = body, .body_len = len, .last_request = 1});
}

/* Plays variant 0 of master, which must fail at `bad_path` (status, message naming it and
 * `what`) after the first `files_before` files of `dir` at most; then, with the server
 * answering properly, the same cache plays the whole variant byte exact, `bad_path` fetched
 * again (the rejected body was not kept). */
static void bad_entry_fails_then_refetches(struct hls_env *e, const char *master, const char *dir,
                                           const char *clear_dir, const char *bad_path,
                                           size_t files_before, kth_status status, const char *what)
{
    kth_stream *s = hls_open_variant(e, master, 0);
    bytes got = expect_failure(s, status, bad_path, what);
    bytes before = variant_prefix(clear_dir ? clear_dir : dir, files_before);
    assert_prefix_of(&got, &before);
    kth_stream_close(s);
    free(got.data);
    free(before.data);
    unsigned asked = kts_request_count(e->srv, bad_path, "GET");
    assert_true(asked >= 1);

    kts_clear_faults(e->srv, NULL);
    s = hls_open_variant(e, master, 0);
    got = read_to_end(s, false);
    bytes want = expected_variant(dir, clear_dir);
    assert_same_bytes(&got, &want);
    kth_stream_close(s);
    assert_int_equal(kts_request_count(e->srv, bad_path, "GET"), asked + 1);
    free(got.data);
    free(want.data);
}

static void test_html_page_as_ts_segment_fails_and_is_not_cached(void **state)
{
    struct hls_env *e = *state;
    replace_once(e, "/ts/v64/seg1.ts", html_page, strlen(html_page));
    bad_entry_fails_then_refetches(e, "/ts/master.m3u8", "ts/v64", NULL, "/ts/v64/seg1.ts", 1,
                                   KTH_ERR_FORMAT, "HTML page");
}

static void test_text_html_fmp4_segment_fails_and_is_not_cached(void **state)
{
    struct hls_env *e = *state;
    kts_add_fault(e->srv, "/fmp4/v64/seg1.m4s",
                  &(kts_fault){.kind = KTS_FAULT_HTML_200, .last_request = 1});
    bad_entry_fails_then_refetches(e, "/fmp4/master.m3u8", "fmp4/v64", NULL, "/fmp4/v64/seg1.m4s",
                                   2, KTH_ERR_FORMAT, "text/html");
}

static void test_sixteen_bytes_of_junk_as_segment_fail(void **state)
{
    struct hls_env *e = *state;
    replace_once(e, "/ts/v64/seg2.ts", junk16, sizeof junk16);
    bad_entry_fails_then_refetches(e, "/ts/master.m3u8", "ts/v64", NULL, "/ts/v64/seg2.ts", 2,
                                   KTH_ERR_FORMAT, "16 bytes starting with 3a 9f");
}

/* Packed audio (ADTS frames) where an fMP4 fragment belongs is audio, but not what the init
 * section's decoder can read. */
static void test_fmp4_fragment_that_is_no_fragment_fails(void **state)
{
    struct hls_env *e = *state;
    uint8_t adts[600];
    memset(adts, 0, sizeof adts);
    for (size_t off = 0; off < sizeof adts; off += 200) {
        adts[off] = 0xFF;
        adts[off + 1] = 0xF1;                       /* MPEG-4, no CRC */
        adts[off + 2] = (uint8_t)(1 << 6 | 4 << 2); /* LC, 44.1 kHz */
        adts[off + 3] = (uint8_t)(2 << 6);          /* stereo, frame length 200: */
        adts[off + 4] = (uint8_t)(200 >> 3);
        adts[off + 5] = (uint8_t)((200 & 7) << 5 | 0x1F);
        adts[off + 6] = 0xFC;
    }
    replace_once(e, "/fmp4/v64/seg2.m4s", adts, sizeof adts);
    bad_entry_fails_then_refetches(e, "/fmp4/master.m3u8", "fmp4/v64", NULL, "/fmp4/v64/seg2.m4s",
                                   3, KTH_ERR_FORMAT,
                                   "expected an fMP4 fragment (or MPEG-TS), got ADTS");
}

static void test_init_section_that_is_text_fails(void **state)
{
    struct hls_env *e = *state;
    static const char text[] = "Not Found\n";
    replace_once(e, "/fmp4/v64/init.mp4", text, strlen(text));
    bad_entry_fails_then_refetches(e, "/fmp4/master.m3u8", "fmp4/v64", NULL, "/fmp4/v64/init.mp4",
                                   0, KTH_ERR_FORMAT, "text \"Not Found");
}

/* An encrypted segment answered with an HTML page is refused as a page, before decryption
 * could blame the key; junk is caught after decryption. Neither is kept. */
static void test_html_page_as_encrypted_segment_fails(void **state)
{
    struct hls_env *e = *state;
    replace_once(e, "/aes/v64/seg1.ts", html_page, strlen(html_page));
    bad_entry_fails_then_refetches(e, "/aes/master.m3u8", "aes/v64", "aes/clear/v64",
                                   "/aes/v64/seg1.ts", 1, KTH_ERR_FORMAT, "HTML page");
}

static void test_junk_as_encrypted_segment_fails(void **state)
{
    struct hls_env *e = *state;
    replace_once(e, "/aes/v64/seg1.ts", junk16, sizeof junk16);
    bad_entry_fails_then_refetches(e, "/aes/master.m3u8", "aes/v64", "aes/clear/v64",
                                   "/aes/v64/seg1.ts", 1, KTH_ERR_DECRYPT, "seg1.ts");
}

/* ---- progressive files that are pages ----------------------------------------------------- */

/* Reads the file at path to its end and checks it against the pattern of SEED; fails when that
 * takes more than limit_s seconds (a read that keeps getting a few bytes never times out). */
static void file_plays_exact_within(struct hls_env *e, const char *path, uint64_t size,
                                    double limit_s)
{
    kth_stream *s = open_file(e, path, 10000);
    static uint8_t buf[65536];
    uint64_t pos = 0;
    int64_t n;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    double start = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
    while ((n = kth_stream_read(s, buf, sizeof buf)) > 0) {
        assert_int_equal(kts_synth_check(SEED, pos, buf, (size_t)n), (size_t)n);
        pos += (uint64_t)n;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        if ((double)ts.tv_sec + (double)ts.tv_nsec / 1e9 - start > limit_s)
            fail_msg("%s: only %llu bytes after %.1f s", path, (unsigned long long)pos, limit_s);
    }
    assert_int_equal(n, 0);
    assert_int_equal(pos, size);
    kth_stream_close(s);
}

static void file_plays_exact(struct hls_env *e, const char *path, uint64_t size)
{
    file_plays_exact_within(e, path, size, 60.0);
}

static void test_text_html_progressive_file_fails_and_is_not_cached(void **state)
{
    struct hls_env *e = *state;
    assert_int_equal(kts_add_synth(e->srv, "/a.mp3", 300000, SEED, NULL), KTH_OK);
    kts_add_fault(e->srv, "/a.mp3", &(kts_fault){.kind = KTS_FAULT_HTML_200, .last_request = 1});
    kth_stream *s = open_file(e, "/a.mp3", 10000);
    bytes got = expect_failure(s, KTH_ERR_FORMAT, "/a.mp3", "text/html");
    assert_int_equal(got.len, 0);
    kth_stream_close(s);
    free(got.data);
    file_plays_exact(e, "/a.mp3", 300000);
    assert_int_equal(kts_request_count(e->srv, "/a.mp3", "GET"), 2);
}

/* The page comes as audio/mpeg: its bytes give it away. */
static void test_html_page_as_progressive_file_fails(void **state)
{
    struct hls_env *e = *state;
    assert_int_equal(kts_add_synth(e->srv, "/b.mp3", 300000, SEED, NULL), KTH_OK);
    replace_once(e, "/b.mp3", html_page, strlen(html_page));
    kth_stream *s = open_file(e, "/b.mp3", 10000);
    bytes got = expect_failure(s, KTH_ERR_FORMAT, "/b.mp3", "HTML");
    assert_int_equal(got.len, 0);
    kth_stream_close(s);
    free(got.data);
    file_plays_exact(e, "/b.mp3", 300000);
}

/* ---- trickles a reader waits on ---------------------------------------------------------- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Replaces the env's downloader by one that judges pace over 1 s windows and wants 4000 B/s
 * for a waiting reader. */
static void use_quick_judge(struct hls_env *e)
{
    kth_downloader_unref(e->d);
    kth_downloader_options o;
    kth_downloader_options_init(&o);
    o.retry_base_ms = 5;
    o.retry_cap_ms = 50;
    o.stall_timeout_ms = 1000;
    o.waiting_min_bytes_per_second = 4000;
    char err[256];
    if (kth_downloader_new(&o, &e->d, err, sizeof err) != KTH_OK)
        fail_msg("downloader: %s", err);
}

/* The file trickles at 100 B/s (its 100 kB would take 17 minutes) while the reader waits:
 * given up after about a window and resumed, the file plays byte exact in seconds. */
static void test_trickling_file_is_resumed_for_a_waiting_reader(void **state)
{
    struct hls_env *e = *state;
    use_quick_judge(e);
    assert_int_equal(kts_add_synth(e->srv, "/trickle.mp3", 100000, SEED, NULL), KTH_OK);
    kts_add_fault(e->srv, "/trickle.mp3",
                  &(kts_fault){.kind = KTS_FAULT_RATE, .bytes = 100, .last_request = 1});
    double t0 = now_s();
    file_plays_exact_within(e, "/trickle.mp3", 100000, 8.0);
    printf("trickling file played in %.2f s\n", now_s() - t0);
    kts_log_entry le;
    assert_int_equal(kts_log_find(e->srv, "/trickle.mp3", 2, &le), KTH_OK);
    assert_true(strncmp(le.range, "bytes=", 6) == 0 && strcmp(le.range, "bytes=0-") != 0);
}

/* A segment of the only variant the stream may play (manual choice: no switch down) trickles
 * while the reader waits for it: given up and resumed, the variant plays byte exact. */
static void test_trickling_segment_is_resumed_for_a_waiting_reader(void **state)
{
    struct hls_env *e = *state;
    use_quick_judge(e);
    kts_add_fault(e->srv, "/ts/v64/seg2.ts",
                  &(kts_fault){.kind = KTS_FAULT_RATE, .bytes = 100, .last_request = 1});
    kth_stream *s = hls_open_variant(e, "/ts/master.m3u8", 0);
    double t0 = now_s();
    bytes got = {0};
    uint8_t buf[16384];
    int64_t n;
    while ((n = kth_stream_read(s, buf, sizeof buf)) > 0) {
        bytes_append(&got, buf, (size_t)n);
        if (now_s() - t0 > 10.0)
            fail_msg("only %zu bytes after 10 s", got.len);
    }
    assert_int_equal(n, 0);
    printf("variant with a trickling segment played in %.2f s\n", now_s() - t0);
    bytes want = expected_variant("ts/v64", NULL);
    assert_same_bytes(&got, &want);
    assert_int_equal(kts_request_count(e->srv, "/ts/v64/seg2.ts", "GET"), 2);
    kth_stream_close(s);
    free(got.data);
    free(want.data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, hls_setup, hls_teardown)
        T(test_gzip_mp3_fails_instead_of_playing_compressed_bytes),
        T(test_gzip_ts_segment_fails_the_stream),
        T(test_gzip_fmp4_segment_fails_the_stream),
        T(test_gzip_playlists_and_key_are_decoded),
        T(test_html_page_as_ts_segment_fails_and_is_not_cached),
        T(test_text_html_fmp4_segment_fails_and_is_not_cached),
        T(test_sixteen_bytes_of_junk_as_segment_fail),
        T(test_fmp4_fragment_that_is_no_fragment_fails),
        T(test_init_section_that_is_text_fails),
        T(test_html_page_as_encrypted_segment_fails),
        T(test_junk_as_encrypted_segment_fails),
        T(test_text_html_progressive_file_fails_and_is_not_cached),
        T(test_html_page_as_progressive_file_fails),
        T(test_trickling_file_is_resumed_for_a_waiting_reader),
        T(test_trickling_segment_is_resumed_for_a_waiting_reader),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
