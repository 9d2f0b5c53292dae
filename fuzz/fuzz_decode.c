/* fuzz_decode — libFuzzer harness for consumers/decode.c (events.md "Bad and late input").
 * Input: one selector byte (the topic: chat, orders, reviews) then the message value.
 * Checks, beyond the sanitizers: a decoded event keeps events.md's invariants; a refused
 * one has a named reason and a one-line, printable detail; the dead-letter record built
 * from either is valid JSON that carries the original bytes back exactly; the amount and
 * RFC 3339 parsers, fed the raw bytes, stay in range. Everything is freed (LSan). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_tree.h>

#include "common/utf8.h"
#include "consumers/decode.h"
#include "consumers/event.h"
#include "fuzz/fuzz.h"

#define NOW_MS 1795770000000LL /* 2026-11-27T09:00:00Z, as the unit tests */
#define DAY_MS 86400000LL

static const char *const topics[TOPIC_INPUT_COUNT] = {"cs.chat", "shop.orders", "cs.reviews"};

static void check_id(const char *s, size_t max)
{
    if (s == NULL)
        return;
    size_t n = strlen(s);
    CHECK(n >= 1 && n <= max);
}

static void check_event(const struct event *ev, enum event_topic topic)
{
    CHECK(ev->topic == topic);
    CHECK((unsigned)ev->type < EV_TYPE_COUNT);
    CHECK(ev->event_id != NULL && ev->shop_id != NULL);
    check_id(ev->event_id, 128);
    check_id(ev->shop_id, SIZE_MAX);
    check_id(ev->conversation_id, SIZE_MAX);
    check_id(ev->agent_id, SIZE_MAX);
    check_id(ev->to_agent_id, SIZE_MAX);
    check_id(ev->customer_id, SIZE_MAX);
    check_id(ev->order_id, SIZE_MAX);
    CHECK(ev->ts_ms <= NOW_MS + DAY_MS);
    CHECK(ev->amount_cents >= -1 && ev->amount_cents < 100000000000000LL);
    switch (ev->type) {
    case EV_CREATED:
    case EV_PAID:
    case EV_REFUNDED:
    case EV_TARGET:
        CHECK(ev->amount_cents >= 0);
        break;
    case EV_REVIEW:
        CHECK(ev->max > 0 && ev->score >= 0 && ev->score <= ev->max);
        break;
    case EV_ABSENCE:
        CHECK(ev->from_day <= ev->to_day);
        break;
    case EV_MESSAGE:
        CHECK(ev->direction == DIR_IN || ev->direction == DIR_OUT);
        break;
    default:
        break;
    }
}

/* A detail is one line of printable text (it goes into logs and the record). */
static void check_detail(const char *detail, size_t cap)
{
    size_t n = strnlen(detail, cap);
    CHECK(n < cap);
    CHECK(n > 0);
    CHECK(utf8_valid_prefix(detail, n) == n);
    for (size_t i = 0; i < n; i++)
        CHECK((unsigned char)detail[i] >= 0x20 && detail[i] != 0x7f);
}

static const char *const b64tab =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Decodes base64 text; the decoded length, or -1 when malformed. */
static long unbase64(const char *s, unsigned char *out, size_t cap)
{
    size_t n = strlen(s), o = 0;
    if (n % 4 != 0)
        return -1;
    for (size_t i = 0; i < n; i += 4) {
        uint32_t v = 0;
        int pad = 0;
        for (int k = 0; k < 4; k++) {
            const char *p = s[i + k] == '=' ? NULL : strchr(b64tab, s[i + k]);
            if (s[i + k] == '=') {
                if (i + 4 != n || k < 2)
                    return -1;
                pad++;
            } else if (p == NULL || s[i + k] == '\0' || pad) {
                return -1;
            }
            v = v << 6 | (uint32_t)(p ? p - b64tab : 0);
        }
        for (int k = 0; k < 3 - pad; k++) {
            if (o >= cap)
                return -1;
            out[o++] = (unsigned char)(v >> (16 - 8 * k));
        }
    }
    return (long)o;
}

static void check_record(const char *rec, enum dl_reason reason, const char *topic,
                         const uint8_t *payload, size_t len)
{
    char errbuf[256];
    yajl_val root = yajl_tree_parse(rec, errbuf, sizeof(errbuf));
    if (root == NULL)
        fprintf(stderr, "fuzz_decode: dead-letter record is not JSON (%s): %s\n", errbuf, rec);
    CHECK(root != NULL && YAJL_IS_OBJECT(root));

    static const char *const p_reason[] = {"reason", NULL}, *const p_topic[] = {"topic", NULL},
                             *const p_payload[] = {"payload", NULL},
                             *const p_b64[] = {"payload_b64", NULL};
    yajl_val v = yajl_tree_get(root, (const char **)p_reason, yajl_t_string);
    CHECK(v && strcmp(YAJL_GET_STRING(v), dl_reason_name(reason)) == 0);
    v = yajl_tree_get(root, (const char **)p_topic, yajl_t_string);
    CHECK(v && strcmp(YAJL_GET_STRING(v), topic) == 0);
    yajl_val text = yajl_tree_get(root, (const char **)p_payload, yajl_t_string);
    yajl_val b64 = yajl_tree_get(root, (const char **)p_b64, yajl_t_string);
    CHECK((text != NULL) != (b64 != NULL));
    if (text) {
        /* yajl's strings end at a NUL; compare what it can show. */
        const char *s = YAJL_GET_STRING(text);
        size_t upto = strnlen((const char *)payload, len);
        CHECK(utf8_valid_prefix(payload, len) == len);
        CHECK(strlen(s) == upto && memcmp(s, payload, upto) == 0);
    } else {
        unsigned char *back = malloc(len + 1);
        CHECK(back != NULL);
        long n = unbase64(YAJL_GET_STRING(b64), back, len + 1);
        CHECK(n == (long)len && memcmp(back, payload, len) == 0);
        free(back);
    }
    yajl_tree_free(root);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct decode_opts opts = {.now_ms = NOW_MS, .max_future_ms = DAY_MS};
    struct event ev;
    char detail[256];
    int64_t v;

    if (size < 1)
        return 0;
    enum event_topic topic = (enum event_topic)(data[0] % TOPIC_INPUT_COUNT);
    data++;
    size--;

    /* The message as Kafka hands it over: exactly `size` bytes, no NUL after them. */
    uint8_t *msg = malloc(size ? size : 1);
    CHECK(msg != NULL);
    memcpy(msg, data, size);

    memset(&ev, 0xA5, sizeof(ev)); /* decode_event must not read what was there */
    enum dl_reason r = decode_event(topic, msg, size, &opts, &ev, detail, sizeof(detail));
    CHECK((unsigned)r < DL_REASON_COUNT && r != DL_LATE && r != DL_ORPHAN);
    if (r == DL_NONE) {
        check_event(&ev, topic);
        event_release(&ev);
        r = DL_LATE; /* still build a record: a late event goes to the dead letters too */
        snprintf(detail, sizeof(detail), "event closed in period '2026-08'");
    } else {
        CHECK(dl_reason_name(r) != NULL);
        check_detail(detail, sizeof(detail));
        CHECK(ev.arena == NULL && ev.event_id == NULL);
    }

    char *rec = decode_deadletter_json(r, detail, topics[topic], (int32_t)(size % 7), (int64_t)size,
                                       NOW_MS, msg, size);
    CHECK(rec != NULL);
    check_record(rec, r, topics[topic], msg, size);
    free(rec);

    /* The field parsers on their own, with the raw bytes as the field's text. */
    if (decode_amount_cents((const char *)msg, size, &v) == 0)
        CHECK(v >= 0 && v < 100000000000000LL);
    if (decode_rfc3339_ms((const char *)msg, size, &v) == 0)
        CHECK(v >= -62135596800000LL - DAY_MS && v <= 253402300799999LL + DAY_MS);
    free(msg);
    return 0;
}
