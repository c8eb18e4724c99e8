/*
 * commands.h — the subcommands of the kithara program. Each takes its own argv (argv[0] is the
 * subcommand's name) and returns the process exit code (tool_exit_code, listed by
 * `kithara --help` and in the README).
 */
#ifndef KTH_TOOLS_COMMANDS_H
#define KTH_TOOLS_COMMANDS_H

#include <kithara/kithara.h>

#include <stdbool.h>
#include <stdio.h>

/* The exit codes. Scripts depend on them: never renumber, only add. */
enum tool_exit {
    TOOL_EXIT_OK = 0,
    TOOL_EXIT_FAILURE = 1,
    TOOL_EXIT_USAGE = 2,
    TOOL_EXIT_NETWORK = 3,
    TOOL_EXIT_HTTP = 4,
    TOOL_EXIT_FORMAT = 5,
    TOOL_EXIT_OFFLINE_MISS = 6,
    TOOL_EXIT_CACHE = 7,
    TOOL_EXIT_IO = 8,
    TOOL_EXIT_INTERRUPTED = 130,
};

/* The exit code for a library status; `remote` tells a 404 (HTTP) from a missing local file. */
int tool_exit_code(int status, bool remote);
/* Prints the table of exit codes, for --help. */
void tool_print_exit_codes(FILE *to);

/* -q and -v: how much the tool says on standard error besides errors. Set once while parsing
 * the command line, read afterwards. */
extern int tool_verbosity; /* -1 quiet, 0 default, 1 -v (library info), 2 -vv (debug) */

int cmd_cat(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_cache(int argc, char **argv);
int cmd_download(int argc, char **argv);
int cmd_decode(int argc, char **argv);

/* --cache-dir DIR and --offline, shared by the stream commands, and the TLS options of the
 * commands that fetch (cat, info, download): --cacert FILE, --capath DIR, --insecure. Fields
 * after `offline` are zero in an initializer that names only the first two. */
typedef struct tool_cache_options {
    const char *dir; /* NULL: the default location */
    bool offline;
    const char *ca_file;      /* --cacert: CA certificates (PEM bundle) to trust instead of the
                                 system's */
    const char *ca_path;      /* --capath: a hashed directory of CA certificates */
    bool insecure;            /* --insecure: no TLS certificate or host name verification */
    uint64_t readahead_bytes; /* a file's read-ahead past the reader; 0: the library's default */
    const char *key_file;     /* --cache-key-file: the protected cache's secret (else the
                                 KITHARA_CACHE_KEY_FILE environment variable; else none) */
    kth_bus *bus;             /* where the stream publishes its events (borrowed); NULL: none */
} tool_cache_options;

/* If argv[*i] is an option every stream command takes (--cache-dir DIR, --cache-key-file FILE,
 * --offline, -q, -v, --cacert FILE, --capath DIR, --insecure), consumes it (and its value) and
 * returns 1; returns 0 when it is not one, -1 (after printing why) when its value is missing. -v
 * installs a log handler that prints the library's messages on standard error. */
int tool_parse_cache_option(int argc, char **argv, int *i, tool_cache_options *o);

/* What tool_take_url made of an argument no option of the command took. */
typedef enum tool_arg {
    TOOL_ARG_URL,     /* it is the URL (stored) */
    TOOL_ARG_UNKNOWN, /* an option the command does not know (said): print the usage */
    TOOL_ARG_EXTRA,   /* a second URL (said) */
} tool_arg;

/* Takes `arg` as the command's one URL into *url, or says (prefixed with `cmd`) why it cannot:
 * an unknown option ("-x", "--y"; "-" alone is a URL) or a second URL. */
tool_arg tool_take_url(const char *cmd, const char *arg, const char **url);

/* Prints a progress or information line on standard error unless -q was given. */
void tool_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

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

/* Opens the cache the options describe, printing a one-line error on failure (exit code
 * TOOL_EXIT_CACHE). */
kth_status tool_open_cache(const tool_cache_options *o, kth_cache **out);

/* Opens a stream through `cache` and the downloader the TLS options in `o` ask for (HLS options
 * `hls` may be NULL: defaults), printing a one-line error on failure. */
kth_status tool_open_stream(const char *url, const tool_cache_options *o, kth_cache *cache,
                            const kth_hls_options *hls, kth_stream **out);

/* Prints "kithara: <status sentence>: <detail>" when the stream's last error names the URL,
 * else "kithara: URL: <status sentence>[: <detail>]": the URL once either way. */
void tool_report_stream_error(kth_stream *s, const char *url, int64_t status);

/* Prints "kithara: <message>" on stderr (one line). */
void tool_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
