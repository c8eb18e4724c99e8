/*
 * version.c — the library's version, for run-time checks against the headers.
 */
#include <kithara/version.h>

const char *kth_version(void)
{
    return KTH_VERSION_STRING;
}
