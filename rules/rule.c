/* rule — rule files (rules.md) read with libyaml's document API into a struct rule.
 * Strict like config.c: unknown and duplicate keys, wrong types and bad values fail with
 * "file:line:column: message" (1-based; an expression error points at the offending byte
 * inside its scalar). Everything allocated hangs off the rule as soon as it exists, so
 * rule_destroy() frees a half-loaded rule on every error path. */
#include "rules/rule.h"
#include "common/file.h"
#include "common/utf8.h"
#include "common/buf.h"
#include "config/config.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <yaml.h>

#define MS_S INT64_C(1000)
#define MS_D (86400 * MS_S)

/* Largest rule file we read. */
#define RULE_FILE_MAX (1024 * 1024)
/* Largest `for:` streak a rule may ask for. */
#define RULE_FOR_MAX 1000
/* Most items in one list (shops, score, grades, payouts, alerts) and bands in one score
 * line. Loading checks names for duplicates pairwise and evaluation walks every item for
 * every agent, and a YAML alias repeats a node at no cost in bytes: without these bounds
 * a 1 MiB file could take minutes to load, or gigabytes to hold. */
#define RULE_LIST_MAX 1000
#define RULE_BANDS_MAX 100

#define COUNT_OF(a) (sizeof(a) / sizeof((a)[0]))

/* ---- the keys of each mapping, in the order messages list them ---- */

enum top_key {
    K_VERSION,
    K_NAME,
    K_PERIOD,
    K_INTERVAL,
    K_LATENESS,
    K_SHOPS,
    K_ELIGIBLE,
    K_ASSESSORS,
    K_SCORE,
    K_UNDEFINED,
    K_GRADES,
    K_QUOTAS,
    K_QUOTAS_MIN_TEAM,
    K_PAYOUTS,
    K_ALERTS,
    K_TOP_COUNT
};

static const char *const top_keys[K_TOP_COUNT] = {
    [K_VERSION] = "version",
    [K_NAME] = "name",
    [K_PERIOD] = "period",
    [K_INTERVAL] = "interval",
    [K_LATENESS] = "lateness",
    [K_SHOPS] = "shops",
    [K_ELIGIBLE] = "eligible",
    [K_ASSESSORS] = "assessors",
    [K_SCORE] = "score",
    [K_UNDEFINED] = "undefined",
    [K_GRADES] = "grades",
    [K_QUOTAS] = "quotas",
    [K_QUOTAS_MIN_TEAM] = "quotas_min_team",
    [K_PAYOUTS] = "payouts",
    [K_ALERTS] = "alerts",
};

enum score_key { S_KPI, S_WEIGHT, S_LINEAR, S_BANDS, S_COUNT };
static const char *const score_keys[S_COUNT] = {
    [S_KPI] = "kpi", [S_WEIGHT] = "weight", [S_LINEAR] = "linear", [S_BANDS] = "bands"};

enum linear_key { L_ZERO, L_FULL, L_COUNT };
static const char *const linear_keys[L_COUNT] = {[L_ZERO] = "zero", [L_FULL] = "full"};

enum band_key { B_MAX, B_SHARE, B_COUNT };
static const char *const band_keys[B_COUNT] = {[B_MAX] = "max", [B_SHARE] = "share"};

enum grade_key { G_NAME, G_MIN, G_WHEN, G_COUNT };
static const char *const grade_keys[G_COUNT] = {
    [G_NAME] = "name", [G_MIN] = "min", [G_WHEN] = "when"};

enum quota_key { Q_MAX, Q_MIN, Q_COUNT };
static const char *const quota_keys[Q_COUNT] = {[Q_MAX] = "max", [Q_MIN] = "min"};

enum payout_key { P_NAME, P_WHEN, P_AMOUNT, P_FOR, P_COUNT };
static const char *const payout_keys[P_COUNT] = {
    [P_NAME] = "name", [P_WHEN] = "when", [P_AMOUNT] = "amount", [P_FOR] = "for"};

enum alert_key { A_NAME, A_EXPR, A_SEVERITY, A_SUMMARY, A_FOR, A_LIVE, A_COUNT };
static const char *const alert_keys[A_COUNT] = {
    [A_NAME] = "name",       [A_EXPR] = "expr", [A_SEVERITY] = "severity",
    [A_SUMMARY] = "summary", [A_FOR] = "for",   [A_LIVE] = "live"};

static const char *const role_names[ROLE_COUNT] = {
    [ROLE_SELF] = "self", [ROLE_MANAGER] = "manager", [ROLE_INDIRECT_MANAGER] = "indirect_manager"};

/* Names an expression may use besides KPIs, review.*, points.*, team.* and prev.*. */
static const struct {
    const char *name;
    enum expr_type type;
} plain_names[] = {
    {.name = "score", .type = EXPR_NUM},      {.name = "grade", .type = EXPR_STR},
    {.name = "rank", .type = EXPR_NUM},       {.name = "rank_bottom", .type = EXPR_NUM},
    {.name = "percentile", .type = EXPR_NUM}, {.name = "period_index", .type = EXPR_NUM},
    {.name = "period", .type = EXPR_STR},     {.name = "eligible", .type = EXPR_BOOL},
    {.name = "team.size", .type = EXPR_NUM},
};

/* Placeholders a summary may use besides expression names. */
static const char *const summary_names[] = {"agent", "shop", "period", "rule", "alert", "value"};

static const char *const type_names[] = {
    [EXPR_NUM] = "number", [EXPR_STR] = "string", [EXPR_BOOL] = "bool"};

/* ---- names ---- */

static bool is_ident(const char *s, size_t n)
{
    if (n == 0 || !(isalpha((unsigned char)s[0]) || s[0] == '_'))
        return false;
    for (size_t i = 1; i < n; i++)
        if (!(isalnum((unsigned char)s[i]) || s[i] == '_'))
            return false;
    return true;
}

/* "review.<item>" or "review.<item>.<role>"; s starts after "review.". */
static bool review_name_ok(const char *s)
{
    const char *dot = strchr(s, '.');
    if (dot == NULL)
        return is_ident(s, strlen(s));
    if (!is_ident(s, (size_t)(dot - s)))
        return false;
    for (int i = 0; i < ROLE_COUNT; i++)
        if (strcmp(dot + 1, role_names[i]) == 0)
            return true;
    return false;
}

/* A KPI a score line (and points.<kpi>) may name. */
static bool score_kpi_ok(const char *s)
{
    if (kpi_lookup(s, NULL) == 0)
        return true;
    return strncmp(s, "review.", 7) == 0 && review_name_ok(s + 7);
}

static bool scores_kpi(const struct rule *r, const char *kpi)
{
    for (size_t i = 0; r && i < r->nscore; i++)
        if (r->score[i].kpi && strcmp(r->score[i].kpi, kpi) == 0)
            return true;
    return false;
}

/* Every name but prev.* */
static int base_name_type(const struct rule *r, const char *name, enum expr_type *type)
{
    for (size_t i = 0; i < COUNT_OF(plain_names); i++)
        if (strcmp(name, plain_names[i].name) == 0) {
            *type = plain_names[i].type;
            return 0;
        }
    *type = EXPR_NUM;
    if (kpi_lookup(name, NULL) == 0)
        return 0;
    if (strncmp(name, "review.", 7) == 0 && review_name_ok(name + 7))
        return 0;
    if (strncmp(name, "team.", 5) == 0 && kpi_lookup(name + 5, NULL) == 0)
        return 0;
    if (strncmp(name, "points.", 7) == 0 && scores_kpi(r, name + 7))
        return 0;
    return -1;
}

int rule_name_type(const struct rule *r, const char *name, enum expr_type *type)
{
    enum expr_type t;
    if (name == NULL)
        return -1;
    if (strncmp(name, "prev.", 5) == 0)
        name += 5;
    if (base_name_type(r, name, &t) != 0)
        return -1;
    if (type)
        *type = t;
    return 0;
}

/* ---- did you mean ---- */

/* Optimal string alignment distance (a swap of two letters counts 1); big for long words. */
static size_t edit_distance(const char *a, const char *b)
{
    enum { MAXW = 64 };
    size_t n = strlen(a), m = strlen(b);
    size_t d[MAXW + 1][MAXW + 1];
    if (n > MAXW || m > MAXW)
        return SIZE_MAX;
    for (size_t i = 0; i <= n; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= m; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= n; i++)
        for (size_t j = 1; j <= m; j++) {
            size_t cost = a[i - 1] != b[j - 1];
            size_t v = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < v)
                v = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + cost < v)
                v = d[i - 1][j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < v)
                v = d[i - 2][j - 2] + 1;
            d[i][j] = v;
        }
    return d[n][m];
}

struct suggest {
    const char *word;
    size_t best_d;
    char best[128];
};

static void suggest_init(struct suggest *s, const char *word)
{
    s->word = word;
    s->best_d = SIZE_MAX;
    s->best[0] = '\0';
}

static void suggest_try(struct suggest *s, const char *prefix, const char *cand)
{
    char full[128];
    snprintf(full, sizeof(full), "%s%s", prefix, cand);
    size_t d = edit_distance(s->word, full);
    size_t wlen = strlen(s->word);
    size_t limit = wlen >= 6 ? 2 : wlen >= 3 ? 1 : 0;
    if (d > 0 && d <= limit && d < s->best_d) {
        s->best_d = d;
        snprintf(s->best, sizeof(s->best), "%s", full);
    }
}

static void suggest_kpis(struct suggest *s, const char *prefix)
{
    for (int i = 0; i < KPI_COUNT_ALL; i++)
        suggest_try(s, prefix, kpi_name((enum kpi_id)i));
}

/* " (did you mean 'score'?)" for an unknown expression name, or a hint; "" otherwise. */
static void name_hint(const struct rule *r, const char *name, char *out, size_t n)
{
    struct suggest s;
    const char *prefix = strncmp(name, "prev.", 5) == 0 ? "prev." : "";
    const char *base = name + strlen(prefix);

    out[0] = '\0';
    if (strncmp(base, "points.", 7) == 0 && score_kpi_ok(base + 7)) {
        snprintf(out, n, " (no score line scores '%s')", base + 7);
        return;
    }
    if (strncmp(base, "prev.", 5) == 0) {
        snprintf(out, n, " (prev.prev is not kept)");
        return;
    }
    suggest_init(&s, name);
    for (size_t i = 0; i < COUNT_OF(plain_names); i++)
        suggest_try(&s, prefix, plain_names[i].name);
    char team[16];
    snprintf(team, sizeof(team), "%steam.", prefix);
    suggest_kpis(&s, prefix);
    suggest_kpis(&s, team);
    for (size_t i = 0; r && i < r->nscore; i++) {
        char points[16];
        snprintf(points, sizeof(points), "%spoints.", prefix);
        suggest_try(&s, points, r->score[i].kpi);
    }
    if (s.best[0])
        snprintf(out, n, " (did you mean '%s'?)", s.best);
}

/* ---- loading: messages and positions ---- */

struct loader {
    const char *path;
    const char *text; /* the file's bytes, for positions inside scalars */
    size_t len;
    yaml_document_t *doc;
    struct rule *r;
    char *err;
    size_t errlen;
    yaml_mark_t name_mark; /* of the `name:` value, for rule_set_load_dir */
};

__attribute__((format(printf, 3, 4))) static int fail_at(struct loader *l, yaml_mark_t mark,
                                                         const char *fmt, ...)
{
    va_list ap;
    int n = snprintf(l->err, l->errlen, "%s:%zu:%zu: ", l->path, mark.line + 1, mark.column + 1);
    if (n >= 0 && (size_t)n < l->errlen) {
        va_start(ap, fmt);
        vsnprintf(l->err + n, l->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static yaml_node_t *node(const struct loader *l, int index)
{
    return yaml_document_get_node(l->doc, index);
}

static const char *scalar(const yaml_node_t *n)
{
    return (const char *)n->data.scalar.value;
}

/* Length of the line break at t[i] (\n, \r\n, \r, NEL, LS, PS, as libyaml counts lines). */
static size_t break_len(const char *t, size_t len, size_t i)
{
    const unsigned char *u = (const unsigned char *)t;
    if (i >= len)
        return 0;
    if (u[i] == '\n')
        return 1;
    if (u[i] == '\r')
        return i + 1 < len && u[i + 1] == '\n' ? 2 : 1;
    if (u[i] == 0xC2 && i + 1 < len && u[i + 1] == 0x85)
        return 2;
    if (u[i] == 0xE2 && i + 2 < len && u[i + 1] == 0x80 && (u[i + 2] == 0xA8 || u[i + 2] == 0xA9))
        return 3;
    return 0;
}

static size_t utf8_width(unsigned char c)
{
    return c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
}

/* Byte offset of a mark (line, column in characters) in the file's bytes. */
static size_t offset_of_mark(const struct loader *l, yaml_mark_t m)
{
    const char *t = l->text;
    size_t i = 0, line = 0;
    if (l->len >= 3 && memcmp(t, "\xEF\xBB\xBF", 3) == 0) /* a BOM is not a column */
        i = 3;
    while (i < l->len && line < m.line) {
        size_t b = break_len(t, l->len, i);
        if (b) {
            line++;
            i += b;
        } else {
            i++;
        }
    }
    for (size_t c = 0; c < m.column && i < l->len; c++)
        i += utf8_width((unsigned char)t[i]);
    return i < l->len ? i : l->len;
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* Bytes a double-quoted escape at t[i] ('\\') takes in the source (*src) and the value. */
static size_t escape_width(const char *t, size_t len, size_t i, size_t *src)
{
    static const char one[] = "0abt\tnvfre \"/\\";
    if (i + 1 >= len) {
        *src = 1;
        return 0;
    }
    char c = t[i + 1];
    size_t digits = c == 'x' ? 2 : c == 'u' ? 4 : c == 'U' ? 8 : 0;
    *src = 2;
    if (digits == 0) {
        if (c == 'N' || c == '_')
            return 2;
        if (c == 'L' || c == 'P')
            return 3;
        return strchr(one, c) ? 1 : 0;
    }
    unsigned long cp = 0;
    for (size_t k = 0; k < digits && i + 2 + k < len && isxdigit((unsigned char)t[i + 2 + k]);
         k++) {
        char h = t[i + 2 + k];
        cp = cp * 16 + (unsigned long)(isdigit((unsigned char)h) ? h - '0' : (h | 0x20) - 'a' + 10);
        (*src)++;
    }
    return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
}

/* The position of byte `off` of a literal block scalar's value: its lines are the source
 * lines after the indicator, less the block's indentation. */
static yaml_mark_t locate_literal(const struct loader *l, const yaml_node_t *n, size_t off)
{
    yaml_mark_t m = n->start_mark;
    const char *v = scalar(n);
    size_t k = 0, col = 0, indent = 0;

    for (size_t i = 0; i < off && v[i]; i++) {
        if (v[i] == '\n') {
            k++;
            col = 0;
        } else if (((unsigned char)v[i] & 0xC0) != 0x80) {
            col++;
        }
    }
    /* The indentation: that of the first source line with content. */
    size_t s = offset_of_mark(l, (yaml_mark_t){.line = m.line + 1});
    while (s < l->len) {
        size_t sp = 0;
        while (s + sp < l->len && l->text[s + sp] == ' ')
            sp++;
        size_t b = break_len(l->text, l->len, s + sp);
        if (b == 0) {
            indent = sp;
            break;
        }
        s += sp + b;
    }
    m.line += 1 + k;
    m.column = indent + col;
    return m;
}

/* The position in the file of byte `off` of a scalar's value: exact for plain and quoted
 * scalars (escapes, '' and line folding included) and literal blocks; a folded block
 * gives its start. */
static yaml_mark_t locate(const struct loader *l, const yaml_node_t *n, size_t off)
{
    yaml_scalar_style_t style = n->data.scalar.style;
    yaml_mark_t m = n->start_mark;
    const char *t = l->text;
    size_t len = l->len;
    char quote = style == YAML_SINGLE_QUOTED_SCALAR_STYLE   ? '\''
                 : style == YAML_DOUBLE_QUOTED_SCALAR_STYLE ? '"'
                                                            : 0;

    if (style == YAML_LITERAL_SCALAR_STYLE)
        return locate_literal(l, n, off);
    if (style != YAML_PLAIN_SCALAR_STYLE && quote == 0)
        return m;
    size_t s = offset_of_mark(l, m), v = 0;
    if (quote) {
        if (s >= len || t[s] != quote)
            return m;
        s++;
        m.column++;
    }
    while (s < len) {
        char c = t[s];
        if (quote == '"' && c == '\\' && break_len(t, len, s + 1)) {
            /* An escaped line break: nothing in the value, nor the next line's blanks. */
            s += 1 + break_len(t, len, s + 1);
            m.line++;
            m.column = 0;
            while (s < len && is_blank(t[s])) {
                s++;
                m.column++;
            }
            continue;
        }
        if (v >= off)
            break;
        if (quote && c == quote && !(quote == '\'' && s + 1 < len && t[s + 1] == '\''))
            break;
        size_t e = s;
        while (e < len && is_blank(t[e]))
            e++;
        if (break_len(t, len, e)) {
            /* Folding: blanks before the break go; one break is a space, each further
             * (blank) line a newline; the next line's leading blanks go. */
            size_t breaks = 0;
            s = e;
            for (;;) {
                size_t b = break_len(t, len, s);
                if (b == 0)
                    break;
                s += b;
                breaks++;
                m.line++;
                m.column = 0;
                while (s < len && is_blank(t[s])) {
                    s++;
                    m.column++;
                }
            }
            v += breaks == 1 ? 1 : breaks - 1;
            continue;
        }
        if (quote == '\'' && c == '\'') { /* '' is one quote */
            s += 2;
            m.column += 2;
            v++;
            continue;
        }
        if (quote == '"' && c == '\\') {
            size_t src;
            size_t w = escape_width(t, len, s, &src);
            if (v + w > off)
                break;
            s += src;
            m.column += src;
            v += w;
            continue;
        }
        size_t w = utf8_width((unsigned char)c);
        s += w;
        v += w;
        m.column++;
    }
    return m;
}

/* ---- loading: values ---- */

/* A plain ~, null or empty scalar: YAML's null. */
static bool is_null(const yaml_node_t *n)
{
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL"};
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    for (size_t i = 0; i < COUNT_OF(nulls); i++)
        if (strcmp(scalar(n), nulls[i]) == 0)
            return true;
    return false;
}

static bool is_plain(const yaml_node_t *n)
{
    return n->type == YAML_SCALAR_NODE && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
}

/* A scalar usable as a C string (libyaml lets "\0" through double quotes). */
static int get_string(struct loader *l, const yaml_node_t *n, const char *what, const char **out)
{
    if (n->type != YAML_SCALAR_NODE || is_null(n))
        return fail_at(l, n->start_mark, "'%s' must be a string", what);
    if (strlen(scalar(n)) != n->data.scalar.length)
        return fail_at(l, n->start_mark, "'%s' must not contain a NUL character", what);
    *out = scalar(n);
    return 0;
}

/* Names of rules, grades, payouts and alerts: [A-Za-z0-9_.-]+ */
static int get_name(struct loader *l, const yaml_node_t *n, const char *what, const char **out)
{
    if (get_string(l, n, what, out) != 0)
        return -1;
    if (**out == '\0')
        return fail_at(l, n->start_mark, "'%s' must not be empty", what);
    for (const char *p = *out; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '_' && *p != '.' && *p != '-')
            return fail_at(l, n->start_mark,
                           "'%s' may only hold letters, digits, '_', '.' and '-': '%s'", what,
                           *out);
    return 0;
}

/* YAML 1.2 core numbers, decimal only: [-+]?(digits[.digits]|.digits)([eE][-+]?digits)? */
static int parse_number(const char *text, double *out)
{
    const char *p = text;
    bool digits = false;
    if (*p == '-' || *p == '+')
        p++;
    while (isdigit((unsigned char)*p)) {
        p++;
        digits = true;
    }
    if (*p == '.')
        for (p++; isdigit((unsigned char)*p); p++)
            digits = true;
    if (!digits)
        return -1;
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '-' || *p == '+')
            p++;
        if (!isdigit((unsigned char)*p))
            return -1;
        while (isdigit((unsigned char)*p))
            p++;
    }
    if (*p != '\0')
        return -1;
    char *end;
    double v = strtod(text, &end);
    if (end != p || !isfinite(v))
        return -1;
    *out = v;
    return 0;
}

static int get_number(struct loader *l, const yaml_node_t *n, const char *what, double *out)
{
    if (!is_plain(n) || parse_number(scalar(n), out) != 0)
        return fail_at(l, n->start_mark, "'%s' must be a number", what);
    return 0;
}

/* A number in [lo, hi]. */
static int get_number_in(struct loader *l, const yaml_node_t *n, const char *what, double lo,
                         double hi, double *out)
{
    if (get_number(l, n, what, out) != 0)
        return -1;
    if (*out < lo || *out > hi) {
        if (isinf(hi))
            return fail_at(l, n->start_mark, "'%s' must be at least %g", what, lo);
        return fail_at(l, n->start_mark, "'%s' must be between %g and %g", what, lo, hi);
    }
    return 0;
}

/* A decimal integer in [lo, hi]. */
static int get_int(struct loader *l, const yaml_node_t *n, const char *what, long lo, long hi,
                   long *out)
{
    const char *s = is_plain(n) ? scalar(n) : "";
    const char *p = s[0] == '-' ? s + 1 : s;
    if (!isdigit((unsigned char)*p))
        return fail_at(l, n->start_mark, "'%s' must be an integer", what);
    errno = 0;
    char *end;
    long v = strtol(s, &end, 10);
    if (*end != '\0')
        return fail_at(l, n->start_mark, "'%s' must be an integer", what);
    if (errno == ERANGE || v < lo || v > hi)
        return fail_at(l, n->start_mark, "'%s' must be between %ld and %ld", what, lo, hi);
    *out = v;
    return 0;
}

static int get_bool(struct loader *l, const yaml_node_t *n, const char *what, bool *out)
{
    static const char *const trues[] = {"true", "True", "TRUE"};
    static const char *const falses[] = {"false", "False", "FALSE"};
    for (size_t i = 0; is_plain(n) && i < COUNT_OF(trues); i++) {
        if (strcmp(scalar(n), trues[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcmp(scalar(n), falses[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return fail_at(l, n->start_mark, "'%s' must be true or false", what);
}

static int get_duration(struct loader *l, const yaml_node_t *n, const char *what, int64_t *ms)
{
    if (!is_plain(n) || config_parse_duration(scalar(n), ms) != 0)
        return fail_at(l, n->start_mark, "'%s' must be a duration like 10m, 30s, 72h", what);
    if (*ms > 366 * MS_D)
        return fail_at(l, n->start_mark, "'%s' must be at most 366d", what);
    return 0;
}

/* ---- loading: mappings ---- */

/* The key of one pair is a scalar without NUL, not seen before in the mapping. */
static int check_pair_key(struct loader *l, const yaml_node_t *map, const yaml_node_pair_t *pair,
                          const char *under)
{
    const yaml_node_t *k = node(l, pair->key);
    if (k->type != YAML_SCALAR_NODE && under)
        return fail_at(l, k->start_mark, "keys under '%s' must be strings", under);
    if (k->type != YAML_SCALAR_NODE)
        return fail_at(l, k->start_mark, "keys must be strings");
    if (strlen(scalar(k)) != k->data.scalar.length)
        return fail_at(l, k->start_mark, "key '%s' must not contain a NUL character", scalar(k));
    for (const yaml_node_pair_t *q = map->data.mapping.pairs.start; q < pair; q++) {
        const yaml_node_t *o = node(l, q->key);
        if (o->type == YAML_SCALAR_NODE && strcmp(scalar(o), scalar(k)) == 0)
            return fail_at(l, k->start_mark, "duplicate key '%s'", scalar(k));
    }
    return 0;
}

struct field {
    const yaml_node_t *key; /* NULL when absent */
    const yaml_node_t *value;
};

/* Reads a mapping whose keys are `names` (under: the mapping's name in messages, NULL at
 * the top) into out[], indexed like names. */
static int read_fields(struct loader *l, const yaml_node_t *map, const char *under,
                       const char *const *names, size_t n, struct field *out)
{
    memset(out, 0, n * sizeof(*out));
    for (const yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        if (check_pair_key(l, map, p, under) != 0)
            return -1;
        const yaml_node_t *k = node(l, p->key);
        size_t i = 0;
        while (i < n && strcmp(names[i], scalar(k)) != 0)
            i++;
        if (i == n) {
            struct buf valid;
            buf_init(&valid);
            for (size_t j = 0; j < n; j++)
                buf_printf(&valid, "%s%s", j ? ", " : "", names[j]);
            if (under)
                fail_at(l, k->start_mark, "unknown key '%s' (valid keys under '%s': %s)", scalar(k),
                        under, valid.data);
            else
                fail_at(l, k->start_mark, "unknown key '%s' (valid keys: %s)", scalar(k),
                        valid.data);
            buf_release(&valid);
            return -1;
        }
        out[i].key = k;
        out[i].value = node(l, p->value);
    }
    return 0;
}

static int need(struct loader *l, const yaml_node_t *map, const struct field *f, const char *name,
                const char *under)
{
    if (f->value)
        return 0;
    if (under)
        return fail_at(l, map->start_mark, "missing key '%s' under '%s'", name, under);
    return fail_at(l, map->start_mark, "missing key '%s'", name);
}

static size_t list_len(const yaml_node_t *n)
{
    return (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
}

/* Fails when a list n named `what` has more than max items. */
static int check_list_len(struct loader *l, const yaml_node_t *n, const char *what, size_t max)
{
    if (list_len(n) > max)
        return fail_at(l, n->start_mark, "'%s' has %zu items; at most %zu are allowed", what,
                       list_len(n), max);
    return 0;
}

/* A list of mappings: `what` names it ("score"), `example` shows one item. */
static int get_list(struct loader *l, const yaml_node_t *n, const char *what, const char *example)
{
    if (n->type != YAML_SEQUENCE_NODE)
        return fail_at(l, n->start_mark, "'%s' must be a list of mappings like %s", what, example);
    if (check_list_len(l, n, what, RULE_LIST_MAX) != 0)
        return -1;
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++)
        if (node(l, *it)->type != YAML_MAPPING_NODE)
            return fail_at(l, node(l, *it)->start_mark, "'%s' items must be mappings like %s", what,
                           example);
    return 0;
}

static const yaml_node_t *list_item(const struct loader *l, const yaml_node_t *n, size_t i)
{
    return node(l, n->data.sequence.items.start[i]);
}

/* ---- loading: expressions ---- */

/* Where an expression stands decides which names it may use. */
enum expr_ctx { CTX_ANY, CTX_ELIGIBLE, CTX_GRADE };

struct name_check {
    const struct rule *r;
    enum expr_ctx ctx;
    char bad[128]; /* a known name refused in this context */
    const char *why;
};

static const char *refused(enum expr_ctx ctx, const char *name)
{
    static const char *const after_eligible[] = {"score",       "grade",      "rank",
                                                 "rank_bottom", "percentile", "team.size"};
    static const char *const after_grades[] = {"rank", "rank_bottom", "percentile"};
    switch (ctx) {
    case CTX_ELIGIBLE:
        if (strcmp(name, "eligible") == 0)
            return "that is what it decides";
        if (strncmp(name, "points.", 7) == 0)
            return "it is computed from eligible agents";
        for (size_t i = 0; i < COUNT_OF(after_eligible); i++)
            if (strcmp(name, after_eligible[i]) == 0)
                return "it is computed from eligible agents";
        return NULL;
    case CTX_GRADE:
        if (strcmp(name, "grade") == 0)
            return "that is what it decides";
        for (size_t i = 0; i < COUNT_OF(after_grades); i++)
            if (strcmp(name, after_grades[i]) == 0)
                return "grades are decided before ranks";
        return NULL;
    case CTX_ANY:
        break;
    }
    return NULL;
}

static int check_name(void *ud, const char *name, enum expr_type *type)
{
    struct name_check *c = ud;
    if (rule_name_type(c->r, name, type) != 0)
        return -1;
    const char *why = refused(c->ctx, name);
    if (why) {
        snprintf(c->bad, sizeof(c->bad), "%s", name);
        c->why = why;
        return -1;
    }
    return 0;
}

/* Parses the expression in scalar n; `what` names it in messages, `want` is its type. */
static int compile(struct loader *l, const yaml_node_t *n, const char *what, enum expr_ctx ctx,
                   enum expr_type want, struct expr **out)
{
    struct name_check check = {.r = l->r, .ctx = ctx};
    char msg[512], hint[160] = "";
    size_t off = 0;
    enum expr_type type = EXPR_NUM;
    const char *src;

    if (n->type != YAML_SCALAR_NODE || is_null(n))
        return fail_at(l, n->start_mark, "'%s' must be an expression", what);
    if (get_string(l, n, what, &src) != 0)
        return -1;
    msg[0] = '\0';
    *out = expr_parse(src, check_name, &check, &type, msg, sizeof(msg), &off);
    if (*out == NULL) {
        yaml_mark_t at = locate(l, n, off < strlen(src) ? off : strlen(src));
        /* The parse stops at its first error, so a refused name is that error. */
        if (check.bad[0] && strncmp(msg, "unknown name '", 14) == 0)
            return fail_at(l, at, "'%s' cannot use '%s': %s", what, check.bad, check.why);
        if (strncmp(msg, "unknown name '", 14) == 0) {
            char name[128];
            size_t len = strcspn(msg + 14, "'");
            snprintf(name, sizeof(name), "%.*s", (int)len, msg + 14);
            if (msg[14 + len] == '\'' && msg[15 + len] == '\0')
                name_hint(l->r, name, hint, sizeof(hint));
        }
        return fail_at(l, at, "%s%s", msg[0] ? msg : "invalid expression", hint);
    }
    if (type != want) {
        expr_destroy(*out);
        *out = NULL;
        return fail_at(l, n->start_mark, "'%s' must be a %s expression, got a %s", what,
                       type_names[want], type_names[type]);
    }
    return 0;
}

/* {{name}} placeholders (blanks around the name allowed): expression names or
 * summary_names. */
static int check_summary(struct loader *l, const yaml_node_t *n, const char *s)
{
    for (const char *p = strstr(s, "{{"); p; p = strstr(p, "{{")) {
        const char *q = strstr(p + 2, "}}");
        if (q == NULL)
            return fail_at(l, locate(l, n, (size_t)(p - s)), "unterminated '{{' in 'summary'");
        const char *k = p + 2, *e = q;
        while (k < e && is_blank(*k))
            k++;
        while (e > k && is_blank(e[-1]))
            e--;
        size_t len = (size_t)(e - k);
        bool ok = len > 0 && len < 128;
        for (size_t i = 0; ok && i < len; i++)
            ok = isalnum((unsigned char)k[i]) || k[i] == '_' || k[i] == '.';
        if (!ok)
            return fail_at(l, locate(l, n, (size_t)(p - s)),
                           "bad placeholder '%.*s' in 'summary' (write {{name}})",
                           (int)(q + 2 - p < 200 ? q + 2 - p : 200), p);
        char name[128];
        snprintf(name, sizeof(name), "%.*s", (int)len, k);
        bool known = rule_name_type(l->r, name, NULL) == 0;
        for (size_t i = 0; !known && i < COUNT_OF(summary_names); i++)
            known = strcmp(name, summary_names[i]) == 0;
        if (!known) {
            char hint[160];
            struct suggest sg;
            suggest_init(&sg, name);
            for (size_t i = 0; i < COUNT_OF(summary_names); i++)
                suggest_try(&sg, "", summary_names[i]);
            if (sg.best[0])
                snprintf(hint, sizeof(hint), " (did you mean '%s'?)", sg.best);
            else
                name_hint(l->r, name, hint, sizeof(hint));
            return fail_at(l, locate(l, n, (size_t)(k - s)), "unknown name '%s' in 'summary'%s",
                           name, hint);
        }
        p = q + 2;
    }
    return 0;
}

/* ---- loading: the sections ---- */

static int load_version(struct loader *l, const yaml_node_t *v)
{
    long n;
    if (!is_plain(v) || get_int(l, v, "version", 0, 1000000, &n) != 0)
        return fail_at(l, v->start_mark, "'version' must be 1");
    if (n != 1)
        return fail_at(l, v->start_mark, "unsupported version %ld (this csmetrics reads version 1)",
                       n);
    return 0;
}

static int load_shops(struct loader *l, const yaml_node_t *v)
{
    struct rule *r = l->r;
    if (v->type != YAML_SEQUENCE_NODE)
        return fail_at(l, v->start_mark, "'shops' must be a list of shop ids like [\"*\"]");
    size_t n = list_len(v);
    if (n == 0)
        return fail_at(l, v->start_mark, "'shops' must not be empty (use [\"*\"] for every shop)");
    if (check_list_len(l, v, "shops", RULE_LIST_MAX) != 0)
        return -1;
    r->shops = xcalloc(n, sizeof(*r->shops));
    for (size_t i = 0; i < n; i++) {
        const yaml_node_t *item = list_item(l, v, i);
        const char *s;
        if (get_string(l, item, "shops", &s) != 0)
            return -1;
        if (*s == '\0')
            return fail_at(l, item->start_mark, "'shops' items must not be empty");
        for (size_t j = 0; j < r->nshops; j++)
            if (strcmp(r->shops[j], s) == 0)
                return fail_at(l, item->start_mark, "'shops' lists '%s' twice", s);
        r->shops[r->nshops++] = xstrdup(s);
    }
    return 0;
}

static int load_assessors(struct loader *l, const yaml_node_t *v)
{
    struct rule *r = l->r;
    bool any = false;
    if (v->type != YAML_MAPPING_NODE)
        return fail_at(l, v->start_mark,
                       "'assessors' must be a mapping of role to weight like {self: 0.3, "
                       "manager: 0.7}");
    for (int i = 0; i < ROLE_COUNT; i++)
        r->has_assessor[i] = false;
    for (const yaml_node_pair_t *p = v->data.mapping.pairs.start; p < v->data.mapping.pairs.top;
         p++) {
        if (check_pair_key(l, v, p, "assessors") != 0)
            return -1;
        const yaml_node_t *k = node(l, p->key);
        int role = 0;
        while (role < ROLE_COUNT && strcmp(role_names[role], scalar(k)) != 0)
            role++;
        if (role == ROLE_COUNT)
            return fail_at(l, k->start_mark,
                           "unknown role '%s' in 'assessors' (valid roles: self, manager, "
                           "indirect_manager)",
                           scalar(k));
        if (get_number_in(l, node(l, p->value), scalar(k), 0, INFINITY, &r->assessor[role]) != 0)
            return -1;
        r->has_assessor[role] = true;
        any = any || r->assessor[role] > 0;
    }
    if (!any)
        return fail_at(l, v->start_mark, "'assessors' needs a role with a weight above 0");
    return 0;
}

static int load_linear(struct loader *l, struct rule_score_line *line, const yaml_node_t *v)
{
    struct field f[L_COUNT];
    if (v->type != YAML_MAPPING_NODE)
        return fail_at(l, v->start_mark, "'linear' must be a mapping like {zero: 0, full: 1}");
    if (read_fields(l, v, "linear", linear_keys, L_COUNT, f) != 0)
        return -1;
    for (int i = 0; i < L_COUNT; i++)
        if (need(l, v, &f[i], linear_keys[i], "linear") != 0)
            return -1;
    if (get_number(l, f[L_ZERO].value, "zero", &line->zero) != 0 ||
        get_number(l, f[L_FULL].value, "full", &line->full) != 0)
        return -1;
    if (line->zero == line->full)
        return fail_at(l, f[L_FULL].value->start_mark, "'full' must differ from 'zero'");
    line->map = RULE_MAP_LINEAR;
    return 0;
}

static int load_bands(struct loader *l, struct rule_score_line *line, const yaml_node_t *v)
{
    if (get_list(l, v, "bands", "{max: 30, share: 1.0}") != 0 ||
        check_list_len(l, v, "bands", RULE_BANDS_MAX) != 0)
        return -1;
    size_t n = list_len(v);
    if (n == 0)
        return fail_at(l, v->start_mark, "'bands' must not be empty");
    line->bands = xcalloc(n, sizeof(*line->bands));
    line->map = RULE_MAP_BANDS;
    for (size_t i = 0; i < n; i++) {
        const yaml_node_t *item = list_item(l, v, i);
        struct rule_band *b = &line->bands[line->nbands++];
        struct field f[B_COUNT];
        if (read_fields(l, item, "bands", band_keys, B_COUNT, f) != 0 ||
            need(l, item, &f[B_SHARE], "share", "bands") != 0)
            return -1;
        if (get_number_in(l, f[B_SHARE].value, "share", 0, 1, &b->share) != 0)
            return -1;
        if (f[B_MAX].value == NULL) {
            if (i + 1 < n)
                return fail_at(l, item->start_mark, "only the last band may leave out 'max'");
            continue;
        }
        if (get_number(l, f[B_MAX].value, "max", &b->max) != 0)
            return -1;
        b->has_max = true;
        if (i > 0 && b->max <= b[-1].max)
            return fail_at(l, f[B_MAX].value->start_mark,
                           "'max' must go up from band to band: %g is not above %g", b->max,
                           b[-1].max);
    }
    return 0;
}

/* The message for a score line's KPI that is none, with a guess. */
static int bad_score_kpi(struct loader *l, const yaml_node_t *n, const char *kpi)
{
    struct suggest s;
    const char *dot = strchr(kpi, '.');

    if (strncmp(kpi, "review.", 7) == 0)
        return fail_at(l, n->start_mark,
                       "bad review KPI '%s' (write review.<item> or review.<item>.<role> with "
                       "role self, manager or indirect_manager)",
                       kpi);
    suggest_init(&s, kpi);
    suggest_kpis(&s, "");
    if (s.best[0] == '\0' && dot && dot - kpi < 16) { /* "revew.total": a misspelt review */
        char head[16];
        snprintf(head, sizeof(head), "%.*s", (int)(dot - kpi), kpi);
        if (edit_distance(head, "review") <= 2) {
            snprintf(s.best, sizeof(s.best), "review%.120s", dot);
            if (!score_kpi_ok(s.best))
                s.best[0] = '\0';
        }
    }
    if (s.best[0])
        return fail_at(l, n->start_mark, "unknown KPI '%s' (did you mean '%s'?)", kpi, s.best);
    return fail_at(l, n->start_mark, "unknown KPI '%s'", kpi);
}

static int load_score(struct loader *l, const yaml_node_t *v)
{
    struct rule *r = l->r;
    if (get_list(l, v, "score", "{kpi: reply_rate, weight: 5}") != 0)
        return -1;
    size_t n = list_len(v);
    r->score = xcalloc(n ? n : 1, sizeof(*r->score));
    for (size_t i = 0; i < n; i++) {
        const yaml_node_t *item = list_item(l, v, i);
        struct rule_score_line *line = &r->score[r->nscore];
        struct field f[S_COUNT];
        const char *kpi;
        if (read_fields(l, item, "score", score_keys, S_COUNT, f) != 0 ||
            need(l, item, &f[S_KPI], "kpi", "score") != 0 ||
            need(l, item, &f[S_WEIGHT], "weight", "score") != 0 ||
            get_string(l, f[S_KPI].value, "kpi", &kpi) != 0)
            return -1;
        if (!score_kpi_ok(kpi))
            return bad_score_kpi(l, f[S_KPI].value, kpi);
        if (scores_kpi(r, kpi))
            return fail_at(l, f[S_KPI].value->start_mark, "KPI '%s' is scored twice", kpi);
        line->kpi = xstrdup(kpi);
        r->nscore++;
        if (get_number_in(l, f[S_WEIGHT].value, "weight", 0, INFINITY, &line->weight) != 0)
            return -1;
        if (f[S_LINEAR].value && f[S_BANDS].value) {
            const yaml_node_t *second =
                f[S_LINEAR].key->start_mark.index > f[S_BANDS].key->start_mark.index
                    ? f[S_LINEAR].key
                    : f[S_BANDS].key;
            return fail_at(l, second->start_mark, "a score line has 'linear' or 'bands', not both");
        }
        if (f[S_LINEAR].value && load_linear(l, line, f[S_LINEAR].value) != 0)
            return -1;
        if (f[S_BANDS].value && load_bands(l, line, f[S_BANDS].value) != 0)
            return -1;
    }
    return 0;
}

static int load_undefined(struct loader *l, const yaml_node_t *v)
{
    if (is_plain(v) && strcmp(scalar(v), "zero") == 0)
        l->r->undefined_skip = false;
    else if (is_plain(v) && strcmp(scalar(v), "skip") == 0)
        l->r->undefined_skip = true;
    else
        return fail_at(l, v->start_mark, "'undefined' must be zero or skip");
    return 0;
}

static int load_grades(struct loader *l, const yaml_node_t *v)
{
    struct rule *r = l->r;
    if (get_list(l, v, "grades", "{name: excellent, min: 85}") != 0)
        return -1;
    size_t n = list_len(v);
    r->grades = xcalloc(n ? n : 1, sizeof(*r->grades));
    for (size_t i = 0; i < n; i++) {
        const yaml_node_t *item = list_item(l, v, i);
        struct rule_grade *g = &r->grades[r->ngrades];
        struct field f[G_COUNT];
        const char *name;
        if (read_fields(l, item, "grades", grade_keys, G_COUNT, f) != 0 ||
            need(l, item, &f[G_NAME], "name", "grades") != 0 ||
            get_name(l, f[G_NAME].value, "name", &name) != 0)
            return -1;
        for (size_t j = 0; j < r->ngrades; j++)
            if (strcmp(r->grades[j].name, name) == 0)
                return fail_at(l, f[G_NAME].value->start_mark, "grade '%s' is defined twice", name);
        g->name = xstrdup(name);
        r->ngrades++;
        if (f[G_MIN].value) {
            if (get_number(l, f[G_MIN].value, "min", &g->min) != 0)
                return -1;
            g->has_min = true;
            /* First match from the top: a lower grade with a higher min is dead, and so
             * is one at the min of a grade above it that has no `when`. */
            for (size_t j = 0; j + 1 < r->ngrades; j++) {
                const struct rule_grade *up = &r->grades[j];
                if (!up->has_min)
                    continue;
                if (g->min > up->min || (g->min == up->min && up->when == NULL))
                    return fail_at(l, f[G_MIN].value->start_mark,
                                   "grades go from the highest min down: '%s' min %g is not "
                                   "below '%s' min %g",
                                   g->name, g->min, up->name, up->min);
            }
        }
        if (f[G_WHEN].value &&
            compile(l, f[G_WHEN].value, "when", CTX_GRADE, EXPR_BOOL, &g->when) != 0)
            return -1;
        if (!g->has_min && g->when == NULL && i + 1 < n)
            return fail_at(l, item->start_mark,
                           "only the last grade may have neither 'min' nor 'when'");
    }
    return 0;
}

static const struct rule_grade *find_grade(const struct rule *r, const char *name)
{
    for (size_t i = 0; i < r->ngrades; i++)
        if (strcmp(r->grades[i].name, name) == 0)
            return &r->grades[i];
    return NULL;
}

static int unknown_grade(struct loader *l, const yaml_node_t *k)
{
    const struct rule *r = l->r;
    struct suggest s;
    if (r->ngrades == 0)
        return fail_at(l, k->start_mark, "unknown grade '%s' in 'quotas' (the file has no grades)",
                       scalar(k));
    suggest_init(&s, scalar(k));
    for (size_t i = 0; i < r->ngrades; i++)
        suggest_try(&s, "", r->grades[i].name);
    if (s.best[0])
        return fail_at(l, k->start_mark, "unknown grade '%s' in 'quotas' (did you mean '%s'?)",
                       scalar(k), s.best);
    struct buf names;
    buf_init(&names);
    for (size_t i = 0; i < r->ngrades; i++)
        buf_printf(&names, "%s%s", i ? ", " : "", r->grades[i].name);
    fail_at(l, k->start_mark, "unknown grade '%s' in 'quotas' (grades: %s)", scalar(k), names.data);
    buf_release(&names);
    return -1;
}

static int load_quotas(struct loader *l, const yaml_node_t *v)
{
    struct rule *r = l->r;
    if (v->type != YAML_MAPPING_NODE)
        return fail_at(l, v->start_mark,
                       "'quotas' must be a mapping of grade to share like {exceptional: 0.10}");
    size_t n = (size_t)(v->data.mapping.pairs.top - v->data.mapping.pairs.start);
    r->quotas = xcalloc(n ? n : 1, sizeof(*r->quotas));
    for (const yaml_node_pair_t *p = v->data.mapping.pairs.start; p < v->data.mapping.pairs.top;
         p++) {
        if (check_pair_key(l, v, p, "quotas") != 0)
            return -1;
        const yaml_node_t *k = node(l, p->key), *val = node(l, p->value);
        if (find_grade(r, scalar(k)) == NULL)
            return unknown_grade(l, k);
        struct rule_quota *q = &r->quotas[r->nquotas++];
        q->grade = xstrdup(scalar(k));
        char under[160];
        struct field f[Q_COUNT];
        snprintf(under, sizeof(under), "quotas.%s", q->grade);
        if (val->type == YAML_SCALAR_NODE) {
            if (get_number_in(l, val, under, 0, 1, &q->max) != 0)
                return -1;
            q->has_max = true;
            continue;
        }
        if (val->type != YAML_MAPPING_NODE)
            return fail_at(l, val->start_mark,
                           "quota '%s' must be a share like 0.10 or a mapping like {max: 0.1, "
                           "min: 0.05}",
                           q->grade);
        if (read_fields(l, val, under, quota_keys, Q_COUNT, f) != 0)
            return -1;
        if (f[Q_MAX].value == NULL && f[Q_MIN].value == NULL)
            return fail_at(l, val->start_mark, "quota '%s' needs 'max' or 'min'", q->grade);
        if (f[Q_MAX].value) {
            if (get_number_in(l, f[Q_MAX].value, "max", 0, 1, &q->max) != 0)
                return -1;
            q->has_max = true;
        }
        if (f[Q_MIN].value) {
            if (get_number_in(l, f[Q_MIN].value, "min", 0, 1, &q->min) != 0)
                return -1;
            q->has_min = true;
        }
        if (q->has_max && q->has_min && q->min > q->max)
            return fail_at(l, f[Q_MIN].value->start_mark,
                           "quota '%s' has a min %g above its max %g", q->grade, q->min, q->max);
    }
    return 0;
}

static int load_payouts(struct loader *l, const yaml_node_t *v)
{
    struct rule *r = l->r;
    if (get_list(l, v, "payouts", "{name: bonus, when: rank == 1, amount: 100}") != 0)
        return -1;
    size_t n = list_len(v);
    r->payouts = xcalloc(n ? n : 1, sizeof(*r->payouts));
    for (size_t i = 0; i < n; i++) {
        const yaml_node_t *item = list_item(l, v, i);
        struct rule_payout *p = &r->payouts[r->npayouts];
        struct field f[P_COUNT];
        const char *name;
        if (read_fields(l, item, "payouts", payout_keys, P_COUNT, f) != 0 ||
            need(l, item, &f[P_NAME], "name", "payouts") != 0 ||
            need(l, item, &f[P_AMOUNT], "amount", "payouts") != 0 ||
            get_name(l, f[P_NAME].value, "name", &name) != 0)
            return -1;
        for (size_t j = 0; j < r->npayouts; j++)
            if (strcmp(r->payouts[j].name, name) == 0)
                return fail_at(l, f[P_NAME].value->start_mark, "payout '%s' is defined twice",
                               name);
        p->name = xstrdup(name);
        r->npayouts++;
        if (f[P_WHEN].value &&
            compile(l, f[P_WHEN].value, "when", CTX_ANY, EXPR_BOOL, &p->when) != 0)
            return -1;
        if (compile(l, f[P_AMOUNT].value, "amount", CTX_ANY, EXPR_NUM, &p->amount) != 0)
            return -1;
        if (f[P_FOR].value) {
            long k;
            if (get_int(l, f[P_FOR].value, "for", 2, RULE_FOR_MAX, &k) != 0)
                return -1;
            p->for_n = (int)k;
        }
    }
    return 0;
}

static int load_alerts(struct loader *l, const yaml_node_t *v)
{
    struct rule *r = l->r;
    if (get_list(l, v, "alerts", "{name: ScoreBelow70, expr: score < 70}") != 0)
        return -1;
    size_t n = list_len(v);
    r->alerts = xcalloc(n ? n : 1, sizeof(*r->alerts));
    for (size_t i = 0; i < n; i++) {
        const yaml_node_t *item = list_item(l, v, i);
        struct rule_alert *a = &r->alerts[r->nalerts];
        struct field f[A_COUNT];
        const char *name, *text;
        if (read_fields(l, item, "alerts", alert_keys, A_COUNT, f) != 0 ||
            need(l, item, &f[A_NAME], "name", "alerts") != 0 ||
            need(l, item, &f[A_EXPR], "expr", "alerts") != 0 ||
            get_name(l, f[A_NAME].value, "name", &name) != 0)
            return -1;
        for (size_t j = 0; j < r->nalerts; j++)
            if (strcmp(r->alerts[j].name, name) == 0)
                return fail_at(l, f[A_NAME].value->start_mark, "alert '%s' is defined twice", name);
        a->name = xstrdup(name);
        r->nalerts++;
        if (compile(l, f[A_EXPR].value, "expr", CTX_ANY, EXPR_BOOL, &a->expr) != 0)
            return -1;
        if (f[A_SEVERITY].value) {
            if (get_string(l, f[A_SEVERITY].value, "severity", &text) != 0)
                return -1;
            bool ok = *text != '\0';
            for (const char *p = text; *p; p++)
                ok = ok && *p >= 'a' && *p <= 'z';
            if (!ok)
                return fail_at(l, f[A_SEVERITY].value->start_mark,
                               "'severity' must be a lowercase word like info, warning or "
                               "critical");
        } else {
            text = "warning";
        }
        a->severity = xstrdup(text);
        if (f[A_SUMMARY].value) {
            if (get_string(l, f[A_SUMMARY].value, "summary", &text) != 0 ||
                check_summary(l, f[A_SUMMARY].value, text) != 0)
                return -1;
            a->summary = xstrdup(text);
        }
        if (f[A_FOR].value) {
            long k;
            if (get_int(l, f[A_FOR].value, "for", 1, RULE_FOR_MAX, &k) != 0)
                return -1;
            a->for_n = (int)k;
        }
        if (f[A_LIVE].value) {
            if (get_bool(l, f[A_LIVE].value, "live", &a->live) != 0)
                return -1;
            if (a->live && r->interval_ms == 0)
                return fail_at(l, f[A_LIVE].value->start_mark,
                               "alert '%s' is live but the rule has no 'interval'", a->name);
        }
    }
    return 0;
}

static int load_root(struct loader *l, const yaml_node_t *root)
{
    struct rule *r = l->r;
    struct field f[K_TOP_COUNT];
    const char *text;
    int64_t ms;
    long n;

    if (read_fields(l, root, NULL, top_keys, K_TOP_COUNT, f) != 0)
        return -1;
    if (need(l, root, &f[K_VERSION], "version", NULL) != 0 ||
        load_version(l, f[K_VERSION].value) != 0)
        return -1;
    if (need(l, root, &f[K_NAME], "name", NULL) != 0 ||
        get_name(l, f[K_NAME].value, "name", &text) != 0)
        return -1;
    r->name = xstrdup(text);
    l->name_mark = f[K_NAME].value->start_mark;
    if (need(l, root, &f[K_PERIOD], "period", NULL) != 0)
        return -1;
    if (!is_plain(f[K_PERIOD].value) || period_kind_parse(scalar(f[K_PERIOD].value), &r->period))
        return fail_at(l, f[K_PERIOD].value->start_mark,
                       "'period' must be one of day, week, month, quarter, half, year");
    if (f[K_INTERVAL].value) {
        if (get_duration(l, f[K_INTERVAL].value, "interval", &ms) != 0)
            return -1;
        if (ms != 0 && ms < MS_S)
            return fail_at(l, f[K_INTERVAL].value->start_mark,
                           "'interval' must be 0 (off) or at least 1s");
        r->interval_ms = ms;
    }
    if (f[K_LATENESS].value) {
        if (get_duration(l, f[K_LATENESS].value, "lateness", &r->lateness_ms) != 0)
            return -1;
        r->has_lateness = true;
    }
    if (f[K_SHOPS].value) {
        if (load_shops(l, f[K_SHOPS].value) != 0)
            return -1;
    } else {
        r->shops = xcalloc(1, sizeof(*r->shops));
        r->shops[r->nshops++] = xstrdup("*");
    }
    if (f[K_ASSESSORS].value && load_assessors(l, f[K_ASSESSORS].value) != 0)
        return -1;
    /* Score lines first: points.<kpi> names depend on them. */
    if (f[K_SCORE].value && load_score(l, f[K_SCORE].value) != 0)
        return -1;
    if (f[K_UNDEFINED].value && load_undefined(l, f[K_UNDEFINED].value) != 0)
        return -1;
    if (f[K_ELIGIBLE].value &&
        compile(l, f[K_ELIGIBLE].value, "eligible", CTX_ELIGIBLE, EXPR_BOOL, &r->eligible) != 0)
        return -1;
    if (f[K_GRADES].value && load_grades(l, f[K_GRADES].value) != 0)
        return -1;
    if (f[K_QUOTAS].value && load_quotas(l, f[K_QUOTAS].value) != 0)
        return -1;
    if (f[K_QUOTAS_MIN_TEAM].value) {
        if (get_int(l, f[K_QUOTAS_MIN_TEAM].value, "quotas_min_team", 1, 1000000, &n) != 0)
            return -1;
        r->quotas_min_team = (int)n;
    }
    if (f[K_PAYOUTS].value && load_payouts(l, f[K_PAYOUTS].value) != 0)
        return -1;
    if (f[K_ALERTS].value && load_alerts(l, f[K_ALERTS].value) != 0)
        return -1;
    return 0;
}

/* libyaml reports reader errors (bad UTF-8, control characters) by byte offset only. */
static yaml_mark_t mark_of_offset(const char *text, size_t len, size_t offset)
{
    yaml_mark_t m = {0};
    utf8_position(text, len, offset, &m.line, &m.column);
    return m;
}

static int parse_error(struct loader *l, const yaml_parser_t *parser)
{
    const char *problem = parser->problem ? parser->problem : "cannot parse YAML";
    if (parser->error == YAML_READER_ERROR)
        return fail_at(l, mark_of_offset(l->text, l->len, parser->problem_offset), "%s", problem);
    /* "found unexpected end of stream" alone does not say which quote was left open. */
    if (parser->context)
        return fail_at(l, parser->problem_mark, "%s (%s at %zu:%zu)", problem, parser->context,
                       parser->context_mark.line + 1, parser->context_mark.column + 1);
    return fail_at(l, parser->problem_mark, "%s", problem);
}

static int sha256_hex(const char *data, size_t len, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
        return -1;
    for (unsigned int i = 0; i < mdlen; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
    return 0;
}

/* The whole load; *name_mark gets the position of the `name:` value. */
static struct rule *load(const char *path, const char *data, size_t len, yaml_mark_t *name_mark,
                         char *err, size_t errlen)
{
    struct rule *r = xcalloc(1, sizeof(*r));
    struct loader l = {
        .path = path, .text = data, .len = len, .r = r, .err = err, .errlen = errlen};
    yaml_parser_t parser;
    yaml_document_t doc, extra;
    int rc = -1;

    r->path = xstrdup(path);
    r->quotas_min_team = 10;
    /* No `assessors`: every role that reviewed counts the same. */
    for (int i = 0; i < ROLE_COUNT; i++) {
        r->has_assessor[i] = true;
        r->assessor[i] = 1;
    }
    if (sha256_hex(data, len, r->sha256) != 0) {
        snprintf(err, errlen, "%s: cannot compute the sha256 of the file", path);
        goto out_free_rule;
    }
    if (!yaml_parser_initialize(&parser)) {
        snprintf(err, errlen, "%s: cannot initialise the YAML parser", path);
        goto out_free_rule;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)data, len);
    if (!yaml_parser_load(&parser, &doc)) {
        parse_error(&l, &parser);
        goto out_free_parser;
    }
    l.doc = &doc;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (root == NULL) {
        fail_at(&l, doc.start_mark, "the rule file is empty");
        goto out_free_doc;
    }
    /* A second document would be silently ignored: refuse it. */
    if (!yaml_parser_load(&parser, &extra)) {
        parse_error(&l, &parser);
        goto out_free_doc;
    }
    if (yaml_document_get_root_node(&extra)) {
        fail_at(&l, extra.start_mark, "only one YAML document is allowed");
        yaml_document_delete(&extra);
        goto out_free_doc;
    }
    yaml_document_delete(&extra);
    if (root->type != YAML_MAPPING_NODE) {
        fail_at(&l, root->start_mark, "the top level must be a mapping of keys");
        goto out_free_doc;
    }
    rc = load_root(&l, root);
    if (name_mark)
        *name_mark = l.name_mark;

out_free_doc:
    yaml_document_delete(&doc);
out_free_parser:
    yaml_parser_delete(&parser);
out_free_rule:
    if (rc != 0) {
        rule_destroy(r);
        r = NULL;
    }
    return r;
}

/* Reads a whole file (at most RULE_FILE_MAX bytes). */
static char *read_file(const char *path, size_t *len, char *err, size_t errlen)
{
    return file_read_all(path, RULE_FILE_MAX, len, err, errlen);
}

static struct rule *load_file(const char *path, yaml_mark_t *name_mark, char *err, size_t errlen)
{
    size_t len;
    char *text = read_file(path, &len, err, errlen);
    if (text == NULL)
        return NULL;
    struct rule *r = load(path, text, len, name_mark, err, errlen);
    free(text);
    return r;
}

/* ---- public ---- */

struct rule *rule_load_file(const char *path, char *err, size_t errlen)
{
    return load_file(path, NULL, err, errlen);
}

struct rule *rule_load_buffer(const char *path, const char *data, size_t len, char *err,
                              size_t errlen)
{
    return load(path, data, len, NULL, err, errlen);
}

void rule_destroy(struct rule *r)
{
    if (r == NULL)
        return;
    free(r->path);
    free(r->name);
    for (size_t i = 0; i < r->nshops; i++)
        free(r->shops[i]);
    free(r->shops);
    expr_destroy(r->eligible);
    for (size_t i = 0; i < r->nscore; i++) {
        free(r->score[i].kpi);
        free(r->score[i].bands);
    }
    free(r->score);
    for (size_t i = 0; i < r->ngrades; i++) {
        free(r->grades[i].name);
        expr_destroy(r->grades[i].when);
    }
    free(r->grades);
    for (size_t i = 0; i < r->nquotas; i++)
        free(r->quotas[i].grade);
    free(r->quotas);
    for (size_t i = 0; i < r->npayouts; i++) {
        free(r->payouts[i].name);
        expr_destroy(r->payouts[i].when);
        expr_destroy(r->payouts[i].amount);
    }
    free(r->payouts);
    for (size_t i = 0; i < r->nalerts; i++) {
        free(r->alerts[i].name);
        expr_destroy(r->alerts[i].expr);
        free(r->alerts[i].severity);
        free(r->alerts[i].summary);
    }
    free(r->alerts);
    free(r);
}

bool rule_applies_to(const struct rule *r, const char *shop_id)
{
    if (r == NULL || shop_id == NULL)
        return false;
    for (size_t i = 0; i < r->nshops; i++)
        if (strcmp(r->shops[i], shop_id) == 0 || fnmatch(r->shops[i], shop_id, 0) == 0)
            return true;
    return false;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* *.yaml, but not hidden files nor rule tests (*.test.yaml, for `csmetrics test`). */
static bool is_rule_file(const char *name)
{
    size_t n = strlen(name);
    return name[0] != '.' && n > 5 && strcmp(name + n - 5, ".yaml") == 0 &&
           !(n > 10 && strcmp(name + n - 10, ".test.yaml") == 0);
}

struct rule_set *rule_set_load_dir(const char *dir, char *err, size_t errlen)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char **names = NULL;
    size_t n = 0, cap = 0;
    yaml_mark_t *marks = NULL;
    struct rule_set *s = NULL;

    if (d == NULL) {
        snprintf(err, errlen, "cannot open rules directory '%s': %s", dir, strerror(errno));
        return NULL;
    }
    while ((e = readdir(d)) != NULL) {
        if (!is_rule_file(e->d_name))
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            names = xrealloc(names, cap * sizeof(*names));
        }
        names[n++] = xstrdup(e->d_name);
    }
    closedir(d);
    if (n > 0)
        qsort(names, n, sizeof(*names), compare_names);

    s = xcalloc(1, sizeof(*s));
    s->rules = xcalloc(n ? n : 1, sizeof(*s->rules));
    marks = xcalloc(n ? n : 1, sizeof(*marks));
    size_t dlen = strlen(dir);
    const char *sep = dlen > 0 && dir[dlen - 1] == '/' ? "" : "/";
    for (size_t i = 0; i < n; i++) {
        struct buf path;
        buf_init(&path);
        buf_printf(&path, "%s%s%s", dir, sep, names[i]);
        struct rule *r = load_file(path.data, &marks[i], err, errlen);
        buf_release(&path);
        if (r == NULL)
            goto out_fail;
        for (size_t j = 0; j < s->n; j++)
            if (strcmp(s->rules[j]->name, r->name) == 0) {
                snprintf(err, errlen, "%s:%zu:%zu: rule name '%s' already used by %s", r->path,
                         marks[i].line + 1, marks[i].column + 1, r->name, s->rules[j]->path);
                rule_destroy(r);
                goto out_fail;
            }
        s->rules[s->n++] = r;
    }
    goto out;

out_fail:
    rule_set_destroy(s);
    s = NULL;
out:
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    free(marks);
    return s;
}

void rule_set_destroy(struct rule_set *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->n; i++)
        rule_destroy(s->rules[i]);
    free(s->rules);
    free(s);
}
