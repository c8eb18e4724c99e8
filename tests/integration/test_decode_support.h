/*
 * test_decode_support.h — what the decoder tests share: decoding a kth_decoder to its end,
 * FFmpeg's own decode of a fixture variant's bytes (decode_reference.h over the concatenated
 * files), and comparisons that name the first differing frame.
 */
#ifndef KTH_TEST_DECODE_SUPPORT_H
#define KTH_TEST_DECODE_SUPPORT_H

#include "decode_reference.h"
#include "test_hls_support.h"

#include <kithara/decode.h>

#include <math.h>
#include <unistd.h>

/* Reads the decoder to its end (or `max_frames`) into *out; fails the test on an error. */
static inline void decode_frames(kth_decoder *d, size_t max_frames, pcm_ref *out)
{
    kth_pcm_format f;
    assert_int_equal(kth_decoder_format(d, &f), KTH_OK);
    memset(out, 0, sizeof *out);
    out->rate = (int)f.sample_rate;
    out->channels = (int)f.channels;
    out->frame_bytes = kth_decoder_frame_bytes(d);
    size_t chunk = 4096;
    for (int guard = 0; guard < 1000000 && out->frames < max_frames; guard++) {
        size_t want = max_frames - out->frames < chunk ? max_frames - out->frames : chunk;
        out->data = realloc(out->data, (out->frames + want) * out->frame_bytes);
        assert_non_null(out->data);
        int64_t n = kth_decoder_read(d, out->data + out->frames * out->frame_bytes, want);
        if (n == 0)
            return;
        if (n < 0) {
            char msg[1024];
            kth_decoder_last_error(d, msg, sizeof msg);
            fail_msg("decoder read: %s (%s)", kth_strerror((int)n), msg);
        }
        out->frames += (size_t)n;
    }
}

static inline void decode_all(kth_decoder *d, pcm_ref *out)
{
    decode_frames(d, SIZE_MAX, out);
}

/* FFmpeg's decode of a fixture variant (dir under tests/fixtures/hls; clear_dir: where the
 * plaintext lives, or NULL). */
static inline pcm_ref reference_of_variant(const char *dir, const char *clear_dir,
                                           enum AVSampleFormat fmt)
{
    bytes b = expected_variant(dir, clear_dir);
    variant_files v = list_variant(dir);
    char *path = ref_temp_file(b.data, b.len, v.has_init ? ".mp4" : ".ts");
    assert_non_null(path);
    pcm_ref r;
    if (decode_reference(path, fmt, &r) != 0)
        fail_msg("reference decode of %s failed", dir);
    unlink(path);
    free(path);
    free(b.data);
    return r;
}

/* The first frame in [from, to) where a and b differ, or `to` when none does. */
static inline size_t first_difference(const pcm_ref *a, size_t a_from, const pcm_ref *b,
                                      size_t b_from, size_t count)
{
    for (size_t i = 0; i < count; i++)
        if (memcmp(a->data + (a_from + i) * a->frame_bytes, b->data + (b_from + i) * b->frame_bytes,
                   a->frame_bytes) != 0)
            return i;
    return count;
}

static inline void assert_same_pcm(const pcm_ref *got, const pcm_ref *want)
{
    assert_int_equal(got->frame_bytes, want->frame_bytes);
    size_t n = got->frames < want->frames ? got->frames : want->frames;
    size_t k = first_difference(got, 0, want, 0, n);
    if (k < n)
        fail_msg("frame %zu differs (got %zu frames, want %zu)", k, got->frames, want->frames);
    if (got->frames != want->frames)
        fail_msg("got %zu frames, want %zu", got->frames, want->frames);
}

/* Sample c of frame i as a float (f32 or s16 data). */
static inline float pcm_sample(const pcm_ref *p, size_t i, int c)
{
    const uint8_t *at = p->data + i * p->frame_bytes;
    if (p->frame_bytes == (size_t)p->channels * sizeof(float)) {
        float v;
        memcpy(&v, at + (size_t)c * sizeof v, sizeof v);
        return v;
    }
    int16_t v;
    memcpy(&v, at + (size_t)c * sizeof v, sizeof v);
    return (float)v / 32768.f;
}

/* The largest step between consecutive samples over frames [from, to). */
static inline float largest_step(const pcm_ref *p, size_t from, size_t to)
{
    float worst = 0;
    for (size_t i = from + 1; i < to && i < p->frames; i++)
        for (int c = 0; c < p->channels; c++) {
            float s = fabsf(pcm_sample(p, i, c) - pcm_sample(p, i - 1, c));
            if (s > worst)
                worst = s;
        }
    return worst;
}

static inline kth_decoder *open_decoder_on(kth_stream *s, kth_sample_format fmt, kth_bus *bus)
{
    kth_decoder_options o;
    kth_decoder_options_init(&o);
    o.sample_format = fmt;
    o.bus = bus;
    kth_decoder *d = NULL;
    char err[1024] = "";
    kth_status st = kth_decoder_open_stream(s, &o, &d, err, sizeof err);
    if (st != KTH_OK)
        fail_msg("decoder open: %s (%s)", kth_strerror(st), err);
    return d;
}

/* A decoder join (KTH_EVENT_DECODER_KEPT or _RESTARTED) as the bus told it. */
typedef struct decode_join {
    kth_event_kind kind;
    uint64_t frame; /* the join's output frame */
    int from, to;   /* variants */
} decode_join;

/* Takes every event queued on sub, printing the decoder's joins and keeping the first `max`
 * of them in order; returns how many joins there were. */
static inline size_t take_joins(kth_subscription *sub, decode_join *joins, size_t max)
{
    size_t n = 0;
    kth_event ev;
    while (kth_events_next(sub, &ev, 0) == KTH_OK) {
        if (ev.kind != KTH_EVENT_DECODER_KEPT && ev.kind != KTH_EVENT_DECODER_RESTARTED)
            continue;
        const kth_event_decode *p = &ev.payload.decode;
        printf("%s at frame %llu: variant %d -> %d\n", kth_event_kind_name(ev.kind),
               (unsigned long long)p->frame, p->from_variant, p->to_variant);
        if (n < max)
            joins[n] = (decode_join){ev.kind, p->frame, p->from_variant, p->to_variant};
        n++;
    }
    return n;
}

#endif
