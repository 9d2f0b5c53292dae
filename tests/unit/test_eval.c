/* test_eval — rules/eval.c against rules.md "Precise readings" and "What one evaluation
 * emits": mappings, undefined KPIs, score rounding, grades, ranks, quotas (cascades,
 * floors, quotas_min_team), payouts and alerts with `for`, prev.*, expression names,
 * the snapshot JSON parsed back field by field, snapshot ids and alert records.
 * Rules are built by hand (the loader has its own tests); expressions go through expr_parse. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_tree.h>

#include "common/buf.h"
#include "rules/eval.h"

#define MAXA 128

static int near(double got, double want)
{
    if (isnan(want))
        return isnan(got);
    if (want == 0)
        return got == 0;
    return fabs(got - want) <= 1e-9 * fabs(want);
}

#define assert_near(got, want)                                                                     \
    do {                                                                                           \
        double g_ = (got), w_ = (want);                                                            \
        if (!near(g_, w_))                                                                         \
            fail_msg("%s = %.17g, want %.17g", #got, g_, w_);                                      \
    } while (0)

/* ---- building rules by hand ---- */

/* The types of rules.md's names (rule_name_type's job in the loader). */
static int tname(void *ud, const char *name, enum expr_type *type)
{
    if (strncmp(name, "prev.", 5) == 0)
        name += 5;
    if (strcmp(name, "grade") == 0 || strcmp(name, "period") == 0)
        *type = EXPR_STR;
    else if (strcmp(name, "eligible") == 0)
        *type = EXPR_BOOL;
    else
        *type = EXPR_NUM;
    return 0;
}

static struct expr *px(const char *src)
{
    char err[256] = "";
    size_t off = 0;
    enum expr_type t;
    struct expr *e;

    if (!src)
        return NULL;
    e = expr_parse(src, tname, NULL, &t, err, sizeof(err), &off);
    if (!e)
        fail_msg("cannot parse '%s': %s at %zu", src, err, off);
    return e;
}

static struct rule *rule_new(const char *name)
{
    struct rule *r = xcalloc(1, sizeof(*r));

    r->path = xstrdup("test.yaml");
    r->name = xstrdup(name);
    snprintf(r->sha256, sizeof(r->sha256), "%064d", 7);
    r->period = PERIOD_MONTH;
    r->quotas_min_team = 10;
    return r;
}

static struct rule_score_line *add_line(struct rule *r, const char *kpi, double weight,
                                        enum rule_map map, double zero, double full)
{
    r->score = xrealloc(r->score, (r->nscore + 1) * sizeof(*r->score));
    r->score[r->nscore] = (struct rule_score_line){
        .kpi = xstrdup(kpi), .weight = weight, .map = map, .zero = zero, .full = full};
    return &r->score[r->nscore++];
}

static void add_band(struct rule_score_line *l, bool has_max, double max, double share)
{
    l->bands = xrealloc(l->bands, (l->nbands + 1) * sizeof(*l->bands));
    l->bands[l->nbands++] = (struct rule_band){.has_max = has_max, .max = max, .share = share};
}

static void add_grade(struct rule *r, const char *name, bool has_min, double min, const char *when)
{
    r->grades = xrealloc(r->grades, (r->ngrades + 1) * sizeof(*r->grades));
    r->grades[r->ngrades++] = (struct rule_grade){
        .name = xstrdup(name), .has_min = has_min, .min = min, .when = px(when)};
}

/* max or min < 0: not given */
static void add_quota(struct rule *r, const char *grade, double max, double min)
{
    r->quotas = xrealloc(r->quotas, (r->nquotas + 1) * sizeof(*r->quotas));
    r->quotas[r->nquotas++] = (struct rule_quota){
        .grade = xstrdup(grade), .has_max = max >= 0, .max = max, .has_min = min >= 0, .min = min};
}

static void add_payout(struct rule *r, const char *name, const char *when, const char *amount,
                       int for_n)
{
    r->payouts = xrealloc(r->payouts, (r->npayouts + 1) * sizeof(*r->payouts));
    r->payouts[r->npayouts++] = (struct rule_payout){
        .name = xstrdup(name), .when = px(when), .amount = px(amount), .for_n = for_n};
}

static void add_alert(struct rule *r, const char *name, const char *expr, const char *severity,
                      const char *summary, int for_n, bool live)
{
    r->alerts = xrealloc(r->alerts, (r->nalerts + 1) * sizeof(*r->alerts));
    r->alerts[r->nalerts++] = (struct rule_alert){
        .name = xstrdup(name),
        .expr = px(expr),
        .severity = severity ? xstrdup(severity) : NULL,
        .summary = summary ? xstrdup(summary) : NULL,
        .for_n = for_n,
        .live = live,
    };
}

/* Plan 1's five grades. */
static void plan1_grades(struct rule *r)
{
    add_grade(r, "exceptional", true, 95, NULL);
    add_grade(r, "excellent", true, 85, NULL);
    add_grade(r, "medium", true, 70, NULL);
    add_grade(r, "needs_improvement", true, 50, NULL);
    add_grade(r, "urgent", false, 0, NULL);
}

/* A rule whose score is the agent's sales in yuan (0..100): scores are set exactly. */
static struct rule *sales_rule(const char *name)
{
    struct rule *r = rule_new(name);
    add_line(r, "sales", 100, RULE_MAP_LINEAR, 0, 100);
    return r;
}

/* ---- one evaluation ---- */

struct fx {
    struct rule *r;
    bool loaded; /* by rule_load_file: rule_destroy frees it */
    struct eval_agent ag[MAXA];
    char ids[MAXA][32];
    size_t n;
    struct eval_input in;
    struct eval_output out;
};

static struct fx *fx_new(struct rule *r)
{
    struct fx *f = xcalloc(1, sizeof(*f));

    f->r = r;
    f->in.rule = r;
    f->in.shop_id = "shop1";
    f->in.final = true;
    f->in.version = "1.0.0";
    f->in.team.target_cents = -1;
    f->in.team.wait_p90_ms = -1;
    assert_int_equal(period_from_label("2026-08", &f->in.period), 0);
    return f;
}

static struct eval_agent *fx_add(struct fx *f, const char *id, int64_t sales_cents)
{
    struct eval_agent *a = &f->ag[f->n];

    assert_true(f->n < MAXA);
    snprintf(f->ids[f->n], sizeof(f->ids[f->n]), "%s", id);
    *a = (struct eval_agent){.agent_id = f->ids[f->n]};
    a->fig.target_cents = -1;
    a->fig.wait_p90_ms = -1;
    a->fig.inquiries = 30;
    a->fig.sales_cents = sales_cents;
    f->n++;
    return a;
}

static void fx_run(struct fx *f)
{
    char err[256] = "";

    f->in.agents = f->ag;
    f->in.nagents = f->n;
    eval_output_release(&f->out);
    if (eval_run(&f->in, &f->out, err, sizeof(err)) != 0)
        fail_msg("eval_run: %s", err);
    assert_int_equal(f->out.n, f->n);
}

static void fx_free(struct fx *f)
{
    eval_output_release(&f->out);
    if (f->loaded)
        rule_destroy(f->r);
    else
        rule_destroy(f->r);
    free(f);
}

static const struct eval_snapshot *snap(const struct fx *f, const char *id)
{
    for (size_t i = 0; i < f->out.n; i++)
        if (strcmp(f->out.snaps[i].agent_id, id) == 0)
            return &f->out.snaps[i];
    fail_msg("no snapshot for %s", id);
    return NULL;
}

/* The amount paid under name, or NAN when not paid. */
static double paid(const struct eval_snapshot *s, const char *name)
{
    for (size_t i = 0; i < s->npayouts; i++)
        if (strcmp(s->payout_names[i], name) == 0)
            return s->payout_amounts[i];
    return NAN;
}

static bool firing(const struct eval_snapshot *s, const char *name)
{
    for (size_t i = 0; i < s->nalerts; i++)
        if (strcmp(s->alert_names[i], name) == 0)
            return true;
    return false;
}

/* ---- JSON helpers ---- */

static yajl_val parse_json(const char *text)
{
    char err[256];
    yajl_val v;

    assert_non_null(text);
    assert_null(strchr(text, '\n'));
    v = yajl_tree_parse(text, err, sizeof(err));
    if (!v)
        fail_msg("invalid JSON (%s): %s", err, text);
    return v;
}

static yajl_val jget(yajl_val root, const char *k1, const char *k2)
{
    const char *path[] = {k1, k2, NULL};
    yajl_val v = yajl_tree_get(root, path, yajl_t_any);
    if (!v)
        fail_msg("missing %s%s%s", k1, k2 ? "." : "", k2 ? k2 : "");
    return v;
}

static bool jhas(yajl_val root, const char *k1, const char *k2)
{
    const char *path[] = {k1, k2, NULL};
    return yajl_tree_get(root, path, yajl_t_any) != NULL;
}

static double jnum(yajl_val v)
{
    if (!YAJL_IS_NUMBER(v))
        fail_msg("not a number");
    return strtod(YAJL_GET_NUMBER(v), NULL);
}

static void assert_jstr(yajl_val v, const char *want)
{
    if (!YAJL_IS_STRING(v))
        fail_msg("not a string, want '%s'", want);
    assert_string_equal(YAJL_GET_STRING(v), want);
}

static void assert_jnum_text(yajl_val v, const char *want)
{
    if (!YAJL_IS_NUMBER(v))
        fail_msg("not a number, want %s", want);
    assert_string_equal(YAJL_GET_NUMBER(v), want);
}

/* ---- mappings ---- */

struct linear_case {
    double zero, full, value, share;
};

static const struct linear_case linear_cases[] = {
    {.zero = 0, .full = 100, .value = 50, .share = 0.5},
    {.zero = 0, .full = 100, .value = 150, .share = 1},
    {.zero = 20, .full = 100, .value = 10, .share = 0},
    {.zero = 20, .full = 100, .value = 100, .share = 1},
    /* zero > full: lower is better */
    {.zero = 60, .full = 20, .value = 30, .share = 0.75},
    {.zero = 60, .full = 20, .value = 10, .share = 1},
    {.zero = 60, .full = 20, .value = 90, .share = 0},
    {.zero = 60, .full = 20, .value = 60, .share = 0},
    {.zero = 60, .full = 20, .value = 20, .share = 1},
};

static void test_linear(void **state)
{
    for (size_t i = 0; i < sizeof(linear_cases) / sizeof(linear_cases[0]); i++) {
        const struct linear_case *c = &linear_cases[i];
        struct rule *r = rule_new("lin");
        struct fx *f = fx_new(r);
        struct eval_agent *a;

        add_line(r, "response_time_mean_s", 10, RULE_MAP_LINEAR, c->zero, c->full);
        a = fx_add(f, "x", 0);
        a->fig.waits = 2;
        a->fig.wait_sum_ms = (int64_t)(c->value * 2000);
        fx_run(f);
        const struct eval_snapshot *s = snap(f, "x");
        assert_true(s->scored);
        assert_string_equal(s->lines[0].mapping, "linear");
        assert_near(s->lines[0].value, c->value);
        assert_near(s->lines[0].numerator, c->value * 2);
        assert_near(s->lines[0].denominator, 2);
        assert_near(s->lines[0].share, c->share);
        assert_near(s->lines[0].points, c->share * 10);
        assert_near(s->score, c->share * 10);
        fx_free(f);
    }
}

/* Ratios are not capped (metrics.md): the mapping clamps. */
static void test_linear_uncapped_ratio(void **state)
{
    struct rule *r = rule_new("lin");
    struct fx *f = fx_new(r);
    struct eval_agent *a;

    add_line(r, "order_success", 10, RULE_MAP_LINEAR, 0.5, 1.0);
    a = fx_add(f, "x", 0);
    a->fig.ordered = 2;
    a->fig.paid_customers = 3;
    fx_run(f);
    assert_near(f->out.snaps[0].lines[0].value, 1.5);
    assert_near(f->out.snaps[0].lines[0].share, 1);
    assert_near(f->out.snaps[0].score, 10);
    fx_free(f);
}

struct band_case {
    double value;
    bool catch_all;
    int band;
    double share;
};

static const struct band_case band_cases[] = {
    {.value = 20, .catch_all = true, .band = 0, .share = 1.0},
    {.value = 30, .catch_all = true, .band = 0, .share = 1.0}, /* max >= value */
    {.value = 30.5, .catch_all = true, .band = 1, .share = 0.8},
    {.value = 40, .catch_all = true, .band = 1, .share = 0.8},
    {.value = 60, .catch_all = true, .band = 2, .share = 0.4},
    {.value = 61, .catch_all = true, .band = 3, .share = 0},
    {.value = 61, .catch_all = false, .band = -1, .share = 0},
};

static void test_bands(void **state)
{
    for (size_t i = 0; i < sizeof(band_cases) / sizeof(band_cases[0]); i++) {
        const struct band_case *c = &band_cases[i];
        struct rule *r = rule_new("bands");
        struct fx *f = fx_new(r);
        struct rule_score_line *l = add_line(r, "response_time_mean_s", 5, RULE_MAP_BANDS, 0, 0);
        struct eval_agent *a;

        add_band(l, true, 30, 1.0);
        add_band(l, true, 40, 0.8);
        add_band(l, true, 60, 0.4);
        if (c->catch_all)
            add_band(l, false, 0, 0);
        a = fx_add(f, "x", 0);
        a->fig.waits = 2;
        a->fig.wait_sum_ms = (int64_t)(c->value * 2000);
        fx_run(f);
        const struct eval_snapshot *s = snap(f, "x");
        assert_string_equal(s->lines[0].mapping, "bands");
        assert_int_equal(s->lines[0].band, c->band);
        assert_near(s->lines[0].share, c->share);
        assert_near(s->lines[0].points, c->share * 5);
        assert_near(s->score, kpi_round(c->share * 5, 2));
        fx_free(f);
    }
}

/* No mapping: share = clamp(value, 0, 1); review.<item> combines the listed roles. */
struct review_case {
    const char *name;
    bool self, manager, indirect;
    double self_v, manager_v, indirect_v;
    bool defined;
    double value, share;
};

static const struct review_case review_cases[] = {
    {.name = "both",
     .self = true,
     .self_v = 0.9,
     .manager = true,
     .manager_v = 0.8,
     .defined = true,
     .value = 0.83,
     .share = 0.83},
    {.name = "self only", .self = true, .self_v = 1.0, .defined = true, .value = 1, .share = 1},
    {.name = "over 1",
     .manager = true,
     .manager_v = 1.2,
     .defined = true,
     .value = 1.2,
     .share = 1},
    {.name = "below 0",
     .manager = true,
     .manager_v = -0.1,
     .defined = true,
     .value = -0.1,
     .share = 0},
    {.name = "unlisted role ignored",
     .manager = true,
     .manager_v = 0.5,
     .indirect = true,
     .indirect_v = 1.0,
     .defined = true,
     .value = 0.5,
     .share = 0.5},
    {.name = "no listed role",
     .indirect = true,
     .indirect_v = 0.7,
     .defined = false,
     .value = NAN,
     .share = 0},
};

static void add_review(struct eval_agent *a, const char *item, enum review_role role, double v)
{
    struct kpi_review *rv = &a->fig.reviews[a->fig.reviews_n++];
    snprintf(rv->item, sizeof(rv->item), "%s", item);
    rv->role = role;
    rv->value = v;
}

static void test_no_mapping_reviews(void **state)
{
    for (size_t i = 0; i < sizeof(review_cases) / sizeof(review_cases[0]); i++) {
        const struct review_case *c = &review_cases[i];
        struct rule *r = rule_new("rev");
        struct fx *f = fx_new(r);
        struct eval_agent *a;

        r->has_assessor[ROLE_SELF] = r->has_assessor[ROLE_MANAGER] = true;
        r->assessor[ROLE_SELF] = 0.3;
        r->assessor[ROLE_MANAGER] = 0.7;
        add_line(r, "review.follow_up", 5, RULE_MAP_NONE, 0, 0);
        a = fx_add(f, "x", 0);
        if (c->self)
            add_review(a, "follow_up", ROLE_SELF, c->self_v);
        if (c->manager)
            add_review(a, "follow_up", ROLE_MANAGER, c->manager_v);
        if (c->indirect)
            add_review(a, "follow_up", ROLE_INDIRECT_MANAGER, c->indirect_v);
        add_review(a, "other", ROLE_SELF, 0.1); /* another item: not mixed in */
        fx_run(f);
        const struct eval_snapshot *s = snap(f, "x");
        if (s->lines[0].defined != c->defined)
            fail_msg("%s: defined %d", c->name, s->lines[0].defined);
        assert_string_equal(s->lines[0].mapping, "none");
        assert_near(s->lines[0].value, c->value);
        assert_near(s->lines[0].share, c->share);
        assert_near(s->score, kpi_round(c->share * 5, 2));
        fx_free(f);
    }
}

/* A rule without `assessors` weighs every role alike; review.<item>.<role> is direct. */
static void test_reviews_no_assessors_and_roles(void **state)
{
    struct rule *r = rule_new("rev");
    struct fx *f = fx_new(r);
    struct eval_agent *a;

    add_line(r, "review.execution", 10, RULE_MAP_NONE, 0, 0);
    add_line(r, "review.execution.self", 10, RULE_MAP_NONE, 0, 0);
    add_line(r, "review.execution.indirect_manager", 10, RULE_MAP_NONE, 0, 0);
    a = fx_add(f, "x", 0);
    add_review(a, "execution", ROLE_SELF, 0.6);
    add_review(a, "execution", ROLE_MANAGER, 0.9);
    fx_run(f);
    const struct eval_snapshot *s = snap(f, "x");
    assert_near(s->lines[0].value, 0.75);
    assert_near(s->lines[0].numerator, 1.5);
    assert_near(s->lines[0].denominator, 2);
    assert_near(s->lines[1].value, 0.6);
    assert_false(s->lines[2].defined);
    assert_near(s->score, 7.5 + 6);
    fx_free(f);
}

/* ---- undefined KPIs ---- */

static void test_undefined_zero_vs_skip(void **state)
{
    for (int skip = 0; skip <= 1; skip++) {
        struct rule *r = rule_new("undef");
        struct fx *f = fx_new(r);
        struct eval_agent *a;
        yajl_val j;

        r->undefined_skip = skip;
        add_line(r, "reply_rate", 30, RULE_MAP_LINEAR, 0, 1);        /* undefined: 0 inquiries */
        add_line(r, "target_completion", 70, RULE_MAP_LINEAR, 0, 1); /* 0.5 */
        a = fx_add(f, "x", 50000);
        a->fig.inquiries = 0;
        a->fig.target_cents = 100000;
        fx_run(f);
        const struct eval_snapshot *s = snap(f, "x");
        assert_true(s->scored);
        assert_false(s->lines[0].defined);
        assert_int_equal(s->lines[0].skipped, skip);
        j = parse_json(s->json);
        assert_true(YAJL_IS_NULL(jget(j, "metrics", "reply_rate")));
        if (!skip) {
            /* 0 + 0.5 × 70 */
            assert_near(s->score, 35);
            assert_near(s->lines[0].points, 0);
            assert_near(s->lines[1].weight, 70);
            assert_jnum_text(jget(j, "points", "reply_rate"), "0");
            assert_jnum_text(jget(j, "score", NULL), "35");
        } else {
            /* 35 × (100 / 70): the defined line carries the whole scale */
            assert_near(s->score, 50);
            assert_true(isnan(s->lines[0].points));
            assert_near(s->lines[0].weight, 0);
            assert_near(s->lines[1].weight, 100);
            assert_near(s->lines[1].points, 50);
            assert_true(YAJL_IS_NULL(jget(j, "points", "reply_rate")));
            assert_jnum_text(jget(j, "points", "target_completion"), "50");
            assert_jnum_text(jget(j, "score", NULL), "50");
        }
        yajl_tree_free(j);
        fx_free(f);
    }
}

/* skip with every line undefined: no score; the agent is eligible but not scored. */
static void test_skip_all_undefined(void **state)
{
    struct rule *r = rule_new("undef");
    struct fx *f = fx_new(r);
    struct eval_agent *a;
    yajl_val j;

    r->undefined_skip = true;
    add_line(r, "reply_rate", 30, RULE_MAP_LINEAR, 0, 1);
    add_grade(r, "all", false, 0, NULL);
    add_payout(r, "always", NULL, "1", 0);
    a = fx_add(f, "x", 0);
    a->fig.inquiries = 0;
    fx_add(f, "y", 0)->fig.replied = 30;
    fx_run(f);
    const struct eval_snapshot *s = snap(f, "x");
    assert_true(s->eligible);
    assert_false(s->scored);
    assert_true(isnan(s->score));
    assert_null(s->grade);
    assert_int_equal(s->rank, 0);
    assert_int_equal(s->npayouts, 0);
    assert_int_equal(f->out.team_size, 1);
    assert_int_equal(snap(f, "y")->rank, 1);
    j = parse_json(s->json);
    assert_true(YAJL_IS_NULL(jget(j, "score", NULL)));
    assert_true(YAJL_IS_NULL(jget(j, "grade", NULL)));
    assert_true(YAJL_IS_NULL(jget(j, "rank", NULL)));
    assert_true(YAJL_IS_NULL(jget(j, "rank_bottom", NULL)));
    assert_int_equal(jnum(jget(j, "team_size", NULL)), 1);
    assert_int_equal(YAJL_GET_OBJECT(jget(j, "payouts", NULL))->len, 0);
    yajl_tree_free(j);
    fx_free(f);
}

/* ---- score rounding (rules.md "Arithmetic") ---- */

struct round_case {
    double weight;
    int64_t replied, inquiries;
    const char *score;  /* as written */
    const char *points; /* as written */
};

static const struct round_case round_cases[] = {
    {.weight = 29, .replied = 1, .inquiries = 200, .score = "0.15", .points = "0.15"},
    {.weight = 100, .replied = 1, .inquiries = 3, .score = "33.33", .points = "33.33"},
    {.weight = 100, .replied = 2, .inquiries = 3, .score = "66.67", .points = "66.67"},
    {.weight = 1.005, .replied = 1, .inquiries = 1, .score = "1.01", .points = "1.01"},
    {.weight = 0.285, .replied = 1, .inquiries = 1, .score = "0.29", .points = "0.29"},
    {.weight = 100, .replied = 1, .inquiries = 8, .score = "12.5", .points = "12.5"},
};

static void test_score_rounding(void **state)
{
    for (size_t i = 0; i < sizeof(round_cases) / sizeof(round_cases[0]); i++) {
        const struct round_case *c = &round_cases[i];
        struct rule *r = rule_new("round");
        struct fx *f = fx_new(r);
        struct eval_agent *a;
        yajl_val j;

        add_line(r, "reply_rate", c->weight, RULE_MAP_NONE, 0, 0);
        a = fx_add(f, "x", 0);
        a->fig.replied = c->replied;
        a->fig.inquiries = c->inquiries;
        fx_run(f);
        j = parse_json(f->out.snaps[0].json);
        assert_jnum_text(jget(j, "score", NULL), c->score);
        assert_jnum_text(jget(j, "points", "reply_rate"), c->points);
        assert_near(f->out.snaps[0].score, strtod(c->score, NULL));
        yajl_tree_free(j);
        fx_free(f);
    }
}

/* The score is the sum of the unrounded points, rounded once: 3 × 0.005 = 0.02, while
 * each line's points show as 0.01. */
static void test_score_sums_unrounded_points(void **state)
{
    struct rule *r = rule_new("sum");
    struct fx *f = fx_new(r);
    struct eval_agent *a;
    yajl_val j;

    add_line(r, "reply_rate", 1, RULE_MAP_NONE, 0, 0);
    add_line(r, "inquiry_conversion", 1, RULE_MAP_NONE, 0, 0);
    add_line(r, "payment_rate", 1, RULE_MAP_NONE, 0, 0);
    a = fx_add(f, "x", 0);
    a->fig.inquiries = 200;
    a->fig.replied = 1;
    a->fig.inquired_and_ordered = 1;
    a->fig.orders = 200;
    a->fig.paid_orders = 1;
    fx_run(f);
    j = parse_json(f->out.snaps[0].json);
    assert_jnum_text(jget(j, "score", NULL), "0.02");
    assert_jnum_text(jget(j, "points", "reply_rate"), "0.01");
    assert_jnum_text(jget(j, "points", "inquiry_conversion"), "0.01");
    assert_jnum_text(jget(j, "points", "payment_rate"), "0.01");
    yajl_tree_free(j);
    fx_free(f);
}

/* ---- grades ---- */

struct grade_case {
    int64_t sales_cents;
    const char *grade;
};

static const struct grade_case grade_cases[] = {
    {.sales_cents = 10000, .grade = "exceptional"},
    {.sales_cents = 9500, .grade = "exceptional"},
    {.sales_cents = 9499, .grade = "excellent"},
    {.sales_cents = 8500, .grade = "excellent"},
    {.sales_cents = 7000, .grade = "medium"},
    {.sales_cents = 5000, .grade = "needs_improvement"},
    {.sales_cents = 4999, .grade = "urgent"},
    {.sales_cents = 0, .grade = "urgent"},
};

static void test_grades_first_match(void **state)
{
    struct rule *r = sales_rule("grades");
    struct fx *f = fx_new(r);
    char id[32];

    plan1_grades(r);
    for (size_t i = 0; i < sizeof(grade_cases) / sizeof(grade_cases[0]); i++) {
        snprintf(id, sizeof(id), "g%zu", i);
        fx_add(f, id, grade_cases[i].sales_cents);
    }
    fx_run(f); /* 8 agents: under quotas_min_team, no quotas anyway */
    for (size_t i = 0; i < sizeof(grade_cases) / sizeof(grade_cases[0]); i++)
        assert_string_equal(f->out.snaps[i].grade, grade_cases[i].grade);
    fx_free(f);
}

/* Plan 2's levels: both reviews >= 90 (a `when`), else by score; none below 70. */
static void test_grades_when(void **state)
{
    struct rule *r = sales_rule("levels");
    struct fx *f = fx_new(r);

    add_grade(r, "senior", false, 0, "review.total.self >= 0.9 and review.total.manager >= 0.9");
    add_grade(r, "intermediate", true, 80, NULL);
    add_grade(r, "junior", true, 70, NULL);
    add_grade(r, "first", false, 0, "rank == 1 and score >= 99"); /* ranks are known */
    struct eval_agent *a = fx_add(f, "both90", 6000);
    add_review(a, "total", ROLE_SELF, 0.95);
    add_review(a, "total", ROLE_MANAGER, 0.9);
    a = fx_add(f, "self85", 9500);
    add_review(a, "total", ROLE_SELF, 0.85);
    add_review(a, "total", ROLE_MANAGER, 0.95);
    fx_add(f, "low", 6900);
    fx_add(f, "junior", 7000);
    fx_add(f, "top", 9900);
    fx_run(f);
    assert_string_equal(snap(f, "both90")->grade, "senior");
    assert_string_equal(snap(f, "self85")->grade, "intermediate");
    assert_null(snap(f, "low")->grade);
    assert_string_equal(snap(f, "junior")->grade, "junior");
    assert_string_equal(snap(f, "top")->grade, "intermediate");
    fx_free(f);
}

/* ---- ranks ---- */

static void test_ranks_ties(void **state)
{
    struct rule *r = sales_rule("ranks");
    struct fx *f = fx_new(r);

    r->eligible = px("inquiries >= 30");
    fx_add(f, "c", 8000);
    fx_add(f, "a", 9000);
    fx_add(f, "d", 7000);
    fx_add(f, "b", 8000);
    fx_add(f, "e", 10000)->fig.inquiries = 10; /* not eligible: not ranked */
    fx_run(f);
    assert_int_equal(f->out.team_size, 4);
    static const struct {
        const char *id;
        int rank, bottom;
        double pct;
    } want[] = {
        {"a", 1, 4, 100},
        {"b", 2, 2, 200.0 / 3},
        {"c", 2, 2, 200.0 / 3},
        {"d", 4, 1, 0},
    };
    for (size_t i = 0; i < 4; i++) {
        const struct eval_snapshot *s = snap(f, want[i].id);
        assert_true(s->scored);
        assert_int_equal(s->rank, want[i].rank);
        assert_int_equal(s->rank_bottom, want[i].bottom);
        assert_near(s->percentile, want[i].pct);
        assert_int_equal(s->team_size, 4);
    }
    const struct eval_snapshot *e = snap(f, "e");
    assert_false(e->eligible);
    assert_false(e->scored);
    assert_int_equal(e->rank, 0);
    assert_null(e->json);
    fx_free(f);
}

static void test_rank_single_agent(void **state)
{
    struct rule *r = sales_rule("one");
    struct fx *f = fx_new(r);

    fx_add(f, "solo", 4200);
    fx_run(f);
    assert_int_equal(f->out.snaps[0].rank, 1);
    assert_int_equal(f->out.snaps[0].rank_bottom, 1);
    assert_near(f->out.snaps[0].percentile, 100);
    fx_free(f);
}

/* Undefined eligibility is not eligible; `eligible` sees the score but not ranks. */
static void test_eligibility(void **state)
{
    static const struct {
        const char *expr;
        bool x, y;
    } cases[] = {
        {"target_completion > 0", true, false}, /* y has no target: undefined */
        {"score >= 50", true, false},
        {"absent_days <= 60", true, false},
        {"rank == 1", false, false}, /* not known yet: undefined */
        {"team.size >= 0", false, false},
        {"points.sales > 10 or period == \"2026-08\"", true, true},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct rule *r = sales_rule("elig");
        struct fx *f = fx_new(r);
        r->eligible = px(cases[i].expr);
        struct eval_agent *x = fx_add(f, "x", 6000);
        x->fig.target_cents = 100;
        struct eval_agent *y = fx_add(f, "y", 4000);
        y->fig.absent_days = 61;
        fx_run(f);
        if (snap(f, "x")->eligible != cases[i].x || snap(f, "y")->eligible != cases[i].y)
            fail_msg("%s: x %d y %d", cases[i].expr, snap(f, "x")->eligible,
                     snap(f, "y")->eligible);
        assert_int_equal(f->out.team_size, cases[i].x + cases[i].y);
        fx_free(f);
    }
}

/* ---- quotas ---- */

#define NQ 20

struct quota_case {
    const char *name;
    size_t n;
    int min_team;
    bool urgent_floor, ni_floor;
    bool caps;
    double score[NQ];
    int64_t inquiries[NQ]; /* 0: 30 */
    const char *want[NQ];
};

#define EXC "exceptional"
#define EXL "excellent"
#define MED "medium"
#define NI "needs_improvement"
#define URG "urgent"

static const struct quota_case quota_cases[] = {
    {
        /* 20 agents >= 95: 2 keep exceptional; the surplus cascades 3 / 13; the floor
         * takes the last 2 down to urgent */
        .name = "all exceptional",
        .n = 20,
        .min_team = 10,
        .urgent_floor = true,
        .caps = true,
        .score = {96, 96, 96, 96, 96, 96, 96, 96, 96, 96, 96, 96, 96, 96, 96, 96, 96, 96, 96, 96},
        .inquiries = {100, 99, 98, 97, 96, 95, 94, 93, 92, 91,
                      90,  89, 88, 87, 86, 85, 84, 83, 82, 81},
        .want = {EXC, EXC, EXL, EXL, EXL, MED, MED, MED, MED, MED,
                 MED, MED, MED, MED, MED, MED, MED, MED, URG, URG},
    },
    {
        /* 5 exceptional, 5 excellent, 10 medium by score: exceptional keeps 2, excellent
         * gets the 3 that fell (they rank higher) and pushes its own 5 into medium, which
         * keeps 13 of its 15; the last 2 fall to needs_improvement */
        .name = "cascade",
        .n = 20,
        .min_team = 10,
        .caps = true,
        .score = {99, 98, 97, 96, 95, 94, 93, 92, 91, 90, 84, 83, 82, 81, 80, 79, 78, 77, 76, 75},
        .want = {EXC, EXC, EXL, EXL, EXL, MED, MED, MED, MED, MED,
                 MED, MED, MED, MED, MED, MED, MED, MED, NI,  NI},
    },
    {
        .name = "cascade with urgent floor",
        .n = 20,
        .min_team = 10,
        .caps = true,
        .urgent_floor = true,
        .score = {99, 98, 97, 96, 95, 94, 93, 92, 91, 90, 84, 83, 82, 81, 80, 79, 78, 77, 76, 75},
        .want = {EXC, EXC, EXL, EXL, EXL, MED, MED, MED, MED, MED,
                 MED, MED, MED, MED, MED, MED, MED, MED, URG, URG},
    },
    {
        /* ties at the cap: more inquiries first, then agent_id */
        .name = "ties",
        .n = 10,
        .min_team = 10,
        .caps = true,
        .urgent_floor = true,
        .score = {97, 97, 97, 80, 80, 80, 80, 80, 80, 80},
        .inquiries = {50, 50, 60, 40, 40, 40, 40, 40, 40, 40},
        .want = {EXL, MED, EXC, MED, MED, MED, MED, MED, NI, URG},
    },
    {
        /* floors only move agents down: urgent {min 0.2}, needs_improvement {min 0.3} */
        .name = "floors",
        .n = 10,
        .min_team = 10,
        .urgent_floor = true,
        .ni_floor = true,
        .score = {80, 80, 80, 80, 80, 80, 80, 75, 60, 40},
        .want = {MED, MED, MED, MED, MED, MED, MED, NI, URG, URG},
    },
    {
        .name = "team below quotas_min_team",
        .n = 9,
        .min_team = 10,
        .caps = true,
        .urgent_floor = true,
        .score = {96, 96, 96, 96, 96, 96, 96, 96, 96},
        .want = {EXC, EXC, EXC, EXC, EXC, EXC, EXC, EXC, EXC},
    },
    {
        /* 9 agents, min team 9: floor(0.9) = 0 exceptional, 1 excellent,
         * floor(5.85) = 5 medium, the rest needs_improvement */
        .name = "team reaches quotas_min_team",
        .n = 9,
        .min_team = 9,
        .caps = true,
        .score = {96, 96, 96, 96, 96, 96, 96, 96, 96},
        .want = {EXL, MED, MED, MED, MED, MED, NI, NI, NI},
    },
};

static void test_quotas(void **state)
{
    for (size_t i = 0; i < sizeof(quota_cases) / sizeof(quota_cases[0]); i++) {
        const struct quota_case *c = &quota_cases[i];
        struct rule *r = sales_rule("quotas");
        struct fx *f = fx_new(r);
        char id[32];

        plan1_grades(r);
        r->quotas_min_team = c->min_team;
        if (c->caps) {
            add_quota(r, "exceptional", 0.10, -1);
            add_quota(r, "excellent", 0.15, -1);
            add_quota(r, "medium", 0.65, -1);
        }
        if (c->ni_floor)
            add_quota(r, "needs_improvement", -1, 0.30);
        if (c->urgent_floor)
            add_quota(r, "urgent", -1, c->ni_floor ? 0.20 : 0.10);
        /* input in reverse order: the result must not depend on it */
        for (size_t k = c->n; k-- > 0;) {
            snprintf(id, sizeof(id), "a%02zu", k);
            struct eval_agent *a = fx_add(f, id, (int64_t)(c->score[k] * 100));
            if (c->inquiries[k])
                a->fig.inquiries = c->inquiries[k];
        }
        fx_run(f);
        for (size_t k = 0; k < c->n; k++) {
            snprintf(id, sizeof(id), "a%02zu", k);
            const char *got = snap(f, id)->grade;
            if (!got || strcmp(got, c->want[k]) != 0)
                fail_msg("%s: %s is %s, want %s", c->name, id, got ? got : "(none)", c->want[k]);
        }
        fx_free(f);
    }
}

/* floor(0.57 × 100) is 57 (rules.md "Arithmetic"), though 0.57 × 100 < 57 in binary. */
static void test_quota_floor_12_digits(void **state)
{
    struct rule *r = sales_rule("q57");
    struct fx *f = fx_new(r);
    char id[32];
    int top = 0;

    add_grade(r, "top", true, 95, NULL);
    add_grade(r, "rest", false, 0, NULL);
    add_quota(r, "top", 0.57, -1);
    for (int k = 0; k < 100; k++) {
        snprintf(id, sizeof(id), "a%03d", k);
        fx_add(f, id, 9600);
    }
    fx_run(f);
    for (size_t k = 0; k < f->out.n; k++)
        top += strcmp(f->out.snaps[k].grade, "top") == 0;
    assert_int_equal(top, 57);
    assert_string_equal(snap(f, "a056")->grade, "top");
    assert_string_equal(snap(f, "a057")->grade, "rest");
    fx_free(f);
}

/* ---- payouts ---- */

struct payout_case {
    int64_t team_sales_cents;
    size_t nagents;
    double shared;
};

static const struct payout_case payout_cases[] = {
    {.team_sales_cents = 2900, .nagents = 1, .shared = 0.15}, /* 29.00 × 0.005 */
    {.team_sales_cents = 100000, .nagents = 3, .shared = 1.67},
    {.team_sales_cents = 290000, .nagents = 2, .shared = 7.25},
    {.team_sales_cents = 1000, .nagents = 4, .shared = 0.01}, /* 0.0125 */
};

static void test_payouts(void **state)
{
    for (size_t i = 0; i < sizeof(payout_cases) / sizeof(payout_cases[0]); i++) {
        const struct payout_case *c = &payout_cases[i];
        struct rule *r = sales_rule("pay");
        struct fx *f = fx_new(r);
        char id[32];

        add_payout(r, "rank1_bonus", "rank == 1", "100", 0);
        add_payout(r, "last_place_penalty", "rank_bottom == 1", "-100", 0);
        add_payout(r, "shared_commission", NULL, "team.sales * 0.005 / team.size", 0);
        add_payout(r, "undefined_amount", NULL, "team.aov", 0);
        add_payout(r, "undefined_when", "target_completion > 1", "5", 0);
        f->in.team.sales_cents = c->team_sales_cents;
        for (size_t k = 0; k < c->nagents; k++) {
            snprintf(id, sizeof(id), "a%zu", k);
            fx_add(f, id, (int64_t)(90 - 10 * k) * 100);
        }
        fx_run(f);
        for (size_t k = 0; k < c->nagents; k++) {
            const struct eval_snapshot *s = &f->out.snaps[k];
            bool first = k == 0, last = k + 1 == c->nagents;
            assert_near(paid(s, "shared_commission"), c->shared);
            assert_near(paid(s, "rank1_bonus"), first ? 100 : NAN);
            assert_near(paid(s, "last_place_penalty"), last ? -100 : NAN);
            assert_true(isnan(paid(s, "undefined_amount")));
            assert_true(isnan(paid(s, "undefined_when")));
            assert_int_equal(s->npayouts, 1 + first + last);
        }
        /* in the snapshot: names in file order, amounts as the cents read */
        yajl_val j = parse_json(f->out.snaps[0].json);
        yajl_val p = jget(j, "payouts", NULL);
        assert_string_equal(YAJL_GET_OBJECT(p)->keys[0], "rank1_bonus");
        assert_jnum_text(jget(j, "payouts", "rank1_bonus"), "100");
        assert_near(jnum(jget(j, "payouts", "shared_commission")), c->shared);
        assert_false(jhas(j, "payouts", "undefined_amount"));
        yajl_tree_free(j);
        fx_free(f);
    }
}

struct streak_case {
    int prev;      /* streak of the previous closed period */
    bool first;    /* x ranks first this period */
    bool eligible; /* x is scored at all */
    bool pays;
    int streak; /* stored for the next period */
};

/* `for: 3` pays once when the streak reaches 3, then the streak starts again. */
static const struct streak_case payout_streaks[] = {
    {.prev = 0, .first = true, .eligible = true, .pays = false, .streak = 1},
    {.prev = 1, .first = true, .eligible = true, .pays = false, .streak = 2},
    {.prev = 2, .first = true, .eligible = true, .pays = true, .streak = 0},
    {.prev = 0, .first = true, .eligible = true, .pays = false, .streak = 1}, /* after paying */
    {.prev = 2, .first = false, .eligible = true, .pays = false, .streak = 0},
    {.prev = 2, .first = true, .eligible = false, .pays = false, .streak = 0},
    {.prev = 7, .first = true, .eligible = true, .pays = true, .streak = 0},
};

static void test_payout_for(void **state)
{
    for (size_t i = 0; i < sizeof(payout_streaks) / sizeof(payout_streaks[0]); i++) {
        const struct streak_case *c = &payout_streaks[i];
        struct rule *r = sales_rule("pay3");
        struct fx *f = fx_new(r);
        int prev[1] = {c->prev};

        r->eligible = px("inquiries >= 30");
        add_payout(r, "first_three_months", "rank == 1", "200", 3);
        struct eval_agent *x = fx_add(f, "x", c->first ? 9000 : 1000);
        x->streaks = prev;
        if (!c->eligible)
            x->fig.inquiries = 0;
        fx_add(f, "y", 5000);
        fx_run(f);
        const struct eval_snapshot *s = snap(f, "x");
        assert_near(paid(s, "first_three_months"), c->pays ? 200 : NAN);
        assert_int_equal(s->streaks[0], c->streak);
        /* y has no streak input: 0 */
        assert_int_equal(snap(f, "y")->streaks[0], c->first && c->eligible ? 0 : 1);
        fx_free(f);
    }
}

/* ---- alerts ---- */

struct alert_case {
    int prev;
    bool last;
    bool eligible;
    bool fires;
    int streak;
};

/* `for: 3` fires in every period where the streak is >= 3. */
static const struct alert_case alert_streaks[] = {
    {.prev = 0, .last = true, .eligible = true, .fires = false, .streak = 1},
    {.prev = 1, .last = true, .eligible = true, .fires = false, .streak = 2},
    {.prev = 2, .last = true, .eligible = true, .fires = true, .streak = 3},
    {.prev = 3, .last = true, .eligible = true, .fires = true, .streak = 4},
    {.prev = 4, .last = false, .eligible = true, .fires = false, .streak = 0},
    {.prev = 2, .last = true, .eligible = false, .fires = false, .streak = 0}, /* break */
};

static void test_alert_for(void **state)
{
    for (size_t i = 0; i < sizeof(alert_streaks) / sizeof(alert_streaks[0]); i++) {
        const struct alert_case *c = &alert_streaks[i];
        struct rule *r = sales_rule("alerts");
        struct fx *f = fx_new(r);
        int prev[3] = {9, c->prev, 0};

        r->eligible = px("inquiries >= 30");
        add_alert(r, "ScoreBelow70", "score < 70", NULL, NULL, 0, false);
        add_alert(r, "LastPlaceThreeMonths", "rank_bottom == 1", "critical", NULL, 3, false);
        add_payout(r, "p", "rank == 1", "1", 0);
        struct eval_agent *x = fx_add(f, "x", c->last ? 1000 : 9000);
        x->streaks = prev;
        if (!c->eligible)
            x->fig.inquiries = 0;
        fx_add(f, "y", 5000);
        fx_run(f);
        const struct eval_snapshot *s = snap(f, "x");
        if (firing(s, "LastPlaceThreeMonths") != c->fires)
            fail_msg("case %zu: fires %d", i, !c->fires);
        assert_int_equal(s->streaks[1], c->streak);
        /* ScoreBelow70 has no `for`: fires whenever it holds; its streak still counts */
        assert_int_equal(firing(s, "ScoreBelow70"), c->last && c->eligible);
        assert_int_equal(s->streaks[0], c->last && c->eligible ? 10 : 0);
        /* the payout's streak follows the alerts' */
        assert_int_equal(s->streaks[2], !c->last && c->eligible ? 1 : 0);
        fx_free(f);
    }
}

/* Live evaluations fire `live: true` alerts only; the would-be streak still counts. */
static void test_alert_live(void **state)
{
    for (int final = 0; final <= 1; final++) {
        struct rule *r = sales_rule("live");
        struct fx *f = fx_new(r);
        int prev[2] = {2, 0};

        add_alert(r, "Low", "score < 70", NULL, NULL, 3, false);
        add_alert(r, "SlowReplies", "response_time_mean_s > 40", "info", NULL, 0, true);
        struct eval_agent *x = fx_add(f, "x", 1000);
        x->fig.waits = 1;
        x->fig.wait_sum_ms = 45000;
        x->streaks = prev;
        f->in.final = final;
        fx_run(f);
        const struct eval_snapshot *s = snap(f, "x");
        assert_int_equal(firing(s, "Low"), final);
        assert_true(firing(s, "SlowReplies"));
        assert_int_equal(s->streaks[0], 3);
        assert_int_equal(s->nalerts, final ? 2 : 1);
        fx_free(f);
    }
}

/* The alert's value: the expression's left side for one comparison, else the score. */
static void test_alert_values(void **state)
{
    static const struct {
        const char *expr;
        double value;
    } cases[] = {
        {"score < 70", 10},
        {"response_time_mean_s > 40", 45},
        {"(sales + 2) / 2 >= 5", 6},
        {"rank_bottom == 1 and score < 50", 10},
        {"not (score > 50)", 10},
        {"grade == \"urgent\"", 10},
        {"max(response_time_mean_s, 50) != 0", 50},
        {"team.size<=1", 1},
    };
    struct rule *r = sales_rule("values");
    struct fx *f = fx_new(r);

    add_grade(r, "urgent", false, 0, NULL);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char name[32];
        snprintf(name, sizeof(name), "A%zu", i);
        add_alert(r, name, cases[i].expr, NULL, NULL, 0, false);
    }
    struct eval_agent *x = fx_add(f, "x", 1000);
    x->fig.waits = 1;
    x->fig.wait_sum_ms = 45000;
    fx_run(f);
    const struct eval_snapshot *s = snap(f, "x");
    assert_int_equal(s->nalerts, sizeof(cases) / sizeof(cases[0]));
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (!near(s->alert_values[i], cases[i].value))
            fail_msg("%s: value %g, want %g", cases[i].expr, s->alert_values[i], cases[i].value);
        assert_int_equal(s->alert_index[i], i);
    }
    fx_free(f);
}

/* ---- names ---- */

struct prev_case {
    bool scored;
    bool with_grade;
    bool wrong_type;
    double score_paid; /* NAN: not paid */
    bool urgent_paid;
};

static void test_prev(void **state)
{
    static const struct prev_case cases[] = {
        {.scored = true, .with_grade = true, .score_paid = 42.5, .urgent_paid = true},
        {.scored = true, .with_grade = false, .score_paid = 42.5, .urgent_paid = false},
        {.scored = false, .with_grade = true, .score_paid = NAN, .urgent_paid = false},
        {.scored = true,
         .with_grade = true,
         .wrong_type = true,
         .score_paid = NAN,
         .urgent_paid = true},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct prev_case *c = &cases[i];
        struct rule *r = sales_rule("prev");
        struct fx *f = fx_new(r);
        char *names[] = {"score", "grade"};
        struct expr_value values[] = {
            {.defined = true,
             .type = c->wrong_type ? EXPR_STR : EXPR_NUM,
             .num = 42.5,
             .str = "42.5"},
            {.defined = true, .type = EXPR_STR, .str = "urgent"},
        };

        add_payout(r, "prev_score", NULL, "prev.score", 0);
        add_payout(r, "was_urgent", "prev.grade == \"urgent\"", "1", 0);
        add_payout(r, "prev_missing", NULL, "prev.sales", 0);
        add_payout(r, "improved", "score > prev.score", "2", 0);
        struct eval_agent *x = fx_add(f, "x", 5000);
        x->prev = (struct eval_prev){
            .scored = c->scored, .n = c->with_grade ? 2 : 1, .names = names, .values = values};
        fx_run(f);
        const struct eval_snapshot *s = snap(f, "x");
        assert_near(paid(s, "prev_score"), c->score_paid);
        assert_near(paid(s, "was_urgent"), c->urgent_paid ? 1 : NAN);
        assert_true(isnan(paid(s, "prev_missing")));
        assert_near(paid(s, "improved"), isnan(c->score_paid) ? NAN : 2);
        fx_free(f);
    }
}

struct name_case {
    const char *when, *amount;
    double want; /* NAN: not paid */
};

static const struct name_case name_cases[] = {
    {.amount = "period_index", .want = 8},
    {.when = "period == \"2026-08\"", .amount = "1", .want = 1},
    {.when = "period == \"2026-09\"", .amount = "1", .want = NAN},
    {.amount = "team.size", .want = 3},
    {.amount = "rank", .want = 2},
    {.amount = "rank_bottom", .want = 2},
    {.amount = "percentile", .want = 50},
    {.amount = "score", .want = 70},
    {.amount = "points.sales", .want = 65},
    {.amount = "points.reply_rate", .want = 5},
    {.amount = "reply_rate", .want = 0.5},
    {.amount = "team.inquiries", .want = 77},
    {.amount = "team.reply_rate", .want = 0},
    {.amount = "team.aov", .want = NAN}, /* no paying customer: undefined, not paid */
    {.amount = "absent_days", .want = 3},
    {.amount = "review.execution", .want = 0.83},
    {.amount = "review.execution.self", .want = 0.9},
    {.amount = "aov", .want = 32.5},
    {.when = "eligible", .amount = "1", .want = 1},
    {.when = "grade == \"excellent\"", .amount = "1", .want = 1},
    {.amount = "score / 0", .want = NAN},
    {.amount = "1 / 3", .want = 0.33},
};

static void test_names(void **state)
{
    struct rule *r = rule_new("names");
    struct fx *f = fx_new(r);
    char name[32];

    add_line(r, "sales", 100, RULE_MAP_LINEAR, 0, 100);
    add_line(r, "reply_rate", 10, RULE_MAP_NONE, 0, 0);
    r->has_assessor[ROLE_SELF] = r->has_assessor[ROLE_MANAGER] = true;
    r->assessor[ROLE_SELF] = 0.3;
    r->assessor[ROLE_MANAGER] = 0.7;
    add_grade(r, "excellent", true, 65, NULL);
    add_grade(r, "rest", false, 0, NULL);
    for (size_t i = 0; i < sizeof(name_cases) / sizeof(name_cases[0]); i++) {
        snprintf(name, sizeof(name), "n%02zu", i);
        add_payout(r, name, name_cases[i].when, name_cases[i].amount, 0);
    }
    f->in.team.inquiries = 77;
    fx_add(f, "top", 14000);                     /* 100 points */
    struct eval_agent *x = fx_add(f, "x", 6500); /* 65 + reply_rate 0.5 × 10 = 70 */
    x->fig.inquiries = 2;
    x->fig.replied = 1;
    x->fig.paid_customers = 2; /* aov 32.5 */
    x->fig.absent_days = 3;
    add_review(x, "execution", ROLE_SELF, 0.9);
    add_review(x, "execution", ROLE_MANAGER, 0.8);
    fx_add(f, "bottom", 1000);
    fx_run(f);
    const struct eval_snapshot *s = snap(f, "x");
    assert_near(s->score, 70);
    for (size_t i = 0; i < sizeof(name_cases) / sizeof(name_cases[0]); i++) {
        snprintf(name, sizeof(name), "n%02zu", i);
        double got = paid(s, name), want = name_cases[i].want;
        if (!(isnan(want) ? isnan(got) : near(got, want)))
            fail_msg("%s / %s: got %g, want %g", name_cases[i].when ? name_cases[i].when : "-",
                     name_cases[i].amount, got, want);
    }
    fx_free(f);
}

/* ---- the snapshot record ---- */

/* Agent x1 of the worked example (spec/example) under a plan-2 style rule. */
static struct fx *plan2_fx(bool final)
{
    struct rule *r = rule_new("plan2");
    struct fx *f = fx_new(r);
    struct rule_score_line *l;
    struct eval_agent *a;

    r->has_assessor[ROLE_SELF] = r->has_assessor[ROLE_MANAGER] = true;
    r->assessor[ROLE_SELF] = 0.3;
    r->assessor[ROLE_MANAGER] = 0.7;
    add_line(r, "target_completion", 30, RULE_MAP_LINEAR, 0, 1);
    add_line(r, "inquiry_conversion", 30, RULE_MAP_LINEAR, 0, 0.6);
    add_line(r, "reply_rate", 5, RULE_MAP_LINEAR, 0.8, 1.0);
    l = add_line(r, "response_time_mean_s", 5, RULE_MAP_BANDS, 0, 0);
    add_band(l, true, 30, 1.0);
    add_band(l, true, 40, 0.8);
    add_band(l, true, 60, 0.4);
    add_band(l, false, 0, 0);
    add_line(r, "review.execution", 10, RULE_MAP_NONE, 0, 0);
    add_line(r, "review.follow_up", 5, RULE_MAP_NONE, 0, 0);
    plan1_grades(r);
    add_payout(r, "rank1_bonus", "rank == 1", "100", 0);
    add_alert(r, "ScoreBelow70", "score < 70", NULL, "{{agent}} scored {{score}} in {{period}}", 0,
              false);
    add_alert(r, "SlowReplies", "response_time_mean_s > 30", "info", NULL, 0, true);
    add_alert(r, "Odd", "score < 100", "critical",
              "{{ agent }} {{nope}} {{team.size}} {{grade}} {{ value }} {{prev.score}} "
              "{{review.follow_up}} {{shop}}/{{rule}}/{{alert}} {{unclosed",
              0, false);
    add_alert(r, "NeverFires", "score > 100", NULL, NULL, 0, false);
    f->in.final = final;
    a = fx_add(f, "x1", 12990);
    a->fig = (struct kpi_figures){
        .inquiries = 2,
        .replied = 1,
        .waits = 2,
        .wait_sum_ms = 75000,
        .first_waits = 1,
        .first_wait_sum_ms = 45000,
        .wait_p90_ms = 45000,
        .ordered = 1,
        .inquired_and_ordered = 1,
        .paid_customers = 1,
        .orders = 1,
        .paid_orders = 1,
        .refunded_orders = 1,
        .order_amount_cents = 12990,
        .sales_cents = 12990,
        .refund_amount_cents = 2000,
        .target_cents = 100000,
        .reviews_n = 1,
        .reviews = {{.item = "execution", .role = ROLE_MANAGER, .value = 0.8}},
    };
    return f;
}

static const char *const snapshot_keys[] = {
    "snapshot_id",  "rule",        "rule_sha256", "version", "shop_id", "agent_id", "period",
    "period_start", "period_end",  "final",       "metrics", "points",  "score",    "grade",
    "rank",         "rank_bottom", "team_size",   "payouts", "alerts",  "explain",
};

static void test_snapshot_json(void **state)
{
    struct fx *f = plan2_fx(true);
    yajl_val j, v;
    char want_sha[65];

    fx_run(f);
    const struct eval_snapshot *s = &f->out.snaps[0];
    j = parse_json(s->json);

    /* every field of rules.md, in this order, and nothing else */
    assert_true(YAJL_IS_OBJECT(j));
    assert_int_equal(YAJL_GET_OBJECT(j)->len, sizeof(snapshot_keys) / sizeof(snapshot_keys[0]));
    for (size_t i = 0; i < YAJL_GET_OBJECT(j)->len; i++)
        assert_string_equal(YAJL_GET_OBJECT(j)->keys[i], snapshot_keys[i]);

    assert_jstr(jget(j, "snapshot_id", NULL),
                "e79b7e63c8128d15e1268ca3cf8058a3bddc82b6d300b8626dae6520a284aedd");
    assert_jstr(jget(j, "rule", NULL), "plan2");
    snprintf(want_sha, sizeof(want_sha), "%064d", 7);
    assert_jstr(jget(j, "rule_sha256", NULL), want_sha);
    assert_jstr(jget(j, "version", NULL), "1.0.0");
    assert_jstr(jget(j, "shop_id", NULL), "shop1");
    assert_jstr(jget(j, "agent_id", NULL), "x1");
    assert_jstr(jget(j, "period", NULL), "2026-08");
    assert_jstr(jget(j, "period_start", NULL), "2026-08-01T00:00:00+08:00");
    assert_jstr(jget(j, "period_end", NULL), "2026-09-01T00:00:00+08:00");
    assert_true(YAJL_IS_TRUE(jget(j, "final", NULL)));

    /* metrics: the KPIs (absent_days is not one), then the review items, sorted */
    v = jget(j, "metrics", NULL);
    assert_int_equal(YAJL_GET_OBJECT(v)->len, KPI_COUNT_ALL - 1 + 2);
    assert_string_equal(YAJL_GET_OBJECT(v)->keys[0], "inquiries");
    assert_string_equal(YAJL_GET_OBJECT(v)->keys[KPI_COUNT_ALL - 1], "review.execution");
    assert_string_equal(YAJL_GET_OBJECT(v)->keys[KPI_COUNT_ALL], "review.follow_up");
    assert_false(jhas(j, "metrics", "absent_days"));
    assert_jnum_text(jget(j, "metrics", "inquiries"), "2");
    assert_jnum_text(jget(j, "metrics", "sales"), "129.9");
    assert_jnum_text(jget(j, "metrics", "aov"), "129.9");
    assert_jnum_text(jget(j, "metrics", "refund_amount"), "20");
    assert_jnum_text(jget(j, "metrics", "reply_rate"), "0.5");
    assert_jnum_text(jget(j, "metrics", "response_time_mean_s"), "37.5");
    assert_jnum_text(jget(j, "metrics", "response_time_p90_s"), "45");
    assert_jnum_text(jget(j, "metrics", "target_completion"), "0.1299");
    assert_jnum_text(jget(j, "metrics", "churn_rate"), "0.5");
    assert_jnum_text(jget(j, "metrics", "review.execution"), "0.8");
    assert_true(YAJL_IS_NULL(jget(j, "metrics", "review.follow_up")));
    for (int i = 0; i < KPI_COUNT_ALL; i++)
        if (i != KPI_ABSENT_DAYS)
            assert_true(jhas(j, "metrics", kpi_name((enum kpi_id)i)));

    /* points, rounded: 3.897 + 25 + 0 + 4 + 8 + 0 = 40.897 → 40.9 */
    assert_jnum_text(jget(j, "points", "target_completion"), "3.9");
    assert_jnum_text(jget(j, "points", "inquiry_conversion"), "25");
    assert_jnum_text(jget(j, "points", "reply_rate"), "0");
    assert_jnum_text(jget(j, "points", "response_time_mean_s"), "4");
    assert_jnum_text(jget(j, "points", "review.execution"), "8");
    assert_jnum_text(jget(j, "points", "review.follow_up"), "0");
    assert_jnum_text(jget(j, "score", NULL), "40.9");
    assert_jstr(jget(j, "grade", NULL), "urgent");
    assert_jnum_text(jget(j, "rank", NULL), "1");
    assert_jnum_text(jget(j, "rank_bottom", NULL), "1");
    assert_jnum_text(jget(j, "team_size", NULL), "1");
    assert_int_equal(YAJL_GET_OBJECT(jget(j, "payouts", NULL))->len, 1);
    assert_jnum_text(jget(j, "payouts", "rank1_bonus"), "100");
    v = jget(j, "alerts", NULL);
    assert_int_equal(YAJL_GET_ARRAY(v)->len, 3);
    assert_jstr(YAJL_GET_ARRAY(v)->values[0], "ScoreBelow70");
    assert_jstr(YAJL_GET_ARRAY(v)->values[1], "SlowReplies");
    assert_jstr(YAJL_GET_ARRAY(v)->values[2], "Odd");

    /* explain: one object per score line */
    v = jget(j, "explain", NULL);
    assert_int_equal(YAJL_GET_ARRAY(v)->len, 6);
    yajl_val e = YAJL_GET_ARRAY(v)->values[0];
    assert_jstr(jget(e, "kpi", NULL), "target_completion");
    assert_jnum_text(jget(e, "value", NULL), "0.1299");
    assert_jnum_text(jget(e, "numerator", NULL), "129.9");
    assert_jnum_text(jget(e, "denominator", NULL), "1000");
    assert_jstr(jget(e, "mapping", NULL), "linear");
    assert_true(YAJL_IS_NULL(jget(e, "band", NULL)));
    assert_jnum_text(jget(e, "share", NULL), "0.1299");
    assert_jnum_text(jget(e, "weight", NULL), "30");
    assert_near(jnum(jget(e, "points", NULL)), 3.897);
    e = YAJL_GET_ARRAY(v)->values[3];
    assert_jstr(jget(e, "kpi", NULL), "response_time_mean_s");
    assert_jnum_text(jget(e, "numerator", NULL), "75");
    assert_jnum_text(jget(e, "denominator", NULL), "2");
    assert_jstr(jget(e, "mapping", NULL), "bands");
    assert_jnum_text(jget(e, "band", NULL), "1");
    assert_jnum_text(jget(e, "share", NULL), "0.8");
    assert_jnum_text(jget(e, "points", NULL), "4");
    e = YAJL_GET_ARRAY(v)->values[4];
    assert_jstr(jget(e, "kpi", NULL), "review.execution");
    assert_jnum_text(jget(e, "numerator", NULL), "0.56");
    assert_jnum_text(jget(e, "denominator", NULL), "0.7");
    assert_jstr(jget(e, "mapping", NULL), "none");
    e = YAJL_GET_ARRAY(v)->values[5];
    assert_true(YAJL_IS_NULL(jget(e, "value", NULL)));
    assert_jnum_text(jget(e, "denominator", NULL), "0");
    assert_jnum_text(jget(e, "points", NULL), "0");
    yajl_tree_free(j);
    fx_free(f);
}

/* The same input gives the same id and the same bytes; the final flag changes the id. */
static void test_snapshot_determinism(void **state)
{
    struct fx *f1 = plan2_fx(true), *f2 = plan2_fx(true), *f3 = plan2_fx(false);
    char id[65];

    fx_run(f1);
    fx_run(f2);
    fx_run(f3);
    assert_string_equal(f1->out.snaps[0].json, f2->out.snaps[0].json);
    assert_string_equal(f1->out.snaps[0].snapshot_id,
                        "e79b7e63c8128d15e1268ca3cf8058a3bddc82b6d300b8626dae6520a284aedd");
    assert_string_equal(f3->out.snaps[0].snapshot_id,
                        "2da7fbc7aeeeb165c2dabad9319ae1a8f32a5b5e2d949dd5a29ff6184476c2fe");
    eval_snapshot_id("plan2", "shop1", "x1", "2026-08", false, id);
    assert_string_equal(id, f3->out.snaps[0].snapshot_id);
    /* running again on the same output is the same too */
    fx_run(f1);
    assert_string_equal(f1->out.snaps[0].json, f2->out.snaps[0].json);
    yajl_val j = parse_json(f3->out.snaps[0].json);
    assert_true(YAJL_IS_FALSE(jget(j, "final", NULL)));
    /* live: only the live alert fires */
    assert_int_equal(YAJL_GET_ARRAY(jget(j, "alerts", NULL))->len, 1);
    yajl_tree_free(j);
    fx_free(f1);
    fx_free(f2);
    fx_free(f3);
}

struct alert_json_case {
    size_t alert;
    const char *state, *severity, *summary, *value;
};

static const struct alert_json_case alert_json_cases[] = {
    {.alert = 0,
     .state = "firing",
     .severity = "warning",
     .summary = "x1 scored 40.9 in 2026-08",
     .value = "40.9"},
    {.alert = 1,
     .state = "firing",
     .severity = "info",
     .summary = "SlowReplies for agent x1 in 2026-08: value 37.5",
     .value = "37.5"},
    {.alert = 2,
     .state = "firing",
     .severity = "critical",
     .summary = "x1 {{nope}} 1 urgent 40.9 n/a n/a shop1/plan2/Odd {{unclosed",
     .value = "40.9"},
    {.alert = 3,
     .state = "resolved",
     .severity = "warning",
     .summary = "NeverFires for agent x1 in 2026-08: value 40.9",
     .value = "40.9"},
};

static void test_alert_json(void **state)
{
    struct fx *f = plan2_fx(true);

    fx_run(f);
    const struct eval_snapshot *s = &f->out.snaps[0];
    for (size_t i = 0; i < sizeof(alert_json_cases) / sizeof(alert_json_cases[0]); i++) {
        const struct alert_json_case *c = &alert_json_cases[i];
        char *text = eval_alert_json(&f->in, s, c->alert, c->state, f->in.period.end_ms);
        yajl_val j = parse_json(text);
        static const char *const keys[] = {"rule",   "alert", "severity", "shop_id", "agent_id",
                                           "period", "value", "summary",  "state",   "starts_at"};
        assert_int_equal(YAJL_GET_OBJECT(j)->len, 10);
        for (size_t k = 0; k < 10; k++)
            assert_string_equal(YAJL_GET_OBJECT(j)->keys[k], keys[k]);
        assert_jstr(jget(j, "rule", NULL), "plan2");
        assert_jstr(jget(j, "alert", NULL), f->r->alerts[c->alert].name);
        assert_jstr(jget(j, "severity", NULL), c->severity);
        assert_jstr(jget(j, "shop_id", NULL), "shop1");
        assert_jstr(jget(j, "agent_id", NULL), "x1");
        assert_jstr(jget(j, "period", NULL), "2026-08");
        assert_jnum_text(jget(j, "value", NULL), c->value);
        assert_jstr(jget(j, "summary", NULL), c->summary);
        assert_jstr(jget(j, "state", NULL), c->state);
        assert_jstr(jget(j, "starts_at", NULL), "2026-09-01T00:00:00+08:00");
        yajl_tree_free(j);
        free(text);
    }
    assert_null(eval_alert_json(&f->in, s, 4, "firing", 0));
    assert_null(eval_alert_json(&f->in, s, 0, NULL, 0));
    fx_free(f);
}

/* Ids are arbitrary bytes: the JSON stays valid (escapes; invalid UTF-8 becomes U+FFFD). */
static void test_json_strings(void **state)
{
    struct rule *r = sales_rule("strings");
    struct fx *f = fx_new(r);
    yajl_val j;

    f->in.shop_id = "sh\"op\\\n\x01";
    f->in.version = NULL;
    fx_add(f, "x\xff\xc3\xa9", 5000);
    fx_run(f);
    j = parse_json(f->out.snaps[0].json);
    assert_jstr(jget(j, "shop_id", NULL), "sh\"op\\\n\x01");
    assert_jstr(jget(j, "agent_id", NULL), "x\xef\xbf\xbd\xc3\xa9");
    assert_true(YAJL_IS_NULL(jget(j, "version", NULL)));
    yajl_tree_free(j);
    fx_free(f);
}

static void test_errors(void **state)
{
    struct rule *r = sales_rule("bad");
    struct fx *f = fx_new(r);
    struct eval_output out = {.n = 99};
    char err[256] = "";

    plan1_grades(r);
    add_quota(r, "nope", 0.1, -1);
    fx_add(f, "x", 100);
    f->in.agents = f->ag;
    f->in.nagents = f->n;
    assert_int_equal(eval_run(&f->in, &out, err, sizeof(err)), -1);
    assert_string_equal(err, "cannot evaluate rule 'bad': quota names unknown grade 'nope'");
    assert_null(out.snaps);
    assert_int_equal(out.n, 0);

    f->in.rule = NULL;
    assert_int_equal(eval_run(&f->in, &out, err, sizeof(err)), -1);
    assert_string_equal(err, "cannot evaluate: no rule, shop or agents given");
    f->in.rule = r;
    f->ag[0].agent_id = NULL;
    r->nquotas = 0;
    assert_int_equal(eval_run(&f->in, &out, err, sizeof(err)), -1);
    assert_string_equal(err, "cannot evaluate rule 'bad': agent 0 has no agent_id");
    r->nquotas = 1;
    eval_output_release(NULL);
    eval_output_release(&out);
    fx_free(f);
}

/* No agents: an empty output, not an error. */
static void test_empty_shop(void **state)
{
    struct fx *f = fx_new(sales_rule("empty"));

    fx_run(f);
    assert_int_equal(f->out.n, 0);
    assert_int_equal(f->out.team_size, 0);
    fx_free(f);
}

/* ---- shipped plans, loaded by rules/rule.c ---- */

static struct rule *load_fixture(const char *file)
{
    char path[4096], err[512] = "";
    const char *slash = strrchr(__FILE__, '/');
    struct rule *r;

    snprintf(path, sizeof(path), "%.*s/../fixtures/rules/%s", slash ? (int)(slash - __FILE__) : 1,
             slash ? __FILE__ : ".", file);
    r = rule_load_file(path, err, sizeof(err));
    if (!r)
        fail_msg("%s", err);
    return r;
}

/* Plan 1: 20 agents graded from the indirect manager's decided score, with the file's
 * quotas (exceptional 10 %, excellent 15 %, medium 65 %, needs_improvement 10 %, urgent
 * at least 10 %) and its alerts. */
static void test_plan1_fixture(void **state)
{
    static const double total[NQ] = {0.99, 0.98, 0.97, 0.96, 0.95, 0.94, 0.93, 0.92, 0.91, 0.90,
                                     0.84, 0.83, 0.82, 0.81, 0.80, 0.79, 0.78, 0.77, 0.76, 0.75};
    static const char *const want[NQ] = {EXC, EXC, EXL, EXL, EXL, MED, MED, MED, MED, MED,
                                         MED, MED, MED, MED, MED, MED, MED, MED, URG, URG};
    struct rule *r = load_fixture("plan1.yaml");
    struct fx *f = fx_new(r);
    f->loaded = true;
    char id[32];
    int streaks[NQ][32] = {{0}};

    assert_int_equal(period_from_label("2026-H1", &f->in.period), 0);
    assert_true(r->nalerts + r->npayouts <= 32);
    for (size_t k = 0; k < NQ; k++) {
        snprintf(id, sizeof(id), "a%02zu", k);
        struct eval_agent *a = fx_add(f, id, 0);
        add_review(a, "total", ROLE_INDIRECT_MANAGER, total[k]);
        add_review(a, "total", ROLE_SELF, 0.1); /* not an assessor of this file */
        a->streaks = streaks[k];
    }
    fx_run(f);
    for (size_t k = 0; k < NQ; k++) {
        snprintf(id, sizeof(id), "a%02zu", k);
        const struct eval_snapshot *s = snap(f, id);
        assert_near(s->score, total[k] * 100);
        if (strcmp(s->grade, want[k]) != 0)
            fail_msg("%s is %s, want %s", id, s->grade, want[k]);
        assert_int_equal(firing(s, "AllowanceUp"), k < 2);
        assert_int_equal(firing(s, "AllowanceDown"), k >= 18);
        assert_int_equal(firing(s, "InterviewAndEvidence"), k < 2 || k >= 18);
        assert_int_equal(firing(s, "TalentPool"), k < 2);          /* percentile >= 90 */
        assert_int_equal(firing(s, "DemotionCandidate"), k >= 18); /* percentile <= 10 */
        assert_int_equal(firing(s, "TrainingTarget"), k >= 16);    /* percentile <= 20 */
    }
    /* the summary of an alert of the file */
    const struct eval_snapshot *s = snap(f, "a19");
    for (size_t i = 0; i < r->nalerts; i++) {
        if (strcmp(r->alerts[i].name, "AllowanceDown") != 0)
            continue;
        char *text = eval_alert_json(&f->in, s, i, "firing", f->in.period.end_ms);
        yajl_val j = parse_json(text);
        assert_jstr(jget(j, "summary", NULL),
                    "a19 needs urgent improvement in 2026-H1: allowance down one step");
        assert_jstr(jget(j, "period", NULL), "2026-H1");
        yajl_tree_free(j);
        free(text);
    }
    fx_free(f);
}

/* Plan 5: eligibility by absence, the shared commission over the agents scored, and the
 * one-off bonus for three months first. */
static void test_plan5_fixture(void **state)
{
    struct rule *r = load_fixture("plan5.yaml");
    struct fx *f = fx_new(r);
    f->loaded = true;
    size_t bonus = SIZE_MAX;
    int streaks[3][8] = {{0}};

    assert_true(r->nalerts + r->npayouts <= 8);
    for (size_t i = 0; i < r->npayouts; i++)
        if (strcmp(r->payouts[i].name, "first_place_bonus") == 0)
            bonus = r->nalerts + i;
    assert_true(bonus != SIZE_MAX);
    streaks[0][bonus] = 2;
    f->in.team.sales_cents = 290000; /* every agent's sales, eligible or not */
    struct eval_agent *a = fx_add(f, "first", 150000);
    a->fig.target_cents = 100000;
    a->streaks = streaks[0];
    a = fx_add(f, "second", 100000);
    a->fig.target_cents = 200000;
    a->streaks = streaks[1];
    a = fx_add(f, "away", 40000);
    a->fig.absent_days = 61;
    a->streaks = streaks[2];
    fx_run(f);
    assert_int_equal(f->out.team_size, 2);
    assert_near(paid(snap(f, "first"), "shared_commission"), 7.25); /* 2900 × 0.005 / 2 */
    assert_near(paid(snap(f, "second"), "shared_commission"), 7.25);
    assert_near(paid(snap(f, "first"), "first_place_bonus"), 200);
    assert_int_equal(snap(f, "first")->streaks[bonus], 0);
    assert_true(isnan(paid(snap(f, "second"), "first_place_bonus")));
    assert_false(snap(f, "away")->eligible);
    assert_null(snap(f, "away")->json);
    assert_int_equal(snap(f, "away")->npayouts, 0);
    fx_free(f);
}

int main(void)
{
    char err[256];

    if (period_tz_set("Asia/Shanghai", err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_linear),
        cmocka_unit_test(test_linear_uncapped_ratio),
        cmocka_unit_test(test_bands),
        cmocka_unit_test(test_no_mapping_reviews),
        cmocka_unit_test(test_reviews_no_assessors_and_roles),
        cmocka_unit_test(test_undefined_zero_vs_skip),
        cmocka_unit_test(test_skip_all_undefined),
        cmocka_unit_test(test_score_rounding),
        cmocka_unit_test(test_score_sums_unrounded_points),
        cmocka_unit_test(test_grades_first_match),
        cmocka_unit_test(test_grades_when),
        cmocka_unit_test(test_ranks_ties),
        cmocka_unit_test(test_rank_single_agent),
        cmocka_unit_test(test_eligibility),
        cmocka_unit_test(test_quotas),
        cmocka_unit_test(test_quota_floor_12_digits),
        cmocka_unit_test(test_payouts),
        cmocka_unit_test(test_payout_for),
        cmocka_unit_test(test_alert_for),
        cmocka_unit_test(test_alert_live),
        cmocka_unit_test(test_alert_values),
        cmocka_unit_test(test_prev),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_snapshot_json),
        cmocka_unit_test(test_snapshot_determinism),
        cmocka_unit_test(test_alert_json),
        cmocka_unit_test(test_json_strings),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_empty_shop),
        cmocka_unit_test(test_plan1_fixture),
        cmocka_unit_test(test_plan5_fixture),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
