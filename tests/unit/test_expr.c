/* test_expr — rules/expr.c: values (precedence, every undefined rule, functions and
 * rules.md rounding, strings, dotted names) from a table of source + bindings; parse
 * errors with their exact message and offset; the nesting/size limits at and past
 * their boundary; and random token soup that must parse or fail cleanly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rules/expr.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* ---- names the test's rule file knows ---- */

static const struct known {
    const char *name;
    enum expr_type type;
} known[] = {
    {.name = "score", .type = EXPR_NUM},
    {.name = "grade", .type = EXPR_STR},
    {.name = "rank", .type = EXPR_NUM},
    {.name = "rank_bottom", .type = EXPR_NUM},
    {.name = "eligible", .type = EXPR_BOOL},
    {.name = "team.sales", .type = EXPR_NUM},
    {.name = "team.size", .type = EXPR_NUM},
    {.name = "review.follow_up.manager", .type = EXPR_NUM},
    {.name = "prev.score", .type = EXPR_NUM},
    {.name = "prev.grade", .type = EXPR_STR},
    {.name = "period", .type = EXPR_STR},
    {.name = "inquiries", .type = EXPR_NUM},
    {.name = "absent_days", .type = EXPR_NUM},
    {.name = "a", .type = EXPR_BOOL},
    {.name = "b", .type = EXPR_BOOL},
    {.name = "c", .type = EXPR_BOOL},
    {.name = "u", .type = EXPR_BOOL},
    {.name = "x", .type = EXPR_NUM},
    {.name = "y", .type = EXPR_NUM},
    {.name = "n", .type = EXPR_NUM},
    {.name = "s", .type = EXPR_STR},
};

static const char *const type_name[] = {
    [EXPR_NUM] = "number",
    [EXPR_STR] = "string",
    [EXPR_BOOL] = "bool",
};

/* ud counts the calls, to show ud is passed through. */
static int name_cb(void *ud, const char *name, enum expr_type *type)
{
    if (ud)
        (*(int *)ud)++;
    for (size_t i = 0; i < N(known); i++) {
        if (strcmp(known[i].name, name) == 0) {
            *type = known[i].type;
            return 0;
        }
    }
    return -1;
}

static enum expr_type known_type(const char *name)
{
    enum expr_type t = EXPR_NUM;
    if (name_cb(NULL, name, &t) != 0)
        fail_msg("'%s' is not a known name", name);
    return t;
}

/* ---- bindings: "score=80 grade='excellent' a=true n=?" ---- */

struct binding {
    char name[64];
    char str[64];
    struct expr_value v;
};

struct bindings {
    size_t n;
    struct binding b[16];
};

/* '?' is undefined (of the name's type); 'text' a string; true/false; else a number
 * (strtod, so "inf" works). The value's type comes from its spelling, not the name,
 * so "x='a'" binds a string to a number name. */
static void bind(struct bindings *bs, const char *vars)
{
    char copy[512], *save = NULL;

    bs->n = 0;
    snprintf(copy, sizeof(copy), "%s", vars);
    for (char *w = strtok_r(copy, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
        char *eq = strchr(w, '=');
        struct binding *b = &bs->b[bs->n++];

        assert_non_null(eq);
        assert_true(bs->n <= N(bs->b));
        *eq = '\0';
        snprintf(b->name, sizeof(b->name), "%s", w);
        const char *val = eq + 1;
        memset(&b->v, 0, sizeof(b->v));
        if (strcmp(val, "?") == 0) {
            b->v = (struct expr_value){.defined = false, .type = known_type(b->name)};
        } else if (val[0] == '\'') {
            snprintf(b->str, sizeof(b->str), "%.*s", (int)strlen(val) - 2, val + 1);
            b->v = (struct expr_value){.defined = true, .type = EXPR_STR, .str = b->str};
        } else if (strcmp(val, "true") == 0 || strcmp(val, "false") == 0) {
            b->v = (struct expr_value){.defined = true, .type = EXPR_BOOL, .b = val[0] == 't'};
        } else {
            char *end;
            b->v = (struct expr_value){.defined = true, .type = EXPR_NUM, .num = strtod(val, &end)};
            assert_true(*end == '\0');
        }
    }
}

static struct expr_value lookup(void *ud, const char *name)
{
    struct bindings *bs = ud;

    for (size_t i = 0; i < bs->n; i++)
        if (strcmp(bs->b[i].name, name) == 0)
            return bs->b[i].v;
    fail_msg("lookup of unbound name '%s'", name);
    return (struct expr_value){.defined = false};
}

/* ---- values ---- */

struct eval_case {
    const char *src;
    const char *vars;
    enum expr_type type; /* static type, and the value's type */
    bool defined;
    double num;
    const char *str;
    bool b;
};

#define NUM(v) EXPR_NUM, true, (v), NULL, false
#define STR(v) EXPR_STR, true, 0, (v), false
#define BOOL(v) EXPR_BOOL, true, 0, NULL, (v)
#define UNDEF(t) (t), false, 0, NULL, false

static const struct eval_case eval_cases[] = {
    /* precedence and associativity */
    {"1 + 2 * 3", "", NUM(7)},
    {"(1 + 2) * 3", "", NUM(9)},
    {"-2 * -3", "", NUM(6)},
    {"2 - -3", "", NUM(5)},
    {"- (2 + 3)", "", NUM(-5)},
    {"--4", "", NUM(4)},
    {"10 - 4 - 3", "", NUM(3)},
    {"24 / 4 / 2", "", NUM(3)},
    {"2 * 3 + 4 * 5", "", NUM(26)},
    {"7 - 2 * 3 / 2", "", NUM(4)},
    {"not a and b", "a=true b=false", BOOL(false)}, /* not(a and b) would be true */
    {"not a and b", "a=false b=true", BOOL(true)},
    {"a or b and c", "a=true b=false c=false", BOOL(true)}, /* (a or b) and c: false */
    {"a or b and c", "a=false b=true c=true", BOOL(true)},
    {"a or b and c", "a=false b=true c=false", BOOL(false)},
    {"not 1 < 2", "", BOOL(false)},
    {"not not a", "a=true", BOOL(true)},
    {"1 + 2 == 3", "", BOOL(true)},
    {"1 < 2 and 2 < 3", "", BOOL(true)},
    {"1 + 2 < 2 * 2", "", BOOL(true)},
    {"not a == b", "a=true b=true", BOOL(false)},
    {"true == false or true", "", BOOL(true)},
    /* numbers */
    {"1.5e2", "", NUM(150)},
    {"2E-1", "", NUM(0.2)},
    {"1e+2", "", NUM(100)},
    {"007", "", NUM(7)},
    {"0.25", "", NUM(0.25)},
    {"1e-400", "", NUM(0)},
    {" \t1\n+\r2 ", "", NUM(3)},
    {"0.1 + 0.2", "", NUM(0.1 + 0.2)}, /* IEEE double, as rules.md says */
    /* comparisons */
    {"1 < 1", "", BOOL(false)},
    {"1 <= 1", "", BOOL(true)},
    {"2 > 1", "", BOOL(true)},
    {"1 >= 2", "", BOOL(false)},
    {"1 != 1", "", BOOL(false)},
    {"rank == 1", "rank=1", BOOL(true)},
    {"rank == 1", "rank=2", BOOL(false)},
    {"rank == 1", "rank=?", UNDEF(EXPR_BOOL)},
    {"rank_bottom == 1", "rank_bottom=1", BOOL(true)},
    {"score < 70", "score=69.99", BOOL(true)},
    {"score < 70", "score=70", BOOL(false)},
    {"inquiries >= 30 and absent_days <= 60", "inquiries=30 absent_days=61", BOOL(false)},
    {"inquiries >= 30 and absent_days <= 60", "inquiries=30 absent_days=60", BOOL(true)},
    {"prev.score < score", "prev.score=80 score=90", BOOL(true)},
    {"prev.score < score", "prev.score=? score=90", UNDEF(EXPR_BOOL)},
    /* dotted names */
    {"team.sales * 0.005 / team.size", "team.sales=29 team.size=1", NUM(29 * 0.005 / 1)},
    {"team.sales * 0.005 / team.size", "team.sales=3000 team.size=4", NUM(3000 * 0.005 / 4)},
    {"team.sales * 0.005 / team.size", "team.sales=3000 team.size=0", UNDEF(EXPR_NUM)},
    {"review.follow_up.manager >= 0.9", "review.follow_up.manager=0.9", BOOL(true)},
    {"review.follow_up.manager >= 0.9", "review.follow_up.manager=0.89", BOOL(false)},
    {"review.follow_up.manager >= 0.9", "review.follow_up.manager=?", UNDEF(EXPR_BOOL)},
    {"score", "score=80", NUM(80)},
    /* undefined propagates through every operator and function */
    {"n", "n=?", UNDEF(EXPR_NUM)},
    {"n + 1", "n=?", UNDEF(EXPR_NUM)},
    {"1 - n", "n=?", UNDEF(EXPR_NUM)},
    {"n * 0", "n=?", UNDEF(EXPR_NUM)},
    {"0 * n", "n=?", UNDEF(EXPR_NUM)},
    {"n / 2", "n=?", UNDEF(EXPR_NUM)},
    {"2 / n", "n=?", UNDEF(EXPR_NUM)},
    {"-n", "n=?", UNDEF(EXPR_NUM)},
    {"n < 1", "n=?", UNDEF(EXPR_BOOL)},
    {"1 >= n", "n=?", UNDEF(EXPR_BOOL)},
    {"n == n", "n=?", UNDEF(EXPR_BOOL)},
    {"n != 1", "n=?", UNDEF(EXPR_BOOL)},
    {"s == 'a'", "s=?", UNDEF(EXPR_BOOL)},
    {"s != 'a'", "s=?", UNDEF(EXPR_BOOL)},
    {"s", "s=?", UNDEF(EXPR_STR)},
    {"u", "u=?", UNDEF(EXPR_BOOL)},
    {"not u", "u=?", UNDEF(EXPR_BOOL)},
    {"u == true", "u=?", UNDEF(EXPR_BOOL)},
    {"min(1, n)", "n=?", UNDEF(EXPR_NUM)},
    {"min(n, 1)", "n=?", UNDEF(EXPR_NUM)},
    {"max(n)", "n=?", UNDEF(EXPR_NUM)},
    {"max(1, 2, n)", "n=?", UNDEF(EXPR_NUM)},
    {"abs(n)", "n=?", UNDEF(EXPR_NUM)},
    {"round(n)", "n=?", UNDEF(EXPR_NUM)},
    {"round(n, 2)", "n=?", UNDEF(EXPR_NUM)},
    {"round(1.234, n)", "n=?", UNDEF(EXPR_NUM)},
    /* Kleene and/or: the defined side decides when it can */
    {"false and u", "u=?", BOOL(false)},
    {"u and false", "u=?", BOOL(false)},
    {"true and u", "u=?", UNDEF(EXPR_BOOL)},
    {"u and true", "u=?", UNDEF(EXPR_BOOL)},
    {"u and u", "u=?", UNDEF(EXPR_BOOL)},
    {"true or u", "u=?", BOOL(true)},
    {"u or true", "u=?", BOOL(true)},
    {"false or u", "u=?", UNDEF(EXPR_BOOL)},
    {"u or false", "u=?", UNDEF(EXPR_BOOL)},
    {"u or u", "u=?", UNDEF(EXPR_BOOL)},
    {"a and u", "a=false u=?", BOOL(false)},
    {"n > 1 and false", "n=?", BOOL(false)},
    {"n > 1 or 1 > 0", "n=?", BOOL(true)},
    {"n > 1 or 1 < 0", "n=?", UNDEF(EXPR_BOOL)},
    {"not (n > 1) and 1 > 0", "n=?", UNDEF(EXPR_BOOL)},
    /* division by zero and non-finite results are undefined */
    {"1 / 0", "", UNDEF(EXPR_NUM)},
    {"0 / 0", "", UNDEF(EXPR_NUM)},
    {"-1 / 0", "", UNDEF(EXPR_NUM)},
    {"x / (y - y)", "x=1 y=3", UNDEF(EXPR_NUM)},
    {"1 / 0 == 1 / 0", "", UNDEF(EXPR_BOOL)},
    {"1e308 * 10", "", UNDEF(EXPR_NUM)},
    {"-1e308 * 10", "", UNDEF(EXPR_NUM)},
    {"1e308 + 1e308", "", UNDEF(EXPR_NUM)},
    {"1e308 * 10 - 1e308 * 10", "", UNDEF(EXPR_NUM)},
    {"1e-308 / 1e308", "", NUM(0)},
    {"x", "x=inf", UNDEF(EXPR_NUM)}, /* a lookup's inf or nan is undefined too */
    {"x + 1", "x=nan", UNDEF(EXPR_NUM)},
    {"x", "x='a'", UNDEF(EXPR_NUM)}, /* a lookup of the wrong type is undefined */
    {"s", "s=1", UNDEF(EXPR_STR)},
    {"a", "a=1", UNDEF(EXPR_BOOL)},
    /* functions, rules.md rounding */
    {"round(29.00 * 0.005, 2)", "", NUM(0.15)},
    {"round(team.sales * 0.005 / team.size, 2)", "team.sales=29 team.size=1", NUM(0.15)},
    {"round(2.5)", "", NUM(3)},
    {"round(-2.5)", "", NUM(-2)},
    {"round(2.4999)", "", NUM(2)},
    {"round(0.125, 2)", "", NUM(0.13)},
    {"round(1.005, 2)", "", NUM(1.01)},
    {"round(2.675, 2)", "", NUM(2.68)},
    {"round(1.234, 0)", "", NUM(1)},
    {"round(1.25, 12)", "", NUM(1.25)},
    {"round(1.234, -1)", "", UNDEF(EXPR_NUM)},
    {"round(1.234, 13)", "", UNDEF(EXPR_NUM)},
    {"round(1.234, 1.5)", "", UNDEF(EXPR_NUM)},
    {"round(1 / 0)", "", UNDEF(EXPR_NUM)},
    {"min(3, 1, 2)", "", NUM(1)},
    {"max(3, 1, 2)", "", NUM(3)},
    {"min(5)", "", NUM(5)},
    {"max(1, 2, 3, 4, 5, 6, 7, 8)", "", NUM(8)},
    {"min(8, 7, 6, 5, 4, 3, 2, -1)", "", NUM(-1)},
    {"abs(-2.5)", "", NUM(2.5)},
    {"abs(3)", "", NUM(3)},
    {"max(score, 50) - min(score, 50)", "score=80", NUM(30)},
    {"min (1, 2)", "", NUM(1)},
    {"min(max(1, 2), abs(-3)) * 2", "", NUM(4)},
    /* strings and bools */
    {"grade == 'excellent'", "grade='excellent'", BOOL(true)},
    {"grade != \"excellent\"", "grade='excellent'", BOOL(false)},
    {"grade == 'excellen'", "grade='excellent'", BOOL(false)},
    {"grade == prev.grade", "grade='medium' prev.grade='medium'", BOOL(true)},
    {"'a' == 'a'", "", BOOL(true)},
    {"'a' == 'b'", "", BOOL(false)},
    {"'a\\'b' == \"a'b\"", "", BOOL(true)},
    {"'\\\\' == \"\\\\\"", "", BOOL(true)},
    {"period == \"2026-H1\"", "period='2026-H1'", BOOL(true)},
    {"grade", "grade='urgent'", STR("urgent")},
    {"'abc'", "", STR("abc")},
    {"'x\\\"y'", "", STR("x\"y")},
    {"\"it's\"", "", STR("it's")},
    {"''", "", STR("")},
    {"'and or not ( 1'", "", STR("and or not ( 1")},
    {"true", "", BOOL(true)},
    {"false", "", BOOL(false)},
    {"true == false", "", BOOL(false)},
    {"false != true", "", BOOL(true)},
    {"eligible != false", "eligible=true", BOOL(true)},
    {"eligible", "eligible=false", BOOL(false)},
};

static void test_eval_table(void **state)
{
    for (size_t i = 0; i < N(eval_cases); i++) {
        const struct eval_case *c = &eval_cases[i];
        struct bindings bs;
        char err[128] = "";
        size_t off = 99;
        enum expr_type type = (enum expr_type) - 1;
        struct expr *e;
        struct expr_value v;

        bind(&bs, c->vars);
        e = expr_parse(c->src, name_cb, NULL, &type, err, sizeof(err), &off);
        if (!e)
            fail_msg("%s: parse error at %zu: %s", c->src, off, err);
        assert_string_equal(err, "");
        if (type != c->type)
            fail_msg("%s: type %s, want %s", c->src, type_name[type], type_name[c->type]);
        assert_string_equal(expr_source(e), c->src);
        v = expr_eval(e, lookup, &bs);
        if (v.type != c->type || v.defined != c->defined)
            fail_msg("%s [%s]: got %s %s, want %s %s", c->src, c->vars,
                     v.defined ? "defined" : "undefined", type_name[v.type],
                     c->defined ? "defined" : "undefined", type_name[c->type]);
        if (c->defined && c->type == EXPR_NUM && !(v.num == c->num))
            fail_msg("%s [%s]: got %.17g, want %.17g", c->src, c->vars, v.num, c->num);
        if (c->defined && c->type == EXPR_STR && strcmp(v.str, c->str) != 0)
            fail_msg("%s [%s]: got '%s', want '%s'", c->src, c->vars, v.str, c->str);
        if (c->defined && c->type == EXPR_BOOL && v.b != c->b)
            fail_msg("%s [%s]: got %d, want %d", c->src, c->vars, v.b, c->b);
        assert_int_equal(expr_truthy(v), c->defined && c->type == EXPR_BOOL && c->b);
        expr_destroy(e);
    }
}

/* ---- parse errors ---- */

struct err_case {
    const char *src;
    const char *msg;
    size_t offset;
};

static const struct err_case err_cases[] = {
    /* names and functions */
    {"scroe > 1", "unknown name 'scroe'", 0},
    {"score + tema.size", "unknown name 'tema.size'", 8},
    {"team.sales.", "unexpected '.'", 10},
    {"team. sales", "unknown name 'team'", 0},
    {"min", "unknown name 'min'", 0},
    {"sqrt(score)", "unknown function 'sqrt'", 0},
    {"1 + team.min(1)", "unknown function 'team.min'", 4},
    {"score (1)", "unknown function 'score'", 0},
    {"round()", "function 'round' takes 1 or 2 arguments", 0},
    {"round(1, 2, 3)", "function 'round' takes 1 or 2 arguments", 0},
    {"1 + abs(1, 2)", "function 'abs' takes 1 argument", 4},
    {"min()", "function 'min' takes 1 to 8 arguments", 0},
    {"max(1, 2, 3, 4, 5, 6, 7, 8, 9)", "function 'max' takes 1 to 8 arguments", 0},
    {"abs('x')", "function 'abs' needs a number, got string", 4},
    {"min(1, true)", "function 'min' needs numbers, got bool", 7},
    {"round(1, grade)", "function 'round' needs numbers, got string", 9},
    {"max(1 < 2)", "function 'max' needs numbers, got bool", 4},
    /* types */
    {"score < \"a\"", "operator '<' needs numbers, got number and string", 6},
    {"grade + 1", "operator '+' needs numbers, got string and number", 6},
    {"score * eligible", "operator '*' needs numbers, got number and bool", 6},
    {"1 / 'a'", "operator '/' needs numbers, got number and string", 2},
    {"1 - true", "operator '-' needs numbers, got number and bool", 2},
    {"not score", "operator 'not' needs a bool, got number", 0},
    {"not grade", "operator 'not' needs a bool, got string", 0},
    {"score and true", "operator 'and' needs bools, got number and bool", 6},
    {"eligible or 1", "operator 'or' needs bools, got bool and number", 9},
    {"score == grade", "operator '==' needs two values of the same type, got number and string", 6},
    {"eligible != 1", "operator '!=' needs two values of the same type, got bool and number", 9},
    {"-grade", "operator '-' needs a number, got string", 0},
    {"- true", "operator '-' needs a number, got bool", 0},
    {"true < false", "operator '<' needs numbers, got bool and bool", 5},
    {"'a' >= 'b'", "operator '>=' needs numbers, got string and string", 4},
    {"score > 1 + true", "operator '+' needs numbers, got number and bool", 10},
    /* syntax */
    {"score 1", "unexpected '1'", 6},
    {"score grade", "unexpected 'grade'", 6},
    {"score 'a'", "unexpected ''a''", 6},
    {"", "empty expression", 0},
    {"   ", "empty expression", 0},
    {"(1 + 2", "unclosed '('", 0},
    {"((1 + 2)", "unclosed '('", 0},
    {"1 + 2)", "unexpected ')'", 5},
    {"()", "unexpected ')'", 1},
    {"(1 2)", "unexpected '2'", 3},
    {"min(1, 2", "unclosed '('", 3},
    {"min(1 2)", "unexpected '2'", 6},
    {"min(1,)", "unexpected ')'", 6},
    {"min(,1)", "unexpected ','", 4},
    {"1 +", "unexpected end of expression", 3},
    {"1 + * 2", "unexpected '*'", 4},
    {"score and", "unexpected end of expression", 9},
    {"not", "unexpected end of expression", 3},
    {"and", "unexpected 'and'", 0},
    {"true.x", "unexpected '.'", 4},
    {"1, 2", "unexpected ','", 1},
    {"1 < 2 < 3", "cannot chain comparisons; use 'and'", 6},
    {"score == 1 == true", "cannot chain comparisons; use 'and'", 11},
    {"score = 1", "unexpected '=' (use '==' to compare)", 6},
    {"!eligible", "unexpected '!' (use 'not')", 0},
    {"a && b", "unexpected '&' (use 'and')", 2},
    {"a || b", "unexpected '|' (use 'or')", 2},
    {"score # 1", "unexpected '#'", 6},
    {"score % 2", "unexpected '%'", 6},
    {"score \xc3\xa9", "unexpected byte 0xc3", 6},
    {"score ^ 2", "unexpected '^'", 6},
    /* literals */
    {"'abc", "unterminated string", 0},
    {"1 + \"ab\\\"", "unterminated string", 4},
    {"'ab\\", "unterminated string", 0},
    {"'a\\nb'", "invalid escape '\\n' in string", 2},
    {"'a\\\tb'", "invalid escape in string", 2},
    {"1.2.3", "invalid number '1.2.3'", 0},
    {"1e", "invalid number '1e'", 0},
    {"1e+", "invalid number '1e'", 0},
    {"2x", "invalid number '2x'", 0},
    {"3and true", "invalid number '3and'", 0},
    {"1.", "invalid number '1.'", 0},
    {".5", "unexpected '.'", 0},
    {"0x10", "invalid number '0x10'", 0},
    {"1e999", "number '1e999' is out of range", 0},
    {"score + 1234567890123456789012345678901234567890123456789x",
     "invalid number '1234567890123456789012345678901234567890...'", 8},
};

static void expect_error(const char *what, const char *src, const char *msg, size_t offset)
{
    char err[256] = "x";
    size_t off = 12345;
    enum expr_type type = EXPR_STR;
    int calls = 0;
    struct expr *e = expr_parse(src, name_cb, &calls, &type, err, sizeof(err), &off);

    if (e) {
        expr_destroy(e);
        fail_msg("%s: parsed, want error '%s'", what, msg);
    }
    if (strcmp(err, msg) != 0 || off != offset)
        fail_msg("%s: got '%s' at %zu, want '%s' at %zu", what, err, off, msg, offset);
    assert_int_equal(type, EXPR_STR); /* untouched on error */
}

static void test_parse_errors(void **state)
{
    for (size_t i = 0; i < N(err_cases); i++)
        expect_error(err_cases[i].src, err_cases[i].src, err_cases[i].msg, err_cases[i].offset);
}

/* The 65th nesting level fails, the 64th parses. */
static char *repeat(const char *prefix, size_t n, const char *middle, const char *suffix, size_t m)
{
    size_t pl = strlen(prefix), ml = strlen(middle), sl = strlen(suffix);
    char *s = malloc(n * pl + ml + m * sl + 1), *o = s;

    assert_non_null(s);
    for (size_t i = 0; i < n; i++, o += pl)
        memcpy(o, prefix, pl);
    memcpy(o, middle, ml);
    o += ml;
    for (size_t i = 0; i < m; i++, o += sl)
        memcpy(o, suffix, sl);
    *o = '\0';
    return s;
}

static void expect_num(const char *src, double want)
{
    char err[128] = "";
    size_t off = 0;
    struct bindings bs = {.n = 0};
    struct expr *e = expr_parse(src, name_cb, NULL, NULL, err, sizeof(err), &off);
    struct expr_value v;

    if (!e)
        fail_msg("%.40s...: parse error at %zu: %s", src, off, err);
    v = expr_eval(e, lookup, &bs);
    assert_true(v.defined);
    assert_true(v.num == want);
    expr_destroy(e);
}

static void test_limits(void **state)
{
    char *s;

    /* "(" levels: the whole expression is level 1, each '(' one more */
    s = repeat("(", 63, "1", ")", 63);
    expect_num(s, 1);
    free(s);
    s = repeat("(", 64, "1", ")", 64);
    expect_error("64 parens", s, "expression too deeply nested", 64);
    free(s);
    s = repeat("(", 10000, "", "", 0);
    expect_error("10000 '('", s, "expression too long", EXPR_MAX_LEN);
    free(s);
    s = repeat("(", 4000, "", "", 0);
    expect_error("4000 '('", s, "expression too deeply nested", 64);
    free(s);
    s = repeat("(", 10000, "1", ")", 10000);
    expect_error("10000 balanced parens", s, "expression too long", 4096);
    free(s);
    /* unary operators */
    s = repeat("-", 63, "1", "", 0);
    expect_num(s, -1);
    free(s);
    s = repeat("-", 64, "1", "", 0);
    expect_error("64 minus", s, "expression too deeply nested", 63);
    free(s);
    s = repeat("not ", 1000, "true", "", 0);
    expect_error("1000 not", s, "expression too deeply nested", 63 * 4);
    free(s);
    s = repeat("min(", 500, "1", ")", 500);
    expect_error("500 min(", s, "expression too deeply nested", 64 * 4); /* its argument */
    free(s);
    /* the tree's height: a left-leaning chain of 63 '+' is 64 high */
    s = repeat("1", 1, "", "+1", 63);
    expect_num(s, 64);
    free(s);
    s = repeat("1", 1, "", "+1", 64);
    expect_error("64 '+'", s, "expression too deeply nested", 127);
    free(s);
    /* source length */
    s = repeat("1", 1, "", " ", EXPR_MAX_LEN - 1);
    expect_num(s, 1);
    free(s);
    s = repeat("1", 1, "", " ", EXPR_MAX_LEN);
    expect_error("4097 bytes", s, "expression too long", EXPR_MAX_LEN);
    free(s);
    /* node count: 32 groups of (1+...+1) with 32 ones: 63 nodes each, 31 '+' between
     * them, 2047 in all but only 63 high; group 16's second '1' is node 1025 */
    {
        char *group = repeat("1", 1, "", "+1", 31), *g2 = malloc(strlen(group) + 4);
        assert_non_null(g2);
        sprintf(g2, "(%s)", group);
        s = repeat(g2, 1, "", "", 0);
        for (int k = 1; k < 32; k++) {
            char *t = malloc(strlen(s) + strlen(g2) + 2);
            assert_non_null(t);
            sprintf(t, "%s+%s", s, g2);
            free(s);
            s = t;
        }
        assert_int_equal(strlen(s), 32 * 65 + 31);
        expect_error("2047 nodes", s, "expression too long", 16 * 66 + 3);
        free(s);
        /* 15 groups (15 * 63 + 14 = 959 nodes) parse */
        s = repeat(g2, 1, "", "", 0);
        for (int k = 1; k < 15; k++) {
            char *t = malloc(strlen(s) + strlen(g2) + 2);
            assert_non_null(t);
            sprintf(t, "%s+%s", s, g2);
            free(s);
            s = t;
        }
        expect_num(s, 15 * 32);
        free(s);
        free(group);
        free(g2);
    }
}

/* ---- the rest of the interface ---- */

struct collected {
    int n;
    char names[8][64];
};

static void collect(void *ud, const char *name)
{
    struct collected *c = ud;

    assert_true(c->n < 8);
    snprintf(c->names[c->n++], sizeof(c->names[0]), "%s", name);
}

static void test_names(void **state)
{
    struct collected got = {0};
    int calls = 0;
    struct expr *e = expr_parse("score + score * team.size > prev.score and grade == 'a' or "
                                "round(team.size) == score",
                                name_cb, &calls, NULL, NULL, 0, NULL);

    assert_non_null(e);
    assert_int_equal(calls, 4); /* each distinct name is checked once */
    expr_names(e, collect, &got);
    assert_int_equal(got.n, 4);
    assert_string_equal(got.names[0], "score");
    assert_string_equal(got.names[1], "team.size");
    assert_string_equal(got.names[2], "prev.score");
    assert_string_equal(got.names[3], "grade");
    expr_destroy(e);

    got.n = 0;
    e = expr_parse("1 + 2", name_cb, NULL, NULL, NULL, 0, NULL);
    assert_non_null(e);
    expr_names(e, collect, &got);
    assert_int_equal(got.n, 0);
    expr_destroy(e);
}

static void test_source_and_null(void **state)
{
    char src[] = "score > 1";
    enum expr_type type;
    struct expr *e = expr_parse(src, name_cb, NULL, &type, NULL, 0, NULL);

    assert_non_null(e);
    assert_int_equal(type, EXPR_BOOL);
    src[0] = 'S'; /* the expression keeps its own copy */
    assert_string_equal(expr_source(e), "score > 1");
    assert_ptr_not_equal(expr_source(e), src);
    /* without a lookup every name is undefined */
    assert_false(expr_eval(e, NULL, NULL).defined);
    expr_destroy(e);
    expr_destroy(NULL);
    assert_null(expr_source(NULL));
    expr_names(NULL, collect, NULL);

    /* no name callback: every name is unknown */
    char err[64];
    size_t off = 7;
    assert_null(expr_parse("1 + score", NULL, NULL, NULL, err, sizeof(err), &off));
    assert_string_equal(err, "unknown name 'score'");
    assert_int_equal(off, 4);
    /* no err buffer, a small one, no offset */
    assert_null(expr_parse("scroe", name_cb, NULL, NULL, NULL, 0, NULL));
    char small[8];
    assert_null(expr_parse("scroe", name_cb, NULL, NULL, small, sizeof(small), NULL));
    assert_string_equal(small, "unknown");
    assert_null(expr_parse(NULL, name_cb, NULL, NULL, err, sizeof(err), &off));
    assert_string_equal(err, "empty expression");
}

static void test_truthy(void **state)
{
    assert_true(expr_truthy((struct expr_value){.defined = true, .type = EXPR_BOOL, .b = true}));
    assert_false(expr_truthy((struct expr_value){.defined = true, .type = EXPR_BOOL}));
    assert_false(expr_truthy((struct expr_value){.defined = false, .type = EXPR_BOOL, .b = true}));
    assert_false(expr_truthy((struct expr_value){.defined = true, .type = EXPR_NUM, .num = 1}));
    assert_false(expr_truthy((struct expr_value){.defined = true, .type = EXPR_STR, .str = "t"}));
}

/* ---- random token soup ---- */

static uint64_t rng_next(uint64_t *s)
{
    /* xorshift64*: deterministic on every libc, unlike rand() */
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}

static const char *const soup[] = {
    "1",
    "0",
    "2.5",
    "1e3",
    "1e999",
    "1.",
    "1.2.3",
    "007",
    "score",
    "grade",
    "rank",
    "eligible",
    "team.sales",
    "team.size",
    "review.follow_up.manager",
    "prev.score",
    "period",
    "scroe",
    "team.",
    ".",
    "x",
    "y",
    "n",
    "s",
    "a",
    "b",
    "u",
    "and",
    "or",
    "not",
    "true",
    "false",
    "+",
    "-",
    "*",
    "/",
    "==",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "=",
    "!",
    "(",
    "(",
    "(",
    ")",
    ")",
    ")",
    ",",
    ",",
    "min(",
    "max(",
    "abs(",
    "round(",
    "sqrt(",
    "min",
    "'a'",
    "\"b\"",
    "'x\\'y'",
    "'unterminated",
    "\"\\n\"",
    "\\",
    "#",
    "\xc3\xa9",
    "\t",
    "\n",
    "0/0",
    "'",
    "\"",
    "e",
    "E",
    "_",
    "1e-5",
    "-",
    "not",
    "(",
    ")",
};

struct soup_vals {
    struct expr_value v[N(known)];
};

static struct expr_value soup_lookup(void *ud, const char *name)
{
    struct soup_vals *sv = ud;

    for (size_t i = 0; i < N(known); i++)
        if (strcmp(known[i].name, name) == 0)
            return sv->v[i];
    fail_msg("lookup of unknown name '%s'", name);
    return (struct expr_value){.defined = false};
}

struct stats {
    int parsed, defined, failed;
};

static void random_values(uint64_t *seed, struct soup_vals *sv)
{
    static const double nums[] = {0, 1, -1, 0.5, 1e308, -1e308, 3, 70};
    static const char *const strs[] = {"", "a", "b", "excellent"};

    for (size_t k = 0; k < N(known); k++) {
        uint64_t r = rng_next(seed);
        sv->v[k] = (struct expr_value){.defined = r % 4 != 0, .type = known[k].type};
        sv->v[k].num = nums[(r >> 8) % N(nums)];
        sv->v[k].str = strs[(r >> 16) % N(strs)];
        sv->v[k].b = (r >> 24) & 1;
    }
}

/* The properties: an error has a message and an offset within the source; a parse
 * has a type, keeps its source, and evaluates to a value of that type, finite when a
 * defined number. want_type >= 0: the source is well-formed and must parse to it. */
static void check_one(const char *src, const struct soup_vals *sv, int want_type, struct stats *st)
{
    char err[128] = "";
    size_t off = SIZE_MAX, len = strlen(src);
    enum expr_type type = (enum expr_type) - 1;
    struct expr *e = expr_parse(src, name_cb, NULL, &type, err, sizeof(err), &off);
    struct expr_value v;

    if (!e) {
        st->failed++;
        if (want_type >= 0)
            fail_msg("'%s': error '%s' at %zu, want a parse", src, err, off);
        if (err[0] == '\0' || off > len)
            fail_msg("'%s': error '%s' at %zu (length %zu)", src, err, off, len);
        return;
    }
    st->parsed++;
    assert_true(type == EXPR_NUM || type == EXPR_STR || type == EXPR_BOOL);
    if (want_type >= 0 && (int)type != want_type)
        fail_msg("'%s': type %s, want %s", src, type_name[type], type_name[want_type]);
    assert_string_equal(expr_source(e), src);
    v = expr_eval(e, soup_lookup, (void *)sv);
    if (v.type != type)
        fail_msg("'%s': value type %d, parse type %d", src, v.type, type);
    if (v.defined) {
        st->defined++;
        if (type == EXPR_NUM && !isfinite(v.num))
            fail_msg("'%s': non-finite %g", src, v.num);
        if (type == EXPR_STR)
            assert_non_null(v.str);
    }
    expr_destroy(e);
}

static void test_token_soup(void **state)
{
    uint64_t seed = 0x9e3779b97f4a7c15ULL;
    char src[1024];
    struct stats st = {0};

    for (int iter = 0; iter < 100000; iter++) {
        size_t len = 0, ntok = rng_next(&seed) % 24;
        struct soup_vals sv;

        for (size_t k = 0; k < ntok; k++) {
            const char *t = soup[rng_next(&seed) % N(soup)];
            const char *sep = rng_next(&seed) % 3 ? " " : "";
            len += (size_t)snprintf(src + len, sizeof(src) - len, "%s%s", t, sep);
        }
        src[len] = '\0';
        random_values(&seed, &sv);
        check_one(src, &sv, -1, &st);
    }
    print_message("token soup: %d parsed (%d defined), %d errors\n", st.parsed, st.defined,
                  st.failed);
    assert_true(st.parsed > 1000); /* the soup must reach the evaluator too */
    assert_true(st.failed > 1000);
}

/* ---- random well-typed expressions, then the same with a few bytes broken ---- */

struct gen {
    uint64_t seed;
    char *s;
    size_t len, cap;
};

static void put(struct gen *g, const char *t)
{
    size_t n = strlen(t);
    if (g->len + n + 1 > g->cap)
        return; /* the caller's buffer is large enough for depth 5; never cut mid-way */
    memcpy(g->s + g->len, t, n + 1);
    g->len += n;
}

static const char *pick(struct gen *g, const char *const *list, size_t n)
{
    return list[rng_next(&g->seed) % n];
}

#define PICK(g, list) pick((g), (list), N(list))

static void gen_expr(struct gen *g, enum expr_type t, int depth);

static void gen_num(struct gen *g, int depth)
{
    static const char *const leaves[] = {
        "0",     "1",     "2.5",  "1e3",        "0.005",
        "1e308", "score", "rank", "team.sales", "team.size",
        "x",     "y",     "n",    "prev.score", "review.follow_up.manager"};
    static const char *const ops[] = {" + ", " - ", " * ", " / "};
    static const char *const fns[] = {"min(", "max("};
    uint64_t r = rng_next(&g->seed) % (depth > 0 ? 7 : 1);

    switch (r) {
    case 0:
        put(g, PICK(g, leaves));
        break;
    case 1:
    case 2:
        put(g, "(");
        gen_num(g, depth - 1);
        put(g, PICK(g, ops));
        gen_num(g, depth - 1);
        put(g, ")");
        break;
    case 3:
        put(g, "-");
        gen_num(g, depth - 1);
        break;
    case 4: {
        int n = 1 + (int)(rng_next(&g->seed) % 8);
        put(g, PICK(g, fns));
        for (int k = 0; k < n; k++) {
            if (k)
                put(g, ", ");
            gen_num(g, depth - 1);
        }
        put(g, ")");
        break;
    }
    case 5:
        put(g, "abs(");
        gen_num(g, depth - 1);
        put(g, ")");
        break;
    default:
        put(g, "round(");
        gen_num(g, depth - 1);
        if (rng_next(&g->seed) & 1) {
            put(g, ", ");
            gen_num(g, 0);
        }
        put(g, ")");
        break;
    }
}

static void gen_expr(struct gen *g, enum expr_type t, int depth)
{
    static const char *const strs[] = {"'a'",   "\"b\"",  "''", "'x\\'y'",
                                       "grade", "period", "s",  "prev.grade"};
    static const char *const bools[] = {"true", "false", "eligible", "a", "b", "u"};
    static const char *const cmps[] = {" == ", " != ", " < ", " <= ", " > ", " >= "};
    static const char *const eqs[] = {" == ", " != "};
    static const char *const logic[] = {" and ", " or "};
    uint64_t r;

    if (t == EXPR_NUM) {
        gen_num(g, depth);
        return;
    }
    if (t == EXPR_STR) {
        put(g, PICK(g, strs));
        return;
    }
    r = rng_next(&g->seed) % (depth > 0 ? 6 : 1);
    switch (r) {
    case 0:
        put(g, PICK(g, bools));
        break;
    case 1:
        put(g, "(");
        gen_num(g, depth - 1);
        put(g, PICK(g, cmps));
        gen_num(g, depth - 1);
        put(g, ")");
        break;
    case 2: {
        enum expr_type u = (enum expr_type)(rng_next(&g->seed) % 3);
        put(g, "(");
        gen_expr(g, u, depth - 1);
        put(g, PICK(g, eqs));
        gen_expr(g, u, depth - 1);
        put(g, ")");
        break;
    }
    case 3: /* parenthesised: "x == not y" is not in the grammar */
        put(g, "(not ");
        gen_expr(g, EXPR_BOOL, depth - 1);
        put(g, ")");
        break;
    default:
        put(g, "(");
        gen_expr(g, EXPR_BOOL, depth - 1);
        put(g, PICK(g, logic));
        gen_expr(g, EXPR_BOOL, depth - 1);
        put(g, ")");
        break;
    }
}

static void test_generated(void **state)
{
    static char src[EXPR_MAX_LEN * 4];
    struct gen g = {.seed = 0x243f6a8885a308d3ULL, .s = src, .cap = sizeof(src)};
    struct stats good = {0}, broken = {0};

    for (int iter = 0; iter < 50000; iter++) {
        enum expr_type t = (enum expr_type)(rng_next(&g.seed) % 3);
        struct soup_vals sv;

        g.len = 0;
        src[0] = '\0';
        gen_expr(&g, t, 1 + (int)(rng_next(&g.seed) % 4));
        random_values(&g.seed, &sv);
        if (g.len <= EXPR_MAX_LEN)
            check_one(src, &sv, (int)t, &good);
        /* 1-3 mutations: delete a byte, insert a soup token, or overwrite a byte */
        for (int m = 1 + (int)(rng_next(&g.seed) % 3); m > 0 && g.len > 0; m--) {
            size_t at = rng_next(&g.seed) % g.len;
            switch (rng_next(&g.seed) % 3) {
            case 0:
                memmove(src + at, src + at + 1, g.len - at);
                g.len--;
                break;
            case 1: {
                const char *tok = soup[rng_next(&g.seed) % N(soup)];
                size_t n = strlen(tok);
                if (g.len + n + 1 > sizeof(src))
                    break;
                memmove(src + at + n, src + at, g.len - at + 1);
                memcpy(src + at, tok, n);
                g.len += n;
                break;
            }
            default:
                src[at] = (char)(1 + rng_next(&g.seed) % 255);
                break;
            }
        }
        check_one(src, &sv, -1, &broken);
    }
    print_message("generated: %d parsed (%d defined); broken: %d parsed, %d errors\n", good.parsed,
                  good.defined, broken.parsed, broken.failed);
    assert_true(good.parsed > 40000);
    assert_true(broken.failed > 10000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_eval_table),      cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_limits),          cmocka_unit_test(test_names),
        cmocka_unit_test(test_source_and_null), cmocka_unit_test(test_truthy),
        cmocka_unit_test(test_token_soup),      cmocka_unit_test(test_generated),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
