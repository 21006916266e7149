/* SPDX-License-Identifier: MIT */
/*
 * The timing histograms' buckets (tp_hist_bounds), and the histograms
 * each worker keeps of the tasks it ran: recorded by the worker with no
 * lock held (worker.c), summed by tp_get_timings (pool.c). A leaf.
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
    double seconds = (double)ns / 1e9;
    _Atomic uint64_t *b = &h->buckets[bucket_of(seconds)];
    /* One writer: plain loads and stores, atomic only for the readers. */
    atomic_store_explicit(b, atomic_load_explicit(b, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    atomic_store_explicit(
        &h->count, atomic_load_explicit(&h->count, memory_order_relaxed) + 1,
        memory_order_relaxed);
    atomic_store_explicit(
        &h->sum, atomic_load_explicit(&h->sum, memory_order_relaxed) + seconds,
        memory_order_relaxed);
}

void tp__timing_add(tp__timings *w, uint64_t admitted_ns, uint64_t started_ns,
                    uint64_t ended_ns)
{
    observe(&w->wait, started_ns - admitted_ns);
    observe(&w->run, ended_ns - started_ns);
}

static void sum_hist(tp_histogram *out, const tp__hist *h)
{
    /* The count is the buckets' sum, so that a histogram read while its
     * worker records stays coherent (count = the +Inf bucket). */
    for (unsigned i = 0; i < TP_HIST_BUCKETS; i++) {
        uint64_t n = atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
        out->buckets[i] += n;
        out->count += n;
    }
    out->sum += atomic_load_explicit(&h->sum, memory_order_relaxed);
}

void tp__timings_sum(tp_timings *out, const tp__timings *w)
{
    sum_hist(&out->wait, &w->wait);
    sum_hist(&out->run, &w->run);
}
