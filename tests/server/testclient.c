/*
 * testclient.c — the libcurl test client (see testclient.h).
 *
 * Headers are kept only for the last response of a transfer (a new status line resets them), so
 * after a redirect chain they are the final response's. Bodies grow by doubling.
 */
#include "testclient.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

double ktc_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *userdata)
{
    ktc_response *r = userdata;
    size_t n = size * nmemb;

    if (r->len + n > r->cap) {
        size_t cap = (r->len + n) * 2;
        unsigned char *body = realloc(r->body, cap);
        if (body == NULL) {
            return 0; /* curl reports CURLE_WRITE_ERROR */
        }
        r->body = body;
        r->cap = cap;
    }
    memcpy(r->body + r->len, data, n);
    if (r->mark_bytes > 0 && r->len < r->mark_bytes && r->len + n >= r->mark_bytes) {
        r->mark_seconds = ktc_now() - r->start;
    }
    r->len += n;
    return n;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *userdata)
{
    ktc_response *r = userdata;
    size_t n = size * nmemb;

    if (n >= 5 && memcmp(data, "HTTP/", 5) == 0) {
        r->headers_len = 0;
        r->headers[0] = '\0';
    }
    if (r->headers_len + n < sizeof r->headers) {
        memcpy(r->headers + r->headers_len, data, n);
        r->headers_len += n;
        r->headers[r->headers_len] = '\0';
    }
    return n;
}

CURL *ktc_easy_new(const char *url, const ktc_opts *o, ktc_response *r, struct curl_slist **list)
{
    CURL *c = curl_easy_init();

    *list = NULL;
    if (c == NULL) {
        return NULL;
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    if (o != NULL) {
        curl_easy_setopt(c, CURLOPT_NOBODY, o->head ? 1L : 0L);
        curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, o->follow ? 1L : 0L);
        curl_easy_setopt(c, CURLOPT_PATH_AS_IS, o->path_as_is ? 1L : 0L);
        for (size_t i = 0; i < 4 && o->headers[i] != NULL; i++) {
            struct curl_slist *grown = curl_slist_append(*list, o->headers[i]);
            if (grown != NULL) {
                *list = grown;
            }
        }
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, *list);
    }
    return c;
}

void ktc_easy_finish(CURL *c, ktc_response *r)
{
    char *url = NULL;

    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    curl_easy_getinfo(c, CURLINFO_REDIRECT_COUNT, &r->redirects);
    curl_easy_getinfo(c, CURLINFO_EFFECTIVE_URL, &url);
    snprintf(r->url, sizeof r->url, "%s", url != NULL ? url : "");
}

void ktc_fetch(const char *url, const ktc_opts *o, ktc_response *r)
{
    struct curl_slist *list;
    CURL *c = ktc_easy_new(url, o, r, &list);

    if (c == NULL) {
        r->rc = CURLE_FAILED_INIT;
        return;
    }
    r->start = ktc_now();
    r->rc = curl_easy_perform(c);
    r->seconds = ktc_now() - r->start;
    ktc_easy_finish(c, r);
    curl_easy_cleanup(c);
    curl_slist_free_all(list);
}

bool ktc_header(const ktc_response *r, const char *name, char *buf, size_t size)
{
    size_t name_len = strlen(name);
    const char *line = r->headers;

    while (line != NULL && *line != '\0') {
        const char *end = strstr(line, "\r\n");
        size_t len = end != NULL ? (size_t)(end - line) : strlen(line);
        if (len > name_len && strncasecmp(line, name, name_len) == 0 && line[name_len] == ':') {
            const char *v = line + name_len + 1;
            while (*v == ' ' || *v == '\t') {
                v++;
            }
            snprintf(buf, size, "%.*s", (int)(line + len - v), v);
            return true;
        }
        line = end != NULL ? end + 2 : NULL;
    }
    return false;
}

void ktc_response_free(ktc_response *r)
{
    free(r->body);
    memset(r, 0, sizeof *r);
}

static void *async_main(void *arg)
{
    ktc_async *a = arg;
    ktc_fetch(a->url, &a->opts, &a->r);
    return NULL;
}

int ktc_async_start(ktc_async *a, const char *url, const ktc_opts *o)
{
    memset(a, 0, sizeof *a);
    if (o != NULL) {
        a->opts = *o;
    }
    if ((size_t)snprintf(a->url, sizeof a->url, "%s", url) >= sizeof a->url) {
        return ENAMETOOLONG;
    }
    return pthread_create(&a->thread, NULL, async_main, a);
}

int ktc_async_join(ktc_async *a)
{
    return pthread_join(a->thread, NULL);
}
