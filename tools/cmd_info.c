/*
 * cmd_info.c — `kithara info [--json] [--cache-dir DIR] [--offline] [-q] [-v] URL`: what a stream
 * is — its kind, length, content type, container and codec, and how much of it the cache holds; for
 * HLS, its variant ladder, the variant playing, and its duration; for internet radio, the
 * station's headers (name, genre, bitrate, content type).
 */
#include "commands.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static int info_usage(FILE *to, int code)
{
    fprintf(to, "usage: kithara info [--json] [--cache-dir DIR] [--offline] [-q] [-v] URL\n"
                "  Prints the stream's kind, length, container, codec, sample rate, channels\n"
                "  and the fraction of it held in the cache; for an HLS playlist, its variants\n"
                "  and duration.\n");
    tool_tls_usage(to);
    return code;
}

/* Writes s as a JSON string body (without quotes). */
static void json_escape(const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
}

/* Writes a name as a JSON string, or null when it is not known. */
static void json_name(bool known, const char *name)
{
    if (known) {
        putchar('"');
        json_escape(name);
        putchar('"');
    } else {
        printf("null");
    }
}

/* Writes a count as a JSON number, or null for 0 (unknown). */
static void json_count(uint32_t value)
{
    if (value)
        printf("%u", value);
    else
        printf("null");
}

/* The fraction of `url` the cache holds, or -1 when it holds nothing or the length is unknown. */
static double cached_fraction(kth_cache *cache, const char *url)
{
    kth_cache_asset *list;
    size_t count;
    double fraction = -1;
    if (!cache || kth_cache_list(cache, &list, &count) != KTH_OK)
        return fraction;
    for (size_t i = 0; i < count; i++) {
        if (list[i].url && strcmp(list[i].url, url) == 0 && list[i].lengths_known &&
            list[i].known_length > 0)
            fraction = (double)list[i].bytes / (double)list[i].known_length;
    }
    kth_cache_list_free(list, count);
    return fraction;
}

/* The other variants' playlists load in the background after open: give them up to 3 s, so
 * the ladder is described whole (a playlist that cannot be loaded stays "not loaded"). */
static void wait_for_ladder(kth_stream *s, int variants)
{
    for (int nap = 0; nap < 300; nap++) {
        int loaded = 0;
        for (int v = 0; v < variants; v++) {
            kth_hls_variant_info vi;
            if (kth_stream_variant_info(s, v, &vi) == KTH_OK && vi.usable)
                loaded++;
        }
        kth_hls_playlist_info pi;
        if (loaded == variants ||
            (kth_stream_playlist_info(s, &pi) == KTH_OK && strcmp(pi.kind, "vod") != 0))
            return; /* a live stream keeps its one variant: the others never load */
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

/* What info has learned of a stream, for printing. */
typedef struct info_facts {
    const char *url;
    const char *kind; /* "hls", "progressive" or "file" */
    bool length_known;
    uint64_t length;
    kth_media_info mi;
    int variants;
    double fraction; /* < 0: unknown */
} info_facts;

/* Writes variant v as a JSON object (a comma before it unless it is the first). */
static void print_json_variant(kth_stream *s, int v)
{
    kth_hls_variant_info vi;
    if (kth_stream_variant_info(s, v, &vi) != KTH_OK)
        return;
    printf("%s{\"bandwidth\":%llu,\"codec\":", v ? "," : "", (unsigned long long)vi.bandwidth);
    json_name(vi.codec != KTH_CODEC_UNKNOWN, kth_codec_name(vi.codec));
    printf(",\"usable\":%s,\"container\":", vi.usable ? "true" : "false");
    json_name(vi.container != KTH_CONTAINER_UNKNOWN, kth_container_name(vi.container));
    printf(",\"encrypted\":%s,\"segments\":%zu,\"duration\":%.3f,\"channels\":",
           vi.encrypted ? "true" : "false", vi.segment_count, vi.duration);
    json_count(vi.channels);
    printf(",\"rendition\":\"");
    json_escape(vi.rendition);
    printf("\",\"language\":\"");
    json_escape(vi.language);
    printf("\",\"uri\":\"");
    json_escape(vi.uri);
    size_t held = 0, all = 0;
    if (kth_stream_variant_cached(s, v, &held, &all) == KTH_OK && all > 0)
        printf("\",\"cached_fraction\":%.4f}", (double)held / (double)all);
    else
        printf("\",\"cached_fraction\":null}");
}

/* Prints the facts as one JSON object; what is not known is null. */
static void print_json(kth_stream *s, const info_facts *f)
{
    printf("{\"url\":\"");
    json_escape(f->url);
    printf("\",\"type\":\"%s\",\"length\":", f->kind);
    if (f->length_known)
        printf("%llu", (unsigned long long)f->length);
    else
        printf("null");
    printf(",\"container\":");
    json_name(f->mi.container != KTH_CONTAINER_UNKNOWN, kth_container_name(f->mi.container));
    printf(",\"codec\":");
    json_name(f->mi.codec != KTH_CODEC_UNKNOWN, kth_codec_name(f->mi.codec));
    printf(",\"sample_rate\":");
    json_count(f->mi.sample_rate);
    printf(",\"channels\":");
    json_count(f->mi.channels);
    printf(",\"bitrate\":");
    json_count(f->mi.bitrate);
    if (f->mi.radio) {
        printf(",\"station\":{\"name\":\"");
        json_escape(f->mi.station_name);
        printf("\",\"genre\":\"");
        json_escape(f->mi.station_genre);
        printf("\",\"content_type\":\"");
        json_escape(f->mi.content_type);
        printf("\"}");
    }
    printf(",\"cached_fraction\":");
    if (f->fraction >= 0)
        printf("%.4f", f->fraction);
    else
        printf(f->variants ? "null" : "0");
    if (f->variants) {
        kth_hls_playlist_info pi;
        if (kth_stream_playlist_info(s, &pi) == KTH_OK)
            printf(",\"playlist\":{\"kind\":\"%s\",\"ended\":%s,\"target_duration\":%llu,"
                   "\"window_s\":%.3f,\"window_segments\":%zu}",
                   pi.kind, pi.ended ? "true" : "false", (unsigned long long)pi.target_duration,
                   pi.window_s, pi.window_segments);
        printf(",\"duration\":%.3f,\"segments\":%zu,\"current_variant\":%d,"
               "\"variants\":[",
               kth_stream_total_duration(s), kth_stream_segment_count(s),
               kth_stream_current_variant(s));
        for (int v = 0; v < f->variants; v++)
            print_json_variant(s, v);
        printf("]");
    }
    printf("}\n");
}

/* Prints the facts as aligned lines; what is not known is "unknown". */
static void print_text(kth_stream *s, const info_facts *f)
{
    printf("url:         %s\n", f->url);
    printf("type:        %s\n", f->kind);
    if (f->length_known)
        printf("length:      %llu bytes\n", (unsigned long long)f->length);
    else
        printf("length:      unknown\n");
    printf("container:   %s\n", kth_container_name(f->mi.container));
    printf("codec:       %s\n", kth_codec_name(f->mi.codec));
    if (f->mi.sample_rate)
        printf("sample rate: %u Hz\n", f->mi.sample_rate);
    else
        printf("sample rate: unknown\n");
    if (f->mi.channels)
        printf("channels:    %u\n", f->mi.channels);
    else
        printf("channels:    unknown\n");
    if (f->mi.bitrate)
        printf("bitrate:     %u bit/s\n", f->mi.bitrate);
    else
        printf("bitrate:     unknown\n");
    if (f->mi.radio) {
        printf("station:     %s\n", f->mi.station_name[0] ? f->mi.station_name : "unknown");
        printf("genre:       %s\n", f->mi.station_genre[0] ? f->mi.station_genre : "unknown");
        printf("served as:   %s\n", f->mi.content_type[0] ? f->mi.content_type : "unknown");
        return; /* endless: nothing is cached */
    }
    if (f->variants) {
        kth_hls_playlist_info pi;
        if (kth_stream_playlist_info(s, &pi) == KTH_OK)
            printf("playlist:    %s%s, target duration %llu s, window %.3f s in %zu segments\n",
                   pi.kind, pi.ended ? " (ended)" : "", (unsigned long long)pi.target_duration,
                   pi.window_s, pi.window_segments);
        printf("duration:    %.3f s in %zu segments\n", kth_stream_total_duration(s),
               kth_stream_segment_count(s));
        printf("variants:    %d (playing %d)\n", f->variants, kth_stream_current_variant(s));
        for (int v = 0; v < f->variants; v++) {
            kth_hls_variant_info vi;
            if (kth_stream_variant_info(s, v, &vi) != KTH_OK)
                continue;
            printf("  [%d] %8llu bit/s  %-8s %-10s%s %s", v, (unsigned long long)vi.bandwidth,
                   kth_codec_name(vi.codec), vi.usable ? kth_container_name(vi.container) : "",
                   vi.encrypted ? " AES-128" : "", vi.uri);
            if (vi.rendition[0])
                printf("  (rendition \"%s\"%s%s)", vi.rendition, vi.language[0] ? ", " : "",
                       vi.language);
            size_t held = 0, all = 0;
            if (kth_stream_variant_cached(s, v, &held, &all) == KTH_OK && all > 0)
                printf("  cached %zu/%zu", held, all);
            printf("%s\n", vi.usable ? "" : "  (playlist not loaded)");
        }
    } else {
        printf("cached:      %.1f %%\n", f->fraction >= 0 ? f->fraction * 100 : 0.0);
    }
}

int cmd_info(int argc, char **argv)
{
    const char *url = NULL;
    bool json = false;
    /* info reads the first 4096 bytes of a file and no more: no read-ahead past them. */
    tool_cache_options co = {.dir = NULL, .readahead_bytes = 4096};
    for (int i = 1; i < argc; i++) {
        int c = tool_parse_cache_option(argc, argv, &i, &co);
        if (c < 0)
            return TOOL_EXIT_USAGE;
        if (c > 0)
            continue;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return info_usage(stdout, TOOL_EXIT_OK);
        if (strcmp(argv[i], "--json") == 0) {
            json = true;
        } else {
            tool_arg t = tool_take_url("info", argv[i], &url);
            if (t != TOOL_ARG_URL)
                return t == TOOL_ARG_UNKNOWN ? info_usage(stderr, TOOL_EXIT_USAGE)
                                             : TOOL_EXIT_USAGE;
        }
    }
    if (!url)
        return info_usage(stderr, TOOL_EXIT_USAGE);

    bool remote = tool_is_remote(url);
    kth_cache *cache = NULL;
    if (remote && tool_open_cache(&co, &cache) != KTH_OK)
        return TOOL_EXIT_CACHE;
    double fraction = remote ? cached_fraction(cache, url) : 1.0;
    kth_stream *s;
    kth_status st = tool_open_stream(url, &co, cache, NULL, &s);
    if (st != KTH_OK) {
        kth_cache_unref(cache);
        kth_shutdown();
        return tool_exit_code(st, remote);
    }
    /* The first bytes of a file tell the container and codec (and bring the length of a remote
     * one); an HLS stream learns them from its playlists and first bytes when asked. */
    unsigned char head[4096];
    int64_t n = kth_stream_variant_count(s) ? 0 : kth_stream_read(s, head, sizeof head);
    int rc = 0;
    if (n < 0) {
        tool_report_stream_error(s, url, n);
        rc = tool_exit_code((int)n, remote);
    } else {
        uint64_t length = 0;
        bool known = kth_stream_length(s, &length);
        kth_media_info mi;
        kth_stream_media_info(s, &mi);
        int variants = kth_stream_variant_count(s);
        wait_for_ladder(s, variants);
        const char *kind = variants ? "hls" : mi.radio ? "radio" : remote ? "progressive" : "file";
        if (variants)
            fraction = -1; /* an HLS presentation is many assets; not summed here */
        info_facts f = {.url = url,
                        .kind = kind,
                        .length_known = known,
                        .length = length,
                        .mi = mi,
                        .variants = variants,
                        .fraction = fraction};
        if (json)
            print_json(s, &f);
        else
            print_text(s, &f);
    }
    kth_stream_close(s);
    kth_cache_unref(cache);
    kth_shutdown();
    return rc;
}
