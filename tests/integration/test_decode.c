/*
 * test_decode.c — kth_decoder against FFmpeg's own decode of the same bytes, on every fixture
 * kind: progressive MP3 (a local path and over HTTP, gapless-trimmed as the file declares),
 * and HLS variants fixed in manual mode — MPEG-TS, fMP4 AAC, FLAC in fMP4, AES-128 and byte
 * ranges — bit for bit, in f32 and s16; the output format the caller fixes; and a clear error
 * for bytes that are not audio.
 */
#include "test_decode_support.h"

#include <sys/stat.h>

#define SAMPLE_MP3 KTH_SOURCE_DIR "/tests/fixtures/sample.mp3"

static void check_variant(struct hls_env *e, const char *master, int variant, const char *dir,
                          const char *clear_dir, kth_sample_format fmt)
{
    kth_stream *s = hls_open_variant(e, master, variant);
    kth_decoder *d = open_decoder_on(s, fmt, NULL);
    pcm_ref got;
    decode_all(d, &got);
    pcm_ref want = reference_of_variant(
        dir, clear_dir, fmt == KTH_SAMPLE_F32 ? AV_SAMPLE_FMT_FLT : AV_SAMPLE_FMT_S16);
    printf("%s: %zu frames at %d Hz, %d channels\n", dir, got.frames, got.rate, got.channels);
    assert_int_equal(got.rate, want.rate);
    assert_int_equal(got.channels, want.channels);
    assert_same_pcm(&got, &want);
    assert_int_equal(kth_decoder_position(d), got.frames);
    free(got.data);
    free(want.data);
    kth_decoder_close(d);
    kth_stream_close(s);
}

static void test_ts_variant_decodes_as_ffmpeg_does(void **state)
{
    check_variant(*state, "/ts/master.m3u8", 1, "ts/v128", NULL, KTH_SAMPLE_F32);
    check_variant(*state, "/ts/master.m3u8", 0, "ts/v64", NULL, KTH_SAMPLE_S16);
}

static void test_fmp4_variant_decodes_as_ffmpeg_does(void **state)
{
    check_variant(*state, "/fmp4/master.m3u8", 2, "fmp4/v256", NULL, KTH_SAMPLE_F32);
    check_variant(*state, "/fmp4/master.m3u8", 0, "fmp4/v64", NULL, KTH_SAMPLE_S16);
}

static void test_flac_in_fmp4_decodes_as_ffmpeg_does(void **state)
{
    check_variant(*state, "/flac/master.m3u8", 0, "flac/v", NULL, KTH_SAMPLE_S16);
}

static void test_aes128_variant_decodes_as_its_plaintext(void **state)
{
    check_variant(*state, "/aes/master.m3u8", 0, "aes/v64", "aes/clear/v64", KTH_SAMPLE_F32);
    check_variant(*state, "/aes/master.m3u8", 1, "aes/v128", "aes/clear/v128", KTH_SAMPLE_F32);
}

static void test_byterange_variant_decodes_as_ffmpeg_does(void **state)
{
    check_variant(*state, "/byterange/index.m3u8", 0, "byterange", NULL, KTH_SAMPLE_F32);
}

static void check_mp3(kth_decoder *d, enum AVSampleFormat fmt)
{
    pcm_ref got, want;
    decode_all(d, &got);
    assert_int_equal(decode_reference(SAMPLE_MP3, fmt, &want), 0);
    printf("sample.mp3: %zu frames (reference %zu)\n", got.frames, want.frames);
    assert_same_pcm(&got, &want);
    free(got.data);
    free(want.data);
}

/* Zeroed decoder options decode to s16 at the source's format; a newer header's field this
 * build lacks, set, is refused rather than ignored. */
static void test_zeroed_decoder_options_are_the_defaults(void **state)
{
    (void)state;
    kth_decoder_options o = {0};
    kth_decoder *d = NULL;
    char err[512];
    assert_int_equal(kth_decoder_open(SAMPLE_MP3, NULL, &o, &d, err, sizeof err), KTH_OK);
    kth_pcm_format f;
    assert_int_equal(kth_decoder_format(d, &f), KTH_OK);
    assert_int_equal(f.sample_format, KTH_SAMPLE_S16);
    assert_int_equal(f.sample_rate, 44100);
    kth_decoder_close(d);
    struct {
        kth_decoder_options o;
        uint32_t later;
    } newer = {.o = {.size = sizeof newer}, .later = 1};
    d = NULL;
    assert_int_equal(kth_decoder_open(SAMPLE_MP3, NULL, &newer.o, &d, err, sizeof err),
                     KTH_ERR_UNSUPPORTED);
    assert_null(d);
}

/* The LAME header declares the encoder delay and padding: 8 s at 44.1 kHz come out as
 * exactly 352800 frames, as FFmpeg decodes them. */
static void test_progressive_mp3_is_gapless_and_exact(void **state)
{
    struct hls_env *e = *state;
    kth_bus *bus = e->bus;
    kth_subscription *sub;
    assert_int_equal(kth_bus_subscribe(bus, 64, &sub), KTH_OK);
    kth_decoder_options o;
    kth_decoder_options_init(&o);
    o.sample_format = KTH_SAMPLE_S16;
    o.bus = bus;
    kth_decoder *d = NULL;
    char err[512];
    assert_int_equal(kth_decoder_open(SAMPLE_MP3, NULL, &o, &d, err, sizeof err), KTH_OK);
    kth_pcm_format f;
    assert_int_equal(kth_decoder_format(d, &f), KTH_OK);
    assert_int_equal(f.sample_rate, 44100);
    assert_int_equal(f.channels, 1);
    pcm_ref got;
    decode_all(d, &got);
    assert_int_equal(got.frames, 8 * 44100);
    free(got.data);
    kth_decoder_close(d);
    uint64_t trimmed = 0;
    kth_event ev;
    while (kth_events_next(sub, &ev, 0) == KTH_OK)
        if (ev.kind == KTH_EVENT_DECODER_TRIMMED)
            trimmed += ev.payload.decode.frames;
    printf("trimmed %llu frames of delay and padding\n", (unsigned long long)trimmed);
    assert_true(trimmed > 0);
    kth_subscription_free(sub);

    assert_int_equal(kth_decoder_open(SAMPLE_MP3, NULL, &o, &d, err, sizeof err), KTH_OK);
    check_mp3(d, AV_SAMPLE_FMT_S16);
    kth_decoder_close(d);
}

static void test_progressive_mp3_over_http_decodes_as_ffmpeg_does(void **state)
{
    struct hls_env *e = *state;
    kts_server *srv;
    kts_config cfg = {.doc_root = KTH_SOURCE_DIR "/tests/fixtures"};
    assert_int_equal(kts_start(&cfg, &srv), KTH_OK);
    char url[512];
    kts_url(srv, "/sample.mp3", url, sizeof url);
    kth_stream_options so;
    kth_stream_options_init(&so);
    so.read_timeout_ms = 20000;
    so.downloader = e->d;
    so.cache = e->cache;
    kth_decoder_options o;
    kth_decoder_options_init(&o);
    o.sample_format = KTH_SAMPLE_F32;
    kth_decoder *d = NULL;
    char err[512];
    assert_int_equal(kth_decoder_open(url, &so, &o, &d, err, sizeof err), KTH_OK);
    check_mp3(d, AV_SAMPLE_FMT_FLT);
    kth_decoder_close(d);
    kts_stop(srv);
}

/* Writes `pcm` (s16) as a canonical 44-byte-header WAV file at path. */
static void write_wav(const char *path, const pcm_ref *pcm)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    uint32_t data = (uint32_t)(pcm->frames * pcm->frame_bytes), rate = (uint32_t)pcm->rate;
    uint16_t chans = (uint16_t)pcm->channels, align = (uint16_t)pcm->frame_bytes, bits = 16;
    uint32_t riff = 36 + data, fmt_len = 16, byte_rate = rate * align;
    uint16_t pcm_tag = 1;
    fwrite("RIFF", 1, 4, f);
    fwrite(&riff, 4, 1, f);
    fwrite("WAVEfmt ", 1, 8, f);
    fwrite(&fmt_len, 4, 1, f);
    fwrite(&pcm_tag, 2, 1, f);
    fwrite(&chans, 2, 1, f);
    fwrite(&rate, 4, 1, f);
    fwrite(&byte_rate, 4, 1, f);
    fwrite(&align, 2, 1, f);
    fwrite(&bits, 2, 1, f);
    fwrite("data", 1, 4, f);
    fwrite(&data, 4, 1, f);
    assert_int_equal(fwrite(pcm->data, 1, data, f), data);
    assert_int_equal(fclose(f), 0);
}

/* Decodes url through the env's downloader and cache and compares it with FFmpeg's own decode
 * of the file at `path`. */
static void check_progressive(struct hls_env *e, const char *url, const char *path)
{
    kth_stream_options so = {.read_timeout_ms = 20000, .downloader = e->d, .cache = e->cache};
    kth_decoder *d = NULL;
    char err[512];
    if (kth_decoder_open(url, &so, NULL, &d, err, sizeof err) != KTH_OK)
        fail_msg("%s: %s", url, err);
    pcm_ref got, want;
    decode_all(d, &got);
    assert_int_equal(decode_reference(path, AV_SAMPLE_FMT_S16, &want), 0);
    printf("%s: %zu frames (reference %zu)\n", url, got.frames, want.frames);
    assert_true(got.frames > 0);
    assert_same_pcm(&got, &want);
    free(got.data);
    free(want.data);
    kth_decoder_close(d);
}

/* FLAC and WAV files over HTTP decode as FFmpeg decodes them, sample for sample. */
static void test_progressive_flac_and_wav_decode_as_ffmpeg_does(void **state)
{
    struct hls_env *e = *state;
    char dir[600], wav[700], url[512];
    snprintf(dir, sizeof dir, "%s/files", e->dir);
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(wav, sizeof wav, "%s/tone.wav", dir);
    pcm_ref tone;
    assert_int_equal(
        decode_reference(KTH_SOURCE_DIR "/tests/fixtures/tone.flac", AV_SAMPLE_FMT_S16, &tone), 0);
    write_wav(wav, &tone);
    free(tone.data);
    kts_config fixtures = {.doc_root = KTH_SOURCE_DIR "/tests/fixtures"}, files = {.doc_root = dir};
    kts_server *a, *b;
    assert_int_equal(kts_start(&fixtures, &a), KTH_OK);
    assert_int_equal(kts_start(&files, &b), KTH_OK);
    kts_url(a, "/tone.flac", url, sizeof url);
    check_progressive(e, url, KTH_SOURCE_DIR "/tests/fixtures/tone.flac");
    kts_url(b, "/tone.wav", url, sizeof url);
    check_progressive(e, url, wav);
    kts_stop(b);
    kts_stop(a);
}

/* A rate and channel count the caller fixes: the output has them, and its length follows. */
static void test_caller_fixes_rate_and_channels(void **state)
{
    (void)state;
    kth_decoder_options o;
    kth_decoder_options_init(&o);
    o.sample_format = KTH_SAMPLE_F32;
    o.sample_rate = 48000;
    o.channels = 2;
    kth_decoder *d = NULL;
    char err[512];
    assert_int_equal(kth_decoder_open(SAMPLE_MP3, NULL, &o, &d, err, sizeof err), KTH_OK);
    kth_pcm_format f;
    kth_decoder_format(d, &f);
    assert_int_equal(f.sample_rate, 48000);
    assert_int_equal(f.channels, 2);
    assert_int_equal(f.sample_format, KTH_SAMPLE_F32);
    assert_int_equal(kth_decoder_frame_bytes(d), 8);
    pcm_ref got;
    decode_all(d, &got);
    printf("8 s resampled to 48 kHz: %zu frames\n", got.frames);
    assert_true(got.frames >= 8 * 48000 - 2 && got.frames <= 8 * 48000 + 2);
    for (size_t i = 0; i < got.frames; i += 997)
        assert_true(pcm_sample(&got, i, 0) == pcm_sample(&got, i, 1));
    free(got.data);
    kth_decoder_close(d);
}

static void test_bytes_that_are_not_audio_fail_clearly(void **state)
{
    (void)state;
    kth_decoder *d = (kth_decoder *)1;
    char err[512] = "";
    kth_status st = kth_decoder_open(KTH_SOURCE_DIR "/tests/fixtures/hls/ts/master.m3u8", NULL,
                                     NULL, &d, err, sizeof err);
    printf("playlist as a file: %s (%s)\n", kth_strerror(st), err);
    assert_int_equal(st, KTH_ERR_FORMAT);
    assert_null(d);
    assert_non_null(strstr(err, "master.m3u8"));
    kth_decoder_options o;
    kth_decoder_options_init(&o);
    o.sample_format = (kth_sample_format)7;
    assert_int_equal(kth_decoder_open(SAMPLE_MP3, NULL, &o, &d, err, sizeof err),
                     KTH_ERR_INVALID_ARG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ts_variant_decodes_as_ffmpeg_does),
        cmocka_unit_test(test_fmp4_variant_decodes_as_ffmpeg_does),
        cmocka_unit_test(test_flac_in_fmp4_decodes_as_ffmpeg_does),
        cmocka_unit_test(test_aes128_variant_decodes_as_its_plaintext),
        cmocka_unit_test(test_byterange_variant_decodes_as_ffmpeg_does),
        cmocka_unit_test(test_progressive_mp3_is_gapless_and_exact),
        cmocka_unit_test(test_zeroed_decoder_options_are_the_defaults),
        cmocka_unit_test(test_progressive_mp3_over_http_decodes_as_ffmpeg_does),
        cmocka_unit_test(test_progressive_flac_and_wav_decode_as_ffmpeg_does),
        cmocka_unit_test(test_caller_fixes_rate_and_channels),
        cmocka_unit_test(test_bytes_that_are_not_audio_fail_clearly),
    };
    return cmocka_run_group_tests(tests, hls_setup, hls_teardown);
}
