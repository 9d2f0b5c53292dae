/* show — an agent's live KPIs from Redis: a table, or with --json one object per line
 * (operations.md): shop_id, agent_id, period, period_start, period_end, metrics. */
#include "aggregator/keys.h"
#include "aggregator/kpi.h"
#include "cli/cli.h"
#include "cli/common.h"
#include "common/buf.h"
#include "common/utf8.h"

#include <getopt.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void show_usage(FILE *out)
{
    fprintf(out, "usage: csmetrics show [--shop S] --agent A [--period P] [--team] [--json]\n"
                 "  Prints an agent's KPIs as Redis holds them now (live figures of open periods,\n"
                 "  final figures of closed ones). --period takes a label: 2026-08, 2026-W45,\n"
                 "  2026-Q3, 2026-H2, 2026, 2026-08-03; without it every period held is shown.\n"
                 "  --team shows the shop's team figures instead (no --agent).\n"
                 "  The table shows ratios as percentages and times in seconds; --json gives\n"
                 "  exact numbers (ratios as fractions, money in yuan).\n"
                 "  Exits 1 when there are no figures for the agent or period.\n");
}

static int show_one(struct store *st, const char *tag, const char *shop, const char *agent,
                    const struct period *p, bool json)
{
    struct kpi_figures f;
    char err[512];
    int rc = store_read_figures(st, tag, p, &f, err, sizeof(err));
    if (rc < 0) {
        fprintf(stderr, "csmetrics: %s\n", err);
        return -1;
    }
    if (rc == 1)
        return 1;
    char start[40], end[40];
    period_format_rfc3339(p->start_ms, start, sizeof(start));
    period_format_rfc3339(p->end_ms, end, sizeof(end));
    if (json) {
        static char metrics[65536];
        if (kpi_metrics_json(&f, metrics, sizeof(metrics)) < 0)
            return -1;
        struct buf b;
        buf_init(&b);
        buf_adds(&b, "{\"shop_id\": ");
        utf8_json_string(&b, shop);
        buf_adds(&b, ", \"agent_id\": ");
        if (agent)
            utf8_json_string(&b, agent);
        else
            buf_adds(&b, "null");
        buf_printf(&b,
                   ", \"period\": \"%s\", \"period_start\": \"%s\", \"period_end\": \"%s\", "
                   "\"metrics\": %s}",
                   p->label, start, end, metrics);
        puts(b.data);
        buf_release(&b);
        return 0;
    }
    printf("%s %s  period %s  [%s, %s)\n", shop, agent ? agent : "(team)", p->label, start, end);
    for (int k = 0; k < KPI_COUNT_ALL; k++) {
        struct kpi_value v = kpi_compute(&f, (enum kpi_id)k);
        char num[64];
        if (!v.defined)
            snprintf(num, sizeof(num), "-");
        else if (kpi_unit((enum kpi_id)k) == KPI_MONEY)
            kpi_format_cents(v.cents, num, sizeof(num));
        else if (kpi_unit((enum kpi_id)k) == KPI_RATIO)
            snprintf(num, sizeof(num), "%.1f%%", v.value * 100);
        else if (kpi_unit((enum kpi_id)k) == KPI_SECONDS)
            snprintf(num, sizeof(num), "%.1f s", v.value);
        else
            kpi_format_double(v.value, num, sizeof(num));
        printf("  %-28s %s\n", kpi_name((enum kpi_id)k), num);
    }
    for (size_t i = 0; i < f.reviews_n; i++)
        printf("  review.%s.%s%*s %g\n", f.reviews[i].item, review_role_name(f.reviews[i].role),
               (int)(20 - strlen(f.reviews[i].item) - strlen(review_role_name(f.reviews[i].role))) >
                       0
                   ? (int)(20 - strlen(f.reviews[i].item) -
                           strlen(review_role_name(f.reviews[i].role)))
                   : 1,
               "", f.reviews[i].value);
    return 0;
}

int cli_show(int argc, char **argv, const char *config_path)
{
    const char *shop = "default", *agent = NULL, *label = NULL;
    bool json = false, team = false;
    static const struct option opts[] = {
        {.name = "shop", .has_arg = required_argument, .val = 's'},
        {.name = "agent", .has_arg = required_argument, .val = 'a'},
        {.name = "period", .has_arg = required_argument, .val = 'p'},
        {.name = "json", .has_arg = no_argument, .val = 'j'},
        {.name = "team", .has_arg = no_argument, .val = 't'},
        {.name = "help", .has_arg = no_argument, .val = 'h'},
        {0},
    };
    optind = 1;
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 's':
            shop = optarg;
            break;
        case 'a':
            agent = optarg;
            break;
        case 'p':
            label = optarg;
            break;
        case 'j':
            json = true;
            break;
        case 't':
            team = true;
            break;
        case 'h':
            show_usage(stdout);
            return 0;
        default:
            show_usage(stderr);
            return 2;
        }
    }
    if (!agent && !team) {
        show_usage(stderr);
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
    struct buf tag;
    buf_init(&tag);
    keys_owner_tag(&tag, cfg.redis_key_prefix, team ? KEYS_TEAM : KEYS_AGENT, shop, agent);
    int status = 0;
    const char *who = team ? "team" : agent;
    if (label) {
        struct period p;
        if (period_from_label(label, &p) < 0) {
            fprintf(stderr, "csmetrics: invalid period label '%s'\n", label);
            status = 2;
        } else {
            int r = show_one(st, tag.data, shop, team ? NULL : agent, &p, json);
            if (r == 1)
                fprintf(stderr, "csmetrics: no figures for '%s' of shop '%s' in period %s\n", who,
                        shop, label);
            status = r == 0 ? 0 : 1;
        }
    } else {
        char err[512];
        redisReply *r = rconn_command(rc, err, sizeof(err), "ZRANGE %s:periods 0 -1", tag.data);
        if (!r) {
            fprintf(stderr, "csmetrics: %s\n", err);
            status = 1;
        } else {
            size_t shown = 0;
            for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
                struct period p;
                if (period_from_label(r->element[i]->str, &p) < 0)
                    continue;
                if (show_one(st, tag.data, shop, team ? NULL : agent, &p, json) == 0)
                    shown++;
            }
            freeReplyObject(r);
            if (!shown) {
                fprintf(stderr, "csmetrics: no figures for '%s' of shop '%s'\n", who, shop);
                status = 1;
            }
        }
    }
    buf_release(&tag);
    store_destroy(st);
    rconn_destroy(rc);
    config_release(&cfg);
    return status;
}
