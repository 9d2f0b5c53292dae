/* Unit tests for aggregator/agg, the pure aggregation engine: events (decoded from JSON
 * with decode_event) go through agg_event and the resulting delta is inspected op by op
 * against metrics.md — inquiries, waits, transfers, late periods, order attribution and
 * held follow-ups, orphans, targets, reviews — and partition state survives a
 * dirty → load round trip with identical behaviour. No Redis. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/agg.h"
#include "aggregator/delta.h"
#include "aggregator/keys.h"
#include "aggregator/period.h"
#include "common/buf.h"
#include "consumers/decode.h"

#define AG1 "csm:{a:demo:x1}"
#define AG2 "csm:{a:demo:x2}"
#define TEAM "csm:{t:demo}"
#define UNATT "csm:{u:demo}"
#define REG "csm:{r}"
#define CONTACT_C1 "csm:{c:26}" /* keys_contact bucket of "demo:c1" */

/* Asia/Shanghai (+08:00) instants */
#define AUG1 INT64_C(1785513600000)  /* 2026-08-01T00:00:00+08:00, month start */
#define AUG10 INT64_C(1786291200000) /* 2026-08-10T00:00:00+08:00, day start */
#define AUG11 INT64_C(1786377600000)
#define SEP1 INT64_C(1788192000000)
#define H(h) ((int64_t)(h)*3600000)
#define MIN(m) ((int64_t)(m)*60000)
#define SEC(s) ((int64_t)(s)*1000)

#define WINDOW H(72)
#define LATENESS MIN(5)
#define ORPHAN H(48)

static struct agg_conf conf_month;     /* month only: small exact deltas */
static struct agg_conf conf_day_month; /* day + month, day accepts 1 h, month 1 day */

static int setup(void **state)
{
    (void)state;
    char err[128];
    if (period_tz_set("Asia/Shanghai", err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    conf_month = (struct agg_conf){
        .prefix = "csm:",
        .lateness_ms = LATENESS,
        .attribution_window_ms = WINDOW,
        .orphan_ms = ORPHAN,
    };
    conf_month.kinds[PERIOD_MONTH] = true;
    conf_month.accept_ms[PERIOD_MONTH] = H(24);
    conf_day_month = conf_month;
    conf_day_month.kinds[PERIOD_DAY] = true;
    conf_day_month.accept_ms[PERIOD_DAY] = H(1);
    return 0;
}

/* ---- helpers ---- */

struct fx {
    struct agg_ctx c;
    struct agg_part *p;
    int64_t offset;
    struct agg_result res;
};

static void fx_init(struct fx *f, const struct agg_conf *conf, enum event_topic t, int64_t wm)
{
    static const char *names[] = {"cs.chat", "shop.orders", "cs.reviews"};
    *f = (struct fx){.c = {.conf = conf, .wm_ms = wm, .now_ms = SEP1 + H(24 * 30)}};
    f->c.d = delta_new();
    f->p = agg_part_new(t, names[t], 0);
}

static void fx_release(struct fx *f)
{
    delta_destroy(f->c.d);
    agg_part_destroy(f->p);
}

/* Decodes json (a printf format) for topic t and runs it through agg_event at the next
 * offset; the raw bytes are the JSON text. */
__attribute__((format(printf, 3, 4))) static void fx_ev(struct fx *f, enum event_topic t,
                                                        const char *fmt, ...)
{
    char json[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(json, sizeof(json), fmt, ap);
    va_end(ap);
    struct event ev;
    char detail[256] = "";
    struct decode_opts o = {.now_ms = SEP1 + H(24 * 365), .max_future_ms = H(24)};
    enum dl_reason r = decode_event(t, json, strlen(json), &o, &ev, detail, sizeof(detail));
    if (r != DL_NONE)
        fail_msg("cannot decode %s: %s %s", json, dl_reason_name(r), detail);
    agg_event(&f->c, f->p, &ev, f->offset++, json, strlen(json), &f->res);
    event_release(&ev);
}

static void msg(struct fx *f, const char *conv, const char *agent, const char *cust,
                const char *dir, int64_t ts)
{
    fx_ev(f, TOPIC_CHAT,
          "{\"event_id\":\"m%" PRId64 "\",\"type\":\"message\",\"ts\":%" PRId64
          ",\"shop_id\":\"demo\",\"conversation_id\":\"%s\",\"agent_id\":\"%s\","
          "\"customer_id\":\"%s\",\"direction\":\"%s\"}",
          f->offset, ts, conv, agent, cust, dir);
}

static void transfer(struct fx *f, const char *conv, const char *from, const char *to,
                     const char *cust, int64_t ts)
{
    fx_ev(f, TOPIC_CHAT,
          "{\"event_id\":\"t%" PRId64 "\",\"type\":\"transfer\",\"ts\":%" PRId64
          ",\"shop_id\":\"demo\",\"conversation_id\":\"%s\",\"agent_id\":\"%s\","
          "\"to_agent_id\":\"%s\",\"customer_id\":\"%s\"}",
          f->offset, ts, conv, from, to, cust);
}

/* The ops of the group `tag`, keys shown as their suffix: "S :2026-08:inq c1 ;C ...;". */
static char *ops_of(struct delta *d, const char *tag)
{
    struct buf out;
    buf_init(&out);
    buf_adds(&out, "");
    size_t tl = strlen(tag);
    for (size_t i = 0; i < delta_group_count(d); i++) {
        struct delta_group g;
        delta_group_get(d, i, &g);
        if (strcmp(g.tag, tag) != 0)
            continue;
        for (size_t a = 0; a + 3 < g.nargs; a += 4) {
            size_t k = (size_t)strtoul(g.args[a + 1], NULL, 10);
            assert_true(k >= 1 && k <= g.nkeys);
            const char *key = g.keys[k - 1];
            assert_memory_equal(key, tag, tl);
            buf_printf(&out, "%s %s %s %s;", g.args[a], key + tl, g.args[a + 2], g.args[a + 3]);
        }
    }
    return out.data;
}

static void assert_ops(struct delta *d, const char *tag, const char *want)
{
    char *got = ops_of(d, tag);
    if (strcmp(got, want) != 0)
        fail_msg("ops of %s:\n got  %s\n want %s", tag, got, want);
    free(got);
}

/* The tags of the delta in group order, "|"-separated. */
static void assert_tags(struct delta *d, const char *want)
{
    struct buf out;
    buf_init(&out);
    buf_adds(&out, "");
    for (size_t i = 0; i < delta_group_count(d); i++) {
        struct delta_group g;
        delta_group_get(d, i, &g);
        buf_printf(&out, "%s%s", i ? "|" : "", g.tag);
    }
    if (strcmp(out.data, want) != 0)
        fail_msg("tags:\n got  %s\n want %s", out.data, want);
    buf_release(&out);
}

/* The summed value of counter `field` (C or M) on tag+suffix; 0 when absent. */
static int64_t ctr(struct delta *d, const char *tag, const char *suffix, const char *field)
{
    int64_t v = 0;
    char key[256];
    snprintf(key, sizeof(key), "%s%s", tag, suffix);
    for (size_t i = 0; i < delta_group_count(d); i++) {
        struct delta_group g;
        delta_group_get(d, i, &g);
        for (size_t a = 0; a + 3 < g.nargs; a += 4) {
            if (g.args[a][0] != 'C' && g.args[a][0] != 'M')
                continue;
            size_t k = (size_t)strtoul(g.args[a + 1], NULL, 10);
            if (strcmp(g.keys[k - 1], key) == 0 && strcmp(g.args[a + 2], field) == 0)
                v += strtoll(g.args[a + 3], NULL, 10);
        }
    }
    return v;
}

/* ---- chat ---- */

static void test_in_message(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, &conf_month, TOPIC_CHAT, AUG10);
    f.offset = 5;
    msg(&f, "cv1", "x1", "c1", "in", AUG10 + H(10));
    assert_false(f.res.late);
    assert_string_equal(f.res.detail, "");
    assert_tags(f.c.d, AG1 "|" TEAM "|" REG "|" CONTACT_C1);
    /* inquiry of x1 and the team; the open wait is unanswered for now */
    assert_ops(f.c.d, AG1,
               "Z :periods 1785513600000 2026-08;S :2026-08:inq c1 ;"
               "Z :periods 1785513600000 2026-08;C :2026-08:c unans 1;");
    assert_ops(f.c.d, TEAM,
               "Z :periods 1785513600000 2026-08;S :agents x1 ;S :2026-08:inq c1 ;"
               "Z :periods 1785513600000 2026-08;C :2026-08:c unans 1;");
    assert_ops(f.c.d, REG, "S :shops demo ;");
    /* the contact for attribution: ts:offset:agent; trimmed below
     * min(ts, wm - lateness) - attribution window */
    char want[256];
    snprintf(want, sizeof(want),
             "Z :demo:c1 %" PRId64 " %" PRId64 ":00000000000000000005:x1;T :demo:c1 %" PRId64 " ;",
             AUG10 + H(10), AUG10 + H(10), AUG10 - LATENESS - WINDOW);
    assert_ops(f.c.d, CONTACT_C1, want);
    assert_int_equal(agg_part_cached(f.p), 1);
    fx_release(&f);
}

/* Chat read far ahead of the watermark (orders lag): the contact trim must not drop
 * contacts an order at the watermark still needs. */
static void test_contact_trim_follows_watermark(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, &conf_month, TOPIC_CHAT, AUG10);
    msg(&f, "cv1", "x1", "c1", "out", AUG10 + H(24 * 5)); /* five days ahead */
    char *ops = ops_of(f.c.d, CONTACT_C1);
    char want[64];
    snprintf(want, sizeof(want), "T :demo:c1 %" PRId64 " ;", AUG10 - LATENESS - WINDOW);
    assert_non_null(strstr(ops, want));
    free(ops);
    /* an old message (ts behind the watermark) trims from its own ts */
    delta_reset(f.c.d);
    f.c.wm_ms = AUG11;
    msg(&f, "cv2", "x1", "c1", "out", AUG10);
    ops = ops_of(f.c.d, CONTACT_C1);
    snprintf(want, sizeof(want), "T :demo:c1 %" PRId64 " ;", AUG10 - WINDOW);
    assert_non_null(strstr(ops, want));
    free(ops);
    /* a watermark of INT64_MIN (nothing known) trims nothing and does not overflow */
    delta_reset(f.c.d);
    f.c.wm_ms = INT64_MIN;
    msg(&f, "cv3", "x1", "c1", "out", AUG10);
    ops = ops_of(f.c.d, CONTACT_C1);
    assert_null(strstr(ops, "T "));
    free(ops);
    fx_release(&f);
}

static void test_out_message(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, &conf_month, TOPIC_CHAT, AUG10);
    msg(&f, "cv1", "x1", "c1", "out", AUG10 + H(10));
    /* an `out` alone: no inquiry, no wait, only the contact */
    assert_tags(f.c.d, CONTACT_C1);
    fx_release(&f);
}

static void test_wait_answered(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, &conf_month, TOPIC_CHAT, AUG10);
    msg(&f, "cv1", "x1", "c1", "in", AUG10 + H(10));
    delta_reset(f.c.d);
    msg(&f, "cv1", "x1", "c1", "out", AUG10 + H(10) + SEC(45));
    assert_false(f.res.late);
    assert_ops(f.c.d, AG1,
               "Z :periods 1785513600000 2026-08;Z :periods 1785513600000 2026-08;"
               "Z :2026-08:w 45000 1786327200000:cv1;"
               "C :2026-08:c unans -1;C :2026-08:c wait_n 1;C :2026-08:c wait_ms 45000;"
               "C :2026-08:c first_n 1;C :2026-08:c first_ms 45000;M :2026-08:rep c1 1;");
    assert_int_equal(ctr(f.c.d, TEAM, ":2026-08:c", "wait_n"), 1);
    assert_int_equal(ctr(f.c.d, TEAM, ":2026-08:c", "wait_ms"), 45000);
    assert_int_equal(ctr(f.c.d, TEAM, ":2026-08:rep", "c1"), 1);
    assert_int_equal(ctr(f.c.d, TEAM, ":2026-08:c", "unans"), -1);
    /* an `out` is not an inquiry */
    char *ops = ops_of(f.c.d, AG1);
    assert_null(strstr(ops, ":inq"));
    free(ops);

    /* a second wait: not first */
    delta_reset(f.c.d);
    msg(&f, "cv1", "x1", "c1", "in", AUG10 + H(11));
    msg(&f, "cv1", "x1", "c1", "in", AUG10 + H(11) + SEC(10)); /* same wait */
    msg(&f, "cv1", "x1", "c1", "out", AUG10 + H(11) + SEC(30));
    assert_int_equal(ctr(f.c.d, AG1, ":2026-08:c", "wait_n"), 1);
    assert_int_equal(ctr(f.c.d, AG1, ":2026-08:c", "wait_ms"), 30000);
    assert_int_equal(ctr(f.c.d, AG1, ":2026-08:c", "first_n"), 0);
    assert_int_equal(ctr(f.c.d, AG1, ":2026-08:c", "unans"), 0);
    assert_int_equal(ctr(f.c.d, AG1, ":2026-08:rep", "c1"), 1);
    fx_release(&f);
}

/* Another agent answers: the wait belongs to the agent who ends it; inquiries count for
 * the message's own agent_id. */
static void test_wait_answered_by_other(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, &conf_month, TOPIC_CHAT, AUG10);
    msg(&f, "cv1", "x1", "c1", "in", AUG10 + H(10));
    msg(&f, "cv1", "x2", "c1", "out", AUG10 + H(10) + SEC(20));
    assert_int_equal(ctr(f.c.d, AG1, ":2026-08:c", "unans"), 0);
    assert_int_equal(ctr(f.c.d, AG1, ":2026-08:c", "wait_n"), 0);
    assert_int_equal(ctr(f.c.d, AG2, ":2026-08:c", "wait_n"), 1);
    assert_int_equal(ctr(f.c.d, AG2, ":2026-08:c", "wait_ms"), 20000);
    assert_int_equal(ctr(f.c.d, AG2, ":2026-08:rep", "c1"), 1);
    char *ops = ops_of(f.c.d, AG1);
    assert_non_null(strstr(ops, "S :2026-08:inq c1 ;"));
    free(ops);
    ops = ops_of(f.c.d, AG2);
    assert_null(strstr(ops, ":inq"));
    free(ops);
    fx_release(&f);
}

static void test_transfer(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, &conf_month, TOPIC_CHAT, AUG10);
    msg(&f, "cv1", "x1", "c1", "in", AUG10 + H(10));
    delta_reset(f.c.d);
    transfer(&f, "cv1", "x1", "x2", "c1", AUG10 + H(10) + MIN(1));
    /* the open wait moves from x1 to x2; c1 becomes an inquiry of x2 too */
    assert_int_equal(ctr(f.c.d, AG1, ":2026-08:c", "unans"), -1);
    assert_int_equal(ctr(f.c.d, AG2, ":2026-08:c", "unans"), 1);
    assert_int_equal(ctr(f.c.d, TEAM, ":2026-08:c", "unans"), 0);
    char *ops = ops_of(f.c.d, AG2);
    assert_non_null(strstr(ops, "S :2026-08:inq c1 ;"));
    free(ops);
    ops = ops_of(f.c.d, TEAM);
    assert_non_null(strstr(ops, "S :agents x2 ;"));
    free(ops);
    /* transfers are not messages: no contact */
    ops = ops_of(f.c.d, CONTACT_C1);
    assert_string_equal(ops, "");
    free(ops);

    /* x2 answers: the whole wait (from the `in`) is x2's */
    delta_reset(f.c.d);
    msg(&f, "cv1", "x2", "c1", "out", AUG10 + H(10) + SEC(90));
    assert_int_equal(ctr(f.c.d, AG2, ":2026-08:c", "unans"), -1);
    assert_int_equal(ctr(f.c.d, AG2, ":2026-08:c", "wait_n"), 1);
    assert_int_equal(ctr(f.c.d, AG2, ":2026-08:c", "wait_ms"), 90000);
    assert_int_equal(ctr(f.c.d, AG2, ":2026-08:c", "first_n"), 1);
    assert_int_equal(ctr(f.c.d, AG1, ":2026-08:c", "wait_n"), 0);
    fx_release(&f);
}

/* Waits follow ts order: an `out` that arrives before the earlier-stamped `in`. */
static void test_reordered(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, &conf_month, TOPIC_CHAT, AUG10);
    msg(&f, "cv1", "x1", "c1", "out", AUG10 + H(10) + SEC(60));
    msg(&f, "cv1", "x1", "c1", "in", AUG10 + H(10));
    assert_int_equal(ctr(f.c.d, AG1, ":2026-08:c", "wait_n"), 1);
    assert_int_equal(ctr(f.c.d, AG1, ":2026-08:c", "wait_ms"), 60000);
    assert_int_equal(ctr(f.c.d, AG1, ":2026-08:c", "unans"), 0);
    fx_release(&f);
}

static void test_complaint(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, &conf_month, TOPIC_CHAT, AUG10);
    fx_ev(&f, TOPIC_CHAT,
          "{\"event_id\":\"k1\",\"type\":\"complaint\",\"ts\":%" PRId64
          ",\"shop_id\":\"demo\",\"agent_id\":\"x1\",\"customer_id\":\"c1\"}",
          AUG10);
    assert_tags(f.c.d, AG1 "|" TEAM "|" REG);
    assert_ops(f.c.d, AG1, "Z :periods 1785513600000 2026-08;C :2026-08:c complaints 1;");
    assert_int_equal(ctr(f.c.d, TEAM, ":2026-08:c", "complaints"), 1);
    assert_int_equal(agg_part_cached(f.p), 0); /* no conversation state */
    fx_release(&f);
}

/* Periods that no longer accept are skipped and named; the others still get the event. */
static void test_late_periods(void **state)
{
    (void)state;
    static const struct {
        int64_t wm;
        bool late, day, month;
        const char *detail;
    } cases[] = {
        {.wm = AUG10, .day = true, .month = true, .detail = ""},
        {.wm = AUG11 + H(1) - 1, .day = true, .month = true, .detail = ""},
        /* day 2026-08-10 ends AUG11 and accepts for 1 h more */
        {.wm = AUG11 + H(1),
         .late = true,
         .month = true,
         .detail = "missed closed periods 2026-08-10"},
        {.wm = SEP1 + H(24) - 1,
         .late = true,
         .month = true,
         .detail = "missed closed periods 2026-08-10"},
        {.wm = SEP1 + H(24), .late = true, .detail = "missed closed periods 2026-08-10, 2026-08"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct fx f;
        fx_init(&f, &conf_day_month, TOPIC_CHAT, cases[i].wm);
        msg(&f, "cv1", "x1", "c1", "in", AUG10 + H(10));
        assert_int_equal(f.res.late, cases[i].late);
        assert_string_equal(f.res.detail, cases[i].detail);
        char *ops = ops_of(f.c.d, AG1);
        assert_int_equal(strstr(ops, "S :2026-08-10:inq c1 ;") != NULL, cases[i].day);
        assert_int_equal(strstr(ops, "S :2026-08:inq c1 ;") != NULL, cases[i].month);
        assert_int_equal(ctr(f.c.d, AG1, ":2026-08-10:c", "unans"), cases[i].day);
        assert_int_equal(ctr(f.c.d, AG1, ":2026-08:c", "unans"), cases[i].month);
        free(ops);
        fx_release(&f);
    }
}

/* A wait answered after its day closed: the closed day keeps it open (unanswered); the
 * month, still accepting, moves it to answered. */
static void test_wait_across_close(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, &conf_day_month, TOPIC_CHAT, AUG10);
    msg(&f, "cv1", "x1", "c1", "in", AUG10 + H(23));
    assert_int_equal(ctr(f.c.d, AG1, ":2026-08-10:c", "unans"), 1);
    delta_reset(f.c.d);
    f.c.wm_ms = AUG11 + H(2);
    msg(&f, "cv1", "x1", "c1", "out", AUG11 + H(2));
    assert_false(f.res.late); /* the out's own periods (08-11, 2026-08) accept */
    assert_int_equal(ctr(f.c.d, AG1, ":2026-08-10:c", "unans"), 0);
    assert_int_equal(ctr(f.c.d, AG1, ":2026-08-10:c", "wait_n"), 0);
    assert_int_equal(ctr(f.c.d, AG1, ":2026-08:c", "unans"), -1);
    assert_int_equal(ctr(f.c.d, AG1, ":2026-08:c", "wait_n"), 1);
    assert_int_equal(ctr(f.c.d, AG1, ":2026-08:c", "wait_ms"), H(3));
    /* the wait counts in the period of its start, not in 2026-08-11 */
    assert_int_equal(ctr(f.c.d, AG1, ":2026-08-11:c", "wait_n"), 0);
    fx_release(&f);
}

/* ---- orders ---- */

static void order_ev(struct fx *f, const char *type, const char *order, int64_t ts,
                     const char *extra)
{
    fx_ev(f, TOPIC_ORDERS,
          "{\"event_id\":\"o%" PRId64 "\",\"type\":\"%s\",\"ts\":%" PRId64
          ",\"shop_id\":\"demo\",\"order_id\":\"%s\"%s}",
          f->offset, type, ts, order, extra);
}

struct dead {
    int n, orphans;
    char detail[8][256];
    int64_t offset[8];
    char raw[8][512];
};

static void dead_cb(void *ud, int orphan, const char *detail, int64_t offset, const void *raw,
                    size_t rawlen)
{
    struct dead *d = ud;
    assert_true(d->n < 8);
    snprintf(d->detail[d->n], sizeof(d->detail[0]), "%s", detail);
    d->offset[d->n] = offset;
    snprintf(d->raw[d->n], sizeof(d->raw[0]), "%.*s", (int)rawlen, (const char *)raw);
    d->orphans += orphan;
    d->n++;
}

static void test_order_with_agent(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, &conf_month, TOPIC_ORDERS, AUG1);
    order_ev(&f, "created", "o1", AUG10,
             ",\"customer_id\":\"c1\",\"amount\":\"59.90\",\"agent_id\":\"x1\"");
    assert_false(f.res.late);
    assert_tags(f.c.d, AG1 "|" TEAM "|" REG);
    assert_ops(f.c.d, AG1,
               "Z :periods 1785513600000 2026-08;S :2026-08:ocreated o1 ;S :2026-08:ord c1 ;"
               "C :2026-08:c order_cents 5990;");
    assert_ops(f.c.d, TEAM,
               "Z :periods 1785513600000 2026-08;S :agents x1 ;S :2026-08:ocreated o1 ;"
               "S :2026-08:ord c1 ;C :2026-08:c order_cents 5990;");
    delta_reset(f.c.d);
    /* follow-ups: the created order's agent and shop, their own ts */
    order_ev(&f, "paid", "o1", AUG10 + H(1), ",\"amount\":50");
    order_ev(&f, "refunded", "o1", AUG10 + H(2), ",\"amount\":\"10.5\"");
    order_ev(&f, "cancelled", "o1", AUG10 + H(3), "");
    order_ev(&f, "flagged", "o1", AUG10 + H(4), ",\"reason\":\"fraud\"");
    assert_ops(f.c.d, AG1,
               "Z :periods 1785513600000 2026-08;S :2026-08:opaid o1 ;S :2026-08:paid c1 ;"
               "Z :periods 1785513600000 2026-08;S :2026-08:orefunded o1 ;"
               "Z :periods 1785513600000 2026-08;S :2026-08:ocancelled o1 ;"
               "Z :periods 1785513600000 2026-08;S :2026-08:oflagged o1 ;"
               "C :2026-08:c sales_cents 5000;C :2026-08:c refund_cents 1050;");
    assert_int_equal(ctr(f.c.d, TEAM, ":2026-08:c", "sales_cents"), 5000);
    /* a paid in September counts in September */
    delta_reset(f.c.d);
    order_ev(&f, "paid", "o1", SEP1 + H(1), ",\"amount\":1");
    assert_int_equal(ctr(f.c.d, AG1, ":2026-09:c", "sales_cents"), 100);
    assert_int_equal(ctr(f.c.d, AG1, ":2026-08:c", "sales_cents"), 0);
    fx_release(&f);
}

static void test_order_created_twice(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, &conf_month, TOPIC_ORDERS, AUG1);
    order_ev(&f, "created", "o1", AUG10,
             ",\"customer_id\":\"c1\",\"amount\":\"1\",\"agent_id\":\"x1\"");
    delta_reset(f.c.d);
    order_ev(&f, "created", "o1", AUG10 + 5,
             ",\"customer_id\":\"c9\",\"amount\":\"2\",\"agent_id\":\"x2\"");
    assert_true(delta_empty(f.c.d)); /* the first one stands */
    assert_false(f.res.late);
    assert_string_equal(f.res.detail, "order 'o1' created twice");
    fx_release(&f);
}

static void test_order_pending_attribution(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, &conf_month, TOPIC_ORDERS, AUG1);
    order_ev(&f, "created", "o1", AUG10, ",\"customer_id\":\"c1\",\"amount\":\"20\"");
    assert_true(delta_empty(f.c.d)); /* nothing until attributed */
    struct agg_kv *kv;
    size_t n = agg_part_dirty(f.p, 1, &kv);
    assert_int_equal(n, 1);
    assert_string_equal(kv[0].field, "o1");
    assert_string_equal(kv[0].value, "1");
    assert_int_equal(agg_part_dirty(f.p, 0, &kv), 1);
    agg_part_clean(f.p);
    assert_int_equal(agg_part_dirty(f.p, 0, &kv), 0);
    assert_int_equal(agg_part_dirty(f.p, 1, &kv), 0);

    struct agg_due *due;
    assert_int_equal(agg_part_due(f.p, AUG10 - 1, &due), 0);
    free(due);
    assert_int_equal(agg_part_due(f.p, AUG10, &due), 1);
    assert_string_equal(due[0].order_id, "o1");
    assert_string_equal(due[0].shop, "demo");
    assert_string_equal(due[0].customer, "c1");
    assert_int_equal(due[0].ts_ms, AUG10);
    struct dead dl = {0};
    f.c.wm_ms = AUG10;
    agg_attribute(&f.c, f.p, due[0].order_id, "x1", dead_cb, &dl);
    free(due);
    assert_int_equal(dl.n, 0);
    assert_ops(f.c.d, AG1,
               "Z :periods 1785513600000 2026-08;S :2026-08:ocreated o1 ;S :2026-08:ord c1 ;"
               "C :2026-08:c order_cents 2000;");
    /* the pending index entry goes; no longer due; a second attribution does nothing */
    n = agg_part_dirty(f.p, 1, &kv);
    assert_int_equal(n, 1);
    assert_string_equal(kv[0].field, "o1");
    assert_null(kv[0].value);
    assert_int_equal(agg_part_due(f.p, SEP1, &due), 0);
    free(due);
    delta_reset(f.c.d);
    agg_attribute(&f.c, f.p, "o1", "x2", dead_cb, &dl);
    agg_attribute(&f.c, f.p, "nope", "x2", dead_cb, &dl);
    assert_true(delta_empty(f.c.d));
    /* follow-ups now write at once, to x1 */
    order_ev(&f, "paid", "o1", AUG10 + 1, ",\"amount\":\"20\"");
    assert_int_equal(ctr(f.c.d, AG1, ":2026-08:c", "sales_cents"), 2000);
    fx_release(&f);
}

static void test_order_unattributed(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, &conf_month, TOPIC_ORDERS, AUG10);
    order_ev(&f, "created", "o1", AUG10, ",\"customer_id\":\"c1\",\"amount\":\"20\"");
    struct dead dl = {0};
    agg_attribute(&f.c, f.p, "o1", NULL, dead_cb, &dl);
    /* the shop's unattributed orders: not in the team figures, but the period is
     * registered for the shop */
    assert_tags(f.c.d, UNATT "|" TEAM "|" REG);
    assert_ops(f.c.d, UNATT,
               "Z :periods 1785513600000 2026-08;S :2026-08:ocreated o1 ;S :2026-08:ord c1 ;"
               "C :2026-08:c order_cents 2000;");
    assert_ops(f.c.d, TEAM, "Z :periods 1785513600000 2026-08;");
    delta_reset(f.c.d);
    order_ev(&f, "paid", "o1", AUG10 + 1, ",\"amount\":\"20\"");
    assert_int_equal(ctr(f.c.d, UNATT, ":2026-08:c", "sales_cents"), 2000);
    assert_int_equal(ctr(f.c.d, TEAM, ":2026-08:c", "sales_cents"), 0);
    fx_release(&f);
}

/* Follow-ups before `created` are held (no writes) and applied with their own ts when
 * the order is created with an agent. */
static void test_followups_before_created(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, &conf_month, TOPIC_ORDERS, AUG1);
    order_ev(&f, "paid", "o1", SEP1 + H(1), ",\"amount\":\"20\"");
    order_ev(&f, "flagged", "o1", SEP1 + H(2), ",\"reason\":\"x\"");
    assert_true(delta_empty(f.c.d));
    assert_false(f.res.late);
    struct agg_kv *kv;
    assert_int_equal(agg_part_dirty(f.p, 1, &kv), 1); /* in the pending index */
    assert_string_equal(kv[0].value, "1");
    struct agg_due *due;
    assert_int_equal(agg_part_due(f.p, SEP1 + H(24), &due), 0); /* not due: no created */
    free(due);
    agg_part_clean(f.p);

    order_ev(&f, "created", "o1", AUG10,
             ",\"customer_id\":\"c1\",\"amount\":\"20\",\"agent_id\":\"x1\"");
    assert_int_equal(ctr(f.c.d, AG1, ":2026-08:c", "order_cents"), 2000);
    assert_int_equal(ctr(f.c.d, AG1, ":2026-09:c", "sales_cents"), 2000);
    char *ops = ops_of(f.c.d, AG1);
    assert_non_null(strstr(ops, "S :2026-09:paid c1 ;"));
    assert_non_null(strstr(ops, "S :2026-09:oflagged o1 ;"));
    free(ops);
    assert_int_equal(agg_part_dirty(f.p, 1, &kv), 1); /* leaves the pending index */
    assert_null(kv[0].value);
    fx_release(&f);
}

static void reload(struct fx *f);

/* Held follow-ups of an order pending attribution are applied at attribution, each
 * judged late against the watermark it was read at: waiting for attribution does not
 * make an event late (the watermark moves by whole batches), reading it late does. */
static void test_followups_pending_attribution(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, &conf_day_month, TOPIC_ORDERS, AUG1);
    order_ev(&f, "created", "o1", AUG10, ",\"customer_id\":\"c1\",\"amount\":\"20\"");
    order_ev(&f, "paid", "o1", AUG10 + H(1), ",\"amount\":\"20\""); /* offset 1 */
    /* read after day 2026-08-10 stopped accepting: late for that day */
    f.c.wm_ms = AUG11 + H(1);
    order_ev(&f, "cancelled", "o1", AUG10 + H(2), "");                 /* offset 2 */
    order_ev(&f, "refunded", "o1", AUG11 + H(5), ",\"amount\":\"5\""); /* offset 3 */
    assert_true(delta_empty(f.c.d));
    assert_false(f.res.late); /* held: judged at attribution */

    /* attributed when the watermark has jumped past the day's close */
    f.c.wm_ms = AUG11 + H(2);
    struct dead dl = {0};
    agg_attribute(&f.c, f.p, "o1", "x1", dead_cb, &dl);
    assert_int_equal(dl.n, 1);
    assert_int_equal(dl.orphans, 0);
    assert_string_equal(dl.detail[0], "missed closed periods 2026-08-10");
    assert_int_equal(dl.offset[0], 2);
    assert_non_null(strstr(dl.raw[0], "\"type\":\"cancelled\""));
    assert_int_equal(ctr(f.c.d, AG1, ":2026-08-10:c", "order_cents"), 2000);
    assert_int_equal(ctr(f.c.d, AG1, ":2026-08-10:c", "sales_cents"), 2000);
    assert_int_equal(ctr(f.c.d, AG1, ":2026-08:c", "order_cents"), 2000);
    assert_int_equal(ctr(f.c.d, AG1, ":2026-08:c", "sales_cents"), 2000);
    assert_int_equal(ctr(f.c.d, AG1, ":2026-08:c", "refund_cents"), 500);
    assert_int_equal(ctr(f.c.d, AG1, ":2026-08-11:c", "refund_cents"), 500);
    char *ops = ops_of(f.c.d, AG1);
    assert_non_null(strstr(ops, "S :2026-08:ocancelled o1 ;"));
    assert_null(strstr(ops, "S :2026-08-10:ocancelled o1 ;"));
    free(ops);
    fx_release(&f);

    /* a `created` read after its day closed is late at attribution; so is a follow-up
     * held for it and read as late */
    fx_init(&f, &conf_day_month, TOPIC_ORDERS, AUG11 + H(1));
    order_ev(&f, "created", "o2", AUG10, ",\"customer_id\":\"c1\",\"amount\":\"20\"");
    memset(&dl, 0, sizeof(dl));
    agg_attribute(&f.c, f.p, "o2", "x1", dead_cb, &dl);
    assert_int_equal(dl.n, 1);
    assert_int_equal(dl.offset[0], 0);
    assert_string_equal(dl.detail[0], "missed closed periods 2026-08-10");
    assert_int_equal(ctr(f.c.d, AG1, ":2026-08-10:c", "order_cents"), 0);
    assert_int_equal(ctr(f.c.d, AG1, ":2026-08:c", "order_cents"), 2000);
    fx_release(&f);

    /* the watermark a pending order was read at survives a state round trip */
    fx_init(&f, &conf_day_month, TOPIC_ORDERS, AUG1);
    order_ev(&f, "created", "o3", AUG10, ",\"customer_id\":\"c1\",\"amount\":\"20\"");
    order_ev(&f, "paid", "o3", AUG10 + 1, ",\"amount\":\"20\"");
    reload(&f);
    f.c.wm_ms = AUG11 + H(2);
    memset(&dl, 0, sizeof(dl));
    agg_attribute(&f.c, f.p, "o3", "x1", dead_cb, &dl);
    assert_int_equal(dl.n, 0);
    assert_int_equal(ctr(f.c.d, AG1, ":2026-08-10:c", "sales_cents"), 2000);
    fx_release(&f);
}

static void test_orphans(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, &conf_month, TOPIC_ORDERS, AUG1);
    int64_t t0 = SEP1 + H(24 * 30);
    f.c.now_ms = t0;
    order_ev(&f, "paid", "o1", AUG10, ",\"amount\":\"20\""); /* offset 0 */
    f.c.now_ms = t0 + H(1);
    order_ev(&f, "cancelled", "o1", AUG10 + 1, ""); /* offset 1, an hour later */
    agg_part_clean(f.p);
    struct dead dl = {0};

    f.c.now_ms = t0 + ORPHAN - 1;
    agg_part_expire(&f.c, f.p, dead_cb, &dl);
    assert_int_equal(dl.n, 0);

    /* the first waited orphan_ms: it goes; the second (an hour younger) stays */
    f.c.now_ms = t0 + ORPHAN;
    agg_part_expire(&f.c, f.p, dead_cb, &dl);
    assert_int_equal(dl.n, 1);
    assert_int_equal(dl.orphans, 1);
    assert_string_equal(dl.detail[0], "no 'created' for order 'o1' within dedup_window");
    assert_int_equal(dl.offset[0], 0);
    assert_non_null(strstr(dl.raw[0], "\"type\":\"paid\""));
    struct agg_kv *kv;
    assert_int_equal(agg_part_dirty(f.p, 1, &kv), 0); /* still pending */
    assert_int_equal(agg_part_dirty(f.p, 0, &kv), 1); /* the order record changed */
    agg_part_clean(f.p);

    f.c.now_ms = t0 + H(1) + ORPHAN;
    agg_part_expire(&f.c, f.p, dead_cb, &dl);
    assert_int_equal(dl.n, 2);
    assert_int_equal(dl.orphans, 2);
    assert_int_equal(dl.offset[1], 1);
    assert_int_equal(agg_part_dirty(f.p, 1, &kv), 1); /* forgotten: leaves the index */
    assert_null(kv[0].value);
    agg_part_clean(f.p);
    /* nothing more to expire */
    agg_part_expire(&f.c, f.p, dead_cb, &dl);
    assert_int_equal(dl.n, 2);
    assert_true(delta_empty(f.c.d));
    /* a `created` after all: applied, without the expired follow-ups */
    order_ev(&f, "created", "o1", AUG10,
             ",\"customer_id\":\"c1\",\"amount\":\"20\",\"agent_id\":\"x1\"");
    assert_int_equal(ctr(f.c.d, AG1, ":2026-08:c", "order_cents"), 2000);
    assert_int_equal(ctr(f.c.d, AG1, ":2026-08:c", "sales_cents"), 0);
    fx_release(&f);
}

/* An order pending attribution is not an orphan. */
static void test_pending_not_orphan(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, &conf_month, TOPIC_ORDERS, AUG1);
    order_ev(&f, "created", "o1", AUG10, ",\"customer_id\":\"c1\",\"amount\":\"20\"");
    order_ev(&f, "paid", "o1", AUG10, ",\"amount\":\"20\"");
    struct dead dl = {0};
    f.c.now_ms += ORPHAN * 10;
    agg_part_expire(&f.c, f.p, dead_cb, &dl);
    assert_int_equal(dl.n, 0);
    fx_release(&f);
}

/* ---- reviews, targets, absences ---- */

static void review_ev(struct fx *f, const char *agent, const char *period, const char *item,
                      const char *role, const char *score_max)
{
    fx_ev(f, TOPIC_REVIEWS,
          "{\"event_id\":\"r%" PRId64 "\",\"type\":\"review\",\"ts\":%" PRId64
          ",\"shop_id\":\"demo\",\"agent_id\":\"%s\",\"period\":\"%s\",\"item\":\"%s\","
          "\"role\":\"%s\",\"reviewer\":\"boss\",%s}",
          f->offset, SEP1 + H(24 * 6), agent, period, item, role, score_max);
}

static void target_ev(struct fx *f, const char *agent, const char *period, const char *amount)
{
    fx_ev(f, TOPIC_REVIEWS,
          "{\"event_id\":\"g%" PRId64 "\",\"type\":\"target\",\"ts\":%" PRId64
          ",\"shop_id\":\"demo\",\"agent_id\":\"%s\",\"period\":\"%s\",\"amount\":%s}",
          f->offset, AUG10, agent, period, amount);
}

static void test_reviews(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, &conf_month, TOPIC_REVIEWS, SEP1);
    review_ev(&f, "x1", "2026-08", "follow_up", "manager", "\"score\":75");
    review_ev(&f, "x1", "2026-08", "self_total", "self", "\"score\":3,\"max\":4");
    review_ev(&f, "x1", "2026-08", "execution", "indirect_manager", "\"score\":1,\"max\":3");
    assert_false(f.res.late);
    /* belongs to the labelled period (not the ts's September), score / max */
    assert_ops(f.c.d, AG1,
               "Z :periods 1785513600000 2026-08;H :2026-08:rv manager:follow_up 0.75;"
               "Z :periods 1785513600000 2026-08;H :2026-08:rv self:self_total 0.75;"
               "Z :periods 1785513600000 2026-08;"
               "H :2026-08:rv indirect_manager:execution 0.33333333333333331;");
    /* other period kinds by label */
    delta_reset(f.c.d);
    review_ev(&f, "x1", "2026-Q3", "follow_up", "manager", "\"score\":0");
    assert_ops(f.c.d, AG1, "Z :periods 1782835200000 2026-Q3;H :2026-Q3:rv manager:follow_up 0;");
    /* a label whose period no longer accepts: late, named, nothing written */
    delta_reset(f.c.d);
    f.c.wm_ms = SEP1 + H(24);
    review_ev(&f, "x1", "2026-08", "follow_up", "manager", "\"score\":75");
    assert_true(f.res.late);
    assert_string_equal(f.res.detail, "missed closed periods 2026-08");
    assert_true(delta_empty(f.c.d));
    fx_release(&f);
}

static void test_targets(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, &conf_month, TOPIC_REVIEWS, AUG1);
    target_ev(&f, "x1", "2026-08", "\"1000\"");
    assert_ops(f.c.d, AG1, "Z :periods 1785513600000 2026-08;H :2026-08:c target_cents 100000;");
    assert_ops(f.c.d, TEAM,
               "Z :periods 1785513600000 2026-08;S :agents x1 ;C :2026-08:c target_cents 100000;");
    delta_reset(f.c.d);
    /* a later target replaces the agent's; the team's sum moves by the difference */
    target_ev(&f, "x1", "2026-08", "800.5");
    assert_ops(f.c.d, AG1, "Z :periods 1785513600000 2026-08;H :2026-08:c target_cents 80050;");
    assert_int_equal(ctr(f.c.d, TEAM, ":2026-08:c", "target_cents"), -19950);
    delta_reset(f.c.d);
    target_ev(&f, "x2", "2026-08", "500");
    assert_int_equal(ctr(f.c.d, TEAM, ":2026-08:c", "target_cents"), 50000);
    /* another period is another slot */
    delta_reset(f.c.d);
    target_ev(&f, "x1", "2026-09", "7");
    assert_int_equal(ctr(f.c.d, TEAM, ":2026-09:c", "target_cents"), 700);

    /* the slots survive a state round trip: a fresh partition continues the difference */
    struct agg_kv *kv;
    size_t n = agg_part_dirty(f.p, 0, &kv);
    assert_int_equal(n, 3);
    struct agg_part *p2 = agg_part_new(TOPIC_REVIEWS, "cs.reviews", 0);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(agg_part_load(p2, kv[i].field, kv[i].value, kv[i].len), 0);
    assert_int_equal(agg_part_cached(p2), 3);
    agg_part_destroy(f.p);
    f.p = p2;
    delta_reset(f.c.d);
    target_ev(&f, "x1", "2026-08", "1000");
    assert_int_equal(ctr(f.c.d, TEAM, ":2026-08:c", "target_cents"), 19950);
    /* agg_part_missing names the slot of a target not cached */
    struct agg_part *p3 = agg_part_new(TOPIC_REVIEWS, "cs.reviews", 0);
    struct event ev;
    char detail[128];
    struct decode_opts o = {.now_ms = SEP1, .max_future_ms = H(24)};
    const char *js = "{\"event_id\":\"g\",\"type\":\"target\",\"ts\":1,\"shop_id\":\"demo\","
                     "\"agent_id\":\"x1\",\"period\":\"2026-08\",\"amount\":1}";
    assert_int_equal(decode_event(TOPIC_REVIEWS, js, strlen(js), &o, &ev, detail, sizeof(detail)),
                     DL_NONE);
    size_t nm;
    char **ids = agg_part_missing(p3, &ev, 1, &nm);
    assert_int_equal(nm, 1);
    assert_string_equal(ids[0], "t\x1f"
                                "demo\x1fx1\x1f"
                                "2026-08");
    free(ids[0]);
    free(ids);
    ids = agg_part_missing(f.p, &ev, 1, &nm); /* cached: not missing */
    assert_int_equal(nm, 0);
    free(ids);
    event_release(&ev);
    agg_part_destroy(p3);
    fx_release(&f);
}

static void test_absence(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, &conf_month, TOPIC_REVIEWS, AUG1);
    fx_ev(&f, TOPIC_REVIEWS,
          "{\"event_id\":\"abs1\",\"type\":\"absence\",\"ts\":1,\"shop_id\":\"demo\","
          "\"agent_id\":\"x1\",\"from\":\"2026-08-03\",\"to\":\"2026-08-05\"}");
    /* days since 1970-01-01: 2026-08-03 = 20668 */
    assert_ops(f.c.d, AG1, "H :abs abs1 20668 20670;");
    fx_release(&f);
}

/* ---- state round trips ---- */

static char *all_ops(struct delta *d)
{
    struct buf out;
    buf_init(&out);
    buf_adds(&out, "");
    for (size_t i = 0; i < delta_group_count(d); i++) {
        struct delta_group g;
        delta_group_get(d, i, &g);
        char *o = ops_of(d, g.tag);
        buf_printf(&out, "[%s] %s\n", g.tag, o);
        free(o);
    }
    return out.data;
}

/* Moves every dirty record of f.p into a fresh partition (as the daemon does through
 * Redis) and cleans. */
static void reload(struct fx *f)
{
    struct agg_kv *kv;
    struct agg_part *p2 =
        agg_part_new(agg_part_topic_name(f->p)[0] == 'c' ? TOPIC_CHAT : TOPIC_ORDERS,
                     agg_part_topic_name(f->p), agg_part_number(f->p));
    size_t n = agg_part_dirty(f->p, 0, &kv);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(agg_part_load(p2, kv[i].field, kv[i].value, kv[i].len), 0);
    n = agg_part_dirty(f->p, 1, &kv);
    for (size_t i = 0; i < n; i++)
        if (kv[i].value)
            agg_part_load_pending(p2, kv[i].field, kv[i].value);
    agg_part_destroy(f->p);
    f->p = p2;
}

static void conversation(struct fx *f, int upto, int from)
{
    static const struct {
        const char *agent, *dir;
        int64_t at;
        bool transfer;
    } script[] = {
        {.agent = "x1", .dir = "in", .at = 0},
        {.agent = "x1", .dir = "out", .at = SEC(30)},
        {.agent = "x1", .dir = "in", .at = SEC(100)},
        {.agent = "x1", .at = SEC(130), .transfer = true},
        {.agent = "x2", .dir = "in", .at = SEC(150)},
        {.agent = "x2", .dir = "out", .at = SEC(400)},
        {.agent = "x2", .dir = "in", .at = SEC(380)}, /* arrives late, before the out */
        {.agent = "x2", .dir = "in", .at = SEC(900)},
    };
    for (int i = from; i < upto && i < (int)(sizeof(script) / sizeof(script[0])); i++) {
        if (script[i].transfer)
            transfer(f, "cv1", "x1", "x2", "c1", AUG10 + script[i].at);
        else
            msg(f, "cv1", script[i].agent, "c1", script[i].dir, AUG10 + script[i].at);
    }
}

static void test_conv_state_round_trip(void **state)
{
    (void)state;
    for (int cut = 1; cut < 8; cut++) {
        struct fx a, b;
        fx_init(&a, &conf_month, TOPIC_CHAT, AUG10);
        fx_init(&b, &conf_month, TOPIC_CHAT, AUG10);
        conversation(&a, cut, 0);
        conversation(&b, cut, 0);
        reload(&b);
        assert_int_equal(agg_part_cached(b.p), 1);
        delta_reset(a.c.d);
        delta_reset(b.c.d);
        conversation(&a, 8, cut);
        conversation(&b, 8, cut);
        char *da = all_ops(a.c.d), *db = all_ops(b.c.d);
        if (strcmp(da, db) != 0)
            fail_msg("cut %d:\nwithout reload:\n%swith reload:\n%s", cut, da, db);
        free(da);
        free(db);
        fx_release(&a);
        fx_release(&b);
    }
}

static void test_order_state_round_trip(void **state)
{
    (void)state;
    struct fx a, b;
    fx_init(&a, &conf_month, TOPIC_ORDERS, AUG1);
    fx_init(&b, &conf_month, TOPIC_ORDERS, AUG1);
    struct fx *fs[2] = {&a, &b};
    for (int i = 0; i < 2; i++) {
        order_ev(fs[i], "created", "o1", AUG10, ",\"customer_id\":\"c1\",\"amount\":\"20\"");
        order_ev(fs[i], "paid", "o1", AUG10 + 1, ",\"amount\":\"20\"");
        order_ev(fs[i], "paid", "o2", AUG10 + 2, ",\"amount\":\"3\""); /* orphan candidate */
        order_ev(fs[i], "created", "o3", AUG10,
                 ",\"customer_id\":\"c3\",\"amount\":\"1\",\"agent_id\":\"x2\"");
    }
    reload(&b);
    assert_int_equal(agg_part_cached(b.p), 3);
    struct dead da = {0}, db = {0};
    for (int i = 0; i < 2; i++) {
        delta_reset(fs[i]->c.d);
        struct agg_due *due;
        size_t n = agg_part_due(fs[i]->p, AUG11, &due);
        assert_int_equal(n, 1);
        assert_string_equal(due[0].order_id, "o1");
        assert_string_equal(due[0].customer, "c1");
        agg_attribute(&fs[i]->c, fs[i]->p, due[0].order_id, "x1", dead_cb, i ? &db : &da);
        free(due);
        order_ev(fs[i], "refunded", "o3", AUG10 + 3, ",\"amount\":\"1\"");
        order_ev(fs[i], "created", "o2", AUG10,
                 ",\"customer_id\":\"c2\",\"amount\":\"3\",\"agent_id\":\"x1\"");
    }
    char *sa = all_ops(a.c.d), *sb = all_ops(b.c.d);
    assert_string_equal(sa, sb);
    assert_non_null(strstr(sa, "S :2026-08:paid c2 ;")); /* o2's held paid */
    free(sa);
    free(sb);
    /* orphan expiry after reload too */
    fx_release(&a);
    fx_release(&b);

    fx_init(&b, &conf_month, TOPIC_ORDERS, AUG1);
    b.c.now_ms = 1000;
    order_ev(&b, "paid", "o9", AUG10, ",\"amount\":\"3\"");
    reload(&b);
    b.c.now_ms = 1000 + ORPHAN;
    agg_part_expire(&b.c, b.p, dead_cb, &db);
    assert_int_equal(db.n, 1);
    assert_non_null(strstr(db.raw[0], "\"order_id\":\"o9\""));
    fx_release(&b);
}

/* An order id shaped like a target slot ("t\x1f...") is still an order after reload. */
static void test_order_id_like_target_slot(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, &conf_month, TOPIC_ORDERS, AUG1);
    order_ev(&f, "created", "t\\u001fx", AUG10, ",\"customer_id\":\"c1\",\"amount\":\"20\"");
    reload(&f);
    struct agg_due *due;
    assert_int_equal(agg_part_due(f.p, AUG10, &due), 1);
    assert_string_equal(due[0].order_id, "t\x1fx");
    free(due);
    fx_release(&f);
}

/* Records of version 1 (before wm_seen) still load; their events are judged against
 * the watermark at attribution. */
static void test_load_v1_record(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b);
    buf_add_u64(&b, 1); /* version */
    buf_add_u64(&b, 1); /* ORDER_PENDING */
    buf_add_str(&b, "demo", 4);
    buf_add_str(&b, "c1", 2);
    buf_add_u64(&b, 0);       /* no agent */
    buf_add_i64(&b, AUG10);   /* created ts */
    buf_add_i64(&b, 2000);    /* amount */
    buf_add_i64(&b, 7);       /* offset */
    buf_add_str(&b, "{}", 2); /* raw */
    buf_add_u64(&b, 1);       /* one held */
    buf_add_u64(&b, EV_PAID);
    buf_add_i64(&b, AUG10 + 1);
    buf_add_i64(&b, 2000);
    buf_add_i64(&b, 8);
    buf_add_i64(&b, 0); /* seen_ms */
    buf_add_str(&b, "{}", 2);
    struct fx f;
    fx_init(&f, &conf_day_month, TOPIC_ORDERS, AUG11 + H(2));
    assert_int_equal(agg_part_load(f.p, "o1", b.data, b.len), 0);
    agg_part_load_pending(f.p, "o1", "1");
    struct dead dl = {0};
    agg_attribute(&f.c, f.p, "o1", "x1", dead_cb, &dl);
    assert_int_equal(dl.n, 2);
    assert_int_equal(dl.offset[0], 7);
    assert_int_equal(dl.offset[1], 8);
    assert_int_equal(ctr(f.c.d, AG1, ":2026-08:c", "sales_cents"), 2000);
    assert_int_equal(ctr(f.c.d, AG1, ":2026-08-10:c", "sales_cents"), 0);
    /* an unknown version is malformed */
    b.data[0] = 3;
    assert_int_equal(agg_part_load(f.p, "o2", b.data, b.len), -1);
    buf_release(&b);
    fx_release(&f);
}

static void test_load_malformed(void **state)
{
    (void)state;
    struct agg_part *p = agg_part_new(TOPIC_ORDERS, "shop.orders", 0);
    struct agg_part *c = agg_part_new(TOPIC_CHAT, "cs.chat", 0);
    /* value NULL: no record, fine */
    assert_int_equal(agg_part_load(p, "o1", NULL, 0), 0);
    assert_int_equal(agg_part_load(c, "cv1", NULL, 0), 0);
    assert_int_equal(agg_part_cached(p) + agg_part_cached(c), 0);
    assert_int_equal(agg_part_load(p, "o1", "", 0), -1);
    assert_int_equal(agg_part_load(p, "o1", "\x02", 1), -1); /* unknown version */
    assert_int_equal(agg_part_load(c, "cv1", "", 0), -1);
    assert_int_equal(agg_part_load(c, "cv1", "\x01", 1), -1);

    /* every truncation of valid records: -1, never a crash (ASan) */
    struct fx f;
    fx_init(&f, &conf_month, TOPIC_ORDERS, AUG1);
    order_ev(&f, "paid", "o1", AUG10, ",\"amount\":\"3\"");
    order_ev(&f, "created", "o2", AUG10, ",\"customer_id\":\"c2\",\"amount\":\"3\"");
    struct fx g;
    fx_init(&g, &conf_month, TOPIC_CHAT, AUG10);
    conversation(&g, 8, 0);
    struct fx *fs[2] = {&f, &g};
    struct agg_part *into[2] = {p, c};
    for (int w = 0; w < 2; w++) {
        struct agg_kv *kv;
        size_t n = agg_part_dirty(fs[w]->p, 0, &kv);
        assert_true(n >= 1);
        for (size_t i = 0; i < n; i++) {
            for (size_t len = 0; len < kv[i].len; len++) {
                char *cp = malloc(len ? len : 1);
                memcpy(cp, kv[i].value, len);
                int rc = agg_part_load(into[w], kv[i].field, cp, len);
                if (rc != -1)
                    fail_msg("%s truncated to %zu of %zu: rc %d", kv[i].field, len, kv[i].len, rc);
                free(cp);
            }
            assert_int_equal(agg_part_load(into[w], kv[i].field, kv[i].value, kv[i].len), 0);
        }
    }
    fx_release(&f);
    fx_release(&g);
    agg_part_destroy(p);
    agg_part_destroy(c);
}

static void test_missing(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, &conf_month, TOPIC_CHAT, AUG10);
    msg(&f, "cv1", "x1", "c1", "in", AUG10);
    const char *js[] = {
        "{\"event_id\":\"1\",\"type\":\"message\",\"ts\":1,\"conversation_id\":\"cv1\","
        "\"agent_id\":\"x\",\"customer_id\":\"c\",\"direction\":\"in\"}",
        "{\"event_id\":\"2\",\"type\":\"message\",\"ts\":1,\"conversation_id\":\"cv2\","
        "\"agent_id\":\"x\",\"customer_id\":\"c\",\"direction\":\"in\"}",
        "{\"event_id\":\"3\",\"type\":\"transfer\",\"ts\":1,\"conversation_id\":\"cv2\","
        "\"agent_id\":\"x\",\"to_agent_id\":\"y\",\"customer_id\":\"c\"}",
        "{\"event_id\":\"4\",\"type\":\"complaint\",\"ts\":1,\"agent_id\":\"x\","
        "\"customer_id\":\"c\"}",
        "{\"event_id\":\"5\",\"type\":\"message\",\"ts\":1,\"conversation_id\":\"cv3\","
        "\"agent_id\":\"x\",\"customer_id\":\"c\",\"direction\":\"out\"}",
    };
    struct event evs[5];
    struct decode_opts o = {.now_ms = SEP1, .max_future_ms = H(24)};
    char detail[128];
    for (int i = 0; i < 5; i++)
        assert_int_equal(
            decode_event(TOPIC_CHAT, js[i], strlen(js[i]), &o, &evs[i], detail, sizeof(detail)),
            DL_NONE);
    size_t n;
    char **ids = agg_part_missing(f.p, evs, 5, &n);
    assert_int_equal(n, 2); /* cv1 cached, cv2 once, complaints have none */
    assert_string_equal(ids[0], "cv2");
    assert_string_equal(ids[1], "cv3");
    for (size_t i = 0; i < n; i++)
        free(ids[i]);
    free(ids);
    for (int i = 0; i < 5; i++)
        event_release(&evs[i]);
    assert_string_equal(agg_part_topic_name(f.p), "cs.chat");
    assert_int_equal(agg_part_number(f.p), 0);
    agg_part_destroy(NULL);
    fx_release(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_in_message),
        cmocka_unit_test(test_contact_trim_follows_watermark),
        cmocka_unit_test(test_out_message),
        cmocka_unit_test(test_wait_answered),
        cmocka_unit_test(test_wait_answered_by_other),
        cmocka_unit_test(test_transfer),
        cmocka_unit_test(test_reordered),
        cmocka_unit_test(test_complaint),
        cmocka_unit_test(test_late_periods),
        cmocka_unit_test(test_wait_across_close),
        cmocka_unit_test(test_order_with_agent),
        cmocka_unit_test(test_order_created_twice),
        cmocka_unit_test(test_order_pending_attribution),
        cmocka_unit_test(test_order_unattributed),
        cmocka_unit_test(test_followups_before_created),
        cmocka_unit_test(test_followups_pending_attribution),
        cmocka_unit_test(test_orphans),
        cmocka_unit_test(test_pending_not_orphan),
        cmocka_unit_test(test_reviews),
        cmocka_unit_test(test_targets),
        cmocka_unit_test(test_absence),
        cmocka_unit_test(test_conv_state_round_trip),
        cmocka_unit_test(test_order_state_round_trip),
        cmocka_unit_test(test_order_id_like_target_slot),
        cmocka_unit_test(test_load_v1_record),
        cmocka_unit_test(test_load_malformed),
        cmocka_unit_test(test_missing),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
