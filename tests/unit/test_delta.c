/* Unit tests for aggregator/delta: exact materialised groups (counter coalescing, set
 * dedup, ordered ops, first-use group order, 1-based key indices), the journal round
 * trip, and malformed journals: every truncation, every bit flip, hand-made bad records
 * (all must give -1 or a usable decode, never a crash; run under ASan). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/delta.h"
#include "common/buf.h"

#define TA "csm:{a:demo:x1}"
#define TT "csm:{t:demo}"

/* A group as text: "tag|k1,k2|op a1 a2 a3;op ..." — easy to compare exactly. */
static void group_text(const struct delta_group *g, struct buf *out)
{
    buf_reset(out);
    buf_adds(out, g->tag);
    buf_addc(out, '|');
    for (size_t i = 0; i < g->nkeys; i++) {
        if (i)
            buf_addc(out, ',');
        buf_adds(out, g->keys[i]);
    }
    buf_addc(out, '|');
    for (size_t i = 0; i < g->nargs; i++) {
        assert_int_equal(g->arglens[i], strlen(g->args[i]));
        buf_adds(out, g->args[i]);
        buf_addc(out, (i % 4 == 3) ? ';' : ' ');
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
    /* same field name under another key, and C vs M on the same key+field, stay apart */
    delta_incr(d, TA, ":2026-09:c", "wait_ms", 7);
    delta_incr(d, TA, ":2026-08:rep", "c1", 5);
    assert_false(delta_empty(d));
    const char *want[] = {TA "|" TA ":2026-08:c," TA ":2026-08:rep," TA ":2026-09:c|"
                             "C 1 wait_ms 40000;M 2 c1 2;M 2 c2 -1;C 3 wait_ms 7;C 2 c1 5;"};
    assert_groups(d, want, 1);
    delta_destroy(d);
}

static void test_counters_all_zero(void **state)
{
    (void)state;
    struct delta *d = delta_new();
    delta_incr(d, TA, ":c", "unans", 1);
    delta_incr(d, TA, ":c", "unans", -1);
    /* the group and its key stay (the tag was touched), with no op */
    const char *want[] = {TA "|" TA ":c|"};
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
    const char *want[] = {TA "|" TA ":c|C 1 big 9223372036854775807;C 1 small "
                             "-9223372036854775808;"};
    assert_groups(d, want, 1);
    delta_destroy(d);
}

static void test_sets_and_order(void **state)
{
    (void)state;
    struct delta *d = delta_new();
    delta_sadd(d, TA, ":2026-08:inq", "c1");
    delta_zadd(d, TA, ":periods", 1785513600000, "2026-08");
    delta_sadd(d, TA, ":2026-08:inq", "c1"); /* dup within the batch: once */
    delta_sadd(d, TA, ":2026-08:inq", "c2");
    delta_sadd(d, TA, ":2026-08:ord", "c1"); /* same member, other key: kept */
    delta_hset(d, TA, ":2026-08:rv", "manager:follow_up", "0.8");
    delta_hset(d, TA, ":2026-08:rv", "manager:follow_up", "0.9"); /* both, in order */
    delta_zrem(d, TA, ":2026-08:w", "1785600000000:conv1");
    delta_zadd(d, TA, ":2026-08:w", -5, "m");
    delta_ztrim(d, TA, ":2026-08:w", -100);
    delta_incr(d, TA, ":2026-08:c", "wait_n", 1);
    delta_sadd(d, TA, "", "member with spaces");
    const char *want[] = {
        TA "|" TA ":2026-08:inq," TA ":periods," TA ":2026-08:ord," TA ":2026-08:rv," TA
           ":2026-08:w," TA ":2026-08:c," TA "|"
           "S 1 c1 ;Z 2 1785513600000 2026-08;S 1 c2 ;S 3 c1 ;H 4 manager:follow_up 0.8;"
           "H 4 manager:follow_up 0.9;R 5 1785600000000:conv1 ;Z 5 -5 m;T 5 -100 ;"
           "S 7 member with spaces ;C 6 wait_n 1;"};
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
        TT "|" TT ":2026-08:c," TT ":2026-08:inq|S 2 c1 ;C 1 wait_n 1;",
        TA "|" TA ":2026-08:inq," TA ":2026-08:c|S 1 c1 ;C 2 wait_n 1;",
        "csm:{r}|csm:{r}:shops|S 1 demo ;",
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
    /* reusable after reset; set dedup starts afresh */
    delta_sadd(d, TA, ":2026-08:inq", "c1");
    const char *want2[] = {TA "|" TA ":2026-08:inq|S 1 c1 ;"};
    assert_groups(d, want2, 1);
    delta_destroy(d);
}

/* Many tags, keys and ops: growth paths of every array. */
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
            delta_zadd(d, tag, suf, (int64_t)k * 1000, m);
        }
    }
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

static void test_journal_round_trip(void **state)
{
    (void)state;
    struct delta *d = delta_new();
    delta_sadd(d, TA, ":2026-08:inq", "c1");
    delta_incr(d, TA, ":2026-08:c", "wait_ms", 45000);
    delta_zadd(d, TA, ":2026-08:w", 45000, "1785600000000:conv1");
    delta_incr(d, TT, ":2026-08:c", "wait_ms", 45000);
    delta_hset(d, TT, "", "f", ""); /* empty strings survive */
    delta_mincr(d, TA, ":2026-08:rep", "客户", 1);
    build_big(d);

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

    /* the callback's non-zero return stops decoding and is returned */
    buf_reset(&c.text);
    c.groups = 0;
    c.stop_after = 2;
    assert_int_equal(delta_decode_groups(j.data, j.len, collect_cb, &c), 1);
    assert_int_equal(c.groups, 2);

    /* encoding appends */
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

static int count_cb(void *ud, const struct delta_group *g)
{
    /* touch every string so ASan sees any bad pointer */
    size_t sum = strlen(g->tag);
    for (size_t i = 0; i < g->nkeys; i++)
        sum += strlen(g->keys[i]);
    for (size_t i = 0; i < g->nargs; i++)
        sum += g->arglens[i] + (g->args[i][g->arglens[i]] == '\0');
    *(size_t *)ud += sum;
    return 0;
}

static void test_journal_truncations(void **state)
{
    (void)state;
    struct delta *d = delta_new();
    delta_sadd(d, TA, ":2026-08:inq", "c1");
    delta_incr(d, TA, ":2026-08:c", "wait_ms", 45000);
    delta_incr(d, TT, ":2026-08:c", "wait_ms", 45000);
    delta_sadd(d, TT, ":2026-08:inq", "c1");
    struct buf j;
    buf_init(&j);
    delta_encode(d, &j);
    for (size_t n = 0; n < j.len; n++) {
        /* an exact-size heap copy: any read past n is an ASan error */
        char *p = malloc(n ? n : 1);
        memcpy(p, j.data, n);
        size_t sum = 0;
        int rc = delta_decode_groups(p, n, count_cb, &sum);
        if (rc != -1)
            fail_msg("truncated to %zu of %zu bytes: rc %d, want -1", n, j.len, rc);
        free(p);
    }
    buf_release(&j);
    delta_destroy(d);
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
    delta_sadd(d, TA, ":2026-08:inq", "c1");
    delta_zadd(d, TA, ":2026-08:w", 45000, "1785600000000:conv1");
    delta_incr(d, TT, ":2026-08:c", "wait_ms", 45000);
    struct buf j;
    buf_init(&j);
    delta_encode(d, &j);
    char *p = malloc(j.len);
    int ok = 0;
    for (size_t k = 0; k < j.len; k++) {
        for (int bit = 0; bit < 8; bit++) {
            memcpy(p, j.data, j.len);
            p[k] ^= (char)(1u << bit);
            size_t sum = 0;
            int rc = delta_decode_groups(p, j.len, count_cb, &sum);
            assert_true(rc == 0 || rc == -1);
            ok += rc == 0;
        }
    }
    assert_true(ok > 0); /* flips inside strings still decode */
    free(p);
    buf_release(&j);
    delta_destroy(d);
}

/* Hand-made records: lengths and counts that lie, bad structure. */
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
        /* one op needs 4 args */
        {.name = "args not a multiple of 4", .b = {1, 1, 't', 1, 1, 'k', 1, 1, 'S'}, .n = 9},
        /* key index 2 of 1 key */
        {.name = "key index out of range",
         .b = {1, 1, 't', 1, 1, 'k', 4, 1, 'S', 1, '2', 1, 'm', 0},
         .n = 14},
        {.name = "key index 0", .b = {1, 1, 't', 1, 1, 'k', 4, 1, 'S', 1, '0', 1, 'm', 0}, .n = 14},
        {.name = "unknown op", .b = {1, 1, 't', 1, 1, 'k', 4, 1, 'X', 1, '1', 1, 'm', 0}, .n = 14},
        {.name = "NUL op", .b = {1, 1, 't', 1, 1, 'k', 4, 1, 0, 1, '1', 1, 'm', 0}, .n = 14},
        {.name = "two-letter op",
         .b = {1, 1, 't', 1, 1, 'k', 4, 2, 'S', 'S', 1, '1', 1, 'm', 0},
         .n = 15},
        {.name = "counter not a number",
         .b = {1, 1, 't', 1, 1, 'k', 4, 1, 'C', 1, '1', 1, 'f', 1, 'x'},
         .n = 15},
        {.name = "counter empty",
         .b = {1, 1, 't', 1, 1, 'k', 4, 1, 'M', 1, '1', 1, 'f', 0},
         .n = 14},
        {.name = "counter overflows int64",
         .b = {1,   1,   't', 1,   1,   'k', 4,   1,   'C', 1,   '1', 1,   'f', 19,  '9', '9', '9',
               '9', '9', '9', '9', '9', '9', '9', '9', '9', '9', '9', '9', '9', '9', '9', '9'},
         .n = 33},
        {.name = "score not a number",
         .b = {1, 1, 't', 1, 1, 'k', 4, 1, 'Z', 1, '1', 3, '1', '.', '5', 1, 'm'},
         .n = 17},
        {.name = "trim bound not a number",
         .b = {1, 1, 't', 1, 1, 'k', 4, 1, 'T', 1, '1', 1, '-', 0},
         .n = 14},
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
    /* the smallest valid records */
    unsigned char zero[] = {0};
    size_t sum = 0;
    assert_int_equal(delta_decode_groups(zero, 1, count_cb, &sum), 0);
    unsigned char one[] = {1, 1, 't', 1, 1, 'k', 4, 1, 'S', 1, '1', 1, 'm', 0};
    struct collected c = {0};
    buf_init(&c.text);
    assert_int_equal(delta_decode_groups(one, sizeof(one), collect_cb, &c), 0);
    assert_string_equal(c.text.data, "t|k|S 1 m ;\n");
    buf_release(&c.text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_counters),
        cmocka_unit_test(test_counters_all_zero),
        cmocka_unit_test(test_counter_extremes),
        cmocka_unit_test(test_sets_and_order),
        cmocka_unit_test(test_group_order),
        cmocka_unit_test(test_journal_round_trip),
        cmocka_unit_test(test_journal_truncations),
        cmocka_unit_test(test_journal_trailing),
        cmocka_unit_test(test_journal_bit_flips),
        cmocka_unit_test(test_journal_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
