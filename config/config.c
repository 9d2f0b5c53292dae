/* config — csmetrics.yaml (see config.h). One table, config_keys[], describes every key:
 * config_init takes the defaults from it, config_load walks the YAML against it (a key is
 * a table entry or a prefix of one, nothing else), and config_dump / config_print_reference
 * print from it. Secrets (redis password, secret kafka.properties, the password in a URL)
 * are never printed, and are wiped when released. */
#include "config/config.h"
#include "common/file.h"
#include "common/buf.h"
#include "common/utf8.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <yaml.h>

#define MS_S INT64_C(1000)
#define MS_M (60 * MS_S)
#define MS_H (60 * MS_M)
#define MS_D (24 * MS_H)

/* Largest file we read: the configuration, a password file, an @file: value. */
#define CONFIG_FILE_MAX (1024 * 1024)

enum key_type {
    KEY_STRING,   /* char *; NULL allowed only when the default is none */
    KEY_DURATION, /* int64_t milliseconds */
    KEY_INT,      /* int64_t */
    KEY_PERIODS,  /* bool[PERIOD_KIND_COUNT] */
    KEY_MAP,      /* struct config_kv * plus a size_t count at offset_n */
};

struct config_key {
    const char *name; /* dotted path: "kafka.topics.chat" */
    enum key_type type;
    size_t offset;                           /* of the field in struct csm_config */
    size_t offset_n;                         /* KEY_MAP: of its count */
    const char *def;                         /* the default as YAML text; NULL: none */
    int64_t min, max;                        /* KEY_INT, KEY_DURATION */
    const char *(*check)(const char *value); /* KEY_STRING: NULL, or what is wrong */
    bool url; /* KEY_STRING: a password in it is printed as <redacted> */
    const char *desc;
};

static const char *check_nonempty(const char *v)
{
    return *v ? NULL : "must not be empty";
}

static const char *const log_levels[] = {"err", "warning", "notice", "info", "debug"};

static const char *check_log_level(const char *v)
{
    for (size_t i = 0; i < sizeof(log_levels) / sizeof(log_levels[0]); i++)
        if (strcmp(v, log_levels[i]) == 0)
            return NULL;
    return "must be one of err, warning, notice, info, debug";
}

static const char *check_redis_url(const char *v)
{
    if (strncasecmp(v, "redis://", 8) == 0 && v[8] != '\0')
        return NULL;
    if (strncasecmp(v, "unix://", 7) == 0 && v[7] != '\0')
        return NULL;
    return "must be a redis://[user:password@]host[:port][/db] or unix:///path URL";
}

static const char *check_http_url(const char *v)
{
    if ((strncasecmp(v, "http://", 7) == 0 && v[7] != '\0') ||
        (strncasecmp(v, "https://", 8) == 0 && v[8] != '\0'))
        return NULL;
    return "must be an http:// or https:// URL";
}

/* "host:port" (host may be "[::1]" or empty for all addresses), or "" to disable. */
static const char *check_listen(const char *v)
{
    static const char *msg = "must be host:port like 127.0.0.1:9464, or \"\" to disable";
    if (*v == '\0')
        return NULL;
    const char *colon = strrchr(v, ':');
    if (colon == NULL || colon[1] == '\0')
        return msg;
    if (v[0] == '[' && (colon == v || colon[-1] != ']'))
        return msg;
    long port = 0;
    for (const char *p = colon + 1; *p; p++) {
        if (*p < '0' || *p > '9' || port > 65535)
            return msg;
        port = port * 10 + (*p - '0');
    }
    return port >= 1 && port <= 65535 ? NULL : msg;
}

#define F(field) offsetof(struct csm_config, field)

/* Order is the order of --dump-config and the README; keys sharing a parent stay together. */
static const struct config_key config_keys[] = {
    {.name = "kafka.brokers",
     .type = KEY_STRING,
     .offset = F(kafka_brokers),
     .def = "127.0.0.1:9092",
     .check = check_nonempty,
     .desc = "Kafka bootstrap servers (`host:port,...`), or `embedded` for an in-process "
             "librdkafka mock cluster"},
    {.name = "kafka.group_id",
     .type = KEY_STRING,
     .offset = F(kafka_group_id),
     .def = "csmetrics",
     .check = check_nonempty,
     .desc = "Kafka consumer group"},
    {.name = "kafka.topics.chat",
     .type = KEY_STRING,
     .offset = F(topic_chat),
     .def = "cs.chat",
     .check = check_nonempty,
     .desc = "topic of chat events (read)"},
    {.name = "kafka.topics.orders",
     .type = KEY_STRING,
     .offset = F(topic_orders),
     .def = "shop.orders",
     .check = check_nonempty,
     .desc = "topic of order events (read)"},
    {.name = "kafka.topics.reviews",
     .type = KEY_STRING,
     .offset = F(topic_reviews),
     .def = "cs.reviews",
     .check = check_nonempty,
     .desc = "topic of review, target and absence events (read)"},
    {.name = "kafka.topics.snapshots",
     .type = KEY_STRING,
     .offset = F(topic_snapshots),
     .def = "cs.snapshots",
     .check = check_nonempty,
     .desc = "topic snapshots are written to"},
    {.name = "kafka.topics.alerts",
     .type = KEY_STRING,
     .offset = F(topic_alerts),
     .def = "cs.alerts",
     .check = check_nonempty,
     .desc = "topic alerts are written to"},
    {.name = "kafka.topics.deadletter",
     .type = KEY_STRING,
     .offset = F(topic_deadletter),
     .def = "cs.deadletter",
     .check = check_nonempty,
     .desc = "topic bad and late input is written to"},
    {.name = "kafka.properties",
     .type = KEY_MAP,
     .offset = F(kafka_props),
     .offset_n = F(kafka_props_n),
     .def = "{}",
     .desc = "librdkafka properties passed as is (`security.protocol`, `sasl.*`, `ssl.*`); a "
             "value `\"@file:/path\"` is replaced by that file's contents; values from files and "
             "of keys naming a password, secret, sasl.oauthbearer or ssl.key are never printed"},
    {.name = "redis.url",
     .type = KEY_STRING,
     .offset = F(redis_url),
     .def = "redis://127.0.0.1:6379/0",
     .check = check_redis_url,
     .url = true,
     .desc = "`redis://[user:password@]host[:port][/db]` or `unix:///path/redis.sock`; the "
             "password is never printed"},
    {.name = "redis.key_prefix",
     .type = KEY_STRING,
     .offset = F(redis_key_prefix),
     .def = "csm:",
     .desc = "prefix of every Redis key csmetrics writes"},
    {.name = "redis.password_file",
     .type = KEY_STRING,
     .offset = F(redis_password_file),
     .desc = "file holding the Redis password (one trailing newline ignored); without it, "
             "`$CREDENTIALS_DIRECTORY/redis-password` when that exists (systemd "
             "`LoadCredential=`)"},
    {.name = "timezone",
     .type = KEY_STRING,
     .offset = F(timezone),
     .def = "Asia/Shanghai",
     .desc = "IANA time zone of every calendar period; an unknown zone is an error"},
    {.name = "periods",
     .type = KEY_PERIODS,
     .offset = F(periods),
     .def = "[day, month]",
     .desc = "live windows kept in Redis (day, week, month, quarter, half, year), plus every "
             "period a rule file uses"},
    {.name = "lateness",
     .type = KEY_DURATION,
     .offset = F(lateness_ms),
     .def = "10m",
     .min = 0,
     .max = 366 * MS_D,
     .desc = "how long after a period's end late events are still accepted; a rule file may "
             "set its own"},
    {.name = "idle_timeout",
     .type = KEY_DURATION,
     .offset = F(idle_timeout_ms),
     .def = "60s",
     .min = 0,
     .max = 7 * MS_D,
     .desc = "a partition at its end this long (wall clock) stops holding the watermark back; "
             "0 turns the wall-clock advance off (backfills)"},
    {.name = "max_future",
     .type = KEY_DURATION,
     .offset = F(max_future_ms),
     .def = "24h",
     .min = 0,
     .max = 366 * MS_D,
     .desc = "events whose ts is further ahead of the wall clock go to the dead-letter topic"},
    {.name = "attribution_window",
     .type = KEY_DURATION,
     .offset = F(attribution_window_ms),
     .def = "72h",
     .min = 0,
     .max = 366 * MS_D,
     .desc = "an order without agent_id goes to the agent of the customer's latest message "
             "within this time before it"},
    {.name = "dedup_window",
     .type = KEY_DURATION,
     .offset = F(dedup_window_ms),
     .def = "48h",
     .min = 0,
     .max = 366 * MS_D,
     .desc = "an event_id seen again within this time (wall clock) is counted once; also how "
             "long an order follow-up waits for its created event"},
    {.name = "order_retention",
     .type = KEY_DURATION,
     .offset = F(order_retention_ms),
     .def = "90d",
     .min = 0,
     .max = 3660 * MS_D,
     .desc = "how long a created order is remembered for its paid, refunded, cancelled and "
             "flagged events"},
    {.name = "conversation_retention",
     .type = KEY_DURATION,
     .offset = F(conv_retention_ms),
     .def = "30d",
     .min = 0,
     .max = 3660 * MS_D,
     .desc = "a conversation silent this long (event time) is forgotten: its next message "
             "starts a new timeline; 0: never"},
    {.name = "retention",
     .type = KEY_DURATION,
     .offset = F(retention_ms),
     .def = "400d",
     .min = 0,
     .max = 36600 * MS_D,
     .desc = "a closed period's figures, live KPIs and rule outputs are deleted from Redis "
             "this long after the period's end (close watermark); 0: kept for ever"},
    {.name = "cache_max_records",
     .type = KEY_INT,
     .offset = F(cache_max_records),
     .def = "200000",
     .min = 1000,
     .max = 100000000,
     .desc = "most conversation and order records the daemon caches in memory over Redis "
             "(per instance)"},
    {.name = "rules_dir",
     .type = KEY_STRING,
     .offset = F(rules_dir),
     .def = "/etc/csmetrics/rules",
     .check = check_nonempty,
     .desc = "directory whose `*.yaml` rule files are loaded"},
    {.name = "http.listen",
     .type = KEY_STRING,
     .offset = F(http_listen),
     .def = "127.0.0.1:9464",
     .check = check_listen,
     .desc = "address of `/metrics`, `/healthz` and `/readyz`; `\"\"` disables"},
    {.name = "alertmanager.url",
     .type = KEY_STRING,
     .offset = F(alertmanager_url),
     .check = check_http_url,
     .url = true,
     .desc = "Prometheus Alertmanager base URL (alerts are posted to its `/api/v2/alerts`); "
             "none: off"},
    {.name = "alertmanager.resend_interval",
     .type = KEY_DURATION,
     .offset = F(alertmanager_resend_ms),
     .def = "1m",
     .min = MS_S,
     .max = MS_H,
     .desc = "how often a firing live alert is re-sent to Alertmanager (each time with endsAt "
             "4 intervals ahead, so Alertmanager resolves it itself if csmetricsd stops)"},
    {.name = "alertmanager.timeout",
     .type = KEY_DURATION,
     .offset = F(alertmanager_timeout_ms),
     .def = "10s",
     .min = 100,
     .max = 5 * MS_M,
     .desc = "timeout of one POST to Alertmanager; failed posts are retried with back-off"},
    {.name = "alertmanager.final_hold",
     .type = KEY_DURATION,
     .offset = F(alertmanager_final_hold_ms),
     .def = "24h",
     .min = MS_M,
     .max = 366 * MS_D,
     .desc = "how long a final (period close) alert stays active in Alertmanager, counted "
             "from the close (period end + lateness); older ones are not sent"},
    {.name = "batch_max_events",
     .type = KEY_INT,
     .offset = F(batch_max_events),
     .def = "20000",
     .min = 1,
     .max = 1000000,
     .desc = "most messages in one Redis commit"},
    {.name = "batch_max_wait",
     .type = KEY_DURATION,
     .offset = F(batch_max_wait_ms),
     .def = "100ms",
     .min = 0,
     .max = 60 * MS_S,
     .desc = "longest a message waits for its batch to be committed"},
    {.name = "log_level",
     .type = KEY_STRING,
     .offset = F(log_level),
     .def = "info",
     .check = check_log_level,
     .desc = "most verbose level logged: err, warning, notice, info or debug"},
};

#undef F

#define KEY_COUNT (sizeof(config_keys) / sizeof(config_keys[0]))

#define FIELD(c, k, type) ((type *)((char *)(c) + (k)->offset))
#define CFIELD(c, k, type) ((const type *)((const char *)(c) + (k)->offset))

/* ---- small helpers ---- */

static void wipe_free(char *s)
{
    if (s) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

static void set_string(char **field, const char *value)
{
    char *old = *field;
    *field = value ? xstrdup(value) : NULL;
    wipe_free(old); /* it may have been a URL with a password */
}

static void props_clear(struct csm_config *c)
{
    for (size_t i = 0; i < c->kafka_props_n; i++) {
        free(c->kafka_props[i].key);
        wipe_free(c->kafka_props[i].value);
    }
    free(c->kafka_props);
    c->kafka_props = NULL;
    c->kafka_props_n = 0;
}

/* Reads a whole file (at most CONFIG_FILE_MAX bytes) into a NUL-terminated buffer. */
static char *read_file(const char *path, size_t *len, char *err, size_t errlen)
{
    return file_read_all(path, CONFIG_FILE_MAX, len, err, errlen);
}

/* A secret from a file: its contents with one trailing newline removed. */
static char *read_secret(const char *path, char *err, size_t errlen)
{
    size_t len;
    char *s = read_file(path, &len, err, errlen);
    if (s == NULL)
        return NULL;
    if (strlen(s) != len) {
        snprintf(err, errlen, "cannot use '%s': it holds a NUL byte", path);
        wipe_free(s);
        return NULL;
    }
    if (len > 0 && s[len - 1] == '\n')
        s[len - 1] = '\0';
    return s;
}

int config_parse_duration(const char *text, int64_t *ms)
{
    static const struct {
        const char *suffix;
        int64_t ms;
    } units[] = {
        {.suffix = "ms", .ms = 1},   {.suffix = "s", .ms = MS_S}, {.suffix = "m", .ms = MS_M},
        {.suffix = "h", .ms = MS_H}, {.suffix = "d", .ms = MS_D},
    };
    if (text == NULL || text[0] < '0' || text[0] > '9')
        return -1;
    if (strcmp(text, "0") == 0) {
        *ms = 0;
        return 0;
    }
    errno = 0;
    char *end;
    long long n = strtoll(text, &end, 10);
    if (errno == ERANGE)
        return -1;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
        if (strcmp(end, units[i].suffix) == 0) {
            if (n > INT64_MAX / units[i].ms)
                return -1;
            *ms = (int64_t)n * units[i].ms;
            return 0;
        }
    return -1;
}

/* Decimal integer, optional '-', nothing else (strtoll alone takes spaces, '+', "10abc"). */
static int parse_int(const char *text, int64_t *out)
{
    const char *p = text[0] == '-' ? text + 1 : text;
    if (*p < '0' || *p > '9')
        return -1;
    errno = 0;
    char *end;
    long long n = strtoll(text, &end, 10);
    if (errno == ERANGE || *end != '\0')
        return -1;
    *out = n;
    return 0;
}

/* "10m" for 600000: the largest unit that divides the value exactly. */
static void format_duration(int64_t ms, char *out, size_t n)
{
    static const struct {
        const char *suffix;
        int64_t ms;
    } units[] = {
        {.suffix = "d", .ms = MS_D}, {.suffix = "h", .ms = MS_H}, {.suffix = "m", .ms = MS_M},
        {.suffix = "s", .ms = MS_S}, {.suffix = "ms", .ms = 1},
    };
    if (ms == 0) {
        snprintf(out, n, "0");
        return;
    }
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
        if (ms % units[i].ms == 0) {
            snprintf(out, n, "%lld%s", (long long)(ms / units[i].ms), units[i].suffix);
            return;
        }
}

/* The bounds of a KEY_INT or KEY_DURATION key as a user writes them. */
static void format_bounds(const struct config_key *k, char *lo, char *hi, size_t n)
{
    if (k->type == KEY_DURATION) {
        format_duration(k->min, lo, n);
        format_duration(k->max, hi, n);
    } else {
        snprintf(lo, n, "%lld", (long long)k->min);
        snprintf(hi, n, "%lld", (long long)k->max);
    }
}

static void format_range(const struct config_key *k, char *out, size_t n)
{
    char lo[32], hi[32];
    format_bounds(k, lo, hi, sizeof(lo));
    snprintf(out, n, "must be between %s and %s", lo, hi);
}

/* "[day, month]" (the default's text) into flags; -1 on a bad or repeated name. */
static int parse_period_list(const char *text, bool *flags)
{
    char word[16];
    size_t w = 0;
    memset(flags, 0, PERIOD_KIND_COUNT * sizeof(*flags));
    if (*text != '[')
        return -1;
    for (const char *p = text + 1;; p++) {
        if (*p == ',' || *p == ']') {
            enum period_kind kind;
            word[w] = '\0';
            if (w > 0 || *p == ',') {
                if (period_kind_parse(word, &kind) != 0 || flags[kind])
                    return -1;
                flags[kind] = true;
            }
            w = 0;
            if (*p == ']')
                return p[1] == '\0' ? 0 : -1;
        } else if (*p == ' ') {
            continue;
        } else if (*p == '\0' || w + 1 >= sizeof(word)) {
            return -1;
        } else {
            word[w++] = *p;
        }
    }
}

/* Prefix "name." of some table key? (then `name` is a mapping of keys) */
static bool is_parent(const char *name, size_t len)
{
    for (size_t i = 0; i < KEY_COUNT; i++)
        if (strncmp(config_keys[i].name, name, len) == 0 && config_keys[i].name[len] == '.')
            return true;
    return false;
}

static const struct config_key *find_key(const char *name)
{
    for (size_t i = 0; i < KEY_COUNT; i++)
        if (strcmp(config_keys[i].name, name) == 0)
            return &config_keys[i];
    return NULL;
}

/* "brokers, group_id, topics, properties": the children of `prefix` ("" = top level). */
static void list_children(struct buf *out, const char *prefix)
{
    size_t plen = strlen(prefix);
    size_t first = out->len;
    for (size_t i = 0; i < KEY_COUNT; i++) {
        const char *name = config_keys[i].name;
        if (plen > 0 && (strncmp(name, prefix, plen) != 0 || name[plen] != '.'))
            continue;
        const char *child = plen > 0 ? name + plen + 1 : name;
        size_t clen = strcspn(child, ".");
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++) {
            const char *other = config_keys[j].name;
            if (plen > 0 && (strncmp(other, prefix, plen) != 0 || other[plen] != '.'))
                continue;
            const char *oc = plen > 0 ? other + plen + 1 : other;
            seen = strcspn(oc, ".") == clen && strncmp(oc, child, clen) == 0;
        }
        if (seen)
            continue;
        if (out->len > first)
            buf_adds(out, ", ");
        buf_add(out, child, clen);
    }
}

/* ---- init / release ---- */

void config_init(struct csm_config *c)
{
    *c = (struct csm_config){0};
    for (size_t i = 0; i < KEY_COUNT; i++) {
        const struct config_key *k = &config_keys[i];
        int rc = 0;
        switch (k->type) {
        case KEY_STRING:
            *FIELD(c, k, char *) = k->def ? xstrdup(k->def) : NULL;
            break;
        case KEY_DURATION:
            rc = config_parse_duration(k->def, FIELD(c, k, int64_t));
            break;
        case KEY_INT:
            rc = parse_int(k->def, FIELD(c, k, int64_t));
            break;
        case KEY_PERIODS:
            rc = parse_period_list(k->def, FIELD(c, k, bool));
            break;
        case KEY_MAP: /* "{}": nothing */
            break;
        }
        if (rc != 0) { /* a broken table: caught by test_config's defaults test */
            fprintf(stderr, "config: bad default '%s' for '%s'\n", k->def, k->name);
            abort();
        }
    }
}

void config_release(struct csm_config *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < KEY_COUNT; i++)
        if (config_keys[i].type == KEY_STRING)
            wipe_free(*FIELD(c, &config_keys[i], char *));
    props_clear(c);
    wipe_free(c->redis_password);
    free(c->path);
    *c = (struct csm_config){0};
}

/* ---- loading ---- */

struct loader {
    struct csm_config *c;
    const char *path;
    yaml_document_t *doc;
    char *err;
    size_t errlen;
    yaml_mark_t marks[KEY_COUNT]; /* where each key's value was, for later checks */
    bool seen[KEY_COUNT];
};

__attribute__((format(printf, 3, 4))) static int fail_at(struct loader *l, yaml_mark_t mark,
                                                         const char *fmt, ...)
{
    va_list ap;
    int n = snprintf(l->err, l->errlen, "%s:%zu:%zu: ", l->path, mark.line + 1, mark.column + 1);
    if (n >= 0 && (size_t)n < l->errlen) {
        va_start(ap, fmt);
        vsnprintf(l->err + n, l->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static yaml_node_t *node(struct loader *l, int index)
{
    return yaml_document_get_node(l->doc, index);
}

static const char *scalar(const yaml_node_t *n)
{
    return (const char *)n->data.scalar.value;
}

/* A plain ~, null or empty scalar: YAML's null. */
static bool is_null(const yaml_node_t *n)
{
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL"};
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    for (size_t i = 0; i < sizeof(nulls) / sizeof(nulls[0]); i++)
        if (strcmp(scalar(n), nulls[i]) == 0)
            return true;
    return false;
}

/* A scalar usable as a C string (libyaml lets "\0" through double quotes). */
static int text_of(struct loader *l, const yaml_node_t *n, const char *name, const char **out)
{
    if (n->type != YAML_SCALAR_NODE || is_null(n))
        return fail_at(l, n->start_mark, "'%s' must be a string", name);
    if (strlen(scalar(n)) != n->data.scalar.length)
        return fail_at(l, n->start_mark, "'%s' must not contain a NUL character", name);
    *out = scalar(n);
    return 0;
}

/* Keys of one mapping are scalars, without NUL, each once. `prefix` names the mapping. */
static int check_key(struct loader *l, const yaml_node_pair_t *start, const yaml_node_pair_t *pair,
                     const char *prefix, struct buf *full)
{
    yaml_node_t *k = node(l, pair->key);
    buf_reset(full);
    if (k->type != YAML_SCALAR_NODE && *prefix)
        return fail_at(l, k->start_mark, "keys under '%s' must be strings", prefix);
    if (k->type != YAML_SCALAR_NODE)
        return fail_at(l, k->start_mark, "keys must be strings");
    buf_printf(full, "%s%s%s", prefix, *prefix ? "." : "", scalar(k));
    if (strlen(scalar(k)) != k->data.scalar.length)
        return fail_at(l, k->start_mark, "key '%s' must not contain a NUL character", full->data);
    for (const yaml_node_pair_t *q = start; q < pair; q++) {
        yaml_node_t *o = node(l, q->key);
        if (o->type == YAML_SCALAR_NODE && strcmp(scalar(o), scalar(k)) == 0)
            return fail_at(l, k->start_mark, "duplicate key '%s'", full->data);
    }
    return 0;
}

/* Properties librdkafka would take from elsewhere in this file. */
static const struct {
    const char *property, *key;
} props_reserved[] = {
    {.property = "bootstrap.servers", .key = "kafka.brokers"},
    {.property = "metadata.broker.list", .key = "kafka.brokers"},
    {.property = "group.id", .key = "kafka.group_id"},
};

static bool prop_is_secret(const char *key)
{
    static const char *const words[] = {"password", "secret", "sasl.oauthbearer", "ssl.key"};
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
        if (strstr(key, words[i]))
            return true;
    return false;
}

/* librdkafka rejects unknown properties and bad values only when set: find out now, so
 * that `csmetricsd -t` catches them with a position (style.md: they are fatal). */
static int check_prop(struct loader *l, rd_kafka_conf_t *rk, const struct config_kv *kv,
                      const yaml_node_t *k, const yaml_node_t *v)
{
    char rkerr[512];
    for (size_t i = 0; i < sizeof(props_reserved) / sizeof(props_reserved[0]); i++)
        if (strcmp(kv->key, props_reserved[i].property) == 0)
            return fail_at(l, k->start_mark, "'kafka.properties.%s' is set by '%s'", kv->key,
                           props_reserved[i].key);
    switch (rd_kafka_conf_set(rk, kv->key, kv->value, rkerr, sizeof(rkerr))) {
    case RD_KAFKA_CONF_OK:
        return 0;
    case RD_KAFKA_CONF_UNKNOWN:
        return fail_at(l, k->start_mark, "unknown librdkafka property 'kafka.properties.%s'",
                       kv->key);
    default:
        /* librdkafka's message may quote the value ("Invalid value \"x\" for ..."). */
        if (kv->secret && strstr(rkerr, kv->value) != NULL)
            return fail_at(l, v->start_mark,
                           "'kafka.properties.%s' rejected by librdkafka (its message is not "
                           "shown: the value is secret)",
                           kv->key);
        return fail_at(l, v->start_mark, "'kafka.properties.%s' rejected by librdkafka: %s",
                       kv->key, rkerr);
    }
}

static int load_props(struct loader *l, const yaml_node_t *map)
{
    struct csm_config *c = l->c;
    struct buf full;
    int rc = -1;
    rd_kafka_conf_t *rk = rd_kafka_conf_new();

    buf_init(&full);
    props_clear(c);
    const yaml_node_pair_t *start = map->data.mapping.pairs.start;
    const yaml_node_pair_t *top = map->data.mapping.pairs.top;
    if (top > start)
        c->kafka_props = xcalloc((size_t)(top - start), sizeof(*c->kafka_props));
    for (const yaml_node_pair_t *p = start; p < top; p++) {
        yaml_node_t *k = node(l, p->key), *v = node(l, p->value);
        const char *value;
        if (check_key(l, start, p, "kafka.properties", &full) != 0)
            goto out;
        if (*scalar(k) == '\0') {
            fail_at(l, k->start_mark, "empty key in 'kafka.properties'");
            goto out;
        }
        if (text_of(l, v, full.data, &value) != 0)
            goto out;
        struct config_kv *kv = &c->kafka_props[c->kafka_props_n++];
        kv->key = xstrdup(scalar(k));
        kv->secret = prop_is_secret(kv->key);
        if (strncmp(value, "@file:", 6) == 0) {
            char why[512];
            kv->value = read_secret(value + 6, why, sizeof(why));
            if (kv->value == NULL) {
                fail_at(l, v->start_mark, "%s", why);
                goto out;
            }
            kv->secret = true;
        } else {
            kv->value = xstrdup(value);
        }
        if (check_prop(l, rk, kv, k, v) != 0)
            goto out;
    }
    rc = 0;
out:
    rd_kafka_conf_destroy(rk);
    buf_release(&full);
    return rc;
}

static int load_periods(struct loader *l, const struct config_key *k, const yaml_node_t *v)
{
    bool *flags = FIELD(l->c, k, bool);
    if (v->type != YAML_SEQUENCE_NODE)
        return fail_at(l, v->start_mark, "'%s' must be a list like [day, month]", k->name);
    memset(flags, 0, PERIOD_KIND_COUNT * sizeof(*flags));
    for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
         it++) {
        yaml_node_t *item = node(l, *it);
        enum period_kind kind;
        if (item->type != YAML_SCALAR_NODE || period_kind_parse(scalar(item), &kind) != 0)
            return fail_at(l, item->start_mark,
                           "'%s' item '%s' is not one of day, week, month, quarter, half, year",
                           k->name, item->type == YAML_SCALAR_NODE ? scalar(item) : "...");
        if (flags[kind])
            return fail_at(l, item->start_mark, "'%s' lists '%s' twice", k->name, scalar(item));
        flags[kind] = true;
    }
    return 0;
}

static int load_value(struct loader *l, const struct config_key *k, const yaml_node_t *v)
{
    const char *text;
    int64_t n;
    char range[96];

    l->marks[k - config_keys] = v->start_mark;
    l->seen[k - config_keys] = true;
    switch (k->type) {
    case KEY_STRING:
        if (k->def == NULL && is_null(v)) {
            set_string(FIELD(l->c, k, char *), NULL);
            return 0;
        }
        if (text_of(l, v, k->name, &text) != 0)
            return -1;
        if (k->check && k->check(text))
            return fail_at(l, v->start_mark, "'%s' %s", k->name, k->check(text));
        set_string(FIELD(l->c, k, char *), text);
        return 0;
    case KEY_DURATION:
        if (v->type != YAML_SCALAR_NODE || config_parse_duration(scalar(v), &n) != 0)
            return fail_at(l, v->start_mark, "'%s' must be a duration like 10m, 30s, 72h", k->name);
        if (n < k->min || n > k->max) {
            format_range(k, range, sizeof(range));
            return fail_at(l, v->start_mark, "'%s' %s", k->name, range);
        }
        *FIELD(l->c, k, int64_t) = n;
        return 0;
    case KEY_INT:
        if (v->type != YAML_SCALAR_NODE || parse_int(scalar(v), &n) != 0)
            return fail_at(l, v->start_mark, "'%s' must be an integer", k->name);
        if (n < k->min || n > k->max) {
            format_range(k, range, sizeof(range));
            return fail_at(l, v->start_mark, "'%s' %s", k->name, range);
        }
        *FIELD(l->c, k, int64_t) = n;
        return 0;
    case KEY_PERIODS:
        return load_periods(l, k, v);
    case KEY_MAP:
        if (v->type != YAML_MAPPING_NODE)
            return fail_at(l, v->start_mark, "'%s' must be a mapping like {key: value}", k->name);
        return load_props(l, v);
    }
    return -1;
}

static int load_mapping(struct loader *l, const yaml_node_t *map, const char *prefix)
{
    struct buf full, valid;
    int rc = -1;
    const yaml_node_pair_t *start = map->data.mapping.pairs.start;
    const yaml_node_pair_t *top = map->data.mapping.pairs.top;

    buf_init(&full);
    buf_init(&valid);
    for (const yaml_node_pair_t *p = start; p < top; p++) {
        yaml_node_t *k = node(l, p->key), *v = node(l, p->value);
        if (check_key(l, start, p, prefix, &full) != 0)
            goto out;
        /* A dotted key ("kafka.brokers:" at the top) would dodge the duplicate check. */
        const struct config_key *key = strchr(scalar(k), '.') ? NULL : find_key(full.data);
        if (key) {
            if (load_value(l, key, v) != 0)
                goto out;
        } else if (!strchr(scalar(k), '.') && is_parent(full.data, full.len)) {
            if (v->type != YAML_MAPPING_NODE) {
                fail_at(l, v->start_mark, "'%s' must be a mapping", full.data);
                goto out;
            }
            if (load_mapping(l, v, full.data) != 0)
                goto out;
        } else {
            list_children(&valid, prefix);
            if (*prefix)
                fail_at(l, k->start_mark, "unknown key '%s' (valid keys under '%s': %s)", full.data,
                        prefix, valid.data);
            else
                fail_at(l, k->start_mark, "unknown key '%s' (valid keys: %s)", full.data,
                        valid.data);
            goto out;
        }
    }
    rc = 0;
out:
    buf_release(&full);
    buf_release(&valid);
    return rc;
}

/* libyaml reports reader errors (bad UTF-8, control characters) by byte offset only. */
static yaml_mark_t mark_of_offset(const char *text, size_t len, size_t offset)
{
    yaml_mark_t m = {0};
    utf8_position(text, len, offset, &m.line, &m.column);
    return m;
}

static int parse_error(struct loader *l, yaml_parser_t *parser, const char *text, size_t len)
{
    const char *problem = parser->problem ? parser->problem : "cannot parse YAML";
    if (parser->error == YAML_READER_ERROR)
        return fail_at(l, mark_of_offset(text, len, parser->problem_offset), "%s", problem);
    /* "found unexpected end of stream" alone does not say which quote was left open. */
    if (parser->context)
        return fail_at(l, parser->problem_mark, "%s (%s at %zu:%zu)", problem, parser->context,
                       parser->context_mark.line + 1, parser->context_mark.column + 1);
    return fail_at(l, parser->problem_mark, "%s", problem);
}

/* The Redis password: redis.password_file, else systemd's credential "redis-password". */
static int load_redis_password(struct loader *l)
{
    struct csm_config *c = l->c;
    size_t idx = (size_t)(find_key("redis.password_file") - config_keys);
    char why[512];

    wipe_free(c->redis_password);
    c->redis_password = NULL;
    if (c->redis_password_file == NULL) {
        const char *dir = getenv("CREDENTIALS_DIRECTORY");
        struct buf path;
        if (dir == NULL || *dir == '\0')
            return 0;
        buf_init(&path);
        buf_printf(&path, "%s/redis-password", dir);
        if (access(path.data, F_OK) != 0) {
            buf_release(&path);
            return 0;
        }
        c->redis_password_file = path.data; /* taken: dump shows where the password came from */
        l->seen[idx] = false;
    }
    c->redis_password = read_secret(c->redis_password_file, why, sizeof(why));
    if (c->redis_password)
        return 0;
    if (l->seen[idx])
        return fail_at(l, l->marks[idx], "%s", why);
    snprintf(l->err, l->errlen, "%s: %s", l->path, why);
    return -1;
}

int config_load_buffer(struct csm_config *c, const char *path, const char *text, size_t len,
                       char *err, size_t errlen)
{
    struct loader l = {.c = c, .path = path, .err = err, .errlen = errlen};
    yaml_parser_t parser;
    yaml_document_t doc, extra;
    int rc = -1;

    set_string(&c->path, path);
    if (!yaml_parser_initialize(&parser)) {
        snprintf(err, errlen, "%s: cannot initialise the YAML parser", path);
        return -1;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &doc)) {
        parse_error(&l, &parser, text, len);
        goto out_free_parser;
    }
    l.doc = &doc;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (root == NULL) { /* an empty file: every default */
        rc = load_redis_password(&l);
        goto out_free_doc;
    }
    /* A second document would be silently ignored: refuse it. */
    if (!yaml_parser_load(&parser, &extra)) {
        parse_error(&l, &parser, text, len);
        goto out_free_doc;
    }
    yaml_node_t *extra_root = yaml_document_get_root_node(&extra);
    if (extra_root) {
        fail_at(&l, extra.start_mark, "only one YAML document is allowed");
        yaml_document_delete(&extra);
        goto out_free_doc;
    }
    yaml_document_delete(&extra);
    if (root->type != YAML_MAPPING_NODE) {
        fail_at(&l, root->start_mark, "the top level must be a mapping of keys");
        goto out_free_doc;
    }
    if (load_mapping(&l, root, "") != 0)
        goto out_free_doc;
    rc = load_redis_password(&l);

out_free_doc:
    yaml_document_delete(&doc);
out_free_parser:
    yaml_parser_delete(&parser);
    return rc;
}

int config_load(struct csm_config *c, const char *path, char *err, size_t errlen)
{
    size_t len;
    char *text = read_file(path, &len, err, errlen);
    if (text == NULL)
        return -1;
    int rc = config_load_buffer(c, path, text, len, err, errlen);
    explicit_bzero(text, len); /* it may hold secrets */
    free(text);
    return rc;
}

/* ---- validation ---- */

__attribute__((format(printf, 5, 6))) static int fail_key(const struct csm_config *c,
                                                          const char *key, char *err, size_t errlen,
                                                          const char *fmt, ...)
{
    va_list ap;
    int n = c->path ? snprintf(err, errlen, "%s: %s: ", c->path, key)
                    : snprintf(err, errlen, "%s: ", key);
    if (n >= 0 && (size_t)n < errlen) {
        va_start(ap, fmt);
        vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return -1;
}

int config_validate(const struct csm_config *c, char *err, size_t errlen)
{
    char range[96];
    for (size_t i = 0; i < KEY_COUNT; i++) {
        const struct config_key *k = &config_keys[i];
        int64_t n;
        const char *s, *why;
        switch (k->type) {
        case KEY_STRING:
            s = *CFIELD(c, k, char *);
            if (s == NULL && k->def != NULL)
                return fail_key(c, k->name, err, errlen, "must be set");
            if (s && k->check && (why = k->check(s)) != NULL)
                return fail_key(c, k->name, err, errlen, "%s", why);
            break;
        case KEY_DURATION:
        case KEY_INT:
            n = *CFIELD(c, k, int64_t);
            if (n < k->min || n > k->max) {
                format_range(k, range, sizeof(range));
                return fail_key(c, k->name, err, errlen, "%s", range);
            }
            break;
        case KEY_PERIODS:
        case KEY_MAP:
            break;
        }
    }

    /* A topic read and written, or read twice, would loop or double-count. */
    static const struct {
        const char *key;
        size_t offset;
    } topics[] = {
        {.key = "kafka.topics.chat", .offset = offsetof(struct csm_config, topic_chat)},
        {.key = "kafka.topics.orders", .offset = offsetof(struct csm_config, topic_orders)},
        {.key = "kafka.topics.reviews", .offset = offsetof(struct csm_config, topic_reviews)},
        {.key = "kafka.topics.snapshots", .offset = offsetof(struct csm_config, topic_snapshots)},
        {.key = "kafka.topics.alerts", .offset = offsetof(struct csm_config, topic_alerts)},
        {.key = "kafka.topics.deadletter", .offset = offsetof(struct csm_config, topic_deadletter)},
    };
    for (size_t i = 0; i < sizeof(topics) / sizeof(topics[0]); i++)
        for (size_t j = 0; j < i; j++) {
            const char *a = *(char *const *)((const char *)c + topics[j].offset);
            const char *b = *(char *const *)((const char *)c + topics[i].offset);
            if (strcmp(a, b) == 0)
                return fail_key(c, topics[i].key, err, errlen, "topic '%s' is also '%s'", b,
                                topics[j].key);
        }

    char why[256];
    if (period_tz_set(c->timezone, why, sizeof(why)) != 0)
        return fail_key(c, "timezone", err, errlen, "%s", why);
    return 0;
}

/* ---- printing ---- */

/* A YAML double-quoted scalar that loads back as s (UTF-8: libyaml checked it). Escaped:
 * what YAML does not allow raw (C0 and C1 controls, DEL, U+FFFE, U+FFFF) and the line
 * breaks it would fold into a space (NEL, LS, PS). */
static void put_quoted(FILE *out, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t len = strlen(s);

    fputc('"', out);
    for (size_t i = 0; i < len;) {
        unsigned c = p[i];
        size_t n = c < 0x80 ? 1 : utf8_seq_len(p + i, len - i);
        unsigned cp = n == 2   ? (c & 0x1f) << 6 | (p[i + 1] & 0x3f)
                      : n == 3 ? (c & 0x0f) << 12 | (p[i + 1] & 0x3f) << 6 | (p[i + 2] & 0x3f)
                               : c;
        if (n == 0) /* not UTF-8: cannot come from libyaml */
            fputs("\\ufffd", out);
        else if (c == '"' || c == '\\')
            fprintf(out, "\\%c", c);
        else if (c == '\n')
            fputs("\\n", out);
        else if (c == '\t')
            fputs("\\t", out);
        else if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f))
            fprintf(out, "\\x%02x", cp);
        else if (cp == 0x2028 || cp == 0x2029 || cp == 0xfffe || cp == 0xffff)
            fprintf(out, "\\u%04x", cp);
        else
            fwrite(p + i, 1, n, out);
        i += n ? n : 1;
    }
    fputc('"', out);
}

/* Property names like "sasl.password" print bare; anything odd is quoted. */
static void put_key(FILE *out, const char *s)
{
    bool plain = *s != '\0';
    for (const char *p = s; *p && plain; p++)
        plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                *p == '.' || *p == '_' || *p == '-';
    if (plain)
        fputs(s, out);
    else
        put_quoted(out, s);
}

/* The URL with the password of its user part, and any password= parameter, replaced.
 * Like daemon/rconn.c's parser, the user part ends at the last '@' (a raw '@' or '/' in
 * a password is common), so whatever that parser takes for a password is hidden here. */
static void redact_url(const char *url, struct buf *out)
{
    const char *scheme = strstr(url, "://");
    const char *auth = scheme ? scheme + 3 : url;
    const char *at = strrchr(auth, '@'), *rest = url;
    buf_reset(out);
    buf_adds(out, "");
    const char *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
    if (colon) {
        buf_add(out, url, (size_t)(colon + 1 - url));
        buf_adds(out, "<redacted>");
        rest = at;
    }
    /* unix:///run/redis.sock?password=x and friends */
    const char *param = strchr(rest, '?');
    if (param == NULL) {
        buf_adds(out, rest);
        return;
    }
    buf_add(out, rest, (size_t)(param - rest));
    while (*param == '?' || *param == '&') {
        const char *end = param + 1 + strcspn(param + 1, "&#");
        buf_addc(out, *param);
        if (strncmp(param + 1, "password=", 9) == 0)
            buf_adds(out, "password=<redacted>");
        else
            buf_add(out, param + 1, (size_t)(end - param - 1));
        param = end;
    }
    buf_adds(out, param);
}

static void dump_value(const struct csm_config *c, const struct config_key *k, int depth, FILE *out)
{
    char text[32];
    if (k->type != KEY_MAP)
        fputc(' ', out);
    switch (k->type) {
    case KEY_STRING: {
        const char *s = *CFIELD(c, k, char *);
        if (s == NULL) {
            fputs("~", out);
        } else if (k->url) {
            struct buf b;
            buf_init(&b);
            redact_url(s, &b);
            put_quoted(out, b.data);
            buf_release(&b);
        } else {
            put_quoted(out, s);
        }
        break;
    }
    case KEY_DURATION:
        format_duration(*CFIELD(c, k, int64_t), text, sizeof(text));
        fputs(text, out);
        break;
    case KEY_INT:
        fprintf(out, "%lld", (long long)*CFIELD(c, k, int64_t));
        break;
    case KEY_PERIODS: {
        const bool *flags = CFIELD(c, k, bool);
        const char *sep = "";
        fputc('[', out);
        for (int p = 0; p < PERIOD_KIND_COUNT; p++)
            if (flags[p]) {
                fprintf(out, "%s%s", sep, period_kind_name((enum period_kind)p));
                sep = ", ";
            }
        fputc(']', out);
        break;
    }
    case KEY_MAP: {
        const struct config_kv *kv = *CFIELD(c, k, struct config_kv *);
        size_t n = *(const size_t *)((const char *)c + k->offset_n);
        if (n == 0)
            fputs(" {}", out);
        for (size_t i = 0; i < n; i++) {
            fprintf(out, "\n%*s", 2 * depth, "");
            put_key(out, kv[i].key);
            fputs(": ", out);
            put_quoted(out, kv[i].secret ? "<redacted>" : kv[i].value);
        }
        break;
    }
    }
}

void config_dump(const struct csm_config *c, FILE *out)
{
    const char *prev = "";
    fprintf(out, "# csmetrics effective configuration (%s)\n", c->path ? c->path : "defaults");
    for (size_t i = 0; i < KEY_COUNT; i++) {
        const char *name = config_keys[i].name;
        /* Open the parent mappings this key does not share with the previous key. */
        size_t shared = 0;
        int depth = 0;
        for (size_t j = 0; name[j] && name[j] == prev[j]; j++)
            if (name[j] == '.') {
                shared = j + 1;
                depth++;
            }
        for (const char *p = name + shared; strchr(p, '.'); p = strchr(p, '.') + 1) {
            size_t len = (size_t)(strchr(p, '.') - p);
            fprintf(out, "%*s%.*s:\n", 2 * depth, "", (int)len, p);
            depth++;
        }
        fprintf(out, "%*s%s:", 2 * depth, "", strrchr(name, '.') ? strrchr(name, '.') + 1 : name);
        dump_value(c, &config_keys[i], depth + 1, out);
        fputc('\n', out);
        prev = name;
    }
}

void config_print_reference(FILE *out)
{
    static const char *const type_names[] = {
        [KEY_STRING] = "string",           [KEY_DURATION] = "duration",  [KEY_INT] = "integer",
        [KEY_PERIODS] = "list of periods", [KEY_MAP] = "map of strings",
    };
    fputs("| key | type | default | description |\n", out);
    fputs("|---|---|---|---|\n", out);
    for (size_t i = 0; i < KEY_COUNT; i++) {
        const struct config_key *k = &config_keys[i];
        fprintf(out, "| `%s` | %s", k->name, type_names[k->type]);
        if (k->type == KEY_DURATION || k->type == KEY_INT) {
            char lo[32], hi[32];
            format_bounds(k, lo, hi, sizeof(lo));
            fprintf(out, " (%s..%s)", lo, hi);
        }
        fputs(" | ", out);
        if (k->def == NULL)
            fputs("none", out);
        else if (k->def[0] == '\0')
            fputs("`\"\"`", out);
        else
            fprintf(out, "`%s`", k->def);
        fputs(" | ", out);
        for (const char *p = k->desc; *p; p++) {
            if (*p == '|')
                fputc('\\', out);
            fputc(*p, out);
        }
        fputs(" |\n", out);
    }
}
