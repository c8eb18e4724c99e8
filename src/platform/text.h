/*
 * text.h — strings built on the heap, and excerpts of long strings for messages.
 *
 * URLs, cache keys and paths come from outside and have no useful fixed bound, so they are
 * formatted into heap strings sized to fit: never cut short, which would quietly turn two
 * different URLs into one. Only human messages live in fixed buffers: a long URL or path inside
 * one is shown as an excerpt (its head and tail), and a message copied or formatted into a
 * buffer too small for it keeps its head and tail too, so the cause at its end survives.
 */
#ifndef KTH_PLATFORM_TEXT_H
#define KTH_PLATFORM_TEXT_H

#include <stdarg.h>
#include <stddef.h>

/* Formats like printf into a new string of exactly the length needed, which the caller frees
 * with platform_free(). Returns NULL when memory runs out or the format cannot be produced (never a
 * shortened string). Any thread. */
char *platform_printf_new(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *platform_vprintf_new(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));

/* Writes `s` into buf (size bytes) for a human message: whole when it fits, otherwise its
 * head, "...", and its tail, filling the buffer (a URL keeps its host and the end where signed
 * URLs differ). For messages only: the result is never a key, URL or path to use. NULL s is
 * written as "(null)"; size 0 writes nothing. Returns buf. Any thread. */
const char *platform_excerpt(const char *s, char *buf, size_t size);

/* Bytes (with the terminator) of a URL's or a path's excerpt inside a message. */
#define PLATFORM_SHOWN_MAX 200
/* A URL or path as a message shows it: whole when short, else its head and tail, so the rest
 * of the sentence survives. For messages only. The excerpt lives in a compound literal of the
 * enclosing block. */
#define PLATFORM_SHOWN(s) platform_excerpt((s), (char[PLATFORM_SHOWN_MAX]){0}, PLATFORM_SHOWN_MAX)

/* What `message` says after its leading "<name>: ", with name as PLATFORM_SHOWN shows it; the
 * whole message when it does not begin so. A message that wraps another's names its URL once
 * this way. Returns a pointer into message. Any thread. */
const char *platform_message_after(const char *message, const char *name);

/* Formats like snprintf into buf (size bytes) for a human message, but a result that does not
 * fit keeps its head and its tail (as platform_excerpt) rather than losing its end, where a
 * message says why. When memory for the whole result runs out, the head alone is kept. Size 0
 * writes nothing. The arguments must not point into buf. Any thread. */
void platform_excerptf(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void platform_vexcerptf(char *buf, size_t size, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

#endif
