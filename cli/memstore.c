/* memstore — see memstore.h. Each key is one typed container (hash, set or sorted set)
 * of items in a string-keyed map; hash values are kept as Redis keeps them, as strings.
 * Reads mirror daemon/store_lua.c csm_figures and daemon/store.c store_read_figures
 * line by line, so a difference between them is a bug here, not a second opinion. */
#include "cli/memstore.h"
#include "aggregator/keys.h"
#include "common/buf.h"
#include "common/map.h"
#include "consumers/decode.h"

#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum ms_type { MS_HASH, MS_SET, MS_ZSET };

struct ms_item {
    char *value;   /* hash: the field's value */
    int64_t score; /* sorted set */
};

struct ms_key {
    enum ms_type type;
    struct map *items; /* field / member -> struct ms_item */
};

struct memstore {
    struct map *keys; /* key -> struct ms_key */
};

struct memstore *memstore_new(void)
{
    struct memstore *m = xcalloc(1, sizeof(*m));
    m->keys = map_new();
    return m;
}

static void ms_item_free(struct ms_item *it)
{
    if (!it)
        return;
    free(it->value);
    free(it);
}

static void ms_key_free(struct ms_key *k)
{
    size_t i = 0;
    const char *name;
    void *v;
    if (!k)
        return;
    while (map_next(k->items, &i, &name, &v))
        ms_item_free(v);
    map_destroy(k->items);
    free(k);
}

void memstore_destroy(struct memstore *m)
{
    size_t i = 0;
    const char *name;
    void *v;
    if (!m)
        return;
    while (map_next(m->keys, &i, &name, &v))
        ms_key_free(v);
    map_destroy(m->keys);
    free(m);
}

/* ---- writes ---- */

/* The key of type t, created when absent; NULL when it holds another type (WRONGTYPE). */
static struct ms_key *ms_key_for(struct memstore *m, const char *key, enum ms_type t)
{
    struct ms_key *k = map_get(m->keys, key);
    if (k)
        return k->type == t ? k : NULL;
    k = xcalloc(1, sizeof(*k));
    k->type = t;
    k->items = map_new();
    map_put(m->keys, key, k);
    return k;
}

/* Redis drops a key whose last item went. */
static void ms_key_gc(struct memstore *m, const char *key)
{
    struct ms_key *k = map_get(m->keys, key);
    if (k && map_size(k->items) == 0)
        ms_key_free(map_del(m->keys, key));
}

static struct ms_item *ms_item_for(struct ms_key *k, const char *name)
{
    struct ms_item *it = map_get(k->items, name);
    if (!it) {
        it = xcalloc(1, sizeof(*it));
        map_put(k->items, name, it);
    }
    return it;
}

static void ms_item_del(struct ms_key *k, const char *name)
{
    ms_item_free(map_del(k->items, name));
}

/* HINCRBY: the field as an integer (absent: 0) plus by; returns the result. */
static int64_t ms_hincrby(struct ms_key *k, const char *field, int64_t by)
{
    struct ms_item *it = ms_item_for(k, field);
    int64_t v = it->value ? strtoll(it->value, NULL, 10) : 0;
    char num[32];
    v += by;
    snprintf(num, sizeof(num), "%" PRId64, v);
    free(it->value);
    it->value = xstrdup(num);
    return v;
}

struct ms_apply {
    struct memstore *m;
    size_t refused;
};

static void ms_apply_op(void *ud, const struct delta_op_view *op)
{
    struct ms_apply *a = ud;
    struct memstore *m = a->m;
    enum ms_type t = op->code == 'S'                                         ? MS_SET
                     : op->code == 'Z' || op->code == 'R' || op->code == 'T' ? MS_ZSET
                                                                             : MS_HASH;
    if (!strchr("CMSHZRT", op->code) || !op->code) {
        a->refused++;
        return;
    }
    struct ms_key *k = ms_key_for(m, op->key, t);
    if (!k) {
        a->refused++;
        return;
    }
    switch (op->code) {
    case 'C':
        ms_hincrby(k, op->field, op->num);
        break;
    case 'M':
        if (ms_hincrby(k, op->field, op->num) <= 0)
            ms_item_del(k, op->field);
        break;
    case 'S':
        ms_item_for(k, op->field);
        break;
    case 'H': {
        struct ms_item *it = ms_item_for(k, op->field);
        free(it->value);
        it->value = xstrdup(op->value ? op->value : "");
        break;
    }
    case 'Z':
        ms_item_for(k, op->field)->score = op->num;
        break;
    case 'R':
        ms_item_del(k, op->field);
        break;
    case 'T': {
        /* ZREMRANGEBYSCORE key -inf (num: every score strictly below num */
        size_t i = 0;
        const char *name;
        void *v;
        while (map_next(k->items, &i, &name, &v))
            if (((struct ms_item *)v)->score < op->num)
                ms_item_free(map_del(k->items, name));
        break;
    }
    default:
        break;
    }
    ms_key_gc(m, op->key);
}

void memstore_apply(struct memstore *m, const struct delta *d)
{
    struct ms_apply a = {.m = m};
    delta_foreach_op(d, ms_apply_op, &a);
    (void)a.refused; /* a key used as two types: the layout never does that */
}

/* ---- reads ---- */

static const struct ms_key *ms_get(const struct memstore *m, const char *key, enum ms_type t)
{
    const struct ms_key *k = map_get(m->keys, key);
    return k && k->type == t ? k : NULL;
}

const char *memstore_hget(const struct memstore *m, const char *key, const char *field)
{
    const struct ms_key *k = ms_get(m, key, MS_HASH);
    const struct ms_item *it = k ? map_get(k->items, field) : NULL;
    return it ? it->value : NULL;
}

size_t memstore_card(const struct memstore *m, const char *key)
{
    const struct ms_key *k = map_get(m->keys, key);
    return k ? map_size(k->items) : 0;
}

bool memstore_exists(const struct memstore *m, const char *key)
{
    return map_get(m->keys, key) != NULL;
}

bool memstore_zscore(const struct memstore *m, const char *key, const char *member, int64_t *score)
{
    const struct ms_key *k = ms_get(m, key, MS_ZSET);
    const struct ms_item *it = k ? map_get(k->items, member) : NULL;
    if (it && score)
        *score = it->score;
    return it != NULL;
}

static int ms_strcmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Names of a key's items, sorted bytewise (malloc'd array, borrowed strings). */
static const char **ms_names(const struct ms_key *k, size_t *n)
{
    size_t i = 0, c = 0;
    const char *name;
    void *v;
    const char **out;
    *n = 0;
    if (!k)
        return NULL;
    out = xcalloc(map_size(k->items) + 1, sizeof(*out));
    while (map_next(k->items, &i, &name, &v))
        out[c++] = name;
    qsort(out, c, sizeof(*out), ms_strcmp);
    *n = c;
    return out;
}

const char **memstore_smembers(const struct memstore *m, const char *key, size_t *n)
{
    return ms_names(ms_get(m, key, MS_SET), n);
}

static size_t ms_scard(const struct memstore *m, const char *key)
{
    const struct ms_key *k = ms_get(m, key, MS_SET);
    return k ? map_size(k->items) : 0;
}

static bool ms_sismember(const struct memstore *m, const char *key, const char *member)
{
    const struct ms_key *k = ms_get(m, key, MS_SET);
    return k && map_get(k->items, member) != NULL;
}

struct ms_scored {
    const char *member;
    int64_t score;
};

/* Redis' sorted-set order: by score, then bytewise by member. */
static int ms_scored_cmp(const void *pa, const void *pb)
{
    const struct ms_scored *a = pa, *b = pb;
    if (a->score != b->score)
        return a->score < b->score ? -1 : 1;
    return strcmp(a->member, b->member);
}

/* The zset's items in Redis order (malloc'd; members borrowed). */
static struct ms_scored *ms_zrange(const struct ms_key *k, size_t *n)
{
    size_t i = 0, c = 0;
    const char *name;
    void *v;
    struct ms_scored *out;
    *n = 0;
    if (!k)
        return NULL;
    out = xcalloc(map_size(k->items) + 1, sizeof(*out));
    while (map_next(k->items, &i, &name, &v))
        out[c++] = (struct ms_scored){.member = name, .score = ((struct ms_item *)v)->score};
    qsort(out, c, sizeof(*out), ms_scored_cmp);
    *n = c;
    return out;
}

static void ms_keyname(struct buf *b, const char *owner_tag, const char *label, const char *name)
{
    buf_reset(b);
    if (label)
        buf_printf(b, "%s:%s:%s", owner_tag, label, name);
    else
        buf_printf(b, "%s:%s", owner_tag, name);
}

int memstore_figures(const struct memstore *m, const char *owner_tag, const struct period *p,
                     struct kpi_figures *f)
{
    static const char *const names[] = {"c",          "inq",      "rep",   "ord",
                                        "paid",       "ocreated", "opaid", "orefunded",
                                        "ocancelled", "oflagged", "w",     "rv"};
    enum { C, INQ, REP, ORD, PAID, OCREATED, OPAID, OREFUNDED, OCANCELLED, OFLAGGED, W, RV, N };
    _Static_assert(sizeof(names) / sizeof(names[0]) == N, "one key name per figure key");
    struct buf k[N], tmp;
    int rc = 1;

    buf_init(&tmp);
    ms_keyname(&tmp, owner_tag, NULL, "periods");
    if (!memstore_zscore(m, tmp.data, p->label, NULL)) {
        buf_release(&tmp);
        return 1;
    }
    for (int i = 0; i < N; i++) {
        buf_init(&k[i]);
        ms_keyname(&k[i], owner_tag, p->label, names[i]);
    }
    *f = (struct kpi_figures){0};
    f->inquiries = (int64_t)ms_scard(m, k[INQ].data);
    /* replied: the customers with an answered wait that are inquiry customers */
    const struct ms_key *rep = ms_get(m, k[REP].data, MS_HASH);
    if (rep) {
        size_t i = 0;
        const char *cust;
        void *v;
        while (map_next(rep->items, &i, &cust, &v))
            if (ms_sismember(m, k[INQ].data, cust))
                f->replied++;
    }
    f->ordered = (int64_t)ms_scard(m, k[ORD].data);
    const struct ms_key *inq = ms_get(m, k[INQ].data, MS_SET);
    if (inq) {
        size_t i = 0;
        const char *cust;
        void *v;
        while (map_next(inq->items, &i, &cust, &v))
            if (ms_sismember(m, k[ORD].data, cust))
                f->inquired_and_ordered++;
    }
    f->paid_customers = (int64_t)ms_scard(m, k[PAID].data);
    f->orders = (int64_t)ms_scard(m, k[OCREATED].data);
    f->paid_orders = (int64_t)ms_scard(m, k[OPAID].data);
    f->refunded_orders = (int64_t)ms_scard(m, k[OREFUNDED].data);
    f->cancelled_orders = (int64_t)ms_scard(m, k[OCANCELLED].data);
    f->flagged_orders = (int64_t)ms_scard(m, k[OFLAGGED].data);
    /* p90: nearest rank over the answered waits, ascending */
    size_t nw;
    struct ms_scored *w = ms_zrange(ms_get(m, k[W].data, MS_ZSET), &nw);
    f->wait_p90_ms = -1;
    if (nw > 0)
        f->wait_p90_ms = w[(9 * nw + 9) / 10 - 1].score;
    free(w);
    /* counters */
    f->target_cents = -1;
    size_t nc;
    const char **cn = ms_names(ms_get(m, k[C].data, MS_HASH), &nc);
    for (size_t i = 0; i < nc; i++)
        kpi_figures_set_counter(f, cn[i], strtoll(memstore_hget(m, k[C].data, cn[i]), NULL, 10));
    free(cn);
    /* reviews: field "role:item", in field order (Redis would give insertion order;
     * the evaluation does not depend on it) */
    size_t nrv;
    const char **rv = ms_names(ms_get(m, k[RV].data, MS_HASH), &nrv);
    for (size_t i = 0; i < nrv; i++)
        kpi_figures_add_review(f, rv[i], strtod(memstore_hget(m, k[RV].data, rv[i]), NULL));
    free(rv);
    /* absences: the union of the ranges, overlapped with the period */
    ms_keyname(&tmp, owner_tag, NULL, "abs");
    const struct ms_key *abs = ms_get(m, tmp.data, MS_HASH);
    size_t nabs = abs ? map_size(abs->items) : 0, nr = 0;
    int32_t *from = xcalloc(nabs + 1, sizeof(*from)), *to = xcalloc(nabs + 1, sizeof(*to));
    if (abs) {
        size_t i = 0;
        const char *id;
        void *v;
        while (map_next(abs->items, &i, &id, &v)) {
            long fd, td;
            const struct ms_item *it = v;
            if (it->value && sscanf(it->value, "%ld %ld", &fd, &td) == 2) {
                from[nr] = (int32_t)fd;
                to[nr++] = (int32_t)td;
            }
        }
    }
    f->absent_days = period_days_covered(p, from, to, nr);
    free(from);
    free(to);
    rc = 0;
    for (int i = 0; i < N; i++)
        buf_release(&k[i]);
    buf_release(&tmp);
    return rc;
}

char *memstore_contact_latest(const struct memstore *m, const char *prefix, const char *shop,
                              const char *customer, int64_t ts_ms, int64_t window_ms)
{
    struct buf key;
    buf_init(&key);
    keys_contact(&key, prefix, shop, customer);
    size_t n;
    struct ms_scored *z = ms_zrange(ms_get(m, key.data, MS_ZSET), &n);
    buf_release(&key);
    char *agent = NULL;
    /* ZREVRANGEBYSCORE ts ts-window LIMIT 0 1: the last in Redis order within the range */
    for (size_t i = n; i-- > 0;) {
        if (z[i].score > ts_ms)
            continue;
        if (z[i].score < ts_ms - window_ms)
            break;
        const char *a = keys_contact_agent(z[i].member);
        if (a)
            agent = xstrdup(a);
        break;
    }
    free(z);
    return agent;
}

/* ---- feeding events ---- */

struct memstore_feed {
    struct memstore *m;
    struct agg_conf conf;
    struct agg_part *parts[TOPIC_INPUT_COUNT];
    int64_t next_offset[TOPIC_INPUT_COUNT];
    struct map *seen; /* event ids fed */
    struct delta *d;
};

struct memstore_feed *memstore_feed_new(struct memstore *m, const struct agg_conf *conf)
{
    struct memstore_feed *f = xcalloc(1, sizeof(*f));
    f->m = m;
    f->conf = *conf;
    for (int t = 0; t < TOPIC_INPUT_COUNT; t++)
        f->parts[t] = agg_part_new((enum event_topic)t, event_topic_name((enum event_topic)t), 0);
    f->seen = map_new();
    f->d = delta_new();
    return f;
}

void memstore_feed_destroy(struct memstore_feed *f)
{
    if (!f)
        return;
    for (int t = 0; t < TOPIC_INPUT_COUNT; t++)
        agg_part_destroy(f->parts[t]);
    map_destroy(f->seen);
    delta_destroy(f->d);
    free(f);
}

/* Nothing is late while events arrive: the watermark is below every period's close. */
static struct agg_ctx ms_ctx(struct memstore_feed *f)
{
    return (struct agg_ctx){.conf = &f->conf, .wm_ms = INT64_MIN, .now_ms = 0, .d = f->d};
}

static void ms_flush(struct memstore_feed *f)
{
    memstore_apply(f->m, f->d);
    delta_reset(f->d);
}

int memstore_feed_event(struct memstore_feed *f, enum event_topic topic, const char *json,
                        size_t len, char *err, size_t errlen)
{
    struct decode_opts o = {.now_ms = INT64_MAX / 4, .max_future_ms = 0};
    struct event ev;
    char detail[256] = "";
    if ((unsigned)topic >= TOPIC_INPUT_COUNT) {
        snprintf(err, errlen, "unknown topic");
        return -1;
    }
    enum dl_reason r = decode_event(topic, json, len, &o, &ev, detail, sizeof(detail));
    if (r != DL_NONE) {
        snprintf(err, errlen, "%s: %s", dl_reason_name(r), detail);
        return -1;
    }
    int64_t offset = f->next_offset[topic]++;
    if (map_get(f->seen, ev.event_id)) {
        event_release(&ev);
        return 1;
    }
    map_put(f->seen, ev.event_id, (void *)1);
    struct agg_ctx c = ms_ctx(f);
    struct agg_result res;
    agg_event(&c, f->parts[topic], &ev, offset, json, len, &res);
    event_release(&ev);
    ms_flush(f);
    return 0;
}

void memstore_feed_finish(struct memstore_feed *f)
{
    for (int t = 0; t < TOPIC_INPUT_COUNT; t++) {
        struct agg_due *due = NULL;
        size_t n = agg_part_due(f->parts[t], INT64_MAX, &due);
        /* agg_attribute frees what due points into: copy the ids and look every contact
         * up first, as the daemon does */
        char **ids = xcalloc(n + 1, sizeof(*ids)), **agents = xcalloc(n + 1, sizeof(*agents));
        for (size_t i = 0; i < n; i++) {
            ids[i] = xstrdup(due[i].order_id);
            agents[i] = memstore_contact_latest(f->m, f->conf.prefix, due[i].shop, due[i].customer,
                                                due[i].ts_ms, f->conf.attribution_window_ms);
        }
        free(due);
        struct agg_ctx c = ms_ctx(f);
        for (size_t i = 0; i < n; i++) {
            agg_attribute(&c, f->parts[t], ids[i], agents[i], NULL, NULL);
            free(ids[i]);
            free(agents[i]);
        }
        free(ids);
        free(agents);
        ms_flush(f);
    }
}
