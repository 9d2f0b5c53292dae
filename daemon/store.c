/* store — see store.h. Replies are checked for type before use: Redis is the outside
 * world. Round trips per batch: one for the commit, one for the applies, one for done. */
#include "daemon/store.h"
#include "aggregator/keys.h"
#include "common/buf.h"

#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct store {
    struct rconn *rc;
    char *prefix;
    char **known; /* store_set_partitions */
    size_t nknown;
    struct buf k1, k2, k3;
    uint64_t saturated; /* counters csm_apply saturated (store_saturated) */
};

static const char *const store_state_names[STORE_STATE_COUNT] = {
    [STORE_CONV] = ":conv", [STORE_ORD] = ":ord", [STORE_PEND] = ":pend"};

struct store *store_new(struct rconn *rc, const char *prefix)
{
    struct store *s = xcalloc(1, sizeof(*s));
    s->rc = rc;
    s->prefix = xstrdup(prefix);
    return s;
}

void store_destroy(struct store *s)
{
    if (!s)
        return;
    free(s->prefix);
    store_set_partitions(s, 0, NULL);
    buf_release(&s->k1);
    buf_release(&s->k2);
    buf_release(&s->k3);
    free(s);
}

const char *store_prefix(const struct store *s)
{
    return s->prefix;
}

/* A growable argv for one command. */
struct argv {
    const char **v;
    size_t *len;
    size_t n, cap;
    struct buf nums; /* numbers formatted in place; offsets fixed up at send */
};

static void argv_push(struct argv *a, const char *s, size_t n)
{
    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 32;
        a->v = xrealloc(a->v, a->cap * sizeof(*a->v));
        a->len = xrealloc(a->len, a->cap * sizeof(*a->len));
    }
    a->v[a->n] = s;
    a->len[a->n] = n;
    a->n++;
}

static void argv_pushs(struct argv *a, const char *s)
{
    argv_push(a, s, strlen(s));
}

static void argv_release(struct argv *a)
{
    free(a->v);
    free(a->len);
    *a = (struct argv){0};
}

static void store_append(struct store *s, struct argv *a)
{
    rconn_append(s->rc, (int)a->n, a->v, a->len);
}

static int store_reply_error(const redisReply *r, char *err, size_t errlen, const char *what)
{
    if (!r) {
        snprintf(err, errlen, "%s: no reply", what);
        return -1;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        snprintf(err, errlen, "%s: %s", what, r->str);
        return -1;
    }
    return 0;
}

static void store_meta_keys(struct store *s, const char *topic, int32_t part)
{
    buf_reset(&s->k1);
    keys_partition_tag(&s->k1, s->prefix, topic, part);
    buf_reset(&s->k2);
    buf_add(&s->k2, s->k1.data, s->k1.len);
    buf_adds(&s->k1, ":meta");
    buf_adds(&s->k2, ":journal");
}

/* Appends the csm_apply call of one group, fenced by one partition or (npids > 1) by
 * several partitions whose writes were merged. */
static void store_append_apply_multi(struct store *s, const struct delta_group *g, size_t npids,
                                     const char *const *pids, const char *const *seqs)
{
    struct argv a = {0};
    char nkeys[24], np[24];
    struct buf fence;
    buf_init(&fence);
    buf_adds(&fence, g->tag);
    buf_adds(&fence, ":fence");
    snprintf(nkeys, sizeof(nkeys), "%zu", g->nkeys + 1);
    snprintf(np, sizeof(np), "%zu", npids);
    argv_pushs(&a, "FCALL");
    argv_pushs(&a, "csm_apply");
    argv_pushs(&a, nkeys);
    argv_push(&a, fence.data, fence.len);
    for (size_t i = 0; i < g->nkeys; i++)
        argv_pushs(&a, g->keys[i]);
    if (npids != 1) {
        argv_pushs(&a, "*");
        argv_pushs(&a, np);
    }
    for (size_t i = 0; i < npids; i++) {
        argv_pushs(&a, pids[i]);
        argv_pushs(&a, seqs[i]);
    }
    for (size_t i = 0; i < g->nargs; i++)
        argv_push(&a, g->args[i], g->arglens[i]);
    store_append(s, &a);
    argv_release(&a);
    buf_release(&fence);
}

static void store_append_apply(struct store *s, const struct delta_group *g, const char *pid,
                               const char *seq)
{
    store_append_apply_multi(s, g, 1, &pid, &seq);
}

struct store_replay {
    struct store *s;
    const char *pid, *seq;
    size_t n;
};

static int store_replay_group(void *ud, const struct delta_group *g)
{
    struct store_replay *r = ud;
    store_append_apply(r->s, g, r->pid, r->seq);
    r->n++;
    return 0;
}

static int store_check_group(void *ud, const struct delta_group *g)
{
    (void)ud;
    (void)g;
    return 0;
}

/* Runs the queue; -1 on the first error reply. applies: the queue is csm_apply calls,
 * whose replies above 1 count saturated counters. */
static int store_exec_all(struct store *s, char *err, size_t errlen, const char *what, bool applies)
{
    redisReply **rep = NULL;
    size_t n = 0;
    if (rconn_exec(s->rc, &rep, &n, err, errlen) < 0)
        return -1;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        rc = store_reply_error(rep[i], err, errlen, what);
        if (rc == 0 && applies && rep[i]->type == REDIS_REPLY_INTEGER && rep[i]->integer > 1)
            s->saturated += (uint64_t)(rep[i]->integer - 1);
    }
    rconn_replies_free(rep, n);
    return rc;
}

uint64_t store_saturated(const struct store *s)
{
    return s->saturated;
}

int store_partition_recover(struct store *s, const char *topic, int32_t part,
                            struct store_partition_meta *m, char *err, size_t errlen)
{
    store_meta_keys(s, topic, part);
    char *meta = xstrdup(s->k1.data), *journal = xstrdup(s->k2.data);
    int rc = -1;
    redisReply *r = rconn_command(s->rc, err, errlen, "HMGET %s off seq jseq wm", meta);
    redisReply *j = NULL;
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 4) {
        if (r)
            snprintf(err, errlen, "unexpected reply reading '%s'", meta);
        goto out;
    }
    m->off = r->element[0]->type == REDIS_REPLY_STRING ? strtoll(r->element[0]->str, NULL, 10) : -1;
    m->seq = r->element[1]->type == REDIS_REPLY_STRING ? strtoull(r->element[1]->str, NULL, 10) : 0;
    m->wm_ms =
        r->element[3]->type == REDIS_REPLY_STRING ? strtoll(r->element[3]->str, NULL, 10) : 0;
    if (r->element[2]->type == REDIS_REPLY_STRING) {
        const char *jseq = r->element[2]->str;
        j = rconn_command(s->rc, err, errlen, "GET %s", journal);
        if (!j)
            goto out;
        if (j->type == REDIS_REPLY_STRING) {
            char pid[256];
            snprintf(pid, sizeof(pid), "%s:%d", topic, (int)part);
            struct store_replay rp = {.s = s, .pid = pid, .seq = jseq};
            /* Validate the whole record first: decoding queues each group's apply as
             * it goes, and a bad group further on would leave the earlier ones queued
             * for whatever command is sent next. */
            if (delta_decode_groups(j->str, j->len, store_check_group, NULL) < 0 ||
                delta_decode_groups(j->str, j->len, store_replay_group, &rp) < 0) {
                snprintf(err, errlen, "malformed journal '%s'", journal);
                goto out;
            }
            if (store_exec_all(s, err, errlen, "replaying journal", true) < 0)
                goto out;
        }
        redisReply *d =
            rconn_command(s->rc, err, errlen, "FCALL csm_done 2 %s %s %s", meta, journal, jseq);
        if (!d)
            goto out;
        freeReplyObject(d);
    }
    rc = 0;
out:
    if (r)
        freeReplyObject(r);
    if (j)
        freeReplyObject(j);
    free(meta);
    free(journal);
    return rc;
}

int store_dedup(struct store *s, size_t n, const char *const *ids, const char *const *claims,
                int64_t ttl_ms, bool *dup, char *err, size_t errlen)
{
    if (n == 0)
        return 0;
    /* One plain SET NX GET per id, pipelined: cheaper for Redis than a function looping
     * over them (each key is its own hash tag's only key, so this is Cluster-safe). */
    char ttl[24];
    snprintf(ttl, sizeof(ttl), "%" PRId64, ttl_ms);
    size_t ttllen = strlen(ttl);
    for (size_t i = 0; i < n; i++) {
        buf_reset(&s->k1);
        keys_dedup(&s->k1, s->prefix, ids[i]);
        const char *argv[7] = {"SET", s->k1.data, claims[i], "NX", "GET", "PX", ttl};
        size_t lens[7] = {3, s->k1.len, strlen(claims[i]), 2, 3, 2, ttllen};
        rconn_append(s->rc, 7, argv, lens);
    }
    redisReply **rep = NULL;
    size_t nr = 0;
    int rc = rconn_exec(s->rc, &rep, &nr, err, errlen);
    if (rc == 0 && nr != n) {
        snprintf(err, errlen, "dedup: %zu replies for %zu claims", nr, n);
        rc = -1;
    }
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const redisReply *r = rep[i];
        if (store_reply_error(r, err, errlen, "dedup") < 0)
            rc = -1;
        else if (r->type == REDIS_REPLY_NIL)
            dup[i] = false; /* claimed now */
        else if (r->type == REDIS_REPLY_STRING)
            dup[i] = strcmp(r->str, claims[i]) != 0; /* ours: a replay of our own */
        else {
            snprintf(err, errlen, "dedup: unexpected reply");
            rc = -1;
        }
    }
    rconn_replies_free(rep, nr);
    return rc;
}

static void store_state_key(struct store *s, struct buf *b, const char *topic, int32_t part,
                            enum store_state which)
{
    buf_reset(b);
    keys_partition_tag(b, s->prefix, topic, part);
    buf_adds(b, store_state_names[which]);
}

int store_state_get_many(struct store *s, struct store_state_req *reqs, size_t nreq, char *err,
                         size_t errlen)
{
    size_t sent = 0;
    for (size_t q = 0; q < nreq; q++) {
        if (reqs[q].n == 0)
            continue;
        struct argv a = {0};
        store_state_key(s, &s->k3, reqs[q].topic, reqs[q].part, reqs[q].which);
        argv_pushs(&a, "HMGET");
        argv_push(&a, s->k3.data, s->k3.len);
        for (size_t i = 0; i < reqs[q].n; i++)
            argv_pushs(&a, reqs[q].fields[i]);
        store_append(s, &a);
        argv_release(&a);
        sent++;
    }
    if (sent == 0)
        return 0;
    redisReply **rep = NULL;
    size_t nr = 0;
    if (rconn_exec(s->rc, &rep, &nr, err, errlen) < 0)
        return -1;
    int rc = nr == sent ? 0 : -1;
    for (size_t q = 0, k = 0; rc == 0 && q < nreq; q++) {
        if (reqs[q].n == 0)
            continue;
        redisReply *r = rep[k++];
        if (r->type != REDIS_REPLY_ARRAY || r->elements != reqs[q].n) {
            rc = -1;
            break;
        }
        for (size_t i = 0; i < reqs[q].n; i++) {
            redisReply *e = r->element[i];
            reqs[q].values[i] = e->type == REDIS_REPLY_STRING ? xstrndup(e->str, e->len) : NULL;
            reqs[q].lens[i] = e->type == REDIS_REPLY_STRING ? e->len : 0;
        }
    }
    if (rc < 0)
        snprintf(err, errlen, "unexpected reply reading partition state");
    rconn_replies_free(rep, nr);
    return rc;
}

int store_state_get(struct store *s, const char *topic, int32_t part, enum store_state which,
                    size_t n, const char *const *fields, char **values, size_t *lens, char *err,
                    size_t errlen)
{
    struct store_state_req req = {.topic = topic,
                                  .part = part,
                                  .which = which,
                                  .n = n,
                                  .fields = fields,
                                  .values = values,
                                  .lens = lens};
    return store_state_get_many(s, &req, 1, err, errlen);
}

int store_state_scan(struct store *s, const char *topic, int32_t part, enum store_state which,
                     void (*cb)(void *ud, const char *field, const char *value, size_t len),
                     void *ud, char *err, size_t errlen)
{
    store_state_key(s, &s->k3, topic, part, which);
    redisReply *r = rconn_command(s->rc, err, errlen, "HGETALL %b", s->k3.data, s->k3.len);
    if (!r)
        return -1;
    int rc = 0;
    if (r->type != REDIS_REPLY_ARRAY) {
        snprintf(err, errlen, "unexpected reply scanning partition state");
        rc = -1;
    } else {
        for (size_t i = 0; i + 1 < r->elements; i += 2)
            cb(ud, r->element[i]->str, r->element[i + 1]->str, r->element[i + 1]->len);
    }
    freeReplyObject(r);
    return rc;
}

int store_state_scan_chunks(struct store *s, struct store_scan *scans, size_t n, size_t count,
                            char *err, size_t errlen)
{
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        store_state_key(s, &s->k3, scans[i].topic, scans[i].part, scans[i].which);
        char cur[24], cnt[24];
        snprintf(cur, sizeof(cur), "%" PRIu64, scans[i].cursor);
        snprintf(cnt, sizeof(cnt), "%zu", count);
        rconn_appendf(s->rc, "HSCAN %b %s COUNT %s", s->k3.data, s->k3.len, cur, cnt);
    }
    redisReply **rep = NULL;
    size_t nr = 0;
    if (rconn_exec(s->rc, &rep, &nr, err, errlen) < 0)
        return -1;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const redisReply *r = i < nr ? rep[i] : NULL;
        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
            r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_ARRAY) {
            snprintf(err, errlen, "unexpected reply scanning partition state");
            rc = -1;
            break;
        }
        scans[i].cursor = strtoull(r->element[0]->str, NULL, 10);
        const redisReply *kv = r->element[1];
        for (size_t j = 0; j + 1 < kv->elements; j += 2)
            scans[i].cb(scans[i].ud, kv->element[j]->str, kv->element[j + 1]->str,
                        kv->element[j + 1]->len);
    }
    rconn_replies_free(rep, nr);
    return rc;
}

/* Appends b's csm_commit; its journal goes to *journal (empty when b writes nothing). */
static void store_append_commit(struct store *s, const struct store_batch *b, struct buf *journal)
{
    store_meta_keys(s, b->topic, b->part);
    struct buf keys[STORE_STATE_COUNT];
    if (!delta_empty(b->delta))
        delta_encode(b->delta, journal);
    char exp[24], noff[24], seq[24];
    snprintf(exp, sizeof(exp), "%" PRId64, b->expected_off);
    snprintf(noff, sizeof(noff), "%" PRId64, b->new_off);
    snprintf(seq, sizeof(seq), "%" PRIu64, b->seq);
    char counts[STORE_STATE_COUNT][24];
    struct argv a = {0};
    argv_pushs(&a, "FCALL");
    argv_pushs(&a, "csm_commit");
    argv_pushs(&a, "5");
    argv_push(&a, s->k1.data, s->k1.len);
    argv_push(&a, s->k2.data, s->k2.len);
    for (int w = 0; w < STORE_STATE_COUNT; w++) {
        buf_init(&keys[w]);
        store_state_key(s, &keys[w], b->topic, b->part, (enum store_state)w);
        argv_push(&a, keys[w].data, keys[w].len);
    }
    argv_pushs(&a, exp);
    argv_pushs(&a, noff);
    argv_pushs(&a, seq);
    argv_push(&a, journal->len ? journal->data : "", journal->len);
    for (int w = 0; w < STORE_STATE_COUNT; w++) {
        snprintf(counts[w], sizeof(counts[w]), "%zu", b->nstate[w]);
        argv_pushs(&a, counts[w]);
        for (size_t i = 0; i < b->nstate[w]; i++) {
            const struct store_kv *kv = &b->state[w][i];
            argv_pushs(&a, kv->field);
            argv_push(&a, kv->value ? kv->value : "", kv->value ? kv->len : 0);
        }
    }
    char wm[24];
    if (b->wm_ms > 0) {
        snprintf(wm, sizeof(wm), "%" PRId64, b->wm_ms);
        argv_pushs(&a, wm);
    }
    store_append(s, &a);
    argv_release(&a);
    for (int w = 0; w < STORE_STATE_COUNT; w++)
        buf_release(&keys[w]);
}

int store_commit_batches(struct store *s, const struct store_batch *b, size_t n,
                         struct delta *merged, bool *fenced, char *err, size_t errlen)
{
    struct buf *journals = xcalloc(n + 1, sizeof(*journals));
    char(*pids)[256] = xcalloc(n + 1, sizeof(*pids));
    char(*seqs)[24] = xcalloc(n + 1, sizeof(*seqs));
    const char **pp = xcalloc(n + 1, sizeof(*pp)), **sp = xcalloc(n + 1, sizeof(*sp));
    int rc = 0;
    redisReply **rep = NULL;
    size_t nr = 0;
    /* Step 2: every commit in one round trip. */
    for (size_t i = 0; i < n; i++) {
        fenced[i] = false;
        buf_init(&journals[i]);
        snprintf(pids[i], sizeof(pids[i]), "%s:%d", b[i].topic, (int)b[i].part);
        snprintf(seqs[i], sizeof(seqs[i]), "%" PRIu64, b[i].seq);
        store_append_commit(s, &b[i], &journals[i]);
    }
    if (rconn_exec(s->rc, &rep, &nr, err, errlen) < 0) {
        rc = -1;
        goto out;
    }
    bool any_fenced = false, any_journal = false;
    for (size_t i = 0; i < n && rc == 0; i++) {
        redisReply *r = i < nr ? rep[i] : NULL;
        if (r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "FENCED", 6) == 0) {
            fenced[i] = any_fenced = true;
            snprintf(err, errlen, "partition %s fenced: %s", pids[i], r->str);
        } else if (store_reply_error(r, err, errlen, "commit") < 0) {
            rc = -1;
        } else if (journals[i].len) {
            any_journal = true;
        }
    }
    rconn_replies_free(rep, nr);
    if (rc < 0 || !any_journal)
        goto out;
    /* Step 3: each tag's writes once, merged over the partitions (or, when one was fenced,
     * per partition: the merged writes include the fenced one's). Step 4 only after every
     * apply succeeded, so a failed apply leaves the journal for recovery. */
    if (!any_fenced && merged) {
        for (size_t g = 0; g < delta_group_count(merged); g++) {
            struct delta_group grp;
            delta_group_get(merged, g, &grp);
            size_t np = 0;
            for (size_t i = 0; i < n; i++)
                if (journals[i].len && delta_has_tag(b[i].delta, grp.tag)) {
                    pp[np] = pids[i];
                    sp[np++] = seqs[i];
                }
            if (np)
                store_append_apply_multi(s, &grp, np, pp, sp);
        }
    } else {
        for (size_t i = 0; i < n; i++) {
            if (fenced[i] || !journals[i].len)
                continue;
            for (size_t g = 0; g < delta_group_count(b[i].delta); g++) {
                struct delta_group grp;
                delta_group_get(b[i].delta, g, &grp);
                store_append_apply(s, &grp, pids[i], seqs[i]);
            }
        }
    }
    if (rconn_pending(s->rc) && store_exec_all(s, err, errlen, "apply", true) < 0) {
        rc = -1;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (fenced[i] || !journals[i].len)
            continue;
        store_meta_keys(s, b[i].topic, b[i].part);
        rconn_appendf(s->rc, "FCALL csm_done 2 %s %s %s", s->k1.data, s->k2.data, seqs[i]);
    }
    if (rconn_pending(s->rc) && store_exec_all(s, err, errlen, "done", false) < 0)
        rc = -1;
out:
    for (size_t i = 0; i < n; i++)
        buf_release(&journals[i]);
    free(journals);
    free(pids);
    free(seqs);
    free(pp);
    free(sp);
    return rc;
}

int store_commit(struct store *s, const struct store_batch *b, char *err, size_t errlen)
{
    bool fenced = false;
    int rc = store_commit_batches(s, b, 1, NULL, &fenced, err, errlen);
    return rc < 0 ? -1 : fenced ? 1 : 0;
}

void store_set_partitions(struct store *s, size_t n, const char *const *names)
{
    for (size_t i = 0; i < s->nknown; i++)
        free(s->known[i]);
    free(s->known);
    s->known = n ? xcalloc(n, sizeof(*s->known)) : NULL;
    for (size_t i = 0; i < n; i++)
        s->known[i] = xstrdup(names[i]);
    s->nknown = n;
}

int store_wm(struct store *s, int64_t now_ms, bool allow_wall, size_t n,
             const struct store_wm_part *parts, int64_t *global_ms, int64_t *close_ms, char *err,
             size_t errlen)
{
    buf_reset(&s->k1);
    buf_adds(&s->k1, s->prefix);
    buf_adds(&s->k1, "{wm}:parts");
    buf_reset(&s->k2);
    buf_adds(&s->k2, s->prefix);
    buf_adds(&s->k2, "{wm}:global");
    buf_reset(&s->k3);
    buf_adds(&s->k3, s->prefix);
    buf_adds(&s->k3, "{wm}:close");
    struct argv a = {0};
    char now[24];
    snprintf(now, sizeof(now), "%" PRId64, now_ms);
    char(*nums)[4][24] = xcalloc(n + 1, sizeof(*nums));
    argv_pushs(&a, "FCALL");
    argv_pushs(&a, "csm_wm");
    argv_pushs(&a, "3");
    argv_pushs(&a, s->k1.data);
    argv_pushs(&a, s->k2.data);
    argv_pushs(&a, s->k3.data);
    argv_pushs(&a, now);
    argv_pushs(&a, allow_wall ? "1" : "0");
    char nk[24];
    snprintf(nk, sizeof(nk), "%zu", s->nknown);
    argv_pushs(&a, nk);
    for (size_t i = 0; i < s->nknown; i++)
        argv_pushs(&a, s->known[i]);
    for (size_t i = 0; i < n; i++) {
        snprintf(nums[i][0], 24, "%" PRId64, parts[i].wm_ms);
        snprintf(nums[i][1], 24, "%" PRId64, parts[i].idle_until_ms);
        snprintf(nums[i][2], 24, "%" PRId64, parts[i].attributed_ms);
        snprintf(nums[i][3], 24, "%" PRId64, parts[i].lease_ms > 0 ? parts[i].lease_ms : 0);
        argv_pushs(&a, parts[i].name);
        for (int f = 0; f < 4; f++)
            argv_pushs(&a, nums[i][f]);
    }
    store_append(s, &a);
    argv_release(&a);
    free(nums);
    redisReply **rep = NULL;
    size_t nr = 0;
    if (rconn_exec(s->rc, &rep, &nr, err, errlen) < 0)
        return -1;
    int rc = 0;
    if (nr != 1 || store_reply_error(rep[0], err, errlen, "watermark") < 0)
        rc = -1;
    else if (rep[0]->type == REDIS_REPLY_ARRAY && rep[0]->elements == 2 &&
             rep[0]->element[0]->type == REDIS_REPLY_INTEGER &&
             rep[0]->element[1]->type == REDIS_REPLY_INTEGER) {
        *global_ms = rep[0]->element[0]->integer;
        *close_ms = rep[0]->element[1]->integer;
    } else {
        snprintf(err, errlen, "watermark: unexpected reply");
        rc = -1;
    }
    rconn_replies_free(rep, nr);
    return rc;
}

int store_contact_latest(struct store *s, size_t n, const char *const *shops,
                         const char *const *customers, const int64_t *ts, int64_t window_ms,
                         char **agents, char *err, size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        buf_reset(&s->k1);
        keys_contact(&s->k1, s->prefix, shops[i], customers[i]);
        rconn_appendf(s->rc, "ZREVRANGEBYSCORE %b %lld %lld LIMIT 0 1", s->k1.data, s->k1.len,
                      (long long)ts[i], (long long)(ts[i] - window_ms));
    }
    if (n == 0)
        return 0;
    redisReply **rep = NULL;
    size_t nr = 0;
    if (rconn_exec(s->rc, &rep, &nr, err, errlen) < 0)
        return -1;
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        agents[i] = NULL;
        redisReply *r = i < nr ? rep[i] : NULL;
        if (!r || r->type != REDIS_REPLY_ARRAY) {
            snprintf(err, errlen, "contacts: unexpected reply");
            rc = -1;
            continue;
        }
        if (r->elements == 1 && r->element[0]->type == REDIS_REPLY_STRING) {
            const char *a = keys_contact_agent(r->element[0]->str);
            if (a)
                agents[i] = xstrdup(a);
        }
    }
    rconn_replies_free(rep, nr);
    return rc;
}

static int64_t store_int(const redisReply *r)
{
    if (!r)
        return 0;
    if (r->type == REDIS_REPLY_INTEGER)
        return r->integer;
    if (r->type == REDIS_REPLY_STRING)
        return strtoll(r->str, NULL, 10);
    return 0;
}

/* In csm_figures' KEYS order. */
const char *const store_figure_keys[STORE_FIGURE_KEYS] = {
    "c",     "inq",       "rep",        "ord",      "paid", "ocreated",
    "opaid", "orefunded", "ocancelled", "oflagged", "w",    "rv"};

int store_read_figures(struct store *s, const char *owner_tag, const struct period *p,
                       struct kpi_figures *f, char *err, size_t errlen)
{
    const char *const *names = store_figure_keys;
    enum { NNAMES = STORE_FIGURE_KEYS };
    struct buf keys[NNAMES + 2];
    struct argv a = {0};
    argv_pushs(&a, "FCALL");
    argv_pushs(&a, "csm_figures");
    argv_pushs(&a, "13");
    for (size_t i = 0; i < NNAMES; i++) {
        buf_init(&keys[i]);
        buf_printf(&keys[i], "%s:%s:%s", owner_tag, p->label, names[i]);
        argv_push(&a, keys[i].data, keys[i].len);
    }
    buf_init(&keys[NNAMES]);
    buf_printf(&keys[NNAMES], "%s:abs", owner_tag);
    argv_push(&a, keys[NNAMES].data, keys[NNAMES].len);
    buf_init(&keys[NNAMES + 1]);
    buf_printf(&keys[NNAMES + 1], "%s:periods", owner_tag);
    store_append(s, &a);
    argv_release(&a);
    rconn_appendf(s->rc, "ZSCORE %s %s", keys[NNAMES + 1].data, p->label);
    redisReply **rep = NULL;
    size_t nr = 0;
    int rc = rconn_exec(s->rc, &rep, &nr, err, errlen);
    for (size_t i = 0; i < NNAMES + 2; i++)
        buf_release(&keys[i]);
    if (rc < 0)
        return -1;
    rc = -1;
    if (nr != 2) {
        snprintf(err, errlen, "figures: %zu replies for 2 commands", nr);
        goto out;
    }
    if (store_reply_error(rep[0], err, errlen, "figures") < 0)
        goto out;
    redisReply *r = rep[0];
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 14) {
        snprintf(err, errlen, "figures: unexpected reply");
        goto out;
    }
    if (rep[1]->type == REDIS_REPLY_NIL) {
        rc = 1;
        goto out;
    }
    *f = (struct kpi_figures){0};
    f->inquiries = store_int(r->element[0]);
    f->replied = store_int(r->element[1]);
    f->ordered = store_int(r->element[2]);
    f->inquired_and_ordered = store_int(r->element[3]);
    f->paid_customers = store_int(r->element[4]);
    f->orders = store_int(r->element[5]);
    f->paid_orders = store_int(r->element[6]);
    f->refunded_orders = store_int(r->element[7]);
    f->cancelled_orders = store_int(r->element[8]);
    f->flagged_orders = store_int(r->element[9]);
    f->wait_p90_ms = store_int(r->element[10]);
    f->target_cents = -1;
    redisReply *c = r->element[11];
    for (size_t i = 0; c->type == REDIS_REPLY_ARRAY && i + 1 < c->elements; i += 2)
        kpi_figures_set_counter(f, c->element[i]->str, store_int(c->element[i + 1]));
    redisReply *rv = r->element[12];
    for (size_t i = 0; rv->type == REDIS_REPLY_ARRAY && i + 1 < rv->elements; i += 2)
        kpi_figures_add_review(f, rv->element[i]->str, strtod(rv->element[i + 1]->str, NULL));
    redisReply *abs = r->element[13];
    size_t nabs = abs->type == REDIS_REPLY_ARRAY ? abs->elements / 2 : 0;
    int32_t *from = xcalloc(nabs + 1, sizeof(*from)), *to = xcalloc(nabs + 1, sizeof(*to));
    size_t nr2 = 0;
    for (size_t i = 0; i < nabs; i++) {
        long fd, td;
        if (sscanf(abs->element[2 * i + 1]->str, "%ld %ld", &fd, &td) == 2) {
            from[nr2] = (int32_t)fd;
            to[nr2++] = (int32_t)td;
        }
    }
    f->absent_days = period_days_covered(p, from, to, nr2);
    free(from);
    free(to);
    rc = 0;
out:
    rconn_replies_free(rep, nr);
    return rc;
}
