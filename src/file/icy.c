/*
 * icy.c — splitting an ICY body into audio and metadata blocks (see icy.h).
 */
#include "file/icy.h"

#include <stdlib.h>
#include <string.h>

void icy_parser_init(icy_parser *p, uint32_t metaint)
{
    memset(p, 0, sizeof *p);
    p->metaint = metaint;
    p->audio_left = metaint;
}

/* The block is complete: hand its text (without the NUL padding) to the sink. */
static kth_status finish_block(icy_parser *p, const icy_sink *sink)
{
    size_t len = p->meta_len;
    while (len > 0 && p->meta[len - 1] == '\0')
        len--;
    p->meta[len] = '\0';
    p->in_meta = false;
    p->audio_left = p->metaint;
    if (len == 0 || !sink->meta)
        return KTH_OK;
    return sink->meta(sink->user, p->meta, len);
}

kth_status icy_parser_feed(icy_parser *p, const uint8_t *data, size_t n, const icy_sink *sink)
{
    size_t i = 0;
    while (i < n) {
        if (p->metaint == 0 || p->audio_left > 0) {
            size_t take = n - i;
            if (p->metaint > 0 && take > p->audio_left)
                take = p->audio_left;
            kth_status st = sink->audio ? sink->audio(sink->user, data + i, take) : KTH_OK;
            if (st != KTH_OK)
                return st;
            if (p->metaint > 0)
                p->audio_left -= (uint32_t)take;
            i += take;
            continue;
        }
        if (!p->in_meta) {
            p->in_meta = true;
            p->meta_len = (size_t)data[i++] * 16;
            p->meta_got = 0;
        } else {
            size_t take = p->meta_len - p->meta_got;
            if (take > n - i)
                take = n - i;
            memcpy(p->meta + p->meta_got, data + i, take);
            p->meta_got += take;
            i += take;
        }
        if (p->meta_got == p->meta_len) {
            kth_status st = finish_block(p, sink);
            if (st != KTH_OK)
                return st;
        }
    }
    return KTH_OK;
}

bool icy_parse_metaint(const char *value, uint32_t *out)
{
    if (!value || *value < '0' || *value > '9')
        return false;
    char *end = NULL;
    unsigned long long v = strtoull(value, &end, 10);
    if (*end != '\0' || v == 0 || v > (16u << 20))
        return false;
    *out = (uint32_t)v;
    return true;
}

bool icy_meta_field(const char *text, const char *key, char *out, size_t size)
{
    size_t key_len = strlen(key);
    for (const char *p = text; (p = strstr(p, key)) != NULL; p += key_len) {
        if (p != text && p[-1] != ';' && p[-1] != ' ')
            continue; /* part of another field's name or value */
        if (strncmp(p + key_len, "='", 2) != 0)
            continue;
        const char *v = p + key_len + 2;
        const char *end = strstr(v, "';");
        size_t len = end ? (size_t)(end - v) : strlen(v);
        if (!end && len > 0 && v[len - 1] == '\'')
            len--;
        if (size > 0) {
            size_t copy = len < size - 1 ? len : size - 1;
            memcpy(out, v, copy);
            out[copy] = '\0';
        }
        return true;
    }
    return false;
}
