/*
 * test_hls_live_ffmpeg.c — live HLS as FFmpeg's own live muxer writes it, played while it runs.
 *
 * The ffmpeg program encodes a tone in real time (-re) into a sliding-window playlist of 1 s
 * MPEG-TS segments (four listed at a time, the older files left on disk) in a scratch folder
 * that the test server serves. Once the window has slid, a kithara stream opens the playlist
 * while ffmpeg is still writing, joins the window, follows its reloads, and reads until the
 * playlist gets EXT-X-ENDLIST and the stream proves its end. The bytes read must be exactly the
 * segment files the stream says it played (its playback events name them), in order, with none
 * missing or doubled, ending at the last segment of the final playlist.
 *
 * This test waits on the wall clock: ffmpeg writes in real time, about 10 s.
 */
#include "test_support.h"
#include "testserver.h"

#include <kithara/cache.h>
#include <kithara/events.h>
#include <kithara/hls.h>
#include <kithara/stream.h>

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#define MEDIA_S  "8" /* seconds of tone ffmpeg writes */
#define WAIT_S   30  /* bounds every wait on ffmpeg or the stream */
#define MAX_SEGS 64

/* Starts ffmpeg writing dir/live.m3u8 and dir/seg<n>.ts; returns its pid. */
static pid_t start_ffmpeg(const char *dir)
{
    char playlist[4200], segments[4200];
    snprintf(playlist, sizeof playlist, "%s/live.m3u8", dir);
    snprintf(segments, sizeof segments, "%s/seg%%d.ts", dir);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        execlp("ffmpeg", "ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re", "-f",
               "lavfi", "-i", "sine=frequency=440:sample_rate=44100", "-t", MEDIA_S, "-c:a", "aac",
               "-b:a", "64k", "-f", "hls", "-hls_time", "1", "-hls_list_size", "4", "-hls_flags",
               "temp_file", "-hls_segment_filename", segments, playlist, (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* Reads a whole file into *out (malloc'd); its length, or -1 when it cannot be read. */
static long read_file(const char *path, unsigned char **out)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    size_t cap = 65536, len = 0;
    unsigned char *buf = malloc(cap);
    assert_non_null(buf);
    size_t n;
    while ((n = fread(buf + len, 1, cap - len, f)) > 0) {
        len += n;
        if (len == cap) {
            cap *= 2;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
    }
    fclose(f);
    *out = buf;
    return (long)len;
}

/* Waits (real time, bounded) until ffmpeg's playlist window has slid: its media sequence is
 * past 0, so a stream that opens now joins a live window, not the start of a recording. */
static void wait_for_window_to_slide(const char *dir, pid_t ffmpeg)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/live.m3u8", dir);
    for (int i = 0; i < WAIT_S * 50; i++) {
        unsigned char *text = NULL;
        long len = read_file(path, &text);
        if (len > 0) {
            text = realloc(text, (size_t)len + 1);
            assert_non_null(text);
            text[len] = '\0';
            const char *seq = strstr((char *)text, "#EXT-X-MEDIA-SEQUENCE:");
            long first = seq ? atol(seq + strlen("#EXT-X-MEDIA-SEQUENCE:")) : 0;
            free(text);
            if (first > 0)
                return;
        }
        int status;
        if (waitpid(ffmpeg, &status, WNOHANG) == ffmpeg)
            fail_msg("ffmpeg ended before its window slid (status %d)", status);
        usleep(20000);
    }
    fail_msg("ffmpeg's window did not slide in %d s", WAIT_S);
}

/* The index of the last segment the playlist lists, and whether it is ended. */
static long last_listed(const char *dir, bool *ended)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/live.m3u8", dir);
    unsigned char *text = NULL;
    long len = read_file(path, &text);
    assert_true(len > 0);
    text = realloc(text, (size_t)len + 1);
    text[len] = '\0';
    *ended = strstr((char *)text, "#EXT-X-ENDLIST") != NULL; /* before strtok cuts it up */
    long last = -1;
    for (char *line = strtok((char *)text, "\n"); line; line = strtok(NULL, "\n")) {
        long n;
        if (sscanf(line, "seg%ld.ts", &n) == 1)
            last = n;
    }
    free(text);
    return last;
}

typedef struct played {
    long index[MAX_SEGS]; /* the segments played, as their file names number them */
    size_t count;
    long file_of[MAX_SEGS]; /* the stream's index of a segment -> its file's number (-1: none) */
    unsigned reloads;
    bool ended;
} played;

/* Takes the stream's events: a segment's download names its URL (its file), the playback
 * events say which segments the reader entered, in the stream's own numbering of segments. */
static void take_events(kth_subscription *sub, played *p)
{
    for (size_t i = 0; i < MAX_SEGS; i++)
        p->file_of[i] = -1;
    kth_event ev;
    while (kth_events_next(sub, &ev, KTH_NO_WAIT) == KTH_OK) {
        const kth_event_segment *sg = &ev.payload.segment;
        const char *name = strrchr(ev.text, '/');
        long n;
        if (ev.kind == KTH_EVENT_HLS_SEGMENT_STARTED && !sg->init && sg->index < MAX_SEGS && name &&
            sscanf(name, "/seg%ld.ts", &n) == 1)
            p->file_of[sg->index] = n;
        if (ev.kind == KTH_EVENT_HLS_PLAYBACK_PROGRESS && !sg->init) {
            assert_true(p->count < MAX_SEGS && sg->index < MAX_SEGS);
            assert_true(p->file_of[sg->index] >= 0); /* fetched before it was read */
            p->index[p->count++] = p->file_of[sg->index];
        }
        p->reloads += ev.kind == KTH_EVENT_HLS_LIVE_RELOADED;
        p->ended = p->ended || ev.kind == KTH_EVENT_HLS_LIVE_ENDED;
    }
}

/* Reads the stream to its proven end into *out; returns the length. */
static size_t read_to_end(kth_stream *s, unsigned char **out)
{
    size_t cap = 1 << 20, len = 0;
    unsigned char *buf = malloc(cap);
    assert_non_null(buf);
    for (;;) {
        if (cap - len < 65536) {
            cap *= 2;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
        int64_t n = kth_stream_read(s, buf + len, 65536);
        if (n == 0)
            break;
        if (n < 0) {
            char err[512];
            kth_stream_last_error(s, err, sizeof err);
            fail_msg("read: %s (%s)", kth_strerror((kth_status)n), err);
        }
        len += (size_t)n;
    }
    *out = buf;
    return len;
}

static void test_a_live_playlist_from_ffmpegs_muxer_plays_to_its_end_byte_exact(void **state)
{
    (void)state;
    char *dir = test_make_dir();
    char *cache_dir = test_make_dir();
    pid_t ffmpeg = start_ffmpeg(dir);
    wait_for_window_to_slide(dir, ffmpeg);

    kts_server *srv = NULL;
    assert_int_equal(kts_start(&(kts_config){.doc_root = dir}, &srv), KTH_OK);
    kth_cache_options co;
    kth_cache_options_init(&co);
    co.dir = cache_dir;
    co.no_sync = true;
    kth_cache *cache = NULL;
    char err[512] = "";
    assert_int_equal(kth_cache_open(&co, &cache, err, sizeof err), KTH_OK);
    kth_bus *bus = NULL;
    kth_subscription *sub = NULL;
    assert_int_equal(kth_bus_new(&bus), KTH_OK);
    assert_int_equal(kth_bus_subscribe(bus, 4096, &sub), KTH_OK);
    kth_stream_options so;
    kth_stream_options_init(&so);
    so.cache = cache;
    so.bus = bus;
    so.read_timeout_ms = WAIT_S * 1000;
    char url[512];
    kts_url(srv, "/live.m3u8", url, sizeof url);
    bool ended = false;
    long listed_at_open = last_listed(dir, &ended);
    assert_false(ended);
    kth_stream *s = NULL;
    kth_status st = kth_stream_open(url, &so, &s, err, sizeof err);
    if (st != KTH_OK)
        fail_msg("open: %s (%s)", kth_strerror(st), err);
    unsigned char *got = NULL;
    size_t got_len = read_to_end(s, &got);

    int status = 0;
    assert_int_equal(waitpid(ffmpeg, &status, 0), ffmpeg);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    static played p;
    take_events(sub, &p);
    long last = last_listed(dir, &ended);
    printf("played segments %ld..%ld (%zu), %zu bytes, %u reloads that added segments; the "
           "playlist ended at %ld (at the open: %ld)\n",
           p.count ? p.index[0] : -1, p.count ? p.index[p.count - 1] : -1, p.count, got_len,
           p.reloads, last, listed_at_open);
    assert_true(ended);
    assert_true(p.ended);
    /* It joined the moving window (not the first segment), followed it past what was listed
     * when it opened, and played on to the end. */
    assert_true(p.count >= 3);
    assert_true(p.index[0] >= 1);
    assert_true(p.index[p.count - 1] > listed_at_open);
    assert_true(p.reloads >= 1);
    assert_int_equal(p.index[p.count - 1], last);
    /* The bytes are the files of the segments played, in order, each once. */
    size_t at = 0;
    for (size_t i = 0; i < p.count; i++) {
        if (i > 0)
            assert_int_equal(p.index[i], p.index[i - 1] + 1);
        char path[4200];
        snprintf(path, sizeof path, "%s/seg%ld.ts", dir, p.index[i]);
        unsigned char *file = NULL;
        long len = read_file(path, &file);
        assert_true(len > 0);
        assert_true(at + (size_t)len <= got_len);
        if (memcmp(got + at, file, (size_t)len) != 0)
            fail_msg("segment %ld differs from its file", p.index[i]);
        at += (size_t)len;
        free(file);
    }
    assert_int_equal(at, got_len);

    free(got);
    kth_stream_close(s);
    kth_subscription_free(sub);
    kth_bus_unref(bus);
    kth_cache_unref(cache);
    kts_stop(srv);
    test_remove_tree(dir);
    test_remove_tree(cache_dir);
    free(dir);
    free(cache_dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_live_playlist_from_ffmpegs_muxer_plays_to_its_end_byte_exact),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
