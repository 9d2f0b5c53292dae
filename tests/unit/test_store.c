/* Unit tests for daemon/store and its Lua library against a throw-away redis-server
 * (redis_fixture.h): dedup claims, offset-fenced commits, the journal and its crash
 * recovery (exactly once: a replay equals a normal commit, a second replay changes
 * nothing), per-tag apply fences and all-or-nothing applies of variadic op lists (and
 * chunked ones), a batch's net effect equal to its writes applied in order, the global
 * watermark, the contacts used for attribution, partition state, exact raw figures. */
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
#include "aggregator/keys.h"
#include "aggregator/kpi.h"
#include "aggregator/period.h"
#include "common/buf.h"
#include "daemon/rconn.h"
#include "daemon/store.h"

#include "tests/unit/redis_fixture.h"

#define AG1 "csm:{a:demo:x1}"
#define TEAM "csm:{t:demo}"
#define META "csm:{p:cs.chat:0}:meta"
#define JOURNAL "csm:{p:cs.chat:0}:journal"

struct env {
    struct redis_fixture fx;
    struct rconn *rc;
    struct store *st;
    redisContext *raw; /* for setting up and inspecting state */
};

static struct env *E; /* the group's fixture, for the helpers */

static int group_setup(void **state)
{
    char err[256];
    struct env *e = calloc(1, sizeof(*e));
    if (!e || redis_fixture_start(&e->fx, NULL) != 0) {
        free(e);
        return -1;
    }
    struct rconn_opts o = {.url = e->fx.url, .function_lib = store_lua_library};
    e->rc = rconn_new(&o, err, sizeof(err));
    if (!e->rc || rconn_connect(e->rc, err, sizeof(err)) != 0) {
        fprintf(stderr, "cannot connect: %s\n", err);
        rconn_destroy(e->rc);
        redis_fixture_stop(&e->fx);
        free(e);
        return -1;
    }
    e->st = store_new(e->rc, "csm:");
    e->raw = redisConnectUnix(e->fx.sock);
    if (!e->raw || e->raw->err)
        return -1;
    if (period_tz_set("Asia/Shanghai", err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    E = e;
    *state = e;
    return 0;
}

static int group_teardown(void **state)
{
    struct env *e = *state;
    store_destroy(e->st);
    store_destroy(NULL);
    redisFree(e->raw);
    rconn_destroy(e->rc);
    redis_fixture_stop(&e->fx);
    free(e);
    return 0;
}

/* One command on the raw context; fails the test on an I/O error (an error reply is
 * returned). A format without %-directives is split on spaces, as redisCommand does. */
__attribute__((format(printf, 1, 2))) static redisReply *cmd(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(E->raw, fmt, ap);
    va_end(ap);
    if (!r)
        fail_msg("redis: %s", E->raw->errstr);
    return r;
}

static int per_test_setup(void **state)
{
    (void)state;
    freeReplyObject(cmd("FLUSHALL"));
    return 0;
}

static long long cmd_int(const char *fmt, const char *a, const char *b)
{
    redisReply *r = b ? cmd(fmt, a, b) : cmd(fmt, a);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    long long v = r->integer;
    freeReplyObject(r);
    return v;
}

/* HGET as a malloc'd string, NULL when absent. */
static char *hget(const char *key, const char *field)
{
    redisReply *r = cmd("HGET %s %s", key, field);
    char *v = r->type == REDIS_REPLY_STRING ? strndup(r->str, r->len) : NULL;
    assert_true(r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_NIL);
    freeReplyObject(r);
    return v;
}

static void assert_hget(const char *key, const char *field, const char *want)
{
    char *v = hget(key, field);
    if (!want) {
        if (v)
            fail_msg("%s %s: want none, got '%s'", key, field, v);
    } else {
        if (!v)
            fail_msg("%s %s: want '%s', got none", key, field, want);
        assert_string_equal(v, want);
    }
    free(v);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The whole database as sorted text: "key type: sorted contents". Binary values are
 * shown as their length and a checksum. */
static char *dump(void)
{
    redisReply *ks = cmd("KEYS *");
    assert_int_equal(ks->type, REDIS_REPLY_ARRAY);
    char **lines = calloc(ks->elements + 1, sizeof(*lines));
    for (size_t i = 0; i < ks->elements; i++) {
        const char *k = ks->element[i]->str;
        struct buf l;
        buf_init(&l);
        redisReply *t = cmd("TYPE %s", k);
        buf_printf(&l, "%s %s:", k, t->str);
        redisReply *v = NULL;
        if (strcmp(t->str, "string") == 0) {
            v = cmd("GET %s", k);
            uint64_t h = 1469598103934665603ULL;
            for (size_t j = 0; j < v->len; j++)
                h = (h ^ (unsigned char)v->str[j]) * 1099511628211ULL;
            buf_printf(&l, " len=%zu h=%016" PRIx64, v->len, h);
        } else {
            if (strcmp(t->str, "hash") == 0)
                v = cmd("HGETALL %s", k);
            else if (strcmp(t->str, "set") == 0)
                v = cmd("SMEMBERS %s", k);
            else
                v = cmd("ZRANGE %s 0 -1 WITHSCORES", k);
            bool pairs = strcmp(t->str, "set") != 0;
            size_t n = pairs ? v->elements / 2 : v->elements;
            char **items = calloc(n + 1, sizeof(*items));
            for (size_t j = 0; j < n; j++) {
                struct buf it;
                buf_init(&it);
                if (pairs)
                    buf_printf(&it, "%s=%s", v->element[2 * j]->str, v->element[2 * j + 1]->str);
                else
                    buf_adds(&it, v->element[j]->str);
                items[j] = it.data;
            }
            if (strcmp(t->str, "zset") != 0) /* zsets keep their order */
                qsort(items, n, sizeof(*items), cmp_str);
            for (size_t j = 0; j < n; j++) {
                buf_printf(&l, " %s", items[j]);
                free(items[j]);
            }
            free(items);
        }
        freeReplyObject(v);
        freeReplyObject(t);
        lines[i] = l.data;
    }
    qsort(lines, ks->elements, sizeof(*lines), cmp_str);
    struct buf out;
    buf_init(&out);
    buf_adds(&out, "");
    for (size_t i = 0; i < ks->elements; i++) {
        buf_printf(&out, "%s\n", lines[i]);
        free(lines[i]);
    }
    free(lines);
    freeReplyObject(ks);
    return out.data;
}

/* ---- dedup ---- */

static void test_dedup(void **state)
{
    struct env *e = *state;
    char err[256] = "";
    const char *ids[] = {"ev-1", "ev:2", "ev 3"};
    const char *mine[] = {"cs.chat:0:1", "cs.chat:0:2", "cs.chat:0:3"};
    const char *other[] = {"cs.chat:1:7", "cs.chat:1:8", "cs.chat:1:9"};
    bool dup[3] = {true, true, true};
    /* first claims: new */
    assert_int_equal(store_dedup(e->st, 3, ids, mine, 60000, dup, err, sizeof(err)), 0);
    assert_false(dup[0] || dup[1] || dup[2]);
    /* the same claims again (our own replay after a crash): not duplicates */
    memset(dup, 1, sizeof(dup));
    assert_int_equal(store_dedup(e->st, 3, ids, mine, 60000, dup, err, sizeof(err)), 0);
    assert_false(dup[0] || dup[1] || dup[2]);
    /* another claim on the same ids: duplicates */
    assert_int_equal(store_dedup(e->st, 3, ids, other, 60000, dup, err, sizeof(err)), 0);
    assert_true(dup[0] && dup[1] && dup[2]);
    /* the key holds the first claim, with the TTL of the first claim */
    struct buf k;
    buf_init(&k);
    keys_dedup(&k, "csm:", "ev:2");
    assert_string_equal(k.data, "csm:{d:0}:ev%3A2");
    redisReply *r = cmd("GET %s", k.data);
    buf_release(&k);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    assert_string_equal(r->str, "cs.chat:0:2");
    freeReplyObject(r);
    long long ttl = cmd_int("PTTL %s", "csm:{d:6}:ev-1", NULL);
    assert_true(ttl > 55000 && ttl <= 60000);
    /* the same id twice in one call: the second claim is the duplicate */
    const char *ids2[] = {"fresh", "fresh"};
    const char *cl2[] = {"cs.chat:0:10", "cs.chat:0:11"};
    bool dup2[2];
    assert_int_equal(store_dedup(e->st, 2, ids2, cl2, 60000, dup2, err, sizeof(err)), 0);
    assert_false(dup2[0]);
    assert_true(dup2[1]);
    /* nothing to claim */
    assert_int_equal(store_dedup(e->st, 0, NULL, NULL, 60000, NULL, err, sizeof(err)), 0);
}

/* Many ids over every bucket: each answer lands on its own id. */
static void test_dedup_many(void **state)
{
    struct env *e = *state;
    enum { N = 200 };
    char *ids[N], *c1[N], *c2[N];
    bool dup[N];
    char err[256];
    for (int i = 0; i < N; i++) {
        char b[64];
        snprintf(b, sizeof(b), "event-%d", i);
        ids[i] = strdup(b);
        snprintf(b, sizeof(b), "p:0:%d", i);
        c1[i] = strdup(b);
        snprintf(b, sizeof(b), "p:1:%d", i);
        c2[i] = strdup(b);
    }
    /* claim the odd ones first */
    const char *odd_ids[N / 2], *odd_cl[N / 2];
    for (int i = 0; i < N / 2; i++) {
        odd_ids[i] = ids[2 * i + 1];
        odd_cl[i] = c2[2 * i + 1];
    }
    assert_int_equal(store_dedup(e->st, N / 2, odd_ids, odd_cl, 60000, dup, err, sizeof(err)), 0);
    assert_int_equal(store_dedup(e->st, N, (const char *const *)ids, (const char *const *)c1, 60000,
                                 dup, err, sizeof(err)),
                     0);
    for (int i = 0; i < N; i++)
        if (dup[i] != (i % 2 == 1))
            fail_msg("id %d: dup %d", i, dup[i]);
    for (int i = 0; i < N; i++) {
        free(ids[i]);
        free(c1[i]);
        free(c2[i]);
    }
}

/* ---- commits, journal, recovery ---- */

static void sample_delta(struct delta *d)
{
    delta_zadd(d, AG1, ":periods", 1785513600000, "2026-08");
    delta_sadd(d, AG1, ":2026-08:inq", "c1");
    delta_incr(d, AG1, ":2026-08:c", "wait_n", 1);
    delta_incr(d, AG1, ":2026-08:c", "wait_ms", 45000);
    delta_zadd(d, AG1, ":2026-08:w", 45000, "1786327200000:cv1");
    delta_mincr(d, AG1, ":2026-08:rep", "c1", 1);
    delta_zadd(d, TEAM, ":periods", 1785513600000, "2026-08");
    delta_sadd(d, TEAM, ":2026-08:inq", "c1");
    delta_incr(d, TEAM, ":2026-08:c", "wait_n", 1);
    delta_sadd(d, "csm:{r}", ":shops", "demo");
}

static struct store_batch sample_batch(struct delta *d, int64_t expected, int64_t new_off,
                                       uint64_t seq)
{
    static struct store_kv conv[] = {
        {.field = "cv1", .value = "state\0one", .len = 9},
        {.field = "cv2", .value = "two", .len = 3},
    };
    static struct store_kv pend[] = {{.field = "o1", .value = "1", .len = 1}};
    struct store_batch b = {.topic = "cs.chat",
                            .part = 0,
                            .expected_off = expected,
                            .new_off = new_off,
                            .seq = seq,
                            .delta = d};
    b.state[STORE_CONV] = conv;
    b.nstate[STORE_CONV] = 2;
    b.state[STORE_PEND] = pend;
    b.nstate[STORE_PEND] = 1;
    return b;
}

static void test_recover_fresh(void **state)
{
    struct env *e = *state;
    char err[256];
    struct store_partition_meta m = {.off = 99, .seq = 99};
    assert_int_equal(store_partition_recover(e->st, "cs.chat", 0, &m, err, sizeof(err)), 0);
    assert_int_equal(m.off, -1);
    assert_int_equal(m.seq, 0);
    assert_string_equal(store_prefix(e->st), "csm:");
}

static void test_commit(void **state)
{
    struct env *e = *state;
    char err[256] = "";
    struct delta *d = delta_new();
    sample_delta(d);
    struct store_batch b = sample_batch(d, -1, 10, 1);
    if (store_commit(e->st, &b, err, sizeof(err)) != 0)
        fail_msg("commit: %s", err);
    /* offset and sequence moved, journal dropped, every group applied */
    struct store_partition_meta m;
    assert_int_equal(store_partition_recover(e->st, "cs.chat", 0, &m, err, sizeof(err)), 0);
    assert_int_equal(m.off, 10);
    assert_int_equal(m.seq, 1);
    assert_int_equal(cmd_int("EXISTS %s", JOURNAL, NULL), 0);
    assert_hget(META, "jseq", NULL);
    assert_hget(AG1 ":2026-08:c", "wait_n", "1");
    assert_hget(AG1 ":2026-08:c", "wait_ms", "45000");
    assert_hget(AG1 ":2026-08:rep", "c1", "1");
    assert_hget(TEAM ":2026-08:c", "wait_n", "1");
    assert_int_equal(cmd_int("SISMEMBER %s %s", AG1 ":2026-08:inq", "c1"), 1);
    assert_int_equal(cmd_int("SISMEMBER %s %s", "csm:{r}:shops", "demo"), 1);
    redisReply *zs = cmd("ZSCORE %s %s", AG1 ":2026-08:w", "1786327200000:cv1");
    assert_string_equal(zs->str, "45000");
    freeReplyObject(zs);
    /* per-tag fences hold the partition's sequence */
    assert_hget(AG1 ":fence", "cs.chat:0", "1");
    assert_hget(TEAM ":fence", "cs.chat:0", "1");
    assert_hget("csm:{r}:fence", "cs.chat:0", "1");
    /* partition state */
    const char *fields[] = {"cv1", "cv2", "cv3"};
    char *vals[3];
    size_t lens[3];
    assert_int_equal(
        store_state_get(e->st, "cs.chat", 0, STORE_CONV, 3, fields, vals, lens, err, sizeof(err)),
        0);
    assert_int_equal(lens[0], 9);
    assert_memory_equal(vals[0], "state\0one", 9);
    assert_string_equal(vals[1], "two");
    assert_null(vals[2]);
    assert_int_equal(lens[2], 0);
    for (int i = 0; i < 3; i++)
        free(vals[i]);
    assert_int_equal(
        store_state_get(e->st, "cs.chat", 0, STORE_CONV, 0, NULL, NULL, NULL, err, sizeof(err)), 0);

    /* a stale expected offset: FENCED, nothing changes */
    char *before = dump();
    delta_reset(d);
    delta_incr(d, AG1, ":2026-08:c", "wait_n", 100);
    b = sample_batch(d, -1, 20, 2);
    assert_int_equal(store_commit(e->st, &b, err, sizeof(err)), 1);
    assert_string_equal(err, "partition cs.chat:0 fenced: FENCED stored offset 10");
    b.expected_off = 9;
    assert_int_equal(store_commit(e->st, &b, err, sizeof(err)), 1);
    assert_string_equal(err, "partition cs.chat:0 fenced: FENCED stored offset 10");
    char *after = dump();
    assert_string_equal(before, after);
    free(after);

    /* the right one: applied; a state value NULL or "" deletes the field */
    static struct store_kv del[] = {{.field = "cv1", .value = NULL}, {.field = "cv2", .value = ""}};
    b.expected_off = 10;
    b.state[STORE_CONV] = del;
    b.nstate[STORE_CONV] = 2;
    b.nstate[STORE_PEND] = 0;
    assert_int_equal(store_commit(e->st, &b, err, sizeof(err)), 0);
    assert_hget(AG1 ":2026-08:c", "wait_n", "101");
    assert_hget(AG1 ":fence", "cs.chat:0", "2");
    assert_hget(TEAM ":fence", "cs.chat:0", "1"); /* untouched tag keeps its fence */
    assert_int_equal(cmd_int("HLEN %s", "csm:{p:cs.chat:0}:conv", NULL), 0);
    assert_int_equal(cmd_int("HLEN %s", "csm:{p:cs.chat:0}:pend", NULL), 1);

    /* an empty delta: offset and sequence move, no journal, no apply */
    delta_reset(d);
    b = sample_batch(d, 20, 25, 3);
    b.nstate[STORE_CONV] = b.nstate[STORE_PEND] = 0;
    assert_int_equal(store_commit(e->st, &b, err, sizeof(err)), 0);
    assert_hget(META, "off", "25");
    assert_hget(META, "seq", "3");
    assert_hget(META, "jseq", NULL);
    free(before);
    delta_destroy(d);
}

/* FCALL csm_commit by hand, as store_commit sends it: the journal is written, the
 * applies are not run (a crash right after the commit). */
static void commit_only(struct delta *d, const char *expected, const char *new_off, const char *seq)
{
    struct buf j;
    buf_init(&j);
    delta_encode(d, &j);
    const char *argv[] = {"FCALL",
                          "csm_commit",
                          "5",
                          META,
                          JOURNAL,
                          "csm:{p:cs.chat:0}:conv",
                          "csm:{p:cs.chat:0}:ord",
                          "csm:{p:cs.chat:0}:pend",
                          expected,
                          new_off,
                          seq,
                          j.data,
                          "2",
                          "cv1",
                          "state\0one",
                          "cv2",
                          "two",
                          "0",
                          "1",
                          "o1",
                          "1"};
    size_t n = sizeof(argv) / sizeof(argv[0]);
    size_t lens[sizeof(argv) / sizeof(argv[0])];
    for (size_t i = 0; i < n; i++)
        lens[i] = strlen(argv[i]);
    lens[11] = j.len;
    lens[14] = 9;
    rconn_append(E->rc, (int)n, argv, lens);
    redisReply **rep = NULL;
    size_t nr = 0;
    char err[256];
    assert_int_equal(rconn_exec(E->rc, &rep, &nr, err, sizeof(err)), 0);
    assert_int_equal(nr, 1);
    if (rep[0]->type == REDIS_REPLY_ERROR)
        fail_msg("csm_commit: %s", rep[0]->str);
    assert_string_equal(rep[0]->str, "OK");
    rconn_replies_free(rep, nr);
    buf_release(&j);
}

/* csm_apply by hand for group i of d with sequence seq; returns the integer reply, or
 * -100 for an error reply (its text into err). */
static long long apply_group(struct delta *d, size_t i, const char *seq, char *err, size_t errlen)
{
    struct delta_group g;
    delta_group_get(d, i, &g);
    size_t n = 6 + g.nkeys + g.nargs;
    const char **argv = calloc(n, sizeof(*argv));
    size_t *lens = calloc(n, sizeof(*lens));
    char nk[16], fence[256];
    snprintf(nk, sizeof(nk), "%zu", g.nkeys + 1);
    snprintf(fence, sizeof(fence), "%s:fence", g.tag);
    size_t a = 0;
    argv[a++] = "FCALL";
    argv[a++] = "csm_apply";
    argv[a++] = nk;
    argv[a++] = fence;
    for (size_t k = 0; k < g.nkeys; k++)
        argv[a++] = g.keys[k];
    argv[a++] = "cs.chat:0";
    argv[a++] = seq;
    for (size_t k = 0; k < g.nargs; k++)
        argv[a++] = g.args[k];
    for (size_t k = 0; k < a; k++)
        lens[k] = strlen(argv[k]);
    rconn_append(E->rc, (int)a, argv, lens);
    free(argv);
    free(lens);
    redisReply **rep = NULL;
    size_t nr = 0;
    char e2[256];
    assert_int_equal(rconn_exec(E->rc, &rep, &nr, e2, sizeof(e2)), 0);
    long long v = -100;
    if (rep[0]->type == REDIS_REPLY_INTEGER)
        v = rep[0]->integer;
    else if (rep[0]->type == REDIS_REPLY_ERROR)
        snprintf(err, errlen, "%s", rep[0]->str);
    else
        fail_msg("csm_apply: reply type %d", rep[0]->type);
    rconn_replies_free(rep, nr);
    return v;
}

static void test_crash_recovery(void **state)
{
    struct env *e = *state;
    char err[256] = "";
    struct delta *d = delta_new();
    sample_delta(d);

    /* the reference: a normal commit */
    struct store_batch b = sample_batch(d, -1, 10, 1);
    assert_int_equal(store_commit(e->st, &b, err, sizeof(err)), 0);
    char *want = dump();

    /* crash after the commit, before any apply */
    freeReplyObject(cmd("FLUSHALL"));
    commit_only(d, "-1", "10", "1");
    assert_int_equal(cmd_int("EXISTS %s", JOURNAL, NULL), 1);
    assert_hget(META, "jseq", "1");
    assert_hget(META, "off", "10");
    assert_int_equal(cmd_int("EXISTS %s", AG1 ":2026-08:c", NULL), 0); /* not applied */
    struct store_partition_meta m;
    assert_int_equal(store_partition_recover(e->st, "cs.chat", 0, &m, err, sizeof(err)), 0);
    assert_int_equal(m.off, 10);
    assert_int_equal(m.seq, 1);
    char *got = dump();
    assert_string_equal(got, want); /* exactly the figures of a normal commit */
    free(got);
    /* a second recover changes nothing */
    assert_int_equal(store_partition_recover(e->st, "cs.chat", 0, &m, err, sizeof(err)), 0);
    got = dump();
    assert_string_equal(got, want);
    free(got);
    /* a zombie's late apply of the same batch is fenced off */
    assert_int_equal(apply_group(d, 0, "1", err, sizeof(err)), 0);
    got = dump();
    assert_string_equal(got, want);
    free(got);

    /* crash half-way through the applies: the applied group is not applied twice */
    freeReplyObject(cmd("FLUSHALL"));
    commit_only(d, "-1", "10", "1");
    assert_int_equal(apply_group(d, 0, "1", err, sizeof(err)), 1);
    assert_int_equal(apply_group(d, 2, "1", err, sizeof(err)), 1);
    assert_int_equal(store_partition_recover(e->st, "cs.chat", 0, &m, err, sizeof(err)), 0);
    got = dump();
    assert_string_equal(got, want);
    free(got);

    /* a commit while a journal is pending is refused (recover first) */
    freeReplyObject(cmd("FLUSHALL"));
    commit_only(d, "-1", "10", "1");
    b = sample_batch(d, 10, 11, 2);
    assert_int_equal(store_commit(e->st, &b, err, sizeof(err)), -1);
    assert_string_equal(err, "commit: JOURNAL pending");
    assert_hget(META, "off", "10");
    assert_int_equal(store_partition_recover(e->st, "cs.chat", 0, &m, err, sizeof(err)), 0);
    assert_int_equal(store_commit(e->st, &b, err, sizeof(err)), 0);
    assert_hget(AG1 ":2026-08:c", "wait_n", "2");

    free(want);
    delta_destroy(d);
}

/* A malformed journal is refused whole: no group of it is applied, now or with the
 * next command sent on the connection. */
static void test_recover_malformed_journal(void **state)
{
    struct env *e = *state;
    char err[256] = "";
    struct delta *d = delta_new();
    sample_delta(d);
    struct buf j;
    buf_init(&j);
    delta_encode(d, &j);
    buf_addc(&j, 'x'); /* trailing garbage after valid groups */
    const char *argv[] = {"SET", JOURNAL, j.data};
    size_t lens[] = {3, strlen(JOURNAL), j.len};
    rconn_append(e->rc, 3, argv, lens);
    rconn_appendf(e->rc, "HSET %s off 10 seq 1 jseq 1", META);
    redisReply **rep = NULL;
    size_t nr = 0;
    assert_int_equal(rconn_exec(e->rc, &rep, &nr, err, sizeof(err)), 0);
    rconn_replies_free(rep, nr);
    struct store_partition_meta m;
    assert_int_equal(store_partition_recover(e->st, "cs.chat", 0, &m, err, sizeof(err)), -1);
    assert_string_equal(err, "malformed journal '" JOURNAL "'");
    assert_int_equal(rconn_pending(e->rc), 0);
    redisReply *r = rconn_command(e->rc, err, sizeof(err), "PING");
    assert_non_null(r);
    freeReplyObject(r);
    assert_int_equal(cmd_int("EXISTS %s", AG1 ":2026-08:c", NULL), 0);
    assert_int_equal(cmd_int("EXISTS %s", JOURNAL, NULL), 1); /* kept for a human */
    buf_release(&j);
    delta_destroy(d);
}

/* An apply that fails (a key of the wrong type) keeps the journal: nothing of that tag
 * is applied, the other tags are, and a recover after the repair completes the batch
 * exactly once. */
static void test_apply_failure_keeps_journal(void **state)
{
    struct env *e = *state;
    char err[256] = "";
    struct delta *d = delta_new();
    sample_delta(d);
    struct store_batch b = sample_batch(d, -1, 10, 1);
    assert_int_equal(store_commit(e->st, &b, err, sizeof(err)), 0);
    char *want = dump();

    freeReplyObject(cmd("FLUSHALL"));
    freeReplyObject(cmd("SET %s %s", TEAM ":2026-08:c", "oops"));
    assert_int_equal(store_commit(e->st, &b, err, sizeof(err)), -1);
    assert_string_equal(err, "apply: WRONGTYPE " TEAM ":2026-08:c is a string, not a hash");
    assert_int_equal(cmd_int("EXISTS %s", JOURNAL, NULL), 1);
    assert_hget(META, "jseq", "1");
    /* nothing of the failed tag */
    assert_int_equal(cmd_int("EXISTS %s", TEAM ":2026-08:inq", NULL), 0);
    assert_int_equal(cmd_int("EXISTS %s", TEAM ":fence", NULL), 0);
    assert_hget(AG1 ":fence", "cs.chat:0", "1");

    struct store_partition_meta m;
    assert_int_equal(store_partition_recover(e->st, "cs.chat", 0, &m, err, sizeof(err)), -1);
    assert_int_equal(cmd_int("EXISTS %s", JOURNAL, NULL), 1);
    freeReplyObject(cmd("DEL %s", TEAM ":2026-08:c"));
    assert_int_equal(store_partition_recover(e->st, "cs.chat", 0, &m, err, sizeof(err)), 0);
    char *got = dump();
    assert_string_equal(got, want);
    free(got);
    free(want);
    delta_destroy(d);
}

/* Through store_commit: a saturated counter is counted (store_saturated), the batch is
 * applied and done, and its replay is a no-op. */
static void test_apply_saturates(void **state)
{
    struct env *e = *state;
    char err[256] = "";
    freeReplyObject(cmd("HSET %s %s %s", TEAM ":2026-08:c", "order_cents", "9223372036854775000"));
    struct delta *d = delta_new();
    sample_delta(d);
    delta_incr(d, TEAM, ":2026-08:c", "order_cents", 1000);
    struct store_batch b = sample_batch(d, -1, 10, 1);
    assert_int_equal(store_saturated(e->st), 0);
    assert_int_equal(store_commit(e->st, &b, err, sizeof(err)), 0);
    assert_int_equal(store_saturated(e->st), 1);
    assert_hget(TEAM ":2026-08:c", "order_cents", "9223372036854775807");
    assert_int_equal(cmd_int("EXISTS %s", JOURNAL, NULL), 0);
    assert_hget(META, "off", "10");
    assert_hget(TEAM ":fence", "cs.chat:0", "1");
    delta_destroy(d);
}

/* csm_apply directly: fences per (tag, partition), all-or-nothing validation of the op
 * list (delta.h: CODE KEY N items) and of the key types, variadic ops. */
static void test_apply_fence_and_validation(void **state)
{
    (void)state;
    static const struct {
        const char *args;  /* after "FCALL csm_apply 3 F K1 K2" */
        const char *error; /* NULL: integer reply `ret` */
        long long ret;
    } cases[] = {
        {.args = "p:0 5 C 1 1 f 3 S 2 1 a", .ret = 1},
        {.args = "p:0 5 C 1 1 f 3", .ret = 0},  /* same seq: no-op */
        {.args = "p:0 4 C 1 1 f 3", .ret = 0},  /* older: no-op */
        {.args = "p:1 1 C 1 1 f 10", .ret = 1}, /* another partition has its own fence */
        /* op codes */
        {.args = "p:0 6 C 1 1 f 1 X 1 1 a", .error = "bad op X"},
        {.args = "p:0 6 C 1 1 f 1 s 2 1 a", .error = "bad op s"},
        {.args = "p:0 6 C 1 1 f 1 SS 2 1 a", .error = "bad op SS"},
        /* key indices */
        {.args = "p:0 6 C 1 1 f 1 S 3 1 a", .error = "bad key index"},
        {.args = "p:0 6 C 1 1 f 1 S 0 1 a", .error = "bad key index"},
        {.args = "p:0 6 C 1 1 f 1 S -1 1 a", .error = "bad key index"},
        {.args = "p:0 6 C 1 1 f 1 S x 1 a", .error = "bad key index"},
        {.args = "p:0 6 C 1 1 f 1 S 1.5 1 a", .error = "bad key index"},
        {.args = "p:0 6 C 1 1 f 1 S", .error = "bad key index"},
        /* item counts */
        {.args = "p:0 6 C 1 1 f 1 S 2", .error = "bad item count"},
        {.args = "p:0 6 C 1 1 f 1 S 2 0 a", .error = "bad item count"},
        {.args = "p:0 6 C 1 1 f 1 S 2 -1 a", .error = "bad item count"},
        {.args = "p:0 6 C 1 1 f 1 S 2 x a", .error = "bad item count"},
        {.args = "p:0 6 C 1 1 f 1 S 2 2 a", .error = "bad item count"},
        {.args = "p:0 6 C 1 2 f 1 g", .error = "bad item count"},
        {.args = "p:0 6 C 1 1 f 1 Z 2 1 5", .error = "bad item count"},
        {.args = "p:0 6 C 1 2 f 1 g 2 3", .error = "bad op 3"}, /* one arg too many */
        /* key types, within the call and in Redis */
        {.args = "p:0 6 C 1 1 f 1 S 1 1 a", .error = "key K1 used as hash and set"},
        {.args = "p:0 6 C 1 1 f 1 Z 2 1 1 m", .error = "WRONGTYPE K2 is a set, not a zset"},
        {.args = "p:0 6 C 1 1 f 1 T 2 1 0", .error = "WRONGTYPE K2 is a set, not a zset"},
        {.args = "p:0 6 S 2 1 z H 2 1 f v", .error = "key K2 used as set and hash"},
        /* M: the member goes when its count reaches 0 or less */
        {.args = "p:0 7 M 1 2 m 2 n 1 C 1 1 f 1", .ret = 1},
        {.args = "p:0 8 M 1 2 m -2 n -5", .ret = 1},
        /* variadic: several members, fields and counters per op */
        {.args = "p:0 9 S 2 3 b c b H 1 2 h1 v1 h2 v2 C 1 2 f 0 c2 -4", .ret = 1},
        /* a counter leaving int64 saturates (reply 1 + how many) instead of failing the
         * apply half-way; so does one holding no integer (set to the increment) */
        {.args = "p:4 1 C 1 2 sat 9223372036854775800 sat 100", .ret = 2},
        {.args = "p:4 2 C 1 1 sat -7", .ret = 1},
        {.args = "p:4 3 C 1 2 low -9223372036854775808 low -1", .ret = 2},
        {.args = "p:4 4 H 1 1 txt abc C 1 1 txt 4", .ret = 2},
        {.args = "p:4 5 M 1 1 mm 5 M 1 1 mm 9223372036854775807 C 1 1 ok 1", .ret = 2},
        {.args = "p:4 6 M 1 1 mm -9223372036854775807", .ret = 1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char c[256];
        snprintf(c, sizeof(c), "FCALL csm_apply 3 F K1 K2 %s", cases[i].args);
        redisReply *r = redisCommand(E->raw, c); /* split on spaces */
        assert_non_null(r);
        if (cases[i].error) {
            if (r->type != REDIS_REPLY_ERROR)
                fail_msg("case %zu: want error '%s', got type %d", i, cases[i].error, r->type);
            assert_string_equal(r->str, cases[i].error);
        } else {
            if (r->type != REDIS_REPLY_INTEGER)
                fail_msg("case %zu: want %lld, got type %d %s", i, cases[i].ret, r->type,
                         r->type == REDIS_REPLY_ERROR ? r->str : "");
            assert_int_equal(r->integer, cases[i].ret);
        }
        freeReplyObject(r);
    }
    /* failed calls wrote nothing: f counts 3 (p:0 seq 5) + 10 (p:1) + 1 (p:0 seq 7) + 0 */
    assert_hget("K1", "f", "14");
    assert_hget("K1", "g", NULL);
    assert_hget("K1", "m", NULL);
    assert_hget("K1", "n", NULL);
    assert_hget("K1", "h1", "v1");
    assert_hget("K1", "h2", "v2");
    assert_hget("K1", "c2", "-4");
    assert_hget("F", "p:0", "9");
    assert_hget("F", "p:1", "1");
    assert_hget("K1", "sat", "9223372036854775800");
    assert_hget("K1", "low", "-9223372036854775808");
    assert_hget("K1", "txt", "4");
    assert_hget("K1", "mm", NULL); /* max + (-max) = 0: an M member at 0 goes */
    assert_hget("K1", "ok", "1");
    assert_hget("F", "p:4", "6");
    assert_int_equal(cmd_int("SCARD %s", "K2", NULL), 3); /* a b c */
    assert_int_equal(cmd_int("SISMEMBER %s %s", "K2", "z"), 0);
    /* T trims below its bound (exclusive); R and Z take several members */
    freeReplyObject(cmd("ZADD %s 1 a 2 b 3 c 4 d", "Z1"));
    redisReply *r = cmd("FCALL csm_apply 2 F Z1 p:2 1 Z 1 2 10 x -1 y R 1 2 c nothere T 1 1 2");
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    assert_int_equal(r->integer, 1);
    freeReplyObject(r);
    r = cmd("ZRANGE %s 0 -1 WITHSCORES", "Z1");
    assert_int_equal(r->elements, 6);
    const char *want[] = {"b", "2", "d", "4", "x", "10"};
    for (size_t i = 0; i < 6; i++)
        assert_string_equal(r->element[i]->str, want[i]);
    freeReplyObject(r);
    /* ops with no item at all: only the fence moves */
    r = cmd("FCALL csm_apply 2 F Z1 p:3 1");
    assert_int_equal(r->integer, 1);
    freeReplyObject(r);
    assert_hget("F", "p:3", "1");
}

/* Ops of DELTA_CHUNK items and more (split by delta into several ops) through
 * store_commit, and through a crash and the journal's replay. */
static void chunked_delta(struct delta *d)
{
    char m[32];
    for (int i = 0; i < 2500; i++) {
        snprintf(m, sizeof(m), "m%d", i);
        delta_sadd(d, AG1, ":2026-08:inq", m);
        delta_hset(d, AG1, ":h", m, m + 1);
        if (i < 1500)
            delta_zadd(d, AG1, ":2026-08:w", i, m);
        if (i < 1200)
            delta_mincr(d, AG1, ":2026-08:rep", m, i % 3);
        if (i < 1001)
            delta_incr(d, TEAM, ":2026-08:c", m, -i);
    }
}

static void test_commit_chunked(void **state)
{
    struct env *e = *state;
    char err[256] = "";
    struct delta *d = delta_new();
    chunked_delta(d);
    struct delta_group g;
    delta_group_get(d, 0, &g);
    assert_true(g.nargs > 3 * DELTA_CHUNK); /* several ops of DELTA_CHUNK items */
    struct store_batch b = sample_batch(d, -1, 10, 1);
    if (store_commit(e->st, &b, err, sizeof(err)) != 0)
        fail_msg("commit: %s", err);
    assert_int_equal(cmd_int("SCARD %s", AG1 ":2026-08:inq", NULL), 2500);
    assert_int_equal(cmd_int("HLEN %s", AG1 ":h", NULL), 2500);
    assert_hget(AG1 ":h", "m2499", "2499");
    assert_int_equal(cmd_int("ZCARD %s", AG1 ":2026-08:w", NULL), 1500);
    assert_int_equal(cmd_int("HLEN %s", AG1 ":2026-08:rep", NULL), 800); /* i % 3 > 0 */
    assert_hget(AG1 ":2026-08:rep", "m1197", NULL);
    assert_hget(AG1 ":2026-08:rep", "m1199", "2");
    assert_int_equal(cmd_int("HLEN %s", TEAM ":2026-08:c", NULL), 1000); /* m0 sums to 0 */
    assert_hget(TEAM ":2026-08:c", "m1000", "-1000");
    char *want = dump();

    /* crash right after the commit: the replay of the journal gives the same */
    freeReplyObject(cmd("FLUSHALL"));
    commit_only(d, "-1", "10", "1");
    struct store_partition_meta m;
    assert_int_equal(store_partition_recover(e->st, "cs.chat", 0, &m, err, sizeof(err)), 0);
    char *got = dump();
    assert_string_equal(got, want);
    free(got);
    free(want);
    delta_destroy(d);
}

/* The writes of a batch, one at a time: what they do applied in order (each its own
 * csm_apply) must be what their net effect does (one csm_apply per tag). */
struct write {
    char op; /* S Z R H C M T, as delta.h */
    const char *tag, *suffix, *field, *value;
    int64_t n;
};

static void write_to(struct delta *d, const struct write *w)
{
    switch (w->op) {
    case 'S':
        delta_sadd(d, w->tag, w->suffix, w->field);
        break;
    case 'Z':
        delta_zadd(d, w->tag, w->suffix, w->n, w->field);
        break;
    case 'R':
        delta_zrem(d, w->tag, w->suffix, w->field);
        break;
    case 'H':
        delta_hset(d, w->tag, w->suffix, w->field, w->value);
        break;
    case 'C':
        delta_incr(d, w->tag, w->suffix, w->field, w->n);
        break;
    case 'M':
        delta_mincr(d, w->tag, w->suffix, w->field, w->n);
        break;
    case 'T':
        delta_ztrim(d, w->tag, w->suffix, w->n);
        break;
    default:
        fail_msg("write %c", w->op);
    }
}

/* The database without the apply fences (their sequences differ between the runs). */
static char *dump_data(void)
{
    redisReply *ks = cmd("KEYS %s", "*:fence");
    for (size_t i = 0; i < ks->elements; i++)
        freeReplyObject(cmd("DEL %s", ks->element[i]->str));
    freeReplyObject(ks);
    return dump();
}

static void state_before(void)
{
    freeReplyObject(cmd("FLUSHALL"));
    freeReplyObject(cmd("SADD %s a", AG1 ":s"));
    freeReplyObject(cmd("ZADD %s 1 old 5 keep 100 high", AG1 ":w"));
    freeReplyObject(cmd("HSET %s f old", AG1 ":h"));
    freeReplyObject(cmd("HSET %s n 10", AG1 ":c"));
    freeReplyObject(cmd("HSET %s c1 2 c2 1", AG1 ":rep"));
}

static void test_net_equals_in_order(void **state)
{
    (void)state;
    char err[256] = "";
    static const struct write ws[] = {
        {.op = 'S', .tag = AG1, .suffix = ":s", .field = "b"},
        {.op = 'S', .tag = AG1, .suffix = ":s", .field = "a"}, /* already there */
        {.op = 'S', .tag = AG1, .suffix = ":s", .field = "b"},
        {.op = 'Z', .tag = AG1, .suffix = ":w", .field = "old", .n = 7}, /* then removed */
        {.op = 'R', .tag = AG1, .suffix = ":w", .field = "old"},
        {.op = 'R', .tag = AG1, .suffix = ":w", .field = "keep"}, /* then back */
        {.op = 'Z', .tag = AG1, .suffix = ":w", .field = "keep", .n = 9},
        {.op = 'Z', .tag = AG1, .suffix = ":w", .field = "new", .n = 3},
        {.op = 'Z', .tag = AG1, .suffix = ":w", .field = "new", .n = 4}, /* last score */
        {.op = 'Z', .tag = AG1, .suffix = ":w", .field = "low", .n = 1}, /* trimmed below */
        {.op = 'R', .tag = AG1, .suffix = ":w", .field = "never"},
        {.op = 'T', .tag = AG1, .suffix = ":w", .n = 2},
        {.op = 'T', .tag = AG1, .suffix = ":w", .n = 4}, /* the highest bound: new stays */
        {.op = 'T', .tag = AG1, .suffix = ":w", .n = 3},
        {.op = 'H', .tag = AG1, .suffix = ":h", .field = "f", .value = "v1"},
        {.op = 'H', .tag = AG1, .suffix = ":h", .field = "g", .value = "x"},
        {.op = 'H', .tag = AG1, .suffix = ":h", .field = "f", .value = "v2"},
        {.op = 'C', .tag = AG1, .suffix = ":c", .field = "n", .n = 5},
        {.op = 'C', .tag = AG1, .suffix = ":c", .field = "n", .n = -3},
        {.op = 'C', .tag = AG1, .suffix = ":c", .field = "m", .n = 7},
        {.op = 'M', .tag = AG1, .suffix = ":rep", .field = "c1", .n = -1},
        {.op = 'M', .tag = AG1, .suffix = ":rep", .field = "c1", .n = -1}, /* 0: goes */
        {.op = 'M', .tag = AG1, .suffix = ":rep", .field = "c2", .n = 1},
        {.op = 'M', .tag = AG1, .suffix = ":rep", .field = "c3", .n = 1},
        {.op = 'M', .tag = AG1, .suffix = ":rep", .field = "c3", .n = -1}, /* gone again */
        {.op = 'M', .tag = AG1, .suffix = ":rep", .field = "c4", .n = 2},
        {.op = 'S', .tag = TEAM, .suffix = ":agents", .field = "x1"},
        {.op = 'Z', .tag = TEAM, .suffix = ":periods", .field = "2026-08", .n = 1785513600000},
        {.op = 'Z', .tag = TEAM, .suffix = ":periods", .field = "2026-08", .n = 1785513600000},
        {.op = 'C', .tag = TEAM, .suffix = ":c", .field = "wait_n", .n = 2},
    };
    enum { NW = sizeof(ws) / sizeof(ws[0]) };
    char seq[24];

    /* in order: one delta, one csm_apply per write */
    state_before();
    struct delta *d = delta_new();
    for (size_t i = 0; i < NW; i++) {
        delta_reset(d);
        write_to(d, &ws[i]);
        snprintf(seq, sizeof(seq), "%zu", i + 1);
        assert_int_equal(delta_group_count(d), 1);
        if (apply_group(d, 0, seq, err, sizeof(err)) != 1)
            fail_msg("write %zu: %s", i, err);
    }
    char m[16];
    delta_reset(d);
    for (int i = 0; i < 1100; i++) { /* and a chunked set, in one csm_apply */
        snprintf(m, sizeof(m), "m%d", i % 1050);
        delta_sadd(d, TEAM, ":big", m);
    }
    assert_int_equal(apply_group(d, 0, "1000", err, sizeof(err)), 1);
    char *in_order = dump_data();

    /* net: everything in one delta */
    state_before();
    delta_reset(d);
    for (size_t i = 0; i < NW; i++)
        write_to(d, &ws[i]);
    for (int i = 0; i < 1100; i++) {
        snprintf(m, sizeof(m), "m%d", i % 1050);
        delta_sadd(d, TEAM, ":big", m);
    }
    assert_int_equal(delta_group_count(d), 2);
    for (size_t i = 0; i < 2; i++)
        if (apply_group(d, i, "1", err, sizeof(err)) != 1)
            fail_msg("group %zu: %s", i, err);
    char *net = dump_data();
    assert_string_equal(net, in_order);
    /* and what both are */
    assert_hget(AG1 ":h", "f", "v2");
    assert_hget(AG1 ":c", "n", "12");
    assert_hget(AG1 ":rep", "c1", NULL);
    assert_hget(AG1 ":rep", "c3", NULL);
    assert_hget(AG1 ":rep", "c2", "2");
    redisReply *r = cmd("ZRANGE %s 0 -1 WITHSCORES", AG1 ":w");
    assert_int_equal(r->elements, 6);
    const char *want[] = {"new", "4", "keep", "9", "high", "100"};
    for (size_t i = 0; i < 6; i++)
        assert_string_equal(r->element[i]->str, want[i]);
    freeReplyObject(r);
    assert_int_equal(cmd_int("SCARD %s", TEAM ":big", NULL), 1050);
    free(in_order);
    free(net);
    delta_destroy(d);
}

/* ---- watermark ---- */

static void test_watermark(void **state)
{
    struct env *e = *state;
    char err[256] = "";
    int64_t g = -5, cl = -5;
    const int64_t now = 1000000;
    /* no partition at all: 0 */
    assert_int_equal(store_wm(e->st, now, true, 0, NULL, &g, &cl, err, sizeof(err)), 0);
    assert_int_equal(g, 0);
    assert_int_equal(cl, 0);

#define P(n, w, idle)                                                                              \
    {                                                                                              \
        .name = (n), .wm_ms = (w), .idle_until_ms = (idle), .attributed_ms = -1                    \
    }
    static const struct step {
        bool allow_wall;
        struct store_wm_part parts[3];
        size_t n;
        int64_t want;
    } steps[] = {
        /* min over busy partitions */
        {.n = 2, .parts = {P("cs.chat:0", 500, 0), P("cs.chat:1", 300, 0)}, .want = 300},
        /* an idle partition (idle_until > now) is excluded */
        {.n = 2, .parts = {P("cs.chat:0", 600, 0), P("cs.chat:1", 300, 1000001)}, .want = 600},
        /* idle_until == now: busy again; min is 300, but never backwards */
        {.n = 1, .parts = {P("cs.chat:1", 300, 1000000)}, .want = 600},
        /* a partition's own watermark never goes back either */
        {.n = 2, .parts = {P("cs.chat:0", 100, 0), P("cs.chat:1", 900, 0)}, .want = 600},
        {.n = 1, .parts = {P("cs.chat:0", 700, 0)}, .want = 700},
        /* partitions written earlier (another instance's) still count */
        {.n = 1, .parts = {P("cs.chat:1", 950, 0)}, .want = 700},
        /* all idle, wall clock allowed: now */
        {.allow_wall = true,
         .n = 2,
         .parts = {P("cs.chat:0", 700, 2000000), P("cs.chat:1", 950, 2000000)},
         .want = 1000000},
        /* busy again, behind: stays */
        {.n = 1, .parts = {P("cs.chat:0", 800, 0)}, .want = 1000000},
    };
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        assert_int_equal(store_wm(e->st, now, steps[i].allow_wall, steps[i].n, steps[i].parts, &g,
                                  &cl, err, sizeof(err)),
                         0);
        if (g != steps[i].want || cl != steps[i].want) /* no orders partition: close = global */
            fail_msg("step %zu: global %" PRId64 " close %" PRId64 ", want %" PRId64, i, g, cl,
                     steps[i].want);
    }
    assert_hget("csm:{wm}:parts", "cs.chat:0", "800 0 -1 0");
    redisReply *r = cmd("GET %s", "csm:{wm}:global");
    assert_string_equal(r->str, "1000000");
    freeReplyObject(r);

    /* all idle without the wall clock: the largest partition watermark */
    freeReplyObject(cmd("FLUSHALL"));
    struct store_wm_part idle[] = {P("a:0", 40, now + 1), P("a:1", 70, now + 1)};
    assert_int_equal(store_wm(e->st, now, false, 2, idle, &g, &cl, err, sizeof(err)), 0);
    assert_int_equal(g, 70);
    assert_int_equal(store_wm(e->st, now, true, 2, idle, &g, &cl, err, sizeof(err)), 0);
    assert_int_equal(g, now);

    /* close = global held back by the orders partitions' attribution progress */
    freeReplyObject(cmd("FLUSHALL"));
    struct store_wm_part o[] = {P("cs.chat:0", 500, 0),
                                {.name = "shop.orders:0", .wm_ms = 900, .attributed_ms = 200}};
    assert_int_equal(store_wm(e->st, now, false, 2, o, &g, &cl, err, sizeof(err)), 0);
    assert_int_equal(g, 500);
    assert_int_equal(cl, 200);
    o[1].attributed_ms = 100; /* never backwards */
    assert_int_equal(store_wm(e->st, now, false, 2, o, &g, &cl, err, sizeof(err)), 0);
    assert_int_equal(cl, 200);
    o[1].attributed_ms = 800; /* not past the global */
    assert_int_equal(store_wm(e->st, now, false, 2, o, &g, &cl, err, sizeof(err)), 0);
    assert_int_equal(g, 500);
    assert_int_equal(cl, 500);

    /* a partition that exists but nobody ever published (its owner died first) holds the
     * global back, even when every published one is idle, until it is published */
    freeReplyObject(cmd("FLUSHALL"));
    const char *known[] = {"cs.chat:0", "cs.chat:1", "cs.chat:2"};
    store_set_partitions(e->st, 3, known);
    struct store_wm_part k2[] = {P("cs.chat:0", 500, 0), P("cs.chat:1", 700, now + 1)};
    assert_int_equal(store_wm(e->st, now, true, 2, k2, &g, &cl, err, sizeof(err)), 0);
    assert_int_equal(g, 0);
    assert_int_equal(cl, 0);
    struct store_wm_part k3[] = {P("cs.chat:2", 600, 0)};
    assert_int_equal(store_wm(e->st, now, true, 1, k3, &g, &cl, err, sizeof(err)), 0);
    assert_int_equal(g, 500);
    assert_int_equal(cl, 500);
    store_set_partitions(e->st, 0, NULL);

    /* leases: the close stays below every partition's lease (the global does not), and
     * moves on once the lease is gone; an entry of three numbers (before leases) has none */
    freeReplyObject(cmd("FLUSHALL"));
    struct store_wm_part l[] = {P("cs.chat:0", 500, 0), P("cs.chat:1", 700, 0)};
    l[1].lease_ms = 450;
    assert_int_equal(store_wm(e->st, now, false, 2, l, &g, &cl, err, sizeof(err)), 0);
    assert_int_equal(g, 500);
    assert_int_equal(cl, 449);
    assert_hget("csm:{wm}:parts", "cs.chat:1", "700 0 -1 450");
    l[0].wm_ms = 800;
    assert_int_equal(store_wm(e->st, now, false, 1, l, &g, &cl, err, sizeof(err)), 0);
    assert_int_equal(g, 700);
    assert_int_equal(cl, 449); /* cs.chat:1's lease still published */
    l[1].lease_ms = 0;
    assert_int_equal(store_wm(e->st, now, false, 2, l, &g, &cl, err, sizeof(err)), 0);
    assert_int_equal(cl, 700);
    l[1].lease_ms = 600; /* below the close already: never backwards */
    assert_int_equal(store_wm(e->st, now, false, 2, l, &g, &cl, err, sizeof(err)), 0);
    assert_int_equal(cl, 700);
    freeReplyObject(cmd("HSET %s %s %s", "csm:{wm}:parts", "cs.chat:1", "900 0 -1"));
    l[0].wm_ms = 1000;
    assert_int_equal(store_wm(e->st, now, false, 1, l, &g, &cl, err, sizeof(err)), 0);
    assert_int_equal(g, 900);
    assert_int_equal(cl, 900);
#undef P
}

/* ---- contacts ---- */

/* A customer's contact as the aggregation engine writes it (agg_chat). */
static void contact_add(struct delta *d, const char *shop, const char *customer, int64_t ts,
                        uint64_t seq, const char *agent, int64_t trim_below)
{
    struct buf tag, suffix, member;
    buf_init(&tag);
    buf_init(&suffix);
    buf_init(&member);
    keys_contact_parts(&tag, &suffix, "csm:", shop, customer);
    keys_contact_member(&member, ts, seq, agent);
    delta_zadd(d, tag.data, suffix.data, ts, member.data);
    delta_ztrim(d, tag.data, suffix.data, trim_below);
    buf_release(&tag);
    buf_release(&suffix);
    buf_release(&member);
}

static void test_contacts(void **state)
{
    struct env *e = *state;
    char err[256] = "";
    struct delta *d = delta_new();
    contact_add(d, "demo", "c1", 1000, 5, "x1", 0);
    contact_add(d, "demo", "c1", 2000, 6, "x2", 0);
    contact_add(d, "demo", "c1", 2000, 4, "x3", 0); /* same ts, earlier offset */
    contact_add(d, "demo", "c:2", 1500, 7, "agent 9", 0);
    contact_add(d, "other", "c1", 1800, 8, "y1", 0); /* another shop */
    struct store_batch b = {
        .topic = "shop.orders", .part = 3, .expected_off = -1, .new_off = 1, .seq = 1, .delta = d};
    assert_int_equal(store_commit(e->st, &b, err, sizeof(err)), 0);
    static const struct {
        const char *shop, *cust;
        int64_t ts, window;
        const char *want;
    } cases[] = {
        {.shop = "demo", .cust = "c1", .ts = 2500, .window = 10000, .want = "x2"},
        {.shop = "demo", .cust = "c1", .ts = 2000, .window = 10000, .want = "x2"}, /* at ts */
        {.shop = "demo", .cust = "c1", .ts = 1999, .window = 10000, .want = "x1"},
        {.shop = "demo", .cust = "c1", .ts = 1999, .window = 999, .want = "x1"}, /* edge */
        {.shop = "demo", .cust = "c1", .ts = 1999, .window = 998, .want = NULL},
        {.shop = "demo", .cust = "c1", .ts = 999, .window = 10000, .want = NULL},
        {.shop = "demo", .cust = "c:2", .ts = 1500, .window = 0, .want = "agent 9"},
        {.shop = "other", .cust = "c1", .ts = 5000, .window = 10000, .want = "y1"},
        {.shop = "demo", .cust = "nobody", .ts = 5000, .window = 10000, .want = NULL},
    };
    enum { N = sizeof(cases) / sizeof(cases[0]) };
    const char *shops[N], *custs[N];
    int64_t ts[N];
    char *agents[N];
    for (size_t i = 0; i < N; i++) {
        /* one call per case: each has its own window */
        shops[i] = cases[i].shop;
        custs[i] = cases[i].cust;
        ts[i] = cases[i].ts;
        assert_int_equal(store_contact_latest(e->st, 1, &shops[i], &custs[i], &ts[i],
                                              cases[i].window, &agents[i], err, sizeof(err)),
                         0);
        if (!cases[i].want) {
            if (agents[i])
                fail_msg("case %zu: want none, got '%s'", i, agents[i]);
        } else {
            if (!agents[i])
                fail_msg("case %zu: want '%s', got none", i, cases[i].want);
            assert_string_equal(agents[i], cases[i].want);
        }
        free(agents[i]);
    }
    /* several in one round trip */
    assert_int_equal(
        store_contact_latest(e->st, 3, shops, custs, ts, 10000, agents, err, sizeof(err)), 0);
    assert_string_equal(agents[0], "x2");
    assert_string_equal(agents[1], "x2");
    assert_string_equal(agents[2], "x1");
    for (int i = 0; i < 3; i++)
        free(agents[i]);
    assert_int_equal(store_contact_latest(e->st, 0, NULL, NULL, NULL, 0, NULL, err, sizeof(err)),
                     0);

    /* trimming drops older contacts */
    delta_reset(d);
    contact_add(d, "demo", "c1", 3000, 9, "x4", 2000);
    b = (struct store_batch){
        .topic = "shop.orders", .part = 3, .expected_off = 1, .new_off = 2, .seq = 2, .delta = d};
    assert_int_equal(store_commit(e->st, &b, err, sizeof(err)), 0);
    int64_t t1 = 1999;
    char *a1;
    assert_int_equal(
        store_contact_latest(e->st, 1, &shops[0], &custs[0], &t1, 10000, &a1, err, sizeof(err)), 0);
    assert_null(a1);
    delta_destroy(d);
}

/* ---- partition state scan ---- */

struct scan {
    int n;
    char text[256];
};

static void scan_cb(void *ud, const char *field, const char *value, size_t len)
{
    struct scan *s = ud;
    size_t used = strlen(s->text);
    snprintf(s->text + used, sizeof(s->text) - used, "%s=%.*s;", field, (int)len, value);
    s->n++;
}

static void test_state_scan(void **state)
{
    struct env *e = *state;
    char err[256];
    struct scan s = {0};
    assert_int_equal(
        store_state_scan(e->st, "shop.orders", 1, STORE_PEND, scan_cb, &s, err, sizeof(err)), 0);
    assert_int_equal(s.n, 0);
    freeReplyObject(cmd("HSET %s %s %s", "csm:{p:shop.orders:1}:pend", "o1", "1"));
    assert_int_equal(
        store_state_scan(e->st, "shop.orders", 1, STORE_PEND, scan_cb, &s, err, sizeof(err)), 0);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.text, "o1=1;");
}

/* ---- figures ---- */

static void test_figures(void **state)
{
    struct env *e = *state;
    char err[256] = "";
    struct period p;
    assert_int_equal(period_from_label("2026-08", &p), 0);
    static const char *setup_cmds[] = {
        "ZADD " AG1 ":periods 1785513600000 2026-08",
        "SADD " AG1 ":2026-08:inq c1 c2 c3",
        "HSET " AG1 ":2026-08:rep c1 2 c2 1 c4 1", /* c4 answered but not an inquiry */
        "SADD " AG1 ":2026-08:ord c2 c5",
        "SADD " AG1 ":2026-08:paid c5",
        "SADD " AG1 ":2026-08:ocreated o1 o2 o3",
        "SADD " AG1 ":2026-08:opaid o1",
        "SADD " AG1 ":2026-08:orefunded o1",
        "SADD " AG1 ":2026-08:ocancelled o2",
        "SADD " AG1 ":2026-08:oflagged o2 o3",
        "HSET " AG1 ":2026-08:c wait_n 3 wait_ms 100000 first_n 1 first_ms 5000 unans 2 "
        "complaints 1 order_cents 12345 sales_cents 5990 refund_cents 100 target_cents 100000 "
        "other 7",
        "ZADD " AG1 ":2026-08:w 5000 a 15000 b 80000 c",
        "HSET " AG1 ":2026-08:rv manager:follow_up 0.75 self:self_total 0.5 boss:x 0.1 nocolon 1",
    };
    for (size_t i = 0; i < sizeof(setup_cmds) / sizeof(setup_cmds[0]); i++) {
        redisReply *r = redisCommand(e->raw, setup_cmds[i]);
        assert_non_null(r);
        if (r->type == REDIS_REPLY_ERROR)
            fail_msg("%s: %s", setup_cmds[i], r->str);
        freeReplyObject(r);
    }
    /* Aug 3-5 and 4-7 overlap, Jul 1 - Aug 2 touches them: Aug 1-7 = 7 days;
     * Aug 25 - Sep 4 and Sep 4-14: Aug 25-31 = 7 days; one unreadable entry */
    static const char *abs[][2] = {{"e1", "20668 20670"}, {"e2", "20669 20672"},
                                   {"e3", "20635 20667"}, {"e4", "20690 20700"},
                                   {"e5", "20700 20710"}, {"e6", "garbage"}};
    for (size_t i = 0; i < sizeof(abs) / sizeof(abs[0]); i++)
        freeReplyObject(cmd("HSET %s %s %s", AG1 ":abs", abs[i][0], abs[i][1]));
    struct kpi_figures f;
    memset(&f, 0x5a, sizeof(f));
    if (store_read_figures(e->st, AG1, &p, &f, err, sizeof(err)) != 0)
        fail_msg("figures: %s", err);
    assert_int_equal(f.inquiries, 3);
    assert_int_equal(f.replied, 2);
    assert_int_equal(f.waits, 3);
    assert_int_equal(f.wait_sum_ms, 100000);
    assert_int_equal(f.first_waits, 1);
    assert_int_equal(f.first_wait_sum_ms, 5000);
    assert_int_equal(f.unanswered_waits, 2);
    assert_int_equal(f.wait_p90_ms, 80000); /* rank ceil(0.9 * 3) = 3 */
    assert_int_equal(f.ordered, 2);
    assert_int_equal(f.inquired_and_ordered, 1);
    assert_int_equal(f.paid_customers, 1);
    assert_int_equal(f.orders, 3);
    assert_int_equal(f.paid_orders, 1);
    assert_int_equal(f.refunded_orders, 1);
    assert_int_equal(f.cancelled_orders, 1);
    assert_int_equal(f.flagged_orders, 2);
    assert_int_equal(f.order_amount_cents, 12345);
    assert_int_equal(f.sales_cents, 5990);
    assert_int_equal(f.refund_amount_cents, 100);
    assert_int_equal(f.complaints, 1);
    assert_int_equal(f.target_cents, 100000);
    assert_int_equal(f.absent_days, 14);
    assert_int_equal(f.reviews_n, 2);
    /* HGETALL order is the hash's; find each */
    int seen = 0;
    for (size_t i = 0; i < f.reviews_n; i++) {
        if (strcmp(f.reviews[i].item, "follow_up") == 0) {
            assert_int_equal(f.reviews[i].role, ROLE_MANAGER);
            assert_true(f.reviews[i].value == 0.75);
            seen |= 1;
        } else if (strcmp(f.reviews[i].item, "self_total") == 0) {
            assert_int_equal(f.reviews[i].role, ROLE_SELF);
            assert_true(f.reviews[i].value == 0.5);
            seen |= 2;
        }
    }
    assert_int_equal(seen, 3);

    /* the same period label for another owner, or another period: not registered */
    struct period sep;
    assert_int_equal(period_from_label("2026-09", &sep), 0);
    assert_int_equal(store_read_figures(e->st, AG1, &sep, &f, err, sizeof(err)), 1);
    assert_int_equal(store_read_figures(e->st, TEAM, &p, &f, err, sizeof(err)), 1);

    /* registered but empty: zeros, no p90, no target */
    freeReplyObject(cmd("ZADD %s 1 %s", TEAM ":periods", "2026-08"));
    memset(&f, 0x5a, sizeof(f));
    assert_int_equal(store_read_figures(e->st, TEAM, &p, &f, err, sizeof(err)), 0);
    assert_int_equal(f.inquiries, 0);
    assert_int_equal(f.waits, 0);
    assert_int_equal(f.wait_p90_ms, -1);
    assert_int_equal(f.target_cents, -1);
    assert_int_equal(f.absent_days, 0);
    assert_int_equal(f.reviews_n, 0);
}

/* p90 nearest-rank: the smallest wait with >= 90 % of waits at or below it. */
static void test_figures_p90(void **state)
{
    struct env *e = *state;
    char err[256];
    struct period p;
    assert_int_equal(period_from_label("2026-08-10", &p), 0);
    static const struct {
        int n;
        int64_t want;
    } cases[] = {
        {.n = 1, .want = 1000},    {.n = 2, .want = 2000},   {.n = 9, .want = 9000},
        {.n = 10, .want = 9000},   {.n = 11, .want = 10000}, {.n = 19, .want = 18000},
        {.n = 20, .want = 18000},  {.n = 21, .want = 19000}, {.n = 100, .want = 90000},
        {.n = 101, .want = 91000},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        freeReplyObject(cmd("FLUSHALL"));
        freeReplyObject(cmd("ZADD %s 1 %s", AG1 ":periods", "2026-08-10"));
        /* waits 1000 .. n*1000, inserted in a scrambled order, members unrelated to rank */
        for (int k = 0; k < cases[i].n; k++) {
            int v = (k * 7919) % cases[i].n + 1;
            char member[32], score[32];
            snprintf(member, sizeof(member), "%d:cv%d", 1000 - v, v);
            snprintf(score, sizeof(score), "%d", v * 1000);
            freeReplyObject(cmd("ZADD %s %s %s", AG1 ":2026-08-10:w", score, member));
        }
        assert_int_equal(cmd_int("ZCARD %s", AG1 ":2026-08-10:w", NULL), cases[i].n);
        struct kpi_figures f;
        assert_int_equal(store_read_figures(e->st, AG1, &p, &f, err, sizeof(err)), 0);
        if (f.wait_p90_ms != cases[i].want)
            fail_msg("n %d: p90 %" PRId64 ", want %" PRId64, cases[i].n, f.wait_p90_ms,
                     cases[i].want);
    }
}

/* Errors with the connection gone: -1 and the text, nothing crashes. */
static void test_not_connected(void **state)
{
    struct env *e = *state;
    char err[256] = "";
    rconn_disconnect(e->rc);
    struct delta *d = delta_new();
    sample_delta(d);
    struct store_batch b = sample_batch(d, -1, 1, 1);
    assert_int_equal(store_commit(e->st, &b, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "not connected to redis"));
    struct store_partition_meta m;
    assert_int_equal(store_partition_recover(e->st, "cs.chat", 0, &m, err, sizeof(err)), -1);
    const char *id = "x", *cl = "y";
    bool dup;
    assert_int_equal(store_dedup(e->st, 1, &id, &cl, 1000, &dup, err, sizeof(err)), -1);
    int64_t g, close;
    assert_int_equal(store_wm(e->st, 1, true, 0, NULL, &g, &close, err, sizeof(err)), -1);
    struct period p;
    period_from_label("2026-08", &p);
    struct kpi_figures f;
    assert_int_equal(store_read_figures(e->st, AG1, &p, &f, err, sizeof(err)), -1);
    assert_int_equal(rconn_connect(e->rc, err, sizeof(err)), 0);
    delta_destroy(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_dedup, per_test_setup),
        cmocka_unit_test_setup(test_dedup_many, per_test_setup),
        cmocka_unit_test_setup(test_recover_fresh, per_test_setup),
        cmocka_unit_test_setup(test_commit, per_test_setup),
        cmocka_unit_test_setup(test_crash_recovery, per_test_setup),
        cmocka_unit_test_setup(test_recover_malformed_journal, per_test_setup),
        cmocka_unit_test_setup(test_apply_failure_keeps_journal, per_test_setup),
        cmocka_unit_test_setup(test_apply_fence_and_validation, per_test_setup),
        cmocka_unit_test_setup(test_apply_saturates, per_test_setup),
        cmocka_unit_test_setup(test_commit_chunked, per_test_setup),
        cmocka_unit_test_setup(test_net_equals_in_order, per_test_setup),
        cmocka_unit_test_setup(test_watermark, per_test_setup),
        cmocka_unit_test_setup(test_contacts, per_test_setup),
        cmocka_unit_test_setup(test_state_scan, per_test_setup),
        cmocka_unit_test_setup(test_figures, per_test_setup),
        cmocka_unit_test_setup(test_figures_p90, per_test_setup),
        cmocka_unit_test_setup(test_not_connected, per_test_setup),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
