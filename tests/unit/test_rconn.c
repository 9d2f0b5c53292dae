/* test_rconn — URL parsing (pure, table-driven) and rconn against throw-away redis-servers
 * on unix sockets (redis_fixture.h): handshake, pipelining, error replies, functions,
 * reconnect after CLIENT KILL, timeouts, requirepass and ACL users. */
#include "daemon/rconn.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/unit/redis_fixture.h"

#define SECRET "S3CRET"

/* ---- URL parsing ---- */

static const struct url_case {
    const char *url;
    const char *password;
    const char *describe; /* NULL when invalid */
    const char *err;      /* exact text when invalid */
} url_cases[] = {
    {.url = "redis://127.0.0.1", .describe = "127.0.0.1:6379/0"},
    {.url = "redis://localhost:6380/2", .describe = "localhost:6380/2"},
    {.url = "REDIS://h/", .describe = "h:6379/0"},
    {.url = "redis://u:" SECRET "@h:1/15", .describe = "h:1/15"},
    {.url = "redis://:" SECRET "@h", .describe = "h:6379/0"},
    {.url = "redis://u@h", .describe = "h:6379/0"},
    {.url = "redis://u:" SECRET "@h", .password = "override", .describe = "h:6379/0"},
    {.url = "redis://:p%40ss%2Fw%3A@h:7/3", .describe = "h:7/3"},
    {.url = "redis://u:pa@ss/w@h/4", .describe = "h:6379/4"},
    {.url = "redis://[::1]:7000/1", .describe = "[::1]:7000/1"},
    {.url = "redis://[::1]", .describe = "[::1]:6379/0"},
    {.url = "redis://h:65535/2147483647", .describe = "h:65535/2147483647"},
    {.url = "unix:///run/redis/redis.sock", .describe = "unix:/run/redis/redis.sock/0"},
    {.url = "unix://app:" SECRET "@/run/r.sock?db=3", .describe = "unix:/run/r.sock/3"},
    {.url = "unix:///run/r.sock?", .describe = "unix:/run/r.sock/0"},

    {.url = "redis://x:y@h:notaport",
     .err = "invalid redis url 'redis://x:***@h:notaport': bad port"},
    {.url = "redis://h:0", .err = "invalid redis url 'redis://h:0': bad port"},
    {.url = "redis://h:65536", .err = "invalid redis url 'redis://h:65536': bad port"},
    {.url = "redis://h:", .err = "invalid redis url 'redis://h:': bad port"},
    {.url = "redis://h:+1", .err = "invalid redis url 'redis://h:+1': bad port"},
    {.url = "redis://u:" SECRET "@h:99999999999/0",
     .err = "invalid redis url 'redis://u:***@h:99999999999/0': bad port"},
    {.url = "redis://h/abc", .err = "invalid redis url 'redis://h/abc': bad database number 'abc'"},
    {.url = "redis://h/-1", .err = "invalid redis url 'redis://h/-1': bad database number '-1'"},
    {.url = "redis://h/0/", .err = "invalid redis url 'redis://h/0/': bad database number '0/'"},
    {.url = "redis://:" SECRET "@h/x",
     .err = "invalid redis url 'redis://:***@h/x': bad database number 'x'"},
    {.url = "redis://h?db=1",
     .err =
         "invalid redis url 'redis://h?db=1': unexpected '?' (redis:// takes the database as /N)"},
    {.url = "redis://", .err = "invalid redis url 'redis://': missing host"},
    {.url = "redis://u:" SECRET "@:6379",
     .err = "invalid redis url 'redis://u:***@:6379': missing host"},
    {.url = "redis://::1:6379",
     .err = "invalid redis url 'redis://::1:6379': IPv6 address needs brackets"},
    {.url = "redis://[::1",
     .err = "invalid redis url 'redis://[::1': missing ']' after IPv6 address"},
    {.url = "redis://[::1]x",
     .err = "invalid redis url 'redis://[::1]x': unexpected text after ']'"},
    {.url = "http://u:" SECRET "@h",
     .err = "invalid redis url 'http://u:***@h': unknown scheme 'http' (want redis:// or unix://)"},
    {.url = "redis+unix:///tmp/s",
     .err =
         "invalid redis url 'redis+unix:///tmp/s': unknown scheme 'redis+unix' (want redis:// or "
         "unix://)"},
    {.url = "rediss://:" SECRET "@h",
     .err = "invalid redis url 'rediss://:***@h': TLS (rediss://) is not supported"},
    {.url = "localhost:6379",
     .err = "invalid redis url 'localhost:6379': missing scheme (want redis:// or unix://)"},
    {.url = "u:" SECRET "@localhost",
     .err = "invalid redis url 'u:***@localhost': missing scheme (want redis:// or unix://)"},
    {.url = "unix://tmp/s",
     .err = "invalid redis url 'unix://tmp/s': socket path must be absolute"},
    {.url = "unix://u:" SECRET "@tmp/s",
     .err = "invalid redis url 'unix://u:***@tmp/s': socket path must be absolute"},
    {.url = "unix:///tmp/s?db=x",
     .err = "invalid redis url 'unix:///tmp/s?db=x': bad database number 'x'"},
    {.url = "unix:///tmp/s?db=",
     .err = "invalid redis url 'unix:///tmp/s?db=': unknown parameter 'db=' (only db=N)"},
    {.url = "unix:///tmp/s?timeout=3",
     .err =
         "invalid redis url 'unix:///tmp/s?timeout=***': unknown parameter 'timeout' (only db=N)"},
    {.url = "unix:///tmp/s?db=1&password=" SECRET,
     .err = "invalid redis url 'unix:///tmp/s?db=1&password=***': unknown parameter 'password' "
            "(only db=N)"},
    {.url = "redis://h:1/0?password=" SECRET,
     .err = "invalid redis url 'redis://h:1/0?password=***': unexpected '?' (redis:// takes the "
            "database as /N)"},
    {.url = "redis://h?password=" SECRET,
     .err = "invalid redis url 'redis://h?password=***': unexpected '?' (redis:// takes the "
            "database as /N)"},
    {.url = "unix:///tmp/s?db=1&x",
     .err = "invalid redis url 'unix:///tmp/s?db=1&x': unknown parameter 'x' (only db=N)"},
    {.url = "redis://u%zz:" SECRET "@h",
     .err = "invalid redis url 'redis://u%zz:***@h': bad percent-encoding in user"},
    {.url = "redis://u:" SECRET "%4@h",
     .err = "invalid redis url 'redis://u:***@h': bad percent-encoding in password"},
    {.url = "redis://u:" SECRET "%00x@h",
     .err = "invalid redis url 'redis://u:***@h': bad percent-encoding in password"},
    {.url = "", .err = "missing redis url"},
};

static void test_url_table(void **state)
{
    for (size_t i = 0; i < sizeof(url_cases) / sizeof(url_cases[0]); i++) {
        const struct url_case *c = &url_cases[i];
        char err[256] = "";
        struct rconn_opts o = {.url = c->url, .password = c->password};
        struct rconn *r = rconn_new(&o, err, sizeof(err));
        if (c->describe) {
            if (!r)
                fail_msg("case %zu '%s': unexpected error: %s", i, c->url, err);
            assert_string_equal(rconn_describe(r), c->describe);
            assert_false(rconn_connected(r));
            assert_int_equal(rconn_pending(r), 0);
            assert_int_equal(rconn_roundtrips(r), 0);
        } else {
            if (r)
                fail_msg("case %zu '%s': accepted", i, c->url);
            assert_string_equal(err, c->err);
        }
        assert_null(strstr(err, SECRET));
        rconn_destroy(r);
    }
}

static void test_url_limits(void **state)
{
    char url[200], want[300], err[300];
    /* sun_path holds 107 bytes and a NUL; hiredis 0.14 would silently truncate. */
    snprintf(url, sizeof(url), "unix:///%0107d", 0);
    snprintf(want, sizeof(want), "invalid redis url '%s': socket path too long (max 107 bytes)",
             url);
    struct rconn_opts o = {.url = url};
    assert_null(rconn_new(&o, err, sizeof(err)));
    assert_string_equal(err, want);
    snprintf(url, sizeof(url), "unix:///%0106d", 0);
    struct rconn *r = rconn_new(&o, err, sizeof(err));
    assert_non_null(r);
    rconn_destroy(r);

    struct rconn_opts neg = {.url = "redis://h", .command_timeout_ms = -1};
    assert_null(rconn_new(&neg, err, sizeof(err)));
    assert_string_equal(err, "invalid redis timeout -1 ms: must not be negative");

    /* A tiny err buffer is truncated, not overrun; a NULL one is allowed. */
    struct rconn_opts bad = {.url = "redis://h:x"};
    char tiny[8];
    assert_null(rconn_new(&bad, tiny, sizeof(tiny)));
    assert_string_equal(tiny, "invalid");
    assert_null(rconn_new(&bad, NULL, 0));
    rconn_destroy(NULL);
}

/* ---- against a live server ---- */

static int group_setup(void **state)
{
    struct redis_fixture *f = calloc(1, sizeof(*f));
    if (!f || redis_fixture_start(f, NULL) != 0) {
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int group_teardown(void **state)
{
    struct redis_fixture *f = *state;
    if (f)
        redis_fixture_stop(f);
    free(f);
    return 0;
}

static struct rconn *open_ok(const char *url, const char *password, const char *lib)
{
    char err[256] = "";
    struct rconn_opts o = {.url = url, .password = password, .function_lib = lib};
    struct rconn *r = rconn_new(&o, err, sizeof(err));
    if (!r)
        fail_msg("rconn_new '%s': %s", url, err);
    if (rconn_connect(r, err, sizeof(err)) != 0)
        fail_msg("rconn_connect '%s': %s", url, err);
    assert_true(rconn_connected(r));
    return r;
}

static void expect_status(struct rconn *r, const char *want, const char *fmt, const char *arg)
{
    char err[256] = "";
    redisReply *rep = rconn_command(r, err, sizeof(err), fmt, arg);
    if (!rep)
        fail_msg("'%s': %s", fmt, err);
    assert_true(rep->type == REDIS_REPLY_STATUS || rep->type == REDIS_REPLY_STRING);
    assert_string_equal(rep->str, want);
    freeReplyObject(rep);
}

static long long client_id(struct rconn *r)
{
    char err[256];
    redisReply *rep = rconn_command(r, err, sizeof(err), "CLIENT ID");
    assert_non_null(rep);
    assert_int_equal(rep->type, REDIS_REPLY_INTEGER);
    long long id = rep->integer;
    freeReplyObject(rep);
    return id;
}

static void test_connect_unix(void **state)
{
    struct redis_fixture *f = *state;
    struct rconn *r = open_ok(f->url, NULL, NULL);
    char want[160];
    snprintf(want, sizeof(want), "unix:%s/0", f->sock);
    assert_string_equal(rconn_describe(r), want);
    assert_int_equal(rconn_roundtrips(r), 1); /* the handshake */
    expect_status(r, "PONG", "PING", NULL);
    expect_status(r, "OK", "SET csm:t:connect %s", "v a l");
    expect_status(r, "v a l", "GET csm:t:connect", NULL);
    assert_int_equal(rconn_roundtrips(r), 4);

    /* rconn_connect while connected starts afresh. */
    long long id = client_id(r);
    char err[256];
    assert_int_equal(rconn_connect(r, err, sizeof(err)), 0);
    assert_true(client_id(r) != id);

    rconn_disconnect(r);
    assert_false(rconn_connected(r));
    rconn_disconnect(r);
    rconn_destroy(r);
}

static void test_pipeline_1000(void **state)
{
    struct redis_fixture *f = *state;
    struct rconn *r = open_ok(f->url, NULL, NULL);
    const char *del[] = {"DEL", "csm:t:counter"};
    const size_t dellen[] = {3, 13};
    rconn_append(r, 2, del, dellen);
    for (int i = 0; i < 1000; i++)
        rconn_appendf(r, "INCR %s", "csm:t:counter");
    assert_int_equal(rconn_pending(r), 1001);
    int64_t before = rconn_roundtrips(r);
    redisReply **reps;
    size_t n;
    char err[256] = "";
    assert_int_equal(rconn_exec(r, &reps, &n, err, sizeof(err)), 0);
    assert_int_equal(n, 1001);
    assert_int_equal(rconn_pending(r), 0);
    assert_int_equal(rconn_roundtrips(r), before + 1);
    assert_int_equal(reps[0]->type, REDIS_REPLY_INTEGER);
    for (size_t i = 1; i < n; i++) {
        assert_int_equal(reps[i]->type, REDIS_REPLY_INTEGER);
        assert_int_equal(reps[i]->integer, (long long)i);
    }
    rconn_replies_free(reps, n);

    /* An empty queue is a no-op round trip. */
    assert_int_equal(rconn_exec(r, &reps, &n, err, sizeof(err)), 0);
    assert_null(reps);
    assert_int_equal(n, 0);
    assert_int_equal(rconn_roundtrips(r), before + 1);
    rconn_replies_free(NULL, 0);
    rconn_destroy(r);
}

static void test_error_reply(void **state)
{
    struct redis_fixture *f = *state;
    struct rconn *r = open_ok(f->url, NULL, NULL);
    const char *bin = "a\0b"; /* %b keeps the NUL */
    rconn_appendf(r, "SET csm:t:str %b", bin, (size_t)3);
    rconn_appendf(r, "LPUSH csm:t:str x");
    rconn_appendf(r, "GET csm:t:str");
    redisReply **reps;
    size_t n;
    char err[256] = "";
    assert_int_equal(rconn_exec(r, &reps, &n, err, sizeof(err)), 0);
    assert_int_equal(n, 3);
    assert_int_equal(reps[0]->type, REDIS_REPLY_STATUS);
    assert_int_equal(reps[1]->type, REDIS_REPLY_ERROR);
    assert_string_equal(reps[1]->str,
                        "WRONGTYPE Operation against a key holding the wrong kind of value");
    assert_int_equal(reps[2]->type, REDIS_REPLY_STRING);
    assert_int_equal(reps[2]->len, 3);
    assert_memory_equal(reps[2]->str, bin, 3);
    rconn_replies_free(reps, n);
    assert_true(rconn_connected(r));

    /* rconn_command: NULL with the reply's text, still connected. */
    assert_null(rconn_command(r, err, sizeof(err), "LPUSH csm:t:str y"));
    assert_string_equal(err, "WRONGTYPE Operation against a key holding the wrong kind of value");
    assert_true(rconn_connected(r));
    assert_null(rconn_command(r, err, sizeof(err), "NOSUCHCMD a"));
    assert_string_equal(err, "ERR unknown command 'NOSUCHCMD', with args beginning with: 'a' ");
    expect_status(r, "PONG", "PING", NULL);
    rconn_destroy(r);
}

static void test_bad_format(void **state)
{
    struct redis_fixture *f = *state;
    struct rconn *r = open_ok(f->url, NULL, NULL);
    char err[256], want[200];
    rconn_appendf(r, "PING");
    rconn_appendf(r, "GET %q");
    rconn_appendf(r, "PING");
    assert_int_equal(rconn_pending(r), 3);
    assert_false(rconn_connected(r)); /* hiredis set c->err: the context is dead */
    redisReply **reps;
    size_t n;
    assert_int_equal(rconn_exec(r, &reps, &n, err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "cannot queue command for redis 'unix:%s': Invalid format string",
             f->sock);
    assert_string_equal(err, want);
    assert_int_equal(rconn_pending(r), 0);
    assert_int_equal(rconn_connect(r, err, sizeof(err)), 0);
    expect_status(r, "PONG", "PING", NULL);
    rconn_destroy(r);
}

#define TEST_LIB                                                                                   \
    "#!lua name=csmtest\nredis.register_function('csm_echo', function(keys, args) return args[1] " \
    "end)"

static void expect_echo(struct rconn *r)
{
    char err[256] = "";
    redisReply *rep = rconn_command(r, err, sizeof(err), "FCALL csm_echo 0 %s", "hi");
    if (!rep)
        fail_msg("FCALL: %s", err);
    assert_int_equal(rep->type, REDIS_REPLY_STRING);
    assert_string_equal(rep->str, "hi");
    freeReplyObject(rep);
}

static void test_function_lib(void **state)
{
    struct redis_fixture *f = *state;
    struct rconn *r = open_ok(f->url, NULL, TEST_LIB);
    expect_echo(r);
    /* REPLACE: connecting again with the library already loaded works. */
    struct rconn *r2 = open_ok(f->url, NULL, TEST_LIB);
    expect_echo(r2);
    rconn_destroy(r2);

    struct rconn_opts o = {.url = f->url, .function_lib = "#!lua name=csmbad\nthis is not lua"};
    char err[256] = "", want[200];
    struct rconn *bad = rconn_new(&o, err, sizeof(err));
    assert_non_null(bad);
    assert_int_equal(rconn_connect(bad, err, sizeof(err)), -1);
    snprintf(want, sizeof(want),
             "cannot load redis functions on 'unix:%s': ERR Error compiling function:", f->sock);
    assert_memory_equal(err, want, strlen(want));
    assert_false(rconn_connected(bad));
    rconn_destroy(bad);
    rconn_destroy(r);
}

static void test_reconnect_after_kill(void **state)
{
    struct redis_fixture *f = *state;
    struct rconn *r = open_ok(f->url, NULL, TEST_LIB);
    struct rconn *admin = open_ok(f->url, NULL, NULL);
    char err[256] = "", want[200];

    for (int round = 0; round < 2; round++) {
        long long id = client_id(r);
        redisReply *rep = rconn_command(admin, err, sizeof(err), "CLIENT KILL ID %lld", id);
        assert_non_null(rep);
        assert_int_equal(rep->integer, 1);
        freeReplyObject(rep);

        /* The first write to the closed unix socket gets EPIPE; SIGPIPE must not kill us. */
        for (int i = 0; i < 100; i++)
            rconn_appendf(r, "INCR csm:t:kill");
        redisReply **reps = (redisReply **)1;
        size_t n = 1;
        assert_int_equal(rconn_exec(r, &reps, &n, err, sizeof(err)), -1);
        assert_null(reps);
        assert_int_equal(n, 0);
        snprintf(want, sizeof(want), "lost connection to redis 'unix:%s': ", f->sock);
        assert_memory_equal(err, want, strlen(want));
        assert_false(rconn_connected(r));
        assert_int_equal(rconn_pending(r), 0);

        /* Disconnected: commands count, exec says so and clears the queue. */
        rconn_appendf(r, "PING");
        const char *argv[] = {"PING"};
        const size_t lens[] = {4};
        rconn_append(r, 1, argv, lens);
        assert_int_equal(rconn_pending(r), 2);
        assert_int_equal(rconn_exec(r, &reps, &n, err, sizeof(err)), -1);
        snprintf(want, sizeof(want), "not connected to redis 'unix:%s'", f->sock);
        assert_string_equal(err, want);
        assert_int_equal(rconn_pending(r), 0);
        assert_null(rconn_command(r, err, sizeof(err), "PING"));
        assert_string_equal(err, want);

        assert_int_equal(rconn_connect(r, err, sizeof(err)), 0);
        assert_true(rconn_connected(r));
        expect_echo(r);
    }
    rconn_destroy(admin);
    rconn_destroy(r);
}

static void test_queue_lost_on_disconnect(void **state)
{
    struct redis_fixture *f = *state;
    struct rconn *r = open_ok(f->url, NULL, NULL);
    char err[256], want[200];
    snprintf(want, sizeof(want), "not connected to redis 'unix:%s'", f->sock);
    redisReply **reps;
    size_t n;

    /* Queued on a connection that is then dropped: never paired with later replies. */
    rconn_appendf(r, "SET csm:t:lost a");
    rconn_disconnect(r);
    assert_int_equal(rconn_connect(r, err, sizeof(err)), 0);
    rconn_appendf(r, "GET csm:t:lost");
    assert_int_equal(rconn_pending(r), 2);
    assert_int_equal(rconn_exec(r, &reps, &n, err, sizeof(err)), -1);
    assert_string_equal(err, want);
    assert_true(rconn_connected(r));

    /* The queue is clean again: the SET was never sent. */
    rconn_appendf(r, "EXISTS csm:t:lost");
    assert_int_equal(rconn_exec(r, &reps, &n, err, sizeof(err)), 0);
    assert_int_equal(n, 1);
    assert_int_equal(reps[0]->integer, 0);
    rconn_replies_free(reps, n);

    /* Queued while disconnected, then rconn_connect: also lost. */
    rconn_disconnect(r);
    rconn_appendf(r, "SET csm:t:lost b");
    assert_int_equal(rconn_connect(r, err, sizeof(err)), 0);
    assert_int_equal(rconn_exec(r, &reps, &n, err, sizeof(err)), -1);
    assert_string_equal(err, want);
    rconn_destroy(r);
}

static void test_timeout(void **state)
{
    struct redis_fixture *f = *state;
    struct rconn_opts o = {.url = f->url, .command_timeout_ms = 200};
    char err[256] = "", want[200];
    struct rconn *r = rconn_new(&o, err, sizeof(err));
    assert_non_null(r);
    assert_int_equal(rconn_connect(r, err, sizeof(err)), 0);
    assert_null(rconn_command(r, err, sizeof(err), "BLPOP csm:t:never 5"));
    snprintf(want, sizeof(want), "timeout after 200 ms talking to redis 'unix:%s'", f->sock);
    assert_string_equal(err, want);
    assert_false(rconn_connected(r));
    assert_int_equal(rconn_connect(r, err, sizeof(err)), 0);
    expect_status(r, "PONG", "PING", NULL);
    rconn_destroy(r);
}

static void test_select_db(void **state)
{
    struct redis_fixture *f = *state;
    char url[200], err[256] = "", want[200];
    snprintf(url, sizeof(url), "%s?db=3", f->url);
    struct rconn *r3 = open_ok(url, NULL, NULL);
    struct rconn *r0 = open_ok(f->url, NULL, NULL);
    snprintf(want, sizeof(want), "unix:%s/3", f->sock);
    assert_string_equal(rconn_describe(r3), want);
    expect_status(r3, "OK", "SET csm:t:db %s", "three");
    redisReply *rep = rconn_command(r0, err, sizeof(err), "GET csm:t:db");
    assert_non_null(rep);
    assert_int_equal(rep->type, REDIS_REPLY_NIL);
    freeReplyObject(rep);
    /* SELECT is redone on reconnect. */
    assert_int_equal(rconn_connect(r3, err, sizeof(err)), 0);
    expect_status(r3, "three", "GET csm:t:db", NULL);
    rconn_destroy(r0);
    rconn_destroy(r3);

    snprintf(url, sizeof(url), "%s?db=99", f->url);
    struct rconn_opts o = {.url = url};
    struct rconn *r = rconn_new(&o, err, sizeof(err));
    assert_non_null(r);
    assert_int_equal(rconn_connect(r, err, sizeof(err)), -1);
    snprintf(want, sizeof(want),
             "cannot select redis database 99 on 'unix:%s': ERR DB index is out of range", f->sock);
    assert_string_equal(err, want);
    assert_false(rconn_connected(r));
    rconn_destroy(r);
}

static void test_connect_refused(void **state)
{
    static const struct {
        const char *url, *err;
    } cases[] = {
        {.url = "redis://u:" SECRET "@127.0.0.1:1/0",
         .err = "cannot connect to redis '127.0.0.1:1': Connection refused"},
        {.url = "unix://:" SECRET "@/nonexistent/csm.sock",
         .err = "cannot connect to redis 'unix:/nonexistent/csm.sock': No such file or directory"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char err[256] = "";
        struct rconn_opts o = {.url = cases[i].url, .connect_timeout_ms = 500};
        struct rconn *r = rconn_new(&o, err, sizeof(err));
        assert_non_null(r);
        assert_int_equal(rconn_connect(r, err, sizeof(err)), -1);
        assert_string_equal(err, cases[i].err);
        assert_false(rconn_connected(r));
        rconn_destroy(r);
    }
}

/* A TCP port that was free a moment ago (redis-server binds it right after). */
static int free_tcp_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    close(fd);
    return ntohs(sa.sin_port);
}

static void test_connect_tcp(void **state)
{
    struct redis_fixture f = {0};
    char port[16], url[120], want[120];
    snprintf(port, sizeof(port), "%d", free_tcp_port());
    /* "-::1": IPv6 only if the host has it. */
    const char *args[] = {"--port", port, "--bind", "127.0.0.1", "-::1", NULL};
    assert_int_equal(redis_fixture_start(&f, args), 0);

    snprintf(url, sizeof(url), "redis://127.0.0.1:%s/2", port);
    struct rconn *r = open_ok(url, NULL, TEST_LIB);
    snprintf(want, sizeof(want), "127.0.0.1:%s/2", port);
    assert_string_equal(rconn_describe(r), want);
    expect_echo(r);
    rconn_destroy(r);

    snprintf(url, sizeof(url), "redis://[::1]:%s", port);
    struct rconn_opts o = {.url = url};
    char err[256];
    r = rconn_new(&o, err, sizeof(err));
    assert_non_null(r);
    if (rconn_connect(r, err, sizeof(err)) == 0)
        expect_status(r, "PONG", "PING", NULL);
    else /* no IPv6 loopback here */
        print_message("skipped [::1]: %s\n", err);
    rconn_destroy(r);
    redis_fixture_stop(&f);
}

static void test_requirepass(void **state)
{
    struct redis_fixture f = {0};
    const char *args[] = {"--requirepass", "secret", NULL};
    assert_int_equal(redis_fixture_start(&f, args), 0);
    char url[200], err[256], want[200];

    /* No password: the PING of the handshake is refused. */
    struct rconn_opts o = {.url = f.url};
    struct rconn *r = rconn_new(&o, err, sizeof(err));
    assert_non_null(r);
    assert_int_equal(rconn_connect(r, err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "cannot ping redis 'unix:%s': NOAUTH Authentication required.",
             f.sock);
    assert_string_equal(err, want);
    rconn_destroy(r);

    /* Wrong password (in the URL); the message names the user, not the password. */
    snprintf(url, sizeof(url), "unix://:wrongsecret@%s", f.sock);
    o.url = url;
    r = rconn_new(&o, err, sizeof(err));
    assert_non_null(r);
    assert_int_equal(rconn_connect(r, err, sizeof(err)), -1);
    assert_string_equal(err, "redis auth failed for user 'default': WRONGPASS invalid "
                             "username-password pair or user is disabled.");
    rconn_destroy(r);

    /* The URL's password, and the password option overriding a wrong one. */
    snprintf(url, sizeof(url), "unix://:secret@%s", f.sock);
    r = open_ok(url, NULL, NULL);
    expect_status(r, "PONG", "PING", NULL);
    rconn_destroy(r);
    snprintf(url, sizeof(url), "unix://:wrongsecret@%s", f.sock);
    r = open_ok(url, "secret", TEST_LIB);
    expect_echo(r);
    assert_null(strstr(rconn_describe(r), "secret"));
    /* Reconnect re-authenticates. */
    assert_int_equal(rconn_connect(r, err, sizeof(err)), 0);
    expect_echo(r);
    rconn_destroy(r);
    redis_fixture_stop(&f);
}

static void test_acl_user(void **state)
{
    struct redis_fixture f = {0};
    const char *args[] = {"--user", "app", "on",          ">apppw", "~csm:*", "+@all", "--user",
                          "enc",    "on",  ">p@ss:w/rd%", "~*",     "+@all",  NULL};
    assert_int_equal(redis_fixture_start(&f, args), 0);
    char url[200], err[256];

    snprintf(url, sizeof(url), "unix://app:apppw@%s", f.sock);
    struct rconn *r = open_ok(url, NULL, NULL);
    redisReply *rep = rconn_command(r, err, sizeof(err), "ACL WHOAMI");
    assert_non_null(rep);
    assert_string_equal(rep->str, "app");
    freeReplyObject(rep);
    expect_status(r, "OK", "SET csm:t:acl %s", "1");
    assert_null(rconn_command(r, err, sizeof(err), "SET other:t 1"));
    assert_string_equal(err, "NOPERM this user has no permissions to access one of the keys used "
                             "as arguments");
    assert_true(rconn_connected(r));
    rconn_destroy(r);

    /* The password option with the user from the URL. */
    snprintf(url, sizeof(url), "unix://app@%s?db=1", f.sock);
    r = open_ok(url, "apppw", NULL);
    rconn_destroy(r);

    /* Percent-encoded user and password with '@', ':', '/' and '%'. */
    snprintf(url, sizeof(url), "unix://%%65nc:p%%40ss%%3Aw%%2Frd%%25@%s", f.sock);
    r = open_ok(url, NULL, NULL);
    rep = rconn_command(r, err, sizeof(err), "ACL WHOAMI");
    assert_non_null(rep);
    assert_string_equal(rep->str, "enc");
    freeReplyObject(rep);
    rconn_destroy(r);

    /* Wrong password for a named user. */
    snprintf(url, sizeof(url), "unix://app:apppwX@%s", f.sock);
    struct rconn_opts o = {.url = url};
    r = rconn_new(&o, err, sizeof(err));
    assert_non_null(r);
    assert_int_equal(rconn_connect(r, err, sizeof(err)), -1);
    assert_string_equal(err,
                        "redis auth failed for user 'app': WRONGPASS invalid username-password "
                        "pair or user is disabled.");
    assert_null(strstr(err, "apppw"));
    rconn_destroy(r);
    redis_fixture_stop(&f);
}

int main(void)
{
    const struct CMUnitTest pure[] = {
        cmocka_unit_test(test_url_table),       cmocka_unit_test(test_url_limits),
        cmocka_unit_test(test_connect_refused), cmocka_unit_test(test_connect_tcp),
        cmocka_unit_test(test_requirepass),     cmocka_unit_test(test_acl_user),
    };
    const struct CMUnitTest live[] = {
        cmocka_unit_test(test_connect_unix),
        cmocka_unit_test(test_pipeline_1000),
        cmocka_unit_test(test_error_reply),
        cmocka_unit_test(test_bad_format),
        cmocka_unit_test(test_function_lib),
        cmocka_unit_test(test_reconnect_after_kill),
        cmocka_unit_test(test_queue_lost_on_disconnect),
        cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_select_db),
    };
    int failed = cmocka_run_group_tests_name("rconn_standalone", pure, NULL, NULL);
    failed += cmocka_run_group_tests_name("rconn_live", live, group_setup, group_teardown);
    return failed != 0;
}
