/*
 * test_many_streams.c — a thousand HLS streams of several segments each, open at once in one
 * process whose descriptor limit is the common default of 1,024: every open succeeds, every byte
 * is right, and the streams cost at most two descriptors each on average however many segments
 * they have read (cache data files are opened while used and closed least recently used first,
 * under a process-wide cap).
 *
 * The streams run in a child process, so lowering its limit leaves the test runner alone.
 */
#include "test_progressive_support.h"

#include <dirent.h>
#include <stdbool.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

enum { STREAMS = 1000, SEGMENTS = 4, SEGMENT_BYTES = 188 * 20, FD_LIMIT = 1024 };

static uint64_t seed_of(int stream, int segment)
{
    return 1000 + (uint64_t)stream * SEGMENTS + (uint64_t)segment;
}

static size_t open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return 0;
    size_t n = 0;
    while (readdir(d))
        n++;
    closedir(d);
    return n > 3 ? n - 3 : 0; /* ".", ".." and the directory's own descriptor */
}

/* True when buf[0..n), read at byte pos of stream i, holds its segments' bytes. */
static bool bytes_right(int i, uint64_t pos, const uint8_t *buf, size_t n)
{
    while (n > 0) {
        uint64_t seg = pos / SEGMENT_BYTES, at = pos % SEGMENT_BYTES;
        size_t k = SEGMENT_BYTES - at < n ? (size_t)(SEGMENT_BYTES - at) : n;
        if (seg >= SEGMENTS || kts_ts_synth_check(seed_of(i, (int)seg), at, buf, k) != k)
            return false;
        buf += k;
        n -= k;
        pos += k;
    }
    return true;
}

/* Reads stream i to its end; 0 when every byte is right. */
static int read_exact(kth_stream *s, int i, char *why, size_t whylen)
{
    uint8_t buf[8192];
    uint64_t pos = 0;
    for (;;) {
        int64_t n = kth_stream_read(s, buf, sizeof buf);
        if (n == 0)
            break;
        if (n < 0) {
            char detail[256];
            kth_stream_last_error(s, detail, sizeof detail);
            snprintf(why, whylen, "read at %llu: %s (%s)", (unsigned long long)pos,
                     kth_strerror((int)n), detail);
            return 1;
        }
        if (!bytes_right(i, pos, buf, (size_t)n)) {
            snprintf(why, whylen, "wrong byte near offset %llu", (unsigned long long)pos);
            return 1;
        }
        pos += (uint64_t)n;
    }
    if (pos != SEGMENTS * SEGMENT_BYTES) {
        snprintf(why, whylen, "ended at %llu", (unsigned long long)pos);
        return 1;
    }
    return 0;
}

/* Stream i: a VOD media playlist of SEGMENTS transport-stream segments. 0 when served. */
static int add_presentation(kts_server *srv, int i)
{
    char playlist[1024], path[64];
    int n = snprintf(playlist, sizeof playlist,
                     "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:4\n"
                     "#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-MEDIA-SEQUENCE:0\n");
    for (int k = 0; k < SEGMENTS; k++) {
        n += snprintf(playlist + n, sizeof playlist - (size_t)n, "#EXTINF:4.0,\ns%d.ts\n", k);
        snprintf(path, sizeof path, "/h%d/s%d.ts", i, k);
        if (kts_add_ts_synth(srv, path, SEGMENT_BYTES, seed_of(i, k), NULL) != 0)
            return -1;
    }
    n += snprintf(playlist + n, sizeof playlist - (size_t)n, "#EXT-X-ENDLIST\n");
    snprintf(path, sizeof path, "/h%d/index.m3u8", i);
    return kts_add_body(srv, path, playlist, (size_t)n, NULL);
}

/* The child's whole work, with its own server, downloader and cache (the child is forked before
 * any thread starts); its exit status: 0 passed, 1 failed (reason on stderr). */
static int many_streams_child(const char *dir)
{
    struct rlimit rl = {FD_LIMIT, FD_LIMIT};
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
        perror("setrlimit");
        return 1;
    }
    kts_server *srv = NULL;
    if (kts_start(NULL, &srv) != 0)
        return 1;
    for (int i = 0; i < STREAMS; i++)
        if (add_presentation(srv, i) != 0)
            return 1;
    const char *base_url = kts_base_url(srv);
    kth_downloader *d = NULL;
    char err[400];
    if (kth_downloader_new(NULL, &d, err, sizeof err) != KTH_OK) {
        fprintf(stderr, "downloader: %s\n", err);
        return 1;
    }
    kth_cache_options co;
    kth_cache_options_init(&co);
    co.dir = dir;
    co.no_sync = true;
    kth_cache *cache = NULL;
    if (kth_cache_open(&co, &cache, err, sizeof err) != KTH_OK) {
        fprintf(stderr, "cache: %s\n", err);
        return 1;
    }
    kth_stream **s = calloc(STREAMS, sizeof *s);
    if (!s)
        return 1;
    size_t before = open_fds();
    char why[512] = "";
    int failed = 0;
    for (int i = 0; i < STREAMS && !failed; i++) {
        char url[512];
        snprintf(url, sizeof url, "%s/h%d/index.m3u8", base_url, i);
        kth_stream_options so;
        kth_stream_options_init(&so);
        so.downloader = d;
        so.cache = cache;
        so.read_timeout_ms = 60000;
        kth_status st = kth_stream_open(url, &so, &s[i], err, sizeof err);
        if (st != KTH_OK) {
            snprintf(why, sizeof why, "open %d: %s (%s)", i, kth_strerror(st), err);
            failed = 1;
        }
    }
    /* Every stream reads its file while all of them are open. */
    for (int i = 0; i < STREAMS && !failed; i++)
        failed = read_exact(s[i], i, why, sizeof why);
    size_t during = open_fds();
    for (int i = 0; i < STREAMS; i++)
        kth_stream_close(s[i]);
    free(s);
    kth_cache_unref(cache);
    kth_downloader_unref(d);
    kts_stop(srv);
    double per_stream = (double)(during - (during > before ? before : during)) / STREAMS;
    fprintf(stderr, "%d streams open: %zu descriptors before, %zu with them (%.2f each)\n", STREAMS,
            before, during, per_stream);
    if (!failed && per_stream > 2.0) {
        snprintf(why, sizeof why, "%.2f descriptors per stream", per_stream);
        failed = 1;
    }
    if (failed)
        fprintf(stderr, "%s\n", why);
    return failed;
}

static void test_a_thousand_streams_under_the_default_descriptor_limit(void **state)
{
    (void)state;
    char *dir = test_make_dir();
    assert_non_null(dir);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        alarm(120); /* bounds a hang; the parent sees the signal */
        _exit(many_streams_child(dir));
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_int_equal(test_remove_tree(dir), 0);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_thousand_streams_under_the_default_descriptor_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
