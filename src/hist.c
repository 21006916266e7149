/* SPDX-License-Identifier: MIT */
/*
 * The timing histograms' buckets (tp_hist_bounds) and adding an
 * observation: a leaf, called with the pool lock held by the files that
 * time a start's wait and a task's run (worker.c), read by pool.c.
 */
#include "internal.h"

#include <math.h>

static const double hist_bounds[TP_HIST_BUCKETS] = {
    1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4,  5e-4,
    1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1,  0.25,    0.5,
    1,    2.5,    5,    10,   25,     50,   100,  INFINITY};

const double *tp_hist_bounds(void)
{
    return hist_bounds;
}

static unsigned bucket_of(double s)
{
    unsigned i = 0;
    while (s > hist_bounds[i])
        i++; /* the last bound is +INFINITY */
    return i;
}

tp__timing tp__timing_of(uint64_t admitted_ns, uint64_t started_ns,
                         uint64_t ended_ns)
{
    tp__timing t;
    t.wait = (double)(started_ns - admitted_ns) / 1e9;
    t.run = (double)(ended_ns - started_ns) / 1e9;
    t.wait_bucket = bucket_of(t.wait);
    t.run_bucket = bucket_of(t.run);
    return t;
}

void tp__timing_add(tp_timings *timings, const tp__timing *t)
{
    timings->wait.buckets[t->wait_bucket]++;
    timings->wait.count++;
    timings->wait.sum += t->wait;
    timings->run.buckets[t->run_bucket]++;
    timings->run.count++;
    timings->run.sum += t->run;
}
