/*
 * test_demuxer_access.c — real demuxers' access patterns against a kithara HLS stream: recorded
 * from FFmpeg, replayed without it.
 *
 * The scenario: a program decodes a kithara HLS stream with FFmpeg through kithara/ffmpeg.h
 * (kth_avio, which reports no size for HLS, so no demuxer probes the end of a splice). A
 * recording is every call FFmpeg makes to kth_avio's read and seek callbacks while its mpegts
 * (TS fixture) or mov (fMP4 fixture) demuxer opens a variant, reads it to its end, then seeks
 * back to the start and reads on, as a player does. Two settings: kithara's decoder's (bounded
 * probing, AVFMT_FLAG_IGNIDX) and FFmpeg's defaults (mov then walks every fragment while it
 * opens, reading far past the reader's segment). The recordings are committed in
 * tests/fixtures/access (their first line names the FFmpeg that made them; `test_demuxer_access
 * --record DIR` writes them again), and one case records with the FFmpeg installed now, so a
 * change in FFmpeg's demuxers is met too.
 *
 * The replay checks kithara's side of the contract under those patterns:
 * - every byte a read returns is the variant's byte at that offset, each segment is fetched
 *   once, and no other variant is fetched;
 * - a variant fence the pattern meets stays where it is: each later read that reaches it before
 *   it is cleared stops there, however the pattern seeks back and forth meanwhile, no byte past
 *   it is handed out, and after the clear the new variant follows.
 */
#include "test_hls_support.h"

#include <kithara/ffmpeg.h>

#include <libavformat/avformat.h>
#include <libavutil/mem.h>

#include <errno.h>

/* One call of the AVIO's callbacks: a read of `arg` bytes, or a seek to `arg` from `whence`
 * (SEEK_SET, SEEK_CUR, SEEK_END, or AVSEEK_SIZE for a size query). */
typedef struct access_op {
    char kind; /* 'R' or 'S' */
    int64_t arg;
    int whence;
} access_op;

typedef struct access_log {
    access_op *ops;
    size_t count, cap;
} access_log;

static void log_add(access_log *l, char kind, int64_t arg, int whence)
{
    if (l->count == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 256;
        l->ops = realloc(l->ops, l->cap * sizeof *l->ops);
        assert_non_null(l->ops);
    }
    l->ops[l->count++] = (access_op){kind, arg, whence};
}

/* ---- recording ------------------------------------------------------------------------- */

/* A logging AVIO in front of kth_avio's: each call is written down and passed on. */
typedef struct recorder {
    AVIOContext *inner;
    access_log *log;
} recorder;

static int rec_read(void *opaque, uint8_t *buf, int size)
{
    recorder *r = opaque;
    log_add(r->log, 'R', size, 0);
    return r->inner->read_packet(r->inner->opaque, buf, size);
}

static int64_t rec_seek(void *opaque, int64_t offset, int whence)
{
    recorder *r = opaque;
    log_add(r->log, 'S', offset, whence);
    return r->inner->seek(r->inner->opaque, offset, whence);
}

/* Opens the demuxer as kithara's decoder does (`kithara_settings`) or with FFmpeg's defaults,
 * reads every packet, seeks back to the start and reads 20 packets more. */
static void drive_demuxer(AVIOContext *pb, bool kithara_settings)
{
    AVFormatContext *fmt = avformat_alloc_context();
    assert_non_null(fmt);
    fmt->pb = pb;
    fmt->flags |= AVFMT_FLAG_CUSTOM_IO;
    if (kithara_settings) {
        fmt->probesize = 64 * 1024;
        fmt->format_probesize = 64 * 1024;
        fmt->max_analyze_duration = 500000;
        fmt->flags |= AVFMT_FLAG_IGNIDX;
    }
    assert_int_equal(avformat_open_input(&fmt, NULL, NULL, NULL), 0);
    assert_true(avformat_find_stream_info(fmt, NULL) >= 0);
    AVPacket *pkt = av_packet_alloc();
    assert_non_null(pkt);
    int packets = 0;
    while (av_read_frame(fmt, pkt) >= 0) {
        av_packet_unref(pkt);
        packets++;
    }
    assert_true(packets > 20);
    av_seek_frame(fmt, -1, 0, AVSEEK_FLAG_BACKWARD); /* may fail: the pattern is what counts */
    for (int i = 0; i < 20 && av_read_frame(fmt, pkt) >= 0; i++)
        av_packet_unref(pkt);
    av_packet_free(&pkt);
    avformat_close_input(&fmt);
}

typedef struct pattern {
    const char *file;   /* under ACCESS_DIR */
    const char *master; /* on the server */
    const char *variant0, *variant2;
    bool kithara_settings;
} pattern;

/* Records the pattern of p's demuxer on variant 0 of p's master into *log. */
static void record(struct hls_env *e, const pattern *p, access_log *log)
{
    kth_stream *s = hls_open_variant(e, p->master, 0);
    kth_avio *io = NULL;
    assert_int_equal(kth_avio_new(s, 0, &io), KTH_OK);
    recorder r = {.inner = kth_avio_context(io), .log = log};
    enum { BUF = 32 * 1024 };
    uint8_t *buf = av_malloc(BUF);
    assert_non_null(buf);
    AVIOContext *pb = avio_alloc_context(buf, BUF, 0, &r, rec_read, NULL, rec_seek);
    assert_non_null(pb);
    pb->seekable = r.inner->seekable;
    drive_demuxer(pb, p->kithara_settings);
    av_freep(&pb->buffer);
    avio_context_free(&pb);
    kth_avio_free(io);
    kth_stream_close(s);
}

/* ---- the committed recordings ------------------------------------------------------------- */

#define ACCESS_DIR KTH_SOURCE_DIR "/tests/fixtures/access"

static const pattern patterns[] = {
    {"mpegts-kithara.ops", "/ts/master.m3u8", "ts/v64", "ts/v256", true},
    {"mpegts-defaults.ops", "/ts/master.m3u8", "ts/v64", "ts/v256", false},
    {"mov-kithara.ops", "/fmp4/master.m3u8", "fmp4/v64", "fmp4/v256", true},
    {"mov-defaults.ops", "/fmp4/master.m3u8", "fmp4/v64", "fmp4/v256", false},
};
#define PATTERNS (sizeof patterns / sizeof patterns[0])

static void write_log(const char *path, const pattern *p, const access_log *log)
{
    FILE *f = fopen(path, "w");
    if (!f)
        fail_msg("cannot write %s: %s", path, strerror(errno));
    fprintf(f,
            "# %s with %s, variant 0 of %s, recorded from libavformat %s\n"
            "# R n: a read of n bytes; S offset whence: a seek (0 SET, 1 CUR, 2 END, %d SIZE)\n",
            strstr(p->file, "mov") ? "mov" : "mpegts",
            p->kithara_settings ? "kithara's decoder settings" : "FFmpeg's defaults", p->master,
            LIBAVFORMAT_IDENT, AVSEEK_SIZE);
    for (size_t i = 0; i < log->count; i++) {
        const access_op *op = &log->ops[i];
        if (op->kind == 'R')
            fprintf(f, "R %lld\n", (long long)op->arg);
        else
            fprintf(f, "S %lld %d\n", (long long)op->arg, op->whence);
    }
    assert_int_equal(fclose(f), 0);
}

static access_log read_log(const char *file)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", ACCESS_DIR, file);
    FILE *f = fopen(path, "r");
    if (!f)
        fail_msg("cannot open %s", path);
    access_log log = {0};
    char line[256];
    while (fgets(line, sizeof line, f)) {
        long long arg;
        int whence;
        if (line[0] == 'R' && sscanf(line + 1, "%lld", &arg) == 1)
            log_add(&log, 'R', arg, 0);
        else if (line[0] == 'S' && sscanf(line + 1, "%lld %d", &arg, &whence) == 2)
            log_add(&log, 'S', arg, whence);
        else if (line[0] != '#')
            fail_msg("%s: unreadable line: %s", path, line);
    }
    fclose(f);
    assert_true(log.count > 10);
    return log;
}

/* ---- replay ------------------------------------------------------------------------------ */

typedef struct replay {
    kth_stream *s;
    bytes want;        /* variant 0's bytes */
    int64_t switch_at; /* the op before which variant 2 is chosen; -1: never */
    bool fence_met;    /* a fence was met, at `fence` */
    uint64_t fence;
    unsigned meets;   /* reads that stopped at it */
    bool behind;      /* a seek went behind it since it was last met */
    unsigned returns; /* meets after such a seek */
    uint64_t bytes_read;
} replay;

/* A read at `pos` met a fence: the first one there is, or the same one again. */
static void met_fence(replay *r, uint64_t pos)
{
    assert_int_equal(kth_stream_position(r->s), pos);
    if (!r->fence_met) {
        r->fence_met = true;
        r->fence = pos;
    } else if (pos != r->fence) {
        fail_msg("a read at %llu met a fence; the pending one is at %llu", (unsigned long long)pos,
                 (unsigned long long)r->fence);
    }
    r->meets++;
    r->returns += r->behind;
    r->behind = false;
}

/* The n bytes read at pos: none past a pending fence, each the variant's own. */
static void check_bytes(replay *r, uint64_t pos, const uint8_t *got, size_t n)
{
    if (r->fence_met && pos + n > r->fence)
        fail_msg("bytes [%llu, %llu) handed out past the pending fence at %llu",
                 (unsigned long long)pos, (unsigned long long)(pos + n),
                 (unsigned long long)r->fence);
    if (pos + n > r->want.len || memcmp(got, r->want.data + pos, n) != 0)
        fail_msg("wrong bytes in [%llu, %llu)", (unsigned long long)pos,
                 (unsigned long long)(pos + n));
    r->bytes_read += n;
}

/* Chooses variant 2 once it is usable. */
static void choose_variant_2(kth_stream *s)
{
    hls_wait_usable(s, 2);
    assert_int_equal(kth_stream_abr_set_manual(s, 2), KTH_OK);
}

/* One call of kth_avio's read callback gets what is there now, which depends on timing: the
 * replay reads until it has the `size` bytes the recorded call got (or meets a fence or the
 * end), so it covers what the demuxer read. Pending outcomes are read again, as kth_avio does. */
static void replay_read(replay *r, size_t size)
{
    static uint8_t buf[1 << 20];
    assert_true(size <= sizeof buf);
    for (size_t got = 0; got < size;) {
        uint64_t pos = kth_stream_position(r->s);
        int64_t n = kth_stream_read(r->s, buf, size - got);
        if (n == KTH_ERR_SEEK_PENDING || n == KTH_ERR_RETRY)
            continue;
        if (n == KTH_ERR_VARIANT_CHANGE) {
            met_fence(r, pos);
            return;
        }
        if (n < 0) {
            char detail[512];
            kth_stream_last_error(r->s, detail, sizeof detail);
            fail_msg("read at %llu: %s (%s)", (unsigned long long)pos, kth_strerror((int)n),
                     detail);
        }
        if (n == 0) {
            assert_int_equal(pos, r->want.len); /* EOF only at the proven end */
            return;
        }
        check_bytes(r, pos, buf, (size_t)n);
        got += (size_t)n;
    }
}

/* One seek as kth_avio's seek callback makes it: no size for HLS, so SEEK_END and size queries
 * are refused without touching the stream. */
static void replay_seek(replay *r, int64_t offset, int whence)
{
    if (whence & AVSEEK_SIZE || (whence & ~AVSEEK_FORCE) == SEEK_END)
        return;
    int64_t target = offset;
    if ((whence & ~AVSEEK_FORCE) == SEEK_CUR)
        target += (int64_t)kth_stream_position(r->s);
    if (target < 0)
        return;
    kth_status st = kth_stream_seek(r->s, target, SEEK_SET, NULL);
    assert_true(st == KTH_OK || st == KTH_ERR_OUT_OF_RANGE);
    if (st == KTH_OK && r->fence_met && (uint64_t)target < r->fence)
        r->behind = true;
}

static void run_replay(replay *r, const access_log *log)
{
    for (size_t i = 0; i < log->count; i++) {
        if ((int64_t)i == r->switch_at)
            choose_variant_2(r->s);
        const access_op *op = &log->ops[i];
        if (op->kind == 'R')
            replay_read(r, (size_t)op->arg);
        else
            replay_seek(r, op->arg, op->whence);
    }
}

/* The number of GET requests for the files of fixture variant `dir` that were asked for more
 * than once, and the number of files asked for at all. */
static void count_fetches(struct hls_env *e, const char *dir, size_t *repeated, size_t *asked)
{
    variant_files v = list_variant(dir);
    *repeated = *asked = 0;
    for (size_t i = 0; i < v.count; i++) {
        char path[512];
        snprintf(path, sizeof path, "/%s/%s", dir, v.names[i]);
        unsigned n = kts_request_count(e->srv, path, "GET");
        *repeated += n > 1;
        *asked += n > 0;
    }
}

/* Replays a pattern on variant 0: the right bytes, each segment once, no other variant. */
static void replay_plain(struct hls_env *e, const pattern *p, const access_log *log)
{
    replay r = {.s = hls_open_variant(e, p->master, 0), .switch_at = -1};
    r.want = expected_variant(p->variant0, NULL);
    run_replay(&r, log);
    assert_false(r.fence_met);
    assert_true(r.bytes_read >= r.want.len); /* the pattern reads the whole variant */
    size_t repeated, asked;
    count_fetches(e, p->variant0, &repeated, &asked);
    assert_int_equal(repeated, 0);
    assert_int_equal(asked, list_variant(p->variant0).count);
    count_fetches(e, p->variant2, &repeated, &asked);
    assert_int_equal(asked, 0);
    printf("%s: %zu calls, %llu bytes read, every segment fetched once\n", p->file, log->count,
           (unsigned long long)r.bytes_read);
    free(r.want.data);
    kth_stream_close(r.s);
}

/* Replays a pattern with variant 2 chosen after its first read: the fence it meets stays where
 * it is until cleared, then the new variant follows. */
static void replay_with_fence(struct hls_env *e, const pattern *p, const access_log *log)
{
    kth_hls_options h;
    kth_hls_options_init(&h);
    h.fixed_start = true;
    h.initial_variant = 0;
    h.start_manual = true;
    h.buffer_target_s = 1.0; /* little fetched ahead: the switch lands inside the variant */
    replay r = {.s = hls_open(e, p->master, NULL, &h)};
    assert_int_equal(kth_stream_abr_set_manual(r.s, 0), KTH_OK);
    r.want = expected_variant(p->variant0, NULL);
    r.switch_at = (int64_t)log->count; /* after the pattern's first read */
    for (size_t i = 0; i < log->count; i++)
        if (log->ops[i].kind == 'R') {
            r.switch_at = (int64_t)i + 1;
            break;
        }
    run_replay(&r, log);
    if (!r.fence_met)
        fail_msg("%s: no fence met (the switch landed past the end?)", p->file);
    assert_true(r.fence > 0 && r.fence < r.want.len);
    /* The pattern seeks back behind the fence (to the start), and a read that comes back to it
     * meets it where it was: in the pattern, or as the player reads on. */
    for (int i = 0; i < 1000 && kth_stream_position(r.s) < r.fence; i++)
        replay_read(&r, 32 * 1024);
    printf("%s: fence at %llu of %zu, met by %u reads, %u of them after a seek behind it\n",
           p->file, (unsigned long long)r.fence, r.want.len, r.meets, r.returns);
    assert_true(r.returns > 0);
    /* Nothing of variant 0 past the fence was fetched: not its last segment, which no read
     * needed. */
    variant_files v0 = list_variant(p->variant0);
    char last[512];
    snprintf(last, sizeof last, "/%s/%s", p->variant0, v0.names[v0.count - 1]);
    assert_int_equal(kts_request_count(e->srv, last, NULL), 0);
    assert_int_equal(kth_stream_clear_variant_fence(r.s), KTH_OK);
    assert_int_equal(kth_stream_seek(r.s, (int64_t)r.fence, SEEK_SET, NULL), KTH_OK);
    uint8_t buf[8];
    assert_int_equal(kth_stream_read(r.s, buf, sizeof buf), (int64_t)sizeof buf);
    assert_int_equal(kth_stream_current_variant(r.s), 2);
    free(r.want.data);
    kth_stream_close(r.s);
}

/* A new server, cache and downloader for the next replay: nothing fetched, nothing cached. */
static void fresh_env(void **state)
{
    hls_teardown(state);
    assert_int_equal(hls_setup(state), 0);
}

typedef void replay_fn(struct hls_env *e, const pattern *p, const access_log *log);

/* Replays each committed recording with fn, each in a fresh environment. */
static void replay_committed(void **state, replay_fn *fn)
{
    for (size_t i = 0; i < PATTERNS; i++) {
        access_log log = read_log(patterns[i].file);
        fn(*state, &patterns[i], &log);
        free(log.ops);
        fresh_env(state);
    }
}

static void test_recorded_patterns_read_right_bytes_fetching_each_segment_once(void **state)
{
    replay_committed(state, replay_plain);
}

static void test_a_fence_met_in_a_recorded_pattern_stays_where_it_is(void **state)
{
    replay_committed(state, replay_with_fence);
}

/* The FFmpeg installed now: its patterns replay as the committed ones do. */
static void test_the_installed_ffmpeg_pattern_replays_too(void **state)
{
    for (size_t i = 0; i < PATTERNS; i++) {
        access_log log = {0};
        record(*state, &patterns[i], &log);
        fresh_env(state);
        replay_plain(*state, &patterns[i], &log);
        fresh_env(state);
        replay_with_fence(*state, &patterns[i], &log);
        free(log.ops);
        fresh_env(state);
    }
}

/* --record DIR: writes the recordings of the FFmpeg installed now into DIR. */
static int record_all(const char *dir)
{
    for (size_t i = 0; i < PATTERNS; i++) {
        void *state = NULL;
        if (hls_setup(&state) != 0)
            return 1;
        access_log log = {0};
        record(state, &patterns[i], &log);
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, patterns[i].file);
        write_log(path, &patterns[i], &log);
        printf("%s: %zu calls\n", path, log.count);
        free(log.ops);
        hls_teardown(&state);
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--record") == 0)
        return record_all(argv[2]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_recorded_patterns_read_right_bytes_fetching_each_segment_once, hls_setup,
            hls_teardown),
        cmocka_unit_test_setup_teardown(test_a_fence_met_in_a_recorded_pattern_stays_where_it_is,
                                        hls_setup, hls_teardown),
        cmocka_unit_test_setup_teardown(test_the_installed_ffmpeg_pattern_replays_too, hls_setup,
                                        hls_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
