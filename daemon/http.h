/* http — csmetricsd's HTTP listener (libmicrohttpd, its own polling thread): GET (and HEAD)
 * /metrics (Prometheus text format 0.0.4 from a metrics registry), /healthz (200 while the
 * main loop ticks, 503 once it has not for longer than a bound) and /readyz (200 when the
 * main loop says it is ready, else 503 with its one-line reason). 404 for other paths,
 * 405 for other methods. The main loop and the HTTP thread share only the registry (its
 * own lock) and the heartbeat below (this module's lock). */
#ifndef CSM_DAEMON_HTTP_H
#define CSM_DAEMON_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "daemon/metrics.h"

struct http;

/* Listens on addr ("host:port", "[v6addr]:port", ":port" for every IPv4 address; a host
 * name is resolved and its first address that binds is used) and starts serving. m is
 * borrowed and must outlive the listener; stall_ms is the bound of /healthz. The signals
 * the main loop handles (SIGTERM, SIGINT, SIGHUP) are blocked in the HTTP thread. NULL with
 * err set on failure, e.g.
 *   "cannot listen on '127.0.0.1:9464' (http.listen): Address already in use" */
struct http *http_new(const char *addr, struct metrics *m, int64_t stall_ms, char *err,
                      size_t errlen);
/* Stops the thread, closes the socket and frees h; NULL is a no-op. */
void http_destroy(struct http *h);

/* From the main loop, every iteration: the loop is alive now, and why the daemon is not
 * ready (copied; NULL or "" when it is). NULL h is a no-op. */
void http_heartbeat(struct http *h, const char *not_ready);

#endif
