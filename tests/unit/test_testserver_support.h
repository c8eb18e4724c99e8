/*
 * test_testserver_support.h — what the test server's own tests share: requests through the
 * test client by path, a server per test group, and faults set or failing the test.
 */
#ifndef KTH_TEST_TESTSERVER_SUPPORT_H
#define KTH_TEST_TESTSERVER_SUPPORT_H

#include "testclient.h"
#include "testserver.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#define WAIT_MS 10000 /* bounds every wait; only reached if something hangs */

static inline const char *url_of(kts_server *srv, const char *path, char *buf)
{
    return kts_url(srv, path, buf, 512);
}

/* Fetches srv + path with the given options. */
static inline void get(kts_server *srv, const char *path, const ktc_opts *o, ktc_response *r)
{
    char url[512];
    ktc_fetch(url_of(srv, path, url), o, r);
}

static inline void async_start(ktc_async *a, kts_server *srv, const char *path)
{
    char url[512];
    assert_int_equal(ktc_async_start(a, url_of(srv, path, url), NULL), 0);
}

static inline void async_join(ktc_async *a)
{
    assert_int_equal(ktc_async_join(a), 0);
}

static inline int server_up(void **state)
{
    kts_server *srv = NULL;
    if (kts_start(NULL, &srv) != KTH_OK)
        return -1;
    *state = srv;
    return 0;
}

static inline int server_down(void **state)
{
    kts_stop(*state);
    return 0;
}

static inline void add_fault(kts_server *srv, const char *path, kts_fault f)
{
    assert_int_equal(kts_add_fault(srv, path, &f), KTH_OK);
}

#endif
