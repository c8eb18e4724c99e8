/*
 * fuzz/fuzz_url.c — libFuzzer target for RFC 3986 reference resolution.
 *
 * The input is "<base>\n<reference>". Whenever the base is absolute, resolution must succeed
 * and give an absolute URI made only of bytes that are valid in a URI.
 */
#include "hls/url.h"

#include <kithara/status.h>

#include <ctype.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "invariant failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__);          \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    if (nl == NULL || size > 8192) {
        return 0;
    }
    size_t base_len = (size_t)(nl - data);
    char *base = malloc(base_len + 1);
    if (base == NULL) {
        return 0;
    }
    memcpy(base, data, base_len);
    base[base_len] = '\0';
    const char *ref = (const char *)nl + 1;
    size_t ref_len = size - base_len - 1;
    char *out = NULL;
    int rc = hls_url_resolve(base, ref, ref_len, &out);
    size_t bl = strlen(base); /* the input may hold a NUL; the base ends there */
    bool absolute = hls_url_is_absolute(base, bl);
    if (!absolute) {
        CHECK(rc == KTH_ERR_INVALID_ARG && out == NULL);
    } else {
        CHECK(rc == KTH_OK && out != NULL);
        size_t n = strlen(out);
        CHECK(hls_url_is_absolute(out, n));
        CHECK(n <= 3 * (bl + ref_len) + 8);
        for (size_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char)out[i];
            CHECK(c > 0x20 && c < 0x7f && strchr("\"<>\\^`{|}", c) == NULL);
            if (c == '%') {
                CHECK(i + 2 < n && isxdigit((unsigned char)out[i + 1]) &&
                      isxdigit((unsigned char)out[i + 2]));
            }
        }
    }
    free(out);
    free(base);
    return 0;
}
