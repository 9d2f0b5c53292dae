/* Unit tests for aggregator/conv: exact callback sequences for hand-made timelines
 * (metrics.md's example conversations first), the record format, and an invariant check:
 * the running sum of reported waits always equals what a naive reference derives from
 * the whole timeline. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/conv.h"
#include "common/buf.h"

#define T(h, m, s) ((((int64_t)(h)*60 + (m)) * 60 + (s)) * 1000)

/* ---- recording callbacks ---------------------------------------------------------- */

struct rec {
    int step, sign;
    int64_t start, end;
    char agent[16], customer[16];
    bool first;
};

struct recorder {
    struct rec *r;
    size_t n, cap;
    int step;
};

static void record(void *ud, int sign, const struct conv_wait *w)
{
    struct recorder *rc = ud;
    if (rc->n == rc->cap) {
        rc->cap = rc->cap ? rc->cap * 2 : 32;
        rc->r = xrealloc(rc->r, rc->cap * sizeof(*rc->r));
    }
    struct rec *r = &rc->r[rc->n++];
    *r = (struct rec){
        .step = rc->step, .sign = sign, .start = w->start_ms, .end = w->end_ms, .first = w->first};
    snprintf(r->agent, sizeof(r->agent), "%s", w->agent);
    snprintf(r->customer, sizeof(r->customer), "%s", w->customer);
}

/* ---- table-driven timelines --------------------------------------------------------- */

enum op { OP_END, OP_IN, OP_OUT, OP_XFER, OP_PRUNE, OP_BADKIND };

struct step {
    enum op op;
    int64_t ts; /* the horizon for OP_PRUNE */
    const char *agent, *to, *customer;
    uint64_t seq; /* 0: 100 + step index */
};

/* clang-format off */
#define IN(t, a, u) {.op = OP_IN, .ts = (t), .agent = (a), .customer = (u)}
#define OUT(t, a, u) {.op = OP_OUT, .ts = (t), .agent = (a), .customer = (u)}
#define XFER(t, a, b, u) {.op = OP_XFER, .ts = (t), .agent = (a), .to = (b), .customer = (u)}
#define PRUNE(h) {.op = OP_PRUNE, .ts = (h)}
/* clang-format on */

struct expect {
    int step, sign; /* sign 0 ends the list */
    int64_t start, end;
    const char *agent, *customer;
    bool first;
};

struct conv_case {
    const char *name;
    struct step steps[16];
    struct expect want[16];
    const char *holder; /* after the last step */
    size_t retained;
    int64_t newest;
};

static const struct conv_case cases[] = {
    {
        .name = "example c1: two in, out 45 s later, then a 30 s wait; duplicate e5",
        .steps = {IN(T(10, 0, 0), "x1", "u1"), IN(T(10, 0, 20), "x1", "u1"),
                  OUT(T(10, 0, 45), "x1", "u1"), IN(T(10, 5, 0), "x1", "u1"),
                  OUT(T(10, 5, 30), "x1", "u1"), OUT(T(10, 5, 30), "x1", "u1")},
        .want = {{0, +1, T(10, 0, 0), -1, "x1", "u1", true},
                 {2, -1, T(10, 0, 0), -1, "x1", "u1", true},
                 {2, +1, T(10, 0, 0), T(10, 0, 45), "x1", "u1", true},
                 {3, +1, T(10, 5, 0), -1, "x1", "u1", false},
                 {4, -1, T(10, 5, 0), -1, "x1", "u1", false},
                 {4, +1, T(10, 5, 0), T(10, 5, 30), "x1", "u1", false}},
        .holder = "x1",
        .retained = 6,
        .newest = T(10, 5, 30),
    },
    {
        .name = "example c2: the open wait follows the transfer, x2 answers it",
        .steps = {IN(T(11, 0, 0), "x1", "u2"), XFER(T(11, 1, 0), "x1", "x2", "u2"),
                  OUT(T(11, 2, 0), "x2", "u2")},
        .want = {{0, +1, T(11, 0, 0), -1, "x1", "u2", true},
                 {1, -1, T(11, 0, 0), -1, "x1", "u2", true},
                 {1, +1, T(11, 0, 0), -1, "x2", "u2", true},
                 {2, -1, T(11, 0, 0), -1, "x2", "u2", true},
                 {2, +1, T(11, 0, 0), T(11, 2, 0), "x2", "u2", true}},
        .holder = "x2",
        .retained = 3,
        .newest = T(11, 2, 0),
    },
    {
        .name = "example c3: a single in stays open for its holder",
        .steps = {IN(T(9, 0, 0), "x2", "u3")},
        .want = {{0, +1, T(9, 0, 0), -1, "x2", "u3", true}},
        .holder = "x2",
        .retained = 1,
        .newest = T(9, 0, 0),
    },
    {
        .name = "example c4: the out arrives before the in it answers",
        .steps = {OUT(T(15, 0, 50), "x2", "u4"), IN(T(15, 0, 10), "x2", "u4")},
        .want = {{1, +1, T(15, 0, 10), T(15, 0, 50), "x2", "u4", true}},
        .holder = "x2",
        .retained = 2,
        .newest = T(15, 0, 50),
    },
    {
        .name = "a late out splits a wait, a late in starts a second one",
        .steps = {IN(T(10, 0, 0), "x1", "u1"), OUT(T(10, 10, 0), "x1", "u1"),
                  OUT(T(10, 5, 0), "x2", "u1"), IN(T(10, 7, 0), "x1", "u1")},
        .want = {{0, +1, T(10, 0, 0), -1, "x1", "u1", true},
                 {1, -1, T(10, 0, 0), -1, "x1", "u1", true},
                 {1, +1, T(10, 0, 0), T(10, 10, 0), "x1", "u1", true},
                 {2, -1, T(10, 0, 0), T(10, 10, 0), "x1", "u1", true},
                 {2, +1, T(10, 0, 0), T(10, 5, 0), "x2", "u1", true},
                 {3, +1, T(10, 7, 0), T(10, 10, 0), "x1", "u1", false}},
        .holder = "x1",
        .retained = 4,
        .newest = T(10, 10, 0),
    },
    {
        .name = "a late in becomes the first wait; retractions come before assertions",
        .steps = {IN(T(10, 10, 0), "x1", "u1"), OUT(T(10, 12, 0), "x1", "u1"),
                  IN(T(10, 0, 0), "x1", "u9"), OUT(T(10, 1, 0), "x2", "u9")},
        .want = {{0, +1, T(10, 10, 0), -1, "x1", "u1", true},
                 {1, -1, T(10, 10, 0), -1, "x1", "u1", true},
                 {1, +1, T(10, 10, 0), T(10, 12, 0), "x1", "u1", true},
                 {2, -1, T(10, 10, 0), T(10, 12, 0), "x1", "u1", true},
                 {2, +1, T(10, 0, 0), T(10, 12, 0), "x1", "u9", true},
                 {3, -1, T(10, 0, 0), T(10, 12, 0), "x1", "u9", true},
                 {3, +1, T(10, 0, 0), T(10, 1, 0), "x2", "u9", true},
                 {3, +1, T(10, 10, 0), T(10, 12, 0), "x1", "u1", false}},
        .holder = "x1",
        .retained = 4,
        .newest = T(10, 12, 0),
    },
    {
        .name = "equal ts keeps arrival order: in, out, in, out all at 10:00",
        .steps = {IN(T(10, 0, 0), "x1", "u1"), OUT(T(10, 0, 0), "x1", "u1"),
                  IN(T(10, 0, 0), "x1", "u1"), OUT(T(10, 0, 0), "x2", "u1")},
        .want = {{0, +1, T(10, 0, 0), -1, "x1", "u1", true},
                 {1, -1, T(10, 0, 0), -1, "x1", "u1", true},
                 {1, +1, T(10, 0, 0), T(10, 0, 0), "x1", "u1", true},
                 {2, +1, T(10, 0, 0), -1, "x1", "u1", false},
                 {3, -1, T(10, 0, 0), -1, "x1", "u1", false},
                 {3, +1, T(10, 0, 0), T(10, 0, 0), "x2", "u1", false}},
        .holder = "x2",
        .retained = 4,
        .newest = T(10, 0, 0),
    },
    {
        .name = "equal ts keeps arrival order: an out that arrived first answers nothing",
        .steps = {OUT(T(10, 0, 0), "x1", "u1"), IN(T(10, 0, 0), "x1", "u1"),
                  OUT(T(10, 0, 0), "x1", "u1")},
        .want = {{1, +1, T(10, 0, 0), -1, "x1", "u1", true},
                 {2, -1, T(10, 0, 0), -1, "x1", "u1", true},
                 {2, +1, T(10, 0, 0), T(10, 0, 0), "x1", "u1", true}},
        .holder = "x1",
        .retained = 3,
        .newest = T(10, 0, 0),
    },
    {
        .name = "duplicate-looking messages change nothing, even a late one",
        .steps = {IN(T(10, 0, 0), "x1", "u1"), IN(T(10, 0, 0), "x1", "u1"),
                  OUT(T(10, 1, 0), "x1", "u1"), OUT(T(10, 1, 0), "x1", "u1"),
                  IN(T(10, 0, 0), "x1", "u1")},
        .want = {{0, +1, T(10, 0, 0), -1, "x1", "u1", true},
                 {2, -1, T(10, 0, 0), -1, "x1", "u1", true},
                 {2, +1, T(10, 0, 0), T(10, 1, 0), "x1", "u1", true}},
        .holder = "x1",
        .retained = 5,
        .newest = T(10, 1, 0),
    },
    {
        .name = "a transfer chain: the open wait follows it; a late middle transfer is moot",
        .steps = {IN(T(10, 0, 0), "x1", "u1"), XFER(T(10, 1, 0), "x1", "x2", "u1"),
                  XFER(T(10, 2, 0), "x2", "x3", "u1"), XFER(T(10, 1, 30), "x2", "x4", "u1"),
                  OUT(T(10, 3, 0), "x3", "u1")},
        .want = {{0, +1, T(10, 0, 0), -1, "x1", "u1", true},
                 {1, -1, T(10, 0, 0), -1, "x1", "u1", true},
                 {1, +1, T(10, 0, 0), -1, "x2", "u1", true},
                 {2, -1, T(10, 0, 0), -1, "x2", "u1", true},
                 {2, +1, T(10, 0, 0), -1, "x3", "u1", true},
                 {4, -1, T(10, 0, 0), -1, "x3", "u1", true},
                 {4, +1, T(10, 0, 0), T(10, 3, 0), "x3", "u1", true}},
        .holder = "x3",
        .retained = 5,
        .newest = T(10, 3, 0),
    },
    {
        .name = "a late transfer does not beat a later message; a later one does",
        .steps = {IN(T(10, 0, 0), "x1", "u1"), IN(T(10, 2, 0), "x1", "u1"),
                  XFER(T(10, 1, 0), "x1", "x2", "u1"), XFER(T(10, 3, 0), "x1", "x2", "u1")},
        .want = {{0, +1, T(10, 0, 0), -1, "x1", "u1", true},
                 {3, -1, T(10, 0, 0), -1, "x1", "u1", true},
                 {3, +1, T(10, 0, 0), -1, "x2", "u1", true}},
        .holder = "x2",
        .retained = 4,
        .newest = T(10, 3, 0),
    },
    {
        .name = "pruning: the first flag and an open wait survive it",
        .steps = {IN(T(10, 0, 0), "x1", "u1"), OUT(T(10, 1, 0), "x1", "u1"), PRUNE(T(10, 5, 0)),
                  IN(T(10, 10, 0), "x1", "u1"), PRUNE(T(10, 20, 0)),
                  XFER(T(10, 25, 0), "x1", "x2", "u1"), PRUNE(T(10, 30, 0)),
                  OUT(T(10, 31, 0), "x2", "u1")},
        .want = {{0, +1, T(10, 0, 0), -1, "x1", "u1", true},
                 {1, -1, T(10, 0, 0), -1, "x1", "u1", true},
                 {1, +1, T(10, 0, 0), T(10, 1, 0), "x1", "u1", true},
                 {3, +1, T(10, 10, 0), -1, "x1", "u1", false},
                 {5, -1, T(10, 10, 0), -1, "x1", "u1", false},
                 {5, +1, T(10, 10, 0), -1, "x2", "u1", false},
                 {7, -1, T(10, 10, 0), -1, "x2", "u1", false},
                 {7, +1, T(10, 10, 0), T(10, 31, 0), "x2", "u1", false}},
        .holder = "x2",
        .retained = 1,
        .newest = T(10, 31, 0),
    },
    {
        .name = "older than the horizon: front of the window, lengths clamp at 0",
        .steps = {IN(T(10, 0, 0), "x1", "u1"), PRUNE(T(10, 5, 0)), OUT(T(9, 50, 0), "x2", "u1"),
                  IN(T(9, 0, 0), "x1", "u2"), OUT(T(10, 6, 0), "x1", "u2"), PRUNE(T(10, 10, 0))},
        .want = {{0, +1, T(10, 0, 0), -1, "x1", "u1", true},
                 {2, -1, T(10, 0, 0), -1, "x1", "u1", true},
                 {2, +1, T(10, 0, 0), T(10, 0, 0), "x2", "u1", true},
                 {3, +1, T(9, 0, 0), -1, "x1", "u2", false},
                 {4, -1, T(9, 0, 0), -1, "x1", "u2", false},
                 {4, +1, T(9, 0, 0), T(10, 6, 0), "x1", "u2", false}},
        .holder = "x1",
        .retained = 0,
        .newest = T(10, 6, 0),
    },
    {
        .name = "older than the horizon, ahead of retained messages",
        .steps = {IN(T(10, 0, 0), "x1", "u1"), OUT(T(10, 1, 0), "x1", "u1"),
                  IN(T(10, 6, 0), "x1", "u1"), PRUNE(T(10, 5, 0)), OUT(T(10, 2, 0), "x2", "u1"),
                  IN(T(10, 3, 0), "x3", "u2")},
        .want = {{0, +1, T(10, 0, 0), -1, "x1", "u1", true},
                 {1, -1, T(10, 0, 0), -1, "x1", "u1", true},
                 {1, +1, T(10, 0, 0), T(10, 1, 0), "x1", "u1", true},
                 {2, +1, T(10, 6, 0), -1, "x1", "u1", false},
                 {5, -1, T(10, 6, 0), -1, "x1", "u1", false},
                 {5, +1, T(10, 3, 0), -1, "x1", "u2", false}},
        .holder = "x1",
        .retained = 3,
        .newest = T(10, 6, 0),
    },
    {
        .name = "a seq that does not grow still counts as arriving last; bad kinds ignored",
        .steps = {{.op = OP_IN, .ts = T(10, 0, 0), .agent = "x1", .customer = "u1", .seq = 50},
                  {.op = OP_BADKIND, .ts = T(9, 0, 0), .agent = "x9", .customer = "u9"},
                  {.op = OP_OUT, .ts = T(10, 0, 0), .agent = "x2", .customer = "u1", .seq = 7}},
        .want = {{0, +1, T(10, 0, 0), -1, "x1", "u1", true},
                 {2, -1, T(10, 0, 0), -1, "x1", "u1", true},
                 {2, +1, T(10, 0, 0), T(10, 0, 0), "x2", "u1", true}},
        .holder = "x2",
        .retained = 2,
        .newest = T(10, 0, 0),
    },
    {
        .name = "NULL strings read as empty ones",
        .steps = {IN(T(10, 0, 0), NULL, NULL), XFER(T(10, 1, 0), "x1", NULL, NULL)},
        .want = {{0, +1, T(10, 0, 0), -1, "", "", true}},
        .holder = "",
        .retained = 2,
        .newest = T(10, 1, 0),
    },
};

static void apply_step(struct conv *c, const struct step *s, int k, struct recorder *rc)
{
    static const enum conv_kind kinds[] = {
        [OP_IN] = CONV_IN, [OP_OUT] = CONV_OUT, [OP_XFER] = CONV_TRANSFER, [OP_BADKIND] = 42};
    rc->step = k;
    if (s->op == OP_PRUNE) {
        conv_prune(c, s->ts);
        return;
    }
    struct conv_msg m = {
        .kind = kinds[s->op],
        .ts_ms = s->ts,
        .seq = s->seq ? s->seq : 100 + (uint64_t)k,
        .agent = s->agent,
        .to_agent = s->to,
        .customer = s->customer,
    };
    conv_add(c, &m, record, rc);
}

static void test_cases(void **state)
{
    for (size_t t = 0; t < sizeof(cases) / sizeof(cases[0]); t++) {
        const struct conv_case *cc = &cases[t];
        struct conv *c = conv_new();
        struct recorder rc = {0};
        for (int k = 0; cc->steps[k].op != OP_END; k++)
            apply_step(c, &cc->steps[k], k, &rc);

        size_t n_want = 0;
        while (cc->want[n_want].sign)
            n_want++;
        for (size_t k = 0; k < rc.n || k < n_want; k++) {
            if (k >= rc.n || k >= n_want)
                fail_msg("%s: %zu calls, want %zu", cc->name, rc.n, n_want);
            const struct rec *g = &rc.r[k];
            const struct expect *w = &cc->want[k];
            if (g->step != w->step || g->sign != w->sign || g->start != w->start ||
                g->end != w->end || strcmp(g->agent, w->agent) ||
                strcmp(g->customer, w->customer) || g->first != w->first)
                fail_msg("%s: call %zu: got step %d sign %d start %lld end %lld %s %s first %d; "
                         "want step %d sign %d start %lld end %lld %s %s first %d",
                         cc->name, k, g->step, g->sign, (long long)g->start, (long long)g->end,
                         g->agent, g->customer, g->first, w->step, w->sign, (long long)w->start,
                         (long long)w->end, w->agent, w->customer, w->first);
        }
        if (strcmp(conv_holder(c), cc->holder) || conv_retained(c) != cc->retained ||
            conv_newest_ms(c) != cc->newest)
            fail_msg("%s: holder '%s' retained %zu newest %lld; want '%s' %zu %lld", cc->name,
                     conv_holder(c), conv_retained(c), (long long)conv_newest_ms(c), cc->holder,
                     cc->retained, (long long)cc->newest);
        free(rc.r);
        conv_destroy(c);
    }
}

static void test_empty(void **state)
{
    conv_destroy(NULL);
    struct conv *c = conv_new();
    assert_string_equal(conv_holder(c), "");
    assert_int_equal(conv_newest_ms(c), INT64_MIN);
    assert_int_equal(conv_retained(c), 0);
    conv_prune(c, T(10, 0, 0));
    assert_string_equal(conv_holder(c), "");
    assert_int_equal(conv_retained(c), 0);
    /* A NULL callback is allowed: the state still moves. */
    conv_add(c,
             &(struct conv_msg){
                 .kind = CONV_IN, .ts_ms = T(11, 0, 0), .seq = 1, .agent = "x1", .customer = "u1"},
             NULL, NULL);
    assert_string_equal(conv_holder(c), "x1");
    assert_int_equal(conv_newest_ms(c), T(11, 0, 0));
    struct recorder rc = {0};
    conv_add(c,
             &(struct conv_msg){
                 .kind = CONV_OUT, .ts_ms = T(11, 0, 5), .seq = 2, .agent = "x1", .customer = "u1"},
             record, &rc);
    assert_int_equal(rc.n, 2);
    assert_int_equal(rc.r[0].sign, -1);
    assert_int_equal(rc.r[1].end, T(11, 0, 5));
    free(rc.r);
    conv_destroy(c);
}

/* ---- random timelines and the naive reference ---------------------------------------- */

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static unsigned rnd(uint64_t *s, unsigned n)
{
    return (unsigned)(rng_next(s) % n);
}

struct rop {
    enum conv_kind kind;
    int64_t ts;
    const char *agent, *to, *customer;
};

static const char *const agents[] = {"x1", "x2", "x3", "x4"};
static const char *const customers[] = {"u1", "u1", "u1", "u2"};

/* Time creeps forward in whole seconds (so equal ts are common); a share of the
 * messages are stamped up to `jitter_s` seconds in the past. */
static struct rop *random_ops(uint64_t seed, size_t n, int jitter_s)
{
    struct rop *ops = xcalloc(n, sizeof(*ops));
    uint64_t s = seed;
    int64_t t = T(8, 0, 0);
    for (size_t k = 0; k < n; k++) {
        t += rnd(&s, 4) * 1000;
        unsigned r = rnd(&s, 100);
        ops[k] = (struct rop){
            .kind = r < 45   ? CONV_IN
                    : r < 87 ? CONV_OUT
                             : CONV_TRANSFER,
            .ts = jitter_s && rnd(&s, 10) < 3 ? t - (int64_t)rnd(&s, (unsigned)jitter_s + 1) * 1000
                                              : t,
            .agent = agents[rnd(&s, 4)],
            .to = agents[rnd(&s, 4)],
            .customer = customers[rnd(&s, 4)],
        };
    }
    return ops;
}

struct nmsg {
    enum conv_kind kind;
    int64_t key, ts;
    uint64_t seq;
    const char *agent, *to, *customer;
};

struct nwait {
    int64_t start, end;
    char agent[8], customer[8];
    bool first;
    long count; /* in the reported multiset */
};

static int nwait_cmp(const void *pa, const void *pb)
{
    const struct nwait *a = pa, *b = pb;
    if (a->start != b->start)
        return a->start < b->start ? -1 : 1;
    if (a->end != b->end)
        return a->end < b->end ? -1 : 1;
    int d = strcmp(a->agent, b->agent);
    if (d)
        return d;
    d = strcmp(a->customer, b->customer);
    if (d)
        return d;
    return (int)a->first - (int)b->first;
}

static void nwait_set(struct nwait *w, int64_t start, int64_t end, const char *agent,
                      const char *customer, bool first)
{
    *w = (struct nwait){.start = start, .end = end, .first = first};
    snprintf(w->agent, sizeof(w->agent), "%s", agent);
    snprintf(w->customer, sizeof(w->customer), "%s", customer);
}

/* The definition, read literally over the whole timeline sorted by (key, seq).
 * Returns the number of waits written to out; *holder gets the holder. */
static size_t naive_derive(const struct nmsg *m, size_t n, struct nwait *out, const char **holder)
{
    size_t nw = 0;
    bool open = false, first = false, had_first = false;
    int64_t start = 0;
    const char *customer = "";
    *holder = "";
    for (size_t k = 0; k < n; k++) {
        if (m[k].kind == CONV_IN && !open) {
            open = true;
            first = !had_first;
            had_first = true;
            start = m[k].ts;
            customer = m[k].customer;
        } else if (m[k].kind == CONV_OUT && open) {
            nwait_set(&out[nw++], start, m[k].ts > start ? m[k].ts : start, m[k].agent, customer,
                      first);
            open = false;
        }
        *holder = m[k].kind == CONV_TRANSFER ? m[k].to : m[k].agent;
    }
    if (open)
        nwait_set(&out[nw++], start, -1, *holder, customer, first);
    return nw;
}

struct tally {
    struct nwait *w; /* the reported multiset, counts may sit at 0 */
    size_t n;
    bool asserted; /* within one conv_add: an assertion was seen */
    int bad;
};

static void tally_cb(void *ud, int sign, const struct conv_wait *cw)
{
    struct tally *t = ud;
    struct nwait w;
    nwait_set(&w, cw->start_ms, cw->end_ms, cw->agent, cw->customer, cw->first);
    if (sign > 0)
        t->asserted = true;
    else if (t->asserted)
        t->bad++; /* a retraction after an assertion of the same call */
    for (size_t k = 0; k < t->n; k++) {
        if (nwait_cmp(&t->w[k], &w) == 0) {
            if (sign < 0 && t->w[k].count <= 0)
                t->bad++;
            t->w[k].count += sign;
            return;
        }
    }
    if (sign < 0) {
        t->bad++; /* retracts what was never asserted */
        return;
    }
    w.count = 1;
    t->w[t->n++] = w;
}

struct scenario {
    uint64_t seed;
    size_t n;
    int jitter_s;
    int64_t lateness_ms; /* < 0: never prune */
};

static void run_invariant(const struct scenario *sc)
{
    struct rop *ops = random_ops(sc->seed, sc->n, sc->jitter_s);
    struct nmsg *tl = xcalloc(sc->n, sizeof(*tl));
    struct nwait *derived = xcalloc(sc->n + 1, sizeof(*derived));
    struct nwait *reported = xcalloc(sc->n + 1, sizeof(*reported));
    struct tally t = {.w = xcalloc(2 * sc->n + 2, sizeof(*t.w))};
    struct conv *c = conv_new();
    int64_t floor = INT64_MIN, newest = INT64_MIN;
    size_t pruned_waits = 0;

    for (size_t k = 0; k < sc->n; k++) {
        const struct rop *o = &ops[k];
        struct nmsg nm = {
            .kind = o->kind,
            .ts = o->ts,
            .key = o->ts < floor ? floor - 1 : o->ts,
            .seq = 1000 + k,
            .agent = o->agent,
            .to = o->to,
            .customer = o->customer,
        };
        size_t pos = k;
        while (pos > 0 && tl[pos - 1].key > nm.key)
            pos--;
        memmove(&tl[pos + 1], &tl[pos], (k - pos) * sizeof(*tl));
        tl[pos] = nm;
        if (o->ts > newest)
            newest = o->ts;

        t.asserted = false;
        conv_add(c,
                 &(struct conv_msg){.kind = o->kind,
                                    .ts_ms = o->ts,
                                    .seq = nm.seq,
                                    .agent = o->agent,
                                    .to_agent = o->to,
                                    .customer = o->customer},
                 tally_cb, &t);
        if (sc->lateness_ms >= 0) {
            int64_t h = newest - sc->lateness_ms;
            conv_prune(c, h);
            if (h > floor)
                floor = h;
            size_t live = 0;
            for (size_t q = 0; q <= k; q++)
                live += tl[q].key >= floor;
            assert_int_equal(conv_retained(c), live);
        }
        assert_int_equal(t.bad, 0);

        const char *holder;
        size_t nd = naive_derive(tl, k + 1, derived, &holder);
        qsort(derived, nd, sizeof(*derived), nwait_cmp);
        size_t nr = 0;
        for (size_t q = 0; q < t.n; q++) {
            assert_true(t.w[q].count >= 0);
            for (long r = 0; r < t.w[q].count; r++) {
                assert_true(nr < nd);
                reported[nr++] = t.w[q];
            }
        }
        assert_int_equal(nr, nd);
        qsort(reported, nr, sizeof(*reported), nwait_cmp);
        for (size_t q = 0; q < nd; q++)
            if (nwait_cmp(&reported[q], &derived[q]) != 0)
                fail_msg("seed %llu after message %zu: wait %zu differs: reported %lld..%lld %s "
                         "%s %d, derived %lld..%lld %s %s %d",
                         (unsigned long long)sc->seed, k, q, (long long)reported[q].start,
                         (long long)reported[q].end, reported[q].agent, reported[q].customer,
                         reported[q].first, (long long)derived[q].start, (long long)derived[q].end,
                         derived[q].agent, derived[q].customer, derived[q].first);
        assert_string_equal(conv_holder(c), holder);
        assert_int_equal(conv_newest_ms(c), newest);
        /* drop zero counts so the tally stays small */
        size_t keep = 0;
        for (size_t q = 0; q < t.n; q++)
            if (t.w[q].count)
                t.w[keep++] = t.w[q];
        t.n = keep;
        pruned_waits = nd;
    }
    assert_true(pruned_waits > sc->n / 10); /* the scenario did make waits */
    conv_destroy(c);
    free(t.w);
    free(reported);
    free(derived);
    free(tl);
    free(ops);
}

static void test_invariant(void **state)
{
    static const struct scenario scenarios[] = {
        {.seed = 0x9e3779b97f4a7c15ull, .n = 3000, .jitter_s = 20, .lateness_ms = -1},
        {.seed = 0x243f6a8885a308d3ull, .n = 3000, .jitter_s = 20, .lateness_ms = 60000},
        {.seed = 0x13198a2e03707344ull, .n = 3000, .jitter_s = 30, .lateness_ms = 8000},
        {.seed = 0xa4093822299f31d0ull, .n = 3000, .jitter_s = 0, .lateness_ms = 0},
        {.seed = 0x082efa98ec4e6c89ull, .n = 2000, .jitter_s = 5, .lateness_ms = 5000},
    };
    for (size_t k = 0; k < sizeof(scenarios) / sizeof(scenarios[0]); k++)
        run_invariant(&scenarios[k]);
}

/* ---- the record format ------------------------------------------------------------- */

static void add_op(struct conv *c, const struct rop *o, uint64_t seq, struct recorder *rc)
{
    conv_add(c,
             &(struct conv_msg){.kind = o->kind,
                                .ts_ms = o->ts,
                                .seq = seq,
                                .agent = o->agent,
                                .to_agent = o->to,
                                .customer = o->customer},
             record, rc);
}

static void assert_same_records(const struct recorder *a, const struct recorder *b)
{
    assert_int_equal(a->n, b->n);
    for (size_t k = 0; k < a->n; k++) {
        assert_int_equal(a->r[k].sign, b->r[k].sign);
        assert_int_equal(a->r[k].start, b->r[k].start);
        assert_int_equal(a->r[k].end, b->r[k].end);
        assert_string_equal(a->r[k].agent, b->r[k].agent);
        assert_string_equal(a->r[k].customer, b->r[k].customer);
        assert_int_equal(a->r[k].first, b->r[k].first);
    }
}

static void test_round_trip(void **state)
{
    enum { N = 1200 };
    struct rop *ops = random_ops(7, N, 25);
    static const size_t cuts[] = {0, 1, 2, 17, 300, 999, N};
    for (size_t ci = 0; ci < sizeof(cuts) / sizeof(cuts[0]); ci++) {
        struct conv *a = conv_new();
        struct recorder ra = {0}, rb = {0};
        int64_t newest = INT64_MIN;
        for (size_t k = 0; k < cuts[ci]; k++) {
            add_op(a, &ops[k], 10 + k, &ra);
            newest = ops[k].ts > newest ? ops[k].ts : newest;
            conv_prune(a, newest - 10000);
        }
        struct buf enc, enc2;
        buf_init(&enc);
        buf_init(&enc2);
        conv_encode(a, &enc);
        struct conv *b = conv_decode(enc.data, enc.len);
        assert_non_null(b);
        conv_encode(b, &enc2);
        assert_int_equal(enc.len, enc2.len);
        assert_memory_equal(enc.data, enc2.data, enc.len);
        assert_string_equal(conv_holder(a), conv_holder(b));
        assert_int_equal(conv_newest_ms(a), conv_newest_ms(b));
        assert_int_equal(conv_retained(a), conv_retained(b));

        ra.n = 0;
        for (size_t k = cuts[ci]; k < N; k++) {
            add_op(a, &ops[k], 10 + k, &ra);
            add_op(b, &ops[k], 10 + k, &rb);
            newest = ops[k].ts > newest ? ops[k].ts : newest;
            conv_prune(a, newest - 10000);
            conv_prune(b, newest - 10000);
            assert_string_equal(conv_holder(a), conv_holder(b));
            assert_int_equal(conv_retained(a), conv_retained(b));
        }
        assert_same_records(&ra, &rb);
        buf_reset(&enc);
        buf_reset(&enc2);
        conv_encode(a, &enc);
        conv_encode(b, &enc2);
        assert_int_equal(enc.len, enc2.len);
        assert_memory_equal(enc.data, enc2.data, enc.len);
        buf_release(&enc);
        buf_release(&enc2);
        free(ra.r);
        free(rb.r);
        conv_destroy(a);
        conv_destroy(b);
    }
    free(ops);
}

/* Whatever conv_decode accepted must be safe to use. */
static void exercise(struct conv *c)
{
    struct recorder rc = {0};
    struct rop ops[] = {
        {CONV_IN, T(10, 0, 0), "x1", NULL, "u1"}, {CONV_TRANSFER, T(10, 0, 5), "x1", "x2", "u1"},
        {CONV_OUT, INT64_MIN, "x2", NULL, "u1"},  {CONV_IN, INT64_MAX, "x2", NULL, "u1"},
        {CONV_OUT, 0, "x3", NULL, "u1"},
    };
    for (size_t k = 0; k < sizeof(ops) / sizeof(ops[0]); k++) {
        add_op(c, &ops[k], UINT64_MAX - 10 + k, &rc);
        conv_prune(c, T(9, 0, 0) + (int64_t)k * T(0, 30, 0));
        (void)conv_holder(c);
    }
    struct buf b;
    buf_init(&b);
    conv_encode(c, &b);
    struct conv *d = conv_decode(b.data, b.len);
    assert_non_null(d);
    conv_destroy(d);
    buf_release(&b);
    free(rc.r);
    conv_destroy(c);
}

/* A small valid record, then the same with one field broken. */
enum field {
    F_NONE,
    F_VERSION,
    F_POOLIDX,
    F_KIND,
    F_TO_ON_IN,
    F_SEQ,
    F_POOLN,
    F_TRAILING,
    F_HOLDER,
    F_FLAGS,
    F_NUL
};

static void build_record(struct buf *b, enum field bad)
{
    buf_add_u64(b, bad == F_VERSION ? 2 : 1);
    buf_add_i64(b, 1000);                    /* newest */
    buf_add_i64(b, INT64_MIN);               /* floor */
    buf_add_u64(b, 1);                       /* have_seq */
    buf_add_u64(b, 10);                      /* max_seq */
    buf_add_u64(b, 0);                       /* had_first */
    buf_add_u64(b, bad == F_HOLDER ? 3 : 1); /* holder + 1 */
    buf_add_u64(b, bad == F_POOLN ? 1000 : 2);
    buf_add_str(b, bad == F_NUL ? "x\0" : "x1", 2);
    buf_add_str(b, "u1", 2);
    buf_add_u64(b, 1);                     /* one message */
    buf_add_u64(b, bad == F_KIND ? 3 : 0); /* in */
    buf_add_i64(b, 1000);                  /* key */
    buf_add_u64(b, bad == F_SEQ ? 11 : 5); /* seq */
    buf_add_u64(b, 0);                     /* key - ts */
    buf_add_u64(b, bad == F_POOLIDX ? 2 : 0);
    buf_add_u64(b, bad == F_TO_ON_IN ? 1 : 0);
    buf_add_u64(b, 1);
    buf_add_u64(b, 1);                      /* one wait */
    buf_add_u64(b, bad == F_FLAGS ? 4 : 3); /* open, first */
    buf_add_i64(b, 1000);
    buf_add_u64(b, 0);
    buf_add_u64(b, 5);
    buf_add_u64(b, 0);
    buf_add_u64(b, 1);
    if (bad == F_TRAILING)
        buf_addc(b, 0);
}

static void test_decode_fields(void **state)
{
    static const struct {
        enum field bad;
        bool ok;
    } rows[] = {
        {F_NONE, true},      {F_VERSION, false}, {F_POOLIDX, false}, {F_KIND, false},
        {F_TO_ON_IN, false}, {F_SEQ, false},     {F_POOLN, false},   {F_TRAILING, false},
        {F_HOLDER, false},   {F_FLAGS, false},   {F_NUL, false},
    };
    for (size_t k = 0; k < sizeof(rows) / sizeof(rows[0]); k++) {
        struct buf b;
        buf_init(&b);
        build_record(&b, rows[k].bad);
        struct conv *c = conv_decode(b.data, b.len);
        if (!rows[k].ok) {
            if (c)
                fail_msg("row %zu decoded", k);
            buf_release(&b);
            continue;
        }
        assert_non_null(c);
        assert_string_equal(conv_holder(c), "x1");
        assert_int_equal(conv_retained(c), 1);
        assert_int_equal(conv_newest_ms(c), 1000);
        struct recorder rc = {0};
        conv_add(c,
                 &(struct conv_msg){
                     .kind = CONV_OUT, .ts_ms = 4000, .seq = 11, .agent = "x2", .customer = "u1"},
                 record, &rc);
        assert_int_equal(rc.n, 2);
        assert_int_equal(rc.r[0].sign, -1);
        assert_string_equal(rc.r[0].agent, "x1");
        assert_int_equal(rc.r[0].end, -1);
        assert_true(rc.r[0].first);
        assert_int_equal(rc.r[1].sign, +1);
        assert_int_equal(rc.r[1].start, 1000);
        assert_int_equal(rc.r[1].end, 4000);
        assert_string_equal(rc.r[1].agent, "x2");
        free(rc.r);
        conv_destroy(c);
        buf_release(&b);
    }
}

static void test_decode_garbage(void **state)
{
    assert_null(conv_decode("", 0));
    assert_null(conv_decode("\x01", 1));

    /* a real record with history, open wait and pruned base */
    struct conv *src = conv_new();
    struct rop *ops = random_ops(99, 200, 20);
    struct recorder rc = {0};
    int64_t newest = INT64_MIN;
    for (size_t k = 0; k < 200; k++) {
        add_op(src, &ops[k], 1 + k, &rc);
        newest = ops[k].ts > newest ? ops[k].ts : newest;
        conv_prune(src, newest - 30000);
    }
    struct buf b;
    buf_init(&b);
    conv_encode(src, &b);
    assert_true(conv_retained(src) > 3);

    for (size_t n = 0; n < b.len; n++) /* every truncation */
        assert_null(conv_decode(b.data, n));

    unsigned char *copy = xmalloc(b.len);
    size_t accepted = 0;
    for (size_t k = 0; k < b.len; k++) { /* every single-bit flip: NULL or usable */
        for (int bit = 0; bit < 8; bit++) {
            memcpy(copy, b.data, b.len);
            copy[k] ^= (unsigned char)(1u << bit);
            struct conv *c = conv_decode(copy, b.len);
            if (c) {
                accepted++;
                exercise(c);
            }
        }
    }
    free(copy);
    assert_true(accepted > 0); /* e.g. flips inside strings and timestamps */

    uint64_t s = 12345;
    unsigned char junk[256];
    for (int round = 0; round < 20000; round++) { /* random bytes after a valid version */
        size_t n = 1 + rnd(&s, sizeof(junk) - 1);
        for (size_t k = 0; k < n; k++)
            junk[k] = (unsigned char)rnd(&s, 4) == 0 ? 0 : (unsigned char)rng_next(&s);
        junk[0] = 1;
        struct conv *c = conv_decode(junk, n);
        if (c)
            exercise(c);
    }
    buf_release(&b);
    free(rc.r);
    free(ops);
    conv_destroy(src);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cases),         cmocka_unit_test(test_empty),
        cmocka_unit_test(test_invariant),     cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_decode_fields), cmocka_unit_test(test_decode_garbage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
