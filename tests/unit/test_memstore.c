/* test_memstore — cli/memstore.c: every write op as csm_apply does it, the figures as
 * csm_figures + store_read_figures read them (replied, conversion, p90 nearest rank,
 * counters, reviews, absences), the contact lookup of attribution, and the contract test:
 * the spec's worked example fed through decode + agg + memstore gives exactly
 * expected-show.jsonl. memstore lives in cli/ (only csmetrics links it), so this test
 * compiles it in directly. Run from the repo root; the example is found at $EXAMPLE,
 * ../shared/spec/example or /work/shared/spec/example (skipped when absent). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <yajl/yajl_tree.h>

#include "aggregator/keys.h"
#include "cli/memstore.c" /* not in libcsm.a */
#include "cli/memstore.h"

#define COUNT_OF(a) (sizeof(a) / sizeof((a)[0]))
#define TAG "csm:{a:demo:x1}"

static int setup(void **state)
{
    char err[256];
    (void)state;
    if (period_tz_set("Asia/Shanghai", err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    return 0;
}

static struct period month(const char *label)
{
    struct period p;
    assert_int_equal(period_from_label(label, &p), 0);
    return p;
}

/* Registers the owner for 2026-08 (as agg does), so figures exist. */
static void reg(struct delta *d, const char *tag)
{
    struct period p = month("2026-08");
    delta_zadd(d, tag, ":periods", p.start_ms, p.label);
}

static void apply(struct memstore *m, struct delta *d)
{
    memstore_apply(m, d);
    delta_reset(d);
}

/* ---- ops ---- */

static void test_ops(void **state)
{
    (void)state;
    struct memstore *m = memstore_new();
    struct delta *d = delta_new();

    delta_incr(d, TAG, ":h", "n", 5);
    delta_incr(d, TAG, ":h", "n", -2);
    delta_hset(d, TAG, ":h", "s", "text");
    delta_sadd(d, TAG, ":s", "a");
    delta_sadd(d, TAG, ":s", "b");
    delta_sadd(d, TAG, ":s", "a");
    delta_zadd(d, TAG, ":z", 10, "m10");
    delta_zadd(d, TAG, ":z", 20, "m20");
    delta_zadd(d, TAG, ":z", 30, "m30");
    delta_mincr(d, TAG, ":m", "u1", 2);
    apply(m, d);
    assert_string_equal(memstore_hget(m, TAG ":h", "n"), "3");
    assert_string_equal(memstore_hget(m, TAG ":h", "s"), "text");
    assert_null(memstore_hget(m, TAG ":h", "absent"));
    assert_int_equal(memstore_card(m, TAG ":s"), 2);
    assert_int_equal(memstore_card(m, TAG ":z"), 3);
    assert_string_equal(memstore_hget(m, TAG ":m", "u1"), "2");

    /* HINCRBY to 0 keeps the field (C); M drops it at <= 0 and the empty key goes */
    delta_incr(d, TAG, ":h", "n", -3);
    delta_mincr(d, TAG, ":m", "u1", -2);
    delta_zrem(d, TAG, ":z", "m20");
    apply(m, d);
    assert_string_equal(memstore_hget(m, TAG ":h", "n"), "0");
    assert_false(memstore_exists(m, TAG ":m"));
    assert_int_equal(memstore_card(m, TAG ":z"), 2);

    /* T: ZREMRANGEBYSCORE -inf (30 keeps 30 */
    delta_ztrim(d, TAG, ":z", 30);
    apply(m, d);
    int64_t sc = 0;
    assert_false(memstore_zscore(m, TAG ":z", "m10", &sc));
    assert_true(memstore_zscore(m, TAG ":z", "m30", &sc));
    assert_int_equal(sc, 30);

    /* a key used as another type is refused (csm_apply: WRONGTYPE), the rest applies */
    delta_sadd(d, TAG, ":h", "x");
    delta_sadd(d, TAG, ":s", "c");
    apply(m, d);
    assert_int_equal(memstore_card(m, TAG ":h"), 2);
    assert_int_equal(memstore_card(m, TAG ":s"), 3);

    size_t n;
    const char **mem = memstore_smembers(m, TAG ":s", &n);
    assert_int_equal(n, 3);
    assert_string_equal(mem[0], "a");
    assert_string_equal(mem[1], "b");
    assert_string_equal(mem[2], "c");
    free(mem);
    assert_null(memstore_smembers(m, TAG ":nothing", &n));
    assert_int_equal(n, 0);

    delta_destroy(d);
    memstore_destroy(m);
    memstore_destroy(NULL);
}

/* ---- figures ---- */

static void test_figures_none(void **state)
{
    (void)state;
    struct memstore *m = memstore_new();
    struct delta *d = delta_new();
    struct kpi_figures f;
    struct period p = month("2026-08"), q = month("2026-09");

    assert_int_equal(memstore_figures(m, TAG, &p, &f), 1);
    reg(d, TAG);
    apply(m, d);
    assert_int_equal(memstore_figures(m, TAG, &q, &f), 1);
    assert_int_equal(memstore_figures(m, TAG, &p, &f), 0);
    /* registered but empty: zero counts, no p90, no target */
    assert_int_equal(f.inquiries, 0);
    assert_int_equal(f.wait_p90_ms, -1);
    assert_int_equal(f.target_cents, -1);
    assert_int_equal(f.reviews_n, 0);
    delta_destroy(d);
    memstore_destroy(m);
}

static void test_figures_sets(void **state)
{
    (void)state;
    struct memstore *m = memstore_new();
    struct delta *d = delta_new();
    struct kpi_figures f;
    struct period p = month("2026-08");

    reg(d, TAG);
    const char *inq[] = {"u1", "u2", "u3"}, *ord[] = {"u2", "u3", "u9"};
    for (size_t i = 0; i < 3; i++) {
        delta_sadd(d, TAG, ":2026-08:inq", inq[i]);
        delta_sadd(d, TAG, ":2026-08:ord", ord[i]);
    }
    delta_mincr(d, TAG, ":2026-08:rep", "u1", 2);
    delta_mincr(d, TAG, ":2026-08:rep", "u9", 1); /* answered, but not an inquiry: not replied */
    delta_sadd(d, TAG, ":2026-08:paid", "u2");
    const char *sets[] = {"ocreated", "opaid", "orefunded", "ocancelled", "oflagged"};
    for (size_t i = 0; i < COUNT_OF(sets); i++) {
        char suffix[64];
        snprintf(suffix, sizeof(suffix), ":2026-08:%s", sets[i]);
        for (size_t k = 0; k <= i; k++) {
            char id[8];
            snprintf(id, sizeof(id), "o%zu", k);
            delta_sadd(d, TAG, suffix, id);
        }
    }
    static const struct {
        const char *field;
        int64_t v;
    } counters[] = {
        {.field = "wait_n", .v = 4},          {.field = "wait_ms", .v = 100000},
        {.field = "first_n", .v = 2},         {.field = "first_ms", .v = 70000},
        {.field = "unans", .v = 1},           {.field = "complaints", .v = 3},
        {.field = "order_cents", .v = 12990}, {.field = "sales_cents", .v = 9900},
        {.field = "refund_cents", .v = 500},  {.field = "target_cents", .v = 100000},
        {.field = "unknown", .v = 7},
    };
    for (size_t i = 0; i < COUNT_OF(counters); i++)
        delta_incr(d, TAG, ":2026-08:c", counters[i].field, counters[i].v);
    delta_hset(d, TAG, ":2026-08:rv", "manager:execution", "0.8");
    delta_hset(d, TAG, ":2026-08:rv", "self:execution", "0.9");
    delta_hset(d, TAG, ":2026-08:rv", "boss:execution", "0.1"); /* unknown role: ignored */
    delta_hset(d, TAG, ":2026-08:rv", "nocolon", "0.1");
    apply(m, d);

    assert_int_equal(memstore_figures(m, TAG, &p, &f), 0);
    assert_int_equal(f.inquiries, 3);
    assert_int_equal(f.replied, 1);
    assert_int_equal(f.ordered, 3);
    assert_int_equal(f.inquired_and_ordered, 2);
    assert_int_equal(f.paid_customers, 1);
    assert_int_equal(f.orders, 1);
    assert_int_equal(f.paid_orders, 2);
    assert_int_equal(f.refunded_orders, 3);
    assert_int_equal(f.cancelled_orders, 4);
    assert_int_equal(f.flagged_orders, 5);
    assert_int_equal(f.waits, 4);
    assert_int_equal(f.wait_sum_ms, 100000);
    assert_int_equal(f.first_waits, 2);
    assert_int_equal(f.first_wait_sum_ms, 70000);
    assert_int_equal(f.unanswered_waits, 1);
    assert_int_equal(f.complaints, 3);
    assert_int_equal(f.order_amount_cents, 12990);
    assert_int_equal(f.sales_cents, 9900);
    assert_int_equal(f.refund_amount_cents, 500);
    assert_int_equal(f.target_cents, 100000);
    assert_int_equal(f.reviews_n, 2);
    /* field order: manager:execution, self:execution */
    assert_string_equal(f.reviews[0].item, "execution");
    assert_int_equal(f.reviews[0].role, ROLE_MANAGER);
    assert_true(f.reviews[0].value == 0.8);
    assert_int_equal(f.reviews[1].role, ROLE_SELF);
    assert_true(f.reviews[1].value == 0.9);
    delta_destroy(d);
    memstore_destroy(m);
}

/* p90 nearest rank: index floor((9n + 9) / 10) - 1 of the waits in ascending order
 * (ties by member, as Redis orders them). */
static void test_p90(void **state)
{
    (void)state;
    static const struct {
        size_t n;
        int64_t want; /* waits are 1000, 2000, ... n*1000 */
    } cases[] = {
        {.n = 1, .want = 1000},   {.n = 2, .want = 2000},    {.n = 9, .want = 9000},
        {.n = 10, .want = 9000},  {.n = 11, .want = 10000},  {.n = 20, .want = 18000},
        {.n = 21, .want = 19000}, {.n = 100, .want = 90000},
    };
    struct period p = month("2026-08");
    for (size_t c = 0; c < COUNT_OF(cases); c++) {
        struct memstore *m = memstore_new();
        struct delta *d = delta_new();
        struct kpi_figures f;
        reg(d, TAG);
        /* added in descending order so that insertion order cannot pass for sorting */
        for (size_t i = cases[c].n; i >= 1; i--) {
            char member[64];
            snprintf(member, sizeof(member), "%zu:c%zu", i, i);
            delta_zadd(d, TAG, ":2026-08:w", (int64_t)i * 1000, member);
        }
        apply(m, d);
        assert_int_equal(memstore_figures(m, TAG, &p, &f), 0);
        if (f.wait_p90_ms != cases[c].want)
            fail_msg("n=%zu: p90 %lld, want %lld", cases[c].n, (long long)f.wait_p90_ms,
                     (long long)cases[c].want);
        delta_destroy(d);
        memstore_destroy(m);
    }
}

static void test_absences(void **state)
{
    (void)state;
    struct memstore *m = memstore_new();
    struct delta *d = delta_new();
    struct kpi_figures f;
    struct period p = month("2026-08");
    int32_t jul30, aug3, aug5, aug6, aug10, aug31, sep2;
    assert_int_equal(period_date_parse("2026-07-30", &jul30), 0);
    assert_int_equal(period_date_parse("2026-08-03", &aug3), 0);
    assert_int_equal(period_date_parse("2026-08-05", &aug5), 0);
    assert_int_equal(period_date_parse("2026-08-06", &aug6), 0);
    assert_int_equal(period_date_parse("2026-08-10", &aug10), 0);
    assert_int_equal(period_date_parse("2026-08-31", &aug31), 0);
    assert_int_equal(period_date_parse("2026-09-02", &sep2), 0);
    char v[64];
    reg(d, TAG);
    /* Jul 30..Aug 5 and Aug 3..Aug 5 overlap; Aug 6..10 adjoins: Aug 1..10 = 10 days */
    snprintf(v, sizeof(v), "%d %d", (int)jul30, (int)aug5);
    delta_hset(d, TAG, ":abs", "a1", v);
    snprintf(v, sizeof(v), "%d %d", (int)aug3, (int)aug5);
    delta_hset(d, TAG, ":abs", "a2", v);
    snprintf(v, sizeof(v), "%d %d", (int)aug6, (int)aug10);
    delta_hset(d, TAG, ":abs", "a3", v);
    /* Aug 31..Sep 2: one day in August */
    snprintf(v, sizeof(v), "%d %d", (int)aug31, (int)sep2);
    delta_hset(d, TAG, ":abs", "a4", v);
    delta_hset(d, TAG, ":abs", "bad", "garbage");
    apply(m, d);
    assert_int_equal(memstore_figures(m, TAG, &p, &f), 0);
    assert_int_equal(f.absent_days, 11);
    delta_destroy(d);
    memstore_destroy(m);
}

/* ---- contacts ---- */

static void test_contact(void **state)
{
    (void)state;
    struct memstore *m = memstore_new();
    struct delta *d = delta_new();
    struct buf key;
    buf_init(&key);
    keys_contact(&key, "csm:", "demo", "u1");
    size_t taglen = (size_t)(strchr(key.data, '}') - key.data) + 1;
    char *tag = xstrndup(key.data, taglen);
    /* members as agg writes them: %013 ts : %020 offset : agent */
    static const struct {
        int64_t ts, off;
        const char *agent;
    } msgs[] = {
        {.ts = 1000, .off = 1, .agent = "x1"},
        {.ts = 5000, .off = 2, .agent = "x2"},
        {.ts = 5000, .off = 9, .agent = "x3:with:colons"}, /* same ts, later offset */
        {.ts = 9000, .off = 3, .agent = "x4"},
    };
    for (size_t i = 0; i < COUNT_OF(msgs); i++) {
        char member[128];
        snprintf(member, sizeof(member), "%013lld:%020lld:%s", (long long)msgs[i].ts,
                 (long long)msgs[i].off, msgs[i].agent);
        delta_zadd(d, tag, key.data + taglen, msgs[i].ts, member);
    }
    apply(m, d);
    static const struct {
        int64_t ts, window;
        const char *want;
    } cases[] = {
        {.ts = 999, .window = 10000, .want = NULL}, /* before every message */
        {.ts = 1000, .window = 0, .want = "x1"},    /* at ts, window 0 */
        {.ts = 4999, .window = 10000, .want = "x1"},
        {.ts = 5000, .window = 10000, .want = "x3:with:colons"},
        {.ts = 8999, .window = 3999, .want = "x3:with:colons"}, /* 5000 = ts - window */
        {.ts = 8999, .window = 3998, .want = NULL},             /* just out of the window */
        {.ts = 100000, .window = 100000, .want = "x4"},
    };
    for (size_t c = 0; c < COUNT_OF(cases); c++) {
        char *a = memstore_contact_latest(m, "csm:", "demo", "u1", cases[c].ts, cases[c].window);
        if (cases[c].want == NULL ? a != NULL : !a || strcmp(a, cases[c].want) != 0)
            fail_msg("case %zu: got '%s', want '%s'", c, a ? a : "(none)",
                     cases[c].want ? cases[c].want : "(none)");
        free(a);
    }
    char *none = memstore_contact_latest(m, "csm:", "demo", "u2", 5000, 10000);
    assert_null(none);
    free(tag);
    buf_release(&key);
    delta_destroy(d);
    memstore_destroy(m);
}

/* ---- the worked example ---- */

static const char *example_dir(void)
{
    static const char *const dirs[] = {"../shared/spec/example", "/work/shared/spec/example"};
    const char *env = getenv("EXAMPLE");
    struct stat st;
    if (env && *env && stat(env, &st) == 0)
        return env;
    for (size_t i = 0; i < COUNT_OF(dirs); i++)
        if (stat(dirs[i], &st) == 0)
            return dirs[i];
    return NULL;
}

static void feed_file(struct memstore_feed *f, const char *dir, const char *name,
                      enum event_topic topic)
{
    char path[512], line[8192], err[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *fp = fopen(path, "r");
    if (!fp)
        fail_msg("cannot open '%s'", path);
    while (fgets(line, sizeof(line), fp)) {
        char *json = strchr(line, '\t'); /* KEY<TAB>JSON */
        json = json ? json + 1 : line;
        size_t n = strcspn(json, "\n");
        if (n == 0)
            continue;
        if (memstore_feed_event(f, topic, json, n, err, sizeof(err)) < 0)
            fail_msg("%s: %s", name, err);
    }
    fclose(fp);
}

static bool num_equal(double a, double b)
{
    return a == b || fabs(a - b) <= 1e-9 * fmax(fabs(a), fabs(b));
}

/* Every key of want equals got's (numbers within 1e-9 relative), and no key is extra. */
static void compare_metrics(const char *who, yajl_val want, yajl_val got)
{
    assert_true(YAJL_IS_OBJECT(want));
    assert_true(YAJL_IS_OBJECT(got));
    for (size_t i = 0; i < want->u.object.len; i++) {
        const char *k = want->u.object.keys[i];
        yajl_val w = want->u.object.values[i], g = NULL;
        for (size_t j = 0; j < got->u.object.len; j++)
            if (strcmp(got->u.object.keys[j], k) == 0)
                g = got->u.object.values[j];
        if (!g)
            fail_msg("%s: metric '%s' missing", who, k);
        if (YAJL_IS_NULL(w) != YAJL_IS_NULL(g))
            fail_msg("%s: metric '%s': null mismatch", who, k);
        if (YAJL_IS_NUMBER(w) &&
            !(YAJL_IS_NUMBER(g) && num_equal(YAJL_GET_DOUBLE(w), YAJL_GET_DOUBLE(g))))
            fail_msg("%s: metric '%s': want %g, got %g", who, k, YAJL_GET_DOUBLE(w),
                     YAJL_IS_NUMBER(g) ? YAJL_GET_DOUBLE(g) : NAN);
    }
    if (got->u.object.len != want->u.object.len)
        fail_msg("%s: %zu metrics, want %zu", who, got->u.object.len, want->u.object.len);
}

static void test_worked_example(void **state)
{
    (void)state;
    const char *dir = example_dir();
    if (!dir)
        skip();
    struct agg_conf conf = {
        .prefix = "csm:",
        .lateness_ms = 10 * 60 * 1000,
        .attribution_window_ms = 72LL * 3600 * 1000,
        .orphan_ms = 48LL * 3600 * 1000,
    };
    conf.kinds[PERIOD_MONTH] = true;
    conf.accept_ms[PERIOD_MONTH] = conf.lateness_ms;
    struct memstore *m = memstore_new();
    struct memstore_feed *f = memstore_feed_new(m, &conf);
    feed_file(f, dir, "chat.jsonl", TOPIC_CHAT);
    feed_file(f, dir, "orders.jsonl", TOPIC_ORDERS);
    feed_file(f, dir, "reviews.jsonl", TOPIC_REVIEWS);
    memstore_feed_finish(f);

    /* the registry: one shop, two agents */
    size_t n;
    const char **shops = memstore_smembers(m, "csm:{r}:shops", &n);
    assert_int_equal(n, 1);
    assert_string_equal(shops[0], "demo");
    free(shops);
    const char **agents = memstore_smembers(m, "csm:{t:demo}:agents", &n);
    assert_int_equal(n, 2);
    assert_string_equal(agents[0], "x1");
    assert_string_equal(agents[1], "x2");
    free(agents);

    char path[512], line[8192], errbuf[256];
    snprintf(path, sizeof(path), "%s/expected-show.jsonl", dir);
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    int lines = 0;
    while (fgets(line, sizeof(line), fp)) {
        yajl_val want = yajl_tree_parse(line, errbuf, sizeof(errbuf));
        assert_non_null(want);
        const char *pa[] = {"agent_id", NULL}, *pp[] = {"period", NULL}, *pm[] = {"metrics", NULL};
        const char *agent = YAJL_GET_STRING(yajl_tree_get(want, pa, yajl_t_string));
        const char *label = YAJL_GET_STRING(yajl_tree_get(want, pp, yajl_t_string));
        struct period p;
        assert_int_equal(period_from_label(label, &p), 0);
        struct buf tag;
        buf_init(&tag);
        keys_owner_tag(&tag, "csm:", KEYS_AGENT, "demo", agent);
        struct kpi_figures fig;
        assert_int_equal(memstore_figures(m, tag.data, &p, &fig), 0);
        static char metrics[65536];
        assert_true(kpi_metrics_json(&fig, metrics, sizeof(metrics)) > 0);
        yajl_val got = yajl_tree_parse(metrics, errbuf, sizeof(errbuf));
        assert_non_null(got);
        compare_metrics(agent, yajl_tree_get(want, pm, yajl_t_object), got);
        yajl_tree_free(got);
        yajl_tree_free(want);
        buf_release(&tag);
        lines++;
    }
    fclose(fp);
    assert_int_equal(lines, 2);

    /* the team: distinct customers across agents (u2 asked x1 and x2: once) */
    struct period aug = month("2026-08");
    struct kpi_figures team;
    assert_int_equal(memstore_figures(m, "csm:{t:demo}", &aug, &team), 0);
    assert_int_equal(team.inquiries, 4);
    assert_int_equal(team.sales_cents, 12990 + 30000);
    assert_int_equal(team.target_cents, 120000);
    assert_int_equal(team.orders, 3);
    memstore_feed_destroy(f);
    memstore_destroy(m);
}

/* A duplicate event_id is skipped; a bad event is reported with its reason. */
static void test_feed_errors(void **state)
{
    (void)state;
    struct agg_conf conf = {.prefix = "csm:", .attribution_window_ms = 1000};
    conf.kinds[PERIOD_MONTH] = true;
    struct memstore *m = memstore_new();
    struct memstore_feed *f = memstore_feed_new(m, &conf);
    char err[256];
    const char *ok = "{\"event_id\": \"e1\", \"type\": \"complaint\", \"ts\": 1786000000000, "
                     "\"agent_id\": \"x1\", \"customer_id\": \"u1\"}";
    assert_int_equal(memstore_feed_event(f, TOPIC_CHAT, ok, strlen(ok), err, sizeof(err)), 0);
    assert_int_equal(memstore_feed_event(f, TOPIC_CHAT, ok, strlen(ok), err, sizeof(err)), 1);
    const char *bad = "{\"event_id\": \"e2\", \"type\": \"created\", \"ts\": 1786000000000, "
                      "\"order_id\": \"o1\", \"customer_id\": \"u1\", \"amount\": \"1.001\"}";
    assert_int_equal(memstore_feed_event(f, TOPIC_ORDERS, bad, strlen(bad), err, sizeof(err)), -1);
    assert_non_null(strstr(err, "bad_amount: "));
    /* a type of another topic */
    assert_int_equal(memstore_feed_event(f, TOPIC_ORDERS, ok, strlen(ok), err, sizeof(err)), -1);
    assert_non_null(strstr(err, "unknown_type: "));
    struct period p;
    assert_int_equal(period_of(PERIOD_MONTH, 1786000000000, &p), 0);
    struct kpi_figures fig;
    assert_int_equal(memstore_figures(m, "csm:{a:default:x1}", &p, &fig), 0);
    assert_int_equal(fig.complaints, 1);
    memstore_feed_destroy(f);
    memstore_feed_destroy(NULL);
    memstore_destroy(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ops),
        cmocka_unit_test(test_figures_none),
        cmocka_unit_test(test_figures_sets),
        cmocka_unit_test(test_p90),
        cmocka_unit_test(test_absences),
        cmocka_unit_test(test_contact),
        cmocka_unit_test(test_worked_example),
        cmocka_unit_test(test_feed_errors),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
