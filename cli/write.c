/* write — `csmetrics review` and `csmetrics target`: write review / target events
 * (events.md) to the configured reviews topic, keyed by agent_id. Every event is first
 * run through the daemon's own decoder (cli/evjson.c), so anything csmetricsd would
 * dead-letter is refused and nothing is produced; then all are produced and flushed,
 * and each delivery is confirmed (partition and offset) or the command fails. */
#include "cli/cli.h"
#include "cli/common.h"
#include "cli/evjson.h"
#include "common/buf.h"
#include "common/clock.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define WRITE_ITEMS_MAX 64
#define WRITE_ITEM_LEN 256

/* One event to write: its JSON, the Kafka key (agent_id) and what the delivery report
 * said. */
struct write_msg {
    struct buf json;
    char *key;
    char *event_id;
    char *what; /* "item 'x', role manager" / "amount 1000": for the confirmation line */
    int64_t period_end_ms;
    char period[PERIOD_LABEL_MAX];
    int32_t partition;
    int64_t offset;
    rd_kafka_resp_err_t err;
    bool reported;
};

struct write_opts {
    enum event_type type; /* EV_REVIEW or EV_TARGET */
    const char *shop, *agent, *period, *ts, *event_id, *file, *brokers;
    const char *items[WRITE_ITEMS_MAX];
    size_t nitems;
    const char *max, *role, *reviewer; /* review */
    const char *amount;                /* target */
    double timeout_s;
    bool json, dry_run;
};

struct write_run {
    struct write_opts o;
    struct csm_config cfg;
    struct write_msg *msgs;
    size_t n, cap;
};

static const char *write_name(enum event_type type)
{
    return type == EV_REVIEW ? "review" : "target";
}

static void write_usage(enum event_type type, FILE *out)
{
    if (type == EV_REVIEW)
        fprintf(out,
                "usage: csmetrics review --agent A --role ROLE --item ITEM=SCORE [--item ...]\n"
                "                        [--shop S] [--period LABEL] [--max M] [--reviewer R]\n"
                "                        [--ts TS] [--event-id ID] [--json | --dry-run]\n"
                "       csmetrics review --file F [--json | --dry-run]\n"
                "\n"
                "Writes review events (a score someone gave an agent) to the configured reviews\n"
                "topic (kafka.topics.reviews, default cs.reviews), keyed by agent_id, one event\n"
                "per --item. csmetricsd keeps the latest review per agent, period, item and role;\n"
                "'csmetrics show' lists it as review.ITEM.ROLE (score / max).\n"
                "\n"
                "  --agent A         the agent reviewed (agent_id)\n"
                "  --role ROLE       who reviews: self, manager or indirect_manager\n"
                "  --item ITEM=SCORE an item and its score, e.g. follow_up=90; repeat for\n"
                "                    several items (each is its own event)\n"
                "  --max M           the score's maximum (default 100); 0 <= SCORE <= M\n"
                "  --reviewer R      who gave the score (default: the agent for --role self;\n"
                "                    required for manager and indirect_manager)\n");
    else
        fprintf(out,
                "usage: csmetrics target --agent A --amount YUAN [--shop S] [--period LABEL]\n"
                "                        [--ts TS] [--event-id ID] [--json | --dry-run]\n"
                "       csmetrics target --file F [--json | --dry-run]\n"
                "\n"
                "Writes a target event (an agent's sales plan for a period) to the configured\n"
                "reviews topic (kafka.topics.reviews, default cs.reviews), keyed by agent_id.\n"
                "csmetricsd keeps the latest target per agent and period; 'csmetrics show'\n"
                "gives target_completion = sales / target.\n"
                "\n"
                "  --agent A         the agent (agent_id)\n"
                "  --amount YUAN     the plan in yuan: 50000, 49999.90 (at most two decimals)\n");
    fprintf(out,
            "  --shop S          the shop (shop_id; default: left out, which the daemon\n"
            "                    reads as 'default')\n"
            "  --period LABEL    the period the %s counts for: 2026-11, 2026-Q4, 2026-H2,\n"
            "                    2026, 2026-W45 or 2026-11-02 (default: the month in\n"
            "                    progress in the configured time zone)\n"
            "  --ts TS           the event time, RFC 3339 with offset or epoch ms (default: now)\n"
            "  --event-id ID     the event_id (default: a new unique one, printed); writing\n"
            "                    the same event_id again is counted once by the daemon%s\n"
            "  --file F          write the events of F instead, one JSON object per line as\n"
            "                    events.md has them ('-': standard input); every line is\n"
            "                    checked first, errors are printed as F:LINE: message, and\n"
            "                    nothing is written unless all lines are valid\n"
            "  --brokers B       Kafka bootstrap servers (default: kafka.brokers of the\n"
            "                    configuration; needed when that is 'embedded')\n"
            "  --timeout S       seconds to wait for Kafka to confirm delivery (default 10)\n"
            "  --json            print each event written as JSON instead of a summary line\n"
            "  --dry-run         check and print the events as JSON, write nothing\n"
            "\n"
            "Every event is checked with csmetricsd's own decoder first: what the daemon\n"
            "would send to the dead-letter topic is refused with its reason and nothing is\n"
            "written. A period whose end (plus lateness) has passed gets a warning: once the\n"
            "daemon has closed it, the event is dead-lettered as late.\n"
            "Exit status: 0 when every event was delivered (or checked, with --dry-run);\n"
            "1 when an event was refused or Kafka did not confirm it; 2 on bad usage.\n"
            "\n",
            write_name(type),
            type == EV_REVIEW
                ? "; with\n                    several --item, each event_id is ID:ITEM"
                : "");
    if (type == EV_REVIEW)
        fprintf(out,
                "Example:\n"
                "  csmetrics review --shop shop-1 --agent a07 --period 2026-11 --role manager \\\n"
                "      --reviewer lin --item follow_up=85 --item execution=90\n");
    else
        fprintf(out,
                "Example:\n"
                "  csmetrics target --shop shop-1 --agent a07 --period 2026-12 --amount 80000\n");
}

/* ---- checking and building ---- */

static struct write_msg *write_add(struct write_run *w)
{
    if (w->n == w->cap) {
        w->cap = w->cap ? w->cap * 2 : 8;
        w->msgs = xrealloc(w->msgs, w->cap * sizeof(*w->msgs));
    }
    struct write_msg *m = &w->msgs[w->n++];
    memset(m, 0, sizeof(*m));
    buf_init(&m->json);
    m->partition = -1;
    m->offset = -1;
    return m;
}

static void write_release(struct write_run *w)
{
    for (size_t i = 0; i < w->n; i++) {
        buf_release(&w->msgs[i].json);
        free(w->msgs[i].key);
        free(w->msgs[i].event_id);
        free(w->msgs[i].what);
    }
    free(w->msgs);
    config_release(&w->cfg);
}

/* Checks the last message added as csmetricsd would and records what the summary line
 * and the lateness warning need. -1 with a message in err (the message is dropped). */
static int write_check_last(struct write_run *w, char *err, size_t errlen)
{
    struct write_msg *m = &w->msgs[w->n - 1];
    struct decode_opts d = {.now_ms = clock_wall_ms(), .max_future_ms = w->cfg.max_future_ms};
    struct event ev;
    if (evjson_check(m->json.data, m->json.len, w->o.type, &d, &ev, err, errlen) < 0) {
        buf_release(&m->json);
        w->n--;
        return -1;
    }
    m->key = xstrdup(ev.agent_id);
    m->event_id = xstrdup(ev.event_id);
    struct buf what;
    buf_init(&what);
    buf_printf(&what, "shop '%s', agent '%s', period %s, ", ev.shop_id, ev.agent_id,
               ev.period.label);
    if (ev.type == EV_REVIEW)
        buf_printf(&what, "item '%s' = %g/%g by %s '%s'", ev.item, ev.score, ev.max,
                   review_role_name(ev.role), ev.reviewer);
    else
        buf_printf(&what, "amount %" PRId64 ".%02" PRId64, ev.amount_cents / 100,
                   ev.amount_cents % 100);
    m->what = what.data;
    m->period_end_ms = ev.period.end_ms;
    snprintf(m->period, sizeof(m->period), "%s", ev.period.label);
    event_release(&ev);
    return 0;
}

static uint64_t write_random(void)
{
    uint64_t r = 0;
    if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r)) {
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        r = ((uint64_t)getpid() << 40) ^ (uint64_t)t.tv_nsec ^ ((uint64_t)t.tv_sec << 20);
    }
    return r;
}

/* Builds the events the options describe. -1 when one is refused (message printed). */
static int write_from_options(struct write_run *w)
{
    const struct write_opts *o = &w->o;
    char ts[48], period[PERIOD_LABEL_MAX], err[1024];
    int64_t now = clock_wall_ms();
    if (o->ts)
        snprintf(ts, sizeof(ts), "%s", o->ts);
    else
        period_format_rfc3339(now, ts, sizeof(ts));
    if (o->period) {
        snprintf(period, sizeof(period), "%s", o->period);
    } else {
        struct period p;
        if (period_of(PERIOD_MONTH, now, &p) < 0) {
            fprintf(stderr, "csmetrics: cannot compute the month in progress\n");
            return -1;
        }
        snprintf(period, sizeof(period), "%s", p.label);
    }
    const char *periodp = o->period ? o->period : period; /* a long bad label stays whole */
    size_t n = o->type == EV_REVIEW ? o->nitems : 1;
    for (size_t i = 0; i < n; i++) {
        char item[WRITE_ITEM_LEN] = "", id[WRITE_ITEM_LEN + 160];
        const char *score = NULL;
        if (o->type == EV_REVIEW &&
            evjson_split_item(o->items[i], item, sizeof(item), &score, err, sizeof(err)) < 0) {
            fprintf(stderr, "csmetrics: %s\n", err);
            return -1;
        }
        if (!o->event_id)
            evjson_make_id(id, sizeof(id), now, write_random());
        else if (n > 1)
            snprintf(id, sizeof(id), "%.128s:%s", o->event_id, item);
        else
            snprintf(id, sizeof(id), "%s", o->event_id);
        struct evjson_common c = {
            .event_id = id,
            .ts = ts,
            .shop_id = o->shop,
            .agent_id = o->agent,
            .period = periodp,
        };
        struct write_msg *m = write_add(w);
        if (o->type == EV_REVIEW) {
            const char *reviewer = o->reviewer ? o->reviewer : o->agent;
            if (evjson_review(&m->json, &c, item, score, o->max, o->role, reviewer, err,
                              sizeof(err)) < 0) {
                buf_release(&m->json);
                w->n--;
                fprintf(stderr, "csmetrics: refused: %s\n", err);
                return -1;
            }
        } else {
            evjson_target(&m->json, &c, o->amount);
        }
        if (write_check_last(w, err, sizeof(err)) < 0) {
            if (o->type == EV_REVIEW)
                fprintf(stderr, "csmetrics: refused: item '%s': %s\n", item, err);
            else
                fprintf(stderr, "csmetrics: refused: %s\n", err);
            return -1;
        }
    }
    return 0;
}

/* Reads the events of a file (JSON lines), checking each. Every bad line is reported as
 * F:LINE: message; -1 when any was bad or the file cannot be read. */
static int write_from_file(struct write_run *w)
{
    const char *path = w->o.file;
    bool std_in = strcmp(path, "-") == 0;
    const char *name = std_in ? "stdin" : path;
    FILE *f = std_in ? stdin : fopen(path, "r");
    if (!f) {
        fprintf(stderr, "csmetrics: cannot open '%s': %s\n", path, strerror(errno));
        return -1;
    }
    char *line = NULL, err[1024];
    size_t cap = 0, bad = 0;
    ssize_t len;
    for (long no = 1; (len = getline(&line, &cap, f)) >= 0; no++) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            len--;
        size_t blank = 0;
        while (blank < (size_t)len && (line[blank] == ' ' || line[blank] == '\t'))
            blank++;
        if (blank == (size_t)len)
            continue;
        struct write_msg *m = write_add(w);
        buf_add(&m->json, line, (size_t)len);
        if (write_check_last(w, err, sizeof(err)) < 0) {
            fprintf(stderr, "%s:%ld: %s\n", name, no, err);
            bad++;
        }
    }
    bool read_err = ferror(f);
    if (read_err)
        fprintf(stderr, "csmetrics: cannot read '%s': %s\n", path, strerror(errno));
    free(line);
    if (!std_in)
        fclose(f);
    if (read_err)
        return -1;
    if (bad) {
        fprintf(stderr, "csmetrics: %zu invalid line%s in '%s': nothing written\n", bad,
                bad == 1 ? "" : "s", name);
        return -1;
    }
    if (w->n == 0) {
        fprintf(stderr, "csmetrics: no events in '%s'\n", name);
        return -1;
    }
    return 0;
}

/* ---- Kafka ---- */

static void write_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    (void)opaque;
    struct write_msg *wm = m->_private;
    if (!wm)
        return;
    wm->reported = true;
    wm->err = m->err;
    wm->partition = m->partition;
    wm->offset = m->offset;
}

/* librdkafka's logs would repeat every reconnect attempt (and warn that consumer
 * properties of the shared configuration are ignored by a producer): the last error
 * is kept instead and named once if a delivery fails. */
static void write_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *msg)
{
    (void)rk;
    (void)level;
    (void)fac;
    (void)msg;
}

static void write_error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    (void)rk;
    (void)err;
    snprintf(opaque, 512, "%s", reason);
}

/* Produces every message, flushes, and checks each delivery. 0, or -1 (printed). */
static int write_produce(struct write_run *w)
{
    const struct csm_config *cfg = &w->cfg;
    const char *brokers = w->o.brokers ? w->o.brokers : cfg->kafka_brokers;
    char errstr[512], num[32], last_error[512] = "";
    if (strcmp(brokers, "embedded") == 0) {
        fprintf(stderr,
                "csmetrics: kafka.brokers is 'embedded' in '%s': that mock cluster lives inside "
                "csmetricsd; give --brokers with the bootstrap address it logged\n",
                cfg->path ? cfg->path : "the configuration");
        return -1;
    }
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    /* The configured properties first (security.protocol, sasl.*, ssl.*), then ours. */
    for (size_t i = 0; i < cfg->kafka_props_n; i++)
        if (rd_kafka_conf_set(conf, cfg->kafka_props[i].key, cfg->kafka_props[i].value, errstr,
                              sizeof(errstr)) != RD_KAFKA_CONF_OK)
            goto fail_conf;
    snprintf(num, sizeof(num), "%.0f", w->o.timeout_s * 1000);
    if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers, errstr, sizeof(errstr)) !=
            RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "client.id", "csmetrics-write", errstr, sizeof(errstr)) !=
            RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "acks", "all", errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "message.timeout.ms", num, errstr, sizeof(errstr)) !=
            RD_KAFKA_CONF_OK)
        goto fail_conf;
    rd_kafka_conf_set_dr_msg_cb(conf, write_dr_cb);
    rd_kafka_conf_set_log_cb(conf, write_log_cb);
    rd_kafka_conf_set_error_cb(conf, write_error_cb);
    rd_kafka_conf_set_opaque(conf, last_error);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!rk)
        goto fail_conf; /* conf is not taken over on failure */
    conf = NULL;
    const char *topic = cfg->topic_reviews;
    int status = 0;
    for (size_t i = 0; i < w->n && status == 0; i++) {
        struct write_msg *m = &w->msgs[i];
        rd_kafka_resp_err_t e = rd_kafka_producev(
            rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_KEY(m->key, strlen(m->key)), RD_KAFKA_V_VALUE(m->json.data, m->json.len),
            RD_KAFKA_V_OPAQUE(m), RD_KAFKA_V_END);
        if (e) {
            fprintf(stderr, "csmetrics: cannot produce to '%s': %s\n", topic, rd_kafka_err2str(e));
            status = -1;
        }
    }
    /* Wait for every delivery report: message.timeout.ms bounds each message. */
    int64_t deadline = clock_mono_ms() + (int64_t)(w->o.timeout_s * 1000) + 5000;
    while (rd_kafka_outq_len(rk) > 0 && clock_mono_ms() < deadline)
        rd_kafka_flush(rk, 200);
    rd_kafka_poll(rk, 0);
    for (size_t i = 0; i < w->n; i++) {
        struct write_msg *m = &w->msgs[i];
        if (m->reported && !m->err)
            continue;
        if (status == 0 || m->reported)
            fprintf(stderr, "csmetrics: %s '%s' not written to '%s': %s%s%s%s\n",
                    write_name(w->o.type), m->event_id, topic,
                    m->reported ? rd_kafka_err2str(m->err) : "no delivery report in time",
                    *last_error ? " (last kafka error: " : "", last_error, *last_error ? ")" : "");
        status = -1;
    }
    if (rd_kafka_outq_len(rk) > 0)
        rd_kafka_purge(rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_destroy(rk);
    return status;
fail_conf:
    fprintf(stderr, "csmetrics: cannot create kafka producer: %s\n", errstr);
    rd_kafka_conf_destroy(conf);
    return -1;
}

/* ---- options ---- */

static int write_parse(int argc, char **argv, struct write_opts *o)
{
    enum {
        O_SHOP = 256,
        O_AGENT,
        O_PERIOD,
        O_TS,
        O_EVENT_ID,
        O_FILE,
        O_BROKERS,
        O_ITEM,
        O_MAX,
        O_ROLE,
        O_REVIEWER,
        O_AMOUNT,
        O_TIMEOUT,
        O_JSON,
        O_DRY_RUN,
        O_HELP,
    };
    /* the options review and target share (one list, kept in one place) */
/* clang-format off */
#define WRITE_COMMON_OPTS \
    {.name = "shop", .has_arg = required_argument, .val = O_SHOP}, \
    {.name = "agent", .has_arg = required_argument, .val = O_AGENT}, \
    {.name = "period", .has_arg = required_argument, .val = O_PERIOD}, \
    {.name = "ts", .has_arg = required_argument, .val = O_TS}, \
    {.name = "event-id", .has_arg = required_argument, .val = O_EVENT_ID}, \
    {.name = "file", .has_arg = required_argument, .val = O_FILE}, \
    {.name = "brokers", .has_arg = required_argument, .val = O_BROKERS}, \
    {.name = "timeout", .has_arg = required_argument, .val = O_TIMEOUT}, \
    {.name = "json", .has_arg = no_argument, .val = O_JSON}, \
    {.name = "dry-run", .has_arg = no_argument, .val = O_DRY_RUN}, \
    {.name = "help", .has_arg = no_argument, .val = O_HELP},
    static const struct option review_opts[] = {
        WRITE_COMMON_OPTS
        {.name = "item", .has_arg = required_argument, .val = O_ITEM},
        {.name = "max", .has_arg = required_argument, .val = O_MAX},
        {.name = "role", .has_arg = required_argument, .val = O_ROLE},
        {.name = "reviewer", .has_arg = required_argument, .val = O_REVIEWER},
        {0},
    };
    static const struct option target_opts[] = {
        WRITE_COMMON_OPTS
        {.name = "amount", .has_arg = required_argument, .val = O_AMOUNT},
        {0},
    };
#undef WRITE_COMMON_OPTS
    /* clang-format on */
    const char *name = write_name(o->type);
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "h", o->type == EV_REVIEW ? review_opts : target_opts,
                            NULL)) != -1) {
        char *end;
        switch (c) {
        case O_SHOP:
            o->shop = optarg;
            break;
        case O_AGENT:
            o->agent = optarg;
            break;
        case O_PERIOD:
            o->period = optarg;
            break;
        case O_TS:
            o->ts = optarg;
            break;
        case O_EVENT_ID:
            o->event_id = optarg;
            break;
        case O_FILE:
            o->file = optarg;
            break;
        case O_BROKERS:
            o->brokers = optarg;
            break;
        case O_ITEM:
            if (o->nitems == WRITE_ITEMS_MAX) {
                fprintf(stderr, "csmetrics: at most %d --item\n", WRITE_ITEMS_MAX);
                return -1;
            }
            o->items[o->nitems++] = optarg;
            break;
        case O_MAX:
            o->max = optarg;
            break;
        case O_ROLE:
            o->role = optarg;
            break;
        case O_REVIEWER:
            o->reviewer = optarg;
            break;
        case O_AMOUNT:
            o->amount = optarg;
            break;
        case O_TIMEOUT:
            errno = 0;
            o->timeout_s = strtod(optarg, &end);
            if (errno || end == optarg || *end || !(o->timeout_s >= 0.1 && o->timeout_s <= 3600)) {
                fprintf(stderr, "csmetrics: --timeout wants seconds from 0.1 to 3600, not '%s'\n",
                        optarg);
                return -1;
            }
            break;
        case O_JSON:
            o->json = true;
            break;
        case O_DRY_RUN:
            o->dry_run = true;
            break;
        case 'h':
        case O_HELP:
            write_usage(o->type, stdout);
            return 1;
        default:
            fprintf(stderr, "csmetrics: %s: unknown option or missing value '%s'\n", name,
                    argv[optind - 1]);
            fprintf(stderr, "'csmetrics %s --help' lists the options\n", name);
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "csmetrics: %s: unexpected argument '%s'\n", name, argv[optind]);
        return -1;
    }
    const char *missing = NULL;
    if (o->file) {
        const char *given = o->shop       ? "--shop"
                            : o->agent    ? "--agent"
                            : o->period   ? "--period"
                            : o->ts       ? "--ts"
                            : o->event_id ? "--event-id"
                            : o->nitems   ? "--item"
                            : o->max      ? "--max"
                            : o->role     ? "--role"
                            : o->reviewer ? "--reviewer"
                            : o->amount   ? "--amount"
                                          : NULL;
        if (given) {
            fprintf(stderr,
                    "csmetrics: %s: --file and %s exclude each other (the file's events carry "
                    "their fields)\n",
                    name, given);
            return -1;
        }
    } else if (!o->agent) {
        missing = "--agent";
    } else if (o->type == EV_REVIEW && !o->role) {
        missing = "--role";
    } else if (o->type == EV_REVIEW && !o->nitems) {
        missing = "--item";
    } else if (o->type == EV_REVIEW && !o->reviewer &&
               (strcmp(o->role, "manager") == 0 || strcmp(o->role, "indirect_manager") == 0)) {
        missing = "--reviewer";
    } else if (o->type == EV_TARGET && !o->amount) {
        missing = "--amount";
    }
    if (missing) {
        fprintf(stderr, "csmetrics: %s: %s is required (see 'csmetrics %s --help')\n", name,
                missing, name);
        return -1;
    }
    return 0;
}

static int write_main(enum event_type type, int argc, char **argv, const char *config_path)
{
    struct write_run w = {.o = {.type = type, .timeout_s = 10}};
    int r = write_parse(argc, argv, &w.o);
    if (r != 0)
        return r > 0 ? 0 : 2;
    if (cli_load_config(&w.cfg, config_path) < 0) {
        config_release(&w.cfg);
        return 1;
    }
    int status = 1;
    if ((w.o.file ? write_from_file(&w) : write_from_options(&w)) < 0)
        goto out;
    int64_t now = clock_wall_ms();
    for (size_t i = 0; i < w.n; i++) {
        struct write_msg *m = &w.msgs[i];
        if (now > m->period_end_ms + w.cfg.lateness_ms &&
            (i == 0 || strcmp(m->period, w.msgs[i - 1].period) != 0))
            fprintf(stderr,
                    "csmetrics: warning: period %s ended more than lateness (%" PRId64
                    " s) ago; if csmetricsd has closed it, the event goes to the dead-letter "
                    "topic as late (a rule file may allow more lateness)\n",
                    m->period, w.cfg.lateness_ms / 1000);
    }
    if (w.o.dry_run) {
        for (size_t i = 0; i < w.n; i++)
            printf("%s\n", w.msgs[i].json.data);
        status = fflush(stdout) == 0 ? 0 : 1;
        goto out;
    }
    if (write_produce(&w) < 0)
        goto out;
    for (size_t i = 0; i < w.n; i++) {
        const struct write_msg *m = &w.msgs[i];
        if (w.o.json)
            printf("%s\n", m->json.data);
        else
            printf("%s %s written to %s partition %" PRId32 " offset %" PRId64 ": %s\n",
                   write_name(w.o.type), m->event_id, w.cfg.topic_reviews, m->partition, m->offset,
                   m->what);
    }
    status = fflush(stdout) == 0 ? 0 : 1;
out:
    write_release(&w);
    return status;
}

int cli_review(int argc, char **argv, const char *config_path)
{
    return write_main(EV_REVIEW, argc, argv, config_path);
}

int cli_target(int argc, char **argv, const char *config_path)
{
    return write_main(EV_TARGET, argc, argv, config_path);
}
