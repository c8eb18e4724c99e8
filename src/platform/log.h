/*
 * log.h — the library's internal logging entry point (see kithara/log.h for the handler).
 */
#ifndef KTH_PLATFORM_LOG_H
#define KTH_PLATFORM_LOG_H

#include <kithara/log.h>

/* Formats and hands one message to the installed handler; cheap when no handler wants it. Must
 * not be called with a lock held that the handler might need (the handler is user code). */
void platform_log(kth_log_level level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
