/*
 * tools/abr_sim/session.c — the session loop: ask, download, update the buffer, score.
 *
 * The controller is asked before every segment, segment 0 included, and sees only the history
 * the contract allows (algo.h). The history arrays grow by one entry per segment and are what
 * the controller reads; nothing else about the trace reaches it.
 */
#include "session.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "network.h"

size_t sim_segment_count(double duration_s, double segment_s)
{
    if (!(segment_s > 0.0) || !(duration_s > 0.0) || !isfinite(duration_s / segment_s)) {
        return 0;
    }
    /* The small slack keeps 192 / 6.4 from rounding down to 29. */
    return (size_t)floor(duration_s / segment_s + 1e-9);
}

uint64_t sim_segment_bytes(double kbps, double segment_s)
{
    return (uint64_t)llround(kbps * 1000.0 * segment_s / 8.0);
}

int sim_session_run(const sim_setup *setup, double scale, const sim_trace *trace,
                    const sim_algo *algo, sim_segment *segments, sim_session_summary *out,
                    char *err, size_t err_size)
{
    size_t count = setup->segments;
    memset(out, 0, sizeof *out);
    uint64_t *bytes = calloc(count, sizeof *bytes);
    double *download = calloc(count, sizeof *download);
    double *throughput = calloc(count, sizeof *throughput);
    size_t *levels = calloc(count, sizeof *levels);
    double *rebuffer = calloc(count, sizeof *rebuffer);
    void *state = NULL;
    int rc = -1;
    if (bytes == NULL || download == NULL || throughput == NULL || levels == NULL ||
        rebuffer == NULL) {
        snprintf(err, err_size, "out of memory");
        goto done;
    }
    state = algo->open(setup);
    if (state == NULL) {
        snprintf(err, err_size, "%s: cannot open the controller (out of memory)", algo->name);
        goto done;
    }

    sim_network net;
    sim_network_init(&net, trace, scale);
    double buffer = 0.0;
    double kbps_sum = 0.0;
    for (size_t n = 0; n < count; n++) {
        sim_view view = {
            .setup = setup,
            .segment = n,
            .segments_left = count - n,
            .buffer_s = buffer,
            .prev_level = n > 0 ? levels[n - 1] : 0,
            .bytes = bytes,
            .download_s = download,
            .throughput_bps = throughput,
        };
        size_t level = algo->choose(state, &view);
        if (level >= setup->levels) {
            snprintf(err, err_size, "%s chose rung %zu of a %zu-rung ladder", algo->name, level,
                     setup->levels);
            goto done;
        }
        double kbps = setup->ladder_kbps[level];
        uint64_t size = sim_segment_bytes(kbps, setup->segment_s);
        double d = sim_network_download(&net, size);
        double stall = 0.0;
        if (n == 0) {
            out->startup_s = d;
            buffer = setup->segment_s;
        } else {
            stall = d > buffer ? d - buffer : 0.0;
            buffer = (buffer > d ? buffer - d : 0.0) + setup->segment_s;
        }
        if (buffer > SIM_BUFFER_MAX_S) {
            sim_network_idle(&net, buffer - SIM_BUFFER_MAX_S);
            buffer = SIM_BUFFER_MAX_S;
        }
        levels[n] = level;
        bytes[n] = size;
        download[n] = d;
        throughput[n] = (double)size * 8.0 / d;
        rebuffer[n] = stall;
        kbps_sum += kbps;
        out->rebuffer_s += stall;
        if (n > 0 && level != levels[n - 1]) {
            out->switches++;
        }
        if (n > 0 && level == setup->levels - 1) {
            out->top_segments++;
        }
        if (segments != NULL) {
            segments[n] = (sim_segment){
                .level = level,
                .kbps = kbps,
                .bytes = size,
                .download_s = d,
                .buffer_s = buffer,
                .rebuffer_s = stall,
            };
        }
    }
    out->qoe =
        sim_qoe_score(setup->qoe, setup->ladder_kbps, setup->levels, levels, rebuffer, count);
    out->mean_kbps = count > 0 ? kbps_sum / (double)count : 0.0;
    rc = 0;

done:
    if (state != NULL) {
        algo->close(state);
    }
    free(bytes);
    free(download);
    free(throughput);
    free(levels);
    free(rebuffer);
    return rc;
}
