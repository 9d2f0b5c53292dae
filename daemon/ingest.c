/* ingest — see ingest.h. One batch: decode every message (bad ones to the dead-letter
 * topic), claim event ids (duplicates skipped), read the global watermark, run each
 * partition's events through agg, attribute due orders, flush dead letters, then
 * commit each partition (store_commit_batches). Any Redis failure drops every
 * in-memory partition cache and re-reads the partitions from the offsets stored in
 * Redis: memory is only ever a cache of what Redis holds.
 *
 * Two batches overlap: the committer thread commits batch k on its own Redis connection
 * while the main thread polls, decodes, claims and aggregates batch k+1; the main thread
 * joins it before anything that needs batch k in Redis (attribution reads contacts) and
 * before handing over batch k+1. Only committed watermarks are published, and a batch is
 * judged late against the close watermark read at its own start, which is the one the
 * rules engine closes periods by until the next batch: a period never closes while an
 * event accepted into it is still on its way to Redis. */
#include "daemon/ingest.h"
#include "aggregator/agg.h"
#include "aggregator/keys.h"
#include "aggregator/kpi.h"
#include "common/buf.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/map.h"
#include "consumers/consumer.h"
#include "consumers/decode.h"
#include "daemon/rconn.h"
#include "daemon/retention.h"
#include "daemon/store.h"

#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct part {
    char name[300]; /* "topic:partition" */
    char *topic;
    int32_t number;
    enum event_topic kind;
    struct agg_part *agg;
    struct delta *delta;
    struct map *registered; /* agg_ctx.registered of delta */
    /* the other pair of buffers: the committer's while a commit is in flight */
    struct delta *spare;
    struct map *spare_registered;
    int64_t committed; /* next offset to read as stored in Redis; -1 none */
    uint64_t seq;
    int64_t next;             /* offset after the last message processed in this batch */
    int64_t wm_ms;            /* largest ts delivered */
    int64_t wm_committed_ms;  /* largest ts committed: the one published (csm_wm) */
    int64_t last_delivery_ms; /* wall */
    int64_t attributed_ms; /* orders: global watermark its orders are attributed up to; -1 others */
    int64_t attributing_ms; /* the global watermark of the attribution pass being committed */
    uint64_t sweep_cursor;  /* HSCAN cursor of the garbage collection of its state records */
    /* Leases (agg_ctx.lease_ms; 0 none): the first close of the periods written by the batch
     * being built, and by the one with the committer. Published with the watermark. */
    int64_t lease_next, lease_inflight;
    /* The watermark last published for it as busy (0: published idle, or not yet): the
     * close cannot pass it until the next publication, so a lease above it can wait. */
    int64_t pub_bound;
    bool fresh; /* no message read since its assignment or a seek */
    bool touched;
};

struct ingest {
    const struct csm_config *cfg;
    struct rconn *rc;
    struct store *st;
    struct consumer *kc;
    struct agg_conf aconf;
    struct map *parts; /* name -> struct part */
    struct ingest_stats stats;
    bool redis_ok, resync;
    struct log_complaint redis_complaint;
    int64_t retry_at_ms, retry_delay_ms; /* Redis reconnection back-off (monotonic) */
    int64_t next_sweep_ms, next_retention_ms;
    const struct rule_set *rules; /* borrowed: the running rule set (ingest_set_rules) */
    struct retention_stats retention;
    int64_t next_tick_ms;
    rd_kafka_message_t **msgs;
    struct map *live; /* "tag\x1flabel" of figures changed since the last live refresh */
    /* The committer thread (one batch at a time) and its own connection. */
    struct rconn *crc;
    struct store *cst;
    struct delta *merged;
    pthread_t committer;
    bool inflight;
    struct metrics_hist commit_latency; /* crc's, copied at each join */
    struct commit_job *job;
    uint64_t dl_published[DL_REASON_COUNT]; /* dead letters already counted in Redis */
    bool fatal;
    int64_t partitions_at_ms; /* next look at the input topics' partitions (monotonic) */
    bool partitions_warned;   /* said once that they could not be read */
};

static void ingest_join(struct ingest *in);

static enum event_topic ingest_topic_kind(const struct ingest *in, const char *topic)
{
    if (strcmp(topic, in->cfg->topic_chat) == 0)
        return TOPIC_CHAT;
    if (strcmp(topic, in->cfg->topic_orders) == 0)
        return TOPIC_ORDERS;
    return TOPIC_REVIEWS;
}

static void part_free(struct part *p)
{
    if (!p)
        return;
    agg_part_destroy(p->agg);
    delta_destroy(p->delta);
    map_destroy(p->registered);
    delta_destroy(p->spare);
    map_destroy(p->spare_registered);
    free(p->topic);
    free(p);
}

struct ingest *ingest_new(const struct csm_config *cfg, char *err, size_t errlen)
{
    struct ingest *in = xcalloc(1, sizeof(*in));
    in->cfg = cfg;
    struct rconn_opts ro = {
        .url = cfg->redis_url,
        .password = cfg->redis_password,
        .function_lib = store_lua_library,
    };
    in->rc = rconn_new(&ro, err, errlen);
    if (!in->rc) {
        free(in);
        return NULL;
    }
    in->st = store_new(in->rc, cfg->redis_key_prefix);
    in->crc = rconn_new(&ro, err, errlen);
    if (!in->crc) {
        store_destroy(in->st);
        rconn_destroy(in->rc);
        free(in);
        return NULL;
    }
    in->cst = store_new(in->crc, cfg->redis_key_prefix);
    in->merged = delta_new();
    in->parts = map_new();
    in->live = map_new();
    in->aconf = (struct agg_conf){
        .prefix = cfg->redis_key_prefix,
        .lateness_ms = cfg->lateness_ms,
        .attribution_window_ms = cfg->attribution_window_ms,
        .orphan_ms = cfg->dedup_window_ms,
        .conv_retention_ms = cfg->conv_retention_ms,
        .order_retention_ms = cfg->order_retention_ms,
    };
    for (int k = 0; k < PERIOD_KIND_COUNT; k++) {
        in->aconf.kinds[k] = cfg->periods[k];
        in->aconf.accept_ms[k] = cfg->lateness_ms;
    }
    in->msgs = xcalloc((size_t)cfg->batch_max_events, sizeof(*in->msgs));
    in->stats.batch_sizes.scale = METRICS_SCALE_COUNT;
    return in;
}

static void ingest_drop_parts(struct ingest *in)
{
    size_t it = 0;
    const char *k;
    void *v;
    while (map_next(in->parts, &it, &k, &v))
        part_free(v);
    map_clear(in->parts);
}

void ingest_destroy(struct ingest *in)
{
    if (!in)
        return;
    ingest_join(in); /* the last batch's commit completes */
    consumer_destroy(in->kc);
    ingest_drop_parts(in);
    map_destroy(in->parts);
    map_destroy(in->live);
    store_destroy(in->st);
    rconn_destroy(in->rc);
    store_destroy(in->cst);
    rconn_destroy(in->crc);
    delta_destroy(in->merged);
    free(in->msgs);
    free(in);
}

const struct ingest_stats *ingest_stats(const struct ingest *in)
{
    return &in->stats;
}

void ingest_set_rules(struct ingest *in, const struct rule_set *rules)
{
    const struct csm_config *cfg = in->cfg;
    in->rules = rules;
    in->aconf.lateness_ms = cfg->lateness_ms;
    in->aconf.attribution_window_ms = cfg->attribution_window_ms;
    in->aconf.orphan_ms = cfg->dedup_window_ms;
    in->aconf.conv_retention_ms = cfg->conv_retention_ms;
    in->aconf.order_retention_ms = cfg->order_retention_ms;
    for (int k = 0; k < PERIOD_KIND_COUNT; k++) {
        in->aconf.kinds[k] = cfg->periods[k];
        in->aconf.accept_ms[k] = cfg->lateness_ms;
        in->aconf.nclose[k] = 0;
    }
    for (size_t i = 0; rules && i < rules->n; i++) {
        const struct rule *r = rules->rules[i];
        in->aconf.kinds[r->period] = true;
        if (r->has_lateness && r->lateness_ms > in->aconf.accept_ms[r->period])
            in->aconf.accept_ms[r->period] = r->lateness_ms;
        agg_conf_add_close(&in->aconf, r->period,
                           r->has_lateness ? r->lateness_ms : cfg->lateness_ms);
    }
}

void ingest_redis_latency(const struct ingest *in, struct metrics_hist *out)
{
    *out = *rconn_latency(in->rc);
    metrics_hist_add(out, &in->commit_latency);
}

struct rconn *ingest_rconn(struct ingest *in)
{
    return in->rc;
}

struct store *ingest_store(struct ingest *in)
{
    return in->st;
}

struct consumer *ingest_consumer(struct ingest *in)
{
    return in->kc;
}

size_t ingest_partitions(const struct ingest *in,
                         void (*fn)(void *ud, const struct ingest_partition *p), void *ud)
{
    size_t it = 0;
    const char *k;
    void *v;
    while (fn && map_next(in->parts, &it, &k, &v)) {
        const struct part *p = v;
        struct ingest_partition ip = {.topic = p->topic,
                                      .partition = p->number,
                                      .committed = p->committed,
                                      .wm_ms = p->wm_ms};
        fn(ud, &ip);
    }
    return map_size(in->parts);
}

bool ingest_failed(const struct ingest *in)
{
    return in->fatal;
}

bool ingest_ready(const struct ingest *in)
{
    return in->redis_ok && in->kc && !consumer_assignment_pending(in->kc);
}

static void ingest_redis_failed(struct ingest *in, const char *what, const char *err)
{
    in->stats.redis_errors++;
    log_complain(&in->redis_complaint, LOG_ERR, "redis", "%s failed redis=%s: %s", what,
                 rconn_describe(in->rc), err);
    rconn_disconnect(in->rc);
    in->redis_ok = false;
    in->resync = true;
}

struct pending_scan {
    struct agg_part *agg;
    char **ids;
    size_t n;
};

static void ingest_pending_cb(void *ud, const char *field, const char *value, size_t len)
{
    struct pending_scan *ps = ud;
    agg_part_load_pending(ps->agg, field, value);
    ps->ids = xrealloc(ps->ids, (ps->n + 1) * sizeof(*ps->ids));
    ps->ids[ps->n++] = xstrdup(field);
}

/* Says so when Redis saturated counters (store_saturated) since the last look: each is a
 * figure past the int64 range (or a field that held no integer), no longer exact. Both
 * connections apply: the committer's (read here only between commits) and the main one
 * (journal replays). */
static void ingest_check_saturated(struct ingest *in)
{
    uint64_t n = store_saturated(in->st) + store_saturated(in->cst);
    if (n == in->stats.saturated)
        return;
    log_msg(LOG_ERR, "ingest",
            "counters saturated at the int64 limit count=%" PRIu64 " total=%" PRIu64
            ": those figures are no longer exact",
            n - in->stats.saturated, n);
    in->stats.saturated = n;
}

/* Reads one partition's stored state: heals its journal, loads meta and the orders
 * waiting for attribution. 0/-1. */
static int ingest_load_part(struct ingest *in, struct part *p, char *err, size_t errlen)
{
    struct store_partition_meta m;
    if (store_partition_recover(in->st, p->topic, p->number, &m, err, errlen) < 0)
        return -1;
    ingest_check_saturated(in); /* a journal replayed (the committer is joined here) */
    p->committed = m.off;
    p->seq = m.seq;
    p->next = m.off;
    p->wm_ms = m.wm_ms; /* what was committed; a crash may have kept it from csm_wm */
    p->wm_committed_ms = m.wm_ms;
    p->lease_next = p->lease_inflight = p->pub_bound = 0; /* batches in flight are dropped */
    agg_part_destroy(p->agg);
    p->agg = agg_part_new(p->kind, p->topic, p->number);
    if (p->kind == TOPIC_ORDERS) {
        /* Orders waiting for attribution (or holding orphans) come back with their records. */
        struct pending_scan ps = {.agg = p->agg};
        int rc = store_state_scan(in->st, p->topic, p->number, STORE_PEND, ingest_pending_cb, &ps,
                                  err, errlen);
        if (rc == 0 && ps.n) {
            char **vals = xcalloc(ps.n, sizeof(*vals));
            size_t *lens = xcalloc(ps.n, sizeof(*lens));
            rc = store_state_get(in->st, p->topic, p->number, STORE_ORD, ps.n,
                                 (const char *const *)ps.ids, vals, lens, err, errlen);
            for (size_t i = 0; i < ps.n; i++) {
                if (rc == 0 && agg_part_load(p->agg, ps.ids[i], vals[i], lens[i]) < 0)
                    log_msg(LOG_ERR, "ingest", "malformed order record partition=%s id=\"%s\"",
                            p->name, ps.ids[i]);
                free(vals[i]);
            }
            free(vals);
            free(lens);
        }
        for (size_t i = 0; i < ps.n; i++)
            free(ps.ids[i]);
        free(ps.ids);
        if (rc < 0)
            return -1;
    }
    return 0;
}

static int ingest_on_assign(void *ud, const rd_kafka_topic_partition_list_t *parts,
                            int64_t *offsets)
{
    struct ingest *in = ud;
    char err[512];
    ingest_join(in);
    if (!in->redis_ok)
        return -1;
    in->partitions_at_ms = 0; /* look at the topics' partitions again (ingest_step) */
    for (int i = 0; i < parts->cnt; i++) {
        const rd_kafka_topic_partition_t *tp = &parts->elems[i];
        struct part *p = xcalloc(1, sizeof(*p));
        snprintf(p->name, sizeof(p->name), "%s:%d", tp->topic, (int)tp->partition);
        p->topic = xstrdup(tp->topic);
        p->number = tp->partition;
        p->kind = ingest_topic_kind(in, tp->topic);
        p->delta = delta_new();
        p->registered = map_new();
        p->spare = delta_new();
        p->spare_registered = map_new();
        p->last_delivery_ms = clock_wall_ms();
        p->attributed_ms = p->kind == TOPIC_ORDERS ? 0 : -1;
        p->fresh = true;
        if (ingest_load_part(in, p, err, sizeof(err)) < 0) {
            part_free(p);
            ingest_redis_failed(in, "loading partition state", err);
            return -1;
        }
        offsets[i] = p->committed >= 0 ? p->committed : RD_KAFKA_OFFSET_BEGINNING;
        part_free(map_put(in->parts, p->name, p));
        log_msg(LOG_INFO, "ingest", "partition assigned partition=%s offset=%" PRId64, p->name,
                p->committed);
    }
    return 0;
}

/* Tells store_wm every input partition that exists, owned here or not: looked up after
 * each assignment (and retried every 5 s until it works). */
static void ingest_known_partitions(struct ingest *in)
{
    int64_t mono = clock_mono_ms();
    if (in->partitions_at_ms < 0 || mono < in->partitions_at_ms)
        return;
    const char *topics[] = {in->cfg->topic_chat, in->cfg->topic_orders, in->cfg->topic_reviews};
    int count[3];
    size_t total = 0;
    for (int t = 0; t < 3; t++) {
        count[t] = consumer_partition_count(in->kc, topics[t], 1000);
        if (count[t] < 0) {
            if (!in->partitions_warned)
                log_msg(LOG_WARN, "kafka",
                        "cannot read the partitions of topic=%s; retrying every 5 s", topics[t]);
            in->partitions_warned = true;
            in->partitions_at_ms = mono + 5000;
            return;
        }
        total += (size_t)count[t];
    }
    char **names = xcalloc(total + 1, sizeof(*names));
    size_t n = 0;
    for (int t = 0; t < 3; t++)
        for (int i = 0; i < count[t]; i++) {
            struct buf b;
            buf_init(&b);
            buf_adds(&b, topics[t]);
            buf_addc(&b, ':');
            buf_add_dec(&b, i);
            names[n++] = b.data;
        }
    store_set_partitions(in->st, n, (const char *const *)names);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    in->partitions_at_ms = -1; /* until the next assignment */
    in->partitions_warned = false;
}

/* Gives partitions up. They are first published busy (at their committed watermark,
 * without a lease): an idle mark of ours must not outlive our ownership, or the global
 * watermark could pass what the next owner has not read yet (a rebalance is under way;
 * metrics.md: such a partition is never idle). The next owner publishes them again; with
 * Redis away the marks expire after 5 s. */
static void ingest_on_revoke(void *ud, const rd_kafka_topic_partition_list_t *parts)
{
    struct ingest *in = ud;
    ingest_join(in); /* the commit in flight may be of these partitions */
    struct part **gone = xcalloc((size_t)parts->cnt + 1, sizeof(*gone));
    struct store_wm_part *wp = xcalloc((size_t)parts->cnt + 1, sizeof(*wp));
    size_t n = 0;
    for (int i = 0; i < parts->cnt; i++) {
        char name[300];
        snprintf(name, sizeof(name), "%s:%d", parts->elems[i].topic,
                 (int)parts->elems[i].partition);
        struct part *p = map_del(in->parts, name);
        if (!p)
            continue;
        gone[n] = p;
        wp[n++] = (struct store_wm_part){
            .name = p->name, .wm_ms = p->wm_committed_ms, .attributed_ms = p->attributed_ms};
    }
    char err[512];
    int64_t g = in->stats.global_wm_ms, cl = in->stats.close_wm_ms;
    if (n > 0 && in->redis_ok &&
        store_wm(in->st, clock_wall_ms(), in->cfg->idle_timeout_ms > 0, n, wp, &g, &cl, err,
                 sizeof(err)) < 0)
        log_msg(LOG_WARN, "ingest", "cannot mark revoked partitions busy: %s", err);
    for (size_t i = 0; i < n; i++)
        part_free(gone[i]);
    free(gone);
    free(wp);
}

int ingest_start(struct ingest *in, char *err, size_t errlen)
{
    if (!in->redis_ok) {
        if (rconn_connect(in->rc, err, errlen) < 0)
            return -1;
        in->redis_ok = true;
        log_complain_recovered(&in->redis_complaint, "redis", "redis reachable");
    }
    if (!in->kc) {
        struct consumer_opts o = {
            .cfg = in->cfg, .on_assign = ingest_on_assign, .on_revoke = ingest_on_revoke, .ud = in};
        in->kc = consumer_new(&o, err, errlen);
        if (!in->kc) {
            in->fatal = true; /* librdkafka refused the configuration: retrying cannot help */
            return -1;
        }
    }
    return 0;
}

/* Schedules the next connection attempt: 100 ms doubling to 5 s, with jitter so that
 * instances restarted together spread out. */
static void ingest_backoff(struct ingest *in)
{
    in->retry_delay_ms = in->retry_delay_ms ? in->retry_delay_ms * 2 : 100;
    if (in->retry_delay_ms > 5000)
        in->retry_delay_ms = 5000;
    in->retry_at_ms =
        clock_mono_ms() + in->retry_delay_ms / 2 + rand() % (in->retry_delay_ms / 2 + 1);
}

/* After a Redis failure: reconnect, re-read every assigned partition, and seek the
 * consumer back to the stored offsets. */
static void ingest_resync(struct ingest *in)
{
    char err[512];
    ingest_join(in);
    if (!in->redis_ok) {
        if (clock_mono_ms() < in->retry_at_ms)
            return;
        if (rconn_connect(in->rc, err, sizeof(err)) < 0) {
            ingest_backoff(in);
            log_complain(&in->redis_complaint, LOG_ERR, "redis", "cannot reconnect: %s", err);
            return;
        }
        in->retry_delay_ms = 0;
        in->redis_ok = true;
        log_complain_recovered(&in->redis_complaint, "redis", "redis reachable");
    }
    size_t it = 0;
    const char *k;
    void *v;
    while (map_next(in->parts, &it, &k, &v)) {
        struct part *p = v;
        if (ingest_load_part(in, p, err, sizeof(err)) < 0) {
            ingest_redis_failed(in, "reloading partition state", err);
            return;
        }
        delta_reset(p->delta);
        map_clear(p->registered);
        delta_reset(p->spare); /* joined above: both buffers are p's */
        map_clear(p->spare_registered);
        p->fresh = true;
        rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(l, p->topic, p->number)->offset =
            p->committed >= 0 ? p->committed : RD_KAFKA_OFFSET_BEGINNING;
        rd_kafka_error_t *e = rd_kafka_seek_partitions(consumer_handle(in->kc), l, 5000);
        if (e) {
            log_msg(LOG_ERR, "kafka", "cannot seek partition=%s: %s", p->name,
                    rd_kafka_error_string(e));
            rd_kafka_error_destroy(e);
        }
        rd_kafka_topic_partition_list_destroy(l);
    }
    if (consumer_assignment_pending(in->kc))
        consumer_retry_assignment(in->kc);
    in->resync = false;
    log_msg(LOG_NOTICE, "ingest", "resumed from stored offsets partitions=%zu",
            map_size(in->parts));
}

_Static_assert(DL_REASON_COUNT <= 16, "ingest_stats.deadletters holds every reason");

struct dead_ctx {
    struct ingest *in;
    struct part *p;
};

static void ingest_dead(struct ingest *in, enum dl_reason reason, const char *detail,
                        const char *topic, int32_t part, int64_t offset, const void *raw,
                        size_t len)
{
    in->stats.deadletters[reason]++;
    /* A huge message keeps its first 64 KiB: the record must fit message.max.bytes. */
    char cut[300];
    if (len > DECODE_MAX_BYTES) {
        snprintf(cut, sizeof(cut), "%s (payload cut to its first %d of %zu bytes)", detail,
                 DECODE_MAX_BYTES, len);
        detail = cut;
        len = DECODE_MAX_BYTES;
    }
    char *rec =
        decode_deadletter_json(reason, detail, topic, part, offset, clock_wall_ms(), raw, len);
    if (!rec)
        return;
    consumer_produce(in->kc, in->cfg->topic_deadletter, NULL, 0, rec, strlen(rec));
    log_msg(LOG_DEBUG, "ingest",
            "dead letter reason=%s topic=%s partition=%d offset=%" PRId64 " detail=%s",
            dl_reason_name(reason), topic, (int)part, offset, detail);
    free(rec);
}

static void ingest_dead_cb(void *ud, int orphan, const char *detail, int64_t offset,
                           const void *raw, size_t rawlen)
{
    struct dead_ctx *dc = ud;
    ingest_dead(dc->in, orphan ? DL_ORPHAN : DL_LATE, detail, dc->p->topic, dc->p->number, offset,
                raw, rawlen);
}

static struct part *ingest_part_of(struct ingest *in, const rd_kafka_message_t *m)
{
    char name[300];
    snprintf(name, sizeof(name), "%s:%d", rd_kafka_topic_name(m->rkt), (int)m->partition);
    return map_get(in->parts, name);
}

/* The first message after an assignment or a seek should be at the stored offset. When
 * it is further on and the broker no longer keeps the stored offset, Kafka's retention
 * deleted messages before csmetrics read them (librdkafka then moves to the earliest
 * offset kept: auto.offset.reset=earliest). Those events are lost; this is said at crit
 * level with the offsets and counted (README "Guarantees"). A gap the broker still
 * keeps (transaction markers, aborted transactions) is normal and not reported. */
static void ingest_check_gap(struct ingest *in, struct part *p, int64_t first)
{
    if (p->next < 0 || first <= p->next)
        return;
    int64_t start = consumer_log_start(in->kc, p->topic, p->number, 5000);
    if (start <= p->next)
        return;
    int64_t lost = (start < first ? start : first) - p->next;
    in->stats.offset_resets++;
    in->stats.lost_messages += (uint64_t)lost;
    log_msg(LOG_CRIT, "kafka",
            "partition %s: offsets %" PRId64 "..%" PRId64 " were deleted by Kafka (retention) "
            "before csmetrics read them: %" PRId64 " messages LOST; continuing at offset %" PRId64,
            p->name, p->next, p->next + lost - 1, lost, first);
}

/* An event of the batch and its partition, for grouping by partition. */
struct event_ref {
    struct part *p;
    size_t i;
};

static int ingest_by_part(const void *a, const void *b)
{
    const struct event_ref *x = a, *y = b;
    if (x->p != y->p)
        return (uintptr_t)x->p < (uintptr_t)y->p ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

/* Loads the state records the batch's events need, every partition in one round trip.
 * mp[i] is event i's partition, NULL when it is not to be applied. 0/-1. */
static int ingest_prefetch(struct ingest *in, const struct event *evs, struct part *const *mp,
                           size_t n, char *err, size_t errlen)
{
    struct event_ref *refs = xmalloc((n + 1) * sizeof(*refs));
    size_t nrefs = 0;
    for (size_t i = 0; i < n; i++)
        if (mp[i])
            refs[nrefs++] = (struct event_ref){.p = mp[i], .i = i};
    qsort(refs, nrefs, sizeof(*refs), ingest_by_part);
    struct event *pe = xmalloc((nrefs + 1) * sizeof(*pe)); /* shallow copies */
    struct store_state_req *reqs = xcalloc(nrefs + 1, sizeof(*reqs));
    struct part **rparts = xcalloc(nrefs + 1, sizeof(*rparts));
    char ***ids = xcalloc(nrefs + 1, sizeof(*ids));
    size_t nreq = 0;
    for (size_t r = 0; r < nrefs;) {
        struct part *p = refs[r].p;
        size_t np = 0;
        for (; r < nrefs && refs[r].p == p; r++)
            pe[np++] = evs[refs[r].i];
        size_t nm = 0;
        ids[nreq] = agg_part_missing(p->agg, pe, np, &nm);
        rparts[nreq] = p;
        reqs[nreq] = (struct store_state_req){
            .topic = p->topic,
            .part = p->number,
            .which = p->kind == TOPIC_CHAT ? STORE_CONV : STORE_ORD,
            .n = nm,
            .fields = (const char *const *)ids[nreq],
            .values = xcalloc(nm + 1, sizeof(char *)),
            .lens = xcalloc(nm + 1, sizeof(size_t)),
        };
        nreq++;
    }
    int rc = store_state_get_many(in->st, reqs, nreq, err, errlen);
    for (size_t q = 0; q < nreq; q++) {
        for (size_t i = 0; i < reqs[q].n; i++) {
            if (rc == 0 &&
                agg_part_load(rparts[q]->agg, ids[q][i], reqs[q].values[i], reqs[q].lens[i]) < 0)
                log_msg(LOG_ERR, "ingest", "malformed state record partition=%s id=\"%s\"",
                        rparts[q]->name, ids[q][i]);
            if (rc == 0)
                free(reqs[q].values[i]);
            free(ids[q][i]);
        }
        free(ids[q]);
        free(reqs[q].values);
        free(reqs[q].lens);
    }
    free(ids);
    free(rparts);
    free(reqs);
    free(pe);
    free(refs);
    return rc;
}

/* Publishes our partitions' watermarks and reads the global one. */
static int ingest_watermark(struct ingest *in, char *err, size_t errlen)
{
    int64_t now = clock_wall_ms();
    size_t n = map_size(in->parts);
    struct store_wm_part *wp = xcalloc(n + 1, sizeof(*wp));
    size_t it = 0, i = 0;
    const char *k;
    void *v;
    while (map_next(in->parts, &it, &k, &v)) {
        struct part *p = v;
        int64_t hi = consumer_high_watermark(in->kc, p->topic, p->number);
        int64_t pos = p->committed < 0 ? 0 : p->committed;
        bool caught_up = hi >= 0 && pos >= hi;
        bool idle = caught_up && now - p->last_delivery_ms >= in->cfg->idle_timeout_ms;
        int64_t lease = p->lease_inflight;
        agg_lease_min(&lease, p->lease_next);
        wp[i++] = (struct store_wm_part){.name = p->name,
                                         .wm_ms = p->wm_committed_ms,
                                         .idle_until_ms = idle ? now + 5000 : 0,
                                         .attributed_ms = p->attributed_ms,
                                         .lease_ms = lease};
        p->pub_bound = idle ? 0 : p->wm_committed_ms;
    }
    int64_t g = in->stats.global_wm_ms, cl = in->stats.close_wm_ms;
    int rc = store_wm(in->st, now, in->cfg->idle_timeout_ms > 0, i, wp, &g, &cl, err, errlen);
    free(wp);
    if (rc == 0) {
        in->stats.global_wm_ms = g;
        in->stats.close_wm_ms = cl;
    }
    return rc;
}

/* Orders whose created ts the watermark passed: look up contacts, attribute. */
static int ingest_attribute(struct ingest *in, struct part *p, char *err, size_t errlen)
{
    struct agg_due *due = NULL;
    size_t n = agg_part_due(p->agg, in->stats.global_wm_ms, &due);
    if (n == 0) {
        free(due);
        return 0;
    }
    const char **shops = xcalloc(n, sizeof(*shops)), **custs = xcalloc(n, sizeof(*custs));
    int64_t *ts = xcalloc(n, sizeof(*ts));
    char **agents = xcalloc(n, sizeof(*agents));
    char **ids = xcalloc(n, sizeof(*ids));
    for (size_t i = 0; i < n; i++) {
        shops[i] = due[i].shop;
        custs[i] = due[i].customer;
        ts[i] = due[i].ts_ms;
        ids[i] = xstrdup(due[i].order_id);
    }
    int rc = store_contact_latest(in->st, n, shops, custs, ts, in->cfg->attribution_window_ms,
                                  agents, err, errlen);
    struct agg_ctx c = {.conf = &in->aconf,
                        .wm_ms = in->stats.close_wm_ms,
                        .now_ms = clock_wall_ms(),
                        .d = p->delta,
                        .registered = p->registered};
    struct dead_ctx dc = {.in = in, .p = p};
    for (size_t i = 0; i < n; i++) {
        if (rc == 0)
            agg_attribute(&c, p->agg, ids[i], agents[i], ingest_dead_cb, &dc);
        free(agents[i]);
        free(ids[i]);
    }
    agg_lease_min(&p->lease_next, c.lease_ms);
    p->touched = true;
    free(shops);
    free(custs);
    free(ts);
    free(agents);
    free(ids);
    free(due);
    return rc;
}

/* Remembers which (owner, period) figures a batch changed: the aggregation engine
 * registers each pair it writes ("tag\x1flabel", agg_ctx.registered). */
static void ingest_collect_live(struct ingest *in, const struct map *registered)
{
    size_t it = 0;
    const char *k;
    void *v;
    while (map_next(registered, &it, &k, &v))
        map_put(in->live, k, (void *)1);
}

/* Writes the computed KPIs of every changed (owner, period) to PREFIX{tag}:LABEL:kpi
 * (a hash dashboards read; undefined KPIs are "null") and announces each on the
 * pub/sub channel PREFIXlive. A derived view: rewritten from the exact figures. */
static void ingest_refresh_live(struct ingest *in)
{
    char err[512];
    size_t it = 0, n = map_size(in->live), got = 0;
    const char *k;
    void *v;
    struct live_row {
        char *key, *msg;
        char vals[KPI_COUNT_ALL][48];
    } *rows = xcalloc(n + 1, sizeof(*rows));
    /* Reads first, then one pipeline of writes: rconn replies come back in order. */
    while (map_next(in->live, &it, &k, &v)) {
        const char *sep = strchr(k, '\x1f');
        struct period p;
        if (!sep || period_from_label(sep + 1, &p) < 0)
            continue;
        char *tag = xstrndup(k, (size_t)(sep - k));
        struct kpi_figures f;
        int rc = store_read_figures(in->st, tag, &p, &f, err, sizeof(err));
        if (rc < 0) {
            free(tag);
            ingest_redis_failed(in, "reading figures", err);
            break;
        }
        if (rc == 0) {
            struct live_row *r = &rows[got++];
            struct buf b;
            buf_init(&b);
            buf_printf(&b, "%s:%s:kpi", tag, p.label);
            r->key = xstrdup(b.data);
            buf_reset(&b);
            buf_printf(&b, "%s %s", tag + strlen(in->cfg->redis_key_prefix), p.label);
            r->msg = xstrdup(b.data);
            buf_release(&b);
            for (int kk = 0; kk < KPI_COUNT_ALL; kk++) {
                struct kpi_value kv = kpi_compute(&f, (enum kpi_id)kk);
                if (!kv.defined)
                    snprintf(r->vals[kk], sizeof(r->vals[kk]), "null");
                else if (kpi_unit((enum kpi_id)kk) == KPI_MONEY)
                    kpi_format_cents(kv.cents, r->vals[kk], sizeof(r->vals[kk]));
                else
                    kpi_format_double(kv.value, r->vals[kk], sizeof(r->vals[kk]));
            }
        }
        free(tag);
    }
    for (size_t i = 0; in->redis_ok && i < got; i++) {
        const char *argv[2 * KPI_COUNT_ALL + 2];
        size_t lens[2 * KPI_COUNT_ALL + 2];
        int a = 0;
        argv[a++] = "HSET";
        argv[a++] = rows[i].key;
        for (int kk = 0; kk < KPI_COUNT_ALL; kk++) {
            argv[a++] = kpi_name((enum kpi_id)kk);
            argv[a++] = rows[i].vals[kk];
        }
        for (int j = 0; j < a; j++)
            lens[j] = strlen(argv[j]);
        rconn_append(in->rc, a, argv, lens);
        rconn_appendf(in->rc, "PUBLISH %slive %s", in->cfg->redis_key_prefix, rows[i].msg);
    }
    if (in->redis_ok && rconn_pending(in->rc) > 0) {
        redisReply **rep = NULL;
        size_t nr = 0;
        if (rconn_exec(in->rc, &rep, &nr, err, sizeof(err)) < 0)
            ingest_redis_failed(in, "writing live KPIs", err);
        rconn_replies_free(rep, nr);
    }
    for (size_t i = 0; i < got; i++) {
        free(rows[i].key);
        free(rows[i].msg);
    }
    free(rows);
    map_clear(in->live);
}

/* One partition's pending commit: the batch and the state records it carries (owned). */
struct pending_commit {
    struct part *p;
    struct store_batch b;
    struct store_kv *skv[2];
    size_t nkv[2];
    struct delta *delta;    /* the batch's writes: p's buffer, the committer's meanwhile */
    struct map *registered; /* and the (owner, period) pairs they change */
    int64_t attributing_ms;
};

/* One consumer batch's commits, in the committer thread's hands from ingest_commit_start
 * to ingest_join. */
struct commit_job {
    size_t n;
    struct pending_commit *pcs;
    struct store_batch *bs;
    bool *fenced;
    int rc;
    char err[512];
};

/* Prepares p's commit; false when nothing changed (no commit, no new sequence number). */
static bool ingest_prepare_commit(struct part *p, struct pending_commit *pc)
{
    struct agg_kv *kv[2];
    *pc = (struct pending_commit){.p = p};
    pc->b = (struct store_batch){
        .topic = p->topic,
        .part = p->number,
        .expected_off = p->committed,
        .new_off = p->next,
        .seq = p->seq + 1,
        .delta = p->delta,
        .wm_ms = p->wm_ms,
    };
    for (int w = 0; w < 2; w++) {
        pc->nkv[w] = agg_part_dirty(p->agg, w, &kv[w]);
        pc->skv[w] = xcalloc(pc->nkv[w] + 1, sizeof(*pc->skv[w]));
        /* agg_part_dirty reuses its array: copy out before the next call */
        for (size_t i = 0; i < pc->nkv[w]; i++)
            pc->skv[w][i] = (struct store_kv){
                .field = xstrdup(kv[w][i].field),
                .value = kv[w][i].value ? xstrndup(kv[w][i].value, kv[w][i].len) : NULL,
                .len = kv[w][i].len};
    }
    enum store_state st0 = p->kind == TOPIC_CHAT ? STORE_CONV : STORE_ORD;
    pc->b.state[st0] = pc->skv[0];
    pc->b.nstate[st0] = pc->nkv[0];
    pc->b.state[STORE_PEND] = pc->skv[1];
    pc->b.nstate[STORE_PEND] = pc->nkv[1];
    return pc->nkv[0] || pc->nkv[1] || !delta_empty(p->delta) || p->next != p->committed;
}

static void ingest_release_commit(struct pending_commit *pc)
{
    for (int w = 0; w < 2; w++) {
        for (size_t i = 0; i < pc->nkv[w]; i++) {
            free((char *)pc->skv[w][i].value);
            free((char *)pc->skv[w][i].field);
        }
        free(pc->skv[w]);
    }
}

/* Each partition's share of cache_max_records. */
static size_t ingest_cache_share(const struct ingest *in)
{
    size_t n = map_size(in->parts);
    return (size_t)in->cfg->cache_max_records / (n ? n : 1);
}

/* The largest lateness any maintained period kind accepts. */
static int64_t ingest_max_accept(const struct ingest *in)
{
    int64_t m = in->aconf.lateness_ms;
    for (int k = 0; k < PERIOD_KIND_COUNT; k++)
        if (in->aconf.kinds[k] && in->aconf.accept_ms[k] > m)
            m = in->aconf.accept_ms[k];
    return m;
}

struct sweep_ctx {
    struct ingest *in;
    struct part *p;
    int64_t cutoff_ms;
};

static void ingest_sweep_cb(void *ud, const char *field, const char *value, size_t len)
{
    struct sweep_ctx *sc = ud;
    if (agg_part_sweep(sc->p->agg, field, value, len, sc->cutoff_ms)) {
        sc->p->touched = true;
        sc->in->stats.swept++;
    }
}

/* Garbage collection of conversation and order records no event can use any more
 * (agg_part_sweep), a chunk of each partition's hash every 10 s; the deletions are
 * committed with the partition's offsets like any state change. The cutoff keeps the
 * records any event not late for every period could still read. 0/-1. */
static int ingest_sweep(struct ingest *in, char *err, size_t errlen)
{
    int64_t mono = clock_mono_ms(), wm = in->stats.close_wm_ms;
    if (mono < in->next_sweep_ms || wm <= 0)
        return 0;
    in->next_sweep_ms = mono + 10000;
    int64_t margin = ingest_max_accept(in) + in->aconf.lateness_ms;
    size_t n = 0, np = map_size(in->parts);
    struct store_scan *scans = xcalloc(np + 1, sizeof(*scans));
    struct sweep_ctx *ctx = xcalloc(np + 1, sizeof(*ctx));
    size_t it = 0;
    const char *k;
    void *v;
    while (map_next(in->parts, &it, &k, &v)) {
        struct part *p = v;
        int64_t keep = p->kind == TOPIC_CHAT     ? in->cfg->conv_retention_ms
                       : p->kind == TOPIC_ORDERS ? in->cfg->order_retention_ms
                                                 : 0;
        if (keep <= 0 || wm - keep - margin <= 0)
            continue;
        ctx[n] = (struct sweep_ctx){.in = in, .p = p, .cutoff_ms = wm - keep - margin};
        scans[n] = (struct store_scan){.topic = p->topic,
                                       .part = p->number,
                                       .which = p->kind == TOPIC_CHAT ? STORE_CONV : STORE_ORD,
                                       .cursor = p->sweep_cursor,
                                       .cb = ingest_sweep_cb,
                                       .ud = &ctx[n]};
        n++;
    }
    int rc = store_state_scan_chunks(in->st, scans, n, 500, err, errlen);
    for (size_t i = 0; rc == 0 && i < n; i++)
        ctx[i].p->sweep_cursor = scans[i].cursor;
    free(scans);
    free(ctx);
    return rc;
}

static void commit_job_free(struct commit_job *j)
{
    free(j->pcs);
    free(j->bs);
    free(j->fenced);
    free(j);
}

/* The committer thread: every partition's commit of one batch in three round trips
 * (store_commit_batches), their writes merged per tag, on its own connection. */
static void *ingest_committer(void *arg)
{
    struct ingest *in = arg;
    struct commit_job *j = in->job;
    j->rc = 0;
    if (!rconn_connected(in->crc) && rconn_connect(in->crc, j->err, sizeof(j->err)) < 0) {
        j->rc = -1;
    } else {
        for (size_t i = 0; i < j->n; i++)
            delta_merge(in->merged, j->pcs[i].delta);
        j->rc = store_commit_batches(in->cst, j->bs, j->n, in->merged, j->fenced, j->err,
                                     sizeof(j->err));
        delta_reset(in->merged);
    }
    /* The buffers go back to their partitions empty, whatever happened. */
    for (size_t i = 0; i < j->n; i++)
        delta_reset(j->pcs[i].delta);
    if (j->rc < 0)
        rconn_disconnect(in->crc);
    return NULL;
}

/* Hands every touched partition's batch to the committer thread. What it carries is
 * copied or swapped out (p keeps writing into its other buffers), and p's records count
 * as clean from here: if the commit fails, every partition is re-read from Redis. */
static void ingest_commit_start(struct ingest *in)
{
    size_t np = map_size(in->parts), n = 0;
    struct commit_job *j = xcalloc(1, sizeof(*j));
    j->pcs = xcalloc(np + 1, sizeof(*j->pcs));
    j->bs = xcalloc(np + 1, sizeof(*j->bs));
    j->fenced = xcalloc(np + 1, sizeof(*j->fenced));
    size_t it = 0;
    const char *k;
    void *v;
    while (map_next(in->parts, &it, &k, &v)) {
        struct part *p = v;
        if (!p->touched) {
            if (p->kind == TOPIC_ORDERS)
                p->attributed_ms = p->attributing_ms; /* nothing was due */
            continue;
        }
        p->touched = false;
        struct pending_commit *pc = &j->pcs[n];
        if (!ingest_prepare_commit(p, pc)) {
            ingest_release_commit(pc);
            if (p->kind == TOPIC_ORDERS)
                p->attributed_ms = p->attributing_ms;
            continue;
        }
        agg_part_clean(p->agg);
        p->lease_inflight = p->lease_next; /* the previous batch was joined */
        p->lease_next = 0;
        pc->attributing_ms = p->attributing_ms;
        pc->delta = p->delta;
        pc->registered = p->registered;
        p->delta = p->spare;
        p->registered = p->spare_registered;
        p->spare = NULL;
        p->spare_registered = NULL;
        j->bs[n++] = pc->b;
    }
    if (n == 0) { /* nothing to commit */
        commit_job_free(j);
        return;
    }
    j->n = n;
    in->job = j;
    int e = pthread_create(&in->committer, NULL, ingest_committer, in);
    if (e != 0) {
        log_msg(LOG_WARN, "ingest", "cannot start the committer thread (%s); committing inline",
                strerror(e));
        ingest_committer(in);
        return;
    }
    pthread_setname_np(in->committer, "csm-committer"); /* for top -H, gdb */
    in->inflight = true;
}

/* Waits for the batch in the committer's hands and takes its outcome: committed
 * partitions move on, a FENCED one or a Redis failure makes every partition re-read. */
static void ingest_join(struct ingest *in)
{
    struct commit_job *j = in->job;
    if (!j)
        return;
    if (in->inflight) {
        pthread_join(in->committer, NULL);
        in->inflight = false;
    }
    in->commit_latency = *rconn_latency(in->crc);
    in->job = NULL;
    for (size_t i = 0; i < j->n; i++) {
        struct pending_commit *pc = &j->pcs[i];
        struct part *p = pc->p;
        if (j->rc == 0 && j->fenced[i]) {
            in->stats.fenced++;
            log_msg(LOG_WARN, "ingest", "partition %s fenced; re-reading from the stored offset",
                    p->name);
            in->resync = true;
        } else if (j->rc == 0) {
            p->committed = pc->b.new_off;
            p->seq = pc->b.seq;
            if (pc->b.wm_ms > p->wm_committed_ms)
                p->wm_committed_ms = pc->b.wm_ms;
            if (p->kind == TOPIC_ORDERS)
                p->attributed_ms = pc->attributing_ms;
            ingest_collect_live(in, pc->registered);
            in->stats.commits++;
            in->stats.evicted += agg_part_trim(p->agg, ingest_cache_share(in));
        }
        map_clear(pc->registered);
        p->lease_inflight = 0; /* committed, or dropped: either way no longer in flight */
        p->spare = pc->delta;
        p->spare_registered = pc->registered;
        ingest_release_commit(pc);
    }
    in->stats.cached = 0;
    size_t it = 0;
    const char *k;
    void *v;
    while (map_next(in->parts, &it, &k, &v))
        in->stats.cached += agg_part_cached(((struct part *)v)->agg);
    ingest_check_saturated(in);
    if (j->rc < 0 && in->redis_ok)
        ingest_redis_failed(in, "commit", j->err);
    else if (j->rc < 0)
        in->resync = true;
    commit_job_free(j);
}

static void ingest_process(struct ingest *in, size_t n)
{
    char err[512];
    int64_t now = clock_wall_ms();
    struct event *evs = xcalloc(n + 1, sizeof(*evs));
    bool *ok = xcalloc(n + 1, sizeof(*ok));
    const char **ids = xcalloc(n + 1, sizeof(*ids));
    const char **claims = xcalloc(n + 1, sizeof(*claims));
    size_t *claim_at = xcalloc(n + 1, sizeof(*claim_at)); /* offsets into claimbuf */
    struct buf claimbuf;
    buf_init(&claimbuf);
    size_t *idx = xcalloc(n + 1, sizeof(*idx));
    bool *dup = xcalloc(n + 1, sizeof(*dup));
    struct part **mp = xcalloc(n + 1, sizeof(*mp)); /* each message's partition */
    size_t nids = 0;
    struct decode_opts dopt = {.now_ms = now, .max_future_ms = in->cfg->max_future_ms};

    /* 1. decode; bad messages to the dead-letter topic */
    for (size_t i = 0; i < n; i++) {
        rd_kafka_message_t *m = in->msgs[i];
        struct part *p = mp[i] = ingest_part_of(in, m);
        if (!p)
            continue; /* revoked meanwhile: the next owner reads it */
        if (p->next >= 0 && m->offset < p->next) {
            mp[i] = NULL; /* read before a seek back: the stored offset decides */
            continue;
        }
        if (p->fresh) {
            p->fresh = false;
            ingest_check_gap(in, p, m->offset);
        }
        p->next = m->offset + 1;
        p->touched = true;
        p->last_delivery_ms = now;
        char detail[256] = "";
        enum dl_reason r =
            decode_event(p->kind, m->payload, m->len, &dopt, &evs[i], detail, sizeof(detail));
        if (r != DL_NONE) {
            ingest_dead(in, r, detail, p->topic, p->number, m->offset, m->payload, m->len);
            continue;
        }
        ok[i] = true;
        ids[nids] = evs[i].event_id;
        claim_at[nids] = claimbuf.len; /* "topic:partition:offset" */
        buf_adds(&claimbuf, p->name);
        buf_addc(&claimbuf, ':');
        buf_add_dec(&claimbuf, m->offset);
        buf_add(&claimbuf, "", 1);
        idx[nids++] = i;
    }
    for (size_t k = 0; k < nids; k++)
        claims[k] = claimbuf.data + claim_at[k];
    /* 2. dedup claims */
    if (store_dedup(in->st, nids, ids, claims, in->cfg->dedup_window_ms, dup, err, sizeof(err)) <
        0) {
        ingest_redis_failed(in, "dedup", err);
        goto out;
    }
    for (size_t k = 0; k < nids; k++)
        if (dup[k]) {
            ok[idx[k]] = false;
            in->stats.duplicates++;
        }
    /* 3. global watermark */
    if (ingest_watermark(in, err, sizeof(err)) < 0) {
        ingest_redis_failed(in, "watermark", err);
        goto out;
    }
    /* 4. per partition: prefetch state, aggregate in offset order */
    struct agg_ctx c = {.conf = &in->aconf, .wm_ms = in->stats.close_wm_ms, .now_ms = now};
    for (size_t i = 0; i < n; i++)
        if (!ok[i])
            mp[i] = NULL; /* bad or duplicate: nothing to prefetch or apply */
    if (ingest_prefetch(in, evs, mp, n, err, sizeof(err)) < 0) {
        ingest_redis_failed(in, "reading partition state", err);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        rd_kafka_message_t *m = in->msgs[i];
        struct part *p = mp[i];
        if (!p || !ok[i])
            continue;
        c.d = p->delta;
        c.registered = p->registered;
        c.lease_ms = 0;
        struct agg_result res;
        agg_event(&c, p->agg, &evs[i], m->offset, m->payload, m->len, &res);
        agg_lease_min(&p->lease_next, c.lease_ms);
        if (evs[i].ts_ms > p->wm_ms)
            p->wm_ms = evs[i].ts_ms;
        in->stats.events++;
        in->stats.events_by[p->kind][evs[i].type]++;
        if (res.late)
            ingest_dead(in, DL_LATE, res.detail, p->topic, p->number, m->offset, m->payload,
                        m->len);
    }
out:
    for (size_t i = 0; i < n; i++)
        event_release(&evs[i]);
    buf_release(&claimbuf);
    free(claim_at);
    free(evs);
    free(ok);
    free(ids);
    free(claims);
    free(idx);
    free(dup);
    free(mp);
}

/* Every 15 s: deletes the state of periods that ended `retention` before the close
 * watermark (retention.h). Never before they stop accepting events: the cutoff is at
 * least the largest lateness plus a day behind the close watermark. */
static void ingest_retention(struct ingest *in)
{
    char err[512];
    int64_t mono = clock_mono_ms(), wm = in->stats.close_wm_ms;
    if (in->cfg->retention_ms <= 0 || wm <= 0 || mono < in->next_retention_ms)
        return;
    in->next_retention_ms = mono + 15000;
    int64_t keep = in->cfg->retention_ms, floor = ingest_max_accept(in) + 86400000;
    if (keep < floor)
        keep = floor;
    uint64_t before = in->retention.periods_deleted;
    if (retention_sweep(in->rc, in->cfg->redis_key_prefix, in->rules, wm - keep, 10000,
                        &in->retention, err, sizeof(err)) < 0) {
        ingest_redis_failed(in, "deleting expired periods", err);
        return;
    }
    in->stats.periods_deleted = in->retention.periods_deleted;
    if (in->retention.periods_deleted != before)
        log_msg(LOG_INFO, "retention",
                "deleted expired periods count=%" PRIu64 " before_ms=%" PRId64,
                in->retention.periods_deleted - before, wm - keep);
}

/* Before a batch goes to the committer: no close may pass a write judged before it while
 * the write is on its way. Each partition's lease (the first close of the periods it
 * writes) keeps the close watermark below it once published; until then the close cannot
 * pass the watermark last published for the partition as busy. A lease at or below that
 * one is published now (csm_wm), and if the close has meanwhile reached it, a close may
 * have missed this batch: it is re-read and judged again. 0, or -1 on a Redis failure. */
static int ingest_lease(struct ingest *in, char *err, size_t errlen)
{
    int64_t need = 0;
    bool publish = false;
    size_t it = 0;
    const char *k;
    void *v;
    while (map_next(in->parts, &it, &k, &v)) {
        struct part *p = v;
        if (p->lease_next == 0)
            continue;
        agg_lease_min(&need, p->lease_next);
        if (p->pub_bound == 0 || p->lease_next <= p->pub_bound)
            publish = true;
    }
    if (!publish)
        return 0;
    if (ingest_watermark(in, err, errlen) < 0)
        return -1;
    in->stats.leases++;
    if (in->stats.close_wm_ms >= need) {
        in->stats.lease_conflicts++;
        log_msg(LOG_WARN, "ingest",
                "a close reached this batch's periods while it was judged close_wm=%" PRId64
                " first_close=%" PRId64 "; re-reading it",
                in->stats.close_wm_ms, need);
        in->resync = true;
    }
    return 0;
}

/* Joins the previous batch's commit, then: attribution, orphans, dead-letter flush, and
 * this batch's commit handed to the committer. read_wm: publish and read the watermark
 * first (a tick without messages; otherwise ingest_process did). */
static void ingest_finish(struct ingest *in, bool tick, bool read_wm)
{
    char err[512];
    ingest_join(in);
    if (!in->redis_ok || in->resync)
        return;
    if (read_wm && ingest_watermark(in, err, sizeof(err)) < 0) {
        ingest_redis_failed(in, "watermark", err);
        return;
    }
    size_t it = 0;
    const char *k;
    void *v;
    while (map_next(in->parts, &it, &k, &v)) {
        struct part *p = v;
        if (p->kind != TOPIC_ORDERS)
            continue;
        p->attributing_ms = in->stats.global_wm_ms;
        if (ingest_attribute(in, p, err, sizeof(err)) < 0) {
            ingest_redis_failed(in, "reading contacts", err);
            return;
        }
        if (tick) {
            struct agg_ctx c = {.conf = &in->aconf,
                                .wm_ms = in->stats.close_wm_ms,
                                .now_ms = clock_wall_ms(),
                                .d = p->delta,
                                .registered = p->registered};
            struct dead_ctx dc = {.in = in, .p = p};
            agg_part_expire(&c, p->agg, ingest_dead_cb, &dc);
            agg_lease_min(&p->lease_next, c.lease_ms);
            p->touched = true;
        }
    }
    if (tick && ingest_sweep(in, err, sizeof(err)) < 0) {
        ingest_redis_failed(in, "sweeping state records", err);
        return;
    }
    if (ingest_lease(in, err, sizeof(err)) < 0) {
        ingest_redis_failed(in, "publishing leases", err);
        return;
    }
    if (in->resync)
        return;
    /* Dead letters must be in Kafka before the offsets that produced them move on. */
    if (consumer_flush(in->kc, 30000) < 0) {
        log_msg(LOG_ERR, "ingest", "dead-letter delivery failed; batch not committed, re-reading");
        in->resync = true;
        return;
    }
    ingest_commit_start(in);
    /* Operational counters of dead letters by reason, for dashboards (not exactly once). */
    for (int r = 1; r < DL_REASON_COUNT; r++)
        if (in->stats.deadletters[r] != in->dl_published[r])
            rconn_appendf(in->rc, "HINCRBY %s{r}:deadletters %s %llu", in->cfg->redis_key_prefix,
                          dl_reason_name((enum dl_reason)r),
                          (unsigned long long)(in->stats.deadletters[r] - in->dl_published[r]));
    if (rconn_pending(in->rc) > 0) {
        redisReply **rep = NULL;
        size_t nr = 0;
        if (rconn_exec(in->rc, &rep, &nr, err, sizeof(err)) < 0) {
            ingest_redis_failed(in, "counting dead letters", err);
            return;
        }
        rconn_replies_free(rep, nr);
        memcpy(in->dl_published, in->stats.deadletters, sizeof(in->dl_published));
    }
    if (tick)
        ingest_refresh_live(in);
    if (tick && in->redis_ok)
        ingest_retention(in);
}

void ingest_step(struct ingest *in)
{
    if (!in->kc) {
        char err[512];
        int64_t wait = in->retry_at_ms - clock_mono_ms();
        if (wait > 0) { /* back-off; the main loop still ticks (watchdog) */
            if (wait > 200)
                wait = 200;
            nanosleep(&(struct timespec){.tv_sec = 0, .tv_nsec = wait * 1000000}, NULL);
            return;
        }
        if (ingest_start(in, err, sizeof(err)) < 0) {
            if (in->fatal) {
                log_msg(LOG_ERR, "ingest", "cannot start: %s", err);
            } else {
                ingest_backoff(in);
                log_complain(&in->redis_complaint, LOG_ERR, "ingest", "cannot start: %s", err);
            }
        } else {
            in->retry_delay_ms = 0;
        }
        return;
    }
    if (in->resync || !in->redis_ok) {
        consumer_pause_all(in->kc, true);
        ingest_resync(in);
        if (in->resync || !in->redis_ok) {
            /* keep the group membership alive while Redis is away */
            size_t n = consumer_poll(in->kc, in->msgs, (size_t)in->cfg->batch_max_events, 200);
            for (size_t i = 0; i < n; i++)
                rd_kafka_message_destroy(in->msgs[i]);
            return;
        }
        consumer_pause_all(in->kc, false);
    }
    if (consumer_assignment_pending(in->kc))
        consumer_retry_assignment(in->kc);
    ingest_known_partitions(in);
    size_t n = consumer_poll(in->kc, in->msgs, (size_t)in->cfg->batch_max_events,
                             (int)in->cfg->batch_max_wait_ms);
    int64_t mono = clock_mono_ms();
    bool tick = mono >= in->next_tick_ms;
    if (n == 0)
        ingest_join(in); /* idle: nothing to overlap, let offsets and lag catch up now */
    if (n > 0) {
        in->stats.batches++;
        metrics_hist_observe(&in->stats.batch_sizes, (double)n);
        ingest_process(in, n);
    }
    if (n > 0 || tick) {
        if (tick)
            in->next_tick_ms = mono + 1000;
        ingest_finish(in, tick, n == 0);
    }
    for (size_t i = 0; i < n; i++)
        rd_kafka_message_destroy(in->msgs[i]);
}
