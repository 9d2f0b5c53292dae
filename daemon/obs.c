/* obs — see obs.h. */
#include "daemon/obs.h"
#include "common/clock.h"
#include "consumers/consumer.h"
#include "consumers/decode.h"
#include "daemon/rconn.h"
#include "daemon/version.h"

#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <time.h>

/* The daemon's metric families (README "Metrics") and the figures of its STATUS line.
 * Everything here runs on the main thread; the registry is what the HTTP thread reads. */
struct obs {
    struct metrics *m;
    const struct csm_config *cfg; /* borrowed */
    struct metrics_family *events, *duplicates, *dead_letters, *batch_size, *commits, *fenced,
        *redis_errors, *redis_up, *redis_rtt, *ready, *partitions, *lag, *part_wm, *global_wm,
        *close_wm, *rule_eval, *alerts, *closes, *last_close_ts, *snapshots, *rule_errors,
        *rule_files, *reloads, *reload_ok, *am_alerts, *am_posts, *am_queued, *swept, *evicted,
        *cached, *periods_deleted, *offset_resets, *lost, *saturated, *leases, *lease_conflicts;
    struct consumer *kc; /* for obs_partition */
    int64_t lag_total;   /* of the last sync */
    size_t nparts;
    char last_close[512]; /* "RULE PERIOD (shop SHOP) at TIME", for STATUS */
    uint64_t status_events;
    int64_t status_ms;
    struct rules_observer observer; /* closes, alerts, evaluations (rules_run.h) */
};

#define OBS_LABELS(...) ((const char *const[]){__VA_ARGS__, NULL})

/* Control characters (a newline would start a new sd_notify assignment) become '?'. */
void obs_printable(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            *s = '?';
}

static void obs_iso(int64_t ms, char *out, size_t len)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (ms <= 0 || !gmtime_r(&t, &tm) || !strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm))
        snprintf(out, len, "none");
}

static const char *obs_topic(const struct csm_config *cfg, int kind)
{
    return kind == TOPIC_CHAT     ? cfg->topic_chat
           : kind == TOPIC_ORDERS ? cfg->topic_orders
                                  : cfg->topic_reviews;
}

/* Every rule gets its periods-closed series at 0, so increase() sees the first close. */
void obs_rules(struct obs *o, const struct rules_run *rr)
{
    const struct rule_set *set = rules_run_set(rr);
    metrics_lock(o->m);
    for (size_t i = 0; set && i < set->n; i++)
        metrics_add(o->closes, (const char *const[]){set->rules[i]->name}, 0);
    metrics_set(o->rule_files, NULL, set ? (double)set->n : 0);
    metrics_unlock(o->m);
}

static void obs_init(struct obs *o, const struct csm_config *cfg)
{
    *o = (struct obs){.m = metrics_new(), .cfg = cfg, .status_ms = clock_mono_ms()};
    struct metrics *m = o->m;
    const enum metrics_type C = METRICS_COUNTER, G = METRICS_GAUGE, H = METRICS_HISTOGRAM;
    const enum metrics_scale S = METRICS_SCALE_SECONDS;
    struct metrics_family *info =
        metrics_register(m, G, "csmetrics_build_info",
                         "csmetricsd's version and the library versions it runs with (value 1)",
                         OBS_LABELS("version", "rdkafka", "hiredis", "microhttpd"), S);
    struct metrics_family *start =
        metrics_register(m, G, "csmetrics_start_time_seconds",
                         "When csmetricsd started, seconds since the epoch", NULL, S);
    o->events = metrics_register(
        m, C, "csmetrics_events_total",
        "Events decoded, not duplicates, and applied to the figures, by input topic and type",
        OBS_LABELS("topic", "type"), S);
    o->duplicates =
        metrics_register(m, C, "csmetrics_duplicate_events_total",
                         "Events skipped because their event_id was seen before", NULL, S);
    o->dead_letters = metrics_register(m, C, "csmetrics_dead_letters_total",
                                       "Messages sent to the dead-letter topic, by reason",
                                       OBS_LABELS("reason"), S);
    o->batch_size = metrics_register(m, H, "csmetrics_batch_size_messages",
                                     "Messages per batch polled from Kafka and committed at once",
                                     NULL, METRICS_SCALE_COUNT);
    o->commits =
        metrics_register(m, C, "csmetrics_partition_commits_total",
                         "Partition commits to Redis (offsets with their figures)", NULL, S);
    o->fenced = metrics_register(
        m, C, "csmetrics_partition_fenced_total",
        "Partition commits refused because another instance took the partition over", NULL, S);
    o->redis_errors = metrics_register(m, C, "csmetrics_redis_errors_total",
                                       "Redis failures of the ingest path (each drops the "
                                       "connection and resumes from the stored offsets)",
                                       NULL, S);
    o->swept = metrics_register(m, C, "csmetrics_state_records_swept_total",
                                "Conversation and order records deleted from Redis once no event "
                                "could use them (conversation_retention, order_retention)",
                                NULL, S);
    o->evicted = metrics_register(m, C, "csmetrics_cache_evictions_total",
                                  "Records dropped from the in-memory cache (cache_max_records); "
                                  "Redis keeps them",
                                  NULL, S);
    o->cached = metrics_register(m, G, "csmetrics_cache_records",
                                 "Conversation and order records cached in memory", NULL, S);
    o->periods_deleted =
        metrics_register(m, C, "csmetrics_periods_deleted_total",
                         "(owner or rule/shop, period) pairs deleted by retention", NULL, S);
    o->offset_resets = metrics_register(
        m, C, "csmetrics_kafka_offset_resets_total",
        "Times Kafka's retention had passed a partition's stored offset (events lost)", NULL, S);
    o->lost = metrics_register(m, C, "csmetrics_kafka_lost_messages_total",
                               "Messages Kafka deleted before csmetrics read them", NULL, S);
    o->leases = metrics_register(
        m, C, "csmetrics_leases_total",
        "Batches that published their lease (the first close they write) before their commit", NULL,
        S);
    o->lease_conflicts = metrics_register(
        m, C, "csmetrics_lease_conflicts_total",
        "Batches re-read because a close reached their periods while they were judged", NULL, S);
    o->saturated = metrics_register(
        m, C, "csmetrics_counters_saturated_total",
        "Counters Redis held at the int64 limit instead of overflowing (figures not exact)", NULL,
        S);
    o->redis_up = metrics_register(m, G, "csmetrics_redis_up",
                                   "1 while the Redis connection is up, else 0", NULL, S);
    o->redis_rtt =
        metrics_register(m, H, "csmetrics_redis_roundtrip_seconds",
                         "Time of each Redis round trip (a pipeline of commands)", NULL, S);
    o->ready = metrics_register(m, G, "csmetrics_ready",
                                "1 while /readyz answers 200 (Redis connected, Kafka partitions "
                                "assigned, rules loaded), else 0",
                                NULL, S);
    o->partitions = metrics_register(m, G, "csmetrics_assigned_partitions",
                                     "Kafka partitions assigned to this instance", NULL, S);
    o->lag = metrics_register(m, G, "csmetrics_consumer_lag_messages",
                              "Messages of a partition not yet committed to Redis: the high "
                              "watermark librdkafka last saw minus the committed offset",
                              OBS_LABELS("topic", "partition"), S);
    o->part_wm = metrics_register(m, G, "csmetrics_partition_watermark_timestamp_seconds",
                                  "Largest event time delivered by a partition, seconds since "
                                  "the epoch",
                                  OBS_LABELS("topic", "partition"), S);
    o->global_wm = metrics_register(m, G, "csmetrics_watermark_timestamp_seconds",
                                    "Global event-time watermark (the minimum over partitions), "
                                    "seconds since the epoch",
                                    NULL, S);
    o->close_wm = metrics_register(m, G, "csmetrics_close_watermark_timestamp_seconds",
                                   "Watermark periods close by (global, held back until orders "
                                   "below it are attributed), seconds since the epoch",
                                   NULL, S);
    o->rule_eval = metrics_register(
        m, H, "csmetrics_rule_evaluation_seconds",
        "Time to read one shop's figures and evaluate one rule, by mode (close or live)",
        OBS_LABELS("mode"), S);
    o->alerts = metrics_register(m, C, "csmetrics_alerts_total",
                                 "Alert events emitted, by rule, alert and state",
                                 OBS_LABELS("rule", "alert", "state"), S);
    o->closes = metrics_register(m, C, "csmetrics_periods_closed_total",
                                 "Period closes emitted (one per rule, shop and period), by rule",
                                 OBS_LABELS("rule"), S);
    o->last_close_ts = metrics_register(m, G, "csmetrics_last_close_timestamp_seconds",
                                        "When the last period close was emitted, seconds since the "
                                        "epoch (0: none since start)",
                                        NULL, S);
    o->snapshots = metrics_register(m, C, "csmetrics_final_snapshots_total",
                                    "Final snapshots produced to Kafka by period closes", NULL, S);
    o->rule_errors =
        metrics_register(m, C, "csmetrics_rule_errors_total",
                         "Rules engine passes that failed (retried the next second)", NULL, S);
    o->rule_files =
        metrics_register(m, G, "csmetrics_rule_files", "Rule files loaded and in use", NULL, S);
    o->reloads =
        metrics_register(m, C, "csmetrics_reloads_total", "SIGHUP reloads, by result (ok, failed)",
                         OBS_LABELS("result"), S);
    o->reload_ok =
        metrics_register(m, G, "csmetrics_config_last_reload_successful",
                         "1 when the last reload (or the start) succeeded, else 0", NULL, S);
    o->am_alerts = metrics_register(
        m, C, "csmetrics_alertmanager_alerts_total",
        "Alerts handed to Alertmanager, by result (sent, failed, dropped, expired)",
        OBS_LABELS("result"), S);
    o->am_posts = metrics_register(m, C, "csmetrics_alertmanager_posts_total",
                                   "HTTP requests made to Alertmanager", NULL, S);
    o->am_queued = metrics_register(m, G, "csmetrics_alertmanager_queued_alerts",
                                    "Alerts held for Alertmanager (firing live ones and those "
                                    "awaiting delivery)",
                                    NULL, S);
    char hiredis[32];
    snprintf(hiredis, sizeof(hiredis), "%d.%d.%d", HIREDIS_MAJOR, HIREDIS_MINOR, HIREDIS_PATCH);
    metrics_lock(m);
    metrics_set(info, OBS_LABELS(CSM_VERSION, rd_kafka_version_str(), hiredis, MHD_get_version()),
                1);
    metrics_set(start, NULL, (double)clock_wall_ms() / 1000);
    for (int r = 1; r < DL_REASON_COUNT; r++)
        metrics_set(o->dead_letters, OBS_LABELS(dl_reason_name((enum dl_reason)r)), 0);
    metrics_set(o->reloads, OBS_LABELS("ok"), 0);
    metrics_set(o->reloads, OBS_LABELS("failed"), 0);
    metrics_set(o->reload_ok, NULL, 1);
    metrics_unlock(m);
}

static void obs_partition(void *ud, const struct ingest_partition *p)
{
    struct obs *o = ud;
    char num[16];
    snprintf(num, sizeof(num), "%d", (int)p->partition);
    const char *const lv[] = {p->topic, num};
    int64_t lo = -1, hi = -1;
    /* librdkafka's cached offsets of the last fetch: no broker round trip */
    if (o->kc &&
        rd_kafka_get_watermark_offsets(consumer_handle(o->kc), p->topic, p->partition, &lo, &hi) ==
            RD_KAFKA_RESP_ERR_NO_ERROR &&
        hi >= 0) {
        int64_t pos = p->committed >= 0 ? p->committed : (lo > 0 ? lo : 0);
        int64_t lag = hi > pos ? hi - pos : 0;
        metrics_set(o->lag, lv, (double)lag);
        o->lag_total += lag;
    }
    if (p->wm_ms > 0)
        metrics_set(o->part_wm, lv, (double)p->wm_ms / 1000);
}

/* Copies the modules' counters into the registry: one lock per main loop iteration. */
void obs_sync(struct obs *o, struct ingest *in, const struct rules_run *rr, struct alertmgr *am,
              bool ready)
{
    const struct ingest_stats *s = ingest_stats(in);
    const struct rules_stats *rs = rules_run_stats(rr);
    struct alertmgr_stats as;
    alertmgr_stats(am, &as);
    metrics_lock(o->m);
    for (int k = 0; k < TOPIC_INPUT_COUNT; k++)
        for (int t = 0; t < EV_TYPE_COUNT; t++)
            if (s->events_by[k][t])
                metrics_set(o->events,
                            OBS_LABELS(obs_topic(o->cfg, k), event_type_name((enum event_type)t)),
                            (double)s->events_by[k][t]);
    metrics_set(o->duplicates, NULL, (double)s->duplicates);
    for (int r = 1; r < DL_REASON_COUNT; r++)
        metrics_set(o->dead_letters, OBS_LABELS(dl_reason_name((enum dl_reason)r)),
                    (double)s->deadletters[r]);
    metrics_hist_set(o->batch_size, NULL, &s->batch_sizes);
    metrics_set(o->commits, NULL, (double)s->commits);
    metrics_set(o->fenced, NULL, (double)s->fenced);
    metrics_set(o->redis_errors, NULL, (double)s->redis_errors);
    metrics_set(o->swept, NULL, (double)s->swept);
    metrics_set(o->evicted, NULL, (double)s->evicted);
    metrics_set(o->cached, NULL, (double)s->cached);
    metrics_set(o->periods_deleted, NULL, (double)s->periods_deleted);
    metrics_set(o->offset_resets, NULL, (double)s->offset_resets);
    metrics_set(o->lost, NULL, (double)s->lost_messages);
    metrics_set(o->saturated, NULL, (double)s->saturated);
    metrics_set(o->leases, NULL, (double)s->leases);
    metrics_set(o->lease_conflicts, NULL, (double)s->lease_conflicts);
    metrics_set(o->redis_up, NULL, rconn_connected(ingest_rconn(in)) ? 1 : 0);
    struct metrics_hist rtt;
    ingest_redis_latency(in, &rtt);
    metrics_hist_set(o->redis_rtt, NULL, &rtt);
    metrics_set(o->ready, NULL, ready ? 1 : 0);
    metrics_mark(o->lag);
    metrics_mark(o->part_wm);
    o->kc = ingest_consumer(in);
    o->lag_total = 0;
    o->nparts = ingest_partitions(in, obs_partition, o);
    metrics_sweep(o->lag);
    metrics_sweep(o->part_wm);
    metrics_set(o->partitions, NULL, (double)o->nparts);
    if (s->global_wm_ms > 0)
        metrics_set(o->global_wm, NULL, (double)s->global_wm_ms / 1000);
    if (s->close_wm_ms > 0)
        metrics_set(o->close_wm, NULL, (double)s->close_wm_ms / 1000);
    metrics_set(o->snapshots, NULL, (double)rs->snapshots);
    metrics_set(o->rule_errors, NULL, (double)rs->errors);
    metrics_set(o->am_alerts, OBS_LABELS("sent"), (double)as.sent);
    metrics_set(o->am_alerts, OBS_LABELS("failed"), (double)as.failed);
    metrics_set(o->am_alerts, OBS_LABELS("dropped"), (double)as.dropped);
    metrics_set(o->am_alerts, OBS_LABELS("expired"), (double)as.expired);
    metrics_set(o->am_posts, NULL, (double)as.posts);
    metrics_set(o->am_queued, NULL, (double)as.queued);
    metrics_unlock(o->m);
}

void obs_reloaded(struct obs *o, const struct rules_run *rr, bool ok)
{
    metrics_lock(o->m);
    metrics_add(o->reloads, OBS_LABELS(ok ? "ok" : "failed"), 1);
    metrics_set(o->reload_ok, NULL, ok ? 1 : 0);
    metrics_unlock(o->m);
    if (ok)
        obs_rules(o, rr);
}

/* rules_observer hooks: rare events (closes, alert transitions) and evaluations. */
static void obs_closed(void *ud, const char *rule, const char *shop, const char *period)
{
    struct obs *o = ud;
    int64_t now = clock_wall_ms();
    metrics_lock(o->m);
    metrics_add(o->closes, OBS_LABELS(rule), 1);
    metrics_set(o->last_close_ts, NULL, (double)now / 1000);
    metrics_unlock(o->m);
    char when[32];
    obs_iso(now, when, sizeof(when));
    snprintf(o->last_close, sizeof(o->last_close), "%s %s (shop %s) at %s", rule, period, shop,
             when);
    obs_printable(o->last_close);
}

static void obs_alert(void *ud, const char *rule, const char *alert, const char *state)
{
    struct obs *o = ud;
    metrics_lock(o->m);
    metrics_add(o->alerts, OBS_LABELS(rule, alert, state), 1);
    metrics_unlock(o->m);
}

static void obs_evaluated(void *ud, bool final, double seconds)
{
    struct obs *o = ud;
    metrics_lock(o->m);
    metrics_observe(o->rule_eval, OBS_LABELS(final ? "close" : "live"), seconds);
    metrics_unlock(o->m);
}

/* STATUS=: what systemctl status shows (README "Service"). */
void obs_status(struct obs *o, const struct ingest_stats *s, const char *why)
{
    int64_t now = clock_mono_ms();
    double dt = (double)(now - o->status_ms) / 1000;
    double rate = dt > 0 ? (double)(s->events - o->status_events) / dt : 0;
    o->status_events = s->events;
    o->status_ms = now;
    if (why[0]) {
        sd_notifyf(0, "STATUS=waiting: %s", why);
        return;
    }
    char wm[32];
    obs_iso(s->global_wm_ms, wm, sizeof(wm));
    sd_notifyf(0,
               "STATUS=%.1f events/s, lag %" PRId64 ", %zu partitions, watermark %s, "
               "last close %s",
               rate, o->lag_total, o->nparts, wm, o->last_close[0] ? o->last_close : "none");
}

struct obs *obs_new(const struct csm_config *cfg)
{
    struct obs *o = xcalloc(1, sizeof(*o));
    obs_init(o, cfg);
    o->observer = (struct rules_observer){
        .closed = obs_closed, .alert = obs_alert, .evaluated = obs_evaluated, .ud = o};
    return o;
}

void obs_destroy(struct obs *o)
{
    if (!o)
        return;
    metrics_destroy(o->m);
    free(o);
}

struct metrics *obs_metrics(struct obs *o)
{
    return o->m;
}

const struct rules_observer *obs_observer(const struct obs *o)
{
    return &o->observer;
}
