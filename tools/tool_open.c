/*
 * tool_open.c — the options every stream command shares (--cache-dir, --offline, -q, -v),
 * opening a stream with them, and the one-line messages on standard error.
 */
#include "commands.h"

#include <kithara/kithara.h>

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

int tool_verbosity;

static void print_library_message(kth_log_level level, const char *component, const char *message,
                                  void *user)
{
    (void)user;
    static const char *const names[] = {"error", "warning", "info", "debug"};
    const char *name = (unsigned)level < 4 ? names[level] : "log";
    fprintf(stderr, "kithara: [%s %s] %s\n", component, name, message);
}

/* -v and -vv (repeatable); -q. */
static int parse_verbosity(const char *arg)
{
    if (strcmp(arg, "-q") == 0 || strcmp(arg, "--quiet") == 0) {
        tool_verbosity = -1;
    } else if (strcmp(arg, "-v") == 0 || strcmp(arg, "--verbose") == 0) {
        tool_verbosity = tool_verbosity < 0 ? 1 : tool_verbosity + 1;
    } else if (strcmp(arg, "-vv") == 0) {
        tool_verbosity = 2;
    } else {
        return 0;
    }
    if (tool_verbosity > 0)
        kth_set_log_handler(print_library_message, NULL,
                            tool_verbosity > 1 ? KTH_LOG_DEBUG : KTH_LOG_INFO);
    else
        kth_set_log_handler(NULL, NULL, KTH_LOG_ERROR);
    return 1;
}

void tool_note(const char *fmt, ...)
{
    if (tool_verbosity < 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    fputs("kithara: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

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
    return parse_verbosity(argv[*i]);
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
    char detail[1024];
    kth_stream_last_error(s, detail, sizeof detail);
    if (detail[0] && strstr(detail, url))
        tool_error("%s: %s", kth_strerror((int)status), detail);
    else
        tool_error("%s: %s%s%s", url, kth_strerror((int)status), detail[0] ? ": " : "", detail);
}
