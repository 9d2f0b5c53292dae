/* test_kpi — aggregator/kpi.c against metrics.md: every KPI of agents x1 and x2 of the
 * worked example (spec/example/expected-show.jsonl, copied in below), the metrics JSON
 * parsed back with yajl, zero denominators, uncapped ratios, aov and rules.md rounding,
 * and the exact number formats. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_tree.h>

#include "aggregator/kpi.h"

/* Ratios within 1e-9 relative (metrics.md); an expected 0 must be exactly 0. */
static int near(double got, double want)
{
    if (want == 0)
        return got == 0;
    return fabs(got - want) <= 1e-9 * fabs(want);
}

/* ---- the worked example, figures built by hand from example/README.md ---- */

/* x1: u1 (c1: waits 45 s and 30 s, answered by x1; first wait 45 s) and u2 (c2, moved
 * to x2 before an answer) are its inquiries; o1 (u1, 129.90) created, paid, 20.00
 * refunded; target 1000; manager review 8 of 10 on "execution". */
static const struct kpi_figures fig_x1 = {
    .inquiries = 2,
    .replied = 1,
    .waits = 2,
    .wait_sum_ms = 75000,
    .first_waits = 1,
    .first_wait_sum_ms = 45000,
    .unanswered_waits = 0,
    .wait_p90_ms = 45000,
    .ordered = 1,
    .inquired_and_ordered = 1,
    .paid_customers = 1,
    .orders = 1,
    .paid_orders = 1,
    .refunded_orders = 1,
    .cancelled_orders = 0,
    .flagged_orders = 0,
    .order_amount_cents = 12990,
    .sales_cents = 12990,
    .refund_amount_cents = 2000,
    .complaints = 0,
    .target_cents = 100000,
    .absent_days = 0,
    .reviews_n = 1,
    .reviews = {{.item = "execution", .role = ROLE_MANAGER, .value = 8.0 / 10.0}},
};

/* x2: u2 (c2's 120 s wait, x2's after the transfer; c2's first wait), u3 (c3, never
 * answered, complains), u4 (c4: one 40 s wait by ts, its first); o2 (u2, 59.90,
 * cancelled) and o3 (u4, 300, paid, flagged); target 200; no review. */
static const struct kpi_figures fig_x2 = {
    .inquiries = 3,
    .replied = 2,
    .waits = 2,
    .wait_sum_ms = 160000,
    .first_waits = 2,
    .first_wait_sum_ms = 160000,
    .unanswered_waits = 1,
    .wait_p90_ms = 120000,
    .ordered = 2,
    .inquired_and_ordered = 2,
    .paid_customers = 1,
    .orders = 2,
    .paid_orders = 1,
    .refunded_orders = 0,
    .cancelled_orders = 1,
    .flagged_orders = 1,
    .order_amount_cents = 35990,
    .sales_cents = 30000,
    .refund_amount_cents = 0,
    .complaints = 1,
    .target_cents = 20000,
    .absent_days = 0,
    .reviews_n = 0,
};

struct want {
    double value;  /* as in expected-show.jsonl */
    int64_t cents; /* money only */
};

/* The "metrics" objects of expected-show.jsonl, verbatim. */
static const char json_x1[] =
    "{\"inquiries\": 2, \"replied\": 1, \"reply_rate\": 0.5, \"response_time_mean_s\": 37.5, "
    "\"first_response_time_mean_s\": 45.0, \"unanswered_waits\": 0, \"ordered\": 1, "
    "\"inquiry_conversion\": 0.5, \"paid_customers\": 1, \"order_success\": 1.0, \"sales\": "
    "129.9, \"aov\": 129.9, \"orders\": 1, \"paid_orders\": 1, \"refunded_orders\": 1, "
    "\"cancelled_orders\": 0, \"flagged_orders\": 0, \"order_amount\": 129.9, "
    "\"refund_amount\": 20.0, \"refund_rate\": 1.0, \"payment_rate\": 1.0, "
    "\"valid_order_rate\": 1.0, \"abnormal_order_rate\": 0.0, \"complaints\": 0, "
    "\"complaint_rate\": 0.0, \"target_completion\": 0.1299, \"churn_rate\": 0.5, "
    "\"response_time_p90_s\": 45.0, \"review.execution.manager\": 0.8}";
static const char json_x2[] =
    "{\"inquiries\": 3, \"replied\": 2, \"reply_rate\": 0.6666666666666666, "
    "\"response_time_mean_s\": 80.0, \"first_response_time_mean_s\": 80.0, "
    "\"unanswered_waits\": 1, \"ordered\": 2, \"inquiry_conversion\": 0.6666666666666666, "
    "\"paid_customers\": 1, \"order_success\": 0.5, \"sales\": 300.0, \"aov\": 300.0, "
    "\"orders\": 2, \"paid_orders\": 1, \"refunded_orders\": 0, \"cancelled_orders\": 1, "
    "\"flagged_orders\": 1, \"order_amount\": 359.9, \"refund_amount\": 0.0, "
    "\"refund_rate\": 0.0, \"payment_rate\": 0.5, \"valid_order_rate\": 0.0, "
    "\"abnormal_order_rate\": 0.5, \"complaints\": 1, \"complaint_rate\": 0.3333333333333333, "
    "\"target_completion\": 1.5, \"churn_rate\": 0.3333333333333333, "
    "\"response_time_p90_s\": 120.0}";

static const struct example {
    const char *agent;
    const struct kpi_figures *fig;
    struct want want[KPI_COUNT_ALL]; /* every KPI is defined in the example */
    const char *json;
} examples[] = {
    {
        .agent = "x1",
        .fig = &fig_x1,
        .want =
            {
                [KPI_INQUIRIES] = {.value = 2},
                [KPI_REPLIED] = {.value = 1},
                [KPI_REPLY_RATE] = {.value = 0.5},
                [KPI_RESPONSE_TIME_MEAN_S] = {.value = 37.5},
                [KPI_FIRST_RESPONSE_TIME_MEAN_S] = {.value = 45.0},
                [KPI_UNANSWERED_WAITS] = {.value = 0},
                [KPI_ORDERED] = {.value = 1},
                [KPI_INQUIRY_CONVERSION] = {.value = 0.5},
                [KPI_PAID_CUSTOMERS] = {.value = 1},
                [KPI_ORDER_SUCCESS] = {.value = 1.0},
                [KPI_SALES] = {.value = 129.9, .cents = 12990},
                [KPI_AOV] = {.value = 129.9, .cents = 12990},
                [KPI_ORDERS] = {.value = 1},
                [KPI_PAID_ORDERS] = {.value = 1},
                [KPI_REFUNDED_ORDERS] = {.value = 1},
                [KPI_CANCELLED_ORDERS] = {.value = 0},
                [KPI_FLAGGED_ORDERS] = {.value = 0},
                [KPI_ORDER_AMOUNT] = {.value = 129.9, .cents = 12990},
                [KPI_REFUND_AMOUNT] = {.value = 20.0, .cents = 2000},
                [KPI_REFUND_RATE] = {.value = 1.0},
                [KPI_PAYMENT_RATE] = {.value = 1.0},
                [KPI_VALID_ORDER_RATE] = {.value = 1.0},
                [KPI_ABNORMAL_ORDER_RATE] = {.value = 0.0},
                [KPI_COMPLAINTS] = {.value = 0},
                [KPI_COMPLAINT_RATE] = {.value = 0.0},
                [KPI_TARGET_COMPLETION] = {.value = 0.1299},
                [KPI_CHURN_RATE] = {.value = 0.5},
                [KPI_RESPONSE_TIME_P90_S] = {.value = 45.0},
                [KPI_ABSENT_DAYS] = {.value = 0},
            },
        .json = json_x1,
    },
    {
        .agent = "x2",
        .fig = &fig_x2,
        .want =
            {
                [KPI_INQUIRIES] = {.value = 3},
                [KPI_REPLIED] = {.value = 2},
                [KPI_REPLY_RATE] = {.value = 0.6666666666666666},
                [KPI_RESPONSE_TIME_MEAN_S] = {.value = 80.0},
                [KPI_FIRST_RESPONSE_TIME_MEAN_S] = {.value = 80.0},
                [KPI_UNANSWERED_WAITS] = {.value = 1},
                [KPI_ORDERED] = {.value = 2},
                [KPI_INQUIRY_CONVERSION] = {.value = 0.6666666666666666},
                [KPI_PAID_CUSTOMERS] = {.value = 1},
                [KPI_ORDER_SUCCESS] = {.value = 0.5},
                [KPI_SALES] = {.value = 300.0, .cents = 30000},
                [KPI_AOV] = {.value = 300.0, .cents = 30000},
                [KPI_ORDERS] = {.value = 2},
                [KPI_PAID_ORDERS] = {.value = 1},
                [KPI_REFUNDED_ORDERS] = {.value = 0},
                [KPI_CANCELLED_ORDERS] = {.value = 1},
                [KPI_FLAGGED_ORDERS] = {.value = 1},
                [KPI_ORDER_AMOUNT] = {.value = 359.9, .cents = 35990},
                [KPI_REFUND_AMOUNT] = {.value = 0.0, .cents = 0},
                [KPI_REFUND_RATE] = {.value = 0.0},
                [KPI_PAYMENT_RATE] = {.value = 0.5},
                [KPI_VALID_ORDER_RATE] = {.value = 0.0},
                [KPI_ABNORMAL_ORDER_RATE] = {.value = 0.5},
                [KPI_COMPLAINTS] = {.value = 1},
                [KPI_COMPLAINT_RATE] = {.value = 0.3333333333333333},
                [KPI_TARGET_COMPLETION] = {.value = 1.5},
                [KPI_CHURN_RATE] = {.value = 0.3333333333333333},
                [KPI_RESPONSE_TIME_P90_S] = {.value = 120.0},
                [KPI_ABSENT_DAYS] = {.value = 0},
            },
        .json = json_x2,
    },
};

#define N_EXAMPLES (sizeof(examples) / sizeof(examples[0]))

static yajl_val parse_json(const char *text)
{
    char err[256];
    yajl_val v = yajl_tree_parse(text, err, sizeof(err));

    if (!v)
        fail_msg("cannot parse json '%s': %s", text, err);
    assert_true(YAJL_IS_OBJECT(v));
    return v;
}

static yajl_val object_get(yajl_val obj, const char *key)
{
    for (size_t i = 0; i < obj->u.object.len; i++)
        if (strcmp(obj->u.object.keys[i], key) == 0)
            return obj->u.object.values[i];
    return NULL;
}

/* A JSON number written without fraction or exponent. */
static int is_integer_text(yajl_val v)
{
    return strpbrk(YAJL_GET_NUMBER(v), ".eE") == NULL;
}

/* Compares two parsed "metrics" objects key by key, as numbers. */
static void assert_metrics_equal(yajl_val got, yajl_val want, const char *agent)
{
    assert_int_equal(got->u.object.len, want->u.object.len);
    for (size_t i = 0; i < want->u.object.len; i++) {
        const char *key = want->u.object.keys[i];
        yajl_val w = want->u.object.values[i];
        yajl_val g = object_get(got, key);

        if (!g)
            fail_msg("%s: key '%s' missing", agent, key);
        if (YAJL_IS_NULL(w)) {
            if (!YAJL_IS_NULL(g))
                fail_msg("%s: '%s' is not null", agent, key);
            continue;
        }
        assert_true(YAJL_IS_NUMBER(w));
        if (!YAJL_IS_NUMBER(g))
            fail_msg("%s: '%s' is not a number", agent, key);
        if (is_integer_text(w) && !is_integer_text(g))
            fail_msg("%s: count '%s' written as '%s'", agent, key, YAJL_GET_NUMBER(g));
        if (!near(YAJL_GET_DOUBLE(g), YAJL_GET_DOUBLE(w)))
            fail_msg("%s: '%s' is %s, want %s", agent, key, YAJL_GET_NUMBER(g), YAJL_GET_NUMBER(w));
    }
}

/* ---- tests ---- */

static void test_table(void **state)
{
    static const struct {
        enum kpi_id id;
        const char *name;
        enum kpi_unit unit;
    } cases[] = {
        {KPI_INQUIRIES, "inquiries", KPI_COUNT},
        {KPI_REPLIED, "replied", KPI_COUNT},
        {KPI_REPLY_RATE, "reply_rate", KPI_RATIO},
        {KPI_RESPONSE_TIME_MEAN_S, "response_time_mean_s", KPI_SECONDS},
        {KPI_FIRST_RESPONSE_TIME_MEAN_S, "first_response_time_mean_s", KPI_SECONDS},
        {KPI_UNANSWERED_WAITS, "unanswered_waits", KPI_COUNT},
        {KPI_ORDERED, "ordered", KPI_COUNT},
        {KPI_INQUIRY_CONVERSION, "inquiry_conversion", KPI_RATIO},
        {KPI_PAID_CUSTOMERS, "paid_customers", KPI_COUNT},
        {KPI_ORDER_SUCCESS, "order_success", KPI_RATIO},
        {KPI_SALES, "sales", KPI_MONEY},
        {KPI_AOV, "aov", KPI_MONEY},
        {KPI_ORDERS, "orders", KPI_COUNT},
        {KPI_PAID_ORDERS, "paid_orders", KPI_COUNT},
        {KPI_REFUNDED_ORDERS, "refunded_orders", KPI_COUNT},
        {KPI_CANCELLED_ORDERS, "cancelled_orders", KPI_COUNT},
        {KPI_FLAGGED_ORDERS, "flagged_orders", KPI_COUNT},
        {KPI_ORDER_AMOUNT, "order_amount", KPI_MONEY},
        {KPI_REFUND_AMOUNT, "refund_amount", KPI_MONEY},
        {KPI_REFUND_RATE, "refund_rate", KPI_RATIO},
        {KPI_PAYMENT_RATE, "payment_rate", KPI_RATIO},
        {KPI_VALID_ORDER_RATE, "valid_order_rate", KPI_RATIO},
        {KPI_ABNORMAL_ORDER_RATE, "abnormal_order_rate", KPI_RATIO},
        {KPI_COMPLAINTS, "complaints", KPI_COUNT},
        {KPI_COMPLAINT_RATE, "complaint_rate", KPI_RATIO},
        {KPI_TARGET_COMPLETION, "target_completion", KPI_RATIO},
        {KPI_CHURN_RATE, "churn_rate", KPI_RATIO},
        {KPI_RESPONSE_TIME_P90_S, "response_time_p90_s", KPI_SECONDS},
        {KPI_ABSENT_DAYS, "absent_days", KPI_COUNT},
    };
    static const char *const unknown[] = {
        "review.execution", "", "Inquiries", "inquiries ", "team.sales", "score", "absent",
    };
    enum kpi_id id;

    assert_int_equal(sizeof(cases) / sizeof(cases[0]), KPI_COUNT_ALL);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(cases[i].id, i);
        assert_string_equal(kpi_name(cases[i].id), cases[i].name);
        assert_int_equal(kpi_unit(cases[i].id), cases[i].unit);
        id = KPI_COUNT_ALL;
        assert_int_equal(kpi_lookup(cases[i].name, &id), 0);
        assert_int_equal(id, cases[i].id);
    }
    for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
        id = KPI_COUNT_ALL;
        assert_int_equal(kpi_lookup(unknown[i], &id), -1);
        assert_int_equal(id, KPI_COUNT_ALL); /* untouched */
    }
    assert_int_equal(kpi_lookup(NULL, &id), -1);
    assert_int_equal(kpi_lookup("aov", NULL), 0);
}

static void test_example_values(void **state)
{
    for (size_t e = 0; e < N_EXAMPLES; e++) {
        const struct example *ex = &examples[e];

        for (int i = 0; i < KPI_COUNT_ALL; i++) {
            struct kpi_value v = kpi_compute(ex->fig, (enum kpi_id)i);

            if (!v.defined)
                fail_msg("%s: %s undefined", ex->agent, kpi_name((enum kpi_id)i));
            if (!near(v.value, ex->want[i].value))
                fail_msg("%s: %s = %.17g, want %.17g", ex->agent, kpi_name((enum kpi_id)i), v.value,
                         ex->want[i].value);
            if (kpi_unit((enum kpi_id)i) == KPI_MONEY) {
                assert_int_equal(v.cents, ex->want[i].cents);
                /* money is the double nearest to the decimal amount, exactly */
                assert_true(v.value == ex->want[i].value);
            }
        }
    }
}

static void test_example_json(void **state)
{
    char buf[4096];

    for (size_t e = 0; e < N_EXAMPLES; e++) {
        int n = kpi_metrics_json(examples[e].fig, buf, sizeof(buf));
        yajl_val got, want;

        assert_true(n > 0);
        assert_int_equal((size_t)n, strlen(buf));
        got = parse_json(buf);
        want = parse_json(examples[e].json);
        assert_metrics_equal(got, want, examples[e].agent);
        yajl_tree_free(got);
        yajl_tree_free(want);
    }
}

/* Exact text, so a change of format is a decision, not an accident. */
static void test_example_json_text(void **state)
{
    char buf[4096];
    int n = kpi_metrics_json(&fig_x1, buf, sizeof(buf));

    assert_int_equal(n, (int)strlen(buf));
    assert_string_equal(
        buf,
        "{\"inquiries\": 2, \"replied\": 1, \"reply_rate\": 0.5, \"response_time_mean_s\": "
        "37.5, \"first_response_time_mean_s\": 45, \"unanswered_waits\": 0, \"ordered\": 1, "
        "\"inquiry_conversion\": 0.5, \"paid_customers\": 1, \"order_success\": 1, "
        "\"sales\": 129.9, \"aov\": 129.9, \"orders\": 1, \"paid_orders\": 1, "
        "\"refunded_orders\": 1, \"cancelled_orders\": 0, \"flagged_orders\": 0, "
        "\"order_amount\": 129.9, \"refund_amount\": 20, \"refund_rate\": 1, "
        "\"payment_rate\": 1, \"valid_order_rate\": 1, \"abnormal_order_rate\": 0, "
        "\"complaints\": 0, \"complaint_rate\": 0, \"target_completion\": 0.1299, "
        "\"churn_rate\": 0.5, \"response_time_p90_s\": 45, \"review.execution.manager\": 0.8}");
}

/* Keys in table order, absent_days left out, reviews last. */
static void test_json_key_order(void **state)
{
    char buf[4096];
    yajl_val got;
    size_t k = 0;

    assert_true(kpi_metrics_json(&fig_x1, buf, sizeof(buf)) > 0);
    got = parse_json(buf);
    for (int i = 0; i < KPI_COUNT_ALL; i++) {
        if (i == KPI_ABSENT_DAYS)
            continue;
        assert_true(k < got->u.object.len);
        assert_string_equal(got->u.object.keys[k++], kpi_name((enum kpi_id)i));
    }
    assert_int_equal(k + 1, got->u.object.len);
    assert_string_equal(got->u.object.keys[k], "review.execution.manager");
    assert_null(object_get(got, "absent_days"));
    yajl_tree_free(got);
}

static void test_zero_denominators(void **state)
{
    static const enum kpi_id undef[] = {
        KPI_REPLY_RATE,          KPI_RESPONSE_TIME_MEAN_S, KPI_FIRST_RESPONSE_TIME_MEAN_S,
        KPI_INQUIRY_CONVERSION,  KPI_ORDER_SUCCESS,        KPI_AOV,
        KPI_REFUND_RATE,         KPI_PAYMENT_RATE,         KPI_VALID_ORDER_RATE,
        KPI_ABNORMAL_ORDER_RATE, KPI_COMPLAINT_RATE,       KPI_TARGET_COMPLETION,
        KPI_CHURN_RATE,          KPI_RESPONSE_TIME_P90_S,
    };
    struct kpi_figures f = {.wait_p90_ms = -1, .target_cents = -1};
    char buf[4096];
    yajl_val got;

    for (int i = 0; i < KPI_COUNT_ALL; i++) {
        struct kpi_value v = kpi_compute(&f, (enum kpi_id)i);
        int want_undef = 0;

        for (size_t j = 0; j < sizeof(undef) / sizeof(undef[0]); j++)
            want_undef |= undef[j] == (enum kpi_id)i;
        if (v.defined == want_undef)
            fail_msg("%s: defined=%d", kpi_name((enum kpi_id)i), v.defined);
        if (v.defined) {
            assert_true(v.value == 0);
            assert_int_equal(v.cents, 0);
        }
    }
    assert_true(kpi_metrics_json(&f, buf, sizeof(buf)) > 0);
    got = parse_json(buf);
    assert_int_equal(got->u.object.len, KPI_COUNT_ALL - 1);
    for (size_t j = 0; j < sizeof(undef) / sizeof(undef[0]); j++)
        assert_true(YAJL_IS_NULL(object_get(got, kpi_name(undef[j]))));
    assert_string_equal(YAJL_GET_NUMBER(object_get(got, "sales")), "0");
    assert_string_equal(YAJL_GET_NUMBER(object_get(got, "inquiries")), "0");
    yajl_tree_free(got);

    /* A zero target is a zero denominator too; a p90 of 0 ms is a value. */
    f.target_cents = 0;
    f.wait_p90_ms = 0;
    assert_false(kpi_compute(&f, KPI_TARGET_COMPLETION).defined);
    assert_true(kpi_compute(&f, KPI_RESPONSE_TIME_P90_S).defined);
    assert_true(kpi_compute(&f, KPI_RESPONSE_TIME_P90_S).value == 0);
    /* Only the first-wait mean is undefined when no first wait was answered. */
    f.waits = 1;
    f.wait_sum_ms = 1500;
    assert_true(kpi_compute(&f, KPI_RESPONSE_TIME_MEAN_S).value == 1.5);
    assert_false(kpi_compute(&f, KPI_FIRST_RESPONSE_TIME_MEAN_S).defined);
}

/* Each event counts in its own period: ratios may leave 0..1 and stay so. */
static void test_uncapped(void **state)
{
    struct kpi_figures f = {
        .inquiries = 2,
        .ordered = 2,
        .inquired_and_ordered = 1,
        .paid_customers = 3,
        .orders = 1,
        .paid_orders = 1,
        .refunded_orders = 2,
        .cancelled_orders = 1,
        .flagged_orders = 1,
        .complaints = 5,
        .sales_cents = 30000,
        .target_cents = 10000,
        .wait_p90_ms = -1,
    };

    assert_true(kpi_compute(&f, KPI_ORDER_SUCCESS).value == 1.5);
    assert_true(kpi_compute(&f, KPI_REFUND_RATE).value == 2.0);
    assert_true(kpi_compute(&f, KPI_VALID_ORDER_RATE).value == -1.0);
    assert_true(kpi_compute(&f, KPI_COMPLAINT_RATE).value == 2.5);
    assert_true(kpi_compute(&f, KPI_TARGET_COMPLETION).value == 3.0);
    assert_true(kpi_compute(&f, KPI_CHURN_RATE).value == 0.5);
    assert_true(kpi_compute(&f, KPI_INQUIRY_CONVERSION).value == 0.5);
}

static void test_aov_rounding(void **state)
{
    static const struct {
        int64_t sales_cents, customers, aov_cents;
        const char *text;
    } cases[] = {
        {100000, 3, 33333, "333.33"},
        {1000, 3, 333, "3.33"},
        {1001, 2, 501, "5.01"}, /* 500.5 cents, half up */
        {1002, 3, 334, "3.34"},
        {2, 3, 1, "0.01"},
        {1, 3, 0, "0"},
        {5, 2, 3, "0.03"},
        {12990, 1, 12990, "129.9"},
        {29999, 4, 7500, "75"}, /* 7499.75 */
        {99999999999999, 7, 14285714285714, "142857142857.14"},
        {100000000000001, 2, 50000000000001, "500000000000.01"}, /* .5 up */
        {INT64_MAX, 2, 4611686018427387904, "46116860184273879.04"},
        /* toward +infinity on a half, as kpi_round */
        {-1001, 2, -500, "-5"},
        {-1003, 2, -501, "-5.01"},
        {-1000, 3, -333, "-3.33"},
        {-2, 3, -1, "-0.01"},
        {-1, 3, 0, "0"},
        {INT64_MIN, 3, -3074457345618258603, "-30744573456182586.03"},
    };
    char buf[4096];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct kpi_figures f = {
            .sales_cents = cases[i].sales_cents,
            .paid_customers = cases[i].customers,
            .wait_p90_ms = -1,
            .target_cents = -1,
        };
        struct kpi_value v = kpi_compute(&f, KPI_AOV);
        yajl_val got;

        assert_true(v.defined);
        if (v.cents != cases[i].aov_cents)
            fail_msg("case %zu: aov %" PRId64 " cents, want %" PRId64, i, v.cents,
                     cases[i].aov_cents);
        assert_true(v.value == (double)cases[i].aov_cents / 100.0);
        assert_true(kpi_metrics_json(&f, buf, sizeof(buf)) > 0);
        got = parse_json(buf);
        assert_string_equal(YAJL_GET_NUMBER(object_get(got, "aov")), cases[i].text);
        yajl_tree_free(got);
    }
}

static void test_round(void **state)
{
    static const struct {
        double v;
        int decimals;
        double want;
    } cases[] = {
        {29.00 * 0.005, 2, 0.15}, /* 0.14499999999999999 */
        {0.57 * 100, 0, 57},      /* 56.999999999999993 */
        {1.005, 2, 1.01},
        {2.675, 2, 2.68},
        {1.45, 1, 1.5},
        {0.125, 2, 0.13},
        {2.5, 0, 3},
        {0.5, 0, 1},
        {0.49, 0, 0},
        {123.456, 1, 123.5},
        {84.994999, 2, 84.99},
        {84.995, 2, 85},
        {99.995, 2, 100}, /* carry into a new digit */
        {9.99999999999999, 2, 10},
        {0.0049999999999999, 2, 0.01}, /* 12 digits: 0.00500000000000 */
        {0.004999999, 2, 0},
        {1e-20, 2, 0},
        {0.0, 2, 0},
        {-0.0, 2, 0},
        {1234567.891, 2, 1234567.89},
        {999999999999.995, 2, 1000000000000}, /* beyond 12 digits: the 12-digit value */
        {1e300, 2, 1e300},
        {70, 2, 70},
        {69.999999999999, 2, 70},
        {1.0 / 3, 2, 0.33},
        {2.0 / 3, 4, 0.6667},
        {1234.5, -1, 1230},
        {1235, -1, 1240},
        /* negatives: toward +infinity on an exact half */
        {-0.125, 2, -0.12},
        {-0.1251, 2, -0.13},
        {-2.5, 0, -2},
        {-1.005, 2, -1},
        {-29.00 * 0.005, 2, -0.14},
        {-0.4, 0, 0},
        {-100, 2, -100},
        {-0.57 * 100, 0, -57},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        double got = kpi_round(cases[i].v, cases[i].decimals);

        if (got != cases[i].want || signbit(got) != signbit(cases[i].want))
            fail_msg("case %zu: kpi_round(%.17g, %d) = %.17g, want %.17g", i, cases[i].v,
                     cases[i].decimals, got, cases[i].want);
    }
    assert_true(isnan(kpi_round(NAN, 2)));
    assert_true(kpi_round(INFINITY, 2) == INFINITY);
    assert_true(kpi_round(-INFINITY, 0) == -INFINITY);
}

static void test_format_double(void **state)
{
    static const struct {
        double v;
        const char *text;
    } cases[] = {
        {0.5, "0.5"},
        {2.0 / 3, "0.6666666666666666"},
        {1.0 / 3, "0.3333333333333333"},
        {1 - 2.0 / 3, "0.33333333333333337"},
        {0.1 + 0.2, "0.30000000000000004"},
        {0.1299, "0.1299"},
        {45.0, "45"},
        {0, "0"},
        {-0.25, "-0.25"},
        {129.9, "129.9"},
        {1e21, "1e+21"},
        {1e-7, "1e-07"},
        {123456789012345678.0, "1.2345678901234568e+17"},
        {5e-324, "4.94065645841247e-324"},
        {1.7976931348623157e308, "1.7976931348623157e+308"},
        {NAN, "null"},
        {INFINITY, "null"},
        {-INFINITY, "null"},
    };
    char buf[64];
    uint64_t x = 88172645463325252u;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        kpi_format_double(cases[i].v, buf, sizeof(buf));
        assert_string_equal(buf, cases[i].text);
    }
    /* Any finite double reads back as itself (xorshift64 over bit patterns). */
    for (int i = 0; i < 100000; i++) {
        double v;

        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        memcpy(&v, &x, sizeof(v));
        if (!isfinite(v))
            continue;
        kpi_format_double(v, buf, sizeof(buf));
        if (strtod(buf, NULL) != v)
            fail_msg("'%s' does not read back as %a", buf, v);
    }
    /* Truncated, still a C string. */
    kpi_format_double(2.0 / 3, buf, 4);
    assert_string_equal(buf, "0.6");
}

static void test_format_cents(void **state)
{
    static const struct {
        int64_t cents;
        const char *text;
    } cases[] = {
        {12990, "129.9"},
        {2000, "20"},
        {0, "0"},
        {5, "0.05"},
        {-5, "-0.05"},
        {50, "0.5"},
        {-50, "-0.5"},
        {100, "1"},
        {-100, "-1"},
        {101, "1.01"},
        {35990, "359.9"},
        {-12990, "-129.9"},
        {99999999999999, "999999999999.99"},
        {100000000000000, "1000000000000"},
        {100000000000010, "1000000000000.1"},
        {-100000000000001, "-1000000000000.01"},
        {INT64_MAX, "92233720368547758.07"},
        {INT64_MIN, "-92233720368547758.08"},
    };
    char buf[64];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        kpi_format_cents(cases[i].cents, buf, sizeof(buf));
        assert_string_equal(buf, cases[i].text);
    }
    kpi_format_cents(12990, buf, 4);
    assert_string_equal(buf, "129");
}

/* Money near 10^14 cents stays exact in the JSON and reads back as the nearest double. */
static void test_large_cents(void **state)
{
    struct kpi_figures f = {
        .sales_cents = 99999999999999,
        .order_amount_cents = 100000000000001,
        .refund_amount_cents = -99999999999999,
        .paid_customers = 1,
        .target_cents = 100000000000000,
        .wait_p90_ms = -1,
    };
    char buf[4096];
    yajl_val got;
    struct kpi_value v;

    v = kpi_compute(&f, KPI_SALES);
    assert_int_equal(v.cents, 99999999999999);
    assert_true(v.value == 999999999999.99);
    v = kpi_compute(&f, KPI_AOV);
    assert_int_equal(v.cents, 99999999999999);
    assert_true(kpi_compute(&f, KPI_TARGET_COMPLETION).value == 0.99999999999999);
    assert_true(kpi_metrics_json(&f, buf, sizeof(buf)) > 0);
    got = parse_json(buf);
    assert_string_equal(YAJL_GET_NUMBER(object_get(got, "sales")), "999999999999.99");
    assert_true(YAJL_GET_DOUBLE(object_get(got, "sales")) == 999999999999.99);
    assert_string_equal(YAJL_GET_NUMBER(object_get(got, "order_amount")), "1000000000000.01");
    assert_string_equal(YAJL_GET_NUMBER(object_get(got, "refund_amount")), "-999999999999.99");
    assert_string_equal(YAJL_GET_NUMBER(object_get(got, "aov")), "999999999999.99");
    yajl_tree_free(got);
}

static void test_json_buffer_too_small(void **state)
{
    char full[4096], buf[4096];
    int n = kpi_metrics_json(&fig_x1, full, sizeof(full));

    assert_true(n > 0);
    assert_int_equal(kpi_metrics_json(&fig_x1, buf, 0), -1);
    for (size_t len = 1; len <= (size_t)n; len++) {
        memset(buf, 'x', sizeof(buf));
        if (kpi_metrics_json(&fig_x1, buf, len) != -1)
            fail_msg("buflen %zu of %d accepted", len, n);
        assert_int_equal(buf[0], '\0');
        assert_int_equal(buf[len], 'x'); /* nothing written past buflen */
    }
    memset(buf, 'x', sizeof(buf));
    assert_int_equal(kpi_metrics_json(&fig_x1, buf, (size_t)n + 1), n);
    assert_string_equal(buf, full);
}

static void test_json_reviews(void **state)
{
    static const struct {
        const char *item; /* as stored in kpi_review.item */
        enum review_role role;
        double value;
        const char *key; /* as a JSON reader decodes it */
        const char *value_text;
    } cases[] = {
        {"follow_up", ROLE_SELF, 0.9, "review.follow_up.self", "0.9"},
        {"follow_up", ROLE_MANAGER, 0.75, "review.follow_up.manager", "0.75"},
        {"execution", ROLE_INDIRECT_MANAGER, 1.0, "review.execution.indirect_manager", "1"},
        {"a\"b\\c", ROLE_SELF, 0, "review.a\"b\\c.self", "0"},
        {"tab\there\n\x01", ROLE_SELF, 0.5, "review.tab\there\n\x01.self", "0.5"},
        {"\xe8\xb7\x9f\xe8\xbf\x9b", ROLE_MANAGER, 0.8, "review.\xe8\xb7\x9f\xe8\xbf\x9b.manager",
         "0.8"},
        /* cut mid-character, stray bytes: U+FFFD, never invalid JSON */
        {"x\xe8\xb7", ROLE_SELF, 0.1, "review.x\xef\xbf\xbd\xef\xbf\xbd.self", "0.1"},
        {"\xff\xc0\xafz", ROLE_SELF, 0.2, "review.\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbdz.self",
         "0.2"},
        {"nan", ROLE_SELF, NAN, "review.nan.self", NULL},
    };
    size_t n = sizeof(cases) / sizeof(cases[0]);
    struct kpi_figures f = {.wait_p90_ms = -1, .target_cents = -1, .reviews_n = n};
    char buf[8192];
    yajl_val got;

    for (size_t i = 0; i < n; i++) {
        snprintf(f.reviews[i].item, sizeof(f.reviews[i].item), "%s", cases[i].item);
        f.reviews[i].role = cases[i].role;
        f.reviews[i].value = cases[i].value;
    }
    assert_true(kpi_metrics_json(&f, buf, sizeof(buf)) > 0);
    got = parse_json(buf);
    assert_int_equal(got->u.object.len, KPI_COUNT_ALL - 1 + n);
    for (size_t i = 0; i < n; i++) {
        size_t k = KPI_COUNT_ALL - 1 + i;

        assert_string_equal(got->u.object.keys[k], cases[i].key);
        if (!cases[i].value_text)
            assert_true(YAJL_IS_NULL(got->u.object.values[k]));
        else
            assert_string_equal(YAJL_GET_NUMBER(got->u.object.values[k]), cases[i].value_text);
    }
    yajl_tree_free(got);

    /* An item filling all 64 bytes (no NUL) is read to its end, not beyond. */
    char want[128];
    memset(f.reviews[0].item, 'i', sizeof(f.reviews[0].item));
    f.reviews_n = 1;
    snprintf(want, sizeof(want), ", \"review.%.64s.self\": 0.9}",
             "iiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiii");
    assert_true(kpi_metrics_json(&f, buf, sizeof(buf)) > 0);
    assert_non_null(strstr(buf, want));
    assert_string_equal(buf + strlen(buf) - strlen(want), want);
}

/* reviews_n beyond KPI_REVIEW_MAX writes the KPI_REVIEW_MAX stored reviews only. */
static void test_json_reviews_clamped(void **state)
{
    struct kpi_figures f = {.wait_p90_ms = -1, .target_cents = -1, .reviews_n = 1000};
    char buf[16384];
    yajl_val got;

    for (size_t i = 0; i < KPI_REVIEW_MAX; i++) {
        snprintf(f.reviews[i].item, sizeof(f.reviews[i].item), "item%zu", i);
        f.reviews[i].role = ROLE_SELF;
        f.reviews[i].value = 0.5;
    }
    assert_true(kpi_metrics_json(&f, buf, sizeof(buf)) > 0);
    got = parse_json(buf);
    assert_int_equal(got->u.object.len, KPI_COUNT_ALL - 1 + KPI_REVIEW_MAX);
    assert_non_null(object_get(got, "review.item31.self"));
    yajl_tree_free(got);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_example_values),
        cmocka_unit_test(test_example_json),
        cmocka_unit_test(test_example_json_text),
        cmocka_unit_test(test_json_key_order),
        cmocka_unit_test(test_zero_denominators),
        cmocka_unit_test(test_uncapped),
        cmocka_unit_test(test_aov_rounding),
        cmocka_unit_test(test_round),
        cmocka_unit_test(test_format_double),
        cmocka_unit_test(test_format_cents),
        cmocka_unit_test(test_large_cents),
        cmocka_unit_test(test_json_buffer_too_small),
        cmocka_unit_test(test_json_reviews),
        cmocka_unit_test(test_json_reviews_clamped),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
