/*
 * test_bad_bodies.c — whole streams (progressive files and HLS) against servers that answer
 * with something other than the audio: a body gzip-encoded although nobody asked for it.
 * Each must fail the stream with a message naming the URL and what was wrong, never hand the
 * bytes to the reader as audio; what is decoded or fetched again must be byte exact.
 */
#include "test_hls_support.h"

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

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, hls_setup, hls_teardown)
        T(test_gzip_mp3_fails_instead_of_playing_compressed_bytes),
        T(test_gzip_ts_segment_fails_the_stream),
        T(test_gzip_fmp4_segment_fails_the_stream),
        T(test_gzip_playlists_and_key_are_decoded),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
