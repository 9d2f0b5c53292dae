/* log — see log.h. Lines are written with one write(2) so concurrent processes
 * sharing stderr do not interleave within a line. */
#include "common/log.h"
#include "common/clock.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static enum log_level log_max = LOG_INFO;

void log_set_level(enum log_level level)
{
    log_max = level;
}

int log_level_parse(const char *name, enum log_level *out)
{
    static const struct {
        const char *name;
        enum log_level level;
    } names[] = {
        {.name = "err", .level = LOG_ERR},       {.name = "error", .level = LOG_ERR},
        {.name = "warning", .level = LOG_WARN},  {.name = "warn", .level = LOG_WARN},
        {.name = "notice", .level = LOG_NOTICE}, {.name = "info", .level = LOG_INFO},
        {.name = "debug", .level = LOG_DEBUG},
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(name, names[i].name) == 0) {
            *out = names[i].level;
            return 0;
        }
    return -1;
}

bool log_enabled(enum log_level level)
{
    return level <= log_max;
}

static void log_vmsg(enum log_level level, const char *component, const char *fmt, va_list ap)
{
    char line[2048];
    int n = snprintf(line, sizeof(line), "<%d>%s: ", (int)level, component);
    if (n < 0)
        return;
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof(line) - 2)
        len = sizeof(line) - 2;
    line[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}

void log_msg(enum log_level level, const char *component, const char *fmt, ...)
{
    if (!log_enabled(level))
        return;
    va_list ap;
    va_start(ap, fmt);
    log_vmsg(level, component, fmt, ap);
    va_end(ap);
}

void log_complain(struct log_complaint *c, enum log_level level, const char *component,
                  const char *fmt, ...)
{
    int64_t now = clock_mono_ms();
    c->count++;
    if (c->first_ms == 0) {
        c->first_ms = now;
        c->interval_ms = 1000;
        c->next_ms = 0;
    }
    if (now < c->next_ms)
        return;
    c->interval_ms = c->next_ms == 0 ? 1000 : c->interval_ms * 2;
    if (c->interval_ms > 3600 * 1000)
        c->interval_ms = 3600 * 1000;
    c->next_ms = now + c->interval_ms;
    if (!log_enabled(level))
        return;
    va_list ap;
    va_start(ap, fmt);
    log_vmsg(level, component, fmt, ap);
    va_end(ap);
}

void log_complain_recovered(struct log_complaint *c, const char *component, const char *what)
{
    if (c->first_ms == 0)
        return;
    int64_t secs = (clock_mono_ms() - c->first_ms) / 1000;
    log_msg(LOG_NOTICE, component, "%s again after %llds failures=%llu", what, (long long)secs,
            (unsigned long long)c->count);
    *c = (struct log_complaint){0};
}
