/* file — see file.h. */
#include "common/file.h"
#include "common/buf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

char *file_read_all(const char *path, size_t max, size_t *len, char *err, size_t errlen)
{
    struct buf b;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open '%s': %s", path, strerror(errno));
        return NULL;
    }
    buf_init(&b);
    for (;;) {
        if (b.len > max) {
            snprintf(err, errlen, "cannot read '%s': larger than %zu bytes", path, max);
            goto out_fail;
        }
        buf_reserve(&b, 4096);
        ssize_t n = read(fd, b.data + b.len, b.cap - b.len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(err, errlen, "cannot read '%s': %s", path, strerror(errno));
            goto out_fail;
        }
        if (n == 0)
            break;
        b.len += (size_t)n;
    }
    close(fd);
    b.data[b.len] = '\0';
    *len = b.len;
    return b.data;

out_fail:
    close(fd);
    if (b.data)
        explicit_bzero(b.data, b.cap);
    buf_release(&b);
    return NULL;
}
