/*
 * test_long_urls.c — long URLs end to end: HLS segment URIs that share a long prefix and differ
 * only in their last byte (2,000 and 20,000 bytes, and at the playlist parser's 64 KiB line
 * limit), byte ranges of one long URI, long AES-128 key URIs (and a key hook that rewrites to a
 * long URL), a playlist at a long URL whose relative URIs resolve against it, long variant
 * URIs, a line past the limit; and a progressive file whose URL carries a 20,000-byte query
 * string. Each stream plays byte-exact online and again offline from the cache: a URL, cache
 * key or path cut short would make two resources one (the second plays the first's bytes) or
 * fetch the wrong URL.
 */
#include "test_hls_support.h"

#include <openssl/evp.h>

/* A malloc'd string from a printf format (fails the test when out of memory). */
static char *str_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *str_printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    assert_true(n >= 0);
    char *s = malloc((size_t)n + 1);
    assert_non_null(s);
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

/* An absolute URL on the server exactly `len` bytes long: base + dir + 'x'... + `last`. */
static char *url_of_length(struct hls_env *e, const char *dir, size_t len, char last)
{
    const char *base = kts_base_url(e->srv);
    size_t head = strlen(base) + strlen(dir);
    assert_true(len > head + 1);
    char *url = malloc(len + 1);
    assert_non_null(url);
    memcpy(url, base, strlen(base));
    memcpy(url + strlen(base), dir, strlen(dir));
    memset(url + head, 'x', len - head - 1);
    url[len - 1] = last;
    url[len] = '\0';
    return url;
}

/* The path part of a URL made by url_of_length (borrowed). */
static const char *path_of(struct hls_env *e, const char *url)
{
    return url + strlen(kts_base_url(e->srv));
}

static kth_status try_open_url(struct hls_env *e, const char *url, const kth_hls_options *hls,
                               kth_stream **out, char *err, size_t errlen)
{
    kth_stream_options opts;
    kth_stream_options_init(&opts);
    opts.read_timeout_ms = 20000; /* hang guard only */
    opts.bus = e->bus;
    opts.downloader = e->d;
    opts.cache = e->cache;
    opts.hls = hls;
    return kth_stream_open(url, &opts, out, err, errlen);
}

/* Plays the stream at url to its end. */
static bytes play_url(struct hls_env *e, const char *url, const kth_hls_options *hls)
{
    kth_stream *s = NULL;
    char err[1024] = "";
    kth_status st = try_open_url(e, url, hls, &s, err, sizeof err);
    if (st != KTH_OK)
        fail_msg("open: %s (%s)", kth_strerror(st), err);
    bytes got = read_to_end(s, false);
    kth_stream_close(s);
    return got;
}

/* Reopens the test's cache offline (no network from here on). */
static void go_offline(struct hls_env *e)
{
    kth_cache_unref(e->cache);
    e->cache = hls_open_cache(e->dir, true);
    kts_reset(e->srv);
}

/* Checks that got holds seed 1's first n0 bytes followed by seed 2's first n1 bytes. */
static void assert_two_synth(const bytes *got, size_t n0, size_t n1)
{
    if (got->len != n0 + n1)
        fail_msg("got %zu bytes, want %zu + %zu", got->len, n0, n1);
    assert_int_equal(kts_ts_synth_check(1, 0, got->data, n0), n0);
    assert_int_equal(kts_ts_synth_check(2, 0, got->data + n0, n1), n1);
}

#define SEG0_BYTES 5000
#define SEG1_BYTES 7000

/* Serves /long/index.m3u8: a VOD playlist of segments u0 and u1. */
static void serve_two_segments(struct hls_env *e, const char *u0, const char *u1)
{
    char *pl = str_printf("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n"
                          "#EXT-X-PLAYLIST-TYPE:VOD\n#EXTINF:2.0,\n%s\n#EXTINF:2.0,\n%s\n"
                          "#EXT-X-ENDLIST\n",
                          u0, u1);
    kts_add_body(e->srv, "/long/index.m3u8", pl, strlen(pl), NULL);
    free(pl);
}

/* A media playlist whose two segment URIs are `len` bytes long and differ only in their last
 * byte: seg0 then seg1 online, and again offline. */
static void play_two_segments_of_length(struct hls_env *e, size_t len)
{
    char *u0 = url_of_length(e, "/long/", len, '0');
    char *u1 = url_of_length(e, "/long/", len, '1');
    assert_int_equal(strlen(u0), len);
    assert_int_equal(memcmp(u0, u1, len - 1), 0);
    assert_int_equal(kts_add_ts_synth(e->srv, path_of(e, u0), SEG0_BYTES, 1, NULL), KTH_OK);
    assert_int_equal(kts_add_ts_synth(e->srv, path_of(e, u1), SEG1_BYTES, 2, NULL), KTH_OK);
    serve_two_segments(e, u0, u1);
    char url[512];
    kts_url(e->srv, "/long/index.m3u8", url, sizeof url);

    bytes got = play_url(e, url, NULL);
    assert_two_synth(&got, SEG0_BYTES, SEG1_BYTES);
    assert_int_equal(kts_request_count(e->srv, path_of(e, u1), "GET"), 1);
    free(got.data);

    go_offline(e);
    got = play_url(e, url, NULL);
    assert_two_synth(&got, SEG0_BYTES, SEG1_BYTES);
    assert_int_equal(kts_log_count(e->srv), 0);
    free(got.data);
    free(u0);
    free(u1);
}

static void test_2000_byte_segment_uris_differing_in_the_last_byte_play_both(void **state)
{
    play_two_segments_of_length(*state, 2000);
}

static void test_20000_byte_segment_uris_differing_in_the_last_byte_play_both(void **state)
{
    play_two_segments_of_length(*state, 20000);
}

/* The longest line the parser takes (64 KiB) is a URI that works end to end. */
static void test_segment_uris_at_the_line_limit_play_both(void **state)
{
    play_two_segments_of_length(*state, 64 * 1024);
}

/* One byte past the line limit: a clear limit error naming the line, nothing fetched. */
static void test_segment_uri_past_the_line_limit_is_a_limit_error(void **state)
{
    struct hls_env *e = *state;
    char *u0 = url_of_length(e, "/long/", 64 * 1024 + 1, '0');
    char *pl = str_printf("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n"
                          "#EXT-X-PLAYLIST-TYPE:VOD\n#EXTINF:2.0,\n%s\n#EXT-X-ENDLIST\n",
                          u0);
    kts_add_body(e->srv, "/long/index.m3u8", pl, strlen(pl), NULL);
    char url[512];
    kts_url(e->srv, "/long/index.m3u8", url, sizeof url);
    kth_stream *s = NULL;
    char err[1024] = "";
    assert_int_equal(try_open_url(e, url, NULL, &s, err, sizeof err), KTH_ERR_LIMIT);
    assert_null(s);
    assert_non_null(strstr(err, "line 6"));
    assert_non_null(strstr(err, "65536"));
    assert_int_equal(kts_request_count(e->srv, path_of(e, u0), NULL), 0);
    free(pl);
    free(u0);
}

/* Two byte ranges of one 2,000-byte URI are two resources (the range is part of the key). */
static void test_byte_ranges_of_one_long_uri_play_both(void **state)
{
    struct hls_env *e = *state;
    char *u = url_of_length(e, "/long/", 2000, 'r');
    uint8_t *both = malloc(SEG0_BYTES + SEG1_BYTES);
    assert_non_null(both);
    kts_ts_synth_fill(1, 0, both, SEG0_BYTES);
    kts_ts_synth_fill(2, 0, both + SEG0_BYTES, SEG1_BYTES);
    kts_add_body(e->srv, path_of(e, u), both, SEG0_BYTES + SEG1_BYTES, NULL);
    char *pl = str_printf("#EXTM3U\n#EXT-X-VERSION:4\n#EXT-X-TARGETDURATION:2\n"
                          "#EXT-X-PLAYLIST-TYPE:VOD\n"
                          "#EXTINF:2.0,\n#EXT-X-BYTERANGE:%d@0\n%s\n"
                          "#EXTINF:2.0,\n#EXT-X-BYTERANGE:%d@%d\n%s\n#EXT-X-ENDLIST\n",
                          SEG0_BYTES, u, SEG1_BYTES, SEG0_BYTES, u);
    kts_add_body(e->srv, "/long/ranges.m3u8", pl, strlen(pl), NULL);
    char url[512];
    kts_url(e->srv, "/long/ranges.m3u8", url, sizeof url);
    bytes got = play_url(e, url, NULL);
    assert_two_synth(&got, SEG0_BYTES, SEG1_BYTES);
    free(got.data);
    go_offline(e);
    got = play_url(e, url, NULL);
    assert_two_synth(&got, SEG0_BYTES, SEG1_BYTES);
    free(got.data);
    free(pl);
    free(both);
    free(u);
}

/* A playlist at a 3,000-byte URL: its relative segment URIs resolve against all of it, online
 * and from the cached copy (which stores that URL). */
static void test_relative_uris_resolve_against_a_long_playlist_url(void **state)
{
    struct hls_env *e = *state;
    char *dir = url_of_length(e, "/long/", 3000, '/');
    char *url = str_printf("%sindex.m3u8", dir);
    char *s0 = str_printf("%sseg0.ts", path_of(e, dir));
    char *s1 = str_printf("%sseg1.ts", path_of(e, dir));
    const char *pl = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n"
                     "#EXT-X-PLAYLIST-TYPE:VOD\n#EXTINF:2.0,\nseg0.ts\n#EXTINF:2.0,\nseg1.ts\n"
                     "#EXT-X-ENDLIST\n";
    kts_add_body(e->srv, path_of(e, url), pl, strlen(pl), NULL);
    kts_add_ts_synth(e->srv, s0, SEG0_BYTES, 1, NULL);
    kts_add_ts_synth(e->srv, s1, SEG1_BYTES, 2, NULL);
    bytes got = play_url(e, url, NULL);
    assert_two_synth(&got, SEG0_BYTES, SEG1_BYTES);
    free(got.data);
    go_offline(e);
    got = play_url(e, url, NULL);
    assert_two_synth(&got, SEG0_BYTES, SEG1_BYTES);
    free(got.data);
    free(s0);
    free(s1);
    free(url);
    free(dir);
}

/* A master whose two variant URIs are 3,000 bytes and differ only in the last byte: the ladder
 * reports each URI whole, and each variant plays its own bytes. */
static void test_long_variant_uris_are_reported_whole_and_play_their_own_bytes(void **state)
{
    struct hls_env *e = *state;
    char *v[2], *seg[2], *media[2];
    for (int i = 0; i < 2; i++) {
        v[i] = url_of_length(e, "/long/", 3000, (char)('0' + i));
        seg[i] = str_printf("/long/v%d.ts", i);
        kts_add_ts_synth(e->srv, seg[i], i ? SEG1_BYTES : SEG0_BYTES, (uint64_t)i + 1, NULL);
        media[i] = str_printf("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n"
                              "#EXT-X-PLAYLIST-TYPE:VOD\n#EXTINF:2.0,\n%s%s\n#EXT-X-ENDLIST\n",
                              kts_base_url(e->srv), seg[i]);
        kts_add_body(e->srv, path_of(e, v[i]), media[i], strlen(media[i]),
                     "application/vnd.apple.mpegurl");
    }
    char *master = str_printf("#EXTM3U\n"
                              "#EXT-X-STREAM-INF:BANDWIDTH=100000,CODECS=\"mp4a.40.2\"\n%s\n"
                              "#EXT-X-STREAM-INF:BANDWIDTH=200000,CODECS=\"mp4a.40.2\"\n%s\n",
                              v[0], v[1]);
    kts_add_body(e->srv, "/long/master.m3u8", master, strlen(master), NULL);
    char url[512];
    kts_url(e->srv, "/long/master.m3u8", url, sizeof url);
    for (int round = 0; round < 2; round++) {
        kth_hls_options h;
        kth_hls_options_init(&h);
        h.fixed_start = true;
        h.initial_variant = 1;
        h.start_manual = true;
        kth_stream *s = NULL;
        char err[1024] = "";
        if (try_open_url(e, url, &h, &s, err, sizeof err) != KTH_OK)
            fail_msg("open: %s", err);
        kth_hls_variant_info vi;
        for (int i = 0; i < 2; i++) {
            assert_int_equal(kth_stream_variant_info(s, i, &vi), KTH_OK);
            assert_string_equal(vi.uri, v[i]);
        }
        bytes got = read_to_end(s, false);
        if (got.len != SEG1_BYTES)
            fail_msg("got %zu bytes, want %d", got.len, SEG1_BYTES);
        assert_int_equal(kts_ts_synth_check(2, 0, got.data, SEG1_BYTES), SEG1_BYTES);
        free(got.data);
        kth_stream_close(s);
        if (round == 0)
            go_offline(e);
    }
    for (int i = 0; i < 2; i++) {
        free(v[i]);
        free(seg[i]);
        free(media[i]);
    }
    free(master);
}

/* Errors about a playlist at a 20,000-byte URL keep their cause: the URL is shown by its head
 * and tail, the rest of the sentence whole. */
static void test_errors_about_long_playlist_urls_keep_their_cause(void **state)
{
    struct hls_env *e = *state;
    char *base = url_of_length(e, "/long/", 20000, 'm');
    char *missing = str_printf("%s.m3u8", base);
    kth_stream *s = NULL;
    char err[512] = "";
    assert_int_equal(try_open_url(e, missing, NULL, &s, err, sizeof err), KTH_ERR_NOT_FOUND);
    assert_non_null(strstr(err, "HTTP 404"));
    assert_non_null(strstr(err, "xxxm.m3u8")); /* the URL's end, where signed URLs differ */

    char *pl_url = str_printf("%s/index.m3u8", base);
    char *seg = url_of_length(e, "/long/", 64 * 1024 + 1, '0');
    char *pl = str_printf("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n"
                          "#EXT-X-PLAYLIST-TYPE:VOD\n#EXTINF:2.0,\n%s\n#EXT-X-ENDLIST\n",
                          seg);
    kts_add_body(e->srv, path_of(e, pl_url), pl, strlen(pl), NULL);
    err[0] = '\0';
    assert_int_equal(try_open_url(e, pl_url, NULL, &s, err, sizeof err), KTH_ERR_LIMIT);
    assert_non_null(strstr(err, "line 6"));
    free(pl);
    free(seg);
    free(pl_url);
    free(missing);
    free(base);
}

/* A segment at a 20,000-byte URI that answers 404: the stream's error names the status and the
 * URI's end, after the exact bytes of the segment before it. */
static void test_segment_failures_at_long_uris_keep_their_cause(void **state)
{
    struct hls_env *e = *state;
    char *u0 = url_of_length(e, "/long/", 20000, '0');
    char *u1 = url_of_length(e, "/long/", 20000, '1'); /* not on the server */
    assert_int_equal(kts_add_ts_synth(e->srv, path_of(e, u0), SEG0_BYTES, 1, NULL), KTH_OK);
    serve_two_segments(e, u0, u1);
    char url[512];
    kts_url(e->srv, "/long/index.m3u8", url, sizeof url);
    kth_stream *s = NULL;
    char err[1024] = "";
    if (try_open_url(e, url, NULL, &s, err, sizeof err) != KTH_OK)
        fail_msg("open: %s", err);
    uint8_t buf[4096];
    size_t got = 0;
    int64_t n;
    while ((n = kth_stream_read(s, buf, sizeof buf)) > 0) {
        assert_true(got + (size_t)n <= SEG0_BYTES);
        assert_int_equal(kts_ts_synth_check(1, got, buf, (size_t)n), (size_t)n);
        got += (size_t)n;
    }
    assert_int_equal(n, KTH_ERR_NOT_FOUND);
    assert_int_equal(got, SEG0_BYTES);
    size_t need = kth_stream_last_error(s, NULL, 0);
    char *detail = malloc(need + 1);
    assert_non_null(detail);
    kth_stream_last_error(s, detail, need + 1);
    printf("%zu-byte message: %s\n", need, detail);
    assert_non_null(strstr(detail, "404"));
    const char *named = strstr(detail, "xxx1"); /* the URI's end, where signed URLs differ */
    assert_non_null(named);
    assert_null(strstr(named + 1, "xxx1")); /* named once, not once per layer */
    free(detail);
    kth_stream_close(s);
    free(u0);
    free(u1);
}

/* --- AES-128 keys at long URIs ------------------------------------------------------------ */

static bytes encrypt_cbc(const bytes *clear, const uint8_t key[16], const uint8_t iv[16])
{
    bytes out = {.data = malloc(clear->len + 16)};
    assert_non_null(out.data);
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    assert_non_null(c);
    int n1 = 0, n2 = 0;
    assert_int_equal(EVP_EncryptInit_ex(c, EVP_aes_128_cbc(), NULL, key, iv), 1);
    assert_int_equal(EVP_EncryptUpdate(c, out.data, &n1, clear->data, (int)clear->len), 1);
    assert_int_equal(EVP_EncryptFinal_ex(c, out.data + n1, &n2), 1);
    EVP_CIPHER_CTX_free(c);
    out.len = (size_t)(n1 + n2);
    return out;
}

/* Serves /long/enc/index.m3u8: two TS segments encrypted with two keys whose URIs (k[0], k[1],
 * malloc'd) are `len` bytes and differ only in the last byte. Returns the expected plaintext. */
static bytes add_two_key_playlist(struct hls_env *e, size_t len, char *k[2])
{
    static const char *const clear_names[2] = {"seg0.ts", "seg1.ts"};
    bytes want = {0};
    for (int i = 0; i < 2; i++) {
        uint8_t key[16], iv[16];
        for (int j = 0; j < 16; j++) {
            key[j] = (uint8_t)(0x11 * (i + 1) + j);
            iv[j] = (uint8_t)j;
        }
        k[i] = url_of_length(e, "/long/key/", len, (char)('a' + i));
        kts_add_body(e->srv, path_of(e, k[i]), key, 16, "application/octet-stream");
        char *path = str_printf("%s/aes/clear/v64/%s", FIXTURES, clear_names[i]);
        bytes clear = read_file(path);
        bytes enc = encrypt_cbc(&clear, key, iv);
        char *seg = str_printf("/long/enc/%s", clear_names[i]);
        kts_add_body(e->srv, seg, enc.data, enc.len, NULL);
        bytes_append(&want, clear.data, clear.len);
        free(seg);
        free(enc.data);
        free(clear.data);
        free(path);
    }
    char *pl = str_printf("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:3\n"
                          "#EXT-X-PLAYLIST-TYPE:VOD\n"
                          "#EXT-X-KEY:METHOD=AES-128,URI=\"%s\","
                          "IV=0x000102030405060708090a0b0c0d0e0f\n#EXTINF:2.0,\nseg0.ts\n"
                          "#EXT-X-KEY:METHOD=AES-128,URI=\"%s\","
                          "IV=0x000102030405060708090a0b0c0d0e0f\n#EXTINF:2.0,\nseg1.ts\n"
                          "#EXT-X-ENDLIST\n",
                          k[0], k[1]);
    kts_add_body(e->srv, "/long/enc/index.m3u8", pl, strlen(pl), NULL);
    free(pl);
    return want;
}

/* Two keys at 3,000-byte URIs differing in the last byte: each segment decrypts with its own
 * key, fetched from its own URI, online and from the cache. */
static void test_long_key_uris_differing_in_the_last_byte_keep_their_own_keys(void **state)
{
    struct hls_env *e = *state;
    char *k[2];
    bytes want = add_two_key_playlist(e, 3000, k);
    char url[512];
    kts_url(e->srv, "/long/enc/index.m3u8", url, sizeof url);
    bytes got = play_url(e, url, NULL);
    assert_same_bytes(&got, &want);
    assert_int_equal(kts_request_count(e->srv, path_of(e, k[0]), "GET"), 1);
    assert_int_equal(kts_request_count(e->srv, path_of(e, k[1]), "GET"), 1);
    free(got.data);
    go_offline(e);
    got = play_url(e, url, NULL);
    assert_same_bytes(&got, &want);
    free(got.data);
    free(want.data);
    free(k[0]);
    free(k[1]);
}

/* The key hook rewrites each key URI into a 5,000-byte URL (another path, same last byte). */
static char *rewrite_to_long(void *user, const char *uri)
{
    return url_of_length(user, "/long/wrapped/", 5000, uri[strlen(uri) - 1]);
}

static void test_key_hook_may_rewrite_to_a_long_url(void **state)
{
    struct hls_env *e = *state;
    char *k[2];
    bytes want = add_two_key_playlist(e, 3000, k);
    char *w[2];
    for (int i = 0; i < 2; i++) {
        w[i] = rewrite_to_long(e, k[i]);
        uint8_t key[16];
        for (int j = 0; j < 16; j++)
            key[j] = (uint8_t)(0x11 * (i + 1) + j);
        kts_add_body(e->srv, path_of(e, w[i]), key, 16, "application/octet-stream");
    }
    kth_hls_options h;
    kth_hls_options_init(&h);
    h.key_hook.rewrite_uri = rewrite_to_long;
    h.key_hook.user = e;
    char url[512];
    kts_url(e->srv, "/long/enc/index.m3u8", url, sizeof url);
    bytes got = play_url(e, url, &h);
    assert_same_bytes(&got, &want);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(kts_request_count(e->srv, path_of(e, k[i]), NULL), 0);
        assert_int_equal(kts_request_count(e->srv, path_of(e, w[i]), "GET"), 1);
        free(k[i]);
        free(w[i]);
    }
    free(got.data);
    free(want.data);
}

/* --- a progressive file with a 20,000-byte query string ----------------------------------- */

#define FILE_BYTES 300000

static void test_progressive_url_with_a_20000_byte_query_plays_online_and_offline(void **state)
{
    struct hls_env *e = *state;
    kts_add_synth(e->srv, "/long/file.mp3", FILE_BYTES, 7, NULL);
    char *q = malloc(20001);
    assert_non_null(q);
    memset(q, 'q', 20000);
    q[20000] = '\0';
    char *url = str_printf("%s/long/file.mp3?t=%s0", kts_base_url(e->srv), q);
    char *sibling = str_printf("%s/long/file.mp3?t=%s1", kts_base_url(e->srv), q);
    for (int round = 0; round < 2; round++) {
        kth_stream *s = NULL;
        char err[1024] = "";
        if (try_open_url(e, url, NULL, &s, err, sizeof err) != KTH_OK)
            fail_msg("open (round %d): %s", round, err);
        bytes got = read_to_end(s, false);
        if (got.len != FILE_BYTES)
            fail_msg("got %zu bytes, want %d", got.len, FILE_BYTES);
        assert_int_equal(kts_synth_check(7, 0, got.data, FILE_BYTES), FILE_BYTES);
        free(got.data);
        kth_stream_close(s);
        if (round == 0)
            go_offline(e);
    }
    /* The URL that differs in its last byte is another asset: not in the cache. */
    kth_stream *s = NULL;
    char err[1024] = "";
    kth_status st = try_open_url(e, sibling, NULL, &s, err, sizeof err);
    if (st == KTH_OK) {
        uint8_t b;
        int64_t n = kth_stream_read(s, &b, 1);
        kth_stream_close(s);
        assert_int_equal(n, KTH_ERR_OFFLINE_MISS);
    } else {
        assert_int_equal(st, KTH_ERR_OFFLINE_MISS);
    }
    assert_int_equal(kts_log_count(e->srv), 0);
    free(sibling);
    free(url);
    free(q);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, hls_setup, hls_teardown)
    const struct CMUnitTest tests[] = {
        T(test_2000_byte_segment_uris_differing_in_the_last_byte_play_both),
        T(test_20000_byte_segment_uris_differing_in_the_last_byte_play_both),
        T(test_segment_uris_at_the_line_limit_play_both),
        T(test_segment_uri_past_the_line_limit_is_a_limit_error),
        T(test_errors_about_long_playlist_urls_keep_their_cause),
        T(test_segment_failures_at_long_uris_keep_their_cause),
        T(test_byte_ranges_of_one_long_uri_play_both),
        T(test_relative_uris_resolve_against_a_long_playlist_url),
        T(test_long_variant_uris_are_reported_whole_and_play_their_own_bytes),
        T(test_long_key_uris_differing_in_the_last_byte_keep_their_own_keys),
        T(test_key_hook_may_rewrite_to_a_long_url),
        T(test_progressive_url_with_a_20000_byte_query_plays_online_and_offline),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
