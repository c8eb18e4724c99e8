/*
 * icy.c — the radio station mode of the test server: the ICY body generator (audio of the
 * synthetic pattern, metadata blocks after every metaint audio bytes) and the copy of a
 * station's description that a registered body owns.
 */
#include "ts_internal.h"

#include <stdlib.h>
#include <string.h>

#define TS_ICY_META_MAX 4080

static char *dup_or_null(const char *s, bool *ok)
{
    if (s == NULL) {
        return NULL;
    }
    char *d = strdup(s);
    if (d == NULL) {
        *ok = false;
    }
    return d;
}

void ts_icy_free(kts_icy *icy)
{
    if (icy == NULL) {
        return;
    }
    for (size_t i = 0; i < icy->title_count; i++) {
        free((char *)icy->titles[i].text);
    }
    free((kts_icy_title *)icy->titles);
    free((char *)icy->name);
    free((char *)icy->genre);
    free((char *)icy->bitrate);
    free((char *)icy->content_type);
    free(icy);
}

kts_icy *ts_icy_copy(const kts_icy *src)
{
    if (src->metaint == 0 || (src->title_count > 0 && src->titles == NULL)) {
        return NULL;
    }
    kts_icy *icy = calloc(1, sizeof *icy);
    kts_icy_title *titles = calloc(src->title_count + 1, sizeof *titles);
    bool ok = icy != NULL && titles != NULL;
    if (!ok) {
        free(icy);
        free(titles);
        return NULL;
    }
    *icy = *src;
    icy->titles = titles;
    icy->name = dup_or_null(src->name, &ok);
    icy->genre = dup_or_null(src->genre, &ok);
    icy->bitrate = dup_or_null(src->bitrate, &ok);
    icy->content_type = dup_or_null(src->content_type ? src->content_type : "audio/mpeg", &ok);
    for (size_t i = 0; i < src->title_count; i++) {
        titles[i] = src->titles[i];
        titles[i].text = dup_or_null(src->titles[i].text ? src->titles[i].text : "", &ok);
        if (titles[i].text != NULL && strlen(titles[i].text) > TS_ICY_META_MAX) {
            ok = false;
        }
    }
    if (!ok) {
        ts_icy_free(icy);
        return NULL;
    }
    return icy;
}

void ts_icy_cursor_init(ts_icy_cursor *c, const kts_icy *icy, unsigned request, bool with_meta)
{
    memset(c, 0, sizeof *c);
    c->with_meta = with_meta;
    c->seed = icy->seed + (request > 0 ? request - 1 : 0);
    c->audio_left = icy->metaint;
}

/* The title sent in block b, or NULL. */
static const kts_icy_title *title_of(const kts_icy *icy, uint64_t b)
{
    for (size_t i = 0; i < icy->title_count; i++) {
        if (icy->titles[i].block == b) {
            return &icy->titles[i];
        }
    }
    return NULL;
}

/* The length byte of block b. */
static unsigned block_units(const kts_icy_title *t)
{
    if (t == NULL) {
        return 0;
    }
    return t->pad_max ? 255 : (unsigned)((strlen(t->text) + 15) / 16);
}

/* Byte i of block b (0: the length byte). */
static unsigned char block_byte(const kts_icy_title *t, size_t i)
{
    if (i == 0) {
        return (unsigned char)block_units(t);
    }
    size_t len = strlen(t->text);
    return i - 1 < len ? (unsigned char)t->text[i - 1] : 0;
}

void ts_icy_next(const kts_icy *icy, ts_icy_cursor *c, unsigned char *buf, size_t n)
{
    size_t i = 0;
    while (i < n) {
        if (!c->with_meta || c->audio_left > 0) {
            size_t take = n - i;
            if (c->with_meta && take > c->audio_left) {
                take = c->audio_left;
            }
            kts_synth_fill(c->seed, c->audio_pos, buf + i, take);
            c->audio_pos += take;
            if (c->with_meta) {
                c->audio_left -= (uint32_t)take;
            }
            i += take;
            continue;
        }
        const kts_icy_title *t = title_of(icy, c->block);
        size_t block_len = 1 + (size_t)block_units(t) * 16;
        while (i < n && c->block_pos < block_len) {
            buf[i++] = block_byte(t, c->block_pos++);
        }
        if (c->block_pos == block_len) {
            c->block++;
            c->block_pos = 0;
            c->audio_left = icy->metaint;
        }
    }
}

void kts_icy_fill(const kts_icy *icy, unsigned request, void *buf, size_t n)
{
    ts_icy_cursor c;
    ts_icy_cursor_init(&c, icy, request, true);
    ts_icy_next(icy, &c, buf, n);
}
