/*
 * resource_sums.c — the piece checksums of a file resource (block_sums.h): summing the writer's
 * bytes as they are written, summing the other pieces by reading them back (seal), and checking
 * each piece restored from disk the first time it is read.
 *
 * Invariants:
 * - A sum is the CRC-32C of the bytes the file holds for its piece (for a protected resource,
 *   the ciphertext: checked before it is decrypted): taken from the writer's own buffer (after
 *   encryption) when the writer filled a whole block (or a file's tail block) in one ascending run,
 *   else read back from the file (seal); a restored piece carries the sum its owner recorded.
 * - A pending piece (restored, not yet checked) is present and has a sum. Its bytes reach a
 *   reader only in a buffer whose checksum matched that sum; the first match clears it. Seal,
 *   before summing a piece that grew around a pending one, checks the pending one in the bytes
 *   it read. A whole block the writer fills anew in one run stops being pending (its bytes and
 *   sum are the writer's).
 * - Writing, reading and summing run without the lock; the lock is taken to publish the outcome,
 *   which is judged against the state at that moment (a piece may have been checked, dropped or
 *   rewritten meanwhile).
 *
 * Why checking costs little: the pending test runs under the lock read_at takes anyway and is
 * false at once when nothing is pending; a piece that passed is never summed again; and a read
 * that covers whole blocks is checked in the reader's own buffer, right after the pread.
 */
#include "storage/resource_internal.h"

#include "platform/log.h"
#include "storage/crc32c.h"
#include "platform/mem.h"

#include <stdlib.h>
#include <string.h>

#define BLOCK STORAGE_BLOCK_SIZE
/* A write is published in slices of at most this many blocks (bounded bookkeeping per slice). */
#define SLICE_BLOCKS 8
/* A checked read looks at most at this many pieces; seal sums this many per look. */
#define MAX_PIECES 64

void storage_sums_state_free(storage_resource *r)
{
    storage_sums_free(&r->sums);
    platform_free(r->pending);
    platform_free(r->label);
    r->pending = NULL;
    r->label = NULL;
    r->pending_blocks = r->pending_left = 0;
}

static bool is_whole(storage_range p)
{
    return p.start % BLOCK == 0 && p.end - p.start == BLOCK;
}

static bool whole_pending(const storage_resource *r, uint64_t b)
{
    return b < r->pending_blocks && ((r->pending[b / 64] >> (b % 64)) & 1);
}

/* True when piece p is pending. Lock held. */
static bool piece_pending(const storage_resource *r, storage_range p)
{
    if (is_whole(p))
        return whole_pending(r, p.start / BLOCK);
    size_t i = storage_sums_part_at(&r->sums, p.start);
    return i < r->sums.part_count && r->sums.part[i].start == p.start &&
           r->sums.part[i].end == p.end && r->sums.part[i].pending;
}

/* Nothing in [start, end) is pending any more (it is checked, or about to be replaced). Lock
 * held. */
static void clear_pending(storage_resource *r, uint64_t start, uint64_t end)
{
    if (r->pending_left == 0 || end <= start)
        return;
    for (uint64_t b = start / BLOCK; b <= (end - 1) / BLOCK && b < r->pending_blocks; b++) {
        if (whole_pending(r, b)) {
            r->pending[b / 64] &= ~((uint64_t)1 << (b % 64));
            r->pending_left--;
        }
    }
    for (size_t i = storage_sums_part_at(&r->sums, start);
         i < r->sums.part_count && r->sums.part[i].start < end; i++) {
        if (r->sums.part[i].pending) {
            r->sums.part[i].pending = false;
            r->pending_left--;
        }
    }
}

bool storage_pending_locked(const storage_resource *r, uint64_t start, uint64_t end)
{
    if (r->pending_left == 0 || end <= start)
        return false;
    for (uint64_t b = start / BLOCK; b <= (end - 1) / BLOCK && b < r->pending_blocks; b++)
        if (whole_pending(r, b))
            return true;
    for (size_t i = storage_sums_part_at(&r->sums, start);
         i < r->sums.part_count && r->sums.part[i].start < end; i++)
        if (r->sums.part[i].pending)
            return true;
    return false;
}

/* ---- the writer ---- */

typedef struct slice_sums {
    size_t count;
    uint64_t block[SLICE_BLOCKS];
    uint32_t crc[SLICE_BLOCKS];
} slice_sums;

/* Extends the writer's run over the n bytes at offset (one slice), collecting the whole blocks
 * it fills from their first byte. */
static void sum_slice(storage_block_acc *acc, uint64_t offset, const uint8_t *p, size_t n,
                      slice_sums *done)
{
    uint64_t end = offset + n;
    while (offset < end) {
        uint64_t b = offset / BLOCK, block_end = (b + 1) * BLOCK;
        uint64_t piece_end = block_end < end ? block_end : end;
        size_t len = (size_t)(piece_end - offset);
        if (acc->valid && acc->block == b && acc->pos == offset) {
            acc->crc = storage_crc32c(acc->crc, p, len);
        } else {
            acc->valid = true;
            acc->block = b;
            acc->start = offset;
            acc->crc = storage_crc32c(0, p, len);
        }
        acc->pos = piece_end;
        if (piece_end == block_end) {
            if (acc->start == b * BLOCK && done->count < SLICE_BLOCKS) {
                done->block[done->count] = b;
                done->crc[done->count++] = acc->crc;
            }
            acc->valid = false;
        }
        offset = piece_end;
        p += len;
    }
}

/* The writer filled [start, end), all of its block that exists, in one run with checksum crc.
 * Lock held. */
static void record_written_locked(storage_resource *r, uint64_t start, uint64_t end, uint32_t crc)
{
    if (!storage_range_set_contains(&r->ranges, start, end))
        return; /* part of it was dropped meanwhile: seal sums it once it is whole again */
    clear_pending(r, start, end); /* the writer's own bytes replace whatever was restored */
    storage_sums_set(&r->sums, start, end, crc); /* out of memory: seal sums it later */
}

void storage_finish_tail_locked(storage_resource *r)
{
    storage_block_acc *a = &r->acc;
    if (!r->file || !a->valid || !r->length_known || a->pos != r->length ||
        a->start != a->block * BLOCK)
        return;
    record_written_locked(r, a->start, a->pos, a->crc);
    a->valid = false;
}

kth_status storage_write_file_summed(storage_resource *r, uint64_t offset, const uint8_t *src,
                                     size_t n)
{
    platform_mutex_lock(&r->lock);
    storage_block_acc acc = r->acc; /* only the writer changes it */
    platform_mutex_unlock(&r->lock);
    uint64_t end = offset + n;
    /* Protected: the file and the sums get the ciphertext (see storage_resource_set_cipher). */
    uint8_t *sealed = NULL;
    if (r->cipher &&
        !(sealed = platform_malloc(n < SLICE_BLOCKS * BLOCK ? n : SLICE_BLOCKS * BLOCK)))
        return KTH_ERR_NO_MEMORY;
    while (offset < end) {
        uint64_t slice_end = (offset / BLOCK + SLICE_BLOCKS) * BLOCK;
        if (slice_end > end)
            slice_end = end;
        size_t len = (size_t)(slice_end - offset);
        slice_sums done = {0};
        const uint8_t *out = src;
        kth_status st = KTH_OK;
        if (sealed) {
            st = storage_cipher_apply(r->cipher, offset, src, sealed, len);
            out = sealed;
        }
        if (st == KTH_OK)
            st = storage_file_pwrite(r->file, offset, out, len);
        if (st == KTH_OK)
            sum_slice(&acc, offset, out, len, &done);
        platform_mutex_lock(&r->lock);
        if (st == KTH_OK && r->state != STORAGE_ACTIVE)
            st = KTH_ERR_STATE; /* ended while we wrote: the bytes are not published */
        if (st == KTH_OK)
            st = storage_range_set_add(&r->ranges, offset, slice_end);
        for (size_t i = 0; st == KTH_OK && i < done.count; i++)
            record_written_locked(r, done.block[i] * BLOCK, (done.block[i] + 1) * BLOCK,
                                  done.crc[i]);
        if (st != KTH_OK)
            acc.valid = false;
        r->acc = acc;
        if (st == KTH_OK)
            storage_finish_tail_locked(r);
        platform_cond_broadcast(&r->cond);
        platform_mutex_unlock(&r->lock);
        if (st != KTH_OK) {
            platform_free(sealed);
            return st;
        }
        offset = slice_end;
        src += len;
    }
    platform_free(sealed);
    return KTH_OK;
}

/* ---- damage ---- */

/* Piece p, pending, failed its check: drops it (refetch_damaged) or keeps it as damaged.
 * Lock held. KTH_ERR_RETRY (*dropped set) or KTH_ERR_CORRUPT. */
static kth_status damaged_locked(storage_resource *r, storage_range p, bool *dropped)
{
    if (!r->refetch_damaged)
        return KTH_ERR_CORRUPT;
    if (storage_range_set_remove(&r->ranges, p.start, p.end) != KTH_OK)
        return KTH_ERR_NO_MEMORY;
    clear_pending(r, p.start, p.end);
    storage_sums_clear(&r->sums, p.start, p.end);
    if (r->state == STORAGE_COMMITTED)
        r->state = STORAGE_ACTIVE; /* the writer completes it again; the length stays */
    platform_cond_broadcast(&r->cond);
    *dropped = true;
    return KTH_ERR_RETRY;
}

static void log_dropped(const storage_resource *r, storage_range p)
{
    platform_log(KTH_LOG_WARN, "storage",
                 "%s: cached bytes [%llu, %llu) failed their checksum; fetching them again",
                 r->label ? r->label : "a cached resource", (unsigned long long)p.start,
                 (unsigned long long)p.end);
}

/* ---- checking restored pieces on read ---- */

/* Judges piece p for a reader whose bytes of it have checksum crc. Lock held. KTH_OK: they
 * are the piece's bytes. */
static kth_status judge_locked(storage_resource *r, storage_range p, uint32_t crc, bool *dropped)
{
    uint32_t want;
    if (storage_sums_get(&r->sums, p.start, p.end, &want) && want == crc) {
        clear_pending(r, p.start, p.end);
        return KTH_OK;
    }
    if (!piece_pending(r, p))
        return KTH_ERR_RETRY; /* dropped or rewritten while we read it: read again */
    return damaged_locked(r, p, dropped);
}

/* The pending pieces overlapping [start, end), at most MAX_PIECES. Lock held. */
static size_t pending_pieces_locked(const storage_resource *r, uint64_t start, uint64_t end,
                                    storage_range *out)
{
    size_t n = 0;
    size_t i = storage_sums_part_at(&r->sums, start);
    for (uint64_t b = start / BLOCK; b <= (end - 1) / BLOCK && n < MAX_PIECES; b++) {
        if (whole_pending(r, b)) {
            out[n++] = (storage_range){b * BLOCK, (b + 1) * BLOCK};
            continue;
        }
        for (; i < r->sums.part_count && r->sums.part[i].start < (b + 1) * BLOCK &&
               r->sums.part[i].start < end && n < MAX_PIECES;
             i++)
            if (r->sums.part[i].pending)
                out[n++] = (storage_range){r->sums.part[i].start, r->sums.part[i].end};
    }
    return n;
}

/* The checksum of piece p, taking its bytes from buf (the k bytes read at offset) when it holds
 * all of them, else reading the piece into *scratch and copying the part buf holds from there. */
static kth_status piece_checksum(storage_resource *r, storage_range p, uint64_t offset,
                                 uint8_t *buf, size_t k, uint8_t **scratch, uint32_t *crc)
{
    uint64_t end = offset + k;
    if (p.start >= offset && p.end <= end) {
        *crc = storage_crc32c(0, buf + (p.start - offset), (size_t)(p.end - p.start));
        return KTH_OK;
    }
    if (!*scratch && !(*scratch = platform_malloc((size_t)BLOCK)))
        return KTH_ERR_NO_MEMORY;
    kth_status st = storage_file_pread(r->file, p.start, *scratch, (size_t)(p.end - p.start));
    if (st != KTH_OK)
        return st;
    *crc = storage_crc32c(0, *scratch, (size_t)(p.end - p.start));
    uint64_t from = p.start > offset ? p.start : offset;
    uint64_t to = p.end < end ? p.end : end;
    memcpy(buf + (from - offset), *scratch + (from - p.start), (size_t)(to - from));
    return KTH_OK;
}

kth_status storage_read_checked(storage_resource *r, uint64_t offset, uint8_t *buf, size_t k,
                                size_t *got)
{
    *got = 0;
    /* The pieces pending before the read: their bytes in buf are judged whatever happens to the
     * piece meanwhile (a piece only ever stops being pending). */
    storage_range pieces[MAX_PIECES];
    platform_mutex_lock(&r->lock);
    /* The caller saw [offset, offset + k) present, but not under this lock: a piece of it that
     * another reader dropped since is neither pending nor present any more, and its bytes in
     * the file must not be handed out unchecked. */
    uint64_t run_end = storage_range_set_run_end(&r->ranges, offset);
    if (run_end <= offset) {
        platform_mutex_unlock(&r->lock);
        return KTH_ERR_RETRY;
    }
    if (run_end - offset < k)
        k = (size_t)(run_end - offset);
    size_t n = pending_pieces_locked(r, offset, offset + k, pieces);
    platform_mutex_unlock(&r->lock);
    if (n == MAX_PIECES && pieces[n - 1].end < offset + k)
        k = (size_t)(pieces[n - 1].end - offset); /* the rest is checked by the next read */

    kth_status st = storage_file_pread(r->file, offset, buf, k);
    uint8_t *scratch = NULL;
    size_t good = k;
    for (size_t i = 0; st == KTH_OK && i < n; i++) {
        uint32_t crc = 0;
        bool dropped = false;
        st = piece_checksum(r, pieces[i], offset, buf, k, &scratch, &crc);
        if (st == KTH_OK) {
            platform_mutex_lock(&r->lock);
            st = judge_locked(r, pieces[i], crc, &dropped);
            platform_mutex_unlock(&r->lock);
        }
        if (dropped)
            log_dropped(r, pieces[i]);
        if (st != KTH_OK && pieces[i].start > offset) {
            good = (size_t)(pieces[i].start - offset); /* what lies before the piece is good */
            st = KTH_OK;
            break;
        }
    }
    platform_free(scratch);
    if (st == KTH_OK && r->cipher) /* the checks judged the ciphertext; hand out plaintext */
        st = storage_cipher_apply(r->cipher, offset, buf, buf, good);
    if (st == KTH_OK)
        *got = good;
    return st;
}

/* ---- restoring ---- */

/* Marks piece p (which has a sum) pending. Lock held. */
static void set_pending(storage_resource *r, storage_range p)
{
    if (is_whole(p)) {
        uint64_t b = p.start / BLOCK;
        r->pending[b / 64] |= (uint64_t)1 << (b % 64);
    } else {
        r->sums.part[storage_sums_part_at(&r->sums, p.start)].pending = true;
    }
    r->pending_left++;
}

/* Takes from `sums` the sums of the present pieces and marks them pending. Lock held. */
static kth_status restore_pieces_locked(storage_resource *r, const storage_sums *sums)
{
    uint64_t end = r->ranges.count ? r->ranges.v[r->ranges.count - 1].end : 0;
    uint64_t blocks = (end + BLOCK - 1) / BLOCK;
    if (blocks > 0 &&
        !(r->pending = platform_calloc((size_t)((blocks + 63) / 64), sizeof *r->pending)))
        return KTH_ERR_NO_MEMORY;
    r->pending_blocks = blocks;
    storage_piece_iter it;
    storage_piece_iter_init(&it, &r->ranges);
    storage_range p;
    while (storage_piece_next(&it, &p)) {
        uint32_t crc;
        if (!storage_sums_get(sums, p.start, p.end, &crc))
            continue; /* the owner vouches for it unchecked (it has no sum) */
        kth_status st = storage_sums_set(&r->sums, p.start, p.end, crc);
        if (st != KTH_OK)
            return st;
        set_pending(r, p);
    }
    return KTH_OK;
}

kth_status storage_resource_restore_sums(storage_resource *r, const storage_sums *sums,
                                         bool refetch_damaged, const char *label)
{
    if (!r || !sums)
        return KTH_ERR_INVALID_ARG;
    char *name = label ? platform_strdup(label) : NULL;
    if (label && !name)
        return KTH_ERR_NO_MEMORY;
    kth_status st = KTH_OK;
    platform_mutex_lock(&r->lock);
    if (!r->file || r->sums_restored) {
        st = KTH_ERR_STATE;
    } else {
        storage_sums_free(&r->sums);
        st = restore_pieces_locked(r, sums);
        if (st != KTH_OK) {
            storage_sums_free(&r->sums);
            platform_free(r->pending);
            r->pending = NULL;
            r->pending_blocks = r->pending_left = 0;
        } else {
            r->sums_restored = true;
            r->refetch_damaged = refetch_damaged;
            r->label = name;
            name = NULL;
        }
    }
    platform_mutex_unlock(&r->lock);
    platform_free(name);
    return st;
}

/* ---- sealing: summing pieces by reading them back ---- */

/* The first block in [b, end) without a whole-block sum (end when none); skips 64 summed blocks
 * at a time, so a checkpoint of a large resource holds the lock briefly. */
static uint64_t next_unsummed_block(const storage_sums *s, uint64_t b, uint64_t end)
{
    while (b < end) {
        if (b >= s->count)
            return b;
        uint64_t word = ~s->have[b / 64] >> (b % 64);
        if (word)
            return b + (uint64_t)__builtin_ctzll(word) < end ? b + (uint64_t)__builtin_ctzll(word)
                                                             : end;
        b = (b / 64 + 1) * 64;
    }
    return end;
}

/* Up to MAX_PIECES present pieces without a sum, from offset `from` on. Lock held. */
static size_t unsummed_locked(const storage_resource *r, uint64_t from, storage_range *out)
{
    size_t n = 0;
    for (size_t i = 0; i < r->ranges.count && n < MAX_PIECES; i++) {
        storage_range_set one = {&r->ranges.v[i], 1, 1};
        if (r->ranges.v[i].end <= from)
            continue;
        storage_piece_iter it;
        storage_piece_iter_init(&it, &one);
        if (it.at < from)
            it.at = from; /* `from` is always a piece boundary */
        storage_range p;
        while (n < MAX_PIECES && storage_piece_next(&it, &p)) {
            if (is_whole(p)) {
                /* Jump over the run of whole blocks that have their sums. */
                uint64_t last = r->ranges.v[i].end / BLOCK;
                uint64_t b = next_unsummed_block(&r->sums, p.start / BLOCK, last);
                if (b > p.start / BLOCK) {
                    it.at = b * BLOCK;
                    continue;
                }
            }
            if (!storage_sums_get(&r->sums, p.start, p.end, NULL))
                out[n++] = p;
        }
    }
    return n;
}

/* Checks the pending parts inside piece p against its bytes in buf, read back from the file.
 * Lock held. KTH_OK: none failed; else the status of the first that did (dropped, or kept
 * damaged). */
static kth_status check_parts_in_locked(storage_resource *r, storage_range p, const uint8_t *buf,
                                        bool *dropped, storage_range *bad)
{
    for (size_t i = storage_sums_part_at(&r->sums, p.start);
         i < r->sums.part_count && r->sums.part[i].start < p.end; i++) {
        storage_part_sum s = r->sums.part[i];
        if (!s.pending || s.start < p.start || s.end > p.end)
            continue;
        if (storage_crc32c(0, buf + (s.start - p.start), (size_t)(s.end - s.start)) != s.crc) {
            *bad = (storage_range){s.start, s.end};
            return damaged_locked(r, *bad, dropped);
        }
    }
    return KTH_OK;
}

/* Sums piece p from its bytes read back into buf. Lock held. */
static kth_status seal_piece_locked(storage_resource *r, storage_range p, const uint8_t *buf,
                                    bool *dropped, storage_range *bad)
{
    /* Still a present piece without a sum: these are its bytes. */
    if (!storage_range_set_contains(&r->ranges, p.start, p.end) ||
        storage_sums_get(&r->sums, p.start, p.end, NULL))
        return KTH_OK;
    kth_status st = check_parts_in_locked(r, p, buf, dropped, bad);
    if (st != KTH_OK)
        return st == KTH_ERR_NO_MEMORY ? st : KTH_OK; /* damaged: p is not summed */
    clear_pending(r, p.start, p.end);                 /* checked just now */
    return storage_sums_set(&r->sums, p.start, p.end,
                            storage_crc32c(0, buf, (size_t)(p.end - p.start)));
}

kth_status storage_resource_seal(storage_resource *r)
{
    if (!r)
        return KTH_ERR_INVALID_ARG;
    if (!r->file)
        return KTH_OK;
    uint8_t *buf = NULL;
    kth_status st = KTH_OK;
    uint64_t from = 0;
    for (;;) {
        storage_range pieces[MAX_PIECES];
        platform_mutex_lock(&r->lock);
        size_t n = unsummed_locked(r, from, pieces);
        platform_mutex_unlock(&r->lock);
        if (n == 0)
            break;
        if (!buf && !(buf = platform_malloc((size_t)BLOCK))) {
            st = KTH_ERR_NO_MEMORY;
            break;
        }
        for (size_t i = 0; i < n && st == KTH_OK; i++) {
            storage_range p = pieces[i], bad = {0, 0};
            bool dropped = false;
            st = storage_file_pread(r->file, p.start, buf, (size_t)(p.end - p.start));
            if (st != KTH_OK)
                break;
            platform_mutex_lock(&r->lock);
            st = seal_piece_locked(r, p, buf, &dropped, &bad);
            platform_mutex_unlock(&r->lock);
            if (dropped)
                log_dropped(r, bad);
        }
        if (st != KTH_OK)
            break;
        from = pieces[n - 1].end;
    }
    platform_free(buf);
    return st;
}
