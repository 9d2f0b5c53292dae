/* consume_only — the benchmark's baseline: the librdkafka high-level consumer reading the
 * daemon's three input topics with the daemon's own consumer settings (manual commits,
 * range assignment, earliest offsets, queued.min.messages raised), touching each message's
 * payload and doing nothing else. Prints one line of key=value facts on stdout:
 * assigned_ms (start to first assignment), first_ms, elapsed_ms (start to N consumed),
 * rate (N / (elapsed - assigned)), rate_total (N / elapsed), bytes.
 * usage: consume_only BROKERS GROUP N [TOPIC...] [-X key=value]...
 * Exits 0 when N messages were consumed, 1 on timeout (120 s without a message) or error. */
#include <librdkafka/rdkafka.h>

#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

struct state {
    int64_t t0, assigned_us;
};

static void rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t e, rd_kafka_topic_partition_list_t *parts,
                      void *opaque)
{
    struct state *s = opaque;
    if (e == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        if (!s->assigned_us)
            s->assigned_us = now_us();
        rd_kafka_assign(rk, parts);
    } else {
        rd_kafka_assign(rk, NULL);
    }
}

static int set(rd_kafka_conf_t *conf, const char *k, const char *v)
{
    char e[512];
    if (rd_kafka_conf_set(conf, k, v, e, sizeof(e)) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "consume_only: cannot set '%s': %s\n", k, e);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: consume_only BROKERS GROUP N [TOPIC...] [-X key=value]...\n");
        return 2;
    }
    struct state s = {.t0 = now_us()};
    long long want = strtoll(argv[3], NULL, 10);
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    /* The daemon's fixed settings (consumers/consumer.c) and the bench's properties. */
    static const struct {
        const char *k, *v;
    } fixed[] = {
        {.k = "enable.auto.commit", .v = "false"},
        {.k = "enable.auto.offset.store", .v = "false"},
        {.k = "partition.assignment.strategy", .v = "range"},
        {.k = "auto.offset.reset", .v = "earliest"},
        {.k = "enable.partition.eof", .v = "false"},
        {.k = "queued.min.messages", .v = "1000000"},
    };
    if (set(conf, "bootstrap.servers", argv[1]) < 0 || set(conf, "group.id", argv[2]) < 0)
        return 1;
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
        if (set(conf, fixed[i].k, fixed[i].v) < 0)
            return 1;
    rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(4);
    for (int i = 4; i < argc; i++) {
        if (strcmp(argv[i], "-X") == 0 && i + 1 < argc) {
            char *kv = argv[++i], *eq = strchr(kv, '=');
            if (!eq) {
                fprintf(stderr, "consume_only: -X wants key=value, got '%s'\n", kv);
                return 2;
            }
            *eq = '\0';
            if (set(conf, kv, eq + 1) < 0)
                return 1;
        } else {
            rd_kafka_topic_partition_list_add(sub, argv[i], RD_KAFKA_PARTITION_UA);
        }
    }
    if (sub->cnt == 0) {
        const char *def[] = {"cs.chat", "shop.orders", "cs.reviews"};
        for (int i = 0; i < 3; i++)
            rd_kafka_topic_partition_list_add(sub, def[i], RD_KAFKA_PARTITION_UA);
    }
    rd_kafka_conf_set_rebalance_cb(conf, rebalance);
    rd_kafka_conf_set_opaque(conf, &s);
    char e[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, e, sizeof(e));
    if (!rk) {
        fprintf(stderr, "consume_only: cannot create consumer: %s\n", e);
        return 1;
    }
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_resp_err_t se = rd_kafka_subscribe(rk, sub);
    rd_kafka_topic_partition_list_destroy(sub);
    if (se) {
        fprintf(stderr, "consume_only: cannot subscribe: %s\n", rd_kafka_err2str(se));
        return 1;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    long long n = 0, bytes = 0;
    unsigned sum = 0; /* touch the payload so its pages are really read */
    int64_t first = 0, last_msg = now_us();
    while (n < want && !stop) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (!m) {
            if (now_us() - last_msg > 120 * 1000000LL) {
                fprintf(stderr, "consume_only: no message for 120 s after %lld of %lld\n", n, want);
                break;
            }
            continue;
        }
        if (!m->err) {
            if (!first)
                first = now_us();
            n++;
            bytes += (long long)m->len;
            if (m->len)
                sum += ((const unsigned char *)m->payload)[m->len - 1];
            last_msg = now_us();
        } else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            fprintf(stderr, "consume_only: %s\n", rd_kafka_message_errstr(m));
        }
        rd_kafka_message_destroy(m);
    }
    int64_t end = now_us();
    double el = (double)(end - s.t0) / 1e6, from_assign = (double)(end - s.assigned_us) / 1e6;
    printf("consumed=%lld assigned_ms=%.0f first_ms=%.0f elapsed_ms=%.0f rate=%.0f "
           "rate_total=%.0f bytes=%lld check=%u\n",
           n, (double)(s.assigned_us - s.t0) / 1e3, first ? (double)(first - s.t0) / 1e3 : -1.0,
           el * 1e3, s.assigned_us ? (double)n / from_assign : 0.0, (double)n / el, bytes, sum);
    fflush(stdout);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return n == want ? 0 : 1;
}
