/* rconn — one blocking Redis connection (hiredis 0.14.1) with pipelining.
 * Invariants: after any hiredis c->err the context is dead, so rconn frees it at once and
 * reports "not connected" until rconn_connect succeeds again (the caller backs off);
 * error replies (REDIS_REPLY_ERROR) are data, not I/O errors; no error text ever holds
 * the password. Not thread-safe: one rconn per thread. */
#ifndef CSM_DAEMON_RCONN_H
#define CSM_DAEMON_RCONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include "daemon/metrics.h"

struct rconn;

struct rconn_opts {
    /* Required. redis://[user[:password]@]host[:port][/db] (host may be "[v6addr]") or
     * unix://[user[:password]@]/path/to/sock[?db=N]. user and password are
     * percent-decoded; default port 6379, db 0. Other schemes (rediss, redis+unix, ...) are
     * rejected. */
    const char *url;
    const char *password;     /* optional; overrides the URL's (from redis.password_file) */
    const char *function_lib; /* optional Lua library ("#!lua name=X\n..."); loaded at connect
                               * when Redis does not hold exactly this code (see rconn_connect) */
    int connect_timeout_ms;   /* 2000 when 0 */
    int command_timeout_ms;   /* 5000 when 0; bounds each socket read/write of rconn_exec */
};

/* Parses o->url and copies everything it needs from o (nothing stays borrowed); no I/O.
 * NULL with err set on a bad URL or option, e.g.
 * "invalid redis url 'redis://x:***@h:notaport': bad port" (the password in the quoted URL
 * is masked as "***"). An empty password means none. */
struct rconn *rconn_new(const struct rconn_opts *o, char *err, size_t errlen);

/* Closes the connection and frees r; NULL is a no-op. */
void rconn_destroy(struct rconn *r);

/* (Re)connects: drops any current connection (and commands queued on it), then opens a new
 * one and, in one round trip, sends AUTH [user] password (when a password or user is set),
 * SELECT db (when db != 0), PING and, with a function library, FUNCTION LIST LIBRARYNAME
 * name WITHCODE; when the library is missing or its code differs (or the list is refused), a
 * second round trip sends FUNCTION LOAD REPLACE lib. So an ACL user without FUNCTION LOAD
 * works once an admin has loaded this version's library. 0 on success; -1 with r
 * disconnected and err set, e.g.
 *   "cannot connect to redis '127.0.0.1:6379': Connection refused"
 *   "redis auth failed for user 'app': WRONGPASS invalid username-password pair ..."
 *   "cannot select redis database 3 on 'unix:/run/redis.sock': ERR DB index is out of range"
 *   "cannot load redis functions on '127.0.0.1:6379': ERR Error compiling function: ..."
 *   "cannot load redis functions on '127.0.0.1:6379': NOPERM ... (library 'csmetrics' is
 *    missing or not this version's and user 'csm' may not load it: load it as an admin: ...)"
 *   "cannot ping redis '127.0.0.1:6379': NOAUTH Authentication required."
 * The user is "default" in messages when the URL names none. */
int rconn_connect(struct rconn *r, char *err, size_t errlen);

bool rconn_connected(const struct rconn *r);

/* Frees the hiredis context (commands queued on it are lost: the next rconn_exec fails with
 * "not connected"); the next use needs rconn_connect. No-op when not connected. */
void rconn_disconnect(struct rconn *r);

/* "127.0.0.1:6379/0", "[::1]:6379/0" or "unix:/path.sock/0": no credentials. Owned by r. */
const char *rconn_describe(const struct rconn *r);

/* Pipelining: queue commands with rconn_append/rconn_appendf, then read every reply in
 * order with rconn_exec. Nothing is sent before rconn_exec. argv/argvlen are copied.
 * Queueing while disconnected (or a hiredis failure while queueing, e.g. a bad format)
 * only counts the command; the next rconn_exec then fails and clears the queue. */
void rconn_append(struct rconn *r, int argc, const char **argv, const size_t *argvlen);
/* fmt as redisAppendCommand: %s C string, %b binary (pointer, size_t), %d/%lld ... */
void rconn_appendf(struct rconn *r, const char *fmt, ...);
size_t rconn_pending(const struct rconn *r);

/* Sends the queue and reads the reply of every queued command into *replies (a malloc'd
 * array of *n, in queue order; free with rconn_replies_free). An empty queue gives 0 with
 * *replies NULL and *n 0. Error replies (REDIS_REPLY_ERROR) are returned as replies: the
 * caller checks each one. -1 with *replies NULL, *n 0, the queue cleared and err set when:
 *   commands were queued while disconnected: "not connected to redis '127.0.0.1:6379'"
 *   the connection broke (r is then disconnected; replies already read are freed):
 *     "lost connection to redis '127.0.0.1:6379': Server closed the connection"
 *     "timeout after 5000 ms talking to redis '127.0.0.1:6379'"
 * SIGPIPE raised by a write to a dead socket is blocked and discarded, so callers need not
 * ignore SIGPIPE for rconn's sake. */
int rconn_exec(struct rconn *r, redisReply ***replies, size_t *n, char *err, size_t errlen);

/* Frees every reply (freeReplyObject; NULL entries are skipped) and the array; NULL ok. */
void rconn_replies_free(redisReply **replies, size_t n);

/* One command, for convenience; the queue must be empty (asserted). Returns the reply (free
 * with freeReplyObject), or NULL with err set: on an I/O error or timeout (as rconn_exec; r
 * is then disconnected), or on an error reply (err = the reply's text, r stays connected;
 * tell the two apart with rconn_connected). */
redisReply *rconn_command(struct rconn *r, char *err, size_t errlen, const char *fmt, ...);

/* Round trips made (each rconn_exec/rconn_command that sent commands, and each connect
 * handshake) — a counter for metrics. */
int64_t rconn_roundtrips(const struct rconn *r);
/* The time each of those round trips took (seconds), for metrics. */
const struct metrics_hist *rconn_latency(const struct rconn *r);

#endif
