/*
 * test_cache_crash.c — kill -9 at any moment. A helper process writes a pattern resource through
 * the cache in random-order chunks with checkpoints (data synced before the index records it);
 * this test kills it with SIGKILL at random points, reopens the cache each time, checks every
 * byte the index claims against the pattern and that claims never shrink, and lets the next
 * writer resume from what is missing. At the end the resource is complete and byte-exact, and
 * the last writer fetched only what was missing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>

#include "test_cache_support.h"

#define URL     "https://media.example/torture.flac"
#define KEY     "https://media.example/torture.flac"
#define ETAG    "\"torture-v1\""
#define PATTERN 77u

enum {
    SIZE = 16 << 20,
    CHUNK = 32 * 1024,
    CHUNKS = SIZE / CHUNK,
    ROUNDS = 40,
    MAX_KILL_AFTER = 10, /* chunks the writer may report before the kill */
};

struct child {
    pid_t pid;
    int out; /* read end of its stdout */
};

static struct child spawn(const char *dir, uint64_t seed)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    char size[32], chunk[32], rnd[32];
    snprintf(size, sizeof size, "%d", SIZE);
    snprintf(chunk, sizeof chunk, "%d", CHUNK);
    snprintf(rnd, sizeof rnd, "%llu", (unsigned long long)seed);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(p[1], STDOUT_FILENO);
        close(p[0]);
        close(p[1]);
        execl(KTH_CACHE_CRASH_WRITER, KTH_CACHE_CRASH_WRITER, dir, size, chunk, rnd, (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    return (struct child){pid, p[0]};
}

/* Reads one progress byte; 0 at end of stream. The timeout only guards against a hang. */
static char next_report(struct child *c)
{
    struct pollfd pfd = {.fd = c->out, .events = POLLIN};
    int r = poll(&pfd, 1, 30000);
    assert_true(r == 1);
    char ch = 0;
    ssize_t k = read(c->out, &ch, 1);
    return k == 1 ? ch : 0;
}

struct verdict {
    uint64_t claimed;
    bool committed;
};

/* Reopens the cache in this process and checks every claimed byte. */
static struct verdict verify(const char *dir)
{
    kth_cache_options o = tc_options(dir);
    kth_cache *c = tc_open(&o);
    assert_non_null(c);
    cache_asset *a;
    assert_int_equal(cache_asset_open(c, URL, &a, NULL, 0), KTH_OK);
    cache_resource *h = NULL;
    cache_resource_info info;
    struct verdict v = {0, false};
    kth_status st = cache_resource_open(a, KEY, 0, &h, &info, NULL, 0);
    if (st == KTH_OK) {
        assert_false(info.repaired); /* the index never claimed what the disk lacked */
        if (info.etag[0])
            assert_string_equal(info.etag, ETAG);
        storage_resource *r = cache_resource_storage(h);
        assert_true(tc_present_bytes_match(r, PATTERN, &v.claimed));
        assert_int_equal(v.claimed, info.present_bytes);
        v.committed = info.committed;
        if (v.committed)
            assert_int_equal(v.claimed, SIZE);
        storage_resource_unref(r);
        cache_resource_close(h);
    } else {
        assert_int_equal(st, KTH_ERR_NOT_FOUND); /* killed before the row existed */
    }
    cache_asset_release(a);
    kth_cache_unref(c);
    return v;
}

static void test_kill_at_random_points_never_claims_wrong_bytes_and_resumes(void **state)
{
    (void)state;
    char *dir = test_make_dir();
    assert_non_null(dir);
    uint64_t rng = 0x2545F4914F6CDD1Dull ^ (uint64_t)getpid();
    int64_t t0 = test_now_ms();
    uint64_t last_claimed = 0;
    int rounds = 0, kills_before_open = 0;
    bool committed = false;
    /* ROUNDS kills (fewer only if the writers finish first), bounded in time as well. */
    while (!committed && rounds < ROUNDS && test_now_ms() - t0 < 60000) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        int kill_after = (int)(rng % (MAX_KILL_AFTER + 2)) - 1; /* -1: before it even opens */
        struct child ch = spawn(dir, rng);
        if (kill_after >= 0) {
            char r = next_report(&ch);
            assert_true(r == 'R' || r == 0);
            for (int i = 0; i < kill_after && r; i++) {
                r = next_report(&ch);
                if (r == 'C')
                    break;
            }
        } else {
            kills_before_open++;
        }
        kill(ch.pid, SIGKILL);
        int status = 0;
        assert_int_equal(waitpid(ch.pid, &status, 0), ch.pid);
        /* Either killed, or it finished cleanly before the signal landed. */
        assert_true(WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) == 0));
        close(ch.out);
        struct verdict v = verify(dir);
        assert_true(v.claimed >= last_claimed); /* claims never shrink */
        last_claimed = v.claimed;
        committed = v.committed;
        rounds++;
    }
    assert_true(rounds == ROUNDS || committed);

    /* A last writer runs to the end and fetches only what is missing. */
    int missing_chunks = (int)((SIZE - last_claimed + CHUNK - 1) / CHUNK);
    struct child ch = spawn(dir, rng + 1);
    int written = 0;
    char r;
    bool saw_commit = false;
    while ((r = next_report(&ch)) != 0) {
        if (r == 'W')
            written++;
        if (r == 'C')
            saw_commit = true;
    }
    int status = 0;
    assert_int_equal(waitpid(ch.pid, &status, 0), ch.pid);
    close(ch.out);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_true(saw_commit);
    assert_int_equal(written, committed ? 0 : missing_chunks);
    struct verdict v = verify(dir);
    assert_true(v.committed);
    assert_int_equal(v.claimed, SIZE);
    print_message("crash rounds: %d (%d before open), claimed before the last writer: %llu of "
                  "%d, %lld ms\n",
                  rounds, kills_before_open, (unsigned long long)last_claimed, SIZE,
                  (long long)(test_now_ms() - t0));
    tc_remove_tree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kill_at_random_points_never_claims_wrong_bytes_and_resumes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
