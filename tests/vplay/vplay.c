/*
 * vplay.c — one listening session through the whole pipeline in virtual time (vplay.h).
 *
 * The driving thread does everything in turn: it settles the system (server, downloader,
 * reader), lets the reader read, settles again, then moves the clock and the link to the next
 * moment something can happen. The stream is opened on a thread of its own, because the open
 * waits for playlists that arrive only when the clock moves.
 */
#include "vplay.h"

#include "kts_link.h"
#include "net/downloader.h"
#include "platform/clock.h"
#include "testserver.h"

#include <kithara/cache.h>
#include <kithara/downloader.h>
#include <kithara/events.h>
#include <kithara/stream.h>

#include <ftw.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define T0_NS           INT64_C(1000000000) /* virtual time of the open */
#define SETTLE_MS       30000               /* real time a settle may take */
#define OPENER_REQUESTS 2 /* what the open fetches itself: the master and a media playlist */
#define READ_CHUNK      (64 * 1024)
#define MIN_TIMER_STEP  INT64_C(1000000) /* a timer already due moves the clock by 1 ms */

typedef struct vp {
    const kvp_config *c;
    kvp_result *r;
    kts_server *srv;
    platform_virtual_clock vc;
    int64_t now;
    kth_downloader *d;
    kth_cache *cache;
    char *dir;
    kth_bus *bus;
    kth_subscription *sub;
    char url[256];
    size_t playlist_bytes[2]; /* the master playlist's, the lowest rung's media playlist's */
    /* The opener thread. */
    pthread_t opener;
    bool opener_running;
    atomic_bool opened;
    kth_stream *opening; /* the opener's, until it is joined */
    kth_stream *stream;  /* the driver's, once the opener is joined */
    kth_status open_status;
    char open_error[200];
    /* The reader. */
    uint64_t pos;    /* stream position */
    bool in_segment; /* seg, variant, seg_start and seg_size describe the segment read */
    size_t seg;
    int variant;
    uint64_t seg_start; /* stream offset of its first byte */
    uint64_t seg_size;
    double read_s; /* media read */
    double played_s;
    bool playing;
    bool eof;
    unsigned char *buf;
    size_t logged;           /* server log entries written to the log */
    unsigned completed_seen; /* requests completed when the opener was last looked at */
    unsigned fetching;       /* segment fetches started and not yet ended, by the events */
    bool entered;            /* a playback event not yet matched to a segment */
    kth_event_segment entry; /* ... its segment */
} vp;

static double real_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int fail(vp *p, const char *what, const char *detail)
{
    if (p->r->error[0] == '\0')
        snprintf(p->r->error, sizeof p->r->error, "%s%s%s", what, detail ? ": " : "",
                 detail ? detail : "");
    return -1;
}

static uint64_t segment_bytes(const kvp_config *c, size_t level)
{
    return (uint64_t)llround(c->ladder_kbps[level] * 1000.0 * c->segment_s / 8.0);
}

static uint64_t segment_seed(size_t level, size_t seg)
{
    return 1000003u * (uint64_t)(level + 1) + seg;
}

/* ---- the server ---------------------------------------------------------------------------- */

/* The link of the session's trace, starting at the open. */
static kts_link_config link_config(const kvp_config *c)
{
    return (kts_link_config){.time_s = c->time_s,
                             .mbps = c->mbps,
                             .count = c->trace_rows,
                             .scale = c->scale,
                             .latency_ms = c->latency_ms,
                             .start_ns = T0_NS};
}

static int serve_media_playlist(vp *p, size_t level)
{
    const kvp_config *c = p->c;
    size_t cap = 256 + c->segments * 48;
    char *text = malloc(cap);
    if (!text)
        return fail(p, "out of memory", NULL);
    size_t len = (size_t)snprintf(text, cap,
                                  "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:%d\n"
                                  "#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:VOD\n",
                                  (int)ceil(c->segment_s));
    for (size_t n = 0; n < c->segments; n++)
        len +=
            (size_t)snprintf(text + len, cap - len, "#EXTINF:%.3f,\nseg%zu.ts\n", c->segment_s, n);
    len += (size_t)snprintf(text + len, cap - len, "#EXT-X-ENDLIST\n");
    char path[64];
    snprintf(path, sizeof path, "/p/v%zu/index.m3u8", level);
    if (level == 0)
        p->playlist_bytes[1] = len;
    int rc = kts_add_body(p->srv, path, text, len, NULL);
    free(text);
    for (size_t n = 0; rc == KTH_OK && n < c->segments; n++) {
        snprintf(path, sizeof path, "/p/v%zu/seg%zu.ts", level, n);
        rc = kts_add_ts_synth(p->srv, path, segment_bytes(c, level), segment_seed(level, n), NULL);
    }
    return rc == KTH_OK ? 0 : fail(p, "cannot serve the presentation", kth_strerror(rc));
}

static int serve(vp *p)
{
    const kvp_config *c = p->c;
    if (kts_start(NULL, &p->srv) != KTH_OK)
        return fail(p, "cannot start the test server", NULL);
    char master[4096];
    size_t len = (size_t)snprintf(master, sizeof master, "#EXTM3U\n#EXT-X-VERSION:3\n");
    for (size_t v = 0; v < c->levels && len < sizeof master - 128; v++)
        len += (size_t)snprintf(master + len, sizeof master - len,
                                "#EXT-X-STREAM-INF:BANDWIDTH=%.0f,CODECS=\"mp4a.40.2\"\n"
                                "v%zu/index.m3u8\n",
                                c->ladder_kbps[v] * 1000.0, v);
    p->playlist_bytes[0] = len;
    if (kts_add_body(p->srv, "/p/master.m3u8", master, len, NULL) != KTH_OK)
        return fail(p, "cannot serve the master playlist", NULL);
    for (size_t v = 0; v < c->levels; v++)
        if (serve_media_playlist(p, v) != 0)
            return -1;
    kts_link_config link = link_config(c);
    int rc = kts_link_attach(p->srv, &link);
    if (rc != KTH_OK)
        return fail(p, "cannot attach the link", kth_strerror(rc));
    for (size_t i = 0; i < c->limit_count; i++) {
        const kvp_limit *lim = &c->limits[i];
        char path[64];
        snprintf(path, sizeof path, "/p/v%zu/seg%zu.ts", lim->level, lim->segment);
        rc = kts_link_limit(p->srv, path, lim->after, lim->bytes_per_s);
        if (rc == KTH_OK && lim->chunked)
            rc = kts_add_fault(p->srv, path, &(kts_fault){.kind = KTS_FAULT_CHUNKED});
        if (rc != KTH_OK)
            return fail(p, "cannot limit a segment", kth_strerror(rc));
    }
    if (!kts_url(p->srv, "/p/master.m3u8", p->url, sizeof p->url))
        return fail(p, "the master playlist's URL does not fit", NULL);
    return 0;
}

/* ---- the pipeline -------------------------------------------------------------------------- */

static void *open_stream(void *arg)
{
    vp *p = arg;
    kth_stream_options so;
    kth_stream_options_init(&so);
    so.downloader = p->d;
    so.cache = p->cache;
    so.bus = p->bus;
    so.hls = p->c->hls;
    p->open_status = kth_stream_open(p->url, &so, &p->opening, p->open_error, sizeof p->open_error);
    if (p->c->opener_lag_ms > 0) {
        unsigned ms = p->c->opener_lag_ms;
        nanosleep(&(struct timespec){ms / 1000, (long)(ms % 1000) * 1000000L}, NULL);
    }
    atomic_store(&p->opened, true);
    return NULL;
}

static int start_pipeline(vp *p)
{
    char err[256] = "";
    platform_virtual_clock_init(&p->vc, T0_NS);
    p->now = T0_NS;
    net_downloader_hooks hooks = {.clock = &p->vc.base};
    kth_downloader_options o;
    kth_downloader_options_init(&o);
    if (net_downloader_new(&o, &hooks, &p->d, err, sizeof err) != KTH_OK)
        return fail(p, "cannot make a downloader", err);
    const char *tmp = getenv("TMPDIR");
    size_t need = strlen(tmp && *tmp ? tmp : "/tmp") + 16;
    p->dir = malloc(need);
    if (!p->dir)
        return fail(p, "out of memory", NULL);
    snprintf(p->dir, need, "%s/kvp-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(p->dir)) {
        free(p->dir);
        p->dir = NULL;
        return fail(p, "cannot make a cache folder", NULL);
    }
    kth_cache_options co;
    kth_cache_options_init(&co);
    co.dir = p->dir;
    co.no_sync = true;
    if (kth_cache_open(&co, &p->cache, err, sizeof err) != KTH_OK)
        return fail(p, "cannot open the cache", err);
    if (kth_bus_new(&p->bus) != KTH_OK || kth_bus_subscribe(p->bus, 4096, &p->sub) != KTH_OK)
        return fail(p, "cannot make the event bus", NULL);
    if (pthread_create(&p->opener, NULL, open_stream, p) != 0)
        return fail(p, "cannot start the opener", NULL);
    p->opener_running = true;
    return 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void stop_pipeline(vp *p)
{
    if (p->opener_running) {
        /* The open may wait for a link that will not move again: stopping the server ends it. */
        kts_stop(p->srv);
        p->srv = NULL;
        pthread_join(p->opener, NULL);
        p->stream = p->opening;
    }
    kth_stream_close(p->stream);
    kth_subscription_free(p->sub);
    kth_bus_unref(p->bus);
    kth_cache_unref(p->cache);
    kth_downloader_unref(p->d);
    kts_stop(p->srv);
    if (p->dir) {
        nftw(p->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
        free(p->dir);
    }
    free(p->buf);
}

/* Writes the requests that arrived since the last call to the log. */
static void log_requests(vp *p)
{
    size_t count = kts_log_count(p->srv);
    for (; p->c->log && p->logged < count; p->logged++) {
        kts_log_entry e;
        if (kts_log_get(p->srv, p->logged, &e) == KTH_OK)
            fprintf(p->c->log, "%9.3f request   %s %s%s%s\n", (double)(p->now - T0_NS) / 1e9,
                    e.method, e.path, e.range[0] ? " " : "", e.range);
    }
}

/* Waits until nothing more happens without the clock: the server has sent what the link
 * allowed, the downloader has taken it in and started what it wanted (those requests are on
 * the server), and two turns of its loop in a row changed none of its figures. */
static int settle(vp *p)
{
    double deadline = real_now() + SETTLE_MS / 1000.0;
    uint64_t last[5] = {0};
    bool have_last = false;
    for (;;) {
        if (kts_link_settle(p->srv, SETTLE_MS) != KTH_OK)
            return fail(p, "the server did not settle", NULL);
        if (net_downloader_barrier(p->d, SETTLE_MS) != KTH_OK ||
            net_downloader_barrier(p->d, SETTLE_MS) != KTH_OK)
            return fail(p, "the downloader did not settle", NULL);
        kth_downloader_stats st;
        kth_downloader_get_stats(p->d, &st);
        kts_link_stats ls;
        kts_link_get_stats(p->srv, &ls);
        unsigned arrived = kts_request_count(p->srv, NULL, NULL);
        bool on_server = st.running <= (uint64_t)ls.waiting + ls.flowing;
        uint64_t figures[5] = {st.bytes, arrived, st.running, st.queued,
                               st.completed + st.failed + st.cancelled};
        if (on_server && have_last && memcmp(figures, last, sizeof last) == 0) {
            log_requests(p);
            return 0;
        }
        memcpy(last, figures, sizeof last);
        have_last = true;
        if (!on_server) /* a request on its way: give it a moment (real time, bounded) */
            kts_wait_requests(p->srv, NULL, arrived + 1, 1);
        if (real_now() > deadline)
            return fail(p, "the pipeline did not settle", NULL);
    }
}

/* ---- the reader ------------------------------------------------------------------------------ */

/* Takes the stream's events: the playback event of a segment the reader entered (published on
 * this thread, during the read), and the log's lines. */
static void drain_events(vp *p)
{
    kth_event ev;
    while (kth_events_next(p->sub, &ev, KTH_NO_WAIT) == KTH_OK) {
        if (ev.kind == KTH_EVENT_HLS_PLAYBACK_PROGRESS && !ev.payload.segment.init) {
            p->entry = ev.payload.segment;
            p->entered = true;
        }
        if (ev.kind == KTH_EVENT_HLS_SEGMENT_STARTED && ++p->fetching > p->r->most_fetches)
            p->r->most_fetches = p->fetching;
        if (ev.kind == KTH_EVENT_HLS_SEGMENT_STARTED && !ev.payload.segment.init &&
            ev.payload.segment.variant >= 0 && (size_t)ev.payload.segment.variant < p->c->levels &&
            ev.payload.segment.index < p->c->segments)
            p->r->fetches[(size_t)ev.payload.segment.variant * p->c->segments +
                          ev.payload.segment.index]++;
        if (ev.kind == KTH_EVENT_HLS_SEGMENT_COMPLETED && p->fetching > 0)
            p->fetching--;
        if (ev.kind == KTH_EVENT_VARIANT_CHANGED && p->r->change_count < KVP_MAX_CHANGES) {
            kvp_change *ch = &p->r->changes[p->r->change_count++];
            ch->from = ev.payload.abr.from_variant;
            ch->to = ev.payload.abr.to_variant;
            snprintf(ch->reason, sizeof ch->reason, "%.*s", (int)sizeof ch->reason - 1, ev.text);
            ch->buffer_s = ev.payload.abr.buffer_seconds;
            ch->segment = p->seg;
        }
        if (!p->c->log)
            continue;
        double t = (double)(p->now - T0_NS) / 1e9;
        const kth_event_segment *sg = &ev.payload.segment;
        switch (ev.kind) {
        case KTH_EVENT_HLS_SEGMENT_STARTED:
        case KTH_EVENT_HLS_SEGMENT_COMPLETED:
        case KTH_EVENT_HLS_PLAYBACK_PROGRESS:
            fprintf(p->c->log, "%9.3f %-9s v%d #%llu %s bytes %llu dl %.3f played %.3f read %.3f\n",
                    t,
                    ev.kind == KTH_EVENT_HLS_SEGMENT_STARTED     ? "start"
                    : ev.kind == KTH_EVENT_HLS_SEGMENT_COMPLETED ? "done"
                                                                 : "play",
                    sg->variant, (unsigned long long)sg->index, kth_strerror(ev.status),
                    (unsigned long long)sg->bytes, (double)sg->download_ns / 1e9, p->played_s,
                    p->read_s);
            break;
        case KTH_EVENT_ABR_DECISION:
            fprintf(p->c->log, "%9.3f abr       %d->%d %s buffer %.3f est %.0f\n", t,
                    ev.payload.abr.from_variant, ev.payload.abr.to_variant, ev.text,
                    ev.payload.abr.buffer_seconds, ev.payload.abr.estimate_bps);
            break;
        default:
            break;
        }
    }
}

/* Enters the segment a read at a boundary began, as its playback event names it. */
static int enter_segment(vp *p)
{
    drain_events(p);
    size_t want = p->in_segment ? p->seg + 1 : 0;
    if (!p->entered)
        return fail(p, "a segment began without its playback event", NULL);
    kth_event_segment seg = p->entry;
    p->entered = false;
    if (seg.index != want || seg.variant < 0 || (size_t)seg.variant >= p->c->levels) {
        char detail[96];
        snprintf(detail, sizeof detail, "segment %llu of variant %d where %zu was next",
                 (unsigned long long)seg.index, seg.variant, want);
        return fail(p, "the stream played out of order", detail);
    }
    p->in_segment = true;
    p->seg = want;
    p->variant = seg.variant;
    p->seg_start = p->pos;
    p->seg_size = segment_bytes(p->c, (size_t)seg.variant);
    p->r->level[p->seg] = (size_t)seg.variant;
    return 0;
}

/* Takes n bytes just read at p->pos: checks them against their segment and moves on. */
static int take_bytes(vp *p, size_t n)
{
    bool boundary = !p->in_segment || p->pos == p->seg_start + p->seg_size;
    if (boundary && enter_segment(p) != 0)
        return -1;
    uint64_t at = p->pos - p->seg_start;
    if (at + n > p->seg_size)
        return fail(p, "a segment was longer than served", NULL);
    if (kts_ts_synth_check(segment_seed((size_t)p->variant, p->seg), at, p->buf, n) != n) {
        char detail[96];
        snprintf(detail, sizeof detail, "segment %zu of variant %d, at byte %llu", p->seg,
                 p->variant, (unsigned long long)at);
        return fail(p, "a wrong byte", detail);
    }
    p->pos += n;
    p->r->bytes_read += n;
    p->read_s =
        p->c->segment_s * ((double)p->seg + (double)(p->pos - p->seg_start) / (double)p->seg_size);
    return 0;
}

/* How far the reader reads now: the first segment whole before playback starts, then up to
 * readahead_s ahead of playback once less than half of that is left. */
static double read_target(const vp *p, bool started_reading)
{
    double ahead = p->c->readahead_s > 0 ? p->c->readahead_s : 1.0;
    if (!p->playing)
        return p->c->segment_s;
    if (!started_reading && p->read_s - p->played_s > ahead / 2)
        return p->read_s;
    return p->played_s + ahead;
}

/* One read of at most what the target asks for; 1 when bytes came, 0 when none can now. */
static int read_once(vp *p, double target)
{
    size_t n = 1; /* at a boundary: one byte, to learn the segment from its event */
    if (p->in_segment && p->pos < p->seg_start + p->seg_size) {
        uint64_t left = p->seg_start + p->seg_size - p->pos;
        double need = ceil((target - p->read_s) / p->c->segment_s * (double)p->seg_size);
        n = left < (uint64_t)need ? (size_t)left : (size_t)need;
        n = n > READ_CHUNK ? READ_CHUNK : n > 0 ? n : 1;
    }
    kth_read_outcome o;
    kth_stream_try_read(p->stream, p->buf, n, KTH_NO_WAIT, &o);
    switch (o.kind) {
    case KTH_READ_BYTES:
        return take_bytes(p, o.n) == 0 ? 1 : -1;
    case KTH_READ_PENDING:
        if (o.reason == KTH_PENDING_VARIANT_CHANGE)
            return kth_stream_clear_variant_fence(p->stream) == KTH_OK
                       ? 1
                       : fail(p, "cannot clear a variant fence", NULL);
        return o.reason == KTH_PENDING_NOT_READY ? 0 : 1;
    case KTH_READ_EOF:
        p->eof = true;
        if (p->read_s < p->c->segment_s * (double)p->c->segments - 1e-6)
            return fail(p, "the stream ended early", NULL);
        return 0;
    case KTH_READ_ERROR:
    default: {
        char detail[200];
        kth_stream_last_error(p->stream, detail, sizeof detail);
        return fail(p, "the stream failed", detail);
    }
    }
}

/* Reads what the reader wants and can have now. Returns the reads that moved, or -1. */
static int reader_step(vp *p)
{
    int moved = 0;
    for (int i = 0; i < 1000000 && !p->eof; i++) {
        double target = read_target(p, moved > 0);
        if (p->read_s >= target - 1e-9)
            break;
        int rc = read_once(p, target);
        if (rc < 0)
            return -1;
        if (rc == 0)
            break;
        moved++;
    }
    if (!p->playing && p->read_s >= p->c->segment_s - 1e-9) {
        p->playing = true;
        p->r->startup_s = (double)(p->now - T0_NS) / 1e9;
    }
    return moved;
}

/* Plays dt seconds: playback moves on while it has media, the rest is a stall, counted against
 * the segment the reader waits for. */
static void reader_play(vp *p, double dt)
{
    if (!p->playing)
        return;
    double end = p->c->segment_s * (double)p->c->segments;
    double go = p->read_s - p->played_s;
    go = go < 0 ? 0 : go > dt ? dt : go;
    p->played_s += go;
    double stall = dt - go;
    if (stall > 1e-12 && p->played_s < end - 1e-9) {
        size_t k = (size_t)floor(p->read_s / p->c->segment_s + 1e-9);
        k = k >= p->c->segments ? p->c->segments - 1 : k;
        p->r->rebuffer[k] += stall;
        p->r->rebuffer_s += stall;
    }
}

/* The next moment something can happen: on the link, in the downloader, or the reader's next
 * read; at most step_s away. */
static int64_t next_time(vp *p)
{
    double step_s = p->c->step_s > 0 ? p->c->step_s : 0.5;
    int64_t next = p->now + (int64_t)(step_s * 1e9);
    int64_t t = kts_link_next_event(p->srv);
    if (t < next)
        next = t;
    if (net_downloader_next_due(p->d, &t) && t < next)
        next = t > p->now + MIN_TIMER_STEP ? t : p->now + MIN_TIMER_STEP;
    if (p->playing && !p->eof) {
        double ahead = p->c->readahead_s > 0 ? p->c->readahead_s : 1.0;
        double wait = p->read_s - p->played_s - ahead / 2;
        if (wait > 0 && p->now + (int64_t)(wait * 1e9) < next)
            next = p->now + (int64_t)ceil(wait * 1e9);
    }
    return next > p->now ? next : p->now + 1000;
}

static void move_to(vp *p, int64_t next)
{
    reader_play(p, (double)(next - p->now) / 1e9);
    p->now = next;
    platform_virtual_clock_set(&p->vc, next);
    kts_link_advance(p->srv, next);
    if (p->stream && p->c->report_played)
        kth_stream_abr_report_played(p->stream, p->played_s);
    net_downloader_wake(p->d);
    p->r->steps++;
}

/* ---- the session ---------------------------------------------------------------------------- */

static int take_open(vp *p)
{
    if (!p->opener_running || !atomic_load(&p->opened))
        return 0;
    pthread_join(p->opener, NULL);
    p->opener_running = false;
    p->stream = p->opening;
    if (p->open_status != KTH_OK)
        return fail(p, "the stream did not open", p->open_error);
    if (p->c->report_played)
        kth_stream_abr_report_played(p->stream, 0);
    if (p->c->cap_bps > 0 && kth_stream_abr_set_cap(p->stream, p->c->cap_bps) != KTH_OK)
        return fail(p, "cannot cap the stream's bandwidth", NULL);
    return 0;
}

/* While the stream opens, its thread runs in real time between fetches: the clock moves only
 * while it waits for one. After a request ended, the opener gets a moment (real time, bounded)
 * to ask for the next or to return, so that time does not run on while it works; with nothing
 * on the link, the clock waits for it. Once its own requests (the master and one media
 * playlist, the first two) have ended, it asks for nothing more: the clock waits for it to
 * return, whatever the stream fetches in the background meanwhile. */
static int wait_for_opener(vp *p)
{
    double deadline = real_now() + SETTLE_MS / 1000.0;
    unsigned done = kts_completed_count(p->srv, NULL);
    if (p->opener_running && done >= OPENER_REQUESTS) {
        while (!atomic_load(&p->opened)) {
            if (real_now() > deadline)
                return fail(p, "the stream's open did not return", NULL);
            kts_wait_requests(p->srv, NULL, UINT_MAX, 1); /* a 1 ms pause */
        }
        p->completed_seen = done;
        return settle(p);
    }
    if (p->opener_running && done > p->completed_seen) {
        unsigned arrived = kts_request_count(p->srv, NULL, NULL);
        double until = real_now() + 0.25;
        while (!atomic_load(&p->opened) && kts_request_count(p->srv, NULL, NULL) == arrived &&
               real_now() < until)
            kts_wait_requests(p->srv, NULL, arrived + 1, 1);
        if (settle(p) != 0)
            return -1;
    }
    p->completed_seen = done;
    while (p->opener_running && !atomic_load(&p->opened)) {
        kts_link_stats ls;
        kts_link_get_stats(p->srv, &ls);
        if (ls.waiting + ls.flowing > 0)
            return 0;
        unsigned arrived = kts_request_count(p->srv, NULL, NULL);
        kts_wait_requests(p->srv, NULL, arrived + 1, 2);
        if (real_now() > deadline)
            return fail(p, "the stream's open neither fetched nor finished", NULL);
    }
    return settle(p);
}

static int play(vp *p)
{
    double media = p->c->segment_s * (double)p->c->segments;
    int64_t limit = T0_NS + (int64_t)((10 * media + 600) * 1e9);
    for (;;) {
        if (settle(p) != 0 || take_open(p) != 0)
            return -1;
        drain_events(p);
        for (int i = 0; p->stream && i < 1000; i++) {
            int moved = reader_step(p);
            if (moved < 0)
                return -1;
            if (moved == 0)
                break;
            if (settle(p) != 0) /* what the reads woke */
                return -1;
        }
        if (p->eof) {
            p->r->session_s = (double)(p->now - T0_NS) / 1e9 + (p->read_s - p->played_s);
            p->played_s = p->read_s;
            return 0;
        }
        if (p->now > limit)
            return fail(p, "the session did not finish in ten times its length", NULL);
        if (wait_for_opener(p) != 0)
            return -1;
        if (p->opener_running && atomic_load(&p->opened))
            continue; /* it has just opened: read before the clock moves */
        move_to(p, next_time(p));
    }
}

/* The link time by which `bytes` more than at `from` have been carried (to 1 µs). */
static int64_t carried_by(const kts_link_config *link, int64_t from, double bytes)
{
    int64_t lo = from, step = INT64_C(1000000000);
    while (kts_link_capacity(link, from, lo + step) < bytes)
        lo += step, step *= 2;
    int64_t hi = lo + step;
    while (hi - lo > 1000) {
        int64_t mid = lo + (hi - lo) / 2;
        if (kts_link_capacity(link, from, mid) < bytes)
            lo = mid;
        else
            hi = mid;
    }
    return hi;
}

static double startup_floor(const vp *p)
{
    const kvp_config *c = p->c;
    kts_link_config link = link_config(c);
    double sizes[3] = {(double)p->playlist_bytes[0], (double)p->playlist_bytes[1],
                       (double)segment_bytes(c, 0)};
    int64_t t = T0_NS;
    for (int i = 0; i < 3; i++)
        t = carried_by(&link, t + (int64_t)c->latency_ms * 1000000, sizes[i]);
    return (double)(t - T0_NS) / 1e9;
}

static void summarise(vp *p)
{
    kvp_result *r = p->r;
    const kvp_config *c = p->c;
    double kbps = 0;
    for (size_t n = 0; n < c->segments; n++) {
        kbps += c->ladder_kbps[r->level[n]];
        if (n > 0 && r->level[n] != r->level[n - 1])
            r->switches++;
    }
    r->mean_kbps = kbps / (double)c->segments;
    r->startup_floor_s = startup_floor(p);
    kth_stream_hls_stats(p->stream, &r->stats);
    r->finished = true;
}

int kvp_run(const kvp_config *config, kvp_result *out)
{
    memset(out, 0, sizeof *out);
    vp p = {.c = config, .r = out};
    atomic_init(&p.opened, false);
    double began = real_now();
    if (!config || config->levels == 0 || config->segments < 2 || !(config->segment_s > 0))
        return fail(&p, "a session needs a ladder and at least two segments", NULL);
    out->segments = config->segments;
    out->level = calloc(config->segments, sizeof *out->level);
    out->rebuffer = calloc(config->segments, sizeof *out->rebuffer);
    out->fetches = calloc(config->segments * config->levels, sizeof *out->fetches);
    p.buf = malloc(READ_CHUNK);
    int rc = !out->level || !out->rebuffer || !out->fetches || !p.buf
                 ? fail(&p, "out of memory", NULL)
                 : 0;
    if (rc == 0)
        rc = serve(&p);
    if (rc == 0)
        rc = start_pipeline(&p);
    if (rc == 0)
        rc = play(&p);
    if (rc == 0)
        summarise(&p);
    stop_pipeline(&p);
    out->real_s = real_now() - began;
    return rc;
}

void kvp_result_free(kvp_result *result)
{
    if (!result)
        return;
    free(result->level);
    free(result->rebuffer);
    free(result->fetches);
    result->level = NULL;
    result->rebuffer = NULL;
    result->fetches = NULL;
}
