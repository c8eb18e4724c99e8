/*
 * test_cache_protected.c — the cache's own machinery in protected mode: a partial resource
 * resumes across a reopen with its bytes encrypted on disk; the block checksums (over the
 * ciphertext) still catch a damaged block, reported offline and refetched online; an index of
 * schema 2 is migrated to 3 and turning protection on deletes what it held in the clear; a
 * cache opened without its secret refuses its entries; and eviction works as before.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include "test_cache_support.h"

#define URL  "https://media.example/album/protected.flac"
#define KEY  "https://media.example/album/protected.flac"
#define SEED 31u
#define B    STORAGE_BLOCK_SIZE
/* Past STORAGE_TAG_MAX_LENGTH: no whole-object tag, so damage is the block checksums' to find
 * (a tagged object fails its tag as a whole instead: test_storage_cipher, test_cache_protect). */
#define SIZE (17 * B + 7)

static const uint8_t SECRET[KTH_CACHE_SECRET_SIZE] = "thirty-two bytes of cache secret";

/* Opens resource `url` of asset `url` through a cache with opts, offline or not. */
static void open_res(kth_cache_options opts, const char *url, bool offline, struct tc_handles *o)
{
    opts.offline = offline;
    assert_int_equal(tc_open_handles(&opts, url, url, CACHE_OPEN_CREATE, o, NULL, 0), KTH_OK);
}

static char data_file[4096];
static int data_files;

static int find_data_file(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)ftw;
    if (flag == FTW_F && S_ISREG(sb->st_mode) && strstr(path, "/data/")) {
        snprintf(data_file, sizeof data_file, "%s", path);
        data_files++;
    }
    return 0;
}

static int count_data_files(const char *dir)
{
    data_files = 0;
    data_file[0] = '\0';
    nftw(dir, find_data_file, 16, FTW_PHYS);
    return data_files;
}

static void test_a_partial_protected_resource_resumes_and_its_blocks_are_checked(void **state)
{
    struct fixture *f = *state;
    kth_cache_options opts = f->opts;
    opts.secret = SECRET;
    struct tc_handles o;
    open_res(opts, URL, false, &o);
    assert_int_equal(tc_write_pattern(o.res, SEED, 0, 2 * B + 100), KTH_OK);
    assert_int_equal(cache_resource_checkpoint(o.res), KTH_OK);
    tc_close_handles(&o);

    /* On disk: ciphertext, not the pattern. */
    assert_int_equal(count_data_files(f->dir), 1);
    uint8_t raw[4096], plain[4096];
    int fd = open(data_file, O_RDONLY);
    assert_int_equal(pread(fd, raw, sizeof raw, (off_t)B), (ssize_t)sizeof raw);
    close(fd);
    test_pattern_fill(SEED, B, plain, sizeof plain);
    assert_memory_not_equal(raw, plain, 64);

    /* Reopened: what was written, decrypted; the rest resumes. */
    open_res(opts, URL, false, &o);
    assert_int_equal(o.info.present_bytes, 2 * B + 100);
    assert_true(tc_present_bytes_match(o.r, SEED, NULL));
    assert_int_equal(tc_write_pattern(o.res, SEED, 2 * B + 100, SIZE), KTH_OK);
    assert_int_equal(cache_resource_commit(o.res, SIZE), KTH_OK);
    tc_close_handles(&o);

    /* A damaged block (ciphertext flipped on disk) is reported offline, never served. */
    fd = open(data_file, O_RDWR);
    assert_int_equal(pread(fd, raw, 1, (off_t)B + 10), 1);
    raw[0] ^= 0x40;
    assert_int_equal(pwrite(fd, raw, 1, (off_t)B + 10), 1);
    close(fd);
    open_res(opts, URL, true, &o);
    assert_true(o.info.committed);
    uint8_t buf[B];
    size_t got = 0;
    assert_int_equal(storage_resource_read_at(o.r, 0, buf, 100, &got), KTH_OK);
    test_pattern_fill(SEED, 0, plain, 100);
    assert_memory_equal(buf, plain, 100);
    assert_int_equal(storage_resource_read_at(o.r, B, buf, 100, &got), KTH_ERR_CORRUPT);
    tc_close_handles(&o);

    /* Online it is dropped and written again, then reads right. */
    open_res(opts, URL, false, &o);
    assert_int_equal(storage_resource_read_at(o.r, B, buf, 100, &got), KTH_ERR_RETRY);
    assert_int_equal(tc_write_pattern(o.res, SEED, B, 2 * B), KTH_OK);
    assert_int_equal(cache_resource_commit(o.res, SIZE), KTH_OK);
    uint64_t present = 0;
    assert_true(tc_present_bytes_match(o.r, SEED, &present));
    assert_int_equal(present, SIZE);
    tc_close_handles(&o);
}

static int user_version(const char *dir)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/index.db", dir);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int v = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

static void test_schema_2_migrates_and_protection_drops_clear_bytes(void **state)
{
    struct fixture *f = *state;
    struct tc_handles o;
    open_res(f->opts, URL, false, &o);
    assert_int_equal(tc_write_pattern(o.res, SEED, 0, 5000), KTH_OK);
    assert_int_equal(cache_resource_commit(o.res, 5000), KTH_OK);
    tc_close_handles(&o);
    assert_int_equal(count_data_files(f->dir), 1);

    /* Back to schema 2: no setting table. */
    char path[4200];
    snprintf(path, sizeof path, "%s/index.db", f->dir);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(db, "DROP TABLE setting; PRAGMA user_version = 2;", NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(user_version(f->dir), 2);

    /* And an orphan a crash left, in the clear. */
    char orphan[4400];
    snprintf(orphan, sizeof orphan, "%s/data/ab", f->dir);
    assert_true(mkdir(orphan, 0700) == 0 || errno == EEXIST);
    snprintf(orphan, sizeof orphan, "%s/data/ab/cd", f->dir);
    assert_true(mkdir(orphan, 0700) == 0 || errno == EEXIST);
    snprintf(orphan + strlen(orphan), sizeof orphan - strlen(orphan), "/abcd%060d-%016d", 0, 0);
    FILE *of = fopen(orphan, "w");
    assert_non_null(of);
    fputs("plaintext a crash left behind", of);
    fclose(of);
    assert_int_equal(count_data_files(f->dir), 2);

    /* Opened with a secret: migrated, and the clear asset is gone with its file, and the
     * orphan too. */
    kth_cache_options opts = f->opts;
    opts.secret = SECRET;
    kth_cache *c = tc_open(&opts);
    assert_non_null(c);
    assert_int_equal(user_version(f->dir), 4);
    kth_cache_asset *list = NULL;
    size_t count = 0;
    assert_int_equal(kth_cache_list(c, &list, &count), KTH_OK);
    assert_int_equal(count, 0);
    kth_cache_list_free(list, count);
    kth_cache_unref(c);
    assert_int_equal(count_data_files(f->dir), 0);

    /* Protected now: without the secret it opens, but its entries do not. */
    c = tc_open(&f->opts);
    assert_non_null(c);
    cache_asset *a = NULL;
    char err[256] = "";
    assert_int_equal(cache_asset_open(c, URL, &a, err, sizeof err), KTH_ERR_PROTECTED);
    assert_non_null(strstr(err, "protected"));
    char last[256];
    kth_cache_last_error(c, last, sizeof last);
    assert_string_equal(last, err);
    kth_cache_unref(c);
}

static void test_eviction_works_in_protected_mode(void **state)
{
    struct fixture *f = *state;
    kth_cache_options opts = f->opts;
    opts.secret = SECRET;
    opts.max_bytes = 300000;
    kth_cache *c = tc_open(&opts);
    assert_non_null(c);
    const char *urls[] = {"https://media.example/one.mp3", "https://media.example/two.mp3"};
    for (int i = 0; i < 2; i++) {
        cache_asset *a = NULL;
        cache_resource *res = NULL;
        assert_int_equal(cache_asset_open(c, urls[i], &a, NULL, 0), KTH_OK);
        assert_int_equal(cache_resource_open(a, urls[i], CACHE_OPEN_CREATE, &res, NULL, NULL, 0),
                         KTH_OK);
        assert_int_equal(tc_write_pattern(res, SEED, 0, 200000), KTH_OK);
        assert_int_equal(cache_resource_commit(res, 200000), KTH_OK);
        cache_resource_close(res);
        cache_asset_release(a);
    }
    kth_cache_stats st;
    assert_int_equal(kth_cache_get_stats(c, &st), KTH_OK);
    assert_int_equal(st.evicted_assets, 1);
    assert_int_equal(st.assets, 1);
    kth_cache_unref(c);
    assert_int_equal(count_data_files(f->dir), 1);

    struct tc_handles o;
    open_res(opts, urls[1], true, &o);
    assert_true(o.info.committed);
    assert_true(tc_present_bytes_match(o.r, SEED, NULL));
    tc_close_handles(&o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_a_partial_protected_resource_resumes_and_its_blocks_are_checked, tc_setup,
            tc_teardown),
        cmocka_unit_test_setup_teardown(test_schema_2_migrates_and_protection_drops_clear_bytes,
                                        tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_eviction_works_in_protected_mode, tc_setup,
                                        tc_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
