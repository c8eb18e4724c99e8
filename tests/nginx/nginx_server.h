/*
 * nginx_server.h — a real nginx, started by a test as its child, serving a directory over
 * HTTPS with HTTP/2, plain HTTP/1.1 and cleartext HTTP/2 on loopback.
 *
 * The loopback test server (tests/server) speaks HTTP/1.1 only; this one lets tests meet what the
 * real Internet serves: TLS with a certificate chain, ALPN, and HTTP/2 streams multiplexed on one
 * connection. ktn_start() makes a throwaway certificate authority and a server certificate for
 * 127.0.0.1 and localhost with the openssl program, writes an nginx configuration, and runs
 * `nginx -p DIR -c DIR/nginx.conf -g 'daemon off;'` in a fresh temporary directory that holds
 * everything it writes (certificates, pid file, logs, temporary files). It returns once every
 * port accepts connections (bounded wait). ktn_stop() ends nginx and removes the directory.
 *
 * Listeners, each on a free loopback port the OS picked:
 *   KTN_HTTPS_H2  TLS, HTTP/2 offered by ALPN (and HTTP/1.1 for clients that want it);
 *   KTN_HTTP1     cleartext HTTP/1.1;
 *   KTN_H2C       cleartext HTTP/2 with prior knowledge (RFC 9113 §3.3): a client must speak
 *                 HTTP/2 from its first byte. Every nginx with the HTTP/2 module offers it.
 *   KTN_H2C_CLOSING  the same, but nginx ends each connection after 4 requests (GOAWAY), as
 *                 servers do after a number of requests or an idle time: clients must open
 *                 new connections as they go.
 *   KTN_HTTPS_H1  TLS with HTTP/1.1 only (no HTTP/2 offered), to compare like with like.
 *
 * The document root is served at "/" and again under "/u/<tag>/" for any tag of letters, digits,
 * '-' and '_': a test that fetches through its own tag can count its own requests and
 * connections in the access log (ktn_log_stats), whatever other tests of the process did.
 *
 * nginx runs as a child of the calling thread and gets SIGTERM if that thread ends (Linux
 * PR_SET_PDEATHSIG), so a crashed test leaves no server behind: call ktn_start from the main
 * thread (a cmocka group setup does).
 *
 * Errors: KTH_OK, or a negative kth_status with a sentence in err: KTH_ERR_NOT_FOUND when nginx
 * or openssl is not installed (scripts/install-deps.sh installs both), KTH_ERR_UNSUPPORTED when
 * the installed nginx lacks the SSL or HTTP/2 module, KTH_ERR_IO when a file or the temporary
 * directory cannot be written, KTH_ERR_NETWORK when nginx did not start (its error log is quoted),
 * KTH_ERR_NO_MEMORY. Depends on libc only.
 */
#ifndef KTN_NGINX_SERVER_H
#define KTN_NGINX_SERVER_H

#include <kithara/status.h>

#include <stdbool.h>
#include <stddef.h>

typedef struct ktn_server ktn_server;

typedef enum ktn_listener {
    KTN_HTTPS_H2 = 0,
    KTN_HTTP1 = 1,
    KTN_H2C = 2,
    KTN_H2C_CLOSING = 3,
    KTN_HTTPS_H1 = 4,
} ktn_listener;

#define KTN_LISTENERS        5
#define KTN_CLOSING_REQUESTS 4

typedef struct ktn_config {
    /* Directory served (read by nginx's worker). Required. */
    const char *doc_root;
} ktn_config;

/* Starts nginx as described above; *out is the server on success, NULL otherwise. err (may be
 * NULL) receives a sentence on failure. Blocks at most about 10 s. Main thread. */
kth_status ktn_start(const ktn_config *config, ktn_server **out, char *err, size_t errlen);

/* Stops nginx (SIGTERM, then SIGKILL after 5 s), reaps it and removes the temporary directory.
 * NULL-safe. The thread that started it. */
void ktn_stop(ktn_server *s);

/* The base URL of a listener, without a trailing slash ("https://127.0.0.1:PORT"). Borrowed,
 * valid until ktn_stop. */
const char *ktn_base(const ktn_server *s, ktn_listener which);

/* The throwaway CA's certificate (PEM), for a client's CA file option. Borrowed. */
const char *ktn_ca_file(const ktn_server *s);

/* The nginx version string ("1.22.1"). Borrowed. */
const char *ktn_version(const ktn_server *s);

/* What the access log says about requests whose URI starts with uri_prefix (NULL: all) on one
 * listener. */
typedef struct ktn_stats {
    unsigned requests;    /* log lines */
    unsigned connections; /* distinct connections they came on */
    unsigned http2;       /* of the requests, those made over HTTP/2 */
    unsigned ok;          /* of the requests, those answered 200 or 206 */
} ktn_stats;

/* Reads the access log. nginx writes a request's line after its response has gone out, so a
 * client may see the response a moment before the line exists: use ktn_wait_requests first.
 * Returns KTH_OK or KTH_ERR_IO. Any thread. */
kth_status ktn_log_stats(const ktn_server *s, ktn_listener which, const char *uri_prefix,
                         ktn_stats *out);

/* Waits (bounded polling of the log, at most timeout_ms) until at least `count` requests with
 * the prefix are logged on the listener. Returns KTH_OK, KTH_ERR_TIMEOUT or KTH_ERR_IO. */
kth_status ktn_wait_requests(const ktn_server *s, ktn_listener which, const char *uri_prefix,
                             unsigned count, int timeout_ms);

#endif
