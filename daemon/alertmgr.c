/* alertmgr — see alertmgr.h. One mutex guards the held alerts (a map from the labels JSON to
 * an entry), the settings and the counters; the delivery thread takes the due entries under
 * it, posts them without it, and applies the result only to entries whose version did not
 * change meanwhile (a firing alert that resolved during the post is sent again). Scheduling
 * uses CLOCK_MONOTONIC; startsAt/endsAt are wall-clock epoch ms. */
#include "daemon/alertmgr.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/map.h"
#include "common/utf8.h"
#include "consumers/decode.h"
#include "daemon/version.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <yajl/yajl_tree.h>

/* Firing live alerts are valid for this many resend (or live) intervals, like Prometheus. */
#define AM_VALID_INTERVALS 4
/* Retry back-off after a failed post: doubles from the first to the last. */
#define AM_BACKOFF_MIN_MS 1000
#define AM_BACKOFF_MAX_MS 60000
/* At shutdown, the last attempt for resolved and final alerts. */
#define AM_STOP_GRACE_MS 2000
/* Bytes of an error response kept for the log. */
#define AM_BODY_MAX 200

enum am_kind { AM_FIRING, AM_RESOLVED, AM_FINAL };

struct am_entry {
    struct alertmgr_alert a;
    enum am_kind kind;
    int64_t due_mono; /* next send */
    uint64_t version; /* bumped by every change from outside the thread */
};

struct alertmgr {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    pthread_t thread;
    bool stop;
    int64_t stop_deadline; /* monotonic ms, when stop */
    /* settings (alertmanager.*) */
    char *url; /* NULL: off */
    int64_t resend_ms, timeout_ms, hold_ms;
    /* held alerts by labels JSON */
    struct map *alerts;
    uint64_t next_version;
    struct alertmgr_stats stats;
    /* thread-only */
    int64_t retry_mono, backoff_ms;
    struct log_complaint complaint;     /* failed posts */
    struct log_complaint bad_complaint; /* records that did not parse (under mu) */
};

/* ---- the pure core ---- */

void alertmgr_format_time(int64_t ms, char *out, size_t outlen)
{
    int64_t secs = ms / 1000, frac = ms % 1000;
    if (frac < 0) {
        frac += 1000;
        secs--;
    }
    time_t t = (time_t)secs;
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(out, outlen, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)frac);
}

void alertmgr_redact_url(const char *url, struct buf *out)
{
    buf_reset(out);
    buf_adds(out, "");
    const char *scheme = strstr(url, "://");
    const char *auth = scheme ? scheme + 3 : url;
    size_t hostlen = strcspn(auth, "/?#");
    /* The userinfo ends at the last '@' before the path (a raw '@' in a password is common). */
    const char *at = NULL;
    for (const char *p = auth; p < auth + hostlen; p++)
        if (*p == '@')
            at = p;
    const char *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
    if (!colon) {
        buf_adds(out, url);
        return;
    }
    buf_add(out, url, (size_t)(colon + 1 - url));
    buf_adds(out, "<redacted>");
    buf_adds(out, at);
}

void alertmgr_alert_release(struct alertmgr_alert *a)
{
    if (!a)
        return;
    free(a->labels);
    free(a->annotations);
    *a = (struct alertmgr_alert){0};
}

static const char *am_get_str(yajl_val root, const char *name)
{
    const char *path[] = {name, NULL};
    yajl_val v = yajl_tree_get(root, path, yajl_t_string);
    return v ? YAJL_GET_STRING(v) : NULL;
}

static void am_pair(struct buf *b, const char *key, const char *value)
{
    if (b->len > 1)
        buf_addc(b, ',');
    utf8_json_string(b, key);
    buf_addc(b, ':');
    utf8_json_string(b, value);
}

int alertmgr_alert_parse(const char *record, bool final, struct alertmgr_alert *out, char *err,
                         size_t errlen)
{
    *out = (struct alertmgr_alert){0};
    char perr[128] = "";
    yajl_val root = yajl_tree_parse(record, perr, sizeof(perr));
    if (!root || !YAJL_IS_OBJECT(root)) {
        snprintf(err, errlen, "alert record is not a JSON object: %s", perr);
        yajl_tree_free(root);
        return -1;
    }
    static const char *const need[] = {"rule",   "alert",   "severity", "shop_id",  "agent_id",
                                       "period", "summary", "state",    "starts_at"};
    const char *f[9];
    for (size_t i = 0; i < 9; i++)
        if (!(f[i] = am_get_str(root, need[i]))) {
            snprintf(err, errlen, "alert record lacks the string '%s'", need[i]);
            yajl_tree_free(root);
            return -1;
        }
    const char *rule = f[0], *alert = f[1], *severity = f[2], *shop = f[3], *agent = f[4],
               *period = f[5], *summary = f[6], *state = f[7], *starts = f[8];
    int64_t starts_ms;
    if (decode_rfc3339_ms(starts, strlen(starts), &starts_ms) < 0) {
        snprintf(err, errlen, "alert record has a bad starts_at");
        yajl_tree_free(root);
        return -1;
    }
    /* value: the record's number text as is, or "undefined" for null */
    const char *vpath[] = {"value", NULL};
    yajl_val v = yajl_tree_get(root, vpath, yajl_t_any);
    const char *value = v && YAJL_IS_NUMBER(v) ? YAJL_GET_NUMBER(v) : "undefined";

    struct buf l, a, d;
    buf_init(&l);
    buf_init(&a);
    buf_init(&d);
    buf_addc(&l, '{');
    am_pair(&l, "alertname", alert);
    am_pair(&l, "rule", rule);
    am_pair(&l, "shop", shop);
    am_pair(&l, "agent", agent);
    if (final)
        am_pair(&l, "period", period);
    am_pair(&l, "severity", severity);
    am_pair(&l, "kind", final ? "final" : "live");
    buf_addc(&l, '}');
    if (final)
        buf_printf(&d,
                   "Rule %s alert %s held for agent %s in shop %s at the close of period %s: "
                   "value %s.",
                   rule, alert, agent, shop, period, value);
    else
        buf_printf(&d,
                   "Rule %s alert %s holds for agent %s in shop %s during period %s (live): "
                   "value %s.",
                   rule, alert, agent, shop, period, value);
    buf_addc(&a, '{');
    am_pair(&a, "summary", summary);
    am_pair(&a, "description", d.data);
    am_pair(&a, "value", value);
    am_pair(&a, "period", period);
    buf_addc(&a, '}');
    out->labels = l.data;
    out->annotations = a.data;
    out->resolved = strcmp(state, "resolved") == 0;
    out->starts_ms = starts_ms;
    out->ends_ms = 0;
    buf_release(&d);
    yajl_tree_free(root);
    return 0;
}

void alertmgr_payload(struct buf *out, const struct alertmgr_alert *const *alerts, size_t n)
{
    char ts[40];
    buf_addc(out, '[');
    for (size_t i = 0; i < n; i++) {
        const struct alertmgr_alert *a = alerts[i];
        buf_adds(out, i ? ",{\"labels\":" : "{\"labels\":");
        buf_adds(out, a->labels);
        buf_adds(out, ",\"annotations\":");
        buf_adds(out, a->annotations);
        alertmgr_format_time(a->starts_ms, ts, sizeof(ts));
        buf_printf(out, ",\"startsAt\":\"%s\"", ts);
        /* Alertmanager rejects endsAt before startsAt */
        alertmgr_format_time(a->ends_ms < a->starts_ms ? a->starts_ms : a->ends_ms, ts, sizeof(ts));
        buf_printf(out, ",\"endsAt\":\"%s\"}", ts);
    }
    buf_addc(out, ']');
}

/* ---- the held alerts (callers hold am->mu) ---- */

static void am_entry_free(struct am_entry *e)
{
    alertmgr_alert_release(&e->a);
    free(e);
}

static void am_clear(struct alertmgr *am)
{
    size_t i = 0;
    const char *k;
    void *v;
    while (map_next(am->alerts, &i, &k, &v))
        am_entry_free(v);
    map_clear(am->alerts);
}

static int64_t am_max64(int64_t a, int64_t b)
{
    return a > b ? a : b;
}

/* Inserts or updates the entry of a's labels (a's strings taken). */
static void am_hold(struct alertmgr *am, struct alertmgr_alert *a, enum am_kind kind,
                    int64_t ends_ms)
{
    int64_t now = clock_mono_ms();
    struct am_entry *e = map_get(am->alerts, a->labels);
    bool due = true;
    if (e) {
        /* A firing alert that keeps firing is re-sent on its own schedule, not at every
         * evaluation; any other change goes out at once. */
        due = !(e->kind == AM_FIRING && kind == AM_FIRING && e->a.starts_ms == a->starts_ms);
        alertmgr_alert_release(&e->a);
    } else {
        if (map_size(am->alerts) >= ALERTMGR_MAX_ALERTS) {
            am->stats.dropped++;
            alertmgr_alert_release(a);
            return;
        }
        e = xcalloc(1, sizeof(*e));
        e->due_mono = now;
        map_put(am->alerts, a->labels, e);
    }
    e->a = *a;
    *a = (struct alertmgr_alert){0};
    e->a.ends_ms = ends_ms;
    e->kind = kind;
    /* A plain refresh leaves the version alone: a post in flight still counts as its send. */
    if (due) {
        e->version = ++am->next_version;
        e->due_mono = now;
    }
    pthread_cond_signal(&am->cond);
}

static void am_count(struct alertmgr *am)
{
    size_t i = 0, firing = 0;
    const char *k;
    void *v;
    while (map_next(am->alerts, &i, &k, &v))
        firing += ((struct am_entry *)v)->kind == AM_FIRING;
    am->stats.queued = map_size(am->alerts);
    am->stats.firing = firing;
}

/* ---- HTTP ---- */

struct am_body {
    char text[AM_BODY_MAX + 1];
    size_t len;
};

static size_t am_on_body(char *p, size_t size, size_t n, void *arg)
{
    struct am_body *b = arg;
    size_t len = size * n, room = AM_BODY_MAX - b->len;
    size_t take = len < room ? len : room;
    memcpy(b->text + b->len, p, take);
    b->len += take;
    b->text[b->len] = '\0';
    return len;
}

static int am_on_progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    struct alertmgr *am = arg;
    pthread_mutex_lock(&am->mu);
    bool abort_now = am->stop && clock_mono_ms() >= am->stop_deadline;
    pthread_mutex_unlock(&am->mu);
    return abort_now;
}

/* 0 accepted, 1 rejected for good (a 4xx but 408/429: sending it again will not help),
 * -1 worth retrying; err says why. */
static int am_post(struct alertmgr *am, CURL *curl, const char *url, int64_t timeout_ms,
                   const struct buf *body, char *err, size_t errlen)
{
    char cerr[CURL_ERROR_SIZE] = "";
    struct am_body resp = {.len = 0};
    struct buf full;
    buf_init(&full);
    buf_adds(&full, url);
    while (full.len > 0 && full.data[full.len - 1] == '/')
        full.data[--full.len] = '\0';
    buf_adds(&full, "/api/v2/alerts");
    struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_reset(curl);
    curl_easy_setopt(curl, CURLOPT_URL, full.data); /* user:password@ becomes basic auth */
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
#endif
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body->data);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, (long)body->len);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "csmetricsd/" CSM_VERSION);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, cerr);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, am_on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &resp);
    curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, am_on_progress);
    curl_easy_setopt(curl, CURLOPT_XFERINFODATA, am);
    CURLcode cc = curl_easy_perform(curl);
    long status = 0;
    int rc = -1;
    if (cc != CURLE_OK) {
        snprintf(err, errlen, "%s", cerr[0] ? cerr : curl_easy_strerror(cc));
    } else {
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
        if (status >= 200 && status < 300) {
            rc = 0;
        } else {
            for (size_t i = 0; i < resp.len; i++)
                if (resp.text[i] == '\n' || resp.text[i] == '\r')
                    resp.text[i] = ' ';
            snprintf(err, errlen, "HTTP %ld: %s", status, resp.text);
            rc = status >= 400 && status < 500 && status != 408 && status != 429 ? 1 : -1;
        }
    }
    curl_slist_free_all(hdr);
    buf_release(&full);
    return rc;
}

/* ---- the delivery thread ---- */

struct am_sent {
    char *key;
    uint64_t version;
};

/* Drops what can no longer be useful: firing alerts whose endsAt passed (the evaluation that
 * kept them alive stopped: rule removed, agent gone; Alertmanager resolved them already) and
 * final alerts whose hold ended before delivery. */
static void am_expire(struct alertmgr *am, int64_t now_wall)
{
    size_t i = 0;
    const char *k;
    void *v;
    while (map_next(am->alerts, &i, &k, &v)) {
        struct am_entry *e = v;
        if (e->kind != AM_RESOLVED && e->a.ends_ms <= now_wall) {
            map_del(am->alerts, k);
            am_entry_free(e);
            am->stats.expired++;
        }
    }
}

/* The due entries (at most ALERTMGR_BATCH; when stopping only resolved and final ones) into
 * body and sent; returns how many, and the earliest later due time in *next. */
static size_t am_take_due(struct alertmgr *am, int64_t now, bool stopping, struct buf *body,
                          struct am_sent *sent, int64_t *next)
{
    const struct alertmgr_alert *batch[ALERTMGR_BATCH];
    size_t n = 0, i = 0;
    const char *k;
    void *v;
    *next = INT64_MAX;
    while (map_next(am->alerts, &i, &k, &v)) {
        struct am_entry *e = v;
        if (stopping && e->kind == AM_FIRING)
            continue;
        if (e->due_mono > now || n == ALERTMGR_BATCH) {
            if (e->due_mono < *next)
                *next = e->due_mono;
            continue;
        }
        batch[n] = &e->a;
        sent[n].key = xstrdup(k);
        sent[n].version = e->version;
        n++;
    }
    buf_reset(body);
    if (n > 0)
        alertmgr_payload(body, batch, n);
    return n;
}

/* Applies a post's outcome to the entries sent that did not change meanwhile. */
static void am_done(struct alertmgr *am, struct am_sent *sent, size_t n, int rc)
{
    int64_t now = clock_mono_ms();
    for (size_t i = 0; i < n; i++) {
        struct am_entry *e = map_get(am->alerts, sent[i].key);
        if (e && e->version == sent[i].version) {
            if (rc < 0)
                ; /* kept due: retried after the back-off */
            else if (e->kind == AM_FIRING)
                e->due_mono = now + am->resend_ms;
            else {
                map_del(am->alerts, sent[i].key);
                am_entry_free(e);
            }
        }
        free(sent[i].key);
    }
    if (rc == 0)
        am->stats.sent += n;
    else
        am->stats.failed += n;
    am->stats.posts++;
}

static void am_wait_until(struct alertmgr *am, int64_t mono_ms)
{
    if (mono_ms == INT64_MAX) {
        pthread_cond_wait(&am->cond, &am->mu);
        return;
    }
    struct timespec ts = {.tv_sec = mono_ms / 1000, .tv_nsec = (mono_ms % 1000) * 1000000L};
    pthread_cond_timedwait(&am->cond, &am->mu, &ts);
}

static void *am_run(void *arg)
{
    struct alertmgr *am = arg;
    CURL *curl = curl_easy_init();
    struct buf body, redacted;
    buf_init(&body);
    buf_init(&redacted);
    struct am_sent *sent = xcalloc(ALERTMGR_BATCH, sizeof(*sent));
    char err[512];
    pthread_mutex_lock(&am->mu);
    for (;;) {
        int64_t now = clock_mono_ms();
        if (am->stop && (now >= am->stop_deadline || !am->url))
            break;
        if (!am->url) {
            am_wait_until(am, INT64_MAX);
            continue;
        }
        am_expire(am, clock_wall_ms());
        if (!am->stop && now < am->retry_mono) {
            am_wait_until(am, am->retry_mono);
            continue;
        }
        int64_t next;
        size_t n = am_take_due(am, now, am->stop, &body, sent, &next);
        am_count(am);
        if (n == 0) {
            if (am->stop)
                break;
            am_wait_until(am, next);
            continue;
        }
        char *url = xstrdup(am->url);
        int64_t timeout = am->timeout_ms;
        if (am->stop && timeout > am->stop_deadline - now)
            timeout = am->stop_deadline - now;
        pthread_mutex_unlock(&am->mu);
        int rc = curl ? am_post(am, curl, url, timeout, &body, err, sizeof(err)) : -1;
        if (!curl)
            snprintf(err, sizeof(err), "cannot initialise libcurl");
        pthread_mutex_lock(&am->mu);
        am_done(am, sent, n, rc);
        am_count(am);
        if (rc == 0) {
            am->backoff_ms = 0;
            am->retry_mono = 0;
            log_complain_recovered(&am->complaint, "alertmanager", "alertmanager reachable");
        } else {
            alertmgr_redact_url(url, &redacted);
            if (rc < 0) {
                am->backoff_ms = am->backoff_ms ? am->backoff_ms * 2 : AM_BACKOFF_MIN_MS;
                if (am->backoff_ms > AM_BACKOFF_MAX_MS)
                    am->backoff_ms = AM_BACKOFF_MAX_MS;
                am->retry_mono = clock_mono_ms() + am->backoff_ms;
            }
            log_complain(&am->complaint, LOG_WARN, "alertmanager",
                         "cannot deliver alerts to alertmanager '%s': %s alerts=%zu retry=%s",
                         redacted.data, err, n, rc < 0 ? "yes" : "no");
        }
        free(url);
        if (rc != 0 && am->stop)
            break;
    }
    pthread_mutex_unlock(&am->mu);
    free(sent);
    buf_release(&body);
    buf_release(&redacted);
    curl_easy_cleanup(curl);
    return NULL;
}

/* ---- the public handle ---- */

static void am_settings(struct alertmgr *am, const struct csm_config *cfg)
{
    free(am->url);
    am->url =
        cfg->alertmanager_url && *cfg->alertmanager_url ? xstrdup(cfg->alertmanager_url) : NULL;
    am->resend_ms = cfg->alertmanager_resend_ms;
    am->timeout_ms = cfg->alertmanager_timeout_ms;
    am->hold_ms = cfg->alertmanager_final_hold_ms;
}

struct alertmgr *alertmgr_new(const struct csm_config *cfg, char *err, size_t errlen)
{
    CURLcode cc = curl_global_init(CURL_GLOBAL_DEFAULT);
    if (cc != CURLE_OK) {
        snprintf(err, errlen, "cannot initialise libcurl: %s", curl_easy_strerror(cc));
        return NULL;
    }
    struct alertmgr *am = xcalloc(1, sizeof(*am));
    pthread_mutex_init(&am->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&am->cond, &ca);
    pthread_condattr_destroy(&ca);
    am->alerts = map_new();
    am_settings(am, cfg);
    /* Signals are for the main loop: the thread starts with every one blocked. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int rc = pthread_create(&am->thread, NULL, am_run, am);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        snprintf(err, errlen, "cannot start the alertmanager thread: %s", strerror(rc));
        map_destroy(am->alerts);
        free(am->url);
        pthread_cond_destroy(&am->cond);
        pthread_mutex_destroy(&am->mu);
        free(am);
        curl_global_cleanup();
        return NULL;
    }
    if (am->url) {
        struct buf r;
        buf_init(&r);
        alertmgr_redact_url(am->url, &r);
        log_msg(LOG_NOTICE, "alertmanager", "delivering alerts to '%s'", r.data);
        buf_release(&r);
    }
    return am;
}

void alertmgr_destroy(struct alertmgr *am)
{
    if (!am)
        return;
    pthread_mutex_lock(&am->mu);
    am->stop = true;
    am->stop_deadline = clock_mono_ms() + AM_STOP_GRACE_MS;
    pthread_cond_signal(&am->cond);
    pthread_mutex_unlock(&am->mu);
    pthread_join(am->thread, NULL);
    if (am->url && map_size(am->alerts) > 0)
        log_msg(LOG_INFO, "alertmanager", "stopping with alerts held=%zu (firing ones expire)",
                map_size(am->alerts));
    am_clear(am);
    map_destroy(am->alerts);
    free(am->url);
    pthread_cond_destroy(&am->cond);
    pthread_mutex_destroy(&am->mu);
    free(am);
    curl_global_cleanup();
}

void alertmgr_configure(struct alertmgr *am, const struct csm_config *cfg)
{
    if (!am)
        return;
    pthread_mutex_lock(&am->mu);
    char *old = am->url ? xstrdup(am->url) : NULL;
    am_settings(am, cfg);
    if (!am->url) {
        if (old)
            log_msg(LOG_NOTICE, "alertmanager", "alert delivery off dropped=%zu",
                    map_size(am->alerts));
        am_clear(am);
    } else if (!old || strcmp(old, am->url) != 0) {
        /* A new Alertmanager gets everything held now. */
        struct buf r;
        buf_init(&r);
        alertmgr_redact_url(am->url, &r);
        log_msg(LOG_NOTICE, "alertmanager", "delivering alerts to '%s' held=%zu", r.data,
                map_size(am->alerts));
        buf_release(&r);
        size_t i = 0;
        const char *k;
        void *v;
        int64_t now = clock_mono_ms();
        while (map_next(am->alerts, &i, &k, &v))
            ((struct am_entry *)v)->due_mono = now;
        am->retry_mono = 0;
        am->backoff_ms = 0;
    }
    am_count(am);
    free(old);
    pthread_cond_signal(&am->cond);
    pthread_mutex_unlock(&am->mu);
}

bool alertmgr_enabled(struct alertmgr *am)
{
    if (!am)
        return false;
    pthread_mutex_lock(&am->mu);
    bool on = am->url != NULL;
    pthread_mutex_unlock(&am->mu);
    return on;
}

static bool am_parse(struct alertmgr *am, const char *record, bool final, struct alertmgr_alert *a)
{
    char err[256];
    if (record && alertmgr_alert_parse(record, final, a, err, sizeof(err)) == 0)
        return true;
    if (record)
        log_complain(&am->bad_complaint, LOG_WARN, "alertmanager", "cannot queue alert: %s", err);
    am->stats.dropped++;
    return false;
}

void alertmgr_live(struct alertmgr *am, const char *record, int64_t interval_ms, int64_t now_ms)
{
    if (!am)
        return;
    pthread_mutex_lock(&am->mu);
    struct alertmgr_alert a;
    if (am->url && am_parse(am, record, false, &a)) {
        if (a.resolved)
            am_hold(am, &a, AM_RESOLVED, now_ms);
        else
            am_hold(am, &a, AM_FIRING,
                    now_ms + AM_VALID_INTERVALS * am_max64(am->resend_ms, interval_ms));
        am_count(am);
    }
    pthread_mutex_unlock(&am->mu);
}

void alertmgr_final(struct alertmgr *am, const char *record, int64_t closed_ms)
{
    if (!am)
        return;
    pthread_mutex_lock(&am->mu);
    struct alertmgr_alert a;
    if (am->url && am_parse(am, record, true, &a)) {
        int64_t ends = closed_ms + am->hold_ms;
        if (ends <= clock_wall_ms()) {
            am->stats.expired++;
            alertmgr_alert_release(&a);
        } else {
            am_hold(am, &a, AM_FINAL, ends);
        }
        am_count(am);
    }
    pthread_mutex_unlock(&am->mu);
}

void alertmgr_stats(struct alertmgr *am, struct alertmgr_stats *out)
{
    *out = (struct alertmgr_stats){0};
    if (!am)
        return;
    pthread_mutex_lock(&am->mu);
    *out = am->stats;
    pthread_mutex_unlock(&am->mu);
}
