/* eval — one evaluation of a rule file for one shop and period (rules.md "What one
 * evaluation emits"): eligibility, points, score, grades, ranks, quotas, payouts, alerts,
 * and the snapshot JSON. Pure and deterministic: figures, previous-period values and
 * streaks come in; snapshots and the new streaks go out. */
#ifndef CSM_RULES_EVAL_H
#define CSM_RULES_EVAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aggregator/kpi.h"
#include "aggregator/period.h"
#include "rules/rule.h"

/* The agent's previous period of this rule, as its final snapshot recorded it. */
struct eval_prev {
    bool scored; /* false: prev.* is undefined */
    /* values by name ("score", "rank", "grade", "sales", "review.execution", ...) */
    size_t n;
    char **names;
    struct expr_value *values; /* strings owned by the caller */
};

struct eval_agent {
    const char *agent_id;
    struct kpi_figures fig;
    struct eval_prev prev;
    /* streaks of the previous closed period, one per alert then one per payout of the
     * rule (in file order); 0 when none */
    const int *streaks;
};

struct eval_input {
    const struct rule *rule;
    const char *shop_id;
    struct period period;
    bool final;
    const char *version; /* of csmetricsd */
    struct kpi_figures team; /* the shop's figures (unattributed orders excluded) */
    struct eval_agent *agents;
    size_t nagents;
};

/* One score line's explanation, for appeals. */
struct eval_line {
    const char *kpi;
    bool defined;
    double value;
    double numerator, denominator; /* of the KPI when it is a ratio, else value / 1 */
    const char *mapping;           /* "linear", "bands", "none" */
    int band;                      /* index of the band applied, -1 otherwise */
    double share;                  /* 0..1 */
    double points;                 /* unrounded */
    bool skipped;                  /* undefined with `undefined: skip` */
};

struct eval_snapshot {
    const char *agent_id;
    bool eligible;
    char snapshot_id[65];          /* hex sha256 of rule, shop, agent, period, final */
    double score;                  /* rounded to 0.01 */
    const char *grade;             /* NULL when the rule has no grades */
    int rank, rank_bottom;
    double percentile;
    struct eval_line *lines;       /* nscore */
    size_t npayouts;
    const char **payout_names;
    double *payout_amounts;        /* rounded half up to the cent */
    size_t nalerts;
    const char **alert_names;      /* firing */
    double *alert_values;          /* the score, or the expression's left side */
    int *streaks;                  /* new streaks (alerts then payouts), for the next period */
    char *json;                    /* the snapshot record (rules.md), one line */
};

struct eval_output {
    struct eval_snapshot *snaps;   /* one per agent of the input, in input order */
    size_t n;
    int team_size;                 /* eligible agents scored */
};

/* Runs the evaluation; 0, or -1 with err (a rule that cannot be evaluated — should not
 * happen for a loaded rule). out is released with eval_output_release. */
int eval_run(const struct eval_input *in, struct eval_output *out, char *err, size_t errlen);
void eval_output_release(struct eval_output *out);

/* The alert record (rules.md) for one firing (or resolved) alert, malloc'd JSON. */
char *eval_alert_json(const struct eval_input *in, const struct eval_snapshot *s, size_t alert,
                      const char *state, int64_t starts_at_ms);

#endif
