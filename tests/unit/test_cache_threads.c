/*
 * test_cache_threads.c — the cache under concurrent use: writers leasing, writing and
 * checkpointing assets while another thread runs gc with a tiny budget (leased bytes must never
 * vanish), a reader and a writer sharing one resource through two opens of the same key, and
 * the one-writer claim: a second owner is refused and told, on another thread, when the claim
 * ends, whether the writer released it or closed without releasing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>

#include "platform/sync.h"
#include "test_cache_support.h"

enum { WORKERS = 4, ITERATIONS = 25, PIECE = 8192 };

static const char *const urls[] = {
    "https://media.example/a.mp3",
    "https://media.example/b.mp3",
    "https://media.example/c.mp3",
};

struct shared {
    kth_cache *cache;
    pthread_barrier_t start;
    atomic_int workers_done;
    atomic_int failures;
};

struct worker {
    struct shared *s;
    int index;
};

static bool piece_matches(storage_resource *r, uint32_t seed, uint64_t off, size_t n)
{
    uint8_t got[PIECE], want[PIECE];
    size_t k = 0;
    if (storage_resource_read_at(r, off, got, n, &k) != KTH_OK || k != n)
        return false;
    test_pattern_fill(seed, off, want, n);
    return memcmp(got, want, n) == 0;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct shared *s = w->s;
    char key[32];
    snprintf(key, sizeof key, "writer-%d", w->index);
    uint8_t buf[PIECE];
    pthread_barrier_wait(&s->start);
    for (int it = 0; it < ITERATIONS; it++) {
        cache_asset *a;
        cache_resource *h;
        if (cache_asset_open(s->cache, urls[(w->index + it) % 3], &a, NULL, 0) != KTH_OK) {
            atomic_fetch_add(&s->failures, 1);
            continue;
        }
        if (cache_resource_open(a, key, CACHE_OPEN_CREATE, &h, NULL, NULL, 0) != KTH_OK) {
            atomic_fetch_add(&s->failures, 1);
            cache_asset_release(a);
            continue;
        }
        storage_resource *r = cache_resource_storage(h);
        uint64_t off = (uint64_t)it * PIECE;
        test_pattern_fill((uint32_t)w->index, off, buf, PIECE);
        if (cache_resource_write(h, off, buf, PIECE) != KTH_OK ||
            cache_resource_checkpoint(h) != KTH_OK)
            atomic_fetch_add(&s->failures, 1);
        /* gc runs all the time with a tiny budget: a leased asset keeps every byte. */
        if (!storage_resource_contains(r, off, off + PIECE) ||
            !piece_matches(r, (uint32_t)w->index, off, PIECE))
            atomic_fetch_add(&s->failures, 1);
        storage_resource_unref(r);
        cache_resource_close(h);
        cache_asset_release(a);
    }
    atomic_fetch_add(&s->workers_done, 1);
    return NULL;
}

static void *gc_main(void *arg)
{
    struct shared *s = arg;
    pthread_barrier_wait(&s->start);
    for (int n = 0; n < 100000 && atomic_load(&s->workers_done) < WORKERS; n++) {
        kth_cache_gc_result gc;
        kth_cache_stats stats;
        kth_cache_asset *list;
        size_t count;
        if (kth_cache_gc(s->cache, &gc) != KTH_OK ||
            kth_cache_get_stats(s->cache, &stats) != KTH_OK ||
            kth_cache_list(s->cache, &list, &count) != KTH_OK) {
            atomic_fetch_add(&s->failures, 1);
            continue;
        }
        kth_cache_list_free(list, count);
    }
    return NULL;
}

static void test_leased_bytes_survive_concurrent_gc(void **state)
{
    (void)state;
    char *dir = test_make_dir();
    kth_cache_options o = tc_options(dir);
    o.max_bytes = 16 * 1024;
    struct shared s = {0};
    s.cache = tc_open(&o);
    assert_non_null(s.cache);
    pthread_barrier_init(&s.start, NULL, WORKERS + 1);
    pthread_t threads[WORKERS + 1];
    struct worker workers[WORKERS];
    for (int i = 0; i < WORKERS; i++) {
        workers[i] = (struct worker){&s, i};
        assert_int_equal(pthread_create(&threads[i], NULL, worker_main, &workers[i]), 0);
    }
    assert_int_equal(pthread_create(&threads[WORKERS], NULL, gc_main, &s), 0);
    for (int i = 0; i <= WORKERS; i++)
        pthread_join(threads[i], NULL);
    pthread_barrier_destroy(&s.start);
    assert_int_equal(atomic_load(&s.failures), 0);
    kth_cache_stats stats;
    assert_int_equal(kth_cache_get_stats(s.cache, &stats), KTH_OK);
    assert_int_equal(stats.leased_assets, 0);
    assert_true(stats.evicted_assets > 0);
    assert_int_equal(kth_cache_gc(s.cache, NULL), KTH_OK);
    assert_int_equal(kth_cache_get_stats(s.cache, &stats), KTH_OK);
    assert_true(stats.total_bytes <= o.max_bytes);
    kth_cache_unref(s.cache);
    tc_remove_tree(dir);
}

/* A writer and a reader open the same key separately and meet on one storage resource. */
enum { SHARED_PIECES = 32 };

struct pair {
    kth_cache *cache;
    pthread_barrier_t opened;
    atomic_int failures;
    bool reader_saw_eof;
};

static cache_resource *open_shared(struct pair *p, cache_asset **a)
{
    cache_resource *h = NULL;
    if (cache_asset_open(p->cache, "https://media.example/shared.mp3", a, NULL, 0) != KTH_OK ||
        cache_resource_open(*a, "body", CACHE_OPEN_CREATE, &h, NULL, NULL, 0) != KTH_OK)
        atomic_fetch_add(&p->failures, 1);
    return h;
}

static void *pair_writer(void *arg)
{
    struct pair *p = arg;
    cache_asset *a = NULL;
    cache_resource *h = open_shared(p, &a);
    pthread_barrier_wait(&p->opened);
    uint8_t buf[PIECE];
    for (int i = 0; h && i < SHARED_PIECES; i++) {
        test_pattern_fill(5, (uint64_t)i * PIECE, buf, PIECE);
        if (cache_resource_write(h, (uint64_t)i * PIECE, buf, PIECE) != KTH_OK)
            atomic_fetch_add(&p->failures, 1);
    }
    if (h && cache_resource_commit(h, (uint64_t)SHARED_PIECES * PIECE) != KTH_OK)
        atomic_fetch_add(&p->failures, 1);
    cache_resource_close(h);
    cache_asset_release(a);
    return NULL;
}

static void *pair_reader(void *arg)
{
    struct pair *p = arg;
    cache_asset *a = NULL;
    cache_resource *h = open_shared(p, &a);
    pthread_barrier_wait(&p->opened);
    storage_resource *r = cache_resource_storage(h);
    for (int i = 0; r && i < SHARED_PIECES; i++) {
        uint64_t off = (uint64_t)i * PIECE;
        /* The deadline only guards against a hang. */
        storage_wait w = storage_resource_wait_range(r, off, off + PIECE,
                                                     platform_deadline_after_ms(20000), NULL, NULL);
        if (w != STORAGE_WAIT_READY || !piece_matches(r, 5, off, PIECE))
            atomic_fetch_add(&p->failures, 1);
    }
    uint64_t end = (uint64_t)SHARED_PIECES * PIECE;
    p->reader_saw_eof =
        r && storage_resource_wait_range(r, end, end + 1, platform_deadline_after_ms(20000), NULL,
                                         NULL) == STORAGE_WAIT_EOF;
    storage_resource_unref(r);
    cache_resource_close(h);
    cache_asset_release(a);
    return NULL;
}

static void test_reader_and_writer_share_one_resource(void **state)
{
    (void)state;
    char *dir = test_make_dir();
    kth_cache_options o = tc_options(dir);
    struct pair p = {0};
    p.cache = tc_open(&o);
    assert_non_null(p.cache);
    pthread_barrier_init(&p.opened, NULL, 2);
    pthread_t w, r;
    assert_int_equal(pthread_create(&r, NULL, pair_reader, &p), 0);
    assert_int_equal(pthread_create(&w, NULL, pair_writer, &p), 0);
    pthread_join(w, NULL);
    pthread_join(r, NULL);
    pthread_barrier_destroy(&p.opened);
    assert_int_equal(atomic_load(&p.failures), 0);
    assert_true(p.reader_saw_eof);
    kth_cache_stats stats;
    assert_int_equal(kth_cache_get_stats(p.cache, &stats), KTH_OK);
    assert_int_equal(stats.resources, 1);
    assert_int_equal(stats.total_bytes, SHARED_PIECES * PIECE);
    kth_cache_unref(p.cache);
    tc_remove_tree(dir);
}

/* A second owner waiting on another thread for the writer's claim to end. */
struct claimant {
    cache_resource *h;
    platform_cancel *released;
    pthread_barrier_t watching;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool ended;
    kth_status claim_after;
};

static void claimant_wake(void *arg)
{
    struct claimant *c = arg;
    pthread_mutex_lock(&c->lock);
    c->ended = true;
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->lock);
}

static void *claimant_main(void *arg)
{
    struct claimant *c = arg;
    platform_cancel_waker waker;
    bool added = platform_cancel_add_waker(c->released, &waker, claimant_wake, c);
    pthread_barrier_wait(&c->watching);
    struct timespec deadline; /* a guard against a hang only */
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 20;
    pthread_mutex_lock(&c->lock);
    while (added && !c->ended && pthread_cond_timedwait(&c->cond, &c->lock, &deadline) == 0)
        ;
    bool ended = c->ended;
    pthread_mutex_unlock(&c->lock);
    platform_cancel_remove_waker(&waker);
    c->claim_after = ended ? cache_resource_claim_writer(c->h, c, NULL) : KTH_ERR_TIMEOUT;
    return NULL;
}

static void test_one_writer_claim_is_refused_then_handed_over(void **state)
{
    (void)state;
    char *dir = test_make_dir();
    kth_cache_options o = tc_options(dir);
    kth_cache *cache = tc_open(&o);
    assert_non_null(cache);
    cache_asset *a1, *a2;
    assert_int_equal(cache_asset_open(cache, "https://media.example/x.m3u8", &a1, NULL, 0), KTH_OK);
    assert_int_equal(cache_asset_open(cache, "https://media.example/x.m3u8", &a2, NULL, 0), KTH_OK);
    cache_resource *h1, *h2;
    assert_int_equal(cache_resource_open(a1, "seg0.ts", CACHE_OPEN_CREATE, &h1, NULL, NULL, 0),
                     KTH_OK);
    assert_int_equal(cache_resource_open(a2, "seg0.ts", CACHE_OPEN_CREATE, &h2, NULL, NULL, 0),
                     KTH_OK);
    assert_ptr_equal(h1, h2); /* one handle per key: every opener sees the claim */
    assert_false(cache_resource_is_shared(NULL));
    assert_true(cache_resource_is_shared(h1));

    static int writer;
    assert_int_equal(cache_resource_claim_writer(h1, &writer, NULL), KTH_OK);
    assert_int_equal(cache_resource_claim_writer(h1, &writer, NULL), KTH_OK); /* kept */
    struct claimant c = {.h = h2};
    assert_int_equal(cache_resource_claim_writer(h2, &c, &c.released), KTH_ERR_BUSY);
    assert_non_null(c.released);
    cache_resource_release_writer(h2, &c); /* not its claim: no effect */
    assert_false(platform_cancel_is_cancelled(c.released));
    pthread_barrier_init(&c.watching, NULL, 2);
    pthread_mutex_init(&c.lock, NULL);
    pthread_cond_init(&c.cond, NULL);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, claimant_main, &c), 0);
    pthread_barrier_wait(&c.watching);
    /* The writer gives up: the waiting owner is woken and takes the resource over. */
    cache_resource_release_writer(h1, &writer);
    pthread_join(t, NULL);
    assert_true(c.ended);
    assert_int_equal(c.claim_after, KTH_OK);
    assert_int_equal(cache_resource_claim_writer(h1, &writer, NULL), KTH_ERR_BUSY);
    platform_cancel_unref(c.released);
    pthread_barrier_destroy(&c.watching);
    pthread_mutex_destroy(&c.lock);
    pthread_cond_destroy(&c.cond);

    /* The new writer completes it: nothing is left to write, and the claim ends with it. */
    platform_cancel *released = NULL;
    assert_int_equal(cache_resource_claim_writer(h1, &writer, &released), KTH_ERR_BUSY);
    assert_int_equal(tc_write_pattern(h2, 3, 0, 100), KTH_OK);
    assert_int_equal(cache_resource_commit(h2, 100), KTH_OK);
    cache_resource_release_writer(h2, &c);
    assert_true(platform_cancel_is_cancelled(released));
    platform_cancel_unref(released);
    assert_int_equal(cache_resource_claim_writer(h1, &writer, NULL), KTH_ERR_STATE);
    cache_resource_close(h1);
    cache_resource_close(h2);

    /* The last user closing a handle ends a claim left on it. */
    assert_int_equal(cache_resource_open(a1, "seg1.ts", CACHE_OPEN_CREATE, &h1, NULL, NULL, 0),
                     KTH_OK);
    assert_int_equal(cache_resource_open(a2, "seg1.ts", CACHE_OPEN_CREATE, &h2, NULL, NULL, 0),
                     KTH_OK);
    assert_int_equal(cache_resource_claim_writer(h1, &writer, NULL), KTH_OK);
    assert_int_equal(cache_resource_claim_writer(h2, &c, &released), KTH_ERR_BUSY);
    cache_resource_close(h2);
    assert_false(platform_cancel_is_cancelled(released));
    cache_resource_close(h1);
    assert_true(platform_cancel_is_cancelled(released));
    platform_cancel_unref(released);

    cache_asset_release(a1);
    cache_asset_release(a2);
    kth_cache_unref(cache);
    tc_remove_tree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_leased_bytes_survive_concurrent_gc),
        cmocka_unit_test(test_reader_and_writer_share_one_resource),
        cmocka_unit_test(test_one_writer_claim_is_refused_then_handed_over),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
