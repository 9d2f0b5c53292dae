/* delta — the Redis writes one batch makes, grouped by hash tag (one atomic FCALL
 * per tag, see store.h) and, within a tag, by key. Each key's writes are reduced to
 * their net effect before they are sent: counters summed, set members added once, the
 * last write of a sorted-set member or hash field kept, the highest trim bound kept.
 * The net effect is what applying the writes in order would give, so the batch costs
 * Redis one variadic command per key and kind instead of one per event. Also the
 * journal record of a batch: delta_encode/delta_decode_groups (binary, opaque to Redis).
 *
 * Ops as the Lua function csm_apply sees them: CODE KEY N then N items:
 *   S key n m...         SADD key m...
 *   Z key n (score m)... ZADD key score m ...
 *   R key n m...         ZREM key m...
 *   H key n (f v)...     HSET key f v ...
 *   C key n (f d)...     HINCRBY key f d, per field (counters)
 *   M key n (f d)...     HINCRBY, then HDEL when the result is <= 0 (multiset of members)
 *   T key 1 max          ZREMRANGEBYSCORE key -inf (max   (sent before the key's Z and R)
 * KEY is a 1-based index into the group's keys; at most DELTA_CHUNK items per op. */
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
void delta_incr(struct delta *d, const char *tag, const char *suffix, const char *field,
                int64_t by);
void delta_mincr(struct delta *d, const char *tag, const char *suffix, const char *field,
                 int64_t by);
void delta_sadd(struct delta *d, const char *tag, const char *suffix, const char *member);
void delta_hset(struct delta *d, const char *tag, const char *suffix, const char *field,
                const char *value);
void delta_zadd(struct delta *d, const char *tag, const char *suffix, int64_t score,
                const char *member);
void delta_zrem(struct delta *d, const char *tag, const char *suffix, const char *member);
void delta_ztrim(struct delta *d, const char *tag, const char *suffix, int64_t below);

#define DELTA_CHUNK 1000

/* One tag's writes, materialised: keys[0..nkeys) and args[0..nargs) in the op format
 * above. Borrowed until the next call. */
struct delta_group {
    const char *tag;
    size_t nkeys;
    const char **keys;
    size_t nargs;
    const char **args;
    size_t *arglens;
};

size_t delta_group_count(const struct delta *d);
/* True when d writes keys of tag. */
bool delta_has_tag(const struct delta *d, const char *tag);
/* Adds src's net writes to dst (counters summed, sets united, last Z/R/H of src wins). */
void delta_merge(struct delta *dst, const struct delta *src);
/* Materialises group i (0-based, in first-use order). */
void delta_group_get(struct delta *d, size_t i, struct delta_group *g);

/* Journal: every group, in order. */
void delta_encode(struct delta *d, struct buf *out);

/* Checks that args[0..nargs) is a well-formed op list over nkeys keys. */
bool delta_args_valid(size_t nkeys, const char *const *args, const size_t *arglens, size_t nargs);

/* Decodes a journal record back into groups; calls cb per group. -1 when malformed. */
typedef int (*delta_group_cb)(void *ud, const struct delta_group *g);
int delta_decode_groups(const void *p, size_t n, delta_group_cb cb, void *ud);

/* Every net write, one item at a time, for an in-memory reader of the layout (the
 * offline rule tester): code as in the op list; field is the member or field; value the
 * HSET value (else NULL); num the score, count delta or trim bound. Borrowed pointers. */
struct delta_op_view {
    const char *tag;
    const char *key;
    char code;
    const char *field;
    const char *value;
    int64_t num;
};
void delta_foreach_op(const struct delta *d, void (*cb)(void *ud, const struct delta_op_view *op),
                      void *ud);

#endif
