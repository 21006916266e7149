/* SPDX-License-Identifier: MIT */
/*
 * Groups: names, the name index, admission into the pool's FIFO, and
 * dropping pending starts. Every function here is called with pool->mu
 * held (see lock.c) except tp__drops_run and tp__group_free.
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

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t hash_str(const char *s)
{
    size_t h = 1469598103934665603u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211u;
    return h;
}

/* A generated name hashes to its counter's starting bucket plus its index:
 * consecutive groups of one counter take consecutive buckets, so naming,
 * compacting and retiring the groups of a service submitting one task per
 * call touch buckets (and chain heads) that are still in cache, where a
 * scattering hash made each a cache miss in a table of a million buckets.
 * While the table has at least one bucket per indexed group, the groups
 * of one counter sharing a bucket are a table's width of indices apart. */
static size_t hash_gen(const tp__counter *c, size_t index)
{
    size_t h = ((uintptr_t)c >> 4) * 0x9E3779B97F4A7C15u;
    return (h ^ (h >> 29)) + index;
}

static size_t hash_of(const tp__group *g)
{
    return g->counter ? hash_gen(g->counter, g->index) : hash_str(g->xname);
}

void tp__group_format(const tp__group *g, char out[TP_NAME_MAX])
{
    const tp__counter *c = g->counter;
    if (!c)
        snprintf(out, TP_NAME_MAX, "%s", g->xname);
    else if (c->func)
        snprintf(out, TP_NAME_MAX, "%s-%s-group-%zu", c->prefix, c->func,
                 g->index);
    else
        snprintf(out, TP_NAME_MAX, "%s-group-%zu", c->prefix, g->index);
}

static tp__group *find_explicit(const tp_pool *pool, const char *name)
{
    if (!pool->index_cap)
        return NULL;
    tp__group *g = pool->index[hash_str(name) & (pool->index_cap - 1)];
    while (g && (g->counter || strcmp(g->xname, name) != 0))
        g = g->hnext;
    return g;
}

static tp__group *find_generated(const tp_pool *pool, const tp__counter *c,
                                 size_t index)
{
    if (!pool->index_cap)
        return NULL;
    tp__group *g = pool->index[hash_gen(c, index) & (pool->index_cap - 1)];
    while (g && (g->counter != c || g->index != index))
        g = g->hnext;
    return g;
}

/* True if key (len bytes) is c's key, "<prefix>-<func>" or "<prefix>". */
static bool key_is(const tp__counter *c, const char *key, size_t len)
{
    size_t p = strlen(c->prefix);
    if (len != c->key_len || strncmp(key, c->prefix, p) != 0)
        return false;
    return !c->func ||
           (key[p] == '-' && strncmp(key + p + 1, c->func, len - p - 1) == 0);
}

/* Reads name as a generated name "<key>-group-<index>": true with *key_len
 * and *index set. The index is decimal without leading zeros. */
static bool parse_generated(const char *name, size_t *key_len, size_t *index)
{
    const char *mark = NULL;
    for (const char *q = strstr(name, "-group-"); q;
         q = strstr(q + 1, "-group-"))
        mark = q;
    if (!mark)
        return false;
    const char *d = mark + 7;
    if (!*d || (d[0] == '0' && d[1]))
        return false;
    size_t v = 0;
    for (; *d; d++) {
        if (*d < '0' || *d > '9' || v > (SIZE_MAX - 9) / 10)
            return false;
        v = v * 10 + (size_t)(*d - '0');
    }
    *key_len = (size_t)(mark - name);
    *index = v;
    return true;
}

static tp__counter *counter_of_key(const tp_pool *pool, const char *key,
                                   size_t len)
{
    for (tp__counter *c = pool->counters; c; c = c->link)
        if (key_is(c, key, len))
            return c;
    return NULL;
}

tp__group *tp__group_find(tp_pool *pool, const char *name)
{
    TP_ASSERT_HELD(pool);
    tp__group *g = find_explicit(pool, name);
    size_t len, index;
    if (!g && parse_generated(name, &len, &index)) {
        tp__counter *c = counter_of_key(pool, name, len);
        g = c ? find_generated(pool, c, index) : NULL;
    }
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
            size_t j = hash_of(g) & (cap - 1);
            g->hnext = index[j];
            index[j] = g;
        }
    }
    free(pool->index);
    pool->index = index;
    pool->index_cap = cap;
    return TP_OK;
}

/* The last used counter comes first, so a service submitting one kind of
 * task finds it at once. */
tp__counter *tp__group_counter(tp_pool *pool, const char *prefix,
                               const char *func)
{
    TP_ASSERT_HELD(pool);
    for (tp__counter **pc = &pool->counters; *pc; pc = &(*pc)->link) {
        tp__counter *c = *pc;
        bool same_prefix =
            c->prefix == prefix || strcmp(c->prefix, prefix) == 0;
        bool same_func =
            c->func == func || (c->func && func && strcmp(c->func, func) == 0);
        if (same_prefix && same_func) {
            *pc = c->link;
            c->link = pool->counters;
            pool->counters = c;
            return c;
        }
    }
    tp__counter *c = aligned_alloc(_Alignof(tp__counter), sizeof *c);
    if (c)
        *c = (tp__counter){0};
    if (!c || (func && !(c->func = strdup(func)))) {
        free(c);
        return NULL;
    }
    c->prefix = prefix;
    c->key_len = strlen(prefix) + (func ? 1 + strlen(func) : 0);
    c->link = pool->counters;
    pool->counters = c;
    return c;
}

/* The generated name (c, index) is taken by an explicit name. Only looked
 * at when some explicit name reads like a generated one. */
static bool taken_explicitly(const tp_pool *pool, const tp__counter *c,
                             size_t index)
{
    tp__group probe = {.counter = (tp__counter *)c, .index = index};
    char name[TP_NAME_MAX];
    tp__group_format(&probe, name);
    return find_explicit(pool, name) != NULL;
}

/* The index grows once it holds two groups per bucket (so that its
 * buckets cost a finished per-call group 4 to 8 bytes); if it cannot grow,
 * its chains do. False only if there is no index at all. */
static bool index_room(tp_pool *pool)
{
    if (pool->n_indexed + 1 > 2 * pool->index_cap)
        (void)index_grow(pool);
    return pool->index_cap > 0;
}

/* Names g: its explicit name if free, else "<prefix>-<func>-group-<i>" (or
 * "<prefix>-group-<i>" without func) with i counting per prefix and
 * function, never reused, skipping names taken explicitly. Also makes room
 * in the index, so that tp__group_attach cannot fail. */
int tp__group_name(tp_pool *pool, tp__group *g, const char *prefix,
                   const char *func)
{
    TP_ASSERT_HELD(pool);
    if (!index_room(pool))
        return TP_ENOMEM;
    if (g->xname[0]) {
        size_t len, index;
        bool like = parse_generated(g->xname, &len, &index);
        tp__counter *c = like ? counter_of_key(pool, g->xname, len) : NULL;
        if (find_explicit(pool, g->xname) ||
            (c && find_generated(pool, c, index)))
            return TP_EGROUP_EXISTS;
        g->lookalike = like;
        return TP_OK;
    }
    tp__counter *c = tp__group_counter(pool, prefix, func);
    if (!c)
        return TP_ENOMEM;
    size_t index;
    do {
        index = c->next++;
        /* "-group-" and at most 20 digits */
        if (c->key_len + 7 + 20 >= TP_NAME_MAX) {
            char digits[24];
            int n = snprintf(digits, sizeof digits, "%zu", index);
            if (c->key_len + 7 + (size_t)n >= TP_NAME_MAX)
                return TP_EINVAL;
        }
    } while (pool->n_lookalikes && taken_explicitly(pool, c, index));
    g->counter = c;
    g->index = index;
    return TP_OK;
}

size_t tp__counter_take(tp_pool *pool, tp__counter *c)
{
    TP_ASSERT_HELD(pool);
    assert(c->key_len + 7 + 20 < TP_NAME_MAX);
    size_t index;
    do
        index = c->next++;
    while (pool->n_lookalikes && taken_explicitly(pool, c, index));
    return index;
}

static void init(tp__group *g, int call, int src, size_t limit,
                 const tp_opts *opts)
{
    g->call = call;
    g->src = src;
    g->limit = limit;
    if (opts) {
        g->end_cb = opts->end_callback;
        g->cancel_cb = opts->cancel_callback;
        g->discard = opts->discard;
        g->cb_arg = opts->callback_arg;
    }
    tp__list_init(&g->node);
    tp__list_init(&g->runs);
    tp__list_init(&g->tasks);
    g->run0.fifo.next = NULL;
    g->spare = &g->run0;
    g->n_spare = 1;
}

tp__group *tp__group_new(int call, int src, size_t limit, const tp_opts *opts)
{
    const char *name = opts && opts->group_name ? opts->group_name : "";
    size_t len = strlen(name);
    tp__group *g = calloc(1, sizeof *g + len + 1);
    if (!g)
        return NULL;
    memcpy(g->xname, name, len + 1);
    init(g, call, src, limit, opts);
    return g;
}

void tp__group_percall(tp_pool *pool, tp__group *g, const tp__entry *c)
{
    TP_ASSERT_HELD(pool);
    init(g, TP__CALL_FN, TP__SRC_APPLY, SIZE_MAX,
         pool->kind == TP__SIMPLE ? &pool->simple_opts : NULL);
    g->f.fn = atomic_load_explicit(&((tp__entry *)c)->fn, memory_order_relaxed);
    g->from.arg = c->arg;
    g->nargs = 1;
    g->born_ns = c->born_ns;
    g->counter = atomic_load_explicit(&pool->fast_counter, memory_order_relaxed);
    g->index = c->index;
    bool indexable = index_room(pool);
    assert(indexable); /* the slow apply that made the counter made it */
    (void)indexable;
    tp__group_attach(pool, g);
}

/* Makes g findable by name; the index has room (tp__group_name). */
static void index_insert(tp_pool *pool, tp__group *g)
{
    size_t j = hash_of(g) & (pool->index_cap - 1);
    g->hnext = pool->index[j];
    pool->index[j] = g;
    g->indexed = true;
    pool->n_indexed++;
    pool->n_lookalikes += g->lookalike;
}

void tp__group_attach(tp_pool *pool, tp__group *g)
{
    TP_ASSERT_HELD(pool);
    index_insert(pool, g);
    tp__list_push_front(&pool->groups, &g->node);
    g->refs = 1;
    if (g->src == TP__SRC_ITER)
        pool->n_iter_groups++;
    else
        pool->pending_args += g->nargs - g->next_arg;
}

void tp__group_unindex(tp_pool *pool, tp__group *g)
{
    TP_ASSERT_HELD(pool);
    if (!g->indexed)
        return;
    tp__group **p = &pool->index[hash_of(g) & (pool->index_cap - 1)];
    while (*p != g)
        p = &(*p)->hnext;
    *p = g->hnext;
    g->indexed = false;
    pool->n_indexed--;
    pool->n_lookalikes -= g->lookalike;
}

/* Frees what g owns besides its record. */
static void release(tp__group *g)
{
    assert(!g->compact);
    assert(tp__list_empty(&g->runs));
    for (tp__run *run = g->spare, *next; run; run = next) {
        next = run->fifo.next ? tp__container(run->fifo.next, tp__run, fifo)
                              : NULL;
        if (run != &g->run0)
            free(run);
    }
    if (g->src == TP__SRC_ARRAY)
        free(g->from.array.block);
    if (g->ids != &g->id0)
        free(g->ids);
}

void tp__group_free(tp__group *g)
{
    if (!g)
        return;
    release(g);
    free(g);
}

tp__group *tp__group_unref_record(tp_pool *pool, tp__group *g)
{
    TP_ASSERT_HELD(pool);
    assert(g->refs > 0);
    if (--g->refs > 0)
        return NULL;
    if (g->compact) {
        tp__rec_compact_put(pool, g);
        return NULL;
    }
    release(g);
    return g;
}

void tp__group_unref(tp_pool *pool, tp__group *g)
{
    free(tp__group_unref_record(pool, g));
}

bool tp__group_pending(const tp__group *g)
{
    if (g->compact)
        return false;
    if (g->drop == TP__DISCARD_DUE || g->drop == TP__DROPPING)
        return true;
    if (g->src == TP__SRC_ITER)
        /* A worker inside next() holds a claim. */
        return !g->from.iter.over || g->queued || g->from.iter.claims;
    return g->next_arg < g->nargs;
}

/* A group with no pending starts, no live tasks and no known ids is
 * forgotten: unindexed, unlisted, and freed once nothing refers to it. */
void tp__group_retire_if_empty(tp_pool *pool, tp__group *g)
{
    TP_ASSERT_HELD(pool);
    if (!tp__list_linked(&g->node) || tp__group_nids(g) ||
        (!g->compact && (g->live || tp__group_pending(g))))
        return;
    tp__group_unindex(pool, g);
    tp__list_remove(&g->node);
    /* A compact record ends before `src`; compact groups are APPLY. Only
     * an iterator group's leaving can satisfy a waiter (a gather counts
     * them as pending); waking the waiters for every forgotten group made
     * a gather under forget_ended contend for the lock once per task. */
    if (!g->compact && g->src == TP__SRC_ITER) {
        pool->n_iter_groups--;
        tp__changed(pool);
    }
    tp__group_unref(pool, g);
}

/* How many starts g may admit into the FIFO now. */
static size_t admissible(const tp__group *g)
{
    if (g->active >= g->limit)
        return 0;
    size_t room = g->limit - g->active;
    if (g->src == TP__SRC_ITER)
        return g->from.iter.over ? 0 : room;
    size_t unadmitted = g->nargs - g->next_arg - g->queued;
    return unadmitted < room ? unadmitted : room;
}

bool tp__group_admits(const tp__group *g)
{
    return !g->compact && admissible(g) > 0;
}

void tp__group_admit(tp_pool *pool, tp__group *g)
{
    TP_ASSERT_HELD(pool);
    size_t count = admissible(g);
    if (count)
        tp__fifo_push(pool, g, count);
}

/* True if g admits starts as its tasks end (so each ending task may need a
 * run node); an apply group, or a map whose arguments all fit within
 * num_concurrent, admits everything at once. */
static bool admits_later(const tp__group *g)
{
    return g->src == TP__SRC_ITER || g->nargs > g->limit;
}

bool tp__group_reserve(tp__group *g, bool run_frees)
{
    size_t claims = tp__group_claims(g), ids = g->nids + claims + 1;
    if (ids == 1 && !g->ids) {
        g->ids = &g->id0; /* a one-task group allocates no id array */
        g->idcap = 1;
    } else if (ids > g->idcap) {
        size_t cap = g->idcap > 1 ? g->idcap * 2 : 4;
        bool inline_ids = g->ids == &g->id0;
        tp_id *grown = realloc(inline_ids ? NULL : g->ids, cap * sizeof *grown);
        if (!grown)
            return false;
        if (inline_ids)
            memcpy(grown, g->ids, g->nids * sizeof *grown);
        g->ids = grown;
        g->idcap = cap;
    }
    if (!admits_later(g))
        return true;
    size_t need = g->live + claims + 1, have = g->n_spare + run_frees;
    while (have < need) {
        tp__run *run = malloc(sizeof *run);
        if (!run)
            return false;
        run->fifo.next = g->spare ? &g->spare->fifo : NULL;
        g->spare = run;
        g->n_spare++;
        have++;
    }
    return true;
}

void tp__group_withdraw(tp_pool *pool, tp__group *g)
{
    TP_ASSERT_HELD(pool);
    tp__fifo_remove_group(pool, g);
    if (g->src == TP__SRC_ITER)
        g->from.iter.over = true;
    else
        pool->pending_args -= g->nargs - g->next_arg;
    g->next_arg = g->nargs;
    tp__group_retire_if_empty(pool, g);
}

void tp__group_drop(tp_pool *pool, tp__group *g, tp__group **drops)
{
    TP_ASSERT_HELD(pool);
    if (g->compact || g->drop != TP__UNDROPPED || !tp__group_pending(g))
        return;
    if (g->src == TP__SRC_ITER)
        pool->total_dropped += g->queued;
    else
        pool->total_dropped += g->nargs - g->next_arg;
    tp__fifo_remove_group(pool, g);
    g->drop_from = g->drop_to = 0;
    g->drop_done = false;
    if (g->src == TP__SRC_ITER) {
        g->from.iter.over = true;
        /* A worker inside next() calls done when it returns. */
        g->drop_done = !g->from.iter.busy && !g->from.iter.done_called;
        g->from.iter.done_called |= g->drop_done;
    } else {
        g->drop_from = g->next_arg;
        g->drop_to = g->nargs;
        pool->pending_args -= g->nargs - g->next_arg;
        g->next_arg = g->nargs;
    }
    if (g->src == TP__SRC_APPLY && g->live && g->discard &&
        g->drop_from < g->drop_to) {
        /* Its running tasks use the shared argument: the last one to end
         * discards it (tp__group_settle). */
        g->drop = TP__DISCARD_DUE;
        pool->n_unsettled++;
        return;
    }
    g->refs++;
    g->drop = TP__DROPPING;
    pool->n_unsettled++;
    g->drop_next = *drops;
    *drops = g;
}

void tp__drops_run(tp_pool *pool, tp__group *drops)
{
    for (tp__group *g = drops; g; g = g->drop_next) {
        if (g->discard && g->src == TP__SRC_APPLY && g->drop_from < g->drop_to)
            g->discard(g->from.arg, g->cb_arg); /* once, whatever the count */
        else
            for (size_t i = g->drop_from; g->discard && i < g->drop_to; i++)
                g->discard(g->from.array.args[i], g->cb_arg);
        if (g->drop_done && g->from.iter.it.done)
            g->from.iter.it.done(g->from.iter.it.state);
    }
    if (!drops)
        return;
    tp__lock(pool);
    for (tp__group *g = drops, *next; g; g = next) {
        next = g->drop_next;
        g->drop = TP__DROPPED;
        pool->n_unsettled--;
        tp__group_retire_if_empty(pool, g);
        tp__group_unref(pool, g);
    }
    tp__changed(pool);
    tp__unlock(pool);
}

void tp__group_settle(tp_pool *pool, tp__group *g)
{
    TP_ASSERT_HELD(pool);
    if (g->drop != TP__DISCARD_DUE || g->live)
        return;
    g->drop = TP__DROPPING;
    tp__sem_publish(pool); /* a slot freed by the caller shows meanwhile */
    tp__unlock(pool);
    g->discard(g->from.arg, g->cb_arg);
    tp__lock(pool);
    g->drop = TP__DROPPED;
    pool->n_unsettled--;
    tp__group_retire_if_empty(pool, g);
    tp__changed(pool);
}

void *tp__group_arg(const tp__group *g, size_t i)
{
    return g->src == TP__SRC_APPLY ? g->from.arg : g->from.array.args[i];
}

void tp__group_add_id(tp__group *g, tp_id id)
{
    assert(g->nids < g->idcap);
    g->ids[g->nids++] = id;
}

void tp__group_del_id(tp__group *g, tp_id id)
{
    size_t i = 0;
    while (i < g->nids && g->ids[i] != id)
        i++;
    if (i == g->nids)
        return;
    memmove(&g->ids[i], &g->ids[i + 1], (g->nids - i - 1) * sizeof *g->ids);
    g->nids--;
}

bool tp__group_has_id(const tp__group *g, tp_id id)
{
    const tp_id *ids = tp__group_ids(g);
    size_t n = tp__group_nids(g), lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ids[mid] < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && ids[lo] == id;
}

tp__group *tp__group_compact(tp_pool *pool, tp__group *g)
{
    TP_ASSERT_HELD(pool);
    if (g->compact || g->refs != 1 || !tp__list_linked(&g->node) ||
        !g->counter || g->nids != 1 || g->live || tp__group_claims(g) ||
        g->src != TP__SRC_APPLY || tp__group_pending(g))
        return NULL;
    assert(tp__list_empty(&g->runs) && tp__list_empty(&g->tasks));
    /* Out of memory, the group just stays as it is, not compact. */
    tp__group *c = tp__rec_compact_get(pool);
    if (!c)
        return NULL;
    for (tp__run *run = g->spare, *next; run; run = next) {
        next = run->fifo.next ? tp__container(run->fifo.next, tp__run, fifo)
                              : NULL;
        if (run != &g->run0)
            free(run);
    }
    g->id0 = g->ids[0];
    if (g->ids != &g->id0)
        free(g->ids);
    g->compact = true;
    g->has_id = true;
    /* A slab record rather than realloc: shrinking in place would leave a
     * hole between compact records that no full group fits in, while the
     * freed full record is what the next call allocates. The copy takes
     * g's place in its index chain and in the group list. */
    memcpy(c, g, TP__COMPACT_SIZE);
    if (g->indexed) {
        tp__group **p = &pool->index[hash_of(g) & (pool->index_cap - 1)];
        while (*p != g)
            p = &(*p)->hnext;
        *p = c;
    }
    c->node.prev->next = &c->node;
    c->node.next->prev = &c->node;
    return g;
}

void tp__group_counts(const tp__group *g, tp_group_info *info)
{
    size_t running = 0, cancelled = 0;
    if (!g->compact) {
        tp__list_each(n, next, &g->tasks)
        {
            int state = tp__container(n, tp_task, group_node)->state;
            running += state == TP__RUNNING;
            cancelled += state == TP__CANCELLED;
        }
    }
    size_t pending = 0;
    if (!g->compact)
        pending = g->src == TP__SRC_ITER ? g->queued + g->from.iter.claims
                                         : g->nargs - g->next_arg;
    *info = (tp_group_info){
        .running = running,
        .cancelled = cancelled,
        .ended = tp__group_nids(g) - running - cancelled,
        .pending = pending,
        .num_concurrent = g->compact ? TP_UNLIMITED : g->limit,
    };
}

size_t tp__group_name_len(const tp__group *g)
{
    if (!g->counter)
        return strlen(g->xname);
    char digits[24];
    int n = snprintf(digits, sizeof digits, "%zu", g->index);
    return g->counter->key_len + 7 + (size_t)n;
}
