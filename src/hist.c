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

void tp__observe(tp_histogram *h, uint64_t ns)
{
    double s = (double)ns / 1e9;
    size_t i = 0;
    while (s > hist_bounds[i])
        i++; /* the last bound is +INFINITY */
    h->buckets[i]++;
    h->count++;
    h->sum += s;
}

