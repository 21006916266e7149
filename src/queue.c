/* SPDX-License-Identifier: MIT */
/*
 * The queue: a FIFO of void pointers, bounded or unbounded, whose waiting
 * operations are cancellation-aware (the reference's asyncio Queue with
 * item_processed, i.e. task_done).
 *
 * DESIGN
 *  - One mutex, q->mu, guards everything in the struct: the ring buffer
 *    (buf, cap, head, count), the unfinished count and the waiter counts.
 *    It is a leaf lock: nothing else is locked while it is held, except
 *    what tp_cond_wait takes internally to register the waiter with its
 *    task (the engine's per-task lock, which never waits for q->mu).
 *  - Three condition variables (CLOCK_REALTIME, as tp_cond_wait requires):
 *    not_empty (getters wait), not_full (putters wait, bounded queues only)
 *    and all_done (joiners wait for unfinished == 0).
 *  - put and get signal one waiter, and only when someone waits. A waiter
 *    that leaves because its task was cancelled may have consumed such a
 *    signal, so on the way out it passes the signal on when its predicate
 *    holds and another waiter remains: no wake-up is ever lost.
 *  - A cancelled task never takes or adds an item: put, get and join check
 *    the task's flag under the lock before doing anything, so an item is
 *    either delivered with TP_OK or left in the queue.
 *  - The buffer is a ring whose size is a power of two. It grows by
 *    doubling when full (up to the bound) and shrinks by half when a get
 *    leaves it three quarters empty, so a burst does not pin its memory.
 *  - No callback runs here; nothing calls back into the pool engine except
 *    tp_cond_wait and tp_cancelled.
 */
#include "taskpool.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

/* Slots allocated by tp_queue_new, and the size below which the ring is
 * never shrunk. */
#define QUEUE_MIN_CAP 16

struct tp_queue {
    pthread_mutex_t mu;
    pthread_cond_t not_empty;
    pthread_cond_t not_full;
    pthread_cond_t all_done;

    void **buf;
    size_t cap;   /* slots in buf: a power of two */
    size_t head;  /* index of the oldest item */
    size_t count; /* items in the queue */
    size_t bound; /* maximum count; SIZE_MAX when unbounded */

    size_t unfinished; /* items put and not yet marked processed */
    size_t getters, putters, joiners; /* threads waiting in get/put/join */
};

/* For the tests (static library only): a snapshot of the waiter counts
 * and the unfinished count, so that a test can wait until a thread is
 * blocked in the queue instead of sleeping. Any pointer may be NULL. */
void tp__queue_counts(const tp_queue *q, size_t *getters, size_t *putters,
                      size_t *joiners, size_t *unfinished);

static void queue_lock(const tp_queue *q)
{
    /* The mutex is the only mutable part of a "const" queue. */
    pthread_mutex_lock((pthread_mutex_t *)&q->mu);
}

static void queue_unlock(const tp_queue *q)
{
    pthread_mutex_unlock((pthread_mutex_t *)&q->mu);
}

/* Moves the items into a new ring of new_cap slots, oldest first at index
 * 0. Returns false (the queue unchanged) if out of memory. Caller holds
 * q->mu. */
static bool ring_resize(tp_queue *q, size_t new_cap)
{
    assert(new_cap >= q->count && (new_cap & (new_cap - 1)) == 0);
    void **nb = malloc(new_cap * sizeof *nb);
    if (!nb)
        return false;
    size_t first = q->cap - q->head; /* items before the wrap */
    if (first > q->count)
        first = q->count;
    memcpy(nb, q->buf + q->head, first * sizeof *nb);
    memcpy(nb + first, q->buf, (q->count - first) * sizeof *nb);
    free(q->buf);
    q->buf = nb;
    q->cap = new_cap;
    q->head = 0;
    return true;
}

/* Appends item; the caller checked count < bound. TP_OK or TP_ENOMEM.
 * Caller holds q->mu. */
static int ring_push(tp_queue *q, void *item)
{
    if (q->count == q->cap) {
        if (q->cap > SIZE_MAX / 2 / sizeof(void *) ||
            !ring_resize(q, q->cap * 2))
            return TP_ENOMEM;
    }
    q->buf[(q->head + q->count) & (q->cap - 1)] = item;
    q->count++;
    q->unfinished++;
    if (q->getters)
        pthread_cond_signal(&q->not_empty);
    return TP_OK;
}

/* Removes the oldest item; the caller checked count > 0. Caller holds
 * q->mu. */
static void *ring_pop(tp_queue *q)
{
    void *item = q->buf[q->head];
    q->head = (q->head + 1) & (q->cap - 1);
    q->count--;
    if (q->cap > QUEUE_MIN_CAP && q->count <= q->cap / 4)
        (void)ring_resize(q, q->cap / 2); /* failure only keeps memory */
    if (q->putters)
        pthread_cond_signal(&q->not_full);
    return item;
}

/* The task's cancellation as seen before doing anything. */
static bool task_cancelled(tp_task *task)
{
    return task && tp_cancelled(task);
}

TP_API tp_queue *tp_queue_new(size_t capacity)
{
    tp_queue *q = calloc(1, sizeof *q);
    if (!q)
        return NULL;
    q->bound = capacity ? capacity : SIZE_MAX;
    q->cap = QUEUE_MIN_CAP;
    q->buf = malloc(q->cap * sizeof *q->buf);
    if (!q->buf) {
        free(q);
        return NULL;
    }
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->not_empty, NULL);
    pthread_cond_init(&q->not_full, NULL);
    pthread_cond_init(&q->all_done, NULL);
    return q;
}

TP_API void tp_queue_free(tp_queue *q)
{
    if (!q)
        return;
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->not_empty);
    pthread_cond_destroy(&q->not_full);
    pthread_cond_destroy(&q->all_done);
    free(q->buf);
    free(q);
}

TP_API int tp_queue_put(tp_queue *q, tp_task *task, void *item)
{
    if (!q)
        return TP_EINVAL;
    int rc = TP_OK;
    queue_lock(q);
    if (task_cancelled(task)) {
        rc = TP_ECANCELED;
    } else {
        q->putters++;
        while (q->count >= q->bound && rc == TP_OK)
            rc = tp_cond_wait(task, &q->not_full, &q->mu, -1);
        q->putters--;
        if (rc == TP_OK)
            rc = ring_push(q, item);
        else if (q->putters && q->count < q->bound)
            /* This putter may have absorbed the not_full signal meant
             * for another one: pass it on. */
            pthread_cond_signal(&q->not_full);
    }
    queue_unlock(q);
    return rc;
}

TP_API int tp_queue_put_nowait(tp_queue *q, void *item)
{
    if (!q)
        return TP_EINVAL;
    queue_lock(q);
    int rc = q->count < q->bound ? ring_push(q, item) : TP_EAGAIN;
    queue_unlock(q);
    return rc;
}

TP_API int tp_queue_get(tp_queue *q, tp_task *task, void **item)
{
    if (!q || !item)
        return TP_EINVAL;
    int rc = TP_OK;
    queue_lock(q);
    if (task_cancelled(task)) {
        rc = TP_ECANCELED;
    } else {
        q->getters++;
        while (q->count == 0 && rc == TP_OK)
            rc = tp_cond_wait(task, &q->not_empty, &q->mu, -1);
        q->getters--;
        /* A getter cancelled at the instant an item arrived leaves it for
         * another getter, and passes on the signal it may have absorbed:
         * a cancelled task takes nothing. */
        if (rc == TP_OK)
            *item = ring_pop(q);
        else if (q->getters && q->count > 0)
            pthread_cond_signal(&q->not_empty);
    }
    queue_unlock(q);
    return rc;
}

TP_API int tp_queue_get_nowait(tp_queue *q, void **item)
{
    if (!q || !item)
        return TP_EINVAL;
    queue_lock(q);
    int rc = TP_EAGAIN;
    if (q->count > 0) {
        *item = ring_pop(q);
        rc = TP_OK;
    }
    queue_unlock(q);
    return rc;
}

TP_API void tp_queue_item_processed(tp_queue *q)
{
    if (!q)
        return;
    queue_lock(q);
    if (q->unfinished > 0 && --q->unfinished == 0)
        pthread_cond_broadcast(&q->all_done);
    queue_unlock(q);
}

TP_API int tp_queue_join(tp_queue *q, tp_task *task)
{
    if (!q)
        return TP_EINVAL;
    int rc = TP_OK;
    queue_lock(q);
    if (task_cancelled(task))
        rc = TP_ECANCELED;
    q->joiners++;
    while (q->unfinished > 0 && rc == TP_OK)
        rc = tp_cond_wait(task, &q->all_done, &q->mu, -1);
    q->joiners--;
    queue_unlock(q);
    return rc;
}

TP_API size_t tp_queue_size(const tp_queue *q)
{
    if (!q)
        return 0;
    queue_lock(q);
    size_t n = q->count;
    queue_unlock(q);
    return n;
}

void tp__queue_counts(const tp_queue *q, size_t *getters, size_t *putters,
                      size_t *joiners, size_t *unfinished)
{
    queue_lock(q);
    if (getters)
        *getters = q->getters;
    if (putters)
        *putters = q->putters;
    if (joiners)
        *joiners = q->joiners;
    if (unfinished)
        *unfinished = q->unfinished;
    queue_unlock(q);
}
