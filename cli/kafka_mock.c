/* kafka_mock — `csmetrics kafka-mock`: a local Kafka for demos and tests, served by
 * librdkafka's mock cluster (the real Kafka protocol over TCP on 127.0.0.1, ephemeral
 * ports). Runs in the foreground until SIGTERM/SIGINT; the bootstrap address goes to
 * stdout and, written atomically (tmp + rename), to --bootstrap-file, which is removed
 * again on exit. Nothing is persisted: all data lives in this process. */
#include "cli/cli.h"
#include "common/buf.h"
#include "common/log.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
            "                            [--topics a,b,c]\n"
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

int cli_kafka_mock(int argc, char **argv, const char *config_path)
{
    (void)config_path; /* topics come from --topics; the mock needs no configuration */
    static const struct option longopts[] = {
        {.name = "brokers", .has_arg = required_argument, .val = 'b'},
        {.name = "partitions", .has_arg = required_argument, .val = 'p'},
        {.name = "bootstrap-file", .has_arg = required_argument, .val = 'f'},
        {.name = "topics", .has_arg = required_argument, .val = 't'},
        {.name = "help", .has_arg = no_argument, .val = 'h'},
        {0},
    };
    int brokers = 1, partitions = 4;
    const char *bootstrap_file = NULL, *topics = NULL;
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

    while (!kafka_mock_stop)
        rd_kafka_poll(rk, 200); /* serves the log callback; the mock runs in its own thread */

    log_msg(LOG_INFO, "kafka-mock", "signal received, shutting down");
    if (bootstrap_file && unlink(bootstrap_file) != 0 && errno != ENOENT)
        log_msg(LOG_WARN, "kafka-mock", "cannot remove '%s': %s", bootstrap_file, strerror(errno));
    rc = 0;
out_destroy_mc:
    rd_kafka_mock_cluster_destroy(mc);
out_destroy_rk:
    rd_kafka_destroy(rk);
    return rc;
}
