/* consumer — see consumer.h. */
#include "consumers/consumer.h"
#include "common/buf.h"
#include "common/clock.h"
#include "common/log.h"

#include <librdkafka/rdkafka_mock.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct consumer {
    rd_kafka_t *mock_rk; /* "embedded": owns the in-process mock cluster */
    rd_kafka_mock_cluster_t *mock;
    char *brokers;            /* effective bootstrap servers */
    rd_kafka_t *rk;           /* consumer */
    rd_kafka_t *prod;         /* producer */
    rd_kafka_topic_t *out[3]; /* its topics, held so their metadata is there at the first send */
    struct consumer_opts o;
    rd_kafka_topic_partition_list_t *pending; /* refused assignment, retried */
    int delivery_failures;
    uint64_t rebalances; /* bumped by every rebalance callback */
    /* Wall ms of librdkafka's "all brokers down" (0: none since the last proof of life: a
     * message, or a metadata answer to the probe consumer_poll sends once a second). */
    int64_t down_since_ms;
    int64_t next_probe_ms; /* monotonic */
};

static int consumer_set(rd_kafka_conf_t *conf, const char *k, const char *v, bool secret, char *err,
                        size_t errlen)
{
    char e[512];
    if (rd_kafka_conf_set(conf, k, v, e, sizeof(e)) != RD_KAFKA_CONF_OK) {
        /* librdkafka's message may quote the value: keep secrets out. */
        snprintf(err, errlen, "kafka.properties: '%s': %s", k,
                 secret ? "rejected by librdkafka" : e);
        return -1;
    }
    return 0;
}

static int consumer_do_assign(struct consumer *c, rd_kafka_topic_partition_list_t *parts)
{
    int64_t *offs = xcalloc((size_t)parts->cnt + 1, sizeof(*offs));
    if (c->o.on_assign && c->o.on_assign(c->o.ud, parts, offs) < 0) {
        free(offs);
        return -1;
    }
    for (int i = 0; i < parts->cnt; i++)
        parts->elems[i].offset = offs[i];
    free(offs);
    rd_kafka_resp_err_t e = rd_kafka_assign(c->rk, parts);
    if (e)
        log_msg(LOG_ERR, "kafka", "cannot assign partitions: %s", rd_kafka_err2str(e));
    return 0;
}

static void consumer_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                               rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    struct consumer *c = opaque;
    c->rebalances++;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        log_msg(LOG_INFO, "kafka", "partitions assigned count=%d", parts->cnt);
        if (c->pending) {
            rd_kafka_topic_partition_list_destroy(c->pending);
            c->pending = NULL;
        }
        if (consumer_do_assign(c, parts) < 0) {
            log_msg(LOG_WARN, "kafka", "assignment deferred: state store unavailable count=%d",
                    parts->cnt);
            c->pending = rd_kafka_topic_partition_list_copy(parts);
            rd_kafka_assign(rk, NULL);
        }
        return;
    }
    if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        log_msg(LOG_INFO, "kafka", "partitions revoked count=%d", parts->cnt);
        if (c->pending) {
            rd_kafka_topic_partition_list_destroy(c->pending);
            c->pending = NULL;
        }
        if (c->o.on_revoke)
            c->o.on_revoke(c->o.ud, parts);
        rd_kafka_assign(rk, NULL);
        return;
    }
    log_msg(LOG_ERR, "kafka", "rebalance error: %s", rd_kafka_err2str(err));
    rd_kafka_assign(rk, NULL);
}

bool consumer_assignment_pending(const struct consumer *c)
{
    return c->pending != NULL;
}

uint64_t consumer_rebalances(const struct consumer *c)
{
    return c->rebalances;
}

void consumer_retry_assignment(struct consumer *c)
{
    if (!c->pending)
        return;
    if (consumer_do_assign(c, c->pending) == 0) {
        log_msg(LOG_NOTICE, "kafka", "deferred assignment done count=%d", c->pending->cnt);
        rd_kafka_topic_partition_list_destroy(c->pending);
        c->pending = NULL;
    }
}

static void consumer_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    struct consumer *c = opaque;
    if (m->err) {
        c->delivery_failures++;
        log_msg(LOG_ERR, "kafka", "delivery failed topic=%s: %s", rd_kafka_topic_name(m->rkt),
                rd_kafka_err2str(m->err));
    }
}

/* librdkafka's client-wide errors, served by consumer_poll (the main queue is forwarded to
 * the consumer's); librdkafka logs each one itself (its "ERROR" lines). "All brokers down"
 * makes the daemon not ready until a broker answers again. */
static void consumer_error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    (void)rk;
    (void)reason;
    struct consumer *c = opaque;
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN && c->down_since_ms == 0) {
        log_msg(LOG_ERR, "kafka", "every broker down brokers=%s: not ready until one answers",
                c->brokers);
        c->down_since_ms = clock_wall_ms();
        c->next_probe_ms = clock_mono_ms() + 1000;
    }
}

/* A broker answered: the "all brokers down" state is over. */
static void consumer_alive(struct consumer *c)
{
    if (c->down_since_ms == 0)
        return;
    log_msg(LOG_NOTICE, "kafka", "brokers reachable again after %.1f s",
            (double)(clock_wall_ms() - c->down_since_ms) / 1000.0);
    c->down_since_ms = 0;
}

/* While every broker is down, asks one for metadata (200 ms at most) once a second: an
 * idle consumer gets no message to prove the brokers are back. Through the producer's
 * connections: on the consumer's, the request queues behind a long-polling Fetch. */
static void consumer_probe(struct consumer *c)
{
    if (c->down_since_ms == 0 || clock_mono_ms() < c->next_probe_ms)
        return;
    c->next_probe_ms = clock_mono_ms() + 1000;
    const struct rd_kafka_metadata *md = NULL;
    if (rd_kafka_metadata(c->prod, 0, NULL, &md, 200) == RD_KAFKA_RESP_ERR_NO_ERROR)
        consumer_alive(c);
    if (md)
        rd_kafka_metadata_destroy(md);
}

int64_t consumer_brokers_down_since(const struct consumer *c)
{
    return c->down_since_ms;
}

static void consumer_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    enum log_level l = level <= 3   ? LOG_ERR
                       : level == 4 ? LOG_WARN
                       : level <= 6 ? LOG_INFO
                                    : LOG_DEBUG;
    log_msg(l, "rdkafka", "%s: %s", fac, buf);
}

/* Consumer-only properties, not handed to the producer (librdkafka would warn). */
static bool consumer_only_property(const char *k)
{
    static const char *const prefixes[] = {"group.",
                                           "session.timeout.ms",
                                           "heartbeat.interval.ms",
                                           "auto.",
                                           "fetch.",
                                           "queued.",
                                           "enable.auto.",
                                           "max.poll.interval.ms",
                                           "partition.assignment.strategy",
                                           "isolation.level",
                                           "check.crcs",
                                           "coordinator.",
                                           "enable.partition.eof",
                                           "allow.auto.create.topics",
                                           "consume.callback.max.messages",
                                           "offset.store."};
    for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
        if (strncmp(k, prefixes[i], strlen(prefixes[i])) == 0)
            return true;
    return false;
}

static rd_kafka_conf_t *consumer_base_conf(const struct consumer *c, const struct csm_config *cfg,
                                           bool producer, char *err, size_t errlen)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (consumer_set(conf, "bootstrap.servers", c->brokers, false, err, errlen) < 0)
        goto fail;
    for (size_t i = 0; i < cfg->kafka_props_n; i++)
        if (!(producer && consumer_only_property(cfg->kafka_props[i].key)) &&
            consumer_set(conf, cfg->kafka_props[i].key, cfg->kafka_props[i].value,
                         cfg->kafka_props[i].secret, err, errlen) < 0)
            goto fail;
    rd_kafka_conf_set_log_cb(conf, consumer_log_cb);
    return conf;
fail:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

struct consumer *consumer_new(const struct consumer_opts *o, char *err, size_t errlen)
{
    const struct csm_config *cfg = o->cfg;
    struct consumer *c = xcalloc(1, sizeof(*c));
    c->o = *o;
    char e[512];
    if (strcmp(cfg->kafka_brokers, "embedded") == 0) {
        /* An in-process librdkafka mock cluster, reached over TCP like a real broker. */
        rd_kafka_conf_t *mconf = rd_kafka_conf_new();
        c->mock_rk = rd_kafka_new(RD_KAFKA_PRODUCER, mconf, e, sizeof(e));
        if (!c->mock_rk) {
            snprintf(err, errlen, "cannot create embedded kafka: %s", e);
            rd_kafka_conf_destroy(mconf);
            goto fail;
        }
        c->mock = rd_kafka_mock_cluster_new(c->mock_rk, 1);
        if (!c->mock) {
            snprintf(err, errlen, "cannot create embedded kafka mock cluster");
            goto fail;
        }
        const char *topics[] = {cfg->topic_chat,      cfg->topic_orders, cfg->topic_reviews,
                                cfg->topic_snapshots, cfg->topic_alerts, cfg->topic_deadletter};
        for (size_t i = 0; i < sizeof(topics) / sizeof(topics[0]); i++)
            rd_kafka_mock_topic_create(c->mock, topics[i], 4, 1);
        c->brokers = xstrdup(rd_kafka_mock_cluster_bootstraps(c->mock));
        log_msg(LOG_NOTICE, "kafka", "embedded kafka mock cluster bootstrap=%s", c->brokers);
    } else {
        c->brokers = xstrdup(cfg->kafka_brokers);
    }
    rd_kafka_conf_t *conf = consumer_base_conf(c, cfg, false, err, errlen);
    if (!conf)
        goto fail;
    static const struct {
        const char *k, *v;
    } fixed[] = {
        {.k = "enable.auto.commit", .v = "false"},
        {.k = "enable.auto.offset.store", .v = "false"},
        {.k = "partition.assignment.strategy", .v = "range"},
        {.k = "auto.offset.reset", .v = "earliest"},
        {.k = "enable.partition.eof", .v = "false"},
    };
    if (consumer_set(conf, "group.id", cfg->kafka_group_id, false, err, errlen) < 0)
        goto fail_conf;
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
        if (consumer_set(conf, fixed[i].k, fixed[i].v, false, err, errlen) < 0)
            goto fail_conf;
    /* A 2.0.2 consumer stalls ~1 s each time its queue passes queued.min.messages. */
    bool have_qmin = false;
    for (size_t i = 0; i < cfg->kafka_props_n; i++)
        if (strcmp(cfg->kafka_props[i].key, "queued.min.messages") == 0)
            have_qmin = true;
    if (!have_qmin && consumer_set(conf, "queued.min.messages", "1000000", false, err, errlen) < 0)
        goto fail_conf;
    rd_kafka_conf_set_rebalance_cb(conf, consumer_rebalance);
    rd_kafka_conf_set_error_cb(conf, consumer_error_cb);
    rd_kafka_conf_set_opaque(conf, c);
    c->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, e, sizeof(e));
    if (!c->rk) {
        snprintf(err, errlen, "cannot create kafka consumer: %s", e);
        goto fail_conf;
    }
    conf = NULL; /* owned by rk now */
    rd_kafka_poll_set_consumer(c->rk);

    rd_kafka_conf_t *pconf = consumer_base_conf(c, cfg, true, err, errlen);
    if (!pconf)
        goto fail;
    if (consumer_set(pconf, "linger.ms", "5", false, err, errlen) < 0 ||
        consumer_set(pconf, "enable.idempotence", "true", false, err, errlen) < 0) {
        rd_kafka_conf_destroy(pconf);
        goto fail;
    }
    rd_kafka_conf_set_dr_msg_cb(pconf, consumer_dr);
    rd_kafka_conf_set_opaque(pconf, c);
    c->prod = rd_kafka_new(RD_KAFKA_PRODUCER, pconf, e, sizeof(e));
    if (!c->prod) {
        snprintf(err, errlen, "cannot create kafka producer: %s", e);
        rd_kafka_conf_destroy(pconf);
        goto fail;
    }
    /* Without this, the first dead letter waited ~1 s for its topic's metadata. */
    const char *outs[] = {cfg->topic_deadletter, cfg->topic_snapshots, cfg->topic_alerts};
    for (int i = 0; i < 3; i++)
        c->out[i] = rd_kafka_topic_new(c->prod, outs[i], NULL);
    const char *topics[] = {cfg->topic_chat, cfg->topic_orders, cfg->topic_reviews};
    rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(3);
    for (int i = 0; i < 3; i++)
        rd_kafka_topic_partition_list_add(sub, topics[i], RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t se = rd_kafka_subscribe(c->rk, sub);
    rd_kafka_topic_partition_list_destroy(sub);
    if (se) {
        snprintf(err, errlen, "cannot subscribe: %s", rd_kafka_err2str(se));
        goto fail;
    }
    return c;
fail_conf:
    if (conf)
        rd_kafka_conf_destroy(conf);
fail:
    consumer_destroy(c);
    return NULL;
}

void consumer_destroy(struct consumer *c)
{
    if (!c)
        return;
    if (c->rk) {
        rd_kafka_consumer_close(c->rk); /* leave the group first, then destroy */
        rd_kafka_destroy(c->rk);
    }
    if (c->prod) {
        rd_kafka_flush(c->prod, 10000);
        for (int i = 0; i < 3; i++)
            if (c->out[i])
                rd_kafka_topic_destroy(c->out[i]);
        rd_kafka_destroy(c->prod);
    }
    if (c->pending)
        rd_kafka_topic_partition_list_destroy(c->pending);
    if (c->mock)
        rd_kafka_mock_cluster_destroy(c->mock);
    if (c->mock_rk)
        rd_kafka_destroy(c->mock_rk);
    free(c->brokers);
    free(c);
}

size_t consumer_poll(struct consumer *c, rd_kafka_message_t **msgs, size_t max, int max_wait_ms)
{
    size_t n = 0;
    int wait = max_wait_ms;
    while (n < max) {
        uint64_t gen = c->rebalances;
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c->rk, n == 0 ? wait : 0);
        if (c->rebalances != gen) {
            /* Messages polled before a rebalance belong to the old assignment: the new
             * one starts again from the offsets stored in Redis. */
            for (size_t i = 0; i < n; i++)
                rd_kafka_message_destroy(msgs[i]);
            n = 0;
        }
        if (!m)
            break;
        if (m->err) {
            if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                log_msg(LOG_WARN, "kafka", "consume error: %s", rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            continue;
        }
        msgs[n++] = m;
    }
    if (n > 0)
        consumer_alive(c);
    else
        consumer_probe(c);
    rd_kafka_poll(c->prod, 0);
    return n;
}

int consumer_produce(struct consumer *c, const char *topic, const void *key, size_t keylen,
                     const void *val, size_t len)
{
    for (int tries = 0; tries < 1000; tries++) {
        rd_kafka_resp_err_t e =
            rd_kafka_producev(c->prod, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY((void *)key, keylen),
                              RD_KAFKA_V_VALUE((void *)val, len),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
        if (!e)
            return 0;
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            log_msg(LOG_ERR, "kafka", "cannot produce to '%s': %s", topic, rd_kafka_err2str(e));
            return -1;
        }
        rd_kafka_poll(c->prod, 10);
    }
    return -1;
}

int consumer_flush(struct consumer *c, int timeout_ms)
{
    rd_kafka_resp_err_t e = rd_kafka_flush(c->prod, timeout_ms);
    int failed = c->delivery_failures;
    c->delivery_failures = 0;
    return e || failed ? -1 : 0;
}

int64_t consumer_high_watermark(struct consumer *c, const char *topic, int32_t part)
{
    int64_t lo = -1, hi = -1;
    if (rd_kafka_get_watermark_offsets(c->rk, topic, part, &lo, &hi))
        return -1;
    return hi;
}

int64_t consumer_log_start(struct consumer *c, const char *topic, int32_t part, int timeout_ms)
{
    int64_t lo = -1, hi = -1;
    if (rd_kafka_query_watermark_offsets(c->rk, topic, part, &lo, &hi, timeout_ms))
        return -1;
    return lo;
}

void consumer_pause_all(struct consumer *c, bool pause)
{
    rd_kafka_topic_partition_list_t *a = NULL;
    if (rd_kafka_assignment(c->rk, &a) || !a)
        return;
    if (pause)
        rd_kafka_pause_partitions(c->rk, a);
    else
        rd_kafka_resume_partitions(c->rk, a);
    rd_kafka_topic_partition_list_destroy(a);
}

int consumer_partition_count(struct consumer *c, const char *topic, int timeout_ms)
{
    rd_kafka_topic_t *t = rd_kafka_topic_new(c->rk, topic, NULL);
    if (!t)
        return -1;
    const struct rd_kafka_metadata *md = NULL;
    int n = -1;
    if (rd_kafka_metadata(c->rk, 0, t, &md, timeout_ms) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR)
        n = md->topics[0].partition_cnt;
    if (md)
        rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(t);
    return n;
}

rd_kafka_t *consumer_handle(struct consumer *c)
{
    return c->rk;
}
