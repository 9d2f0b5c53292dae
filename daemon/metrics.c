/* metrics — see metrics.h. A family keeps its series in insertion order (the order they
 * render in) plus an index from the encoded label values ("len:value" each, so any bytes
 * stay apart) to the series. Rendering escapes label values and HELP text as the 0.0.4
 * format asks, and replaces bytes that are not UTF-8 with U+FFFD. */
#include "daemon/metrics.h"
#include "common/map.h"
#include "common/utf8.h"

#include <assert.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const double metrics_bounds[METRICS_SCALE_N][METRICS_HIST_BOUNDS] = {
    [METRICS_SCALE_SECONDS] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                               0.1, 0.25, 0.5, 1, 2.5, 5, 10},
    [METRICS_SCALE_COUNT] = {1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000,
                             50000, 100000},
};

struct metrics_series {
    char **values; /* nlabels copies */
    bool seen;     /* set or added since the last metrics_mark */
    double value;
    struct metrics_hist hist;
};

struct metrics_family {
    struct metrics *m;
    enum metrics_type type;
    enum metrics_scale scale;
    char *name, *help;
    char **labels;
    size_t nlabels;
    struct metrics_series **series; /* insertion order */
    size_t n, cap;
    struct map *index; /* encoded label values -> series */
};

struct metrics {
    pthread_mutex_t mu;
    bool locked;
    struct metrics_family **fams;
    size_t n, cap;
};

/* ---- histograms as values ---- */

double metrics_scale_bound(enum metrics_scale scale, size_t i)
{
    assert(scale < METRICS_SCALE_N && i < METRICS_HIST_BOUNDS);
    return metrics_bounds[scale][i];
}

void metrics_hist_add(struct metrics_hist *dst, const struct metrics_hist *src)
{
    if (src->scale != dst->scale)
        return;
    for (size_t i = 0; i <= METRICS_HIST_BOUNDS; i++)
        dst->counts[i] += src->counts[i];
    dst->count += src->count;
    dst->sum += src->sum;
}

void metrics_hist_observe(struct metrics_hist *h, double v)
{
    if (isnan(v))
        return;
    size_t i = 0;
    while (i < METRICS_HIST_BOUNDS && v > metrics_bounds[h->scale][i])
        i++;
    h->counts[i]++;
    h->count++;
    h->sum += v;
}

/* ---- the registry ---- */

static bool metrics_valid_name(const char *s, bool colon)
{
    if (!*s)
        return false;
    for (const char *p = s; *p; p++) {
        char c = *p;
        bool alpha =
            (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon && c == ':');
        if (!alpha && (p == s || c < '0' || c > '9'))
            return false;
    }
    return true;
}

struct metrics *metrics_new(void)
{
    struct metrics *m = xcalloc(1, sizeof(*m));
    pthread_mutex_init(&m->mu, NULL);
    return m;
}

static void metrics_series_free(struct metrics_series *s, size_t nlabels)
{
    for (size_t i = 0; i < nlabels; i++)
        free(s->values[i]);
    free(s->values);
    free(s);
}

void metrics_destroy(struct metrics *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n; i++) {
        struct metrics_family *f = m->fams[i];
        for (size_t k = 0; k < f->n; k++)
            metrics_series_free(f->series[k], f->nlabels);
        for (size_t k = 0; k < f->nlabels; k++)
            free(f->labels[k]);
        free(f->labels);
        free(f->series);
        map_destroy(f->index);
        free(f->name);
        free(f->help);
        free(f);
    }
    free(m->fams);
    pthread_mutex_destroy(&m->mu);
    free(m);
}

void metrics_lock(struct metrics *m)
{
    pthread_mutex_lock(&m->mu);
    m->locked = true;
}

void metrics_unlock(struct metrics *m)
{
    m->locked = false;
    pthread_mutex_unlock(&m->mu);
}

static void metrics_key(struct buf *b, const struct metrics_family *f, const char *const *values)
{
    buf_reset(b);
    buf_addc(b, '#'); /* never empty, even without labels */
    for (size_t i = 0; i < f->nlabels; i++)
        buf_printf(b, "%zu:%s", strlen(values[i]), values[i]);
}

static struct metrics_series *metrics_series_get(struct metrics_family *f,
                                                 const char *const *values)
{
    assert(f->m->locked && "metrics update without metrics_lock");
    assert(f->nlabels == 0 || values);
    struct buf key;
    buf_init(&key);
    metrics_key(&key, f, values);
    struct metrics_series *s = map_get(f->index, key.data);
    if (!s) {
        s = xcalloc(1, sizeof(*s));
        s->values = xcalloc(f->nlabels + 1, sizeof(*s->values));
        for (size_t i = 0; i < f->nlabels; i++)
            s->values[i] = xstrdup(values[i]);
        s->hist.scale = f->scale;
        if (f->n == f->cap) {
            f->cap = f->cap ? 2 * f->cap : 8;
            f->series = xrealloc(f->series, f->cap * sizeof(*f->series));
        }
        f->series[f->n++] = s;
        map_put(f->index, key.data, s);
    }
    buf_release(&key);
    s->seen = true;
    return s;
}

struct metrics_family *metrics_register(struct metrics *m, enum metrics_type type, const char *name,
                                        const char *help, const char *const *labels,
                                        enum metrics_scale scale)
{
    assert(metrics_valid_name(name, true) && "invalid metric name");
    assert(scale < METRICS_SCALE_N);
    struct metrics_family *f = xcalloc(1, sizeof(*f));
    f->m = m;
    f->type = type;
    f->scale = scale;
    f->name = xstrdup(name);
    f->help = xstrdup(help ? help : "");
    while (labels && labels[f->nlabels])
        f->nlabels++;
    f->labels = xcalloc(f->nlabels + 1, sizeof(*f->labels));
    for (size_t i = 0; i < f->nlabels; i++) {
        assert(metrics_valid_name(labels[i], false) && strncmp(labels[i], "__", 2) != 0 &&
               "invalid label name");
        assert(!(type == METRICS_HISTOGRAM && strcmp(labels[i], "le") == 0));
        f->labels[i] = xstrdup(labels[i]);
    }
    f->index = map_new();
    metrics_lock(m);
    if (m->n == m->cap) {
        m->cap = m->cap ? 2 * m->cap : 16;
        m->fams = xrealloc(m->fams, m->cap * sizeof(*m->fams));
    }
    m->fams[m->n++] = f;
    if (f->nlabels == 0)
        metrics_series_get(f, NULL);
    metrics_unlock(m);
    return f;
}

void metrics_set(struct metrics_family *f, const char *const *values, double v)
{
    assert(f->type != METRICS_HISTOGRAM);
    metrics_series_get(f, values)->value = v;
}

void metrics_add(struct metrics_family *f, const char *const *values, double v)
{
    assert(f->type != METRICS_HISTOGRAM);
    metrics_series_get(f, values)->value += v;
}

void metrics_observe(struct metrics_family *f, const char *const *values, double v)
{
    assert(f->type == METRICS_HISTOGRAM);
    metrics_hist_observe(&metrics_series_get(f, values)->hist, v);
}

void metrics_hist_set(struct metrics_family *f, const char *const *values,
                      const struct metrics_hist *h)
{
    assert(f->type == METRICS_HISTOGRAM && h->scale == f->scale);
    metrics_series_get(f, values)->hist = *h;
}

void metrics_mark(struct metrics_family *f)
{
    assert(f->m->locked && "metrics update without metrics_lock");
    for (size_t i = 0; i < f->n; i++)
        f->series[i]->seen = false;
}

void metrics_sweep(struct metrics_family *f)
{
    assert(f->m->locked && "metrics update without metrics_lock");
    struct buf key;
    buf_init(&key);
    size_t k = 0;
    for (size_t i = 0; i < f->n; i++) {
        struct metrics_series *s = f->series[i];
        if (s->seen) {
            f->series[k++] = s;
            continue;
        }
        metrics_key(&key, f, (const char *const *)s->values);
        map_del(f->index, key.data);
        metrics_series_free(s, f->nlabels);
    }
    f->n = k;
    buf_release(&key);
}

/* ---- rendering ---- */

void metrics_format_value(double v, char *out, size_t outlen)
{
    if (isnan(v)) {
        snprintf(out, outlen, "NaN");
    } else if (isinf(v)) {
        snprintf(out, outlen, v > 0 ? "+Inf" : "-Inf");
    } else if (v == floor(v) && fabs(v) <= 9007199254740992.0) { /* 2^53: exact integers */
        snprintf(out, outlen, "%.0f", v == 0 ? 0.0 : v);         /* no "-0" */
    } else {
        for (int prec = 1; prec <= 17; prec++) {
            snprintf(out, outlen, "%.*g", prec, v);
            if (strtod(out, NULL) == v)
                break;
        }
    }
}

/* Appends s escaped for a label value (quote too) or HELP text; invalid UTF-8 as U+FFFD. */
static void metrics_escape(struct buf *b, const char *s, bool quote)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);
    while (n > 0) {
        size_t len = utf8_seq_len(p, n);
        if (len == 0) {
            buf_adds(b, "\xef\xbf\xbd");
            len = 1;
        } else if (*p == '\\') {
            buf_adds(b, "\\\\");
        } else if (*p == '\n') {
            buf_adds(b, "\\n");
        } else if (*p == '"' && quote) {
            buf_adds(b, "\\\"");
        } else {
            buf_add(b, p, len);
        }
        p += len;
        n -= len;
    }
}

/* name{l1="v1",...,le="x"} value\n; le NULL: none. */
static void metrics_sample(struct buf *b, const struct metrics_family *f, const char *suffix,
                           const struct metrics_series *s, const char *le, double v)
{
    char num[40];
    buf_adds(b, f->name);
    buf_adds(b, suffix);
    if (f->nlabels || le) {
        buf_addc(b, '{');
        for (size_t i = 0; i < f->nlabels; i++) {
            buf_printf(b, "%s%s=\"", i ? "," : "", f->labels[i]);
            metrics_escape(b, s->values[i], true);
            buf_addc(b, '"');
        }
        if (le)
            buf_printf(b, "%sle=\"%s\"", f->nlabels ? "," : "", le);
        buf_addc(b, '}');
    }
    metrics_format_value(v, num, sizeof(num));
    buf_printf(b, " %s\n", num);
}

static void metrics_render_family(struct buf *b, const struct metrics_family *f)
{
    static const char *const types[] = {[METRICS_COUNTER] = "counter",
                                        [METRICS_GAUGE] = "gauge",
                                        [METRICS_HISTOGRAM] = "histogram"};
    buf_printf(b, "# HELP %s ", f->name);
    metrics_escape(b, f->help, false);
    buf_printf(b, "\n# TYPE %s %s\n", f->name, types[f->type]);
    for (size_t i = 0; i < f->n; i++) {
        const struct metrics_series *s = f->series[i];
        if (f->type != METRICS_HISTOGRAM) {
            metrics_sample(b, f, "", s, NULL, s->value);
            continue;
        }
        uint64_t cum = 0;
        char le[40];
        for (size_t k = 0; k < METRICS_HIST_BOUNDS; k++) {
            cum += s->hist.counts[k];
            metrics_format_value(metrics_bounds[f->scale][k], le, sizeof(le));
            metrics_sample(b, f, "_bucket", s, le, (double)cum);
        }
        metrics_sample(b, f, "_bucket", s, "+Inf", (double)s->hist.count);
        metrics_sample(b, f, "_sum", s, NULL, s->hist.sum);
        metrics_sample(b, f, "_count", s, NULL, (double)s->hist.count);
    }
}

void metrics_render(struct metrics *m, struct buf *out)
{
    metrics_lock(m);
    for (size_t i = 0; i < m->n; i++)
        if (m->fams[i]->n > 0)
            metrics_render_family(out, m->fams[i]);
    metrics_unlock(m);
}
