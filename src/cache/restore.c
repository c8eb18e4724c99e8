/*
 * restore.c — reopening a resource's data file as a storage resource that holds exactly what the
 * index vouches for, repairing the row when the file backs less.
 *
 * Invariants:
 * - A claim is kept only when the data file exists, is a regular file we can open, and is long
 *   enough: ranges are clipped to the file's size; a missing file loses its claims and is
 *   recreated; a name of the wrong shape, or something else at our name, gets a new file.
 * - A claim is kept only where sums back it (pieces with a sum), and the restored resource
 *   checks each of those pieces on its first read: bytes that rotted on disk are
 *   refetched (online) or reported (offline), never served. Rows recorded before sums existed
 *   (schema 1) keep their claims unchecked; their sums are computed and recorded at the next
 *   checkpoint (asset.c).
 * - Repairs only ever shrink claims; the caller records the repaired row before anyone reads.
 * - Runs without the index lock except inside give_new_file.
 * - A follower (another process holds the row's writer lock) neither truncates nor replaces the
 *   file that process writes.
 */
#include "cache/cache_internal.h"

#include "platform/log.h"
#include "platform/text.h"
#include "platform/mem.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

char *cache_data_path(const kth_cache *c, const char *file)
{
    return platform_printf_new("%s/%s", c->data_dir, file);
}

/* mkdir data_dir/<the first `n` bytes of file>; true when it exists now. */
static bool make_dir_of(const kth_cache *c, const char *file, int n)
{
    char *dir = platform_printf_new("%s/%.*s", c->data_dir, n, file);
    bool ok = dir && (mkdir(dir, 0700) == 0 || errno == EEXIST);
    platform_free(dir);
    return ok;
}

/* Creates data/ab and data/ab/cd for a file name "ab/cd/...". */
bool cache_make_fanout_dirs(const kth_cache *c, const char *file)
{
    return make_dir_of(c, file, 2) && make_dir_of(c, file, 5);
}

/* Drops every claim of the row in memory (the caller records the result). */
static void forget_claims(cache_row *row, bool *repaired)
{
    if (row->ranges.count > 0 || row->committed)
        *repaired = true;
    storage_range_set_clear(&row->ranges);
    row->committed = false;
}

/* Points the row at a new, empty data file (the old one is unusable). Index lock taken. */
static kth_status give_new_file(kth_cache *c, cache_asset *a, const char *key, cache_row *row)
{
    char file[CACHE_FILE_MAX];
    kth_status st = cache_new_file_name(a->key, key, file, sizeof file);
    if (st != KTH_OK)
        return st;
    platform_mutex_lock(&c->lock);
    st = cache_index_reset_resource(c->index, row->id, file);
    if (st == KTH_OK) {
        cache_set_total_locked(
            c, c->total_bytes > row->stored_bytes ? c->total_bytes - row->stored_bytes : 0);
        row->stored_bytes = 0;
    } else {
        cache_set_error_locked(c, "cache index: %s", cache_index_errmsg(c->index));
    }
    platform_mutex_unlock(&c->lock);
    if (st != KTH_OK)
        return st;
    memcpy(row->file, file, sizeof file);
    storage_range_set_clear(&row->ranges);
    storage_sums_free(&row->sums);
    row->sums_known = true; /* it claims nothing, so nothing lacks a sum */
    row->committed = false;
    row->length_known = false;
    row->etag[0] = row->last_modified[0] = row->content_type[0] = '\0';
    return KTH_OK;
}

/* Creates the (new, empty) data file `file` and opens it. */
static kth_status open_new_file(kth_cache *c, const char *file, storage_resource **out, char *err,
                                size_t errlen)
{
    char *path = cache_data_path(c, file);
    if (!path)
        return KTH_ERR_NO_MEMORY;
    kth_status st;
    if (!cache_make_fanout_dirs(c, file)) {
        if (err && errlen)
            snprintf(err, errlen, "cannot create a directory for %s: %s", path, strerror(errno));
        st = KTH_ERR_IO;
    } else {
        st = storage_resource_open_file(path, STORAGE_FILE_TRUNCATE, out, err, errlen);
    }
    platform_free(path);
    return st;
}

/* Keeps only the claims the file can back: ranges are clipped to its size. */
static void clip_claims(cache_row *row, uint64_t size, bool *repaired)
{
    if (row->committed && row->length > size) {
        row->committed = false;
        *repaired = true;
    }
    if (storage_range_set_total(&row->ranges) == 0 ||
        row->ranges.v[row->ranges.count - 1].end <= size)
        return;
    *repaired = true;
    storage_range_set_remove(&row->ranges, size, UINT64_MAX);
}

/* Keeps only the claims block sums back (rows of schema 1 have no sums and keep theirs). */
static kth_status trim_to_sums(cache_row *row, bool *repaired)
{
    if (!row->sums_known)
        return KTH_OK;
    storage_range_set backed;
    storage_range_set_init(&backed);
    kth_status st = storage_sums_covered(&row->sums, &row->ranges, &backed);
    if (st == KTH_OK && storage_range_set_total(&backed) != storage_range_set_total(&row->ranges)) {
        *repaired = true;
        row->committed = false;
        storage_range_set swap = row->ranges;
        row->ranges = backed;
        backed = swap;
    }
    storage_range_set_free(&backed);
    return st;
}

/* Gives r (just opened) its cipher and exactly what the row claims. A protected object whose
 * tag fails (altered, truncated, or another file) is KTH_ERR_PROTECTED: the caller starts the
 * row over rather than hand out a byte of it. */
static kth_status restore_claims(kth_cache *c, const char *key, cache_row *row, storage_resource *r,
                                 bool *repaired)
{
    kth_status st = cache_protect_file(c, row->file, r);
    if (st == KTH_OK)
        st = storage_resource_restore_ranges(r, row->ranges.v, row->ranges.count);
    if (st == KTH_OK && row->length_known)
        st = storage_resource_set_length(r, row->length);
    if (st == KTH_OK && row->committed && storage_resource_commit(r, row->length) != KTH_OK) {
        row->committed = false; /* cannot happen with validated rows; claim less if it does */
        *repaired = true;
    }
    if (st == KTH_OK && row->committed)
        st = storage_resource_check_tag(r);
    if (st == KTH_OK && row->sums_known)
        st = storage_resource_restore_sums(r, &row->sums, !c->offline, key);
    return st;
}

/* Opens the row's data file as a storage resource holding exactly what the (repaired) row
 * claims. Runs without the index lock except where give_new_file takes it. */
kth_status cache_restore_from_disk(kth_cache *c, cache_asset *a, const char *key, cache_row *row,
                                   bool follower, storage_resource **out, bool *repaired, char *err,
                                   size_t errlen)
{
    char *path = NULL;
    bool need_new_file = row->file[0] == '\0';
    if (!row->claims_valid)
        *repaired = true;
    if (!need_new_file) {
        if (!(path = cache_data_path(c, row->file)))
            return KTH_ERR_NO_MEMORY;
        struct stat sb;
        int rc = stat(path, &sb);
        if (rc == 0 && S_ISREG(sb.st_mode)) {
            clip_claims(row, (uint64_t)sb.st_size, repaired);
            kth_status st = trim_to_sums(row, repaired);
            if (st != KTH_OK) {
                platform_free(path);
                return st;
            }
        } else if (rc != 0 && errno == ENOENT) {
            forget_claims(row, repaired);
            if (!cache_make_fanout_dirs(c, row->file))
                need_new_file = true;
        } else {
            need_new_file = true; /* a directory or something unreadable sits at our name */
        }
    }
    storage_resource *r = NULL;
    if (!need_new_file) {
        /* Never truncated: bytes nobody recorded are never read (nothing claims them), and a
         * follower of a writer that died before recording anything may still be reading what
         * it wrote there itself. */
        kth_status st = storage_resource_open_file(path, 0, &r, err, errlen);
        if (st == KTH_OK && (st = restore_claims(c, key, row, r, repaired)) != KTH_OK) {
            storage_resource_unref(r);
            r = NULL;
            if (st == KTH_ERR_PROTECTED)
                platform_log(KTH_LOG_WARN, "cache",
                             "%s: the protected cached copy failed authentication; "
                             "fetching it again",
                             key);
        }
        if (st == KTH_ERR_NO_MEMORY || st == KTH_ERR_INTERNAL) {
            platform_free(path);
            return st;
        }
        if (st != KTH_OK)
            need_new_file = true;
    }
    platform_free(path);
    if (need_new_file && follower) {
        if (err && errlen)
            snprintf(err, errlen, "cannot use the data file of %s, which another process writes",
                     key);
        return KTH_ERR_IO;
    }
    if (need_new_file) {
        forget_claims(row, repaired);
        kth_status st = give_new_file(c, a, key, row);
        if (st == KTH_OK)
            st = open_new_file(c, row->file, &r, err, errlen);
        if (st == KTH_OK)
            st = restore_claims(c, key, row, r, repaired);
        if (st != KTH_OK) {
            storage_resource_unref(r);
            return st;
        }
    }
    *out = r;
    return KTH_OK;
}
