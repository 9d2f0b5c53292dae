/* conv — one conversation's timeline turned into waits (see conv.h).
 * Invariants: the window holds messages sorted by (key, seq), key being the ts, or
 * floor - 1 for a message older than the pruned floor (so it lands at the front); every
 * folded message sorts before every retained one. `wait` always equals the waits derived
 * from base + window, less answered ones whose ending message was folded. The state just
 * before any position is recovered from `wait` and the preceding message, so an insertion
 * re-derives only from its own position on: an append costs O(1) amortised. */
#include "aggregator/conv.h"

#include <stdlib.h>
#include <string.h>

#define NOSTR UINT32_MAX
#define CONV_FORMAT 1
#define POOL_GC_MIN 16

/* A message of the window; strings are indices into the conversation's pool. */
struct msg {
    int64_t key, ts;
    uint64_t seq;
    uint32_t agent, to_agent, customer; /* to_agent: NOSTR unless a transfer */
    enum conv_kind kind;
};

/* A derived wait. Identity = (s_key, s_seq) of the `in` that started it; the e_* fields
 * are those of the `out` that ended it (unused while open). e_ts is clamped to >= s_ts. */
struct wait {
    int64_t s_key, s_ts, e_key, e_ts;
    uint64_t s_seq, e_seq;
    uint32_t agent, customer;
    bool open, first;
};

/* The timeline state machine between two messages. */
struct state {
    bool open, first, had_first;
    int64_t s_key, s_ts;
    uint64_t s_seq;
    uint32_t customer, holder;
};

struct conv {
    char **pool; /* interned strings; indices stay valid until the next pool_gc */
    uint32_t pool_n, pool_cap, gc_at;
    struct msg *msg; /* live part: msg[msg_off .. msg_off + msg_n) */
    size_t msg_off, msg_n, msg_cap;
    struct wait *wait; /* live part: wait[wait_off .. wait_off + wait_n), in start order */
    size_t wait_off, wait_n, wait_cap;
    struct wait *old; /* conv_add's scratch: the waits being replaced */
    size_t old_cap;
    int64_t newest, floor;
    uint64_t max_seq;
    bool have_seq;
    bool had_first;  /* base: a wait started in the folded history */
    uint32_t holder; /* base: the holder after the folded history, NOSTR when none */
};

static struct msg *msg_at(const struct conv *c, size_t k)
{
    return &c->msg[c->msg_off + k];
}

static struct wait *wait_at(const struct conv *c, size_t k)
{
    return &c->wait[c->wait_off + k];
}

static int id_cmp(int64_t ka, uint64_t sa, int64_t kb, uint64_t sb)
{
    if (ka != kb)
        return ka < kb ? -1 : 1;
    if (sa != sb)
        return sa < sb ? -1 : 1;
    return 0;
}

static uint32_t holder_of(const struct msg *m)
{
    return m->kind == CONV_TRANSFER ? m->to_agent : m->agent;
}

/* Room for one more element after a[off + n): reuses the dead prefix when it is at least
 * half the array (so each compaction pays for itself), else doubles. */
static void *vec_room(void *a, size_t size, size_t *off, size_t n, size_t *cap)
{
    if (*off + n < *cap)
        return a;
    if (*off > 0 && *off * 2 >= *cap) {
        memmove(a, (char *)a + *off * size, n * size);
        *off = 0;
        return a;
    }
    *cap = *cap ? *cap * 2 : 8;
    return xrealloc(a, *cap * size);
}

static uint32_t intern(struct conv *c, const char *s)
{
    if (!s)
        s = "";
    for (uint32_t k = c->pool_n; k-- > 0;)
        if (strcmp(c->pool[k], s) == 0)
            return k;
    if (c->pool_n == c->pool_cap) {
        c->pool_cap = c->pool_cap ? c->pool_cap * 2 : 4;
        c->pool = xrealloc(c->pool, c->pool_cap * sizeof(*c->pool));
    }
    c->pool[c->pool_n] = xstrdup(s);
    return c->pool_n++;
}

static const char *str_of(const struct conv *c, uint32_t k)
{
    return k == NOSTR ? "" : c->pool[k];
}

/* Drops pool strings nothing refers to any more and renumbers the rest. */
static void pool_gc(struct conv *c)
{
    uint32_t *map = xcalloc(c->pool_n, sizeof(*map)); /* 0 unused, else new index + 1 */
    for (size_t k = 0; k < c->msg_n; k++) {
        const struct msg *m = msg_at(c, k);
        map[m->agent] = map[m->customer] = 1;
        if (m->to_agent != NOSTR)
            map[m->to_agent] = 1;
    }
    for (size_t k = 0; k < c->wait_n; k++)
        map[wait_at(c, k)->agent] = map[wait_at(c, k)->customer] = 1;
    if (c->holder != NOSTR)
        map[c->holder] = 1;

    uint32_t n = 0;
    for (uint32_t k = 0; k < c->pool_n; k++) {
        if (map[k]) {
            c->pool[n] = c->pool[k];
            map[k] = ++n;
        } else {
            free(c->pool[k]);
        }
    }
    c->pool_n = n;
    for (size_t k = 0; k < c->msg_n; k++) {
        struct msg *m = msg_at(c, k);
        m->agent = map[m->agent] - 1;
        m->customer = map[m->customer] - 1;
        if (m->to_agent != NOSTR)
            m->to_agent = map[m->to_agent] - 1;
    }
    for (size_t k = 0; k < c->wait_n; k++) {
        struct wait *w = wait_at(c, k);
        w->agent = map[w->agent] - 1;
        w->customer = map[w->customer] - 1;
    }
    if (c->holder != NOSTR)
        c->holder = map[c->holder] - 1;
    free(map);
    c->gc_at = c->pool_n * 2 > POOL_GC_MIN ? c->pool_n * 2 : POOL_GC_MIN;
}

struct conv *conv_new(void)
{
    struct conv *c = xcalloc(1, sizeof(*c));
    c->newest = INT64_MIN;
    c->floor = INT64_MIN;
    c->holder = NOSTR;
    c->gc_at = POOL_GC_MIN;
    return c;
}

void conv_destroy(struct conv *c)
{
    if (!c)
        return;
    for (uint32_t k = 0; k < c->pool_n; k++)
        free(c->pool[k]);
    free(c->pool);
    free(c->msg);
    free(c->wait);
    free(c->old);
    free(c);
}

/* Index of the first retained message that sorts after (key, seq). */
static size_t msg_position(const struct conv *c, int64_t key, uint64_t seq)
{
    size_t lo = 0, hi = c->msg_n;
    if (hi && id_cmp(msg_at(c, hi - 1)->key, msg_at(c, hi - 1)->seq, key, seq) < 0)
        return hi; /* the common case: an append */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (id_cmp(msg_at(c, mid)->key, msg_at(c, mid)->seq, key, seq) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static void msg_insert(struct conv *c, size_t i, const struct msg *m)
{
    c->msg = vec_room(c->msg, sizeof(*c->msg), &c->msg_off, c->msg_n, &c->msg_cap);
    struct msg *at = msg_at(c, i);
    memmove(at + 1, at, (c->msg_n - i) * sizeof(*at));
    *at = *m;
    c->msg_n++;
}

static void wait_push(struct conv *c, const struct wait *w)
{
    c->wait = vec_room(c->wait, sizeof(*c->wait), &c->wait_off, c->wait_n, &c->wait_cap);
    *wait_at(c, c->wait_n++) = *w;
}

/* The state just before the message at position i, from the waits and message i - 1.
 * Returns the index of the first wait not over by then: the waits from there on are
 * the ones re-deriving from i may change. */
static size_t state_before(const struct conv *c, size_t i, struct state *st)
{
    const struct msg *b = msg_at(c, i);
    size_t j = c->wait_n;
    while (j > 0) {
        const struct wait *w = wait_at(c, j - 1);
        if (!w->open && id_cmp(w->e_key, w->e_seq, b->key, b->seq) < 0)
            break;
        j--;
    }
    *st = (struct state){
        .holder = i > 0 ? holder_of(msg_at(c, i - 1)) : c->holder,
        .had_first = c->had_first ||
                     (c->wait_n > 0 &&
                      id_cmp(wait_at(c, 0)->s_key, wait_at(c, 0)->s_seq, b->key, b->seq) < 0),
    };
    if (j < c->wait_n) {
        const struct wait *w = wait_at(c, j);
        if (id_cmp(w->s_key, w->s_seq, b->key, b->seq) < 0) {
            st->open = true;
            st->first = w->first;
            st->s_key = w->s_key;
            st->s_ts = w->s_ts;
            st->s_seq = w->s_seq;
            st->customer = w->customer;
        }
    }
    return j;
}

/* Runs the timeline from message i on, appending the waits it derives. */
static void derive_from(struct conv *c, size_t i, struct state *st)
{
    for (size_t k = i; k < c->msg_n; k++) {
        const struct msg *m = msg_at(c, k);
        switch (m->kind) {
        case CONV_IN:
            if (!st->open) {
                st->open = true;
                st->first = !st->had_first;
                st->had_first = true;
                st->s_key = m->key;
                st->s_ts = m->ts;
                st->s_seq = m->seq;
                st->customer = m->customer;
            }
            st->holder = m->agent;
            break;
        case CONV_OUT:
            if (st->open) {
                wait_push(c, &(struct wait){
                                 .s_key = st->s_key,
                                 .s_ts = st->s_ts,
                                 .s_seq = st->s_seq,
                                 .e_key = m->key,
                                 .e_ts = m->ts > st->s_ts ? m->ts : st->s_ts,
                                 .e_seq = m->seq,
                                 .agent = m->agent,
                                 .customer = st->customer,
                                 .first = st->first,
                             });
                st->open = false;
            }
            st->holder = m->agent;
            break;
        case CONV_TRANSFER:
            st->holder = m->to_agent;
            break;
        }
    }
    if (st->open)
        wait_push(c, &(struct wait){
                         .s_key = st->s_key,
                         .s_ts = st->s_ts,
                         .s_seq = st->s_seq,
                         .agent = st->holder,
                         .customer = st->customer,
                         .first = st->first,
                         .open = true,
                     });
}

static bool wait_same(const struct wait *a, const struct wait *b)
{
    if (a->open != b->open || a->first != b->first || a->agent != b->agent ||
        a->customer != b->customer || a->s_ts != b->s_ts)
        return false;
    return a->open || (a->e_key == b->e_key && a->e_seq == b->e_seq && a->e_ts == b->e_ts);
}

static void emit(const struct conv *c, conv_wait_cb cb, void *ud, int sign, const struct wait *w)
{
    struct conv_wait cw = {
        .start_ms = w->s_ts,
        .end_ms = w->open ? -1 : w->e_ts,
        .agent = str_of(c, w->agent),
        .customer = str_of(c, w->customer),
        .first = w->first,
    };
    cb(ud, sign, &cw);
}

/* Reports the difference between the old and new waits (both in start order): every
 * retraction first, then every assertion, each in start order, so a consumer never holds
 * the same wait twice. Waits that did not change are not reported. */
static void report(const struct conv *c, const struct wait *old, size_t n_old,
                   const struct wait *neu, size_t n_new, conv_wait_cb cb, void *ud)
{
    for (int pass = -1; pass <= 1; pass += 2) {
        size_t a = 0, b = 0;
        while (a < n_old || b < n_new) {
            int d = a == n_old   ? 1
                    : b == n_new ? -1
                                 : id_cmp(old[a].s_key, old[a].s_seq, neu[b].s_key, neu[b].s_seq);
            if (d == 0 && wait_same(&old[a], &neu[b])) {
                a++;
                b++;
                continue;
            }
            if (d <= 0) {
                if (pass < 0)
                    emit(c, cb, ud, -1, &old[a]);
                a++;
            }
            if (d >= 0) {
                if (pass > 0)
                    emit(c, cb, ud, +1, &neu[b]);
                b++;
            }
        }
    }
}

void conv_add(struct conv *c, const struct conv_msg *m, conv_wait_cb cb, void *ud)
{
    if (m->kind != CONV_IN && m->kind != CONV_OUT && m->kind != CONV_TRANSFER)
        return;
    /* seq is only an order: one that does not grow (offsets reset) still arrived last. */
    uint64_t seq = m->seq;
    if (c->have_seq && seq <= c->max_seq) {
        if (c->max_seq == UINT64_MAX)
            return;
        seq = c->max_seq + 1;
    }
    struct msg nm = {
        .kind = m->kind,
        .ts = m->ts_ms,
        .key = m->ts_ms < c->floor ? c->floor - 1 : m->ts_ms,
        .seq = seq,
        .agent = intern(c, m->agent),
        .to_agent = m->kind == CONV_TRANSFER ? intern(c, m->to_agent) : NOSTR,
        .customer = intern(c, m->customer),
    };
    c->have_seq = true;
    c->max_seq = seq;
    if (m->ts_ms > c->newest)
        c->newest = m->ts_ms;

    size_t i = msg_position(c, nm.key, nm.seq);
    msg_insert(c, i, &nm);

    struct state st;
    size_t j = state_before(c, i, &st);
    size_t n_old = c->wait_n - j;
    if (n_old > c->old_cap) {
        c->old_cap = n_old * 2;
        c->old = xrealloc(c->old, c->old_cap * sizeof(*c->old));
    }
    if (n_old)
        memcpy(c->old, wait_at(c, j), n_old * sizeof(*c->old));
    c->wait_n = j;
    derive_from(c, i, &st);
    if (cb)
        report(c, c->old, n_old, c->wait_n > j ? wait_at(c, j) : NULL, c->wait_n - j, cb, ud);
}

void conv_prune(struct conv *c, int64_t horizon_ms)
{
    if (horizon_ms > c->floor)
        c->floor = horizon_ms;
    size_t f = 0;
    while (f < c->msg_n && msg_at(c, f)->key < c->floor)
        f++;
    if (f == 0)
        return;

    const struct msg *last = msg_at(c, f - 1);
    c->holder = holder_of(last);
    if (c->wait_n > 0 &&
        id_cmp(wait_at(c, 0)->s_key, wait_at(c, 0)->s_seq, last->key, last->seq) <= 0)
        c->had_first = true;
    size_t g = 0;
    while (g < c->wait_n && !wait_at(c, g)->open &&
           id_cmp(wait_at(c, g)->e_key, wait_at(c, g)->e_seq, last->key, last->seq) <= 0)
        g++;
    c->wait_off = g == c->wait_n ? 0 : c->wait_off + g;
    c->wait_n -= g;
    c->msg_off = f == c->msg_n ? 0 : c->msg_off + f;
    c->msg_n -= f;
    if (c->pool_n >= c->gc_at)
        pool_gc(c);
}

const char *conv_holder(const struct conv *c)
{
    return str_of(c, c->msg_n ? holder_of(msg_at(c, c->msg_n - 1)) : c->holder);
}

int64_t conv_newest_ms(const struct conv *c)
{
    return c->newest;
}

size_t conv_retained(const struct conv *c)
{
    return c->msg_n;
}

/* Record layout (buf_add_* fields): format, newest, floor, have_seq, max_seq, had_first,
 * holder + 1 (0 none); the pool (count, strings); the messages (count; each: kind, key
 * (first absolute, then the gap to the previous), key - ts, seq (first absolute, then the
 * difference to the previous), agent, to_agent + 1, customer); the waits (count; each:
 * open | first << 1, s_key, s_key - s_ts, s_seq, and when answered e_key - s_key,
 * e_key - e_ts, e_seq; then agent, customer). Differences wrap as uint64. */
void conv_encode(const struct conv *c, struct buf *out)
{
    buf_add_u64(out, CONV_FORMAT);
    buf_add_i64(out, c->newest);
    buf_add_i64(out, c->floor);
    buf_add_u64(out, c->have_seq);
    buf_add_u64(out, c->max_seq);
    buf_add_u64(out, c->had_first);
    buf_add_u64(out, c->holder == NOSTR ? 0 : (uint64_t)c->holder + 1);
    buf_add_u64(out, c->pool_n);
    for (uint32_t k = 0; k < c->pool_n; k++)
        buf_add_str(out, c->pool[k], strlen(c->pool[k]));
    buf_add_u64(out, c->msg_n);
    for (size_t k = 0; k < c->msg_n; k++) {
        const struct msg *m = msg_at(c, k);
        buf_add_u64(out, (uint64_t)m->kind);
        if (k == 0) {
            buf_add_i64(out, m->key);
            buf_add_u64(out, m->seq);
        } else {
            const struct msg *p = msg_at(c, k - 1);
            buf_add_u64(out, (uint64_t)m->key - (uint64_t)p->key);
            buf_add_i64(out, (int64_t)(m->seq - p->seq));
        }
        buf_add_u64(out, (uint64_t)m->key - (uint64_t)m->ts);
        buf_add_u64(out, m->agent);
        buf_add_u64(out, m->to_agent == NOSTR ? 0 : (uint64_t)m->to_agent + 1);
        buf_add_u64(out, m->customer);
    }
    buf_add_u64(out, c->wait_n);
    for (size_t k = 0; k < c->wait_n; k++) {
        const struct wait *w = wait_at(c, k);
        buf_add_u64(out, (uint64_t)w->open | (uint64_t)w->first << 1);
        buf_add_i64(out, w->s_key);
        buf_add_u64(out, (uint64_t)w->s_key - (uint64_t)w->s_ts);
        buf_add_u64(out, w->s_seq);
        if (!w->open) {
            buf_add_u64(out, (uint64_t)w->e_key - (uint64_t)w->s_key);
            buf_add_u64(out, (uint64_t)w->e_key - (uint64_t)w->e_ts);
            buf_add_u64(out, w->e_seq);
        }
        buf_add_u64(out, w->agent);
        buf_add_u64(out, w->customer);
    }
}

/* A count read from r that cannot exceed the bytes left (each element takes >= 1). */
static bool read_count(struct buf_reader *r, size_t *n)
{
    uint64_t v = buf_read_u64(r);
    if (r->err || v > (uint64_t)(r->end - r->p))
        return false;
    *n = (size_t)v;
    return true;
}

static bool read_str_index(struct buf_reader *r, const struct conv *c, uint32_t *out)
{
    uint64_t v = buf_read_u64(r);
    if (r->err || v >= c->pool_n)
        return false;
    *out = (uint32_t)v;
    return true;
}

static bool decode_messages(struct buf_reader *r, struct conv *c)
{
    size_t n;
    if (!read_count(r, &n))
        return false;
    c->msg_cap = n ? n : 1;
    c->msg = xcalloc(c->msg_cap, sizeof(*c->msg));
    for (size_t k = 0; k < n; k++) {
        struct msg *m = &c->msg[k];
        uint64_t kind = buf_read_u64(r);
        if (kind > CONV_TRANSFER)
            return false;
        m->kind = (enum conv_kind)kind;
        if (k == 0) {
            m->key = buf_read_i64(r);
            m->seq = buf_read_u64(r);
        } else {
            m->key = (int64_t)((uint64_t)c->msg[k - 1].key + buf_read_u64(r));
            m->seq = c->msg[k - 1].seq + (uint64_t)buf_read_i64(r);
            if (id_cmp(c->msg[k - 1].key, c->msg[k - 1].seq, m->key, m->seq) >= 0)
                return false;
        }
        m->ts = (int64_t)((uint64_t)m->key - buf_read_u64(r));
        uint64_t to;
        if (m->ts > m->key || !read_str_index(r, c, &m->agent))
            return false;
        to = buf_read_u64(r);
        if (to > c->pool_n || (to == 0) != (m->kind != CONV_TRANSFER))
            return false;
        m->to_agent = to == 0 ? NOSTR : (uint32_t)(to - 1);
        if (!read_str_index(r, c, &m->customer) || !c->have_seq || m->seq > c->max_seq ||
            m->key < (c->floor == INT64_MIN ? INT64_MIN : c->floor - 1))
            return false;
        c->msg_n++;
    }
    return !r->err;
}

static bool decode_waits(struct buf_reader *r, struct conv *c)
{
    size_t n;
    if (!read_count(r, &n))
        return false;
    c->wait_cap = n ? n : 1;
    c->wait = xcalloc(c->wait_cap, sizeof(*c->wait));
    for (size_t k = 0; k < n; k++) {
        struct wait *w = &c->wait[k];
        uint64_t flags = buf_read_u64(r);
        if (flags > 3)
            return false;
        w->open = flags & 1;
        w->first = flags & 2;
        w->s_key = buf_read_i64(r);
        w->s_ts = (int64_t)((uint64_t)w->s_key - buf_read_u64(r));
        w->s_seq = buf_read_u64(r);
        if (w->s_ts > w->s_key)
            return false;
        if (!w->open) {
            w->e_key = (int64_t)((uint64_t)w->s_key + buf_read_u64(r));
            w->e_ts = (int64_t)((uint64_t)w->e_key - buf_read_u64(r));
            w->e_seq = buf_read_u64(r);
            if (id_cmp(w->s_key, w->s_seq, w->e_key, w->e_seq) >= 0 || w->e_ts > w->e_key ||
                w->e_ts < w->s_ts)
                return false;
        }
        /* Waits follow each other and only the last may be open. */
        if (k > 0) {
            const struct wait *p = &c->wait[k - 1];
            if (p->open || id_cmp(p->e_key, p->e_seq, w->s_key, w->s_seq) >= 0)
                return false;
        }
        if (!read_str_index(r, c, &w->agent) || !read_str_index(r, c, &w->customer))
            return false;
        c->wait_n++;
    }
    return !r->err;
}

struct conv *conv_decode(const void *p, size_t n)
{
    struct buf_reader r;
    buf_reader_init(&r, p, n);
    if (buf_read_u64(&r) != CONV_FORMAT || r.err)
        return NULL;
    struct conv *c = conv_new();
    c->newest = buf_read_i64(&r);
    c->floor = buf_read_i64(&r);
    uint64_t have_seq = buf_read_u64(&r);
    c->max_seq = buf_read_u64(&r);
    uint64_t had_first = buf_read_u64(&r);
    uint64_t holder = buf_read_u64(&r);
    size_t pool_n;
    if (r.err || have_seq > 1 || had_first > 1 || !read_count(&r, &pool_n) || pool_n >= NOSTR ||
        holder > pool_n)
        goto out_bad;
    c->have_seq = have_seq;
    c->had_first = had_first;
    c->pool_cap = pool_n ? (uint32_t)pool_n : 1;
    c->pool = xcalloc(c->pool_cap, sizeof(*c->pool));
    for (size_t k = 0; k < pool_n; k++) {
        size_t len;
        const char *s = buf_read_str(&r, &len);
        if (!s || memchr(s, '\0', len))
            goto out_bad;
        c->pool[c->pool_n++] = xstrndup(s, len);
    }
    c->holder = holder == 0 ? NOSTR : (uint32_t)(holder - 1);
    if (!decode_messages(&r, c) || !decode_waits(&r, c) || r.p != r.end)
        goto out_bad;
    if (c->pool_n * 2 > c->gc_at)
        c->gc_at = c->pool_n * 2;
    return c;

out_bad:
    conv_destroy(c);
    return NULL;
}
