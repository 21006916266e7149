/* SPDX-License-Identifier: MIT */
/* Pools: names, size, lock, close, counters, errors, threads, logging. */
#include "internal.h"
#include "support.h"

#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static counter started, ended;
static gate release;

static void setup(void)
{
    counter_init(&started);
    counter_init(&ended);
    gate_init(&release);
}

static void teardown(void)
{
    counter_destroy(&started);
    counter_destroy(&ended);
    gate_destroy(&release);
}

/* Counts its start, then blocks until `release` opens or it is cancelled. */
static int gated(tp_task *task, void *arg)
{
    (void)arg;
    counter_add(&started, 1);
    gate_pass(&release, task);
    return 0;
}

static void count_end(tp_pool *pool, tp_id id, void *arg)
{
    (void)pool, (void)id, (void)arg;
    counter_add(&ended, 1);
}

static const tp_opts counted = {.end_callback = count_end};

static int noop(tp_task *task, void *arg)
{
    (void)task, (void)arg;
    return 0;
}

static int count_run(tp_task *task, void *arg)
{
    (void)task, (void)arg;
    counter_add(&ended, 1);
    return 0;
}

START_TEST(pool_names_share_one_index)
{
    tp_pool *a = tp_pool_new(NULL);
    tp_pool *b = tp_simple_pool_new(noop, NULL, NULL, NULL);
    tp_pool *c = tp_pool_new(&(tp_pool_opts){.name = "demo"});
    tp_pool *d = tp_pool_new(NULL);
    unsigned ia, ib, id;
    ck_assert_int_eq(sscanf(tp_pool_name(a), "TaskPool-%u", &ia), 1);
    ck_assert_int_eq(sscanf(tp_pool_name(b), "SimpleTaskPool-%u", &ib), 1);
    ck_assert_int_eq(sscanf(tp_pool_name(d), "TaskPool-%u", &id), 1);
    ck_assert_uint_eq(ib, ia + 1);
    ck_assert_uint_eq(id, ia + 3); /* the named pool took an index too */
    ck_assert_str_eq(tp_pool_name(c), "TaskPool-demo");
    tp_pool_free(a);
    tp_pool_free(b);
    tp_pool_free(c);
    tp_pool_free(d);
}
END_TEST

START_TEST(pool_rejects_overlong_name)
{
    char name[TP_NAME_MAX];
    memset(name, 'x', sizeof name - 1);
    name[sizeof name - 1] = 0;
    ck_assert_ptr_null(tp_pool_new(&(tp_pool_opts){.name = name}));
    ck_assert_ptr_null(tp_simple_pool_new(NULL, NULL, NULL, NULL));
    tp_pool_free(NULL); /* a no-op */
}
END_TEST

START_TEST(errors_have_names_and_sentences)
{
    ck_assert_str_eq(tp_err_name(TP_ENOTASK), "TP_ENOTASK");
    ck_assert_str_eq(tp_err_name(TP_OK), "TP_OK");
    ck_assert_str_eq(tp_err_name(TP_EAGAIN), "TP_EAGAIN");
    ck_assert_str_eq(tp_err_name(-999), "TP_UNKNOWN");
    ck_assert_str_eq(tp_err_name(5), "TP_UNKNOWN");
    for (int e = TP_OK; e >= TP_EAGAIN; e--)
        ck_assert_uint_gt(strlen(tp_strerror(e)), 5);
    ck_assert_str_eq(tp_strerror(-999), "Unknown error.");
}
END_TEST

START_TEST(size_defaults_to_unlimited_and_can_change)
{
    tp_pool *p = tp_pool_new(NULL);
    ck_assert_uint_eq(tp_pool_size(p), TP_UNLIMITED);
    ck_assert(!tp_is_full(p));
    ck_assert_int_eq(tp_set_pool_size(p, 3), TP_OK);
    ck_assert_uint_eq(tp_pool_size(p), 3);
    tp_pool_free(p);
    p = tp_pool_new(&(tp_pool_opts){.pool_size = 7});
    ck_assert_uint_eq(tp_pool_size(p), 7);
    tp_pool_free(p);
}
END_TEST

START_TEST(size_zero_pauses_and_raising_starts_at_once)
{
    tp_pool *p = tp_pool_new(NULL);
    tp_set_pool_size(p, 0);
    ck_assert(tp_is_full(p));
    ck_assert_int_eq(tp_apply(p, gated, NULL, 3, &counted, NULL), TP_OK);
    tp_stats st;
    tp_get_stats(p, &st);
    ck_assert_uint_eq(st.pending, 3);
    ck_assert_uint_eq(st.running, 0);
    ck_assert_uint_eq(st.total_started, 0);

    tp_set_pool_size(p, 2);
    ck_assert(counter_wait(&started, 2));
    ck_assert(tp_is_full(p));
    tp_get_stats(p, &st);
    ck_assert_uint_eq(st.running, 2);
    ck_assert_uint_eq(st.pending, 1);

    gate_open(&release);
    ck_assert_int_eq(tp_gather_and_close(p), TP_OK);
    ck_assert_int_eq(counter_get(&started), 3);
    tp_pool_free(p);
}
END_TEST

START_TEST(lowering_size_never_touches_running_tasks)
{
    tp_pool *p = tp_pool_new(NULL);
    ck_assert_int_eq(tp_apply(p, gated, NULL, 3, &counted, NULL), TP_OK);
    ck_assert(counter_wait(&started, 3));
    tp_set_pool_size(p, 1);
    ck_assert_uint_eq(tp_num_running(p), 3);
    ck_assert_uint_eq(tp_num_cancelled(p), 0);
    /* Two more starts wait: 3 occupy a pool of 1. */
    ck_assert_int_eq(tp_apply(p, noop, NULL, 2, &counted, NULL), TP_OK);
    tp_stats st;
    tp_get_stats(p, &st);
    ck_assert_uint_eq(st.pending, 2);
    ck_assert_uint_eq(st.total_started, 3);
    gate_open(&release);
    ck_assert_int_eq(tp_gather_and_close(p), TP_OK);
    tp_get_stats(p, &st);
    ck_assert_uint_eq(st.total_started, 5);
    tp_pool_free(p);
}
END_TEST

START_TEST(locked_pool_refuses_new_calls_but_runs_queued_starts)
{
    tp_pool *p = tp_pool_new(NULL);
    tp_set_pool_size(p, 0);
    ck_assert_int_eq(tp_apply(p, gated, NULL, 2, &counted, NULL), TP_OK);
    tp_lock(p);
    ck_assert(tp_is_locked(p));
    ck_assert_int_eq(tp_apply(p, gated, NULL, 1, NULL, NULL), TP_ELOCKED);
    tp_set_pool_size(p, TP_UNLIMITED);
    ck_assert(counter_wait(&started, 2)); /* queued before the lock */
    tp_unlock(p);
    ck_assert(!tp_is_locked(p));
    ck_assert_int_eq(tp_apply(p, gated, NULL, 1, &counted, NULL), TP_OK);
    ck_assert(counter_wait(&started, 3));
    gate_open(&release);
    ck_assert_int_eq(tp_gather_and_close(p), TP_OK);
    tp_pool_free(p);
}
END_TEST

START_TEST(gather_closes_forgets_and_keeps_totals)
{
    tp_pool *p = tp_pool_new(NULL);
    char group[TP_NAME_MAX];
    ck_assert_int_eq(tp_apply(p, noop, NULL, 4, &counted, group), TP_OK);
    ck_assert_int_eq(tp_gather_and_close(p), TP_OK);
    ck_assert_int_eq(counter_get(&ended), 4);
    ck_assert(tp_is_locked(p));
    ck_assert_uint_eq(tp_num_ended(p), 0);
    ck_assert_uint_eq(tp_num_running(p), 0);
    tp_ids ids;
    const char *names[] = {group};
    ck_assert_int_eq(tp_get_group_ids(p, names, 1, &ids), TP_ENOGROUP);
    tp_id zero = 0;
    ck_assert_int_eq(tp_cancel(p, &zero, 1), TP_ENOTASK);
    tp_stats st;
    tp_get_stats(p, &st);
    ck_assert_uint_eq(st.total_started, 4);
    ck_assert_uint_eq(st.total_ended, 4);
    ck_assert_uint_eq(st.groups, 0);
    ck_assert_int_eq(tp_apply(p, noop, NULL, 1, NULL, NULL), TP_ECLOSED);
    tp_unlock(p);
    ck_assert_int_eq(tp_apply(p, noop, NULL, 1, NULL, NULL), TP_ECLOSED);
    ck_assert_int_eq(tp_gather_and_close(p), TP_ECLOSED);
    ck_assert_int_eq(tp_until_closed(p, 0), TP_OK);
    tp_pool_free(p);
}
END_TEST

static void *gather_thread(void *arg)
{
    return (void *)(intptr_t)tp_gather_and_close(arg);
}

START_TEST(until_closed_times_out_then_sees_the_close)
{
    tp_pool *p = tp_pool_new(NULL);
    ck_assert_int_eq(tp_until_closed(p, 0.01), TP_ETIMEDOUT);
    ck_assert_int_eq(tp_apply(p, gated, NULL, 1, NULL, NULL), TP_OK);
    pthread_t th;
    pthread_create(&th, NULL, gather_thread, p);
    ck_assert(counter_wait(&started, 1));
    ck_assert_int_eq(tp_until_closed(p, 0.01), TP_ETIMEDOUT);
    gate_open(&release);
    ck_assert_int_eq(tp_until_closed(p, -1), TP_OK);
    void *rc;
    pthread_join(th, &rc);
    ck_assert_int_eq((int)(intptr_t)rc, TP_OK);
    tp_pool_free(p);
}
END_TEST

static int deadlock_codes[3];

static int waits_for_own_pool(tp_task *task, void *arg)
{
    (void)arg;
    tp_pool *p = tp_task_pool(task);
    deadlock_codes[0] = tp_gather_and_close(p);
    deadlock_codes[1] = tp_flush(p);
    deadlock_codes[2] = tp_until_closed(p, -1);
    return 0;
}

static int callback_code;
static void waits_in_callback(tp_pool *pool, tp_id id, void *arg)
{
    (void)id, (void)arg;
    callback_code = tp_flush(pool);
    counter_add(&ended, 1);
}

START_TEST(waiting_on_own_pool_is_edeadlk)
{
    tp_pool *p = tp_pool_new(NULL);
    ck_assert_int_eq(tp_apply(p, waits_for_own_pool, NULL, 1,
                              &(tp_opts){.end_callback = waits_in_callback},
                              NULL),
                     TP_OK);
    ck_assert(counter_wait(&ended, 1));
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(deadlock_codes[i], TP_EDEADLK);
    ck_assert_int_eq(callback_code, TP_EDEADLK);
    ck_assert_int_eq(tp_gather_and_close(p), TP_OK);
    tp_pool_free(p);
}
END_TEST

static int discards;
static void count_discard(void *arg, void *cb)
{
    (void)arg, (void)cb;
    discards++;
}

START_TEST(bad_input_is_einval_and_changes_nothing)
{
    tp_pool *p = tp_pool_new(NULL);
    tp_opts opts = {.discard = count_discard};
    char longname[TP_NAME_MAX + 1];
    memset(longname, 'g', TP_NAME_MAX);
    longname[TP_NAME_MAX] = 0;
    ck_assert_int_eq(tp_apply(NULL, noop, NULL, 1, NULL, NULL), TP_EINVAL);
    ck_assert_int_eq(tp_apply(p, NULL, NULL, 1, NULL, NULL), TP_EINVAL);
    ck_assert_int_eq(tp_apply(p, noop, NULL, 0, &opts, NULL), TP_EINVAL);
    opts.group_name = longname;
    ck_assert_int_eq(tp_apply(p, noop, NULL, 1, &opts, NULL), TP_EINVAL);
    opts.group_name = NULL;
    opts.func_name = longname;
    ck_assert_int_eq(tp_apply(p, noop, NULL, 1, &opts, NULL), TP_EINVAL);
    ck_assert_int_eq(tp_cancel(NULL, NULL, 0), TP_EINVAL);
    ck_assert_int_eq(tp_cancel(p, NULL, 1), TP_EINVAL);
    ck_assert_int_eq(tp_cancel_group(p, NULL), TP_EINVAL);
    ck_assert_int_eq(tp_cancel_group(p, "nope"), TP_ENOGROUP);
    ck_assert_int_eq(tp_get_stats(p, NULL), TP_EINVAL);
    ck_assert_int_eq(tp_set_pool_size(NULL, 1), TP_EINVAL);
    ck_assert_int_eq(tp_flush(NULL), TP_EINVAL);
    ck_assert_int_eq(tp_gather_and_close(NULL), TP_EINVAL);
    tp_id ids[] = {-1, 0, 12345};
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(tp_cancel(p, &ids[i], 1), TP_ENOTASK);
    tp_stats st;
    tp_get_stats(p, &st);
    ck_assert_uint_eq(st.groups, 0);
    ck_assert_uint_eq(st.pending, 0);
    ck_assert_uint_eq(st.total_started, 0);
    ck_assert_int_eq(discards, 0);
    ck_assert_uint_eq(tp_num_running(NULL), 0);
    ck_assert_ptr_null(tp_pool_name(NULL));
    tp_pool_free(p);
}
END_TEST

START_TEST(failed_thread_creation_starts_nothing)
{
    tp_pool *p = tp_pool_new(NULL);
    tp_opts opts = {.discard = count_discard, .end_callback = count_end};
    atomic_store(&tp__fail_thread_create, 1);
    char group[TP_NAME_MAX] = "";
    ck_assert_int_eq(tp_apply(p, noop, NULL, 3, &opts, group), TP_ESYS);
    ck_assert_str_eq(group, "");
    tp_stats st;
    tp_get_stats(p, &st);
    ck_assert_uint_eq(st.groups, 0);
    ck_assert_uint_eq(st.pending, 0);
    ck_assert_uint_eq(st.threads, 0);
    ck_assert_uint_eq(st.total_started, 0);
    ck_assert_int_eq(discards, 0);
    /* The next call works, and the generated name moved on. */
    ck_assert_int_eq(tp_apply(p, noop, NULL, 3, &opts, group), TP_OK);
    ck_assert_int_eq(tp_gather_and_close(p), TP_OK);
    ck_assert_int_eq(counter_get(&ended), 3);
    tp_pool_free(p);
}
END_TEST

START_TEST(failed_thread_creation_while_resizing_keeps_starts_pending)
{
    tp_pool *p = tp_pool_new(NULL);
    tp_set_pool_size(p, 0);
    ck_assert_int_eq(tp_apply(p, noop, NULL, 2, &counted, NULL), TP_OK);
    atomic_store(&tp__fail_thread_create, 1);
    ck_assert_int_eq(tp_set_pool_size(p, 1), TP_ESYS);
    tp_stats st;
    tp_get_stats(p, &st);
    ck_assert_uint_eq(st.pending, 2);
    ck_assert_uint_eq(st.pool_size, 1);
    ck_assert_int_eq(tp_set_pool_size(p, 2), TP_OK);
    ck_assert(counter_wait(&ended, 2));
    ck_assert_int_eq(tp_gather_and_close(p), TP_OK);
    tp_pool_free(p);
}
END_TEST

static bool no_threads(void *arg)
{
    tp_stats st;
    tp_get_stats(arg, &st);
    return st.threads == 0;
}

START_TEST(workers_are_reused_and_retire_when_idle)
{
    tp_pool *p =
        tp_pool_new(&(tp_pool_opts){.pool_size = 2, .idle_timeout = 0.02});
    /* Without callbacks a slot frees only when its worker is free. */
    ck_assert_int_eq(tp_apply(p, count_run, NULL, 1000, NULL, NULL), TP_OK);
    ck_assert(counter_wait(&ended, 1000));
    tp_stats st;
    tp_get_stats(p, &st);
    ck_assert_uint_le(st.threads, 2);
    ck_assert(wait_until(no_threads, p));
    /* Work after retirement gets new threads. */
    ck_assert_int_eq(tp_apply(p, noop, NULL, 10, &counted, NULL), TP_OK);
    ck_assert(counter_wait(&ended, 1010));
    tp_pool_free(p);
}
END_TEST

START_TEST(free_cancels_and_waits)
{
    tp_pool *p = tp_pool_new(&(tp_pool_opts){.pool_size = 2});
    tp_opts opts = {.discard = count_discard, .end_callback = count_end};
    ck_assert_int_eq(tp_apply(p, gated, NULL, 5, &opts, NULL), TP_OK);
    ck_assert(counter_wait(&started, 2));
    tp_pool_free(p);
    ck_assert_int_eq(counter_get(&ended), 2);
    /* One shared argument, discarded once after its last task ended. */
    ck_assert_int_eq(discards, 1);
}
END_TEST

/* Log capture. */
/* Regression: a worker that finds nothing spins for work before parking,
 * counted as a worker heading for the FIFO; a start queued just after its
 * spin gave up must still be claimed (it waited for the idle timeout and
 * then hung: found by the W4 benchmark). One call at a time, each after a
 * pause, while a test hook holds the window open for 1 ms. */
static void slow_regret(void)
{
    struct timespec ms = {0, 1000000};
    nanosleep(&ms, NULL);
}

START_TEST(a_start_queued_as_a_spinning_worker_gives_up_is_claimed)
{
    tp__spin_hook = slow_regret; /* the window: 1 ms after the spin */
    tp_pool *p = tp_pool_new(&(tp_pool_opts){.idle_timeout = 600});
    unsigned seed = 7;
    for (long i = 1; i <= 300; i++) {
        ck_assert_int_eq(tp_apply(p, noop, NULL, 1, &counted, NULL), TP_OK);
        ck_assert(counter_wait(&ended, i));
        struct timespec pause = {0, (long)(rand_r(&seed) % 100000)};
        nanosleep(&pause, NULL);
    }
    tp_pool_free(p);
}
END_TEST

static bool no_groups(void *arg)
{
    tp_stats st;
    tp_get_stats(arg, &st);
    return st.groups == 0 && st.running == 0;
}

/* forget_ended: a task is forgotten once its end callback returned; its
 * group with its last task; lifetime totals still count it. */
START_TEST(forget_ended_forgets_each_task_after_its_end_callback)
{
    tp_pool *p = tp_pool_new(&(tp_pool_opts){.forget_ended = true});
    char g[TP_NAME_MAX];
    ck_assert_int_eq(tp_apply(p, gated, NULL, 2, &counted, g), TP_OK);
    ck_assert_int_eq(tp_apply(p, noop, NULL, 3, &counted, NULL), TP_OK);
    ck_assert(counter_wait(&started, 2));
    ck_assert(counter_wait(&ended, 3));
    /* While running, a task is known. */
    tp_ids ids;
    const char *names[] = {g};
    ck_assert_int_eq(tp_get_group_ids(p, names, 1, &ids), TP_OK);
    ck_assert_uint_eq(ids.len, 2);
    tp_id first = ids.v[0];
    tp_ids_free(&ids);
    ck_assert_int_eq(tp_task_status(p, first), TP_OK);
    gate_open(&release);
    ck_assert(counter_wait(&ended, 5));
    ck_assert(wait_until(no_groups, p));
    ck_assert_uint_eq(tp_num_ended(p), 0);
    ck_assert_int_eq(tp_cancel(p, &first, 1), TP_ENOTASK);
    ck_assert_int_eq(tp_get_group_ids(p, names, 1, &ids), TP_ENOGROUP);
    ck_assert_int_eq(tp_cancel_group(p, g), TP_ENOGROUP);
    tp_stats st;
    ck_assert_int_eq(tp_get_stats(p, &st), TP_OK);
    ck_assert_uint_eq(st.total_started, 5);
    ck_assert_uint_eq(st.total_ended, 5);
    ck_assert_uint_eq(st.ended, 0);
    ck_assert_int_eq(tp_flush(p), TP_OK);
    ck_assert_int_eq(tp_gather_and_close(p), TP_OK);
    tp_pool_free(p);
}
END_TEST

static int sleeps_ms(tp_task *task, void *arg)
{
    (void)arg;
    counter_add(&started, 1);
    tp_sleep(task, 0.003);
    return 0;
}

/* Timings (issue 9): the wait of a start from admission to start and the
 * run time land in the documented buckets; refused spawns and dropped
 * starts are counted. */
START_TEST(timings_and_refused_and_dropped_counts)
{
    const double *b = tp_hist_bounds();
    ck_assert(b[0] == 1e-6 && b[TP_HIST_BUCKETS - 2] == 100);
    ck_assert(isinf(b[TP_HIST_BUCKETS - 1]));
    for (int i = 1; i < TP_HIST_BUCKETS; i++)
        ck_assert(b[i] > b[i - 1]);
    tp_pool *p = tp_pool_new(&(tp_pool_opts){.pool_size = 1});
    /* Three tasks of 3 ms on one slot: each runs >= 3 ms; the second and
     * third wait >= 3 and >= 6 ms. */
    ck_assert_int_eq(tp_apply(p, sleeps_ms, NULL, 3, &counted, NULL), TP_OK);
    ck_assert(counter_wait(&ended, 3));
    tp_timings tm;
    ck_assert_int_eq(tp_get_timings(p, &tm), TP_OK);
    ck_assert_uint_eq(tm.run.count, 3);
    ck_assert_uint_eq(tm.wait.count, 3);
    ck_assert(tm.run.sum >= 0.009);
    ck_assert(tm.wait.sum >= 0.009 - 0.0005);
    uint64_t in_buckets = 0, run_below_ms = 0;
    for (int i = 0; i < TP_HIST_BUCKETS; i++) {
        in_buckets += tm.run.buckets[i];
        if (b[i] < 0.0025)
            run_below_ms += tm.run.buckets[i];
    }
    ck_assert_uint_eq(in_buckets, 3);
    ck_assert_uint_eq(run_below_ms, 0);
    /* Dropped starts and refused calls. */
    ck_assert_int_eq(tp_set_pool_size(p, 0), TP_OK);
    char g[TP_NAME_MAX];
    ck_assert_int_eq(tp_apply(p, noop, NULL, 5, NULL, g), TP_OK);
    ck_assert_int_eq(tp_cancel_group(p, g), TP_OK);
    tp_lock(p);
    ck_assert_int_eq(tp_apply(p, noop, NULL, 1, NULL, NULL), TP_ELOCKED);
    tp_unlock(p);
    tp_stats st;
    ck_assert_int_eq(tp_get_stats(p, &st), TP_OK);
    ck_assert_uint_eq(st.total_dropped, 5);
    ck_assert_uint_eq(st.total_refused, 1);
    ck_assert_int_eq(tp_get_timings(p, &tm), TP_OK);
    ck_assert_uint_eq(tm.wait.count, 3); /* dropped: never observed */
    ck_assert_int_eq(tp_get_timings(NULL, &tm), TP_EINVAL);
    ck_assert_int_eq(tp_set_pool_size(p, 1), TP_OK);
    ck_assert_int_eq(tp_gather_and_close(p), TP_OK);
    ck_assert_int_eq(tp_apply(p, noop, NULL, 1, NULL, NULL), TP_ECLOSED);
    ck_assert_int_eq(tp_get_stats(p, &st), TP_OK);
    ck_assert_uint_eq(st.total_refused, 2);
    tp_pool_free(p);
    /* no_timings: nothing observed, the rest unchanged. */
    p = tp_pool_new(&(tp_pool_opts){.no_timings = true});
    ck_assert_int_eq(tp_apply(p, noop, NULL, 4, NULL, NULL), TP_OK);
    ck_assert_int_eq(tp_gather_and_close(p), TP_OK);
    ck_assert_int_eq(tp_get_timings(p, &tm), TP_OK);
    ck_assert_uint_eq(tm.wait.count + tm.run.count, 0);
    ck_assert_int_eq(tp_get_stats(p, &st), TP_OK);
    ck_assert_uint_eq(st.total_ended, 4);
    tp_pool_free(p);
}
END_TEST

static int counts_then_passes(tp_task *task, void *gate_arg)
{
    counter_add(&started, 1);
    return gate_pass(gate_arg, task);
}

enum { SHARD_CALLS = 5000 };

static void *submits_noops(void *pool)
{
    for (int i = 0; i < SHARD_CALLS; i++)
        ck_assert_int_eq(tp_apply(pool, noop, NULL, 1, NULL, NULL), TP_OK);
    return NULL;
}

/* More workers than timing shards: seven own a shard each and add to it
 * with plain stores, the others share shard 0 and add atomically. Every
 * task is observed once (under TSan: no two threads store to one shard),
 * and the shards of retired workers are taken by new ones. */
START_TEST(timings_count_every_task_with_more_workers_than_shards)
{
    enum { WORKERS = 24, SUBMITTERS = 4 };
    gate g;
    gate_init(&g);
    tp_pool *p = tp_pool_new(
        &(tp_pool_opts){.pool_size = WORKERS, .idle_timeout = 0.001});
    uint64_t tasks = 0;
    for (int round = 0; round < 2; round++) {
        /* WORKERS threads at once, then per-call tasks from four threads
         * on all of them; in between, the idle threads retire. */
        ck_assert_int_eq(
            tp_apply(p, counts_then_passes, &g, WORKERS, NULL, NULL), TP_OK);
        ck_assert(counter_wait(&started, (round + 1) * WORKERS));
        gate_open(&g);
        pthread_t th[SUBMITTERS];
        for (int i = 0; i < SUBMITTERS; i++)
            ck_assert_int_eq(pthread_create(&th[i], NULL, submits_noops, p), 0);
        for (int i = 0; i < SUBMITTERS; i++)
            pthread_join(th[i], NULL);
        tasks += WORKERS + SUBMITTERS * SHARD_CALLS;
        ck_assert(wait_until(no_threads, p));
        tp__lock(p); /* retired workers gave their shards back */
        ck_assert_uint_eq(p->shards_owned & ~1u, 0);
        tp__unlock(p);
        pthread_mutex_lock(&g.mu); /* closed again for the next round */
        g.open = false;
        pthread_mutex_unlock(&g.mu);
    }
    ck_assert_int_eq(tp_gather_and_close(p), TP_OK);
    tp_timings tm;
    ck_assert_int_eq(tp_get_timings(p, &tm), TP_OK);
    ck_assert_uint_eq(tm.run.count, tasks);
    ck_assert_uint_eq(tm.wait.count, tasks);
    tp_pool_free(p);
    gate_destroy(&g);
}
END_TEST

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static char logbuf[8192];

static void capture(tp_log_level level, const char *message, void *arg)
{
    (void)level, (void)arg;
    pthread_mutex_lock(&log_mu);
    strncat(logbuf, message, sizeof logbuf - strlen(logbuf) - 2);
    strcat(logbuf, "\n");
    pthread_mutex_unlock(&log_mu);
}

static bool logged(const char *line)
{
    char want[300];
    snprintf(want, sizeof want, "%s\n", line);
    pthread_mutex_lock(&log_mu);
    bool found = strstr(logbuf, want) != NULL;
    pthread_mutex_unlock(&log_mu);
    return found;
}

START_TEST(log_messages_mirror_the_reference)
{
    tp_log_set(capture, NULL, TP_LOG_DEBUG);
    tp_pool *p = tp_pool_new(&(tp_pool_opts){.name = "L"});
    ck_assert(logged("TaskPool-L initialized"));
    ck_assert_int_eq(tp_apply(p, gated, NULL, 1, &counted, NULL), TP_OK);
    ck_assert(counter_wait(&started, 1));
    tp_id id = 0;
    ck_assert_int_eq(tp_cancel(p, &id, 1), TP_OK);
    ck_assert(counter_wait(&ended, 1));
    tp_lock(p);
    tp_unlock(p);
    tp_cancel_all(p);
    ck_assert_int_eq(tp_gather_and_close(p), TP_OK);
    ck_assert(logged("Started TaskPool-L_Task-0"));
    ck_assert(logged("Cancelling TaskPool-L_Task-0 ...\n"
                     "Cancelled TaskPool-L_Task-0\n"
                     "Ended TaskPool-L_Task-0"));
    ck_assert(logged("TaskPool-L is locked!"));
    ck_assert(logged("TaskPool-L was unlocked."));
    ck_assert(logged("TaskPool-L cancelling all tasks!"));
    /* Above the minimum level nothing is passed on. */
    tp_log_set(capture, NULL, TP_LOG_ERROR);
    logbuf[0] = 0;
    tp_pool_free(tp_pool_new(NULL));
    ck_assert_str_eq(logbuf, "");
    tp_log_set(NULL, NULL, TP_LOG_DEBUG);
    tp_pool_free(p);
}
END_TEST

/* A thread waiting for the pool (here in tp_until_closed, then in
 * gather) is woken when something it waits for may have happened, not
 * once per task: under forget_ended every task's group is forgotten as
 * it ends, and waking the waiters for each made them contend with the
 * workers for the lock once per task (a gather of 1M per-call tasks took
 * 1.8 times as long). */
enum { QUIET_TASKS = 2000 };

static void *wait_closed(void *arg)
{
    ck_assert_int_eq(tp_until_closed(arg, -1), TP_OK);
    return NULL;
}

static size_t waiters_of(tp_pool *p)
{
    tp__lock(p);
    size_t n = p->waiters;
    tp__unlock(p);
    return n;
}

START_TEST(forgotten_tasks_do_not_wake_waiters_one_by_one)
{
    tp_pool *p = tp_pool_new(&(tp_pool_opts){.forget_ended = true});
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(tp_set_pool_size(p, 0), TP_OK);
    for (int i = 0; i < QUIET_TASKS; i++)
        ck_assert_int_eq(tp_apply(p, count_run, NULL, 1, NULL, NULL), TP_OK);
    pthread_t waiter;
    ck_assert_int_eq(pthread_create(&waiter, NULL, wait_closed, p), 0);
    while (waiters_of(p) == 0)
        sched_yield();
    tp__lock(p);
    uint64_t before = p->wakeups;
    tp__unlock(p);
    /* All queued first, so the pool is idle only once, at the end. */
    ck_assert_int_eq(tp_set_pool_size(p, 2), TP_OK);
    ck_assert_int_eq(tp_gather_and_close(p), TP_OK);
    pthread_join(waiter, NULL);
    ck_assert_int_eq(counter_get(&ended), QUIET_TASKS);
    tp__lock(p);
    uint64_t woken = p->wakeups - before;
    tp__unlock(p);
    ck_assert_uint_lt(woken, QUIET_TASKS / 20);
    tp_pool_free(p);
}
END_TEST

/* A worker that stands by (worker.c: the others keep up with the starts,
 * and it leaves them theirs) comes back by itself: here the only other
 * worker is blocked in a task, and the starts left must still run. The
 * hook makes the end of the second task stand by whatever the lock's
 * load. */
static int count_then_pass(tp_task *task, void *gate_arg)
{
    counter_add(&started, 1);
    return gate_pass(gate_arg, task);
}

START_TEST(a_worker_standing_by_comes_back_for_the_starts_it_left)
{
    tp_pool *p = tp_pool_new(&(tp_pool_opts){.pool_size = 2});
    gate second;
    gate_init(&second);
    ck_assert_int_eq(tp_apply(p, gated, NULL, 1, NULL, NULL), TP_OK);
    ck_assert(counter_wait(&started, 1));
    ck_assert_int_eq(tp_apply(p, count_then_pass, &second, 1, NULL, NULL),
                     TP_OK);
    ck_assert(counter_wait(&started, 2));
    for (int i = 0; i < 2; i++) /* counted once ended */
        ck_assert_int_eq(tp_apply(p, noop, NULL, 1, &counted, NULL), TP_OK);
    tp_stats st;
    ck_assert_int_eq(tp_get_stats(p, &st), TP_OK);
    ck_assert_uint_eq(st.pending, 2);
    atomic_store(&tp__force_standby, 1);
    gate_open(&second); /* its worker ends the task and stands by */
    ck_assert(counter_wait(&ended, 2));
    ck_assert_int_eq(atomic_load(&tp__force_standby), 0);
    ck_assert_int_eq(tp_get_stats(p, &st), TP_OK);
    ck_assert_uint_eq(st.running, 1); /* the first still blocks */
    gate_open(&release);
    ck_assert_int_eq(tp_gather_and_close(p), TP_OK);
    tp_pool_free(p);
    gate_destroy(&second);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("pool");
    TCase *tc = tcase_create("pool");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, pool_names_share_one_index);
    tcase_add_test(tc, pool_rejects_overlong_name);
    tcase_add_test(tc, errors_have_names_and_sentences);
    tcase_add_test(tc, size_defaults_to_unlimited_and_can_change);
    tcase_add_test(tc, size_zero_pauses_and_raising_starts_at_once);
    tcase_add_test(tc, lowering_size_never_touches_running_tasks);
    tcase_add_test(tc, locked_pool_refuses_new_calls_but_runs_queued_starts);
    tcase_add_test(tc, gather_closes_forgets_and_keeps_totals);
    tcase_add_test(tc, until_closed_times_out_then_sees_the_close);
    tcase_add_test(tc, waiting_on_own_pool_is_edeadlk);
    tcase_add_test(tc, bad_input_is_einval_and_changes_nothing);
    tcase_add_test(tc, failed_thread_creation_starts_nothing);
    tcase_add_test(tc,
                   failed_thread_creation_while_resizing_keeps_starts_pending);
    tcase_add_test(tc, workers_are_reused_and_retire_when_idle);
    tcase_add_test(tc, free_cancels_and_waits);
    tcase_add_test(tc, forget_ended_forgets_each_task_after_its_end_callback);
    tcase_add_test(tc, a_start_queued_as_a_spinning_worker_gives_up_is_claimed);
    tcase_add_test(tc, timings_and_refused_and_dropped_counts);
    tcase_add_test(tc, timings_count_every_task_with_more_workers_than_shards);
    tcase_add_test(tc, forgotten_tasks_do_not_wake_waiters_one_by_one);
    tcase_add_test(tc, a_worker_standing_by_comes_back_for_the_starts_it_left);
    tcase_add_test(tc, log_messages_mirror_the_reference);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
