/*
 * tools/abr_sim/run.c — averaging sessions over a trace set and writing the per-segment log.
 *
 * The log carries every number the score needs (rung rate, stall) plus what a controller saw
 * (download time, buffer), so a run can be replayed and re-scored without this program.
 */
#include "run.h"

#include <stdlib.h>

/* Writes `s` as a JSON string (quotes included). */
static void write_json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        if (*p == '"' || *p == '\\') {
            fputc('\\', f);
            fputc(*p, f);
        } else if (*p < 0x20) {
            fprintf(f, "\\u%04x", *p);
        } else {
            fputc(*p, f);
        }
    }
    fputc('"', f);
}

static void write_log(FILE *f, const sim_setup *setup, double scale, const char *algo,
                      const char *trace, const sim_segment *segments)
{
    for (size_t n = 0; n < setup->segments; n++) {
        const sim_segment *s = &segments[n];
        fprintf(f, "{\"algo\":\"%s\",\"qoe\":\"%s\",\"scale\":%.17g,\"trace\":", algo,
                sim_qoe_name(setup->qoe), scale);
        write_json_string(f, trace);
        fprintf(f,
                ",\"segment\":%zu,\"level\":%zu,\"kbps\":%.17g,\"bytes\":%llu,"
                "\"download_s\":%.17g,\"buffer_s\":%.17g,\"rebuffer_s\":%.17g}\n",
                n, s->level, s->kbps, (unsigned long long)s->bytes, s->download_s, s->buffer_s,
                s->rebuffer_s);
    }
}

int sim_run_traces(const sim_setup *setup, double scale, const sim_trace *traces, size_t count,
                   const sim_algo *algo, FILE *log, sim_aggregate *out, char *err, size_t err_size)
{
    *out = (sim_aggregate){0};
    sim_segment *segments = calloc(setup->segments, sizeof *segments);
    if (segments == NULL) {
        snprintf(err, err_size, "out of memory");
        return -1;
    }
    size_t top = 0;
    for (size_t i = 0; i < count; i++) {
        sim_session_summary s;
        if (sim_session_run(setup, scale, &traces[i], algo, segments, &s, err, err_size) != 0) {
            free(segments);
            return -1;
        }
        if (log != NULL) {
            write_log(log, setup, scale, algo->name, traces[i].name, segments);
        }
        out->qoe += s.qoe;
        out->mean_kbps += s.mean_kbps;
        out->rebuffer_s += s.rebuffer_s;
        out->switches += (double)s.switches;
        out->startup_s += s.startup_s;
        top += s.top_segments;
        if (s.rebuffer_s > 0.0) {
            out->stalled_sessions++;
        }
    }
    free(segments);
    out->sessions = count;
    if (count > 0) {
        double n = (double)count;
        out->qoe /= n;
        out->mean_kbps /= n;
        out->rebuffer_s /= n;
        out->switches /= n;
        out->startup_s /= n;
        double minutes = (double)setup->segments * setup->segment_s / 60.0;
        out->switches_per_min = minutes > 0.0 ? out->switches / minutes : 0.0;
        if (setup->segments > 1) {
            out->top_share = (double)top / (n * (double)(setup->segments - 1));
        }
    }
    if (log != NULL && ferror(log)) {
        snprintf(err, err_size, "cannot write the log");
        return -1;
    }
    return 0;
}
