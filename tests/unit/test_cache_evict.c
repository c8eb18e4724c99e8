/*
 * test_cache_evict.c — size management: LRU eviction to the budget, leases and pins that protect
 * assets (and the tiny-budget case where the playing asset must keep its bytes), removal, the
 * listing and stats the `kithara cache` command shows, and the memory-only bound.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "test_cache_support.h"

static const char *url_of(int i)
{
    static char buf[8][64];
    snprintf(buf[i % 8], sizeof buf[0], "https://media.example/track-%d.mp3", i);
    return buf[i % 8];
}

/* Leases asset i, stores one committed resource of `size` bytes, releases it. */
static void store(kth_cache *c, int i, uint64_t size)
{
    cache_asset *a;
    cache_resource *h;
    assert_int_equal(cache_asset_open(c, url_of(i), &a, NULL, 0), KTH_OK);
    assert_int_equal(cache_resource_open(a, "body", CACHE_OPEN_CREATE, &h, NULL, NULL, 0), KTH_OK);
    assert_int_equal(tc_write_pattern(h, (uint32_t)i, 0, size), KTH_OK);
    assert_int_equal(cache_resource_commit(h, size), KTH_OK);
    cache_resource_close(h);
    cache_asset_release(a);
}

static bool is_cached(kth_cache *c, int i)
{
    kth_cache_asset *list;
    size_t n;
    assert_int_equal(kth_cache_list(c, &list, &n), KTH_OK);
    bool found = false;
    for (size_t k = 0; k < n; k++)
        if (strcmp(list[k].url, url_of(i)) == 0 && list[k].bytes > 0)
            found = true;
    kth_cache_list_free(list, n);
    return found;
}

static void touch(kth_cache *c, int i)
{
    cache_asset *a;
    assert_int_equal(cache_asset_open(c, url_of(i), &a, NULL, 0), KTH_OK);
    cache_asset_release(a);
}

static void test_lru_evicts_least_recently_used_first_down_to_budget(void **state)
{
    struct fixture *f = *state;
    f->opts.max_bytes = 1000000;
    kth_cache *c = tc_open(&f->opts);
    store(c, 0, 300000);
    store(c, 1, 300000);
    store(c, 2, 300000);
    touch(c, 0); /* 0 is now the most recently used */
    kth_cache_stats s;
    assert_int_equal(kth_cache_get_stats(c, &s), KTH_OK);
    assert_int_equal(s.total_bytes, 900000);
    assert_int_equal(s.evicted_assets, 0);

    store(c, 3, 300000); /* 1.2 MB: the oldest unleased (1) goes */
    assert_true(is_cached(c, 0));
    assert_false(is_cached(c, 1));
    assert_true(is_cached(c, 2));
    assert_true(is_cached(c, 3));
    assert_int_equal(kth_cache_get_stats(c, &s), KTH_OK);
    assert_int_equal(s.total_bytes, 900000);
    assert_int_equal(s.evicted_assets, 1);
    assert_int_equal(s.evicted_bytes, 300000);
    assert_int_equal(s.over_budget, 0);
    kth_cache_unref(c);

    /* The order and the sizes survive a restart. */
    c = tc_open(&f->opts);
    assert_int_equal(kth_cache_get_stats(c, &s), KTH_OK);
    assert_int_equal(s.total_bytes, 900000);
    store(c, 4, 300000); /* evicts 2, the oldest now */
    assert_false(is_cached(c, 2));
    assert_true(is_cached(c, 0));
    assert_true(is_cached(c, 3));
    assert_true(is_cached(c, 4));
    kth_cache_unref(c);
}

static void test_leased_asset_is_never_evicted(void **state)
{
    struct fixture *f = *state;
    f->opts.max_bytes = 500000;
    kth_cache *c = tc_open(&f->opts);
    store(c, 0, 300000);
    cache_asset *held;
    assert_int_equal(cache_asset_open(c, url_of(0), &held, NULL, 0), KTH_OK);
    store(c, 1, 300000); /* over budget: 0 is leased although older, so 1 goes */
    assert_true(is_cached(c, 0));
    assert_false(is_cached(c, 1));
    assert_int_equal(kth_cache_remove(c, url_of(0)), KTH_ERR_BUSY);
    cache_asset_release(held);
    kth_cache_unref(c);
}

static void test_tiny_budget_keeps_the_playing_asset_and_reports_the_excess(void **state)
{
    struct fixture *f = *state;
    f->opts.max_bytes = 1000;
    f->opts.checkpoint_bytes = 256 * 1024; /* every checkpoint runs an eviction pass */
    kth_cache *c = tc_open(&f->opts);
    store(c, 1, 5000); /* over budget at once and unleased: evicted */
    assert_false(is_cached(c, 1));
    cache_asset *a;
    cache_resource *h;
    assert_int_equal(cache_asset_open(c, url_of(0), &a, NULL, 0), KTH_OK);
    assert_int_equal(cache_resource_open(a, "body", CACHE_OPEN_CREATE, &h, NULL, NULL, 0), KTH_OK);
    storage_resource *r = cache_resource_storage(h);
    enum { SIZE = 3 << 20, STEP = 64 * 1024 };
    for (uint64_t off = 0; off < SIZE; off += STEP) {
        assert_int_equal(tc_write_pattern(h, 0, off, off + STEP), KTH_OK);
        /* Nothing the player has is taken away: no refetch loop. */
        assert_int_equal(storage_resource_present_bytes(r), off + STEP);
    }
    assert_int_equal(cache_resource_commit(h, SIZE), KTH_OK);
    kth_cache_stats s;
    assert_int_equal(kth_cache_get_stats(c, &s), KTH_OK);
    assert_int_equal(s.total_bytes, SIZE);
    assert_int_equal(s.over_budget, SIZE - 1000);
    assert_int_equal(s.in_use_bytes, SIZE);
    assert_int_equal(s.leased_assets, 1);
    uint64_t present;
    assert_true(tc_present_bytes_match(r, 0, &present));
    assert_int_equal(present, SIZE);
    storage_resource_unref(r);
    cache_resource_close(h);
    cache_asset_release(a); /* no longer in use: now it goes */
    assert_int_equal(kth_cache_get_stats(c, &s), KTH_OK);
    assert_int_equal(s.total_bytes, 0);
    assert_int_equal(s.over_budget, 0);
    kth_cache_unref(c);
}

static void test_pinned_asset_survives_gc_across_restarts(void **state)
{
    struct fixture *f = *state;
    kth_cache *c = tc_open(&f->opts);
    store(c, 0, 10000);
    store(c, 1, 10000);
    assert_int_equal(kth_cache_pin(c, url_of(0), true), KTH_OK);
    assert_int_equal(kth_cache_pin(c, "https://unknown.example/", true), KTH_ERR_NOT_FOUND);
    kth_cache_unref(c);

    f->opts.max_bytes = 1;
    c = tc_open(&f->opts);
    kth_cache_gc_result gc;
    assert_int_equal(kth_cache_gc(c, &gc), KTH_OK);
    assert_int_equal(gc.evicted_assets, 1);
    assert_int_equal(gc.evicted_bytes, 10000);
    assert_true(is_cached(c, 0));
    assert_false(is_cached(c, 1));
    kth_cache_stats s;
    assert_int_equal(kth_cache_get_stats(c, &s), KTH_OK);
    assert_int_equal(s.in_use_bytes, 10000);
    kth_cache_asset *list;
    size_t n;
    assert_int_equal(kth_cache_list(c, &list, &n), KTH_OK);
    assert_int_equal(n, 1);
    assert_true(list[0].pinned);
    kth_cache_list_free(list, n);
    /* Unpinned over the budget: evicted at once, before any gc. */
    assert_int_equal(kth_cache_pin(c, url_of(0), false), KTH_OK);
    assert_false(is_cached(c, 0));
    assert_int_equal(kth_cache_gc(c, &gc), KTH_OK);
    assert_int_equal(gc.evicted_assets, 0);
    kth_cache_unref(c);
}

static int data_files;

static int count_file(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)ftw;
    if (flag == FTW_F && strstr(path, "/data/"))
        data_files++;
    return 0;
}

static void test_remove_by_url_or_key_deletes_the_files(void **state)
{
    struct fixture *f = *state;
    kth_cache *c = tc_open(&f->opts);
    store(c, 0, 1000);
    store(c, 1, 1000);
    kth_cache_asset *list;
    size_t n;
    assert_int_equal(kth_cache_list(c, &list, &n), KTH_OK);
    assert_int_equal(n, 2);
    char key1[65];
    assert_string_equal(list[0].url, url_of(1)); /* most recent first */
    memcpy(key1, list[0].key, sizeof key1);
    kth_cache_list_free(list, n);

    assert_int_equal(kth_cache_remove(c, url_of(0)), KTH_OK);
    assert_int_equal(kth_cache_remove(c, key1), KTH_OK);
    assert_int_equal(kth_cache_remove(c, url_of(0)), KTH_ERR_NOT_FOUND);
    char err[256];
    kth_cache_last_error(c, err, sizeof err);
    assert_non_null(strstr(err, url_of(0)));
    kth_cache_stats s;
    assert_int_equal(kth_cache_get_stats(c, &s), KTH_OK);
    assert_int_equal(s.assets, 0);
    assert_int_equal(s.total_bytes, 0);
    data_files = 0;
    nftw(f->dir, count_file, 16, FTW_PHYS);
    assert_int_equal(data_files, 0);
    kth_cache_unref(c);
}

static void test_list_reports_sizes_completion_and_recency(void **state)
{
    struct fixture *f = *state;
    kth_cache *c = tc_open(&f->opts);
    cache_asset *a;
    cache_resource *h;
    assert_int_equal(cache_asset_open(c, url_of(0), &a, NULL, 0), KTH_OK);
    assert_int_equal(cache_resource_open(a, "playlist", CACHE_OPEN_CREATE, &h, NULL, NULL, 0),
                     KTH_OK);
    assert_int_equal(tc_write_pattern(h, 0, 0, 1000), KTH_OK);
    assert_int_equal(cache_resource_commit(h, 1000), KTH_OK);
    cache_resource_close(h);
    assert_int_equal(cache_resource_open(a, "segment", CACHE_OPEN_CREATE, &h, NULL, NULL, 0),
                     KTH_OK);
    assert_int_equal(cache_resource_set_length(h, 2000), KTH_OK);
    assert_int_equal(tc_write_pattern(h, 0, 0, 500), KTH_OK);
    cache_resource_close(h);
    cache_asset_release(a);

    assert_int_equal(cache_asset_open(c, url_of(1), &a, NULL, 0), KTH_OK);
    assert_int_equal(cache_resource_open(a, "body", CACHE_OPEN_CREATE, &h, NULL, NULL, 0), KTH_OK);
    assert_int_equal(tc_write_pattern(h, 0, 0, 700), KTH_OK);
    cache_resource_close(h);
    /* Still leased while listing. */
    kth_cache_asset *list;
    size_t n;
    assert_int_equal(kth_cache_list(c, &list, &n), KTH_OK);
    assert_int_equal(n, 2);
    assert_string_equal(list[0].url, url_of(1));
    assert_true(list[0].leased);
    assert_int_equal(list[0].bytes, 700);
    assert_false(list[0].lengths_known);
    assert_int_equal(list[0].complete, 0);
    assert_string_equal(list[1].url, url_of(0));
    assert_false(list[1].leased);
    assert_int_equal(list[1].bytes, 1500);
    assert_true(list[1].lengths_known);
    assert_int_equal(list[1].known_length, 3000);
    assert_int_equal(list[1].resources, 2);
    assert_int_equal(list[1].complete, 1);
    assert_true(list[0].last_use_ms > list[1].last_use_ms);
    assert_int_equal(strlen(list[0].key), 64);
    kth_cache_list_free(list, n);
    cache_asset_release(a);
    kth_cache_stats s;
    assert_int_equal(kth_cache_get_stats(c, &s), KTH_OK);
    assert_int_equal(s.total_bytes, 2200);
    assert_int_equal(s.resources, 3);
    assert_int_equal(s.budget_bytes, KTH_CACHE_DEFAULT_BUDGET);
    kth_cache_unref(c);
}

static void test_gc_drops_assets_that_stored_nothing(void **state)
{
    struct fixture *f = *state;
    kth_cache *c = tc_open(&f->opts);
    touch(c, 0);
    store(c, 1, 10);
    kth_cache_stats s;
    assert_int_equal(kth_cache_get_stats(c, &s), KTH_OK);
    assert_int_equal(s.assets, 2);
    assert_int_equal(kth_cache_gc(c, NULL), KTH_OK);
    assert_int_equal(kth_cache_get_stats(c, &s), KTH_OK);
    assert_int_equal(s.assets, 1);
    kth_cache_unref(c);
}

static void test_memory_only_mode_honours_its_bound(void **state)
{
    (void)state;
    enum { BOUND = 1 << 20, SIZE = 300000 };
    kth_cache_options o;
    kth_cache_options_init(&o);
    o.memory_only = true;
    o.max_bytes = BOUND;
    kth_cache *c = tc_open(&o);
    kth_cache_stats s;
    for (int i = 0; i < 10; i++) {
        store(c, i, SIZE);
        assert_int_equal(kth_cache_get_stats(c, &s), KTH_OK);
        assert_true(s.total_bytes <= BOUND);
        assert_true(s.memory_in_use <= BOUND);
        assert_true(is_cached(c, i));
    }
    assert_true(s.evicted_assets >= 7);
    assert_false(is_cached(c, 0));

    /* One leased asset wants more than the bound: it may fill it, never pass it. */
    cache_asset *a;
    cache_resource *h;
    assert_int_equal(cache_asset_open(c, "https://media.example/long.mp3", &a, NULL, 0), KTH_OK);
    assert_int_equal(cache_resource_open(a, "body", CACHE_OPEN_CREATE, &h, NULL, NULL, 0), KTH_OK);
    kth_status st = KTH_OK;
    uint64_t off = 0;
    while (off < 2 * BOUND && (st = tc_write_pattern(h, 9, off, off + 65536)) == KTH_OK)
        off += 65536;
    assert_int_equal(st, KTH_ERR_LIMIT);
    assert_int_equal(off, BOUND);
    assert_int_equal(kth_cache_get_stats(c, &s), KTH_OK);
    assert_int_equal(s.memory_in_use, BOUND);
    /* The room came from the unleased assets, all gone now. */
    for (int i = 0; i < 10; i++)
        assert_false(is_cached(c, i));
    char err[256];
    assert_true(kth_cache_last_error(c, err, sizeof err) > 0);
    storage_resource *r = cache_resource_storage(h);
    uint64_t present;
    assert_true(tc_present_bytes_match(r, 9, &present));
    assert_int_equal(present, BOUND);
    storage_resource_unref(r);
    cache_resource_close(h);
    cache_asset_release(a);
    kth_cache_unref(c);
}

static uint64_t data_bytes_sum;

static int add_file_size(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)path;
    (void)ftw;
    if (flag == FTW_F)
        data_bytes_sum += (uint64_t)sb->st_size;
    return 0;
}

/* Bytes the data files under the cache directory hold now. */
static uint64_t data_bytes(const char *dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/data", dir);
    data_bytes_sum = 0;
    assert_int_equal(nftw(path, add_file_size, 16, FTW_PHYS), 0);
    return data_bytes_sum;
}

static void test_the_budget_holds_between_checkpoints(void **state)
{
    struct fixture *f = *state;
    f->opts.max_bytes = 1000000; /* and no checkpoint before the commit */
    kth_cache *c = tc_open(&f->opts);
    store(c, 0, 300000);
    store(c, 1, 300000);
    store(c, 2, 300000);
    cache_asset *a;
    cache_resource *h;
    assert_int_equal(cache_asset_open(c, url_of(3), &a, NULL, 0), KTH_OK);
    assert_int_equal(cache_resource_open(a, "body", CACHE_OPEN_CREATE, &h, NULL, NULL, 0), KTH_OK);
    enum { SIZE = 600000, STEP = 20000 };
    for (uint64_t off = 0; off < SIZE; off += STEP) {
        assert_int_equal(tc_write_pattern(h, 3, off, off + STEP), KTH_OK);
        /* The new bytes are not recorded yet, yet older assets make room for them at once. */
        assert_true(data_bytes(f->dir) <= f->opts.max_bytes);
    }
    assert_false(is_cached(c, 0));
    assert_false(is_cached(c, 1));
    assert_true(is_cached(c, 2));
    assert_int_equal(cache_resource_commit(h, SIZE), KTH_OK);
    kth_cache_stats s;
    assert_int_equal(kth_cache_get_stats(c, &s), KTH_OK);
    assert_int_equal(s.total_bytes, 900000);
    assert_int_equal(s.evicted_assets, 2);
    cache_resource_close(h);
    cache_asset_release(a);
    assert_true(is_cached(c, 2));
    assert_true(is_cached(c, 3));
    kth_cache_unref(c);
}

/* Counts what news the handle's writes bring through one marker. */
struct budget_news {
    atomic_uint_fast64_t seen;
    int over, within;
    kth_event last;
};

static void write_and_listen(cache_resource *h, uint64_t start, uint64_t end, struct budget_news *n)
{
    for (uint64_t off = start; off < end; off += 10000) {
        uint64_t to = off + 10000 < end ? off + 10000 : end;
        assert_int_equal(tc_write_pattern(h, 5, off, to), KTH_OK);
        kth_event ev;
        kth_event_kind k = cache_resource_budget_news(h, &n->seen, &ev);
        if (k == KTH_EVENT_NONE)
            continue;
        assert_int_equal(ev.kind, k);
        n->over += k == KTH_EVENT_CACHE_OVER_BUDGET;
        n->within += k == KTH_EVENT_CACHE_WITHIN_BUDGET;
        n->last = ev;
    }
}

static void test_a_cache_full_of_bytes_in_use_says_so_once_and_again_when_back(void **state)
{
    struct fixture *f = *state;
    f->opts.max_bytes = 1000000;
    kth_cache *c = tc_open(&f->opts);
    store(c, 0, 300000);
    assert_int_equal(kth_cache_pin(c, url_of(0), true), KTH_OK);
    cache_asset *a;
    cache_resource *h;
    assert_int_equal(cache_asset_open(c, url_of(5), &a, NULL, 0), KTH_OK);
    assert_int_equal(cache_resource_open(a, "body", CACHE_OPEN_CREATE, &h, NULL, NULL, 0), KTH_OK);
    struct budget_news n = {.seen = 0};
    write_and_listen(h, 0, 650000, &n); /* 950 kB: within */
    assert_int_equal(n.over + n.within, 0);
    /* Past the budget with a pinned and a leased asset only: told once, however long it grows
     * (a pass runs again after each further step of writing, and finds the same). */
    write_and_listen(h, 650000, 4000000, &n);
    assert_int_equal(n.over, 1);
    assert_int_equal(n.within, 0);
    assert_int_equal(n.last.kind, KTH_EVENT_CACHE_OVER_BUDGET);
    assert_int_equal(n.last.payload.cache.budget, 1000000);
    assert_true(n.last.payload.cache.bytes > 1000000);
    assert_true(n.last.payload.cache.bytes <= 300000 + 4000000);
    assert_non_null(strstr(n.last.text, "over its budget"));
    assert_true(is_cached(c, 0));
    /* A marker that starts now hears of the episode too. */
    struct budget_news late = {.seen = 0};
    write_and_listen(h, 4000000, 4010000, &late);
    assert_int_equal(late.over, 1);

    /* Unpinned, the old asset goes at once; still over: the writer alone passes the budget. */
    assert_int_equal(kth_cache_pin(c, url_of(0), false), KTH_OK);
    assert_false(is_cached(c, 0));
    assert_int_equal(cache_resource_commit(h, 4010000), KTH_OK);
    cache_resource_close(h);
    cache_asset_release(a); /* no longer in use: evicted, the cache is back within */
    assert_false(is_cached(c, 5));

    /* The next write of a marker told "over" hears "within", once; a fresh marker nothing. */
    assert_int_equal(cache_asset_open(c, url_of(6), &a, NULL, 0), KTH_OK);
    assert_int_equal(cache_resource_open(a, "body", CACHE_OPEN_CREATE, &h, NULL, NULL, 0), KTH_OK);
    struct budget_news fresh = {.seen = 0};
    write_and_listen(h, 0, 20000, &n);
    write_and_listen(h, 20000, 40000, &fresh);
    assert_int_equal(n.over, 1);
    assert_int_equal(n.within, 1);
    assert_int_equal(n.last.kind, KTH_EVENT_CACHE_WITHIN_BUDGET);
    assert_true(n.last.payload.cache.bytes <= 1000000);
    assert_int_equal(fresh.over + fresh.within, 0);
    cache_resource_close(h);
    cache_asset_release(a);
    kth_cache_unref(c);
}

/* One resource of a leased asset goes with its bytes; one that is open stays. */
static void drop_one_resource(kth_cache *c, const char *dir)
{
    cache_asset *a;
    cache_resource *h, *g;
    assert_int_equal(cache_asset_open(c, url_of(7), &a, NULL, 0), KTH_OK);
    assert_int_equal(cache_resource_open(a, "seg1", CACHE_OPEN_CREATE, &h, NULL, NULL, 0), KTH_OK);
    assert_int_equal(tc_write_pattern(h, 1, 0, 40000), KTH_OK);
    assert_int_equal(cache_resource_commit(h, 40000), KTH_OK);
    assert_int_equal(cache_resource_open(a, "seg2", CACHE_OPEN_CREATE, &g, NULL, NULL, 0), KTH_OK);
    assert_int_equal(tc_write_pattern(g, 2, 0, 30000), KTH_OK);
    assert_int_equal(cache_resource_commit(g, 30000), KTH_OK);
    assert_int_equal(cache_asset_drop_resource(a, "seg1"), KTH_ERR_BUSY); /* open */
    cache_resource_close(h);
    if (dir)
        assert_int_equal(data_bytes(dir), 70000);
    assert_int_equal(cache_asset_drop_resource(a, "seg1"), KTH_OK);
    assert_int_equal(cache_asset_drop_resource(a, "seg1"), KTH_ERR_NOT_FOUND);
    assert_int_equal(cache_asset_drop_resource(a, "never"), KTH_ERR_NOT_FOUND);
    kth_cache_stats s;
    assert_int_equal(kth_cache_get_stats(c, &s), KTH_OK);
    assert_int_equal(s.total_bytes, 30000);
    assert_int_equal(s.resources, 1);
    if (dir)
        assert_int_equal(data_bytes(dir), 30000);
    /* The other resource is intact; the dropped one opens empty. */
    storage_resource *r = cache_resource_storage(g);
    uint64_t present;
    assert_true(tc_present_bytes_match(r, 2, &present));
    assert_int_equal(present, 30000);
    storage_resource_unref(r);
    cache_resource_close(g);
    assert_int_equal(cache_resource_open(a, "seg1", CACHE_OPEN_CREATE, &h, NULL, NULL, 0), KTH_OK);
    r = cache_resource_storage(h);
    assert_int_equal(storage_resource_present_bytes(r), 0);
    storage_resource_unref(r);
    cache_resource_close(h);
    cache_asset_release(a);
}

static void test_one_resource_of_a_leased_asset_can_be_dropped(void **state)
{
    struct fixture *f = *state;
    kth_cache *c = tc_open(&f->opts);
    drop_one_resource(c, f->dir);
    kth_cache_unref(c);
    kth_cache_options o;
    kth_cache_options_init(&o);
    o.memory_only = true;
    o.max_bytes = 1 << 20;
    c = tc_open(&o);
    drop_one_resource(c, NULL);
    kth_cache_unref(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_lru_evicts_least_recently_used_first_down_to_budget,
                                        tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_leased_asset_is_never_evicted, tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(
            test_tiny_budget_keeps_the_playing_asset_and_reports_the_excess, tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_pinned_asset_survives_gc_across_restarts, tc_setup,
                                        tc_teardown),
        cmocka_unit_test_setup_teardown(test_remove_by_url_or_key_deletes_the_files, tc_setup,
                                        tc_teardown),
        cmocka_unit_test_setup_teardown(test_list_reports_sizes_completion_and_recency, tc_setup,
                                        tc_teardown),
        cmocka_unit_test_setup_teardown(test_gc_drops_assets_that_stored_nothing, tc_setup,
                                        tc_teardown),
        cmocka_unit_test_setup_teardown(test_memory_only_mode_honours_its_bound, tc_setup,
                                        tc_teardown),
        cmocka_unit_test_setup_teardown(test_the_budget_holds_between_checkpoints, tc_setup,
                                        tc_teardown),
        cmocka_unit_test_setup_teardown(test_one_resource_of_a_leased_asset_can_be_dropped,
                                        tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(
            test_a_cache_full_of_bytes_in_use_says_so_once_and_again_when_back, tc_setup,
            tc_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
