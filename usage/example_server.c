/* SPDX-License-Identifier: MIT */
/*
 * The reference's third example: a SimpleTaskPool of queue workers that an
 * operator controls over TCP while they work.
 *
 * 100 items wait in a queue; three workers take one item at a time and
 * "work" on it for a second (a cancellable sleep). A control server on
 * 127.0.0.1 port 9999 lets you start and stop workers meanwhile:
 *
 *     ./example_server [HOST [PORT [SECONDS_PER_ITEM]]]
 *     taskpool-control tcp 127.0.0.1 9999      (in another terminal)
 *
 * `stats` and `metrics` show the queue's backlog (a registered gauge), and
 * Prometheus may scrape http://127.0.0.1:9999/metrics.
 *
 * A worker stopped in the middle of an item puts it back for the others.
 * Once every item is processed, the program stops the control server,
 * stops the workers (now waiting for items that never come) and gathers
 * the pool.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "taskpool.h"
#include "taskpool_control.h"

static double seconds_per_item = 1.0;

static void log_to_stderr(tp_log_level level, const char *message, void *arg)
{
    (void)level, (void)arg;
    fprintf(stderr, "%s\n", message);
}

/* Works on one item; TP_ECANCELED if the task was cancelled meanwhile. */
static int work(tp_task *task, intptr_t item)
{
    int rc = tp_sleep(task, seconds_per_item);
    if (rc == TP_OK) {
        printf("worked on %ld\n", (long)item);
        fflush(stdout);
    }
    return rc;
}

/* A gauge for the control server: items waiting in the queue. Called on
 * the control thread; tp_queue_size may be called from any thread. */
static double backlog(void *arg)
{
    return (double)tp_queue_size(arg);
}

/* Takes items until cancelled. An item interrupted by the cancellation is
 * put back, since another worker will finish it. */
static int worker(tp_task *task, void *arg)
{
    tp_queue *q = arg;
    for (;;) {
        void *item;
        if (tp_queue_get(q, task, &item) != TP_OK)
            return 0; /* cancelled while waiting for an item */
        int rc = work(task, (intptr_t)item);
        if (rc == TP_ECANCELED)
            tp_queue_put_nowait(q, item);
        /* Every get is matched by one "processed", or join never returns. */
        tp_queue_item_processed(q);
        if (rc == TP_ECANCELED)
            return 0;
    }
}

int main(int argc, char **argv)
{
    const char *host = argc > 1 ? argv[1] : "127.0.0.1";
    const char *port = argc > 2 ? argv[2] : "9999";
    if (argc > 3)
        seconds_per_item = atof(argv[3]);
    tp_log_set(log_to_stderr, NULL, TP_LOG_DEBUG);

    tp_queue *q = tp_queue_new(0);
    for (intptr_t item = 0; item < 100; item++)
        tp_queue_put_nowait(q, (void *)item);
    tp_opts opts = {.func_name = "worker"};
    tp_pool *pool = tp_simple_pool_new(worker, q, NULL, &opts);
    if (!q || !pool) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    tp_start(pool, 3, NULL);

    tp_control *ctl = tp_control_new_tcp(pool, host, port, NULL);
    /* The queue's backlog, in `stats`, `metrics` and a scrape of the port
     * (taskpool_queue_backlog). */
    if (!ctl ||
        tp_control_register_gauge(ctl, "queue_backlog", backlog, q) != TP_OK ||
        tp_control_start(ctl) != TP_OK) {
        perror("cannot start the control server");
        tp_control_free(ctl);
        tp_pool_free(pool);
        tp_queue_free(q);
        return 1;
    }
    fprintf(stderr, "Control server for %s listening on %s port %d\n",
            tp_pool_name(pool), host, tp_control_port(ctl));

    /* Wait until every item has been processed. */
    tp_queue_join(q, NULL);
    tp_control_stop(ctl);
    tp_stop_all(pool, NULL);
    tp_gather_and_close(pool);

    tp_control_free(ctl);
    tp_pool_free(pool);
    tp_queue_free(q);
    return 0;
}
