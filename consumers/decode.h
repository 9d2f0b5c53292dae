/* decode — bytes of one Kafka message to a struct event, applying every rule of
 * events.md (pure: no I/O; the wall clock comes in as an argument). A message that
 * breaks a rule yields a dead-letter reason and a human detail naming the field. */
#ifndef CSM_CONSUMERS_DECODE_H
#define CSM_CONSUMERS_DECODE_H

#include <stddef.h>
#include <stdint.h>

#include "consumers/event.h"

#define DECODE_MAX_BYTES (64 * 1024)

enum dl_reason {
    DL_NONE = 0,
    DL_INVALID_JSON,
    DL_MISSING_FIELD,
    DL_BAD_TYPE,
    DL_BAD_VALUE,
    DL_UNKNOWN_TYPE,
    DL_BAD_AMOUNT,
    DL_BAD_TS,
    DL_FUTURE_TS,
    DL_TOO_LARGE,
    DL_LATE,
    DL_ORPHAN,
    DL_REASON_COUNT
};

/* "invalid_json", "missing_field", ... as events.md spells them. */
const char *dl_reason_name(enum dl_reason r);

struct decode_opts {
    int64_t now_ms;        /* wall clock, for max_future */
    int64_t max_future_ms; /* events.md max_future (default 24 h) */
};

/* Decodes one message of `topic`. On success returns DL_NONE and fills *ev (release
 * it with event_release). Otherwise returns the reason, writes a detail such as
 * "field 'amount': more than two decimals" into detail, and leaves *ev released. */
enum dl_reason decode_event(enum event_topic topic, const void *buf, size_t len,
                            const struct decode_opts *opts, struct event *ev, char *detail,
                            size_t detail_len);

/* Parses an amount's text (the JSON number's or string's characters) to cents:
 * [0-9]+(\.[0-9]+)?, no non-zero digit after the second decimal, < 10^12.
 * 0, or -1 when bad. */
int decode_amount_cents(const char *text, size_t len, int64_t *cents);

/* Parses an RFC 3339 date-time with offset (events.md) to epoch ms (truncating
 * sub-ms digits). 0, or -1 when bad. */
int decode_rfc3339_ms(const char *text, size_t len, int64_t *ms);

/* The dead-letter record of events.md as one JSON object (no newline), in a
 * malloc'd string the caller frees; NULL on allocation failure. ts_seen_ms is the
 * wall clock; payload goes as "payload" when valid UTF-8, else "payload_b64". */
char *decode_deadletter_json(enum dl_reason reason, const char *detail, const char *topic,
                             int32_t partition, int64_t offset, int64_t ts_seen_ms,
                             const void *payload, size_t payload_len);

#endif
