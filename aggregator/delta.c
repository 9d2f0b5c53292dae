/* delta — see delta.h. A group holds its keys (with a suffix → index map); a key holds
 * one container per kind of write, each an insertion-ordered vector with a map from
 * member/field to its slot, so materialisation is deterministic. */
#include "aggregator/delta.h"
#include "common/map.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Strings of one batch (member and field names, values) live in an arena freed at once
 * by delta_reset: a batch makes hundreds of thousands of them. */
struct chunk {
    struct chunk *next;
    size_t used, cap;
    char data[];
};

static char *arena_strdup(struct chunk **head, const char *s)
{
    size_t n = strlen(s) + 1;
    struct chunk *c = *head;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > 65536 ? n : 65536;
        c = xmalloc(sizeof(*c) + cap);
        c->next = *head;
        c->used = 0;
        c->cap = cap;
        *head = c;
    }
    char *p = c->data + c->used;
    memcpy(p, s, n);
    c->used += n;
    return p;
}

static void arena_free(struct chunk **head)
{
    while (*head) {
        struct chunk *next = (*head)->next;
        free(*head);
        *head = next;
    }
}

/* Empties the arena but keeps its newest chunk for reuse. */
static void arena_rewind(struct chunk **head)
{
    if (!*head)
        return;
    arena_free(&(*head)->next);
    (*head)->used = 0;
}

/* An insertion-ordered set of named slots: name → (value string, number, flag). */
struct slots {
    struct map *idx; /* name -> (void *)(index + 1); keys borrowed from name[] */
    char **name;
    char **value;
    int64_t *num;
    bool *flag;
    size_t n, cap;
};

struct dkey {
    char *name;
    struct slots s; /* S: members */
    struct slots z; /* Z/R: member, num = score, flag = removed */
    struct slots h; /* H: field, value */
    struct slots c; /* C: field, num */
    struct slots m; /* M: field, num */
    bool has_trim;
    int64_t trim;
};

struct dgroup {
    char *tag;
    struct dkey **keys;
    size_t nkeys, capkeys;
    struct map *keyidx; /* suffix -> (void *)(index + 1) */
};

struct delta {
    struct chunk *arena;
    struct dgroup **groups;
    size_t ngroups, capgroups;
    struct map *byname;
    /* The keys of the last writes and their groups: writes come in runs on a key
     * (an agent's and its team's, alternately). */
    struct dgroup *lastg[2];
    struct dkey *last[2];
    unsigned lastn;
    /* materialisation scratch */
    const char **keys, **args;
    size_t *arglens;
    size_t capkeys, capargs;
    struct chunk *nums; /* numbers formatted for the materialised group */
};

static void slots_free(struct slots *s)
{
    /* names and values are in the delta's arena */
    free(s->name);
    free(s->value);
    free(s->num);
    free(s->flag);
    map_destroy(s->idx);
    *s = (struct slots){0};
}

/* Slots up to this many are found by a scan: most keys hold a few (counters of one
 * owner and period), and a map each cost more than it saved. */
#define SLOTS_SCAN 8

/* The slot of name, created empty when new (its name copied into the arena). */
static size_t slots_get(struct chunk **arena, struct slots *s, const char *name, bool *created)
{
    if (!s->idx) {
        for (size_t i = 0; i < s->n; i++)
            if (strcmp(s->name[i], name) == 0) {
                *created = false;
                return i;
            }
        if (s->n == SLOTS_SCAN) {
            s->idx = map_new_borrowed();
            for (size_t i = 0; i < s->n; i++)
                map_put(s->idx, s->name[i], (void *)(uintptr_t)(i + 1));
        }
    } else {
        void *v = map_get(s->idx, name);
        if (v) {
            *created = false;
            return (size_t)(uintptr_t)v - 1;
        }
    }
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 8;
        s->name = xrealloc(s->name, s->cap * sizeof(*s->name));
        s->value = xrealloc(s->value, s->cap * sizeof(*s->value));
        s->num = xrealloc(s->num, s->cap * sizeof(*s->num));
        s->flag = xrealloc(s->flag, s->cap * sizeof(*s->flag));
    }
    size_t i = s->n++;
    s->name[i] = arena_strdup(arena, name);
    s->value[i] = NULL;
    s->num[i] = 0;
    s->flag[i] = false;
    if (s->idx)
        map_put(s->idx, s->name[i], (void *)(uintptr_t)(i + 1));
    *created = true;
    return i;
}

static void dkey_free(struct dkey *k)
{
    slots_free(&k->s);
    slots_free(&k->z);
    slots_free(&k->h);
    slots_free(&k->c);
    slots_free(&k->m);
    free(k->name);
    free(k);
}

struct delta *delta_new(void)
{
    struct delta *d = xcalloc(1, sizeof(*d));
    d->byname = map_new();
    return d;
}

static void dgroup_free(struct dgroup *g)
{
    for (size_t i = 0; i < g->nkeys; i++)
        dkey_free(g->keys[i]);
    free(g->keys);
    map_destroy(g->keyidx);
    free(g->tag);
    free(g);
}

static void delta_free_numbufs(struct delta *d)
{
    arena_rewind(&d->nums);
}

void delta_reset(struct delta *d)
{
    for (size_t i = 0; i < d->ngroups; i++)
        dgroup_free(d->groups[i]);
    d->ngroups = 0;
    memset(d->lastg, 0, sizeof(d->lastg));
    memset(d->last, 0, sizeof(d->last));
    map_clear(d->byname);
    delta_free_numbufs(d);
    arena_free(&d->arena);
}

void delta_destroy(struct delta *d)
{
    if (!d)
        return;
    delta_reset(d);
    arena_free(&d->nums);
    free(d->groups);
    map_destroy(d->byname);
    free(d->keys);
    free(d->args);
    free(d->arglens);
    free(d);
}

bool delta_empty(const struct delta *d)
{
    return d->ngroups == 0;
}

static struct dkey *delta_key(struct delta *d, const char *tag, const char *suffix)
{
    struct dgroup *g = NULL;
    for (int i = 0; i < 2; i++) {
        if (d->lastg[i] && strcmp(d->lastg[i]->tag, tag) == 0) {
            g = d->lastg[i];
            if (strcmp(d->last[i]->name + strlen(g->tag), suffix) == 0)
                return d->last[i];
        }
    }
    if (!g)
        g = map_get(d->byname, tag);
    if (!g) {
        g = xcalloc(1, sizeof(*g));
        g->tag = xstrdup(tag);
        g->keyidx = map_new_borrowed(); /* keys: the suffixes inside dkey names */
        if (d->ngroups == d->capgroups) {
            d->capgroups = d->capgroups ? d->capgroups * 2 : 16;
            d->groups = xrealloc(d->groups, d->capgroups * sizeof(*d->groups));
        }
        d->groups[d->ngroups++] = g;
        map_put(d->byname, tag, g);
    }
    unsigned slot = d->lastn++ & 1;
    d->lastg[slot] = g;
    void *v = map_get(g->keyidx, suffix);
    if (v)
        return d->last[slot] = g->keys[(size_t)(uintptr_t)v - 1];
    if (g->nkeys == g->capkeys) {
        g->capkeys = g->capkeys ? g->capkeys * 2 : 8;
        g->keys = xrealloc(g->keys, g->capkeys * sizeof(*g->keys));
    }
    struct dkey *k = xcalloc(1, sizeof(*k));
    size_t tl = strlen(tag), sl = strlen(suffix);
    k->name = xmalloc(tl + sl + 1);
    memcpy(k->name, tag, tl);
    memcpy(k->name + tl, suffix, sl + 1);
    g->keys[g->nkeys++] = k;
    map_put(g->keyidx, k->name + tl, (void *)(uintptr_t)g->nkeys);
    return d->last[slot] = k;
}

/* Sums held at the int64 limits rather than overflowing (undefined in C); Redis saturates
 * the stored counter the same way (csm_apply), and says so. */
static int64_t sat_add(int64_t a, int64_t b)
{
    int64_t r;
    if (__builtin_add_overflow(a, b, &r))
        return b > 0 ? INT64_MAX : INT64_MIN;
    return r;
}

void delta_incr(struct delta *d, const char *tag, const char *suffix, const char *field, int64_t by)
{
    struct dkey *k = delta_key(d, tag, suffix);
    bool created;
    size_t i = slots_get(&d->arena, &k->c, field, &created);
    k->c.num[i] = sat_add(k->c.num[i], by);
}

void delta_mincr(struct delta *d, const char *tag, const char *suffix, const char *field,
                 int64_t by)
{
    struct dkey *k = delta_key(d, tag, suffix);
    bool created;
    size_t i = slots_get(&d->arena, &k->m, field, &created);
    k->m.num[i] = sat_add(k->m.num[i], by);
}

void delta_sadd(struct delta *d, const char *tag, const char *suffix, const char *member)
{
    struct dkey *k = delta_key(d, tag, suffix);
    bool created;
    slots_get(&d->arena, &k->s, member, &created);
}

void delta_hset(struct delta *d, const char *tag, const char *suffix, const char *field,
                const char *value)
{
    struct dkey *k = delta_key(d, tag, suffix);
    bool created;
    size_t i = slots_get(&d->arena, &k->h, field, &created);
    k->h.value[i] = arena_strdup(&d->arena, value);
}

void delta_zadd(struct delta *d, const char *tag, const char *suffix, int64_t score,
                const char *member)
{
    struct dkey *k = delta_key(d, tag, suffix);
    bool created;
    size_t i = slots_get(&d->arena, &k->z, member, &created);
    k->z.num[i] = score;
    k->z.flag[i] = false;
}

void delta_zrem(struct delta *d, const char *tag, const char *suffix, const char *member)
{
    struct dkey *k = delta_key(d, tag, suffix);
    bool created;
    size_t i = slots_get(&d->arena, &k->z, member, &created);
    k->z.flag[i] = true;
}

void delta_ztrim(struct delta *d, const char *tag, const char *suffix, int64_t below)
{
    struct dkey *k = delta_key(d, tag, suffix);
    if (!k->has_trim || below > k->trim)
        k->trim = below;
    k->has_trim = true;
    /* The trim is sent before the key's adds: members added earlier in the batch that it
     * would have removed become removals, so the net effect is that of the order given. */
    for (size_t i = 0; i < k->z.n; i++)
        if (!k->z.flag[i] && k->z.num[i] < below)
            k->z.flag[i] = true;
}

size_t delta_group_count(const struct delta *d)
{
    return d->ngroups;
}

bool delta_has_tag(const struct delta *d, const char *tag)
{
    return map_get(d->byname, tag) != NULL;
}

static void delta_merge_op(void *ud, const struct delta_op_view *op)
{
    struct delta *dst = ud;
    const char *suffix = op->key + strlen(op->tag);
    switch (op->code) {
    case 'S':
        delta_sadd(dst, op->tag, suffix, op->field);
        break;
    case 'Z':
        delta_zadd(dst, op->tag, suffix, op->num, op->field);
        break;
    case 'R':
        delta_zrem(dst, op->tag, suffix, op->field);
        break;
    case 'H':
        delta_hset(dst, op->tag, suffix, op->field, op->value);
        break;
    case 'C':
        delta_incr(dst, op->tag, suffix, op->field, op->num);
        break;
    case 'M':
        delta_mincr(dst, op->tag, suffix, op->field, op->num);
        break;
    case 'T':
        delta_ztrim(dst, op->tag, suffix, op->num);
        break;
    }
}

void delta_merge(struct delta *dst, const struct delta *src)
{
    delta_foreach_op(src, delta_merge_op, dst);
}

static const char *delta_num(struct delta *d, int64_t v)
{
    char tmp[24];
    dec_format(tmp, v);
    return arena_strdup(&d->nums, tmp);
}

static void delta_push(struct delta *d, size_t *n, const char *s)
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

/* Emits ops `code` over the slots of s selected by want (-1: all; else flag == want),
 * DELTA_CHUNK items per op; pairs adds the value (or the number) after each name. */
enum emit_kind { EMIT_NAME, EMIT_NUM_NAME, EMIT_NAME_VALUE, EMIT_NAME_NUM };

static void delta_emit(struct delta *d, size_t *n, const char *code, const char *key,
                       const struct slots *s, int want, enum emit_kind kind, bool skip_zero)
{
    size_t i = 0;
    while (i < s->n) {
        size_t count_at = 0, items = 0;
        for (; i < s->n && items < DELTA_CHUNK; i++) {
            if (want >= 0 && s->flag[i] != (want == 1))
                continue;
            if (skip_zero && s->num[i] == 0)
                continue;
            if (items == 0) {
                delta_push(d, n, code);
                delta_push(d, n, key);
                count_at = *n;
                delta_push(d, n, "");
            }
            switch (kind) {
            case EMIT_NAME:
                delta_push(d, n, s->name[i]);
                break;
            case EMIT_NUM_NAME:
                delta_push(d, n, delta_num(d, s->num[i]));
                delta_push(d, n, s->name[i]);
                break;
            case EMIT_NAME_VALUE:
                delta_push(d, n, s->name[i]);
                delta_push(d, n, s->value[i]);
                break;
            case EMIT_NAME_NUM:
                delta_push(d, n, s->name[i]);
                delta_push(d, n, delta_num(d, s->num[i]));
                break;
            }
            items++;
        }
        if (items) {
            d->args[count_at] = delta_num(d, (int64_t)items);
            d->arglens[count_at] = strlen(d->args[count_at]);
        }
    }
}

void delta_group_get(struct delta *d, size_t gi, struct delta_group *out)
{
    struct dgroup *g = d->groups[gi];
    delta_free_numbufs(d);
    size_t n = 0;
    for (size_t k = 0; k < g->nkeys; k++) {
        struct dkey *key = g->keys[k];
        const char *ki = delta_num(d, (int64_t)k + 1);
        delta_emit(d, &n, "S", ki, &key->s, -1, EMIT_NAME, false);
        if (key->has_trim) {
            delta_push(d, &n, "T");
            delta_push(d, &n, ki);
            delta_push(d, &n, "1");
            delta_push(d, &n, delta_num(d, key->trim));
        }
        delta_emit(d, &n, "Z", ki, &key->z, 0, EMIT_NUM_NAME, false);
        delta_emit(d, &n, "R", ki, &key->z, 1, EMIT_NAME, false);
        delta_emit(d, &n, "H", ki, &key->h, -1, EMIT_NAME_VALUE, false);
        delta_emit(d, &n, "C", ki, &key->c, -1, EMIT_NAME_NUM, true);
        delta_emit(d, &n, "M", ki, &key->m, -1, EMIT_NAME_NUM, true);
    }
    if (g->nkeys > d->capkeys) {
        d->capkeys = g->nkeys * 2;
        d->keys = xrealloc(d->keys, d->capkeys * sizeof(*d->keys));
    }
    for (size_t k = 0; k < g->nkeys; k++)
        d->keys[k] = g->keys[k]->name;
    *out = (struct delta_group){.tag = g->tag,
                                .nkeys = g->nkeys,
                                .keys = d->keys,
                                .nargs = n,
                                .args = d->args,
                                .arglens = d->arglens};
}

void delta_foreach_op(const struct delta *d, void (*cb)(void *ud, const struct delta_op_view *op),
                      void *ud)
{
    for (size_t gi = 0; gi < d->ngroups; gi++) {
        const struct dgroup *g = d->groups[gi];
        for (size_t k = 0; k < g->nkeys; k++) {
            const struct dkey *key = g->keys[k];
            struct delta_op_view v = {.tag = g->tag, .key = key->name};
            for (size_t i = 0; i < key->s.n; i++) {
                v.code = 'S', v.field = key->s.name[i], v.value = NULL, v.num = 0;
                cb(ud, &v);
            }
            if (key->has_trim) {
                v.code = 'T', v.field = "", v.value = NULL, v.num = key->trim;
                cb(ud, &v);
            }
            for (size_t i = 0; i < key->z.n; i++) {
                v.code = key->z.flag[i] ? 'R' : 'Z', v.field = key->z.name[i], v.value = NULL;
                v.num = key->z.num[i];
                cb(ud, &v);
            }
            for (size_t i = 0; i < key->h.n; i++) {
                v.code = 'H', v.field = key->h.name[i], v.value = key->h.value[i], v.num = 0;
                cb(ud, &v);
            }
            for (size_t i = 0; i < key->c.n; i++) {
                v.code = 'C', v.field = key->c.name[i], v.value = NULL, v.num = key->c.num[i];
                if (v.num)
                    cb(ud, &v);
            }
            for (size_t i = 0; i < key->m.n; i++) {
                v.code = 'M', v.field = key->m.name[i], v.value = NULL, v.num = key->m.num[i];
                if (v.num)
                    cb(ud, &v);
            }
        }
    }
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

static bool delta_is_int(const char *s, size_t n)
{
    if (n == 0 || n > 20)
        return false;
    size_t i = s[0] == '-' ? 1 : 0;
    if (i == n)
        return false;
    for (; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    errno = 0;
    char *end;
    strtoll(s, &end, 10);
    return errno == 0 && end == s + n;
}

bool delta_args_valid(size_t nkeys, const char *const *args, const size_t *arglens, size_t nargs)
{
    size_t i = 0;
    while (i < nargs) {
        if (i + 3 > nargs || arglens[i] != 1 || !delta_is_int(args[i + 1], arglens[i + 1]) ||
            !delta_is_int(args[i + 2], arglens[i + 2]))
            return false;
        char code = args[i][0];
        long long key = strtoll(args[i + 1], NULL, 10), cnt = strtoll(args[i + 2], NULL, 10);
        if (key < 1 || (size_t)key > nkeys || cnt < 1 || cnt > DELTA_CHUNK)
            return false;
        size_t width = code == 'S' || code == 'R' || code == 'T' ? 1 : 2;
        if (code == '\0' || !strchr("SZRHCMT", code) || (code == 'T' && cnt != 1))
            return false;
        size_t items = (size_t)cnt * width;
        if (items > nargs - i - 3)
            return false;
        for (size_t k = 0; k < (size_t)cnt; k++) {
            size_t at = i + 3 + k * width;
            size_t num_at = code == 'Z' || code == 'T'   ? at
                            : code == 'C' || code == 'M' ? at + 1
                                                         : 0;
            if (num_at && !delta_is_int(args[num_at], arglens[num_at]))
                return false;
        }
        i += 3 + items;
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
        if (!r.err && !delta_args_valid(nk, (const char *const *)args, lens, na))
            r.err = 1;
        if (!r.err) {
            struct delta_group g = {.tag = tag,
                                    .nkeys = nk,
                                    .keys = (const char **)keys,
                                    .nargs = na,
                                    .args = (const char **)args,
                                    .arglens = lens};
            rc = cb(ud, &g);
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
    if (!r.err && rc == 0 && r.p != r.end)
        r.err = 1; /* trailing bytes (not when cb stopped early) */
    return r.err ? -1 : rc;
}
