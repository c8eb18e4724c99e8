/*
 * kithara/version.h — the version of the headers and of the library actually linked.
 *
 * The macros describe the headers a program was compiled against; kth_version() describes the
 * library it runs with. Compare the two to detect a mismatch at run time.
 */
#ifndef KITHARA_VERSION_H
#define KITHARA_VERSION_H

#include <kithara/status.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KTH_VERSION_MAJOR  0
#define KTH_VERSION_MINOR  2
#define KTH_VERSION_PATCH  0
#define KTH_VERSION_STRING "0.2.0"

/* The version of the library actually linked ("0.2.0"); static storage, never NULL, never
 * fails. Any thread. */
KTH_API const char *kth_version(void);

#ifdef __cplusplus
}
#endif

#endif /* KITHARA_VERSION_H */
