/*
 * cmd_download.c — `kithara download [--cache-dir DIR] [--offline] [-q] [-v] [--variant N |
 * --all] URL`:
 * fetches what offline playback of an HLS presentation needs (playlists, keys, init sections,
 * every segment) into the cache, through kth_hls_prefetch.
 *
 * On a terminal (and without -q) a progress line on standard error is rewritten in place;
 * otherwise nothing is printed but errors and, at the end, one summary line on standard output.
 * Ctrl-C stops the download cleanly (what was fetched stays cached).
 */
#include "commands.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int download_usage(FILE *to, int code)
{
    fprintf(to,
            "usage: kithara download [--cache-dir DIR] [--offline] [-q] [-v]\n"
            "                        [--variant N | --all] URL\n"
            "  Downloads an HLS presentation into the cache so that it plays offline: its\n"
            "  playlists, keys, init sections and every segment of the top (highest bandwidth)\n"
            "  variant, of variant N (0 = lowest bandwidth) with --variant, or of every variant\n"
            "  with --all. What is cached already is not fetched again. With --offline nothing\n"
            "  is fetched: the command checks that the cache holds it all. Play it back with\n"
            "  'kithara cat --offline --variant N URL'.\n"
            "  On a terminal, progress is shown on standard error (not with -q); otherwise only\n"
            "  errors and a summary line (standard output) are printed.\n");
    tool_tls_usage(to);
    return code;
}

static volatile sig_atomic_t interrupted;

static void on_interrupt(int sig)
{
    (void)sig;
    interrupted = 1;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* "1.23 MiB" style. */
static void format_bytes(double bytes, char *buf, size_t size)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    size_t u = 0;
    while (bytes >= 1024 && u + 1 < sizeof units / sizeof units[0]) {
        bytes /= 1024;
        u++;
    }
    snprintf(buf, size, u ? "%.2f %s" : "%.0f %s", bytes, units[u]);
}

typedef struct download_view {
    bool tty;
    double started;         /* the whole download */
    double variant_started; /* the variant in progress */
    int variant;            /* the variant in progress, -1 before the first */
    int ordinal;            /* its place in this download, from 1 */
    size_t line_len;        /* of the progress line on screen, to blank what a shorter one
                               leaves */
    double duration;        /* the longest duration among the variants, seconds */
    int variants_done;
    uint64_t bytes_all;
} download_view;

static bool on_progress(void *user, const kth_hls_progress *p)
{
    download_view *view = user;
    double now = now_s();
    if (p->variant != view->variant) {
        view->variant = p->variant;
        view->variant_started = now;
        view->ordinal++;
    }
    if (p->variants_done > view->variants_done) {
        view->variants_done = p->variants_done;
        if (p->total_seconds > view->duration)
            view->duration = p->total_seconds;
    }
    view->bytes_all = p->bytes_all;
    if (view->tty) {
        char got[32], rate[32], eta[32] = "--:--";
        format_bytes((double)p->bytes, got, sizeof got);
        double elapsed = now - view->variant_started;
        format_bytes(elapsed > 0 ? (double)p->bytes / elapsed : 0, rate, sizeof rate);
        /* Media time is known in advance where bytes are not: the ETA follows it. */
        if (p->seconds > 0 && p->total_seconds >= p->seconds && elapsed > 0) {
            double left = elapsed * (p->total_seconds - p->seconds) / p->seconds;
            snprintf(eta, sizeof eta, "%d:%02d", (int)(left / 60), (int)left % 60);
        }
        char line[256];
        int n = snprintf(line, sizeof line, "variant %d [%d/%d]  %s  %.1f/%.1f s  %s/s  ETA %s",
                         p->variant, view->ordinal, p->variant_count, got, p->seconds,
                         p->total_seconds, rate, eta);
        size_t len = n > 0 ? (size_t)n : 0;
        if (len >= sizeof line)
            len = sizeof line - 1;
        fprintf(stderr, "\r%s%*s", line, view->line_len > len ? (int)(view->line_len - len) : 0,
                "");
        fflush(stderr);
        view->line_len = len;
    }
    return !interrupted;
}

static int parse_variant(const char *arg, int *variant)
{
    char *end;
    errno = 0;
    long v = strtol(arg, &end, 10);
    if (errno || *end || arg[0] == '\0' || v < 0 || v > 1000) {
        tool_error("--variant: '%s' is not a variant index", arg);
        return -1;
    }
    *variant = (int)v;
    return 0;
}

int cmd_download(int argc, char **argv)
{
    const char *url = NULL;
    int variant = KTH_HLS_TOP_VARIANT;
    bool chosen = false;
    tool_cache_options co = {.dir = NULL};
    for (int i = 1; i < argc; i++) {
        int c = tool_parse_cache_option(argc, argv, &i, &co);
        if (c < 0)
            return TOOL_EXIT_USAGE;
        if (c > 0)
            continue;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return download_usage(stdout, TOOL_EXIT_OK);
        if (strcmp(argv[i], "--variant") == 0 || strcmp(argv[i], "--all") == 0) {
            if (chosen) {
                tool_error("download: give one of --variant N and --all, once");
                return TOOL_EXIT_USAGE;
            }
            chosen = true;
            if (argv[i][2] == 'a') {
                variant = KTH_HLS_ALL_VARIANTS;
            } else if (i + 1 >= argc) {
                tool_error("--variant needs a variant index");
                return TOOL_EXIT_USAGE;
            } else if (parse_variant(argv[++i], &variant) != 0) {
                return TOOL_EXIT_USAGE;
            }
        } else {
            tool_arg t = tool_take_url("download", argv[i], &url);
            if (t != TOOL_ARG_URL)
                return t == TOOL_ARG_UNKNOWN ? download_usage(stderr, TOOL_EXIT_USAGE)
                                             : TOOL_EXIT_USAGE;
        }
    }
    if (!url)
        return download_usage(stderr, TOOL_EXIT_USAGE);
    if (!tool_is_remote(url)) {
        tool_error("%s: download needs an http or https URL of an HLS playlist", url);
        return TOOL_EXIT_USAGE;
    }

    kth_cache *cache = NULL;
    if (tool_open_cache(&co, &cache) != KTH_OK)
        return TOOL_EXIT_CACHE;
    kth_downloader *downloader = NULL;
    if (tool_open_downloader(&co, &downloader) != KTH_OK) {
        kth_cache_unref(cache);
        return TOOL_EXIT_FAILURE;
    }
    kth_stream_options so;
    kth_stream_options_init(&so);
    so.cache = cache;
    so.downloader = downloader;

    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_interrupt;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);

    download_view view = {.tty = tool_verbosity >= 0 && isatty(STDERR_FILENO) == 1, .variant = -1};
    view.started = view.variant_started = now_s();
    char err[1024];
    kth_status st = kth_hls_prefetch(url, &so, variant, on_progress, &view, err, sizeof err);
    double elapsed = now_s() - view.started;
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    if (view.tty && view.line_len > 0)
        fprintf(stderr, "\r%*s\r", (int)view.line_len, "");

    int rc = TOOL_EXIT_OK;
    if (st != KTH_OK) {
        if (st == KTH_ERR_CANCELLED && interrupted)
            tool_error("%s: interrupted; what was fetched stays cached", url);
        else if (err[0] && strstr(err, url))
            tool_error("%s: %s", kth_strerror(st), err);
        else
            tool_error("%s: %s%s%s", url, kth_strerror(st), err[0] ? ": " : "", err);
        tool_tls_hint(err);
        rc = tool_exit_code(st, true);
    } else {
        char total[32], rate[32];
        format_bytes((double)view.bytes_all, total, sizeof total);
        format_bytes(elapsed > 0 ? (double)view.bytes_all / elapsed : 0, rate, sizeof rate);
        char what[64];
        if (view.variants_done == 1)
            snprintf(what, sizeof what, "variant %d", view.variant);
        else
            snprintf(what, sizeof what, "%d variants", view.variants_done);
        printf("%s: %s of %.1f s, %s (%llu bytes) in %.2f s (%s/s)\n", url, what, view.duration,
               total, (unsigned long long)view.bytes_all, elapsed, rate);
    }
    kth_downloader_unref(downloader);
    kth_cache_unref(cache);
    kth_shutdown();
    return rc;
}
