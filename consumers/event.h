/* event — one decoded input event (events.md), a plain value struct.
 * String fields point into ev->arena (owned by the event, freed by event_release);
 * a field that is absent is NULL. Ids hold no NUL byte. */
#ifndef CSM_CONSUMERS_EVENT_H
#define CSM_CONSUMERS_EVENT_H

#include <stdbool.h>
#include <stdint.h>

#include "aggregator/period.h"

enum event_topic { TOPIC_CHAT, TOPIC_ORDERS, TOPIC_REVIEWS, TOPIC_INPUT_COUNT };

enum event_type {
    EV_MESSAGE,
    EV_TRANSFER,
    EV_COMPLAINT,
    EV_CREATED,
    EV_PAID,
    EV_REFUNDED,
    EV_CANCELLED,
    EV_FLAGGED,
    EV_REVIEW,
    EV_TARGET,
    EV_ABSENCE,
    EV_TYPE_COUNT
};

enum event_direction { DIR_NONE, DIR_IN, DIR_OUT };

enum review_role { ROLE_SELF, ROLE_MANAGER, ROLE_INDIRECT_MANAGER, ROLE_COUNT };

struct event {
    enum event_topic topic;
    enum event_type type;
    int64_t ts_ms;        /* event time, epoch ms (finer fractions truncated) */
    const char *event_id; /* 1..128 bytes */
    const char *shop_id;  /* "default" when absent */
    const char *conversation_id;
    const char *agent_id;
    const char *to_agent_id;
    const char *customer_id;
    const char *order_id;
    const char *item;     /* review */
    const char *reviewer; /* review */
    const char *reason;   /* flagged */
    enum event_direction direction;
    enum review_role role;
    int64_t amount_cents;     /* created/paid/refunded/target; -1 when absent */
    double score, max;        /* review; max defaults to 100 */
    struct period period;     /* review/target: the labelled period */
    int32_t from_day, to_day; /* absence, days since 1970-01-01, inclusive */
    char *arena;              /* owned */
};

const char *event_type_name(enum event_type t);
const char *event_topic_name(enum event_topic t); /* "chat", "orders", "reviews" */
const char *review_role_name(enum review_role r);

/* Frees ev->arena and zeroes ev; NULL and zeroed events are fine. */
void event_release(struct event *ev);

#endif
