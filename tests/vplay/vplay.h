/*
 * vplay.h — one listening session through the whole pipeline, in virtual time.
 *
 * A presentation of `segments` CBR segments of `segment_s` seconds at each rate of a ladder is
 * served by the test server behind a shaped link (kts_link.h: a bandwidth trace, a latency per
 * request, one budget for every connection). A kithara HLS stream plays it with everything real:
 * its own downloader (on a virtual clock), the HLS peer, the cache, ABR. A paced reader in the
 * driving thread plays it out at the media rate: it reads the stream ahead of its playback
 * position by at most `readahead_s`, reports the played time (kth_stream_abr_report_played) and
 * stalls when the bytes it needs are not there. Every byte it reads is checked against the
 * segment it belongs to.
 *
 * Time moves only when everything has settled: the server has sent what the link allowed, the
 * downloader has taken it in and acted (its loop turned, nothing new on the wire), and the
 * reader has read what it may. It then moves to the next thing that can happen: a latency or a
 * body ending on the link, a timer of the downloader or the HLS peer, the reader wanting more,
 * or `step_s` at most. So a 192 s session takes a fraction of a second of real time, and the
 * same trace gives the same decisions from run to run up to the rare moment where a real
 * thread's timing decides an order.
 *
 * The session is scored as the ABR simulation contract scores one (../traces/README.md): the
 * variant of each segment as read, the stall while the reader waited for it, the start-up
 * delay (from open to the first segment whole in the reader's hands: the playlists, the
 * segment, and every latency on the way).
 *
 * Thread: kvp_run runs on the calling thread (plus the stream's and the server's own); several
 * sessions may run at once on different threads.
 */
#ifndef KTH_VPLAY_H
#define KTH_VPLAY_H

#include <kithara/hls.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* One segment served badly: at the link's pace for `after` bytes, then at most `bytes_per_s`
 * (0: nothing more, the connection left open), optionally without a Content-Length. */
typedef struct kvp_limit {
    size_t level, segment;
    uint64_t after;
    double bytes_per_s;
    bool chunked;
} kvp_limit;

typedef struct kvp_config {
    /* The link: a trace (rows time_s[i], mbps[i]; see kts_link.h), its scale, the latency. */
    const double *time_s;
    const double *mbps;
    size_t trace_rows;
    double scale;
    uint32_t latency_ms;
    /* The presentation: ascending ladder (kbit/s), segment length, segment count. */
    const double *ladder_kbps;
    size_t levels;
    double segment_s;
    size_t segments;
    /* The reader: media seconds read ahead of playback (0: 1 s); it reads again when less than
     * half of that is left. Without report_played the stream is not told the played time (it
     * then counts what was read as played). */
    double readahead_s;
    bool report_played;
    /* The longest move of the clock with nothing due (0: 0.5 s). */
    double step_s;
    /* HLS options of the stream (NULL: the defaults). */
    const kth_hls_options *hls;
    /* A cap on ABR's choice (kth_stream_abr_set_cap), set once the stream is open and before
     * its first read; 0: none. */
    uint64_t cap_bps;
    /* Segments served badly (kts_link_limit), none by default. */
    const kvp_limit *limits;
    size_t limit_count;
    /* When not NULL, a line per segment event and ABR decision, with the virtual time. */
    FILE *log;
    /* Real time the opening thread takes after kth_stream_open returns, as on a loaded
     * machine (0: none). No virtual time may pass over it. */
    unsigned opener_lag_ms;
} kvp_config;

/* A variant switch the stream announced (KTH_EVENT_VARIANT_CHANGED). */
typedef struct kvp_change {
    int from, to;
    char reason[24]; /* "up", "down", "urgent-down", ... */
    double buffer_s; /* the buffer when it was made */
    size_t segment;  /* the segment the reader was in when the event was seen */
} kvp_change;

#define KVP_MAX_CHANGES 64

typedef struct kvp_result {
    bool finished;          /* played to the end */
    double startup_s;       /* open to the first segment whole in the reader's hands */
    double startup_floor_s; /* the least that can take on this link: the master playlist, one
                               media playlist and the lowest rung's first segment, one after
                               another, each after its latency */
    double rebuffer_s;      /* stalls after start-up, in all */
    size_t switches;        /* rung changes between consecutive segments played */
    double mean_kbps;       /* over the segments played */
    size_t *level;          /* per segment: the rung its bytes came from (owned) */
    double *rebuffer;       /* per segment: the stall waiting for it (owned; [0] is 0) */
    size_t segments;        /* entries of level and rebuffer */
    uint64_t bytes_read;    /* bytes the reader read (and checked) */
    kth_hls_stats stats;    /* fetches, bytes fetched and thrown away, switches made */
    unsigned most_fetches;  /* the most segment fetches that ran at once (from the events) */
    kvp_change changes[KVP_MAX_CHANGES]; /* the switches announced, in order (the first
                                            KVP_MAX_CHANGES) */
    size_t change_count;
    unsigned *fetches; /* per rung and segment ([level * segments + segment]): downloads started
                          (owned) */
    double session_s;  /* virtual time from open to the end of playback */
    double real_s;     /* real time the session took */
    unsigned steps;    /* moves of the clock */
    char error[256];   /* why the session failed, when kvp_run returned -1 */
} kvp_result;

/* Plays one session. Returns 0 with *out filled (free it with kvp_result_free), or -1 with the
 * cause in out->error (a wrong byte, a stream failure, a session that could not finish within
 * ten times its media length, or a settle that took over 30 s of real time). */
int kvp_run(const kvp_config *config, kvp_result *out);

void kvp_result_free(kvp_result *result);

#endif /* KTH_VPLAY_H */
