/* SPDX-License-Identifier: MIT */
/*
 * Spawning calls: apply, the map family and tp_start. Each builds a group
 * without the lock (copying what the header says is copied), then under
 * pool->mu names it, lets it admit its first starts into the FIFO, and
 * makes sure workers head for them. None of them waits for room.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* Checks what every spawning call has in common. */
static int check(tp_pool *pool, const void *fn, int kind, const tp_opts *opts)
{
    if (!pool)
        return TP_EINVAL;
    if (pool->kind != kind)
        return TP_EWRONG_POOL;
    if (!fn)
        return TP_EINVAL;
    if (opts && opts->group_name && strlen(opts->group_name) >= TP_NAME_MAX)
        return TP_EINVAL;
    if (opts && opts->func_name && strlen(opts->func_name) >= TP_NAME_MAX)
        return TP_EINVAL;
    return TP_OK;
}

static const char apply_prefix[] = "apply", start_prefix[] = "start";

/* True if some worker will drain the inbox without being woken: one spins
 * for work, or every slot is occupied and the worker that frees one
 * drains before it claims (see inbox.c). */
static bool drain_is_due(tp_pool *pool)
{
    return atomic_load(&pool->watching) || atomic_load(&pool->full);
}

/* The per-call fast path (inbox.c): a one-task tp_apply or tp_start, no
 * name asked for, no callbacks of its own, whose counter of generated
 * names (prefix, func) is the pool's fast counter (the name itself is
 * given in the pool's order when the pool sees it). True once pushed, with
 * *rc the answer; otherwise the caller takes the lock. */
static bool spawn_fast(tp_pool *pool, tp_fn fn, void *arg, const char *prefix,
                       const char *func, int *rc)
{
    tp__counter *c =
        atomic_load_explicit(&pool->fast_counter, memory_order_acquire);
    if (!c || c->prefix != prefix || !c->func != !func ||
        (func && strcmp(c->func, func) != 0))
        return false;
    /* Admitted, for its queue wait, when it is pushed: on a full pool it
     * waits in the ring for room. (timings_on is set at creation.) */
    uint64_t pos;
    if (!tp__inbox_push(pool, fn, arg, pool->timings_on ? tp__now_ns() : 0,
                        &pos))
        return false;
    /* It may be running, or done, by now. Unless some worker is due to
     * see it (or that worker stopped meanwhile, and may have looked before
     * the push), drain and make sure a worker heads for the start. The
     * workers that were due still exist (idle ones are woken first), so
     * dispatching cannot leave the start without one. If no thread could
     * be had, the start is withdrawn unless it started, and the call
     * answers the dispatch's error (as tp__spawn does): it might wait for
     * a worker forever. */
    *rc = TP_OK;
    if (!drain_is_due(pool)) {
        tp__lock(pool); /* dispatch sees what is published */
        int err = tp__dispatch(pool);
        if (err != TP_OK && tp__inbox_withdraw(pool, pos))
            *rc = err;
        tp__unlock(pool);
    }
    return true;
}

/* True if a one-task call with these options may take the fast path: its
 * group would have no name of its own and no callbacks (a simple pool's
 * come from the pool, given when its group is made; a discard would have
 * to be called if the pool dropped the entry). */
static bool fast_eligible(const tp_pool *pool, const tp_opts *opts)
{
    if (pool->kind == TP__SIMPLE)
        return !pool->simple_opts.discard;
    return !opts || (!opts->group_name && !opts->end_callback &&
                     !opts->cancel_callback && !opts->discard);
}

int tp__spawn(tp_pool *pool, tp__group *g, const tp_opts *opts,
              const char *prefix, char group_out[TP_NAME_MAX])
{
    const char *func = NULL;
    if (pool->kind == TP__GENERAL)
        func = opts && opts->func_name ? opts->func_name : "func";
    /* An explicit name must not be a pending per-call group's: those have
     * their groups made first. */
    bool all = g->xname[0] ? tp__enter_groups(pool) : (tp__enter(pool), true);
    int rc = pool->closed ? TP_ECLOSED : pool->locked ? TP_ELOCKED : TP_OK;
    if (rc == TP_OK && !all)
        rc = TP_ENOMEM;
    pool->total_refused += rc != TP_OK;
    if (rc == TP_OK)
        rc = tp__group_name(pool, g, prefix, func);
    if (rc != TP_OK) {
        tp__unlock(pool);
        tp__group_free(g);
        return rc;
    }
    /* Later one-task calls like the pool's first one may take the fast
     * path: their entries in the ring are all named by this counter. */
    if ((prefix == apply_prefix || prefix == start_prefix) && g->counter &&
        g->counter->key_len + 7 + 20 < TP_NAME_MAX &&
        !atomic_load_explicit(&pool->fast_counter, memory_order_relaxed))
        atomic_store_explicit(&pool->fast_counter, g->counter,
                              memory_order_release);
    tp__group_attach(pool, g);
    tp__group_admit(pool, g);
    /* Dispatching may unlock, and meanwhile the group may run, end and be
     * flushed: keep it alive until we are done with it. */
    g->refs++;
    rc = tp__dispatch(pool);
    if (rc != TP_OK && g->nids == 0 && tp__group_claims(g) == 0) {
        /* No thread could be had and nothing of this call started:
         * withdraw the whole call. */
        tp__group_withdraw(pool, g);
        tp__group_unref(pool, g);
        tp__unlock(pool);
        return rc;
    }
    if (group_out) /* formatted only when asked */
        tp__group_format(g, group_out);
    tp__group_unref(pool, g);
    tp__unlock(pool);
    return TP_OK;
}

int tp_apply(tp_pool *pool, tp_fn fn, void *arg, size_t num,
             const tp_opts *opts, char group_out[TP_NAME_MAX])
{
    int rc = check(pool, (const void *)fn, TP__GENERAL, opts);
    if (rc != TP_OK)
        return rc;
    if (num == 0)
        return TP_EINVAL;
    if (num == 1 && !group_out && fast_eligible(pool, opts) &&
        spawn_fast(pool, fn, arg, apply_prefix,
                   opts && opts->func_name ? opts->func_name : "func", &rc))
        return rc;
    tp__group *g = tp__group_new(TP__CALL_FN, TP__SRC_APPLY, SIZE_MAX, opts);
    if (!g)
        return TP_ENOMEM;
    g->f.fn = fn;
    g->from.arg = arg;
    g->nargs = num;
    return tp__spawn(pool, g, opts, apply_prefix, group_out);
}

int tp_start(tp_pool *pool, size_t num, char group_out[TP_NAME_MAX])
{
    int rc = pool ? check(pool, (const void *)pool->simple_fn, TP__SIMPLE, NULL)
                  : TP_EINVAL;
    if (rc != TP_OK)
        return rc;
    if (num == 0)
        return TP_EINVAL;
    if (num == 1 && !group_out && fast_eligible(pool, NULL) &&
        spawn_fast(pool, pool->simple_fn, pool->simple_arg, start_prefix, NULL,
                   &rc))
        return rc;
    tp__group *g =
        tp__group_new(TP__CALL_FN, TP__SRC_APPLY, SIZE_MAX, &pool->simple_opts);
    if (!g)
        return TP_ENOMEM;
    g->f.fn = pool->simple_fn;
    g->from.arg = pool->simple_arg;
    g->nargs = num;
    return tp__spawn(pool, g, NULL, start_prefix, group_out);
}

/* A group over n arguments whose pointer array lives in a block of
 * `extra` more bytes, all owned by the group. */
static tp__group *array_group(int call, size_t n, size_t num_concurrent,
                              size_t extra, const tp_opts *opts)
{
    if (n > (SIZE_MAX - extra) / sizeof(void *) / 2)
        return NULL;
    tp__group *g = tp__group_new(call, TP__SRC_ARRAY, num_concurrent, opts);
    if (!g)
        return NULL;
    g->from.array.block = malloc(n * sizeof(void *) + extra);
    if (!g->from.array.block) {
        free(g);
        return NULL;
    }
    g->from.array.args = g->from.array.block;
    g->nargs = n;
    return g;
}

static int check_map(tp_pool *pool, const void *fn, const void *args, size_t n,
                     size_t num_concurrent, const tp_opts *opts)
{
    int rc = check(pool, fn, TP__GENERAL, opts);
    if (rc == TP_OK && (!args || n == 0 || num_concurrent == 0))
        rc = TP_EINVAL;
    return rc;
}

int tp_map(tp_pool *pool, tp_fn fn, void *const args[], size_t nargs,
           size_t num_concurrent, const tp_opts *opts,
           char group_out[TP_NAME_MAX])
{
    int rc =
        check_map(pool, (const void *)fn, args, nargs, num_concurrent, opts);
    if (rc != TP_OK)
        return rc;
    tp__group *g = array_group(TP__CALL_FN, nargs, num_concurrent, 0, opts);
    if (!g)
        return TP_ENOMEM;
    g->f.fn = fn;
    memcpy(g->from.array.args, args, nargs * sizeof *args);
    return tp__spawn(pool, g, opts, "map", group_out);
}

int tp_map_iter(tp_pool *pool, tp_fn fn, tp_iter iter, size_t num_concurrent,
                const tp_opts *opts, char group_out[TP_NAME_MAX])
{
    int rc = check(pool, (const void *)fn, TP__GENERAL, opts);
    if (rc == TP_OK && (!iter.next || num_concurrent == 0))
        rc = TP_EINVAL;
    tp__group *g = NULL;
    if (rc == TP_OK) {
        g = tp__group_new(TP__CALL_FN, TP__SRC_ITER, num_concurrent, opts);
        rc = g ? TP_OK : TP_ENOMEM;
    }
    if (rc == TP_OK) {
        g->f.fn = fn;
        g->from.iter.it = iter;
        rc = tp__spawn(pool, g, opts, "map", group_out);
    }
    if (rc != TP_OK && iter.done)
        iter.done(iter.state);
    return rc;
}

int tp_starmap(tp_pool *pool, tp_star_fn fn, const tp_args args[], size_t n,
               size_t num_concurrent, const tp_opts *opts,
               char group_out[TP_NAME_MAX])
{
    int rc = check_map(pool, (const void *)fn, args, n, num_concurrent, opts);
    if (rc != TP_OK)
        return rc;
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (args[i].argc && !args[i].argv)
            return TP_EINVAL;
        total += args[i].argc;
    }
    size_t extra = n * sizeof(tp_args) + total * sizeof(void *);
    tp__group *g = array_group(TP__CALL_STAR, n, num_concurrent, extra, opts);
    if (!g)
        return TP_ENOMEM;
    g->f.star = fn;
    tp_args *copies = (tp_args *)(g->from.array.args + n);
    void **values = (void **)(copies + n);
    for (size_t i = 0; i < n; i++) {
        if (args[i].argc)
            memcpy(values, args[i].argv, args[i].argc * sizeof *values);
        copies[i] = (tp_args){args[i].argc, values};
        values += args[i].argc;
        g->from.array.args[i] = &copies[i];
    }
    return tp__spawn(pool, g, opts, "starmap", group_out);
}

void *tp_kwargs_get(const tp_kwargs *kw, const char *key, void *fallback)
{
    if (!kw || !key)
        return fallback;
    for (size_t i = 0; i < kw->n; i++)
        if (kw->items[i].key && strcmp(kw->items[i].key, key) == 0)
            return kw->items[i].value;
    return fallback;
}

int tp_doublestarmap(tp_pool *pool, tp_kw_fn fn, const tp_kwargs kwargs[],
                     size_t n, size_t num_concurrent, const tp_opts *opts,
                     char group_out[TP_NAME_MAX])
{
    int rc = check_map(pool, (const void *)fn, kwargs, n, num_concurrent, opts);
    if (rc != TP_OK)
        return rc;
    size_t items = 0, chars = 0;
    for (size_t i = 0; i < n; i++) {
        if (kwargs[i].n && !kwargs[i].items)
            return TP_EINVAL;
        for (size_t j = 0; j < kwargs[i].n; j++) {
            if (!kwargs[i].items[j].key)
                return TP_EINVAL;
            chars += strlen(kwargs[i].items[j].key) + 1;
        }
        items += kwargs[i].n;
    }
    size_t extra = n * sizeof(tp_kwargs) + items * sizeof(tp_kwarg) + chars;
    tp__group *g = array_group(TP__CALL_KW, n, num_concurrent, extra, opts);
    if (!g)
        return TP_ENOMEM;
    g->f.kw = fn;
    tp_kwargs *copies = (tp_kwargs *)(g->from.array.args + n);
    tp_kwarg *item = (tp_kwarg *)(copies + n);
    char *text = (char *)(item + items);
    for (size_t i = 0; i < n; i++) {
        copies[i] = (tp_kwargs){kwargs[i].n, item};
        for (size_t j = 0; j < kwargs[i].n; j++, item++) {
            size_t len = strlen(kwargs[i].items[j].key) + 1;
            memcpy(text, kwargs[i].items[j].key, len);
            *item = (tp_kwarg){text, kwargs[i].items[j].value};
            text += len;
        }
        g->from.array.args[i] = &copies[i];
    }
    return tp__spawn(pool, g, opts, "doublestarmap", group_out);
}
