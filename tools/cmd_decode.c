/*
 * cmd_decode.c — `kithara decode [--variant N] [--start-time S] [--format s16|f32] [--rate HZ]
 * [--channels N] [--realtime] [--stats] [-o FILE] URL`: decodes a stream to PCM with
 * kth_decoder. With -o FILE it writes a WAV file (its header's sizes written at the end), else
 * raw interleaved little-endian PCM on standard output. Switches are reported on standard
 * error, with a progress line when that is a terminal. --realtime paces the output at the
 * media rate, as an audio device would, so ABR sees a real buffer; --stats prints one JSON line
 * at the end (frames, seconds, stalls, switches, time-weighted mean bitrate, startup delay).
 */
#include "commands.h"

#if KTH_HAVE_DECODE

#include <libavutil/log.h>

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct decode_args {
    const char *url;
    const char *out;
    double start_time; /* < 0: none */
    long variant;      /* < 0: ABR chooses */
    kth_sample_format format;
    long rate, channels;
    bool realtime, stats;
    tool_cache_options co;
} decode_args;

typedef struct decode_stats {
    double t_open, t_first; /* monotonic seconds */
    uint64_t frames;
    unsigned stalls;
    double stall_seconds;
    unsigned switches;
    double bitrate_seconds; /* sum of bandwidth × seconds */
} decode_stats;

static int decode_usage(FILE *to, int code)
{
    fprintf(to,
            "usage: kithara decode [--cache-dir DIR] [--offline] [-q] [-v] [-o FILE]\n"
            "                      [--variant N] [--start-time SECONDS] [--format s16|f32]\n"
            "                      [--rate HZ] [--channels N] [--realtime] [--stats] URL\n"
            "  Decodes the stream to PCM: a WAV file with -o FILE, else raw interleaved\n"
            "  little-endian samples on standard output. --format picks 16-bit integers\n"
            "  (default) or 32-bit floats; --rate and --channels convert (default: the\n"
            "  source's). --variant N plays HLS variant N only; without it ABR chooses, and\n"
            "  each switch is reported on standard error. --start-time starts at that time,\n"
            "  to the sample. --realtime paces the output at the media rate; --stats prints one\n"
            "  JSON line of playback figures at the end (on standard error without -o).\n"
            "  'kithara --help' lists the exit codes.\n");
    return code;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static bool parse_number(const char *opt, const char *arg, double lo, double hi, double *v)
{
    char *end;
    errno = 0;
    *v = strtod(arg, &end);
    if (errno || *end || arg[0] == '\0' || !(*v >= lo) || *v > hi) {
        tool_error("%s: '%s' is not a valid value", opt, arg);
        return false;
    }
    return true;
}

static bool parse_value(const char *opt, const char *arg, decode_args *a)
{
    double v;
    if (strcmp(opt, "--format") == 0) {
        if (strcmp(arg, "s16") != 0 && strcmp(arg, "f32") != 0) {
            tool_error("--format: '%s' is neither s16 nor f32", arg);
            return false;
        }
        a->format = arg[0] == 'f' ? KTH_SAMPLE_F32 : KTH_SAMPLE_S16;
        return true;
    }
    if (strcmp(opt, "--start-time") == 0)
        return parse_number(opt, arg, 0, 1e9, &a->start_time);
    bool ok = parse_number(opt, arg, strcmp(opt, "--variant") == 0 ? 0 : 1,
                           strcmp(opt, "--rate") == 0 ? 768000 : 1000, &v) &&
              v == floor(v);
    if (!ok) {
        tool_error("%s: '%s' is not a whole number in range", opt, arg);
        return false;
    }
    if (strcmp(opt, "--variant") == 0)
        a->variant = (long)v;
    else if (strcmp(opt, "--rate") == 0)
        a->rate = (long)v;
    else if (v > 64)
        return tool_error("--channels: at most 64"), false;
    else
        a->channels = (long)v;
    return true;
}

/* Returns -1 when the arguments are good, else the exit code to return. */
static int parse_args(int argc, char **argv, decode_args *a)
{
    *a = (decode_args){.start_time = -1, .variant = -1, .format = KTH_SAMPLE_S16};
    for (int i = 1; i < argc; i++) {
        int c = tool_parse_cache_option(argc, argv, &i, &a->co);
        if (c < 0)
            return TOOL_EXIT_USAGE;
        if (c > 0)
            continue;
        const char *arg = argv[i];
        static const char *const valued[] = {"--variant", "--start-time", "--format",
                                             "--rate",    "--channels",   "-o"};
        bool takes_value = false;
        for (size_t k = 0; k < sizeof valued / sizeof valued[0]; k++)
            takes_value |= strcmp(arg, valued[k]) == 0;
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0)
            return decode_usage(stdout, TOOL_EXIT_OK);
        if (takes_value && i + 1 >= argc) {
            tool_error("decode: %s needs a value", arg);
            return TOOL_EXIT_USAGE;
        }
        if (strcmp(arg, "-o") == 0)
            a->out = argv[++i];
        else if (takes_value && !parse_value(arg, argv[++i], a))
            return TOOL_EXIT_USAGE;
        else if (takes_value)
            continue;
        else if (strcmp(arg, "--realtime") == 0)
            a->realtime = true;
        else if (strcmp(arg, "--stats") == 0)
            a->stats = true;
        else {
            tool_arg t = tool_take_url("decode", arg, &a->url);
            if (t != TOOL_ARG_URL)
                return t == TOOL_ARG_UNKNOWN ? decode_usage(stderr, TOOL_EXIT_USAGE)
                                             : TOOL_EXIT_USAGE;
        }
    }
    return a->url ? -1 : decode_usage(stderr, TOOL_EXIT_USAGE);
}

static void put_le(uint8_t *p, uint32_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* A 44-byte WAV header for `data_bytes` of PCM (format 1 = integer, 3 = float). */
static void wav_header(uint8_t h[44], const kth_pcm_format *f, uint64_t data_bytes)
{
    uint32_t bytes = f->sample_format == KTH_SAMPLE_F32 ? 4 : 2;
    uint32_t size = data_bytes > UINT32_MAX - 36 ? UINT32_MAX - 36 : (uint32_t)data_bytes;
    memcpy(h, "RIFF", 4);
    put_le(h + 4, 36 + size, 4);
    memcpy(h + 8, "WAVEfmt ", 8);
    put_le(h + 16, 16, 4);
    put_le(h + 20, f->sample_format == KTH_SAMPLE_F32 ? 3 : 1, 2);
    put_le(h + 22, f->channels, 2);
    put_le(h + 24, f->sample_rate, 4);
    put_le(h + 28, f->sample_rate * f->channels * bytes, 4);
    put_le(h + 32, f->channels * bytes, 2);
    put_le(h + 34, bytes * 8, 2);
    memcpy(h + 36, "data", 4);
    put_le(h + 40, size, 4);
}

/* Drains the bus: reports switches on standard error and counts them. */
static void note_events(kth_subscription *sub, decode_stats *st)
{
    kth_event ev;
    while (kth_events_next(sub, &ev, 0) == KTH_OK) {
        if (ev.kind == KTH_EVENT_DECODER_KEPT || ev.kind == KTH_EVENT_DECODER_RESTARTED) {
            st->switches++;
            tool_note("variant %d -> %d at frame %llu (%s decoder %s)",
                      ev.payload.decode.from_variant, ev.payload.decode.to_variant,
                      (unsigned long long)ev.payload.decode.frame, ev.text,
                      ev.kind == KTH_EVENT_DECODER_KEPT ? "kept" : "restarted");
        } else if (ev.kind == KTH_EVENT_DECODER_FORMAT) {
            tool_note("source format now %u Hz, %u channels", ev.payload.decode.sample_rate,
                      ev.payload.decode.channels);
        }
    }
}

/* Waits until the output clock reaches `frames`; a read that came late counts as a stall. */
static void pace(decode_stats *st, const kth_pcm_format *f, uint64_t before, double read_start)
{
    double start = st->t_first + st->stall_seconds;
    double due = start + (double)before / f->sample_rate; /* when the device runs dry */
    double now = now_s();
    if (before > 0 && now > due && read_start < due + 1e-9) {
        st->stalls++;
        st->stall_seconds += now - due;
    }
    double next = st->t_first + st->stall_seconds + (double)st->frames / f->sample_rate;
    /* Keep about half a second ahead, as a device buffer would. */
    double wait = next - 0.5 - now_s();
    if (wait > 0)
        nanosleep(&(struct timespec){.tv_sec = (time_t)wait,
                                     .tv_nsec = (long)((wait - floor(wait)) * 1e9)},
                  NULL);
}

static void account_bitrate(kth_decoder *d, decode_stats *st, uint64_t n, uint32_t rate)
{
    kth_stream *s = kth_decoder_stream(d);
    int v = kth_stream_current_variant(s);
    kth_hls_variant_info info;
    uint64_t bw = 0;
    if (v >= 0 && kth_stream_variant_info(s, v, &info) == KTH_OK)
        bw = info.bandwidth;
    st->bitrate_seconds += (double)bw * (double)n / rate;
}

/* Decodes to the end into `to`. Returns the exit code. */
static int run_decode(kth_decoder *d, const decode_args *a, FILE *to, kth_subscription *sub,
                      decode_stats *st)
{
    kth_pcm_format f;
    kth_decoder_format(d, &f);
    size_t fb = kth_decoder_frame_bytes(d);
    enum { CHUNK = 4096 };
    uint8_t *buf = malloc(CHUNK * fb);
    if (!buf)
        return TOOL_EXIT_FAILURE;
    bool tty = isatty(STDERR_FILENO) && tool_verbosity >= 0;
    int rc = TOOL_EXIT_OK;
    for (;;) {
        double t0 = now_s();
        int64_t n = kth_decoder_read(d, buf, CHUNK);
        note_events(sub, st);
        if (n == 0)
            break;
        if (n < 0) {
            char msg[1024];
            kth_decoder_last_error(d, msg, sizeof msg);
            tool_error("%s: %s%s%s", a->url, kth_strerror((int)n), msg[0] ? ": " : "", msg);
            rc = tool_exit_code((int)n, tool_is_remote(a->url));
            break;
        }
        if (fwrite(buf, fb, (size_t)n, to) != (size_t)n) {
            tool_error("writing %s: %s", a->out ? a->out : "standard output", strerror(errno));
            rc = TOOL_EXIT_IO;
            break;
        }
        uint64_t before = st->frames;
        st->frames += (uint64_t)n;
        account_bitrate(d, st, (uint64_t)n, f.sample_rate);
        if (a->realtime)
            pace(st, &f, before, t0);
        if (tty && (st->frames / CHUNK) % 16 == 0)
            fprintf(stderr, "\rkithara: %.1f s decoded, variant %d ",
                    (double)st->frames / f.sample_rate,
                    kth_stream_current_variant(kth_decoder_stream(d)));
    }
    if (tty)
        fputc('\n', stderr);
    free(buf);
    return rc;
}

/* On standard output with -o FILE; on standard error when the PCM goes to standard output. */
static void print_stats(FILE *to, const decode_stats *st, const kth_pcm_format *f)
{
    double secs = f->sample_rate ? (double)st->frames / f->sample_rate : 0;
    fprintf(to,
            "{\"frames\":%llu,\"seconds\":%.6f,\"stalls\":%u,\"stall_seconds\":%.6f,"
            "\"switches\":%u,\"mean_bitrate\":%.0f,\"startup_seconds\":%.6f}\n",
            (unsigned long long)st->frames, secs, st->stalls, st->stall_seconds, st->switches,
            secs > 0 ? st->bitrate_seconds / secs : 0.0, st->t_first - st->t_open);
    fflush(to);
}

/* Opens the stream and the decoder as the arguments say. Returns the exit code on failure. */
static int open_decoder(const decode_args *a, kth_cache *cache, kth_bus *bus, kth_decoder **d)
{
    kth_hls_options hls;
    kth_hls_options_init(&hls);
    hls.fixed_start = a->variant >= 0;
    hls.initial_variant = (int)a->variant;
    hls.start_manual = a->variant >= 0;
    kth_stream_options so;
    kth_stream_options_init(&so);
    so.cache = cache;
    so.hls = &hls;
    so.bus = bus;
    kth_decoder_options o;
    kth_decoder_options_init(&o);
    o.sample_format = a->format;
    o.sample_rate = (uint32_t)a->rate;
    o.channels = (uint32_t)a->channels;
    char err[1024] = "";
    kth_status st = kth_decoder_open(a->url, &so, &o, d, err, sizeof err);
    if (st != KTH_OK) {
        tool_error("%s", err[0] ? err : kth_strerror(st));
        return tool_exit_code(st, tool_is_remote(a->url));
    }
    if (a->start_time >= 0 && (st = kth_decoder_seek_time(*d, a->start_time)) != KTH_OK) {
        kth_decoder_last_error(*d, err, sizeof err);
        tool_error("%s: cannot start at %.3f s: %s", a->url, a->start_time, err);
        return tool_exit_code(st, tool_is_remote(a->url));
    }
    return -1;
}

/* Decodes into `to` (a WAV file when wav). Returns the exit code. */
static int decode_to(const decode_args *a, kth_cache *cache, FILE *to, bool wav)
{
    kth_bus *bus = NULL;
    kth_subscription *sub = NULL;
    if (kth_bus_new(&bus) != KTH_OK || kth_bus_subscribe(bus, 1024, &sub) != KTH_OK) {
        kth_bus_unref(bus);
        return TOOL_EXIT_FAILURE;
    }
    decode_stats st = {.t_open = now_s()};
    kth_decoder *d = NULL;
    int rc = open_decoder(a, cache, bus, &d);
    kth_pcm_format f = {0};
    if (rc < 0) {
        st.t_first = now_s();
        kth_decoder_format(d, &f);
        uint8_t h[44];
        wav_header(h, &f, 0);
        rc = wav && fwrite(h, 1, 44, to) != 44 ? TOOL_EXIT_IO : run_decode(d, a, to, sub, &st);
    }
    if (wav && rc == TOOL_EXIT_OK) {
        uint8_t h[44];
        wav_header(h, &f, st.frames * kth_decoder_frame_bytes(d));
        if (fseek(to, 0, SEEK_SET) != 0 || fwrite(h, 1, 44, to) != 44)
            rc = TOOL_EXIT_IO;
    }
    if (a->stats && d)
        print_stats(wav ? stdout : stderr, &st, &f);
    kth_decoder_close(d);
    kth_subscription_free(sub);
    kth_bus_unref(bus);
    return rc;
}

int cmd_decode(int argc, char **argv)
{
    decode_args a;
    int rc = parse_args(argc, argv, &a);
    if (rc >= 0)
        return rc;
    if (tool_verbosity < 1)
        av_log_set_level(AV_LOG_ERROR);
    FILE *to = a.out ? fopen(a.out, "wb") : stdout;
    if (!to) {
        tool_error("%s: %s", a.out, strerror(errno));
        return TOOL_EXIT_IO;
    }
    kth_cache *cache = NULL;
    if (tool_is_remote(a.url) && tool_open_cache(&a.co, &cache) != KTH_OK) {
        rc = TOOL_EXIT_CACHE;
    } else {
        rc = decode_to(&a, cache, to, a.out != NULL);
    }
    if (a.out && fclose(to) != 0 && rc == TOOL_EXIT_OK) {
        tool_error("%s: %s", a.out, strerror(errno));
        rc = TOOL_EXIT_IO;
    } else if (!a.out && fflush(stdout) != 0 && rc == TOOL_EXIT_OK) {
        rc = TOOL_EXIT_IO;
    }
    kth_cache_unref(cache);
    kth_shutdown();
    return rc;
}

#else

int cmd_decode(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    tool_error("decode: this kithara was built without FFmpeg");
    return TOOL_EXIT_FAILURE;
}

#endif
