/* file — reading a whole (small) file, for the configuration, secrets and rule files. */
#ifndef CSM_COMMON_FILE_H
#define CSM_COMMON_FILE_H

#include <stddef.h>

/* Reads path (at most max bytes) into a malloc'd NUL-terminated buffer; *len gets its
 * length. NULL with "cannot open 'path': reason" / "cannot read 'path': ..." in err; a
 * partly read buffer is wiped before it is freed (the file may hold a secret). */
char *file_read_all(const char *path, size_t max, size_t *len, char *err, size_t errlen);

#endif
