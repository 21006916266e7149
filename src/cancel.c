/* SPDX-License-Identifier: MIT */
/*
 * Cancelling: single tasks, groups, everything, and the simple pool's
 * LIFO stop; and looking up group ids. Locking as in pool.c: decisions are
 * made under pool->mu, discard and done calls after it is released.
 */
#include "internal.h"

#include <stdlib.h>

/* The error for an id that is not live: ended (still known) or unknown. */
static int not_live(tp_pool *pool, tp_id id)
{
    TP_ASSERT_HELD(pool);
    if (id >= 0 && id < pool->next_id)
        tp__list_each(n, next, &pool->groups)
        {
            if (tp__group_has_id(tp__container(n, tp__group, node), id))
                return TP_EALREADY_ENDED;
        }
    return TP_ENOTASK;
}

/* What cancelling id would say: TP_OK if its task is running. */
static int status(tp_pool *pool, tp_id id)
{
    TP_ASSERT_HELD(pool);
    tp_task *t = tp__idmap_get(&pool->live, id);
    return !t                          ? not_live(pool, id)
           : t->state == TP__CANCELLED ? TP_EALREADY_CANCELLED
           : t->state == TP__ENDED     ? TP_EALREADY_ENDED
                                       : TP_OK;
}

int tp_task_status(tp_pool *pool, tp_id id)
{
    if (!pool)
        return TP_EINVAL;
    tp__enter(pool);
    int rc = status(pool, id);
    tp__unlock(pool);
    return rc;
}

int tp_cancel(tp_pool *pool, const tp_id ids[], size_t n)
{
    if (!pool || (!ids && n))
        return TP_EINVAL;
    tp__enter(pool);
    for (size_t i = 0; i < n; i++) {
        int rc = status(pool, ids[i]);
        if (rc != TP_OK) {
            tp__unlock(pool);
            return rc;
        }
    }
    tp__wakes wakes = {0};
    for (size_t i = 0; i < n; i++)
        tp__cancel_later(pool, tp__idmap_get(&pool->live, ids[i]), &wakes);
    tp__unlock(pool);
    tp__wake_all(&wakes);
    return TP_OK;
}

/* Drops g's pending starts, forgets its name and cancels its tasks. */
static void cancel_group(tp_pool *pool, tp__group *g, tp__group **drops,
                         tp__wakes *wakes)
{
    TP_ASSERT_HELD(pool);
    tp__group_drop(pool, g, drops);
    tp__group_unindex(pool, g);
    if (!g->compact) {
        tp__list_each(n, next, &g->tasks)
        {
            tp__cancel_later(pool, tp__container(n, tp_task, group_node),
                             wakes);
        }
    }
    tp__group_retire_if_empty(pool, g);
}

int tp_cancel_group(tp_pool *pool, const char *group)
{
    if (!pool || !group)
        return TP_EINVAL;
    tp__wakes wakes = {0};
    bool all = tp__enter_groups(pool);
    tp__group *g = tp__group_find(pool, group), *drops = NULL;
    if (g)
        cancel_group(pool, g, &drops, &wakes);
    tp__unlock(pool);
    tp__wake_all(&wakes);
    tp__drops_run(pool, drops);
    return g ? TP_OK : all ? TP_ENOGROUP : TP_ENOMEM;
}

void tp_cancel_all(tp_pool *pool)
{
    if (!pool)
        return;
    tp__log(TP_LOG_WARNING, "%s cancelling all tasks!", pool->name);
    tp__wakes wakes = {0};
    tp__enter(pool);
    /* Per-call submissions not yet started have no group and nothing to
     * call back: drop them at once. */
    (void)tp__inbox_drop(pool);
    tp__group *drops = NULL;
    tp__list_each(n, next, &pool->groups)
    {
        tp__group *g = tp__container(n, tp__group, node);
        if (g->indexed)
            cancel_group(pool, g, &drops, &wakes);
    }
    tp__unlock(pool);
    tp__wake_all(&wakes);
    tp__drops_run(pool, drops);
}

int tp_stop(tp_pool *pool, size_t num, tp_ids *stopped)
{
    if (stopped)
        *stopped = (tp_ids){0, NULL};
    if (!pool)
        return TP_EINVAL;
    if (pool->kind != TP__SIMPLE)
        return TP_EWRONG_POOL;
    tp__enter(pool);
    size_t k = num < pool->n_running ? num : pool->n_running;
    tp_id *ids = NULL;
    if (stopped && k && !(ids = malloc(k * sizeof *ids))) {
        tp__unlock(pool);
        return TP_ENOMEM;
    }
    size_t j = 0;
    tp__wakes wakes = {0};
    for (tp__list *n = pool->tasks.prev; n != &pool->tasks && j < k;
         n = n->prev) {
        tp_task *t = tp__container(n, tp_task, live_node);
        if (!tp__cancel_later(pool, t, &wakes))
            continue;
        if (ids)
            ids[j] = t->id;
        j++;
    }
    tp__unlock(pool);
    tp__wake_all(&wakes);
    if (stopped)
        *stopped = (tp_ids){j, ids};
    return TP_OK;
}

int tp_stop_all(tp_pool *pool, tp_ids *stopped)
{
    return tp_stop(pool, SIZE_MAX, stopped);
}

void tp_ids_free(tp_ids *ids)
{
    if (!ids)
        return;
    free(ids->v);
    *ids = (tp_ids){0, NULL};
}

static int by_id(const void *a, const void *b)
{
    tp_id x = *(const tp_id *)a, y = *(const tp_id *)b;
    return (x > y) - (x < y);
}

int tp_get_group_ids(tp_pool *pool, const char *const groups[], size_t n,
                     tp_ids *out)
{
    if (out)
        *out = (tp_ids){0, NULL};
    if (!pool || !out || (!groups && n))
        return TP_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!groups[i])
            return TP_EINVAL;
    bool all = tp__enter_groups(pool);
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        tp__group *g = tp__group_find(pool, groups[i]);
        if (!g) {
            tp__unlock(pool);
            return all ? TP_ENOGROUP : TP_ENOMEM;
        }
        total += tp__group_nids(g);
    }
    tp_id *v = total ? malloc(total * sizeof *v) : NULL;
    if (total && !v) {
        tp__unlock(pool);
        return TP_ENOMEM;
    }
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        tp__group *g = tp__group_find(pool, groups[i]);
        for (size_t j = 0; j < tp__group_nids(g); j++)
            v[len++] = tp__group_ids(g)[j];
    }
    tp__unlock(pool);
    /* A group named twice contributes its ids once. */
    if (len)
        qsort(v, len, sizeof *v, by_id);
    size_t kept = 0;
    for (size_t i = 0; i < len; i++)
        if (kept == 0 || v[kept - 1] != v[i])
            v[kept++] = v[i];
    *out = (tp_ids){kept, v};
    return TP_OK;
}
