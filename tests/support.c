/* SPDX-License-Identifier: MIT */
#include "support.h"

#include <errno.h>
#include <stdlib.h>
#include <time.h>

double time_multiplier(void)
{
    const char *s = getenv("CK_TIMEOUT_MULTIPLIER");
    double m = s ? atof(s) : 1.0;
    return m >= 1.0 ? m : 1.0;
}

static struct timespec deadline_in(double seconds)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    seconds *= time_multiplier();
    ts.tv_sec += (time_t)seconds;
    ts.tv_nsec += (long)((seconds - (double)(time_t)seconds) * 1e9);
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

void counter_init(counter *c)
{
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    c->n = 0;
}

void counter_destroy(counter *c)
{
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
}

void counter_add(counter *c, long d)
{
    pthread_mutex_lock(&c->mu);
    c->n += d;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

long counter_get(counter *c)
{
    pthread_mutex_lock(&c->mu);
    long n = c->n;
    pthread_mutex_unlock(&c->mu);
    return n;
}

bool counter_wait(counter *c, long n)
{
    return counter_wait_for(c, n, 10);
}

bool counter_wait_for(counter *c, long n, double seconds)
{
    struct timespec until = deadline_in(seconds);
    pthread_mutex_lock(&c->mu);
    int rc = 0;
    while (c->n < n && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&c->cv, &c->mu, &until);
    bool ok = c->n >= n;
    pthread_mutex_unlock(&c->mu);
    return ok;
}

void gate_init(gate *g)
{
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    g->open = false;
}

void gate_destroy(gate *g)
{
    pthread_mutex_destroy(&g->mu);
    pthread_cond_destroy(&g->cv);
}

void gate_open(gate *g)
{
    pthread_mutex_lock(&g->mu);
    g->open = true;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

int gate_pass(gate *g, tp_task *task)
{
    int rc = TP_OK;
    pthread_mutex_lock(&g->mu);
    while (!g->open && rc != TP_ECANCELED)
        rc = tp_cond_wait(task, &g->cv, &g->mu, -1);
    if (g->open)
        rc = TP_OK;
    pthread_mutex_unlock(&g->mu);
    return rc;
}

int pass_gate_arg(tp_task *task, void *gate_arg)
{
    gate_pass(gate_arg, task);
    return 0;
}

bool wait_until(bool (*pred)(void *), void *arg)
{
    long limit = (long)(10000 * time_multiplier());
    for (long i = 0; i < limit; i++) {
        if (pred(arg))
            return true;
        struct timespec ms = {0, 1000000L};
        nanosleep(&ms, NULL);
    }
    return pred(arg);
}

int run_suite(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
