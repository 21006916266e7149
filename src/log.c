/* SPDX-License-Identifier: MIT */
/*
 * Process-wide logging, like the reference's module logger.
 *
 * tp__log_min holds the lowest level that is passed on (-1 until the first
 * use reads TASKPOOL_LOG; INT_MAX when silent), so that a disabled message
 * costs one relaxed load. The handler and its argument are guarded by
 * log_mu, copied out, and called without any lock held.
 */
#include "internal.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

atomic_int tp__log_min = -1;

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static tp_log_fn log_fn;
static void *log_arg;

static void log_stderr(tp_log_level level, const char *message, void *arg)
{
    (void)level;
    (void)arg;
    char line[1024];
    int n = snprintf(line, sizeof line, "%s\n", message);
    if (n > (int)sizeof line - 1)
        n = (int)sizeof line - 1;
    ssize_t rc = write(STDERR_FILENO, line, (size_t)n);
    (void)rc;
}

static int parse_level(const char *s)
{
    static const char *names[] = {"debug", "info", "warning", "error"};
    for (int i = 0; s && i < 4; i++)
        if (strcasecmp(s, names[i]) == 0)
            return i;
    return INT_MAX;
}

int tp__log_init(void)
{
    pthread_mutex_lock(&log_mu);
    int min = atomic_load(&tp__log_min);
    if (min < 0) {
        min = parse_level(getenv("TASKPOOL_LOG"));
        log_fn = min == INT_MAX ? NULL : log_stderr;
        log_arg = NULL;
        atomic_store(&tp__log_min, min);
    }
    pthread_mutex_unlock(&log_mu);
    return min;
}

void tp_log_set(tp_log_fn fn, void *arg, tp_log_level min_level)
{
    pthread_mutex_lock(&log_mu);
    log_fn = fn;
    log_arg = arg;
    atomic_store(&tp__log_min, fn ? (int)min_level : INT_MAX);
    pthread_mutex_unlock(&log_mu);
}

void tp__log_write(tp_log_level level, const char *fmt, ...)
{
    char message[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);

    pthread_mutex_lock(&log_mu);
    tp_log_fn fn = log_fn;
    void *arg = log_arg;
    pthread_mutex_unlock(&log_mu);
    if (fn)
        fn(level, message, arg);
}

/* A pool's ordered task messages. Turns are given under pool->mu with the
 * event they report (an id assigned, a slot freed), so turn order is event
 * order; each thread then waits for its turn without any engine lock,
 * writes, and passes the turn on. Nothing else is ever waited for while a
 * turn is held, so the turns always drain. Only taken while the level is
 * enabled: with logging off this costs the one load of tp__log_on. */
void tp__logq_init(tp__logq *q)
{
    *q = (tp__logq){0};
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->cv, NULL);
}

void tp__logq_destroy(tp__logq *q)
{
    pthread_cond_destroy(&q->cv);
    pthread_mutex_destroy(&q->mu);
}

uint64_t tp__logq_turn(tp__logq *q, tp_log_level level)
{
    return tp__log_on(level) ? q->next++ : UINT64_MAX;
}

void tp__logq_wait(tp__logq *q, uint64_t turn)
{
    pthread_mutex_lock(&q->mu);
    while (q->served != turn) {
        q->waiters++;
        pthread_cond_wait(&q->cv, &q->mu);
        q->waiters--;
    }
    pthread_mutex_unlock(&q->mu);
}

void tp__logq_done(tp__logq *q, uint64_t turn)
{
    pthread_mutex_lock(&q->mu);
    assert(q->served == turn);
    (void)turn;
    q->served++;
    if (q->waiters)
        pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
}
