/* expr — lexer, recursive-descent parser, type checker and evaluator of the rule
 * expression language (grammar and semantics in expr.h).
 * Invariants: the tree lives in one node array addressed by index; the parser recurses
 * at most EXPR_MAX_DEPTH levels, the tree is at most EXPR_MAX_DEPTH high and holds at
 * most EXPR_MAX_NODES nodes, so evaluation's recursion is bounded as well. Every
 * number a parsed expression produces is finite; anything else becomes undefined. */
#include "rules/expr.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator/kpi.h"
#include "common/buf.h"

#define MAX_ARGS 8
#define SNIP 40 /* bytes of a token quoted in a message */

enum tok {
    T_END,
    T_NUM,
    T_STR,
    T_NAME,
    T_LPAREN,
    T_RPAREN,
    T_COMMA,
    T_PLUS,
    T_MINUS,
    T_STAR,
    T_SLASH,
    T_EQ,
    T_NE,
    T_LT,
    T_LE,
    T_GT,
    T_GE,
    T_AND,
    T_OR,
    T_NOT,
    T_TRUE,
    T_FALSE,
};

static const char *const tok_text[] = {
    [T_PLUS] = "+",  [T_MINUS] = "-", [T_STAR] = "*",  [T_SLASH] = "/", [T_EQ] = "==",
    [T_NE] = "!=",   [T_LT] = "<",    [T_LE] = "<=",   [T_GT] = ">",    [T_GE] = ">=",
    [T_AND] = "and", [T_OR] = "or",   [T_NOT] = "not",
};

static const struct keyword {
    const char *word;
    enum tok tok;
} keywords[] = {
    {.word = "and", .tok = T_AND},     {.word = "or", .tok = T_OR},
    {.word = "not", .tok = T_NOT},     {.word = "true", .tok = T_TRUE},
    {.word = "false", .tok = T_FALSE},
};

enum fn { FN_MIN, FN_MAX, FN_ABS, FN_ROUND, FN_COUNT };

static const struct func {
    const char *name;
    int min_args, max_args;
    const char *arity; /* "function 'x' takes <arity>" */
    const char *needs; /* "function 'x' needs <needs>, got string" */
} funcs[FN_COUNT] = {
    [FN_MIN] = {.name = "min",
                .min_args = 1,
                .max_args = MAX_ARGS,
                .arity = "1 to 8 arguments",
                .needs = "numbers"},
    [FN_MAX] = {.name = "max",
                .min_args = 1,
                .max_args = MAX_ARGS,
                .arity = "1 to 8 arguments",
                .needs = "numbers"},
    [FN_ABS] =
        {.name = "abs", .min_args = 1, .max_args = 1, .arity = "1 argument", .needs = "a number"},
    [FN_ROUND] = {.name = "round",
                  .min_args = 1,
                  .max_args = 2,
                  .arity = "1 or 2 arguments",
                  .needs = "numbers"},
};

static const char *const type_names[] = {
    [EXPR_NUM] = "number",
    [EXPR_STR] = "string",
    [EXPR_BOOL] = "bool",
};

enum kind { K_NUM, K_STR, K_BOOL, K_NAME, K_NEG, K_NOT, K_AND, K_OR, K_ARITH, K_CMP, K_CALL };

struct node {
    enum kind kind;
    enum expr_type type; /* static type, checked at parse time */
    enum tok op;         /* K_ARITH, K_CMP */
    enum fn fn;          /* K_CALL */
    int nkids;
    int kid[MAX_ARGS];
    int height; /* 1 for a leaf */
    double num; /* K_NUM */
    bool b;     /* K_BOOL */
    char *str;  /* K_STR: the decoded literal, owned */
    int name;   /* K_NAME: index into names */
};

struct expr {
    char *src;
    struct node *nodes;
    int nnodes, root;
    char **names; /* distinct, in order of first use */
    enum expr_type *name_types;
    int nnames;
};

struct token {
    enum tok kind;
    size_t pos, len;
    double num; /* T_NUM */
};

struct parser {
    const char *src;
    size_t len;
    size_t next; /* where the token after tok starts (before whitespace) */
    struct token tok;
    expr_name_cb name_cb;
    void *ud;
    struct expr *e; /* being built */
    int nodes_cap, names_cap;
    int depth;
    bool failed;
    char *err;
    size_t errlen, err_offset;
};

/* ---- errors ---- */

static int fail(struct parser *p, size_t pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Records the first error only; returns -1 so callers can `return fail(...)`. */
static int fail(struct parser *p, size_t pos, const char *fmt, ...)
{
    va_list ap;

    if (p->failed)
        return -1;
    p->failed = true;
    p->err_offset = pos;
    if (p->err && p->errlen > 0) {
        va_start(ap, fmt);
        vsnprintf(p->err, p->errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* Copies up to SNIP bytes of s into out, with "..." when cut. */
static void snip(const char *s, size_t n, char out[SNIP + 4])
{
    if (n > SNIP)
        snprintf(out, SNIP + 4, "%.*s...", SNIP, s);
    else
        snprintf(out, SNIP + 4, "%.*s", (int)n, s);
}

static int unexpected(struct parser *p)
{
    char t[SNIP + 4];

    if (p->tok.kind == T_END)
        return fail(p, p->tok.pos, "unexpected end of expression");
    snip(p->src + p->tok.pos, p->tok.len, t);
    return fail(p, p->tok.pos, "unexpected '%s'", t);
}

/* ---- lexer ---- */

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_ident_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_ident(char c)
{
    return is_ident_start(c) || is_digit(c);
}

/* [0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)? — and no letter, digit, '_' or '.' right after,
 * so "1.2.3", "1e" and "2x" are one bad number rather than a number and a surprise. */
static int lex_number(struct parser *p, size_t i)
{
    const char *s = p->src;
    size_t j = i;
    char t[SNIP + 4], *copy;
    double v;

    while (is_digit(s[j]))
        j++;
    if (s[j] == '.' && is_digit(s[j + 1])) {
        j++;
        while (is_digit(s[j]))
            j++;
    }
    if ((s[j] == 'e' || s[j] == 'E') &&
        (is_digit(s[j + 1]) || ((s[j + 1] == '+' || s[j + 1] == '-') && is_digit(s[j + 2])))) {
        j += is_digit(s[j + 1]) ? 1 : 2;
        while (is_digit(s[j]))
            j++;
    }
    if (is_ident(s[j]) || s[j] == '.') {
        while (is_ident(s[j]) || s[j] == '.')
            j++;
        snip(s + i, j - i, t);
        return fail(p, i, "invalid number '%s'", t);
    }
    copy = xstrndup(s + i, j - i);
    v = strtod(copy, NULL); /* the token is a strict subset of strtod's syntax */
    free(copy);
    if (!isfinite(v)) {
        snip(s + i, j - i, t);
        return fail(p, i, "number '%s' is out of range", t);
    }
    p->tok.kind = T_NUM;
    p->tok.len = j - i;
    p->tok.num = v;
    return 0;
}

/* Only \" \' and \\ are escapes; the token keeps its quotes, decode() strips them. */
static int lex_string(struct parser *p, size_t i)
{
    const char *s = p->src;
    char q = s[i];
    size_t j = i + 1;

    for (;;) {
        if (s[j] == '\0')
            return fail(p, i, "unterminated string");
        if (s[j] == q)
            break;
        if (s[j] == '\\') {
            char c = s[j + 1];
            if (c == '\0')
                return fail(p, i, "unterminated string");
            if (c != '"' && c != '\'' && c != '\\') {
                if (c > ' ' && c < 0x7f)
                    return fail(p, j, "invalid escape '\\%c' in string", c);
                return fail(p, j, "invalid escape in string");
            }
            j++;
        }
        j++;
    }
    p->tok.kind = T_STR;
    p->tok.len = j + 1 - i;
    return 0;
}

/* An identifier, or dotted identifiers without spaces (team.sales). A keyword is a
 * keyword even before a dot, so "true.x" is "true" then an unexpected '.'. */
static void lex_name(struct parser *p, size_t i)
{
    const char *s = p->src;
    size_t j = i;

    while (is_ident(s[j]))
        j++;
    for (size_t k = 0; k < sizeof(keywords) / sizeof(keywords[0]); k++) {
        if (strlen(keywords[k].word) == j - i && memcmp(keywords[k].word, s + i, j - i) == 0) {
            p->tok.kind = keywords[k].tok;
            p->tok.len = j - i;
            return;
        }
    }
    while (s[j] == '.' && is_ident_start(s[j + 1])) {
        j++;
        while (is_ident(s[j]))
            j++;
    }
    p->tok.kind = T_NAME;
    p->tok.len = j - i;
}

/* Reads the next token into p->tok. */
static int lex(struct parser *p)
{
    const char *s = p->src;
    size_t i = p->next;
    char c;

    if (p->failed)
        return -1;
    while (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')
        i++;
    p->tok = (struct token){.kind = T_END, .pos = i, .len = 1};
    c = s[i];
    if (c == '\0') {
        p->tok.len = 0;
    } else if (is_digit(c)) {
        if (lex_number(p, i) != 0)
            return -1;
    } else if (is_ident_start(c)) {
        lex_name(p, i);
    } else if (c == '"' || c == '\'') {
        if (lex_string(p, i) != 0)
            return -1;
    } else if (c == '=' && s[i + 1] == '=') {
        p->tok.kind = T_EQ;
        p->tok.len = 2;
    } else if (c == '!' && s[i + 1] == '=') {
        p->tok.kind = T_NE;
        p->tok.len = 2;
    } else if (c == '<' || c == '>') {
        bool eq = s[i + 1] == '=';
        p->tok.kind = c == '<' ? (eq ? T_LE : T_LT) : (eq ? T_GE : T_GT);
        p->tok.len = eq ? 2 : 1;
    } else {
        switch (c) {
        case '+':
            p->tok.kind = T_PLUS;
            break;
        case '-':
            p->tok.kind = T_MINUS;
            break;
        case '*':
            p->tok.kind = T_STAR;
            break;
        case '/':
            p->tok.kind = T_SLASH;
            break;
        case '(':
            p->tok.kind = T_LPAREN;
            break;
        case ')':
            p->tok.kind = T_RPAREN;
            break;
        case ',':
            p->tok.kind = T_COMMA;
            break;
        case '=':
            return fail(p, i, "unexpected '=' (use '==' to compare)");
        case '!':
            return fail(p, i, "unexpected '!' (use 'not')");
        case '&':
            return fail(p, i, "unexpected '&' (use 'and')");
        case '|':
            return fail(p, i, "unexpected '|' (use 'or')");
        default:
            if (c > ' ' && c < 0x7f)
                return fail(p, i, "unexpected '%c'", c);
            return fail(p, i, "unexpected byte 0x%02x", (unsigned)(unsigned char)c);
        }
    }
    p->next = i + p->tok.len;
    return 0;
}

/* ---- tree building ---- */

/* Appends a node over kids (indices of nodes already built); checks size and height. */
static int node_new(struct parser *p, size_t pos, enum kind kind, enum expr_type type,
                    const int *kids, int nkids)
{
    struct expr *e = p->e;
    struct node *n;
    int height = 0;

    for (int k = 0; k < nkids; k++)
        if (e->nodes[kids[k]].height > height)
            height = e->nodes[kids[k]].height;
    height++;
    if (height > EXPR_MAX_DEPTH)
        return fail(p, pos, "expression too deeply nested");
    if (e->nnodes >= EXPR_MAX_NODES)
        return fail(p, pos, "expression too long");
    if (e->nnodes == p->nodes_cap) {
        p->nodes_cap = p->nodes_cap ? 2 * p->nodes_cap : 16;
        e->nodes = xrealloc(e->nodes, (size_t)p->nodes_cap * sizeof(*e->nodes));
    }
    n = &e->nodes[e->nnodes];
    *n = (struct node){.kind = kind, .type = type, .nkids = nkids, .height = height};
    for (int k = 0; k < nkids; k++)
        n->kid[k] = kids[k];
    return e->nnodes++;
}

static enum expr_type type_of(struct parser *p, int i)
{
    return p->e->nodes[i].type;
}

/* and, or: bools in, bool out. */
static int logic_new(struct parser *p, size_t pos, enum tok op, int l, int r)
{
    enum expr_type lt = type_of(p, l), rt = type_of(p, r);
    int kids[2] = {l, r};

    if (lt != EXPR_BOOL || rt != EXPR_BOOL)
        return fail(p, pos, "operator '%s' needs bools, got %s and %s", tok_text[op],
                    type_names[lt], type_names[rt]);
    return node_new(p, pos, op == T_AND ? K_AND : K_OR, EXPR_BOOL, kids, 2);
}

/* + - * / : numbers in, number out. */
static int arith_new(struct parser *p, size_t pos, enum tok op, int l, int r)
{
    enum expr_type lt = type_of(p, l), rt = type_of(p, r);
    int kids[2] = {l, r}, i;

    if (lt != EXPR_NUM || rt != EXPR_NUM)
        return fail(p, pos, "operator '%s' needs numbers, got %s and %s", tok_text[op],
                    type_names[lt], type_names[rt]);
    i = node_new(p, pos, K_ARITH, EXPR_NUM, kids, 2);
    if (i >= 0)
        p->e->nodes[i].op = op;
    return i;
}

/* == != on two values of one type; < <= > >= on numbers. */
static int cmp_new(struct parser *p, size_t pos, enum tok op, int l, int r)
{
    enum expr_type lt = type_of(p, l), rt = type_of(p, r);
    int kids[2] = {l, r}, i;

    if (op == T_EQ || op == T_NE) {
        if (lt != rt)
            return fail(p, pos, "operator '%s' needs two values of the same type, got %s and %s",
                        tok_text[op], type_names[lt], type_names[rt]);
    } else if (lt != EXPR_NUM || rt != EXPR_NUM) {
        return fail(p, pos, "operator '%s' needs numbers, got %s and %s", tok_text[op],
                    type_names[lt], type_names[rt]);
    }
    i = node_new(p, pos, K_CMP, EXPR_BOOL, kids, 2);
    if (i >= 0)
        p->e->nodes[i].op = op;
    return i;
}

/* The string literal of the current token without quotes and escapes. */
static char *decode(struct parser *p)
{
    const char *s = p->src + p->tok.pos + 1;
    size_t n = p->tok.len - 2, o = 0;
    char *out = xmalloc(n + 1);

    for (size_t k = 0; k < n; k++) {
        if (s[k] == '\\')
            k++; /* lex_string allowed only \" \' \\ */
        out[o++] = s[k];
    }
    out[o] = '\0';
    return out;
}

/* Checks the name through the callback and returns its index in names (added once). */
static int name_index(struct parser *p, size_t pos, size_t len, enum expr_type *type)
{
    struct expr *e = p->e;
    char *name = xstrndup(p->src + pos, len);
    enum expr_type t = EXPR_NUM;

    for (int k = 0; k < e->nnames; k++) {
        if (strcmp(e->names[k], name) == 0) {
            free(name);
            *type = e->name_types[k];
            return k;
        }
    }
    if (!p->name_cb || p->name_cb(p->ud, name, &t) != 0 || (unsigned)t > EXPR_BOOL) {
        char sn[SNIP + 4];
        snip(name, len, sn);
        free(name);
        return fail(p, pos, "unknown name '%s'", sn);
    }
    if (e->nnames == p->names_cap) {
        p->names_cap = p->names_cap ? 2 * p->names_cap : 8;
        e->names = xrealloc(e->names, (size_t)p->names_cap * sizeof(*e->names));
        e->name_types = xrealloc(e->name_types, (size_t)p->names_cap * sizeof(*e->name_types));
    }
    e->names[e->nnames] = name;
    e->name_types[e->nnames] = t;
    *type = t;
    return e->nnames++;
}

/* ---- parser: one function per grammar rule of expr.h ---- */

static int parse_or(struct parser *p);

/* FUNC "(" args ")": the current token is the function's name, '(' follows it. */
static int parse_call(struct parser *p)
{
    size_t name_pos = p->tok.pos, name_len = p->tok.len, paren_pos, arg_pos[MAX_ARGS];
    int args[MAX_ARGS], nargs = 0, fn = -1, i;
    char sn[SNIP + 4];

    for (int k = 0; k < FN_COUNT; k++)
        if (strlen(funcs[k].name) == name_len &&
            memcmp(funcs[k].name, p->src + name_pos, name_len) == 0)
            fn = k;
    if (fn < 0) {
        snip(p->src + name_pos, name_len, sn);
        return fail(p, name_pos, "unknown function '%s'", sn);
    }
    if (lex(p) != 0) /* the '(' */
        return -1;
    paren_pos = p->tok.pos;
    if (lex(p) != 0)
        return -1;
    if (p->tok.kind != T_RPAREN) {
        for (;;) {
            if (nargs == funcs[fn].max_args)
                return fail(p, name_pos, "function '%s' takes %s", funcs[fn].name, funcs[fn].arity);
            arg_pos[nargs] = p->tok.pos;
            if ((args[nargs++] = parse_or(p)) < 0)
                return -1;
            if (p->tok.kind == T_RPAREN)
                break;
            if (p->tok.kind == T_END)
                return fail(p, paren_pos, "unclosed '('");
            if (p->tok.kind != T_COMMA)
                return unexpected(p);
            if (lex(p) != 0)
                return -1;
        }
    }
    if (nargs < funcs[fn].min_args)
        return fail(p, name_pos, "function '%s' takes %s", funcs[fn].name, funcs[fn].arity);
    for (int k = 0; k < nargs; k++)
        if (type_of(p, args[k]) != EXPR_NUM)
            return fail(p, arg_pos[k], "function '%s' needs %s, got %s", funcs[fn].name,
                        funcs[fn].needs, type_names[type_of(p, args[k])]);
    if ((i = node_new(p, name_pos, K_CALL, EXPR_NUM, args, nargs)) < 0)
        return -1;
    p->e->nodes[i].fn = (enum fn)fn;
    if (lex(p) != 0) /* past ')' */
        return -1;
    return i;
}

static bool paren_follows(struct parser *p)
{
    size_t j = p->next;

    while (p->src[j] == ' ' || p->src[j] == '\t' || p->src[j] == '\n' || p->src[j] == '\r')
        j++;
    return p->src[j] == '(';
}

static int parse_primary(struct parser *p)
{
    struct token t = p->tok;
    enum expr_type type = EXPR_NUM;
    int i, name;

    switch (t.kind) {
    case T_NUM:
        if ((i = node_new(p, t.pos, K_NUM, EXPR_NUM, NULL, 0)) < 0)
            return -1;
        p->e->nodes[i].num = t.num;
        break;
    case T_STR:
        if ((i = node_new(p, t.pos, K_STR, EXPR_STR, NULL, 0)) < 0)
            return -1;
        p->e->nodes[i].str = decode(p);
        break;
    case T_TRUE:
    case T_FALSE:
        if ((i = node_new(p, t.pos, K_BOOL, EXPR_BOOL, NULL, 0)) < 0)
            return -1;
        p->e->nodes[i].b = t.kind == T_TRUE;
        break;
    case T_NAME:
        if (paren_follows(p))
            return parse_call(p);
        if ((name = name_index(p, t.pos, t.len, &type)) < 0)
            return -1;
        if ((i = node_new(p, t.pos, K_NAME, type, NULL, 0)) < 0)
            return -1;
        p->e->nodes[i].name = name;
        break;
    case T_LPAREN:
        if (lex(p) != 0 || (i = parse_or(p)) < 0)
            return -1;
        if (p->tok.kind == T_END)
            return fail(p, t.pos, "unclosed '('");
        if (p->tok.kind != T_RPAREN)
            return unexpected(p);
        break;
    default:
        return unexpected(p);
    }
    if (lex(p) != 0)
        return -1;
    return i;
}

static int parse_unary(struct parser *p)
{
    size_t pos = p->tok.pos;
    int x;

    if (p->tok.kind != T_MINUS)
        return parse_primary(p);
    if (++p->depth > EXPR_MAX_DEPTH)
        return fail(p, pos, "expression too deeply nested");
    if (lex(p) != 0 || (x = parse_unary(p)) < 0)
        return -1;
    p->depth--;
    if (type_of(p, x) != EXPR_NUM)
        return fail(p, pos, "operator '-' needs a number, got %s", type_names[type_of(p, x)]);
    return node_new(p, pos, K_NEG, EXPR_NUM, &x, 1);
}

static int parse_prod(struct parser *p)
{
    int l = parse_unary(p), r;

    while (l >= 0 && (p->tok.kind == T_STAR || p->tok.kind == T_SLASH)) {
        struct token op = p->tok;
        if (lex(p) != 0 || (r = parse_unary(p)) < 0)
            return -1;
        l = arith_new(p, op.pos, op.kind, l, r);
    }
    return l;
}

static int parse_sum(struct parser *p)
{
    int l = parse_prod(p), r;

    while (l >= 0 && (p->tok.kind == T_PLUS || p->tok.kind == T_MINUS)) {
        struct token op = p->tok;
        if (lex(p) != 0 || (r = parse_prod(p)) < 0)
            return -1;
        l = arith_new(p, op.pos, op.kind, l, r);
    }
    return l;
}

static bool is_cmp(enum tok t)
{
    return t == T_EQ || t == T_NE || t == T_LT || t == T_LE || t == T_GT || t == T_GE;
}

static int parse_cmp(struct parser *p)
{
    int l = parse_sum(p), r;
    struct token op = p->tok;

    if (l < 0 || !is_cmp(op.kind))
        return l;
    if (lex(p) != 0 || (r = parse_sum(p)) < 0)
        return -1;
    if ((l = cmp_new(p, op.pos, op.kind, l, r)) < 0)
        return -1;
    if (is_cmp(p->tok.kind))
        return fail(p, p->tok.pos, "cannot chain comparisons; use 'and'");
    return l;
}

static int parse_not(struct parser *p)
{
    size_t pos = p->tok.pos;
    int x;

    if (p->tok.kind != T_NOT)
        return parse_cmp(p);
    if (++p->depth > EXPR_MAX_DEPTH)
        return fail(p, pos, "expression too deeply nested");
    if (lex(p) != 0 || (x = parse_not(p)) < 0)
        return -1;
    p->depth--;
    if (type_of(p, x) != EXPR_BOOL)
        return fail(p, pos, "operator 'not' needs a bool, got %s", type_names[type_of(p, x)]);
    return node_new(p, pos, K_NOT, EXPR_BOOL, &x, 1);
}

static int parse_and(struct parser *p)
{
    int l = parse_not(p), r;

    while (l >= 0 && p->tok.kind == T_AND) {
        struct token op = p->tok;
        if (lex(p) != 0 || (r = parse_not(p)) < 0)
            return -1;
        l = logic_new(p, op.pos, op.kind, l, r);
    }
    return l;
}

/* Entered once per nesting level: the whole expression, each "(...)" and each argument. */
static int parse_or(struct parser *p)
{
    int l, r;

    if (++p->depth > EXPR_MAX_DEPTH)
        return fail(p, p->tok.pos, "expression too deeply nested");
    l = parse_and(p);
    while (l >= 0 && p->tok.kind == T_OR) {
        struct token op = p->tok;
        if (lex(p) != 0 || (r = parse_and(p)) < 0)
            return -1;
        l = logic_new(p, op.pos, op.kind, l, r);
    }
    p->depth--;
    return l;
}

/* ---- public ---- */

void expr_destroy(struct expr *e)
{
    if (!e)
        return;
    for (int k = 0; k < e->nnodes; k++)
        free(e->nodes[k].str);
    for (int k = 0; k < e->nnames; k++)
        free(e->names[k]);
    free(e->nodes);
    free(e->names);
    free(e->name_types);
    free(e->src);
    free(e);
}

struct expr *expr_parse(const char *src, expr_name_cb name_cb, void *ud, enum expr_type *type,
                        char *err, size_t errlen, size_t *err_offset)
{
    struct parser p = {.src = src, .name_cb = name_cb, .ud = ud, .err = err, .errlen = errlen};
    int root;

    if (err && errlen > 0)
        err[0] = '\0';
    if (err_offset)
        *err_offset = 0;
    if (!src) {
        fail(&p, 0, "empty expression");
        goto out_fail;
    }
    p.len = strnlen(src, EXPR_MAX_LEN + 1);
    if (p.len > EXPR_MAX_LEN) {
        fail(&p, EXPR_MAX_LEN, "expression too long");
        goto out_fail;
    }
    p.e = xcalloc(1, sizeof(*p.e));
    if (lex(&p) != 0)
        goto out_fail;
    if (p.tok.kind == T_END) {
        fail(&p, 0, "empty expression");
        goto out_fail;
    }
    if ((root = parse_or(&p)) < 0)
        goto out_fail;
    if (p.tok.kind != T_END) {
        unexpected(&p);
        goto out_fail;
    }
    p.e->root = root;
    p.e->src = xstrdup(src);
    if (type)
        *type = p.e->nodes[root].type;
    return p.e;

out_fail:
    expr_destroy(p.e);
    if (err_offset)
        *err_offset = p.err_offset;
    return NULL;
}

static struct expr_value undefined(enum expr_type type)
{
    return (struct expr_value){.defined = false, .type = type};
}

static struct expr_value number(double v)
{
    if (!isfinite(v))
        return undefined(EXPR_NUM);
    return (struct expr_value){.defined = true, .type = EXPR_NUM, .num = v};
}

static struct expr_value boolean(bool b)
{
    return (struct expr_value){.defined = true, .type = EXPR_BOOL, .b = b};
}

/* A lookup's answer, trusted only as far as it matches the name's declared type. */
static struct expr_value name_value(const struct expr *e, int name, expr_lookup_cb lookup, void *ud)
{
    enum expr_type t = e->name_types[name];
    struct expr_value v;

    if (!lookup)
        return undefined(t);
    v = lookup(ud, e->names[name]);
    if (!v.defined || v.type != t)
        return undefined(t);
    switch (t) {
    case EXPR_NUM:
        return number(v.num);
    case EXPR_STR:
        if (!v.str)
            return undefined(t);
        return (struct expr_value){.defined = true, .type = EXPR_STR, .str = v.str};
    case EXPR_BOOL:
        return boolean(v.b);
    }
    return undefined(t);
}

static struct expr_value eval_call(const struct expr *e, const struct node *n,
                                   expr_lookup_cb lookup, void *ud);

/* Recursion depth is the tree's height, at most EXPR_MAX_DEPTH. */
static struct expr_value eval(const struct expr *e, int i, expr_lookup_cb lookup, void *ud)
{
    const struct node *n = &e->nodes[i];
    struct expr_value l, r;
    int c;

    switch (n->kind) {
    case K_NUM:
        return number(n->num);
    case K_STR:
        return (struct expr_value){.defined = true, .type = EXPR_STR, .str = n->str};
    case K_BOOL:
        return boolean(n->b);
    case K_NAME:
        return name_value(e, n->name, lookup, ud);
    case K_NEG:
        l = eval(e, n->kid[0], lookup, ud);
        return l.defined ? number(-l.num) : undefined(EXPR_NUM);
    case K_NOT:
        l = eval(e, n->kid[0], lookup, ud);
        return l.defined ? boolean(!l.b) : undefined(EXPR_BOOL);
    case K_AND: /* Kleene: a false side decides, whatever the other */
        l = eval(e, n->kid[0], lookup, ud);
        if (l.defined && !l.b)
            return boolean(false);
        r = eval(e, n->kid[1], lookup, ud);
        if (r.defined && !r.b)
            return boolean(false);
        return l.defined && r.defined ? boolean(true) : undefined(EXPR_BOOL);
    case K_OR: /* Kleene: a true side decides, whatever the other */
        l = eval(e, n->kid[0], lookup, ud);
        if (l.defined && l.b)
            return boolean(true);
        r = eval(e, n->kid[1], lookup, ud);
        if (r.defined && r.b)
            return boolean(true);
        return l.defined && r.defined ? boolean(false) : undefined(EXPR_BOOL);
    case K_ARITH:
        l = eval(e, n->kid[0], lookup, ud);
        r = eval(e, n->kid[1], lookup, ud);
        if (!l.defined || !r.defined)
            return undefined(EXPR_NUM);
        switch (n->op) {
        case T_PLUS:
            return number(l.num + r.num);
        case T_MINUS:
            return number(l.num - r.num);
        case T_STAR:
            return number(l.num * r.num);
        default:
            return r.num == 0 ? undefined(EXPR_NUM) : number(l.num / r.num);
        }
    case K_CMP:
        l = eval(e, n->kid[0], lookup, ud);
        r = eval(e, n->kid[1], lookup, ud);
        if (!l.defined || !r.defined)
            return undefined(EXPR_BOOL);
        if (l.type == EXPR_STR)
            c = strcmp(l.str, r.str); /* only == and != reach here (type check) */
        else if (l.type == EXPR_BOOL)
            c = (int)l.b - (int)r.b;
        else
            c = l.num < r.num ? -1 : l.num > r.num ? 1 : 0; /* finite: no NaN here */
        switch (n->op) {
        case T_EQ:
            return boolean(c == 0);
        case T_NE:
            return boolean(c != 0);
        case T_LT:
            return boolean(c < 0);
        case T_LE:
            return boolean(c <= 0);
        case T_GT:
            return boolean(c > 0);
        default:
            return boolean(c >= 0);
        }
    case K_CALL:
        return eval_call(e, n, lookup, ud);
    }
    return undefined(n->type);
}

static struct expr_value eval_call(const struct expr *e, const struct node *n,
                                   expr_lookup_cb lookup, void *ud)
{
    double a[MAX_ARGS] = {0}, v, d;

    for (int k = 0; k < n->nkids; k++) {
        struct expr_value x = eval(e, n->kid[k], lookup, ud);
        if (!x.defined)
            return undefined(EXPR_NUM);
        a[k] = x.num;
    }
    switch (n->fn) {
    case FN_MIN:
    case FN_MAX:
        v = a[0];
        for (int k = 1; k < n->nkids; k++)
            if (n->fn == FN_MIN ? a[k] < v : a[k] > v)
                v = a[k];
        return number(v);
    case FN_ABS:
        return number(fabs(a[0]));
    case FN_ROUND:
        if (n->nkids == 1)
            return number(kpi_round(a[0], 0));
        d = a[1];
        if (d < 0 || d > 12 || d != floor(d))
            return undefined(EXPR_NUM);
        return number(kpi_round(a[0], (int)d));
    case FN_COUNT:
        break;
    }
    return undefined(EXPR_NUM);
}

struct expr_value expr_eval(const struct expr *e, expr_lookup_cb lookup, void *ud)
{
    if (!e)
        return undefined(EXPR_NUM);
    return eval(e, e->root, lookup, ud);
}

struct expr_value expr_eval_left(const struct expr *e, expr_lookup_cb lookup, void *ud)
{
    if (!e)
        return undefined(EXPR_NUM);
    const struct node *n = &e->nodes[e->root];
    if (n->kind == K_CMP && n->nkids == 2)
        return eval(e, n->kid[0], lookup, ud);
    return eval(e, e->root, lookup, ud);
}

bool expr_truthy(struct expr_value v)
{
    return v.defined && v.type == EXPR_BOOL && v.b;
}

void expr_names(const struct expr *e, void (*cb)(void *ud, const char *name), void *ud)
{
    if (!e || !cb)
        return;
    for (int k = 0; k < e->nnames; k++)
        cb(ud, e->names[k]);
}

const char *expr_source(const struct expr *e)
{
    return e ? e->src : NULL;
}
