/*
 * seek_and_watch.c — plays an HLS presentation from a time, with a private cache directory,
 * and prints what the library reports on its event bus while it reads: variant switches,
 * segments and requests. Shows the calls a player makes around kth_stream_read.
 *
 *   seek_and_watch URL SECONDS CACHE_DIR > out.ts
 *
 * Build: cc seek_and_watch.c $(pkg-config --cflags --libs kithara)
 */
#include <kithara/kithara.h>

#include <stdio.h>
#include <stdlib.h>

/* Prints every event waiting on the subscription, without blocking. */
static void drain(kth_subscription *sub)
{
    kth_event ev;
    while (kth_events_next(sub, &ev, 0) == KTH_OK)
        fprintf(stderr, "event %-24s %s\n", kth_event_kind_name(ev.kind), ev.text);
}

static int play(kth_stream *s, kth_subscription *sub, double seconds)
{
    kth_seek_anchor anchor;
    kth_status st = kth_stream_seek_time(s, seconds, &anchor);
    if (st != KTH_OK) {
        fprintf(stderr, "cannot seek to %.3f s: %s\n", seconds, kth_strerror(st));
        return 1;
    }
    /* The segment begins at anchor.segment_start; a decoder drops what lies before `seconds`. */
    fprintf(stderr, "segment %llu starts at %.3f s (byte %llu)\n",
            (unsigned long long)anchor.segment_index, anchor.segment_start,
            (unsigned long long)anchor.offset);
    static unsigned char buf[1 << 16];
    for (;;) {
        int64_t n = kth_stream_read(s, buf, sizeof buf);
        drain(sub);
        if (n == 0)
            return 0;
        if (n > 0) {
            fwrite(buf, 1, (size_t)n, stdout);
        } else if (n == KTH_ERR_VARIANT_CHANGE) {
            /* A real player recreates its decoder here: new bytes start with their own init. */
            fprintf(stderr, "variant fence: now variant %d\n", kth_stream_current_variant(s));
            kth_stream_clear_variant_fence(s);
        } else if (n != KTH_ERR_SEEK_PENDING) {
            char detail[512];
            kth_stream_last_error(s, detail, sizeof detail);
            fprintf(stderr, "%s: %s\n", kth_strerror((int)n), detail);
            return 1;
        }
    }
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: seek_and_watch URL SECONDS CACHE_DIR\n");
        return 2;
    }
    kth_cache_options co;
    kth_cache_options_init(&co);
    co.dir = argv[3];
    kth_cache *cache = NULL;
    kth_bus *bus = NULL;
    kth_subscription *sub = NULL;
    kth_stream *s = NULL;
    char err[512];
    int rc = 1;
    if (kth_cache_open(&co, &cache, err, sizeof err) != KTH_OK) {
        fprintf(stderr, "%s\n", err);
    } else if (kth_bus_new(&bus) != KTH_OK || kth_bus_subscribe(bus, 256, &sub) != KTH_OK) {
        fprintf(stderr, "out of memory\n");
    } else {
        kth_stream_options so;
        kth_stream_options_init(&so);
        so.cache = cache;
        so.bus = bus;
        if (kth_stream_open(argv[1], &so, &s, err, sizeof err) != KTH_OK)
            fprintf(stderr, "%s\n", err);
        else
            rc = play(s, sub, strtod(argv[2], NULL));
    }
    kth_stream_close(s);
    kth_subscription_free(sub);
    kth_bus_unref(bus);
    kth_cache_unref(cache);
    kth_shutdown();
    return rc;
}
