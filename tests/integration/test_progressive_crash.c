/*
 * test_progressive_crash.c — kill -9 at random moments of a progressive download: a child
 * `kithara cat` downloads through the cache and is killed, 30 times. After every kill the cache,
 * read offline, must serve only correct bytes; later runs must resume with Range requests rather
 * than start over; and a final run must complete the file byte-exact.
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

#define SEED   4242
#define SIZE   ((uint64_t)40 * 1000 * 1000)
#define ROUNDS 30

static kth_cache *open_cache(const char *dir, bool offline)
{
    kth_cache_options co;
    kth_cache_options_init(&co);
    co.dir = dir;
    co.offline = offline;
    kth_cache *c = NULL;
    char err[512];
    if (kth_cache_open(&co, &c, err, sizeof err) != KTH_OK)
        fail_msg("cache open: %s", err);
    return c;
}

static pid_t start_child(const char *dir, const char *url)
{
    pid_t pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, STDOUT_FILENO);
        dup2(null, STDERR_FILENO);
        execl(KTH_TOOL_PATH, "kithara", "cat", "--cache-dir", dir, url, (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* Reads offline from 0 until the first missing byte; every byte read must be right. Returns
 * how many bytes the cache served. */
static uint64_t verify_offline_prefix(const char *dir, const char *url)
{
    kth_cache *cache = open_cache(dir, true);
    kth_stream_options so;
    kth_stream_options_init(&so);
    so.cache = cache;
    so.read_timeout_ms = 5000;
    kth_stream *s = NULL;
    char err[512];
    kth_status st = kth_stream_open(url, &so, &s, err, sizeof err);
    uint64_t pos = 0;
    if (st == KTH_OK) {
        static uint8_t buf[256 * 1024];
        for (;;) {
            int64_t n = kth_stream_read(s, buf, sizeof buf);
            if (n <= 0) {
                assert_true(n == 0 || n == KTH_ERR_OFFLINE_MISS);
                break;
            }
            size_t bad = kts_synth_check(SEED, pos, buf, (size_t)n);
            if (bad != (size_t)n)
                fail_msg("after a kill the cache served a wrong byte at %llu",
                         (unsigned long long)(pos + bad));
            pos += (uint64_t)n;
        }
        kth_stream_close(s);
    } else {
        assert_int_equal(st, KTH_ERR_OFFLINE_MISS); /* killed before anything was recorded */
    }
    kth_cache_unref(cache);
    return pos;
}

/* Waits (at most 20 s) until request `number` of the file has had body bytes sent. */
static void wait_for_body(kts_server *srv, unsigned number)
{
    assert_int_equal(kts_wait_requests(srv, "/long.mp3", number, 20000), KTH_OK);
    for (int i = 0; i < 2000; i++) {
        kts_log_entry e;
        if (kts_log_find(srv, "/long.mp3", number, &e) == KTH_OK && e.body_bytes > 0)
            return;
        struct timespec tick = {0, 10 * 1000000L};
        nanosleep(&tick, NULL);
    }
    fail_msg("request %u of the file sent no body in 20 s", number);
}

static void test_kill_9_during_download_never_serves_wrong_bytes_and_resumes(void **state)
{
    (void)state;
    kts_server *srv;
    assert_int_equal(kts_start(NULL, &srv), KTH_OK);
    kts_add_synth(srv, "/long.mp3", SIZE, SEED, NULL);
    kts_fault rate = {.kind = KTS_FAULT_RATE, .bytes = 16 * 1000 * 1000};
    kts_add_fault(srv, "/long.mp3", &rate);
    char url[256];
    kts_url(srv, "/long.mp3", url, sizeof url);
    char *dir = test_make_dir();
    unsigned seed = (unsigned)time(NULL);
    printf("kill seed %u\n", seed);
    uint64_t best_prefix = 0;
    int interrupted_rounds = 0;
    for (int round = 0; round < ROUNDS; round++) {
        unsigned asked = kts_request_count(srv, "/long.mp3", "GET");
        pid_t child = start_child(dir, url);
        assert_true(child > 0);
        seed = seed * 1103515245u + 12345u;
        /* Mostly short runs; two long enough to pass the cache's 1 s checkpoint, so that
         * recorded progress and resumption are always exercised: those are timed from the first
         * body bytes, not from the fork (a sanitizer build on a busy machine may take longer
         * than a second to start the child and ask). */
        long ms = (long)(20 + (seed >> 8) % 380);
        if (round == 9 || round == 19) {
            wait_for_body(srv, asked + 1);
            ms = 2000;
        }
        struct timespec pause = {ms / 1000, (ms % 1000) * 1000000L};
        nanosleep(&pause, NULL);
        kill(child, SIGKILL);
        int status;
        waitpid(child, &status, 0);
        uint64_t prefix = verify_offline_prefix(dir, url);
        if (prefix < SIZE)
            interrupted_rounds++;
        if (prefix > best_prefix)
            best_prefix = prefix;
    }
    /* Some run recorded progress and a later one asked only for what was missing. */
    bool resumed = false;
    size_t n = kts_log_count(srv);
    for (size_t i = 0; i < n; i++) {
        kts_log_entry e;
        if (kts_log_get(srv, i, &e) == KTH_OK && strncmp(e.range, "bytes=", 6) == 0 &&
            strtoull(e.range + 6, NULL, 10) > 0)
            resumed = true;
    }
    printf("%d of %d kills left a partial file; longest verified prefix %llu bytes; resumed "
           "with Range: %s\n",
           interrupted_rounds, ROUNDS, (unsigned long long)best_prefix, resumed ? "yes" : "no");
    assert_true(resumed);

    /* A last, uninterrupted run completes the file byte-exact. */
    kth_cache *cache = open_cache(dir, false);
    kth_stream_options so;
    kth_stream_options_init(&so);
    so.cache = cache;
    so.read_timeout_ms = 20000;
    kth_stream *s;
    char err[512];
    assert_int_equal(kth_stream_open(url, &so, &s, err, sizeof err), KTH_OK);
    static uint8_t buf[256 * 1024];
    uint64_t pos = 0;
    for (;;) {
        int64_t r = kth_stream_read(s, buf, sizeof buf);
        if (r == 0)
            break;
        assert_true(r > 0);
        assert_int_equal(kts_synth_check(SEED, pos, buf, (size_t)r), (size_t)r);
        pos += (uint64_t)r;
    }
    assert_int_equal(pos, SIZE);
    kth_stream_close(s);
    kth_cache_unref(cache);
    kth_shutdown();
    kts_stop(srv);
    assert_int_equal(test_remove_tree(dir), 0);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kill_9_during_download_never_serves_wrong_bytes_and_resumes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
