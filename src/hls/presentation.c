/*
 * presentation.c — the audio ladder of a master playlist (rules in presentation.h).
 */
#include "hls/presentation.h"
#include "platform/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CODECS 16

/* The first audio codec a CODECS list names; *video set when it names a video codec. */
static kth_codec audio_codec_of(const char *codecs, bool *names_video, bool *names_known_audio)
{
    *names_video = false;
    *names_known_audio = false;
    kth_codec list[MAX_CODECS];
    size_t n = 0;
    if (!codecs || kth_codecs_parse(codecs, list, MAX_CODECS, &n) != KTH_OK)
        return KTH_CODEC_UNKNOWN;
    kth_codec first = KTH_CODEC_UNKNOWN;
    for (size_t i = 0; i < n && i < MAX_CODECS; i++) {
        if (list[i] == KTH_CODEC_VIDEO)
            *names_video = true;
        else if (kth_codec_is_audio(list[i])) {
            *names_known_audio = true;
            if (first == KTH_CODEC_UNKNOWN)
                first = list[i];
        }
    }
    return first;
}

static void warnf(hls_warn_fn warn, void *user, const char *fmt, const hls_variant *v)
{
    if (!warn)
        return;
    char msg[512];
    snprintf(msg, sizeof msg, fmt, (unsigned long)v->line, v->codecs ? v->codecs : "");
    warn(msg, user);
}

static int rung_cmp(const void *a, const void *b)
{
    const hls_rung *x = a, *y = b;
    if (x->bandwidth != y->bandwidth)
        return x->bandwidth < y->bandwidth ? -1 : 1;
    return (x->variant > y->variant) - (x->variant < y->variant);
}

/* Classifies every variant once: usable[i] when its audio is playable, codec[i] its audio
 * codec. True when a usable variant is audio only (video variants are then left out). */
static bool classify_variants(const hls_playlist *pl, bool *usable, kth_codec *codec,
                              hls_warn_fn warn, void *user)
{
    const hls_master_playlist *m = &pl->master;
    bool any_audio_only = false;
    for (size_t i = 0; i < m->variant_count; i++) {
        const hls_variant *v = &m->variants[i];
        bool video = false, known_audio = false;
        codec[i] = audio_codec_of(v->codecs, &video, &known_audio);
        bool audio_elsewhere = v->audio_group && hls_playlist_audio_rendition(pl, v->audio_group);
        if (v->codecs && !known_audio && !audio_elsewhere) {
            warnf(warn, user,
                  "variant at line %lu skipped: CODECS '%s' names no audio codec "
                  "kithara knows",
                  v);
            continue;
        }
        usable[i] = true;
        if (!v->has_video)
            any_audio_only = true;
    }
    return any_audio_only;
}

/* The rung of usable variant `i`: a video variant plays its audio rendition when it has one
 * with a URI, else it is played whole. */
static hls_rung rung_of_variant(const hls_playlist *pl, size_t i, kth_codec codec, hls_warn_fn warn,
                                void *user)
{
    const hls_variant *v = &pl->master.variants[i];
    hls_rung r = {v->uri,       v->average_bandwidth ? v->average_bandwidth : v->bandwidth,
                  v->bandwidth, false,
                  codec,        i,
                  NULL};
    if (v->has_video) {
        const hls_rendition *rd =
            v->audio_group ? hls_playlist_audio_rendition(pl, v->audio_group) : NULL;
        if (rd && rd->uri) {
            r.uri = rd->uri;
            r.rendition = rd;
            r.bandwidth_is_upper_bound = true;
        } else {
            warnf(warn, user,
                  "variant at line %lu carries video with its audio muxed in; "
                  "it is played whole (CODECS '%s')",
                  v);
        }
    }
    return r;
}

/* Adds rung `r`: one rung per playlist URL, keeping the lowest bandwidth claim. */
static void add_rung(hls_ladder *out, const hls_rung *r)
{
    for (size_t j = 0; j < out->count; j++) {
        if (strcmp(out->rungs[j].uri, r->uri) == 0) {
            if (r->bandwidth < out->rungs[j].bandwidth)
                out->rungs[j].bandwidth = r->bandwidth;
            return;
        }
    }
    out->rungs[out->count++] = *r;
}

kth_status hls_ladder_from_master(const hls_playlist *pl, hls_ladder *out, hls_warn_fn warn,
                                  void *user, char *err, size_t errlen)
{
    if (!pl || !out || pl->kind != HLS_PLAYLIST_MASTER)
        return KTH_ERR_INVALID_ARG;
    const hls_master_playlist *m = &pl->master;
    out->rungs = platform_calloc(m->variant_count ? m->variant_count : 1, sizeof *out->rungs);
    out->count = 0;
    if (!out->rungs)
        return KTH_ERR_NO_MEMORY;
    bool *usable = platform_calloc(m->variant_count ? m->variant_count : 1, sizeof *usable);
    kth_codec *codec = platform_calloc(m->variant_count ? m->variant_count : 1, sizeof *codec);
    if (!usable || !codec) {
        platform_free(usable);
        platform_free(codec);
        hls_ladder_free(out);
        return KTH_ERR_NO_MEMORY;
    }
    bool any_audio_only = classify_variants(pl, usable, codec, warn, user);
    for (size_t i = 0; i < m->variant_count; i++) {
        if (!usable[i] || (any_audio_only && m->variants[i].has_video))
            continue;
        hls_rung r = rung_of_variant(pl, i, codec[i], warn, user);
        add_rung(out, &r);
    }
    platform_free(usable);
    platform_free(codec);
    if (out->count == 0) {
        if (err && errlen)
            snprintf(err, errlen, "%s: no variant or rendition with audio kithara can play",
                     pl->url);
        hls_ladder_free(out);
        return KTH_ERR_UNSUPPORTED;
    }
    qsort(out->rungs, out->count, sizeof *out->rungs, rung_cmp);
    return KTH_OK;
}

kth_status hls_ladder_single(const char *url, hls_ladder *out)
{
    if (!url || !out)
        return KTH_ERR_INVALID_ARG;
    out->rungs = platform_calloc(1, sizeof *out->rungs);
    if (!out->rungs)
        return KTH_ERR_NO_MEMORY;
    out->rungs[0].uri = url;
    out->rungs[0].codec = KTH_CODEC_UNKNOWN;
    out->count = 1;
    return KTH_OK;
}

void hls_ladder_free(hls_ladder *ladder)
{
    if (!ladder)
        return;
    platform_free(ladder->rungs);
    ladder->rungs = NULL;
    ladder->count = 0;
}
