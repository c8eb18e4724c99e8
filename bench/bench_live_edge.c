/*
 * bench_live_edge.c — a live HLS session in real time against the test server's live mode (1 s
 * segments, a window of 6, moved on to the real time every 20 ms by a child process that runs
 * the server, so that its threads and request log do not count in this process's RSS): a player
 * that consumes the stream at its media rate, reading at most one segment ahead, as a decoder fed
 * in real time would.
 *
 * Figures: latency to the live edge (the end of the newest segment the server has, minus the
 * player's media position; it starts at the hold-back of three target durations) sampled every
 * 100 ms, as min / median / max, against the hold-back ± one segment (target); the time the
 * player stalled with nothing to play; playlist reloads per minute against the RFC's pace (one
 * per target duration while the playlist changes: 60 a minute); RSS and cache bytes at 10 % of
 * the run and at its end (goal: flat). Every byte is checked against the server's pattern.
 *
 * With "variants" after the seconds, the server serves a second variant of twice the bit rate
 * (its own window, the same media sequence numbers) under a master playlist, and ABR chooses
 * between them at the live edge: the figures then also say how many segments of each variant
 * the player got, and the switches.
 *
 * Usage: bench_live_edge [seconds] [variants] (default 60; the figure is a 10-minute
 * run: 600).
 */
#include <kithara/kithara.h>

#include "kts_live.h"
#include "testserver.h"

#include <malloc.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define WINDOW    6
#define TARGET_S  1
#define SEG_BYTES (188 * 100)
#define HOLD_BACK (3.0 * TARGET_S)
#define HI_SEED   5000

/* The served variants: the low one at /live, the high one (twice the bytes) at /live/hi. */
static kts_live variant_cfg(int v)
{
    return (kts_live){.window = WINDOW,
                      .target_duration = TARGET_S,
                      .segment_size = (uint64_t)SEG_BYTES * (v ? 2 : 1),
                      .seed = v ? HI_SEED : 1};
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long heap_kib(void)
{
    struct mallinfo2 mi = mallinfo2();
    return (long)(mi.uordblks / 1024);
}

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld", &kib) == 1)
            break;
    if (f)
        fclose(f);
    return kib;
}

/* The server, in a child process: serves the live stream from t0 on, moving it to the real
 * time every 20 ms, until `hold` ends; then writes how many playlist requests it answered to
 * `up`, after the stream's URL it wrote there at the start. */
static void serve(double t0, int up, int hold, bool two)
{
    kts_server *srv = NULL;
    kts_live_stream *ls[2] = {NULL, NULL};
    kts_config cfg = {.log_capacity = 16}; /* nobody reads the log; keep it small */
    kts_live live[2] = {variant_cfg(0), variant_cfg(1)};
    char url[512];
    if (kts_start(&cfg, &srv) != 0 || kts_live_start(srv, "/live", &live[0], &ls[0]) != 0 ||
        (two && kts_live_start(srv, "/live/hi", &live[1], &ls[1]) != 0))
        _exit(1);
    char master[256];
    int len = snprintf(master, sizeof master,
                       "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=%d\nlive.m3u8\n"
                       "#EXT-X-STREAM-INF:BANDWIDTH=%d\nhi/live.m3u8\n",
                       SEG_BYTES * 8 / TARGET_S, 2 * SEG_BYTES * 8 / TARGET_S);
    if (two && kts_add_body(srv, "/live/master.m3u8", master, (size_t)len, NULL) != 0)
        _exit(1);
    kts_url(srv, two ? "/live/master.m3u8" : "/live/live.m3u8", url, sizeof url);
    if (write(up, url, strlen(url) + 1) < 0)
        _exit(1);
    struct pollfd pf = {.fd = hold, .events = POLLIN};
    while (poll(&pf, 1, 20) == 0)
        for (int v = 0; v < 2; v++)
            if (ls[v])
                kts_live_advance(ls[v], (int64_t)((now_s() - t0) * 1000.0));
    char line[64];
    int n = snprintf(line, sizeof line, "%u\n",
                     kts_request_count(srv, "/live/live.m3u8", NULL) +
                         kts_request_count(srv, "/live/hi/live.m3u8", NULL));
    if (write(up, line, (size_t)n) < 0)
        _exit(1);
    kts_live_free(ls[1]);
    kts_live_free(ls[0]);
    kts_stop(srv);
    _exit(0);
}

/* Reads up to and including the byte `end` (or to EOF) into buf. */
static void read_until(int fd, char *buf, size_t size, char end)
{
    size_t n = 0;
    while (n + 1 < size && read(fd, buf + n, 1) == 1 && buf[n++] != end) {
    }
    buf[n] = '\0';
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 60;
    bool two = argc > 2 && strcmp(argv[2], "variants") == 0;
    if (!(seconds >= 5) || (argc > 2 && !two)) {
        fprintf(stderr, "usage: bench_live_edge [seconds >= 5] [variants]\n");
        return 2;
    }
    const char *tmp = getenv("TMPDIR");
    char dir[4096], url[512], err[512];
    snprintf(dir, sizeof dir, "%s/kithara-bench-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    kth_cache_options co;
    kth_cache_options_init(&co);
    co.dir = mkdtemp(dir);
    co.no_sync = true;
    kth_cache *cache = NULL;
    int up[2], hold[2];
    double t0 = now_s();
    if (!co.dir || pipe(up) != 0 || pipe(hold) != 0)
        return 1;
    pid_t child = fork();
    if (child == 0) {
        close(up[0]);
        close(hold[1]);
        serve(t0, up[1], hold[0], two);
    }
    close(up[1]);
    close(hold[0]);
    read_until(up[0], url, sizeof url, '\0');
    if (child < 0 || !url[0] || kth_cache_open(&co, &cache, err, sizeof err) != KTH_OK) {
        fprintf(stderr, "bench_live_edge: setup failed\n");
        return 1;
    }
    kth_stream_options so;
    kth_stream_options_init(&so);
    so.cache = cache;
    kth_stream *s = NULL;
    if (kth_stream_open(url, &so, &s, err, sizeof err) != KTH_OK) {
        fprintf(stderr, "bench_live_edge: open: %s\n", err);
        return 1;
    }
    /* The player starts where the stream starts: three target durations before the edge of the
     * playlist it opened on (segment WINDOW - 3 when it opened in the first second). It reads
     * segment `seg` of variant `var`, `off` bytes in. */
    uint64_t first = WINDOW - 3, seg = first, off = 0;
    int var = kth_stream_current_variant(s);
    unsigned got[2] = {0, 0}, switches = 0;
    double stalled = 0, t_first = 0, next_sample = 0;
    size_t cap = (size_t)(seconds * 10) + 16, count = 0;
    double *lat = malloc(cap * sizeof *lat);
    long rss_early = 0, heap_early = 0;
    uint64_t cache_early = 0;
    static unsigned char buf[2 * SEG_BYTES];
    int rc = 0;
    for (;;) {
        double now = now_s();
        double played = t_first > 0 ? now - t_first - stalled : 0; /* media seconds */
        if (t_first > 0 && now - t_first >= seconds)
            break;
        if (t_first > 0 && now >= next_sample && count < cap) {
            double edge = (double)(WINDOW + (uint64_t)((now - t0) / TARGET_S)) * TARGET_S;
            lat[count++] = edge - ((double)first * TARGET_S + played);
            next_sample = now + 0.1;
            if (rss_early == 0 && now - t_first >= seconds / 10) {
                kth_cache_stats st;
                kth_cache_get_stats(cache, &st);
                rss_early = rss_kib();
                heap_early = heap_kib();
                cache_early = st.total_bytes;
            }
        }
        if (t_first > 0)
            kth_stream_abr_report_played(s, (double)first * TARGET_S + played); /* as a player */
        kts_live vc = variant_cfg(var > 0);
        double read_s = ((double)(seg - first) + (double)off / (double)vc.segment_size) * TARGET_S;
        if (read_s >= played + TARGET_S) { /* a segment ahead: play on */
            nanosleep(&(struct timespec){.tv_nsec = 5 * 1000 * 1000}, NULL);
            continue;
        }
        bool empty = t_first > 0 && read_s <= played;
        double room = (played + TARGET_S - read_s) / TARGET_S * (double)vc.segment_size + 1;
        size_t want = (size_t)(vc.segment_size - off); /* a read stays in one segment */
        want = (double)want < room ? want : (size_t)room;
        int64_t n = kth_stream_read(s, buf, want);
        if (n == KTH_ERR_VARIANT_CHANGE && off == 0) { /* a switch, at a segment boundary */
            kth_stream_clear_variant_fence(s);
            int now_var = kth_stream_current_variant(s);
            switches += now_var != var;
            var = now_var;
            continue;
        }
        if (n <= 0) {
            kth_stream_last_error(s, err, sizeof err);
            fprintf(stderr, "bench_live_edge: read at segment %llu + %llu: %s (%s)\n",
                    (unsigned long long)seg, (unsigned long long)off, kth_strerror((int)n), err);
            rc = 1;
            break;
        }
        if (kts_ts_synth_check(kts_live_segment_seed(&vc, seg, false), off, buf, (size_t)n) !=
            (size_t)n) {
            fprintf(stderr, "bench_live_edge: wrong byte in segment %llu of variant %d\n",
                    (unsigned long long)seg, var);
            rc = 1;
            break;
        }
        double after = now_s();
        if (t_first == 0)
            t_first = after;
        else if (empty)
            stalled += after - now; /* nothing to play while it waited */
        off += (uint64_t)n;
        if (off == vc.segment_size) {
            got[var > 0]++;
            seg++;
            off = 0;
        }
    }
    kth_cache_stats st;
    kth_cache_get_stats(cache, &st);
    long rss_end = rss_kib(), heap_end = heap_kib();
    kth_stream_close(s);
    close(hold[1]); /* the server's turn to stop, after it said how many reloads came */
    char line[64];
    read_until(up[0], line, sizeof line, '\n');
    unsigned reloads = (unsigned)strtoul(line, NULL, 10);
    waitpid(child, NULL, 0);
    if (rc == 0 && count > 0) {
        qsort(lat, count, sizeof *lat, cmp);
        double lo = lat[0], med = lat[count / 2], hi = lat[count - 1];
        bool pass = lo >= HOLD_BACK - TARGET_S && hi <= HOLD_BACK + TARGET_S;
        printf("bench_live_edge: %.0f s of live HLS (%d s segments, window %d), paced player\n",
               seconds, TARGET_S, WINDOW);
        printf("latency to the live edge: min %.2f s, median %.2f s, max %.2f s (target: hold-back "
               "%.0f s +- %d s: %s); stalled %.2f s\n",
               lo, med, hi, HOLD_BACK, TARGET_S, pass ? "PASS" : "FAIL", stalled);
        printf("playlist reloads: %.1f a minute (RFC pace while it changes: %.0f)\n",
               reloads / (seconds / 60.0), 60.0 / TARGET_S);
        if (two)
            printf("variants: %u segments of the low one, %u of the high one (twice the bit "
                   "rate), %u switches\n",
                   got[0], got[1], switches);
        printf(
            "RSS %ld KiB at 10 %% and %ld KiB at the end (%+ld KiB), heap in use %ld and %ld KiB "
            "(%+ld KiB); cache %llu bytes at 10 %% and %llu at the end (%d segments of %d bytes "
            "listed)\n",
            rss_early, rss_end, rss_end - rss_early, heap_early, heap_end, heap_end - heap_early,
            (unsigned long long)cache_early, (unsigned long long)st.total_bytes, WINDOW, SEG_BYTES);
    }
    free(lat);
    kth_cache_unref(cache);
    kth_shutdown();
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "bench_live_edge: could not remove %s\n", dir);
    return rc;
}
