/*
 * cmd_cat.c — `kithara cat [--cache-dir DIR] [--offline] [-q] [-v] [-o FILE] [--start BYTES |
 * --start-time SECONDS] [--variant N] [--duration SECONDS] URL`: writes exactly the bytes a
 * decoder would read to standard output (or FILE). At an HLS variant switch it says so on standard
 * error and goes on with the new variant's bytes (init section first). For internet radio it
 * prints each title on standard error ("kithara: title: ...") and notes reconnections.
 * --duration stops after that many seconds of media, counted in bytes at the stream's bitrate
 * (a radio's icy-br, else the first frame's), so an endless stream ends.
 */
#include "commands.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int cat_usage(FILE *to, int code)
{
    fprintf(to, "usage: kithara cat [--cache-dir DIR] [--offline] [-q] [-v] [-o FILE]\n"
                "                   [--start BYTES | --start-time SECONDS] [--variant N]\n"
                "                   [--duration SECONDS] URL\n"
                "  Writes the stream's bytes to standard output (or to FILE with -o), from BYTES\n"
                "  (default 0) or, for HLS, from the segment holding SECONDS (its start time goes\n"
                "  to standard error). URL is an http(s) URL (a media file or an HLS playlist), a\n"
                "  file:// URL or a local path. --variant N plays HLS variant N (0 = lowest\n"
                "  bandwidth) only; without it ABR chooses, and each switch is reported on\n"
                "  standard error. --duration stops after SECONDS of media (at the bitrate the\n"
                "  stream declares, icy-br for radio, else its first frame's): needed for an\n"
                "  endless radio stream, whose titles go to standard error as they come.\n"
                "  -q keeps standard error for errors; -v adds the library's\n"
                "  messages. 'kithara --help' lists the exit codes.\n");
    tool_tls_usage(to);
    return code;
}

static int write_all(int fd, const unsigned char *p, size_t n)
{
    while (n > 0) {
        ssize_t k = write(fd, p, n);
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

/* The bytes --duration allows once the bitrate is known (after the first bytes), or 0 (after
 * an error message) when the stream tells no bitrate. */
static uint64_t duration_bytes(kth_stream *s, const char *url, double seconds)
{
    kth_media_info mi;
    if (kth_stream_media_info(s, &mi) != KTH_OK || mi.bitrate == 0) {
        tool_error("%s: --duration needs the stream's bitrate, and it declares none", url);
        return 0;
    }
    double bytes = seconds * (double)mi.bitrate / 8.0;
    return bytes < 1 ? 1 : (uint64_t)bytes;
}

/* Radio titles and reconnections on standard error: the stream's events, polled by the reading
 * thread after each read, so a title is printed once the bytes after its block are read. */
static void print_events(kth_subscription *sub)
{
    kth_event ev;
    while (sub && kth_events_next(sub, &ev, KTH_NO_WAIT) == KTH_OK) {
        if (ev.kind == KTH_EVENT_RADIO_TITLE)
            tool_note("title: %s", ev.text);
        else if (ev.kind == KTH_EVENT_RADIO_DROPPED)
            tool_note("radio connection lost (%s); next attempt in %.1f s", kth_strerror(ev.status),
                      (double)ev.payload.radio.delay_ns / 1e9);
    }
}

/* Copies the stream to fd (`out` names it in messages), at most `seconds` of media when
 * seconds >= 0. Returns the exit code. */
static int copy_stream(kth_stream *s, const char *url, int fd, const char *out, double seconds,
                       kth_subscription *events)
{
    static unsigned char buf[256 * 1024];
    uint64_t copied = 0, limit = UINT64_MAX;
    for (;;) {
        size_t want = limit - copied < sizeof buf ? (size_t)(limit - copied) : sizeof buf;
        if (want == 0)
            return TOOL_EXIT_OK;
        int64_t n = kth_stream_read(s, buf, want);
        print_events(events);
        if (n == 0)
            return TOOL_EXIT_OK;
        if (n == KTH_ERR_SEEK_PENDING || n == KTH_ERR_RETRY)
            continue;
        if (n == KTH_ERR_VARIANT_CHANGE) {
            /* No decoder to recreate here: note the switch and read on. */
            kth_status st = kth_stream_clear_variant_fence(s);
            if (st != KTH_OK) {
                tool_report_stream_error(s, url, st);
                return tool_exit_code(st, tool_is_remote(url));
            }
            if (kth_stream_current_variant(s) < 0)
                tool_note("discontinuity at byte %llu: the radio stream reconnected",
                          (unsigned long long)kth_stream_position(s));
            else
                tool_note("variant switch at byte %llu: now variant %d",
                          (unsigned long long)kth_stream_position(s),
                          kth_stream_current_variant(s));
            continue;
        }
        if (n < 0) {
            tool_report_stream_error(s, url, n);
            return tool_exit_code((int)n, tool_is_remote(url));
        }
        if (seconds >= 0 && limit == UINT64_MAX) {
            if ((limit = duration_bytes(s, url, seconds)) == 0)
                return TOOL_EXIT_USAGE;
            if ((uint64_t)n > limit)
                n = (int64_t)limit;
        }
        if (write_all(fd, buf, (size_t)n) != 0) {
            if (errno != EPIPE)
                tool_error("writing %s: %s", out, strerror(errno));
            return TOOL_EXIT_IO;
        }
        copied += (uint64_t)n;
    }
}

/* Moves to the segment (or, in a single file, the frame) holding `seconds` and says where that
 * is on standard error. A FLAC or WAV file is refused: its bytes from a later offset lack the
 * header a decoder needs (MP3 frames stand alone). */
static kth_status seek_time(kth_stream *s, const char *url, double seconds)
{
    kth_seek_anchor a;
    kth_status st = kth_stream_seek_time(s, seconds, &a);
    kth_media_info mi; /* known once the lookup has read the file's header */
    if (st == KTH_OK && kth_stream_current_variant(s) < 0 &&
        kth_stream_media_info(s, &mi) == KTH_OK &&
        (mi.container == KTH_CONTAINER_FLAC || mi.container == KTH_CONTAINER_WAV)) {
        tool_error("%s: --start-time would cut off the %s header; 'kithara decode "
                   "--start-time' starts a %s file at a time",
                   url, kth_container_name(mi.container), kth_container_name(mi.container));
        return KTH_ERR_UNSUPPORTED;
    }
    if (st == KTH_ERR_UNSUPPORTED)
        tool_error("%s: --start-time needs a stream with a timeline (HLS, or an MP3 file)", url);
    else if (st != KTH_OK)
        tool_error("%s: cannot start at %.3f s: %s", url, seconds, kth_strerror(st));
    else
        tool_note("starting at byte %llu: segment %llu, %.3f s to %.3f s (asked %.3f s)",
                  (unsigned long long)a.offset, (unsigned long long)a.segment_index,
                  a.segment_start, a.segment_end, seconds);
    return st;
}

typedef struct cat_args {
    const char *url;
    const char *out; /* -o FILE, or NULL for standard output */
    uint64_t start;
    double start_time; /* < 0: none */
    double duration;   /* < 0: to the end */
    long variant;      /* < 0: ABR chooses */
    tool_cache_options co;
} cat_args;

/* Parses a number argument; prints why and returns false when it is not one. */
static bool parse_cat_value(const char *opt, const char *arg, cat_args *a)
{
    char *end;
    errno = 0;
    if (strcmp(opt, "--start") == 0) {
        unsigned long long v = strtoull(arg, &end, 10);
        if (errno || *end || arg[0] == '-' || arg[0] == '\0') {
            tool_error("--start: '%s' is not a byte offset", arg);
            return false;
        }
        a->start = v;
    } else if (strcmp(opt, "--duration") == 0) {
        a->duration = strtod(arg, &end);
        if (errno || *end || arg[0] == '\0' || !(a->duration >= 0) || a->duration > 1e9) {
            tool_error("--duration: '%s' is not a time in seconds", arg);
            return false;
        }
    } else if (strcmp(opt, "--start-time") == 0) {
        a->start_time = strtod(arg, &end);
        if (errno || *end || arg[0] == '\0' || !(a->start_time >= 0) || a->start_time > 1e9) {
            tool_error("--start-time: '%s' is not a time in seconds", arg);
            return false;
        }
    } else {
        a->variant = strtol(arg, &end, 10);
        if (errno || *end || a->variant < 0 || a->variant > 1000 || arg[0] == '\0') {
            tool_error("--variant: '%s' is not a variant index", arg);
            return false;
        }
    }
    return true;
}

/* Returns -1 when the arguments are good, else the exit code to return (after a message). */
static int parse_cat_args(int argc, char **argv, cat_args *a)
{
    *a = (cat_args){.start_time = -1, .duration = -1, .variant = -1};
    for (int i = 1; i < argc; i++) {
        int c = tool_parse_cache_option(argc, argv, &i, &a->co);
        if (c < 0)
            return TOOL_EXIT_USAGE;
        if (c > 0)
            continue;
        const char *arg = argv[i];
        bool takes_value = strcmp(arg, "--start") == 0 || strcmp(arg, "--start-time") == 0 ||
                           strcmp(arg, "--variant") == 0 || strcmp(arg, "-o") == 0 ||
                           strcmp(arg, "--duration") == 0;
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0)
            return cat_usage(stdout, TOOL_EXIT_OK);
        if (takes_value && i + 1 >= argc) {
            tool_error("cat: %s needs a value", arg);
            return TOOL_EXIT_USAGE;
        }
        if (strcmp(arg, "-o") == 0) {
            a->out = argv[++i];
        } else if (takes_value) {
            if (!parse_cat_value(arg, argv[++i], a))
                return TOOL_EXIT_USAGE;
        } else {
            tool_arg t = tool_take_url("cat", arg, &a->url);
            if (t != TOOL_ARG_URL)
                return t == TOOL_ARG_UNKNOWN ? cat_usage(stderr, TOOL_EXIT_USAGE) : TOOL_EXIT_USAGE;
        }
    }
    if (!a->url)
        return cat_usage(stderr, TOOL_EXIT_USAGE);
    if (a->start > 0 && a->start_time >= 0) {
        tool_error("cat: --start and --start-time exclude each other");
        return TOOL_EXIT_USAGE;
    }
    return -1;
}

/* Positions the open stream as asked and copies it out. Returns the exit code. */
static int play(kth_stream *s, const cat_args *a, int fd, kth_subscription *events)
{
    const char *url = a->url;
    bool remote = tool_is_remote(url);
    kth_status st = KTH_OK;
    if (a->variant >= 0 && (st = kth_stream_abr_set_manual(s, (int)a->variant)) != KTH_OK) {
        tool_error("%s: cannot fix variant %ld: %s", url, a->variant, kth_strerror(st));
        return st == KTH_ERR_OUT_OF_RANGE ? TOOL_EXIT_USAGE : tool_exit_code(st, remote);
    }
    if (a->start > 0 && (st = kth_stream_seek(s, (int64_t)a->start, SEEK_SET, NULL)) != KTH_OK) {
        tool_error("%s: cannot start at byte %llu: %s", url, (unsigned long long)a->start,
                   kth_strerror(st));
        return st == KTH_ERR_OUT_OF_RANGE ? TOOL_EXIT_USAGE : tool_exit_code(st, remote);
    }
    if (a->start_time >= 0 && (st = seek_time(s, url, a->start_time)) != KTH_OK)
        return st == KTH_ERR_UNSUPPORTED ? TOOL_EXIT_USAGE : tool_exit_code(st, remote);
    return copy_stream(s, url, fd, a->out ? a->out : "standard output", a->duration, events);
}

int cmd_cat(int argc, char **argv)
{
    cat_args a;
    int rc = parse_cat_args(argc, argv, &a);
    if (rc >= 0)
        return rc;
    bool remote = tool_is_remote(a.url);
    int fd = STDOUT_FILENO;
    if (a.out && (fd = open(a.out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666)) < 0) {
        tool_error("%s: %s", a.out, strerror(errno));
        return TOOL_EXIT_IO;
    }
    kth_cache *cache = NULL;
    if (remote && tool_open_cache(&a.co, &cache) != KTH_OK) {
        if (a.out)
            close(fd);
        return TOOL_EXIT_CACHE;
    }
    kth_hls_options hls;
    kth_hls_options_init(&hls);
    hls.fixed_start = a.variant >= 0;
    hls.initial_variant = (int)a.variant;
    hls.start_manual = a.variant >= 0;
    kth_bus *bus = NULL;
    kth_subscription *sub = NULL;
    if (remote && kth_bus_new(&bus) == KTH_OK && kth_bus_subscribe(bus, 1024, &sub) == KTH_OK)
        a.co.bus = bus;
    kth_stream *s;
    kth_status st = tool_open_stream(a.url, &a.co, cache, &hls, &s);
    if (st == KTH_OK) {
        rc = play(s, &a, fd, sub);
        kth_stream_close(s);
    } else {
        rc = tool_exit_code(st, remote);
    }
    if (a.out && close(fd) != 0 && rc == TOOL_EXIT_OK) {
        tool_error("%s: %s", a.out, strerror(errno));
        rc = TOOL_EXIT_IO;
    }
    kth_subscription_free(sub);
    kth_bus_unref(bus);
    kth_cache_unref(cache);
    kth_shutdown();
    return rc;
}
