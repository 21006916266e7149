/* SPDX-License-Identifier: MIT */
/*
 * Groups: names, the name index, admission into the pool's FIFO, and
 * dropping pending starts. Every function here is called with pool->mu
 * held (see pool.c) except tp__drops_run and tp__group_free.
 *
 * A group admits a start into the pool FIFO only while fewer than
 * num_concurrent of its starts are queued, claimed or live; it admits the
 * next one when one of its tasks fully ends. So the pool FIFO sees exactly
 * the reference's order of starts.
 *
 * Lifetime: a group is "indexed" while its name is known, "listed" while
 * the pool remembers its tasks, and freed when nothing refers to it (refs
 * counts: being listed, each live task, each in-flight iterator claim, and
 * a pending drop).
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t hash(const char *s)
{
    size_t h = 1469598103934665603u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211u;
    return h;
}

tp__group *tp__group_find(tp_pool *pool, const char *name)
{
    TP_ASSERT_HELD(pool);
    if (!pool->index_cap)
        return NULL;
    tp__group *g = pool->index[hash(name) & (pool->index_cap - 1)];
    while (g && strcmp(g->name, name) != 0)
        g = g->hnext;
    return g;
}

static int index_grow(tp_pool *pool)
{
    size_t cap = pool->index_cap ? pool->index_cap * 2 : 16;
    tp__group **index = calloc(cap, sizeof *index);
    if (!index)
        return TP_ENOMEM;
    for (size_t i = 0; i < pool->index_cap; i++) {
        for (tp__group *g = pool->index[i], *next; g; g = next) {
            next = g->hnext;
            size_t j = hash(g->name) & (cap - 1);
            g->hnext = index[j];
            index[j] = g;
        }
    }
    free(pool->index);
    pool->index = index;
    pool->index_cap = cap;
    return TP_OK;
}

static tp__counter *counter_for(tp_pool *pool, const char *key)
{
    for (tp__counter *c = pool->counters; c; c = c->link)
        if (strcmp(c->key, key) == 0)
            return c;
    tp__counter *c = calloc(1, sizeof *c);
    if (!c || !(c->key = strdup(key))) {
        free(c);
        return NULL;
    }
    c->link = pool->counters;
    pool->counters = c;
    return c;
}

/* Names g: the explicit name if free, else "<prefix>-<func>-group-<i>" (or
 * "<prefix>-group-<i>" without func) with i counting per prefix and
 * function, never reused, skipping names taken explicitly. Also makes room
 * in the index, so that tp__group_attach cannot fail. */
int tp__group_name(tp_pool *pool, tp__group *g, const char *explicit_name,
                   const char *prefix, const char *func)
{
    TP_ASSERT_HELD(pool);
    if (pool->n_indexed + 1 > pool->index_cap && index_grow(pool))
        return TP_ENOMEM;
    if (explicit_name) {
        if (tp__group_find(pool, explicit_name))
            return TP_EGROUP_EXISTS;
        strcpy(g->name, explicit_name); /* length checked by the caller */
        return TP_OK;
    }
    char key[TP_NAME_MAX];
    int n = func ? snprintf(key, sizeof key, "%s-%s", prefix, func)
                 : snprintf(key, sizeof key, "%s", prefix);
    if (n < 0 || (size_t)n >= sizeof key)
        return TP_EINVAL;
    tp__counter *c = counter_for(pool, key);
    if (!c)
        return TP_ENOMEM;
    do {
        n = snprintf(g->name, sizeof g->name, "%s-group-%zu", key, c->next++);
        if (n < 0 || (size_t)n >= sizeof g->name)
            return TP_EINVAL;
    } while (tp__group_find(pool, g->name));
    return TP_OK;
}

void tp__group_attach(tp_pool *pool, tp__group *g)
{
    TP_ASSERT_HELD(pool);
    size_t j = hash(g->name) & (pool->index_cap - 1);
    g->hnext = pool->index[j];
    pool->index[j] = g;
    g->indexed = true;
    pool->n_indexed++;
    g->next = pool->groups;
    if (g->next)
        g->next->prev = g;
    g->prev = NULL;
    pool->groups = g;
    g->listed = true;
    g->refs = 1;
}

void tp__group_unindex(tp_pool *pool, tp__group *g)
{
    TP_ASSERT_HELD(pool);
    if (!g->indexed)
        return;
    tp__group **p = &pool->index[hash(g->name) & (pool->index_cap - 1)];
    while (*p != g)
        p = &(*p)->hnext;
    *p = g->hnext;
    g->indexed = false;
    pool->n_indexed--;
}

void tp__group_free(tp__group *g)
{
    if (!g)
        return;
    free(g->block);
    free(g->ids);
    free(g);
}

void tp__group_unref(tp_pool *pool, tp__group *g)
{
    TP_ASSERT_HELD(pool);
    assert(g->refs > 0);
    if (--g->refs == 0)
        tp__group_free(g);
}

bool tp__group_pending(const tp__group *g)
{
    if (g->dropping)
        return true;
    if (g->src == TP__SRC_ITER)
        /* A worker inside next() holds a claim. */
        return !g->iter_over || g->queued || g->claims;
    return g->next_arg < g->nargs;
}

/* A group with no pending starts, no live tasks and no known ids is
 * forgotten: unindexed, unlisted, and freed once nothing refers to it. */
void tp__group_retire_if_empty(tp_pool *pool, tp__group *g)
{
    TP_ASSERT_HELD(pool);
    if (!g->listed || g->live || g->nids || tp__group_pending(g))
        return;
    tp__group_unindex(pool, g);
    if (g->prev)
        g->prev->next = g->next;
    else
        pool->groups = g->next;
    if (g->next)
        g->next->prev = g->prev;
    g->listed = false;
    tp__changed(pool);
    tp__group_unref(pool, g);
}

static void fifo_append(tp_pool *pool, tp__group *g, size_t count)
{
    tp__run *tail = pool->fifo_tail;
    if (tail && tail->group == g) {
        tail->count += count;
    } else {
        tp__run *run = pool->spare_runs;
        if (run) {
            pool->spare_runs = run->next;
            pool->n_spare_runs--;
        } else {
            run = malloc(sizeof *run);
        }
        if (!run) {
            tp__log_locked(pool, TP_LOG_ERROR,
                           "%s: out of memory queueing starts of %s",
                           pool->name, g->name);
            return;
        }
        *run = (tp__run){g, count, NULL};
        if (tail)
            tail->next = run;
        else
            pool->fifo_head = run;
        pool->fifo_tail = run;
    }
    g->queued += count;
    g->active += count;
    pool->queued_total += count;
}

void tp__run_free(tp_pool *pool, tp__run *run)
{
    TP_ASSERT_HELD(pool);
    if (pool->n_spare_runs < 64) {
        run->next = pool->spare_runs;
        pool->spare_runs = run;
        pool->n_spare_runs++;
    } else {
        free(run);
    }
}

void tp__group_admit(tp_pool *pool, tp__group *g)
{
    TP_ASSERT_HELD(pool);
    if (g->active >= g->limit)
        return;
    size_t room = g->limit - g->active, count;
    if (g->src == TP__SRC_ITER) {
        count = g->iter_over ? 0 : room;
    } else {
        size_t unadmitted = g->nargs - g->next_arg - g->queued;
        count = unadmitted < room ? unadmitted : room;
    }
    if (count)
        fifo_append(pool, g, count);
}

void tp__fifo_remove(tp_pool *pool, tp__group *g)
{
    TP_ASSERT_HELD(pool);
    tp__run **p = &pool->fifo_head, *last = NULL;
    while (*p) {
        tp__run *run = *p;
        if (run->group == g) {
            *p = run->next;
            pool->queued_total -= run->count;
            tp__run_free(pool, run);
        } else {
            last = run;
            p = &run->next;
        }
    }
    pool->fifo_tail = last;
    g->active -= g->queued;
    g->queued = 0;
}

void tp__group_drop(tp_pool *pool, tp__group *g, tp__group **drops)
{
    TP_ASSERT_HELD(pool);
    if (g->dropping || !tp__group_pending(g))
        return;
    tp__fifo_remove(pool, g);
    if (g->src == TP__SRC_ITER) {
        g->iter_over = true;
        /* A worker inside next() calls done when it returns. */
        g->drop_done = !g->iter_busy && !g->done_called;
        g->done_called |= g->drop_done;
        g->drop_from = g->drop_to = 0;
    } else {
        g->drop_from = g->next_arg;
        g->drop_to = g->nargs;
        g->next_arg = g->nargs;
        g->drop_done = false;
    }
    g->refs++;
    g->dropping = true;
    g->drop_next = *drops;
    *drops = g;
}

void tp__drops_run(tp_pool *pool, tp__group *drops)
{
    for (tp__group *g = drops; g; g = g->drop_next) {
        for (size_t i = g->drop_from; g->discard && i < g->drop_to; i++)
            g->discard(tp__group_arg(g, i), g->cb_arg);
        if (g->drop_done && g->iter.done)
            g->iter.done(g->iter.state);
    }
    if (!drops)
        return;
    tp__lock(pool);
    for (tp__group *g = drops, *next; g; g = next) {
        next = g->drop_next;
        g->dropping = false;
        tp__group_retire_if_empty(pool, g);
        tp__group_unref(pool, g);
    }
    tp__changed(pool);
    tp__unlock(pool);
}

void *tp__group_arg(const tp__group *g, size_t i)
{
    return g->src == TP__SRC_APPLY ? g->arg : g->args[i];
}

int tp__group_reserve_id(tp__group *g)
{
    if (g->nids < g->idcap)
        return 0;
    size_t cap = g->idcap ? g->idcap * 2 : 4;
    tp_id *ids = realloc(g->ids, cap * sizeof *ids);
    if (!ids)
        return -1;
    g->ids = ids;
    g->idcap = cap;
    return 0;
}

void tp__group_add_id(tp__group *g, tp_id id)
{
    assert(g->nids < g->idcap);
    g->ids[g->nids++] = id;
}

bool tp__group_has_id(const tp__group *g, tp_id id)
{
    size_t lo = 0, hi = g->nids;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (g->ids[mid] < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < g->nids && g->ids[lo] == id;
}
