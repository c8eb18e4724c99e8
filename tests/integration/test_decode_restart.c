/*
 * test_decode_restart.c — kth_decoder across HLS variant switches whose codec configuration
 * differs (tests/fixtures/hls/rates: one 440 Hz tone as AAC-LC stereo at 44.1 kHz, stereo at
 * 48 kHz and mono at 22.05 kHz), forced in manual mode. Such a switch cannot keep the codec
 * decoder: a new one starts at the join. Checked: the decoder says so (RESTARTED, and FORMAT
 * with the new source format), the output format stays the one fixed at open (libswresample
 * converts the new variant), the PCM before the join is the old variant's own decode bit for
 * bit, the frame count matches the media's length within one codec frame of the coarser variant
 * (the variants' segment boundaries fall at slightly different times), the tone never drops
 * out around the join, and the join has no step larger than the tone's own.
 */
#include "test_decode_support.h"

#include <time.h>

/* Frames per AAC-LC codec frame. */
#define AAC_FRAME 1024
/* Frames of the analysis windows used to find a drop-out. */
#define RMS_WINDOW 256

typedef struct restart_case {
    int from, to;
    double switch_after_s; /* decoded seconds before the manual switch is asked for */
} restart_case;

static const char *const DIRS[] = {"rates/m22", "rates/v44", "rates/v48"};

typedef struct join_seen {
    int joins, restarts, formats;
    uint64_t frame;       /* the join's output frame */
    uint32_t rate, chans; /* the source format the FORMAT event announced */
} join_seen;

static join_seen read_join_events(kth_subscription *sub)
{
    join_seen j = {.frame = UINT64_MAX};
    kth_event ev;
    while (kth_events_next(sub, &ev, 0) == KTH_OK) {
        const kth_event_decode *p = &ev.payload.decode;
        if (ev.kind == KTH_EVENT_DECODER_FORMAT) {
            j.formats++;
            j.rate = p->sample_rate;
            j.chans = p->channels;
        }
        if (ev.kind != KTH_EVENT_DECODER_KEPT && ev.kind != KTH_EVENT_DECODER_RESTARTED)
            continue;
        printf("%s at frame %llu: variant %d -> %d, source now %u Hz x %u\n",
               kth_event_kind_name(ev.kind), (unsigned long long)p->frame, p->from_variant,
               p->to_variant, p->sample_rate, p->channels);
        j.joins++;
        j.restarts += ev.kind == KTH_EVENT_DECODER_RESTARTED;
        j.frame = p->frame;
    }
    return j;
}

/* Root mean square over frames [from, from + n), all channels. */
static double rms(const pcm_ref *p, size_t from, size_t n)
{
    double sum = 0;
    for (size_t i = from; i < from + n; i++)
        for (int c = 0; c < p->channels; c++) {
            double v = pcm_sample(p, i, c);
            sum += v * v;
        }
    return sqrt(sum / (double)(n * (size_t)p->channels));
}

/* Decodes with a manual switch from c->from to c->to; returns the whole PCM. */
static pcm_ref decode_with_switch(struct hls_env *e, const restart_case *c, kth_bus *bus,
                                  kth_stream **out_stream, kth_decoder **out_decoder)
{
    kth_hls_options h;
    kth_hls_options_init(&h);
    h.fixed_start = c->from >= 0;
    h.initial_variant = c->from;
    h.start_manual = true;
    h.buffer_target_s = 2; /* still downloading when the switch is asked for */
    kth_stream *s = hls_open(e, "/rates/master.m3u8", NULL, &h);
    kth_decoder *d = open_decoder_on(s, KTH_SAMPLE_F32, bus);
    kth_pcm_format f;
    assert_int_equal(kth_decoder_format(d, &f), KTH_OK);
    pcm_ref head, tail;
    decode_frames(d, (size_t)(c->switch_after_s * f.sample_rate), &head);
    kth_hls_variant_info info;
    for (int i = 0; i < 5000; i++) {
        assert_int_equal(kth_stream_variant_info(s, c->to, &info), KTH_OK);
        if (info.usable)
            break;
        nanosleep(&(struct timespec){.tv_nsec = 1000 * 1000}, NULL);
    }
    assert_true(info.usable);
    assert_int_equal(kth_stream_abr_set_manual(s, c->to), KTH_OK);
    decode_all(d, &tail);
    assert_int_equal(tail.rate, head.rate);
    assert_int_equal(tail.channels, head.channels);
    pcm_ref got = head;
    got.data = realloc(got.data, (head.frames + tail.frames) * head.frame_bytes);
    assert_non_null(got.data);
    memcpy(got.data + head.frames * head.frame_bytes, tail.data, tail.frames * tail.frame_bytes);
    got.frames += tail.frames;
    free(tail.data);
    *out_stream = s;
    *out_decoder = d;
    return got;
}

static void check_restart(struct hls_env *e, const restart_case *c)
{
    kth_subscription *sub;
    assert_int_equal(kth_bus_subscribe(e->bus, 4096, &sub), KTH_OK);
    kth_stream *s;
    kth_decoder *d;
    pcm_ref got = decode_with_switch(e, c, e->bus, &s, &d);
    pcm_ref a = reference_of_variant(DIRS[c->from], NULL, AV_SAMPLE_FMT_FLT);
    pcm_ref b = reference_of_variant(DIRS[c->to], NULL, AV_SAMPLE_FMT_FLT);
    join_seen j = read_join_events(sub);
    assert_int_equal(kth_stream_current_variant(s), c->to);

    /* A new codec decoder, announced with the new source format; the output keeps the old. */
    assert_int_equal(j.joins, 1);
    assert_int_equal(j.restarts, 1);
    assert_int_equal(j.formats, 1);
    assert_int_equal(j.rate, (uint32_t)b.rate);
    assert_int_equal(j.chans, (uint32_t)b.channels);
    assert_int_equal(got.rate, a.rate);
    assert_int_equal(got.channels, a.channels);
    assert_true(j.frame < got.frames);

    /* Before the join: the old variant's own decode, bit for bit. */
    size_t k = first_difference(&got, 0, &a, 0, (size_t)j.frame);
    if (k < j.frame)
        fail_msg("frame %zu before the join differs from the old variant", k);

    /* The length: the old variant's frames up to the join, then the new variant's remaining
     * media time at the output rate. Both variants hold the same 8 s tone, so the whole is the
     * old variant's length, give or take where the segment boundary falls in each variant: less
     * than one codec frame of the coarser one. */
    double coarse_s = (double)AAC_FRAME / (a.rate < b.rate ? a.rate : b.rate);
    double off = fabs((double)got.frames - (double)a.frames);
    printf("rates %s -> %s: %zu frames at %d Hz (whole decodes %zu at %d Hz, %zu at %d Hz), "
           "join at frame %llu, %.1f frames off\n",
           DIRS[c->from], DIRS[c->to], got.frames, got.rate, a.frames, a.rate, b.frames, b.rate,
           (unsigned long long)j.frame, off);
    assert_true(off <= coarse_s * a.rate);

    /* Never a drop-out: every window around the join carries the tone. */
    double level = rms(&a, a.frames / 4, a.frames / 2);
    size_t lo = (size_t)j.frame > 4 * AAC_FRAME ? (size_t)j.frame - 4 * AAC_FRAME : 0;
    size_t hi = (size_t)j.frame + 8 * AAC_FRAME;
    assert_true(hi + RMS_WINDOW <= got.frames);
    double quietest = 1e9;
    for (size_t w = lo; w + RMS_WINDOW <= hi; w += RMS_WINDOW / 2) {
        double r = rms(&got, w, RMS_WINDOW);
        quietest = r < quietest ? r : quietest;
    }
    /* No click: the join's steps stay within the tone's own (a 440 Hz sine moves at most
     * 2*pi*440/rate of its amplitude per sample). */
    float tone_step = largest_step(&a, a.frames / 4, a.frames / 2);
    float join_step = largest_step(&got, lo, hi);
    printf("around the join: quietest window %.4f of the tone's %.4f; largest step %.5f "
           "(the tone's own %.5f)\n",
           quietest, level, join_step, tone_step);
    assert_true(quietest >= 0.5 * level);
    assert_true(join_step <= tone_step * 1.5f + 1e-3f);

    free(got.data);
    free(a.data);
    free(b.data);
    kth_decoder_close(d);
    kth_stream_close(s);
    kth_subscription_free(sub);
}

static void test_switch_to_another_rate_restarts_the_decoder(void **state)
{
    restart_case c = {1, 2, 2.0}; /* 44.1 kHz stereo -> 48 kHz stereo */
    check_restart(*state, &c);
}

static void test_switch_to_another_rate_and_layout_restarts_the_decoder(void **state)
{
    restart_case c = {2, 0, 2.0}; /* 48 kHz stereo -> 22.05 kHz mono */
    check_restart(*state, &c);
}

static void test_switch_from_mono_restarts_the_decoder(void **state)
{
    restart_case c = {0, 1, 2.0}; /* 22.05 kHz mono -> 44.1 kHz stereo */
    check_restart(*state, &c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_switch_to_another_rate_restarts_the_decoder),
        cmocka_unit_test(test_switch_to_another_rate_and_layout_restarts_the_decoder),
        cmocka_unit_test(test_switch_from_mono_restarts_the_decoder),
    };
    return cmocka_run_group_tests(tests, hls_setup, hls_teardown);
}
