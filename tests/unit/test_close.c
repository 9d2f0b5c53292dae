/* test_close — which periods of a rule file close for a given close watermark. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "rules/close.h"

#define MIN_MS (60 * 1000LL)
#define DAY_MS (24 * 60 * MIN_MS)

static const char *const labels[] = {"2026-07",    "2026-07-31", "not-a-label", "2026-08",
                                     "2026-08-01", "2026-W31",   "2026-09",     "2026-09-01"};
#define NLABELS (sizeof(labels) / sizeof(labels[0]))

/* Epoch ms of local midnight (Asia/Shanghai, +08:00) of y-m-d, independently of period.c. */
static int64_t shanghai_midnight(int y, int m, int d)
{
    /* days since 1970-01-01 (proleptic Gregorian), Howard Hinnant's civil algorithm */
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    int64_t days = era * 146097 + doe - 719468;
    return days * DAY_MS - 8 * 60 * MIN_MS;
}

struct close_case {
    const char *name;
    enum period_kind kind;
    int64_t closed_end;
    int64_t wm;
    int64_t lateness;
    const char *want[4];
};

static void test_close_table(void **state)
{
    (void)state;
    char err[128];
    assert_int_equal(period_tz_set("Asia/Shanghai", err, sizeof(err)), 0);
    const int64_t aug1 = shanghai_midnight(2026, 8, 1), sep1 = shanghai_midnight(2026, 9, 1);
    const int64_t oct1 = shanghai_midnight(2026, 10, 1);
    const struct close_case cases[] = {
        {.name = "before July end + lateness",
         .kind = PERIOD_MONTH,
         .closed_end = INT64_MIN,
         .wm = aug1 + 10 * MIN_MS - 1,
         .lateness = 10 * MIN_MS,
         .want = {NULL}},
        {.name = "exactly July end + lateness",
         .kind = PERIOD_MONTH,
         .closed_end = INT64_MIN,
         .wm = aug1 + 10 * MIN_MS,
         .lateness = 10 * MIN_MS,
         .want = {"2026-07", NULL}},
        {.name = "two months at once, in order",
         .kind = PERIOD_MONTH,
         .closed_end = INT64_MIN,
         .wm = sep1 + 10 * MIN_MS,
         .lateness = 10 * MIN_MS,
         .want = {"2026-07", "2026-08", NULL}},
        {.name = "July already closed",
         .kind = PERIOD_MONTH,
         .closed_end = aug1,
         .wm = sep1 + 10 * MIN_MS,
         .lateness = 10 * MIN_MS,
         .want = {"2026-08", NULL}},
        {.name = "all closed",
         .kind = PERIOD_MONTH,
         .closed_end = oct1,
         .wm = oct1 + DAY_MS,
         .lateness = 0,
         .want = {NULL}},
        {.name = "plan 5: reviews until the 10th",
         .kind = PERIOD_MONTH,
         .closed_end = aug1,
         .wm = sep1 + 9 * DAY_MS,
         .lateness = 10 * DAY_MS,
         .want = {NULL}},
        {.name = "plan 5: on the 11th",
         .kind = PERIOD_MONTH,
         .closed_end = aug1,
         .wm = sep1 + 10 * DAY_MS,
         .lateness = 10 * DAY_MS,
         .want = {"2026-08", NULL}},
        {.name = "days: only the day kind",
         .kind = PERIOD_DAY,
         .closed_end = INT64_MIN,
         .wm = aug1 + DAY_MS + 10 * MIN_MS,
         .lateness = 10 * MIN_MS,
         .want = {"2026-07-31", "2026-08-01", NULL}},
        {.name = "weeks: 2026-W31 ends Monday 3 August",
         .kind = PERIOD_WEEK,
         .closed_end = INT64_MIN,
         .wm = aug1 + 2 * DAY_MS + 10 * MIN_MS,
         .lateness = 10 * MIN_MS,
         .want = {"2026-W31", NULL}},
    };
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        struct period out[NLABELS];
        size_t n = close_due(cases[c].kind, labels, NLABELS, cases[c].closed_end, cases[c].wm,
                             cases[c].lateness, out);
        size_t want = 0;
        while (cases[c].want[want])
            want++;
        if (n != want)
            fail_msg("%s: %zu periods due, want %zu", cases[c].name, n, want);
        for (size_t i = 0; i < n; i++)
            if (strcmp(out[i].label, cases[c].want[i]) != 0)
                fail_msg("%s: period %zu is %s, want %s", cases[c].name, i, out[i].label,
                         cases[c].want[i]);
    }
}

static void test_close_stops_at_first_open(void **state)
{
    (void)state;
    char err[128];
    assert_int_equal(period_tz_set("Asia/Shanghai", err, sizeof(err)), 0);
    /* a later period's label before an earlier one cannot close it out of order */
    const char *const unordered[] = {"2026-09", "2026-07"};
    struct period out[2];
    size_t n = close_due(PERIOD_MONTH, unordered, 2, INT64_MIN,
                         shanghai_midnight(2026, 8, 1) + 10 * MIN_MS, 10 * MIN_MS, out);
    assert_int_equal(n, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_close_table),
        cmocka_unit_test(test_close_stops_at_first_open),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
