/*
 * media.c — codec and container identification: RFC 6381 identifiers, file extensions,
 * Content-Types and magic numbers, plus the header fields a player wants to show.
 *
 * Everything here reads untrusted bytes: every read is bounds-checked against `len`, and a
 * header that does not make sense is treated as "not this format", never trusted.
 *
 * Two ways of looking at first bytes: kth_media_probe is lenient (a file may have junk before
 * its first frame), media_start_plausible is strict (a segment must begin with its container).
 */
#include <kithara/media.h>

#include "stream/media_start.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *kth_codec_name(kth_codec codec)
{
    switch (codec) {
    case KTH_CODEC_AAC_LC:
        return "AAC-LC";
    case KTH_CODEC_HE_AAC:
        return "HE-AAC";
    case KTH_CODEC_HE_AAC_V2:
        return "HE-AACv2";
    case KTH_CODEC_MP3:
        return "MP3";
    case KTH_CODEC_FLAC:
        return "FLAC";
    case KTH_CODEC_ALAC:
        return "ALAC";
    case KTH_CODEC_OPUS:
        return "Opus";
    case KTH_CODEC_VORBIS:
        return "Vorbis";
    case KTH_CODEC_AC3:
        return "AC-3";
    case KTH_CODEC_EAC3:
        return "E-AC-3";
    case KTH_CODEC_PCM:
        return "PCM";
    case KTH_CODEC_VIDEO:
        return "video";
    case KTH_CODEC_UNKNOWN:
        break;
    }
    return "unknown";
}

const char *kth_container_name(kth_container container)
{
    switch (container) {
    case KTH_CONTAINER_FMP4:
        return "fMP4";
    case KTH_CONTAINER_MPEG_TS:
        return "MPEG-TS";
    case KTH_CONTAINER_ADTS:
        return "ADTS";
    case KTH_CONTAINER_MPEG_AUDIO:
        return "MPEG-audio";
    case KTH_CONTAINER_FLAC:
        return "FLAC";
    case KTH_CONTAINER_WAV:
        return "WAV";
    case KTH_CONTAINER_OGG:
        return "Ogg";
    case KTH_CONTAINER_CAF:
        return "CAF";
    case KTH_CONTAINER_UNKNOWN:
        break;
    }
    return "unknown";
}

bool kth_codec_is_audio(kth_codec codec)
{
    return codec != KTH_CODEC_UNKNOWN && codec != KTH_CODEC_VIDEO;
}

/* ---- RFC 6381 ---- */

/* Parses an unsigned number in `base` that must span the whole of [s, end). */
static bool parse_whole(const char *s, const char *end, int base, unsigned long *out)
{
    if (s >= end || end - s > 8)
        return false;
    char tmp[9];
    memcpy(tmp, s, (size_t)(end - s));
    tmp[end - s] = '\0';
    char *stop;
    *out = strtoul(tmp, &stop, base);
    return *stop == '\0' && isxdigit((unsigned char)tmp[0]);
}

/* "mp4a.OO[.AOT]": OO is the hex MPEG-4 object type indication, AOT the decimal audio object
 * type (RFC 6381 §3.3). */
static kth_codec codec_from_mp4a(const char *rest, const char *end)
{
    if (rest >= end)
        return KTH_CODEC_AAC_LC; /* bare "mp4a": AAC is the overwhelmingly common meaning */
    const char *dot = memchr(rest, '.', (size_t)(end - rest));
    unsigned long oti;
    if (!parse_whole(rest, dot ? dot : end, 16, &oti))
        return KTH_CODEC_UNKNOWN;
    switch (oti) {
    case 0x40: {
        if (!dot)
            return KTH_CODEC_AAC_LC;
        unsigned long aot;
        if (!parse_whole(dot + 1, end, 10, &aot))
            return KTH_CODEC_UNKNOWN;
        switch (aot) {
        case 1: /* AAC main */
        case 2: /* AAC LC */
        case 4: /* AAC LTP */
            return KTH_CODEC_AAC_LC;
        case 5:
            return KTH_CODEC_HE_AAC;
        case 29:
            return KTH_CODEC_HE_AAC_V2;
        case 34:
            return KTH_CODEC_MP3;
        default:
            return KTH_CODEC_UNKNOWN;
        }
    }
    case 0x66: /* MPEG-2 AAC profiles */
    case 0x67:
    case 0x68:
        return KTH_CODEC_AAC_LC;
    case 0x69: /* MPEG-2 audio (layer 3 in practice) */
    case 0x6B: /* MPEG-1 audio */
        return KTH_CODEC_MP3;
    case 0xA5:
        return KTH_CODEC_AC3;
    case 0xA6:
        return KTH_CODEC_EAC3;
    case 0xAD:
        return KTH_CODEC_OPUS;
    default:
        return KTH_CODEC_UNKNOWN;
    }
}

struct fourcc_codec {
    const char *id;
    kth_codec codec;
};

static const struct fourcc_codec simple_ids[] = {
    {"flac", KTH_CODEC_FLAC},  {"opus", KTH_CODEC_OPUS},  {"vorbis", KTH_CODEC_VORBIS},
    {"ac-3", KTH_CODEC_AC3},   {"ec-3", KTH_CODEC_EAC3},  {"alac", KTH_CODEC_ALAC},
    {"mp3", KTH_CODEC_MP3},    {".mp3", KTH_CODEC_MP3},   {"lpcm", KTH_CODEC_PCM},
    {"ipcm", KTH_CODEC_PCM},   {"fpcm", KTH_CODEC_PCM},   {"avc1", KTH_CODEC_VIDEO},
    {"avc3", KTH_CODEC_VIDEO}, {"hvc1", KTH_CODEC_VIDEO}, {"hev1", KTH_CODEC_VIDEO},
    {"vp08", KTH_CODEC_VIDEO}, {"vp09", KTH_CODEC_VIDEO}, {"av01", KTH_CODEC_VIDEO},
    {"dvh1", KTH_CODEC_VIDEO}, {"dvhe", KTH_CODEC_VIDEO}, {"dva1", KTH_CODEC_VIDEO},
    {"dvav", KTH_CODEC_VIDEO}, {"mp4v", KTH_CODEC_VIDEO}, {"vvc1", KTH_CODEC_VIDEO},
    {"vvi1", KTH_CODEC_VIDEO},
};

static kth_codec codec_from_span(const char *s, const char *end)
{
    while (s < end && isspace((unsigned char)*s))
        s++;
    while (end > s && isspace((unsigned char)end[-1]))
        end--;
    if (s >= end)
        return KTH_CODEC_UNKNOWN;
    const char *dot = memchr(s, '.', (size_t)(end - s));
    size_t head = (size_t)((dot ? dot : end) - s);
    if (head == 4 && strncasecmp(s, "mp4a", 4) == 0)
        return codec_from_mp4a(dot ? dot + 1 : end, end);
    for (size_t i = 0; i < sizeof simple_ids / sizeof simple_ids[0]; i++) {
        size_t n = strlen(simple_ids[i].id);
        /* Whole identifier, or the sample-entry part before a profile suffix (avc1.64001f). */
        if ((n == (size_t)(end - s) || n == head) && strncasecmp(s, simple_ids[i].id, n) == 0)
            return simple_ids[i].codec;
    }
    return KTH_CODEC_UNKNOWN;
}

kth_codec kth_codec_from_rfc6381(const char *id)
{
    if (!id)
        return KTH_CODEC_UNKNOWN;
    return codec_from_span(id, id + strlen(id));
}

kth_status kth_codecs_parse(const char *list, kth_codec *out, size_t max, size_t *count)
{
    if (!list || !count || (!out && max))
        return KTH_ERR_INVALID_ARG;
    size_t n = 0;
    const char *s = list;
    for (;;) {
        const char *comma = strchr(s, ',');
        const char *end = comma ? comma : s + strlen(s);
        const char *t = s;
        while (t < end && isspace((unsigned char)*t))
            t++;
        if (t == end)
            return KTH_ERR_FORMAT;
        if (n < max)
            out[n] = codec_from_span(s, end);
        n++;
        if (!comma)
            break;
        s = comma + 1;
    }
    *count = n;
    return KTH_OK;
}

/* ---- extensions and content types ---- */

struct name_container {
    const char *name;
    kth_container container;
};

static const struct name_container extensions[] = {
    {"mp3", KTH_CONTAINER_MPEG_AUDIO}, {"mp2", KTH_CONTAINER_MPEG_AUDIO},
    {"aac", KTH_CONTAINER_ADTS},       {"adts", KTH_CONTAINER_ADTS},
    {"m4a", KTH_CONTAINER_FMP4},       {"mp4", KTH_CONTAINER_FMP4},
    {"m4s", KTH_CONTAINER_FMP4},       {"mp4a", KTH_CONTAINER_FMP4},
    {"cmfa", KTH_CONTAINER_FMP4},      {"m4b", KTH_CONTAINER_FMP4},
    {"ts", KTH_CONTAINER_MPEG_TS},     {"m2ts", KTH_CONTAINER_MPEG_TS},
    {"flac", KTH_CONTAINER_FLAC},      {"wav", KTH_CONTAINER_WAV},
    {"wave", KTH_CONTAINER_WAV},       {"ogg", KTH_CONTAINER_OGG},
    {"oga", KTH_CONTAINER_OGG},        {"opus", KTH_CONTAINER_OGG},
    {"caf", KTH_CONTAINER_CAF},
};

kth_container kth_container_from_extension(const char *path_or_url)
{
    if (!path_or_url)
        return KTH_CONTAINER_UNKNOWN;
    size_t len = strcspn(path_or_url, "?#");
    const char *end = path_or_url + len;
    const char *dot = NULL;
    for (const char *p = end; p > path_or_url; p--) {
        if (p[-1] == '/')
            break;
        if (p[-1] == '.') {
            dot = p;
            break;
        }
    }
    if (!dot)
        return KTH_CONTAINER_UNKNOWN;
    size_t n = (size_t)(end - dot);
    for (size_t i = 0; i < sizeof extensions / sizeof extensions[0]; i++) {
        if (strlen(extensions[i].name) == n && strncasecmp(dot, extensions[i].name, n) == 0)
            return extensions[i].container;
    }
    return KTH_CONTAINER_UNKNOWN;
}

static const struct name_container content_types[] = {
    {"audio/mpeg", KTH_CONTAINER_MPEG_AUDIO}, {"audio/mp3", KTH_CONTAINER_MPEG_AUDIO},
    {"audio/aac", KTH_CONTAINER_ADTS},        {"audio/aacp", KTH_CONTAINER_ADTS},
    {"audio/x-aac", KTH_CONTAINER_ADTS},      {"audio/mp4", KTH_CONTAINER_FMP4},
    {"video/mp4", KTH_CONTAINER_FMP4},        {"audio/x-m4a", KTH_CONTAINER_FMP4},
    {"video/mp2t", KTH_CONTAINER_MPEG_TS},    {"audio/flac", KTH_CONTAINER_FLAC},
    {"audio/x-flac", KTH_CONTAINER_FLAC},     {"audio/wav", KTH_CONTAINER_WAV},
    {"audio/x-wav", KTH_CONTAINER_WAV},       {"audio/wave", KTH_CONTAINER_WAV},
    {"audio/vnd.wave", KTH_CONTAINER_WAV},    {"audio/ogg", KTH_CONTAINER_OGG},
    {"application/ogg", KTH_CONTAINER_OGG},   {"audio/opus", KTH_CONTAINER_OGG},
    {"audio/x-caf", KTH_CONTAINER_CAF},
};

kth_container kth_container_from_content_type(const char *content_type)
{
    if (!content_type)
        return KTH_CONTAINER_UNKNOWN;
    while (isspace((unsigned char)*content_type))
        content_type++;
    size_t n = strcspn(content_type, "; \t");
    for (size_t i = 0; i < sizeof content_types / sizeof content_types[0]; i++) {
        if (strlen(content_types[i].name) == n &&
            strncasecmp(content_type, content_types[i].name, n) == 0)
            return content_types[i].container;
    }
    return KTH_CONTAINER_UNKNOWN;
}

/* ---- magic numbers and headers ---- */

static uint32_t be16(const uint8_t *p)
{
    return (uint32_t)p[0] << 8 | p[1];
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint32_t le16(const uint8_t *p)
{
    return (uint32_t)p[1] << 8 | p[0];
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

/* Length of an ID3v2 tag at p, or 0 when there is none. */
static size_t id3_length(const uint8_t *p, size_t len)
{
    if (len < 10 || memcmp(p, "ID3", 3) != 0 || p[3] == 0xFF || p[4] == 0xFF)
        return 0;
    if ((p[6] | p[7] | p[8] | p[9]) & 0x80)
        return 0; /* sizes are synch-safe: top bits must be clear */
    size_t size = (size_t)p[6] << 21 | (size_t)p[7] << 14 | (size_t)p[8] << 7 | p[9];
    return 10 + size + ((p[5] & 0x10) ? 10 : 0);
}

static const uint32_t adts_rates[16] = {96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050,
                                        16000, 12000, 11025, 8000,  7350,  0,     0,     0};

/* Frame length of an ADTS header at p, or 0 when it is not one. */
static size_t adts_frame(const uint8_t *p, size_t len, kth_media_info *info)
{
    if (len < 7 || p[0] != 0xFF || (p[1] & 0xF6) != 0xF0)
        return 0;
    unsigned sr_index = (p[2] >> 2) & 0x0F;
    size_t frame = ((size_t)(p[3] & 0x03) << 11) | ((size_t)p[4] << 3) | (p[5] >> 5);
    if (adts_rates[sr_index] == 0 || frame < 7)
        return 0;
    if (info) {
        unsigned profile = (p[2] >> 6) + 1; /* MPEG-4 audio object type */
        info->codec = KTH_CODEC_AAC_LC;
        (void)profile; /* main/LC/SSR/LTP all decode as AAC; SBR is implicit, not signalled */
        info->sample_rate = adts_rates[sr_index];
        unsigned ch = ((p[2] & 0x01) << 2) | (p[3] >> 6);
        if (ch > 0)
            info->channels = ch == 7 ? 8 : ch;
    }
    return frame;
}

static const uint16_t mpeg_bitrates[2][3][16] = {
    /* MPEG-1: layer I, II, III */
    {{0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448, 0},
     {0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384, 0},
     {0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 0}},
    /* MPEG-2 and 2.5: layer I, II, III */
    {{0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256, 0},
     {0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160, 0},
     {0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160, 0}},
};
static const uint32_t mpeg_rates[3] = {44100, 48000, 32000};

/* Frame length of an MPEG audio header at p, or 0 when it is not one. */
static size_t mpeg_frame(const uint8_t *p, size_t len, kth_media_info *info)
{
    if (len < 4 || p[0] != 0xFF || (p[1] & 0xE0) != 0xE0)
        return 0;
    unsigned version = (p[1] >> 3) & 3; /* 0: 2.5, 1: reserved, 2: MPEG-2, 3: MPEG-1 */
    unsigned layer = (p[1] >> 1) & 3;   /* 1: III, 2: II, 3: I, 0: reserved (ADTS) */
    unsigned br_index = p[2] >> 4;
    unsigned sr_index = (p[2] >> 2) & 3;
    unsigned padding = (p[2] >> 1) & 1;
    if (version == 1 || layer == 0 || br_index == 0 || br_index == 15 || sr_index == 3)
        return 0;
    unsigned li = 3 - layer; /* 0: I, 1: II, 2: III */
    uint32_t kbps = mpeg_bitrates[version == 3 ? 0 : 1][li][br_index];
    uint32_t rate = mpeg_rates[sr_index] >> (version == 3 ? 0 : version == 2 ? 1 : 2);
    size_t frame;
    if (li == 0)
        frame = (12 * kbps * 1000 / rate + padding) * 4;
    else if (li == 2 && version != 3)
        frame = 72 * kbps * 1000 / rate + padding;
    else
        frame = 144 * kbps * 1000 / rate + padding;
    if (info) {
        info->codec = li == 2 ? KTH_CODEC_MP3 : KTH_CODEC_UNKNOWN;
        info->sample_rate = rate;
        info->channels = ((p[3] >> 6) == 3) ? 1 : 2;
        info->bitrate = kbps * 1000;
    }
    return frame;
}

/* A frame stream starts at p when one frame parses and, if the buffer reaches that far, the
 * next one does too. */
static bool frames_at(const uint8_t *p, size_t len,
                      size_t (*frame)(const uint8_t *, size_t, kth_media_info *))
{
    size_t n = frame(p, len, NULL);
    if (n == 0)
        return false;
    if (n + 4 > len)
        return true; /* the second header lies beyond what we were given */
    return frame(p + n, len - n, NULL) != 0;
}

static bool is_mpeg_ts(const uint8_t *p, size_t len)
{
    if (len < 1 || p[0] != 0x47)
        return false;
    int checked = 0;
    for (size_t off = 188; off < len && checked < 4; off += 188, checked++) {
        if (p[off] != 0x47)
            return false;
    }
    return checked >= 1 || len < 188;
}

static bool is_iso_bmff(const uint8_t *p, size_t len)
{
    static const char *const boxes[] = {"ftyp", "styp", "moof", "moov",
                                        "sidx", "emsg", "prft", "free"};
    if (len < 8)
        return false;
    uint32_t size = be32(p);
    if (size != 1 && size < 8)
        return false;
    for (size_t i = 0; i < sizeof boxes / sizeof boxes[0]; i++) {
        if (memcmp(p + 4, boxes[i], 4) == 0)
            return true;
    }
    return false;
}

kth_container kth_container_detect(const uint8_t *bytes, size_t len)
{
    kth_media_info scratch = {0};
    if (!bytes)
        return KTH_CONTAINER_UNKNOWN;
    kth_media_probe(bytes, len, &scratch);
    return scratch.container;
}

static const uint8_t *find4(const uint8_t *p, size_t len, const char *tag)
{
    for (size_t i = 0; i + 4 <= len; i++) {
        if (memcmp(p + i, tag, 4) == 0)
            return p + i;
    }
    return NULL;
}

static void probe_bmff(const uint8_t *p, size_t len, kth_media_info *info)
{
    static const struct {
        const char *tag;
        kth_codec codec;
    } entries[] = {{"mp4a", KTH_CODEC_AAC_LC}, {"fLaC", KTH_CODEC_FLAC}, {"Opus", KTH_CODEC_OPUS},
                   {"ac-3", KTH_CODEC_AC3},    {"ec-3", KTH_CODEC_EAC3}, {"alac", KTH_CODEC_ALAC},
                   {".mp3", KTH_CODEC_MP3}};
    for (size_t i = 0; i < sizeof entries / sizeof entries[0]; i++) {
        const uint8_t *e = find4(p, len, entries[i].tag);
        /* An AudioSampleEntry: type, 6 reserved, data-ref index, 8 reserved, channels,
         * sample size, 4 more, then the rate as 16.16 fixed point. */
        if (!e || (size_t)(e - p) + 4 + 28 > len)
            continue;
        info->codec = entries[i].codec;
        uint32_t ch = be16(e + 4 + 16);
        uint32_t rate = be32(e + 4 + 24) >> 16;
        if (ch > 0 && ch <= 32)
            info->channels = ch;
        if (rate > 0)
            info->sample_rate = rate;
        const uint8_t *dfla =
            entries[i].codec == KTH_CODEC_FLAC ? find4(e, len - (size_t)(e - p), "dfLa") : NULL;
        /* dfLa: version and flags, then FLAC metadata blocks, STREAMINFO first (its rate is
         * exact where the sample entry's 16.16 field cannot hold rates above 65535). */
        if (dfla && (size_t)(dfla - p) + 8 + 8 + 18 <= len && (dfla[8] & 0x7F) == 0) {
            const uint8_t *si = dfla + 8 + 4;
            uint32_t r = (uint32_t)si[10] << 12 | (uint32_t)si[11] << 4 | si[12] >> 4;
            if (r > 0)
                info->sample_rate = r;
            info->channels = ((si[12] >> 1) & 0x07) + 1;
        }
        if (entries[i].codec == KTH_CODEC_AAC_LC) {
            /* esds: find the DecoderConfigDescriptor's object type, then the audio object
             * type in the first 5 bits of the AudioSpecificConfig. */
            const uint8_t *esds = find4(e, len - (size_t)(e - p), "esds");
            for (const uint8_t *q = esds; q && q + 16 < p + len; q++) {
                if (q[0] == 0x04) { /* DecoderConfigDescriptor tag */
                    const uint8_t *d = q + 1;
                    while (d < p + len && (*d & 0x80))
                        d++;
                    d++;
                    if (d + 14 >= p + len)
                        break;
                    if (d[0] == 0x69 || d[0] == 0x6B) {
                        info->codec = KTH_CODEC_MP3;
                    } else if (d[0] == 0x40 && d[13] == 0x05) {
                        const uint8_t *a = d + 14;
                        while (a < p + len && (*a & 0x80))
                            a++;
                        a++;
                        if (a < p + len) {
                            unsigned aot = a[0] >> 3;
                            info->codec = aot == 5    ? KTH_CODEC_HE_AAC
                                          : aot == 29 ? KTH_CODEC_HE_AAC_V2
                                                      : KTH_CODEC_AAC_LC;
                        }
                    }
                    break;
                }
            }
        }
        return;
    }
}

static void probe_wav(const uint8_t *p, size_t len, kth_media_info *info)
{
    size_t off = 12;
    while (off + 8 <= len) {
        uint32_t size = le32(p + off + 4);
        if (memcmp(p + off, "fmt ", 4) == 0 && off + 8 + 16 <= len) {
            const uint8_t *f = p + off + 8;
            uint32_t format = le16(f);
            if (format == 1 || format == 3 || format == 0xFFFE)
                info->codec = KTH_CODEC_PCM;
            info->channels = le16(f + 2);
            info->sample_rate = le32(f + 4);
            uint32_t byte_rate = le32(f + 8);
            if (byte_rate <= UINT32_MAX / 8)
                info->bitrate = byte_rate * 8;
            return;
        }
        if (size > len - off - 8)
            return;
        off += 8 + size + (size & 1);
    }
}

static void probe_ogg(const uint8_t *p, size_t len, kth_media_info *info)
{
    if (len < 28)
        return;
    size_t segments = p[26];
    size_t off = 27 + segments;
    if (off >= len)
        return;
    const uint8_t *pkt = p + off;
    size_t rest = len - off;
    if (rest >= 19 && memcmp(pkt, "OpusHead", 8) == 0) {
        info->codec = KTH_CODEC_OPUS;
        info->channels = pkt[9];
        info->sample_rate = 48000; /* Opus always decodes at 48 kHz */
    } else if (rest >= 24 && memcmp(pkt, "\x01vorbis", 7) == 0) {
        info->codec = KTH_CODEC_VORBIS;
        info->channels = pkt[11];
        info->sample_rate = le32(pkt + 12);
        uint32_t nominal = le32(pkt + 20);
        if (nominal > 0 && nominal < 0x7FFFFFFF)
            info->bitrate = nominal;
    } else if (rest >= 5 && memcmp(pkt,
                                   "\x7F"
                                   "FLAC",
                                   5) == 0) {
        info->codec = KTH_CODEC_FLAC;
    }
}

static void probe_flac(const uint8_t *p, size_t len, kth_media_info *info)
{
    info->codec = KTH_CODEC_FLAC;
    /* "fLaC", a metadata block header, then STREAMINFO: rate in 20 bits at byte 18. */
    if (len < 8 + 18 || (p[4] & 0x7F) != 0)
        return;
    const uint8_t *si = p + 8;
    info->sample_rate = (uint32_t)si[10] << 12 | (uint32_t)si[11] << 4 | si[12] >> 4;
    info->channels = ((si[12] >> 1) & 0x07) + 1;
}

static void probe_caf(const uint8_t *p, size_t len, kth_media_info *info)
{
    /* File header (8), chunk type and 64-bit size (12), then the 'desc' chunk. */
    if (len < 20 + 32 || memcmp(p + 8, "desc", 4) != 0)
        return;
    const uint8_t *d = p + 20;
    uint64_t bits = (uint64_t)be32(d) << 32 | be32(d + 4);
    double rate;
    memcpy(&rate, &bits, sizeof rate);
    if (rate > 0 && rate < 1e7)
        info->sample_rate = (uint32_t)rate;
    static const struct {
        const char *id;
        kth_codec codec;
    } formats[] = {{"lpcm", KTH_CODEC_PCM},    {"aac ", KTH_CODEC_AAC_LC},
                   {"alac", KTH_CODEC_ALAC},   {".mp3", KTH_CODEC_MP3},
                   {"opus", KTH_CODEC_OPUS},   {"flac", KTH_CODEC_FLAC},
                   {"ac-3", KTH_CODEC_AC3},    {"ec-3", KTH_CODEC_EAC3},
                   {"aach", KTH_CODEC_HE_AAC}, {"aacp", KTH_CODEC_HE_AAC_V2}};
    for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++) {
        if (memcmp(d + 8, formats[i].id, 4) == 0)
            info->codec = formats[i].codec;
    }
    uint32_t ch = be32(d + 24);
    if (ch > 0 && ch <= 64)
        info->channels = ch;
}

/* The audio codec of a PMT stream type, or UNKNOWN for anything else. */
static kth_codec ts_stream_codec(uint8_t type)
{
    switch (type) {
    case 0x0F:
    case 0x11:
        return KTH_CODEC_AAC_LC;
    case 0x03:
    case 0x04:
        return KTH_CODEC_MP3;
    case 0x81:
        return KTH_CODEC_AC3;
    case 0x87:
        return KTH_CODEC_EAC3;
    default:
        return KTH_CODEC_UNKNOWN;
    }
}

/* The PID of the first audio stream a PMT section lists (its codec into *codec), or -1. */
static int ts_pmt_audio(const uint8_t *pkt, size_t pos, size_t sec_end, kth_codec *codec)
{
    const uint8_t *sec = pkt + pos;
    size_t info_len = ((size_t)(sec[10] & 0x0F) << 8) | sec[11];
    for (size_t e = pos + 12 + info_len; e + 5 <= sec_end - 4;) {
        size_t es_info = ((size_t)(pkt[e + 3] & 0x0F) << 8) | pkt[e + 4];
        kth_codec c = ts_stream_codec(pkt[e]);
        if (c != KTH_CODEC_UNKNOWN) {
            *codec = c;
            return (int)(be16(pkt + e + 1) & 0x1FFF);
        }
        e += 5 + es_info;
    }
    return -1;
}

/* Reads the first audio frame header of a PES packet's payload (ADTS or MPEG audio), which
 * gives the sample rate and channels the PMT does not. */
static void ts_pes_frame(const uint8_t *pkt, size_t pos, kth_media_info *info)
{
    if (pos + 9 > 188 || pkt[pos] != 0 || pkt[pos + 1] != 0 || pkt[pos + 2] != 1)
        return;
    size_t payload = pos + 9 + (size_t)pkt[pos + 8];
    if (payload + 7 > 188)
        return;
    const uint8_t *f = pkt + payload;
    size_t rest = 188 - payload;
    kth_media_info got = {0};
    if (adts_frame(f, rest, &got) == 0 && mpeg_frame(f, rest, &got) == 0)
        return;
    if (info->codec == KTH_CODEC_UNKNOWN || got.codec == KTH_CODEC_MP3)
        info->codec = got.codec;
    info->sample_rate = got.sample_rate;
    info->channels = got.channels;
}

/* Reads the PAT and PMT from the first packets to learn the audio stream type, then the first
 * PES packet of that stream for its frame header. */
static void probe_ts(const uint8_t *p, size_t len, kth_media_info *info)
{
    int pmt_pid = -1, audio_pid = -1;
    for (size_t off = 0; off + 188 <= len; off += 188) {
        const uint8_t *pkt = p + off;
        if (pkt[0] != 0x47 || !(pkt[1] & 0x40)) /* need payload_unit_start */
            continue;
        int pid = (int)(((pkt[1] & 0x1F) << 8) | pkt[2]);
        size_t pos = 4;
        if (pkt[3] & 0x20)
            pos += 1 + (size_t)pkt[4];
        if (pos >= 188)
            continue;
        if (pid == audio_pid) {
            ts_pes_frame(pkt, pos, info);
            return;
        }
        pos += 1 + (size_t)pkt[pos]; /* pointer field */
        if (pos + 12 >= 188)
            continue;
        const uint8_t *sec = pkt + pos;
        size_t sec_len = ((size_t)(sec[1] & 0x0F) << 8) | sec[2];
        size_t sec_end = pos + 3 + sec_len;
        if (sec_end > 188)
            sec_end = 188;
        if (pid == 0 && sec[0] == 0x00) {
            for (size_t e = pos + 8; e + 4 <= sec_end - 4; e += 4) {
                if (be16(pkt + e) != 0) {
                    pmt_pid = (int)(be16(pkt + e + 2) & 0x1FFF);
                    break;
                }
            }
        } else if (pid == pmt_pid && sec[0] == 0x02 && audio_pid < 0) {
            audio_pid = ts_pmt_audio(pkt, pos, sec_end, &info->codec);
            if (audio_pid < 0)
                return;
        }
    }
}

kth_status kth_media_probe(const uint8_t *bytes, size_t len, kth_media_info *info)
{
    if (!bytes || !info)
        return KTH_ERR_INVALID_ARG;
    const uint8_t *p = bytes;

    if (len >= 4 && memcmp(p, "fLaC", 4) == 0) {
        info->container = KTH_CONTAINER_FLAC;
        probe_flac(p, len, info);
        return KTH_OK;
    }
    if (len >= 12 && (memcmp(p, "RIFF", 4) == 0 || memcmp(p, "RF64", 4) == 0) &&
        memcmp(p + 8, "WAVE", 4) == 0) {
        info->container = KTH_CONTAINER_WAV;
        probe_wav(p, len, info);
        return KTH_OK;
    }
    if (len >= 4 && memcmp(p, "OggS", 4) == 0) {
        info->container = KTH_CONTAINER_OGG;
        probe_ogg(p, len, info);
        return KTH_OK;
    }
    if (len >= 4 && memcmp(p, "caff", 4) == 0) {
        info->container = KTH_CONTAINER_CAF;
        probe_caf(p, len, info);
        return KTH_OK;
    }
    if (is_iso_bmff(p, len)) {
        info->container = KTH_CONTAINER_FMP4;
        probe_bmff(p, len, info);
        return KTH_OK;
    }
    if (is_mpeg_ts(p, len) && len >= 188) {
        info->container = KTH_CONTAINER_MPEG_TS;
        probe_ts(p, len, info);
        return KTH_OK;
    }

    /* Raw frame streams, possibly behind an ID3v2 tag (MP3 files, HLS packed audio). Allow a
     * little junk before the first frame, as real files have. */
    size_t skip = id3_length(p, len);
    if (skip >= len)
        return KTH_ERR_FORMAT;
    size_t scan_end = len - skip < 4096 ? len - skip : 4096;
    for (size_t i = 0; i < scan_end; i++) {
        const uint8_t *f = p + skip + i;
        size_t rest = len - skip - i;
        if (f[0] != 0xFF)
            continue;
        if (frames_at(f, rest, adts_frame)) {
            info->container = KTH_CONTAINER_ADTS;
            adts_frame(f, rest, info);
            return KTH_OK;
        }
        if (frames_at(f, rest, mpeg_frame)) {
            info->container = KTH_CONTAINER_MPEG_AUDIO;
            mpeg_frame(f, rest, info);
            return KTH_OK;
        }
    }
    return KTH_ERR_FORMAT;
}

/* ---- strict start check (stream/media_start.h) ---- */

/* An ISO BMFF box of a sane size and a type a file or a fragment begins with. */
static bool bmff_box_at_start(const uint8_t *p, size_t len)
{
    static const char *const types[] = {"ftyp", "styp", "moov", "moof", "sidx",
                                        "emsg", "prft", "free", "skip"};
    if (len < 8)
        return false;
    uint32_t size = be32(p);
    if (size == 1) {
        if (len < 16 || ((uint64_t)be32(p + 8) << 32 | be32(p + 12)) < 16)
            return false;
    } else if (size < 8) {
        return false;
    }
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        if (memcmp(p + 4, types[i], 4) == 0)
            return true;
    }
    return false;
}

static bool ts_packets_at_start(const uint8_t *p, size_t len)
{
    if (len < 188)
        return false;
    for (size_t off = 0; off < len; off += 188) {
        if (p[off] != 0x47)
            return false;
    }
    return true;
}

static bool ac3_sync(const uint8_t *p, size_t len)
{
    return len >= 2 && p[0] == 0x0B && p[1] == 0x77;
}

static kth_container frames_at_start(const uint8_t *p, size_t len)
{
    if (frames_at(p, len, adts_frame))
        return KTH_CONTAINER_ADTS;
    if (frames_at(p, len, mpeg_frame))
        return KTH_CONTAINER_MPEG_AUDIO;
    return KTH_CONTAINER_UNKNOWN;
}

bool media_start_plausible(const uint8_t *p, size_t len, kth_container *container)
{
    kth_container c = KTH_CONTAINER_UNKNOWN;
    bool ok = false;
    size_t tag = p ? id3_length(p, len) : 0;
    if (!p || len == 0) {
        ok = false;
    } else if (len >= 4 && memcmp(p, "fLaC", 4) == 0) {
        c = KTH_CONTAINER_FLAC;
        ok = true;
    } else if (bmff_box_at_start(p, len)) {
        c = KTH_CONTAINER_FMP4;
        ok = true;
    } else if (p[0] == 0x47) {
        c = KTH_CONTAINER_MPEG_TS;
        ok = ts_packets_at_start(p, len);
    } else if (ac3_sync(p, len)) {
        ok = true;
    } else if (tag > 0) {
        /* Packed audio and MP3 files begin with a tag; what follows it must be audio too, when
         * there is enough of it to tell. */
        size_t rest = tag < len ? len - tag : 0;
        if (rest < 7) {
            ok = true;
        } else {
            c = frames_at_start(p + tag, rest);
            ok = c != KTH_CONTAINER_UNKNOWN || ac3_sync(p + tag, rest);
        }
    } else {
        c = frames_at_start(p, len);
        ok = c != KTH_CONTAINER_UNKNOWN;
    }
    if (container)
        *container = ok ? c : KTH_CONTAINER_UNKNOWN;
    return ok;
}
