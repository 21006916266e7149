/* SPDX-License-Identifier: MIT */
/*
 * The map from live task ids to tasks: open addressing with linear probing
 * and backward-shift deletion. Ids are dense and mostly consecutive, so the
 * identity hash (id & mask) puts neighbours in neighbouring slots. Kept at
 * most half full. Guarded by pool->mu.
 */
#include "internal.h"

#include <stdlib.h>

void tp__idmap_free(tp__idmap *m)
{
    free(m->slots);
    *m = (tp__idmap){0};
}

static int grow(tp__idmap *m)
{
    size_t cap = m->cap ? m->cap * 2 : 64;
    struct tp__idslot *slots = malloc(cap * sizeof *slots);
    if (!slots)
        return -1;
    for (size_t i = 0; i < cap; i++)
        slots[i].id = -1;
    for (size_t i = 0; i < m->cap; i++) {
        if (m->slots[i].id < 0)
            continue;
        size_t j = (size_t)m->slots[i].id & (cap - 1);
        while (slots[j].id >= 0)
            j = (j + 1) & (cap - 1);
        slots[j] = m->slots[i];
    }
    free(m->slots);
    m->slots = slots;
    m->cap = cap;
    return 0;
}

int tp__idmap_reserve(tp__idmap *m, size_t n)
{
    while (n * 2 > m->cap)
        if (grow(m))
            return -1;
    return 0;
}

void tp__idmap_put(tp__idmap *m, tp_id id, tp_task *task)
{
    assert((m->len + 1) * 2 <= m->cap);
    size_t j = (size_t)id & (m->cap - 1);
    while (m->slots[j].id >= 0)
        j = (j + 1) & (m->cap - 1);
    m->slots[j].id = id;
    m->slots[j].task = task;
    m->len++;
}

static size_t find(const tp__idmap *m, tp_id id)
{
    if (!m->cap || id < 0)
        return SIZE_MAX;
    for (size_t j = (size_t)id & (m->cap - 1);; j = (j + 1) & (m->cap - 1)) {
        if (m->slots[j].id == id)
            return j;
        if (m->slots[j].id < 0)
            return SIZE_MAX;
    }
}

tp_task *tp__idmap_get(const tp__idmap *m, tp_id id)
{
    size_t j = find(m, id);
    return j == SIZE_MAX ? NULL : m->slots[j].task;
}

void tp__idmap_del(tp__idmap *m, tp_id id)
{
    size_t hole = find(m, id);
    if (hole == SIZE_MAX)
        return;
    size_t mask = m->cap - 1;
    /* Shift later members of the cluster back into the hole whenever their
     * home slot does not lie cyclically between the hole and them. */
    for (size_t j = (hole + 1) & mask; m->slots[j].id >= 0;
         j = (j + 1) & mask) {
        size_t home = (size_t)m->slots[j].id & mask;
        if (((j - home) & mask) >= ((j - hole) & mask)) {
            m->slots[hole] = m->slots[j];
            hole = j;
        }
    }
    m->slots[hole].id = -1;
    m->len--;
}
