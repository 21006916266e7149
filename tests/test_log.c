/* SPDX-License-Identifier: MIT */
/* The log suite: the messages about one pool come in the order of the
 * events they report (issue 8): Started lines in id order, a task's
 * Cancelling/Cancelled before its Ended, and a task's Ended before the
 * Started that its freed slot allowed. Many small pools run at once, so
 * that workers of one pool race to log. */
#include "support.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { POOLS = 100, TASKS = 12, MAXLINES = POOLS * TASKS * 4 + 1000 };

static pthread_mutex_t lines_mu = PTHREAD_MUTEX_INITIALIZER;
static char *lines[MAXLINES];
static int n_lines;

static void collect(tp_log_level level, const char *message, void *arg)
{
    (void)level, (void)arg;
    pthread_mutex_lock(&lines_mu);
    if (n_lines < MAXLINES)
        lines[n_lines++] = strdup(message);
    pthread_mutex_unlock(&lines_mu);
}

static int work(tp_task *task, void *arg)
{
    (void)arg;
    /* Varied short durations, some zero, so that ends overtake starts. */
    tp_id id = tp_task_id(task);
    if (id % 3)
        tp_sleep(task, 0.0002 * (double)(id % 5));
    return 0;
}

/* Parses "<what> <pool>_Task-<id>[ ...]"; returns the id or -1. */
static long parse(const char *line, const char *what, const char *pool)
{
    size_t w = strlen(what), p = strlen(pool);
    if (strncmp(line, what, w) != 0 || line[w] != ' ' ||
        strncmp(line + w + 1, pool, p) != 0 ||
        strncmp(line + w + 1 + p, "_Task-", 6) != 0)
        return -1;
    return strtol(line + w + 1 + p + 6, NULL, 10);
}

/* Checks one pool's lines; size is its pool size. */
static void check_pool(const char *pool, size_t size, int tasks)
{
    int next_start = 0, ended = 0;
    int started_at[TASKS * 2], ended_at[TASKS * 2], cancelled_at[TASKS * 2];
    for (int i = 0; i < tasks; i++)
        started_at[i] = ended_at[i] = cancelled_at[i] = -1;
    for (int k = 0; k < n_lines; k++) {
        long id;
        if ((id = parse(lines[k], "Started", pool)) >= 0) {
            ck_assert_msg(id == next_start, "%s: Started %ld, expected %d",
                          pool, id, next_start);
            /* A start beyond the pool size needs a freed slot, whose
             * task's Ended came first. */
            ck_assert_msg(id < (long)size || ended >= id - (long)size + 1,
                          "%s: Started %ld after only %d Ended (size %zu)",
                          pool, id, ended, size);
            started_at[id] = k;
            next_start++;
        } else if ((id = parse(lines[k], "Ended", pool)) >= 0) {
            ck_assert_msg(id < tasks && started_at[id] >= 0 && ended_at[id] < 0,
                          "%s: Ended %ld out of place", pool, id);
            ended_at[id] = k;
            ended++;
        } else if ((id = parse(lines[k], "Cancelled", pool)) >= 0) {
            ck_assert(id < tasks && started_at[id] >= 0 && ended_at[id] < 0);
            cancelled_at[id] = k;
        }
    }
    ck_assert_int_eq(next_start, tasks);
    ck_assert_int_eq(ended, tasks);
}

START_TEST(messages_come_in_event_order)
{
    tp_log_set(collect, NULL, TP_LOG_DEBUG);
    tp_pool *pools[POOLS];
    for (int i = 0; i < POOLS; i++) {
        char name[32];
        snprintf(name, sizeof name, "log%d", i);
        pools[i] = tp_pool_new(
            &(tp_pool_opts){.pool_size = 1 + (size_t)i % 4, .name = name});
        ck_assert_ptr_nonnull(pools[i]);
    }
    for (int i = 0; i < POOLS; i++) {
        if (i % 2)
            ck_assert_int_eq(tp_apply(pools[i], work, NULL, TASKS, NULL, NULL),
                             TP_OK);
        else
            for (int j = 0; j < TASKS; j++)
                ck_assert_int_eq(tp_apply(pools[i], work, NULL, 1, NULL, NULL),
                                 TP_OK);
    }
    for (int i = 0; i < POOLS; i++)
        ck_assert_int_eq(tp_gather_and_close(pools[i]), TP_OK);
    for (int i = 0; i < POOLS; i++)
        tp_pool_free(pools[i]);
    tp_log_set(NULL, NULL, TP_LOG_ERROR);
    for (int i = 0; i < POOLS; i++) {
        char name[32];
        snprintf(name, sizeof name, "TaskPool-log%d", i);
        check_pool(name, 1 + (size_t)i % 4, TASKS);
    }
}
END_TEST

static gate hold;

static bool two_running(void *arg)
{
    return tp_num_running(arg) == 2;
}

/* Cancelled tasks: Cancelling, Cancelled, then Ended, and the starts that
 * their slots allowed come after their Ended. */
START_TEST(cancelled_tasks_log_in_order)
{
    gate_init(&hold);
    tp_log_set(collect, NULL, TP_LOG_DEBUG);
    tp_pool *p = tp_pool_new(&(tp_pool_opts){.pool_size = 2, .name = "c"});
    char g[TP_NAME_MAX];
    ck_assert_int_eq(tp_apply(p, pass_gate_arg, &hold, 4, NULL, g), TP_OK);
    ck_assert_int_eq(tp_apply(p, work, NULL, 6, NULL, NULL), TP_OK);
    /* Wait until 0 and 1 run, then cancel them; 2 and 3 never start once
     * the group is cancelled, and 2.. are the other group's. */
    ck_assert(wait_until(two_running, p));
    ck_assert_int_eq(tp_cancel_group(p, g), TP_OK);
    ck_assert_int_eq(tp_gather_and_close(p), TP_OK);
    tp_pool_free(p);
    tp_log_set(NULL, NULL, TP_LOG_ERROR);
    check_pool("TaskPool-c", 2, 8);
    int cancelling = -1, cancelled = -1, ended = -1;
    for (int k = 0; k < n_lines; k++) {
        if (parse(lines[k], "Cancelling", "TaskPool-c") == 0)
            cancelling = k;
        if (parse(lines[k], "Cancelled", "TaskPool-c") == 0)
            cancelled = k;
        if (parse(lines[k], "Ended", "TaskPool-c") == 0)
            ended = k;
    }
    ck_assert(cancelling >= 0 && cancelling < cancelled && cancelled < ended);
    gate_destroy(&hold);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("log");
    TCase *tc = tcase_create("order");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, messages_come_in_event_order);
    tcase_add_test(tc, cancelled_tasks_log_in_order);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
