/*
 * hls/playlist.c — the playlist parser's driver: checks the body is a playlist at all, splits
 * it into lines, dispatches tags to the master or media handlers, and owns the model's storage
 * and the error message. Also the small read-only helpers over a parsed model.
 *
 * Invariants: the body is never read past `len` and never needs a NUL terminator; a failed
 * parse frees everything it allocated and leaves *out NULL; every string of the model lives in
 * its string blocks, released at once by hls_playlist_free().
 */
#include "hls/playlist_internal.h"

#include "hls/url.h"
#include "platform/mem.h"

#include <kithara/status.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- string storage ---------------------------------------------------------------------- */

/* Strings are carved from blocks so a playlist of 200,000 segments is a few hundred
 * allocations, and freeing is a walk of the block list. Blocks start small and double up to
 * 64 KiB: a playlist whose segment URIs are runs holds a few short strings. */
struct hls_string_block {
    struct hls_string_block *next;
    size_t used;
    size_t size;
    char data[];
};

#define HLS_STRING_BLOCK_SIZE  ((size_t)64 * 1024)
#define HLS_STRING_BLOCK_FIRST ((size_t)2 * 1024)

static char *string_alloc(hls_playlist *pl, size_t n)
{
    struct hls_string_block *b = pl->strings_;
    if (b == NULL || b->size - b->used < n) {
        size_t step = b == NULL                              ? HLS_STRING_BLOCK_FIRST
                      : b->size >= HLS_STRING_BLOCK_SIZE / 2 ? HLS_STRING_BLOCK_SIZE
                                                             : b->size * 2;
        size_t size = n > step ? n : step;
        if (size > SIZE_MAX - sizeof(*b)) {
            return NULL;
        }
        struct hls_string_block *nb = platform_malloc(sizeof(*nb) + size);
        if (nb == NULL) {
            return NULL;
        }
        nb->used = 0;
        nb->size = size;
        if (b != NULL && size == n) {
            /* A dedicated block for a large string: keep the current block's free room. */
            nb->next = b->next;
            b->next = nb;
        } else {
            nb->next = b;
            pl->strings_ = nb;
        }
        b = nb;
    }
    char *s = b->data + b->used;
    b->used += n;
    return s;
}

char *hls_parser_strdup(hls_parser *p, const char *s, size_t n)
{
    char *d = n < SIZE_MAX ? string_alloc(p->pl, n + 1) : NULL;
    if (d == NULL) {
        hls_parser_fail(p, KTH_ERR_NO_MEMORY, "out of memory");
        return NULL;
    }
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

const char *hls_parser_resolve(hls_parser *p, const char *ref, size_t n)
{
    char *resolved = NULL;
    int rc = hls_url_resolve(p->base_url, ref, n, &resolved);
    if (rc != KTH_OK) {
        hls_parser_fail(p, rc, "cannot resolve URI against the base URL");
        return NULL;
    }
    char *copy = hls_parser_strdup(p, resolved, strlen(resolved));
    platform_free(resolved);
    return copy;
}

void *hls_parser_grow(hls_parser *p, void *array, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap) {
        return array;
    }
    size_t grown = *cap < 16 ? 16 : *cap;
    while (grown < need && grown <= SIZE_MAX / 2) {
        grown *= 2;
    }
    if (grown < need || grown > SIZE_MAX / size) {
        hls_parser_fail(p, KTH_ERR_NO_MEMORY, "out of memory");
        return NULL;
    }
    void *a = platform_realloc(array, grown * size);
    if (a == NULL) {
        hls_parser_fail(p, KTH_ERR_NO_MEMORY, "out of memory");
        return NULL;
    }
    *cap = grown;
    return a;
}

/* How many lines of the text start with an EXTINF tag (at most `cap`). Line by line: memmem
 * over the rest of the text from each tag on is quadratic where memmem is checked in full
 * (AddressSanitizer's checks the whole haystack: 30 s for a 200,000-segment text). */
static size_t count_extinf(const char *s, size_t n, size_t cap)
{
    static const char tag[] = "#EXTINF:";
    size_t count = 0;
    for (const char *at = s, *end = s + n; at != NULL && at < end && count < cap;) {
        if ((size_t)(end - at) >= sizeof tag - 1 && memcmp(at, tag, sizeof tag - 1) == 0) {
            count++;
        }
        at = memchr(at, '\n', (size_t)(end - at));
        at = at != NULL ? at + 1 : NULL;
    }
    return count;
}

/* Sizes the table of duration indices for the EXTINF tags the text holds, so that a long
 * playlist's is not grown by doubling: no copy while it grows, no slack after. Best effort: the
 * table grows as usual when this fails or counts wrong. */
static void reserve_segments(hls_parser *p, const char *s, size_t n)
{
    size_t count = count_extinf(s, n, p->lim.max_segments);
    if (count < 64) {
        return;
    }
    p->pl->media.duration_of_ = platform_malloc(count); /* one byte each until widened */
    p->pl->media.dur_width_ = 1;
    p->segment_cap = p->pl->media.duration_of_ != NULL ? count : 0;
}

int hls_parser_fail(hls_parser *p, int status, const char *fmt, ...)
{
    if (p->err == NULL || p->errlen == 0 || p->err[0] != '\0') {
        return status; /* no buffer, or the first (most precise) message is already there */
    }
    size_t used = 0;
    if (p->line_no > 0) {
        int k = snprintf(p->err, p->errlen, "line %zu: ", p->line_no);
        used = k < 0 ? 0 : ((size_t)k >= p->errlen ? p->errlen - 1 : (size_t)k);
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->err + used, p->errlen - used, fmt, ap);
    va_end(ap);
    return status;
}

const char *hls_excerpt(char *buf, size_t bufsize, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (o + 8 >= bufsize || i >= 40) {
            if (o + 4 <= bufsize) {
                memcpy(buf + o, "...", 3);
                o += 3;
            }
            break;
        }
        if (c >= 0x20 && c < 0x7f && c != '\\') {
            buf[o++] = (char)c;
        } else {
            buf[o++] = '\\';
            buf[o++] = 'x';
            buf[o++] = hex[c >> 4];
            buf[o++] = hex[c & 15];
        }
    }
    buf[o] = '\0';
    return buf;
}

/* ---- shared attribute helpers ------------------------------------------------------------ */

static int shown(size_t n)
{
    return (int)(n > 64 ? 64 : n);
}

int hls_parser_next_attr(hls_parser *p, const char *tag, hls_attr_reader *r, hls_attr *a)
{
    char why[160];
    int rc = hls_attr_next(r, a, why, sizeof(why));
    if (rc < 0) {
        return hls_parser_fail(p, KTH_ERR_FORMAT, "%s: %s", tag, why);
    }
    return rc;
}

int hls_parser_attr_quoted(hls_parser *p, const char *tag, const hls_attr *a)
{
    if (!a->quoted) {
        return hls_parser_fail(p, KTH_ERR_FORMAT, "%s attribute %.*s must be a quoted string", tag,
                               shown(a->name_len), a->name);
    }
    return KTH_OK;
}

int hls_parser_attr_integer(hls_parser *p, const char *tag, const hls_attr *a, uint64_t *out)
{
    if (a->quoted || !hls_parse_decimal_integer(a->value, a->value_len, out)) {
        char ex[HLS_EXCERPT_SIZE];
        return hls_parser_fail(p, KTH_ERR_FORMAT, "%s attribute %.*s '%s' is not a decimal integer",
                               tag, shown(a->name_len), a->name,
                               hls_excerpt(ex, sizeof(ex), a->value, a->value_len));
    }
    return KTH_OK;
}

int hls_parser_attr_yes_no(hls_parser *p, const char *tag, const hls_attr *a, bool *out)
{
    if (hls_attr_enum_is(a, "YES")) {
        *out = true;
    } else if (hls_attr_enum_is(a, "NO")) {
        *out = false;
    } else {
        return hls_parser_fail(p, KTH_ERR_FORMAT, "%s attribute %.*s must be YES or NO", tag,
                               shown(a->name_len), a->name);
    }
    return KTH_OK;
}

/* ---- kind -------------------------------------------------------------------------------- */

static const char *kind_name(hls_playlist_kind kind)
{
    return kind == HLS_PLAYLIST_MASTER ? "master" : "media";
}

int hls_parser_set_kind(hls_parser *p, hls_playlist_kind kind, const char *tag)
{
    if (p->pl->kind == 0) {
        p->pl->kind = kind;
        p->kind_tag = tag;
        p->kind_line = p->line_no;
        return KTH_OK;
    }
    if (p->pl->kind != kind) {
        return hls_parser_fail(p, KTH_ERR_FORMAT,
                               "%s belongs in a %s playlist, but %s on line %zu made this a %s "
                               "playlist",
                               tag, kind_name(kind), p->kind_tag, p->kind_line,
                               kind_name(p->pl->kind));
    }
    return KTH_OK;
}

/* ---- tags valid in both kinds ------------------------------------------------------------ */

static int tag_version(hls_parser *p, const char *s, size_t n)
{
    if (!hls_parse_decimal_integer(s, n, &p->pl->version)) {
        char ex[HLS_EXCERPT_SIZE];
        return hls_parser_fail(p, KTH_ERR_FORMAT, "EXT-X-VERSION '%s' is not a decimal integer",
                               hls_excerpt(ex, sizeof(ex), s, n));
    }
    return KTH_OK;
}

static int tag_independent_segments(hls_parser *p, const char *s, size_t n)
{
    (void)s, (void)n;
    p->pl->independent_segments = true;
    return KTH_OK;
}

static int tag_define(hls_parser *p, const char *s, size_t n)
{
    /* Variable substitution rewrites URIs; ignoring it would fetch wrong URLs silently. */
    (void)s, (void)n;
    return hls_parser_fail(p, KTH_ERR_UNSUPPORTED,
                           "EXT-X-DEFINE (variable substitution) is not supported");
}

typedef int (*hls_tag_fn)(hls_parser *p, const char *s, size_t n);

typedef struct hls_tag_def {
    const char *name;
    hls_playlist_kind kind; /* 0: valid in both kinds */
    bool needs_value;
    hls_tag_fn fn; /* NULL: recognised only to decide the kind, content ignored */
} hls_tag_def;

/* Tags not listed (EXT-X-DATERANGE, low-latency tags, future tags) are ignored, as RFC 8216
 * §6.3.1 asks of clients. */
static const hls_tag_def hls_tags[] = {
    {"EXTINF", HLS_PLAYLIST_MEDIA, true, hls_media_extinf},
    {"EXT-X-BYTERANGE", HLS_PLAYLIST_MEDIA, true, hls_media_byterange},
    {"EXT-X-KEY", HLS_PLAYLIST_MEDIA, true, hls_media_key},
    {"EXT-X-MAP", HLS_PLAYLIST_MEDIA, true, hls_media_map},
    {"EXT-X-TARGETDURATION", HLS_PLAYLIST_MEDIA, true, hls_media_target_duration},
    {"EXT-X-MEDIA-SEQUENCE", HLS_PLAYLIST_MEDIA, true, hls_media_media_sequence},
    {"EXT-X-DISCONTINUITY-SEQUENCE", HLS_PLAYLIST_MEDIA, true, hls_media_discontinuity_sequence},
    {"EXT-X-DISCONTINUITY", HLS_PLAYLIST_MEDIA, false, hls_media_discontinuity},
    {"EXT-X-GAP", HLS_PLAYLIST_MEDIA, false, hls_media_gap},
    {"EXT-X-PROGRAM-DATE-TIME", HLS_PLAYLIST_MEDIA, true, hls_media_program_date_time},
    {"EXT-X-ENDLIST", HLS_PLAYLIST_MEDIA, false, hls_media_endlist},
    {"EXT-X-PLAYLIST-TYPE", HLS_PLAYLIST_MEDIA, true, hls_media_playlist_type},
    {"EXT-X-I-FRAMES-ONLY", HLS_PLAYLIST_MEDIA, false, hls_media_i_frames_only},
    {"EXT-X-SERVER-CONTROL", HLS_PLAYLIST_MEDIA, true, hls_live_server_control},
    {"EXT-X-STREAM-INF", HLS_PLAYLIST_MASTER, true, hls_master_stream_inf},
    {"EXT-X-MEDIA", HLS_PLAYLIST_MASTER, true, hls_master_media},
    {"EXT-X-SESSION-KEY", HLS_PLAYLIST_MASTER, true, hls_master_session_key},
    {"EXT-X-I-FRAME-STREAM-INF", HLS_PLAYLIST_MASTER, false, NULL},
    {"EXT-X-SESSION-DATA", HLS_PLAYLIST_MASTER, false, NULL},
    {"EXT-X-VERSION", 0, true, tag_version},
    {"EXT-X-INDEPENDENT-SEGMENTS", 0, false, tag_independent_segments},
    {"EXT-X-START", 0, true, hls_live_start},
    {"EXT-X-DEFINE", 0, false, tag_define},
};

static int handle_tag(hls_parser *p, const char *line, size_t n)
{
    const char *colon = memchr(line, ':', n);
    size_t name_len = colon != NULL ? (size_t)(colon - line) - 1 : n - 1;
    const char *name = line + 1;
    for (size_t i = 0; i < sizeof(hls_tags) / sizeof(hls_tags[0]); i++) {
        const hls_tag_def *t = &hls_tags[i];
        if (strlen(t->name) != name_len || memcmp(t->name, name, name_len) != 0) {
            continue;
        }
        if (t->needs_value && colon == NULL) {
            return hls_parser_fail(p, KTH_ERR_FORMAT, "%s has no value", t->name);
        }
        if (t->kind != 0) {
            int rc = hls_parser_set_kind(p, t->kind, t->name);
            if (rc != KTH_OK) {
                return rc;
            }
        }
        if (t->fn == NULL) {
            return KTH_OK;
        }
        const char *value = colon != NULL ? colon + 1 : line + n;
        while (value < line + n && (*value == ' ' || *value == '\t')) {
            value++; /* "#EXT-X-TARGETDURATION: 10" is common enough to accept */
        }
        return t->fn(p, value, (size_t)(line + n - value));
    }
    return KTH_OK; /* unknown tag */
}

static int handle_uri(hls_parser *p, const char *line, size_t n)
{
    if (p->pl->kind == HLS_PLAYLIST_MASTER) {
        return hls_master_uri(p, line, n);
    }
    if (p->pl->kind == HLS_PLAYLIST_MEDIA) {
        return hls_media_uri(p, line, n);
    }
    char ex[HLS_EXCERPT_SIZE];
    return hls_parser_fail(p, KTH_ERR_FORMAT,
                           "URI '%s' without a preceding EXTINF or EXT-X-STREAM-INF",
                           hls_excerpt(ex, sizeof(ex), line, n));
}

/* ---- the body ---------------------------------------------------------------------------- */

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

static bool prefix_nocase(const char *s, size_t n, const char *word)
{
    size_t k = strlen(word);
    if (n < k) {
        return false;
    }
    for (size_t i = 0; i < k; i++) {
        char c = s[i];
        if (c >= 'A' && c <= 'Z') {
            c = (char)(c - 'A' + 'a');
        }
        if (c != word[i]) {
            return false;
        }
    }
    return true;
}

/* An error page served with status 200 is the usual thing found where a playlist should be. */
static bool looks_like_html(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && (is_blank(s[i]) || s[i] == '\n')) {
        i++;
    }
    if (i >= n || s[i] != '<') {
        return false;
    }
    size_t end = n - i > 4096 ? i + 4096 : n;
    for (size_t k = i; k < end; k++) {
        if (s[k] == '<' &&
            (prefix_nocase(s + k, end - k, "<!doctype html") ||
             prefix_nocase(s + k, end - k, "<html") || prefix_nocase(s + k, end - k, "<head") ||
             prefix_nocase(s + k, end - k, "<body"))) {
            return true;
        }
    }
    return false;
}

static int check_header(hls_parser *p, const char *s, size_t n)
{
    const char *eol = memchr(s, '\n', n);
    size_t len = eol != NULL ? (size_t)(eol - s) : n;
    while (len > 0 && is_blank(s[len - 1])) {
        len--;
    }
    if (len == 7 && memcmp(s, "#EXTM3U", 7) == 0) {
        return KTH_OK;
    }
    if (looks_like_html(s, n)) {
        p->line_no = 0;
        return hls_parser_fail(p, KTH_ERR_FORMAT, "expected a playlist, got HTML");
    }
    char ex[HLS_EXCERPT_SIZE];
    return hls_parser_fail(p, KTH_ERR_FORMAT, "expected #EXTM3U, got '%s'",
                           hls_excerpt(ex, sizeof(ex), s, len));
}

static int parse_body(hls_parser *p, const char *s, size_t n)
{
    if (n >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) {
        s += 3, n -= 3;
    }
    if (n == 0) {
        return hls_parser_fail(p, KTH_ERR_FORMAT, "empty body, expected a playlist");
    }
    p->line_no = 1;
    int rc = check_header(p, s, n);
    if (rc != KTH_OK) {
        return rc;
    }
    const char *nul = memchr(s, '\0', n);
    size_t pos = 0;
    for (p->line_no = 1; pos < n; p->line_no++) {
        const char *eol = memchr(s + pos, '\n', n - pos);
        size_t end = eol != NULL ? (size_t)(eol - s) : n;
        const char *line = s + pos;
        size_t len = end - pos;
        pos = eol != NULL ? end + 1 : n;
        if (len > p->lim.max_line_bytes) {
            return hls_parser_fail(p, KTH_ERR_LIMIT, "line is longer than the limit of %zu bytes",
                                   p->lim.max_line_bytes);
        }
        if (nul != NULL && nul >= line && nul < line + len) {
            return hls_parser_fail(p, KTH_ERR_FORMAT, "NUL byte in the playlist");
        }
        while (len > 0 && is_blank(line[len - 1])) {
            len--;
        }
        while (len > 0 && (line[0] == ' ' || line[0] == '\t')) {
            line++, len--;
        }
        if (p->line_no == 1 || len == 0) {
            continue; /* the header, already checked; blank lines */
        }
        if (line[0] == '#') {
            rc = len >= 4 && memcmp(line, "#EXT", 4) == 0 ? handle_tag(p, line, len) : KTH_OK;
        } else {
            rc = handle_uri(p, line, len);
        }
        if (rc != KTH_OK) {
            return rc;
        }
    }
    p->line_no = 0;
    if (p->pl->kind == HLS_PLAYLIST_MASTER) {
        return hls_master_finish(p);
    }
    if (p->pl->kind == HLS_PLAYLIST_MEDIA) {
        return hls_media_finish(p);
    }
    return hls_parser_fail(p, KTH_ERR_FORMAT,
                           "no EXTINF or EXT-X-STREAM-INF: neither a media nor a master playlist");
}

static void apply_limit(size_t *field, size_t fallback)
{
    if (*field == 0) {
        *field = fallback;
    }
}

/* Parses the text into a new model, which starts as `from`'s first `count` segments when
 * count > 0 (hls_playlist_parse_after). */
static int parse(const hls_playlist *from, size_t count, const uint8_t *bytes, size_t len,
                 const char *base_url, const hls_parse_limits *limits, hls_playlist **out,
                 char *err, size_t errlen)
{
    hls_parser p;
    memset(&p, 0, sizeof(p));
    p.err = err;
    p.errlen = errlen;
    if (err != NULL && errlen > 0) {
        err[0] = '\0';
    }
    if (out == NULL) {
        return hls_parser_fail(&p, KTH_ERR_INVALID_ARG, "no place for the result");
    }
    *out = NULL;
    if (bytes == NULL && len > 0) {
        return hls_parser_fail(&p, KTH_ERR_INVALID_ARG, "no playlist bytes");
    }
    if (base_url == NULL || !hls_url_is_absolute(base_url, strlen(base_url))) {
        return hls_parser_fail(&p, KTH_ERR_INVALID_ARG, "the base URL is not an absolute URL");
    }
    if (limits != NULL) {
        p.lim = *limits;
    }
    apply_limit(&p.lim.max_playlist_bytes, HLS_DEFAULT_MAX_PLAYLIST_BYTES);
    apply_limit(&p.lim.max_line_bytes, HLS_DEFAULT_MAX_LINE_BYTES);
    apply_limit(&p.lim.max_segments, HLS_DEFAULT_MAX_SEGMENTS);
    apply_limit(&p.lim.max_variants, HLS_DEFAULT_MAX_VARIANTS);
    apply_limit(&p.lim.max_renditions, HLS_DEFAULT_MAX_RENDITIONS);
    apply_limit(&p.lim.max_session_keys, HLS_DEFAULT_MAX_SESSION_KEYS);
    if (len > p.lim.max_playlist_bytes) {
        return hls_parser_fail(&p, KTH_ERR_LIMIT,
                               "playlist is %zu bytes, over the limit of %zu bytes", len,
                               p.lim.max_playlist_bytes);
    }

    hls_playlist *pl = platform_calloc(1, sizeof(*pl));
    if (pl == NULL) {
        return hls_parser_fail(&p, KTH_ERR_NO_MEMORY, "out of memory");
    }
    p.pl = pl;
    pl->media.dur_width_ = 1;
    p.base_url = base_url;
    p.map.index = HLS_NONE;
    int rc = KTH_OK;
    pl->url = hls_parser_strdup(&p, base_url, strlen(base_url));
    if (pl->url == NULL) {
        rc = KTH_ERR_NO_MEMORY;
    } else if (from != NULL) {
        rc = hls_media_seed(&p, from, count, count_extinf((const char *)bytes, len, SIZE_MAX));
    } else {
        reserve_segments(&p, (const char *)bytes, len);
    }
    if (rc == KTH_OK) {
        rc = parse_body(&p, (const char *)bytes, len);
    }
    hls_media_release(&p);
    if (rc != KTH_OK) {
        hls_playlist_free(pl);
        return rc;
    }
    *out = pl;
    return KTH_OK;
}

int hls_playlist_parse(const uint8_t *bytes, size_t len, const char *base_url,
                       const hls_parse_limits *limits, hls_playlist **out, char *err, size_t errlen)
{
    return parse(NULL, 0, bytes, len, base_url, limits, out, err, errlen);
}

int hls_playlist_parse_after(const hls_playlist *from, size_t count, const uint8_t *bytes,
                             size_t len, const char *base_url, const hls_parse_limits *limits,
                             hls_playlist **out, char *err, size_t errlen)
{
    if (from == NULL) {
        if (err != NULL && errlen > 0) {
            snprintf(err, errlen, "no playlist to start from");
        }
        if (out != NULL) {
            *out = NULL;
        }
        return KTH_ERR_INVALID_ARG;
    }
    return parse(from, count, bytes, len, base_url, limits, out, err, errlen);
}

void hls_playlist_free(hls_playlist *pl)
{
    if (pl == NULL) {
        return;
    }
    platform_free(pl->master.variants);
    platform_free(pl->master.renditions);
    platform_free(pl->master.session_keys);
    platform_free(pl->media.runs_);
    platform_free(pl->media.durations_);
    platform_free(pl->media.duration_of_);
    platform_free(pl->media.starts_);
    platform_free(pl->media.uris_);
    platform_free(pl->media.uri_runs_);
    platform_free(pl->media.ranges_);
    platform_free(pl->media.titles_);
    platform_free(pl->media.dates_);
    platform_free(pl->media.keys);
    platform_free(pl->media.maps);
    struct hls_string_block *b = pl->strings_;
    while (b != NULL) {
        struct hls_string_block *next = b->next;
        platform_free(b);
        b = next;
    }
    platform_free(pl);
}

/* ---- helpers over a model ---------------------------------------------------------------- */

void hls_key_iv(const hls_key *key, uint64_t sequence, uint8_t iv[16])
{
    if (key->has_iv) {
        memcpy(iv, key->iv, 16);
        return;
    }
    memset(iv, 0, 8);
    for (int i = 0; i < 8; i++) {
        iv[15 - i] = (uint8_t)(sequence >> (8 * i));
    }
}

int hls_playlist_segment_iv(const hls_playlist *pl, size_t index, uint8_t iv[16])
{
    if (pl == NULL || iv == NULL || pl->kind != HLS_PLAYLIST_MEDIA ||
        index >= pl->media.segment_count) {
        return KTH_ERR_INVALID_ARG;
    }
    hls_segment seg = hls_media_segment(&pl->media, index);
    if (seg.key == HLS_NONE || seg.key >= pl->media.key_count) {
        return KTH_ERR_INVALID_ARG;
    }
    hls_key_iv(&pl->media.keys[seg.key], seg.sequence, iv);
    return KTH_OK;
}

/* The title of segment i, which has one. */
static const char *segment_title(const hls_media_playlist *m, size_t i)
{
    size_t lo = 0, hi = m->title_count_;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (m->titles_[mid].segment < i) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo < m->title_count_ && m->titles_[lo].segment == i ? m->titles_[lo].title : NULL;
}

/* Segment i's duration. */
static double segment_duration(const hls_media_playlist *m, size_t i)
{
    switch (m->dur_width_) {
    case 1:
        return m->durations_[((const uint8_t *)m->duration_of_)[i]];
    case 2:
        return m->durations_[((const uint16_t *)m->duration_of_)[i]];
    default:
        return m->durations_[((const uint32_t *)m->duration_of_)[i]];
    }
}

/* Segment i's start: its group's, plus the durations before it in the group, in order. */
static double segment_start(const hls_media_playlist *m, size_t i)
{
    double start = m->starts_[i >> HLS_START_SHIFT];
    for (size_t j = i & ~(HLS_START_EVERY - 1); j < i; j++) {
        start += segment_duration(m, j);
    }
    return start;
}

hls_segment_rec hls_media_record(const hls_media_playlist *m, size_t i)
{
    size_t lo = 0, hi = m->run_count_; /* the last run whose first <= i */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (m->runs_[mid].first <= i) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    hls_segment_rec r = m->runs_[lo].rec;
    if (r.bits & HLS_SEG_URI_STEP) {
        r.uri += (uint32_t)(i - m->runs_[lo].first);
        r.bits &= ~HLS_SEG_URI_STEP;
    }
    return r;
}

/* Fills seg's program time from the last date tag at or before segment i. */
static void segment_date(const hls_media_playlist *m, size_t i, hls_segment *seg)
{
    size_t lo = 0, hi = m->date_count_; /* the first tag after i */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (m->dates_[mid].segment <= i) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    if (lo == 0) {
        return;
    }
    const hls_segment_date *d = &m->dates_[lo - 1];
    double since = segment_start(m, i) - segment_start(m, d->segment);
    seg->program_time_ms = d->ms + (int64_t)(since * 1000.0 + 0.5);
    seg->date_tag = d->segment == i;
}

hls_segment hls_media_segment(const hls_media_playlist *m, size_t i)
{
    const hls_segment_rec rec = hls_media_record(m, i), *r = &rec;
    uint32_t flags = r->bits & ((1u << HLS_SEG_FLAG_BITS) - 1);
    hls_segment seg = {
        .title = flags & HLS_SEG_TITLE ? segment_title(m, i) : NULL,
        .duration = segment_duration(m, i),
        .start = segment_start(m, i),
        .sequence = m->media_sequence + (uint64_t)i,
        .discontinuity_sequence = m->discontinuity_sequence + (r->bits >> HLS_SEG_FLAG_BITS),
        .discontinuity = (flags & HLS_SEG_DISCONTINUITY) != 0,
        .gap = (flags & HLS_SEG_GAP) != 0,
        .key = r->key == UINT32_MAX ? HLS_NONE : r->key,
        .map = r->map == UINT32_MAX ? HLS_NONE : r->map,
    };
    if (flags & HLS_SEG_RANGE) {
        const hls_segment_range *range = &m->ranges_[i - m->ranges_first_];
        seg.range = (hls_byterange){true, range->offset, range->length};
    }
    if (m->date_count_ > 0) {
        segment_date(m, i, &seg);
    }
    return seg;
}

/* The digits segment i of run u has in its URI, NUL-terminated; returns their count. Written
 * by hand: every segment of a run is checked through here while a playlist is parsed. */
static int run_digits(const hls_uri_run *u, size_t i, char digits[24])
{
    uint64_t v = u->number + (uint64_t)(i - u->first);
    char rev[24];
    int n = 0;
    do {
        rev[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0);
    while (n < (int)u->width && n < 20) {
        rev[n++] = '0';
    }
    for (int k = 0; k < n; k++) {
        digits[k] = rev[n - 1 - k];
    }
    digits[n] = '\0';
    return n;
}

char *hls_media_segment_uri(const hls_media_playlist *m, size_t i)
{
    const hls_segment_rec rec = hls_media_record(m, i), *r = &rec;
    if (!(r->bits & HLS_SEG_TEMPLATE)) {
        return platform_strdup(m->uris_[r->uri]);
    }
    const hls_uri_run *u = &m->uri_runs_[r->uri];
    char digits[24];
    int n = run_digits(u, i, digits);
    const char *suffix = u->base + u->suffix_at;
    size_t suffix_len = strlen(suffix);
    char *s = platform_malloc(u->prefix_len + (size_t)n + suffix_len + 1);
    if (s == NULL) {
        return NULL;
    }
    memcpy(s, u->base, u->prefix_len);
    memcpy(s + u->prefix_len, digits, (size_t)n);
    memcpy(s + u->prefix_len + (size_t)n, suffix, suffix_len + 1);
    return s;
}

bool hls_media_segment_uri_is(const hls_media_playlist *m, size_t i, const char *uri)
{
    const hls_segment_rec rec = hls_media_record(m, i), *r = &rec;
    if (!(r->bits & HLS_SEG_TEMPLATE)) {
        return strcmp(m->uris_[r->uri], uri) == 0;
    }
    return hls_uri_run_is(&m->uri_runs_[r->uri], i, uri);
}

bool hls_uri_run_is(const hls_uri_run *u, size_t i, const char *uri)
{
    char digits[24];
    size_t n = (size_t)run_digits(u, i, digits);
    return strncmp(uri, u->base, u->prefix_len) == 0 &&
           strncmp(uri + u->prefix_len, digits, n) == 0 &&
           strcmp(uri + u->prefix_len + n, u->base + u->suffix_at) == 0;
}

size_t hls_playlist_variants_by_bandwidth(const hls_playlist *pl, size_t *order, size_t cap)
{
    if (pl == NULL || order == NULL || pl->kind != HLS_PLAYLIST_MASTER) {
        return 0;
    }
    const hls_variant *v = pl->master.variants;
    size_t count = pl->master.variant_count;
    size_t written = 0;
    /* Insertion sort into the first `cap` places: stable, and variant counts are small. */
    for (size_t i = 0; i < count; i++) {
        size_t k = written;
        while (k > 0 && v[order[k - 1]].bandwidth > v[i].bandwidth) {
            k--;
        }
        if (k >= cap) {
            continue;
        }
        size_t last = written < cap ? written : cap - 1;
        memmove(order + k + 1, order + k, (last - k) * sizeof(*order));
        order[k] = i;
        if (written < cap) {
            written++;
        }
    }
    return written;
}

const hls_rendition *hls_playlist_audio_rendition(const hls_playlist *pl, const char *group_id)
{
    if (pl == NULL || group_id == NULL || pl->kind != HLS_PLAYLIST_MASTER) {
        return NULL;
    }
    const hls_rendition *first = NULL, *autoselect = NULL;
    for (size_t i = 0; i < pl->master.rendition_count; i++) {
        const hls_rendition *r = &pl->master.renditions[i];
        if (r->type != HLS_MEDIA_AUDIO || strcmp(r->group_id, group_id) != 0) {
            continue;
        }
        if (r->is_default) {
            return r;
        }
        if (autoselect == NULL && r->autoselect) {
            autoselect = r;
        }
        if (first == NULL) {
            first = r;
        }
    }
    return autoselect != NULL ? autoselect : first;
}
