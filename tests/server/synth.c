/*
 * synth.c — the synthetic byte pattern served for /synth/... and kts_add_synth() bodies.
 *
 * Byte i of the pattern for a seed is byte (i mod 8) of a 64-bit word computed from the seed and
 * i / 8 by a strong integer mixer (the splitmix64 finaliser). Any offset is computable on its
 * own, so the server streams bodies of any size without storing them and a test checks bytes
 * without holding the body. Neighbouring 8-byte blocks are unrelated, so a byte delivered at the
 * wrong offset, twice, or not at all shows up as a mismatch. The word's bytes are taken by
 * shifts, not by memory layout, so the pattern is the same on every host.
 *
 * The MPEG-TS-framed pattern is the same with the byte at every multiple of 188 replaced by the
 * sync byte 0x47, for segments that must look like a transport stream to a client that checks.
 */
#include "testserver.h"

#include <string.h>

static uint64_t synth_word(uint64_t seed, uint64_t block)
{
    uint64_t x = block + seed * UINT64_C(0xD1B54A32D192ED03);
    x ^= x >> 30;
    x *= UINT64_C(0xBF58476D1CE4E5B9);
    x ^= x >> 27;
    x *= UINT64_C(0x94D049BB133111EB);
    x ^= x >> 31;
    return x;
}

uint8_t kts_synth_byte(uint64_t seed, uint64_t offset)
{
    return (uint8_t)(synth_word(seed, offset / 8) >> (8 * (offset % 8)));
}

void kts_synth_fill(uint64_t seed, uint64_t offset, void *buf, size_t n)
{
    unsigned char *out = buf;
    size_t i = 0;

    /* Leading bytes up to a block boundary. */
    while (i < n && (offset + i) % 8 != 0) {
        out[i] = kts_synth_byte(seed, offset + i);
        i++;
    }
    /* Whole blocks. */
    while (n - i >= 8) {
        uint64_t w = synth_word(seed, (offset + i) / 8);
        for (unsigned k = 0; k < 8; k++) {
            out[i + k] = (unsigned char)(w >> (8 * k));
        }
        i += 8;
    }
    /* Trailing bytes. */
    while (i < n) {
        out[i] = kts_synth_byte(seed, offset + i);
        i++;
    }
}

size_t kts_synth_check(uint64_t seed, uint64_t offset, const void *buf, size_t n)
{
    const unsigned char *in = buf;
    unsigned char expect[4096];
    size_t done = 0;

    while (done < n) {
        size_t step = n - done < sizeof expect ? n - done : sizeof expect;
        kts_synth_fill(seed, offset + done, expect, step);
        if (memcmp(expect, in + done, step) != 0) {
            for (size_t k = 0; k < step; k++) {
                if (expect[k] != in[done + k]) {
                    return done + k;
                }
            }
        }
        done += step;
    }
    return n;
}

/* ---- the MPEG-TS-framed pattern ------------------------------------------------------------ */

#define TS_PACKET 188

void kts_ts_synth_fill(uint64_t seed, uint64_t offset, void *buf, size_t n)
{
    unsigned char *out = buf;
    uint64_t first = (offset + TS_PACKET - 1) / TS_PACKET * TS_PACKET;

    kts_synth_fill(seed, offset, buf, n);
    for (uint64_t at = first; at - offset < n; at += TS_PACKET) {
        out[at - offset] = 0x47;
    }
}

size_t kts_ts_synth_check(uint64_t seed, uint64_t offset, const void *buf, size_t n)
{
    const unsigned char *in = buf;
    unsigned char expect[4096];
    size_t done = 0;

    while (done < n) {
        size_t step = n - done < sizeof expect ? n - done : sizeof expect;
        kts_ts_synth_fill(seed, offset + done, expect, step);
        for (size_t k = 0; k < step; k++) {
            if (expect[k] != in[done + k]) {
                return done + k;
            }
        }
        done += step;
    }
    return n;
}
