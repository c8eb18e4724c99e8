/*
 * test_progressive.c — progressive HTTP files through kth_stream, the downloader and the asset
 * cache, against the loopback test server: byte-exact reads of several sizes and under every
 * fault of the server's menu, hundreds of random seeks, one GET for two streams of a URL,
 * resuming a partial download in a new process-like cache instance, offline playback and
 * misses, a file that changed on the server, and clear errors.
 */
#include "test_progressive_support.h"

#include "storage/faults.h"

#include <errno.h>

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

static int setup(void **state)
{
    return env_setup(state, 500);
}

static int teardown_faults(void **state)
{
    storage_set_fault_hook(NULL, NULL);
    return teardown(state);
}

static void test_files_of_several_sizes_read_byte_exact(void **state)
{
    struct env *e = *state;
    const uint64_t sizes[] = {0, 1, 1000, 65537, 3 * 1024 * 1024 + 5};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        char path[64];
        snprintf(path, sizeof path, "/size%zu.mp3", i);
        kts_add_synth(e->srv, path, sizes[i], 100 + i, NULL);
        kth_stream *s = open_stream(e, path, NULL, 0, 20000);
        read_all_checked(s, 100 + i, sizes[i]);
        uint64_t len;
        assert_true(kth_stream_length(s, &len));
        assert_int_equal(len, sizes[i]);
        kth_stream_close(s);
    }
}

/* Every fault the server can inject that a download must survive, each on its own file. */
static void test_faults_are_survived_byte_exact(void **state)
{
    struct env *e = *state;
    const uint64_t size = 1500 * 1000;
    const kts_fault faults[] = {
        {.kind = KTS_FAULT_CLOSE_AFTER, .first_request = 1, .last_request = 2, .bytes = 300000},
        {.kind = KTS_FAULT_STALL_AFTER,
         .first_request = 1,
         .last_request = 1,
         .bytes = 200000,
         .ms = 3000},
        {.kind = KTS_FAULT_STATUS, .first_request = 1, .last_request = 2, .status = 503},
        {.kind = KTS_FAULT_STATUS,
         .first_request = 1,
         .last_request = 1,
         .status = 429,
         .retry_after = "0"},
        {.kind = KTS_FAULT_LATENCY, .ms = 50},
        {.kind = KTS_FAULT_RATE, .bytes = 4 * 1000 * 1000},
        {.kind = KTS_FAULT_REDIRECT, .hops = 3},
        {.kind = KTS_FAULT_CHUNKED},
        {.kind = KTS_FAULT_IGNORE_RANGE},
    };
    for (size_t i = 0; i < sizeof faults / sizeof faults[0]; i++) {
        char path[64];
        snprintf(path, sizeof path, "/fault%zu.aac", i);
        kts_add_synth(e->srv, path, size, 200 + i, NULL);
        kts_add_fault(e->srv, path, &faults[i]);
        kth_stream *s = open_stream(e, path, NULL, 0, 20000);
        read_all_checked(s, 200 + i, size);
        kth_stream_close(s);
    }
}

static void test_http_errors_fail_with_url_and_status(void **state)
{
    struct env *e = *state;
    kth_stream *s = open_stream(e, "/missing.mp3", NULL, 0, 20000);
    uint8_t buf[100];
    int64_t n = kth_stream_read(s, buf, sizeof buf);
    assert_int_equal(n, KTH_ERR_NOT_FOUND);
    char detail[512];
    kth_stream_last_error(s, detail, sizeof detail);
    const char *named = strstr(detail, "/missing.mp3");
    assert_non_null(named);
    assert_null(strstr(named + 1, "/missing.mp3")); /* named once, not once per layer */
    assert_non_null(strstr(detail, "404"));
    kth_stream_close(s);
}

static atomic_int disk_writes;

/* The disk fills after its first two writes. */
static int disk_fills(void *user, storage_io_op op, const char *path)
{
    (void)user;
    (void)path;
    return op == STORAGE_IO_WRITE && atomic_fetch_add(&disk_writes, 1) >= 2 ? ENOSPC : 0;
}

/* A path of `len` bytes under /long/ whose last bytes are `tail`, for the long-URL cases. The
 * caller frees it. */
static char *long_path(size_t len, const char *tail)
{
    char *path = malloc(len + 1);
    assert_non_null(path);
    static const char head[] = "/long/";
    size_t t = strlen(tail);
    assert_true(len > sizeof head - 1 + t);
    memcpy(path, head, sizeof head - 1);
    for (size_t i = sizeof head - 1; i < len - t; i++)
        path[i] = (char)('a' + i % 26);
    memcpy(path + len - t, tail, t + 1);
    return path;
}

/* Plays `path` on a disk that fills after two writes: the stream ends with a clear failure
 * that names the cause and the URL's end, after the exact bytes that were kept; it never hangs
 * or hands out bytes the disk did not take. */
static void play_until_the_disk_fills(struct env *e, const char *path, uint64_t seed)
{
    const uint64_t size = 2 * 1000 * 1000;
    kts_add_synth(e->srv, path, size, seed, NULL);
    atomic_store(&disk_writes, 0);
    storage_set_fault_hook(disk_fills, NULL);
    kth_stream *s = open_stream(e, path, NULL, 0, 20000);
    static uint8_t buf[65536];
    uint64_t pos = 0;
    int64_t n;
    while ((n = kth_stream_read(s, buf, sizeof buf)) > 0) {
        size_t bad = kts_synth_check(seed, pos, buf, (size_t)n);
        if (bad != (size_t)n)
            fail_msg("wrong byte at offset %llu", (unsigned long long)(pos + bad));
        pos += (uint64_t)n;
    }
    size_t need = kth_stream_last_error(s, NULL, 0);
    char *detail = malloc(need + 1);
    assert_non_null(detail);
    kth_stream_last_error(s, detail, need + 1);
    printf("after %llu bytes (%zu-byte message): %s: %.300s\n", (unsigned long long)pos,
           strlen(detail), kth_status_name((int)n), detail + (need > 300 ? need - 300 : 0));
    assert_int_equal(n, KTH_ERR_IO);
    assert_true(pos < size);
    assert_non_null(strstr(detail, strerror(ENOSPC)));
    const char *base = strrchr(path, '/');
    assert_non_null(strstr(detail, base)); /* the URL's end, where signed URLs differ */
    free(detail);
    kth_stream_close(s);
}

static void test_a_full_disk_fails_the_stream_naming_the_cause(void **state)
{
    play_until_the_disk_fills(*state, "/full.mp3", 77);
}

/* The same with a 4,000-byte URL: the message keeps the cause and the URL's end however long
 * the URL is. */
static void test_a_full_disk_under_a_long_url_still_names_the_cause(void **state)
{
    char *path = long_path(4000, "/full-long.mp3");
    play_until_the_disk_fills(*state, path, 78);
    free(path);
}

/* A 404 of a 20,000-byte URL: the status and the URL's end reach the reader. */
static void test_http_errors_of_long_urls_keep_the_status(void **state)
{
    struct env *e = *state;
    char *path = long_path(20000, "/missing-long.mp3");
    kth_stream *s = open_stream(e, path, NULL, 0, 20000);
    uint8_t buf[100];
    int64_t n = kth_stream_read(s, buf, sizeof buf);
    assert_int_equal(n, KTH_ERR_NOT_FOUND);
    size_t need = kth_stream_last_error(s, NULL, 0);
    char *detail = malloc(need + 1);
    assert_non_null(detail);
    kth_stream_last_error(s, detail, need + 1);
    assert_non_null(strstr(detail, "/missing-long.mp3"));
    assert_non_null(strstr(detail, "404"));
    free(detail);
    free(path);
    kth_stream_close(s);
}

static void test_random_seeks_during_download_are_byte_exact(void **state)
{
    struct env *e = *state;
    const uint64_t size = 6 * 1000 * 1000;
    kts_add_synth(e->srv, "/seek.flac", size, 7, NULL);
    kts_fault slow = {.kind = KTS_FAULT_RATE, .bytes = 20 * 1000 * 1000};
    kts_add_fault(e->srv, "/seek.flac", &slow);
    kth_stream *s = open_stream(e, "/seek.flac", NULL, 512 * 1024, 20000);
    unsigned seed = 99;
    uint8_t buf[9000];
    for (int i = 0; i < 300; i++) {
        seed = seed * 1103515245u + 12345u;
        uint64_t target = (seed >> 4) % size;
        assert_int_equal(kth_stream_seek(s, (int64_t)target, SEEK_SET, NULL), KTH_OK);
        int64_t n = kth_stream_read(s, buf, 1 + (seed >> 8) % sizeof buf);
        if (n <= 0)
            fail_msg("read after seek to %llu: %lld", (unsigned long long)target, (long long)n);
        assert_int_equal(kts_synth_check(7, target, buf, (size_t)n), (size_t)n);
    }
    kth_stream_close(s);
}

static void test_two_streams_of_one_url_share_one_download(void **state)
{
    struct env *e = *state;
    const uint64_t size = 2 * 1000 * 1000;
    kts_add_synth(e->srv, "/shared.mp3", size, 31, NULL);
    kth_stream *a = open_stream(e, "/shared.mp3", NULL, 0, 20000);
    kth_stream *b = open_stream(e, "/shared.mp3", NULL, 0, 20000);
    read_all_checked(a, 31, size);
    read_all_checked(b, 31, size);
    assert_int_equal(kts_request_count(e->srv, "/shared.mp3", "GET"), 1);
    kth_stream_close(a);
    kth_stream_close(b);
}

static void test_partial_download_resumes_with_range_after_restart(void **state)
{
    struct env *e = *state;
    const uint64_t size = 4 * 1000 * 1000;
    kts_add_synth(e->srv, "/resume.mp3", size, 41, NULL);
    /* First run: read the first 300 kB with a small read-ahead, then stop. */
    kth_stream *s = open_stream(e, "/resume.mp3", NULL, 256 * 1024, 20000);
    uint8_t buf[100000];
    uint64_t got = 0;
    while (got < 300000) {
        int64_t n = kth_stream_read(s, buf, sizeof buf);
        assert_true(n > 0);
        assert_int_equal(kts_synth_check(41, got, buf, (size_t)n), (size_t)n);
        got += (uint64_t)n;
    }
    kth_stream_close(s);
    /* A new cache instance over the same directory, as a restarted process would open. */
    kth_cache_unref(e->cache);
    e->cache = open_cache(e->dir, false, 0);
    kts_reset(e->srv);
    s = open_stream(e, "/resume.mp3", NULL, 0, 20000);
    read_all_checked(s, 41, size);
    kth_stream_close(s);
    kts_log_entry first;
    assert_int_equal(kts_log_find(e->srv, "/resume.mp3", 1, &first), KTH_OK);
    /* The restarted download asked only for what was missing. */
    assert_true(strncmp(first.range, "bytes=", 6) == 0);
    unsigned long long from = strtoull(first.range + 6, NULL, 10);
    assert_true(from >= 300000);
}

static void test_offline_plays_cached_and_fails_fast_on_misses(void **state)
{
    struct env *e = *state;
    const uint64_t size = 500 * 1000;
    kts_add_synth(e->srv, "/offline.mp3", size, 51, NULL);
    kts_add_synth(e->srv, "/partial.mp3", 4 * size, 52, NULL);
    kth_stream *s = open_stream(e, "/offline.mp3", NULL, 0, 20000);
    read_all_checked(s, 51, size);
    kth_stream_close(s);
    s = open_stream(e, "/partial.mp3", NULL, 64 * 1024, 20000);
    uint8_t buf[1000];
    assert_true(kth_stream_read(s, buf, sizeof buf) > 0);
    kth_stream_close(s);

    kth_cache_unref(e->cache);
    e->cache = open_cache(e->dir, true, 0);
    kts_reset(e->srv);
    s = open_stream(e, "/offline.mp3", NULL, 0, 20000);
    read_all_checked(s, 51, size);
    kth_stream_close(s);

    /* A URL never cached: the open itself fails at once. */
    char url[512];
    kts_url(e->srv, "/never.mp3", url, sizeof url);
    kth_stream_options so;
    kth_stream_options_init(&so);
    so.cache = e->cache;
    so.downloader = e->d;
    kth_stream *none = NULL;
    char err[512];
    assert_int_equal(kth_stream_open(url, &so, &none, err, sizeof err), KTH_ERR_OFFLINE_MISS);
    assert_non_null(strstr(err, "/never.mp3"));

    /* A partly cached file: bytes held play, a missing byte fails at once with OFFLINE_MISS. */
    s = open_stream(e, "/partial.mp3", NULL, 0, 20000);
    assert_int_equal(kth_stream_seek(s, (int64_t)(3 * size), SEEK_SET, NULL), KTH_OK);
    int64_t t0 = test_now_ms();
    assert_int_equal(kth_stream_read(s, buf, sizeof buf), KTH_ERR_OFFLINE_MISS);
    assert_true(test_now_ms() - t0 < 2000);
    kth_stream_last_error(s, err, sizeof err);
    assert_true(strlen(err) > 0);
    kth_stream_close(s);
    assert_int_equal(kts_log_count(e->srv), 0); /* offline means no network at all */
}

static void test_file_changed_on_server_is_refetched_not_spliced(void **state)
{
    struct env *e = *state;
    const uint64_t size = 2 * 1000 * 1000;
    kts_add_synth(e->srv, "/changes.mp3", size, 61, NULL);
    kth_stream *s = open_stream(e, "/changes.mp3", NULL, 128 * 1024, 20000);
    uint8_t buf[10000];
    assert_true(kth_stream_read(s, buf, sizeof buf) > 0);
    kth_stream_close(s);
    /* From the next request on the server holds another version (new ETag). */
    kts_fault change = {.kind = KTS_FAULT_CHANGE_BODY, .first_request = 2, .seed = 62};
    kts_add_fault(e->srv, "/changes.mp3", &change);
    s = open_stream(e, "/changes.mp3", NULL, 0, 20000);
    read_all_checked(s, 62, size); /* every byte of the new version, none of the old */
    kth_stream_close(s);
}

/* A cache over its budget evicts least recently used assets, but never the one a stream has
 * open: that stream keeps reading the right bytes to the end. */
/* The bytes the cache's index holds for the asset whose URL ends in `path` (0 when none). */
static uint64_t asset_bytes(kth_cache *cache, const char *path)
{
    kth_cache_asset *list;
    size_t count;
    assert_int_equal(kth_cache_list(cache, &list, &count), KTH_OK);
    uint64_t bytes = 0;
    for (size_t i = 0; i < count; i++)
        if (list[i].url && strlen(list[i].url) >= strlen(path) &&
            strcmp(list[i].url + strlen(list[i].url) - strlen(path), path) == 0)
            bytes = list[i].bytes;
    kth_cache_list_free(list, count);
    return bytes;
}

static void test_eviction_spares_the_asset_being_played(void **state)
{
    struct env *e = *state;
    const uint64_t size = 1500 * 1000;
    kth_cache_unref(e->cache);
    e->cache = open_cache(e->dir, false, 3 * 1000 * 1000);
    kts_add_synth(e->srv, "/playing.mp3", size, 71, NULL);
    kts_add_synth(e->srv, "/old.mp3", size, 72, NULL);
    kts_add_synth(e->srv, "/new.mp3", size, 73, NULL);
    kth_stream *playing = open_stream(e, "/playing.mp3", NULL, 0, 20000);
    uint8_t buf[50000];
    /* A read returns what is there, which may be less than asked: read until 50 kB are in. */
    for (size_t got = 0; got < sizeof buf;) {
        int64_t n = kth_stream_read(playing, buf + got, sizeof buf - got);
        assert_true(n > 0);
        got += (size_t)n;
    }
    assert_int_equal(kts_synth_check(71, 0, buf, sizeof buf), sizeof buf);
    for (int i = 0; i < 2; i++) {
        kth_stream *s = open_stream(e, i == 0 ? "/old.mp3" : "/new.mp3", NULL, 0, 20000);
        read_all_checked(s, i == 0 ? 72 : 73, size);
        kth_stream_close(s);
    }
    /* The playing asset's background download is recorded when it completes, on the
     * downloader's thread: wait (bounded) until the index holds all of it. (The budget was
     * passed meanwhile, and the writes' own checks evicted what they could: the total never
     * goes past the budget for long.) */
    for (int i = 0; i < 500 && asset_bytes(e->cache, "/playing.mp3") < size; i++)
        nanosleep(&(struct timespec){.tv_nsec = 10 * 1000 * 1000}, NULL);
    assert_int_equal(asset_bytes(e->cache, "/playing.mp3"), size);
    kth_cache_stats st;
    kth_cache_gc_result gc;
    assert_int_equal(kth_cache_gc(e->cache, &gc), KTH_OK);
    assert_int_equal(kth_cache_get_stats(e->cache, &st), KTH_OK);
    assert_true(st.evicted_assets >= 1);
    assert_true(st.total_bytes <= 3 * 1000 * 1000);
    /* The oldest unplayed asset went; the playing one is intact and reads on. */
    kth_cache_asset *list;
    size_t count;
    assert_int_equal(kth_cache_list(e->cache, &list, &count), KTH_OK);
    bool has_old = false, has_playing = false;
    for (size_t i = 0; i < count; i++) {
        if (list[i].url && strstr(list[i].url, "/old.mp3"))
            has_old = true;
        if (list[i].url && strstr(list[i].url, "/playing.mp3"))
            has_playing = true;
    }
    kth_cache_list_free(list, count);
    assert_false(has_old);
    assert_true(has_playing);
    read_all_checked(playing, 71, size);
    kth_stream_close(playing);
}

static void test_a_stream_is_told_when_the_cache_grows_past_its_budget(void **state)
{
    struct env *e = *state;
    const uint64_t size = 1500 * 1000, budget = 500 * 1000;
    kth_cache_unref(e->cache);
    e->cache = open_cache(e->dir, false, budget);
    kts_add_synth(e->srv, "/long.mp3", size, 74, NULL);
    kth_bus *bus;
    kth_subscription *sub;
    assert_int_equal(kth_bus_new(&bus), KTH_OK);
    assert_int_equal(kth_bus_subscribe(bus, 1024, &sub), KTH_OK);
    char url[512], err[512];
    kts_url(e->srv, "/long.mp3", url, sizeof url);
    kth_stream_options so;
    kth_stream_options_init(&so);
    so.downloader = e->d;
    so.cache = e->cache;
    so.bus = bus;
    kth_stream *s = NULL;
    assert_int_equal(kth_stream_open(url, &so, &s, err, sizeof err), KTH_OK);
    read_all_checked(s, 74, size);
    /* The stream's own bytes are all the cache holds: it keeps them, and says it is over. */
    int over = 0;
    kth_event ev;
    /* Published on the downloader's thread: it may trail the last byte read. */
    while (kth_events_next(sub, &ev, over == 0 ? 5000 : 0) == KTH_OK) {
        assert_int_not_equal(ev.kind, KTH_EVENT_CACHE_WITHIN_BUDGET);
        if (ev.kind != KTH_EVENT_CACHE_OVER_BUDGET)
            continue;
        over++;
        assert_int_equal(ev.payload.cache.budget, budget);
        assert_true(ev.payload.cache.bytes > budget);
        assert_true(ev.payload.cache.bytes <= size);
    }
    assert_int_equal(over, 1);
    kth_stream_close(s);
    kth_subscription_free(sub);
    kth_bus_unref(bus);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_files_of_several_sizes_read_byte_exact, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_faults_are_survived_byte_exact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_errors_fail_with_url_and_status, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_full_disk_fails_the_stream_naming_the_cause, setup,
                                        teardown_faults),
        cmocka_unit_test_setup_teardown(test_a_full_disk_under_a_long_url_still_names_the_cause,
                                        setup, teardown_faults),
        cmocka_unit_test_setup_teardown(test_http_errors_of_long_urls_keep_the_status, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_random_seeks_during_download_are_byte_exact, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_two_streams_of_one_url_share_one_download, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_partial_download_resumes_with_range_after_restart,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_offline_plays_cached_and_fails_fast_on_misses, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_file_changed_on_server_is_refetched_not_spliced, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_eviction_spares_the_asset_being_played, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_stream_is_told_when_the_cache_grows_past_its_budget,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
