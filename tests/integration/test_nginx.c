/*
 * test_nginx.c — kithara against a real nginx (tests/nginx): progressive files and HLS over
 * HTTPS with HTTP/2 (a throwaway CA given as ca_file), over HTTP/1.1 and over cleartext HTTP/2
 * with prior knowledge, byte-exact against the fixture files, with the connection count read
 * from nginx's access log. nginx must be installed (make test installs it): without it every
 * test fails, naming what is missing.
 *
 * Each test fetches under its own /u/<tag>/ prefix, so the log lines it counts are its own.
 */
#include "nginx_server.h"
#include "test_hls_support.h"

#include <sys/wait.h>
#include <unistd.h>

#define FIXTURE_ROOT KTH_SOURCE_DIR "/tests/fixtures"
#define LOG_WAIT_MS  5000

static ktn_server *nginx;
static char nginx_err[1024];

struct nenv {
    char *dir;
    kth_downloader *d;
    kth_cache *cache;
};

static int group_setup(void **state)
{
    (void)state;
    ktn_config cfg = {.doc_root = FIXTURE_ROOT};
    if (ktn_start(&cfg, &nginx, nginx_err, sizeof nginx_err) != KTH_OK) {
        fprintf(stderr, "test_nginx: cannot start nginx: %s\n", nginx_err);
        return -1; /* cmocka fails every test of the group */
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    ktn_stop(nginx);
    nginx = NULL;
    return 0;
}

/* A downloader with the options a test chose (the CA, insecure, prior knowledge) and a cache. */
static struct nenv *nenv_new(const char *ca_file, bool insecure, bool prior_knowledge)
{
    struct nenv *e = calloc(1, sizeof *e);
    assert_non_null(e);
    e->dir = test_make_dir();
    kth_downloader_options o;
    kth_downloader_options_init(&o);
    o.ca_file = ca_file;
    o.tls_insecure = insecure;
    o.http2_prior_knowledge = prior_knowledge;
    o.retry_base_ms = 5;
    o.retry_cap_ms = 50;
    o.stall_timeout_ms = 5000;
    char err[256];
    if (kth_downloader_new(&o, &e->d, err, sizeof err) != KTH_OK)
        fail_msg("downloader: %s", err);
    e->cache = hls_open_cache(e->dir, false);
    return e;
}

/* Closes the cache and frees the downloader: every connection it held is closed when this
 * returns, so the access log then has every request of the test. */
static void nenv_free(struct nenv *e)
{
    kth_cache_close(e->cache);
    kth_downloader_free(e->d);
    if (test_remove_tree(e->dir) != 0)
        fprintf(stderr, "could not remove %s\n", e->dir);
    free(e->dir);
    free(e);
}

static void url_of(ktn_listener which, const char *tag, const char *path, char *url, size_t n)
{
    const char *base = ktn_base(nginx, which);
    assert_non_null(base);
    snprintf(url, n, "%s/u/%s/%s", base, tag, path);
}

static kth_status try_open(struct nenv *e, const char *url, const kth_hls_options *hls,
                           kth_stream **out, char *err, size_t errlen)
{
    kth_stream_options so;
    kth_stream_options_init(&so);
    so.read_timeout_ms = 20000; /* hang guard only */
    so.downloader = e->d;
    so.cache = e->cache;
    so.hls = hls;
    return kth_stream_open(url, &so, out, err, errlen);
}

static kth_stream *open_url(struct nenv *e, const char *url, const kth_hls_options *hls)
{
    kth_stream *s = NULL;
    char err[1024] = "";
    kth_status st = try_open(e, url, hls, &s, err, sizeof err);
    if (st != KTH_OK)
        fail_msg("open %s: %s (%s)", url, kth_strerror(st), err);
    return s;
}

/* Plays the progressive fixture sample.mp3 and checks every byte. */
static void play_progressive(struct nenv *e, ktn_listener which, const char *tag)
{
    char url[512];
    url_of(which, tag, "sample.mp3", url, sizeof url);
    kth_stream *s = open_url(e, url, NULL);
    bytes got = read_to_end(s, false);
    bytes want = read_file(FIXTURE_ROOT "/sample.mp3");
    assert_same_bytes(&got, &want);
    free(got.data);
    free(want.data);
    kth_stream_close(s);
}

/* Plays variant `variant` of hls/<name>/master.m3u8, fixed from the start, and checks it
 * against the concatenation of the variant's files (clear_dir: the plaintext, for AES). */
static void play_hls(struct nenv *e, ktn_listener which, const char *tag, const char *name,
                     int variant, const char *dir, const char *clear_dir)
{
    char path[256], url[512];
    snprintf(path, sizeof path, "hls/%s/master.m3u8", name);
    url_of(which, tag, path, url, sizeof url);
    kth_hls_options h;
    kth_hls_options_init(&h);
    h.initial_variant = variant;
    h.start_manual = true;
    kth_stream *s = open_url(e, url, &h);
    assert_int_equal(kth_stream_abr_set_manual(s, (size_t)variant), KTH_OK);
    bytes got = read_to_end(s, false);
    bytes want = expected_variant(dir, clear_dir);
    assert_same_bytes(&got, &want);
    free(got.data);
    free(want.data);
    kth_stream_close(s);
}

/* The test's requests on a listener, once at least `min_ok` answered ones are logged. */
static ktn_stats logged(ktn_listener which, const char *tag, unsigned min_ok)
{
    char prefix[128];
    snprintf(prefix, sizeof prefix, "/u/%s/", tag);
    assert_int_equal(ktn_wait_requests(nginx, which, prefix, min_ok, LOG_WAIT_MS), KTH_OK);
    ktn_stats st;
    assert_int_equal(ktn_log_stats(nginx, which, prefix, &st), KTH_OK);
    return st;
}

/* Every request of the test went over HTTP/2, all of them on one connection. */
static void assert_one_h2_connection(ktn_listener which, const char *tag, unsigned min_ok)
{
    ktn_stats st = logged(which, tag, min_ok);
    if (st.connections != 1 || st.http2 != st.requests || st.ok < min_ok)
        fail_msg("%s: %u requests (%u over HTTP/2, %u answered) on %u connections; want at least "
                 "%u answered, all over HTTP/2 on one connection",
                 tag, st.requests, st.http2, st.ok, st.connections, min_ok);
}

static unsigned files_of(const char *dir)
{
    return (unsigned)list_variant(dir).count;
}

/* --- HTTPS with HTTP/2 ------------------------------------------------------------------------ */

static void test_progressive_over_https_http2_is_byte_exact(void **state)
{
    (void)state;
    struct nenv *e = nenv_new(ktn_ca_file(nginx), false, false);
    play_progressive(e, KTN_HTTPS_H2, "prog-h2");
    nenv_free(e);
    assert_one_h2_connection(KTN_HTTPS_H2, "prog-h2", 1);
}

/* The failure this guards against: a curl handle reused after a transfer that ended while other
 * streams still used its HTTP/2 connection could not be set up again, and the segment after it
 * failed with "could not set up the request". */
static void test_hls_variants_over_https_http2_are_byte_exact_on_one_connection(void **state)
{
    (void)state;
    struct nenv *e = nenv_new(ktn_ca_file(nginx), false, false);
    play_hls(e, KTN_HTTPS_H2, "hls-h2", "ts", 0, "ts/v64", NULL);
    play_hls(e, KTN_HTTPS_H2, "hls-h2", "ts", 2, "ts/v256", NULL);
    play_hls(e, KTN_HTTPS_H2, "hls-h2", "fmp4", 1, "fmp4/v128", NULL);
    play_hls(e, KTN_HTTPS_H2, "hls-h2", "aes", 1, "aes/v128", "aes/clear/v128");
    nenv_free(e);
    assert_one_h2_connection(KTN_HTTPS_H2, "hls-h2",
                             files_of("ts/v64") + files_of("ts/v256") + files_of("fmp4/v128") +
                                 files_of("aes/v128"));
}

/* A prefetch keeps several segment fetches in flight at once: every one of them a stream of the
 * one connection. */
static void test_hls_prefetch_over_https_http2_multiplexes_on_one_connection(void **state)
{
    (void)state;
    struct nenv *e = nenv_new(ktn_ca_file(nginx), false, false);
    char url[512], err[1024] = "";
    url_of(KTN_HTTPS_H2, "prefetch-h2", "hls/abr/master.m3u8", url, sizeof url);
    kth_stream_options so;
    kth_stream_options_init(&so);
    so.read_timeout_ms = 20000;
    so.downloader = e->d;
    so.cache = e->cache;
    kth_status st = kth_hls_prefetch(url, &so, KTH_HLS_ALL_VARIANTS, NULL, NULL, err, sizeof err);
    if (st != KTH_OK)
        fail_msg("prefetch %s: %s (%s)", url, kth_strerror(st), err);
    nenv_free(e);
    assert_one_h2_connection(KTN_HTTPS_H2, "prefetch-h2",
                             files_of("abr/v64") + files_of("abr/v128") + files_of("abr/v256"));
}

static void test_tls_insecure_plays_without_the_ca(void **state)
{
    (void)state;
    struct nenv *e = nenv_new(NULL, true, false);
    play_hls(e, KTN_HTTPS_H2, "insecure", "ts", 1, "ts/v128", NULL);
    nenv_free(e);
}

static void test_unknown_ca_fails_with_a_certificate_error(void **state)
{
    (void)state;
    struct nenv *e = nenv_new(NULL, false, false);
    char url[512], err[1024] = "";
    url_of(KTN_HTTPS_H2, "no-ca", "hls/ts/master.m3u8", url, sizeof url);
    kth_stream *s = NULL;
    kth_status st = try_open(e, url, NULL, &s, err, sizeof err);
    assert_int_equal(st, KTH_ERR_NETWORK);
    assert_null(s);
    if (!strstr(err, "certificate") || !strstr(err, url))
        fail_msg("the error does not name the certificate problem and the URL: %s", err);
    nenv_free(e);
}

/* --- HTTP/1.1 ------------------------------------------------------------------------------- */

static void test_progressive_and_hls_over_http1_are_byte_exact(void **state)
{
    (void)state;
    struct nenv *e = nenv_new(NULL, false, false);
    play_progressive(e, KTN_HTTP1, "h1");
    play_hls(e, KTN_HTTP1, "h1", "ts", 2, "ts/v256", NULL);
    play_hls(e, KTN_HTTP1, "h1", "fmp4", 0, "fmp4/v64", NULL);
    nenv_free(e);
    ktn_stats st = logged(KTN_HTTP1, "h1", 1 + files_of("ts/v256") + files_of("fmp4/v64"));
    assert_int_equal(st.http2, 0);
}

/* --- cleartext HTTP/2 with prior knowledge ------------------------------------------------------
 */

static void test_h2c_prior_knowledge_is_byte_exact_on_one_connection(void **state)
{
    (void)state;
    struct nenv *e = nenv_new(NULL, false, true);
    play_progressive(e, KTN_H2C, "h2c");
    play_hls(e, KTN_H2C, "h2c", "ts", 1, "ts/v128", NULL);
    play_hls(e, KTN_H2C, "h2c", "fmp4", 2, "fmp4/v256", NULL);
    nenv_free(e);
    assert_one_h2_connection(KTN_H2C, "h2c", 1 + files_of("ts/v128") + files_of("fmp4/v256"));
}

/* A server that ends each connection after a few requests (GOAWAY): every request is still
 * answered over HTTP/2, on new connections as needed, and none fails. With libcurl 7.88 this
 * is the path where the connection an attempt meant to reuse is gone. */
static void test_h2c_goes_on_when_the_server_ends_connections(void **state)
{
    (void)state;
    struct nenv *e = nenv_new(NULL, false, true);
    play_hls(e, KTN_H2C_CLOSING, "h2c-closing", "ts", 1, "ts/v128", NULL);
    play_progressive(e, KTN_H2C_CLOSING, "h2c-closing");
    kth_downloader_stats ds;
    kth_downloader_get_stats(e->d, &ds);
    assert_int_equal(ds.failed, 0);
    nenv_free(e);
    unsigned files = files_of("ts/v128") + 1;
    ktn_stats st = logged(KTN_H2C_CLOSING, "h2c-closing", files);
    if (st.http2 != st.requests || st.connections < files / KTN_CLOSING_REQUESTS)
        fail_msg("%u requests (%u over HTTP/2) on %u connections", st.requests, st.http2,
                 st.connections);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_progressive_over_https_http2_is_byte_exact),
        cmocka_unit_test(test_hls_variants_over_https_http2_are_byte_exact_on_one_connection),
        cmocka_unit_test(test_hls_prefetch_over_https_http2_multiplexes_on_one_connection),
        cmocka_unit_test(test_tls_insecure_plays_without_the_ca),
        cmocka_unit_test(test_unknown_ca_fails_with_a_certificate_error),
        cmocka_unit_test(test_progressive_and_hls_over_http1_are_byte_exact),
        cmocka_unit_test(test_h2c_prior_knowledge_is_byte_exact_on_one_connection),
        cmocka_unit_test(test_h2c_goes_on_when_the_server_ends_connections),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
