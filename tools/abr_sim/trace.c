/*
 * tools/abr_sim/trace.c — loading bandwidth traces and expanding trace folders.
 *
 * Invariant kept for every loaded trace: count >= 2, times strictly increasing, rates finite and
 * non-negative, and at least one interval with a positive rate (so the network model never
 * loops forever). Lines that break the format are skipped rather than fatal, because recorded
 * traces sometimes carry a header or a truncated last line; a file with no usable interval is an
 * error.
 */
#include "trace.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static char *copy_string(const char *s)
{
    size_t n = strlen(s);
    char *c = malloc(n + 1);
    if (c != NULL) {
        memcpy(c, s, n + 1);
    }
    return c;
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash != NULL ? slash + 1 : path;
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* Parses one line (not NUL-terminated) into two numbers. Returns 1 on success. */
static int parse_line(const char *line, size_t len, double *t, double *v)
{
    char buf[128];
    if (len >= sizeof buf) {
        return 0;
    }
    memcpy(buf, line, len);
    buf[len] = '\0';
    char *p = buf;
    char *end = NULL;
    double values[2];
    for (int i = 0; i < 2; i++) {
        while (is_space(*p)) {
            p++;
        }
        if (*p == '\0') {
            return 0;
        }
        errno = 0;
        values[i] = strtod(p, &end);
        if (end == p || errno == ERANGE || !isfinite(values[i])) {
            return 0;
        }
        if (*end != '\0' && !is_space(*end)) {
            return 0;
        }
        p = end;
    }
    while (is_space(*p)) {
        p++;
    }
    if (*p != '\0') {
        return 0;
    }
    *t = values[0];
    *v = values[1];
    return 1;
}

int sim_trace_parse(const char *text, size_t len, const char *name, sim_trace *out, char *err,
                    size_t err_size)
{
    memset(out, 0, sizeof *out);
    size_t capacity = 0;
    size_t count = 0;
    double *times = NULL;
    double *rates = NULL;
    size_t pos = 0;
    while (pos < len) {
        size_t start = pos;
        while (pos < len && text[pos] != '\n') {
            pos++;
        }
        size_t line_len = pos - start;
        pos++; /* past the newline (or the end) */
        double t = 0.0;
        double v = 0.0;
        if (!parse_line(text + start, line_len, &t, &v) || v < 0.0) {
            continue;
        }
        if (count > 0 && !(t > times[count - 1])) {
            continue;
        }
        if (count == capacity) {
            size_t grown = capacity == 0 ? 256 : capacity * 2;
            double *nt = realloc(times, grown * sizeof *nt);
            if (nt == NULL) {
                goto no_memory;
            }
            times = nt;
            double *nr = realloc(rates, grown * sizeof *nr);
            if (nr == NULL) {
                goto no_memory;
            }
            rates = nr;
            capacity = grown;
        }
        times[count] = t;
        rates[count] = v;
        count++;
    }
    if (count < 2) {
        snprintf(err, err_size, "%s: no usable trace lines (expected 'time_s mbit_per_s')", name);
        goto fail;
    }
    int any_positive = 0;
    for (size_t i = 1; i < count; i++) {
        if (rates[i] > 0.0) {
            any_positive = 1;
        }
    }
    if (!any_positive) {
        snprintf(err, err_size, "%s: every throughput is zero", name);
        goto fail;
    }
    out->name = copy_string(name);
    if (out->name == NULL) {
        goto no_memory;
    }
    out->time_s = times;
    out->mbps = rates;
    out->count = count;
    return 0;

no_memory:
    snprintf(err, err_size, "%s: out of memory", name);
fail:
    free(times);
    free(rates);
    memset(out, 0, sizeof *out);
    return -1;
}

int sim_trace_load(const char *path, sim_trace *out, char *err, size_t err_size)
{
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(err, err_size, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    size_t capacity = 1 << 16;
    size_t len = 0;
    char *text = malloc(capacity);
    if (text == NULL) {
        fclose(f);
        snprintf(err, err_size, "%s: out of memory", path);
        return -1;
    }
    for (;;) {
        if (len == capacity) {
            char *grown = realloc(text, capacity * 2);
            if (grown == NULL) {
                free(text);
                fclose(f);
                snprintf(err, err_size, "%s: out of memory", path);
                return -1;
            }
            text = grown;
            capacity *= 2;
        }
        size_t n = fread(text + len, 1, capacity - len, f);
        len += n;
        if (n == 0) {
            break;
        }
    }
    int read_failed = ferror(f);
    fclose(f);
    if (read_failed) {
        free(text);
        snprintf(err, err_size, "%s: read error", path);
        return -1;
    }
    int rc = sim_trace_parse(text, len, base_name(path), out, err, err_size);
    free(text);
    return rc;
}

void sim_trace_free(sim_trace *trace)
{
    free(trace->name);
    free(trace->time_s);
    free(trace->mbps);
    memset(trace, 0, sizeof *trace);
}

double sim_trace_period(const sim_trace *trace)
{
    return trace->time_s[trace->count - 1] - trace->time_s[0];
}

static int path_list_push(sim_path_list *list, char *path)
{
    if (list->count == list->capacity) {
        size_t grown = list->capacity == 0 ? 64 : list->capacity * 2;
        char **p = realloc(list->paths, grown * sizeof *p);
        if (p == NULL) {
            return -1;
        }
        list->paths = p;
        list->capacity = grown;
    }
    list->paths[list->count++] = path;
    return 0;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int sim_path_list_add(sim_path_list *list, const char *arg, char *err, size_t err_size)
{
    struct stat st;
    if (stat(arg, &st) != 0) {
        snprintf(err, err_size, "%s: %s", arg, strerror(errno));
        return -1;
    }
    if (S_ISREG(st.st_mode)) {
        char *copy = copy_string(arg);
        if (copy == NULL || path_list_push(list, copy) != 0) {
            free(copy);
            snprintf(err, err_size, "%s: out of memory", arg);
            return -1;
        }
        return 0;
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(err, err_size, "%s: not a file or a folder", arg);
        return -1;
    }
    DIR *dir = opendir(arg);
    if (dir == NULL) {
        snprintf(err, err_size, "%s: %s", arg, strerror(errno));
        return -1;
    }
    size_t first = list->count;
    size_t arg_len = strlen(arg);
    int trailing_slash = arg_len > 0 && arg[arg_len - 1] == '/';
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL) {
        if (entry->d_name[0] == '.') {
            continue;
        }
        size_t size = arg_len + 1 + strlen(entry->d_name) + 1;
        char *path = malloc(size);
        if (path == NULL) {
            closedir(dir);
            snprintf(err, err_size, "%s: out of memory", arg);
            return -1;
        }
        snprintf(path, size, "%s%s%s", arg, trailing_slash ? "" : "/", entry->d_name);
        struct stat est;
        if (stat(path, &est) != 0 || !S_ISREG(est.st_mode)) {
            free(path);
            continue;
        }
        if (path_list_push(list, path) != 0) {
            free(path);
            closedir(dir);
            snprintf(err, err_size, "%s: out of memory", arg);
            return -1;
        }
    }
    closedir(dir);
    if (list->count == first) {
        snprintf(err, err_size, "%s: folder holds no trace file", arg);
        return -1;
    }
    qsort(list->paths + first, list->count - first, sizeof *list->paths, compare_names);
    return 0;
}

void sim_path_list_free(sim_path_list *list)
{
    for (size_t i = 0; i < list->count; i++) {
        free(list->paths[i]);
    }
    free(list->paths);
    memset(list, 0, sizeof *list);
}

int sim_trace_set_load(const char *root, const char *name, int subset, sim_trace_set *out,
                       char *err, size_t err_size)
{
    *out = (sim_trace_set){0};
    size_t need = strlen(root) + strlen(name) + 2;
    char *path = malloc(need);
    if (path == NULL) {
        snprintf(err, err_size, "out of memory");
        return -1;
    }
    snprintf(path, need, "%s/%s", root, name);
    sim_path_list list = {0};
    int rc = sim_path_list_add(&list, path, err, err_size);
    free(path);
    if (rc != 0) {
        return -1;
    }
    out->traces = calloc(list.count, sizeof *out->traces);
    if (out->traces == NULL) {
        sim_path_list_free(&list);
        snprintf(err, err_size, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < list.count; i++) {
        if (subset != 0 && (int)(i % 2) != subset - 1) {
            continue;
        }
        if (sim_trace_load(list.paths[i], &out->traces[out->count], err, err_size) != 0) {
            sim_path_list_free(&list);
            sim_trace_set_free(out);
            return -1;
        }
        out->count++;
    }
    sim_path_list_free(&list);
    return 0;
}

void sim_trace_set_free(sim_trace_set *set)
{
    for (size_t i = 0; i < set->count; i++) {
        sim_trace_free(&set->traces[i]);
    }
    free(set->traces);
    *set = (sim_trace_set){0};
}
