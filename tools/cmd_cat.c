/*
 * cmd_cat.c — `kithara cat [--start BYTES] URL`: writes exactly the bytes a decoder would read
 * to standard output.
 */
#include "commands.h"

#include <kithara/kithara.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int cat_usage(FILE *to, int code)
{
    fprintf(to, "usage: kithara cat [--start BYTES] URL\n"
                "  Writes the stream's bytes to standard output, from BYTES (default 0).\n");
    return code;
}

static int write_all(const unsigned char *p, size_t n)
{
    while (n > 0) {
        ssize_t k = write(STDOUT_FILENO, p, n);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

int cmd_cat(int argc, char **argv)
{
    const char *url = NULL;
    uint64_t start = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return cat_usage(stdout, 0);
        if (strcmp(argv[i], "--start") == 0 && i + 1 < argc) {
            char *end;
            errno = 0;
            unsigned long long v = strtoull(argv[++i], &end, 10);
            if (errno || *end || argv[i][0] == '-' || argv[i][0] == '\0') {
                tool_error("--start: '%s' is not a byte offset", argv[i]);
                return 2;
            }
            start = v;
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            tool_error("cat: unknown option '%s'", argv[i]);
            return cat_usage(stderr, 2);
        } else if (!url) {
            url = argv[i];
        } else {
            tool_error("cat: more than one URL given");
            return 2;
        }
    }
    if (!url)
        return cat_usage(stderr, 2);

    char err[512];
    kth_stream *s;
    kth_status st = kth_stream_open(url, NULL, &s, err, sizeof err);
    if (st != KTH_OK) {
        tool_error("%s", err[0] ? err : kth_strerror(st));
        return 1;
    }
    int rc = 0;
    if (start > 0 && (st = kth_stream_seek(s, (int64_t)start, SEEK_SET, NULL)) != KTH_OK) {
        tool_error("%s: cannot start at byte %llu: %s", url, (unsigned long long)start,
                   kth_strerror(st));
        kth_stream_close(s);
        return 1;
    }
    static unsigned char buf[256 * 1024];
    for (;;) {
        int64_t n = kth_stream_read(s, buf, sizeof buf);
        if (n == 0)
            break;
        if (n == KTH_ERR_SEEK_PENDING || n == KTH_ERR_RETRY)
            continue;
        if (n < 0) {
            char detail[512];
            kth_stream_last_error(s, detail, sizeof detail);
            tool_error("%s: %s%s%s", url, kth_strerror((int)n), detail[0] ? ": " : "", detail);
            rc = 1;
            break;
        }
        if (write_all(buf, (size_t)n) != 0) {
            if (errno != EPIPE)
                tool_error("writing standard output: %s", strerror(errno));
            rc = 1;
            break;
        }
    }
    kth_stream_close(s);
    return rc;
}
