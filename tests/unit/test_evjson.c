/* test_evjson — the events `csmetrics review`/`target` build (cli/evjson.c): exact JSON
 * text, JSON-number and ITEM=SCORE parsing, and that the check refuses what the daemon's
 * decoder dead-letters with the decoder's own detail. Unit binaries link libcsm.a only,
 * so the CLI file is compiled in here. */
#include "cli/evjson.c"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const struct decode_opts now_2026 = {
    .now_ms = 1795000000000LL, /* 2026-11-18T08:26:40Z */
    .max_future_ms = 24LL * 3600 * 1000,
};

static void test_is_number(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        bool ok;
    } cases[] = {
        {"0", true},      {"5", true},    {"4.5", true},  {"-1", true},    {"1e2", true},
        {"1E+2", true},   {"0.25", true}, {"100", true},  {"", false},     {"-", false},
        {"01", false},    {".5", false},  {"5.", false},  {"1e", false},   {"abc", false},
        {"+1", false},    {"1 ", false},  {"NaN", false}, {"0x10", false}, {"1,5", false},
        {"4.5.1", false},
    };
    for (size_t i = 0; i < N(cases); i++)
        if (evjson_is_number(cases[i].s) != cases[i].ok)
            fail_msg("evjson_is_number(\"%s\") != %d", cases[i].s, cases[i].ok);
}

static void test_split_item(void **state)
{
    (void)state;
    char item[16], err[128];
    const char *score;
    assert_int_equal(
        evjson_split_item("follow_up=90", item, sizeof(item), &score, err, sizeof(err)), 0);
    assert_string_equal(item, "follow_up");
    assert_string_equal(score, "90");
    /* the last '=' splits: an item name may hold one */
    assert_int_equal(evjson_split_item("a=b=4.5", item, sizeof(item), &score, err, sizeof(err)), 0);
    assert_string_equal(item, "a=b");
    assert_string_equal(score, "4.5");
    static const char *const bad[] = {"follow_up", "=90", "follow_up=", ""};
    for (size_t i = 0; i < N(bad); i++) {
        if (evjson_split_item(bad[i], item, sizeof(item), &score, err, sizeof(err)) == 0)
            fail_msg("'%s' accepted", bad[i]);
        char want[128];
        snprintf(want, sizeof(want), "--item wants ITEM=SCORE (e.g. follow_up=90), not '%s'",
                 bad[i]);
        assert_string_equal(err, want);
    }
    assert_int_equal(
        evjson_split_item("a_very_long_item_name=1", item, sizeof(item), &score, err, sizeof(err)),
        -1);
    assert_string_equal(err, "--item 'a_very_long_item_name=1': item name longer than 15 bytes");
}

static void test_review_json(void **state)
{
    (void)state;
    struct buf b;
    char err[256];
    buf_init(&b);
    struct evjson_common c = {.event_id = "e1",
                              .ts = "2026-08-20T09:00:00+08:00",
                              .shop_id = "demo",
                              .agent_id = "x1",
                              .period = "2026-08"};
    assert_int_equal(
        evjson_review(&b, &c, "execution", "8", "10", "manager", "s1", err, sizeof(err)), 0);
    assert_string_equal(
        b.data,
        "{\"event_id\": \"e1\", \"type\": \"review\", \"ts\": \"2026-08-20T09:00:00+08:00\", "
        "\"shop_id\": \"demo\", \"agent_id\": \"x1\", \"period\": \"2026-08\", \"item\": "
        "\"execution\", \"score\": 8, \"max\": 10, \"role\": \"manager\", \"reviewer\": "
        "\"s1\"}");
    /* it decodes to what was asked */
    struct event ev;
    assert_int_equal(evjson_check(b.data, b.len, EV_REVIEW, &now_2026, &ev, err, sizeof(err)), 0);
    assert_string_equal(ev.item, "execution");
    assert_true(ev.score == 8 && ev.max == 10 && ev.role == ROLE_MANAGER);
    assert_string_equal(ev.shop_id, "demo");
    assert_string_equal(ev.period.label, "2026-08");
    event_release(&ev);

    /* no shop, no max, epoch ms, ids that need escaping */
    buf_reset(&b);
    c = (struct evjson_common){
        .event_id = "e\"2", .ts = "1786000000000", .agent_id = "a:{b} \\ c\t", .period = "2026-Q3"};
    assert_int_equal(
        evjson_review(&b, &c, "self_total", "4.5", NULL, "self", "a", err, sizeof(err)), 0);
    assert_string_equal(b.data,
                        "{\"event_id\": \"e\\\"2\", \"type\": \"review\", \"ts\": 1786000000000, "
                        "\"agent_id\": \"a:{b} \\\\ c\\t\", \"period\": \"2026-Q3\", \"item\": "
                        "\"self_total\", \"score\": 4.5, \"role\": \"self\", \"reviewer\": \"a\"}");
    assert_int_equal(evjson_check(b.data, b.len, EV_REVIEW, &now_2026, &ev, err, sizeof(err)), 0);
    assert_string_equal(ev.agent_id, "a:{b} \\ c\t");
    assert_true(ev.max == 100 && ev.score == 4.5);
    event_release(&ev);

    /* not numbers: refused before the decoder would call it invalid JSON */
    buf_reset(&b);
    assert_int_equal(evjson_review(&b, &c, "x", "abc", NULL, "self", "a", err, sizeof(err)), -1);
    assert_string_equal(err, "score 'abc' of item 'x' is not a number");
    assert_int_equal(evjson_review(&b, &c, "x", "1", "ten", "self", "a", err, sizeof(err)), -1);
    assert_string_equal(err, "max 'ten' is not a number");
    assert_int_equal(b.len, 0);
    buf_release(&b);
}

static void test_target_json(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b);
    struct evjson_common c = {.event_id = "t1",
                              .ts = "2026-08-01T09:00:00+08:00",
                              .shop_id = "demo",
                              .agent_id = "x1",
                              .period = "2026-08"};
    evjson_target(&b, &c, "1000");
    assert_string_equal(b.data, "{\"event_id\": \"t1\", \"type\": \"target\", \"ts\": "
                                "\"2026-08-01T09:00:00+08:00\", \"shop_id\": \"demo\", "
                                "\"agent_id\": \"x1\", \"period\": \"2026-08\", \"amount\": "
                                "\"1000\"}");
    struct event ev;
    char err[256];
    assert_int_equal(evjson_check(b.data, b.len, EV_TARGET, &now_2026, &ev, err, sizeof(err)), 0);
    assert_int_equal(ev.amount_cents, 100000);
    event_release(&ev);
    buf_release(&b);
}

/* Each refusal carries the decoder's detail and reason. */
static void test_check_refuses(void **state)
{
    (void)state;
    static const struct {
        enum event_type want;
        const char *json, *err;
    } cases[] = {
        {EV_REVIEW,
         "{\"event_id\": \"e\", \"type\": \"review\", \"ts\": 1786000000000, \"agent_id\": \"x\", "
         "\"period\": \"2026-08\", \"item\": \"i\", \"score\": 11, \"max\": 10, \"role\": "
         "\"self\", \"reviewer\": \"x\"}",
         "field 'score': outside 0..max (csmetricsd would dead-letter it as bad_value)"},
        {EV_REVIEW,
         "{\"event_id\": \"e\", \"type\": \"review\", \"ts\": 1786000000000, \"agent_id\": \"x\", "
         "\"period\": \"2026-08\", \"item\": \"i\", \"score\": 1, \"role\": \"boss\", "
         "\"reviewer\": \"x\"}",
         "field 'role': expected \"self\", \"manager\" or \"indirect_manager\" (csmetricsd would "
         "dead-letter it as bad_value)"},
        {EV_REVIEW,
         "{\"event_id\": \"e\", \"type\": \"review\", \"ts\": 1786000000000, \"agent_id\": \"x\", "
         "\"period\": \"2026-13\", \"item\": \"i\", \"score\": 1, \"role\": \"self\", "
         "\"reviewer\": \"x\"}",
         "field 'period': invalid period label (csmetricsd would dead-letter it as bad_value)"},
        {EV_TARGET,
         "{\"event_id\": \"e\", \"type\": \"target\", \"ts\": 1786000000000, \"agent_id\": \"x\", "
         "\"period\": \"2026-08\", \"amount\": \"12.345\"}",
         "field 'amount': more than two decimals (csmetricsd would dead-letter it as bad_amount)"},
        {EV_TARGET,
         "{\"event_id\": \"\", \"type\": \"target\", \"ts\": 1786000000000, \"agent_id\": \"x\", "
         "\"period\": \"2026-08\", \"amount\": \"1\"}",
         "field 'event_id': empty (csmetricsd would dead-letter it as bad_value)"},
        {EV_TARGET,
         "{\"event_id\": \"e\", \"type\": \"target\", \"ts\": \"2030-01-01T00:00:00Z\", "
         "\"agent_id\": \"x\", \"period\": \"2026-08\", \"amount\": \"1\"}",
         /* 2030-01-01Z - 2026-11-18T08:26:40Z */
         "field 'ts': 98456000 s ahead of the wall clock, max_future is 86400 s (csmetricsd "
         "would dead-letter it as future_ts)"},
        {EV_TARGET, "{\"event_id\": \"e\", \"type\": \"target\"",
         NULL /* invalid JSON: the yajl text is the decoder's business */},
        {EV_TARGET,
         "{\"event_id\": \"e\", \"type\": \"message\", \"ts\": 1786000000000, \"agent_id\": "
         "\"x\"}",
         "field 'type': unknown type 'message' for topic reviews (csmetricsd would dead-letter "
         "it as unknown_type)"},
        {EV_TARGET,
         "{\"event_id\": \"e\", \"type\": \"review\", \"ts\": 1786000000000, \"agent_id\": \"x\", "
         "\"period\": \"2026-08\", \"item\": \"i\", \"score\": 1, \"role\": \"self\", "
         "\"reviewer\": \"x\"}",
         "a review event where target events are expected"},
        {EV_REVIEW,
         "{\"event_id\": \"e\", \"type\": \"target\", \"ts\": 1786000000000, \"period\": "
         "\"2026-08\", \"amount\": \"1\"}",
         "missing field 'agent_id' (csmetricsd would dead-letter it as missing_field)"},
    };
    for (size_t i = 0; i < N(cases); i++) {
        struct event ev;
        char err[512] = "";
        if (evjson_check(cases[i].json, strlen(cases[i].json), cases[i].want, &now_2026, &ev, err,
                         sizeof(err)) == 0)
            fail_msg("case %zu accepted", i);
        if (cases[i].err && strcmp(err, cases[i].err) != 0)
            fail_msg("case %zu: got \"%s\", want \"%s\"", i, err, cases[i].err);
        if (!cases[i].err && !strstr(err, "(csmetricsd would dead-letter it as invalid_json)"))
            fail_msg("case %zu: got \"%s\"", i, err);
        assert_null(ev.arena);
    }
}

static void test_make_id(void **state)
{
    (void)state;
    char id[64];
    evjson_make_id(id, sizeof(id), 1795000000000LL, 0x1234abcdULL);
    assert_string_equal(id, "csm-1795000000000-000000001234abcd");
    evjson_make_id(id, sizeof(id), 1795000000000LL, UINT64_MAX);
    assert_string_equal(id, "csm-1795000000000-ffffffffffffffff");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_is_number),     cmocka_unit_test(test_split_item),
        cmocka_unit_test(test_review_json),   cmocka_unit_test(test_target_json),
        cmocka_unit_test(test_check_refuses), cmocka_unit_test(test_make_id),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
