/* utf8 — validation of UTF-8 byte sequences (RFC 3629: no overlong forms, surrogates or
 * code points above U+10FFFF), and JSON strings built from arbitrary bytes. */
#ifndef CSM_COMMON_UTF8_H
#define CSM_COMMON_UTF8_H

#include <stddef.h>

#include "common/buf.h"

/* Length (1..4) of the valid UTF-8 sequence at s, with n bytes left; 0 when invalid. */
size_t utf8_seq_len(const unsigned char *s, size_t n);

/* Length of the valid UTF-8 prefix of p[0..n): the offset of the first bad byte, or n. */
size_t utf8_valid_prefix(const void *p, size_t n);

/* Appends s (NUL-terminated) as a JSON string, quotes included: `"` and `\` escaped,
 * \n \t \r by name, other control bytes as \u00XX, valid UTF-8 as it is, and each byte
 * that is not valid UTF-8 as U+FFFD, so the output is always valid JSON. */
void utf8_json_string(struct buf *out, const char *s);

/* The 0-based line and column (in characters, not bytes) of byte `offset` of text[0..len):
 * where a parser that counts bytes found a problem. */
void utf8_position(const char *text, size_t len, size_t offset, size_t *line, size_t *column);

#endif
