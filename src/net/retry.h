/*
 * retry.h — which failures are transient, and how long to wait before trying again.
 *
 * Pure functions: the downloader's loop decides with them and schedules the retry time on its
 * (injectable) clock, so the policy is tested without a network and without waiting.
 */
#ifndef KTH_NET_RETRY_H
#define KTH_NET_RETRY_H

#include <kithara/status.h>

#include <curl/curl.h>

#include <stdbool.h>
#include <stdint.h>

/* The delay before retry number `failures` (1 for the first retry) with full jitter: u times
 * min(cap, base * 2^(failures - 1)), u in [0, 1). Never negative, never above cap. */
int64_t net_backoff_ns(unsigned failures, int64_t base_ns, int64_t cap_ns, double u);

/* True for the statuses worth retrying: 408, 429 and every 5xx. */
bool net_http_status_transient(int status);

/* The status that reports a final HTTP failure: KTH_ERR_NOT_FOUND for 404 and 410,
 * KTH_ERR_HTTP otherwise. */
kth_status net_http_status_error(int status);

/* True for transfer errors that a new attempt may cure: connect failures, timeouts, resets,
 * truncated bodies, HTTP/2 stream errors, name resolution hiccups. */
bool net_curl_code_transient(CURLcode code);

/* The status for a curl failure that is final (or whose retries ran out). */
kth_status net_curl_code_error(CURLcode code);

/* A generator for jitter: xorshift64*, seeded per downloader; returns [0, 1). */
double net_random_next(uint64_t *state);

#endif
