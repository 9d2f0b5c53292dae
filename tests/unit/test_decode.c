/* test_decode — consumers/decode.c and event.c against events.md: one case per rule with
 * its exact dead-letter reason and detail, every event type decoded field by field, the
 * worked example (tests/fixtures/decode/, copied from spec/example; run from the repo
 * root as make does), amounts, RFC 3339 times and the exact dead-letter JSON.
 * Table JSON is written with ' for " (the q() helper swaps them) unless marked raw. */
#include "consumers/decode.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "aggregator/period.h"
#include "consumers/event.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

#define NOW_MS 1795770000000LL /* 2026-11-27T09:00:00Z */
#define DAY_MS 86400000LL
#define FIXTURES "tests/fixtures/decode/"

static const struct decode_opts opts = {.now_ms = NOW_MS, .max_future_ms = DAY_MS};

/* The table's ' become ", so that JSON reads cleanly in C. The caller frees. */
static char *q(const char *s, bool raw)
{
    char *d = strdup(s);
    assert_non_null(d);
    for (char *p = d; !raw && *p; p++)
        if (*p == '\'')
            *p = '"';
    return d;
}

/* ---- Fragments of valid events ---- */

#define TS "'ts':'2026-08-03T10:00:00+08:00'"
#define CHAT_IDS "'conversation_id':'c1','agent_id':'x1','customer_id':'u1'"
#define MSG_BODY "'type':'message'," CHAT_IDS ",'direction':'in'"
/* A message with one more field (or a replaced one: event_id, ts). */
#define MSG(extra) "{'event_id':'e1'," TS "," MSG_BODY "," extra "}"
#define MSG_NO_ID(extra) "{" TS "," MSG_BODY "," extra "}"
#define MSG_NO_TS(extra) "{'event_id':'e1'," MSG_BODY "," extra "}"
#define HEAD(type) "{'event_id':'e1'," TS ",'type':'" type "',"
#define PAID(amount) HEAD("paid") "'order_id':'o1','amount':" amount "}"
#define REVIEW(rest) HEAD("review") "'agent_id':'x1','item':'execution','reviewer':'s1'," rest "}"
#define REVIEW_OK_BUT(rest) REVIEW("'period':'2026-08','role':'manager'," rest)
#define ABSENCE(rest) HEAD("absence") "'agent_id':'x1'," rest "}"

/* ---- Bad input: one case per rule ---- */

struct bad_case {
    const char *name;
    enum event_topic topic;
    const char *json;
    enum dl_reason reason;
    const char *detail; /* exact; NULL: not asserted */
    bool raw;           /* json holds real " and maybe invalid bytes */
};

/* clang-format off */
#define BAD(n, t, j, r, d) {.name = (n), .topic = (t), .json = (j), .reason = (r), .detail = (d)}
#define BAD_RAW(n, t, j, r, d) \
    {.name = (n), .topic = (t), .json = (j), .reason = (r), .detail = (d), .raw = true}
/* clang-format on */

static const struct bad_case bad_cases[] = {
    /* JSON validity */
    BAD("empty", TOPIC_CHAT, "", DL_INVALID_JSON, "invalid JSON: parse error: premature EOF"),
    BAD("only spaces", TOPIC_CHAT, "  ", DL_INVALID_JSON, NULL),
    BAD("truncated", TOPIC_CHAT, "{'event_id':'e1'", DL_INVALID_JSON,
        "invalid JSON: parse error: premature EOF"),
    BAD("trailing garbage", TOPIC_CHAT, MSG("'x':1") "x", DL_INVALID_JSON, NULL),
    BAD("two values", TOPIC_CHAT, MSG("'x':1") " {}", DL_INVALID_JSON, NULL),
    BAD("top-level array", TOPIC_CHAT, "[" MSG("'x':1") "]", DL_INVALID_JSON,
        "invalid JSON: top-level value is not an object"),
    BAD("top-level string", TOPIC_CHAT, "'x'", DL_INVALID_JSON,
        "invalid JSON: top-level value is not an object"),
    BAD("top-level number", TOPIC_CHAT, "42", DL_INVALID_JSON,
        "invalid JSON: top-level value is not an object"),
    BAD("top-level null", TOPIC_CHAT, "null", DL_INVALID_JSON,
        "invalid JSON: top-level value is not an object"),
    BAD("top-level true", TOPIC_CHAT, "true", DL_INVALID_JSON,
        "invalid JSON: top-level value is not an object"),
    BAD("duplicate key", TOPIC_CHAT, MSG("'agent_id':'x2'"), DL_INVALID_JSON,
        "invalid JSON: duplicate key 'agent_id'"),
    BAD("duplicate unknown key", TOPIC_CHAT, MSG("'x':1,'x':1"), DL_INVALID_JSON,
        "invalid JSON: duplicate key 'x'"),
    BAD("duplicate key, nested object", TOPIC_CHAT, MSG("'x':{'a':1,'b':{'c':1,'c':2}}"),
        DL_INVALID_JSON, "invalid JSON: duplicate key 'c'"),
    BAD("duplicate key, object in array", TOPIC_CHAT, MSG("'x':[{'a':1},{'a':1,'a':2}]"),
        DL_INVALID_JSON, "invalid JSON: duplicate key 'a'"),
    BAD("duplicate key after nested map closes", TOPIC_CHAT, MSG("'x':{'y':1},'y':2,'x':3"),
        DL_INVALID_JSON, "invalid JSON: duplicate key 'x'"),
    BAD("duplicate key spelled with an escape", TOPIC_CHAT, MSG("'\\u0078':1,'x':2"),
        DL_INVALID_JSON, "invalid JSON: duplicate key 'x'"),
    BAD_RAW("duplicate type before type check", TOPIC_CHAT, "{\"type\":\"nope\",\"type\":\"x\"}",
            DL_INVALID_JSON, "invalid JSON: duplicate key 'type'"),
    BAD("comment", TOPIC_CHAT, MSG("'x':1 /* c */"), DL_INVALID_JSON, NULL),
    BAD_RAW("single quotes", TOPIC_CHAT, "{'event_id':'e1'}", DL_INVALID_JSON,
            "invalid JSON near byte offset 2: lexical error: invalid char in json text"),
    BAD("trailing comma", TOPIC_CHAT, MSG("'x':1,"), DL_INVALID_JSON, NULL),
    BAD("leading zero", TOPIC_CHAT, MSG("'x':01"), DL_INVALID_JSON, NULL),
    BAD("NaN", TOPIC_CHAT, MSG("'x':NaN"), DL_INVALID_JSON, NULL),
    BAD("raw control character", TOPIC_CHAT, MSG("'x':'a\tb'"), DL_INVALID_JSON, NULL),
    BAD("bad escape", TOPIC_CHAT, MSG("'x':'\\q'"), DL_INVALID_JSON, NULL),
    BAD_RAW("invalid UTF-8 byte", TOPIC_CHAT, "{\"x\":\"\xff\"}", DL_INVALID_JSON,
            "invalid JSON: invalid UTF-8 at byte offset 6"),
    BAD_RAW("overlong UTF-8", TOPIC_CHAT, "{\"x\":\"\xc0\xaf\"}", DL_INVALID_JSON,
            "invalid JSON: invalid UTF-8 at byte offset 6"),
    BAD_RAW("UTF-8 surrogate", TOPIC_CHAT, "{\"x\":\"\xed\xa0\x80\"}", DL_INVALID_JSON,
            "invalid JSON: invalid UTF-8 at byte offset 6"),
    BAD_RAW("UTF-8 above U+10FFFF", TOPIC_CHAT, "{\"x\":\"\xf4\x90\x80\x80\"}", DL_INVALID_JSON,
            "invalid JSON: invalid UTF-8 at byte offset 6"),
    BAD_RAW("truncated UTF-8", TOPIC_CHAT, "{\"x\":\"\xe2\x82\"}", DL_INVALID_JSON,
            "invalid JSON: invalid UTF-8 at byte offset 6"),
    BAD_RAW("UTF-8 outside strings", TOPIC_CHAT, "{\"x\":1\xc2\xa0}", DL_INVALID_JSON, NULL),
    BAD("lone high surrogate escape", TOPIC_CHAT, MSG("'x':'\\ud800'"), DL_INVALID_JSON, NULL),
    BAD_RAW("lone low surrogate escape", TOPIC_CHAT, "{\"x\":\"\\udc00\"}", DL_INVALID_JSON,
            "invalid JSON: unpaired surrogate escape at byte offset 6"),
    BAD("high surrogate then non-surrogate", TOPIC_CHAT, MSG("'x':'\\ud83d\\u0041'"),
        DL_INVALID_JSON, NULL),

    /* type: first after JSON validity */
    BAD("type missing", TOPIC_CHAT, "{'event_id':'e1'," TS "," CHAT_IDS ",'direction':'in'}",
        DL_MISSING_FIELD, "missing field 'type'"),
    BAD("type before all others", TOPIC_CHAT, "{}", DL_MISSING_FIELD, "missing field 'type'"),
    BAD("type not a string", TOPIC_CHAT, "{'type':1}", DL_BAD_TYPE,
        "field 'type': expected a string"),
    BAD("type null", TOPIC_CHAT, "{'type':null}", DL_BAD_TYPE, "field 'type': expected a string"),
    BAD("type unknown", TOPIC_CHAT, "{'type':'nope'}", DL_UNKNOWN_TYPE,
        "field 'type': unknown type 'nope' for topic chat"),
    BAD("type unknown, long and odd", TOPIC_CHAT,
        "{'type':'ab\\u0000cd\\u00e9fghijklmnopqrstuvwxyz0123456789'}", DL_UNKNOWN_TYPE,
        "field 'type': unknown type 'ab?cd??fghijklmnopqrstuvwxyz0...' for topic chat"),
    BAD("type case", TOPIC_CHAT, "{'type':'Message'}", DL_UNKNOWN_TYPE, NULL),
    BAD("order type on chat", TOPIC_CHAT, "{'type':'created'}", DL_UNKNOWN_TYPE,
        "field 'type': unknown type 'created' for topic chat"),
    BAD("review type on chat", TOPIC_CHAT, "{'type':'review'}", DL_UNKNOWN_TYPE, NULL),
    BAD("message type on orders", TOPIC_ORDERS, MSG("'x':1"), DL_UNKNOWN_TYPE,
        "field 'type': unknown type 'message' for topic orders"),
    BAD("target type on orders", TOPIC_ORDERS, "{'type':'target'}", DL_UNKNOWN_TYPE, NULL),
    BAD("paid type on reviews", TOPIC_REVIEWS, PAID("'1'"), DL_UNKNOWN_TYPE,
        "field 'type': unknown type 'paid' for topic reviews"),
    BAD("complaint type on reviews", TOPIC_REVIEWS, "{'type':'complaint'}", DL_UNKNOWN_TYPE, NULL),

    /* event_id */
    BAD("event_id missing", TOPIC_CHAT, MSG_NO_ID("'x':1"), DL_MISSING_FIELD,
        "missing field 'event_id'"),
    BAD("event_id number", TOPIC_CHAT, MSG_NO_ID("'event_id':1"), DL_BAD_TYPE,
        "field 'event_id': expected a string"),
    BAD("event_id null", TOPIC_CHAT, MSG_NO_ID("'event_id':null"), DL_BAD_TYPE, NULL),
    BAD("event_id empty", TOPIC_CHAT, MSG_NO_ID("'event_id':''"), DL_BAD_VALUE,
        "field 'event_id': empty"),
    BAD("event_id 129 bytes", TOPIC_CHAT,
        MSG_NO_ID("'event_id':'0123456789012345678901234567890123456789012345678901234567890123"
                  "45678901234567890123456789012345678901234567890123456789012345678'"),
        DL_BAD_VALUE, "field 'event_id': longer than 128 bytes"),
    BAD("event_id 129 bytes of UTF-8", TOPIC_CHAT,
        MSG_NO_ID("'event_id':'€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€€'"), DL_BAD_VALUE,
        "field 'event_id': longer than 128 bytes"),
    BAD("event_id NUL", TOPIC_CHAT, MSG_NO_ID("'event_id':'e\\u00001'"), DL_BAD_VALUE,
        "field 'event_id': contains a NUL character"),

    /* ts */
    BAD("ts missing", TOPIC_CHAT, MSG_NO_TS("'x':1"), DL_MISSING_FIELD, "missing field 'ts'"),
    BAD("ts bool", TOPIC_CHAT, MSG_NO_TS("'ts':true"), DL_BAD_TYPE,
        "field 'ts': expected RFC 3339 string or integer epoch ms"),
    BAD("ts null", TOPIC_CHAT, MSG_NO_TS("'ts':null"), DL_BAD_TYPE, NULL),
    BAD("ts object", TOPIC_CHAT, MSG_NO_TS("'ts':{}"), DL_BAD_TYPE, NULL),
    BAD("ts array", TOPIC_CHAT, MSG_NO_TS("'ts':[1785722400000]"), DL_BAD_TYPE, NULL),
    BAD("ts number with fraction", TOPIC_CHAT, MSG_NO_TS("'ts':1785722400000.5"), DL_BAD_TS,
        "field 'ts': epoch ms must be an integer"),
    BAD("ts number with zero fraction", TOPIC_CHAT, MSG_NO_TS("'ts':1785722400000.0"), DL_BAD_TS,
        NULL),
    BAD("ts number with exponent", TOPIC_CHAT, MSG_NO_TS("'ts':1.7857224e12"), DL_BAD_TS,
        "field 'ts': epoch ms must be an integer"),
    BAD("ts integer with exponent", TOPIC_CHAT, MSG_NO_TS("'ts':17857224E5"), DL_BAD_TS, NULL),
    BAD("ts epoch ms as a string", TOPIC_CHAT, MSG_NO_TS("'ts':'1785722400000'"), DL_BAD_TS,
        "field 'ts': not an RFC 3339 date-time with offset"),
    BAD("ts integer beyond year 9999", TOPIC_CHAT, MSG_NO_TS("'ts':253402300800000"), DL_BAD_TS,
        "field 'ts': outside years 0001..9999"),
    BAD("ts integer before year 1", TOPIC_CHAT, MSG_NO_TS("'ts':-62135596800001"), DL_BAD_TS,
        "field 'ts': outside years 0001..9999"),
    BAD("ts integer beyond int64", TOPIC_CHAT, MSG_NO_TS("'ts':99999999999999999999999"), DL_BAD_TS,
        "field 'ts': outside years 0001..9999"),
    BAD("ts string year 0", TOPIC_CHAT, MSG_NO_TS("'ts':'0000-12-31T23:59:59Z'"), DL_BAD_TS,
        "field 'ts': outside years 0001..9999"),
    BAD("ts without offset", TOPIC_CHAT, MSG_NO_TS("'ts':'2026-08-03T10:00:00'"), DL_BAD_TS,
        "field 'ts': not an RFC 3339 date-time with offset"),
    BAD("ts date only", TOPIC_CHAT, MSG_NO_TS("'ts':'2026-08-03'"), DL_BAD_TS, NULL),
    BAD("ts space separator", TOPIC_CHAT, MSG_NO_TS("'ts':'2026-08-03 10:00:00Z'"), DL_BAD_TS,
        NULL),
    BAD("ts without seconds", TOPIC_CHAT, MSG_NO_TS("'ts':'2026-08-03T10:00+08:00'"), DL_BAD_TS,
        NULL),
    BAD("ts month 13", TOPIC_CHAT, MSG_NO_TS("'ts':'2026-13-03T10:00:00Z'"), DL_BAD_TS, NULL),
    BAD("ts month 0", TOPIC_CHAT, MSG_NO_TS("'ts':'2026-00-03T10:00:00Z'"), DL_BAD_TS, NULL),
    BAD("ts day 0", TOPIC_CHAT, MSG_NO_TS("'ts':'2026-08-00T10:00:00Z'"), DL_BAD_TS, NULL),
    BAD("ts 31 April", TOPIC_CHAT, MSG_NO_TS("'ts':'2026-04-31T10:00:00Z'"), DL_BAD_TS, NULL),
    BAD("ts 29 Feb, common year", TOPIC_CHAT, MSG_NO_TS("'ts':'2026-02-29T10:00:00Z'"), DL_BAD_TS,
        NULL),
    BAD("ts 29 Feb 2100", TOPIC_CHAT, MSG_NO_TS("'ts':'2100-02-29T10:00:00Z'"), DL_BAD_TS, NULL),
    BAD("ts hour 24", TOPIC_CHAT, MSG_NO_TS("'ts':'2026-08-03T24:00:00Z'"), DL_BAD_TS, NULL),
    BAD("ts minute 60", TOPIC_CHAT, MSG_NO_TS("'ts':'2026-08-03T10:60:00Z'"), DL_BAD_TS, NULL),
    BAD("ts leap second", TOPIC_CHAT, MSG_NO_TS("'ts':'2026-08-03T23:59:60Z'"), DL_BAD_TS, NULL),
    BAD("ts offset hour 24", TOPIC_CHAT, MSG_NO_TS("'ts':'2026-08-03T10:00:00+24:00'"), DL_BAD_TS,
        NULL),
    BAD("ts offset minute 60", TOPIC_CHAT, MSG_NO_TS("'ts':'2026-08-03T10:00:00+08:60'"), DL_BAD_TS,
        NULL),
    BAD("ts offset without colon", TOPIC_CHAT, MSG_NO_TS("'ts':'2026-08-03T10:00:00+0800'"),
        DL_BAD_TS, NULL),
    BAD("ts offset hours only", TOPIC_CHAT, MSG_NO_TS("'ts':'2026-08-03T10:00:00+08'"), DL_BAD_TS,
        NULL),
    BAD("ts fraction of 10 digits", TOPIC_CHAT, MSG_NO_TS("'ts':'2026-08-03T10:00:00.1234567890Z'"),
        DL_BAD_TS, NULL),
    BAD("ts empty fraction", TOPIC_CHAT, MSG_NO_TS("'ts':'2026-08-03T10:00:00.Z'"), DL_BAD_TS,
        NULL),
    BAD("ts comma fraction", TOPIC_CHAT, MSG_NO_TS("'ts':'2026-08-03T10:00:00,5Z'"), DL_BAD_TS,
        NULL),
    BAD("ts trailing text", TOPIC_CHAT, MSG_NO_TS("'ts':'2026-08-03T10:00:00Zx'"), DL_BAD_TS, NULL),
    BAD("ts two-digit year", TOPIC_CHAT, MSG_NO_TS("'ts':'26-08-03T10:00:00Z'"), DL_BAD_TS, NULL),
    BAD("ts with NUL", TOPIC_CHAT, MSG_NO_TS("'ts':'2026-08-03T10:00:00Z\\u0000'"), DL_BAD_TS,
        NULL),
    BAD("ts more than max_future ahead", TOPIC_CHAT, MSG_NO_TS("'ts':1795856400001"), DL_FUTURE_TS,
        "field 'ts': 86400 s ahead of the wall clock, max_future is 86400 s"),
    BAD("ts far future, string", TOPIC_CHAT, MSG_NO_TS("'ts':'2027-01-01T00:00:00Z'"), DL_FUTURE_TS,
        NULL),

    /* shop_id */
    BAD("shop_id number", TOPIC_CHAT, MSG("'shop_id':7"), DL_BAD_TYPE,
        "field 'shop_id': expected a string"),
    BAD("shop_id null", TOPIC_CHAT, MSG("'shop_id':null"), DL_BAD_TYPE, NULL),
    BAD("shop_id empty", TOPIC_CHAT, MSG("'shop_id':''"), DL_BAD_VALUE, "field 'shop_id': empty"),
    BAD("shop_id NUL", TOPIC_CHAT, MSG("'shop_id':'\\u0000'"), DL_BAD_VALUE,
        "field 'shop_id': contains a NUL character"),

    /* cs.chat */
    BAD("message conversation_id missing", TOPIC_CHAT,
        HEAD("message") "'agent_id':'x1','customer_id':'u1','direction':'in'}", DL_MISSING_FIELD,
        "missing field 'conversation_id'"),
    BAD("message agent_id missing", TOPIC_CHAT,
        HEAD("message") "'conversation_id':'c1','customer_id':'u1','direction':'in'}",
        DL_MISSING_FIELD, "missing field 'agent_id'"),
    BAD("message customer_id missing", TOPIC_CHAT,
        HEAD("message") "'conversation_id':'c1','agent_id':'x1','direction':'in'}",
        DL_MISSING_FIELD, "missing field 'customer_id'"),
    BAD("message direction missing", TOPIC_CHAT, HEAD("message") CHAT_IDS "}", DL_MISSING_FIELD,
        "missing field 'direction'"),
    BAD("message direction sideways", TOPIC_CHAT,
        HEAD("message") CHAT_IDS ",'direction':'sideways'}", DL_BAD_VALUE,
        "field 'direction': expected \"in\" or \"out\""),
    BAD("message direction upper case", TOPIC_CHAT, HEAD("message") CHAT_IDS ",'direction':'IN'}",
        DL_BAD_VALUE, NULL),
    BAD("message direction empty", TOPIC_CHAT, HEAD("message") CHAT_IDS ",'direction':''}",
        DL_BAD_VALUE, NULL),
    BAD("message direction NUL", TOPIC_CHAT, HEAD("message") CHAT_IDS ",'direction':'in\\u0000'}",
        DL_BAD_VALUE, NULL),
    BAD("message direction bool", TOPIC_CHAT, HEAD("message") CHAT_IDS ",'direction':true}",
        DL_BAD_TYPE, "field 'direction': expected a string"),
    BAD("message agent_id number", TOPIC_CHAT,
        HEAD("message") "'conversation_id':'c1','agent_id':1,'customer_id':'u1','direction':'in'}",
        DL_BAD_TYPE, "field 'agent_id': expected a string"),
    BAD("message customer_id empty", TOPIC_CHAT,
        HEAD("message") "'conversation_id':'c1','agent_id':'x1','customer_id':'','direction':'in'}",
        DL_BAD_VALUE, "field 'customer_id': empty"),
    BAD("message conversation_id array", TOPIC_CHAT,
        HEAD("message") "'conversation_id':['c1'],'agent_id':'x1','customer_id':'u1',"
                        "'direction':'in'}",
        DL_BAD_TYPE, "field 'conversation_id': expected a string"),
    BAD("transfer to_agent_id missing", TOPIC_CHAT, HEAD("transfer") CHAT_IDS "}", DL_MISSING_FIELD,
        "missing field 'to_agent_id'"),
    BAD("transfer to_agent_id NUL", TOPIC_CHAT,
        HEAD("transfer") CHAT_IDS ",'to_agent_id':'x\\u00002'}", DL_BAD_VALUE,
        "field 'to_agent_id': contains a NUL character"),
    BAD("transfer conversation_id missing", TOPIC_CHAT,
        HEAD("transfer") "'agent_id':'x1','to_agent_id':'x2','customer_id':'u1'}", DL_MISSING_FIELD,
        "missing field 'conversation_id'"),
    BAD("complaint agent_id missing", TOPIC_CHAT, HEAD("complaint") "'customer_id':'u1'}",
        DL_MISSING_FIELD, "missing field 'agent_id'"),
    BAD("complaint customer_id missing", TOPIC_CHAT, HEAD("complaint") "'agent_id':'x1'}",
        DL_MISSING_FIELD, "missing field 'customer_id'"),
    BAD("complaint conversation_id present but empty", TOPIC_CHAT,
        HEAD("complaint") "'conversation_id':'','agent_id':'x1','customer_id':'u1'}", DL_BAD_VALUE,
        "field 'conversation_id': empty"),
    BAD("complaint conversation_id null", TOPIC_CHAT,
        HEAD("complaint") "'conversation_id':null,'agent_id':'x1','customer_id':'u1'}", DL_BAD_TYPE,
        "field 'conversation_id': expected a string"),

    /* shop.orders */
    BAD("created order_id missing", TOPIC_ORDERS,
        HEAD("created") "'customer_id':'u1','amount':'1'}", DL_MISSING_FIELD,
        "missing field 'order_id'"),
    BAD("created customer_id missing", TOPIC_ORDERS,
        HEAD("created") "'order_id':'o1','amount':'1'}", DL_MISSING_FIELD,
        "missing field 'customer_id'"),
    BAD("created amount missing", TOPIC_ORDERS,
        HEAD("created") "'order_id':'o1','customer_id':'u1'}", DL_MISSING_FIELD,
        "missing field 'amount'"),
    BAD("created agent_id empty", TOPIC_ORDERS,
        HEAD("created") "'order_id':'o1','customer_id':'u1','amount':'1','agent_id':''}",
        DL_BAD_VALUE, "field 'agent_id': empty"),
    BAD("created agent_id number", TOPIC_ORDERS,
        HEAD("created") "'order_id':'o1','customer_id':'u1','amount':'1','agent_id':5}",
        DL_BAD_TYPE, "field 'agent_id': expected a string"),
    BAD("paid order_id object", TOPIC_ORDERS, HEAD("paid") "'order_id':{},'amount':'1'}",
        DL_BAD_TYPE, "field 'order_id': expected a string"),
    BAD("refunded amount missing", TOPIC_ORDERS, HEAD("refunded") "'order_id':'o1'}",
        DL_MISSING_FIELD, "missing field 'amount'"),
    BAD("cancelled order_id missing", TOPIC_ORDERS, HEAD("cancelled") "'x':1}", DL_MISSING_FIELD,
        "missing field 'order_id'"),
    BAD("flagged reason missing", TOPIC_ORDERS, HEAD("flagged") "'order_id':'o1'}",
        DL_MISSING_FIELD, "missing field 'reason'"),
    BAD("flagged reason number", TOPIC_ORDERS, HEAD("flagged") "'order_id':'o1','reason':1}",
        DL_BAD_TYPE, "field 'reason': expected a string"),
    BAD("flagged reason NUL", TOPIC_ORDERS, HEAD("flagged") "'order_id':'o1','reason':'a\\u0000'}",
        DL_BAD_VALUE, "field 'reason': contains a NUL character"),

    /* amount */
    BAD("amount three decimals", TOPIC_ORDERS, PAID("'59.901'"), DL_BAD_AMOUNT,
        "field 'amount': more than two decimals"),
    BAD("amount number three decimals", TOPIC_ORDERS, PAID("0.001"), DL_BAD_AMOUNT,
        "field 'amount': more than two decimals"),
    BAD("amount no integer part", TOPIC_ORDERS, PAID("'.5'"), DL_BAD_AMOUNT,
        "field 'amount': expected a decimal number like \"59.90\""),
    BAD("amount exponent string", TOPIC_ORDERS, PAID("'1e2'"), DL_BAD_AMOUNT, NULL),
    BAD("amount exponent, zero exponent", TOPIC_ORDERS, PAID("0.10e0"), DL_BAD_AMOUNT, NULL),
    BAD("amount exponent number", TOPIC_ORDERS, PAID("1e2"), DL_BAD_AMOUNT,
        "field 'amount': expected a decimal number like \"59.90\""),
    BAD("amount negative number", TOPIC_ORDERS, PAID("-1"), DL_BAD_AMOUNT,
        "field 'amount': negative"),
    BAD("amount negative string", TOPIC_ORDERS, PAID("'-0.50'"), DL_BAD_AMOUNT,
        "field 'amount': negative"),
    BAD("amount letters", TOPIC_ORDERS, PAID("'abc'"), DL_BAD_AMOUNT, NULL),
    BAD("amount empty", TOPIC_ORDERS, PAID("''"), DL_BAD_AMOUNT, NULL),
    BAD("amount trailing dot", TOPIC_ORDERS, PAID("'59.'"), DL_BAD_AMOUNT, NULL),
    BAD("amount plus sign", TOPIC_ORDERS, PAID("'+5'"), DL_BAD_AMOUNT, NULL),
    BAD("amount space", TOPIC_ORDERS, PAID("' 59.90'"), DL_BAD_AMOUNT, NULL),
    BAD("amount comma", TOPIC_ORDERS, PAID("'59,90'"), DL_BAD_AMOUNT, NULL),
    BAD("amount currency", TOPIC_ORDERS, PAID("'¥59.90'"), DL_BAD_AMOUNT, NULL),
    BAD("amount 10^12", TOPIC_ORDERS, PAID("'1000000000000'"), DL_BAD_AMOUNT,
        "field 'amount': not below 10^12"),
    BAD("amount 10^12 as number", TOPIC_ORDERS, PAID("1000000000000.00"), DL_BAD_AMOUNT, NULL),
    BAD("amount huge", TOPIC_ORDERS, PAID("'99999999999999999999999999.5'"), DL_BAD_AMOUNT, NULL),
    BAD("amount bool", TOPIC_ORDERS, PAID("true"), DL_BAD_TYPE,
        "field 'amount': expected a decimal string or number"),
    BAD("amount null", TOPIC_ORDERS, PAID("null"), DL_BAD_TYPE, NULL),
    BAD("amount object", TOPIC_ORDERS, PAID("{'v':1}"), DL_BAD_TYPE, NULL),
    BAD("amount array", TOPIC_ORDERS, PAID("[1]"), DL_BAD_TYPE, NULL),

    /* cs.reviews: review */
    BAD("review agent_id missing", TOPIC_REVIEWS,
        HEAD("review") "'period':'2026-08','item':'i','score':1,'role':'self','reviewer':'s'}",
        DL_MISSING_FIELD, "missing field 'agent_id'"),
    BAD("review period missing", TOPIC_REVIEWS, REVIEW("'role':'manager','score':8"),
        DL_MISSING_FIELD, "missing field 'period'"),
    BAD("review period invalid", TOPIC_REVIEWS,
        REVIEW("'period':'2026-13','role':'manager','score':8"), DL_BAD_VALUE,
        "field 'period': invalid period label"),
    BAD("review period week 54", TOPIC_REVIEWS,
        REVIEW("'period':'2026-W54','role':'manager','score':8"), DL_BAD_VALUE, NULL),
    BAD("review period with NUL", TOPIC_REVIEWS,
        REVIEW("'period':'2026-08\\u0000x','role':'manager','score':8"), DL_BAD_VALUE,
        "field 'period': invalid period label"),
    BAD("review period number", TOPIC_REVIEWS, REVIEW("'period':2026,'role':'manager','score':8"),
        DL_BAD_TYPE, "field 'period': expected a string"),
    BAD("review item missing", TOPIC_REVIEWS,
        HEAD("review") "'agent_id':'x1','period':'2026-08','score':1,'role':'self','reviewer':'s'}",
        DL_MISSING_FIELD, "missing field 'item'"),
    BAD("review score missing", TOPIC_REVIEWS, REVIEW_OK_BUT("'max':10"), DL_MISSING_FIELD,
        "missing field 'score'"),
    BAD("review score string", TOPIC_REVIEWS, REVIEW_OK_BUT("'score':'8'"), DL_BAD_TYPE,
        "field 'score': expected a number"),
    BAD("review score null", TOPIC_REVIEWS, REVIEW_OK_BUT("'score':null"), DL_BAD_TYPE, NULL),
    BAD("review max string", TOPIC_REVIEWS, REVIEW_OK_BUT("'score':8,'max':'10'"), DL_BAD_TYPE,
        "field 'max': expected a number"),
    BAD("review max 0", TOPIC_REVIEWS, REVIEW_OK_BUT("'score':0,'max':0"), DL_BAD_VALUE,
        "field 'max': not above 0"),
    BAD("review max negative", TOPIC_REVIEWS, REVIEW_OK_BUT("'score':0,'max':-10"), DL_BAD_VALUE,
        "field 'max': not above 0"),
    BAD("review max overflow", TOPIC_REVIEWS, REVIEW_OK_BUT("'score':0,'max':1e999"), DL_BAD_VALUE,
        "field 'max': out of range"),
    BAD("review score negative", TOPIC_REVIEWS, REVIEW_OK_BUT("'score':-1,'max':10"), DL_BAD_VALUE,
        "field 'score': outside 0..max"),
    BAD("review score above max", TOPIC_REVIEWS, REVIEW_OK_BUT("'score':10.5,'max':10"),
        DL_BAD_VALUE, "field 'score': outside 0..max"),
    BAD("review score above default max", TOPIC_REVIEWS, REVIEW_OK_BUT("'score':100.01"),
        DL_BAD_VALUE, "field 'score': outside 0..max"),
    BAD("review role missing", TOPIC_REVIEWS, REVIEW("'period':'2026-08','score':8"),
        DL_MISSING_FIELD, "missing field 'role'"),
    BAD("review role unknown", TOPIC_REVIEWS, REVIEW("'period':'2026-08','score':8,'role':'boss'"),
        DL_BAD_VALUE, "field 'role': expected \"self\", \"manager\" or \"indirect_manager\""),
    BAD("review role empty", TOPIC_REVIEWS, REVIEW("'period':'2026-08','score':8,'role':''"),
        DL_BAD_VALUE, NULL),
    BAD("review role bool", TOPIC_REVIEWS, REVIEW("'period':'2026-08','score':8,'role':false"),
        DL_BAD_TYPE, "field 'role': expected a string"),
    BAD("review reviewer missing", TOPIC_REVIEWS,
        HEAD("review") "'agent_id':'x1','period':'2026-08','item':'i','score':1,'role':'self'}",
        DL_MISSING_FIELD, "missing field 'reviewer'"),
    BAD("review reviewer number", TOPIC_REVIEWS,
        HEAD("review") "'agent_id':'x1','period':'2026-08','item':'i','score':1,'role':'self',"
                       "'reviewer':3}",
        DL_BAD_TYPE, "field 'reviewer': expected a string"),
    BAD("review item empty", TOPIC_REVIEWS,
        HEAD("review") "'agent_id':'x1','period':'2026-08','item':'','score':1,'role':'self',"
                       "'reviewer':'s'}",
        DL_BAD_VALUE, "field 'item': empty"),

    /* target */
    BAD("target amount bad", TOPIC_REVIEWS,
        HEAD("target") "'agent_id':'x1','period':'2026-08','amount':'1,000'}", DL_BAD_AMOUNT,
        "field 'amount': expected a decimal number like \"59.90\""),
    BAD("target amount precise", TOPIC_REVIEWS,
        HEAD("target") "'agent_id':'x1','period':'2026-08','amount':1000.005}", DL_BAD_AMOUNT,
        "field 'amount': more than two decimals"),
    BAD("target period missing", TOPIC_REVIEWS, HEAD("target") "'agent_id':'x1','amount':'1'}",
        DL_MISSING_FIELD, "missing field 'period'"),
    BAD("target period invalid", TOPIC_REVIEWS,
        HEAD("target") "'agent_id':'x1','period':'2026-Q5','amount':'1'}", DL_BAD_VALUE,
        "field 'period': invalid period label"),
    BAD("target amount missing", TOPIC_REVIEWS,
        HEAD("target") "'agent_id':'x1','period':'2026-08'}", DL_MISSING_FIELD,
        "missing field 'amount'"),

    /* absence */
    BAD("absence from missing", TOPIC_REVIEWS, ABSENCE("'to':'2026-08-14'"), DL_MISSING_FIELD,
        "missing field 'from'"),
    BAD("absence to missing", TOPIC_REVIEWS, ABSENCE("'from':'2026-08-10'"), DL_MISSING_FIELD,
        "missing field 'to'"),
    BAD("absence from invalid", TOPIC_REVIEWS, ABSENCE("'from':'2026-02-30','to':'2026-08-14'"),
        DL_BAD_VALUE, "field 'from': invalid date, expected YYYY-MM-DD"),
    BAD("absence to with slashes", TOPIC_REVIEWS, ABSENCE("'from':'2026-08-10','to':'2026/08/14'"),
        DL_BAD_VALUE, "field 'to': invalid date, expected YYYY-MM-DD"),
    BAD("absence to with time", TOPIC_REVIEWS,
        ABSENCE("'from':'2026-08-10','to':'2026-08-14T00:00:00Z'"), DL_BAD_VALUE, NULL),
    BAD("absence from number", TOPIC_REVIEWS, ABSENCE("'from':20260810,'to':'2026-08-14'"),
        DL_BAD_TYPE, "field 'from': expected a string"),
    BAD("absence from after to", TOPIC_REVIEWS, ABSENCE("'from':'2026-08-15','to':'2026-08-14'"),
        DL_BAD_VALUE, "field 'to': before 'from'"),
    BAD("absence agent_id missing", TOPIC_REVIEWS,
        HEAD("absence") "'from':'2026-08-10','to':'2026-08-14'}", DL_MISSING_FIELD,
        "missing field 'agent_id'"),

    /* the order of checks is fixed */
    BAD("order: type before event_id", TOPIC_CHAT, "{'type':'bogus','event_id':''}",
        DL_UNKNOWN_TYPE, NULL),
    BAD("order: event_id before ts", TOPIC_CHAT, "{'event_id':'','ts':true," MSG_BODY "}",
        DL_BAD_VALUE, "field 'event_id': empty"),
    BAD("order: ts before shop_id", TOPIC_CHAT, MSG_NO_TS("'ts':'x','shop_id':''"), DL_BAD_TS,
        NULL),
    BAD("order: shop_id before type fields", TOPIC_CHAT,
        HEAD("message") "'shop_id':'','direction':'x'}", DL_BAD_VALUE, "field 'shop_id': empty"),
    BAD("order: fields in events.md order", TOPIC_ORDERS,
        HEAD("created") "'amount':'x','customer_id':7}", DL_MISSING_FIELD,
        "missing field 'order_id'"),
    BAD("order: future last", TOPIC_ORDERS, "{'event_id':'e1','ts':1900000000000,'type':'paid'}",
        DL_MISSING_FIELD, "missing field 'order_id'"),
    BAD("order: score range after the single fields", TOPIC_REVIEWS,
        REVIEW("'period':'2026-08','score':500,'role':'boss'"), DL_BAD_VALUE,
        "field 'role': expected \"self\", \"manager\" or \"indirect_manager\""),
};

static void test_bad(void **state)
{
    const struct bad_case *c = *state;
    char *json = q(c->json, c->raw);
    struct event ev;
    char detail[256];

    memset(&ev, 0x5a, sizeof(ev)); /* the decoder must overwrite garbage */
    enum dl_reason r =
        decode_event(c->topic, json, strlen(json), &opts, &ev, detail, sizeof(detail));
    if (r != c->reason)
        fail_msg("%s: reason %s, want %s (detail: %s)", c->name, dl_reason_name(r),
                 dl_reason_name(c->reason), detail);
    if (c->detail && strcmp(detail, c->detail) != 0)
        fail_msg("%s: detail\n  got  \"%s\"\n  want \"%s\"", c->name, detail, c->detail);
    assert_true(detail[0] != '\0');
    assert_null(ev.arena);
    assert_null(ev.event_id);
    assert_int_equal(ev.ts_ms, 0);
    free(json);
}

/* ---- Good input, decoded field by field ---- */

struct good_case {
    const char *name;
    enum event_topic topic;
    const char *json;
    struct event want;        /* NULL strings: absent; arena unused */
    const char *period_label; /* review, target */
    int64_t period_start_ms;  /* checked when not 0 (zone UTC) */
};

#define TS_MS 1785722400000LL /* 2026-08-03T10:00:00+08:00 */
/* want: event_id "e1" and shop_id "default" unless given; amount_cents checked for the
 * types that carry one, else it must be -1. */
/* clang-format off */
#define EV(...) {__VA_ARGS__}
#define GOOD(n, t, j, w) {.name = (n), .topic = (t), .json = (j), .want = w}
#define GOOD_P(n, t, j, w, label, start) \
    {.name = (n), .topic = (t), .json = (j), .want = w, .period_label = (label), \
     .period_start_ms = (start)}
/* clang-format on */

static const struct good_case good_cases[] = {
    GOOD("message in", TOPIC_CHAT, MSG("'shop_id':'demo'"),
         EV(.topic = TOPIC_CHAT, .type = EV_MESSAGE, .ts_ms = TS_MS, .shop_id = "demo",
            .conversation_id = "c1", .agent_id = "x1", .customer_id = "u1", .direction = DIR_IN)),
    GOOD("message out, ts Z with fraction", TOPIC_CHAT,
         "{'event_id':'e1','ts':'2026-08-03T02:00:00.987Z','type':'message'," CHAT_IDS
         ",'direction':'out'}",
         EV(.topic = TOPIC_CHAT, .type = EV_MESSAGE, .ts_ms = TS_MS + 987, .conversation_id = "c1",
            .agent_id = "x1", .customer_id = "u1", .direction = DIR_OUT)),
    GOOD("message, ts lower-case t and z, 9-digit fraction truncated", TOPIC_CHAT,
         "{'event_id':'e1','ts':'2026-08-03t02:00:00.987654321z','type':'message'," CHAT_IDS
         ",'direction':'out'}",
         EV(.topic = TOPIC_CHAT, .type = EV_MESSAGE, .ts_ms = TS_MS + 987, .conversation_id = "c1",
            .agent_id = "x1", .customer_id = "u1", .direction = DIR_OUT)),
    GOOD("message, ts epoch ms integer", TOPIC_CHAT,
         "{'event_id':'e1','ts':1785722400123,'type':'message'," CHAT_IDS ",'direction':'in'}",
         EV(.topic = TOPIC_CHAT, .type = EV_MESSAGE, .ts_ms = TS_MS + 123, .conversation_id = "c1",
            .agent_id = "x1", .customer_id = "u1", .direction = DIR_IN)),
    GOOD("message, ts negative offset", TOPIC_CHAT,
         "{'event_id':'e1','ts':'2026-08-02T20:30:00.1-05:30','type':'message'," CHAT_IDS
         ",'direction':'in'}",
         EV(.topic = TOPIC_CHAT, .type = EV_MESSAGE, .ts_ms = TS_MS + 100, .conversation_id = "c1",
            .agent_id = "x1", .customer_id = "u1", .direction = DIR_IN)),
    GOOD("message, ts exactly max_future ahead", TOPIC_CHAT,
         "{'event_id':'e1','ts':1795856400000,'type':'message'," CHAT_IDS ",'direction':'in'}",
         EV(.topic = TOPIC_CHAT, .type = EV_MESSAGE, .ts_ms = NOW_MS + DAY_MS,
            .conversation_id = "c1", .agent_id = "x1", .customer_id = "u1", .direction = DIR_IN)),
    GOOD("message, unknown fields of every JSON type ignored", TOPIC_CHAT,
         MSG("'extra':{'amount':'abc','nested':[1,{'x':null},[true,false]],'x':{'x':{}}},"
             "'list':[],'n':-1.5e-3,'b':false,'z':null,'amount':'not checked on a message',"
             "'u':'\\u00e9\\ud83d\\ude00\\\\u0041'"),
         EV(.topic = TOPIC_CHAT, .type = EV_MESSAGE, .ts_ms = TS_MS, .conversation_id = "c1",
            .agent_id = "x1", .customer_id = "u1", .direction = DIR_IN)),
    GOOD("message, same key in sibling objects", TOPIC_CHAT,
         MSG("'a':{'k':1},'b':{'k':1},'c':[{'k':1},{'k':2}]"),
         EV(.topic = TOPIC_CHAT, .type = EV_MESSAGE, .ts_ms = TS_MS, .conversation_id = "c1",
            .agent_id = "x1", .customer_id = "u1", .direction = DIR_IN)),
    GOOD("message, ids with escapes and UTF-8", TOPIC_CHAT,
         "{'event_id':'e\\u00e9\\\"1','ts':'2026-08-03T10:00:00+08:00','type':'message',"
         "'conversation_id':'会话1','agent_id':'x\\/1','customer_id':'u 1','direction':'in'}",
         EV(.topic = TOPIC_CHAT, .type = EV_MESSAGE, .ts_ms = TS_MS, .event_id = "e\xc3\xa9\"1",
            .conversation_id = "会话1", .agent_id = "x/1", .customer_id = "u 1",
            .direction = DIR_IN)),
    GOOD("message, event_id of 128 bytes", TOPIC_CHAT,
         "{'event_id':'01234567890123456789012345678901234567890123456789012345678901234567890123"
         "456789012345678901234567890123456789012345678901234567','ts':1785722400000,"
         "'type':'message'," CHAT_IDS ",'direction':'in'}",
         EV(.topic = TOPIC_CHAT, .type = EV_MESSAGE, .ts_ms = TS_MS,
            .event_id = "01234567890123456789012345678901234567890123456789012345678901234567890123"
                        "456789012345678901234567890123456789012345678901234567",
            .conversation_id = "c1", .agent_id = "x1", .customer_id = "u1", .direction = DIR_IN)),
    GOOD("message, event_id of 64 escaped 2-byte characters (128 bytes)", TOPIC_CHAT,
         "{'event_id':'"
         "\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9"
         "\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9"
         "\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9"
         "\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9"
         "\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9"
         "\\u00e9\\u00e9\\u00e9\\u00e9',"
         "'ts':1785722400000,'type':'message'," CHAT_IDS ",'direction':'in'}",
         EV(.topic = TOPIC_CHAT, .type = EV_MESSAGE, .ts_ms = TS_MS,
            .event_id = "éééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééé",
            .conversation_id = "c1", .agent_id = "x1", .customer_id = "u1", .direction = DIR_IN)),
    GOOD("transfer", TOPIC_CHAT, HEAD("transfer") CHAT_IDS ",'to_agent_id':'x2','shop_id':'demo'}",
         EV(.topic = TOPIC_CHAT, .type = EV_TRANSFER, .ts_ms = TS_MS, .shop_id = "demo",
            .conversation_id = "c1", .agent_id = "x1", .to_agent_id = "x2", .customer_id = "u1")),
    GOOD("complaint with conversation_id", TOPIC_CHAT, HEAD("complaint") CHAT_IDS "}",
         EV(.topic = TOPIC_CHAT, .type = EV_COMPLAINT, .ts_ms = TS_MS, .conversation_id = "c1",
            .agent_id = "x1", .customer_id = "u1")),
    GOOD("complaint without conversation_id", TOPIC_CHAT,
         HEAD("complaint") "'agent_id':'x2','customer_id':'u3'}",
         EV(.topic = TOPIC_CHAT, .type = EV_COMPLAINT, .ts_ms = TS_MS, .agent_id = "x2",
            .customer_id = "u3")),
    GOOD("created, string amount with leading zero", TOPIC_ORDERS,
         HEAD("created") "'order_id':'o1','customer_id':'u1','amount':'059.90','shop_id':'demo'}",
         EV(.topic = TOPIC_ORDERS, .type = EV_CREATED, .ts_ms = TS_MS, .shop_id = "demo",
            .order_id = "o1", .customer_id = "u1", .amount_cents = 5990)),
    GOOD("created with agent_id, number amount", TOPIC_ORDERS,
         HEAD("created") "'order_id':'o2','customer_id':'u2','agent_id':'x2','amount':59.9}",
         EV(.topic = TOPIC_ORDERS, .type = EV_CREATED, .ts_ms = TS_MS, .order_id = "o2",
            .customer_id = "u2", .agent_id = "x2", .amount_cents = 5990)),
    GOOD("paid, trailing zeros", TOPIC_ORDERS, PAID("'59.900'"),
         EV(.topic = TOPIC_ORDERS, .type = EV_PAID, .ts_ms = TS_MS, .order_id = "o1",
            .amount_cents = 5990)),
    GOOD("paid, zero", TOPIC_ORDERS, PAID("0"),
         EV(.topic = TOPIC_ORDERS, .type = EV_PAID, .ts_ms = TS_MS, .order_id = "o1",
            .amount_cents = 0)),
    GOOD("paid, largest amount", TOPIC_ORDERS, PAID("'999999999999.99'"),
         EV(.topic = TOPIC_ORDERS, .type = EV_PAID, .ts_ms = TS_MS, .order_id = "o1",
            .amount_cents = 99999999999999LL)),
    GOOD("paid, number with many zero decimals", TOPIC_ORDERS, PAID("0.10000000000000000000000"),
         EV(.topic = TOPIC_ORDERS, .type = EV_PAID, .ts_ms = TS_MS, .order_id = "o1",
            .amount_cents = 10)),
    GOOD("refunded", TOPIC_ORDERS, HEAD("refunded") "'order_id':'o1','amount':'20.00'}",
         EV(.topic = TOPIC_ORDERS, .type = EV_REFUNDED, .ts_ms = TS_MS, .order_id = "o1",
            .amount_cents = 2000)),
    GOOD("cancelled, fields of other types ignored", TOPIC_ORDERS,
         HEAD("cancelled") "'order_id':'o2','amount':'abc','reason':7}",
         EV(.topic = TOPIC_ORDERS, .type = EV_CANCELLED, .ts_ms = TS_MS, .order_id = "o2")),
    GOOD("flagged", TOPIC_ORDERS, HEAD("flagged") "'order_id':'o3','reason':'address check'}",
         EV(.topic = TOPIC_ORDERS, .type = EV_FLAGGED, .ts_ms = TS_MS, .order_id = "o3",
            .reason = "address check")),
    GOOD("flagged, empty reason", TOPIC_ORDERS, HEAD("flagged") "'order_id':'o3','reason':''}",
         EV(.topic = TOPIC_ORDERS, .type = EV_FLAGGED, .ts_ms = TS_MS, .order_id = "o3",
            .reason = "")),
    GOOD_P("review with max", TOPIC_REVIEWS, REVIEW_OK_BUT("'score':8,'max':10"),
           EV(.topic = TOPIC_REVIEWS, .type = EV_REVIEW, .ts_ms = TS_MS, .agent_id = "x1",
              .item = "execution", .reviewer = "s1", .role = ROLE_MANAGER, .score = 8, .max = 10),
           "2026-08", 1785542400000LL),
    GOOD_P("review default max, score at max", TOPIC_REVIEWS,
           REVIEW("'period':'2026-Q4','role':'self','score':100"),
           EV(.topic = TOPIC_REVIEWS, .type = EV_REVIEW, .ts_ms = TS_MS, .agent_id = "x1",
              .item = "execution", .reviewer = "s1", .role = ROLE_SELF, .score = 100, .max = 100),
           "2026-Q4", 0),
    GOOD_P("review indirect_manager, fractional score, week label", TOPIC_REVIEWS,
           REVIEW("'period':'2026-W45','role':'indirect_manager','score':0.5,'max':1"),
           EV(.topic = TOPIC_REVIEWS, .type = EV_REVIEW, .ts_ms = TS_MS, .agent_id = "x1",
              .item = "execution", .reviewer = "s1", .role = ROLE_INDIRECT_MANAGER, .score = 0.5,
              .max = 1),
           "2026-W45", 0),
    GOOD_P("review score -0", TOPIC_REVIEWS, REVIEW("'period':'2026','role':'self','score':-0"),
           EV(.topic = TOPIC_REVIEWS, .type = EV_REVIEW, .ts_ms = TS_MS, .agent_id = "x1",
              .item = "execution", .reviewer = "s1", .role = ROLE_SELF, .score = 0, .max = 100),
           "2026", 0),
    GOOD_P("target", TOPIC_REVIEWS,
           HEAD("target") "'agent_id':'x1','period':'2026-H2','amount':'1000','shop_id':'demo'}",
           EV(.topic = TOPIC_REVIEWS, .type = EV_TARGET, .ts_ms = TS_MS, .shop_id = "demo",
              .agent_id = "x1", .amount_cents = 100000),
           "2026-H2", 0),
    GOOD_P("target, day label", TOPIC_REVIEWS,
           HEAD("target") "'agent_id':'x1','period':'2026-11-02','amount':0.5}",
           EV(.topic = TOPIC_REVIEWS, .type = EV_TARGET, .ts_ms = TS_MS, .agent_id = "x1",
              .amount_cents = 50),
           "2026-11-02", 0),
    GOOD("absence", TOPIC_REVIEWS, ABSENCE("'from':'2026-08-10','to':'2026-08-14'"),
         EV(.topic = TOPIC_REVIEWS, .type = EV_ABSENCE, .ts_ms = TS_MS, .agent_id = "x1",
            .from_day = 20675, .to_day = 20679)),
    GOOD("absence of one day", TOPIC_REVIEWS, ABSENCE("'from':'2026-08-10','to':'2026-08-10'"),
         EV(.topic = TOPIC_REVIEWS, .type = EV_ABSENCE, .ts_ms = TS_MS, .agent_id = "x1",
            .from_day = 20675, .to_day = 20675)),
};

static void expect_str(const char *name, const char *field, const char *got, const char *want)
{
    if (!want && !got)
        return;
    if (!want || !got || strcmp(got, want) != 0)
        fail_msg("%s: %s is \"%s\", want \"%s\"", name, field, got ? got : "(null)",
                 want ? want : "(null)");
}

/* Every string lies in the event's arena, which holds exactly those strings. */
static void expect_in_arena(const struct event *ev, const char *const *strs, size_t n)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += strs[i] ? strlen(strs[i]) + 1 : 0;
    assert_non_null(ev->arena);
    for (size_t i = 0; i < n; i++)
        if (strs[i])
            assert_true(strs[i] >= ev->arena && strs[i] + strlen(strs[i]) < ev->arena + total);
}

static void test_good(void **state)
{
    const struct good_case *c = *state;
    const struct event *w = &c->want;
    char *json = q(c->json, false);
    struct event ev;
    char detail[256];

    enum dl_reason r =
        decode_event(c->topic, json, strlen(json), &opts, &ev, detail, sizeof(detail));
    if (r != DL_NONE)
        fail_msg("%s: %s: %s", c->name, dl_reason_name(r), detail);
    assert_int_equal(ev.topic, w->topic);
    assert_int_equal(ev.type, w->type);
    assert_int_equal(ev.ts_ms, w->ts_ms);
    expect_str(c->name, "event_id", ev.event_id, w->event_id ? w->event_id : "e1");
    expect_str(c->name, "shop_id", ev.shop_id, w->shop_id ? w->shop_id : "default");
    expect_str(c->name, "conversation_id", ev.conversation_id, w->conversation_id);
    expect_str(c->name, "agent_id", ev.agent_id, w->agent_id);
    expect_str(c->name, "to_agent_id", ev.to_agent_id, w->to_agent_id);
    expect_str(c->name, "customer_id", ev.customer_id, w->customer_id);
    expect_str(c->name, "order_id", ev.order_id, w->order_id);
    expect_str(c->name, "item", ev.item, w->item);
    expect_str(c->name, "reviewer", ev.reviewer, w->reviewer);
    expect_str(c->name, "reason", ev.reason, w->reason);
    const char *strs[] = {ev.event_id,    ev.shop_id,     ev.conversation_id, ev.agent_id,
                          ev.to_agent_id, ev.customer_id, ev.order_id,        ev.item,
                          ev.reviewer,    ev.reason};
    expect_in_arena(&ev, strs, N(strs));
    assert_int_equal(ev.direction, w->direction);
    bool has_amount = w->type == EV_CREATED || w->type == EV_PAID || w->type == EV_REFUNDED ||
                      w->type == EV_TARGET;
    assert_int_equal(ev.amount_cents, has_amount ? w->amount_cents : -1);
    assert_int_equal(ev.from_day, w->from_day);
    assert_int_equal(ev.to_day, w->to_day);
    if (w->type == EV_REVIEW) {
        assert_int_equal(ev.role, w->role);
        assert_true(ev.score == w->score);
        assert_false(signbit(ev.score));
        assert_true(ev.max == w->max);
    }
    if (c->period_label) {
        struct period p;
        assert_int_equal(period_from_label(c->period_label, &p), 0);
        assert_string_equal(ev.period.label, c->period_label);
        assert_int_equal(ev.period.kind, p.kind);
        assert_int_equal(ev.period.start_ms, p.start_ms);
        assert_int_equal(ev.period.end_ms, p.end_ms);
        if (c->period_start_ms)
            assert_int_equal(ev.period.start_ms, c->period_start_ms);
    }
    event_release(&ev);
    assert_null(ev.arena);
    assert_null(ev.event_id);
    free(json);
}

/* ---- Size limit ---- */

/* A valid message of exactly n bytes: padded with an unknown string field. */
static char *message_of(size_t n)
{
    char *head = q(MSG("'pad':'"), false);
    size_t hl = strlen(head) - 1; /* without the closing brace */
    char *m = malloc(n + 1);
    assert_non_null(m);
    assert_true(n > hl + 2);
    memcpy(m, head, hl);
    memset(m + hl, 'p', n - hl - 2);
    memcpy(m + n - 2, "\"}", 3);
    free(head);
    return m;
}

static void test_size_limit(void **state)
{
    struct event ev;
    char detail[256];
    char *m = message_of(DECODE_MAX_BYTES);

    assert_int_equal(strlen(m), DECODE_MAX_BYTES);
    assert_int_equal(
        decode_event(TOPIC_CHAT, m, DECODE_MAX_BYTES, &opts, &ev, detail, sizeof(detail)), DL_NONE);
    assert_string_equal(ev.agent_id, "x1");
    event_release(&ev);
    free(m);

    m = message_of(DECODE_MAX_BYTES + 1);
    assert_int_equal(
        decode_event(TOPIC_CHAT, m, DECODE_MAX_BYTES + 1, &opts, &ev, detail, sizeof(detail)),
        DL_TOO_LARGE);
    assert_string_equal(detail, "message of 65537 bytes is over the limit of 65536 bytes");
    assert_null(ev.arena);
    free(m);

    /* too_large is decided before parsing: even garbage */
    m = malloc(DECODE_MAX_BYTES + 1);
    assert_non_null(m);
    memset(m, 0xff, DECODE_MAX_BYTES + 1);
    assert_int_equal(
        decode_event(TOPIC_CHAT, m, DECODE_MAX_BYTES + 1, &opts, &ev, detail, sizeof(detail)),
        DL_TOO_LARGE);
    free(m);
}

/* Many keys (the duplicate-key set grows), deep nesting (the map stack grows). */
static void test_many_keys_and_depth(void **state)
{
    struct event ev;
    char detail[256];
    size_t cap = DECODE_MAX_BYTES;
    char *m = malloc(cap), *o = m;
    assert_non_null(m);
    char *head = q(MSG("'many':{"), false);
    o += sprintf(o, "%.*s", (int)strlen(head) - 1, head);
    for (int i = 0; i < 3000; i++)
        o += sprintf(o, "%s\"k%d\":%d", i ? "," : "", i, i);
    o += sprintf(o, "},\"deep\":");
    for (int i = 0; i < 1000; i++)
        o += sprintf(o, "{\"k\":");
    o += sprintf(o, "1");
    for (int i = 0; i < 1000; i++)
        *o++ = '}';
    size_t good_len = (size_t)(o - m);
    memcpy(o, "}", 2);
    assert_true(good_len + 1 < cap);
    assert_int_equal(decode_event(TOPIC_CHAT, m, good_len + 1, &opts, &ev, detail, sizeof(detail)),
                     DL_NONE);
    event_release(&ev);

    /* the same with a duplicate of the first key as the last key of the big map */
    char *dup = strstr(m, "\"k2999\"");
    assert_non_null(dup);
    memcpy(dup, "\"k0\"   ", 7);
    assert_int_equal(decode_event(TOPIC_CHAT, m, good_len + 1, &opts, &ev, detail, sizeof(detail)),
                     DL_INVALID_JSON);
    assert_string_equal(detail, "invalid JSON: duplicate key 'k0'");
    free(head);
    free(m);
}

/* ---- The worked example ---- */

static void test_example_file(const char *file, enum event_topic topic, int want_lines)
{
    char path[256], line[8192], detail[256];
    snprintf(path, sizeof(path), FIXTURES "%s", file);
    FILE *f = fopen(path, "r");
    if (!f)
        fail_msg("cannot open '%s' (run from the repository root)", path);
    int lines = 0;
    while (fgets(line, sizeof(line), f)) {
        size_t n = strcspn(line, "\n");
        char *tab = memchr(line, '\t', n);
        if (n == 0)
            continue;
        assert_non_null(tab);
        struct event ev;
        const struct decode_opts now = {.now_ms = NOW_MS, .max_future_ms = DAY_MS};
        enum dl_reason r = decode_event(topic, tab + 1, (size_t)(line + n - tab - 1), &now, &ev,
                                        detail, sizeof(detail));
        if (r != DL_NONE)
            fail_msg("%s:%d: %s: %s", path, lines + 1, dl_reason_name(r), detail);
        assert_string_equal(ev.shop_id, "demo");
        /* the Kafka key is the topic's key field */
        const char *key = topic == TOPIC_ORDERS    ? ev.order_id
                          : topic == TOPIC_REVIEWS ? ev.agent_id
                          : ev.conversation_id     ? ev.conversation_id
                                                   : ev.agent_id;
        assert_int_equal(strncmp(line, key, (size_t)(tab - line)), 0);
        event_release(&ev);
        lines++;
    }
    fclose(f);
    assert_int_equal(lines, want_lines);
}

static void test_example(void **state)
{
    test_example_file("chat.jsonl", TOPIC_CHAT, 13);
    test_example_file("orders.jsonl", TOPIC_ORDERS, 8);
    test_example_file("reviews.jsonl", TOPIC_REVIEWS, 3);
}

/* ---- Amounts and times on their own ---- */

static void test_amount_cents(void **state)
{
    static const struct {
        const char *text;
        int rc;
        int64_t cents;
    } cases[] = {
        {"59.90", 0, 5990},
        {"59.9", 0, 5990},
        {"59.900", 0, 5990},
        {"059.90", 0, 5990},
        {"0", 0, 0},
        {"0.01", 0, 1},
        {"1.10000", 0, 110},
        {"300", 0, 30000},
        {"999999999999.99", 0, 99999999999999},
        {"000000000000000000001", 0, 100},
        {"59.901", -1, 0},
        {".5", -1, 0},
        {"5.", -1, 0},
        {"1e2", -1, 0},
        {"-1", -1, 0},
        {"abc", -1, 0},
        {"", -1, 0},
        {"1000000000000", -1, 0},
        {"0.001", -1, 0},
        {"1 ", -1, 0},
        {"1..2", -1, 0},
        {"1.2.3", -1, 0},
    };
    for (size_t i = 0; i < N(cases); i++) {
        int64_t cents = -7;
        int rc = decode_amount_cents(cases[i].text, strlen(cases[i].text), &cents);
        if (rc != cases[i].rc || (rc == 0 && cents != cases[i].cents))
            fail_msg("amount '%s': rc %d cents %lld", cases[i].text, rc, (long long)cents);
    }
    /* only len bytes are read */
    int64_t cents;
    assert_int_equal(decode_amount_cents("12.34xyz", 5, &cents), 0);
    assert_int_equal(cents, 1234);
}

static void test_rfc3339(void **state)
{
    static const struct {
        const char *text;
        int rc;
        int64_t ms;
    } cases[] = {
        {"2026-08-03T10:00:00+08:00", 0, 1785722400000},
        {"2026-08-03T02:00:00Z", 0, 1785722400000},
        {"2026-08-03t02:00:00z", 0, 1785722400000},
        {"2026-08-03T02:00:00.1Z", 0, 1785722400100},
        {"2026-08-03T02:00:00.12Z", 0, 1785722400120},
        {"2026-08-03T12:00:00.123+08:00", 0, 1785729600123},
        {"2026-08-03T02:00:00.999999999Z", 0, 1785722400999},
        {"2026-08-03T02:00:00-00:00", 0, 1785722400000},
        {"2028-02-29T23:59:59Z", 0, 1835481599000},
        {"2000-02-29T00:00:00-05:30", 0, 951802200000},
        {"1970-01-01T00:00:00Z", 0, 0},
        {"1969-12-31T23:59:59.999Z", 0, -1},
        {"0001-01-01T00:00:00Z", 0, -62135596800000},
        {"9999-12-31T23:59:59.999Z", 0, 253402300799999},
        {"2026-08-03T02:00:00+23:59", 0, 1785722400000 - 86340000},
        {"2026-08-03T02:00:00", -1, 0},
        {"2026-08-03T02:00:00.Z", -1, 0},
        {"2026-08-03T02:00:00.1234567890Z", -1, 0},
        {"2026-08-03T02:00:60Z", -1, 0},
        {"2026-08-03T24:00:00Z", -1, 0},
        {"2026-02-29T00:00:00Z", -1, 0},
        {"1900-02-29T00:00:00Z", -1, 0},
        {"2026-08-03T02:00:00+24:00", -1, 0},
        {"2026-08-03T02:00:00+08:00 ", -1, 0},
        {"2026-8-3T02:00:00Z", -1, 0},
        {"+2026-08-03T02:00:00Z", -1, 0},
        {"2026-08-03T02:00:00UTC", -1, 0},
        {"", -1, 0},
    };
    for (size_t i = 0; i < N(cases); i++) {
        int64_t ms = -7;
        int rc = decode_rfc3339_ms(cases[i].text, strlen(cases[i].text), &ms);
        if (rc != cases[i].rc || (rc == 0 && ms != cases[i].ms))
            fail_msg("ts '%s': rc %d ms %lld", cases[i].text, rc, (long long)ms);
    }
}

/* ---- Names ---- */

static void test_names(void **state)
{
    static const char *const reasons[DL_REASON_COUNT] = {
        "none",       "invalid_json", "missing_field", "bad_type",  "bad_value", "unknown_type",
        "bad_amount", "bad_ts",       "future_ts",     "too_large", "late",      "orphan",
    };
    static const char *const types[EV_TYPE_COUNT] = {
        "message",   "transfer", "complaint", "created", "paid",    "refunded",
        "cancelled", "flagged",  "review",    "target",  "absence",
    };
    for (int i = 0; i < DL_REASON_COUNT; i++)
        assert_string_equal(dl_reason_name(i), reasons[i]);
    assert_null(dl_reason_name(DL_REASON_COUNT));
    for (int i = 0; i < EV_TYPE_COUNT; i++)
        assert_string_equal(event_type_name(i), types[i]);
    assert_null(event_type_name(EV_TYPE_COUNT));
    assert_string_equal(event_topic_name(TOPIC_CHAT), "chat");
    assert_string_equal(event_topic_name(TOPIC_ORDERS), "orders");
    assert_string_equal(event_topic_name(TOPIC_REVIEWS), "reviews");
    assert_null(event_topic_name(TOPIC_INPUT_COUNT));
    assert_string_equal(review_role_name(ROLE_SELF), "self");
    assert_string_equal(review_role_name(ROLE_MANAGER), "manager");
    assert_string_equal(review_role_name(ROLE_INDIRECT_MANAGER), "indirect_manager");
    assert_null(review_role_name(ROLE_COUNT));
    event_release(NULL);
    struct event zero = {0};
    event_release(&zero);
}

/* ---- Dead-letter records ---- */

static void test_deadletter_text(void **state)
{
    static const char payload[] = "{\"amount\":\"59.901\",\"note\":\"a\\\"b\tc\x01\x7f é\"}";
    char *j =
        decode_deadletter_json(DL_BAD_AMOUNT, "field 'amount': more than two decimals",
                               "shop.orders", 3, 42, 1795770000123LL, payload, sizeof(payload) - 1);
    assert_non_null(j);
    assert_string_equal(
        j, "{\"reason\":\"bad_amount\",\"detail\":\"field 'amount': more than two decimals\","
           "\"topic\":\"shop.orders\",\"partition\":3,\"offset\":42,"
           "\"ts_seen\":\"2026-11-27T09:00:00.123Z\","
           "\"payload\":\"{\\\"amount\\\":\\\"59.901\\\",\\\"note\\\":\\\"a\\\\\\\"b\\tc"
           "\\u0001\x7f é\\\"}\"}");
    free(j);

    /* NUL bytes are valid UTF-8; a detail with invalid UTF-8 gets U+FFFD */
    j = decode_deadletter_json(DL_INVALID_JSON, "bad \xff", "cs.chat", 0, 0, 0, "a\0b", 3);
    assert_non_null(j);
    assert_string_equal(j, "{\"reason\":\"invalid_json\",\"detail\":\"bad \xef\xbf\xbd\","
                           "\"topic\":\"cs.chat\",\"partition\":0,\"offset\":0,"
                           "\"ts_seen\":\"1970-01-01T00:00:00.000Z\",\"payload\":\"a\\u0000b\"}");
    free(j);

    j = decode_deadletter_json(DL_INVALID_JSON, NULL, NULL, -1, -1, -1, NULL, 0);
    assert_non_null(j);
    assert_string_equal(j, "{\"reason\":\"invalid_json\",\"detail\":\"\",\"topic\":\"\","
                           "\"partition\":-1,\"offset\":-1,"
                           "\"ts_seen\":\"1969-12-31T23:59:59.999Z\",\"payload\":\"\"}");
    free(j);
}

static void test_deadletter_b64(void **state)
{
    static const struct {
        const char *payload;
        size_t len;
        const char *b64;
    } cases[] = {
        {"{\"x\":\"\xff\"}", 9, "eyJ4Ijoi/yJ9"},
        {"\xc0\xaf", 2, "wK8="},
        {"\xed\xa0\x80", 3, "7aCA"},
        {"ab\xf5", 3, "YWL1"},
        {"\x80", 1, "gA=="},
    };
    for (size_t i = 0; i < N(cases); i++) {
        char want[256];
        char *j = decode_deadletter_json(
            DL_INVALID_JSON, "invalid JSON: invalid UTF-8 at byte offset 6", "cs.chat", 1,
            9000000000LL, 1795770000000LL, cases[i].payload, cases[i].len);
        assert_non_null(j);
        snprintf(want, sizeof(want),
                 "{\"reason\":\"invalid_json\",\"detail\":\"invalid JSON: invalid UTF-8 at byte "
                 "offset 6\",\"topic\":\"cs.chat\",\"partition\":1,\"offset\":9000000000,"
                 "\"ts_seen\":\"2026-11-27T09:00:00.000Z\",\"payload_b64\":\"%s\"}",
                 cases[i].b64);
        assert_string_equal(j, want);
        free(j);
    }
}

/* A dead-letter record for every bad case parses back as JSON with the payload intact. */
static void test_deadletter_roundtrip(void **state)
{
    for (size_t i = 0; i < N(bad_cases); i++) {
        char *json = q(bad_cases[i].json, bad_cases[i].raw);
        struct event ev;
        char detail[256];
        enum dl_reason r = decode_event(bad_cases[i].topic, json, strlen(json), &opts, &ev, detail,
                                        sizeof(detail));
        char *j =
            decode_deadletter_json(r, detail, "cs.chat", 0, (int64_t)i, NOW_MS, json, strlen(json));
        assert_non_null(j);
        /* the record itself must be valid JSON: decode it as an (unknown-type) event */
        char d2[256];
        enum dl_reason r2 = decode_event(TOPIC_CHAT, j, strlen(j), &opts, &ev, d2, sizeof(d2));
        if (r2 != DL_MISSING_FIELD)
            fail_msg("%s: dead-letter record is not JSON: %s: %s\n%s", bad_cases[i].name,
                     dl_reason_name(r2), d2, j);
        assert_string_equal(d2, "missing field 'type'");
        free(j);
        free(json);
    }
}

static int group_setup(void **state)
{
    char err[128];
    if (period_tz_set("UTC", err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    return 0;
}

int main(void)
{
    static const struct CMUnitTest fixed[] = {
        cmocka_unit_test(test_size_limit),
        cmocka_unit_test(test_many_keys_and_depth),
        cmocka_unit_test(test_example),
        cmocka_unit_test(test_amount_cents),
        cmocka_unit_test(test_rfc3339),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_deadletter_text),
        cmocka_unit_test(test_deadletter_b64),
        cmocka_unit_test(test_deadletter_roundtrip),
    };
    size_t n = N(bad_cases) + N(good_cases) + N(fixed), k = 0;
    struct CMUnitTest *tests = calloc(n, sizeof(*tests));
    if (!tests)
        return 1;
    /* one cmocka test per table row, named after it */
    for (size_t i = 0; i < N(bad_cases); i++)
        tests[k++] = (struct CMUnitTest){.name = bad_cases[i].name,
                                         .test_func = test_bad,
                                         .initial_state = (void *)&bad_cases[i]};
    for (size_t i = 0; i < N(good_cases); i++)
        tests[k++] = (struct CMUnitTest){.name = good_cases[i].name,
                                         .test_func = test_good,
                                         .initial_state = (void *)&good_cases[i]};
    for (size_t i = 0; i < N(fixed); i++)
        tests[k++] = fixed[i];
    int failed = _cmocka_run_group_tests("decode", tests, n, group_setup, NULL);
    free(tests);
    return failed != 0;
}
