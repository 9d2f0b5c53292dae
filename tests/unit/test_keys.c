/* Unit tests for aggregator/keys: id escaping (exact bytes), unescaping and its malformed
 * inputs, the exact shape of every key, and the Redis Cluster rule that a key's hash tag
 * is the text between its first '{' and the first '}' after it — so every key of one
 * owner, partition or bucket hashes to one slot whatever the ids contain. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/keys.h"
#include "common/buf.h"

/* ---- escaping ---- */

static const struct esc_case {
    const char *id, *want;
} esc_cases[] = {
    {.id = "", .want = ""},
    {.id = "x1", .want = "x1"},
    {.id = "shop:1", .want = "shop%3A1"},
    {.id = "x{1}", .want = "x%7B1%7D"},
    {.id = "a b", .want = "a%20b"},
    {.id = "100%", .want = "100%25"},
    {.id = "%3A", .want = "%253A"}, /* an escape-looking id is escaped again */
    {.id = "\x01\x1f\t\n\r", .want = "%01%1F%09%0A%0D"},
    {.id = "del\x7f", .want = "del%7F"},
    {.id = "~!@#$^&*()_+-=[]|\\;'\",.<>/?`",
     .want = "~!@#$^&*()_+-=[]|\\;'\",.<>/?`"}, /* other printable ASCII passes */
    {.id = "店铺:1", .want = "店铺%3A1"},       /* UTF-8 bytes (>= 0x80) pass through */
    {.id = "\xc3\xa9t\xc3\xa9", .want = "\xc3\xa9t\xc3\xa9"},
    {.id = "\xff\x80", .want = "\xff\x80"}, /* even invalid UTF-8: bytes, not characters */
    {.id = "{}:% ", .want = "%7B%7D%3A%25%20"},
};

static void test_escape(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(esc_cases) / sizeof(esc_cases[0]); i++) {
        struct buf b;
        buf_init(&b);
        buf_adds(&b, "pre|"); /* appends, does not reset */
        keys_escape(&b, esc_cases[i].id);
        char want[256];
        snprintf(want, sizeof(want), "pre|%s", esc_cases[i].want);
        assert_string_equal(b.data, want);
        assert_int_equal(b.len, strlen(want));

        /* round trip */
        char *u = keys_unescape(b.data + 4, b.len - 4);
        assert_non_null(u);
        assert_string_equal(u, esc_cases[i].id);
        free(u);
        buf_release(&b);
    }
}

/* Every byte value 1..255 alone: escaped exactly when it must be, and round-trips. */
static void test_escape_every_byte(void **state)
{
    (void)state;
    for (int c = 1; c < 256; c++) {
        char id[2] = {(char)c, 0};
        struct buf b;
        buf_init(&b);
        keys_escape(&b, id);
        int must = c == '%' || c == ':' || c == '{' || c == '}' || c <= 0x20 || c == 0x7f;
        if (must) {
            char want[4];
            snprintf(want, sizeof(want), "%%%02X", c);
            assert_string_equal(b.data, want);
        } else {
            assert_int_equal(b.len, 1);
            assert_int_equal((unsigned char)b.data[0], c);
        }
        /* never any of the tag or separator characters in an escaped id */
        assert_null(strpbrk(b.data, ":{} "));
        char *u = keys_unescape(b.data, b.len);
        assert_non_null(u);
        assert_memory_equal(u, id, 2);
        free(u);
        buf_release(&b);
    }
}

static const struct unesc_case {
    const char *s;
    size_t n;         /* 0: strlen */
    const char *want; /* NULL: malformed */
} unesc_cases[] = {
    {.s = "", .want = ""},
    {.s = "abc", .want = "abc"},
    {.s = "a%3Ab", .want = "a:b"},
    {.s = "%7B%7D", .want = "{}"},
    {.s = "%E5%BA%97", .want = "店"}, /* escaped UTF-8 bytes come back as they were */
    {.s = "%FF", .want = "\xff"},
    {.s = "%41", .want = "A"}, /* not canonical, but a valid escape */
    {.s = "%", .want = NULL},
    {.s = "%4", .want = NULL},
    {.s = "a%", .want = NULL},
    {.s = "a%3", .want = NULL},
    {.s = "%4G", .want = NULL},
    {.s = "%G4", .want = NULL},
    {.s = "%zz", .want = NULL},
    {.s = "%3a", .want = NULL}, /* keys_escape writes upper case only */
    {.s = "%00", .want = NULL}, /* ids hold no NUL */
    {.s = "%%41", .want = NULL},
    {.s = "ok%20%2", .want = NULL},
    /* n bounds the input: the escape must fit inside n, not run past it */
    {.s = "%3A", .n = 2, .want = NULL},
    {.s = "ab%3A", .n = 2, .want = "ab"},
};

static void test_unescape(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(unesc_cases) / sizeof(unesc_cases[0]); i++) {
        const struct unesc_case *c = &unesc_cases[i];
        size_t n = c->n ? c->n : strlen(c->s);
        /* a heap copy of exactly n bytes, so ASan catches a read past n */
        char *in = malloc(n ? n : 1);
        memcpy(in, c->s, n);
        char *u = keys_unescape(in, n);
        if (!c->want) {
            if (u)
                fail_msg("case %zu '%s': want NULL, got '%s'", i, c->s, u);
        } else {
            if (!u)
                fail_msg("case %zu '%s': want '%s', got NULL", i, c->s, c->want);
            assert_string_equal(u, c->want);
        }
        free(u);
        free(in);
    }
}

/* ---- key shapes ---- */

/* The hash tag Redis Cluster uses: between the first '{' and the first '}' after it. */
static char *cluster_tag(const char *key)
{
    const char *o = strchr(key, '{');
    if (!o)
        return NULL;
    const char *c = strchr(o + 1, '}');
    if (!c || c == o + 1)
        return NULL;
    return strndup(o + 1, (size_t)(c - o - 1));
}

static void assert_tag(const char *key, const char *want_tag)
{
    char *t = cluster_tag(key);
    assert_non_null(t);
    assert_string_equal(t, want_tag);
    free(t);
    /* exactly one '{' and one '}' in the whole key: ids never add more */
    assert_ptr_equal(strchr(key, '{'), strrchr(key, '{'));
    assert_ptr_equal(strchr(key, '}'), strrchr(key, '}'));
}

static const struct owner_case {
    enum keys_owner o;
    const char *prefix, *shop, *agent, *want, *tag;
} owner_cases[] = {
    {.o = KEYS_AGENT,
     .prefix = "csm:",
     .shop = "demo",
     .agent = "x1",
     .want = "csm:{a:demo:x1}",
     .tag = "a:demo:x1"},
    {.o = KEYS_AGENT,
     .prefix = "csm:",
     .shop = "shop:1",
     .agent = "x{1}",
     .want = "csm:{a:shop%3A1:x%7B1%7D}",
     .tag = "a:shop%3A1:x%7B1%7D"},
    /* "a:b" + "c" and "a" + "b:c" must not collide */
    {.o = KEYS_AGENT,
     .prefix = "csm:",
     .shop = "a:b",
     .agent = "c",
     .want = "csm:{a:a%3Ab:c}",
     .tag = "a:a%3Ab:c"},
    {.o = KEYS_AGENT,
     .prefix = "csm:",
     .shop = "a",
     .agent = "b:c",
     .want = "csm:{a:a:b%3Ac}",
     .tag = "a:a:b%3Ac"},
    {.o = KEYS_AGENT,
     .prefix = "",
     .shop = "店",
     .agent = "张 三",
     .want = "{a:店:张%20三}",
     .tag = "a:店:张%20三"},
    {.o = KEYS_TEAM,
     .prefix = "csm:",
     .shop = "shop:1",
     .agent = "ignored",
     .want = "csm:{t:shop%3A1}",
     .tag = "t:shop%3A1"},
    {.o = KEYS_TEAM,
     .prefix = "csm:",
     .shop = "demo",
     .agent = NULL,
     .want = "csm:{t:demo}",
     .tag = "t:demo"},
    {.o = KEYS_UNATTRIBUTED,
     .prefix = "csm:",
     .shop = "}{",
     .agent = NULL,
     .want = "csm:{u:%7D%7B}",
     .tag = "u:%7D%7B"},
    {.o = KEYS_UNATTRIBUTED,
     .prefix = "x:y:",
     .shop = "demo",
     .agent = "z",
     .want = "x:y:{u:demo}",
     .tag = "u:demo"},
};

static void test_owner_tag(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(owner_cases) / sizeof(owner_cases[0]); i++) {
        const struct owner_case *c = &owner_cases[i];
        struct buf b;
        buf_init(&b);
        keys_owner_tag(&b, c->prefix, c->o, c->shop, c->agent);
        assert_string_equal(b.data, c->want);
        assert_tag(b.data, c->tag);
        /* a key under the owner (as delta/agg build them) keeps the tag */
        buf_adds(&b, ":2026-08:inq");
        assert_tag(b.data, c->tag);
        buf_release(&b);
    }
}

static void test_partition_tag(void **state)
{
    (void)state;
    static const struct {
        const char *topic;
        int32_t part;
        const char *want, *tag;
    } cases[] = {
        {.topic = "cs.chat", .part = 0, .want = "csm:{p:cs.chat:0}", .tag = "p:cs.chat:0"},
        {.topic = "shop.orders",
         .part = 11,
         .want = "csm:{p:shop.orders:11}",
         .tag = "p:shop.orders:11"},
        {.topic = "t{x}",
         .part = 2147483647,
         .want = "csm:{p:t%7Bx%7D:2147483647}",
         .tag = "p:t%7Bx%7D:2147483647"},
        {.topic = "a:b", .part = -1, .want = "csm:{p:a%3Ab:-1}", .tag = "p:a%3Ab:-1"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct buf b;
        buf_init(&b);
        keys_partition_tag(&b, "csm:", cases[i].topic, cases[i].part);
        assert_string_equal(b.data, cases[i].want);
        buf_adds(&b, ":meta");
        assert_tag(b.data, cases[i].tag);
        buf_release(&b);
    }
}

static void test_hash(void **state)
{
    (void)state;
    /* FNV-1a 64 reference values */
    assert_true(keys_hash("") == 1469598103934665603ULL);
    assert_true(keys_hash("a") == 4953267810257967366ULL);
    assert_true(keys_hash("demo:c1") % KEYS_CONTACT_BUCKETS == 26);
    assert_true(keys_hash("ev-1") % KEYS_DEDUP_BUCKETS == 6);
}

static void test_contact(void **state)
{
    (void)state;
    static const struct {
        const char *shop, *customer, *want, *tag;
    } cases[] = {
        /* bucket = FNV-1a("escaped shop:escaped customer") % 64 */
        {.shop = "demo", .customer = "c1", .want = "csm:{c:26}:demo:c1", .tag = "c:26"},
        {.shop = "shop:1", .customer = "c{1}", .want = "csm:{c:1}:shop%3A1:c%7B1%7D", .tag = "c:1"},
        {.shop = "demo", .customer = "客户", .want = "csm:{c:60}:demo:客户", .tag = "c:60"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct buf b;
        buf_init(&b);
        keys_contact(&b, "csm:", cases[i].shop, cases[i].customer);
        assert_string_equal(b.data, cases[i].want);
        assert_tag(b.data, cases[i].tag);
        buf_release(&b);
    }
    /* every bucket is in range, and the same customer always maps to the same key */
    for (int i = 0; i < 500; i++) {
        char cust[32];
        snprintf(cust, sizeof(cust), "cust-%d", i);
        struct buf a, b;
        buf_init(&a);
        buf_init(&b);
        keys_contact(&a, "csm:", "demo", cust);
        keys_contact(&b, "csm:", "demo", cust);
        assert_string_equal(a.data, b.data);
        unsigned n = 99;
        assert_int_equal(sscanf(a.data, "csm:{c:%u}:", &n), 1);
        assert_true(n < KEYS_CONTACT_BUCKETS);
        buf_release(&a);
        buf_release(&b);
    }
}

static void test_dedup(void **state)
{
    (void)state;
    static const struct {
        const char *id, *want, *tag;
    } cases[] = {
        /* bucket = FNV-1a(raw event id) % 16 */
        {.id = "ev-1", .want = "csm:{d:6}:ev-1", .tag = "d:6"},
        {.id = "ev:1", .want = "csm:{d:9}:ev%3A1", .tag = "d:9"},
        {.id = "e", .want = "csm:{d:2}:e", .tag = "d:2"},
        {.id = "事件1", .want = "csm:{d:2}:事件1", .tag = "d:2"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct buf b;
        buf_init(&b);
        keys_dedup(&b, "csm:", cases[i].id);
        assert_string_equal(b.data, cases[i].want);
        assert_tag(b.data, cases[i].tag);
        buf_release(&b);
    }
    /* hostile ids cannot open a second tag */
    struct buf b;
    buf_init(&b);
    keys_dedup(&b, "csm:", "}{x}");
    char *t = cluster_tag(b.data);
    assert_non_null(t);
    assert_int_equal(strncmp(t, "d:", 2), 0);
    free(t);
    assert_ptr_equal(strchr(b.data, '{'), strrchr(b.data, '{'));
    buf_release(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escape),        cmocka_unit_test(test_escape_every_byte),
        cmocka_unit_test(test_unescape),      cmocka_unit_test(test_owner_tag),
        cmocka_unit_test(test_partition_tag), cmocka_unit_test(test_hash),
        cmocka_unit_test(test_contact),       cmocka_unit_test(test_dedup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
