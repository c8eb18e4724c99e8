/*
 * live_merge.c — the playlist a live stream plays from after a reload (hls_live_merge): the
 * played segments and the new ones written out as one playlist and parsed again, so the model
 * is made by the one parser there is and keeps the played segments' indices, keys and maps.
 * Segments the stream released are written under a stand-in URI that counts up with their
 * sequence, so the model holds them as one run of records without names.
 *
 * Those released by an earlier merge never change again, and are not written out: the parse
 * starts from a copy of them (hls_playlist_parse_after), so a reload writes and parses the
 * window and what the stream has not released yet, however long the stream has run.
 * hls_live_merge_whole writes everything, for tests that hold the two to one result.
 */
#include "hls/attr.h"
#include "hls/live.h"
#include "platform/mem.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct text {
    char *data;
    size_t len, cap;
    bool failed;
} text;

/* Makes room for `extra` more bytes and a NUL; false (and failed) when memory runs out. */
static bool reserve(text *t, size_t extra)
{
    if (t->failed)
        return false;
    if (t->data && t->cap - t->len > extra)
        return true;
    size_t cap = t->cap ? t->cap : 4096;
    while (cap - t->len <= extra)
        cap *= 2;
    char *p = platform_realloc(t->data, cap);
    if (!p) {
        t->failed = true;
        return false;
    }
    t->data = p;
    t->cap = cap;
    return true;
}

static void put(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(text *t, const char *fmt, ...)
{
    for (int pass = 0; pass < 2 && !t->failed; pass++) {
        va_list ap;
        va_start(ap, fmt);
        int n =
            vsnprintf(t->data ? t->data + t->len : NULL, t->data ? t->cap - t->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->failed = true;
            return;
        }
        if (t->data && (size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        }
        reserve(t, (size_t)n);
    }
}

/* Appends n bytes (the hot path: a segment's EXTINF line and URI, without printf). */
static void put_bytes(text *t, const char *p, size_t n)
{
    if (!reserve(t, n))
        return;
    memcpy(t->data + t->len, p, n);
    t->len += n;
    t->data[t->len] = '\0';
}

/* What was written last, so keys and maps are declared only when they change, and the last
 * duration as text: a live playlist's segments mostly last the same, and formatting a double
 * was a tenth of a merge. */
typedef struct writer {
    text t;
    const hls_key *key; /* NULL: clear */
    const hls_map *map;
    const hls_media_playlist *map_of; /* the model `map` is of (its key is an index there) */
    double duration;                  /* what `extinf` says, valid when extinf_len > 0 */
    char extinf[48];                  /* "#EXTINF:<duration>," */
    size_t extinf_len;
} writer;

/* "#EXTINF:<d>,": d with the fewest decimals (6 at least) that the parser reads back as d, so a
 * duration stays the same double merge after merge, and with it every start and every date
 * derived from one. */
static void put_extinf(writer *w, double d)
{
    static const int decimals[] = {6, 9, 12, 15, 17, 20};
    if (w->extinf_len == 0 || d != w->duration) {
        size_t len = 0;
        for (size_t k = 0; k < sizeof decimals / sizeof decimals[0]; k++) {
            char line[sizeof w->extinf];
            int n = snprintf(line, sizeof line, "#EXTINF:%.*f,", decimals[k], d);
            if (n < 0 || (size_t)n >= sizeof line)
                break; /* keep the longest that fitted */
            memcpy(w->extinf, line, (size_t)n + 1);
            len = (size_t)n;
            double back;
            if (hls_parse_decimal_float(line + 8, len - 9, &back) && back == d)
                break;
        }
        if (len == 0) {
            w->t.failed = true;
            return;
        }
        w->extinf_len = len;
        w->duration = d;
    }
    put_bytes(&w->t, w->extinf, w->extinf_len);
}

/* Whether two keys say the same: a server declares its key again in every playlist, and a key
 * written again is a new key (and a new run of records) in the model the text makes. */
static bool same_key(const hls_key *a, const hls_key *b)
{
    if (a == b)
        return true;
    if (!a || !b)
        return false;
    return a->method == b->method && a->has_iv == b->has_iv &&
           memcmp(a->iv, b->iv, sizeof a->iv) == 0 && strcmp(a->method_name, b->method_name) == 0 &&
           strcmp(a->uri, b->uri) == 0 && strcmp(a->keyformat, b->keyformat) == 0 &&
           strcmp(a->keyformat_versions, b->keyformat_versions) == 0;
}

/* Whether init section a (of model ma) and b (of mb) say the same: the same resource and
 * range, under keys that say the same. A server declares its init section again in every
 * playlist; declared again, with its key in front, it would make the segments' key anew. */
static bool same_map(const hls_media_playlist *ma, const hls_map *a, const hls_media_playlist *mb,
                     const hls_map *b)
{
    const hls_key *ka = a->key != HLS_NONE ? &ma->keys[a->key] : NULL;
    const hls_key *kb = b->key != HLS_NONE ? &mb->keys[b->key] : NULL;
    return strcmp(a->uri, b->uri) == 0 && a->range.present == b->range.present &&
           a->range.offset == b->range.offset && a->range.length == b->range.length &&
           same_key(ka, kb);
}

/* Declares key k unless it is in force: the same record, or, for a segment the reload adds
 * (`by_content`), one that says the same. The played segments are written as they were parsed,
 * so the model keeps their keys' and maps' indices (the layout holds map indices). */
static void put_key(writer *w, const hls_key *k, bool by_content)
{
    if (k == w->key || (by_content && same_key(k, w->key)))
        return;
    w->key = k;
    if (!k) {
        put(&w->t, "#EXT-X-KEY:METHOD=NONE\n");
        return;
    }
    put(&w->t, "#EXT-X-KEY:METHOD=%s,URI=\"%s\"", k->method_name, k->uri);
    if (k->has_iv) {
        put(&w->t, ",IV=0x");
        for (int i = 0; i < 16; i++)
            put(&w->t, "%02x", k->iv[i]);
    }
    put(&w->t, ",KEYFORMAT=\"%s\",KEYFORMATVERSIONS=\"%s\"\n", k->keyformat, k->keyformat_versions);
}

/* The URI a released segment with media sequence `sequence` gets, into buf. */
static size_t released_uri(uint64_t sequence, char buf[48])
{
    int n = snprintf(buf, 48, HLS_LIVE_RELEASED_URI "%llu", (unsigned long long)sequence);
    return n > 0 && n < 48 ? (size_t)n : 0;
}

/* How put_segment writes a segment. */
enum {
    SEG_FENCE = 1,    /* a discontinuity in front of it */
    SEG_ADDED = 2,    /* one the reload adds */
    SEG_RELEASED = 4, /* one the stream released: its released URI, no title, no byte range */
};

/* How many EXT-X-DISCONTINUITY tags go in front of segment i of m: as many as its playlist
 * had there (a server may write two; writing one would lower the discontinuity sequence of
 * every segment after it), at least one for a fence. The first segment of m is written after
 * the header's discontinuity sequence, which counts all but one of its tags. */
static uint64_t discontinuity_tags(const hls_media_playlist *m, size_t i, const hls_segment *seg,
                                   unsigned how)
{
    uint64_t tags = 0;
    if (seg->discontinuity)
        tags =
            i > 0 ? seg->discontinuity_sequence - hls_media_segment(m, i - 1).discontinuity_sequence
                  : 1;
    return tags == 0 && (how & SEG_FENCE) ? 1 : tags;
}

/* Writes segment i of m. An added segment gets its program date written even where its
 * playlist derived it: the merged model derives from other tags (the reloaded playlist may have
 * dated a segment it does not hold), and rounding to the millisecond could differ by one; the
 * parser keeps only the dates the merged model does not derive. */
static void put_segment(writer *w, const hls_media_playlist *m, size_t i, unsigned how)
{
    const hls_segment seg_seg = hls_media_segment(m, i), *seg = &seg_seg;
    const hls_map *map = seg->map != HLS_NONE ? &m->maps[seg->map] : NULL;
    if (map && map != w->map &&
        !((how & SEG_ADDED) && w->map && same_map(w->map_of, w->map, m, map))) {
        /* An init section is under the key in force where it was declared, which need not be
         * its segments' (a clear one before their key, say): that key goes first. */
        put_key(w, map->key != HLS_NONE ? &m->keys[map->key] : NULL, how & SEG_ADDED);
        put(&w->t, "#EXT-X-MAP:URI=\"%s\"", map->uri);
        if (map->range.present)
            put(&w->t, ",BYTERANGE=\"%llu@%llu\"", (unsigned long long)map->range.length,
                (unsigned long long)map->range.offset);
        put(&w->t, "\n");
    }
    if (map) {
        w->map = map;
        w->map_of = m;
    }
    put_key(w, seg->key != HLS_NONE ? &m->keys[seg->key] : NULL, how & SEG_ADDED);
    for (uint64_t k = discontinuity_tags(m, i, seg, how); k > 0; k--)
        put(&w->t, "#EXT-X-DISCONTINUITY\n");
    if (seg->gap)
        put(&w->t, "#EXT-X-GAP\n");
    if (seg->range.present && !(how & SEG_RELEASED))
        put(&w->t, "#EXT-X-BYTERANGE:%llu@%llu\n", (unsigned long long)seg->range.length,
            (unsigned long long)seg->range.offset);
    if (seg->date_tag || ((how & SEG_ADDED) && seg->program_time_ms != 0)) {
        char when[40];
        hls_format_date_time(seg->program_time_ms, when);
        put(&w->t, "#EXT-X-PROGRAM-DATE-TIME:%s\n", when);
    }
    put_extinf(w, seg->duration);
    if (how & SEG_RELEASED) {
        char uri[48];
        size_t n = released_uri(seg->sequence, uri);
        put_bytes(&w->t, "\n", 1);
        put_bytes(&w->t, uri, n);
        put_bytes(&w->t, "\n", 1);
        return;
    }
    char *uri = hls_media_segment_uri(m, i);
    if (uri == NULL) {
        w->t.failed = true;
        return;
    }
    if (seg->title)
        put_bytes(&w->t, seg->title, strlen(seg->title));
    put_bytes(&w->t, "\n", 1);
    put_bytes(&w->t, uri, strlen(uri));
    put_bytes(&w->t, "\n", 1);
    platform_free(uri);
}

/* Whether the merged model keeps every played segment as it was: its index (so its sequence),
 * its discontinuity sequence, its key and map (and the map's key), and its URI (a released
 * one's released URI). Keys and maps are compared on the records, which hold nothing else that
 * is costly to make. Segments before `from` were copied, not parsed, and are not compared.
 * KTH_OK, KTH_ERR_FORMAT when it does not, KTH_ERR_NO_MEMORY when a URI could not be made to
 * compare. */
static kth_status keeps_played(const hls_media_playlist *a, size_t released,
                               const hls_media_playlist *b, size_t want, size_t from)
{
    if (b->segment_count != want || b->segment_count < a->segment_count ||
        b->media_sequence != a->media_sequence)
        return KTH_ERR_FORMAT;
    for (size_t i = from; i < a->segment_count; i++) {
        hls_segment_rec x = hls_media_record(a, i), y = hls_media_record(b, i);
        if (x.map != y.map || x.key != y.key ||
            hls_media_segment(a, i).discontinuity_sequence !=
                hls_media_segment(b, i).discontinuity_sequence ||
            (x.map != UINT32_MAX && a->maps[x.map].key != b->maps[y.map].key))
            return KTH_ERR_FORMAT;
        char stand_in[48];
        if (i < released) {
            if (released_uri(a->media_sequence + i, stand_in) == 0 ||
                !hls_media_segment_uri_is(b, i, stand_in))
                return KTH_ERR_FORMAT;
            continue;
        }
        char *uri = hls_media_segment_uri(a, i);
        if (uri == NULL)
            return KTH_ERR_NO_MEMORY;
        bool same = hls_media_segment_uri_is(b, i, uri);
        platform_free(uri);
        if (!same)
            return KTH_ERR_FORMAT;
    }
    return KTH_OK;
}

/* How many of the first `released` segments of `a` an earlier merge released already: they have
 * their stand-in URIs, and come first. */
static size_t released_before(const hls_media_playlist *a, size_t released)
{
    size_t lo = 0, hi = released; /* segments [0, lo) have stand-ins; [hi, released) do not */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        char stand_in[48];
        if (released_uri(a->media_sequence + mid, stand_in) > 0 &&
            hls_media_segment_uri_is(a, mid, stand_in))
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Writes the merged playlist's text: its header, then played's segments from `from` on (the
 * parse starts from a copy of those before), then the added ones. */
static void write_merge(writer *w, const hls_playlist *played, size_t released, size_t from,
                        const hls_playlist *reloaded, size_t first, size_t count, bool fence)
{
    const hls_media_playlist *a = &played->media, *b = &reloaded->media;
    uint64_t version = played->version > reloaded->version ? played->version : reloaded->version;
    const hls_segment s0_seg = hls_media_segment(a, 0), *s0 = &s0_seg;
    put(&w->t, "#EXTM3U\n");
    if (version > 0)
        put(&w->t, "#EXT-X-VERSION:%llu\n", (unsigned long long)version);
    put(&w->t, "#EXT-X-TARGETDURATION:%llu\n", (unsigned long long)b->target_duration);
    if (from == 0)
        put(&w->t, "#EXT-X-MEDIA-SEQUENCE:%llu\n#EXT-X-DISCONTINUITY-SEQUENCE:%llu\n",
            (unsigned long long)s0->sequence,
            (unsigned long long)(s0->discontinuity_sequence - (s0->discontinuity ? 1 : 0)));
    if (played->independent_segments)
        put(&w->t, "#EXT-X-INDEPENDENT-SEGMENTS\n");
    if (from > 0) { /* what the parse will have in force after the copied segments */
        const hls_segment last = hls_media_segment(a, from - 1);
        w->key = last.key != HLS_NONE ? &a->keys[last.key] : NULL;
        w->map = last.map != HLS_NONE ? &a->maps[last.map] : NULL;
        w->map_of = a;
    }
    for (size_t i = from; i < a->segment_count; i++)
        put_segment(w, a, i, i < released ? SEG_RELEASED : 0);
    for (size_t i = first; i < first + count; i++)
        put_segment(w, b, i, SEG_ADDED | (fence && i == first ? SEG_FENCE : 0));
    if (b->endlist)
        put(&w->t, "#EXT-X-ENDLIST\n");
}

/* The merge, starting the parse from a copy of played's first `from` segments (0: none). */
static kth_status merge(const hls_playlist *played, size_t released, size_t from,
                        const hls_playlist *reloaded, size_t first, size_t count, bool fence,
                        const char *base_url, hls_playlist **out, char *err, size_t errlen)
{
    const hls_media_playlist *a = &played->media, *b = &reloaded->media;
    *out = NULL;
    if (a->segment_count == 0 || first > b->segment_count || count > b->segment_count - first ||
        released > a->segment_count || from > released)
        return KTH_ERR_INVALID_ARG;
    writer w = {0};
    write_merge(&w, played, released, from, reloaded, first, count, fence);
    if (w.t.failed) {
        platform_free(w.t.data);
        snprintf(err, errlen, "out of memory merging a reloaded playlist");
        return KTH_ERR_NO_MEMORY;
    }
    /* The bounds on a playlist's text and segments are for what a server sends; both playlists
     * here met them when they were fetched. The model of a live stream outgrows them in a day or
     * two (one second segments), and must go on: only the parser's own limits on a line stay. */
    hls_parse_limits own = {.max_playlist_bytes = SIZE_MAX, .max_segments = SIZE_MAX};
    hls_playlist *pl = NULL;
    kth_status st = from > 0 ? hls_playlist_parse_after(played, from, (const uint8_t *)w.t.data,
                                                        w.t.len, base_url, &own, &pl, err, errlen)
                             : hls_playlist_parse((const uint8_t *)w.t.data, w.t.len, base_url,
                                                  &own, &pl, err, errlen);
    platform_free(w.t.data);
    if (st != KTH_OK)
        return st;
    st = keeps_played(a, released, &pl->media, a->segment_count + count, from);
    if (st != KTH_OK) {
        hls_playlist_free(pl);
        snprintf(err, errlen, "%s",
                 st == KTH_ERR_NO_MEMORY
                     ? "out of memory merging a reloaded playlist"
                     : "a reloaded playlist could not be joined to the played one");
        return st;
    }
    *out = pl;
    return KTH_OK;
}

kth_status hls_live_merge(const hls_playlist *played, size_t released, const hls_playlist *reloaded,
                          size_t first, size_t count, bool fence, const char *base_url,
                          hls_playlist **out, char *err, size_t errlen)
{
    size_t from =
        released <= played->media.segment_count ? released_before(&played->media, released) : 0;
    return merge(played, released, from, reloaded, first, count, fence, base_url, out, err, errlen);
}

kth_status hls_live_merge_whole(const hls_playlist *played, size_t released,
                                const hls_playlist *reloaded, size_t first, size_t count,
                                bool fence, const char *base_url, hls_playlist **out, char *err,
                                size_t errlen)
{
    return merge(played, released, 0, reloaded, first, count, fence, base_url, out, err, errlen);
}
