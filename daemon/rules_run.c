/* rules_run — see rules_run.h. Keys of one (rule, shop) share the hash tag
 * PREFIX{x:RULE:SHOP} (README "Rules engine"):
 *   :meta        hash   closed → end (epoch ms) of the last period closed and emitted
 *   :periods     zset   labels evaluated (score: period start)
 *   :LABEL:state string "evaluated", then "emitted" once Kafka has every record
 *   :LABEL:final hash   agent → final snapshot JSON
 *   :LABEL:board zset   agent → score (the period's leaderboard)
 *   :LABEL:alerts hash  "agent alert" → alert JSON of the close
 *   :LABEL:live  hash   agent → latest live snapshot JSON
 *   :streaks     hash   agent → "LABEL s1,s2,..." (alerts then payouts) of its last close
 *   :livealerts  hash   "agent\x1falert" → starts_at of a firing live alert
 *   :snapshots, :alerts streams of every final snapshot / alert event
 * Closing is: evaluate, record once (csm_close), produce to Kafka, flush, mark emitted.
 * A crash anywhere re-produces the records Redis holds: identical, never different. */
#include "daemon/rules_run.h"
#include "aggregator/keys.h"
#include "common/buf.h"
#include "common/log.h"
#include "daemon/version.h"
#include "rules/close.h"
#include "rules/eval.h"
#include "rules/prev.h"

#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct rules_run {
    struct rule_set *set;
    struct rules_stats stats;
    int64_t *next_live;   /* per rule: wall ms of the next live evaluation */
    const char *crash_at; /* CSMETRICS_CRASH_AT (rr_crash_point); NULL: none */
};

struct rules_run *rules_run_new(struct rule_set *set)
{
    struct rules_run *rr = xcalloc(1, sizeof(*rr));
    rules_run_replace(rr, set);
    rr->crash_at = getenv("CSMETRICS_CRASH_AT");
    if (rr->crash_at && !*rr->crash_at)
        rr->crash_at = NULL;
    if (rr->crash_at)
        log_msg(LOG_WARN, "rules", "test hook CSMETRICS_CRASH_AT=%s is set", rr->crash_at);
    return rr;
}

/* The fault suite's hook (README "Guarantees"): with CSMETRICS_CRASH_AT=POINT in the
 * environment, the daemon kills itself (SIGKILL, like a crash) the first time a period
 * close reaches POINT: after_record (the close is in Redis, nothing produced),
 * after_produce (records queued in librdkafka, not flushed), after_flush (Kafka has
 * them, Redis does not say emitted), after_emitted (marked emitted). */
static void rr_crash_point(const struct rules_run *rr, const char *point)
{
    if (!rr->crash_at || strcmp(rr->crash_at, point) != 0)
        return;
    log_msg(LOG_WARN, "rules", "CSMETRICS_CRASH_AT=%s: killing the daemon", point);
    raise(SIGKILL);
}

void rules_run_replace(struct rules_run *rr, struct rule_set *set)
{
    if (!set)
        return;
    rule_set_destroy(rr->set);
    rr->set = set;
    free(rr->next_live);
    rr->next_live = xcalloc(set->n + 1, sizeof(*rr->next_live));
}

void rules_run_destroy(struct rules_run *rr)
{
    if (!rr)
        return;
    rule_set_destroy(rr->set);
    free(rr->next_live);
    free(rr);
}

const struct rule_set *rules_run_set(const struct rules_run *rr)
{
    return rr->set;
}

const struct rules_stats *rules_run_stats(const struct rules_run *rr)
{
    return &rr->stats;
}

/* ---- small helpers ---- */

static char *rr_key(const struct buf *tag, const char *label, const char *name)
{
    struct buf k;
    buf_init(&k);
    buf_add(&k, tag->data, tag->len);
    if (label) {
        buf_addc(&k, ':');
        buf_adds(&k, label);
    }
    buf_addc(&k, ':');
    buf_adds(&k, name);
    return k.data;
}

static int64_t rr_lateness(const struct rule *r, const struct csm_config *cfg)
{
    return r->has_lateness ? r->lateness_ms : cfg->lateness_ms;
}

/* Strings of a reply array (borrowed until the reply is freed). */
static bool rr_is_array(const redisReply *r)
{
    return r && r->type == REDIS_REPLY_ARRAY;
}

/* ---- observer hooks (rules_env.obs) ---- */

static double rr_mono_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* name: an alert name, or a close's "agent alert" key (the longest alert name ending it). */
static void rr_observe_alert(const struct rules_env *env, const struct rule *r, const char *name,
                             bool key, const char *state)
{
    if (!env->obs || !env->obs->alert)
        return;
    const char *alert = name;
    size_t kl = strlen(name), best = 0;
    for (size_t a = 0; key && a < r->nalerts; a++) {
        size_t al = strlen(r->alerts[a].name);
        if (al < kl && al > best && name[kl - al - 1] == ' ' &&
            strcmp(name + kl - al, r->alerts[a].name) == 0) {
            alert = r->alerts[a].name;
            best = al;
        }
    }
    env->obs->alert(env->obs->ud, r->name, alert, state);
}

/* ---- one evaluation ---- */

static int rr_strcmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

struct rr_eval {
    struct eval_input in;
    struct eval_output out;
    struct prev_values *prev;
    int **streaks;
    char **agent_ids;
};

static void rr_eval_release(struct rr_eval *e)
{
    eval_output_release(&e->out);
    for (size_t i = 0; i < e->in.nagents; i++) {
        prev_values_release(&e->prev[i]);
        free(e->streaks[i]);
        free(e->agent_ids[i]);
    }
    free(e->prev);
    free(e->streaks);
    free(e->agent_ids);
    free(e->in.agents);
    *e = (struct rr_eval){0};
}

/* Reads the shop's figures for p (and the previous period's snapshots and streaks) and
 * runs the evaluation. 0, 1 when the shop has no figures for p, -1 on error. */
static int rr_evaluate(const struct rules_env *env, const struct rule *r, const char *shop,
                       const struct period *p, bool final, struct rr_eval *e)
{
    char err[512];
    double t0 = rr_mono_s();
    *e = (struct rr_eval){0};
    const char *prefix = env->cfg->redis_key_prefix;
    struct buf team, tag, at;
    buf_init(&team);
    buf_init(&tag);
    buf_init(&at);
    keys_owner_tag(&team, prefix, KEYS_TEAM, shop, NULL);
    keys_rule_tag(&tag, prefix, r->name, shop);
    int rc = -1;
    redisReply *agents = NULL, *prevs = NULL, *streaks = NULL;
    e->in = (struct eval_input){
        .rule = r, .shop_id = shop, .period = *p, .final = final, .version = CSM_VERSION};
    int fr = store_read_figures(env->st, team.data, p, &e->in.team, err, sizeof(err));
    if (fr != 0) {
        if (fr < 0)
            log_msg(LOG_ERR, "rules", "cannot read team figures rule=%s shop=%s period=%s: %s",
                    r->name, shop, p->label, err);
        rc = fr;
        goto out;
    }
    agents = rconn_command(env->rc, err, sizeof(err), "SMEMBERS %s:agents", team.data);
    struct period pp;
    period_prev(p, &pp);
    char *pk = rr_key(&tag, pp.label, "final"), *sk = rr_key(&tag, NULL, "streaks");
    prevs = agents ? rconn_command(env->rc, err, sizeof(err), "HGETALL %s", pk) : NULL;
    streaks = prevs ? rconn_command(env->rc, err, sizeof(err), "HGETALL %s", sk) : NULL;
    free(pk);
    free(sk);
    if (!rr_is_array(agents) || !rr_is_array(prevs) || !rr_is_array(streaks)) {
        log_msg(LOG_ERR, "rules", "cannot read agents rule=%s shop=%s: %s", r->name, shop, err);
        goto out;
    }
    /* Agents in id order: the evaluation (and so the JSON) must not depend on SMEMBERS. */
    size_t n = agents->elements;
    char **ids = xcalloc(n + 1, sizeof(*ids));
    for (size_t i = 0; i < n; i++)
        ids[i] = xstrdup(agents->element[i]->str);
    qsort(ids, n, sizeof(*ids), rr_strcmp);
    e->in.agents = xcalloc(n + 1, sizeof(*e->in.agents));
    e->prev = xcalloc(n + 1, sizeof(*e->prev));
    e->streaks = xcalloc(n + 1, sizeof(*e->streaks));
    e->agent_ids = xcalloc(n + 1, sizeof(*e->agent_ids));
    size_t k = 0;
    size_t nalerts = r->nalerts + r->npayouts;
    for (size_t i = 0; i < n; i++) {
        buf_reset(&at);
        keys_owner_tag(&at, prefix, KEYS_AGENT, shop, ids[i]);
        struct eval_agent *a = &e->in.agents[k];
        int ar = store_read_figures(env->st, at.data, p, &a->fig, err, sizeof(err));
        if (ar < 0) {
            for (size_t j = i; j < n; j++)
                free(ids[j]);
            free(ids);
            e->in.nagents = k;
            log_msg(LOG_ERR, "rules", "cannot read figures rule=%s shop=%s: %s", r->name, shop,
                    err);
            goto out;
        }
        if (ar == 1) {
            free(ids[i]);
            continue;
        }
        e->agent_ids[k] = ids[i];
        a->agent_id = ids[i];
        for (size_t j = 0; j + 1 < prevs->elements; j += 2)
            if (strcmp(prevs->element[j]->str, ids[i]) == 0)
                prev_values_parse(&e->prev[k], prevs->element[j + 1]->str);
        a->prev = prev_values_view(&e->prev[k]);
        for (size_t j = 0; j + 1 < streaks->elements; j += 2)
            if (strcmp(streaks->element[j]->str, ids[i]) == 0)
                e->streaks[k] = prev_streaks_parse(streaks->element[j + 1]->str, pp.label, nalerts);
        a->streaks = e->streaks[k];
        k++;
    }
    free(ids);
    e->in.nagents = k;
    if (eval_run(&e->in, &e->out, err, sizeof(err)) < 0) {
        log_msg(LOG_ERR, "rules", "cannot evaluate rule=%s shop=%s period=%s: %s", r->name, shop,
                p->label, err);
        goto out;
    }
    rc = 0;
    if (env->obs && env->obs->evaluated)
        env->obs->evaluated(env->obs->ud, final, rr_mono_s() - t0);
out:
    if (agents)
        freeReplyObject(agents);
    if (prevs)
        freeReplyObject(prevs);
    if (streaks)
        freeReplyObject(streaks);
    buf_release(&team);
    buf_release(&tag);
    buf_release(&at);
    return rc;
}

/* ---- closing ---- */

static int rr_produce(const struct rules_env *env, const char *topic, const char *key,
                      const char *json)
{
    return consumer_produce(env->kc, topic, key, strlen(key), json, strlen(json));
}

/* Records the evaluation once (csm_close). 0 recorded now or before, -1 error. */
static int rr_record(const struct rules_env *env, const struct buf *tag, const struct rule *r,
                     const struct period *p, struct rr_eval *e)
{
    char err[512];
    const char *names[] = {"state", "final", "board", NULL, NULL, NULL, NULL, "alerts"};
    char *keys[8];
    for (int i = 0; i < 8; i++)
        keys[i] = names[i] ? rr_key(tag, p->label, names[i]) : NULL;
    keys[3] = rr_key(tag, NULL, "streaks");
    keys[4] = rr_key(tag, NULL, "snapshots");
    keys[5] = rr_key(tag, NULL, "alerts");
    keys[6] = rr_key(tag, NULL, "periods");
    size_t cap = 16 + e->out.n * 4;
    for (size_t i = 0; i < e->out.n; i++)
        cap += e->out.snaps[i].nalerts * 2;
    const char **argv = xcalloc(cap, sizeof(*argv));
    size_t *lens = xcalloc(cap, sizeof(*lens));
    char **owned = xcalloc(cap, sizeof(*owned));
    size_t n = 0, no = 0;
#define PUSH(s) (argv[n++] = (s))
#define PUSHO(s) (owned[no++] = (s), argv[n++] = owned[no - 1])
    PUSH("FCALL");
    PUSH("csm_close");
    PUSH("8");
    for (int i = 0; i < 8; i++)
        PUSH(keys[i]);
    PUSH(p->label);
    char num[64];
    snprintf(num, sizeof(num), "%" PRId64, p->start_ms);
    PUSHO(xstrdup(num));
    snprintf(num, sizeof(num), "%zu", e->out.n);
    PUSHO(xstrdup(num));
    size_t nal = 0;
    for (size_t i = 0; i < e->out.n; i++) {
        const struct eval_snapshot *s = &e->out.snaps[i];
        PUSH(s->agent_id);
        PUSH(s->json ? s->json : "");
        if (s->scored) {
            snprintf(num, sizeof(num), "%.2f", s->score);
            PUSHO(xstrdup(num));
            struct buf st;
            buf_init(&st);
            for (size_t k = 0; k < r->nalerts + r->npayouts; k++)
                buf_printf(&st, "%s%d", k ? "," : "", s->streaks[k]);
            PUSHO(st.data ? st.data : xstrdup(""));
        } else {
            PUSH("");
            PUSH("");
        }
        nal += s->nalerts;
    }
    snprintf(num, sizeof(num), "%zu", nal);
    PUSHO(xstrdup(num));
    for (size_t i = 0; i < e->out.n; i++) {
        const struct eval_snapshot *s = &e->out.snaps[i];
        for (size_t k = 0; k < s->nalerts; k++) {
            struct buf f;
            buf_init(&f);
            buf_printf(&f, "%s %s", s->agent_id, r->alerts[s->alert_index[k]].name);
            PUSHO(f.data);
            PUSHO(eval_alert_json(&e->in, s, s->alert_index[k], "firing", p->end_ms));
        }
    }
#undef PUSH
#undef PUSHO
    for (size_t i = 0; i < n; i++)
        lens[i] = strlen(argv[i]);
    rconn_append(env->rc, (int)n, argv, lens);
    redisReply **rep = NULL;
    size_t nr = 0;
    int rc = rconn_exec(env->rc, &rep, &nr, err, sizeof(err));
    if (rc == 0 && (nr != 1 || rep[0]->type == REDIS_REPLY_ERROR)) {
        snprintf(err, sizeof(err), "%s", nr == 1 ? rep[0]->str : "no reply");
        rc = -1;
    }
    if (rc < 0)
        log_msg(LOG_ERR, "rules", "cannot record close rule=%s period=%s: %s", r->name, p->label,
                err);
    rconn_replies_free(rep, nr);
    for (size_t i = 0; i < no; i++)
        free(owned[i]);
    for (int i = 0; i < 8; i++)
        free(keys[i]);
    free(owned);
    free(argv);
    free(lens);
    return rc;
}

/* Produces what Redis recorded for the close, then marks it emitted and moves the cursor. */
static int rr_emit(struct rules_run *rr, const struct rules_env *env, const struct buf *tag,
                   const struct rule *r, const char *shop, const struct period *p)
{
    struct rules_stats *stats = &rr->stats;
    char err[512];
    char *fk = rr_key(tag, p->label, "final"), *ak = rr_key(tag, p->label, "alerts");
    redisReply *snaps = rconn_command(env->rc, err, sizeof(err), "HGETALL %s", fk);
    redisReply *alerts = snaps ? rconn_command(env->rc, err, sizeof(err), "HGETALL %s", ak) : NULL;
    int rc = -1;
    if (!rr_is_array(snaps) || !rr_is_array(alerts))
        goto out;
    for (size_t i = 0; i + 1 < snaps->elements; i += 2) {
        char id[65];
        eval_snapshot_id(r->name, shop, snaps->element[i]->str, p->label, true, id);
        if (rr_produce(env, env->cfg->topic_snapshots, id, snaps->element[i + 1]->str) < 0)
            goto out;
        stats->snapshots++;
    }
    for (size_t i = 0; i + 1 < alerts->elements; i += 2) {
        if (rr_produce(env, env->cfg->topic_alerts, alerts->element[i]->str,
                       alerts->element[i + 1]->str) < 0)
            goto out;
        stats->alerts++;
        rr_observe_alert(env, r, alerts->element[i]->str, true, "firing");
    }
    rr_crash_point(rr, "after_produce");
    if (consumer_flush(env->kc, 30000) < 0) {
        snprintf(err, sizeof(err), "kafka delivery failed");
        goto out;
    }
    rr_crash_point(rr, "after_flush");
    char *sk = rr_key(tag, p->label, "state"), *mk = rr_key(tag, NULL, "meta");
    rconn_appendf(env->rc, "SET %s emitted", sk);
    rconn_appendf(env->rc, "HSET %s closed %lld", mk, (long long)p->end_ms);
    rconn_appendf(env->rc, "PUBLISH %ssnapshots %s", env->cfg->redis_key_prefix, sk);
    redisReply **rep = NULL;
    size_t nr = 0;
    rc = rconn_exec(env->rc, &rep, &nr, err, sizeof(err));
    rconn_replies_free(rep, nr);
    free(sk);
    free(mk);
    if (rc == 0)
        rr_crash_point(rr, "after_emitted");
    if (rc == 0)
        log_msg(LOG_NOTICE, "rules",
                "period closed rule=%s shop=%s period=%s snapshots=%zu alerts=%zu", r->name, shop,
                p->label, snaps->elements / 2, alerts->elements / 2);
    if (rc == 0 && env->obs && env->obs->closed)
        env->obs->closed(env->obs->ud, r->name, shop, p->label);
    /* Recorded as emitted: a crash before this line re-sends the same alerts, which is fine. */
    for (size_t i = 1; rc == 0 && i < alerts->elements; i += 2)
        alertmgr_final(env->am, alerts->element[i]->str, p->end_ms + rr_lateness(r, env->cfg));
out:
    if (rc < 0)
        log_msg(LOG_ERR, "rules", "cannot emit close rule=%s shop=%s period=%s: %s", r->name, shop,
                p->label, err);
    if (snaps)
        freeReplyObject(snaps);
    if (alerts)
        freeReplyObject(alerts);
    free(fk);
    free(ak);
    return rc;
}

static int rr_close(struct rules_run *rr, const struct rules_env *env, const struct rule *r,
                    const char *shop, const struct buf *tag, const struct period *p)
{
    char err[512];
    char *sk = rr_key(tag, p->label, "state");
    redisReply *st = rconn_command(env->rc, err, sizeof(err), "GET %s", sk);
    free(sk);
    if (!st)
        return -1;
    bool recorded = st->type == REDIS_REPLY_STRING;
    bool emitted = recorded && strcmp(st->str, "emitted") == 0;
    freeReplyObject(st);
    if (!recorded) {
        struct rr_eval e;
        int er = rr_evaluate(env, r, shop, p, true, &e);
        if (er < 0) {
            rr_eval_release(&e);
            return -1;
        }
        if (er == 0 && rr_record(env, tag, r, p, &e) < 0) {
            rr_eval_release(&e);
            return -1;
        }
        if (er == 0)
            rr_crash_point(rr, "after_record");
        rr_eval_release(&e);
        rr->stats.closes++;
    }
    if (emitted) {
        char *mk = rr_key(tag, NULL, "meta");
        redisReply *x = rconn_command(env->rc, err, sizeof(err), "HSET %s closed %lld", mk,
                                      (long long)p->end_ms);
        free(mk);
        if (!x)
            return -1;
        freeReplyObject(x);
        return 0;
    }
    return rr_emit(rr, env, tag, r, shop, p);
}

/* Closes every period of rule r in shop whose end + lateness the watermark passed. */
static int rr_close_shop(struct rules_run *rr, const struct rules_env *env, const struct rule *r,
                         const char *shop)
{
    char err[512];
    struct buf tag, team;
    buf_init(&tag);
    buf_init(&team);
    keys_rule_tag(&tag, env->cfg->redis_key_prefix, r->name, shop);
    keys_owner_tag(&team, env->cfg->redis_key_prefix, KEYS_TEAM, shop, NULL);
    char *mk = rr_key(&tag, NULL, "meta");
    redisReply *m = rconn_command(env->rc, err, sizeof(err), "HGET %s closed", mk);
    free(mk);
    int rc = -1;
    redisReply *ps = NULL;
    if (!m)
        goto out;
    long long cursor = m->type == REDIS_REPLY_STRING ? strtoll(m->str, NULL, 10) : LLONG_MIN;
    freeReplyObject(m);
    ps = rconn_command(env->rc, err, sizeof(err), "ZRANGEBYSCORE %s:periods -inf +inf", team.data);
    if (!rr_is_array(ps))
        goto out;
    int64_t late = rr_lateness(r, env->cfg);
    rc = 0;
    const char **labels = xcalloc(ps->elements + 1, sizeof(*labels));
    struct period *due = xcalloc(ps->elements + 1, sizeof(*due));
    for (size_t i = 0; i < ps->elements; i++)
        labels[i] = ps->element[i]->str;
    size_t ndue =
        close_due(r->period, labels, ps->elements,
                  cursor == LLONG_MIN ? INT64_MIN : (int64_t)cursor, env->wm_ms, late, due);
    for (size_t i = 0; i < ndue && rc == 0; i++)
        if (rr_close(rr, env, r, shop, &tag, &due[i]) < 0)
            rc = -1;
    free(labels);
    free(due);
out:
    if (ps)
        freeReplyObject(ps);
    buf_release(&tag);
    buf_release(&team);
    return rc;
}

/* ---- live ---- */

static int rr_live_shop(struct rules_run *rr, const struct rules_env *env, const struct rule *r,
                        const char *shop)
{
    char err[512];
    struct period p;
    if (env->wm_ms <= 0 || period_of(r->period, env->wm_ms, &p) < 0)
        return 0;
    struct rr_eval e;
    int er = rr_evaluate(env, r, shop, &p, false, &e);
    if (er != 0) {
        rr_eval_release(&e);
        return er < 0 ? -1 : 0;
    }
    rr->stats.live_evaluations++;
    struct buf tag;
    buf_init(&tag);
    keys_rule_tag(&tag, env->cfg->redis_key_prefix, r->name, shop);
    char *lk = rr_key(&tag, p.label, "live"), *ak = rr_key(&tag, NULL, "livealerts");
    char *sk = rr_key(&tag, NULL, "alerts");
    redisReply *firing = rconn_command(env->rc, err, sizeof(err), "HGETALL %s", ak);
    int rc = firing && rr_is_array(firing) ? 0 : -1;
    rconn_appendf(env->rc, "DEL %s", lk);
    for (size_t i = 0; rc == 0 && i < e.out.n; i++) {
        const struct eval_snapshot *s = &e.out.snaps[i];
        if (!s->json)
            continue;
        rconn_appendf(env->rc, "HSET %s %s %s", lk, s->agent_id, s->json);
        rr_produce(env, env->cfg->topic_snapshots, s->snapshot_id, s->json);
        for (size_t a = 0; a < r->nalerts; a++) {
            if (!r->alerts[a].live)
                continue;
            bool now = false;
            for (size_t k = 0; k < s->nalerts; k++)
                now |= s->alert_index[k] == a;
            struct buf f;
            buf_init(&f);
            buf_printf(&f, "%s\x1f%s", s->agent_id, r->alerts[a].name);
            long long since = -1;
            for (size_t j = 0; j + 1 < firing->elements; j += 2)
                if (strcmp(firing->element[j]->str, f.data) == 0)
                    since = strtoll(firing->element[j + 1]->str, NULL, 10);
            if (now != (since >= 0)) {
                int64_t starts = now ? env->now_ms : since;
                char *json = eval_alert_json(&e.in, s, a, now ? "firing" : "resolved", starts);
                if (json) {
                    if (now)
                        rconn_appendf(env->rc, "HSET %s %s %lld", ak, f.data, (long long)starts);
                    else
                        rconn_appendf(env->rc, "HDEL %s %s", ak, f.data);
                    rconn_appendf(env->rc, "XADD %s MAXLEN ~ 100000 * alert %s", sk, json);
                    rr_produce(env, env->cfg->topic_alerts, f.data, json);
                    alertmgr_live(env->am, json, r->interval_ms, env->now_ms);
                    rr->stats.alerts++;
                    rr_observe_alert(env, r, r->alerts[a].name, false, now ? "firing" : "resolved");
                    free(json);
                }
            } else if (now && alertmgr_enabled(env->am)) {
                /* still firing: keeps Alertmanager's copy from expiring (also after a restart) */
                char *json = eval_alert_json(&e.in, s, a, "firing", since);
                alertmgr_live(env->am, json, r->interval_ms, env->now_ms);
                free(json);
            }
            buf_release(&f);
        }
    }
    redisReply **rep = NULL;
    size_t nr = 0;
    if (rc == 0 && rconn_exec(env->rc, &rep, &nr, err, sizeof(err)) < 0)
        rc = -1;
    rconn_replies_free(rep, nr);
    if (firing)
        freeReplyObject(firing);
    free(lk);
    free(ak);
    free(sk);
    buf_release(&tag);
    rr_eval_release(&e);
    return rc;
}

int rules_run_step(struct rules_run *rr, const struct rules_env *env)
{
    if (!rr->set || rr->set->n == 0 || env->wm_ms <= 0)
        return 0;
    char err[512];
    redisReply *shops = rconn_command(env->rc, err, sizeof(err), "SMEMBERS %s{r}:shops",
                                      env->cfg->redis_key_prefix);
    if (!rr_is_array(shops)) {
        if (shops)
            freeReplyObject(shops);
        rr->stats.errors++;
        return -1;
    }
    /* Shops in id order: deterministic logs and emission order. */
    char **ids = xcalloc(shops->elements + 1, sizeof(*ids));
    for (size_t i = 0; i < shops->elements; i++)
        ids[i] = shops->element[i]->str;
    int rc = 0;
    for (size_t k = 0; k < rr->set->n && rc == 0; k++) {
        const struct rule *r = rr->set->rules[k];
        bool live = r->interval_ms > 0 && env->now_ms >= rr->next_live[k];
        for (size_t i = 0; i < shops->elements && rc == 0; i++) {
            if (!rule_applies_to(r, ids[i]))
                continue;
            rc = rr_close_shop(rr, env, r, ids[i]);
            if (rc == 0 && live)
                rc = rr_live_shop(rr, env, r, ids[i]);
        }
        if (live)
            rr->next_live[k] = env->now_ms + r->interval_ms;
    }
    free(ids);
    freeReplyObject(shops);
    if (rc < 0)
        rr->stats.errors++;
    return rc;
}
