/*
 * cmd_info.c — `kithara info [--json] URL`: what a stream is.
 */
#include "commands.h"

#include <kithara/kithara.h>

#include <stdio.h>
#include <string.h>

static int info_usage(FILE *to, int code)
{
    fprintf(to, "usage: kithara info [--json] URL\n"
                "  Prints the stream's length, container, codec, sample rate and channels.\n");
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

int cmd_info(int argc, char **argv)
{
    const char *url = NULL;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return info_usage(stdout, 0);
        if (strcmp(argv[i], "--json") == 0)
            json = 1;
        else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            tool_error("info: unknown option '%s'", argv[i]);
            return info_usage(stderr, 2);
        } else if (!url)
            url = argv[i];
        else {
            tool_error("info: more than one URL given");
            return 2;
        }
    }
    if (!url)
        return info_usage(stderr, 2);

    char err[512];
    kth_stream *s;
    kth_status st = kth_stream_open(url, NULL, &s, err, sizeof err);
    if (st != KTH_OK) {
        tool_error("%s", err[0] ? err : kth_strerror(st));
        return 1;
    }
    uint64_t length = 0;
    int known = kth_stream_length(s, &length);
    kth_media_info mi;
    kth_stream_media_info(s, &mi);
    if (json) {
        printf("{\"url\":\"");
        json_escape(url);
        printf("\",\"type\":\"file\",\"length\":");
        if (known)
            printf("%llu", (unsigned long long)length);
        else
            printf("null");
        printf(",\"container\":\"%s\",\"codec\":\"%s\",\"sample_rate\":%u,\"channels\":%u,"
               "\"bitrate\":%u}\n",
               kth_container_name(mi.container), kth_codec_name(mi.codec), mi.sample_rate,
               mi.channels, mi.bitrate);
    } else {
        printf("url:         %s\n", url);
        printf("type:        file\n");
        if (known)
            printf("length:      %llu bytes\n", (unsigned long long)length);
        else
            printf("length:      unknown\n");
        printf("container:   %s\n", kth_container_name(mi.container));
        printf("codec:       %s\n", kth_codec_name(mi.codec));
        if (mi.sample_rate)
            printf("sample rate: %u Hz\n", mi.sample_rate);
        if (mi.channels)
            printf("channels:    %u\n", mi.channels);
        if (mi.bitrate)
            printf("bitrate:     %u bit/s\n", mi.bitrate);
    }
    kth_stream_close(s);
    return 0;
}
