/*
 * test_media.c — codec identifiers (RFC 6381), extensions, Content-Types, and container
 * detection and header probing on hand-built headers of every container we know.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include <kithara/media.h>

#include "stream/media_start.h"

static void test_rfc6381_identifiers(void **state)
{
    (void)state;
    const struct {
        const char *id;
        kth_codec codec;
    } cases[] = {
        {"mp4a.40.2", KTH_CODEC_AAC_LC},
        {"mp4a.40.02", KTH_CODEC_AAC_LC},
        {"mp4a.40.5", KTH_CODEC_HE_AAC},
        {"mp4a.40.29", KTH_CODEC_HE_AAC_V2},
        {"mp4a.40.34", KTH_CODEC_MP3},
        {"mp4a.6B", KTH_CODEC_MP3},
        {"mp4a.69", KTH_CODEC_MP3},
        {"MP4A.40.2", KTH_CODEC_AAC_LC},
        {"fLaC", KTH_CODEC_FLAC},
        {"flac", KTH_CODEC_FLAC},
        {"Opus", KTH_CODEC_OPUS},
        {"opus", KTH_CODEC_OPUS},
        {"ac-3", KTH_CODEC_AC3},
        {"ec-3", KTH_CODEC_EAC3},
        {"mp4a.a6", KTH_CODEC_EAC3},
        {"alac", KTH_CODEC_ALAC},
        {"vorbis", KTH_CODEC_VORBIS},
        {"avc1.64001f", KTH_CODEC_VIDEO},
        {"hvc1.1.6.L93.B0", KTH_CODEC_VIDEO},
        {" mp4a.40.2 ", KTH_CODEC_AAC_LC},
        {"mp4a.40.42", KTH_CODEC_UNKNOWN},
        {"mp4a.zz", KTH_CODEC_UNKNOWN},
        {"mp4a.40.", KTH_CODEC_UNKNOWN},
        {"xyz", KTH_CODEC_UNKNOWN},
        {"", KTH_CODEC_UNKNOWN},
        {"avc1x", KTH_CODEC_UNKNOWN},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (kth_codec_from_rfc6381(cases[i].id) != cases[i].codec)
            fail_msg("'%s' gave %s, expected %s", cases[i].id,
                     kth_codec_name(kth_codec_from_rfc6381(cases[i].id)),
                     kth_codec_name(cases[i].codec));
    }
    assert_int_equal(kth_codec_from_rfc6381(NULL), KTH_CODEC_UNKNOWN);
    assert_true(kth_codec_is_audio(KTH_CODEC_OPUS));
    assert_false(kth_codec_is_audio(KTH_CODEC_VIDEO));
    assert_false(kth_codec_is_audio(KTH_CODEC_UNKNOWN));
}

static void test_codecs_list_parsing(void **state)
{
    (void)state;
    kth_codec out[2];
    size_t count = 0;
    assert_int_equal(kth_codecs_parse("avc1.4d401e,mp4a.40.2, ec-3", out, 2, &count), KTH_OK);
    assert_int_equal(count, 3);
    assert_int_equal(out[0], KTH_CODEC_VIDEO);
    assert_int_equal(out[1], KTH_CODEC_AAC_LC);
    assert_int_equal(kth_codecs_parse("mp4a.40.2,,avc1", out, 2, &count), KTH_ERR_FORMAT);
    assert_int_equal(kth_codecs_parse("", out, 2, &count), KTH_ERR_FORMAT);
    assert_int_equal(kth_codecs_parse(NULL, out, 2, &count), KTH_ERR_INVALID_ARG);
}

static void test_extensions_and_content_types(void **state)
{
    (void)state;
    assert_int_equal(kth_container_from_extension("http://h/a/b/song.MP3?x=1#t"),
                     KTH_CONTAINER_MPEG_AUDIO);
    assert_int_equal(kth_container_from_extension("/x/y.flac"), KTH_CONTAINER_FLAC);
    assert_int_equal(kth_container_from_extension("seg_001.ts"), KTH_CONTAINER_MPEG_TS);
    assert_int_equal(kth_container_from_extension("init.mp4"), KTH_CONTAINER_FMP4);
    assert_int_equal(kth_container_from_extension("a.opus"), KTH_CONTAINER_OGG);
    assert_int_equal(kth_container_from_extension("http://h/dir.mp3/file"), KTH_CONTAINER_UNKNOWN);
    assert_int_equal(kth_container_from_extension("noext"), KTH_CONTAINER_UNKNOWN);
    assert_int_equal(kth_container_from_content_type("audio/mpeg"), KTH_CONTAINER_MPEG_AUDIO);
    assert_int_equal(kth_container_from_content_type(" Audio/MP4; codecs=mp4a.40.2"),
                     KTH_CONTAINER_FMP4);
    assert_int_equal(kth_container_from_content_type("video/MP2T"), KTH_CONTAINER_MPEG_TS);
    assert_int_equal(kth_container_from_content_type("text/html"), KTH_CONTAINER_UNKNOWN);
}

static size_t put_adts(uint8_t *p, size_t frame)
{
    memset(p, 0, frame);
    p[0] = 0xFF;
    p[1] = 0xF1;                              /* MPEG-4, layer 0, no CRC */
    p[2] = (uint8_t)(1 << 6 | 4 << 2);        /* LC, 44.1 kHz */
    p[3] = (uint8_t)(2 << 6 | (frame >> 11)); /* stereo */
    p[4] = (uint8_t)(frame >> 3);
    p[5] = (uint8_t)((frame & 7) << 5 | 0x1F);
    p[6] = 0xFC;
    return frame;
}

static void test_adts_behind_id3_is_detected_with_rate_and_channels(void **state)
{
    (void)state;
    uint8_t buf[1024] = {0};
    memcpy(buf, "ID3\x04\x00\x00\x00\x00\x00\x14", 10); /* tag with 20 bytes of body */
    size_t off = 30;
    off += put_adts(buf + off, 100);
    put_adts(buf + off, 100);
    kth_media_info mi = {0};
    assert_int_equal(kth_media_probe(buf, off + 100, &mi), KTH_OK);
    assert_int_equal(mi.container, KTH_CONTAINER_ADTS);
    assert_int_equal(mi.codec, KTH_CODEC_AAC_LC);
    assert_int_equal(mi.sample_rate, 44100);
    assert_int_equal(mi.channels, 2);
}

static void test_mp3_frames_are_detected_with_bitrate(void **state)
{
    (void)state;
    uint8_t buf[2000] = {0};
    const uint8_t hdr[4] = {0xFF, 0xFB, 0x90, 0xC0}; /* MPEG-1 L3, 128 kbit/s, 44.1 kHz, mono */
    memcpy(buf + 3, hdr, 4);                         /* a little junk before the first frame */
    memcpy(buf + 3 + 417, hdr, 4);
    kth_media_info mi = {0};
    assert_int_equal(kth_media_probe(buf, sizeof buf, &mi), KTH_OK);
    assert_int_equal(mi.container, KTH_CONTAINER_MPEG_AUDIO);
    assert_int_equal(mi.codec, KTH_CODEC_MP3);
    assert_int_equal(mi.bitrate, 128000);
    assert_int_equal(mi.sample_rate, 44100);
    assert_int_equal(mi.channels, 1);
    /* A lone sync-looking pair whose next frame is garbage is not MPEG audio. */
    uint8_t bad[2000] = {0};
    memcpy(bad, hdr, 4);
    memset(bad + 417, 0x11, 8);
    assert_int_equal(kth_media_probe(bad, sizeof bad, &mi), KTH_ERR_FORMAT);
}

static void test_flac_wav_ogg_caf_headers(void **state)
{
    (void)state;
    kth_media_info mi;

    uint8_t flac[64] = "fLaC\x80\x00\x00\x22";
    flac[8 + 10] = 0x0A;
    flac[8 + 11] = 0xC4;
    flac[8 + 12] = 0x42; /* 44100 Hz, 2 channels, 16 bits */
    memset(&mi, 0, sizeof mi);
    assert_int_equal(kth_media_probe(flac, sizeof flac, &mi), KTH_OK);
    assert_int_equal(mi.container, KTH_CONTAINER_FLAC);
    assert_int_equal(mi.sample_rate, 44100);
    assert_int_equal(mi.channels, 2);

    uint8_t wav[44] = "RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00"
                      "\x01\x00\x02\x00\x80\xbb\x00\x00\x00\xee\x02\x00\x04\x00\x10\x00";
    memset(&mi, 0, sizeof mi);
    assert_int_equal(kth_media_probe(wav, sizeof wav, &mi), KTH_OK);
    assert_int_equal(mi.container, KTH_CONTAINER_WAV);
    assert_int_equal(mi.codec, KTH_CODEC_PCM);
    assert_int_equal(mi.sample_rate, 48000);
    assert_int_equal(mi.channels, 2);
    assert_int_equal(mi.bitrate, 1536000);

    uint8_t ogg[64] = {0};
    memcpy(ogg, "OggS", 4);
    ogg[26] = 1;
    ogg[27] = 19;
    memcpy(ogg + 28, "OpusHead\x01\x02", 10);
    memset(&mi, 0, sizeof mi);
    assert_int_equal(kth_media_probe(ogg, sizeof ogg, &mi), KTH_OK);
    assert_int_equal(mi.container, KTH_CONTAINER_OGG);
    assert_int_equal(mi.codec, KTH_CODEC_OPUS);
    assert_int_equal(mi.channels, 2);
    assert_int_equal(mi.sample_rate, 48000);

    uint8_t caf[64] = {0};
    memcpy(caf, "caff\x00\x01\x00\x00", 8);
    memcpy(caf + 8, "desc", 4);
    caf[19] = 32;
    const uint8_t rate[8] = {0x40, 0xE5, 0x88, 0x80, 0, 0, 0, 0}; /* 44100.0 as a double */
    memcpy(caf + 20, rate, 8);
    memcpy(caf + 28, "alac", 4);
    caf[20 + 27] = 2;
    memset(&mi, 0, sizeof mi);
    assert_int_equal(kth_media_probe(caf, sizeof caf, &mi), KTH_OK);
    assert_int_equal(mi.container, KTH_CONTAINER_CAF);
    assert_int_equal(mi.codec, KTH_CODEC_ALAC);
    assert_int_equal(mi.sample_rate, 44100);
    assert_int_equal(mi.channels, 2);
}

static void test_mpeg_ts_program_tables_give_the_audio_codec(void **state)
{
    (void)state;
    uint8_t ts[3 * 188];
    memset(ts, 0xFF, sizeof ts);
    uint8_t *pat = ts, *pmt = ts + 188, *pes = ts + 376;
    const uint8_t pat_head[] = {0x47, 0x40, 0x00, 0x10, 0x00, 0x00, 0xB0, 0x0D, 0x00, 0x01, 0xC1,
                                0x00, 0x00, 0x00, 0x01, 0xE1, 0x00, 0,    0,    0,    0};
    memcpy(pat, pat_head, sizeof pat_head);
    const uint8_t pmt_head[] = {0x47, 0x41, 0x00, 0x10, 0x00, 0x02, 0xB0, 0x12, 0x00,
                                0x01, 0xC1, 0x00, 0x00, 0xE1, 0x01, 0xF0, 0x00, 0x0F,
                                0xE1, 0x01, 0xF0, 0x00, 0,    0,    0,    0};
    memcpy(pmt, pmt_head, sizeof pmt_head);
    pes[0] = 0x47;
    kth_media_info mi = {0};
    assert_int_equal(kth_media_probe(ts, sizeof ts, &mi), KTH_OK);
    assert_int_equal(mi.container, KTH_CONTAINER_MPEG_TS);
    assert_int_equal(mi.codec, KTH_CODEC_AAC_LC);
    /* Broken sync at the second packet: not TS. */
    ts[188] = 0x00;
    assert_int_equal(kth_container_detect(ts, sizeof ts), KTH_CONTAINER_UNKNOWN);
}

static void test_fmp4_sample_entry_and_esds(void **state)
{
    (void)state;
    uint8_t mp4[256] = {0};
    memcpy(mp4,
           "\x00\x00\x00\x18"
           "ftypiso6\x00\x00\x00\x00iso6cmfc",
           24);
    uint8_t *e = mp4 + 100;
    memcpy(e, "mp4a", 4);
    e[4 + 17] = 2;                     /* channels */
    memcpy(e + 4 + 24, "\xAC\x44", 2); /* 44100 << 16 */
    uint8_t *esds = e + 40;
    memcpy(esds, "esds", 4);
    const uint8_t desc[] = {
        0x03, 0x19, 0x00, 0x01, 0x00, /* ES_Descriptor */
        0x04, 0x11, 0x40, 0x15, 0,    0,    0,    0,    0,   0,
        0,    0,    0,    0,    0,    0x05, 0x02, 0x28, 0x00}; /* DecoderSpecificInfo: AOT 5 */
    memcpy(esds + 8, desc, sizeof desc);
    kth_media_info mi = {0};
    assert_int_equal(kth_media_probe(mp4, sizeof mp4, &mi), KTH_OK);
    assert_int_equal(mi.container, KTH_CONTAINER_FMP4);
    assert_int_equal(mi.codec, KTH_CODEC_HE_AAC);
    assert_int_equal(mi.channels, 2);
    assert_int_equal(mi.sample_rate, 44100);
}

static void test_unknown_and_truncated_input_is_not_trusted(void **state)
{
    (void)state;
    kth_media_info mi = {0};
    uint8_t html[] = "<!DOCTYPE html><html><body>404</body></html>";
    assert_int_equal(kth_media_probe(html, sizeof html, &mi), KTH_ERR_FORMAT);
    assert_int_equal(kth_container_detect(html, 0), KTH_CONTAINER_UNKNOWN);
    uint8_t id3_only[10] = {'I', 'D', '3', 4, 0, 0, 0x7F, 0x7F, 0x7F, 0x7F};
    assert_int_equal(kth_media_probe(id3_only, sizeof id3_only, &mi), KTH_ERR_FORMAT);
    uint8_t flac_short[6] = "fLaC\x80";
    assert_int_equal(kth_media_probe(flac_short, sizeof flac_short, &mi), KTH_OK);
    assert_int_equal(mi.container, KTH_CONTAINER_FLAC);
    assert_int_equal(kth_media_probe(NULL, 4, &mi), KTH_ERR_INVALID_ARG);
    /* Every prefix of every probe input is handled without reading past it (ASan checks). */
    uint8_t wav[44] = "RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00";
    for (size_t n = 0; n <= sizeof wav; n++) {
        memset(&mi, 0, sizeof mi);
        kth_media_probe(wav, n, &mi);
    }
}

/* The strict start check wants each container's signature at byte 0: segments and init
 * sections of every kind pass, error pages, text and junk do not. */
static void test_strict_start_check_accepts_containers_and_rejects_the_rest(void **state)
{
    (void)state;
    kth_container c;
    uint8_t ts[600] = {0};
    for (size_t off = 0; off < sizeof ts; off += 188)
        ts[off] = 0x47;
    assert_true(media_start_plausible(ts, sizeof ts, &c));
    assert_int_equal(c, KTH_CONTAINER_MPEG_TS);
    ts[376] = 0x48; /* a sync byte missing */
    assert_false(media_start_plausible(ts, sizeof ts, &c));
    assert_false(media_start_plausible(ts, 100, &c)); /* less than a packet */

    static const char *const boxes[] = {"ftyp", "styp", "moof", "moov", "sidx", "emsg", "prft"};
    for (size_t i = 0; i < sizeof boxes / sizeof boxes[0]; i++) {
        uint8_t box[16] = {0, 0, 0, 24};
        memcpy(box + 4, boxes[i], 4);
        assert_true(media_start_plausible(box, sizeof box, &c));
        assert_int_equal(c, KTH_CONTAINER_FMP4);
        box[3] = 4; /* a box smaller than its own header */
        assert_false(media_start_plausible(box, sizeof box, &c));
    }
    uint8_t large[16] = {0, 0, 0, 1, 'm', 'o', 'o', 'f', 0, 0, 0, 0, 0, 0, 0, 8};
    assert_false(media_start_plausible(large, sizeof large, &c)); /* 64-bit size below 16 */
    large[15] = 200;
    assert_true(media_start_plausible(large, sizeof large, &c));
    uint8_t mdat[16] = {0, 0, 0, 16, 'm', 'd', 'a', 't'};
    assert_false(media_start_plausible(mdat, sizeof mdat, &c));

    uint8_t adts[300];
    put_adts(adts, 150);
    put_adts(adts + 150, 150);
    assert_true(media_start_plausible(adts, sizeof adts, &c));
    assert_int_equal(c, KTH_CONTAINER_ADTS);
    uint8_t mp3[500] = {0xFF, 0xFB, 0x90, 0xC0};
    memcpy(mp3 + 417, mp3, 4);
    assert_true(media_start_plausible(mp3, sizeof mp3, &c));
    assert_int_equal(c, KTH_CONTAINER_MPEG_AUDIO);
    uint8_t late[500] = {0};
    memcpy(late + 3, mp3, 4); /* lenient probing finds it; a segment must begin with it */
    memcpy(late + 420, mp3, 4);
    assert_int_equal(kth_container_detect(late, sizeof late), KTH_CONTAINER_MPEG_AUDIO);
    assert_false(media_start_plausible(late, sizeof late, &c));

    uint8_t packed[400] = {0};
    memcpy(packed, "ID3\x04\x00\x00\x00\x00\x00\x14", 10); /* 20 bytes of tag body */
    put_adts(packed + 30, 150);
    put_adts(packed + 180, 150);
    assert_true(media_start_plausible(packed, sizeof packed, &c));
    assert_int_equal(c, KTH_CONTAINER_ADTS);
    assert_true(media_start_plausible(packed, 20, &c)); /* the tag hides what follows */
    assert_int_equal(c, KTH_CONTAINER_UNKNOWN);
    memset(packed + 30, 'x', 300); /* a tag, then junk */
    assert_false(media_start_plausible(packed, sizeof packed, &c));
    assert_true(media_start_plausible((const uint8_t *)"fLaC\0\0\0\x22", 8, &c));
    assert_true(media_start_plausible((const uint8_t *)"\x0b\x77\x01\x02", 4, &c));

    const char *html = "<!DOCTYPE html>\n<html><head><title>Login</title></head></html>\n";
    assert_false(media_start_plausible((const uint8_t *)html, strlen(html), &c));
    assert_int_equal(c, KTH_CONTAINER_UNKNOWN);
    const char *text = "Access denied\n";
    assert_false(media_start_plausible((const uint8_t *)text, strlen(text), &c));
    static const uint8_t junk[16] = {0x3a, 0x9f, 0x12, 0x00, 0x7e, 0x55, 0xc3, 0x01,
                                     0x99, 0x42, 0x10, 0xee, 0x08, 0x6d, 0x21, 0xb4};
    assert_false(media_start_plausible(junk, sizeof junk, &c));
    assert_false(media_start_plausible(junk, 0, &c));
    assert_false(media_start_plausible(NULL, 10, NULL));
    /* Every prefix is handled without reading past it (ASan checks). */
    for (size_t n = 0; n <= sizeof packed; n++)
        media_start_plausible(packed, n, NULL);
    for (size_t n = 0; n <= sizeof large; n++)
        media_start_plausible(large, n, NULL);
}

/* The first 8 KiB of a fixture file (FFmpeg-made: 44.1 kHz stereo). */
static size_t fixture_head(const char *name, uint8_t *buf, size_t size)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/fixtures/hls/%s", KTH_SOURCE_DIR, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s", path);
    size_t n = fread(buf, 1, size, f);
    fclose(f);
    return n;
}

/* A TS segment's PMT names AAC; the first PES's ADTS header gives rate and channels. A FLAC
 * init section's dfLa STREAMINFO gives them too. */
static void test_ts_pes_and_fmp4_flac_give_rate_and_channels(void **state)
{
    (void)state;
    static uint8_t buf[8192];
    const struct {
        const char *file;
        kth_container container;
        kth_codec codec;
    } cases[] = {
        {"ts/v64/seg0.ts", KTH_CONTAINER_MPEG_TS, KTH_CODEC_AAC_LC},
        {"byterange/all.ts", KTH_CONTAINER_MPEG_TS, KTH_CODEC_AAC_LC},
        {"flac/v/init.mp4", KTH_CONTAINER_FMP4, KTH_CODEC_FLAC},
        {"fmp4/v64/init.mp4", KTH_CONTAINER_FMP4, KTH_CODEC_AAC_LC},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n = fixture_head(cases[i].file, buf, sizeof buf);
        kth_media_info mi = {0};
        assert_int_equal(kth_media_probe(buf, n, &mi), KTH_OK);
        assert_int_equal(mi.container, cases[i].container);
        assert_int_equal(mi.codec, cases[i].codec);
        assert_int_equal(mi.sample_rate, 44100);
        assert_int_equal(mi.channels, 2);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc6381_identifiers),
        cmocka_unit_test(test_codecs_list_parsing),
        cmocka_unit_test(test_extensions_and_content_types),
        cmocka_unit_test(test_adts_behind_id3_is_detected_with_rate_and_channels),
        cmocka_unit_test(test_mp3_frames_are_detected_with_bitrate),
        cmocka_unit_test(test_flac_wav_ogg_caf_headers),
        cmocka_unit_test(test_mpeg_ts_program_tables_give_the_audio_codec),
        cmocka_unit_test(test_fmp4_sample_entry_and_esds),
        cmocka_unit_test(test_ts_pes_and_fmp4_flac_give_rate_and_channels),
        cmocka_unit_test(test_unknown_and_truncated_input_is_not_trusted),
        cmocka_unit_test(test_strict_start_check_accepts_containers_and_rejects_the_rest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
