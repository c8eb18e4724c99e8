/*
 * hls/playlist_media.c — media playlist tags and segment assembly.
 *
 * Tags before a URI line (EXTINF, EXT-X-BYTERANGE, EXT-X-DISCONTINUITY, EXT-X-GAP) describe
 * the next segment only; EXT-X-KEY and EXT-X-MAP stay in force for every segment after them
 * until replaced. A segment is assembled when its URI line arrives, and only then do the key
 * and map in force become entries of the model (resolved, deduplicated against the last one).
 *
 * Invariants: segment i has sequence media_sequence + i and start = sum of durations before
 * it; no sum (sequence numbers, byte offsets, durations) overflows; every range without an
 * offset continues the last range of the same resource URI, or the parse fails naming the line.
 */
#include "hls/playlist_internal.h"

#include "hls/url.h"
#include "platform/mem.h"

#include <kithara/status.h>

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define KEY "EXT-X-KEY"
#define MAP "EXT-X-MAP"

/* ---- keys -------------------------------------------------------------------------------- */

int hls_parse_key_attrs(hls_parser *p, const char *tag, const char *s, size_t n, hls_key_slot *slot,
                        bool *is_none)
{
    memset(slot, 0, sizeof(*slot));
    *is_none = false;
    slot->index = HLS_NONE;
    slot->key.keyformat = "identity"; /* the defaults when the attributes are absent */
    slot->key.keyformat_versions = "1";
    slot->key.line = p->line_no;
    hls_attr method = {0}, uri = {0}, keyformat = {0}, versions = {0};
    hls_attr_reader r;
    hls_attr a;
    hls_attr_reader_init(&r, s, n);
    int rc;
    char ex[HLS_EXCERPT_SIZE];
    while ((rc = hls_parser_next_attr(p, tag, &r, &a)) == 1) {
        rc = KTH_OK;
        if (hls_attr_is(&a, "METHOD")) {
            if (a.quoted) {
                return hls_parser_fail(p, KTH_ERR_FORMAT,
                                       "%s attribute METHOD must be an enumerated string", tag);
            }
            method = a;
        } else if (hls_attr_is(&a, "URI")) {
            rc = hls_parser_attr_quoted(p, tag, &a);
            uri = a;
        } else if (hls_attr_is(&a, "IV")) {
            if (a.quoted || !hls_parse_hex128(a.value, a.value_len, slot->key.iv)) {
                return hls_parser_fail(p, KTH_ERR_FORMAT,
                                       "%s IV '%s' is not a 128-bit hexadecimal number", tag,
                                       hls_excerpt(ex, sizeof(ex), a.value, a.value_len));
            }
            slot->key.has_iv = true;
        } else if (hls_attr_is(&a, "KEYFORMAT")) {
            rc = hls_parser_attr_quoted(p, tag, &a);
            keyformat = a;
        } else if (hls_attr_is(&a, "KEYFORMATVERSIONS")) {
            rc = hls_parser_attr_quoted(p, tag, &a);
            versions = a;
        }
        if (rc != KTH_OK) {
            return rc;
        }
    }
    if (rc < 0) {
        return rc;
    }
    if (method.value == NULL) {
        return hls_parser_fail(p, KTH_ERR_FORMAT, "%s has no METHOD", tag);
    }
    *is_none = hls_attr_enum_is(&method, "NONE");
    if (*is_none) {
        return KTH_OK;
    }
    if (hls_attr_enum_is(&method, "AES-128")) {
        slot->key.method = HLS_KEY_AES_128;
    } else if (hls_attr_enum_is(&method, "SAMPLE-AES")) {
        slot->key.method = HLS_KEY_SAMPLE_AES;
    } else {
        slot->key.method = HLS_KEY_OTHER;
    }
    if (uri.value == NULL) {
        return hls_parser_fail(p, KTH_ERR_FORMAT, "%s METHOD=%s has no URI", tag,
                               hls_excerpt(ex, sizeof(ex), method.value, method.value_len));
    }
    slot->key.method_name = hls_parser_strdup(p, method.value, method.value_len);
    slot->key.uri = hls_parser_strdup(p, uri.value, uri.value_len);
    if (keyformat.value != NULL) {
        slot->key.keyformat = hls_parser_strdup(p, keyformat.value, keyformat.value_len);
    }
    if (versions.value != NULL) {
        slot->key.keyformat_versions = hls_parser_strdup(p, versions.value, versions.value_len);
    }
    if (slot->key.method_name == NULL || slot->key.uri == NULL || slot->key.keyformat == NULL ||
        slot->key.keyformat_versions == NULL) {
        return KTH_ERR_NO_MEMORY;
    }
    return KTH_OK;
}

int hls_media_key(hls_parser *p, const char *s, size_t n)
{
    hls_key_slot slot;
    bool is_none = false;
    int rc = hls_parse_key_attrs(p, KEY, s, n, &slot, &is_none);
    if (rc != KTH_OK) {
        return rc;
    }
    if (is_none) {
        /* Whatever formats were in force, the segments that follow are clear. */
        p->keys_in_force_count = 0;
        return KTH_OK;
    }
    slot.serial = ++p->key_serial;
    /* A key replaces the one in force with the same KEYFORMAT (RFC 8216 §4.3.2.4). */
    for (size_t i = 0; i < p->keys_in_force_count; i++) {
        if (strcmp(p->keys_in_force[i].key.keyformat, slot.key.keyformat) == 0) {
            p->keys_in_force[i] = slot;
            return KTH_OK;
        }
    }
    if (p->keys_in_force_count >= HLS_MAX_KEYFORMATS) {
        return hls_parser_fail(p, KTH_ERR_LIMIT, "more than %d KEYFORMATs in force at once",
                               HLS_MAX_KEYFORMATS);
    }
    p->keys_in_force[p->keys_in_force_count++] = slot;
    return KTH_OK;
}

/* The key a segment is said to be under: the "identity" one if in force (the only format a
 * client can decrypt without a DRM system), else the first other one, so a segment under only
 * an unusable format is reported as encrypted rather than taken for clear. */
static hls_key_slot *key_in_force(hls_parser *p)
{
    for (size_t i = 0; i < p->keys_in_force_count; i++) {
        if (strcmp(p->keys_in_force[i].key.keyformat, "identity") == 0) {
            return &p->keys_in_force[i];
        }
    }
    return p->keys_in_force_count > 0 ? &p->keys_in_force[0] : NULL;
}

static int use_key(hls_parser *p, hls_key_slot *slot, size_t *index)
{
    if (slot->index != HLS_NONE) {
        *index = slot->index;
        return KTH_OK;
    }
    hls_media_playlist *m = &p->pl->media;
    hls_key key = slot->key;
    key.uri = hls_parser_resolve(p, slot->key.uri, strlen(slot->key.uri));
    if (key.uri == NULL) {
        return KTH_ERR_NO_MEMORY;
    }
    hls_key *grown = hls_parser_grow(p, m->keys, &p->key_cap, m->key_count + 1, sizeof(*grown));
    if (grown == NULL) {
        return KTH_ERR_NO_MEMORY;
    }
    m->keys = grown;
    m->keys[m->key_count] = key;
    slot->index = m->key_count++;
    *index = slot->index;
    return KTH_OK;
}

/* ---- byte ranges by resource ------------------------------------------------------------- */

static uint64_t hash_string(const char *s)
{
    uint64_t h = 0xcbf29ce484222325u; /* FNV-1a */
    for (; *s != '\0'; s++) {
        h = (h ^ (unsigned char)*s) * 0x100000001b3u;
    }
    return h;
}

static hls_range_entry *range_slot(hls_range_entry *table, size_t cap, const char *uri,
                                   uint64_t hash)
{
    size_t i = (size_t)hash & (cap - 1);
    while (table[i].uri != NULL && (table[i].hash != hash || strcmp(table[i].uri, uri) != 0)) {
        i = (i + 1) & (cap - 1);
    }
    return &table[i];
}

static const hls_range_entry *range_find(const hls_parser *p, const char *uri)
{
    if (p->range_count == 0) {
        return NULL;
    }
    hls_range_entry *e = range_slot(p->ranges, p->range_cap, uri, hash_string(uri));
    return e->uri != NULL ? e : NULL;
}

static int range_record(hls_parser *p, const char *uri, uint64_t end)
{
    if ((p->range_count + 1) * 2 > p->range_cap) {
        size_t cap = p->range_cap == 0 ? 64 : p->range_cap * 2;
        if (cap > SIZE_MAX / sizeof(hls_range_entry) || cap < p->range_cap) {
            return hls_parser_fail(p, KTH_ERR_NO_MEMORY, "out of memory");
        }
        hls_range_entry *table = platform_calloc(cap, sizeof(*table));
        if (table == NULL) {
            return hls_parser_fail(p, KTH_ERR_NO_MEMORY, "out of memory");
        }
        for (size_t i = 0; i < p->range_cap; i++) {
            if (p->ranges[i].uri != NULL) {
                *range_slot(table, cap, p->ranges[i].uri, p->ranges[i].hash) = p->ranges[i];
            }
        }
        platform_free(p->ranges);
        p->ranges = table;
        p->range_cap = cap;
    }
    uint64_t hash = hash_string(uri);
    hls_range_entry *e = range_slot(p->ranges, p->range_cap, uri, hash);
    if (e->uri == NULL) {
        e->uri = uri;
        e->hash = hash;
        p->range_count++;
    }
    e->end = end;
    return KTH_OK;
}

void hls_media_release(hls_parser *p)
{
    platform_free(p->ranges);
    p->ranges = NULL;
    p->range_cap = p->range_count = 0;
    platform_free(p->dur_hash);
    p->dur_hash = NULL;
    p->dur_hash_cap = 0;
}

/* ---- maps -------------------------------------------------------------------------------- */

static int parse_range(hls_parser *p, const char *tag, const char *s, size_t n, hls_byterange *out,
                       bool *has_offset)
{
    char ex[HLS_EXCERPT_SIZE];
    uint64_t length = 0, offset = 0;
    if (!hls_parse_byterange(s, n, &length, has_offset, &offset)) {
        return hls_parser_fail(p, KTH_ERR_FORMAT, "%s '%s' is not <length>[@<offset>]", tag,
                               hls_excerpt(ex, sizeof(ex), s, n));
    }
    if (length == 0) {
        return hls_parser_fail(p, KTH_ERR_FORMAT, "%s length is 0", tag);
    }
    if (*has_offset && offset > UINT64_MAX - length) {
        return hls_parser_fail(p, KTH_ERR_FORMAT, "%s %s: offset + length overflows", tag,
                               hls_excerpt(ex, sizeof(ex), s, n));
    }
    out->present = true;
    out->length = length;
    out->offset = offset;
    return KTH_OK;
}

int hls_media_map(hls_parser *p, const char *s, size_t n)
{
    hls_map_slot map;
    memset(&map, 0, sizeof(map));
    map.present = true;
    map.line = p->line_no;
    map.index = HLS_NONE;
    hls_attr uri = {0};
    hls_attr_reader r;
    hls_attr a;
    hls_attr_reader_init(&r, s, n);
    int rc;
    while ((rc = hls_parser_next_attr(p, MAP, &r, &a)) == 1) {
        rc = KTH_OK;
        if (hls_attr_is(&a, "URI")) {
            rc = hls_parser_attr_quoted(p, MAP, &a);
            uri = a;
        } else if (hls_attr_is(&a, "BYTERANGE")) {
            bool has_offset = false;
            rc = hls_parser_attr_quoted(p, MAP, &a);
            if (rc == KTH_OK) {
                rc =
                    parse_range(p, MAP " BYTERANGE", a.value, a.value_len, &map.range, &has_offset);
            }
        }
        if (rc != KTH_OK) {
            return rc;
        }
    }
    if (rc < 0) {
        return rc;
    }
    if (uri.value == NULL) {
        return hls_parser_fail(p, KTH_ERR_FORMAT, MAP " has no URI");
    }
    hls_key_slot *key = key_in_force(p);
    if (key != NULL) {
        if (key->key.method == HLS_KEY_AES_128 && !key->key.has_iv) {
            return hls_parser_fail(p, KTH_ERR_FORMAT,
                                   MAP " is under the AES-128 key of line %zu, which has no IV "
                                       "(required for an encrypted init section)",
                                   key->key.line);
        }
        map.has_key = true;
        map.key = *key;
    }
    map.raw_uri = hls_parser_strdup(p, uri.value, uri.value_len);
    if (map.raw_uri == NULL) {
        return KTH_ERR_NO_MEMORY;
    }
    p->map = map;
    return KTH_OK;
}

/* Makes the map in force an entry of the model (once) and returns its index. */
static int use_map(hls_parser *p, size_t *index)
{
    hls_map_slot *slot = &p->map;
    if (slot->index != HLS_NONE) {
        *index = slot->index;
        return KTH_OK;
    }
    hls_media_playlist *m = &p->pl->media;
    hls_map map;
    memset(&map, 0, sizeof(map));
    map.range = slot->range;
    map.line = slot->line;
    map.key = HLS_NONE;
    if (slot->has_key) {
        /* Share the entry with the segments when the key tag is still in force. */
        hls_key_slot *in_force = NULL;
        for (size_t i = 0; i < p->keys_in_force_count; i++) {
            if (p->keys_in_force[i].serial == slot->key.serial) {
                in_force = &p->keys_in_force[i];
            }
        }
        int rc = use_key(p, in_force != NULL ? in_force : &slot->key, &map.key);
        if (rc != KTH_OK) {
            return rc;
        }
    }
    map.uri = hls_parser_resolve(p, slot->raw_uri, strlen(slot->raw_uri));
    if (map.uri == NULL) {
        return KTH_ERR_NO_MEMORY;
    }
    if (m->map_count > 0) {
        const hls_map *last = &m->maps[m->map_count - 1];
        if (strcmp(last->uri, map.uri) == 0 && last->key == map.key &&
            last->range.present == map.range.present && last->range.offset == map.range.offset &&
            last->range.length == map.range.length) {
            slot->index = m->map_count - 1;
            *index = slot->index;
            return KTH_OK;
        }
    }
    hls_map *grown = hls_parser_grow(p, m->maps, &p->map_cap, m->map_count + 1, sizeof(*grown));
    if (grown == NULL) {
        return KTH_ERR_NO_MEMORY;
    }
    m->maps = grown;
    m->maps[m->map_count] = map;
    slot->index = m->map_count++;
    *index = slot->index;
    if (map.range.present) {
        return range_record(p, map.uri, map.range.offset + map.range.length);
    }
    return KTH_OK;
}

/* ---- per-segment tags -------------------------------------------------------------------- */

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

static void trim(const char **s, size_t *n)
{
    while (*n > 0 && is_blank((*s)[0])) {
        (*s)++, (*n)--;
    }
    while (*n > 0 && is_blank((*s)[*n - 1])) {
        (*n)--;
    }
}

int hls_media_extinf(hls_parser *p, const char *s, size_t n)
{
    if (p->extinf_pending) {
        return hls_parser_fail(p, KTH_ERR_FORMAT,
                               "EXTINF follows the EXTINF of line %zu, "
                               "which has no URI line",
                               p->extinf_line);
    }
    const char *comma = memchr(s, ',', n);
    const char *d = s;
    size_t dn = comma != NULL ? (size_t)(comma - s) : n;
    trim(&d, &dn);
    char ex[HLS_EXCERPT_SIZE];
    double duration = 0;
    if (dn > 0 && d[0] == '-') {
        return hls_parser_fail(p, KTH_ERR_FORMAT, "EXTINF duration '%s' is negative",
                               hls_excerpt(ex, sizeof(ex), d, dn));
    }
    if (!hls_parse_decimal_float(d, dn, &duration)) {
        return hls_parser_fail(p, KTH_ERR_FORMAT, "EXTINF duration '%s' is not a number",
                               hls_excerpt(ex, sizeof(ex), d, dn));
    }
    p->extinf_title = NULL;
    if (comma != NULL) {
        const char *t = comma + 1;
        size_t tn = n - (size_t)(t - s);
        trim(&t, &tn);
        if (tn > 0 && (p->extinf_title = hls_parser_strdup(p, t, tn)) == NULL) {
            return KTH_ERR_NO_MEMORY;
        }
    }
    p->extinf_pending = true;
    p->extinf_line = p->line_no;
    p->extinf_duration = duration;
    return KTH_OK;
}

int hls_media_byterange(hls_parser *p, const char *s, size_t n)
{
    hls_byterange range = {0};
    bool has_offset = false;
    int rc = parse_range(p, "EXT-X-BYTERANGE", s, n, &range, &has_offset);
    if (rc != KTH_OK) {
        return rc;
    }
    p->byterange_pending = true;
    p->byterange_line = p->line_no;
    p->byterange_length = range.length;
    p->byterange_has_offset = has_offset;
    p->byterange_offset = range.offset;
    return KTH_OK;
}

int hls_media_discontinuity(hls_parser *p, const char *s, size_t n)
{
    (void)s, (void)n;
    p->discontinuity_pending = true;
    p->discontinuity_count++;
    return KTH_OK;
}

int hls_media_gap(hls_parser *p, const char *s, size_t n)
{
    (void)s, (void)n;
    p->gap_pending = true;
    return KTH_OK;
}

/* A date the client cannot read is ignored, as an unknown tag would be: the segments keep
 * playing, without a program time. */
int hls_media_program_date_time(hls_parser *p, const char *s, size_t n)
{
    const char *d = s;
    size_t dn = n;
    trim(&d, &dn);
    int64_t ms;
    if (hls_parse_date_time(d, dn, &ms)) {
        p->date_pending = true;
        p->date_ms = ms;
    }
    return KTH_OK;
}

/* ---- playlist-wide tags ------------------------------------------------------------------ */

static int integer_tag(hls_parser *p, const char *tag, const char *s, size_t n, uint64_t *out)
{
    if (!hls_parse_decimal_integer(s, n, out)) {
        char ex[HLS_EXCERPT_SIZE];
        return hls_parser_fail(p, KTH_ERR_FORMAT, "%s '%s' is not a decimal integer", tag,
                               hls_excerpt(ex, sizeof(ex), s, n));
    }
    return KTH_OK;
}

int hls_media_target_duration(hls_parser *p, const char *s, size_t n)
{
    return integer_tag(p, "EXT-X-TARGETDURATION", s, n, &p->pl->media.target_duration);
}

int hls_media_media_sequence(hls_parser *p, const char *s, size_t n)
{
    if (p->pl->media.segment_count > 0) {
        return hls_parser_fail(p, KTH_ERR_FORMAT, "EXT-X-MEDIA-SEQUENCE after the first segment");
    }
    return integer_tag(p, "EXT-X-MEDIA-SEQUENCE", s, n, &p->pl->media.media_sequence);
}

int hls_media_discontinuity_sequence(hls_parser *p, const char *s, size_t n)
{
    if (p->pl->media.segment_count > 0) {
        return hls_parser_fail(p, KTH_ERR_FORMAT,
                               "EXT-X-DISCONTINUITY-SEQUENCE after the first segment");
    }
    return integer_tag(p, "EXT-X-DISCONTINUITY-SEQUENCE", s, n,
                       &p->pl->media.discontinuity_sequence);
}

int hls_media_endlist(hls_parser *p, const char *s, size_t n)
{
    (void)s, (void)n;
    p->pl->media.endlist = true;
    return KTH_OK;
}

int hls_media_playlist_type(hls_parser *p, const char *s, size_t n)
{
    if (n == 3 && memcmp(s, "VOD", 3) == 0) {
        p->pl->media.type = HLS_PLAYLIST_TYPE_VOD;
    } else if (n == 5 && memcmp(s, "EVENT", 5) == 0) {
        p->pl->media.type = HLS_PLAYLIST_TYPE_EVENT;
    } else {
        char ex[HLS_EXCERPT_SIZE];
        return hls_parser_fail(p, KTH_ERR_FORMAT, "EXT-X-PLAYLIST-TYPE '%s' is not VOD or EVENT",
                               hls_excerpt(ex, sizeof(ex), s, n));
    }
    return KTH_OK;
}

int hls_media_i_frames_only(hls_parser *p, const char *s, size_t n)
{
    (void)s, (void)n;
    p->pl->media.i_frames_only = true;
    return KTH_OK;
}

/* ---- segments ---------------------------------------------------------------------------- */

/* If the previous segment's URI `prev` and `r` are one string with a number that counts up by
 * one, starts a run of segments from segment `i` (URI `r`) and returns 1; returns 0 when they
 * are not, a negative status when out of memory (reported). */
static int run_start(hls_parser *p, const char *prev, const char *r, size_t i, uint32_t *ref)
{
    size_t at = 0;
    while (prev[at] != '\0' && prev[at] == r[at]) {
        at++;
    }
    while (at > 0 && isdigit((unsigned char)prev[at - 1])) {
        at--;
    }
    size_t np = 0, nr = 0;
    while (isdigit((unsigned char)prev[at + np])) {
        np++;
    }
    while (isdigit((unsigned char)r[at + nr])) {
        nr++;
    }
    /* 18 digits always fit in 64 bits, with room to count on. */
    if (np == 0 || nr == 0 || np > 18 || nr > 18 || strcmp(prev + at + np, r + at + nr) != 0 ||
        strlen(prev) > UINT32_MAX) {
        return 0;
    }
    uint64_t vp = strtoull(prev + at, NULL, 10), vr = strtoull(r + at, NULL, 10);
    hls_media_playlist *m = &p->pl->media;
    hls_uri_run run = {.base = prev,
                       .first = i,
                       .number = vr,
                       .prefix_len = (uint32_t)at,
                       .suffix_at = (uint32_t)(at + np),
                       .width = (uint32_t)np};
    if (vr != vp + 1 || !hls_uri_run_is(&run, i, r) || m->uri_run_count_ >= UINT32_MAX) {
        return 0;
    }
    hls_uri_run *grown =
        hls_parser_grow(p, m->uri_runs_, &p->uri_run_cap, m->uri_run_count_ + 1, sizeof(*grown));
    if (grown == NULL) {
        return KTH_ERR_NO_MEMORY;
    }
    m->uri_runs_ = grown;
    *ref = (uint32_t)m->uri_run_count_;
    m->uri_runs_[m->uri_run_count_++] = run;
    return 1;
}

/* How the segment about to be stored keeps its resolved URI `r`: as a member of a run (its
 * number is the next of the previous segment's run, or it starts one), as the previous
 * segment's string when equal (a single-file playlist of byte ranges names one resource
 * 100,000 times), or as a new string. A segment with a byte range always has a string, which
 * the table of range ends borrows. Sets *ref and *flags (HLS_SEG_TEMPLATE or 0) for the record
 * and *stable to the string (NULL for a run member). */
static int segment_uri(hls_parser *p, const char *r, bool ranged, uint32_t *ref, uint32_t *flags,
                       const char **stable)
{
    hls_media_playlist *m = &p->pl->media;
    size_t i = m->segment_count;
    const hls_segment_rec last_rec = i > 0 ? hls_media_record(m, i - 1) : (hls_segment_rec){0};
    const hls_segment_rec *last = i > 0 ? &last_rec : NULL;
    *flags = 0;
    *stable = NULL;
    if (last != NULL && !ranged && (last->bits & HLS_SEG_TEMPLATE) &&
        hls_uri_run_is(&m->uri_runs_[last->uri], i, r)) {
        *ref = last->uri;
        *flags = HLS_SEG_TEMPLATE;
        return KTH_OK;
    }
    if (last != NULL && !(last->bits & HLS_SEG_TEMPLATE)) {
        const char *prev = m->uris_[last->uri];
        if (strcmp(prev, r) == 0) {
            *ref = last->uri;
            *stable = prev;
            return KTH_OK;
        }
        int started = ranged || (last->bits & HLS_SEG_RANGE) ? 0 : run_start(p, prev, r, i, ref);
        if (started != 0) {
            *flags = HLS_SEG_TEMPLATE;
            return started < 0 ? started : KTH_OK;
        }
    }
    if (m->uri_count_ >= UINT32_MAX) {
        return hls_parser_fail(p, KTH_ERR_LIMIT, "too many segment URIs");
    }
    const char **grown =
        hls_parser_grow(p, (void *)m->uris_, &p->uri_cap, m->uri_count_ + 1, sizeof(*grown));
    if (grown == NULL) {
        return KTH_ERR_NO_MEMORY;
    }
    m->uris_ = grown;
    if ((*stable = hls_parser_strdup(p, r, strlen(r))) == NULL) {
        return KTH_ERR_NO_MEMORY;
    }
    *ref = (uint32_t)m->uri_count_;
    m->uris_[m->uri_count_++] = *stable;
    return KTH_OK;
}

static int segment_range(hls_parser *p, const char *uri, hls_segment *seg)
{
    if (!p->byterange_pending) {
        return KTH_OK;
    }
    size_t uri_line = p->line_no;
    p->line_no = p->byterange_line;
    uint64_t offset = p->byterange_offset;
    if (!p->byterange_has_offset) {
        const hls_range_entry *e = range_find(p, uri);
        if (e == NULL) {
            char ex[HLS_EXCERPT_SIZE];
            return hls_parser_fail(p, KTH_ERR_FORMAT,
                                   "EXT-X-BYTERANGE has no offset and no earlier range of '%s' "
                                   "precedes it",
                                   hls_excerpt(ex, sizeof(ex), uri, strlen(uri)));
        }
        offset = e->end;
    }
    if (offset > UINT64_MAX - p->byterange_length) {
        return hls_parser_fail(p, KTH_ERR_FORMAT, "EXT-X-BYTERANGE offset + length overflows");
    }
    p->line_no = uri_line;
    seg->range.present = true;
    seg->range.offset = offset;
    seg->range.length = p->byterange_length;
    return range_record(p, uri, offset + p->byterange_length);
}

/* Where duration d's probe starts in a table of `cap` (a power of two) places. */
static size_t duration_home(double d, size_t cap)
{
    uint64_t bits;
    memcpy(&bits, &d, sizeof(bits));
    return (size_t)(bits * UINT64_C(0x9e3779b97f4a7c15) >> 32) & (cap - 1);
}

/* The index of duration d among the distinct durations (added when new). */
static int duration_index(hls_parser *p, double d, uint32_t *index)
{
    hls_media_playlist *m = &p->pl->media;
    if (2 * (m->duration_count_ + 1) > p->dur_hash_cap) { /* keep the table at most half full */
        size_t cap = p->dur_hash_cap ? 2 * p->dur_hash_cap : 64;
        while (cap < 2 * (m->duration_count_ + 1)) { /* a parse after a prefix starts with many */
            cap *= 2;
        }
        uint32_t *table = platform_malloc(cap * sizeof(*table));
        if (table == NULL) {
            return hls_parser_fail(p, KTH_ERR_NO_MEMORY, "out of memory");
        }
        memset(table, 0xff, cap * sizeof(*table));
        platform_free(p->dur_hash);
        p->dur_hash = table;
        p->dur_hash_cap = cap;
        for (size_t k = 0; k < m->duration_count_; k++) {
            size_t at = duration_home(m->durations_[k], cap);
            while (table[at] != UINT32_MAX) {
                at = (at + 1) & (cap - 1);
            }
            table[at] = (uint32_t)k;
        }
    }
    size_t at = duration_home(d, p->dur_hash_cap);
    for (; p->dur_hash[at] != UINT32_MAX; at = (at + 1) & (p->dur_hash_cap - 1)) {
        if (memcmp(&m->durations_[p->dur_hash[at]], &d, sizeof(d)) == 0) {
            *index = p->dur_hash[at];
            return KTH_OK;
        }
    }
    double *grown =
        hls_parser_grow(p, m->durations_, &p->duration_cap, m->duration_count_ + 1, sizeof(*grown));
    if (grown == NULL) {
        return KTH_ERR_NO_MEMORY;
    }
    m->durations_ = grown;
    m->durations_[m->duration_count_] = d;
    *index = p->dur_hash[at] = (uint32_t)m->duration_count_++;
    return KTH_OK;
}

/* Keeps duration index `index` for segment i, widening the table when it does not fit. */
static int duration_put(hls_parser *p, size_t i, uint32_t index)
{
    hls_media_playlist *m = &p->pl->media;
    unsigned width = index <= UINT8_MAX ? 1 : index <= UINT16_MAX ? 2 : 4;
    if (width > m->dur_width_) {
        size_t cap = p->segment_cap > i ? p->segment_cap : i + 1;
        uint8_t *wide = platform_malloc(cap * width);
        if (wide == NULL) {
            return hls_parser_fail(p, KTH_ERR_NO_MEMORY, "out of memory");
        }
        for (size_t k = 0; k < i; k++) {
            const uint8_t *old = m->duration_of_;
            uint32_t v = m->dur_width_ == 1   ? old[k]
                         : m->dur_width_ == 2 ? ((const uint16_t *)m->duration_of_)[k]
                                              : ((const uint32_t *)m->duration_of_)[k];
            if (width == 2) {
                ((uint16_t *)(void *)wide)[k] = (uint16_t)v;
            } else {
                ((uint32_t *)(void *)wide)[k] = v;
            }
        }
        platform_free(m->duration_of_);
        m->duration_of_ = wide;
        m->dur_width_ = width;
        p->segment_cap = cap;
    }
    void *grown = hls_parser_grow(p, m->duration_of_, &p->segment_cap, i + 1, m->dur_width_);
    if (grown == NULL) {
        return KTH_ERR_NO_MEMORY;
    }
    m->duration_of_ = grown;
    if (m->dur_width_ == 1) {
        ((uint8_t *)m->duration_of_)[i] = (uint8_t)index;
    } else if (m->dur_width_ == 2) {
        ((uint16_t *)m->duration_of_)[i] = (uint16_t)index;
    } else {
        ((uint32_t *)m->duration_of_)[i] = index;
    }
    return KTH_OK;
}

/* Whether segment i, the next after the last run, continues it with record r; makes the run
 * one of stepping URI strings when r is the second and names the next string. */
static bool run_continues(hls_segment_run *last, size_t i, const hls_segment_rec *r)
{
    uint32_t bits = last->rec.bits & ~HLS_SEG_URI_STEP;
    if (bits != r->bits || last->rec.key != r->key || last->rec.map != r->map) {
        return false;
    }
    size_t k = i - last->first;
    if (last->rec.bits & HLS_SEG_URI_STEP) {
        return (uint64_t)last->rec.uri + k == r->uri;
    }
    if (last->rec.uri == r->uri) {
        return true;
    }
    if (k == 1 && !(r->bits & HLS_SEG_TEMPLATE) && (uint64_t)last->rec.uri + 1 == r->uri) {
        last->rec.bits |= HLS_SEG_URI_STEP;
        return true;
    }
    return false;
}

/* Whether the date tag of the segment being assembled says what the last kept tag and the
 * durations since give (as hls_media_segment() derives it): a live server dates every segment,
 * and such a tag is not kept, so a stream's dates cost nothing per segment. */
static bool date_derived(const hls_parser *p)
{
    const hls_media_playlist *m = &p->pl->media;
    if (m->date_count_ == 0) {
        return false;
    }
    double since = m->total_duration - p->date_start;
    return p->date_ms == m->dates_[m->date_count_ - 1].ms + (int64_t)(since * 1000.0 + 0.5);
}

/* Appends the record of the segment being assembled (its map, range and key in `seg`, its URI
 * as segment_uri() kept it; the rest from the parser's state), with its range and title in the
 * side tables. */
static int segment_store(hls_parser *p, const hls_segment *seg, uint32_t uri, uint32_t uri_flags)
{
    hls_media_playlist *m = &p->pl->media;
    size_t i = m->segment_count;
    uint32_t duration = 0;
    int rc = duration_index(p, p->extinf_duration, &duration);
    if (rc == KTH_OK) {
        rc = duration_put(p, i, duration);
    }
    if (rc != KTH_OK) {
        return rc;
    }
    if (i % HLS_START_EVERY == 0) {
        double *starts =
            hls_parser_grow(p, m->starts_, &p->start_cap, i / HLS_START_EVERY + 1, sizeof(*starts));
        if (starts == NULL) {
            return KTH_ERR_NO_MEMORY;
        }
        m->starts_ = starts;
        m->starts_[i / HLS_START_EVERY] = m->total_duration;
    }
    if (seg->range.present && m->ranges_ == NULL) {
        /* The first range: the table covers every segment from this one on. */
        m->ranges_first_ = i;
        m->ranges_ = platform_calloc(p->segment_cap - i, sizeof(*m->ranges_));
        if (m->ranges_ == NULL) {
            return hls_parser_fail(p, KTH_ERR_NO_MEMORY, "out of memory");
        }
        p->seg_range_cap = p->segment_cap - i;
    }
    if (m->ranges_ != NULL && p->seg_range_cap < p->segment_cap - m->ranges_first_) {
        size_t cap = p->segment_cap - m->ranges_first_;
        hls_segment_range *r = platform_realloc(m->ranges_, cap * sizeof(*r));
        if (r == NULL) {
            return hls_parser_fail(p, KTH_ERR_NO_MEMORY, "out of memory");
        }
        m->ranges_ = r;
        p->seg_range_cap = cap;
    }
    uint32_t flags = uri_flags | (p->discontinuity_pending ? HLS_SEG_DISCONTINUITY : 0) |
                     (p->gap_pending ? HLS_SEG_GAP : 0) | (seg->range.present ? HLS_SEG_RANGE : 0);
    if (p->extinf_title != NULL) {
        hls_segment_title *t =
            hls_parser_grow(p, m->titles_, &p->title_cap, m->title_count_ + 1, sizeof(*t));
        if (t == NULL) {
            return KTH_ERR_NO_MEMORY;
        }
        m->titles_ = t;
        m->titles_[m->title_count_++] = (hls_segment_title){i, p->extinf_title};
        flags |= HLS_SEG_TITLE;
    }
    if (p->date_pending && !date_derived(p)) {
        hls_segment_date *d =
            hls_parser_grow(p, m->dates_, &p->date_cap, m->date_count_ + 1, sizeof(*d));
        if (d == NULL) {
            return KTH_ERR_NO_MEMORY;
        }
        m->dates_ = d;
        m->dates_[m->date_count_++] = (hls_segment_date){i, p->date_ms};
        p->date_start = m->total_duration;
    }
    if (m->ranges_ != NULL) {
        m->ranges_[i - m->ranges_first_] =
            (hls_segment_range){seg->range.offset, seg->range.length};
    }
    hls_segment_rec rec = {
        .uri = uri,
        .key = seg->key == HLS_NONE ? UINT32_MAX : (uint32_t)seg->key,
        .map = seg->map == HLS_NONE ? UINT32_MAX : (uint32_t)seg->map,
        .bits = (uint32_t)p->discontinuity_count << HLS_SEG_FLAG_BITS | flags,
    };
    if (m->run_count_ == 0 || !run_continues(&m->runs_[m->run_count_ - 1], i, &rec)) {
        hls_segment_run *runs =
            hls_parser_grow(p, m->runs_, &p->run_cap, m->run_count_ + 1, sizeof(*runs));
        if (runs == NULL) {
            return KTH_ERR_NO_MEMORY;
        }
        m->runs_ = runs;
        m->runs_[m->run_count_++] = (hls_segment_run){i, rec};
    }
    m->segment_count = i + 1;
    return KTH_OK;
}

int hls_media_uri(hls_parser *p, const char *s, size_t n)
{
    if (!p->extinf_pending) {
        char ex[HLS_EXCERPT_SIZE];
        return hls_parser_fail(p, KTH_ERR_FORMAT, "URI '%s' without a preceding EXTINF",
                               hls_excerpt(ex, sizeof(ex), s, n));
    }
    hls_media_playlist *m = &p->pl->media;
    if (m->segment_count >= p->lim.max_segments) {
        return hls_parser_fail(p, KTH_ERR_LIMIT, "more than %zu segments", p->lim.max_segments);
    }
    if ((uint64_t)m->segment_count > UINT64_MAX - m->media_sequence) {
        return hls_parser_fail(p, KTH_ERR_FORMAT, "media sequence number overflows");
    }
    if (p->discontinuity_count > UINT64_MAX - m->discontinuity_sequence) {
        return hls_parser_fail(p, KTH_ERR_FORMAT, "discontinuity sequence number overflows");
    }
    double total = m->total_duration + p->extinf_duration;
    if (!isfinite(total)) {
        return hls_parser_fail(p, KTH_ERR_FORMAT, "total duration overflows");
    }
    if (p->discontinuity_count > HLS_SEG_MAX_DISCONTINUITIES || m->key_count >= UINT32_MAX ||
        m->map_count >= UINT32_MAX) {
        return hls_parser_fail(p, KTH_ERR_LIMIT, "too many discontinuities, keys or maps");
    }
    hls_segment seg;
    memset(&seg, 0, sizeof(seg));
    seg.key = HLS_NONE;
    seg.map = HLS_NONE;
    char *resolved = NULL;
    int rc = hls_url_resolve(p->base_url, s, n, &resolved);
    if (rc != KTH_OK) {
        return hls_parser_fail(p, rc, "cannot resolve URI against the base URL");
    }
    uint32_t uri = 0, uri_flags = 0;
    const char *stable = NULL;
    rc = segment_uri(p, resolved, p->byterange_pending, &uri, &uri_flags, &stable);
    platform_free(resolved);
    /* The map first: its range may be what an offset-less segment range continues. */
    if (rc == KTH_OK && p->map.present) {
        rc = use_map(p, &seg.map);
    }
    if (rc == KTH_OK && p->byterange_pending) {
        rc = segment_range(p, stable, &seg);
    }
    hls_key_slot *key = key_in_force(p);
    if (rc == KTH_OK && key != NULL) {
        rc = use_key(p, key, &seg.key);
    }
    if (rc == KTH_OK) {
        rc = segment_store(p, &seg, uri, uri_flags);
    }
    if (rc != KTH_OK) {
        return rc;
    }
    m->total_duration = total;
    p->extinf_pending = false;
    p->byterange_pending = false;
    p->discontinuity_pending = false;
    p->gap_pending = false;
    p->date_pending = false;
    return KTH_OK;
}

/* Gives back what a table grown by doubling holds beyond its `count` entries (up to half of
 * it: 0.3 MiB of a 24-hour variant's records). A failed shrink keeps the table as it was. */
static void *fit(void *array, size_t count, size_t *cap, size_t size)
{
    if (array == NULL || count == 0 || count >= *cap) {
        return array;
    }
    void *a = platform_realloc(array, count * size);
    if (a == NULL) {
        return array;
    }
    *cap = count;
    return a;
}

int hls_media_finish(hls_parser *p)
{
    if (p->extinf_pending) {
        p->line_no = p->extinf_line;
        return hls_parser_fail(p, KTH_ERR_FORMAT, "EXTINF has no URI line after it");
    }
    hls_media_playlist *m = &p->pl->media;
    m->duration_of_ = fit(m->duration_of_, m->segment_count, &p->segment_cap, m->dur_width_);
    m->runs_ = fit(m->runs_, m->run_count_, &p->run_cap, sizeof(*m->runs_));
    m->durations_ =
        fit(m->durations_, m->duration_count_, &p->duration_cap, sizeof(*m->durations_));
    m->starts_ = fit(m->starts_, (m->segment_count + HLS_START_EVERY - 1) / HLS_START_EVERY,
                     &p->start_cap, sizeof(*m->starts_));
    if (m->ranges_ != NULL) {
        m->ranges_ = fit(m->ranges_, m->segment_count - m->ranges_first_, &p->seg_range_cap,
                         sizeof(*m->ranges_));
    }
    m->titles_ = fit(m->titles_, m->title_count_, &p->title_cap, sizeof(*m->titles_));
    m->dates_ = fit(m->dates_, m->date_count_, &p->date_cap, sizeof(*m->dates_));
    m->uris_ = fit(m->uris_, m->uri_count_, &p->uri_cap, sizeof(*m->uris_));
    m->uri_runs_ = fit(m->uri_runs_, m->uri_run_count_, &p->uri_run_cap, sizeof(*m->uri_runs_));
    return KTH_OK;
}
