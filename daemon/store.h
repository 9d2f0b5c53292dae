/* store — csmetricsd's state in Redis: the thin I/O shell over rconn that carries out
 * the exactly-once protocol (README "Exactly once"):
 *   1. csm_dedup claims each event_id (a claim equal to ours is our own replay);
 *   2. csm_commit, on the partition's tag, checks the stored offset is the one this
 *      owner read from (else FENCED: another owner moved it), stores the batch's
 *      writes as a journal, the partition-local state and the new offset, atomically;
 *   3. csm_apply, per hash tag, applies that tag's writes once (fence: last seq per
 *      partition); 4. csm_done drops the journal. A crash between 2 and 4 is healed by
 *      store_partition_recover, which re-applies a pending journal before reading. */
#ifndef CSM_DAEMON_STORE_H
#define CSM_DAEMON_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aggregator/delta.h"
#include "aggregator/kpi.h"
#include "aggregator/period.h"
#include "daemon/rconn.h"

extern const char store_lua_library[];

struct store;

/* rc is borrowed and must outlive the store; prefix is copied. */
struct store *store_new(struct rconn *rc, const char *prefix);
void store_destroy(struct store *s);
const char *store_prefix(const struct store *s);

struct store_partition_meta {
    int64_t off;   /* next offset to read; -1 when none stored */
    uint64_t seq;  /* last committed batch sequence */
    int64_t wm_ms; /* largest ts committed; 0 when none */
};

/* Heals a pending journal of the partition, then reads its meta. 0/-1. */
int store_partition_recover(struct store *s, const char *topic, int32_t part,
                            struct store_partition_meta *m, char *err, size_t errlen);

/* Counters csm_apply saturated at the int64 limit so far (a sum that would overflow, or a
 * field holding no integer): each one is a figure that is no longer exact. */
uint64_t store_saturated(const struct store *s);

/* Claims event ids for dedup_window (ttl_ms); dup[i] = true for a duplicate. 0/-1. */
int store_dedup(struct store *s, size_t n, const char *const *ids, const char *const *claims,
                int64_t ttl_ms, bool *dup, char *err, size_t errlen);

enum store_state { STORE_CONV, STORE_ORD, STORE_PEND, STORE_STATE_COUNT };

/* Reads fields of one partition-local state hash. values[i] is malloc'd (NULL when
 * absent), lens[i] its length. 0/-1. */
int store_state_get(struct store *s, const char *topic, int32_t part, enum store_state which,
                    size_t n, const char *const *fields, char **values, size_t *lens, char *err,
                    size_t errlen);
/* Several partitions' reads of store_state_get in one round trip; values[i] and
 * lens[i] of each request are filled as there (on success). 0/-1. */
struct store_state_req {
    const char *topic;
    int32_t part;
    enum store_state which;
    size_t n;
    const char *const *fields;
    char **values;
    size_t *lens;
};
int store_state_get_many(struct store *s, struct store_state_req *reqs, size_t nreq, char *err,
                         size_t errlen);
/* Every field of a partition-local state hash (for the pending-order index). The
 * callback gets borrowed pointers. 0/-1. */
int store_state_scan(struct store *s, const char *topic, int32_t part, enum store_state which,
                     void (*cb)(void *ud, const char *field, const char *value, size_t len),
                     void *ud, char *err, size_t errlen);

/* One chunk of an incremental HSCAN of a partition-local state hash, several
 * partitions in one round trip (for garbage collection). cursor: 0 starts a pass, and
 * comes back 0 when the pass is complete. cb gets borrowed pointers. */
struct store_scan {
    const char *topic;
    int32_t part;
    enum store_state which;
    uint64_t cursor;
    void (*cb)(void *ud, const char *field, const char *value, size_t len);
    void *ud;
};
int store_state_scan_chunks(struct store *s, struct store_scan *scans, size_t n, size_t count,
                            char *err, size_t errlen);

/* The key suffixes (after "TAG:LABEL:") of one owner's figures for one period. */
extern const char *const store_figure_keys[];
#define STORE_FIGURE_KEYS 12

struct store_kv {
    const char *field;
    const char *value; /* NULL or "" deletes the field */
    size_t len;
};

struct store_batch {
    const char *topic;
    int32_t part;
    int64_t expected_off, new_off;
    int64_t wm_ms; /* the partition's watermark after this batch (stored with it); 0: none */
    uint64_t seq;
    struct delta *delta; /* borrowed */
    struct store_kv *state[STORE_STATE_COUNT];
    size_t nstate[STORE_STATE_COUNT];
};

/* Steps 2-4 for one partition's batch. Returns 0, 1 when FENCED (nothing written:
 * re-read the partition), -1 on error (err; the connection may be gone). */
int store_commit(struct store *s, const struct store_batch *b, char *err, size_t errlen);

/* Steps 2-4 for several partitions of one consumer batch in three round trips: every
 * commit, then each tag's writes of all the partitions merged into one csm_apply (merged:
 * the union of the batches' deltas, built by the caller with delta_merge), then every
 * done. fenced[i] tells which batches were FENCED (their writes are not applied; the
 * others are, one partition at a time). 0, or -1 on error. */
int store_commit_batches(struct store *s, const struct store_batch *b, size_t n,
                         struct delta *merged, bool *fenced, char *err, size_t errlen);

struct store_wm_part {
    const char *name; /* "topic:partition" */
    int64_t wm_ms;
    int64_t idle_until_ms; /* > now: idle, excluded */
    int64_t attributed_ms; /* orders partitions: global watermark attributed up to; else -1 */
    /* > 0: the earliest close (end + a rule's lateness) of the periods that this partition's
     * uncommitted batches write; the close watermark stays below it. 0: none. */
    int64_t lease_ms;
};

/* The input partitions that exist ("topic:partition"), whoever owns them: store_wm
 * holds the global watermark back while one of them was never published (its owner died
 * before publishing it, say). Copied; none set: only published partitions count. */
void store_set_partitions(struct store *s, size_t n, const char *const *names);

/* Updates partition watermarks and returns the global one and the close watermark (the
 * global one held back by orders not attributed yet, and kept below every lease). 0/-1. */
int store_wm(struct store *s, int64_t now_ms, bool allow_wall, size_t n,
             const struct store_wm_part *parts, int64_t *global_ms, int64_t *close_ms, char *err,
             size_t errlen);

/* The agent of each customer's latest message with ts in [ts - window, ts]; agents[i]
 * malloc'd or NULL. 0/-1. */
int store_contact_latest(struct store *s, size_t n, const char *const *shops,
                         const char *const *customers, const int64_t *ts, int64_t window_ms,
                         char **agents, char *err, size_t errlen);

/* The raw figures of one owner tag (keys_owner_tag) and period. Absences are counted
 * against p. 0, 1 when the owner has no figures at all for that period, -1 on error. */
int store_read_figures(struct store *s, const char *owner_tag, const struct period *p,
                       struct kpi_figures *f, char *err, size_t errlen);

#endif
