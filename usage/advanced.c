/* SPDX-License-Identifier: MIT */
/*
 * The advanced TaskPool example of the reference usage document, in C.
 *
 * A general pool runs tasks of different functions with different
 * arguments. The pool holds at most 3 tasks at once. `apply` starts two
 * tasks of `work` (ids 0 and 1) with the same arguments; 1.5 s later
 * `starmap` queues four tasks of `other_work`, each with its own arguments,
 * of which no more than two may run at once. They receive ids 2 to 5:
 *  - 2 starts at once, which fills the pool;
 *  - 3 starts only when there is room again: when 2 ends;
 *  - 4 starts when 0 (or 1) ends: room in the pool, and only 3 of its group
 *    runs;
 *  - 5 does not start when the other of 0 and 1 ends, although there is
 *    room, since 3 and 4 already run: it starts when 3 ends.
 *
 * Usage: advanced [TIME_SCALE]   (e.g. "advanced 0.01" runs 100 times faster)
 */
#include <stdio.h>
#include <stdlib.h>

#include "taskpool.h"

static double scale = 1.0;

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

static void say(const char *line)
{
    flockfile(stdout);
    printf("%s\n", line);
    fflush(stdout);
    funlockfile(stdout);
}

/* The keyword arguments of the reference's work(start, stop, step). */
struct range {
    int start, stop, step;
};

/* Pseudo-worker function counting through a range with a second of sleep
 * before each step. */
static int work(tp_task *task, void *arg)
{
    const struct range *r = arg;
    for (int i = r->start; i < r->stop; i += r->step) {
        if (tp_sleep(task, 1.0 * scale) != TP_OK)
            return 0; /* cancelled */
        flockfile(stdout);
        printf("> work with %d\n", i);
        fflush(stdout);
        funlockfile(stdout);
    }
    return 0;
}

/* A different pseudo-worker counting from a to b with half a second of
 * sleep before each step; its two arguments are positional (starmap). */
static int other_work(tp_task *task, size_t argc, void *const argv[])
{
    if (argc != 2)
        return 1;
    int a = *(const int *)argv[0], b = *(const int *)argv[1];
    for (int i = a; i < b; i++) {
        if (tp_sleep(task, 0.5 * scale) != TP_OK)
            return 0; /* cancelled */
        flockfile(stdout);
        printf("> other_work with %d\n", i);
        fflush(stdout);
        funlockfile(stdout);
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1)
        scale = atof(argv[1]);
    if (!(scale > 0)) {
        fprintf(stderr, "usage: %s [TIME_SCALE > 0]\n", argv[0]);
        return 2;
    }
    tp_log_set(log_to_stdout, NULL, TP_LOG_DEBUG);

    /* A new pool whose size is limited to 3 tasks. */
    tp_pool *pool = tp_pool_new(&(tp_pool_opts){.pool_size = 3});
    if (!pool)
        return 1;

    /* Two tasks (ids 0 and 1) running concurrently with the same
     * arguments. The struct must stay valid until they end. */
    static const struct range range = {.start = 100, .stop = 200, .step = 10};
    say("> Called `apply`");
    int rc = tp_apply(pool, work, (void *)&range, 2,
                      &(tp_opts){.func_name = "work"}, NULL);

    /* Lets the tasks work for a bit. */
    if (rc == TP_OK)
        tp_sleep(NULL, 1.5 * scale);

    /* Four more tasks (ids 2 to 5), each with its own positional arguments,
     * no more than two of them at once. starmap copies the arrays; the
     * values they point to must stay valid until the tasks end. */
    static const int bounds[] = {0, 10, 20, 30, 40};
    void *const a0[] = {(void *)&bounds[0], (void *)&bounds[1]};
    void *const a1[] = {(void *)&bounds[1], (void *)&bounds[2]};
    void *const a2[] = {(void *)&bounds[2], (void *)&bounds[3]};
    void *const a3[] = {(void *)&bounds[3], (void *)&bounds[4]};
    const tp_args args_list[] = {{2, a0}, {2, a1}, {2, a2}, {2, a3}};
    if (rc == TP_OK) {
        rc = tp_starmap(pool, other_work, args_list, 4, 2,
                        &(tp_opts){.func_name = "other_work"}, NULL);
        say("> Called `starmap`");
    }

    /* Blocks until all tasks have ended. */
    if (rc == TP_OK) {
        say("> Calling `gather_and_close`...");
        rc = tp_gather_and_close(pool);
    }
    if (rc == TP_OK)
        say("> Done.");
    else
        fprintf(stderr, "advanced: %s\n", tp_strerror(rc));
    tp_pool_free(pool);
    return rc == TP_OK ? 0 : 1;
}
