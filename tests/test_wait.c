/* SPDX-License-Identifier: MIT */
/* The task side: identity, and waits that a cancel interrupts promptly.
 * Every waiting task here waits far longer than the test's timeout, so a
 * cancel that did not wake it would fail the test. */
#include "internal.h"
#include "support.h"

#include <poll.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static counter started, ended;
static int result[8];

static void setup(void)
{
    counter_init(&started);
    counter_init(&ended);
}

static void teardown(void)
{
    counter_destroy(&started);
    counter_destroy(&ended);
}

static void count_end(tp_pool *pool, tp_id id, void *arg)
{
    (void)pool, (void)id, (void)arg;
    counter_add(&ended, 1);
}

static const tp_opts counted = {.end_callback = count_end};

/* Runs fn as task 0 of a fresh pool, waits until it started, cancels it
 * and waits for its end. */
static void cancel_while_waiting(tp_fn fn, void *arg)
{
    tp_pool *p = tp_pool_new(NULL);
    ck_assert_int_eq(tp_apply(p, fn, arg, 1, &counted, NULL), TP_OK);
    ck_assert(counter_wait(&started, 1));
    tp_id zero = 0;
    ck_assert_int_eq(tp_cancel(p, &zero, 1), TP_OK);
    ck_assert(counter_wait(&ended, 1));
    tp_pool_free(p);
}

static int sleeper(tp_task *task, void *arg)
{
    (void)arg;
    counter_add(&started, 1);
    result[0] = tp_sleep(task, 3600);
    result[1] = tp_sleep(task, 0); /* already cancelled: at once */
    return 0;
}

START_TEST(sleep_returns_ecanceled_when_cancelled)
{
    cancel_while_waiting(sleeper, NULL);
    ck_assert_int_eq(result[0], TP_ECANCELED);
    ck_assert_int_eq(result[1], TP_ECANCELED);
}
END_TEST

START_TEST(sleep_outside_a_task_and_bad_durations)
{
    ck_assert_int_eq(tp_sleep(NULL, 0.001), TP_OK);
    ck_assert_int_eq(tp_sleep(NULL, -1), TP_EINVAL);
    ck_assert_int_eq(tp_sleep(NULL, 0.0 / 0.0), TP_EINVAL);
}
END_TEST

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;

static int cond_waiter(tp_task *task, void *arg)
{
    (void)arg;
    pthread_mutex_lock(&mu);
    counter_add(&started, 1);
    int rc;
    do
        rc = tp_cond_wait(task, &cv, &mu, -1);
    while (rc == TP_OK);
    result[0] = rc;
    /* The mutex is held again on return. */
    result[1] = pthread_mutex_trylock(&mu);
    pthread_mutex_unlock(&mu);
    return 0;
}

START_TEST(cond_wait_returns_ecanceled_with_the_mutex_held)
{
    cancel_while_waiting(cond_waiter, NULL);
    ck_assert_int_eq(result[0], TP_ECANCELED);
    ck_assert_int_ne(result[1], 0); /* trylock failed: we held it */
}
END_TEST

/* The canceller holds the waiter's mutex while cancelling: the cancel must
 * not deadlock, and the waiter still notices. */
static void *cancel_holding_mutex(void *arg)
{
    tp_pool *p = arg;
    pthread_mutex_lock(&mu);
    tp_id zero = 0;
    result[2] = tp_cancel(p, &zero, 1);
    pthread_mutex_unlock(&mu);
    return NULL;
}

START_TEST(cond_wait_cancel_while_canceller_holds_the_mutex)
{
    tp_pool *p = tp_pool_new(NULL);
    ck_assert_int_eq(tp_apply(p, cond_waiter, NULL, 1, &counted, NULL), TP_OK);
    ck_assert(counter_wait(&started, 1));
    pthread_t th;
    pthread_create(&th, NULL, cancel_holding_mutex, p);
    pthread_join(th, NULL);
    ck_assert_int_eq(result[2], TP_OK);
    ck_assert(counter_wait(&ended, 1));
    ck_assert_int_eq(result[0], TP_ECANCELED);
    tp_pool_free(p);
}
END_TEST

START_TEST(cond_wait_times_out_and_works_without_a_task)
{
    pthread_mutex_lock(&mu);
    ck_assert_int_eq(tp_cond_wait(NULL, &cv, &mu, 0.001), TP_ETIMEDOUT);
    ck_assert_int_eq(tp_cond_wait(NULL, NULL, &mu, 0.001), TP_EINVAL);
    pthread_mutex_unlock(&mu);
}
END_TEST

static int timed_cond_waiter(tp_task *task, void *arg)
{
    (void)arg;
    pthread_mutex_lock(&mu);
    result[0] = tp_cond_wait(task, &cv, &mu, 0.05);
    pthread_mutex_unlock(&mu);
    counter_add(&started, 1);
    return 0;
}

START_TEST(cond_wait_in_a_task_times_out)
{
    tp_pool *p = tp_pool_new(NULL);
    ck_assert_int_eq(tp_apply(p, timed_cond_waiter, NULL, 1, NULL, NULL),
                     TP_OK);
    ck_assert(counter_wait(&started, 1));
    ck_assert_int_eq(result[0], TP_ETIMEDOUT);
    tp_pool_free(p);
}
END_TEST

static int fds[2];

static int fd_waiter(tp_task *task, void *arg)
{
    (void)arg;
    counter_add(&started, 1);
    result[0] = tp_wait_fd(task, fds[0], POLLIN, -1);
    return 0;
}

START_TEST(wait_fd_returns_ecanceled_when_cancelled)
{
    ck_assert_int_eq(pipe(fds), 0);
    cancel_while_waiting(fd_waiter, NULL);
    ck_assert_int_eq(result[0], TP_ECANCELED);
    close(fds[0]);
    close(fds[1]);
}
END_TEST

static int fd_reader(tp_task *task, void *arg)
{
    (void)arg;
    result[0] = tp_wait_fd(task, fds[0], POLLIN, 0.001);
    counter_add(&started, 1);
    result[1] = tp_wait_fd(task, fds[0], POLLIN, -1);
    result[2] = tp_wait_fd(task, -1, POLLIN, -1);
    return 0;
}

START_TEST(wait_fd_reports_readiness_and_timeouts)
{
    ck_assert_int_eq(pipe(fds), 0);
    tp_pool *p = tp_pool_new(NULL);
    ck_assert_int_eq(tp_apply(p, fd_reader, NULL, 1, &counted, NULL), TP_OK);
    ck_assert(counter_wait(&started, 1));
    ck_assert_int_eq(write(fds[1], "x", 1), 1);
    ck_assert(counter_wait(&ended, 1));
    ck_assert_int_eq(result[0], TP_ETIMEDOUT);
    ck_assert_int_eq(result[1], POLLIN);
    ck_assert_int_eq(result[2], TP_EINVAL);
    ck_assert_int_eq(tp_wait_fd(NULL, fds[0], POLLIN, 0), POLLIN);
    tp_pool_free(p);
    close(fds[0]);
    close(fds[1]);
}
END_TEST

static int closed_fd_waiter(tp_task *task, void *arg)
{
    int fd = *(int *)arg;
    result[0] = tp_wait_fd(task, fd, POLLIN, -1);
    return 0;
}

/* Regression (issue 8): a descriptor that is not open is TP_EINVAL, as -1
 * is, not a POLLNVAL "event" (it was returned as revents before). */
START_TEST(wait_fd_on_a_closed_descriptor_is_einval)
{
    /* A high number, so that the task's own cancel eventfd does not reuse
     * it. */
    ck_assert_int_eq(pipe(fds), 0);
    int closed = dup2(fds[0], 900);
    ck_assert_int_eq(closed, 900);
    close(closed);
    close(fds[0]);
    close(fds[1]);
    ck_assert_int_eq(tp_wait_fd(NULL, closed, POLLIN, -1), TP_EINVAL);
    ck_assert_int_eq(tp_wait_fd(NULL, closed, POLLOUT, 0), TP_EINVAL);
    tp_pool *p = tp_pool_new(NULL);
    ck_assert_int_eq(tp_apply(p, closed_fd_waiter, &closed, 1, &counted, NULL),
                     TP_OK);
    ck_assert(counter_wait(&ended, 1));
    ck_assert_int_eq(result[0], TP_EINVAL);
    tp_pool_free(p);
}
END_TEST

static int polls_cancel_fd(tp_task *task, void *arg)
{
    (void)arg;
    int fd = tp_cancel_fd(task);
    result[1] = fd >= 0;
    struct pollfd p = {fd, POLLIN, 0};
    counter_add(&started, 1);
    result[0] = poll(&p, 1, -1);
    result[2] = tp_cancel_fd(task) == fd;
    return 0;
}

START_TEST(cancel_fd_becomes_readable_when_cancelled)
{
    cancel_while_waiting(polls_cancel_fd, NULL);
    ck_assert_int_eq(result[0], 1);
    ck_assert_int_eq(result[1], 1);
    ck_assert_int_eq(result[2], 1);
    ck_assert_int_eq(tp_cancel_fd(NULL), TP_EINVAL);
}
END_TEST

/* A worker reuses its cancel fd for the next task: it must not be readable
 * for a task that was not cancelled. */
static int cancel_fd_is_quiet(tp_task *task, void *arg)
{
    (void)arg;
    struct pollfd p = {tp_cancel_fd(task), POLLIN, 0};
    result[3] = poll(&p, 1, 0);
    counter_add(&started, 1);
    return 0;
}

static bool one_idle_worker(void *arg)
{
    tp_stats st;
    tp_get_stats(arg, &st);
    return st.idle_threads == 1;
}

START_TEST(cancel_fd_is_reset_between_tasks)
{
    tp_pool *p = tp_pool_new(&(tp_pool_opts){.pool_size = 1});
    ck_assert_int_eq(tp_apply(p, polls_cancel_fd, NULL, 1, &counted, NULL),
                     TP_OK);
    ck_assert(counter_wait(&started, 1));
    tp_id zero = 0;
    ck_assert_int_eq(tp_cancel(p, &zero, 1), TP_OK);
    ck_assert(counter_wait(&ended, 1));
    ck_assert(wait_until(one_idle_worker, p));
    result[3] = -1;
    ck_assert_int_eq(tp_apply(p, cancel_fd_is_quiet, NULL, 1, NULL, NULL),
                     TP_OK);
    ck_assert(counter_wait(&started, 2));
    ck_assert_int_eq(result[3], 0);
    tp_stats st;
    tp_get_stats(p, &st);
    ck_assert_uint_eq(st.threads, 1); /* the same worker ran both */
    tp_pool_free(p);
}
END_TEST

/* Each of three concurrent tasks checks what it sees of itself (tasks of
 * one apply run on several threads at once: no shared slot to write). */
static atomic_int identified, misidentified;

static int identifies(tp_task *task, void *pool)
{
    tp_id id = tp_task_id(task);
    bool ok = tp_current_task() == task && tp_task_pool(task) == pool &&
              id >= 0 && id < 3 && !tp_cancelled(task);
    atomic_fetch_add(ok ? &identified : &misidentified, 1);
    return 0;
}

START_TEST(task_knows_its_id_pool_and_thread)
{
    ck_assert_ptr_null(tp_current_task());
    tp_pool *p = tp_pool_new(NULL);
    ck_assert_int_eq(tp_apply(p, identifies, p, 3, NULL, NULL), TP_OK);
    ck_assert_int_eq(tp_gather_and_close(p), TP_OK);
    ck_assert_int_eq(atomic_load(&identified), 3);
    ck_assert_int_eq(atomic_load(&misidentified), 0);
    ck_assert_int_eq(tp_task_id(NULL), -1);
    ck_assert_ptr_null(tp_task_pool(NULL));
    ck_assert(!tp_cancelled(NULL));
    tp_pool_free(p);
}
END_TEST

/* The cancel of a task in tp_cond_wait must not be lost even when it lands
 * between the task's check of its flag and its blocking: the window is
 * widened to 200 us and the safety slice disabled, so a lost wake-up would
 * hang the test (and its timeout fail it). */
static void widen_window(void)
{
    struct timespec w = {0, 200000};
    nanosleep(&w, NULL);
}

static int waits_once(tp_task *task, void *arg)
{
    (void)arg;
    pthread_mutex_lock(&mu);
    counter_add(&started, 1);
    int rc;
    while ((rc = tp_cond_wait(task, &cv, &mu, -1)) == TP_OK)
        ;
    pthread_mutex_unlock(&mu);
    result[0] = rc;
    return 0;
}

START_TEST(cond_wait_cancel_in_the_window_is_not_lost)
{
    tp__cond_slice = 1e6;
    tp__cond_window_hook = widen_window;
    tp_pool *p = tp_pool_new(NULL);
    unsigned seed = 11;
    for (long r = 1; r <= 200; r++) {
        char g[TP_NAME_MAX];
        ck_assert_int_eq(tp_apply(p, waits_once, NULL, 1, &counted, g), TP_OK);
        ck_assert(counter_wait(&started, r));
        /* Land anywhere from inside the window to well after it. */
        struct timespec d = {0, (long)(rand_r(&seed) % 300) * 1000};
        nanosleep(&d, NULL);
        ck_assert_int_eq(tp_cancel_group(p, g), TP_OK);
        ck_assert(counter_wait(&ended, r));
        ck_assert_int_eq(result[0], TP_ECANCELED);
    }
    tp_pool_free(p);
}
END_TEST

/* Many tasks blocked at once, all cancelled together. */
static int long_sleeper(tp_task *task, void *arg)
{
    (void)arg;
    counter_add(&started, 1);
    return tp_sleep(task, 3600) == TP_ECANCELED ? 0 : 1;
}

START_TEST(many_blocked_tasks_cancel_together)
{
    tp_pool *p = tp_pool_new(NULL);
    ck_assert_int_eq(tp_apply(p, long_sleeper, NULL, 500, NULL, NULL), TP_OK);
    ck_assert(counter_wait(&started, 500));
    tp_cancel_all(p);
    ck_assert_int_eq(tp_gather_and_close(p), TP_OK);
    tp_stats st;
    tp_get_stats(p, &st);
    ck_assert_uint_eq(st.total_cancelled, 500);
    ck_assert_uint_eq(st.total_failed, 0);
    tp_pool_free(p);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("wait");
    TCase *tc = tcase_create("wait");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, sleep_returns_ecanceled_when_cancelled);
    tcase_add_test(tc, sleep_outside_a_task_and_bad_durations);
    tcase_add_test(tc, cond_wait_returns_ecanceled_with_the_mutex_held);
    tcase_add_test(tc, cond_wait_cancel_while_canceller_holds_the_mutex);
    tcase_add_test(tc, cond_wait_times_out_and_works_without_a_task);
    tcase_add_test(tc, cond_wait_in_a_task_times_out);
    tcase_add_test(tc, wait_fd_returns_ecanceled_when_cancelled);
    tcase_add_test(tc, wait_fd_reports_readiness_and_timeouts);
    tcase_add_test(tc, wait_fd_on_a_closed_descriptor_is_einval);
    tcase_add_test(tc, cancel_fd_becomes_readable_when_cancelled);
    tcase_add_test(tc, cancel_fd_is_reset_between_tasks);
    tcase_add_test(tc, task_knows_its_id_pool_and_thread);
    tcase_add_test(tc, many_blocked_tasks_cancel_together);
    tcase_add_test(tc, cond_wait_cancel_in_the_window_is_not_lost);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
