/* ingest — csmetricsd's main loop work: Kafka batches through decode, dedup and the
 * aggregation engine into Redis with the exactly-once protocol of store.h, watermarks,
 * order attribution once the global watermark passes an order, dead letters.
 * All state hangs off struct ingest; no globals. */
#ifndef CSM_DAEMON_INGEST_H
#define CSM_DAEMON_INGEST_H

#include <stdbool.h>
#include <stdint.h>

#include "config/config.h"
#include "consumers/consumer.h"
#include "consumers/event.h"
#include "daemon/metrics.h"
#include "daemon/rconn.h"
#include "daemon/store.h"
#include "rules/rule.h"

struct ingest;

struct ingest_stats {
    uint64_t events; /* applied */
    /* applied, by topic kind and type; messages per polled batch */
    uint64_t events_by[TOPIC_INPUT_COUNT][EV_TYPE_COUNT];
    struct metrics_hist batch_sizes;
    uint64_t duplicates;
    uint64_t deadletters[16]; /* by enum dl_reason (DL_REASON_COUNT <= 16) */
    uint64_t batches, commits, fenced, redis_errors;
    uint64_t swept;           /* state records deleted by garbage collection (agg_part_sweep) */
    uint64_t evicted;         /* records dropped from the in-memory cache (cache_max_records) */
    uint64_t periods_deleted; /* (owner, period) pairs deleted by `retention` */
    uint64_t cached;          /* records in the in-memory cache after the last commit */
    uint64_t offset_resets;   /* times Kafka's retention had passed a stored offset */
    uint64_t lost_messages;   /* messages deleted by Kafka before they were read */
    uint64_t saturated;       /* counters Redis held at the int64 limit (store_saturated) */
    uint64_t leases;          /* batches whose lease was published before their commit */
    uint64_t lease_conflicts; /* of those, re-read because a close had reached them */
    int64_t global_wm_ms;     /* min over partitions (metrics.md "Closing a period") */
    int64_t close_wm_ms;      /* global, held back until orders below it are attributed:
                                 periods accept events and close by this one */
};

/* cfg is borrowed and must outlive the ingest. Connects nothing yet. */
struct ingest *ingest_new(const struct csm_config *cfg, char *err, size_t errlen);
void ingest_destroy(struct ingest *in); /* closes the consumer (leaves the group) */

/* Connects Redis and Kafka once. 0/-1. (ingest_step calls it, and retries with
 * back-off: 100 ms doubling to 5 s, sleeping at most 200 ms a call.) */
int ingest_start(struct ingest *in, char *err, size_t errlen);
/* One iteration: poll a batch (up to batch_max_wait), process, commit; periodic
 * watermark/attribution work. Never fails: outages are logged, counted, retried with
 * back-off. Returns within about max(batch_max_wait, 200 ms) plus one Redis timeout. */
void ingest_step(struct ingest *in);
/* true when the Kafka client refused the configuration (a conflict between settings
 * that loading could not see): the daemon exits 1, as on any configuration error. */
bool ingest_failed(const struct ingest *in);
/* true once Redis and Kafka have been reached and state is healthy. */
bool ingest_ready(const struct ingest *in);
const struct ingest_stats *ingest_stats(const struct ingest *in);

/* Maintains the period kinds the rules use, and accepts events until the largest
 * lateness of any rule file of that kind (and the global one) has passed; also
 * re-derives everything ingest took from the configuration (after a reload). */
void ingest_set_rules(struct ingest *in, const struct rule_set *rules);

/* For the rules engine driver, which shares the connections (borrowed). */
struct rconn *ingest_rconn(struct ingest *in);
/* The round trips of both connections (the main one and the committer's, the latter as of
 * the last joined commit): for /metrics. */
void ingest_redis_latency(const struct ingest *in, struct metrics_hist *out);
struct store *ingest_store(struct ingest *in);
struct consumer *ingest_consumer(struct ingest *in);

/* One assigned partition as ingest sees it (for metrics; topic borrowed for the call). */
struct ingest_partition {
    const char *topic;
    int32_t partition;
    int64_t committed; /* next offset to read, as stored in Redis; -1 none yet */
    int64_t wm_ms;     /* largest event time delivered (epoch ms) */
};
/* Calls fn (unless NULL) for every assigned partition; returns how many there are. */
size_t ingest_partitions(const struct ingest *in,
                         void (*fn)(void *ud, const struct ingest_partition *p), void *ud);

#endif
