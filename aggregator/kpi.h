/* kpi — metrics.md's KPI definitions over the raw figures the store keeps for one
 * (shop, agent or team, period). Pure: figures in, values out. Money stays integer
 * cents until it is written; a ratio with a zero denominator is undefined. */
#ifndef CSM_AGGREGATOR_KPI_H
#define CSM_AGGREGATOR_KPI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "consumers/event.h"

#define KPI_REVIEW_MAX 32

struct kpi_review {
    char item[64];
    enum review_role role;
    double value; /* score / max, 0..1 */
};

/* Raw figures, as store_read_figures() returns them. */
struct kpi_figures {
    int64_t inquiries; /* |inquiry customers| */
    int64_t replied;   /* |customers with an answered wait ∩ inquiry customers| */
    int64_t waits;     /* answered waits */
    int64_t wait_sum_ms;
    int64_t first_waits; /* answered first waits */
    int64_t first_wait_sum_ms;
    int64_t unanswered_waits;
    int64_t wait_p90_ms;          /* -1 when no answered wait */
    int64_t ordered;              /* |customers with a created order| */
    int64_t inquired_and_ordered; /* |inquiry customers ∩ ordered customers| */
    int64_t paid_customers;
    int64_t orders, paid_orders, refunded_orders, cancelled_orders, flagged_orders;
    int64_t order_amount_cents, sales_cents, refund_amount_cents;
    int64_t complaints;
    int64_t target_cents; /* -1 when no target */
    int64_t absent_days;
    size_t reviews_n;
    struct kpi_review reviews[KPI_REVIEW_MAX];
};

enum kpi_unit { KPI_COUNT, KPI_RATIO, KPI_SECONDS, KPI_MONEY };

/* One KPI value: undefined, or a number (money as cents in `cents`). */
struct kpi_value {
    bool defined;
    double value;  /* ratios, seconds, counts; money in yuan (cents / 100) */
    int64_t cents; /* money only */
};

enum kpi_id {
    KPI_INQUIRIES,
    KPI_REPLIED,
    KPI_REPLY_RATE,
    KPI_RESPONSE_TIME_MEAN_S,
    KPI_FIRST_RESPONSE_TIME_MEAN_S,
    KPI_UNANSWERED_WAITS,
    KPI_ORDERED,
    KPI_INQUIRY_CONVERSION,
    KPI_PAID_CUSTOMERS,
    KPI_ORDER_SUCCESS,
    KPI_SALES,
    KPI_AOV,
    KPI_ORDERS,
    KPI_PAID_ORDERS,
    KPI_REFUNDED_ORDERS,
    KPI_CANCELLED_ORDERS,
    KPI_FLAGGED_ORDERS,
    KPI_ORDER_AMOUNT,
    KPI_REFUND_AMOUNT,
    KPI_REFUND_RATE,
    KPI_PAYMENT_RATE,
    KPI_VALID_ORDER_RATE,
    KPI_ABNORMAL_ORDER_RATE,
    KPI_COMPLAINTS,
    KPI_COMPLAINT_RATE,
    KPI_TARGET_COMPLETION,
    KPI_CHURN_RATE,
    KPI_RESPONSE_TIME_P90_S,
    KPI_ABSENT_DAYS,
    KPI_COUNT_ALL
};

const char *kpi_name(enum kpi_id id); /* rule name, e.g. "reply_rate" */
enum kpi_unit kpi_unit(enum kpi_id id);
/* -1 when the name is not a KPI of this table (review.* is handled by callers). */
int kpi_lookup(const char *name, enum kpi_id *out);

/* Computes one KPI from the figures. */
/* Reading figures back from the store (daemon/store.c, cli/memstore.c): sets the
 * counter a field of the `…:LABEL:c` hash names (wait_n, sales_cents, …); false when
 * the field is unknown. */
bool kpi_figures_set_counter(struct kpi_figures *f, const char *field, int64_t value);
/* Adds the review score a field "role:item" of the `…:LABEL:rv` hash holds; false when
 * the field is malformed, its role unknown or f full. */
bool kpi_figures_add_review(struct kpi_figures *f, const char *field, double value);

struct kpi_value kpi_compute(const struct kpi_figures *f, enum kpi_id id);

/* The figures a KPI is the fraction of, as shown to people (seconds, yuan): ratios and
 * means their numerator and denominator (which may be 0), other KPIs value / 1, and
 * NAN where a figure does not exist (no target) or the value is undefined. For a
 * snapshot's explanation of a score line. */
void kpi_fraction(const struct kpi_figures *f, enum kpi_id id, double *num, double *den);

/* Rounds a double half up after first rounding to 12 significant digits (rules.md
 * "Arithmetic"): kpi_round(29.00 * 0.005, 2) == 0.15. */
double kpi_round(double v, int decimals);

/* Writes the JSON "metrics" object of `show --json` into buf (NUL-terminated):
 * every KPI of the table but absent_days (null when undefined; money as yuan with at
 * most two decimals from cents; counts as integers), then "review.<item>.<role>"
 * per review. Returns the length, or -1 when buf is too small. */
int kpi_metrics_json(const struct kpi_figures *f, char *buf, size_t buflen);

/* Shortest text that reads back as the same double ("0.5", "0.6666666666666666"). */
void kpi_format_double(double v, char *buf, size_t buflen);
/* Cents as a JSON number in yuan: 12990 -> "129.9", 2000 -> "20", -5 -> "-0.05". */
void kpi_format_cents(int64_t cents, char *buf, size_t buflen);

#endif
