/* test_rule — rule.c: the rules.md example loaded with every value checked, the four plan
 * files of domain.md, every error message with its file:line:column (tests/fixtures/rules/
 * bad_*.yaml, plus in-memory cases for positions inside quoted, folded and block
 * scalars), rule_name_type, rule_applies_to and rule_set_load_dir.
 * The group setup chdirs into the fixture directory (found from __FILE__, so run the
 * binary from the repo root when it was compiled with a relative path). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "rules/rule.h"

#define COUNT_OF(a) (sizeof(a) / sizeof((a)[0]))

/* ---- helpers ---- */

static struct rule *load_ok(const char *path)
{
    char err[1024] = "";
    struct rule *r = rule_load_file(path, err, sizeof(err));
    if (r == NULL)
        fail_msg("%s: %s", path, err);
    return r;
}

static struct rule *load_text_ok(const char *text)
{
    char err[1024] = "";
    struct rule *r = rule_load_buffer("inline.yaml", text, strlen(text), err, sizeof(err));
    if (r == NULL)
        fail_msg("inline.yaml: %s", err);
    return r;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_true(fputs(text, f) >= 0);
    assert_int_equal(fclose(f), 0);
}

static char *read_all(const char *path)
{
    FILE *f = fopen(path, "rb");
    struct buf b;
    char chunk[4096];
    size_t n;
    assert_non_null(f);
    buf_init(&b);
    buf_adds(&b, "");
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        buf_add(&b, chunk, n);
    fclose(f);
    return b.data;
}

static const char *src(const struct expr *e)
{
    return e ? expr_source(e) : "(none)";
}

/* ---- the rules.md example, every value ---- */

static void test_example(void **state)
{
    (void)state;
    struct rule *r = load_ok("plan2_example.yaml");

    assert_string_equal(r->path, "plan2_example.yaml");
    assert_string_equal(r->name, "plan2-weighted-kpi");
    /* sha256sum tests/fixtures/rules/plan2_example.yaml: the spec's text, byte for byte */
    assert_string_equal(r->sha256,
                        "7336899ca1b31d5c26935a5d44842186204a7c4bf9a8e2bb24229799b1a847f5");
    assert_int_equal(r->period, PERIOD_MONTH);
    assert_int_equal(r->interval_ms, 60 * 1000);
    assert_true(r->has_lateness);
    assert_int_equal(r->lateness_ms, 10 * 60 * 1000);
    assert_int_equal(r->nshops, 1);
    assert_string_equal(r->shops[0], "*");
    assert_string_equal(src(r->eligible), "inquiries >= 30 and absent_days <= 60");

    assert_true(r->has_assessor[ROLE_SELF]);
    assert_true(r->assessor[ROLE_SELF] == 0.3);
    assert_true(r->has_assessor[ROLE_MANAGER]);
    assert_true(r->assessor[ROLE_MANAGER] == 0.7);
    assert_false(r->has_assessor[ROLE_INDIRECT_MANAGER]);

    static const struct {
        const char *kpi;
        double weight;
        enum rule_map map;
        double zero, full;
    } lines[] = {
        {.kpi = "target_completion", .weight = 30, .map = RULE_MAP_LINEAR, .zero = 0, .full = 1},
        {.kpi = "inquiry_conversion", .weight = 30, .map = RULE_MAP_LINEAR, .zero = 0, .full = 0.6},
        {.kpi = "order_success", .weight = 10, .map = RULE_MAP_LINEAR, .zero = 0.5, .full = 1},
        {.kpi = "aov", .weight = 5, .map = RULE_MAP_LINEAR, .zero = 0, .full = 300},
        {.kpi = "reply_rate", .weight = 5, .map = RULE_MAP_LINEAR, .zero = 0.8, .full = 1},
        {.kpi = "response_time_mean_s", .weight = 5, .map = RULE_MAP_BANDS},
        {.kpi = "review.follow_up", .weight = 5, .map = RULE_MAP_NONE},
        {.kpi = "review.execution", .weight = 10, .map = RULE_MAP_NONE},
    };
    assert_int_equal(r->nscore, COUNT_OF(lines));
    for (size_t i = 0; i < COUNT_OF(lines); i++) {
        const struct rule_score_line *l = &r->score[i];
        assert_string_equal(l->kpi, lines[i].kpi);
        assert_true(l->weight == lines[i].weight);
        assert_int_equal(l->map, lines[i].map);
        if (l->map == RULE_MAP_LINEAR) {
            assert_true(l->zero == lines[i].zero);
            assert_true(l->full == lines[i].full);
        }
        if (l->map != RULE_MAP_BANDS) {
            assert_null(l->bands);
            assert_int_equal(l->nbands, 0);
        }
    }
    static const struct rule_band bands[] = {
        {.has_max = true, .max = 30, .share = 1.0},
        {.has_max = true, .max = 40, .share = 0.8},
        {.has_max = true, .max = 60, .share = 0.4},
        {.has_max = false, .share = 0},
    };
    const struct rule_score_line *rt = &r->score[5];
    assert_int_equal(rt->nbands, COUNT_OF(bands));
    for (size_t i = 0; i < COUNT_OF(bands); i++) {
        assert_int_equal(rt->bands[i].has_max, bands[i].has_max);
        if (bands[i].has_max)
            assert_true(rt->bands[i].max == bands[i].max);
        assert_true(rt->bands[i].share == bands[i].share);
    }
    assert_false(r->undefined_skip);

    static const struct rule_grade grades[] = {
        {.name = "exceptional", .has_min = true, .min = 95},
        {.name = "excellent", .has_min = true, .min = 85},
        {.name = "medium", .has_min = true, .min = 70},
        {.name = "needs_improvement", .has_min = true, .min = 50},
        {.name = "urgent", .has_min = false},
    };
    assert_int_equal(r->ngrades, COUNT_OF(grades));
    for (size_t i = 0; i < COUNT_OF(grades); i++) {
        assert_string_equal(r->grades[i].name, grades[i].name);
        assert_int_equal(r->grades[i].has_min, grades[i].has_min);
        if (grades[i].has_min)
            assert_true(r->grades[i].min == grades[i].min);
        assert_null(r->grades[i].when);
    }

    static const struct rule_quota quotas[] = {
        {.grade = "exceptional", .has_max = true, .max = 0.10},
        {.grade = "excellent", .has_max = true, .max = 0.15},
        {.grade = "medium", .has_max = true, .max = 0.65},
    };
    assert_int_equal(r->nquotas, COUNT_OF(quotas));
    for (size_t i = 0; i < COUNT_OF(quotas); i++) {
        assert_string_equal(r->quotas[i].grade, quotas[i].grade);
        assert_true(r->quotas[i].has_max);
        assert_true(r->quotas[i].max == quotas[i].max);
        assert_false(r->quotas[i].has_min);
    }
    assert_int_equal(r->quotas_min_team, 10);

    static const struct {
        const char *name, *when, *amount;
    } payouts[] = {
        {.name = "rank1_bonus", .when = "rank == 1", .amount = "100"},
        {.name = "last_place_penalty", .when = "rank_bottom == 1", .amount = "-100"},
        {.name = "shared_commission", .when = "(none)", .amount = "team.sales * 0.005 / team.size"},
    };
    assert_int_equal(r->npayouts, COUNT_OF(payouts));
    for (size_t i = 0; i < COUNT_OF(payouts); i++) {
        assert_string_equal(r->payouts[i].name, payouts[i].name);
        assert_string_equal(src(r->payouts[i].when), payouts[i].when);
        assert_string_equal(src(r->payouts[i].amount), payouts[i].amount);
        assert_int_equal(r->payouts[i].for_n, 0);
    }

    static const struct {
        const char *name, *expr, *severity, *summary;
        int for_n;
        bool live;
    } alerts[] = {
        {.name = "ScoreBelow70",
         .expr = "score < 70",
         .severity = "warning",
         .summary = "{{agent}} scored {{score}} in {{period}}"},
        {.name = "LastPlaceThreeMonths",
         .expr = "rank_bottom == 1",
         .severity = "critical",
         .for_n = 3},
        {.name = "SlowReplies",
         .expr = "response_time_mean_s > 40",
         .severity = "info",
         .live = true},
    };
    assert_int_equal(r->nalerts, COUNT_OF(alerts));
    for (size_t i = 0; i < COUNT_OF(alerts); i++) {
        const struct rule_alert *a = &r->alerts[i];
        assert_string_equal(a->name, alerts[i].name);
        assert_string_equal(src(a->expr), alerts[i].expr);
        assert_string_equal(a->severity, alerts[i].severity);
        if (alerts[i].summary)
            assert_string_equal(a->summary, alerts[i].summary);
        else
            assert_null(a->summary);
        assert_int_equal(a->for_n, alerts[i].for_n);
        assert_int_equal(a->live, alerts[i].live);
    }
    rule_destroy(r);
}

/* ---- defaults of a minimal file ---- */

static void test_defaults(void **state)
{
    (void)state;
    struct rule *r = load_text_ok("version: 1\nname: min\nperiod: day\n"
                                  "alerts:\n  - {name: a, expr: inquiries > 0}\n");
    assert_string_equal(r->path, "inline.yaml");
    assert_int_equal(r->period, PERIOD_DAY);
    assert_int_equal(r->interval_ms, 0);
    assert_false(r->has_lateness);
    assert_int_equal(r->nshops, 1);
    assert_string_equal(r->shops[0], "*");
    assert_null(r->eligible);
    for (int i = 0; i < ROLE_COUNT; i++) { /* every role counts the same */
        assert_true(r->has_assessor[i]);
        assert_true(r->assessor[i] == 1);
    }
    assert_int_equal(r->nscore, 0);
    assert_false(r->undefined_skip);
    assert_int_equal(r->ngrades, 0);
    assert_int_equal(r->nquotas, 0);
    assert_int_equal(r->quotas_min_team, 10);
    assert_int_equal(r->npayouts, 0);
    assert_int_equal(r->nalerts, 1);
    assert_string_equal(r->alerts[0].severity, "warning");
    assert_null(r->alerts[0].summary);
    assert_int_equal(r->alerts[0].for_n, 0);
    assert_false(r->alerts[0].live);
    rule_destroy(r);
}

static void test_sha256(void **state)
{
    (void)state;
    static const char text[] = "version: 1\nname: x\nperiod: week\n";
    /* printf 'version: 1\nname: x\nperiod: week\n' | sha256sum */
    struct rule *r = load_text_ok(text);
    assert_string_equal(r->sha256,
                        "4f94a8c8479a5f7e26b80c80e7b897f7867a1fbdd0c8e7871900ad3281ecacb5");
    rule_destroy(r);
}

/* ---- other forms that load ---- */

static void test_forms(void **state)
{
    (void)state;
    struct rule *r = load_text_ok("version: 1\n"
                                  "name: forms\n"
                                  "period: quarter\n"
                                  "interval: 0\n"
                                  "lateness: 10d\n"
                                  "shops: [shop-1, 'tm-*']\n"
                                  "score:\n"
                                  "  - {kpi: review.total.self, weight: 0}\n"
                                  "  - {kpi: churn_rate, weight: 2.5e1, linear: {zero: 1, full: "
                                  "+.4}}\n"
                                  "undefined: skip\n"
                                  "grades:\n"
                                  "  - {name: a, min: 90, when: review.total.manager >= 0.9}\n"
                                  "  - {name: b, min: 90}\n"
                                  "  - {name: c, when: 'prev.grade == \"a\"'}\n"
                                  "  - {name: d, min: -5}\n"
                                  "quotas:\n"
                                  "  a: {max: 0.05}\n"
                                  "  d: {min: 0.1, max: 0.2}\n"
                                  "quotas_min_team: 1\n"
                                  "payouts:\n"
                                  "  - {name: p, amount: points.churn_rate * 2, for: 1000}\n"
                                  "alerts:\n"
                                  "  - name: x.y-z\n"
                                  "    expr: |\n"
                                  "      not eligible\n"
                                  "      or period == \"2026-Q1\"\n"
                                  "    severity: page\n"
                                  "    summary: '{{rule}}/{{alert}} {{shop}} {{value}} "
                                  "{{team.size}} {{prev.points.churn_rate}}'\n"
                                  "    for: 1\n"
                                  "    live: false\n");
    assert_int_equal(r->period, PERIOD_QUARTER);
    assert_int_equal(r->interval_ms, 0);
    assert_int_equal(r->lateness_ms, 10LL * 86400 * 1000);
    assert_int_equal(r->nshops, 2);
    assert_string_equal(r->shops[1], "tm-*");
    assert_string_equal(r->score[0].kpi, "review.total.self");
    assert_true(r->score[0].weight == 0);
    assert_true(r->score[1].weight == 25);
    assert_true(r->score[1].zero == 1 && r->score[1].full == 0.4);
    assert_true(r->undefined_skip);
    assert_int_equal(r->ngrades, 4);
    assert_non_null(r->grades[0].when);
    assert_null(r->grades[1].when);
    assert_false(r->grades[2].has_min);
    assert_string_equal(src(r->grades[2].when), "prev.grade == \"a\"");
    assert_true(r->grades[3].min == -5);
    assert_true(r->quotas[0].has_max && !r->quotas[0].has_min);
    assert_true(r->quotas[1].has_max && r->quotas[1].max == 0.2);
    assert_true(r->quotas[1].has_min && r->quotas[1].min == 0.1);
    assert_int_equal(r->quotas_min_team, 1);
    assert_null(r->payouts[0].when);
    assert_int_equal(r->payouts[0].for_n, 1000);
    assert_string_equal(src(r->alerts[0].expr), "not eligible\nor period == \"2026-Q1\"\n");
    assert_string_equal(r->alerts[0].severity, "page");
    assert_int_equal(r->alerts[0].for_n, 1);
    rule_destroy(r);
}

/* ---- the plans of domain.md ---- */

static void test_plans(void **state)
{
    (void)state;
    static const struct {
        const char *file, *name;
        enum period_kind period;
        size_t nscore, ngrades, nquotas, npayouts, nalerts;
    } plans[] = {
        {.file = "plan1.yaml",
         .name = "plan1-five-grades",
         .period = PERIOD_HALF,
         .nscore = 1,
         .ngrades = 5,
         .nquotas = 5,
         .npayouts = 0,
         .nalerts = 10},
        {.file = "plan2.yaml",
         .name = "plan2-weighted-kpi-levels",
         .period = PERIOD_MONTH,
         .nscore = 8,
         .ngrades = 4,
         .nquotas = 0,
         .npayouts = 0,
         .nalerts = 3},
        {.file = "plan3.yaml",
         .name = "plan3-self-manager",
         .period = PERIOD_MONTH,
         .nscore = 13,
         .ngrades = 0,
         .nquotas = 0,
         .npayouts = 2,
         .nalerts = 2},
        {.file = "plan5.yaml",
         .name = "plan5-pay",
         .period = PERIOD_MONTH,
         .nscore = 5,
         .ngrades = 5,
         .nquotas = 0,
         .npayouts = 2,
         .nalerts = 1},
    };
    for (size_t i = 0; i < COUNT_OF(plans); i++) {
        struct rule *r = load_ok(plans[i].file);
        assert_string_equal(r->name, plans[i].name);
        assert_int_equal(r->period, plans[i].period);
        assert_int_equal(r->nscore, plans[i].nscore);
        assert_int_equal(r->ngrades, plans[i].ngrades);
        assert_int_equal(r->nquotas, plans[i].nquotas);
        assert_int_equal(r->npayouts, plans[i].npayouts);
        assert_int_equal(r->nalerts, plans[i].nalerts);
        rule_destroy(r);
    }

    /* plan 1: quotas with a floor, consequences over halves */
    struct rule *r = load_ok("plan1.yaml");
    assert_string_equal(r->quotas[4].grade, "urgent");
    assert_true(r->quotas[4].has_min && r->quotas[4].min == 0.10 && !r->quotas[4].has_max);
    assert_true(r->assessor[ROLE_INDIRECT_MANAGER] == 1);
    assert_false(r->has_assessor[ROLE_SELF]);
    assert_int_equal(r->alerts[3].for_n, 2);
    assert_string_equal(src(r->alerts[6].expr),
                        "period_index == 1 and prev.grade == \"urgent\" and (grade == "
                        "\"needs_improvement\" or grade == \"urgent\")");
    rule_destroy(r);

    /* plan 2: levels by both assessments */
    r = load_ok("plan2.yaml");
    assert_string_equal(src(r->grades[0].when),
                        "review.total.self >= 0.9 and review.total.manager >= 0.9");
    assert_false(r->grades[0].has_min);
    assert_null(r->grades[3].when);
    assert_string_equal(src(r->alerts[1].expr), "score < 70 and prev.score < 70");
    rule_destroy(r);

    /* plan 3: self 30 %, manager 70 %, ±100, bottom two, 3 months last */
    r = load_ok("plan3.yaml");
    assert_true(r->assessor[ROLE_SELF] == 0.3 && r->assessor[ROLE_MANAGER] == 0.7);
    assert_string_equal(src(r->payouts[1].amount), "-100");
    assert_string_equal(src(r->alerts[0].expr), "rank_bottom <= 2");
    assert_int_equal(r->alerts[1].for_n, 3);
    rule_destroy(r);

    /* plan 5: absence, shared commission, one-off bonus */
    r = load_ok("plan5.yaml");
    assert_string_equal(src(r->eligible), "absent_days <= 60");
    assert_int_equal(r->lateness_ms, 10LL * 86400 * 1000);
    assert_string_equal(src(r->payouts[0].amount), "team.sales * 0.005 / team.size");
    assert_string_equal(src(r->payouts[1].when), "rank == 1");
    assert_int_equal(r->payouts[1].for_n, 3);
    assert_int_equal(r->alerts[0].for_n, 3);
    rule_destroy(r);
}

/* ---- every error, with its position ---- */

static const struct bad_case {
    const char *input, *message; /* a fixture file, or a rule file's text */
} bad_cases[] = {
    /* YAML */
    {.input = "bad_yaml_flow.yaml",
     .message = "bad_yaml_flow.yaml:5:1: did not find expected ',' or ']' (while "
                "parsing a flow sequence at 4:8)"},
    {.input = "bad_yaml_quote.yaml",
     .message = "bad_yaml_quote.yaml:5:1: found unexpected end of stream (while "
                "scanning a quoted scalar at 4:9)"},
    {.input = "bad_utf8.yaml", .message = "bad_utf8.yaml:2:10: invalid leading UTF-8 octet"},
    {.input = "bad_empty.yaml", .message = "bad_empty.yaml:1:1: the rule file is empty"},
    {.input = "bad_two_documents.yaml",
     .message = "bad_two_documents.yaml:4:1: only one YAML document is allowed"},
    {.input = "bad_top_list.yaml",
     .message = "bad_top_list.yaml:1:1: the top level must be a mapping of keys"},
    /* the top level */
    {.input = "bad_unknown_key.yaml",
     .message = "bad_unknown_key.yaml:4:1: unknown key 'grade' (valid keys: version, name, period, "
                "interval, lateness, shops, eligible, assessors, score, undefined, grades, quotas, "
                "quotas_min_team, payouts, alerts)"},
    {.input = "bad_duplicate_key.yaml",
     .message = "bad_duplicate_key.yaml:4:1: duplicate key 'name'"},
    {.input = "bad_missing_name.yaml", .message = "bad_missing_name.yaml:1:1: missing key 'name'"},
    {.input = "bad_missing_version.yaml",
     .message = "bad_missing_version.yaml:1:1: missing key 'version'"},
    {.input = "bad_version.yaml",
     .message = "bad_version.yaml:1:10: unsupported version 2 (this csmetrics reads version 1)"},
    {.input = "bad_name_chars.yaml",
     .message = "bad_name_chars.yaml:2:7: 'name' may only hold letters, digits, "
                "'_', '.' and '-': 'plan 2'"},
    {.input = "bad_period.yaml",
     .message =
         "bad_period.yaml:3:9: 'period' must be one of day, week, month, quarter, half, year"},
    {.input = "bad_interval.yaml",
     .message = "bad_interval.yaml:4:11: 'interval' must be a duration like 10m, 30s, 72h"},
    {.input = "bad_interval_small.yaml",
     .message = "bad_interval_small.yaml:4:11: 'interval' must be 0 (off) or at least 1s"},
    {.input = "bad_lateness.yaml",
     .message = "bad_lateness.yaml:4:11: 'lateness' must be a duration like 10m, 30s, 72h"},
    {.input = "bad_shops.yaml",
     .message = "bad_shops.yaml:4:8: 'shops' must be a list of shop ids like [\"*\"]"},
    {.input = "bad_shops_twice.yaml",
     .message = "bad_shops_twice.yaml:4:25: 'shops' lists 'shop-1' twice"},
    /* assessors */
    {.input = "bad_assessors_role.yaml",
     .message = "bad_assessors_role.yaml:4:24: unknown role 'boss' in "
                "'assessors' (valid roles: self, manager, indirect_manager)"},
    {.input = "bad_assessors_zero.yaml",
     .message = "bad_assessors_zero.yaml:4:12: 'assessors' needs a role with a weight above 0"},
    {.input = "bad_assessors_weight.yaml",
     .message = "bad_assessors_weight.yaml:4:33: 'manager' must be at least 0"},
    /* score */
    {.input = "bad_score_not_list.yaml",
     .message = "bad_score_not_list.yaml:4:8: 'score' must be a list of "
                "mappings like {kpi: reply_rate, weight: 5}"},
    {.input = "bad_score_unknown_kpi.yaml",
     .message =
         "bad_score_unknown_kpi.yaml:5:11: unknown KPI 'reply_rat' (did you mean 'reply_rate'?)"},
    {.input = "bad_score_unknown_kpi_far.yaml",
     .message = "bad_score_unknown_kpi_far.yaml:5:11: unknown KPI 'happiness'"},
    {.input = "bad_score_review_role.yaml",
     .message =
         "bad_score_review_role.yaml:5:11: bad review KPI 'review.execution.boss' (write "
         "review.<item> or review.<item>.<role> with role self, manager or indirect_manager)"},
    {.input = "bad_score_weight.yaml",
     .message = "bad_score_weight.yaml:5:24: 'weight' must be a number"},
    {.input = "bad_score_weight_negative.yaml",
     .message = "bad_score_weight_negative.yaml:6:13: 'weight' must be at least 0"},
    {.input = "bad_score_unknown_key.yaml",
     .message = "bad_score_unknown_key.yaml:5:16: unknown key 'weigth' "
                "(valid keys under 'score': kpi, weight, linear, bands)"},
    {.input = "bad_score_missing_weight.yaml",
     .message = "bad_score_missing_weight.yaml:5:5: missing key 'weight' under 'score'"},
    {.input = "bad_score_twice.yaml",
     .message = "bad_score_twice.yaml:6:11: KPI 'aov' is scored twice"},
    {.input = "bad_linear_equal.yaml",
     .message = "bad_linear_equal.yaml:5:53: 'full' must differ from 'zero'"},
    {.input = "bad_linear_missing.yaml",
     .message = "bad_linear_missing.yaml:5:35: missing key 'full' under 'linear'"},
    {.input = "bad_linear_and_bands.yaml",
     .message = "bad_linear_and_bands.yaml:8:5: a score line has 'linear' or 'bands', not both"},
    {.input = "bad_bands_share.yaml",
     .message = "bad_bands_share.yaml:8:26: 'share' must be between 0 and 1"},
    {.input = "bad_bands_order.yaml",
     .message =
         "bad_bands_order.yaml:9:15: 'max' must go up from band to band: 30 is not above 40"},
    {.input = "bad_bands_missing_max.yaml",
     .message = "bad_bands_missing_max.yaml:9:9: only the last band may leave out 'max'"},
    {.input = "bad_undefined.yaml",
     .message = "bad_undefined.yaml:7:12: 'undefined' must be zero or skip"},
    /* grades and quotas */
    {.input = "bad_grades_order.yaml",
     .message =
         "bad_grades_order.yaml:9:30: grades go from the highest min down: 'exceptional' min 95 "
         "is not below 'excellent' min 85"},
    {.input = "bad_grades_twice.yaml",
     .message = "bad_grades_twice.yaml:9:12: grade 'medium' is defined twice"},
    {.input = "bad_grades_catch_all.yaml",
     .message =
         "bad_grades_catch_all.yaml:8:5: only the last grade may have neither 'min' nor 'when'"},
    {.input = "bad_grade_when_rank.yaml",
     .message = "bad_grade_when_rank.yaml:8:23: 'when' cannot use 'rank': grades are decided "
                "before ranks"},
    {.input = "bad_grade_when_type.yaml",
     .message = "bad_grade_when_type.yaml:8:23: 'when' must be a bool expression, got a number"},
    {.input = "bad_quota_grade.yaml",
     .message = "bad_quota_grade.yaml:12:3: unknown grade 'exceptionl' in "
                "'quotas' (did you mean 'exceptional'?)"},
    {.input = "bad_quota_no_grades.yaml",
     .message = "bad_quota_no_grades.yaml:8:3: unknown grade 'exceptional' "
                "in 'quotas' (the file has no grades)"},
    {.input = "bad_quota_share.yaml",
     .message = "bad_quota_share.yaml:12:16: 'quotas.exceptional' must be between 0 and 1"},
    {.input = "bad_quota_min_max.yaml",
     .message = "bad_quota_min_max.yaml:12:27: quota 'medium' has a min 0.2 above its max 0.1"},
    {.input = "bad_quota_key.yaml",
     .message = "bad_quota_key.yaml:12:12: unknown key 'most' (valid keys under "
                "'quotas.medium': max, min)"},
    {.input = "bad_quotas_min_team.yaml",
     .message = "bad_quotas_min_team.yaml:11:18: 'quotas_min_team' must be between 1 and 1000000"},
    /* expressions */
    {.input = "bad_eligible_score.yaml",
     .message = "bad_eligible_score.yaml:7:31: 'eligible' cannot use 'score': "
                "it is computed from eligible agents"},
    {.input = "bad_eligible_points.yaml",
     .message = "bad_eligible_points.yaml:7:11: 'eligible' cannot use "
                "'points.aov': it is computed from eligible agents"},
    {.input = "bad_eligible_type.yaml",
     .message = "bad_eligible_type.yaml:7:11: 'eligible' must be a bool expression, got a number"},
    {.input = "bad_expr_unknown_name.yaml",
     .message = "bad_expr_unknown_name.yaml:9:11: unknown name 'scroe' (did you mean 'score'?)"},
    {.input = "bad_expr_quoted.yaml",
     .message =
         "bad_expr_quoted.yaml:9:27: unknown name 'rank_botom' (did you mean 'rank_bottom'?)"},
    {.input = "bad_expr_multiline.yaml",
     .message =
         "bad_expr_multiline.yaml:8:7: unknown name 'absent_dayz' (did you mean 'absent_days'?)"},
    {.input = "bad_expr_literal.yaml",
     .message = "bad_expr_literal.yaml:11:26: unknown name 'refunds'"},
    {.input = "bad_expr_function.yaml",
     .message = "bad_expr_function.yaml:9:11: unknown function 'sqrt'"},
    {.input = "bad_expr_type.yaml",
     .message = "bad_expr_type.yaml:9:17: operator '<' needs numbers, got number and string"},
    {.input = "bad_expr_syntax.yaml", .message = "bad_expr_syntax.yaml:9:19: unexpected '<'"},
    {.input = "bad_expr_paren.yaml", .message = "bad_expr_paren.yaml:9:11: unclosed '('"},
    {.input = "bad_points_not_scored.yaml",
     .message = "bad_points_not_scored.yaml:9:11: unknown name "
                "'points.sales' (no score line scores 'sales')"},
    {.input = "bad_prev_prev.yaml",
     .message = "bad_prev_prev.yaml:9:11: unknown name 'prev.prev.score' (prev.prev is not kept)"},
    /* payouts */
    {.input = "bad_payout_amount_type.yaml",
     .message =
         "bad_payout_amount_type.yaml:8:27: 'amount' must be a number expression, got a bool"},
    {.input = "bad_payout_for.yaml",
     .message = "bad_payout_for.yaml:8:54: 'for' must be between 2 and 1000"},
    {.input = "bad_payout_twice.yaml",
     .message = "bad_payout_twice.yaml:9:12: payout 'bonus' is defined twice"},
    {.input = "bad_payout_missing_amount.yaml",
     .message = "bad_payout_missing_amount.yaml:8:5: missing key 'amount' under 'payouts'"},
    /* alerts */
    {.input = "bad_alert_severity.yaml",
     .message = "bad_alert_severity.yaml:10:15: 'severity' must be a lowercase "
                "word like info, warning or critical"},
    {.input = "bad_alert_summary.yaml",
     .message = "bad_alert_summary.yaml:10:34: unknown name 'scroe' in "
                "'summary' (did you mean 'score'?)"},
    {.input = "bad_alert_summary_open.yaml",
     .message = "bad_alert_summary_open.yaml:10:32: unterminated '{{' in 'summary'"},
    {.input = "bad_alert_live.yaml",
     .message = "bad_alert_live.yaml:10:11: alert 'Slow' is live but the rule has no 'interval'"},
    {.input = "bad_alert_live_type.yaml",
     .message = "bad_alert_live_type.yaml:11:11: 'live' must be true or false"},
    {.input = "bad_alert_missing_expr.yaml",
     .message = "bad_alert_missing_expr.yaml:8:5: missing key 'expr' under 'alerts'"},
    {.input = "bad_alert_for.yaml",
     .message = "bad_alert_for.yaml:10:10: 'for' must be an integer"},
    {.input = "bad_alert_name.yaml",
     .message = "bad_alert_name.yaml:8:11: 'name' may only hold letters, digits, "
                "'_', '.' and '-': 'Score below 70'"},
};

static void test_bad_files(void **state)
{
    (void)state;
    int failed = 0;
    for (size_t i = 0; i < COUNT_OF(bad_cases); i++) {
        char err[1024] = "";
        struct rule *r = rule_load_file(bad_cases[i].input, err, sizeof(err));
        if (r != NULL) {
            rule_destroy(r);
            fail_msg("%s loaded", bad_cases[i].input);
        }
        if (strcmp(err, bad_cases[i].message) != 0) {
            print_error("%s:\n  got  %s\n  want %s\n", bad_cases[i].input, err,
                        bad_cases[i].message);
            failed++;
        }
    }
    assert_int_equal(failed, 0);
}

/* Every bad_*.yaml of the fixture directory has a case above. */
static void test_bad_files_all_listed(void **state)
{
    (void)state;
    FILE *ls = popen("ls bad_*.yaml", "r");
    char line[256];
    size_t n = 0;
    assert_non_null(ls);
    while (fgets(line, sizeof(line), ls)) {
        line[strcspn(line, "\n")] = '\0';
        bool found = false;
        for (size_t i = 0; i < COUNT_OF(bad_cases) && !found; i++)
            found = strcmp(bad_cases[i].input, line) == 0;
        if (!found)
            fail_msg("%s has no case in bad_cases[]", line);
        n++;
    }
    assert_int_equal(pclose(ls), 0);
    assert_int_equal(n, COUNT_OF(bad_cases));
}

/* Positions inside scalars of every style, and reading errors. */
static const struct bad_case inline_cases[] = {
    /* '' is one quote in the value, two columns in the file */
    {.input = "version: 1\nname: x\nperiod: day\nalerts:\n"
              "  - {name: a, expr: 'grade == ''its'' or scroe > 1'}\n",
     .message = "inline.yaml:5:42: unknown name 'scroe' (did you mean 'score'?)"},
    /* escapes: \" and \u00e9 are one character of the value each */
    {.input = "version: 1\nname: x\nperiod: day\nalerts:\n"
              "  - {name: a, expr: \"grade == \\\"\\u00e9\\\" or scroe > 1\"}\n",
     .message = "inline.yaml:5:45: unknown name 'scroe' (did you mean 'score'?)"},
    /* columns count characters, not bytes */
    {.input = "version: 1\nname: x\nperiod: day\nalerts:\n"
              "  - {name: a, expr: grade == \"\xc3\xa9\xc3\xa9\" or scroe > 1}\n",
     .message = "inline.yaml:5:38: unknown name 'scroe' (did you mean 'score'?)"},
    /* an escaped line break in double quotes */
    {.input = "version: 1\nname: x\nperiod: day\nalerts:\n"
              "  - name: a\n    expr: \"score < 70 and \\\n      scroe > 1\"\n",
     .message = "inline.yaml:7:7: unknown name 'scroe' (did you mean 'score'?)"},
    /* a plain scalar over lines with a blank line between */
    {.input = "version: 1\nname: x\nperiod: day\neligible: inquiries >= 30\n\n"
              "  and absent_days <= 60 and\n  scroe\n",
     .message = "inline.yaml:7:3: unknown name 'scroe' (did you mean 'score'?)"},
    /* CRLF line ends */
    {.input = "version: 1\r\nname: x\r\nperiod: day\r\neligible: inquiries >= 30\r\n  and foo\r\n",
     .message = "inline.yaml:5:7: unknown name 'foo'"},
    /* a BOM is not a column */
    {.input = "\xef\xbb\xbfversion: 2\nname: x\nperiod: day\n",
     .message = "inline.yaml:1:10: unsupported version 2 (this csmetrics reads version 1)"},
    /* a literal block: the line and column of the byte */
    {.input = "version: 1\nname: x\nperiod: day\nalerts:\n  - name: a\n    expr: |-\n\n"
              "        score < 70\n          and scroe > 1\n",
     .message = "inline.yaml:9:15: unknown name 'scroe' (did you mean 'score'?)"},
    /* a folded block: its start */
    {.input = "version: 1\nname: x\nperiod: day\nalerts:\n  - name: a\n    expr: >\n"
              "      score < 70\n      and scroe > 1\n",
     .message = "inline.yaml:6:11: unknown name 'scroe' (did you mean 'score'?)"},
    /* an error at the end of the expression */
    {.input = "version: 1\nname: x\nperiod: day\nalerts:\n  - {name: a, expr: score <}\n",
     .message = "inline.yaml:5:28: unexpected end of expression"},
    {.input = "version: 1\nname: x\nperiod: day\nalerts:\n  - {name: a, expr: ''}\n",
     .message = "inline.yaml:5:22: empty expression"},
    /* names in context */
    {.input = "version: 1\nname: x\nperiod: day\neligible: not eligible\n",
     .message = "inline.yaml:4:15: 'eligible' cannot use 'eligible': that is what it decides"},
    {.input = "version: 1\nname: x\nperiod: day\neligible: team.size > 3\n",
     .message = "inline.yaml:4:11: 'eligible' cannot use 'team.size': it is computed from eligible "
                "agents"},
    {.input = "version: 1\nname: x\nperiod: day\ngrades:\n  - {name: a, when: grade == \"a\"}\n",
     .message = "inline.yaml:5:21: 'when' cannot use 'grade': that is what it decides"},
    {.input = "version: 1\nname: x\nperiod: day\ngrades:\n  - {name: a, when: percentile > 90}\n",
     .message =
         "inline.yaml:5:21: 'when' cannot use 'percentile': grades are decided before ranks"},
    {.input = "version: 1\nname: x\nperiod: day\nalerts:\n  - {name: a, expr: \"score < \\0\"}\n",
     .message = "inline.yaml:5:21: 'expr' must not contain a NUL character"},
    /* types and shapes */
    {.input = "version: 1\nname: x\nperiod: day\npayouts:\n  - {name: p, amount: }\n",
     .message = "inline.yaml:5:23: 'amount' must be an expression"},
    {.input = "version: 1\nname: x\nperiod: day\neligible: [inquiries > 1]\n",
     .message = "inline.yaml:4:11: 'eligible' must be an expression"},
    {.input = "version: 1\nname: x\nperiod: day\ninterval: 1m\nalerts:\n"
              "  - {name: a, expr: score < 1, live: 1}\n",
     .message = "inline.yaml:6:38: 'live' must be true or false"},
    {.input = "version: one\nname: x\nperiod: day\n",
     .message = "inline.yaml:1:10: 'version' must be 1"},
    {.input = "version: 1\nname: ''\nperiod: day\n",
     .message = "inline.yaml:2:7: 'name' must not be empty"},
    {.input = "version: 1\nname: [x]\nperiod: day\n",
     .message = "inline.yaml:2:7: 'name' must be a string"},
    {.input = "version: 1\nname: x\nperiod: day\nlateness: 367d\n",
     .message = "inline.yaml:4:11: 'lateness' must be at most 366d"},
    {.input = "version: 1\nname: x\nperiod: day\nshops: []\n",
     .message = "inline.yaml:4:8: 'shops' must not be empty (use [\"*\"] for every shop)"},
    {.input = "version: 1\nname: x\nperiod: day\nscore:\n  - aov\n",
     .message =
         "inline.yaml:5:5: 'score' items must be mappings like {kpi: reply_rate, weight: 5}"},
    {.input = "version: 1\nname: x\nperiod: day\nscore:\n  - {kpi: aov, weight: .inf}\n",
     .message = "inline.yaml:5:24: 'weight' must be a number"},
    {.input = "version: 1\nname: x\nperiod: day\nscore:\n  - {kpi: aov, weight: 0x10}\n",
     .message = "inline.yaml:5:24: 'weight' must be a number"},
    {.input = "version: 1\nname: x\nperiod: day\nscore:\n  - {kpi: review., weight: 1}\n",
     .message =
         "inline.yaml:5:11: bad review KPI 'review.' (write review.<item> or review.<item>.<role> "
         "with role self, manager or indirect_manager)"},
    {.input = "version: 1\nname: x\nperiod: day\nscore:\n  - {kpi: revew.total, weight: 1}\n",
     .message = "inline.yaml:5:11: unknown KPI 'revew.total' (did you mean 'review.total'?)"},
    {.input = "version: 1\nname: x\nperiod: day\nscore:\n  - {kpi: aov, weight: 1, bands: []}\n",
     .message = "inline.yaml:5:34: 'bands' must not be empty"},
    {.input =
         "version: 1\nname: x\nperiod: day\nscore:\n  - {kpi: aov, weight: 1, linear: [0, 1]}\n",
     .message = "inline.yaml:5:35: 'linear' must be a mapping like {zero: 0, full: 1}"},
    {.input = "version: 1\nname: x\nperiod: day\ngrades:\n  - {name: a, min: 90}\n  - {name: b, "
              "min: 90}\n",
     .message = "inline.yaml:6:20: grades go from the highest min down: 'b' min 90 is not below "
                "'a' min 90"},
    {.input =
         "version: 1\nname: x\nperiod: day\ngrades: [{name: a}]\nquotas:\n  b: 0.1\n  a: 0.2\n",
     .message = "inline.yaml:6:3: unknown grade 'b' in 'quotas' (grades: a)"},
    {.input = "version: 1\nname: x\nperiod: day\ngrades: [{name: a}]\nquotas: {a: {}}\n",
     .message = "inline.yaml:5:13: quota 'a' needs 'max' or 'min'"},
    {.input = "version: 1\nname: x\nperiod: day\ngrades: [{name: a}]\nquotas: {a: 0.1, a: 0.2}\n",
     .message = "inline.yaml:5:18: duplicate key 'a'"},
    {.input = "version: 1\nname: x\nperiod: day\n[a]: 1\n",
     .message = "inline.yaml:4:1: keys must be strings"},
    {.input = "version: 1\nname: x\nperiod: day\nassessors: {[self]: 1}\n",
     .message = "inline.yaml:4:13: keys under 'assessors' must be strings"},
    {.input = "version: 1\nname: x\nperiod: day\nalerts:\n  - {name: a, expr: score < 1, summary: "
              "'{{ score }} {{agent-id}}'}\n",
     .message = "inline.yaml:5:54: bad placeholder '{{agent-id}}' in 'summary' (write {{name}})"},
    {.input = "version: 1\nname: x\nperiod: day\nalerts:\n  - {name: a, expr: score < 1, summary: "
              "'{{ score }} {{  }}'}\n",
     .message = "inline.yaml:5:54: bad placeholder '{{  }}' in 'summary' (write {{name}})"},
    {.input = "version: 1\nname: x\nperiod: day\nalerts:\n  - {name: a, expr: score < 1, summary: "
              "'{{ score }} {{ agnet }}'}\n",
     .message = "inline.yaml:5:57: unknown name 'agnet' in 'summary' (did you mean 'agent'?)"},
    {.input = "version: 1\nname: x\nperiod: day\nalerts:\n  - {name: a, expr: score < 1}\n"
              "  - {name: a, expr: score < 2}\n",
     .message = "inline.yaml:6:12: alert 'a' is defined twice"},
    {.input = "version: 1\nname: x\nperiod: day\nalerts:\n  - {name: a, expr: score < 1, for: 0}\n",
     .message = "inline.yaml:5:37: 'for' must be between 1 and 1000"},
    {.input = "version: 1\nname: x\nperiod: day\npayouts:\n  - {name: p, amount: '\"ten\"'}\n",
     .message = "inline.yaml:5:23: 'amount' must be a number expression, got a string"},
    {.input = "version: 1\nname: x\nperiod: day\npayouts: {name: p}\n",
     .message =
         "inline.yaml:4:10: 'payouts' must be a list of mappings like {name: bonus, when: rank == "
         "1, amount: 100}"},
};

static void test_bad_inline(void **state)
{
    (void)state;
    int failed = 0;
    for (size_t i = 0; i < COUNT_OF(inline_cases); i++) {
        char err[1024] = "";
        const char *text = inline_cases[i].input;
        struct rule *r = rule_load_buffer("inline.yaml", text, strlen(text), err, sizeof(err));
        if (r != NULL) {
            rule_destroy(r);
            fail_msg("case %zu loaded", i);
        }
        if (strcmp(err, inline_cases[i].message) != 0) {
            print_error("case %zu:\n  got  %s\n  want %s\n", i, err, inline_cases[i].message);
            failed++;
        }
    }
    assert_int_equal(failed, 0);
}

/* Lists are bounded (fuzzing: 150,000 shops took minutes to check for duplicates, and a
 * YAML alias repeated a 1,000-node expression over 35,000 alerts): the limit loads, one
 * more item is refused, also when the items are aliases. */
static void test_list_limits(void **state)
{
    (void)state;
    static const struct {
        const char *head, *item; /* item: printf format of item i */
        size_t max;
        const char *message;
    } cases[] = {
        {.head = "shops:\n",
         .item = "  - s%zu\n",
         .max = 1000,
         .message = "inline.yaml:5:3: 'shops' has 1001 items; at most 1000 are allowed"},
        {.head = "alerts:\n  - {name: a, expr: &e score < 1}\n",
         .item = "  - {name: a%zu, expr: *e}\n",
         .max = 999,
         .message = "inline.yaml:5:3: 'alerts' has 1001 items; at most 1000 are allowed"},
        {.head = "score:\n  - kpi: sales\n    weight: 1\n    bands:\n",
         .item = "      - {max: %zu, share: 1}\n",
         .max = 100,
         .message = "inline.yaml:8:7: 'bands' has 101 items; at most 100 are allowed"},
    };
    for (size_t c = 0; c < COUNT_OF(cases); c++) {
        for (size_t extra = 0; extra < 2; extra++) {
            struct buf b;
            char err[1024] = "";
            buf_init(&b);
            buf_printf(&b, "version: 1\nname: x\nperiod: day\n%s", cases[c].head);
            for (size_t i = 0; i < cases[c].max + extra; i++)
                buf_printf(&b, cases[c].item, i + 1);
            struct rule *r = rule_load_buffer("inline.yaml", b.data, b.len, err, sizeof(err));
            buf_release(&b);
            if (extra == 0) {
                if (r == NULL)
                    fail_msg("case %zu at the limit: %s", c, err);
                rule_destroy(r);
            } else {
                assert_null(r);
                assert_string_equal(err, cases[c].message);
            }
        }
    }
}

static void test_file_errors(void **state)
{
    (void)state;
    char err[256] = "";
    assert_null(rule_load_file("no_such_file.yaml", err, sizeof(err)));
    assert_string_equal(err, "cannot open 'no_such_file.yaml': No such file or directory");
    assert_null(rule_load_file(".", err, sizeof(err)));
    assert_string_equal(err, "cannot read '.': Is a directory");
    /* a tiny err buffer is cut, never overrun */
    char small[8];
    assert_null(rule_load_file("bad_version.yaml", small, sizeof(small)));
    assert_string_equal(small, "bad_ver");
    rule_destroy(NULL);
    rule_set_destroy(NULL);
}

/* ---- names for expressions ---- */

static void test_name_type(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        int rc;
        enum expr_type type;
    } cases[] = {
        {.name = "inquiries", .rc = 0, .type = EXPR_NUM},
        {.name = "reply_rate", .rc = 0, .type = EXPR_NUM},
        {.name = "absent_days", .rc = 0, .type = EXPR_NUM},
        {.name = "response_time_p90_s", .rc = 0, .type = EXPR_NUM},
        {.name = "review.follow_up", .rc = 0, .type = EXPR_NUM},
        {.name = "review.anything_else", .rc = 0, .type = EXPR_NUM},
        {.name = "review.execution.self", .rc = 0, .type = EXPR_NUM},
        {.name = "review.execution.manager", .rc = 0, .type = EXPR_NUM},
        {.name = "review.execution.indirect_manager", .rc = 0, .type = EXPR_NUM},
        {.name = "score", .rc = 0, .type = EXPR_NUM},
        {.name = "grade", .rc = 0, .type = EXPR_STR},
        {.name = "points.aov", .rc = 0, .type = EXPR_NUM},
        {.name = "points.review.follow_up", .rc = 0, .type = EXPR_NUM},
        {.name = "rank", .rc = 0, .type = EXPR_NUM},
        {.name = "rank_bottom", .rc = 0, .type = EXPR_NUM},
        {.name = "percentile", .rc = 0, .type = EXPR_NUM},
        {.name = "period_index", .rc = 0, .type = EXPR_NUM},
        {.name = "period", .rc = 0, .type = EXPR_STR},
        {.name = "eligible", .rc = 0, .type = EXPR_BOOL},
        {.name = "team.sales", .rc = 0, .type = EXPR_NUM},
        {.name = "team.inquiries", .rc = 0, .type = EXPR_NUM},
        {.name = "team.size", .rc = 0, .type = EXPR_NUM},
        {.name = "prev.score", .rc = 0, .type = EXPR_NUM},
        {.name = "prev.grade", .rc = 0, .type = EXPR_STR},
        {.name = "prev.eligible", .rc = 0, .type = EXPR_BOOL},
        {.name = "prev.period", .rc = 0, .type = EXPR_STR},
        {.name = "prev.points.aov", .rc = 0, .type = EXPR_NUM},
        {.name = "prev.team.size", .rc = 0, .type = EXPR_NUM},
        {.name = "prev.review.execution.self", .rc = 0, .type = EXPR_NUM},
        /* unknown */
        {.name = "scroe", .rc = -1, .type = EXPR_NUM},
        {.name = "", .rc = -1, .type = EXPR_NUM},
        {.name = "prev.", .rc = -1, .type = EXPR_NUM},
        {.name = "prev.prev.score", .rc = -1, .type = EXPR_NUM},
        {.name = "points.sales", .rc = -1, .type = EXPR_NUM}, /* not a score line of this file */
        {.name = "points.review.execution.self", .rc = -1, .type = EXPR_NUM},
        {.name = "review", .rc = -1, .type = EXPR_NUM},
        {.name = "review.", .rc = -1, .type = EXPR_NUM},
        {.name = "review.x.boss", .rc = -1, .type = EXPR_NUM},
        {.name = "review.x.self.more", .rc = -1, .type = EXPR_NUM},
        {.name = "review.1st", .rc = -1, .type = EXPR_NUM},
        {.name = "team.review.x", .rc = -1, .type = EXPR_NUM},
        {.name = "team.score", .rc = -1, .type = EXPR_NUM},
        {.name = "team", .rc = -1, .type = EXPR_NUM},
        {.name = "agent", .rc = -1, .type = EXPR_NUM}, /* summaries only */
        {.name = "Score", .rc = -1, .type = EXPR_NUM},
    };
    struct rule *r = load_ok("plan2_example.yaml");
    for (size_t i = 0; i < COUNT_OF(cases); i++) {
        enum expr_type t = (enum expr_type) - 1;
        int rc = rule_name_type(r, cases[i].name, &t);
        if (rc != cases[i].rc)
            fail_msg("'%s': rc %d, want %d", cases[i].name, rc, cases[i].rc);
        if (rc == 0 && t != cases[i].type)
            fail_msg("'%s': type %d, want %d", cases[i].name, t, cases[i].type);
    }
    assert_int_equal(rule_name_type(r, "score", NULL), 0);
    assert_int_equal(rule_name_type(r, NULL, NULL), -1);
    rule_destroy(r);
}

/* ---- shops ---- */

static void test_applies_to(void **state)
{
    (void)state;
    static const struct {
        const char *shop;
        bool every, listed;
    } cases[] = {
        {.shop = "shop-1", .every = true, .listed = true},
        {.shop = "shop-2", .every = true, .listed = false},
        {.shop = "tm-0042", .every = true, .listed = true},
        {.shop = "tm-", .every = true, .listed = true},
        {.shop = "xtm-1", .every = true, .listed = false},
        {.shop = "shop-10", .every = true, .listed = false},
        {.shop = "[x]", .every = true, .listed = true},
        {.shop = "", .every = true, .listed = false},
    };
    struct rule *every = load_ok("plan2_example.yaml");
    struct rule *listed = load_text_ok("version: 1\nname: s\nperiod: day\n"
                                       "shops: [shop-1, 'tm-*', '[x]']\n");
    for (size_t i = 0; i < COUNT_OF(cases); i++) {
        if (rule_applies_to(every, cases[i].shop) != cases[i].every)
            fail_msg("every: '%s'", cases[i].shop);
        if (rule_applies_to(listed, cases[i].shop) != cases[i].listed)
            fail_msg("listed: '%s'", cases[i].shop);
    }
    assert_false(rule_applies_to(every, NULL));
    assert_false(rule_applies_to(NULL, "shop-1"));
    rule_destroy(every);
    rule_destroy(listed);
}

/* ---- directories ---- */

struct tmpdir {
    char path[64];
    char files[8][64];
    size_t n;
};

static void tmp_make(struct tmpdir *d)
{
    snprintf(d->path, sizeof(d->path), "/tmp/test_rule.XXXXXX");
    assert_non_null(mkdtemp(d->path));
    d->n = 0;
}

static void tmp_put(struct tmpdir *d, const char *name, const char *text)
{
    char path[160];
    assert_true(d->n < 8);
    snprintf(d->files[d->n++], sizeof(d->files[0]), "%s", name);
    snprintf(path, sizeof(path), "%s/%s", d->path, name);
    write_file(path, text);
}

static void tmp_put_fixture(struct tmpdir *d, const char *name, const char *fixture)
{
    char *text = read_all(fixture);
    tmp_put(d, name, text);
    free(text);
}

static void tmp_remove(struct tmpdir *d)
{
    char path[160];
    for (size_t i = 0; i < d->n; i++) {
        snprintf(path, sizeof(path), "%s/%s", d->path, d->files[i]);
        assert_int_equal(unlink(path), 0);
    }
    assert_int_equal(rmdir(d->path), 0);
}

static void test_set_ok(void **state)
{
    (void)state;
    struct tmpdir d;
    char err[1024] = "", want[1024];
    tmp_make(&d);

    struct rule_set *s = rule_set_load_dir(d.path, err, sizeof(err));
    assert_non_null(s); /* empty: an empty set */
    assert_int_equal(s->n, 0);
    rule_set_destroy(s);

    tmp_put_fixture(&d, "b.yaml", "plan1.yaml");
    tmp_put_fixture(&d, "a.yaml", "plan3.yaml");
    tmp_put_fixture(&d, "c.yaml", "plan5.yaml");
    tmp_put(&d, "notes.txt", "not a rule\n");
    tmp_put(&d, "old.yml", "not: a rule\n");
    tmp_put(&d, ".hidden.yaml", "not: a rule\n");
    s = rule_set_load_dir(d.path, err, sizeof(err));
    if (s == NULL)
        fail_msg("%s", err);
    assert_int_equal(s->n, 3);
    assert_string_equal(s->rules[0]->name, "plan3-self-manager");
    assert_string_equal(s->rules[1]->name, "plan1-five-grades");
    assert_string_equal(s->rules[2]->name, "plan5-pay");
    snprintf(want, sizeof(want), "%s/a.yaml", d.path);
    assert_string_equal(s->rules[0]->path, want);
    rule_set_destroy(s);

    /* a trailing slash does not double */
    char slash[80];
    snprintf(slash, sizeof(slash), "%s/", d.path);
    s = rule_set_load_dir(slash, err, sizeof(err));
    assert_non_null(s);
    assert_string_equal(s->rules[0]->path, want);
    rule_set_destroy(s);
    tmp_remove(&d);
}

static void test_set_bad_file(void **state)
{
    (void)state;
    struct tmpdir d;
    char err[1024] = "", want[1024];
    tmp_make(&d);
    tmp_put_fixture(&d, "a.yaml", "plan1.yaml");
    tmp_put_fixture(&d, "b.yaml", "bad_score_unknown_kpi.yaml");
    tmp_put_fixture(&d, "c.yaml", "plan3.yaml");
    assert_null(rule_set_load_dir(d.path, err, sizeof(err)));
    snprintf(want, sizeof(want),
             "%s/b.yaml:5:11: unknown KPI 'reply_rat' (did you mean 'reply_rate'?)", d.path);
    assert_string_equal(err, want);
    tmp_remove(&d);
}

static void test_set_duplicate_name(void **state)
{
    (void)state;
    struct tmpdir d;
    char err[1024] = "", want[1024];
    tmp_make(&d);
    tmp_put_fixture(&d, "10-plan2.yaml", "plan2_example.yaml");
    tmp_put(&d, "20-other.yaml", "version: 1\nperiod: week\nname:   plan2-weighted-kpi\n");
    assert_null(rule_set_load_dir(d.path, err, sizeof(err)));
    snprintf(want, sizeof(want),
             "%s/20-other.yaml:3:9: rule name 'plan2-weighted-kpi' already used by "
             "%s/10-plan2.yaml",
             d.path, d.path);
    assert_string_equal(err, want);
    tmp_remove(&d);
}

static void test_set_missing_dir(void **state)
{
    (void)state;
    char err[256] = "";
    assert_null(rule_set_load_dir("no_such_dir", err, sizeof(err)));
    assert_string_equal(err,
                        "cannot open rules directory 'no_such_dir': No such file or directory");
}

/* ---- setup ---- */

static int group_setup(void **state)
{
    (void)state;
    char dir[PATH_MAX];
    const char *slash = strrchr(__FILE__, '/');
    snprintf(dir, sizeof(dir), "%.*s/../fixtures/rules", slash ? (int)(slash - __FILE__) : 1,
             slash ? __FILE__ : ".");
    if (chdir(dir) != 0) {
        fprintf(stderr, "test_rule: cannot chdir to '%s' (run from the repo root)\n", dir);
        return -1;
    }
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_example),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_sha256),
        cmocka_unit_test(test_forms),
        cmocka_unit_test(test_plans),
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_bad_files_all_listed),
        cmocka_unit_test(test_bad_inline),
        cmocka_unit_test(test_list_limits),
        cmocka_unit_test(test_file_errors),
        cmocka_unit_test(test_name_type),
        cmocka_unit_test(test_applies_to),
        cmocka_unit_test(test_set_ok),
        cmocka_unit_test(test_set_bad_file),
        cmocka_unit_test(test_set_duplicate_name),
        cmocka_unit_test(test_set_missing_dir),
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
