/* conv — one conversation's timeline turned into waits (metrics.md "Precise readings").
 * Pure and deterministic. Messages are placed by (ts, seq) — seq is the arrival order
 * (the Kafka offset) — so a message that arrives after later-stamped ones is put where
 * its ts says, and the waits derived from the timeline are recomputed: the caller is
 * told which waits were retracted and which asserted, and turns that into KPI deltas.
 *
 * A wait starts at the first `in` after the last `out` (or the conversation's start)
 * and ends at the next `out`, whoever sends it; the wait belongs to the agent of that
 * `out`. An open wait belongs to the holder: the to_agent_id of a transfer or the
 * agent_id of a message, whichever comes later in the timeline. The first wait of the
 * conversation is flagged `first`.
 *
 * Only a window of recent messages is kept (see conv_prune); older history is folded
 * into a small base state. */
#ifndef CSM_AGGREGATOR_CONV_H
#define CSM_AGGREGATOR_CONV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

enum conv_kind { CONV_IN, CONV_OUT, CONV_TRANSFER };

/* Borrowed strings; conv_add copies what it keeps. */
struct conv_msg {
    enum conv_kind kind;
    int64_t ts_ms;
    uint64_t seq;         /* arrival order within the conversation (strictly increasing) */
    const char *agent;    /* message: agent_id; transfer: from agent */
    const char *to_agent; /* transfer only */
    const char *customer; /* customer_id */
};

struct conv_wait {
    int64_t start_ms;
    int64_t end_ms;       /* -1 while open */
    const char *agent;    /* who answered, or the holder while open */
    const char *customer; /* customer of the `in` that started it */
    bool first;           /* the conversation's first wait */
};

/* sign: -1 retracts a wait previously asserted (same fields as asserted then),
 * +1 asserts a new or changed one. Pointers are valid during the call only. */
typedef void (*conv_wait_cb)(void *ud, int sign, const struct conv_wait *w);

struct conv;

struct conv *conv_new(void);
void conv_destroy(struct conv *c); /* NULL is a no-op */

/* Adds m to the timeline. For every wait whose derived form changed, calls cb with
 * the retraction of the old form first and then the assertion of the new one; waits
 * that did not change are not reported. Order of calls is deterministic (by start
 * time). A message older than the pruned horizon is placed at the front of the
 * retained window (it cannot rewrite folded history); lengths never go below 0.
 * Appending in ts order costs O(1) amortised beyond the retained window's size. */
void conv_add(struct conv *c, const struct conv_msg *m, conv_wait_cb cb, void *ud);

/* Folds every message with ts < horizon_ms into the base state; answered waits that
 * ended before horizon_ms are forgotten (they can no longer change). An open wait is
 * kept. Call after conv_add with horizon = newest ts - lateness. */
void conv_prune(struct conv *c, int64_t horizon_ms);

/* The holder now ("" when none), and the newest ts seen (INT64_MIN when empty). */
const char *conv_holder(const struct conv *c);
int64_t conv_newest_ms(const struct conv *c);
size_t conv_retained(const struct conv *c); /* messages in the window, for bounds and tests */

/* Binary state for the store; conv_decode returns NULL on a malformed record. */
void conv_encode(const struct conv *c, struct buf *out);
struct conv *conv_decode(const void *p, size_t n);

#endif
