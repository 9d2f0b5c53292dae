/* Unit tests for daemon/metrics: the exact Prometheus 0.0.4 text of a registry with
 * counters, gauges and histograms (label values with backslashes, quotes, newlines, UTF-8
 * and invalid bytes; HELP escaping), histogram bucket edges, value formatting, series that
 * come and go (mark/sweep), and rendering from another thread while the registry changes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "daemon/metrics.h"

#define LABELS(...) ((const char *const[]){__VA_ARGS__, NULL})

static char *render(struct metrics *m)
{
    struct buf b;
    buf_init(&b);
    metrics_render(m, &b);
    return b.data ? b.data : xstrdup("");
}

static void test_exposition_text(void **state)
{
    (void)state;
    struct metrics *m = metrics_new();
    struct metrics_family *ev =
        metrics_register(m, METRICS_COUNTER, "csm_events_total", "Events by \"topic\"\\type\nok",
                         LABELS("topic", "agent"), METRICS_SCALE_SECONDS);
    struct metrics_family *up =
        metrics_register(m, METRICS_GAUGE, "csm_up", "Up", NULL, METRICS_SCALE_SECONDS);
    struct metrics_family *empty = metrics_register(m, METRICS_GAUGE, "csm_nothing", "No series",
                                                    LABELS("x"), METRICS_SCALE_SECONDS);
    struct metrics_family *lat = metrics_register(m, METRICS_HISTOGRAM, "csm_rtt_seconds",
                                                  "Round trips", NULL, METRICS_SCALE_SECONDS);
    struct metrics_family *sz = metrics_register(m, METRICS_HISTOGRAM, "csm_batch", "Sizes",
                                                 LABELS("mode"), METRICS_SCALE_COUNT);
    (void)empty;
    metrics_lock(m);
    metrics_set(ev, LABELS("cs.chat", "a\\b\"c\nd"), 3);
    metrics_add(ev, LABELS("cs.chat", "a\\b\"c\nd"), 2);
    metrics_add(ev, LABELS("cs.chat", "客服 {x}:1"), 1);
    metrics_add(ev, LABELS("cs.chat", "bad\xff\xc3("), 1e15);
    metrics_set(up, NULL, 0.25);
    metrics_observe(lat, NULL, 0.0001); /* on a bound: that bucket (le is inclusive) */
    metrics_observe(lat, NULL, 0.003);
    metrics_observe(lat, NULL, 11);
    struct metrics_hist h = {.scale = METRICS_SCALE_COUNT};
    metrics_hist_observe(&h, 1);
    metrics_hist_observe(&h, 7);
    metrics_hist_observe(&h, 200000);
    metrics_hist_observe(&h, NAN); /* ignored */
    metrics_hist_set(sz, LABELS("close"), &h);
    metrics_unlock(m);
    char *got = render(m);
    const char *want = "# HELP csm_events_total Events by \"topic\"\\\\type\\nok\n"
                       "# TYPE csm_events_total counter\n"
                       "csm_events_total{topic=\"cs.chat\",agent=\"a\\\\b\\\"c\\nd\"} 5\n"
                       "csm_events_total{topic=\"cs.chat\",agent=\"客服 {x}:1\"} 1\n"
                       "csm_events_total{topic=\"cs.chat\",agent=\"bad\xef\xbf\xbd\xef\xbf\xbd(\"} "
                       "1000000000000000\n"
                       "# HELP csm_up Up\n"
                       "# TYPE csm_up gauge\n"
                       "csm_up 0.25\n"
                       "# HELP csm_rtt_seconds Round trips\n"
                       "# TYPE csm_rtt_seconds histogram\n"
                       "csm_rtt_seconds_bucket{le=\"0.0001\"} 1\n"
                       "csm_rtt_seconds_bucket{le=\"0.00025\"} 1\n"
                       "csm_rtt_seconds_bucket{le=\"0.0005\"} 1\n"
                       "csm_rtt_seconds_bucket{le=\"0.001\"} 1\n"
                       "csm_rtt_seconds_bucket{le=\"0.0025\"} 1\n"
                       "csm_rtt_seconds_bucket{le=\"0.005\"} 2\n"
                       "csm_rtt_seconds_bucket{le=\"0.01\"} 2\n"
                       "csm_rtt_seconds_bucket{le=\"0.025\"} 2\n"
                       "csm_rtt_seconds_bucket{le=\"0.05\"} 2\n"
                       "csm_rtt_seconds_bucket{le=\"0.1\"} 2\n"
                       "csm_rtt_seconds_bucket{le=\"0.25\"} 2\n"
                       "csm_rtt_seconds_bucket{le=\"0.5\"} 2\n"
                       "csm_rtt_seconds_bucket{le=\"1\"} 2\n"
                       "csm_rtt_seconds_bucket{le=\"2.5\"} 2\n"
                       "csm_rtt_seconds_bucket{le=\"5\"} 2\n"
                       "csm_rtt_seconds_bucket{le=\"10\"} 2\n"
                       "csm_rtt_seconds_bucket{le=\"+Inf\"} 3\n"
                       "csm_rtt_seconds_sum 11.0031\n"
                       "csm_rtt_seconds_count 3\n"
                       "# HELP csm_batch Sizes\n"
                       "# TYPE csm_batch histogram\n"
                       "csm_batch_bucket{mode=\"close\",le=\"1\"} 1\n"
                       "csm_batch_bucket{mode=\"close\",le=\"2\"} 1\n"
                       "csm_batch_bucket{mode=\"close\",le=\"5\"} 1\n"
                       "csm_batch_bucket{mode=\"close\",le=\"10\"} 2\n"
                       "csm_batch_bucket{mode=\"close\",le=\"20\"} 2\n"
                       "csm_batch_bucket{mode=\"close\",le=\"50\"} 2\n"
                       "csm_batch_bucket{mode=\"close\",le=\"100\"} 2\n"
                       "csm_batch_bucket{mode=\"close\",le=\"200\"} 2\n"
                       "csm_batch_bucket{mode=\"close\",le=\"500\"} 2\n"
                       "csm_batch_bucket{mode=\"close\",le=\"1000\"} 2\n"
                       "csm_batch_bucket{mode=\"close\",le=\"2000\"} 2\n"
                       "csm_batch_bucket{mode=\"close\",le=\"5000\"} 2\n"
                       "csm_batch_bucket{mode=\"close\",le=\"10000\"} 2\n"
                       "csm_batch_bucket{mode=\"close\",le=\"20000\"} 2\n"
                       "csm_batch_bucket{mode=\"close\",le=\"50000\"} 2\n"
                       "csm_batch_bucket{mode=\"close\",le=\"100000\"} 2\n"
                       "csm_batch_bucket{mode=\"close\",le=\"+Inf\"} 3\n"
                       "csm_batch_sum{mode=\"close\"} 200008\n"
                       "csm_batch_count{mode=\"close\"} 3\n";
    assert_string_equal(got, want);
    free(got);
    metrics_destroy(m);
}

static void test_format_value(void **state)
{
    (void)state;
    static const struct {
        double v;
        const char *text;
    } cases[] = {
        {.v = 0, .text = "0"},
        {.v = -0.0, .text = "0"},
        {.v = 42, .text = "42"},
        {.v = -7, .text = "-7"},
        {.v = 0.1, .text = "0.1"},
        {.v = 1795779416.727, .text = "1795779416.727"},
        {.v = 1.0 / 3, .text = "0.3333333333333333"},
        {.v = 1e-7, .text = "1e-07"},
        {.v = 9007199254740993.0, .text = "9007199254740992"},
        {.v = 1e300, .text = "1e+300"},
        {.v = INFINITY, .text = "+Inf"},
        {.v = -INFINITY, .text = "-Inf"},
        {.v = NAN, .text = "NaN"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[40];
        metrics_format_value(cases[i].v, out, sizeof(out));
        assert_string_equal(out, cases[i].text);
        if (isfinite(cases[i].v))
            assert_true(strtod(out, NULL) == cases[i].v ||
                        cases[i].v == 9007199254740993.0); /* not a double: rounds */
    }
    assert_true(metrics_scale_bound(METRICS_SCALE_SECONDS, 0) == 0.0001);
    assert_true(metrics_scale_bound(METRICS_SCALE_COUNT, METRICS_HIST_BOUNDS - 1) == 100000);
}

static void test_mark_sweep(void **state)
{
    (void)state;
    struct metrics *m = metrics_new();
    struct metrics_family *lag = metrics_register(m, METRICS_GAUGE, "lag", "Lag",
                                                  LABELS("partition"), METRICS_SCALE_SECONDS);
    metrics_lock(m);
    metrics_set(lag, LABELS("0"), 1);
    metrics_set(lag, LABELS("1"), 2);
    metrics_set(lag, LABELS("2"), 3);
    metrics_mark(lag);
    metrics_set(lag, LABELS("2"), 4);
    metrics_set(lag, LABELS("0"), 5);
    metrics_sweep(lag); /* partition 1 was revoked */
    metrics_set(lag, LABELS("1"), 6);
    metrics_unlock(m);
    char *got = render(m);
    assert_string_equal(got, "# HELP lag Lag\n# TYPE lag gauge\n"
                             "lag{partition=\"0\"} 5\nlag{partition=\"2\"} 4\n"
                             "lag{partition=\"1\"} 6\n");
    free(got);
    metrics_lock(m);
    metrics_mark(lag);
    metrics_sweep(lag);
    metrics_unlock(m);
    got = render(m);
    assert_string_equal(got, ""); /* a labelled family without series renders nothing */
    free(got);
    metrics_destroy(m);
    metrics_destroy(NULL);
}

/* Label values that only differ in where a separator falls stay apart. */
static void test_series_identity(void **state)
{
    (void)state;
    struct metrics *m = metrics_new();
    struct metrics_family *f = metrics_register(m, METRICS_COUNTER, "c_total", "", LABELS("a", "b"),
                                                METRICS_SCALE_SECONDS);
    metrics_lock(m);
    metrics_add(f, LABELS("1:x", ""), 1);
    metrics_add(f, LABELS("1", ":x"), 1);
    metrics_add(f, LABELS("", "1:x"), 1);
    metrics_add(f, LABELS("1:x", ""), 1);
    metrics_unlock(m);
    char *got = render(m);
    assert_string_equal(got, "# HELP c_total \n# TYPE c_total counter\n"
                             "c_total{a=\"1:x\",b=\"\"} 2\n"
                             "c_total{a=\"1\",b=\":x\"} 1\n"
                             "c_total{a=\"\",b=\"1:x\"} 1\n");
    free(got);
    metrics_destroy(m);
}

struct race {
    struct metrics *m;
    int renders;
};

static void *race_render(void *arg)
{
    struct race *r = arg;
    for (int i = 0; i < r->renders; i++) {
        char *text = render(r->m);
        /* whatever the moment, a batch is seen whole: both counters move together */
        const char *a = strstr(text, "\na_total ");
        const char *b = strstr(text, "\nb_total ");
        assert_non_null(a);
        assert_non_null(b);
        assert_int_equal(strtol(a + 9, NULL, 10), strtol(b + 9, NULL, 10));
        free(text);
    }
    return NULL;
}

static void test_render_while_updating(void **state)
{
    (void)state;
    struct metrics *m = metrics_new();
    struct metrics_family *a =
        metrics_register(m, METRICS_COUNTER, "a_total", "A", NULL, METRICS_SCALE_SECONDS);
    struct metrics_family *b =
        metrics_register(m, METRICS_COUNTER, "b_total", "B", NULL, METRICS_SCALE_SECONDS);
    struct metrics_family *p =
        metrics_register(m, METRICS_GAUGE, "p", "P", LABELS("partition"), METRICS_SCALE_SECONDS);
    struct race r = {.m = m, .renders = 300};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, race_render, &r), 0);
    for (int i = 1; i <= 3000; i++) {
        char part[16];
        snprintf(part, sizeof(part), "%d", i % 7);
        metrics_lock(m);
        metrics_set(a, NULL, i);
        metrics_mark(p);
        metrics_set(p, LABELS(part), i);
        metrics_sweep(p);
        metrics_set(b, NULL, i);
        metrics_unlock(m);
    }
    pthread_join(t, NULL);
    metrics_destroy(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exposition_text),
        cmocka_unit_test(test_format_value),
        cmocka_unit_test(test_mark_sweep),
        cmocka_unit_test(test_series_identity),
        cmocka_unit_test(test_render_while_updating),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
