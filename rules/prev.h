/* prev — what `prev.*` sees: the names an agent's final snapshot of the previous period
 * carries, read back from its JSON (score, rank, rank_bottom, team.size, percentile,
 * grade, eligible, every metric, points.<kpi>), and the `for` streaks stored beside it.
 * Shared by the daemon (rules_run) and the offline rule tester (csmetrics test), so
 * both read a snapshot the same way. Plain value struct: zero-initialise, then release. */
#ifndef CSM_RULES_PREV_H
#define CSM_RULES_PREV_H

#include <stddef.h>

#include "rules/eval.h"
#include "rules/expr.h"

struct prev_values {
    size_t n, cap;
    char **names;
    struct expr_value *values; /* strings point into strs */
    char **strs;
    size_t nstrs;
};

/* Adds one name (copied, with a string value's text). */
void prev_values_add(struct prev_values *p, const char *name, struct expr_value v);
/* Adds every name a final snapshot's JSON carries; nothing when it does not parse. */
void prev_values_parse(struct prev_values *p, const char *snapshot_json);
/* The eval_prev view (borrowing p); scored when any name is held. */
struct eval_prev prev_values_view(const struct prev_values *p);
void prev_values_release(struct prev_values *p);

/* Streaks stored as "LABEL s1,s2,..." (alerts then payouts): a malloc'd array of n when
 * LABEL is prev_label (the previous period), else NULL (the streak is broken). */
int *prev_streaks_parse(const char *stored, const char *prev_label, size_t n);

#endif
