/* SPDX-License-Identifier: MIT */
/*
 * The inbox: one-task applies and starts submitted without the pool lock.
 *
 * A service submits one task per request from many threads; taking
 * pool->mu for each made the submitters and the workers convoy on it. So a
 * per-call tp_apply or tp_start that needs no answer but TP_OK (spawn.c
 * decides) makes its group outside the lock and pushes it onto
 * pool->inbox, a lock-free stack linked through the groups' hnext (a group
 * is not in the name index yet). Pushes only ever add, and the drain takes
 * the whole stack at once, so there is no ABA problem.
 *
 * Whoever takes the lock through tp__enter first moves the inbox into the
 * pool, oldest first: each group gets its generated name (in submission
 * order), joins the index and the group list, and admits its start into
 * the FIFO. Nothing there allocates except an optional growth of the name
 * index, so a submission that returned TP_OK can never be lost. Every
 * reader of the pool enters this way, so nobody sees the pool without the
 * submissions that returned before it looked.
 *
 * Bit 0 of pool->inbox shuts the fast path: set (under the lock) while the
 * pool is locked, being gathered, closed or being freed. A push is a
 * compare-and-swap against an open inbox, so pushes either happen before
 * the shutting (and are drained right after it) or fail and take the lock.
 *
 * Who drains a push is settled by the pusher after the push (spawn.c): if
 * a worker is spinning for work (pool->watching) it will look at the inbox
 * after it stops watching; if every slot is occupied (pool->full) the
 * worker that frees one claims next, after draining; otherwise the pusher
 * takes the lock itself and dispatches. Those flags are written with
 * sequentially consistent stores before the writer drains, so a pusher
 * that read them set pushed before that drain.
 */
#include "internal.h"

enum { SHUT = 1 };

bool tp__inbox_push(tp_pool *pool, tp__group *g)
{
    uintptr_t head = atomic_load_explicit(&pool->inbox, memory_order_relaxed);
    do {
        if (head & SHUT)
            return false;
        g->hnext = (tp__group *)head;
    } while (!atomic_compare_exchange_weak_explicit(
        &pool->inbox, &head, (uintptr_t)g, memory_order_seq_cst,
        memory_order_relaxed));
    return true;
}

/* Sequentially consistent, not relaxed: the worker that publishes `full`
 * false (sem.c) or `watching` false (worker.c) and then looks here, and a
 * pusher that pushes and then reads that flag still set, are the two sides
 * of a store-buffering pattern. Only if both sides' accesses are seq_cst
 * must one of them see the other (the push precedes the flag's store in
 * the single total order, which precedes this load); a relaxed load may
 * read the inbox empty on a weakly ordered CPU (an AArch64 ldr may pass
 * the preceding stlr), and the push is left to nobody. On x86-64 a seq_cst
 * load is the same plain mov. */
bool tp__inbox_waiting(const tp_pool *pool)
{
    return atomic_load(&((tp_pool *)pool)->inbox) & ~(uintptr_t)SHUT;
}

void tp__inbox_drain(tp_pool *pool)
{
    TP_ASSERT_HELD(pool);
    if (!tp__inbox_waiting(pool))
        return;
    uintptr_t head = atomic_fetch_and_explicit(&pool->inbox, SHUT,
                                               memory_order_seq_cst);
    /* The stack is newest first: reverse it. */
    tp__group *oldest = NULL;
    for (tp__group *g = (tp__group *)(head & ~(uintptr_t)SHUT), *next; g;
         g = next) {
        next = g->hnext;
        g->hnext = oldest;
        oldest = g;
    }
    /* Each was timed by its pusher (born_ns). */
    for (tp__group *g = oldest, *next; g; g = next) {
        next = g->hnext;
        tp__group_name_next(pool, g);
        tp__group_attach(pool, g);
        tp__group_admit(pool, g);
    }
}

void tp__inbox_shut(tp_pool *pool, bool shut)
{
    TP_ASSERT_HELD(pool);
    if (shut)
        atomic_fetch_or_explicit(&pool->inbox, SHUT, memory_order_seq_cst);
    else
        atomic_fetch_and_explicit(&pool->inbox, ~(uintptr_t)SHUT,
                                  memory_order_seq_cst);
    tp__inbox_drain(pool);
}

void tp__enter(tp_pool *pool)
{
    tp__lock(pool);
    tp__inbox_drain(pool);
}
