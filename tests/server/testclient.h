/*
 * testclient.h — a small libcurl client for tests that need to see raw HTTP exchanges with the
 * test server (status, headers, exact body bytes, timing), independent of kithara's downloader.
 *
 * One call fetches one URL with a fresh easy handle and records everything in a ktc_response;
 * ktc_async runs such a fetch on its own thread, for requests that block in the server (gates,
 * stalls). Every transfer has a 30 s timeout so a broken server fails a test instead of hanging
 * it. Proxies are never used. Call curl_global_init() once before any thread uses this.
 *
 * Nothing here asserts: results are recorded, and the test decides.
 */
#ifndef KTC_TESTCLIENT_H
#define KTC_TESTCLIENT_H

#include <curl/curl.h>

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct ktc_opts {
    bool head;              /* HEAD instead of GET */
    bool follow;            /* follow redirects */
    bool path_as_is;        /* send "/../" segments as written */
    const char *headers[4]; /* extra request header lines ("Range: bytes=0-9"), NULL-ended */
} ktc_opts;

typedef struct ktc_response {
    CURLcode rc;         /* the transfer's result (CURLE_PARTIAL_FILE for a cut body) */
    long status;         /* last response's status; 0 if none */
    unsigned char *body; /* body bytes received (owned; ktc_response_free) */
    size_t len;
    size_t cap;
    char headers[8192]; /* the last response's header block, truncated if larger */
    size_t headers_len;
    long redirects;      /* redirects followed */
    char url[512];       /* effective URL after redirects */
    double seconds;      /* duration of the whole transfer */
    size_t mark_bytes;   /* set before the fetch: record when this many body bytes were in */
    double mark_seconds; /* ... here, seconds from the start; 0 if never reached */
    double start;
} ktc_response;

/* Monotonic seconds. */
double ktc_now(void);

/* Builds an easy handle that records into r; *list receives the header list to free with
 * curl_slist_free_all() after curl_easy_cleanup(). o may be NULL. */
CURL *ktc_easy_new(const char *url, const ktc_opts *o, ktc_response *r, struct curl_slist **list);

/* Copies status, redirect count and effective URL from a finished handle into r. */
void ktc_easy_finish(CURL *c, ktc_response *r);

/* Fetches url and records the result in r (which must be zeroed or have mark_bytes set). */
void ktc_fetch(const char *url, const ktc_opts *o, ktc_response *r);

/* Copies the value of header `name` (case-insensitive) of the last response into buf. False
 * when the header is absent. */
bool ktc_header(const ktc_response *r, const char *name, char *buf, size_t size);

/* Frees the body and zeroes r. */
void ktc_response_free(ktc_response *r);

/* A fetch on its own thread. */
typedef struct ktc_async {
    pthread_t thread;
    char url[512];
    ktc_opts opts;
    ktc_response r;
} ktc_async;

/* Starts fetching url (copied; o may be NULL; the header strings o points to are not copied and
 * must stay valid until ktc_async_join()). Returns 0, or an errno value when the thread cannot
 * start or the URL does not fit. */
int ktc_async_start(ktc_async *a, const char *url, const ktc_opts *o);

/* Waits for the fetch to end; the result is in a->r. Returns pthread_join()'s value. */
int ktc_async_join(ktc_async *a);

#endif
