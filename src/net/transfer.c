/*
 * transfer.c — one attempt of a command on a curl easy handle, and its verdict.
 *
 * The bytes a command has accepted are [range_start, range_start + received); an attempt asks
 * for what follows (Range: bytes=N-, with If-Range when a strong ETag is known) and checks the
 * answer before a byte of it is used:
 *   - 206: Content-Range must start at or before N (the excess is skipped);
 *   - 200 (a server that ignores ranges, or a compressed body that cannot be ranged): the first
 *     N bytes are skipped;
 *   - on a resumed attempt the ETag, Last-Modified and total length must be those of the first
 *     response, or the command fails with KTH_ERR_CHANGED: bytes of two versions are never
 *     spliced;
 *   - a Content-Encoding other than identity is decoded (by curl) only for a command that asked
 *     for it (accept_gzip: a whole body); any other command fails with KTH_ERR_FORMAT, since
 *     encoded bytes are neither the resource's bytes nor at its offsets.
 * Bytes past the wanted end are never delivered; a body that ends short of what it announced
 * is a transient failure that resumes. So no byte is lost or doubled.
 *
 * All of this runs on the loop thread; the curl callbacks run inside curl_multi_perform.
 */
#include "net/net_internal.h"

#include "net/http.h"
#include "net/retry.h"
#include "platform/log.h"
#include "platform/mem.h"
#include "platform/text.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define HEADER_BLOCK_MAX   (32 * 1024)
#define RECEIVE_BUFFER     (64 * 1024)
#define SMALL_HEADER_VALUE 512

/* --- easy handles ----------------------------------------------------------------------- */

/* A handle for the next attempt, with the receive buffer size set: a pooled one when curl lets
 * it be set up again, else a fresh one; NULL when curl cannot make one.
 *
 * curl_easy_reset keeps the connection and DNS caches (they live in the multi), but it also
 * resets the receive buffer size, and libcurl refuses to change that size on a handle that
 * still holds its receive buffer (CURLE_BAD_FUNCTION_ARGUMENT). A handle keeps its buffer when
 * its transfer ended while other transfers still used its connection, which is what every
 * transfer but the last on a multiplexed HTTP/2 connection does. Such a handle is dropped, not
 * reused: reusing it failed the next request. */
static CURL *easy_take(kth_downloader *d)
{
    while (d->n_easy_pool) {
        CURL *e = d->easy_pool[--d->n_easy_pool];
        curl_easy_reset(e);
        if (curl_easy_setopt(e, CURLOPT_BUFFERSIZE, (long)RECEIVE_BUFFER) == CURLE_OK)
            return e;
        curl_easy_cleanup(e);
    }
    CURL *e = curl_easy_init();
    if (e && curl_easy_setopt(e, CURLOPT_BUFFERSIZE, (long)RECEIVE_BUFFER) != CURLE_OK) {
        curl_easy_cleanup(e);
        e = NULL;
    }
    return e;
}

static void easy_give(kth_downloader *d, CURL *e)
{
    if (d->n_easy_pool < d->max_in_flight)
        d->easy_pool[d->n_easy_pool++] = e;
    else
        curl_easy_cleanup(e);
}

/* --- aborting from inside a callback ------------------------------------------------------ */

static void mark_abort(net_cmd *cmd, kth_status status, bool retryable, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void mark_abort(net_cmd *cmd, kth_status status, bool retryable, const char *fmt, ...)
{
    net_attempt *at = &cmd->at;
    at->aborted = true;
    at->abort_status = status;
    at->abort_retryable = retryable;
    va_list ap;
    va_start(ap, fmt);
    platform_vexcerptf(cmd->message, sizeof cmd->message, fmt, ap);
    va_end(ap);
}

/* --- the response ------------------------------------------------------------------------- */

typedef struct response_strings {
    char content_type[SMALL_HEADER_VALUE];
    char etag[SMALL_HEADER_VALUE];
    char last_modified[SMALL_HEADER_VALUE];
    char content_length[32];
    char content_range[128];
    char content_encoding[64];
    char retry_after[128];
} response_strings;

static const char *header_or_null(const net_attempt *at, const char *name, char *buf, size_t n)
{
    return net_header_find(at->hdr, name, buf, n) ? buf : NULL;
}

static void fill_response(net_cmd *cmd, response_strings *s, net_response *r)
{
    net_attempt *at = &cmd->at;
    memset(r, 0, sizeof *r);
    r->request_id = cmd->id;
    r->status = cmd->http_status;
    r->url = cmd->final_url ? cmd->final_url : cmd->url;
    r->redirects = cmd->redirects;
    r->content_type = header_or_null(at, "Content-Type", s->content_type, sizeof s->content_type);
    r->etag = header_or_null(at, "ETag", s->etag, sizeof s->etag);
    r->last_modified =
        header_or_null(at, "Last-Modified", s->last_modified, sizeof s->last_modified);
    const char *cl =
        header_or_null(at, "Content-Length", s->content_length, sizeof s->content_length);
    r->has_content_length = cl && net_parse_u64(cl, strlen(cl), &r->content_length);
    r->has_total_length = cmd->has_total;
    r->total_length = cmd->total;
    r->offset = cmd->range_start;
    r->headers = at->hdr ? at->hdr : "";
    r->no_resume = &cmd->no_resume;
}

static bool stored_differs(const char *stored, const char *now)
{
    return stored && now && strcmp(stored, now) != 0;
}

static bool set_copy(char **dst, const char *src)
{
    platform_free(*dst);
    *dst = src ? platform_strdup(src) : NULL;
    return !src || *dst;
}

/* Where the body sits in the resource: its first and end offsets (Content-Range of a 206,
 * else from 0 to Content-Length), the bytes to skip to reach the command's position, and the
 * resource's length when the response says it. False (after mark_abort) when it cannot be
 * used. */
static bool place_body(net_cmd *cmd, long code, bool encoded, response_strings *s,
                       const net_response *resp, bool *has_total, uint64_t *total)
{
    net_attempt *at = &cmd->at;
    uint64_t pos = cmd->range_start + cmd->received;
    uint64_t body_start = 0;
    at->body_end = UINT64_MAX;
    if (code == 206) {
        uint64_t first, last;
        const char *cr =
            header_or_null(at, "Content-Range", s->content_range, sizeof s->content_range);
        if (encoded || !net_parse_content_range(cr, &first, &last, has_total, total)) {
            mark_abort(cmd, KTH_ERR_HTTP, false, "%s: HTTP 206 with an unusable Content-Range (%s)",
                       PLATFORM_SHOWN(resp->url), cr ? cr : "none");
            return false;
        }
        body_start = first;
        at->body_end = last + 1;
    } else if (!encoded && resp->has_content_length) {
        at->body_end = resp->content_length;
        *has_total = true;
        *total = resp->content_length;
    }
    if (body_start > pos) {
        mark_abort(cmd, KTH_ERR_HTTP, false,
                   "%s: asked for bytes from %" PRIu64 ", the server answered from %" PRIu64,
                   PLATFORM_SHOWN(resp->url), pos, body_start);
        return false;
    }
    at->skip = pos - body_start;
    return true;
}

/* Interprets the final response's headers before its first body byte is used. Returns false
 * (after mark_abort) when the attempt must stop. */
static bool process_response(net_cmd *cmd)
{
    net_attempt *at = &cmd->at;
    at->processed = true;
    net_h2c_learn(cmd); /* as early as possible: attempts waiting for the connection go on */
    long code = 0;
    curl_easy_getinfo(at->easy, CURLINFO_RESPONSE_CODE, &code);
    cmd->http_status = (int)code;
    long redirects = 0;
    curl_easy_getinfo(at->easy, CURLINFO_REDIRECT_COUNT, &redirects);
    cmd->redirects = redirects > 0 ? (unsigned)redirects : 0;
    char *eff = NULL;
    if (curl_easy_getinfo(at->easy, CURLINFO_EFFECTIVE_URL, &eff) == CURLE_OK && eff &&
        (!cmd->final_url || strcmp(cmd->final_url, eff) != 0) && !set_copy(&cmd->final_url, eff)) {
        mark_abort(cmd, KTH_ERR_NO_MEMORY, false, "%s: out of memory", PLATFORM_SHOWN(cmd->url));
        return false;
    }
    response_strings s;
    if (code < 200 || code > 299) {
        at->deliver = false; /* an error page: read for Retry-After, never delivered */
        const char *ra = header_or_null(at, "Retry-After", s.retry_after, sizeof s.retry_after);
        at->has_retry_after =
            ra && net_parse_retry_after(ra, (int64_t)time(NULL), &at->retry_after_ms);
        return true;
    }
    net_response resp;
    fill_response(cmd, &s, &resp);
    const char *ce =
        header_or_null(at, "Content-Encoding", s.content_encoding, sizeof s.content_encoding);
    bool encoded = ce && ce[0] && strcasecmp(ce, "identity") != 0;
    const char *url = PLATFORM_SHOWN(resp.url); /* for messages */
    if (encoded && !cmd->accept_gzip) {
        /* Nothing asked for it, so curl does not decode it: the encoded bytes are not the
         * resource's, and their offsets and length are not its offsets and length. */
        mark_abort(cmd, KTH_ERR_FORMAT, false,
                   "%s: the server sent the body with Content-Encoding %s, which was not asked "
                   "for; its bytes are not the media",
                   url, ce);
        return false;
    }
    bool has_total = false;
    uint64_t total = 0;
    if (!place_body(cmd, code, encoded, &s, &resp, &has_total, &total))
        return false;

    if (cmd->responded) {
        /* A resumed attempt: it must be the same resource, or nothing of it is used. */
        if (stored_differs(cmd->etag, resp.etag) ||
            stored_differs(cmd->last_modified, resp.last_modified) ||
            (cmd->has_total && has_total && cmd->total != total)) {
            mark_abort(cmd, KTH_ERR_CHANGED, false,
                       "%s: the resource changed while it was downloaded (ETag %s -> %s, length "
                       "%" PRIu64 " -> %" PRIu64 ")",
                       url, cmd->etag ? cmd->etag : "none", resp.etag ? resp.etag : "none",
                       cmd->total, total);
            return false;
        }
    } else if (!set_copy(&cmd->etag, resp.etag) ||
               !set_copy(&cmd->last_modified, resp.last_modified)) {
        mark_abort(cmd, KTH_ERR_NO_MEMORY, false, "%s: out of memory", url);
        return false;
    }
    if (has_total && !cmd->has_total) {
        cmd->has_total = true;
        cmd->total = total;
    }
    at->want_end = cmd->range_end == NET_RANGE_OPEN ? UINT64_MAX : cmd->range_end;
    if (cmd->has_total && cmd->total < at->want_end)
        at->want_end = cmd->total;

    if (!cmd->responded) {
        cmd->responded = true;
        if (cmd->on_response) {
            resp.has_total_length = cmd->has_total;
            resp.total_length = cmd->total;
            kth_status st = cmd->on_response(cmd->user, &resp);
            if (st != KTH_OK) {
                mark_abort(cmd, st, false, "%s: response refused (HTTP %d): %s", url,
                           cmd->http_status, kth_strerror(st));
                return false;
            }
        }
    }
    at->deliver = cmd->method == NET_GET;
    return true;
}

/* --- the body --------------------------------------------------------------------------- */

static kth_status write_out(net_cmd *cmd, const void *p, size_t n)
{
    if (cmd->write) {
        kth_status st = cmd->write(cmd->user, cmd->range_start + cmd->flushed, p, n);
        if (st != KTH_OK) {
            platform_excerptf(cmd->message, sizeof cmd->message,
                              "%s: the writer refused the bytes at offset %" PRIu64 ": %s",
                              PLATFORM_SHOWN(cmd->url), cmd->range_start + cmd->flushed,
                              kth_strerror(st));
            return st;
        }
    }
    cmd->flushed += n;
    return KTH_OK;
}

/* Returns the attempt's (empty) stage to the downloader. */
static void give_stage(net_cmd *cmd)
{
    kth_downloader *d = cmd->d;
    net_attempt *at = &cmd->at;
    if (!at->stage)
        return;
    if (d->n_stage_pool < NET_STAGE_POOL)
        d->stage_pool[d->n_stage_pool++] = at->stage;
    else
        platform_free(at->stage);
    at->stage = NULL;
    at->stage_len = 0;
}

/* Hands the staged bytes to the writer. The stage is empty afterwards, also on failure (the
 * command then ends with the writer's verdict). */
static kth_status flush_stage(net_cmd *cmd)
{
    if (cmd->at.stage_len == 0)
        return KTH_OK;
    kth_status st = write_out(cmd, cmd->at.stage, cmd->at.stage_len);
    cmd->at.stage_len = 0;
    return st;
}

/* Keeps accepted bytes for the writer until the end of the loop's turn; bytes that do not fit
 * go out at once (after what is staged, so the writer sees them in order). */
static kth_status stage_out(net_cmd *cmd, const char *p, size_t n)
{
    if (!cmd->write)
        return write_out(cmd, p, n);
    if (cmd->at.stage_len + n > NET_STAGE_BYTES) {
        kth_status st = flush_stage(cmd);
        if (st != KTH_OK)
            return st;
    }
    if (!cmd->at.stage && n < NET_STAGE_BYTES) {
        kth_downloader *d = cmd->d;
        cmd->at.stage = d->n_stage_pool ? d->stage_pool[--d->n_stage_pool]
                                        : platform_malloc(NET_STAGE_BYTES); /* else: one by one */
    }
    if (!cmd->at.stage || n >= NET_STAGE_BYTES)
        return write_out(cmd, p, n);
    memcpy(cmd->at.stage + cmd->at.stage_len, p, n);
    cmd->at.stage_len += n;
    return KTH_OK;
}

/* Runs the validator over the held first bytes and, when they pass, hands them to the writer. */
static kth_status validate_and_flush(net_cmd *cmd)
{
    cmd->validated = true;
    response_strings s;
    net_response resp;
    fill_response(cmd, &s, &resp);
    char why[256] = "";
    kth_status st = cmd->validate(cmd->user, &resp, cmd->sniff, cmd->sniff_len, why, sizeof why);
    if (st != KTH_OK) {
        platform_excerptf(cmd->message, sizeof cmd->message, "%s: body rejected (HTTP %d): %s",
                          PLATFORM_SHOWN(resp.url), cmd->http_status,
                          why[0] ? why : kth_strerror(st));
        return st;
    }
    st = cmd->sniff_len ? write_out(cmd, cmd->sniff, cmd->sniff_len) : KTH_OK;
    cmd->sniff_len = 0;
    return st;
}

static kth_status accept_bytes(net_cmd *cmd, const char *p, size_t n)
{
    if (cmd->validate && !cmd->validated) {
        size_t room = NET_VALIDATE_BYTES - cmd->sniff_len;
        size_t k = n < room ? n : room;
        memcpy(cmd->sniff + cmd->sniff_len, p, k);
        cmd->sniff_len += k;
        cmd->received += k;
        p += k;
        n -= k;
        if (cmd->sniff_len < NET_VALIDATE_BYTES)
            return KTH_OK;
        kth_status st = validate_and_flush(cmd);
        if (st != KTH_OK)
            return st;
    }
    if (n == 0)
        return KTH_OK;
    kth_status st = stage_out(cmd, p, n);
    if (st == KTH_OK)
        cmd->received += n;
    return st;
}

static size_t on_header(char *buf, size_t size, size_t nitems, void *userdata)
{
    net_cmd *cmd = userdata;
    net_attempt *at = &cmd->at;
    size_t n = size * nitems;
    if (n >= 5 && memcmp(buf, "HTTP/", 5) == 0)
        at->hdr_len = 0; /* a new response (after a redirect): keep only the last one's */
    if (at->hdr_len + n + 1 > HEADER_BLOCK_MAX)
        return n; /* absurdly many headers: keep the first ones */
    if (at->hdr_len + n + 1 > at->hdr_cap) {
        size_t cap = at->hdr_cap ? at->hdr_cap : 1024;
        while (cap < at->hdr_len + n + 1)
            cap *= 2;
        char *h = platform_realloc(at->hdr, cap);
        if (!h)
            return 0;
        at->hdr = h;
        at->hdr_cap = cap;
    }
    memcpy(at->hdr + at->hdr_len, buf, n);
    at->hdr_len += n;
    at->hdr[at->hdr_len] = '\0';
    return n;
}

static size_t on_write(char *data, size_t size, size_t nmemb, void *userdata)
{
    net_cmd *cmd = userdata;
    net_attempt *at = &cmd->at;
    kth_downloader *d = cmd->d;
    size_t n = size * nmemb;
    if (!at->processed && !process_response(cmd))
        return 0;
    if (net_command_cancelled(cmd)) {
        mark_abort(cmd, KTH_ERR_CANCELLED, false, "%s: cancelled", PLATFORM_SHOWN(cmd->url));
        return 0;
    }
    at->net_bytes += n;
    d->last_progress_ns = net_now(d);
    net_pace_add(&at->pace, d->last_progress_ns, n);
    at->last_byte_ns = d->last_progress_ns;
    if (!at->first_byte) {
        at->first_byte = true;
        at->first_byte_ns = d->last_progress_ns;
        net_publish(d, KTH_EVENT_REQUEST_FIRST_BYTE, cmd, KTH_OK,
                    d->last_progress_ns - at->start_ns);
    }
    if (!at->deliver)
        return n;
    const char *p = data;
    size_t len = n;
    if (at->skip) {
        size_t k = at->skip < len ? (size_t)at->skip : len;
        at->skip -= k;
        p += k;
        len -= k;
    }
    uint64_t pos = cmd->range_start + cmd->received;
    if (at->want_end != UINT64_MAX && len > at->want_end - pos)
        len = (size_t)(at->want_end - pos);
    if (len) {
        kth_status st = accept_bytes(cmd, p, len);
        if (st != KTH_OK) { /* the message names the writer or the validator */
            at->aborted = true;
            at->abort_status = st;
            at->abort_retryable = false;
            return 0;
        }
    }
    if (at->want_end != UINT64_MAX && cmd->range_start + cmd->received >= at->want_end &&
        (at->body_end == UINT64_MAX || at->body_end > at->want_end)) {
        at->satisfied = true; /* the rest of this body is not wanted: stop here */
        return 0;
    }
    return n;
}

/* --- starting --------------------------------------------------------------------------- */

static bool append_header(struct curl_slist **list, const char *line)
{
    struct curl_slist *l = curl_slist_append(*list, line);
    if (!l)
        return false;
    *list = l;
    return true;
}

static bool build_request_headers(net_cmd *cmd)
{
    kth_downloader *d = cmd->d;
    net_attempt *at = &cmd->at;
    for (struct curl_slist *h = d->global_headers; h; h = h->next)
        if (!append_header(&at->req_headers, h->data))
            return false;
    for (struct curl_slist *h = cmd->headers; h; h = h->next)
        if (!append_header(&at->req_headers, h->data))
            return false;
    uint64_t pos = cmd->range_start + cmd->received;
    char line[SMALL_HEADER_VALUE + 16];
    if (!cmd->accept_gzip && (cmd->has_range || pos > 0)) {
        if (cmd->range_end != NET_RANGE_OPEN)
            snprintf(line, sizeof line, "Range: bytes=%" PRIu64 "-%" PRIu64, pos,
                     cmd->range_end - 1);
        else
            snprintf(line, sizeof line, "Range: bytes=%" PRIu64 "-", pos);
        if (!append_header(&at->req_headers, line))
            return false;
        if (cmd->received > 0 && net_etag_is_strong(cmd->etag) &&
            strlen(cmd->etag) < SMALL_HEADER_VALUE) {
            snprintf(line, sizeof line, "If-Range: %s", cmd->etag);
            if (!append_header(&at->req_headers, line))
                return false;
        }
    }
    return true;
}

/* Sets the attempt's options on its handle (the receive buffer size is already set). Returns
 * CURLE_OK, or curl's refusal with the option's name in *refused. */
static CURLcode set_options(net_cmd *cmd, const char **refused)
{
    kth_downloader *d = cmd->d;
    net_attempt *at = &cmd->at;
    CURL *e = at->easy;
    CURLcode code = CURLE_OK;
#define SET(opt, val)                                                                              \
    do {                                                                                           \
        if (code == CURLE_OK && (code = curl_easy_setopt(e, opt, val)) != CURLE_OK)                \
            *refused = #opt;                                                                       \
    } while (0)
    SET(CURLOPT_URL, cmd->url);
    SET(CURLOPT_PRIVATE, (void *)cmd);
    SET(CURLOPT_ERRORBUFFER, at->errbuf);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_FOLLOWLOCATION, 1L);
    SET(CURLOPT_MAXREDIRS, (long)d->max_redirects);
    SET(CURLOPT_USERAGENT, d->user_agent);
    SET(CURLOPT_HTTPHEADER, at->req_headers);
    SET(CURLOPT_HTTP200ALIASES, d->ok_aliases); /* SHOUTcast v1 radio */
    SET(CURLOPT_CONNECTTIMEOUT_MS, (long)d->connect_timeout_ms);
    SET(CURLOPT_HEADERFUNCTION, on_header);
    SET(CURLOPT_HEADERDATA, (void *)cmd);
    SET(CURLOPT_WRITEFUNCTION, on_write);
    SET(CURLOPT_WRITEDATA, (void *)cmd);
    /* HTTP/2 where the server offers it by ALPN; on http:// URLs only when the caller knows
     * the server speaks it from the first byte (h2c with prior knowledge). */
    bool h2c = net_h2c_wanted(d, cmd);
    if (h2c && code == CURLE_OK && (code = net_h2c_configure(cmd)) != CURLE_OK)
        *refused = "CURLOPT_HTTP_VERSION";
    if (!h2c)
        SET(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    if (h2c || strncasecmp(cmd->url, "https:", 6) == 0)
        SET(CURLOPT_PIPEWAIT, 1L); /* prefer a multiplexed HTTP/2 stream to a new connection */
    if (cmd->method == NET_HEAD)
        SET(CURLOPT_NOBODY, 1L);
    if (cmd->accept_gzip)
        SET(CURLOPT_ACCEPT_ENCODING, "gzip");
    if (d->cookies)
        SET(CURLOPT_COOKIE, d->cookies);
    if (d->has_proxy)
        SET(CURLOPT_PROXY, d->proxy);
    if (d->ca_file)
        SET(CURLOPT_CAINFO, d->ca_file);
    if (d->ca_path)
        SET(CURLOPT_CAPATH, d->ca_path);
    if (d->tls_insecure) {
        SET(CURLOPT_SSL_VERIFYPEER, 0L);
        SET(CURLOPT_SSL_VERIFYHOST, 0L);
    }
#undef SET
    return code;
}

/* The request headers go with the curl handle; the response's header block stays until the
 * next attempt or the command's end, so a validator run at the verdict still sees it. */
static void release_attempt_memory(net_attempt *at)
{
    curl_slist_free_all(at->req_headers);
    at->req_headers = NULL;
}

void net_transfer_start(net_cmd *cmd)
{
    kth_downloader *d = cmd->d;
    net_attempt *at = &cmd->at;
    platform_free(at->hdr);
    memset(at, 0, sizeof *at);
    at->want_end = UINT64_MAX;
    at->body_end = UINT64_MAX;
    at->received_at_start = cmd->received;
    at->easy = easy_take(d);
    const char *refused = NULL;
    CURLcode code = CURLE_OK;
    bool ok = at->easy && build_request_headers(cmd) &&
              (code = set_options(cmd, &refused)) == CURLE_OK &&
              net_hosts_acquire(&d->hosts, cmd->host);
    if (!ok) {
        if (at->easy)
            easy_give(d, at->easy);
        at->easy = NULL;
        release_attempt_memory(at);
        if (code != CURLE_OK)
            net_command_fail(cmd, KTH_ERR_INTERNAL, false,
                             "%s: could not set up the request: curl refused %s (%s)",
                             PLATFORM_SHOWN(cmd->url), refused, curl_easy_strerror(code));
        else
            net_command_fail(cmd, KTH_ERR_NO_MEMORY, false,
                             "%s: could not set up the request: out of memory",
                             PLATFORM_SHOWN(cmd->url));
        return;
    }
    if (curl_multi_add_handle(d->multi, at->easy) != CURLM_OK) {
        net_hosts_release(&d->hosts, cmd->host);
        easy_give(d, at->easy);
        at->easy = NULL;
        release_attempt_memory(at);
        net_command_fail(cmd, KTH_ERR_INTERNAL, false, "%s: curl refused the transfer",
                         PLATFORM_SHOWN(cmd->url));
        return;
    }
    net_h2c_started(cmd);
    int64_t now = net_now(d);
    at->start_ns = now;
    net_pace_start(&at->pace, now, d->stall_ns);
    if (!cmd->attempts)
        cmd->first_start_ns = now;
    cmd->attempts++;
    cmd->state = NET_CMD_RUNNING;
    at->prev = NULL;
    at->next = d->running;
    if (d->running)
        d->running->at.prev = cmd;
    d->running = cmd;
    d->n_running++;
    d->last_progress_ns = now;
    net_publish(d, KTH_EVENT_REQUEST_STARTED, cmd, KTH_OK, 0);
}

void net_transfer_release(net_cmd *cmd)
{
    kth_downloader *d = cmd->d;
    net_attempt *at = &cmd->at;
    net_h2c_learn(cmd);
    curl_multi_remove_handle(d->multi, at->easy);
    easy_give(d, at->easy);
    at->easy = NULL;
    release_attempt_memory(at);
    give_stage(cmd); /* empty: the verdict flushed or dropped it */
    net_hosts_release(&d->hosts, cmd->host);
    if (at->prev)
        at->prev->at.next = at->next;
    else
        d->running = at->next;
    if (at->next)
        at->next->at.prev = at->prev;
    at->prev = at->next = NULL;
    d->n_running--;
}

/* --- verdicts --------------------------------------------------------------------------- */

static void succeed(net_cmd *cmd)
{
    if (cmd->validate && !cmd->validated && cmd->method == NET_GET) {
        kth_status st = validate_and_flush(cmd);
        if (st != KTH_OK) {
            net_command_finish(cmd, st); /* the message is set */
            return;
        }
    }
    net_command_finish(cmd, KTH_OK);
}

/* A transient failure: wait and resume, or give up when the retries ran out. */
static void retry_or_fail(net_cmd *cmd, kth_status give_up_status, bool has_retry_after,
                          int64_t retry_after_ms, const char *why)
{
    kth_downloader *d = cmd->d;
    const char *url = PLATFORM_SHOWN(cmd->final_url ? cmd->final_url : cmd->url);
    if (cmd->received > cmd->at.received_at_start)
        cmd->failures = 0; /* it moved forward: count from scratch */
    cmd->failures++;
    if (cmd->no_resume) {
        net_command_fail(cmd, give_up_status, true, "%s: %s", url, why);
        return;
    }
    if (cmd->failures > d->max_retries) {
        net_command_fail(cmd, give_up_status, true, "%s: %s (gave up after %u attempts)", url, why,
                         cmd->attempts);
        return;
    }
    int64_t delay =
        net_backoff_ns(cmd->failures, d->retry_base_ns, d->retry_cap_ns, d->random(d->random_user));
    if (has_retry_after) {
        if (retry_after_ms > d->retry_after_max_ms) {
            net_command_fail(cmd, give_up_status, true,
                             "%s: %s, and the server asks to wait %" PRId64 " ms", url, why,
                             retry_after_ms);
            return;
        }
        if (retry_after_ms * 1000000 > delay)
            delay = retry_after_ms * 1000000;
    }
    cmd->retry_due_ns = net_now(d) + delay;
    cmd->state = NET_CMD_RETRY_WAIT;
    cmd->wait_prev = NULL;
    cmd->wait_next = d->waiting;
    if (d->waiting)
        d->waiting->wait_prev = cmd;
    d->waiting = cmd;
    d->n_waiting++;
    d->counts.retries++;
    platform_excerptf(cmd->message, sizeof cmd->message, "%s: %s", url, why);
    cmd->retryable = true;
    int64_t now = net_now(d);
    net_publish(d, KTH_EVENT_REQUEST_RETRYING, cmd, give_up_status,
                now > cmd->first_start_ns ? now - cmd->first_start_ns : 0);
    cmd->message[0] = '\0';
    cmd->retryable = false;
    platform_log(KTH_LOG_DEBUG, "net", "%s: %s; retry %u in %" PRId64 " ms", url, why,
                 cmd->failures, delay / 1000000);
}

/* Every byte the attempt was to deliver has been accepted (the end is known and reached). */
static bool body_complete(const net_cmd *cmd)
{
    const net_attempt *at = &cmd->at;
    uint64_t expect_end = at->want_end < at->body_end ? at->want_end : at->body_end;
    return at->processed && at->deliver && cmd->method == NET_GET && expect_end != UINT64_MAX &&
           cmd->range_start + cmd->received >= expect_end;
}

void net_transfer_abort(net_cmd *cmd, kth_status status, bool retryable, const char *why)
{
    net_attempt *at = &cmd->at;
    if (status == KTH_ERR_CANCELLED && !at->aborted && body_complete(cmd)) {
        /* curl has not reported the end yet, but every byte is here: nothing to cancel. */
        at->satisfied = true;
        net_transfer_done(cmd, CURLE_OK);
        return;
    }
    at->aborted = true;
    at->abort_status = status;
    at->abort_retryable = retryable;
    platform_excerpt(why, at->abort_reason, sizeof at->abort_reason);
    platform_excerptf(cmd->message, sizeof cmd->message, "%s: %s", PLATFORM_SHOWN(cmd->url), why);
    net_transfer_done(cmd, CURLE_ABORTED_BY_CALLBACK);
}

void net_transfer_flush_all(kth_downloader *d)
{
    for (net_cmd *cmd = d->running, *next; cmd; cmd = next) {
        next = cmd->at.next;
        kth_status st = flush_stage(cmd);
        give_stage(cmd);
        if (st != KTH_OK) { /* the message names the writer */
            cmd->at.aborted = true;
            cmd->at.abort_status = st;
            cmd->at.abort_retryable = false;
            net_transfer_done(cmd, CURLE_ABORTED_BY_CALLBACK);
        }
    }
}

/* What the verdict on an attempt needs, copied before curl lets go of it. */
typedef struct attempt_end {
    bool cancelled, late_cancel;
    bool aborted, satisfied, deliver;
    kth_status abort_status;
    bool abort_retryable;
    char abort_reason[sizeof((net_attempt *)0)->abort_reason];
    bool has_retry_after;
    int64_t retry_after_ms;
    uint64_t want_end, expect, net_bytes;
    int64_t total_ns, ttfb_ns;  /* on d's clock: to the last body byte, to the first */
    bool has_unsatisfied_total; /* a 416 named the resource's length */
    uint64_t unsatisfied_total;
    char errtext[CURL_ERROR_SIZE + 64];
} attempt_end;

/* Settles a cancel against a body that arrived whole, hands the stage out, and copies what the
 * verdict needs into *e. */
static void collect_end(net_cmd *cmd, CURLcode code, attempt_end *e)
{
    net_attempt *at = &cmd->at;
    if (!at->processed && code == CURLE_OK && !at->aborted)
        process_response(cmd);
    /* A body that arrived whole stays a success when a cancel came after its last byte: the
     * cancel had nothing left to save, and the writer's copy (a cache entry) is complete. */
    bool whole =
        !at->aborted && at->deliver && cmd->method == NET_GET &&
        (at->satisfied ||
         (code == CURLE_OK && cmd->http_status >= 200 && cmd->http_status <= 299 &&
          (body_complete(cmd) || (at->want_end == UINT64_MAX && at->body_end == UINT64_MAX))));
    e->late_cancel = whole && net_command_cancelled(cmd);
    e->cancelled = (at->aborted && at->abort_status == KTH_ERR_CANCELLED) ||
                   (!whole && net_command_cancelled(cmd));
    /* Verdicts come after the end-of-turn hand-over, so the stage is normally empty here;
     * should it not be, its bytes go out first, as they would have (a resume starts after
     * them), unless the command is cancelled. */
    if (e->cancelled) {
        at->stage_len = 0;
    } else {
        kth_status st = flush_stage(cmd);
        if (st != KTH_OK) { /* the writer refused: its verdict is the one */
            at->aborted = true;
            at->abort_status = st;
            at->abort_retryable = false;
        }
    }
    /* Timed on the downloader's clock, as everything that judges a link is, so that a virtual
     * clock drives the estimates too (curl's own timers run on the real one). */
    e->total_ns = (at->first_byte ? at->last_byte_ns : net_now(cmd->d)) - at->start_ns;
    e->ttfb_ns = at->first_byte ? at->first_byte_ns - at->start_ns : 0;
    snprintf(e->errtext, sizeof e->errtext, "%s",
             at->errbuf[0] ? at->errbuf : curl_easy_strerror(code));
    e->unsatisfied_total = 0;
    e->has_unsatisfied_total = false;
    if (cmd->http_status == 416 && at->hdr) {
        char cr[128];
        e->has_unsatisfied_total = net_header_find(at->hdr, "Content-Range", cr, sizeof cr) &&
                                   net_parse_unsatisfied_range(cr, &e->unsatisfied_total);
    }
    e->aborted = at->aborted;
    e->satisfied = at->satisfied;
    e->deliver = at->deliver;
    e->abort_status = at->abort_status;
    e->abort_retryable = at->abort_retryable;
    memcpy(e->abort_reason, at->abort_reason, sizeof e->abort_reason);
    e->has_retry_after = at->has_retry_after;
    e->retry_after_ms = at->retry_after_ms;
    e->want_end = at->want_end;
    e->expect = at->want_end < at->body_end ? at->want_end : at->body_end;
    e->net_bytes = at->net_bytes;
}

/* The verdict on an attempt that ended with an HTTP response (curl said OK). */
static void judge_response(net_cmd *cmd, const attempt_end *e, uint64_t pos)
{
    const char *url = PLATFORM_SHOWN(cmd->final_url ? cmd->final_url : cmd->url);
    char why[sizeof cmd->message + CURL_ERROR_SIZE];
    int status = cmd->http_status;
    if (status >= 200 && status <= 299) {
        if (cmd->method == NET_GET && e->expect != UINT64_MAX && pos < e->expect) {
            snprintf(why, sizeof why, "the body ended at byte %" PRIu64 " of %" PRIu64, pos,
                     e->expect);
            retry_or_fail(cmd, KTH_ERR_NETWORK, false, 0, why);
        } else {
            succeed(cmd);
        }
    } else if (status == 416) {
        if (e->has_unsatisfied_total && cmd->responded && e->unsatisfied_total == pos &&
            cmd->range_end == NET_RANGE_OPEN) {
            /* Every byte is here: the earlier response announced more than there was. */
            cmd->has_total = true;
            cmd->total = e->unsatisfied_total;
            succeed(cmd);
        } else {
            if (e->has_unsatisfied_total && !cmd->has_total) {
                cmd->has_total = true;
                cmd->total = e->unsatisfied_total;
            }
            net_command_fail(cmd, KTH_ERR_OUT_OF_RANGE, false,
                             "%s: HTTP status 416, range from byte %" PRIu64 " not satisfiable",
                             url, pos);
        }
    } else if (net_http_status_transient(status)) {
        snprintf(why, sizeof why, "HTTP status %d", status);
        retry_or_fail(cmd, KTH_ERR_HTTP, e->has_retry_after, e->retry_after_ms, why);
    } else {
        net_command_fail(cmd, net_http_status_error(status), false, "%s: HTTP status %d", url,
                         status);
    }
}

/* The verdict on an attempt that curl ended with an error. */
static void judge_failure(net_cmd *cmd, CURLcode code, const attempt_end *e)
{
    const char *url = PLATFORM_SHOWN(cmd->final_url ? cmd->final_url : cmd->url);
    if (code == CURLE_TOO_MANY_REDIRECTS) {
        net_command_fail(cmd, KTH_ERR_HTTP, false, "%s: more than %u redirects",
                         PLATFORM_SHOWN(cmd->url), cmd->d->max_redirects);
    } else if (net_curl_code_transient(code)) {
        retry_or_fail(cmd, net_curl_code_error(code), false, 0, e->errtext);
    } else {
        net_command_fail(cmd, net_curl_code_error(code), false, "%s: %s", url, e->errtext);
    }
}

void net_transfer_done(net_cmd *cmd, CURLcode code)
{
    attempt_end e;
    collect_end(cmd, code, &e);
    /* Let go of curl: no callback of this attempt can run after this point. */
    bool h2c_missed = !e.cancelled && net_h2c_missed(cmd, code);
    net_transfer_release(cmd);
    if (h2c_missed) {
        /* Its cleartext HTTP/2 connection was gone (h2c.c): at once on a new one, which is no
         * failure of the request. */
        platform_log(KTH_LOG_DEBUG, "net", "%s: %s; again on a new HTTP/2 connection",
                     PLATFORM_SHOWN(cmd->url), e.errtext);
        net_command_queue(cmd);
        return;
    }

    /* A cancelled command gives no sample, also one completed after a late cancel: whoever
     * cancelled it may have accounted for it already (a rescued fetch). */
    if (e.net_bytes > 0 && e.deliver && !e.cancelled && !e.late_cancel) {
        net_sample sample = {.request_id = cmd->id,
                             .bytes = e.net_bytes,
                             .duration_ns = e.total_ns,
                             .ttfb_ns = e.ttfb_ns,
                             .http_status = cmd->http_status};
        net_deliver_sample(cmd->d, cmd, &sample);
    }
    if (e.cancelled) {
        platform_excerptf(cmd->message, sizeof cmd->message, "%s: cancelled",
                          PLATFORM_SHOWN(cmd->url));
        net_command_finish(cmd, KTH_ERR_CANCELLED);
        return;
    }
    if (e.aborted) {
        if (e.abort_retryable)
            retry_or_fail(cmd, e.abort_status, false, 0, e.abort_reason);
        else
            net_command_finish(cmd, e.abort_status);
        return;
    }
    uint64_t pos = cmd->range_start + cmd->received;
    if (e.satisfied ||
        (e.deliver && cmd->method == NET_GET && e.want_end != UINT64_MAX && pos >= e.want_end)) {
        /* Everything wanted is here, even if the connection then broke: never ask for an
         * empty range. */
        succeed(cmd);
        return;
    }
    if (code == CURLE_OK)
        judge_response(cmd, &e, pos);
    else
        judge_failure(cmd, code, &e);
}
