/* buf — see buf.h. */
#include "common/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void oom(void)
{
    static const char msg[] = "<2>csmetrics: out of memory\n";
    fwrite(msg, 1, sizeof(msg) - 1, stderr);
    abort();
}

void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        oom();
    return p;
}

void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        oom();
    return p;
}

void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (!p)
        oom();
    return p;
}

char *xstrdup(const char *s)
{
    return xstrndup(s, strlen(s));
}

char *xstrndup(const char *s, size_t n)
{
    char *d = xmalloc(n + 1);
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

void buf_init(struct buf *b)
{
    *b = (struct buf){0};
}

void buf_release(struct buf *b)
{
    free(b->data);
    *b = (struct buf){0};
}

void buf_reset(struct buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

void buf_reserve(struct buf *b, size_t extra)
{
    if (b->len + extra + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + extra + 1)
        cap *= 2;
    b->data = xrealloc(b->data, cap);
    b->cap = cap;
}

void buf_add(struct buf *b, const void *p, size_t n)
{
    buf_reserve(b, n);
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void buf_adds(struct buf *b, const char *s)
{
    buf_add(b, s, strlen(s));
}

void buf_addc(struct buf *b, char c)
{
    buf_add(b, &c, 1);
}

/* Digits of v, least significant first, into tmp; returns their count. */
static size_t dec_digits(char *tmp, uint64_t v)
{
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return n;
}

size_t dec_format(char *out, int64_t v)
{
    char tmp[24];
    size_t o = 0;
    uint64_t u = (uint64_t)v;
    if (v < 0) {
        out[o++] = '-';
        u = 0 - u;
    }
    for (size_t n = dec_digits(tmp, u); n > 0; n--)
        out[o++] = tmp[n - 1];
    out[o] = '\0';
    return o;
}

void buf_add_dec(struct buf *b, int64_t v)
{
    char tmp[24];
    buf_add(b, tmp, dec_format(tmp, v));
}

void buf_add_dec_pad(struct buf *b, uint64_t v, int width)
{
    char tmp[24];
    size_t n = dec_digits(tmp, v);
    buf_reserve(b, n + (width > 0 ? (size_t)width : 0));
    for (int i = (int)n; i < width; i++)
        b->data[b->len++] = '0';
    for (; n > 0; n--)
        b->data[b->len++] = tmp[n - 1];
    b->data[b->len] = '\0';
}

void buf_printf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    buf_reserve(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void buf_add_u64(struct buf *b, uint64_t v)
{
    unsigned char tmp[10];
    size_t n = 0;
    do {
        unsigned char byte = v & 0x7f;
        v >>= 7;
        tmp[n++] = byte | (v ? 0x80 : 0);
    } while (v);
    buf_add(b, tmp, n);
}

void buf_add_i64(struct buf *b, int64_t v)
{
    buf_add_u64(b, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

void buf_add_str(struct buf *b, const char *s, size_t n)
{
    buf_add_u64(b, n);
    buf_add(b, s, n);
}

void buf_reader_init(struct buf_reader *r, const void *p, size_t n)
{
    r->p = p;
    r->end = r->p + n;
    r->err = 0;
}

uint64_t buf_read_u64(struct buf_reader *r)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (r->p >= r->end) {
            r->err = 1;
            return 0;
        }
        unsigned char byte = *r->p++;
        /* The 10th byte holds bit 63 only: more would be silently shifted out, turning a
         * corrupt record into a wrong value instead of an error. */
        if (shift == 63 && byte > 1) {
            r->err = 1;
            return 0;
        }
        v |= (uint64_t)(byte & 0x7f) << shift;
        if (!(byte & 0x80))
            return v;
    }
    r->err = 1;
    return 0;
}

int64_t buf_read_i64(struct buf_reader *r)
{
    uint64_t u = buf_read_u64(r);
    return (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
}

const char *buf_read_str(struct buf_reader *r, size_t *n)
{
    uint64_t len = buf_read_u64(r);
    if (r->err || len > (uint64_t)(r->end - r->p)) {
        r->err = 1;
        *n = 0;
        return NULL;
    }
    const char *s = (const char *)r->p;
    r->p += len;
    *n = (size_t)len;
    return s;
}

char *buf_read_strdup(struct buf_reader *r)
{
    size_t n;
    const char *s = buf_read_str(r, &n);
    return s ? xstrndup(s, n) : NULL;
}
