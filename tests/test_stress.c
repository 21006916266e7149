/* SPDX-License-Identifier: MIT */
/* Several threads call the API at once (apply, map, map_iter, cancel,
 * cancel groups, resize, lock, flush) while tasks start, wait and end; then
 * the books must balance: every start either ran exactly once or was
 * discarded exactly once, every task got exactly one end callback and, if
 * cancelled, exactly one cancel callback before it, every iterator got
 * exactly one done call and no next call after it, and the counters add
 * up. */
#include "support.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

enum {
    THREADS = 4,
    ROUNDS = 300,
    MAXNUM = 6,
    LONG_ITER = 40,
    MAXIDS = THREADS * ROUNDS * LONG_ITER
};

static atomic_int ends[MAXIDS], cancels[MAXIDS], ran[MAXIDS];
static atomic_int cancel_after_end;
static atomic_long discards, submitted;

static int work(tp_task *task, void *arg)
{
    (void)arg;
    tp_id id = tp_task_id(task);
    atomic_fetch_add(&ran[id], 1);
    if (id % 3 == 0)
        return tp_sleep(task, 0.0005 * (double)(id % 4)) == TP_OK ? 0 : 1;
    return 0;
}

/* An apply call's books: its starts share one argument, which is
 * discarded at most once, after the group's last task ended. */
typedef struct apply_rec {
    long num;
    atomic_long ended;
    atomic_int discards;
    long dropped; /* num - ended when discard was called */
} apply_rec;

static apply_rec recs[THREADS * ROUNDS];
static atomic_int n_recs;

static void on_end(tp_pool *pool, tp_id id, void *arg)
{
    (void)pool;
    atomic_fetch_add(&ends[id], 1);
    if (arg)
        atomic_fetch_add(&((apply_rec *)arg)->ended, 1);
}

static void on_cancel(tp_pool *pool, tp_id id, void *arg)
{
    (void)pool, (void)arg;
    if (atomic_load(&ends[id]))
        atomic_fetch_add(&cancel_after_end, 1);
    atomic_fetch_add(&cancels[id], 1);
}

static void on_discard(void *arg, void *cb)
{
    if (cb) {
        apply_rec *rec = cb;
        ck_assert_ptr_eq(arg, rec);
        rec->dropped = rec->num - atomic_load(&rec->ended);
        atomic_fetch_add(&rec->discards, 1);
        return;
    }
    atomic_fetch_add(&discards, 1);
}

/* A finite iterator that records misuse. */
typedef struct counting_iter {
    int left;
    atomic_int done_calls, next_after_done;
} counting_iter;

static counting_iter iters[THREADS * ROUNDS];
static atomic_int n_iters;
static atomic_long produced;

static int iter_next(void *state, void **arg)
{
    counting_iter *it = state;
    if (atomic_load(&it->done_calls))
        atomic_fetch_add(&it->next_after_done, 1);
    if (it->left == 0)
        return 0;
    it->left--;
    *arg = NULL;
    atomic_fetch_add(&produced, 1);
    return 1;
}

static void iter_done(void *state)
{
    counting_iter *it = state;
    atomic_fetch_add(&it->done_calls, 1);
}

/* One spawning call of a random kind; returns its result. */
static int spawn_some(tp_pool *p, unsigned *seed, const tp_opts *opts,
                      char group[TP_NAME_MAX])
{
    size_t num = 1 + (size_t)(rand_r(seed) % MAXNUM);
    switch (rand_r(seed) % 3) {
    case 0: {
        apply_rec *rec = &recs[atomic_fetch_add(&n_recs, 1)];
        rec->num = (long)num;
        tp_opts o = *opts;
        o.callback_arg = rec;
        int rc = tp_apply(p, work, rec, num, &o, group);
        if (rc != TP_OK)
            rec->num = 0;
        return rc;
    }
    case 1: {
        void *args[MAXNUM] = {0};
        int rc = tp_map(p, work, args, num, 1 + num / 2, opts, group);
        if (rc == TP_OK)
            atomic_fetch_add(&submitted, (long)num);
        return rc;
    }
    default: {
        counting_iter *it = &iters[atomic_fetch_add(&n_iters, 1)];
        it->left = rand_r(seed) % 4 ? (int)num : LONG_ITER;
        tp_iter iter = {iter_next, iter_done, it};
        return tp_map_iter(p, work, iter, 2, opts, group);
    }
    }
}

static void *hammer(void *arg)
{
    tp_pool *p = arg;
    unsigned seed = (unsigned)(uintptr_t)pthread_self();
    tp_opts opts = {.end_callback = on_end,
                    .cancel_callback = on_cancel,
                    .discard = on_discard};
    char group[TP_NAME_MAX];
    for (int i = 0; i < ROUNDS; i++) {
        int op = rand_r(&seed) % 10;
        if (op < 5) {
            int rc = spawn_some(p, &seed, &opts, group);
            if (rc != TP_OK)
                ck_assert_int_eq(rc, TP_ELOCKED);
            if (rc == TP_OK && rand_r(&seed) % 4 == 0) {
                rc = tp_cancel_group(p, group);
                ck_assert(rc == TP_OK || rc == TP_ENOGROUP);
            }
        } else if (op < 7) {
            tp_stats st;
            tp_get_stats(p, &st);
            tp_id id = st.total_started
                           ? (tp_id)(rand_r(&seed) % st.total_started)
                           : 0;
            int rc = tp_cancel(p, &id, 1);
            ck_assert(rc == TP_OK || rc == TP_ENOTASK ||
                      rc == TP_EALREADY_CANCELLED || rc == TP_EALREADY_ENDED);
        } else if (op == 7) {
            size_t sizes[] = {0, 1, 2, 4, TP_UNLIMITED};
            ck_assert_int_eq(tp_set_pool_size(p, sizes[rand_r(&seed) % 5]),
                             TP_OK);
        } else if (op == 8) {
            if (rand_r(&seed) % 2)
                tp_lock(p);
            else
                tp_unlock(p);
        } else {
            ck_assert_int_eq(tp_flush(p), TP_OK);
        }
    }
    return NULL;
}

START_TEST(concurrent_api_calls_keep_the_books_balanced)
{
    tp_pool *p = tp_pool_new(&(tp_pool_opts){.pool_size = 3});
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++)
        pthread_create(&th[i], NULL, hammer, p);
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    tp_set_pool_size(p, TP_UNLIMITED);
    ck_assert_int_eq(tp_gather_and_close(p), TP_OK);

    tp_stats st;
    tp_get_stats(p, &st);
    ck_assert_uint_eq(st.running + st.cancelled + st.ended + st.pending, 0);
    long apply_started = 0;
    for (int i = 0; i < atomic_load(&n_recs); i++) {
        apply_rec *rec = &recs[i];
        long ended = atomic_load(&rec->ended);
        int d = atomic_load(&rec->discards);
        ck_assert_int_le(d, 1);
        ck_assert_int_eq(ended + (d ? rec->dropped : 0), rec->num);
        if (d)
            ck_assert_int_gt(rec->dropped, 0);
        apply_started += ended;
    }
    ck_assert_uint_eq(st.total_started + (uint64_t)atomic_load(&discards),
                      (uint64_t)(atomic_load(&submitted) +
                                 atomic_load(&produced) + apply_started));
    for (int i = 0; i < atomic_load(&n_iters); i++) {
        ck_assert_int_eq(atomic_load(&iters[i].done_calls), 1);
        ck_assert_int_eq(atomic_load(&iters[i].next_after_done), 0);
    }
    ck_assert_uint_eq(st.total_ended, st.total_started);
    uint64_t cancel_total = 0;
    for (uint64_t id = 0; id < st.total_started; id++) {
        ck_assert_int_eq(atomic_load(&ends[id]), 1);
        ck_assert_int_le(atomic_load(&ran[id]), 1);
        ck_assert_int_le(atomic_load(&cancels[id]), 1);
        cancel_total += (uint64_t)atomic_load(&cancels[id]);
    }
    ck_assert_uint_eq(cancel_total, st.total_cancelled);
    ck_assert_int_eq(atomic_load(&cancel_after_end), 0);
    for (uint64_t id = st.total_started; id < MAXIDS; id++)
        ck_assert_int_eq(atomic_load(&ends[id]), 0);
    tp_pool_free(p);
}
END_TEST

/* Pools created and freed from many threads while they run tasks. */
static void *pool_churn(void *arg)
{
    (void)arg;
    for (int i = 0; i < 20; i++) {
        tp_pool *p = tp_pool_new(&(tp_pool_opts){.pool_size = 2});
        tp_opts opts = {.discard = on_discard};
        ck_assert_int_eq(tp_apply(p, work, NULL, 5, &opts, NULL), TP_OK);
        if (i % 2)
            ck_assert_int_eq(tp_gather_and_close(p), TP_OK);
        tp_pool_free(p);
    }
    return NULL;
}

START_TEST(pools_come_and_go_concurrently)
{
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++)
        pthread_create(&th[i], NULL, pool_churn, NULL);
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("stress");
    TCase *tc = tcase_create("stress");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, concurrent_api_calls_keep_the_books_balanced);
    tcase_add_test(tc, pools_come_and_go_concurrently);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
