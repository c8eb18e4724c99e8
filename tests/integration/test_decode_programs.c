/*
 * test_decode_programs.c — the programs built on the decoder: `kithara decode` (a WAV file with
 * the right sizes, raw PCM equal to the ffmpeg program's `-f s16le` of the same file, a start
 * time to the sample, the --stats line) and the two examples, decode_to_wav and ffmpeg_avio,
 * over HLS on the loopback server; and `kithara cat --start-time` piped into the ffmpeg
 * program, for every kind of HLS fixture.
 */
#include "test_decode_support.h"

#include <sys/wait.h>

#define SAMPLE_MP3 KTH_SOURCE_DIR "/tests/fixtures/sample.mp3"

/* Runs a shell command; returns its exit status and, when out is not NULL, its stdout. */
static int run(const char *cmd, bytes *out)
{
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    uint8_t buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0)
        if (out)
            bytes_append(out, buf, n);
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void test_tool_matches_the_ffmpeg_program(void **state)
{
    (void)state;
    bytes ours = {0}, theirs = {0};
    assert_int_equal(run(KTH_TOOL_PATH " decode -q " SAMPLE_MP3, &ours), 0);
    int rc = run("ffmpeg -hide_banner -loglevel error -i " SAMPLE_MP3 " -f s16le -", &theirs);
    if (rc != 0) {
        printf("the ffmpeg program is not installed: compared with libav only\n");
        pcm_ref want;
        assert_int_equal(decode_reference(SAMPLE_MP3, AV_SAMPLE_FMT_S16, &want), 0);
        theirs.data = want.data;
        theirs.len = want.frames * want.frame_bytes;
    }
    printf("kithara decode: %zu bytes, ffmpeg -f s16le: %zu bytes\n", ours.len, theirs.len);
    assert_same_bytes(&ours, &theirs);
    free(ours.data);
    free(theirs.data);
}

static void test_tool_writes_a_wav_and_stats_over_hls(void **state)
{
    struct hls_env *e = *state;
    char url[512], cmd[2048], wav[600];
    kts_url(e->srv, "/ts/master.m3u8", url, sizeof url);
    snprintf(wav, sizeof wav, "%s/out.wav", e->dir);
    snprintf(cmd, sizeof cmd, "%s decode -q --stats --variant 2 --cache-dir %s/tool -o %s %s",
             KTH_TOOL_PATH, e->dir, wav, url);
    bytes stats = {0};
    assert_int_equal(run(cmd, &stats), 0);
    bytes_append(&stats, "", 1);
    printf("%s", (char *)stats.data);
    assert_non_null(strstr((char *)stats.data, "\"frames\":883712,"));
    assert_non_null(strstr((char *)stats.data, "\"switches\":0,"));
    assert_non_null(strstr((char *)stats.data, "\"mean_bitrate\":290000,"));
    bytes w = read_file(wav);
    assert_true(w.len > 44);
    assert_memory_equal(w.data, "RIFF", 4);
    assert_int_equal(le32(w.data + 4), w.len - 8);
    assert_int_equal(le32(w.data + 40), w.len - 44);
    pcm_ref want = reference_of_variant("ts/v256", NULL, AV_SAMPLE_FMT_S16);
    assert_int_equal(w.len - 44, want.frames * want.frame_bytes);
    assert_memory_equal(w.data + 44, want.data, w.len - 44);
    /* From 2.5 s, as raw f32 on standard output: the whole decode from frame 110250 on. */
    snprintf(cmd, sizeof cmd,
             "%s decode -q --format f32 --start-time 2.5 --variant 2 --cache-dir %s/tool %s",
             KTH_TOOL_PATH, e->dir, url);
    bytes raw = {0};
    assert_int_equal(run(cmd, &raw), 0);
    pcm_ref wantf = reference_of_variant("ts/v256", NULL, AV_SAMPLE_FMT_FLT);
    size_t from = 110250 * wantf.frame_bytes;
    assert_int_equal(raw.len, wantf.frames * wantf.frame_bytes - from);
    size_t skip = 2 * 1024 * wantf.frame_bytes;
    assert_memory_equal(raw.data + skip, wantf.data + from + skip, raw.len - skip);
    free(raw.data);
    free(wantf.data);
    free(want.data);
    free(w.data);
    free(stats.data);
}

/* The value of "key": in a --stats line (a number), or -1 when it is missing. */
static double stat_of(const char *line, const char *key)
{
    char pattern[64];
    snprintf(pattern, sizeof pattern, "\"%s\":", key);
    const char *p = strstr(line, pattern);
    return p ? strtod(p + strlen(pattern), NULL) : -1;
}

/* Runs `kithara decode --realtime --stats` from 16 s of the 20 s TS variant with a fresh cache
 * and returns the stats line; *wall receives the seconds the program took. */
static bytes decode_realtime(struct hls_env *e, const char *cache, double *wall)
{
    char url[512], cmd[2048];
    kts_url(e->srv, "/ts/master.m3u8", url, sizeof url);
    snprintf(cmd, sizeof cmd,
             "%s decode -q --realtime --stats --variant 2 --start-time 16 --cache-dir %s/%s "
             "-o %s/%s.wav %s",
             KTH_TOOL_PATH, e->dir, cache, e->dir, cache, url);
    int64_t t0 = test_now_ms();
    bytes stats = {0};
    assert_int_equal(run(cmd, &stats), 0);
    *wall = (double)(test_now_ms() - t0) / 1000.0;
    bytes_append(&stats, "", 1);
    printf("%.2f s: %s", *wall, (char *)stats.data);
    return stats;
}

/* --realtime plays at the media rate, as an audio device would: 4.04 s of media take at least
 * that long less the half second the device keeps in hand; a segment that comes late shows as
 * a stall of about the time the output waited. */
static void test_tool_realtime_paces_and_counts_stalls(void **state)
{
    struct hls_env *e = *state;
    const double media = (883712 - 16 * 44100) / 44100.0;
    double wall;
    bytes stats = decode_realtime(e, "paced", &wall);
    const char *line = (const char *)stats.data;
    assert_true(stat_of(line, "frames") == 883712 - 16 * 44100);
    assert_true(wall >= media - 0.6);
    free(stats.data);

    /* The last long segment (18.18 s to 20.2 s) arrives 4 s after it is asked for, which is
     * at the start: the output, 2.2 s in, waits for it. */
    kts_add_fault(e->srv, "/ts/v256/seg9.ts", &(kts_fault){.kind = KTS_FAULT_LATENCY, .ms = 4000});
    stats = decode_realtime(e, "stalled", &wall);
    line = (const char *)stats.data;
    assert_true(stat_of(line, "frames") == 883712 - 16 * 44100);
    assert_true(stat_of(line, "stalls") >= 1);
    double stalled = stat_of(line, "stall_seconds");
    assert_true(stalled >= 0.8 && stalled <= wall);
    assert_true(wall >= media - 0.6 + stalled - 0.05);
    free(stats.data);
    /* The cases share the server: the next one must not wait for this fault. */
    assert_int_equal(kts_clear_faults(e->srv, "/ts/v256/seg9.ts"), 0);
}

static void test_examples_decode_hls(void **state)
{
    struct hls_env *e = *state;
    char url[512], cmd[2048];
    kts_url(e->srv, "/fmp4/master.m3u8", url, sizeof url);
    bytes out = {0};
    snprintf(cmd, sizeof cmd, "XDG_CACHE_HOME=%s/ex %s %s", e->dir, KTH_EXAMPLE_AVIO, url);
    assert_int_equal(run(cmd, &out), 0);
    bytes_append(&out, "", 1);
    printf("ffmpeg_avio: %s", (char *)out.data);
    assert_non_null(strstr((char *)out.data, "354304 frames"));
    free(out.data);
    out = (bytes){0};
    kts_url(e->srv, "/ts/master.m3u8", url, sizeof url);
    snprintf(cmd, sizeof cmd, "XDG_CACHE_HOME=%s/ex %s %s %s/ex.wav", e->dir, KTH_EXAMPLE_WAV, url,
             e->dir);
    assert_int_equal(run(cmd, &out), 0);
    bytes_append(&out, "", 1);
    printf("decode_to_wav: %s", (char *)out.data);
    assert_non_null(strstr((char *)out.data, "883712 frames"));
    free(out.data);
}

/* Pipes `kithara cat` of a variant (from `start` seconds; < 0: the whole variant) into the
 * ffmpeg program, which must decode it without a word of error. Returns the seconds of audio it
 * decoded; the tool's standard error (where it names the segment it starts at) lands in
 * *note. */
static double cat_into_ffmpeg(struct hls_env *e, const char *url, int variant, double start,
                              bytes *note)
{
    char cmd[4096], from[64] = "", note_path[600], err_path[600];
    if (start >= 0)
        snprintf(from, sizeof from, "--start-time %.3f", start);
    snprintf(note_path, sizeof note_path, "%s/cat-note.txt", e->dir);
    snprintf(err_path, sizeof err_path, "%s/ffmpeg-errors.txt", e->dir);
    /* Mono 8 kHz s16: two bytes a frame whatever the source; pipefail keeps either status. */
    snprintf(cmd, sizeof cmd,
             "bash -o pipefail -c '%s cat --variant %d %s --cache-dir %s/cat %s 2>%s | ffmpeg "
             "-hide_banner -nostdin -loglevel error -xerror -i - -ac 1 -ar 8000 -f s16le - 2>%s'",
             KTH_TOOL_PATH, variant, from, e->dir, url, note_path, err_path);
    bytes pcm = {0};
    int rc = run(cmd, &pcm);
    bytes errors = read_file(err_path);
    bytes_append(&errors, "", 1);
    if (rc != 0 || errors.len > 1)
        fail_msg("%s from %.3f s: status %d, ffmpeg said: %s", url, start, rc, (char *)errors.data);
    free(errors.data);
    free(pcm.data);
    *note = read_file(note_path);
    bytes_append(note, "", 1);
    return (double)pcm.len / 2 / 8000;
}

/* `kithara cat --start-time T` piped into the ffmpeg program decodes without an error, from
 * the start of the segment the tool names to the end of the variant (`whole` seconds). */
static void check_cat_decodes_from(struct hls_env *e, const char *url, int variant, double t,
                                   double whole)
{
    bytes note = {0};
    double got = cat_into_ffmpeg(e, url, variant, t, &note);
    const char *seg = strstr((char *)note.data, "segment ");
    assert_non_null(seg);
    unsigned long k = 0;
    double start = -1, end = -1;
    assert_int_equal(sscanf(seg, "segment %lu, %lf s to %lf s", &k, &start, &end), 3);
    assert_true(start <= t + 1e-3 && t < end + 1e-3);
    free(note.data);
    double want = whole - start;
    printf("%s from %.3f s: segment %lu at %.3f s, %.3f s decoded (%.3f s expected)\n", url, t, k,
           start, got, want);
    /* Within two codec frames and the resampler's delay. */
    assert_true(got > want - 0.1 && got < want + 0.1);
}

static void test_cat_from_a_time_decodes_in_the_ffmpeg_program(void **state)
{
    struct hls_env *e = *state;
    static const struct {
        const char *path;
        int variant;
    } kinds[] = {{"/ts/master.m3u8", 1},
                 {"/fmp4/master.m3u8", 2},
                 {"/flac/master.m3u8", 0},
                 {"/aes/master.m3u8", 0},
                 {"/byterange/index.m3u8", 0}};
    const double times[] = {5.0, 7.9};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        char url[512];
        kts_url(e->srv, kinds[i].path, url, sizeof url);
        bytes note = {0};
        double whole = cat_into_ffmpeg(e, url, kinds[i].variant, -1, &note);
        free(note.data);
        for (size_t j = 0; j < sizeof times / sizeof times[0]; j++)
            check_cat_decodes_from(e, url, kinds[i].variant, times[j], whole);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tool_matches_the_ffmpeg_program),
        cmocka_unit_test(test_tool_writes_a_wav_and_stats_over_hls),
        cmocka_unit_test(test_tool_realtime_paces_and_counts_stalls),
        cmocka_unit_test(test_examples_decode_hls),
        cmocka_unit_test(test_cat_from_a_time_decodes_in_the_ffmpeg_program),
    };
    return cmocka_run_group_tests(tests, hls_setup, hls_teardown);
}
