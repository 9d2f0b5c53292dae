/* alertmgr — delivers csmetricsd's alerts to Prometheus Alertmanager (POST {url}/api/v2/alerts)
 * from a thread of its own, so the main loop never waits on HTTP. It holds a bounded set of
 * alerts keyed by their labels (not a growing queue): a firing live alert is re-sent every
 * resend interval with endsAt a few intervals ahead (Alertmanager resolves it by itself if
 * csmetricsd dies), a resolved one is sent once with endsAt = the moment it resolved, a final
 * (period close) alert once with endsAt = close + final_hold. Failed posts are retried with
 * back-off; complaints are logged with log_complain; a password in the URL is never logged.
 * The alert records it takes are the rules.md alert events that go to Kafka. */
#ifndef CSM_DAEMON_ALERTMGR_H
#define CSM_DAEMON_ALERTMGR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "config/config.h"

struct alertmgr;

/* A snapshot of the counters, for the metrics endpoint. */
struct alertmgr_stats {
    uint64_t sent;    /* alerts Alertmanager accepted (a re-send counts again) */
    uint64_t failed;  /* alerts of posts that failed (each attempt counts) */
    uint64_t dropped; /* alerts never queued: the set was full, or a record did not parse */
    uint64_t expired; /* alerts whose endsAt passed before they could be (re-)sent */
    uint64_t posts;   /* HTTP requests made, successful or not */
    size_t queued;    /* alerts held now: firing live ones and those awaiting delivery */
    size_t firing;    /* of which firing live alerts */
};

/* Most alerts held at once; more new ones are dropped (counted) until some are delivered. */
#define ALERTMGR_MAX_ALERTS 10000
/* Most alerts in one POST. */
#define ALERTMGR_BATCH 200

/* Starts the delivery thread with cfg's alertmanager.* keys (copied; url NULL or "" leaves
 * delivery off until alertmgr_configure sets one). NULL with err when the thread or libcurl
 * cannot be set up (curl_global_init is thread-safe from libcurl 7.84 on). */
struct alertmgr *alertmgr_new(const struct csm_config *cfg, char *err, size_t errlen);

/* Stops the thread: pending resolved and final alerts get one last attempt of at most 2 s;
 * firing live alerts are left to expire in Alertmanager at their endsAt. NULL is a no-op. */
void alertmgr_destroy(struct alertmgr *am);

/* SIGHUP: takes cfg's alertmanager.* keys (copied). A new URL gets every held alert at once
 * (the old Alertmanager lets its copies expire); no URL drops every held alert. */
void alertmgr_configure(struct alertmgr *am, const struct csm_config *cfg);

/* True when am is not NULL and has a URL. */
bool alertmgr_enabled(struct alertmgr *am);

/* A live alert record (state "firing" or "resolved", as rules_run emits them), borrowed.
 * Firing: call it at every live evaluation where the alert holds, not only when it starts
 * (that keeps it alive: endsAt = now + 4 × max(resend interval, interval_ms), the rule's
 * live interval). Resolved: sent once with endsAt = now_ms (wall clock). No-op when
 * !alertmgr_enabled(am). */
void alertmgr_live(struct alertmgr *am, const char *record, int64_t interval_ms, int64_t now_ms);

/* A final alert record of a period close (borrowed); closed_ms is when the period closed
 * (its end + lateness). Sent once (retried until accepted) with startsAt = the record's
 * starts_at and endsAt = closed_ms + final_hold; not sent once that is past. No-op when
 * !alertmgr_enabled(am). */
void alertmgr_final(struct alertmgr *am, const char *record, int64_t closed_ms);

/* Copies the counters (thread-safe); NULL am gives zeros. */
void alertmgr_stats(struct alertmgr *am, struct alertmgr_stats *out);

/* ---- the pure core, exposed for tests ---- */

/* One alert as Alertmanager sees it; strings owned (alertmgr_alert_release). */
struct alertmgr_alert {
    char *labels;      /* JSON object: alertname, rule, shop, agent, [period,] severity, kind */
    char *annotations; /* JSON object: summary, description, value, period */
    bool resolved;     /* the record's state was "resolved" */
    int64_t starts_ms; /* the record's starts_at */
    int64_t ends_ms;   /* set by the caller before alertmgr_payload */
};

/* Parses a rules.md alert record. Labels: alertname, rule, shop, agent, severity and kind
 * ("live" or "final"); a final alert also carries period (each close is its own alert, a
 * live one is the same alert across periods, like the Redis :livealerts hash). -1 with
 * err when the record lacks a field or is not JSON. */
int alertmgr_alert_parse(const char *record, bool final, struct alertmgr_alert *out, char *err,
                         size_t errlen);
void alertmgr_alert_release(struct alertmgr_alert *a);

/* Appends the POST body: a JSON array of {labels, annotations, startsAt, endsAt}. */
void alertmgr_payload(struct buf *out, const struct alertmgr_alert *const *alerts, size_t n);

/* RFC 3339 in UTC with milliseconds: "2026-08-20T02:00:00.000Z". out >= 32 bytes. */
void alertmgr_format_time(int64_t ms, char *out, size_t outlen);

/* The URL with the password of its userinfo replaced by "<redacted>", for logs. */
void alertmgr_redact_url(const char *url, struct buf *out);

#endif
