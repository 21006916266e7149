/* SPDX-License-Identifier: MIT */
/*
 * The ring: memory for per-call submissions, written without the pool
 * lock. A leaf of the engine: it calls nothing else in src/.
 *
 * A one-task tp_apply or tp_start (inbox.c says which) writes a 32-byte
 * entry into the next free position of its pool's ring instead of
 * allocating a group: the entry is its pending start until a worker claims
 * it (or an API call that looks at groups turns it into one). Positions
 * count up from 0 and are never reused; position p lives in block
 * p / RING_BLOCK, found through a directory of RING_DIR block pointers
 * (dir[(p / RING_BLOCK) % RING_DIR]), so at most RING_BLOCK * RING_DIR
 * entries (4 Mi, 128 MiB) wait at once; beyond that a submission takes the
 * lock like any other.
 *
 * Producers: a position below `limit` (every one of them has a block) is
 * reserved by a compare-and-swap on `tail`, whose bit 63 shuts the ring
 * (then nothing is reserved: inbox.c). The entry's function is written
 * last: a non-NULL function means published.
 *
 * The consumer holds pool->mu: it reads entries in position order, makes
 * blocks (tp__ring_grow, when a producer found the ring full) and gives
 * back the blocks below the first position it still needs
 * (tp__ring_release). A block is rewritten only once every position in it
 * was published and consumed, so a producer never writes into a block that
 * is being reused: its own entry is not consumed before it is published.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

void (*tp__ring_push_hook)(void);

static tp__entry *block_of(const tp__ring *r, uint64_t pos)
{
    return r->dir[(pos / TP__RING_BLOCK) % TP__RING_DIR];
}

int tp__ring_push(tp__ring *r, tp_fn fn, void *arg, uint64_t born_ns,
                  uint64_t *pos)
{
    uint64_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
    do {
        if (t & TP__RING_SHUT)
            return TP__RING_SHUT_NOW;
        /* Acquire: the blocks below limit, and dir, are visible. */
        if (t >= atomic_load_explicit(&r->limit, memory_order_acquire))
            return TP__RING_FULL;
    } while (!atomic_compare_exchange_weak_explicit(
        &r->tail, &t, t + 1, memory_order_seq_cst, memory_order_relaxed));
    tp__entry *c = &block_of(r, t)[t % TP__RING_BLOCK];
    if (tp__ring_push_hook)
        tp__ring_push_hook();
    c->arg = arg;
    c->born_ns = born_ns;
    /* Sequentially consistent: the pusher reads the flags that say who
     * sees its entry after this store (inbox.c). */
    atomic_store(&c->fn, fn);
    *pos = t;
    return TP__RING_PUSHED;
}

uint64_t tp__ring_reserved(const tp__ring *r)
{
    return atomic_load(&((tp__ring *)r)->tail) & ~TP__RING_SHUT;
}

tp__entry *tp__ring_at(const tp__ring *r, uint64_t pos)
{
    return &block_of(r, pos)[pos % TP__RING_BLOCK];
}

int tp__ring_grow(tp__ring *r)
{
    uint64_t limit = atomic_load_explicit(&r->limit, memory_order_relaxed);
    if ((limit - r->freed) / TP__RING_BLOCK >= TP__RING_DIR)
        return TP__RING_FULL;
    if (!r->dir && !(r->dir = calloc(TP__RING_DIR, sizeof *r->dir)))
        return TP_ENOMEM;
    tp__entry *block = r->spare;
    if (block) {
        memset(block, 0, TP__RING_BLOCK * sizeof *block);
        r->spare = NULL;
    } else if (!(block = calloc(TP__RING_BLOCK, sizeof *block))) {
        return TP_ENOMEM;
    }
    r->dir[(limit / TP__RING_BLOCK) % TP__RING_DIR] = block;
    atomic_store_explicit(&r->limit, limit + TP__RING_BLOCK,
                          memory_order_release);
    return TP_OK;
}

void tp__ring_release(tp__ring *r, uint64_t first_needed)
{
    uint64_t limit = atomic_load_explicit(&r->limit, memory_order_relaxed);
    (void)limit; /* read only by the assert */
    for (; r->freed + TP__RING_BLOCK <= first_needed;
         r->freed += TP__RING_BLOCK) {
        tp__entry **slot = &r->dir[(r->freed / TP__RING_BLOCK) % TP__RING_DIR];
        assert(r->freed < limit && *slot);
        if (!r->spare)
            r->spare = *slot;
        else
            free(*slot);
        *slot = NULL;
    }
}

void tp__ring_free(tp__ring *r)
{
    for (size_t i = 0; r->dir && i < TP__RING_DIR; i++)
        free(r->dir[i]);
    free(r->dir);
    free(r->spare);
    r->dir = NULL;
    r->spare = NULL;
}
