/* Unit tests for common/map (string-keyed hash map: replace, delete, tombstone churn,
 * growth, iteration with deletion) and common/buf (byte buffer, printf, the binary
 * record helpers: exact LEB128 / zig-zag bytes, and every reader overrun sets err). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/map.h"

/* ---- map ---- */

static void test_map_basic(void **state)
{
    (void)state;
    int a = 1, b = 2, c = 3;
    struct map *m = map_new();
    assert_int_equal(map_size(m), 0);
    assert_null(map_get(m, "x"));
    assert_null(map_del(m, "x"));
    assert_null(map_put(m, "x", &a));
    assert_null(map_put(m, "", &b)); /* the empty key is a key */
    assert_int_equal(map_size(m), 2);
    assert_ptr_equal(map_get(m, "x"), &a);
    assert_ptr_equal(map_get(m, ""), &b);
    assert_ptr_equal(map_put(m, "x", &c), &a); /* replace returns the previous value */
    assert_int_equal(map_size(m), 2);
    assert_ptr_equal(map_get(m, "x"), &c);
    assert_null(map_put(m, "n", NULL)); /* a NULL value is stored, but reads as absent */
    assert_int_equal(map_size(m), 3);
    assert_ptr_equal(map_del(m, "x"), &c);
    assert_null(map_get(m, "x"));
    assert_null(map_del(m, "x"));
    assert_int_equal(map_size(m), 2);

    /* keys are copied */
    char key[8] = "kk";
    map_put(m, key, &a);
    key[0] = 'z';
    assert_ptr_equal(map_get(m, "kk"), &a);
    assert_null(map_get(m, "zk"));

    map_clear(m);
    assert_int_equal(map_size(m), 0);
    assert_null(map_get(m, "kk"));
    map_put(m, "after", &a); /* usable after clear */
    assert_ptr_equal(map_get(m, "after"), &a);
    map_destroy(m);
    map_destroy(NULL);
}

/* A borrowed-key map stores the caller's pointers: lookups by equal text find them, and
 * destroying the map leaves the keys alone (ASan would report a double free otherwise). */
static void test_map_borrowed(void **state)
{
    (void)state;
    char k1[] = "alpha", k2[] = "beta";
    struct map *m = map_new_borrowed();
    assert_null(map_put(m, k1, (void *)1));
    assert_null(map_put(m, k2, (void *)2));
    assert_ptr_equal(map_get(m, "alpha"), (void *)1);
    size_t it = 0;
    const char *key;
    void *v;
    bool saw_k1 = false;
    while (map_next(m, &it, &key, &v))
        if (v == (void *)1)
            saw_k1 = key == k1; /* the very pointer, not a copy */
    assert_true(saw_k1);
    assert_ptr_equal(map_del(m, "beta"), (void *)2);
    map_clear(m);
    assert_int_equal(map_size(m), 0);
    assert_null(map_put(m, k1, (void *)3));
    map_destroy(m);
    assert_string_equal(k1, "alpha");
    assert_string_equal(k2, "beta");
}

static void test_map_many(void **state)
{
    (void)state;
    enum { N = 20000 };
    struct map *m = map_new();
    char k[32];
    for (uintptr_t i = 0; i < N; i++) {
        snprintf(k, sizeof(k), "key-%lu", (unsigned long)i);
        assert_null(map_put(m, k, (void *)(i + 1)));
    }
    assert_int_equal(map_size(m), N);
    for (uintptr_t i = 0; i < N; i += 2) {
        snprintf(k, sizeof(k), "key-%lu", (unsigned long)i);
        assert_ptr_equal(map_del(m, k), (void *)(i + 1));
    }
    assert_int_equal(map_size(m), N / 2);
    for (uintptr_t i = 0; i < N; i++) {
        snprintf(k, sizeof(k), "key-%lu", (unsigned long)i);
        assert_ptr_equal(map_get(m, k), i % 2 ? (void *)(i + 1) : NULL);
    }
    /* iteration visits each live entry exactly once */
    char *seen = calloc(N, 1);
    size_t it = 0, count = 0;
    const char *key;
    void *v;
    while (map_next(m, &it, &key, &v)) {
        uintptr_t i = (uintptr_t)v - 1;
        assert_true(i < N && i % 2 == 1);
        snprintf(k, sizeof(k), "key-%lu", (unsigned long)i);
        assert_string_equal(key, k);
        assert_int_equal(seen[i], 0);
        seen[i] = 1;
        count++;
    }
    assert_int_equal(count, N / 2);
    assert_false(map_next(m, &it, &key, &v)); /* stays at the end */
    free(seen);
    map_destroy(m);
}

/* Insert/delete churn with few live keys: tombstones must not fill the table (a
 * lookup of a missing key must still terminate) nor grow it without bound. */
static void test_map_tombstones(void **state)
{
    (void)state;
    struct map *m = map_new();
    char k[32];
    for (int round = 0; round < 100000; round++) {
        snprintf(k, sizeof(k), "churn-%d", round);
        map_put(m, k, (void *)1);
        if (round % 7 == 0) /* a few stay */
            continue;
        assert_ptr_equal(map_del(m, k), (void *)1);
        assert_null(map_get(m, "never-there"));
    }
    assert_int_equal(map_size(m), (100000 + 6) / 7);
    for (int round = 0; round < 100000; round += 7) {
        snprintf(k, sizeof(k), "churn-%d", round);
        assert_ptr_equal(map_get(m, k), (void *)1);
    }
    /* re-insert a deleted key: found once, not duplicated */
    map_put(m, "churn-1", (void *)2);
    map_put(m, "churn-1", (void *)3);
    assert_int_equal(map_size(m), (100000 + 6) / 7 + 1);
    assert_ptr_equal(map_del(m, "churn-1"), (void *)3);
    assert_null(map_get(m, "churn-1"));
    map_destroy(m);
}

static void test_map_delete_while_iterating(void **state)
{
    (void)state;
    struct map *m = map_new();
    char k[32];
    for (uintptr_t i = 0; i < 100; i++) {
        snprintf(k, sizeof(k), "%lu", (unsigned long)i);
        map_put(m, k, (void *)(i + 1));
    }
    size_t it = 0, visited = 0;
    const char *key;
    void *v;
    while (map_next(m, &it, &key, &v)) {
        visited++;
        if ((uintptr_t)v % 3 == 0) {
            char copy[32];
            snprintf(copy, sizeof(copy), "%s", key);
            assert_ptr_equal(map_del(m, copy), v);
        }
    }
    assert_int_equal(visited, 100);
    assert_int_equal(map_size(m), 100 - 33);
    map_destroy(m);
}

/* ---- buf ---- */

static void test_buf_basic(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    buf_reset(&b); /* fine on an empty buf */
    buf_add(&b, "", 0);
    assert_non_null(b.data);
    assert_string_equal(b.data, "");
    buf_adds(&b, "ab");
    buf_addc(&b, 'c');
    buf_add(&b, "d\0e", 3); /* binary */
    assert_int_equal(b.len, 6);
    assert_memory_equal(b.data, "abcd\0e", 7); /* and NUL-terminated */
    size_t cap = b.cap;
    buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
    assert_int_equal(b.cap, cap); /* keeps memory */

    buf_printf(&b, "%s=%d", "n", 42);
    buf_printf(&b, "%s", "");
    buf_printf(&b, "|%05.1f", 2.25);
    assert_string_equal(b.data, "n=42|002.2");
    assert_int_equal(b.len, strlen("n=42|002.2"));

    /* growth across many doublings, through printf too */
    buf_reset(&b);
    char big[1000];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = 0;
    for (int i = 0; i < 50; i++)
        buf_printf(&b, "%s%d", big, i % 10);
    assert_int_equal(b.len, 50 * 1000);
    assert_int_equal(b.data[999], '0');
    assert_int_equal(b.data[50 * 1000 - 1], '9');
    assert_int_equal(b.data[b.len], '\0');
    buf_reserve(&b, 100000);
    assert_true(b.cap >= b.len + 100001);
    buf_release(&b);
    assert_null(b.data);
    buf_release(&b); /* twice is fine */

    char *s = xstrndup("hello", 3);
    assert_string_equal(s, "hel");
    free(s);
    s = xstrdup("");
    assert_string_equal(s, "");
    free(s);
}

static const struct u64_case {
    uint64_t v;
    size_t n;
    unsigned char bytes[10];
} u64_cases[] = {
    {.v = 0, .n = 1, .bytes = {0x00}},
    {.v = 1, .n = 1, .bytes = {0x01}},
    {.v = 127, .n = 1, .bytes = {0x7f}},
    {.v = 128, .n = 2, .bytes = {0x80, 0x01}},
    {.v = 300, .n = 2, .bytes = {0xac, 0x02}},
    {.v = 16383, .n = 2, .bytes = {0xff, 0x7f}},
    {.v = 16384, .n = 3, .bytes = {0x80, 0x80, 0x01}},
    {.v = 1ULL << 63,
     .n = 10,
     .bytes = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}},
    {.v = UINT64_MAX,
     .n = 10,
     .bytes = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}},
};

/* Decimal text without printf, against printf. */
static void test_decimal(void **state)
{
    (void)state;
    const int64_t vals[] = {
        0, 1, -1, 9, 10, -10, 99, 100, 1234567890123LL, INT64_MAX, INT64_MIN, INT64_MIN + 1};
    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
        char want[32], got[24];
        snprintf(want, sizeof(want), "%" PRId64, vals[i]);
        assert_int_equal(dec_format(got, vals[i]), strlen(want));
        assert_string_equal(got, want);
        struct buf b;
        buf_init(&b);
        buf_adds(&b, "x");
        buf_add_dec(&b, vals[i]);
        assert_string_equal(b.data + 1, want);
        buf_release(&b);
    }
    const struct {
        uint64_t v;
        int width;
        const char *want;
    } pads[] = {{0, 13, "0000000000000"},
                {1784876400000ULL, 13, "1784876400000"},
                {42, 20, "00000000000000000042"},
                {UINT64_MAX, 20, "18446744073709551615"},
                {12345, 3, "12345"},
                {7, 0, "7"}};
    for (size_t i = 0; i < sizeof(pads) / sizeof(pads[0]); i++) {
        struct buf b;
        buf_init(&b);
        buf_add_dec_pad(&b, pads[i].v, pads[i].width);
        assert_string_equal(b.data, pads[i].want);
        assert_int_equal(b.len, strlen(pads[i].want));
        buf_release(&b);
    }
}

static void test_varint_u64(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(u64_cases) / sizeof(u64_cases[0]); i++) {
        const struct u64_case *c = &u64_cases[i];
        struct buf b;
        buf_init(&b);
        buf_add_u64(&b, c->v);
        assert_int_equal(b.len, c->n);
        assert_memory_equal(b.data, c->bytes, c->n);
        struct buf_reader r;
        buf_reader_init(&r, b.data, b.len);
        assert_true(buf_read_u64(&r) == c->v);
        assert_int_equal(r.err, 0);
        assert_ptr_equal(r.p, r.end);
        /* every truncation is an overrun (exact-size heap copies for ASan) */
        for (size_t n = 0; n < c->n; n++) {
            unsigned char *p = malloc(n ? n : 1);
            memcpy(p, b.data, n);
            buf_reader_init(&r, p, n);
            assert_true(buf_read_u64(&r) == 0);
            assert_int_equal(r.err, 1);
            free(p);
        }
        buf_release(&b);
    }
}

static void test_varint_bad(void **state)
{
    (void)state;
    struct buf_reader r;
    /* 11 bytes: longer than any uint64 */
    unsigned char eleven[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01};
    buf_reader_init(&r, eleven, sizeof(eleven));
    assert_true(buf_read_u64(&r) == 0);
    assert_int_equal(r.err, 1);
    /* 10 bytes whose last carries bits beyond the 64th: a value that does not fit */
    unsigned char wide[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f};
    buf_reader_init(&r, wide, sizeof(wide));
    assert_true(buf_read_u64(&r) == 0);
    assert_int_equal(r.err, 1);
    unsigned char two[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x02};
    buf_reader_init(&r, two, sizeof(two));
    assert_true(buf_read_u64(&r) == 0);
    assert_int_equal(r.err, 1);
    /* empty reader, also over a NULL pointer */
    buf_reader_init(&r, NULL, 0);
    assert_true(buf_read_u64(&r) == 0);
    assert_int_equal(r.err, 1);
    size_t n = 99;
    buf_reader_init(&r, NULL, 0);
    assert_null(buf_read_str(&r, &n));
    assert_int_equal(n, 0);
    assert_int_equal(r.err, 1);
}

static void test_varint_i64(void **state)
{
    (void)state;
    static const struct {
        int64_t v;
        uint64_t zz;
    } cases[] = {
        {.v = 0, .zz = 0},
        {.v = -1, .zz = 1},
        {.v = 1, .zz = 2},
        {.v = -2, .zz = 3},
        {.v = 63, .zz = 126},
        {.v = -64, .zz = 127},
        {.v = 1785513600000, .zz = 3571027200000},
        {.v = INT64_MAX, .zz = UINT64_MAX - 1},
        {.v = INT64_MIN, .zz = UINT64_MAX},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct buf a, b;
        buf_init(&a);
        buf_init(&b);
        buf_add_i64(&a, cases[i].v);
        buf_add_u64(&b, cases[i].zz);
        assert_int_equal(a.len, b.len);
        assert_memory_equal(a.data, b.data, a.len);
        struct buf_reader r;
        buf_reader_init(&r, a.data, a.len);
        assert_true(buf_read_i64(&r) == cases[i].v);
        assert_int_equal(r.err, 0);
        buf_release(&a);
        buf_release(&b);
    }
}

static void test_read_str(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b);
    buf_add_str(&b, "abc", 3);
    buf_add_str(&b, "", 0);
    buf_add_str(&b, "x\0y", 3);
    buf_add_i64(&b, -5);
    static const unsigned char want[] = {3, 'a', 'b', 'c', 0, 3, 'x', 0, 'y', 9};
    assert_int_equal(b.len, sizeof(want));
    assert_memory_equal(b.data, want, sizeof(want));

    struct buf_reader r;
    buf_reader_init(&r, b.data, b.len);
    size_t n;
    const char *s = buf_read_str(&r, &n);
    assert_int_equal(n, 3);
    assert_memory_equal(s, "abc", 3);
    char *d = buf_read_strdup(&r);
    assert_string_equal(d, "");
    free(d);
    s = buf_read_str(&r, &n);
    assert_int_equal(n, 3);
    assert_memory_equal(s, "x\0y", 3);
    assert_true(buf_read_i64(&r) == -5);
    assert_int_equal(r.err, 0);
    assert_ptr_equal(r.p, r.end);
    /* at the end: every read overruns */
    assert_null(buf_read_str(&r, &n));
    assert_int_equal(n, 0);
    assert_int_equal(r.err, 1);
    buf_release(&b);

    /* a length larger than what is left: NULL, n 0, err, and the position unchanged */
    unsigned char lie[] = {5, 'a', 'b'};
    unsigned char *p = malloc(sizeof(lie));
    memcpy(p, lie, sizeof(lie));
    buf_reader_init(&r, p, sizeof(lie));
    n = 7;
    assert_null(buf_read_str(&r, &n));
    assert_int_equal(n, 0);
    assert_int_equal(r.err, 1);
    buf_reader_init(&r, p, sizeof(lie));
    assert_null(buf_read_strdup(&r));
    assert_int_equal(r.err, 1);
    /* a huge length (2^63) must not wrap the bounds check */
    unsigned char huge[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01, 'a'};
    buf_reader_init(&r, huge, sizeof(huge));
    assert_null(buf_read_str(&r, &n));
    assert_int_equal(r.err, 1);
    /* err stays set once set */
    unsigned char ok[] = {1};
    buf_reader_init(&r, p, 1); /* length 5, nothing after */
    assert_null(buf_read_str(&r, &n));
    r.p = ok;
    r.end = ok + 1;
    buf_read_u64(&r);
    assert_int_equal(r.err, 1);
    free(p);

    /* every truncation of a record: the reads that do not fit set err, none crashes */
    buf_init(&b);
    buf_add_str(&b, "hello world", 11);
    buf_add_u64(&b, 1ULL << 40);
    buf_add_str(&b, "z", 1);
    for (size_t len = 0; len < b.len; len++) {
        unsigned char *q = malloc(len ? len : 1);
        memcpy(q, b.data, len);
        buf_reader_init(&r, q, len);
        char *s1 = buf_read_strdup(&r);
        uint64_t v = buf_read_u64(&r);
        char *s2 = buf_read_strdup(&r);
        (void)v;
        assert_int_equal(r.err, 1);
        assert_null(s2);
        free(s1);
        free(q);
    }
    buf_release(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_map_basic),
        cmocka_unit_test(test_map_borrowed),
        cmocka_unit_test(test_map_many),
        cmocka_unit_test(test_map_tombstones),
        cmocka_unit_test(test_map_delete_while_iterating),
        cmocka_unit_test(test_buf_basic),
        cmocka_unit_test(test_decimal),
        cmocka_unit_test(test_varint_u64),
        cmocka_unit_test(test_varint_bad),
        cmocka_unit_test(test_varint_i64),
        cmocka_unit_test(test_read_str),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
