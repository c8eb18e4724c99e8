/*
 * commands.h — the subcommands of the kithara program. Each takes its own argv (argv[0] is the
 * subcommand's name) and returns the process exit code: 0 success, 1 failure, 2 bad usage.
 */
#ifndef KTH_TOOLS_COMMANDS_H
#define KTH_TOOLS_COMMANDS_H

#include <kithara/kithara.h>

#include <stdbool.h>

int cmd_cat(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_cache(int argc, char **argv);
int cmd_download(int argc, char **argv);

/* --cache-dir DIR and --offline, shared by the stream commands. */
typedef struct tool_cache_options {
    const char *dir; /* NULL: the default location */
    bool offline;
} tool_cache_options;

/* If argv[*i] is a cache option, consumes it (and its value) and returns 1; returns 0 when it is
 * not one, -1 (after printing why) when its value is missing. */
int tool_parse_cache_option(int argc, char **argv, int *i, tool_cache_options *o);

/* True for http:// and https:// URLs (the ones that go through the cache). */
bool tool_is_remote(const char *url);

/* Opens the cache the options describe, printing a one-line error on failure. */
kth_status tool_open_cache(const tool_cache_options *o, kth_cache **out);

/* Opens a stream through `cache` (HLS options `hls` may be NULL: defaults), printing a one-line
 * error on failure. */
kth_status tool_open_stream(const char *url, kth_cache *cache, const kth_hls_options *hls,
                            kth_stream **out);

/* Prints "kithara: URL: <status sentence>: <detail>". */
void tool_report_stream_error(kth_stream *s, const char *url, int64_t status);

/* Prints "kithara: <message>" on stderr (one line). */
void tool_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
