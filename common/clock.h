/* clock — the two clocks csmetrics uses: CLOCK_MONOTONIC for timeouts and back-off,
 * CLOCK_REALTIME (epoch ms) for wall-clock windows (dedup, max_future, idle). */
#ifndef CSM_COMMON_CLOCK_H
#define CSM_COMMON_CLOCK_H

#include <stdint.h>

int64_t clock_mono_ms(void);
int64_t clock_wall_ms(void);

#endif
