/* SPDX-License-Identifier: MIT */
/*
 * Pools: lifecycle, size, lock, counters, flush, gather and close: the
 * top-level API, over the engine's files (locking: lock.c).
 *
 * Threads:
 *  - Callers of the API take pool->mu briefly. Spawning calls never wait.
 *  - Worker threads (worker.c) claim starts from the FIFO (sem.c), run the
 *    task function with no lock, then take the lock to record the end and
 *    claim the next start in the same critical section.
 *  - End, cancel and discard callbacks run on the worker (or on the thread
 *    that dropped the start) after the lock is released.
 *
 * Order: pending starts join the pool FIFO when their group admits them
 * (group.c) and are claimed strictly first in, first out. Ids are assigned
 * at the claim, so ids follow start order; task messages are written in
 * that order (log.c's turns). tp_stop cancels the live list from its tail:
 * the most recently started first.
 *
 * Waiting: flush, gather, until_closed and free wait on pool->changed,
 * which is broadcast (only when someone waits) when the last live task
 * ends or one that a flush waits for, when a group stops having pending
 * starts, when an iterator becomes free, a worker retires, or the pool
 * closes.
 */
#include "internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static atomic_size_t pool_index;

static tp_pool *pool_create(int kind, const tp_pool_opts *opts)
{
    static const tp_pool_opts defaults;
    if (!opts)
        opts = &defaults;
    const char *prefix = kind == TP__SIMPLE ? "SimpleTaskPool" : "TaskPool";
    if (opts->name && strlen(opts->name) + strlen(prefix) + 2 > TP_NAME_MAX)
        return NULL;
    if (opts->idle_timeout != opts->idle_timeout) /* NaN */
        return NULL;

    /* Aligned for the inbox's cache lines (internal.h). */
    tp_pool *pool = aligned_alloc(_Alignof(tp_pool), sizeof *pool);
    if (!pool)
        return NULL;
    memset(pool, 0, sizeof *pool);
    /* A plain mutex: tp__lock (lock.c) decides when to spin for it. */
    int rc = pthread_mutex_init(&pool->mu, NULL);
    if (rc) {
        free(pool);
        return NULL;
    }
    if (tp__cond_init(&pool->changed)) {
        pthread_mutex_destroy(&pool->mu);
        free(pool);
        return NULL;
    }
    size_t index = atomic_fetch_add(&pool_index, 1);
    if (opts->name)
        snprintf(pool->name, sizeof pool->name, "%s-%s", prefix, opts->name);
    else
        snprintf(pool->name, sizeof pool->name, "%s-%zu", prefix, index);
    pool->kind = kind;
    pool->deferred_level = -1;
    tp__list_init(&pool->tasks);
    tp__list_init(&pool->groups);
    tp__list_init(&pool->fifo);
    tp__list_init(&pool->idle);
    tp__logq_init(&pool->logq);
    tp__sem_resize(pool, opts->pool_size ? opts->pool_size : TP_UNLIMITED);
    pool->stack_size = opts->stack_size ? opts->stack_size : 256 * 1024;
    pool->idle_timeout = opts->idle_timeout ? opts->idle_timeout : 10.0;
    pool->forget_ended = opts->forget_ended;
    pool->timings_on = !opts->no_timings;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    pool->spin_threads = 4 * (size_t)(cpus > 0 ? cpus : 1);
    return pool;
}

tp_pool *tp_pool_new(const tp_pool_opts *opts)
{
    tp_pool *pool = pool_create(TP__GENERAL, opts);
    if (pool)
        tp__log(TP_LOG_DEBUG, "%s initialized", pool->name);
    return pool;
}

tp_pool *tp_simple_pool_new(tp_fn fn, void *arg, const tp_pool_opts *popts,
                            const tp_opts *opts)
{
    const char *func = opts && opts->func_name ? opts->func_name : "func";
    if (!fn || strlen(func) >= TP_NAME_MAX)
        return NULL;
    tp_pool *pool = pool_create(TP__SIMPLE, popts);
    if (!pool)
        return NULL;
    pool->simple_fn = fn;
    pool->simple_arg = arg;
    if (opts)
        pool->simple_opts = *opts;
    pool->simple_opts.group_name = NULL;
    pool->simple_opts.func_name = NULL;
    strcpy(pool->func_name, func);
    tp__log(TP_LOG_DEBUG, "%s initialized", pool->name);
    return pool;
}

const char *tp_pool_name(const tp_pool *pool)
{
    return pool ? pool->name : NULL;
}

const char *tp_func_name(const tp_pool *pool)
{
    return pool && pool->kind == TP__SIMPLE ? pool->func_name : NULL;
}

bool tp__in_pool(const tp_pool *pool)
{
    return tp__self && tp__self->pool == pool;
}

/* Getters take the lock so that they see a consistent state; they are
 * logically const. */
#define GETTER(type, fn, expr)                                                 \
    type fn(const tp_pool *cpool)                                              \
    {                                                                          \
        tp_pool *pool = (tp_pool *)cpool;                                      \
        if (!pool)                                                             \
            return 0;                                                          \
        tp__enter(pool);                                                        \
        type v = (expr);                                                       \
        tp__unlock(pool);                                                      \
        return v;                                                              \
    }

GETTER(size_t, tp_pool_size, pool->size)
GETTER(bool, tp_is_locked, pool->locked)
GETTER(bool, tp_is_full, tp__sem_room(pool) == 0)
GETTER(size_t, tp_num_running, pool->n_running)
GETTER(size_t, tp_num_cancelled, pool->n_cancelled)
GETTER(size_t, tp_num_ended, pool->n_ended)

int tp_set_pool_size(tp_pool *pool, size_t size)
{
    if (!pool)
        return TP_EINVAL;
    tp__enter(pool);
    tp__sem_resize(pool, size);
    /* Drains first: a per-call submitter that saw the pool full before the
     * resize left its push to the workers. */
    int rc = tp__dispatch(pool);
    tp__unlock(pool);
    return rc;
}

/* While the pool refuses spawns, or a gather is closing it, every spawn
 * takes the lock (inbox.c): a gather sees each spawn that a tp_unlock let
 * in meanwhile, and none gets in once the pool is closed. */
static void shut_fast_path(tp_pool *pool)
{
    tp__inbox_shut(pool, pool->locked || pool->closed || pool->freeing ||
                             pool->gathering);
}

static void set_locked(tp_pool *pool, bool locked, const char *message)
{
    if (!pool)
        return;
    tp__enter(pool);
    bool changed = pool->locked != locked;
    pool->locked = locked;
    shut_fast_path(pool);
    tp__unlock(pool);
    if (changed)
        tp__log(TP_LOG_INFO, message, pool->name);
}

void tp_lock(tp_pool *pool)
{
    set_locked(pool, true, "%s is locked!");
}

void tp_unlock(tp_pool *pool)
{
    set_locked(pool, false, "%s was unlocked.");
}

int tp_get_stats(const tp_pool *cpool, tp_stats *out)
{
    tp_pool *pool = (tp_pool *)cpool;
    if (!pool || !out)
        return TP_EINVAL;
    tp__enter(pool);
    /* O(1) unless the pool has map_iter groups (see pool->pending_args). */
    size_t pending = pool->pending_args, walked = 0;
    if (pool->n_iter_groups || TP_DEBUG_CHECKS)
        tp__list_each(n, next, &pool->groups)
        {
            tp__group *g = tp__container(n, tp__group, node);
            if (g->compact)
                continue;
            if (g->src == TP__SRC_ITER)
                pending += g->queued + g->from.iter.claims;
            else
                walked += g->nargs - g->next_arg;
        }
    walked += tp__fifo_ring_pending(pool);
    assert(!TP_DEBUG_CHECKS || walked == pool->pending_args);
    (void)walked; /* read only by the assert */
    *out = (tp_stats){
        .pool_size = pool->size,
        .running = pool->n_running,
        .cancelled = pool->n_cancelled,
        .ended = pool->n_ended,
        .pending = pending,
        .groups = pool->n_indexed + tp__fifo_ring_pending(pool),
        .threads = pool->threads,
        .idle_threads = pool->n_idle,
        .total_started = pool->total_started,
        .total_ended = pool->total_ended,
        .total_cancelled = pool->total_cancelled,
        .total_failed = pool->total_failed,
        .total_refused = pool->total_refused,
        .total_dropped = pool->total_dropped,
    };
    tp__unlock(pool);
    return TP_OK;
}

/* Forgets every fully ended task: the ids in groups that are no longer
 * live. Groups left with nothing are forgotten too. */
static void forget_ended(tp_pool *pool)
{
    TP_ASSERT_HELD(pool);
    tp__list_each(n, next, &pool->groups)
    {
        tp__group *g = tp__container(n, tp__group, node);
        size_t kept = 0;
        for (size_t i = 0; !g->compact && i < g->nids; i++)
            if (tp__idmap_get(&pool->live, g->ids[i]))
                g->ids[kept++] = g->ids[i];
        pool->n_ended -= tp__group_nids(g) - kept;
        if (g->compact)
            g->has_id = false;
        else
            g->nids = kept;
        tp__group_retire_if_empty(pool, g);
    }
}

int tp_flush(tp_pool *pool)
{
    if (!pool)
        return TP_EINVAL;
    if (tp__in_pool(pool))
        return TP_EDEADLK;
    tp__enter(pool);
    /* The tasks to wait for: cancelled or ended, callbacks not yet done. */
    size_t n = 0, cap = 0;
    tp_id *ids = NULL;
    tp__list_each(node, next, &pool->tasks)
    {
        tp_task *t = tp__container(node, tp_task, live_node);
        if (t->state == TP__RUNNING)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            tp_id *grown = realloc(ids, cap * sizeof *ids);
            if (!grown) {
                tp__unlock(pool);
                free(ids);
                return TP_ENOMEM;
            }
            ids = grown;
        }
        ids[n++] = t->id;
        t->flush_wait = true;
    }
    for (size_t i = 0; i < n;) {
        if (tp__idmap_get(&pool->live, ids[i]))
            tp__wait_changed(pool, NULL);
        else
            i++;
    }
    forget_ended(pool);
    tp__unlock(pool);
    free(ids);
    return TP_OK;
}

/* True if some group has starts still to come: O(1) from the counters,
 * unless map_iter groups need a look. */
static bool walk_pending(tp_pool *pool)
{
    if (tp__fifo_ring_pending(pool))
        return true; /* per-call submissions not started yet */
    tp__list_each(n, next, &pool->groups)
    {
        if (tp__group_pending(tp__container(n, tp__group, node)))
            return true;
    }
    return false;
}

static bool any_pending(tp_pool *pool)
{
    bool pending = pool->pending_args || pool->n_unsettled ||
                   (pool->n_iter_groups && walk_pending(pool));
    assert(!TP_DEBUG_CHECKS || pending == walk_pending(pool));
    return pending;
}

int tp_gather_and_close(tp_pool *pool)
{
    if (!pool)
        return TP_EINVAL;
    if (tp__in_pool(pool))
        return TP_EDEADLK;
    tp__enter(pool);
    bool closed = pool->closed;
    if (!closed) {
        /* For good: a tp_unlock while this gather waits must not reopen
         * the fast path, whose pushes this gather would not see. */
        pool->gathering = true;
        shut_fast_path(pool);
    }
    tp__unlock(pool);
    if (closed)
        return TP_ECLOSED;
    tp_lock(pool);

    tp__enter(pool);
    while (!pool->closed && (pool->live.len || any_pending(pool))) {
        /* Starts may have been left without a thread when one could not
         * be created: ask again, and if that fails retry shortly. The
         * dispatch may unlock, so the state is checked again after it. */
        int rc = tp__dispatch(pool);
        if (pool->closed || !(pool->live.len || any_pending(pool)))
            break;
        struct timespec soon = tp__deadline(CLOCK_MONOTONIC, 0.01);
        tp__wait_changed(pool, rc == TP_OK ? NULL : &soon);
    }
    if (!pool->closed) {
        forget_ended(pool);
        /* What remains listed are groups without tasks or pending starts
         * that are still indexed: forget them too. */
        tp__list_each(n, next, &pool->groups)
        {
            tp__group *g = tp__container(n, tp__group, node);
            tp__group_unindex(pool, g);
            tp__group_retire_if_empty(pool, g);
        }
        pool->closed = true;
        tp__changed(pool);
    }
    tp__unlock(pool);
    return TP_OK;
}

int tp_until_closed(tp_pool *pool, double timeout)
{
    if (!pool || timeout != timeout)
        return TP_EINVAL;
    if (tp__in_pool(pool))
        return TP_EDEADLK;
    struct timespec deadline = tp__deadline(CLOCK_MONOTONIC, timeout);
    tp__enter(pool);
    bool ok = true;
    while (!pool->closed && ok)
        ok = tp__wait_changed(pool, timeout < 0 ? NULL : &deadline);
    bool closed = pool->closed;
    tp__unlock(pool);
    return closed ? TP_OK : TP_ETIMEDOUT;
}

void tp_pool_free(tp_pool *pool)
{
    if (!pool)
        return;
    if (tp__in_pool(pool)) {
        tp__log(TP_LOG_ERROR, "%s cannot be freed by its own task", pool->name);
        return;
    }
    tp__enter(pool);
    pool->locked = true;
    pool->freeing = true;
    shut_fast_path(pool);
    (void)tp__inbox_drop(pool); /* see tp_cancel_all */
    tp__group *drops = NULL;
    tp__list_each(n, next, &pool->groups)
    {
        tp__group *g = tp__container(n, tp__group, node);
        tp__group_drop(pool, g, &drops);
        tp__group_unindex(pool, g);
    }
    tp__wakes wakes = {0};
    tp__list_each(n, next, &pool->tasks)
    {
        tp__cancel_later(pool, tp__container(n, tp_task, live_node), &wakes);
    }
    tp__unlock(pool);
    tp__wake_all(&wakes);
    tp__drops_run(pool, drops);

    tp__enter(pool);
    /* Idle workers retire when woken with freeing set; busy ones retire
     * once their task has ended and nothing is left to claim. */
    tp__list_each(n, next, &pool->idle)
    {
        tp__worker *w = tp__container(n, tp__worker, idle_node);
        tp__list_remove(n);
        pthread_cond_signal(&w->park);
    }
    pool->n_idle = 0;
    while (pool->threads)
        tp__wait_changed(pool, NULL);
    forget_ended(pool);
    assert(tp__list_empty(&pool->groups) && tp__list_empty(&pool->fifo) &&
           tp__list_empty(&pool->tasks));
    tp__unlock(pool);
    tp__reap(pool);

    for (tp__counter *c = pool->counters, *next; c; c = next) {
        next = c->link;
        free(c->func);
        free(c);
    }
    tp__idmap_free(&pool->live);
    tp__rec_pool_free(pool);
    tp__ring_free(&pool->ring);
    free(pool->index);
    tp__logq_destroy(&pool->logq);
    pthread_cond_destroy(&pool->changed);
    pthread_mutex_destroy(&pool->mu);
    free(pool);
}

/* ---- timings ---- */

int tp_get_timings(const tp_pool *cpool, tp_timings *out)
{
    tp_pool *pool = (tp_pool *)cpool;
    if (!pool || !out)
        return TP_EINVAL;
    *out = (tp_timings){0};
    for (unsigned i = 0; i < TP__SHARDS; i++)
        tp__timings_sum(out, &pool->timings[i]);
    return TP_OK;
}

/* ---- listing groups ---- */

/* A generated name to format once the lock is released. */
typedef struct later_name {
    tp__counter *counter; /* NULL: an explicit name, copied already */
    size_t index;
} later_name;

void tp_groups_free(tp_groups *groups)
{
    if (!groups)
        return;
    free(groups->v);
    *groups = (tp_groups){0, NULL};
}

/* Counts the indexed groups and the bytes of their names. */
static void groups_size(tp_pool *pool, size_t *n, size_t *bytes)
{
    *n = *bytes = 0;
    tp__list_each(node, next, &pool->groups)
    {
        tp__group *g = tp__container(node, tp__group, node);
        if (!g->indexed)
            continue;
        (*n)++;
        *bytes += tp__group_name_len(g) + 1;
    }
}

int tp_get_groups(tp_pool *pool, tp_groups *out)
{
    if (out)
        *out = (tp_groups){0, NULL};
    if (!pool || !out)
        return TP_EINVAL;
    /* Size the one allocation without holding the lock while allocating;
     * if the groups grew meanwhile, size again. */
    size_t n, bytes, cap_n = 0, cap_bytes = 0;
    char *block = NULL;
    later_name *later = NULL;
    for (;;) {
        /* Per-call submissions not yet seen as groups are listed too. */
        bool all = tp__enter_groups(pool);
        groups_size(pool, &n, &bytes);
        if (all && n <= cap_n && bytes <= cap_bytes)
            break;
        tp__unlock(pool);
        free(block);
        free(later);
        cap_n = n + n / 8 + 16;
        cap_bytes = bytes + bytes / 8 + 16 * 32;
        block = all ? malloc(cap_n * sizeof(tp_group_info) + cap_bytes) : NULL;
        later = all ? malloc(cap_n * sizeof *later) : NULL;
        if (!block || !later) {
            free(block);
            free(later);
            return TP_ENOMEM;
        }
    }
    tp_group_info *v = (tp_group_info *)block;
    char *text = block + cap_n * sizeof(tp_group_info);
    size_t i = 0;
    tp__list_each(node, next, &pool->groups)
    {
        tp__group *g = tp__container(node, tp__group, node);
        if (!g->indexed)
            continue;
        tp__group_counts(g, &v[i]);
        v[i].name = text;
        size_t len = tp__group_name_len(g);
        later[i] = (later_name){g->counter, g->index};
        if (!g->counter)
            memcpy(text, g->xname, len + 1);
        text += len + 1;
        i++;
    }
    tp__unlock(pool);
    /* Counters live as long as the pool: format generated names now. */
    for (size_t j = 0; j < i; j++) {
        if (!later[j].counter)
            continue;
        tp__group probe = {.counter = later[j].counter,
                           .index = later[j].index};
        char name[TP_NAME_MAX];
        tp__group_format(&probe, name);
        memcpy((char *)v[j].name, name, strlen(name) + 1);
    }
    free(later);
    *out = (tp_groups){i, i ? v : NULL};
    if (!i)
        free(block);
    return TP_OK;
}
