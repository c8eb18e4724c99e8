/*
 * test_net_support.h — shared by the downloader tests: a recorder that captures everything the
 * downloader tells one fetch command (response, body bytes at their offsets, the completion),
 * and a fixture with a loopback test server and a downloader set up for fast tests.
 *
 * The recorder's callbacks run on the downloader's thread; the test thread waits on its
 * condition variable (bounded by a generous timeout that only guards against a hang).
 */
#ifndef KTH_TEST_NET_SUPPORT_H
#define KTH_TEST_NET_SUPPORT_H

#include "net/downloader.h"
#include "testserver.h"

#include <kithara/downloader.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NET_WAIT_MS 20000 /* hang guard only */

static inline int64_t net_test_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

typedef struct rec {
    pthread_mutex_t m;
    pthread_cond_t c;
    /* body, stored at offset - base */
    unsigned char *buf;
    size_t cap;
    uint64_t base;
    uint64_t next_offset; /* the offset the next chunk must have */
    bool discontiguous;   /* a chunk arrived at another offset */
    bool overflow;        /* a chunk fell outside [base, base + cap) */
    uint64_t written;
    kth_status write_result; /* what the writer returns (KTH_OK unless a test injects) */
    uint64_t fail_after;     /* with write_result: fail once this many bytes were written */
    /* response */
    unsigned responses;
    int resp_status;
    char resp_url[512];
    unsigned resp_redirects;
    uint64_t resp_offset;
    bool resp_has_total;
    uint64_t resp_total;
    char resp_etag[128];
    /* completion */
    unsigned completions;
    net_result result;
    char message[512];
    char final_url[512];
    int64_t completed_ms;
    /* samples */
    unsigned samples;
    uint64_t sample_bytes;
} rec;

static inline void rec_init(rec *r, size_t cap, uint64_t base)
{
    memset(r, 0, sizeof *r);
    pthread_mutex_init(&r->m, NULL);
    pthread_cond_init(&r->c, NULL);
    r->cap = cap;
    r->buf = cap ? calloc(1, cap) : NULL;
    r->base = base;
    r->next_offset = base;
    r->write_result = KTH_OK;
}

static inline void rec_free(rec *r)
{
    free(r->buf);
    pthread_cond_destroy(&r->c);
    pthread_mutex_destroy(&r->m);
}

static kth_status rec_write(void *user, uint64_t offset, const void *data, size_t n)
{
    rec *r = user;
    pthread_mutex_lock(&r->m);
    kth_status st = KTH_OK;
    if (r->write_result != KTH_OK && r->written + n > r->fail_after) {
        st = r->write_result;
    } else {
        if (offset != r->next_offset)
            r->discontiguous = true;
        if (offset < r->base || offset - r->base > r->cap || n > r->cap - (offset - r->base))
            r->overflow = true;
        else
            memcpy(r->buf + (offset - r->base), data, n);
        r->next_offset = offset + n;
        r->written += n;
    }
    pthread_mutex_unlock(&r->m);
    return st;
}

static kth_status rec_response(void *user, const net_response *resp)
{
    rec *r = user;
    pthread_mutex_lock(&r->m);
    r->responses++;
    r->resp_status = resp->status;
    snprintf(r->resp_url, sizeof r->resp_url, "%s", resp->url);
    r->resp_redirects = resp->redirects;
    r->resp_offset = resp->offset;
    r->resp_has_total = resp->has_total_length;
    r->resp_total = resp->total_length;
    snprintf(r->resp_etag, sizeof r->resp_etag, "%s", resp->etag ? resp->etag : "");
    pthread_mutex_unlock(&r->m);
    return KTH_OK;
}

static void rec_complete(void *user, const net_result *res)
{
    rec *r = user;
    pthread_mutex_lock(&r->m);
    r->completions++;
    r->result = *res;
    snprintf(r->message, sizeof r->message, "%s", res->message ? res->message : "");
    snprintf(r->final_url, sizeof r->final_url, "%s", res->url ? res->url : "");
    r->result.message = r->message;
    r->result.url = r->final_url;
    r->completed_ms = net_test_now_ms();
    pthread_cond_broadcast(&r->c);
    pthread_mutex_unlock(&r->m);
}

/* A GET of url into r, with every callback recorded. */
static inline net_fetch_spec rec_spec(rec *r, const char *url)
{
    net_fetch_spec s;
    memset(&s, 0, sizeof s);
    s.url = url;
    s.method = NET_GET;
    s.priority = NET_FETCH_HIGH;
    s.on_response = rec_response;
    s.write = rec_write;
    s.complete = rec_complete;
    s.user = r;
    return s;
}

/* Waits for the completion; false on timeout. */
static inline bool rec_wait(rec *r, int timeout_ms)
{
    int64_t end = net_test_now_ms() + timeout_ms;
    pthread_mutex_lock(&r->m);
    while (r->completions == 0 && net_test_now_ms() < end) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 20 * 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&r->c, &r->m, &ts);
    }
    bool done = r->completions > 0;
    pthread_mutex_unlock(&r->m);
    return done;
}

/* Options for tests: fast retries, no proxy whatever the environment says. */
static inline void net_test_options(kth_downloader_options *o)
{
    kth_downloader_options_init(o);
    o->proxy = "";
    o->retry_base_ms = 5;
    o->retry_cap_ms = 40;
    o->stall_timeout_ms = 5000;
    o->connect_timeout_ms = 5000;
}

typedef struct net_fixture {
    kts_server *srv;
    kth_downloader *d;
} net_fixture;

static inline int net_fixture_up_with(void **state, const kth_downloader_options *o)
{
    net_fixture *f = calloc(1, sizeof *f);
    if (!f || kts_start(NULL, &f->srv) != KTH_OK) {
        free(f);
        return -1;
    }
    char err[256];
    if (kth_downloader_new(o, &f->d, err, sizeof err) != KTH_OK) {
        kts_stop(f->srv);
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static inline int net_fixture_up(void **state)
{
    kth_downloader_options o;
    net_test_options(&o);
    return net_fixture_up_with(state, &o);
}

static inline int net_fixture_down(void **state)
{
    net_fixture *f = *state;
    kth_downloader_unref(f->d);
    kts_stop(f->srv);
    free(f);
    return 0;
}

/* The URL of path on the fixture's server (static buffer per call site is not needed: the
 * caller passes one of 512 bytes). */
static inline const char *net_url(net_fixture *f, const char *path, char *buf)
{
    return kts_url(f->srv, path, buf, 512);
}

#endif
