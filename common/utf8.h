/* utf8 — validation of UTF-8 byte sequences (RFC 3629: no overlong forms, surrogates or
 * code points above U+10FFFF). */
#ifndef CSM_COMMON_UTF8_H
#define CSM_COMMON_UTF8_H

#include <stddef.h>

/* Length (1..4) of the valid UTF-8 sequence at s, with n bytes left; 0 when invalid. */
size_t utf8_seq_len(const unsigned char *s, size_t n);

#endif
