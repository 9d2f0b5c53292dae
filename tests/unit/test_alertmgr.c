/* Unit tests for daemon/alertmgr: the exact Alertmanager payload of a firing, a resolved and a
 * final alert built from the rules.md alert records, JSON escaping of arbitrary UTF-8 ids (and
 * of invalid bytes), RFC 3339 times, URL redaction, record errors; then the delivery thread
 * against a closed port: held, failed and counted, never blocking the caller. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/buf.h"
#include "common/utf8.h"
#include "common/clock.h"
#include "config/config.h"
#include "daemon/alertmgr.h"

/* 2026-08-20T10:00:00+08:00 */
#define T0 INT64_C(1787191200000)

static const char live_firing[] =
    "{\"rule\":\"live\",\"alert\":\"Unanswered\",\"severity\":\"warning\",\"shop_id\":\"demo\","
    "\"agent_id\":\"x2\",\"period\":\"2026-08\",\"value\":1,\"summary\":\"x2 leaves 1 customers "
    "waiting\",\"state\":\"firing\",\"starts_at\":\"2026-08-20T10:00:00+08:00\"}";

static const char live_resolved[] =
    "{\"rule\":\"live\",\"alert\":\"Unanswered\",\"severity\":\"warning\",\"shop_id\":\"demo\","
    "\"agent_id\":\"x2\",\"period\":\"2026-08\",\"value\":0,\"summary\":\"x2 leaves 0 customers "
    "waiting\",\"state\":\"resolved\",\"starts_at\":\"2026-08-20T10:00:00+08:00\"}";

static const char final_rec[] =
    "{\"rule\":\"plan2\",\"alert\":\"ScoreBelow70\",\"severity\":\"critical\",\"shop_id\":\"s1\","
    "\"agent_id\":\"a1\",\"period\":\"2026-08\",\"value\":64.5,\"summary\":\"a1 scored 64.5 in "
    "2026-08\",\"state\":\"firing\",\"starts_at\":\"2026-09-01T00:00:00+08:00\"}";

static char *payload_of(struct alertmgr_alert *a)
{
    struct buf b;
    buf_init(&b);
    const struct alertmgr_alert *list[] = {a};
    alertmgr_payload(&b, list, 1);
    return b.data;
}

static void test_firing(void **state)
{
    (void)state;
    struct alertmgr_alert a;
    char err[256] = "";
    assert_int_equal(alertmgr_alert_parse(live_firing, false, &a, err, sizeof(err)), 0);
    assert_false(a.resolved);
    assert_int_equal(a.starts_ms, T0);
    a.ends_ms = T0 + 4 * 60000;
    char *p = payload_of(&a);
    assert_string_equal(
        p, "[{\"labels\":{\"alertname\":\"Unanswered\",\"rule\":\"live\",\"shop\":\"demo\","
           "\"agent\":\"x2\",\"severity\":\"warning\",\"kind\":\"live\"},"
           "\"annotations\":{\"summary\":\"x2 leaves 1 customers waiting\",\"description\":\"Rule "
           "live alert Unanswered holds for agent x2 in shop demo during period 2026-08 (live): "
           "value 1.\",\"value\":\"1\",\"period\":\"2026-08\"},"
           "\"startsAt\":\"2026-08-20T02:00:00.000Z\",\"endsAt\":\"2026-08-20T02:04:00.000Z\"}]");
    free(p);
    alertmgr_alert_release(&a);
    alertmgr_alert_release(&a); /* released twice is fine */
    alertmgr_alert_release(NULL);
}

static void test_resolved(void **state)
{
    (void)state;
    struct alertmgr_alert a, f;
    char err[256] = "";
    assert_int_equal(alertmgr_alert_parse(live_resolved, false, &a, err, sizeof(err)), 0);
    assert_int_equal(alertmgr_alert_parse(live_firing, false, &f, err, sizeof(err)), 0);
    assert_true(a.resolved);
    /* the same alert as the firing one: the labels are the key */
    assert_string_equal(a.labels, f.labels);
    a.ends_ms = T0 + 90 * 1000 + 7;
    char *p = payload_of(&a);
    assert_non_null(strstr(p, "\"value\":\"0\""));
    assert_non_null(strstr(p, "\"startsAt\":\"2026-08-20T02:00:00.000Z\","
                              "\"endsAt\":\"2026-08-20T02:01:30.007Z\"}]"));
    free(p);
    /* endsAt never before startsAt (Alertmanager rejects the whole post) */
    a.ends_ms = T0 - 5000;
    p = payload_of(&a);
    assert_non_null(strstr(p, "\"startsAt\":\"2026-08-20T02:00:00.000Z\","
                              "\"endsAt\":\"2026-08-20T02:00:00.000Z\"}]"));
    free(p);
    alertmgr_alert_release(&a);
    alertmgr_alert_release(&f);
}

static void test_final(void **state)
{
    (void)state;
    struct alertmgr_alert a, l;
    char err[256] = "";
    assert_int_equal(alertmgr_alert_parse(final_rec, true, &a, err, sizeof(err)), 0);
    a.ends_ms = INT64_C(1788192000000) + 600000 + 86400000; /* end + lateness + 24h */
    char *p = payload_of(&a);
    assert_string_equal(
        p, "[{\"labels\":{\"alertname\":\"ScoreBelow70\",\"rule\":\"plan2\",\"shop\":\"s1\","
           "\"agent\":\"a1\",\"period\":\"2026-08\",\"severity\":\"critical\",\"kind\":\"final\"},"
           "\"annotations\":{\"summary\":\"a1 scored 64.5 in 2026-08\",\"description\":\"Rule "
           "plan2 alert ScoreBelow70 held for agent a1 in shop s1 at the close of period "
           "2026-08: value 64.5.\",\"value\":\"64.5\",\"period\":\"2026-08\"},"
           "\"startsAt\":\"2026-08-31T16:00:00.000Z\",\"endsAt\":\"2026-09-01T16:10:00.000Z\"}]");
    free(p);
    /* the same record as a live alert is another alert */
    assert_int_equal(alertmgr_alert_parse(final_rec, false, &l, err, sizeof(err)), 0);
    assert_string_not_equal(a.labels, l.labels);
    /* several alerts in one post */
    struct buf b;
    buf_init(&b);
    const struct alertmgr_alert *two[] = {&a, &l};
    alertmgr_payload(&b, two, 2);
    assert_true(b.data[0] == '[' && b.data[b.len - 1] == ']');
    assert_non_null(strstr(b.data, "Z\"},{\"labels\":{\"alertname\":\"ScoreBelow70\""));
    buf_release(&b);
    buf_reset(&b);
    alertmgr_payload(&b, NULL, 0);
    assert_string_equal(b.data, "[]");
    buf_release(&b);
    alertmgr_alert_release(&a);
    alertmgr_alert_release(&l);
}

static void test_undefined_value(void **state)
{
    (void)state;
    const char rec[] =
        "{\"rule\":\"r\",\"alert\":\"A\",\"severity\":\"info\",\"shop_id\":\"s\",\"agent_id\":"
        "\"g\","
        "\"period\":\"2026-08-20\",\"value\":null,\"summary\":\"x\",\"state\":\"firing\","
        "\"starts_at\":\"2026-08-20T02:00:00Z\"}";
    struct alertmgr_alert a;
    char err[256] = "";
    assert_int_equal(alertmgr_alert_parse(rec, false, &a, err, sizeof(err)), 0);
    assert_non_null(strstr(a.annotations, "\"value\":\"undefined\""));
    assert_non_null(strstr(a.annotations, "value undefined.\""));
    alertmgr_alert_release(&a);
}

/* Ids are arbitrary UTF-8: every character survives, JSON's own are escaped. */
static void test_escaping(void **state)
{
    (void)state;
    const char rec[] =
        "{\"rule\":\"r\",\"alert\":\"A\",\"severity\":\"warning\","
        "\"shop_id\":\"\\u5e97:{1} \\\"q\\\"\",\"agent_id\":\"a\\\\b\\n\\t\\u0001\\ud83d\\ude00\","
        "\"period\":\"2026-08\",\"value\":1,\"summary\":\"s\",\"state\":\"firing\","
        "\"starts_at\":\"2026-08-20T02:00:00Z\"}";
    struct alertmgr_alert a;
    char err[256] = "";
    assert_int_equal(alertmgr_alert_parse(rec, false, &a, err, sizeof(err)), 0);
    assert_string_equal(a.labels, "{\"alertname\":\"A\",\"rule\":\"r\","
                                  "\"shop\":\"\xe5\xba\x97:{1} \\\"q\\\"\","
                                  "\"agent\":\"a\\\\b\\n\\t\\u0001\xf0\x9f\x98\x80\","
                                  "\"severity\":\"warning\",\"kind\":\"live\"}");
    alertmgr_alert_release(&a);

    static const struct {
        const char *in, *out;
    } cases[] = {
        {.in = "", .out = "\"\""},
        {.in = "plain", .out = "\"plain\""},
        {.in = "\"\\/", .out = "\"\\\"\\\\/\""},
        {.in = "\r\x1f\x7f", .out = "\"\\r\\u001f\x7f\""},
        {.in = "\xc3\xa9t\xc3\xa9", .out = "\"\xc3\xa9t\xc3\xa9\""},
        /* invalid: a lone continuation byte, a truncated sequence, an overlong '/', 0xff */
        {.in = "a\x80z", .out = "\"a\xef\xbf\xbdz\""},
        {.in = "\xe5\xba", .out = "\"\xef\xbf\xbd\xef\xbf\xbd\""},
        {.in = "\xc0\xaf", .out = "\"\xef\xbf\xbd\xef\xbf\xbd\""},
        {.in = "\xff", .out = "\"\xef\xbf\xbd\""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct buf b;
        buf_init(&b);
        utf8_json_string(&b, cases[i].in);
        assert_string_equal(b.data, cases[i].out);
        buf_release(&b);
    }
}

static void test_times(void **state)
{
    (void)state;
    static const struct {
        int64_t ms;
        const char *out;
    } cases[] = {
        {.ms = 0, .out = "1970-01-01T00:00:00.000Z"},
        {.ms = -1, .out = "1969-12-31T23:59:59.999Z"},
        {.ms = T0 + 123, .out = "2026-08-20T02:00:00.123Z"},
        {.ms = INT64_C(1835481599000), .out = "2028-02-29T23:59:59.000Z"},
        {.ms = INT64_C(1835481599000) + 1000, .out = "2028-03-01T00:00:00.000Z"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[40];
        alertmgr_format_time(cases[i].ms, out, sizeof(out));
        assert_string_equal(out, cases[i].out);
    }
}

static void test_redact(void **state)
{
    (void)state;
    static const struct {
        const char *in, *out;
    } cases[] = {
        {.in = "http://am:9093", .out = "http://am:9093"},
        {.in = "https://user:s3cret@am.example:9093/prefix",
         .out = "https://user:<redacted>@am.example:9093/prefix"},
        {.in = "http://user:p@ss@am:9093", .out = "http://user:<redacted>@am:9093"},
        {.in = "http://user@am:9093", .out = "http://user@am:9093"},
        {.in = "http://am:9093/a:b@c", .out = "http://am:9093/a:b@c"},
        {.in = "http://:only@am", .out = "http://:<redacted>@am"},
    };
    struct buf b;
    buf_init(&b);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        alertmgr_redact_url(cases[i].in, &b);
        assert_string_equal(b.data, cases[i].out);
    }
    buf_release(&b);
}

static void test_bad_records(void **state)
{
    (void)state;
    static const struct {
        const char *rec, *err;
    } cases[] = {
        {.rec = "[1]", .err = "alert record is not a JSON object: "},
        {.rec = "{\"rule\":\"r\"}", .err = "alert record lacks the string 'alert'"},
        {.rec = "{\"rule\":\"r\",\"alert\":\"A\",\"severity\":\"w\",\"shop_id\":\"s\",\"agent_id\":"
                "\"g\",\"period\":\"p\",\"summary\":\"x\",\"state\":\"firing\",\"starts_at\":1}",
         .err = "alert record lacks the string 'starts_at'"},
        {.rec = "{\"rule\":\"r\",\"alert\":\"A\",\"severity\":\"w\",\"shop_id\":\"s\",\"agent_id\":"
                "\"g\",\"period\":\"p\",\"summary\":\"x\",\"state\":\"firing\",\"starts_at\":"
                "\"yesterday\"}",
         .err = "alert record has a bad starts_at"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct alertmgr_alert a;
        char err[256] = "";
        assert_int_equal(alertmgr_alert_parse(cases[i].rec, false, &a, err, sizeof(err)), -1);
        assert_string_equal(err, cases[i].err);
        assert_null(a.labels);
    }
    struct alertmgr_alert a;
    char err[256] = "";
    assert_int_equal(alertmgr_alert_parse("{not json", false, &a, err, sizeof(err)), -1);
    assert_true(strncmp(err, "alert record is not a JSON object: ", 35) == 0);
}

/* ---- the handle and its thread ---- */

static void wait_stats(struct alertmgr *am, struct alertmgr_stats *st, uint64_t failed)
{
    for (int i = 0; i < 300; i++) {
        alertmgr_stats(am, st);
        if (st->failed >= failed)
            return;
        struct timespec ts = {.tv_sec = 0, .tv_nsec = 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

static void test_handle(void **state)
{
    (void)state;
    struct csm_config cfg;
    char err[256] = "";
    struct alertmgr_stats st;
    config_init(&cfg);
    alertmgr_stats(NULL, &st);
    assert_int_equal(st.sent + st.failed + st.queued, 0);
    assert_false(alertmgr_enabled(NULL));
    alertmgr_live(NULL, live_firing, 1000, T0);
    alertmgr_destroy(NULL);

    /* no URL: everything is a no-op */
    struct alertmgr *am = alertmgr_new(&cfg, err, sizeof(err));
    assert_non_null(am);
    assert_false(alertmgr_enabled(am));
    alertmgr_live(am, live_firing, 1000, clock_wall_ms());
    alertmgr_stats(am, &st);
    assert_int_equal(st.queued, 0);

    /* a closed port: the alert is held and the posts fail, counted */
    cfg.alertmanager_url = strdup("http://user:pw@127.0.0.1:1/");
    alertmgr_configure(am, &cfg);
    assert_true(alertmgr_enabled(am));
    int64_t now = clock_wall_ms();
    alertmgr_live(am, live_firing, 1000, now);
    alertmgr_live(am, live_firing, 1000, now); /* a refresh: still one alert */
    alertmgr_stats(am, &st);
    assert_int_equal(st.queued, 1);
    assert_int_equal(st.firing, 1);
    wait_stats(am, &st, 1);
    assert_true(st.failed >= 1);
    assert_true(st.posts >= 1);
    assert_int_equal(st.sent, 0);
    assert_int_equal(st.queued, 1);

    /* resolved: the same alert, no longer firing */
    alertmgr_live(am, live_resolved, 1000, now + 1000);
    alertmgr_stats(am, &st);
    assert_int_equal(st.queued, 1);
    assert_int_equal(st.firing, 0);

    /* a final alert whose hold is over is not sent; a bad record is dropped */
    alertmgr_final(am, final_rec, INT64_C(1788192000000));
    alertmgr_live(am, "{}", 1000, now);
    alertmgr_live(am, NULL, 1000, now);
    alertmgr_stats(am, &st);
    assert_int_equal(st.expired, 1);
    assert_int_equal(st.dropped, 2);
    assert_int_equal(st.queued, 1);
    /* a final alert still within its hold is held */
    alertmgr_final(am, final_rec, now);
    alertmgr_stats(am, &st);
    assert_int_equal(st.queued, 2);

    /* the URL removed: everything held is dropped */
    free(cfg.alertmanager_url);
    cfg.alertmanager_url = NULL;
    alertmgr_configure(am, &cfg);
    alertmgr_stats(am, &st);
    assert_int_equal(st.queued, 0);
    assert_false(alertmgr_enabled(am));

    /* the set is bounded */
    cfg.alertmanager_url = strdup("http://127.0.0.1:1");
    alertmgr_configure(am, &cfg);
    struct buf rec;
    buf_init(&rec);
    for (int i = 0; i < ALERTMGR_MAX_ALERTS + 5; i++) {
        buf_reset(&rec);
        buf_printf(&rec,
                   "{\"rule\":\"r\",\"alert\":\"A\",\"severity\":\"w\",\"shop_id\":\"s\","
                   "\"agent_id\":\"g%d\",\"period\":\"p\",\"summary\":\"x\",\"state\":\"firing\","
                   "\"starts_at\":\"2026-08-20T02:00:00Z\",\"value\":1}",
                   i);
        alertmgr_final(am, rec.data, now);
    }
    buf_release(&rec);
    alertmgr_stats(am, &st);
    assert_int_equal(st.queued, ALERTMGR_MAX_ALERTS);
    assert_int_equal(st.dropped, 2 + 5);

    /* stopping does not wait for the closed port beyond the grace */
    int64_t t = clock_mono_ms();
    alertmgr_destroy(am);
    assert_true(clock_mono_ms() - t < 5000);
    config_release(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_firing),   cmocka_unit_test(test_resolved),
        cmocka_unit_test(test_final),    cmocka_unit_test(test_undefined_value),
        cmocka_unit_test(test_escaping), cmocka_unit_test(test_times),
        cmocka_unit_test(test_redact),   cmocka_unit_test(test_bad_records),
        cmocka_unit_test(test_handle),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
