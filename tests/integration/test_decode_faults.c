/*
 * test_decode_faults.c — kth_decoder when the bytes do not come: a cancel ends a read blocked on
 * a segment that is held back (and the decoder then closes cleanly), and a segment that fails
 * for good ends the decode with the stream's error naming it, after every whole frame before
 * it, each equal to FFmpeg's decode.
 */
#include "test_decode_support.h"

#include <pthread.h>

struct reader {
    kth_decoder *d;
    int64_t result;
    size_t frames;
};

static void *read_until_not_frames(void *arg)
{
    struct reader *r = arg;
    float buf[4096 * 2];
    for (int guard = 0; guard < 100000; guard++) {
        int64_t n = kth_decoder_read(r->d, buf, 4096);
        if (n <= 0) {
            r->result = n;
            return NULL;
        }
        r->frames += (size_t)n;
    }
    r->result = 1;
    return NULL;
}

static void test_cancel_ends_a_blocked_read(void **state)
{
    struct hls_env *e = *state;
    kts_add_fault(e->srv, "/ts/v64/seg3.ts", &(kts_fault){.kind = KTS_FAULT_GATE});
    kth_stream *s = hls_open_variant(e, "/ts/master.m3u8", 0);
    struct reader r = {open_decoder_on(s, KTH_SAMPLE_F32, NULL), 1, 0};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, read_until_not_frames, &r), 0);
    assert_int_equal(kts_wait_gated(e->srv, "/ts/v64/seg3.ts", 1, 10000), KTH_OK);
    kth_decoder_cancel(r.d);
    pthread_join(t, NULL);
    printf("cancelled after %zu frames\n", r.frames);
    assert_int_equal(r.result, KTH_ERR_CANCELLED);
    float buf[64];
    assert_int_equal(kth_decoder_read(r.d, buf, 32), KTH_ERR_CANCELLED);
    kts_gate_release(e->srv, "/ts/v64/seg3.ts", KTS_RELEASE_ALL);
    kth_decoder_close(r.d);
    kth_stream_close(s);
}

static void test_a_segment_that_fails_ends_the_decode_clearly(void **state)
{
    struct hls_env *e = *state;
    /* The 404 waits at a gate until the decoder is open and has decoded its first frames: the
     * stream fails as a whole once the download meets it, and a prefetch of segment 3 met it
     * while the demuxer was still opening in about one run in ten. */
    kts_add_fault(e->srv, "/ts/v64/seg3.ts", &(kts_fault){.kind = KTS_FAULT_GATE});
    kts_add_fault(e->srv, "/ts/v64/seg3.ts", &(kts_fault){.kind = KTS_FAULT_STATUS, .status = 404});
    kth_stream *s = hls_open_variant(e, "/ts/master.m3u8", 0);
    kth_decoder *d = open_decoder_on(s, KTH_SAMPLE_F32, NULL);
    pcm_ref want = reference_of_variant("ts/v64", NULL, AV_SAMPLE_FMT_FLT);
    pcm_ref got = {.frame_bytes = kth_decoder_frame_bytes(d), .channels = 2, .rate = 44100};
    int64_t n;
    for (int guard = 0; guard < 100000; guard++) {
        if (guard == 1)
            assert_int_equal(kts_gate_release(e->srv, "/ts/v64/seg3.ts", KTS_RELEASE_ALL), KTH_OK);
        got.data = realloc(got.data, (got.frames + 4096) * got.frame_bytes);
        n = kth_decoder_read(d, got.data + got.frames * got.frame_bytes, 4096);
        if (n <= 0)
            break;
        got.frames += (size_t)n;
    }
    char msg[1024];
    kth_decoder_last_error(d, msg, sizeof msg);
    printf("after %zu frames: %s (%s)\n", got.frames, kth_strerror((int)n), msg);
    assert_int_equal(n, KTH_ERR_NOT_FOUND);
    assert_non_null(strstr(msg, "seg3.ts"));
    assert_non_null(strstr(msg, "404"));
    /* Whole codec frames only, and every one of them right. (The stream fails as a whole as
     * soon as the download meets the 404, which may be before the reader is at segment 3.) */
    assert_int_equal(got.frames % 1024, 0);
    assert_true(got.frames > 0 && got.frames < 7 * 44100);
    assert_int_equal(first_difference(&got, 0, &want, 0, got.frames), got.frames);
    /* The failure stays. */
    assert_int_equal(kth_decoder_read(d, got.data, 16), KTH_ERR_NOT_FOUND);
    free(got.data);
    free(want.data);
    kth_decoder_close(d);
    kth_stream_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_cancel_ends_a_blocked_read, hls_setup, hls_teardown),
        cmocka_unit_test_setup_teardown(test_a_segment_that_fails_ends_the_decode_clearly,
                                        hls_setup, hls_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
