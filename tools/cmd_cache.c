/*
 * cmd_cache.c — `kithara cache [--cache-dir DIR] ls|du|rm URL|gc`: look into and tidy the
 * asset cache.
 */
#include "commands.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static int cache_usage(FILE *to, int code)
{
    fprintf(to, "usage: kithara cache [--cache-dir DIR] ls | du | rm URL | gc\n"
                "  ls   every cached asset: bytes, completeness, last use, pinned, in use (by a\n"
                "       stream of any process), URL\n"
                "  du   total bytes, budget and counts\n"
                "  rm   remove one asset (by URL or 64-hex key) and its files\n"
                "  gc   evict least recently used assets down to the budget and delete orphan "
                "files\n");
    return code;
}

static int cache_ls(kth_cache *cache)
{
    kth_cache_asset *list;
    size_t count;
    kth_status st = kth_cache_list(cache, &list, &count);
    if (st != KTH_OK) {
        tool_error("cache ls: %s", kth_strerror(st));
        return TOOL_EXIT_CACHE;
    }
    for (size_t i = 0; i < count; i++) {
        char when[32] = "-";
        time_t t = (time_t)(list[i].last_use_ms / 1000);
        struct tm tm;
        if (localtime_r(&t, &tm))
            strftime(when, sizeof when, "%Y-%m-%d %H:%M", &tm);
        char done[16];
        if (list[i].lengths_known && list[i].known_length > 0)
            snprintf(done, sizeof done, "%5.1f%%",
                     100.0 * (double)list[i].bytes / (double)list[i].known_length);
        else
            snprintf(done, sizeof done, "    ?");
        printf("%12llu  %s  %s%s%s  %s\n", (unsigned long long)list[i].bytes, done, when,
               list[i].pinned ? " pinned" : "", list[i].leased ? " in use" : "",
               list[i].url ? list[i].url : list[i].key);
    }
    kth_cache_list_free(list, count);
    return 0;
}

static int cache_du(kth_cache *cache)
{
    kth_cache_stats st;
    kth_status rc = kth_cache_get_stats(cache, &st);
    if (rc != KTH_OK) {
        tool_error("cache du: %s", kth_strerror(rc));
        return TOOL_EXIT_CACHE;
    }
    const char *dir = kth_cache_dir(cache);
    printf("directory: %s\n", dir ? dir : "(memory)");
    printf("bytes:     %llu\n", (unsigned long long)st.total_bytes);
    if (st.budget_bytes != KTH_CACHE_UNBOUNDED)
        printf("budget:    %llu\n", (unsigned long long)st.budget_bytes);
    else
        printf("budget:    unbounded\n");
    printf("assets:    %llu (%llu resources)\n", (unsigned long long)st.assets,
           (unsigned long long)st.resources);
    return 0;
}

int cmd_cache(int argc, char **argv)
{
    tool_cache_options co = {.dir = NULL};
    const char *verb = NULL, *arg = NULL;
    for (int i = 1; i < argc; i++) {
        int c = tool_parse_cache_option(argc, argv, &i, &co);
        if (c < 0)
            return TOOL_EXIT_USAGE;
        if (c > 0)
            continue;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return cache_usage(stdout, TOOL_EXIT_OK);
        if (argv[i][0] == '-') {
            tool_error("cache: unknown option '%s'", argv[i]);
            return cache_usage(stderr, TOOL_EXIT_USAGE);
        }
        if (!verb)
            verb = argv[i];
        else if (!arg)
            arg = argv[i];
        else {
            tool_error("cache: too many arguments");
            return TOOL_EXIT_USAGE;
        }
    }
    if (!verb)
        return cache_usage(stderr, TOOL_EXIT_USAGE);
    bool needs_arg = strcmp(verb, "rm") == 0;
    if (strcmp(verb, "ls") && strcmp(verb, "du") && strcmp(verb, "gc") && !needs_arg) {
        tool_error("cache: unknown command '%s'", verb);
        return cache_usage(stderr, TOOL_EXIT_USAGE);
    }
    if (needs_arg != (arg != NULL)) {
        tool_error(needs_arg ? "cache rm: which URL?" : "cache %s takes no argument", verb);
        return TOOL_EXIT_USAGE;
    }
    kth_cache *cache;
    if (tool_open_cache(&co, &cache) != KTH_OK)
        return TOOL_EXIT_CACHE;
    int rc = TOOL_EXIT_OK;
    if (strcmp(verb, "ls") == 0) {
        rc = cache_ls(cache);
    } else if (strcmp(verb, "du") == 0) {
        rc = cache_du(cache);
    } else if (strcmp(verb, "rm") == 0) {
        kth_status st = kth_cache_remove(cache, arg);
        if (st != KTH_OK) {
            tool_error("cache rm %s: %s", arg, kth_strerror(st));
            rc = st == KTH_ERR_NOT_FOUND ? TOOL_EXIT_FAILURE : TOOL_EXIT_CACHE;
        }
    } else {
        kth_cache_gc_result r;
        kth_status st = kth_cache_gc(cache, &r);
        if (st != KTH_OK) {
            tool_error("cache gc: %s", kth_strerror(st));
            rc = TOOL_EXIT_CACHE;
        } else {
            printf("evicted %llu assets (%llu bytes), removed %llu orphan files\n",
                   (unsigned long long)r.evicted_assets, (unsigned long long)r.evicted_bytes,
                   (unsigned long long)r.orphan_files);
        }
    }
    kth_cache_unref(cache);
    return rc;
}
