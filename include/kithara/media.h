/*
 * kithara/media.h — the media vocabulary: codecs, containers and what is known of a stream.
 *
 * kithara does not decode audio; it only has to know enough to hand a decoder the right bytes
 * and tell the player what they are: which container the bytes are in (from magic numbers, the
 * file extension or a Content-Type) and which codec (from RFC 6381 CODECS strings in HLS
 * playlists, or from the first bytes).
 *
 * Every function here is pure and may be called from any thread.
 */
#ifndef KITHARA_MEDIA_H
#define KITHARA_MEDIA_H

#include <kithara/status.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum kth_codec {
    KTH_CODEC_UNKNOWN = 0,
    KTH_CODEC_AAC_LC,
    KTH_CODEC_HE_AAC,    /* AAC with SBR (HE-AAC v1) */
    KTH_CODEC_HE_AAC_V2, /* AAC with SBR and parametric stereo */
    KTH_CODEC_MP3,
    KTH_CODEC_FLAC,
    KTH_CODEC_ALAC,
    KTH_CODEC_OPUS,
    KTH_CODEC_VORBIS,
    KTH_CODEC_AC3,
    KTH_CODEC_EAC3,
    KTH_CODEC_PCM,
    /* Not audio: a video codec named in a CODECS list (avc1, hvc1, vp09, av01, ...). */
    KTH_CODEC_VIDEO,
} kth_codec;

typedef enum kth_container {
    KTH_CONTAINER_UNKNOWN = 0,
    KTH_CONTAINER_FMP4, /* ISO BMFF: fragmented MP4 or a plain .m4a/.mp4 */
    KTH_CONTAINER_MPEG_TS,
    KTH_CONTAINER_ADTS,       /* raw AAC in ADTS frames (.aac), possibly behind an ID3 tag */
    KTH_CONTAINER_MPEG_AUDIO, /* MPEG-1/2 audio frames (.mp3), possibly behind an ID3 tag */
    KTH_CONTAINER_FLAC,
    KTH_CONTAINER_WAV,
    KTH_CONTAINER_OGG,
    KTH_CONTAINER_CAF,
} kth_container;

/* What is known of a stream's media. Zero means unknown for every numeric field. */
typedef struct kth_media_info {
    kth_codec codec;
    kth_container container;
    uint32_t sample_rate; /* Hz */
    uint32_t channels;
    uint32_t bitrate; /* bits per second: nominal/declared, or of the first frame */
    int variant;      /* HLS variant index, or -1 when not an HLS stream */
    /* Internet radio: true when the response was an endless Icecast/SHOUTcast stream (icy-*
     * headers, no length); the station's headers follow, empty when not sent. bitrate is then
     * icy-br (kbit/s) * 1000 unless the bytes tell otherwise. The three strings are shown text,
     * cut to fit. */
    bool radio;
    char station_name[128]; /* icy-name */
    char station_genre[64]; /* icy-genre */
    char content_type[64];  /* the radio response's Content-Type */
} kth_media_info;

/* Short names for logs and JSON ("AAC-LC", "fMP4"); static storage, never NULL. */
KTH_API const char *kth_codec_name(kth_codec codec);
KTH_API const char *kth_container_name(kth_container container);

/* True for every codec that carries audio (not UNKNOWN, not VIDEO). */
KTH_API bool kth_codec_is_audio(kth_codec codec);

/* Parses one RFC 6381 codec identifier ("mp4a.40.2", "fLaC", "ec-3", "avc1.64001f"). Leading
 * and trailing blanks are ignored; matching is case-insensitive where the registry is.
 * Returns KTH_CODEC_UNKNOWN for anything not recognised. */
KTH_API kth_codec kth_codec_from_rfc6381(const char *id);

/* Parses a comma-separated CODECS attribute value into at most `max` codecs (in order; unknown
 * entries included as KTH_CODEC_UNKNOWN). *count receives how many entries the list has, even
 * past `max`. Returns KTH_ERR_INVALID_ARG for NULL list/count, KTH_ERR_FORMAT for an empty
 * entry ("mp4a.40.2,,avc1"). */
KTH_API kth_status kth_codecs_parse(const char *list, kth_codec *out, size_t max, size_t *count);

/* The container suggested by a path's or URL's extension (query and fragment ignored), or
 * KTH_CONTAINER_UNKNOWN. */
KTH_API kth_container kth_container_from_extension(const char *path_or_url);

/* The container suggested by a Content-Type value (parameters ignored), or UNKNOWN. */
KTH_API kth_container kth_container_from_content_type(const char *content_type);

/* Detects the container from the first bytes of a stream (more bytes give a surer answer;
 * 4 KiB is plenty). Returns KTH_CONTAINER_UNKNOWN when nothing matches. */
KTH_API kth_container kth_container_detect(const uint8_t *bytes, size_t len);

/* Fills *info from the first bytes: container, and where the headers say so codec, sample
 * rate, channels and bitrate. Fields it cannot learn are left as they were, so a caller may
 * pre-fill hints (from a Content-Type or a playlist). Returns KTH_ERR_INVALID_ARG for NULL
 * arguments, KTH_ERR_FORMAT when no container was recognised, KTH_OK otherwise. */
KTH_API kth_status kth_media_probe(const uint8_t *bytes, size_t len, kth_media_info *info);

#ifdef __cplusplus
}
#endif

#endif /* KITHARA_MEDIA_H */
