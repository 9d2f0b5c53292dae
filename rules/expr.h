/* expr — the rule language's small, safe expression language (rules.md "Expressions").
 * Pure: no I/O, no loops, no recursion beyond the parse tree, whose depth and size are
 * bounded (EXPR_MAX_DEPTH, EXPR_MAX_NODES); evaluation is linear in the tree size.
 *
 * Grammar (lowest precedence first):
 *   or_expr   = and_expr { "or" and_expr }
 *   and_expr  = not_expr { "and" not_expr }
 *   not_expr  = "not" not_expr | cmp
 *   cmp       = sum [ ("==" | "!=" | "<" | "<=" | ">" | ">=") sum ]
 *   sum       = prod { ("+" | "-") prod }
 *   prod      = unary { ("*" | "/") unary }
 *   unary     = "-" unary | primary
 *   primary   = NUMBER | STRING | "true" | "false" | NAME | FUNC "(" args ")" | "(" or_expr ")"
 *   NAME      = ident { "." ident }   e.g. score, team.sales, prev.rank, review.follow_up.manager
 *   FUNC      = min | max | abs | round      (round(x) or round(x, decimals), rules.md rounding)
 * Strings are "double" or 'single' quoted. Types: number, string, bool; checked at parse
 * time through a callback that knows each name's type. `==`/`!=` compare two numbers, two
 * strings or two bools; `< <= > >=` numbers only; `and or not` bools; arithmetic numbers.
 *
 * Undefined: a name may evaluate to undefined (a KPI with a zero denominator, an agent
 * not scored in the previous period...). Any operator or function over an undefined
 * operand is undefined, except `and`/`or` where the other operand decides (false and X =
 * false, true or X = true). An undefined condition counts as false (expr_truthy). Division
 * by zero is undefined. Arithmetic is IEEE double. */
#ifndef CSM_RULES_EXPR_H
#define CSM_RULES_EXPR_H

#include <stdbool.h>
#include <stddef.h>

#define EXPR_MAX_DEPTH 64
#define EXPR_MAX_NODES 1024
#define EXPR_MAX_LEN 4096

enum expr_type { EXPR_NUM, EXPR_STR, EXPR_BOOL };

struct expr_value {
    bool defined;
    enum expr_type type;
    double num;
    const char *str; /* borrowed: from the expression or the lookup */
    bool b;
};

/* Parse-time name check: 0 and *type set when the name exists, -1 when unknown. */
typedef int (*expr_name_cb)(void *ud, const char *name, enum expr_type *type);
/* Evaluation-time lookup of a name (one the name callback accepted). */
typedef struct expr_value (*expr_lookup_cb)(void *ud, const char *name);

struct expr;

/* Parses src. On error returns NULL, writes a message ("unknown name 'scroe'",
 * "expected a number, got a string", "unexpected ')'", "unknown function 'sqrt'") into
 * err, and the 0-based byte offset in src where it applies into *err_offset. The
 * expression's type goes to *type. Names are checked through name_cb. */
struct expr *expr_parse(const char *src, expr_name_cb name_cb, void *ud, enum expr_type *type,
                        char *err, size_t errlen, size_t *err_offset);
void expr_destroy(struct expr *e); /* NULL ok */

/* Evaluates e, looking names up through lookup. */
struct expr_value expr_eval(const struct expr *e, expr_lookup_cb lookup, void *ud);
/* When e's top operator is a comparison, the value of its left operand (an alert's
 * `value`: `response_time_mean_s > 40` gives the mean); otherwise expr_eval. */
struct expr_value expr_eval_left(const struct expr *e, expr_lookup_cb lookup, void *ud);
/* True only for a defined true bool. */
bool expr_truthy(struct expr_value v);

/* Calls cb for each distinct name the expression uses (for dependency checks). */
void expr_names(const struct expr *e, void (*cb)(void *ud, const char *name), void *ud);

/* The source text it was parsed from. */
const char *expr_source(const struct expr *e);

#endif
