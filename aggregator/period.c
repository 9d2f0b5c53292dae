/* period — calendar periods in the process's time zone (see period.h).
 * Civil-date arithmetic is our own (days since 1970-01-01, proleptic Gregorian, int64);
 * glibc is asked only for the zone's UTC offset at an instant (localtime_r). A period's
 * bounds are the first instants of its first day and of the day after its last day, so
 * a zone that skips local midnight still gets contiguous, non-overlapping periods. */
#include "aggregator/period.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DAY_S 86400

/* Days 0001-01-01 and 10000-01-01 (exclusive): the years periods may name. */
#define DAY_MIN (-719162)
#define DAY_END 2932897

static const char *const kind_names[PERIOD_KIND_COUNT] = {
    [PERIOD_DAY] = "day",         [PERIOD_WEEK] = "week", [PERIOD_MONTH] = "month",
    [PERIOD_QUARTER] = "quarter", [PERIOD_HALF] = "half", [PERIOD_YEAR] = "year",
};

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static bool is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int64_t y, int m)
{
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : mdays[m - 1];
}

/* H. Hinnant's days_from_civil: exact for every int64 year we can meet. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = floor_div(y, 400);
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = floor_div(z, 146097);
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

/* ISO weekday, Monday 1 .. Sunday 7 (1970-01-01 was a Thursday). */
static int iso_weekday(int64_t day)
{
    return (int)(day + 3 - floor_div(day + 3, 7) * 7) + 1;
}

/* Monday of ISO week 1 of ISO year y: the week holding 4 January. */
static int64_t iso_week1_monday(int64_t y)
{
    int64_t jan4 = days_from_civil(y, 1, 4);
    return jan4 - (iso_weekday(jan4) - 1);
}

static int iso_weeks_in_year(int64_t y)
{
    return (int)((iso_week1_monday(y + 1) - iso_week1_monday(y)) / 7);
}

/* The zone's offset from UTC at instant t, in seconds; 0 when glibc cannot convert t. */
static long local_offset(int64_t t, int64_t *local_day)
{
    time_t tt = (time_t)t;
    struct tm tm;
    long off = 0;
    if (localtime_r(&tt, &tm) != NULL)
        off = tm.tm_gmtoff;
    if (local_day != NULL)
        *local_day = floor_div(t + off, DAY_S);
    return off;
}

static int64_t local_day_of(int64_t t)
{
    int64_t day;
    local_offset(t, &day);
    return day;
}

/* The first instant (epoch s) whose local day is `day` or later. Local midnight in
 * the usual case; the first instant after the gap where a zone skips midnight; the
 * earlier of two where midnight repeats. *off is a guess of the offset there (a
 * good one saves a localtime_r call) and receives the offset found. Offsets stay
 * within +-26 h, which bounds the search below. */
static int64_t local_day_start(int64_t day, long *off)
{
    int64_t base = day * DAY_S;
    int64_t t = base - *off;
    int64_t got;
    long off2 = local_offset(t, &got);
    if (off2 != *off) {
        t = base - off2;
        *off = local_offset(t, &got);
    }
    if (got >= day && local_day_of(t - 1) < day)
        return t;
    /* A transition near midnight: lo is on an earlier day, hi on `day` or later. */
    int64_t lo = base - 3 * DAY_S, hi = base + 3 * DAY_S;
    while (hi - lo > 1) {
        int64_t mid = lo + (hi - lo) / 2;
        if (local_day_of(mid) >= day)
            hi = mid;
        else
            lo = mid;
    }
    *off = local_offset(hi, NULL);
    return hi;
}

/* Writes v as exactly n digits, zero-padded (0 <= v < 10^n). */
static char *put_digits(char *s, int v, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        s[i] = (char)('0' + v % 10);
        v /= 10;
    }
    return s + n;
}

/* Fills *out, but for start_ms/end_ms, with the period of `kind` holding civil day
 * `day`; *first is its first day and *next the day after its last. Zone-free.
 * -1 outside years 1..9999. */
static int period_civil(enum period_kind kind, int64_t day, struct period *out, int64_t *first,
                        int64_t *next)
{
    if (day < DAY_MIN || day >= DAY_END || (unsigned)kind >= PERIOD_KIND_COUNT)
        return -1;
    int64_t y;
    int m, d;
    civil_from_days(day, &y, &m, &d);
    struct period p = {.kind = kind, .year = (int)y};
    switch (kind) {
    case PERIOD_DAY:
        *first = day;
        *next = day + 1;
        p.index = d;
        break;
    case PERIOD_WEEK: {
        int64_t monday = day - (iso_weekday(day) - 1);
        int64_t wy;
        int wm, wd;
        civil_from_days(monday + 3, &wy, &wm, &wd); /* its Thursday names the ISO year */
        *first = monday;
        *next = monday + 7;
        p.year = (int)wy;
        p.index = (int)((monday - iso_week1_monday(wy)) / 7) + 1;
        break;
    }
    case PERIOD_MONTH:
        *first = days_from_civil(y, m, 1);
        *next = *first + days_in_month(y, m);
        p.index = m;
        break;
    case PERIOD_QUARTER:
        p.index = (m - 1) / 3 + 1;
        *first = days_from_civil(y, 3 * p.index - 2, 1);
        *next =
            p.index == 4 ? days_from_civil(y + 1, 1, 1) : days_from_civil(y, 3 * p.index + 1, 1);
        break;
    case PERIOD_HALF:
        p.index = m <= 6 ? 1 : 2;
        *first = days_from_civil(y, p.index == 1 ? 1 : 7, 1);
        *next = p.index == 1 ? days_from_civil(y, 7, 1) : days_from_civil(y + 1, 1, 1);
        break;
    case PERIOD_YEAR:
    default:
        *first = days_from_civil(y, 1, 1);
        *next = days_from_civil(y + 1, 1, 1);
        p.index = 1;
        break;
    }
    /* Only ISO weeks can leave the day's year: 0001-01-01 is a Monday, so never below 1. */
    if (p.year < 1 || p.year > 9999)
        return -1;

    char *s = put_digits(p.label, p.year, 4);
    switch (kind) {
    case PERIOD_DAY:
        *s++ = '-';
        s = put_digits(s, m, 2);
        *s++ = '-';
        s = put_digits(s, d, 2);
        break;
    case PERIOD_WEEK:
        *s++ = '-';
        *s++ = 'W';
        s = put_digits(s, p.index, 2);
        break;
    case PERIOD_MONTH:
        *s++ = '-';
        s = put_digits(s, m, 2);
        break;
    case PERIOD_QUARTER:
    case PERIOD_HALF:
        *s++ = '-';
        *s++ = kind == PERIOD_QUARTER ? 'Q' : 'H';
        s = put_digits(s, p.index, 1);
        break;
    default:
        break;
    }
    *s = '\0';

    *out = p;
    return 0;
}

/* period_civil with the bounds in the current zone; `off` guesses the zone's offset
 * (see local_day_start). */
static int period_build(enum period_kind kind, int64_t day, long off, struct period *out)
{
    int64_t first, next;
    if (period_civil(kind, day, out, &first, &next) != 0)
        return -1;
    out->start_ms = local_day_start(first, &off) * 1000;
    out->end_ms = local_day_start(next, &off) * 1000;
    return 0;
}

/* Parses exactly n decimal digits (no sign, no space). */
static bool parse_digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

/* "YYYY-MM-DD" with a real date of years 1..9999 → day number. */
static bool parse_date(const char *s, int64_t *day)
{
    int y, m, d;
    if (strlen(s) != 10 || !parse_digits(s, 4, &y) || s[4] != '-' || !parse_digits(s + 5, 2, &m) ||
        s[7] != '-' || !parse_digits(s + 8, 2, &d))
        return false;
    if (y < 1 || m < 1 || m > 12 || d < 1 || d > days_in_month(y, m))
        return false;
    *day = days_from_civil(y, m, d);
    return true;
}

/* A label's kind and first civil day. */
static bool parse_label(const char *s, enum period_kind *kind, int64_t *day)
{
    int y, n;
    if (s == NULL || !parse_digits(s, 4, &y) || y < 1)
        return false;
    size_t len = strlen(s);
    if (len == 4) {
        *kind = PERIOD_YEAR;
        *day = days_from_civil(y, 1, 1);
        return true;
    }
    if (s[4] != '-')
        return false;
    if (len == 10) {
        *kind = PERIOD_DAY;
        return parse_date(s, day);
    }
    if (len == 7 && parse_digits(s + 5, 2, &n)) {
        if (n < 1 || n > 12)
            return false;
        *kind = PERIOD_MONTH;
        *day = days_from_civil(y, n, 1);
        return true;
    }
    if (len == 7 && s[5] == 'Q' && parse_digits(s + 6, 1, &n) && n >= 1 && n <= 4) {
        *kind = PERIOD_QUARTER;
        *day = days_from_civil(y, 3 * n - 2, 1);
        return true;
    }
    if (len == 7 && s[5] == 'H' && parse_digits(s + 6, 1, &n) && n >= 1 && n <= 2) {
        *kind = PERIOD_HALF;
        *day = days_from_civil(y, n == 1 ? 1 : 7, 1);
        return true;
    }
    if (len == 8 && s[5] == 'W' && parse_digits(s + 6, 2, &n) && n >= 1 &&
        n <= iso_weeks_in_year(y)) {
        *kind = PERIOD_WEEK;
        *day = iso_week1_monday(y) + 7 * (int64_t)(n - 1);
        return true;
    }
    return false;
}

/* glibc reads $TZDIR (when set and non-empty) instead of its default directory, so
 * the check looks where glibc will. setenv() is not thread-safe: call this at
 * start-up, before other threads run. */
int period_tz_set(const char *zone, char *err, size_t errlen)
{
    const char *dir = getenv("TZDIR");
    char path[4096];
    char magic[4];
    FILE *f = NULL;
    int n;

    if (dir == NULL || *dir == '\0')
        dir = "/usr/share/zoneinfo";
    if (zone == NULL || *zone == '\0' || *zone == '/' || strstr(zone, "..") != NULL)
        goto out_unknown;
    n = snprintf(path, sizeof(path), "%s/%s", dir, zone);
    if (n < 0 || (size_t)n >= sizeof(path))
        goto out_unknown;
    f = fopen(path, "rb");
    if (f == NULL)
        goto out_unknown;
    /* A directory opens but does not read. */
    if (fread(magic, 1, sizeof(magic), f) != sizeof(magic) || memcmp(magic, "TZif", 4) != 0)
        goto out_close;
    fclose(f);
    /* localtime_r does not look at TZ again after the first call: tzset() does. */
    if (setenv("TZ", zone, 1) != 0)
        goto out_unknown;
    tzset();
    return 0;

out_close:
    fclose(f);
out_unknown:
    if (err != NULL && errlen > 0)
        snprintf(err, errlen, "unknown time zone '%s'", zone != NULL ? zone : "");
    return -1;
}

const char *period_kind_name(enum period_kind kind)
{
    if ((unsigned)kind >= PERIOD_KIND_COUNT)
        return NULL;
    return kind_names[kind];
}

int period_kind_parse(const char *name, enum period_kind *out)
{
    if (name == NULL)
        return -1;
    for (int k = 0; k < PERIOD_KIND_COUNT; k++)
        if (strcmp(name, kind_names[k]) == 0) {
            *out = (enum period_kind)k;
            return 0;
        }
    return -1;
}

int period_of(enum period_kind kind, int64_t ts_ms, struct period *out)
{
    int64_t t = floor_div(ts_ms, 1000);
    /* Cheap bound first: a day beyond any real offset of years 1..9999. */
    if (t < (int64_t)(DAY_MIN - 2) * DAY_S || t >= (int64_t)(DAY_END + 2) * DAY_S)
        return -1;
    int64_t day;
    long off = local_offset(t, &day);
    return period_build(kind, day, off, out);
}

int period_from_label(const char *label, struct period *out)
{
    enum period_kind kind;
    int64_t day;
    if (!parse_label(label, &kind, &day))
        return -1;
    return period_build(kind, day, 0, out);
}

/* The first civil day of p and the day after its last, from its label (which names
 * the period whatever the zone does to start_ms). */
static bool period_days(const struct period *p, int64_t *first, int64_t *next)
{
    enum period_kind kind;
    struct period q;
    if (p == NULL || memchr(p->label, '\0', sizeof(p->label)) == NULL ||
        !parse_label(p->label, &kind, first) || kind != p->kind)
        return false;
    return period_civil(kind, *first, &q, first, next) == 0;
}

int period_prev(const struct period *p, struct period *out)
{
    int64_t first, next;
    if (!period_days(p, &first, &next))
        return -1;
    return period_build(p->kind, first - 1, 0, out);
}

int period_next(const struct period *p, struct period *out)
{
    int64_t first, next;
    if (!period_days(p, &first, &next))
        return -1;
    return period_build(p->kind, next, 0, out);
}

/* RFC 3339 offsets have whole minutes: an offset with seconds (local mean time
 * before ~1900) is truncated to the minute and the clock time shifted to match, so
 * the text still names the exact instant. */
void period_format_rfc3339(int64_t ts_ms, char *buf, size_t buflen)
{
    if (buf == NULL || buflen == 0)
        return;
    int64_t t = floor_div(ts_ms, 1000);
    long off = local_offset(t, NULL);
    off -= off % 60;
    int64_t local = t + off;
    int64_t day = floor_div(local, DAY_S), sec = local - day * DAY_S;
    int64_t y;
    int m, d;
    civil_from_days(day, &y, &m, &d);
    long aoff = off < 0 ? -off : off;
    snprintf(buf, buflen, "%04lld-%02d-%02dT%02d:%02d:%02d%c%02ld:%02ld", (long long)y, m, d,
             (int)(sec / 3600), (int)(sec / 60 % 60), (int)(sec % 60), off < 0 ? '-' : '+',
             aoff / 3600, aoff / 60 % 60);
}

int period_date_parse(const char *yyyy_mm_dd, int32_t *day)
{
    int64_t d;
    if (yyyy_mm_dd == NULL || !parse_date(yyyy_mm_dd, &d))
        return -1;
    *day = (int32_t)d;
    return 0;
}

int32_t period_day_of(int64_t ts_ms)
{
    int64_t day = local_day_of(floor_div(ts_ms, 1000));
    if (day < INT32_MIN)
        return INT32_MIN;
    if (day > INT32_MAX)
        return INT32_MAX;
    return (int32_t)day;
}

/* An invalid p (its label does not name a period of its kind) overlaps nothing. */
int period_days_overlap(const struct period *p, int32_t from_day, int32_t to_day)
{
    int64_t first, next;
    if (!period_days(p, &first, &next))
        return 0;
    int64_t lo = from_day > first ? from_day : first;
    int64_t hi = to_day < next - 1 ? to_day : next - 1;
    return hi >= lo ? (int)(hi - lo + 1) : 0;
}

int64_t period_days_covered(const struct period *p, int32_t *from, int32_t *to, size_t n)
{
    /* insertion sort by start: absences per agent are few */
    for (size_t i = 1; i < n; i++) {
        int32_t f = from[i], t = to[i];
        size_t j = i;
        for (; j > 0 && from[j - 1] > f; j--) {
            from[j] = from[j - 1];
            to[j] = to[j - 1];
        }
        from[j] = f;
        to[j] = t;
    }
    int64_t days = 0;
    for (size_t i = 0; i < n;) {
        int32_t f = from[i], t = to[i];
        size_t j = i + 1;
        while (j < n && from[j] <= t + 1) {
            if (to[j] > t)
                t = to[j];
            j++;
        }
        days += period_days_overlap(p, f, t);
        i = j;
    }
    return days;
}
