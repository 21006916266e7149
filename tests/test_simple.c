/* SPDX-License-Identifier: MIT */
/* The SimpleTaskPool suite: tp_simple_pool_new, tp_start, tp_stop,
 * tp_stop_all, tp_func_name, and what a simple pool refuses.
 *
 * What it proves: names ("SimpleTaskPool-<i>", named pools, start groups
 * "start-group-<i>"); tp_stop cancels the most recently started running
 * tasks first and returns their ids in that order; stopping more than run
 * stops all; stopping an empty pool stops none; the kinds of pool refuse
 * each other's calls with TP_EWRONG_POOL; a locked or closed pool refuses
 * tp_start; the callbacks given at creation run once per task.
 *
 * Tasks block at a gate (cancellably); tests wait on counters, never
 * sleep. */
#include "support.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_IDS 64

static counter started, ended;
static gate g_all;
static atomic_int end_calls[MAX_IDS], cancel_calls[MAX_IDS];
static atomic_int wrong_arg;

static void setup(void)
{
    counter_init(&started);
    counter_init(&ended);
    gate_init(&g_all);
    for (int i = 0; i < MAX_IDS; i++) {
        atomic_store(&end_calls[i], 0);
        atomic_store(&cancel_calls[i], 0);
    }
    atomic_store(&wrong_arg, 0);
}

static void teardown(void)
{
    counter_destroy(&started);
    counter_destroy(&ended);
    gate_destroy(&g_all);
}

static int the_arg = 42;

/* The simple pool's function: checks its fixed argument, holds the gate. */
static int held(tp_task *task, void *arg)
{
    if (arg != &the_arg)
        atomic_fetch_add(&wrong_arg, 1);
    counter_add(&started, 1);
    gate_pass(&g_all, task);
    return 0;
}

static int quick(tp_task *task, void *arg)
{
    (void)task;
    (void)arg;
    return 0;
}

static void on_end(tp_pool *pool, tp_id id, void *arg)
{
    (void)pool;
    if (arg != &the_arg || id < 0 || id >= MAX_IDS) {
        atomic_fetch_add(&wrong_arg, 1);
        return;
    }
    atomic_fetch_add(&end_calls[id], 1);
    counter_add(&ended, 1);
}

static void on_cancel(tp_pool *pool, tp_id id, void *arg)
{
    (void)pool;
    if (arg != &the_arg || id < 0 || id >= MAX_IDS) {
        atomic_fetch_add(&wrong_arg, 1);
        return;
    }
    atomic_fetch_add(&cancel_calls[id], 1);
}

static tp_pool *simple(void)
{
    tp_opts o = {.func_name = "held",
                 .end_callback = on_end,
                 .cancel_callback = on_cancel,
                 .callback_arg = &the_arg};
    tp_pool *p = tp_simple_pool_new(held, &the_arg, NULL, &o);
    ck_assert_ptr_nonnull(p);
    return p;
}

/* Starts n tasks in one group and waits until they all run. */
static void start_n(tp_pool *p, size_t n)
{
    long before = counter_get(&started);
    ck_assert_int_eq(tp_start(p, n, NULL), TP_OK);
    ck_assert(counter_wait(&started, before + (long)n));
}

static void assert_ids(const tp_ids *ids, const tp_id *want, size_t n)
{
    ck_assert_uint_eq(ids->len, n);
    for (size_t i = 0; i < n; i++)
        ck_assert_int_eq(ids->v[i], want[i]);
}

/* simple-1: generated and explicit names. */
START_TEST(simple_names)
{
    tp_pool *a = tp_simple_pool_new(quick, NULL, NULL, NULL);
    tp_pool *b = tp_simple_pool_new(quick, NULL, NULL, NULL);
    tp_pool *c =
        tp_simple_pool_new(quick, NULL, &(tp_pool_opts){.name = "demo"}, NULL);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    ck_assert_ptr_nonnull(c);
    const char *pre = "SimpleTaskPool-";
    ck_assert_int_eq(strncmp(tp_pool_name(a), pre, strlen(pre)), 0);
    char *end;
    long ia = strtol(tp_pool_name(a) + strlen(pre), &end, 10);
    ck_assert(*end == '\0' && end != tp_pool_name(a) + strlen(pre));
    long ib = strtol(tp_pool_name(b) + strlen(pre), &end, 10);
    ck_assert(*end == '\0');
    ck_assert_int_gt(ib, ia);
    ck_assert_str_eq(tp_pool_name(c), "SimpleTaskPool-demo");
    ck_assert_ptr_null(tp_simple_pool_new(NULL, NULL, NULL, NULL));
    tp_pool_free(a);
    tp_pool_free(b);
    tp_pool_free(c);
}
END_TEST

/* simple-2: tp_start names its groups start-group-0, -1, ...; its tasks
 * get ids 0, 1, ... in start order; num 0 is TP_EINVAL. */
START_TEST(simple_start_groups)
{
    tp_pool *p = simple();
    char g[TP_NAME_MAX];
    ck_assert_int_eq(tp_start(p, 2, g), TP_OK);
    ck_assert_str_eq(g, "start-group-0");
    ck_assert_int_eq(tp_start(p, 1, g), TP_OK);
    ck_assert_str_eq(g, "start-group-1");
    ck_assert_int_eq(tp_start(p, 0, g), TP_EINVAL);
    ck_assert(counter_wait(&started, 3));
    const char *names[] = {"start-group-0", "start-group-1"};
    tp_ids ids;
    ck_assert_int_eq(tp_get_group_ids(p, names, 1, &ids), TP_OK);
    ck_assert_uint_eq(ids.len, 2);
    tp_ids_free(&ids);
    ck_assert_int_eq(tp_get_group_ids(p, names + 1, 1, &ids), TP_OK);
    ck_assert_uint_eq(ids.len, 1);
    tp_ids_free(&ids);
    ck_assert_int_eq(tp_get_group_ids(p, names, 2, &ids), TP_OK);
    tp_id all[] = {0, 1, 2};
    assert_ids(&ids, all, 3);
    tp_ids_free(&ids);
    gate_open(&g_all);
    ck_assert_int_eq(tp_gather_and_close(p), TP_OK);
    ck_assert_int_eq(atomic_load(&wrong_arg), 0);
    tp_pool_free(p);
}
END_TEST

/* simple-3: stop is LIFO and returns the stopped ids in that order; the
 * stopped tasks get their cancel callback; stopping more than run stops
 * the rest; then stop finds nothing. */
START_TEST(simple_stop_lifo)
{
    tp_pool *p = simple();
    start_n(p, 5);
    ck_assert_uint_eq(tp_num_running(p), 5);
    tp_ids ids;
    ck_assert_int_eq(tp_stop(p, 2, &ids), TP_OK);
    tp_id first[] = {4, 3};
    assert_ids(&ids, first, 2);
    tp_ids_free(&ids);
    ck_assert_ptr_null(ids.v);
    ck_assert(counter_wait(&ended, 2));
    ck_assert_int_eq(atomic_load(&end_calls[4]), 1);
    ck_assert_int_eq(atomic_load(&end_calls[3]), 1);
    ck_assert_int_eq(atomic_load(&cancel_calls[4]), 1);
    ck_assert_int_eq(atomic_load(&cancel_calls[3]), 1);
    ck_assert_uint_eq(tp_num_running(p), 3);

    /* More than run: all of them, most recent first. */
    ck_assert_int_eq(tp_stop(p, 10, &ids), TP_OK);
    tp_id rest[] = {2, 1, 0};
    assert_ids(&ids, rest, 3);
    tp_ids_free(&ids);
    ck_assert(counter_wait(&ended, 5));

    /* Nothing runs now. */
    ck_assert_int_eq(tp_stop(p, 3, &ids), TP_OK);
    ck_assert_uint_eq(ids.len, 0);
    tp_ids_free(&ids);
    ck_assert_int_eq(tp_gather_and_close(p), TP_OK);
    for (int i = 0; i < 5; i++) {
        ck_assert_int_eq(atomic_load(&end_calls[i]), 1);
        ck_assert_int_eq(atomic_load(&cancel_calls[i]), 1);
    }
    ck_assert_int_eq(atomic_load(&wrong_arg), 0);
    tp_pool_free(p);
}
END_TEST

/* simple-4: stop skips tasks already cancelled (they are not running),
 * and a NULL result is allowed. */
START_TEST(simple_stop_skips_cancelled)
{
    tp_pool *p = simple();
    start_n(p, 4);
    tp_id three = 3;
    ck_assert_int_eq(tp_cancel(p, &three, 1), TP_OK);
    ck_assert_int_eq(tp_stop(p, 1, NULL), TP_OK); /* stops 2 */
    tp_ids ids;
    ck_assert_int_eq(tp_stop(p, 5, &ids), TP_OK);
    tp_id rest[] = {1, 0};
    assert_ids(&ids, rest, 2);
    tp_ids_free(&ids);
    ck_assert_int_eq(tp_gather_and_close(p), TP_OK);
    ck_assert_int_eq(atomic_load(&cancel_calls[2]), 1);
    ck_assert_int_eq(atomic_load(&cancel_calls[3]), 1);
    tp_pool_free(p);
}
END_TEST

/* simple-5: stop on a pool that never started anything: no ids, TP_OK;
 * stop 0 stops none. */
START_TEST(simple_stop_empty)
{
    tp_pool *p = simple();
    tp_ids ids = {7, NULL};
    ck_assert_int_eq(tp_stop(p, 2, &ids), TP_OK);
    ck_assert_uint_eq(ids.len, 0);
    tp_ids_free(&ids);
    ck_assert_int_eq(tp_stop_all(p, &ids), TP_OK);
    ck_assert_uint_eq(ids.len, 0);
    tp_ids_free(&ids);
    start_n(p, 2);
    ck_assert_int_eq(tp_stop(p, 0, &ids), TP_OK);
    ck_assert_uint_eq(ids.len, 0);
    tp_ids_free(&ids);
    ck_assert_uint_eq(tp_num_running(p), 2);
    gate_open(&g_all);
    ck_assert_int_eq(tp_gather_and_close(p), TP_OK);
    tp_pool_free(p);
}
END_TEST

/* simple-6: stop_all stops every running task, most recent first, across
 * start groups. */
START_TEST(simple_stop_all)
{
    tp_pool *p = simple();
    start_n(p, 2);
    start_n(p, 1);
    tp_ids ids;
    ck_assert_int_eq(tp_stop_all(p, &ids), TP_OK);
    tp_id all[] = {2, 1, 0};
    assert_ids(&ids, all, 3);
    tp_ids_free(&ids);
    ck_assert(counter_wait(&ended, 3));
    ck_assert_uint_eq(tp_num_running(p), 0);
    ck_assert_int_eq(tp_gather_and_close(p), TP_OK);
    tp_pool_free(p);
}
END_TEST

/* simple-7: tp_func_name. */
START_TEST(simple_func_name)
{
    tp_pool *a = simple();
    tp_pool *b = tp_simple_pool_new(quick, NULL, NULL, NULL);
    tp_pool *c = tp_pool_new(NULL);
    ck_assert_str_eq(tp_func_name(a), "held");
    ck_assert_str_eq(tp_func_name(b), "func");
    ck_assert_ptr_null(tp_func_name(c));
    tp_pool_free(a);
    tp_pool_free(b);
    tp_pool_free(c);
}
END_TEST

static int it_next(void *state, void **arg)
{
    (void)state;
    *arg = NULL;
    return 1;
}

static void it_done(void *state)
{
    atomic_fetch_add((atomic_int *)state, 1);
}

static int star(tp_task *task, size_t argc, void *const argv[])
{
    (void)task;
    (void)argc;
    (void)argv;
    return 0;
}

static int kw(tp_task *task, const tp_kwargs *kwargs)
{
    (void)task;
    (void)kwargs;
    return 0;
}

/* simple-8: each kind of pool refuses the other's calls. */
START_TEST(simple_wrong_pool)
{
    tp_pool *sp = simple();
    tp_pool *gp = tp_pool_new(NULL);
    ck_assert_ptr_nonnull(gp);
    void *args[1] = {NULL};
    tp_args sa[1] = {{0, NULL}};
    tp_kwargs ka[1] = {{0, NULL}};
    atomic_int done = 0;

    tp_ids ids;
    ck_assert_int_eq(tp_stop(gp, 1, &ids), TP_EWRONG_POOL);
    ck_assert_uint_eq(ids.len, 0);
    ck_assert_int_eq(tp_stop_all(gp, NULL), TP_EWRONG_POOL);

    ck_assert_int_eq(tp_apply(sp, quick, NULL, 1, NULL, NULL), TP_EWRONG_POOL);
    ck_assert_int_eq(tp_map(sp, quick, args, 1, 1, NULL, NULL), TP_EWRONG_POOL);
    ck_assert_int_eq(tp_starmap(sp, star, sa, 1, 1, NULL, NULL),
                     TP_EWRONG_POOL);
    ck_assert_int_eq(tp_doublestarmap(sp, kw, ka, 1, 1, NULL, NULL),
                     TP_EWRONG_POOL);
    ck_assert_int_eq(tp_map_iter(sp, quick, (tp_iter){it_next, it_done, &done},
                                 1, NULL, NULL),
                     TP_EWRONG_POOL);
    ck_assert_int_eq(atomic_load(&done), 1);

    tp_stats st;
    ck_assert_int_eq(tp_get_stats(sp, &st), TP_OK);
    ck_assert_uint_eq(st.total_started, 0);
    ck_assert_uint_eq(st.groups, 0);
    ck_assert_int_eq(tp_get_stats(gp, &st), TP_OK);
    ck_assert_uint_eq(st.total_started, 0);
    tp_pool_free(sp);
    tp_pool_free(gp);
}
END_TEST

/* simple-8b: tp_start on a general pool is TP_EWRONG_POOL (not
 * TP_EINVAL, although a general pool has no fixed function). */
START_TEST(simple_start_on_general_pool)
{
    tp_pool *gp = tp_pool_new(NULL);
    ck_assert_ptr_nonnull(gp);
    char g[TP_NAME_MAX] = "";
    ck_assert_int_eq(tp_start(gp, 1, g), TP_EWRONG_POOL);
    ck_assert_str_eq(g, "");
    tp_pool_free(gp);
}
END_TEST

/* simple-9: tp_start on a locked pool is TP_ELOCKED (and works again once
 * unlocked); on a closed pool TP_ECLOSED. */
START_TEST(simple_locked_closed)
{
    tp_pool *p = simple();
    tp_lock(p);
    ck_assert(tp_is_locked(p));
    ck_assert_int_eq(tp_start(p, 1, NULL), TP_ELOCKED);
    tp_unlock(p);
    ck_assert(!tp_is_locked(p));
    start_n(p, 1);
    gate_open(&g_all);
    ck_assert_int_eq(tp_gather_and_close(p), TP_OK);
    ck_assert_int_eq(tp_start(p, 1, NULL), TP_ECLOSED);
    ck_assert_int_eq(counter_get(&started), 1);
    tp_pool_free(p);
}
END_TEST

/* simple-10: the callbacks given at creation run once per task, for every
 * start group; the cancel callback only for cancelled tasks. */
START_TEST(simple_callbacks_once)
{
    tp_pool *p = simple();
    start_n(p, 3);
    start_n(p, 2);
    tp_id one = 1;
    ck_assert_int_eq(tp_cancel(p, &one, 1), TP_OK);
    ck_assert(counter_wait(&ended, 1));
    gate_open(&g_all);
    ck_assert_int_eq(tp_gather_and_close(p), TP_OK);
    ck_assert_int_eq(counter_get(&ended), 5);
    for (int i = 0; i < 5; i++) {
        ck_assert_int_eq(atomic_load(&end_calls[i]), 1);
        ck_assert_int_eq(atomic_load(&cancel_calls[i]), i == 1);
    }
    ck_assert_int_eq(atomic_load(&end_calls[5]), 0);
    ck_assert_int_eq(atomic_load(&wrong_arg), 0);
    tp_pool_free(p);
}
END_TEST

int main(void)
{
    double m = time_multiplier();
    Suite *s = suite_create("simple");
    TCase *tc = tcase_create("simple");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30 * m);
    tcase_add_test(tc, simple_names);
    tcase_add_test(tc, simple_start_groups);
    tcase_add_test(tc, simple_stop_lifo);
    tcase_add_test(tc, simple_stop_skips_cancelled);
    tcase_add_test(tc, simple_stop_empty);
    tcase_add_test(tc, simple_stop_all);
    tcase_add_test(tc, simple_func_name);
    tcase_add_test(tc, simple_wrong_pool);
    tcase_add_test(tc, simple_start_on_general_pool);
    tcase_add_test(tc, simple_locked_closed);
    tcase_add_test(tc, simple_callbacks_once);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
