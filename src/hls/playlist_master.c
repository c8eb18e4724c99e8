/*
 * hls/playlist_master.c — master playlist tags: EXT-X-STREAM-INF (+ its URI line),
 * EXT-X-MEDIA and EXT-X-SESSION-KEY.
 *
 * Invariants: a variant enters the model only with its URI line; counts never exceed the
 * limits; every string stored is a copy in the model's storage.
 */
#include "hls/playlist_internal.h"

#include <kithara/status.h>

#include <string.h>

#define STREAM_INF "EXT-X-STREAM-INF"
#define MEDIA      "EXT-X-MEDIA"

/* True when a CODECS list names a codec that is video (RFC 6381 sample entry names). */
static bool codecs_have_video(const char *codecs)
{
    static const char *const video[] = {"avc1", "avc3", "hvc1", "hev1", "dvh1",
                                        "dvhe", "vp08", "vp09", "av01", "mp4v"};
    const char *p = codecs;
    while (*p != '\0') {
        while (*p == ' ' || *p == ',') {
            p++;
        }
        const char *start = p;
        while (*p != '\0' && *p != ',' && *p != '.' && *p != ' ') {
            p++;
        }
        size_t n = (size_t)(p - start);
        for (size_t i = 0; i < sizeof(video) / sizeof(video[0]); i++) {
            if (n == 4 && memcmp(start, video[i], 4) == 0) {
                return true;
            }
        }
        while (*p != '\0' && *p != ',') {
            p++;
        }
    }
    return false;
}

static int attr_string(hls_parser *p, const char *tag, const hls_attr *a, const char **out)
{
    int rc = hls_parser_attr_quoted(p, tag, a);
    if (rc != KTH_OK) {
        return rc;
    }
    *out = hls_parser_strdup(p, a->value, a->value_len);
    return *out != NULL ? KTH_OK : KTH_ERR_NO_MEMORY;
}

int hls_master_stream_inf(hls_parser *p, const char *s, size_t n)
{
    if (p->stream_inf_pending) {
        return hls_parser_fail(p, KTH_ERR_FORMAT, STREAM_INF " on line %zu has no URI line",
                               p->pending_variant.line);
    }
    if (p->pl->master.variant_count >= p->lim.max_variants) {
        return hls_parser_fail(p, KTH_ERR_LIMIT, "more than %zu variant streams",
                               p->lim.max_variants);
    }
    hls_variant v;
    memset(&v, 0, sizeof(v));
    v.line = p->line_no;
    bool has_bandwidth = false;
    hls_attr_reader r;
    hls_attr a;
    hls_attr_reader_init(&r, s, n);
    int rc;
    char ex[HLS_EXCERPT_SIZE];
    while ((rc = hls_parser_next_attr(p, STREAM_INF, &r, &a)) == 1) {
        rc = KTH_OK;
        if (hls_attr_is(&a, "BANDWIDTH")) {
            rc = hls_parser_attr_integer(p, STREAM_INF, &a, &v.bandwidth);
            has_bandwidth = true;
        } else if (hls_attr_is(&a, "AVERAGE-BANDWIDTH")) {
            rc = hls_parser_attr_integer(p, STREAM_INF, &a, &v.average_bandwidth);
        } else if (hls_attr_is(&a, "CODECS")) {
            rc = attr_string(p, STREAM_INF, &a, &v.codecs);
        } else if (hls_attr_is(&a, "AUDIO")) {
            rc = attr_string(p, STREAM_INF, &a, &v.audio_group);
        } else if (hls_attr_is(&a, "VIDEO")) {
            rc = attr_string(p, STREAM_INF, &a, &v.video_group);
        } else if (hls_attr_is(&a, "RESOLUTION")) {
            if (a.quoted || !hls_parse_resolution(a.value, a.value_len, &v.width, &v.height)) {
                return hls_parser_fail(p, KTH_ERR_FORMAT,
                                       STREAM_INF " RESOLUTION '%s' is not <width>x<height>",
                                       hls_excerpt(ex, sizeof(ex), a.value, a.value_len));
            }
            v.has_resolution = true;
        } else if (hls_attr_is(&a, "FRAME-RATE")) {
            if (a.quoted || !hls_parse_decimal_float(a.value, a.value_len, &v.frame_rate)) {
                return hls_parser_fail(p, KTH_ERR_FORMAT,
                                       STREAM_INF " FRAME-RATE '%s' is not a decimal number",
                                       hls_excerpt(ex, sizeof(ex), a.value, a.value_len));
            }
        }
        if (rc != KTH_OK) {
            return rc;
        }
    }
    if (rc < 0) {
        return rc;
    }
    if (!has_bandwidth) {
        return hls_parser_fail(p, KTH_ERR_FORMAT, STREAM_INF " has no BANDWIDTH");
    }
    v.has_video = v.has_resolution || v.frame_rate > 0 || v.video_group != NULL ||
                  (v.codecs != NULL && codecs_have_video(v.codecs));
    p->pending_variant = v;
    p->stream_inf_pending = true;
    return KTH_OK;
}

int hls_master_uri(hls_parser *p, const char *s, size_t n)
{
    if (!p->stream_inf_pending) {
        char ex[HLS_EXCERPT_SIZE];
        return hls_parser_fail(p, KTH_ERR_FORMAT, "URI '%s' without a preceding " STREAM_INF,
                               hls_excerpt(ex, sizeof(ex), s, n));
    }
    hls_master_playlist *m = &p->pl->master;
    hls_variant *grown =
        hls_parser_grow(p, m->variants, &p->variant_cap, m->variant_count + 1, sizeof(*grown));
    if (grown == NULL) {
        return KTH_ERR_NO_MEMORY;
    }
    m->variants = grown;
    p->pending_variant.uri = hls_parser_resolve(p, s, n);
    if (p->pending_variant.uri == NULL) {
        return KTH_ERR_NO_MEMORY;
    }
    m->variants[m->variant_count++] = p->pending_variant;
    p->stream_inf_pending = false;
    return KTH_OK;
}

/* Spans of one EXT-X-MEDIA, copied into the model only once the tag is known to be kept. */
typedef struct media_attrs {
    hls_attr uri, group_id, language, assoc_language, name, instream_id, channels;
} media_attrs;

static int media_type(hls_parser *p, const hls_attr *a, int *type)
{
    if (a->quoted) {
        return hls_parser_fail(p, KTH_ERR_FORMAT,
                               MEDIA " attribute TYPE must be an enumerated string");
    }
    if (hls_attr_enum_is(a, "AUDIO")) {
        *type = HLS_MEDIA_AUDIO;
    } else if (hls_attr_enum_is(a, "VIDEO")) {
        *type = HLS_MEDIA_VIDEO;
    } else if (hls_attr_enum_is(a, "SUBTITLES")) {
        *type = HLS_MEDIA_SUBTITLES;
    } else if (hls_attr_enum_is(a, "CLOSED-CAPTIONS")) {
        *type = HLS_MEDIA_CLOSED_CAPTIONS;
    } else {
        *type = 0; /* a type from a later revision: the tag is skipped */
    }
    return KTH_OK;
}

static int copy_optional(hls_parser *p, const hls_attr *a, const char **out)
{
    if (a->value == NULL) {
        *out = NULL;
        return KTH_OK;
    }
    *out = hls_parser_strdup(p, a->value, a->value_len);
    return *out != NULL ? KTH_OK : KTH_ERR_NO_MEMORY;
}

/* Reads the attributes of an EXT-X-MEDIA line: the strings into *m, the flags into *out, the
 * TYPE into *type (*has_type when given). KTH_OK or the parser's failure. */
static int read_media_attrs(hls_parser *p, const char *s, size_t n, media_attrs *m,
                            hls_rendition *out, int *type, bool *has_type)
{
    hls_attr_reader r;
    hls_attr a;
    hls_attr_reader_init(&r, s, n);
    int rc;
    while ((rc = hls_parser_next_attr(p, MEDIA, &r, &a)) == 1) {
        rc = KTH_OK;
        hls_attr *keep = NULL;
        if (hls_attr_is(&a, "TYPE")) {
            rc = media_type(p, &a, type);
            *has_type = true;
        } else if (hls_attr_is(&a, "URI")) {
            keep = &m->uri;
        } else if (hls_attr_is(&a, "GROUP-ID")) {
            keep = &m->group_id;
        } else if (hls_attr_is(&a, "LANGUAGE")) {
            keep = &m->language;
        } else if (hls_attr_is(&a, "ASSOC-LANGUAGE")) {
            keep = &m->assoc_language;
        } else if (hls_attr_is(&a, "NAME")) {
            keep = &m->name;
        } else if (hls_attr_is(&a, "INSTREAM-ID")) {
            keep = &m->instream_id;
        } else if (hls_attr_is(&a, "CHANNELS")) {
            keep = &m->channels;
        } else if (hls_attr_is(&a, "DEFAULT")) {
            rc = hls_parser_attr_yes_no(p, MEDIA, &a, &out->is_default);
        } else if (hls_attr_is(&a, "AUTOSELECT")) {
            rc = hls_parser_attr_yes_no(p, MEDIA, &a, &out->autoselect);
        } else if (hls_attr_is(&a, "FORCED")) {
            rc = hls_parser_attr_yes_no(p, MEDIA, &a, &out->forced);
        }
        if (keep != NULL) {
            rc = hls_parser_attr_quoted(p, MEDIA, &a);
            *keep = a;
        }
        if (rc != KTH_OK) {
            return rc;
        }
    }
    return rc < 0 ? rc : KTH_OK;
}

/* Copies the strings of *m into *out and resolves its URI. KTH_OK or KTH_ERR_NO_MEMORY (or the
 * parser's failure). */
static int fill_rendition(hls_parser *p, const media_attrs *m, hls_rendition *out)
{
    int rc;
    if ((rc = copy_optional(p, &m->group_id, &out->group_id)) != KTH_OK ||
        (rc = copy_optional(p, &m->name, &out->name)) != KTH_OK ||
        (rc = copy_optional(p, &m->language, &out->language)) != KTH_OK ||
        (rc = copy_optional(p, &m->assoc_language, &out->assoc_language)) != KTH_OK ||
        (rc = copy_optional(p, &m->instream_id, &out->instream_id)) != KTH_OK ||
        (rc = copy_optional(p, &m->channels, &out->channels)) != KTH_OK) {
        return rc;
    }
    /* Closed captions live inside the video; a URI there is meaningless (RFC 8216 §4.3.4.1). */
    if (m->uri.value != NULL && out->type != HLS_MEDIA_CLOSED_CAPTIONS) {
        out->uri = hls_parser_resolve(p, m->uri.value, m->uri.value_len);
        if (out->uri == NULL) {
            return KTH_ERR_NO_MEMORY;
        }
    }
    return KTH_OK;
}

int hls_master_media(hls_parser *p, const char *s, size_t n)
{
    if (p->pl->master.rendition_count >= p->lim.max_renditions) {
        return hls_parser_fail(p, KTH_ERR_LIMIT, "more than %zu " MEDIA " renditions",
                               p->lim.max_renditions);
    }
    media_attrs m;
    memset(&m, 0, sizeof(m));
    hls_rendition out;
    memset(&out, 0, sizeof(out));
    out.line = p->line_no;
    bool has_type = false;
    int type = 0;
    int rc = read_media_attrs(p, s, n, &m, &out, &type, &has_type);
    if (rc != KTH_OK) {
        return rc;
    }
    if (!has_type) {
        return hls_parser_fail(p, KTH_ERR_FORMAT, MEDIA " has no TYPE");
    }
    if (m.group_id.value == NULL) {
        return hls_parser_fail(p, KTH_ERR_FORMAT, MEDIA " has no GROUP-ID");
    }
    if (m.name.value == NULL) {
        return hls_parser_fail(p, KTH_ERR_FORMAT, MEDIA " has no NAME");
    }
    if (type == 0) {
        return KTH_OK;
    }
    out.type = (hls_media_type)type;
    if ((rc = fill_rendition(p, &m, &out)) != KTH_OK) {
        return rc;
    }
    hls_master_playlist *mp = &p->pl->master;
    hls_rendition *grown = hls_parser_grow(p, mp->renditions, &p->rendition_cap,
                                           mp->rendition_count + 1, sizeof(*grown));
    if (grown == NULL) {
        return KTH_ERR_NO_MEMORY;
    }
    mp->renditions = grown;
    mp->renditions[mp->rendition_count++] = out;
    return KTH_OK;
}

int hls_master_session_key(hls_parser *p, const char *s, size_t n)
{
    hls_master_playlist *m = &p->pl->master;
    if (m->session_key_count >= p->lim.max_session_keys) {
        return hls_parser_fail(p, KTH_ERR_LIMIT, "more than %zu EXT-X-SESSION-KEY tags",
                               p->lim.max_session_keys);
    }
    hls_key_slot slot;
    bool is_none = false;
    int rc = hls_parse_key_attrs(p, "EXT-X-SESSION-KEY", s, n, &slot, &is_none);
    if (rc != KTH_OK) {
        return rc;
    }
    if (is_none) {
        return hls_parser_fail(p, KTH_ERR_FORMAT, "EXT-X-SESSION-KEY METHOD must not be NONE");
    }
    slot.key.uri = hls_parser_resolve(p, slot.key.uri, strlen(slot.key.uri));
    if (slot.key.uri == NULL) {
        return KTH_ERR_NO_MEMORY;
    }
    hls_key *grown = hls_parser_grow(p, m->session_keys, &p->session_key_cap,
                                     m->session_key_count + 1, sizeof(*grown));
    if (grown == NULL) {
        return KTH_ERR_NO_MEMORY;
    }
    m->session_keys = grown;
    m->session_keys[m->session_key_count++] = slot.key;
    return KTH_OK;
}

int hls_master_finish(hls_parser *p)
{
    if (p->stream_inf_pending) {
        p->line_no = p->pending_variant.line;
        return hls_parser_fail(p, KTH_ERR_FORMAT, STREAM_INF " has no URI line after it");
    }
    if (p->pl->master.variant_count == 0) {
        return hls_parser_fail(p, KTH_ERR_FORMAT, "master playlist has no " STREAM_INF " variants");
    }
    return KTH_OK;
}
