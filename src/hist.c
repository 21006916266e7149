/* SPDX-License-Identifier: MIT */
/*
 * The timing histograms' buckets (tp_hist_bounds), and the pool's shards
 * of histograms: recorded by workers with no lock held (worker.c), summed
 * by tp_get_timings (pool.c). A leaf.
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

static void observe(tp__hist *h, uint64_t ns)
{
    atomic_fetch_add_explicit(&h->buckets[bucket_of((double)ns / 1e9)], 1,
                              memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_ns, ns, memory_order_relaxed);
}

void tp__timing_add(tp__timings *shard, uint64_t admitted_ns,
                    uint64_t started_ns, uint64_t ended_ns)
{
    observe(&shard->wait, started_ns - admitted_ns);
    observe(&shard->run, ended_ns - started_ns);
}

static void sum_hist(tp_histogram *out, const tp__hist *h)
{
    /* The count is the buckets' sum, so that a histogram read while a
     * worker records stays coherent (count = the +Inf bucket). */
    for (unsigned i = 0; i < TP_HIST_BUCKETS; i++) {
        uint64_t n = atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
        out->buckets[i] += n;
        out->count += n;
    }
    out->sum +=
        (double)atomic_load_explicit(&h->sum_ns, memory_order_relaxed) / 1e9;
}

void tp__timings_sum(tp_timings *out, const tp__timings *shard)
{
    sum_hist(&out->wait, &shard->wait);
    sum_hist(&out->run, &shard->run);
}
