/* keys — the Redis key layout (README "Redis key layout"), pure string building.
 * Every id is escaped so that arbitrary UTF-8 (':', '{', '}', spaces, '%') stays
 * apart: bytes '%' ':' '{' '}' and bytes <= 0x20 or 0x7f become %XX. Each key
 * starts with the configured prefix and one Redis Cluster hash tag, so every atomic
 * update touches the keys of one tag:
 *   PREFIX{a:SHOP:AGENT}  one agent's figures (all periods) and its fence
 *   PREFIX{t:SHOP}        the shop's team figures     PREFIX{u:SHOP} unattributed orders
 *   PREFIX{p:TOPIC:PART}  one input partition: offset, journal, conversation/order state
 *   PREFIX{c:N}           customer contacts (attribution), N = hash % KEYS_CONTACT_BUCKETS
 *   PREFIX{d:N}           event_id dedup claims,        N = hash % KEYS_DEDUP_BUCKETS
 *   PREFIX{wm}            partition watermarks and the global watermark
 *   PREFIX{r}             registry: shops, dead-letter counters */
#ifndef CSM_AGGREGATOR_KEYS_H
#define CSM_AGGREGATOR_KEYS_H

#include <stdint.h>

#include "common/buf.h"

#define KEYS_CONTACT_BUCKETS 64
#define KEYS_DEDUP_BUCKETS 16

enum keys_owner { KEYS_AGENT, KEYS_TEAM, KEYS_UNATTRIBUTED };

/* Appends id escaped as above. */
void keys_escape(struct buf *b, const char *id);
/* Reverses keys_escape into a malloc'd string (NULL when malformed). */
char *keys_unescape(const char *s, size_t n);

/* PREFIX{a:SHOP:AGENT} / PREFIX{t:SHOP} / PREFIX{u:SHOP} (agent ignored but for KEYS_AGENT). */
void keys_owner_tag(struct buf *b, const char *prefix, enum keys_owner o, const char *shop,
                    const char *agent);
/* b = PREFIX{x:RULE:SHOP} (b is reset first): one rule's outputs for one shop. */
void keys_rule_tag(struct buf *b, const char *prefix, const char *rule, const char *shop);
/* PREFIX{p:TOPIC:PART} */
void keys_partition_tag(struct buf *b, const char *prefix, const char *topic, int32_t partition);
/* PREFIX{c:N}:SHOP:CUSTOMER — a sorted set of the customer's recent messages. */
void keys_contact(struct buf *b, const char *prefix, const char *shop, const char *customer);
/* The same key as its hash tag (PREFIX{c:N}) and the rest (":SHOP:CUSTOMER"), appended
 * to tag and suffix: the delta groups writes by tag. */
void keys_contact_parts(struct buf *tag, struct buf *suffix, const char *prefix, const char *shop,
                        const char *customer);
/* A member of the contact set: "TS:SEQ:AGENT", zero-padded so that equal ts sort by
 * arrival (seq, the Kafka offset). */
void keys_contact_member(struct buf *b, int64_t ts_ms, uint64_t seq, const char *agent);
/* The AGENT of a contact member (pointing into it), NULL when malformed. */
const char *keys_contact_agent(const char *member);
/* PREFIX{d:N}:EVENT_ID */
void keys_dedup(struct buf *b, const char *prefix, const char *event_id);
/* FNV-1a 64, the bucket hash. */
uint64_t keys_hash(const char *s);

#endif
