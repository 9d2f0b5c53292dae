/* rconn — see rconn.h. The URL parser is pure (parse_url); the rest is a thin shell over
 * hiredis 0.14.1's blocking API. Queued commands live in the context's output buffer, so
 * whenever the context is freed with commands queued, `lost` makes the next rconn_exec fail
 * rather than let later replies be paired with the wrong commands. */
#include "daemon/rconn.h"
#include "common/buf.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>

enum {
    RCONN_DEFAULT_PORT = 6379,
    RCONN_CONNECT_TIMEOUT_MS = 2000,
    RCONN_COMMAND_TIMEOUT_MS = 5000
};

enum rconn_kind { RCONN_TCP, RCONN_UNIX };

struct rconn {
    enum rconn_kind kind;
    char *host; /* RCONN_TCP, without IPv6 brackets */
    int port;
    char *path; /* RCONN_UNIX */
    int db;
    char *user;     /* NULL: none given (AUTH <password>) */
    char *password; /* NULL: none */
    char *function_lib;
    char *function_name; /* its "#!lua name=..." (NULL: none; then it is always loaded) */
    bool list_refused;   /* the last connect's FUNCTION LIST got an error reply */
    int connect_timeout_ms, command_timeout_ms;
    char *addr;     /* "host:port" or "unix:/path", for messages */
    char *describe; /* addr + "/db" */

    redisContext *c; /* NULL when disconnected; never kept with c->err set */
    size_t pending;  /* commands queued since the last rconn_exec */
    bool lost;       /* some of them never reached c's output buffer, or c was freed */
    char qerr[128];  /* why queueing failed, when hiredis said so */
    int64_t roundtrips;
    struct buf fmt;              /* one command in RESP, being queued */
    struct metrics_hist latency; /* of the round trips, seconds */
};

static void fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* ---- URL parsing (pure) ---- */

/* A copy of url with the password part of any user-info, and the value of every query
 * parameter but db (unix://...?password=x is a common mistake), replaced by "***". Works on
 * malformed URLs too: whatever lies between the first ':' after the scheme and the last '@'
 * is hidden. */
static char *mask_url(const char *url)
{
    const char *sep = strstr(url, "://");
    const char *start = sep ? sep + 3 : url;
    const char *at = strrchr(start, '@');
    const char *colon = at ? memchr(start, ':', (size_t)(at - start)) : NULL;
    const char *rest = url;
    struct buf b;
    buf_init(&b);
    if (colon) {
        buf_add(&b, url, (size_t)(colon - url) + 1);
        buf_adds(&b, "***");
        rest = at;
    }
    const char *q = strchr(rest, '?');
    if (!q) {
        buf_adds(&b, rest);
        return b.data;
    }
    buf_add(&b, rest, (size_t)(q - rest));
    while (*q) { /* q at '?' or '&' */
        size_t n = strcspn(q + 1, "&");
        const char *eq = memchr(q + 1, '=', n);
        if (eq && !(eq - q - 1 == 2 && strncmp(q + 1, "db", 2) == 0)) {
            buf_add(&b, q, (size_t)(eq - q) + 1);
            buf_adds(&b, "***");
        } else {
            buf_add(&b, q, n + 1);
        }
        q += n + 1;
    }
    return b.data;
}

static int hexval(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Percent-decodes s[0..n) into a new string; NULL on a bad or NUL escape. */
static char *percent_decode(const char *s, size_t n)
{
    char *out = xmalloc(n + 1), *o = out;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '%') {
            *o++ = s[i];
            continue;
        }
        if (i + 2 < n) {
            int hi = hexval((unsigned char)s[i + 1]);
            int lo = hexval((unsigned char)s[i + 2]);
            if (hi >= 0 && lo >= 0 && (hi | lo) != 0) {
                *o++ = (char)(hi * 16 + lo);
                i += 2;
                continue;
            }
        }
        free(out);
        return NULL;
    }
    *o = '\0';
    return out;
}

/* Digits only, within [min, max]. */
static int parse_uint(const char *s, size_t n, long min, long max, long *out)
{
    if (n == 0 || n > 10)
        return -1;
    long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    if (v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

static int parse_userinfo(const char *s, size_t n, struct rconn *r, char *why, size_t whylen)
{
    const char *colon = memchr(s, ':', n);
    size_t ulen = colon ? (size_t)(colon - s) : n;
    if (ulen > 0) {
        r->user = percent_decode(s, ulen);
        if (!r->user) {
            fail(why, whylen, "bad percent-encoding in user");
            return -1;
        }
    }
    if (colon) {
        r->password = percent_decode(colon + 1, n - ulen - 1);
        if (!r->password) {
            fail(why, whylen, "bad percent-encoding in password");
            return -1;
        }
    }
    return 0;
}

/* host[:port][/db] */
static int parse_tcp(const char *s, struct rconn *r, char *why, size_t whylen)
{
    size_t hostport = strcspn(s, "/?#");
    const char *rest = s + hostport;
    const char *host = s, *port = NULL;
    size_t hostlen;
    if (*s == '[') {
        const char *close = memchr(s, ']', hostport);
        if (!close) {
            fail(why, whylen, "missing ']' after IPv6 address");
            return -1;
        }
        host = s + 1;
        hostlen = (size_t)(close - host);
        if (close + 1 < rest) {
            if (close[1] != ':') {
                fail(why, whylen, "unexpected text after ']'");
                return -1;
            }
            port = close + 2;
        }
    } else {
        const char *colon = memchr(s, ':', hostport);
        hostlen = colon ? (size_t)(colon - s) : hostport;
        if (colon && memchr(colon + 1, ':', (size_t)(rest - colon - 1))) {
            fail(why, whylen, "IPv6 address needs brackets");
            return -1;
        }
        if (colon)
            port = colon + 1;
    }
    if (hostlen == 0) {
        fail(why, whylen, "missing host");
        return -1;
    }
    r->host = xstrndup(host, hostlen);
    r->port = RCONN_DEFAULT_PORT;
    if (port) {
        long v;
        if (parse_uint(port, (size_t)(rest - port), 1, 65535, &v) != 0) {
            fail(why, whylen, "bad port");
            return -1;
        }
        r->port = (int)v;
    }
    /* No query: what follows '?' may be a password (redis://h?password=x). */
    const char *query = rest + strcspn(rest, "?#");
    if (*query) {
        fail(why, whylen, "unexpected '%c' (redis:// takes the database as /N)", *query);
        return -1;
    }
    if (*rest == '/' && rest[1] != '\0') {
        long v;
        if (parse_uint(rest + 1, strlen(rest + 1), 0, INT_MAX, &v) != 0) {
            fail(why, whylen, "bad database number '%s'", rest + 1);
            return -1;
        }
        r->db = (int)v;
    }
    return 0;
}

/* /path/to/sock[?db=N] */
static int parse_unix(const char *s, struct rconn *r, char *why, size_t whylen)
{
    if (*s != '/') {
        fail(why, whylen, "socket path must be absolute");
        return -1;
    }
    size_t pathlen = strcspn(s, "?");
    if (pathlen >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
        fail(why, whylen, "socket path too long (max %zu bytes)",
             sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
        return -1;
    }
    r->path = xstrndup(s, pathlen);
    const char *q = s[pathlen] == '?' ? s + pathlen + 1 : NULL;
    while (q && *q) {
        size_t n = strcspn(q, "&");
        if (n > 3 && strncmp(q, "db=", 3) == 0) {
            long v;
            if (parse_uint(q + 3, n - 3, 0, INT_MAX, &v) != 0) {
                fail(why, whylen, "bad database number '%.*s'", (int)(n - 3), q + 3);
                return -1;
            }
            r->db = (int)v;
        } else {
            /* the name only: the value may be a password */
            int shown = strncmp(q, "db=", 3) == 0 ? (int)n : (int)strcspn(q, "=&");
            fail(why, whylen, "unknown parameter '%.*s' (only db=N)", shown, q);
            return -1;
        }
        q += n;
        if (*q == '&')
            q++;
    }
    return 0;
}

/* Fills r's address, credentials and db from url; on error a reason (never the password). */
static int parse_url(const char *url, struct rconn *r, char *why, size_t whylen)
{
    const char *sep = strstr(url, "://");
    if (!sep) {
        fail(why, whylen, "missing scheme (want redis:// or unix://)");
        return -1;
    }
    size_t slen = (size_t)(sep - url);
    if (slen == 5 && strncasecmp(url, "redis", 5) == 0) {
        r->kind = RCONN_TCP;
    } else if (slen == 4 && strncasecmp(url, "unix", 4) == 0) {
        r->kind = RCONN_UNIX;
    } else if (slen == 6 && strncasecmp(url, "rediss", 6) == 0) {
        fail(why, whylen, "TLS (rediss://) is not supported");
        return -1;
    } else {
        fail(why, whylen, "unknown scheme '%.*s' (want redis:// or unix://)", (int)slen, url);
        return -1;
    }
    const char *rest = sep + 3;
    /* The last '@': passwords with an unencoded '@' or '/' still parse. */
    const char *at = strrchr(rest, '@');
    if (at) {
        if (parse_userinfo(rest, (size_t)(at - rest), r, why, whylen) != 0)
            return -1;
        rest = at + 1;
    }
    return r->kind == RCONN_TCP ? parse_tcp(rest, r, why, whylen)
                                : parse_unix(rest, r, why, whylen);
}

/* ---- life cycle ---- */

struct rconn *rconn_new(const struct rconn_opts *o, char *err, size_t errlen)
{
    if (!o->url || !*o->url) {
        fail(err, errlen, "missing redis url");
        return NULL;
    }
    if (o->connect_timeout_ms < 0 || o->command_timeout_ms < 0) {
        fail(err, errlen, "invalid redis timeout %d ms: must not be negative",
             o->connect_timeout_ms < 0 ? o->connect_timeout_ms : o->command_timeout_ms);
        return NULL;
    }
    struct rconn *r = xcalloc(1, sizeof(*r));
    char why[160];
    if (parse_url(o->url, r, why, sizeof(why)) != 0) {
        char *masked = mask_url(o->url);
        fail(err, errlen, "invalid redis url '%s': %s", masked, why);
        free(masked);
        rconn_destroy(r);
        return NULL;
    }
    if (o->password) {
        free(r->password);
        r->password = xstrdup(o->password);
    }
    if (r->password && !*r->password) {
        free(r->password);
        r->password = NULL;
    }
    if (o->function_lib) {
        r->function_lib = xstrdup(o->function_lib);
        const char *name = strstr(r->function_lib, "name=");
        size_t eol = strcspn(r->function_lib, "\n");
        if (strncmp(r->function_lib, "#!", 2) == 0 && name && name < r->function_lib + eol)
            r->function_name = xstrndup(name + 5, strcspn(name + 5, " \t\r\n"));
    }
    r->connect_timeout_ms =
        o->connect_timeout_ms ? o->connect_timeout_ms : RCONN_CONNECT_TIMEOUT_MS;
    r->command_timeout_ms =
        o->command_timeout_ms ? o->command_timeout_ms : RCONN_COMMAND_TIMEOUT_MS;

    struct buf b;
    buf_init(&b);
    if (r->kind == RCONN_UNIX)
        buf_printf(&b, "unix:%s", r->path);
    else if (strchr(r->host, ':'))
        buf_printf(&b, "[%s]:%d", r->host, r->port);
    else
        buf_printf(&b, "%s:%d", r->host, r->port);
    r->addr = xstrdup(b.data);
    buf_printf(&b, "/%d", r->db);
    r->describe = b.data;
    return r;
}

void rconn_destroy(struct rconn *r)
{
    if (!r)
        return;
    rconn_disconnect(r);
    buf_release(&r->fmt);
    free(r->host);
    free(r->path);
    free(r->user);
    if (r->password) {
        /* Do not leave the secret in freed heap memory. */
        volatile char *p = r->password;
        while (*p)
            *p++ = '\0';
        free(r->password);
    }
    free(r->function_lib);
    free(r->function_name);
    free(r->addr);
    free(r->describe);
    free(r);
}

bool rconn_connected(const struct rconn *r)
{
    return r->c != NULL;
}

void rconn_disconnect(struct rconn *r)
{
    if (!r->c)
        return;
    redisFree(r->c);
    r->c = NULL;
    if (r->pending > 0)
        r->lost = true;
}

const char *rconn_describe(const struct rconn *r)
{
    return r->describe;
}

int64_t rconn_roundtrips(const struct rconn *r)
{
    return r->roundtrips;
}

const struct metrics_hist *rconn_latency(const struct rconn *r)
{
    return &r->latency;
}

size_t rconn_pending(const struct rconn *r)
{
    return r->pending;
}

/* ---- queueing ---- */

/* hiredis has marked the context dead while queueing: remember why, drop it. */
static void queue_failed(struct rconn *r)
{
    if (!r->qerr[0])
        snprintf(r->qerr, sizeof(r->qerr), "%s", r->c->errstr);
    r->pending++;
    rconn_disconnect(r);
}

void rconn_append(struct rconn *r, int argc, const char **argv, const size_t *argvlen)
{
    if (!r->c || r->lost) {
        r->pending++;
        r->lost = true;
        return;
    }
    /* RESP written here: hiredis formats each length with sdscatfmt, which was a tenth
     * of the daemon's time on pipelines of many small commands. */
    struct buf *f = &r->fmt;
    buf_reset(f);
    buf_addc(f, '*');
    buf_add_dec(f, argc);
    buf_add(f, "\r\n", 2);
    for (int i = 0; i < argc; i++) {
        buf_addc(f, '$');
        buf_add_dec(f, (int64_t)argvlen[i]);
        buf_add(f, "\r\n", 2);
        buf_add(f, argv[i], argvlen[i]);
        buf_add(f, "\r\n", 2);
    }
    if (redisAppendFormattedCommand(r->c, f->data, f->len) != REDIS_OK) {
        queue_failed(r);
        return;
    }
    r->pending++;
}

static void append_v(struct rconn *r, const char *fmt, va_list ap)
{
    if (!r->c || r->lost) {
        r->pending++;
        r->lost = true;
        return;
    }
    if (redisvAppendCommand(r->c, fmt, ap) != REDIS_OK) {
        queue_failed(r);
        return;
    }
    r->pending++;
}

void rconn_appendf(struct rconn *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    append_v(r, fmt, ap);
    va_end(ap);
}

/* ---- round trips ---- */

/* hiredis 0.14 writes with write(2), so a write to a socket the server closed raises SIGPIPE,
 * which by default kills the process. Block it for the round trip and discard one we caused
 * (the libpq way); a SIGPIPE the caller already had blocked is left alone. */
struct sigpipe_guard {
    sigset_t old;
};

static void sigpipe_block(struct sigpipe_guard *g)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, &g->old);
}

static void sigpipe_restore(struct sigpipe_guard *g, bool io_failed)
{
    if (io_failed && !sigismember(&g->old, SIGPIPE)) {
        sigset_t set, pend;
        sigemptyset(&set);
        sigaddset(&set, SIGPIPE);
        if (sigpending(&pend) == 0 && sigismember(&pend, SIGPIPE)) {
            const struct timespec zero = {0};
            while (sigtimedwait(&set, NULL, &zero) < 0 && errno == EINTR)
                ;
        }
    }
    pthread_sigmask(SIG_SETMASK, &g->old, NULL);
}

void rconn_replies_free(redisReply **replies, size_t n)
{
    if (!replies)
        return;
    for (size_t i = 0; i < n; i++)
        if (replies[i])
            freeReplyObject(replies[i]);
    free(replies);
}

/* Flushes the output buffer and reads `want` replies; on an I/O error frees what was read,
 * disconnects and sets err. */
static int read_replies(struct rconn *r, size_t want, redisReply ***replies, char *err,
                        size_t errlen)
{
    redisReply **out = xcalloc(want, sizeof(*out));
    struct sigpipe_guard g;
    bool failed = false;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    r->roundtrips++;
    sigpipe_block(&g);
    for (size_t i = 0; i < want; i++) {
        void *rep = NULL;
        if (redisGetReply(r->c, &rep) == REDIS_OK && rep) {
            out[i] = rep;
            continue;
        }
        int e = errno;
        /* SO_RCVTIMEO/SO_SNDTIMEO expiry surfaces as EAGAIN from read/write. */
        if (r->c->err == REDIS_ERR_IO && (e == EAGAIN || e == EWOULDBLOCK))
            fail(err, errlen, "timeout after %d ms talking to redis '%s'", r->command_timeout_ms,
                 r->addr);
        else
            fail(err, errlen, "lost connection to redis '%s': %s", r->addr,
                 r->c->errstr[0] ? r->c->errstr : "unknown error");
        failed = true;
        break;
    }
    sigpipe_restore(&g, failed);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    metrics_hist_observe(&r->latency,
                         (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    if (failed) {
        rconn_replies_free(out, want);
        redisFree(r->c);
        r->c = NULL;
        return -1;
    }
    *replies = out;
    return 0;
}

int rconn_exec(struct rconn *r, redisReply ***replies, size_t *n, char *err, size_t errlen)
{
    *replies = NULL;
    *n = 0;
    size_t want = r->pending;
    bool lost = r->lost;
    r->pending = 0;
    r->lost = false;
    if (want == 0)
        return 0;
    if (lost || !r->c) {
        if (r->qerr[0])
            fail(err, errlen, "cannot queue command for redis '%s': %s", r->addr, r->qerr);
        else
            fail(err, errlen, "not connected to redis '%s'", r->addr);
        r->qerr[0] = '\0';
        return -1;
    }
    if (read_replies(r, want, replies, err, errlen) != 0)
        return -1;
    *n = want;
    return 0;
}

redisReply *rconn_command(struct rconn *r, char *err, size_t errlen, const char *fmt, ...)
{
    assert(r->pending == 0 && "rconn_command with commands queued");
    va_list ap;
    va_start(ap, fmt);
    append_v(r, fmt, ap);
    va_end(ap);
    redisReply **reps;
    size_t n;
    if (rconn_exec(r, &reps, &n, err, errlen) != 0)
        return NULL;
    redisReply *rep = reps[0];
    free(reps);
    if (rep->type == REDIS_REPLY_ERROR) {
        fail(err, errlen, "%.*s", (int)rep->len, rep->str);
        freeReplyObject(rep);
        return NULL;
    }
    return rep;
}

/* ---- connecting ---- */

enum handshake_step { STEP_AUTH, STEP_SELECT, STEP_PING, STEP_FUNCTION };

static struct timeval ms_to_tv(int ms)
{
    return (struct timeval){.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
}

static void handshake_error(const struct rconn *r, enum handshake_step step, const redisReply *rep,
                            char *err, size_t errlen)
{
    int len = (int)rep->len;
    switch (step) {
    case STEP_AUTH:
        fail(err, errlen, "redis auth failed for user '%s': %.*s", r->user ? r->user : "default",
             len, rep->str);
        break;
    case STEP_SELECT:
        fail(err, errlen, "cannot select redis database %d on '%s': %.*s", r->db, r->addr, len,
             rep->str);
        break;
    case STEP_FUNCTION:
        fail(err, errlen, "cannot load redis functions on '%s': %.*s", r->addr, len, rep->str);
        /* An ACL user without FUNCTION LOAD: say what to do (README "Security"). */
        if (strncmp(rep->str, "NOPERM", 6) == 0 && strlen(err) + 1 < errlen)
            fail(err + strlen(err), errlen - strlen(err),
                 " (library '%s' is %s and user '%s' may not load it: load it as an admin:"
                 " csmetricsd --redis-functions | redis-cli -x FUNCTION LOAD REPLACE)",
                 r->function_name ? r->function_name : "?",
                 r->list_refused ? "not checked (FUNCTION LIST refused: allow +function|list)"
                                 : "missing or not this version's",
                 r->user ? r->user : "default");
        break;
    case STEP_PING:
        fail(err, errlen, "cannot ping redis '%s': %.*s", r->addr, len, rep->str);
        break;
    }
}

/* Whether a FUNCTION LIST LIBRARYNAME <ours> WITHCODE reply holds exactly our library (RESP2:
 * an array of libraries, each a flat array of name/value pairs). Any other reply, an error
 * included (an ACL user without FUNCTION LIST), means "load it". */
static bool function_lib_loaded(const struct rconn *r, const redisReply *rep)
{
    if (rep->type != REDIS_REPLY_ARRAY)
        return false;
    for (size_t i = 0; i < rep->elements; i++) {
        const redisReply *lib = rep->element[i];
        const redisReply *name = NULL, *code = NULL;
        if (lib->type != REDIS_REPLY_ARRAY)
            continue;
        for (size_t j = 0; j + 1 < lib->elements; j += 2) {
            const redisReply *k = lib->element[j];
            if (k->type != REDIS_REPLY_STRING && k->type != REDIS_REPLY_STATUS)
                continue;
            if (strcmp(k->str, "library_name") == 0)
                name = lib->element[j + 1];
            else if (strcmp(k->str, "library_code") == 0)
                code = lib->element[j + 1];
        }
        if (name && code && name->type == REDIS_REPLY_STRING && code->type == REDIS_REPLY_STRING &&
            strcmp(name->str, r->function_name) == 0 && code->len == strlen(r->function_lib) &&
            memcmp(code->str, r->function_lib, code->len) == 0)
            return true;
    }
    return false;
}

int rconn_connect(struct rconn *r, char *err, size_t errlen)
{
    rconn_disconnect(r);
    struct timeval ctv = ms_to_tv(r->connect_timeout_ms);
    redisContext *c = r->kind == RCONN_UNIX ? redisConnectUnixWithTimeout(r->path, ctv)
                                            : redisConnectWithTimeout(r->host, r->port, ctv);
    if (!c) {
        fail(err, errlen, "cannot connect to redis '%s': out of memory", r->addr);
        return -1;
    }
    if (c->err) {
        fail(err, errlen, "cannot connect to redis '%s': %s", r->addr, c->errstr);
        redisFree(c);
        return -1;
    }
    if (redisSetTimeout(c, ms_to_tv(r->command_timeout_ms)) != REDIS_OK) {
        fail(err, errlen, "cannot set timeout on redis '%s': %s", r->addr, c->errstr);
        redisFree(c);
        return -1;
    }
    r->c = c;

    /* One round trip; argv form so that any bytes in the password are safe. PING before
     * FUNCTION LIST so that a missing password reads as NOAUTH on the PING. */
    enum handshake_step steps[4];
    size_t nsteps = 0;
    int ok = REDIS_OK;
    if (r->password || r->user) {
        const char *pw = r->password ? r->password : "";
        if (r->user) {
            const char *argv[] = {"AUTH", r->user, pw};
            const size_t lens[] = {4, strlen(r->user), strlen(pw)};
            ok |= redisAppendCommandArgv(c, 3, argv, lens);
        } else {
            const char *argv[] = {"AUTH", pw};
            const size_t lens[] = {4, strlen(pw)};
            ok |= redisAppendCommandArgv(c, 2, argv, lens);
        }
        steps[nsteps++] = STEP_AUTH;
    }
    if (r->db != 0) {
        ok |= redisAppendCommand(c, "SELECT %d", r->db);
        steps[nsteps++] = STEP_SELECT;
    }
    ok |= redisAppendCommand(c, "PING");
    steps[nsteps++] = STEP_PING;
    /* Load the library only when it is not there as is: an ACL user without FUNCTION LOAD
     * (README "Security") then runs on a library an admin loaded. */
    if (r->function_name) {
        ok |= redisAppendCommand(c, "FUNCTION LIST LIBRARYNAME %s WITHCODE", r->function_name);
        steps[nsteps++] = STEP_FUNCTION;
    }
    if (ok != REDIS_OK) {
        fail(err, errlen, "cannot connect to redis '%s': %s", r->addr, c->errstr);
        redisFree(c);
        r->c = NULL;
        return -1;
    }

    redisReply **reps;
    if (read_replies(r, nsteps, &reps, err, errlen) != 0)
        return -1;
    int rc = 0;
    bool load = r->function_lib != NULL;
    for (size_t i = 0; i < nsteps && rc == 0; i++) {
        if (steps[i] == STEP_FUNCTION) {
            r->list_refused = reps[i]->type == REDIS_REPLY_ERROR;
            load = !function_lib_loaded(r, reps[i]);
        } else if (reps[i]->type == REDIS_REPLY_ERROR) {
            handshake_error(r, steps[i], reps[i], err, errlen);
            rc = -1;
        }
    }
    rconn_replies_free(reps, nsteps);
    if (rc == 0 && load) {
        if (redisAppendCommand(c, "FUNCTION LOAD REPLACE %s", r->function_lib) != REDIS_OK) {
            fail(err, errlen, "cannot connect to redis '%s': %s", r->addr, c->errstr);
            rc = -1;
        } else if (read_replies(r, 1, &reps, err, errlen) != 0) {
            return -1;
        } else {
            if (reps[0]->type == REDIS_REPLY_ERROR) {
                handshake_error(r, STEP_FUNCTION, reps[0], err, errlen);
                rc = -1;
            }
            rconn_replies_free(reps, 1);
        }
    }
    if (rc != 0) {
        redisFree(r->c);
        r->c = NULL;
    }
    return rc;
}
