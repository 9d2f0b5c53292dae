/* http — see http.h. We create and bind the listening socket ourselves (so a bind failure
 * has its errno text) and hand it to libmicrohttpd, which closes it on stop. Requests are
 * answered in MHD's single internal thread; rendering /metrics takes the registry lock
 * for as long as the text takes to build. */
#include "daemon/http.h"
#include "common/buf.h"
#include "common/clock.h"
#include "common/log.h"

#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

enum { HTTP_CONNECTION_LIMIT = 64, HTTP_CONNECTION_TIMEOUT_S = 10 };

struct http {
    struct MHD_Daemon *d;
    struct metrics *m; /* borrowed */
    int64_t stall_ms;
    pthread_mutex_t mu; /* guards tick_ms and not_ready */
    int64_t tick_ms;    /* monotonic ms of the last heartbeat */
    char not_ready[256];
};

static void http_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    log_msg(LOG_WARN, "http", "%s", msg);
}

/* Splits "host:port" / "[v6]:port" / ":port" (as config.c's check accepts it). */
static int http_split(const char *addr, char *host, size_t hostlen, const char **port)
{
    const char *colon = strrchr(addr, ':');
    if (!colon || !colon[1])
        return -1;
    const char *h = addr;
    size_t n = (size_t)(colon - addr);
    if (n >= 2 && h[0] == '[' && h[n - 1] == ']') {
        h++;
        n -= 2;
    }
    if (n >= hostlen)
        return -1;
    memcpy(host, h, n);
    host[n] = '\0';
    *port = colon + 1;
    return 0;
}

/* A bound, listening TCP socket for `addr`; -1 with err set. */
static int http_listen_socket(const char *addr, char *err, size_t errlen)
{
    char host[256];
    const char *port;
    if (http_split(addr, host, sizeof(host), &port) < 0) {
        snprintf(err, errlen, "cannot listen on '%s' (http.listen): want host:port", addr);
        return -1;
    }
    struct addrinfo hints = {.ai_family = host[0] ? AF_UNSPEC : AF_INET,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "cannot listen on '%s' (http.listen): %s", addr,
                 rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
        return -1;
    }
    int fd = -1, e = 0;
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            e = errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 64) < 0) {
            e = errno;
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0)
        snprintf(err, errlen, "cannot listen on '%s' (http.listen): %s", addr, strerror(e));
    return fd;
}

/* The response to one request: code, body (malloc'd, taken by MHD), content type. */
static void http_route(struct http *h, const char *method, const char *url, int *code,
                       struct buf *body, const char **ctype)
{
    *ctype = "text/plain; charset=utf-8";
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        *code = MHD_HTTP_METHOD_NOT_ALLOWED;
        buf_printf(body, "method %s not allowed; only GET and HEAD\n", method);
        return;
    }
    if (strcmp(url, "/metrics") == 0) {
        *code = MHD_HTTP_OK;
        *ctype = "text/plain; version=0.0.4; charset=utf-8";
        metrics_render(h->m, body);
        return;
    }
    if (strcmp(url, "/healthz") == 0 || strcmp(url, "/readyz") == 0) {
        pthread_mutex_lock(&h->mu);
        int64_t age = clock_mono_ms() - h->tick_ms;
        char why[sizeof(h->not_ready)];
        memcpy(why, h->not_ready, sizeof(why));
        pthread_mutex_unlock(&h->mu);
        if (url[1] == 'h') {
            *code = age > h->stall_ms ? MHD_HTTP_SERVICE_UNAVAILABLE : MHD_HTTP_OK;
            if (age > h->stall_ms)
                buf_printf(body, "main loop stalled: no iteration for %.1f s (limit %.1f s)\n",
                           (double)age / 1000, (double)h->stall_ms / 1000);
            else
                buf_adds(body, "ok\n");
        } else {
            *code = why[0] ? MHD_HTTP_SERVICE_UNAVAILABLE : MHD_HTTP_OK;
            if (why[0])
                buf_printf(body, "not ready: %s\n", why);
            else
                buf_adds(body, "ready\n");
        }
        return;
    }
    *code = MHD_HTTP_NOT_FOUND;
    buf_adds(body, "not found; see /metrics, /healthz, /readyz\n");
}

static enum MHD_Result http_handle(void *cls, struct MHD_Connection *c, const char *url,
                                   const char *method, const char *version, const char *upload_data,
                                   size_t *upload_data_size, void **con_cls)
{
    struct http *h = cls;
    int code;
    const char *ctype;
    struct buf body;
    buf_init(&body);
    http_route(h, method, url, &code, &body, &ctype);
    /* A request body (POST ...) is never read: the response is queued on the first call. */
    struct MHD_Response *r =
        MHD_create_response_from_buffer(body.len, body.len ? body.data : (void *)"",
                                        body.len ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!r) {
        buf_release(&body);
        return MHD_NO;
    }
    if (!body.len)
        buf_release(&body);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    if (code == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)code, r);
    MHD_destroy_response(r);
    return ret;
}

struct http *http_new(const char *addr, struct metrics *m, int64_t stall_ms, char *err,
                      size_t errlen)
{
    int fd = http_listen_socket(addr, err, errlen);
    if (fd < 0)
        return NULL;
    struct http *h = xcalloc(1, sizeof(*h));
    h->m = m;
    h->stall_ms = stall_ms;
    h->tick_ms = clock_mono_ms();
    snprintf(h->not_ready, sizeof(h->not_ready), "starting");
    pthread_mutex_init(&h->mu, NULL);
    /* The HTTP thread inherits this mask: the main loop's signals go to the main thread. */
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGHUP);
    sigaddset(&block, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    h->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG, 0,
                            NULL, NULL, http_handle, h, MHD_OPTION_LISTEN_SOCKET, fd,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)HTTP_CONNECTION_LIMIT,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)HTTP_CONNECTION_TIMEOUT_S,
                            MHD_OPTION_EXTERNAL_LOGGER, http_mhd_log, NULL, MHD_OPTION_END);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (!h->d) {
        /* MHD may or may not have closed fd; the daemon exits now, so leave it. */
        snprintf(err, errlen, "cannot start the http listener on '%s' (http.listen)", addr);
        pthread_mutex_destroy(&h->mu);
        free(h);
        return NULL;
    }
    log_msg(LOG_NOTICE, "http", "listening listen=%s paths=/metrics,/healthz,/readyz", addr);
    return h;
}

void http_destroy(struct http *h)
{
    if (!h)
        return;
    MHD_stop_daemon(h->d); /* joins the thread, closes the listening socket */
    pthread_mutex_destroy(&h->mu);
    free(h);
}

void http_heartbeat(struct http *h, const char *not_ready)
{
    if (!h)
        return;
    pthread_mutex_lock(&h->mu);
    h->tick_ms = clock_mono_ms();
    snprintf(h->not_ready, sizeof(h->not_ready), "%s", not_ready ? not_ready : "");
    pthread_mutex_unlock(&h->mu);
}
