/*
 * file_time.c — a time to a byte offset in one media file, from its own headers (file_time.h):
 * WAV's sample frames, FLAC's SEEKTABLE, MP3's VBRI table, Xing TOC or constant bit rate.
 */
#include "stream/file_time.h"
#include "platform/mem.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define HEAD_BYTES      4096
#define MAX_ID3_TAGS    4
#define MAX_CHUNKS      64
#define MAX_FLAC_BLOCKS 128
/* Bounds on tables read from the file: 65,536 FLAC seek points, 65,535 VBRI entries. */
#define MAX_TABLE_BYTES (65536u * 18u)

static uint32_t be16(const uint8_t *p)
{
    return (uint32_t)p[0] << 8 | p[1];
}

static uint32_t be24(const uint8_t *p)
{
    return (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t be64(const uint8_t *p)
{
    return (uint64_t)be32(p) << 32 | be32(p + 4);
}

static uint32_t le16(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8;
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Reads exactly n bytes; KTH_ERR_UNSUPPORTED when the file ends first (a truncated header). */
static kth_status read_exact(const file_time_source *src, uint64_t off, uint8_t *buf, size_t n)
{
    size_t got = 0;
    kth_status st = src->read(src->ctx, off, buf, n, &got);
    if (st != KTH_OK)
        return st;
    return got == n ? KTH_OK : KTH_ERR_UNSUPPORTED;
}

static void set_anchor(kth_seek_anchor *a, uint64_t offset, double start, double end,
                       uint64_t index)
{
    a->offset = offset;
    a->segment_start = start;
    a->segment_end = end > start ? end : start;
    a->segment_index = index;
}

/* ---- WAV ---- */

typedef struct wav_format {
    uint32_t rate, block_align;
    bool have_fmt;
} wav_format;

/* The data chunk's offset and size, walking the chunks after "RIFF....WAVE". */
static kth_status wav_data(const file_time_source *src, uint64_t start, wav_format *fmt,
                           uint64_t *data, uint64_t *size)
{
    uint64_t pos = start + 12;
    for (int i = 0; i < MAX_CHUNKS; i++) {
        uint8_t h[16];
        kth_status st = read_exact(src, pos, h, 8);
        if (st != KTH_OK)
            return st;
        uint32_t len = le32(h + 4);
        if (memcmp(h, "fmt ", 4) == 0 && len >= 16) {
            if ((st = read_exact(src, pos + 8, h, 16)) != KTH_OK)
                return st;
            fmt->rate = le32(h + 4);
            fmt->block_align = le16(h + 12);
            fmt->have_fmt = fmt->rate > 0 && fmt->block_align > 0;
        } else if (memcmp(h, "data", 4) == 0) {
            if (!fmt->have_fmt)
                return KTH_ERR_UNSUPPORTED;
            *data = pos + 8;
            *size = len;
            /* A streamed WAV may say 0 or 0xffffffff: the data then runs to the file's end. */
            if ((len == 0 || len == UINT32_MAX) && src->length > *data)
                *size = src->length - *data;
            return KTH_OK;
        }
        pos += 8 + (uint64_t)len + (len & 1);
    }
    return KTH_ERR_UNSUPPORTED;
}

static kth_status wav_anchor(const file_time_source *src, uint64_t start, double t,
                             kth_seek_anchor *a)
{
    wav_format fmt = {0};
    uint64_t data = 0, size = 0;
    kth_status st = wav_data(src, start, &fmt, &data, &size);
    if (st != KTH_OK)
        return st;
    uint64_t frames = size / fmt.block_align;
    double want = floor(t * fmt.rate);
    uint64_t frame = want >= (double)frames ? frames : (uint64_t)want;
    set_anchor(a, data + frame * fmt.block_align, (double)frame / fmt.rate,
               (double)(frame < frames ? frame + 1 : frame) / fmt.rate, frame);
    return KTH_OK;
}

/* ---- FLAC ---- */

typedef struct flac_info {
    uint32_t rate;
    uint64_t total;     /* samples; 0 unknown */
    uint64_t table_at;  /* the SEEKTABLE's body, 0 when there is none */
    uint32_t table_len; /* its length in bytes */
    uint64_t frames_at; /* the first audio frame */
} flac_info;

static kth_status flac_blocks(const file_time_source *src, uint64_t start, flac_info *fi)
{
    uint64_t pos = start + 4;
    for (int i = 0; i < MAX_FLAC_BLOCKS; i++) {
        uint8_t h[4], si[34];
        kth_status st = read_exact(src, pos, h, 4);
        if (st != KTH_OK)
            return st;
        uint32_t type = h[0] & 0x7f, len = be24(h + 1);
        if (type == 0 && len >= 34) {
            if ((st = read_exact(src, pos + 4, si, 34)) != KTH_OK)
                return st;
            fi->rate = (uint32_t)si[10] << 12 | (uint32_t)si[11] << 4 | si[12] >> 4;
            fi->total = (uint64_t)(si[13] & 0x0f) << 32 | be32(si + 14);
        } else if (type == 3 && len >= 18 && len <= MAX_TABLE_BYTES) {
            fi->table_at = pos + 4;
            fi->table_len = len - len % 18;
        }
        pos += 4 + (uint64_t)len;
        if (h[0] & 0x80) {
            fi->frames_at = pos;
            return fi->rate > 0 ? KTH_OK : KTH_ERR_UNSUPPORTED;
        }
    }
    return KTH_ERR_UNSUPPORTED;
}

static kth_status flac_anchor(const file_time_source *src, uint64_t start, double t,
                              kth_seek_anchor *a)
{
    flac_info fi = {0};
    kth_status st = flac_blocks(src, start, &fi);
    if (st != KTH_OK)
        return st;
    if (!fi.table_at)
        return KTH_ERR_UNSUPPORTED;
    uint8_t *table = platform_malloc(fi.table_len);
    if (!table)
        return KTH_ERR_NO_MEMORY;
    if ((st = read_exact(src, fi.table_at, table, fi.table_len)) != KTH_OK) {
        platform_free(table);
        return st;
    }
    double want = floor(t * fi.rate);
    uint64_t target = fi.total && want >= (double)fi.total ? fi.total : (uint64_t)want;
    /* Points ascend by sample; placeholders (all ones) come last. */
    size_t n = fi.table_len / 18, best = n;
    for (size_t i = 0; i < n; i++) {
        uint64_t sample = be64(table + 18 * i);
        if (sample == UINT64_MAX || sample > target)
            break;
        best = i;
    }
    uint64_t end_sample = fi.total;
    if (best + 1 < n && be64(table + 18 * (best + 1)) != UINT64_MAX)
        end_sample = be64(table + 18 * (best + 1));
    if (best == n) /* before the first point: the first frame (sample 0) */
        set_anchor(a, fi.frames_at, 0, (double)end_sample / fi.rate, 0);
    else
        set_anchor(a, fi.frames_at + be64(table + 18 * best + 8),
                   (double)be64(table + 18 * best) / fi.rate, (double)end_sample / fi.rate, best);
    platform_free(table);
    return KTH_OK;
}

/* ---- MPEG audio ---- */

typedef struct mpa_frame {
    uint32_t rate, spf, bytes, bitrate;
    int version; /* 1: MPEG-1; 2: MPEG-2 or 2.5 */
    bool mono;
} mpa_frame;

/* Parses a layer II or III frame header at p. */
static bool mpa_header(const uint8_t *p, mpa_frame *f)
{
    static const uint16_t br1_l2[16] = {0,   32,  48,  56,  64,  80,  96,  112,
                                        128, 160, 192, 224, 256, 320, 384, 0};
    static const uint16_t br1_l3[16] = {0,   32,  40,  48,  56,  64,  80,  96,
                                        112, 128, 160, 192, 224, 256, 320, 0};
    static const uint16_t br2[16] = {0,  8,  16, 24,  32,  40,  48,  56,
                                     64, 80, 96, 112, 128, 144, 160, 0};
    static const uint32_t rates[3] = {44100, 48000, 32000};
    if (p[0] != 0xff || (p[1] & 0xe0) != 0xe0)
        return false;
    int ver = (p[1] >> 3) & 3, layer = (p[1] >> 1) & 3;
    int bri = p[2] >> 4, sri = (p[2] >> 2) & 3;
    if (ver == 1 || (layer != 1 && layer != 2) || bri == 0 || bri == 15 || sri == 3)
        return false;
    f->version = ver == 3 ? 1 : 2;
    f->rate = rates[sri] >> (ver == 3 ? 0 : ver == 2 ? 1 : 2);
    bool l3 = layer == 1;
    f->bitrate = 1000u * (f->version == 1 ? (l3 ? br1_l3 : br1_l2)[bri] : br2[bri]);
    f->spf = f->version == 2 && l3 ? 576 : 1152;
    f->bytes = f->spf / 8 * f->bitrate / f->rate + ((p[2] >> 1) & 1);
    f->mono = (p[3] >> 6) == 3;
    return f->bytes > 4;
}

/* The first frame in head whose successor also starts a frame (junk before it is skipped). */
static bool mpa_first(const uint8_t *head, size_t n, size_t *at, mpa_frame *f)
{
    for (size_t i = 0; i + 4 <= n; i++) {
        mpa_frame g;
        if (!mpa_header(head + i, f))
            continue;
        size_t next = i + f->bytes;
        if (next + 4 > n || (mpa_header(head + next, &g) && g.rate == f->rate)) {
            *at = i;
            return true;
        }
    }
    return false;
}

/* The VBRI table: entry i covers `per` frames and holds its size in bytes. */
static kth_status mpa_vbri(const file_time_source *src, uint64_t frame_at, const uint8_t *v,
                           const mpa_frame *f, double t, kth_seek_anchor *a)
{
    uint32_t frames = be32(v + 14), entries = be16(v + 18), scale = be16(v + 20);
    uint32_t size = be16(v + 22), per = be16(v + 24);
    if (entries == 0 || per == 0 || size == 0 || size > 4 || frames == 0)
        return KTH_ERR_UNSUPPORTED;
    uint8_t *table = platform_malloc((size_t)entries * size);
    if (!table)
        return KTH_ERR_NO_MEMORY;
    kth_status st = read_exact(src, frame_at + 4 + 32 + 26, table, (size_t)entries * size);
    if (st == KTH_OK) {
        double entry_s = (double)per * f->spf / f->rate;
        double duration = (double)frames * f->spf / f->rate;
        uint32_t k = t >= duration ? entries : (uint32_t)(t / entry_s);
        k = k > entries ? entries : k;
        uint64_t off = frame_at + f->bytes; /* the tag's own frame holds no audio */
        for (uint32_t i = 0; i < k; i++) {
            uint64_t e = 0;
            for (uint32_t b = 0; b < size; b++)
                e = e << 8 | table[(size_t)i * size + b];
            off += e * (scale ? scale : 1);
        }
        double at = k * entry_s < duration ? k * entry_s : duration;
        double end = (k + 1) * entry_s < duration ? (k + 1) * entry_s : duration;
        set_anchor(a, off, at, end, k);
    }
    platform_free(table);
    return st;
}

/* The Xing TOC: 100 points, point i the byte position (in 256ths) of i % of the duration. */
static kth_status mpa_xing(const file_time_source *src, uint64_t first, const uint8_t *x,
                           size_t avail, const mpa_frame *f, double t, kth_seek_anchor *a)
{
    if (avail < 8 + 8 + 100) /* the tag, its frame and byte counts, its TOC */
        return KTH_ERR_UNSUPPORTED;
    uint32_t flags = be32(x + 4);
    size_t at = 8;
    uint32_t frames = 0, bytes = 0;
    if (flags & 1)
        frames = be32(x + at), at += 4;
    if (flags & 2)
        bytes = be32(x + at), at += 4;
    if (!(flags & 1) || !(flags & 4) || frames == 0 || at + 100 > avail)
        return KTH_ERR_UNSUPPORTED;
    const uint8_t *toc = x + at;
    uint64_t audio = first + f->bytes;
    if (bytes == 0 && src->length > audio)
        bytes = (uint32_t)(src->length - audio);
    if (bytes == 0)
        return KTH_ERR_UNSUPPORTED;
    double duration = (double)frames * f->spf / f->rate;
    double pct = t >= duration ? 100 : t / duration * 100;
    int i = pct >= 100 ? 99 : (int)pct;
    double lo = toc[i], hi = i < 99 ? toc[i + 1] : 256;
    double pos = (lo + (hi - lo) * (pct - i)) / 256.0 * bytes;
    double frame_s = (double)f->spf / f->rate;
    set_anchor(a, first + (uint64_t)pos, t < duration ? t : duration,
               t + frame_s < duration ? t + frame_s : duration, (uint64_t)(t / frame_s));
    return KTH_OK;
}

/* Constant bit rate: frame k starts near audio + k × (the mean frame size). */
static void mpa_cbr(const file_time_source *src, uint64_t audio, const mpa_frame *f, double t,
                    kth_seek_anchor *a)
{
    double mean = (double)f->spf / 8 * f->bitrate / f->rate;
    double frame_s = (double)f->spf / f->rate;
    double k = floor(t / frame_s);
    if (src->length > audio) {
        double frames = floor((double)(src->length - audio) / mean);
        k = k > frames ? frames : k;
    }
    set_anchor(a, audio + (uint64_t)floor(k * mean), k * frame_s, (k + 1) * frame_s, (uint64_t)k);
}

static kth_status mpa_anchor(const file_time_source *src, uint64_t start, const uint8_t *head,
                             size_t n, double t, kth_seek_anchor *a)
{
    size_t i;
    mpa_frame f;
    if (!mpa_first(head, n, &i, &f))
        return KTH_ERR_UNSUPPORTED;
    uint64_t first = start + i;
    const uint8_t *p = head + i;
    size_t side = f.version == 1 ? (f.mono ? 17 : 32) : (f.mono ? 9 : 17);
    size_t avail = n - i;
    if (avail >= 4 + side + 8 && (memcmp(p + 4 + side, "Xing", 4) == 0))
        return mpa_xing(src, first, p + 4 + side, avail - 4 - side, &f, t, a);
    if (avail >= 4 + 32 + 26 && memcmp(p + 4 + 32, "VBRI", 4) == 0)
        return mpa_vbri(src, first, p + 4 + 32, &f, t, a);
    /* A LAME "Info" frame says constant bit rate and holds no audio itself. */
    bool info = avail >= 4 + side + 4 && memcmp(p + 4 + side, "Info", 4) == 0;
    mpa_cbr(src, first + (info ? f.bytes : 0), &f, t, a);
    return KTH_OK;
}

/* ---- the entry point ---- */

/* Skips ID3v2 tags at the start: where the media begins. */
static kth_status skip_id3(const file_time_source *src, uint64_t *start)
{
    for (int i = 0; i < MAX_ID3_TAGS; i++) {
        uint8_t h[10];
        size_t got = 0;
        kth_status st = src->read(src->ctx, *start, h, sizeof h, &got);
        if (st != KTH_OK)
            return st;
        if (got < sizeof h || memcmp(h, "ID3", 3) != 0 || ((h[6] | h[7] | h[8] | h[9]) & 0x80))
            return KTH_OK;
        uint64_t size = (uint64_t)h[6] << 21 | (uint64_t)h[7] << 14 | (uint64_t)h[8] << 7 | h[9];
        *start += 10 + size + ((h[5] & 0x10) ? 10 : 0);
    }
    return KTH_OK;
}

kth_status file_time_anchor(const file_time_source *src, double seconds, kth_seek_anchor *a)
{
    if (!src || !a || seconds != seconds)
        return KTH_ERR_INVALID_ARG;
    if (seconds <= 0) {
        set_anchor(a, 0, 0, 0, 0);
        return KTH_OK;
    }
    uint64_t start = 0;
    kth_status st = skip_id3(src, &start);
    if (st != KTH_OK)
        return st;
    uint8_t *head = platform_malloc(HEAD_BYTES);
    if (!head)
        return KTH_ERR_NO_MEMORY;
    size_t n = 0;
    st = src->read(src->ctx, start, head, HEAD_BYTES, &n);
    if (st == KTH_OK) {
        if (n >= 12 && memcmp(head, "RIFF", 4) == 0 && memcmp(head + 8, "WAVE", 4) == 0)
            st = wav_anchor(src, start, seconds, a);
        else if (n >= 4 && memcmp(head, "fLaC", 4) == 0)
            st = flac_anchor(src, start, seconds, a);
        else
            st = mpa_anchor(src, start, head, n, seconds, a);
    }
    platform_free(head);
    return st;
}
