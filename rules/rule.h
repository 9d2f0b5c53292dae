/* rule — one rule file (rules.md) loaded with libyaml's document API into a validated,
 * immutable struct rule, and rule sets loaded all-or-nothing from a directory (a reload
 * keeps the previous set when any file is invalid). Every error is
 * "file:line:column: message" (libyaml marks are 0-based; we print 1-based). */
#ifndef CSM_RULES_RULE_H
#define CSM_RULES_RULE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aggregator/kpi.h"
#include "aggregator/period.h"
#include "consumers/event.h"
#include "rules/expr.h"

enum rule_map { RULE_MAP_NONE, RULE_MAP_LINEAR, RULE_MAP_BANDS };

struct rule_band {
    bool has_max; /* the last band may have no max: it catches everything */
    double max;
    double share;
};

/* One `score:` line. kpi is a KPI name of kpi.h, "review.<item>" or "review.<item>.<role>". */
struct rule_score_line {
    char *kpi;
    double weight;
    enum rule_map map;
    double zero, full;       /* linear */
    struct rule_band *bands; /* bands */
    size_t nbands;
};

/* A grade matches when score >= min (if given) and `when` holds (if given): first match
 * from the top. `when` is an extension for plan 2's "both scores >= 90 -> senior". */
struct rule_grade {
    char *name;
    bool has_min; /* the last grade may have neither: it catches everything */
    double min;
    struct expr *when; /* bool, NULL when absent; may not use grade, rank or quota names */
};

struct rule_quota {
    char *grade;  /* names a grade of the file */
    bool has_max; /* at most floor(max × team.size) agents */
    double max;
    bool has_min; /* at least floor(min × team.size) of the lowest-ranked agents this grade or lower
                   */
    double min;
};

struct rule_payout {
    char *name;
    struct expr *when;   /* NULL: always */
    struct expr *amount; /* number */
    int for_n;           /* 0: none; N: pays once when the streak of `when` reaches N */
};

struct rule_alert {
    char *name;
    struct expr *expr; /* bool */
    char *severity;    /* default "warning" */
    char *summary; /* template with {{agent}}, {{score}}, {{period}}, {{shop}}, {{value}}, {{rule}},
                      {{alert}} and any name; NULL: default text */
    int for_n;     /* 0/1: this period; N: N consecutive closed periods */
    bool live;     /* also evaluated during the period at `interval` */
};

struct rule {
    char *path;
    char *name;
    char sha256[65]; /* hex of the file's bytes */
    enum period_kind period;
    int64_t interval_ms; /* 0: no live evaluation */
    bool has_lateness;
    int64_t lateness_ms;
    char **shops; /* ["*"] means every shop */
    size_t nshops;
    struct expr *eligible; /* NULL: everyone with figures */
    bool has_assessor[ROLE_COUNT];
    double assessor[ROLE_COUNT];
    struct rule_score_line *score;
    size_t nscore;
    bool undefined_skip; /* `undefined: skip` re-weights the rest; default zero */
    struct rule_grade *grades;
    size_t ngrades;
    struct rule_quota *quotas;
    size_t nquotas;
    int quotas_min_team; /* default 10 */
    struct rule_payout *payouts;
    size_t npayouts;
    struct rule_alert *alerts;
    size_t nalerts;
};

/* Loads one file. NULL with "file:line:column: message" in err. */
struct rule *rule_load_file(const char *path, char *err, size_t errlen);
/* Same from memory (path names it in messages). */
struct rule *rule_load_buffer(const char *path, const char *data, size_t len, char *err,
                              size_t errlen);
void rule_destroy(struct rule *r); /* NULL ok */

/* True when the rule applies to shop_id. */
bool rule_applies_to(const struct rule *r, const char *shop_id);

struct rule_set {
    struct rule **rules;
    size_t n;
};

/* Loads every *.yaml of dir (sorted by name); all or nothing: the first error fails the
 * whole set. Rule names must be unique across files. A missing directory is an error;
 * an empty one is an empty set. */
struct rule_set *rule_set_load_dir(const char *dir, char *err, size_t errlen);
void rule_set_destroy(struct rule_set *s); /* NULL ok */

/* The expression names a rule may use, for expr_parse (see rules.md "Expressions"):
 * every KPI, review.<item>[.<role>], score, grade, points.<kpi>, rank, rank_bottom,
 * percentile, absent_days, team.<kpi>, team.size, period, period_index, eligible,
 * prev.<any of these>. Exposed for tests and `csmetrics check`. */
int rule_name_type(const struct rule *r, const char *name, enum expr_type *type);

#endif
