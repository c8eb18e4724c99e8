/*
 * test_hls_prefetch.c — kth_hls_prefetch and `kithara download`: a prefetched variant (clear,
 * AES-128, fMP4) replays offline byte-exact with no request to the server; every variant with
 * KTH_HLS_ALL_VARIANTS, the top one with KTH_HLS_TOP_VARIANT; a second prefetch fetches no
 * segment again; progress reports are consistent and a false return cancels, also while a
 * segment is held back; a stall ends at the read timeout; bad arguments, a 404 master and a
 * failing segment give clear errors; a live or event playlist, which has no end to fetch, is
 * refused at once; `kithara download` fetches the top variant by default.
 */
#include "kts_live.h"
#include "test_hls_support.h"

#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* What the progress callback saw, and when it says stop. */
typedef struct recorder {
    unsigned calls;
    unsigned cancel_at_call;  /* return false at this call (from 1); 0: never */
    uint64_t cancel_at_bytes; /* return false at a report with this many bytes; 0: never */
    int cancel_when_done;     /* return false once this many variants are done; 0: never */
    kth_hls_progress first, last;
    int order[8]; /* the variants in the order they started */
    size_t started;
} recorder;

static bool record(void *user, const kth_hls_progress *p)
{
    recorder *r = user;
    if (r->calls > 0) {
        /* Within a variant bytes and seconds only grow; variants_done never goes back. */
        assert_true(p->variants_done >= r->last.variants_done);
        assert_true(p->bytes_all >= r->last.bytes_all);
        if (p->variant == r->last.variant && p->bytes > 0) {
            assert_true(p->bytes >= r->last.bytes);
            assert_true(p->seconds >= r->last.seconds);
        }
    }
    if (p->bytes == 0 && (r->calls == 0 || p->variant != r->last.variant) && r->started < 8)
        r->order[r->started++] = p->variant;
    assert_true(p->total_bytes == 0 || p->bytes <= p->total_bytes);
    assert_true(p->seconds <= p->total_seconds + 1e-9);
    assert_true(p->variants_done <= p->variant_count);
    r->calls++;
    if (r->calls == 1)
        r->first = *p;
    r->last = *p;
    if (r->cancel_at_call && r->calls == r->cancel_at_call)
        return false;
    if (r->cancel_at_bytes && p->bytes == r->cancel_at_bytes)
        return false;
    if (r->cancel_when_done && p->variants_done >= r->cancel_when_done)
        return false;
    return true;
}

static kth_status prefetch(struct hls_env *e, const char *path, int variant, recorder *r, char *err,
                           size_t errlen)
{
    char url[512];
    kts_url(e->srv, path, url, sizeof url);
    kth_stream_options opts;
    kth_stream_options_init(&opts);
    opts.read_timeout_ms = 20000; /* hang guard only */
    opts.bus = e->bus;
    opts.downloader = e->d;
    opts.cache = e->cache;
    return kth_hls_prefetch(url, &opts, variant, r ? record : NULL, r, err, errlen);
}

static void prefetch_ok(struct hls_env *e, const char *path, int variant, recorder *r)
{
    char err[1024] = "";
    kth_status st = prefetch(e, path, variant, r, err, sizeof err);
    if (st != KTH_OK)
        fail_msg("prefetch %s variant %d: %s (%s)", path, variant, kth_strerror(st), err);
}

/* Reopens the test's cache offline and forgets what the server saw. */
static void go_offline(struct hls_env *e)
{
    kth_cache_unref(e->cache);
    e->cache = hls_open_cache(e->dir, true);
    kts_reset(e->srv);
}

/* Plays `variant` of the master offline and compares it with the fixture files. */
static void assert_offline_variant(struct hls_env *e, const char *master, int variant,
                                   const char *dir, const char *clear_dir)
{
    kth_stream *s = hls_open_variant(e, master, variant);
    bytes got = read_to_end(s, false);
    bytes want = expected_variant(dir, clear_dir);
    assert_same_bytes(&got, &want);
    assert_int_equal(kth_stream_current_variant(s), variant);
    free(got.data);
    free(want.data);
    kth_stream_close(s);
}

/* GET requests for the segment (and init) files of a fixture variant. */
static unsigned segment_gets(struct hls_env *e, const char *dir)
{
    variant_files v = list_variant(dir);
    unsigned n = 0;
    for (size_t i = 0; i < v.count; i++) {
        char path[512];
        snprintf(path, sizeof path, "/%s/%s", dir, v.names[i]);
        n += kts_request_count(e->srv, path, "GET");
    }
    return n;
}

static double fixture_duration(const char *dir)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s/index.m3u8", FIXTURES, dir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[256];
    double total = 0;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "#EXTINF:", 8) == 0)
            total += atof(line + 8);
    fclose(f);
    return total;
}

static void test_one_ts_variant_prefetched_plays_offline_byte_exact(void **state)
{
    struct hls_env *e = *state;
    recorder r = {0};
    prefetch_ok(e, "/ts/master.m3u8", 1, &r);

    /* Only variant 1's segments were fetched, each once. */
    variant_files v = list_variant("ts/v128");
    assert_int_equal(segment_gets(e, "ts/v128"), v.count);
    assert_int_equal(segment_gets(e, "ts/v64"), 0);
    assert_int_equal(segment_gets(e, "ts/v256"), 0);

    /* Progress: a start report, an end report with the exact length and duration. */
    bytes want = expected_variant("ts/v128", NULL);
    assert_true(r.calls >= 2);
    assert_int_equal(r.first.variant, 1);
    assert_int_equal(r.first.bytes, 0);
    assert_int_equal(r.first.variants_done, 0);
    assert_int_equal(r.first.variant_count, 1);
    assert_int_equal(r.last.variant, 1);
    assert_int_equal(r.last.variants_done, 1);
    assert_int_equal(r.last.bytes, want.len);
    assert_int_equal(r.last.bytes_all, want.len);
    assert_int_equal(r.last.total_bytes, want.len);
    double duration = fixture_duration("ts/v128");
    assert_true(r.last.total_seconds > duration - 1e-3 && r.last.total_seconds < duration + 1e-3);
    assert_true(r.last.seconds == r.last.total_seconds);
    free(want.data);

    go_offline(e);
    assert_offline_variant(e, "/ts/master.m3u8", 1, "ts/v128", NULL);
    assert_int_equal(kts_log_count(e->srv), 0);

    /* Another variant was not prefetched: offline it fails (at open, or at its first byte). */
    kth_hls_options h;
    kth_hls_options_init(&h);
    h.fixed_start = true;
    h.initial_variant = 0;
    h.start_manual = true;
    kth_stream *s = NULL;
    char err[1024];
    kth_status st = hls_try_open(e, "/ts/master.m3u8", NULL, &h, &s, err, sizeof err);
    if (st == KTH_OK) {
        uint8_t buf[4096];
        assert_int_equal(kth_stream_read(s, buf, sizeof buf), KTH_ERR_OFFLINE_MISS);
        kth_stream_close(s);
    } else {
        assert_int_equal(st, KTH_ERR_OFFLINE_MISS);
    }
    assert_int_equal(kts_log_count(e->srv), 0);
}

static void test_encrypted_variant_prefetched_plays_offline_byte_exact(void **state)
{
    struct hls_env *e = *state;
    prefetch_ok(e, "/aes/master.m3u8", 1, NULL);
    assert_int_equal(kts_request_count(e->srv, "/aes/key.bin", "GET"), 1);
    go_offline(e);
    assert_offline_variant(e, "/aes/master.m3u8", 1, "aes/v128", "aes/clear/v128");
    assert_int_equal(kts_log_count(e->srv), 0);
}

static void test_all_variants_prefetched_play_offline(void **state)
{
    struct hls_env *e = *state;
    recorder r = {0};
    prefetch_ok(e, "/fmp4/master.m3u8", KTH_HLS_ALL_VARIANTS, &r);
    static const char *const dirs[] = {"fmp4/v64", "fmp4/v128", "fmp4/v256"};
    uint64_t total = 0;
    for (int v = 0; v < 3; v++) {
        assert_int_equal(segment_gets(e, dirs[v]), list_variant(dirs[v]).count);
        bytes want = expected_variant(dirs[v], NULL);
        total += want.len;
        free(want.data);
    }
    assert_int_equal(r.started, 3);
    assert_int_equal(r.order[0], 0);
    assert_int_equal(r.order[1], 1);
    assert_int_equal(r.order[2], 2);
    assert_int_equal(r.last.variant_count, 3);
    assert_int_equal(r.last.variants_done, 3);
    assert_int_equal(r.last.bytes_all, total);

    go_offline(e);
    for (int v = 0; v < 3; v++)
        assert_offline_variant(e, "/fmp4/master.m3u8", v, dirs[v], NULL);
    assert_int_equal(kts_log_count(e->srv), 0);
}

static void test_top_variant_prefetch_and_a_second_prefetch_fetches_no_segment(void **state)
{
    struct hls_env *e = *state;
    recorder r = {0};
    prefetch_ok(e, "/ts/master.m3u8", KTH_HLS_TOP_VARIANT, &r);
    assert_int_equal(r.last.variant, 2);
    assert_int_equal(r.last.variant_count, 1);
    assert_int_equal(segment_gets(e, "ts/v256"), list_variant("ts/v256").count);
    assert_int_equal(segment_gets(e, "ts/v64"), 0);

    kts_reset(e->srv);
    prefetch_ok(e, "/ts/master.m3u8", 2, NULL);
    assert_int_equal(segment_gets(e, "ts/v256"), 0);
    assert_int_equal(kts_request_count(e->srv, "/ts/master.m3u8", NULL), 0);

    go_offline(e);
    assert_offline_variant(e, "/ts/master.m3u8", 2, "ts/v256", NULL);
    /* The offline cache holds it all: a prefetch through it succeeds without the network. */
    prefetch_ok(e, "/ts/master.m3u8", 2, NULL);
    assert_int_equal(kts_log_count(e->srv), 0);
}

static void test_bad_arguments_are_refused(void **state)
{
    struct hls_env *e = *state;
    char err[1024];
    assert_int_equal(prefetch(e, "/ts/master.m3u8", 3, NULL, err, sizeof err),
                     KTH_ERR_OUT_OF_RANGE);
    assert_non_null(strstr(err, "out of range"));
    assert_non_null(strstr(err, "/ts/master.m3u8"));
    assert_int_equal(prefetch(e, "/ts/master.m3u8", -3, NULL, err, sizeof err),
                     KTH_ERR_OUT_OF_RANGE);
    assert_int_equal(prefetch(e, "/ts/v64/index.m3u8", 1, NULL, err, sizeof err),
                     KTH_ERR_OUT_OF_RANGE);

    /* Not HLS: refused before any request. */
    kts_reset(e->srv);
    assert_int_equal(prefetch(e, "/ts/v64/seg0.ts", 0, NULL, err, sizeof err), KTH_ERR_UNSUPPORTED);
    assert_non_null(strstr(err, "seg0.ts"));
    assert_int_equal(kts_log_count(e->srv), 0);
    assert_int_equal(
        kth_hls_prefetch(FIXTURES "/ts/master.m3u8", NULL, 0, NULL, NULL, err, sizeof err),
        KTH_ERR_UNSUPPORTED);
    assert_int_equal(
        kth_hls_prefetch("ftp://example.invalid/a.m3u8", NULL, 0, NULL, NULL, err, sizeof err),
        KTH_ERR_UNSUPPORTED);
    assert_int_equal(kth_hls_prefetch(NULL, NULL, 0, NULL, NULL, err, sizeof err),
                     KTH_ERR_INVALID_ARG);
    assert_int_equal(kth_hls_prefetch("", NULL, 0, NULL, NULL, NULL, 0), KTH_ERR_INVALID_ARG);

    /* A media playlist URL is a ladder of one. */
    prefetch_ok(e, "/ts/v64/index.m3u8", 0, NULL);
}

/* A live or event playlist has no end yet: there is nothing complete to fetch for offline
 * play, and the prefetch says so at once instead of waiting for an end that may never come. */
static void test_a_live_or_event_playlist_is_refused(void **state)
{
    struct hls_env *e = *state;
    char err[1024];
    kts_live_stream *live = NULL, *event = NULL;
    kts_live cfg = {.window = 4, .target_duration = 2, .segment_size = 1880, .seed = 3};
    assert_int_equal(kts_live_start(e->srv, "/live", &cfg, &live), KTH_OK);
    cfg.event = true;
    assert_int_equal(kts_live_start(e->srv, "/event", &cfg, &event), KTH_OK);

    assert_int_equal(prefetch(e, "/live/live.m3u8", KTH_HLS_ALL_VARIANTS, NULL, err, sizeof err),
                     KTH_ERR_UNSUPPORTED);
    assert_non_null(strstr(err, "live playlist"));
    assert_int_equal(prefetch(e, "/event/live.m3u8", 0, NULL, err, sizeof err),
                     KTH_ERR_UNSUPPORTED);
    assert_non_null(strstr(err, "event playlist"));
    /* Nothing but the playlists was asked for. */
    for (int n = 0; n < 4; n++) {
        char path[64];
        snprintf(path, sizeof path, "/live/seg%d.ts", n);
        assert_int_equal(kts_request_count(e->srv, path, NULL), 0);
        snprintf(path, sizeof path, "/event/seg%d.ts", n);
        assert_int_equal(kts_request_count(e->srv, path, NULL), 0);
    }
    kts_live_free(event);
    kts_live_free(live);
}

static void test_progress_returning_false_cancels(void **state)
{
    struct hls_env *e = *state;
    char err[1024];
    /* At the very first report: nothing is read. */
    recorder r = {.cancel_at_call = 1};
    assert_int_equal(prefetch(e, "/ts/master.m3u8", 0, &r, err, sizeof err), KTH_ERR_CANCELLED);
    assert_int_equal(r.calls, 1);
    assert_non_null(strstr(err, "cancelled"));

    /* At the end of the first of three variants: the others are never fetched. */
    kts_reset(e->srv);
    recorder r2 = {.cancel_when_done = 1};
    assert_int_equal(prefetch(e, "/fmp4/master.m3u8", KTH_HLS_ALL_VARIANTS, &r2, err, sizeof err),
                     KTH_ERR_CANCELLED);
    assert_int_equal(r2.last.variant, 0);
    assert_int_equal(r2.last.variants_done, 1);
    assert_int_equal(segment_gets(e, "fmp4/v64"), list_variant("fmp4/v64").count);
    assert_int_equal(segment_gets(e, "fmp4/v128"), 0);
    assert_int_equal(segment_gets(e, "fmp4/v256"), 0);
}

static void test_cancel_while_a_segment_is_held_back(void **state)
{
    struct hls_env *e = *state;
    /* seg3 never comes: the reader blocks after seg0..2, and a report while it waits there
     * cancels. */
    assert_int_equal(kts_add_fault(e->srv, "/ts/v64/seg3.ts", &(kts_fault){.kind = KTS_FAULT_GATE}),
                     KTH_OK);
    uint64_t before = 0;
    for (int k = 0; k < 3; k++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/ts/v64/seg%d.ts", FIXTURES, k);
        bytes b = read_file(path);
        before += b.len;
        free(b.data);
    }
    recorder r = {.cancel_at_bytes = before};
    char err[1024];
    int64_t t0 = test_now_ms();
    assert_int_equal(prefetch(e, "/ts/master.m3u8", 0, &r, err, sizeof err), KTH_ERR_CANCELLED);
    assert_true(test_now_ms() - t0 < 10000);
    assert_int_equal(r.last.variants_done, 0);
    assert_int_equal(r.last.bytes, before);
    assert_true(kts_request_count(e->srv, "/ts/v64/seg3.ts", NULL) >= 1);
    /* The reader stood at the start of seg3: that is its media time. */
    double t = 2.020133 + 1.996922 + 1.996911;
    assert_true(r.last.seconds > t - 1e-6 && r.last.seconds < t + 1e-6);
    assert_non_null(strstr(err, "cancelled"));
}

static void test_stalled_segment_times_out_after_the_read_timeout(void **state)
{
    struct hls_env *e = *state;
    assert_int_equal(kts_add_fault(e->srv, "/ts/v64/seg3.ts", &(kts_fault){.kind = KTS_FAULT_GATE}),
                     KTH_OK);
    char url[512];
    kts_url(e->srv, "/ts/master.m3u8", url, sizeof url);
    kth_stream_options opts;
    kth_stream_options_init(&opts);
    opts.read_timeout_ms = 600;
    opts.downloader = e->d;
    opts.cache = e->cache;
    /* With a callback (reads in slices) and without (one wait per read). */
    for (int with_callback = 0; with_callback < 2; with_callback++) {
        recorder r = {0};
        char err[1024];
        int64_t t0 = test_now_ms();
        kth_status st =
            kth_hls_prefetch(url, &opts, 0, with_callback ? record : NULL, &r, err, sizeof err);
        int64_t took = test_now_ms() - t0;
        assert_int_equal(st, KTH_ERR_TIMEOUT);
        assert_true(took >= 600 && took < 10000);
        assert_non_null(strstr(err, url));
        assert_non_null(strstr(err, "no bytes for 600 ms"));
        if (with_callback)
            assert_true(r.calls >= 2); /* the start, and reports while it waited */
    }
}

static void test_404_master_names_the_url(void **state)
{
    struct hls_env *e = *state;
    char err[1024];
    kth_status st = prefetch(e, "/absent/master.m3u8", KTH_HLS_TOP_VARIANT, NULL, err, sizeof err);
    assert_int_equal(st, KTH_ERR_NOT_FOUND);
    char url[512];
    kts_url(e->srv, "/absent/master.m3u8", url, sizeof url);
    assert_non_null(strstr(err, url));
    assert_non_null(strstr(err, "404"));
}

static void test_failing_segment_names_the_segment(void **state)
{
    struct hls_env *e = *state;
    assert_int_equal(kts_add_fault(e->srv, "/ts/v64/seg3.ts",
                                   &(kts_fault){.kind = KTS_FAULT_STATUS, .status = 403}),
                     KTH_OK);
    char err[1024];
    kth_status st = prefetch(e, "/ts/master.m3u8", 0, NULL, err, sizeof err);
    assert_int_equal(st, KTH_ERR_HTTP);
    assert_non_null(strstr(err, "/ts/master.m3u8"));
    assert_non_null(strstr(err, "seg3.ts"));
    assert_non_null(strstr(err, "403"));
}

#ifdef KTH_TOOL_PATH
/* Runs the kithara tool with args; its standard output goes to out (size bytes, NUL-ended).
 * Returns its exit status. */
static int run_tool(const char *const *args, char *out, size_t size)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], STDOUT_FILENO);
        close(fds[0]);
        close(fds[1]);
        execv(KTH_TOOL_PATH, (char *const *)args);
        _exit(127);
    }
    close(fds[1]);
    size_t got = 0;
    ssize_t n;
    while (got + 1 < size && (n = read(fds[0], out + got, size - 1 - got)) > 0)
        got += (size_t)n;
    out[got] = '\0';
    close(fds[0]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void test_download_command(void **state)
{
    struct hls_env *e = *state;
    char *dir = test_make_dir();
    char url[512], bad[512], out[4096];
    kts_url(e->srv, "/aes/master.m3u8", url, sizeof url);
    kts_url(e->srv, "/absent/master.m3u8", bad, sizeof bad);

    const char *const download[] = {"kithara", "download", "--cache-dir", dir, url, NULL};
    assert_int_equal(run_tool(download, out, sizeof out), 0);
    assert_non_null(strstr(out, "variant 1")); /* the default: the top variant */
    assert_non_null(strstr(out, url));
    assert_int_equal(kts_request_count(e->srv, "/aes/v64/seg0.ts", "GET"), 0);

    const char *const usage[] = {"kithara", "download", "--variant", "x", url, NULL};
    assert_int_equal(run_tool(usage, out, sizeof out), 2);
    const char *const both[] = {"kithara", "download", "--all", "--variant", "0", url, NULL};
    assert_int_equal(run_tool(both, out, sizeof out), 2);
    const char *const missing[] = {"kithara", "download", "--cache-dir", dir, bad, NULL};
    assert_int_equal(run_tool(missing, out, sizeof out), 4); /* HTTP: the 404 of the master */
    assert_string_equal(out, "");

    /* What the tool downloaded plays offline, byte-exact. */
    kts_reset(e->srv);
    kth_cache_unref(e->cache);
    e->cache = hls_open_cache(dir, true);
    assert_offline_variant(e, "/aes/master.m3u8", 1, "aes/v128", "aes/clear/v128");
    assert_int_equal(kts_log_count(e->srv), 0);
    kth_cache_unref(e->cache);
    e->cache = hls_open_cache(e->dir, false);

    assert_int_equal(test_remove_tree(dir), 0);
    free(dir);
}
#endif

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_one_ts_variant_prefetched_plays_offline_byte_exact,
                                        hls_setup, hls_teardown),
        cmocka_unit_test_setup_teardown(test_encrypted_variant_prefetched_plays_offline_byte_exact,
                                        hls_setup, hls_teardown),
        cmocka_unit_test_setup_teardown(test_all_variants_prefetched_play_offline, hls_setup,
                                        hls_teardown),
        cmocka_unit_test_setup_teardown(
            test_top_variant_prefetch_and_a_second_prefetch_fetches_no_segment, hls_setup,
            hls_teardown),
        cmocka_unit_test_setup_teardown(test_bad_arguments_are_refused, hls_setup, hls_teardown),
        cmocka_unit_test_setup_teardown(test_a_live_or_event_playlist_is_refused, hls_setup,
                                        hls_teardown),
        cmocka_unit_test_setup_teardown(test_progress_returning_false_cancels, hls_setup,
                                        hls_teardown),
        cmocka_unit_test_setup_teardown(test_cancel_while_a_segment_is_held_back, hls_setup,
                                        hls_teardown),
        cmocka_unit_test_setup_teardown(test_stalled_segment_times_out_after_the_read_timeout,
                                        hls_setup, hls_teardown),
        cmocka_unit_test_setup_teardown(test_404_master_names_the_url, hls_setup, hls_teardown),
        cmocka_unit_test_setup_teardown(test_failing_segment_names_the_segment, hls_setup,
                                        hls_teardown),
#ifdef KTH_TOOL_PATH
        cmocka_unit_test_setup_teardown(test_download_command, hls_setup, hls_teardown),
#endif
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
