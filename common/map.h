/* map — a string-keyed hash map (open addressing, linear probing, tombstones).
 * Keys are copied; values are borrowed pointers the caller owns. */
#ifndef CSM_COMMON_MAP_H
#define CSM_COMMON_MAP_H

#include <stdbool.h>
#include <stddef.h>

struct map;

struct map *map_new(void);
/* A map that keeps the key pointers it is given instead of copies: the caller keeps each
 * key alive and unchanged while it is in the map (for keys already owned elsewhere). */
struct map *map_new_borrowed(void);
void map_destroy(struct map *m); /* frees keys, not values; NULL ok */
void *map_get(const struct map *m, const char *key);
/* Inserts or replaces; returns the previous value (NULL if none). */
void *map_put(struct map *m, const char *key, void *value);
/* Removes; returns the value (NULL if none). */
void *map_del(struct map *m, const char *key);
size_t map_size(const struct map *m);
/* Iteration: i starts at 0; returns false at the end. Do not insert while iterating
 * (deleting the current entry is fine). */
bool map_next(const struct map *m, size_t *i, const char **key, void **value);
void map_clear(struct map *m); /* drops every entry (frees keys) */

#endif
