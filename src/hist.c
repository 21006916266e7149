/* SPDX-License-Identifier: MIT */
/*
 * The timing histograms' buckets (tp_hist_bounds), and the pool's shards
 * of histograms: recorded by workers with no lock held (worker.c), summed
 * by tp_get_timings (pool.c). Shards 1 to TP__SHARDS - 1 have one writer
 * each, a worker that owns it; workers beyond those share shard 0 and add
 * atomically. A leaf.
 */
#include "internal.h"

#include <math.h>

/* The finite bounds, in seconds; the last bucket's is +Inf. */
/* clang-format off */
#define BOUNDS(X)                                                              \
    X(1e-6) X(2.5e-6) X(5e-6) X(1e-5) X(2.5e-5) X(5e-5) X(1e-4) X(2.5e-4)    \
    X(5e-4) X(1e-3) X(2.5e-3) X(5e-3) X(1e-2) X(2.5e-2) X(5e-2) X(0.1)       \
    X(0.25) X(0.5) X(1) X(2.5) X(5) X(10) X(25) X(50) X(100)
/* clang-format on */
#define SECONDS(s) s,
#define NS(s) (uint64_t)((s)*1e9 + 0.5),

static const double hist_bounds[TP_HIST_BUCKETS] = {BOUNDS(SECONDS) INFINITY};
/* The same in nanoseconds, compared as integers on the workers' path. */
static const uint64_t bound_ns[TP_HIST_BUCKETS - 1] = {BOUNDS(NS)};
_Static_assert(sizeof((double[]){BOUNDS(SECONDS)}) ==
                   (TP_HIST_BUCKETS - 1) * sizeof(double),
               "one finite bound per bucket but the last");

const double *tp_hist_bounds(void)
{
    return hist_bounds;
}

static unsigned bucket_of(uint64_t ns)
{
    unsigned i = 0;
    while (i + 1 < TP_HIST_BUCKETS && ns > bound_ns[i])
        i++;
    return i;
}

/* A shard's only writer adds with a plain load and store: a lock-prefixed
 * add per counter took about 5% of a per-call task's CPU time. Readers load
 * each counter whole either way. */
static void add(_Atomic uint64_t *a, uint64_t v, bool own)
{
    if (own)
        atomic_store_explicit(a,
                              atomic_load_explicit(a, memory_order_relaxed) + v,
                              memory_order_relaxed);
    else
        atomic_fetch_add_explicit(a, v, memory_order_relaxed);
}

static void observe(tp__hist *h, uint64_t ns, bool own)
{
    add(&h->buckets[bucket_of(ns)], 1, own);
    add(&h->sum_ns, ns, own);
}

_Static_assert(TP__SHARDS < 32, "shards_owned holds a bit per shard");

unsigned tp__shard_take(tp_pool *pool)
{
    TP_ASSERT_HELD(pool);
    unsigned free_ones = ~pool->shards_owned & ((1u << TP__SHARDS) - 2);
    if (!free_ones)
        return 0;
    unsigned i = (unsigned)__builtin_ctz(free_ones);
    pool->shards_owned |= 1u << i;
    return i;
}

void tp__shard_give(tp_pool *pool, unsigned shard)
{
    TP_ASSERT_HELD(pool);
    pool->shards_owned &= ~(1u << shard) | 1u; /* shard 0 is nobody's */
}

void tp__timing_add(tp__timings *shard, bool own, uint64_t admitted_ns,
                    uint64_t started_ns, uint64_t ended_ns)
{
    observe(&shard->wait, started_ns - admitted_ns, own);
    observe(&shard->run, ended_ns - started_ns, own);
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
