/* event — names of topics, types and roles, and the release of a decoded event.
 * The name tables are indexed by the enums of event.h; a value outside an enum's
 * range has no name (NULL). */
#include "consumers/event.h"

#include <stdlib.h>

static const char *const type_names[EV_TYPE_COUNT] = {
    [EV_MESSAGE] = "message",     [EV_TRANSFER] = "transfer", [EV_COMPLAINT] = "complaint",
    [EV_CREATED] = "created",     [EV_PAID] = "paid",         [EV_REFUNDED] = "refunded",
    [EV_CANCELLED] = "cancelled", [EV_FLAGGED] = "flagged",   [EV_REVIEW] = "review",
    [EV_TARGET] = "target",       [EV_ABSENCE] = "absence",
};

static const char *const topic_names[TOPIC_INPUT_COUNT] = {
    [TOPIC_CHAT] = "chat",
    [TOPIC_ORDERS] = "orders",
    [TOPIC_REVIEWS] = "reviews",
};

static const char *const role_names[ROLE_COUNT] = {
    [ROLE_SELF] = "self",
    [ROLE_MANAGER] = "manager",
    [ROLE_INDIRECT_MANAGER] = "indirect_manager",
};

/* "message", "transfer", ... as events.md spells them; NULL for an invalid type. */
const char *event_type_name(enum event_type t)
{
    return (unsigned)t < EV_TYPE_COUNT ? type_names[t] : NULL;
}

/* "chat", "orders", "reviews"; NULL for an invalid topic. */
const char *event_topic_name(enum event_topic t)
{
    return (unsigned)t < TOPIC_INPUT_COUNT ? topic_names[t] : NULL;
}

/* "self", "manager", "indirect_manager"; NULL for an invalid role. */
const char *review_role_name(enum review_role r)
{
    return (unsigned)r < ROLE_COUNT ? role_names[r] : NULL;
}

void event_release(struct event *ev)
{
    if (!ev)
        return;
    free(ev->arena);
    *ev = (struct event){0};
}
