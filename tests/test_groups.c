/* SPDX-License-Identifier: MIT */
/* Groups, ids, cancellation, callbacks, flush: the reference's semantics. */
#include "internal.h"
#include "support.h"

#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static counter started, ended, cancelled_cbs, discarded;
static gate release;

static void setup(void)
{
    counter_init(&started);
    counter_init(&ended);
    counter_init(&cancelled_cbs);
    counter_init(&discarded);
    gate_init(&release);
}

static void teardown(void)
{
    counter_destroy(&started);
    counter_destroy(&ended);
    counter_destroy(&cancelled_cbs);
    counter_destroy(&discarded);
    gate_destroy(&release);
}

static int gated(tp_task *task, void *arg)
{
    (void)arg;
    counter_add(&started, 1);
    gate_pass(&release, task);
    return 0;
}

static int noop(tp_task *task, void *arg)
{
    (void)task, (void)arg;
    return 0;
}

/* Callback bookkeeping: per id, what happened in which order. */
enum { MAXID = 64 };
static pthread_mutex_t book_mu = PTHREAD_MUTEX_INITIALIZER;
static int end_calls[MAXID], cancel_calls[MAXID];
static bool cancel_before_end[MAXID] = {0};
static size_t cancelled_seen_in_cb[MAXID], running_seen_in_cb[MAXID];

static void on_cancel(tp_pool *pool, tp_id id, void *arg)
{
    (void)arg;
    /* Calling the API proves no engine lock is held here. */
    size_t c = tp_num_cancelled(pool), r = tp_num_running(pool);
    pthread_mutex_lock(&book_mu);
    cancel_calls[id]++;
    cancelled_seen_in_cb[id] = c;
    running_seen_in_cb[id] = r;
    pthread_mutex_unlock(&book_mu);
    counter_add(&cancelled_cbs, 1);
}

static void on_end(tp_pool *pool, tp_id id, void *arg)
{
    (void)pool, (void)arg;
    pthread_mutex_lock(&book_mu);
    end_calls[id]++;
    cancel_before_end[id] = cancel_calls[id] == 1;
    pthread_mutex_unlock(&book_mu);
    counter_add(&ended, 1);
}

static void on_discard(void *arg, void *cb)
{
    (void)arg, (void)cb;
    counter_add(&discarded, 1);
}

static const tp_opts booked = {.end_callback = on_end,
                               .cancel_callback = on_cancel,
                               .discard = on_discard};

static tp_ids group_ids(tp_pool *p, const char *name)
{
    tp_ids ids;
    const char *names[] = {name};
    ck_assert_int_eq(tp_get_group_ids(p, names, 1, &ids), TP_OK);
    return ids;
}

START_TEST(ids_count_from_zero_in_start_order)
{
    tp_pool *p = tp_pool_new(&(tp_pool_opts){.pool_size = 1});
    char a[TP_NAME_MAX], b[TP_NAME_MAX];
    ck_assert_int_eq(tp_apply(p, gated, NULL, 2, &booked, a), TP_OK);
    ck_assert_int_eq(tp_apply(p, gated, NULL, 2, &booked, b), TP_OK);
    gate_open(&release);
    ck_assert_int_eq(tp_gather_and_close(p), TP_OK);
    tp_pool_free(p);
    /* FIFO across groups with a pool of one: a's ids before b's. */
    for (int id = 0; id < 4; id++)
        ck_assert_int_eq(end_calls[id], 1);
    ck_assert_int_eq(end_calls[4], 0);
}
END_TEST

START_TEST(group_ids_are_sorted_and_per_group)
{
    tp_pool *p = tp_pool_new(&(tp_pool_opts){.pool_size = 1});
    char a[TP_NAME_MAX], b[TP_NAME_MAX];
    ck_assert_int_eq(tp_apply(p, noop, NULL, 2, &booked, a), TP_OK);
    ck_assert_int_eq(tp_apply(p, noop, NULL, 3, &booked, b), TP_OK);
    ck_assert(counter_wait(&ended, 5));
    tp_ids ids = group_ids(p, b);
    ck_assert_uint_eq(ids.len, 3);
    ck_assert_int_eq(ids.v[0], 2);
    ck_assert_int_eq(ids.v[2], 4);
    tp_ids_free(&ids);
    ck_assert_ptr_null(ids.v);
    const char *both[] = {b, a, b};
    ck_assert_int_eq(tp_get_group_ids(p, both, 3, &ids), TP_OK);
    ck_assert_uint_eq(ids.len, 5);
    for (size_t i = 0; i < 5; i++)
        ck_assert_int_eq(ids.v[i], (tp_id)i);
    tp_ids_free(&ids);
    ck_assert_int_eq(tp_get_group_ids(p, NULL, 0, &ids), TP_OK);
    ck_assert_uint_eq(ids.len, 0);
    const char *bad[] = {a, "nope"};
    ck_assert_int_eq(tp_get_group_ids(p, bad, 2, &ids), TP_ENOGROUP);
    ck_assert_uint_eq(ids.len, 0);
    tp_pool_free(p);
}
END_TEST

START_TEST(generated_names_count_per_prefix_and_function)
{
    tp_pool *p = tp_pool_new(NULL);
    char n[TP_NAME_MAX];
    tp_opts work = {.func_name = "work"}, other = {.func_name = "other"};
    ck_assert_int_eq(tp_apply(p, noop, NULL, 1, &work, n), TP_OK);
    ck_assert_str_eq(n, "apply-work-group-0");
    ck_assert_int_eq(tp_apply(p, noop, NULL, 1, &work, n), TP_OK);
    ck_assert_str_eq(n, "apply-work-group-1");
    ck_assert_int_eq(tp_apply(p, noop, NULL, 1, &other, n), TP_OK);
    ck_assert_str_eq(n, "apply-other-group-0");
    ck_assert_int_eq(tp_apply(p, noop, NULL, 1, NULL, n), TP_OK);
    ck_assert_str_eq(n, "apply-func-group-0");
    /* An explicit name that a generated one would take is skipped. */
    tp_opts taken = booked;
    taken.group_name = "apply-work-group-2";
    ck_assert_int_eq(tp_apply(p, gated, NULL, 1, &taken, n), TP_OK);
    ck_assert_str_eq(n, "apply-work-group-2");
    ck_assert_int_eq(tp_apply(p, gated, NULL, 1, &taken, n), TP_EGROUP_EXISTS);
    ck_assert_int_eq(tp_apply(p, noop, NULL, 1, &work, n), TP_OK);
    ck_assert_str_eq(n, "apply-work-group-3");
    /* Names are never reused, even after the group is forgotten. */
    gate_open(&release);
    ck_assert(counter_wait(&ended, 1));
    ck_assert_int_eq(tp_gather_and_close(p), TP_OK);
    tp_pool_free(p);
    p = tp_pool_new(NULL);
    ck_assert_int_eq(tp_apply(p, noop, NULL, 1, &work, n), TP_OK);
    ck_assert_str_eq(n, "apply-work-group-0"); /* counters are per pool */
    ck_assert_int_eq(tp_flush(p), TP_OK);
    ck_assert_int_eq(tp_gather_and_close(p), TP_OK);
    tp_unlock(p);
    tp_pool_free(p);
    p = tp_pool_new(NULL);
    ck_assert_int_eq(tp_apply(p, gated, NULL, 1, &booked, n), TP_OK);
    ck_assert_str_eq(n, "apply-func-group-0");
    ck_assert_int_eq(tp_cancel_group(p, n), TP_OK); /* forgotten */
    ck_assert_int_eq(tp_apply(p, noop, NULL, 1, NULL, n), TP_OK);
    ck_assert_str_eq(n, "apply-func-group-1");
    tp_pool_free(p);
}
END_TEST

/* Generated names are formatted only when asked (issue 8), so finding a
 * group by a generated name reads the name back: these pin down that an
 * explicit name never shadows or duplicates a generated one. */
START_TEST(explicit_and_generated_names_never_collide)
{
    tp_pool *p = tp_pool_new(NULL);
    ck_assert_int_eq(tp_set_pool_size(p, 0), TP_OK);
    char n[TP_NAME_MAX];
    tp_opts f = {.func_name = "x-group-1"};
    ck_assert_int_eq(tp_apply(p, noop, NULL, 1, &f, n), TP_OK);
    ck_assert_str_eq(n, "apply-x-group-1-group-0");
    /* An explicit name equal to a live generated one exists already. */
    tp_opts same = {.group_name = "apply-x-group-1-group-0"};
    ck_assert_int_eq(tp_apply(p, noop, NULL, 1, &same, NULL), TP_EGROUP_EXISTS);
    /* Not generated names: a leading zero, another function. */
    tp_opts zero = {.group_name = "apply-x-group-1-group-00"};
    ck_assert_int_eq(tp_apply(p, noop, NULL, 2, &zero, NULL), TP_OK);
    tp_opts nofunc = {.group_name = "apply-x-group-1"};
    ck_assert_int_eq(tp_apply(p, noop, NULL, 3, &nofunc, NULL), TP_OK);
    tp_opts start_like = {.group_name = "start-group-0"};
    ck_assert_int_eq(tp_apply(p, noop, NULL, 4, &start_like, NULL), TP_OK);
    /* Each is found by its own name. */
    tp_stats st;
    tp_get_stats(p, &st);
    ck_assert_uint_eq(st.groups, 4);
    ck_assert_uint_eq(st.pending, 10);
    ck_assert_int_eq(tp_cancel_group(p, "apply-x-group-1-group-00"), TP_OK);
    tp_get_stats(p, &st);
    ck_assert_uint_eq(st.pending, 8);
    ck_assert_int_eq(tp_cancel_group(p, "apply-x-group-1-group-0"), TP_OK);
    tp_get_stats(p, &st);
    ck_assert_uint_eq(st.pending, 7);
    ck_assert_int_eq(tp_cancel_group(p, "apply-x-group-1-group-0"),
                     TP_ENOGROUP);
    ck_assert_int_eq(tp_cancel_group(p, "apply-func-group-0"), TP_ENOGROUP);
    /* The next generated name skips one taken explicitly meanwhile. */
    tp_opts next = {.group_name = "apply-x-group-1-group-1"};
    ck_assert_int_eq(tp_apply(p, noop, NULL, 1, &next, NULL), TP_OK);
    ck_assert_int_eq(tp_apply(p, noop, NULL, 1, &f, n), TP_OK);
    ck_assert_str_eq(n, "apply-x-group-1-group-2");
    const char *names[] = {"apply-x-group-1-group-2", "start-group-0",
                           "apply-x-group-1"};
    tp_ids ids;
    ck_assert_int_eq(tp_get_group_ids(p, names, 3, &ids), TP_OK);
    ck_assert_uint_eq(ids.len, 0);
    tp_ids_free(&ids);
    tp_pool_free(p);
}
END_TEST

static const tp_group_info *info_of(const tp_groups *gs, const char *name)
{
    for (size_t i = 0; i < gs->len; i++)
        if (strcmp(gs->v[i].name, name) == 0)
            return &gs->v[i];
    return NULL;
}

/* Waits for the gate without cancellation: a cancelled task stays. */
static int gated_uncancellable(tp_task *task, void *arg)
{
    (void)task, (void)arg;
    counter_add(&started, 1);
    gate_pass(&release, NULL);
    return 0;
}

/* tp_get_groups (issue 9): every group known by name with its counts. */
START_TEST(get_groups_lists_every_known_group_with_its_counts)
{
    tp_pool *p = tp_pool_new(&(tp_pool_opts){.pool_size = 3});
    tp_groups gs;
    ck_assert_int_eq(tp_get_groups(p, &gs), TP_OK);
    ck_assert_uint_eq(gs.len, 0);
    ck_assert_ptr_null(gs.v);
    char a[TP_NAME_MAX], m[TP_NAME_MAX];
    ck_assert_int_eq(tp_apply(p, gated_uncancellable, NULL, 4, &booked, a),
                     TP_OK);
    void *args[5] = {0};
    tp_opts named = booked;
    named.group_name = "mine";
    ck_assert_int_eq(tp_map(p, gated, args, 5, 2, &named, m), TP_OK);
    ck_assert(counter_wait(&started, 3));
    ck_assert_int_eq(tp_apply(p, noop, NULL, 1, NULL, NULL), TP_OK);
    tp_id first = 0;
    ck_assert_int_eq(tp_cancel(p, &first, 1), TP_OK);
    ck_assert_int_eq(tp_get_groups(p, &gs), TP_OK);
    ck_assert_uint_eq(gs.len, 3);
    const tp_group_info *ga = info_of(&gs, a), *gm = info_of(&gs, "mine");
    ck_assert_ptr_nonnull(ga);
    ck_assert_ptr_nonnull(gm);
    ck_assert_ptr_nonnull(info_of(&gs, "apply-func-group-1"));
    /* Pool size 3: apply's 0, 1, 2 run (0 cancelled), the rest waits. */
    ck_assert_uint_eq(ga->running, 2);
    ck_assert_uint_eq(ga->cancelled, 1);
    ck_assert_uint_eq(ga->ended, 0);
    ck_assert_uint_eq(ga->pending, 1);
    ck_assert_uint_eq(ga->num_concurrent, TP_UNLIMITED);
    ck_assert_uint_eq(gm->running + gm->cancelled + gm->ended, 0);
    ck_assert_uint_eq(gm->pending, 5);
    ck_assert_uint_eq(gm->num_concurrent, 2);
    tp_groups_free(&gs);
    ck_assert_uint_eq(gs.len, 0);
    tp_groups_free(&gs);
    tp_groups_free(NULL);
    gate_open(&release);
    ck_assert_int_eq(tp_gather_and_close(p), TP_OK);
    ck_assert_int_eq(tp_get_groups(p, &gs), TP_OK);
    ck_assert_uint_eq(gs.len, 0);
    ck_assert_int_eq(tp_get_groups(NULL, &gs), TP_EINVAL);
    ck_assert_int_eq(tp_get_groups(p, NULL), TP_EINVAL);
    tp_pool_free(p);
}
END_TEST

/* Ended tasks count as ended until flushed, also in compact groups. */
START_TEST(get_groups_counts_ended_tasks_until_flushed)
{
    tp_pool *p = tp_pool_new(NULL);
    char n[TP_NAME_MAX];
    for (int i = 0; i < 50; i++)
        ck_assert_int_eq(tp_apply(p, noop, NULL, 1, &booked, n), TP_OK);
    ck_assert(counter_wait(&ended, 50));
    tp_groups gs;
    ck_assert_int_eq(tp_get_groups(p, &gs), TP_OK);
    ck_assert_uint_eq(gs.len, 50);
    size_t ended_total = 0;
    for (size_t i = 0; i < gs.len; i++) {
        ck_assert_uint_eq(gs.v[i].pending, 0);
        ended_total += gs.v[i].ended + gs.v[i].running + gs.v[i].cancelled;
    }
    ck_assert_uint_eq(ended_total, 50);
    ck_assert_str_eq(gs.v[0].name, n); /* newest first */
    tp_groups_free(&gs);
    ck_assert_int_eq(tp_flush(p), TP_OK);
    ck_assert_int_eq(tp_get_groups(p, &gs), TP_OK);
    ck_assert_uint_eq(gs.len, 0);
    tp_pool_free(p);
}
END_TEST

START_TEST(cancel_checks_every_id_before_cancelling_any)
{
    tp_pool *p = tp_pool_new(NULL);
    ck_assert_int_eq(tp_apply(p, gated, NULL, 2, &booked, NULL), TP_OK);
    ck_assert(counter_wait(&started, 2));
    tp_id bad[] = {0, 99};
    ck_assert_int_eq(tp_cancel(p, bad, 2), TP_ENOTASK);
    ck_assert_uint_eq(tp_num_running(p), 2);
    ck_assert_uint_eq(tp_num_cancelled(p), 0);
    ck_assert_int_eq(tp_task_status(p, 0), TP_OK);
    ck_assert_int_eq(tp_task_status(p, 99), TP_ENOTASK);
    ck_assert_int_eq(tp_task_status(NULL, 0), TP_EINVAL);
    tp_id both[] = {0, 1};
    ck_assert_int_eq(tp_cancel(p, both, 2), TP_OK);
    ck_assert(counter_wait(&ended, 2));
    ck_assert_int_eq(tp_cancel(p, both, 1), TP_EALREADY_ENDED);
    ck_assert_int_eq(tp_task_status(p, 1), TP_EALREADY_ENDED);
    ck_assert_int_eq(tp_flush(p), TP_OK);
    ck_assert_int_eq(tp_cancel(p, both, 1), TP_ENOTASK);
    ck_assert_int_eq(tp_task_status(p, 1), TP_ENOTASK);
    ck_assert_int_eq(tp_cancel(p, NULL, 0), TP_OK);
    tp_pool_free(p);
}
END_TEST

/* A cancel callback that holds the task in the "cancelled" state until the
 * test lets it go. */
static gate hold;
static void held_cancel(tp_pool *pool, tp_id id, void *arg)
{
    on_cancel(pool, id, arg);
    gate_pass(&hold, NULL);
}

START_TEST(cancelled_counts_until_end_callback_then_ended)
{
    gate_init(&hold);
    tp_pool *p = tp_pool_new(&(tp_pool_opts){.pool_size = 2});
    tp_opts opts = booked;
    opts.cancel_callback = held_cancel;
    ck_assert_int_eq(tp_apply(p, gated, NULL, 2, &opts, NULL), TP_OK);
    ck_assert(counter_wait(&started, 2));
    tp_id id = 1;
    ck_assert_int_eq(tp_cancel(p, &id, 1), TP_OK);
    ck_assert_uint_eq(tp_num_cancelled(p), 1);
    ck_assert_uint_eq(tp_num_running(p), 1);
    ck_assert(counter_wait(&cancelled_cbs, 1));
    ck_assert_int_eq(tp_cancel(p, &id, 1), TP_EALREADY_CANCELLED);
    ck_assert_int_eq(tp_task_status(p, 1), TP_EALREADY_CANCELLED);
    ck_assert_uint_eq(tp_num_cancelled(p), 1);
    ck_assert_uint_eq(tp_num_ended(p), 0);
    /* As in the reference, its slot is freed after its cancel callback. */
    ck_assert(tp_is_full(p));
    gate_open(&hold);
    ck_assert(counter_wait(&ended, 1));
    ck_assert(!tp_is_full(p));
    ck_assert_uint_eq(tp_num_cancelled(p), 0);
    ck_assert_uint_eq(tp_num_ended(p), 1);
    ck_assert_int_eq(cancel_calls[1], 1);
    ck_assert(cancel_before_end[1]);
    ck_assert_uint_eq(cancelled_seen_in_cb[1], 1);
    ck_assert_uint_eq(running_seen_in_cb[1], 1);
    gate_open(&release);
    ck_assert_int_eq(tp_gather_and_close(p), TP_OK);
    ck_assert_int_eq(end_calls[0], 1);
    ck_assert_int_eq(cancel_calls[0], 0);
    tp_pool_free(p);
    gate_destroy(&hold);
}
END_TEST

START_TEST(cancel_group_drops_waiting_starts_then_forgets_the_group)
{
    tp_pool *p = tp_pool_new(&(tp_pool_opts){.pool_size = 1});
    char g[TP_NAME_MAX];
    ck_assert_int_eq(tp_apply(p, gated, NULL, 5, &booked, g), TP_OK);
    ck_assert(counter_wait(&started, 1));
    ck_assert_int_eq(tp_cancel_group(p, g), TP_OK);
    /* The four dropped starts share one argument: it is discarded once,
     * after the running task that uses it ended. */
    ck_assert(counter_wait(&ended, 1));
    ck_assert(counter_wait(&discarded, 1));
    ck_assert_int_eq(tp_cancel_group(p, g), TP_ENOGROUP);
    tp_ids ids;
    const char *names[] = {g};
    ck_assert_int_eq(tp_get_group_ids(p, names, 1, &ids), TP_ENOGROUP);
    /* Its ended task is still known until flushed. */
    tp_id zero = 0;
    ck_assert_int_eq(tp_cancel(p, &zero, 1), TP_EALREADY_ENDED);
    ck_assert_uint_eq(tp_num_ended(p), 1);
    /* The name is free again. */
    tp_opts again = {.group_name = g};
    ck_assert_int_eq(tp_apply(p, noop, NULL, 1, &again, NULL), TP_OK);
    ck_assert_int_eq(tp_gather_and_close(p), TP_OK);
    ck_assert_int_eq(counter_get(&started), 1);
    ck_assert_int_eq(counter_get(&discarded), 1);
    tp_stats st;
    tp_get_stats(p, &st);
    ck_assert_uint_eq(st.total_started, 2);
    tp_pool_free(p);
}
END_TEST

/* A task that ignores cancellation until the test lets it go. */
static atomic_bool let_go;
static atomic_long discarded_while_running;
static int stubborn(tp_task *task, void *arg)
{
    (void)task, (void)arg;
    counter_add(&started, 1);
    while (!atomic_load(&let_go))
        sched_yield();
    return 0;
}

static void discard_checks_running(void *arg, void *cb)
{
    tp_pool *pool = cb;
    (void)arg;
    if (tp_num_running(pool) + tp_num_cancelled(pool))
        atomic_fetch_add(&discarded_while_running, 1);
    counter_add(&discarded, 1);
}

/* Regression (issue 8): the dropped starts of an apply group share one
 * argument; discard is called once (it was called once per start), and
 * only after the group's running task ended, so that it may free it. */
START_TEST(apply_discards_its_shared_argument_once_after_its_tasks)
{
    tp_pool *p = tp_pool_new(&(tp_pool_opts){.pool_size = 1});
    tp_opts opts = {.discard = discard_checks_running, .callback_arg = p};
    char g[TP_NAME_MAX];
    ck_assert_int_eq(tp_apply(p, stubborn, NULL, 5, &opts, g), TP_OK);
    ck_assert(counter_wait(&started, 1));
    ck_assert_int_eq(tp_cancel_group(p, g), TP_OK);
    ck_assert_int_eq(counter_get(&discarded), 0);
    tp_stats st;
    tp_get_stats(p, &st);
    ck_assert_uint_eq(st.cancelled, 1);
    atomic_store(&let_go, true);
    ck_assert(counter_wait(&discarded, 1));
    ck_assert_int_eq(tp_gather_and_close(p), TP_OK);
    ck_assert_int_eq(counter_get(&discarded), 1);
    ck_assert_int_eq(atomic_load(&discarded_while_running), 0);
    ck_assert_int_eq(counter_get(&started), 1);
    tp_pool_free(p);
}
END_TEST

/* Regression (issue 8): dropping N pending starts costs nothing per start
 * (cancelling 2^62 of them looped 2^62 times calling discard). */
START_TEST(dropping_a_huge_apply_costs_nothing_per_start)
{
    tp_pool *p = tp_pool_new(NULL);
    ck_assert_int_eq(tp_set_pool_size(p, 0), TP_OK);
    tp_opts opts = {.discard = on_discard};
    char g[TP_NAME_MAX];
    size_t huge = (size_t)1 << 62;
    ck_assert_int_eq(tp_apply(p, noop, NULL, huge, &opts, g), TP_OK);
    tp_stats st;
    tp_get_stats(p, &st);
    ck_assert_uint_eq(st.pending, huge);
    ck_assert_int_eq(tp_cancel_group(p, g), TP_OK);
    ck_assert_int_eq(counter_get(&discarded), 1);
    ck_assert_int_eq(tp_apply(p, noop, NULL, huge, &opts, NULL), TP_OK);
    ck_assert_int_eq(tp_apply(p, noop, NULL, huge, &opts, NULL), TP_OK);
    tp_cancel_all(p);
    ck_assert_int_eq(counter_get(&discarded), 3);
    ck_assert_int_eq(tp_apply(p, noop, NULL, huge, &opts, NULL), TP_OK);
    tp_pool_free(p);
    ck_assert_int_eq(counter_get(&discarded), 4);
}
END_TEST

/* Regression (issue 8): cancelling one group costs O(1) whatever the
 * number of groups (each cancel walked the whole FIFO: 100,000 waiting
 * groups took 23-36 s to cancel one by one; now well under a second, far
 * below this case's timeout). */
START_TEST(cancelling_groups_one_by_one_is_linear)
{
    enum { N = 100000 };
    tp_pool *p = tp_pool_new(NULL);
    ck_assert_int_eq(tp_set_pool_size(p, 0), TP_OK);
    tp_opts opts = {.discard = on_discard};
    static char names[N][TP_NAME_MAX];
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(tp_apply(p, noop, NULL, 1, &opts, names[i]), TP_OK);
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(tp_cancel_group(p, names[i]), TP_OK);
    ck_assert_int_eq(counter_get(&discarded), N);
    tp_stats st;
    tp_get_stats(p, &st);
    ck_assert_uint_eq(st.groups, 0);
    ck_assert_uint_eq(st.pending, 0);
    tp_pool_free(p);
}
END_TEST

START_TEST(cancel_all_drops_every_group)
{
    tp_pool *p = tp_pool_new(&(tp_pool_opts){.pool_size = 2});
    ck_assert_int_eq(tp_apply(p, gated, NULL, 3, &booked, NULL), TP_OK);
    ck_assert_int_eq(tp_apply(p, gated, NULL, 3, &booked, NULL), TP_OK);
    ck_assert(counter_wait(&started, 2));
    tp_cancel_all(p);
    ck_assert(counter_wait(&ended, 2));
    /* Once per apply group, whatever the number of dropped starts. */
    ck_assert(counter_wait(&discarded, 2));
    ck_assert_int_eq(counter_get(&discarded), 2);
    ck_assert_int_eq(counter_get(&cancelled_cbs), 2);
    tp_stats st;
    tp_get_stats(p, &st);
    ck_assert_uint_eq(st.groups, 0);
    ck_assert_uint_eq(st.pending, 0);
    ck_assert_int_eq(tp_gather_and_close(p), TP_OK);
    tp_pool_free(p);
}
END_TEST

START_TEST(flush_forgets_ended_tasks_and_empty_groups)
{
    tp_pool *p = tp_pool_new(NULL);
    char done[TP_NAME_MAX], busy[TP_NAME_MAX];
    ck_assert_int_eq(tp_apply(p, noop, NULL, 3, &booked, done), TP_OK);
    ck_assert(counter_wait(&ended, 3));
    ck_assert_int_eq(tp_apply(p, gated, NULL, 1, &booked, busy), TP_OK);
    ck_assert(counter_wait(&started, 1));
    ck_assert_uint_eq(tp_num_ended(p), 3);
    ck_assert_int_eq(tp_flush(p), TP_OK);
    ck_assert_uint_eq(tp_num_ended(p), 0);
    tp_ids ids;
    const char *names[] = {done};
    ck_assert_int_eq(tp_get_group_ids(p, names, 1, &ids), TP_ENOGROUP);
    ids = group_ids(p, busy);
    ck_assert_uint_eq(ids.len, 1);
    ck_assert_int_eq(ids.v[0], 3);
    tp_ids_free(&ids);
    tp_id zero = 0;
    ck_assert_int_eq(tp_cancel(p, &zero, 1), TP_ENOTASK);
    tp_stats st;
    tp_get_stats(p, &st);
    ck_assert_uint_eq(st.groups, 1);
    gate_open(&release);
    ck_assert_int_eq(tp_gather_and_close(p), TP_OK);
    tp_pool_free(p);
}
END_TEST

struct flusher {
    tp_pool *pool;
    counter done;
};

static void *flush_thread(void *arg)
{
    struct flusher *f = arg;
    ck_assert_int_eq(tp_flush(f->pool), TP_OK);
    counter_add(&f->done, 1);
    return NULL;
}

static bool flusher_waiting(void *arg)
{
    tp_pool *p = arg;
    tp__lock(p);
    bool waiting = p->waiters > 0;
    tp__unlock(p);
    return waiting;
}

START_TEST(flush_waits_for_cancelled_tasks_callbacks)
{
    gate_init(&hold);
    struct flusher f;
    counter_init(&f.done);
    tp_pool *p = f.pool = tp_pool_new(NULL);
    tp_opts opts = booked;
    opts.cancel_callback = held_cancel;
    ck_assert_int_eq(tp_apply(p, gated, NULL, 1, &opts, NULL), TP_OK);
    ck_assert(counter_wait(&started, 1));
    tp_id zero = 0;
    ck_assert_int_eq(tp_cancel(p, &zero, 1), TP_OK);
    ck_assert(counter_wait(&cancelled_cbs, 1));
    pthread_t th;
    pthread_create(&th, NULL, flush_thread, &f);
    ck_assert(wait_until(flusher_waiting, p));
    ck_assert_int_eq(counter_get(&f.done), 0);
    gate_open(&hold);
    pthread_join(th, NULL);
    ck_assert_int_eq(counter_get(&f.done), 1);
    ck_assert_int_eq(end_calls[0], 1);
    ck_assert_uint_eq(tp_num_ended(p), 0);
    tp_pool_free(p);
    counter_destroy(&f.done);
    gate_destroy(&hold);
}
END_TEST

START_TEST(callbacks_run_once_per_task)
{
    tp_pool *p = tp_pool_new(&(tp_pool_opts){.pool_size = 3});
    ck_assert_int_eq(tp_apply(p, gated, NULL, 10, &booked, NULL), TP_OK);
    ck_assert(counter_wait(&started, 3));
    tp_id ids[] = {0, 2};
    ck_assert_int_eq(tp_cancel(p, ids, 2), TP_OK);
    ck_assert(counter_wait(&started, 5));
    gate_open(&release);
    ck_assert_int_eq(tp_gather_and_close(p), TP_OK);
    for (int id = 0; id < 10; id++) {
        ck_assert_int_eq(end_calls[id], 1);
        ck_assert_int_eq(cancel_calls[id], id == 0 || id == 2);
    }
    tp_stats st;
    tp_get_stats(p, &st);
    ck_assert_uint_eq(st.total_cancelled, 2);
    ck_assert_uint_eq(st.total_ended, 10);
    tp_pool_free(p);
}
END_TEST

static int fails(tp_task *task, void *arg)
{
    (void)task, (void)arg;
    return -1;
}

START_TEST(failed_tasks_are_counted)
{
    tp_pool *p = tp_pool_new(NULL);
    ck_assert_int_eq(tp_apply(p, fails, NULL, 3, NULL, NULL), TP_OK);
    ck_assert_int_eq(tp_gather_and_close(p), TP_OK);
    tp_stats st;
    tp_get_stats(p, &st);
    ck_assert_uint_eq(st.total_failed, 3);
    ck_assert_uint_eq(st.total_ended, 3);
    tp_pool_free(p);
}
END_TEST

static gate cb_gate;
static counter in_cancel_cb;

/* Waits (cancellably) for release, then fails. */
static int fails_after_gate(tp_task *task, void *arg)
{
    (void)arg;
    counter_add(&started, 1);
    gate_pass(&release, task);
    return -1;
}

static void cancel_cb_waits(tp_pool *p, tp_id id, void *arg)
{
    (void)p, (void)id, (void)arg;
    counter_add(&in_cancel_cb, 1);
    pthread_mutex_lock(&cb_gate.mu);
    while (!cb_gate.open)
        pthread_cond_wait(&cb_gate.cv, &cb_gate.mu);
    pthread_mutex_unlock(&cb_gate.mu);
}

START_TEST(a_failed_task_counts_as_failed_when_it_ends)
{
    /* A cancelled task that fails ends after its cancel callback, which
     * runs unlocked. Its failure used to be counted before that callback,
     * so stats read meanwhile showed more failed tasks than ended ones. */
    gate_init(&cb_gate);
    counter_init(&in_cancel_cb);
    tp_pool *p = tp_pool_new(NULL);
    tp_opts o = {.cancel_callback = cancel_cb_waits};
    ck_assert_int_eq(tp_apply(p, fails_after_gate, NULL, 1, &o, NULL), TP_OK);
    ck_assert(counter_wait(&started, 1)); /* running: cancelling wakes it */
    ck_assert_int_eq(tp_cancel(p, (tp_id[]){0}, 1), TP_OK);
    ck_assert(counter_wait(&in_cancel_cb, 1));
    tp_stats st;
    tp_get_stats(p, &st);
    ck_assert_uint_eq(st.total_ended, 0);
    ck_assert_uint_eq(st.total_failed, 0);
    gate_open(&cb_gate);
    ck_assert_int_eq(tp_gather_and_close(p), TP_OK);
    tp_get_stats(p, &st);
    ck_assert_uint_eq(st.total_ended, 1);
    ck_assert_uint_eq(st.total_failed, 1);
    tp_pool_free(p);
    counter_destroy(&in_cancel_cb);
    gate_destroy(&cb_gate);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("groups");
    TCase *tc = tcase_create("groups");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, ids_count_from_zero_in_start_order);
    tcase_add_test(tc, group_ids_are_sorted_and_per_group);
    tcase_add_test(tc, generated_names_count_per_prefix_and_function);
    tcase_add_test(tc, explicit_and_generated_names_never_collide);
    tcase_add_test(tc, get_groups_lists_every_known_group_with_its_counts);
    tcase_add_test(tc, get_groups_counts_ended_tasks_until_flushed);
    tcase_add_test(tc, cancel_checks_every_id_before_cancelling_any);
    tcase_add_test(tc, cancelled_counts_until_end_callback_then_ended);
    tcase_add_test(tc,
                   cancel_group_drops_waiting_starts_then_forgets_the_group);
    tcase_add_test(tc, cancel_all_drops_every_group);
    tcase_add_test(tc, apply_discards_its_shared_argument_once_after_its_tasks);
    tcase_add_test(tc, dropping_a_huge_apply_costs_nothing_per_start);
    tcase_add_test(tc, cancelling_groups_one_by_one_is_linear);
    tcase_add_test(tc, flush_forgets_ended_tasks_and_empty_groups);
    tcase_add_test(tc, flush_waits_for_cancelled_tasks_callbacks);
    tcase_add_test(tc, callbacks_run_once_per_task);
    tcase_add_test(tc, failed_tasks_are_counted);
    tcase_add_test(tc, a_failed_task_counts_as_failed_when_it_ends);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
