/*
 * cmd_cat.c — `kithara cat [--cache-dir DIR] [--offline] [--start BYTES | --start-time SECONDS]
 * [--variant N] URL`: writes exactly the bytes a decoder would read to standard output. At an HLS
 * variant switch it says so on standard error and goes on with the new variant's bytes (init
 * section first).
 */
#include "commands.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int cat_usage(FILE *to, int code)
{
    fprintf(to, "usage: kithara cat [--cache-dir DIR] [--offline] [--start BYTES | --start-time "
                "SECONDS]\n"
                "                   [--variant N] URL\n"
                "  Writes the stream's bytes to standard output, from BYTES (default 0) or, for\n"
                "  HLS, from the segment holding SECONDS (its start time goes to standard error).\n"
                "  URL is an http(s) URL (a media file or an HLS playlist), a file:// URL or a\n"
                "  local path. --variant N plays HLS variant N (0 = lowest bandwidth) only;\n"
                "  without it ABR chooses, and each switch is reported on standard error.\n");
    tool_tls_usage(to);
    return code;
}

static int write_all(const unsigned char *p, size_t n)
{
    while (n > 0) {
        ssize_t k = write(STDOUT_FILENO, p, n);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

static int copy_stream(kth_stream *s, const char *url)
{
    static unsigned char buf[256 * 1024];
    for (;;) {
        int64_t n = kth_stream_read(s, buf, sizeof buf);
        if (n == 0)
            return 0;
        if (n == KTH_ERR_SEEK_PENDING || n == KTH_ERR_RETRY)
            continue;
        if (n == KTH_ERR_VARIANT_CHANGE) {
            /* No decoder to recreate here: note the switch and read on. */
            kth_status st = kth_stream_clear_variant_fence(s);
            if (st != KTH_OK) {
                tool_report_stream_error(s, url, st);
                return 1;
            }
            fprintf(stderr, "kithara: variant switch at byte %llu: now variant %d\n",
                    (unsigned long long)kth_stream_position(s), kth_stream_current_variant(s));
            continue;
        }
        if (n < 0) {
            tool_report_stream_error(s, url, n);
            return 1;
        }
        if (write_all(buf, (size_t)n) != 0) {
            if (errno != EPIPE)
                tool_error("writing standard output: %s", strerror(errno));
            return 1;
        }
    }
}

/* Moves to the segment holding `seconds` and says where that is on standard error. */
static kth_status seek_time(kth_stream *s, const char *url, double seconds)
{
    kth_seek_anchor a;
    kth_status st = kth_stream_seek_time(s, seconds, &a);
    if (st == KTH_ERR_UNSUPPORTED)
        tool_error("%s: --start-time needs a stream with a timeline (HLS)", url);
    else if (st != KTH_OK)
        tool_error("%s: cannot start at %.3f s: %s", url, seconds, kth_strerror(st));
    else
        fprintf(stderr,
                "kithara: starting at byte %llu: segment %llu, %.3f s to %.3f s (asked %.3f s)\n",
                (unsigned long long)a.offset, (unsigned long long)a.segment_index, a.segment_start,
                a.segment_end, seconds);
    return st;
}

int cmd_cat(int argc, char **argv)
{
    const char *url = NULL;
    uint64_t start = 0;
    double start_time = -1;
    long variant = -1;
    tool_cache_options co = {.dir = NULL};
    for (int i = 1; i < argc; i++) {
        int c = tool_parse_cache_option(argc, argv, &i, &co);
        if (c < 0)
            return 2;
        if (c > 0)
            continue;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return cat_usage(stdout, 0);
        if (strcmp(argv[i], "--start") == 0 && i + 1 < argc) {
            char *end;
            errno = 0;
            unsigned long long v = strtoull(argv[++i], &end, 10);
            if (errno || *end || argv[i][0] == '-' || argv[i][0] == '\0') {
                tool_error("--start: '%s' is not a byte offset", argv[i]);
                return 2;
            }
            start = v;
        } else if (strcmp(argv[i], "--start-time") == 0 && i + 1 < argc) {
            char *end;
            errno = 0;
            start_time = strtod(argv[++i], &end);
            if (errno || *end || argv[i][0] == '\0' || !(start_time >= 0) || start_time > 1e9) {
                tool_error("--start-time: '%s' is not a time in seconds", argv[i]);
                return 2;
            }
        } else if (strcmp(argv[i], "--variant") == 0 && i + 1 < argc) {
            char *end;
            errno = 0;
            variant = strtol(argv[++i], &end, 10);
            if (errno || *end || variant < 0 || variant > 1000 || argv[i][0] == '\0') {
                tool_error("--variant: '%s' is not a variant index", argv[i]);
                return 2;
            }
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            tool_error("cat: unknown option '%s'", argv[i]);
            return cat_usage(stderr, 2);
        } else if (!url) {
            url = argv[i];
        } else {
            tool_error("cat: more than one URL given");
            return 2;
        }
    }
    if (!url)
        return cat_usage(stderr, 2);
    if (start > 0 && start_time >= 0) {
        tool_error("cat: --start and --start-time exclude each other");
        return 2;
    }

    kth_cache *cache = NULL;
    if (tool_is_remote(url) && tool_open_cache(&co, &cache) != KTH_OK)
        return 1;
    kth_hls_options hls;
    kth_hls_options_init(&hls);
    hls.initial_variant = (int)variant;
    hls.start_manual = variant >= 0;
    kth_stream *s;
    int rc = 1;
    if (tool_open_stream(url, &co, cache, &hls, &s) == KTH_OK) {
        kth_status st = KTH_OK;
        if (variant >= 0 && (st = kth_stream_abr_set_manual(s, (size_t)variant)) != KTH_OK)
            tool_error("%s: cannot fix variant %ld: %s", url, variant, kth_strerror(st));
        else if (start > 0 && (st = kth_stream_seek(s, (int64_t)start, SEEK_SET, NULL)) != KTH_OK)
            tool_error("%s: cannot start at byte %llu: %s", url, (unsigned long long)start,
                       kth_strerror(st));
        else if (start_time < 0 || seek_time(s, url, start_time) == KTH_OK)
            rc = copy_stream(s, url);
        kth_stream_close(s);
    }
    kth_cache_close(cache);
    kth_shutdown();
    return rc;
}
