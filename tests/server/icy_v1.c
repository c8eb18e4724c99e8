/*
 * icy_v1.c — SHOUTcast v1 answers, which libmicrohttpd cannot give: a second listener on its own
 * loopback port, started on first use, that answers "ICY 200 OK" (no HTTP version) with the
 * icy-* headers and the station's body, for stations registered with kts_add_icy. Requests are
 * counted and numbered with the path's others (so request k gets the audio of seed + k - 1) and
 * logged with their headers. One connection is served at a time, on the listener's thread.
 */
#include "ts_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static bool stopping(kts_server *srv)
{
    pthread_mutex_lock(&srv->lock);
    bool s = srv->stopping;
    pthread_mutex_unlock(&srv->lock);
    return s;
}

static bool send_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t k = send(fd, c, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR) {
            continue;
        }
        if (k <= 0) {
            return false;
        }
        c += k;
        n -= (size_t)k;
    }
    return true;
}

/* Reads the request head (bounded); false when it does not come whole. */
static bool read_head(int fd, char *buf, size_t size)
{
    size_t len = 0;
    while (len + 1 < size) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 5000) <= 0) {
            return false;
        }
        ssize_t k = recv(fd, buf + len, size - 1 - len, 0);
        if (k <= 0) {
            return false;
        }
        len += (size_t)k;
        buf[len] = '\0';
        if (strstr(buf, "\r\n\r\n") != NULL) {
            return true;
        }
    }
    return false;
}

/* Takes a reference to the station at path and numbers the request; NULL when none. */
static ts_body *station_of(kts_server *srv, const char *path, const char *head, unsigned *number)
{
    ts_body *body = NULL;
    pthread_mutex_lock(&srv->lock);
    ts_path_entry *entry = ts_path_get(srv, path, true);
    if (entry != NULL) {
        entry->requests[TS_METHOD_GET]++;
        *number = ++entry->arrived;
        srv->requests_total[TS_METHOD_GET]++;
        srv->arrived_total++;
        const char *headers = strstr(head, "\r\n");
        ts_log_begin(&srv->log, *number, "GET", path, "", "", headers ? headers + 2 : "");
        if (entry->body != NULL && entry->body->kind == TS_BODY_ICY) {
            body = entry->body;
            body->refs++;
        }
        pthread_cond_broadcast(&srv->events);
    }
    pthread_mutex_unlock(&srv->lock);
    return body;
}

static void serve(kts_server *srv, int fd)
{
    char head[8192], path[512];
    if (!read_head(fd, head, sizeof head) || sscanf(head, "GET %511s ", path) != 1) {
        return;
    }
    unsigned number = 0;
    ts_body *body = station_of(srv, path, head, &number);
    if (body == NULL) {
        send_all(fd, "ICY 404 Resource Not Found\r\n\r\n", 30);
        return;
    }
    const kts_icy *icy = body->icy;
    if (icy->max_requests > 0 && number > icy->max_requests) {
        pthread_mutex_lock(&srv->lock);
        ts_body_unref_locked(body);
        pthread_mutex_unlock(&srv->lock);
        return; /* an empty reply */
    }
    bool meta = strcasestr(head, "\r\nIcy-MetaData: 1\r\n") != NULL;
    char out[1024];
    int n = snprintf(out, sizeof out, "ICY 200 OK\r\ncontent-type: %s\r\n", icy->content_type);
    if (meta) {
        n += snprintf(out + n, sizeof out - (size_t)n, "icy-metaint: %u\r\n", icy->metaint);
    }
    if (icy->name != NULL) {
        n += snprintf(out + n, sizeof out - (size_t)n, "icy-name: %s\r\n", icy->name);
    }
    if (icy->genre != NULL) {
        n += snprintf(out + n, sizeof out - (size_t)n, "icy-genre: %s\r\n", icy->genre);
    }
    if (icy->bitrate != NULL) {
        n += snprintf(out + n, sizeof out - (size_t)n, "icy-br: %s\r\n", icy->bitrate);
    }
    n += snprintf(out + n, sizeof out - (size_t)n, "\r\n");
    bool ok = send_all(fd, out, (size_t)n);
    ts_icy_cursor c;
    ts_icy_cursor_init(&c, icy, number, meta);
    uint64_t left = icy->length > 0 ? icy->length : UINT64_MAX;
    unsigned char buf[16384];
    while (ok && left > 0 && !stopping(srv)) {
        size_t k = left < sizeof buf ? (size_t)left : sizeof buf;
        ts_icy_next(icy, &c, buf, k);
        ok = send_all(fd, buf, k);
        left -= k;
    }
    pthread_mutex_lock(&srv->lock);
    ts_body_unref_locked(body);
    pthread_mutex_unlock(&srv->lock);
}

static void *listen_main(void *arg)
{
    kts_server *srv = arg;
    while (!stopping(srv)) {
        struct pollfd p = {.fd = srv->v1_fd, .events = POLLIN};
        if (poll(&p, 1, 50) <= 0) {
            continue;
        }
        int fd = accept(srv->v1_fd, NULL, NULL);
        if (fd < 0) {
            continue;
        }
        serve(srv, fd);
        shutdown(fd, SHUT_RDWR);
        close(fd);
    }
    return NULL;
}

/* Starts the listener once. Lock held. */
static int start_locked(kts_server *srv)
{
    if (srv->v1_running) {
        return KTH_OK;
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 16) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        if (fd >= 0) {
            close(fd);
        }
        return KTH_ERR_NETWORK;
    }
    srv->v1_fd = fd;
    srv->v1_port = ntohs(a.sin_port);
    if (pthread_create(&srv->v1_thread, NULL, listen_main, srv) != 0) {
        close(fd);
        return KTH_ERR_NO_MEMORY;
    }
    srv->v1_running = true;
    return KTH_OK;
}

int kts_icy_v1_url(kts_server *srv, const char *path, char *buf, size_t size)
{
    if (srv == NULL || path == NULL || path[0] != '/' || buf == NULL) {
        return KTH_ERR_INVALID_ARG;
    }
    pthread_mutex_lock(&srv->lock);
    int rc = start_locked(srv);
    uint16_t port = srv->v1_port;
    pthread_mutex_unlock(&srv->lock);
    if (rc != KTH_OK) {
        return rc;
    }
    int n = snprintf(buf, size, "http://127.0.0.1:%u%s", (unsigned)port, path);
    return n >= 0 && (size_t)n < size ? KTH_OK : KTH_ERR_INVALID_ARG;
}

void ts_icy_v1_stop(kts_server *srv)
{
    if (!srv->v1_running) {
        return;
    }
    pthread_join(srv->v1_thread, NULL); /* srv->stopping is set: it ends within 50 ms */
    close(srv->v1_fd);
    srv->v1_running = false;
}
