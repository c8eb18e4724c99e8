/*
 * file/icy.h — the ICY (Icecast/SHOUTcast) metadata framing of an internet radio body.
 *
 * A server asked with "Icy-MetaData: 1" that answers with "icy-metaint: N" interleaves its audio
 * with metadata: after every N audio bytes comes one length byte L, then L * 16 bytes of text
 * (at most 4,080; L = 0 when nothing changed), such as "StreamTitle='Artist - Song';". The
 * parser takes the raw body in pieces of any size (a block may be split across any number of
 * pieces) and hands the audio bytes and each complete metadata block to its sink.
 *
 * Pure code: no I/O, no locks. One parser per connection, used by one thread at a time.
 */
#ifndef KTH_FILE_ICY_H
#define KTH_FILE_ICY_H

#include <kithara/status.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ICY_META_MAX 4080 /* 255 * 16 */

typedef struct icy_sink {
    /* Audio bytes in order. Non-OK stops the parser, which returns that status. */
    kth_status (*audio)(void *user, const uint8_t *data, size_t n);
    /* A whole, non-empty metadata block (text, trailing NUL padding removed, NUL-terminated).
     * Non-OK stops the parser likewise. */
    kth_status (*meta)(void *user, const char *text, size_t len);
    void *user;
} icy_sink;

typedef struct icy_parser {
    uint32_t metaint;    /* 0: no metadata, every byte is audio */
    uint32_t audio_left; /* audio bytes before the next length byte */
    size_t meta_len;     /* bytes of the current block's text (0 when between blocks) */
    size_t meta_got;
    bool in_meta;
    char meta[ICY_META_MAX + 1];
} icy_parser;

/* Starts a parser for a body with the given metaint (0: no metadata). */
void icy_parser_init(icy_parser *p, uint32_t metaint);

/* Feeds n raw body bytes. Returns KTH_OK, or the first non-OK status of the sink. */
kth_status icy_parser_feed(icy_parser *p, const uint8_t *data, size_t n, const icy_sink *sink);

/* Parses an icy-metaint header value: a decimal in [1, 16 MiB]. False otherwise. */
bool icy_parse_metaint(const char *value, uint32_t *out);

/* Copies the value of field `key` (StreamTitle, StreamUrl) of a metadata block into out,
 * NUL-terminated and cut to size. The value runs from "key='" to the next "';" (titles may hold
 * apostrophes), or to the end of the text when none follows. False when the field is absent. */
bool icy_meta_field(const char *text, const char *key, char *out, size_t size);

#endif
