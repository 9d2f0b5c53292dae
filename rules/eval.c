/* eval — one evaluation of a rule file over one shop's agents for one period (rules.md
 * "Precise readings" and "What one evaluation emits"). Pure: no I/O, no clock, no globals;
 * every order that reaches the output is a total order (quota ties end at agent_id, review
 * items are sorted), so the same input always gives byte-identical snapshots.
 * Steps: lines and score → eligibility → ranks → grades → quotas → payouts and alerts → JSON. */
#include "rules/eval.h"
#include "common/utf8.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <yajl/yajl_gen.h>

#include "common/buf.h"

/* What an expression may see grows as the evaluation goes on: `eligible` sees the
 * score and points but no rank; a grade's `when` sees ranks but no grade; payouts,
 * alerts and summaries see everything. A name not known yet is undefined. (The loader
 * is stricter: `eligible` may not use score or points, nor `when` ranks; eval stays
 * total for any rule.) */
enum phase { PH_ELIGIBLE, PH_GRADE, PH_FINAL };

struct ctx {
    const struct eval_input *in;
    const struct eval_agent *a;
    const struct eval_snapshot *s;
    enum phase phase;
};

/* A name's value with what an explanation needs: its fraction, and cents for money. */
struct metric {
    bool known; /* the name is a KPI or a review name */
    bool defined;
    double value;
    bool money;
    int64_t cents;
    double num, den;
};

static struct expr_value undef(void)
{
    return (struct expr_value){.defined = false};
}

static struct expr_value num_value(double v)
{
    if (!isfinite(v))
        return undef();
    return (struct expr_value){.defined = true, .type = EXPR_NUM, .num = v};
}

static struct expr_value str_value(const char *s)
{
    if (!s)
        return undef();
    return (struct expr_value){.defined = true, .type = EXPR_STR, .str = s};
}

static struct expr_value bool_value(bool b)
{
    return (struct expr_value){.defined = true, .type = EXPR_BOOL, .b = b};
}

/* ---- KPIs and reviews ---- */

static int role_parse(const char *name)
{
    for (int r = 0; r < ROLE_COUNT; r++) {
        const char *n = review_role_name((enum review_role)r);
        if (n && strcmp(n, name) == 0)
            return r;
    }
    return -1;
}

static bool item_is(const struct kpi_review *rv, const char *item)
{
    size_t n = strlen(item);
    return n < sizeof(rv->item) && strncmp(rv->item, item, sizeof(rv->item)) == 0;
}

/* The figures' latest score per role for item (events.md: a later review replaces). */
static void review_roles(const struct kpi_figures *f, const char *item, bool has[ROLE_COUNT],
                         double val[ROLE_COUNT])
{
    size_t n = f->reviews_n < KPI_REVIEW_MAX ? f->reviews_n : KPI_REVIEW_MAX;

    for (int r = 0; r < ROLE_COUNT; r++)
        has[r] = false;
    for (size_t i = 0; i < n; i++) {
        const struct kpi_review *rv = &f->reviews[i];
        if ((unsigned)rv->role < ROLE_COUNT && item_is(rv, item)) {
            has[rv->role] = true;
            val[rv->role] = rv->value;
        }
    }
}

/* v rounded to 12 significant digits (the first step of rules.md's roundings). */
static double sig12(double v)
{
    char s[40];

    if (!isfinite(v) || v == 0)
        return v;
    snprintf(s, sizeof(s), "%.11e", v);
    return strtod(s, NULL);
}

/* review.<item> (Σ weight·score over the listed roles present ÷ Σ their weights) or
 * review.<item>.<role> (that role's score). A rule that lists no assessors at all
 * weighs every role 1: the plain mean of the roles present. The weights are decimal
 * fractions binary cannot hold, so the sums and the mean are taken to 12 significant
 * digits: one manager score of 0.8 weighed 0.7 is 0.8, not 0.56 / 0.7 =
 * 0.7999999999999999, and 0.3 × 0.9 + 0.7 × 0.8 is 0.83. */
static struct metric review_metric(const struct kpi_figures *f, const struct rule *r,
                                   const char *rest)
{
    struct metric m = {.known = true, .num = 0, .den = 0};
    bool has[ROLE_COUNT];
    double val[ROLE_COUNT];
    const char *dot = strrchr(rest, '.');
    int role = dot ? role_parse(dot + 1) : -1;
    bool any_listed = false;

    if (role >= 0) {
        char item[sizeof(f->reviews[0].item)];
        size_t n = (size_t)(dot - rest);
        if (n >= sizeof(item)) {
            m.num = m.den = NAN;
            return m;
        }
        memcpy(item, rest, n);
        item[n] = '\0';
        review_roles(f, item, has, val);
        if (has[role]) {
            m.defined = true;
            m.value = m.num = val[role];
            m.den = 1;
        } else {
            m.num = m.den = NAN;
        }
        return m;
    }
    for (int i = 0; i < ROLE_COUNT; i++)
        any_listed |= r->has_assessor[i];
    review_roles(f, rest, has, val);
    for (int i = 0; i < ROLE_COUNT; i++) {
        double w = any_listed ? (r->has_assessor[i] ? r->assessor[i] : 0) : 1;
        if (!has[i] || (any_listed && !r->has_assessor[i]))
            continue;
        m.num += w * val[i];
        m.den += w;
    }
    m.num = sig12(m.num);
    m.den = sig12(m.den);
    if (m.den > 0) {
        m.defined = true;
        m.value = sig12(m.num / m.den);
    }
    return m;
}

/* A KPI or review name over figures f. */
static struct metric metric_of(const struct kpi_figures *f, const struct rule *r, const char *name)
{
    struct metric m = {0};
    enum kpi_id id;

    if (strncmp(name, "review.", 7) == 0)
        return review_metric(f, r, name + 7);
    if (kpi_lookup(name, &id) != 0)
        return m;
    struct kpi_value v = kpi_compute(f, id);
    m.known = true;
    m.defined = v.defined;
    m.value = v.defined ? v.value : NAN;
    m.money = kpi_unit(id) == KPI_MONEY;
    m.cents = v.cents;
    kpi_fraction(f, id, &m.num, &m.den);
    return m;
}

/* ---- names for expressions ---- */

/* The type of a name (rule_name_type has checked that it exists): prev.* values of
 * another type are treated as undefined. */
static enum expr_type name_type(const char *name)
{
    if (strcmp(name, "grade") == 0 || strcmp(name, "period") == 0)
        return EXPR_STR;
    if (strcmp(name, "eligible") == 0)
        return EXPR_BOOL;
    return EXPR_NUM;
}

static const struct eval_line *line_of(const struct ctx *c, const char *kpi)
{
    for (size_t i = 0; i < c->in->rule->nscore; i++)
        if (strcmp(c->s->lines[i].kpi, kpi) == 0)
            return &c->s->lines[i];
    return NULL;
}

static struct expr_value prev_value(const struct eval_prev *p, const char *name)
{
    enum expr_type want = name_type(name);

    if (!p->scored)
        return undef();
    for (size_t i = 0; i < p->n; i++) {
        if (!p->names || !p->values || !p->names[i] || strcmp(p->names[i], name) != 0)
            continue;
        struct expr_value v = p->values[i];
        if (!v.defined || v.type != want || (want == EXPR_STR && !v.str) ||
            (want == EXPR_NUM && !isfinite(v.num)))
            return undef();
        return v;
    }
    return undef();
}

/* Looks a name up; *known false when eval has no such name (summaries keep it verbatim). */
static struct expr_value resolve(const struct ctx *c, const char *name, bool *known)
{
    const struct eval_snapshot *s = c->s;
    bool ranked = c->phase >= PH_GRADE && s->scored;
    struct metric m;

    *known = true;
    if (strncmp(name, "prev.", 5) == 0)
        return prev_value(&c->a->prev, name + 5);
    if (strcmp(name, "score") == 0)
        return c->phase == PH_ELIGIBLE || s->scored ? num_value(s->score) : undef();
    if (strcmp(name, "grade") == 0)
        return c->phase >= PH_FINAL && s->scored ? str_value(s->grade) : undef();
    if (strcmp(name, "rank") == 0)
        return ranked ? num_value(s->rank) : undef();
    if (strcmp(name, "rank_bottom") == 0)
        return ranked ? num_value(s->rank_bottom) : undef();
    if (strcmp(name, "percentile") == 0)
        return ranked ? num_value(s->percentile) : undef();
    if (strcmp(name, "team.size") == 0)
        return c->phase >= PH_GRADE ? num_value(s->team_size) : undef();
    if (strcmp(name, "eligible") == 0)
        return c->phase >= PH_GRADE ? bool_value(s->eligible) : undef();
    if (strcmp(name, "period") == 0)
        return str_value(c->in->period.label);
    if (strcmp(name, "period_index") == 0)
        return num_value(c->in->period.index);
    if (strncmp(name, "points.", 7) == 0) {
        const struct eval_line *l = line_of(c, name + 7);
        if (!l) {
            *known = false;
            return undef();
        }
        if (c->phase == PH_ELIGIBLE || s->scored)
            return l->skipped ? undef() : num_value(l->points);
        return undef();
    }
    if (strncmp(name, "team.", 5) == 0)
        m = metric_of(&c->in->team, c->in->rule, name + 5);
    else
        m = metric_of(&c->a->fig, c->in->rule, name);
    *known = m.known;
    return m.defined ? num_value(m.value) : undef();
}

static struct expr_value lookup(void *ud, const char *name)
{
    bool known;
    return resolve(ud, name, &known);
}

static struct expr_value eval_expr(const struct ctx *c, const struct expr *e)
{
    return expr_eval(e, lookup, (void *)c);
}

/* ---- arithmetic ---- */

/* rules.md "Arithmetic": floor after rounding to 12 significant digits, so that
 * floor(0.57 × 100) is 57. */
static double floor12(double v)
{
    return floor(sig12(v));
}

static double clamp01(double v)
{
    if (!(v > 0)) /* NaN too */
        return 0;
    return v > 1 ? 1 : v;
}

/* ---- score lines ---- */

static const char *const map_names[] = {
    [RULE_MAP_NONE] = "none",
    [RULE_MAP_LINEAR] = "linear",
    [RULE_MAP_BANDS] = "bands",
};

/* Share and unrounded points of one line; undefined values score 0 or are skipped. */
static void line_eval(const struct rule *r, const struct rule_score_line *sl,
                      const struct kpi_figures *f, struct eval_line *l)
{
    struct metric m = metric_of(f, r, sl->kpi);

    *l = (struct eval_line){
        .kpi = sl->kpi,
        .defined = m.defined,
        .value = m.defined ? m.value : NAN,
        .numerator = m.num,
        .denominator = m.den,
        .mapping = (unsigned)sl->map < sizeof(map_names) / sizeof(map_names[0]) ? map_names[sl->map]
                                                                                : "none",
        .band = -1,
        .weight = sl->weight,
    };
    if (!m.known)
        l->numerator = l->denominator = NAN;
    if (!m.defined) {
        if (r->undefined_skip) {
            l->skipped = true;
            l->share = l->points = NAN;
            l->weight = 0;
        } else {
            l->share = l->points = 0;
        }
        return;
    }
    switch (sl->map) {
    case RULE_MAP_LINEAR:
        if (sl->full == sl->zero) /* the loader rejects it; a step keeps it total */
            l->share = m.value >= sl->full ? 1 : 0;
        else
            l->share = clamp01((m.value - sl->zero) / (sl->full - sl->zero));
        break;
    case RULE_MAP_BANDS:
        l->share = 0; /* no band matched (the file has no catch-all band) */
        for (size_t i = 0; i < sl->nbands; i++) {
            if (!sl->bands[i].has_max || m.value <= sl->bands[i].max) {
                l->share = sl->bands[i].share;
                l->band = (int)i;
                break;
            }
        }
        break;
    case RULE_MAP_NONE:
    default:
        l->share = clamp01(m.value);
        break;
    }
    l->points = l->share * l->weight;
}

/* Fills s->lines; returns whether the score is defined, and the unrounded score.
 * `undefined: skip` drops the undefined lines and scales every other line's weight by
 * Σ all weights ÷ Σ weights of the defined lines, so the points still add up to the
 * score and the score keeps the file's full scale. When no defined line carries any
 * weight there is nothing to scale: the score is undefined (the agent is not scored). */
static bool score_lines(const struct rule *r, const struct kpi_figures *f, struct eval_line *lines,
                        double *score)
{
    double w_all = 0, w_def = 0, sum = 0;
    bool skipped = false;

    for (size_t i = 0; i < r->nscore; i++) {
        line_eval(r, &r->score[i], f, &lines[i]);
        w_all += r->score[i].weight;
        if (lines[i].skipped)
            skipped = true;
        else
            w_def += r->score[i].weight;
    }
    if (skipped) {
        if (!(w_def > 0))
            return false;
        double factor = w_all / w_def;
        for (size_t i = 0; i < r->nscore; i++) {
            if (lines[i].skipped)
                continue;
            lines[i].weight = sig12(r->score[i].weight * factor); /* 70 × 100/70 is 100 */
            lines[i].points = lines[i].share * lines[i].weight;
        }
    }
    for (size_t i = 0; i < r->nscore; i++)
        if (!lines[i].skipped)
            sum += lines[i].points;
    *score = sum;
    return true;
}

/* ---- ranks, grades, quotas ---- */

struct ranked {
    double score;
    int64_t inquiries;
    const char *agent_id;
    size_t idx; /* in the snapshots */
};

/* Quota order: score descending, then more inquiries, then agent_id ascending. */
static int ranked_cmp(const void *pa, const void *pb)
{
    const struct ranked *a = pa, *b = pb;

    if (a->score != b->score)
        return a->score > b->score ? -1 : 1;
    if (a->inquiries != b->inquiries)
        return a->inquiries > b->inquiries ? -1 : 1;
    int c = strcmp(a->agent_id, b->agent_id);
    if (c)
        return c;
    return a->idx < b->idx ? -1 : a->idx > b->idx;
}

static int grade_index(const struct rule *r, const char *name)
{
    for (size_t i = 0; i < r->ngrades; i++)
        if (strcmp(r->grades[i].name, name) == 0)
            return (int)i;
    return -1;
}

/* Forced distribution (rules.md "Quotas") over the n scored agents in quota order;
 * g[p] is the grade index of the agent at place p (ngrades: no grade matched, which
 * counts as below every grade).
 *  1. Floors: for each quota with min share m on grade G, k = floor12(m × n); each of
 *     the k last agents in quota order whose grade is above G moves down to G. Floors
 *     only move agents down, so their order among themselves does not matter.
 *  2. Caps, top-down: for G = 0 .. ngrades − 2 with max share s, c = floor12(s × n);
 *     the agents now at G (their own and those that fell from above), taken in quota
 *     order, keep the first c places and the rest fall to G + 1, where G + 1's own cap
 *     then applies to all of them. The last grade has nowhere to send a surplus, so a
 *     cap on it is not enforced.
 * Caps come second because they too only move agents down: every floor still holds
 * at the end, and so does every cap but the last grade's. */
static void apply_quotas(const struct rule *r, const int *quota_grade, int *g, size_t n)
{
    size_t ng = r->ngrades;
    double *cap = xcalloc(ng ? ng : 1, sizeof(*cap));

    for (size_t i = 0; i < ng; i++)
        cap[i] = -1; /* none */
    for (size_t q = 0; q < r->nquotas; q++) {
        const struct rule_quota *qu = &r->quotas[q];
        int G = quota_grade[q];
        if (qu->has_max) {
            double c = floor12(qu->max * (double)n);
            if (c < 0)
                c = 0;
            if (cap[G] < 0 || c < cap[G])
                cap[G] = c;
        }
        if (qu->has_min) {
            double k = floor12(qu->min * (double)n);
            size_t kk = !(k > 0) ? 0 : k >= (double)n ? n : (size_t)k;
            for (size_t p = n - kk; p < n; p++)
                if (g[p] < G)
                    g[p] = G;
        }
    }
    for (size_t G = 0; G + 1 < ng; G++) {
        size_t kept = 0;
        if (cap[G] < 0)
            continue;
        for (size_t p = 0; p < n; p++) {
            if (g[p] != (int)G)
                continue;
            if ((double)kept < cap[G])
                kept++;
            else
                g[p] = (int)G + 1;
        }
    }
    free(cap);
}

/* ---- JSON ---- */

/* A yajl generator that remembers its first failure, so writers need not check each call. */
struct jg {
    yajl_gen g;
    yajl_gen_status st;
};

/* Strings go out as valid UTF-8 whatever they hold: invalid bytes become U+FFFD. */
static void j_str(struct jg *j, const char *s)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t n = strlen(s), i = 0;
    struct buf b;

    if (j->st != yajl_gen_status_ok)
        return;
    if (utf8_valid_prefix(u, n) == n) {
        j->st = yajl_gen_string(j->g, u, n);
        return;
    }
    buf_init(&b);
    for (i = 0; i < n;) {
        size_t len = u[i] < 0x80 ? 1 : utf8_seq_len(u + i, n - i);
        if (len) {
            buf_add(&b, s + i, len);
            i += len;
        } else {
            buf_adds(&b, "\xef\xbf\xbd");
            i++;
        }
    }
    j->st = yajl_gen_string(j->g, (const unsigned char *)b.data, b.len);
    buf_release(&b);
}

static void j_null(struct jg *j)
{
    if (j->st == yajl_gen_status_ok)
        j->st = yajl_gen_null(j->g);
}

static void j_str_or_null(struct jg *j, const char *s)
{
    if (s)
        j_str(j, s);
    else
        j_null(j);
}

static void j_bool(struct jg *j, bool b)
{
    if (j->st == yajl_gen_status_ok)
        j->st = yajl_gen_bool(j->g, b);
}

static void j_raw_number(struct jg *j, const char *text)
{
    if (j->st == yajl_gen_status_ok)
        j->st = yajl_gen_number(j->g, text, strlen(text));
}

/* Shortest round-trip text; NaN and infinities (undefined) as null. */
static void j_num(struct jg *j, double v)
{
    char t[40];

    if (!isfinite(v)) {
        j_null(j);
        return;
    }
    kpi_format_double(v, t, sizeof(t));
    j_raw_number(j, t);
}

static void j_int(struct jg *j, long long v)
{
    char t[24];

    snprintf(t, sizeof(t), "%lld", v);
    j_raw_number(j, t);
}

static void j_map_open(struct jg *j)
{
    if (j->st == yajl_gen_status_ok)
        j->st = yajl_gen_map_open(j->g);
}

static void j_map_close(struct jg *j)
{
    if (j->st == yajl_gen_status_ok)
        j->st = yajl_gen_map_close(j->g);
}

static void j_array_open(struct jg *j)
{
    if (j->st == yajl_gen_status_ok)
        j->st = yajl_gen_array_open(j->g);
}

static void j_array_close(struct jg *j)
{
    if (j->st == yajl_gen_status_ok)
        j->st = yajl_gen_array_close(j->g);
}

static int j_init(struct jg *j)
{
    j->g = yajl_gen_alloc(NULL);
    j->st = j->g ? yajl_gen_status_ok : yajl_gen_generation_complete;
    return j->g ? 0 : -1;
}

/* The text written, malloc'd, or NULL when generation failed; frees the generator. */
static char *j_finish(struct jg *j)
{
    const unsigned char *text;
    size_t len;
    char *out = NULL;

    if (!j->g)
        return NULL;
    if (j->st == yajl_gen_status_ok && yajl_gen_get_buf(j->g, &text, &len) == yajl_gen_status_ok)
        out = xstrndup((const char *)text, len);
    yajl_gen_free(j->g);
    j->g = NULL;
    return out;
}

/* A metric as a JSON number: money from its cents, exactly; null when undefined. */
static void j_metric(struct jg *j, const struct metric *m)
{
    char t[40];

    if (!m->defined) {
        j_null(j);
    } else if (m->money) {
        kpi_format_cents(m->cents, t, sizeof(t));
        j_raw_number(j, t);
    } else {
        j_num(j, m->value);
    }
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool in_list(char **list, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i], s) == 0)
            return true;
    return false;
}

/* "metrics": every KPI of the table but absent_days, in table order (as `show`
 * writes them), then, sorted bytewise, review.<item> for every item of the figures and
 * every score-line name the table does not hold (review.<item>[.<role>]). */
static void j_metrics(struct jg *j, const struct eval_input *in, const struct eval_agent *a)
{
    const struct rule *r = in->rule;
    size_t nrev = a->fig.reviews_n < KPI_REVIEW_MAX ? a->fig.reviews_n : KPI_REVIEW_MAX;
    char **extra = xcalloc(nrev + r->nscore + 1, sizeof(*extra));
    size_t nextra = 0;
    struct metric m;

    j_map_open(j);
    for (int i = 0; i < KPI_COUNT_ALL; i++) {
        if (i == KPI_ABSENT_DAYS)
            continue; /* an input of eligibility, not a metric (kpi_metrics_json agrees) */
        m = metric_of(&a->fig, r, kpi_name((enum kpi_id)i));
        j_str(j, kpi_name((enum kpi_id)i));
        j_metric(j, &m);
    }
    for (size_t i = 0; i < nrev; i++) {
        const struct kpi_review *rv = &a->fig.reviews[i];
        struct buf b;
        buf_init(&b);
        buf_adds(&b, "review.");
        buf_add(&b, rv->item, strnlen(rv->item, sizeof(rv->item)));
        buf_addc(&b, '\0');
        if ((unsigned)rv->role < ROLE_COUNT && !in_list(extra, nextra, b.data))
            extra[nextra++] = b.data;
        else
            buf_release(&b);
    }
    for (size_t i = 0; i < r->nscore; i++) {
        enum kpi_id id;
        const char *k = r->score[i].kpi;
        if (kpi_lookup(k, &id) == 0 && id != KPI_ABSENT_DAYS)
            continue;
        if (!in_list(extra, nextra, k))
            extra[nextra++] = xstrdup(k);
    }
    qsort(extra, nextra, sizeof(*extra), str_cmp);
    for (size_t i = 0; i < nextra; i++) {
        m = metric_of(&a->fig, r, extra[i]);
        j_str(j, extra[i]);
        j_metric(j, &m);
        free(extra[i]);
    }
    free(extra);
    j_map_close(j);
}

static void j_line(struct jg *j, const struct eval_line *l)
{
    j_map_open(j);
    j_str(j, "kpi");
    j_str(j, l->kpi);
    j_str(j, "value");
    j_num(j, l->value);
    j_str(j, "numerator");
    j_num(j, l->numerator);
    j_str(j, "denominator");
    j_num(j, l->denominator);
    j_str(j, "mapping");
    j_str(j, l->mapping);
    j_str(j, "band");
    if (l->band >= 0)
        j_int(j, l->band);
    else
        j_null(j);
    j_str(j, "share");
    j_num(j, l->share);
    j_str(j, "weight");
    j_num(j, l->weight);
    j_str(j, "points");
    j_num(j, l->points);
    j_map_close(j);
}

/* The snapshot record of rules.md, plus "explain" (one object per score line). */
static char *snapshot_json(const struct eval_input *in, const struct eval_snapshot *s)
{
    const struct rule *r = in->rule;
    const struct eval_agent *a = &in->agents[s->agent_index];
    char ts[40];
    struct jg j;

    if (j_init(&j) != 0)
        return NULL;
    j_map_open(&j);
    j_str(&j, "snapshot_id");
    j_str(&j, s->snapshot_id);
    j_str(&j, "rule");
    j_str(&j, r->name);
    j_str(&j, "rule_sha256");
    j_str(&j, r->sha256);
    j_str(&j, "version");
    j_str_or_null(&j, in->version);
    j_str(&j, "shop_id");
    j_str(&j, in->shop_id);
    j_str(&j, "agent_id");
    j_str(&j, s->agent_id);
    j_str(&j, "period");
    j_str(&j, in->period.label);
    j_str(&j, "period_start");
    period_format_rfc3339(in->period.start_ms, ts, sizeof(ts));
    j_str(&j, ts);
    j_str(&j, "period_end");
    period_format_rfc3339(in->period.end_ms, ts, sizeof(ts));
    j_str(&j, ts);
    j_str(&j, "final");
    j_bool(&j, in->final);
    j_str(&j, "metrics");
    j_metrics(&j, in, a);
    j_str(&j, "points");
    j_map_open(&j);
    for (size_t i = 0; i < r->nscore; i++) {
        j_str(&j, s->lines[i].kpi);
        j_num(&j, s->scored ? kpi_round(s->lines[i].points, 2) : NAN);
    }
    j_map_close(&j);
    j_str(&j, "score");
    j_num(&j, s->score);
    j_str(&j, "grade");
    j_str_or_null(&j, s->grade);
    j_str(&j, "rank");
    if (s->scored)
        j_int(&j, s->rank);
    else
        j_null(&j);
    j_str(&j, "rank_bottom");
    if (s->scored)
        j_int(&j, s->rank_bottom);
    else
        j_null(&j);
    j_str(&j, "team_size");
    j_int(&j, s->team_size);
    j_str(&j, "payouts");
    j_map_open(&j);
    for (size_t i = 0; i < s->npayouts; i++) {
        j_str(&j, s->payout_names[i]);
        j_num(&j, s->payout_amounts[i]);
    }
    j_map_close(&j);
    j_str(&j, "alerts");
    j_array_open(&j);
    for (size_t i = 0; i < s->nalerts; i++)
        j_str(&j, s->alert_names[i]);
    j_array_close(&j);
    j_str(&j, "explain");
    j_array_open(&j);
    for (size_t i = 0; i < r->nscore; i++)
        j_line(&j, &s->lines[i]);
    j_array_close(&j);
    j_map_close(&j);
    return j_finish(&j);
}

/* ---- the evaluation ---- */

void eval_snapshot_id(const char *rule, const char *shop_id, const char *agent_id,
                      const char *period_label, bool final, char out[65])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    struct buf b;

    buf_init(&b);
    buf_add(&b, rule, strlen(rule) + 1);
    buf_add(&b, shop_id, strlen(shop_id) + 1);
    buf_add(&b, agent_id, strlen(agent_id) + 1);
    buf_add(&b, period_label, strlen(period_label) + 1);
    buf_adds(&b, final ? "true" : "false");
    if (EVP_Digest(b.data, b.len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32) {
        /* only on a broken libcrypto; an all-zero id is at least deterministic */
        memset(md, 0, sizeof(md));
        mdlen = 32;
    }
    buf_release(&b);
    for (unsigned i = 0; i < mdlen; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[64] = '\0';
}

static int check_rule(const struct rule *r, int *quota_grade, char *err, size_t errlen)
{
    for (size_t q = 0; q < r->nquotas; q++) {
        quota_grade[q] = r->quotas[q].grade ? grade_index(r, r->quotas[q].grade) : -1;
        if (quota_grade[q] < 0) {
            snprintf(err, errlen, "cannot evaluate rule '%s': quota names unknown grade '%s'",
                     r->name, r->quotas[q].grade ? r->quotas[q].grade : "");
            return -1;
        }
    }
    for (size_t i = 0; i < r->nscore; i++) {
        if (r->score[i].map == RULE_MAP_BANDS && r->score[i].nbands && !r->score[i].bands) {
            snprintf(err, errlen, "cannot evaluate rule '%s': score line '%s' has no bands",
                     r->name, r->score[i].kpi);
            return -1;
        }
    }
    return 0;
}

static int next_streak(const int *streaks, size_t k, bool cond)
{
    int prev = streaks && streaks[k] > 0 ? streaks[k] : 0;
    if (!cond)
        return 0;
    return prev < INT_MAX ? prev + 1 : INT_MAX;
}

/* Payouts and alerts of one scored agent (rules.md "for: N"). */
static void payouts_alerts(const struct eval_input *in, struct eval_snapshot *s)
{
    const struct rule *r = in->rule;
    const struct eval_agent *a = &in->agents[s->agent_index];
    struct ctx c = {.in = in, .a = a, .s = s, .phase = PH_FINAL};

    for (size_t i = 0; i < r->nalerts; i++) {
        const struct rule_alert *al = &r->alerts[i];
        bool cond = al->expr && expr_truthy(eval_expr(&c, al->expr));
        int st = next_streak(a->streaks, i, cond);
        /* the value: the left side of a top-level comparison when it is a number
         * (undefined: NAN), else the score */
        struct expr_value v = al->expr ? expr_eval_left(al->expr, lookup, &c) : undef();
        if (!al->expr || v.type != EXPR_NUM)
            v = num_value(s->score);

        s->streaks[i] = st;
        s->alert_values[i] = v.defined && v.type == EXPR_NUM ? v.num : NAN;
        if (cond && (al->for_n <= 1 || st >= al->for_n) && (in->final || al->live)) {
            s->alert_names[s->nalerts] = al->name;
            s->alert_index[s->nalerts] = i;
            s->nalerts++;
        }
    }
    for (size_t i = 0; i < r->npayouts; i++) {
        const struct rule_payout *p = &r->payouts[i];
        bool cond = !p->when || expr_truthy(eval_expr(&c, p->when));
        size_t k = r->nalerts + i;
        int st = next_streak(a->streaks, k, cond);
        bool pay = cond;

        if (p->for_n > 0) {
            pay = cond && st >= p->for_n;
            if (pay)
                st = 0; /* reached N: paid once (if the amount is defined), and the
                           streak starts again */
        }
        s->streaks[k] = st;
        if (!pay || !p->amount)
            continue;
        struct expr_value v = eval_expr(&c, p->amount);
        if (!v.defined || v.type != EXPR_NUM || !isfinite(v.num))
            continue; /* an undefined amount is not paid */
        s->payout_names[s->npayouts] = p->name;
        s->payout_amounts[s->npayouts] = kpi_round(v.num, 2);
        s->npayouts++;
    }
}

static void snapshot_init(const struct eval_input *in, size_t i, struct eval_snapshot *s)
{
    const struct rule *r = in->rule;
    size_t na = r->nalerts, np = r->npayouts;

    *s = (struct eval_snapshot){
        .agent_id = in->agents[i].agent_id,
        .agent_index = i,
        .score = NAN,
        .percentile = NAN,
        .lines = xcalloc(r->nscore, sizeof(*s->lines)),
        .payout_names = xcalloc(np, sizeof(*s->payout_names)),
        .payout_amounts = xcalloc(np, sizeof(*s->payout_amounts)),
        .alert_names = xcalloc(na, sizeof(*s->alert_names)),
        .alert_index = xcalloc(na, sizeof(*s->alert_index)),
        .alert_values = xcalloc(na, sizeof(*s->alert_values)),
        .streaks = xcalloc(na + np, sizeof(*s->streaks)),
    };
    for (size_t k = 0; k < na; k++)
        s->alert_values[k] = NAN;
    eval_snapshot_id(r->name, in->shop_id, s->agent_id, in->period.label, in->final,
                     s->snapshot_id);
}

int eval_run(const struct eval_input *in, struct eval_output *out, char *err, size_t errlen)
{
    const struct rule *r = in ? in->rule : NULL;
    struct eval_snapshot *snaps;
    struct ranked *order = NULL;
    int *quota_grade = NULL, *g = NULL;
    size_t n = 0;
    int ret = -1;

    *out = (struct eval_output){0};
    if (!r || !in->shop_id || (in->nagents && !in->agents)) {
        snprintf(err, errlen, "cannot evaluate: no rule, shop or agents given");
        return -1;
    }
    for (size_t i = 0; i < in->nagents; i++) {
        if (!in->agents[i].agent_id) {
            snprintf(err, errlen, "cannot evaluate rule '%s': agent %zu has no agent_id", r->name,
                     i);
            return -1;
        }
    }
    quota_grade = xcalloc(r->nquotas, sizeof(*quota_grade));
    if (check_rule(r, quota_grade, err, errlen) != 0)
        goto out_free;

    snaps = xcalloc(in->nagents, sizeof(*snaps));
    out->snaps = snaps;
    out->n = in->nagents;

    /* Lines and score, then eligibility (which may use them). */
    for (size_t i = 0; i < in->nagents; i++) {
        struct eval_snapshot *s = &snaps[i];
        double raw;
        bool defined;

        snapshot_init(in, i, s);
        defined = score_lines(r, &in->agents[i].fig, s->lines, &raw);
        s->score = defined ? kpi_round(raw, 2) : NAN;
        if (r->eligible) {
            struct ctx c = {.in = in, .a = &in->agents[i], .s = s, .phase = PH_ELIGIBLE};
            s->eligible = expr_truthy(eval_expr(&c, r->eligible));
        } else {
            s->eligible = true;
        }
        s->scored = s->eligible && defined;
        if (!s->scored)
            s->score = NAN;
        else
            n++;
    }
    out->team_size = n > INT_MAX ? INT_MAX : (int)n;

    /* Ranks: equal rounded scores share a rank, from either end. */
    order = xcalloc(n, sizeof(*order));
    for (size_t i = 0, k = 0; i < in->nagents; i++) {
        snaps[i].team_size = out->team_size;
        if (snaps[i].scored)
            order[k++] = (struct ranked){.score = snaps[i].score,
                                         .inquiries = in->agents[i].fig.inquiries,
                                         .agent_id = snaps[i].agent_id,
                                         .idx = i};
    }
    qsort(order, n, sizeof(*order), ranked_cmp);
    for (size_t p = 0; p < n;) {
        size_t q = p;
        while (q + 1 < n && order[q + 1].score == order[p].score)
            q++;
        for (size_t k = p; k <= q; k++) {
            struct eval_snapshot *s = &snaps[order[k].idx];
            s->rank = (int)(p + 1);
            s->rank_bottom = (int)(n - q);
            s->percentile = n == 1 ? 100.0 : 100.0 * (double)(n - p - 1) / (double)(n - 1);
        }
        p = q + 1;
    }

    /* Grades: first match from the top; then quotas over the quota order. */
    g = xcalloc(n, sizeof(*g));
    for (size_t p = 0; p < n; p++) {
        struct eval_snapshot *s = &snaps[order[p].idx];
        struct ctx c = {.in = in, .a = &in->agents[order[p].idx], .s = s, .phase = PH_GRADE};
        g[p] = (int)r->ngrades;
        for (size_t k = 0; k < r->ngrades; k++) {
            const struct rule_grade *gr = &r->grades[k];
            if (gr->has_min && !(s->score >= gr->min))
                continue;
            if (gr->when && !expr_truthy(eval_expr(&c, gr->when)))
                continue;
            g[p] = (int)k;
            break;
        }
    }
    if (r->nquotas && r->ngrades && out->team_size >= r->quotas_min_team)
        apply_quotas(r, quota_grade, g, n);
    for (size_t p = 0; p < n; p++)
        snaps[order[p].idx].grade = g[p] < (int)r->ngrades ? r->grades[g[p]].name : NULL;

    /* Payouts, alerts and the records. */
    for (size_t i = 0; i < in->nagents; i++) {
        struct eval_snapshot *s = &snaps[i];
        if (s->scored)
            payouts_alerts(in, s);
        if (!s->eligible)
            continue;
        s->json = snapshot_json(in, s);
        if (!s->json) {
            snprintf(err, errlen, "cannot write the snapshot of agent '%s' for rule '%s'",
                     s->agent_id, r->name);
            goto out_free;
        }
    }
    ret = 0;

out_free:
    free(g);
    free(order);
    free(quota_grade);
    if (ret != 0)
        eval_output_release(out);
    return ret;
}

void eval_output_release(struct eval_output *out)
{
    if (!out)
        return;
    for (size_t i = 0; i < out->n && out->snaps; i++) {
        struct eval_snapshot *s = &out->snaps[i];
        free(s->lines);
        free(s->payout_names);
        free(s->payout_amounts);
        free(s->alert_names);
        free(s->alert_index);
        free(s->alert_values);
        free(s->streaks);
        free(s->json);
    }
    free(out->snaps);
    *out = (struct eval_output){0};
}

/* ---- alert records ---- */

static void fmt_value(struct buf *b, struct expr_value v)
{
    char t[40];

    if (!v.defined) {
        buf_adds(b, "n/a");
    } else if (v.type == EXPR_NUM) {
        kpi_format_double(kpi_round(v.num, 2), t, sizeof(t));
        buf_adds(b, t);
    } else if (v.type == EXPR_STR) {
        buf_adds(b, v.str ? v.str : "");
    } else {
        buf_adds(b, v.b ? "true" : "false");
    }
}

#define DEFAULT_SUMMARY "{{alert}} for agent {{agent}} in {{period}}: value {{value}}"

/* Expands {{agent}}, {{shop}}, {{rule}}, {{alert}}, {{value}} and every expression name
 * ({{score}}, {{period}}, {{grade}}, {{team.size}}...); numbers rounded to 2 decimals,
 * undefined values as "n/a". A placeholder that names nothing is kept as written. */
static void render_summary(struct buf *b, const char *tpl, const struct ctx *c, size_t alert)
{
    const struct rule_alert *al = &c->in->rule->alerts[alert];

    for (const char *p = tpl; *p;) {
        const char *open = strstr(p, "{{"), *close;
        if (!open || !(close = strstr(open + 2, "}}"))) {
            buf_adds(b, p);
            return;
        }
        buf_add(b, p, (size_t)(open - p));
        const char *k = open + 2, *e = close;
        while (k < e && (*k == ' ' || *k == '\t'))
            k++;
        while (e > k && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        char *key = xstrndup(k, (size_t)(e - k));
        bool known = true;
        if (strcmp(key, "agent") == 0)
            buf_adds(b, c->s->agent_id);
        else if (strcmp(key, "shop") == 0)
            buf_adds(b, c->in->shop_id);
        else if (strcmp(key, "rule") == 0)
            buf_adds(b, c->in->rule->name);
        else if (strcmp(key, "alert") == 0)
            buf_adds(b, al->name);
        else if (strcmp(key, "value") == 0)
            fmt_value(b, num_value(c->s->alert_values[alert]));
        else {
            struct expr_value v = resolve(c, key, &known);
            if (known)
                fmt_value(b, v);
            else
                buf_add(b, open, (size_t)(close + 2 - open));
        }
        free(key);
        p = close + 2;
    }
}

char *eval_alert_json(const struct eval_input *in, const struct eval_snapshot *s, size_t alert,
                      const char *state, int64_t starts_at_ms)
{
    const struct rule *r = in ? in->rule : NULL;
    struct ctx c;
    struct buf sum;
    char ts[40];
    struct jg j;

    if (!r || !s || alert >= r->nalerts || s->agent_index >= in->nagents || !state)
        return NULL;
    c = (struct ctx){.in = in, .a = &in->agents[s->agent_index], .s = s, .phase = PH_FINAL};
    buf_init(&sum);
    buf_addc(&sum, '\0');
    sum.len = 0;
    render_summary(&sum, r->alerts[alert].summary ? r->alerts[alert].summary : DEFAULT_SUMMARY, &c,
                   alert);
    buf_addc(&sum, '\0');
    if (j_init(&j) != 0) {
        buf_release(&sum);
        return NULL;
    }
    j_map_open(&j);
    j_str(&j, "rule");
    j_str(&j, r->name);
    j_str(&j, "alert");
    j_str(&j, r->alerts[alert].name);
    j_str(&j, "severity");
    j_str(&j, r->alerts[alert].severity ? r->alerts[alert].severity : "warning");
    j_str(&j, "shop_id");
    j_str(&j, in->shop_id);
    j_str(&j, "agent_id");
    j_str(&j, s->agent_id);
    j_str(&j, "period");
    j_str(&j, in->period.label);
    j_str(&j, "value");
    j_num(&j, s->alert_values[alert]);
    j_str(&j, "summary");
    j_str(&j, sum.data);
    j_str(&j, "state");
    j_str(&j, state);
    j_str(&j, "starts_at");
    period_format_rfc3339(starts_at_ms, ts, sizeof(ts));
    j_str(&j, ts);
    j_map_close(&j);
    buf_release(&sum);
    return j_finish(&j);
}
