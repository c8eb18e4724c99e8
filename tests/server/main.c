/*
 * main.c — kithara-testserver: the test server as a standalone program, for benchmarks and
 * manual checks.
 *
 *     kithara-testserver DIR [--port N] [--rate BYTES_PER_S] [--latency MS] [--bind ADDR]
 *
 * Serves DIR (and the /synth/... paths, an endless radio station at /radio: 128 kbit/s
 * declared, ICY metadata every 16000 bytes with a new title in each of the first blocks, and a
 * live HLS stream at /live/master.m3u8: a window of six 2-second segments of MPEG-TS framed
 * pattern at 128 kbit/s, one more every 2 s of wall time) on a loopback address until SIGINT or
 * SIGTERM. The first
 * line on standard output is the base URL, so a script can read it even with --port 0. --rate
 * and --latency apply to every path. Only loopback addresses are accepted for --bind: the server
 * has no access control and must never be reachable from another machine.
 *
 * The signals are blocked before the server starts (its threads inherit the mask) and taken
 * synchronously with sigtimedwait(), so no handler runs in an arbitrary thread; between them
 * the main thread moves the live stream to the time elapsed since the start.
 */
#include "kts_live.h"
#include "testserver.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The live stream: 2 s segments of 32,000 bytes (128 kbit/s, a whole number of TS packets
 * short of it), declared at that bandwidth by a master playlist so a player knows its rate. */
#define LIVE_SEGMENT_BYTES (188 * 170)
static const char LIVE_MASTER[] = "#EXTM3U\n"
                                  "#EXT-X-STREAM-INF:BANDWIDTH=128000\n"
                                  "live.m3u8\n";

static int64_t elapsed_ms(const struct timespec *since)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)(now.tv_sec - since->tv_sec) * 1000 + (now.tv_nsec - since->tv_nsec) / 1000000;
}

/* Serves /live; KTH_OK or the server's status. */
static int start_live(kts_server *srv, kts_live_stream **out)
{
    kts_live cfg = {
        .window = 6, .target_duration = 2, .segment_size = LIVE_SEGMENT_BYTES, .seed = 5};
    int rc = kts_live_start(srv, "/live", &cfg, out);
    if (rc == KTH_OK)
        rc = kts_add_body(srv, "/live/master.m3u8", LIVE_MASTER, sizeof LIVE_MASTER - 1,
                          "application/vnd.apple.mpegurl");
    return rc;
}

/* Waits for SIGINT or SIGTERM, moving the live stream on every quarter second. Returns 0, or
 * 1 when waiting failed. */
static int serve_until_signalled(const sigset_t *signals, kts_live_stream *live)
{
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    const struct timespec tick = {.tv_sec = 0, .tv_nsec = 250 * 1000 * 1000};
    for (;;) {
        int sig = sigtimedwait(signals, NULL, &tick);
        if (sig == SIGINT || sig == SIGTERM)
            return 0;
        if (sig < 0 && errno != EAGAIN && errno != EINTR) {
            fprintf(stderr, "kithara-testserver: waiting for signals failed (%s)\n",
                    strerror(errno));
            return 1;
        }
        if (kts_live_advance(live, elapsed_ms(&start)) != KTH_OK) {
            fprintf(stderr, "kithara-testserver: cannot move the live stream on\n");
            return 1;
        }
    }
}

static void usage(FILE *to)
{
    fprintf(to, "usage: kithara-testserver DIR [--port N] [--rate BYTES_PER_S] [--latency MS]"
                " [--bind ADDR]\n"
                "Serves DIR and /synth/<size>[k|m|g][.ext][?seed=N] over HTTP on a loopback\n"
                "address until interrupted, with an endless radio station at /radio and a live\n"
                "HLS stream at /live/master.m3u8. Prints the base URL on the first line.\n"
                "  --port N        port to bind (default 0: any free port)\n"
                "  --rate B        cap every response at B bytes per second\n"
                "  --latency MS    wait MS milliseconds before every response's headers\n"
                "  --bind ADDR     loopback address: 127.x.x.x or ::1 (default 127.0.0.1)\n");
}

/* Parses a decimal number in [0, max]; false when text is not one. */
static bool parse_number(const char *text, unsigned long long max, unsigned long long *out)
{
    char *end = NULL;
    unsigned long long v;

    if (text == NULL || text[0] < '0' || text[0] > '9') {
        return false;
    }
    errno = 0;
    v = strtoull(text, &end, 10);
    if (errno != 0 || *end != '\0' || v > max) {
        return false;
    }
    *out = v;
    return true;
}

int main(int argc, char **argv)
{
    kts_config config = {0};
    unsigned long long port = 0;
    unsigned long long rate = 0;
    unsigned long long latency = 0;
    kts_server *srv = NULL;
    sigset_t signals;
    int rc;

    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *value = i + 1 < argc ? argv[i + 1] : NULL;
        bool ok = true;

        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(arg, "--port") == 0) {
            ok = parse_number(value, 65535, &port);
            i++;
        } else if (strcmp(arg, "--rate") == 0) {
            ok = parse_number(value, UINT64_MAX, &rate) && rate > 0;
            i++;
        } else if (strcmp(arg, "--latency") == 0) {
            ok = parse_number(value, UINT32_MAX, &latency);
            i++;
        } else if (strcmp(arg, "--bind") == 0) {
            config.bind_address = value;
            ok = value != NULL;
            i++;
        } else if (arg[0] != '-' && config.doc_root == NULL) {
            config.doc_root = arg;
        } else {
            ok = false;
        }
        if (!ok) {
            fprintf(stderr, "kithara-testserver: bad argument near '%s'\n", arg);
            usage(stderr);
            return 2;
        }
    }
    if (config.doc_root == NULL) {
        usage(stderr);
        return 2;
    }
    config.port = (uint16_t)port;
    config.log_capacity = 1024; /* nobody reads the log here; keep it small */

    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    if (pthread_sigmask(SIG_BLOCK, &signals, NULL) != 0) {
        fprintf(stderr, "kithara-testserver: cannot block signals\n");
        return 1;
    }

    rc = kts_start(&config, &srv);
    if (rc == KTH_ERR_INVALID_ARG) {
        fprintf(stderr,
                "kithara-testserver: --bind must be a loopback address (127.x.x.x or ::1)\n");
        return 2;
    }
    if (rc != KTH_OK) {
        fprintf(stderr, "kithara-testserver: cannot serve '%s' on port %llu (%s)\n",
                config.doc_root, port,
                rc == KTH_ERR_IO ? "not a readable directory" : "cannot bind or start");
        return 1;
    }
    if (rate > 0) {
        rc = kts_add_fault(srv, "*", &(kts_fault){.kind = KTS_FAULT_RATE, .bytes = rate});
    }
    if (rc == KTH_OK && latency > 0) {
        rc = kts_add_fault(srv, "*",
                           &(kts_fault){.kind = KTS_FAULT_LATENCY, .ms = (uint32_t)latency});
    }
    if (rc != KTH_OK) {
        fprintf(stderr, "kithara-testserver: cannot set up --rate/--latency\n");
        kts_stop(srv);
        return 1;
    }

    static const kts_icy_title titles[] = {
        {.block = 0, .text = "StreamTitle='kithara - Loopback Song 1';"},
        {.block = 1, .text = "StreamTitle='kithara - Loopback Song 2';"},
        {.block = 2, .text = "StreamTitle='kithara - Loopback Song 3';"},
    };
    kts_icy radio = {.metaint = 16000,
                     .seed = 1,
                     .name = "kithara test radio",
                     .genre = "Test",
                     .bitrate = "128",
                     .titles = titles,
                     .title_count = 3};
    if (kts_add_icy(srv, "/radio", &radio) != KTH_OK) {
        fprintf(stderr, "kithara-testserver: cannot set up /radio\n");
        kts_stop(srv);
        return 1;
    }
    kts_live_stream *live = NULL;
    if (start_live(srv, &live) != KTH_OK) {
        fprintf(stderr, "kithara-testserver: cannot set up /live\n");
        kts_live_free(live);
        kts_stop(srv);
        return 1;
    }
    printf("%s\n", kts_base_url(srv));
    fflush(stdout);

    rc = serve_until_signalled(&signals, live);
    kts_live_free(live);
    kts_stop(srv);
    return rc;
}
