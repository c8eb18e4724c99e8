/*
 * live.c — a live HLS stream whose window advances with the test's clock (kts_live.h), built
 * on the server's public registrations: the playlist is a body replaced at each step, the
 * segments are MPEG-TS-framed synthetic bodies added as they appear and removed as they leave.
 */
#include "kts_live.h"

#include <kithara/status.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RESET_SEED   1000000u
#define MAX_PLAYLIST (512 * 1024) /* an event playlist of several thousand segments */

struct kts_live_stream {
    kts_server *srv;
    kts_live cfg;
    char dir[200];
    int64_t ms;
    bool reset;      /* the served segments are of the epoch after a restart */
    uint64_t lo, hi; /* segments [lo, hi) are registered */
    char text[MAX_PLAYLIST];
};

/* How long each segment lasts, in milliseconds. */
static int64_t segment_ms(const kts_live *l)
{
    return l->segment_ms ? (int64_t)l->segment_ms : (int64_t)l->target_duration * 1000;
}

/* What the playlist at time ms lists: segments [*first, *end) of epoch *reset. */
static void listing(const kts_live *l, int64_t ms, uint64_t *first, uint64_t *end, bool *reset)
{
    uint64_t produced = l->window + (uint64_t)(ms / segment_ms(l));
    if ((l->mode == KTS_LIVE_STUCK || l->mode == KTS_LIVE_ENDLIST) && produced > l->mode_at)
        produced = l->mode_at > 0 ? l->mode_at : 1;
    if (l->end_at > 0 && produced > l->end_at)
        produced = l->end_at;
    *reset = l->mode == KTS_LIVE_RESET && produced > l->mode_at;
    if (*reset)
        produced -= l->mode_at;
    *end = produced;
    *first = l->event || produced <= l->window ? 0 : produced - l->window;
}

uint64_t kts_live_segment_seed(const kts_live *live, uint64_t sequence, bool reset)
{
    return live->seed + (reset ? RESET_SEED : 0) + sequence;
}

static void segment_path(const char *dir, bool reset, uint64_t n, char *buf, size_t size)
{
    snprintf(buf, size, "%s/%s%llu.ts", dir, reset ? "r" : "seg", (unsigned long long)n);
}

size_t kts_live_playlist(const kts_live *l, int64_t ms, char *buf, size_t size)
{
    uint64_t first, end;
    bool reset;
    listing(l, ms, &first, &end, &reset);
    bool every = l->mode == KTS_LIVE_DISCONTINUITIES;
    bool disc = (l->mode == KTS_LIVE_DISCONTINUITY || every) && l->mode_at > 0;
    /* The discontinuity sequence of the first listed segment: the tags at or before it. */
    uint64_t before = !disc || l->mode_at > first ? 0 : every ? first - l->mode_at + 1 : 1;
    size_t n =
        (size_t)snprintf(buf, size,
                         "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:%u\n"
                         "#EXT-X-MEDIA-SEQUENCE:%llu\n#EXT-X-DISCONTINUITY-SEQUENCE:%llu\n%s",
                         l->target_duration, (unsigned long long)first, (unsigned long long)before,
                         l->event ? "#EXT-X-PLAYLIST-TYPE:EVENT\n" : "");
    for (uint64_t s = first; s < end && n < size; s++) {
        char path[256];
        segment_path("", reset, s, path, sizeof path);
        n += (size_t)snprintf(buf + n, size - n, "%s#EXTINF:%lld.%03lld,\n%s\n",
                              disc && (every ? s >= l->mode_at : s == l->mode_at) && s > first
                                  ? "#EXT-X-DISCONTINUITY\n"
                                  : "",
                              (long long)(segment_ms(l) / 1000), (long long)(segment_ms(l) % 1000),
                              path + 1);
    }
    if (n < size &&
        ((l->mode == KTS_LIVE_ENDLIST && end == l->mode_at) || (l->end_at > 0 && end == l->end_at)))
        n += (size_t)snprintf(buf + n, size - n, "#EXT-X-ENDLIST\n");
    return n < size ? n : 0;
}

/* Registers [first, end) of epoch `reset` and removes what is registered outside it. */
static int serve(kts_live_stream *ls, uint64_t first, uint64_t end, bool reset)
{
    char path[256];
    if (reset != ls->reset || first >= ls->hi || end < ls->lo) {
        for (uint64_t s = ls->lo; s < ls->hi; s++) {
            segment_path(ls->dir, ls->reset, s, path, sizeof path);
            kts_remove_body(ls->srv, path);
        }
        ls->lo = ls->hi = first;
        ls->reset = reset;
    }
    for (; ls->lo < first; ls->lo++) {
        segment_path(ls->dir, ls->reset, ls->lo, path, sizeof path);
        kts_remove_body(ls->srv, path);
    }
    for (; ls->hi < end; ls->hi++) {
        segment_path(ls->dir, reset, ls->hi, path, sizeof path);
        int rc = kts_add_ts_synth(ls->srv, path, ls->cfg.segment_size,
                                  kts_live_segment_seed(&ls->cfg, ls->hi, reset), "video/mp2t");
        if (rc != KTH_OK)
            return rc;
    }
    return KTH_OK;
}

int kts_live_advance(kts_live_stream *ls, int64_t ms)
{
    if (ms < ls->ms)
        return KTH_ERR_INVALID_ARG;
    ls->ms = ms;
    uint64_t first, end;
    bool reset;
    listing(&ls->cfg, ms, &first, &end, &reset);
    int rc = serve(ls, first, end, reset);
    if (rc != KTH_OK)
        return rc;
    size_t n = kts_live_playlist(&ls->cfg, ms, ls->text, sizeof ls->text);
    if (n == 0)
        return KTH_ERR_LIMIT;
    char path[256];
    snprintf(path, sizeof path, "%s/live.m3u8", ls->dir);
    return kts_add_body(ls->srv, path, ls->text, n, "application/vnd.apple.mpegurl");
}

int kts_live_start(kts_server *srv, const char *dir, const kts_live *live, kts_live_stream **out)
{
    if (!srv || !dir || dir[0] != '/' || strlen(dir) >= 200 || !live || !out || live->window == 0 ||
        live->target_duration == 0 || live->segment_size == 0 ||
        live->segment_ms > live->target_duration * 1000u)
        return KTH_ERR_INVALID_ARG;
    kts_live_stream *ls = calloc(1, sizeof *ls);
    if (!ls)
        return KTH_ERR_NO_MEMORY;
    ls->srv = srv;
    ls->cfg = *live;
    snprintf(ls->dir, sizeof ls->dir, "%s", dir);
    int rc = kts_live_advance(ls, 0);
    if (rc != KTH_OK) {
        kts_live_free(ls);
        return rc;
    }
    *out = ls;
    return KTH_OK;
}

void kts_live_free(kts_live_stream *ls)
{
    if (!ls)
        return;
    char path[256];
    for (uint64_t s = ls->lo; s < ls->hi; s++) {
        segment_path(ls->dir, ls->reset, s, path, sizeof path);
        kts_remove_body(ls->srv, path);
    }
    snprintf(path, sizeof path, "%s/live.m3u8", ls->dir);
    kts_remove_body(ls->srv, path);
    free(ls);
}
