/*
 * commands.h — the subcommands of the kithara program. Each takes its own argv (argv[0] is the
 * subcommand's name) and returns the process exit code: 0 success, 1 failure, 2 bad usage.
 */
#ifndef KTH_TOOLS_COMMANDS_H
#define KTH_TOOLS_COMMANDS_H

#include <kithara/kithara.h>

#include <stdbool.h>
#include <stdio.h>

int cmd_cat(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_cache(int argc, char **argv);
int cmd_download(int argc, char **argv);

/* --cache-dir DIR and --offline, shared by the stream commands, and the TLS options of the
 * commands that fetch (cat, info, download): --cacert FILE, --capath DIR, --insecure. Fields
 * after `offline` are zero in an initializer that names only the first two. */
typedef struct tool_cache_options {
    const char *dir; /* NULL: the default location */
    bool offline;
    const char *ca_file; /* --cacert: CA certificates (PEM bundle) to trust instead of the
                            system's */
    const char *ca_path; /* --capath: a hashed directory of CA certificates */
    bool insecure;       /* --insecure: no TLS certificate or host name verification */
} tool_cache_options;

/* If argv[*i] is one of the options above, consumes it (and its value) and returns 1; returns 0
 * when it is not one, -1 (after printing why) when its value is missing. */
int tool_parse_cache_option(int argc, char **argv, int *i, tool_cache_options *o);

/* Prints the lines of a command's usage that describe the TLS options. */
void tool_tls_usage(FILE *to);

/* When a failure's message says the server's certificate could not be verified, prints a
 * second line naming the options that fix it. */
void tool_tls_hint(const char *message);

/* The downloader the TLS options ask for, in *out (the caller frees it): --cacert, --capath and
 * --insecure; without any of them, the CA variables curl's own tool reads (CURL_CA_BUNDLE; else
 * SSL_CERT_FILE and SSL_CERT_DIR). *out is NULL when none is set: streams then use the default
 * downloader. Prints a one-line error on failure. */
kth_status tool_open_downloader(const tool_cache_options *o, kth_downloader **out);

/* True for http:// and https:// URLs (the ones that go through the cache). */
bool tool_is_remote(const char *url);

/* Opens the cache the options describe, printing a one-line error on failure. */
kth_status tool_open_cache(const tool_cache_options *o, kth_cache **out);

/* Opens a stream through `cache` and the downloader the TLS options in `o` ask for (HLS options
 * `hls` may be NULL: defaults), printing a one-line error on failure. */
kth_status tool_open_stream(const char *url, const tool_cache_options *o, kth_cache *cache,
                            const kth_hls_options *hls, kth_stream **out);

/* Prints "kithara: URL: <status sentence>: <detail>". */
void tool_report_stream_error(kth_stream *s, const char *url, int64_t status);

/* Prints "kithara: <message>" on stderr (one line). */
void tool_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
