/* fuzz_expr — libFuzzer harness for rules/expr.c, the rule expression language.
 * Input: the expression's text, optionally followed by a NUL byte and value selectors:
 * the k-th distinct name the expression uses takes selector k (cycled) to pick its value
 * from a table of awkward ones (undefined, ±0, huge, tiny, NaN-making...). Names are the
 * ones a rule may use (rule_name_type) plus the short test names x, y, n (numbers), a, b
 * (bools) and s (a string). Oracles beyond the sanitizers: parse errors carry a message
 * and an offset inside the text; evaluation yields the static type, and a defined number
 * is finite; the source text is kept. Evaluation runs twice per expression (as the
 * daemon does for each agent), once with everything undefined. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rules/expr.h"
#include "rules/rule.h"
#include "fuzz/fuzz.h"

static const struct {
    const char *name;
    enum expr_type type;
} extra[] = {
    {"x", EXPR_NUM},  {"y", EXPR_NUM},  {"n", EXPR_NUM},
    {"a", EXPR_BOOL}, {"b", EXPR_BOOL}, {"s", EXPR_STR},
};

static int name_cb(void *ud, const char *name, enum expr_type *type)
{
    (void)ud;
    for (size_t i = 0; i < sizeof(extra) / sizeof(extra[0]); i++)
        if (strcmp(name, extra[i].name) == 0) {
            *type = extra[i].type;
            return 0;
        }
    return rule_name_type(NULL, name, type);
}

static const double nums[] = {0,      -0.0, 1,   -1,     0.5,      100, 3,    1e308, -1e308,
                              5e-324, 1e15, 0.1, 29.005, INFINITY, NAN, -2.5, 1e-300};
static const char *const strs[] = {"", "a", "excellent", "x\"y", "\xe4\xb8\xad"};

struct ctx {
    const uint8_t *sel;
    size_t nsel;
    bool all_undefined;
    const struct expr *e;
    char **names; /* distinct names in expr_names order */
    size_t nnames;
};

static void collect(void *ud, const char *name)
{
    struct ctx *c = ud;
    c->names = realloc(c->names, (c->nnames + 1) * sizeof(*c->names));
    CHECK(c->names != NULL);
    c->names[c->nnames++] = (char *)name;
}

/* Values by the name's position among the expression's names; sometimes of the wrong
 * type, which the evaluator must treat as undefined. */
static struct expr_value lookup(void *ud, const char *name)
{
    struct ctx *c = ud;
    enum expr_type t = EXPR_NUM;
    size_t k = 0;
    unsigned s;

    CHECK(name_cb(NULL, name, &t) == 0);
    while (k < c->nnames && strcmp(c->names[k], name) != 0)
        k++;
    CHECK(k < c->nnames); /* only names the expression declared are looked up */
    if (c->all_undefined)
        return (struct expr_value){.defined = false, .type = t};
    s = c->nsel ? c->sel[k % c->nsel] : (unsigned)k * 7;
    if (s % 16 == 15)
        return (struct expr_value){.defined = false, .type = t};
    if (s % 16 == 14) /* a wrong type */
        t = (enum expr_type)((t + 1) % 3);
    switch (t) {
    case EXPR_NUM:
        return (struct expr_value){
            .defined = true, .type = t, .num = nums[(s / 16) % (sizeof(nums) / sizeof(nums[0]))]};
    case EXPR_STR:
        return (struct expr_value){
            .defined = true, .type = t, .str = strs[(s / 16) % (sizeof(strs) / sizeof(strs[0]))]};
    case EXPR_BOOL:
        return (struct expr_value){.defined = true, .type = t, .b = (s / 16) & 1};
    }
    return (struct expr_value){.defined = false, .type = t};
}

static void check_value(struct expr_value v, enum expr_type want)
{
    CHECK(v.type == want);
    if (v.defined && v.type == EXPR_NUM)
        CHECK(isfinite(v.num));
    if (v.defined && v.type == EXPR_STR)
        CHECK(v.str != NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size);
    size_t len = nul ? (size_t)(nul - data) : size;
    char err[512];
    size_t off = 0;
    enum expr_type type;

    char *src = malloc(len + 1);
    CHECK(src != NULL);
    memcpy(src, data, len);
    src[len] = '\0';

    struct expr *e = expr_parse(src, name_cb, NULL, &type, err, sizeof(err), &off);
    if (e == NULL) {
        CHECK(err[0] != '\0' && strnlen(err, sizeof(err)) < sizeof(err));
        CHECK(off <= len);
        free(src);
        return 0;
    }
    CHECK(strcmp(expr_source(e), src) == 0);
    CHECK((unsigned)type <= EXPR_BOOL);

    struct ctx c = {.sel = nul ? nul + 1 : NULL, .nsel = nul ? size - len - 1 : 0, .e = e};
    expr_names(e, collect, &c);
    for (int pass = 0; pass < 3; pass++) {
        c.all_undefined = pass == 2;
        struct expr_value v = expr_eval(e, lookup, &c);
        check_value(v, type);
        if (!v.defined || v.type != EXPR_BOOL || !v.b)
            CHECK(!expr_truthy(v));
        v = expr_eval_left(e, lookup, &c);
        if (v.defined && v.type == EXPR_NUM)
            CHECK(isfinite(v.num));
    }
    /* No lookup at all: every name is undefined. */
    check_value(expr_eval(e, NULL, NULL), type);
    free(c.names);
    expr_destroy(e);
    free(src);
    return 0;
}
