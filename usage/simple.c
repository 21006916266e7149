/* SPDX-License-Identifier: MIT */
/*
 * The minimal SimpleTaskPool example of the reference usage document, in C.
 *
 * A simple pool runs one function with one argument, fixed when the pool is
 * created; afterwards the only control is how many of those tasks run. This
 * program starts three tasks, a fourth 1.5 s later, stops the two most
 * recently started ones 1.5 s after that, then waits for the rest.
 *
 * Usage: simple [TIME_SCALE]   (e.g. "simple 0.01" runs 100 times faster)
 */
#include <stdio.h>
#include <stdlib.h>

#include "taskpool.h"

/* Full log output, interleaved with the program's own lines on stdout. */
static void log_to_stdout(tp_log_level level, const char *message, void *arg)
{
    (void)level;
    (void)arg;
    flockfile(stdout);
    printf("%s\n", message);
    fflush(stdout);
    funlockfile(stdout);
}

static void say(const char *what, int i)
{
    flockfile(stdout);
    printf("> %s %d\n", what, i);
    fflush(stdout);
    funlockfile(stdout);
}

struct work_args {
    int n;       /* how far to count */
    double tick; /* seconds of sleep before each step */
};

/* Pseudo-worker function: counts up to n with a tick of sleep before each
 * step. A real worker would take its work from a shared source, such as a
 * tp_queue. Returns as soon as it is cancelled. */
static int work(tp_task *task, void *arg)
{
    const struct work_args *a = arg;
    for (int i = 0; i < a->n; i++) {
        if (tp_sleep(task, a->tick) != TP_OK)
            return 0; /* cancelled */
        say("did", i);
    }
    return 0;
}

int main(int argc, char **argv)
{
    double scale = argc > 1 ? atof(argv[1]) : 1.0;
    if (!(scale > 0)) {
        fprintf(stderr, "usage: %s [TIME_SCALE > 0]\n", argv[0]);
        return 2;
    }
    tp_log_set(log_to_stdout, NULL, TP_LOG_DEBUG);

    struct work_args args = {5, 1.0 * scale};
    tp_opts opts = {.func_name = "work"};
    /* Initializes the pool; no work is being done yet. */
    tp_pool *pool = tp_simple_pool_new(work, &args, NULL, &opts);
    if (!pool)
        return 1;
    int rc = tp_start(pool, 3, NULL); /* launches work tasks 0, 1 and 2 */
    if (rc == TP_OK) {
        tp_sleep(NULL, 1.5 * scale);  /* lets the tasks work for a bit */
        rc = tp_start(pool, 1, NULL); /* launches work task 3 */
    }
    if (rc == TP_OK) {
        tp_sleep(NULL, 1.5 * scale); /* lets the tasks work for a bit */
        rc = tp_stop(pool, 2, NULL); /* cancels tasks 3 and 2 (LIFO) */
    }
    if (rc == TP_OK)
        rc = tp_gather_and_close(pool); /* waits for all tasks, then closes */
    if (rc != TP_OK)
        fprintf(stderr, "simple: %s\n", tp_strerror(rc));
    tp_pool_free(pool);
    return rc == TP_OK ? 0 : 1;
}
