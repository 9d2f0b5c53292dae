/* keys — see keys.h. */
#include "aggregator/keys.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool keys_must_escape(unsigned char c)
{
    return c == '%' || c == ':' || c == '{' || c == '}' || c <= 0x20 || c == 0x7f;
}

void keys_escape(struct buf *b, const char *id)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)id; *p; p++) {
        if (keys_must_escape(*p)) {
            char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            buf_add(b, e, 3);
        } else {
            buf_addc(b, (char)*p);
        }
    }
}

static int keys_hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

char *keys_unescape(const char *s, size_t n)
{
    char *out = xmalloc(n + 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '%') {
            out[o++] = s[i];
            continue;
        }
        int hi = i + 2 < n ? keys_hexval(s[i + 1]) : -1;
        int lo = i + 2 < n ? keys_hexval(s[i + 2]) : -1;
        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
            free(out);
            return NULL;
        }
        out[o++] = (char)(hi << 4 | lo);
        i += 2;
    }
    out[o] = '\0';
    return out;
}

uint64_t keys_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        h ^= *p;
        h *= 1099511628211ULL;
    }
    return h;
}

void keys_owner_tag(struct buf *b, const char *prefix, enum keys_owner o, const char *shop,
                    const char *agent)
{
    buf_adds(b, prefix);
    buf_adds(b, o == KEYS_AGENT ? "{a:" : o == KEYS_TEAM ? "{t:" : "{u:");
    keys_escape(b, shop);
    if (o == KEYS_AGENT) {
        buf_addc(b, ':');
        keys_escape(b, agent);
    }
    buf_addc(b, '}');
}

void keys_partition_tag(struct buf *b, const char *prefix, const char *topic, int32_t partition)
{
    buf_adds(b, prefix);
    buf_adds(b, "{p:");
    keys_escape(b, topic);
    buf_printf(b, ":%d}", (int)partition);
}

void keys_contact_parts(struct buf *tag, struct buf *suffix, const char *prefix, const char *shop,
                        const char *customer)
{
    size_t start = suffix->len;
    buf_addc(suffix, ':');
    keys_escape(suffix, shop);
    buf_addc(suffix, ':');
    keys_escape(suffix, customer);
    buf_adds(tag, prefix);
    buf_adds(tag, "{c:");
    buf_add_dec(tag, (int64_t)(keys_hash(suffix->data + start + 1) % KEYS_CONTACT_BUCKETS));
    buf_addc(tag, '}');
}

void keys_contact(struct buf *b, const char *prefix, const char *shop, const char *customer)
{
    struct buf suffix;
    buf_init(&suffix);
    keys_contact_parts(b, &suffix, prefix, shop, customer);
    buf_add(b, suffix.data, suffix.len);
    buf_release(&suffix);
}

void keys_contact_member(struct buf *b, int64_t ts_ms, uint64_t seq, const char *agent)
{
    if (ts_ms >= 0) {
        buf_add_dec_pad(b, (uint64_t)ts_ms, 13);
        buf_addc(b, ':');
        buf_add_dec_pad(b, seq, 20);
        buf_addc(b, ':');
    } else {
        buf_printf(b, "%013" PRId64 ":%020" PRIu64 ":", ts_ms, seq);
    }
    buf_adds(b, agent);
}

const char *keys_contact_agent(const char *member)
{
    const char *c1 = strchr(member, ':');
    const char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    return c2 ? c2 + 1 : NULL;
}

void keys_dedup(struct buf *b, const char *prefix, const char *event_id)
{
    buf_adds(b, prefix);
    buf_adds(b, "{d:");
    buf_add_dec(b, (int64_t)(keys_hash(event_id) % KEYS_DEDUP_BUCKETS));
    buf_adds(b, "}:");
    keys_escape(b, event_id);
}

void keys_rule_tag(struct buf *b, const char *prefix, const char *rule, const char *shop)
{
    buf_reset(b);
    buf_adds(b, prefix);
    buf_adds(b, "{x:");
    keys_escape(b, rule);
    buf_addc(b, ':');
    keys_escape(b, shop);
    buf_addc(b, '}');
}
