/* cli/evjson — the review and target events `csmetrics review` and `target` write
 * (events.md, topic reviews): built from command-line values into one JSON object,
 * then checked with the daemon's own decoder (consumers/decode.c), so that the tool
 * refuses exactly what csmetricsd would dead-letter. Pure: no I/O, the clock comes in. */
#ifndef CSM_CLI_EVJSON_H
#define CSM_CLI_EVJSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "consumers/decode.h"
#include "consumers/event.h"

/* The fields every review and target event has. All borrowed; shop_id NULL leaves the
 * field out (the daemon then uses "default"). ts is the text given: all digits (an
 * optional leading '-') go as an integer epoch ms, anything else as a string. */
struct evjson_common {
    const char *event_id;
    const char *ts;
    const char *shop_id;
    const char *agent_id;
    const char *period;
};

/* Appends a review event to out: item, score (a JSON number's text), max (NULL: left
 * out, the daemon's default is 100), role and reviewer. -1 with a message in err when
 * score or max is not a JSON number (what the daemon would take as invalid JSON). */
int evjson_review(struct buf *out, const struct evjson_common *c, const char *item,
                  const char *score, const char *max, const char *role, const char *reviewer,
                  char *err, size_t errlen);

/* Appends a target event to out; amount goes as a JSON string (the decoder checks its
 * decimals). */
void evjson_target(struct buf *out, const struct evjson_common *c, const char *amount);

/* Checks one message as csmetricsd would check it on the reviews topic, and that it is
 * of type `want`. 0 with *ev filled (release it with event_release); -1 with *ev
 * released and a message in err: "field 'score': outside 0..max (csmetricsd would
 * dead-letter it as bad_value)". */
int evjson_check(const void *msg, size_t len, enum event_type want, const struct decode_opts *o,
                 struct event *ev, char *err, size_t errlen);

/* Splits "ITEM=SCORE" at its last '='; both parts non-empty. Pointers into arg (item
 * is copied to item_buf). -1 with a message in err otherwise. */
int evjson_split_item(const char *arg, char *item_buf, size_t item_len, const char **score,
                      char *err, size_t errlen);

/* True when s is a JSON number (RFC 8259 grammar), e.g. "4", "4.5", "1e2". */
bool evjson_is_number(const char *s);

/* A fresh event_id "csm-<now_ms>-<16 hex digits of rnd>" into out (>= 48 bytes). */
void evjson_make_id(char *out, size_t outlen, int64_t now_ms, uint64_t rnd);

#endif
