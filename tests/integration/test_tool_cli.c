/*
 * test_tool_cli.c — the kithara program as a script sees it: each kind of failure has its own
 * exit code, each message names the URL once and gives the real cause, -o writes a file, -q
 * keeps standard error for errors. The tool runs as a child process against the loopback test
 * server.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_support.h"
#include "kts_live.h"
#include "testserver.h"

#ifndef KTH_TOOL_PATH
#error "KTH_TOOL_PATH names the kithara program"
#endif

struct cli {
    kts_server *srv;
    char *dir;
    char cache[600];
    char out_path[600], err_path[600];
    char out[1 << 16], err[1 << 14];
};

static void slurp(const char *path, char *buf, size_t size)
{
    buf[0] = '\0';
    FILE *f = fopen(path, "rb");
    if (!f)
        return;
    size_t n = fread(buf, 1, size - 1, f);
    buf[n] = '\0';
    fclose(f);
}

/* Runs the tool with args (NULL-ended, argv[0] included); its standard output and error land in
 * c->out and c->err. Returns its exit status. */
static int run_tool(struct cli *c, const char *const *args)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int out = open(c->out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int err = open(c->err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int in = open("/dev/null", O_RDONLY);
        if (out < 0 || err < 0 || in < 0)
            _exit(126);
        dup2(in, STDIN_FILENO);
        dup2(out, STDOUT_FILENO);
        dup2(err, STDERR_FILENO);
        execv(KTH_TOOL_PATH, (char *const *)args);
        _exit(127);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    slurp(c->out_path, c->out, sizeof c->out);
    slurp(c->err_path, c->err, sizeof c->err);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static size_t count_of(const char *text, const char *what)
{
    size_t n = 0;
    for (const char *p = text; (p = strstr(p, what)) != NULL; p += strlen(what))
        n++;
    return n;
}

static int setup(void **state)
{
    struct cli *c = calloc(1, sizeof *c);
    kts_config config = {.doc_root = KTH_SOURCE_DIR "/tests/fixtures"};
    if (!c || kts_start(&config, &c->srv) != 0)
        return -1;
    c->dir = test_make_dir();
    snprintf(c->cache, sizeof c->cache, "%s/cache", c->dir);
    snprintf(c->out_path, sizeof c->out_path, "%s/stdout", c->dir);
    snprintf(c->err_path, sizeof c->err_path, "%s/stderr", c->dir);
    static const char playlist_page[] = "<!DOCTYPE html><html><body>Sign in</body></html>\n";
    uint8_t *body = malloc(100000);
    if (!body)
        return -1;
    test_pattern_fill(7, 0, body, 100000);
    kts_add_body(c->srv, "/track.mp3", body, 100000, "audio/mpeg");
    free(body);
    kts_add_body(c->srv, "/login.m3u8", playlist_page, sizeof playlist_page - 1, "text/html");
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    struct cli *c = *state;
    kts_stop(c->srv);
    test_remove_dir(c->dir);
    free(c);
    return 0;
}

static void test_a_404_exits_4_naming_the_url_once(void **state)
{
    struct cli *c = *state;
    char url[512];
    kts_url(c->srv, "/absent.mp3", url, sizeof url);
    const char *const args[] = {"kithara", "cat", "--cache-dir", c->cache, url, NULL};
    assert_int_equal(run_tool(c, args), 4);
    assert_int_equal(count_of(c->err, url), 1);
    assert_non_null(strstr(c->err, "404"));
    assert_string_equal(c->out, "");
}

/* The same with a 3,000-byte URL: the cause survives, and the URL (shown as its head and tail)
 * is named once. */
static void test_a_404_of_a_long_url_keeps_the_cause_and_names_the_url_once(void **state)
{
    struct cli *c = *state;
    char path[3001];
    memset(path, 'q', sizeof path - 1);
    path[0] = '/';
    static const char tail[] = "-absent-long.mp3";
    memcpy(path + sizeof path - sizeof tail, tail, sizeof tail);
    char url[3100];
    kts_url(c->srv, path, url, sizeof url);
    assert_true(strlen(url) > 3000);
    const char *const args[] = {"kithara", "cat", "--cache-dir", c->cache, url, NULL};
    assert_int_equal(run_tool(c, args), 4);
    assert_non_null(strstr(c->err, "404"));
    assert_int_equal(count_of(c->err, tail), 1);
    char head[64];
    snprintf(head, sizeof head, "%.60s", url);
    assert_int_equal(count_of(c->err, head), 1);
    assert_string_equal(c->out, "");
}

static void test_an_html_page_for_a_playlist_exits_5(void **state)
{
    struct cli *c = *state;
    char url[512];
    kts_url(c->srv, "/login.m3u8", url, sizeof url);
    const char *const args[] = {"kithara", "cat", "--cache-dir", c->cache, url, NULL};
    assert_int_equal(run_tool(c, args), 5);
    assert_int_equal(count_of(c->err, url), 1);
    assert_string_equal(c->out, "");
}

static void test_a_refused_connection_exits_3(void **state)
{
    struct cli *c = *state;
    kts_server *other = NULL;
    assert_int_equal(kts_start(NULL, &other), 0);
    char url[512];
    kts_url(other, "/x.mp3", url, sizeof url);
    kts_stop(other); /* nothing listens there any more */
    const char *const args[] = {"kithara", "cat", "--cache-dir", c->cache, url, NULL};
    assert_int_equal(run_tool(c, args), 3);
    assert_int_equal(count_of(c->err, url), 1);
}

/* The resolver refuses a label over 63 bytes without asking a name server. */
static void test_an_unresolvable_host_exits_3_saying_so(void **state)
{
    struct cli *c = *state;
    char url[200];
    snprintf(url, sizeof url, "http://%070d.invalid/x.mp3", 0);
    const char *const args[] = {"kithara", "cat", "--cache-dir", c->cache, url, NULL};
    assert_int_equal(run_tool(c, args), 3);
    assert_non_null(strstr(c->err, "resolve"));
    assert_null(strstr(c->err, "memory"));
    assert_int_equal(count_of(c->err, url), 1);
}

static void test_an_offline_miss_exits_6(void **state)
{
    struct cli *c = *state;
    char url[512];
    kts_url(c->srv, "/track.mp3", url, sizeof url);
    const char *const args[] = {"kithara", "cat", "--offline", "--cache-dir", c->cache, url, NULL};
    assert_int_equal(run_tool(c, args), 6);
    assert_int_equal(count_of(c->err, url), 1);
}

static void test_a_cache_that_cannot_be_made_exits_7(void **state)
{
    struct cli *c = *state;
    char url[512], blocker[700], cache[720];
    kts_url(c->srv, "/track.mp3", url, sizeof url);
    snprintf(blocker, sizeof blocker, "%s/a-file", c->dir);
    FILE *f = fopen(blocker, "w");
    assert_non_null(f);
    fclose(f);
    snprintf(cache, sizeof cache, "%s/cache", blocker); /* under a regular file */
    const char *const args[] = {"kithara", "cat", "--cache-dir", cache, url, NULL};
    assert_int_equal(run_tool(c, args), 7);
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_cache_key_file_protects_the_cache_and_a_wrong_key_exits_7(void **state)
{
    struct cli *c = *state;
    char url[512], key[700], wrong[700], bad[700];
    kts_url(c->srv, "/track.mp3", url, sizeof url);
    snprintf(key, sizeof key, "%s/key", c->dir);
    snprintf(wrong, sizeof wrong, "%s/wrong", c->dir);
    snprintf(bad, sizeof bad, "%s/bad", c->dir);
    write_text(key, "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n");
    write_text(wrong, "00112233445566778899aabbccddeeff00112233445566778899aabbccddeefe\n");
    write_text(bad, "not a key\n");
    const char *const play[] = {"kithara",          "cat", "-q", "--cache-dir", c->cache,
                                "--cache-key-file", key,   url,  NULL};
    assert_int_equal(run_tool(c, play), 0);
    const char *const replay[] = {"kithara",          "cat", "--offline", "--cache-dir", c->cache,
                                  "--cache-key-file", key,   url,         NULL};
    assert_int_equal(run_tool(c, replay), 0);
    uint8_t want[100000];
    test_pattern_fill(7, 0, want, sizeof want);
    assert_memory_equal(c->out, want, sizeof c->out - 1); /* what run_tool keeps of it */

    const char *const other[] = {"kithara",          "cat", "--offline", "--cache-dir", c->cache,
                                 "--cache-key-file", wrong, url,         NULL};
    assert_int_equal(run_tool(c, other), 7);
    assert_non_null(strstr(c->err, "does not match"));
    const char *const none[] = {"kithara", "cat", "--offline", "--cache-dir", c->cache, url, NULL};
    assert_int_equal(run_tool(c, none), 7);
    assert_non_null(strstr(c->err, "protected"));
    const char *const malformed[] = {"kithara",          "cat", "--cache-dir", c->cache,
                                     "--cache-key-file", bad,   url,           NULL};
    assert_int_equal(run_tool(c, malformed), 7);
    assert_non_null(strstr(c->err, "64 hex digits"));
    /* The listing needs no key. */
    const char *const ls[] = {"kithara", "cache", "--cache-dir", c->cache, "ls", NULL};
    assert_int_equal(run_tool(c, ls), 0);
    assert_non_null(strstr(c->out, url));
}

/* An endless radio station at 128 kbit/s: cat --duration stops after that much media (counted
 * at icy-br), prints the titles on standard error, and info names the station. */
static void test_radio_cat_duration_titles_and_info(void **state)
{
    struct cli *c = *state;
    kts_icy_title titles[] = {{.block = 0, .text = "StreamTitle='One - First';"}};
    kts_icy icy = {.metaint = 4000,
                   .seed = 3,
                   .name = "Loop FM",
                   .genre = "Test",
                   .bitrate = "128",
                   .titles = titles,
                   .title_count = 1};
    assert_int_equal(kts_add_icy(c->srv, "/radio", &icy), 0);
    assert_int_equal(
        kts_add_fault(c->srv, "/radio", &(kts_fault){.kind = KTS_FAULT_RATE, .bytes = 16000}), 0);
    char url[512], file[700];
    kts_url(c->srv, "/radio", url, sizeof url);
    snprintf(file, sizeof file, "%s/radio.out", c->dir);
    const char *const args[] = {"kithara", "cat",         "--duration", "0.5", "-o",
                                file,      "--cache-dir", c->cache,     url,   NULL};
    assert_int_equal(run_tool(c, args), 0);
    assert_non_null(strstr(c->err, "kithara: title: One - First\n"));
    FILE *f = fopen(file, "rb");
    assert_non_null(f);
    static uint8_t got[20000];
    size_t n = fread(got, 1, sizeof got, f);
    fclose(f);
    assert_int_equal(n, 8000); /* 0.5 s at 128000 bit/s */
    assert_int_equal(kts_synth_check(3, 0, got, n), n);

    const char *const info[] = {"kithara", "info", "--cache-dir", c->cache, url, NULL};
    assert_int_equal(run_tool(c, info), 0);
    assert_non_null(strstr(c->out, "type:        radio\n"));
    assert_non_null(strstr(c->out, "station:     Loop FM\n"));
    assert_non_null(strstr(c->out, "genre:       Test\n"));
    assert_non_null(strstr(c->out, "bitrate:     128000 bit/s\n"));
}

/* info on a live HLS playlist says so, with its target duration and window, and does not
 * wait for variants a live stream never loads. */
static void test_info_on_live_hls_says_live(void **state)
{
    struct cli *c = *state;
    kts_live_stream *ls = NULL;
    assert_int_equal(
        kts_live_start(
            c->srv, "/tv",
            &(kts_live){.window = 5, .target_duration = 6, .segment_size = 1880, .seed = 4}, &ls),
        0);
    char url[512];
    kts_url(c->srv, "/tv/live.m3u8", url, sizeof url);
    const char *const info[] = {"kithara", "info", "--cache-dir", c->cache, url, NULL};
    assert_int_equal(run_tool(c, info), 0);
    assert_non_null(
        strstr(c->out, "playlist:    live, target duration 6 s, window 30.000 s in 5 segments\n"));
    const char *const json[] = {"kithara", "info", "--json", "--cache-dir", c->cache, url, NULL};
    assert_int_equal(run_tool(c, json), 0);
    assert_non_null(strstr(c->out, "\"playlist\":{\"kind\":\"live\",\"ended\":false,"
                                   "\"target_duration\":6,\"window_s\":30.000,"
                                   "\"window_segments\":5}"));
    kts_live_free(ls);
}

static void test_output_file_gets_the_bytes_and_a_bad_one_exits_8(void **state)
{
    struct cli *c = *state;
    char url[512], file[700], bad[700];
    kts_url(c->srv, "/track.mp3", url, sizeof url);
    snprintf(file, sizeof file, "%s/track.out", c->dir);
    const char *const args[] = {"kithara", "cat", "-o", file, "--cache-dir", c->cache, url, NULL};
    assert_int_equal(run_tool(c, args), 0);
    assert_string_equal(c->out, "");
    FILE *f = fopen(file, "rb");
    assert_non_null(f);
    static uint8_t got[100001];
    size_t n = fread(got, 1, sizeof got, f);
    fclose(f);
    assert_int_equal(n, 100000);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(got[i], test_pattern_byte(7, i));

    snprintf(bad, sizeof bad, "%s/no-such-dir/track.out", c->dir);
    const char *const badargs[] = {"kithara", "cat", "-o", bad, "--cache-dir", c->cache, url, NULL};
    assert_int_equal(run_tool(c, badargs), 8);
    assert_non_null(strstr(c->err, bad));
}

static void test_usage_errors_exit_2_and_help_lists_the_exit_codes(void **state)
{
    struct cli *c = *state;
    const char *const bad[] = {"kithara", "cat", "--start", "x", "http://127.0.0.1/a", NULL};
    assert_int_equal(run_tool(c, bad), 2);
    const char *const novalue[] = {"kithara", "cat", "-o", NULL};
    assert_int_equal(run_tool(c, novalue), 2);
    const char *const help[] = {"kithara", "--help", NULL};
    assert_int_equal(run_tool(c, help), 0);
    assert_non_null(strstr(c->out, "exit status"));
    assert_non_null(strstr(c->out, "offline miss"));
}

static void test_quiet_keeps_standard_error_for_errors(void **state)
{
    struct cli *c = *state;
    char url[512];
    kts_url(c->srv, "/hls/ts/master.m3u8", url, sizeof url);
    const char *const loud[] = {"kithara", "cat",          "--cache-dir", c->cache, "--variant",
                                "0",       "--start-time", "5",           url,      NULL};
    assert_int_equal(run_tool(c, loud), 0);
    assert_non_null(strstr(c->err, "starting at byte"));
    const char *const quiet[] = {"kithara", "cat",       "-q", "--cache-dir",
                                 c->cache,  "--variant", "0",  "--start-time",
                                 "5",       url,         NULL};
    assert_int_equal(run_tool(c, quiet), 0);
    assert_string_equal(c->err, "");
}

static void test_verbose_shows_each_request(void **state)
{
    struct cli *c = *state;
    char url[512], line[600];
    kts_url(c->srv, "/track.mp3", url, sizeof url);
    const char *const args[] = {"kithara", "cat", "-v", "--cache-dir", c->cache, url, NULL};
    assert_int_equal(run_tool(c, args), 0);
    snprintf(line, sizeof line, "GET %s: HTTP 200", url);
    assert_non_null(strstr(c->err, line));
}

/* Every request of the log but playlists: at most one, and that one ranged (first bytes). */
static void assert_first_bytes_only(kts_server *srv)
{
    unsigned media = 0;
    for (size_t i = 0; i < kts_log_count(srv); i++) {
        kts_log_entry le;
        assert_int_equal(kts_log_get(srv, i, &le), 0);
        size_t n = strlen(le.path);
        if (n >= 5 && strcmp(le.path + n - 5, ".m3u8") == 0)
            continue;
        if (le.range[0] == '\0' || ++media > 1)
            fail_msg("info asked for %s %s (range \"%s\")", le.method, le.path, le.range);
    }
}

/* info on HLS: playlists and the init section's first bytes only, and what they tell. */
static void test_info_on_hls_reads_first_bytes_only(void **state)
{
    struct cli *c = *state;
    char url[512];
    kts_url(c->srv, "/hls/flac/v/index.m3u8", url, sizeof url);
    const char *const args[] = {"kithara", "info", "--json", "--cache-dir", c->cache, url, NULL};
    assert_int_equal(run_tool(c, args), 0);
    assert_non_null(strstr(c->out, "\"codec\":\"FLAC\""));
    assert_non_null(strstr(c->out, "\"sample_rate\":44100,\"channels\":2"));
    assert_first_bytes_only(c->srv);

    kts_reset(c->srv);
    kts_url(c->srv, "/hls/ts/master.m3u8", url, sizeof url);
    const char *const text[] = {"kithara", "info", "--cache-dir", c->cache, url, NULL};
    assert_int_equal(run_tool(c, text), 0);
    assert_non_null(strstr(c->out, "codec:       AAC-LC\n"));
    assert_non_null(strstr(c->out, "sample rate: 44100 Hz\n"));
    assert_non_null(strstr(c->out, "channels:    2\n"));
    assert_first_bytes_only(c->srv);
}

/* What info cannot learn is null in JSON and "unknown" in text, never 0. */
static void test_info_reports_unknown_as_null(void **state)
{
    struct cli *c = *state;
    char url[512];
    kts_url(c->srv, "/track.mp3", url, sizeof url); /* a pattern, not audio */
    const char *const args[] = {"kithara", "info", "--json", "--cache-dir", c->cache, url, NULL};
    assert_int_equal(run_tool(c, args), 0);
    assert_non_null(strstr(c->out, "\"codec\":null"));
    assert_non_null(strstr(c->out, "\"sample_rate\":null,\"channels\":null"));
    const char *const text[] = {"kithara", "info", "--cache-dir", c->cache, url, NULL};
    assert_int_equal(run_tool(c, text), 0);
    assert_non_null(strstr(c->out, "sample rate: unknown\n"));
    assert_non_null(strstr(c->out, "channels:    unknown\n"));
}

/* info on a progressive file reads the first bytes it needs, not the file: a second info finds
 * little of it cached. */
static void test_info_on_a_file_downloads_only_its_first_bytes(void **state)
{
    struct cli *c = *state;
    char url[512];
    kts_url(c->srv, "/sample.mp3", url, sizeof url);
    const char *const args[] = {"kithara", "info", "--json", "--cache-dir", c->cache, url, NULL};
    assert_int_equal(run_tool(c, args), 0);
    if (!strstr(c->out, "\"codec\":\"MP3\""))
        fail_msg("info said: %s", c->out);
    assert_int_equal(run_tool(c, args), 0);
    const char *f = strstr(c->out, "\"cached_fraction\":");
    assert_non_null(f);
    double fraction = strtod(f + strlen("\"cached_fraction\":"), NULL);
    if (fraction > 0.25)
        fail_msg("info cached %.1f %% of the file", fraction * 100);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_a_404_exits_4_naming_the_url_once, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_a_404_of_a_long_url_keeps_the_cause_and_names_the_url_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_an_html_page_for_a_playlist_exits_5, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_refused_connection_exits_3, setup, teardown),
        cmocka_unit_test_setup_teardown(test_an_unresolvable_host_exits_3_saying_so, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_an_offline_miss_exits_6, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_cache_that_cannot_be_made_exits_7, setup, teardown),
        cmocka_unit_test_setup_teardown(test_output_file_gets_the_bytes_and_a_bad_one_exits_8,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_usage_errors_exit_2_and_help_lists_the_exit_codes,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_quiet_keeps_standard_error_for_errors, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_verbose_shows_each_request, setup, teardown),
        cmocka_unit_test_setup_teardown(test_info_on_hls_reads_first_bytes_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_info_on_live_hls_says_live, setup, teardown),
        cmocka_unit_test_setup_teardown(test_radio_cat_duration_titles_and_info, setup, teardown),
        cmocka_unit_test_setup_teardown(test_info_reports_unknown_as_null, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_cache_key_file_protects_the_cache_and_a_wrong_key_exits_7, setup, teardown),
        cmocka_unit_test_setup_teardown(test_info_on_a_file_downloads_only_its_first_bytes, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
