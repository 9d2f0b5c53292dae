/* memstore — an in-memory interpreter of the aggregation engine's Redis writes, so that
 * `csmetrics test` can run events through the real engine (agg + delta) without a Redis.
 * It keeps hashes, sets and sorted sets by key name, applies a delta's net writes
 * (delta_foreach_op) exactly as the Lua function csm_apply does, and reads them back
 * exactly as csm_figures + store_read_figures and store_contact_latest do (daemon/). */
#ifndef CSM_CLI_MEMSTORE_H
#define CSM_CLI_MEMSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aggregator/agg.h"
#include "aggregator/delta.h"
#include "aggregator/kpi.h"
#include "aggregator/period.h"
#include "consumers/event.h"

struct memstore;

struct memstore *memstore_new(void);
void memstore_destroy(struct memstore *m); /* NULL ok */

/* Applies every write of d (d is not changed): C HINCRBY, M HINCRBY then HDEL when the
 * result is <= 0, S SADD, H HSET, Z ZADD, R ZREM, T ZREMRANGEBYSCORE -inf (num. A key
 * left empty disappears, as in Redis. */
void memstore_apply(struct memstore *m, const struct delta *d);

/* The raw figures of owner_tag (keys_owner_tag) for period p, as store_read_figures
 * reads them: 0, or 1 when the owner has no figures for p (p's label is not in the
 * owner's ":periods" sorted set); *f is filled only on 0. */
int memstore_figures(const struct memstore *m, const char *owner_tag, const struct period *p,
                     struct kpi_figures *f);

/* The agent of the customer's latest contact with a score in [ts - window, ts] (ZREVRANGEBYSCORE
 * key ts ts-window LIMIT 0 1 on PREFIX{c:N}:SHOP:CUSTOMER; member "ts:offset:agent"), as
 * store_contact_latest: malloc'd, or NULL when there is none. */
char *memstore_contact_latest(const struct memstore *m, const char *prefix, const char *shop,
                              const char *customer, int64_t ts_ms, int64_t window_ms);

/* Members of the set at key, sorted bytewise; *n receives the count. The array is malloc'd
 * (free it), the strings are borrowed until the next write. NULL with *n = 0 when absent. */
const char **memstore_smembers(const struct memstore *m, const char *key, size_t *n);

/* Small readers for tests: the hash field's value (borrowed, NULL when absent); the
 * number of members of a set, hash, or sorted set (0 when absent); whether the key
 * exists; a sorted-set member's score (false when absent). */
const char *memstore_hget(const struct memstore *m, const char *key, const char *field);
size_t memstore_card(const struct memstore *m, const char *key);
bool memstore_exists(const struct memstore *m, const char *key);
bool memstore_zscore(const struct memstore *m, const char *key, const char *member, int64_t *score);

/* ---- feeding events (the daemon's ingest, offline) ----
 * A feed decodes events (decode_event), drops duplicate event_ids, runs them through the
 * aggregation engine (agg_event) with one partition per topic, and applies each event's
 * writes to the store at once. The global watermark stays below every period while
 * events arrive (nothing is late) and counts as +infinity at memstore_feed_finish, which
 * attributes every order without agent_id from the contacts in the store. */
struct memstore_feed;

/* conf is copied (its prefix is borrowed and must outlive the feed); m is borrowed. */
struct memstore_feed *memstore_feed_new(struct memstore *m, const struct agg_conf *conf);
void memstore_feed_destroy(struct memstore_feed *f); /* NULL ok */

/* Feeds one message of topic. 0 (applied), 1 (a duplicate event_id: skipped), or -1 with
 * the dead-letter reason and detail in err ("bad_amount: field 'amount': ..."). */
int memstore_feed_event(struct memstore_feed *f, enum event_topic topic, const char *json,
                        size_t len, char *err, size_t errlen);

/* Attributes every order still waiting for it, as the daemon does once the global
 * watermark passes the order's ts: to the agent of the customer's latest message within
 * attribution_window_ms, else to the shop's unattributed orders. */
void memstore_feed_finish(struct memstore_feed *f);

#endif
