/*
 * crc32c.h — CRC-32C (Castagnoli), the checksum the cache keeps for each block of cached bytes.
 *
 * Why CRC-32C: it is the checksum storage systems use against bit rot (iSCSI, ext4, Btrfs), it
 * detects every error burst up to 32 bits and every 1-, 2- and 3-bit error in a block of the size
 * we use, it depends on the order of the bytes (a block written at the wrong place is caught), and
 * it is fast: x86-64 folds 256 bytes per step with carry-less multiplies (AVX-512 VPCLMULQDQ,
 * 30-50 GB/s), 128 bytes with AVX2 VPCLMULQDQ (about 20 GB/s on AMD Zen 3), or 64 bytes with
 * PCLMULQDQ (about 10 GB/s there); short tails use the SSE4.2 crc32 instruction. Every other
 * machine uses a table. All paths give the same value.
 *
 * What it costs: checking a 64 KiB block just read from the page cache (about 10 GB/s) adds
 * a third (AVX-512) to a half (AVX2) to that read, once per block and process (bench_progressive
 * reports the first read and later reads apart). Slower sums (OpenSSL's SHA-256 or MD5, a few GB/s)
 * would cost several times the read itself; plain additive sums cost less but let some two-bit
 * errors through.
 */
#ifndef KTH_STORAGE_CRC32C_H
#define KTH_STORAGE_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Extends `crc` (0 to start) over n bytes: storage_crc32c(storage_crc32c(0, a), b) equals the
 * checksum of a followed by b, and the checksum of "123456789" is 0xE3069283. buf may be NULL
 * when n is 0. Pure; any thread. */
uint32_t storage_crc32c(uint32_t crc, const void *buf, size_t n);

/* For tests: the number of implementations this machine can run (at least 1, the table), the
 * name of implementation i, and storage_crc32c computed by implementation i (i < count). */
size_t storage_crc32c_impl_count(void);
const char *storage_crc32c_impl_name(size_t i);
uint32_t storage_crc32c_with(size_t i, uint32_t crc, const void *buf, size_t n);

#endif
