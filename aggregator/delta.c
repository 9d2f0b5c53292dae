/* delta — see delta.h. A group keeps its keys (with a key→index map), its ordered
 * ops, and its summed counters (with their first-use order, for determinism). */
#include "aggregator/delta.h"
#include "common/map.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct delta_op {
    char code;
    size_t key; /* 1-based */
    char *a, *b;
};

struct delta_counter {
    char code; /* 'C' or 'M' */
    size_t key;
    char *field;
    int64_t n;
};

struct dgroup {
    char *tag;
    char **keys;
    size_t nkeys, capkeys;
    struct map *keyidx; /* suffix -> (void *)index */
    struct delta_op *ops;
    size_t nops, capops;
    struct delta_counter *ctrs;
    size_t nctrs, capctrs;
    struct map *ctridx; /* "code key field" -> (void *)(index + 1) */
    struct map *members; /* "key member" for S dedup */
};

struct delta {
    struct dgroup **groups;
    size_t ngroups, capgroups;
    struct map *byname;
    /* materialisation scratch */
    const char **keys, **args;
    size_t *arglens;
    size_t capkeys, capargs;
    char **numbufs;
    size_t nnum, capnum;
    struct buf scratch;
};

struct delta *delta_new(void)
{
    struct delta *d = xcalloc(1, sizeof(*d));
    d->byname = map_new();
    buf_init(&d->scratch);
    return d;
}

static void dgroup_free(struct dgroup *g)
{
    for (size_t i = 0; i < g->nkeys; i++)
        free(g->keys[i]);
    free(g->keys);
    for (size_t i = 0; i < g->nops; i++) {
        free(g->ops[i].a);
        free(g->ops[i].b);
    }
    free(g->ops);
    for (size_t i = 0; i < g->nctrs; i++)
        free(g->ctrs[i].field);
    free(g->ctrs);
    map_destroy(g->keyidx);
    map_destroy(g->ctridx);
    map_destroy(g->members);
    free(g->tag);
    free(g);
}

static void delta_free_numbufs(struct delta *d)
{
    for (size_t i = 0; i < d->nnum; i++)
        free(d->numbufs[i]);
    d->nnum = 0;
}

void delta_reset(struct delta *d)
{
    for (size_t i = 0; i < d->ngroups; i++)
        dgroup_free(d->groups[i]);
    d->ngroups = 0;
    map_clear(d->byname);
    delta_free_numbufs(d);
}

void delta_destroy(struct delta *d)
{
    if (!d)
        return;
    delta_reset(d);
    free(d->groups);
    map_destroy(d->byname);
    free(d->keys);
    free(d->args);
    free(d->arglens);
    free(d->numbufs);
    buf_release(&d->scratch);
    free(d);
}

bool delta_empty(const struct delta *d)
{
    return d->ngroups == 0;
}

static struct dgroup *delta_group(struct delta *d, const char *tag)
{
    struct dgroup *g = map_get(d->byname, tag);
    if (g)
        return g;
    g = xcalloc(1, sizeof(*g));
    g->tag = xstrdup(tag);
    g->keyidx = map_new();
    g->ctridx = map_new();
    g->members = map_new();
    if (d->ngroups == d->capgroups) {
        d->capgroups = d->capgroups ? d->capgroups * 2 : 16;
        d->groups = xrealloc(d->groups, d->capgroups * sizeof(*d->groups));
    }
    d->groups[d->ngroups++] = g;
    map_put(d->byname, tag, g);
    return g;
}

static size_t dgroup_key(struct dgroup *g, const char *suffix)
{
    void *v = map_get(g->keyidx, suffix);
    if (v)
        return (size_t)(uintptr_t)v;
    if (g->nkeys == g->capkeys) {
        g->capkeys = g->capkeys ? g->capkeys * 2 : 8;
        g->keys = xrealloc(g->keys, g->capkeys * sizeof(*g->keys));
    }
    size_t tl = strlen(g->tag), sl = strlen(suffix);
    char *k = xmalloc(tl + sl + 1);
    memcpy(k, g->tag, tl);
    memcpy(k + tl, suffix, sl + 1);
    g->keys[g->nkeys++] = k;
    map_put(g->keyidx, suffix, (void *)(uintptr_t)g->nkeys);
    return g->nkeys;
}

static void dgroup_op(struct dgroup *g, char code, size_t key, const char *a, const char *b)
{
    if (g->nops == g->capops) {
        g->capops = g->capops ? g->capops * 2 : 16;
        g->ops = xrealloc(g->ops, g->capops * sizeof(*g->ops));
    }
    g->ops[g->nops++] = (struct delta_op){
        .code = code, .key = key, .a = xstrdup(a), .b = xstrdup(b ? b : "")};
}

static void delta_counter(struct delta *d, char code, const char *tag, const char *suffix,
                          const char *field, int64_t by)
{
    struct dgroup *g = delta_group(d, tag);
    size_t key = dgroup_key(g, suffix);
    buf_reset(&d->scratch);
    buf_printf(&d->scratch, "%c %zu ", code, key);
    buf_adds(&d->scratch, field);
    void *v = map_get(g->ctridx, d->scratch.data);
    if (v) {
        g->ctrs[(size_t)(uintptr_t)v - 1].n += by;
        return;
    }
    if (g->nctrs == g->capctrs) {
        g->capctrs = g->capctrs ? g->capctrs * 2 : 16;
        g->ctrs = xrealloc(g->ctrs, g->capctrs * sizeof(*g->ctrs));
    }
    g->ctrs[g->nctrs++] =
        (struct delta_counter){.code = code, .key = key, .field = xstrdup(field), .n = by};
    map_put(g->ctridx, d->scratch.data, (void *)(uintptr_t)g->nctrs);
}

void delta_incr(struct delta *d, const char *tag, const char *suffix, const char *field, int64_t by)
{
    delta_counter(d, 'C', tag, suffix, field, by);
}

void delta_mincr(struct delta *d, const char *tag, const char *suffix, const char *field,
                 int64_t by)
{
    delta_counter(d, 'M', tag, suffix, field, by);
}

void delta_sadd(struct delta *d, const char *tag, const char *suffix, const char *member)
{
    struct dgroup *g = delta_group(d, tag);
    size_t key = dgroup_key(g, suffix);
    buf_reset(&d->scratch);
    buf_printf(&d->scratch, "%zu ", key);
    buf_adds(&d->scratch, member);
    if (map_get(g->members, d->scratch.data))
        return;
    map_put(g->members, d->scratch.data, (void *)1);
    dgroup_op(g, 'S', key, member, NULL);
}

void delta_hset(struct delta *d, const char *tag, const char *suffix, const char *field,
                const char *value)
{
    struct dgroup *g = delta_group(d, tag);
    dgroup_op(g, 'H', dgroup_key(g, suffix), field, value);
}

void delta_zadd(struct delta *d, const char *tag, const char *suffix, int64_t score,
                const char *member)
{
    struct dgroup *g = delta_group(d, tag);
    char num[32];
    snprintf(num, sizeof(num), "%" PRId64, score);
    dgroup_op(g, 'Z', dgroup_key(g, suffix), num, member);
}

void delta_zrem(struct delta *d, const char *tag, const char *suffix, const char *member)
{
    struct dgroup *g = delta_group(d, tag);
    dgroup_op(g, 'R', dgroup_key(g, suffix), member, NULL);
}

void delta_ztrim(struct delta *d, const char *tag, const char *suffix, int64_t below)
{
    struct dgroup *g = delta_group(d, tag);
    char num[32];
    snprintf(num, sizeof(num), "%" PRId64, below);
    dgroup_op(g, 'T', dgroup_key(g, suffix), num, NULL);
}

size_t delta_group_count(const struct delta *d)
{
    return d->ngroups;
}

static const char *delta_num(struct delta *d, int64_t v)
{
    if (d->nnum == d->capnum) {
        d->capnum = d->capnum ? d->capnum * 2 : 64;
        d->numbufs = xrealloc(d->numbufs, d->capnum * sizeof(*d->numbufs));
    }
    char tmp[32];
    snprintf(tmp, sizeof(tmp), "%" PRId64, v);
    d->numbufs[d->nnum] = xstrdup(tmp);
    return d->numbufs[d->nnum++];
}

static void delta_push_arg(struct delta *d, size_t *n, const char *s)
{
    if (*n == d->capargs) {
        d->capargs = d->capargs ? d->capargs * 2 : 256;
        d->args = xrealloc(d->args, d->capargs * sizeof(*d->args));
        d->arglens = xrealloc(d->arglens, d->capargs * sizeof(*d->arglens));
    }
    d->args[*n] = s;
    d->arglens[*n] = strlen(s);
    (*n)++;
}

void delta_group_get(struct delta *d, size_t i, struct delta_group *out)
{
    static const char *codes[] = {"C", "M", "S", "H", "Z", "R", "T"};
    struct dgroup *g = d->groups[i];
    delta_free_numbufs(d);
    size_t n = 0;
    for (size_t k = 0; k < g->nops; k++) {
        struct delta_op *op = &g->ops[k];
        const char *code = op->code == 'S'   ? codes[2]
                           : op->code == 'H' ? codes[3]
                           : op->code == 'Z' ? codes[4]
                           : op->code == 'R' ? codes[5]
                                             : codes[6];
        delta_push_arg(d, &n, code);
        delta_push_arg(d, &n, delta_num(d, (int64_t)op->key));
        delta_push_arg(d, &n, op->a);
        delta_push_arg(d, &n, op->b);
    }
    for (size_t k = 0; k < g->nctrs; k++) {
        struct delta_counter *c = &g->ctrs[k];
        if (c->n == 0)
            continue;
        delta_push_arg(d, &n, c->code == 'C' ? codes[0] : codes[1]);
        delta_push_arg(d, &n, delta_num(d, (int64_t)c->key));
        delta_push_arg(d, &n, c->field);
        delta_push_arg(d, &n, delta_num(d, c->n));
    }
    if (g->nkeys > d->capkeys) {
        d->capkeys = g->nkeys * 2;
        d->keys = xrealloc(d->keys, d->capkeys * sizeof(*d->keys));
    }
    for (size_t k = 0; k < g->nkeys; k++)
        d->keys[k] = g->keys[k];
    *out = (struct delta_group){.tag = g->tag,
                                .nkeys = g->nkeys,
                                .keys = d->keys,
                                .nargs = n,
                                .args = d->args,
                                .arglens = d->arglens};
}

void delta_encode(struct delta *d, struct buf *out)
{
    buf_add_u64(out, d->ngroups);
    for (size_t i = 0; i < d->ngroups; i++) {
        struct delta_group g;
        delta_group_get(d, i, &g);
        buf_add_str(out, g.tag, strlen(g.tag));
        buf_add_u64(out, g.nkeys);
        for (size_t k = 0; k < g.nkeys; k++)
            buf_add_str(out, g.keys[k], strlen(g.keys[k]));
        buf_add_u64(out, g.nargs);
        for (size_t k = 0; k < g.nargs; k++)
            buf_add_str(out, g.args[k], g.arglens[k]);
    }
}

/* An optionally signed decimal integer filling all of s[0..n). */
static bool delta_is_int(const char *s, size_t n)
{
    size_t i = n && s[0] == '-' ? 1 : 0;
    if (i == n || n - i > 19)
        return false;
    for (; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    errno = 0;
    strtoll(s, NULL, 10); /* s is NUL-terminated at n (decoded copies are) */
    return errno == 0;
}

/* What delta_group_get can produce: ops of 4 args, a known one-letter opcode, a key
 * index in 1..nkeys, integers where csm_apply needs them. A record that passes cannot
 * make csm_apply fail half-way (which would leave a tag half-applied). */
static bool delta_group_valid(const struct delta_group *g)
{
    if (g->nargs % 4 != 0)
        return false;
    for (size_t i = 0; i < g->nargs; i += 4) {
        const char *op = g->args[i], *key = g->args[i + 1];
        if (g->arglens[i] != 1 || op[0] == '\0' || !strchr("CMSHZRT", op[0]))
            return false;
        if (!delta_is_int(key, g->arglens[i + 1]) || key[0] == '-')
            return false;
        uint64_t k = strtoull(key, NULL, 10);
        if (k < 1 || k > g->nkeys)
            return false;
        if ((op[0] == 'C' || op[0] == 'M') && !delta_is_int(g->args[i + 3], g->arglens[i + 3]))
            return false;
        if ((op[0] == 'Z' || op[0] == 'T') && !delta_is_int(g->args[i + 2], g->arglens[i + 2]))
            return false;
    }
    return true;
}

int delta_decode_groups(const void *p, size_t n, delta_group_cb cb, void *ud)
{
    struct buf_reader r;
    buf_reader_init(&r, p, n);
    uint64_t ng = buf_read_u64(&r);
    int rc = 0;
    for (uint64_t i = 0; i < ng && !r.err && rc == 0; i++) {
        char *tag = buf_read_strdup(&r);
        uint64_t nk = buf_read_u64(&r);
        if (r.err || nk > n) {
            free(tag);
            return -1;
        }
        char **keys = xcalloc(nk + 1, sizeof(*keys));
        for (uint64_t k = 0; k < nk && !r.err; k++)
            keys[k] = buf_read_strdup(&r);
        uint64_t na = buf_read_u64(&r);
        char **args = NULL;
        size_t *lens = NULL;
        if (!r.err && na <= n) {
            args = xcalloc(na + 1, sizeof(*args));
            lens = xcalloc(na + 1, sizeof(*lens));
            for (uint64_t k = 0; k < na && !r.err; k++) {
                const char *s = buf_read_str(&r, &lens[k]);
                args[k] = s ? xstrndup(s, lens[k]) : NULL;
            }
        } else {
            r.err = 1;
        }
        if (!r.err) {
            struct delta_group g = {.tag = tag,
                                    .nkeys = nk,
                                    .keys = (const char **)keys,
                                    .nargs = na,
                                    .args = (const char **)args,
                                    .arglens = lens};
            if (delta_group_valid(&g))
                rc = cb(ud, &g);
            else
                r.err = 1;
        }
        for (uint64_t k = 0; k < nk; k++)
            free(keys[k]);
        free(keys);
        if (args)
            for (uint64_t k = 0; k < na; k++)
                free(args[k]);
        free(args);
        free(lens);
        free(tag);
    }
    /* Bytes after the last group: not a record delta_encode wrote. */
    if (!r.err && rc == 0 && r.p != r.end)
        r.err = 1;
    return r.err ? -1 : rc;
}
