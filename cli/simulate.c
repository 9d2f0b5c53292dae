/* simulate — `csmetrics simulate`: deterministic, realistic shop traffic (events.md) into
 * Kafka or as TOPIC<TAB>KEY<TAB>JSON lines. A discrete-event simulation: conversation
 * arrivals are drawn in time order, each expands into all its future events (messages,
 * transfer, complaint, order and its follow-ups) on a min-heap, and the heap is drained up
 * to the next arrival, so the output is globally ordered by event time across topics.
 * Invariant: the valid events are a pure function of the options (and of the clock only
 * when --start is omitted); --dup-rate/--bad-rate draw from a separate PRNG stream, so they
 * add messages without changing the valid ones. */
#include "cli/cli.h"
#include "common/buf.h"
#include "common/clock.h"
#include "common/log.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <yajl/yajl_gen.h>

static volatile sig_atomic_t sim_stop;

static void sim_on_signal(int sig)
{
    (void)sig;
    sim_stop = sim_stop + 1;
}

#define MS_SEC 1000LL
#define MS_MIN (60 * MS_SEC)
#define MS_HOUR (60 * MS_MIN)
#define MS_DAY (24 * MS_HOUR)

/* ---- PRNG: xoshiro256** seeded through splitmix64 (never rand()) ---- */

struct rng {
    uint64_t s[4];
};

static uint64_t rng_splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void rng_seed(struct rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = rng_splitmix64(&seed);
}

static uint64_t rng_rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(struct rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rng_rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rng_rotl(s[3], 45);
    return result;
}

/* Uniform in [0, n), n > 0, without modulo bias. */
static uint64_t rng_below(struct rng *r, uint64_t n)
{
    uint64_t lim = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do
        x = rng_next(r);
    while (x >= lim);
    return x % n;
}

/* Uniform in [lo, hi], lo <= hi. */
static int64_t rng_range(struct rng *r, int64_t lo, int64_t hi)
{
    return lo + (int64_t)rng_below(r, (uint64_t)(hi - lo) + 1);
}

/* Uniform in [0, 1) with 53 random bits. */
static double rng_unit(struct rng *r)
{
    return (double)(rng_next(r) >> 11) * 0x1.0p-53;
}

static bool rng_chance(struct rng *r, double p)
{
    return rng_unit(r) < p;
}

/* Exponentially distributed gap in ms with the given mean. */
static int64_t rng_exp_ms(struct rng *r, double mean_ms)
{
    return (int64_t)(-log(1.0 - rng_unit(r)) * mean_ms) + 1;
}

/* ---- the model ---- */

enum sim_topic { TOPIC_CHAT, TOPIC_ORDERS, TOPIC_REVIEWS, TOPIC__COUNT };

enum sim_type {
    EV_MESSAGE,
    EV_TRANSFER,
    EV_COMPLAINT,
    EV_CREATED,
    EV_PAID,
    EV_REFUNDED,
    EV_CANCELLED,
    EV_FLAGGED,
    EV_REVIEW,
    EV_TARGET,
    EV_ABSENCE,
};

static const struct sim_type_info {
    const char *name;
    enum sim_topic topic;
} sim_types[] = {
    [EV_MESSAGE] = {.name = "message", .topic = TOPIC_CHAT},
    [EV_TRANSFER] = {.name = "transfer", .topic = TOPIC_CHAT},
    [EV_COMPLAINT] = {.name = "complaint", .topic = TOPIC_CHAT},
    [EV_CREATED] = {.name = "created", .topic = TOPIC_ORDERS},
    [EV_PAID] = {.name = "paid", .topic = TOPIC_ORDERS},
    [EV_REFUNDED] = {.name = "refunded", .topic = TOPIC_ORDERS},
    [EV_CANCELLED] = {.name = "cancelled", .topic = TOPIC_ORDERS},
    [EV_FLAGGED] = {.name = "flagged", .topic = TOPIC_ORDERS},
    [EV_REVIEW] = {.name = "review", .topic = TOPIC_REVIEWS},
    [EV_TARGET] = {.name = "target", .topic = TOPIC_REVIEWS},
    [EV_ABSENCE] = {.name = "absence", .topic = TOPIC_REVIEWS},
};

static const char *const sim_items[] = {"follow_up", "execution", "self_total"};
static const char *const sim_roles[] = {"self", "manager", "indirect_manager"};
static const char *const sim_flag_reasons[] = {"fraud_check", "address_problem", "payment_risk",
                                               "duplicate_order"};

/* Share of the peak conversation rate per local hour: quiet nights, a morning peak
 * and the evening peak that online shops see. */
static const double sim_hour_profile[24] = {
    0.25, 0.12, 0.06, 0.04, 0.03, 0.04, 0.08, 0.18, 0.40, 0.75, 0.95, 1.00,
    0.80, 0.85, 0.95, 0.95, 0.90, 0.80, 0.75, 0.85, 1.00, 1.00, 0.85, 0.55,
};
#define SIM_PEAK_CONV_PER_AGENT_HOUR 10.0

enum ts_format { TS_LOCAL_MS, TS_EPOCH_MS, TS_UTC_MS, TS_LOCAL_US };

enum {
    F_NO_SHOP = 1 << 0,    /* omit shop_id (order follow-ups take the shop of `created`) */
    F_AMOUNT_NUM = 1 << 1, /* amount as a JSON number instead of a string */
    F_HAS_AGENT = 1 << 2,  /* created: explicit agent_id */
    F_NO_CONV = 1 << 3,    /* complaint without conversation_id */
    F_OUT = 1 << 4,        /* message direction out */
    F_HAS_MAX = 1 << 5,    /* review: explicit max */
    F_CHANNEL = 1 << 6,    /* an extra field consumers must ignore */
};

/* One pending event; small and flat because the heap holds many of them. */
struct sim_event {
    int64_t ts;   /* epoch ms */
    uint64_t seq; /* tie-break: push order, keeps the output deterministic */
    uint64_t conv, order;
    int64_t amount; /* cents; reviews: score in tenths */
    int32_t customer;
    int32_t from_date, to_date; /* absence: yyyymmdd */
    int16_t agent, to_agent;    /* agent indexes, -1 when none */
    int16_t shop;               /* shop index; -1: the agent's shop */
    int16_t year, max;
    uint8_t type, tsfmt, flags, month, item, role, reason;
};

struct sim_agent {
    char id[16];
    int shop;
    double skill;                  /* 0 weak .. 1 skilled */
    int64_t away_from, away_until; /* [from, until) epoch ms, both 0 when never absent */
};

struct sim_opts {
    uint64_t seed;
    int agents, shops, customers;
    int64_t start_ms, duration_ms;
    bool start_set;
    double speed, rate, dup_rate, bad_rate;
    uint64_t max_events; /* 0: no limit */
    const char *brokers, *bootstrap_file, *tz;
    const char *topics[TOPIC__COUNT];
    bool jsonl;
};

struct sim_dup {
    uint64_t due; /* send once this many valid events are out */
    int topic;
    char *key, *value;
};

struct sim {
    struct sim_opts o;
    struct rng rng, noise;
    int64_t start_ms, end_ms;
    struct sim_agent *agents;
    int32_t *last_agent; /* per customer, -1 when none */
    struct sim_event *heap;
    size_t heap_len, heap_cap;
    uint64_t seq, next_conv, next_order, next_bad;
    yajl_gen g;
    struct buf json, key, line;
    /* output */
    FILE *out;
    rd_kafka_t *rk;
    rd_kafka_topic_t *rkt[TOPIC__COUNT];
    struct sim_dup *dups;
    size_t ndups, dups_cap;
    int64_t wall0;
    /* counters */
    uint64_t events, messages, per_topic[TOPIC__COUNT], duplicates, bad_json, bad_amount,
        unknown_type, delivered, dr_failed, produce_failed;
    uint64_t failed; /* all of them, set by sim_kafka_close */
    struct log_complaint dr_complaint;
    bool io_error;
};

/* ---- time ---- */

static int64_t sim_floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static int64_t sim_days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* Local calendar fields of `ms` in the process time zone (TZ set from --tz). */
static void sim_local(int64_t ms, struct tm *tm)
{
    time_t t = (time_t)sim_floor_div(ms, MS_SEC);
    localtime_r(&t, tm);
}

/* Epoch ms of local midnight of y-m-d (m may overflow: mktime normalises). */
static int64_t sim_local_midnight(int y, int m, int d)
{
    struct tm tm = {.tm_year = y - 1900, .tm_mon = m - 1, .tm_mday = d, .tm_isdst = -1};
    return (int64_t)mktime(&tm) * MS_SEC;
}

static int sim_yyyymmdd(int64_t ms)
{
    struct tm tm;
    sim_local(ms, &tm);
    return (tm.tm_year + 1900) * 10000 + (tm.tm_mon + 1) * 100 + tm.tm_mday;
}

static void sim_format_ts(char *out, size_t n, int64_t ms, enum ts_format fmt, uint64_t salt)
{
    struct tm tm;
    time_t t = (time_t)sim_floor_div(ms, MS_SEC);
    int frac = (int)(ms - (int64_t)t * MS_SEC);
    if (fmt == TS_UTC_MS) {
        gmtime_r(&t, &tm);
        snprintf(out, n, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
        return;
    }
    localtime_r(&t, &tm);
    long off = tm.tm_gmtoff / 60;
    char sign = off < 0 ? '-' : '+';
    if (off < 0)
        off = -off;
    if (fmt == TS_LOCAL_US) /* finer than ms: consumers truncate to ms */
        snprintf(out, n, "%04d-%02d-%02dT%02d:%02d:%02d.%03d%03d%c%02ld:%02ld", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac,
                 (int)(salt % 1000), sign, off / 60, off % 60);
    else
        snprintf(out, n, "%04d-%02d-%02dT%02d:%02d:%02d.%03d%c%02ld:%02ld", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac, sign, off / 60,
                 off % 60);
}

/* ---- event heap, ordered by (ts, seq) ---- */

static bool sim_ev_before(const struct sim_event *a, const struct sim_event *b)
{
    return a->ts != b->ts ? a->ts < b->ts : a->seq < b->seq;
}

static void sim_push(struct sim *s, struct sim_event ev)
{
    if (ev.ts >= s->end_ms)
        return; /* beyond the simulated window: never happens */
    ev.seq = s->seq++;
    if (s->heap_len == s->heap_cap) {
        s->heap_cap = s->heap_cap ? s->heap_cap * 2 : 1024;
        s->heap = xrealloc(s->heap, s->heap_cap * sizeof(*s->heap));
    }
    size_t i = s->heap_len++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!sim_ev_before(&ev, &s->heap[p]))
            break;
        s->heap[i] = s->heap[p];
        i = p;
    }
    s->heap[i] = ev;
}

static struct sim_event sim_pop(struct sim *s)
{
    struct sim_event top = s->heap[0];
    struct sim_event last = s->heap[--s->heap_len];
    size_t i = 0, n = s->heap_len;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && sim_ev_before(&s->heap[c + 1], &s->heap[c]))
            c++;
        if (!sim_ev_before(&s->heap[c], &last))
            break;
        s->heap[i] = s->heap[c];
        i = c;
    }
    if (n > 0)
        s->heap[i] = last;
    return top;
}

/* ---- event construction ---- */

static struct sim_event sim_new_event(struct sim *s, enum sim_type type, int64_t ts)
{
    uint64_t r = rng_below(&s->rng, 100);
    enum ts_format fmt = r < 80   ? TS_LOCAL_MS
                         : r < 92 ? TS_EPOCH_MS
                         : r < 97 ? TS_UTC_MS
                                  : TS_LOCAL_US;
    return (struct sim_event){.type = (uint8_t)type,
                              .ts = ts,
                              .tsfmt = (uint8_t)fmt,
                              .agent = -1,
                              .to_agent = -1,
                              .shop = -1,
                              .customer = -1};
}

static bool sim_agent_away(const struct sim *s, int a, int64_t ts)
{
    return ts >= s->agents[a].away_from && ts < s->agents[a].away_until;
}

/* Another available agent of agent a's shop, or -1. */
static int sim_colleague(struct sim *s, int a, int64_t ts)
{
    int n = s->o.agents, start = (int)rng_below(&s->rng, (uint64_t)n);
    for (int k = 0; k < n; k++) {
        int b = (start + k) % n;
        if (b != a && s->agents[b].shop == s->agents[a].shop && !sim_agent_away(s, b, ts))
            return b;
    }
    return -1;
}

/* How long agent a takes to answer: skilled 15–30 s, weak 40–120 s, sometimes busy. */
static int64_t sim_response_ms(struct sim *s, int a)
{
    double weak = 1.0 - s->agents[a].skill;
    int64_t lo = (int64_t)((15 + weak * 25) * MS_SEC), hi = (int64_t)((30 + weak * 90) * MS_SEC);
    int64_t d = rng_range(&s->rng, lo, hi);
    if (rng_chance(&s->rng, 0.02 + 0.08 * weak)) /* busy with other chats */
        d *= rng_range(&s->rng, 3, 10);
    return d;
}

static int64_t sim_draw_amount(struct sim *s)
{
    static const int endings[] = {0, 90, 99, 80, 50, 0, 90, 0};
    double r = rng_unit(&s->rng);
    int64_t yuan = r < 0.5    ? rng_range(&s->rng, 19, 99)
                   : r < 0.85 ? rng_range(&s->rng, 100, 399)
                              : rng_range(&s->rng, 400, 1299);
    int64_t cents = yuan * 100 + endings[rng_below(&s->rng, sizeof(endings) / sizeof(endings[0]))];
    if (rng_chance(&s->rng, 0.15))
        cents *= rng_range(&s->rng, 2, 3);
    return cents;
}

/* An order of customer c in shop `shop`; agent -1 leaves attribution to the daemon.
 * `skill` shapes payment and refund odds. */
static void sim_order(struct sim *s, int64_t ts, int shop, int c, int agent, double skill)
{
    uint64_t id = ++s->next_order;
    int64_t amount = sim_draw_amount(s);
    struct sim_event ev = sim_new_event(s, EV_CREATED, ts);
    ev.order = id;
    ev.customer = c;
    ev.agent = (int16_t)agent;
    ev.shop = (int16_t)shop;
    ev.flags =
        (uint8_t)((agent >= 0 ? F_HAS_AGENT : 0) | (rng_chance(&s->rng, 0.25) ? F_AMOUNT_NUM : 0));
    ev.amount = amount;
    sim_push(s, ev);

    /* Follow-ups carry shop_id most of the time; the rest rely on the created order. */
#define FOLLOW_UP(type_, ts_)                                                                      \
    do {                                                                                           \
        ev = sim_new_event(s, (type_), (ts_));                                                     \
        ev.order = id;                                                                             \
        ev.shop = (int16_t)shop;                                                                   \
        ev.flags = (uint8_t)((rng_chance(&s->rng, 0.3) ? F_NO_SHOP : 0) |                          \
                             (rng_chance(&s->rng, 0.25) ? F_AMOUNT_NUM : 0));                      \
    } while (0)

    if (rng_chance(&s->rng, 0.006)) {
        FOLLOW_UP(EV_FLAGGED, ts + rng_range(&s->rng, MS_MIN, 60 * MS_MIN));
        ev.reason =
            (uint8_t)rng_below(&s->rng, sizeof(sim_flag_reasons) / sizeof(sim_flag_reasons[0]));
        sim_push(s, ev);
    }
    if (rng_chance(&s->rng, 0.80 + 0.10 * skill)) {
        int64_t paid_ts =
            ts + (rng_chance(&s->rng, 0.9) ? rng_range(&s->rng, 20 * MS_SEC, 30 * MS_MIN)
                                           : rng_range(&s->rng, 30 * MS_MIN, 12 * MS_HOUR));
        int64_t paid = amount;
        if (rng_chance(&s->rng, 0.1)) /* a coupon at checkout */
            paid -= rng_range(&s->rng, 1, amount / 2 > 2000 ? 20 : (amount / 2) / 100 + 1) * 100;
        if (paid < 0)
            paid = 0;
        FOLLOW_UP(EV_PAID, paid_ts);
        ev.amount = paid;
        sim_push(s, ev);
        if (paid > 0 && rng_chance(&s->rng, 0.07 + 0.05 * (1.0 - skill))) {
            int64_t refund =
                rng_chance(&s->rng, 0.6) ? paid : paid * rng_range(&s->rng, 10, 90) / 100;
            if (refund < 1)
                refund = 1;
            FOLLOW_UP(EV_REFUNDED, paid_ts + rng_range(&s->rng, 4 * MS_HOUR, 5 * MS_DAY));
            ev.amount = refund;
            sim_push(s, ev);
        }
    } else if (rng_chance(&s->rng, 0.7)) {
        FOLLOW_UP(EV_CANCELLED, ts + rng_range(&s->rng, 30 * MS_MIN, 24 * MS_HOUR));
        sim_push(s, ev);
    }
#undef FOLLOW_UP
}

static int sim_pick_customer(struct sim *s, int shop)
{
    /* Customer i belongs to shop i % shops; a tenth of them are regulars who chat often. */
    int nshops = s->o.shops;
    int count = (s->o.customers - shop + nshops - 1) / nshops;
    if (count <= 0)
        return -1;
    int k = rng_chance(&s->rng, 0.3) ? (int)rng_below(&s->rng, (uint64_t)(count / 10 + 1))
                                     : (int)rng_below(&s->rng, (uint64_t)count);
    if (k >= count)
        k = count - 1;
    return k * nshops + shop;
}

static void sim_message(struct sim *s, int64_t ts, uint64_t conv, int agent, int c, bool out)
{
    struct sim_event ev = sim_new_event(s, EV_MESSAGE, ts);
    ev.conv = conv;
    ev.agent = (int16_t)agent;
    ev.customer = c;
    ev.flags = (uint8_t)((out ? F_OUT : 0) | (rng_chance(&s->rng, 0.1) ? F_CHANNEL : 0));
    sim_push(s, ev);
}

/* One arrival at t0: a conversation with everything it leads to, or a silent order. */
static void sim_arrival(struct sim *s, int64_t t0)
{
    int a = -1;
    for (int tries = 0; tries < 8 && a < 0; tries++) {
        int cand = (int)rng_below(&s->rng, (uint64_t)s->o.agents);
        if (!sim_agent_away(s, cand, t0))
            a = cand;
    }
    if (a < 0)
        return; /* (nearly) everybody is on leave */
    int shop = s->agents[a].shop;
    int c = sim_pick_customer(s, shop);
    if (c < 0)
        return;
    if (rng_chance(&s->rng, 0.12)) { /* buys without asking anything */
        sim_order(s, t0, shop, c, -1, 0.5);
        return;
    }
    int last = s->last_agent[c];
    if (last >= 0 && s->agents[last].shop == shop && !sim_agent_away(s, last, t0) &&
        rng_chance(&s->rng, 0.5))
        a = last;

    uint64_t conv = ++s->next_conv;
    double weak = 1.0 - s->agents[a].skill;
    int n = 2 + (int)rng_below(&s->rng, 4) + (int)rng_below(&s->rng, 4) +
            (int)rng_below(&s->rng, 4) + (rng_chance(&s->rng, 0.1) ? 1 : 0);
    /* Some customers never get an answer (weak agents lose more), some get no answer to
     * their last question. */
    bool ignored = rng_chance(&s->rng, 0.005 + 0.04 * weak);
    bool unanswered = ignored || rng_chance(&s->rng, 0.02 + 0.06 * weak);
    if (ignored)
        n = 1 + (int)rng_below(&s->rng, 3);
    int transfer_at =
        (n >= 3 && !ignored && rng_chance(&s->rng, 0.05)) ? (int)rng_range(&s->rng, 2, n - 1) : -1;
    int cur = a;
    int64_t t = t0;
    bool prev_out = false;
    for (int i = 0; i < n; i++) {
        bool out;
        if (i == 0 || ignored || (unanswered && i == n - 1))
            out = false;
        else if (i == n - 1 && rng_chance(&s->rng, 0.6))
            out = true; /* the agent's closing line */
        else if (!prev_out)
            out = !rng_chance(&s->rng, 0.22); /* sometimes the customer writes again */
        else
            out = rng_chance(&s->rng, 0.12); /* sometimes the agent adds a second line */
        if (i == transfer_at) {
            int b = sim_colleague(s, cur, t);
            if (b >= 0) {
                t += rng_range(&s->rng, 5 * MS_SEC, 60 * MS_SEC);
                struct sim_event ev = sim_new_event(s, EV_TRANSFER, t);
                ev.conv = conv;
                ev.agent = (int16_t)cur;
                ev.to_agent = (int16_t)b;
                ev.customer = c;
                sim_push(s, ev);
                cur = b;
            }
        }
        if (i > 0) {
            if (!prev_out && !out)
                t += rng_range(&s->rng, 3 * MS_SEC, 25 * MS_SEC);
            else if (!prev_out && out)
                t += sim_response_ms(s, cur);
            else if (prev_out && out)
                t += rng_range(&s->rng, 5 * MS_SEC, 30 * MS_SEC);
            else
                t += rng_range(&s->rng, 8 * MS_SEC, 180 * MS_SEC);
        }
        sim_message(s, t, conv, cur, c, out);
        prev_out = out;
    }
    s->last_agent[c] = cur;

    double skill = s->agents[cur].skill;
    double p_complaint = 0.01 + 0.03 * (1.0 - skill) + (unanswered ? 0.05 : 0.0);
    if (rng_chance(&s->rng, p_complaint)) {
        struct sim_event ev =
            sim_new_event(s, EV_COMPLAINT, t + rng_range(&s->rng, 10 * MS_MIN, 6 * MS_HOUR));
        ev.conv = conv;
        ev.agent = (int16_t)cur;
        ev.customer = c;
        if (rng_chance(&s->rng, 0.3))
            ev.flags |= F_NO_CONV;
        sim_push(s, ev);
    }
    double p_order = (0.10 + 0.35 * skill) * (n >= 4 ? 1.2 : 0.6) * (unanswered ? 0.3 : 1.0);
    if (rng_chance(&s->rng, p_order)) {
        int64_t ts = t + (rng_chance(&s->rng, 0.9) ? rng_range(&s->rng, MS_MIN, 120 * MS_MIN)
                                                   : rng_range(&s->rng, 3 * MS_HOUR, 48 * MS_HOUR));
        /* Half name the agent; the other half leave it to last-contact attribution. */
        sim_order(s, ts, shop, c, rng_chance(&s->rng, 0.5) ? cur : -1, skill);
    }
}

/* Next accepted arrival after t (thinning of a Poisson process by the hour profile),
 * or end_ms. */
static int64_t sim_next_arrival(struct sim *s, int64_t t)
{
    double mean = (double)MS_HOUR / (SIM_PEAK_CONV_PER_AGENT_HOUR * s->o.agents);
    for (;;) {
        t += rng_exp_ms(&s->rng, mean);
        if (t >= s->end_ms)
            return s->end_ms;
        struct tm tm;
        sim_local(t, &tm);
        if (rng_chance(&s->rng, sim_hour_profile[tm.tm_hour]))
            return t;
    }
}

/* Targets, reviews and leave for every month the window touches; all known up front. */
static void sim_plan_months(struct sim *s)
{
    double daily = 0;
    for (int h = 0; h < 24; h++)
        daily += sim_hour_profile[h] * SIM_PEAK_CONV_PER_AGENT_HOUR;
    /* ~0.42 orders per conversation (attributed silent orders included), ~85 % paid,
     * ~290 yuan per order: an average agent meets the plan, skilled ones beat it. */
    double daily_sales_cents = daily * 0.42 * 0.85 * 29000.0;

    for (int a = 0; a < s->o.agents; a++) {
        struct sim_agent *ag = &s->agents[a];
        bool shop_has_others = false;
        for (int b = 0; b < s->o.agents; b++)
            shop_has_others |= b != a && s->agents[b].shop == ag->shop;
        if (s->o.agents >= 10 && shop_has_others && rng_chance(&s->rng, 0.05)) {
            /* Long leave (plan 5 excludes agents absent > 2 months). */
            struct tm tm;
            sim_local(s->start_ms, &tm);
            ag->away_from = sim_local_midnight(tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday - 40);
            ag->away_until = ag->away_from + 75 * MS_DAY;
        } else if (shop_has_others && rng_chance(&s->rng, 0.10)) {
            int64_t when = rng_range(&s->rng, s->start_ms, s->end_ms - 1);
            struct tm tm;
            sim_local(when, &tm);
            int days = (int)rng_range(&s->rng, 1, 3);
            ag->away_from = sim_local_midnight(tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
            ag->away_until =
                sim_local_midnight(tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday + days);
        } else {
            continue;
        }
        int64_t announce = ag->away_from - 2 * MS_DAY;
        struct sim_event ev =
            sim_new_event(s, EV_ABSENCE, announce > s->start_ms ? announce : s->start_ms);
        ev.agent = (int16_t)a;
        ev.from_date = sim_yyyymmdd(ag->away_from);
        ev.to_date = sim_yyyymmdd(ag->away_until - 1);
        sim_push(s, ev);
    }

    struct tm tm;
    sim_local(s->start_ms, &tm);
    int y = tm.tm_year + 1900, m = tm.tm_mon + 1;
    for (;;) {
        int64_t mstart = sim_local_midnight(y, m, 1), mend = sim_local_midnight(y, m + 1, 1);
        if (mstart >= s->end_ms)
            break;
        int64_t lo = mstart > s->start_ms ? mstart : s->start_ms;
        int64_t hi = mend < s->end_ms ? mend : s->end_ms;
        double days_in_month = (double)(mend - mstart) / MS_DAY;
        for (int a = 0; a < s->o.agents; a++) {
            struct sim_agent *ag = &s->agents[a];
            if (ag->away_from <= lo && ag->away_until >= hi)
                continue; /* on leave all along: no plan, no review */
            /* Targets: at the month's start, set by the manager regardless of skill. */
            int64_t plan =
                (int64_t)(daily_sales_cents * days_in_month * (0.9 + 0.3 * rng_unit(&s->rng)));
            plan = plan / 10000 * 10000; /* whole hundreds of yuan */
            struct sim_event ev =
                sim_new_event(s, EV_TARGET, lo + a * MS_SEC + rng_range(&s->rng, 0, 999));
            ev.agent = (int16_t)a;
            ev.year = (int16_t)y;
            ev.month = (uint8_t)m;
            ev.amount = plan;
            ev.flags = rng_chance(&s->rng, 0.5) ? F_AMOUNT_NUM : 0;
            sim_push(s, ev);
            if (rng_chance(&s->rng, 0.05)) { /* a revised plan replaces the first */
                ev.ts = lo + rng_range(&s->rng, MS_DAY, 10 * MS_DAY);
                ev.amount = plan / 100 * rng_range(&s->rng, 85, 110) / 10000 * 10000;
                if (ev.ts < hi) /* revised within its own month */
                    sim_push(s, ev);
            }
            /* Reviews: towards the end of the month (or of the window). */
            int score = (int)(550 + 400 * ag->skill) + (int)rng_range(&s->rng, -80, 80);
            for (int role = 0; role < 3; role++) {
                if (role == 2 && ag->shop != 0)
                    continue; /* only shop-1 runs the three-step review of plan 1 */
                int64_t ts = hi -
                             (role == 0   ? 3 * MS_HOUR
                              : role == 1 ? MS_HOUR
                                          : 30 * MS_MIN) +
                             a * MS_SEC;
                if (ts < lo)
                    ts = lo + a * MS_SEC + role;
                for (int item = 0; item < 3; item++) {
                    if (role == 2 && item != 2)
                        continue;
                    int sc = score + (role == 0 ? (int)rng_range(&s->rng, 0, 60) : 0) +
                             (int)rng_range(&s->rng, -40, 40);
                    sc = sc < 0 ? 0 : sc > 1000 ? 1000 : sc;
                    ev = sim_new_event(s, EV_REVIEW, ts + item);
                    ev.agent = (int16_t)a;
                    ev.year = (int16_t)y;
                    ev.month = (uint8_t)m;
                    ev.item = (uint8_t)item;
                    ev.role = (uint8_t)role;
                    /* shop-2's managers score follow-up and execution out of 10 */
                    bool ten = role == 1 && item < 2 && ag->shop == 1;
                    ev.max = (int16_t)(ten ? 10 : 100);
                    ev.amount = ten ? sc / 10 : sc / 10 * 10; /* tenths */
                    if (ten || rng_chance(&s->rng, 0.5))
                        ev.flags |= F_HAS_MAX;
                    sim_push(s, ev);
                }
            }
        }
        if (++m > 12) {
            m = 1;
            y++;
        }
    }
}

/* ---- serialisation ---- */

static void js_str(yajl_gen g, const char *str)
{
    yajl_gen_string(g, (const unsigned char *)str, strlen(str));
}

static void js_kv(yajl_gen g, const char *k, const char *v)
{
    js_str(g, k);
    js_str(g, v);
}

static void sim_fmt_cents(char *out, size_t n, int64_t cents)
{
    snprintf(out, n, "%" PRId64 ".%02d", cents / 100, (int)(cents % 100));
}

static void js_amount(yajl_gen g, int64_t cents, bool as_number)
{
    char num[32];
    sim_fmt_cents(num, sizeof(num), cents);
    js_str(g, "amount");
    if (as_number)
        yajl_gen_number(g, num, strlen(num));
    else
        js_str(g, num);
}

static void sim_customer_id(int c, char *out, size_t n)
{
    snprintf(out, n, "u%05d", c + 1);
}

static void sim_shop_id(int shop, char *out, size_t n)
{
    snprintf(out, n, "shop-%d", shop + 1);
}

/* Serialises ev as event number `num` into s->json and its key into s->key;
 * returns the topic. */
static enum sim_topic sim_serialise(struct sim *s, const struct sim_event *ev, uint64_t num)
{
    yajl_gen g = s->g;
    char tmp[64], shop[32], cust[32], conv[32], order[32];
    const struct sim_agent *ag = ev->agent >= 0 ? &s->agents[ev->agent] : NULL;
    sim_shop_id(ev->shop >= 0 ? ev->shop : ag->shop, shop, sizeof(shop));
    if (ev->customer >= 0)
        sim_customer_id(ev->customer, cust, sizeof(cust));
    snprintf(conv, sizeof(conv), "c%06" PRIu64, ev->conv);
    snprintf(order, sizeof(order), "o%07" PRIu64, ev->order);

    yajl_gen_reset(g, NULL);
    yajl_gen_clear(g);
    yajl_gen_map_open(g);
    snprintf(tmp, sizeof(tmp), "sim-%" PRIu64 "-%" PRIu64, s->o.seed, num);
    js_kv(g, "event_id", tmp);
    js_kv(g, "type", sim_types[ev->type].name);
    js_str(g, "ts");
    if (ev->tsfmt == TS_EPOCH_MS) {
        yajl_gen_integer(g, ev->ts);
    } else {
        sim_format_ts(tmp, sizeof(tmp), ev->ts, (enum ts_format)ev->tsfmt, ev->seq);
        js_str(g, tmp);
    }
    if (!(ev->flags & F_NO_SHOP))
        js_kv(g, "shop_id", shop);

    buf_reset(&s->key);
    switch ((enum sim_type)ev->type) {
    case EV_MESSAGE:
        js_kv(g, "conversation_id", conv);
        js_kv(g, "agent_id", ag->id);
        js_kv(g, "customer_id", cust);
        js_kv(g, "direction", (ev->flags & F_OUT) ? "out" : "in");
        if (ev->flags & F_CHANNEL)
            js_kv(g, "channel", "wangwang");
        buf_adds(&s->key, conv);
        break;
    case EV_TRANSFER:
        js_kv(g, "conversation_id", conv);
        js_kv(g, "agent_id", ag->id);
        js_kv(g, "to_agent_id", s->agents[ev->to_agent].id);
        js_kv(g, "customer_id", cust);
        buf_adds(&s->key, conv);
        break;
    case EV_COMPLAINT:
        if (!(ev->flags & F_NO_CONV))
            js_kv(g, "conversation_id", conv);
        js_kv(g, "agent_id", ag->id);
        js_kv(g, "customer_id", cust);
        buf_adds(&s->key, (ev->flags & F_NO_CONV) ? ag->id : conv);
        break;
    case EV_CREATED:
        js_kv(g, "order_id", order);
        js_kv(g, "customer_id", cust);
        js_amount(g, ev->amount, ev->flags & F_AMOUNT_NUM);
        if (ev->flags & F_HAS_AGENT)
            js_kv(g, "agent_id", ag->id);
        buf_adds(&s->key, order);
        break;
    case EV_PAID:
    case EV_REFUNDED:
        js_kv(g, "order_id", order);
        js_amount(g, ev->amount, ev->flags & F_AMOUNT_NUM);
        buf_adds(&s->key, order);
        break;
    case EV_CANCELLED:
        js_kv(g, "order_id", order);
        buf_adds(&s->key, order);
        break;
    case EV_FLAGGED:
        js_kv(g, "order_id", order);
        js_kv(g, "reason", sim_flag_reasons[ev->reason]);
        buf_adds(&s->key, order);
        break;
    case EV_REVIEW:
        js_kv(g, "agent_id", ag->id);
        snprintf(tmp, sizeof(tmp), "%04d-%02d", ev->year, ev->month);
        js_kv(g, "period", tmp);
        js_kv(g, "item", sim_items[ev->item]);
        js_str(g, "score");
        if (ev->amount % 10 == 0)
            yajl_gen_integer(g, ev->amount / 10);
        else {
            snprintf(tmp, sizeof(tmp), "%d.%d", (int)(ev->amount / 10), (int)(ev->amount % 10));
            yajl_gen_number(g, tmp, strlen(tmp));
        }
        if (ev->flags & F_HAS_MAX) {
            js_str(g, "max");
            yajl_gen_integer(g, ev->max);
        }
        js_kv(g, "role", sim_roles[ev->role]);
        if (ev->role == 0)
            snprintf(tmp, sizeof(tmp), "%s", ag->id);
        else
            snprintf(tmp, sizeof(tmp), "%s-%s", ev->role == 1 ? "mgr" : "dir", shop);
        js_kv(g, "reviewer", tmp);
        buf_adds(&s->key, ag->id);
        break;
    case EV_TARGET:
        js_kv(g, "agent_id", ag->id);
        snprintf(tmp, sizeof(tmp), "%04d-%02d", ev->year, ev->month);
        js_kv(g, "period", tmp);
        js_amount(g, ev->amount, ev->flags & F_AMOUNT_NUM);
        buf_adds(&s->key, ag->id);
        break;
    case EV_ABSENCE:
        js_kv(g, "agent_id", ag->id);
        snprintf(tmp, sizeof(tmp), "%04d-%02d-%02d", ev->from_date / 10000,
                 ev->from_date / 100 % 100, ev->from_date % 100);
        js_kv(g, "from", tmp);
        snprintf(tmp, sizeof(tmp), "%04d-%02d-%02d", ev->to_date / 10000, ev->to_date / 100 % 100,
                 ev->to_date % 100);
        js_kv(g, "to", tmp);
        buf_adds(&s->key, ag->id);
        break;
    }
    yajl_gen_map_close(g);
    const unsigned char *p;
    size_t len;
    yajl_gen_get_buf(g, &p, &len);
    buf_reset(&s->json);
    buf_add(&s->json, p, len);
    return sim_types[ev->type].topic;
}

/* ---- output ---- */

static void sim_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    struct sim *s = opaque;
    if (m->err) {
        s->dr_failed++;
        log_complain(&s->dr_complaint, LOG_ERR, "simulate", "delivery failed topic=%s: %s",
                     rd_kafka_topic_name(m->rkt), rd_kafka_err2str(m->err));
    } else {
        s->delivered++;
    }
}

static void sim_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *msg)
{
    (void)rk;
    enum log_level l = level <= 3   ? LOG_ERR
                       : level == 4 ? LOG_WARN
                       : level == 5 ? LOG_NOTICE
                       : level == 6 ? LOG_INFO
                                    : LOG_DEBUG;
    log_msg(l, "simulate", "rdkafka %s: %s", fac, msg);
}

/* Sends one message; counts it. 0, or -1 on an output error (already reported). */
static int sim_send(struct sim *s, int topic, const char *key, size_t keylen, const char *val,
                    size_t len)
{
    if (s->out) {
        buf_reset(&s->line);
        buf_adds(&s->line, s->o.topics[topic]);
        buf_addc(&s->line, '\t');
        buf_add(&s->line, key, keylen);
        buf_addc(&s->line, '\t');
        buf_add(&s->line, val, len);
        buf_addc(&s->line, '\n');
        if (fwrite(s->line.data, 1, s->line.len, s->out) != s->line.len) {
            if (!s->io_error)
                fprintf(stderr, "simulate: cannot write to stdout: %s\n", strerror(errno));
            s->io_error = true;
            return -1;
        }
    } else {
        for (;;) {
            /* F_COPY: our buffers are reused for the next event. */
            if (rd_kafka_produce(s->rkt[topic], RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY,
                                 (void *)val, len, key, keylen, NULL) == 0)
                break;
            rd_kafka_resp_err_t e = rd_kafka_last_error();
            if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                rd_kafka_poll(s->rk, 100); /* let deliveries drain the queue */
                continue;
            }
            s->produce_failed++;
            log_complain(&s->dr_complaint, LOG_ERR, "simulate", "cannot produce to '%s': %s",
                         s->o.topics[topic], rd_kafka_err2str(e));
            return 0;
        }
        if ((s->messages & 1023) == 0)
            rd_kafka_poll(s->rk, 0);
    }
    s->messages++;
    s->per_topic[topic]++;
    return 0;
}

/* Waits until event time `ts` is due under --speed and the next event under --rate. */
static void sim_pace(struct sim *s, int64_t ts)
{
    int64_t due = 0;
    if (s->o.speed > 0)
        due = s->wall0 + (int64_t)((double)(ts - s->start_ms) / s->o.speed);
    if (s->o.rate > 0) {
        int64_t d = s->wall0 + (int64_t)((double)s->events * 1000.0 / s->o.rate);
        if (d > due)
            due = d;
    }
    if (due == 0)
        return;
    for (int64_t now = clock_mono_ms(); now < due && !sim_stop; now = clock_mono_ms()) {
        int64_t wait = due - now < 100 ? due - now : 100;
        if (s->rk) {
            rd_kafka_poll(s->rk, (int)wait);
        } else {
            fflush(s->out); /* a paced stream is read live */
            struct timespec tv = {.tv_sec = 0, .tv_nsec = (long)wait * 1000000L};
            nanosleep(&tv, NULL);
        }
    }
}

static void sim_send_due_dups(struct sim *s, bool all)
{
    size_t kept = 0;
    for (size_t i = 0; i < s->ndups; i++) {
        struct sim_dup *d = &s->dups[i];
        if (all || d->due <= s->events) {
            if (sim_send(s, d->topic, d->key, strlen(d->key), d->value, strlen(d->value)) == 0)
                s->duplicates++;
            free(d->key);
            free(d->value);
        } else {
            s->dups[kept++] = *d;
        }
    }
    s->ndups = kept;
}

/* Noise after a valid event: maybe a later verbatim re-send, maybe one bad message. */
static void sim_noise(struct sim *s, enum sim_topic topic, const struct sim_event *ev)
{
    if (s->o.dup_rate > 0 && rng_chance(&s->noise, s->o.dup_rate)) {
        if (s->ndups == s->dups_cap) {
            s->dups_cap = s->dups_cap ? s->dups_cap * 2 : 16;
            s->dups = xrealloc(s->dups, s->dups_cap * sizeof(*s->dups));
        }
        s->dups[s->ndups++] = (struct sim_dup){
            .due = s->events + (uint64_t)rng_range(&s->noise, 0, 20),
            .topic = topic,
            .key = xstrndup(s->key.data, s->key.len),
            .value = xstrndup(s->json.data, s->json.len),
        };
    }
    if (s->o.bad_rate <= 0 || !rng_chance(&s->noise, s->o.bad_rate))
        return;
    uint64_t kind = rng_below(&s->noise, 3);
    if (kind == 0) { /* invalid JSON: any strict prefix of an object is */
        size_t cut = 1 + (size_t)rng_below(&s->noise, s->json.len - 1);
        if (sim_send(s, topic, s->key.data, s->key.len, s->json.data, cut) == 0)
            s->bad_json++;
        return;
    }
    yajl_gen g = s->g;
    char id[64], ts[64], other[32];
    uint64_t n = ++s->next_bad;
    snprintf(id, sizeof(id), "sim-%" PRIu64 "-bad-%" PRIu64, s->o.seed, n);
    sim_format_ts(ts, sizeof(ts), ev->ts, TS_LOCAL_MS, 0);
    yajl_gen_reset(g, NULL);
    yajl_gen_clear(g);
    yajl_gen_map_open(g);
    js_kv(g, "event_id", id);
    enum sim_topic t;
    if (kind == 1) { /* bad amount on a fresh order id so no real order is touched */
        static const char *const bad[] = {"12.345", "abc", "-5.00", ".5", "1e2"};
        uint64_t which = rng_below(&s->noise, sizeof(bad) / sizeof(bad[0]));
        t = TOPIC_ORDERS;
        snprintf(other, sizeof(other), "obad%06" PRIu64, n);
        js_kv(g, "type", "created");
        js_kv(g, "ts", ts);
        js_kv(g, "order_id", other);
        js_kv(g, "customer_id", "u00001");
        js_str(g, "amount");
        if (which == 4)
            yajl_gen_number(g, bad[which], strlen(bad[which]));
        else
            js_str(g, bad[which]);
    } else { /* unknown type on the chat topic */
        t = TOPIC_CHAT;
        snprintf(other, sizeof(other), "c%06" PRIu64, ev->conv ? ev->conv : 1);
        js_kv(g, "type", "typing");
        js_kv(g, "ts", ts);
        js_kv(g, "conversation_id", other);
        js_kv(g, "agent_id", s->agents[0].id);
        js_kv(g, "customer_id", "u00001");
    }
    yajl_gen_map_close(g);
    const unsigned char *p;
    size_t len;
    yajl_gen_get_buf(g, &p, &len);
    if (sim_send(s, t, other, strlen(other), (const char *)p, len) == 0) {
        if (kind == 1)
            s->bad_amount++;
        else
            s->unknown_type++;
    }
}

static int sim_emit(struct sim *s, const struct sim_event *ev)
{
    sim_pace(s, ev->ts);
    enum sim_topic topic = sim_serialise(s, ev, s->events + 1);
    if (sim_send(s, topic, s->key.data, s->key.len, s->json.data, s->json.len) != 0)
        return -1;
    s->events++;
    sim_noise(s, topic, ev);
    sim_send_due_dups(s, false);
    return s->io_error ? -1 : 0;
}

/* ---- driver ---- */

static int sim_setup(struct sim *s)
{
    rng_seed(&s->rng, s->o.seed);
    rng_seed(&s->noise, s->o.seed ^ 0x6e6f697365ULL); /* "noise" */
    s->start_ms = s->o.start_ms;
    s->end_ms = s->o.start_ms + s->o.duration_ms;
    s->agents = xcalloc((size_t)s->o.agents, sizeof(*s->agents));
    int width = s->o.agents > 99 ? 3 : 2;
    for (int a = 0; a < s->o.agents; a++) {
        snprintf(s->agents[a].id, sizeof(s->agents[a].id), "a%0*d", width, a + 1);
        s->agents[a].shop = a % s->o.shops;
        s->agents[a].skill = rng_unit(&s->rng);
    }
    s->last_agent = xcalloc((size_t)s->o.customers, sizeof(*s->last_agent));
    for (int c = 0; c < s->o.customers; c++)
        s->last_agent[c] = -1;
    s->g = yajl_gen_alloc(NULL);
    if (!s->g) {
        fprintf(stderr, "simulate: cannot allocate json generator\n");
        return -1;
    }
    buf_init(&s->json);
    buf_init(&s->key);
    buf_init(&s->line);
    sim_plan_months(s);
    return 0;
}

static void sim_release(struct sim *s)
{
    for (size_t i = 0; i < s->ndups; i++) {
        free(s->dups[i].key);
        free(s->dups[i].value);
    }
    free(s->dups);
    if (s->g)
        yajl_gen_free(s->g);
    buf_release(&s->json);
    buf_release(&s->key);
    buf_release(&s->line);
    free(s->heap);
    free(s->agents);
    free(s->last_agent);
}

/* Generates and emits until the window ends, --events is reached or a signal. */
static int sim_run(struct sim *s)
{
    int64_t next = sim_next_arrival(s, s->start_ms);
    while (!sim_stop && (s->o.max_events == 0 || s->events < s->o.max_events)) {
        if (s->heap_len > 0 && (s->heap[0].ts <= next || next >= s->end_ms)) {
            struct sim_event ev = sim_pop(s);
            if (sim_emit(s, &ev) != 0)
                return -1;
        } else if (next < s->end_ms) {
            sim_arrival(s, next);
            next = sim_next_arrival(s, next);
        } else {
            break;
        }
    }
    sim_send_due_dups(s, true);
    return s->io_error ? -1 : 0;
}

static int sim_kafka_open(struct sim *s)
{
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    static const struct {
        const char *key, *value;
    } props[] = {
        {.key = "client.id", .value = "csmetrics-simulate"},
        {.key = "linger.ms", .value = "5"},
        {.key = "batch.num.messages", .value = "10000"},
        {.key = "queue.buffering.max.messages", .value = "1000000"},
        /* Bounds the final flush when the brokers are unreachable (default 300 s). */
        {.key = "message.timeout.ms", .value = "30000"},
    };
    if (rd_kafka_conf_set(conf, "bootstrap.servers", s->o.brokers, errstr, sizeof(errstr)) !=
        RD_KAFKA_CONF_OK)
        goto fail_conf;
    for (size_t i = 0; i < sizeof(props) / sizeof(props[0]); i++)
        if (rd_kafka_conf_set(conf, props[i].key, props[i].value, errstr, sizeof(errstr)) !=
            RD_KAFKA_CONF_OK)
            goto fail_conf;
    rd_kafka_conf_set_dr_msg_cb(conf, sim_dr_cb);
    rd_kafka_conf_set_log_cb(conf, sim_log_cb);
    rd_kafka_conf_set_opaque(conf, s);
    s->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!s->rk)
        goto fail_conf; /* conf is not taken over on failure */
    conf = NULL;
    for (int t = 0; t < TOPIC__COUNT; t++) {
        s->rkt[t] = rd_kafka_topic_new(s->rk, s->o.topics[t], NULL);
        if (!s->rkt[t]) {
            fprintf(stderr, "simulate: cannot create topic handle '%s': %s\n", s->o.topics[t],
                    rd_kafka_err2str(rd_kafka_last_error()));
            return -1;
        }
    }
    return 0;
fail_conf:
    fprintf(stderr, "simulate: cannot create kafka producer: %s\n", errstr);
    rd_kafka_conf_destroy(conf);
    return -1;
}

/* Flushes the producer (a second signal purges what is left) and destroys it. Messages
 * neither delivered nor failed by then count as failed. */
static void sim_kafka_close(struct sim *s)
{
    if (!s->rk)
        return;
    int64_t deadline = clock_mono_ms() + 60 * MS_SEC;
    bool purged = false;
    while (rd_kafka_outq_len(s->rk) > 0 && clock_mono_ms() < deadline) {
        if (sim_stop >= 2 && !purged) {
            rd_kafka_purge(s->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
            purged = true;
        }
        rd_kafka_flush(s->rk, 200);
    }
    rd_kafka_poll(s->rk, 0);
    /* Messages without a delivery report by now are lost as far as we can tell. */
    uint64_t reported = s->delivered + s->dr_failed;
    uint64_t lost = s->messages > reported ? s->messages - reported : 0;
    s->failed = s->produce_failed + s->dr_failed + lost;
    for (int t = 0; t < TOPIC__COUNT; t++)
        if (s->rkt[t])
            rd_kafka_topic_destroy(s->rkt[t]);
    rd_kafka_destroy(s->rk);
    s->rk = NULL;
}

/* ---- options ---- */

static void sim_usage(FILE *out)
{
    fprintf(
        out,
        "usage: csmetrics simulate [OPTIONS]\n"
        "\n"
        "Synthetic, realistic traffic of online shops' customer service: chat messages,\n"
        "transfers, complaints, orders (created, paid, refunded, cancelled, flagged), monthly\n"
        "targets, reviews and leave (see the event contract). The same options give the same\n"
        "events byte for byte; only the default --start depends on the clock.\n"
        "\n"
        "Model:\n"
        "  --seed N          PRNG seed (default 1)\n"
        "  --agents N        agents a01..aNN, 1..999 (default 10), spread over the shops; each\n"
        "                    has a skill: skilled agents answer in 15-30 s and convert more,\n"
        "                    weak ones take 40-120 s, leave customers waiting and get complaints\n"
        "  --shops N         shops shop-1..shop-N, 1..agents (default 2)\n"
        "  --customers N     customers u00001.., 1..10000000 (default 2000)\n"
        "  --start T         window start: RFC 3339, epoch ms, YYYY-MM-DD (local midnight) or\n"
        "                    'now' (default: now minus --duration, so events are recent)\n"
        "  --duration D      window length: N plus s, m, h, d or w (default 2d)\n"
        "  --tz ZONE         time zone of days, months and ts offsets (default Asia/Shanghai)\n"
        "  --events N        stop after N events (the window's end also stops)\n"
        "\n"
        "Pace (default: as fast as possible):\n"
        "  --speed X         event time runs X times faster than the wall clock (3600: one\n"
        "                    hour of events per second)\n"
        "  --rate R          at most R events per second\n"
        "\n"
        "Noise (extra messages; the valid events stay the same):\n"
        "  --dup-rate P      re-send this share of events verbatim (same event_id), 0..1\n"
        "  --bad-rate P      add this share of invalid messages (truncated JSON, bad amount,\n"
        "                    unknown type), 0..1\n"
        "\n"
        "Output:\n"
        "  --jsonl           write 'TOPIC<TAB>KEY<TAB>JSON' lines to stdout instead of Kafka\n"
        "  --brokers B       Kafka bootstrap servers (default 127.0.0.1:9092)\n"
        "  --bootstrap-file F  read the bootstrap servers from F (see 'kafka-mock')\n"
        "  --topic-chat T, --topic-orders T, --topic-reviews T\n"
        "                    topic names (default cs.chat, shop.orders, cs.reviews)\n"
        "\n"
        "Keys: chat by conversation_id (a complaint without one by agent_id), orders by\n"
        "order_id, reviews by agent_id. A summary line goes to stderr: events, messages per\n"
        "topic, duplicates, bad messages by kind, deliveries. Exit 0; 1 when any message\n"
        "failed to be delivered or written; 2 on bad usage. SIGINT/SIGTERM stop generating\n"
        "and flush; a second one abandons the rest.\n"
        "Note: librdkafka's mock cluster keeps only ~5 MiB or 100000 batches per partition.\n");
}

static int sim_bad_opt(const char *opt, const char *val, const char *want)
{
    fprintf(stderr, "simulate: invalid %s '%s': want %s\n", opt, val, want);
    return -1;
}

static int sim_parse_u64(const char *opt, const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    char *end;
    errno = 0;
    if (*s == '-' || *s == '+' || *s == ' ')
        return sim_bad_opt(opt, s, "a non-negative integer");
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max) {
        char want[96];
        snprintf(want, sizeof(want), "an integer %" PRIu64 "..%" PRIu64, min, max);
        return sim_bad_opt(opt, s, want);
    }
    *out = v;
    return 0;
}

static int sim_parse_int(const char *opt, const char *s, int min, int max, int *out)
{
    uint64_t v;
    if (sim_parse_u64(opt, s, (uint64_t)min, (uint64_t)max, &v) != 0)
        return -1;
    *out = (int)v;
    return 0;
}

static int sim_parse_double(const char *opt, const char *s, double min, double max, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= min && v <= max)) {
        char want[96];
        snprintf(want, sizeof(want), "a number %g..%g", min, max);
        return sim_bad_opt(opt, s, want);
    }
    *out = v;
    return 0;
}

static int sim_parse_duration(const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    if (*s < '0' || *s > '9')
        return sim_bad_opt("--duration", s, "N plus s, m, h, d or w (e.g. 2d)");
    long long v = strtoll(s, &end, 10);
    int64_t unit = 0;
    if (strcmp(end, "s") == 0)
        unit = MS_SEC;
    else if (strcmp(end, "m") == 0)
        unit = MS_MIN;
    else if (strcmp(end, "h") == 0)
        unit = MS_HOUR;
    else if (strcmp(end, "d") == 0)
        unit = MS_DAY;
    else if (strcmp(end, "w") == 0)
        unit = 7 * MS_DAY;
    if (errno || unit == 0 || v <= 0 || v > 3660LL * MS_DAY / unit)
        return sim_bad_opt("--duration", s, "N plus s, m, h, d or w, up to 3660d (e.g. 2d)");
    *out = v * unit;
    return 0;
}

static int sim_digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++, (*p)++) {
        if (**p < '0' || **p > '9')
            return -1;
        v = v * 10 + (**p - '0');
    }
    *out = v;
    return 0;
}

/* RFC 3339 date-time, epoch ms, YYYY-MM-DD (local midnight, needs TZ set) or "now". */
static int sim_parse_start(const char *s, int64_t *out)
{
    if (strcmp(s, "now") == 0) {
        *out = clock_wall_ms();
        return 0;
    }
    if (strspn(s, "0123456789") == strlen(s) && *s) {
        uint64_t v;
        if (sim_parse_u64("--start", s, 0, 253402300799999ULL, &v) != 0)
            return -1;
        *out = (int64_t)v;
        return 0;
    }
    const char *p = s;
    int y, mo, d, h = 0, mi = 0, se = 0, ms = 0;
    if (sim_digits(&p, 4, &y) || *p++ != '-' || sim_digits(&p, 2, &mo) || *p++ != '-' ||
        sim_digits(&p, 2, &d) || mo < 1 || mo > 12 || d < 1 || d > 31)
        goto bad;
    if (*p == '\0') {
        *out = sim_local_midnight(y, mo, d);
        return 0;
    }
    if ((*p != 'T' && *p != 't') || (p++, sim_digits(&p, 2, &h)) || *p++ != ':' ||
        sim_digits(&p, 2, &mi) || *p++ != ':' || sim_digits(&p, 2, &se) || h > 23 || mi > 59 ||
        se > 60)
        goto bad;
    if (*p == '.') {
        p++;
        int nd = 0;
        for (; *p >= '0' && *p <= '9'; p++, nd++)
            if (nd < 3)
                ms = ms * 10 + (*p - '0');
        if (nd == 0)
            goto bad;
        for (; nd < 3; nd++)
            ms *= 10;
    }
    int off = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p++ == '-' ? -1 : 1, oh, om;
        if (sim_digits(&p, 2, &oh) || *p++ != ':' || sim_digits(&p, 2, &om) || oh > 23 || om > 59)
            goto bad;
        off = sign * (oh * 60 + om);
    } else {
        goto bad;
    }
    if (*p)
        goto bad;
    *out = ((sim_days_from_civil(y, mo, d) * 24 + h) * 60 + mi - off) * MS_MIN + se * MS_SEC + ms;
    return 0;
bad:
    return sim_bad_opt("--start", s,
                       "RFC 3339 (2026-11-02T09:00:00+08:00), epoch ms, "
                       "YYYY-MM-DD or now");
}

/* glibc silently falls back to UTC for an unknown zone; check the zone file exists. */
static int sim_set_tz(const char *tz)
{
    bool ok = strcmp(tz, "UTC") == 0;
    if (!ok && *tz && tz[0] != '/' && !strstr(tz, "..")) {
        const char *dir = getenv("TZDIR");
        struct buf path;
        buf_init(&path);
        buf_printf(&path, "%s/%s", dir && *dir ? dir : "/usr/share/zoneinfo", tz);
        ok = access(path.data, R_OK) == 0;
        buf_release(&path);
    }
    if (!ok) {
        fprintf(stderr, "simulate: unknown time zone '%s'\n", tz);
        return -1;
    }
    setenv("TZ", tz, 1); /* process-wide, fine for a one-shot command */
    tzset();
    return 0;
}

static int sim_read_bootstrap(const char *path, char **out)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "simulate: cannot open '%s': %s\n", path, strerror(errno));
        return -1;
    }
    char line[4096];
    bool got = fgets(line, sizeof(line), f) != NULL;
    fclose(f);
    size_t n = got ? strcspn(line, "\r\n \t") : 0;
    if (n == 0) {
        fprintf(stderr, "simulate: cannot read bootstrap servers from '%s': empty file\n", path);
        return -1;
    }
    *out = xstrndup(line, n);
    return 0;
}

static int sim_parse_opts(int argc, char **argv, struct sim_opts *o, const char **start_arg)
{
    enum {
        O_SEED = 256,
        O_AGENTS,
        O_SHOPS,
        O_CUSTOMERS,
        O_START,
        O_DURATION,
        O_SPEED,
        O_RATE,
        O_EVENTS,
        O_BROKERS,
        O_BOOTSTRAP,
        O_JSONL,
        O_TZ,
        O_TCHAT,
        O_TORDERS,
        O_TREVIEWS,
        O_DUP,
        O_BAD,
        O_HELP,
    };
    static const struct option longopts[] = {
        {.name = "seed", .has_arg = required_argument, .val = O_SEED},
        {.name = "agents", .has_arg = required_argument, .val = O_AGENTS},
        {.name = "shops", .has_arg = required_argument, .val = O_SHOPS},
        {.name = "customers", .has_arg = required_argument, .val = O_CUSTOMERS},
        {.name = "start", .has_arg = required_argument, .val = O_START},
        {.name = "duration", .has_arg = required_argument, .val = O_DURATION},
        {.name = "speed", .has_arg = required_argument, .val = O_SPEED},
        {.name = "rate", .has_arg = required_argument, .val = O_RATE},
        {.name = "events", .has_arg = required_argument, .val = O_EVENTS},
        {.name = "brokers", .has_arg = required_argument, .val = O_BROKERS},
        {.name = "bootstrap-file", .has_arg = required_argument, .val = O_BOOTSTRAP},
        {.name = "jsonl", .has_arg = no_argument, .val = O_JSONL},
        {.name = "tz", .has_arg = required_argument, .val = O_TZ},
        {.name = "topic-chat", .has_arg = required_argument, .val = O_TCHAT},
        {.name = "topic-orders", .has_arg = required_argument, .val = O_TORDERS},
        {.name = "topic-reviews", .has_arg = required_argument, .val = O_TREVIEWS},
        {.name = "dup-rate", .has_arg = required_argument, .val = O_DUP},
        {.name = "bad-rate", .has_arg = required_argument, .val = O_BAD},
        {.name = "help", .has_arg = no_argument, .val = O_HELP},
        {0},
    };
    int c, rc = 0;
    optind = 1;
    opterr = 0;
    while (rc == 0 && (c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case O_SEED:
            rc = sim_parse_u64("--seed", optarg, 0, UINT64_MAX, &o->seed);
            break;
        case O_AGENTS:
            rc = sim_parse_int("--agents", optarg, 1, 999, &o->agents);
            break;
        case O_SHOPS:
            rc = sim_parse_int("--shops", optarg, 1, 999, &o->shops);
            break;
        case O_CUSTOMERS:
            rc = sim_parse_int("--customers", optarg, 1, 10000000, &o->customers);
            break;
        case O_START:
            *start_arg = optarg;
            break;
        case O_DURATION:
            rc = sim_parse_duration(optarg, &o->duration_ms);
            break;
        case O_SPEED:
            rc = sim_parse_double("--speed", optarg, 1e-3, 1e9, &o->speed);
            break;
        case O_RATE:
            rc = sim_parse_double("--rate", optarg, 1e-3, 1e9, &o->rate);
            break;
        case O_EVENTS:
            rc = sim_parse_u64("--events", optarg, 1, UINT64_MAX, &o->max_events);
            break;
        case O_BROKERS:
            o->brokers = optarg;
            break;
        case O_BOOTSTRAP:
            o->bootstrap_file = optarg;
            break;
        case O_JSONL:
            o->jsonl = true;
            break;
        case O_TZ:
            o->tz = optarg;
            break;
        case O_TCHAT:
            o->topics[TOPIC_CHAT] = optarg;
            break;
        case O_TORDERS:
            o->topics[TOPIC_ORDERS] = optarg;
            break;
        case O_TREVIEWS:
            o->topics[TOPIC_REVIEWS] = optarg;
            break;
        case O_DUP:
            rc = sim_parse_double("--dup-rate", optarg, 0, 1, &o->dup_rate);
            break;
        case O_BAD:
            rc = sim_parse_double("--bad-rate", optarg, 0, 1, &o->bad_rate);
            break;
        case 'h':
        case O_HELP:
            sim_usage(stdout);
            return 1;
        default:
            fprintf(stderr, "simulate: unknown option or missing value '%s'\n", argv[optind - 1]);
            return -1;
        }
    }
    if (rc != 0)
        return -1;
    if (optind < argc) {
        fprintf(stderr, "simulate: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    if (o->shops > o->agents) {
        fprintf(stderr, "simulate: --shops %d exceeds --agents %d: every shop needs an agent\n",
                o->shops, o->agents);
        return -1;
    }
    for (int t = 0; t < TOPIC__COUNT; t++)
        if (!*o->topics[t]) {
            fprintf(stderr, "simulate: empty topic name\n");
            return -1;
        }
    return 0;
}

int cli_simulate(int argc, char **argv, const char *config_path)
{
    (void)config_path; /* topics and brokers come from options */
    struct sim s = {
        .o = {.seed = 1,
              .agents = 10,
              .shops = 2,
              .customers = 2000,
              .duration_ms = 2 * MS_DAY,
              .brokers = "127.0.0.1:9092",
              .tz = "Asia/Shanghai",
              .topics = {[TOPIC_CHAT] = "cs.chat",
                         [TOPIC_ORDERS] = "shop.orders",
                         [TOPIC_REVIEWS] = "cs.reviews"}},
    };
    const char *start_arg = NULL;
    int r = sim_parse_opts(argc, argv, &s.o, &start_arg);
    if (r != 0)
        return r > 0 ? 0 : 2;
    if (sim_set_tz(s.o.tz) != 0)
        return 2;
    if (start_arg) {
        if (sim_parse_start(start_arg, &s.o.start_ms) != 0)
            return 2;
        s.o.start_set = true;
    } else {
        /* Recent events; whole minutes so two runs in the same minute agree. */
        s.o.start_ms = (clock_wall_ms() - s.o.duration_ms) / MS_MIN * MS_MIN;
    }

    char *bootstrap = NULL;
    if (!s.o.jsonl && s.o.bootstrap_file) {
        if (sim_read_bootstrap(s.o.bootstrap_file, &bootstrap) != 0)
            return 1;
        s.o.brokers = bootstrap;
    }

    struct sigaction sa = {.sa_handler = sim_on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    int rc = 1;
    if (sim_setup(&s) != 0)
        goto out;
    if (s.o.jsonl)
        s.out = stdout;
    else if (sim_kafka_open(&s) != 0)
        goto out;

    int64_t t0 = clock_mono_ms();
    s.wall0 = t0;
    int run = sim_run(&s);
    if (s.out && fflush(s.out) != 0 && !s.io_error) {
        fprintf(stderr, "simulate: cannot write to stdout: %s\n", strerror(errno));
        s.io_error = true;
    }
    sim_kafka_close(&s);
    int64_t elapsed = clock_mono_ms() - t0;

    struct buf sum;
    buf_init(&sum);
    buf_printf(&sum, "simulate: events=%" PRIu64 " messages=%" PRIu64, s.events, s.messages);
    for (int t = 0; t < TOPIC__COUNT; t++)
        buf_printf(&sum, " %s=%" PRIu64, s.o.topics[t], s.per_topic[t]);
    buf_printf(&sum,
               " duplicates=%" PRIu64 " bad_json=%" PRIu64 " bad_amount=%" PRIu64
               " unknown_type=%" PRIu64,
               s.duplicates, s.bad_json, s.bad_amount, s.unknown_type);
    if (!s.o.jsonl)
        buf_printf(&sum, " delivered=%" PRIu64 " delivery_failures=%" PRIu64, s.delivered,
                   s.failed);
    buf_printf(&sum, " elapsed_ms=%" PRId64 " rate=%.0f/s%s", elapsed,
               elapsed > 0 ? (double)s.messages * 1000.0 / (double)elapsed : 0.0,
               sim_stop ? " interrupted" : "");
    fprintf(stderr, "%s\n", sum.data);
    buf_release(&sum);
    rc = (run == 0 && !s.io_error && s.failed == 0) ? 0 : 1;
out:
    sim_kafka_close(&s);
    sim_release(&s);
    free(bootstrap);
    return rc;
}
