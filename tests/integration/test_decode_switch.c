/*
 * test_decode_switch.c — kth_decoder across HLS variant switches forced in manual mode, up and
 * down, in MPEG-TS and fMP4: the frame count equals a whole decode's (no gap, no overlap), the
 * PCM before the switch is the old variant's own decode, the PCM from two codec frames after
 * it the new variant's (bit for bit, or within the level of AAC noise substitution, whose
 * generator state a kept decoder cannot share with a whole decode), and the largest sample
 * step at the join is printed and bounded by the steps of the two variants' own decodes.
 */
#include "test_decode_support.h"

#include <time.h>

#define AAC_FRAME 1024
/* -60 dBFS: the level up to which two decodes of the same AAC packets may differ when their
 * noise substitution generators are in different states. */
#define NOISE_BOUND 1e-3f

/* The largest sample difference between a and b over frames [from, to), and how many frames
 * are identical. */
static float max_difference(const pcm_ref *a, const pcm_ref *b, size_t from, size_t to,
                            size_t *exact)
{
    float worst = 0;
    *exact = 0;
    for (size_t i = from; i < to; i++) {
        bool same = true;
        for (int c = 0; c < a->channels; c++) {
            float df = fabsf(pcm_sample(a, i, c) - pcm_sample(b, i, c));
            if (df > 0)
                same = false;
            if (df > worst)
                worst = df;
        }
        *exact += same;
    }
    return worst;
}

typedef struct switch_case {
    const char *master;
    const char *dirs[3];
    int from, to;
    double switch_after_s; /* decoded seconds before the manual switch is asked for */
} switch_case;

static void check_switch(struct hls_env *e, const switch_case *c)
{
    kth_subscription *sub;
    assert_int_equal(kth_bus_subscribe(e->bus, 4096, &sub), KTH_OK);
    /* A short read-ahead, so the download is still going when the switch is asked for (once
     * everything is fetched, a manual choice waits for a seek). */
    kth_hls_options h;
    kth_hls_options_init(&h);
    h.fixed_start = c->from >= 0;
    h.initial_variant = c->from;
    h.start_manual = true;
    h.buffer_target_s = 2;
    kth_stream *s = hls_open(e, c->master, NULL, &h);
    kth_decoder *d = open_decoder_on(s, KTH_SAMPLE_F32, e->bus);
    pcm_ref head, tail;
    decode_frames(d, (size_t)(c->switch_after_s * 44100), &head);
    /* The other variants' playlists load in the background; the switch needs the target's. */
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
    /* One buffer: head then tail. */
    pcm_ref got = head;
    got.data = realloc(got.data, (head.frames + tail.frames) * head.frame_bytes);
    memcpy(got.data + head.frames * head.frame_bytes, tail.data, tail.frames * tail.frame_bytes);
    got.frames += tail.frames;
    free(tail.data);

    pcm_ref a = reference_of_variant(c->dirs[c->from], NULL, AV_SAMPLE_FMT_FLT);
    pcm_ref b = reference_of_variant(c->dirs[c->to], NULL, AV_SAMPLE_FMT_FLT);
    decode_join one = {KTH_EVENT_NONE, UINT64_MAX, -1, -1};
    assert_int_equal(take_joins(sub, &one, 1), 1);
    kth_event_kind kind = one.kind;
    uint64_t j = one.frame;
    assert_int_equal(kth_stream_current_variant(s), c->to);
    printf("%s %d -> %d: %zu frames (whole decodes: %zu, %zu), join at frame %llu\n", c->master,
           c->from, c->to, got.frames, a.frames, b.frames, (unsigned long long)j);
    assert_int_equal(got.frames, a.frames);
    assert_int_equal(a.frames, b.frames);
    assert_true(j >= head.frames && j < got.frames);
    assert_int_equal(j % AAC_FRAME, 0);
    /* Before the join: the old variant, bit for bit. */
    size_t k = first_difference(&got, 0, &a, 0, j);
    if (k < j)
        fail_msg("frame %zu before the join differs from the old variant", k);
    /* From two codec frames after it: the new variant's own decode. AAC's perceptual noise
     * substitution draws from a generator inside the decoder whose state is the history of
     * every frame decoded, so a kept decoder's noise bands differ from a whole decode's
     * (and so would a new decoder's): the difference stays within the noise bands' level. */
    size_t from = j + 2 * AAC_FRAME;
    size_t exact = 0;
    float worst = max_difference(&got, &b, from, got.frames, &exact);
    printf("after the join: %zu of %zu frames bit-exact with the new variant, largest "
           "difference %.6f\n",
           exact, got.frames - from, worst);
    assert_true(worst <= NOISE_BOUND);
    size_t differing = 0;
    for (size_t i = j; i < from; i++)
        differing += first_difference(&got, i, &b, i, 1) == 0;
    float step = largest_step(&got, j - 1, j + 1);
    float around_a = largest_step(&a, j - AAC_FRAME, j + AAC_FRAME);
    float around_b = largest_step(&b, j - AAC_FRAME, j + AAC_FRAME);
    float window = largest_step(&got, j - AAC_FRAME, j + 2 * AAC_FRAME);
    printf("join: %s, %zu of the next %d frames differ from the new variant; sample step at "
           "the join %.5f, largest step around it %.5f (old %.5f, new %.5f)\n",
           kth_event_kind_name(kind), differing, 2 * AAC_FRAME, step, window, around_a, around_b);
    float bound = around_a > around_b ? around_a : around_b;
    assert_true(window <= bound * 1.5f + 1e-3f);
    free(got.data);
    free(a.data);
    free(b.data);
    kth_decoder_close(d);
    kth_stream_close(s);
    kth_subscription_free(sub);
}

static void test_ts_switch_up_keeps_the_decoder(void **state)
{
    switch_case c = {"/ts/master.m3u8", {"ts/v64", "ts/v128", "ts/v256"}, 0, 2, 3.0};
    check_switch(*state, &c);
}

static void test_ts_switch_down_keeps_the_decoder(void **state)
{
    switch_case c = {"/ts/master.m3u8", {"ts/v64", "ts/v128", "ts/v256"}, 2, 0, 7.0};
    check_switch(*state, &c);
}

static void test_fmp4_switch_up_is_exact(void **state)
{
    switch_case c = {"/fmp4/master.m3u8", {"fmp4/v64", "fmp4/v128", "fmp4/v256"}, 0, 2, 1.0};
    check_switch(*state, &c);
}

static void test_fmp4_switch_down_is_exact(void **state)
{
    switch_case c = {"/fmp4/master.m3u8", {"fmp4/v64", "fmp4/v128", "fmp4/v256"}, 2, 1, 3.0};
    check_switch(*state, &c);
}

/* ABR's own switches, up on a fast link and down when the top variant's later segments come
 * at a trickle (8 kB/s against its 32 kB/s), decoded as they come: the frame count is a whole
 * decode's, the PCM before the first join is the start variant's own decode bit for bit, and
 * between joins (from two codec frames after each) every variant's own decode within the
 * noise bound. */
static void test_abr_switches_under_a_throttled_server_are_exact(void **state)
{
    struct hls_env *e = *state;
    const char *dirs[] = {"ts/v64", "ts/v128", "ts/v256"};
    for (int i = 5; i <= 9; i++) {
        char path[64];
        snprintf(path, sizeof path, "/ts/v256/seg%d.ts", i);
        kts_add_fault(e->srv, path, &(kts_fault){.kind = KTS_FAULT_RATE, .bytes = 8000});
    }
    char dir[600];
    snprintf(dir, sizeof dir, "%s/abr-throttled", e->dir);
    kth_cache *cache = hls_open_cache(dir, false); /* nothing of earlier tests is cached */
    kth_subscription *sub;
    assert_int_equal(kth_bus_subscribe(e->bus, 4096, &sub), KTH_OK);
    kth_hls_options h = {.fixed_start = true, .initial_variant = 0};
    kth_stream *s = hls_open(e, "/ts/master.m3u8", cache, &h);
    kth_decoder *d = open_decoder_on(s, KTH_SAMPLE_F32, e->bus);
    pcm_ref got;
    decode_all(d, &got);

    decode_join jl[16];
    size_t joins = take_joins(sub, jl, 16);
    assert_true(joins <= 16);
    int first = h.initial_variant;
    bool down = false;
    uint64_t at[16];
    int to[16];
    for (size_t j = 0; j < joins; j++) {
        assert_int_equal(jl[j].kind, KTH_EVENT_DECODER_KEPT); /* one configuration: kept */
        at[j] = jl[j].frame;
        to[j] = jl[j].to;
        down |= jl[j].to < jl[j].from;
    }
    assert_true(joins >= 2 && down); /* up on the fast link, down at the trickle */
    pcm_ref ref[3];
    for (int v = 0; v < 3; v++)
        ref[v] = reference_of_variant(dirs[v], NULL, AV_SAMPLE_FMT_FLT);
    assert_int_equal(got.frames, ref[0].frames);
    size_t k = first_difference(&got, 0, &ref[first], 0, at[0]);
    if (k < at[0])
        fail_msg("frame %zu before the first join differs from variant %d", k, first);
    for (size_t j = 0; j < joins; j++) {
        size_t from = at[j] + 2 * AAC_FRAME;
        size_t until = j + 1 < joins ? at[j + 1] : got.frames;
        assert_true(at[j] % AAC_FRAME == 0 && at[j] < got.frames);
        size_t exact = 0;
        float worst = from < until ? max_difference(&got, &ref[to[j]], from, until, &exact) : 0;
        printf("variant %d over frames %zu..%zu: %zu bit-exact, largest difference %.6f\n", to[j],
               from, until, exact, worst);
        assert_true(worst <= NOISE_BOUND);
    }
    for (int v = 0; v < 3; v++)
        free(ref[v].data);
    free(got.data);
    kth_decoder_close(d);
    kth_stream_close(s);
    kth_cache_unref(cache);
    kth_subscription_free(sub);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ts_switch_up_keeps_the_decoder),
        cmocka_unit_test(test_ts_switch_down_keeps_the_decoder),
        cmocka_unit_test(test_fmp4_switch_up_is_exact),
        cmocka_unit_test(test_fmp4_switch_down_is_exact),
        cmocka_unit_test(test_abr_switches_under_a_throttled_server_are_exact),
    };
    return cmocka_run_group_tests(tests, hls_setup, hls_teardown);
}
