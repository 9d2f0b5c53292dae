/* close — see close.h. */
#include "rules/close.h"

size_t close_due(enum period_kind kind, const char *const *labels, size_t n, int64_t closed_end,
                 int64_t watermark_ms, int64_t lateness_ms, struct period *out)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        struct period p;
        if (period_from_label(labels[i], &p) < 0 || p.kind != kind || p.start_ms < closed_end)
            continue;
        if (watermark_ms < p.end_ms + lateness_ms)
            break;
        out[k++] = p;
    }
    return k;
}
