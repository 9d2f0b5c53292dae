/* delta — the Redis writes one batch makes, grouped by hash tag (one atomic FCALL
 * per tag, see store.h). Commutative counters are summed locally, set members are
 * added once per batch, other writes keep their order. Also the journal record of a
 * batch: delta_encode/delta_decode_groups (binary, opaque to Redis).
 *
 * Ops as the Lua function csm_apply sees them, three arguments each:
 *   C key field n     HINCRBY (counter)
 *   M key field n     HINCRBY, HDEL when the result is <= 0 (multiset of members)
 *   S key member -    SADD
 *   H key field v     HSET
 *   Z key score m     ZADD
 *   R key member -    ZREM
 *   T key max -       ZREMRANGEBYSCORE -inf (max */
#ifndef CSM_AGGREGATOR_DELTA_H
#define CSM_AGGREGATOR_DELTA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

struct delta;

struct delta *delta_new(void);
void delta_destroy(struct delta *d); /* NULL ok */
void delta_reset(struct delta *d);
bool delta_empty(const struct delta *d);

/* `tag` is a full tag ("csm:{a:demo:x1}"); the key is tag + suffix (suffix may be ""). */
void delta_incr(struct delta *d, const char *tag, const char *suffix, const char *field, int64_t by);
void delta_mincr(struct delta *d, const char *tag, const char *suffix, const char *field, int64_t by);
void delta_sadd(struct delta *d, const char *tag, const char *suffix, const char *member);
void delta_hset(struct delta *d, const char *tag, const char *suffix, const char *field,
                const char *value);
void delta_zadd(struct delta *d, const char *tag, const char *suffix, int64_t score,
                const char *member);
void delta_zrem(struct delta *d, const char *tag, const char *suffix, const char *member);
void delta_ztrim(struct delta *d, const char *tag, const char *suffix, int64_t below);

/* One tag's writes, materialised: keys[0..nkeys) and args[0..nargs) (4 per op:
 * opcode, key index (1-based into keys), a, b). Borrowed until the next call. */
struct delta_group {
    const char *tag;
    size_t nkeys;
    const char **keys;
    size_t nargs;
    const char **args;
    size_t *arglens;
};

size_t delta_group_count(const struct delta *d);
/* Materialises group i (0-based, in first-use order). */
void delta_group_get(struct delta *d, size_t i, struct delta_group *g);

/* Journal: every group, in order. */
void delta_encode(struct delta *d, struct buf *out);

/* Decodes a journal record back into groups; calls cb per group. -1 when malformed. */
typedef int (*delta_group_cb)(void *ud, const struct delta_group *g);
int delta_decode_groups(const void *p, size_t n, delta_group_cb cb, void *ud);

#endif
