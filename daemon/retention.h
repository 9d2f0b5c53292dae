/* retention — deletes the Redis state of periods that ended long ago (`retention`).
 *
 * Every owner (agent, team, unattributed orders of a shop) lists the periods it has
 * figures for in PREFIX{…}:periods, and every (rule, shop) the periods it evaluated in
 * PREFIX{x:RULE:SHOP}:periods (score: period start). A sweep walks the registry
 * (PREFIX{r}:shops, PREFIX{t:SHOP}:agents), and for every listed period whose end is at
 * or before the cutoff it UNLINKs the period's keys, then removes the label from the
 * list. It is idempotent: a crash between the two leaves the label listed and the next
 * sweep finishes the job; several instances may sweep at once. A (rule, shop) keeps its
 * newest period's outputs whatever their age: the next close reads them (prev.*).
 * Figures of a period go only once every rule applying to the shop with that period
 * kind has closed it (their `closed` mark): a rule never loses its input.
 *
 * The caller picks the cutoff so that no deleted period can still accept events
 * (README "Retention"). */
#ifndef CSM_DAEMON_RETENTION_H
#define CSM_DAEMON_RETENTION_H

#include <stddef.h>
#include <stdint.h>

#include "daemon/rconn.h"
#include "rules/rule.h"

struct retention_stats {
    uint64_t sweeps;
    uint64_t periods_deleted; /* (owner or rule/shop, period) pairs */
};

/* One sweep, deleting at most max_periods periods (the rest waits for the next sweep).
 * rules may be NULL. 0, or -1 with err on a Redis failure. */
int retention_sweep(struct rconn *rc, const char *prefix, const struct rule_set *rules,
                    int64_t cutoff_ms, size_t max_periods, struct retention_stats *st, char *err,
                    size_t errlen);

#endif
