/* prev — see prev.h. */
#include "rules/prev.h"
#include "common/buf.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_tree.h>

void prev_values_add(struct prev_values *p, const char *name, struct expr_value v)
{
    if (p->n == p->cap) {
        p->cap = p->cap ? p->cap * 2 : 32;
        p->names = xrealloc(p->names, p->cap * sizeof(*p->names));
        p->values = xrealloc(p->values, p->cap * sizeof(*p->values));
    }
    p->names[p->n] = xstrdup(name);
    if (v.type == EXPR_STR && v.str) {
        p->strs = xrealloc(p->strs, (p->nstrs + 1) * sizeof(*p->strs));
        p->strs[p->nstrs] = xstrdup(v.str);
        v.str = p->strs[p->nstrs++];
    }
    p->values[p->n++] = v;
}

void prev_values_release(struct prev_values *p)
{
    for (size_t i = 0; i < p->n; i++)
        free(p->names[i]);
    for (size_t i = 0; i < p->nstrs; i++)
        free(p->strs[i]);
    free(p->names);
    free(p->values);
    free(p->strs);
    *p = (struct prev_values){0};
}

struct eval_prev prev_values_view(const struct prev_values *p)
{
    return (struct eval_prev){
        .scored = p->n > 0, .n = p->n, .names = p->names, .values = p->values};
}

static struct expr_value prev_num(double d)
{
    return (struct expr_value){.defined = true, .type = EXPR_NUM, .num = d};
}

static struct expr_value prev_str(const char *s)
{
    return (struct expr_value){.defined = true, .type = EXPR_STR, .str = s};
}

static void prev_object(struct prev_values *p, yajl_val obj, const char *prefix)
{
    if (!YAJL_IS_OBJECT(obj))
        return;
    for (size_t i = 0; i < obj->u.object.len; i++) {
        char name[256];
        snprintf(name, sizeof(name), "%s%s", prefix, obj->u.object.keys[i]);
        yajl_val v = obj->u.object.values[i];
        if (YAJL_IS_NUMBER(v))
            prev_values_add(p, name, prev_num(YAJL_GET_DOUBLE(v)));
        else if (YAJL_IS_STRING(v))
            prev_values_add(p, name, prev_str(YAJL_GET_STRING(v)));
        else if (YAJL_IS_TRUE(v) || YAJL_IS_FALSE(v))
            prev_values_add(
                p, name,
                (struct expr_value){.defined = true, .type = EXPR_BOOL, .b = YAJL_IS_TRUE(v)});
    }
}

void prev_values_parse(struct prev_values *p, const char *snapshot_json)
{
    char errbuf[128];
    yajl_val root = yajl_tree_parse(snapshot_json, errbuf, sizeof(errbuf));
    if (!root)
        return;
    const char *score[] = {"score", NULL}, *rank[] = {"rank", NULL}, *rb[] = {"rank_bottom", NULL},
               *ts[] = {"team_size", NULL}, *grade[] = {"grade", NULL},
               *metrics[] = {"metrics", NULL}, *points[] = {"points", NULL};
    yajl_val v;
    double r = NAN, t = NAN;
    if ((v = yajl_tree_get(root, score, yajl_t_number)))
        prev_values_add(p, "score", prev_num(YAJL_GET_DOUBLE(v)));
    if ((v = yajl_tree_get(root, rank, yajl_t_number)))
        prev_values_add(p, "rank", prev_num(r = YAJL_GET_DOUBLE(v)));
    if ((v = yajl_tree_get(root, rb, yajl_t_number)))
        prev_values_add(p, "rank_bottom", prev_num(YAJL_GET_DOUBLE(v)));
    if ((v = yajl_tree_get(root, ts, yajl_t_number)))
        prev_values_add(p, "team.size", prev_num(t = YAJL_GET_DOUBLE(v)));
    if (!isnan(r) && !isnan(t))
        prev_values_add(p, "percentile", prev_num(t <= 1 ? 100 : 100 * (t - r) / (t - 1)));
    if ((v = yajl_tree_get(root, grade, yajl_t_string)))
        prev_values_add(p, "grade", prev_str(YAJL_GET_STRING(v)));
    prev_values_add(p, "eligible",
                    (struct expr_value){.defined = true, .type = EXPR_BOOL, .b = true});
    prev_object(p, yajl_tree_get(root, metrics, yajl_t_object), "");
    prev_object(p, yajl_tree_get(root, points, yajl_t_object), "points.");
    yajl_tree_free(root);
}

int *prev_streaks_parse(const char *stored, const char *prev_label, size_t n)
{
    size_t ll = strlen(prev_label);
    if (!stored || strncmp(stored, prev_label, ll) != 0 || stored[ll] != ' ')
        return NULL;
    int *out = xcalloc(n + 1, sizeof(*out));
    const char *p = stored + ll + 1;
    for (size_t i = 0; i < n && *p; i++) {
        char *end;
        out[i] = (int)strtol(p, &end, 10);
        p = *end == ',' ? end + 1 : end;
    }
    return out;
}
