/* fuzz_rules — libFuzzer harness for rules/rule.c: the input is one rule file.
 * Loads it with rule_load_buffer; a file that loads is then exercised the way the daemon
 * uses it: rule_applies_to, rule_name_type, and eval_run (rules/eval.c) over a small shop
 * of agents with fixed, varied figures, plus the alert records of every snapshot. Oracles
 * beyond the sanitizers: an error is "fuzz.yaml:line:column: message" on one line; a
 * loaded rule evaluates without error ("should not happen for a loaded rule", eval.h) and
 * every snapshot and alert record is valid JSON. Everything is freed (LSan). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_tree.h>

#include "aggregator/kpi.h"
#include "aggregator/period.h"
#include "rules/eval.h"
#include "rules/rule.h"
#include "fuzz/fuzz.h"

#define NAGENTS 5
#define TS_MS 1786000000000LL /* 2026-08-06: a day, week, month, quarter, half and year */

static void check_json(const char *what, const char *text)
{
    char errbuf[256];
    yajl_val v = yajl_tree_parse(text, errbuf, sizeof(errbuf));
    if (v == NULL || !YAJL_IS_OBJECT(v)) {
        fprintf(stderr, "fuzz_rules: %s is not a JSON object (%s): %s\n", what, errbuf, text);
        abort();
    }
    yajl_tree_free(v);
}

/* Figures from nothing at all to a busy agent; one with reviews by every role. */
static void figures(int i, struct kpi_figures *f)
{
    *f = (struct kpi_figures){.target_cents = -1, .wait_p90_ms = -1};
    if (i == 0)
        return;
    f->inquiries = 10 * i * i;
    f->replied = f->inquiries - i;
    f->waits = 3 * i;
    f->wait_sum_ms = 25000 * f->waits * i;
    f->first_waits = i;
    f->first_wait_sum_ms = 31000 * i;
    f->unanswered_waits = i - 1;
    f->wait_p90_ms = 40000 * i;
    f->ordered = 2 * i;
    f->inquired_and_ordered = i;
    f->paid_customers = i;
    f->orders = 3 * i;
    f->paid_orders = 2 * i;
    f->refunded_orders = i / 2;
    f->cancelled_orders = i / 3;
    f->flagged_orders = i == 4;
    f->order_amount_cents = 599000 * i;
    f->sales_cents = 290000 * i;
    f->refund_amount_cents = 5990 * (i / 2);
    f->complaints = i == 3;
    f->target_cents = i == 2 ? -1 : 500000 * i;
    f->absent_days = i == 4 ? 70 : 0;
    static const char *const items[] = {"follow_up", "execution", "self_total"};
    for (int k = 0; k < 3 && i >= 2; k++)
        for (int role = 0; role < ROLE_COUNT; role++) {
            struct kpi_review *rv = &f->reviews[f->reviews_n++];
            snprintf(rv->item, sizeof(rv->item), "%s", items[k]);
            rv->role = (enum review_role)role;
            rv->value = (double)((i * 17 + k * 5 + role * 3) % 11) / 10.0;
        }
}

static void evaluate(const struct rule *r)
{
    static char *prev_names[] = {"score", "rank", "grade", "rank_bottom", "sales"};
    struct expr_value prev_values[] = {
        {.defined = true, .type = EXPR_NUM, .num = 88.5},
        {.defined = true, .type = EXPR_NUM, .num = 1},
        {.defined = true, .type = EXPR_STR, .str = "excellent"},
        {.defined = true, .type = EXPR_NUM, .num = 3},
        {.defined = false, .type = EXPR_NUM},
    };
    struct eval_agent agents[NAGENTS];
    char ids[NAGENTS][16];
    struct eval_input in = {.rule = r, .shop_id = "shop1", .final = true, .version = "fuzz"};
    struct eval_output out = {0};
    char err[512];
    int *streaks = calloc(r->nalerts + r->npayouts + 1, sizeof(int));

    CHECK(streaks != NULL);
    for (size_t k = 0; k < r->nalerts + r->npayouts; k++)
        streaks[k] = (int)(k % 3);
    CHECK(period_of(r->period, TS_MS, &in.period) == 0);
    figures(NAGENTS, &in.team);
    for (int i = 0; i < NAGENTS; i++) {
        snprintf(ids[i], sizeof(ids[i]), "agent%d", i);
        agents[i] = (struct eval_agent){.agent_id = ids[i]};
        figures(i, &agents[i].fig);
        if (i % 2) {
            agents[i].prev = (struct eval_prev){
                .scored = true, .n = 5, .names = prev_names, .values = prev_values};
            agents[i].streaks = streaks;
        }
    }
    /* Two agents with equal figures tie. */
    agents[NAGENTS - 1].fig = agents[NAGENTS - 2].fig;
    in.agents = agents;
    in.nagents = NAGENTS;

    for (int pass = 0; pass < 2; pass++) {
        in.final = pass == 0;
        if (eval_run(&in, &out, err, sizeof(err)) != 0) {
            fprintf(stderr, "fuzz_rules: eval_run failed on a loaded rule: %s\n", err);
            abort();
        }
        CHECK(out.n == NAGENTS);
        for (size_t i = 0; i < out.n; i++) {
            const struct eval_snapshot *s = &out.snaps[i];
            CHECK(s->eligible == (s->json != NULL));
            if (s->json)
                check_json("a snapshot", s->json);
            if (s->scored)
                CHECK(isfinite(s->score) && s->rank >= 1 && s->rank <= out.team_size);
            for (size_t k = 0; k < r->nalerts && pass == 0; k++) {
                char *a = eval_alert_json(&in, s, k, k % 2 ? "resolved" : "firing", TS_MS);
                CHECK(a != NULL);
                check_json("an alert", a);
                free(a);
            }
        }
        eval_output_release(&out);
    }
    free(streaks);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[2048];
    enum expr_type t;

    struct rule *r = rule_load_buffer("fuzz.yaml", (const char *)data, size, err, sizeof(err));
    if (r == NULL) {
        size_t n = strnlen(err, sizeof(err));
        CHECK(n > 0 && n < sizeof(err));
        CHECK(strncmp(err, "fuzz.yaml:", 10) == 0);
        return 0;
    }
    CHECK(r->name != NULL && r->nshops > 0);
    (void)rule_applies_to(r, "shop1");
    (void)rule_applies_to(r, "");
    CHECK(rule_name_type(r, "score", &t) == 0 && t == EXPR_NUM);
    for (size_t i = 0; i < r->nscore; i++) {
        char name[256];
        if (strlen(r->score[i].kpi) > 200)
            continue;
        snprintf(name, sizeof(name), "points.%s", r->score[i].kpi);
        CHECK(rule_name_type(r, name, &t) == 0 && t == EXPR_NUM);
    }
    evaluate(r);
    rule_destroy(r);
    return 0;
}
