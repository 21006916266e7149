/* SPDX-License-Identifier: MIT */
/*
 * Memory for group records: the compact ones a finished one-task group
 * shrinks to (tp__group_compact, group.c), and the full records of the
 * groups made for per-call submissions (inbox.c). Compact records come
 * from slabs the pool owns, so that a finished group costs its record's
 * bytes and no malloc chunk; freed records are reused. Each worker owns
 * one full record, allocated with it, for the per-call group it claims
 * next, and gets it back when that group is compacted (or forgotten), so
 * that claiming a per-call submission allocates nothing: only when a
 * group keeps its record (it could not be compacted) does the next claim
 * take one the pool kept (up to FULL_KEPT) or allocate, and retry if out
 * of memory. A worker makes the next slab of compact records while it has
 * the lock released (tp__rec_slab_due), before the free ones run out.
 * Everything here runs with pool->mu held, except tp__rec_pool_free and
 * tp__rec_slab_make.
 */
#include "internal.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* A slab of compact records: one allocation for many finished groups. */
enum { COMPACT_SIZE = TP__COMPACT_SIZE, SLAB_MAX = 1024 };
/* With the name index's share (4 to 8 bytes, group.c), a finished
 * per-call task then costs at most 64 bytes. */
_Static_assert(COMPACT_SIZE <= 56, "a compact group record grew");
struct tp__slab {
    struct tp__slab *next;
    size_t n;
    _Alignas(max_align_t) unsigned char records[];
};

/* The size of the next slab: each twice the last, up to SLAB_MAX. */
static size_t next_slab_size(const tp_pool *pool)
{
    size_t n = pool->slabs ? pool->slabs->n * 2 : 16;
    return n > SLAB_MAX ? SLAB_MAX : n;
}

static tp__group *record_of(struct tp__slab *slab, size_t i)
{
    return (tp__group *)(slab->records + i * COMPACT_SIZE);
}

/* A slab of n records linked in order as a free list. Touching every
 * record here takes the page faults of fresh memory (a slab is 14 pages),
 * which under the lock stalled every thread waiting for it. */
struct tp__slab *tp__rec_slab_make(size_t n)
{
    struct tp__slab *slab =
        malloc(offsetof(struct tp__slab, records) + n * COMPACT_SIZE);
    if (!slab)
        return NULL;
    slab->n = n;
    for (size_t i = 0; i + 1 < n; i++)
        record_of(slab, i)->hnext = record_of(slab, i + 1);
    return slab;
}

static void slab_add(tp_pool *pool, struct tp__slab *slab)
{
    record_of(slab, slab->n - 1)->hnext = pool->compact_free;
    pool->compact_free = record_of(slab, 0);
    pool->n_compact_free += slab->n;
    slab->next = pool->slabs;
    pool->slabs = slab;
}

tp__group *tp__rec_compact_get(tp_pool *pool)
{
    TP_ASSERT_HELD(pool);
    if (!pool->compact_free) {
        /* No slab was made ahead (tp__rec_slab_due): make one here. */
        struct tp__slab *slab = tp__rec_slab_make(next_slab_size(pool));
        if (!slab)
            return NULL;
        slab_add(pool, slab);
    }
    tp__group *r = pool->compact_free;
    pool->compact_free = r->hnext;
    pool->n_compact_free--;
    return r;
}

/* A worker about to unlock makes the next slab once fewer than a quarter
 * of the last slab's records are free, so that compacting rarely has to
 * (the first slab, of 16, is made when needed: a pool that compacts no
 * group makes none). */
size_t tp__rec_slab_due(tp_pool *pool)
{
    TP_ASSERT_HELD(pool);
    if (pool->slab_making || !pool->slabs ||
        pool->n_compact_free >= pool->slabs->n / 4)
        return 0;
    pool->slab_making = true;
    return next_slab_size(pool);
}

void tp__rec_slab_add(tp_pool *pool, struct tp__slab *slab)
{
    TP_ASSERT_HELD(pool);
    pool->slab_making = false;
    if (slab)
        slab_add(pool, slab);
}

void tp__rec_compact_put(tp_pool *pool, tp__group *r)
{
    TP_ASSERT_HELD(pool);
    r->hnext = pool->compact_free;
    pool->compact_free = r;
    pool->n_compact_free++;
}

enum { FULL_KEPT = 64 };

tp__group *tp__rec_full_new(void)
{
    return calloc(1, sizeof(tp__group) + 1);
}

tp__group *tp__rec_full_get(tp_pool *pool, tp__group **mine)
{
    TP_ASSERT_HELD(pool);
    tp__group *r = *mine;
    if (r) {
        *mine = NULL;
    } else {
        if (!(r = pool->full_free))
            return tp__rec_full_new();
        pool->full_free = r->hnext;
        pool->n_full_free--;
    }
    memset(r, 0, sizeof *r + 1);
    return r;
}

tp__group *tp__rec_full_put(tp_pool *pool, tp__group *r, tp__group **mine)
{
    TP_ASSERT_HELD(pool);
    if (!r || r->xname[0])
        return r;
    if (mine && !*mine) {
        *mine = r;
        return NULL;
    }
    if (pool->n_full_free >= FULL_KEPT)
        return r;
    r->hnext = pool->full_free;
    pool->full_free = r;
    pool->n_full_free++;
    return NULL;
}

void tp__rec_pool_free(tp_pool *pool)
{
    for (tp__group *r = pool->full_free, *next; r; r = next) {
        next = r->hnext;
        free(r);
    }
    pool->full_free = NULL;
    pool->n_full_free = 0;
    for (struct tp__slab *s = pool->slabs, *next; s; s = next) {
        next = s->next;
        free(s);
    }
    pool->slabs = NULL;
    pool->compact_free = NULL;
    pool->n_compact_free = 0;
}
