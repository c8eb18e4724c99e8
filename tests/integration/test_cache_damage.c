/*
 * test_cache_damage.c — bit rot in the cache is never played. A progressive file and an HLS
 * presentation are played once into the cache; then bytes of their data files are zeroed or
 * flipped on disk. Played again online, the output is byte-exact (the damaged blocks are fetched
 * anew); played offline, the read fails with KTH_ERR_CORRUPT and a message naming the resource
 * and the offset, instead of handing out wrong bytes.
 */
#include "test_hls_support.h"
#include "test_progressive_support.h"

#include <ftw.h>

#include "storage/block_sums.h"

/* ---- damaging data files ---- */

static const bytes *wanted_content;
static char found[4096];

static int match_content(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)ftw;
    if (flag != FTW_F || !strstr(path, "/data/") || (size_t)sb->st_size != wanted_content->len)
        return 0;
    bytes b = read_file(path);
    if (b.len == wanted_content->len && memcmp(b.data, wanted_content->data, b.len) == 0)
        snprintf(found, sizeof found, "%s", path);
    free(b.data);
    return 0;
}

/* The cache data file under dir holding exactly `content`. */
static const char *data_file_with(const char *dir, const bytes *content)
{
    wanted_content = content;
    found[0] = '\0';
    nftw(dir, match_content, 16, FTW_PHYS);
    if (!found[0])
        fail_msg("no cache data file holds the expected bytes");
    return found;
}

/* Flips the byte at `offset` of path (len 0), or zeroes [offset, offset + len). */
static void damage(const char *path, uint64_t offset, size_t len)
{
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    uint8_t buf[4096];
    size_t n = len ? len : 1;
    assert_true(n <= sizeof buf);
    assert_int_equal(pread(fd, buf, n, (off_t)offset), (ssize_t)n);
    for (size_t i = 0; i < n; i++)
        buf[i] = len ? 0 : (uint8_t)~buf[i];
    assert_int_equal(pwrite(fd, buf, n, (off_t)offset), (ssize_t)n);
    close(fd);
}

/* ---- a progressive file ---- */

#define SONG      "/song.flac"
#define SONG_SEED 71u
#define SONG_SIZE ((uint64_t)1000 * 1000)

static int progressive_setup(void **state)
{
    return env_setup(state, 0);
}

/* The song's bytes, as the cache holds them once complete. */
static bytes song_bytes(void)
{
    bytes b = {0};
    b.data = malloc(SONG_SIZE);
    assert_non_null(b.data);
    kts_synth_fill(SONG_SEED, 0, b.data, SONG_SIZE);
    b.len = SONG_SIZE;
    return b;
}

/* The first GET of path since the last reset that asked for a range, or fails the test. */
static uint64_t first_range_start(kts_server *srv, const char *path)
{
    for (unsigned n = 1; n < 100; n++) {
        kts_log_entry entry;
        if (kts_log_find(srv, path, n, &entry) != KTH_OK)
            break;
        unsigned long long start;
        if (sscanf(entry.range, "bytes=%llu-", &start) == 1)
            return start;
    }
    fail_msg("no range request for %s", path);
    return 0;
}

static void test_a_damaged_progressive_file_is_refetched_online_and_reported_offline(void **state)
{
    struct env *e = *state;
    kts_add_synth(e->srv, SONG, SONG_SIZE, SONG_SEED, NULL);
    kth_stream *s = open_stream(e, SONG, NULL, 0, 20000);
    read_all_checked(s, SONG_SEED, SONG_SIZE);
    kth_stream_close(s);

    /* A zeroed run and a flipped byte. */
    bytes song = song_bytes();
    char path[4096];
    snprintf(path, sizeof path, "%s", data_file_with(e->dir, &song));
    damage(path, 300000, 1000);
    damage(path, 700000, 0);

    kts_reset(e->srv);
    s = open_stream(e, SONG, NULL, 0, 20000);
    read_all_checked(s, SONG_SEED, SONG_SIZE);
    kth_stream_close(s);
    /* What was fetched again starts at the damaged block (not at the file's start). */
    uint64_t start = first_range_start(e->srv, SONG);
    assert_true(start >= 300000 / STORAGE_BLOCK_SIZE * STORAGE_BLOCK_SIZE && start <= 300000);

    /* Offline, the same damage is an error that names the file and the offset. */
    damage(path, 500000, 0);
    kth_cache_unref(e->cache);
    e->cache = open_cache(e->dir, true, 0);
    s = open_stream(e, SONG, NULL, 0, 20000);
    static uint8_t buf[128 * 1024];
    uint64_t pos = 0;
    int64_t n;
    while ((n = kth_stream_read(s, buf, sizeof buf)) > 0) {
        assert_int_equal(kts_synth_check(SONG_SEED, pos, buf, (size_t)n), (size_t)n);
        pos += (uint64_t)n;
    }
    assert_int_equal(n, KTH_ERR_CORRUPT);
    assert_int_equal(pos, 500000 / STORAGE_BLOCK_SIZE * STORAGE_BLOCK_SIZE);
    char detail[1024];
    kth_stream_last_error(s, detail, sizeof detail);
    char where[32];
    snprintf(where, sizeof where, "%llu", (unsigned long long)pos);
    if (!strstr(detail, SONG) || !strstr(detail, where) || !strstr(detail, "checksum"))
        fail_msg("the error does not name the file and the offset: %s", detail);
    kth_stream_close(s);
    free(song.data);
}

/* ---- an HLS presentation ---- */

#define VARIANT "ts/v64"
#define MEDIA   "/ts/v64/index.m3u8"

static void test_a_damaged_hls_segment_is_refetched_online_and_reported_offline(void **state)
{
    struct hls_env *e = *state;
    bytes want = expected_variant(VARIANT, NULL);
    kth_stream *s = hls_open(e, MEDIA, NULL, NULL);
    bytes got = read_to_end(s, false);
    assert_same_bytes(&got, &want);
    free(got.data);
    kth_stream_close(s);

    bytes seg2 = read_file(FIXTURES "/" VARIANT "/seg2.ts");
    bytes seg4 = read_file(FIXTURES "/" VARIANT "/seg4.ts");
    char path2[4096], path4[4096];
    snprintf(path2, sizeof path2, "%s", data_file_with(e->dir, &seg2));
    snprintf(path4, sizeof path4, "%s", data_file_with(e->dir, &seg4));
    damage(path2, 5000, 0);
    damage(path4, 100, 2000);

    kts_reset(e->srv);
    s = hls_open(e, MEDIA, NULL, NULL);
    got = read_to_end(s, false);
    assert_same_bytes(&got, &want);
    free(got.data);
    kth_stream_close(s);
    /* The two damaged segments were fetched again, and no other. */
    assert_int_equal(kts_request_count(e->srv, "/" VARIANT "/seg2.ts", "GET"), 1);
    assert_int_equal(kts_request_count(e->srv, "/" VARIANT "/seg4.ts", "GET"), 1);
    assert_int_equal(kts_request_count(e->srv, "/" VARIANT "/seg3.ts", "GET"), 0);

    /* Offline, a damaged segment is an error naming it and the offset. */
    damage(path2, 17000, 0);
    kth_cache_unref(e->cache);
    e->cache = hls_open_cache(e->dir, true);
    s = hls_open(e, MEDIA, NULL, NULL);
    uint8_t buf[20000];
    uint64_t pos = 0;
    int64_t n;
    while ((n = kth_stream_read(s, buf, sizeof buf)) > 0) {
        assert_true(pos + (uint64_t)n <= want.len);
        assert_memory_equal(buf, want.data + pos, (size_t)n);
        pos += (uint64_t)n;
    }
    assert_int_equal(n, KTH_ERR_CORRUPT);
    char detail[1024];
    kth_stream_last_error(s, detail, sizeof detail);
    if (!strstr(detail, "seg2.ts") || !strstr(detail, "offset") || !strstr(detail, "checksum"))
        fail_msg("the error does not name the segment and the offset: %s", detail);
    kth_stream_close(s);
    free(seg2.data);
    free(seg4.data);
    free(want.data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_a_damaged_progressive_file_is_refetched_online_and_reported_offline,
            progressive_setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_a_damaged_hls_segment_is_refetched_online_and_reported_offline, hls_setup,
            hls_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
