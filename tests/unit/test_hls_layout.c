/*
 * test_hls_layout.c — a variant's virtual byte space: init sections in front of the segments
 * that use them, sizes arriving out of order, offsets that never change once known, lookups by
 * byte and by time, and byte ranges of encrypted segments not mistaken for plaintext sizes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "hls/layout.h"
#include "hls/playlist.h"

static hls_playlist *parse(const char *text)
{
    hls_playlist *pl = NULL;
    char err[256];
    int st = hls_playlist_parse((const uint8_t *)text, strlen(text),
                                "http://127.0.0.1/a/media.m3u8", NULL, &pl, err, sizeof err);
    if (st != KTH_OK)
        fail_msg("parse failed: %s", err);
    return pl;
}

static void test_sizes_arrive_out_of_order_and_offsets_follow(void **state)
{
    (void)state;
    hls_playlist *pl = parse("#EXTM3U\n#EXT-X-TARGETDURATION:4\n"
                             "#EXTINF:4,\ns0.ts\n#EXTINF:4,\ns1.ts\n#EXTINF:2.5,\ns2.ts\n"
                             "#EXT-X-ENDLIST\n");
    hls_layout *l;
    assert_int_equal(hls_layout_new(pl, &l), KTH_OK);
    assert_int_equal(hls_layout_entry_count(l), 3);
    size_t e;
    uint64_t within;
    assert_int_equal(hls_layout_locate(l, 0, &e, &within), KTH_ERR_RETRY);
    assert_int_equal(e, 0); /* the size needed first */
    assert_int_equal(hls_layout_set_size(l, 2, 300), KTH_OK);
    assert_int_equal(hls_layout_set_size(l, 0, 1000), KTH_OK);
    assert_int_equal(hls_layout_locate(l, 999, &e, &within), KTH_OK);
    assert_int_equal(e, 0);
    assert_int_equal(within, 999);
    assert_int_equal(hls_layout_locate(l, 1000, &e, &within), KTH_ERR_RETRY);
    assert_int_equal(e, 1);
    assert_int_equal(hls_layout_first_unknown_before(l, 2), 1);
    uint64_t len;
    assert_false(hls_layout_total_length(l, &len));
    assert_int_equal(hls_layout_set_size(l, 1, 2000), KTH_OK);
    assert_int_equal(hls_layout_first_unknown_before(l, 3), HLS_NONE);
    assert_true(hls_layout_total_length(l, &len));
    assert_int_equal(len, 3300);
    assert_int_equal(hls_layout_locate(l, 3000, &e, &within), KTH_OK);
    assert_int_equal(e, 2);
    assert_int_equal(within, 0);
    assert_int_equal(hls_layout_locate(l, 3300, &e, &within), KTH_ERR_OUT_OF_RANGE);
    hls_entry ent;
    assert_int_equal(hls_layout_entry(l, 2, &ent), KTH_OK);
    assert_true(ent.offset_known);
    assert_int_equal(ent.offset, 3000);
    assert_true(ent.start > 7.99 && ent.start < 8.01);
    /* Offsets never change: a second, different size is refused. */
    assert_int_equal(hls_layout_set_size(l, 1, 2000), KTH_OK);
    assert_int_equal(hls_layout_set_size(l, 1, 2001), KTH_ERR_CHANGED);
    assert_int_equal(hls_layout_locate(l, 3000, &e, &within), KTH_OK);
    assert_int_equal(e, 2);
    assert_int_equal(hls_layout_set_size(l, 3, 1), KTH_ERR_OUT_OF_RANGE);
    hls_layout_free(l);
    hls_playlist_free(pl);
}

static void test_init_sections_precede_the_segments_that_use_them(void **state)
{
    (void)state;
    hls_playlist *pl = parse("#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:6\n"
                             "#EXT-X-MAP:URI=\"init1.mp4\",BYTERANGE=\"700@0\"\n"
                             "#EXTINF:6,\nf0.m4s\n#EXTINF:6,\nf1.m4s\n"
                             "#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"init2.mp4\"\n"
                             "#EXTINF:6,\nf2.m4s\n#EXT-X-ENDLIST\n");
    hls_layout *l;
    assert_int_equal(hls_layout_new(pl, &l), KTH_OK);
    assert_int_equal(hls_layout_entry_count(l), 5); /* init1 f0 f1 init2 f2 */
    hls_entry ent;
    hls_layout_entry(l, 0, &ent);
    assert_int_equal(ent.kind, HLS_ENTRY_INIT);
    assert_true(ent.size_known); /* from BYTERANGE */
    assert_int_equal(ent.size, 700);
    hls_layout_entry(l, 3, &ent);
    assert_int_equal(ent.kind, HLS_ENTRY_INIT);
    assert_int_equal(ent.segment, 2);
    assert_false(ent.size_known);
    size_t e, init;
    assert_int_equal(hls_layout_entry_of_segment(l, 2, &e, &init), KTH_OK);
    assert_int_equal(e, 4);
    assert_int_equal(init, 3);
    assert_int_equal(hls_layout_entry_of_segment(l, 1, &e, &init), KTH_OK);
    assert_int_equal(e, 2);
    assert_int_equal(init, 0);
    assert_int_equal(hls_layout_entry_of_segment(l, 3, &e, &init), KTH_ERR_OUT_OF_RANGE);
    hls_layout_free(l);
    hls_playlist_free(pl);
}

static void test_byteranges_give_sizes_only_for_clear_segments(void **state)
{
    (void)state;
    hls_playlist *pl = parse("#EXTM3U\n#EXT-X-TARGETDURATION:4\n"
                             "#EXTINF:4,\n#EXT-X-BYTERANGE:1000@0\nall.aac\n"
                             "#EXTINF:4,\n#EXT-X-BYTERANGE:1200\nall.aac\n"
                             "#EXT-X-KEY:METHOD=AES-128,URI=\"k.key\"\n"
                             "#EXTINF:4,\n#EXT-X-BYTERANGE:1024\nall.aac\n"
                             "#EXT-X-KEY:METHOD=NONE\n#EXT-X-GAP\n#EXTINF:4,\ngap.aac\n"
                             "#EXT-X-ENDLIST\n");
    hls_layout *l;
    assert_int_equal(hls_layout_new(pl, &l), KTH_OK);
    hls_entry ent;
    hls_layout_entry(l, 1, &ent);
    assert_true(ent.size_known);
    assert_int_equal(ent.size, 1200);
    assert_int_equal(ent.offset, 1000);
    /* 1024 ciphertext bytes decrypt to 1008..1023 plaintext bytes: unknown until decrypted. */
    hls_layout_entry(l, 2, &ent);
    assert_false(ent.size_known);
    hls_layout_entry(l, 3, &ent);
    assert_true(ent.size_known); /* a gap holds no bytes */
    assert_int_equal(ent.size, 0);
    assert_int_equal(hls_layout_set_size(l, 2, 1010), KTH_OK);
    size_t e;
    uint64_t within;
    /* The gap is zero-sized: the byte after segment 2 is past the end. */
    assert_int_equal(hls_layout_locate(l, 3209, &e, &within), KTH_OK);
    assert_int_equal(e, 2);
    assert_int_equal(hls_layout_locate(l, 3210, &e, &within), KTH_ERR_OUT_OF_RANGE);
    hls_layout_free(l);
    hls_playlist_free(pl);
}

static void test_time_lookup_finds_the_containing_segment(void **state)
{
    (void)state;
    hls_playlist *pl = parse("#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXTINF:6,\na\n#EXTINF:6,\nb\n"
                             "#EXTINF:3,\nc\n#EXT-X-ENDLIST\n");
    hls_layout *l;
    assert_int_equal(hls_layout_new(pl, &l), KTH_OK);
    assert_int_equal(hls_layout_segment_at_time(l, -5), 0);
    assert_int_equal(hls_layout_segment_at_time(l, 0), 0);
    assert_int_equal(hls_layout_segment_at_time(l, 5.999), 0);
    assert_int_equal(hls_layout_segment_at_time(l, 6.0), 1);
    assert_int_equal(hls_layout_segment_at_time(l, 12.5), 2);
    assert_int_equal(hls_layout_segment_at_time(l, 1000), 2);
    assert_true(hls_layout_total_duration(l) > 14.99);
    assert_int_equal(hls_layout_segment_count(l), 3);
    hls_layout_free(l);
    hls_playlist_free(pl);
}

/* Where a switch made at a boundary of another variant picks up: the segment starting
 * nearest that time, not the one containing it (which could repeat almost a whole segment). */
static void test_switch_lookup_finds_the_nearest_start(void **state)
{
    (void)state;
    hls_playlist *pl = parse("#EXTM3U\n#EXT-X-TARGETDURATION:3\n#EXTINF:2.043,\na\n"
                             "#EXTINF:2.043,\nb\n#EXTINF:2.043,\nc\n#EXTINF:1.5,\nd\n"
                             "#EXT-X-ENDLIST\n");
    hls_layout *l;
    assert_int_equal(hls_layout_new(pl, &l), KTH_OK);
    assert_int_equal(hls_layout_segment_nearest_start(l, 0), 0);
    assert_int_equal(hls_layout_segment_nearest_start(l, 2.005), 1); /* 38 ms early */
    assert_int_equal(hls_layout_segment_nearest_start(l, 4.011), 2); /* 75 ms early */
    assert_int_equal(hls_layout_segment_at_time(l, 4.011), 1);       /* what it replaces */
    assert_int_equal(hls_layout_segment_nearest_start(l, 4.2), 2);   /* 114 ms late */
    assert_int_equal(hls_layout_segment_nearest_start(l, 5.2), 3);
    assert_int_equal(hls_layout_segment_nearest_start(l, 1000), 3);
    hls_layout_free(l);
    hls_playlist_free(pl);
}

static void test_master_playlist_has_no_layout(void **state)
{
    (void)state;
    hls_playlist *pl = parse("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=64000\nlow.m3u8\n");
    hls_layout *l = NULL;
    assert_int_equal(hls_layout_new(pl, &l), KTH_ERR_INVALID_ARG);
    assert_null(l);
    hls_playlist_free(pl);
}

/* A live layout grows as reloads add segments: entries laid out keep their offsets, the space
 * has no end while open, and closing it (the playlist ended) gives the length. */
static void test_open_layout_grows_without_moving_offsets(void **state)
{
    (void)state;
    hls_playlist *first = parse("#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-MAP:URI=\"i.mp4\"\n"
                                "#EXTINF:4,\ns0.m4s\n#EXTINF:4,\ns1.m4s\n");
    hls_layout *l;
    assert_int_equal(hls_layout_new(first, &l), KTH_OK);
    hls_layout_set_open(l, true);
    assert_int_equal(hls_layout_entry_count(l), 3);
    for (size_t e = 0; e < 3; e++)
        assert_int_equal(hls_layout_set_size(l, e, 100 * (e + 1)), KTH_OK);
    size_t e;
    uint64_t within, len;
    assert_false(hls_layout_total_length(l, &len));
    assert_int_equal(hls_layout_locate(l, 600, &e, &within), KTH_ERR_RETRY);
    assert_int_equal(e, 3); /* past the last entry: the next reload's */
    hls_playlist *more = parse("#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-MAP:URI=\"i.mp4\"\n"
                               "#EXTINF:4,\ns0.m4s\n#EXTINF:4,\ns1.m4s\n#EXTINF:4,\ns2.m4s\n"
                               "#EXT-X-MAP:URI=\"j.mp4\"\n#EXTINF:2,\nt0.m4s\n");
    assert_int_equal(hls_layout_grow(l, more), KTH_OK);
    hls_playlist_free(first);
    assert_int_equal(hls_layout_entry_count(l), 6); /* s2, then j.mp4 in front of t0 */
    assert_int_equal(hls_layout_segment_count(l), 4);
    hls_entry ent;
    assert_int_equal(hls_layout_entry(l, 2, &ent), KTH_OK);
    assert_int_equal(ent.offset, 300);
    assert_int_equal(hls_layout_entry(l, 4, &ent), KTH_OK);
    assert_int_equal(ent.kind, HLS_ENTRY_INIT);
    size_t se, si;
    assert_int_equal(hls_layout_entry_of_segment(l, 3, &se, &si), KTH_OK);
    assert_int_equal(se, 5);
    assert_int_equal(si, 4);
    assert_int_equal(hls_layout_segment_at_time(l, 13), 3);
    for (size_t k = 3; k < 6; k++)
        assert_int_equal(hls_layout_set_size(l, k, 10), KTH_OK);
    assert_int_equal(hls_layout_locate(l, 605, &e, &within), KTH_OK);
    assert_int_equal(e, 3);
    assert_int_equal(within, 5);
    assert_false(hls_layout_total_length(l, &len));
    hls_layout_set_open(l, false);
    assert_true(hls_layout_total_length(l, &len));
    assert_int_equal(len, 630);
    hls_playlist *fewer = parse("#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXTINF:4,\ns0.m4s\n");
    assert_int_equal(hls_layout_grow(l, fewer), KTH_ERR_INVALID_ARG);
    hls_playlist_free(fewer);
    hls_layout_free(l);
    hls_playlist_free(more);
}

static void test_a_reload_may_bring_the_first_init_section(void **state)
{
    (void)state;
    /* Until now entry i was segment i; the reload's init section must shift what follows. */
    hls_playlist *first = parse("#EXTM3U\n#EXT-X-TARGETDURATION:4\n"
                                "#EXTINF:4,\ns0.ts\n#EXTINF:4,\ns1.ts\n#EXTINF:4,\ns2.ts\n");
    hls_layout *l;
    assert_int_equal(hls_layout_new(first, &l), KTH_OK);
    hls_layout_set_open(l, true);
    for (size_t e = 0; e < 3; e++)
        assert_int_equal(hls_layout_set_size(l, e, 100), KTH_OK);
    size_t se, si;
    assert_int_equal(hls_layout_entry_of_segment(l, 2, &se, &si), KTH_OK);
    assert_int_equal(se, 2);
    assert_int_equal(si, HLS_NONE);
    hls_playlist *more =
        parse("#EXTM3U\n#EXT-X-TARGETDURATION:4\n"
              "#EXTINF:4,\ns0.ts\n#EXTINF:4,\ns1.ts\n#EXTINF:4,\ns2.ts\n"
              "#EXT-X-MAP:URI=\"i.mp4\"\n#EXTINF:4,\nt0.m4s\n#EXTINF:4,\nt1.m4s\n");
    assert_int_equal(hls_layout_grow(l, more), KTH_OK);
    hls_playlist_free(first);
    assert_int_equal(hls_layout_entry_count(l), 6);
    assert_int_equal(hls_layout_segment_count(l), 5);
    for (size_t k = 0; k < 3; k++) {
        assert_int_equal(hls_layout_entry_of_segment(l, k, &se, &si), KTH_OK);
        assert_int_equal(se, k);
        assert_int_equal(si, HLS_NONE);
    }
    assert_int_equal(hls_layout_entry_of_segment(l, 4, &se, &si), KTH_OK);
    assert_int_equal(se, 5);
    assert_int_equal(si, 3);
    hls_entry ent;
    assert_int_equal(hls_layout_entry(l, 3, &ent), KTH_OK);
    assert_int_equal(ent.kind, HLS_ENTRY_INIT);
    assert_int_equal(ent.segment, 3);
    assert_true(ent.offset_known);
    assert_int_equal(ent.offset, 300);
    assert_int_equal(hls_layout_entry(l, 5, &ent), KTH_OK);
    assert_int_equal(ent.kind, HLS_ENTRY_SEGMENT);
    assert_int_equal(ent.segment, 4);
    hls_layout_free(l);
    hls_playlist_free(more);
}

/* A playlist of `n` segments, with EXT-X-GAP on those where gap(i); into buf. */
static hls_playlist *parse_many(size_t n, bool (*gap)(size_t))
{
    static char buf[64 * 1024];
    size_t used = (size_t)snprintf(buf, sizeof buf, "#EXTM3U\n#EXT-X-TARGETDURATION:4\n");
    for (size_t i = 0; i < n; i++)
        used += (size_t)snprintf(buf + used, sizeof buf - used, "%s#EXTINF:4,\ns%zu.ts\n",
                                 gap(i) ? "#EXT-X-GAP\n" : "", i);
    snprintf(buf + used, sizeof buf - used, "#EXT-X-ENDLIST\n");
    return parse(buf);
}

static bool gaps_around_marks(size_t i)
{
    return i == 0 || i == 31 || i == 32 || i == 33 || i == 63 || i == 64 || i == 150;
}

/* The size the test gives segment i (gaps have 0). */
static uint64_t size_for(size_t i)
{
    return gaps_around_marks(i) ? 0 : 1 + (i * 7919) % 1000;
}

/* Offsets are kept for every 32nd entry only: every entry's offset, and every byte's entry,
 * must come out as from a full prefix sum, zero-sized gaps across the marks included, with
 * sizes arriving in a scrambled order. */
static void test_offsets_and_lookups_hold_across_many_entries(void **state)
{
    (void)state;
    enum { N = 200 };
    /* A live layout of 40 entries, one size known, grown to N. */
    hls_playlist *few = parse_many(40, gaps_around_marks);
    hls_layout *l;
    assert_int_equal(hls_layout_new(few, &l), KTH_OK);
    hls_layout_set_open(l, true);
    assert_int_equal(hls_layout_set_size(l, 5, size_for(5)), KTH_OK);
    hls_playlist *pl = parse_many(N, gaps_around_marks);
    assert_int_equal(hls_layout_grow(l, pl), KTH_OK);
    hls_playlist_free(few);
    hls_layout_set_open(l, false);
    uint64_t offset[N + 1] = {0};
    for (size_t i = 0; i < N; i++)
        offset[i + 1] = offset[i] + size_for(i);
    for (size_t k = 0; k < N; k++) {
        size_t i = (k * 37) % N; /* 37 is prime to N: every entry once */
        if (!gaps_around_marks(i) && i != 5)
            assert_int_equal(hls_layout_set_size(l, i, size_for(i)), KTH_OK);
        size_t first = hls_layout_first_unknown_before(l, N);
        if (first == HLS_NONE)
            continue;
        hls_entry ent; /* the first entry of unknown size has its offset */
        assert_int_equal(hls_layout_entry(l, first, &ent), KTH_OK);
        assert_true(ent.offset_known);
        assert_int_equal(ent.offset, offset[first]);
    }
    uint64_t len;
    assert_true(hls_layout_total_length(l, &len));
    assert_int_equal(len, offset[N]);
    for (size_t i = 0; i < N; i++) {
        hls_entry ent;
        assert_int_equal(hls_layout_entry(l, i, &ent), KTH_OK);
        assert_true(ent.offset_known && ent.size_known);
        assert_int_equal(ent.offset, offset[i]);
        assert_int_equal(ent.size, size_for(i));
        if (ent.size == 0)
            continue;
        size_t e;
        uint64_t within;
        assert_int_equal(hls_layout_locate(l, offset[i], &e, &within), KTH_OK);
        assert_int_equal(e, i);
        assert_int_equal(within, 0);
        assert_int_equal(hls_layout_locate(l, offset[i + 1] - 1, &e, &within), KTH_OK);
        assert_int_equal(e, i);
        assert_int_equal(within, size_for(i) - 1);
    }
    size_t e;
    uint64_t within;
    assert_int_equal(hls_layout_locate(l, offset[N], &e, &within), KTH_ERR_OUT_OF_RANGE);
    assert_int_equal(hls_layout_set_size(l, 100, size_for(100) + 1), KTH_ERR_CHANGED);
    hls_layout_free(l);
    hls_playlist_free(pl);
}

/* Sizes are kept in 32 bits; one of 4 GiB or more (a byte range of a huge file, or a body that
 * large) is kept whole, and the offsets after it are right. */
static void test_sizes_of_4_gib_and_more_are_kept_whole(void **state)
{
    (void)state;
    const uint64_t big = UINT64_C(5) << 30, edge = UINT32_MAX - 1;
    hls_playlist *pl = parse("#EXTM3U\n#EXT-X-TARGETDURATION:4\n"
                             "#EXT-X-BYTERANGE:5368709120@0\n#EXTINF:4,\nall.ts\n"
                             "#EXTINF:4,\ns1.ts\n#EXTINF:4,\ns2.ts\n#EXTINF:4,\ns3.ts\n"
                             "#EXT-X-ENDLIST\n");
    hls_layout *l;
    assert_int_equal(hls_layout_new(pl, &l), KTH_OK);
    hls_entry ent;
    assert_int_equal(hls_layout_entry(l, 0, &ent), KTH_OK);
    assert_true(ent.size_known);
    assert_int_equal(ent.size, big);
    assert_int_equal(hls_layout_set_size(l, 1, edge), KTH_OK); /* the first value kept aside */
    assert_int_equal(hls_layout_set_size(l, 2, edge - 1), KTH_OK);
    assert_int_equal(hls_layout_set_size(l, 1, edge + 1), KTH_ERR_CHANGED);
    assert_int_equal(hls_layout_set_size(l, 3, UINT32_MAX), KTH_OK);
    assert_int_equal(hls_layout_entry(l, 3, &ent), KTH_OK);
    assert_true(ent.offset_known);
    assert_int_equal(ent.offset, big + edge + edge - 1);
    assert_int_equal(ent.size, UINT32_MAX);
    size_t e;
    uint64_t within, len;
    assert_int_equal(hls_layout_locate(l, big + edge, &e, &within), KTH_OK);
    assert_int_equal(e, 2);
    assert_int_equal(within, 0);
    assert_int_equal(hls_layout_locate(l, big + edge - 1, &e, &within), KTH_OK);
    assert_int_equal(e, 1);
    assert_int_equal(within, edge - 1);
    assert_true(hls_layout_total_length(l, &len));
    assert_int_equal(len, big + edge + edge - 1 + UINT32_MAX);
    hls_layout_free(l);
    hls_playlist_free(pl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sizes_arrive_out_of_order_and_offsets_follow),
        cmocka_unit_test(test_init_sections_precede_the_segments_that_use_them),
        cmocka_unit_test(test_byteranges_give_sizes_only_for_clear_segments),
        cmocka_unit_test(test_time_lookup_finds_the_containing_segment),
        cmocka_unit_test(test_switch_lookup_finds_the_nearest_start),
        cmocka_unit_test(test_master_playlist_has_no_layout),
        cmocka_unit_test(test_open_layout_grows_without_moving_offsets),
        cmocka_unit_test(test_a_reload_may_bring_the_first_init_section),
        cmocka_unit_test(test_offsets_and_lookups_hold_across_many_entries),
        cmocka_unit_test(test_sizes_of_4_gib_and_more_are_kept_whole),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
