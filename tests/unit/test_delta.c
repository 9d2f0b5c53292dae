/* Unit tests for aggregator/delta: the net effect per key (counters summed, set members
 * once, the last write of a sorted-set member or hash field, the highest trim bound),
 * the exact variadic op list (1-based key indices, first-use order, DELTA_CHUNK items per
 * op), delta_foreach_op seeing exactly the net writes, delta_args_valid, the journal
 * round trip, and malformed journals: every truncation, every bit flip, hand-made bad
 * records (all must give -1 or valid groups, never a crash; run under ASan). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/delta.h"
#include "common/buf.h"

#define TA "csm:{a:demo:x1}"
#define TT "csm:{t:demo}"

/* Items per op of each code (delta.h); 0 for an unknown code. */
static size_t op_width(char code)
{
    switch (code) {
    case 'S':
    case 'R':
    case 'T':
        return 1;
    case 'Z':
    case 'H':
    case 'C':
    case 'M':
        return 2;
    default:
        return 0;
    }
}

/* A group as text: "tag|k1,k2|CODE KEY N items...;..." — easy to compare exactly. The
 * op list must be valid and its args plain strings (arglens == strlen). */
static void group_text(const struct delta_group *g, struct buf *out)
{
    assert_true(delta_args_valid(g->nkeys, g->args, g->arglens, g->nargs));
    buf_reset(out);
    buf_adds(out, g->tag);
    buf_addc(out, '|');
    for (size_t i = 0; i < g->nkeys; i++) {
        if (i)
            buf_addc(out, ',');
        buf_adds(out, g->keys[i]);
    }
    buf_addc(out, '|');
    for (size_t i = 0; i < g->nargs; i++)
        assert_int_equal(g->arglens[i], strlen(g->args[i]));
    size_t i = 0;
    while (i < g->nargs) {
        size_t n = (size_t)strtoull(g->args[i + 2], NULL, 10);
        size_t end = i + 3 + n * op_width(g->args[i][0]);
        for (size_t k = i; k < end; k++) {
            buf_adds(out, g->args[k]);
            buf_addc(out, k + 1 == end ? ';' : ' ');
        }
        i = end;
    }
}

static void assert_groups(struct delta *d, const char *const *want, size_t nwant)
{
    assert_int_equal(delta_group_count(d), nwant);
    struct buf t;
    buf_init(&t);
    for (size_t i = 0; i < nwant; i++) {
        struct delta_group g;
        delta_group_get(d, i, &g);
        group_text(&g, &t);
        if (strcmp(t.data, want[i]) != 0)
            fail_msg("group %zu:\n got  %s\n want %s", i, t.data, want[i]);
    }
    buf_release(&t);
}

/* ---- net effect and layout ---- */

static void test_empty(void **state)
{
    (void)state;
    struct delta *d = delta_new();
    assert_true(delta_empty(d));
    assert_int_equal(delta_group_count(d), 0);
    struct buf j;
    buf_init(&j);
    delta_encode(d, &j);
    assert_int_equal(j.len, 1); /* varint 0 */
    assert_int_equal(j.data[0], 0);
    buf_release(&j);
    delta_destroy(d);
    delta_destroy(NULL);
}

static void test_counters(void **state)
{
    (void)state;
    struct delta *d = delta_new();
    delta_incr(d, TA, ":2026-08:c", "wait_n", 1);
    delta_incr(d, TA, ":2026-08:c", "wait_ms", 45000);
    delta_incr(d, TA, ":2026-08:c", "wait_n", 2);
    delta_incr(d, TA, ":2026-08:c", "wait_n", -3); /* sums to 0: omitted */
    delta_incr(d, TA, ":2026-08:c", "wait_ms", -5000);
    delta_mincr(d, TA, ":2026-08:rep", "c1", 1);
    delta_mincr(d, TA, ":2026-08:rep", "c1", 1);
    delta_mincr(d, TA, ":2026-08:rep", "c2", -1);
    delta_mincr(d, TA, ":2026-08:rep", "c3", 1);
    delta_mincr(d, TA, ":2026-08:rep", "c3", -1); /* sums to 0: omitted */
    /* same field name under another key, and C vs M on the same key+field, stay apart */
    delta_incr(d, TA, ":2026-09:c", "wait_ms", 7);
    delta_incr(d, TA, ":2026-08:rep", "c1", 5);
    assert_false(delta_empty(d));
    const char *want[] = {TA "|" TA ":2026-08:c," TA ":2026-08:rep," TA ":2026-09:c|"
                             "C 1 1 wait_ms 40000;C 2 1 c1 5;M 2 2 c1 2 c2 -1;C 3 1 wait_ms 7;"};
    assert_groups(d, want, 1);
    delta_destroy(d);
}

static void test_counters_all_zero(void **state)
{
    (void)state;
    struct delta *d = delta_new();
    delta_incr(d, TA, ":c", "unans", 1);
    delta_incr(d, TA, ":c", "unans", -1);
    delta_mincr(d, TA, ":rep", "c1", -2);
    delta_mincr(d, TA, ":rep", "c1", 2);
    /* the group and its keys stay (the tag was touched), with no op */
    const char *want[] = {TA "|" TA ":c," TA ":rep|"};
    assert_groups(d, want, 1);
    assert_false(delta_empty(d));
    delta_destroy(d);
}

static void test_counter_extremes(void **state)
{
    (void)state;
    struct delta *d = delta_new();
    delta_incr(d, TA, ":c", "big", INT64_MAX);
    delta_incr(d, TA, ":c", "small", INT64_MIN);
    delta_mincr(d, TA, ":c", "m", INT64_MIN);
    const char *want[] = {TA "|" TA ":c|C 1 2 big 9223372036854775807 small "
                             "-9223372036854775808;M 1 1 m -9223372036854775808;"};
    assert_groups(d, want, 1);
    /* sums past the limits stay at them (no overflow) */
    delta_incr(d, TA, ":c", "big", 1);
    delta_incr(d, TA, ":c", "small", -1);
    delta_mincr(d, TA, ":c", "m", INT64_MIN);
    assert_groups(d, want, 1);
    delta_incr(d, TA, ":c", "big", -7);
    const char *less[] = {TA "|" TA ":c|C 1 2 big 9223372036854775800 small "
                             "-9223372036854775808;M 1 1 m -9223372036854775808;"};
    assert_groups(d, less, 1);
    delta_destroy(d);
}

static void test_sets(void **state)
{
    (void)state;
    struct delta *d = delta_new();
    delta_sadd(d, TA, ":2026-08:inq", "c1");
    delta_sadd(d, TA, ":2026-08:inq", "c2");
    delta_sadd(d, TA, ":2026-08:inq", "c1"); /* dup within the batch: once */
    delta_sadd(d, TA, ":2026-08:ord", "c1"); /* same member, other key: kept */
    delta_sadd(d, TA, ":2026-08:inq", "c3");
    delta_sadd(d, TA, "", "member with spaces");
    delta_sadd(d, TA, "", ""); /* the empty member is a member */
    delta_sadd(d, TA, "", "");
    const char *want[] = {TA "|" TA ":2026-08:inq," TA ":2026-08:ord," TA "|"
                             "S 1 3 c1 c2 c3;S 2 1 c1;S 3 2 member with spaces ;"};
    assert_groups(d, want, 1);
    delta_destroy(d);
}

/* A sorted-set member's last write wins: ZADD then ZREM is a ZREM, ZREM then ZADD a ZADD
 * with the last score. */
static void test_zset_net(void **state)
{
    (void)state;
    struct delta *d = delta_new();
    delta_zadd(d, TA, ":w", 10, "a"); /* then removed: only R */
    delta_zrem(d, TA, ":w", "a");
    delta_zrem(d, TA, ":w", "b"); /* then added twice: only Z with the last score */
    delta_zadd(d, TA, ":w", 20, "b");
    delta_zadd(d, TA, ":w", -21, "b");
    delta_zadd(d, TA, ":w", 30, "c"); /* added, removed, added: Z */
    delta_zrem(d, TA, ":w", "c");
    delta_zadd(d, TA, ":w", 31, "c");
    delta_zrem(d, TA, ":w", "e"); /* removed twice: R once */
    delta_zrem(d, TA, ":w", "e");
    delta_zadd(d, TA, ":w", 40, "f"); /* removed, added, removed: R */
    delta_zrem(d, TA, ":w", "f");
    delta_zadd(d, TA, ":w", 41, "f");
    delta_zrem(d, TA, ":w", "f");
    delta_zadd(d, TA, ":w", 0, "g");
    /* members keep their first-use order within Z and within R */
    const char *want[] = {TA "|" TA ":w|Z 1 3 -21 b 31 c 0 g;R 1 3 a e f;"};
    assert_groups(d, want, 1);
    delta_destroy(d);

    d = delta_new();
    delta_zadd(d, TA, ":w", 1, "a");
    delta_zrem(d, TA, ":w", "a");
    const char *want2[] = {TA "|" TA ":w|R 1 1 a;"};
    assert_groups(d, want2, 1);
    delta_destroy(d);

    d = delta_new();
    delta_zrem(d, TA, ":w", "a");
    delta_zadd(d, TA, ":w", 5, "a");
    delta_zadd(d, TA, ":w", INT64_MIN, "z");
    const char *want3[] = {TA "|" TA ":w|Z 1 2 5 a -9223372036854775808 z;"};
    assert_groups(d, want3, 1);
    delta_destroy(d);
}

static void test_hash_net(void **state)
{
    (void)state;
    struct delta *d = delta_new();
    delta_hset(d, TA, ":2026-08:rv", "manager:follow_up", "0.8");
    delta_hset(d, TA, ":2026-08:rv", "self:total", "0.5");
    delta_hset(d, TA, ":2026-08:rv", "manager:follow_up", "0.9"); /* last value wins */
    delta_hset(d, TA, ":2026-08:rv", "self:total", "");           /* even an empty one */
    delta_hset(d, TA, ":abs", "e1", "20668 20670");
    const char *want[] = {TA "|" TA ":2026-08:rv," TA ":abs|"
                             "H 1 2 manager:follow_up 0.9 self:total ;H 2 1 e1 20668 20670;"};
    assert_groups(d, want, 1);
    delta_destroy(d);
}

static void test_trim_highest(void **state)
{
    (void)state;
    struct delta *d = delta_new();
    delta_ztrim(d, TA, ":c1", -100);
    delta_ztrim(d, TA, ":c1", 50);
    delta_ztrim(d, TA, ":c1", 10); /* lower than one already asked: no effect */
    delta_ztrim(d, TA, ":c2", INT64_MIN);
    delta_ztrim(d, TA, ":c3", -5);
    delta_ztrim(d, TA, ":c3", -7);
    const char *want[] = {TA "|" TA ":c1," TA ":c2," TA ":c3|"
                             "T 1 1 50;T 2 1 -9223372036854775808;T 3 1 -5;"};
    assert_groups(d, want, 1);
    delta_destroy(d);
}

/* Keys in first-use order, 1-based; within a key one op per kind, in the order
 * S T Z R H C M, whatever order the writes came in. */
static void test_layout(void **state)
{
    (void)state;
    struct delta *d = delta_new();
    delta_ztrim(d, TA, ":k", 7);
    delta_mincr(d, TA, ":k", "m", 1);
    delta_incr(d, TA, ":k", "c", 2);
    delta_hset(d, TA, ":k", "h", "v");
    delta_zrem(d, TA, ":k", "r");
    delta_zadd(d, TA, ":k", 3, "z");
    delta_sadd(d, TA, ":k", "s");
    delta_incr(d, TA, ":2026-08:c", "wait_n", 1);
    delta_sadd(d, TA, ":2026-08:inq", "c1");
    delta_zadd(d, TA, ":periods", 1785513600000, "2026-08");
    delta_incr(d, TA, ":2026-08:c", "wait_ms", 5);
    const char *want[] = {TA "|" TA ":k," TA ":2026-08:c," TA ":2026-08:inq," TA ":periods|"
                             "S 1 1 s;T 1 1 7;Z 1 1 3 z;R 1 1 r;H 1 1 h v;C 1 1 c 2;M 1 1 m 1;"
                             "C 2 2 wait_n 1 wait_ms 5;S 3 1 c1;Z 4 1 1785513600000 2026-08;"};
    assert_groups(d, want, 1);
    delta_destroy(d);
}

static void test_group_order(void **state)
{
    (void)state;
    struct delta *d = delta_new();
    delta_incr(d, TT, ":2026-08:c", "wait_n", 1);
    delta_sadd(d, TA, ":2026-08:inq", "c1");
    delta_sadd(d, "csm:{r}", ":shops", "demo");
    delta_sadd(d, TT, ":2026-08:inq", "c1");
    delta_incr(d, TA, ":2026-08:c", "wait_n", 1);
    const char *want[] = {
        TT "|" TT ":2026-08:c," TT ":2026-08:inq|C 1 1 wait_n 1;S 2 1 c1;",
        TA "|" TA ":2026-08:inq," TA ":2026-08:c|S 1 1 c1;C 2 1 wait_n 1;",
        "csm:{r}|csm:{r}:shops|S 1 1 demo;",
    };
    assert_groups(d, want, 3);
    /* materialising again (any order) gives the same */
    struct buf t;
    buf_init(&t);
    struct delta_group g;
    delta_group_get(d, 2, &g);
    delta_group_get(d, 0, &g);
    group_text(&g, &t);
    assert_string_equal(t.data, want[0]);
    buf_release(&t);

    delta_reset(d);
    assert_true(delta_empty(d));
    assert_int_equal(delta_group_count(d), 0);
    /* reusable after reset; set dedup, sums and last writes start afresh */
    delta_sadd(d, TA, ":2026-08:inq", "c1");
    delta_incr(d, TA, ":2026-08:c", "wait_n", 4);
    delta_zrem(d, TA, ":w", "a");
    const char *want2[] = {TA "|" TA ":2026-08:inq," TA ":2026-08:c," TA ":w|"
                              "S 1 1 c1;C 2 1 wait_n 4;R 3 1 a;"};
    assert_groups(d, want2, 1);
    delta_destroy(d);
}

/* ---- chunking ---- */

/* Checks that args[at..] is the op header code key n. */
static void assert_header(const struct delta_group *g, size_t at, const char *code, const char *key,
                          const char *n)
{
    assert_true(at + 3 <= g->nargs);
    assert_string_equal(g->args[at], code);
    assert_string_equal(g->args[at + 1], key);
    assert_string_equal(g->args[at + 2], n);
}

static void test_chunking(void **state)
{
    (void)state;
    char m[32];
    struct delta *d = delta_new();
    struct delta_group g;

    /* 1500 members: two S ops of 1000 and 500, members in order */
    for (int i = 0; i < 1500; i++) {
        snprintf(m, sizeof(m), "m%04d", i);
        delta_sadd(d, TA, ":s", m);
    }
    delta_group_get(d, 0, &g);
    assert_true(delta_args_valid(g.nkeys, g.args, g.arglens, g.nargs));
    assert_int_equal(g.nargs, 3 + 1000 + 3 + 500);
    assert_header(&g, 0, "S", "1", "1000");
    assert_header(&g, 1003, "S", "1", "500");
    for (int i = 0; i < 1500; i++) {
        snprintf(m, sizeof(m), "m%04d", i);
        assert_string_equal(g.args[i < 1000 ? 3 + i : 6 + i], m);
    }

    /* exactly DELTA_CHUNK: one op */
    delta_reset(d);
    for (int i = 0; i < DELTA_CHUNK; i++) {
        snprintf(m, sizeof(m), "m%d", i);
        delta_sadd(d, TA, ":s", m);
    }
    delta_group_get(d, 0, &g);
    assert_int_equal(g.nargs, 3 + DELTA_CHUNK);
    assert_header(&g, 0, "S", "1", "1000");

    /* pairs: 1001 scores and members: 1000 pairs then 1 */
    delta_reset(d);
    for (int i = 0; i < 1001; i++) {
        snprintf(m, sizeof(m), "z%d", i);
        delta_zadd(d, TA, ":z", i * 10, m);
    }
    delta_group_get(d, 0, &g);
    assert_true(delta_args_valid(g.nkeys, g.args, g.arglens, g.nargs));
    assert_int_equal(g.nargs, 3 + 2000 + 3 + 2);
    assert_header(&g, 0, "Z", "1", "1000");
    assert_string_equal(g.args[3], "0");
    assert_string_equal(g.args[4], "z0");
    assert_string_equal(g.args[2001], "9990");
    assert_string_equal(g.args[2002], "z999");
    assert_header(&g, 2003, "Z", "1", "1");
    assert_string_equal(g.args[2006], "10000");
    assert_string_equal(g.args[2007], "z1000");

    /* 2500 hash fields: 1000, 1000, 500 */
    delta_reset(d);
    for (int i = 0; i < 2500; i++) {
        snprintf(m, sizeof(m), "f%d", i);
        delta_hset(d, TA, ":h", m, "v");
    }
    delta_group_get(d, 0, &g);
    assert_true(delta_args_valid(g.nkeys, g.args, g.arglens, g.nargs));
    assert_int_equal(g.nargs, 3 * 3 + 2 * 2500);
    assert_header(&g, 0, "H", "1", "1000");
    assert_header(&g, 2003, "H", "1", "1000");
    assert_header(&g, 4006, "H", "1", "500");

    /* counters summing to 0 do not count towards a chunk: 1200 fields, every sixth
     * zero, is 1000 items in one op; zeros at the end open no empty op */
    delta_reset(d);
    for (int i = 0; i < 1200; i++) {
        snprintf(m, sizeof(m), "c%d", i);
        delta_incr(d, TA, ":c", m, i % 6 == 5 ? 0 : i + 1);
    }
    for (int i = 0; i < 5; i++) {
        snprintf(m, sizeof(m), "zero%d", i);
        delta_incr(d, TA, ":c", m, 3);
        delta_incr(d, TA, ":c", m, -3);
    }
    delta_group_get(d, 0, &g);
    assert_true(delta_args_valid(g.nkeys, g.args, g.arglens, g.nargs));
    assert_int_equal(g.nargs, 3 + 2000);
    assert_header(&g, 0, "C", "1", "1000");
    assert_string_equal(g.args[3], "c0");
    assert_string_equal(g.args[4], "1");
    assert_string_equal(g.args[2001], "c1198");
    assert_string_equal(g.args[2002], "1199");
    delta_incr(d, TA, ":c", "one more", 1);
    delta_group_get(d, 0, &g);
    assert_int_equal(g.nargs, 3 + 2000 + 3 + 2);
    assert_header(&g, 2003, "C", "1", "1");

    /* members added and removed, alternately: Z and R ops count their own items */
    delta_reset(d);
    for (int i = 0; i < 1500; i++) {
        snprintf(m, sizeof(m), "w%d", i);
        delta_zadd(d, TA, ":w", i, m);
        if (i % 2)
            delta_zrem(d, TA, ":w", m);
    }
    delta_mincr(d, TA, ":rep", "c1", 1); /* another key after */
    delta_group_get(d, 0, &g);
    assert_true(delta_args_valid(g.nkeys, g.args, g.arglens, g.nargs));
    assert_int_equal(g.nargs, 3 + 1500 + 3 + 750 + 5);
    assert_header(&g, 0, "Z", "1", "750");
    assert_string_equal(g.args[3 + 1498], "1498");
    assert_string_equal(g.args[3 + 1499], "w1498");
    assert_header(&g, 1503, "R", "1", "750");
    assert_string_equal(g.args[1506], "w1");
    assert_string_equal(g.args[1506 + 749], "w1499");
    assert_header(&g, 2256, "M", "2", "1");
    delta_destroy(d);
}

/* ---- delta_foreach_op ---- */

static void view_text(void *ud, const struct delta_op_view *op)
{
    struct buf *out = ud;
    buf_printf(out, "%s %s %c", op->tag, op->key, op->code);
    switch (op->code) {
    case 'S':
    case 'R':
        assert_null(op->value);
        buf_printf(out, " %s", op->field);
        break;
    case 'Z':
    case 'C':
    case 'M':
        assert_null(op->value);
        buf_printf(out, " %s %" PRId64, op->field, op->num);
        break;
    case 'H':
        assert_non_null(op->value);
        buf_printf(out, " %s %s", op->field, op->value);
        break;
    case 'T':
        assert_null(op->value);
        buf_printf(out, " %" PRId64, op->num);
        break;
    default:
        fail_msg("view with code %d", op->code);
    }
    buf_addc(out, '\n');
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

struct lines {
    char **v;
    size_t n, cap;
};

static void lines_add(struct lines *l, char *s)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 64;
        l->v = realloc(l->v, l->cap * sizeof(*l->v));
    }
    l->v[l->n++] = s;
}

static void lines_free(struct lines *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
}

static void view_line(void *ud, const struct delta_op_view *op)
{
    struct buf b;
    buf_init(&b);
    view_text(&b, op);
    lines_add(ud, b.data);
}

/* The views of d, sorted, one a line. */
static char *views_sorted(const struct delta *d)
{
    struct lines l = {0};
    delta_foreach_op(d, view_line, &l);
    if (l.n)
        qsort(l.v, l.n, sizeof(*l.v), cmp_str);
    struct buf out;
    buf_init(&out);
    buf_adds(&out, "");
    for (size_t i = 0; i < l.n; i++)
        buf_adds(&out, l.v[i]);
    lines_free(&l);
    return out.data;
}

static void test_foreach_op(void **state)
{
    (void)state;
    struct delta *d = delta_new();
    char *got = views_sorted(d); /* empty: no call */
    assert_string_equal(got, "");
    free(got);

    delta_zadd(d, TA, ":w", 10, "a");
    delta_zrem(d, TA, ":w", "a"); /* only R */
    delta_zrem(d, TA, ":w", "b");
    delta_zadd(d, TA, ":w", 20, "b"); /* only Z 20 */
    delta_zadd(d, TA, ":w", 21, "b");
    delta_incr(d, TA, ":c", "zero", 1);
    delta_incr(d, TA, ":c", "zero", -1); /* no view */
    delta_incr(d, TA, ":c", "n", 2);
    delta_incr(d, TA, ":c", "n", 3);
    delta_mincr(d, TA, ":rep", "c1", -1);
    delta_mincr(d, TA, ":rep", "c2", 1);
    delta_mincr(d, TA, ":rep", "c2", -1); /* no view */
    delta_sadd(d, TT, ":inq", "c1");
    delta_sadd(d, TT, ":inq", "c1"); /* once */
    delta_hset(d, TT, ":rv", "f", "old");
    delta_hset(d, TT, ":rv", "f", "new");
    delta_ztrim(d, TT, ":contacts", 5);
    delta_ztrim(d, TT, ":contacts", 9);
    delta_ztrim(d, TT, ":contacts", 1);
    got = views_sorted(d); /* the views' order is not part of the contract */
    assert_string_equal(got, TA " " TA ":c C n 5\n" TA " " TA ":rep M c1 -1\n" TA " " TA
                                ":w R a\n" TA " " TA ":w Z b 21\n" TT " " TT ":contacts T 9\n" TT
                                " " TT ":inq S c1\n" TT " " TT ":rv H f new\n");
    free(got);
    delta_destroy(d);
}

/* Every item of every materialised op, in view_text's format. */
static void group_lines(struct delta *d, struct lines *l)
{
    for (size_t gi = 0; gi < delta_group_count(d); gi++) {
        struct delta_group g;
        delta_group_get(d, gi, &g);
        assert_true(delta_args_valid(g.nkeys, g.args, g.arglens, g.nargs));
        size_t i = 0;
        while (i < g.nargs) {
            char code = g.args[i][0];
            const char *key = g.keys[strtoull(g.args[i + 1], NULL, 10) - 1];
            size_t n = (size_t)strtoull(g.args[i + 2], NULL, 10), w = op_width(code);
            for (size_t k = 0; k < n; k++) {
                const char *a = g.args[i + 3 + k * w], *b = w == 2 ? g.args[i + 4 + k * w] : "";
                struct buf s;
                buf_init(&s);
                buf_printf(&s, "%s %s %c ", g.tag, key, code);
                if (code == 'Z')
                    buf_printf(&s, "%s %s\n", b, a);
                else if (w == 2)
                    buf_printf(&s, "%s %s\n", a, b);
                else
                    buf_printf(&s, "%s\n", a);
                lines_add(l, s.data);
            }
            i += 3 + n * w;
        }
    }
}

/* Many tags, keys and writes of every kind, with members re-written, removed and summed
 * to zero: growth paths of every array. */
static void build_big(struct delta *d)
{
    char tag[64], suf[64], m[64];
    for (int t = 0; t < 40; t++) {
        snprintf(tag, sizeof(tag), "csm:{a:demo:agent%d}", t);
        for (int k = 0; k < 30; k++) {
            snprintf(suf, sizeof(suf), ":2026-08:k%d", k);
            snprintf(m, sizeof(m), "m%d", k * t);
            delta_sadd(d, tag, suf, m);
            delta_incr(d, tag, suf, m, k - t);
            delta_mincr(d, tag, suf, "mm", k % 3 - 1);
            delta_zadd(d, tag, suf, (int64_t)k * 1000, m);
            if (k % 4 == 0)
                delta_zrem(d, tag, suf, m);
            if (k % 5 == 0)
                delta_hset(d, tag, suf, "h", m);
            if (k % 7 == 0)
                delta_ztrim(d, tag, suf, -k);
        }
    }
}

/* The views are exactly the items of the materialised ops, nothing more or less. */
static void test_foreach_matches_groups(void **state)
{
    (void)state;
    struct delta *d = delta_new();
    build_big(d);
    char m[32];
    for (int i = 0; i < 2345; i++) { /* chunked ops too */
        snprintf(m, sizeof(m), "big%d", i);
        delta_sadd(d, TA, ":s", m);
        delta_zadd(d, TA, ":z", i, m);
    }
    struct lines a = {0}, b = {0};
    delta_foreach_op(d, view_line, &a);
    group_lines(d, &b);
    assert_true(a.n > 5000);
    assert_int_equal(a.n, b.n);
    qsort(a.v, a.n, sizeof(*a.v), cmp_str);
    qsort(b.v, b.n, sizeof(*b.v), cmp_str);
    for (size_t i = 0; i < a.n; i++)
        if (strcmp(a.v[i], b.v[i]) != 0)
            fail_msg("item %zu: view %s op %s", i, a.v[i], b.v[i]);
    lines_free(&a);
    lines_free(&b);
    delta_destroy(d);
}

/* delta_merge: src's net writes on top of dst's, as if src's batch came after. */
static void test_merge(void **state)
{
    (void)state;
    struct delta *dst = delta_new(), *src = delta_new();
    delta_sadd(dst, TA, ":s", "a");
    delta_zadd(dst, TA, ":w", 1, "m1");
    delta_zadd(dst, TA, ":w", 2, "m2");
    delta_zrem(dst, TA, ":w", "m4");
    delta_hset(dst, TA, ":h", "f", "v1");
    delta_incr(dst, TA, ":c", "n", 2);
    delta_mincr(dst, TA, ":rep", "c1", 1);
    delta_ztrim(dst, TA, ":t", 5);
    delta_sadd(src, TT, ":x", "y"); /* a tag dst does not have */
    delta_sadd(src, TA, ":s", "b");
    delta_sadd(src, TA, ":s", "a");
    delta_zrem(src, TA, ":w", "m1");
    delta_zadd(src, TA, ":w", 7, "m2");
    delta_zadd(src, TA, ":w", 3, "m3");
    delta_zadd(src, TA, ":w", 4, "m4");
    delta_hset(src, TA, ":h", "f", "v2");
    delta_incr(src, TA, ":c", "n", -2); /* sums to 0 with dst's */
    delta_incr(src, TA, ":c", "k", 1);
    delta_mincr(src, TA, ":rep", "c1", 1);
    delta_ztrim(src, TA, ":t", 3);
    char *before = views_sorted(src);
    assert_false(delta_has_tag(dst, TT));
    delta_merge(dst, src);
    char *after = views_sorted(src);
    assert_string_equal(after, before); /* src is left alone */
    assert_true(delta_has_tag(dst, TA));
    assert_true(delta_has_tag(dst, TT));
    assert_false(delta_has_tag(dst, "csm:{nope}"));
    char *got = views_sorted(dst);
    assert_string_equal(got, TA " " TA ":c C k 1\n" TA " " TA ":h H f v2\n" TA " " TA
                                ":rep M c1 2\n" TA " " TA ":s S a\n" TA " " TA ":s S b\n" TA " " TA
                                ":t T 5\n" TA " " TA ":w R m1\n" TA " " TA ":w Z m2 7\n" TA " " TA
                                ":w Z m3 3\n" TA " " TA ":w Z m4 4\n" TT " " TT ":x S y\n");
    assert_int_equal(delta_group_count(dst), 2);
    struct delta_group g;
    delta_group_get(dst, 1, &g);
    assert_string_equal(g.tag, TT);
    free(got);
    free(after);
    /* into an empty delta: the same net writes */
    struct delta *e = delta_new();
    delta_merge(e, src);
    got = views_sorted(e);
    assert_string_equal(got, before);
    free(got);
    free(before);
    delta_destroy(e);
    delta_destroy(dst);
    delta_destroy(src);
}

/* ---- delta_args_valid ---- */

/* Splits spec on spaces into args: "''" is the empty string, "<NUL>" inside a word a NUL
 * byte. The strings are malloc'd into *args, lengths into *lens. */
static size_t parse_args(const char *spec, char ***args, size_t **lens)
{
    size_t n = 0, cap = 16;
    *args = calloc(cap, sizeof(**args));
    *lens = calloc(cap, sizeof(**lens));
    const char *p = spec;
    while (*p) {
        while (*p == ' ')
            p++;
        if (!*p)
            break;
        const char *e = strchr(p, ' ');
        size_t wl = e ? (size_t)(e - p) : strlen(p);
        char *s = calloc(wl + 1, 1);
        size_t sl = 0;
        if (!(wl == 2 && memcmp(p, "''", 2) == 0)) {
            for (size_t i = 0; i < wl;) {
                if (wl - i >= 5 && memcmp(p + i, "<NUL>", 5) == 0) {
                    s[sl++] = '\0';
                    i += 5;
                } else {
                    s[sl++] = p[i++];
                }
            }
        }
        if (n == cap) {
            cap *= 2;
            *args = realloc(*args, cap * sizeof(**args));
            *lens = realloc(*lens, cap * sizeof(**lens));
        }
        (*args)[n] = s;
        (*lens)[n] = sl;
        n++;
        p += wl;
    }
    return n;
}

static void free_args(char **args, size_t *lens, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(args[i]);
    free(args);
    free(lens);
}

static const struct args_case {
    const char *name;
    const char *args;
    size_t nkeys; /* 0 means 2 */
    bool valid;
} args_cases[] = {
    {.name = "no op", .args = "", .valid = true},
    {.name = "S", .args = "S 1 1 m", .valid = true},
    {.name = "S of 3, key 2", .args = "S 2 3 a b c", .valid = true},
    {.name = "S any member", .args = "S 1 2 1.5 ''", .valid = true},
    {.name = "Z", .args = "Z 1 2 5 a -7 b", .valid = true},
    {.name = "R", .args = "R 1 1 m", .valid = true},
    {.name = "H", .args = "H 1 1 f v", .valid = true},
    {.name = "H any value", .args = "H 1 2 f 1.5 '' ''", .valid = true},
    {.name = "C extremes", .args = "C 1 2 f -3 g 9223372036854775807", .valid = true},
    {.name = "M", .args = "M 2 1 f -9223372036854775808", .valid = true},
    {.name = "T", .args = "T 1 1 -100", .valid = true},
    {.name = "several", .args = "S 1 1 m Z 2 1 5 a T 2 1 0 C 1 1 f 1 R 2 1 b", .valid = true},
    {.name = "one key", .args = "S 1 1 m", .nkeys = 1, .valid = true},
    /* op codes */
    {.name = "unknown code", .args = "X 1 1 m"},
    {.name = "lowercase code", .args = "s 1 1 m"},
    {.name = "NUL code", .args = "<NUL> 1 1 m"},
    {.name = "NUL code, pair width", .args = "<NUL> 1 1 m n"},
    {.name = "two-letter code", .args = "SS 1 1 m"},
    {.name = "code with NUL", .args = "S<NUL> 1 1 m"},
    {.name = "empty code", .args = "'' 1 1 m"},
    /* key indices */
    {.name = "key 0", .args = "S 0 1 m"},
    {.name = "key > nkeys", .args = "S 3 1 m"},
    {.name = "key of none", .args = "S 1 1 m", .nkeys = (size_t)-1},
    {.name = "key -1", .args = "S -1 1 m"},
    {.name = "key not a number", .args = "S x 1 m"},
    {.name = "key empty", .args = "S '' 1 m"},
    {.name = "key 1.0", .args = "S 1.0 1 m"},
    {.name = "key with NUL", .args = "S 1<NUL> 1 m"},
    {.name = "key overflows", .args = "S 99999999999999999999 1 m"},
    /* item counts */
    {.name = "count 0", .args = "S 1 0"},
    {.name = "count 0 with item", .args = "S 1 0 m"},
    {.name = "count -1", .args = "S 1 -1 m"},
    {.name = "count not a number", .args = "S 1 x m"},
    {.name = "count empty", .args = "S 1 '' m"},
    {.name = "count 1.0", .args = "S 1 1.0 m"},
    {.name = "count > DELTA_CHUNK", .args = "S 1 1001 m"},
    {.name = "count overflows", .args = "S 1 18446744073709551617 m"},
    /* too few items, truncated headers, extra args */
    {.name = "S short", .args = "S 1 2 a"},
    {.name = "Z half a pair", .args = "Z 1 1 5"},
    {.name = "H short", .args = "H 1 2 f v g"},
    {.name = "C no delta", .args = "C 1 1 f"},
    {.name = "T no bound", .args = "T 1 1"},
    {.name = "code only", .args = "S"},
    {.name = "code and key", .args = "S 1"},
    {.name = "second op truncated", .args = "S 1 1 m C"},
    {.name = "second op no count", .args = "S 1 1 m C 1"},
    {.name = "extra arg", .args = "S 1 1 a b"},
    /* numbers */
    {.name = "score 1.5", .args = "Z 1 1 1.5 m"},
    {.name = "score word", .args = "Z 1 1 abc m"},
    {.name = "score empty", .args = "Z 1 1 '' m"},
    {.name = "score overflows", .args = "Z 1 1 99999999999999999999 m"},
    {.name = "score with NUL", .args = "Z 1 1 1<NUL> m"},
    {.name = "score minus", .args = "Z 1 1 - m"},
    {.name = "second score bad", .args = "Z 1 2 1 a x b"},
    {.name = "counter word", .args = "C 1 1 f x"},
    {.name = "counter empty", .args = "M 1 1 f ''"},
    {.name = "counter 1e3", .args = "C 1 1 f 1e3"},
    {.name = "counter overflows", .args = "C 1 1 f 9223372036854775808"},
    {.name = "counter underflows", .args = "C 1 1 f -9223372036854775809"},
    {.name = "second counter bad", .args = "M 1 2 f 1 g -"},
    {.name = "trim word", .args = "T 1 1 -"},
    {.name = "trim 1.5", .args = "T 1 1 1.5"},
    /* T takes exactly one bound */
    {.name = "T count 2", .args = "T 1 2 1 2"},
    {.name = "T count 0", .args = "T 1 0"},
};

static size_t case_nkeys(const struct args_case *c)
{
    return c->nkeys == (size_t)-1 ? 0 : c->nkeys ? c->nkeys : 2;
}

static void test_args_valid(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(args_cases) / sizeof(args_cases[0]); i++) {
        char **args;
        size_t *lens;
        size_t n = parse_args(args_cases[i].args, &args, &lens);
        bool got = delta_args_valid(case_nkeys(&args_cases[i]), (const char *const *)args, lens, n);
        if (got != args_cases[i].valid)
            fail_msg("%s: valid %d, want %d", args_cases[i].name, got, args_cases[i].valid);
        free_args(args, lens, n);
    }
    /* the chunk size is the limit: DELTA_CHUNK items pass, one more does not */
    struct buf spec;
    buf_init(&spec);
    for (int extra = 0; extra < 2; extra++) {
        buf_reset(&spec);
        buf_printf(&spec, "Z 1 %d", DELTA_CHUNK + extra);
        for (int k = 0; k < DELTA_CHUNK + extra; k++)
            buf_printf(&spec, " %d m%d", k, k);
        char **args;
        size_t *lens;
        size_t n = parse_args(spec.data, &args, &lens);
        assert_int_equal(delta_args_valid(1, (const char *const *)args, lens, n), extra == 0);
        free_args(args, lens, n);
    }
    buf_release(&spec);
}

/* ---- journal ---- */

struct collected {
    struct buf text;
    size_t groups;
    int stop_after; /* return 1 from the callback after this many groups (0: never) */
};

static int collect_cb(void *ud, const struct delta_group *g)
{
    struct collected *c = ud;
    struct buf t;
    buf_init(&t);
    group_text(g, &t);
    buf_add(&c->text, t.data, t.len);
    buf_addc(&c->text, '\n');
    buf_release(&t);
    c->groups++;
    return c->stop_after && (int)c->groups >= c->stop_after ? 1 : 0;
}

static void direct_text(struct delta *d, struct buf *out)
{
    struct buf t;
    buf_init(&t);
    for (size_t i = 0; i < delta_group_count(d); i++) {
        struct delta_group g;
        delta_group_get(d, i, &g);
        group_text(&g, &t);
        buf_add(out, t.data, t.len);
        buf_addc(out, '\n');
    }
    buf_release(&t);
}

/* Compares decoded groups with the materialised ones, arg by arg (binary-exact). */
struct same {
    struct delta *d;
    size_t i;
};

static int same_cb(void *ud, const struct delta_group *g)
{
    struct same *s = ud;
    struct delta_group w;
    assert_true(s->i < delta_group_count(s->d));
    delta_group_get(s->d, s->i++, &w);
    assert_string_equal(g->tag, w.tag);
    assert_int_equal(g->nkeys, w.nkeys);
    for (size_t k = 0; k < w.nkeys; k++)
        assert_string_equal(g->keys[k], w.keys[k]);
    assert_int_equal(g->nargs, w.nargs);
    for (size_t k = 0; k < w.nargs; k++) {
        assert_int_equal(g->arglens[k], w.arglens[k]);
        assert_memory_equal(g->args[k], w.args[k], w.arglens[k]);
        assert_int_equal(g->args[k][g->arglens[k]], '\0');
    }
    return 0;
}

static void test_journal_round_trip(void **state)
{
    (void)state;
    struct delta *d = delta_new();
    delta_sadd(d, TA, ":2026-08:inq", "c1");
    delta_incr(d, TA, ":2026-08:c", "wait_ms", 45000);
    delta_zadd(d, TA, ":2026-08:w", 45000, "1785600000000:conv1");
    delta_zrem(d, TA, ":2026-08:w", "1785600000000:conv0");
    delta_incr(d, TT, ":2026-08:c", "wait_ms", 45000);
    delta_hset(d, TT, "", "f", ""); /* empty strings survive */
    delta_sadd(d, TT, "", "");
    delta_mincr(d, TA, ":2026-08:rep", "客户", 1);
    delta_ztrim(d, TA, ":contacts", -5);
    build_big(d);
    char m[32];
    for (int i = 0; i < 1500; i++) { /* chunked */
        snprintf(m, sizeof(m), "m%d", i);
        delta_sadd(d, TT, ":big", m);
        delta_hset(d, TT, ":bigh", m, m);
    }

    struct buf j, want;
    buf_init(&j);
    buf_init(&want);
    delta_encode(d, &j);
    direct_text(d, &want);

    struct collected c = {0};
    buf_init(&c.text);
    assert_int_equal(delta_decode_groups(j.data, j.len, collect_cb, &c), 0);
    assert_int_equal(c.groups, delta_group_count(d));
    assert_string_equal(c.text.data, want.data);
    struct same s = {.d = d};
    assert_int_equal(delta_decode_groups(j.data, j.len, same_cb, &s), 0);
    assert_int_equal(s.i, delta_group_count(d));

    /* the callback's non-zero return stops decoding and is returned */
    buf_reset(&c.text);
    c.groups = 0;
    c.stop_after = 2;
    assert_int_equal(delta_decode_groups(j.data, j.len, collect_cb, &c), 1);
    assert_int_equal(c.groups, 2);

    /* encoding appends; encoding again gives the same bytes */
    struct buf j2;
    buf_init(&j2);
    buf_adds(&j2, "xy");
    delta_encode(d, &j2);
    assert_int_equal(j2.len, j.len + 2);
    assert_memory_equal(j2.data + 2, j.data, j.len);

    buf_release(&j2);
    buf_release(&c.text);
    buf_release(&j);
    buf_release(&want);
    delta_destroy(d);
}

/* Touches every string (so ASan sees any bad pointer) and checks the group is one
 * csm_apply can take. */
static int count_cb(void *ud, const struct delta_group *g)
{
    size_t sum = strlen(g->tag);
    for (size_t i = 0; i < g->nkeys; i++)
        sum += strlen(g->keys[i]);
    for (size_t i = 0; i < g->nargs; i++)
        sum += g->arglens[i] + (g->args[i][g->arglens[i]] == '\0');
    if (!delta_args_valid(g->nkeys, g->args, g->arglens, g->nargs))
        fail_msg("decoded an invalid op list");
    *(size_t *)ud += sum;
    return 0;
}

static void small_journal(struct delta *d, struct buf *j)
{
    delta_sadd(d, TA, ":2026-08:inq", "c1");
    delta_sadd(d, TA, ":2026-08:inq", "c2");
    delta_incr(d, TA, ":2026-08:c", "wait_ms", 45000);
    delta_zadd(d, TA, ":2026-08:w", 45000, "1785600000000:conv1");
    delta_zrem(d, TA, ":2026-08:w", "x");
    delta_hset(d, TT, ":rv", "f", "0.5");
    delta_mincr(d, TT, ":2026-08:rep", "c1", -1);
    delta_incr(d, TT, ":2026-08:c", "wait_ms", 45000);
    delta_ztrim(d, TT, ":contacts", 1234);
    delta_encode(d, j);
}

static void test_journal_truncations(void **state)
{
    (void)state;
    struct delta *d = delta_new();
    struct buf j;
    buf_init(&j);
    small_journal(d, &j);
    /* and a journal with a chunked op */
    struct delta *d2 = delta_new();
    char m[16];
    for (int i = 0; i < 1100; i++) {
        snprintf(m, sizeof(m), "%d", i);
        delta_sadd(d2, TA, ":s", m);
    }
    struct buf j2;
    buf_init(&j2);
    delta_encode(d2, &j2);
    struct buf *js[] = {&j, &j2};
    for (int w = 0; w < 2; w++) {
        for (size_t n = 0; n < js[w]->len; n++) {
            /* an exact-size heap copy: any read past n is an ASan error */
            char *p = malloc(n ? n : 1);
            memcpy(p, js[w]->data, n);
            size_t sum = 0;
            int rc = delta_decode_groups(p, n, count_cb, &sum);
            if (rc != -1)
                fail_msg("truncated to %zu of %zu bytes: rc %d, want -1", n, js[w]->len, rc);
            free(p);
        }
        size_t sum = 0;
        assert_int_equal(delta_decode_groups(js[w]->data, js[w]->len, count_cb, &sum), 0);
    }
    buf_release(&j);
    buf_release(&j2);
    delta_destroy(d);
    delta_destroy(d2);
}

/* A journal with trailing bytes after its last group is malformed too. */
static void test_journal_trailing(void **state)
{
    (void)state;
    struct delta *d = delta_new();
    delta_sadd(d, TA, ":inq", "c1");
    struct buf j;
    buf_init(&j);
    delta_encode(d, &j);
    buf_addc(&j, 0);
    size_t sum = 0;
    assert_int_equal(delta_decode_groups(j.data, j.len, count_cb, &sum), -1);
    buf_release(&j);
    delta_destroy(d);
}

static void test_journal_bit_flips(void **state)
{
    (void)state;
    struct delta *d = delta_new();
    struct buf j;
    buf_init(&j);
    small_journal(d, &j);
    char *p = malloc(j.len);
    int ok = 0;
    for (size_t k = 0; k < j.len; k++) {
        for (int bit = 0; bit < 8; bit++) {
            memcpy(p, j.data, j.len);
            p[k] ^= (char)(1u << bit);
            size_t sum = 0;
            int rc = delta_decode_groups(p, j.len, count_cb, &sum);
            if (rc != 0 && rc != -1)
                fail_msg("byte %zu bit %d: rc %d", k, bit, rc);
            ok += rc == 0;
        }
    }
    assert_true(ok > 0); /* flips inside member strings still decode */
    free(p);
    buf_release(&j);
    delta_destroy(d);
}

/* One group (tag "t", keys "k1".."kN") with the given op list, as delta_encode writes it. */
static void encode_group(struct buf *out, size_t nkeys, char **args, const size_t *lens, size_t n)
{
    buf_add_u64(out, 1);
    buf_add_str(out, "t", 1);
    buf_add_u64(out, nkeys);
    for (size_t k = 0; k < nkeys; k++) {
        char key[32];
        snprintf(key, sizeof(key), "k%zu", k + 1);
        buf_add_str(out, key, strlen(key));
    }
    buf_add_u64(out, n);
    for (size_t i = 0; i < n; i++)
        buf_add_str(out, args[i], lens[i]);
}

/* Hand-made records: lengths and counts that lie, bad structure, and every op list of the
 * delta_args_valid table inside a record (decoded only when valid). */
static void test_journal_malformed(void **state)
{
    (void)state;
    struct {
        const char *name;
        unsigned char b[40];
        size_t n;
    } cases[] = {
        {.name = "empty", .n = 0},
        {.name = "one group, nothing else", .b = {1}, .n = 1},
        {.name = "tag longer than record", .b = {1, 9, 'a'}, .n = 3},
        {.name = "key count huge", .b = {1, 1, 't', 0xff, 0xff, 0xff, 0xff, 0x0f}, .n = 8},
        {.name = "arg count huge", .b = {1, 1, 't', 0, 0xff, 0xff, 0xff, 0xff, 0x0f}, .n = 9},
        {.name = "varint of 11 bytes",
         .b = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01},
         .n = 11},
        {.name = "group count lies", .b = {2, 1, 't', 0, 0}, .n = 5},
        {.name = "arg count lies",
         .b = {1, 1, 't', 1, 1, 'k', 5, 1, 'S', 1, '1', 1, '1', 1, 'm'},
         .n = 15},
        {.name = "key string cut", .b = {1, 1, 't', 1, 5, 'k'}, .n = 6},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        unsigned char *p = malloc(cases[i].n ? cases[i].n : 1);
        memcpy(p, cases[i].b, cases[i].n);
        size_t sum = 0;
        int rc = delta_decode_groups(p, cases[i].n, count_cb, &sum);
        if (rc != -1)
            fail_msg("%s: rc %d, want -1", cases[i].name, rc);
        free(p);
    }
    for (size_t i = 0; i < sizeof(args_cases) / sizeof(args_cases[0]); i++) {
        char **args;
        size_t *lens;
        size_t n = parse_args(args_cases[i].args, &args, &lens);
        struct buf j;
        buf_init(&j);
        encode_group(&j, case_nkeys(&args_cases[i]), args, lens, n);
        char *p = malloc(j.len);
        memcpy(p, j.data, j.len);
        size_t sum = 0;
        int rc = delta_decode_groups(p, j.len, count_cb, &sum);
        if (rc != (args_cases[i].valid ? 0 : -1))
            fail_msg("%s: rc %d", args_cases[i].name, rc);
        free(p);
        buf_release(&j);
        free_args(args, lens, n);
    }
    /* the smallest valid records */
    unsigned char zero[] = {0};
    size_t sum = 0;
    assert_int_equal(delta_decode_groups(zero, 1, count_cb, &sum), 0);
    unsigned char one[] = {1, 1, 't', 1, 1, 'k', 4, 1, 'S', 1, '1', 1, '1', 1, 'm'};
    struct collected c = {0};
    buf_init(&c.text);
    assert_int_equal(delta_decode_groups(one, sizeof(one), collect_cb, &c), 0);
    assert_string_equal(c.text.data, "t|k|S 1 1 m;\n");
    buf_release(&c.text);
    unsigned char noop[] = {1, 1, 't', 1, 1, 'k', 0};
    buf_init(&c.text);
    assert_int_equal(delta_decode_groups(noop, sizeof(noop), collect_cb, &c), 0);
    assert_string_equal(c.text.data, "t|k|\n");
    buf_release(&c.text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_counters),
        cmocka_unit_test(test_counters_all_zero),
        cmocka_unit_test(test_counter_extremes),
        cmocka_unit_test(test_sets),
        cmocka_unit_test(test_zset_net),
        cmocka_unit_test(test_hash_net),
        cmocka_unit_test(test_trim_highest),
        cmocka_unit_test(test_layout),
        cmocka_unit_test(test_group_order),
        cmocka_unit_test(test_chunking),
        cmocka_unit_test(test_foreach_op),
        cmocka_unit_test(test_foreach_matches_groups),
        cmocka_unit_test(test_merge),
        cmocka_unit_test(test_args_valid),
        cmocka_unit_test(test_journal_round_trip),
        cmocka_unit_test(test_journal_truncations),
        cmocka_unit_test(test_journal_trailing),
        cmocka_unit_test(test_journal_bit_flips),
        cmocka_unit_test(test_journal_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
