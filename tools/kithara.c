/*
 * kithara.c — the command-line program: dispatches to a subcommand.
 */
#include "abr_sim.h"
#include "commands.h"

#include <kithara/kithara.h>

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
};

static const struct command commands[] = {
    {"cat", cmd_cat, "write a stream's bytes to standard output"},
    {"info", cmd_info, "describe a stream: length, container, codec, cached fraction"},
    {"cache", cmd_cache, "list, measure, remove and tidy the asset cache"},
    {"download", cmd_download, "fetch an HLS presentation into the cache for offline play"},
    {"decode", cmd_decode, "decode a stream to PCM (WAV or raw samples) through FFmpeg"},
    {"abr-sim", abr_sim_main, "simulate ABR controllers over bandwidth traces"},
};

void tool_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("kithara: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static void usage(FILE *to)
{
    fprintf(to, "usage: kithara <command> [options] ...\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(to, "  %-8s %s\n", commands[i].name, commands[i].summary);
    fprintf(to, "\noptions every stream command (cat, info, download) takes:\n"
                "  --cache-dir DIR  the cache directory (default $XDG_CACHE_HOME/kithara)\n"
                "  --cache-key-file FILE\n"
                "                   protect the cache with the secret in FILE (32 bytes, or 64\n"
                "                   hex digits; default $KITHARA_CACHE_KEY_FILE)\n"
                "  --offline        use only what the cache holds; a miss fails at once\n"
                "  -q               say nothing on standard error but errors\n"
                "  -v, -vv          also print the library's messages (info, debug)\n\n");
    tool_print_exit_codes(to);
    fprintf(to, "\n'kithara <command> --help' describes a command.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return TOOL_EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("kithara %s\n", kth_version());
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    }
    tool_error("unknown command '%s' (try 'kithara --help')", argv[1]);
    return TOOL_EXIT_USAGE;
}
