/*
 * test_decode_seek.c — sample-accurate kth_decoder_seek_time: after a seek to T the position is
 * round(T × rate) and the frames that follow are those of a whole decode from that frame on
 * (bit for bit from two codec frames after T), for a progressive MP3 and for HLS (MPEG-TS and
 * fMP4), at times that include 0, segment boundaries to the sample, the last second and past
 * the end.
 */
#include "test_decode_support.h"

#include <time.h>

#define SAMPLE_MP3  KTH_SOURCE_DIR "/tests/fixtures/sample.mp3"
#define CHECK_AFTER 20000 /* frames compared after each seek */

/* Seeks to each time and compares what follows with the whole decode `want`. */
static void check_seeks(kth_decoder *d, const pcm_ref *want, const double *times, size_t n,
                        size_t codec_frame)
{
    for (size_t i = 0; i < n; i++) {
        double t = times[i];
        kth_status st = kth_decoder_seek_time(d, t);
        if (st != KTH_OK) {
            char msg[1024];
            kth_decoder_last_error(d, msg, sizeof msg);
            fail_msg("seek to %.6f s: %s (%s)", t, kth_strerror(st), msg);
        }
        size_t target = (size_t)llround(t * want->rate);
        assert_int_equal(kth_decoder_position(d), target);
        pcm_ref got;
        decode_frames(d, CHECK_AFTER, &got);
        size_t left = target < want->frames ? want->frames - target : 0;
        size_t expect = left < CHECK_AFTER ? left : CHECK_AFTER;
        if (got.frames != expect)
            fail_msg("after a seek to %.6f s: %zu frames, want %zu", t, got.frames, expect);
        size_t skip = 2 * codec_frame < got.frames ? 2 * codec_frame : got.frames;
        size_t k = first_difference(&got, skip, want, target + skip, got.frames - skip);
        size_t exact_from = first_difference(&got, 0, want, target, got.frames);
        if (exact_from == got.frames)
            printf("seek %.6f s -> frame %zu: %zu frames, all bit-exact\n", t, target, got.frames);
        else
            printf("seek %.6f s -> frame %zu: %zu frames, the first differing one is %zu\n", t,
                   target, got.frames, exact_from);
        if (k < got.frames - skip)
            fail_msg("after a seek to %.6f s frame %zu differs", t, target + skip + k);
        free(got.data);
    }
}

static void test_progressive_mp3_seeks_to_the_sample(void **state)
{
    (void)state;
    kth_decoder_options o;
    kth_decoder_options_init(&o);
    o.sample_format = KTH_SAMPLE_S16;
    kth_decoder *d = NULL;
    char err[512];
    assert_int_equal(kth_decoder_open(SAMPLE_MP3, NULL, &o, &d, err, sizeof err), KTH_OK);
    pcm_ref want;
    assert_int_equal(decode_reference(SAMPLE_MP3, AV_SAMPLE_FMT_S16, &want), 0);
    const double times[] = {3.0,    0.0, 1.2345678, 0.026122, 5.5,  7.2,
                            0.0001, 4.0, 6.999,     7.99,     2.25, 0.5};
    check_seeks(d, &want, times, sizeof times / sizeof times[0], 1152);
    /* Past the end: nothing more. */
    assert_int_equal(kth_decoder_seek_time(d, 9.0), KTH_OK);
    int16_t buf[64];
    assert_int_equal(kth_decoder_read(d, buf, 64), 0);
    assert_int_equal(kth_decoder_seek_time(d, -1.0), KTH_ERR_INVALID_ARG);
    free(want.data);
    kth_decoder_close(d);
}

/* Segment boundaries of a fixture variant, from its playlist's EXTINF values. */
static size_t segment_starts(const char *dir, double *out, size_t max)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s/index.m3u8", FIXTURES, dir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[256];
    double t = 0;
    size_t n = 0;
    while (fgets(line, sizeof line, f) && n < max)
        if (strncmp(line, "#EXTINF:", 8) == 0) {
            out[n++] = t;
            t += strtod(line + 8, NULL);
        }
    fclose(f);
    return n;
}

static void check_hls_seeks(struct hls_env *e, const char *master, int variant, const char *dir)
{
    kth_stream *s = hls_open_variant(e, master, variant);
    kth_decoder *d = open_decoder_on(s, KTH_SAMPLE_F32, NULL);
    pcm_ref want = reference_of_variant(dir, NULL, AV_SAMPLE_FMT_FLT);
    double starts[64];
    size_t n = segment_starts(dir, starts, 64);
    double total = (double)want.frames / want.rate;
    /* Exact boundaries (in frames of the whole decode: segments start on codec frames), the
     * middle of segments, the last second, a time before the end and the start. */
    double times[16];
    size_t k = 0;
    times[k++] = 2 * 1024 * 256 / 44100.0; /* a codec frame 512: within segment 5 or so */
    times[k++] = starts[n / 2];
    times[k++] = (double)(1024 * 87) / 44100.0; /* frame 89088: a segment boundary */
    times[k++] = starts[1] + 0.5;
    times[k++] = total - 1.0;
    times[k++] = 0.0;
    times[k++] = starts[n - 1] + 0.25;
    times[k++] = 1.0;
    for (size_t i = 0; i < k; i++)
        if (times[i] > total - 0.01)
            times[i] = total - 0.5;
    check_seeks(d, &want, times, k, 1024);
    free(want.data);
    kth_decoder_close(d);
    kth_stream_close(s);
}

/* The largest sample difference between got[from, to) and ref from ref_at on. */
static float worst_difference(const pcm_ref *got, size_t from, size_t to, const pcm_ref *ref,
                              size_t ref_at)
{
    float worst = 0;
    for (size_t i = from; i < to; i++)
        for (int c = 0; c < got->channels; c++) {
            float df = fabsf(pcm_sample(got, i, c) - pcm_sample(ref, ref_at + i - from, c));
            worst = df > worst ? df : worst;
        }
    return worst;
}

/* A seek asked for while a manual switch is pending (asked for, its fence not reached yet):
 * the decoder lands on the sample, and what follows is the variant the stream reads there
 * until the switch, then the new variant, with no frame lost or doubled. AAC noise
 * substitution keeps a kept decoder within NOISE_BOUND of a whole decode, not bit for bit. */
#define NOISE_BOUND 1e-3f
static void test_a_seek_during_a_switch_lands_on_the_sample(void **state)
{
    struct hls_env *e = *state;
    kth_subscription *sub;
    assert_int_equal(kth_bus_subscribe(e->bus, 4096, &sub), KTH_OK);
    kth_hls_options h = {.fixed_start = true, .initial_variant = 0, .start_manual = true};
    h.buffer_target_s = 2; /* the download is still going when the switch is asked for */
    kth_stream *s = hls_open(e, "/ts/master.m3u8", NULL, &h);
    kth_decoder *d = open_decoder_on(s, KTH_SAMPLE_F32, e->bus);
    pcm_ref head;
    decode_frames(d, 3 * 44100, &head);
    free(head.data);
    hls_wait_usable(s, 2);
    kth_event ev;
    while (kth_events_next(sub, &ev, 0) == KTH_OK) {
    }
    assert_int_equal(kth_stream_abr_set_manual(s, 2), KTH_OK);
    const size_t target = (size_t)llround(9.5 * 44100);
    assert_int_equal(kth_decoder_seek_time(d, 9.5), KTH_OK);
    assert_int_equal(kth_decoder_position(d), target);
    pcm_ref rest;
    decode_all(d, &rest);
    pcm_ref ref[3] = {reference_of_variant("ts/v64", NULL, AV_SAMPLE_FMT_FLT),
                      {0},
                      reference_of_variant("ts/v256", NULL, AV_SAMPLE_FMT_FLT)};
    assert_int_equal(rest.frames, ref[0].frames - target);
    /* The joins after the seek, in frames of the whole decode. */
    decode_join dj = {KTH_EVENT_NONE, UINT64_MAX, -1, -1};
    size_t joins = take_joins(sub, &dj, 1);
    uint64_t join = dj.frame;
    int from = dj.from, to = dj.to;
    assert_int_equal(kth_stream_current_variant(s), 2);
    assert_true(joins <= 1);
    size_t skip = 2 * 1024;
    if (joins == 0) { /* the seek itself took the new variant */
        float w = worst_difference(&rest, skip, rest.frames, &ref[2], target + skip);
        printf("after the seek: variant 2, largest difference %.6f\n", w);
        assert_true(w <= NOISE_BOUND);
    } else {
        assert_true(join > target && join % 1024 == 0 && (from == 0 || from == 2) && to == 2);
        size_t j = (size_t)(join - target);
        float before = worst_difference(&rest, skip, j, &ref[from], target + skip);
        float after = worst_difference(&rest, j + skip, rest.frames, &ref[2], join + skip);
        printf("after the seek: variant %d to frame %llu (largest difference %.6f), then "
               "variant 2 (%.6f)\n",
               from, (unsigned long long)join, before, after);
        assert_true(before <= NOISE_BOUND && after <= NOISE_BOUND);
    }
    free(rest.data);
    free(ref[0].data);
    free(ref[2].data);
    kth_decoder_close(d);
    kth_stream_close(s);
    kth_subscription_free(sub);
}

static void test_ts_seeks_to_the_sample(void **state)
{
    check_hls_seeks(*state, "/ts/master.m3u8", 2, "ts/v256");
}

/* After a time seek into a later fMP4 segment the stream starts with an init section, so a
 * fresh demuxer can open there. */
static void check_fmp4_seek_lands_on_an_init_section(struct hls_env *e)
{
    kth_stream *s = hls_open_variant(e, "/fmp4/master.m3u8", 2);
    kth_seek_anchor a;
    assert_int_equal(kth_stream_seek_time(s, 5.0, &a), KTH_OK);
    assert_true(a.segment_index > 0);
    uint8_t head[8];
    int64_t n = kth_stream_read(s, head, sizeof head);
    kth_stream_close(s);
    assert_int_equal(n, 8);
    assert_memory_equal(head + 4, "ftyp", 4);
}

static void test_fmp4_seeks_to_the_sample(void **state)
{
    struct hls_env *e = *state;
    /* Within the first segment the anchor is the start of the stream, init section included. */
    kth_stream *s = hls_open_variant(e, "/fmp4/master.m3u8", 2);
    kth_decoder *d = open_decoder_on(s, KTH_SAMPLE_F32, NULL);
    pcm_ref want = reference_of_variant("fmp4/v256", NULL, AV_SAMPLE_FMT_FLT);
    const double first_segment[] = {1.0, 0.0, 0.5, 1.9};
    check_seeks(d, &want, first_segment, 4, 1024);
    free(want.data);
    kth_decoder_close(d);
    kth_stream_close(s);
    /* Later segments: the stream places the init section in front of them. */
    check_fmp4_seek_lands_on_an_init_section(e);
    check_hls_seeks(e, "/fmp4/master.m3u8", 2, "fmp4/v256");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_progressive_mp3_seeks_to_the_sample),
        cmocka_unit_test(test_ts_seeks_to_the_sample),
        cmocka_unit_test(test_a_seek_during_a_switch_lands_on_the_sample),
        cmocka_unit_test(test_fmp4_seeks_to_the_sample),
    };
    return cmocka_run_group_tests(tests, hls_setup, hls_teardown);
}
