/* close — which periods of a rule file close now (rules.md, metrics.md "Closing a
 * period"): pure, so the daemon's driver (daemon/rules_run.c) and the tests agree. */
#ifndef CSM_RULES_CLOSE_H
#define CSM_RULES_CLOSE_H

#include <stddef.h>
#include <stdint.h>

#include "aggregator/period.h"

/* Of the period labels a shop has figures for (any kinds, ascending by start), the periods
 * of `kind` to close now, oldest first, into out (room for n): those starting at or after
 * closed_end (the end of the last period closed; INT64_MIN when none) whose end + lateness
 * the close watermark has reached. Stops at the first that may not close yet, so periods
 * close in order. Labels that do not parse are skipped. Returns the count. */
size_t close_due(enum period_kind kind, const char *const *labels, size_t n, int64_t closed_end,
                 int64_t watermark_ms, int64_t lateness_ms, struct period *out);

#endif
