/*
 * validate.c — validators for bodies that must not be something else, and header lookup for
 * callbacks.
 *
 * A misconfigured server or a captive portal answers 200 with an HTML page where a playlist or
 * a key was expected; treating that page as data would poison the cache and the decoder, so it
 * is refused before a byte of it reaches the writer.
 */
#include "net/downloader.h"

#include "net/http.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

bool net_looks_like_html(const void *prefix, size_t n)
{
    const unsigned char *p = prefix;
    if (!p)
        return false;
    size_t i = 0;
    if (n >= 3 && p[0] == 0xEF && p[1] == 0xBB && p[2] == 0xBF)
        i = 3; /* UTF-8 byte order mark */
    while (i < n && isspace(p[i]))
        i++;
    static const char *const openers[] = {"<!doctype html", "<html", "<head", "<body", "<!--"};
    for (size_t k = 0; k < sizeof openers / sizeof openers[0]; k++) {
        size_t len = strlen(openers[k]);
        if (n - i >= len && strncasecmp((const char *)p + i, openers[k], len) == 0)
            return true;
    }
    return false;
}

kth_status net_validate_not_html(void *user, const net_response *resp, const void *prefix, size_t n,
                                 char *msg, size_t msglen)
{
    (void)user;
    const char *ct = resp ? resp->content_type : NULL;
    bool html_type = ct && (strncasecmp(ct, "text/html", 9) == 0 ||
                            strncasecmp(ct, "application/xhtml", 17) == 0);
    if (html_type || net_looks_like_html(prefix, n)) {
        if (msg && msglen)
            snprintf(msg, msglen, "got an HTML page (Content-Type %s) instead of the expected data",
                     ct ? ct : "none");
        return KTH_ERR_FORMAT;
    }
    return KTH_OK;
}

bool net_response_header(const net_response *resp, const char *name, char *buf, size_t size)
{
    return resp && net_header_find(resp->headers, name, buf, size);
}
