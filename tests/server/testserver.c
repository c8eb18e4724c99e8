/*
 * testserver.c — the test server's daemon: start and stop, the path table, registered content,
 * and a request's arrival and completion (its response is built in respond.c).
 *
 * libmicrohttpd runs in thread-per-connection mode, so the access handler and the body reader of
 * a request run on that connection's own thread and may block (gate, latency, rate cap, stall)
 * without delaying any other connection. Each such block is an interruptible wait (faults.c):
 * kts_stop() sets `stopping` and broadcasts before it asks libmicrohttpd to stop, so blocked
 * threads return at once and the daemon can join them.
 *
 * A request (ts_request) is created on the handler's first call, when its headers have arrived:
 * it is counted, logged and its fault plan resolved then, so request numbers follow arrival
 * order. It is shared by libmicrohttpd's per-request pointer and, while a body is being sent,
 * by the response's reader; a reference count under the server lock frees it after both let go.
 */
#include "ts_internal.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

#define TS_THREAD_STACK     (1024 * 1024)
#define TS_CONNECTION_LIMIT 1000
/* Per-connection memory for the request line and headers: room for URLs well past the 64 KiB
 * playlist lines kithara accepts (libmicrohttpd's default of 32 KiB answers 414 before that). */
#define TS_CONNECTION_MEMORY (256 * 1024)
/* Synthetic Last-Modified dates count from this far before the start, so they are in the past. */
#define TS_EPOCH_AGE 1000000

/* ---- path table ------------------------------------------------------------------------- */

static size_t path_hash(const char *path)
{
    uint32_t h = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)path; *p != '\0'; p++) {
        h = (h ^ *p) * 16777619u;
    }
    return h % TS_PATH_BUCKETS;
}

ts_path_entry *ts_path_get(kts_server *srv, const char *path, bool create)
{
    size_t b = path_hash(path);
    ts_path_entry *e;

    for (e = srv->buckets[b]; e != NULL; e = e->next) {
        if (strcmp(e->path, path) == 0) {
            return e;
        }
    }
    if (!create) {
        return NULL;
    }
    e = calloc(1, sizeof *e);
    if (e == NULL) {
        return NULL;
    }
    e->path = strdup(path);
    if (e->path == NULL) {
        free(e);
        return NULL;
    }
    e->next = srv->buckets[b];
    srv->buckets[b] = e;
    return e;
}

void ts_body_unref_locked(ts_body *body)
{
    if (body != NULL && --body->refs == 0) {
        ts_body_destroy(body);
    }
}

/* ---- content registration --------------------------------------------------------------- */

static int register_body(kts_server *srv, const char *path, ts_body *body)
{
    ts_path_entry *entry = ts_path_get(srv, path, true);

    if (entry == NULL) {
        return KTH_ERR_NO_MEMORY;
    }
    ts_body_unref_locked(entry->body);
    entry->body = body;
    return KTH_OK;
}

int kts_add_body(kts_server *srv, const char *path, const void *data, size_t len,
                 const char *content_type)
{
    ts_body *body;
    int rc;

    if (srv == NULL || path == NULL || path[0] != '/' || (data == NULL && len > 0)) {
        return KTH_ERR_INVALID_ARG;
    }
    pthread_mutex_lock(&srv->lock);
    srv->body_version++;
    body = ts_body_new_memory(data, len, content_type, path, srv->body_version,
                              srv->epoch + (time_t)srv->body_version);
    rc = body != NULL ? register_body(srv, path, body) : KTH_ERR_NO_MEMORY;
    if (rc != KTH_OK) {
        ts_body_destroy(body);
    }
    pthread_mutex_unlock(&srv->lock);
    return rc;
}

static int add_synth(kts_server *srv, const char *path, uint64_t size, uint64_t seed,
                     const char *content_type, bool ts_framed)
{
    ts_body *body;
    int rc;

    if (srv == NULL || path == NULL || path[0] != '/') {
        return KTH_ERR_INVALID_ARG;
    }
    pthread_mutex_lock(&srv->lock);
    srv->body_version++;
    body =
        ts_body_new_synth(size, seed, content_type, path, srv->epoch + (time_t)srv->body_version);
    if (body != NULL && ts_framed) {
        ts_body_frame_ts(body);
    }
    rc = body != NULL ? register_body(srv, path, body) : KTH_ERR_NO_MEMORY;
    if (rc != KTH_OK) {
        ts_body_destroy(body);
    }
    pthread_mutex_unlock(&srv->lock);
    return rc;
}

int kts_add_synth(kts_server *srv, const char *path, uint64_t size, uint64_t seed,
                  const char *content_type)
{
    return add_synth(srv, path, size, seed, content_type, false);
}

int kts_add_ts_synth(kts_server *srv, const char *path, uint64_t size, uint64_t seed,
                     const char *content_type)
{
    return add_synth(srv, path, size, seed, content_type, true);
}

int kts_add_icy(kts_server *srv, const char *path, const kts_icy *icy)
{
    if (srv == NULL || path == NULL || path[0] != '/' || icy == NULL || icy->metaint == 0) {
        return KTH_ERR_INVALID_ARG;
    }
    kts_icy *copy = ts_icy_copy(icy);
    if (copy == NULL) {
        return KTH_ERR_INVALID_ARG;
    }
    pthread_mutex_lock(&srv->lock);
    srv->body_version++;
    ts_body *body = ts_body_new_synth(0, icy->seed, copy->content_type, path,
                                      srv->epoch + (time_t)srv->body_version);
    int rc = KTH_ERR_NO_MEMORY;
    if (body != NULL) {
        body->kind = TS_BODY_ICY;
        body->icy = copy;
        copy = NULL;
        rc = register_body(srv, path, body);
        if (rc != KTH_OK) {
            ts_body_destroy(body);
        }
    }
    pthread_mutex_unlock(&srv->lock);
    ts_icy_free(copy);
    return rc;
}

int kts_remove_body(kts_server *srv, const char *path)
{
    ts_path_entry *entry;
    int rc = KTH_ERR_NOT_FOUND;

    if (srv == NULL || path == NULL) {
        return KTH_ERR_INVALID_ARG;
    }
    pthread_mutex_lock(&srv->lock);
    entry = ts_path_get(srv, path, false);
    if (entry != NULL && entry->body != NULL) {
        ts_body_unref_locked(entry->body);
        entry->body = NULL;
        rc = KTH_OK;
    }
    pthread_mutex_unlock(&srv->lock);
    return rc;
}

/* ---- request bookkeeping ---------------------------------------------------------------- */

void ts_request_unref_locked(ts_request *req)
{
    if (--req->refs > 0) {
        return;
    }
    ts_link_leave(req->srv, req);
    ts_plan_release(&req->plan);
    ts_body_unref_locked(req->body);
    free(req);
}

struct header_text {
    char text[KTS_LOG_HEADERS_MAX];
    size_t len;
};

static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                      const char *value)
{
    struct header_text *h = cls;
    (void)kind;
    if (h->len < sizeof h->text) {
        int n = snprintf(h->text + h->len, sizeof h->text - h->len, "%s: %s\n", key,
                         value != NULL ? value : "");
        h->len = n < 0 ? sizeof h->text : h->len + (size_t)n;
    }
    return MHD_YES;
}

static ts_request *request_begin(kts_server *srv, struct MHD_Connection *conn, const char *url,
                                 const char *method)
{
    struct header_text headers = {.len = 0};
    headers.text[0] = '\0';
    MHD_get_connection_values(conn, MHD_HEADER_KIND, collect_header, &headers);
    const char *range = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Range");
    const char *if_range = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "If-Range");
    ts_request *req = calloc(1, sizeof *req);
    int m = ts_method_index(method);

    if (req == NULL) {
        return NULL;
    }
    req->srv = srv;
    req->refs = 1;
    req->is_head = m == TS_METHOD_HEAD;
    req->redirected =
        MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, TS_REDIRECTED_ARG) != NULL;

    pthread_mutex_lock(&srv->lock);
    req->entry = srv->stopping ? NULL : ts_path_get(srv, url, true);
    if (req->entry == NULL) {
        pthread_mutex_unlock(&srv->lock);
        free(req);
        return NULL;
    }
    req->entry->requests[m]++;
    req->number = ++req->entry->arrived;
    srv->requests_total[m]++;
    srv->arrived_total++;
    req->generation = srv->generation;
    req->seq = ts_log_begin(&srv->log, req->number, method, url, range, if_range, headers.text);
    req->plan_ok =
        ts_plan_resolve(srv, req->entry, req->number, req->redirected, &req->plan) == KTH_OK;
    ts_link_arrive(srv, req);
    pthread_cond_broadcast(&srv->events);
    pthread_mutex_unlock(&srv->lock);
    return req;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    kts_server *srv = cls;
    ts_request *req = *con_cls;
    kts_log_entry *e;

    (void)conn;
    (void)toe;
    if (req == NULL) {
        return;
    }
    *con_cls = NULL;
    pthread_mutex_lock(&srv->lock);
    ts_link_leave(srv, req);
    if (req->generation == srv->generation) {
        if ((e = ts_log_at(&srv->log, req->seq)) != NULL) {
            uint64_t end = req->announced != MHD_SIZE_UNKNOWN ? req->announced : req->length;
            e->status = req->status;
            e->body_bytes = req->sent;
            e->cut = req->streaming && req->sent < end;
            e->completed = true;
        }
        req->entry->completed++;
        srv->completed_total++;
        pthread_cond_broadcast(&srv->events);
    }
    ts_request_unref_locked(req);
    pthread_mutex_unlock(&srv->lock);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    kts_server *srv = cls;
    ts_request *req = *con_cls;

    (void)version;
    (void)upload_data;
    if (req == NULL) {
        /* First call: the headers are in. Count, log and plan now, in arrival order. */
        req = request_begin(srv, conn, url, method);
        if (req == NULL) {
            return MHD_NO;
        }
        *con_cls = req;
        return MHD_YES;
    }
    if (*upload_data_size != 0) {
        *upload_data_size = 0; /* request bodies are read and dropped */
        return MHD_YES;
    }
    return ts_respond(req, conn, url, method);
}

/* ---- lifetime --------------------------------------------------------------------------- */

/* Parses a loopback bind address into addr; false when it is not one. */
static bool parse_loopback(const char *text, struct sockaddr_storage *addr, bool *ipv6)
{
    struct sockaddr_in *in4 = (struct sockaddr_in *)addr;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)addr;

    memset(addr, 0, sizeof *addr);
    if (inet_pton(AF_INET, text, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        *ipv6 = false;
        return (ntohl(in4->sin_addr.s_addr) >> 24) == 127;
    }
    if (inet_pton(AF_INET6, text, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        *ipv6 = true;
        return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
    }
    return false;
}

static void server_free(kts_server *srv)
{
    for (size_t i = 0; i < TS_PATH_BUCKETS; i++) {
        ts_path_entry *e = srv->buckets[i];
        while (e != NULL) {
            ts_path_entry *next = e->next;
            ts_fault_list_clear(&e->faults);
            ts_body_unref_locked(e->body);
            free(e->path);
            free(e);
            e = next;
        }
    }
    ts_fault_list_clear(&srv->any_faults);
    ts_log_free(&srv->log);
    ts_link_free(srv->link);
    free(srv->doc_root);
    pthread_cond_destroy(&srv->events);
    pthread_cond_destroy(&srv->holds);
    pthread_mutex_destroy(&srv->lock);
    free(srv);
}

static bool init_sync(kts_server *srv)
{
    pthread_condattr_t attr;
    bool ok;

    if (pthread_mutex_init(&srv->lock, NULL) != 0) {
        return false;
    }
    if (pthread_condattr_init(&attr) != 0) {
        pthread_mutex_destroy(&srv->lock);
        return false;
    }
    ok = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) == 0 &&
         pthread_cond_init(&srv->events, &attr) == 0;
    if (ok && pthread_cond_init(&srv->holds, &attr) != 0) {
        pthread_cond_destroy(&srv->events);
        ok = false;
    }
    pthread_condattr_destroy(&attr);
    if (!ok) {
        pthread_mutex_destroy(&srv->lock);
    }
    return ok;
}

int kts_start(const kts_config *config, kts_server **out)
{
    static const kts_config defaults = {0};
    const kts_config *cfg = config != NULL ? config : &defaults;
    const char *bind_text = cfg->bind_address != NULL ? cfg->bind_address : "127.0.0.1";
    struct sockaddr_storage addr;
    unsigned int flags = MHD_USE_POLL_INTERNAL_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ITC;
    const union MHD_DaemonInfo *info;
    kts_server *srv;
    bool ipv6 = false;

    if (out == NULL) {
        return KTH_ERR_INVALID_ARG;
    }
    *out = NULL;
    if (!parse_loopback(bind_text, &addr, &ipv6)) {
        return KTH_ERR_INVALID_ARG;
    }
    if (ipv6) {
        ((struct sockaddr_in6 *)&addr)->sin6_port = htons(cfg->port);
        flags |= MHD_USE_IPv6;
    } else {
        ((struct sockaddr_in *)&addr)->sin_port = htons(cfg->port);
    }

    srv = calloc(1, sizeof *srv);
    if (srv == NULL) {
        return KTH_ERR_NO_MEMORY;
    }
    if (!init_sync(srv)) {
        free(srv);
        return KTH_ERR_NO_MEMORY;
    }
    ts_log_init(&srv->log, cfg->log_capacity);
    srv->epoch = time(NULL) - TS_EPOCH_AGE;
    if (cfg->doc_root != NULL) {
        struct stat st;
        srv->doc_root = realpath(cfg->doc_root, NULL);
        if (srv->doc_root == NULL || stat(srv->doc_root, &st) != 0 || !S_ISDIR(st.st_mode)) {
            server_free(srv);
            return KTH_ERR_IO;
        }
    }

    srv->daemon =
        MHD_start_daemon(flags, cfg->port, NULL, NULL, on_request, srv, MHD_OPTION_SOCK_ADDR,
                         (struct sockaddr *)&addr, MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
                         MHD_OPTION_CONNECTION_LIMIT, (unsigned int)TS_CONNECTION_LIMIT,
                         MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)TS_CONNECTION_MEMORY,
                         MHD_OPTION_THREAD_STACK_SIZE, (size_t)TS_THREAD_STACK, MHD_OPTION_END);
    if (srv->daemon == NULL) {
        server_free(srv);
        return KTH_ERR_NETWORK;
    }
    info = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
    srv->port = info != NULL ? info->port : cfg->port;
    if (ipv6) {
        snprintf(srv->base_url, sizeof srv->base_url, "http://[%s]:%u", bind_text,
                 (unsigned)srv->port);
    } else {
        snprintf(srv->base_url, sizeof srv->base_url, "http://%s:%u", bind_text,
                 (unsigned)srv->port);
    }
    *out = srv;
    return KTH_OK;
}

void kts_stop(kts_server *srv)
{
    if (srv == NULL) {
        return;
    }
    /* Wake every thread waiting inside the server first; the daemon then joins them. */
    pthread_mutex_lock(&srv->lock);
    srv->stopping = true;
    pthread_cond_broadcast(&srv->holds);
    pthread_cond_broadcast(&srv->events);
    pthread_mutex_unlock(&srv->lock);
    MHD_stop_daemon(srv->daemon);
    ts_icy_v1_stop(srv);
    server_free(srv);
}

uint16_t kts_port(const kts_server *srv)
{
    return srv->port;
}

const char *kts_base_url(const kts_server *srv)
{
    return srv->base_url;
}

char *kts_url(const kts_server *srv, const char *path, char *buf, size_t size)
{
    int n = snprintf(buf, size, "%s%s", srv->base_url, path != NULL ? path : "");
    return n >= 0 && (size_t)n < size ? buf : NULL;
}
