/* consumer — the librdkafka side of csmetricsd: a high-level consumer in a group over
 * the input topics and a producer for the dead-letter (and output) topics.
 * Offsets live in Redis (store.h), not in Kafka: auto commit and offset store are off
 * and every assignment is seeked to the offsets the owner reads from Redis.
 * librdkafka 2.0.x rules followed here: the eager `range` assignor (cooperative-sticky
 * has known bugs in 2.0.x) and rd_kafka_consumer_poll (consume_batch can lose
 * messages on rebalance). Shutdown order: close the consumer, then destroy. */
#ifndef CSM_CONSUMERS_CONSUMER_H
#define CSM_CONSUMERS_CONSUMER_H

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"

struct consumer;

/* Called from consumer_poll when partitions are assigned: fill offsets[i] with the
 * offset to start from (RD_KAFKA_OFFSET_BEGINNING when none is stored). Return -1 to
 * refuse (Redis down): the consumer then retries the assignment later. */
typedef int (*consumer_assign_cb)(void *ud, const rd_kafka_topic_partition_list_t *parts,
                                  int64_t *offsets);
/* Called when partitions are revoked (before they go to another member). */
typedef void (*consumer_revoke_cb)(void *ud, const rd_kafka_topic_partition_list_t *parts);

struct consumer_opts {
    const struct csm_config *cfg; /* borrowed */
    consumer_assign_cb on_assign;
    consumer_revoke_cb on_revoke;
    void *ud;
};

/* Creates the consumer and producer and subscribes. kafka.properties go to both;
 * a key librdkafka rejects is fatal (err names it). NULL on failure. */
struct consumer *consumer_new(const struct consumer_opts *o, char *err, size_t errlen);
/* Closes the group membership then destroys; flushes the producer (up to 10 s). */
void consumer_destroy(struct consumer *c);

/* Polls up to max messages for at most max_wait_ms; messages go into msgs (caller
 * destroys each with rd_kafka_message_destroy). Errors (partition EOF excluded) are
 * logged. Returns the count. */
size_t consumer_poll(struct consumer *c, rd_kafka_message_t **msgs, size_t max, int max_wait_ms);

/* Re-runs a refused assignment (after Redis came back). true when one is pending. */
bool consumer_assignment_pending(const struct consumer *c);
void consumer_retry_assignment(struct consumer *c);
/* Rebalance callbacks seen (assignments, revocations, errors); 0 until the group is joined. */
uint64_t consumer_rebalances(const struct consumer *c);
/* Wall ms since librdkafka found every broker down, or 0 once a broker answered again (a
 * message, or the metadata probe consumer_poll sends once a second meanwhile). */
int64_t consumer_brokers_down_since(const struct consumer *c);

/* Produces to topic with key; returns 0/-1. consumer_flush waits for delivery of
 * everything produced; -1 when any delivery failed since the last flush. */
int consumer_produce(struct consumer *c, const char *topic, const void *key, size_t keylen,
                     const void *val, size_t len);
int consumer_flush(struct consumer *c, int timeout_ms);

/* The high watermark cached by librdkafka (no broker round trip); -1 when unknown. */
int64_t consumer_high_watermark(struct consumer *c, const char *topic, int32_t part);
/* The partition's first offset the brokers still keep (log start), asked of the broker
 * (blocks up to timeout_ms); -1 on error. */
int64_t consumer_log_start(struct consumer *c, const char *topic, int32_t part, int timeout_ms);
/* Pauses / resumes fetching of every assigned partition (Redis down). */
void consumer_pause_all(struct consumer *c, bool pause);

rd_kafka_t *consumer_handle(struct consumer *c);
/* How many partitions topic has (a metadata request, up to timeout_ms); -1 on error. */
int consumer_partition_count(struct consumer *c, const char *topic, int timeout_ms);

#endif
