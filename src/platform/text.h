/*
 * text.h — strings built on the heap, and excerpts of long strings for messages.
 *
 * URLs, cache keys and paths come from outside and have no useful fixed bound, so they are
 * formatted into heap strings sized to fit: never cut short, which would quietly turn two
 * different URLs into one. Only human messages live in fixed buffers, and a long URL inside
 * one is shown as an excerpt (its head and tail) so the rest of the sentence survives.
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

#endif
