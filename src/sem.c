/* SPDX-License-Identifier: MIT */
/*
 * The pool-size semaphore and its FIFO of pending starts. This file alone
 * reads or writes pool->size's complement pool->occupied, pool->fifo and
 * pool->queued_total, and a group's runs and queued count. Everything here
 * runs with pool->mu held (see lock.c) and never allocates: run nodes come
 * from their group's spares (tp__group_reserve, group.c, made them).
 *
 * The FIFO is a list of runs, each a count of consecutive starts of one
 * group; a group also lists its own runs, so that dropping its starts
 * costs O(its runs), not O(the FIFO). Starts are claimed strictly first
 * in, first out, and only while occupied < size.
 *
 * Per-call submissions wait in the ring (ring.c) without a run: the
 * pending ring entries, positions [ring_head, ring_seen), are starts of
 * the FIFO too, and a run's ring_pos places it among them: the entries
 * below ring_pos come before it, the others after. ring_pos is
 * ring_seen when the run was queued, so it never decreases along the
 * FIFO, and a run is extended only while no entry came after it.
 */
#include "internal.h"

size_t tp__sem_room(const tp_pool *pool)
{
    return pool->size > pool->occupied ? pool->size - pool->occupied : 0;
}

/* Publishes whether a start may be claimed, for a worker that spins
 * before parking (worker.c); exact whenever pool->mu is free. Written only
 * when it changes: its cache line is read by the spinner. */
static void publish_claimable(tp_pool *pool)
{
    bool v = pool->queued_total && pool->occupied < pool->size;
    if (atomic_load_explicit(&pool->claimable, memory_order_relaxed) != v)
        atomic_store_explicit(&pool->claimable, v, memory_order_relaxed);
}

/* Publishes whether every slot is occupied, for a per-call submitter that
 * decides who drains its push (inbox.c). Written only when it changes, and
 * sequentially consistent: a submitter that read it set pushed before the
 * writer's next look at the inbox. True if the pool just stopped being
 * full. */
static bool publish(tp_pool *pool)
{
    publish_claimable(pool);
    bool full = pool->occupied >= pool->size;
    if (atomic_load_explicit(&pool->full, memory_order_relaxed) == full)
        return false;
    atomic_store(&pool->full, full);
    return !full;
}

bool tp__sem_publish(tp_pool *pool)
{
    TP_ASSERT_HELD(pool);
    return publish(pool);
}

void tp__sem_resize(tp_pool *pool, size_t size)
{
    pool->size = size;
    (void)publish(pool);
}

static tp__run *run_of(tp__list *n)
{
    return tp__container(n, tp__run, fifo);
}

static tp__run *spare_pop(tp__group *g)
{
    tp__run *run = g->spare;
    assert(run && g->n_spare > 0);
    g->spare = run->fifo.next ? run_of(run->fifo.next) : NULL;
    g->n_spare--;
    return run;
}

static void spare_push(tp__group *g, tp__run *run)
{
    run->fifo.next = g->spare ? &g->spare->fifo : NULL;
    g->spare = run;
    g->n_spare++;
}

void tp__fifo_push(tp_pool *pool, tp__group *g, size_t count)
{
    TP_ASSERT_HELD(pool);
    tp__list *last = tp__list_last(&pool->fifo);
    uint64_t seen = atomic_load_explicit(&pool->ring_seen, memory_order_relaxed);
    if (last && run_of(last)->group == g && run_of(last)->ring_pos == seen) {
        run_of(last)->count += count;
    } else {
        tp__run *run = spare_pop(g);
        run->group = g;
        run->count = count;
        /* A per-call group was timed when it was submitted. */
        run->admitted_ns = g->born_ns      ? g->born_ns
                           : pool->timings_on ? tp__now_ns()
                                              : 0;
        g->born_ns = 0;
        run->ring_pos = seen;
        tp__list_push_back(&pool->fifo, &run->fifo);
        tp__list_push_back(&g->runs, &run->in_group);
    }
    g->queued += count;
    g->active += count;
    pool->queued_total += count;
    /* Not pool->full (see tp__fifo_ring_seen): a map's next argument is
     * admitted as its task ends, before the worker claims again. */
    publish_claimable(pool);
}

bool tp__fifo_next(const tp_pool *pool, tp__run **run)
{
    TP_ASSERT_HELD((tp_pool *)pool);
    *run = NULL;
    if (pool->occupied >= pool->size)
        return false;
    tp__list *first = tp__list_first(&pool->fifo);
    if (tp__fifo_ring_pending(pool) &&
        (!first || pool->ring_head < run_of(first)->ring_pos))
        return true;
    *run = first ? run_of(first) : NULL;
    return false;
}

static void run_unlink(tp_pool *pool, tp__run *run)
{
    tp__list_remove(&run->fifo);
    tp__list_remove(&run->in_group);
    spare_push(run->group, run);
    (void)pool;
}

void tp__fifo_take(tp_pool *pool, tp__run *run)
{
    TP_ASSERT_HELD(pool);
    tp__group *g = run->group;
    assert(run->count > 0 && pool->occupied < pool->size);
    if (--run->count == 0)
        run_unlink(pool, run);
    g->queued--;
    pool->queued_total--;
    pool->occupied++;
    (void)publish(pool);
}

void tp__sem_release(tp_pool *pool)
{
    TP_ASSERT_HELD(pool);
    assert(pool->occupied > 0);
    pool->occupied--;
    /* pool->full waits for tp__sem_publish: a worker that ends a task and
     * claims the next in one critical section leaves the pool full, and
     * the flag's cache line alone. */
    publish_claimable(pool);
}

void tp__fifo_ring_seen(tp_pool *pool, uint64_t seen)
{
    TP_ASSERT_HELD(pool);
    pool->queued_total += (size_t)(seen - pool->ring_seen);
    atomic_store_explicit(&pool->ring_seen, seen, memory_order_relaxed);
    /* Not pool->full: occupancy did not change. Whenever pool->mu is
     * free the flag is exact; a worker that ends a task leaves it set
     * (tp__sem_release) and sees the ring before it claims the next, and
     * publishing the freed slot here made every submitter meanwhile take
     * the lock. */
    publish_claimable(pool);
}

void tp__fifo_ring_take(tp_pool *pool)
{
    TP_ASSERT_HELD(pool);
    assert(tp__fifo_ring_pending(pool) && pool->occupied < pool->size);
    pool->ring_head++;
    pool->queued_total--;
    pool->occupied++;
    (void)publish(pool);
}

void tp__fifo_ring_place(tp_pool *pool, tp__group *g)
{
    TP_ASSERT_HELD(pool);
    assert(tp__fifo_ring_pending(pool));
    uint64_t pos = pool->ring_head++;
    /* Before the first run that comes after the entry: the runs queued
     * since it was seen, at the FIFO's end, usually none. */
    tp__list *before = &pool->fifo;
    while (before->prev != &pool->fifo && run_of(before->prev)->ring_pos > pos)
        before = before->prev;
    tp__run *run = spare_pop(g);
    run->group = g;
    run->count = 1;
    run->admitted_ns = g->born_ns;
    run->ring_pos = pos + 1;
    g->born_ns = 0;
    g->ring_from = pos + 1;
    tp__list_insert_before(before, &run->fifo);
    tp__list_push_back(&g->runs, &run->in_group);
    g->queued++;
    g->active++;
}

tp__group *tp__fifo_ring_group(const tp_pool *pool, uint64_t pos)
{
    TP_ASSERT_HELD((tp_pool *)pool);
    for (tp__list *n = pool->fifo.prev;
         n != &pool->fifo && run_of(n)->ring_pos >= pos + 1; n = n->prev)
        if (run_of(n)->group->ring_from == pos + 1)
            return run_of(n)->group;
    return NULL;
}

size_t tp__fifo_ring_drop(tp_pool *pool)
{
    TP_ASSERT_HELD(pool);
    size_t n = tp__fifo_ring_pending(pool);
    pool->ring_head += n;
    pool->queued_total -= n;
    (void)publish(pool);
    return n;
}

void tp__fifo_remove_group(tp_pool *pool, tp__group *g)
{
    TP_ASSERT_HELD(pool);
    tp__list_each(n, next, &g->runs)
    {
        tp__run *run = tp__container(n, tp__run, in_group);
        pool->queued_total -= run->count;
        run_unlink(pool, run);
    }
    g->active -= g->queued;
    g->queued = 0;
    (void)publish(pool);
}
