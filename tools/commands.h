/*
 * commands.h — the subcommands of the kithara program. Each takes its own argv (argv[0] is the
 * subcommand's name) and returns the process exit code: 0 success, 1 failure, 2 bad usage.
 */
#ifndef KTH_TOOLS_COMMANDS_H
#define KTH_TOOLS_COMMANDS_H

int cmd_cat(int argc, char **argv);
int cmd_info(int argc, char **argv);

/* Prints "kithara: <message>" on stderr (one line). */
void tool_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
