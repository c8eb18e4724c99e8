/*
 * hls/playlist_prefix.c — a parse that starts from another model's first segments
 * (hls_playlist_parse_after): the new model begins as a copy of them, and the parser's state is
 * what it was after the last of them (the key and init section in force, the discontinuities so
 * far, the last date kept, the running total of durations), so the text that follows is parsed
 * as if it came after them in one playlist. The model is the one the whole text would make.
 *
 * What it is for: a live stream's model keeps every segment it played, and each reload used to
 * write all of them out and parse them again, a cost that grew with the stream's age. The
 * segments the stream released never change again, so they are copied instead: the arrays with
 * memcpy, and the few strings they name.
 *
 * The copy relies on the order in which the parser makes things: keys, init sections, URI
 * strings, URI runs and distinct durations are all made when a segment first uses them, so
 * those the first `count` segments use are exactly the first ones of each table.
 */
#include "hls/playlist_internal.h"

#include "platform/mem.h"

#include <kithara/status.h>

#include <string.h>

/* Allocates `cap` elements of `size` bytes and copies `count` of them from src; NULL (reported)
 * on failure. */
static void *copy_array(hls_parser *p, const void *src, size_t count, size_t cap, size_t size)
{
    if (cap == 0) {
        return NULL;
    }
    void *a = cap <= SIZE_MAX / size ? platform_malloc(cap * size) : NULL;
    if (a == NULL) {
        hls_parser_fail(p, KTH_ERR_NO_MEMORY, "out of memory");
        return NULL;
    }
    if (count > 0) {
        memcpy(a, src, count * size);
    }
    return a;
}

static const char *copy_string(hls_parser *p, const char *s)
{
    return s != NULL ? hls_parser_strdup(p, s, strlen(s)) : NULL;
}

/* The number of runs of a whose first segment is before `count`. */
static size_t runs_before(const hls_media_playlist *a, size_t count)
{
    size_t n = 0;
    while (n < a->run_count_ && a->runs_[n].first < count) {
        n++;
    }
    return n;
}

/* Whether a segment of the first `runs` runs has a byte range. */
static bool any_range(const hls_media_playlist *a, size_t runs)
{
    for (size_t r = 0; r < runs; r++) {
        if (a->runs_[r].rec.bits & HLS_SEG_RANGE) {
            return true;
        }
    }
    return false;
}

/* How many keys, init sections, URI strings and durations the first `count` segments use: one
 * more than the highest index any of them names. */
typedef struct used {
    size_t keys, maps, uris, durations;
} used;

static void raise_to(size_t *n, size_t index)
{
    if (index + 1 > *n) {
        *n = index + 1;
    }
}

static used count_used(const hls_media_playlist *a, size_t count, size_t runs)
{
    used u = {0, 0, 0, 0};
    for (size_t r = 0; r < runs; r++) {
        const hls_segment_rec *rec = &a->runs_[r].rec;
        size_t last = (r + 1 < runs ? a->runs_[r + 1].first : count) - 1;
        if (rec->key != UINT32_MAX) {
            raise_to(&u.keys, rec->key);
        }
        if (rec->map != UINT32_MAX) {
            raise_to(&u.maps, rec->map);
            if (a->maps[rec->map].key != HLS_NONE) {
                raise_to(&u.keys, a->maps[rec->map].key);
            }
        }
        if (!(rec->bits & HLS_SEG_TEMPLATE)) {
            raise_to(&u.uris, hls_media_record(a, last).uri);
        }
    }
    for (size_t i = 0; i < count; i++) {
        uint32_t d = a->dur_width_ == 1   ? ((const uint8_t *)a->duration_of_)[i]
                     : a->dur_width_ == 2 ? ((const uint16_t *)a->duration_of_)[i]
                                          : ((const uint32_t *)a->duration_of_)[i];
        raise_to(&u.durations, d);
    }
    return u;
}

/* Copies keys [0, n) and init sections [0, maps) with their strings. */
static int copy_keys_and_maps(hls_parser *p, const hls_media_playlist *a, used u)
{
    hls_media_playlist *m = &p->pl->media;
    if (u.keys > 0 &&
        (m->keys = copy_array(p, a->keys, u.keys, u.keys, sizeof(*m->keys))) == NULL) {
        return KTH_ERR_NO_MEMORY;
    }
    p->key_cap = m->key_count = u.keys;
    for (size_t i = 0; i < u.keys; i++) {
        hls_key *k = &m->keys[i];
        k->method_name = copy_string(p, k->method_name);
        k->uri = copy_string(p, k->uri);
        k->keyformat = copy_string(p, k->keyformat);
        k->keyformat_versions = copy_string(p, k->keyformat_versions);
        if (!k->method_name || !k->uri || !k->keyformat || !k->keyformat_versions) {
            return KTH_ERR_NO_MEMORY;
        }
    }
    if (u.maps > 0 &&
        (m->maps = copy_array(p, a->maps, u.maps, u.maps, sizeof(*m->maps))) == NULL) {
        return KTH_ERR_NO_MEMORY;
    }
    p->map_cap = m->map_count = u.maps;
    for (size_t i = 0; i < u.maps; i++) {
        if ((m->maps[i].uri = copy_string(p, m->maps[i].uri)) == NULL) {
            return KTH_ERR_NO_MEMORY;
        }
    }
    return KTH_OK;
}

/* Copies the URI strings [0, u.uris) and the URI runs that start before `count`, each run's
 * base being the string of the segment before it. */
static int copy_uris(hls_parser *p, const hls_media_playlist *a, size_t count, used u)
{
    hls_media_playlist *m = &p->pl->media;
    if (u.uris > 0 && (m->uris_ = copy_array(p, a->uris_, 0, u.uris, sizeof(*m->uris_))) == NULL) {
        return KTH_ERR_NO_MEMORY;
    }
    p->uri_cap = m->uri_count_ = u.uris;
    for (size_t i = 0; i < u.uris; i++) {
        if ((m->uris_[i] = copy_string(p, a->uris_[i])) == NULL) {
            return KTH_ERR_NO_MEMORY;
        }
    }
    size_t runs = 0;
    while (runs < a->uri_run_count_ && a->uri_runs_[runs].first < count) {
        runs++;
    }
    if (runs > 0 &&
        (m->uri_runs_ = copy_array(p, a->uri_runs_, runs, runs, sizeof(*m->uri_runs_))) == NULL) {
        return KTH_ERR_NO_MEMORY;
    }
    p->uri_run_cap = m->uri_run_count_ = runs;
    for (size_t r = 0; r < runs; r++) {
        hls_uri_run *run = &m->uri_runs_[r];
        hls_segment_rec before = run->first > 0 ? hls_media_record(a, run->first - 1)
                                                : (hls_segment_rec){.bits = HLS_SEG_TEMPLATE};
        if ((before.bits & HLS_SEG_TEMPLATE) || before.uri >= u.uris ||
            a->uris_[before.uri] != run->base) {
            return hls_parser_fail(p, KTH_ERR_INVALID_ARG, "the model's URI runs are not its own");
        }
        run->base = m->uris_[before.uri];
    }
    return KTH_OK;
}

/* Copies the segments' own tables: records, durations, starts, ranges, titles, dates. `cap` is
 * the room to make for the segments the text will add. */
static int copy_segments(hls_parser *p, const hls_media_playlist *a, size_t count, size_t cap,
                         used u)
{
    hls_media_playlist *m = &p->pl->media;
    size_t runs = runs_before(a, count);
    if ((m->runs_ = copy_array(p, a->runs_, runs, runs + 16, sizeof(*m->runs_))) == NULL) {
        return KTH_ERR_NO_MEMORY;
    }
    p->run_cap = runs + 16;
    m->run_count_ = runs;
    hls_segment_run *last = &m->runs_[runs - 1];
    if (last->first == count - 1) {
        last->rec.bits &= ~HLS_SEG_URI_STEP; /* a run of one, as the parser left it then */
    }
    m->durations_ = copy_array(p, a->durations_, u.durations, u.durations, sizeof(double));
    m->duration_of_ = copy_array(p, a->duration_of_, count, cap, a->dur_width_);
    size_t starts = (count + HLS_START_EVERY - 1) / HLS_START_EVERY;
    m->starts_ = copy_array(p, a->starts_, starts, cap / HLS_START_EVERY + 1, sizeof(double));
    if (!m->durations_ || !m->duration_of_ || !m->starts_) {
        return KTH_ERR_NO_MEMORY;
    }
    p->duration_cap = m->duration_count_ = u.durations;
    m->dur_width_ = a->dur_width_;
    p->segment_cap = cap;
    p->start_cap = cap / HLS_START_EVERY + 1;
    if (a->ranges_ != NULL && any_range(a, runs)) { /* the table exists when a segment has one */
        size_t first = a->ranges_first_; /* before `count`: a copied segment has a range */
        m->ranges_ = copy_array(p, a->ranges_, count - first, cap - first, sizeof(*m->ranges_));
        if (m->ranges_ == NULL) {
            return KTH_ERR_NO_MEMORY;
        }
        m->ranges_first_ = first;
        p->seg_range_cap = cap - first;
    }
    size_t titles = 0, dates = 0;
    while (titles < a->title_count_ && a->titles_[titles].segment < count) {
        titles++;
    }
    while (dates < a->date_count_ && a->dates_[dates].segment < count) {
        dates++;
    }
    if ((titles > 0 &&
         (m->titles_ = copy_array(p, a->titles_, titles, titles, sizeof(*m->titles_))) == NULL) ||
        (dates > 0 &&
         (m->dates_ = copy_array(p, a->dates_, dates, dates, sizeof(*m->dates_))) == NULL)) {
        return KTH_ERR_NO_MEMORY;
    }
    p->title_cap = m->title_count_ = titles;
    p->date_cap = m->date_count_ = dates;
    for (size_t i = 0; i < titles; i++) {
        if ((m->titles_[i].title = copy_string(p, m->titles_[i].title)) == NULL) {
            return KTH_ERR_NO_MEMORY;
        }
    }
    m->segment_count = count;
    return KTH_OK;
}

/* Sets the parser's state to what it was after segment count - 1 of a. */
static void resume_after(hls_parser *p, const hls_media_playlist *a, size_t count)
{
    hls_media_playlist *m = &p->pl->media;
    const hls_segment last = hls_media_segment(a, count - 1);
    const hls_segment_rec rec = hls_media_record(a, count - 1);
    m->total_duration = last.start + last.duration; /* the running sum, added in the same order */
    p->discontinuity_count = rec.bits >> HLS_SEG_FLAG_BITS;
    if (m->date_count_ > 0) {
        p->date_start = hls_media_segment(a, m->dates_[m->date_count_ - 1].segment).start;
    }
    if (last.key != HLS_NONE) {
        p->keys_in_force[0] = (hls_key_slot){m->keys[last.key], last.key, ++p->key_serial};
        p->keys_in_force_count = 1;
    }
    if (last.map != HLS_NONE) {
        const hls_map *map = &m->maps[last.map];
        p->map = (hls_map_slot){.present = true,
                                .raw_uri = map->uri,
                                .range = map->range,
                                .has_key = map->key != HLS_NONE,
                                .line = map->line,
                                .index = last.map};
        if (map->key != HLS_NONE) {
            p->map.key = (hls_key_slot){m->keys[map->key], map->key, ++p->key_serial};
        }
    }
}

int hls_media_seed(hls_parser *p, const hls_playlist *from, size_t count, size_t more)
{
    const hls_media_playlist *a = &from->media;
    if (from->kind != HLS_PLAYLIST_MEDIA || count == 0 || count > a->segment_count ||
        more > SIZE_MAX - count - HLS_START_EVERY) {
        return hls_parser_fail(p, KTH_ERR_INVALID_ARG, "no such segments to start from");
    }
    if (count > p->lim.max_segments) {
        return hls_parser_fail(p, KTH_ERR_LIMIT, "more than %zu segments", p->lim.max_segments);
    }
    p->pl->kind = HLS_PLAYLIST_MEDIA;
    p->kind_tag = "EXTINF";
    p->pl->media.media_sequence = a->media_sequence;
    p->pl->media.discontinuity_sequence = a->discontinuity_sequence;
    used u = count_used(a, count, runs_before(a, count));
    int rc = copy_keys_and_maps(p, a, u);
    if (rc == KTH_OK) {
        rc = copy_uris(p, a, count, u);
    }
    if (rc == KTH_OK) {
        rc = copy_segments(p, a, count, count + (more > 16 ? more : 16), u);
    }
    if (rc != KTH_OK) {
        return rc;
    }
    resume_after(p, a, count);
    return KTH_OK;
}
