/* rules_run — csmetricsd's rules engine driver: closes each rule file's periods when the
 * global watermark passes period end + lateness, evaluates them (rules/eval.h) per shop,
 * and emits final snapshots and alerts exactly once per (rule, shop, agent, period) to
 * Redis and, identically, to Kafka; evaluates the open period every `interval` for live
 * snapshots and `live: true` alerts (README "Rules engine"). */
#ifndef CSM_DAEMON_RULES_RUN_H
#define CSM_DAEMON_RULES_RUN_H

#include <stdbool.h>
#include <stdint.h>

#include "config/config.h"
#include "consumers/consumer.h"
#include "daemon/alertmgr.h"
#include "daemon/rconn.h"
#include "daemon/store.h"
#include "rules/rule.h"

struct rules_run;

/* Optional hooks for the daemon's metrics and status line, called on the caller's thread
 * from rules_run_step; any may be NULL. Strings are borrowed for the call. */
struct rules_observer {
    /* a close was emitted: (rule, shop, period) snapshots and alerts are in Kafka */
    void (*closed)(void *ud, const char *rule, const char *shop, const char *period);
    /* an alert event was produced; state "firing" or "resolved" */
    void (*alert)(void *ud, const char *rule, const char *alert, const char *state);
    /* one evaluation (Redis reads and eval_run) of a rule for a shop, final or live */
    void (*evaluated)(void *ud, bool final, double seconds);
    void *ud;
};

struct rules_env {
    const struct csm_config *cfg;
    struct rconn *rc;
    struct store *st;
    struct consumer *kc; /* producer for the snapshots and alerts topics */
    int64_t wm_ms;       /* global watermark */
    int64_t now_ms;      /* wall clock */
    struct alertmgr *am; /* NULL, or alerts also go to Alertmanager */
    /* NULL, or told of closes, alerts and evaluations */
    const struct rules_observer *obs;
};

struct rules_stats {
    uint64_t closes, snapshots, alerts, live_evaluations, errors;
};

/* Takes ownership of set (NULL: no rules). */
struct rules_run *rules_run_new(struct rule_set *set);
void rules_run_destroy(struct rules_run *rr);
/* Swaps in a new rule set (taken), keeping the old one on NULL. */
void rules_run_replace(struct rules_run *rr, struct rule_set *set);
const struct rule_set *rules_run_set(const struct rules_run *rr);

/* One pass: close what can be closed, then live evaluations that are due. -1 on a Redis
 * or Kafka failure (nothing half-emitted: the next pass resumes), else 0. */
int rules_run_step(struct rules_run *rr, const struct rules_env *env);
const struct rules_stats *rules_run_stats(const struct rules_run *rr);

#endif
