/*
 * open.c — kth_stream_open: from a URL or path to a stream over the right kind of source.
 *
 * This is the one place that knows every kind of source, so it sits above all layers.
 * Local paths and file:// URLs are read in place; http(s) URLs of HLS playlists go through the
 * HLS source, and those of single files through the progressive source (both: downloader +
 * cache).
 */
#include <kithara/kithara.h>

#include "api/defaults.h"
#include "api/stream_options.h"
#include "file/progressive.h"
#include "hls/hls_source.h"
#include "net/downloader.h"
#include "storage/resource.h"
#include "stream/resource_source.h"
#include "platform/mem.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)tolower((unsigned char)c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* file://[host]/path with %XX escapes → a local path (caller frees). Only an empty host or
 * "localhost" names this machine. */
static kth_status file_url_to_path(const char *url, char **out, char *err, size_t errlen)
{
    const char *p = url + strlen("file://");
    if (*p != '/') {
        const char *slash = strchr(p, '/');
        size_t host_len = slash ? (size_t)(slash - p) : strlen(p);
        if (!slash || host_len != strlen("localhost") || strncasecmp(p, "localhost", host_len)) {
            if (err && errlen)
                snprintf(err, errlen, "%s: file URL must name a local absolute path", url);
            return KTH_ERR_INVALID_ARG;
        }
        p = slash;
    }
    size_t len = strcspn(p, "?#");
    char *path = platform_malloc(len + 1);
    if (!path)
        return KTH_ERR_NO_MEMORY;
    size_t j = 0;
    for (size_t i = 0; i < len; i++) {
        if (p[i] == '%' && i + 2 < len && hex_value(p[i + 1]) >= 0 && hex_value(p[i + 2]) >= 0) {
            char c = (char)(hex_value(p[i + 1]) * 16 + hex_value(p[i + 2]));
            if (c == '\0') {
                platform_free(path);
                if (err && errlen)
                    snprintf(err, errlen, "%s: file URL contains an encoded NUL", url);
                return KTH_ERR_INVALID_ARG;
            }
            path[j++] = c;
            i += 2;
        } else {
            path[j++] = p[i];
        }
    }
    path[j] = '\0';
    *out = path;
    return KTH_OK;
}

/* True when `url` starts with a URL scheme ("name:"), per RFC 3986's scheme syntax. */
static bool has_scheme(const char *url, size_t *scheme_len)
{
    if (!isalpha((unsigned char)url[0]))
        return false;
    size_t i = 1;
    while (isalnum((unsigned char)url[i]) || url[i] == '+' || url[i] == '-' || url[i] == '.')
        i++;
    if (url[i] != ':' || i < 2) /* "C:" style drive letters are not schemes */
        return false;
    *scheme_len = i;
    return true;
}

static kth_status open_local(const char *path, const char *name, const kth_stream_options *opts,
                             kth_stream **out, char *err, size_t errlen)
{
    storage_resource *res;
    kth_status st = storage_resource_open_complete_file(path, &res, err, errlen);
    if (st != KTH_OK)
        return st;
    stream_source *src;
    st = stream_resource_source_new(res, name, NULL, &src);
    storage_resource_unref(res);
    if (st != KTH_OK)
        return st;
    return stream_new(src, opts, name, out);
}

static kth_status open_http(const char *url, const kth_stream_options *opts, kth_stream **out,
                            char *err, size_t errlen)
{
    file_source_options fo = {opts->downloader, opts->cache, opts->readahead_bytes, opts->bus};
    kth_status st;
    if (!fo.cache && (st = api_default_cache(&fo.cache, err, errlen)) != KTH_OK)
        return st;
    if (!fo.downloader && (st = net_downloader_default(&fo.downloader, err, errlen)) != KTH_OK)
        return st;
    stream_source *src;
    if (hls_looks_like_playlist(url, NULL, NULL, 0)) {
        hls_source_options ho = {.downloader = fo.downloader,
                                 .cache = fo.cache,
                                 .bus = opts->bus,
                                 .timeout_ms = opts->read_timeout_ms,
                                 .hls = *opts->hls};
        st = hls_source_new(url, &ho, &src, err, errlen);
    } else {
        st = file_source_new(url, &fo, &src, err, errlen);
    }
    if (st != KTH_OK)
        return st;
    return stream_new(src, opts, url, out);
}

kth_status kth_stream_open(const char *url, const kth_stream_options *opts, kth_stream **out,
                           char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    if (!url || !*url || !out) {
        if (err && errlen)
            snprintf(err, errlen, "no URL given");
        return KTH_ERR_INVALID_ARG;
    }
    kth_stream_options so;
    kth_hls_options ho;
    kth_status st = api_stream_options(opts, &so, &ho, err, errlen);
    if (st != KTH_OK)
        return st;
    opts = &so;
    size_t scheme_len = 0;
    if (!has_scheme(url, &scheme_len))
        return open_local(url, url, opts, out, err, errlen);
    if (scheme_len == 4 && strncasecmp(url, "file", 4) == 0 && strncmp(url + 4, "://", 3) == 0) {
        char *path;
        st = file_url_to_path(url, &path, err, errlen);
        if (st != KTH_OK)
            return st;
        st = open_local(path, url, opts, out, err, errlen);
        platform_free(path);
        return st;
    }
    bool http = (scheme_len == 4 && strncasecmp(url, "http", 4) == 0) ||
                (scheme_len == 5 && strncasecmp(url, "https", 5) == 0);
    if (!http) {
        if (err && errlen)
            snprintf(err, errlen, "%.*s: URL scheme not supported", (int)scheme_len, url);
        return KTH_ERR_UNSUPPORTED;
    }
    return open_http(url, opts, out, err, errlen);
}
