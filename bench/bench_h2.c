/*
 * bench_h2.c — an HLS prefetch of many small segments over HTTP/2 against HTTP/1.1, through a
 * real nginx on loopback (tests/nginx).
 *
 *     bench_h2 [--segments N] [--runs N]
 *
 * A temporary directory gets a VOD media playlist of N segments (default 300) of 20 KiB each;
 * nginx serves it over HTTPS with HTTP/1.1 only and with HTTP/2 (its throwaway CA given as
 * ca_file), and in clear over HTTP/1.1 and HTTP/2 with prior knowledge. kth_hls_prefetch fetches
 * the whole presentation into a fresh cache through a fresh downloader, with the default segment
 * fetches in flight (3) and with 8. Printed: the best wall time of each (of --runs, default 3),
 * the TCP connections nginx saw for it (its access log), and the ratio of the HTTP/2 time to
 * the HTTP/1.1 time over the same transport (below 1: HTTP/2 is faster). scripts/bench.sh runs
 * it with the other bench programs. Needs nginx and openssl installed.
 */
#include "nginx_server.h"

#include <kithara/kithara.h>

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SEGMENT_BYTES 20480

typedef struct mode {
    const char *name;
    ktn_listener listener;
    bool ca, prior_knowledge;
} mode;

/* In pairs: HTTP/1.1 then HTTP/2, over TLS and in clear. */
static const mode modes[] = {
    {"HTTPS, HTTP/1.1", KTN_HTTPS_H1, true, false},
    {"HTTPS, HTTP/2 (ALPN)", KTN_HTTPS_H2, true, false},
    {"HTTP, HTTP/1.1", KTN_HTTP1, false, false},
    {"HTTP, HTTP/2 (prior knowledge)", KTN_H2C, false, true},
};

#define N_MODES (sizeof modes / sizeof modes[0])

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static char *make_temp_dir(const char *what)
{
    const char *tmp = getenv("TMPDIR");
    char *dir = NULL;
    if (asprintf(&dir, "%s/kithara-bench-%s-XXXXXX", tmp && *tmp ? tmp : "/tmp", what) < 0)
        return NULL;
    if (!mkdtemp(dir)) {
        fprintf(stderr, "bench_h2: mkdtemp %s: %s\n", dir, strerror(errno));
        free(dir);
        return NULL;
    }
    return dir;
}

/* index.m3u8 and seg0.ts ... in dir. Each segment is framed like MPEG-TS (a sync byte every 188
 * bytes, as the segment check wants) and differs from the others. */
static bool write_presentation(const char *dir, unsigned segments)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/index.m3u8", dir);
    FILE *pl = fopen(path, "w");
    if (!pl)
        return false;
    fprintf(pl, "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:0\n"
                "#EXT-X-PLAYLIST-TYPE:VOD\n");
    static unsigned char body[SEGMENT_BYTES];
    bool ok = true;
    for (unsigned i = 0; i < segments && ok; i++) {
        fprintf(pl, "#EXTINF:1.0,\nseg%u.ts\n", i);
        for (size_t k = 0; k < sizeof body; k++)
            body[k] = (unsigned char)((k * 2654435761u + i * 40503u) >> 13);
        for (size_t k = 0; k < sizeof body; k += 188)
            body[k] = 0x47;
        snprintf(path, sizeof path, "%s/seg%u.ts", dir, i);
        FILE *f = fopen(path, "wb");
        ok = f && fwrite(body, 1, sizeof body, f) == sizeof body;
        if (f)
            ok = fclose(f) == 0 && ok;
    }
    fprintf(pl, "#EXT-X-ENDLIST\n");
    return fclose(pl) == 0 && ok;
}

/* One prefetch of the presentation through a fresh downloader and cache; returns its wall time
 * in seconds, or a negative value after printing why it failed. */
static double prefetch_once(ktn_server *srv, const mode *m, unsigned fetches, const char *tag)
{
    char *cache_dir = make_temp_dir("cache");
    if (!cache_dir)
        return -1;
    kth_downloader_options o;
    kth_downloader_options_init(&o);
    o.ca_file = m->ca ? ktn_ca_file(srv) : NULL;
    o.http2_prior_knowledge = m->prior_knowledge;
    kth_downloader *d = NULL;
    kth_cache *cache = NULL;
    char err[1024] = "";
    double t = -1;
    kth_cache_options co;
    kth_cache_options_init(&co);
    co.dir = cache_dir;
    co.no_sync = true;
    if (kth_downloader_new(&o, &d, err, sizeof err) == KTH_OK &&
        kth_cache_open(&co, &cache, err, sizeof err) == KTH_OK) {
        kth_hls_options h;
        kth_hls_options_init(&h);
        h.max_fetches = fetches;
        kth_stream_options so;
        kth_stream_options_init(&so);
        so.downloader = d;
        so.cache = cache;
        so.hls = &h;
        char url[512];
        snprintf(url, sizeof url, "%s/u/%s/index.m3u8", ktn_base(srv, m->listener), tag);
        double t0 = now_s();
        kth_status st = kth_hls_prefetch(url, &so, 0, NULL, NULL, err, sizeof err);
        t = st == KTH_OK ? now_s() - t0 : -1;
    }
    if (t < 0)
        fprintf(stderr, "bench_h2: %s: %s\n", m->name, err);
    kth_cache_unref(cache);
    kth_downloader_unref(d); /* closes its connections: the log then has every request */
    nftw(cache_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(cache_dir);
    return t;
}

/* The connections nginx saw for the requests of one tag. */
static unsigned connections_of(ktn_server *srv, const mode *m, const char *tag, unsigned want)
{
    char prefix[128];
    snprintf(prefix, sizeof prefix, "/u/%s/", tag);
    ktn_stats st = {0};
    if (ktn_wait_requests(srv, m->listener, prefix, want, 5000) != KTH_OK ||
        ktn_log_stats(srv, m->listener, prefix, &st) != KTH_OK)
        return 0;
    return st.connections;
}

static int run(ktn_server *srv, unsigned segments, int runs)
{
    static const unsigned fetches[] = {3, 8};
    for (size_t f = 0; f < sizeof fetches / sizeof fetches[0]; f++) {
        double best[N_MODES];
        unsigned conns[N_MODES];
        for (size_t m = 0; m < N_MODES; m++) {
            best[m] = -1;
            conns[m] = 0;
            for (int r = 0; r < runs; r++) {
                char tag[64];
                snprintf(tag, sizeof tag, "f%u-m%zu-r%d", fetches[f], m, r);
                double t = prefetch_once(srv, &modes[m], fetches[f], tag);
                if (t < 0)
                    return 1;
                unsigned c = connections_of(srv, &modes[m], tag, segments + 1);
                if (best[m] < 0 || t < best[m]) {
                    best[m] = t;
                    conns[m] = c;
                }
            }
        }
        printf("%u segments of %u bytes, %u fetches in flight (best of %d):\n", segments,
               SEGMENT_BYTES, fetches[f], runs);
        for (size_t m = 0; m < N_MODES; m++) {
            printf("  %-32s %7.3f s  %4u TCP connections", modes[m].name, best[m], conns[m]);
            if (m % 2 == 1)
                printf("  HTTP/2 time / HTTP/1.1 time: %.2f", best[m] / best[m - 1]);
            printf("\n");
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    unsigned segments = 300;
    int runs = 3;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--segments") == 0 && i + 1 < argc) {
            segments = (unsigned)strtoul(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc) {
            runs = atoi(argv[++i]);
        } else {
            fprintf(stderr, "usage: bench_h2 [--segments N] [--runs N]\n");
            return 2;
        }
    }
    if (segments == 0 || segments > 100000 || runs < 1 || runs > 100) {
        fprintf(stderr, "bench_h2: --segments 1..100000, --runs 1..100\n");
        return 2;
    }
    char *root = make_temp_dir("h2");
    if (!root || !write_presentation(root, segments)) {
        fprintf(stderr, "bench_h2: cannot write the presentation\n");
        return 1;
    }
    ktn_config cfg = {.doc_root = root};
    ktn_server *srv = NULL;
    char err[1024];
    int rc = 1;
    if (ktn_start(&cfg, &srv, err, sizeof err) != KTH_OK) {
        fprintf(stderr, "bench_h2: %s\n", err);
    } else {
        printf("machine: %ld cores (shared: figures are noisy); nginx %s on loopback\n",
               sysconf(_SC_NPROCESSORS_ONLN), ktn_version(srv));
        rc = run(srv, segments, runs);
    }
    ktn_stop(srv);
    kth_shutdown();
    nftw(root, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(root);
    return rc;
}
