/* agg — the aggregation engine: decoded events in, Redis writes (struct delta) and
 * partition-local state changes out. Pure: the daemon prefetches state from Redis
 * into an agg_part (conversations, orders) and looks up contacts for attribution;
 * agg never does I/O. metrics.md is the contract; README "How KPIs are kept" explains
 * the key layout it writes.
 *
 * Per-period figures are written for every maintained period kind whose period holding
 * the event still accepts events: wm < period end + accept lateness of that kind. */
#ifndef CSM_AGGREGATOR_AGG_H
#define CSM_AGGREGATOR_AGG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aggregator/delta.h"
#include "aggregator/period.h"
#include "common/map.h"
#include "consumers/event.h"

#define AGG_CLOSES_MAX 16

struct agg_conf {
    const char *prefix;                   /* key prefix, borrowed */
    bool kinds[PERIOD_KIND_COUNT];        /* maintained period kinds */
    int64_t accept_ms[PERIOD_KIND_COUNT]; /* lateness per kind (max of rule files and global) */
    int64_t lateness_ms;                  /* reorder window for conversations */
    int64_t attribution_window_ms;
    int64_t orphan_ms; /* dedup_window: how long a follow-up waits for its order */
    /* Forgetting (0: never). A conversation silent longer than conv_retention_ms starts
     * a new timeline at its next message; an attributed order whose created ts lies
     * order_retention_ms or more before a follow-up is unknown to it (the follow-up waits
     * for its order and goes out as an orphan). Judged by event time only, so a replay
     * decides the same; agg_part_sweep deletes such records from the store. */
    int64_t conv_retention_ms;
    int64_t order_retention_ms;
    /* The closes of each kind's periods: the distinct latenesses of the rule files of that
     * kind, ascending (a period closes for a rule at end + its lateness). For leases
     * (agg_ctx.lease_ms). A kind no rule file uses has none. */
    int64_t closes[PERIOD_KIND_COUNT][AGG_CLOSES_MAX];
    size_t nclose[PERIOD_KIND_COUNT];
};

/* Adds lateness to conf's closes of kind k (kept distinct and ascending); beyond
 * AGG_CLOSES_MAX distinct values the largest ones are dropped (their closes are then not
 * leased). */
void agg_conf_add_close(struct agg_conf *conf, enum period_kind k, int64_t lateness_ms);
/* The first close of p after `after` (end + the smallest lateness of p's kind that passes
 * it), or 0 when none is ahead. */
int64_t agg_first_close(const struct agg_conf *conf, const struct period *p, int64_t after);

/* *lease = the earlier of *lease and t, where 0 means none (for either). */
static inline void agg_lease_min(int64_t *lease, int64_t t)
{
    if (t > 0 && (*lease == 0 || t < *lease))
        *lease = t;
}

/* The state of one input partition this instance owns. */
struct agg_part;

struct agg_part *agg_part_new(enum event_topic topic, const char *topic_name, int32_t part);
void agg_part_destroy(struct agg_part *p); /* NULL ok */
const char *agg_part_topic_name(const struct agg_part *p);
int32_t agg_part_number(const struct agg_part *p);

/* Ids of the state records events need that are not cached yet (conversation ids for
 * chat, order ids for orders); the daemon fetches them with store_state_get and hands
 * them in with agg_part_load (value NULL: no record). *n receives the count; the
 * array and each string are malloc'd (the caller frees them). */
char **agg_part_missing(struct agg_part *p, const struct event *evs, size_t nevs, size_t *n);
/* Loads one state record (conversations for chat, orders for orders). -1 when malformed. */
int agg_part_load(struct agg_part *p, const char *id, const char *value, size_t len);
/* Loads the pending-order index entry (STORE_PEND) at assignment. */
void agg_part_load_pending(struct agg_part *p, const char *order_id, const char *value);

struct agg_ctx {
    const struct agg_conf *conf;
    int64_t wm_ms;  /* global watermark */
    int64_t now_ms; /* wall clock */
    struct delta *d;
    /* Optional, owned by the caller: the (owner, period) pairs already registered in d,
     * so the registry writes are made once per batch. Clear it when d is reset. */
    struct map *registered;
    /* Out: lowered (agg_lease_min) to the first close after wm_ms of every period a call
     * writes (agg_first_close); 0 (none) to start. The daemon keeps every close below the
     * leases of what is not committed yet, so no close passes a write judged before it. */
    int64_t lease_ms;
    /* Internal: the last period computed per kind (zero-initialise). */
    struct period pcache[PERIOD_KIND_COUNT];
    bool pcached[PERIOD_KIND_COUNT];
};

/* Outcome of one event: late when it missed a period (detail names them). */
struct agg_result {
    bool late;
    char detail[256];
};

/* Applies one event read at `offset` from p. */
void agg_event(struct agg_ctx *c, struct agg_part *p, const struct event *ev, int64_t offset,
               const void *raw, size_t rawlen, struct agg_result *res);

/* Orders waiting for attribution whose created ts the watermark has passed. */
struct agg_due {
    const char *order_id, *shop, *customer; /* borrowed from p until agg_attribute */
    int64_t ts_ms;
};
/* Fills *due (malloc'd) and returns the count. */
size_t agg_part_due(struct agg_part *p, int64_t wm_ms, struct agg_due **due);
/* Attributes a due order to agent (NULL: unattributed shop order) and applies it and
 * its held follow-ups. late results are reported through cb. */
typedef void (*agg_dead_cb)(void *ud, int reason_orphan, const char *detail, int64_t offset,
                            const void *raw, size_t rawlen);
void agg_attribute(struct agg_ctx *c, struct agg_part *p, const char *order_id, const char *agent,
                   agg_dead_cb cb, void *ud);
/* Follow-ups that waited longer than orphan_ms (wall clock) for their order go out
 * through cb as orphans and are forgotten. */
void agg_part_expire(struct agg_ctx *c, struct agg_part *p, agg_dead_cb cb, void *ud);

/* Changed state records since the last agg_part_clean: which 0 = conversations or
 * orders (by topic), 1 = pending index. value NULL deletes. */
struct agg_kv {
    const char *field;
    char *value;
    size_t len;
};
size_t agg_part_dirty(struct agg_part *p, int which, struct agg_kv **out);
void agg_part_clean(struct agg_part *p);

/* Cached records (for bounds and tests). */
size_t agg_part_cached(const struct agg_part *p);

/* Garbage collection of the store's records: given one stored record (as read back),
 * true when no event can use it any more — a conversation whose newest message is
 * before cutoff_ms, or an attributed order holding nothing created before cutoff_ms —
 * and then it is dropped from the cache and its deletion joins the dirty records
 * (value NULL). The caller picks cutoff_ms so that any later event near the record's
 * ts is late for every period (so deleting it changes no figure). A cached record
 * changed in this batch is never swept. */
bool agg_part_sweep(struct agg_part *p, const char *id, const char *value, size_t len,
                    int64_t cutoff_ms);

/* Bounds the cache: when it holds more than max records, drops clean ones (not orders
 * waiting for attribution) until it holds max / 2. The store keeps them; they are
 * read back when an event needs them. Returns the number dropped. */
size_t agg_part_trim(struct agg_part *p, size_t max);

#endif
