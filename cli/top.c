/* top — a live leaderboard of each shop's agents from Redis, refreshed like top(1): the
 * period in progress in the configured zone (or --period), best first by one KPI, the
 * team's row, and how far the daemon has got (global watermark, committed messages).
 * Read-only: it reads the keys the daemon writes (README "Redis key layout"). Every
 * frame is built in memory and written at once, so a refresh does not flicker. */
#include "aggregator/keys.h"
#include "aggregator/kpi.h"
#include "cli/cli.h"
#include "cli/common.h"
#include "cli/evjson.h"
#include "common/buf.h"
#include "common/utf8.h"
#include "common/clock.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define TOP_SHOPS_MAX 64
#define TOP_AGENT_WIDTH_MAX 16

static volatile sig_atomic_t top_stop, top_resized;

static void top_on_signal(int sig)
{
    if (sig == SIGWINCH)
        top_resized = 1;
    else
        top_stop = 1;
}

/* One table column: a KPI under a short header. `drop` orders what goes when the table
 * is wider than the screen: the highest number first; 0 is never dropped. */
struct top_col {
    const char *head;
    enum kpi_id kpi;
    int width;
    int drop;
    const char *help;
};

static const struct top_col top_cols[] = {
    {.head = "inquiries",
     .kpi = KPI_INQUIRIES,
     .width = 9,
     .drop = 0,
     .help = "customers who wrote to the agent"},
    {.head = "reply",
     .kpi = KPI_REPLY_RATE,
     .width = 6,
     .drop = 4,
     .help = "reply_rate: share of them answered"},
    {.head = "resp_s",
     .kpi = KPI_RESPONSE_TIME_MEAN_S,
     .width = 6,
     .drop = 0,
     .help = "response_time_mean_s: mean wait for an answer"},
    {.head = "first_s",
     .kpi = KPI_FIRST_RESPONSE_TIME_MEAN_S,
     .width = 7,
     .drop = 13,
     .help = "first_response_time_mean_s: mean first wait"},
    {.head = "p90_s",
     .kpi = KPI_RESPONSE_TIME_P90_S,
     .width = 6,
     .drop = 12,
     .help = "response_time_p90_s: 90th percentile wait"},
    {.head = "unans",
     .kpi = KPI_UNANSWERED_WAITS,
     .width = 5,
     .drop = 9,
     .help = "unanswered_waits: waits nobody answered"},
    {.head = "compl", .kpi = KPI_COMPLAINTS, .width = 5, .drop = 3, .help = "complaints"},
    {.head = "conv",
     .kpi = KPI_INQUIRY_CONVERSION,
     .width = 6,
     .drop = 2,
     .help = "inquiry_conversion: share of inquiries who ordered"},
    {.head = "orders", .kpi = KPI_ORDERS, .width = 6, .drop = 11, .help = "orders created"},
    {.head = "success",
     .kpi = KPI_ORDER_SUCCESS,
     .width = 7,
     .drop = 6,
     .help = "order_success: paying customers / ordering ones"},
    {.head = "sales",
     .kpi = KPI_SALES,
     .width = 10,
     .drop = 0,
     .help = "sales: paid amounts, yuan"},
    {.head = "aov",
     .kpi = KPI_AOV,
     .width = 7,
     .drop = 7,
     .help = "aov: sales per paying customer, yuan"},
    {.head = "refund",
     .kpi = KPI_REFUND_RATE,
     .width = 6,
     .drop = 10,
     .help = "refund_rate: refunded / paid orders"},
    {.head = "target",
     .kpi = KPI_TARGET_COMPLETION,
     .width = 6,
     .drop = 5,
     .help = "target_completion: sales / monthly target"},
};
#define TOP_NCOLS (sizeof(top_cols) / sizeof(top_cols[0]))

/* KPIs where a smaller value ranks better. */
static bool top_lower_is_better(enum kpi_id id)
{
    switch (id) {
    case KPI_RESPONSE_TIME_MEAN_S:
    case KPI_FIRST_RESPONSE_TIME_MEAN_S:
    case KPI_RESPONSE_TIME_P90_S:
    case KPI_UNANSWERED_WAITS:
    case KPI_REFUNDED_ORDERS:
    case KPI_CANCELLED_ORDERS:
    case KPI_FLAGGED_ORDERS:
    case KPI_REFUND_AMOUNT:
    case KPI_REFUND_RATE:
    case KPI_ABNORMAL_ORDER_RATE:
    case KPI_COMPLAINTS:
    case KPI_COMPLAINT_RATE:
    case KPI_CHURN_RATE:
    case KPI_ABSENT_DAYS:
        return true;
    default:
        return false;
    }
}

struct top_opts {
    const char *shops[TOP_SHOPS_MAX];
    size_t nshops;
    const char *label; /* --period, or NULL for the period in progress of `kind` */
    enum period_kind kind;
    enum kpi_id sort;
    long limit;  /* agents per shop; 0: all (or what the terminal holds) */
    long width;  /* 0: no limit */
    long height; /* 0: no limit */
    bool tty;    /* redraw in place */
    bool keys;   /* keys read from the terminal (tty mode with stdin a terminal) */
    bool json;   /* one JSON object per agent and team instead of the table */
    char label_buf[PERIOD_LABEL_MAX]; /* label chosen with the [ ] keys */
};

struct top_row {
    char *agent;
    struct kpi_figures f;
    double key;
    bool defined;
};

static bool top_sort_lower;

static int top_cmp(const void *a, const void *b)
{
    const struct top_row *x = a, *y = b;
    if (x->defined != y->defined)
        return x->defined ? -1 : 1;
    if (x->defined && x->key != y->key)
        return (x->key > y->key) == top_sort_lower ? 1 : -1;
    return strcmp(x->agent, y->agent);
}

static int top_strcmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void top_usage(FILE *out)
{
    fprintf(out,
            "usage: csmetrics top [--shop S]... [--kind KIND | --period LABEL] [--sort KPI]\n"
            "                     [--limit N] [--interval SECONDS] [--width COLUMNS]\n"
            "                     [--once] [--json]\n"
            "\n"
            "A live leaderboard of each shop's agents, read from the daemon's Redis and\n"
            "redrawn every --interval seconds until Ctrl-C, best agent first. Below each shop's\n"
            "agents, 'team' is the whole shop. The second line tells how far the daemon has\n"
            "got: the event time all its input has reached (the watermark: a period closes\n"
            "when it passes the period's end plus 'lateness'), the messages committed and\n"
            "the dead letters, if any (bad or late input, see the cs.deadletter topic).\n"
            "\n"
            "  --shop S          a shop to show; repeat for several (default: every shop)\n"
            "  --kind KIND       show the KIND in progress now in the configured time zone:\n"
            "                    day, week, month, quarter, half or year (default month)\n"
            "  --period LABEL    show this period instead: 2026-11-27, 2026-W48, 2026-11,\n"
            "                    2026-Q4, 2026-H2 or 2026 (the daemon keeps the kinds of\n"
            "                    its 'periods' setting and of the rule files)\n"
            "  --sort KPI        rank by a KPI name (see 'csmetrics show') or a column header\n"
            "                    (default sales); best first: lower is better for response\n"
            "                    times, unanswered waits, refunds, complaints and churn\n"
            "  --limit N         show only the N best agents of each shop (default: all, or\n"
            "                    as many as the terminal holds)\n"
            "  --interval S      seconds between refreshes (default 2)\n"
            "  --width COLUMNS   fit lines into COLUMNS (default: the terminal's width, else\n"
            "                    $COLUMNS); the least important columns are left out first\n"
            "  --once            print the table once and exit, without clearing the screen\n"
            "  --json            instead of the table, one JSON object per agent and per team\n"
            "                    (shop_id, agent_id (null: the team), rank, period,\n"
            "                    period_start, period_end, sort, metrics as 'show --json');\n"
            "                    repeated every --interval unless --once\n"
            "\n"
            "On a terminal the table is redrawn in place and these keys act at once:\n"
            "  q           quit (Ctrl-C too)\n"
            "  s  >  Down  sort by the next column     <  Up  by the previous one\n"
            "  p  P        the next / previous period kind (day, week, month, ...), in progress\n"
            "  [  ]  Left  Right   the previous / next period of that kind\n"
            "  c           back to the period in progress      space, r   refresh now\n"
            "When the output is not a terminal (a pipe, a file), each refresh is printed\n"
            "after the previous one, separated by an empty line.\n"
            "\n"
            "Columns ('-': undefined, e.g. a rate with nothing to divide by, or no target):\n");
    for (size_t c = 0; c < TOP_NCOLS; c++)
        fprintf(out, "  %-10s%s\n", top_cols[c].head, top_cols[c].help);
    fprintf(out, "The sort column's header is in capitals.\n"
                 "\nExamples:\n"
                 "  csmetrics -c demo.yaml top --shop shop-1 --kind day --sort resp_s\n"
                 "  csmetrics top --once --json --period 2026-10 | jq -c '[.agent_id, .rank]'\n");
}

/* Parses --sort: a KPI name or a column header. */
static int top_sort_lookup(const char *name, enum kpi_id *out)
{
    if (kpi_lookup(name, out) == 0)
        return 0;
    for (size_t c = 0; c < TOP_NCOLS; c++) {
        if (strcmp(name, top_cols[c].head) == 0) {
            *out = top_cols[c].kpi;
            return 0;
        }
    }
    return -1;
}

static void top_cell(const struct kpi_figures *f, enum kpi_id id, char *out, size_t n)
{
    struct kpi_value v = kpi_compute(f, id);
    if (!v.defined)
        snprintf(out, n, "-");
    else if (kpi_unit(id) == KPI_MONEY) {
        int64_t a = v.cents < 0 ? -v.cents : v.cents;
        snprintf(out, n, "%s%" PRId64 ".%02" PRId64, v.cents < 0 ? "-" : "", a / 100, a % 100);
    } else if (kpi_unit(id) == KPI_RATIO)
        snprintf(out, n, "%.1f%%", v.value * 100);
    else if (kpi_unit(id) == KPI_SECONDS)
        snprintf(out, n, "%.1f", v.value);
    else
        snprintf(out, n, "%.0f", v.value);
}

/* Display columns of UTF-8 text (code points; wide CJK glyphs count as one). */
static size_t top_text_width(const char *s)
{
    size_t w = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        w += (*p & 0xC0) != 0x80;
    return w;
}

/* Appends s left-aligned in w display columns, cut at a code point with '~' if longer. */
static void top_add_padded(struct buf *b, const char *s, size_t w)
{
    size_t sw = top_text_width(s);
    if (sw <= w) {
        buf_adds(b, s);
        for (size_t i = sw; i < w; i++)
            buf_addc(b, ' ');
        return;
    }
    size_t cols = 0;
    const char *p = s;
    while (*p && cols < w - 1) {
        p++;
        while ((*(const unsigned char *)p & 0xC0) == 0x80)
            p++;
        cols++;
    }
    buf_add(b, s, (size_t)(p - s));
    buf_addc(b, '~');
}

/* Local "YYYY-MM-DD HH:MM:SS" of ts_ms in the configured zone. */
static void top_format_time(int64_t ts_ms, const char *fmt, char *out, size_t n)
{
    time_t t = (time_t)(ts_ms / 1000);
    struct tm tm;
    if (!localtime_r(&t, &tm) || strftime(out, n, fmt, &tm) == 0)
        snprintf(out, n, "?");
}

/* The daemon's progress: the global watermark, the sum of the committed offsets of every
 * partition that has published a watermark, and the dead letters counted (when any).
 * Appended as one line. */
static void top_progress(struct buf *fr, struct rconn *rc, const char *prefix)
{
    char err[512];
    redisReply *g = rconn_command(rc, err, sizeof(err), "GET %s{wm}:global", prefix);
    redisReply *parts =
        g ? rconn_command(rc, err, sizeof(err), "HKEYS %s{wm}:parts", prefix) : NULL;
    if (!g || !parts) {
        buf_printf(fr, "daemon: cannot read its progress: %s\n", err);
        freeReplyObject(g);
        return;
    }
    int64_t committed = 0;
    for (size_t i = 0; parts->type == REDIS_REPLY_ARRAY && i < parts->elements; i++) {
        const char *name = parts->element[i]->str;
        const char *colon = strrchr(name, ':');
        if (!colon)
            continue;
        char *topic = xstrndup(name, (size_t)(colon - name));
        struct buf k;
        buf_init(&k);
        keys_partition_tag(&k, prefix, topic, (int32_t)atoi(colon + 1));
        redisReply *off = rconn_command(rc, err, sizeof(err), "HGET %s:meta off", k.data);
        if (off && off->type == REDIS_REPLY_STRING && atoll(off->str) > 0)
            committed += atoll(off->str);
        freeReplyObject(off);
        buf_release(&k);
        free(topic);
    }
    int64_t dead = 0;
    redisReply *dl = rconn_command(rc, err, sizeof(err), "HVALS %s{r}:deadletters", prefix);
    for (size_t i = 0; dl && dl->type == REDIS_REPLY_ARRAY && i < dl->elements; i++)
        if (dl->element[i]->type == REDIS_REPLY_STRING)
            dead += atoll(dl->element[i]->str);
    freeReplyObject(dl);
    int64_t wm = g->type == REDIS_REPLY_STRING ? atoll(g->str) : 0;
    char when[40];
    if (wm > 0)
        top_format_time(wm, "%Y-%m-%d %H:%M:%S", when, sizeof(when));
    buf_printf(fr, "daemon: %s%s, %" PRId64 " messages committed",
               wm > 0 ? "event time " : "no event time yet", wm > 0 ? when : "", committed);
    if (dead > 0)
        buf_printf(fr, ", %" PRId64 " dead letters", dead);
    buf_addc(fr, '\n');
    freeReplyObject(g);
    freeReplyObject(parts);
}

/* Which columns fit in `width` next to rank and agent (all when width is 0). */
static void top_fit_columns(bool *show, size_t agent_w, long width)
{
    size_t total = 4 + agent_w;
    for (size_t c = 0; c < TOP_NCOLS; c++) {
        show[c] = true;
        total += 1 + (size_t)top_cols[c].width;
    }
    while (width > 0 && total > (size_t)width) {
        size_t worst = TOP_NCOLS;
        for (size_t c = 0; c < TOP_NCOLS; c++)
            if (show[c] && top_cols[c].drop > 0 &&
                (worst == TOP_NCOLS || top_cols[c].drop > top_cols[worst].drop))
                worst = c;
        if (worst == TOP_NCOLS)
            break;
        show[worst] = false;
        total -= 1 + (size_t)top_cols[worst].width;
    }
}

static void top_add_row(struct buf *fr, const char *rank, const char *who, size_t agent_w,
                        const bool *show, const struct kpi_figures *f, enum kpi_id sort)
{
    buf_printf(fr, "%3s ", rank);
    top_add_padded(fr, who, agent_w);
    for (size_t c = 0; c < TOP_NCOLS; c++) {
        if (!show[c])
            continue;
        char cell[48];
        if (f)
            top_cell(f, top_cols[c].kpi, cell, sizeof(cell));
        else
            snprintf(cell, sizeof(cell), "%s", top_cols[c].head);
        if (!f && top_cols[c].kpi == sort)
            for (char *q = cell; *q; q++)
                *q = (char)toupper((unsigned char)*q);
        buf_printf(fr, " %*s", top_cols[c].width, cell);
    }
    buf_addc(fr, '\n');
}

/* Appends one row as a JSON object on its own line (agent NULL: the team, rank 0). */
static void top_json_row(struct buf *fr, const char *shop, const char *agent, long rank,
                         const struct period *p, const struct top_opts *o,
                         const struct kpi_figures *f)
{
    static char metrics[65536];
    if (kpi_metrics_json(f, metrics, sizeof(metrics)) < 0)
        snprintf(metrics, sizeof(metrics), "null");
    char start[40], end[40];
    period_format_rfc3339(p->start_ms, start, sizeof(start));
    period_format_rfc3339(p->end_ms, end, sizeof(end));
    buf_adds(fr, "{\"shop_id\": ");
    utf8_json_string(fr, shop);
    buf_adds(fr, ", \"agent_id\": ");
    if (agent)
        utf8_json_string(fr, agent);
    else
        buf_adds(fr, "null");
    if (rank > 0)
        buf_printf(fr, ", \"rank\": %ld", rank);
    else
        buf_adds(fr, ", \"rank\": null");
    buf_printf(fr,
               ", \"period\": \"%s\", \"period_start\": \"%s\", \"period_end\": \"%s\", "
               "\"sort\": \"%s\", \"metrics\": %s}\n",
               p->label, start, end, kpi_name(o->sort), metrics);
}

/* Appends one shop's table: a title line, the header, `limit` agents (0: all), team;
 * with o->json, JSON lines instead (top_json_row). */
static int top_shop(struct buf *fr, struct rconn *rc, struct store *st, const char *prefix,
                    const char *shop, const struct period *p, const struct top_opts *o, long limit)
{
    char err[512];
    struct buf tag;
    buf_init(&tag);
    keys_owner_tag(&tag, prefix, KEYS_TEAM, shop, NULL);
    redisReply *r = rconn_command(rc, err, sizeof(err), "SMEMBERS %s:agents", tag.data);
    if (!r) {
        buf_printf(fr, "shop %s: %s\n", shop, err);
        buf_release(&tag);
        return -1;
    }
    size_t n = r->type == REDIS_REPLY_ARRAY ? r->elements : 0;
    struct top_row *rows = xcalloc(n + 1, sizeof(*rows));
    size_t nrows = 0;
    int status = 0;
    for (size_t i = 0; i < n && status == 0; i++) {
        struct buf at;
        buf_init(&at);
        keys_owner_tag(&at, prefix, KEYS_AGENT, shop, r->element[i]->str);
        struct top_row *row = &rows[nrows];
        int got = store_read_figures(st, at.data, p, &row->f, err, sizeof(err));
        if (got < 0) {
            buf_printf(fr, "shop %s: %s\n", shop, err);
            status = -1;
        } else if (got == 0) {
            row->agent = xstrdup(r->element[i]->str);
            struct kpi_value v = kpi_compute(&row->f, o->sort);
            row->defined = v.defined;
            row->key = v.value;
            nrows++;
        }
        buf_release(&at);
    }
    freeReplyObject(r);
    struct kpi_figures team;
    int team_got = status == 0 ? store_read_figures(st, tag.data, p, &team, err, sizeof(err)) : 1;
    if (team_got < 0) {
        buf_printf(fr, "shop %s: %s\n", shop, err);
        status = -1;
    }
    if (status == 0 && o->json) {
        top_sort_lower = top_lower_is_better(o->sort);
        qsort(rows, nrows, sizeof(*rows), top_cmp);
        size_t shown = limit > 0 && (size_t)limit < nrows ? (size_t)limit : nrows;
        for (size_t i = 0; i < shown; i++)
            top_json_row(fr, shop, rows[i].agent, (long)i + 1, p, o, &rows[i].f);
        if (team_got == 0)
            top_json_row(fr, shop, NULL, 0, p, o, &team);
    } else if (status == 0) {
        top_sort_lower = top_lower_is_better(o->sort);
        qsort(rows, nrows, sizeof(*rows), top_cmp);
        size_t shown = limit > 0 && (size_t)limit < nrows ? (size_t)limit : nrows;
        size_t agent_w = 5;
        for (size_t i = 0; i < shown; i++) {
            size_t w = top_text_width(rows[i].agent);
            if (w > agent_w)
                agent_w = w;
        }
        if (agent_w > TOP_AGENT_WIDTH_MAX)
            agent_w = TOP_AGENT_WIDTH_MAX;
        bool show[TOP_NCOLS];
        top_fit_columns(show, agent_w, o->width);
        buf_adds(fr, "shop ");
        buf_adds(fr, shop);
        if (nrows == 0)
            buf_printf(fr, ": no agent has figures in %s", p->label);
        else
            buf_printf(fr, ": %zu agent%s", nrows, nrows == 1 ? "" : "s");
        if (shown < nrows)
            buf_printf(fr, ", the best %zu shown", shown);
        if (nrows > 0 && n > nrows)
            buf_printf(fr, " (%zu more without figures in %s)", n - nrows, p->label);
        buf_addc(fr, '\n');
        if (nrows > 0 || team_got == 0) {
            top_add_row(fr, "#", "agent", agent_w, show, NULL, o->sort);
            for (size_t i = 0; i < shown; i++) {
                char rank[24];
                snprintf(rank, sizeof(rank), "%zu", i + 1);
                top_add_row(fr, rank, rows[i].agent, agent_w, show, &rows[i].f, o->sort);
            }
            if (team_got == 0)
                top_add_row(fr, "", "team", agent_w, show, &team, o->sort);
        }
    }
    for (size_t i = 0; i < nrows; i++)
        free(rows[i].agent);
    free(rows);
    buf_release(&tag);
    return status;
}

/* The shops to show: the --shop list, else every shop in the registry, sorted. The
 * strings of *owned are malloc'd (caller frees them and the array). */
static int top_list_shops(struct rconn *rc, const char *prefix, const struct top_opts *o,
                          char ***owned, size_t *n, char *err, size_t errlen)
{
    *owned = NULL;
    *n = 0;
    if (o->nshops) {
        *owned = xcalloc(o->nshops, sizeof(**owned));
        for (size_t i = 0; i < o->nshops; i++)
            (*owned)[i] = xstrdup(o->shops[i]);
        *n = o->nshops;
        return 0;
    }
    redisReply *r = rconn_command(rc, err, errlen, "SMEMBERS %s{r}:shops", prefix);
    if (!r)
        return -1;
    size_t m = r->type == REDIS_REPLY_ARRAY ? r->elements : 0;
    *owned = xcalloc(m + 1, sizeof(**owned));
    for (size_t i = 0; i < m; i++)
        (*owned)[i] = xstrdup(r->element[i]->str);
    *n = m;
    freeReplyObject(r);
    qsort(*owned, m, sizeof(**owned), top_strcmp);
    return 0;
}

/* Builds one frame into fr. -1 when Redis failed (the frame then says why). */
static int top_frame(struct buf *fr, struct rconn *rc, struct store *st, const char *prefix,
                     const char *zone, const struct top_opts *o)
{
    char err[512];
    struct period p;
    int64_t now = clock_wall_ms();
    if (o->label ? period_from_label(o->label, &p) < 0 : period_of(o->kind, now, &p) < 0) {
        buf_printf(fr, "invalid period '%s'\n", o->label ? o->label : period_kind_name(o->kind));
        return -1;
    }
    if (!o->json) {
        char first_day[16], last_day[16], clock[16];
        top_format_time(p.start_ms, "%m-%d", first_day, sizeof(first_day));
        top_format_time(p.end_ms - 1, "%m-%d", last_day, sizeof(last_day));
        top_format_time(now, "%H:%M:%S", clock, sizeof(clock));
        buf_printf(fr, "%s %s", period_kind_name(p.kind), p.label);
        if (p.kind == PERIOD_WEEK)
            buf_printf(fr, " (%s..%s)", first_day, last_day);
        buf_printf(fr, ", %s, by %s (%s first), %s\n", zone, kpi_name(o->sort),
                   top_lower_is_better(o->sort) ? "lowest" : "highest", clock);
    }
    if (!rconn_connected(rc) && rconn_connect(rc, err, sizeof(err)) < 0) {
        buf_printf(fr, "redis: %s\n", err);
        return -1;
    }
    if (!o->json) {
        top_progress(fr, rc, prefix);
        if (o->keys)
            buf_adds(fr, "keys: q quit, s < > sort, p P period kind, [ ] previous/next period, "
                         "c current\n");
    }
    char **shops;
    size_t nshops;
    if (top_list_shops(rc, prefix, o, &shops, &nshops, err, sizeof(err)) < 0) {
        buf_printf(fr, "redis: %s\n", err);
        return -1;
    }
    if (nshops == 0 && !o->json)
        buf_printf(fr, "\n(no shops yet: the daemon has not counted any event)\n");
    /* Rows per shop that fit the screen: 3 lines of title, header and team, 1 blank;
     * above them 2 (3 with the keys line). */
    long limit = o->limit;
    if (limit == 0 && o->height > 0 && nshops > 0) {
        limit = (o->height - (o->keys ? 3 : 2)) / (long)nshops - 4;
        if (limit < 1)
            limit = 1;
    }
    int status = 0;
    for (size_t i = 0; i < nshops; i++) {
        if (!o->json)
            buf_addc(fr, '\n');
        if (status == 0 && top_shop(fr, rc, st, prefix, shops[i], &p, o, limit) < 0)
            status = -1;
        free(shops[i]);
    }
    free(shops);
    return status;
}

/* Writes a frame: plain, or over the previous one (each line cleared to its end, then
 * the rest of the screen); lines longer than o->width (when set) are cut. */
static void top_write(const struct buf *fr, const struct top_opts *o)
{
    struct buf out;
    buf_init(&out);
    if (o->tty)
        buf_adds(&out, "\033[H");
    const char *s = fr->data ? fr->data : "";
    while (*s) {
        const char *nl = strchr(s, '\n');
        size_t len = nl ? (size_t)(nl - s) : strlen(s), cut = len, cols = 0;
        for (size_t i = 0; o->width > 0 && i < len; i++) {
            if (((unsigned char)s[i] & 0xC0) != 0x80 && cols++ == (size_t)o->width) {
                cut = i;
                break;
            }
        }
        buf_add(&out, s, cut);
        if (o->tty)
            buf_adds(&out, "\033[K");
        buf_addc(&out, '\n');
        s += len + (nl ? 1 : 0);
    }
    if (o->tty)
        buf_adds(&out, "\033[J");
    fwrite(out.data, 1, out.len, stdout);
    fflush(stdout);
    buf_release(&out);
}

/* A failed JSON frame: its error lines go to stderr, its JSON lines nowhere. */
static void top_json_errors(const struct buf *fr)
{
    const char *s = fr->data ? fr->data : "";
    while (*s) {
        const char *nl = strchr(s, '\n');
        size_t len = nl ? (size_t)(nl - s) : strlen(s);
        if (*s != '{')
            fprintf(stderr, "csmetrics: %.*s\n", (int)len, s);
        s += len + (nl ? 1 : 0);
    }
}

/* Moves the sort to the column `step` away from the current one (the first column
 * when the sort KPI has none). */
static void top_step_sort(struct top_opts *o, int step)
{
    size_t cur = TOP_NCOLS;
    for (size_t c = 0; c < TOP_NCOLS; c++)
        if (top_cols[c].kpi == o->sort)
            cur = c;
    size_t next = cur == TOP_NCOLS ? 0 : (cur + TOP_NCOLS + (size_t)(long)step) % TOP_NCOLS;
    o->sort = top_cols[next].kpi;
}

/* Moves to the previous (step -1) or next (+1) period of the one shown. */
static void top_step_period(struct top_opts *o, int step)
{
    struct period p, q;
    int bad = o->label ? period_from_label(o->label, &p) : period_of(o->kind, clock_wall_ms(), &p);
    if (bad < 0 || (step < 0 ? period_prev(&p, &q) : period_next(&p, &q)) < 0)
        return;
    snprintf(o->label_buf, sizeof(o->label_buf), "%s", q.label);
    o->label = o->label_buf;
    o->kind = q.kind;
}

/* Acts on the keys read at once (an arrow key is one escape sequence). */
static void top_keys(struct top_opts *o, const char *k, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = k[i];
        if (c == '\033' && i + 2 < n && (k[i + 1] == '[' || k[i + 1] == 'O')) {
            c = k[i + 2] == 'A'   ? '<'
                : k[i + 2] == 'B' ? '>'
                : k[i + 2] == 'C' ? ']'
                : k[i + 2] == 'D' ? '['
                                  : 0;
            i += 2;
        }
        switch (c) {
        case 'q':
        case 'Q':
            top_stop = 1;
            break;
        case 's':
        case '>':
            top_step_sort(o, 1);
            break;
        case '<':
            top_step_sort(o, -1);
            break;
        case 'p':
        case 'P':
            o->kind = (enum period_kind)((o->kind + (c == 'p' ? 1 : PERIOD_KIND_COUNT - 1)) %
                                         PERIOD_KIND_COUNT);
            o->label = NULL;
            break;
        case '[':
            top_step_period(o, -1);
            break;
        case ']':
            top_step_period(o, 1);
            break;
        case 'c':
            o->label = NULL;
            break;
        default:
            break; /* space, r and anything else: just redraw */
        }
    }
}

/* Sleeps `interval` seconds; returns early on a key (handled), a resize or a signal. */
static void top_wait(struct top_opts *o, double interval)
{
    int64_t until = clock_mono_ms() + (int64_t)(interval * 1000);
    while (!top_stop) {
        int64_t left = until - clock_mono_ms();
        if (left <= 0)
            return;
        struct pollfd pfd = {.fd = STDIN_FILENO, .events = POLLIN};
        int r = poll(&pfd, o->keys ? 1 : 0, (int)(left > 100 ? 100 : left));
        if (top_resized) {
            top_resized = 0;
            return;
        }
        if (r > 0) {
            char k[16];
            ssize_t n = read(STDIN_FILENO, k, sizeof(k));
            if (n <= 0) {
                o->keys = false; /* end of input: no more keys */
                continue;
            }
            top_keys(o, k, (size_t)n);
            return;
        }
    }
}

static int top_parse_long(const char *opt, const char *text, long min, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || end == text || *end || v < min) {
        fprintf(stderr, "csmetrics: %s wants a whole number >= %ld, not '%s'\n", opt, min, text);
        return -1;
    }
    *out = v;
    return 0;
}

int cli_top(int argc, char **argv, const char *config_path)
{
    struct top_opts o = {.kind = PERIOD_MONTH, .sort = KPI_SALES};
    const char *kind = NULL;
    double interval = 2;
    bool once = false, width_set = false;
    static const struct option opts[] = {
        {.name = "shop", .has_arg = required_argument, .val = 's'},
        {.name = "period", .has_arg = required_argument, .val = 'p'},
        {.name = "kind", .has_arg = required_argument, .val = 'k'},
        {.name = "sort", .has_arg = required_argument, .val = 'o'},
        {.name = "limit", .has_arg = required_argument, .val = 'n'},
        {.name = "interval", .has_arg = required_argument, .val = 'i'},
        {.name = "width", .has_arg = required_argument, .val = 'w'},
        {.name = "once", .has_arg = no_argument, .val = '1'},
        {.name = "json", .has_arg = no_argument, .val = 'j'},
        {.name = "help", .has_arg = no_argument, .val = 'h'},
        {0},
    };
    optind = 1;
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        char *end;
        switch (ch) {
        case 's':
            if (o.nshops == TOP_SHOPS_MAX) {
                fprintf(stderr, "csmetrics: at most %d --shop\n", TOP_SHOPS_MAX);
                return 2;
            }
            o.shops[o.nshops++] = optarg;
            break;
        case 'p':
            o.label = optarg;
            break;
        case 'k':
            kind = optarg;
            break;
        case 'o':
            if (top_sort_lookup(optarg, &o.sort) < 0) {
                fprintf(stderr, "csmetrics: unknown KPI '%s' (see 'csmetrics top --help')\n",
                        optarg);
                return 2;
            }
            break;
        case 'n':
            if (top_parse_long("--limit", optarg, 1, &o.limit) < 0)
                return 2;
            break;
        case 'w':
            if (top_parse_long("--width", optarg, 20, &o.width) < 0)
                return 2;
            width_set = true;
            break;
        case 'i':
            errno = 0;
            interval = strtod(optarg, &end);
            if (errno || end == optarg || *end || !(interval >= 0.1 && interval <= 86400)) {
                fprintf(stderr, "csmetrics: --interval wants seconds from 0.1 to 86400, not '%s'\n",
                        optarg);
                return 2;
            }
            break;
        case '1':
            once = true;
            break;
        case 'j':
            o.json = true;
            break;
        case 'h':
            top_usage(stdout);
            return 0;
        default:
            top_usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "csmetrics: unexpected argument '%s'\n", argv[optind]);
        top_usage(stderr);
        return 2;
    }
    if (kind && o.label) {
        fprintf(stderr, "csmetrics: --kind and --period exclude each other\n");
        return 2;
    }
    if (kind && period_kind_parse(kind, &o.kind) < 0) {
        fprintf(stderr,
                "csmetrics: unknown period kind '%s' (day, week, month, quarter, half, year)\n",
                kind);
        return 2;
    }
    struct period check;
    if (o.label && period_from_label(o.label, &check) < 0) {
        fprintf(stderr, "csmetrics: invalid period label '%s'\n", o.label);
        return 2;
    }
    if (o.label)
        o.kind = check.kind; /* the p key then starts from the kind shown */
    struct csm_config cfg;
    if (cli_load_config(&cfg, config_path) < 0) {
        config_release(&cfg);
        return 1;
    }
    struct rconn *rc = cli_redis(&cfg);
    if (!rc) {
        config_release(&cfg);
        return 1;
    }
    struct store *st = store_new(rc, cfg.redis_key_prefix);
    o.tty = !once && !o.json && isatty(STDOUT_FILENO);
    o.keys = o.tty && isatty(STDIN_FILENO);
    struct sigaction sa = {.sa_handler = top_on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGWINCH, &sa, NULL);
    struct termios saved_tio;
    if (o.keys && tcgetattr(STDIN_FILENO, &saved_tio) == 0) {
        /* keys without Enter and without echo; Ctrl-C still signals (ISIG stays on) */
        struct termios raw = saved_tio;
        raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
        raw.c_cc[VMIN] = 1;
        raw.c_cc[VTIME] = 0;
        o.keys = tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0;
    } else {
        o.keys = false;
    }
    if (o.tty)
        fputs("\033[?25l\033[H\033[2J", stdout); /* hide the cursor, clear */
    int status = 0;
    while (!top_stop) {
        struct winsize ws;
        o.height = 0;
        if (!width_set)
            o.width = 0;
        if (isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) {
            if (!width_set)
                o.width = ws.ws_col;
            if (o.tty)
                o.height = ws.ws_row;
        } else if (!width_set && getenv("COLUMNS")) {
            o.width = atol(getenv("COLUMNS"));
        }
        if (o.json)
            o.width = 0; /* never cut a JSON line */
        struct buf fr;
        buf_init(&fr);
        int rc_frame = top_frame(&fr, rc, st, cfg.redis_key_prefix, cfg.timezone, &o);
        if (o.tty && o.height > 0) {
            /* keep the frame within the screen: top(1) cuts, it does not scroll */
            size_t lines = 0;
            for (size_t i = 0; i < fr.len; i++)
                if (fr.data[i] == '\n' && ++lines == (size_t)o.height - 1) {
                    fr.len = i + 1;
                    fr.data[fr.len] = '\0';
                    break;
                }
        }
        if (o.json && rc_frame < 0)
            top_json_errors(&fr);
        else
            top_write(&fr, &o);
        buf_release(&fr);
        if (once) {
            status = rc_frame < 0 ? 1 : 0;
            break;
        }
        if (!o.tty && !o.json)
            fputc('\n', stdout);
        top_wait(&o, interval);
    }
    if (o.keys)
        tcsetattr(STDIN_FILENO, TCSANOW, &saved_tio);
    if (o.tty)
        fputs("\033[?25h", stdout);
    fflush(stdout);
    store_destroy(st);
    rconn_destroy(rc);
    config_release(&cfg);
    return status;
}
