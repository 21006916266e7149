/* SPDX-License-Identifier: MIT */
/* The map family suite: tp_map, tp_starmap, tp_doublestarmap, tp_map_iter
 * and tp_kwargs_get.
 *
 * What it proves: every argument runs exactly once with the right values;
 * the num_concurrent bound holds; generated group names; the argument
 * arrays are copied (the caller may free them at once); a lazy iterator is
 * advanced only as tasks start, never after its group is cancelled, and
 * `done` is called exactly once; `discard` is called exactly once for each
 * argument whose task never starts; and the reference's advanced example
 * (pool size 3, apply 2, starmap 4 with num_concurrent 2) starts ids 0..5
 * exactly when the reference does.
 *
 * Tests never sleep to synchronise: tasks block at gates that the test
 * opens, and the test waits on counters or on pool state. */
#include "support.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Large enough for every argument an endless iterator can produce before
 * its group is cancelled. */
#define N_MAX (1 << 20)

/* ------------------------------------------------------------------------ */
/* Shared recording                                                          */
/* ------------------------------------------------------------------------ */

static atomic_int hits[N_MAX];     /* runs per argument index */
static atomic_int discards[N_MAX]; /* discard calls per argument index */
static atomic_int cur, max_cur;    /* tasks inside their function */
static atomic_int failures;        /* wrong values seen inside tasks */
static counter started, finished, discarded;
static gate g_all;

static void setup(void)
{
    for (int i = 0; i < N_MAX; i++) {
        atomic_store(&hits[i], 0);
        atomic_store(&discards[i], 0);
    }
    atomic_store(&cur, 0);
    atomic_store(&max_cur, 0);
    atomic_store(&failures, 0);
    counter_init(&started);
    counter_init(&finished);
    counter_init(&discarded);
    gate_init(&g_all);
}

static void teardown(void)
{
    counter_destroy(&started);
    counter_destroy(&finished);
    counter_destroy(&discarded);
    gate_destroy(&g_all);
}

static void enter(void)
{
    int now = atomic_fetch_add(&cur, 1) + 1;
    int seen = atomic_load(&max_cur);
    while (now > seen && !atomic_compare_exchange_weak(&max_cur, &seen, now))
        ;
    counter_add(&started, 1);
}

static void leave(void)
{
    atomic_fetch_sub(&cur, 1);
    counter_add(&finished, 1);
}

/* Arguments are small integers smuggled in pointers. */
#define ARG(i) ((void *)(uintptr_t)(i))
#define IDX(p) ((int)(uintptr_t)(p))

/* A map task: counts its argument, waits at g_all. */
static int gated_task(tp_task *task, void *arg)
{
    enter();
    atomic_fetch_add(&hits[IDX(arg)], 1);
    gate_pass(&g_all, task); /* opened or cancelled: the task ends */
    leave();
    return 0;
}

static void discard_idx(void *arg, void *cb)
{
    (void)cb;
    atomic_fetch_add(&discards[IDX(arg)], 1);
    counter_add(&discarded, 1);
}

static int star_task(tp_task *task, size_t argc, void *const argv[]);
static int kw_task(tp_task *task, const tp_kwargs *kw);

static tp_pool *new_pool(size_t size)
{
    tp_pool *p = tp_pool_new(&(tp_pool_opts){.pool_size = size});
    ck_assert_ptr_nonnull(p);
    return p;
}

/* ------------------------------------------------------------------------ */
/* tp_map                                                                    */
/* ------------------------------------------------------------------------ */

/* map-1: each argument runs once; at most num_concurrent at once; the
 * caller's array may be freed right after the call. */
START_TEST(map_each_once_bounded)
{
    enum { N = 40, K = 3 };
    tp_pool *p = new_pool(0);
    void **args = malloc(N * sizeof *args);
    for (int i = 0; i < N; i++)
        args[i] = ARG(i);
    char group[TP_NAME_MAX];
    ck_assert_int_eq(tp_map(p, gated_task, args, N, K,
                            &(tp_opts){.func_name = "gated"}, group),
                     TP_OK);
    /* The array is the caller's again: overwrite it, then free it. */
    for (int i = 0; i < N; i++)
        args[i] = ARG(N_MAX - 1);
    free(args);
    ck_assert_str_eq(group, "map-gated-group-0");
    /* K start and hold the gate; no other may start while they run. */
    ck_assert(counter_wait(&started, K));
    ck_assert_uint_eq(tp_num_running(p), K);
    gate_open(&g_all);
    ck_assert_int_eq(tp_gather_and_close(p), TP_OK);
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(atomic_load(&hits[i]), 1);
    ck_assert_int_eq(atomic_load(&hits[N_MAX - 1]), 0);
    ck_assert_int_eq(atomic_load(&max_cur), K);
    ck_assert_int_eq(counter_get(&started), N);
    tp_pool_free(p);
}
END_TEST

/* A task that does not block, to let the bound be tested under churn. */
static int quick_task(tp_task *task, void *arg)
{
    (void)task;
    enter();
    atomic_fetch_add(&hits[IDX(arg)], 1);
    leave();
    return 0;
}

/* map-2: the bound also holds while tasks end and start all the time. */
START_TEST(map_bound_under_churn)
{
    enum { N = 200, K = 2 };
    tp_pool *p = new_pool(0);
    void *args[N];
    for (int i = 0; i < N; i++)
        args[i] = ARG(i);
    ck_assert_int_eq(tp_map(p, quick_task, args, N, K, NULL, NULL), TP_OK);
    ck_assert_int_eq(tp_gather_and_close(p), TP_OK);
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(atomic_load(&hits[i]), 1);
    ck_assert_int_le(atomic_load(&max_cur), K);
    tp_pool_free(p);
}
END_TEST

/* map-3: num_concurrent 0 and other bad arguments are TP_EINVAL, and
 * start nothing. */
START_TEST(map_invalid)
{
    tp_pool *p = new_pool(0);
    void *args[1] = {ARG(0)};
    tp_args sa[1] = {{1, args}};
    tp_kwarg kw[1] = {{"a", ARG(1)}};
    tp_kwargs ka[1] = {{1, kw}};
    ck_assert_int_eq(tp_map(p, quick_task, args, 1, 0, NULL, NULL), TP_EINVAL);
    ck_assert_int_eq(tp_map(p, quick_task, args, 0, 1, NULL, NULL), TP_EINVAL);
    ck_assert_int_eq(tp_map(p, quick_task, NULL, 1, 1, NULL, NULL), TP_EINVAL);
    ck_assert_int_eq(tp_map(p, NULL, args, 1, 1, NULL, NULL), TP_EINVAL);
    ck_assert_int_eq(tp_map(NULL, quick_task, args, 1, 1, NULL, NULL),
                     TP_EINVAL);
    ck_assert_int_eq(tp_starmap(p, NULL, sa, 1, 1, NULL, NULL), TP_EINVAL);
    ck_assert_int_eq(tp_doublestarmap(p, (tp_kw_fn)NULL, ka, 1, 1, NULL, NULL),
                     TP_EINVAL);
    tp_stats st;
    ck_assert_int_eq(tp_get_stats(p, &st), TP_OK);
    ck_assert_uint_eq(st.total_started, 0);
    ck_assert_uint_eq(st.groups, 0);
    ck_assert_int_eq(tp_gather_and_close(p), TP_OK);
    tp_pool_free(p);
}
END_TEST

/* map-4: generated group names count per prefix and function. */
START_TEST(map_group_names)
{
    tp_pool *p = new_pool(0);
    void *args[1] = {ARG(0)};
    tp_args sa[1] = {{0, NULL}};
    tp_kwargs ka[1] = {{0, NULL}};
    char g[TP_NAME_MAX];
    tp_opts f = {.func_name = "f"};
    ck_assert_int_eq(tp_map(p, quick_task, args, 1, 1, &f, g), TP_OK);
    ck_assert_str_eq(g, "map-f-group-0");
    ck_assert_int_eq(tp_map(p, quick_task, args, 1, 1, &f, g), TP_OK);
    ck_assert_str_eq(g, "map-f-group-1");
    ck_assert_int_eq(tp_map(p, quick_task, args, 1, 1, NULL, g), TP_OK);
    ck_assert_str_eq(g, "map-func-group-0");
    ck_assert_int_eq(tp_apply(p, quick_task, ARG(0), 1, &f, g), TP_OK);
    ck_assert_str_eq(g, "apply-f-group-0");
    ck_assert_int_eq(tp_starmap(p, star_task, sa, 0, 1, &f, g), TP_EINVAL);
    ck_assert_int_eq(tp_doublestarmap(p, kw_task, ka, 0, 1, &f, g), TP_EINVAL);
    tp_pool_free(p);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* tp_starmap                                                                */
/* ------------------------------------------------------------------------ */

/* Each task gets (index, 10 * index, 100 * index) and records index if the
 * values are right. It reads argv only after the gate opened, when the
 * caller's arrays have long been freed. */
static int star_task(tp_task *task, size_t argc, void *const argv[])
{
    enter();
    gate_pass(&g_all, task); /* opened or cancelled: the task ends */
    if (argc != 3) {
        atomic_fetch_add(&failures, 1);
    } else {
        int i = IDX(argv[0]);
        if (IDX(argv[1]) != 10 * i || IDX(argv[2]) != 100 * i || i < 0 ||
            i >= N_MAX)
            atomic_fetch_add(&failures, 1);
        else
            atomic_fetch_add(&hits[i], 1);
    }
    leave();
    return 0;
}

/* starmap-1: right values, once each, arrays copied, bound held. */
START_TEST(starmap_values_copied)
{
    enum { N = 20, K = 2 };
    tp_pool *p = new_pool(0);
    tp_args *args = malloc(N * sizeof *args);
    for (int i = 0; i < N; i++) {
        void **v = malloc(3 * sizeof *v);
        v[0] = ARG(i);
        v[1] = ARG(10 * i);
        v[2] = ARG(100 * i);
        args[i] = (tp_args){3, v};
    }
    char g[TP_NAME_MAX];
    ck_assert_int_eq(
        tp_starmap(p, star_task, args, N, K, &(tp_opts){.func_name = "s"}, g),
        TP_OK);
    ck_assert_str_eq(g, "starmap-s-group-0");
    for (int i = 0; i < N; i++) {
        void **v = (void **)args[i].argv;
        v[0] = v[1] = v[2] = ARG(N_MAX + 7);
        free(v);
        args[i] = (tp_args){99, NULL};
    }
    free(args);
    ck_assert(counter_wait(&started, K));
    gate_open(&g_all);
    ck_assert_int_eq(tp_gather_and_close(p), TP_OK);
    ck_assert_int_eq(atomic_load(&failures), 0);
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(atomic_load(&hits[i]), 1);
    ck_assert_int_le(atomic_load(&max_cur), K);
    ck_assert_int_eq(atomic_load(&max_cur), K);
    tp_pool_free(p);
}
END_TEST

/* The discard of a starmap start receives the copied tp_args. */
static void discard_star(void *arg, void *cb)
{
    (void)cb;
    const tp_args *a = arg;
    if (!a || a->argc != 3) {
        atomic_fetch_add(&failures, 1);
    } else {
        int i = IDX(a->argv[0]);
        if (IDX(a->argv[1]) != 10 * i || i < 0 || i >= N_MAX)
            atomic_fetch_add(&failures, 1);
        else
            atomic_fetch_add(&discards[i], 1);
    }
    counter_add(&discarded, 1);
}

/* starmap-2: cancelling the group discards each unstarted start once, with
 * its copied arguments. */
START_TEST(starmap_discard)
{
    enum { N = 10, K = 2 };
    tp_pool *p = new_pool(0);
    void *v[N][3];
    tp_args args[N];
    for (int i = 0; i < N; i++) {
        v[i][0] = ARG(i);
        v[i][1] = ARG(10 * i);
        v[i][2] = ARG(100 * i);
        args[i] = (tp_args){3, v[i]};
    }
    char g[TP_NAME_MAX];
    ck_assert_int_eq(tp_starmap(p, star_task, args, N, K,
                                &(tp_opts){.discard = discard_star}, g),
                     TP_OK);
    ck_assert(counter_wait(&started, K));
    ck_assert_int_eq(tp_cancel_group(p, g), TP_OK);
    ck_assert_int_eq(tp_gather_and_close(p), TP_OK);
    ck_assert_int_eq(atomic_load(&failures), 0);
    ck_assert_int_eq(counter_get(&started), K);
    ck_assert_int_eq(counter_get(&discarded), N - K);
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(atomic_load(&discards[i]), i < K ? 0 : 1);
    tp_pool_free(p);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* tp_doublestarmap and tp_kwargs_get                                        */
/* ------------------------------------------------------------------------ */

static int kw_task(tp_task *task, const tp_kwargs *kw)
{
    enter();
    gate_pass(&g_all, task); /* opened or cancelled: the task ends */
    int i = IDX(tp_kwargs_get(kw, "index", ARG(-1)));
    int sq = IDX(tp_kwargs_get(kw, "square", ARG(-1)));
    int missing = IDX(tp_kwargs_get(kw, "missing", ARG(4242)));
    if (i < 0 || i >= N_MAX || sq != i * i || missing != 4242 || kw->n != 2)
        atomic_fetch_add(&failures, 1);
    else
        atomic_fetch_add(&hits[i], 1);
    leave();
    return 0;
}

/* doublestarmap-1: right values by key, once each; the kwargs array, the
 * items arrays and the keys are copied. */
START_TEST(doublestarmap_values_copied)
{
    enum { N = 12, K = 3 };
    tp_pool *p = new_pool(0);
    tp_kwargs *kws = malloc(N * sizeof *kws);
    for (int i = 0; i < N; i++) {
        tp_kwarg *items = malloc(2 * sizeof *items);
        char *k1 = strdup("square"), *k2 = strdup("index");
        items[0] = (tp_kwarg){k1, ARG(i * i)};
        items[1] = (tp_kwarg){k2, ARG(i)};
        kws[i] = (tp_kwargs){2, items};
    }
    char g[TP_NAME_MAX];
    ck_assert_int_eq(tp_doublestarmap(p, kw_task, kws, N, K,
                                      &(tp_opts){.func_name = "kw"}, g),
                     TP_OK);
    ck_assert_str_eq(g, "doublestarmap-kw-group-0");
    for (int i = 0; i < N; i++) {
        tp_kwarg *items = (tp_kwarg *)kws[i].items;
        for (int j = 0; j < 2; j++) {
            char *key = (char *)items[j].key;
            memset(key, 'x', strlen(key));
            free(key);
        }
        free(items);
    }
    free(kws);
    ck_assert(counter_wait(&started, K));
    gate_open(&g_all);
    ck_assert_int_eq(tp_gather_and_close(p), TP_OK);
    ck_assert_int_eq(atomic_load(&failures), 0);
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(atomic_load(&hits[i]), 1);
    ck_assert_int_eq(atomic_load(&max_cur), K);
    tp_pool_free(p);
}
END_TEST

/* doublestarmap-2: a NULL key is TP_EINVAL; num_concurrent 0 too. */
START_TEST(doublestarmap_invalid)
{
    tp_pool *p = new_pool(0);
    tp_kwarg bad[2] = {{"a", ARG(1)}, {NULL, ARG(2)}};
    tp_kwargs ka[1] = {{2, bad}};
    ck_assert_int_eq(tp_doublestarmap(p, kw_task, ka, 1, 1, NULL, NULL),
                     TP_EINVAL);
    tp_kwargs ok[1] = {{1, bad}};
    ck_assert_int_eq(tp_doublestarmap(p, kw_task, ok, 1, 0, NULL, NULL),
                     TP_EINVAL);
    tp_args sa[1] = {{0, NULL}};
    ck_assert_int_eq(tp_starmap(p, star_task, sa, 1, 0, NULL, NULL), TP_EINVAL);
    ck_assert_uint_eq(tp_num_running(p), 0);
    tp_pool_free(p);
}
END_TEST

/* kwargs-1: tp_kwargs_get finds the first match and falls back. */
START_TEST(kwargs_get)
{
    tp_kwarg items[3] = {{"a", ARG(1)}, {"b", ARG(2)}, {"a", ARG(3)}};
    tp_kwargs kw = {3, items};
    ck_assert_ptr_eq(tp_kwargs_get(&kw, "a", NULL), ARG(1));
    ck_assert_ptr_eq(tp_kwargs_get(&kw, "b", NULL), ARG(2));
    ck_assert_ptr_eq(tp_kwargs_get(&kw, "c", ARG(9)), ARG(9));
    ck_assert_ptr_eq(tp_kwargs_get(&kw, NULL, ARG(9)), ARG(9));
    ck_assert_ptr_eq(tp_kwargs_get(NULL, "a", ARG(9)), ARG(9));
    tp_kwargs empty = {0, NULL};
    ck_assert_ptr_eq(tp_kwargs_get(&empty, "a", ARG(8)), ARG(8));
}
END_TEST

/* ------------------------------------------------------------------------ */
/* tp_map_iter                                                               */
/* ------------------------------------------------------------------------ */

typedef struct it_state {
    atomic_int next_calls;
    atomic_int done_calls;
    atomic_int in_next; /* concurrent next calls: must stay <= 1 */
    atomic_int overlap;
    int limit; /* produce this many, then... */
    int after; /* ...return this (0 exhausted, <0 error) */
    bool endless;
} it_state;

static int it_next(void *state, void **arg)
{
    it_state *s = state;
    if (atomic_fetch_add(&s->in_next, 1) != 0)
        atomic_fetch_add(&s->overlap, 1);
    int n = atomic_fetch_add(&s->next_calls, 1);
    int rc;
    if (s->endless || n < s->limit) {
        *arg = ARG(n % N_MAX);
        rc = 1;
    } else {
        rc = s->after;
    }
    atomic_fetch_sub(&s->in_next, 1);
    return rc;
}

static void it_done(void *state)
{
    it_state *s = state;
    atomic_fetch_add(&s->done_calls, 1);
}

static tp_iter iter_of(it_state *s)
{
    return (tp_iter){it_next, it_done, s};
}

/* iter-1: an exhausted iterator: every value runs once, next is called
 * once more to learn it is exhausted, done once. */
START_TEST(iter_exhausted)
{
    enum { N = 50, K = 3 };
    it_state s = {.limit = N, .after = 0};
    tp_pool *p = new_pool(0);
    char g[TP_NAME_MAX];
    ck_assert_int_eq(tp_map_iter(p, quick_task, iter_of(&s), K,
                                 &(tp_opts){.func_name = "it"}, g),
                     TP_OK);
    ck_assert_str_eq(g, "map-it-group-0");
    ck_assert_int_eq(tp_gather_and_close(p), TP_OK);
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(atomic_load(&hits[i]), 1);
    ck_assert_int_eq(atomic_load(&s.done_calls), 1);
    ck_assert_int_ge(atomic_load(&s.next_calls), N + 1);
    ck_assert_int_eq(atomic_load(&s.overlap), 0);
    ck_assert_int_le(atomic_load(&max_cur), K);
    tp_pool_free(p);
}
END_TEST

/* iter-2: an iterator failing (<0) is treated as exhausted; done once. */
START_TEST(iter_error_is_exhausted)
{
    it_state s = {.limit = 3, .after = -5};
    tp_pool *p = new_pool(0);
    ck_assert_int_eq(tp_map_iter(p, quick_task, iter_of(&s), 2, NULL, NULL),
                     TP_OK);
    ck_assert_int_eq(tp_gather_and_close(p), TP_OK);
    ck_assert_int_eq(counter_get(&started), 3);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(atomic_load(&hits[i]), 1);
    ck_assert_int_eq(atomic_load(&s.done_calls), 1);
    ck_assert_int_eq(atomic_load(&s.next_calls), 4);
    tp_pool_free(p);
}
END_TEST

/* iter-3: cancelling the group stops consumption. With every started task
 * held at the gate, next has been called exactly once per started task
 * (never ahead of time); after the cancel it is never called again, and
 * done is called exactly once. */
START_TEST(iter_cancel_stops_consumption)
{
    enum { K = 3 };
    it_state s = {.endless = true};
    tp_pool *p = new_pool(0);
    char g[TP_NAME_MAX];
    ck_assert_int_eq(tp_map_iter(p, gated_task, iter_of(&s), K,
                                 &(tp_opts){.discard = discard_idx}, g),
                     TP_OK);
    ck_assert(counter_wait(&started, K));
    ck_assert_int_eq(atomic_load(&s.next_calls), K);
    ck_assert_int_eq(tp_cancel_group(p, g), TP_OK);
    int calls = atomic_load(&s.next_calls);
    ck_assert_int_eq(calls, K);
    ck_assert(counter_wait(&finished, K)); /* the cancelled tasks return */
    ck_assert_int_eq(tp_gather_and_close(p), TP_OK);
    ck_assert_int_eq(atomic_load(&s.next_calls), calls);
    ck_assert_int_eq(atomic_load(&s.done_calls), 1);
    ck_assert_int_eq(counter_get(&discarded), 0);
    ck_assert_int_eq(counter_get(&started), K);
    /* The group is forgotten. */
    ck_assert_int_eq(tp_cancel_group(p, g), TP_ENOGROUP);
    tp_pool_free(p);
}
END_TEST

/* The predicate "the iterator has been advanced at least 100 times". */
static bool hundred_calls(void *arg)
{
    it_state *s = arg;
    return atomic_load(&s->next_calls) >= 100;
}

/* iter-4: an endless iterator consumed as fast as tasks end; cancel, then
 * gather_and_close returns. Every value produced either ran or was
 * discarded, exactly once; done once; next is not called concurrently. */
START_TEST(iter_endless_cancel_then_gather)
{
    it_state s = {.endless = true};
    tp_pool *p = new_pool(0);
    char g[TP_NAME_MAX];
    ck_assert_int_eq(tp_map_iter(p, quick_task, iter_of(&s), 2,
                                 &(tp_opts){.discard = discard_idx}, g),
                     TP_OK);
    ck_assert(wait_until(hundred_calls, &s));
    ck_assert_int_eq(tp_cancel_group(p, g), TP_OK);
    ck_assert_int_eq(tp_gather_and_close(p), TP_OK);
    int calls = atomic_load(&s.next_calls);
    ck_assert_int_lt(calls, N_MAX);
    ck_assert_int_eq(atomic_load(&s.done_calls), 1);
    ck_assert_int_eq(atomic_load(&s.overlap), 0);
    /* A task cancelled after it was given an id but before its function
     * was called counts as started (total_started) without a call. */
    tp_stats st;
    ck_assert_int_eq(tp_get_stats(p, &st), TP_OK);
    ck_assert_int_eq((long)st.total_started + counter_get(&discarded), calls);
    ck_assert_int_le(counter_get(&started), (long)st.total_started);
    for (int i = 0; i < calls; i++)
        ck_assert_int_le(atomic_load(&hits[i]) + atomic_load(&discards[i]), 1);
    ck_assert_int_le(atomic_load(&max_cur), 2);
    tp_pool_free(p);
}
END_TEST

/* iter-5: a failing call calls done before it returns, once. */
START_TEST(iter_failed_call_calls_done)
{
    it_state s = {.endless = true};
    tp_pool *p = new_pool(0);
    ck_assert_int_eq(tp_map_iter(p, quick_task, iter_of(&s), 0, NULL, NULL),
                     TP_EINVAL);
    ck_assert_int_eq(atomic_load(&s.done_calls), 1);
    tp_lock(p);
    ck_assert_int_eq(tp_map_iter(p, quick_task, iter_of(&s), 1, NULL, NULL),
                     TP_ELOCKED);
    ck_assert_int_eq(atomic_load(&s.done_calls), 2);
    ck_assert_int_eq(atomic_load(&s.next_calls), 0);
    tp_pool_free(p);
}
END_TEST

/* iter-6: an exhausted iterator whose tasks are held: next is called only
 * as tasks start; done once when it reports the end. */
START_TEST(iter_lazy)
{
    enum { N = 5, K = 2 };
    it_state s = {.limit = N, .after = 0};
    tp_pool *p = new_pool(0);
    ck_assert_int_eq(tp_map_iter(p, gated_task, iter_of(&s), K, NULL, NULL),
                     TP_OK);
    ck_assert(counter_wait(&started, K));
    ck_assert_int_eq(atomic_load(&s.next_calls), K);
    ck_assert_int_eq(atomic_load(&s.done_calls), 0);
    gate_open(&g_all);
    ck_assert_int_eq(tp_gather_and_close(p), TP_OK);
    ck_assert_int_eq(counter_get(&started), N);
    ck_assert_int_eq(atomic_load(&s.done_calls), 1);
    tp_pool_free(p);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* discard                                                                   */
/* ------------------------------------------------------------------------ */

/* discard-1: a map cancelled while its starts wait for room in the pool
 * and for its group: started + discarded == n, each argument once. */
START_TEST(discard_map_cancelled)
{
    enum { N = 30, K = 4, SIZE = 2 };
    tp_pool *p = new_pool(SIZE);
    void *args[N];
    for (int i = 0; i < N; i++)
        args[i] = ARG(i);
    char g[TP_NAME_MAX];
    ck_assert_int_eq(tp_map(p, gated_task, args, N, K,
                            &(tp_opts){.discard = discard_idx}, g),
                     TP_OK);
    ck_assert(counter_wait(&started, SIZE));
    ck_assert_int_eq(tp_cancel_group(p, g), TP_OK);
    ck_assert_int_eq(tp_gather_and_close(p), TP_OK);
    ck_assert_int_eq(counter_get(&started), SIZE);
    ck_assert_int_eq(counter_get(&discarded), N - SIZE);
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(atomic_load(&hits[i]) + atomic_load(&discards[i]), 1);
    tp_pool_free(p);
}
END_TEST

/* discard-2: tp_pool_free drops pending starts of apply and map, calling
 * discard once for each map argument and once for the apply group's
 * shared argument. */
START_TEST(discard_on_free)
{
    enum { N = 6 };
    tp_pool *p = new_pool(1);
    void *args[N];
    for (int i = 0; i < N; i++)
        args[i] = ARG(i);
    ck_assert_int_eq(tp_map(p, gated_task, args, N, N,
                            &(tp_opts){.discard = discard_idx}, NULL),
                     TP_OK);
    ck_assert_int_eq(tp_apply(p, gated_task, ARG(100), 3,
                              &(tp_opts){.discard = discard_idx}, NULL),
                     TP_OK);
    ck_assert(counter_wait(&started, 1));
    tp_pool_free(p);
    ck_assert_int_eq(counter_get(&started), 1);
    ck_assert_int_eq(atomic_load(&hits[0]), 1);
    ck_assert_int_eq(counter_get(&discarded), N - 1 + 1);
    for (int i = 1; i < N; i++)
        ck_assert_int_eq(atomic_load(&discards[i]), 1);
    ck_assert_int_eq(atomic_load(&discards[100]), 1);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* The reference's advanced example, with gates instead of sleeps            */
/* ------------------------------------------------------------------------ */

enum { ADV_TASKS = 6 };
static gate adv_gate[ADV_TASKS];
static pthread_mutex_t adv_mu = PTHREAD_MUTEX_INITIALIZER;
static int adv_order[ADV_TASKS * 2]; /* id for a start, 100 + id for an end */
static int adv_n;
static int adv_group[ADV_TASKS];   /* 'A' apply, 'S' + argument index */
static int adv_log[ADV_TASKS * 2]; /* the same, from the log handler */
static int adv_nlog;

static void adv_push(int *v, int *n, int code)
{
    pthread_mutex_lock(&adv_mu);
    if (*n < ADV_TASKS * 2)
        v[(*n)++] = code;
    pthread_mutex_unlock(&adv_mu);
}

static int adv_pos(const int *v, int n, int code)
{
    pthread_mutex_lock(&adv_mu);
    int pos = -1;
    for (int i = 0; i < n; i++)
        if (v[i] == code)
            pos = i;
    pthread_mutex_unlock(&adv_mu);
    return pos;
}

static void adv_log_handler(tp_log_level level, const char *msg, void *arg)
{
    (void)level;
    (void)arg;
    long id;
    if (sscanf(msg, "Started TaskPool-adv_Task-%ld", &id) == 1)
        adv_push(adv_log, &adv_nlog, (int)id);
    else if (sscanf(msg, "Ended TaskPool-adv_Task-%ld", &id) == 1)
        adv_push(adv_log, &adv_nlog, 100 + (int)id);
}

static void adv_run(tp_task *task, int group)
{
    tp_id id = tp_task_id(task);
    if (id < 0 || id >= ADV_TASKS) {
        atomic_fetch_add(&failures, 1);
        return;
    }
    pthread_mutex_lock(&adv_mu);
    adv_group[id] = group;
    pthread_mutex_unlock(&adv_mu);
    adv_push(adv_order, &adv_n, (int)id);
    counter_add(&started, 1);
    gate_pass(&adv_gate[id], task);
}

static int adv_work(tp_task *task, void *arg)
{
    (void)arg;
    adv_run(task, 'A');
    return 0;
}

static int adv_other(tp_task *task, size_t argc, void *const argv[])
{
    adv_run(task, argc == 2 ? 'S' + IDX(argv[0]) / 10 : '?');
    return 0;
}

static void adv_end(tp_pool *pool, tp_id id, void *arg)
{
    (void)pool;
    (void)arg;
    adv_push(adv_order, &adv_n, 100 + (int)id);
    counter_add(&finished, 1);
}

static int adv_started(void)
{
    return (int)counter_get(&started);
}

static bool two_running(void *arg)
{
    return tp_num_running(arg) == 2;
}

/* adv-1: pool size 3; apply 2 (ids 0, 1); starmap 4 with num_concurrent 2:
 * id 2 starts at once; 3 only when 2 ends; 4 when 0 ends; 5 not when 1
 * ends, only when 3 ends. */
START_TEST(advanced_example_order)
{
    for (int i = 0; i < ADV_TASKS; i++)
        gate_init(&adv_gate[i]);
    tp_log_set(adv_log_handler, NULL, TP_LOG_DEBUG);
    tp_pool *p = tp_pool_new(&(tp_pool_opts){.pool_size = 3, .name = "adv"});
    ck_assert_ptr_nonnull(p);
    tp_opts o = {.end_callback = adv_end};

    o.func_name = "work";
    char ga[TP_NAME_MAX], gs[TP_NAME_MAX];
    ck_assert_int_eq(tp_apply(p, adv_work, NULL, 2, &o, ga), TP_OK);
    ck_assert_str_eq(ga, "apply-work-group-0");
    ck_assert(counter_wait(&started, 2));

    void *v[4][2] = {{ARG(0), ARG(10)},
                     {ARG(10), ARG(20)},
                     {ARG(20), ARG(30)},
                     {ARG(30), ARG(40)}};
    tp_args args[4] = {{2, v[0]}, {2, v[1]}, {2, v[2]}, {2, v[3]}};
    o.func_name = "other_work";
    ck_assert_int_eq(tp_starmap(p, adv_other, args, 4, 2, &o, gs), TP_OK);
    ck_assert_str_eq(gs, "starmap-other_work-group-0");
    /* Id 2 starts at once and fills the pool. */
    ck_assert(counter_wait(&started, 3));
    ck_assert(tp_is_full(p));
    ck_assert_int_eq(adv_started(), 3);

    /* 2 ends: 3 starts. */
    gate_open(&adv_gate[2]);
    ck_assert(counter_wait(&started, 4));
    ck_assert(counter_wait(&finished, 1));
    ck_assert(tp_is_full(p));
    ck_assert_int_eq(adv_started(), 4);

    /* 0 ends: 4 starts (room in the pool, one of its group runs). */
    gate_open(&adv_gate[0]);
    ck_assert(counter_wait(&started, 5));
    ck_assert(counter_wait(&finished, 2));

    /* 1 ends: room, but 3 and 4 run, so 5 waits for its group. */
    gate_open(&adv_gate[1]);
    ck_assert(counter_wait(&finished, 3));
    ck_assert(wait_until(two_running, p));
    ck_assert(!tp_is_full(p));
    tp_stats st;
    ck_assert_int_eq(tp_get_stats(p, &st), TP_OK);
    ck_assert_uint_eq(st.total_started, 5);
    ck_assert_uint_eq(st.pending, 1);
    ck_assert_int_eq(adv_started(), 5);

    /* 3 ends: 5 starts. */
    gate_open(&adv_gate[3]);
    ck_assert(counter_wait(&started, 6));
    gate_open(&adv_gate[4]);
    gate_open(&adv_gate[5]);
    ck_assert_int_eq(tp_gather_and_close(p), TP_OK);
    ck_assert_int_eq(atomic_load(&failures), 0);

    /* Start order is id order, and each id belongs where the reference
     * says: 0, 1 to apply; 2..5 to the starmap arguments in order. */
    int starts[ADV_TASKS], ns = 0;
    for (int i = 0; i < adv_n; i++)
        if (adv_order[i] < 100)
            starts[ns++] = adv_order[i];
    ck_assert_int_eq(ns, ADV_TASKS);
    /* 0 and 1 start at once, on two workers: either may enter first. */
    ck_assert_int_eq(starts[0] + starts[1], 1);
    ck_assert_int_eq(starts[0] * starts[1], 0);
    for (int i = 2; i < ADV_TASKS; i++)
        ck_assert_int_eq(starts[i], i);
    ck_assert_int_eq(adv_group[0], 'A');
    ck_assert_int_eq(adv_group[1], 'A');
    for (int i = 2; i < ADV_TASKS; i++)
        ck_assert_int_eq(adv_group[i], 'S' + (i - 2));

    /* Seen by the end callbacks: 5, which waited for its group, enters its
     * function after 3's end callback (the group takes the next argument
     * only then). */
    ck_assert_int_eq(adv_n, 2 * ADV_TASKS);
    ck_assert_int_gt(adv_pos(adv_order, adv_n, 5),
                     adv_pos(adv_order, adv_n, 103));
    /* Seen in the log, as in the reference's output: a task that waited
     * for room is logged as started only after the task that made room
     * was logged as ended ("Ended Task-2", then "Started Task-3"). */
    ck_assert_int_eq(adv_nlog, 2 * ADV_TASKS);
    ck_assert_int_gt(adv_pos(adv_log, adv_nlog, 3),
                     adv_pos(adv_log, adv_nlog, 102));
    ck_assert_int_gt(adv_pos(adv_log, adv_nlog, 4),
                     adv_pos(adv_log, adv_nlog, 100));
    ck_assert_int_gt(adv_pos(adv_log, adv_nlog, 5),
                     adv_pos(adv_log, adv_nlog, 103));
    ck_assert_int_gt(adv_pos(adv_log, adv_nlog, 5),
                     adv_pos(adv_log, adv_nlog, 101));
    tp_pool_free(p);
    tp_log_set(NULL, NULL, TP_LOG_DEBUG);
}
END_TEST

int main(void)
{
    double m = time_multiplier();
    Suite *s = suite_create("map");

    TCase *map = tcase_create("map");
    tcase_add_checked_fixture(map, setup, teardown);
    tcase_set_timeout(map, 30 * m);
    tcase_add_test(map, map_each_once_bounded);
    tcase_add_test(map, map_bound_under_churn);
    tcase_add_test(map, map_invalid);
    tcase_add_test(map, map_group_names);
    tcase_add_test(map, starmap_values_copied);
    tcase_add_test(map, starmap_discard);
    tcase_add_test(map, doublestarmap_values_copied);
    tcase_add_test(map, doublestarmap_invalid);
    tcase_add_test(map, kwargs_get);
    suite_add_tcase(s, map);

    TCase *iter = tcase_create("iter");
    tcase_add_checked_fixture(iter, setup, teardown);
    tcase_set_timeout(iter, 30 * m);
    tcase_add_test(iter, iter_exhausted);
    tcase_add_test(iter, iter_error_is_exhausted);
    tcase_add_test(iter, iter_cancel_stops_consumption);
    tcase_add_test(iter, iter_endless_cancel_then_gather);
    tcase_add_test(iter, iter_failed_call_calls_done);
    tcase_add_test(iter, iter_lazy);
    suite_add_tcase(s, iter);

    TCase *discard = tcase_create("discard");
    tcase_add_checked_fixture(discard, setup, teardown);
    tcase_set_timeout(discard, 30 * m);
    tcase_add_test(discard, discard_map_cancelled);
    tcase_add_test(discard, discard_on_free);
    suite_add_tcase(s, discard);

    TCase *adv = tcase_create("advanced");
    tcase_add_checked_fixture(adv, setup, teardown);
    tcase_set_timeout(adv, 30 * m);
    tcase_add_test(adv, advanced_example_order);
    suite_add_tcase(s, adv);

    return run_suite(s);
}
