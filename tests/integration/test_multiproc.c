/*
 * test_multiproc.c — several processes on one cache directory, as real processes: the built
 * `kithara` tool streams (`kithara cat`) while `kithara cache ls|du` and `kithara info` run
 * beside it, eviction in this process spares what the streaming process leases, a kill -9 of
 * the streaming process loses nothing it recorded and leaves a lease that is reclaimed, and two
 * `kithara cat` of one URL into one directory at once are both byte-exact, and processes that
 * open one new cache directory at once all succeed.
 *
 * The server stalls every response after STALL_AT bytes until the test releases it, so "while
 * another process streams" is a state the test holds, not a moment it hopes to hit.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <kithara/kithara.h>

#include "test_support.h"
#include "testserver.h"

#define SEED     777
#define SIZE     ((uint64_t)6 * 1000 * 1000)
#define STALL_AT ((uint64_t)2 * 1000 * 1000)
#define PATH     "/song.mp3"

/* Starts `kithara <args...>` with its standard output in out_path (NULL: /dev/null) and its
 * standard error discarded. */
static pid_t spawn_tool(const char *out_path, const char *const *args)
{
    pid_t pid = fork();
    if (pid == 0) {
        int out = open(out_path ? out_path : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int null = open("/dev/null", O_WRONLY);
        dup2(out, STDOUT_FILENO);
        dup2(null, STDERR_FILENO);
        char *argv[16] = {"kithara"};
        for (int i = 0; args[i] && i < 14; i++)
            argv[i + 1] = (char *)args[i];
        execv(KTH_TOOL_PATH, argv);
        _exit(127);
    }
    return pid;
}

static int wait_exit(pid_t pid)
{
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Runs the tool to completion; returns its exit status and its output (in out, cut to fit). */
static int run_tool(const char *dir, char *out, size_t n, const char *const *args)
{
    char path[600];
    snprintf(path, sizeof path, "%s/tool.out", dir);
    int rc = wait_exit(spawn_tool(path, args));
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t got = fread(out, 1, n - 1, f);
    out[got] = '\0';
    fclose(f);
    unlink(path);
    return rc;
}

static kth_cache *open_cache(const char *dir, uint64_t budget)
{
    kth_cache_options co;
    kth_cache_options_init(&co);
    co.dir = dir;
    co.max_bytes = budget;
    kth_cache *c = NULL;
    char err[512];
    if (kth_cache_open(&co, &c, err, sizeof err) != KTH_OK)
        fail_msg("cache open: %s", err);
    return c;
}

/* The cached asset's recorded bytes (0 when there is none); *leased whether some holder
 * leases it. */
static uint64_t cached_bytes(kth_cache *c, bool *leased)
{
    kth_cache_asset *list = NULL;
    size_t count = 0;
    assert_int_equal(kth_cache_list(c, &list, &count), KTH_OK);
    uint64_t bytes = count ? list[0].bytes : 0;
    if (leased)
        *leased = count && list[0].leased;
    kth_cache_list_free(list, count);
    return bytes;
}

/* Waits until the streaming process has recorded `want` bytes in the index. It is stalled, so
 * no write makes it record: its record timer must (within the 1 s checkpoint interval; the
 * stall timeout, 20 s, must not be what makes it). */
static void wait_recorded(const char *dir, uint64_t want)
{
    for (int i = 0; i < 160; i++) {
        kth_cache *c = open_cache(dir, 0);
        uint64_t got = cached_bytes(c, NULL);
        kth_cache_unref(c);
        if (got >= want)
            return;
        struct timespec tick = {0, 50 * 1000000L};
        nanosleep(&tick, NULL);
    }
    fail_msg("the streaming process recorded fewer than %llu bytes in 160 looks, 50 ms apart",
             (unsigned long long)want);
}

static void check_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static uint8_t buf[256 * 1024];
    uint64_t pos = 0;
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
        assert_int_equal(kts_synth_check(SEED, pos, buf, n), n);
        pos += n;
    }
    fclose(f);
    assert_int_equal(pos, SIZE);
}

/* Body bytes the server sent for PATH, over every request logged. */
static uint64_t fetched_bytes(kts_server *srv)
{
    uint64_t sum = 0;
    size_t n = kts_log_count(srv);
    for (size_t i = 0; i < n; i++) {
        kts_log_entry e;
        if (kts_log_get(srv, i, &e) == KTH_OK && strcmp(e.path, PATH) == 0)
            sum += e.body_bytes;
    }
    return sum;
}

static kts_server *start_server(char *url, size_t n)
{
    kts_server *srv;
    assert_int_equal(kts_start(NULL, &srv), KTH_OK);
    kts_add_synth(srv, PATH, SIZE, SEED, "audio/mpeg");
    kts_fault stall = {.kind = KTS_FAULT_STALL_AFTER, .bytes = STALL_AT};
    kts_add_fault(srv, PATH, &stall);
    kts_url(srv, PATH, url, n);
    return srv;
}

static void test_tools_and_eviction_work_beside_a_streaming_process(void **state)
{
    (void)state;
    char url[256];
    kts_server *srv = start_server(url, sizeof url);
    char *dir = test_make_dir();
    char cache_dir[600], out[4096];
    snprintf(cache_dir, sizeof cache_dir, "%s/cache", dir);

    /* One process streams and holds, stalled after STALL_AT bytes. */
    pid_t cat = spawn_tool(NULL, (const char *[]){"cat", "--cache-dir", cache_dir, url, NULL});
    assert_int_equal(kts_wait_stalled(srv, PATH, 1, 20000), KTH_OK);
    wait_recorded(cache_dir, STALL_AT);

    /* Others read the directory meanwhile. */
    assert_int_equal(run_tool(dir, out, sizeof out,
                              (const char *[]){"cache", "--cache-dir", cache_dir, "ls", NULL}),
                     0);
    assert_non_null(strstr(out, url));
    assert_non_null(strstr(out, "in use"));
    assert_int_equal(run_tool(dir, out, sizeof out,
                              (const char *[]){"cache", "--cache-dir", cache_dir, "du", NULL}),
                     0);
    assert_non_null(strstr(out, "assets:    1"));
    assert_int_equal(run_tool(dir, out, sizeof out,
                              (const char *[]){"info", "--cache-dir", cache_dir, url, NULL}),
                     0);

    /* Eviction here (a budget of one byte) spares what the streaming process leases. */
    kth_cache *c = open_cache(cache_dir, 1);
    kth_cache_gc_result gc;
    assert_int_equal(kth_cache_gc(c, &gc), KTH_OK);
    assert_int_equal(gc.evicted_assets, 0);
    bool leased = false;
    uint64_t recorded = cached_bytes(c, &leased);
    assert_true(leased);
    assert_true(recorded >= STALL_AT);
    kth_cache_unref(c);

    /* kill -9: what it recorded stays, and its lease is reclaimed (no process holds it). */
    kill(cat, SIGKILL);
    assert_int_equal(wait_exit(cat), 128 + SIGKILL);
    assert_int_equal(run_tool(dir, out, sizeof out,
                              (const char *[]){"cache", "--cache-dir", cache_dir, "ls", NULL}),
                     0);
    assert_non_null(strstr(out, url));
    assert_null(strstr(out, "in use"));
    c = open_cache(cache_dir, 0);
    assert_true(cached_bytes(c, &leased) >= recorded);
    assert_false(leased);
    kth_cache_unref(c);

    /* Another process completes it byte-exact, asking only for what is missing. */
    kts_stall_release(srv, PATH, KTS_RELEASE_ALL);
    size_t before = kts_log_count(srv);
    char file[600];
    snprintf(file, sizeof file, "%s/out.bin", dir);
    assert_int_equal(
        wait_exit(spawn_tool(file, (const char *[]){"cat", "--cache-dir", cache_dir, url, NULL})),
        0);
    check_file(file);
    kts_log_entry e;
    assert_int_equal(kts_log_get(srv, before, &e), KTH_OK);
    assert_true(strncmp(e.range, "bytes=", 6) == 0 && strtoull(e.range + 6, NULL, 10) >= recorded);

    /* Now nobody holds it: eviction takes it. */
    c = open_cache(cache_dir, 1);
    assert_int_equal(kth_cache_gc(c, &gc), KTH_OK);
    assert_int_equal(gc.evicted_assets, 1);
    kth_cache_unref(c);

    kth_shutdown();
    kts_stop(srv);
    assert_int_equal(test_remove_tree(dir), 0);
    free(dir);
}

static void test_two_processes_cat_one_url_into_one_directory(void **state)
{
    (void)state;
    char url[256];
    kts_server *srv = start_server(url, sizeof url);
    kts_stall_release(srv, PATH, KTS_RELEASE_ALL); /* no stall: both run at full speed */
    char *dir = test_make_dir();
    char cache_dir[600], out1[600], out2[600];
    snprintf(cache_dir, sizeof cache_dir, "%s/cache", dir);
    snprintf(out1, sizeof out1, "%s/one.bin", dir);
    snprintf(out2, sizeof out2, "%s/two.bin", dir);
    const char *args[] = {"cat", "--cache-dir", cache_dir, url, NULL};
    pid_t a = spawn_tool(out1, args), b = spawn_tool(out2, args);
    assert_int_equal(wait_exit(a), 0);
    assert_int_equal(wait_exit(b), 0);
    check_file(out1);
    check_file(out2);
    uint64_t fetched = fetched_bytes(srv);
    printf("two processes fetched %llu bytes: %.2f x the asset\n", (unsigned long long)fetched,
           (double)fetched / (double)SIZE);
    /* Each byte once for both: the process that does not write the cached copy takes in what
     * the other records instead of fetching it again. */
    assert_true(fetched <= SIZE + 65536);

    /* The cache holds it whole, recorded by whichever finished. */
    kth_cache *c = open_cache(cache_dir, 0);
    assert_int_equal(cached_bytes(c, NULL), SIZE);
    kth_cache_unref(c);

    kth_shutdown();
    kts_stop(srv);
    assert_int_equal(test_remove_tree(dir), 0);
    free(dir);
}

/* Opens a stream of url in this process, through cache c, whose reads wait up to timeout_ms. */
static kth_stream *open_stream_in(kth_cache *c, const char *url, int timeout_ms)
{
    kth_stream_options so;
    kth_stream_options_init(&so);
    so.cache = c;
    so.read_timeout_ms = timeout_ms;
    kth_stream *s = NULL;
    char err[512];
    if (kth_stream_open(url, &so, &s, err, sizeof err) != KTH_OK)
        fail_msg("open %s: %s", url, err);
    return s;
}

/* Reads the stream's first `want` bytes, checking each. */
static void read_first(kth_stream *s, uint64_t want)
{
    static uint8_t buf[256 * 1024];
    uint64_t pos = 0;
    while (pos < want) {
        int64_t n = kth_stream_read(s, buf, sizeof buf < want - pos ? sizeof buf : want - pos);
        if (n <= 0)
            fail_msg("read at %llu: %s", (unsigned long long)pos, kth_strerror((int)n));
        assert_int_equal(kts_synth_check(SEED, pos, buf, (size_t)n), (size_t)n);
        pos += (uint64_t)n;
    }
}

/* A process that follows another's writer does not wait for it forever: while the writer is
 * stalled (its record no longer grows), the follower fetches what its reader needs itself. */
static void test_a_follower_fetches_itself_when_the_writer_stops(void **state)
{
    (void)state;
    char url[256];
    kts_server *srv = start_server(url, sizeof url);
    char *dir = test_make_dir();
    char cache_dir[600];
    snprintf(cache_dir, sizeof cache_dir, "%s/cache", dir);
    pid_t cat = spawn_tool(NULL, (const char *[]){"cat", "--cache-dir", cache_dir, url, NULL});
    assert_int_equal(kts_wait_stalled(srv, PATH, 1, 20000), KTH_OK);
    wait_recorded(cache_dir, STALL_AT);

    /* This process follows the stalled writer: the recorded bytes, then bytes past them that
     * its own request brings (the server serves STALL_AT bytes of each response). */
    kth_cache *c = open_cache(cache_dir, 0);
    kth_stream *s = open_stream_in(c, url, 20000);
    read_first(s, STALL_AT + 500 * 1000);
    kth_stream_close(s);
    kth_cache_unref(c);
    /* Its request asked only for what the writer had not recorded. */
    kts_log_entry e;
    assert_int_equal(kts_log_find(srv, PATH, 2, &e), KTH_OK);
    assert_true(strncmp(e.range, "bytes=", 6) == 0 && strtoull(e.range + 6, NULL, 10) >= STALL_AT);

    kill(cat, SIGKILL);
    assert_int_equal(wait_exit(cat), 128 + SIGKILL);
    kth_shutdown();
    kts_stop(srv);
    assert_int_equal(test_remove_tree(dir), 0);
    free(dir);
}

/* Body bytes the server sent for `path` in responses to ranged requests from `from` on. */
static uint64_t fetched_from(kts_server *srv, const char *path, uint64_t from)
{
    uint64_t sum = 0;
    size_t n = kts_log_count(srv);
    for (size_t i = 0; i < n; i++) {
        kts_log_entry e;
        if (kts_log_get(srv, i, &e) == KTH_OK && strcmp(e.path, path) == 0 &&
            strncmp(e.range, "bytes=", 6) == 0 && strtoull(e.range + 6, NULL, 10) >= from)
            sum += e.body_bytes;
    }
    return sum;
}

/* A server of "/big.mp3", `size` bytes sent at `rate` bytes/s per response; its URL in url. */
static kts_server *start_slow_server(uint64_t size, uint64_t rate, char *url, size_t n)
{
    kts_server *srv;
    assert_int_equal(kts_start(NULL, &srv), KTH_OK);
    kts_add_synth(srv, "/big.mp3", size, SEED, "audio/mpeg");
    kts_fault slow = {.kind = KTS_FAULT_RATE, .bytes = rate};
    kts_add_fault(srv, "/big.mp3", &slow);
    kts_url(srv, "/big.mp3", url, n);
    return srv;
}

/* A follower that reads far ahead of the writer fetches that part itself, once: the writer's
 * later records do not make it drop the bytes it fetched (and fetch them again). */
static void test_a_follower_far_ahead_of_the_writer_fetches_its_part_once(void **state)
{
    (void)state;
    enum { BIG = 30 * 1000 * 1000, FROM = 24 * 1000 * 1000 };
    char url[256];
    kts_server *srv = start_slow_server(BIG, 6 * 1000 * 1000, url, sizeof url);
    char *dir = test_make_dir();
    char cache_dir[600];
    snprintf(cache_dir, sizeof cache_dir, "%s/cache", dir);
    pid_t cat = spawn_tool(NULL, (const char *[]){"cat", "--cache-dir", cache_dir, url, NULL});
    wait_recorded(cache_dir, 1); /* it writes, and records every second */

    kth_cache *c = open_cache(cache_dir, 0);
    kth_stream *s = open_stream_in(c, url, 20000);
    assert_int_equal(kth_stream_seek(s, FROM, SEEK_SET, NULL), KTH_OK);
    static uint8_t buf[256 * 1024];
    uint64_t pos = FROM;
    for (;;) {
        int64_t n = kth_stream_read(s, buf, sizeof buf);
        if (n == 0)
            break;
        if (n < 0)
            fail_msg("read at %llu: %s", (unsigned long long)pos, kth_strerror((int)n));
        assert_int_equal(kts_synth_check(SEED, pos, buf, (size_t)n), (size_t)n);
        pos += (uint64_t)n;
    }
    assert_int_equal(pos, BIG);
    kth_stream_close(s);
    kth_cache_unref(c);
    kill(cat, SIGKILL);
    wait_exit(cat);
    uint64_t fetched = fetched_from(srv, "/big.mp3", FROM);
    printf("the follower's part: %llu bytes fetched for %d\n", (unsigned long long)fetched,
           BIG - FROM);
    assert_true(fetched <= BIG - FROM + 65536);

    kth_shutdown();
    kts_stop(srv);
    assert_int_equal(test_remove_tree(dir), 0);
    free(dir);
}

/* A follower whose reader is far from where the writer fetches does not wait on the writer,
 * however steadily its record grows: here the writer fetches from 20 MB on, slowly, and the
 * follower reads from 0. It used to leave every gap below the writer's last recorded byte to
 * the writer, and timed out. */
static void test_a_follower_behind_the_writer_fetches_at_once(void **state)
{
    (void)state;
    enum { BIG = 30 * 1000 * 1000, WRITER_AT = 20 * 1000 * 1000, WANT = 1000 * 1000 };
    char url[256];
    kts_server *srv = start_slow_server(BIG, 1000 * 1000, url, sizeof url);
    char *dir = test_make_dir();
    char cache_dir[600];
    snprintf(cache_dir, sizeof cache_dir, "%s/cache", dir);
    /* The writer needs 10 s for its part; the follower's reads may wait 5 s. */
    char start[32];
    snprintf(start, sizeof start, "%d", WRITER_AT);
    pid_t cat = spawn_tool(
        NULL, (const char *[]){"cat", "--cache-dir", cache_dir, "--start", start, url, NULL});
    wait_recorded(cache_dir, 1);

    kth_cache *c = open_cache(cache_dir, 0);
    kth_stream *s = open_stream_in(c, url, 5000);
    read_first(s, WANT);
    kth_stream_close(s);
    kth_cache_unref(c);
    kill(cat, SIGKILL);
    wait_exit(cat);
    kth_shutdown();
    kts_stop(srv);
    assert_int_equal(test_remove_tree(dir), 0);
    free(dir);
}

/* Processes that open one new cache directory at the same moment all succeed (turning the
 * new index to WAL used to fail one of them with "database is locked"). 40 rounds of two. */
static void test_processes_opening_a_new_cache_at_once_all_succeed(void **state)
{
    (void)state;
    char *dir = test_make_dir();
    int failed = 0;
    for (int round = 0; round < 40; round++) {
        char cache_dir[600];
        snprintf(cache_dir, sizeof cache_dir, "%s/c%d", dir, round);
        pid_t pids[2];
        for (int i = 0; i < 2; i++) {
            pids[i] = fork();
            assert_true(pids[i] >= 0);
            if (pids[i] == 0) {
                kth_cache_options co;
                kth_cache_options_init(&co);
                co.dir = cache_dir;
                co.no_sync = true;
                kth_cache *c = NULL;
                char err[512] = "";
                if (kth_cache_open(&co, &c, err, sizeof err) != KTH_OK) {
                    fprintf(stderr, "round %d: %s\n", round, err);
                    _exit(1);
                }
                kth_cache_unref(c);
                _exit(0);
            }
        }
        for (int i = 0; i < 2; i++)
            failed += wait_exit(pids[i]) != 0;
    }
    assert_int_equal(failed, 0);
    assert_int_equal(test_remove_tree(dir), 0);
    free(dir);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tools_and_eviction_work_beside_a_streaming_process),
        cmocka_unit_test(test_two_processes_cat_one_url_into_one_directory),
        cmocka_unit_test(test_a_follower_fetches_itself_when_the_writer_stops),
        cmocka_unit_test(test_a_follower_far_ahead_of_the_writer_fetches_its_part_once),
        cmocka_unit_test(test_a_follower_behind_the_writer_fetches_at_once),
        cmocka_unit_test(test_processes_opening_a_new_cache_at_once_all_succeed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
