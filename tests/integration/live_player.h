/*
 * live_player.h — what the live HLS tests share: the test server's live streams (one, or two
 * variants of one under a master playlist) and a player that reads a kth_stream of them on
 * its own thread while the test moves one virtual clock for the server and the downloader,
 * step by step, each step settled (nothing in flight, and the reader has read what arrived).
 *
 * Thread-safety: the functions are the test thread's; the reader thread only records reads.
 */
#ifndef KTH_TEST_LIVE_PLAYER_H
#define KTH_TEST_LIVE_PLAYER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <pthread.h>
#include <stdatomic.h>

#include <kithara/hls.h>
#include <kithara/kithara.h>

#include "hls/live.h"
#include "kts_live.h"
#include "platform/clock.h"
#include "testserver.h"

#define NS_PER_MS       1000000LL
#define READ_LOOK_MS    50    /* how often a waiting reader says it has read what there is */
#define READ_GIVE_UP_MS 20000 /* a reader that got nothing for this long ends (hang guard) */
/* The declared bandwidths of the two variants of a two-variant stream, bit/s. */
#define LIVE_LOW_BPS  "64000"
#define LIVE_HIGH_BPS "256000"

typedef struct client {
    kts_server *srv;
    kts_live_stream *ls; /* at /tv: the stream, or the low variant of two */
    kts_live cfg;
    kts_live_stream *hi; /* at /tv/hi when the stream has two variants, else NULL */
    kts_live hi_cfg;
    hls_live_tracker tracker;
    char url[512];
    uint64_t next_expected; /* media sequence the next appended segment must have */
    bool reset_seen;        /* segments are of the server's second epoch */
    size_t taken;
} client;

#define T0_NS 1000000000LL

typedef struct player {
    client c;
    platform_virtual_clock vc;
    kth_downloader *d;
    kth_cache *cache;
    kth_bus *bus;
    kth_subscription *sub;
    char *dir;
    kth_stream *stream;
    pthread_t reader;
    bool reader_joined;
    uint64_t first_segment; /* where the stream starts */
    unsigned char *got;
    size_t got_len, got_cap;
    /* For each read that returned bytes: where they went in got, and their stream offset
     * (reads.n of them, under lock): a seek's bytes are found by the anchor's offset. */
    struct {
        size_t n, cap;
        size_t *got_at;
        uint64_t *offset;
    } reads;
    int64_t result;          /* the read that ended the reader: 0 EOF, or a status */
    char error[512];         /* its message */
    unsigned fences;         /* KTH_ERR_VARIANT_CHANGE met (and cleared) */
    _Atomic size_t progress; /* got_len, for the driving thread */
    kth_bus *dbus;           /* the downloader's: its request events */
    kth_subscription *dsub;
    pthread_mutex_t lock; /* with moved: the reader signals each read, the bus each request */
    pthread_cond_t moved;
    bool paused;    /* under lock: the reader waits before its next read */
    size_t hold_at; /* under lock: > 0, the reader reads no further than got_len == hold_at */
    /* Under lock: the reader found nothing to read since settle() last cleared it (it looks
     * every READ_LOOK_MS of real time while it waits). */
    bool starved;
    bool count_only; /* under lock: reads are counted in got_len, their bytes not kept */
    _Atomic int done;
} player;

/* The request log the next client_start's server keeps (0: the server's default). A long
 * session keeps it small: settle() reads it. */
void live_player_set_log_capacity(size_t entries);
/* Serves `cfg` at /tv (c->url: its playlist); with `hi`, serves `hi` at /tv/hi as a second
 * variant and a master playlist over both at /tv/master.m3u8 (c->url then). */
void client_start(client *c, const kts_live *cfg, const kts_live *hi);
/* Moves the served streams to time `ms`. Returns KTH_OK or the server's status. */
int client_advance(client *c, int64_t ms);
void client_stop(client *c);

/* Opens the stream of `cfg` (buffer_target_s 0: the default) on a virtual clock and starts
 * its reader; returns once the reader asked for segment `first_segment`. */
void player_open(player *p, const kts_live *cfg, uint64_t first_segment, double buffer_target_s);
/* The same with HLS options `hls` (NULL: the defaults), for the two-variant stream of `cfg`
 * (low) and `hi` (high) when hi is not NULL. */
void player_open_variants(player *p, const kts_live *cfg, const kts_live *hi,
                          uint64_t first_segment, const kth_hls_options *hls);
/* player_open with a 4 s buffer, after `fault` was put on the server's `path` (e.g.
 * "/tv/seg0.ts"), so that even the first request meets it. */
void player_open_faulted(player *p, const kts_live *cfg, uint64_t first_segment, const char *path,
                         const kts_fault *fault);
/* Lets what the last step started finish (see the definition). */
void settle(player *p);
/* Moves the server and then the downloader's clock on by `step_ms`, step after step, each
 * settled, until the reader is done or `max_steps` passed. */
void play(player *p, int64_t step_ms, int max_steps);
/* Reads on (the clock moving) until the reader has `bytes` more than `from`. */
void play_until(player *p, size_t from, size_t bytes);
/* Reads on until the reader has `bytes` from its read at stream offset `offset` on. */
void play_from(player *p, uint64_t offset, size_t bytes);
/* Bytes the reader got from its last read at stream offset `offset` on (0: none yet). */
size_t got_since(player *p, uint64_t offset);
/* Holds the reader before its next read, or lets it go on. */
void set_paused(player *p, bool paused);
/* Holds the reader once it got `bytes` in all (its reads stop exactly there), or with 0 lets
 * it read on. */
void hold_reader_at(player *p, size_t bytes);
/* From now on the reader counts what it reads (got_len, progress) without keeping the bytes:
 * for a session too long to hold them. */
void player_count_only(player *p);
/* Ends the reader with a cancel and checks that the cancel is what ended it. */
void stop_reading(player *p);
/* Waits up to `ms` of real time (the clock does not move) for the reader to end: a reader
 * that meets a failure ends in its own thread's time. True when it has ended. */
bool wait_done(player *p, int ms);
/* Joins the reader (if not yet) and frees everything. */
void player_close(player *p);
/* Prints the server's request log (for a failure's message). */
void dump_log(player *p);
/* Counts the events of `kind` published since the last count (the others are consumed). */
unsigned count_events(player *p, kth_event_kind kind);
/* Checks that the reader got segments [first, end) of the (single) stream, each byte-exact. */
void expect_segments(player *p, uint64_t first, uint64_t end);
/* The same for the first (end - first) segments the reader got: it may have got more. */
void expect_first_segments(player *p, uint64_t first, uint64_t end);

#endif /* KTH_TEST_LIVE_PLAYER_H */
