/*
 * kithara/log.h — where kithara's diagnostic messages go.
 *
 * The library never prints. Messages are handed to a process-wide handler that the application
 * installs; with no handler (the default) they are dropped.
 */
#ifndef KITHARA_LOG_H
#define KITHARA_LOG_H

#include <kithara/status.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum kth_log_level {
    KTH_LOG_ERROR = 0,
    KTH_LOG_WARN = 1,
    KTH_LOG_INFO = 2,
    KTH_LOG_DEBUG = 3,
} kth_log_level;

/* A log handler. `component` names the layer ("storage", "net", ...); `message` is one line
 * without a trailing newline. Both strings are valid only during the call. The handler runs on
 * whichever kithara thread logs (including the downloader thread), never with a kithara lock
 * held; it must not block for long. */
typedef void (*kth_log_fn)(kth_log_level level, const char *component, const char *message,
                           void *user);

/* Installs `fn` (NULL removes the handler) for messages at `max_level` or more severe. Any
 * thread; calls already in progress may still reach the previous handler. */
KTH_API void kth_set_log_handler(kth_log_fn fn, void *user, kth_log_level max_level);

#ifdef __cplusplus
}
#endif

#endif /* KITHARA_LOG_H */
