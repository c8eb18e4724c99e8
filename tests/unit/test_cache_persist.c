/*
 * test_cache_persist.c — what survives a restart: partial and committed resources reopen with
 * exactly what the index vouches for; missing, truncated or replaced data files, malformed rows,
 * orphan files and a damaged index are repaired rather than trusted; file names never carry URL
 * text; invalidation starts a resource over instead of splicing two versions; removal never
 * deletes what a damaged row names, a listing never shows a key cut to fit, and a cache directory
 * too long for the index is a limit error. Also the storage additions the cache relies on
 * (restore, snapshot, memory pool).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <sqlite3.h>
#include <sys/wait.h>
#include <time.h>

#include "test_cache_support.h"

#define URL  "https://media.example/album/track.mp3"
#define KEY  "https://media.example/album/track.mp3#body"
#define SEED 11u

/* Opens the test's resource through a cache with the fixture's options. */
static kth_status open_res(struct fixture *f, int flags, struct tc_handles *o)
{
    return tc_open_handles(&f->opts, URL, KEY, flags, o, NULL, 0);
}

static void assert_ranges(cache_resource *h, const storage_range *want, size_t n)
{
    storage_resource *r = cache_resource_storage(h);
    storage_snapshot s;
    assert_int_equal(storage_resource_snapshot(r, &s), KTH_OK);
    assert_int_equal(s.ranges.count, n);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(s.ranges.v[i].start, want[i].start);
        assert_int_equal(s.ranges.v[i].end, want[i].end);
    }
    storage_range_set_free(&s.ranges);
    storage_resource_unref(r);
}

/* The single data file of the cache (there must be exactly one). */
static char found_file[4096];
static int found_count;

static int find_regular(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)ftw;
    if (flag == FTW_F && S_ISREG(sb->st_mode) && strstr(path, "/data/")) {
        snprintf(found_file, sizeof found_file, "%s", path);
        found_count++;
    }
    return 0;
}

static int count_data_files(const char *dir)
{
    found_count = 0;
    nftw(dir, find_regular, 16, FTW_PHYS);
    return found_count;
}

static const char *the_data_file(const char *dir)
{
    assert_int_equal(count_data_files(dir), 1);
    return found_file;
}

/* Waits for a writer child and checks it exited 0 (every step of it succeeded). */
static void wait_child_ok(pid_t pid)
{
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* ---- storage additions ---- */

static void test_restore_ranges_only_on_a_fresh_file_resource(void **state)
{
    struct fixture *f = *state;
    char path[4096];
    snprintf(path, sizeof path, "%s/file", f->dir);
    free(test_write_pattern_file(f->dir, "file", SEED, 1000));
    storage_resource *r;
    assert_int_equal(storage_resource_open_file(path, 0, &r, NULL, 0), KTH_OK);
    const storage_range bad[] = {{10, 5}};
    assert_int_equal(storage_resource_restore_ranges(r, bad, 1), KTH_ERR_INVALID_ARG);
    const storage_range ok[] = {{0, 100}, {500, 1000}};
    assert_int_equal(storage_resource_restore_ranges(r, ok, 2), KTH_OK);
    assert_true(storage_resource_contains(r, 0, 100));
    assert_false(storage_resource_contains(r, 0, 101));
    uint8_t buf[100], want[100];
    size_t got;
    assert_int_equal(storage_resource_read_at(r, 500, buf, sizeof buf, &got), KTH_OK);
    test_pattern_fill(SEED, 500, want, sizeof want);
    assert_memory_equal(buf, want, got);
    /* Not fresh any more. */
    assert_int_equal(storage_resource_restore_ranges(r, ok, 1), KTH_ERR_STATE);
    storage_resource_unref(r);

    assert_int_equal(storage_resource_new_memory(0, &r), KTH_OK);
    assert_int_equal(storage_resource_restore_ranges(r, ok, 1), KTH_ERR_STATE);
    storage_resource_unref(r);
}

static void test_snapshot_copies_state_length_and_ranges(void **state)
{
    (void)state;
    storage_resource *r;
    assert_int_equal(storage_resource_new_memory(0, &r), KTH_OK);
    uint8_t data[300] = {0};
    assert_int_equal(storage_resource_write_at(r, 0, data, 100), KTH_OK);
    assert_int_equal(storage_resource_write_at(r, 200, data, 100), KTH_OK);
    assert_int_equal(storage_resource_set_length(r, 300), KTH_OK);
    storage_snapshot s;
    assert_int_equal(storage_resource_snapshot(r, &s), KTH_OK);
    assert_int_equal(s.state, STORAGE_ACTIVE);
    assert_true(s.length_known);
    assert_int_equal(s.length, 300);
    assert_int_equal(s.ranges.count, 2);
    assert_int_equal(s.ranges.v[1].start, 200);
    storage_range_set_free(&s.ranges);
    assert_int_equal(storage_resource_sync(r), KTH_OK); /* memory: nothing to do */
    storage_resource_unref(r);
}

static void test_memory_pool_bounds_its_members_and_gets_bytes_back(void **state)
{
    (void)state;
    storage_memory_pool *pool;
    assert_int_equal(storage_memory_pool_new(128 * 1024, &pool), KTH_OK);
    storage_resource *a, *b;
    assert_int_equal(storage_resource_new_memory_in_pool(0, pool, &a), KTH_OK);
    assert_int_equal(storage_resource_new_memory_in_pool(0, pool, &b), KTH_OK);
    static uint8_t chunk[65536];
    assert_int_equal(storage_resource_write_at(a, 0, chunk, sizeof chunk), KTH_OK);
    assert_int_equal(storage_resource_write_at(b, 0, chunk, sizeof chunk), KTH_OK);
    assert_int_equal(storage_memory_pool_used(pool), 128 * 1024);
    assert_int_equal(storage_resource_write_at(a, 65536, chunk, 1), KTH_ERR_LIMIT);
    storage_resource_unref(b);
    assert_int_equal(storage_memory_pool_used(pool), 64 * 1024);
    assert_int_equal(storage_resource_write_at(a, 65536, chunk, 1), KTH_OK);
    storage_resource_unref(a);
    assert_int_equal(storage_memory_pool_used(pool), 0);
    storage_memory_pool_unref(pool);
}

/* ---- reopening ---- */

static void test_committed_resource_reopens_complete_with_its_metadata(void **state)
{
    struct fixture *f = *state;
    enum { SIZE = 300000 };
    struct tc_handles o;
    assert_int_equal(open_res(f, CACHE_OPEN_CREATE, &o), KTH_OK);
    assert_true(o.info.created);
    assert_int_equal(o.info.present_bytes, 0);
    assert_int_equal(
        cache_resource_set_meta(o.res, "\"abc\"", "Mon, 02 Jan 2006 15:04:05 GMT", "audio/mpeg"),
        KTH_OK);
    assert_int_equal(tc_write_pattern(o.res, SEED, 150000, SIZE), KTH_OK);
    assert_int_equal(tc_write_pattern(o.res, SEED, 0, 150000), KTH_OK);
    assert_int_equal(cache_resource_commit(o.res, SIZE), KTH_OK);
    tc_close_handles(&o);

    assert_int_equal(open_res(f, 0, &o), KTH_OK);
    assert_false(o.info.created);
    assert_false(o.info.repaired);
    assert_true(o.info.committed);
    assert_true(o.info.length_known);
    assert_int_equal(o.info.length, SIZE);
    assert_int_equal(o.info.present_bytes, SIZE);
    assert_string_equal(o.info.etag, "\"abc\"");
    assert_string_equal(o.info.last_modified, "Mon, 02 Jan 2006 15:04:05 GMT");
    assert_string_equal(o.info.content_type, "audio/mpeg");
    storage_resource *r = cache_resource_storage(o.res);
    assert_int_equal(storage_resource_state(r), STORAGE_COMMITTED);
    uint64_t present = 0;
    assert_true(tc_present_bytes_match(r, SEED, &present));
    assert_int_equal(present, SIZE);
    uint8_t b;
    size_t got = 1;
    assert_int_equal(storage_resource_read_at(r, SIZE, &b, 1, &got), KTH_OK);
    assert_int_equal(got, 0); /* proven EOF */
    storage_resource_unref(r);
    kth_cache_stats stats;
    assert_int_equal(kth_cache_get_stats(o.cache, &stats), KTH_OK);
    assert_int_equal(stats.total_bytes, SIZE);
    assert_int_equal(stats.assets, 1);
    assert_int_equal(stats.resources, 1);
    tc_close_handles(&o);
}

static void test_partial_resource_reopens_with_exactly_the_checkpointed_ranges(void **state)
{
    struct fixture *f = *state;
    enum { SIZE = 400000 };
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* The writer "crashes": it never closes anything, so only the explicit checkpoint
         * counts. Bytes written after it are in the file but must not be claimed. */
        struct tc_handles o;
        int bad = open_res(f, CACHE_OPEN_CREATE, &o) != KTH_OK;
        bad |= cache_resource_set_meta(o.res, "\"v1\"", NULL, "audio/flac") != KTH_OK;
        bad |= cache_resource_set_length(o.res, SIZE) != KTH_OK;
        bad |= tc_write_pattern(o.res, SEED, 0, 100000) != KTH_OK;
        bad |= tc_write_pattern(o.res, SEED, 300000, 350000) != KTH_OK;
        bad |= cache_resource_checkpoint(o.res) != KTH_OK;
        bad |= tc_write_pattern(o.res, SEED, 100000, 200000) != KTH_OK;
        _exit(bad);
    }
    wait_child_ok(pid);

    struct tc_handles o;
    assert_int_equal(open_res(f, 0, &o), KTH_OK);
    assert_false(o.info.committed);
    assert_false(o.info.repaired);
    assert_true(o.info.length_known);
    assert_int_equal(o.info.length, SIZE);
    assert_int_equal(o.info.present_bytes, 150000);
    assert_string_equal(o.info.etag, "\"v1\"");
    assert_string_equal(o.info.content_type, "audio/flac");
    const storage_range want[] = {{0, 100000}, {300000, 350000}};
    assert_ranges(o.res, want, 2);
    storage_resource *r = cache_resource_storage(o.res);
    assert_true(tc_present_bytes_match(r, SEED, NULL));
    /* What is missing is what the writer resumes with. */
    storage_range gap;
    assert_true(storage_resource_first_gap(r, 0, SIZE, &gap));
    assert_int_equal(gap.start, 100000);
    assert_int_equal(gap.end, 300000);
    storage_resource_unref(r);
    assert_int_equal(tc_write_pattern(o.res, SEED, 100000, 300000), KTH_OK);
    assert_int_equal(tc_write_pattern(o.res, SEED, 350000, SIZE), KTH_OK);
    assert_int_equal(cache_resource_commit(o.res, SIZE), KTH_OK);
    tc_close_handles(&o);

    assert_int_equal(open_res(f, 0, &o), KTH_OK);
    assert_true(o.info.committed);
    r = cache_resource_storage(o.res);
    uint64_t present;
    assert_true(tc_present_bytes_match(r, SEED, &present));
    assert_int_equal(present, SIZE);
    storage_resource_unref(r);
    tc_close_handles(&o);
}

/* A writer that pauses (a stalled download) records what it wrote once the checkpoint interval
 * has passed, through cache_resource_record_due, though no write comes to do it: a process that
 * dies afterwards keeps those bytes. */
static void test_a_paused_writer_records_once_the_interval_has_passed(void **state)
{
    struct fixture *f = *state;
    f->opts.checkpoint_ms = 100;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) { /* never closes: only records count */
        struct tc_handles o;
        int bad = open_res(f, CACHE_OPEN_CREATE, &o) != KTH_OK;
        bad |= cache_resource_record_due(o.res) != -1; /* nothing written yet */
        bad |= tc_write_pattern(o.res, SEED, 0, 100000) != KTH_OK;
        int64_t wait = cache_resource_record_due(o.res);
        bad |= (wait <= 0 || wait > 100 * 1000000) << 1;
        for (int i = 0; i < 200 && wait > 0; i++) { /* at most 2 s */
            struct timespec tick = {0, 10 * 1000000L};
            nanosleep(&tick, NULL);
            wait = cache_resource_record_due(o.res);
        }
        bad |= (wait != -1) << 2;
        _exit(bad);
    }
    wait_child_ok(pid);
    struct tc_handles o;
    assert_int_equal(open_res(f, 0, &o), KTH_OK);
    assert_int_equal(o.info.present_bytes, 100000);
    tc_close_handles(&o);
}

static void test_close_records_what_was_written(void **state)
{
    struct fixture *f = *state;
    struct tc_handles o;
    assert_int_equal(open_res(f, CACHE_OPEN_CREATE, &o), KTH_OK);
    assert_int_equal(tc_write_pattern(o.res, SEED, 1000, 5000), KTH_OK);
    tc_close_handles(&o);
    assert_int_equal(open_res(f, 0, &o), KTH_OK);
    const storage_range want[] = {{1000, 5000}};
    assert_ranges(o.res, want, 1);
    assert_false(o.info.length_known);
    tc_close_handles(&o);
}

/* Writes a partial resource: [0, 100000) and [200000, 300000) of 400000, then closes. */
static void make_partial(struct fixture *f)
{
    struct tc_handles o;
    assert_int_equal(open_res(f, CACHE_OPEN_CREATE, &o), KTH_OK);
    assert_int_equal(cache_resource_set_length(o.res, 400000), KTH_OK);
    assert_int_equal(tc_write_pattern(o.res, SEED, 0, 100000), KTH_OK);
    assert_int_equal(tc_write_pattern(o.res, SEED, 200000, 300000), KTH_OK);
    tc_close_handles(&o);
}

static void test_missing_data_file_drops_the_claim(void **state)
{
    struct fixture *f = *state;
    make_partial(f);
    assert_int_equal(unlink(the_data_file(f->dir)), 0);
    struct tc_handles o;
    assert_int_equal(open_res(f, 0, &o), KTH_OK);
    assert_true(o.info.repaired);
    assert_int_equal(o.info.present_bytes, 0);
    kth_cache_stats stats;
    assert_int_equal(kth_cache_get_stats(o.cache, &stats), KTH_OK);
    assert_int_equal(stats.repaired, 1);
    assert_int_equal(stats.total_bytes, 0);
    /* The resource is usable: it fills and commits. */
    assert_int_equal(tc_write_pattern(o.res, SEED, 0, 400000), KTH_OK);
    assert_int_equal(cache_resource_commit(o.res, 400000), KTH_OK);
    tc_close_handles(&o);
    assert_int_equal(open_res(f, 0, &o), KTH_OK);
    assert_true(o.info.committed);
    assert_false(o.info.repaired);
    tc_close_handles(&o);
}

static void test_truncated_data_file_is_clipped_not_trusted(void **state)
{
    struct fixture *f = *state;
    make_partial(f);
    assert_int_equal(truncate(the_data_file(f->dir), 250000), 0);
    struct tc_handles o;
    assert_int_equal(open_res(f, 0, &o), KTH_OK);
    assert_true(o.info.repaired);
    /* [200000, 262144) is one checksummed piece (block_sums.h); cut short, it cannot be checked
     * any more and goes as well. */
    const storage_range want[] = {{0, 100000}};
    assert_ranges(o.res, want, 1);
    storage_resource *r = cache_resource_storage(o.res);
    assert_true(tc_present_bytes_match(r, SEED, NULL));
    storage_resource_unref(r);
    /* Fill it up and commit, then truncate the committed file: no longer complete. */
    assert_int_equal(tc_write_pattern(o.res, SEED, 0, 400000), KTH_OK);
    assert_int_equal(cache_resource_commit(o.res, 400000), KTH_OK);
    tc_close_handles(&o);
    assert_int_equal(truncate(the_data_file(f->dir), 120000), 0);
    assert_int_equal(open_res(f, 0, &o), KTH_OK);
    assert_true(o.info.repaired);
    assert_false(o.info.committed);
    assert_true(o.info.length_known);
    assert_int_equal(o.info.length, 400000);
    const storage_range want2[] = {{0, STORAGE_BLOCK_SIZE}}; /* the whole pieces left */
    assert_ranges(o.res, want2, 1);
    tc_close_handles(&o);
}

static void test_directory_in_place_of_data_file_gets_a_new_file(void **state)
{
    struct fixture *f = *state;
    make_partial(f);
    char path[4096];
    snprintf(path, sizeof path, "%s", the_data_file(f->dir));
    assert_int_equal(unlink(path), 0);
    assert_int_equal(mkdir(path, 0700), 0);
    struct tc_handles o;
    assert_int_equal(open_res(f, 0, &o), KTH_OK);
    assert_true(o.info.repaired);
    assert_int_equal(o.info.present_bytes, 0);
    assert_int_equal(tc_write_pattern(o.res, SEED, 0, 1000), KTH_OK);
    assert_int_equal(cache_resource_commit(o.res, 1000), KTH_OK);
    tc_close_handles(&o);
    assert_int_equal(open_res(f, 0, &o), KTH_OK);
    assert_true(o.info.committed);
    assert_int_equal(o.info.length, 1000);
    tc_close_handles(&o);
}

static void exec_sql(const char *dir, const char *sql)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/index.db", dir);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK)
        fprintf(stderr, "sql: %s\n", msg);
    sqlite3_free(msg);
    sqlite3_close(db);
    assert_int_equal(rc, SQLITE_OK);
}

static void test_malformed_or_tampered_rows_are_not_trusted(void **state)
{
    struct fixture *f = *state;
    make_partial(f);
    /* Ranges blob of the wrong size. */
    exec_sql(f->dir, "UPDATE resource SET ranges = x'0102'");
    struct tc_handles o;
    assert_int_equal(open_res(f, 0, &o), KTH_OK);
    assert_true(o.info.repaired);
    assert_int_equal(o.info.present_bytes, 0);
    assert_int_equal(tc_write_pattern(o.res, SEED, 0, 1000), KTH_OK);
    tc_close_handles(&o);
    /* A claim past the declared length. */
    exec_sql(f->dir, "UPDATE resource SET length = 10");
    assert_int_equal(open_res(f, 0, &o), KTH_OK);
    assert_true(o.info.repaired);
    assert_int_equal(o.info.present_bytes, 0);
    tc_close_handles(&o);
    /* A file name that escapes the data directory is never opened. */
    char victim[4096];
    free(test_write_pattern_file(f->dir, "victim", SEED, 5000));
    snprintf(victim, sizeof victim, "%s/victim", f->dir);
    exec_sql(f->dir, "UPDATE resource SET file = '../victim', ranges = NULL, length = 5000, "
                     "committed = 1, bytes = 5000");
    assert_int_equal(open_res(f, 0, &o), KTH_OK);
    assert_true(o.info.repaired);
    assert_false(o.info.committed);
    assert_int_equal(o.info.present_bytes, 0);
    assert_int_equal(tc_write_pattern(o.res, SEED + 1, 0, 100), KTH_OK);
    tc_close_handles(&o);
    struct stat sb;
    assert_int_equal(stat(victim, &sb), 0);
    assert_int_equal(sb.st_size, 5000); /* untouched */
}

static void test_orphan_files_never_block_and_gc_sweeps_them(void **state)
{
    struct fixture *f = *state;
    make_partial(f);
    char keep[4096];
    snprintf(keep, sizeof keep, "%s", the_data_file(f->dir));
    /* Orphans of our shape (one in an existing fan-out dir, one in a new one) and a stranger. */
    const char *hex64 = "ab00000000000000000000000000000000000000000000000000000000000000";
    char p[4096];
    snprintf(p, sizeof p, "%s/data/ab", f->dir);
    mkdir(p, 0700);
    snprintf(p, sizeof p, "%s/data/ab/00", f->dir);
    mkdir(p, 0700);
    snprintf(p, sizeof p, "%s/data/ab/00/%s-0123456789abcdef", f->dir, hex64);
    FILE *fp = fopen(p, "w");
    assert_non_null(fp);
    fputs("stale", fp);
    fclose(fp);
    /* Same hash as the live file, another suffix. */
    memcpy(p, keep, sizeof p);
    memset(p + strlen(p) - 16, 'f', 16);
    fp = fopen(p, "w");
    assert_non_null(fp);
    fclose(fp);
    snprintf(p, sizeof p, "%s/data/notes.txt", f->dir);
    fp = fopen(p, "w");
    assert_non_null(fp);
    fclose(fp);

    struct tc_handles o;
    assert_int_equal(open_res(f, 0, &o), KTH_OK);
    assert_false(o.info.repaired);
    assert_int_equal(o.info.present_bytes, 200000);
    kth_cache_gc_result gc;
    assert_int_equal(kth_cache_gc(o.cache, &gc), KTH_OK);
    assert_int_equal(gc.orphan_files, 2);
    assert_int_equal(gc.evicted_assets, 0);
    struct stat sb;
    assert_int_equal(stat(keep, &sb), 0);
    assert_int_equal(stat(p, &sb), 0); /* not ours: left alone */
    tc_close_handles(&o);
}

static void test_damaged_index_is_rebuilt_and_its_files_become_orphans(void **state)
{
    struct fixture *f = *state;
    make_partial(f);
    char path[4096];
    snprintf(path, sizeof path, "%s/index.db", f->dir);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    for (int i = 0; i < 4096; i++)
        fputc(i * 7 + 3, fp);
    fclose(fp);
    snprintf(path, sizeof path, "%s/index.db-wal", f->dir);
    unlink(path);
    kth_cache *c = tc_open(&f->opts);
    assert_non_null(c);
    kth_cache_stats stats;
    assert_int_equal(kth_cache_get_stats(c, &stats), KTH_OK);
    assert_int_equal(stats.assets, 0);
    assert_int_equal(stats.total_bytes, 0);
    kth_cache_gc_result gc;
    assert_int_equal(kth_cache_gc(c, &gc), KTH_OK);
    assert_int_equal(gc.orphan_files, 1);
    assert_int_equal(count_data_files(f->dir), 0);
    kth_cache_unref(c);
}

/* Every name under the cache directory is one of ours: fixed names or hex. */
static int names_checked, bad_names;

static int check_name(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    if (ftw->level == 0)
        return 0;
    const char *n = path + ftw->base;
    names_checked++;
    static const char *const fixed[] = {"lock", "index.db", "index.db-wal", "index.db-shm", "data"};
    for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++)
        if (strcmp(n, fixed[i]) == 0)
            return 0;
    for (const char *q = n; *q; q++) {
        if (!((*q >= '0' && *q <= '9') || (*q >= 'a' && *q <= 'f') || *q == '-')) {
            fprintf(stderr, "unexpected name: %s\n", path);
            bad_names++;
            return 0;
        }
    }
    return 0;
}

static void test_file_names_never_contain_url_text(void **state)
{
    struct fixture *f = *state;
    char cache_dir[4096];
    snprintf(cache_dir, sizeof cache_dir, "%s/cache", f->dir);
    f->opts.dir = cache_dir;
    const char *url = "http://host/../../../etc/passwd?a=<x>|\"'*:\\\n%2e%2e/..%00/evil name";
    const char *keys[] = {"../../escape", "/absolute/path", "seg 1?.ts", "", "\xff\xfe"};
    kth_cache *c = tc_open(&f->opts);
    assert_non_null(c);
    cache_asset *a;
    assert_int_equal(cache_asset_open(c, url, &a, NULL, 0), KTH_OK);
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
        cache_resource *h;
        assert_int_equal(cache_resource_open(a, keys[i], CACHE_OPEN_CREATE, &h, NULL, NULL, 0),
                         KTH_OK);
        assert_int_equal(tc_write_pattern(h, SEED, 0, 100), KTH_OK);
        assert_int_equal(cache_resource_commit(h, 100), KTH_OK);
        cache_resource_close(h);
    }
    cache_asset_release(a);
    kth_cache_asset *list;
    size_t n;
    assert_int_equal(kth_cache_list(c, &list, &n), KTH_OK);
    assert_int_equal(n, 1);
    assert_string_equal(list[0].url, url); /* kept as text in the index, never as a path */
    assert_int_equal(list[0].resources, 5);
    assert_int_equal(list[0].complete, 5);
    kth_cache_list_free(list, n);
    kth_cache_unref(c);

    names_checked = bad_names = 0;
    nftw(cache_dir, check_name, 16, FTW_PHYS);
    assert_true(names_checked >= 5 + 5);
    assert_int_equal(bad_names, 0);
    /* Nothing was created beside the cache directory. */
    DIR *d = opendir(f->dir);
    struct dirent *e;
    int entries = 0;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            entries++;
    closedir(d);
    assert_int_equal(entries, 1);
}

static void test_invalidate_starts_over_and_fails_old_readers(void **state)
{
    struct fixture *f = *state;
    struct tc_handles o;
    assert_int_equal(open_res(f, CACHE_OPEN_CREATE, &o), KTH_OK);
    assert_int_equal(cache_resource_set_meta(o.res, "\"v1\"", NULL, NULL), KTH_OK);
    assert_int_equal(cache_resource_set_length(o.res, 50000), KTH_OK);
    assert_int_equal(tc_write_pattern(o.res, SEED, 0, 20000), KTH_OK);
    assert_int_equal(cache_resource_checkpoint(o.res), KTH_OK);
    storage_resource *old = cache_resource_storage(o.res);

    /* The server now says v2: recording it over v1's bytes is refused... */
    assert_int_equal(cache_resource_set_meta(o.res, "\"v2\"", NULL, NULL), KTH_ERR_CHANGED);
    assert_int_equal(cache_resource_set_meta(o.res, "\"v1\"", NULL, "audio/mpeg"), KTH_OK);
    /* ...so the writer invalidates and starts over. */
    assert_int_equal(cache_resource_invalidate(o.res), KTH_OK);
    assert_int_equal(storage_resource_state(old), STORAGE_FAILED);
    assert_int_equal(storage_resource_error(old, NULL, 0), KTH_ERR_CHANGED);
    storage_resource *fresh = cache_resource_storage(o.res);
    assert_ptr_not_equal(fresh, old);
    assert_int_equal(storage_resource_present_bytes(fresh), 0);
    assert_false(storage_resource_length(fresh, NULL));
    cache_resource_info info;
    assert_int_equal(cache_resource_get_info(o.res, &info), KTH_OK);
    assert_string_equal(info.etag, "");
    assert_string_equal(info.content_type, "");
    assert_int_equal(cache_resource_set_meta(o.res, "\"v2\"", NULL, NULL), KTH_OK);
    assert_int_equal(tc_write_pattern(o.res, SEED + 1, 0, 30000), KTH_OK);
    storage_resource_unref(fresh);
    storage_resource_unref(old);
    tc_close_handles(&o);

    assert_int_equal(count_data_files(f->dir), 1); /* the old file is gone */
    assert_int_equal(open_res(f, 0, &o), KTH_OK);
    assert_string_equal(o.info.etag, "\"v2\"");
    assert_false(o.info.length_known);
    const storage_range want[] = {{0, 30000}};
    assert_ranges(o.res, want, 1);
    storage_resource *r = cache_resource_storage(o.res);
    assert_true(tc_present_bytes_match(r, SEED + 1, NULL));
    storage_resource_unref(r);
    tc_close_handles(&o);
}

static void test_same_key_opened_twice_shares_one_resource(void **state)
{
    struct fixture *f = *state;
    struct tc_handles o;
    assert_int_equal(open_res(f, CACHE_OPEN_CREATE, &o), KTH_OK);
    cache_resource *again;
    cache_resource_info info;
    assert_int_equal(cache_resource_open(o.asset, KEY, 0, &again, &info, NULL, 0), KTH_OK);
    assert_ptr_equal(again, o.res);
    assert_false(info.created);
    storage_resource *a = cache_resource_storage(o.res), *b = cache_resource_storage(again);
    assert_ptr_equal(a, b);
    storage_resource_unref(a);
    storage_resource_unref(b);
    cache_resource_close(again);
    /* Still open through the first handle. */
    assert_int_equal(tc_write_pattern(o.res, SEED, 0, 10), KTH_OK);
    tc_close_handles(&o);
}

static void revive_keeps_bytes(kth_cache *c)
{
    cache_asset *a;
    cache_resource *h;
    assert_int_equal(cache_asset_open(c, URL, &a, NULL, 0), KTH_OK);
    assert_int_equal(cache_resource_open(a, KEY, CACHE_OPEN_CREATE, &h, NULL, NULL, 0), KTH_OK);
    assert_int_equal(cache_resource_set_length(h, 200000), KTH_OK);
    assert_int_equal(tc_write_pattern(h, SEED, 0, 70000), KTH_OK);
    storage_resource *old = cache_resource_storage(h);
    /* Nothing to do while the fetch is alive. */
    assert_int_equal(cache_resource_revive(h), KTH_OK);
    storage_resource *same = cache_resource_storage(h);
    assert_ptr_equal(same, old);
    storage_resource_unref(same);
    /* The fetch gives up: the resource fails, and a write is refused... */
    storage_resource_fail(old, KTH_ERR_NETWORK, "connection reset");
    assert_int_equal(tc_write_pattern(h, SEED, 70000, 80000), KTH_ERR_STATE);
    /* ...until it is revived: same bytes, ACTIVE again, the fetch can go on. */
    assert_int_equal(cache_resource_revive(h), KTH_OK);
    storage_resource *fresh = cache_resource_storage(h);
    assert_ptr_not_equal(fresh, old);
    assert_int_equal(storage_resource_state(old), STORAGE_FAILED);
    assert_int_equal(storage_resource_state(fresh), STORAGE_ACTIVE);
    uint64_t length = 0, present = 0;
    assert_true(storage_resource_length(fresh, &length));
    assert_int_equal(length, 200000);
    assert_true(tc_present_bytes_match(fresh, SEED, &present));
    assert_int_equal(present, 70000);
    assert_int_equal(tc_write_pattern(h, SEED, 70000, 200000), KTH_OK);
    assert_int_equal(cache_resource_commit(h, 200000), KTH_OK);
    assert_true(tc_present_bytes_match(fresh, SEED, &present));
    assert_int_equal(present, 200000);
    storage_resource_unref(fresh);
    storage_resource_unref(old);
    cache_resource_close(h);
    cache_asset_release(a);
}

static void test_revive_after_a_failed_fetch_keeps_the_bytes(void **state)
{
    struct fixture *f = *state;
    kth_cache *c = tc_open(&f->opts);
    assert_non_null(c);
    revive_keeps_bytes(c);
    kth_cache_unref(c);

    kth_cache_options o;
    kth_cache_options_init(&o);
    o.memory_only = true;
    o.max_bytes = 1 << 20;
    c = tc_open(&o);
    assert_non_null(c);
    revive_keeps_bytes(c);
    kth_cache_unref(c);
}

static void test_unknown_resource_without_create_is_not_found(void **state)
{
    struct fixture *f = *state;
    struct tc_handles o = {0}; /* tc_close_handles releases every member */
    char err[256] = "";
    o.cache = tc_open(&f->opts);
    assert_int_equal(cache_asset_open(o.cache, URL, &o.asset, NULL, 0), KTH_OK);
    assert_int_equal(cache_resource_open(o.asset, "nope", 0, &o.res, NULL, err, sizeof err),
                     KTH_ERR_NOT_FOUND);
    assert_null(o.res);
    assert_non_null(strstr(err, "nope"));
    tc_close_handles(&o);
}

/* A damaged row's file name (one that escapes the data directory, one longer than any name the
 * cache writes) is never deleted when its asset is removed: nothing it names, or names in part,
 * is touched. */
static void test_removal_never_deletes_what_a_damaged_row_names(void **state)
{
    struct fixture *f = *state;
    const char *long_name = "ab/cd/abcd000000000000000000000000000000000000000000000000000000000000"
                            "-0123456789abcdef0123456789abcdef0123456789abcdef";
    const char *names[] = {"../victim", long_name};
    for (size_t i = 0; i < 2; i++) {
        make_partial(f);
        /* What the name designates, whole or cut to a data file name's room. */
        char victim[4096], cut[4096], sql[512];
        snprintf(victim, sizeof victim, "%s/data/%s", f->dir, names[i]);
        snprintf(cut, sizeof cut, "%s/data/%.*s", f->dir, CACHE_FILE_MAX - 1, names[i]);
        snprintf(sql, sizeof sql, "%s/data/ab", f->dir);
        mkdir(sql, 0700);
        snprintf(sql, sizeof sql, "%s/data/ab/cd", f->dir);
        mkdir(sql, 0700);
        for (int k = 0; k < 2; k++) {
            FILE *fp = fopen(k ? cut : victim, "w");
            assert_non_null(fp);
            fputs("not the cache's", fp);
            fclose(fp);
        }
        snprintf(sql, sizeof sql, "UPDATE resource SET file = '%s'", names[i]);
        exec_sql(f->dir, sql);
        kth_cache *c = tc_open(&f->opts);
        assert_non_null(c);
        assert_int_equal(kth_cache_remove(c, URL), KTH_OK);
        kth_cache_unref(c);
        struct stat sb;
        assert_int_equal(stat(victim, &sb), 0);
        assert_int_equal(stat(cut, &sb), 0);
        unlink(victim);
        unlink(cut);
    }
}

/* An asset row whose key is longer than a key (a damaged index) is listed with an empty key,
 * never with its first 64 digits, which could name another asset. */
static void test_list_never_shows_a_key_cut_to_fit(void **state)
{
    struct fixture *f = *state;
    make_partial(f);
    exec_sql(f->dir, "UPDATE asset SET key = key || '00'");
    kth_cache *c = tc_open(&f->opts);
    assert_non_null(c);
    kth_cache_asset *list;
    size_t n;
    assert_int_equal(kth_cache_list(c, &list, &n), KTH_OK);
    assert_int_equal(n, 1);
    assert_string_equal(list[0].key, "");
    assert_string_equal(list[0].url, URL);
    kth_cache_list_free(list, n);
    kth_cache_unref(c);
}

/* A path of exactly `len` bytes below `base`, made of folders of at most 200 bytes (malloc'd;
 * nothing is created). */
static char *deep_path(const char *base, size_t len)
{
    size_t used = strlen(base);
    assert_true(len > used + 2);
    char *p = malloc(len + 1);
    assert_non_null(p);
    memcpy(p, base, used);
    while (used < len) {
        size_t part = len - used - 1 > 200 ? 200 : len - used - 1;
        if (len - used - 1 - part == 1)
            part--; /* never leave a lone '/' at the end */
        p[used++] = '/';
        memset(p + used, 'd', part);
        used += part;
    }
    p[len] = '\0';
    return p;
}

/* A cache directory too long for the index database is refused at open with KTH_ERR_LIMIT and
 * a sentence naming the limit; one just within it stores, reopens and removes a resource with
 * every path whole. */
static void test_cache_directory_too_long_for_the_index_is_a_limit_error(void **state)
{
    struct fixture *f = *state;
    /* The index's "-journal" path must fit SQLite's limit. */
    size_t most = (size_t)sqlite3_vfs_find(NULL)->mxPathname - strlen("/index.db-journal");
    char *too_deep = deep_path(f->dir, most + 1);
    f->opts.dir = too_deep;
    kth_cache *c = NULL;
    char err[1024] = "";
    assert_int_equal(kth_cache_open(&f->opts, &c, err, sizeof err), KTH_ERR_LIMIT);
    assert_null(c);
    assert_non_null(strstr(err, "SQLite takes at most"));

    char *deepest = deep_path(f->dir, most);
    f->opts.dir = deepest;
    for (int round = 0; round < 2; round++) {
        struct tc_handles o;
        assert_int_equal(open_res(f, CACHE_OPEN_CREATE, &o), KTH_OK);
        if (round == 0) {
            assert_int_equal(tc_write_pattern(o.res, SEED, 0, 5000), KTH_OK);
            assert_int_equal(cache_resource_commit(o.res, 5000), KTH_OK);
        } else {
            assert_true(o.info.committed);
            storage_resource *r = cache_resource_storage(o.res);
            uint64_t present = 0;
            assert_true(tc_present_bytes_match(r, SEED, &present));
            assert_int_equal(present, 5000);
            storage_resource_unref(r);
        }
        tc_close_handles(&o);
    }
    assert_int_equal(count_data_files(f->dir), 1);
    assert_int_equal(strlen(found_file), most + strlen("/data/") + CACHE_FILE_MAX - 9);
    c = tc_open(&f->opts);
    assert_non_null(c);
    assert_int_equal(kth_cache_remove(c, URL), KTH_OK);
    kth_cache_unref(c);
    assert_int_equal(count_data_files(f->dir), 0);
    free(deepest);
    free(too_deep);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_restore_ranges_only_on_a_fresh_file_resource, tc_setup,
                                        tc_teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_copies_state_length_and_ranges, tc_setup,
                                        tc_teardown),
        cmocka_unit_test_setup_teardown(test_memory_pool_bounds_its_members_and_gets_bytes_back,
                                        tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_committed_resource_reopens_complete_with_its_metadata,
                                        tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(
            test_partial_resource_reopens_with_exactly_the_checkpointed_ranges, tc_setup,
            tc_teardown),
        cmocka_unit_test_setup_teardown(test_a_paused_writer_records_once_the_interval_has_passed,
                                        tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_close_records_what_was_written, tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_missing_data_file_drops_the_claim, tc_setup,
                                        tc_teardown),
        cmocka_unit_test_setup_teardown(test_truncated_data_file_is_clipped_not_trusted, tc_setup,
                                        tc_teardown),
        cmocka_unit_test_setup_teardown(test_directory_in_place_of_data_file_gets_a_new_file,
                                        tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_malformed_or_tampered_rows_are_not_trusted, tc_setup,
                                        tc_teardown),
        cmocka_unit_test_setup_teardown(test_orphan_files_never_block_and_gc_sweeps_them, tc_setup,
                                        tc_teardown),
        cmocka_unit_test_setup_teardown(test_damaged_index_is_rebuilt_and_its_files_become_orphans,
                                        tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_file_names_never_contain_url_text, tc_setup,
                                        tc_teardown),
        cmocka_unit_test_setup_teardown(test_invalidate_starts_over_and_fails_old_readers, tc_setup,
                                        tc_teardown),
        cmocka_unit_test_setup_teardown(test_same_key_opened_twice_shares_one_resource, tc_setup,
                                        tc_teardown),
        cmocka_unit_test_setup_teardown(test_revive_after_a_failed_fetch_keeps_the_bytes, tc_setup,
                                        tc_teardown),
        cmocka_unit_test_setup_teardown(test_unknown_resource_without_create_is_not_found, tc_setup,
                                        tc_teardown),
        cmocka_unit_test_setup_teardown(test_removal_never_deletes_what_a_damaged_row_names,
                                        tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_list_never_shows_a_key_cut_to_fit, tc_setup,
                                        tc_teardown),
        cmocka_unit_test_setup_teardown(
            test_cache_directory_too_long_for_the_index_is_a_limit_error, tc_setup, tc_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
