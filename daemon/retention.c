/* retention — see retention.h. */
#include "daemon/retention.h"
#include "aggregator/keys.h"
#include "aggregator/period.h"
#include "common/buf.h"
#include "daemon/store.h"

#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Key suffixes after "TAG:LABEL:" of a rule's outputs (daemon/rules_run.c). */
static const char *const rule_keys[] = {"state", "final", "board", "alerts", "live"};
enum { RULE_KEYS = sizeof(rule_keys) / sizeof(rule_keys[0]) };

struct owner_list {
    struct buf *tags;
    bool *rule; /* a rule's (x:) tag rather than an owner of figures */
    /* per tag: figures of a period of kind k may go once it ended by held[k] (the
     * oldest `closed` of the shop's rules of that kind): no rule may lose its input */
    int64_t (*held)[PERIOD_KIND_COUNT];
    size_t n, cap;
};

static void owners_add(struct owner_list *l, const struct buf *tag, bool rule, const int64_t *held)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->tags = xrealloc(l->tags, l->cap * sizeof(*l->tags));
        l->rule = xrealloc(l->rule, l->cap * sizeof(*l->rule));
        l->held = xrealloc(l->held, l->cap * sizeof(*l->held));
    }
    buf_init(&l->tags[l->n]);
    buf_add(&l->tags[l->n], tag->data, tag->len);
    memcpy(l->held[l->n], held, sizeof(l->held[l->n]));
    l->rule[l->n++] = rule;
}

static void owners_release(struct owner_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        buf_release(&l->tags[i]);
    free(l->tags);
    free(l->rule);
    free(l->held);
}

static bool is_array(const redisReply *r)
{
    return r && r->type == REDIS_REPLY_ARRAY;
}

/* Every owner tag the registry knows, and every (rule, shop) tag. */
static int list_owners(struct rconn *rc, const char *prefix, const struct rule_set *rules,
                       struct owner_list *l, char *err, size_t errlen)
{
    struct buf k;
    buf_init(&k);
    buf_printf(&k, "%s{r}:shops", prefix);
    redisReply *shops = rconn_command(rc, err, errlen, "SMEMBERS %b", k.data, k.len);
    if (!shops) {
        buf_release(&k);
        return -1;
    }
    int rc_ = 0;
    if (!is_array(shops)) {
        snprintf(err, errlen, "retention: unexpected reply listing shops");
        rc_ = -1;
        goto out;
    }
    /* per shop: its agents, then each applicable rule's `closed` */
    size_t nrules = rules ? rules->n : 0;
    for (size_t i = 0; i < shops->elements; i++) {
        const char *shop = shops->element[i]->str;
        buf_reset(&k);
        keys_owner_tag(&k, prefix, KEYS_TEAM, shop, NULL);
        buf_adds(&k, ":agents");
        rconn_appendf(rc, "SMEMBERS %b", k.data, k.len);
        for (size_t r = 0; r < nrules; r++) {
            keys_rule_tag(&k, prefix, rules->rules[r]->name, shop);
            buf_adds(&k, ":meta");
            rconn_appendf(rc, "HGET %b closed", k.data, k.len);
        }
    }
    redisReply **rep = NULL;
    size_t nr = 0;
    if (rconn_exec(rc, &rep, &nr, err, errlen) < 0) {
        rc_ = -1;
        goto out;
    }
    if (nr != shops->elements * (1 + nrules)) {
        snprintf(err, errlen, "retention: %zu replies for %zu commands", nr,
                 shops->elements * (1 + nrules));
        rconn_replies_free(rep, nr);
        rc_ = -1;
        goto out;
    }
    for (size_t i = 0; i < shops->elements; i++) {
        const char *shop = shops->element[i]->str;
        redisReply *agents = rep[i * (1 + nrules)];
        int64_t held[PERIOD_KIND_COUNT], none[PERIOD_KIND_COUNT];
        for (int kd = 0; kd < PERIOD_KIND_COUNT; kd++) {
            held[kd] = INT64_MAX;
            none[kd] = INT64_MAX;
        }
        for (size_t r = 0; r < nrules; r++) {
            const struct rule *ru = rules->rules[r];
            const redisReply *c = rep[i * (1 + nrules) + 1 + r];
            if (!rule_applies_to(ru, shop))
                continue;
            int64_t closed =
                c && c->type == REDIS_REPLY_STRING ? strtoll(c->str, NULL, 10) : INT64_MIN;
            if (closed < held[ru->period])
                held[ru->period] = closed;
            keys_rule_tag(&k, prefix, ru->name, shop);
            owners_add(l, &k, true, none);
        }
        static const enum keys_owner shop_owners[] = {KEYS_TEAM, KEYS_UNATTRIBUTED};
        for (size_t o = 0; o < 2; o++) {
            buf_reset(&k);
            keys_owner_tag(&k, prefix, shop_owners[o], shop, NULL);
            owners_add(l, &k, false, held);
        }
        for (size_t a = 0; is_array(agents) && a < agents->elements; a++) {
            buf_reset(&k);
            keys_owner_tag(&k, prefix, KEYS_AGENT, shop, agents->element[a]->str);
            owners_add(l, &k, false, held);
        }
    }
    rconn_replies_free(rep, nr);
out:
    freeReplyObject(shops);
    buf_release(&k);
    return rc_;
}

/* Queues the deletion of one (tag, label): its keys, then the label from the list. */
static void queue_delete(struct rconn *rc, const struct buf *tag, bool rule, const char *label)
{
    const char *argv[2 + STORE_FIGURE_KEYS + 1];
    size_t lens[2 + STORE_FIGURE_KEYS + 1];
    struct buf keys[STORE_FIGURE_KEYS + 1];
    size_t n = rule ? RULE_KEYS : STORE_FIGURE_KEYS + 1;
    int a = 0;
    argv[a++] = "UNLINK";
    for (size_t i = 0; i < n; i++) {
        buf_init(&keys[i]);
        const char *suffix = rule                    ? rule_keys[i]
                             : i < STORE_FIGURE_KEYS ? store_figure_keys[i]
                                                     : "kpi";
        buf_printf(&keys[i], "%.*s:%s:%s", (int)tag->len, tag->data, label, suffix);
        argv[a++] = keys[i].data;
    }
    for (int j = 0; j < a; j++)
        lens[j] = strlen(argv[j]);
    rconn_append(rc, a, argv, lens);
    for (size_t i = 0; i < n; i++)
        buf_release(&keys[i]);
    rconn_appendf(rc, "ZREM %b:periods %s", tag->data, tag->len, label);
}

int retention_sweep(struct rconn *rc, const char *prefix, const struct rule_set *rules,
                    int64_t cutoff_ms, size_t max_periods, struct retention_stats *st, char *err,
                    size_t errlen)
{
    struct owner_list l = {0};
    if (list_owners(rc, prefix, rules, &l, err, errlen) < 0) {
        owners_release(&l);
        return -1;
    }
    /* Candidates start before the cutoff (the score is the start; the end decides). */
    char max[32];
    snprintf(max, sizeof(max), "(%" PRId64, cutoff_ms);
    for (size_t i = 0; i < l.n; i++)
        rconn_appendf(rc, "ZRANGE %b:periods -inf %s BYSCORE", l.tags[i].data, l.tags[i].len, max);
    for (size_t i = 0; i < l.n; i++)
        if (l.rule[i])
            rconn_appendf(rc, "ZRANGE %b:periods -1 -1", l.tags[i].data, l.tags[i].len);
    redisReply **rep = NULL;
    size_t nr = 0;
    int rc_ = rconn_exec(rc, &rep, &nr, err, errlen);
    size_t deleted = 0, ri = l.n;
    for (size_t i = 0; rc_ == 0 && i < l.n && i < nr; i++) {
        const char *newest = NULL;
        if (l.rule[i] && ri < nr) {
            const redisReply *nw = rep[ri++];
            if (is_array(nw) && nw->elements == 1)
                newest = nw->element[0]->str;
        }
        for (size_t j = 0; is_array(rep[i]) && j < rep[i]->elements; j++) {
            const char *label = rep[i]->element[j]->str;
            struct period p;
            if (deleted >= max_periods || period_from_label(label, &p) < 0 ||
                p.end_ms > cutoff_ms || p.end_ms > l.held[i][p.kind] ||
                (newest && strcmp(newest, label) == 0))
                continue;
            queue_delete(rc, &l.tags[i], l.rule[i], label);
            deleted++;
        }
    }
    rconn_replies_free(rep, nr);
    if (rc_ == 0 && deleted) {
        rep = NULL;
        nr = 0;
        rc_ = rconn_exec(rc, &rep, &nr, err, errlen);
        rconn_replies_free(rep, nr);
    }
    owners_release(&l);
    if (rc_ == 0) {
        st->sweeps++;
        st->periods_deleted += deleted;
    }
    return rc_;
}
