/*
 * test_cache_modes.c — who shares a cache directory (any number of processes and handles at
 * once, each other's leases respected; only turning protection on needs it alone), where the cache
 * lives by default, offline mode (hits serve, misses name what is missing, nothing is created) and
 * memory-only mode (no disk at all).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <signal.h>
#include <sys/wait.h>

#include "cache/cache_internal.h"
#include "test_cache_support.h"

#define URL     "https://media.example/show/master.m3u8"
#define SEGMENT "https://media.example/show/seg-001.ts"
#define KEYFILE "https://media.example/show/key.bin"

/* Runs `fn` in a child process; true when it exits with 0. */
static bool in_child(bool (*fn)(struct fixture *f), struct fixture *f)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(fn(f) ? 0 : 1);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* Opens the cache and finds the asset the parent leased, listed as leased. */
static bool sees_the_leased_asset(struct fixture *f)
{
    kth_cache *other = NULL;
    if (kth_cache_open(&f->opts, &other, NULL, 0) != KTH_OK)
        return false;
    kth_cache_asset *list = NULL;
    size_t count = 0;
    bool ok = kth_cache_list(other, &list, &count) == KTH_OK && count == 1 && list[0].leased &&
              strcmp(list[0].url, URL) == 0;
    kth_cache_list_free(list, count);
    ok = ok && kth_cache_remove(other, URL) == KTH_ERR_BUSY;
    kth_cache_unref(other);
    return ok;
}

static void test_another_process_opens_the_directory_at_once(void **state)
{
    struct fixture *f = *state;
    kth_cache *c = tc_open(&f->opts);
    assert_non_null(c);
    cache_asset *a;
    assert_int_equal(cache_asset_open(c, URL, &a, NULL, 0), KTH_OK);
    /* The other process shares the directory, sees the lease and may not remove the asset. */
    assert_true(in_child(sees_the_leased_asset, f));
    cache_asset_release(a);
    kth_cache_unref(c);
}

static void test_two_handles_in_one_process_share_the_directory(void **state)
{
    struct fixture *f = *state;
    kth_cache *a = tc_open(&f->opts), *b = tc_open(&f->opts);
    assert_non_null(a);
    assert_non_null(b);
    cache_asset *lease;
    assert_int_equal(cache_asset_open(a, URL, &lease, NULL, 0), KTH_OK);
    /* b is another holder: a's lease keeps the asset from it. */
    assert_int_equal(kth_cache_remove(b, URL), KTH_ERR_BUSY);
    cache_asset_release(lease);
    assert_int_equal(kth_cache_remove(b, URL), KTH_OK);
    kth_cache_unref(a);
    kth_cache_unref(b);
}

/* Tries to turn protection on while the parent has the directory open. */
static bool protecting_is_busy(struct fixture *f)
{
    static const uint8_t secret[KTH_CACHE_SECRET_SIZE] = {1, 2, 3};
    kth_cache_options o = f->opts;
    o.secret = secret;
    kth_cache *other = NULL;
    char err[512] = "";
    kth_status st = kth_cache_open(&o, &other, err, sizeof err);
    return st == KTH_ERR_BUSY && !other && strstr(err, f->dir) && strstr(err, "protection");
}

static void test_turning_protection_on_waits_for_other_processes(void **state)
{
    struct fixture *f = *state;
    kth_cache *c = tc_open(&f->opts);
    assert_non_null(c);
    /* Turning it on deletes what the cache holds in the clear: not under another process. */
    assert_true(in_child(protecting_is_busy, f));
    kth_cache_unref(c);
}

static void test_lock_dies_with_a_killed_owner(void **state)
{
    struct fixture *f = *state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        kth_cache *c = tc_open(&f->opts);
        if (c)
            raise(SIGKILL);
        _exit(1);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    static const uint8_t secret[KTH_CACHE_SECRET_SIZE] = {4, 5, 6};
    kth_cache_options o = f->opts;
    o.secret = secret; /* needs the directory to itself */
    kth_cache *c = tc_open(&o);
    assert_non_null(c);
    kth_cache_unref(c);
}

/* Records a lease on a new asset `url` for `holder`, as another process would. */
static void lease_as(const char *dir, const char *url, const cache_holder *holder)
{
    char path[600];
    snprintf(path, sizeof path, "%s/index.db", dir);
    cache_index *ix = NULL;
    assert_int_equal(cache_index_open(path, &ix, NULL, NULL, 0), KTH_OK);
    char key[CACHE_KEY_HEX];
    assert_int_equal(cache_key_of(url, key), KTH_OK);
    int64_t id = 0;
    assert_int_equal(cache_index_lease_asset(ix, key, url, 1, true, holder, &id), KTH_OK);
    cache_index_close(ix);
}

static bool listed_leased(kth_cache *c, const char *url, bool *leased)
{
    kth_cache_asset *list = NULL;
    size_t count = 0;
    assert_int_equal(kth_cache_list(c, &list, &count), KTH_OK);
    bool found = false;
    for (size_t i = 0; i < count; i++) {
        if (strcmp(list[i].url, url) == 0) {
            found = true;
            *leased = list[i].leased;
        }
    }
    kth_cache_list_free(list, count);
    return found;
}

static void test_leases_of_gone_processes_are_reclaimed(void **state)
{
    struct fixture *f = *state;
    kth_cache *c = tc_open(&f->opts); /* creates the index */
    assert_non_null(c);
    kth_cache_unref(c);
    /* A process that has exited, this pid as a process started at another time (a reused pid),
     * and another handle of this very process. */
    pid_t gone = fork();
    assert_true(gone >= 0);
    if (gone == 0)
        _exit(0);
    assert_int_equal(waitpid(gone, NULL, 0), gone);
    cache_holder self;
    cache_holder_self(&self, 1000);
    cache_holder dead = {.pid = gone, .started = self.started, .handle = 1};
    cache_holder reused = {.pid = self.pid, .started = self.started + 1, .handle = 1};
    lease_as(f->dir, "https://a.example/dead.mp3", &dead);
    lease_as(f->dir, "https://a.example/reused.mp3", &reused);
    lease_as(f->dir, "https://a.example/live.mp3", &self);

    c = tc_open(&f->opts);
    assert_non_null(c);
    bool leased = true;
    assert_true(listed_leased(c, "https://a.example/dead.mp3", &leased));
    assert_false(leased);
    assert_true(listed_leased(c, "https://a.example/reused.mp3", &leased));
    assert_false(leased);
    assert_true(listed_leased(c, "https://a.example/live.mp3", &leased));
    assert_true(leased);
    /* gc drops empty assets: the reclaimed two go, the leased one stays. */
    assert_int_equal(kth_cache_gc(c, NULL), KTH_OK);
    assert_false(listed_leased(c, "https://a.example/dead.mp3", &leased));
    assert_false(listed_leased(c, "https://a.example/reused.mp3", &leased));
    assert_true(listed_leased(c, "https://a.example/live.mp3", &leased));
    kth_cache_unref(c);
}

/* Each cache handle is a separate writer-lock owner, as separate processes are. */
static void test_a_follower_keeps_its_bytes_when_a_new_writer_opens(void **state)
{
    struct fixture *f = *state;
    kth_cache *w = tc_open(&f->opts), *fo = tc_open(&f->opts), *late = tc_open(&f->opts);
    assert_non_null(w);
    assert_non_null(fo);
    assert_non_null(late);
    cache_asset *aw, *af, *al;
    cache_resource *hw, *hf, *hl;
    assert_int_equal(cache_asset_open(w, URL, &aw, NULL, 0), KTH_OK);
    assert_int_equal(cache_resource_open(aw, SEGMENT, CACHE_OPEN_CREATE, &hw, NULL, NULL, 0),
                     KTH_OK);
    /* The follower writes what it fetched (not recorded: the writer records). */
    assert_int_equal(cache_asset_open(fo, URL, &af, NULL, 0), KTH_OK);
    assert_int_equal(cache_resource_open(af, SEGMENT, CACHE_OPEN_CREATE, &hf, NULL, NULL, 0),
                     KTH_OK);
    assert_int_equal(tc_write_pattern(hf, 9, 0, 300000), KTH_OK);
    /* The writer goes away having recorded nothing; a new one opens the resource. */
    cache_resource_close(hw);
    cache_asset_release(aw);
    assert_int_equal(cache_asset_open(late, URL, &al, NULL, 0), KTH_OK);
    assert_int_equal(cache_resource_open(al, SEGMENT, CACHE_OPEN_CREATE, &hl, NULL, NULL, 0),
                     KTH_OK);
    /* The follower still reads exactly what it wrote. */
    storage_resource *r = cache_resource_storage(hf);
    uint64_t present = 0;
    assert_true(tc_present_bytes_match(r, 9, &present));
    assert_int_equal(present, 300000);
    storage_resource_unref(r);
    cache_resource_close(hl);
    cache_asset_release(al);
    cache_resource_close(hf);
    cache_asset_release(af);
    kth_cache_unref(w);
    kth_cache_unref(fo);
    kth_cache_unref(late);
}

/* Runs kth_cache_open with default options under the given environment. */
static kth_status open_default(const char *xdg, const char *home, char *dir_out, size_t n)
{
    char *saved_xdg = getenv("XDG_CACHE_HOME") ? strdup(getenv("XDG_CACHE_HOME")) : NULL;
    char *saved_home = getenv("HOME") ? strdup(getenv("HOME")) : NULL;
    if (xdg)
        setenv("XDG_CACHE_HOME", xdg, 1);
    else
        unsetenv("XDG_CACHE_HOME");
    if (home)
        setenv("HOME", home, 1);
    else
        unsetenv("HOME");
    kth_cache *c = NULL;
    kth_status st = kth_cache_open(NULL, &c, NULL, 0);
    if (st == KTH_OK) {
        snprintf(dir_out, n, "%s", kth_cache_dir(c));
        kth_cache_unref(c);
    }
    if (saved_xdg)
        setenv("XDG_CACHE_HOME", saved_xdg, 1);
    else
        unsetenv("XDG_CACHE_HOME");
    if (saved_home)
        setenv("HOME", saved_home, 1);
    else
        unsetenv("HOME");
    free(saved_xdg);
    free(saved_home);
    return st;
}

static void test_default_location_is_xdg_cache_home_then_home(void **state)
{
    struct fixture *f = *state;
    char xdg[4096], home[4096], want[4200], got[4200];
    snprintf(xdg, sizeof xdg, "%s/xdg", f->dir);
    snprintf(home, sizeof home, "%s/home", f->dir);
    assert_int_equal(open_default(xdg, home, got, sizeof got), KTH_OK);
    snprintf(want, sizeof want, "%s/kithara", xdg);
    assert_string_equal(got, want);
    struct stat sb;
    assert_int_equal(stat(want, &sb), 0);
    assert_true(S_ISDIR(sb.st_mode));

    snprintf(want, sizeof want, "%s/.cache/kithara", home);
    assert_int_equal(open_default(NULL, home, got, sizeof got), KTH_OK);
    assert_string_equal(got, want);
    /* A relative XDG_CACHE_HOME is invalid by the spec and ignored. */
    assert_int_equal(open_default("relative/dir", home, got, sizeof got), KTH_OK);
    assert_string_equal(got, want);
    assert_int_equal(open_default(NULL, NULL, got, sizeof got), KTH_ERR_INVALID_ARG);
}

/* Online: a committed key, and a segment with only [0, 100000) of 200000. */
static void populate(struct fixture *f)
{
    kth_cache *c = tc_open(&f->opts);
    cache_asset *a;
    cache_resource *h;
    assert_int_equal(cache_asset_open(c, URL, &a, NULL, 0), KTH_OK);
    assert_int_equal(cache_resource_open(a, KEYFILE, CACHE_OPEN_CREATE, &h, NULL, NULL, 0), KTH_OK);
    assert_int_equal(tc_write_pattern(h, 1, 0, 16), KTH_OK);
    assert_int_equal(cache_resource_commit(h, 16), KTH_OK);
    cache_resource_close(h);
    assert_int_equal(cache_resource_open(a, SEGMENT, CACHE_OPEN_CREATE, &h, NULL, NULL, 0), KTH_OK);
    assert_int_equal(cache_resource_set_length(h, 200000), KTH_OK);
    assert_int_equal(tc_write_pattern(h, 2, 0, 100000), KTH_OK);
    /* Online, a missing range is "go fetch it", with the range. */
    storage_range gap;
    assert_int_equal(cache_resource_check_range(h, 50000, 150000, &gap, NULL, 0),
                     KTH_ERR_NOT_FOUND);
    assert_int_equal(gap.start, 100000);
    assert_int_equal(gap.end, 150000);
    cache_resource_close(h);
    cache_asset_release(a);
    kth_cache_unref(c);
}

static void test_offline_hits_serve_and_misses_name_what_is_missing(void **state)
{
    struct fixture *f = *state;
    populate(f);
    f->opts.offline = true;
    kth_cache *c = tc_open(&f->opts);
    assert_non_null(c);
    char err[512] = "";
    cache_asset *a = NULL;

    /* An asset never cached. */
    assert_int_equal(cache_asset_open(c, "https://media.example/other.mp3", &a, err, sizeof err),
                     KTH_ERR_OFFLINE_MISS);
    assert_null(a);
    assert_non_null(strstr(err, "https://media.example/other.mp3"));

    assert_int_equal(cache_asset_open(c, URL, &a, NULL, 0), KTH_OK);
    /* A complete resource serves. */
    cache_resource *h;
    cache_resource_info info;
    assert_int_equal(cache_resource_open(a, KEYFILE, 0, &h, &info, NULL, 0), KTH_OK);
    assert_true(info.committed);
    assert_int_equal(cache_resource_check_range(h, 0, 16, NULL, NULL, 0), KTH_OK);
    assert_int_equal(cache_resource_check_range(h, 0, 1000, NULL, NULL, 0), KTH_OK); /* clipped */
    storage_resource *r = cache_resource_storage(h);
    uint64_t present;
    assert_true(tc_present_bytes_match(r, 1, &present));
    assert_int_equal(present, 16);
    storage_resource_unref(r);
    cache_resource_close(h);

    /* A partial one serves what it has and names the missing range. */
    assert_int_equal(cache_resource_open(a, SEGMENT, 0, &h, &info, NULL, 0), KTH_OK);
    assert_int_equal(info.present_bytes, 100000);
    assert_int_equal(cache_resource_check_range(h, 0, 100000, NULL, NULL, 0), KTH_OK);
    storage_range gap = {0, 0};
    err[0] = '\0';
    assert_int_equal(cache_resource_check_range(h, 50000, 150000, &gap, err, sizeof err),
                     KTH_ERR_OFFLINE_MISS);
    assert_int_equal(gap.start, 100000);
    assert_int_equal(gap.end, 150000);
    assert_non_null(strstr(err, "[100000, 150000)"));
    assert_non_null(strstr(err, SEGMENT));
    cache_resource_close(h);

    /* A resource never cached: even with CREATE nothing is made offline. */
    err[0] = '\0';
    h = NULL;
    assert_int_equal(cache_resource_open(a, "https://media.example/show/seg-002.ts",
                                         CACHE_OPEN_CREATE, &h, NULL, err, sizeof err),
                     KTH_ERR_OFFLINE_MISS);
    assert_null(h);
    assert_non_null(strstr(err, "seg-002.ts"));
    char last[512];
    assert_true(kth_cache_last_error(c, last, sizeof last) > 0);
    assert_non_null(strstr(last, "seg-002.ts"));
    cache_asset_release(a);

    kth_cache_stats stats;
    assert_int_equal(kth_cache_get_stats(c, &stats), KTH_OK);
    assert_true(stats.offline);
    assert_int_equal(stats.assets, 1);
    assert_int_equal(stats.resources, 2);
    kth_cache_unref(c);
}

static int entries_in(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            n++;
    closedir(d);
    return n;
}

static void test_memory_only_touches_no_disk(void **state)
{
    struct fixture *f = *state;
    char *saved_xdg = getenv("XDG_CACHE_HOME") ? strdup(getenv("XDG_CACHE_HOME")) : NULL;
    setenv("XDG_CACHE_HOME", f->dir, 1);
    kth_cache_options o;
    kth_cache_options_init(&o);
    o.memory_only = true;
    o.max_bytes = 4 << 20;
    kth_cache *c = tc_open(&o);
    assert_non_null(c);
    assert_null(kth_cache_dir(c));
    cache_asset *a;
    cache_resource *h;
    assert_int_equal(cache_asset_open(c, URL, &a, NULL, 0), KTH_OK);
    assert_int_equal(cache_resource_open(a, SEGMENT, CACHE_OPEN_CREATE, &h, NULL, NULL, 0), KTH_OK);
    assert_int_equal(tc_write_pattern(h, 3, 0, 300000), KTH_OK);
    assert_int_equal(cache_resource_commit(h, 300000), KTH_OK);
    cache_resource_close(h);
    cache_asset_release(a);
    /* Bytes survive between leases, in memory. */
    assert_int_equal(cache_asset_open(c, URL, &a, NULL, 0), KTH_OK);
    cache_resource_info info;
    assert_int_equal(cache_resource_open(a, SEGMENT, 0, &h, &info, NULL, 0), KTH_OK);
    assert_true(info.committed);
    storage_resource *r = cache_resource_storage(h);
    uint64_t present;
    assert_true(tc_present_bytes_match(r, 3, &present));
    assert_int_equal(present, 300000);
    storage_resource_unref(r);
    cache_resource_close(h);
    cache_asset_release(a);
    kth_cache_gc_result gc;
    assert_int_equal(kth_cache_gc(c, &gc), KTH_OK);
    kth_cache_unref(c);
    assert_int_equal(entries_in(f->dir), 0);
    if (saved_xdg)
        setenv("XDG_CACHE_HOME", saved_xdg, 1);
    else
        unsetenv("XDG_CACHE_HOME");
    free(saved_xdg);

    /* A memory cache without a bound is refused; 0 is the default bound. */
    o.max_bytes = KTH_CACHE_UNBOUNDED;
    c = NULL;
    assert_int_equal(kth_cache_open(&o, &c, NULL, 0), KTH_ERR_INVALID_ARG);
    assert_null(c);
    o.max_bytes = 0;
    assert_int_equal(kth_cache_open(&o, &c, NULL, 0), KTH_OK);
    kth_cache_stats st;
    assert_int_equal(kth_cache_get_stats(c, &st), KTH_OK);
    assert_true(st.budget_bytes == KTH_CACHE_DEFAULT_BUDGET);
    kth_cache_unref(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_another_process_opens_the_directory_at_once, tc_setup,
                                        tc_teardown),
        cmocka_unit_test_setup_teardown(test_two_handles_in_one_process_share_the_directory,
                                        tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_lock_dies_with_a_killed_owner, tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_turning_protection_on_waits_for_other_processes,
                                        tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_leases_of_gone_processes_are_reclaimed, tc_setup,
                                        tc_teardown),
        cmocka_unit_test_setup_teardown(test_a_follower_keeps_its_bytes_when_a_new_writer_opens,
                                        tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_default_location_is_xdg_cache_home_then_home, tc_setup,
                                        tc_teardown),
        cmocka_unit_test_setup_teardown(test_offline_hits_serve_and_misses_name_what_is_missing,
                                        tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_memory_only_touches_no_disk, tc_setup, tc_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
