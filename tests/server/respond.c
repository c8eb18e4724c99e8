/*
 * respond.c — what a request gets back: the plan of faults carried out in order (gate, latency,
 * redirect, status, HTML page), the body chosen (changed or gzip-encoded when the plan says so)
 * and cut to the requested range, and the body reader that paces, stalls and cuts the bytes as
 * the plan says.
 *
 * Everything here runs on the request's own connection thread (thread-per-connection mode), so
 * blocking is allowed; every block is an interruptible wait that ends when the server stops.
 * The body reader is called by libmicrohttpd only after the bytes it returned before have been
 * written to the socket, so `pos` is the count of bytes already handed over, and a cut or stall
 * after N bytes happens after exactly N bytes reached the socket.
 */
#include "ts_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TS_BLOCK_SIZE (64 * 1024)
/* A synthetic changed body is dated this long after the epoch, away from registered bodies. */
#define TS_CHANGED_AGE 500000

static void request_set_status(ts_request *req, int status)
{
    kts_server *srv = req->srv;
    kts_log_entry *e;

    pthread_mutex_lock(&srv->lock);
    req->status = status;
    if (req->generation == srv->generation && (e = ts_log_at(&srv->log, req->seq)) != NULL) {
        e->status = status;
    }
    pthread_mutex_unlock(&srv->lock);
}

/* ---- the body reader -------------------------------------------------------------------- */

static uint64_t min_u64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

/* Serves the stall of a request that reached its stall point. False when stopping. */
static bool serve_stall(ts_request *req, uint64_t pos)
{
    kts_server *srv = req->srv;
    int64_t deadline =
        req->plan.stall_ms > 0 ? ts_now_ns() + (int64_t)req->plan.stall_ms * 1000000 : -1;
    bool running;

    pthread_mutex_lock(&srv->lock);
    running = ts_hold_wait(srv, &req->entry->stall, deadline);
    pthread_mutex_unlock(&srv->lock);
    req->stalled = true;
    if (req->plan.rate > 0) {
        /* Restart the rate clock so the time stalled is not made up for with a burst. */
        req->rate_start_ns = ts_now_ns() - (int64_t)((double)pos * 1e9 / (double)req->plan.rate);
    }
    return running;
}

/* Waits until the rate cap allows bytes [0, end) to have been sent. False when stopping. */
static bool pace(ts_request *req, uint64_t end)
{
    kts_server *srv = req->srv;
    int64_t due = req->rate_start_ns + (int64_t)((double)end * 1e9 / (double)req->plan.rate);
    bool running;

    pthread_mutex_lock(&srv->lock);
    running = ts_sleep_until(srv, due);
    pthread_mutex_unlock(&srv->lock);
    return running;
}

/* Past the trickle point: one byte per trickle_ms. Returns the bytes allowed now (1, after the
 * wait; or up to the trickle point), false when stopping. */
static bool trickle(ts_request *req, uint64_t pos, uint64_t *n)
{
    kts_server *srv = req->srv;
    const ts_plan *plan = &req->plan;
    bool running = true;

    if (pos < plan->trickle_after) {
        *n = min_u64(*n, plan->trickle_after - pos);
        return true;
    }
    *n = min_u64(*n, 1);
    if (req->trickle_last_ns != 0) {
        pthread_mutex_lock(&srv->lock);
        running = ts_sleep_until(srv, req->trickle_last_ns + (int64_t)plan->trickle_ms * 1000000);
        pthread_mutex_unlock(&srv->lock);
    }
    req->trickle_last_ns = ts_now_ns();
    return running;
}

static ssize_t read_body(void *cls, uint64_t pos, char *buf, size_t max)
{
    ts_request *req = cls;
    kts_server *srv = req->srv;
    const ts_plan *plan = &req->plan;
    uint64_t end = req->length;
    uint64_t n;
    kts_log_entry *e;

    if (req->announced != MHD_SIZE_UNKNOWN) {
        end = min_u64(end, req->announced);
    }
    if (plan->close_after_set && pos >= plan->close_after) {
        return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    if (plan->stall_set && !req->stalled && pos >= plan->stall_after && !serve_stall(req, pos)) {
        return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    if (pos >= end) {
        /* Chunked: the regular end. Otherwise more was announced than exists: cut short. */
        return req->announced == MHD_SIZE_UNKNOWN ? MHD_CONTENT_READER_END_OF_STREAM
                                                  : MHD_CONTENT_READER_END_WITH_ERROR;
    }

    n = min_u64(max, end - pos);
    if (plan->close_after_set) {
        n = min_u64(n, plan->close_after - pos);
    }
    if (plan->stall_set && !req->stalled) {
        n = min_u64(n, plan->stall_after - pos);
    }
    if (plan->trickle_set && !trickle(req, pos, &n)) {
        return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    if (!ts_link_take(req, pos, end, &n)) {
        return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    if (plan->rate > 0) {
        /* Steps of about 20 ms worth of bytes keep the flow smooth. */
        uint64_t step = plan->rate / 50 > 0 ? plan->rate / 50 : 1;
        n = min_u64(n, step);
        if (req->rate_start_ns == 0) {
            req->rate_start_ns = ts_now_ns();
        }
        if (!pace(req, pos + n)) {
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
    }
    if (n > 0 && req->body->kind == TS_BODY_ICY) {
        ts_icy_next(req->body->icy, &req->icy, (unsigned char *)buf, (size_t)n);
    } else if (n == 0 || !ts_body_read(req->body, req->offset + pos, buf, (size_t)n)) {
        return MHD_CONTENT_READER_END_WITH_ERROR;
    }

    pthread_mutex_lock(&srv->lock);
    req->sent = pos + n;
    if (req->generation == srv->generation && (e = ts_log_at(&srv->log, req->seq)) != NULL) {
        e->body_bytes = req->sent;
    }
    pthread_mutex_unlock(&srv->lock);
    return (ssize_t)n;
}

static void free_reader(void *cls)
{
    ts_request *req = cls;
    kts_server *srv = req->srv;

    pthread_mutex_lock(&srv->lock);
    ts_request_unref_locked(req);
    pthread_mutex_unlock(&srv->lock);
}

/* ---- responses -------------------------------------------------------------------------- */

typedef struct ts_header {
    const char *name;
    const char *value;
} ts_header;

static enum MHD_Result queue(ts_request *req, struct MHD_Connection *conn,
                             struct MHD_Response *resp, int status, const ts_header *headers,
                             size_t count)
{
    enum MHD_Result rc;

    if (resp == NULL) {
        return MHD_NO;
    }
    for (size_t i = 0; i < count; i++) {
        if (headers[i].value != NULL &&
            MHD_add_response_header(resp, headers[i].name, headers[i].value) != MHD_YES) {
            MHD_destroy_response(resp);
            return MHD_NO;
        }
    }
    request_set_status(req, status);
    rc = MHD_queue_response(conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return rc;
}

static enum MHD_Result queue_text(ts_request *req, struct MHD_Connection *conn, int status,
                                  const char *content_type, const char *text,
                                  const ts_header *extra, size_t extra_count)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        strlen(text), (void *)(uintptr_t)text, MHD_RESPMEM_MUST_COPY);
    ts_header headers[4] = {{"Content-Type", content_type}};
    size_t count = 1;

    for (size_t i = 0; i < extra_count && count < 4; i++) {
        headers[count++] = extra[i];
    }
    return queue(req, conn, resp, status, headers, count);
}

static enum MHD_Result queue_status_text(ts_request *req, struct MHD_Connection *conn, int status,
                                         const ts_header *extra, size_t extra_count)
{
    char text[96];
    snprintf(text, sizeof text, "HTTP status %d from the test server\n", status);
    return queue_text(req, conn, status, "text/plain", text, extra, extra_count);
}

/* Appends s to out, percent-encoding bytes that may not appear raw in a URL path. */
static size_t append_encoded(char *out, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = 0;

    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            strchr("/-._~!$&'()*+,;=:@", *p) != NULL) {
            out[n++] = (char)*p;
        } else {
            out[n++] = '%';
            out[n++] = hex[*p >> 4];
            out[n++] = hex[*p & 15];
        }
    }
    out[n] = '\0';
    return n;
}

/* 302 towards `dest` with `hops` redirects left; `marker` asks for ?kts_redirected=1 at the end. */
static enum MHD_Result queue_redirect(ts_request *req, struct MHD_Connection *conn, unsigned hops,
                                      const char *dest, bool marker)
{
    kts_server *srv = req->srv;
    size_t size = strlen(srv->base_url) + sizeof TS_HOP_PREFIX + 16 + 3 * strlen(dest) +
                  sizeof TS_REDIRECTED_ARG + 4;
    char *location = malloc(size);
    size_t n;
    enum MHD_Result rc;
    ts_header header;

    if (location == NULL) {
        return MHD_NO;
    }
    n = (size_t)snprintf(location, size, "%s", srv->base_url);
    if (hops > 1) {
        n += (size_t)snprintf(location + n, size - n, "%s%u/%c", TS_HOP_PREFIX, hops - 1,
                              marker ? 'm' : 't');
    }
    n += append_encoded(location + n, dest);
    if (hops <= 1 && marker) {
        snprintf(location + n, size - n, "?%s=1", TS_REDIRECTED_ARG);
    }
    header = (ts_header){"Location", location};
    rc = queue_text(req, conn, 302, "text/plain", "redirect\n", &header, 1);
    free(location);
    return rc;
}

/* Handles /__kts/hop/<left>/<m|t><dest>: the middle of a redirect chain. */
static enum MHD_Result serve_hop(ts_request *req, struct MHD_Connection *conn, const char *url)
{
    const char *p = url + sizeof TS_HOP_PREFIX - 1;
    unsigned left = 0;

    while (*p >= '0' && *p <= '9' && left <= 100) {
        left = left * 10 + (unsigned)(*p - '0');
        p++;
    }
    if (left == 0 || left > 100 || p[0] != '/' || (p[1] != 'm' && p[1] != 't') || p[2] != '/') {
        return queue_status_text(req, conn, 404, NULL, 0);
    }
    return queue_redirect(req, conn, left, p + 2, p[1] == 'm');
}

static const char html_error_page[] =
    "<!DOCTYPE html>\n<html><head><title>Service Unavailable</title></head>\n"
    "<body><h1>Service temporarily unavailable</h1>\n"
    "<p>The page you asked for could not be shown. Please try again later.</p></body></html>\n";

/* Finds the body for the request: registered, synthetic, or a file. Sets *content_type to the
 * type of the original content (a changed body keeps it). Returns the HTTP status on failure. */
static int find_body(ts_request *req, struct MHD_Connection *conn, const char *url,
                     char *content_type, size_t type_size)
{
    kts_server *srv = req->srv;
    ts_body *orig;
    uint64_t size;
    int status = KTH_OK;

    pthread_mutex_lock(&srv->lock);
    orig = req->entry->body;
    if (orig != NULL) {
        orig->refs++;
    }
    pthread_mutex_unlock(&srv->lock);

    if (orig == NULL && ts_synth_path_parse(url, &size)) {
        const char *seed_arg = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "seed");
        char *end = NULL;
        uint64_t seed = seed_arg != NULL ? strtoull(seed_arg, &end, 10) : 0;
        if (seed_arg != NULL && (*seed_arg == '\0' || *end != '\0')) {
            return 400;
        }
        const char *framing = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "framing");
        if (framing != NULL && strcmp(framing, "ts") != 0) {
            return 400;
        }
        orig = ts_body_new_synth(size, seed, NULL, url, srv->epoch);
        if (orig == NULL) {
            return 500;
        }
        if (framing != NULL) {
            ts_body_frame_ts(orig);
        }
    }
    if (orig == NULL) {
        orig = ts_body_open_file(srv->doc_root, url, &status);
        if (orig == NULL) {
            return status == KTH_ERR_NO_MEMORY ? 500 : 404;
        }
    }
    snprintf(content_type, type_size, "%s", orig->content_type);

    if (!req->plan.change_body) {
        req->body = orig;
        return 0;
    }
    if (req->plan.changed != NULL) {
        pthread_mutex_lock(&srv->lock);
        req->body = req->plan.changed;
        req->body->refs++;
        ts_body_unref_locked(orig);
        pthread_mutex_unlock(&srv->lock);
        return 0;
    }
    req->body = ts_body_new_synth(orig->size, req->plan.change_seed, orig->content_type, url,
                                  srv->epoch + TS_CHANGED_AGE);
    pthread_mutex_lock(&srv->lock);
    ts_body_unref_locked(orig);
    pthread_mutex_unlock(&srv->lock);
    return req->body != NULL ? 0 : 500;
}

/* Replaces the request's body by its gzip encoding. Returns 0 or the HTTP status to answer. */
static int encode_body(ts_request *req)
{
    kts_server *srv = req->srv;
    ts_body *encoded = ts_body_new_gzip(req->body);

    if (encoded == NULL) {
        return 500;
    }
    pthread_mutex_lock(&srv->lock);
    ts_body_unref_locked(req->body);
    req->body = encoded;
    pthread_mutex_unlock(&srv->lock);
    return 0;
}

/* A radio station: 200 without a length, with metadata when the client asked for it. */
static enum MHD_Result serve_icy(ts_request *req, struct MHD_Connection *conn)
{
    const kts_icy *icy = req->body->icy;
    const char *ask = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Icy-MetaData");
    bool with_meta = ask != NULL && strcmp(ask, "1") == 0;
    char metaint[24];
    struct MHD_Response *resp;

    if (icy->max_requests > 0 && req->number > icy->max_requests) {
        return queue_status_text(req, conn, 404, NULL, 0);
    }
    snprintf(metaint, sizeof metaint, "%u", (unsigned)icy->metaint);
    ts_icy_cursor_init(&req->icy, icy, req->number, with_meta);
    req->offset = 0;
    req->length = icy->length > 0 ? icy->length : UINT64_MAX;
    req->announced = icy->announce_length && icy->length > 0 ? icy->length : MHD_SIZE_UNKNOWN;
    req->streaming = !req->is_head;
    resp = MHD_create_response_from_callback(req->announced, TS_BLOCK_SIZE, read_body, req,
                                             free_reader);
    if (resp == NULL) {
        return MHD_NO;
    }
    pthread_mutex_lock(&req->srv->lock);
    req->refs++; /* the reader's reference, dropped by free_reader */
    pthread_mutex_unlock(&req->srv->lock);
    ts_header headers[] = {
        {"Content-Type", icy->content_type},
        {"icy-metaint", with_meta ? metaint : NULL},
        {"icy-name", icy->name},
        {"icy-genre", icy->genre},
        {"icy-br", icy->bitrate},
    };
    return queue(req, conn, resp, 200, headers, sizeof headers / sizeof headers[0]);
}

static enum MHD_Result serve_body(ts_request *req, struct MHD_Connection *conn, const char *url)
{
    const ts_plan *plan = &req->plan;
    char content_type[96];
    char content_range[96] = "";
    int status = find_body(req, conn, url, content_type, sizeof content_type);
    const char *range;
    const char *if_range;
    const ts_body *body;
    struct MHD_Response *resp;

    if (status == 0 && plan->gzip) {
        status = encode_body(req);
    }
    if (status != 0) {
        return queue_status_text(req, conn, status, NULL, 0);
    }
    if (req->body->kind == TS_BODY_ICY) {
        return serve_icy(req, conn);
    }
    body = req->body;
    if (ts_if_none_match_matches(
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "If-None-Match"), body->etag)) {
        ts_header headers[] = {{"ETag", body->etag}, {"Last-Modified", body->last_modified}};
        resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
        return queue(req, conn, resp, 304, headers, 2);
    }

    status = 200;
    req->offset = 0;
    req->length = body->size;
    range = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Range");
    if_range = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "If-Range");
    if (range != NULL && !plan->ignore_range &&
        (if_range == NULL || ts_if_range_matches(if_range, body->etag, body->last_modified))) {
        uint64_t first = 0;
        uint64_t last = 0;
        switch (ts_range_parse(range, body->size, &first, &last)) {
        case TS_RANGE_NONE:
            break;
        case TS_RANGE_PARTIAL:
            status = 206;
            req->offset = first;
            req->length = last - first + 1;
            snprintf(content_range, sizeof content_range, "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64,
                     first, last, body->size);
            break;
        case TS_RANGE_UNSATISFIABLE: {
            ts_header header = {"Content-Range", content_range};
            snprintf(content_range, sizeof content_range, "bytes */%" PRIu64, body->size);
            return queue_text(req, conn, 416, "text/plain", "range not satisfiable\n", &header, 1);
        }
        }
    }

    if (plan->chunked) {
        req->announced = MHD_SIZE_UNKNOWN;
    } else if (plan->length_delta < 0) {
        uint64_t less = (uint64_t)(-(plan->length_delta + 1)) + 1;
        req->announced = req->length > less ? req->length - less : 0;
    } else {
        uint64_t more = (uint64_t)plan->length_delta;
        req->announced = req->length <= UINT64_MAX - 1 - more ? req->length + more : req->length;
    }
    req->streaming = !req->is_head;

    resp = MHD_create_response_from_callback(req->announced, TS_BLOCK_SIZE, read_body, req,
                                             free_reader);
    if (resp == NULL) {
        return MHD_NO;
    }
    pthread_mutex_lock(&req->srv->lock);
    req->refs++; /* the reader's reference, dropped by free_reader */
    pthread_mutex_unlock(&req->srv->lock);
    {
        ts_header headers[] = {
            {"Content-Type", content_type},
            {"ETag", body->etag},
            {"Last-Modified", body->last_modified},
            {"Accept-Ranges", plan->ignore_range ? NULL : "bytes"},
            {"Content-Range", content_range[0] != '\0' ? content_range : NULL},
            {"Content-Encoding", plan->gzip ? "gzip" : NULL},
        };
        return queue(req, conn, resp, status, headers, sizeof headers / sizeof headers[0]);
    }
}

/* Runs the plan of a request whose headers (and any upload) have been received. */
enum MHD_Result ts_respond(ts_request *req, struct MHD_Connection *conn, const char *url,
                           const char *method)
{
    kts_server *srv = req->srv;
    const ts_plan *plan = &req->plan;
    bool running = true;

    if (!req->plan_ok) {
        return queue_status_text(req, conn, 500, NULL, 0);
    }
    if (plan->gate) {
        pthread_mutex_lock(&srv->lock);
        running = ts_hold_wait(srv, &req->entry->gate, -1);
        pthread_mutex_unlock(&srv->lock);
    }
    if (running && plan->latency_ms > 0) {
        pthread_mutex_lock(&srv->lock);
        running = ts_sleep_until(srv, ts_now_ns() + (int64_t)plan->latency_ms * 1000000);
        pthread_mutex_unlock(&srv->lock);
    }
    running = running && ts_link_latency(req, conn);
    if (!running) {
        return MHD_NO; /* stopping: close the connection */
    }

    if (plan->redirect_hops > 0) {
        const char *dest = plan->redirect_target != NULL ? plan->redirect_target : url;
        return queue_redirect(req, conn, plan->redirect_hops, dest, plan->redirect_target == NULL);
    }
    if (plan->status != 0) {
        ts_header header = {"Retry-After", plan->retry_after};
        return queue_status_text(req, conn, plan->status, &header, 1);
    }
    if (plan->html200) {
        return queue_text(req, conn, 200, "text/html; charset=utf-8", html_error_page, NULL, 0);
    }
    if (strncmp(url, TS_HOP_PREFIX, sizeof TS_HOP_PREFIX - 1) == 0) {
        return serve_hop(req, conn, url);
    }
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        ts_header header = {"Allow", "GET, HEAD"};
        return queue_status_text(req, conn, 405, &header, 1);
    }
    return serve_body(req, conn, url);
}
