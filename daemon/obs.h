/* obs — csmetricsd's observability: the metric families of /metrics (README
 * "Observability"), filled from the modules' stats once per main loop iteration (one
 * registry lock per batch, not per event), the rules engine's observer hooks (closes,
 * alerts, evaluation times), and the STATUS= line systemd shows. Main thread only; the
 * registry it fills is what the HTTP thread renders. */
#ifndef CSM_DAEMON_OBS_H
#define CSM_DAEMON_OBS_H

#include <stdbool.h>

#include "config/config.h"
#include "daemon/alertmgr.h"
#include "daemon/ingest.h"
#include "daemon/metrics.h"
#include "daemon/rules_run.h"

struct obs;

/* cfg is borrowed and must outlive the obs. */
struct obs *obs_new(const struct csm_config *cfg);
void obs_destroy(struct obs *o); /* NULL ok; after the HTTP listener stopped */
struct metrics *obs_metrics(struct obs *o);
/* The hooks for rules_env.obs. */
const struct rules_observer *obs_observer(const struct obs *o);

/* Registers every loaded rule's series (at 0, so that increase() sees the first close). */
void obs_rules(struct obs *o, const struct rules_run *rr);
/* Copies the modules' counters and gauges into the registry. */
void obs_sync(struct obs *o, struct ingest *in, const struct rules_run *rr, struct alertmgr *am,
              bool ready);
/* Counts a SIGHUP reload (ok or refused) and re-registers the rules when ok. */
void obs_reloaded(struct obs *o, const struct rules_run *rr, bool ok);
/* Sends STATUS=: "waiting: WHY" while not ready, else events/s, lag, partitions,
 * watermark and the last close. */
void obs_status(struct obs *o, const struct ingest_stats *s, const char *why);
/* Replaces control characters (a newline would start a new sd_notify field) with '?'. */
void obs_printable(char *s);

#endif
