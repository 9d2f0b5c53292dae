/* decode — one Kafka message's bytes to a struct event (events.md); pure, no I/O.
 * Checks run in one fixed order, and the first failure is the reason: size; JSON validity
 * (strict UTF-8, paired \u surrogates, yajl's grammar, an object at top level, no duplicate
 * key at any depth); `type`; event_id, ts, shop_id; the type's fields in events.md order;
 * cross-field checks (score within 0..max, from <= to); last max_future. Money and time are
 * read from their exact text, never through binary floating point. */
#include "consumers/decode.h"
#include "common/utf8.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_parse.h>

#include "aggregator/period.h"
#include "common/buf.h"

/* Event time must fall in years 0001..9999 UTC, the years period.h can name. */
#define TS_MIN_MS (-62135596800000LL) /* 0001-01-01T00:00:00Z */
#define TS_MAX_MS 253402300799999LL   /* 9999-12-31T23:59:59.999Z */
#define EVENT_ID_MAX 128
#define AMOUNT_UNITS_LIMIT 1000000000000LL /* 10^12 currency units */

static const char *const reason_names[DL_REASON_COUNT] = {
    [DL_NONE] = "none",
    [DL_INVALID_JSON] = "invalid_json",
    [DL_MISSING_FIELD] = "missing_field",
    [DL_BAD_TYPE] = "bad_type",
    [DL_BAD_VALUE] = "bad_value",
    [DL_UNKNOWN_TYPE] = "unknown_type",
    [DL_BAD_AMOUNT] = "bad_amount",
    [DL_BAD_TS] = "bad_ts",
    [DL_FUTURE_TS] = "future_ts",
    [DL_TOO_LARGE] = "too_large",
    [DL_LATE] = "late",
    [DL_ORPHAN] = "orphan",
};

const char *dl_reason_name(enum dl_reason r)
{
    return (unsigned)r < DL_REASON_COUNT ? reason_names[r] : NULL;
}

/* ---- The fields we know, and what each type needs ---- */

enum field {
    F_EVENT_ID,
    F_TYPE,
    F_TS,
    F_SHOP_ID,
    F_CONVERSATION_ID,
    F_AGENT_ID,
    F_TO_AGENT_ID,
    F_CUSTOMER_ID,
    F_DIRECTION,
    F_ORDER_ID,
    F_AMOUNT,
    F_REASON,
    F_PERIOD,
    F_ITEM,
    F_SCORE,
    F_MAX,
    F_ROLE,
    F_REVIEWER,
    F_FROM,
    F_TO,
    F_COUNT
};

enum kind {
    K_SPECIAL, /* type and ts: checked by their own code */
    K_ID,      /* non-empty string without NUL, kept in the arena */
    K_TEXT,    /* string without NUL, may be empty, kept in the arena */
    K_DIRECTION,
    K_ROLE,
    K_AMOUNT,
    K_PERIOD,
    K_NUMBER, /* score, max */
    K_DATE,
};

struct field_def {
    const char *name;
    enum kind kind;
    size_t off; /* K_ID, K_TEXT: the const char * member of struct event */
};

#define ID(m) .kind = K_ID, .off = offsetof(struct event, m)
static const struct field_def field_defs[F_COUNT] = {
    [F_EVENT_ID] = {.name = "event_id", ID(event_id)},
    [F_TYPE] = {.name = "type", .kind = K_SPECIAL},
    [F_TS] = {.name = "ts", .kind = K_SPECIAL},
    [F_SHOP_ID] = {.name = "shop_id", ID(shop_id)},
    [F_CONVERSATION_ID] = {.name = "conversation_id", ID(conversation_id)},
    [F_AGENT_ID] = {.name = "agent_id", ID(agent_id)},
    [F_TO_AGENT_ID] = {.name = "to_agent_id", ID(to_agent_id)},
    [F_CUSTOMER_ID] = {.name = "customer_id", ID(customer_id)},
    [F_DIRECTION] = {.name = "direction", .kind = K_DIRECTION},
    [F_ORDER_ID] = {.name = "order_id", ID(order_id)},
    [F_AMOUNT] = {.name = "amount", .kind = K_AMOUNT},
    [F_REASON] = {.name = "reason", .kind = K_TEXT, .off = offsetof(struct event, reason)},
    [F_PERIOD] = {.name = "period", .kind = K_PERIOD},
    [F_ITEM] = {.name = "item", ID(item)},
    [F_SCORE] = {.name = "score", .kind = K_NUMBER},
    [F_MAX] = {.name = "max", .kind = K_NUMBER},
    [F_ROLE] = {.name = "role", .kind = K_ROLE},
    [F_REVIEWER] = {.name = "reviewer", ID(reviewer)},
    [F_FROM] = {.name = "from", .kind = K_DATE},
    [F_TO] = {.name = "to", .kind = K_DATE},
};
#undef ID

#define TYPE_FIELDS_MAX 7

struct field_rule {
    enum field f;
    bool optional;
};

struct type_spec {
    enum event_topic topic;
    size_t n;
    struct field_rule fields[TYPE_FIELDS_MAX]; /* events.md order = check order */
};

/* clang-format off */
#define REQ(x) {.f = (x)}
#define OPT(x) {.f = (x), .optional = true}
/* clang-format on */
static const struct type_spec type_specs[EV_TYPE_COUNT] = {
    [EV_MESSAGE] = {.topic = TOPIC_CHAT,
                    .n = 4,
                    .fields = {REQ(F_CONVERSATION_ID), REQ(F_AGENT_ID), REQ(F_CUSTOMER_ID),
                               REQ(F_DIRECTION)}},
    [EV_TRANSFER] = {.topic = TOPIC_CHAT,
                     .n = 4,
                     .fields = {REQ(F_CONVERSATION_ID), REQ(F_AGENT_ID), REQ(F_TO_AGENT_ID),
                                REQ(F_CUSTOMER_ID)}},
    [EV_COMPLAINT] = {.topic = TOPIC_CHAT,
                      .n = 3,
                      .fields = {OPT(F_CONVERSATION_ID), REQ(F_AGENT_ID), REQ(F_CUSTOMER_ID)}},
    [EV_CREATED] = {.topic = TOPIC_ORDERS,
                    .n = 4,
                    .fields = {REQ(F_ORDER_ID), REQ(F_CUSTOMER_ID), REQ(F_AMOUNT),
                               OPT(F_AGENT_ID)}},
    [EV_PAID] = {.topic = TOPIC_ORDERS, .n = 2, .fields = {REQ(F_ORDER_ID), REQ(F_AMOUNT)}},
    [EV_REFUNDED] = {.topic = TOPIC_ORDERS, .n = 2, .fields = {REQ(F_ORDER_ID), REQ(F_AMOUNT)}},
    [EV_CANCELLED] = {.topic = TOPIC_ORDERS, .n = 1, .fields = {REQ(F_ORDER_ID)}},
    [EV_FLAGGED] = {.topic = TOPIC_ORDERS, .n = 2, .fields = {REQ(F_ORDER_ID), REQ(F_REASON)}},
    [EV_REVIEW] = {.topic = TOPIC_REVIEWS,
                   .n = 7,
                   .fields = {REQ(F_AGENT_ID), REQ(F_PERIOD), REQ(F_ITEM), REQ(F_SCORE), OPT(F_MAX),
                              REQ(F_ROLE), REQ(F_REVIEWER)}},
    [EV_TARGET] = {.topic = TOPIC_REVIEWS,
                   .n = 3,
                   .fields = {REQ(F_AGENT_ID), REQ(F_PERIOD), REQ(F_AMOUNT)}},
    [EV_ABSENCE] = {.topic = TOPIC_REVIEWS,
                    .n = 3,
                    .fields = {REQ(F_AGENT_ID), REQ(F_FROM), REQ(F_TO)}},
};
#undef REQ
#undef OPT

/* ---- Small text helpers ---- */

static enum dl_reason fail(char *detail, size_t detail_len, enum dl_reason r, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static enum dl_reason fail(char *detail, size_t detail_len, enum dl_reason r, const char *fmt, ...)
{
    if (detail && detail_len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(detail, detail_len, fmt, ap);
        va_end(ap);
    }
    return r;
}

/* A value quoted in a detail: printable ASCII only, at most 32 bytes, so that the
 * detail stays short and valid UTF-8 whatever the producer sent. */
static void echo(char *out, size_t outlen, const char *s, size_t n)
{
    size_t max = n > 32 ? 29 : n, o = 0;
    for (size_t i = 0; i < max && o + 1 < outlen; i++)
        out[o++] = (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '\'') ? s[i] : '?';
    for (size_t i = 0; n > max && i < 3 && o + 1 < outlen; i++)
        out[o++] = '.';
    if (outlen)
        out[o] = '\0';
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int hex4(const unsigned char *s, size_t n, unsigned *out)
{
    unsigned v = 0;
    if (n < 4)
        return -1;
    for (int i = 0; i < 4; i++) {
        unsigned c = s[i];
        if (c >= '0' && c <= '9')
            v = v * 16 + (c - '0');
        else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
            v = v * 16 + ((c | 0x20) - 'a' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

/* Offset of the first \u escape of a surrogate that is not part of a high+low pair, or n.
 * yajl would turn those into "?" or into invalid UTF-8. A backslash is only valid inside
 * strings, and every escape is consumed whole, so "\\u..." is not mistaken for one. Other
 * malformed escapes are left to yajl. */
static size_t surrogate_check(const unsigned char *s, size_t n)
{
    const unsigned char *p = s, *end = s + n;
    while ((p = memchr(p, '\\', (size_t)(end - p))) != NULL) {
        unsigned u, lo;
        if (end - p < 2)
            break;
        if (p[1] != 'u' || hex4(p + 2, (size_t)(end - p - 2), &u) != 0) {
            p += 2;
            continue;
        }
        if (u >= 0xdc00 && u <= 0xdfff)
            return (size_t)(p - s);
        if (u >= 0xd800 && u <= 0xdbff) {
            if (end - p < 12 || p[6] != '\\' || p[7] != 'u' || hex4(p + 8, 4, &lo) != 0 ||
                lo < 0xdc00 || lo > 0xdfff)
                return (size_t)(p - s);
            p += 12;
            continue;
        }
        p += 6;
    }
    return n;
}

/* ---- Calendar ---- */

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* H. Hinnant's days_from_civil / civil_from_days (proleptic Gregorian). */
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

static int days_in_month(int y, int m)
{
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : mdays[m - 1];
}

/* n decimal digits at s into *out; false if any is not a digit. */
static bool digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!is_digit(s[i]))
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

int decode_rfc3339_ms(const char *s, size_t n, int64_t *ms)
{
    int y, mo, d, h, mi, sec, frac_ms = 0, off_min = 0;
    size_t i;

    /* YYYY-MM-DDTHH:MM:SS is 19 bytes; the shortest zone is "Z". */
    if (n < 20 || !digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) || s[7] != '-' ||
        !digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't') || !digits(s + 11, 2, &h) ||
        s[13] != ':' || !digits(s + 14, 2, &mi) || s[16] != ':' || !digits(s + 17, 2, &sec))
        return -1;
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 59)
        return -1;
    i = 19;
    if (s[i] == '.') {
        size_t start = ++i;
        while (i < n && is_digit(s[i])) {
            if (i - start < 3)
                frac_ms = frac_ms * 10 + (s[i] - '0');
            i++;
        }
        size_t nd = i - start;
        if (nd < 1 || nd > 9)
            return -1;
        for (; nd < 3; nd++)
            frac_ms *= 10;
    }
    if (i < n && (s[i] == 'Z' || s[i] == 'z')) {
        i++;
    } else if (i < n && (s[i] == '+' || s[i] == '-')) {
        int oh, om;
        if (n - i < 6 || !digits(s + i + 1, 2, &oh) || s[i + 3] != ':' ||
            !digits(s + i + 4, 2, &om) || oh > 23 || om > 59)
            return -1;
        off_min = (s[i] == '-' ? -1 : 1) * (oh * 60 + om);
        i += 6;
    } else {
        return -1;
    }
    if (i != n)
        return -1;
    int64_t secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec;
    *ms = (secs - (int64_t)off_min * 60) * 1000 + frac_ms;
    return 0;
}

/* ---- Amounts ---- */

enum amount_err { AMT_OK, AMT_SYNTAX, AMT_NEGATIVE, AMT_DECIMALS, AMT_RANGE };

static enum amount_err amount_parse(const char *s, size_t n, int64_t *cents)
{
    size_t i = 0;
    int64_t units = 0, frac = 0;
    bool big = false, extra = false;

    if (n > 0 && s[0] == '-')
        return AMT_NEGATIVE;
    while (i < n && is_digit(s[i])) {
        if (!big) {
            units = units * 10 + (s[i] - '0');
            big = units >= AMOUNT_UNITS_LIMIT;
        }
        i++;
    }
    if (i == 0)
        return AMT_SYNTAX;
    if (i < n && s[i] == '.') {
        size_t start = ++i;
        while (i < n && is_digit(s[i])) {
            if (i - start < 2)
                frac = frac * 10 + (s[i] - '0');
            else if (s[i] != '0')
                extra = true;
            i++;
        }
        if (i == start)
            return AMT_SYNTAX;
        if (i - start == 1)
            frac *= 10;
    }
    if (i != n)
        return AMT_SYNTAX;
    if (extra)
        return AMT_DECIMALS;
    if (big)
        return AMT_RANGE;
    *cents = units * 100 + frac;
    return AMT_OK;
}

int decode_amount_cents(const char *text, size_t len, int64_t *cents)
{
    return amount_parse(text, len, cents) == AMT_OK ? 0 : -1;
}

/* ---- JSON: yajl callbacks capture the top-level fields we know ---- */

enum jtype { J_ABSENT = 0, J_NULL, J_BOOL, J_NUMBER, J_STRING, J_OBJECT, J_ARRAY };

struct jval {
    enum jtype type;
    const char *s; /* J_STRING: decoded bytes; J_NUMBER: its text; NUL-terminated */
    size_t n;
};

/* Duplicate keys: one open-addressing set of (map serial, key) over the whole message,
 * so a closed map needs no clean-up. map == 0 marks an empty slot. */
struct key_slot {
    uint32_t hash, map, off, len;
};

#define KEYSET_INLINE 64
#define MAPSTACK_INLINE 32
#define SCRATCH_INLINE 2048

struct parse {
    /* Copies of every key and of the captured values: their decoded size never exceeds
     * their size in the message, so scratch of the message's length + 1 is enough. */
    char *scratch;
    size_t used, cap;
    struct key_slot *slots;
    uint32_t nslots, nkeys;
    uint32_t *maps; /* serials of the open maps, innermost last */
    size_t nmaps, maps_cap;
    uint32_t next_serial;
    size_t depth;
    int pending; /* the known top-level field whose value comes next, or -1 */
    struct jval fields[F_COUNT];
    enum dl_reason reason; /* set when a callback stops the parse */
    char msg[96];
    struct key_slot slots_inline[KEYSET_INLINE];
    uint32_t maps_inline[MAPSTACK_INLINE];
};

static void parse_release(struct parse *p)
{
    if (p->slots != p->slots_inline)
        free(p->slots);
    if (p->maps != p->maps_inline)
        free(p->maps);
}

static int stop(struct parse *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int stop(struct parse *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->msg, sizeof(p->msg), fmt, ap);
    va_end(ap);
    p->reason = DL_INVALID_JSON;
    return 0;
}

static const char *scratch_copy(struct parse *p, const void *s, size_t n)
{
    if (n + 1 > p->cap - p->used)
        return NULL; /* cannot happen: see struct parse */
    char *d = p->scratch + p->used;
    memcpy(d, s, n);
    d[n] = '\0';
    p->used += n + 1;
    return d;
}

static uint32_t key_hash(uint32_t map, const char *s, size_t n)
{
    uint32_t h = 2166136261u ^ (map * 0x9e3779b1u);
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

static void keyset_put(struct key_slot *slots, uint32_t nslots, const struct key_slot *k)
{
    uint32_t mask = nslots - 1;
    for (uint32_t i = k->hash & mask;; i = (i + 1) & mask) {
        if (slots[i].map == 0) {
            slots[i] = *k;
            return;
        }
    }
}

/* Adds the key to the innermost map; false when that map has it already. */
static bool keyset_add(struct parse *p, const char *key, size_t n, uint32_t off)
{
    uint32_t map = p->maps[p->nmaps - 1];
    struct key_slot k = {.hash = key_hash(map, key, n), .map = map, .off = off, .len = (uint32_t)n};
    if ((p->nkeys + 1) * 4 > p->nslots * 3) {
        uint32_t nslots = p->nslots * 2;
        struct key_slot *slots = xcalloc(nslots, sizeof(*slots));
        for (uint32_t i = 0; i < p->nslots; i++)
            if (p->slots[i].map)
                keyset_put(slots, nslots, &p->slots[i]);
        if (p->slots != p->slots_inline)
            free(p->slots);
        p->slots = slots;
        p->nslots = nslots;
    }
    uint32_t mask = p->nslots - 1;
    for (uint32_t i = k.hash & mask;; i = (i + 1) & mask) {
        const struct key_slot *s = &p->slots[i];
        if (s->map == 0)
            break;
        if (s->hash == k.hash && s->map == map && s->len == n &&
            memcmp(p->scratch + s->off, key, n) == 0)
            return false;
    }
    keyset_put(p->slots, p->nslots, &k);
    p->nkeys++;
    return true;
}

static int field_lookup(const char *key, size_t n)
{
    for (int f = 0; f < F_COUNT; f++) {
        const char *name = field_defs[f].name;
        if (name[0] == key[0] && strlen(name) == n && memcmp(name, key, n) == 0)
            return f;
    }
    return -1;
}

/* A scalar, or the start of a container, at the current position. */
static int on_value(struct parse *p, enum jtype t, const void *s, size_t n)
{
    if (p->depth == 0)
        return stop(p, "invalid JSON: top-level value is not an object");
    if (p->depth == 1 && p->pending >= 0) {
        struct jval *v = &p->fields[p->pending];
        v->type = t;
        if (t == J_STRING || t == J_NUMBER) {
            if (!(v->s = scratch_copy(p, s, n)))
                return stop(p, "invalid JSON: internal buffer exhausted");
            v->n = n;
        }
        p->pending = -1;
    }
    return 1;
}

static int cb_null(void *ctx)
{
    return on_value(ctx, J_NULL, NULL, 0);
}

static int cb_boolean(void *ctx, int b)
{
    return on_value(ctx, J_BOOL, NULL, 0);
}

static int cb_number(void *ctx, const char *s, size_t n)
{
    return on_value(ctx, J_NUMBER, s, n);
}

static int cb_string(void *ctx, const unsigned char *s, size_t n)
{
    return on_value(ctx, J_STRING, s, n);
}

static int cb_start_map(void *ctx)
{
    struct parse *p = ctx;
    if (p->depth > 0 && !on_value(p, J_OBJECT, NULL, 0))
        return 0;
    if (p->nmaps == p->maps_cap) {
        size_t cap = p->maps_cap * 2;
        uint32_t *maps = xmalloc(cap * sizeof(*maps));
        memcpy(maps, p->maps, p->nmaps * sizeof(*maps));
        if (p->maps != p->maps_inline)
            free(p->maps);
        p->maps = maps;
        p->maps_cap = cap;
    }
    p->maps[p->nmaps++] = ++p->next_serial;
    p->depth++;
    return 1;
}

static int cb_end_map(void *ctx)
{
    struct parse *p = ctx;
    p->nmaps--;
    p->depth--;
    return 1;
}

static int cb_start_array(void *ctx)
{
    struct parse *p = ctx;
    if (!on_value(p, J_ARRAY, NULL, 0))
        return 0;
    p->depth++;
    return 1;
}

static int cb_end_array(void *ctx)
{
    struct parse *p = ctx;
    p->depth--;
    return 1;
}

static int cb_map_key(void *ctx, const unsigned char *key, size_t n)
{
    struct parse *p = ctx;
    const char *k = scratch_copy(p, key, n);
    if (!k)
        return stop(p, "invalid JSON: internal buffer exhausted");
    if (!keyset_add(p, k, n, (uint32_t)(k - p->scratch))) {
        char e[40];
        echo(e, sizeof(e), k, n);
        return stop(p, "invalid JSON: duplicate key '%s'", e);
    }
    p->pending = p->depth == 1 ? field_lookup(k, n) : -1;
    return 1;
}

static const yajl_callbacks callbacks = {
    .yajl_null = cb_null,
    .yajl_boolean = cb_boolean,
    .yajl_number = cb_number, /* set, so yajl hands over every number's text */
    .yajl_string = cb_string,
    .yajl_start_map = cb_start_map,
    .yajl_map_key = cb_map_key,
    .yajl_end_map = cb_end_map,
    .yajl_start_array = cb_start_array,
    .yajl_end_array = cb_end_array,
};

/* yajl's allocations go through ours: out of memory aborts, as everywhere (buf.h). */
static void *yajl_xmalloc(void *ctx, size_t n)
{
    return xmalloc(n);
}

static void *yajl_xrealloc(void *ctx, void *ptr, size_t n)
{
    return xrealloc(ptr, n);
}

static void yajl_xfree(void *ctx, void *ptr)
{
    free(ptr);
}

/* Copies yajl's error text ("parse error: premature EOF\n ...") to one trimmed line. */
static void yajl_message(yajl_handle h, const unsigned char *buf, size_t len, char *out,
                         size_t outlen)
{
    unsigned char *e = yajl_get_error(h, 0, buf, len);
    size_t n = 0;
    if (e) {
        const char *s = (const char *)e;
        n = strcspn(s, "\n");
        while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '.'))
            n--;
        if (n >= outlen)
            n = outlen - 1;
        memcpy(out, s, n);
        yajl_free_error(h, e);
    }
    out[n] = '\0';
}

/* Parses buf into p->fields. DL_NONE, or DL_INVALID_JSON with the detail written. */
static enum dl_reason parse_json(struct parse *p, const unsigned char *buf, size_t len,
                                 char *detail, size_t detail_len)
{
    static const yajl_alloc_funcs afs = {
        .malloc = yajl_xmalloc, .realloc = yajl_xrealloc, .free = yajl_xfree};
    size_t at;

    if ((at = utf8_valid_prefix(buf, len)) != len)
        return fail(detail, detail_len, DL_INVALID_JSON,
                    "invalid JSON: invalid UTF-8 at byte offset %zu", at);
    if ((at = surrogate_check(buf, len)) != len)
        return fail(detail, detail_len, DL_INVALID_JSON,
                    "invalid JSON: unpaired surrogate escape at byte offset %zu", at);

    yajl_handle h = yajl_alloc(&callbacks, (yajl_alloc_funcs *)&afs, p);
    yajl_config(h, yajl_allow_comments, 0);
    yajl_config(h, yajl_dont_validate_strings, 0);
    yajl_status st = yajl_parse(h, buf, len);
    bool at_end = false;
    if (st == yajl_status_ok) {
        st = yajl_complete_parse(h);
        at_end = true;
    }
    enum dl_reason r = DL_NONE;
    if (st == yajl_status_client_canceled) {
        r = fail(detail, detail_len, p->reason, "%s", p->msg);
    } else if (st != yajl_status_ok) {
        char msg[96];
        yajl_message(h, buf, len, msg, sizeof(msg));
        if (at_end)
            r = fail(detail, detail_len, DL_INVALID_JSON, "invalid JSON: %s", msg);
        else
            r = fail(detail, detail_len, DL_INVALID_JSON, "invalid JSON near byte offset %zu: %s",
                     yajl_get_bytes_consumed(h), msg);
    }
    yajl_free(h);
    return r;
}

/* ---- Field checks, in the order of the file's opening comment ---- */

struct keep {
    size_t off; /* member of struct event */
    const char *s;
    size_t n;
};

struct check {
    const struct jval *f;
    struct event *ev;
    char *detail;
    size_t detail_len;
    struct keep keep[F_COUNT];
    size_t nkeep;
};

static const char *fname(enum field f)
{
    return field_defs[f].name;
}

static enum dl_reason missing(struct check *c, enum field f)
{
    return fail(c->detail, c->detail_len, DL_MISSING_FIELD, "missing field '%s'", fname(f));
}

static enum dl_reason expected(struct check *c, enum field f, const char *what)
{
    return fail(c->detail, c->detail_len, DL_BAD_TYPE, "field '%s': expected %s", fname(f), what);
}

static enum dl_reason bad_value(struct check *c, enum field f, const char *why)
{
    return fail(c->detail, c->detail_len, DL_BAD_VALUE, "field '%s': %s", fname(f), why);
}

/* Checks that field f, when present, is a string; *present tells whether it is there. */
static enum dl_reason want_string(struct check *c, enum field f, bool optional, bool *present)
{
    const struct jval *v = &c->f[f];
    *present = false;
    if (v->type == J_ABSENT)
        return optional ? DL_NONE : missing(c, f);
    if (v->type != J_STRING)
        return expected(c, f, "a string");
    *present = true;
    return DL_NONE;
}

static bool has_nul(const struct jval *v)
{
    return memchr(v->s, '\0', v->n) != NULL;
}

static enum dl_reason check_id(struct check *c, enum field f, bool optional, size_t max)
{
    const struct jval *v = &c->f[f];
    bool present;
    enum dl_reason r = want_string(c, f, optional, &present);
    if (r != DL_NONE || !present)
        return r;
    if (v->n == 0)
        return bad_value(c, f, "empty");
    if (v->n > max)
        return fail(c->detail, c->detail_len, DL_BAD_VALUE, "field '%s': longer than %zu bytes",
                    fname(f), max);
    if (has_nul(v))
        return bad_value(c, f, "contains a NUL character");
    c->keep[c->nkeep++] = (struct keep){.off = field_defs[f].off, .s = v->s, .n = v->n};
    return DL_NONE;
}

static enum dl_reason check_type(struct check *c, enum event_topic topic, enum event_type *out)
{
    const struct jval *v = &c->f[F_TYPE];
    if (v->type == J_ABSENT)
        return missing(c, F_TYPE);
    if (v->type != J_STRING)
        return expected(c, F_TYPE, "a string");
    for (int t = 0; t < EV_TYPE_COUNT; t++) {
        const char *name = event_type_name(t);
        if (type_specs[t].topic == topic && strlen(name) == v->n && memcmp(name, v->s, v->n) == 0) {
            *out = t;
            return DL_NONE;
        }
    }
    char e[40];
    const char *tn = event_topic_name(topic);
    echo(e, sizeof(e), v->s, v->n);
    return fail(c->detail, c->detail_len, DL_UNKNOWN_TYPE,
                "field 'type': unknown type '%s' for topic %s", e, tn ? tn : "(invalid)");
}

static enum dl_reason check_ts(struct check *c)
{
    const struct jval *v = &c->f[F_TS];
    int64_t ms = 0;
    if (v->type == J_ABSENT)
        return missing(c, F_TS);
    if (v->type == J_STRING) {
        if (decode_rfc3339_ms(v->s, v->n, &ms) != 0)
            return fail(c->detail, c->detail_len, DL_BAD_TS,
                        "field 'ts': not an RFC 3339 date-time with offset");
    } else if (v->type == J_NUMBER) {
        /* yajl's number text: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
        if (strpbrk(v->s, ".eE"))
            return fail(c->detail, c->detail_len, DL_BAD_TS,
                        "field 'ts': epoch ms must be an integer");
        const char *s = v->s + (v->s[0] == '-');
        if (strlen(s) > 15) /* beyond any year 9999 */
            return fail(c->detail, c->detail_len, DL_BAD_TS,
                        "field 'ts': outside years 0001..9999");
        for (; *s; s++)
            ms = ms * 10 + (*s - '0');
        if (v->s[0] == '-')
            ms = -ms;
    } else {
        return expected(c, F_TS, "RFC 3339 string or integer epoch ms");
    }
    if (ms < TS_MIN_MS || ms > TS_MAX_MS)
        return fail(c->detail, c->detail_len, DL_BAD_TS, "field 'ts': outside years 0001..9999");
    c->ev->ts_ms = ms;
    return DL_NONE;
}

static enum dl_reason check_amount(struct check *c, enum field f, bool optional)
{
    const struct jval *v = &c->f[f];
    if (v->type == J_ABSENT)
        return optional ? DL_NONE : missing(c, f);
    if (v->type != J_STRING && v->type != J_NUMBER)
        return expected(c, f, "a decimal string or number");
    static const char *const why[] = {
        [AMT_SYNTAX] = "expected a decimal number like \"59.90\"",
        [AMT_NEGATIVE] = "negative",
        [AMT_DECIMALS] = "more than two decimals",
        [AMT_RANGE] = "not below 10^12",
    };
    enum amount_err e = amount_parse(v->s, v->n, &c->ev->amount_cents);
    if (e != AMT_OK)
        return fail(c->detail, c->detail_len, DL_BAD_AMOUNT, "field '%s': %s", fname(f), why[e]);
    return DL_NONE;
}

static enum dl_reason check_number(struct check *c, enum field f, bool optional, double *out)
{
    const struct jval *v = &c->f[f];
    if (v->type == J_ABSENT)
        return optional ? DL_NONE : missing(c, f);
    if (v->type != J_NUMBER)
        return expected(c, f, "a number");
    /* yajl's number text is valid for strtod; the daemon keeps LC_NUMERIC "C". */
    double d = strtod(v->s, NULL);
    if (!isfinite(d))
        return bad_value(c, f, "out of range");
    *out = d + 0.0; /* -0 is 0 */
    return DL_NONE;
}

static enum dl_reason check_field(struct check *c, const struct field_rule *rule)
{
    enum field f = rule->f;
    const struct jval *v = &c->f[f];
    struct event *ev = c->ev;
    bool present;
    enum dl_reason r;

    switch (field_defs[f].kind) {
    case K_ID:
        return check_id(c, f, rule->optional, SIZE_MAX);
    case K_TEXT:
        if ((r = want_string(c, f, rule->optional, &present)) != DL_NONE || !present)
            return r;
        if (has_nul(v))
            return bad_value(c, f, "contains a NUL character");
        c->keep[c->nkeep++] = (struct keep){.off = field_defs[f].off, .s = v->s, .n = v->n};
        return DL_NONE;
    case K_DIRECTION:
        if ((r = want_string(c, f, rule->optional, &present)) != DL_NONE || !present)
            return r;
        if (v->n == 2 && memcmp(v->s, "in", 2) == 0)
            ev->direction = DIR_IN;
        else if (v->n == 3 && memcmp(v->s, "out", 3) == 0)
            ev->direction = DIR_OUT;
        else
            return bad_value(c, f, "expected \"in\" or \"out\"");
        return DL_NONE;
    case K_ROLE:
        if ((r = want_string(c, f, rule->optional, &present)) != DL_NONE || !present)
            return r;
        for (int i = 0; i < ROLE_COUNT; i++) {
            const char *name = review_role_name(i);
            if (strlen(name) == v->n && memcmp(name, v->s, v->n) == 0) {
                ev->role = i;
                return DL_NONE;
            }
        }
        return bad_value(c, f, "expected \"self\", \"manager\" or \"indirect_manager\"");
    case K_AMOUNT:
        return check_amount(c, f, rule->optional);
    case K_PERIOD:
        if ((r = want_string(c, f, rule->optional, &present)) != DL_NONE || !present)
            return r;
        if (has_nul(v) || period_from_label(v->s, &ev->period) != 0)
            return bad_value(c, f, "invalid period label");
        return DL_NONE;
    case K_NUMBER:
        if ((r = check_number(c, f, rule->optional, f == F_SCORE ? &ev->score : &ev->max)) !=
            DL_NONE)
            return r;
        if (f == F_MAX && !(ev->max > 0))
            return bad_value(c, f, "not above 0");
        return DL_NONE;
    case K_DATE:
        if ((r = want_string(c, f, rule->optional, &present)) != DL_NONE || !present)
            return r;
        if (has_nul(v) || period_date_parse(v->s, f == F_FROM ? &ev->from_day : &ev->to_day) != 0)
            return bad_value(c, f, "invalid date, expected YYYY-MM-DD");
        return DL_NONE;
    case K_SPECIAL:
        break;
    }
    return DL_NONE; /* type and ts are never in a type's field list */
}

static enum dl_reason check_cross(struct check *c, enum event_type t)
{
    const struct event *ev = c->ev;
    if (t == EV_REVIEW && (ev->score < 0 || ev->score > ev->max))
        return bad_value(c, F_SCORE, "outside 0..max");
    if (t == EV_ABSENCE && ev->from_day > ev->to_day)
        return bad_value(c, F_TO, "before 'from'");
    return DL_NONE;
}

static enum dl_reason check_future(struct check *c, const struct decode_opts *opts)
{
    int64_t ahead;
    if (!opts)
        return DL_NONE;
    if (__builtin_sub_overflow(c->ev->ts_ms, opts->now_ms, &ahead))
        ahead = c->ev->ts_ms > opts->now_ms ? INT64_MAX : INT64_MIN;
    if (ahead > opts->max_future_ms)
        return fail(c->detail, c->detail_len, DL_FUTURE_TS,
                    "field 'ts': %" PRId64 " s ahead of the wall clock, max_future is %" PRId64
                    " s",
                    ahead / 1000, opts->max_future_ms / 1000);
    return DL_NONE;
}

/* Copies the kept strings (and shop_id "default") into one arena owned by ev. */
static void build_arena(struct check *c)
{
    static const char default_shop[] = "default";
    struct event *ev = c->ev;
    size_t total = 0;
    bool shop = false;
    for (size_t i = 0; i < c->nkeep; i++) {
        total += c->keep[i].n + 1;
        shop |= c->keep[i].off == offsetof(struct event, shop_id);
    }
    if (!shop) {
        c->keep[c->nkeep++] = (struct keep){.off = offsetof(struct event, shop_id),
                                            .s = default_shop,
                                            .n = sizeof(default_shop) - 1};
        total += sizeof(default_shop);
    }
    char *a = xmalloc(total);
    ev->arena = a;
    for (size_t i = 0; i < c->nkeep; i++) {
        const struct keep *k = &c->keep[i];
        memcpy(a, k->s, k->n);
        a[k->n] = '\0';
        *(const char **)((char *)ev + k->off) = a;
        a += k->n + 1;
    }
}

static enum dl_reason check_all(struct check *c, enum event_topic topic,
                                const struct decode_opts *opts)
{
    struct event *ev = c->ev;
    enum event_type t = EV_MESSAGE;
    enum dl_reason r;

    if ((r = check_type(c, topic, &t)) != DL_NONE)
        return r;
    ev->topic = topic;
    ev->type = t;
    ev->amount_cents = -1;
    ev->direction = DIR_NONE;
    ev->max = t == EV_REVIEW ? 100 : 0;
    if ((r = check_id(c, F_EVENT_ID, false, EVENT_ID_MAX)) != DL_NONE ||
        (r = check_ts(c)) != DL_NONE || (r = check_id(c, F_SHOP_ID, true, SIZE_MAX)) != DL_NONE)
        return r;
    const struct type_spec *spec = &type_specs[t];
    for (size_t i = 0; i < spec->n; i++)
        if ((r = check_field(c, &spec->fields[i])) != DL_NONE)
            return r;
    if ((r = check_cross(c, t)) != DL_NONE || (r = check_future(c, opts)) != DL_NONE)
        return r;
    build_arena(c);
    return DL_NONE;
}

enum dl_reason decode_event(enum event_topic topic, const void *buf, size_t len,
                            const struct decode_opts *opts, struct event *ev, char *detail,
                            size_t detail_len)
{
    char scratch_inline[SCRATCH_INLINE];
    struct parse p = {.pending = -1};
    enum dl_reason r;

    *ev = (struct event){0};
    if (detail && detail_len)
        detail[0] = '\0';
    if (len > DECODE_MAX_BYTES)
        return fail(detail, detail_len, DL_TOO_LARGE,
                    "message of %zu bytes is over the limit of %d bytes", len, DECODE_MAX_BYTES);
    if (!buf)
        buf = "";

    p.cap = len + 1;
    p.scratch = p.cap <= sizeof(scratch_inline) ? scratch_inline : xmalloc(p.cap);
    p.slots = p.slots_inline;
    p.nslots = KEYSET_INLINE;
    p.maps = p.maps_inline;
    p.maps_cap = MAPSTACK_INLINE;

    r = parse_json(&p, buf, len, detail, detail_len);
    if (r == DL_NONE) {
        struct check c = {.f = p.fields, .ev = ev, .detail = detail, .detail_len = detail_len};
        r = check_all(&c, topic, opts);
    }
    parse_release(&p);
    if (p.scratch != scratch_inline)
        free(p.scratch);
    if (r != DL_NONE)
        event_release(ev);
    return r;
}

/* ---- Dead-letter record ---- */

/* Writes s as a JSON string body; invalid UTF-8 becomes U+FFFD. At most 6 bytes a byte. */
static char *json_escape(char *o, const char *str, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        if (c >= 0x80) {
            size_t k = utf8_seq_len(s + i, n - i);
            if (k) {
                memcpy(o, s + i, k);
                o += k;
                i += k;
            } else {
                memcpy(o, "\xef\xbf\xbd", 3);
                o += 3;
                i++;
            }
            continue;
        }
        i++;
        switch (c) {
        case '"':
            *o++ = '\\', *o++ = '"';
            break;
        case '\\':
            *o++ = '\\', *o++ = '\\';
            break;
        case '\n':
            *o++ = '\\', *o++ = 'n';
            break;
        case '\r':
            *o++ = '\\', *o++ = 'r';
            break;
        case '\t':
            *o++ = '\\', *o++ = 't';
            break;
        case '\b':
            *o++ = '\\', *o++ = 'b';
            break;
        case '\f':
            *o++ = '\\', *o++ = 'f';
            break;
        default:
            if (c < 0x20) {
                memcpy(o, "\\u00", 4);
                o[4] = hex[c >> 4];
                o[5] = hex[c & 15];
                o += 6;
            } else {
                *o++ = (char)c;
            }
        }
    }
    return o;
}

static char *base64(char *o, const unsigned char *s, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];
        *o++ = tab[v >> 18];
        *o++ = tab[v >> 12 & 63];
        *o++ = tab[v >> 6 & 63];
        *o++ = tab[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)s[i] << 16;
        *o++ = tab[v >> 18];
        *o++ = tab[v >> 12 & 63];
        *o++ = '=';
        *o++ = '=';
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8;
        *o++ = tab[v >> 18];
        *o++ = tab[v >> 12 & 63];
        *o++ = tab[v >> 6 & 63];
        *o++ = '=';
    }
    return o;
}

/* "2026-11-27T09:00:00.123Z"; buf >= 32. */
static void format_utc_ms(int64_t ms, char *buf, size_t buflen)
{
    int64_t sec = floor_div(ms, 1000), day = floor_div(sec, 86400), y;
    int64_t sod = sec - day * 86400;
    int m, d;
    civil_from_days(day, &y, &m, &d);
    snprintf(buf, buflen, "%04" PRId64 "-%02d-%02dT%02d:%02d:%02d.%03dZ", y, m, d,
             (int)(sod / 3600), (int)(sod / 60 % 60), (int)(sod % 60), (int)(ms - sec * 1000));
}

char *decode_deadletter_json(enum dl_reason reason, const char *detail, const char *topic,
                             int32_t partition, int64_t offset, int64_t ts_seen_ms,
                             const void *payload, size_t payload_len)
{
    const char *rname = dl_reason_name(reason);
    char ts[40], nums[64];
    size_t dn, tn;

    if (!rname)
        rname = "none";
    detail = detail ? detail : "";
    topic = topic ? topic : "";
    if (!payload)
        payload_len = 0;
    dn = strlen(detail);
    tn = strlen(topic);
    bool text = utf8_valid_prefix(payload, payload_len) == payload_len;
    if (dn > SIZE_MAX / 16 || tn > SIZE_MAX / 16 || payload_len > SIZE_MAX / 16)
        return NULL;
    /* Fixed text and numbers stay under 256 bytes; escaping grows a byte to 6 at most. */
    size_t cap = 256 + 6 * dn + 6 * tn + (text ? 6 * payload_len : 4 * (payload_len / 3 + 1));
    char *out = malloc(cap), *o = out;
    if (!out)
        return NULL;

    format_utc_ms(ts_seen_ms, ts, sizeof(ts));
    o += sprintf(o, "{\"reason\":\"%s\",\"detail\":\"", rname);
    o = json_escape(o, detail, dn);
    o += sprintf(o, "\",\"topic\":\"");
    o = json_escape(o, topic, tn);
    snprintf(nums, sizeof(nums), "%" PRId32 ",\"offset\":%" PRId64, partition, offset);
    o += sprintf(o, "\",\"partition\":%s,\"ts_seen\":\"%s\",\"%s\":\"", nums, ts,
                 text ? "payload" : "payload_b64");
    if (text)
        o = json_escape(o, payload, payload_len);
    else
        o = base64(o, payload, payload_len);
    memcpy(o, "\"}", 3);
    return out;
}
