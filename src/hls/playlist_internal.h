/*
 * hls/playlist_internal.h — parser state shared by playlist.c (lines, dispatch, errors,
 * storage), playlist_master.c (master tags) and playlist_media.c (media tags).
 * Not for use outside src/hls/playlist*.c.
 */
#ifndef KTH_HLS_PLAYLIST_INTERNAL_H
#define KTH_HLS_PLAYLIST_INTERNAL_H

#include "hls/attr.h"
#include "hls/playlist.h"

#include <stdarg.h>

#if defined(__GNUC__)
#define HLS_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define HLS_PRINTF(fmt, args)
#endif

/* Several EXT-X-KEY tags with different KEYFORMATs may be in force at once (RFC 8216
 * §4.3.2.4); more distinct formats than this at one point is a limit error. */
#define HLS_MAX_KEYFORMATS 16

/* A key tag as read, URI not yet resolved: a key becomes part of the model (and its URI is
 * resolved) only when a segment or map uses it, so unused tags cost no resolution. */
typedef struct hls_key_slot {
    hls_key key;     /* key.uri holds the raw reference */
    size_t index;    /* index in media.keys once used, else HLS_NONE */
    uint64_t serial; /* which EXT-X-KEY tag this is, to recognise it after the slot is reused */
} hls_key_slot;

/* The EXT-X-MAP in force, also kept raw until a segment uses it. */
typedef struct hls_map_slot {
    bool present;
    const char *raw_uri;
    hls_byterange range;
    bool has_key;
    hls_key_slot key; /* copy of the key in force at the tag */
    size_t line;
    size_t index; /* index in media.maps once used, else HLS_NONE */
} hls_map_slot;

/* Byte-range ends by resource URI, for EXT-X-BYTERANGE without an offset. */
typedef struct hls_range_entry {
    const char *uri; /* NULL = empty slot; borrowed from the model's strings */
    uint64_t hash;
    uint64_t end;
} hls_range_entry;

typedef struct hls_parser {
    hls_parse_limits lim;
    const char *base_url;
    hls_playlist *pl;
    size_t line_no; /* 0 = not at a line (message gets no "line N: " prefix) */
    char *err;
    size_t errlen;

    /* kind: set by the first tag or line that only one kind may contain */
    const char *kind_tag;
    size_t kind_line;

    /* master */
    size_t variant_cap, rendition_cap, session_key_cap;
    bool stream_inf_pending;
    hls_variant pending_variant;

    /* media */
    size_t segment_cap, start_cap, run_cap, duration_cap, key_cap, map_cap, seg_range_cap,
        title_cap, date_cap, uri_cap, uri_run_cap;
    /* The distinct durations met so far, by value: indices into media.durations_, open
     * addressing, UINT32_MAX empty; dur_hash_cap is a power of two (0: none yet). */
    uint32_t *dur_hash;
    size_t dur_hash_cap;
    bool extinf_pending;
    size_t extinf_line;
    double extinf_duration;
    const char *extinf_title;
    bool byterange_pending;
    size_t byterange_line;
    uint64_t byterange_length;
    bool byterange_has_offset;
    uint64_t byterange_offset;
    bool discontinuity_pending;
    bool gap_pending;
    bool date_pending; /* EXT-X-PROGRAM-DATE-TIME for the next segment: date_ms */
    int64_t date_ms;
    double date_start;            /* start of the segment of the last date kept */
    uint64_t discontinuity_count; /* EXT-X-DISCONTINUITY tags before the next segment */
    hls_key_slot keys_in_force[HLS_MAX_KEYFORMATS];
    size_t keys_in_force_count;
    uint64_t key_serial;
    hls_map_slot map;
    hls_range_entry *ranges;
    size_t range_cap, range_count;
} hls_parser;

/* Writes "line N: <message>" into the error buffer and returns `status`. */
int hls_parser_fail(hls_parser *p, int status, const char *fmt, ...) HLS_PRINTF(3, 4);

/* Formats up to ~40 bytes of s as a printable excerpt (controls escaped, "..." when cut). */
const char *hls_excerpt(char *buf, size_t bufsize, const char *s, size_t n);
#define HLS_EXCERPT_SIZE 64

/* Copies n bytes into the model's string storage, NUL-terminated. NULL on allocation failure
 * (the error is already set). */
char *hls_parser_strdup(hls_parser *p, const char *s, size_t n);

/* Resolves a reference against the base URL into the model's storage. NULL on failure (the
 * error is already set). */
const char *hls_parser_resolve(hls_parser *p, const char *ref, size_t n);

/* Whether `uri` is what run `u` makes for segment `i` (playlist.c). */
bool hls_uri_run_is(const hls_uri_run *u, size_t i, const char *uri);

/* Returns `array` (elements of `size` bytes, capacity *cap), reallocated if needed to hold at
 * least `need` elements, with *cap updated. NULL on failure (reported; `array` still valid). */
void *hls_parser_grow(hls_parser *p, void *array, size_t *cap, size_t need, size_t size);

/* Makes the playlist a master or a media playlist; a second, different answer is an error
 * naming both lines. `tag` is a static string. */
int hls_parser_set_kind(hls_parser *p, hls_playlist_kind kind, const char *tag);

/* Reads the next attribute of a tag, reporting a malformed list as an error naming `tag`.
 * Returns 1, 0 at the end, or a negative status. */
int hls_parser_next_attr(hls_parser *p, const char *tag, hls_attr_reader *r, hls_attr *a);

/* Type checks shared by the tag handlers; each reports "<tag> attribute <NAME> must be ...". */
int hls_parser_attr_quoted(hls_parser *p, const char *tag, const hls_attr *a);
int hls_parser_attr_integer(hls_parser *p, const char *tag, const hls_attr *a, uint64_t *out);
int hls_parser_attr_yes_no(hls_parser *p, const char *tag, const hls_attr *a, bool *out);

/* Parses the attributes of EXT-X-KEY / EXT-X-SESSION-KEY into slot->key (URI left raw).
 * *is_none tells METHOD=NONE. */
int hls_parse_key_attrs(hls_parser *p, const char *tag, const char *s, size_t n, hls_key_slot *slot,
                        bool *is_none);

/* Master tags and lines (playlist_master.c). */
int hls_master_stream_inf(hls_parser *p, const char *s, size_t n);
int hls_master_media(hls_parser *p, const char *s, size_t n);
int hls_master_session_key(hls_parser *p, const char *s, size_t n);
int hls_master_uri(hls_parser *p, const char *s, size_t n);
int hls_master_finish(hls_parser *p);

/* Tags of live playlists (playlist_live.c): EXT-X-START, EXT-X-SERVER-CONTROL. */
int hls_live_start(hls_parser *p, const char *s, size_t n);
int hls_live_server_control(hls_parser *p, const char *s, size_t n);

/* Makes the model start as the first `count` segments of `from` and sets the parser's state to
 * what it was after them (playlist_prefix.c); `more` is how many segments the text is expected
 * to add (room is made for them). KTH_OK, or a reported KTH_ERR_INVALID_ARG (count out of range,
 * not a media playlist, a model not made by this parser) or KTH_ERR_NO_MEMORY. */
int hls_media_seed(hls_parser *p, const hls_playlist *from, size_t count, size_t more);

/* Media tags and lines (playlist_media.c). */
int hls_media_extinf(hls_parser *p, const char *s, size_t n);
int hls_media_byterange(hls_parser *p, const char *s, size_t n);
int hls_media_key(hls_parser *p, const char *s, size_t n);
int hls_media_map(hls_parser *p, const char *s, size_t n);
int hls_media_target_duration(hls_parser *p, const char *s, size_t n);
int hls_media_media_sequence(hls_parser *p, const char *s, size_t n);
int hls_media_discontinuity_sequence(hls_parser *p, const char *s, size_t n);
int hls_media_discontinuity(hls_parser *p, const char *s, size_t n);
int hls_media_gap(hls_parser *p, const char *s, size_t n);
int hls_media_program_date_time(hls_parser *p, const char *s, size_t n);
int hls_media_endlist(hls_parser *p, const char *s, size_t n);
int hls_media_playlist_type(hls_parser *p, const char *s, size_t n);
int hls_media_i_frames_only(hls_parser *p, const char *s, size_t n);
int hls_media_uri(hls_parser *p, const char *s, size_t n);
int hls_media_finish(hls_parser *p);
void hls_media_release(hls_parser *p);

#endif /* KTH_HLS_PLAYLIST_INTERNAL_H */
