/*
 * hls/playlist.h — the HLS playlist model and its parser (RFC 8216, master and media).
 *
 * hls_playlist_parse() is a pure function: bytes + the playlist's final URL (after redirects)
 * in, an immutable model out. No I/O, no globals, no logging; any thread may call it, and a
 * parsed model may be read from any number of threads at once.
 *
 * Ownership: the model owns everything it points to (arrays and strings); hls_playlist_free()
 * releases it all. Pointers taken from a model stay valid until that call. Every URI in the
 * model is already resolved (RFC 3986) against the base URL given to the parser.
 *
 * Input is untrusted: every count and size is bounded by hls_parse_limits, arithmetic on
 * offsets is overflow-checked, and a failure is a status plus a sentence naming the line.
 */
#ifndef KTH_HLS_PLAYLIST_H
#define KTH_HLS_PLAYLIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* "No index": the key of a clear segment, the map of a segment without an init section. */
#define HLS_NONE SIZE_MAX

/* Bounds on untrusted input. A field left 0 takes the default shown. Exceeding one makes the
 * parse fail with KTH_ERR_LIMIT. */
typedef struct hls_parse_limits {
    size_t max_playlist_bytes; /* whole body, BOM included; default 16 MiB */
    size_t max_line_bytes;     /* one line without its terminator; default 64 KiB */
    size_t max_segments;       /* media playlist; default 200,000 */
    size_t max_variants;       /* EXT-X-STREAM-INF in a master; default 256 */
    size_t max_renditions;     /* EXT-X-MEDIA in a master, all types; default 1,024 */
    size_t max_session_keys;   /* EXT-X-SESSION-KEY in a master; default 64 */
} hls_parse_limits;

#define HLS_DEFAULT_MAX_PLAYLIST_BYTES ((size_t)16 * 1024 * 1024)
#define HLS_DEFAULT_MAX_LINE_BYTES     ((size_t)64 * 1024)
#define HLS_DEFAULT_MAX_SEGMENTS       ((size_t)200000)
#define HLS_DEFAULT_MAX_VARIANTS       ((size_t)256)
#define HLS_DEFAULT_MAX_RENDITIONS     ((size_t)1024)
#define HLS_DEFAULT_MAX_SESSION_KEYS   ((size_t)64)

typedef enum hls_playlist_kind {
    HLS_PLAYLIST_MASTER = 1, /* variant streams and renditions */
    HLS_PLAYLIST_MEDIA = 2,  /* segments */
} hls_playlist_kind;

/* A byte range of a resource: [offset, offset + length). When `present` is false the whole
 * resource is meant and the other fields are 0. offset + length never overflows. */
typedef struct hls_byterange {
    bool present;
    uint64_t offset;
    uint64_t length;
} hls_byterange;

typedef enum hls_key_method {
    HLS_KEY_AES_128 = 1,    /* whole segment, AES-128-CBC with PKCS#7 padding */
    HLS_KEY_SAMPLE_AES = 2, /* sample-level encryption inside the container */
    HLS_KEY_OTHER = 3,      /* a method RFC 8216 does not define; see method_name */
} hls_key_method;

/* An EXT-X-KEY or EXT-X-SESSION-KEY. METHOD=NONE never becomes a key: it clears the keys in
 * force, and the segments after it have key == HLS_NONE. */
typedef struct hls_key {
    hls_key_method method;
    const char *method_name;        /* as written, e.g. "AES-128" */
    const char *uri;                /* resolved, never NULL */
    bool has_iv;                    /* IV attribute present */
    uint8_t iv[16];                 /* big-endian; zero when !has_iv */
    const char *keyformat;          /* "identity" when the attribute is absent */
    const char *keyformat_versions; /* "1" when the attribute is absent */
    size_t line;                    /* line of the tag, for messages */
} hls_key;

/* An EXT-X-MAP: the media initialization section that applies to the following segments. */
typedef struct hls_map {
    const char *uri;     /* resolved */
    hls_byterange range; /* BYTERANGE attribute; a missing "@offset" means offset 0 */
    size_t key;          /* index into media.keys of the key in force at the tag, or HLS_NONE.
                            An AES-128 key here always has an IV (RFC 8216 §4.3.2.5). */
    size_t line;
} hls_map;

/* A segment as hls_media_segment() hands it out: a copy, built from the compact record the
 * playlist keeps (see hls_segment_rec). The title belongs to the playlist. The URI is not part
 * of it, because the playlist may not hold it as a string: hls_media_segment_uri() makes it. */
typedef struct hls_segment {
    const char *title;               /* EXTINF title, NULL when empty */
    double duration;                 /* EXTINF, seconds, >= 0 */
    double start;                    /* sum of the durations of the segments before it */
    uint64_t sequence;               /* media sequence number */
    uint64_t discontinuity_sequence; /* EXT-X-DISCONTINUITY-SEQUENCE + discontinuities so far */
    bool discontinuity;              /* an EXT-X-DISCONTINUITY precedes this segment */
    bool gap;                        /* EXT-X-GAP: the segment must not be fetched */
    hls_byterange range;             /* EXT-X-BYTERANGE with the implied offset filled in */
    size_t key;                      /* index into media.keys, or HLS_NONE (clear) */
    size_t map;                      /* index into media.maps, or HLS_NONE */
    /* EXT-X-PROGRAM-DATE-TIME of its first sample, ms since the Unix epoch (UTC): its own tag
     * (date_tag), else the last tag before it plus the durations in between; 0 when no tag
     * comes before it. A tag that says just what the tags and durations before it give is not
     * kept as a tag (the date is the same; date_tag is false): servers of live streams date
     * every segment, and the model keeps only the dates that move. */
    int64_t program_time_ms;
    bool date_tag;
} hls_segment;

/* Private: what a media playlist keeps of a segment besides its duration. The URI is either an
 * index into uris_ (consecutive segments naming one resource share an entry) or, with
 * HLS_SEG_TEMPLATE, the index of the run of uri_runs_ that makes it from the segment's index.
 * hls_media_record() gives a segment's. */
typedef struct hls_segment_rec {
    uint32_t uri;
    uint32_t key, map; /* UINT32_MAX: none */
    uint32_t bits;     /* EXT-X-DISCONTINUITY tags before it << HLS_SEG_FLAG_BITS | HLS_SEG_* */
} hls_segment_rec;

/* Private: consecutive segments alike but for their index, from `first` to the next run's first
 * (or the last segment). With HLS_SEG_URI_STEP in rec.bits, segment first + k has the URI
 * string rec.uri + k (each its own string, stored in order); otherwise every segment has
 * rec's. A playlist of numbered or distinct URIs with one key and one map is one run, whatever
 * its length: a segment costs only its duration's index (1, 2 or 4 bytes into the distinct
 * durations) and a share of the start marks (starts_, 8 bytes per HLS_START_EVERY). The
 * sequence number is the media sequence plus the index; a start is the start mark of its group
 * plus the durations before it in the group, added in order as the parser added them, so it is
 * the same double; a title and a byte range live in side tables, which exist only when some
 * segment has one. */
typedef struct hls_segment_run {
    size_t first;
    hls_segment_rec rec;
} hls_segment_run;

#define HLS_SEG_DISCONTINUITY       1u
#define HLS_SEG_GAP                 2u
#define HLS_SEG_TITLE               4u
#define HLS_SEG_RANGE               8u
#define HLS_SEG_TEMPLATE            16u
#define HLS_SEG_URI_STEP            32u /* in a run's bits: its URI strings step by one */
#define HLS_SEG_FLAG_BITS           6
#define HLS_SEG_MAX_DISCONTINUITIES (UINT32_MAX >> HLS_SEG_FLAG_BITS)
#define HLS_START_SHIFT             5
#define HLS_START_EVERY             ((size_t)1 << HLS_START_SHIFT)

/* Private: consecutive segments whose URIs are one string with a number counting up by one in
 * it ("…/seg_00041.ts", "…/seg_00042.ts", …). Segment `first + k` has the URI
 * base[0, prefix_len) + (number + k, zero-padded to `width` digits) + base + suffix_at. `base`
 * is the URI of the segment before the run, which the playlist holds as a string. The parser
 * makes a segment part of a run only when this rule reproduces its resolved URI exactly. */
typedef struct hls_uri_run {
    const char *base;
    size_t first;
    uint64_t number;
    uint32_t prefix_len, suffix_at, width;
} hls_uri_run;

typedef struct hls_segment_range {
    uint64_t offset, length; /* meaningful when the record has HLS_SEG_RANGE */
} hls_segment_range;

typedef struct hls_segment_title {
    size_t segment;
    const char *title;
} hls_segment_title;

typedef struct hls_segment_date {
    size_t segment;
    int64_t ms; /* EXT-X-PROGRAM-DATE-TIME, ms since the Unix epoch */
} hls_segment_date;

typedef enum hls_playlist_type {
    HLS_PLAYLIST_TYPE_NONE = 0, /* no EXT-X-PLAYLIST-TYPE tag */
    HLS_PLAYLIST_TYPE_VOD = 1,
    HLS_PLAYLIST_TYPE_EVENT = 2,
} hls_playlist_type;

typedef struct hls_media_playlist {
    uint64_t target_duration;        /* EXT-X-TARGETDURATION, 0 when absent */
    uint64_t media_sequence;         /* EXT-X-MEDIA-SEQUENCE, 0 when absent */
    uint64_t discontinuity_sequence; /* EXT-X-DISCONTINUITY-SEQUENCE, 0 when absent */
    hls_playlist_type type;
    bool endlist;       /* EXT-X-ENDLIST */
    bool i_frames_only; /* EXT-X-I-FRAMES-ONLY */
    double total_duration;
    /* EXT-X-SERVER-CONTROL HOLD-BACK, seconds: how far from the live edge a client should
     * start (RFC 8216bis §4.4.3.8); valid when has_hold_back. */
    bool has_hold_back;
    double hold_back;

    /* Segments, in playlist order: read them with hls_media_segment(). The rest is private. */
    size_t segment_count;
    hls_segment_run *runs_; /* by first segment, ascending; the first run's first is 0 */
    size_t run_count_;
    double *durations_; /* the distinct EXTINF durations */
    size_t duration_count_;
    void *duration_of_;  /* per segment: its index into durations_, dur_width_ bytes */
    unsigned dur_width_; /* 1, 2 or 4 */
    double *starts_;     /* the start of segment k * HLS_START_EVERY, for each k */
    const char **uris_;  /* distinct URIs held as strings */
    size_t uri_count_;
    hls_uri_run *uri_runs_; /* by first segment, ascending */
    size_t uri_run_count_;
    /* Per segment from the first that has a byte range (ranges_first_) on; NULL when none has
     * one. So a live stream whose played segments lost their ranges (live_merge.c) keeps a
     * table of its window, not of its day. */
    hls_segment_range *ranges_;
    size_t ranges_first_;
    hls_segment_title *titles_; /* by segment, ascending */
    size_t title_count_;
    hls_segment_date *dates_; /* by segment, ascending */
    size_t date_count_;
    /* Distinct keys and init sections used by segments or maps, in order of first use. A key
     * that is re-declared gets a new entry; consecutive identical EXT-X-MAPs share one. */
    hls_key *keys;
    size_t key_count;
    hls_map *maps;
    size_t map_count;
} hls_media_playlist;

typedef struct hls_variant {
    uint64_t bandwidth;         /* BANDWIDTH, bits per second (required) */
    uint64_t average_bandwidth; /* AVERAGE-BANDWIDTH, 0 when absent */
    const char *codecs;         /* CODECS, NULL when absent */
    const char *audio_group;    /* AUDIO group id, NULL when absent */
    const char *video_group;    /* VIDEO group id, NULL when absent */
    bool has_resolution;
    uint64_t width, height; /* RESOLUTION, 0 when absent */
    double frame_rate;      /* FRAME-RATE, 0 when absent */
    /* Hint that the variant carries video: RESOLUTION, FRAME-RATE or VIDEO is present, or
     * CODECS names a video codec (avc1, avc3, hvc1, hev1, dvh1, dvhe, vp08, vp09, av01, mp4v). */
    bool has_video;
    const char *uri; /* resolved media playlist URL */
    size_t line;     /* line of the EXT-X-STREAM-INF tag */
} hls_variant;

typedef enum hls_media_type {
    HLS_MEDIA_AUDIO = 1,
    HLS_MEDIA_VIDEO = 2,
    HLS_MEDIA_SUBTITLES = 3,
    HLS_MEDIA_CLOSED_CAPTIONS = 4,
} hls_media_type;

/* An EXT-X-MEDIA. Tags with a TYPE this parser does not know are skipped. */
typedef struct hls_rendition {
    hls_media_type type;
    const char *group_id;       /* GROUP-ID, never NULL */
    const char *name;           /* NAME, never NULL */
    const char *language;       /* LANGUAGE, NULL when absent */
    const char *assoc_language; /* ASSOC-LANGUAGE, NULL when absent */
    const char *channels;       /* CHANNELS, e.g. "2" or "16/JOC", NULL when absent */
    const char *instream_id;    /* INSTREAM-ID (closed captions), NULL when absent */
    bool is_default;            /* DEFAULT=YES */
    bool autoselect;            /* AUTOSELECT=YES */
    bool forced;                /* FORCED=YES */
    const char *uri;            /* resolved, NULL when absent (media is in the variant) */
    size_t line;
} hls_rendition;

typedef struct hls_master_playlist {
    hls_variant *variants; /* playlist order */
    size_t variant_count;
    hls_rendition *renditions; /* playlist order, all types */
    size_t rendition_count;
    hls_key *session_keys; /* EXT-X-SESSION-KEY */
    size_t session_key_count;
} hls_master_playlist;

struct hls_string_block;

typedef struct hls_playlist {
    hls_playlist_kind kind;
    const char *url;           /* copy of the base URL given to the parser */
    uint64_t version;          /* EXT-X-VERSION, 0 when absent (which means 1) */
    bool independent_segments; /* EXT-X-INDEPENDENT-SEGMENTS */
    /* EXT-X-START (either kind): the preferred start, seconds from the start of the playlist
     * (>= 0) or, when negative, from its end; start_precise is PRECISE=YES. */
    bool has_start;
    double start_offset;
    bool start_precise;
    hls_master_playlist master; /* meaningful when kind == HLS_PLAYLIST_MASTER, else zeroed */
    hls_media_playlist media;   /* meaningful when kind == HLS_PLAYLIST_MEDIA, else zeroed */
    struct hls_string_block *strings_; /* private: storage of every string above */
} hls_playlist;

/*
 * Parses a playlist. `bytes`/`len` is the body as received (it need not be NUL-terminated and
 * may hold anything); `base_url` is the absolute URL it was finally fetched from, against
 * which relative URIs resolve; `limits` may be NULL for the defaults.
 *
 * On success returns KTH_OK and sets *out to a model the caller frees with
 * hls_playlist_free(). On failure returns a negative kth_status, sets *out to NULL and, when
 * err is not NULL, writes a NUL-terminated sentence into err[0..errlen) (truncated to fit),
 * e.g. "line 12: EXTINF duration 'abc' is not a number":
 *   KTH_ERR_INVALID_ARG  out is NULL, bytes is NULL with len > 0, base_url is NULL or not absolute
 *   KTH_ERR_FORMAT       not a playlist (no #EXTM3U first line, an HTML page) or a syntax or
 *                        structure error
 *   KTH_ERR_LIMIT        a limit of hls_parse_limits was exceeded
 *   KTH_ERR_UNSUPPORTED  a feature that changes the meaning of URIs (EXT-X-DEFINE)
 *   KTH_ERR_NO_MEMORY    an allocation failed
 */
int hls_playlist_parse(const uint8_t *bytes, size_t len, const char *base_url,
                       const hls_parse_limits *limits, hls_playlist **out, char *err,
                       size_t errlen);

/*
 * Parses a media playlist's text as what follows the first `count` segments of `from` (a media
 * playlist; 1 <= count <= its segment count): the model made holds those segments as `from`
 * has them (records, times, keys, init sections, dates, titles, URIs), then the segments of the
 * text, as hls_playlist_parse() would make the model of one text holding both (the exceptions
 * are below). The
 * parser resumes where it was after segment count - 1: its key and init section still in force,
 * its discontinuities counted, its last date kept. Copying the segments costs a memcpy of their
 * tables and a copy of the strings they name, not a parse; a live stream's merge (live_merge.c)
 * uses it so a reload costs what its window holds, not what the stream has played.
 *
 * The text starts with #EXTM3U as any playlist. It must not set EXT-X-MEDIA-SEQUENCE or
 * EXT-X-DISCONTINUITY-SEQUENCE (the model has segments already; the prefix's numbers hold). Only
 * the segments come from `from`: the version, target duration, playlist type, start and the
 * other playlist tags are the text's. `from` is only read and may be freed afterwards.
 *
 * Where it is not the parse of one text: the key in force after the prefix is the one its last
 * segment is under, so keys of other KEYFORMATs declared before the cut are not in force (a
 * model keeps one key per segment, and only those count towards the limit of formats at once);
 * an EXT-X-BYTERANGE (of a segment or an init section) without an offset cannot continue a
 * range of the prefix; the limits on bytes apply to the text alone (max_segments to all the
 * segments); and lines named in error messages are the text's, except a copied key's line.
 *
 * Returns as hls_playlist_parse(), and KTH_ERR_INVALID_ARG when `from` is NULL, not a media
 * playlist, or count is 0 or more than its segments.
 */
int hls_playlist_parse_after(const hls_playlist *from, size_t count, const uint8_t *bytes,
                             size_t len, const char *base_url, const hls_parse_limits *limits,
                             hls_playlist **out, char *err, size_t errlen);

/* Private: segment `index`'s record (its run's, the URI made its own). */
hls_segment_rec hls_media_record(const hls_media_playlist *media, size_t index);
/* Segment `index` (< segment_count) of a media playlist, by value. Pure; any thread. */
hls_segment hls_media_segment(const hls_media_playlist *media, size_t index);

/* The resolved URI of segment `index` (< segment_count), as a new string the caller frees.
 * Returns NULL only when out of memory. Pure; any thread. */
char *hls_media_segment_uri(const hls_media_playlist *media, size_t index);

/* Whether segment `index` (< segment_count) has the URI `uri`, without making a copy. */
bool hls_media_segment_uri_is(const hls_media_playlist *media, size_t index, const char *uri);

/* Frees a model and everything it owns. NULL is a no-op. */
void hls_playlist_free(hls_playlist *pl);

/* The IV for data under `key` whose media sequence number is `sequence`: the key's explicit IV,
 * else `sequence` as a 128-bit big-endian number (RFC 8216 §5.2). */
void hls_key_iv(const hls_key *key, uint64_t sequence, uint8_t iv[16]);

/* The IV of segment `index` of a media playlist. Returns KTH_OK, or KTH_ERR_INVALID_ARG when pl
 * is not a media playlist, index is out of range, or the segment is clear (no key). */
int hls_playlist_segment_iv(const hls_playlist *pl, size_t index, uint8_t iv[16]);

/* Writes into order[0..cap) the indices of the master's variants sorted by bandwidth ascending
 * (ties keep playlist order) and returns how many it wrote (min(cap, variant_count); 0 when pl
 * is not a master). */
size_t hls_playlist_variants_by_bandwidth(const hls_playlist *pl, size_t *order, size_t cap);

/* The audio rendition to play from group `group_id`: the first with DEFAULT=YES, else the first
 * with AUTOSELECT=YES, else the first of the group. NULL when the group has no TYPE=AUDIO
 * rendition or pl is not a master. Borrowed from pl. */
const hls_rendition *hls_playlist_audio_rendition(const hls_playlist *pl, const char *group_id);

#endif /* KTH_HLS_PLAYLIST_H */
