/*
 * prefetch.c — kth_hls_prefetch: fills the cache with everything offline playback of chosen
 * HLS variants needs, by playing each of them to its end.
 *
 * Nothing here fetches on its own. Each chosen variant is played by an ordinary stream opened
 * with kth_stream_open (the public entry point, used here as any program would), started on that
 * variant and fixed to it in manual mode, and read to its proven end with the bytes thrown away.
 * Playlists, keys, init sections and segments therefore reach the cache through the one download
 * path playback uses, with its validation, retries and decryption checks, and what is already
 * cached is read from the cache instead of fetched again. A live or event playlist without
 * EXT-X-ENDLIST has no end to read to and is refused once the first stream has loaded it.
 *
 * With a progress callback, reads wait in short slices (PROGRESS_TICK_MS) so the callback runs
 * regularly, and can cancel, even while no bytes arrive; the stream's read timeout is applied
 * across the slices as the stall limit. Without one, a read waits for bytes up to that limit. The
 * media time shown to the callback is located through the session (under its lock, which is never
 * held while the callback runs).
 */
#include <kithara/hls.h>

#include "api/stream_options.h"
#include "hls/session.h"
#include "platform/sync.h"
#include "platform/mem.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define PROGRESS_TICK_MS 250
#define READ_BUFFER      (256 * 1024)
/* Consecutive "bytes vanished, read again" answers tolerated before giving up. */
#define MAX_RETRIES 100

typedef struct prefetch_run {
    const char *url;
    kth_stream_options stream_opts; /* .hls points at hls below */
    kth_hls_options hls;
    int64_t stall_ms; /* < 0: no limit */
    kth_hls_progress_fn fn;
    void *user;
    kth_hls_progress progress;
    uint8_t *buf;
    char *err;
    size_t errlen;
} prefetch_run;

static void set_error(prefetch_run *run, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void set_error(prefetch_run *run, const char *fmt, ...)
{
    if (!run->err || run->errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(run->err, run->errlen, fmt, ap);
    va_end(ap);
}

/* The stream's failure as one sentence: what the prefetch was doing, the status, the detail. */
static void set_stream_error(prefetch_run *run, kth_stream *stream, kth_status status)
{
    char detail[HLS_ERR_MAX];
    kth_stream_last_error(stream, detail, sizeof detail);
    set_error(run, "%s: variant %d: %s%s%s", run->url, run->progress.variant, kth_strerror(status),
              detail[0] ? ": " : "", detail);
}

/* Media seconds before the stream position: the start of the segment it lies in plus the part
 * of that segment's duration its bytes cover (while that segment's size is unknown, its start
 * when that is later than *seconds); past the end, `total`. */
static void media_seconds_at(kth_stream *stream, double total, double *seconds)
{
    stream_source *src = stream_get_source(stream);
    if (!hls_source_is(src))
        return;
    hls_session *s = (hls_session *)src;
    uint64_t position = kth_stream_position(stream);
    platform_mutex_lock(&s->lock);
    hls_place place;
    hls_locate r = session_locate(s, position, &place);
    hls_entry e;
    if (r != HLS_PAST_END &&
        hls_layout_entry(s->variants[place.variant].layout, place.entry, &e) == KTH_OK) {
        /* NEED_SIZE names the first entry without a size at or before the position (the one
         * being read, or the one the reader waits at): its start is a lower bound. */
        double t = e.start;
        if (r == HLS_LOCATED && e.kind == HLS_ENTRY_SEGMENT && e.size_known && e.size > 0)
            t += e.duration * (double)place.within / (double)e.size;
        if (r == HLS_LOCATED || t > *seconds)
            *seconds = t;
    } else if (r == HLS_PAST_END) {
        *seconds = total;
    }
    platform_mutex_unlock(&s->lock);
}

/* Calls the progress callback (no lock held). False: the caller cancelled. */
static bool report(prefetch_run *run)
{
    return !run->fn || run->fn(run->user, &run->progress);
}

static kth_status open_stream(prefetch_run *run, int initial_variant, kth_stream **out)
{
    run->hls.fixed_start = initial_variant >= 0;
    run->hls.initial_variant = initial_variant;
    run->hls.start_manual = initial_variant >= 0;
    char detail[HLS_ERR_MAX] = "";
    kth_status st = kth_stream_open(run->url, &run->stream_opts, out, detail, sizeof detail);
    if (st != KTH_OK) {
        /* The open's sentence usually names the playlist URL; make sure the URL asked for is
         * named too. */
        if (strstr(detail, run->url))
            set_error(run, "%s", detail);
        else
            set_error(run, "%s: %s%s%s", run->url, kth_strerror(st), detail[0] ? ": " : "", detail);
    }
    return st;
}

/* Reads the stream to its proven end, discarding the bytes, reporting progress. */
static kth_status drain(prefetch_run *run, kth_stream *s)
{
    kth_hls_progress *p = &run->progress;
    p->bytes = 0;
    p->total_bytes = 0;
    p->seconds = 0;
    p->total_seconds = kth_stream_total_duration(s);
    if (!report(run))
        goto cancelled;
    int64_t now = platform_monotonic_ns();
    int64_t last_report = now, last_bytes = now;
    unsigned retries = 0;
    /* Without a callback there is nothing to wake up for but bytes, the end or the stall
     * limit. */
    int64_t slice_ms = run->fn             ? PROGRESS_TICK_MS
                       : run->stall_ms < 0 ? KTH_WAIT_FOREVER
                                           : run->stall_ms;
    for (;;) {
        kth_read_outcome o;
        kth_stream_try_read(s, run->buf, READ_BUFFER, slice_ms, &o);
        now = platform_monotonic_ns();
        if (o.kind == KTH_READ_EOF)
            break;
        if (o.kind == KTH_READ_ERROR) {
            set_stream_error(run, s, o.status);
            return o.status;
        }
        if (o.kind == KTH_READ_BYTES) {
            p->bytes += o.n;
            p->bytes_all += o.n;
            last_bytes = now;
            retries = 0;
        } else if (o.reason == KTH_PENDING_VARIANT_CHANGE) {
            /* A fixed variant never switches; should a fence appear, the bytes behind it are
             * needed all the same. */
            kth_status st = kth_stream_clear_variant_fence(s);
            if (st != KTH_OK) {
                set_stream_error(run, s, st);
                return st;
            }
        } else if (o.reason == KTH_PENDING_RETRY) {
            if (++retries > MAX_RETRIES) {
                set_error(run, "%s: variant %d: %s at byte %llu", run->url, p->variant,
                          kth_strerror(KTH_ERR_RETRY), (unsigned long long)o.position);
                return KTH_ERR_RETRY;
            }
        } else if (o.reason == KTH_PENDING_NOT_READY && run->stall_ms >= 0 &&
                   (now - last_bytes) / 1000000 >= run->stall_ms) {
            set_error(run, "%s: variant %d: no bytes for %lld ms at byte %llu", run->url,
                      p->variant, (long long)run->stall_ms, (unsigned long long)o.position);
            return KTH_ERR_TIMEOUT;
        }
        if (now - last_report >= (int64_t)PROGRESS_TICK_MS * 1000000) {
            last_report = now;
            kth_stream_length(s, &p->total_bytes);
            media_seconds_at(s, p->total_seconds, &p->seconds);
            if (!report(run))
                goto cancelled;
        }
    }
    p->total_bytes = p->bytes;
    p->seconds = p->total_seconds;
    p->variants_done++;
    if (!report(run))
        goto cancelled;
    return KTH_OK;

cancelled:
    set_error(run, "%s: prefetch cancelled in variant %d at byte %llu", run->url, p->variant,
              (unsigned long long)p->bytes);
    return KTH_ERR_CANCELLED;
}

kth_status kth_hls_prefetch(const char *url, const kth_stream_options *opts, int variant,
                            kth_hls_progress_fn progress, void *user, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    prefetch_run run = {.url = url, .fn = progress, .user = user, .err = err, .errlen = errlen};
    if (!url || !*url) {
        set_error(&run, "no URL given");
        return KTH_ERR_INVALID_ARG;
    }
    bool http = strncasecmp(url, "http://", 7) == 0 || strncasecmp(url, "https://", 8) == 0;
    if (!http || !hls_looks_like_playlist(url, NULL, NULL, 0)) {
        set_error(&run, "%s: not an HLS playlist URL (http or https, a path ending in .m3u8)", url);
        return KTH_ERR_UNSUPPORTED;
    }
    if (variant < KTH_HLS_TOP_VARIANT) {
        set_error(&run, "%s: variant %d is not a variant index", url, variant);
        return KTH_ERR_OUT_OF_RANGE;
    }
    char detail[HLS_ERR_MAX];
    kth_status st = api_stream_options(opts, &run.stream_opts, &run.hls, detail, sizeof detail);
    if (st != KTH_OK) {
        set_error(&run, "%s: %s", url, detail);
        return st;
    }
    run.stall_ms = run.stream_opts.read_timeout_ms;
    run.buf = platform_malloc(READ_BUFFER);
    if (!run.buf) {
        set_error(&run, "%s: out of memory", url);
        return KTH_ERR_NO_MEMORY;
    }

    /* The first stream tells the ladder's size. An initial variant past the top opens on the
     * top rung, which is what KTH_HLS_TOP_VARIANT asks for. */
    int first = variant >= 0 ? variant : variant == KTH_HLS_ALL_VARIANTS ? 0 : INT_MAX;
    kth_stream *s = NULL;
    st = open_stream(&run, first, &s);
    if (st != KTH_OK) {
        platform_free(run.buf);
        return st;
    }
    kth_hls_playlist_info pi;
    if (kth_stream_playlist_info(s, &pi) == KTH_OK && strcmp(pi.kind, "vod") != 0 && !pi.ended) {
        set_error(&run,
                  "%s: a %s playlist has no end yet: there is nothing complete to fetch for "
                  "offline play",
                  url, pi.kind);
        kth_stream_close(s);
        platform_free(run.buf);
        return KTH_ERR_UNSUPPORTED;
    }
    int count = kth_stream_variant_count(s);
    int lo = 0, hi = count; /* [lo, hi) */
    if (variant >= 0) {
        lo = variant;
        hi = lo < count ? lo + 1 : count + 1;
    } else if (variant == KTH_HLS_TOP_VARIANT) {
        lo = count ? count - 1 : 0;
    }
    if (count == 0 || hi > count) {
        set_error(&run, "%s: variant %d is out of range (the ladder has %d)", url, variant, count);
        st = KTH_ERR_OUT_OF_RANGE;
    }
    run.progress.variant_count = hi - lo;
    for (int v = lo; st == KTH_OK && v < hi; v++) {
        run.progress.variant = v;
        if (!s && (st = open_stream(&run, v, &s)) != KTH_OK)
            break;
        st = kth_stream_abr_set_manual(s, v);
        if (st != KTH_OK)
            set_stream_error(&run, s, st);
        else
            st = drain(&run, s);
        kth_stream_close(s);
        s = NULL;
    }
    kth_stream_close(s);
    platform_free(run.buf);
    return st;
}
