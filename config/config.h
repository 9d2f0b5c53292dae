/* config — csmetrics.yaml (operations.md), loaded strictly from one table that also
 * prints --dump-config and the README reference. Errors are "file:line:column: message".
 * struct csm_config is a plain value struct: config_init / config_release. */
#ifndef CSM_CONFIG_CONFIG_H
#define CSM_CONFIG_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "aggregator/period.h"

struct config_kv {
    char *key;
    char *value; /* a "@file:/path" value is replaced by the file's contents (one trailing newline
                    cut) at load */
    bool secret; /* came from a file, or the key names a secret (sasl.password, ssl.key.password,
                    ...) */
};

struct csm_config {
    char *path; /* the file loaded, for messages */

    /* kafka */
    char *kafka_brokers;                             /* "127.0.0.1:9092" or "embedded" */
    char *kafka_group_id;                            /* "csmetrics" */
    char *topic_chat, *topic_orders, *topic_reviews; /* cs.chat shop.orders cs.reviews */
    char *topic_snapshots, *topic_alerts,
        *topic_deadletter;         /* cs.snapshots cs.alerts cs.deadletter */
    struct config_kv *kafka_props; /* kafka.properties, in file order */
    size_t kafka_props_n;

    /* redis */
    char *redis_url;           /* "redis://127.0.0.1:6379/0"; may hold user:password (secret) */
    char *redis_key_prefix;    /* "csm:" */
    char *redis_password_file; /* NULL; read at load (or from $CREDENTIALS_DIRECTORY/redis-password)
                                */
    char *redis_password;      /* from password_file; secret, never printed */

    char *timezone;                  /* "Asia/Shanghai", validated with period_tz_set semantics */
    bool periods[PERIOD_KIND_COUNT]; /* default day, month */

    int64_t lateness_ms;           /* 10m */
    int64_t idle_timeout_ms;       /* 60s; 0 turns wall-clock advance off */
    int64_t max_future_ms;         /* 24h */
    int64_t attribution_window_ms; /* 72h */
    int64_t dedup_window_ms;       /* 48h */
    int64_t order_retention_ms;    /* 90d */
    int64_t conv_retention_ms;     /* 30d; 0: never */
    int64_t retention_ms;          /* 400d: closed periods' state in Redis; 0: kept */
    int64_t cache_max_records;     /* 200000 */
    char *rules_dir;               /* /etc/csmetrics/rules */
    char *http_listen;             /* "127.0.0.1:9464"; "" disables */
    char *alertmanager_url;        /* NULL: off */

    /* alertmanager (daemon/alertmgr.h) */
    int64_t alertmanager_resend_ms;     /* 1m: re-send interval of firing live alerts */
    int64_t alertmanager_timeout_ms;    /* 10s: of one POST */
    int64_t alertmanager_final_hold_ms; /* 24h: how long a final alert stays active */

    /* additions (README) */
    int64_t batch_max_events;  /* 20000: most messages in one Redis commit */
    int64_t batch_max_wait_ms; /* 100ms: longest a message waits for its batch */
    char *log_level;           /* "info" */
};

/* Zeroes c and sets every default from the table. */
void config_init(struct csm_config *c);
void config_release(struct csm_config *c);

/* Loads `path` over the defaults already in c. Unknown keys (the message lists the
 * valid ones), duplicate keys, wrong types, bad values and YAML errors fail with
 * "path:line:column: message" in err; 0 or -1. Cross-field checks: config_validate. */
int config_load(struct csm_config *c, const char *path, char *err, size_t errlen);
/* Same from memory: text[0..len) (need not be NUL-terminated) is read as the file
 * `path`, which names it in messages. Borrowed; used by the fuzz harness and tests. */
int config_load_buffer(struct csm_config *c, const char *path, const char *text, size_t len,
                       char *err, size_t errlen);

/* Checks the whole: the time zone exists, durations are in range, topics differ. */
int config_validate(const struct csm_config *c, char *err, size_t errlen);

/* The effective configuration as YAML, secrets as "<redacted>" (redis URL password too). */
void config_dump(const struct csm_config *c, FILE *out);

/* A Markdown table of every key: key, type, default, description (README reference). */
void config_print_reference(FILE *out);

/* Parses "250ms", "30s", "10m", "72h", "90d" (also "0"); 0 or -1. */
int config_parse_duration(const char *text, int64_t *ms);

#endif
