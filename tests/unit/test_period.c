/* test_period — calendar periods, labels and zone handling (aggregator/period.c).
 * Every expected epoch value was computed independently with GNU date
 * (TZ=<zone> date -d '<local time>' +%s) or zdump, then hard-coded here. */
#include "aggregator/period.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define S(x) ((int64_t)(x)*1000) /* epoch seconds → ms */

static void use_zone(const char *zone)
{
    char err[128] = "";
    if (period_tz_set(zone, err, sizeof(err)) != 0)
        fail_msg("period_tz_set(%s): %s", zone, err);
}

static void expect_period(const char *what, const struct period *got, enum period_kind kind,
                          int64_t start_ms, int64_t end_ms, int year, int index, const char *label)
{
    if (got->kind != kind || got->start_ms != start_ms || got->end_ms != end_ms ||
        got->year != year || got->index != index || strcmp(got->label, label) != 0)
        fail_msg("%s: got %s %s [%lld, %lld) year %d index %d; want %s %s [%lld, %lld) year %d "
                 "index %d",
                 what, period_kind_name(got->kind), got->label, (long long)got->start_ms,
                 (long long)got->end_ms, got->year, got->index, period_kind_name(kind), label,
                 (long long)start_ms, (long long)end_ms, year, index);
}

static void test_kind_names(void **state)
{
    static const char *const names[PERIOD_KIND_COUNT] = {
        [PERIOD_DAY] = "day",         [PERIOD_WEEK] = "week", [PERIOD_MONTH] = "month",
        [PERIOD_QUARTER] = "quarter", [PERIOD_HALF] = "half", [PERIOD_YEAR] = "year",
    };
    for (int k = 0; k < PERIOD_KIND_COUNT; k++) {
        enum period_kind got = PERIOD_KIND_COUNT;
        assert_string_equal(period_kind_name((enum period_kind)k), names[k]);
        assert_int_equal(period_kind_parse(names[k], &got), 0);
        assert_int_equal(got, k);
    }
    static const char *const bad[] = {"", "Day", "days", "weekly", "month ", "h1"};
    for (size_t i = 0; i < N(bad); i++) {
        enum period_kind got = PERIOD_KIND_COUNT;
        assert_int_equal(period_kind_parse(bad[i], &got), -1);
        assert_int_equal(got, PERIOD_KIND_COUNT);
    }
    assert_null(period_kind_name(PERIOD_KIND_COUNT));
    assert_null(period_kind_name((enum period_kind) - 1));
}

static void test_tz_set_errors(void **state)
{
    static const struct {
        const char *zone;
        const char *err;
    } cases[] = {
        {.zone = "Mars/Olympus", .err = "unknown time zone 'Mars/Olympus'"},
        {.zone = "", .err = "unknown time zone ''"},
        {.zone = "/usr/share/zoneinfo/UTC", .err = "unknown time zone '/usr/share/zoneinfo/UTC'"},
        {.zone = "../zoneinfo/UTC", .err = "unknown time zone '../zoneinfo/UTC'"},
        {.zone = "Asia/../Asia/Shanghai", .err = "unknown time zone 'Asia/../Asia/Shanghai'"},
        {.zone = "zone.tab", .err = "unknown time zone 'zone.tab'"}, /* exists, not TZif */
        {.zone = "America", .err = "unknown time zone 'America'"},   /* a directory */
        {.zone = "asia/shanghai", .err = "unknown time zone 'asia/shanghai'"},
        {.zone = "UTC0", .err = "unknown time zone 'UTC0'"}, /* POSIX TZ, not a zone file */
        {.zone = NULL, .err = "unknown time zone ''"},
    };
    use_zone("Asia/Shanghai");
    for (size_t i = 0; i < N(cases); i++) {
        char err[128] = "";
        assert_int_equal(period_tz_set(cases[i].zone, err, sizeof(err)), -1);
        assert_string_equal(err, cases[i].err);
    }
    /* A failed call leaves the zone as it was. */
    char buf[32];
    period_format_rfc3339(S(1785513600), buf, sizeof(buf));
    assert_string_equal(buf, "2026-08-01T00:00:00+08:00");

    /* Truncated error buffer, and no buffer at all. */
    char small[10];
    assert_int_equal(period_tz_set("Mars/Olympus", small, sizeof(small)), -1);
    assert_string_equal(small, "unknown t");
    assert_int_equal(period_tz_set("Mars/Olympus", NULL, 0), -1);

    /* $TZDIR replaces the default directory, as it does for glibc. */
    char err[128] = "";
    assert_int_equal(setenv("TZDIR", "/nonexistent-tzdir", 1), 0);
    assert_int_equal(period_tz_set("UTC", err, sizeof(err)), -1);
    assert_string_equal(err, "unknown time zone 'UTC'");
    assert_int_equal(setenv("TZDIR", "/usr/share/zoneinfo/Asia", 1), 0);
    assert_int_equal(period_tz_set("Kolkata", err, sizeof(err)), 0);
    period_format_rfc3339(S(1785522600), buf, sizeof(buf));
    assert_string_equal(buf, "2026-08-01T00:00:00+05:30");
    assert_int_equal(unsetenv("TZDIR"), 0);
    use_zone("UTC");
    period_format_rfc3339(0, buf, sizeof(buf));
    assert_string_equal(buf, "1970-01-01T00:00:00+00:00");
}

struct of_case {
    const char *zone;
    enum period_kind kind;
    int64_t ts_ms;
    int64_t start_ms, end_ms;
    int year, index;
    const char *label;
};

static const struct of_case of_cases[] = {
    /* Month ends: the last millisecond of January, then February. */
    {.zone = "UTC",
     .kind = PERIOD_DAY,
     .ts_ms = S(1769903999) + 999,
     .start_ms = S(1769817600),
     .end_ms = S(1769904000),
     .year = 2026,
     .index = 31,
     .label = "2026-01-31"},
    {.zone = "UTC",
     .kind = PERIOD_MONTH,
     .ts_ms = S(1769903999) + 999,
     .start_ms = S(1767225600),
     .end_ms = S(1769904000),
     .year = 2026,
     .index = 1,
     .label = "2026-01"},
    {.zone = "UTC",
     .kind = PERIOD_MONTH,
     .ts_ms = S(1769904000),
     .start_ms = S(1769904000),
     .end_ms = S(1772323200),
     .year = 2026,
     .index = 2,
     .label = "2026-02"},
    /* Leap days: 2024 and 2028 have 29 February, 2100 does not. */
    {.zone = "UTC",
     .kind = PERIOD_DAY,
     .ts_ms = S(1709164800 + 43200),
     .start_ms = S(1709164800),
     .end_ms = S(1709251200),
     .year = 2024,
     .index = 29,
     .label = "2024-02-29"},
    {.zone = "UTC",
     .kind = PERIOD_MONTH,
     .ts_ms = S(1709164800),
     .start_ms = S(1706745600),
     .end_ms = S(1709251200),
     .year = 2024,
     .index = 2,
     .label = "2024-02"},
    {.zone = "UTC",
     .kind = PERIOD_DAY,
     .ts_ms = S(1835395200),
     .start_ms = S(1835395200),
     .end_ms = S(1835481600),
     .year = 2028,
     .index = 29,
     .label = "2028-02-29"},
    {.zone = "UTC",
     .kind = PERIOD_MONTH,
     .ts_ms = S(4107499200),
     .start_ms = S(4105123200),
     .end_ms = S(4107542400),
     .year = 2100,
     .index = 2,
     .label = "2100-02"},
    {.zone = "UTC",
     .kind = PERIOD_DAY,
     .ts_ms = S(4107542400),
     .start_ms = S(4107542400),
     .end_ms = S(4107542400 + 86400),
     .year = 2100,
     .index = 1,
     .label = "2100-03-01"},
    /* ISO weeks across a year end. */
    {.zone = "UTC",
     .kind = PERIOD_WEEK,
     .ts_ms = S(1609416000),
     .start_ms = S(1609113600),
     .end_ms = S(1609718400),
     .year = 2020,
     .index = 53,
     .label = "2020-W53"},
    {.zone = "UTC",
     .kind = PERIOD_WEEK,
     .ts_ms = S(1609718399),
     .start_ms = S(1609113600),
     .end_ms = S(1609718400),
     .year = 2020,
     .index = 53,
     .label = "2020-W53"},
    {.zone = "UTC",
     .kind = PERIOD_WEEK,
     .ts_ms = S(1609718400),
     .start_ms = S(1609718400),
     .end_ms = S(1610323200),
     .year = 2021,
     .index = 1,
     .label = "2021-W01"},
    {.zone = "UTC",
     .kind = PERIOD_WEEK,
     .ts_ms = S(1735516800),
     .start_ms = S(1735516800),
     .end_ms = S(1736121600),
     .year = 2025,
     .index = 1,
     .label = "2025-W01"},
    {.zone = "UTC",
     .kind = PERIOD_YEAR,
     .ts_ms = S(1735516800),
     .start_ms = S(1704067200),
     .end_ms = S(1735689600),
     .year = 2024,
     .index = 1,
     .label = "2024"},
    {.zone = "Asia/Shanghai",
     .kind = PERIOD_WEEK,
     .ts_ms = S(1785686400),
     .start_ms = S(1785686400),
     .end_ms = S(1786291200),
     .year = 2026,
     .index = 32,
     .label = "2026-W32"},
    {.zone = "Asia/Shanghai",
     .kind = PERIOD_DAY,
     .ts_ms = S(1785686400),
     .start_ms = S(1785686400),
     .end_ms = S(1785772800),
     .year = 2026,
     .index = 3,
     .label = "2026-08-03"},
    /* The same instant, 2026-08-31T16:30:00Z, is September in Shanghai, August in UTC. */
    {.zone = "Asia/Shanghai",
     .kind = PERIOD_MONTH,
     .ts_ms = S(1788193800),
     .start_ms = S(1788192000),
     .end_ms = S(1790784000),
     .year = 2026,
     .index = 9,
     .label = "2026-09"},
    {.zone = "UTC",
     .kind = PERIOD_MONTH,
     .ts_ms = S(1788193800),
     .start_ms = S(1785542400),
     .end_ms = S(1788220800),
     .year = 2026,
     .index = 8,
     .label = "2026-08"},
    {.zone = "Asia/Shanghai",
     .kind = PERIOD_MONTH,
     .ts_ms = S(1788191999) + 999,
     .start_ms = S(1785513600),
     .end_ms = S(1788192000),
     .year = 2026,
     .index = 8,
     .label = "2026-08"},
    /* Quarters, halves, years at their edges (Shanghai). */
    {.zone = "Asia/Shanghai",
     .kind = PERIOD_QUARTER,
     .ts_ms = S(1774972799) + 999,
     .start_ms = S(1767196800),
     .end_ms = S(1774972800),
     .year = 2026,
     .index = 1,
     .label = "2026-Q1"},
    {.zone = "Asia/Shanghai",
     .kind = PERIOD_QUARTER,
     .ts_ms = S(1774972800),
     .start_ms = S(1774972800),
     .end_ms = S(1782835200),
     .year = 2026,
     .index = 2,
     .label = "2026-Q2"},
    {.zone = "Asia/Shanghai",
     .kind = PERIOD_QUARTER,
     .ts_ms = S(1790783999),
     .start_ms = S(1782835200),
     .end_ms = S(1790784000),
     .year = 2026,
     .index = 3,
     .label = "2026-Q3"},
    {.zone = "Asia/Shanghai",
     .kind = PERIOD_QUARTER,
     .ts_ms = S(1790784000),
     .start_ms = S(1790784000),
     .end_ms = S(1798732800),
     .year = 2026,
     .index = 4,
     .label = "2026-Q4"},
    {.zone = "Asia/Shanghai",
     .kind = PERIOD_HALF,
     .ts_ms = S(1782835199) + 999,
     .start_ms = S(1767196800),
     .end_ms = S(1782835200),
     .year = 2026,
     .index = 1,
     .label = "2026-H1"},
    {.zone = "Asia/Shanghai",
     .kind = PERIOD_HALF,
     .ts_ms = S(1782835200),
     .start_ms = S(1782835200),
     .end_ms = S(1798732800),
     .year = 2026,
     .index = 2,
     .label = "2026-H2"},
    {.zone = "Asia/Shanghai",
     .kind = PERIOD_YEAR,
     .ts_ms = S(1798732799) + 999,
     .start_ms = S(1767196800),
     .end_ms = S(1798732800),
     .year = 2026,
     .index = 1,
     .label = "2026"},
    {.zone = "Asia/Shanghai",
     .kind = PERIOD_YEAR,
     .ts_ms = S(1798732800),
     .start_ms = S(1798732800),
     .end_ms = S(1830268800),
     .year = 2027,
     .index = 1,
     .label = "2027"},
    {.zone = "Asia/Shanghai",
     .kind = PERIOD_WEEK,
     .ts_ms = S(1798732800),
     .start_ms = S(1798387200),
     .end_ms = S(1798992000),
     .year = 2026,
     .index = 53,
     .label = "2026-W53"},
    /* DST in New York: 8 March 2026 lasts 23 h, 1 November 2026 lasts 25 h. */
    {.zone = "America/New_York",
     .kind = PERIOD_DAY,
     .ts_ms = S(1772953200),
     .start_ms = S(1772946000),
     .end_ms = S(1773028800),
     .year = 2026,
     .index = 8,
     .label = "2026-03-08"},
    {.zone = "America/New_York",
     .kind = PERIOD_DAY,
     .ts_ms = S(1793514600),
     .start_ms = S(1793505600),
     .end_ms = S(1793595600),
     .year = 2026,
     .index = 1,
     .label = "2026-11-01"},
    {.zone = "America/New_York",
     .kind = PERIOD_WEEK,
     .ts_ms = S(1772953199),
     .start_ms = S(1772427600),
     .end_ms = S(1773028800),
     .year = 2026,
     .index = 10,
     .label = "2026-W10"},
    /* Havana skips midnight (00:00 → 01:00) on 8 March 2026 and repeats it on
     * 1 November 2026: days start at the first instant that is on them. */
    {.zone = "America/Havana",
     .kind = PERIOD_DAY,
     .ts_ms = S(1772960000),
     .start_ms = S(1772946000),
     .end_ms = S(1773028800),
     .year = 2026,
     .index = 8,
     .label = "2026-03-08"},
    {.zone = "America/Havana",
     .kind = PERIOD_DAY,
     .ts_ms = S(1772945999),
     .start_ms = S(1772859600),
     .end_ms = S(1772946000),
     .year = 2026,
     .index = 7,
     .label = "2026-03-07"},
    {.zone = "America/Havana",
     .kind = PERIOD_DAY,
     .ts_ms = S(1793509200),
     .start_ms = S(1793505600),
     .end_ms = S(1793595600),
     .year = 2026,
     .index = 1,
     .label = "2026-11-01"},
    {.zone = "America/Havana",
     .kind = PERIOD_DAY,
     .ts_ms = S(1793505599),
     .start_ms = S(1793419200),
     .end_ms = S(1793505600),
     .year = 2026,
     .index = 31,
     .label = "2026-10-31"},
    {.zone = "America/Sao_Paulo",
     .kind = PERIOD_DAY,
     .ts_ms = S(1541300400),
     .start_ms = S(1541300400),
     .end_ms = S(1541383200),
     .year = 2018,
     .index = 4,
     .label = "2018-11-04"},
    {.zone = "America/Sao_Paulo",
     .kind = PERIOD_MONTH,
     .ts_ms = S(1541300400),
     .start_ms = S(1541041200),
     .end_ms = S(1543629600),
     .year = 2018,
     .index = 11,
     .label = "2018-11"},
    /* Samoa skipped 30 December 2011 altogether. */
    {.zone = "Pacific/Apia",
     .kind = PERIOD_DAY,
     .ts_ms = S(1325239199),
     .start_ms = S(1325152800),
     .end_ms = S(1325239200),
     .year = 2011,
     .index = 29,
     .label = "2011-12-29"},
    {.zone = "Pacific/Apia",
     .kind = PERIOD_DAY,
     .ts_ms = S(1325239200),
     .start_ms = S(1325239200),
     .end_ms = S(1325325600),
     .year = 2011,
     .index = 31,
     .label = "2011-12-31"},
    /* Before 1970: milliseconds floor towards minus infinity. */
    {.zone = "UTC",
     .kind = PERIOD_DAY,
     .ts_ms = -1,
     .start_ms = S(-86400),
     .end_ms = 0,
     .year = 1969,
     .index = 31,
     .label = "1969-12-31"},
    {.zone = "UTC",
     .kind = PERIOD_DAY,
     .ts_ms = -86400000,
     .start_ms = S(-86400),
     .end_ms = 0,
     .year = 1969,
     .index = 31,
     .label = "1969-12-31"},
    {.zone = "UTC",
     .kind = PERIOD_DAY,
     .ts_ms = 999,
     .start_ms = 0,
     .end_ms = S(86400),
     .year = 1970,
     .index = 1,
     .label = "1970-01-01"},
    {.zone = "UTC",
     .kind = PERIOD_MONTH,
     .ts_ms = -1500,
     .start_ms = S(-2678400),
     .end_ms = 0,
     .year = 1969,
     .index = 12,
     .label = "1969-12"},
    {.zone = "UTC",
     .kind = PERIOD_WEEK,
     .ts_ms = -1,
     .start_ms = S(-259200),
     .end_ms = S(345600),
     .year = 1970,
     .index = 1,
     .label = "1970-W01"},
    {.zone = "UTC",
     .kind = PERIOD_DAY,
     .ts_ms = S(-2203977600),
     .start_ms = S(-2203977600),
     .end_ms = S(-2203891200),
     .year = 1900,
     .index = 28,
     .label = "1900-02-28"},
    /* The ends of the supported range. */
    {.zone = "UTC",
     .kind = PERIOD_YEAR,
     .ts_ms = S(-62135596800),
     .start_ms = S(-62135596800),
     .end_ms = S(-62104060800),
     .year = 1,
     .index = 1,
     .label = "0001"},
    {.zone = "UTC",
     .kind = PERIOD_WEEK,
     .ts_ms = S(-62135596800),
     .start_ms = S(-62135596800),
     .end_ms = S(-62135596800 + 7 * 86400),
     .year = 1,
     .index = 1,
     .label = "0001-W01"},
    {.zone = "UTC",
     .kind = PERIOD_YEAR,
     .ts_ms = S(253402300799) + 999,
     .start_ms = S(253370764800),
     .end_ms = S(253402300800),
     .year = 9999,
     .index = 1,
     .label = "9999"},
    {.zone = "UTC",
     .kind = PERIOD_WEEK,
     .ts_ms = S(253402300799),
     .start_ms = S(253401868800),
     .end_ms = S(253401868800 + 7 * 86400),
     .year = 9999,
     .index = 52,
     .label = "9999-W52"},
};

static void test_period_of(void **state)
{
    for (size_t i = 0; i < N(of_cases); i++) {
        const struct of_case *c = &of_cases[i];
        struct period p, q;
        char what[96];
        snprintf(what, sizeof(what), "case %zu (%s %s)", i, c->zone, c->label);
        use_zone(c->zone);
        if (period_of(c->kind, c->ts_ms, &p) != 0)
            fail_msg("%s: period_of failed", what);
        expect_period(what, &p, c->kind, c->start_ms, c->end_ms, c->year, c->index, c->label);
        /* The label names the same period. */
        if (period_from_label(c->label, &q) != 0)
            fail_msg("%s: period_from_label failed", what);
        expect_period(what, &q, c->kind, c->start_ms, c->end_ms, c->year, c->index, c->label);
    }
}

static void test_period_of_out_of_range(void **state)
{
    static const struct {
        const char *zone;
        int64_t ts_ms;
    } cases[] = {
        {.zone = "UTC", .ts_ms = S(-62135596800) - 1},
        {.zone = "UTC", .ts_ms = S(253402300800)},
        {.zone = "UTC", .ts_ms = INT64_MIN},
        {.zone = "UTC", .ts_ms = INT64_MAX},
        /* 9999-12-31T20:00:00Z is already 10000-01-01 in Shanghai. */
        {.zone = "Asia/Shanghai", .ts_ms = S(253402300800 - 4 * 3600)},
        {.zone = "America/New_York", .ts_ms = INT64_MIN + 1},
    };
    for (size_t i = 0; i < N(cases); i++) {
        use_zone(cases[i].zone);
        for (int k = 0; k < PERIOD_KIND_COUNT; k++) {
            struct period p;
            if (period_of((enum period_kind)k, cases[i].ts_ms, &p) != -1)
                fail_msg("case %zu kind %d: accepted as %s", i, k, p.label);
        }
    }
    struct period p;
    use_zone("UTC");
    assert_int_equal(period_of(PERIOD_KIND_COUNT, 0, &p), -1);
}

static void test_labels(void **state)
{
    static const struct {
        const char *label;
        enum period_kind kind;
        int64_t start_ms, end_ms;
        int year, index;
    } cases[] = {
        {.label = "2026",
         .kind = PERIOD_YEAR,
         .start_ms = S(1767196800),
         .end_ms = S(1798732800),
         .year = 2026,
         .index = 1},
        {.label = "2026-H2",
         .kind = PERIOD_HALF,
         .start_ms = S(1782835200),
         .end_ms = S(1798732800),
         .year = 2026,
         .index = 2},
        {.label = "2026-Q3",
         .kind = PERIOD_QUARTER,
         .start_ms = S(1782835200),
         .end_ms = S(1790784000),
         .year = 2026,
         .index = 3},
        {.label = "2026-08",
         .kind = PERIOD_MONTH,
         .start_ms = S(1785513600),
         .end_ms = S(1788192000),
         .year = 2026,
         .index = 8},
        {.label = "2026-W32",
         .kind = PERIOD_WEEK,
         .start_ms = S(1785686400),
         .end_ms = S(1786291200),
         .year = 2026,
         .index = 32},
        {.label = "2026-W01",
         .kind = PERIOD_WEEK,
         .start_ms = S(1766937600),
         .end_ms = S(1766937600 + 7 * 86400),
         .year = 2026,
         .index = 1},
        {.label = "2026-W53",
         .kind = PERIOD_WEEK,
         .start_ms = S(1798387200),
         .end_ms = S(1798992000),
         .year = 2026,
         .index = 53},
        {.label = "2026-08-03",
         .kind = PERIOD_DAY,
         .start_ms = S(1785686400),
         .end_ms = S(1785772800),
         .year = 2026,
         .index = 3},
        {.label = "2024-02-29",
         .kind = PERIOD_DAY,
         .start_ms = S(1709164800 - 8 * 3600),
         .end_ms = S(1709251200 - 8 * 3600),
         .year = 2024,
         .index = 29},
        {.label = "2000-02-29",
         .kind = PERIOD_DAY,
         .start_ms = S(951782400 - 8 * 3600),
         .end_ms = S(951868800 - 8 * 3600),
         .year = 2000,
         .index = 29},
    };
    use_zone("Asia/Shanghai");
    for (size_t i = 0; i < N(cases); i++) {
        struct period p;
        if (period_from_label(cases[i].label, &p) != 0)
            fail_msg("%s: rejected", cases[i].label);
        expect_period(cases[i].label, &p, cases[i].kind, cases[i].start_ms, cases[i].end_ms,
                      cases[i].year, cases[i].index, cases[i].label);
    }

    static const char *const bad[] = {
        "",           "2026-8",     "2026-13",    "2026-00",    "2026-W54",   "2025-W53",
        "2027-W53",   "2026-W00",   "2026-W5",    "2026-w05",   "2026-02-30", "2025-02-29",
        "2100-02-29", "2026-04-31", "2026-00-10", "2026-01-00", "2026-01-32", "2026-Q5",
        "2026-Q0",    "2026-q3",    "2026-H3",    "2026-H0",    "2026-h1",    "2026 ",
        " 2026",      "2026-08 ",   "2026-08x",   "2026-Q3x",   "2026-W321",  "+2026",
        "-2026",      "2026-+8",    "2026--8",    "2026-08-3",  "2026-8-03",  "0000",
        "0000-01",    "0000-01-01", "10000",      "202",        "20a6",       "2026/08",
        "2026-M08",   "2026-H",     "2026-Q",     "2026-W",     "2026-",      "2026-08-03T00:00",
        "2026-１",    "２０２６",
    };
    for (size_t i = 0; i < N(bad); i++) {
        struct period p;
        if (period_from_label(bad[i], &p) != -1)
            fail_msg("'%s': accepted as %s", bad[i], p.label);
    }
    struct period p;
    assert_int_equal(period_from_label(NULL, &p), -1);
}

/* Every kind, for instants spread over 1900..2100 in several zones: the label parses
 * back to the same period, and the instant lies inside it. */
static void test_label_round_trip(void **state)
{
    static const char *const zones[] = {"Asia/Shanghai",  "UTC",          "America/New_York",
                                        "America/Havana", "Asia/Kolkata", "Pacific/Apia"};
    for (size_t z = 0; z < N(zones); z++) {
        use_zone(zones[z]);
        for (int64_t t = S(-2208988800); t < S(4102444800); t += S(86400 * 3 + 3607) + 17) {
            for (int k = 0; k < PERIOD_KIND_COUNT; k++) {
                struct period p, q;
                assert_int_equal(period_of((enum period_kind)k, t, &p), 0);
                if (t < p.start_ms || t >= p.end_ms)
                    fail_msg("%s %lld: outside %s", zones[z], (long long)t, p.label);
                assert_int_equal(period_from_label(p.label, &q), 0);
                expect_period(zones[z], &q, p.kind, p.start_ms, p.end_ms, p.year, p.index, p.label);
            }
        }
    }
}

static void test_prev_next(void **state)
{
    static const struct {
        const char *label, *prev, *next;
    } cases[] = {
        {.label = "2026-01-01", .prev = "2025-12-31", .next = "2026-01-02"},
        {.label = "2026-12-31", .prev = "2026-12-30", .next = "2027-01-01"},
        {.label = "2024-02-28", .prev = "2024-02-27", .next = "2024-02-29"},
        {.label = "2024-03-01", .prev = "2024-02-29", .next = "2024-03-02"},
        {.label = "2100-03-01", .prev = "2100-02-28", .next = "2100-03-02"},
        {.label = "2026-W01", .prev = "2025-W52", .next = "2026-W02"},
        {.label = "2026-W53", .prev = "2026-W52", .next = "2027-W01"},
        {.label = "2020-W53", .prev = "2020-W52", .next = "2021-W01"},
        {.label = "2021-W01", .prev = "2020-W53", .next = "2021-W02"},
        {.label = "2026-01", .prev = "2025-12", .next = "2026-02"},
        {.label = "2026-12", .prev = "2026-11", .next = "2027-01"},
        {.label = "2026-Q1", .prev = "2025-Q4", .next = "2026-Q2"},
        {.label = "2026-Q4", .prev = "2026-Q3", .next = "2027-Q1"},
        {.label = "2026-H1", .prev = "2025-H2", .next = "2026-H2"},
        {.label = "2026-H2", .prev = "2026-H1", .next = "2027-H1"},
        {.label = "2026", .prev = "2025", .next = "2027"},
        {.label = "0001-01-02", .prev = "0001-01-01", .next = "0001-01-03"},
        {.label = "9999-12-30", .prev = "9999-12-29", .next = "9999-12-31"},
    };
    static const char *const zones[] = {"Asia/Shanghai", "America/New_York"};
    for (size_t z = 0; z < N(zones); z++) {
        use_zone(zones[z]);
        for (size_t i = 0; i < N(cases); i++) {
            struct period p, prev, next;
            assert_int_equal(period_from_label(cases[i].label, &p), 0);
            assert_int_equal(period_prev(&p, &prev), 0);
            assert_int_equal(period_next(&p, &next), 0);
            assert_string_equal(prev.label, cases[i].prev);
            assert_string_equal(next.label, cases[i].next);
            assert_int_equal(prev.kind, p.kind);
            assert_int_equal(next.kind, p.kind);
            assert_int_equal(prev.end_ms, p.start_ms);
            assert_int_equal(next.start_ms, p.end_ms);
        }
    }

    /* Nothing before year 1 or after 9999. */
    static const char *const first[] = {"0001",    "0001-H1",  "0001-Q1",
                                        "0001-01", "0001-W01", "0001-01-01"};
    static const char *const last[] = {"9999",    "9999-H2",  "9999-Q4",
                                       "9999-12", "9999-W52", "9999-12-31"};
    use_zone("UTC");
    for (size_t i = 0; i < N(first); i++) {
        struct period p, q;
        assert_int_equal(period_from_label(first[i], &p), 0);
        assert_int_equal(period_prev(&p, &q), -1);
        assert_int_equal(period_next(&p, &q), 0);
        assert_int_equal(period_from_label(last[i], &p), 0);
        assert_int_equal(period_next(&p, &q), -1);
        assert_int_equal(period_prev(&p, &q), 0);
    }

    /* A period whose label does not match its kind is refused. */
    struct period p, q;
    assert_int_equal(period_from_label("2026-08", &p), 0);
    p.kind = PERIOD_QUARTER;
    assert_int_equal(period_prev(&p, &q), -1);
    assert_int_equal(period_next(&p, &q), -1);
    memset(&p, 0, sizeof(p));
    assert_int_equal(period_next(&p, &q), -1);

    /* Walking 2026 day by day in New York covers it without gaps: 365 days, 8760 h. */
    use_zone("America/New_York");
    assert_int_equal(period_from_label("2026-01-01", &p), 0);
    int64_t start = p.start_ms;
    int days = 1;
    while (strcmp(p.label, "2026-12-31") != 0) {
        assert_int_equal(period_next(&p, &q), 0);
        assert_int_equal(q.start_ms, p.end_ms);
        p = q;
        days++;
    }
    assert_int_equal(days, 365);
    assert_int_equal(p.end_ms - start, S(8760 * 3600));
}

static void test_rfc3339(void **state)
{
    static const struct {
        const char *zone;
        int64_t ts_ms;
        const char *text;
    } cases[] = {
        {.zone = "Asia/Shanghai", .ts_ms = S(1785513600), .text = "2026-08-01T00:00:00+08:00"},
        {.zone = "Asia/Shanghai",
         .ts_ms = S(1788193800) + 999,
         .text = "2026-09-01T00:30:00+08:00"},
        {.zone = "UTC", .ts_ms = S(1788193800), .text = "2026-08-31T16:30:00+00:00"},
        {.zone = "UTC", .ts_ms = -1, .text = "1969-12-31T23:59:59+00:00"},
        {.zone = "Asia/Kolkata", .ts_ms = S(1785522600), .text = "2026-08-01T00:00:00+05:30"},
        {.zone = "America/New_York", .ts_ms = S(1772946000), .text = "2026-03-08T00:00:00-05:00"},
        {.zone = "America/New_York", .ts_ms = S(1772953199), .text = "2026-03-08T01:59:59-05:00"},
        {.zone = "America/New_York", .ts_ms = S(1772953200), .text = "2026-03-08T03:00:00-04:00"},
        {.zone = "America/New_York", .ts_ms = S(1793511000), .text = "2026-11-01T01:30:00-04:00"},
        {.zone = "America/New_York", .ts_ms = S(1793514600), .text = "2026-11-01T01:30:00-05:00"},
        {.zone = "America/New_York", .ts_ms = S(1793595600), .text = "2026-11-02T00:00:00-05:00"},
        /* Local mean time -04:56:02: the offset is cut to whole minutes and the clock
         * time follows, so the text still names the same instant. */
        {.zone = "America/New_York", .ts_ms = S(-2717651038), .text = "1883-11-18T12:00:02-04:56"},
        {.zone = "UTC", .ts_ms = S(253402300799), .text = "9999-12-31T23:59:59+00:00"},
    };
    for (size_t i = 0; i < N(cases); i++) {
        char buf[32];
        use_zone(cases[i].zone);
        memset(buf, 'x', sizeof(buf));
        period_format_rfc3339(cases[i].ts_ms, buf, sizeof(buf));
        assert_string_equal(buf, cases[i].text);
    }
    /* A short buffer is truncated, never overrun. */
    char small[11];
    use_zone("UTC");
    period_format_rfc3339(0, small, sizeof(small));
    assert_string_equal(small, "1970-01-01");
    period_format_rfc3339(0, small, 0);
    /* Far outside the years of periods: still terminated, still no overrun. */
    char big[32];
    period_format_rfc3339(INT64_MAX, big, sizeof(big));
    assert_true(strlen(big) < sizeof(big));
    period_format_rfc3339(INT64_MIN, big, sizeof(big));
    assert_true(strlen(big) < sizeof(big));
}

static void test_date_parse(void **state)
{
    static const struct {
        const char *text;
        int32_t day;
    } good[] = {
        {.text = "1970-01-01", .day = 0},       {.text = "1969-12-31", .day = -1},
        {.text = "2024-02-29", .day = 19782},   {.text = "2000-03-01", .day = 11017},
        {.text = "2026-07-20", .day = 20654},   {.text = "2026-08-31", .day = 20696},
        {.text = "2026-09-01", .day = 20697},   {.text = "1900-02-28", .day = -25509},
        {.text = "1900-03-01", .day = -25508},  {.text = "0001-01-01", .day = -719162},
        {.text = "9999-12-31", .day = 2932896},
    };
    for (size_t i = 0; i < N(good); i++) {
        int32_t day = 12345;
        if (period_date_parse(good[i].text, &day) != 0)
            fail_msg("'%s': rejected", good[i].text);
        assert_int_equal(day, good[i].day);
    }
    static const char *const bad[] = {
        "",           "2026-02-30", "2025-02-29",  "1900-02-29",  "2100-02-29",
        "2026-06-31", "2026-13-01", "2026-00-01",  "2026-01-00",  "2026-1-01",
        "2026-01-1",  "26-01-01",   "2026-01-01 ", " 2026-01-01", "2026-01-01T00:00:00Z",
        "+026-01-01", "2026/01/01", "0000-01-01",  "2026-0a-01",  "2026-01",
        "20260101",   "2026-W01",   "-001-01-01",
    };
    for (size_t i = 0; i < N(bad); i++) {
        int32_t day = 12345;
        if (period_date_parse(bad[i], &day) != -1)
            fail_msg("'%s': accepted as %d", bad[i], (int)day);
        assert_int_equal(day, 12345);
    }
    int32_t day;
    assert_int_equal(period_date_parse(NULL, &day), -1);
}

static void test_day_of(void **state)
{
    static const struct {
        const char *zone;
        int64_t ts_ms;
        int32_t day;
    } cases[] = {
        {.zone = "UTC", .ts_ms = 0, .day = 0},
        {.zone = "UTC", .ts_ms = -1, .day = -1},
        {.zone = "UTC", .ts_ms = S(1788193800), .day = 20696},           /* 2026-08-31 */
        {.zone = "Asia/Shanghai", .ts_ms = S(1788193800), .day = 20697}, /* 2026-09-01 */
        {.zone = "Asia/Shanghai", .ts_ms = S(1788191999) + 999, .day = 20696},
        {.zone = "America/New_York", .ts_ms = S(1788193800), .day = 20696},
        {.zone = "America/New_York", .ts_ms = 0, .day = -1},
        {.zone = "Pacific/Apia", .ts_ms = S(1325239199), .day = 15337}, /* 2011-12-29 */
        {.zone = "Pacific/Apia", .ts_ms = S(1325239200), .day = 15339}, /* 2011-12-31 */
    };
    for (size_t i = 0; i < N(cases); i++) {
        use_zone(cases[i].zone);
        assert_int_equal(period_day_of(cases[i].ts_ms), cases[i].day);
    }
    use_zone("Asia/Shanghai");
    assert_int_equal(period_day_of(INT64_MIN), INT32_MIN);
    assert_int_equal(period_day_of(INT64_MAX), INT32_MAX);
}

static void test_days_overlap(void **state)
{
    static const struct {
        const char *label;
        const char *from, *to;
        int days;
    } cases[] = {
        /* An absence from 20 July to 5 August 2026, across the month boundary. */
        {.label = "2026-07", .from = "2026-07-20", .to = "2026-08-05", .days = 12},
        {.label = "2026-08", .from = "2026-07-20", .to = "2026-08-05", .days = 5},
        {.label = "2026-09", .from = "2026-07-20", .to = "2026-08-05", .days = 0},
        {.label = "2026-06", .from = "2026-07-20", .to = "2026-08-05", .days = 0},
        {.label = "2026-Q3", .from = "2026-07-20", .to = "2026-08-05", .days = 17},
        {.label = "2026-H2", .from = "2026-07-20", .to = "2026-08-05", .days = 17},
        {.label = "2026", .from = "2026-07-20", .to = "2026-08-05", .days = 17},
        {.label = "2026-W32", .from = "2026-07-20", .to = "2026-08-05", .days = 3},
        {.label = "2026-W30", .from = "2026-07-20", .to = "2026-08-05", .days = 7},
        {.label = "2026-08-05", .from = "2026-07-20", .to = "2026-08-05", .days = 1},
        {.label = "2026-08-06", .from = "2026-07-20", .to = "2026-08-05", .days = 0},
        /* One day; leap February; an absence longer than the period; reversed dates. */
        {.label = "2026-08", .from = "2026-08-31", .to = "2026-08-31", .days = 1},
        {.label = "2024-02", .from = "2024-02-20", .to = "2024-03-10", .days = 10},
        {.label = "2100-02", .from = "2100-02-20", .to = "2100-03-10", .days = 9},
        {.label = "2026-Q1", .from = "2025-11-01", .to = "2026-05-31", .days = 90},
        {.label = "2024-H1", .from = "2023-11-01", .to = "2024-12-31", .days = 182},
        {.label = "2020", .from = "2019-01-01", .to = "2021-12-31", .days = 366},
        {.label = "2026-08", .from = "2026-08-10", .to = "2026-08-01", .days = 0},
    };
    /* Civil days do not depend on the zone. */
    static const char *const zones[] = {"Asia/Shanghai", "America/New_York", "Pacific/Apia"};
    for (size_t z = 0; z < N(zones); z++) {
        use_zone(zones[z]);
        for (size_t i = 0; i < N(cases); i++) {
            struct period p;
            int32_t from, to;
            assert_int_equal(period_from_label(cases[i].label, &p), 0);
            assert_int_equal(period_date_parse(cases[i].from, &from), 0);
            assert_int_equal(period_date_parse(cases[i].to, &to), 0);
            if (period_days_overlap(&p, from, to) != cases[i].days)
                fail_msg("%s %s..%s: got %d, want %d", cases[i].label, cases[i].from, cases[i].to,
                         period_days_overlap(&p, from, to), cases[i].days);
        }
    }
    /* Samoa's missing 30 December 2011 is still a civil day of its month: 28..31 Dec. */
    struct period p;
    use_zone("Pacific/Apia");
    assert_int_equal(period_from_label("2011-12", &p), 0);
    assert_int_equal(period_days_overlap(&p, 15336, 15340), 4);
    assert_int_equal(period_days_overlap(&p, INT32_MIN, INT32_MAX), 31);
    memset(&p, 0, sizeof(p));
    assert_int_equal(period_days_overlap(&p, INT32_MIN, INT32_MAX), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kind_names),   cmocka_unit_test(test_tz_set_errors),
        cmocka_unit_test(test_period_of),    cmocka_unit_test(test_period_of_out_of_range),
        cmocka_unit_test(test_labels),       cmocka_unit_test(test_label_round_trip),
        cmocka_unit_test(test_prev_next),    cmocka_unit_test(test_rfc3339),
        cmocka_unit_test(test_date_parse),   cmocka_unit_test(test_day_of),
        cmocka_unit_test(test_days_overlap),
    };
    unsetenv("TZDIR");
    return cmocka_run_group_tests(tests, NULL, NULL);
}
