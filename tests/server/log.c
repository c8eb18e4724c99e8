/*
 * log.c — request counters, the request log, and the waits tests use to order events.
 *
 * The log is a ring of kts_log_entry addressed by a request's sequence number; it grows by
 * doubling up to its capacity and then drops its oldest entries. Growth only happens before the
 * ring has wrapped, so slot (seq - base) % alloc stays valid across a growth. A request keeps
 * its sequence number, not a pointer, and updates its entry only while the entry is still kept
 * and belongs to the current generation (kts_reset() starts a new one).
 *
 * Waits sleep on the server's `events` condition variable, which is broadcast whenever a count
 * they look at changes; there is no polling.
 */
#include "ts_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TS_LOG_DEFAULT_CAPACITY 65536

int ts_log_init(ts_log *log, size_t capacity)
{
    memset(log, 0, sizeof *log);
    log->capacity = capacity != 0 ? capacity : TS_LOG_DEFAULT_CAPACITY;
    return KTH_OK;
}

void ts_log_free(ts_log *log)
{
    free(log->slots);
    memset(log, 0, sizeof *log);
}

static void copy_field(char *dst, size_t size, const char *src)
{
    snprintf(dst, size, "%s", src != NULL ? src : "");
}

uint64_t ts_log_begin(ts_log *log, unsigned number, const char *method, const char *path,
                      const char *range, const char *if_range, const char *headers)
{
    uint64_t seq = log->next++;
    kts_log_entry *e;

    if (seq - log->first == log->alloc) {
        size_t want = log->alloc != 0 ? log->alloc * 2 : 64;
        if (want > log->capacity) {
            want = log->capacity;
        }
        if (want > log->alloc) {
            kts_log_entry *slots = realloc(log->slots, want * sizeof *slots);
            if (slots != NULL) {
                log->slots = slots;
                log->alloc = want;
            } else {
                log->capacity = log->alloc; /* out of memory: stop growing, start dropping */
            }
        }
        if (seq - log->first == log->alloc) {
            if (log->alloc == 0) {
                log->first = log->next; /* nothing can be kept at all */
                return seq;
            }
            log->first++;
        }
    }
    e = &log->slots[(seq - log->base) % log->alloc];
    memset(e, 0, sizeof *e);
    e->seq = seq - log->base;
    e->number = number;
    copy_field(e->method, sizeof e->method, method);
    copy_field(e->path, sizeof e->path, path);
    copy_field(e->range, sizeof e->range, range);
    copy_field(e->if_range, sizeof e->if_range, if_range);
    copy_field(e->headers, sizeof e->headers, headers);
    return seq;
}

kts_log_entry *ts_log_at(ts_log *log, uint64_t seq)
{
    if (seq < log->first || seq >= log->next || log->alloc == 0) {
        return NULL;
    }
    return &log->slots[(seq - log->base) % log->alloc];
}

void ts_log_reset(ts_log *log)
{
    log->base = log->next;
    log->first = log->next;
}

size_t kts_log_count(kts_server *srv)
{
    size_t n;

    if (srv == NULL) {
        return 0;
    }
    pthread_mutex_lock(&srv->lock);
    n = (size_t)(srv->log.next - srv->log.first);
    pthread_mutex_unlock(&srv->lock);
    return n;
}

int kts_log_get(kts_server *srv, size_t index, kts_log_entry *out)
{
    int rc = KTH_ERR_NOT_FOUND;

    if (srv == NULL || out == NULL) {
        return KTH_ERR_INVALID_ARG;
    }
    pthread_mutex_lock(&srv->lock);
    if (index < srv->log.next - srv->log.first) {
        *out = *ts_log_at(&srv->log, srv->log.first + index);
        rc = KTH_OK;
    }
    pthread_mutex_unlock(&srv->lock);
    return rc;
}

int kts_log_find(kts_server *srv, const char *path, unsigned number, kts_log_entry *out)
{
    int rc = KTH_ERR_NOT_FOUND;

    if (srv == NULL || path == NULL || out == NULL) {
        return KTH_ERR_INVALID_ARG;
    }
    pthread_mutex_lock(&srv->lock);
    for (uint64_t seq = srv->log.next; seq > srv->log.first; seq--) {
        const kts_log_entry *e = ts_log_at(&srv->log, seq - 1);
        if (e->number == number && strcmp(e->path, path) == 0) {
            *out = *e;
            rc = KTH_OK;
            break;
        }
    }
    pthread_mutex_unlock(&srv->lock);
    return rc;
}

void kts_reset(kts_server *srv)
{
    if (srv == NULL) {
        return;
    }
    pthread_mutex_lock(&srv->lock);
    for (size_t i = 0; i < TS_PATH_BUCKETS; i++) {
        for (ts_path_entry *e = srv->buckets[i]; e != NULL; e = e->next) {
            memset(e->requests, 0, sizeof e->requests);
            e->arrived = 0;
            e->completed = 0;
        }
    }
    memset(srv->requests_total, 0, sizeof srv->requests_total);
    srv->arrived_total = 0;
    srv->completed_total = 0;
    srv->generation++;
    ts_log_reset(&srv->log);
    pthread_mutex_unlock(&srv->lock);
}

int ts_method_index(const char *method)
{
    static const char *const names[TS_METHOD_COUNT - 1] = {"GET",    "HEAD",    "POST", "PUT",
                                                           "DELETE", "OPTIONS", "PATCH"};
    for (int i = 0; i < TS_METHOD_COUNT - 1; i++) {
        if (strcmp(method, names[i]) == 0) {
            return i;
        }
    }
    return TS_METHOD_OTHER;
}

unsigned kts_request_count(kts_server *srv, const char *path, const char *method)
{
    unsigned n = 0;

    if (srv == NULL) {
        return 0;
    }
    pthread_mutex_lock(&srv->lock);
    if (path == NULL) {
        n = method == NULL ? srv->arrived_total : srv->requests_total[ts_method_index(method)];
    } else {
        const ts_path_entry *e = ts_path_get(srv, path, false);
        if (e != NULL) {
            n = method == NULL ? e->arrived : e->requests[ts_method_index(method)];
        }
    }
    pthread_mutex_unlock(&srv->lock);
    return n;
}

unsigned kts_completed_count(kts_server *srv, const char *path)
{
    unsigned n = 0;

    if (srv == NULL) {
        return 0;
    }
    pthread_mutex_lock(&srv->lock);
    if (path == NULL) {
        n = srv->completed_total;
    } else {
        const ts_path_entry *e = ts_path_get(srv, path, false);
        n = e != NULL ? e->completed : 0;
    }
    pthread_mutex_unlock(&srv->lock);
    return n;
}

typedef enum wait_what { WAIT_ARRIVED, WAIT_COMPLETED, WAIT_GATED, WAIT_STALLED } wait_what;

static unsigned wait_value(const kts_server *srv, const ts_path_entry *e, wait_what what)
{
    switch (what) {
    case WAIT_ARRIVED:
        return e != NULL ? e->arrived : srv->arrived_total;
    case WAIT_COMPLETED:
        return e != NULL ? e->completed : srv->completed_total;
    case WAIT_GATED:
        return e->gate.waiting;
    case WAIT_STALLED:
        return e->stall.waiting;
    }
    return 0;
}

static int wait_for(kts_server *srv, const char *path, unsigned n, int timeout_ms, wait_what what)
{
    int64_t deadline = timeout_ms < 0 ? -1 : ts_now_ns() + (int64_t)timeout_ms * 1000000;
    ts_path_entry *entry = NULL;
    int rc = KTH_OK;

    if (srv == NULL || (path == NULL && (what == WAIT_GATED || what == WAIT_STALLED))) {
        return KTH_ERR_INVALID_ARG;
    }
    pthread_mutex_lock(&srv->lock);
    if (path != NULL) {
        /* Created now so the counts can be watched before the first request arrives. */
        entry = ts_path_get(srv, path, true);
        if (entry == NULL) {
            pthread_mutex_unlock(&srv->lock);
            return KTH_ERR_NO_MEMORY;
        }
    }
    while (wait_value(srv, entry, what) < n) {
        if (deadline >= 0 && ts_now_ns() >= deadline) {
            rc = KTH_ERR_TIMEOUT;
            break;
        }
        ts_cond_wait_until(&srv->events, &srv->lock, deadline);
    }
    pthread_mutex_unlock(&srv->lock);
    return rc;
}

int kts_wait_requests(kts_server *srv, const char *path, unsigned n, int timeout_ms)
{
    return wait_for(srv, path, n, timeout_ms, WAIT_ARRIVED);
}

int kts_wait_completed(kts_server *srv, const char *path, unsigned n, int timeout_ms)
{
    return wait_for(srv, path, n, timeout_ms, WAIT_COMPLETED);
}

int kts_wait_gated(kts_server *srv, const char *path, unsigned n, int timeout_ms)
{
    return wait_for(srv, path, n, timeout_ms, WAIT_GATED);
}

int kts_wait_stalled(kts_server *srv, const char *path, unsigned n, int timeout_ms)
{
    return wait_for(srv, path, n, timeout_ms, WAIT_STALLED);
}
