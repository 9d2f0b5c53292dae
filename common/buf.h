/* buf — a growable byte buffer (plain value struct: buf_init / buf_release).
 * Allocation failure aborts: csmetrics treats out-of-memory as fatal, as Redis does. */
#ifndef CSM_COMMON_BUF_H
#define CSM_COMMON_BUF_H

#include <stddef.h>
#include <stdint.h>

struct buf {
    char *data; /* NUL-terminated when len < cap */
    size_t len, cap;
};

void buf_init(struct buf *b);
void buf_release(struct buf *b);
void buf_reset(struct buf *b); /* len = 0, keeps memory */
void buf_reserve(struct buf *b, size_t extra);
void buf_add(struct buf *b, const void *p, size_t n);
void buf_adds(struct buf *b, const char *s);
void buf_addc(struct buf *b, char c);
void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Decimal text without printf (hot paths): v, and an unsigned v zero-padded to width. */
void buf_add_dec(struct buf *b, int64_t v);
void buf_add_dec_pad(struct buf *b, uint64_t v, int width);
/* Writes v in decimal to out (at least 21 bytes), NUL-terminated; returns the length. */
size_t dec_format(char *out, int64_t v);
/* Length-prefixed fields for binary records: varint length then bytes. */
void buf_add_u64(struct buf *b, uint64_t v); /* LEB128 */
void buf_add_i64(struct buf *b, int64_t v);  /* zig-zag LEB128 */
void buf_add_str(struct buf *b, const char *s, size_t n);

/* A reader over a record written with the buf_add_* calls; any overrun sets err. */
struct buf_reader {
    const unsigned char *p, *end;
    int err;
};
void buf_reader_init(struct buf_reader *r, const void *p, size_t n);
uint64_t buf_read_u64(struct buf_reader *r);
int64_t buf_read_i64(struct buf_reader *r);
/* Returns a pointer into the record (not NUL-terminated) and its length. */
const char *buf_read_str(struct buf_reader *r, size_t *n);
/* Copies into a malloc'd NUL-terminated string; NULL and err set on overrun. */
char *buf_read_strdup(struct buf_reader *r);

/* Aborts with a message: for allocation failures only. */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

#endif
