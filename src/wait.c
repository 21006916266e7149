/* SPDX-License-Identifier: MIT */
/*
 * The cancellation-aware waiter registry: a task's identity and flag, the
 * waits that a cancel interrupts (tp_sleep, tp_cond_wait, tp_wait_fd,
 * tp_cancel_fd), and the canceller's side: marking a task cancelled,
 * pinning its worker, and waking whatever the task is blocked in.
 *
 * DESIGN
 *
 * Each task has a leaf mutex, task->wmu, guarding what the task is blocked
 * in (ucond/umutex, waking, efd). Order: pool->mu, then task->wmu. A task
 * holding its own user mutex in tp_cond_wait takes wmu too, so a canceller
 * (which holds wmu) only ever *tries* the user's mutex and never blocks on
 * it. Cancelling marks tasks under pool->mu but wakes them after releasing
 * it (tp__cancel_later, tp__wake_all); each deferred wake pins the task's
 * worker (worker->pins), which neither reuses nor frees the task until the
 * wake is delivered (worker.c waits for the pins at the task's end).
 */
#include "internal.h"

#include <errno.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

_Thread_local tp_task *tp__current;
double tp__cond_slice = 1.0;
void (*tp__cond_window_hook)(void);

tp_id tp_task_id(const tp_task *task)
{
    return task ? task->id : -1;
}

tp_pool *tp_task_pool(const tp_task *task)
{
    return task ? task->pool : NULL;
}

tp_task *tp_current_task(void)
{
    return tp__current;
}

bool tp_cancelled(const tp_task *task)
{
    return task && atomic_load(&((tp_task *)task)->cancelled);
}

int tp_sleep(tp_task *task, double seconds)
{
    if (!(seconds >= 0))
        return TP_EINVAL;
    struct timespec deadline = tp__deadline(CLOCK_MONOTONIC, seconds);
    if (!task) {
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &deadline,
                               NULL) == EINTR)
            ;
        return TP_OK;
    }
    pthread_mutex_lock(&task->wmu);
    while (!atomic_load(&task->cancelled))
        if (pthread_cond_timedwait(&task->wcv, &task->wmu, &deadline) ==
            ETIMEDOUT)
            break;
    bool cancelled = atomic_load(&task->cancelled);
    pthread_mutex_unlock(&task->wmu);
    return cancelled ? TP_ECANCELED : TP_OK;
}

int tp_cond_wait(tp_task *task, pthread_cond_t *cond, pthread_mutex_t *mutex,
                 double timeout)
{
    if (!cond || !mutex || timeout != timeout)
        return TP_EINVAL;
    struct timespec deadline = tp__deadline(CLOCK_REALTIME, timeout);
    if (!task) {
        int rc = timeout < 0 ? pthread_cond_wait(cond, mutex)
                             : pthread_cond_timedwait(cond, mutex, &deadline);
        return rc == ETIMEDOUT ? TP_ETIMEDOUT : TP_OK;
    }
    pthread_mutex_lock(&task->wmu);
    bool cancelled = atomic_load(&task->cancelled);
    if (!cancelled) {
        task->ucond = cond;
        task->umutex = mutex;
    }
    pthread_mutex_unlock(&task->wmu);
    if (cancelled)
        return TP_ECANCELED;

    /* Wait at most one slice (see tp__cond_slice). A slice that expires is
     * reported as a spurious wake-up, never waited again here: glibc may
     * have consumed a signal meant for us as it timed out, and only the
     * caller can re-check its predicate. */
    if (tp__cond_window_hook)
        tp__cond_window_hook();
    struct timespec slice = tp__deadline(CLOCK_REALTIME, tp__cond_slice);
    bool last = timeout >= 0 && tp__before(&deadline, &slice);
    /* Look at the flag once more, right before blocking: a cancel that
     * landed since the registration (however long this thread was
     * descheduled meanwhile) is seen here, and one that lands after this
     * load finds the mutex held until pthread_cond_timedwait releases it
     * atomically with blocking, so tp__wake's broadcast under the mutex
     * reaches us. Only a canceller that waited more than tp__wake's bound
     * for those few instructions could miss us; then the slice ends the
     * wait. */
    int rc =
        atomic_load(&task->cancelled)
            ? 0
            : pthread_cond_timedwait(cond, mutex, last ? &deadline : &slice);
    int result = atomic_load(&task->cancelled) ? TP_ECANCELED
                 : rc == ETIMEDOUT && last     ? TP_ETIMEDOUT
                                               : TP_OK;
    pthread_mutex_lock(&task->wmu);
    while (task->waking) {
        /* A canceller is using cond and mutex (tp__wake): let it take the
         * mutex, and keep both registered until it is done. */
        pthread_mutex_unlock(mutex);
        pthread_cond_wait(&task->wcv, &task->wmu);
        pthread_mutex_unlock(&task->wmu);
        pthread_mutex_lock(mutex);
        pthread_mutex_lock(&task->wmu);
    }
    task->ucond = NULL;
    task->umutex = NULL;
    pthread_mutex_unlock(&task->wmu);
    return result;
}

/* Creates the task's eventfd on first use; readable once cancelled. */
static int cancel_fd(tp_task *task)
{
    pthread_mutex_lock(&task->wmu);
    if (task->efd < 0) {
        task->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (task->efd >= 0 && atomic_load(&task->cancelled)) {
            uint64_t one = 1;
            ssize_t n = write(task->efd, &one, sizeof one);
            (void)n;
            task->efd_signalled = true;
        }
    }
    int fd = task->efd;
    pthread_mutex_unlock(&task->wmu);
    return fd >= 0 ? fd : TP_ESYS;
}

int tp_cancel_fd(tp_task *task)
{
    return task ? cancel_fd(task) : TP_EINVAL;
}

int tp_wait_fd(tp_task *task, int fd, short events, double timeout)
{
    if (fd < 0 || timeout != timeout)
        return TP_EINVAL;
    struct pollfd p[2] = {{fd, events, 0}, {-1, POLLIN, 0}};
    if (task) {
        p[1].fd = cancel_fd(task);
        if (p[1].fd < 0)
            return TP_ESYS;
    }
    struct timespec deadline = tp__deadline(CLOCK_MONOTONIC, timeout);
    for (;;) {
        if (tp_cancelled(task))
            return TP_ECANCELED;
        int ms = -1;
        if (timeout >= 0) {
            struct timespec now = tp__deadline(CLOCK_MONOTONIC, 0);
            double left = (double)(deadline.tv_sec - now.tv_sec) +
                          (double)(deadline.tv_nsec - now.tv_nsec) / 1e9;
            ms = left <= 0    ? 0
                 : left > 2e6 ? 2000000000
                              : (int)(left * 1e3 + 0.999);
        }
        int n = poll(p, task ? 2 : 1, ms);
        if (n < 0 && errno != EINTR)
            return TP_ESYS;
        if (tp_cancelled(task))
            return TP_ECANCELED;
        if (n > 0 && (p[0].revents & POLLNVAL))
            return TP_EINVAL; /* fd is not open */
        if (n > 0 && p[0].revents)
            return p[0].revents;
        if (n == 0 && ms == 0)
            return TP_ETIMEDOUT;
    }
}

/* ---- the canceller's side: marking, pins and wakes ---- */

bool tp__mark_cancelled(tp_pool *pool, tp_task *t)
{
    TP_ASSERT_HELD(pool);
    if (t->state != TP__RUNNING)
        return false;
    t->state = TP__CANCELLED;
    pool->n_running--;
    pool->n_cancelled++;
    pool->total_cancelled++;
    atomic_store(&t->cancelled, true);
    return true;
}

void tp__wake(tp_task *t)
{
    pthread_mutex_lock(&t->wmu);
    pthread_cond_t *ucond = t->ucond;
    pthread_mutex_t *umutex = t->umutex;
    t->waking = ucond != NULL; /* tp_cond_wait keeps them registered */
    if (t->efd >= 0 && !t->efd_signalled) {
        uint64_t one = 1;
        ssize_t rc = write(t->efd, &one, sizeof one);
        (void)rc;
        t->efd_signalled = true;
    }
    pthread_mutex_unlock(&t->wmu);
    /* Signalled after unlocking, so that a sleeper does not wake into a
     * held mutex: the flag was set before wmu was taken, so a sleeper
     * either saw it or is already waiting. */
    pthread_cond_signal(&t->wcv);
    if (!ucond)
        return;
    /* A task in tp_cond_wait holds its mutex from checking the flag until
     * it blocks, so broadcasting while holding that mutex cannot fall in
     * between. We hold no lock here, so waiting for it is safe; the wait is
     * bounded because our caller might hold it (then the task cannot be in
     * that window, and a broadcast without the mutex reaches it). */
    struct timespec limit = tp__deadline(CLOCK_REALTIME, 0.005);
    bool locked = pthread_mutex_timedlock(umutex, &limit) == 0;
    pthread_cond_broadcast(ucond);
    if (locked)
        pthread_mutex_unlock(umutex);
    pthread_mutex_lock(&t->wmu);
    t->waking = false;
    pthread_mutex_unlock(&t->wmu);
    pthread_cond_broadcast(&t->wcv);
}

bool tp__cancel_later(tp_pool *pool, tp_task *t, tp__wakes *w)
{
    TP_ASSERT_HELD(pool);
    if (!tp__mark_cancelled(pool, t))
        return false;
    atomic_fetch_add_explicit(&t->worker->pins, 1, memory_order_relaxed);
    t->wake_next = w->head;
    w->head = t;
    return true;
}

void tp__wake_all(tp__wakes *w)
{
    for (tp_task *t = w->head, *next; t; t = next) {
        next = t->wake_next; /* read before the unpin lets t be reused */
        tp__wake(t);
        atomic_fetch_sub_explicit(&t->worker->pins, 1, memory_order_release);
    }
    w->head = NULL;
}
