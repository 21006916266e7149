/* SPDX-License-Identifier: MIT */
/*
 * The queue example of README.md as a whole program: four consumer tasks
 * take items from a bounded tp_queue that the main thread fills; the main
 * thread waits until every item has been processed, then cancels the
 * consumers' group (they are blocked in tp_queue_get, which returns
 * TP_ECANCELED) and closes the pool.
 *
 * It checks itself: every item is processed exactly once, and every
 * consumer that started ends through cancellation (a consumer whose start
 * was still pending when its group was cancelled never starts). Exit status
 * 0 if so, 1 if not.
 *
 * Usage: queue [ITEMS]   (default 1000)
 */
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "taskpool.h"

#define CONSUMERS 4

typedef struct work {
    tp_queue *q;
    atomic_long processed; /* items taken and processed */
    atomic_llong sum;      /* of the items' values */
    atomic_int started;    /* consumers whose function was called */
    atomic_int cancelled;  /* of which left through TP_ECANCELED */
} work;

static void process(work *w, void *item)
{
    atomic_fetch_add(&w->sum, (long long)(intptr_t)item);
    atomic_fetch_add(&w->processed, 1);
}

/* A consumer: takes items until it is cancelled. */
static int consumer(tp_task *task, void *arg)
{
    work *w = arg;
    void *item;
    int rc;
    atomic_fetch_add(&w->started, 1);
    while ((rc = tp_queue_get(w->q, task, &item)) == TP_OK) {
        process(w, item);
        tp_queue_item_processed(w->q);
    }
    if (rc == TP_ECANCELED)
        atomic_fetch_add(&w->cancelled, 1);
    return rc == TP_ECANCELED ? 0 : 1;
}

/* Starts the consumers, feeds them items 1..n, waits until every item has
 * been processed, then cancels the consumers and closes the pool. The
 * group's generated name is written to group. Returns TP_OK or the first
 * error. */
static int run(tp_pool *pool, work *w, long n, char group[TP_NAME_MAX])
{
    /* tp_apply writes the name it generated to group, so that exactly
     * these tasks can be cancelled later. */
    int rc = tp_apply(pool, consumer, w, CONSUMERS,
                      &(tp_opts){.func_name = "consumer"}, group);
    for (long i = 1; rc == TP_OK && i <= n; i++)
        rc = tp_queue_put(w->q, NULL, (void *)(intptr_t)i); /* NULL: no task */
    if (rc == TP_OK)
        rc = tp_queue_join(w->q, NULL); /* every item processed */
    if (rc == TP_OK)
        rc = tp_cancel_group(pool, group); /* the consumers return */
    if (rc == TP_OK)
        rc = tp_gather_and_close(pool);
    return rc;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? strtol(argv[1], NULL, 10) : 1000;
    if (n < 0) {
        fprintf(stderr, "usage: queue [ITEMS]\n");
        return 2;
    }
    work w = {.q = tp_queue_new(100)}; /* at most 100 items waiting */
    tp_pool *pool = tp_pool_new(NULL);
    if (!w.q || !pool) {
        fprintf(stderr, "queue: out of memory\n");
        return 1;
    }
    char group[TP_NAME_MAX] = "";
    int rc = run(pool, &w, n, group);
    tp_pool_free(pool); /* cancels and waits for whatever still runs */
    tp_queue_free(w.q);
    if (rc != TP_OK) {
        fprintf(stderr, "queue: %s\n", tp_strerror(rc));
        return 1;
    }

    long long expected = (long long)n * (n + 1) / 2;
    int started = atomic_load(&w.started);
    printf("%s: %ld items processed (sum %lld); %d consumers ran, %d of "
           "them cancelled\n",
           group, atomic_load(&w.processed), atomic_load(&w.sum), started,
           atomic_load(&w.cancelled));
    if (atomic_load(&w.processed) != n || atomic_load(&w.sum) != expected ||
        (n > 0 && started == 0) || started > CONSUMERS ||
        atomic_load(&w.cancelled) != started) {
        fprintf(stderr,
                "queue: expected %ld items (sum %lld), each "
                "consumer that ran cancelled\n",
                n, expected);
        return 1;
    }
    return 0;
}
