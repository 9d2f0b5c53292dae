/* agg — see agg.h. Every write goes to the owner (agent, or unattributed shop orders)
 * and, for agents, to the shop's team figures too, so team KPIs are exact distinct
 * counts over the shop without a read-side union. */
#include "aggregator/agg.h"
#include "aggregator/conv.h"
#include "aggregator/keys.h"
#include "common/buf.h"
#include "common/map.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum order_state { ORDER_UNSEEN, ORDER_PENDING, ORDER_ATTRIBUTED };

/* wm_seen: the global watermark when the event was read. A held or pending event is
 * judged late against it, not against the watermark at attribution: the watermark
 * moves by whole batches (a backfill read in one batch jumps it by days), and an order
 * read in time must not turn late because attribution waited for the watermark.
 * INT64_MIN in records written before it was kept: judged at attribution then. */
struct held {
    enum event_type type;
    int64_t ts_ms, amount_cents, offset, seen_ms, wm_seen;
    char *raw;
    size_t rawlen;
};

struct order {
    enum order_state state;
    char *shop, *customer, *agent; /* agent NULL: unattributed (when ATTRIBUTED) */
    int64_t created_ts, amount_cents, offset, wm_seen; /* wm_seen: see struct held */
    char *raw; /* the created message while PENDING, for a late dead letter */
    size_t rawlen;
    struct held *held;
    size_t nheld;
    bool dirty;
};

struct cconv {
    char *shop;
    struct conv *conv;
    bool dirty;
};

struct agg_part {
    enum event_topic topic;
    char *topic_name;
    int32_t part;
    struct map *conv;       /* conversation id -> struct cconv */
    struct map *orders;     /* order id -> struct order */
    struct map *targets;    /* reviews: "agent\x1flabel" -> struct order (amount only), dirty */
    struct map *pending;    /* order id -> (void *)1: pending attribution or holding orphans */
    struct map *pend_dirty; /* order id -> (void *)1 add, (void *)2 delete */
    struct map *gone;       /* swept record ids, deleted from the store at the next commit */
    struct agg_kv *kv;
    size_t nkv, capkv;
};

static void held_free(struct held *h)
{
    free(h->raw);
}

static void order_free(struct order *o)
{
    if (!o)
        return;
    free(o->shop);
    free(o->customer);
    free(o->agent);
    free(o->raw);
    for (size_t i = 0; i < o->nheld; i++)
        held_free(&o->held[i]);
    free(o->held);
    free(o);
}

static void cconv_free(struct cconv *c)
{
    if (!c)
        return;
    free(c->shop);
    conv_destroy(c->conv);
    free(c);
}

struct agg_part *agg_part_new(enum event_topic topic, const char *topic_name, int32_t part)
{
    struct agg_part *p = xcalloc(1, sizeof(*p));
    p->topic = topic;
    p->topic_name = xstrdup(topic_name);
    p->part = part;
    p->conv = map_new();
    p->orders = map_new();
    p->targets = map_new();
    p->pending = map_new();
    p->pend_dirty = map_new();
    p->gone = map_new();
    return p;
}

static void agg_part_free_kv(struct agg_part *p)
{
    for (size_t i = 0; i < p->nkv; i++)
        free(p->kv[i].value);
    p->nkv = 0;
}

void agg_part_destroy(struct agg_part *p)
{
    if (!p)
        return;
    size_t it = 0;
    const char *k;
    void *v;
    while (map_next(p->conv, &it, &k, &v))
        cconv_free(v);
    it = 0;
    while (map_next(p->orders, &it, &k, &v))
        order_free(v);
    it = 0;
    while (map_next(p->targets, &it, &k, &v))
        order_free(v);
    map_destroy(p->conv);
    map_destroy(p->orders);
    map_destroy(p->targets);
    map_destroy(p->pending);
    map_destroy(p->pend_dirty);
    map_destroy(p->gone);
    agg_part_free_kv(p);
    free(p->kv);
    free(p->topic_name);
    free(p);
}

const char *agg_part_topic_name(const struct agg_part *p)
{
    return p->topic_name;
}

int32_t agg_part_number(const struct agg_part *p)
{
    return p->part;
}

size_t agg_part_cached(const struct agg_part *p)
{
    return map_size(p->conv) + map_size(p->orders) + map_size(p->targets);
}

/* ---- state records ---- */

/* The record id of an event: conversation id, order id, or the target slot. */
static const char *agg_record_id(const struct agg_part *p, const struct event *ev, struct buf *tmp)
{
    switch (ev->type) {
    case EV_MESSAGE:
    case EV_TRANSFER:
        return ev->conversation_id;
    case EV_CREATED:
    case EV_PAID:
    case EV_REFUNDED:
    case EV_CANCELLED:
    case EV_FLAGGED:
        return ev->order_id;
    case EV_TARGET:
        buf_reset(tmp);
        buf_adds(tmp, "t\x1f");
        buf_adds(tmp, ev->shop_id);
        buf_addc(tmp, '\x1f');
        buf_adds(tmp, ev->agent_id);
        buf_addc(tmp, '\x1f');
        buf_adds(tmp, ev->period.label);
        return tmp->data;
    default:
        return NULL;
    }
}

static struct map *agg_record_map(struct agg_part *p, const struct event *ev)
{
    if (ev->type == EV_MESSAGE || ev->type == EV_TRANSFER)
        return p->conv;
    if (ev->type == EV_TARGET)
        return p->targets;
    return p->orders;
}

char **agg_part_missing(struct agg_part *p, const struct event *evs, size_t nevs, size_t *n)
{
    char **out = xcalloc(nevs + 1, sizeof(*out));
    struct map *seen = map_new();
    struct buf tmp;
    buf_init(&tmp);
    *n = 0;
    for (size_t i = 0; i < nevs; i++) {
        const char *id = agg_record_id(p, &evs[i], &tmp);
        if (!id || map_get(agg_record_map(p, &evs[i]), id) || map_get(seen, id))
            continue;
        map_put(seen, id, (void *)1);
        out[(*n)++] = xstrdup(id);
    }
    buf_release(&tmp);
    map_destroy(seen);
    return out;
}

static void agg_encode_order(const struct order *o, struct buf *b)
{
    buf_add_u64(b, 2); /* record version: 2 added wm_seen */
    buf_add_u64(b, (uint64_t)o->state);
    buf_add_str(b, o->shop ? o->shop : "", o->shop ? strlen(o->shop) : 0);
    buf_add_str(b, o->customer ? o->customer : "", o->customer ? strlen(o->customer) : 0);
    buf_add_u64(b, o->agent ? 1 : 0);
    if (o->agent)
        buf_add_str(b, o->agent, strlen(o->agent));
    buf_add_i64(b, o->created_ts);
    buf_add_i64(b, o->amount_cents);
    buf_add_i64(b, o->offset);
    buf_add_i64(b, o->wm_seen);
    buf_add_str(b, o->raw ? o->raw : "", o->rawlen);
    buf_add_u64(b, o->nheld);
    for (size_t i = 0; i < o->nheld; i++) {
        const struct held *h = &o->held[i];
        buf_add_u64(b, (uint64_t)h->type);
        buf_add_i64(b, h->ts_ms);
        buf_add_i64(b, h->amount_cents);
        buf_add_i64(b, h->offset);
        buf_add_i64(b, h->seen_ms);
        buf_add_i64(b, h->wm_seen);
        buf_add_str(b, h->raw ? h->raw : "", h->rawlen);
    }
}

static char *agg_read_optstr(struct buf_reader *r)
{
    size_t n;
    const char *s = buf_read_str(r, &n);
    return s && n ? xstrndup(s, n) : NULL;
}

static struct order *agg_decode_order(const char *v, size_t len)
{
    struct buf_reader r;
    buf_reader_init(&r, v, len);
    uint64_t version = buf_read_u64(&r);
    if (version != 1 && version != 2)
        return NULL;
    struct order *o = xcalloc(1, sizeof(*o));
    o->state = (enum order_state)buf_read_u64(&r);
    o->shop = agg_read_optstr(&r);
    o->customer = agg_read_optstr(&r);
    if (buf_read_u64(&r))
        o->agent = buf_read_strdup(&r);
    o->created_ts = buf_read_i64(&r);
    o->amount_cents = buf_read_i64(&r);
    o->offset = buf_read_i64(&r);
    o->wm_seen = version >= 2 ? buf_read_i64(&r) : INT64_MIN;
    size_t n;
    const char *raw = buf_read_str(&r, &n);
    if (raw && n) {
        o->raw = xstrndup(raw, n);
        o->rawlen = n;
    }
    uint64_t nh = buf_read_u64(&r);
    if (!r.err && nh <= len) {
        o->held = xcalloc(nh + 1, sizeof(*o->held));
        for (uint64_t i = 0; i < nh && !r.err; i++) {
            struct held *h = &o->held[o->nheld++];
            h->type = (enum event_type)buf_read_u64(&r);
            h->ts_ms = buf_read_i64(&r);
            h->amount_cents = buf_read_i64(&r);
            h->offset = buf_read_i64(&r);
            h->seen_ms = buf_read_i64(&r);
            h->wm_seen = version >= 2 ? buf_read_i64(&r) : INT64_MIN;
            const char *hr = buf_read_str(&r, &n);
            if (hr && n) {
                h->raw = xstrndup(hr, n);
                h->rawlen = n;
            }
        }
    } else {
        r.err = 1;
    }
    if (r.err || o->state > ORDER_ATTRIBUTED) {
        order_free(o);
        return NULL;
    }
    return o;
}

/* A stored conversation record: its shop (malloc'd into *shop unless shop is NULL), then
 * the timeline. NULL when malformed. */
static struct conv *agg_decode_conv(const char *value, size_t len, char **shop)
{
    struct buf_reader r;
    buf_reader_init(&r, value, len);
    size_t n;
    const char *sh = buf_read_str(&r, &n);
    struct conv *cv = r.err || !sh ? NULL : conv_decode(r.p, (size_t)(r.end - r.p));
    if (cv && shop)
        *shop = xstrndup(sh, n);
    return cv;
}

int agg_part_load(struct agg_part *p, const char *id, const char *value, size_t len)
{
    if (p->topic == TOPIC_CHAT) {
        if (!value)
            return 0;
        char *shop;
        struct conv *cv = agg_decode_conv(value, len, &shop);
        if (!cv)
            return -1;
        struct cconv *c = xcalloc(1, sizeof(*c));
        c->shop = shop;
        c->conv = cv;
        cconv_free(map_put(p->conv, id, c));
        return 0;
    }
    /* By the partition's topic, not the id's shape: an order id may well start "t\x1f"
     * (ids only exclude NUL), and such an order was loaded as a target slot. */
    struct map *m = p->topic == TOPIC_REVIEWS ? p->targets : p->orders;
    if (!value)
        return 0;
    struct order *o = agg_decode_order(value, len);
    if (!o)
        return -1;
    order_free(map_put(m, id, o));
    return 0;
}

void agg_part_load_pending(struct agg_part *p, const char *order_id, const char *value)
{
    (void)value;
    map_put(p->pending, order_id, (void *)1);
}

/* ---- writes ---- */

struct owner {
    struct buf tag;  /* agent or unattributed */
    struct buf team; /* empty for unattributed */
};

static void owner_set(struct owner *o, const struct agg_conf *conf, const char *shop,
                      const char *agent)
{
    buf_reset(&o->tag);
    buf_reset(&o->team);
    if (agent) {
        keys_owner_tag(&o->tag, conf->prefix, KEYS_AGENT, shop, agent);
        keys_owner_tag(&o->team, conf->prefix, KEYS_TEAM, shop, NULL);
    } else {
        keys_owner_tag(&o->tag, conf->prefix, KEYS_UNATTRIBUTED, shop, NULL);
    }
}

static void owner_init(struct owner *o)
{
    buf_init(&o->tag);
    buf_init(&o->team);
}

static void owner_release(struct owner *o)
{
    buf_release(&o->tag);
    buf_release(&o->team);
}

/* The periods of ts that still accept events at watermark wm; missed ones are appended
 * to `missed`. */
static size_t agg_periods_at(struct agg_ctx *c, int64_t wm, int64_t ts, struct period *out,
                             struct buf *missed)
{
    size_t n = 0;
    for (int k = 0; k < PERIOD_KIND_COUNT; k++) {
        if (!c->conf->kinds[k])
            continue;
        struct period p;
        /* Most events fall in the period of the one before: skip the zone math. */
        if (c->pcached[k] && ts >= c->pcache[k].start_ms && ts < c->pcache[k].end_ms) {
            p = c->pcache[k];
        } else {
            if (period_of((enum period_kind)k, ts, &p) < 0)
                continue;
            c->pcache[k] = p;
            c->pcached[k] = true;
        }
        if (wm >= p.end_ms + c->conf->accept_ms[k]) {
            if (missed) {
                buf_adds(missed, missed->len ? ", " : "");
                buf_adds(missed, p.label);
            }
            continue;
        }
        out[n++] = p;
    }
    return n;
}

static size_t agg_periods(struct agg_ctx *c, int64_t ts, struct period *out, struct buf *missed)
{
    return agg_periods_at(c, c->wm_ms, ts, out, missed);
}

/* The watermark an order event is judged against: the one it was read at (when known). */
static int64_t agg_wm_seen(const struct agg_ctx *c, int64_t wm_seen)
{
    return wm_seen == INT64_MIN || wm_seen > c->wm_ms ? c->wm_ms : wm_seen;
}

void agg_conf_add_close(struct agg_conf *conf, enum period_kind k, int64_t lateness_ms)
{
    int64_t *v = conf->closes[k];
    size_t n = conf->nclose[k], i = 0;
    while (i < n && v[i] < lateness_ms)
        i++;
    if (i < n && v[i] == lateness_ms)
        return;
    if (n == AGG_CLOSES_MAX) {
        if (i == n)
            return;
        n--; /* the largest goes */
    }
    memmove(v + i + 1, v + i, (n - i) * sizeof(*v));
    v[i] = lateness_ms;
    conf->nclose[k] = n + 1;
}

int64_t agg_first_close(const struct agg_conf *conf, const struct period *p, int64_t after)
{
    for (size_t i = 0; i < conf->nclose[p->kind]; i++)
        if (p->end_ms + conf->closes[p->kind][i] > after)
            return p->end_ms + conf->closes[p->kind][i];
    return 0;
}

/* Every write of a period starts here (the registry of the owner's periods, once per
 * batch): the period's first close ahead is the call's lease (agg_ctx.lease_ms). */
static void agg_register(struct agg_ctx *c, const struct owner *o, const struct period *p,
                         const char *shop, const char *agent)
{
    agg_lease_min(&c->lease_ms, agg_first_close(c->conf, p, c->wm_ms));
    if (c->registered) {
        char stack[512];
        size_t ll = strlen(p->label), n = o->tag.len + 1 + ll + 1;
        char *id = n <= sizeof(stack) ? stack : xmalloc(n);
        memcpy(id, o->tag.data, o->tag.len);
        id[o->tag.len] = '\x1f';
        memcpy(id + o->tag.len + 1, p->label, ll + 1);
        bool seen = map_get(c->registered, id) != NULL;
        if (!seen)
            map_put(c->registered, id, (void *)1);
        if (id != stack)
            free(id);
        if (seen)
            return;
    }
    delta_zadd(c->d, o->tag.data, ":periods", p->start_ms, p->label);
    if (o->team.len) {
        delta_zadd(c->d, o->team.data, ":periods", p->start_ms, p->label);
        delta_sadd(c->d, o->team.data, ":agents", agent);
    } else {
        /* unattributed: registered under the team tag's period list too */
        struct buf t;
        buf_init(&t);
        keys_owner_tag(&t, c->conf->prefix, KEYS_TEAM, shop, NULL);
        delta_zadd(c->d, t.data, ":periods", p->start_ms, p->label);
        buf_release(&t);
    }
    struct buf r;
    buf_init(&r);
    buf_adds(&r, c->conf->prefix);
    buf_adds(&r, "{r}");
    delta_sadd(c->d, r.data, ":shops", shop);
    buf_release(&r);
}

enum wop { W_INCR, W_MINCR, W_SADD, W_ZADD, W_ZREM, W_HSET };

/* One write to the owner and its team for period p: suffix ":LABEL:name". */
static void agg_write(struct agg_ctx *c, const struct owner *o, const struct period *p, enum wop op,
                      const char *name, const char *field, int64_t n, const char *value)
{
    char suffix[64]; /* ":LABEL:name": labels are under PERIOD_LABEL_MAX, names short */
    size_t ll = strlen(p->label), nl = strlen(name);
    assert(ll + nl + 3 <= sizeof(suffix));
    suffix[0] = ':';
    memcpy(suffix + 1, p->label, ll);
    suffix[ll + 1] = ':';
    memcpy(suffix + ll + 2, name, nl + 1);
    const struct buf *tags[2] = {&o->tag, &o->team};
    for (int i = 0; i < 2; i++) {
        if (!tags[i]->len)
            continue;
        const char *t = tags[i]->data;
        switch (op) {
        case W_INCR:
            delta_incr(c->d, t, suffix, field, n);
            break;
        case W_MINCR:
            delta_mincr(c->d, t, suffix, field, n);
            break;
        case W_SADD:
            delta_sadd(c->d, t, suffix, field);
            break;
        case W_ZADD:
            delta_zadd(c->d, t, suffix, n, field);
            break;
        case W_ZREM:
            delta_zrem(c->d, t, suffix, field);
            break;
        case W_HSET:
            delta_hset(c->d, t, suffix, field, value);
            break;
        }
    }
}

/* ---- chat ---- */

struct wait_ctx {
    struct agg_ctx *c;
    const char *shop, *conv_id;
    struct owner o;
};

static void agg_on_wait(void *ud, int sign, const struct conv_wait *w)
{
    struct wait_ctx *wc = ud;
    struct period ps[PERIOD_KIND_COUNT];
    size_t np = agg_periods(wc->c, w->start_ms, ps, NULL);
    if (!w->agent || !*w->agent)
        return;
    owner_set(&wc->o, wc->c->conf, wc->shop, w->agent);
    char member[512];
    for (size_t i = 0; i < np; i++) {
        agg_register(wc->c, &wc->o, &ps[i], wc->shop, w->agent);
        if (w->end_ms < 0) {
            agg_write(wc->c, &wc->o, &ps[i], W_INCR, "c", "unans", sign, NULL);
            continue;
        }
        int64_t len = w->end_ms - w->start_ms;
        if (len < 0)
            len = 0;
        agg_write(wc->c, &wc->o, &ps[i], W_INCR, "c", "wait_n", sign, NULL);
        agg_write(wc->c, &wc->o, &ps[i], W_INCR, "c", "wait_ms", sign * len, NULL);
        if (w->first) {
            agg_write(wc->c, &wc->o, &ps[i], W_INCR, "c", "first_n", sign, NULL);
            agg_write(wc->c, &wc->o, &ps[i], W_INCR, "c", "first_ms", sign * len, NULL);
        }
        size_t ml = dec_format(member, w->start_ms), cl = strlen(wc->conv_id);
        member[ml++] = ':';
        if (ml + cl >= sizeof(member))
            cl = sizeof(member) - ml - 1; /* as snprintf cut it */
        memcpy(member + ml, wc->conv_id, cl);
        member[ml + cl] = '\0';
        agg_write(wc->c, &wc->o, &ps[i], sign > 0 ? W_ZADD : W_ZREM, "w", member, len, NULL);
        if (w->customer)
            agg_write(wc->c, &wc->o, &ps[i], W_MINCR, "rep", w->customer, sign, NULL);
    }
}

static void agg_chat(struct agg_ctx *c, struct agg_part *p, const struct event *ev, int64_t offset,
                     struct buf *missed)
{
    struct owner o;
    owner_init(&o);
    struct period ps[PERIOD_KIND_COUNT];
    size_t np = agg_periods(c, ev->ts_ms, ps, missed);
    if (ev->type == EV_COMPLAINT) {
        owner_set(&o, c->conf, ev->shop_id, ev->agent_id);
        for (size_t i = 0; i < np; i++) {
            agg_register(c, &o, &ps[i], ev->shop_id, ev->agent_id);
            agg_write(c, &o, &ps[i], W_INCR, "c", "complaints", 1, NULL);
        }
        owner_release(&o);
        return;
    }
    const char *inquirer = ev->type == EV_TRANSFER   ? ev->to_agent_id
                           : ev->direction == DIR_IN ? ev->agent_id
                                                     : NULL;
    if (inquirer) {
        owner_set(&o, c->conf, ev->shop_id, inquirer);
        for (size_t i = 0; i < np; i++) {
            agg_register(c, &o, &ps[i], ev->shop_id, inquirer);
            agg_write(c, &o, &ps[i], W_SADD, "inq", ev->customer_id, 0, NULL);
        }
    }
    if (ev->type == EV_MESSAGE) {
        /* The customer's contact, for attributing orders without agent_id. */
        struct buf tag, suffix, member;
        buf_init(&tag);
        buf_init(&suffix);
        buf_init(&member);
        keys_contact_parts(&tag, &suffix, c->conf->prefix, ev->shop_id, ev->customer_id);
        keys_contact_member(&member, ev->ts_ms, (uint64_t)offset, ev->agent_id);
        delta_zadd(c->d, tag.data, suffix.data, ev->ts_ms, member.data);
        /* Trim only contacts no order can still need. An order is attributed once the
         * global watermark passes its ts, and may arrive up to lateness behind the
         * watermark, so it looks back from ts >= wm - lateness. Trimming from this
         * message's own ts instead (chat read ahead of orders) dropped the contact of an
         * order not yet attributed: the result depended on which topic was read first. */
        int64_t from = INT64_MIN;
        if (c->wm_ms > INT64_MIN + c->conf->lateness_ms)
            from = c->wm_ms - c->conf->lateness_ms;
        if (ev->ts_ms < from)
            from = ev->ts_ms;
        if (from > INT64_MIN + c->conf->attribution_window_ms)
            delta_ztrim(c->d, tag.data, suffix.data, from - c->conf->attribution_window_ms);
        buf_release(&tag);
        buf_release(&suffix);
        buf_release(&member);
    }
    struct cconv *cc = map_get(p->conv, ev->conversation_id);
    if (cc && c->conf->conv_retention_ms > 0 && conv_newest_ms(cc->conv) != INT64_MIN &&
        ev->ts_ms - conv_newest_ms(cc->conv) > c->conf->conv_retention_ms) {
        /* silent longer than conversation_retention: a new timeline (agg.h) */
        cconv_free(map_del(p->conv, ev->conversation_id));
        cc = NULL;
    }
    if (!cc) {
        cc = xcalloc(1, sizeof(*cc));
        cc->shop = xstrdup(ev->shop_id);
        cc->conv = conv_new();
        map_put(p->conv, ev->conversation_id, cc);
    }
    struct conv_msg m = {
        .kind = ev->type == EV_TRANSFER   ? CONV_TRANSFER
                : ev->direction == DIR_IN ? CONV_IN
                                          : CONV_OUT,
        .ts_ms = ev->ts_ms,
        .seq = (uint64_t)offset,
        .agent = ev->agent_id,
        .to_agent = ev->to_agent_id,
        .customer = ev->customer_id,
    };
    struct wait_ctx wc = {.c = c, .shop = cc->shop, .conv_id = ev->conversation_id};
    owner_init(&wc.o);
    conv_add(cc->conv, &m, agg_on_wait, &wc);
    conv_prune(cc->conv, conv_newest_ms(cc->conv) - c->conf->lateness_ms);
    owner_release(&wc.o);
    cc->dirty = true;
    owner_release(&o);
}

/* ---- orders ---- */

static void agg_order_write(struct agg_ctx *c, const struct order *o, enum event_type type,
                            int64_t ts, int64_t amount, const char *order_id, int64_t wm,
                            struct buf *missed)
{
    struct owner ow;
    owner_init(&ow);
    owner_set(&ow, c->conf, o->shop, o->agent);
    struct period ps[PERIOD_KIND_COUNT];
    size_t np = agg_periods_at(c, wm, ts, ps, missed);
    for (size_t i = 0; i < np; i++) {
        agg_register(c, &ow, &ps[i], o->shop, o->agent);
        switch (type) {
        case EV_CREATED:
            agg_write(c, &ow, &ps[i], W_SADD, "ocreated", order_id, 0, NULL);
            agg_write(c, &ow, &ps[i], W_SADD, "ord", o->customer, 0, NULL);
            agg_write(c, &ow, &ps[i], W_INCR, "c", "order_cents", amount, NULL);
            break;
        case EV_PAID:
            agg_write(c, &ow, &ps[i], W_SADD, "opaid", order_id, 0, NULL);
            agg_write(c, &ow, &ps[i], W_SADD, "paid", o->customer, 0, NULL);
            agg_write(c, &ow, &ps[i], W_INCR, "c", "sales_cents", amount, NULL);
            break;
        case EV_REFUNDED:
            agg_write(c, &ow, &ps[i], W_SADD, "orefunded", order_id, 0, NULL);
            agg_write(c, &ow, &ps[i], W_INCR, "c", "refund_cents", amount, NULL);
            break;
        case EV_CANCELLED:
            agg_write(c, &ow, &ps[i], W_SADD, "ocancelled", order_id, 0, NULL);
            break;
        case EV_FLAGGED:
            agg_write(c, &ow, &ps[i], W_SADD, "oflagged", order_id, 0, NULL);
            break;
        default:
            break;
        }
    }
    owner_release(&ow);
}

static void agg_pend_mark(struct agg_part *p, const char *order_id, bool add)
{
    if (add)
        map_put(p->pending, order_id, (void *)1);
    else
        map_del(p->pending, order_id);
    map_put(p->pend_dirty, order_id, (void *)(uintptr_t)(add ? 1 : 2));
}

static void agg_hold(struct order *o, const struct event *ev, int64_t offset, int64_t now,
                     int64_t wm, const void *raw, size_t rawlen)
{
    o->held = xrealloc(o->held, (o->nheld + 1) * sizeof(*o->held));
    o->held[o->nheld++] = (struct held){
        .type = ev->type,
        .ts_ms = ev->ts_ms,
        .amount_cents = ev->amount_cents,
        .offset = offset,
        .seen_ms = now,
        .wm_seen = wm,
        .raw = xstrndup(raw, rawlen),
        .rawlen = rawlen,
    };
}

static void agg_late_detail(struct agg_result *res, const struct buf *missed)
{
    if (!missed->len)
        return;
    res->late = true;
    snprintf(res->detail, sizeof(res->detail), "missed closed periods %s", missed->data);
}

static void agg_flush_held(struct agg_ctx *c, struct order *o, const char *order_id, agg_dead_cb cb,
                           void *ud)
{
    for (size_t i = 0; i < o->nheld; i++) {
        struct held *h = &o->held[i];
        struct buf missed;
        buf_init(&missed);
        agg_order_write(c, o, h->type, h->ts_ms, h->amount_cents, order_id,
                        agg_wm_seen(c, h->wm_seen), &missed);
        if (missed.len && cb) {
            char detail[256];
            snprintf(detail, sizeof(detail), "missed closed periods %s", missed.data);
            cb(ud, 0, detail, h->offset, h->raw, h->rawlen);
        }
        buf_release(&missed);
        held_free(h);
    }
    o->nheld = 0;
}

/* An attributed order holding nothing whose created ts is retention_ms or more before
 * ts_ms: forgotten (agg.h). */
static bool agg_order_forgotten(int64_t retention_ms, const struct order *o, int64_t ts_ms)
{
    return retention_ms > 0 && o->state == ORDER_ATTRIBUTED && o->nheld == 0 &&
           ts_ms - o->created_ts >= retention_ms;
}

static void agg_orders(struct agg_ctx *c, struct agg_part *p, const struct event *ev,
                       int64_t offset, const void *raw, size_t rawlen, struct agg_result *res)
{
    struct order *o = map_get(p->orders, ev->order_id);
    if (o && agg_order_forgotten(c->conf->order_retention_ms, o, ev->ts_ms)) {
        order_free(map_del(p->orders, ev->order_id)); /* past order_retention (agg.h) */
        o = NULL;
    }
    if (!o) {
        o = xcalloc(1, sizeof(*o));
        map_put(p->orders, ev->order_id, o);
    }
    struct buf missed;
    buf_init(&missed);
    if (ev->type == EV_CREATED) {
        if (o->state != ORDER_UNSEEN) {
            /* A second `created` with another event_id: the first one stands. */
            snprintf(res->detail, sizeof(res->detail), "order '%s' created twice", ev->order_id);
            buf_release(&missed);
            return;
        }
        free(o->shop);
        free(o->customer);
        o->shop = xstrdup(ev->shop_id);
        o->customer = xstrdup(ev->customer_id);
        o->created_ts = ev->ts_ms;
        o->amount_cents = ev->amount_cents;
        o->offset = offset;
        o->wm_seen = c->wm_ms;
        o->dirty = true;
        if (ev->agent_id) {
            o->state = ORDER_ATTRIBUTED;
            o->agent = xstrdup(ev->agent_id);
            agg_order_write(c, o, EV_CREATED, ev->ts_ms, ev->amount_cents, ev->order_id, c->wm_ms,
                            &missed);
            agg_late_detail(res, &missed);
            if (o->nheld)
                agg_flush_held(c, o, ev->order_id, NULL, NULL);
            if (map_get(p->pending, ev->order_id))
                agg_pend_mark(p, ev->order_id, false);
        } else {
            o->state = ORDER_PENDING;
            o->raw = xstrndup(raw, rawlen);
            o->rawlen = rawlen;
            agg_pend_mark(p, ev->order_id, true);
        }
        buf_release(&missed);
        return;
    }
    o->dirty = true;
    if (o->state == ORDER_ATTRIBUTED) {
        agg_order_write(c, o, ev->type, ev->ts_ms, ev->amount_cents, ev->order_id, c->wm_ms,
                        &missed);
        agg_late_detail(res, &missed);
    } else {
        agg_hold(o, ev, offset, c->now_ms, c->wm_ms, raw, rawlen);
        if (o->state == ORDER_UNSEEN && !map_get(p->pending, ev->order_id))
            agg_pend_mark(p, ev->order_id, true);
    }
    buf_release(&missed);
}

size_t agg_part_due(struct agg_part *p, int64_t wm_ms, struct agg_due **due)
{
    size_t n = 0, cap = 0;
    *due = NULL;
    size_t it = 0;
    const char *k;
    void *v;
    while (map_next(p->pending, &it, &k, &v)) {
        struct order *o = map_get(p->orders, k);
        if (!o || o->state != ORDER_PENDING || o->created_ts > wm_ms)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            *due = xrealloc(*due, cap * sizeof(**due));
        }
        (*due)[n++] = (struct agg_due){
            .order_id = k, .shop = o->shop, .customer = o->customer, .ts_ms = o->created_ts};
    }
    return n;
}

void agg_attribute(struct agg_ctx *c, struct agg_part *p, const char *order_id, const char *agent,
                   agg_dead_cb cb, void *ud)
{
    struct order *o = map_get(p->orders, order_id);
    if (!o || o->state != ORDER_PENDING)
        return;
    char *id = xstrdup(order_id); /* order_id may point into p->pending */
    o->state = ORDER_ATTRIBUTED;
    o->agent = agent ? xstrdup(agent) : NULL;
    o->dirty = true;
    struct buf missed;
    buf_init(&missed);
    agg_order_write(c, o, EV_CREATED, o->created_ts, o->amount_cents, id,
                    agg_wm_seen(c, o->wm_seen), &missed);
    if (missed.len && cb) {
        char detail[256];
        snprintf(detail, sizeof(detail), "missed closed periods %s", missed.data);
        cb(ud, 0, detail, o->offset, o->raw, o->rawlen);
    }
    buf_release(&missed);
    free(o->raw);
    o->raw = NULL;
    o->rawlen = 0;
    agg_flush_held(c, o, id, cb, ud);
    agg_pend_mark(p, id, false);
    free(id);
}

void agg_part_expire(struct agg_ctx *c, struct agg_part *p, agg_dead_cb cb, void *ud)
{
    size_t it = 0;
    const char *k;
    void *v;
    char **gone = NULL;
    size_t ngone = 0;
    while (map_next(p->pending, &it, &k, &v)) {
        struct order *o = map_get(p->orders, k);
        if (!o || o->state != ORDER_UNSEEN || o->nheld == 0)
            continue;
        /* Each follow-up waits orphan_ms from its own arrival: one that came a minute ago
         * stays even when an older one of the same order expires (they used to go out
         * together, on the age of the first). */
        size_t kept = 0;
        for (size_t i = 0; i < o->nheld; i++) {
            if (c->now_ms - o->held[i].seen_ms < c->conf->orphan_ms) {
                o->held[kept++] = o->held[i];
                continue;
            }
            char detail[256];
            snprintf(detail, sizeof(detail), "no 'created' for order '%s' within dedup_window", k);
            cb(ud, 1, detail, o->held[i].offset, o->held[i].raw, o->held[i].rawlen);
            held_free(&o->held[i]);
        }
        if (kept == o->nheld)
            continue;
        o->nheld = kept;
        o->dirty = true;
        if (kept)
            continue;
        gone = xrealloc(gone, (ngone + 1) * sizeof(*gone));
        gone[ngone++] = xstrdup(k);
    }
    for (size_t i = 0; i < ngone; i++) {
        agg_pend_mark(p, gone[i], false);
        free(gone[i]);
    }
    free(gone);
}

/* ---- reviews ---- */

static void agg_reviews(struct agg_ctx *c, struct agg_part *p, const struct event *ev,
                        struct agg_result *res)
{
    struct owner o;
    owner_init(&o);
    owner_set(&o, c->conf, ev->shop_id, ev->agent_id);
    if (ev->type == EV_ABSENCE) {
        char v[48];
        snprintf(v, sizeof(v), "%d %d", (int)ev->from_day, (int)ev->to_day);
        delta_hset(c->d, o.tag.data, ":abs", ev->event_id, v);
        owner_release(&o);
        return;
    }
    const struct period *pp = &ev->period;
    if (c->wm_ms >= pp->end_ms + c->conf->accept_ms[pp->kind]) {
        res->late = true;
        snprintf(res->detail, sizeof(res->detail), "missed closed periods %s", pp->label);
        owner_release(&o);
        return;
    }
    agg_register(c, &o, pp, ev->shop_id, ev->agent_id);
    char suffix[64];
    if (ev->type == EV_REVIEW) {
        char field[256], v[40];
        snprintf(field, sizeof(field), "%s:%s", review_role_name(ev->role), ev->item);
        snprintf(v, sizeof(v), "%.17g", ev->score / ev->max);
        snprintf(suffix, sizeof(suffix), ":%s:rv", pp->label);
        delta_hset(c->d, o.tag.data, suffix, field, v);
    } else {
        /* target: replaces the agent's; the team's is the sum, kept by difference */
        struct buf id;
        buf_init(&id);
        const char *rid = agg_record_id(p, ev, &id);
        struct order *t = map_get(p->targets, rid);
        int64_t prev = 0;
        if (!t) {
            t = xcalloc(1, sizeof(*t));
            map_put(p->targets, rid, t);
        } else {
            prev = t->amount_cents;
        }
        t->amount_cents = ev->amount_cents;
        t->dirty = true;
        buf_release(&id);
        char v[32];
        snprintf(v, sizeof(v), "%" PRId64, ev->amount_cents);
        snprintf(suffix, sizeof(suffix), ":%s:c", pp->label);
        delta_hset(c->d, o.tag.data, suffix, "target_cents", v);
        delta_incr(c->d, o.team.data, suffix, "target_cents", ev->amount_cents - prev);
        /* A team's first target: HINCRBY starts from 0, so the sum is exact. */
    }
    owner_release(&o);
}

void agg_event(struct agg_ctx *c, struct agg_part *p, const struct event *ev, int64_t offset,
               const void *raw, size_t rawlen, struct agg_result *res)
{
    *res = (struct agg_result){0};
    struct buf missed;
    buf_init(&missed);
    switch (ev->topic) {
    case TOPIC_CHAT:
        agg_chat(c, p, ev, offset, &missed);
        agg_late_detail(res, &missed);
        break;
    case TOPIC_ORDERS:
        agg_orders(c, p, ev, offset, raw, rawlen, res);
        break;
    case TOPIC_REVIEWS:
        agg_reviews(c, p, ev, res);
        break;
    default:
        break;
    }
    buf_release(&missed);
}

/* ---- dirty state ---- */

static void agg_kv_push(struct agg_part *p, const char *field, char *value, size_t len)
{
    if (p->nkv == p->capkv) {
        p->capkv = p->capkv ? p->capkv * 2 : 64;
        p->kv = xrealloc(p->kv, p->capkv * sizeof(*p->kv));
    }
    p->kv[p->nkv++] = (struct agg_kv){.field = field, .value = value, .len = len};
}

size_t agg_part_dirty(struct agg_part *p, int which, struct agg_kv **out)
{
    agg_part_free_kv(p);
    size_t it = 0;
    const char *k;
    void *v;
    struct buf b;
    buf_init(&b);
    if (which == 0 && p->topic == TOPIC_CHAT) {
        while (map_next(p->conv, &it, &k, &v)) {
            struct cconv *cc = v;
            if (!cc->dirty)
                continue;
            buf_reset(&b);
            buf_add_str(&b, cc->shop, strlen(cc->shop));
            conv_encode(cc->conv, &b);
            agg_kv_push(p, k, xstrndup(b.data, b.len), b.len);
        }
    }
    if (which == 0) {
        it = 0;
        while (map_next(p->gone, &it, &k, &v))
            if (!map_get(p->topic == TOPIC_CHAT ? p->conv : p->orders, k))
                agg_kv_push(p, k, NULL, 0);
        it = 0;
    }
    if (which == 0 && p->topic != TOPIC_CHAT) {
        struct map *maps[2] = {p->orders, p->targets};
        for (int m = 0; m < 2; m++) {
            it = 0;
            while (map_next(maps[m], &it, &k, &v)) {
                struct order *o = v;
                if (!o->dirty)
                    continue;
                buf_reset(&b);
                agg_encode_order(o, &b);
                agg_kv_push(p, k, xstrndup(b.data, b.len), b.len);
            }
        }
    } else if (which == 1) {
        while (map_next(p->pend_dirty, &it, &k, &v)) {
            bool add = (uintptr_t)v == 1;
            agg_kv_push(p, k, add ? xstrdup("1") : NULL, add ? 1 : 0);
        }
    }
    buf_release(&b);
    *out = p->kv;
    return p->nkv;
}

void agg_part_clean(struct agg_part *p)
{
    size_t it = 0;
    const char *k;
    void *v;
    while (map_next(p->conv, &it, &k, &v))
        ((struct cconv *)v)->dirty = false;
    it = 0;
    while (map_next(p->orders, &it, &k, &v))
        ((struct order *)v)->dirty = false;
    it = 0;
    while (map_next(p->targets, &it, &k, &v))
        ((struct order *)v)->dirty = false;
    map_clear(p->pend_dirty);
    map_clear(p->gone);
    agg_part_free_kv(p);
}

bool agg_part_sweep(struct agg_part *p, const char *id, const char *value, size_t len,
                    int64_t cutoff_ms)
{
    if (p->topic == TOPIC_CHAT) {
        struct cconv *cc = map_get(p->conv, id);
        if (cc && cc->dirty)
            return false;
        struct conv *stored = cc ? NULL : agg_decode_conv(value, len, NULL);
        if (!cc && !stored)
            return false;
        int64_t newest = conv_newest_ms(cc ? cc->conv : stored);
        conv_destroy(stored);
        if (newest == INT64_MIN || newest >= cutoff_ms)
            return false;
        cconv_free(map_del(p->conv, id));
    } else if (p->topic == TOPIC_ORDERS) {
        struct order *o = map_get(p->orders, id), *loaded = NULL;
        if (o && o->dirty)
            return false;
        if (!o && !(o = loaded = agg_decode_order(value, len)))
            return false;
        bool gone = !map_get(p->pending, id) && agg_order_forgotten(1, o, cutoff_ms);
        order_free(loaded);
        if (!gone)
            return false;
        order_free(map_del(p->orders, id));
    } else {
        return false;
    }
    map_put(p->gone, id, (void *)1);
    return true;
}

size_t agg_part_trim(struct agg_part *p, size_t max)
{
    size_t have = agg_part_cached(p);
    if (have <= max)
        return 0;
    size_t want = have - max / 2, n = 0, dropped = 0;
    char **ids = xcalloc(want + 1, sizeof(*ids));
    struct map *maps[3] = {p->conv, p->orders, p->targets};
    for (int m = 0; m < 3 && want > 0; m++) {
        size_t it = 0;
        const char *k;
        void *v;
        n = 0;
        while (n < want && map_next(maps[m], &it, &k, &v)) {
            bool dirty = m == 0 ? ((struct cconv *)v)->dirty : ((struct order *)v)->dirty;
            if (!dirty && !(m == 1 && map_get(p->pending, k)))
                ids[n++] = xstrdup(k);
        }
        for (size_t i = 0; i < n; i++) {
            void *gone = map_del(maps[m], ids[i]);
            if (m == 0)
                cconv_free(gone);
            else
                order_free(gone);
            free(ids[i]);
        }
        dropped += n;
        want -= n;
    }
    free(ids);
    return dropped;
}
