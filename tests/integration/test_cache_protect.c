/*
 * test_cache_protect.c — a protected cache (kth_cache_options.secret) end to end, over the
 * loopback server: an AES-128 HLS stream, a clear HLS stream and a progressive file played into
 * it leave no plaintext at rest (no segment, playlist or file bytes, no key); offline replay with
 * the secret is byte-exact; a wrong secret fails at open and a missing one fails every stream
 * with KTH_ERR_PROTECTED, while the cache still lists; a tampered playlist or key is never
 * used; and kill -9
 * during a protected download (the kithara tool with --cache-key-file) resumes correctly.
 */
#include "test_hls_support.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SONG_SEED 777
#define SONG_SIZE ((uint64_t)3 * 1000 * 1000 + 17)
#define LONG_SEED 4242
#define LONG_SIZE ((uint64_t)40 * 1000 * 1000)
/* Plaintext is looked for as 32-byte blocks at multiples of 32: any 64-byte run of it holds one
 * of them, so finding none proves there is no 64-byte run. */
#define WIN 32

static const uint8_t SECRET[KTH_CACHE_SECRET_SIZE] = "0123456789abcdef0123456789abcdef";
static const uint8_t WRONG[KTH_CACHE_SECRET_SIZE] = "0123456789abcdef0123456789abcdeF";

static kth_status open_protected(const char *dir, const uint8_t *secret, bool offline,
                                 kth_cache **out, char *err, size_t errlen)
{
    kth_cache_options co;
    kth_cache_options_init(&co);
    co.dir = dir;
    co.offline = offline;
    co.no_sync = true;
    co.secret = secret;
    return kth_cache_open(&co, out, err, errlen);
}

static kth_cache *protected_cache(const char *dir, const uint8_t *secret, bool offline)
{
    kth_cache *c = NULL;
    char err[512] = "";
    kth_status st = open_protected(dir, secret, offline, &c, err, sizeof err);
    if (st != KTH_OK)
        fail_msg("protected cache open: %s (%s)", kth_strerror(st), err);
    return c;
}

/* ---- looking for plaintext at rest ---- */

typedef struct needles {
    uint64_t *hash; /* open addressing, 0 = empty */
    size_t cap, count;
} needles;

static uint64_t window_hash(const uint8_t *p)
{
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; i < WIN; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h | 1;
}

static bool has_entropy(const uint8_t *p)
{
    bool seen[256] = {false};
    int distinct = 0;
    for (int i = 0; i < WIN; i++)
        if (!seen[p[i]]) {
            seen[p[i]] = true;
            distinct++;
        }
    return distinct >= 8; /* stuffing and padding runs are no one's secret */
}

static void needles_add(needles *n, const uint8_t *data, size_t len)
{
    for (size_t off = 0; off + WIN <= len; off += WIN) {
        if (!has_entropy(data + off))
            continue;
        if (2 * (n->count + 1) > n->cap) {
            size_t cap = n->cap ? 2 * n->cap : 1 << 16;
            uint64_t *h = calloc(cap, sizeof *h);
            assert_non_null(h);
            for (size_t i = 0; i < n->cap; i++)
                for (size_t j = n->hash[i] % cap; n->hash[i]; j = (j + 1) % cap)
                    if (!h[j]) {
                        h[j] = n->hash[i];
                        break;
                    }
            free(n->hash);
            n->hash = h;
            n->cap = cap;
        }
        uint64_t v = window_hash(data + off);
        size_t j = v % n->cap;
        while (n->hash[j] && n->hash[j] != v)
            j = (j + 1) % n->cap;
        if (!n->hash[j])
            n->count++;
        n->hash[j] = v;
    }
}

static bool needles_has(const needles *n, const uint8_t *p)
{
    uint64_t v = window_hash(p);
    for (size_t j = v % n->cap; n->hash[j]; j = (j + 1) % n->cap)
        if (n->hash[j] == v)
            return true;
    return false;
}

typedef struct scan {
    int files;      /* files looked at */
    int plain_hits; /* files holding a block of the needles */
    int key_hits;   /* files holding the key */
    char first[2048];
} scan;

/* Looks for blocks of the needles and for the key in every file under dir. */
static void scan_dir(const char *dir, const needles *n, const bytes *key, scan *out)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *de;
    while ((de = readdir(d))) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        struct stat sb;
        assert_int_equal(lstat(path, &sb), 0);
        if (S_ISDIR(sb.st_mode)) {
            scan_dir(path, n, key, out);
            continue;
        }
        bytes b = read_file(path);
        out->files++;
        bool plain = false, has_key = false;
        for (size_t i = 0; !plain && i + WIN <= b.len; i++)
            plain = needles_has(n, b.data + i) && has_entropy(b.data + i);
        for (size_t i = 0; key && !has_key && i + key->len <= b.len; i++)
            has_key = memcmp(b.data + i, key->data, key->len) == 0;
        out->plain_hits += plain;
        out->key_hits += has_key;
        if ((plain || has_key) && !out->first[0])
            snprintf(out->first, sizeof out->first, "%s", path);
        free(b.data);
    }
    closedir(d);
}

/* Fails when a file under dir holds a block of the needles or the key. Returns files seen. */
static int assert_no_plaintext(const char *dir, const needles *n, const bytes *key)
{
    scan s = {0};
    scan_dir(dir, n, key, &s);
    if (s.plain_hits || s.key_hits)
        fail_msg("%d files hold plaintext and %d the key, such as %s", s.plain_hits, s.key_hits,
                 s.first);
    return s.files;
}

/* ---- playing ---- */

static kth_status try_open_url(struct hls_env *e, const char *path, kth_cache *cache,
                               kth_stream **s, char *err, size_t errlen)
{
    kth_hls_options h;
    kth_hls_options_init(&h);
    h.fixed_start = true;
    h.initial_variant = 0;
    h.start_manual = true;
    return hls_try_open(e, path, cache, strstr(path, ".m3u8") ? &h : NULL, s, err, errlen);
}

/* Plays path through cache to its end and checks it against want. */
static void play_exact(struct hls_env *e, const char *path, kth_cache *cache, const bytes *want)
{
    kth_stream *s = NULL;
    char err[1024] = "";
    kth_status st = try_open_url(e, path, cache, &s, err, sizeof err);
    if (st != KTH_OK)
        fail_msg("open %s: %s (%s)", path, kth_strerror(st), err);
    bytes got = read_to_end(s, false);
    assert_same_bytes(&got, want);
    free(got.data);
    kth_stream_close(s);
}

struct plays {
    bytes aes, ts, song, key;
    needles plain;
};

static void plays_init(struct hls_env *e, struct plays *p)
{
    memset(p, 0, sizeof *p);
    assert_int_equal(kts_add_synth(e->srv, "/song.mp3", SONG_SIZE, SONG_SEED, NULL), 0);
    p->aes = expected_variant("aes/v64", "aes/clear/v64");
    p->ts = expected_variant("ts/v64", NULL);
    p->song.len = (size_t)SONG_SIZE;
    p->song.data = malloc(p->song.len);
    assert_non_null(p->song.data);
    kts_synth_fill(SONG_SEED, 0, p->song.data, p->song.len);
    p->key = read_file(FIXTURES "/aes/key.bin");
    needles_add(&p->plain, p->aes.data, p->aes.len);
    needles_add(&p->plain, p->ts.data, p->ts.len);
    needles_add(&p->plain, p->song.data, p->song.len);
    const char *playlists[] = {"/aes/master.m3u8", "/aes/v64/index.m3u8", "/ts/master.m3u8",
                               "/ts/v64/index.m3u8"};
    for (size_t i = 0; i < sizeof playlists / sizeof *playlists; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s%s", FIXTURES, playlists[i]);
        bytes b = read_file(path);
        needles_add(&p->plain, b.data, b.len);
        free(b.data);
    }
}

static void plays_free(struct plays *p)
{
    free(p->aes.data);
    free(p->ts.data);
    free(p->song.data);
    free(p->key.data);
    free(p->plain.hash);
}

static void play_all(struct hls_env *e, kth_cache *cache, struct plays *p)
{
    play_exact(e, "/aes/master.m3u8", cache, &p->aes);
    play_exact(e, "/ts/master.m3u8", cache, &p->ts);
    play_exact(e, "/song.mp3", cache, &p->song);
}

/* ---- tests ---- */

static void test_nothing_plain_at_rest_and_offline_replay_needs_the_secret(void **state)
{
    struct hls_env *e = *state;
    struct plays p;
    plays_init(e, &p);
    char *dir = test_make_dir();
    kth_cache *cache = protected_cache(dir, SECRET, false);
    play_all(e, cache, &p);
    kth_cache_unref(cache);
    int files = assert_no_plaintext(dir, &p.plain, &p.key);
    assert_true(files > 10); /* index, and the data files of three streams */

    /* Offline with the secret: byte-exact, without the network. */
    unsigned before = kts_request_count(e->srv, NULL, NULL);
    cache = protected_cache(dir, SECRET, true);
    play_all(e, cache, &p);
    kth_cache_unref(cache);
    assert_int_equal(kts_request_count(e->srv, NULL, NULL), before);

    /* A wrong secret fails at open, saying so. */
    char err[512] = "";
    cache = NULL;
    assert_int_equal(open_protected(dir, WRONG, true, &cache, err, sizeof err), KTH_ERR_PROTECTED);
    assert_null(cache);
    assert_non_null(strstr(err, "does not match"));

    /* No secret: the cache opens and lists, but no stream opens through it. */
    cache = protected_cache(dir, NULL, true);
    kth_cache_asset *list = NULL;
    size_t count = 0;
    assert_int_equal(kth_cache_list(cache, &list, &count), KTH_OK);
    assert_int_equal(count, 3);
    kth_cache_list_free(list, count);
    const char *paths[] = {"/aes/master.m3u8", "/ts/master.m3u8", "/song.mp3"};
    for (size_t i = 0; i < 3; i++) {
        kth_stream *s = NULL;
        err[0] = '\0';
        assert_int_equal(try_open_url(e, paths[i], cache, &s, err, sizeof err), KTH_ERR_PROTECTED);
        assert_null(s);
        assert_non_null(strstr(err, "protected"));
    }
    kth_cache_unref(cache);

    /* The control: the same look finds the plaintext and the key in an unprotected cache. */
    char *clear = test_make_dir();
    cache = hls_open_cache(clear, false);
    play_exact(e, "/aes/master.m3u8", cache, &p.aes);
    play_exact(e, "/song.mp3", cache, &p.song);
    kth_cache_unref(cache);
    scan control = {0};
    scan_dir(clear, &p.plain, &p.key, &control);
    assert_true(control.plain_hits >= 5); /* the segments, playlists and the file */
    assert_int_equal(control.key_hits, 1);
    assert_int_equal(test_remove_tree(clear), 0);
    free(clear);

    /* An application that asks for protection gets no unprotected cache. */
    kth_cache_options co;
    kth_cache_options_init(&co);
    co.dir = dir;
    co.require_protection = true;
    cache = NULL;
    assert_int_equal(kth_cache_open(&co, &cache, err, sizeof err), KTH_ERR_PROTECTED);
    assert_null(cache);

    assert_int_equal(test_remove_tree(dir), 0);
    free(dir);
    plays_free(&p);
}

static kth_status secret_from_keystore(void *user, uint8_t secret[KTH_CACHE_SECRET_SIZE])
{
    int *calls = user;
    ++*calls;
    memcpy(secret, SECRET, KTH_CACHE_SECRET_SIZE);
    return KTH_OK;
}

/* The data file of exactly `size` bytes under dir (the key: 16 bytes and its 32-byte tag). */
static bool find_file_of_size(const char *dir, off_t size, char *out, size_t outlen)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    bool found = false;
    struct dirent *de;
    while (!found && (de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        struct stat sb;
        assert_int_equal(lstat(path, &sb), 0);
        if (S_ISDIR(sb.st_mode))
            found = find_file_of_size(path, size, out, outlen);
        else if (sb.st_size == size && snprintf(out, outlen, "%s", path) > 0)
            found = true;
    }
    closedir(d);
    return found;
}

/* Flips one byte of the data file of exactly `size` bytes under dir. */
static void flip_byte_of_file_of_size(const char *dir, off_t size, off_t at)
{
    char path[2048];
    assert_true(find_file_of_size(dir, size, path, sizeof path));
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    uint8_t byte;
    assert_int_equal(pread(fd, &byte, 1, at), 1);
    byte ^= 0x10;
    assert_int_equal(pwrite(fd, &byte, 1, at), 1);
    close(fd);
}

static void test_a_tampered_playlist_or_key_is_never_used(void **state)
{
    struct hls_env *e = *state;
    bytes want = expected_variant("aes/v64", "aes/clear/v64");
    bytes playlist = read_file(FIXTURES "/aes/v64/index.m3u8");
    char *dir = test_make_dir();
    int calls = 0;
    kth_cache_options co;
    kth_cache_options_init(&co);
    co.dir = dir;
    co.no_sync = true;
    co.secret_fn = secret_from_keystore;
    co.secret_user = &calls;
    kth_cache *cache = NULL;
    assert_int_equal(kth_cache_open(&co, &cache, NULL, 0), KTH_OK);
    assert_int_equal(calls, 1);
    play_exact(e, "/aes/master.m3u8", cache, &want);
    kth_cache_unref(cache);
    assert_int_equal(kts_request_count(e->srv, "/aes/v64/index.m3u8", NULL), 1);

    /* One flipped byte in the media playlist (stored as its URL, a newline and its text; then
     * the tag) and one in the wrapped key (16 bytes and the tag). */
    char url[512];
    kts_url(e->srv, "/aes/v64/index.m3u8", url, sizeof url);
    off_t stored = (off_t)(strlen(url) + 1 + playlist.len);
    flip_byte_of_file_of_size(dir, stored + 32, stored - 20);
    flip_byte_of_file_of_size(dir, 16 + 32, 5);

    /* Offline they cannot be replaced: the stream fails; it never parses altered bytes. */
    co.offline = true;
    assert_int_equal(kth_cache_open(&co, &cache, NULL, 0), KTH_OK);
    kth_stream *s = NULL;
    char err[1024] = "";
    kth_status st = try_open_url(e, "/aes/master.m3u8", cache, &s, err, sizeof err);
    if (st == KTH_OK) {
        uint8_t buf[4096];
        assert_int_equal(kth_stream_read(s, buf, sizeof buf), KTH_ERR_OFFLINE_MISS);
        kth_stream_close(s);
    } else {
        assert_int_equal(st, KTH_ERR_OFFLINE_MISS);
    }
    kth_cache_unref(cache);

    /* Online both are fetched again and the stream plays byte-exact. */
    co.offline = false;
    assert_int_equal(kth_cache_open(&co, &cache, NULL, 0), KTH_OK);
    play_exact(e, "/aes/master.m3u8", cache, &want);
    kth_cache_unref(cache);
    assert_int_equal(kts_request_count(e->srv, "/aes/v64/index.m3u8", NULL), 2);

    assert_int_equal(test_remove_tree(dir), 0);
    free(dir);
    free(want.data);
    free(playlist.data);
}

/* ---- kill -9 ---- */

static pid_t start_child(const char *dir, const char *key_file, const char *url)
{
    pid_t pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, STDOUT_FILENO);
        dup2(null, STDERR_FILENO);
        execl(KTH_TOOL_PATH, "kithara", "cat", "--cache-dir", dir, "--cache-key-file", key_file,
              url, (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* The bytes the cache's index records for its assets (0 while it cannot be opened yet). */
static uint64_t recorded_bytes(const char *dir)
{
    kth_cache *cache = NULL;
    if (open_protected(dir, SECRET, true, &cache, NULL, 0) != KTH_OK)
        return 0;
    kth_cache_asset *list = NULL;
    size_t count = 0;
    uint64_t held = 0;
    if (kth_cache_list(cache, &list, &count) == KTH_OK)
        for (size_t i = 0; i < count; i++)
            held += list[i].bytes;
    kth_cache_list_free(list, count);
    kth_cache_unref(cache);
    return held;
}

/* Reads offline from 0 until the first missing byte; every byte must be right. */
static uint64_t offline_prefix(const char *dir, const char *url)
{
    kth_cache *cache = protected_cache(dir, SECRET, true);
    kth_stream_options so;
    kth_stream_options_init(&so);
    so.cache = cache;
    so.read_timeout_ms = 5000;
    kth_stream *s = NULL;
    char err[512];
    uint64_t pos = 0;
    kth_status st = kth_stream_open(url, &so, &s, err, sizeof err);
    if (st == KTH_OK) {
        static uint8_t buf[256 * 1024];
        for (int guard = 0; guard < 100000; guard++) {
            int64_t n = kth_stream_read(s, buf, sizeof buf);
            if (n <= 0) {
                assert_true(n == 0 || n == KTH_ERR_OFFLINE_MISS);
                break;
            }
            size_t bad = kts_synth_check(LONG_SEED, pos, buf, (size_t)n);
            if (bad != (size_t)n)
                fail_msg("after a kill the protected cache served a wrong byte at %llu",
                         (unsigned long long)(pos + bad));
            pos += (uint64_t)n;
        }
        kth_stream_close(s);
    } else {
        assert_int_equal(st, KTH_ERR_OFFLINE_MISS);
    }
    kth_cache_unref(cache);
    return pos;
}

static void test_kill_9_during_a_protected_download_resumes(void **state)
{
    struct hls_env *e = *state;
    kts_add_synth(e->srv, "/long.mp3", LONG_SIZE, LONG_SEED, NULL);
    kts_fault rate = {.kind = KTS_FAULT_RATE, .bytes = 16 * 1000 * 1000};
    kts_add_fault(e->srv, "/long.mp3", &rate);
    char url[256];
    kts_url(e->srv, "/long.mp3", url, sizeof url);
    char *dir = test_make_dir();
    char key_file[2048];
    snprintf(key_file, sizeof key_file, "%s/cache.key", dir);
    FILE *f = fopen(key_file, "wb");
    assert_non_null(f);
    for (size_t i = 0; i < sizeof SECRET; i++)
        fprintf(f, "%02x", SECRET[i]);
    fputc('\n', f);
    fclose(f);
    char cache_dir[2100];
    snprintf(cache_dir, sizeof cache_dir, "%s/cache", dir);

    /* Each child is killed once the cache's index records more bytes than the round before
     * (its checkpoints), looked at from this process, so a slow or loaded build cannot make a
     * round end before its first checkpoint. */
    uint64_t last = 0;
    for (int round = 0; round < 3; round++) {
        pid_t child = start_child(cache_dir, key_file, url);
        assert_true(child > 0);
        struct timespec pause = {0, 100 * 1000000L};
        for (int i = 0; i < 600 && recorded_bytes(cache_dir) <= last; i++)
            nanosleep(&pause, NULL);
        kill(child, SIGKILL);
        int status;
        waitpid(child, &status, 0);
        last = offline_prefix(cache_dir, url);
    }
    assert_true(last > 0);
    bool resumed = false;
    size_t n = kts_log_count(e->srv);
    for (size_t i = 0; i < n; i++) {
        kts_log_entry le;
        if (kts_log_get(e->srv, i, &le) == KTH_OK && strncmp(le.range, "bytes=", 6) == 0 &&
            strtoull(le.range + 6, NULL, 10) > 0)
            resumed = true;
    }
    assert_true(resumed);

    /* What the kills left is ciphertext too. */
    needles plain = {0};
    uint8_t *buf = malloc((size_t)LONG_SIZE);
    assert_non_null(buf);
    kts_synth_fill(LONG_SEED, 0, buf, (size_t)LONG_SIZE);
    needles_add(&plain, buf, (size_t)last);
    free(buf);
    assert_true(assert_no_plaintext(cache_dir, &plain, NULL) > 0);
    free(plain.hash);

    /* A last, uninterrupted run completes the file byte-exact. */
    pid_t child = start_child(cache_dir, key_file, url);
    int status;
    waitpid(child, &status, 0);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_int_equal(offline_prefix(cache_dir, url), LONG_SIZE);
    assert_int_equal(test_remove_tree(dir), 0);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_nothing_plain_at_rest_and_offline_replay_needs_the_secret, hls_setup,
            hls_teardown),
        cmocka_unit_test_setup_teardown(test_a_tampered_playlist_or_key_is_never_used, hls_setup,
                                        hls_teardown),
        cmocka_unit_test_setup_teardown(test_kill_9_during_a_protected_download_resumes, hls_setup,
                                        hls_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
