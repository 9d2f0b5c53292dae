/* kpi — metrics.md's KPI definitions as one table over struct kpi_figures, the
 * rules.md "Arithmetic" rounding, and the JSON text of a "metrics" object.
 * Invariants: money stays integer cents until written (kpi_format_cents is exact);
 * a zero denominator gives an undefined value, never 0 or 1; ratios are not capped. */
#include "aggregator/kpi.h"
#include "common/utf8.h"

#include <assert.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* How a table entry computes its value. */
enum kpi_form {
    FORM_FIELD, /* one figure as it is: a count, or cents for money */
    FORM_RATIO, /* figure / figure, undefined when the denominator is 0 */
    FORM_FN,    /* a formula of its own */
};

struct kpi_def {
    const char *name; /* rule name */
    enum kpi_unit unit;
    enum kpi_form form;
    size_t field; /* FORM_FIELD: the figure; FORM_RATIO: the numerator */
    size_t den;   /* FORM_RATIO: the denominator */
    struct kpi_value (*fn)(const struct kpi_figures *f); /* FORM_FN */
    /* FORM_FN that is a fraction: its numerator and denominator (kpi_fraction) */
    void (*frac)(const struct kpi_figures *f, double *num, double *den);
};

static struct kpi_value undefined(void)
{
    return (struct kpi_value){.defined = false};
}

static struct kpi_value number(double v)
{
    return (struct kpi_value){.defined = true, .value = v};
}

static struct kpi_value money(int64_t cents)
{
    /* Both operands are exact doubles up to 2^53 cents, so this is the double nearest
     * to the decimal yuan amount — the one a JSON reader gets from kpi_format_cents. */
    return (struct kpi_value){.defined = true, .value = (double)cents / 100.0, .cents = cents};
}

static struct kpi_value ratio(int64_t num, int64_t den)
{
    if (den == 0)
        return undefined();
    return number((double)num / (double)den);
}

/* Mean of `n` waits summing to `sum_ms`, in seconds. */
static struct kpi_value mean_s(int64_t sum_ms, int64_t n)
{
    if (n == 0)
        return undefined();
    return number((double)sum_ms / (double)n / 1000.0);
}

static struct kpi_value fn_response_time_mean_s(const struct kpi_figures *f)
{
    return mean_s(f->wait_sum_ms, f->waits);
}

static struct kpi_value fn_first_response_time_mean_s(const struct kpi_figures *f)
{
    return mean_s(f->first_wait_sum_ms, f->first_waits);
}

static struct kpi_value fn_response_time_p90_s(const struct kpi_figures *f)
{
    if (f->wait_p90_ms < 0)
        return undefined();
    return number((double)f->wait_p90_ms / 1000.0);
}

/* 1 − inquiry_conversion, computed as (inquiries − both) / inquiries: the same value
 * in exact arithmetic, and the correctly rounded double of it (1/3, not 1 − 2/3). */
static struct kpi_value fn_churn_rate(const struct kpi_figures *f)
{
    return ratio(f->inquiries - f->inquired_and_ordered, f->inquiries);
}

/* a / b rounded half up (toward +infinity on an exact half, as kpi_round), b > 0,
 * without overflow for any int64 a. */
static int64_t div_round_half_up(int64_t a, int64_t b)
{
    int64_t q = a / b, r = a % b;

    if (r < 0) { /* C truncates toward zero; make it floor division */
        q--;
        r += b;
    }
    if (r >= b - r)
        q++;
    return q;
}

static struct kpi_value fn_aov(const struct kpi_figures *f)
{
    if (f->paid_customers <= 0)
        return undefined();
    return money(div_round_half_up(f->sales_cents, f->paid_customers));
}

static struct kpi_value fn_valid_order_rate(const struct kpi_figures *f)
{
    return ratio(f->orders - f->cancelled_orders - f->flagged_orders, f->orders);
}

/* target_cents is -1 when no target event came: undefined, as is a zero target. */
static struct kpi_value fn_target_completion(const struct kpi_figures *f)
{
    if (f->target_cents <= 0)
        return undefined();
    return ratio(f->sales_cents, f->target_cents);
}

/* The fractions of the FORM_FN KPIs, for kpi_fraction (seconds and yuan, as shown). */
static void frac_response_time_mean_s(const struct kpi_figures *f, double *num, double *den)
{
    *num = (double)f->wait_sum_ms / 1000.0;
    *den = (double)f->waits;
}

static void frac_first_response_time_mean_s(const struct kpi_figures *f, double *num, double *den)
{
    *num = (double)f->first_wait_sum_ms / 1000.0;
    *den = (double)f->first_waits;
}

static void frac_aov(const struct kpi_figures *f, double *num, double *den)
{
    *num = (double)f->sales_cents / 100.0;
    *den = (double)f->paid_customers;
}

static void frac_valid_order_rate(const struct kpi_figures *f, double *num, double *den)
{
    *num = (double)(f->orders - f->cancelled_orders - f->flagged_orders);
    *den = (double)f->orders;
}

static void frac_target_completion(const struct kpi_figures *f, double *num, double *den)
{
    *num = (double)f->sales_cents / 100.0;
    *den = f->target_cents < 0 ? NAN : (double)f->target_cents / 100.0;
}

static void frac_churn_rate(const struct kpi_figures *f, double *num, double *den)
{
    *num = (double)(f->inquiries - f->inquired_and_ordered);
    *den = (double)f->inquiries;
}

#define FIG(m) offsetof(struct kpi_figures, m)
#define COUNT(n, m)                                                                                \
    {                                                                                              \
        .name = n, .unit = KPI_COUNT, .form = FORM_FIELD, .field = FIG(m)                          \
    }
#define MONEY(n, m)                                                                                \
    {                                                                                              \
        .name = n, .unit = KPI_MONEY, .form = FORM_FIELD, .field = FIG(m)                          \
    }
#define RATIO(n, num, d)                                                                           \
    {                                                                                              \
        .name = n, .unit = KPI_RATIO, .form = FORM_RATIO, .field = FIG(num), .den = FIG(d)         \
    }
#define FORMULA(n, u, f)                                                                           \
    {                                                                                              \
        .name = n, .unit = u, .form = FORM_FN, .fn = f                                             \
    }
#define FRACTION(n, u, f, fr)                                                                      \
    {                                                                                              \
        .name = n, .unit = u, .form = FORM_FN, .fn = f, .frac = fr                                 \
    }

/* Every KPI, indexed by enum kpi_id; metrics JSON follows this order. */
static const struct kpi_def kpi_defs[KPI_COUNT_ALL] = {
    [KPI_INQUIRIES] = COUNT("inquiries", inquiries),
    [KPI_REPLIED] = COUNT("replied", replied),
    [KPI_REPLY_RATE] = RATIO("reply_rate", replied, inquiries),
    [KPI_RESPONSE_TIME_MEAN_S] = FRACTION("response_time_mean_s", KPI_SECONDS,
                                          fn_response_time_mean_s, frac_response_time_mean_s),
    [KPI_FIRST_RESPONSE_TIME_MEAN_S] =
        FRACTION("first_response_time_mean_s", KPI_SECONDS, fn_first_response_time_mean_s,
                 frac_first_response_time_mean_s),
    [KPI_UNANSWERED_WAITS] = COUNT("unanswered_waits", unanswered_waits),
    [KPI_ORDERED] = COUNT("ordered", ordered),
    [KPI_INQUIRY_CONVERSION] = RATIO("inquiry_conversion", inquired_and_ordered, inquiries),
    [KPI_PAID_CUSTOMERS] = COUNT("paid_customers", paid_customers),
    [KPI_ORDER_SUCCESS] = RATIO("order_success", paid_customers, ordered),
    [KPI_SALES] = MONEY("sales", sales_cents),
    [KPI_AOV] = FRACTION("aov", KPI_MONEY, fn_aov, frac_aov),
    [KPI_ORDERS] = COUNT("orders", orders),
    [KPI_PAID_ORDERS] = COUNT("paid_orders", paid_orders),
    [KPI_REFUNDED_ORDERS] = COUNT("refunded_orders", refunded_orders),
    [KPI_CANCELLED_ORDERS] = COUNT("cancelled_orders", cancelled_orders),
    [KPI_FLAGGED_ORDERS] = COUNT("flagged_orders", flagged_orders),
    [KPI_ORDER_AMOUNT] = MONEY("order_amount", order_amount_cents),
    [KPI_REFUND_AMOUNT] = MONEY("refund_amount", refund_amount_cents),
    [KPI_REFUND_RATE] = RATIO("refund_rate", refunded_orders, paid_orders),
    [KPI_PAYMENT_RATE] = RATIO("payment_rate", paid_orders, orders),
    [KPI_VALID_ORDER_RATE] =
        FRACTION("valid_order_rate", KPI_RATIO, fn_valid_order_rate, frac_valid_order_rate),
    [KPI_ABNORMAL_ORDER_RATE] = RATIO("abnormal_order_rate", flagged_orders, orders),
    [KPI_COMPLAINTS] = COUNT("complaints", complaints),
    [KPI_COMPLAINT_RATE] = RATIO("complaint_rate", complaints, inquiries),
    [KPI_TARGET_COMPLETION] =
        FRACTION("target_completion", KPI_RATIO, fn_target_completion, frac_target_completion),
    [KPI_CHURN_RATE] = FRACTION("churn_rate", KPI_RATIO, fn_churn_rate, frac_churn_rate),
    [KPI_RESPONSE_TIME_P90_S] = FORMULA("response_time_p90_s", KPI_SECONDS, fn_response_time_p90_s),
    [KPI_ABSENT_DAYS] = COUNT("absent_days", absent_days),
};

static const struct kpi_def *kpi_def(enum kpi_id id)
{
    assert((unsigned)id < KPI_COUNT_ALL && kpi_defs[id].name);
    return &kpi_defs[id];
}

static int64_t figure(const struct kpi_figures *f, size_t off)
{
    return *(const int64_t *)((const char *)f + off);
}

const char *kpi_name(enum kpi_id id)
{
    return kpi_def(id)->name;
}

enum kpi_unit kpi_unit(enum kpi_id id)
{
    return kpi_def(id)->unit;
}

int kpi_lookup(const char *name, enum kpi_id *out)
{
    if (!name)
        return -1;
    for (int i = 0; i < KPI_COUNT_ALL; i++) {
        if (strcmp(kpi_defs[i].name, name) == 0) {
            if (out)
                *out = (enum kpi_id)i;
            return 0;
        }
    }
    return -1;
}

struct kpi_value kpi_compute(const struct kpi_figures *f, enum kpi_id id)
{
    const struct kpi_def *d = kpi_def(id);

    switch (d->form) {
    case FORM_FIELD:
        if (d->unit == KPI_MONEY)
            return money(figure(f, d->field));
        return number((double)figure(f, d->field));
    case FORM_RATIO:
        return ratio(figure(f, d->field), figure(f, d->den));
    case FORM_FN:
        return d->fn(f);
    }
    return undefined();
}

void kpi_fraction(const struct kpi_figures *f, enum kpi_id id, double *num, double *den)
{
    const struct kpi_def *d = kpi_def(id);
    if (d->form == FORM_RATIO) {
        *num = (double)figure(f, d->field);
        *den = (double)figure(f, d->den);
        return;
    }
    if (d->frac) {
        d->frac(f, num, den);
        return;
    }
    struct kpi_value v = kpi_compute(f, id);
    *num = v.defined ? v.value : NAN;
    *den = v.defined ? 1 : NAN;
}

/* "Half up" means toward +infinity on an exact half (after the 12-digit step):
 * 0.125 -> 0.13, -0.125 -> -0.12, -2.5 -> -2. That is floor(x + 0.5) done in decimal,
 * and div_round_half_up (aov) does the same in cents.
 * Works on the decimal digits printf gives (glibc prints the exact binary value
 * correctly rounded), so no binary error creeps in between the two steps. */
double kpi_round(double v, int decimals)
{
    char s[48], out[48];
    const char *p;
    int keep, exp10;
    bool neg, up, rest = false;
    int64_t m = 0;

    if (!isfinite(v) || v == 0)
        return v == 0 ? 0.0 : v;
    if (decimals > 400)
        decimals = 400;
    if (decimals < -400)
        decimals = -400;
    /* 12 significant digits: [-]d.ddddddddddde[+-]xx */
    snprintf(s, sizeof(s), "%.11e", v);
    neg = s[0] == '-';
    p = s + neg;
    exp10 = (int)strtol(p + 14, NULL, 10);
    /* Digits kept: those whose place value 10^(exp10 - i) is >= 10^-decimals. */
    keep = exp10 + decimals + 1;
    if (keep >= 12)
        return strtod(s, NULL);
    if (keep < 0)
        return 0.0;
    /* digit i of the 12 is p[0] for i == 0, else p[i + 1] (after the point) */
    for (int i = 0; i < keep; i++)
        m = m * 10 + (p[i == 0 ? 0 : i + 1] - '0');
    char next = p[keep == 0 ? 0 : keep + 1];
    for (int i = keep + 1; i < 12; i++)
        rest |= p[i + 1] != '0';
    /* The magnitude goes up on a half for positives only (toward +infinity). */
    up = neg ? (next > '5' || (next == '5' && rest)) : next >= '5';
    m += up;
    if (m == 0)
        return 0.0;
    snprintf(out, sizeof(out), "%s%" PRId64 "e%d", neg ? "-" : "", m, -decimals);
    return strtod(out, NULL);
}

/* printf's %g follows LC_NUMERIC; csmetrics never calls setlocale for it, so "." holds. */
void kpi_format_double(double v, char *buf, size_t buflen)
{
    char tmp[40];

    if (buflen == 0)
        return;
    if (!isfinite(v)) {
        snprintf(buf, buflen, "null");
        return;
    }
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(tmp, sizeof(tmp), "%.*g", prec, v);
        if (strtod(tmp, NULL) == v)
            break; /* %.17g always reads back, so the loop ends here at the latest */
    }
    snprintf(buf, buflen, "%s", tmp);
}

void kpi_format_cents(int64_t cents, char *buf, size_t buflen)
{
    /* Magnitude in uint64_t so INT64_MIN needs no special case. */
    uint64_t a = cents < 0 ? -(uint64_t)cents : (uint64_t)cents;
    uint64_t yuan = a / 100;
    unsigned frac = (unsigned)(a % 100);
    const char *sign = cents < 0 ? "-" : "";

    if (buflen == 0)
        return;
    if (frac == 0)
        snprintf(buf, buflen, "%s%" PRIu64, sign, yuan);
    else if (frac % 10 == 0)
        snprintf(buf, buflen, "%s%" PRIu64 ".%u", sign, yuan, frac / 10);
    else
        snprintf(buf, buflen, "%s%" PRIu64 ".%02u", sign, yuan, frac);
}

/* A writer into the caller's fixed buffer that remembers running out of room. */
struct jw {
    char *buf;
    size_t len, cap; /* cap > len while !full: room for the NUL */
    bool full;
};

static void jw_add(struct jw *w, const char *s, size_t n)
{
    if (w->full || n >= w->cap - w->len) {
        w->full = true;
        return;
    }
    memcpy(w->buf + w->len, s, n);
    w->len += n;
    w->buf[w->len] = '\0';
}

static void jw_adds(struct jw *w, const char *s)
{
    jw_add(w, s, strlen(s));
}

/* Writes s[0..n) as the inside of a JSON string. Bytes that are not valid UTF-8
 * (an item cut at 63 bytes may end mid-character) become U+FFFD, so the output
 * is always valid JSON. */
static void jw_add_escaped(struct jw *w, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    char esc[8];

    for (size_t i = 0; i < n;) {
        if (u[i] == '"' || u[i] == '\\') {
            esc[0] = '\\';
            esc[1] = (char)u[i];
            jw_add(w, esc, 2);
            i++;
        } else if (u[i] < 0x20) {
            snprintf(esc, sizeof(esc), "\\u%04x", u[i]);
            jw_add(w, esc, 6);
            i++;
        } else if (u[i] < 0x80) {
            jw_add(w, s + i, 1);
            i++;
        } else {
            size_t len = utf8_seq_len(u + i, n - i);
            if (len) {
                jw_add(w, s + i, len);
                i += len;
            } else {
                jw_adds(w, "\\ufffd");
                i++;
            }
        }
    }
}

int kpi_metrics_json(const struct kpi_figures *f, char *buf, size_t buflen)
{
    struct jw w = {.buf = buf, .cap = buflen};
    char num[40];
    size_t nrev = f->reviews_n < KPI_REVIEW_MAX ? f->reviews_n : KPI_REVIEW_MAX;
    bool first = true;

    if (buflen == 0)
        return -1;
    buf[0] = '\0';
    jw_adds(&w, "{");
    for (int i = 0; i < KPI_COUNT_ALL; i++) {
        const struct kpi_def *d = &kpi_defs[i];
        struct kpi_value v;

        if (i == KPI_ABSENT_DAYS)
            continue; /* an input of eligibility, not a metric of the snapshot */
        v = kpi_compute(f, (enum kpi_id)i);
        if (!v.defined)
            snprintf(num, sizeof(num), "null");
        else if (d->unit == KPI_MONEY)
            kpi_format_cents(v.cents, num, sizeof(num));
        else if (d->unit == KPI_COUNT && d->form == FORM_FIELD)
            snprintf(num, sizeof(num), "%" PRId64, figure(f, d->field));
        else
            kpi_format_double(v.value, num, sizeof(num));
        jw_adds(&w, first ? "\"" : ", \"");
        jw_adds(&w, d->name);
        jw_adds(&w, "\": ");
        jw_adds(&w, num);
        first = false;
    }
    for (size_t i = 0; i < nrev; i++) {
        const struct kpi_review *r = &f->reviews[i];
        const char *role = review_role_name(r->role);

        if (!role)
            continue; /* not a role of events.md: nothing to name it by */
        jw_adds(&w, first ? "\"review." : ", \"review.");
        jw_add_escaped(&w, r->item, strnlen(r->item, sizeof(r->item)));
        jw_adds(&w, ".");
        jw_adds(&w, role);
        jw_adds(&w, "\": ");
        kpi_format_double(r->value, num, sizeof(num));
        jw_adds(&w, num);
        first = false;
    }
    jw_adds(&w, "}");
    if (w.full || w.len > INT_MAX) {
        buf[0] = '\0';
        return -1;
    }
    return (int)w.len;
}

bool kpi_figures_set_counter(struct kpi_figures *f, const char *field, int64_t value)
{
    static const struct {
        const char *name;
        size_t off;
    } fields[] = {
        {.name = "wait_n", .off = offsetof(struct kpi_figures, waits)},
        {.name = "wait_ms", .off = offsetof(struct kpi_figures, wait_sum_ms)},
        {.name = "first_n", .off = offsetof(struct kpi_figures, first_waits)},
        {.name = "first_ms", .off = offsetof(struct kpi_figures, first_wait_sum_ms)},
        {.name = "unans", .off = offsetof(struct kpi_figures, unanswered_waits)},
        {.name = "complaints", .off = offsetof(struct kpi_figures, complaints)},
        {.name = "order_cents", .off = offsetof(struct kpi_figures, order_amount_cents)},
        {.name = "sales_cents", .off = offsetof(struct kpi_figures, sales_cents)},
        {.name = "refund_cents", .off = offsetof(struct kpi_figures, refund_amount_cents)},
        {.name = "target_cents", .off = offsetof(struct kpi_figures, target_cents)},
    };
    for (size_t k = 0; k < sizeof(fields) / sizeof(fields[0]); k++)
        if (strcmp(field, fields[k].name) == 0) {
            *(int64_t *)((char *)f + fields[k].off) = value;
            return true;
        }
    return false;
}

bool kpi_figures_add_review(struct kpi_figures *f, const char *field, double value)
{
    const char *colon = strchr(field, ':');
    if (!colon || f->reviews_n >= KPI_REVIEW_MAX)
        return false;
    size_t n = (size_t)(colon - field);
    for (int role = 0; role < ROLE_COUNT; role++) {
        const char *rn = review_role_name((enum review_role)role);
        if (strlen(rn) == n && strncmp(field, rn, n) == 0) {
            struct kpi_review *kr = &f->reviews[f->reviews_n++];
            kr->role = (enum review_role)role;
            snprintf(kr->item, sizeof(kr->item), "%s", colon + 1);
            kr->value = value;
            return true;
        }
    }
    return false;
}
