/*
 * test_file_time.c — kth_stream_seek_time on single files (src/stream/file_time.c): a CBR MP3
 * with a LAME Info frame (sample.mp3), a VBR MP3 with a Xing TOC (vbr.mp3), FLAC with a
 * SEEKTABLE (tone.flac), WAV files built here (with a chunk of odd size before the data, and a
 * streamed one whose data size is unknown), a VBRI table built here, and files that give no way.
 * Each answer is checked against the file itself: the frame boundaries found by walking every
 * MP3 frame header, the FLAC frame sync at the offset, WAV arithmetic. Then through kth_stream:
 * a local path and the same file over loopback HTTP (the lookup waits for the header bytes).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kithara/kithara.h>

#include "stream/file_time.h"
#include "test_support.h"
#include "testserver.h"

#define FIXTURES KTH_SOURCE_DIR "/tests/fixtures/"

typedef struct blob {
    uint8_t *data;
    size_t len;
    bool fail; /* the reader reports an I/O failure */
} blob;

static blob load(const char *name)
{
    char path[1024];
    snprintf(path, sizeof path, "%s%s", FIXTURES, name);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    blob b = {0};
    fseek(f, 0, SEEK_END);
    b.len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    b.data = malloc(b.len);
    assert_non_null(b.data);
    assert_int_equal(fread(b.data, 1, b.len, f), b.len);
    fclose(f);
    return b;
}

static kth_status blob_read(void *ctx, uint64_t off, uint8_t *buf, size_t n, size_t *got)
{
    blob *b = ctx;
    if (b->fail)
        return KTH_ERR_IO;
    *got = off >= b->len ? 0 : (b->len - off < n ? b->len - off : n);
    memcpy(buf, b->data + (off < b->len ? off : 0), *got);
    return KTH_OK;
}

static kth_status anchor_of(blob *b, double t, kth_seek_anchor *a)
{
    file_time_source src = {.read = blob_read, .ctx = b, .length = b->len};
    memset(a, 0, sizeof *a);
    return file_time_anchor(&src, t, a);
}

/* ---- MP3: every frame start, found by walking the headers (layer III, MPEG-1 or 2) ---- */

typedef struct frames {
    size_t starts[4096];
    size_t count;
    double frame_s;
} frames;

static size_t frame_bytes(const uint8_t *p, double *frame_s)
{
    static const int br1[16] = {0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320};
    static const int br2[16] = {0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160};
    static const int rates[3] = {44100, 48000, 32000};
    if (p[0] != 0xff || (p[1] & 0xe0) != 0xe0 || ((p[1] >> 1) & 3) != 1)
        return 0;
    int ver = (p[1] >> 3) & 3;
    int rate = rates[(p[2] >> 2) & 3] >> (ver == 3 ? 0 : ver == 2 ? 1 : 2);
    int spf = ver == 3 ? 1152 : 576;
    int br = 1000 * (ver == 3 ? br1 : br2)[p[2] >> 4];
    *frame_s = (double)spf / rate;
    return (size_t)(spf / 8 * br / rate + ((p[2] >> 1) & 1));
}

/* The frames from the first audio frame on (a Xing or Info frame is not audio). */
static void walk_frames(const blob *b, frames *f)
{
    size_t pos = 10 + ((size_t)b->data[6] << 21 | (size_t)b->data[7] << 14 |
                       (size_t)b->data[8] << 7 | b->data[9]);
    size_t n = frame_bytes(b->data + pos, &f->frame_s);
    assert_true(n > 0);
    const uint8_t *tag = b->data + pos + 4 + (((b->data[pos + 3] >> 6) == 3) ? 17 : 32);
    if (!memcmp(tag, "Xing", 4) || !memcmp(tag, "Info", 4))
        pos += n;
    f->count = 0;
    while (pos + 4 <= b->len && (n = frame_bytes(b->data + pos, &f->frame_s)) > 0) {
        assert_true(f->count < 4096);
        f->starts[f->count++] = pos;
        pos += n;
    }
    assert_true(f->count > 100);
}

/* The index of the first frame starting at or after `offset`. */
static size_t frame_at_or_after(const frames *f, uint64_t offset)
{
    size_t i = 0;
    while (i < f->count && f->starts[i] < offset)
        i++;
    return i;
}

static void test_cbr_mp3_lands_within_a_frame(void **state)
{
    (void)state;
    blob b = load("sample.mp3");
    static frames f;
    walk_frames(&b, &f);
    double duration = (double)f.count * f.frame_s;
    const double times[] = {0.01, 0.5, 1.0, 2.5, 4.0, 6.3, 7.9};
    uint64_t last = 0;
    for (size_t i = 0; i < sizeof times / sizeof *times; i++) {
        double t = times[i];
        kth_seek_anchor a;
        assert_int_equal(anchor_of(&b, t, &a), KTH_OK);
        size_t m = frame_at_or_after(&f, a.offset);
        printf("t %.2f: offset %llu, frame %llu at %.4f s; next frame boundary is frame %zu\n", t,
               (unsigned long long)a.offset, (unsigned long long)a.segment_index, a.segment_start,
               m);
        assert_true(a.segment_start <= t && t - a.segment_start < f.frame_s);
        assert_true(a.offset >= f.starts[0] && a.offset > last);
        /* The decoder resyncs at the next frame boundary: the frame the anchor names, or the
         * one after it. */
        assert_true(m == a.segment_index || m == a.segment_index + 1);
        last = a.offset;
    }
    kth_seek_anchor a;
    assert_int_equal(anchor_of(&b, 1000, &a), KTH_OK); /* past the end: clamped */
    assert_true(a.offset <= b.len && a.segment_start <= duration + f.frame_s);
    assert_true(a.offset + 2 * 314 > b.len);
    assert_int_equal(anchor_of(&b, 0, &a), KTH_OK);
    assert_int_equal(a.offset, 0);
    free(b.data);
}

static void test_vbr_mp3_follows_its_xing_toc(void **state)
{
    (void)state;
    blob b = load("vbr.mp3");
    static frames f;
    walk_frames(&b, &f);
    double duration = (double)f.count * f.frame_s;
    uint64_t last = 0;
    double worst = 0;
    for (double t = 0.25; t < duration; t += 0.5) {
        kth_seek_anchor a;
        assert_int_equal(anchor_of(&b, t, &a), KTH_OK);
        assert_true(a.offset > last && a.offset < b.len);
        size_t m = frame_at_or_after(&f, a.offset);
        double err = fabs((double)m * f.frame_s - t);
        worst = err > worst ? err : worst;
        last = a.offset;
    }
    /* The TOC has 100 points: the estimate is good to about 1 % of the duration. */
    printf("vbr.mp3: %zu frames, %.3f s; the TOC's worst error %.3f s\n", f.count, duration, worst);
    assert_true(worst <= 0.02 * duration + f.frame_s);
    free(b.data);
}

static void test_flac_uses_its_seektable(void **state)
{
    (void)state;
    blob b = load("tone.flac");
    kth_seek_anchor a;
    assert_int_equal(anchor_of(&b, 2.5, &a), KTH_OK);
    /* flac -S 1s put points at 0, 20480, 40960, 65536, ... samples of 22.05 kHz. */
    assert_int_equal(a.segment_index, 2);
    assert_true(fabs(a.segment_start - 40960.0 / 22050) < 1e-9);
    assert_true(fabs(a.segment_end - 65536.0 / 22050) < 1e-9);
    assert_true(a.offset + 2 < b.len);
    assert_int_equal(b.data[a.offset], 0xff); /* a frame header's sync code */
    assert_int_equal(b.data[a.offset + 1] & 0xfe, 0xf8);
    assert_int_equal(anchor_of(&b, 0.2, &a), KTH_OK); /* the first point: the first frame */
    assert_int_equal(a.segment_index, 0);
    assert_int_equal(b.data[a.offset], 0xff);
    assert_int_equal(anchor_of(&b, 500, &a), KTH_OK); /* clamped to the last point */
    assert_true(a.segment_start < 8 && a.segment_end <= 8.0001);
    assert_int_equal(b.data[a.offset], 0xff);
    /* The same stream without its SEEKTABLE (the block's type changed to PADDING) gives no way
     * to place a time. */
    size_t table = 4 + 4 + 34;
    assert_int_equal(b.data[table] & 0x7f, 3);
    b.data[table] = (uint8_t)((b.data[table] & 0x80) | 1);
    assert_int_equal(anchor_of(&b, 2.5, &a), KTH_ERR_UNSUPPORTED);
    free(b.data);
}

static void put_le(uint8_t *p, uint32_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* A WAV file: fmt, an odd-sized LIST chunk (padded), data of `count` 16-bit stereo frames at
 * 22.05 kHz; data_size_field overrides the data chunk's size field when not 0. */
static blob make_wav(uint32_t count, uint32_t data_size_field, size_t *data_at)
{
    blob b = {.len = 12 + 24 + 8 + 5 + 1 + 8 + (size_t)count * 4};
    b.data = calloc(1, b.len);
    assert_non_null(b.data);
    uint8_t *p = b.data;
    memcpy(p, "RIFF", 4), put_le(p + 4, (uint32_t)b.len - 8, 4), memcpy(p + 8, "WAVE", 4);
    p += 12;
    memcpy(p, "fmt ", 4), put_le(p + 4, 16, 4), put_le(p + 8, 1, 2), put_le(p + 10, 2, 2);
    put_le(p + 12, 22050, 4), put_le(p + 16, 22050 * 4, 4), put_le(p + 20, 4, 2);
    put_le(p + 22, 16, 2);
    p += 24;
    memcpy(p, "LIST", 4), put_le(p + 4, 5, 4), memcpy(p + 8, "INFOx", 5);
    p += 8 + 5 + 1;
    memcpy(p, "data", 4), put_le(p + 4, data_size_field ? data_size_field : count * 4, 4);
    *data_at = (size_t)(p + 8 - b.data);
    return b;
}

static void test_wav_lands_on_the_sample(void **state)
{
    (void)state;
    size_t data;
    blob b = make_wav(22050 * 3, 0, &data);
    kth_seek_anchor a;
    assert_int_equal(anchor_of(&b, 1.0, &a), KTH_OK);
    assert_int_equal(a.offset, data + 22050 * 4);
    assert_true(a.segment_start == 1.0);
    assert_int_equal(anchor_of(&b, 2.00002, &a), KTH_OK); /* 44100.44 frames: frame 44100 */
    assert_int_equal(a.offset, data + 44100 * 4);
    assert_int_equal(anchor_of(&b, 9, &a), KTH_OK); /* clamped to the end of the data */
    assert_int_equal(a.offset, b.len);
    free(b.data);
    /* A streamed WAV says its data size is unknown: the file's length tells. */
    b = make_wav(22050, UINT32_MAX, &data);
    assert_int_equal(anchor_of(&b, 0.5, &a), KTH_OK);
    assert_int_equal(a.offset, data + 11025 * 4);
    assert_int_equal(anchor_of(&b, 5, &a), KTH_OK);
    assert_int_equal(a.offset, b.len);
    /* A header cut short is no WAV to place a time in. */
    b.len = data - 4;
    assert_int_equal(anchor_of(&b, 0.5, &a), KTH_ERR_UNSUPPORTED);
    free(b.data);
}

static void test_vbri_table_places_the_entry(void **state)
{
    (void)state;
    /* MPEG-1 layer III, 128 kbit/s, 44.1 kHz, stereo: 417-byte frames. The VBRI tag at 4 + 32
     * bytes: 100 frames in 10 entries of 10 frames, each entry's size 2 bytes, scale 1. */
    blob b = {.len = 417 * 101};
    b.data = calloc(1, b.len);
    assert_non_null(b.data);
    for (size_t i = 0; i < 101; i++)
        memcpy(b.data + 417 * i, "\xff\xfb\x90\x00", 4);
    uint8_t *v = b.data + 36;
    memcpy(v, "VBRI", 4);
    v[5] = 1;                    /* version */
    v[17] = 100;                 /* frames */
    v[19] = 10, v[21] = 1;       /* entries, scale */
    v[23] = 2, v[25] = 10;       /* entry size, frames per entry */
    for (int i = 0; i < 10; i++) /* each entry: 10 frames of 417 bytes */
        v[26 + 2 * i] = 4170 >> 8, v[27 + 2 * i] = 4170 & 0xff;
    kth_seek_anchor a;
    double entry_s = 10 * 1152 / 44100.0;
    assert_int_equal(anchor_of(&b, 2.5 * entry_s, &a), KTH_OK);
    assert_int_equal(a.segment_index, 2);
    assert_int_equal(a.offset, 417 + 2 * 4170);
    assert_true(fabs(a.segment_start - 2 * entry_s) < 1e-9);
    assert_true(fabs(a.segment_end - 3 * entry_s) < 1e-9);
    free(b.data);
}

static void test_files_without_a_timeline_say_so(void **state)
{
    (void)state;
    uint8_t junk[8192];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (uint8_t)(i * 7 + 1) & 0x7f; /* no 0xff, so no frame sync */
    blob b = {junk, sizeof junk, false};
    kth_seek_anchor a;
    assert_int_equal(anchor_of(&b, 1.0, &a), KTH_ERR_UNSUPPORTED);
    assert_int_equal(anchor_of(&b, NAN, &a), KTH_ERR_INVALID_ARG);
    b.fail = true;
    assert_int_equal(anchor_of(&b, 1.0, &a), KTH_ERR_IO);
}

/* ---- through kth_stream ---- */

static void check_stream_seek(kth_stream *s, const blob *b, double t)
{
    kth_seek_anchor a;
    assert_int_equal(kth_stream_seek_time(s, t, &a), KTH_OK);
    assert_int_equal(kth_stream_position(s), a.offset);
    assert_int_equal(a.variant, -1);
    assert_true(a.requested == t);
    uint8_t buf[256];
    int64_t n = kth_stream_read(s, buf, sizeof buf);
    assert_true(n > 0);
    assert_memory_equal(buf, b->data + a.offset, (size_t)n);
}

static void test_stream_seeks_a_local_file_by_time(void **state)
{
    (void)state;
    blob b = load("tone.flac");
    kth_stream *s;
    char err[512];
    assert_int_equal(kth_stream_open(FIXTURES "tone.flac", NULL, &s, err, sizeof err), KTH_OK);
    check_stream_seek(s, &b, 2.5);
    check_stream_seek(s, &b, 0.5);
    kth_stream_close(s);
    free(b.data);
}

static void test_stream_seeks_a_progressive_file_by_time(void **state)
{
    (void)state;
    kts_config c = {.doc_root = KTH_SOURCE_DIR "/tests/fixtures"};
    kts_server *srv;
    assert_int_equal(kts_start(&c, &srv), KTH_OK);
    char *dir = test_make_dir();
    kth_cache_options co;
    kth_cache_options_init(&co);
    co.dir = dir;
    co.no_sync = true;
    kth_cache *cache;
    char err[512];
    assert_int_equal(kth_cache_open(&co, &cache, err, sizeof err), KTH_OK);
    kth_downloader *d;
    assert_int_equal(kth_downloader_new(NULL, &d, err, sizeof err), KTH_OK);
    kth_stream_options so;
    kth_stream_options_init(&so);
    so.cache = cache;
    so.downloader = d;
    so.read_timeout_ms = 20000;
    char url[512];
    kts_url(srv, "/sample.mp3", url, sizeof url);
    blob b = load("sample.mp3");
    kth_stream *s;
    /* Cold: the lookup waits for the header's bytes, then the reader jumps. */
    assert_int_equal(kth_stream_open(url, &so, &s, err, sizeof err), KTH_OK);
    check_stream_seek(s, &b, 6.0);
    check_stream_seek(s, &b, 1.5);
    kth_stream_close(s);
    kth_downloader_unref(d);
    kth_cache_unref(cache);
    kts_stop(srv);
    test_remove_tree(dir);
    free(dir);
    free(b.data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cbr_mp3_lands_within_a_frame),
        cmocka_unit_test(test_vbr_mp3_follows_its_xing_toc),
        cmocka_unit_test(test_flac_uses_its_seektable),
        cmocka_unit_test(test_wav_lands_on_the_sample),
        cmocka_unit_test(test_vbri_table_places_the_entry),
        cmocka_unit_test(test_files_without_a_timeline_say_so),
        cmocka_unit_test(test_stream_seeks_a_local_file_by_time),
        cmocka_unit_test(test_stream_seeks_a_progressive_file_by_time),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
