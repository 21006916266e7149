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
 * of memory. Everything here runs with pool->mu
 * held, except tp__rec_pool_free.
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

tp__group *tp__rec_compact_get(tp_pool *pool)
{
    TP_ASSERT_HELD(pool);
    if (!pool->compact_free) {
        /* Each slab twice the last, up to SLAB_MAX records. */
        size_t n = pool->slabs ? pool->slabs->n * 2 : 16;
        if (n > SLAB_MAX)
            n = SLAB_MAX;
        struct tp__slab *slab =
            malloc(offsetof(struct tp__slab, records) + n * COMPACT_SIZE);
        if (!slab)
            return NULL;
        slab->n = n;
        slab->next = pool->slabs;
        pool->slabs = slab;
        for (size_t i = n; i-- > 0;) {
            tp__group *r = (tp__group *)(slab->records + i * COMPACT_SIZE);
            r->hnext = pool->compact_free;
            pool->compact_free = r;
        }
    }
    tp__group *r = pool->compact_free;
    pool->compact_free = r->hnext;
    return r;
}

void tp__rec_compact_put(tp_pool *pool, tp__group *r)
{
    TP_ASSERT_HELD(pool);
    r->hnext = pool->compact_free;
    pool->compact_free = r;
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
}
