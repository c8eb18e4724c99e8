/*
 * fuzz/fuzz_playlist.c — libFuzzer target for the HLS playlist parser.
 *
 * Feeds arbitrary bytes to hls_playlist_parse() with small limits (so the fuzzer reaches the
 * limit paths too), then walks every part of a successful model and checks the invariants the
 * header promises. A broken invariant aborts, which libFuzzer reports as a crash.
 */
#include "hls/playlist.h"

#include <kithara/status.h>

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

static volatile size_t sink;

static void touch(const char *s)
{
    if (s != NULL) {
        sink += strlen(s);
    }
}

static void check_key(const hls_key *k)
{
    CHECK(k->method == HLS_KEY_AES_128 || k->method == HLS_KEY_SAMPLE_AES ||
          k->method == HLS_KEY_OTHER);
    CHECK(k->uri != NULL && k->method_name != NULL && k->keyformat != NULL &&
          k->keyformat_versions != NULL);
    touch(k->uri);
    touch(k->method_name);
    touch(k->keyformat);
    touch(k->keyformat_versions);
}

static void check_range(const hls_byterange *r)
{
    if (r->present) {
        CHECK(r->length > 0);
        CHECK(r->offset <= UINT64_MAX - r->length);
    } else {
        CHECK(r->offset == 0 && r->length == 0);
    }
}

static void check_master(const hls_playlist *pl)
{
    const hls_master_playlist *m = &pl->master;
    CHECK(m->variant_count > 0);
    for (size_t i = 0; i < m->variant_count; i++) {
        const hls_variant *v = &m->variants[i];
        CHECK(v->uri != NULL);
        touch(v->uri);
        touch(v->codecs);
        touch(v->audio_group);
        touch(v->video_group);
        if (v->audio_group != NULL) {
            const hls_rendition *r = hls_playlist_audio_rendition(pl, v->audio_group);
            CHECK(r == NULL ||
                  (r->type == HLS_MEDIA_AUDIO && strcmp(r->group_id, v->audio_group) == 0));
        }
    }
    size_t order[300];
    size_t n = hls_playlist_variants_by_bandwidth(pl, order, 300);
    CHECK(n == (m->variant_count < 300 ? m->variant_count : 300));
    for (size_t i = 1; i < n; i++) {
        CHECK(m->variants[order[i - 1]].bandwidth <= m->variants[order[i]].bandwidth);
    }
    for (size_t i = 0; i < m->rendition_count; i++) {
        const hls_rendition *r = &m->renditions[i];
        CHECK(r->type >= HLS_MEDIA_AUDIO && r->type <= HLS_MEDIA_CLOSED_CAPTIONS);
        CHECK(r->group_id != NULL && r->name != NULL);
        touch(r->group_id);
        touch(r->name);
        touch(r->language);
        touch(r->assoc_language);
        touch(r->channels);
        touch(r->instream_id);
        touch(r->uri);
    }
    for (size_t i = 0; i < m->session_key_count; i++) {
        check_key(&m->session_keys[i]);
    }
    CHECK(pl->media.segment_count == 0 && pl->media.run_count_ == 0);
}

static void check_media(const hls_playlist *pl)
{
    const hls_media_playlist *m = &pl->media;
    double t = 0;
    uint64_t disc = m->discontinuity_sequence;
    for (size_t i = 0; i < m->segment_count; i++) {
        const hls_segment s_seg = hls_media_segment(m, i), *s = &s_seg;
        char *uri = hls_media_segment_uri(m, i);
        CHECK(uri != NULL);
        CHECK(hls_media_segment_uri_is(m, i, uri));
        free(uri);
        touch(s->title);
        CHECK(s->duration >= 0);
        CHECK(s->start == t);
        t += s->duration;
        CHECK(s->sequence == m->media_sequence + i);
        CHECK(s->discontinuity_sequence >= disc);
        CHECK(s->discontinuity || s->discontinuity_sequence == disc || i == 0);
        disc = s->discontinuity_sequence;
        check_range(&s->range);
        CHECK(s->key == HLS_NONE || s->key < m->key_count);
        CHECK(s->map == HLS_NONE || s->map < m->map_count);
        uint8_t iv[16];
        int rc = hls_playlist_segment_iv(pl, i, iv);
        CHECK((rc == KTH_OK) == (s->key != HLS_NONE));
    }
    CHECK(m->total_duration == t);
    for (size_t i = 0; i < m->key_count; i++) {
        check_key(&m->keys[i]);
    }
    for (size_t i = 0; i < m->map_count; i++) {
        const hls_map *mp = &m->maps[i];
        CHECK(mp->uri != NULL);
        touch(mp->uri);
        check_range(&mp->range);
        CHECK(mp->key == HLS_NONE || mp->key < m->key_count);
        if (mp->key != HLS_NONE && m->keys[mp->key].method == HLS_KEY_AES_128) {
            CHECK(m->keys[mp->key].has_iv);
        }
    }
    CHECK(pl->master.variant_count == 0 && pl->master.variants == NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Small limits keep each run fast and let the fuzzer hit every limit check. */
    hls_parse_limits limits = {
        .max_playlist_bytes = 1 << 20,
        .max_line_bytes = 4096,
        .max_segments = 2000,
        .max_variants = 64,
        .max_renditions = 64,
        .max_session_keys = 8,
    };
    char err[256];
    hls_playlist *pl = NULL;
    int rc = hls_playlist_parse(data, size, "https://media.example.com/a/b/list.m3u8?token=1",
                                &limits, &pl, err, sizeof(err));
    if (rc != KTH_OK) {
        CHECK(pl == NULL);
        CHECK(rc < 0);
        CHECK(err[0] != '\0');
        CHECK(memchr(err, '\0', sizeof(err)) != NULL);
        return 0;
    }
    CHECK(pl != NULL);
    CHECK(pl->url != NULL);
    if (pl->kind == HLS_PLAYLIST_MASTER) {
        check_master(pl);
    } else {
        CHECK(pl->kind == HLS_PLAYLIST_MEDIA);
        check_media(pl);
    }
    hls_playlist_free(pl);
    return 0;
}
