/* period — calendar periods in one IANA time zone (pure, no I/O but the zone file check).
 * A period is [start_ms, end_ms) in epoch milliseconds, computed in the process's
 * time zone, which period_tz_set() selects (glibc TZ; one zone per process).
 * Labels are those of events.md: "2026-11-02" day, "2026-W45" ISO week, "2026-11"
 * month, "2026-Q4" quarter, "2026-H2" half, "2026" year. */
#ifndef CSM_AGGREGATOR_PERIOD_H
#define CSM_AGGREGATOR_PERIOD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum period_kind {
    PERIOD_DAY,
    PERIOD_WEEK,
    PERIOD_MONTH,
    PERIOD_QUARTER,
    PERIOD_HALF,
    PERIOD_YEAR,
    PERIOD_KIND_COUNT
};

#define PERIOD_LABEL_MAX 16

struct period {
    enum period_kind kind;
    int64_t start_ms; /* inclusive, local midnight of the first day */
    int64_t end_ms;   /* exclusive */
    int year;         /* ISO week-year for weeks */
    int index; /* 1-2 halves, 1-4 quarters, 1-12 months, ISO week, day of month; 1 for years */
    char label[PERIOD_LABEL_MAX];
};

/* Selects the zone for all later calls. Fails with "unknown time zone 'X'" when
 * /usr/share/zoneinfo (or $TZDIR) has no valid TZif file of that name: glibc would
 * silently fall back to UTC. Names with ".." or a leading '/' are rejected. */
int period_tz_set(const char *zone, char *err, size_t errlen);

/* "day", "week", ... ; NULL for an invalid kind. */
const char *period_kind_name(enum period_kind kind);
/* Parses a kind name; -1 when unknown. */
int period_kind_parse(const char *name, enum period_kind *out);

/* The period of `kind` holding ts_ms. 0, or -1 when ts_ms is outside years 1..9999. */
int period_of(enum period_kind kind, int64_t ts_ms, struct period *out);

/* Parses a label (events.md `period`): exact forms only, valid dates, weeks
 * 01..52/53 as the ISO year has them. 0, or -1 when invalid. */
int period_from_label(const char *label, struct period *out);

/* The period right before / after p, of the same kind. */
int period_prev(const struct period *p, struct period *out);
int period_next(const struct period *p, struct period *out);

/* Local-time RFC 3339 with the zone's offset at that instant and no fraction:
 * "2026-08-01T00:00:00+08:00" ("Z" is never used; UTC prints +00:00). buf >= 32. */
void period_format_rfc3339(int64_t ts_ms, char *buf, size_t buflen);

/* Civil dates as days since 1970-01-01 (proleptic Gregorian), zone-free. */
int period_date_parse(const char *yyyy_mm_dd, int32_t *day); /* strict YYYY-MM-DD; -1 if invalid */
/* The local civil day of ts_ms in the current zone. */
int32_t period_day_of(int64_t ts_ms);
/* Number of civil days of [from_day, to_day] (inclusive) inside period p. */
int period_days_overlap(const struct period *p, int32_t from_day, int32_t to_day);

/* Days of p covered by the union of n inclusive day ranges [from[i], to[i]] (absences
 * may overlap: each day counts once). Sorts the ranges in place. */
int64_t period_days_covered(const struct period *p, int32_t *from, int32_t *to, size_t n);

#endif
