/* csmetricsd — consumes chat and order events from Kafka and keeps per-agent KPIs in
 * Redis (README). Runs in the foreground under systemd (Type=notify: READY=1 once ready,
 * STATUS= lines, WATCHDOG=1 from the main loop, RELOADING=1 around SIGHUP); logs to stderr
 * with syslog priority prefixes; serves /metrics, /healthz and /readyz (daemon/http.h)
 * from a registry the main loop updates once per iteration. The only globals are the
 * signal flags. */
#include "common/clock.h"
#include "common/log.h"
#include "config/config.h"
#include "daemon/alertmgr.h"
#include "daemon/http.h"
#include "daemon/ingest.h"
#include "daemon/obs.h"
#include "daemon/rules_run.h"
#include "daemon/store.h"
#include "daemon/version.h"

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <time.h>

static volatile sig_atomic_t stop_requested;
static volatile sig_atomic_t reload_requested;

static void on_signal(int sig)
{
    if (sig == SIGHUP)
        reload_requested = 1;
    else
        stop_requested = 1;
}

static void usage(FILE *out)
{
    fprintf(out, "usage: csmetricsd [-c FILE] [-t] [--dump-config] [--version]\n"
                 "  -c FILE         configuration (default /etc/csmetrics/csmetrics.yaml)\n"
                 "  -t              check the configuration and exit 0/1 (like nginx -t)\n"
                 "  --dump-config   print the effective configuration (secrets redacted)\n"
                 "  --config-reference  print every configuration key as a Markdown table\n"
                 "  --redis-functions   print the Redis function library, for an admin to load\n");
}

static int load_config(struct csm_config *cfg, const char *path)
{
    char err[1024];
    config_init(cfg);
    if (config_load(cfg, path, err, sizeof(err)) < 0 ||
        config_validate(cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    return 0;
}

/* SIGHUP: re-reads the configuration and every rule file; on any error keeps what runs
 * (like Prometheus). Connection settings (kafka.*, redis.*, http.listen) need a restart: a
 * change there is logged and ignored; the other keys apply at once. 0, or -1 when refused. */
static int reload(struct csm_config *cfg, const char *path, struct ingest *in, struct rules_run *rr)
{
    struct csm_config next;
    char err[1024];
    config_init(&next);
    if (config_load(&next, path, err, sizeof(err)) < 0 ||
        config_validate(&next, err, sizeof(err)) < 0) {
        log_msg(LOG_ERR, "main", "reload failed, keeping the running configuration and rules: %s",
                err);
        config_release(&next);
        return -1;
    }
    struct rule_set *set = rule_set_load_dir(next.rules_dir, err, sizeof(err));
    if (!set) {
        log_msg(LOG_ERR, "main", "reload failed, keeping the running configuration and rules: %s",
                err);
        config_release(&next);
        period_tz_set(cfg->timezone, err, sizeof(err));
        return -1;
    }
    if (strcmp(next.kafka_brokers, cfg->kafka_brokers) || strcmp(next.redis_url, cfg->redis_url) ||
        strcmp(next.kafka_group_id, cfg->kafka_group_id) ||
        strcmp(next.redis_key_prefix, cfg->redis_key_prefix) ||
        strcmp(next.timezone, cfg->timezone) || strcmp(next.http_listen, cfg->http_listen))
        log_msg(LOG_WARN, "main",
                "reload: kafka, redis, timezone and http.listen changes apply at the next restart");
    period_tz_set(cfg->timezone, err, sizeof(err));
    cfg->lateness_ms = next.lateness_ms;
    cfg->idle_timeout_ms = next.idle_timeout_ms;
    cfg->max_future_ms = next.max_future_ms;
    cfg->attribution_window_ms = next.attribution_window_ms;
    cfg->dedup_window_ms = next.dedup_window_ms;
    memcpy(cfg->periods, next.periods, sizeof(cfg->periods));
    char *am_url = cfg->alertmanager_url; /* alertmanager.*: main hands them to alertmgr */
    cfg->alertmanager_url = next.alertmanager_url;
    next.alertmanager_url = am_url;
    cfg->alertmanager_resend_ms = next.alertmanager_resend_ms;
    cfg->alertmanager_timeout_ms = next.alertmanager_timeout_ms;
    cfg->alertmanager_final_hold_ms = next.alertmanager_final_hold_ms;
    enum log_level lvl;
    if (log_level_parse(next.log_level, &lvl) == 0)
        log_set_level(lvl);
    size_t n = set->n;
    ingest_set_rules(in, set);
    rules_run_replace(rr, set);
    config_release(&next);
    log_msg(LOG_NOTICE, "main", "reloaded configuration and rules rules=%zu", n);
    return 0;
}

/* Why the daemon is not ready ("" when it is): the body of a 503 /readyz and the STATUS
 * line until READY=1. Ready is: Redis connected and the partition state loaded, the Kafka
 * group joined (an assignment received, possibly empty) and not every broker down since,
 * rules loaded. */
static void daemon_not_ready(struct ingest *in, const struct rules_run *rr,
                             const struct csm_config *cfg, char *why, size_t n)
{
    struct consumer *kc = ingest_consumer(in);
    struct rconn *rc = ingest_rconn(in);
    why[0] = '\0';
    if (!rconn_connected(rc))
        snprintf(why, n, "redis unreachable (redis=%s)", rconn_describe(rc));
    else if (!kc)
        snprintf(why, n, "kafka consumer not started");
    else if (consumer_assignment_pending(kc))
        snprintf(why, n, "kafka partition assignment waiting for the state in redis");
    else if (!ingest_ready(in))
        snprintf(why, n, "partition state not loaded from redis (redis=%s)", rconn_describe(rc));
    else if (consumer_brokers_down_since(kc) != 0)
        snprintf(why, n, "kafka brokers all down for %.0f s (brokers %s)",
                 (double)(clock_wall_ms() - consumer_brokers_down_since(kc)) / 1000.0,
                 cfg->kafka_brokers);
    else if (consumer_rebalances(kc) == 0)
        snprintf(why, n, "no kafka partition assignment yet (group '%s', brokers %s)",
                 cfg->kafka_group_id, cfg->kafka_brokers);
    else if (!rules_run_set(rr))
        snprintf(why, n, "no rules loaded");
    obs_printable(why);
}

static uint64_t mono_usec(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000 + (uint64_t)t.tv_nsec / 1000;
}

int main(int argc, char **argv)
{
    const char *path = getenv("CSMETRICS_CONFIG");
    if (!path || !*path)
        path = "/etc/csmetrics/csmetrics.yaml";
    bool test_only = false, dump = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-c") == 0 && i + 1 < argc)
            path = argv[++i];
        else if (strcmp(argv[i], "-t") == 0)
            test_only = true;
        else if (strcmp(argv[i], "--dump-config") == 0)
            dump = true;
        else if (strcmp(argv[i], "--config-reference") == 0) {
            config_print_reference(stdout); /* the README's configuration table */
            return 0;
        } else if (strcmp(argv[i], "--redis-functions") == 0) {
            fputs(store_lua_library, stdout); /* | redis-cli -x FUNCTION LOAD REPLACE */
            return 0;
        } else if (strcmp(argv[i], "--version") == 0) {
            printf("csmetricsd %s\n", CSM_VERSION);
            return 0;
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }
    struct csm_config cfg;
    if (load_config(&cfg, path) < 0) {
        config_release(&cfg);
        return 1;
    }
    if (dump) {
        config_dump(&cfg, stdout);
        config_release(&cfg);
        return 0;
    }
    char rerr[1024];
    struct rule_set *rules = rule_set_load_dir(cfg.rules_dir, rerr, sizeof(rerr));
    if (!rules) {
        fprintf(stderr, "%s\n", rerr);
        config_release(&cfg);
        return 1;
    }
    if (test_only) {
        fprintf(stderr, "csmetricsd: configuration '%s' and %zu rule file%s in '%s' are ok\n", path,
                rules->n, rules->n == 1 ? "" : "s", cfg.rules_dir);
        rule_set_destroy(rules);
        config_release(&cfg);
        return 0;
    }
    enum log_level lvl;
    if (log_level_parse(cfg.log_level, &lvl) == 0)
        log_set_level(lvl);

    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    char err[1024];
    struct ingest *in = ingest_new(&cfg, err, sizeof(err));
    if (!in) {
        log_msg(LOG_ERR, "main", "%s", err);
        config_release(&cfg);
        return 1;
    }
    ingest_set_rules(in, rules);
    struct rules_run *rr = rules_run_new(rules);
    rules = NULL; /* owned by rr */
    struct alertmgr *am = alertmgr_new(&cfg, err, sizeof(err));
    if (!am)
        log_msg(LOG_ERR, "main", "%s", err); /* runs on without Alertmanager delivery */
    struct obs *obs = obs_new(&cfg);
    obs_rules(obs, rr);
    uint64_t wd_usec = 0;
    bool watchdog = sd_watchdog_enabled(0, &wd_usec) > 0;
    struct http *http = NULL;
    if (cfg.http_listen[0]) {
        /* /healthz fails when systemd's watchdog would fire (30 s without one), and never
         * before a poll of batch_max_wait could have ended thrice. */
        int64_t stall_ms = watchdog ? (int64_t)(wd_usec / 1000) : 30000;
        if (stall_ms < 3 * cfg.batch_max_wait_ms)
            stall_ms = 3 * cfg.batch_max_wait_ms;
        http = http_new(cfg.http_listen, obs_metrics(obs), stall_ms, err, sizeof(err));
        if (!http) {
            log_msg(LOG_ERR, "main", "%s", err);
            alertmgr_destroy(am);
            ingest_destroy(in);
            rules_run_destroy(rr);
            obs_destroy(obs);
            config_release(&cfg);
            return 1;
        }
    }
    log_msg(LOG_NOTICE, "main", "csmetricsd %s starting config=%s brokers=%s rules=%zu",
            CSM_VERSION, path, cfg.kafka_brokers, rules_run_set(rr)->n);
    int64_t next_wd = 0, next_status = 0, next_rules = 0;
    bool ready = false;
    int status = 0;
    while (!stop_requested) {
        ingest_step(in);
        if (ingest_failed(in)) {
            status = 1;
            break;
        }
        int64_t now = clock_mono_ms();
        char why[256];
        daemon_not_ready(in, rr, &cfg, why, sizeof(why));
        if (!ready && !why[0]) {
            ready = true;
            sd_notify(0, "READY=1");
            next_status = now;
            log_msg(LOG_NOTICE, "main", "ready redis and kafka reachable partitions=%zu",
                    ingest_partitions(in, NULL, NULL));
        }
        if (watchdog && now >= next_wd) {
            sd_notify(0, "WATCHDOG=1");
            next_wd = now + (int64_t)(wd_usec / 2000);
        }
        if (ready && now >= next_rules) {
            struct rules_env env = {.cfg = &cfg,
                                    .rc = ingest_rconn(in),
                                    .st = ingest_store(in),
                                    .kc = ingest_consumer(in),
                                    .wm_ms = ingest_stats(in)->close_wm_ms,
                                    .now_ms = clock_wall_ms(),
                                    .am = am,
                                    .obs = obs_observer(obs)};
            if (ingest_ready(in) && env.kc)
                rules_run_step(rr, &env);
            next_rules = now + 1000;
        }
        obs_sync(obs, in, rr, am, !why[0]);
        http_heartbeat(http, why);
        if (now >= next_status) {
            obs_status(obs, ingest_stats(in), why);
            next_status = now + 5000;
        }
        if (reload_requested) {
            reload_requested = 0;
            /* Before READY=1 there is nothing to announce (and READY=1 would lie). */
            if (ready)
                sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%" PRIu64 "\nSTATUS=reloading",
                           mono_usec());
            int rc = reload(&cfg, path, in, rr);
            alertmgr_configure(am, &cfg);
            obs_reloaded(obs, rr, rc == 0);
            if (ready) {
                sd_notify(0, "READY=1");
                next_status = 0;
            }
        }
    }
    sd_notify(0, "STOPPING=1\nSTATUS=stopping");
    log_msg(LOG_NOTICE, "main", "stopping events=%" PRIu64, ingest_stats(in)->events);
    http_destroy(http); /* first: it reads the registry until it stops */
    ingest_destroy(in);
    rules_run_destroy(rr);
    alertmgr_destroy(am);
    obs_destroy(obs);
    config_release(&cfg);
    return status;
}
