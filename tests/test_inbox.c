/* SPDX-License-Identifier: MIT */
/* The per-call fast path (src/inbox.c, src/ring.c): one-task applies
 * pushed into the ring without the pool lock must be indistinguishable
 * from applies made under it -- names, ids and FIFO order, stats,
 * lookups, cancels, locking, freeing. A paused pool (size 0) is full, so
 * every eligible per-call apply after the first takes the fast path there
 * and stays in the ring until someone enters the pool; each test checks
 * that the ring was really used. */
#include "internal.h"
#include "support.h"

#include <sched.h>
#include <stdio.h>
#include <string.h>

static counter ran, discarded;
static pthread_mutex_t order_mu = PTHREAD_MUTEX_INITIALIZER;
static long order[64];
static size_t n_order;

static void setup(void)
{
    counter_init(&ran);
    counter_init(&discarded);
    n_order = 0;
}

static void teardown(void)
{
    counter_destroy(&ran);
    counter_destroy(&discarded);
}

/* Records its argument (a number) in the order the tasks run. */
static int record(tp_task *task, void *arg)
{
    (void)task;
    pthread_mutex_lock(&order_mu);
    if (n_order < 64)
        order[n_order++] = (long)(intptr_t)arg;
    pthread_mutex_unlock(&order_mu);
    counter_add(&ran, 1);
    return 0;
}

static int count_only(tp_task *task, void *arg)
{
    (void)task, (void)arg;
    counter_add(&ran, 1);
    return 0;
}

static void on_discard(void *arg, void *cb)
{
    (void)arg, (void)cb;
    counter_add(&discarded, 1);
}

static const tp_opts named_f = {.func_name = "f"};

/* A paused pool whose counter for "apply-f" exists (the first apply of a
 * function always takes the lock), with one group apply-f-group-0. */
static tp_pool *paused_pool(const tp_opts *opts)
{
    tp_pool *p = tp_pool_new(NULL);
    ck_assert_int_eq(tp_set_pool_size(p, 0), TP_OK);
    ck_assert_int_eq(tp_apply(p, record, (void *)0, 1, opts, NULL), TP_OK);
    ck_assert(!tp__inbox_waiting(p));
    return p;
}

START_TEST(fast_applies_keep_names_ids_and_fifo_order)
{
    tp_pool *p = paused_pool(&named_f);
    for (long i = 1; i <= 9; i++)
        ck_assert_int_eq(tp_apply(p, record, (void *)i, 1, &named_f, NULL),
                         TP_OK);
    ck_assert(tp__inbox_waiting(p)); /* really the fast path */
    /* A reader sees every push that returned. */
    tp_stats st;
    ck_assert_int_eq(tp_get_stats(p, &st), TP_OK);
    ck_assert(!tp__inbox_waiting(p));
    ck_assert_uint_eq(st.pending, 10);
    ck_assert_uint_eq(st.groups, 10);
    tp_groups gs;
    ck_assert_int_eq(tp_get_groups(p, &gs), TP_OK);
    ck_assert_uint_eq(gs.len, 10);
    bool seen[10] = {0};
    for (size_t i = 0; i < gs.len; i++) {
        unsigned k;
        ck_assert_int_eq(sscanf(gs.v[i].name, "apply-f-group-%u", &k), 1);
        ck_assert_uint_lt(k, 10);
        ck_assert(!seen[k]);
        seen[k] = true;
        ck_assert_uint_eq(gs.v[i].pending, 1);
    }
    tp_groups_free(&gs);
    ck_assert_int_eq(tp_set_pool_size(p, 1), TP_OK);
    ck_assert_int_eq(tp_gather_and_close(p), TP_OK);
    /* One worker: tasks ran in submission order, with ids in that order. */
    ck_assert_uint_eq(n_order, 10);
    for (long i = 0; i < 10; i++)
        ck_assert_int_eq(order[i], i);
    tp_pool_free(p);
}
END_TEST

START_TEST(fast_groups_are_found_by_name_and_cancelled)
{
    tp_pool *p = paused_pool(&named_f);
    for (long i = 1; i <= 3; i++)
        ck_assert_int_eq(tp_apply(p, record, (void *)i, 1, &named_f, NULL),
                         TP_OK);
    ck_assert(tp__inbox_waiting(p));
    ck_assert_int_eq(tp_cancel_group(p, "apply-f-group-2"), TP_OK);
    ck_assert_int_eq(tp_cancel_group(p, "apply-f-group-2"), TP_ENOGROUP);
    ck_assert_int_eq(tp_apply(p, record, (void *)4, 1, &named_f, NULL), TP_OK);
    ck_assert(tp__inbox_waiting(p));
    tp_ids ids;
    const char *names[] = {"apply-f-group-4"};
    ck_assert_int_eq(tp_get_group_ids(p, names, 1, &ids), TP_OK);
    ck_assert_uint_eq(ids.len, 0); /* known, not started */
    tp_ids_free(&ids);
    tp_stats st;
    ck_assert_int_eq(tp_get_stats(p, &st), TP_OK);
    ck_assert_uint_eq(st.pending, 4);
    ck_assert_uint_eq(st.groups, 4);
    ck_assert_uint_eq(st.total_dropped, 1);
    ck_assert_int_eq(tp_set_pool_size(p, 1), TP_OK);
    ck_assert_int_eq(tp_gather_and_close(p), TP_OK);
    ck_assert_uint_eq(n_order, 4);
    long want[] = {0, 1, 3, 4};
    for (size_t i = 0; i < 4; i++)
        ck_assert_int_eq(order[i], want[i]);
    tp_pool_free(p);
}
END_TEST

/* Calls with callbacks of their own take the lock (a ring entry has no
 * room for them), and keep their place among the ring's entries; so do
 * applies that ask for their name and applies of many starts. */
START_TEST(locked_calls_keep_their_place_among_fast_ones)
{
    tp_pool *p = paused_pool(&named_f);
    tp_opts cb = {.func_name = "f", .discard = on_discard};
    char name[TP_NAME_MAX];
    ck_assert_int_eq(tp_apply(p, record, (void *)1, 1, &named_f, NULL), TP_OK);
    ck_assert(tp__inbox_waiting(p));
    ck_assert_int_eq(tp_apply(p, record, (void *)2, 1, &cb, NULL), TP_OK);
    ck_assert(!tp__inbox_waiting(p)); /* the lock saw the ring first */
    ck_assert_int_eq(tp_apply(p, record, (void *)3, 1, &named_f, NULL), TP_OK);
    ck_assert_int_eq(tp_apply(p, record, (void *)4, 1, &named_f, name), TP_OK);
    ck_assert_str_eq(name, "apply-f-group-4");
    ck_assert_int_eq(tp_apply(p, record, (void *)5, 1, &named_f, NULL), TP_OK);
    ck_assert_int_eq(tp_apply(p, record, (void *)6, 2, &named_f, NULL), TP_OK);
    ck_assert_int_eq(tp_apply(p, record, (void *)7, 1, &named_f, NULL), TP_OK);
    ck_assert(tp__inbox_waiting(p));
    /* Looking at the groups gives the ring's entries theirs, in place. */
    tp_groups gs;
    ck_assert_int_eq(tp_get_groups(p, &gs), TP_OK);
    ck_assert_uint_eq(gs.len, 8);
    tp_groups_free(&gs);
    ck_assert_int_eq(tp_apply(p, record, (void *)8, 1, &named_f, NULL), TP_OK);
    ck_assert(tp__inbox_waiting(p));
    ck_assert_int_eq(tp_cancel_group(p, "apply-f-group-2"), TP_OK);
    ck_assert_int_eq(counter_get(&discarded), 1);
    ck_assert_int_eq(tp_set_pool_size(p, 1), TP_OK);
    ck_assert_int_eq(tp_gather_and_close(p), TP_OK);
    long want[] = {0, 1, 3, 4, 5, 6, 6, 7, 8};
    ck_assert_uint_eq(n_order, 9);
    for (size_t i = 0; i < 9; i++)
        ck_assert_int_eq(order[i], want[i]);
    tp_pool_free(p);
}
END_TEST

/* An explicit name that reads like the next generated one, given while
 * fast applies wait in the inbox: they are named first (they returned
 * first), and the next generated name skips the explicit one. */
START_TEST(explicit_lookalike_between_fast_applies)
{
    tp_pool *p = paused_pool(&named_f);
    ck_assert_int_eq(tp_apply(p, record, (void *)1, 1, &named_f, NULL), TP_OK);
    ck_assert_int_eq(tp_apply(p, record, (void *)2, 1, &named_f, NULL), TP_OK);
    ck_assert(tp__inbox_waiting(p));
    tp_opts x = {.func_name = "f", .group_name = "apply-f-group-3"};
    ck_assert_int_eq(tp_apply(p, record, (void *)3, 1, &x, NULL), TP_OK);
    x.group_name = "apply-f-group-2"; /* taken by the second fast apply */
    ck_assert_int_eq(tp_apply(p, record, (void *)9, 1, &x, NULL),
                     TP_EGROUP_EXISTS);
    ck_assert_int_eq(tp_apply(p, record, (void *)4, 1, &named_f, NULL), TP_OK);
    char name[TP_NAME_MAX];
    ck_assert_int_eq(tp_apply(p, record, (void *)5, 1, &named_f, name), TP_OK);
    ck_assert_str_eq(name, "apply-f-group-5"); /* 3 was explicit, 4 fast */
    tp_ids ids;
    const char *four[] = {"apply-f-group-4"};
    ck_assert_int_eq(tp_get_group_ids(p, four, 1, &ids), TP_OK);
    tp_ids_free(&ids);
    ck_assert_int_eq(tp_set_pool_size(p, 1), TP_OK);
    ck_assert_int_eq(tp_gather_and_close(p), TP_OK);
    ck_assert_uint_eq(n_order, 6);
    for (long i = 0; i < 6; i++)
        ck_assert_int_eq(order[i], i);
    tp_pool_free(p);
}
END_TEST

/* A pool's ring holds the starts of one counter of generated names, the
 * first one-task apply's: applies of another function take the lock, and
 * the two kinds interleave correctly. */
START_TEST(fast_path_follows_the_function_name)
{
    tp_pool *p = paused_pool(&named_f);
    tp_opts g = {.func_name = "g"};
    ck_assert_int_eq(tp_apply(p, record, (void *)1, 1, &g, NULL), TP_OK);
    ck_assert(!tp__inbox_waiting(p)); /* "g": under the lock */
    ck_assert_int_eq(tp_apply(p, record, (void *)2, 1, &named_f, NULL), TP_OK);
    ck_assert(tp__inbox_waiting(p)); /* "f": the ring */
    ck_assert_int_eq(tp_apply(p, record, (void *)3, 1, &g, NULL), TP_OK);
    ck_assert(!tp__inbox_waiting(p));
    ck_assert_int_eq(tp_apply(p, record, (void *)4, 1, &named_f, NULL), TP_OK);
    tp_groups gs;
    ck_assert_int_eq(tp_get_groups(p, &gs), TP_OK);
    ck_assert_uint_eq(gs.len, 5);
    size_t f = 0, gg = 0;
    for (size_t i = 0; i < gs.len; i++) {
        f += strncmp(gs.v[i].name, "apply-f-group-", 14) == 0;
        gg += strncmp(gs.v[i].name, "apply-g-group-", 14) == 0;
    }
    tp_groups_free(&gs);
    ck_assert_uint_eq(f, 3);
    ck_assert_uint_eq(gg, 2);
    ck_assert_int_eq(tp_set_pool_size(p, 1), TP_OK);
    ck_assert_int_eq(tp_gather_and_close(p), TP_OK);
    for (long i = 0; i < 5; i++)
        ck_assert_int_eq(order[i], i);
    tp_pool_free(p);
}
END_TEST

START_TEST(a_locked_pool_refuses_fast_applies)
{
    tp_pool *p = paused_pool(&named_f);
    ck_assert_int_eq(tp_apply(p, record, (void *)1, 1, &named_f, NULL), TP_OK);
    ck_assert(tp__inbox_waiting(p));
    tp_lock(p); /* drains: the push before it stays accepted */
    ck_assert(!tp__inbox_waiting(p));
    ck_assert_int_eq(tp_apply(p, record, (void *)2, 1, &named_f, NULL),
                     TP_ELOCKED);
    tp_stats st;
    ck_assert_int_eq(tp_get_stats(p, &st), TP_OK);
    ck_assert_uint_eq(st.pending, 2);
    ck_assert_uint_eq(st.total_refused, 1);
    tp_unlock(p);
    ck_assert_int_eq(tp_apply(p, record, (void *)2, 1, &named_f, NULL), TP_OK);
    ck_assert(tp__inbox_waiting(p)); /* open again */
    ck_assert_int_eq(tp_set_pool_size(p, 1), TP_OK);
    ck_assert_int_eq(tp_gather_and_close(p), TP_OK);
    ck_assert_int_eq(tp_apply(p, record, (void *)3, 1, &named_f, NULL),
                     TP_ECLOSED);
    ck_assert_uint_eq(n_order, 3);
    tp_pool_free(p);
}
END_TEST

/* Freeing a pool drops what waits in its ring like any pending start:
 * the function never called; and so does tp_cancel_all. */
START_TEST(freeing_drops_the_inbox)
{
    tp_pool *p = paused_pool(&named_f);
    for (long i = 1; i <= 5; i++)
        ck_assert_int_eq(tp_apply(p, record, (void *)i, 1, &named_f, NULL),
                         TP_OK);
    ck_assert(tp__inbox_waiting(p));
    tp_pool_free(p);
    ck_assert_int_eq(counter_get(&ran), 0);

    p = paused_pool(&named_f);
    for (long i = 1; i <= 5; i++)
        ck_assert_int_eq(tp_apply(p, record, (void *)i, 1, &named_f, NULL),
                         TP_OK);
    ck_assert(tp__inbox_waiting(p));
    tp_cancel_all(p);
    tp_stats st;
    ck_assert_int_eq(tp_get_stats(p, &st), TP_OK);
    ck_assert_uint_eq(st.pending, 0);
    ck_assert_uint_eq(st.groups, 0);
    ck_assert_uint_eq(st.total_dropped, 6);
    ck_assert_int_eq(tp_set_pool_size(p, 1), TP_OK);
    ck_assert_int_eq(tp_gather_and_close(p), TP_OK);
    ck_assert_int_eq(counter_get(&ran), 0);
    tp_pool_free(p);
}
END_TEST

/* A gather waiting only for per-call entries in the ring returns when
 * tp_cancel_all drops them (nothing woke it: it waited for the next
 * worker to retire, forever with no idle timeout). */
static counter gathered;

static void *gather_counted(void *pool)
{
    ck_assert_int_eq(tp_gather_and_close(pool), TP_OK);
    counter_add(&gathered, 1);
    return NULL;
}

START_TEST(dropping_the_ring_wakes_a_gather)
{
    counter_init(&gathered);
    tp_pool *p =
        tp_pool_new(&(tp_pool_opts){.pool_size = 2, .idle_timeout = -1});
    ck_assert_int_eq(tp_apply(p, count_only, NULL, 1, NULL, NULL), TP_OK);
    ck_assert(counter_wait(&ran, 1));
    ck_assert_int_eq(tp_set_pool_size(p, 0), TP_OK);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(tp_apply(p, count_only, NULL, 1, NULL, NULL), TP_OK);
    ck_assert(tp__inbox_waiting(p)); /* in the ring, no group made */
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, gather_counted, p), 0);
    for (;;) {
        tp__lock(p);
        size_t waiting = p->waiters;
        tp__unlock(p);
        if (waiting)
            break;
        sched_yield();
    }
    tp_cancel_all(p);
    ck_assert(counter_wait(&gathered, 1));
    pthread_join(th, NULL);
    ck_assert_int_eq(counter_get(&ran), 1);
    tp_pool_free(p);
    counter_destroy(&gathered);
}
END_TEST

/* More entries than one block of the ring holds wait at once, and blocks
 * are given back and reused as they drain. */
START_TEST(the_ring_grows_past_a_block)
{
    tp_pool *p = paused_pool(&named_f);
    enum { N = 3 * TP__RING_BLOCK + 5 };
    for (long i = 1; i < N; i++)
        ck_assert_int_eq(tp_apply(p, count_only, NULL, 1, &named_f, NULL),
                         TP_OK);
    ck_assert(tp__inbox_waiting(p));
    tp_stats st;
    ck_assert_int_eq(tp_get_stats(p, &st), TP_OK);
    ck_assert_uint_eq(st.pending, N);
    ck_assert_int_eq(tp_set_pool_size(p, 2), TP_OK);
    ck_assert(counter_wait(&ran, N - 1));
    for (long i = 0; i < N; i++)
        ck_assert_int_eq(tp_apply(p, count_only, NULL, 1, &named_f, NULL),
                         TP_OK);
    ck_assert_int_eq(tp_gather_and_close(p), TP_OK);
    ck_assert_int_eq(tp_get_stats(p, &st), TP_OK);
    ck_assert_uint_eq(st.total_ended, 2 * N);
    tp_pool_free(p);
}
END_TEST

/* Raising the size of a paused pool starts what waits in the inbox, even
 * with no worker thread yet (nobody else would ever drain it). */
START_TEST(resizing_starts_the_inbox)
{
    tp_pool *p = paused_pool(&named_f);
    for (long i = 1; i <= 5; i++)
        ck_assert_int_eq(tp_apply(p, record, (void *)i, 1, &named_f, NULL),
                         TP_OK);
    ck_assert(tp__inbox_waiting(p));
    ck_assert_int_eq(tp_set_pool_size(p, 2), TP_OK);
    ck_assert(counter_wait(&ran, 6));
    ck_assert_int_eq(tp_gather_and_close(p), TP_OK);
    tp_pool_free(p);
}
END_TEST

/* A simple pool's tp_start(pool, 1) takes the fast path too, with its
 * names ("start-group-<i>") and order kept. */
START_TEST(simple_pool_starts_take_the_fast_path)
{
    tp_pool *p = tp_simple_pool_new(record, (void *)7, NULL, NULL);
    ck_assert_int_eq(tp_set_pool_size(p, 0), TP_OK);
    char name[TP_NAME_MAX];
    ck_assert_int_eq(tp_start(p, 1, name), TP_OK); /* a name: the lock */
    ck_assert_str_eq(name, "start-group-0");
    ck_assert(!tp__inbox_waiting(p));
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(tp_start(p, 1, NULL), TP_OK);
    ck_assert(tp__inbox_waiting(p));
    ck_assert_int_eq(tp_start(p, 1, name), TP_OK);
    ck_assert_str_eq(name, "start-group-4");
    ck_assert_int_eq(tp_apply(p, record, NULL, 1, NULL, NULL), TP_EWRONG_POOL);
    tp_ids ids;
    const char *three[] = {"start-group-3"};
    ck_assert_int_eq(tp_get_group_ids(p, three, 1, &ids), TP_OK);
    tp_ids_free(&ids);
    ck_assert_int_eq(tp_set_pool_size(p, 1), TP_OK);
    ck_assert_int_eq(tp_gather_and_close(p), TP_OK);
    ck_assert_int_eq(counter_get(&ran), 5);
    tp_pool_free(p);
}
END_TEST

/* Running pools: many threads pushing while workers drain, with the
 * counters and the id order per submitter checked at the end. */
enum { SUBMITTERS = 4, PER = 20000 };
static atomic_long runs[SUBMITTERS][2];

static int count_run(tp_task *task, void *arg)
{
    (void)task;
    intptr_t v = (intptr_t)arg;
    atomic_fetch_add(&runs[v % SUBMITTERS][0], 1);
    return 0;
}

typedef struct sub {
    tp_pool *pool;
    int k;
} sub;

static void *submit(void *arg)
{
    sub *s = arg;
    for (intptr_t i = 0; i < PER; i++)
        if (tp_apply(s->pool, count_run, (void *)(i * SUBMITTERS + s->k), 1,
                     NULL, NULL) != TP_OK)
            atomic_fetch_add(&runs[s->k][1], 1);
    return NULL;
}

START_TEST(concurrent_submitters_lose_nothing)
{
    tp_pool *p = tp_pool_new(&(tp_pool_opts){.pool_size = 2});
    memset(runs, 0, sizeof runs);
    pthread_t th[SUBMITTERS];
    sub subs[SUBMITTERS];
    for (int k = 0; k < SUBMITTERS; k++) {
        subs[k] = (sub){p, k};
        ck_assert_int_eq(pthread_create(&th[k], NULL, submit, &subs[k]), 0);
    }
    for (int k = 0; k < SUBMITTERS; k++)
        pthread_join(th[k], NULL);
    ck_assert_int_eq(tp_gather_and_close(p), TP_OK);
    tp_stats st;
    ck_assert_int_eq(tp_get_stats(p, &st), TP_OK);
    ck_assert_uint_eq(st.total_started, SUBMITTERS * PER);
    ck_assert_uint_eq(st.total_ended, SUBMITTERS * PER);
    for (int k = 0; k < SUBMITTERS; k++) {
        ck_assert_int_eq(runs[k][0], PER);
        ck_assert_int_eq(runs[k][1], 0);
    }
    tp_pool_free(p);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("inbox");
    TCase *tc = tcase_create("fast path");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, fast_applies_keep_names_ids_and_fifo_order);
    tcase_add_test(tc, fast_groups_are_found_by_name_and_cancelled);
    tcase_add_test(tc, locked_calls_keep_their_place_among_fast_ones);
    tcase_add_test(tc, explicit_lookalike_between_fast_applies);
    tcase_add_test(tc, fast_path_follows_the_function_name);
    tcase_add_test(tc, a_locked_pool_refuses_fast_applies);
    tcase_add_test(tc, freeing_drops_the_inbox);
    tcase_add_test(tc, dropping_the_ring_wakes_a_gather);
    tcase_add_test(tc, the_ring_grows_past_a_block);
    tcase_add_test(tc, resizing_starts_the_inbox);
    tcase_add_test(tc, simple_pool_starts_take_the_fast_path);
    tcase_add_test(tc, concurrent_submitters_lose_nothing);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
