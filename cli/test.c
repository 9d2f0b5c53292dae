/* test — `csmetrics test FILE...`: unit tests for rule files, like `promtool test rules`.
 * A test gives one shop's figures for one period (raw figures per agent, or events run
 * through the real aggregation engine into an in-memory store, cli/memstore.h), the
 * previous period's snapshots, and the snapshots it expects; the runner evaluates with
 * eval_run exactly as csmetricsd closes a period (final) and prints a diff per mismatch
 * as "file:line:column: test 'NAME': agent A field: expected X, got Y". The format is
 * documented in test_usage() and atop each shipped test file (rules/examples). */
#include "aggregator/keys.h"
#include "cli/cli.h"
#include "cli/memstore.h"
#include "common/buf.h"
#include "config/config.h"
#include "consumers/decode.h"
#include "daemon/version.h"
#include "rules/eval.h"
#include "rules/prev.h"
#include "rules/rule.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>
#include <yaml.h>

#define COUNT_OF(a) (sizeof(a) / sizeof((a)[0]))
#define TEST_FILE_MAX (16 * 1024 * 1024)
#define TEST_PREFIX "csm:" /* key prefix inside the in-memory store */

static void test_usage(FILE *out)
{
    fprintf(
        out,
        "usage: csmetrics test [--show | --json] FILE...\n"
        "  Runs rule unit tests (like promtool test rules): each test evaluates rule files over\n"
        "  one shop's figures for one period, as csmetricsd does when the period closes, and\n"
        "  compares the snapshots with what the test expects. Prints a diff line per mismatch,\n"
        "  \"file:line:column: test 'NAME': agent A FIELD: expected X, got Y\", then\n"
        "  \"N passed, N failed\"; exits 0 when every test passed, 1 otherwise.\n"
        "  --show prints every evaluated snapshot (a help when writing expectations);\n"
        "  --json prints each snapshot record, one JSON object a line, as csmetricsd writes it.\n"
        "\n"
        "Test file (YAML):\n"
        "  rule_files: [plan2.yaml]        # paths relative to the test file\n"
        "  timezone: Asia/Shanghai         # zone of the periods; default UTC\n"
        "  shop: demo                      # default shop of the tests; default \"default\"\n"
        "  lateness: 10m                   # events only: the reorder window of conversations\n"
        "  attribution_window: 72h         # events only: for orders without agent_id\n"
        "  tests:\n"
        "    - name: august                # unique in the file\n"
        "      period: 2026-08             # a label of the rules' period kind\n"
        "      shop: demo                  # optional\n"
        "      kpis:                       # EITHER raw figures per agent (struct kpi_figures):\n"
        "        x1: {inquiries: 40, replied: 38, waits: 60, wait_sum_ms: 1500000,\n"
        "             ordered: 20, paid_customers: 18, sales_cents: 540000, target_cents: 600000,\n"
        "             reviews: {execution.manager: 0.8, follow_up.self: 0.9}}\n"
        "      team: {...}                 # optional shop figures; default: the agents' sums\n"
        "      events:                     # OR events (events.md) run through the aggregation\n"
        "        - {event_id: e1, type: message, ts: \"2026-08-03T10:00:00+08:00\", shop_id: "
        "demo,\n"
        "           conversation_id: c1, agent_id: x1, customer_id: u1, direction: in}\n"
        "        - '{\"event_id\": \"e2\", ...}'  # a JSON text is taken as is\n"
        "      previous:                   # optional: the previous period's final snapshots\n"
        "        x1: {score: 65, grade: junior, rank: 3, rank_bottom: 8, team_size: 10,\n"
        "             metrics: {sales: 5400}, points: {aov: 3}, streaks: {StillBelow70: 1}}\n"
        "      previous_test: july         # optional: an earlier test of the previous period\n"
        "      expect:\n"
        "        plan2-weighted-kpi-levels:  # a rule name\n"
        "          team_size: 10\n"
        "          agents:\n"
        "            x1: {eligible: true, score: 95.5, grade: senior, rank: 1, rank_bottom: 10,\n"
        "                 points: {aov: 5}, payouts: {rank1_bonus: 100, penalty: null},\n"
        "                 alerts: [ScoreBelow70], metrics: {reply_rate: 0.95}, team_size: 10}\n"
        "\n"
        "Figures: inquiries replied waits wait_sum_ms first_waits first_wait_sum_ms\n"
        "  unanswered_waits wait_p90_ms ordered inquired_and_ordered paid_customers orders\n"
        "  paid_orders refunded_orders cancelled_orders flagged_orders order_amount_cents\n"
        "  sales_cents refund_amount_cents complaints target_cents absent_days (integers), or\n"
        "  in yuan: order_amount sales refund_amount target; reviews: {ITEM.ROLE: 0..1}.\n"
        "  Absent figures are 0, but wait_p90_ms and target_cents (none) and\n"
        "  inquired_and_ordered (min(inquiries, ordered): every buyer had asked). The default\n"
        "  team sums the agents' counts (a customer of two agents counts twice) and targets,\n"
        "  with no p90, absences or reviews.\n"
        "Events: an event's topic follows from its type (or `topic: chat|orders|reviews`);\n"
        "  id, label and date fields are strings whatever they look like. Duplicate event_ids\n"
        "  count once; nothing is late; every order is attributed after the last event.\n"
        "Expectations: any subset of the fields; points, payouts and metrics are checked for\n"
        "  the names given (null: undefined, or not paid), alerts as the exact set firing.\n"
        "  Numbers match within 1e-9 relative. eligible: false expects no snapshot.\n"
        "  previous: a listed agent counts as scored in the previous period; streaks are the\n"
        "  consecutive closed periods an alert's or payout's condition held, up to then.\n");
}

/* ---- small output helpers ---- */

static void fmt_num(double v, char *buf, size_t n)
{
    if (!isfinite(v))
        snprintf(buf, n, "null");
    else
        kpi_format_double(v, buf, n);
}

static bool num_equal(double a, double b)
{
    if (a == b)
        return true;
    return fabs(a - b) <= 1e-9 * fmax(fabs(a), fabs(b));
}

/* ---- the loaded file ---- */

struct tprev { /* one agent's previous period, for eval_prev */
    char *agent;
    struct prev_values v;
    int *streaks; /* NULL: none */
};

struct tagent { /* one agent's result of one rule */
    char *agent;
    bool eligible, scored;
    char *json;   /* NULL when not eligible */
    int *streaks; /* [nalerts + npayouts] when scored */
};

struct trule_result {
    const struct rule *rule;
    bool evaluated; /* false: the shop had no figures */
    int team_size;
    struct tagent *agents;
    size_t n;
};

struct ttest {
    char *name;
    const yaml_node_t *node;
    struct period period;
    char *shop;
    bool ran;
    struct trule_result *res; /* one per rule of the file */
};

struct tfile {
    const char *path;
    char *text;
    size_t len;
    yaml_document_t doc;
    bool doc_ok;
    struct rule **rules;
    size_t nrules;
    char *shop;
    int64_t lateness_ms, window_ms;
    struct ttest *tests;
    size_t ntests;
    bool show, json;
    size_t failures; /* of the test being run */
};

__attribute__((format(printf, 3, 4))) static int t_fail(struct tfile *f, yaml_mark_t m,
                                                        const char *fmt, ...)
{
    va_list ap;
    printf("%s:%zu:%zu: ", f->path, m.line + 1, m.column + 1);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    return -1;
}

/* A mismatch of the running test at the expectation's node. */
__attribute__((format(printf, 4, 5))) static void
t_diff(struct tfile *f, const struct ttest *t, const yaml_node_t *at, const char *fmt, ...)
{
    va_list ap;
    printf("%s:%zu:%zu: test '%s': ", f->path, at->start_mark.line + 1, at->start_mark.column + 1,
           t->name);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    f->failures++;
}

/* ---- YAML access ---- */

static yaml_node_t *y_node(struct tfile *f, int i)
{
    return yaml_document_get_node(&f->doc, i);
}

static const char *y_str(const yaml_node_t *n)
{
    return (const char *)n->data.scalar.value;
}

static bool y_plain(const yaml_node_t *n)
{
    return n->type == YAML_SCALAR_NODE && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
}

static bool y_null(const yaml_node_t *n)
{
    if (!y_plain(n))
        return false;
    const char *s = y_str(n);
    return !*s || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 || strcmp(s, "Null") == 0 ||
           strcmp(s, "NULL") == 0;
}

/* The value of key in mapping map, NULL when absent. */
static yaml_node_t *y_get(struct tfile *f, const yaml_node_t *map, const char *key)
{
    if (!map || map->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = y_node(f, p->key);
        if (k && k->type == YAML_SCALAR_NODE && strcmp(y_str(k), key) == 0)
            return y_node(f, p->value);
    }
    return NULL;
}

/* Every key of map is a scalar, listed in keys, and given once. */
static int y_keys(struct tfile *f, const yaml_node_t *map, const char *what,
                  const char *const *keys, size_t nkeys)
{
    if (map->type != YAML_MAPPING_NODE)
        return t_fail(f, map->start_mark, "%s must be a mapping", what);
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = y_node(f, p->key);
        if (k->type != YAML_SCALAR_NODE)
            return t_fail(f, k->start_mark, "%s: keys must be scalars", what);
        bool known = nkeys == 0;
        for (size_t i = 0; i < nkeys; i++)
            known |= strcmp(keys[i], y_str(k)) == 0;
        if (!known) {
            struct buf b;
            buf_init(&b);
            for (size_t i = 0; i < nkeys; i++)
                buf_printf(&b, "%s%s", i ? ", " : "", keys[i]);
            t_fail(f, k->start_mark, "unknown key '%s' in %s (valid: %s)", y_str(k), what, b.data);
            buf_release(&b);
            return -1;
        }
        for (yaml_node_pair_t *q = map->data.mapping.pairs.start; q < p; q++)
            if (strcmp(y_str(y_node(f, q->key)), y_str(k)) == 0)
                return t_fail(f, k->start_mark, "duplicate key '%s' in %s", y_str(k), what);
    }
    return 0;
}

static int y_string(struct tfile *f, const yaml_node_t *n, const char *what, const char **out)
{
    if (n->type != YAML_SCALAR_NODE || y_null(n))
        return t_fail(f, n->start_mark, "%s must be a string", what);
    *out = y_str(n);
    return 0;
}

/* A number: YAML plain scalar in decimal notation. */
static int y_number(struct tfile *f, const yaml_node_t *n, const char *what, double *out)
{
    const char *s = n->type == YAML_SCALAR_NODE ? y_str(n) : "";
    char *end;
    if (!y_plain(n) || !*s || isspace((unsigned char)*s))
        return t_fail(f, n->start_mark, "%s must be a number", what);
    errno = 0;
    double v = strtod(s, &end);
    if (*end || errno || !isfinite(v) || strpbrk(s, "xXnN"))
        return t_fail(f, n->start_mark, "%s must be a number", what);
    *out = v;
    return 0;
}

static int y_int(struct tfile *f, const yaml_node_t *n, const char *what, int64_t *out)
{
    const char *s = n->type == YAML_SCALAR_NODE ? y_str(n) : "";
    const char *p = *s == '-' ? s + 1 : s;
    char *end;
    if (!y_plain(n) || !isdigit((unsigned char)*p))
        return t_fail(f, n->start_mark, "%s must be an integer", what);
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*end || errno)
        return t_fail(f, n->start_mark, "%s must be an integer", what);
    *out = v;
    return 0;
}

static int y_bool(struct tfile *f, const yaml_node_t *n, const char *what, bool *out)
{
    if (y_plain(n) && strcmp(y_str(n), "true") == 0)
        *out = true;
    else if (y_plain(n) && strcmp(y_str(n), "false") == 0)
        *out = false;
    else
        return t_fail(f, n->start_mark, "%s must be true or false", what);
    return 0;
}

/* ---- loading the file ---- */

static char *read_all(const char *path, size_t *len, char *err, size_t errlen)
{
    FILE *fp = fopen(path, "rb");
    struct buf b;
    char chunk[65536];
    size_t n;
    if (!fp) {
        snprintf(err, errlen, "cannot open '%s': %s", path, strerror(errno));
        return NULL;
    }
    buf_init(&b);
    buf_adds(&b, "");
    while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0) {
        buf_add(&b, chunk, n);
        if (b.len > TEST_FILE_MAX) {
            snprintf(err, errlen, "cannot read '%s': larger than %d bytes", path, TEST_FILE_MAX);
            fclose(fp);
            buf_release(&b);
            return NULL;
        }
    }
    if (ferror(fp)) {
        snprintf(err, errlen, "cannot read '%s': %s", path, strerror(errno));
        fclose(fp);
        buf_release(&b);
        return NULL;
    }
    fclose(fp);
    *len = b.len;
    return b.data;
}

static void tprev_release(struct tprev *p)
{
    prev_values_release(&p->v);
    free(p->streaks);
    free(p->agent);
    *p = (struct tprev){0};
}

static void tfile_release(struct tfile *f)
{
    for (size_t i = 0; i < f->ntests; i++) {
        struct ttest *t = &f->tests[i];
        for (size_t r = 0; t->res && r < f->nrules; r++) {
            for (size_t a = 0; a < t->res[r].n; a++) {
                free(t->res[r].agents[a].agent);
                free(t->res[r].agents[a].json);
                free(t->res[r].agents[a].streaks);
            }
            free(t->res[r].agents);
        }
        free(t->res);
        free(t->name);
        free(t->shop);
    }
    free(f->tests);
    for (size_t i = 0; i < f->nrules; i++)
        rule_destroy(f->rules[i]);
    free(f->rules);
    free(f->shop);
    if (f->doc_ok)
        yaml_document_delete(&f->doc);
    free(f->text);
}

static int load_rule_files(struct tfile *f, const yaml_node_t *list)
{
    if (list->type != YAML_SEQUENCE_NODE ||
        list->data.sequence.items.top == list->data.sequence.items.start)
        return t_fail(f, list->start_mark, "rule_files must be a list of paths");
    size_t n = (size_t)(list->data.sequence.items.top - list->data.sequence.items.start);
    f->rules = xcalloc(n, sizeof(*f->rules));
    const char *slash = strrchr(f->path, '/');
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *item = y_node(f, list->data.sequence.items.start[i]);
        const char *rel;
        if (y_string(f, item, "a rule file", &rel) < 0)
            return -1;
        struct buf path;
        char err[1024];
        buf_init(&path);
        if (rel[0] != '/' && slash)
            buf_add(&path, f->path, (size_t)(slash - f->path) + 1);
        buf_adds(&path, rel);
        struct rule *r = rule_load_file(path.data, err, sizeof(err));
        buf_release(&path);
        if (!r) {
            t_fail(f, item->start_mark, "cannot load rule file '%s'", rel);
            printf("%s\n", err);
            return -1;
        }
        for (size_t k = 0; k < f->nrules; k++)
            if (strcmp(f->rules[k]->name, r->name) == 0) {
                t_fail(f, item->start_mark, "rule name '%s' already used by %s", r->name,
                       f->rules[k]->path);
                rule_destroy(r);
                return -1;
            }
        f->rules[f->nrules++] = r;
    }
    return 0;
}

static int get_duration(struct tfile *f, const yaml_node_t *n, const char *what, int64_t *ms)
{
    if (n->type != YAML_SCALAR_NODE || config_parse_duration(y_str(n), ms) < 0 || *ms < 0)
        return t_fail(f, n->start_mark, "%s must be a duration such as 10m or 72h", what);
    return 0;
}

/* Parses the file and its top level; the tests are read as they run. */
static int tfile_load(struct tfile *f)
{
    char err[1024];
    yaml_parser_t parser;
    f->text = read_all(f->path, &f->len, err, sizeof(err));
    if (!f->text) {
        printf("%s\n", err);
        return -1;
    }
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_string(&parser, (const unsigned char *)f->text, f->len);
    if (!yaml_parser_load(&parser, &f->doc)) {
        yaml_mark_t m = parser.problem_mark;
        t_fail(f, m, "%s", parser.problem ? parser.problem : "cannot parse YAML");
        yaml_parser_delete(&parser);
        return -1;
    }
    f->doc_ok = true;
    yaml_document_t extra;
    if (yaml_parser_load(&parser, &extra)) {
        bool more = yaml_document_get_root_node(&extra) != NULL;
        yaml_mark_t m = extra.start_mark;
        yaml_document_delete(&extra);
        if (more) {
            yaml_parser_delete(&parser);
            return t_fail(f, m, "a test file holds one YAML document");
        }
    }
    yaml_parser_delete(&parser);
    yaml_node_t *root = yaml_document_get_root_node(&f->doc);
    if (!root)
        return t_fail(f, (yaml_mark_t){0}, "empty test file");
    static const char *const keys[] = {"rule_files", "timezone",           "shop",
                                       "lateness",   "attribution_window", "tests"};
    if (y_keys(f, root, "the test file", keys, COUNT_OF(keys)) < 0)
        return -1;
    yaml_node_t *n;
    if (!(n = y_get(f, root, "rule_files")))
        return t_fail(f, root->start_mark, "missing 'rule_files'");
    if (load_rule_files(f, n) < 0)
        return -1;
    const char *tz = "UTC";
    if ((n = y_get(f, root, "timezone")) && y_string(f, n, "timezone", &tz) < 0)
        return -1;
    if (period_tz_set(tz, err, sizeof(err)) < 0)
        return t_fail(f, n ? n->start_mark : root->start_mark, "%s", err);
    const char *shop = "default";
    if ((n = y_get(f, root, "shop")) && y_string(f, n, "shop", &shop) < 0)
        return -1;
    f->shop = xstrdup(shop);
    f->lateness_ms = 10 * 60 * 1000;
    f->window_ms = 72LL * 3600 * 1000;
    if ((n = y_get(f, root, "lateness")) && get_duration(f, n, "lateness", &f->lateness_ms) < 0)
        return -1;
    if ((n = y_get(f, root, "attribution_window")) &&
        get_duration(f, n, "attribution_window", &f->window_ms) < 0)
        return -1;
    yaml_node_t *tests = y_get(f, root, "tests");
    if (!tests || tests->type != YAML_SEQUENCE_NODE ||
        tests->data.sequence.items.top == tests->data.sequence.items.start)
        return t_fail(f, tests ? tests->start_mark : root->start_mark,
                      "'tests' must be a list of tests");
    f->ntests = (size_t)(tests->data.sequence.items.top - tests->data.sequence.items.start);
    f->tests = xcalloc(f->ntests, sizeof(*f->tests));
    for (size_t i = 0; i < f->ntests; i++) {
        struct ttest *t = &f->tests[i];
        t->node = y_node(f, tests->data.sequence.items.start[i]);
        yaml_node_t *name = y_get(f, t->node, "name");
        const char *s;
        if (t->node->type != YAML_MAPPING_NODE)
            return t_fail(f, t->node->start_mark, "a test must be a mapping");
        if (!name)
            return t_fail(f, t->node->start_mark, "a test needs a 'name'");
        if (y_string(f, name, "name", &s) < 0)
            return -1;
        for (size_t k = 0; k < i; k++)
            if (strcmp(f->tests[k].name, s) == 0)
                return t_fail(f, name->start_mark, "test name '%s' used twice", s);
        t->name = xstrdup(s);
    }
    return 0;
}

/* ---- figures ---- */

enum fig_kind { FIG_INT, FIG_YUAN };

static const struct {
    const char *name;
    size_t off;
    enum fig_kind kind;
} fig_fields[] = {
    {.name = "inquiries", .off = offsetof(struct kpi_figures, inquiries)},
    {.name = "replied", .off = offsetof(struct kpi_figures, replied)},
    {.name = "waits", .off = offsetof(struct kpi_figures, waits)},
    {.name = "wait_sum_ms", .off = offsetof(struct kpi_figures, wait_sum_ms)},
    {.name = "first_waits", .off = offsetof(struct kpi_figures, first_waits)},
    {.name = "first_wait_sum_ms", .off = offsetof(struct kpi_figures, first_wait_sum_ms)},
    {.name = "unanswered_waits", .off = offsetof(struct kpi_figures, unanswered_waits)},
    {.name = "wait_p90_ms", .off = offsetof(struct kpi_figures, wait_p90_ms)},
    {.name = "ordered", .off = offsetof(struct kpi_figures, ordered)},
    {.name = "inquired_and_ordered", .off = offsetof(struct kpi_figures, inquired_and_ordered)},
    {.name = "paid_customers", .off = offsetof(struct kpi_figures, paid_customers)},
    {.name = "orders", .off = offsetof(struct kpi_figures, orders)},
    {.name = "paid_orders", .off = offsetof(struct kpi_figures, paid_orders)},
    {.name = "refunded_orders", .off = offsetof(struct kpi_figures, refunded_orders)},
    {.name = "cancelled_orders", .off = offsetof(struct kpi_figures, cancelled_orders)},
    {.name = "flagged_orders", .off = offsetof(struct kpi_figures, flagged_orders)},
    {.name = "order_amount_cents", .off = offsetof(struct kpi_figures, order_amount_cents)},
    {.name = "sales_cents", .off = offsetof(struct kpi_figures, sales_cents)},
    {.name = "refund_amount_cents", .off = offsetof(struct kpi_figures, refund_amount_cents)},
    {.name = "complaints", .off = offsetof(struct kpi_figures, complaints)},
    {.name = "target_cents", .off = offsetof(struct kpi_figures, target_cents)},
    {.name = "absent_days", .off = offsetof(struct kpi_figures, absent_days)},
    {.name = "order_amount",
     .off = offsetof(struct kpi_figures, order_amount_cents),
     .kind = FIG_YUAN},
    {.name = "sales", .off = offsetof(struct kpi_figures, sales_cents), .kind = FIG_YUAN},
    {.name = "refund_amount",
     .off = offsetof(struct kpi_figures, refund_amount_cents),
     .kind = FIG_YUAN},
    {.name = "target", .off = offsetof(struct kpi_figures, target_cents), .kind = FIG_YUAN},
};

static int64_t *fig_at(struct kpi_figures *fig, size_t off)
{
    return (int64_t *)((char *)fig + off);
}

static int parse_reviews(struct tfile *f, const yaml_node_t *map, struct kpi_figures *fig)
{
    if (y_keys(f, map, "reviews", NULL, 0) < 0)
        return -1;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = y_node(f, p->key), *v = y_node(f, p->value);
        const char *name = y_str(k), *dot = strrchr(name, '.');
        int role = -1;
        for (int r = 0; dot && r < ROLE_COUNT; r++)
            if (strcmp(dot + 1, review_role_name((enum review_role)r)) == 0)
                role = r;
        size_t ilen = dot ? (size_t)(dot - name) : 0;
        if (role < 0 || ilen == 0 || ilen >= sizeof(fig->reviews[0].item))
            return t_fail(f, k->start_mark,
                          "review '%s' must be ITEM.ROLE (role self, manager or indirect_manager)",
                          name);
        if (fig->reviews_n >= KPI_REVIEW_MAX)
            return t_fail(f, k->start_mark, "more than %d reviews", KPI_REVIEW_MAX);
        double val;
        if (y_number(f, v, "a review score", &val) < 0)
            return -1;
        struct kpi_review *kr = &fig->reviews[fig->reviews_n++];
        memcpy(kr->item, name, ilen);
        kr->item[ilen] = '\0';
        kr->role = (enum review_role)role;
        kr->value = val;
    }
    return 0;
}

/* Raw figures from a mapping (see test_usage for the defaults). */
static int parse_figures(struct tfile *f, const yaml_node_t *map, const char *who,
                         struct kpi_figures *fig)
{
    bool given[COUNT_OF(fig_fields)] = {false};
    *fig = (struct kpi_figures){.wait_p90_ms = -1, .target_cents = -1};
    if (map->type != YAML_MAPPING_NODE)
        return t_fail(f, map->start_mark, "the figures of %s must be a mapping", who);
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = y_node(f, p->key), *v = y_node(f, p->value);
        if (k->type != YAML_SCALAR_NODE)
            return t_fail(f, k->start_mark, "figure names must be scalars");
        if (strcmp(y_str(k), "reviews") == 0) {
            if (parse_reviews(f, v, fig) < 0)
                return -1;
            continue;
        }
        size_t i;
        for (i = 0; i < COUNT_OF(fig_fields); i++)
            if (strcmp(fig_fields[i].name, y_str(k)) == 0)
                break;
        if (i == COUNT_OF(fig_fields))
            return t_fail(f, k->start_mark,
                          "unknown figure '%s' (see 'csmetrics test --help' for the names)",
                          y_str(k));
        for (size_t j = 0; j < COUNT_OF(fig_fields); j++)
            if (given[j] && fig_fields[j].off == fig_fields[i].off)
                return t_fail(f, k->start_mark, "'%s' given twice (as '%s')", y_str(k),
                              fig_fields[j].name);
        given[i] = true;
        int64_t val;
        if (fig_fields[i].kind == FIG_YUAN) {
            const char *s = v->type == YAML_SCALAR_NODE ? y_str(v) : "";
            if (decode_amount_cents(s, strlen(s), &val) < 0)
                return t_fail(f, v->start_mark,
                              "'%s' must be an amount in yuan with at most two decimals", y_str(k));
        } else if (y_int(f, v, y_str(k), &val) < 0) {
            return -1;
        }
        *fig_at(fig, fig_fields[i].off) = val;
    }
    bool io_given = false;
    for (size_t j = 0; j < COUNT_OF(fig_fields); j++)
        io_given |= given[j] && strcmp(fig_fields[j].name, "inquired_and_ordered") == 0;
    if (!io_given)
        fig->inquired_and_ordered = fig->inquiries < fig->ordered ? fig->inquiries : fig->ordered;
    return 0;
}

/* The default team: sums of the agents' counts and amounts, the sum of their targets. */
static void team_sum(const struct kpi_figures *a, size_t n, struct kpi_figures *team)
{
    *team = (struct kpi_figures){.wait_p90_ms = -1, .target_cents = -1};
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < COUNT_OF(fig_fields); k++) {
            size_t off = fig_fields[k].off;
            if (fig_fields[k].kind != FIG_INT || off == offsetof(struct kpi_figures, wait_p90_ms) ||
                off == offsetof(struct kpi_figures, target_cents) ||
                off == offsetof(struct kpi_figures, absent_days))
                continue;
            *fig_at(team, off) += *fig_at((struct kpi_figures *)&a[i], off);
        }
        if (a[i].target_cents >= 0)
            team->target_cents =
                (team->target_cents < 0 ? 0 : team->target_cents) + a[i].target_cents;
    }
}

/* ---- events ---- */

/* Fields events.md types as strings: written as JSON strings whatever the scalar looks like. */
static bool event_string_field(const char *k)
{
    static const char *const names[] = {
        "event_id",  "type",        "shop_id",     "conversation_id",
        "agent_id",  "to_agent_id", "customer_id", "order_id",
        "direction", "period",      "item",        "role",
        "reviewer",  "reason",      "from",        "to"};
    for (size_t i = 0; i < COUNT_OF(names); i++)
        if (strcmp(k, names[i]) == 0)
            return true;
    return false;
}

/* JSON's number syntax. */
static bool json_number(const char *s)
{
    const char *p = s;
    if (*p == '-')
        p++;
    if (*p == '0')
        p++;
    else if (isdigit((unsigned char)*p))
        while (isdigit((unsigned char)*p))
            p++;
    else
        return false;
    if (*p == '.') {
        p++;
        if (!isdigit((unsigned char)*p))
            return false;
        while (isdigit((unsigned char)*p))
            p++;
    }
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-')
            p++;
        if (!isdigit((unsigned char)*p))
            return false;
        while (isdigit((unsigned char)*p))
            p++;
    }
    return *p == '\0';
}

static void to_json(struct tfile *f, yajl_gen g, const yaml_node_t *n, bool as_string, bool top)
{
    switch (n->type) {
    case YAML_SCALAR_NODE: {
        const char *s = y_str(n);
        size_t len = n->data.scalar.length;
        if (!as_string && y_plain(n)) {
            if (y_null(n)) {
                yajl_gen_null(g);
                return;
            }
            if (strcmp(s, "true") == 0 || strcmp(s, "false") == 0) {
                yajl_gen_bool(g, s[0] == 't');
                return;
            }
            if (json_number(s)) {
                yajl_gen_number(g, s, len);
                return;
            }
        }
        yajl_gen_string(g, (const unsigned char *)s, len);
        return;
    }
    case YAML_SEQUENCE_NODE:
        yajl_gen_array_open(g);
        for (yaml_node_item_t *i = n->data.sequence.items.start; i < n->data.sequence.items.top;
             i++)
            to_json(f, g, y_node(f, *i), false, false);
        yajl_gen_array_close(g);
        return;
    case YAML_MAPPING_NODE:
        yajl_gen_map_open(g);
        for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top;
             p++) {
            yaml_node_t *k = y_node(f, p->key);
            const char *ks = k->type == YAML_SCALAR_NODE ? y_str(k) : "";
            if (top && strcmp(ks, "topic") == 0)
                continue;
            yajl_gen_string(g, (const unsigned char *)ks, strlen(ks));
            to_json(f, g, y_node(f, p->value), top && event_string_field(ks), false);
        }
        yajl_gen_map_close(g);
        return;
    default:
        yajl_gen_null(g);
        return;
    }
}

static int topic_of_type(const char *type, enum event_topic *t)
{
    static const struct {
        const char *type;
        enum event_topic topic;
    } map[] = {
        {.type = "message", .topic = TOPIC_CHAT},     {.type = "transfer", .topic = TOPIC_CHAT},
        {.type = "complaint", .topic = TOPIC_CHAT},   {.type = "created", .topic = TOPIC_ORDERS},
        {.type = "paid", .topic = TOPIC_ORDERS},      {.type = "refunded", .topic = TOPIC_ORDERS},
        {.type = "cancelled", .topic = TOPIC_ORDERS}, {.type = "flagged", .topic = TOPIC_ORDERS},
        {.type = "review", .topic = TOPIC_REVIEWS},   {.type = "target", .topic = TOPIC_REVIEWS},
        {.type = "absence", .topic = TOPIC_REVIEWS},
    };
    for (size_t i = 0; i < COUNT_OF(map); i++)
        if (type && strcmp(type, map[i].type) == 0) {
            *t = map[i].topic;
            return 0;
        }
    return -1;
}

static int topic_parse(const char *s, enum event_topic *t)
{
    for (int i = 0; i < TOPIC_INPUT_COUNT; i++)
        if (strcmp(s, event_topic_name((enum event_topic)i)) == 0) {
            *t = (enum event_topic)i;
            return 0;
        }
    return -1;
}

/* Feeds the test's events into m. */
static int feed_events(struct tfile *f, const yaml_node_t *list, struct memstore *m,
                       enum period_kind kind)
{
    if (list->type != YAML_SEQUENCE_NODE)
        return t_fail(f, list->start_mark, "events must be a list");
    struct agg_conf conf = {
        .prefix = TEST_PREFIX,
        .lateness_ms = f->lateness_ms,
        .attribution_window_ms = f->window_ms,
        .orphan_ms = 48LL * 3600 * 1000,
    };
    conf.kinds[kind] = true;
    for (size_t r = 0; r < f->nrules; r++)
        conf.kinds[f->rules[r]->period] = true;
    struct memstore_feed *feed = memstore_feed_new(m, &conf);
    int rc = 0;
    for (yaml_node_item_t *i = list->data.sequence.items.start;
         rc == 0 && i < list->data.sequence.items.top; i++) {
        yaml_node_t *ev = y_node(f, *i);
        enum event_topic topic = TOPIC_CHAT;
        char err[512];
        struct buf json;
        buf_init(&json);
        const char *type = NULL;
        yaml_node_t *tn = NULL;
        if (ev->type == YAML_SCALAR_NODE) {
            buf_adds(&json, y_str(ev));
            yajl_val v = yajl_tree_parse(json.data, err, sizeof(err));
            const char *path[] = {"type", NULL};
            yajl_val tv = v ? yajl_tree_get(v, path, yajl_t_string) : NULL;
            type = tv ? YAJL_GET_STRING(tv) : NULL;
            if (topic_of_type(type, &topic) < 0)
                rc = t_fail(f, ev->start_mark, "event: cannot tell its topic from 'type'");
            yajl_tree_free(v);
        } else if (ev->type == YAML_MAPPING_NODE) {
            yajl_gen g = yajl_gen_alloc(NULL);
            const unsigned char *out;
            size_t len;
            to_json(f, g, ev, false, true);
            yajl_gen_get_buf(g, &out, &len);
            buf_add(&json, out, len);
            yajl_gen_free(g);
            yaml_node_t *ty = y_get(f, ev, "type");
            type = ty && ty->type == YAML_SCALAR_NODE ? y_str(ty) : NULL;
            if ((tn = y_get(f, ev, "topic"))) {
                if (tn->type != YAML_SCALAR_NODE || topic_parse(y_str(tn), &topic) < 0)
                    rc = t_fail(f, tn->start_mark, "topic must be chat, orders or reviews");
            } else if (topic_of_type(type, &topic) < 0) {
                rc = t_fail(
                    f, ev->start_mark,
                    "event: cannot tell its topic from 'type' (add topic: chat|orders|reviews)");
            }
        } else {
            rc = t_fail(f, ev->start_mark, "an event is a mapping or a JSON text");
        }
        if (rc == 0 && memstore_feed_event(feed, topic, json.data, json.len, err, sizeof(err)) < 0)
            rc = t_fail(f, ev->start_mark, "bad event: %s", err);
        buf_release(&json);
    }
    if (rc == 0)
        memstore_feed_finish(feed);
    memstore_feed_destroy(feed);
    return rc;
}

/* ---- the previous period ---- */

/* What prev.* sees from a final snapshot's JSON: read exactly as csmetricsd reads it
 * back from Redis (rules/prev.c). */
static void tprev_from_json(struct tprev *p, const char *json)
{
    prev_values_parse(&p->v, json);
}

static struct tprev *tprev_find(struct tprev *ps, size_t n, const char *agent)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(ps[i].agent, agent) == 0)
            return &ps[i];
    return NULL;
}

/* One agent of `previous:`, for rule r: a snapshot written as YAML. The JSON it stands
 * for is built first and read back as the daemon reads a snapshot, so the two agree. */
static int tprev_from_yaml(struct tfile *f, const yaml_node_t *map, const struct rule *r,
                           struct tprev *p)
{
    static const char *const keys[] = {"score",     "grade",   "rank",   "rank_bottom",
                                       "team_size", "metrics", "points", "streaks"};
    if (y_keys(f, map, "a previous snapshot", keys, COUNT_OF(keys)) < 0)
        return -1;
    yajl_gen g = yajl_gen_alloc(NULL);
    yajl_gen_map_open(g);
    for (size_t k = 0; k < COUNT_OF(keys) - 1; k++) {
        yaml_node_t *v = y_get(f, map, keys[k]);
        if (!v)
            continue;
        yajl_gen_string(g, (const unsigned char *)keys[k], strlen(keys[k]));
        if (strcmp(keys[k], "grade") == 0) {
            const char *s;
            if (y_string(f, v, "grade", &s) < 0)
                goto fail;
            yajl_gen_string(g, (const unsigned char *)s, strlen(s));
        } else if (strcmp(keys[k], "metrics") == 0 || strcmp(keys[k], "points") == 0) {
            if (y_keys(f, v, keys[k], NULL, 0) < 0)
                goto fail;
            yajl_gen_map_open(g);
            for (yaml_node_pair_t *pp = v->data.mapping.pairs.start; pp < v->data.mapping.pairs.top;
                 pp++) {
                const char *name = y_str(y_node(f, pp->key));
                double d;
                if (y_number(f, y_node(f, pp->value), name, &d) < 0)
                    goto fail;
                yajl_gen_string(g, (const unsigned char *)name, strlen(name));
                yajl_gen_double(g, d);
            }
            yajl_gen_map_close(g);
        } else {
            double d;
            if (y_number(f, v, keys[k], &d) < 0)
                goto fail;
            yajl_gen_double(g, d);
        }
    }
    yajl_gen_map_close(g);
    const unsigned char *out;
    size_t len;
    yajl_gen_get_buf(g, &out, &len);
    char *json = xstrndup((const char *)out, len);
    yajl_gen_free(g);
    tprev_from_json(p, json);
    free(json);
    yaml_node_t *st = y_get(f, map, "streaks");
    if (st) {
        size_t n = r->nalerts + r->npayouts;
        if (y_keys(f, st, "streaks", NULL, 0) < 0)
            return -1;
        p->streaks = xcalloc(n + 1, sizeof(*p->streaks));
        for (yaml_node_pair_t *pp = st->data.mapping.pairs.start; pp < st->data.mapping.pairs.top;
             pp++) {
            yaml_node_t *k = y_node(f, pp->key);
            int64_t v;
            if (y_int(f, y_node(f, pp->value), "a streak", &v) < 0)
                return -1;
            if (v < 0 || v > INT_MAX)
                return t_fail(f, y_node(f, pp->value)->start_mark,
                              "a streak is a count of periods (0 or more)");
            /* a name of another rule of the file is skipped (check_streak_names knows it) */
            for (size_t a = 0; a < r->nalerts; a++)
                if (strcmp(r->alerts[a].name, y_str(k)) == 0)
                    p->streaks[a] = (int)v;
            for (size_t a = 0; a < r->npayouts; a++)
                if (strcmp(r->payouts[a].name, y_str(k)) == 0)
                    p->streaks[r->nalerts + a] = (int)v;
        }
    }
    return 0;
fail:
    yajl_gen_free(g);
    return -1;
}

/* Every streak name of `previous:` names an alert or payout of some rule of the file. */
static int check_streak_names(struct tfile *f, const yaml_node_t *prev)
{
    for (yaml_node_pair_t *p = prev->data.mapping.pairs.start; p < prev->data.mapping.pairs.top;
         p++) {
        yaml_node_t *st = y_get(f, y_node(f, p->value), "streaks");
        if (!st || st->type != YAML_MAPPING_NODE)
            continue;
        for (yaml_node_pair_t *q = st->data.mapping.pairs.start; q < st->data.mapping.pairs.top;
             q++) {
            yaml_node_t *k = y_node(f, q->key);
            bool found = false;
            for (size_t r = 0; r < f->nrules; r++) {
                for (size_t a = 0; a < f->rules[r]->nalerts; a++)
                    found |= strcmp(f->rules[r]->alerts[a].name, y_str(k)) == 0;
                for (size_t a = 0; a < f->rules[r]->npayouts; a++)
                    found |= strcmp(f->rules[r]->payouts[a].name, y_str(k)) == 0;
            }
            if (!found)
                return t_fail(f, k->start_mark, "streaks: no alert or payout is named '%s'",
                              y_str(k));
        }
    }
    return 0;
}

/* ---- running a test ---- */

struct tinput { /* the figures of one test */
    size_t n;
    char **agents; /* sorted by id, as the daemon reads them */
    struct kpi_figures *figs;
    struct kpi_figures team;
    bool has_team; /* false: the shop has no figures for the period */
};

static void tinput_release(struct tinput *in)
{
    for (size_t i = 0; i < in->n; i++)
        free(in->agents[i]);
    free(in->agents);
    free(in->figs);
    *in = (struct tinput){0};
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int input_from_kpis(struct tfile *f, const yaml_node_t *kpis, const yaml_node_t *team,
                           struct tinput *in)
{
    if (y_keys(f, kpis, "kpis", NULL, 0) < 0)
        return -1;
    size_t n = (size_t)(kpis->data.mapping.pairs.top - kpis->data.mapping.pairs.start);
    yaml_node_pair_t *pairs = kpis->data.mapping.pairs.start;
    in->agents = xcalloc(n + 1, sizeof(*in->agents));
    in->figs = xcalloc(n + 1, sizeof(*in->figs));
    for (size_t i = 0; i < n; i++)
        in->agents[i] = xstrdup(y_str(y_node(f, pairs[i].key)));
    qsort(in->agents, n, sizeof(*in->agents), str_cmp);
    in->n = n;
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *v = y_get(f, kpis, in->agents[i]);
        char who[300];
        snprintf(who, sizeof(who), "agent '%s'", in->agents[i]);
        if (parse_figures(f, v, who, &in->figs[i]) < 0)
            return -1;
    }
    if (team) {
        if (parse_figures(f, team, "the team", &in->team) < 0)
            return -1;
    } else {
        team_sum(in->figs, n, &in->team);
    }
    in->has_team = true;
    return 0;
}

/* The figures the daemon would read from Redis after the events: the team's, and each
 * agent's of the team's agent set that has figures for the period. */
static void input_from_store(const struct memstore *m, const char *shop, const struct period *p,
                             struct tinput *in)
{
    struct buf tag;
    buf_init(&tag);
    keys_owner_tag(&tag, TEST_PREFIX, KEYS_TEAM, shop, NULL);
    in->has_team = memstore_figures(m, tag.data, p, &in->team) == 0;
    buf_adds(&tag, ":agents");
    size_t n;
    const char **ids = memstore_smembers(m, tag.data, &n);
    in->agents = xcalloc(n + 1, sizeof(*in->agents));
    in->figs = xcalloc(n + 1, sizeof(*in->figs));
    for (size_t i = 0; i < n; i++) {
        buf_reset(&tag);
        keys_owner_tag(&tag, TEST_PREFIX, KEYS_AGENT, shop, ids[i]);
        if (memstore_figures(m, tag.data, p, &in->figs[in->n]) != 0)
            continue;
        in->agents[in->n++] = xstrdup(ids[i]);
    }
    free(ids);
    buf_release(&tag);
}

static struct ttest *find_test(struct tfile *f, const char *name)
{
    for (size_t i = 0; i < f->ntests; i++)
        if (strcmp(f->tests[i].name, name) == 0)
            return &f->tests[i];
    return NULL;
}

/* Evaluates rule index ri for the test and keeps what later tests and the checks need. */
static int evaluate(struct tfile *f, struct ttest *t, size_t ri, const struct tinput *in,
                    const yaml_node_t *prev, const struct ttest *pt)
{
    const struct rule *r = f->rules[ri];
    struct trule_result *res = &t->res[ri];
    res->rule = r;
    if (!in->has_team)
        return 0;
    struct tprev *ps = xcalloc(in->n + 1, sizeof(*ps));
    struct eval_agent *agents = xcalloc(in->n + 1, sizeof(*agents));
    int rc = -1;
    size_t np = in->n;
    for (size_t i = 0; i < in->n; i++)
        ps[i].agent = xstrdup(in->agents[i]);
    /* previous_test first, `previous:` entries override it agent by agent */
    if (pt) {
        const struct trule_result *pr = &pt->res[ri];
        for (size_t a = 0; a < pr->n; a++) {
            struct tprev *p = tprev_find(ps, np, pr->agents[a].agent);
            if (!p)
                continue;
            if (pr->agents[a].json)
                tprev_from_json(p, pr->agents[a].json);
            if (pr->agents[a].scored) {
                size_t ns = r->nalerts + r->npayouts;
                p->streaks = xcalloc(ns + 1, sizeof(*p->streaks));
                memcpy(p->streaks, pr->agents[a].streaks, ns * sizeof(*p->streaks));
            }
        }
    }
    if (prev) {
        for (yaml_node_pair_t *pp = prev->data.mapping.pairs.start;
             pp < prev->data.mapping.pairs.top; pp++) {
            const char *agent = y_str(y_node(f, pp->key));
            struct tprev *p = tprev_find(ps, np, agent);
            if (!p)
                continue; /* not an agent of this period: nothing to carry */
            char *keep = p->agent;
            p->agent = NULL;
            tprev_release(p);
            p->agent = keep;
            if (tprev_from_yaml(f, y_node(f, pp->value), r, p) < 0)
                goto out;
        }
    }
    for (size_t i = 0; i < in->n; i++) {
        agents[i] = (struct eval_agent){
            .agent_id = in->agents[i],
            .fig = in->figs[i],
            .prev = prev_values_view(&ps[i].v),
            .streaks = ps[i].streaks,
        };
    }
    struct eval_input ein = {.rule = r,
                             .shop_id = t->shop,
                             .period = t->period,
                             .final = true,
                             .version = CSM_VERSION,
                             .team = in->team,
                             .agents = agents,
                             .nagents = in->n};
    struct eval_output out;
    char err[512];
    if (eval_run(&ein, &out, err, sizeof(err)) < 0) {
        t_fail(f, t->node->start_mark, "test '%s': %s", t->name, err);
        goto out;
    }
    res->evaluated = true;
    res->team_size = out.team_size;
    res->n = out.n;
    res->agents = xcalloc(out.n + 1, sizeof(*res->agents));
    for (size_t i = 0; i < out.n; i++) {
        const struct eval_snapshot *s = &out.snaps[i];
        struct tagent *a = &res->agents[i];
        size_t ns = r->nalerts + r->npayouts;
        a->agent = xstrdup(s->agent_id);
        a->eligible = s->eligible;
        a->scored = s->scored;
        a->json = s->json ? xstrdup(s->json) : NULL;
        a->streaks = xcalloc(ns + 1, sizeof(*a->streaks));
        memcpy(a->streaks, s->streaks, ns * sizeof(*a->streaks));
    }
    eval_output_release(&out);
    rc = 0;
out:
    for (size_t i = 0; i < np; i++)
        tprev_release(&ps[i]);
    free(ps);
    free(agents);
    return rc;
}

/* ---- comparing ---- */

static yajl_val jget(yajl_val obj, const char *key)
{
    if (!YAJL_IS_OBJECT(obj))
        return NULL;
    for (size_t i = 0; i < obj->u.object.len; i++)
        if (strcmp(obj->u.object.keys[i], key) == 0)
            return obj->u.object.values[i];
    return NULL;
}

/* A JSON value as the message shows it. */
static void jfmt(yajl_val v, char *buf, size_t n)
{
    if (!v || YAJL_IS_NULL(v))
        snprintf(buf, n, "null");
    else if (YAJL_IS_NUMBER(v))
        fmt_num(YAJL_GET_DOUBLE(v), buf, n);
    else if (YAJL_IS_STRING(v))
        snprintf(buf, n, "'%s'", YAJL_GET_STRING(v));
    else if (YAJL_IS_TRUE(v))
        snprintf(buf, n, "true");
    else if (YAJL_IS_FALSE(v))
        snprintf(buf, n, "false");
    else
        snprintf(buf, n, "(a structure)");
}

/* Compares one expected scalar (number, string or null) with the snapshot's value. */
static void cmp_scalar(struct tfile *f, const struct ttest *t, const char *agent, const char *field,
                       const yaml_node_t *want, yajl_val got, const char *missing)
{
    char g[256], w[256];
    if (got)
        jfmt(got, g, sizeof(g));
    else
        snprintf(g, sizeof(g), "%s", missing);
    if (want->type != YAML_SCALAR_NODE) {
        t_diff(f, t, want, "agent %s %s: expected a number, a string or null", agent, field);
        return;
    }
    if (y_null(want)) {
        if (got && !YAJL_IS_NULL(got))
            t_diff(f, t, want, "agent %s %s: expected null, got %s", agent, field, g);
        return;
    }
    double d;
    char *end;
    const char *s = y_str(want);
    bool is_num = y_plain(want) && *s && (d = strtod(s, &end), *end == '\0') && isfinite(d) &&
                  !strpbrk(s, "xXnN");
    if (is_num) {
        fmt_num(d, w, sizeof(w));
        if (!got || !YAJL_IS_NUMBER(got) || !num_equal(d, YAJL_GET_DOUBLE(got)))
            t_diff(f, t, want, "agent %s %s: expected %s, got %s", agent, field, w, g);
        return;
    }
    const char *gs = got && YAJL_IS_STRING(got) ? YAJL_GET_STRING(got) : NULL;
    if (!gs || strcmp(gs, s) != 0)
        t_diff(f, t, want, "agent %s %s: expected '%s', got %s", agent, field, s, g);
}

/* points, payouts, metrics: the names given. */
static void cmp_map(struct tfile *f, const struct ttest *t, const char *agent, const char *what,
                    const yaml_node_t *want, yajl_val got, const char *missing)
{
    if (want->type != YAML_MAPPING_NODE) {
        t_diff(f, t, want, "agent %s %s: expected a mapping", agent, what);
        return;
    }
    for (yaml_node_pair_t *p = want->data.mapping.pairs.start; p < want->data.mapping.pairs.top;
         p++) {
        const char *name = y_str(y_node(f, p->key));
        char field[300];
        snprintf(field, sizeof(field), "%s.%s", what, name);
        cmp_scalar(f, t, agent, field, y_node(f, p->value), jget(got, name), missing);
    }
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* alerts: the exact set firing. */
static void cmp_alerts(struct tfile *f, const struct ttest *t, const char *agent,
                       const yaml_node_t *want, yajl_val got)
{
    if (want->type != YAML_SEQUENCE_NODE) {
        t_diff(f, t, want, "agent %s alerts: expected a list of alert names", agent);
        return;
    }
    size_t nw = (size_t)(want->data.sequence.items.top - want->data.sequence.items.start);
    size_t ng = YAJL_IS_ARRAY(got) ? got->u.array.len : 0;
    const char **w = xcalloc(nw + 1, sizeof(*w)), **g = xcalloc(ng + 1, sizeof(*g));
    for (size_t i = 0; i < nw; i++) {
        yaml_node_t *n = y_node(f, want->data.sequence.items.start[i]);
        w[i] = n->type == YAML_SCALAR_NODE ? y_str(n) : "";
    }
    for (size_t i = 0; i < ng; i++)
        g[i] =
            YAJL_IS_STRING(got->u.array.values[i]) ? YAJL_GET_STRING(got->u.array.values[i]) : "";
    qsort(w, nw, sizeof(*w), name_cmp);
    qsort(g, ng, sizeof(*g), name_cmp);
    bool same = nw == ng;
    for (size_t i = 0; same && i < nw; i++)
        same = strcmp(w[i], g[i]) == 0;
    if (!same) {
        struct buf bw, bg;
        buf_init(&bw);
        buf_init(&bg);
        buf_adds(&bw, "[");
        buf_adds(&bg, "[");
        for (size_t i = 0; i < nw; i++)
            buf_printf(&bw, "%s%s", i ? ", " : "", w[i]);
        for (size_t i = 0; i < ng; i++)
            buf_printf(&bg, "%s%s", i ? ", " : "", g[i]);
        buf_adds(&bw, "]");
        buf_adds(&bg, "]");
        t_diff(f, t, want, "agent %s alerts: expected %s, got %s", agent, bw.data, bg.data);
        buf_release(&bw);
        buf_release(&bg);
    }
    free(w);
    free(g);
}

static const struct tagent *find_agent(const struct trule_result *res, const char *agent)
{
    for (size_t i = 0; i < res->n; i++)
        if (strcmp(res->agents[i].agent, agent) == 0)
            return &res->agents[i];
    return NULL;
}

static void check_agent(struct tfile *f, const struct ttest *t, const struct trule_result *res,
                        const char *agent, const yaml_node_t *want)
{
    static const char *const keys[] = {"eligible",  "score",  "grade",   "rank",   "rank_bottom",
                                       "team_size", "points", "payouts", "alerts", "metrics"};
    if (y_keys(f, want, "an agent's expectation", keys, COUNT_OF(keys)) < 0) {
        f->failures++;
        return;
    }
    const struct tagent *a = find_agent(res, agent);
    yaml_node_t *el = y_get(f, want, "eligible");
    bool want_eligible = true;
    if (el && y_bool(f, el, "eligible", &want_eligible) < 0) {
        f->failures++;
        return;
    }
    if (!a) {
        /* not even evaluated: a typo in an agent id must not pass as "not eligible" */
        if (el && !want_eligible)
            t_diff(f, t, el, "agent %s eligible: expected false, got no figures for %s", agent,
                   t->period.label);
        else
            t_diff(f, t, want, "agent %s: expected a snapshot, got none (no figures for %s)", agent,
                   t->period.label);
        return;
    }
    if (el && want_eligible != a->eligible) {
        t_diff(f, t, el, "agent %s eligible: expected %s, got %s", agent,
               want_eligible ? "true" : "false", a->eligible ? "true" : "false");
        return;
    }
    if (!a->eligible) {
        if (want->data.mapping.pairs.top - want->data.mapping.pairs.start > (el ? 1 : 0))
            t_diff(f, t, want, "agent %s: expected a snapshot, got none (not eligible)", agent);
        return;
    }
    char err[128];
    yajl_val snap = yajl_tree_parse(a->json, err, sizeof(err));
    if (!snap) {
        t_diff(f, t, want, "agent %s: unreadable snapshot: %s", agent, err);
        return;
    }
    for (yaml_node_pair_t *p = want->data.mapping.pairs.start; p < want->data.mapping.pairs.top;
         p++) {
        const char *k = y_str(y_node(f, p->key));
        yaml_node_t *v = y_node(f, p->value);
        if (strcmp(k, "eligible") == 0)
            continue;
        if (strcmp(k, "points") == 0 || strcmp(k, "metrics") == 0)
            cmp_map(f, t, agent, k, v, jget(snap, k), "no such name");
        else if (strcmp(k, "payouts") == 0)
            cmp_map(f, t, agent, k, v, jget(snap, k), "not paid");
        else if (strcmp(k, "alerts") == 0)
            cmp_alerts(f, t, agent, v, jget(snap, k));
        else
            cmp_scalar(f, t, agent, k, v, jget(snap, k), "null");
    }
    yajl_tree_free(snap);
}

static void check_rule(struct tfile *f, const struct ttest *t, const struct trule_result *res,
                       const yaml_node_t *want)
{
    static const char *const keys[] = {"team_size", "agents"};
    if (y_keys(f, want, "a rule's expectation", keys, COUNT_OF(keys)) < 0) {
        f->failures++;
        return;
    }
    yaml_node_t *ts = y_get(f, want, "team_size"), *agents = y_get(f, want, "agents");
    if (!res->evaluated) {
        t_diff(f, t, want,
               "rule %s: expected an evaluation, got none (shop '%s' has no figures for %s)",
               res->rule->name, t->shop, t->period.label);
        return;
    }
    if (ts) {
        int64_t n;
        if (y_int(f, ts, "team_size", &n) < 0)
            f->failures++;
        else if (n != res->team_size)
            t_diff(f, t, ts, "team_size: expected %lld, got %d", (long long)n, res->team_size);
    }
    if (agents) {
        if (y_keys(f, agents, "agents", NULL, 0) < 0) {
            f->failures++;
            return;
        }
        for (yaml_node_pair_t *p = agents->data.mapping.pairs.start;
             p < agents->data.mapping.pairs.top; p++)
            check_agent(f, t, res, y_str(y_node(f, p->key)), y_node(f, p->value));
    }
}

/* --show: one line per agent and rule; --json: the snapshot records. */
static void show_results(const struct ttest *t, const struct trule_result *res, bool json)
{
    if (json) {
        for (size_t i = 0; i < res->n; i++)
            if (res->agents[i].json)
                puts(res->agents[i].json);
        return;
    }
    printf("  test '%s' rule %s shop %s period %s: %s, team_size %d\n", t->name, res->rule->name,
           t->shop, t->period.label, res->evaluated ? "evaluated" : "no figures", res->team_size);
    for (size_t i = 0; i < res->n; i++) {
        const struct tagent *a = &res->agents[i];
        if (!a->eligible) {
            printf("    %s: not eligible\n", a->agent);
            continue;
        }
        char err[128];
        yajl_val s = yajl_tree_parse(a->json, err, sizeof(err));
        char sc[64], gr[128], rk[64], rb[64];
        jfmt(jget(s, "score"), sc, sizeof(sc));
        jfmt(jget(s, "grade"), gr, sizeof(gr));
        jfmt(jget(s, "rank"), rk, sizeof(rk));
        jfmt(jget(s, "rank_bottom"), rb, sizeof(rb));
        printf("    %s: score %s grade %s rank %s rank_bottom %s", a->agent, sc, gr, rk, rb);
        yajl_val pay = jget(s, "payouts"), al = jget(s, "alerts"), pts = jget(s, "points");
        printf(" points {");
        for (size_t k = 0; YAJL_IS_OBJECT(pts) && k < pts->u.object.len; k++) {
            char v[64];
            jfmt(pts->u.object.values[k], v, sizeof(v));
            printf("%s%s: %s", k ? ", " : "", pts->u.object.keys[k], v);
        }
        printf("} payouts {");
        for (size_t k = 0; YAJL_IS_OBJECT(pay) && k < pay->u.object.len; k++) {
            char v[64];
            jfmt(pay->u.object.values[k], v, sizeof(v));
            printf("%s%s: %s", k ? ", " : "", pay->u.object.keys[k], v);
        }
        printf("} alerts [");
        for (size_t k = 0; YAJL_IS_ARRAY(al) && k < al->u.array.len; k++)
            printf("%s%s", k ? ", " : "", YAJL_GET_STRING(al->u.array.values[k]));
        printf("] streaks [");
        size_t ns = res->rule->nalerts + res->rule->npayouts;
        for (size_t k = 0; k < ns; k++)
            printf("%s%d", k ? "," : "", a->streaks[k]);
        printf("]\n");
        yajl_tree_free(s);
    }
}

/* Runs test t: 0 passed, 1 failed (diffs printed), -1 an error in the test itself. */
static int run_test(struct tfile *f, struct ttest *t)
{
    static const char *const keys[] = {"name",   "period",   "shop",          "kpis",  "team",
                                       "events", "previous", "previous_test", "expect"};
    const yaml_node_t *n = t->node;
    yaml_node_t *v;
    struct tinput in = {0};
    struct memstore *m = NULL;
    const struct ttest *pt = NULL;
    int rc = -1;
    f->failures = 0;
    t->res = xcalloc(f->nrules, sizeof(*t->res));
    if (y_keys(f, n, "a test", keys, COUNT_OF(keys)) < 0)
        return -1;
    const char *label, *shop = f->shop;
    if (!(v = y_get(f, n, "period")))
        return t_fail(f, n->start_mark, "test '%s': missing 'period'", t->name);
    if (y_string(f, v, "period", &label) < 0)
        return -1;
    if (period_from_label(label, &t->period) < 0)
        return t_fail(f, v->start_mark, "test '%s': invalid period label '%s'", t->name, label);
    if ((v = y_get(f, n, "shop")) && y_string(f, v, "shop", &shop) < 0)
        return -1;
    t->shop = xstrdup(shop);
    yaml_node_t *kpis = y_get(f, n, "kpis"), *events = y_get(f, n, "events"),
                *team = y_get(f, n, "team"), *prev = y_get(f, n, "previous"),
                *expect = y_get(f, n, "expect");
    if (!kpis == !events)
        return t_fail(f, n->start_mark, "test '%s': give either 'kpis' or 'events'", t->name);
    if (team && !kpis)
        return t_fail(f, team->start_mark,
                      "test '%s': 'team' goes with 'kpis' (events make their own)", t->name);
    if (!expect)
        return t_fail(f, n->start_mark, "test '%s': missing 'expect'", t->name);
    if (y_keys(f, expect, "expect", NULL, 0) < 0)
        return -1;
    for (yaml_node_pair_t *p = expect->data.mapping.pairs.start; p < expect->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = y_node(f, p->key);
        size_t r;
        for (r = 0; r < f->nrules; r++)
            if (strcmp(f->rules[r]->name, y_str(k)) == 0)
                break;
        if (r == f->nrules)
            return t_fail(f, k->start_mark,
                          "test '%s': no rule file of this test file is named '%s'", t->name,
                          y_str(k));
        if (f->rules[r]->period != t->period.kind)
            return t_fail(f, k->start_mark, "test '%s': rule '%s' has period %s, not that of %s",
                          t->name, y_str(k), period_kind_name(f->rules[r]->period),
                          t->period.label);
        if (!rule_applies_to(f->rules[r], t->shop))
            return t_fail(f, k->start_mark, "test '%s': rule '%s' does not apply to shop '%s'",
                          t->name, y_str(k), t->shop);
    }
    if (prev) {
        if (y_keys(f, prev, "previous", NULL, 0) < 0 || check_streak_names(f, prev) < 0)
            return -1;
    }
    if ((v = y_get(f, n, "previous_test"))) {
        const char *pname;
        if (y_string(f, v, "previous_test", &pname) < 0)
            return -1;
        const struct ttest *p = find_test(f, pname);
        if (!p || p == t || !p->ran)
            return t_fail(f, v->start_mark,
                          "test '%s': previous_test '%s' is not an earlier test of this file",
                          t->name, pname);
        struct period pp;
        period_prev(&t->period, &pp);
        if (strcmp(p->period.label, pp.label) != 0)
            return t_fail(f, v->start_mark,
                          "test '%s': previous_test '%s' is for %s, not the previous period %s",
                          t->name, pname, p->period.label, pp.label);
        if (strcmp(p->shop, t->shop) != 0)
            return t_fail(f, v->start_mark,
                          "test '%s': previous_test '%s' is for shop '%s', not '%s'", t->name,
                          pname, p->shop, t->shop);
        pt = p;
    }
    if (kpis) {
        if (input_from_kpis(f, kpis, team, &in) < 0)
            goto out;
    } else {
        m = memstore_new();
        if (feed_events(f, events, m, t->period.kind) < 0)
            goto out;
        input_from_store(m, t->shop, &t->period, &in);
    }
    for (size_t r = 0; r < f->nrules; r++) {
        if (f->rules[r]->period != t->period.kind || !rule_applies_to(f->rules[r], t->shop)) {
            t->res[r].rule = f->rules[r];
            continue;
        }
        if (evaluate(f, t, r, &in, prev, pt) < 0)
            goto out;
        if (f->show || f->json)
            show_results(t, &t->res[r], f->json);
    }
    t->ran = true;
    for (yaml_node_pair_t *p = expect->data.mapping.pairs.start; p < expect->data.mapping.pairs.top;
         p++) {
        const char *name = y_str(y_node(f, p->key));
        for (size_t r = 0; r < f->nrules; r++)
            if (strcmp(f->rules[r]->name, name) == 0)
                check_rule(f, t, &t->res[r], y_node(f, p->value));
    }
    rc = f->failures ? 1 : 0;
out:
    tinput_release(&in);
    memstore_destroy(m);
    return rc;
}

/* Runs every test of one file; adds to the counts. */
static void run_file(const char *path, bool show, bool json, size_t *passed, size_t *failed)
{
    struct tfile f = {.path = path, .show = show, .json = json};
    if (tfile_load(&f) < 0) {
        printf("%s: FAILED (the file cannot be used)\n", path);
        (*failed)++;
        tfile_release(&f);
        return;
    }
    size_t p = 0, fl = 0;
    for (size_t i = 0; i < f.ntests; i++) {
        int rc = run_test(&f, &f.tests[i]);
        if (rc == 0) {
            p++;
        } else {
            fl++;
            if (rc < 0)
                printf("%s: test '%s': FAILED (cannot run)\n", path, f.tests[i].name);
        }
    }
    if (fl == 0)
        printf("%s: %zu tests passed\n", path, p);
    else
        printf("%s: %zu passed, %zu FAILED\n", path, p, fl);
    *passed += p;
    *failed += fl;
    tfile_release(&f);
}

int cli_test(int argc, char **argv, const char *config_path)
{
    static const struct option opts[] = {
        {.name = "show", .has_arg = no_argument, .val = 's'},
        {.name = "json", .has_arg = no_argument, .val = 'j'},
        {.name = "help", .has_arg = no_argument, .val = 'h'},
        {0},
    };
    bool show = false, json = false;
    int ch;
    (void)config_path; /* tests carry their own settings */
    optind = 1;
    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (ch) {
        case 's':
            show = true;
            break;
        case 'j':
            json = true;
            break;
        case 'h':
            test_usage(stdout);
            return 0;
        default:
            test_usage(stderr);
            return 2;
        }
    }
    if (optind >= argc) {
        test_usage(stderr);
        return 2;
    }
    size_t passed = 0, failed = 0;
    for (int i = optind; i < argc; i++)
        run_file(argv[i], show, json, &passed, &failed);
    printf("%zu passed, %zu failed\n", passed, failed);
    fflush(stdout);
    return failed ? 1 : 0;
}
