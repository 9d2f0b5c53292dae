/* snapshots — lists the final snapshots csmetricsd recorded in Redis (rules_run.c: hash
 * PREFIX{x:RULE:SHOP}:LABEL:final, agent → snapshot JSON): a table, or with --json the
 * stored records one per line. The (rule, shop, period) keys are found with SCAN, so
 * snapshots of rule files no longer loaded are listed too. Read-only. */
#include "aggregator/keys.h"
#include "aggregator/kpi.h"
#include "cli/cli.h"
#include "cli/common.h"
#include "common/buf.h"

#include <getopt.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_tree.h>

static void snapshots_usage(FILE *out)
{
    fprintf(out,
            "usage: csmetrics snapshots [--rule R] [--shop S] [--period P] [--agent A] [--json]\n"
            "  Lists the final snapshots in Redis (one per rule, shop, period and agent, as\n"
            "  csmetricsd emitted them when the period closed), sorted by rule, shop, period\n"
            "  and agent: a table (rule, shop, period, agent, score, grade, rank, payouts,\n"
            "  alerts), or with --json each stored snapshot record on one line. The options\n"
            "  select by exact value (--period takes a label: 2026-08, 2026-Q3, ...).\n"
            "  Exits 1 with a message when no snapshot matches.\n");
}

/* One PREFIX{x:RULE:SHOP}:LABEL:final key. */
struct snap_key {
    char *key, *rule, *shop, *label;
    int64_t start_ms;
};

/* Appends s to b with Redis glob's special characters escaped. */
static void glob_escape(struct buf *b, const char *s)
{
    for (; *s; s++) {
        if (strchr("*?[]\\", *s))
            buf_addc(b, '\\');
        buf_addc(b, *s);
    }
}

/* Splits PREFIX{x:RULE:SHOP}:LABEL:final; -1 when the key has another shape. */
static int snap_parse(const char *prefix, const char *key, struct snap_key *out)
{
    size_t pl = strlen(prefix), kl = strlen(key);
    if (strncmp(key, prefix, pl) != 0 || strncmp(key + pl, "{x:", 3) != 0 || kl < 6 ||
        strcmp(key + kl - 6, ":final") != 0)
        return -1;
    const char *r = key + pl + 3, *close = strchr(r, '}');
    const char *colon = close ? memchr(r, ':', (size_t)(close - r)) : NULL;
    if (!colon || close[1] != ':')
        return -1;
    const char *label = close + 2;
    size_t ll = (size_t)(key + kl - 6 - label);
    char lab[PERIOD_LABEL_MAX];
    struct period p;
    if (ll == 0 || ll >= sizeof(lab))
        return -1;
    memcpy(lab, label, ll);
    lab[ll] = '\0';
    if (period_from_label(lab, &p) < 0)
        return -1;
    out->rule = keys_unescape(r, (size_t)(colon - r));
    out->shop = keys_unescape(colon + 1, (size_t)(close - colon - 1));
    if (!out->rule || !out->shop) {
        free(out->rule);
        free(out->shop);
        return -1;
    }
    out->key = xstrdup(key);
    out->label = xstrdup(lab);
    out->start_ms = p.start_ms;
    return 0;
}

static int snap_key_cmp(const void *pa, const void *pb)
{
    const struct snap_key *a = pa, *b = pb;
    int c = strcmp(a->rule, b->rule);
    if (c)
        return c;
    if ((c = strcmp(a->shop, b->shop)))
        return c;
    if (a->start_ms != b->start_ms)
        return a->start_ms < b->start_ms ? -1 : 1;
    return strcmp(a->label, b->label); /* a week and a month may start together */
}

struct snap_row {
    const char *agent;
    const char *json;
};

static int snap_row_cmp(const void *pa, const void *pb)
{
    return strcmp(((const struct snap_row *)pa)->agent, ((const struct snap_row *)pb)->agent);
}

/* A table: every cell is collected first, so the columns fit. */
#define SNAP_COLS 9
struct snap_table {
    char **cells;
    size_t n, cap;
};

static void table_add(struct snap_table *t, const char *s)
{
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 64;
        t->cells = xrealloc(t->cells, t->cap * sizeof(*t->cells));
    }
    t->cells[t->n++] = xstrdup(s);
}

static yajl_val snap_get(yajl_val obj, const char *key)
{
    const char *path[] = {key, NULL};
    return yajl_tree_get(obj, path, yajl_t_any);
}

static void snap_num(yajl_val v, char *buf, size_t n)
{
    if (v && YAJL_IS_NUMBER(v))
        kpi_format_double(YAJL_GET_DOUBLE(v), buf, n);
    else
        snprintf(buf, n, "-");
}

static void table_row(struct snap_table *t, const struct snap_key *k, const char *agent,
                      const char *json)
{
    char err[128], num[64];
    yajl_val s = yajl_tree_parse(json, err, sizeof(err));
    table_add(t, k->rule);
    table_add(t, k->shop);
    table_add(t, k->label);
    table_add(t, agent);
    snap_num(snap_get(s, "score"), num, sizeof(num));
    table_add(t, num);
    yajl_val g = snap_get(s, "grade");
    table_add(t, g && YAJL_IS_STRING(g) ? YAJL_GET_STRING(g) : "-");
    snap_num(snap_get(s, "rank"), num, sizeof(num));
    table_add(t, num);
    struct buf b;
    buf_init(&b);
    buf_adds(&b, "");
    yajl_val pay = snap_get(s, "payouts");
    for (size_t i = 0; pay && YAJL_IS_OBJECT(pay) && i < pay->u.object.len; i++) {
        snap_num(pay->u.object.values[i], num, sizeof(num));
        buf_printf(&b, "%s%s=%s", i ? "," : "", pay->u.object.keys[i], num);
    }
    table_add(t, b.len ? b.data : "-");
    buf_reset(&b);
    yajl_val al = snap_get(s, "alerts");
    for (size_t i = 0; al && YAJL_IS_ARRAY(al) && i < al->u.array.len; i++)
        if (YAJL_IS_STRING(al->u.array.values[i]))
            buf_printf(&b, "%s%s", b.len ? "," : "", YAJL_GET_STRING(al->u.array.values[i]));
    table_add(t, b.len ? b.data : "-");
    buf_release(&b);
    yajl_tree_free(s);
}

static void table_print(const struct snap_table *t)
{
    size_t w[SNAP_COLS] = {0};
    for (size_t i = 0; i < t->n; i++)
        if (strlen(t->cells[i]) > w[i % SNAP_COLS])
            w[i % SNAP_COLS] = strlen(t->cells[i]);
    for (size_t i = 0; i < t->n; i++) {
        size_t c = i % SNAP_COLS;
        if (c == SNAP_COLS - 1)
            printf("%s\n", t->cells[i]);
        else
            printf("%-*s  ", (int)w[c], t->cells[i]);
    }
}

/* Every final-snapshot key matching the filters, sorted; -1 on a Redis error. */
static int snap_scan(struct rconn *rc, const char *prefix, const char *rule, const char *shop,
                     const char *label, struct snap_key **out, size_t *n)
{
    char err[512];
    struct buf pat;
    buf_init(&pat);
    glob_escape(&pat, prefix);
    buf_adds(&pat, "{x:");
    if (rule && shop) {
        struct buf e;
        buf_init(&e);
        keys_escape(&e, rule);
        buf_addc(&e, ':');
        keys_escape(&e, shop);
        glob_escape(&pat, e.data);
        buf_release(&e);
        buf_adds(&pat, "}:");
    } else {
        buf_adds(&pat, "*");
    }
    if (label) {
        buf_addc(&pat, '*');
        glob_escape(&pat, label);
    } else {
        buf_addc(&pat, '*');
    }
    buf_adds(&pat, ":final");
    size_t cap = 0;
    *out = NULL;
    *n = 0;
    char cursor[32] = "0";
    do {
        redisReply *r = rconn_command(rc, err, sizeof(err), "SCAN %s MATCH %b COUNT 1000", cursor,
                                      pat.data, pat.len);
        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
            r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_ARRAY) {
            fprintf(stderr, "csmetrics: cannot scan for snapshots: %s\n",
                    r ? "unexpected reply" : err);
            if (r)
                freeReplyObject(r);
            buf_release(&pat);
            return -1;
        }
        snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
        redisReply *keys = r->element[1];
        for (size_t i = 0; i < keys->elements; i++) {
            struct snap_key k;
            if (keys->element[i]->type != REDIS_REPLY_STRING ||
                snap_parse(prefix, keys->element[i]->str, &k) < 0)
                continue;
            bool keep = (!rule || strcmp(k.rule, rule) == 0) &&
                        (!shop || strcmp(k.shop, shop) == 0) &&
                        (!label || strcmp(k.label, label) == 0);
            /* SCAN may return a key twice */
            for (size_t j = 0; keep && j < *n; j++)
                keep = strcmp((*out)[j].key, k.key) != 0;
            if (!keep) {
                free(k.key);
                free(k.rule);
                free(k.shop);
                free(k.label);
                continue;
            }
            if (*n == cap) {
                cap = cap ? cap * 2 : 16;
                *out = xrealloc(*out, cap * sizeof(**out));
            }
            (*out)[(*n)++] = k;
        }
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    buf_release(&pat);
    if (*n)
        qsort(*out, *n, sizeof(**out), snap_key_cmp);
    return 0;
}

int cli_snapshots(int argc, char **argv, const char *config_path)
{
    const char *rule = NULL, *shop = NULL, *label = NULL, *agent = NULL;
    bool json = false;
    static const struct option opts[] = {
        {.name = "rule", .has_arg = required_argument, .val = 'r'},
        {.name = "shop", .has_arg = required_argument, .val = 's'},
        {.name = "period", .has_arg = required_argument, .val = 'p'},
        {.name = "agent", .has_arg = required_argument, .val = 'a'},
        {.name = "json", .has_arg = no_argument, .val = 'j'},
        {.name = "help", .has_arg = no_argument, .val = 'h'},
        {0},
    };
    optind = 1;
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'r':
            rule = optarg;
            break;
        case 's':
            shop = optarg;
            break;
        case 'p':
            label = optarg;
            break;
        case 'a':
            agent = optarg;
            break;
        case 'j':
            json = true;
            break;
        case 'h':
            snapshots_usage(stdout);
            return 0;
        default:
            snapshots_usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        snapshots_usage(stderr);
        return 2;
    }
    struct period p;
    if (label && period_from_label(label, &p) < 0) {
        fprintf(stderr, "csmetrics: invalid period label '%s'\n", label);
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
    struct snap_key *keys = NULL;
    size_t nkeys = 0, shown = 0;
    int status = 0;
    struct snap_table table = {0};
    if (snap_scan(rc, cfg.redis_key_prefix, rule, shop, label, &keys, &nkeys) < 0)
        status = 1;
    if (!json && status == 0) {
        const char *head[SNAP_COLS] = {"RULE",  "SHOP", "PERIOD",  "AGENT", "SCORE",
                                       "GRADE", "RANK", "PAYOUTS", "ALERTS"};
        for (int i = 0; i < SNAP_COLS; i++)
            table_add(&table, head[i]);
    }
    for (size_t i = 0; status == 0 && i < nkeys; i++) {
        char err[512];
        redisReply *r = rconn_command(rc, err, sizeof(err), "HGETALL %s", keys[i].key);
        if (!r || r->type != REDIS_REPLY_ARRAY) {
            fprintf(stderr, "csmetrics: cannot read '%s': %s\n", keys[i].key,
                    r ? "unexpected reply" : err);
            if (r)
                freeReplyObject(r);
            status = 1;
            break;
        }
        size_t nrows = 0;
        struct snap_row *rows = xcalloc(r->elements / 2 + 1, sizeof(*rows));
        for (size_t j = 0; j + 1 < r->elements; j += 2) {
            if (agent && strcmp(r->element[j]->str, agent) != 0)
                continue;
            rows[nrows++] =
                (struct snap_row){.agent = r->element[j]->str, .json = r->element[j + 1]->str};
        }
        qsort(rows, nrows, sizeof(*rows), snap_row_cmp);
        for (size_t j = 0; j < nrows; j++) {
            if (json)
                puts(rows[j].json);
            else
                table_row(&table, &keys[i], rows[j].agent, rows[j].json);
            shown++;
        }
        free(rows);
        freeReplyObject(r);
    }
    if (status == 0 && shown == 0) {
        struct buf b;
        buf_init(&b);
        buf_adds(&b, "no final snapshots");
        if (rule)
            buf_printf(&b, " of rule '%s'", rule);
        if (shop)
            buf_printf(&b, " for shop '%s'", shop);
        if (agent)
            buf_printf(&b, " for agent '%s'", agent);
        if (label)
            buf_printf(&b, " in period %s", label);
        fprintf(stderr, "csmetrics: %s\n", b.data);
        buf_release(&b);
        status = 1;
    } else if (status == 0 && !json) {
        table_print(&table);
    }
    for (size_t i = 0; i < table.n; i++)
        free(table.cells[i]);
    free(table.cells);
    for (size_t i = 0; i < nkeys; i++) {
        free(keys[i].key);
        free(keys[i].rule);
        free(keys[i].shop);
        free(keys[i].label);
    }
    free(keys);
    rconn_destroy(rc);
    config_release(&cfg);
    return status;
}
