/* SPDX-License-Identifier: MIT */
/* Helpers shared by the test suites: a countdown latch and a gate that
 * tests wait on instead of sleeping, and a main() body for one suite. */
#ifndef TP_TEST_SUPPORT_H
#define TP_TEST_SUPPORT_H

#include <check.h>
#include <pthread.h>
#include <stdbool.h>

#include "taskpool.h"

/* A counter that threads bump and tests wait on. */
typedef struct counter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    long n;
} counter;

void counter_init(counter *c);
void counter_destroy(counter *c);
void counter_add(counter *c, long d);
long counter_get(counter *c);
/* Waits until the counter reaches at least n, up to 10 s (times the
 * sanitizer multiplier). Returns false on timeout. */
bool counter_wait(counter *c, long n);
/* The same, up to the given seconds (times the multiplier). */
bool counter_wait_for(counter *c, long n, double seconds);

/* A gate: tasks block in gate_pass (cancellably, via tp_cond_wait) until
 * the test opens it. */
typedef struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool open;
} gate;

void gate_init(gate *g);
void gate_destroy(gate *g);
void gate_open(gate *g);
/* TP_OK once the gate is open, TP_ECANCELED if task is cancelled. */
int gate_pass(gate *g, tp_task *task);
/* A task function that passes the gate given as its argument; returns 0. */
int pass_gate_arg(tp_task *task, void *gate_arg);

/* Waits until pred(arg) holds, polling the pool state at 1 ms; for states
 * no callback announces (for example a worker thread retiring). Returns
 * false after 10 s (times the multiplier). */
bool wait_until(bool (*pred)(void *), void *arg);

/* Runs the suite in fork mode; returns the process exit status. */
int run_suite(Suite *s);

/* The timeout multiplier for sanitizer builds (CK_TIMEOUT_MULTIPLIER). */
double time_multiplier(void);

#endif
