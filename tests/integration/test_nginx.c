/*
 * test_nginx.c — kithara against a real nginx (tests/nginx): progressive files and HLS over
 * HTTPS with HTTP/2 (a throwaway CA given as ca_file), over HTTP/1.1 and over cleartext HTTP/2
 * with prior knowledge, byte-exact against the fixture files, with the connection count read
 * from nginx's access log. nginx must be installed (make test installs it): without it every
 * test fails, naming what is missing.
 *
 * The kithara tool is run against the same server with --cacert, SSL_CERT_FILE and
 * CURL_CA_BUNDLE, and without a CA.
 *
 * Each test fetches under its own /u/<tag>/ prefix, so the log lines it counts are its own.
 */
#include "nginx_server.h"
#include "test_hls_support.h"

#include <fcntl.h>
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
    kth_cache_unref(e->cache);
    kth_downloader_unref(e->d);
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
    h.fixed_start = variant >= 0;
    h.initial_variant = variant;
    h.start_manual = true;
    kth_stream *s = open_url(e, url, &h);
    assert_int_equal(kth_stream_abr_set_manual(s, variant), KTH_OK);
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

#ifdef KTH_TOOL_PATH
/* --- the kithara tool ------------------------------------------------------------------------ */

typedef struct tool_run {
    int status; /* exit status; -1: did not exit */
    bytes out;  /* standard output */
    bytes err;  /* standard error, NUL-ended */
} tool_run;

/* Runs the tool with args (NULL-ended, args[0] "kithara") in an environment without the CA
 * variables, plus `env_add` ("NAME=value") when not NULL. Output goes through files in dir. */
static tool_run run_tool(const char *dir, const char *const *args, const char *env_add)
{
    static const char *const dropped[] = {"CURL_CA_BUNDLE=", "SSL_CERT_FILE=", "SSL_CERT_DIR="};
    extern char **environ;
    size_t n = 0;
    while (environ[n])
        n++;
    char **envp = calloc(n + 2, sizeof *envp);
    assert_non_null(envp);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        bool drop = false;
        for (size_t j = 0; j < 3; j++)
            drop = drop || strncmp(environ[i], dropped[j], strlen(dropped[j])) == 0;
        if (!drop)
            envp[k++] = environ[i];
    }
    if (env_add)
        envp[k++] = (char *)env_add;
    char out_path[1024], err_path[1024];
    snprintf(out_path, sizeof out_path, "%s/tool.out", dir);
    snprintf(err_path, sizeof err_path, "%s/tool.err", dir);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int out_fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int err_fd = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (out_fd < 0 || err_fd < 0 || dup2(out_fd, STDOUT_FILENO) < 0 ||
            dup2(err_fd, STDERR_FILENO) < 0)
            _exit(126);
        execve(KTH_TOOL_PATH, (char *const *)args, envp);
        _exit(127);
    }
    free(envp);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    tool_run r = {.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1};
    r.out = read_file(out_path);
    r.err = read_file(err_path);
    bytes_append(&r.err, "", 1);
    return r;
}

static void tool_run_free(tool_run *r)
{
    free(r->out.data);
    free(r->err.data);
}

/* The tool succeeded and wrote exactly `want` (NULL: anything) to standard output. */
static void assert_tool_ok(tool_run *r, const bytes *want)
{
    if (r->status != 0)
        fail_msg("kithara exited %d: %s", r->status, (const char *)r->err.data);
    if (want)
        assert_same_bytes(&r->out, want);
    tool_run_free(r);
}

static void test_tool_trusts_the_ca_given_by_option_or_environment(void **state)
{
    (void)state;
    char *dir = test_make_dir();
    char mp3[512], master[512], cache[4][1100], env[1100];
    url_of(KTN_HTTPS_H2, "tool", "sample.mp3", mp3, sizeof mp3);
    url_of(KTN_HTTPS_H2, "tool", "hls/ts/master.m3u8", master, sizeof master);
    for (int i = 0; i < 4; i++)
        snprintf(cache[i], sizeof cache[i], "%s/cache%d", dir, i);
    const char *ca = ktn_ca_file(nginx);
    bytes want = read_file(FIXTURE_ROOT "/sample.mp3");

    const char *const cat_cacert[] = {"kithara",  "cat", "--cache-dir", cache[0],
                                      "--cacert", ca,    mp3,           NULL};
    tool_run r = run_tool(dir, cat_cacert, NULL);
    assert_tool_ok(&r, &want);

    const char *const cat[] = {"kithara", "cat", "--cache-dir", cache[1], mp3, NULL};
    snprintf(env, sizeof env, "SSL_CERT_FILE=%s", ca);
    r = run_tool(dir, cat, env);
    assert_tool_ok(&r, &want);

    const char *const info[] = {"kithara", "info", "--cache-dir", cache[2], mp3, NULL};
    snprintf(env, sizeof env, "CURL_CA_BUNDLE=%s", ca);
    r = run_tool(dir, info, env);
    assert_tool_ok(&r, NULL);

    const char *const download[] = {"kithara",  "download", "--cache-dir", cache[3],
                                    "--cacert", ca,         master,        NULL};
    r = run_tool(dir, download, NULL);
    assert_tool_ok(&r, NULL);

    const char *const insecure[] = {"kithara",    "cat", "--cache-dir", cache[0],
                                    "--insecure", mp3,   NULL};
    r = run_tool(dir, insecure, NULL);
    assert_tool_ok(&r, &want);

    free(want.data);
    assert_int_equal(test_remove_tree(dir), 0);
    free(dir);
}

static void test_tool_without_the_ca_fails_with_a_tls_error(void **state)
{
    (void)state;
    char *dir = test_make_dir();
    char mp3[512], master[512];
    url_of(KTN_HTTPS_H2, "tool-no-ca", "sample.mp3", mp3, sizeof mp3);
    url_of(KTN_HTTPS_H2, "tool-no-ca", "hls/ts/master.m3u8", master, sizeof master);
    const char *const cat[] = {"kithara", "cat", "--cache-dir", dir, mp3, NULL};
    const char *const download[] = {"kithara", "download", "--cache-dir", dir, master, NULL};
    const char *const *commands[] = {cat, download};
    for (size_t i = 0; i < 2; i++) {
        tool_run r = run_tool(dir, commands[i], NULL);
        const char *err = (const char *)r.err.data;
        assert_int_equal(r.status, 3); /* network: TLS */
        assert_int_equal(r.out.len, 0);
        if (!strstr(err, "certificate") || !strstr(err, "--cacert"))
            fail_msg("%s: no clear TLS error: %s", commands[i][1], err);
        tool_run_free(&r);
    }
    assert_int_equal(test_remove_tree(dir), 0);
    free(dir);
}
#endif

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
#ifdef KTH_TOOL_PATH
        cmocka_unit_test(test_tool_trusts_the_ca_given_by_option_or_environment),
        cmocka_unit_test(test_tool_without_the_ca_fails_with_a_tls_error),
#endif
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
