/*
 * tool_open.c — the options every stream command shares (--cache-dir, --offline), and opening
 * a stream with them.
 */
#include "commands.h"

#include <kithara/kithara.h>

#include <stdio.h>
#include <string.h>
#include <strings.h>

bool tool_is_remote(const char *url)
{
    return strncasecmp(url, "http://", 7) == 0 || strncasecmp(url, "https://", 8) == 0;
}

int tool_parse_cache_option(int argc, char **argv, int *i, tool_cache_options *o)
{
    if (strcmp(argv[*i], "--cache-dir") == 0) {
        if (*i + 1 >= argc) {
            tool_error("--cache-dir needs a directory");
            return -1;
        }
        o->dir = argv[++*i];
        return 1;
    }
    if (strcmp(argv[*i], "--offline") == 0) {
        o->offline = true;
        return 1;
    }
    return 0;
}

kth_status tool_open_cache(const tool_cache_options *o, kth_cache **out)
{
    kth_cache_options co;
    kth_cache_options_init(&co);
    co.dir = o->dir;
    co.offline = o->offline;
    char err[512];
    kth_status st = kth_cache_open(&co, out, err, sizeof err);
    if (st != KTH_OK)
        tool_error("%s", err[0] ? err : kth_strerror(st));
    return st;
}

kth_status tool_open_stream(const char *url, kth_cache *cache, const kth_hls_options *hls,
                            kth_stream **out)
{
    kth_stream_options so;
    kth_stream_options_init(&so);
    so.cache = cache;
    so.hls = hls;
    char err[512];
    err[0] = '\0';
    kth_status st = kth_stream_open(url, &so, out, err, sizeof err);
    if (st != KTH_OK)
        tool_error("%s", err[0] ? err : kth_strerror(st));
    return st;
}

void tool_report_stream_error(kth_stream *s, const char *url, int64_t status)
{
    char detail[512];
    kth_stream_last_error(s, detail, sizeof detail);
    tool_error("%s: %s%s%s", url, kth_strerror((int)status), detail[0] ? ": " : "", detail);
}
