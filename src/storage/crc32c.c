/*
 * crc32c.c — CRC-32C over byte buffers: a table for every machine, and on x86-64 the crc32
 * instruction for short inputs and carry-less-multiply folding for long ones.
 *
 * Every implementation works on the same internal state (the checksum bit-inverted), so they can
 * be mixed within one computation and must agree bit for bit (the unit test runs each one).
 *
 * Folding, in short. The bytes are a polynomial over GF(2), first bit highest (the reflected bit
 * order of CRC-32C: bit 0 of byte 0 comes first). A 128-bit register loaded from memory holds 16
 * bytes with register bit i the coefficient of x^(127-i). Its low qword is the high half H and its
 * high qword the low half L of that 128-bit polynomial A = H·x^64 + L. Moving A forward by D bits
 * (to add it into the register D bits later) needs A·x^D = H·x^(D+64) + L·x^D, and modulo the
 * CRC polynomial P each power may be replaced by its remainder. A carry-less multiply of a qword
 * by the constant reflect32(x^(E-1) mod P) << 32 yields Q·x^E mod-equivalently, already aligned
 * as a 128-bit register (the extra factor x makes up for the product being one bit short), so
 *   fold(A, D) = clmul(H, k(D+64)) ^ clmul(L, k(D)),   k(E) = reflect32(x^(E-1) mod P) << 32.
 * Four registers (or four 256-bit ones of two lanes, or four 512-bit ones of four lanes each) run
 * side by side; at the end they are folded into one 128-bit register R, and the checksum of
 * everything so far is then the CRC of the 16 bytes of R from a zero state. The starting state is
 * XORed into the first four bytes.
 */
#include "storage/crc32c.h"

#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define CRC32C_X86 1
#include <immintrin.h>
#endif

#define POLY_REFLECTED 0x82F63B78u    /* x^32 + x^28 + ... + 1, reflected */
#define POLY_NORMAL    0x11EDC6F41ull /* the same, most significant bit first, with x^32 */

typedef uint32_t (*crc_fn)(uint32_t state, const uint8_t *p, size_t n);

static uint32_t table[8][256]; /* slicing-by-8; filled once by init() */

static void make_table(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ POLY_REFLECTED : c >> 1;
        table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            table[t][i] = (table[t - 1][i] >> 8) ^ table[0][table[t - 1][i] & 0xff];
}

static uint32_t update_table(uint32_t s, const uint8_t *p, size_t n)
{
    while (n >= 8) {
        uint32_t lo = s ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                           (uint32_t)p[3] << 24);
        s = table[7][lo & 0xff] ^ table[6][(lo >> 8) & 0xff] ^ table[5][(lo >> 16) & 0xff] ^
            table[4][lo >> 24] ^ table[3][p[4]] ^ table[2][p[5]] ^ table[1][p[6]] ^ table[0][p[7]];
        p += 8;
        n -= 8;
    }
    while (n--)
        s = table[0][(s ^ *p++) & 0xff] ^ (s >> 8);
    return s;
}

#ifdef CRC32C_X86

/* k(E) for folding by D bits: the pair {k(D+64), k(D)} as {low, high} qword. */
static __m128i fold_by[5];  /* D = 128, 256, 384, 512 (one 128-bit step each) and 2048 */
static __m128i fold_zmm[3]; /* D = 512, 1024, 1536: one, two, three 512-bit registers */
static __m128i fold_ymm[4]; /* D = 256, 512, 768: one, two, three 256-bit registers; 1024 */

/* x^k mod P, most significant bit first. */
static uint32_t xpow_mod(unsigned k)
{
    uint64_t r = 1;
    for (unsigned i = 0; i < k; i++) {
        r <<= 1;
        if (r >> 32)
            r ^= POLY_NORMAL;
    }
    return (uint32_t)r;
}

static uint32_t reflect32(uint32_t x)
{
    uint32_t r = 0;
    for (int i = 0; i < 32; i++)
        if ((x >> i) & 1)
            r |= 1u << (31 - i);
    return r;
}

static uint64_t fold_constant(unsigned e)
{
    return (uint64_t)reflect32(xpow_mod(e - 1)) << 32;
}

static __m128i fold_pair(unsigned d)
{
    return _mm_set_epi64x((long long)fold_constant(d), (long long)fold_constant(d + 64));
}

static void make_fold_constants(void)
{
    fold_by[0] = fold_pair(128);
    fold_by[1] = fold_pair(256);
    fold_by[2] = fold_pair(384);
    fold_by[3] = fold_pair(512);
    fold_by[4] = fold_pair(2048);
    for (unsigned i = 0; i < 4; i++)
        fold_ymm[i] = fold_pair(256 * (i + 1));
    fold_zmm[0] = fold_pair(512);
    fold_zmm[1] = fold_pair(1024);
    fold_zmm[2] = fold_pair(1536);
}

__attribute__((target("sse4.2"))) static uint32_t update_hw(uint32_t s, const uint8_t *p, size_t n)
{
    uint64_t c = s;
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c = _mm_crc32_u64(c, v);
        p += 8;
        n -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (n--)
        c32 = _mm_crc32_u8(c32, *p++);
    return c32;
}

__attribute__((target("sse4.2,pclmul"))) static __m128i fold128(__m128i x, __m128i k)
{
    return _mm_xor_si128(_mm_clmulepi64_si128(x, k, 0x00), _mm_clmulepi64_si128(x, k, 0x11));
}

/* The state after the bytes a 128-bit register stands for, then `n` more bytes. */
__attribute__((target("sse4.2,pclmul"))) static uint32_t finish_fold(__m128i r, const uint8_t *p,
                                                                     size_t n)
{
    uint8_t bytes[16];
    _mm_storeu_si128((__m128i *)bytes, r);
    return update_hw(update_hw(0, bytes, 16), p, n);
}

__attribute__((target("sse4.2,pclmul"))) static uint32_t update_fold128(uint32_t s,
                                                                        const uint8_t *p, size_t n)
{
    if (n < 64)
        return update_hw(s, p, n);
    __m128i x[4];
    for (int i = 0; i < 4; i++)
        x[i] = _mm_loadu_si128((const __m128i *)(p + 16 * i));
    x[0] = _mm_xor_si128(x[0], _mm_cvtsi32_si128((int)s));
    p += 64;
    n -= 64;
    while (n >= 64) {
        for (int i = 0; i < 4; i++)
            x[i] = _mm_xor_si128(fold128(x[i], fold_by[3]),
                                 _mm_loadu_si128((const __m128i *)(p + 16 * i)));
        p += 64;
        n -= 64;
    }
    __m128i r = _mm_xor_si128(_mm_xor_si128(fold128(x[0], fold_by[2]), fold128(x[1], fold_by[1])),
                              _mm_xor_si128(fold128(x[2], fold_by[0]), x[3]));
    return finish_fold(r, p, n);
}

/* Four 256-bit registers of two lanes each: for machines with VPCLMULQDQ but not AVX-512 (AMD
 * Zen 3, some Intel parts), where it runs about twice the 128-bit path. */
#define TARGET_YMM __attribute__((target("avx2,vpclmulqdq,pclmul,sse4.2")))

TARGET_YMM static __m256i fold256(__m256i x, __m128i k)
{
    __m256i kk = _mm256_broadcastsi128_si256(k);
    return _mm256_xor_si256(_mm256_clmulepi64_epi128(x, kk, 0x00),
                            _mm256_clmulepi64_epi128(x, kk, 0x11));
}

TARGET_YMM static uint32_t update_fold256(uint32_t s, const uint8_t *p, size_t n)
{
    if (n < 128)
        return update_fold128(s, p, n);
    __m256i x[4];
    for (int i = 0; i < 4; i++)
        x[i] = _mm256_loadu_si256((const void *)(p + 32 * i));
    x[0] = _mm256_xor_si256(x[0], _mm256_zextsi128_si256(_mm_cvtsi32_si128((int)s)));
    p += 128;
    n -= 128;
    while (n >= 128) {
        for (int i = 0; i < 4; i++)
            x[i] = _mm256_xor_si256(fold256(x[i], fold_ymm[3]),
                                    _mm256_loadu_si256((const void *)(p + 32 * i)));
        p += 128;
        n -= 128;
    }
    __m256i z =
        _mm256_xor_si256(_mm256_xor_si256(fold256(x[0], fold_ymm[2]), fold256(x[1], fold_ymm[1])),
                         _mm256_xor_si256(fold256(x[2], fold_ymm[0]), x[3]));
    __m128i r = _mm_xor_si128(fold128(_mm256_extracti128_si256(z, 0), fold_by[0]),
                              _mm256_extracti128_si256(z, 1));
    return finish_fold(r, p, n);
}

#define TARGET_ZMM __attribute__((target("avx512f,vpclmulqdq,pclmul,sse4.2")))

TARGET_ZMM static __m512i fold512(__m512i x, __m128i k)
{
    __m512i kk = _mm512_broadcast_i32x4(k);
    return _mm512_xor_si512(_mm512_clmulepi64_epi128(x, kk, 0x00),
                            _mm512_clmulepi64_epi128(x, kk, 0x11));
}

TARGET_ZMM static uint32_t update_fold512(uint32_t s, const uint8_t *p, size_t n)
{
    if (n < 256)
        return update_fold128(s, p, n);
    __m512i x[4];
    for (int i = 0; i < 4; i++)
        x[i] = _mm512_loadu_si512((const void *)(p + 64 * i));
    x[0] = _mm512_xor_si512(x[0], _mm512_zextsi128_si512(_mm_cvtsi32_si128((int)s)));
    p += 256;
    n -= 256;
    while (n >= 256) {
        for (int i = 0; i < 4; i++)
            x[i] = _mm512_xor_si512(fold512(x[i], fold_by[4]),
                                    _mm512_loadu_si512((const void *)(p + 64 * i)));
        p += 256;
        n -= 256;
    }
    __m512i z =
        _mm512_xor_si512(_mm512_xor_si512(fold512(x[0], fold_zmm[2]), fold512(x[1], fold_zmm[1])),
                         _mm512_xor_si512(fold512(x[2], fold_zmm[0]), x[3]));
    __m128i lane[4] = {_mm512_extracti32x4_epi32(z, 0), _mm512_extracti32x4_epi32(z, 1),
                       _mm512_extracti32x4_epi32(z, 2), _mm512_extracti32x4_epi32(z, 3)};
    __m128i r =
        _mm_xor_si128(_mm_xor_si128(fold128(lane[0], fold_by[2]), fold128(lane[1], fold_by[1])),
                      _mm_xor_si128(fold128(lane[2], fold_by[0]), lane[3]));
    return finish_fold(r, p, n);
}

#endif /* CRC32C_X86 */

/* Implementations this machine runs, slowest first; the last is the one used. */
typedef struct crc_impl {
    const char *name;
    crc_fn fn;
} crc_impl;
static crc_impl impls[5];
static size_t impl_count;
static crc_fn best;
static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static void init(void)
{
    make_table();
    impls[impl_count++] = (crc_impl){"table", update_table};
#ifdef CRC32C_X86
    __builtin_cpu_init();
    make_fold_constants();
    if (__builtin_cpu_supports("sse4.2")) {
        impls[impl_count++] = (crc_impl){"sse4.2", update_hw};
        if (__builtin_cpu_supports("pclmul"))
            impls[impl_count++] = (crc_impl){"pclmul", update_fold128};
        if (__builtin_cpu_supports("pclmul") && __builtin_cpu_supports("avx2") &&
            __builtin_cpu_supports("vpclmulqdq"))
            impls[impl_count++] = (crc_impl){"avx2-vpclmulqdq", update_fold256};
        if (__builtin_cpu_supports("pclmul") && __builtin_cpu_supports("avx512f") &&
            __builtin_cpu_supports("vpclmulqdq"))
            impls[impl_count++] = (crc_impl){"avx512-vpclmulqdq", update_fold512};
    }
#endif
    best = impls[impl_count - 1].fn;
}

uint32_t storage_crc32c(uint32_t crc, const void *buf, size_t n)
{
    pthread_once(&init_once, init);
    return n ? ~best(~crc, buf, n) : crc;
}

size_t storage_crc32c_impl_count(void)
{
    pthread_once(&init_once, init);
    return impl_count;
}

const char *storage_crc32c_impl_name(size_t i)
{
    pthread_once(&init_once, init);
    return i < impl_count ? impls[i].name : "";
}

uint32_t storage_crc32c_with(size_t i, uint32_t crc, const void *buf, size_t n)
{
    pthread_once(&init_once, init);
    if (i >= impl_count || n == 0)
        return crc;
    return ~impls[i].fn(~crc, buf, n);
}
