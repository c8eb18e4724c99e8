/*
 * test_stream.c — the read/seek stream contract: every outcome of try_read, the seek epoch
 * (a seek from another thread ends a blocked read with SEEK_PENDING and no stale byte ever
 * counts), proven EOF, SEEK_END waiting for the length, cancel, and byte-exact reads of a local
 * file through kth_stream_open with random seeks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kithara/kithara.h>

#include "platform/clock.h"
#include "platform/sync.h"
#include "storage/resource.h"
#include "stream/resource_source.h"
#include "stream/source.h"
#include "test_support.h"

/* ------------------------------------------------------------------------------------------
 * A scripted source: each read_at / wait_range call takes the next scripted result. Used to
 * drive the stream through outcomes a real source produces only in rare situations.
 */
struct script_source {
    stream_source base;
    source_read reads[32];
    int nreads, next_read;
    source_wait waits[32];
    kth_status wait_status;
    int nwaits, next_wait;
    bool fence;
    int read_calls, wait_calls;
    int64_t last_deadline_ns; /* the deadline the last wait was given */
};

static source_wait ss_wait_range(stream_source *src, uint64_t start, uint64_t end,
                                 const stream_wait_ctx *ctx, kth_status *status)
{
    (void)start;
    (void)end;
    struct script_source *s = (struct script_source *)src;
    s->wait_calls++;
    s->last_deadline_ns = ctx->deadline_ns;
    assert_true(s->next_wait < s->nwaits);
    source_wait w = s->waits[s->next_wait++];
    if (w == SOURCE_WAIT_ERROR)
        *status = s->wait_status;
    return w;
}

static source_read ss_read_at(stream_source *src, uint64_t offset, void *buf, size_t n)
{
    struct script_source *s = (struct script_source *)src;
    s->read_calls++;
    assert_true(s->next_read < s->nreads);
    source_read r = s->reads[s->next_read++];
    if (r.kind == KTH_READ_BYTES) {
        if (r.n > n)
            r.n = n;
        test_pattern_fill(5, offset, buf, r.n);
    }
    if (r.kind == KTH_READ_PENDING && r.reason == KTH_PENDING_VARIANT_CHANGE)
        s->fence = true;
    return r;
}

static bool ss_length(stream_source *src, uint64_t *length)
{
    (void)src;
    (void)length;
    return false;
}

static source_wait ss_wait_length(stream_source *src, const stream_wait_ctx *ctx,
                                  kth_status *status)
{
    (void)src;
    (void)ctx;
    (void)status;
    return SOURCE_WAIT_TIMEOUT;
}

static void ss_notify(stream_source *src)
{
    (void)src;
}

static bool ss_fence_pending(stream_source *src)
{
    return ((struct script_source *)src)->fence;
}

static void ss_clear_fence(stream_source *src)
{
    ((struct script_source *)src)->fence = false;
}

static size_t ss_last_error(stream_source *src, char *buf, size_t size)
{
    (void)src;
    return (size_t)snprintf(buf, size, "GET http://127.0.0.1/seg3.ts: HTTP 403 at offset 4096");
}

static kth_status ss_seek_time_anchor(stream_source *src, double seconds,
                                      const stream_wait_ctx *ctx, kth_seek_anchor *anchor)
{
    (void)src;
    (void)ctx;
    if (seconds > 100)
        return KTH_ERR_TIMEOUT; /* as a source that could not learn a size in time */
    anchor->offset = 5000;
    anchor->segment_start = 8.0;
    anchor->segment_end = 12.0;
    anchor->segment_index = 2;
    anchor->variant = 1;
    return KTH_OK;
}

static void ss_destroy(stream_source *src)
{
    free(src);
}

static const stream_source_ops script_ops = {
    .name = "script",
    .wait_range = ss_wait_range,
    .read_at = ss_read_at,
    .length = ss_length,
    .wait_length = ss_wait_length,
    .notify_waiting = ss_notify,
    .media_info = NULL,
    .seek_time_anchor = ss_seek_time_anchor,
    .variant_change_pending = ss_fence_pending,
    .clear_variant_fence = ss_clear_fence,
    .last_error = ss_last_error,
    .destroy = ss_destroy,
};

static const source_read R_BYTES = {KTH_READ_BYTES, 1000, KTH_PENDING_NONE, KTH_OK};
static const source_read R_EOF = {KTH_READ_EOF, 0, KTH_PENDING_NONE, KTH_OK};
static const source_read R_NOT_READY = {KTH_READ_PENDING, 0, KTH_PENDING_NOT_READY, KTH_OK};
static const source_read R_RETRY = {KTH_READ_PENDING, 0, KTH_PENDING_RETRY, KTH_OK};
static const source_read R_FENCE = {KTH_READ_PENDING, 0, KTH_PENDING_VARIANT_CHANGE, KTH_OK};
static const source_read R_ERROR = {KTH_READ_ERROR, 0, KTH_PENDING_NONE, KTH_ERR_HTTP};

static kth_stream *script_stream(struct script_source **out_src)
{
    struct script_source *s = calloc(1, sizeof *s);
    s->base.ops = &script_ops;
    kth_stream *stream;
    kth_stream_options opts;
    kth_stream_options_init(&opts);
    opts.read_timeout_ms = 5000;
    assert_int_equal(stream_new(&s->base, &opts, "script", &stream), KTH_OK);
    *out_src = s;
    return stream;
}

static void test_try_read_bytes_advances_position(void **state)
{
    (void)state;
    struct script_source *s;
    kth_stream *st = script_stream(&s);
    s->reads[s->nreads++] = R_BYTES;
    uint8_t buf[4096], expect[1000];
    kth_read_outcome o;
    assert_int_equal(kth_stream_try_read(st, buf, sizeof buf, KTH_NO_WAIT, &o), KTH_OK);
    assert_int_equal(o.kind, KTH_READ_BYTES);
    assert_int_equal(o.n, 1000);
    assert_int_equal(o.position, 1000);
    assert_int_equal(kth_stream_position(st), 1000);
    test_pattern_fill(5, 0, expect, 1000);
    assert_memory_equal(buf, expect, 1000);
    kth_stream_close(st);
}

static void test_try_read_without_wait_reports_not_ready(void **state)
{
    (void)state;
    struct script_source *s;
    kth_stream *st = script_stream(&s);
    s->reads[s->nreads++] = R_NOT_READY;
    uint8_t buf[16];
    kth_read_outcome o;
    kth_stream_try_read(st, buf, sizeof buf, KTH_NO_WAIT, &o);
    assert_int_equal(o.kind, KTH_READ_PENDING);
    assert_int_equal(o.reason, KTH_PENDING_NOT_READY);
    assert_int_equal(o.cause, KTH_OK);
    assert_int_equal(s->wait_calls, 0);
    assert_int_equal(kth_stream_position(st), 0);
    kth_stream_close(st);
}

static void test_wait_timeout_is_not_ready_and_read_reports_timeout(void **state)
{
    (void)state;
    struct script_source *s;
    kth_stream *st = script_stream(&s);
    s->reads[s->nreads++] = R_NOT_READY;
    s->waits[s->nwaits++] = SOURCE_WAIT_TIMEOUT;
    s->reads[s->nreads++] = R_NOT_READY;
    s->waits[s->nwaits++] = SOURCE_WAIT_TIMEOUT;
    uint8_t buf[16];
    kth_read_outcome o;
    kth_stream_try_read(st, buf, sizeof buf, 10, &o);
    assert_int_equal(o.kind, KTH_READ_PENDING);
    assert_int_equal(o.reason, KTH_PENDING_NOT_READY);
    assert_int_equal(o.cause, KTH_ERR_TIMEOUT);
    assert_int_equal(kth_stream_read(st, buf, sizeof buf), KTH_ERR_TIMEOUT);
    kth_stream_close(st);
}

/* Options zeroed by the caller wait the default read timeout: before, a read_timeout_ms of 0
 * made kth_stream_read never wait. */
static void test_zeroed_options_wait_the_default_timeout(void **state)
{
    (void)state;
    struct script_source *s = calloc(1, sizeof *s);
    s->base.ops = &script_ops;
    kth_stream *st;
    kth_stream_options opts = {0};
    assert_int_equal(stream_new(&s->base, &opts, "script", &st), KTH_OK);
    s->reads[s->nreads++] = R_NOT_READY;
    s->waits[s->nwaits++] = SOURCE_WAIT_READY;
    s->reads[s->nreads++] = R_BYTES;
    int64_t before = platform_monotonic_ns();
    uint8_t buf[4096];
    assert_int_equal(kth_stream_read(st, buf, sizeof buf), 1000);
    assert_int_equal(s->wait_calls, 1);
    int64_t wanted = (int64_t)KTH_STREAM_DEFAULT_READ_TIMEOUT_MS * 1000000;
    assert_true(s->last_deadline_ns >= before + wanted);
    assert_true(s->last_deadline_ns <= platform_monotonic_ns() + wanted);
    kth_stream_close(st);
}

static void test_wait_ready_then_bytes(void **state)
{
    (void)state;
    struct script_source *s;
    kth_stream *st = script_stream(&s);
    s->reads[s->nreads++] = R_NOT_READY;
    s->waits[s->nwaits++] = SOURCE_WAIT_READY;
    s->reads[s->nreads++] = R_BYTES;
    uint8_t buf[100];
    assert_int_equal(kth_stream_read(st, buf, sizeof buf), 100);
    assert_int_equal(s->wait_calls, 1);
    kth_stream_close(st);
}

static void test_variant_fence_is_pending_until_cleared(void **state)
{
    (void)state;
    struct script_source *s;
    kth_stream *st = script_stream(&s);
    s->reads[s->nreads++] = R_FENCE;
    s->reads[s->nreads++] = R_FENCE;
    s->reads[s->nreads++] = R_BYTES;
    uint8_t buf[100];
    kth_read_outcome o;
    kth_stream_try_read(st, buf, sizeof buf, KTH_WAIT_FOREVER, &o);
    assert_int_equal(o.kind, KTH_READ_PENDING);
    assert_int_equal(o.reason, KTH_PENDING_VARIANT_CHANGE);
    assert_int_equal(kth_stream_read(st, buf, sizeof buf), KTH_ERR_VARIANT_CHANGE);
    assert_int_equal(kth_stream_clear_variant_fence(st), KTH_OK);
    assert_int_equal(kth_stream_clear_variant_fence(st), KTH_ERR_STATE);
    assert_int_equal(kth_stream_read(st, buf, sizeof buf), 100);
    kth_stream_close(st);
}

static void test_retry_is_bounded_then_reported(void **state)
{
    (void)state;
    struct script_source *s;
    kth_stream *st = script_stream(&s);
    /* One retry recovers. */
    s->reads[s->nreads++] = R_RETRY;
    s->waits[s->nwaits++] = SOURCE_WAIT_READY;
    s->reads[s->nreads++] = R_BYTES;
    uint8_t buf[10];
    assert_int_equal(kth_stream_read(st, buf, sizeof buf), 10);
    /* Bytes that keep vanishing surface as RETRY instead of looping forever. */
    for (int i = 0; i < 9; i++) {
        s->reads[s->nreads++] = R_RETRY;
        s->waits[s->nwaits++] = SOURCE_WAIT_READY;
    }
    kth_read_outcome o;
    kth_stream_try_read(st, buf, sizeof buf, 1000, &o);
    assert_int_equal(o.kind, KTH_READ_PENDING);
    assert_int_equal(o.reason, KTH_PENDING_RETRY);
    assert_int_equal(o.position, 10);
    s->reads[s->nreads++] = R_RETRY;
    s->reads[s->nreads++] = R_RETRY;
    for (int i = 0; i < 8; i++) {
        s->reads[s->nreads++] = R_RETRY;
        s->waits[s->nwaits++] = SOURCE_WAIT_READY;
    }
    s->waits[s->nwaits++] = SOURCE_WAIT_READY;
    assert_int_equal(kth_stream_read(st, buf, sizeof buf), KTH_ERR_RETRY);
    kth_stream_close(st);
}

static void test_source_error_is_reported_with_detail(void **state)
{
    (void)state;
    struct script_source *s;
    kth_stream *st = script_stream(&s);
    s->reads[s->nreads++] = R_ERROR;
    uint8_t buf[10];
    kth_read_outcome o;
    assert_int_equal(kth_stream_try_read(st, buf, sizeof buf, 0, &o), KTH_ERR_HTTP);
    assert_int_equal(o.kind, KTH_READ_ERROR);
    assert_int_equal(o.status, KTH_ERR_HTTP);
    char detail[256];
    kth_stream_last_error(st, detail, sizeof detail);
    assert_string_equal(detail, "GET http://127.0.0.1/seg3.ts: HTTP 403 at offset 4096");
    kth_stream_close(st);
}

static void test_wait_outcomes_map_to_read_outcomes(void **state)
{
    (void)state;
    struct script_source *s;
    kth_stream *st = script_stream(&s);
    uint8_t buf[10];
    kth_read_outcome o;

    s->reads[s->nreads++] = R_NOT_READY;
    s->waits[s->nwaits++] = SOURCE_WAIT_INTERRUPTED;
    kth_stream_try_read(st, buf, sizeof buf, 1000, &o);
    assert_int_equal(o.kind, KTH_READ_PENDING);
    assert_int_equal(o.reason, KTH_PENDING_SEEK);

    s->reads[s->nreads++] = R_NOT_READY;
    s->waits[s->nwaits++] = SOURCE_WAIT_ERROR;
    s->wait_status = KTH_ERR_NETWORK;
    assert_int_equal(kth_stream_read(st, buf, sizeof buf), KTH_ERR_NETWORK);

    s->reads[s->nreads++] = R_NOT_READY;
    s->waits[s->nwaits++] = SOURCE_WAIT_EOF;
    s->reads[s->nreads++] = R_EOF;
    assert_int_equal(kth_stream_read(st, buf, sizeof buf), 0);

    s->reads[s->nreads++] = R_NOT_READY;
    s->waits[s->nwaits++] = SOURCE_WAIT_CANCELLED;
    assert_int_equal(kth_stream_read(st, buf, sizeof buf), KTH_ERR_CANCELLED);

    assert_int_equal(kth_stream_try_read(st, NULL, 10, 0, &o), KTH_ERR_INVALID_ARG);
    assert_int_equal(kth_stream_read(st, buf, 0), KTH_ERR_INVALID_ARG);
    kth_stream_close(st);
}

static void test_seek_time_moves_to_the_anchor_and_bumps_the_epoch(void **state)
{
    (void)state;
    struct script_source *s;
    kth_stream *st = script_stream(&s);
    kth_seek_anchor a;
    assert_int_equal(kth_stream_seek_time(st, 9.5, &a), KTH_OK);
    assert_int_equal(a.offset, 5000);
    assert_true(a.requested > 9.49 && a.requested < 9.51);
    assert_int_equal(a.segment_index, 2);
    assert_int_equal(kth_stream_position(st), 5000);
    assert_int_equal(kth_stream_seek_epoch(st), 1);
    assert_int_equal(kth_stream_seek_time(st, 0.0 / 0.0, &a), KTH_ERR_INVALID_ARG);
    assert_int_equal(kth_stream_seek_time(st, 500, &a), KTH_ERR_TIMEOUT);
    assert_int_equal(kth_stream_position(st), 5000); /* a failed seek moves nothing */
    assert_int_equal(kth_stream_seek_epoch(st), 1);
    kth_stream_close(st);
}

/* ------------------------------------------------------------------------------------------
 * A real resource behind a wrapper that tells the test when the reader enters a wait, so a
 * second thread can act while the reader is (about to be) blocked — ordered by a condition
 * variable, not by sleeping.
 */
struct gate_source {
    stream_source base;
    stream_source *inner;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int waits_entered;
    void (*on_read)(struct gate_source *g);
    kth_stream *stream;
};

static source_wait gs_wait_range(stream_source *src, uint64_t start, uint64_t end,
                                 const stream_wait_ctx *ctx, kth_status *status)
{
    struct gate_source *g = (struct gate_source *)src;
    pthread_mutex_lock(&g->lock);
    g->waits_entered++;
    pthread_cond_broadcast(&g->cond);
    pthread_mutex_unlock(&g->lock);
    return g->inner->ops->wait_range(g->inner, start, end, ctx, status);
}

static source_wait gs_wait_length(stream_source *src, const stream_wait_ctx *ctx,
                                  kth_status *status)
{
    struct gate_source *g = (struct gate_source *)src;
    pthread_mutex_lock(&g->lock);
    g->waits_entered++;
    pthread_cond_broadcast(&g->cond);
    pthread_mutex_unlock(&g->lock);
    return g->inner->ops->wait_length(g->inner, ctx, status);
}

static source_read gs_read_at(stream_source *src, uint64_t offset, void *buf, size_t n)
{
    struct gate_source *g = (struct gate_source *)src;
    source_read r = g->inner->ops->read_at(g->inner, offset, buf, n);
    if (g->on_read)
        g->on_read(g);
    return r;
}

static bool gs_length(stream_source *src, uint64_t *length)
{
    struct gate_source *g = (struct gate_source *)src;
    return g->inner->ops->length(g->inner, length);
}

static void gs_notify(stream_source *src)
{
    struct gate_source *g = (struct gate_source *)src;
    g->inner->ops->notify_waiting(g->inner);
}

static size_t gs_last_error(stream_source *src, char *buf, size_t size)
{
    struct gate_source *g = (struct gate_source *)src;
    return g->inner->ops->last_error(g->inner, buf, size);
}

static void gs_destroy(stream_source *src)
{
    struct gate_source *g = (struct gate_source *)src;
    g->inner->ops->destroy(g->inner);
    pthread_mutex_destroy(&g->lock);
    pthread_cond_destroy(&g->cond);
    free(g);
}

static const stream_source_ops gate_ops = {
    .name = "gate",
    .wait_range = gs_wait_range,
    .read_at = gs_read_at,
    .length = gs_length,
    .wait_length = gs_wait_length,
    .notify_waiting = gs_notify,
    .last_error = gs_last_error,
    .destroy = gs_destroy,
};

static kth_stream *gated_stream(storage_resource *r, struct gate_source **out, kth_bus *bus)
{
    struct gate_source *g = calloc(1, sizeof *g);
    pthread_mutex_init(&g->lock, NULL);
    pthread_cond_init(&g->cond, NULL);
    g->base.ops = &gate_ops;
    assert_int_equal(stream_resource_source_new(r, "mem", NULL, &g->inner), KTH_OK);
    kth_stream_options opts;
    kth_stream_options_init(&opts);
    opts.read_timeout_ms = 10000; /* guards against a hang only */
    opts.bus = bus;
    kth_stream *s;
    assert_int_equal(stream_new(&g->base, &opts, "mem", &s), KTH_OK);
    g->stream = s;
    *out = g;
    return s;
}

static void wait_for_waits(struct gate_source *g, int n)
{
    pthread_mutex_lock(&g->lock);
    while (g->waits_entered < n)
        pthread_cond_wait(&g->cond, &g->lock);
    pthread_mutex_unlock(&g->lock);
}

struct reader {
    kth_stream *s;
    int64_t result;
    uint8_t buf[256];
};

static void *reader_main(void *arg)
{
    struct reader *rd = arg;
    rd->result = kth_stream_read(rd->s, rd->buf, sizeof rd->buf);
    return NULL;
}

static void test_seek_during_blocked_read_returns_seek_pending(void **state)
{
    (void)state;
    storage_resource *r;
    storage_resource_new_memory(0, &r);
    kth_bus *bus;
    kth_bus_new(&bus);
    kth_subscription *sub;
    kth_bus_subscribe(bus, 16, &sub);
    struct gate_source *g;
    kth_stream *s = gated_stream(r, &g, bus);
    uint8_t data[1000];
    test_pattern_fill(3, 0, data, sizeof data);
    storage_resource_write_at(r, 500, data + 500, 500); /* the new position's bytes are there */

    struct reader rd = {s, 0, {0}};
    pthread_t t;
    int64_t t0 = test_now_ms();
    pthread_create(&t, NULL, reader_main, &rd);
    wait_for_waits(g, 1); /* the reader is waiting for byte 0 */
    uint64_t pos;
    assert_int_equal(kth_stream_seek(s, 600, SEEK_SET, &pos), KTH_OK);
    pthread_join(t, NULL);
    assert_true(test_now_ms() - t0 < 5000); /* promptly, not at the 10 s read timeout */
    assert_int_equal(rd.result, KTH_ERR_SEEK_PENDING);
    assert_int_equal(pos, 600);
    assert_int_equal(kth_stream_position(s), 600); /* nothing consumed */
    assert_int_equal(kth_stream_seek_epoch(s), 1);
    /* The next read continues at the new position with the right bytes. */
    uint8_t buf[100];
    assert_int_equal(kth_stream_read(s, buf, sizeof buf), 100);
    assert_memory_equal(buf, data + 600, 100);

    kth_event ev;
    bool saw_seek = false;
    while (kth_events_next(sub, &ev, 0) == KTH_OK) {
        if (ev.kind == KTH_EVENT_STREAM_SEEK) {
            saw_seek = true;
            assert_int_equal(ev.payload.seek.position, 600);
            assert_int_equal(ev.payload.seek.epoch, 1);
        }
    }
    assert_true(saw_seek);
    kth_stream_close(s);
    storage_resource_unref(r);
    kth_subscription_free(sub);
    kth_bus_unref(bus);
}

static void test_cancel_during_blocked_read_returns_cancelled(void **state)
{
    (void)state;
    storage_resource *r;
    storage_resource_new_memory(0, &r);
    struct gate_source *g;
    kth_stream *s = gated_stream(r, &g, NULL);
    struct reader rd = {s, 0, {0}};
    pthread_t t;
    pthread_create(&t, NULL, reader_main, &rd);
    wait_for_waits(g, 1);
    kth_stream_cancel(s);
    pthread_join(t, NULL);
    assert_int_equal(rd.result, KTH_ERR_CANCELLED);
    uint8_t buf[4];
    assert_int_equal(kth_stream_read(s, buf, sizeof buf), KTH_ERR_CANCELLED);
    assert_int_equal(kth_stream_seek(s, 0, SEEK_SET, NULL), KTH_ERR_CANCELLED);
    kth_stream_close(s);
    storage_resource_unref(r);
}

/* A seek landing between the source's copy and the position update: the copied bytes belong
 * to the old position and must not be reported as read. */
static void seek_inside_read(struct gate_source *g)
{
    g->on_read = NULL;
    assert_int_equal(kth_stream_seek(g->stream, 900, SEEK_SET, NULL), KTH_OK);
}

static void test_bytes_read_across_a_seek_are_never_reported(void **state)
{
    (void)state;
    storage_resource *r;
    storage_resource_new_memory(0, &r);
    uint8_t data[1000];
    test_pattern_fill(4, 0, data, sizeof data);
    storage_resource_write_at(r, 0, data, sizeof data);
    struct gate_source *g;
    kth_stream *s = gated_stream(r, &g, NULL);
    g->on_read = seek_inside_read;
    uint8_t buf[50];
    kth_read_outcome o;
    kth_stream_try_read(s, buf, sizeof buf, KTH_WAIT_FOREVER, &o);
    assert_int_equal(o.kind, KTH_READ_PENDING);
    assert_int_equal(o.reason, KTH_PENDING_SEEK);
    assert_int_equal(kth_stream_position(s), 900);
    assert_int_equal(kth_stream_read(s, buf, sizeof buf), 50);
    assert_memory_equal(buf, data + 900, 50);
    kth_stream_close(s);
    storage_resource_unref(r);
}

static void test_eof_only_when_proven(void **state)
{
    (void)state;
    storage_resource *r;
    storage_resource_new_memory(0, &r);
    struct gate_source *g;
    kth_stream *s = gated_stream(r, &g, NULL);
    uint8_t data[100];
    test_pattern_fill(8, 0, data, sizeof data);
    storage_resource_set_length(r, 100);
    storage_resource_write_at(r, 0, data, 100);
    uint8_t buf[200];
    assert_int_equal(kth_stream_read(s, buf, sizeof buf), 100);
    /* Length known, every byte there, but not committed: not EOF. */
    kth_read_outcome o;
    kth_stream_try_read(s, buf, sizeof buf, 30, &o);
    assert_int_equal(o.kind, KTH_READ_PENDING);
    assert_int_equal(o.reason, KTH_PENDING_NOT_READY);
    assert_int_equal(o.cause, KTH_ERR_TIMEOUT);
    storage_resource_commit(r, 100);
    kth_stream_try_read(s, buf, sizeof buf, 0, &o);
    assert_int_equal(o.kind, KTH_READ_EOF);
    assert_int_equal(o.position, 100);
    assert_int_equal(kth_stream_read(s, buf, sizeof buf), 0);
    kth_stream_close(s);
    storage_resource_unref(r);
}

static void test_failed_source_reports_error_not_eof(void **state)
{
    (void)state;
    storage_resource *r;
    storage_resource_new_memory(0, &r);
    struct gate_source *g;
    kth_stream *s = gated_stream(r, &g, NULL);
    uint8_t data[10] = {0};
    storage_resource_write_at(r, 0, data, 10);
    storage_resource_fail(r, KTH_ERR_NETWORK, "connection reset after 10 bytes");
    uint8_t buf[100];
    assert_int_equal(kth_stream_read(s, buf, sizeof buf), 10);
    assert_int_equal(kth_stream_read(s, buf, sizeof buf), KTH_ERR_NETWORK);
    char detail[256];
    kth_stream_last_error(s, detail, sizeof detail);
    assert_non_null(strstr(detail, "connection reset after 10 bytes"));
    kth_stream_close(s);
    storage_resource_unref(r);
}

struct seeker {
    kth_stream *s;
    kth_status status;
    uint64_t pos;
};

static void *seek_end_main(void *arg)
{
    struct seeker *sk = arg;
    sk->status = kth_stream_seek(sk->s, -10, SEEK_END, &sk->pos);
    return NULL;
}

static void test_seek_end_waits_for_the_length(void **state)
{
    (void)state;
    storage_resource *r;
    storage_resource_new_memory(0, &r);
    struct gate_source *g;
    kth_stream *s = gated_stream(r, &g, NULL);
    struct seeker sk = {s, KTH_ERR_INTERNAL, 0};
    pthread_t t;
    pthread_create(&t, NULL, seek_end_main, &sk);
    wait_for_waits(g, 1);
    storage_resource_set_length(r, 5000);
    pthread_join(t, NULL);
    assert_int_equal(sk.status, KTH_OK);
    assert_int_equal(sk.pos, 4990);
    kth_stream_close(s);
    storage_resource_unref(r);
}

static void test_seek_bounds_and_whence(void **state)
{
    (void)state;
    storage_resource *r;
    storage_resource_new_memory(0, &r);
    struct gate_source *g;
    kth_stream *s = gated_stream(r, &g, NULL);
    uint64_t pos = 0;
    /* Length unknown: any forward target is accepted. */
    assert_int_equal(kth_stream_seek(s, 1 << 20, SEEK_SET, &pos), KTH_OK);
    storage_resource_set_length(r, 1000);
    assert_int_equal(kth_stream_seek(s, 1001, SEEK_SET, NULL), KTH_ERR_OUT_OF_RANGE);
    assert_int_equal(kth_stream_seek(s, 1000, SEEK_SET, &pos), KTH_OK); /* exactly the end */
    assert_int_equal(kth_stream_seek(s, -1, SEEK_SET, NULL), KTH_ERR_OUT_OF_RANGE);
    assert_int_equal(kth_stream_seek(s, -300, SEEK_CUR, &pos), KTH_OK);
    assert_int_equal(pos, 700);
    assert_int_equal(kth_stream_seek(s, -701, SEEK_CUR, NULL), KTH_ERR_OUT_OF_RANGE);
    assert_int_equal(kth_stream_seek(s, INT64_MIN, SEEK_CUR, NULL), KTH_ERR_OUT_OF_RANGE);
    assert_int_equal(kth_stream_seek(s, 0, SEEK_END, &pos), KTH_OK);
    assert_int_equal(pos, 1000);
    assert_int_equal(kth_stream_seek(s, 1, SEEK_END, NULL), KTH_ERR_OUT_OF_RANGE);
    assert_int_equal(kth_stream_seek(s, 0, 42, NULL), KTH_ERR_INVALID_ARG);
    /* Bytes that are no media file give no way to place a time. */
    uint8_t text[1000];
    memset(text, 'x', sizeof text);
    storage_resource_write_at(r, 0, text, sizeof text);
    assert_int_equal(kth_stream_seek_time(s, 3.0, NULL), KTH_ERR_UNSUPPORTED);
    assert_int_equal(kth_stream_position(s), 1000);
    kth_stream_close(s);
    storage_resource_unref(r);
}

/* ------------------------------------------------------------------------------------------
 * kth_stream_open on local files.
 */
static void test_local_file_random_seeks_are_byte_exact(void **state)
{
    (void)state;
    char *dir = test_make_dir();
    enum { SIZE = 1 << 20 };
    char *path = test_write_pattern_file(dir, "song.mp3", 21, SIZE);
    char url[4200];
    snprintf(url, sizeof url, "file://%s", path);
    for (int variant = 0; variant < 2; variant++) {
        kth_stream *s;
        char err[256];
        assert_int_equal(kth_stream_open(variant ? url : path, NULL, &s, err, sizeof err), KTH_OK);
        uint64_t len;
        assert_true(kth_stream_length(s, &len));
        assert_int_equal(len, SIZE);
        kth_media_info mi;
        kth_stream_media_info(s, &mi);
        assert_int_equal(mi.container, KTH_CONTAINER_MPEG_AUDIO); /* from the extension */
        unsigned seed = 77;
        uint8_t buf[70000], expect[70000];
        for (int i = 0; i < 300; i++) {
            seed = seed * 1103515245u + 12345u;
            uint64_t target = (seed >> 4) % (SIZE + 1);
            seed = seed * 1103515245u + 12345u;
            size_t want = 1 + (seed >> 4) % sizeof buf;
            assert_int_equal(kth_stream_seek(s, (int64_t)target, SEEK_SET, NULL), KTH_OK);
            int64_t n = kth_stream_read(s, buf, want);
            if (target == SIZE) {
                assert_int_equal(n, 0);
                continue;
            }
            assert_true(n > 0);
            test_pattern_fill(21, target, expect, (size_t)n);
            assert_memory_equal(buf, expect, (size_t)n);
            assert_int_equal(kth_stream_position(s), target + (uint64_t)n);
        }
        kth_stream_close(s);
    }
    free(path);
    test_remove_dir(dir);
}

static void test_open_reports_clear_errors(void **state)
{
    (void)state;
    kth_stream *s = NULL;
    char err[256];
    assert_int_equal(kth_stream_open("/no/such/dir/track.flac", NULL, &s, err, sizeof err),
                     KTH_ERR_NOT_FOUND);
    assert_non_null(strstr(err, "/no/such/dir/track.flac"));
    assert_int_equal(kth_stream_open("", NULL, &s, err, sizeof err), KTH_ERR_INVALID_ARG);
    assert_int_equal(kth_stream_open("gopher://127.0.0.1/x", NULL, &s, err, sizeof err),
                     KTH_ERR_UNSUPPORTED);
    assert_non_null(strstr(err, "gopher"));
    assert_int_equal(kth_stream_open("file://otherhost/x.mp3", NULL, &s, err, sizeof err),
                     KTH_ERR_INVALID_ARG);
    assert_null(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_try_read_bytes_advances_position),
        cmocka_unit_test(test_try_read_without_wait_reports_not_ready),
        cmocka_unit_test(test_wait_timeout_is_not_ready_and_read_reports_timeout),
        cmocka_unit_test(test_zeroed_options_wait_the_default_timeout),
        cmocka_unit_test(test_wait_ready_then_bytes),
        cmocka_unit_test(test_variant_fence_is_pending_until_cleared),
        cmocka_unit_test(test_retry_is_bounded_then_reported),
        cmocka_unit_test(test_source_error_is_reported_with_detail),
        cmocka_unit_test(test_wait_outcomes_map_to_read_outcomes),
        cmocka_unit_test(test_seek_time_moves_to_the_anchor_and_bumps_the_epoch),
        cmocka_unit_test(test_seek_during_blocked_read_returns_seek_pending),
        cmocka_unit_test(test_cancel_during_blocked_read_returns_cancelled),
        cmocka_unit_test(test_bytes_read_across_a_seek_are_never_reported),
        cmocka_unit_test(test_eof_only_when_proven),
        cmocka_unit_test(test_failed_source_reports_error_not_eof),
        cmocka_unit_test(test_seek_end_waits_for_the_length),
        cmocka_unit_test(test_seek_bounds_and_whence),
        cmocka_unit_test(test_local_file_random_seeks_are_byte_exact),
        cmocka_unit_test(test_open_reports_clear_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
