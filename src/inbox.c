/* SPDX-License-Identifier: MIT */
/*
 * The inbox: one-task applies and starts submitted without the pool lock.
 *
 * A service submits one task per request from many threads; taking
 * pool->mu and allocating a group for each made the submitters and the
 * workers convoy on the lock and on malloc. So a per-call tp_apply or
 * tp_start that needs no answer but TP_OK (spawn.c decides) writes a
 * 32-byte entry into the pool's ring (ring.c) and returns: no lock, no
 * allocation. The entry is its pending start and has no group record
 * until one is needed:
 *
 * - Whoever takes the lock through tp__enter first "sees" the entries
 *   published so far, in position order: each gets its generated name's
 *   index (in submission order, before any later name), and they join the
 *   FIFO after everything queued before (sem.c) and count as pending. So
 *   nobody sees the pool without the submissions that returned before it
 *   looked.
 * - A worker claiming the first of them gives it a group record then,
 *   from the few the pool recycles (records.c), and starts it.
 * - An API call that looks at groups (by name, or all of them) enters
 *   through tp__enter_groups, which first gives every pending entry its
 *   group, in its place in the FIFO: O(1) per entry, once.
 *
 * Bit 63 of the ring's tail shuts the fast path: set (under the lock)
 * while the pool is locked, being gathered, closed or being freed. A
 * reservation is a compare-and-swap against an open tail, so it either
 * happens before the shutting (and is seen right after it) or fails and
 * takes the lock.
 *
 * An entry is reserved before it is published, and its producer may be
 * preempted in between; the entries after it wait for it (their places in
 * the FIFO are after it). An API call entering the pool waits for every
 * entry reserved before it (tp__enter), so that it sees each submission
 * that returned before it; a worker only takes what is published up to
 * the first entry that is not (its producer, publishing, finds a worker
 * due to see it or enters and dispatches itself, like any pusher), so
 * that a preempted submitter never holds up the workers on the lock.
 *
 * Who sees a push is settled by the pusher after the push (spawn.c): if a
 * worker is spinning for work (pool->watching) it will look at the ring
 * after it stops watching; if every slot is occupied (pool->full) the
 * worker that frees one claims next, after looking; otherwise the pusher
 * takes the lock itself and dispatches. Those flags are written with
 * sequentially consistent stores before the writer looks, so a pusher that
 * read them set pushed before that look.
 */
#include "internal.h"

#include <sched.h>

bool tp__inbox_push(tp_pool *pool, tp_fn fn, void *arg, uint64_t born_ns,
                    uint64_t *pos)
{
    for (;;) {
        int rc = tp__ring_push(&pool->ring, fn, arg, born_ns, pos);
        if (rc != TP__RING_FULL)
            return rc == TP__RING_PUSHED;
        tp__enter(pool);
        /* Another producer may have grown it meanwhile. */
        rc = tp__ring_reserved(&pool->ring) <
                     atomic_load_explicit(&pool->ring.limit,
                                          memory_order_relaxed)
                 ? TP_OK
                 : tp__ring_grow(&pool->ring);
        tp__unlock(pool);
        if (rc != TP_OK)
            return false; /* no memory, or 4 Mi waiting: take the lock */
    }
}

/* Sequentially consistent, not relaxed: the worker that publishes `full`
 * false (sem.c) or `watching` false (worker.c) and then looks here, and a
 * pusher that reserves and then reads that flag still set, are the two
 * sides of a store-buffering pattern. Only if both sides' accesses are
 * seq_cst must one of them see the other (the reservation precedes the
 * flag's store in the single total order, which precedes this load); a
 * relaxed load may read an old tail on a weakly ordered CPU (an AArch64
 * ldr may pass the preceding stlr), and the push is left to nobody. On
 * x86-64 a seq_cst load is the same plain mov. */
bool tp__inbox_waiting(const tp_pool *pool)
{
    return tp__ring_reserved(&pool->ring) !=
           atomic_load_explicit(&((tp_pool *)pool)->ring_seen,
                                memory_order_relaxed);
}

void tp__inbox_drain(tp_pool *pool, bool all)
{
    TP_ASSERT_HELD(pool);
    uint64_t seen = atomic_load_explicit(&pool->ring_seen,
                                         memory_order_relaxed);
    uint64_t upto = tp__ring_reserved(&pool->ring), pos = seen;
    if (upto == seen)
        return;
    tp__counter *counter =
        atomic_load_explicit(&pool->fast_counter, memory_order_relaxed);
    for (; pos < upto; pos++) {
        tp__entry *c = tp__ring_at(&pool->ring, pos);
        /* Sequentially consistent, as the producer's store: a worker that
         * stops here publishes `full` false and looks again, and the
         * producer reads `full` after its store (see tp__inbox_waiting). */
        for (unsigned spins = 1; !atomic_load(&c->fn); spins++) {
            if (!all)
                goto stop;
            if (spins % 64 == 0)
                sched_yield(); /* its producer was preempted */
        }
        c->index = tp__counter_take(pool, counter);
    }
stop:
    /* What a spinning worker has seen already (tp__inbox_news). */
    atomic_store_explicit(&pool->ring_stuck, pos < upto ? upto : 0,
                          memory_order_relaxed);
    pool->pending_args += (size_t)(pos - seen);
    tp__fifo_ring_seen(pool, pos);
}

bool tp__inbox_news(const tp_pool *pool)
{
    uint64_t reserved = tp__ring_reserved(&pool->ring);
    return reserved != atomic_load_explicit(&((tp_pool *)pool)->ring_seen,
                                            memory_order_relaxed) &&
           reserved != atomic_load_explicit(&((tp_pool *)pool)->ring_stuck,
                                            memory_order_relaxed);
}
/* The group for the first pending entry, attached (its start counted
 * pending in it, no longer in the ring's share); NULL if out of memory. */
static tp__group *group_for_head(tp_pool *pool, uint64_t *born_ns,
                                 tp__group **mine)
{
    tp__group *g = tp__rec_full_get(pool, mine);
    if (!g)
        return NULL;
    const tp__entry *c = tp__ring_at(&pool->ring, pool->ring_head);
    *born_ns = c->born_ns;
    pool->pending_args--; /* tp__group_attach counts it again */
    tp__group_percall(pool, g, c);
    return g;
}

tp__group *tp__inbox_claim(tp_pool *pool, uint64_t *admitted_ns,
                           tp__group **mine)
{
    TP_ASSERT_HELD(pool);
    tp__group *g = group_for_head(pool, admitted_ns, mine);
    if (!g)
        return NULL;
    g->born_ns = 0;
    g->active = 1; /* claimed */
    bool reserved = tp__group_reserve(g, false);
    assert(reserved); /* a one-task group keeps its id inline */
    (void)reserved;
    tp__fifo_ring_take(pool);
    tp__ring_release(&pool->ring, pool->ring_head);
    return g;
}

/* Gives every pending entry below position upto its group, in its place
 * in the FIFO. False if out of memory: the entries left keep their places and still start,
 * but their groups cannot be found or listed yet. */
static bool materialize(tp_pool *pool, uint64_t upto)
{
    TP_ASSERT_HELD(pool);
    bool ok = true;
    while (ok && tp__fifo_ring_pending(pool) && pool->ring_head < upto) {
        uint64_t born_ns;
        tp__group *none = NULL;
        tp__group *g = group_for_head(pool, &born_ns, &none);
        if (g)
            tp__fifo_ring_place(pool, g);
        ok = g != NULL;
    }
    tp__ring_release(&pool->ring, pool->ring_head);
    return ok;
}
bool tp__inbox_withdraw(tp_pool *pool, uint64_t pos)
{
    TP_ASSERT_HELD(pool);
    tp__inbox_drain(pool, true); /* pos is seen */
    /* Its group, in its place (the entries before it get theirs), unless
     * it started, or another call gave it its group while the dispatch
     * was unlocked. */
    (void)materialize(pool, pos + 1);
    tp__group *g = pool->ring_head > pos ? tp__fifo_ring_group(pool, pos) : NULL;
    if (!g)
        return false; /* started already, or no memory for its group */
    tp__group_withdraw(pool, g);
    return true;
}
void tp__inbox_shut(tp_pool *pool, bool shut)
{
    TP_ASSERT_HELD(pool);
    if (shut)
        atomic_fetch_or_explicit(&pool->ring.tail, TP__RING_SHUT,
                                 memory_order_seq_cst);
    else
        atomic_fetch_and_explicit(&pool->ring.tail, ~TP__RING_SHUT,
                                  memory_order_seq_cst);
    tp__inbox_drain(pool, true);
}

size_t tp__inbox_drop(tp_pool *pool)
{
    TP_ASSERT_HELD(pool);
    size_t n = tp__fifo_ring_drop(pool);
    pool->pending_args -= n;
    pool->total_dropped += n;
    tp__ring_release(&pool->ring, pool->ring_head);
    if (n) /* a gather may have waited for them alone */
        tp__changed(pool);
    return n;
}

void tp__enter(tp_pool *pool)
{
    tp__lock(pool);
    tp__inbox_drain(pool, true);
}

bool tp__enter_groups(tp_pool *pool)
{
    tp__enter(pool);
    return materialize(pool, UINT64_MAX);
}
