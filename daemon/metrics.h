/* metrics — a small registry of counters, gauges and histograms with label sets, rendered
 * in the Prometheus text exposition format 0.0.4 (README "Metrics").
 * The registry is shared by two threads: the main loop updates it and the HTTP thread
 * renders it. One mutex guards it; updates happen between metrics_lock/metrics_unlock, so
 * a batch of updates takes the lock once. Hot paths do not touch the registry: they keep
 * plain counters and struct metrics_hist values that the main loop copies in. */
#ifndef CSM_DAEMON_METRICS_H
#define CSM_DAEMON_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

enum metrics_type { METRICS_COUNTER, METRICS_GAUGE, METRICS_HISTOGRAM };

/* Bucket layouts of histograms (upper bounds; +Inf is implied):
 *   METRICS_SCALE_SECONDS  0.0001 0.00025 0.0005 0.001 ... 2.5 5 10  (latencies)
 *   METRICS_SCALE_COUNT    1 2 5 10 20 50 ... 20000 50000 100000     (sizes) */
enum metrics_scale { METRICS_SCALE_SECONDS, METRICS_SCALE_COUNT, METRICS_SCALE_N };

#define METRICS_HIST_BOUNDS 16

/* A histogram as a plain value struct, for modules to keep without locks (zeroed: an empty
 * histogram of METRICS_SCALE_SECONDS). counts[i] is the number of observations in bucket i
 * alone (not cumulative); counts[METRICS_HIST_BOUNDS] is the +Inf bucket. */
struct metrics_hist {
    enum metrics_scale scale;
    uint64_t counts[METRICS_HIST_BOUNDS + 1];
    uint64_t count;
    double sum;
};

/* Adds one observation (NaN is ignored). */
void metrics_hist_observe(struct metrics_hist *h, double v);
/* Adds src's observations to dst (same scale; a src of another scale is ignored). */
void metrics_hist_add(struct metrics_hist *dst, const struct metrics_hist *src);
/* The upper bound of bucket i < METRICS_HIST_BOUNDS of a scale. */
double metrics_scale_bound(enum metrics_scale scale, size_t i);

struct metrics;
struct metrics_family;

/* An empty registry (never NULL: allocation failure aborts). */
struct metrics *metrics_new(void);
/* Frees the registry and every family in it; NULL is a no-op. No thread may use it. */
void metrics_destroy(struct metrics *m);

/* Registers a family and returns its handle (owned by m, valid until metrics_destroy).
 * name and label names must be valid Prometheus names (asserted); labels is a
 * NULL-terminated list (NULL: no labels); scale only matters for METRICS_HISTOGRAM.
 * Families render in registration order. A family without labels has its one series from
 * the start (value 0); a labelled family has none until a series is set. */
struct metrics_family *metrics_register(struct metrics *m, enum metrics_type type, const char *name,
                                        const char *help, const char *const *labels,
                                        enum metrics_scale scale);

/* Every call below needs the registry lock (asserted). */
void metrics_lock(struct metrics *m);
void metrics_unlock(struct metrics *m);

/* values: one label value per label name of the family (copied; any UTF-8, escaped when
 * rendered), NULL for a family without labels. The series is created on first use. */
/* Sets a counter (from a cumulative total kept elsewhere) or a gauge. */
void metrics_set(struct metrics_family *f, const char *const *values, double v);
/* Adds v to a counter or gauge. */
void metrics_add(struct metrics_family *f, const char *const *values, double v);
/* Histograms: one observation, or the whole state copied from h (same scale, asserted). */
void metrics_observe(struct metrics_family *f, const char *const *values, double v);
void metrics_hist_set(struct metrics_family *f, const char *const *values,
                      const struct metrics_hist *h);

/* For families whose series come and go (partitions): metrics_mark before setting the
 * current series, metrics_sweep after; the sweep drops every series not set or added
 * since the mark. */
void metrics_mark(struct metrics_family *f);
void metrics_sweep(struct metrics_family *f);

/* Appends the exposition text of every family with at least one series to out (takes the
 * lock itself: call it without holding it). */
void metrics_render(struct metrics *m, struct buf *out);

/* The text form of a sample value: shortest decimal that reads back exactly, integers
 * without a fraction, "+Inf", "-Inf", "NaN". out holds at least 32 bytes. */
void metrics_format_value(double v, char *out, size_t outlen);

#endif
