/*
 * tools/abr_sim/trace.h — bandwidth traces for the ABR simulator.
 *
 * A trace is the text format of the recorded sessions: one sample per line, two numbers
 * separated by white space, `time_seconds throughput_mbit_per_second`. Row 0 only fixes the
 * start time; row i >= 1 gives the rate of the interval [t(i-1), t(i)). A loaded trace always
 * has at least two rows, strictly increasing times, non-negative rates and a positive number
 * of bits per period, so a download over it always finishes.
 */
#ifndef KTH_ABR_SIM_TRACE_H
#define KTH_ABR_SIM_TRACE_H

#include <stddef.h>

typedef struct sim_trace {
    char *name;     /* file name without its folder; owned */
    double *time_s; /* count entries, strictly increasing; owned */
    double *mbps;   /* count entries, >= 0; owned */
    size_t count;
} sim_trace;

/* Parses `len` bytes of trace text. Blank lines and lines that do not hold exactly two numbers
 * (or whose time does not increase, or whose rate is negative or not finite) are skipped. Fails
 * with a sentence in `err` when no usable interval remains or every rate is zero. `name` is
 * copied. Returns 0 or -1; on failure `out` is left empty. */
int sim_trace_parse(const char *text, size_t len, const char *name, sim_trace *out, char *err,
                    size_t err_size);

/* Reads and parses the file at `path` (the trace is named after the last path component). */
int sim_trace_load(const char *path, sim_trace *out, char *err, size_t err_size);

/* Frees what the trace owns and empties it; safe on an empty trace. */
void sim_trace_free(sim_trace *trace);

/* Length of one period of the trace in seconds (t(last) - t(0)). */
double sim_trace_period(const sim_trace *trace);

/* A list of trace file paths, in the order they are to be run. */
typedef struct sim_path_list {
    char **paths; /* owned strings */
    size_t count;
    size_t capacity;
} sim_path_list;

/* Appends `arg` to the list: a regular file as itself, a folder as every regular file directly
 * inside it, sorted by name (hidden files, whose names begin with '.', are skipped). Fails with a
 * sentence in `err` for a path that cannot be read or a folder with no file. Returns 0 or -1. */
int sim_path_list_add(sim_path_list *list, const char *arg, char *err, size_t err_size);

void sim_path_list_free(sim_path_list *list);

/* The traces of one folder, loaded. */
typedef struct sim_trace_set {
    sim_trace *traces; /* owned */
    size_t count;
} sim_trace_set;

/* Loads every trace of the folder `root`/`name` (sorted by name): all of them (subset 0), or
 * those at even positions (1: the training half) or odd positions (2: the test half). Returns 0,
 * or -1 with a sentence in `err` and `out` empty. */
int sim_trace_set_load(const char *root, const char *name, int subset, sim_trace_set *out,
                       char *err, size_t err_size);

void sim_trace_set_free(sim_trace_set *set);

#endif /* KTH_ABR_SIM_TRACE_H */
