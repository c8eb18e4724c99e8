/*
 * text.c — heap-formatted strings and message excerpts (see text.h).
 */
#include "platform/text.h"
#include "platform/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *platform_vprintf_new(const char *fmt, va_list ap)
{
    va_list measure;
    va_copy(measure, ap);
    int n = vsnprintf(NULL, 0, fmt, measure);
    va_end(measure);
    if (n < 0)
        return NULL;
    char *s = platform_malloc((size_t)n + 1);
    if (!s)
        return NULL;
    if (vsnprintf(s, (size_t)n + 1, fmt, ap) != n) {
        platform_free(s);
        return NULL;
    }
    return s;
}

char *platform_printf_new(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = platform_vprintf_new(fmt, ap);
    va_end(ap);
    return s;
}

const char *platform_excerpt(const char *s, char *buf, size_t size)
{
    static const char gap[] = "...";
    if (size == 0)
        return buf;
    if (!s)
        s = "(null)";
    size_t len = strlen(s);
    if (len < size) {
        memcpy(buf, s, len + 1);
        return buf;
    }
    size_t room = size - 1; /* bytes of text that fit */
    if (room <= sizeof gap - 1) {
        memcpy(buf, s, room);
        buf[room] = '\0';
        return buf;
    }
    room -= sizeof gap - 1;
    size_t head = room - room / 3, tail = room / 3;
    memcpy(buf, s, head);
    memcpy(buf + head, gap, sizeof gap - 1);
    memcpy(buf + head + sizeof gap - 1, s + len - tail, tail);
    buf[size - 1] = '\0';
    return buf;
}

const char *platform_message_after(const char *message, const char *name)
{
    const char *shown = PLATFORM_SHOWN(name);
    size_t n = strlen(shown);
    if (strncmp(message, shown, n) == 0 && message[n] == ':' && message[n + 1] == ' ')
        return message + n + 2;
    return message;
}

void platform_vexcerptf(char *buf, size_t size, const char *fmt, va_list ap)
{
    if (size == 0)
        return;
    va_list again;
    va_copy(again, ap);
    int n = vsnprintf(buf, size, fmt, ap);
    if (n >= 0 && (size_t)n >= size) {
        char *whole = platform_vprintf_new(fmt, again);
        if (whole) /* else the head vsnprintf wrote stays */
            platform_excerpt(whole, buf, size);
        platform_free(whole);
    }
    va_end(again);
}

void platform_excerptf(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    platform_vexcerptf(buf, size, fmt, ap);
    va_end(ap);
}
