/*
 * retry.c — the retry policy (see retry.h).
 */
#include "net/retry.h"

int64_t net_backoff_ns(unsigned failures, int64_t base_ns, int64_t cap_ns, double u)
{
    if (failures == 0 || base_ns <= 0 || cap_ns <= 0)
        return 0;
    int64_t ceiling = base_ns;
    for (unsigned i = 1; i < failures && ceiling < cap_ns; i++)
        ceiling = ceiling > cap_ns / 2 ? cap_ns : ceiling * 2;
    if (ceiling > cap_ns)
        ceiling = cap_ns;
    if (!(u >= 0.0)) /* also catches NaN */
        u = 0.0;
    if (u >= 1.0)
        u = 0.999999999;
    return (int64_t)((double)ceiling * u);
}

bool net_http_status_transient(int status)
{
    return status == 408 || status == 429 || (status >= 500 && status <= 599);
}

kth_status net_http_status_error(int status)
{
    return (status == 404 || status == 410) ? KTH_ERR_NOT_FOUND : KTH_ERR_HTTP;
}

bool net_curl_code_transient(CURLcode code)
{
    switch (code) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_PARTIAL_FILE:
    case CURLE_GOT_NOTHING:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_HTTP3:
    case CURLE_QUIC_CONNECT_ERROR:
        return true;
    default:
        return false;
    }
}

kth_status net_curl_code_error(CURLcode code)
{
    switch (code) {
    case CURLE_OUT_OF_MEMORY:
        return KTH_ERR_NO_MEMORY;
    case CURLE_UNSUPPORTED_PROTOCOL:
        return KTH_ERR_UNSUPPORTED;
    case CURLE_URL_MALFORMAT:
        return KTH_ERR_INVALID_ARG;
    case CURLE_TOO_MANY_REDIRECTS:
        return KTH_ERR_HTTP;
    case CURLE_BAD_CONTENT_ENCODING:
        return KTH_ERR_FORMAT;
    case CURLE_OPERATION_TIMEDOUT:
        return KTH_ERR_TIMEOUT;
    default:
        return KTH_ERR_NETWORK;
    }
}

double net_random_next(uint64_t *state)
{
    uint64_t x = *state ? *state : 0x9E3779B97F4A7C15ull;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return (double)((x * 0x2545F4914F6CDD1Dull) >> 11) / 9007199254740992.0; /* 2^53 */
}
