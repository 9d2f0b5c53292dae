/* test_config — config.c: every default against the reference table, the operations.md
 * YAML, every error message with its file:line:column (tests/fixtures/config/), secrets
 * from files and $CREDENTIALS_DIRECTORY, redaction in --dump-config, durations.
 * The group setup chdirs into the fixture directory (found from __FILE__, so run the
 * binary from the repo root when it was compiled with a relative path). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"
#include "common/buf.h"

struct fixture {
    char tmp[64]; /* a mkdtemp directory for files with absolute paths in them */
};

/* ---- helpers ---- */

static char *dump_of(const struct csm_config *c)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    config_dump(c, f);
    assert_int_equal(fclose(f), 0);
    return text;
}

/* The dump without its first line (which names the file). */
static const char *dump_body(const char *dump)
{
    const char *nl = strchr(dump, '\n');
    assert_non_null(nl);
    return nl + 1;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

static void load_ok(struct csm_config *c, const char *path)
{
    char err[1024] = "";
    int rc = config_load(c, path, err, sizeof(err));
    if (rc != 0)
        fail_msg("%s: %s", path, err);
}

/* ---- the defaults ---- */

enum field_type { T_STR, T_MS, T_INT, T_PERIODS, T_MAP };

/* What the README table must say and what config_init must set, written out by hand. */
static const struct default_case {
    const char *key;
    const char *type; /* the reference's type column */
    const char *def;  /* the reference's default column */
    enum field_type ft;
    size_t offset;
    const char *str; /* T_STR; NULL for none */
    int64_t num;     /* T_MS, T_INT; T_PERIODS: bit mask of kinds */
} defaults[] = {
#define O(f) offsetof(struct csm_config, f)
    {.key = "kafka.brokers",
     .type = "string",
     .def = "`127.0.0.1:9092`",
     .ft = T_STR,
     .offset = O(kafka_brokers),
     .str = "127.0.0.1:9092"},
    {.key = "kafka.group_id",
     .type = "string",
     .def = "`csmetrics`",
     .ft = T_STR,
     .offset = O(kafka_group_id),
     .str = "csmetrics"},
    {.key = "kafka.topics.chat",
     .type = "string",
     .def = "`cs.chat`",
     .ft = T_STR,
     .offset = O(topic_chat),
     .str = "cs.chat"},
    {.key = "kafka.topics.orders",
     .type = "string",
     .def = "`shop.orders`",
     .ft = T_STR,
     .offset = O(topic_orders),
     .str = "shop.orders"},
    {.key = "kafka.topics.reviews",
     .type = "string",
     .def = "`cs.reviews`",
     .ft = T_STR,
     .offset = O(topic_reviews),
     .str = "cs.reviews"},
    {.key = "kafka.topics.snapshots",
     .type = "string",
     .def = "`cs.snapshots`",
     .ft = T_STR,
     .offset = O(topic_snapshots),
     .str = "cs.snapshots"},
    {.key = "kafka.topics.alerts",
     .type = "string",
     .def = "`cs.alerts`",
     .ft = T_STR,
     .offset = O(topic_alerts),
     .str = "cs.alerts"},
    {.key = "kafka.topics.deadletter",
     .type = "string",
     .def = "`cs.deadletter`",
     .ft = T_STR,
     .offset = O(topic_deadletter),
     .str = "cs.deadletter"},
    {.key = "kafka.properties",
     .type = "map of strings",
     .def = "`{}`",
     .ft = T_MAP,
     .offset = O(kafka_props)},
    {.key = "redis.url",
     .type = "string",
     .def = "`redis://127.0.0.1:6379/0`",
     .ft = T_STR,
     .offset = O(redis_url),
     .str = "redis://127.0.0.1:6379/0"},
    {.key = "redis.key_prefix",
     .type = "string",
     .def = "`csm:`",
     .ft = T_STR,
     .offset = O(redis_key_prefix),
     .str = "csm:"},
    {.key = "redis.password_file",
     .type = "string",
     .def = "none",
     .ft = T_STR,
     .offset = O(redis_password_file),
     .str = NULL},
    {.key = "timezone",
     .type = "string",
     .def = "`Asia/Shanghai`",
     .ft = T_STR,
     .offset = O(timezone),
     .str = "Asia/Shanghai"},
    {.key = "periods",
     .type = "list of periods",
     .def = "`[day, month]`",
     .ft = T_PERIODS,
     .offset = O(periods),
     .num = (1 << PERIOD_DAY) | (1 << PERIOD_MONTH)},
    {.key = "lateness",
     .type = "duration (0..366d)",
     .def = "`10m`",
     .ft = T_MS,
     .offset = O(lateness_ms),
     .num = 600000},
    {.key = "idle_timeout",
     .type = "duration (0..7d)",
     .def = "`60s`",
     .ft = T_MS,
     .offset = O(idle_timeout_ms),
     .num = 60000},
    {.key = "max_future",
     .type = "duration (0..366d)",
     .def = "`24h`",
     .ft = T_MS,
     .offset = O(max_future_ms),
     .num = 86400000},
    {.key = "attribution_window",
     .type = "duration (0..366d)",
     .def = "`72h`",
     .ft = T_MS,
     .offset = O(attribution_window_ms),
     .num = 259200000},
    {.key = "dedup_window",
     .type = "duration (0..366d)",
     .def = "`48h`",
     .ft = T_MS,
     .offset = O(dedup_window_ms),
     .num = 172800000},
    {.key = "order_retention",
     .type = "duration (0..3660d)",
     .def = "`90d`",
     .ft = T_MS,
     .offset = O(order_retention_ms),
     .num = INT64_C(7776000000)},
    {.key = "conversation_retention",
     .type = "duration (0..3660d)",
     .def = "`30d`",
     .ft = T_MS,
     .offset = O(conv_retention_ms),
     .num = INT64_C(2592000000)},
    {.key = "retention",
     .type = "duration (0..36600d)",
     .def = "`400d`",
     .ft = T_MS,
     .offset = O(retention_ms),
     .num = INT64_C(34560000000)},
    {.key = "cache_max_records",
     .type = "integer (1000..100000000)",
     .def = "`200000`",
     .ft = T_INT,
     .offset = O(cache_max_records),
     .num = 200000},
    {.key = "rules_dir",
     .type = "string",
     .def = "`/etc/csmetrics/rules`",
     .ft = T_STR,
     .offset = O(rules_dir),
     .str = "/etc/csmetrics/rules"},
    {.key = "http.listen",
     .type = "string",
     .def = "`127.0.0.1:9464`",
     .ft = T_STR,
     .offset = O(http_listen),
     .str = "127.0.0.1:9464"},
    {.key = "alertmanager.url",
     .type = "string",
     .def = "none",
     .ft = T_STR,
     .offset = O(alertmanager_url),
     .str = NULL},
    {.key = "alertmanager.resend_interval",
     .type = "duration (1s..1h)",
     .def = "`1m`",
     .ft = T_MS,
     .offset = O(alertmanager_resend_ms),
     .num = 60000},
    {.key = "alertmanager.timeout",
     .type = "duration (100ms..5m)",
     .def = "`10s`",
     .ft = T_MS,
     .offset = O(alertmanager_timeout_ms),
     .num = 10000},
    {.key = "alertmanager.final_hold",
     .type = "duration (1m..366d)",
     .def = "`24h`",
     .ft = T_MS,
     .offset = O(alertmanager_final_hold_ms),
     .num = 86400000},
    {.key = "batch_max_events",
     .type = "integer (1..1000000)",
     .def = "`20000`",
     .ft = T_INT,
     .offset = O(batch_max_events),
     .num = 20000},
    {.key = "batch_max_wait",
     .type = "duration (0..1m)",
     .def = "`100ms`",
     .ft = T_MS,
     .offset = O(batch_max_wait_ms),
     .num = 100},
    {.key = "log_level",
     .type = "string",
     .def = "`info`",
     .ft = T_STR,
     .offset = O(log_level),
     .str = "info"},
#undef O
};

#define N_DEFAULTS (sizeof(defaults) / sizeof(defaults[0]))

static void assert_default(const struct csm_config *c, const struct default_case *d)
{
    const char *base = (const char *)c;
    switch (d->ft) {
    case T_STR: {
        const char *s = *(char *const *)(base + d->offset);
        if (d->str == NULL)
            assert_null(s);
        else
            assert_string_equal(s, d->str);
        break;
    }
    case T_MS:
    case T_INT:
        assert_int_equal(*(const int64_t *)(base + d->offset), d->num);
        break;
    case T_PERIODS: {
        const bool *flags = (const bool *)(base + d->offset);
        for (int k = 0; k < PERIOD_KIND_COUNT; k++)
            assert_int_equal(flags[k], (d->num >> k) & 1);
        break;
    }
    case T_MAP:
        assert_null(c->kafka_props);
        assert_int_equal(c->kafka_props_n, 0);
        break;
    }
}

/* Every field away from its default, so a load must set each key to pass. */
static void clobber(struct csm_config *c)
{
    char *base = (char *)c;
    for (size_t i = 0; i < N_DEFAULTS; i++) {
        const struct default_case *d = &defaults[i];
        switch (d->ft) {
        case T_STR: {
            char **s = (char **)(base + d->offset);
            free(*s);
            *s = xstrdup("clobbered");
            break;
        }
        case T_MS:
        case T_INT:
            *(int64_t *)(base + d->offset) = 7;
            break;
        case T_PERIODS:
            for (int k = 0; k < PERIOD_KIND_COUNT; k++)
                ((bool *)(base + d->offset))[k] = true;
            break;
        case T_MAP:
            c->kafka_props = xcalloc(1, sizeof(*c->kafka_props));
            c->kafka_props[0] =
                (struct config_kv){.key = xstrdup("client.id"), .value = xstrdup("clobbered")};
            c->kafka_props_n = 1;
            break;
        }
    }
}

/* Splits "| `key` | type | default | description |" into its first three cells. */
static int reference_row(const char *line, char *key, char *type, char *def, size_t n)
{
    char *cells[3] = {key, type, def};
    if (strncmp(line, "| `", 3) != 0)
        return -1;
    const char *p = line + 2;
    for (int i = 0; i < 3; i++) {
        const char *end = strstr(p, " | ");
        if (end == NULL || (size_t)(end - p) >= n)
            return -1;
        memcpy(cells[i], p, (size_t)(end - p));
        cells[i][end - p] = '\0';
        p = end + 3;
    }
    /* the key without its backticks */
    size_t len = strlen(key);
    memmove(key, key + 1, len - 2);
    key[len - 2] = '\0';
    return 0;
}

static void test_defaults(void **state)
{
    struct csm_config c;
    config_init(&c);
    char *ref = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&ref, &len);
    assert_non_null(f);
    config_print_reference(f);
    fclose(f);

    size_t rows = 0;
    bool seen[N_DEFAULTS] = {false};
    for (char *line = strtok(ref, "\n"); line; line = strtok(NULL, "\n")) {
        char key[128], type[128], def[128];
        if (reference_row(line, key, type, def, sizeof(key)) != 0)
            continue;
        rows++;
        size_t i = 0;
        while (i < N_DEFAULTS && strcmp(defaults[i].key, key) != 0)
            i++;
        if (i == N_DEFAULTS)
            fail_msg("reference key '%s' has no row in defaults[]", key);
        assert_false(seen[i]);
        seen[i] = true;
        assert_string_equal(type, defaults[i].type);
        assert_string_equal(def, defaults[i].def);
        assert_default(&c, &defaults[i]);
    }
    assert_int_equal(rows, N_DEFAULTS);
    assert_null(c.redis_password);
    assert_null(c.path);
    free(ref);

    /* The defaults are a valid configuration as they are. */
    char err[512] = "";
    assert_int_equal(config_validate(&c, err, sizeof(err)), 0);
    assert_string_equal(err, "");
    config_release(&c);
}

static void test_reference_format(void **state)
{
    char *ref = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&ref, &len);
    assert_non_null(f);
    config_print_reference(f);
    fclose(f);
    assert_true(strncmp(ref,
                        "| key | type | default | description |\n"
                        "|---|---|---|---|\n",
                        strlen("| key | type | default | description |\n|---|---|---|---|\n")) ==
                0);
    assert_non_null(strstr(ref, "| `lateness` | duration (0..366d) | `10m` | how long after a "
                                "period's end late events are still accepted; a rule file may "
                                "set its own |\n"));
    assert_non_null(strstr(ref, "| `alertmanager.url` | string | none | "));
    free(ref);
}

/* ---- whole files that load ---- */

static void test_operations_example(void **state)
{
    struct csm_config c, d;
    config_init(&c);
    clobber(&c);
    free(c.redis_password_file); /* operations.md names none: it would be read */
    c.redis_password_file = NULL;
    load_ok(&c, "operations.yaml");
    assert_string_equal(c.path, "operations.yaml");
    assert_string_equal(c.kafka_brokers, "127.0.0.1:9092");
    assert_string_equal(c.kafka_group_id, "csmetrics");
    assert_string_equal(c.topic_chat, "cs.chat");
    assert_string_equal(c.topic_orders, "shop.orders");
    assert_string_equal(c.topic_reviews, "cs.reviews");
    assert_string_equal(c.topic_snapshots, "cs.snapshots");
    assert_string_equal(c.topic_alerts, "cs.alerts");
    assert_string_equal(c.topic_deadletter, "cs.deadletter");
    assert_int_equal(c.kafka_props_n, 0);
    assert_string_equal(c.redis_url, "redis://127.0.0.1:6379/0");
    assert_string_equal(c.redis_key_prefix, "csm:");
    assert_string_equal(c.timezone, "Asia/Shanghai");
    assert_true(c.periods[PERIOD_DAY]);
    assert_true(c.periods[PERIOD_MONTH]);
    assert_false(c.periods[PERIOD_WEEK]);
    assert_false(c.periods[PERIOD_QUARTER]);
    assert_false(c.periods[PERIOD_HALF]);
    assert_false(c.periods[PERIOD_YEAR]);
    assert_int_equal(c.lateness_ms, 10 * 60 * 1000);
    assert_int_equal(c.idle_timeout_ms, 60 * 1000);
    assert_int_equal(c.max_future_ms, 24 * 3600 * 1000);
    assert_int_equal(c.attribution_window_ms, 72 * 3600 * 1000);
    assert_int_equal(c.dedup_window_ms, 48 * 3600 * 1000);
    assert_int_equal(c.order_retention_ms, INT64_C(90) * 86400 * 1000);
    assert_string_equal(c.rules_dir, "/etc/csmetrics/rules");
    assert_string_equal(c.http_listen, "127.0.0.1:9464");

    /* Those are the defaults: with the keys operations.md leaves out put back, nothing
     * differs, and the whole is valid. */
    config_init(&d);
    free(c.alertmanager_url);
    c.alertmanager_url = NULL;
    c.alertmanager_resend_ms = d.alertmanager_resend_ms;
    c.alertmanager_timeout_ms = d.alertmanager_timeout_ms;
    c.alertmanager_final_hold_ms = d.alertmanager_final_hold_ms;
    c.conv_retention_ms = d.conv_retention_ms;
    c.retention_ms = d.retention_ms;
    c.cache_max_records = d.cache_max_records;
    c.batch_max_events = d.batch_max_events;
    c.batch_max_wait_ms = d.batch_max_wait_ms;
    free(c.log_level);
    c.log_level = xstrdup(d.log_level);
    char err[512] = "";
    assert_int_equal(config_validate(&c, err, sizeof(err)), 0);
    char *dc = dump_of(&c), *dd = dump_of(&d);
    assert_string_equal(dump_body(dc), dump_body(dd));
    free(dc);
    free(dd);
    config_release(&c);
    config_release(&d);
}

/* The shipped example sets every key, each to its default. */
static void test_shipped_example(void **state)
{
    struct csm_config c, d;
    config_init(&c);
    clobber(&c);
    load_ok(&c, "../../../config/csmetrics.yaml.example");
    config_init(&d);
    char *dc = dump_of(&c), *dd = dump_of(&d);
    assert_string_equal(dump_body(dc), dump_body(dd));
    char err[512] = "";
    assert_int_equal(config_validate(&c, err, sizeof(err)), 0);
    free(dc);
    free(dd);
    config_release(&c);
    config_release(&d);
}

static void test_empty_files(void **state)
{
    static const char *const files[] = {"empty.yaml", "comment_only.yaml"};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        struct csm_config c, d;
        config_init(&c);
        config_init(&d);
        load_ok(&c, files[i]);
        char *dc = dump_of(&c), *dd = dump_of(&d);
        assert_string_equal(dump_body(dc), dump_body(dd));
        free(dc);
        free(dd);
        config_release(&c);
        config_release(&d);
    }
}

static const char full_dump[] = "# csmetrics effective configuration (full.yaml)\n"
                                "kafka:\n"
                                "  brokers: \"k1:9092,k2:9092\"\n"
                                "  group_id: \"csm-test\"\n"
                                "  topics:\n"
                                "    chat: \"t.chat\"\n"
                                "    orders: \"t.orders\"\n"
                                "    reviews: \"t.reviews\"\n"
                                "    snapshots: \"t.snapshots\"\n"
                                "    alerts: \"t.alerts\"\n"
                                "    deadletter: \"t.dead\"\n"
                                "  properties:\n"
                                "    client.id: \"csm \\\"quoted\\\" id\"\n"
                                "    sasl.password: \"<redacted>\"\n"
                                "    socket.timeout.ms: \"30000\"\n"
                                "    api.version.request: \"true\"\n"
                                "redis:\n"
                                "  url: \"redis://app:<redacted>@10.0.0.5:6380/2\"\n"
                                "  key_prefix: \"t:\"\n"
                                "  password_file: ~\n"
                                "timezone: \"America/New_York\"\n"
                                "periods: [week, quarter, half, year]\n"
                                "lateness: 10d\n"
                                "idle_timeout: 0\n"
                                "max_future: 90m\n"
                                "attribution_window: 7d\n"
                                "dedup_window: 250ms\n"
                                "order_retention: 400d\n"
                                "conversation_retention: 7d\n"
                                "retention: 0\n"
                                "cache_max_records: 5000\n"
                                "rules_dir: \"rules.d\"\n"
                                "http:\n"
                                "  listen: \"\"\n"
                                "alertmanager:\n"
                                "  url: \"http://am:9093\"\n"
                                "  resend_interval: 30s\n"
                                "  timeout: 2500ms\n"
                                "  final_hold: 7d\n"
                                "batch_max_events: 500\n"
                                "batch_max_wait: 1500ms\n"
                                "log_level: \"debug\"\n";

/* Every key away from its default; the dump reloads to the same dump. */
static void test_full_and_round_trip(void **state)
{
    struct fixture *fx = *state;
    struct csm_config c, r;
    char path[128], err[512] = "";

    config_init(&c);
    load_ok(&c, "full.yaml");
    assert_int_equal(c.kafka_props_n, 4);
    static const struct config_kv want[] = {
        {.key = "client.id", .value = "csm \"quoted\" id", .secret = false},
        {.key = "sasl.password", .value = "hunter2-sasl", .secret = true},
        {.key = "socket.timeout.ms", .value = "30000", .secret = false},
        {.key = "api.version.request", .value = "true", .secret = false},
    };
    for (size_t i = 0; i < 4; i++) {
        assert_string_equal(c.kafka_props[i].key, want[i].key);
        assert_string_equal(c.kafka_props[i].value, want[i].value);
        assert_int_equal(c.kafka_props[i].secret, want[i].secret);
    }
    assert_int_equal(c.dedup_window_ms, 250);
    assert_int_equal(c.batch_max_wait_ms, 1500);
    assert_int_equal(c.idle_timeout_ms, 0);
    assert_string_equal(c.http_listen, "");
    assert_int_equal(config_validate(&c, err, sizeof(err)), 0);

    char *d1 = dump_of(&c);
    assert_string_equal(d1, full_dump);
    assert_null(strstr(d1, "hunter2"));

    snprintf(path, sizeof(path), "%s/dump.yaml", fx->tmp);
    write_file(path, d1);
    config_init(&r);
    load_ok(&r, path);
    char *d2 = dump_of(&r);
    assert_string_equal(dump_body(d2), dump_body(d1));
    unlink(path);
    free(d1);
    free(d2);
    config_release(&c);
    config_release(&r);

    /* validate selected the file's zone: 1970-01-01T00:00Z is 19:00 on the 31st in New York */
    struct period day;
    assert_int_equal(period_of(PERIOD_DAY, 0, &day), 0);
    assert_string_equal(day.label, "1969-12-31");
    assert_int_equal(day.start_ms, -19 * 3600 * 1000);
}

/* ---- errors ---- */

static const struct error_case {
    const char *file;
    const char *err;
} load_errors[] = {
    {.file = "no-such-file.yaml",
     .err = "cannot open 'no-such-file.yaml': No such file or directory"},
    {.file = "unknown_key.yaml",
     .err = "unknown_key.yaml:2:1: unknown key 'latenes' (valid keys: kafka, redis, timezone, "
            "periods, lateness, idle_timeout, max_future, attribution_window, dedup_window, "
            "order_retention, conversation_retention, retention, cache_max_records, rules_dir, "
            "http, alertmanager, batch_max_events, batch_max_wait, log_level)"},
    {.file = "unknown_key_nested.yaml",
     .err = "unknown_key_nested.yaml:3:3: unknown key 'kafka.topic' (valid keys under 'kafka': "
            "brokers, group_id, topics, properties)"},
    {.file = "unknown_key_flow.yaml",
     .err = "unknown_key_flow.yaml:1:27: unknown key 'kafka.topics.order' (valid keys under "
            "'kafka.topics': chat, orders, reviews, snapshots, alerts, deadletter)"},
    {.file = "dotted_key.yaml",
     .err = "dotted_key.yaml:1:1: unknown key 'kafka.brokers' (valid keys: kafka, redis, "
            "timezone, periods, lateness, idle_timeout, max_future, attribution_window, "
            "dedup_window, order_retention, conversation_retention, retention, "
            "cache_max_records, rules_dir, http, alertmanager, batch_max_events, batch_max_wait, "
            "log_level)"},
    {.file = "duplicate_key.yaml", .err = "duplicate_key.yaml:3:1: duplicate key 'lateness'"},
    {.file = "duplicate_key_flow.yaml",
     .err = "duplicate_key_flow.yaml:1:34: duplicate key 'redis.url'"},
    {.file = "duplicate_property.yaml",
     .err = "duplicate_property.yaml:4:5: duplicate key 'kafka.properties.security.protocol'"},
    {.file = "bad_duration.yaml",
     .err = "bad_duration.yaml:1:11: 'lateness' must be a duration like 10m, 30s, 72h"},
    {.file = "duration_not_scalar.yaml",
     .err = "duration_not_scalar.yaml:1:15: 'idle_timeout' must be a duration like 10m, 30s, "
            "72h"},
    {.file = "duration_range.yaml",
     .err = "duration_range.yaml:1:11: 'lateness' must be between 0 and 366d"},
    {.file = "bad_int.yaml", .err = "bad_int.yaml:1:19: 'batch_max_events' must be an integer"},
    {.file = "int_range.yaml",
     .err = "int_range.yaml:1:19: 'batch_max_events' must be between 1 and 1000000"},
    {.file = "bad_period.yaml",
     .err = "bad_period.yaml:1:16: 'periods' item 'weekly' is not one of day, week, month, "
            "quarter, half, year"},
    {.file = "period_twice.yaml", .err = "period_twice.yaml:4:5: 'periods' lists 'day' twice"},
    {.file = "periods_not_list.yaml",
     .err = "periods_not_list.yaml:1:10: 'periods' must be a list like [day, month]"},
    {.file = "syntax_error.yaml",
     .err = "syntax_error.yaml:2:15: mapping values are not allowed in this context"},
    {.file = "syntax_indent.yaml",
     .err = "syntax_indent.yaml:3:5: did not find expected key (while parsing a block mapping "
            "at 2:3)"},
    {.file = "syntax_unterminated.yaml",
     .err = "syntax_unterminated.yaml:4:1: found unexpected end of stream (while scanning a "
            "quoted scalar at 2:12)"},
    {.file = "syntax_tab.yaml",
     .err = "syntax_tab.yaml:2:1: found character that cannot start any token (while scanning "
            "for the next token at 2:1)"},
    {.file = "bad_utf8.yaml", .err = "bad_utf8.yaml:2:17: invalid leading UTF-8 octet"},
    {.file = "two_documents.yaml",
     .err = "two_documents.yaml:2:1: only one YAML document is allowed"},
    {.file = "not_mapping.yaml",
     .err = "not_mapping.yaml:1:1: the top level must be a mapping of keys"},
    {.file = "parent_not_mapping.yaml",
     .err = "parent_not_mapping.yaml:1:8: 'kafka' must be a mapping"},
    {.file = "key_not_scalar.yaml", .err = "key_not_scalar.yaml:1:3: keys must be strings"},
    {.file = "string_null.yaml", .err = "string_null.yaml:1:12: 'rules_dir' must be a string"},
    {.file = "string_not_scalar.yaml",
     .err = "string_not_scalar.yaml:1:11: 'timezone' must be a string"},
    {.file = "bad_log_level.yaml",
     .err = "bad_log_level.yaml:1:12: 'log_level' must be one of err, warning, notice, info, "
            "debug"},
    {.file = "bad_listen.yaml",
     .err = "bad_listen.yaml:1:16: 'http.listen' must be host:port like 127.0.0.1:9464, or \"\" "
            "to disable"},
    {.file = "bad_redis_url.yaml",
     .err = "bad_redis_url.yaml:2:8: 'redis.url' must be a redis://[user:password@]host[:port]"
            "[/db] or unix:///path URL"},
    {.file = "bad_alertmanager_url.yaml",
     .err = "bad_alertmanager_url.yaml:1:21: 'alertmanager.url' must be an http:// or https:// "
            "URL"},
    {.file = "empty_brokers.yaml",
     .err = "empty_brokers.yaml:2:12: 'kafka.brokers' must not be empty"},
    {.file = "properties_not_mapping.yaml",
     .err = "properties_not_mapping.yaml:2:15: 'kafka.properties' must be a mapping like {key: "
            "value}"},
    {.file = "property_unknown.yaml",
     .err = "property_unknown.yaml:3:5: unknown librdkafka property "
            "'kafka.properties.no.such.property'"},
    {.file = "property_bad_value.yaml",
     .err = "property_bad_value.yaml:3:25: 'kafka.properties.session.timeout.ms' rejected by "
            "librdkafka: Invalid value for configuration property \"session.timeout.ms\""},
    {.file = "property_not_scalar.yaml",
     .err = "property_not_scalar.yaml:4:20: 'kafka.properties.sasl.password' must be a string"},
    {.file = "property_reserved.yaml",
     .err = "property_reserved.yaml:2:16: 'kafka.properties.bootstrap.servers' is set by "
            "'kafka.brokers'"},
    {.file = "property_file_missing.yaml",
     .err = "property_file_missing.yaml:3:20: cannot open "
            "'/nonexistent/csmetrics-sasl-password': No such file or directory"},
    {.file = "password_file_missing.yaml",
     .err = "password_file_missing.yaml:2:18: cannot open "
            "'/nonexistent/csmetrics-redis-password': No such file or directory"},
};

static void test_load_errors(void **state)
{
    for (size_t i = 0; i < sizeof(load_errors) / sizeof(load_errors[0]); i++) {
        const struct error_case *e = &load_errors[i];
        struct csm_config c;
        char err[1024] = "";
        config_init(&c);
        int rc = config_load(&c, e->file, err, sizeof(err));
        if (rc != -1 || strcmp(err, e->err) != 0)
            fail_msg("%s: rc %d\n got: %s\nwant: %s", e->file, rc, err, e->err);
        config_release(&c);
    }
}

/* A short err buffer gets a truncated, still terminated message. */
static void test_error_truncated(void **state)
{
    struct csm_config c;
    char err[20];
    memset(err, 'x', sizeof(err));
    config_init(&c);
    assert_int_equal(config_load(&c, "unknown_key.yaml", err, sizeof(err)), -1);
    assert_string_equal(err, "unknown_key.yaml:2:");
    config_release(&c);
}

static const struct error_case validate_errors[] = {
    {.file = "bad_timezone.yaml",
     .err = "bad_timezone.yaml: timezone: unknown time zone 'Mars/Olympus'"},
    {.file = "same_topics.yaml",
     .err = "same_topics.yaml: kafka.topics.alerts: topic 'cs.chat' is also 'kafka.topics.chat'"},
};

static void test_validate_errors(void **state)
{
    for (size_t i = 0; i < sizeof(validate_errors) / sizeof(validate_errors[0]); i++) {
        const struct error_case *e = &validate_errors[i];
        struct csm_config c;
        char err[1024] = "";
        config_init(&c);
        load_ok(&c, e->file);
        int rc = config_validate(&c, err, sizeof(err));
        if (rc != -1 || strcmp(err, e->err) != 0)
            fail_msg("%s: rc %d\n got: %s\nwant: %s", e->file, rc, err, e->err);
        config_release(&c);
    }
}

/* config_validate also guards configurations built in code (no file: no prefix). */
static void test_validate_fields(void **state)
{
    static const struct {
        const char *what;
        const char *err;
    } cases[] = {
        {.what = "lateness", .err = "lateness: must be between 0 and 366d"},
        {.what = "batch", .err = "batch_max_events: must be between 1 and 1000000"},
        {.what = "listen",
         .err = "http.listen: must be host:port like 127.0.0.1:9464, or \"\" "
                "to disable"},
        {.what = "brokers", .err = "kafka.brokers: must be set"},
        {.what = "topic",
         .err = "kafka.topics.deadletter: topic 'shop.orders' is also "
                "'kafka.topics.orders'"},
        {.what = "zone", .err = "timezone: unknown time zone '../etc/passwd'"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct csm_config c;
        char err[512] = "";
        config_init(&c);
        if (strcmp(cases[i].what, "lateness") == 0) {
            c.lateness_ms = INT64_C(367) * 86400 * 1000;
        } else if (strcmp(cases[i].what, "batch") == 0) {
            c.batch_max_events = 0;
        } else if (strcmp(cases[i].what, "listen") == 0) {
            free(c.http_listen);
            c.http_listen = xstrdup("[::1]");
        } else if (strcmp(cases[i].what, "brokers") == 0) {
            free(c.kafka_brokers);
            c.kafka_brokers = NULL;
        } else if (strcmp(cases[i].what, "topic") == 0) {
            free(c.topic_deadletter);
            c.topic_deadletter = xstrdup("shop.orders");
        } else {
            free(c.timezone);
            c.timezone = xstrdup("../etc/passwd");
        }
        assert_int_equal(config_validate(&c, err, sizeof(err)), -1);
        assert_string_equal(err, cases[i].err);
        config_release(&c);
    }
}

static void test_listen_forms(void **state)
{
    static const struct {
        const char *listen;
        bool ok;
    } cases[] = {
        {.listen = "127.0.0.1:9464", .ok = true},
        {.listen = ":9464", .ok = true},
        {.listen = "[::1]:9464", .ok = true},
        {.listen = "", .ok = true},
        {.listen = "localhost:1", .ok = true},
        {.listen = "host:65535", .ok = true},
        {.listen = "host:65536", .ok = false},
        {.listen = "host:0", .ok = false},
        {.listen = "host:", .ok = false},
        {.listen = "host", .ok = false},
        {.listen = "host:9x", .ok = false},
        {.listen = "[::1]", .ok = false},
        {.listen = "host:99999999999", .ok = false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct csm_config c;
        char err[512] = "";
        config_init(&c);
        free(c.http_listen);
        c.http_listen = xstrdup(cases[i].listen);
        int rc = config_validate(&c, err, sizeof(err));
        if ((rc == 0) != cases[i].ok)
            fail_msg("listen '%s': rc %d (%s)", cases[i].listen, rc, err);
        config_release(&c);
    }
}

/* ---- secrets ---- */

static void test_property_files(void **state)
{
    struct fixture *fx = *state;
    char sasl[128], client[128], twice[128], yaml[128], text[1024];
    struct csm_config c;

    snprintf(sasl, sizeof(sasl), "%s/sasl-password", fx->tmp);
    snprintf(client, sizeof(client), "%s/client-id", fx->tmp);
    snprintf(twice, sizeof(twice), "%s/two-newlines", fx->tmp);
    snprintf(yaml, sizeof(yaml), "%s/props.yaml", fx->tmp);
    write_file(sasl, "s3cr3t-from-file\n");
    write_file(client, "client-from-file");
    write_file(twice, "ssl-pw-from-file\n\n");
    snprintf(text, sizeof(text),
             "kafka:\n"
             "  properties:\n"
             "    security.protocol: SASL_SSL\n"
             "    sasl.mechanisms: PLAIN\n"
             "    sasl.username: alice\n"
             "    sasl.password: \"@file:%s\"\n"
             "    ssl.key.password: \"@file:%s\"\n"
             "    client.id: \"@file:%s\"\n"
             "    sasl.oauthbearer.config: \"principal=inline-oauth-secret\"\n"
             "    socket.timeout.ms: 30000\n",
             sasl, twice, client);
    write_file(yaml, text);

    config_init(&c);
    load_ok(&c, yaml);
    static const struct config_kv want[] = {
        {.key = "security.protocol", .value = "SASL_SSL", .secret = false},
        {.key = "sasl.mechanisms", .value = "PLAIN", .secret = false},
        {.key = "sasl.username", .value = "alice", .secret = false},
        {.key = "sasl.password", .value = "s3cr3t-from-file", .secret = true},
        {.key = "ssl.key.password", .value = "ssl-pw-from-file\n", .secret = true},
        {.key = "client.id", .value = "client-from-file", .secret = true},
        {.key = "sasl.oauthbearer.config",
         .value = "principal=inline-oauth-secret",
         .secret = true},
        {.key = "socket.timeout.ms", .value = "30000", .secret = false},
    };
    assert_int_equal(c.kafka_props_n, sizeof(want) / sizeof(want[0]));
    for (size_t i = 0; i < c.kafka_props_n; i++) {
        assert_string_equal(c.kafka_props[i].key, want[i].key);
        assert_string_equal(c.kafka_props[i].value, want[i].value);
        assert_int_equal(c.kafka_props[i].secret, want[i].secret);
    }

    char *dump = dump_of(&c);
    assert_null(strstr(dump, "s3cr3t-from-file"));
    assert_null(strstr(dump, "ssl-pw-from-file"));
    assert_null(strstr(dump, "client-from-file"));
    assert_null(strstr(dump, "inline-oauth-secret"));
    assert_non_null(strstr(dump, "\n    sasl.username: \"alice\"\n"));
    assert_non_null(strstr(dump, "\n    sasl.password: \"<redacted>\"\n"));
    assert_non_null(strstr(dump, "\n    client.id: \"<redacted>\"\n"));
    free(dump);
    config_release(&c);
    unlink(sasl);
    unlink(client);
    unlink(twice);
    unlink(yaml);
}

/* A secret librdkafka rejects: its message is shown unless it quotes the value. */
static void test_property_secret_rejected(void **state)
{
    struct fixture *fx = *state;
    char proto[128], yaml[128], text[256], err[1024] = "", want[512];
    struct csm_config c;

    snprintf(proto, sizeof(proto), "%s/proto", fx->tmp);
    snprintf(yaml, sizeof(yaml), "%s/secret-bad.yaml", fx->tmp);
    write_file(proto, "hunter2-proto\n");
    snprintf(text, sizeof(text), "kafka:\n  properties:\n    security.protocol: \"@file:%s\"\n",
             proto);
    write_file(yaml, text);
    config_init(&c);
    assert_int_equal(config_load(&c, yaml, err, sizeof(err)), -1);
    snprintf(want, sizeof(want),
             "%s:3:24: 'kafka.properties.security.protocol' rejected by librdkafka (its message "
             "is not shown: the value is secret)",
             yaml);
    assert_string_equal(err, want);
    config_release(&c);

    unlink(proto);
    unlink(yaml);
}

static void test_password_file(void **state)
{
    struct fixture *fx = *state;
    char pw[128], yaml[128], text[256];
    struct csm_config c;

    snprintf(pw, sizeof(pw), "%s/rpass", fx->tmp);
    snprintf(yaml, sizeof(yaml), "%s/pw.yaml", fx->tmp);
    write_file(pw, "hunter2-redis\n");
    snprintf(text, sizeof(text),
             "redis:\n  url: \"redis://app:hunter2-in-url@127.0.0.1:6379/0\"\n"
             "  password_file: %s\n",
             pw);
    write_file(yaml, text);

    config_init(&c);
    load_ok(&c, yaml);
    assert_string_equal(c.redis_password_file, pw);
    assert_string_equal(c.redis_password, "hunter2-redis");
    char *dump = dump_of(&c);
    assert_null(strstr(dump, "hunter2"));
    assert_non_null(strstr(dump, "  url: \"redis://app:<redacted>@127.0.0.1:6379/0\"\n"));
    free(dump);
    config_release(&c);
    unlink(pw);
    unlink(yaml);
}

static void test_credentials_directory(void **state)
{
    struct fixture *fx = *state;
    char dir[96], cred[128], own[128], yaml[128], text[256], err[512] = "", want[512];
    struct csm_config c;

    snprintf(dir, sizeof(dir), "%s/creds", fx->tmp);
    snprintf(cred, sizeof(cred), "%s/redis-password", dir);
    snprintf(own, sizeof(own), "%s/own-password", fx->tmp);
    snprintf(yaml, sizeof(yaml), "%s/own.yaml", fx->tmp);
    assert_int_equal(mkdir(dir, 0700), 0);
    assert_int_equal(setenv("CREDENTIALS_DIRECTORY", dir, 1), 0);

    /* no credential file: no password */
    config_init(&c);
    load_ok(&c, "empty.yaml");
    assert_null(c.redis_password);
    assert_null(c.redis_password_file);
    config_release(&c);

    /* the credential, when the configuration names no file */
    write_file(cred, "from-systemd\n");
    config_init(&c);
    load_ok(&c, "operations.yaml");
    assert_string_equal(c.redis_password, "from-systemd");
    assert_string_equal(c.redis_password_file, cred);
    config_release(&c);

    /* redis.password_file wins */
    write_file(own, "from-own-file");
    snprintf(text, sizeof(text), "redis: {password_file: \"%s\"}\n", own);
    write_file(yaml, text);
    config_init(&c);
    load_ok(&c, yaml);
    assert_string_equal(c.redis_password, "from-own-file");
    config_release(&c);

    /* an unreadable credential fails without a position: no line names it */
    unlink(cred);
    assert_int_equal(mkdir(cred, 0700), 0);
    config_init(&c);
    assert_int_equal(config_load(&c, "empty.yaml", err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "empty.yaml: cannot read '%s': Is a directory", cred);
    assert_string_equal(err, want);
    config_release(&c);

    rmdir(cred);
    rmdir(dir);
    unlink(own);
    unlink(yaml);
    unsetenv("CREDENTIALS_DIRECTORY");
}

static void test_url_redaction(void **state)
{
    static const struct {
        const char *url, *printed;
    } cases[] = {
        {.url = "redis://user:hunter2@10.0.0.5:6379/0",
         .printed = "redis://user:<redacted>@10.0.0.5:6379/0"},
        {.url = "redis://:hunter2@host:6379", .printed = "redis://:<redacted>@host:6379"},
        {.url = "redis://user:hun@ter2@host/0", .printed = "redis://user:<redacted>@host/0"},
        {.url = "redis://user:hun/ter2@host:6379/0",
         .printed = "redis://user:<redacted>@host:6379/0"},
        {.url = "redis://user:hunter2?x@host", .printed = "redis://user:<redacted>@host"},
        {.url = "redis://user@host:6379/0", .printed = "redis://user@host:6379/0"},
        {.url = "redis://127.0.0.1:6379/0", .printed = "redis://127.0.0.1:6379/0"},
        {.url = "unix:///run/redis/redis.sock", .printed = "unix:///run/redis/redis.sock"},
        {.url = "unix:///run/redis.sock?db=2&password=hunter2&x=1",
         .printed = "unix:///run/redis.sock?db=2&password=<redacted>&x=1"},
        {.url = "redis://u:hunter2@h/0?password=hunter2",
         .printed = "redis://u:<redacted>@h/0?password=<redacted>"},
        {.url = "http://admin:hunter2@am:9093/", .printed = "http://admin:<redacted>@am:9093/"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct csm_config c;
        char want[256];
        config_init(&c);
        free(c.redis_url);
        c.redis_url = xstrdup(cases[i].url);
        c.alertmanager_url = xstrdup(cases[i].url);
        char *dump = dump_of(&c);
        snprintf(want, sizeof(want), "  url: \"%s\"\n", cases[i].printed);
        if (strstr(dump, "hunter2") || !strstr(dump, want))
            fail_msg("%s printed as:\n%s", cases[i].url, dump);
        /* both the redis and the alertmanager URL */
        assert_non_null(strstr(strstr(dump, want) + 1, want));
        free(dump);
        config_release(&c);
    }
}

/* ---- durations ---- */

static void test_durations(void **state)
{
    static const struct {
        const char *text;
        int rc;
        int64_t ms;
    } cases[] = {
        {.text = "0", .rc = 0, .ms = 0},
        {.text = "0ms", .rc = 0, .ms = 0},
        {.text = "0s", .rc = 0, .ms = 0},
        {.text = "1ms", .rc = 0, .ms = 1},
        {.text = "250ms", .rc = 0, .ms = 250},
        {.text = "30s", .rc = 0, .ms = 30000},
        {.text = "10m", .rc = 0, .ms = 600000},
        {.text = "72h", .rc = 0, .ms = 259200000},
        {.text = "90d", .rc = 0, .ms = INT64_C(7776000000)},
        {.text = "1500ms", .rc = 0, .ms = 1500},
        {.text = "106751991167d", .rc = 0, .ms = INT64_C(106751991167) * 86400000},
        {.text = "106751991168d", .rc = -1}, /* int64 overflow after the unit */
        {.text = "99999999999999999999s", .rc = -1},
        {.text = "", .rc = -1},
        {.text = "10", .rc = -1},
        {.text = "-5m", .rc = -1},
        {.text = "+5m", .rc = -1},
        {.text = " 5m", .rc = -1},
        {.text = "5m ", .rc = -1},
        {.text = "5 m", .rc = -1},
        {.text = "1.5h", .rc = -1},
        {.text = "5M", .rc = -1},
        {.text = "5w", .rc = -1},
        {.text = "m", .rc = -1},
        {.text = "10mm", .rc = -1},
        {.text = "1h30m", .rc = -1},
        {.text = "0x10s", .rc = -1},
        {.text = "10 minutes", .rc = -1},
        {.text = NULL, .rc = -1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t ms = -42;
        int rc = config_parse_duration(cases[i].text, &ms);
        if (rc != cases[i].rc)
            fail_msg("'%s': rc %d, want %d", cases[i].text ? cases[i].text : "(null)", rc,
                     cases[i].rc);
        assert_int_equal(ms, cases[i].rc == 0 ? cases[i].ms : -42);
    }
}

/* config_load_buffer (the fuzz harness's entry) reads exactly len bytes, named by path:
 * full.yaml from memory dumps as from the file, and bytes after len are not read. */
static void test_load_buffer(void **state)
{
    struct csm_config a, b;
    char err[1024] = "";
    size_t len = 0;
    (void)state;

    config_init(&a);
    load_ok(&a, "full.yaml");
    FILE *f = fopen("full.yaml", "rb");
    assert_non_null(f);
    char *text = malloc(1 << 16);
    assert_non_null(text);
    len = fread(text, 1, (1 << 16) - 16, f);
    fclose(f);
    memcpy(text + len, "\nnot: yaml: [", 14); /* past len: must not be read */
    config_init(&b);
    assert_int_equal(config_load_buffer(&b, "full.yaml", text, len, err, sizeof(err)), 0);
    char *da = dump_of(&a), *db = dump_of(&b);
    assert_string_equal(da, db);
    free(da);
    free(db);
    config_release(&b);

    config_init(&b);
    assert_int_equal(config_load_buffer(&b, "mem.yaml", "lateness: 5x", 12, err, sizeof(err)), -1);
    assert_string_equal(err, "mem.yaml:1:11: 'lateness' must be a duration like 10m, 30s, 72h");
    config_release(&b);
    config_release(&a);
    free(text);
}

/* The dump loads back as the same configuration (fuzzing found NEL, U+0085, dumped raw:
 * YAML folds it into a space). Every character YAML folds or refuses raw is escaped. */
static void test_dump_roundtrip(void **state)
{
    static const struct {
        const char *yaml, *value, *dumped;
    } cases[] = {
        {.yaml = "kafka: {brokers: \"\\e\\b\\Ne \\e\"}",
         .value = "\x1b\b\xc2\x85"
                  "e \x1b",
         .dumped = "\"\\x1b\\x08\\x85e \\x1b\""},
        {.yaml = "kafka: {brokers: \"a\\Lb\\Pc\\x80d\\x9fe\\uFFFEf\\uFFFFg\\x7f\"}",
         .value = "a\xe2\x80\xa8"
                  "b\xe2\x80\xa9"
                  "c\xc2\x80"
                  "d\xc2\x9f"
                  "e\xef\xbf\xbe"
                  "f\xef\xbf\xbf"
                  "g\x7f",
         .dumped = "\"a\\u2028b\\u2029c\\x80d\\x9fe\\ufffef\\uffffg\\x7f\""},
        {.yaml = "kafka: {brokers: \"\\u00e9\\u4e2d\\U0001F600\\u00a0\\ufeff\"}",
         .value = "\xc3\xa9\xe4\xb8\xad\xf0\x9f\x98\x80\xc2\xa0\xef\xbb\xbf",
         .dumped = "\"\xc3\xa9\xe4\xb8\xad\xf0\x9f\x98\x80\xc2\xa0\xef\xbb\xbf\""},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct csm_config a, b;
        char err[1024] = "";
        config_init(&a);
        if (config_load_buffer(&a, "rt.yaml", cases[i].yaml, strlen(cases[i].yaml), err,
                               sizeof(err)) != 0)
            fail_msg("case %zu: %s", i, err);
        assert_string_equal(a.kafka_brokers, cases[i].value);
        char *da = dump_of(&a);
        char want[256];
        snprintf(want, sizeof(want), "\n  brokers: %s\n", cases[i].dumped);
        if (strstr(da, want) == NULL)
            fail_msg("case %zu: no '%s' in\n%s", i, want, da);
        config_init(&b);
        if (config_load_buffer(&b, "rt.yaml", da, strlen(da), err, sizeof(err)) != 0)
            fail_msg("case %zu: the dump does not load: %s", i, err);
        assert_string_equal(b.kafka_brokers, cases[i].value);
        free(da);
        config_release(&b);
        config_release(&a);
    }
}

/* config_release leaves a zeroed struct and takes a zeroed or released one again. */
static void test_release_twice(void **state)
{
    struct csm_config c;
    config_init(&c);
    config_release(&c);
    assert_null(c.kafka_brokers);
    config_release(&c);
    config_release(NULL);
}

/* ---- setup ---- */

static int group_setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    char dir[PATH_MAX];
    const char *slash = strrchr(__FILE__, '/');
    if (fx == NULL)
        return -1;
    snprintf(dir, sizeof(dir), "%.*s/../fixtures/config", slash ? (int)(slash - __FILE__) : 1,
             slash ? __FILE__ : ".");
    if (chdir(dir) != 0) {
        fprintf(stderr, "test_config: cannot chdir to '%s' (run from the repo root)\n", dir);
        free(fx);
        return -1;
    }
    snprintf(fx->tmp, sizeof(fx->tmp), "/tmp/test_config.XXXXXX");
    if (mkdtemp(fx->tmp) == NULL) {
        free(fx);
        return -1;
    }
    *state = fx;
    return 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

static int group_teardown(void **state)
{
    struct fixture *fx = *state;
    /* a failed test leaves its files behind */
    nftw(fx->tmp, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
    free(fx);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_reference_format),
        cmocka_unit_test(test_operations_example),
        cmocka_unit_test(test_shipped_example),
        cmocka_unit_test(test_empty_files),
        cmocka_unit_test(test_full_and_round_trip),
        cmocka_unit_test(test_load_errors),
        cmocka_unit_test(test_error_truncated),
        cmocka_unit_test(test_validate_errors),
        cmocka_unit_test(test_validate_fields),
        cmocka_unit_test(test_listen_forms),
        cmocka_unit_test(test_property_files),
        cmocka_unit_test(test_property_secret_rejected),
        cmocka_unit_test(test_password_file),
        cmocka_unit_test(test_credentials_directory),
        cmocka_unit_test(test_url_redaction),
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_load_buffer),
        cmocka_unit_test(test_dump_roundtrip),
        cmocka_unit_test(test_release_twice),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
