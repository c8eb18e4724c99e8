/*
 * h2c.c — cleartext HTTP/2 with prior knowledge (kth_downloader_options.http2_prior_knowledge),
 * and a way around libcurl 7.88's trouble with it.
 *
 * On http:// URLs the option makes curl speak HTTP/2 from the first byte
 * (CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE), and with CURLOPT_PIPEWAIT later requests become streams
 * of the same connection. libcurl 7.88.0 and 7.88.1 break that: a transfer asking for prior
 * knowledge that reuses an HTTP/2 connection starts a second HTTP/2 session inside the first
 * (fixed in libcurl 8.0.0), and the server answers with a framing error. A transfer asking for
 * CURL_HTTP_VERSION_2TLS reuses such a connection correctly, but opens an HTTP/1.1 one when
 * there is none. So on those versions the downloader keeps, per host, what it knows of that
 * host's cleartext HTTP/2 connection:
 *
 *   NONE ──(an attempt starts: the opener, prior knowledge on a fresh connection)──▶ OPENING
 *   OPENING ──(its response came over HTTP/2)──▶ LIVE      (other attempts wait meanwhile)
 *   OPENING ──(it ended without an HTTP/2 response)──▶ NONE
 *   LIVE: attempts ask for 2TLS and so become streams of the live connection;
 *   LIVE ──(one was answered over HTTP/1.x, or failed on a new connection)──▶ NONE
 *
 * The last edge is the connection gone (the server closed it while idle, or after so many
 * requests): the attempt that found it gone went out over HTTP/1.1 and failed, or was answered
 * over it; either way the next attempt opens a new HTTP/2 connection, and a failed one is queued
 * again at once without counting as a failure (net_h2c_missed), at most NET_H2C_MAX_MISSES
 * times per command so that a request that fails for another reason cannot go round forever.
 *
 * Loop thread only.
 */
#include "net/net_internal.h"
#include "platform/mem.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

bool net_h2c_reuse_broken(void)
{
    const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
    return v && v->version_num >= 0x075800 && v->version_num < 0x080000;
}

void net_h2c_hosts_free(net_h2c_hosts *h)
{
    for (size_t i = 0; i < h->n; i++)
        platform_free(h->v[i].key);
    platform_free(h->v);
    memset(h, 0, sizeof *h);
}

static net_h2c_state host_state(const net_h2c_hosts *h, const char *key)
{
    for (size_t i = 0; i < h->n; i++)
        if (strcmp(h->v[i].key, key) == 0)
            return h->v[i].state;
    return NET_H2C_NONE;
}

/* Records a host's state; a host back to NONE is dropped. Out of memory leaves the host at
 * NONE, which costs a connection, never a request. */
static void set_host_state(net_h2c_hosts *h, const char *key, net_h2c_state state)
{
    for (size_t i = 0; i < h->n; i++) {
        if (strcmp(h->v[i].key, key) != 0)
            continue;
        if (state != NET_H2C_NONE) {
            h->v[i].state = state;
        } else {
            platform_free(h->v[i].key);
            h->v[i] = h->v[--h->n];
        }
        return;
    }
    if (state == NET_H2C_NONE)
        return;
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 4;
        void *v = platform_realloc(h->v, cap * sizeof *h->v);
        if (!v)
            return;
        h->v = v;
        h->cap = cap;
    }
    char *copy = platform_strdup(key);
    if (!copy)
        return;
    h->v[h->n].key = copy;
    h->v[h->n].state = state;
    h->n++;
}

bool net_h2c_wanted(const kth_downloader *d, const net_cmd *cmd)
{
    return d->http2_prior_knowledge && strncasecmp(cmd->url, "http:", 5) == 0;
}

bool net_h2c_may_start(kth_downloader *d, const net_cmd *cmd)
{
    return !d->h2c_reuse_broken || !net_h2c_wanted(d, cmd) ||
           host_state(&d->h2c_hosts, cmd->host) != NET_H2C_OPENING;
}

CURLcode net_h2c_configure(net_cmd *cmd)
{
    kth_downloader *d = cmd->d;
    CURL *e = cmd->at.easy;
    cmd->at.h2c = NET_H2C_ATTEMPT_PLAIN;
    if (!d->h2c_reuse_broken)
        return curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE);
    if (host_state(&d->h2c_hosts, cmd->host) == NET_H2C_LIVE) {
        cmd->at.h2c = NET_H2C_ATTEMPT_REUSE;
        return curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    }
    cmd->at.h2c = NET_H2C_ATTEMPT_OPENER;
    CURLcode code =
        curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE);
    return code != CURLE_OK ? code : curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
}

void net_h2c_started(net_cmd *cmd)
{
    if (cmd->at.h2c == NET_H2C_ATTEMPT_OPENER)
        set_host_state(&cmd->d->h2c_hosts, cmd->host, NET_H2C_OPENING);
}

void net_h2c_learn(net_cmd *cmd)
{
    net_attempt *at = &cmd->at;
    if (at->h2c != NET_H2C_ATTEMPT_OPENER && at->h2c != NET_H2C_ATTEMPT_REUSE)
        return;
    long version = 0, connects = 0;
    curl_easy_getinfo(at->easy, CURLINFO_HTTP_VERSION, &version);
    curl_easy_getinfo(at->easy, CURLINFO_NUM_CONNECTS, &connects);
    net_h2c_hosts *hosts = &cmd->d->h2c_hosts;
    net_h2c_state now = host_state(hosts, cmd->host);
    if (version == CURL_HTTP_VERSION_2_0)
        set_host_state(hosts, cmd->host, NET_H2C_LIVE);
    else if (at->h2c == NET_H2C_ATTEMPT_OPENER
                 ? now == NET_H2C_OPENING
                 : now == NET_H2C_LIVE && (version != 0 || connects > 0))
        set_host_state(hosts, cmd->host, NET_H2C_NONE);
    /* else: a reuse that ended before its response on the live connection, or news about a
     * connection another attempt is opening meanwhile: nothing learnt */
}

bool net_h2c_missed(net_cmd *cmd, CURLcode code)
{
    const net_attempt *at = &cmd->at;
    if (at->h2c != NET_H2C_ATTEMPT_REUSE || code == CURLE_OK || at->aborted || at->net_bytes ||
        cmd->h2c_misses >= NET_H2C_MAX_MISSES)
        return false;
    long version = 0;
    curl_easy_getinfo(at->easy, CURLINFO_HTTP_VERSION, &version);
    if (version == CURL_HTTP_VERSION_2_0)
        return false; /* answered on an HTTP/2 connection: an ordinary failure */
    /* It went out on a new HTTP/1.1 connection (or on one another attempt had just opened so):
     * the host's connection is gone, and the next attempt opens one. */
    cmd->h2c_misses++;
    if (host_state(&cmd->d->h2c_hosts, cmd->host) == NET_H2C_LIVE)
        set_host_state(&cmd->d->h2c_hosts, cmd->host, NET_H2C_NONE);
    return true;
}
