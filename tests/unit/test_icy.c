/*
 * test_icy.c — the ICY framing parser: audio and metadata of a station body come out the same
 * whatever pieces the body arrives in (every piece size, blocks split anywhere), for metaint 1
 * up to 16000 and blocks of 0 to 4080 bytes; field extraction and metaint parsing.
 */
#include "file/icy.h"
#include "testserver.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#define SEED 5

typedef struct collect {
    uint8_t *audio;
    size_t audio_len, audio_cap;
    char titles[8][300];
    size_t title_count;
} collect;

static kth_status on_audio(void *user, const uint8_t *data, size_t n)
{
    collect *c = user;
    assert_true(c->audio_len + n <= c->audio_cap);
    memcpy(c->audio + c->audio_len, data, n);
    c->audio_len += n;
    return KTH_OK;
}

static kth_status on_meta(void *user, const char *text, size_t len)
{
    collect *c = user;
    assert_int_equal(strlen(text), len);
    assert_true(c->title_count < 8);
    icy_meta_field(text, "StreamTitle", c->titles[c->title_count++], 300);
    return KTH_OK;
}

/* Feeds the raw body in pieces of `piece` bytes and checks audio and titles. */
static void check_pieces(const kts_icy *icy, uint64_t blocks, size_t raw_len, size_t piece,
                         size_t titles)
{
    uint8_t *raw = malloc(raw_len);
    assert_non_null(raw);
    kts_icy_fill(icy, 1, raw, raw_len);
    collect c = {.audio_cap = blocks * icy->metaint};
    c.audio = malloc(c.audio_cap);
    icy_parser p;
    icy_parser_init(&p, icy->metaint);
    icy_sink sink = {on_audio, on_meta, &c};
    for (size_t at = 0; at < raw_len; at += piece) {
        size_t n = raw_len - at < piece ? raw_len - at : piece;
        assert_int_equal(icy_parser_feed(&p, raw + at, n, &sink), KTH_OK);
    }
    assert_int_equal(c.audio_len, blocks * icy->metaint);
    assert_int_equal(kts_synth_check(SEED, 0, c.audio, c.audio_len), c.audio_len);
    assert_int_equal(c.title_count, titles);
    assert_string_equal(c.titles[0], "One");
    free(c.audio);
    free(raw);
}

static size_t raw_size(const kts_icy *icy, uint64_t blocks)
{
    size_t n = 0;
    for (uint64_t b = 0; b < blocks; b++) {
        n += icy->metaint + 1;
        for (size_t i = 0; i < icy->title_count; i++)
            if (icy->titles[i].block == b)
                n += icy->titles[i].pad_max ? 4080 : (strlen(icy->titles[i].text) + 15) / 16 * 16;
    }
    return n;
}

static void test_every_piece_size(void **state)
{
    (void)state;
    kts_icy_title titles[] = {
        {.block = 0, .text = "StreamTitle='One';"},
        {.block = 2, .text = "StreamTitle='Two';", .pad_max = true},
    };
    uint32_t metaints[] = {1, 7, 16000};
    for (size_t m = 0; m < 3; m++) {
        kts_icy icy = {.metaint = metaints[m], .seed = SEED, .titles = titles, .title_count = 2};
        uint64_t blocks = metaints[m] == 16000 ? 3 : 40;
        size_t raw = raw_size(&icy, blocks);
        size_t step = metaints[m] == 16000 ? 97 : 1; /* every size for the small ones */
        for (size_t piece = 1; piece <= raw; piece += step)
            check_pieces(&icy, blocks, raw, piece, 2);
    }
}

static void test_fields(void **state)
{
    (void)state;
    char v[64];
    assert_true(icy_meta_field("StreamTitle='A';StreamUrl='u';", "StreamUrl", v, sizeof v));
    assert_string_equal(v, "u");
    assert_true(icy_meta_field("StreamTitle='It's me';", "StreamTitle", v, sizeof v));
    assert_string_equal(v, "It's me");
    assert_true(icy_meta_field("StreamTitle='no end'", "StreamTitle", v, sizeof v));
    assert_string_equal(v, "no end");
    assert_false(icy_meta_field("XStreamTitle='a';", "StreamTitle", v, sizeof v));
    assert_false(icy_meta_field("StreamUrl='a';", "StreamTitle", v, sizeof v));
    assert_true(icy_meta_field("StreamTitle='abcdef';", "StreamTitle", v, 4));
    assert_string_equal(v, "abc");
    uint32_t mi;
    assert_true(icy_parse_metaint("16000", &mi));
    assert_int_equal(mi, 16000);
    assert_false(icy_parse_metaint("0", &mi));
    assert_false(icy_parse_metaint("-1", &mi));
    assert_false(icy_parse_metaint("12a", &mi));
    assert_false(icy_parse_metaint("99999999999", &mi));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_piece_size),
        cmocka_unit_test(test_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
