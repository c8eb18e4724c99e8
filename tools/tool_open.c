/*
 * tool_open.c — the options every stream command shares (--cache-dir, --cache-key-file,
 * --offline, -q, -v, and
 * for the commands that fetch --cacert, --capath, --insecure), opening a stream with them, and
 * the one-line messages on standard error.
 */
#include "commands.h"

#include <kithara/kithara.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
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

tool_arg tool_take_url(const char *cmd, const char *arg, const char **url)
{
    if (arg[0] == '-' && arg[1] != '\0') {
        tool_error("%s: unknown option '%s'", cmd, arg);
        return TOOL_ARG_UNKNOWN;
    }
    if (*url) {
        tool_error("%s: more than one URL given", cmd);
        return TOOL_ARG_EXTRA;
    }
    *url = arg;
    return TOOL_ARG_URL;
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
    if (strcmp(argv[*i], "--cache-key-file") == 0) {
        if (*i + 1 >= argc || argv[*i + 1][0] == '\0') {
            tool_error("--cache-key-file needs a file");
            return -1;
        }
        o->key_file = argv[++*i];
        return 1;
    }
    if (strcmp(argv[*i], "--offline") == 0) {
        o->offline = true;
        return 1;
    }
    if (strcmp(argv[*i], "--cacert") == 0 || strcmp(argv[*i], "--capath") == 0) {
        bool file = strcmp(argv[*i], "--cacert") == 0;
        if (*i + 1 >= argc || argv[*i + 1][0] == '\0') {
            tool_error("%s needs a %s", argv[*i], file ? "file of CA certificates" : "directory");
            return -1;
        }
        *(file ? &o->ca_file : &o->ca_path) = argv[++*i];
        return 1;
    }
    if (strcmp(argv[*i], "--insecure") == 0) {
        o->insecure = true;
        return 1;
    }
    return parse_verbosity(argv[*i]);
}

void tool_tls_usage(FILE *to)
{
    fprintf(to, "  --cacert FILE  trust the CA certificates in FILE (PEM) instead of the system's\n"
                "  --capath DIR   trust the CA certificates in DIR (hashed, as c_rehash makes)\n"
                "  --insecure     do not verify the server's TLS certificate (test servers only)\n"
                "  Without these, CURL_CA_BUNDLE, or else SSL_CERT_FILE and SSL_CERT_DIR, name\n"
                "  the CA certificates, as for curl.\n");
}

void tool_tls_hint(const char *message)
{
    if (message && strstr(message, "SSL certificate problem"))
        tool_error("the server's certificate is not trusted: name its CA with --cacert FILE "
                   "(or SSL_CERT_FILE), or use --insecure for a test server");
}

static const char *env_or_null(const char *name)
{
    const char *v = getenv(name);
    return v && v[0] ? v : NULL;
}

kth_status tool_open_downloader(const tool_cache_options *o, kth_downloader **out)
{
    *out = NULL;
    kth_downloader_options dopts;
    kth_downloader_options_init(&dopts);
    dopts.ca_file = o->ca_file;
    dopts.ca_path = o->ca_path;
    dopts.tls_insecure = o->insecure;
    if (!o->ca_file && !o->ca_path && !o->insecure) {
        dopts.ca_file = env_or_null("CURL_CA_BUNDLE");
        if (!dopts.ca_file) {
            dopts.ca_file = env_or_null("SSL_CERT_FILE");
            dopts.ca_path = env_or_null("SSL_CERT_DIR");
        }
    }
    if (!dopts.ca_file && !dopts.ca_path && !dopts.tls_insecure)
        return KTH_OK; /* the default downloader does */
    char err[512];
    err[0] = '\0';
    kth_status st = kth_downloader_new(&dopts, out, err, sizeof err);
    if (st != KTH_OK)
        tool_error("%s", err[0] ? err : kth_strerror(st));
    return st;
}

static int hex_value(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    ch |= 0x20;
    return ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

/* The secret in `path`: 32 bytes as they are, or 64 hex digits (then trailing white space is
 * allowed). KTH_ERR_IO when it cannot be read, KTH_ERR_INVALID_ARG when it is neither. */
static kth_status read_key_file(const char *path, uint8_t secret[KTH_CACHE_SECRET_SIZE])
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        tool_error("cannot read the cache key file %s", path);
        return KTH_ERR_IO;
    }
    uint8_t buf[160];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    kth_status st = KTH_ERR_INVALID_ARG;
    if (n == KTH_CACHE_SECRET_SIZE) {
        memcpy(secret, buf, KTH_CACHE_SECRET_SIZE);
        st = KTH_OK;
    }
    while (st != KTH_OK && n > 2 * KTH_CACHE_SECRET_SIZE && strchr(" \t\r\n", buf[n - 1]) &&
           buf[n - 1] != '\0')
        n--;
    for (size_t i = 0; st != KTH_OK && n == 2 * KTH_CACHE_SECRET_SIZE; i++) {
        int hi = hex_value(buf[2 * i]), lo = hex_value(buf[2 * i + 1]);
        if (hi < 0 || lo < 0)
            break;
        secret[i] = (uint8_t)(hi << 4 | lo);
        if (i + 1 == KTH_CACHE_SECRET_SIZE)
            st = KTH_OK;
    }
    memset(buf, 0, sizeof buf);
    if (st != KTH_OK)
        tool_error("the cache key file %s must hold 32 bytes, or 64 hex digits", path);
    return st;
}

kth_status tool_open_cache(const tool_cache_options *o, kth_cache **out)
{
    kth_cache_options co;
    kth_cache_options_init(&co);
    co.dir = o->dir;
    co.offline = o->offline;
    uint8_t secret[KTH_CACHE_SECRET_SIZE];
    const char *key_file = o->key_file ? o->key_file : env_or_null("KITHARA_CACHE_KEY_FILE");
    if (key_file) {
        kth_status st = read_key_file(key_file, secret);
        if (st != KTH_OK)
            return st;
        co.secret = secret;
        co.require_protection = true;
    }
    char err[512];
    err[0] = '\0';
    kth_status st = kth_cache_open(&co, out, err, sizeof err);
    memset(secret, 0, sizeof secret);
    if (st != KTH_OK)
        tool_error("%s", err[0] ? err : kth_strerror(st));
    return st;
}

kth_status tool_open_stream(const char *url, const tool_cache_options *o, kth_cache *cache,
                            const kth_hls_options *hls, kth_stream **out)
{
    kth_downloader *d = NULL;
    kth_status st = tool_open_downloader(o, &d);
    if (st != KTH_OK)
        return st;
    kth_stream_options so;
    kth_stream_options_init(&so);
    so.cache = cache;
    so.hls = hls;
    so.downloader = d;
    so.readahead_bytes = o->readahead_bytes;
    so.bus = o->bus;
    char err[512];
    err[0] = '\0';
    st = kth_stream_open(url, &so, out, err, sizeof err);
    kth_downloader_unref(d); /* the stream keeps it while it is open */
    if (st != KTH_OK) {
        tool_error("%s", err[0] ? err : kth_strerror(st));
        tool_tls_hint(err);
    }
    return st;
}

/* Whether the library's detail names url: whole, or by the head of the excerpt it shows of a
 * long URL. */
static bool names_url(const char *detail, const char *url)
{
    size_t head = strlen(url) < 100 ? strlen(url) : 100;
    for (const char *p = detail; (p = strchr(p, url[0])) != NULL; p++)
        if (strncmp(p, url, head) == 0)
            return true;
    return false;
}

void tool_report_stream_error(kth_stream *s, const char *url, int64_t status)
{
    char detail[1024];
    kth_stream_last_error(s, detail, sizeof detail);
    if (detail[0] && url[0] && names_url(detail, url))
        tool_error("%s: %s", kth_strerror((int)status), detail);
    else
        tool_error("%s: %s%s%s", url, kth_strerror((int)status), detail[0] ? ": " : "", detail);
    tool_tls_hint(detail);
}
