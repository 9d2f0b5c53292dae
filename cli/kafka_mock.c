/* kafka_mock — `csmetrics kafka-mock`: a local Kafka for demos and tests, served by
 * librdkafka's mock cluster (the real Kafka protocol over TCP on 127.0.0.1, ephemeral
 * ports). Runs in the foreground until SIGTERM/SIGINT; the bootstrap address goes to
 * stdout and, written atomically (tmp + rename), to --bootstrap-file, which is removed
 * again on exit. Nothing is persisted: all data lives in this process. With --control, fault
 * injection commands (broker down/up, coordinator moves, request errors, latency, leaders) are
 * read one a line from stdin or a FIFO and answered on stdout (the fault suite drives it). */
#include "cli/cli.h"
#include "common/buf.h"
#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

static volatile sig_atomic_t kafka_mock_stop;

static void kafka_mock_on_signal(int sig)
{
    (void)sig;
    kafka_mock_stop = 1;
}

static const char *const kafka_mock_default_topics[] = {
    "cs.chat", "shop.orders", "cs.reviews", "cs.snapshots", "cs.alerts", "cs.deadletter",
};

static void kafka_mock_usage(FILE *out)
{
    fprintf(out,
            "usage: csmetrics kafka-mock [--brokers N] [--partitions N] [--bootstrap-file F]\n"
            "                            [--topics a,b,c] [--control -|FIFO]\n"
            "\n"
            "Runs a local Kafka (librdkafka's mock cluster) in the foreground until SIGTERM or\n"
            "SIGINT. Prints 'kafka-mock: bootstrap HOST:PORT[,HOST:PORT...]' on stdout.\n"
            "\n"
            "  --brokers N          mock brokers, 1..16 (default 1)\n"
            "  --partitions N       partitions per topic, 1..1000 (default 4)\n"
            "  --bootstrap-file F   also write the bootstrap list to F (atomically: F.tmp +\n"
            "                       rename); F is removed on exit\n"
            "  --topics a,b,c       topics to create instead of the six defaults: cs.chat,\n"
            "                       shop.orders, cs.reviews, cs.snapshots, cs.alerts,\n"
            "                       cs.deadletter (other topics are auto-created on first\n"
            "                       use with 4 partitions)\n"
            "  --control -|FIFO     read fault-injection commands, one a line, from stdin (-) or\n"
            "                       from the named pipe FIFO (created if missing, removed on exit\n"
            "                       if created); each is answered on stdout with one line,\n"
            "                       'ok LINE' or 'error LINE: why'\n"
            "\n"
            "Control commands (brokers are numbered 1..N):\n"
            "  broker-down ID            close the broker's connections and refuse new ones\n"
            "  broker-up ID              accept connections again\n"
            "  rtt ID MS                 delay every response of the broker by MS ms (0: off)\n"
            "  coordinator GROUP ID      make broker ID the coordinator of consumer group GROUP\n"
            "  txn-coordinator TXID ID   the same for a transactional id\n"
            "  leader TOPIC PART ID      move the partition's leader to broker ID (-1: none)\n"
            "  errors API CODE N         the next N requests of API (name or number: Fetch,\n"
            "                            Produce, ListOffsets, Metadata, OffsetCommit,\n"
            "                            OffsetFetch, FindCoordinator, JoinGroup, Heartbeat,\n"
            "                            LeaveGroup, SyncGroup, ...), on any broker, fail with\n"
            "                            CODE (Kafka error name or number, e.g.\n"
            "                            NOT_COORDINATOR, REQUEST_TIMED_OUT, 16)\n"
            "  errors-clear API          drop the errors still queued for API\n"
            "  topic-error TOPIC CODE    metadata reports CODE for TOPIC (NO_ERROR: clear)\n"
            "  stop                      shut down as on SIGTERM\n"
            "Blank lines and lines starting with # are ignored. End of input on stdin stops\n"
            "reading commands (the cluster keeps running).\n"
            "\n"
            "Limits of the mock (librdkafka 2.0.2), know them before you trust a result:\n"
            "  - memory only; ports are ephemeral, so read the bootstrap address each run;\n"
            "  - each partition keeps only about 5 MiB or 100000 message batches; older data\n"
            "    is dropped silently (the log start offset moves), so a consumer that starts\n"
            "    late may miss the beginning. Use more --partitions for big simulations;\n"
            "  - the group coordinator completes a group's first join after about 3 s, and a\n"
            "    consumer that dies without leaving holds its partitions until its\n"
            "    session.timeout.ms expires; consumers should use a short session timeout\n"
            "    (e.g. session.timeout.ms=6000) to rebalance quickly;\n"
            "  - no authentication, no TLS, no transactions worth testing.\n");
}

/* Parses a decimal int in [min, max]; 0 or -1 with a message on stderr. */
static int kafka_mock_parse_int(const char *opt, const char *s, long min, long max, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max) {
        fprintf(stderr, "kafka-mock: invalid %s '%s': want an integer %ld..%ld\n", opt, s, min,
                max);
        return -1;
    }
    *out = (int)v;
    return 0;
}

/* Writes `text` to `path` through a temporary file and rename(2), so a reader polling
 * for `path` never sees a partial address. */
static int kafka_mock_write_file(const char *path, const char *text, char *err, size_t errlen)
{
    struct buf tmp;
    buf_init(&tmp);
    buf_printf(&tmp, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp.data, "w");
    if (!f) {
        snprintf(err, errlen, "cannot open '%s': %s", tmp.data, strerror(errno));
        buf_release(&tmp);
        return -1;
    }
    bool ok = fprintf(f, "%s\n", text) >= 0;
    ok = (fflush(f) == 0) && ok;
    int saved = errno;
    if (fclose(f) != 0 && ok) {
        ok = false;
        saved = errno;
    }
    if (!ok) {
        snprintf(err, errlen, "cannot write '%s': %s", tmp.data, strerror(saved));
        unlink(tmp.data);
        buf_release(&tmp);
        return -1;
    }
    if (rename(tmp.data, path) != 0) {
        snprintf(err, errlen, "cannot rename '%s' to '%s': %s", tmp.data, path, strerror(errno));
        unlink(tmp.data);
        buf_release(&tmp);
        return -1;
    }
    buf_release(&tmp);
    return 0;
}

static void kafka_mock_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *msg)
{
    (void)rk;
    /* The hosting handle has no brokers of its own by design; that warning is noise. */
    if (strcmp(fac, "CONFWARN") == 0 && strstr(msg, "bootstrap.servers"))
        return;
    enum log_level l = level <= 3   ? LOG_ERR
                       : level == 4 ? LOG_WARN
                       : level == 5 ? LOG_NOTICE
                       : level == 6 ? LOG_INFO
                                    : LOG_DEBUG;
    log_msg(l, "kafka-mock", "rdkafka %s: %s", fac, msg);
}

/* Creates each comma-separated topic of `list` (or the defaults when NULL). */
static int kafka_mock_create_topics(rd_kafka_mock_cluster_t *mc, const char *list, int partitions,
                                    int replication)
{
    size_t ndefault = sizeof(kafka_mock_default_topics) / sizeof(kafka_mock_default_topics[0]);
    if (!list) {
        for (size_t i = 0; i < ndefault; i++) {
            rd_kafka_resp_err_t e = rd_kafka_mock_topic_create(mc, kafka_mock_default_topics[i],
                                                               partitions, replication);
            if (e) {
                fprintf(stderr, "kafka-mock: cannot create topic '%s': %s\n",
                        kafka_mock_default_topics[i], rd_kafka_err2str(e));
                return -1;
            }
        }
        return 0;
    }
    char *copy = xstrdup(list);
    int rc = 0;
    char *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        rd_kafka_resp_err_t e = rd_kafka_mock_topic_create(mc, t, partitions, replication);
        if (e) {
            fprintf(stderr, "kafka-mock: cannot create topic '%s': %s\n", t, rd_kafka_err2str(e));
            rc = -1;
            break;
        }
    }
    free(copy);
    return rc;
}

/* ---- --control: fault injection ---- */

static const struct {
    const char *name;
    int16_t key;
} kafka_mock_apis[] = {
    {"Produce", 0},          {"Fetch", 1},
    {"ListOffsets", 2},      {"Metadata", 3},
    {"OffsetCommit", 8},     {"OffsetFetch", 9},
    {"FindCoordinator", 10}, {"JoinGroup", 11},
    {"Heartbeat", 12},       {"LeaveGroup", 13},
    {"SyncGroup", 14},       {"DescribeGroups", 15},
    {"ListGroups", 16},      {"ApiVersions", 18},
    {"InitProducerId", 22},  {"AddPartitionsToTxn", 24},
    {"AddOffsetsToTxn", 25}, {"EndTxn", 26},
    {"TxnOffsetCommit", 28},
};

static int kafka_mock_parse_api(const char *s, int16_t *out)
{
    for (size_t i = 0; i < sizeof(kafka_mock_apis) / sizeof(kafka_mock_apis[0]); i++)
        if (strcasecmp(s, kafka_mock_apis[i].name) == 0) {
            *out = kafka_mock_apis[i].key;
            return 0;
        }
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < 0 || v > INT16_MAX)
        return -1;
    *out = (int16_t)v;
    return 0;
}

/* A Kafka error by librdkafka's name (NOT_COORDINATOR, with or without the
 * RD_KAFKA_RESP_ERR_ prefix) or by number. */
static int kafka_mock_parse_err(const char *s, rd_kafka_resp_err_t *out)
{
    const char *name = strncmp(s, "RD_KAFKA_RESP_ERR_", 18) == 0 ? s + 18 : s;
    const struct rd_kafka_err_desc *descs;
    size_t n;
    rd_kafka_get_err_descs(&descs, &n);
    for (size_t i = 0; i < n; i++)
        if (descs[i].name && strcasecmp(descs[i].name, name) == 0) {
            *out = descs[i].code;
            return 0;
        }
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < -200 || v > 1000)
        return -1;
    *out = (rd_kafka_resp_err_t)v;
    return 0;
}

static int kafka_mock_parse_i32(const char *s, long min, long max, int32_t *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max)
        return -1;
    *out = (int32_t)v;
    return 0;
}

/* Runs one control line; the answer (without newline) goes to `why` on error. 0/-1. */
static int kafka_mock_command(rd_kafka_mock_cluster_t *mc, char *line, char *why, size_t whylen)
{
    char *av[8];
    int ac = 0;
    char *save = NULL;
    for (char *t = strtok_r(line, " \t\r", &save); t && ac < 8; t = strtok_r(NULL, " \t\r", &save))
        av[ac++] = t;
    if (ac == 0)
        return 0;
    rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR_NO_ERROR;
    int32_t id = 0, part = 0, ms = 0, n = 0;
    int16_t api = 0;
    rd_kafka_resp_err_t code = RD_KAFKA_RESP_ERR_NO_ERROR;
#define KM_WANT(cnt, usage)                                                                        \
    do {                                                                                           \
        if (ac != (cnt)) {                                                                         \
            snprintf(why, whylen, "usage: %s", usage);                                             \
            return -1;                                                                             \
        }                                                                                          \
    } while (0)
#define KM_BAD(what, arg)                                                                          \
    do {                                                                                           \
        snprintf(why, whylen, "invalid %s '%s'", what, arg);                                       \
        return -1;                                                                                 \
    } while (0)
    const char *cmd = av[0];
    if (strcmp(cmd, "broker-down") == 0 || strcmp(cmd, "broker-up") == 0) {
        KM_WANT(2, "broker-down|broker-up ID");
        if (kafka_mock_parse_i32(av[1], 0, INT32_MAX, &id) < 0)
            KM_BAD("broker id", av[1]);
        e = cmd[7] == 'd' ? rd_kafka_mock_broker_set_down(mc, id)
                          : rd_kafka_mock_broker_set_up(mc, id);
    } else if (strcmp(cmd, "rtt") == 0) {
        KM_WANT(3, "rtt ID MS");
        if (kafka_mock_parse_i32(av[1], 0, INT32_MAX, &id) < 0)
            KM_BAD("broker id", av[1]);
        if (kafka_mock_parse_i32(av[2], 0, 3600000, &ms) < 0)
            KM_BAD("milliseconds", av[2]);
        e = rd_kafka_mock_broker_set_rtt(mc, id, ms);
    } else if (strcmp(cmd, "coordinator") == 0 || strcmp(cmd, "txn-coordinator") == 0) {
        KM_WANT(3, "coordinator GROUP ID | txn-coordinator TXID ID");
        if (kafka_mock_parse_i32(av[2], 0, INT32_MAX, &id) < 0)
            KM_BAD("broker id", av[2]);
        e = rd_kafka_mock_coordinator_set(mc, cmd[0] == 'c' ? "group" : "transaction", av[1], id);
    } else if (strcmp(cmd, "leader") == 0) {
        KM_WANT(4, "leader TOPIC PART ID");
        if (kafka_mock_parse_i32(av[2], 0, INT32_MAX, &part) < 0)
            KM_BAD("partition", av[2]);
        if (kafka_mock_parse_i32(av[3], -1, INT32_MAX, &id) < 0)
            KM_BAD("broker id", av[3]);
        e = rd_kafka_mock_partition_set_leader(mc, av[1], part, id);
    } else if (strcmp(cmd, "errors") == 0) {
        KM_WANT(4, "errors API CODE N");
        if (kafka_mock_parse_api(av[1], &api) < 0)
            KM_BAD("api", av[1]);
        if (kafka_mock_parse_err(av[2], &code) < 0)
            KM_BAD("error code", av[2]);
        if (kafka_mock_parse_i32(av[3], 1, 100000, &n) < 0)
            KM_BAD("count", av[3]);
        rd_kafka_resp_err_t *codes = xcalloc((size_t)n, sizeof(*codes));
        for (int32_t i = 0; i < n; i++)
            codes[i] = code;
        rd_kafka_mock_push_request_errors_array(mc, api, (size_t)n, codes);
        free(codes);
    } else if (strcmp(cmd, "errors-clear") == 0) {
        KM_WANT(2, "errors-clear API");
        if (kafka_mock_parse_api(av[1], &api) < 0)
            KM_BAD("api", av[1]);
        rd_kafka_mock_clear_request_errors(mc, api);
    } else if (strcmp(cmd, "topic-error") == 0) {
        KM_WANT(3, "topic-error TOPIC CODE");
        if (kafka_mock_parse_err(av[2], &code) < 0)
            KM_BAD("error code", av[2]);
        rd_kafka_mock_topic_set_error(mc, av[1], code);
    } else if (strcmp(cmd, "stop") == 0) {
        KM_WANT(1, "stop");
        kafka_mock_stop = 1;
    } else {
        snprintf(why, whylen, "unknown command '%s' (see --help)", cmd);
        return -1;
    }
#undef KM_WANT
#undef KM_BAD
    if (e) {
        snprintf(why, whylen, "%s", rd_kafka_err2str(e));
        return -1;
    }
    return 0;
}

struct kafka_mock_control {
    int fd;          /* -1: not reading */
    char *fifo;      /* created by us: removed on exit */
    struct buf line; /* a partial line */
};

/* Opens the command source: "-" is stdin; a path is a FIFO, created when missing and
 * opened read-write so that writers coming and going never make it reach end of file. */
static int kafka_mock_control_open(struct kafka_mock_control *ctl, const char *src)
{
    buf_init(&ctl->line);
    ctl->fd = -1;
    ctl->fifo = NULL;
    if (strcmp(src, "-") == 0) {
        ctl->fd = STDIN_FILENO;
        return 0;
    }
    struct stat st;
    if (stat(src, &st) != 0) {
        if (mkfifo(src, 0600) != 0) {
            fprintf(stderr, "kafka-mock: cannot create fifo '%s': %s\n", src, strerror(errno));
            return -1;
        }
        ctl->fifo = xstrdup(src);
    } else if (!S_ISFIFO(st.st_mode)) {
        fprintf(stderr, "kafka-mock: '%s' is not a fifo\n", src);
        return -1;
    }
    ctl->fd = open(src, O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (ctl->fd < 0) {
        fprintf(stderr, "kafka-mock: cannot open fifo '%s': %s\n", src, strerror(errno));
        return -1;
    }
    return 0;
}

static void kafka_mock_control_close(struct kafka_mock_control *ctl)
{
    if (ctl->fd > STDIN_FILENO)
        close(ctl->fd);
    if (ctl->fifo)
        unlink(ctl->fifo);
    free(ctl->fifo);
    buf_release(&ctl->line);
}

/* Reads what is there and runs every complete line. */
static void kafka_mock_control_read(struct kafka_mock_control *ctl, rd_kafka_mock_cluster_t *mc)
{
    char chunk[4096];
    ssize_t got = read(ctl->fd, chunk, sizeof(chunk));
    if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR)) {
        log_msg(LOG_NOTICE, "kafka-mock", "control input closed; no more commands are read");
        ctl->fd = -1;
        return;
    }
    if (got < 0)
        return;
    buf_add(&ctl->line, chunk, (size_t)got);
    char *start = ctl->line.data;
    char *nl;
    while ((nl = memchr(start, '\n', ctl->line.len - (size_t)(start - ctl->line.data)))) {
        *nl = '\0';
        char *text = xstrdup(start);
        char *p = start + strspn(start, " \t\r");
        if (*p && *p != '#') {
            char why[300] = "";
            int rc = kafka_mock_command(mc, p, why, sizeof(why));
            if (rc == 0) {
                printf("ok %s\n", text);
                log_msg(LOG_NOTICE, "kafka-mock", "control: %s", text);
            } else {
                printf("error %s: %s\n", text, why);
                log_msg(LOG_WARN, "kafka-mock", "control: %s: %s", text, why);
            }
            fflush(stdout);
        }
        free(text);
        start = nl + 1;
    }
    size_t rest = ctl->line.len - (size_t)(start - ctl->line.data);
    memmove(ctl->line.data, start, rest);
    ctl->line.len = rest;
}

int cli_kafka_mock(int argc, char **argv, const char *config_path)
{
    (void)config_path; /* topics come from --topics; the mock needs no configuration */
    static const struct option longopts[] = {
        {.name = "brokers", .has_arg = required_argument, .val = 'b'},
        {.name = "partitions", .has_arg = required_argument, .val = 'p'},
        {.name = "bootstrap-file", .has_arg = required_argument, .val = 'f'},
        {.name = "topics", .has_arg = required_argument, .val = 't'},
        {.name = "control", .has_arg = required_argument, .val = 'c'},
        {.name = "help", .has_arg = no_argument, .val = 'h'},
        {0},
    };
    int brokers = 1, partitions = 4;
    const char *bootstrap_file = NULL, *topics = NULL, *control = NULL;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'b':
            if (kafka_mock_parse_int("--brokers", optarg, 1, 16, &brokers) != 0)
                return 2;
            break;
        case 'p':
            if (kafka_mock_parse_int("--partitions", optarg, 1, 1000, &partitions) != 0)
                return 2;
            break;
        case 'f':
            bootstrap_file = optarg;
            break;
        case 't':
            topics = optarg;
            if (!*topics || strspn(topics, ",") == strlen(topics)) {
                fprintf(stderr, "kafka-mock: invalid --topics '%s': want a,b,c\n", topics);
                return 2;
            }
            break;
        case 'c':
            control = optarg;
            break;
        case 'h':
            kafka_mock_usage(stdout);
            return 0;
        default:
            fprintf(stderr, "kafka-mock: unknown or incomplete option '%s'\n", argv[optind - 1]);
            kafka_mock_usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "kafka-mock: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }

    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set_log_cb(conf, kafka_mock_log_cb);
    /* The handle only hosts the mock cluster; it never connects anywhere itself. */
    if (rd_kafka_conf_set(conf, "client.id", "csmetrics-kafka-mock", errstr, sizeof(errstr)) !=
        RD_KAFKA_CONF_OK) {
        fprintf(stderr, "kafka-mock: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        return 1;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!rk) {
        fprintf(stderr, "kafka-mock: cannot create kafka handle: %s\n", errstr);
        rd_kafka_conf_destroy(conf); /* not taken over on failure */
        return 1;
    }
    conf = NULL; /* owned by rk now */

    int rc = 1;
    rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, brokers);
    if (!mc) {
        fprintf(stderr, "kafka-mock: cannot create mock cluster with %d broker(s)\n", brokers);
        goto out_destroy_rk;
    }
    if (kafka_mock_create_topics(mc, topics, partitions, brokers < 3 ? brokers : 3) != 0)
        goto out_destroy_mc;

    const char *bootstraps = rd_kafka_mock_cluster_bootstraps(mc);
    struct sigaction sa = {.sa_handler = kafka_mock_on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    if (bootstrap_file) {
        char err[512];
        if (kafka_mock_write_file(bootstrap_file, bootstraps, err, sizeof(err)) != 0) {
            fprintf(stderr, "kafka-mock: %s\n", err);
            goto out_destroy_mc;
        }
    }
    printf("kafka-mock: bootstrap %s\n", bootstraps);
    fflush(stdout);
    log_msg(LOG_INFO, "kafka-mock", "mock cluster up brokers=%d partitions=%d topics=%s", brokers,
            partitions, topics ? topics : "defaults");

    struct kafka_mock_control ctl = {.fd = -1};
    if (control && kafka_mock_control_open(&ctl, control) != 0) {
        kafka_mock_control_close(&ctl);
        goto out_unlink;
    }
    while (!kafka_mock_stop) {
        if (ctl.fd >= 0) {
            struct pollfd pfd = {.fd = ctl.fd, .events = POLLIN};
            if (poll(&pfd, 1, 200) > 0)
                kafka_mock_control_read(&ctl, mc);
            rd_kafka_poll(rk, 0);
        } else {
            rd_kafka_poll(rk, 200); /* serves the log callback; the mock runs in its own thread */
        }
    }
    kafka_mock_control_close(&ctl);

    log_msg(LOG_INFO, "kafka-mock", "shutting down");
    rc = 0;
out_unlink:
    if (bootstrap_file && unlink(bootstrap_file) != 0 && errno != ENOENT)
        log_msg(LOG_WARN, "kafka-mock", "cannot remove '%s': %s", bootstrap_file, strerror(errno));
out_destroy_mc:
    rd_kafka_mock_cluster_destroy(mc);
out_destroy_rk:
    rd_kafka_destroy(rk);
    return rc;
}
