/* log — one printf-checked logger for every csmetrics program.
 * Writes one line per event to stderr with a syslog priority prefix ("<3>") that
 * journald reads, the component name, and key=value facts. The level is checked
 * before formatting. Never pass secrets. */
#ifndef CSM_COMMON_LOG_H
#define CSM_COMMON_LOG_H

#include <stdbool.h>
#include <stdint.h>

enum log_level {
    LOG_CRIT = 2,
    LOG_ERR = 3,
    LOG_WARN = 4,
    LOG_NOTICE = 5,
    LOG_INFO = 6,
    LOG_DEBUG = 7
};

/* Messages above `level` are discarded. Default LOG_INFO. */
void log_set_level(enum log_level level);
/* Parses "err|warning|notice|info|debug"; -1 when unknown. */
int log_level_parse(const char *name, enum log_level *out);
bool log_enabled(enum log_level level);

/* log_msg(LOG_WARN, "redis", "cannot connect to redis '%s': %s", addr, err) */
void log_msg(enum log_level level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Back-off of repeated complaints (collectd's c_complain): the first failure is
 * logged, then at most once per interval that doubles up to 1 h; on recovery one
 * line tells for how long it failed. Plain value struct: zero-initialise. */
struct log_complaint {
    int64_t first_ms; /* monotonic ms of the first failure, 0 when healthy */
    int64_t next_ms;  /* do not log again before this */
    int64_t interval_ms;
    uint64_t count;
};

void log_complain(struct log_complaint *c, enum log_level level, const char *component,
                  const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Logs "<what> again after <N>s" once if c was failing; resets c. */
void log_complain_recovered(struct log_complaint *c, const char *component, const char *what);

#endif
