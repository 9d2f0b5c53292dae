/* eval — one evaluation of a rule file for one shop and period (rules.md "What one
 * evaluation emits"): eligibility, points, score, grades, ranks, quotas, payouts, alerts,
 * and the snapshot JSON. Pure and deterministic: figures, previous-period values and
 * streaks come in; snapshots and the new streaks go out. The same input always gives
 * byte-identical output (the snapshot_id and the JSON). */
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
    /* values by name ("score", "rank", "grade", "sales", "review.execution", ...);
     * a name absent here, or whose value has not the name's type, is undefined */
    size_t n;
    char **names;
    struct expr_value *values; /* strings owned by the caller */
};

struct eval_agent {
    const char *agent_id;
    struct kpi_figures fig;
    struct eval_prev prev;
    /* the streaks (eval_snapshot.streaks) of the agent's final snapshot of the previous
     * period of this rule: one per alert then one per payout, in file order; NULL when
     * there is none (a period without a score breaks every streak) */
    const int *streaks;
};

struct eval_input {
    const struct rule *rule;
    const char *shop_id;
    struct period period;
    bool final;              /* false: a live evaluation; only `live: true` alerts fire */
    const char *version;     /* of csmetricsd; NULL writes null */
    struct kpi_figures team; /* the shop's figures (unattributed orders excluded) */
    struct eval_agent *agents;
    size_t nagents;
};

/* One score line's explanation, for appeals (the snapshot's "explain" array). */
struct eval_line {
    const char *kpi; /* borrowed from the rule */
    bool defined;
    double value; /* the KPI's value (money in yuan); NAN when undefined */
    /* the KPI as a fraction: ratios and means their figures (response times in seconds
     * over waits, aov sales over paid_customers, review.<item> Σ weight·score over Σ
     * weight), other KPIs value / 1; NAN where a figure does not exist (no target) */
    double numerator, denominator;
    const char *mapping; /* "linear", "bands", "none" */
    int band;            /* index of the band applied, -1 otherwise (or when none matched) */
    double share;        /* 0..1 for linear and none, the band's share; NAN when skipped */
    double weight;       /* effective weight: the line's weight × the skip re-weighting */
    double points;       /* unrounded, share × weight; NAN when skipped */
    bool skipped;        /* undefined with `undefined: skip` */
};

struct eval_snapshot {
    const char *agent_id; /* borrowed from the input */
    size_t agent_index;   /* in in->agents */
    bool eligible;
    bool scored;               /* eligible, and the score is defined (it is not when
                                  `undefined: skip` drops every weighted line) */
    char snapshot_id[65];      /* hex sha256 of rule, shop, agent, period, final */
    double score;              /* rounded to 0.01; NAN when !scored */
    const char *grade;         /* after quotas; NULL when !scored or no grade matched */
    int rank, rank_bottom;     /* 0 when !scored */
    double percentile;         /* NAN when !scored */
    int team_size;             /* eligible agents scored */
    struct eval_line *lines;   /* [rule->nscore], computed for every agent */
    size_t npayouts;           /* payouts paid, in file order */
    const char **payout_names; /* borrowed from the rule */
    double *payout_amounts;    /* rounded half up to the cent */
    size_t nalerts;            /* alerts firing, in file order */
    const char **alert_names;  /* borrowed from the rule */
    size_t *alert_index;       /* [nalerts]: index in rule->alerts */
    double *alert_values;      /* [rule->nalerts], every alert of the rule, firing or
                                  not: the score, or the expression's left side; NAN
                                  when undefined */
    int *streaks;              /* [rule->nalerts + rule->npayouts] new streaks (alerts
                                  then payouts), for the next period; all 0 when !scored */
    char *json;                /* the snapshot record (rules.md), one line; NULL when
                                  !eligible */
};

struct eval_output {
    struct eval_snapshot *snaps; /* one per agent of the input, in input order */
    size_t n;
    int team_size; /* eligible agents scored */
};

/* Runs the evaluation of in->rule over in->agents (all of one shop). 0, or -1 with err
 * (a rule that cannot be evaluated, e.g. a quota naming no grade of the file — should not
 * happen for a loaded rule); out is then empty. out holds pointers into in and in->rule
 * (borrowed: keep both alive while out is used); release it with eval_output_release. */
int eval_run(const struct eval_input *in, struct eval_output *out, char *err, size_t errlen);
/* Frees everything out holds and zeroes it; NULL and zeroed outputs are fine. */
void eval_output_release(struct eval_output *out);

/* The alert record (rules.md) of alert `alert` (an index in in->rule->alerts, firing or
 * not: pass state "resolved" for one that stopped firing) for snapshot s of eval_run(in):
 * rule, alert, severity, shop_id, agent_id, period, value, summary, state, starts_at
 * (RFC 3339 of starts_at_ms). malloc'd one-line JSON, or NULL when alert is out of range. */
char *eval_alert_json(const struct eval_input *in, const struct eval_snapshot *s, size_t alert,
                      const char *state, int64_t starts_at_ms);

/* The snapshot id: hex sha256 of "rule\0shop\0agent\0period\0final" (final as "true" or
 * "false"), written NUL-terminated into out. */
void eval_snapshot_id(const char *rule, const char *shop_id, const char *agent_id,
                      const char *period_label, bool final, char out[65]);

#endif
