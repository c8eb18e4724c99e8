/*
 * exit_codes.c — the kithara program's exit codes: one table maps each library status to the
 * code a script can test, and the same table prints the list in `kithara --help`, so the two
 * cannot disagree.
 */
#include "commands.h"

#include <stdio.h>

static const struct exit_code_row {
    int code;
    const char *meaning;
} exit_code_rows[] = {
    {TOOL_EXIT_OK, "success"},
    {TOOL_EXIT_FAILURE, "another failure (unsupported stream, internal error)"},
    {TOOL_EXIT_USAGE, "bad usage: unknown option, missing or malformed argument"},
    {TOOL_EXIT_NETWORK, "network: name resolution, connection, TLS, timeout or stall"},
    {TOOL_EXIT_HTTP, "HTTP: the server refused (404, 403, other 4xx, persistent 5xx)"},
    {TOOL_EXIT_FORMAT, "format: not a playlist or media, decryption failed, changed on the\n"
                       "       server, or over a limit (URL length, playlist size)"},
    {TOOL_EXIT_OFFLINE_MISS, "offline miss: --offline and the cache does not hold it"},
    {TOOL_EXIT_CACHE, "cache: the cache directory cannot be opened or is busy, its secret is\n"
                      "       missing or wrong (protected cache), or (offline) a cached block\n"
                      "       failed its checksum"},
    {TOOL_EXIT_IO, "I/O: a local file or the output could not be read or written"},
    {TOOL_EXIT_INTERRUPTED, "interrupted (Ctrl-C)"},
};

int tool_exit_code(int status, bool remote)
{
    switch (status) {
    case KTH_OK:
        return TOOL_EXIT_OK;
    case KTH_ERR_NETWORK:
    case KTH_ERR_TIMEOUT:
        return TOOL_EXIT_NETWORK;
    case KTH_ERR_HTTP:
        return TOOL_EXIT_HTTP;
    case KTH_ERR_NOT_FOUND:
        return remote ? TOOL_EXIT_HTTP : TOOL_EXIT_IO;
    case KTH_ERR_FORMAT:
    case KTH_ERR_DECRYPT:
    case KTH_ERR_CHANGED:
    case KTH_ERR_LIMIT:
        return TOOL_EXIT_FORMAT;
    case KTH_ERR_OFFLINE_MISS:
        return TOOL_EXIT_OFFLINE_MISS;
    case KTH_ERR_BUSY:
    case KTH_ERR_CORRUPT:
    case KTH_ERR_PROTECTED:
        return TOOL_EXIT_CACHE;
    case KTH_ERR_IO:
        return TOOL_EXIT_IO;
    case KTH_ERR_CANCELLED:
        return TOOL_EXIT_INTERRUPTED;
    case KTH_ERR_INVALID_ARG:
        return TOOL_EXIT_USAGE;
    default:
        return TOOL_EXIT_FAILURE;
    }
}

void tool_print_exit_codes(FILE *to)
{
    fprintf(to, "exit status:\n");
    for (size_t i = 0; i < sizeof exit_code_rows / sizeof exit_code_rows[0]; i++)
        fprintf(to, "  %3d  %s\n", exit_code_rows[i].code, exit_code_rows[i].meaning);
}
