/*
 * index.c — the SQLite side of the cache: schema, prepared statements, rows in and out.
 *
 * Invariants:
 * - asset.bytes == SUM(resource.bytes) of its resources, kept by triggers inside the same
 *   transactions that change resource rows.
 * - Every statement is prepared once at open and reset after each use, so nothing is left
 *   pending between calls (a pending read would block the WAL checkpoint).
 * - Rows are validated on the way out (ranges sorted, disjoint, within the length; file names in
 *   the expected hex shape; block sums in sorted runs): a damaged or edited database yields
 *   fewer claims, never wrong ones.
 * - A row written by this version always has a sums blob (possibly empty); NULL sums with
 *   claims mark a row recorded before block sums existed (schema 1), whose bytes are trusted
 *   as they are until their sums are recorded.
 *
 * Durability: WAL with synchronous=NORMAL. A commit reaches the operating system before the call
 * returns, so a killed process loses nothing the index recorded; a power loss may lose the last
 * transactions, which only makes the index claim less than the disk holds (data is synced before
 * it is recorded; see asset.c).
 */
#include "cache/index.h"

#include "platform/text.h"
#include "platform/mem.h"

#include <sqlite3.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SCHEMA_VERSION 4

enum stmt {
    S_FIND_ASSET,
    S_ADD_ASSET,
    S_TOUCH_ASSET,
    S_PIN_ASSET,
    S_DELETE_RESOURCES_OF,
    S_DELETE_ASSET,
    S_ASSET_BYTES,
    S_SCAN_EVICTABLE,
    S_SCAN_ASSETS,
    S_SCAN_RESOURCES,
    S_FIND_RESOURCE,
    S_ADD_RESOURCE,
    S_RECORD,
    S_RESET_RESOURCE,
    S_DELETE_RESOURCE,
    S_SET_META,
    S_SET_LENGTH,
    S_FILE_KNOWN,
    S_TOTALS,
    S_RESOURCE_COUNT,
    S_PINNED_BYTES,
    S_GET_SETTING,
    S_PUT_SETTING,
    S_ADD_LEASE,
    S_DROP_LEASE,
    S_ASSET_LEASED,
    S_SCAN_HOLDERS,
    S_DROP_HOLDER,
    S_BEGIN,
    S_COMMIT,
    S_ROLLBACK,
    S_COUNT
};

static const char *const stmt_sql[S_COUNT] = {
    [S_FIND_ASSET] = "SELECT id FROM asset WHERE key = ?1",
    [S_ADD_ASSET] = "INSERT INTO asset(key, url, last_use) VALUES (?1, ?2, ?3)",
    [S_TOUCH_ASSET] = "UPDATE asset SET last_use = ?2 WHERE id = ?1",
    [S_PIN_ASSET] = "UPDATE asset SET pinned = ?2 WHERE id = ?1",
    [S_DELETE_RESOURCES_OF] = "DELETE FROM resource WHERE asset_id = ?1",
    [S_DELETE_ASSET] = "DELETE FROM asset WHERE id = ?1",
    [S_ASSET_BYTES] = "SELECT bytes, pinned FROM asset WHERE id = ?1",
    [S_SCAN_EVICTABLE] = "SELECT id, bytes FROM asset WHERE bytes > 0 AND pinned = 0 "
                         "AND NOT EXISTS (SELECT 1 FROM lease l WHERE l.asset_id = asset.id) "
                         "ORDER BY last_use, id",
    [S_SCAN_ASSETS] = "SELECT a.id, a.key, a.url, a.last_use, a.pinned, a.bytes, "
                      "TOTAL(r.length), COUNT(r.id), IFNULL(SUM(r.committed), 0), "
                      "IFNULL(SUM(r.id IS NOT NULL AND r.length IS NULL), 0), "
                      "EXISTS (SELECT 1 FROM lease l WHERE l.asset_id = a.id) "
                      "FROM asset a LEFT JOIN resource r ON r.asset_id = a.id "
                      "GROUP BY a.id ORDER BY a.last_use DESC, a.id DESC",
    [S_SCAN_RESOURCES] = "SELECT id, file FROM resource WHERE asset_id = ?1",
    [S_FIND_RESOURCE] = "SELECT id, file, length, committed, ranges, etag, last_modified, "
                        "content_type, bytes, sums FROM resource WHERE asset_id = ?1 AND key = ?2",
    [S_ADD_RESOURCE] = "INSERT INTO resource(asset_id, key, file) VALUES (?1, ?2, ?3)",
    [S_RECORD] = "UPDATE resource SET ranges = ?2, bytes = ?3, length = ?4, committed = ?5, "
                 "sums = ?6 WHERE id = ?1",
    [S_RESET_RESOURCE] = "UPDATE resource SET file = ?2, ranges = NULL, bytes = 0, "
                         "length = NULL, committed = 0, etag = NULL, last_modified = NULL, "
                         "content_type = NULL, sums = NULL WHERE id = ?1",
    [S_DELETE_RESOURCE] = "DELETE FROM resource WHERE id = ?1",
    [S_SET_META] = "UPDATE resource SET etag = IFNULL(?2, etag), "
                   "last_modified = IFNULL(?3, last_modified), "
                   "content_type = IFNULL(?4, content_type) WHERE id = ?1",
    [S_SET_LENGTH] = "UPDATE resource SET length = ?2 WHERE id = ?1",
    [S_FILE_KNOWN] = "SELECT 1 FROM resource WHERE file = ?1",
    [S_TOTALS] = "SELECT TOTAL(bytes), COUNT(*), IFNULL(MAX(last_use), 0) FROM asset",
    [S_RESOURCE_COUNT] = "SELECT COUNT(*) FROM resource",
    [S_PINNED_BYTES] = "SELECT TOTAL(bytes) FROM asset WHERE pinned = 1",
    [S_GET_SETTING] = "SELECT value FROM setting WHERE name = ?1",
    [S_PUT_SETTING] = "INSERT OR REPLACE INTO setting(name, value) VALUES (?1, ?2)",
    [S_ADD_LEASE] = "INSERT OR IGNORE INTO lease(asset_id, pid, started, handle) "
                    "VALUES (?1, ?2, ?3, ?4)",
    [S_DROP_LEASE] = "DELETE FROM lease WHERE asset_id = ?1 AND pid = ?2 AND started = ?3 "
                     "AND handle = ?4",
    [S_ASSET_LEASED] = "SELECT 1 FROM lease WHERE asset_id = ?1 LIMIT 1",
    [S_SCAN_HOLDERS] = "SELECT DISTINCT pid, started FROM lease",
    [S_DROP_HOLDER] = "DELETE FROM lease WHERE pid = ?1 AND started = ?2",
    [S_BEGIN] = "BEGIN IMMEDIATE",
    [S_COMMIT] = "COMMIT",
    [S_ROLLBACK] = "ROLLBACK",
};

/* Leases of assets by processes: the holder is a process (pid and start time, so a reused pid
 * is not mistaken for the owner) and one cache handle in it. */
#define LEASE_TABLE_SQL                                                                            \
    "CREATE TABLE IF NOT EXISTS lease ("                                                           \
    "  asset_id INTEGER NOT NULL,"                                                                 \
    "  pid INTEGER NOT NULL,"                                                                      \
    "  started INTEGER NOT NULL,"                                                                  \
    "  handle INTEGER NOT NULL,"                                                                   \
    "  PRIMARY KEY(asset_id, pid, started, handle)) WITHOUT ROWID;"

static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS asset ("
    "  id INTEGER PRIMARY KEY,"
    "  key TEXT NOT NULL UNIQUE,"
    "  url TEXT NOT NULL,"
    "  last_use INTEGER NOT NULL,"
    "  pinned INTEGER NOT NULL DEFAULT 0,"
    "  bytes INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX IF NOT EXISTS asset_evictable ON asset(last_use, id)"
    "  WHERE bytes > 0 AND pinned = 0;"
    "CREATE TABLE IF NOT EXISTS resource ("
    "  id INTEGER PRIMARY KEY,"
    "  asset_id INTEGER NOT NULL,"
    "  key TEXT NOT NULL,"
    "  file TEXT NOT NULL UNIQUE,"
    "  length INTEGER,"
    "  committed INTEGER NOT NULL DEFAULT 0,"
    "  ranges BLOB,"
    "  bytes INTEGER NOT NULL DEFAULT 0,"
    "  etag TEXT, last_modified TEXT, content_type TEXT,"
    "  sums BLOB,"
    "  UNIQUE(asset_id, key));"
    "CREATE TRIGGER IF NOT EXISTS resource_bytes_update AFTER UPDATE OF bytes ON resource BEGIN"
    "  UPDATE asset SET bytes = bytes - OLD.bytes + NEW.bytes WHERE id = NEW.asset_id; END;"
    "CREATE TRIGGER IF NOT EXISTS resource_bytes_delete AFTER DELETE ON resource BEGIN"
    "  UPDATE asset SET bytes = bytes - OLD.bytes WHERE id = OLD.asset_id; END;"
    "CREATE TABLE IF NOT EXISTS setting (name TEXT PRIMARY KEY, value BLOB);" LEASE_TABLE_SQL
    "PRAGMA user_version = 4;";

/* Schema 1 to 2: block sums. Rows of schema 1 keep NULL sums (see the file comment). */
static const char migrate_1_to_2_sql[] = "ALTER TABLE resource ADD COLUMN sums BLOB;"
                                         "PRAGMA user_version = 2;";
/* Schema 2 to 3: settings of the whole cache (the protected cache's check value). */
static const char migrate_2_to_3_sql[] =
    "CREATE TABLE IF NOT EXISTS setting (name TEXT PRIMARY KEY, value BLOB);"
    "PRAGMA user_version = 3;";
/* Schema 3 to 4: leases of other processes (several processes share one cache directory). */
static const char migrate_3_to_4_sql[] = LEASE_TABLE_SQL "PRAGMA user_version = 4;";

struct cache_index {
    sqlite3 *db;
    sqlite3_stmt *stmt[S_COUNT];
};

const char *cache_index_errmsg(cache_index *ix)
{
    return ix && ix->db ? sqlite3_errmsg(ix->db) : "no index";
}

static void close_db(cache_index *ix)
{
    for (int i = 0; i < S_COUNT; i++) {
        sqlite3_finalize(ix->stmt[i]);
        ix->stmt[i] = NULL;
    }
    sqlite3_close(ix->db);
    ix->db = NULL;
}

void cache_index_close(cache_index *ix)
{
    if (!ix)
        return;
    close_db(ix);
    platform_free(ix);
}

/* Result codes that mean "this file is not a database we can use"; anything else (a full disk,
 * a permission problem) is reported rather than answered by deleting the file. */
static bool is_damage(int rc)
{
    rc &= 0xff;
    return rc == SQLITE_NOTADB || rc == SQLITE_CORRUPT;
}

static int exec(cache_index *ix, const char *sql)
{
    return sqlite3_exec(ix->db, sql, NULL, NULL, NULL);
}

static int user_version(cache_index *ix, int *version)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(ix->db, "PRAGMA user_version", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return rc;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *version = sqlite3_column_int(st, 0);
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    return rc;
}

/* Brings a database of schema `version` (0: new) to SCHEMA_VERSION. In a transaction. */
static int migrate(cache_index *ix, int version)
{
    if (version == 0)
        return exec(ix, schema_sql);
    int rc = version == 1 ? exec(ix, migrate_1_to_2_sql) : SQLITE_OK;
    if (rc == SQLITE_OK && version <= 2)
        rc = exec(ix, migrate_2_to_3_sql);
    return rc == SQLITE_OK ? exec(ix, migrate_3_to_4_sql) : rc;
}

/* How long a statement waits for another process's lock. */
#define BUSY_TIMEOUT_MS 5000

/* Turns the database to WAL. When another process opens a new index at the same moment, SQLite
 * answers SQLITE_BUSY at once, without its busy handler (seen in about 1 of 10 such races):
 * try again every 2 ms, for as long as the busy timeout. */
static int set_wal(cache_index *ix)
{
    int rc;
    for (int waited = 0; (rc = exec(ix, "PRAGMA journal_mode = WAL")) != SQLITE_OK &&
                         (rc & 0xff) == SQLITE_BUSY && waited < BUSY_TIMEOUT_MS;
         waited += 2)
        nanosleep(&(struct timespec){.tv_nsec = 2 * 1000 * 1000}, NULL);
    return rc;
}

/* Opens and configures the database; returns the SQLite code of the first failure. */
static int try_open(cache_index *ix, const char *path, int *version)
{
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    int rc = sqlite3_open_v2(path ? path : ":memory:", &ix->db, flags, NULL);
    if (rc != SQLITE_OK)
        return rc;
    sqlite3_extended_result_codes(ix->db, 1);
    sqlite3_busy_timeout(ix->db, BUSY_TIMEOUT_MS);
    if (path && (rc = set_wal(ix)) != SQLITE_OK)
        return rc;
    /* A page cache of 512 KiB instead of SQLite's 2 MiB: the index of a long presentation has
     * a row per segment, and the file's pages stay in the kernel's page cache anyway. */
    if (path && (rc = exec(ix, "PRAGMA cache_size = -512")) != SQLITE_OK)
        return rc;
    if ((rc = exec(ix, "PRAGMA synchronous = NORMAL")) != SQLITE_OK)
        return rc;
    if ((rc = user_version(ix, version)) != SQLITE_OK)
        return rc;
    if (*version > SCHEMA_VERSION)
        return SQLITE_OK;
    if (*version < SCHEMA_VERSION) {
        if ((rc = exec(ix, "BEGIN IMMEDIATE")) != SQLITE_OK)
            return rc;
        rc = migrate(ix, *version);
        exec(ix, rc == SQLITE_OK ? "COMMIT" : "ROLLBACK");
        if (rc != SQLITE_OK)
            return rc;
        *version = SCHEMA_VERSION;
    }
    for (int i = 0; i < S_COUNT; i++) {
        rc = sqlite3_prepare_v3(ix->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &ix->stmt[i],
                                NULL);
        if (rc != SQLITE_OK)
            return rc;
    }
    return SQLITE_OK;
}

static void remove_db_files(const char *path)
{
    static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
    for (size_t i = 0; i < sizeof suffixes / sizeof *suffixes; i++) {
        char *file = platform_printf_new("%s%s", path, suffixes[i]);
        if (file)
            unlink(file);
        platform_free(file);
    }
}

kth_status cache_index_open(const char *path, cache_index **out, bool *rebuilt, char *err,
                            size_t errlen)
{
    if (!out)
        return KTH_ERR_INVALID_ARG;
    if (rebuilt)
        *rebuilt = false;
    /* SQLite refuses a path whose "-journal" name passes its VFS's limit, with a bare "unable
     * to open": say what the limit is instead. */
    sqlite3_vfs *vfs = sqlite3_vfs_find(NULL);
    size_t most = vfs && vfs->mxPathname > 8 ? (size_t)vfs->mxPathname - 8 : 0;
    if (path && vfs && strlen(path) > most) {
        char shown[200];
        if (err && errlen)
            snprintf(err, errlen, "cache index path %s is %zu bytes; SQLite takes at most %zu",
                     platform_excerpt(path, shown, sizeof shown), strlen(path), most);
        return KTH_ERR_LIMIT;
    }
    cache_index *ix = platform_calloc(1, sizeof *ix);
    if (!ix)
        return KTH_ERR_NO_MEMORY;
    int version = 0;
    int rc = try_open(ix, path, &version);
    if (rc != SQLITE_OK && path && is_damage(rc)) {
        close_db(ix);
        remove_db_files(path);
        if (rebuilt)
            *rebuilt = true;
        version = 0;
        rc = try_open(ix, path, &version);
    }
    if (rc != SQLITE_OK) {
        if (err && errlen)
            snprintf(err, errlen, "cannot open cache index %s: %s", path ? path : "(memory)",
                     ix->db ? sqlite3_errmsg(ix->db) : sqlite3_errstr(rc));
        kth_status st = (rc & 0xff) == SQLITE_NOMEM ? KTH_ERR_NO_MEMORY : KTH_ERR_IO;
        cache_index_close(ix);
        return st;
    }
    if (version > SCHEMA_VERSION) {
        if (err && errlen)
            snprintf(err, errlen, "cache index %s has schema %d, newer than this kithara (%d)",
                     path, version, SCHEMA_VERSION);
        cache_index_close(ix);
        return KTH_ERR_UNSUPPORTED;
    }
    *out = ix;
    return KTH_OK;
}

/* --- statement helpers --- */

static sqlite3_stmt *use(cache_index *ix, enum stmt s)
{
    return ix->stmt[s];
}

static kth_status done(sqlite3_stmt *st, int rc)
{
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc == SQLITE_DONE || rc == SQLITE_ROW || rc == SQLITE_OK)
        return KTH_OK;
    return (rc & 0xff) == SQLITE_NOMEM ? KTH_ERR_NO_MEMORY : KTH_ERR_IO;
}

/* Runs a statement that returns no rows. */
static kth_status run(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    return done(st, rc);
}

static void bind_text_or_null(sqlite3_stmt *st, int i, const char *s)
{
    if (s)
        sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, i);
}

static kth_status begin(cache_index *ix)
{
    return run(use(ix, S_BEGIN));
}

static kth_status finish(cache_index *ix, kth_status st)
{
    if (st == KTH_OK)
        st = run(use(ix, S_COMMIT));
    if (st != KTH_OK && sqlite3_get_autocommit(ix->db) == 0)
        run(use(ix, S_ROLLBACK));
    return st;
}

/* --- assets --- */

kth_status cache_index_find_asset(cache_index *ix, const char *key, int64_t *id)
{
    sqlite3_stmt *st = use(ix, S_FIND_ASSET);
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *id = sqlite3_column_int64(st, 0);
    kth_status s = done(st, rc);
    return s == KTH_OK && rc == SQLITE_DONE ? KTH_ERR_NOT_FOUND : s;
}

kth_status cache_index_add_asset(cache_index *ix, const char *key, const char *url, int64_t now_ms,
                                 int64_t *id)
{
    sqlite3_stmt *st = use(ix, S_ADD_ASSET);
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, url, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, now_ms);
    kth_status s = run(st);
    if (s == KTH_OK)
        *id = sqlite3_last_insert_rowid(ix->db);
    return s;
}

kth_status cache_index_touch_asset(cache_index *ix, int64_t id, int64_t now_ms)
{
    sqlite3_stmt *st = use(ix, S_TOUCH_ASSET);
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, now_ms);
    return run(st);
}

kth_status cache_index_set_pinned(cache_index *ix, int64_t id, bool pinned)
{
    sqlite3_stmt *st = use(ix, S_PIN_ASSET);
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int(st, 2, pinned);
    return run(st);
}

/* Whether any holder leases the asset. */
static kth_status asset_leased(cache_index *ix, int64_t id, bool *leased)
{
    sqlite3_stmt *st = use(ix, S_ASSET_LEASED);
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    *leased = rc == SQLITE_ROW;
    return done(st, rc);
}

kth_status cache_index_delete_asset(cache_index *ix, int64_t id)
{
    kth_status s = begin(ix);
    if (s != KTH_OK)
        return s;
    bool leased = false;
    s = asset_leased(ix, id, &leased);
    if (s == KTH_OK && leased)
        s = KTH_ERR_BUSY; /* leased since it was chosen: rolled back, nothing deleted */
    sqlite3_stmt *st = use(ix, S_DELETE_RESOURCES_OF);
    sqlite3_bind_int64(st, 1, id);
    if (s == KTH_OK)
        s = run(st);
    else
        done(st, SQLITE_OK);
    if (s == KTH_OK) {
        st = use(ix, S_DELETE_ASSET);
        sqlite3_bind_int64(st, 1, id);
        s = run(st);
    }
    return finish(ix, s);
}

/* A non-negative count from a column; sums come as REAL (TOTAL() never overflows) and are
 * clamped, since a damaged index may hold any value. */
static uint64_t column_u64(sqlite3_stmt *st, int i)
{
    if (sqlite3_column_type(st, i) == SQLITE_FLOAT) {
        double d = sqlite3_column_double(st, i);
        return d <= 0 ? 0 : d >= 18446744073709551615.0 ? UINT64_MAX : (uint64_t)d;
    }
    int64_t v = sqlite3_column_int64(st, i);
    return v > 0 ? (uint64_t)v : 0;
}

kth_status cache_index_asset_bytes(cache_index *ix, int64_t id, uint64_t *bytes, bool *pinned)
{
    sqlite3_stmt *st = use(ix, S_ASSET_BYTES);
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *bytes = column_u64(st, 0);
        if (pinned)
            *pinned = sqlite3_column_int(st, 1) != 0;
    }
    kth_status s = done(st, rc);
    return s == KTH_OK && rc == SQLITE_DONE ? KTH_ERR_NOT_FOUND : s;
}

kth_status cache_index_scan_evictable(cache_index *ix,
                                      bool (*fn)(void *arg, int64_t id, uint64_t bytes), void *arg)
{
    sqlite3_stmt *st = use(ix, S_SCAN_EVICTABLE);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (!fn(arg, sqlite3_column_int64(st, 0), column_u64(st, 1))) {
            rc = SQLITE_DONE;
            break;
        }
    }
    return done(st, rc);
}

kth_status cache_index_scan_assets(cache_index *ix,
                                   bool (*fn)(void *arg, const cache_asset_row *row), void *arg)
{
    sqlite3_stmt *st = use(ix, S_SCAN_ASSETS);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *key = (const char *)sqlite3_column_text(st, 1);
        const char *url = (const char *)sqlite3_column_text(st, 2);
        cache_asset_row row = {
            .id = sqlite3_column_int64(st, 0),
            .key = key ? key : "",
            .url = url ? url : "",
            .last_use = sqlite3_column_int64(st, 3),
            .pinned = sqlite3_column_int(st, 4) != 0,
            .bytes = column_u64(st, 5),
            .known_length = column_u64(st, 6),
            .resources = (uint32_t)column_u64(st, 7),
            .complete = (uint32_t)column_u64(st, 8),
            .unknown_lengths = (uint32_t)column_u64(st, 9),
            .leased = sqlite3_column_int(st, 10) != 0,
        };
        if (!fn(arg, &row)) {
            rc = SQLITE_DONE;
            break;
        }
    }
    return done(st, rc);
}

static bool file_name_valid(const char *f);

kth_status cache_index_scan_resources(cache_index *ix, int64_t asset_id,
                                      void (*fn)(void *arg, int64_t id, const char *file),
                                      void *arg)
{
    sqlite3_stmt *st = use(ix, S_SCAN_RESOURCES);
    sqlite3_bind_int64(st, 1, asset_id);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *file = (const char *)sqlite3_column_text(st, 1);
        fn(arg, sqlite3_column_int64(st, 0), file && file_name_valid(file) ? file : "");
    }
    return done(st, rc);
}

/* --- resources --- */

void cache_row_free(cache_row *row)
{
    if (row) {
        storage_range_set_free(&row->ranges);
        storage_sums_free(&row->sums);
    }
}

static void copy_text(char *dst, sqlite3_stmt *st, int i)
{
    const unsigned char *s = sqlite3_column_text(st, i);
    int n = sqlite3_column_bytes(st, i);
    if (!s || n <= 0 || n >= CACHE_TEXT_MAX) {
        dst[0] = '\0';
        return;
    }
    memcpy(dst, s, (size_t)n);
    dst[n] = '\0';
}

static uint64_t get_le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static void put_le64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (unsigned char)v;
        v >>= 8;
    }
}

static uint32_t get_le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put_le32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        p[i] = (unsigned char)v;
        v >>= 8;
    }
}

/* Packs the sum of every piece of `claims` (block_sums.h), in order, as little-endian u32.
 * *blob is malloc'd (NULL when there is no piece). KTH_ERR_INVALID_ARG when a piece has no
 * sum. */
static kth_status encode_sums(const storage_range_set *claims, const storage_sums *sums,
                              unsigned char **blob, size_t *len)
{
    *blob = NULL;
    *len = 0;
    size_t pieces = 0;
    storage_piece_iter it;
    storage_range p;
    for (storage_piece_iter_init(&it, claims); storage_piece_next(&it, &p);)
        pieces++;
    if (pieces == 0)
        return KTH_OK;
    unsigned char *out = platform_malloc(4 * pieces);
    if (!out)
        return KTH_ERR_NO_MEMORY;
    size_t at = 0;
    for (storage_piece_iter_init(&it, claims); storage_piece_next(&it, &p); at += 4) {
        uint32_t crc;
        if (!storage_sums_get(sums, p.start, p.end, &crc)) {
            platform_free(out);
            return KTH_ERR_INVALID_ARG;
        }
        put_le32(out + at, crc);
    }
    *blob = out;
    *len = at;
    return KTH_OK;
}

/* Decodes the sums blob into row->sums, one sum per piece of the claimed ranges; false when it
 * does not have exactly that many. */
/* Decodes the sums blob into row->sums: KTH_OK, KTH_ERR_FORMAT when it is malformed, or
 * KTH_ERR_NO_MEMORY. */
static kth_status decode_sums(cache_row *row, const unsigned char *blob, int n)
{
    /* Counted without walking them: a damaged row may claim absurd ranges. */
    uint64_t pieces = 0;
    for (size_t i = 0; i < row->ranges.count && pieces <= (uint64_t)INT32_MAX; i++) {
        const storage_range *r = &row->ranges.v[i];
        pieces += (r->end - 1) / STORAGE_BLOCK_SIZE - r->start / STORAGE_BLOCK_SIZE + 1;
    }
    if (n < 0 || (uint64_t)n != 4 * pieces || (n > 0 && !blob))
        return KTH_ERR_FORMAT;
    storage_piece_iter it;
    storage_range p;
    size_t at = 0;
    for (storage_piece_iter_init(&it, &row->ranges); storage_piece_next(&it, &p); at += 4) {
        kth_status st = storage_sums_set(&row->sums, p.start, p.end, get_le32(blob + at));
        if (st != KTH_OK)
            return st == KTH_ERR_NO_MEMORY ? st : KTH_ERR_FORMAT;
    }
    return KTH_OK;
}

/* Decodes the ranges blob into row->ranges: KTH_OK, KTH_ERR_FORMAT when it is malformed (the
 * row then claims nothing), or KTH_ERR_NO_MEMORY. Ranges must be sorted, disjoint,
 * non-adjacent and inside a known length. */
static kth_status decode_ranges(cache_row *row, const unsigned char *blob, int n)
{
    if (n == 0)
        return KTH_OK;
    if (!blob || n < 0 || n % 16 != 0)
        return KTH_ERR_FORMAT;
    uint64_t prev_end = 0;
    for (int i = 0; i < n; i += 16) {
        uint64_t start = get_le64(blob + i), end = get_le64(blob + i + 8);
        if (start >= end || end > (uint64_t)INT64_MAX || (i > 0 && start <= prev_end))
            return KTH_ERR_FORMAT;
        if (row->length_known && end > row->length)
            return KTH_ERR_FORMAT;
        kth_status st = storage_range_set_add(&row->ranges, start, end);
        if (st != KTH_OK)
            return st == KTH_ERR_NO_MEMORY ? st : KTH_ERR_FORMAT;
        prev_end = end;
    }
    return KTH_OK;
}

/* "ab/cd/" + 64 hex + "-" + 16 hex, with ab/cd the name's first four digits. */
static bool file_name_valid(const char *f)
{
    size_t n = strlen(f);
    if (n != 6 + 64 + 1 + 16 || f[2] != '/' || f[5] != '/' || f[70] != '-')
        return false;
    for (size_t i = 0; i < n; i++) {
        if (i == 2 || i == 5 || i == 70)
            continue;
        if (!((f[i] >= '0' && f[i] <= '9') || (f[i] >= 'a' && f[i] <= 'f')))
            return false;
    }
    return f[0] == f[6] && f[1] == f[7] && f[3] == f[8] && f[4] == f[9];
}

kth_status cache_index_find_resource(cache_index *ix, int64_t asset_id, const char *key,
                                     cache_row *row)
{
    memset(row, 0, sizeof *row);
    storage_range_set_init(&row->ranges);
    sqlite3_stmt *st = use(ix, S_FIND_RESOURCE);
    sqlite3_bind_int64(st, 1, asset_id);
    sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    /* Running out of memory is not a damaged row: it must not make the row claim nothing,
     * which would discard what the cache holds. */
    bool no_memory = false;
    if (rc == SQLITE_ROW) {
        row->id = sqlite3_column_int64(st, 0);
        const char *file = (const char *)sqlite3_column_text(st, 1);
        if (file && strlen(file) < sizeof row->file)
            strcpy(row->file, file);
        if (sqlite3_column_type(st, 2) == SQLITE_INTEGER && sqlite3_column_int64(st, 2) >= 0) {
            row->length_known = true;
            row->length = (uint64_t)sqlite3_column_int64(st, 2);
        }
        row->committed = sqlite3_column_int(st, 3) != 0 && row->length_known;
        if (row->committed) {
            row->claims_valid = true;
            if (row->length > 0 && storage_range_set_add(&row->ranges, 0, row->length) != KTH_OK)
                no_memory = true;
        } else {
            kth_status d =
                decode_ranges(row, sqlite3_column_blob(st, 4), sqlite3_column_bytes(st, 4));
            row->claims_valid = d == KTH_OK;
            no_memory = d == KTH_ERR_NO_MEMORY;
        }
        if (!row->claims_valid)
            storage_range_set_clear(&row->ranges);
        if (!file_name_valid(row->file)) {
            /* A name we did not write: never open it. The caller gives the row a new file. */
            row->file[0] = '\0';
            row->claims_valid = false;
            row->committed = false;
            storage_range_set_clear(&row->ranges);
        }
        copy_text(row->etag, st, 5);
        copy_text(row->last_modified, st, 6);
        copy_text(row->content_type, st, 7);
        row->stored_bytes = column_u64(st, 8);
        row->sums_known = sqlite3_column_type(st, 9) != SQLITE_NULL;
        kth_status d = row->sums_known && !no_memory ? decode_sums(row, sqlite3_column_blob(st, 9),
                                                                   sqlite3_column_bytes(st, 9))
                                                     : KTH_OK;
        if (d == KTH_ERR_NO_MEMORY)
            no_memory = true;
        else if (d != KTH_OK)
            storage_sums_free(&row->sums); /* malformed: none of the claims is backed */
    }
    kth_status s = done(st, rc);
    if (s == KTH_OK && rc == SQLITE_DONE)
        s = KTH_ERR_NOT_FOUND;
    if (s == KTH_OK && no_memory)
        s = KTH_ERR_NO_MEMORY;
    if (s != KTH_OK)
        cache_row_free(row);
    return s;
}

kth_status cache_index_add_resource(cache_index *ix, int64_t asset_id, const char *key,
                                    const char *file, int64_t *id)
{
    sqlite3_stmt *st = use(ix, S_ADD_RESOURCE);
    sqlite3_bind_int64(st, 1, asset_id);
    sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, file, -1, SQLITE_STATIC);
    kth_status s = run(st);
    if (s == KTH_OK)
        *id = sqlite3_last_insert_rowid(ix->db);
    return s;
}

kth_status cache_index_record(cache_index *ix, int64_t id, const storage_range_set *ranges,
                              uint64_t bytes, bool length_known, uint64_t length, bool committed,
                              const storage_sums *sums)
{
    if (length_known && length > (uint64_t)INT64_MAX)
        return KTH_ERR_INVALID_ARG;
    storage_range_set all;
    storage_range_set_init(&all);
    kth_status s = committed ? storage_range_set_add(&all, 0, length) : KTH_OK;
    unsigned char *sums_blob = NULL;
    size_t sums_len = 0;
    if (s == KTH_OK && sums)
        s = encode_sums(committed ? &all : ranges, sums, &sums_blob, &sums_len);
    storage_range_set_free(&all);
    if (s != KTH_OK)
        return s;
    sqlite3_stmt *st = use(ix, S_RECORD);
    if (sums_blob)
        sqlite3_bind_blob(st, 6, sums_blob, (int)sums_len, SQLITE_STATIC);
    else if (sums)
        sqlite3_bind_zeroblob(st, 6, 0); /* known and empty, unlike NULL (schema 1) */
    else
        sqlite3_bind_null(st, 6);
    unsigned char *blob = NULL;
    if (!committed && ranges && ranges->count > 0) {
        blob = platform_malloc(ranges->count * 16);
        if (!blob) {
            done(st, SQLITE_OK);
            platform_free(sums_blob);
            return KTH_ERR_NO_MEMORY;
        }
        for (size_t i = 0; i < ranges->count; i++) {
            put_le64(blob + 16 * i, ranges->v[i].start);
            put_le64(blob + 16 * i + 8, ranges->v[i].end);
        }
        sqlite3_bind_blob(st, 2, blob, (int)(ranges->count * 16), SQLITE_STATIC);
    } else {
        sqlite3_bind_null(st, 2);
    }
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 3, (int64_t)bytes);
    if (length_known)
        sqlite3_bind_int64(st, 4, (int64_t)length);
    else
        sqlite3_bind_null(st, 4);
    sqlite3_bind_int(st, 5, committed);
    s = run(st);
    platform_free(blob);
    platform_free(sums_blob);
    return s;
}

kth_status cache_index_reset_resource(cache_index *ix, int64_t id, const char *file)
{
    sqlite3_stmt *st = use(ix, S_RESET_RESOURCE);
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_text(st, 2, file, -1, SQLITE_STATIC);
    return run(st);
}

kth_status cache_index_delete_resource(cache_index *ix, int64_t id)
{
    sqlite3_stmt *st = use(ix, S_DELETE_RESOURCE);
    sqlite3_bind_int64(st, 1, id);
    return run(st);
}

kth_status cache_index_set_meta(cache_index *ix, int64_t id, const char *etag,
                                const char *last_modified, const char *content_type)
{
    sqlite3_stmt *st = use(ix, S_SET_META);
    sqlite3_bind_int64(st, 1, id);
    bind_text_or_null(st, 2, etag);
    bind_text_or_null(st, 3, last_modified);
    bind_text_or_null(st, 4, content_type);
    return run(st);
}

kth_status cache_index_set_length(cache_index *ix, int64_t id, uint64_t length)
{
    if (length > (uint64_t)INT64_MAX)
        return KTH_ERR_INVALID_ARG;
    sqlite3_stmt *st = use(ix, S_SET_LENGTH);
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, (int64_t)length);
    return run(st);
}

kth_status cache_index_file_known(cache_index *ix, const char *file, bool *known)
{
    sqlite3_stmt *st = use(ix, S_FILE_KNOWN);
    sqlite3_bind_text(st, 1, file, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    *known = rc == SQLITE_ROW;
    return done(st, rc);
}

kth_status cache_index_totals(cache_index *ix, uint64_t *bytes, uint64_t *assets,
                              uint64_t *resources, int64_t *max_last_use)
{
    sqlite3_stmt *st = use(ix, S_TOTALS);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        if (bytes)
            *bytes = column_u64(st, 0);
        if (assets)
            *assets = column_u64(st, 1);
        if (max_last_use)
            *max_last_use = sqlite3_column_int64(st, 2);
    }
    kth_status s = done(st, rc);
    if (s != KTH_OK || !resources)
        return s;
    st = use(ix, S_RESOURCE_COUNT);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *resources = column_u64(st, 0);
    return done(st, rc);
}

kth_status cache_index_pinned_bytes(cache_index *ix, uint64_t *bytes)
{
    sqlite3_stmt *st = use(ix, S_PINNED_BYTES);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *bytes = column_u64(st, 0);
    return done(st, rc);
}

kth_status cache_index_get_setting(cache_index *ix, const char *name, void *buf, size_t size,
                                   size_t *len)
{
    sqlite3_stmt *st = use(ix, S_GET_SETTING);
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    *len = 0;
    bool found = rc == SQLITE_ROW;
    if (found) {
        size_t n = (size_t)sqlite3_column_bytes(st, 0);
        const void *v = sqlite3_column_blob(st, 0);
        *len = n;
        if (v && n)
            memcpy(buf, v, n < size ? n : size);
    }
    kth_status s = done(st, rc);
    return s == KTH_OK && !found ? KTH_ERR_NOT_FOUND : s;
}

kth_status cache_index_put_setting(cache_index *ix, const char *name, const void *value, size_t len)
{
    sqlite3_stmt *st = use(ix, S_PUT_SETTING);
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, value, (int)len, SQLITE_STATIC);
    return done(st, sqlite3_step(st));
}

/* --- leases --- */

static kth_status add_lease(cache_index *ix, int64_t id, const cache_holder *h)
{
    sqlite3_stmt *st = use(ix, S_ADD_LEASE);
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, h->pid);
    sqlite3_bind_int64(st, 3, h->started);
    sqlite3_bind_int64(st, 4, h->handle);
    return run(st);
}

kth_status cache_index_lease_asset(cache_index *ix, const char *key, const char *url,
                                   int64_t now_ms, bool create, const cache_holder *holder,
                                   int64_t *id)
{
    kth_status s = begin(ix);
    if (s != KTH_OK)
        return s;
    s = cache_index_find_asset(ix, key, id);
    if (s == KTH_ERR_NOT_FOUND && create)
        s = cache_index_add_asset(ix, key, url, now_ms, id);
    if (s == KTH_OK)
        s = add_lease(ix, *id, holder);
    return finish(ix, s);
}

kth_status cache_index_drop_lease(cache_index *ix, int64_t id, const cache_holder *h)
{
    sqlite3_stmt *st = use(ix, S_DROP_LEASE);
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, h->pid);
    sqlite3_bind_int64(st, 3, h->started);
    sqlite3_bind_int64(st, 4, h->handle);
    return run(st);
}

kth_status cache_index_asset_leased(cache_index *ix, int64_t id, bool *leased)
{
    return asset_leased(ix, id, leased);
}

enum { HOLDER_BATCH = 64 };

kth_status cache_index_reclaim_leases(cache_index *ix, bool (*alive)(int64_t pid, int64_t started),
                                      uint64_t *reclaimed)
{
    int64_t dead[HOLDER_BATCH][2];
    size_t n = 0;
    sqlite3_stmt *st = use(ix, S_SCAN_HOLDERS);
    int rc = SQLITE_DONE;
    while (n < HOLDER_BATCH && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t pid = sqlite3_column_int64(st, 0), started = sqlite3_column_int64(st, 1);
        if (!alive(pid, started)) {
            dead[n][0] = pid;
            dead[n][1] = started;
            n++;
        }
    }
    kth_status s = done(st, n == HOLDER_BATCH ? SQLITE_OK : rc);
    for (size_t i = 0; s == KTH_OK && i < n; i++) {
        st = use(ix, S_DROP_HOLDER);
        sqlite3_bind_int64(st, 1, dead[i][0]);
        sqlite3_bind_int64(st, 2, dead[i][1]);
        s = run(st);
        if (s == KTH_OK && reclaimed)
            *reclaimed += (uint64_t)sqlite3_changes(ix->db);
    }
    return s;
}
