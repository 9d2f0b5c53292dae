/* top — a live leaderboard of one shop's agents from Redis, refreshed like top(1):
 * the period in progress (or --period), sorted by a KPI, best first. */
#include "aggregator/keys.h"
#include "aggregator/kpi.h"
#include "cli/cli.h"
#include "cli/common.h"
#include "common/buf.h"
#include "common/clock.h"

#include <getopt.h>
#include <hiredis/hiredis.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t top_stop;

static void top_on_signal(int sig)
{
    (void)sig;
    top_stop = 1;
}

struct top_row {
    char *agent;
    struct kpi_figures f;
    double key;
    bool defined;
};

static int top_cmp(const void *a, const void *b)
{
    const struct top_row *x = a, *y = b;
    if (x->defined != y->defined)
        return x->defined ? -1 : 1;
    if (x->key != y->key)
        return x->key > y->key ? -1 : 1;
    return strcmp(x->agent, y->agent);
}

static void top_usage(FILE *out)
{
    fprintf(out, "usage: csmetrics top [--shop S] [--period LABEL | --kind month] [--sort KPI]\n"
                 "                     [--interval SECONDS] [--once]\n"
                 "  A live leaderboard of the shop's agents, best first by --sort (default\n"
                 "  sales), refreshed every --interval seconds (default 2) until Ctrl-C.\n");
}

static void top_cell(const struct kpi_figures *f, enum kpi_id id, char *out, size_t n)
{
    struct kpi_value v = kpi_compute(f, id);
    if (!v.defined)
        snprintf(out, n, "-");
    else if (kpi_unit(id) == KPI_MONEY)
        kpi_format_cents(v.cents, out, n);
    else if (kpi_unit(id) == KPI_RATIO)
        snprintf(out, n, "%.1f%%", v.value * 100);
    else if (kpi_unit(id) == KPI_SECONDS)
        snprintf(out, n, "%.1fs", v.value);
    else
        snprintf(out, n, "%.0f", v.value);
}

static int top_draw(struct rconn *rc, struct store *st, const char *prefix, const char *shop,
                    const struct period *p, enum kpi_id sort, bool clear)
{
    char err[512];
    struct buf tag;
    buf_init(&tag);
    keys_owner_tag(&tag, prefix, KEYS_TEAM, shop, NULL);
    redisReply *r = rconn_command(rc, err, sizeof(err), "SMEMBERS %s:agents", tag.data);
    if (!r) {
        fprintf(stderr, "csmetrics: %s\n", err);
        buf_release(&tag);
        return -1;
    }
    size_t n = r->type == REDIS_REPLY_ARRAY ? r->elements : 0;
    struct top_row *rows = xcalloc(n + 1, sizeof(*rows));
    size_t nrows = 0;
    for (size_t i = 0; i < n; i++) {
        struct buf at;
        buf_init(&at);
        keys_owner_tag(&at, prefix, KEYS_AGENT, shop, r->element[i]->str);
        struct top_row *row = &rows[nrows];
        if (store_read_figures(st, at.data, p, &row->f, err, sizeof(err)) == 0) {
            row->agent = xstrdup(r->element[i]->str);
            struct kpi_value v = kpi_compute(&row->f, sort);
            row->defined = v.defined;
            row->key = v.value;
            nrows++;
        }
        buf_release(&at);
    }
    freeReplyObject(r);
    qsort(rows, nrows, sizeof(*rows), top_cmp);
    if (clear)
        printf("\033[H\033[2J");
    printf("csmetrics top — shop %s, period %s, sorted by %s, %zu agents\n\n", shop, p->label,
           kpi_name(sort), nrows);
    static const enum kpi_id cols[] = {KPI_INQUIRIES, KPI_REPLY_RATE, KPI_RESPONSE_TIME_MEAN_S,
                                       KPI_UNANSWERED_WAITS, KPI_INQUIRY_CONVERSION,
                                       KPI_ORDER_SUCCESS, KPI_SALES, KPI_AOV, KPI_REFUND_RATE,
                                       KPI_COMPLAINTS, KPI_TARGET_COMPLETION};
    printf("%-4s %-12s", "#", "agent");
    for (size_t c = 0; c < sizeof(cols) / sizeof(cols[0]); c++) {
        const char *nm = kpi_name(cols[c]);
        printf(" %12.12s", nm);
    }
    printf("\n");
    for (size_t i = 0; i < nrows; i++) {
        printf("%-4zu %-12.12s", i + 1, rows[i].agent);
        for (size_t c = 0; c < sizeof(cols) / sizeof(cols[0]); c++) {
            char cell[32];
            top_cell(&rows[i].f, cols[c], cell, sizeof(cell));
            printf(" %12s", cell);
        }
        printf("\n");
        free(rows[i].agent);
    }
    fflush(stdout);
    free(rows);
    buf_release(&tag);
    return 0;
}

int cli_top(int argc, char **argv, const char *config_path)
{
    const char *shop = "default", *label = NULL, *kind = "month", *sortname = "sales";
    double interval = 2;
    bool once = false;
    static const struct option opts[] = {
        {.name = "shop", .has_arg = required_argument, .val = 's'},
        {.name = "period", .has_arg = required_argument, .val = 'p'},
        {.name = "kind", .has_arg = required_argument, .val = 'k'},
        {.name = "sort", .has_arg = required_argument, .val = 'o'},
        {.name = "interval", .has_arg = required_argument, .val = 'i'},
        {.name = "once", .has_arg = no_argument, .val = '1'},
        {.name = "help", .has_arg = no_argument, .val = 'h'},
        {0},
    };
    optind = 1;
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 's': shop = optarg; break;
        case 'p': label = optarg; break;
        case 'k': kind = optarg; break;
        case 'o': sortname = optarg; break;
        case 'i': interval = atof(optarg); break;
        case '1': once = true; break;
        case 'h': top_usage(stdout); return 0;
        default: top_usage(stderr); return 2;
        }
    }
    enum kpi_id sort;
    if (kpi_lookup(sortname, &sort) < 0) {
        fprintf(stderr, "csmetrics: unknown KPI '%s'\n", sortname);
        return 2;
    }
    enum period_kind pk;
    if (period_kind_parse(kind, &pk) < 0) {
        fprintf(stderr, "csmetrics: unknown period kind '%s'\n", kind);
        return 2;
    }
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
    struct sigaction sa = {.sa_handler = top_on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    int status = 0;
    while (!top_stop) {
        struct period p;
        if (label ? period_from_label(label, &p) < 0 : period_of(pk, clock_wall_ms(), &p) < 0) {
            fprintf(stderr, "csmetrics: invalid period '%s'\n", label ? label : kind);
            status = 2;
            break;
        }
        if (top_draw(rc, st, cfg.redis_key_prefix, shop, &p, sort, !once) < 0) {
            status = 1;
            break;
        }
        if (once)
            break;
        usleep((useconds_t)(interval * 1e6));
    }
    store_destroy(st);
    rconn_destroy(rc);
    config_release(&cfg);
    return status;
}
