/* map — see map.h. Capacity is a power of two kept under 70 % load (tombstones count). */
#include "common/map.h"
#include "common/buf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static char map_tombstone;
#define MAP_TOMB (&map_tombstone)

struct map_slot {
    char *key; /* NULL empty, MAP_TOMB deleted */
    void *value;
    uint64_t hash;
};

struct map {
    struct map_slot *slots;
    size_t cap, used, live;
    bool borrowed; /* keys are the caller's: neither copied nor freed */
};

static uint64_t map_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        h ^= *p;
        h *= 1099511628211ULL;
    }
    return h ^ (h >> 29);
}

struct map *map_new_borrowed(void)
{
    struct map *m = map_new();
    m->borrowed = true;
    return m;
}

struct map *map_new(void)
{
    struct map *m = xcalloc(1, sizeof(*m));
    m->cap = 16;
    m->slots = xcalloc(m->cap, sizeof(*m->slots));
    return m;
}

void map_clear(struct map *m)
{
    for (size_t i = 0; i < m->cap; i++) {
        if (m->slots[i].key && m->slots[i].key != MAP_TOMB && !m->borrowed)
            free(m->slots[i].key);
        m->slots[i] = (struct map_slot){0};
    }
    m->used = m->live = 0;
}

void map_destroy(struct map *m)
{
    if (!m)
        return;
    map_clear(m);
    free(m->slots);
    free(m);
}

static struct map_slot *map_find(const struct map *m, const char *key, uint64_t h)
{
    size_t mask = m->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        struct map_slot *s = &m->slots[i];
        if (!s->key)
            return NULL;
        if (s->key != MAP_TOMB && s->hash == h && strcmp(s->key, key) == 0)
            return s;
    }
}

static void map_grow(struct map *m)
{
    struct map_slot *old = m->slots;
    size_t oldcap = m->cap;
    if (m->live * 2 >= m->cap)
        m->cap *= 2;
    m->slots = xcalloc(m->cap, sizeof(*m->slots));
    m->used = m->live;
    size_t mask = m->cap - 1;
    for (size_t i = 0; i < oldcap; i++) {
        if (!old[i].key || old[i].key == MAP_TOMB)
            continue;
        size_t j = old[i].hash & mask;
        while (m->slots[j].key)
            j = (j + 1) & mask;
        m->slots[j] = old[i];
    }
    free(old);
}

void *map_get(const struct map *m, const char *key)
{
    struct map_slot *s = map_find(m, key, map_hash(key));
    return s ? s->value : NULL;
}

void *map_put(struct map *m, const char *key, void *value)
{
    uint64_t h = map_hash(key);
    struct map_slot *s = map_find(m, key, h);
    if (s) {
        void *prev = s->value;
        s->value = value;
        return prev;
    }
    if ((m->used + 1) * 10 >= m->cap * 7)
        map_grow(m);
    size_t mask = m->cap - 1;
    size_t i = h & mask;
    while (m->slots[i].key && m->slots[i].key != MAP_TOMB)
        i = (i + 1) & mask;
    if (!m->slots[i].key)
        m->used++;
    m->slots[i] = (struct map_slot){
        .key = m->borrowed ? (char *)key : xstrdup(key), .value = value, .hash = h};
    m->live++;
    return NULL;
}

void *map_del(struct map *m, const char *key)
{
    struct map_slot *s = map_find(m, key, map_hash(key));
    if (!s)
        return NULL;
    void *v = s->value;
    if (!m->borrowed)
        free(s->key);
    s->key = MAP_TOMB;
    s->value = NULL;
    m->live--;
    return v;
}

size_t map_size(const struct map *m)
{
    return m->live;
}

bool map_next(const struct map *m, size_t *i, const char **key, void **value)
{
    for (; *i < m->cap; (*i)++) {
        struct map_slot *s = &m->slots[*i];
        if (s->key && s->key != MAP_TOMB) {
            *key = s->key;
            *value = s->value;
            (*i)++;
            return true;
        }
    }
    return false;
}
