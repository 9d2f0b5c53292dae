/* cli/evjson — see evjson.h. Field order follows events.md's tables (common fields,
 * then the type's), with ", " and ": " as the shipped example files write them. */
#include "cli/evjson.h"
#include "common/utf8.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static bool evjson_is_digit(char c)
{
    return c >= '0' && c <= '9';
}

bool evjson_is_number(const char *s)
{
    if (*s == '-')
        s++;
    if (*s == '0')
        s++;
    else if (evjson_is_digit(*s))
        while (evjson_is_digit(*s))
            s++;
    else
        return false;
    if (*s == '.') {
        s++;
        if (!evjson_is_digit(*s))
            return false;
        while (evjson_is_digit(*s))
            s++;
    }
    if (*s == 'e' || *s == 'E') {
        s++;
        if (*s == '+' || *s == '-')
            s++;
        if (!evjson_is_digit(*s))
            return false;
        while (evjson_is_digit(*s))
            s++;
    }
    return *s == '\0';
}

/* An integer epoch ms: an optional '-' and digits only. */
static bool evjson_is_integer(const char *s)
{
    if (*s == '-')
        s++;
    return *s && strspn(s, "0123456789") == strlen(s);
}

static void evjson_key(struct buf *out, const char *key)
{
    buf_adds(out, out->len && out->data[out->len - 1] != '{' ? ", \"" : "\"");
    buf_adds(out, key);
    buf_adds(out, "\": ");
}

static void evjson_open(struct buf *out, const struct evjson_common *c, const char *type)
{
    buf_addc(out, '{');
    evjson_key(out, "event_id");
    utf8_json_string(out, c->event_id);
    evjson_key(out, "type");
    utf8_json_string(out, type);
    evjson_key(out, "ts");
    if (evjson_is_integer(c->ts))
        buf_adds(out, c->ts);
    else
        utf8_json_string(out, c->ts);
    if (c->shop_id) {
        evjson_key(out, "shop_id");
        utf8_json_string(out, c->shop_id);
    }
    evjson_key(out, "agent_id");
    utf8_json_string(out, c->agent_id);
    evjson_key(out, "period");
    utf8_json_string(out, c->period);
}

int evjson_review(struct buf *out, const struct evjson_common *c, const char *item,
                  const char *score, const char *max, const char *role, const char *reviewer,
                  char *err, size_t errlen)
{
    if (!evjson_is_number(score)) {
        snprintf(err, errlen, "score '%s' of item '%s' is not a number", score, item);
        return -1;
    }
    if (max && !evjson_is_number(max)) {
        snprintf(err, errlen, "max '%s' is not a number", max);
        return -1;
    }
    evjson_open(out, c, "review");
    evjson_key(out, "item");
    utf8_json_string(out, item);
    evjson_key(out, "score");
    buf_adds(out, score);
    if (max) {
        evjson_key(out, "max");
        buf_adds(out, max);
    }
    evjson_key(out, "role");
    utf8_json_string(out, role);
    evjson_key(out, "reviewer");
    utf8_json_string(out, reviewer);
    buf_addc(out, '}');
    return 0;
}

void evjson_target(struct buf *out, const struct evjson_common *c, const char *amount)
{
    evjson_open(out, c, "target");
    evjson_key(out, "amount");
    utf8_json_string(out, amount);
    buf_addc(out, '}');
}

int evjson_check(const void *msg, size_t len, enum event_type want, const struct decode_opts *o,
                 struct event *ev, char *err, size_t errlen)
{
    char detail[512];
    enum dl_reason r = decode_event(TOPIC_REVIEWS, msg, len, o, ev, detail, sizeof(detail));
    if (r != DL_NONE) {
        snprintf(err, errlen, "%s (csmetricsd would dead-letter it as %s)", detail,
                 dl_reason_name(r));
        return -1;
    }
    if (ev->type != want) {
        snprintf(err, errlen, "a %s event where %s events are expected", event_type_name(ev->type),
                 event_type_name(want));
        event_release(ev);
        return -1;
    }
    return 0;
}

int evjson_split_item(const char *arg, char *item_buf, size_t item_len, const char **score,
                      char *err, size_t errlen)
{
    const char *eq = strrchr(arg, '=');
    if (!eq || eq == arg || !eq[1]) {
        snprintf(err, errlen, "--item wants ITEM=SCORE (e.g. follow_up=90), not '%s'", arg);
        return -1;
    }
    size_t n = (size_t)(eq - arg);
    if (n >= item_len) {
        snprintf(err, errlen, "--item '%s': item name longer than %zu bytes", arg, item_len - 1);
        return -1;
    }
    memcpy(item_buf, arg, n);
    item_buf[n] = '\0';
    *score = eq + 1;
    return 0;
}

void evjson_make_id(char *out, size_t outlen, int64_t now_ms, uint64_t rnd)
{
    snprintf(out, outlen, "csm-%" PRId64 "-%016" PRIx64, now_ms, rnd);
}
