/* SPDX-License-Identifier: MIT */
/* Helpers shared by the benchmark programs: a clock, medians and
 * percentiles, the process's memory, and the peers that run the same
 * workloads (peers.c). Benchmarks print tables; they assert nothing. */
#ifndef TP_BENCH_H
#define TP_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Seconds on CLOCK_MONOTONIC. */
double bench_now(void);

/* The median of v[0..n) (sorts v in place); 0 if n == 0. */
double bench_median(double *v, size_t n);

/* The p-quantile (0..1) of v[0..n) by nearest rank (sorts v). */
double bench_percentile(double *v, size_t n, double p);

/* VmRSS and VmHWM of this process in MiB, from /proc/self/status; -1 if
 * unknown. */
double bench_rss_mib(void);
double bench_hwm_mib(void);

/* User + system CPU seconds this process used so far (all threads). */
double bench_cpu_seconds(void);

/* Burns about `iters` iterations of CPU; bench_spin_calibrate returns the
 * iterations that take one microsecond on this machine. */
void bench_spin(uint64_t iters);
uint64_t bench_spin_calibrate(void);

/* ---- peers (peers.c) ---- */

/* One unit of work: called n times with the same argument. */
typedef void (*bench_work_fn)(void *arg);

/* Each runs work(arg) n times on 2 worker threads, submitting from the
 * calling thread, and returns the seconds from the first submission (the
 * threads' creation included) until every call returned; a negative value
 * if the peer is not built in or failed. */

/* The floor: a plain mutex + condition variable queue, 2 threads. */
double peer_floor_run(size_t n, bench_work_fn work, void *arg);
/* The same with n split between `submitters` submitting threads. */
double peer_floor_run_from(size_t n, int submitters, bench_work_fn work,
                           void *arg);
/* W2's floor: creates n threads of stack_size bytes (at least
 * PTHREAD_STACK_MIN) from the calling thread, each of which counts itself
 * in and blocks until released. Returns the seconds from the first
 * creation until the last one counted itself in, with the growth of VmRSS
 * over that time in *rss_growth_mib; then releases and joins them
 * (*release_seconds). Negative if it could not start. */
double peer_floor_blocked(size_t n, size_t stack_size, double *rss_growth_mib,
                          double *release_seconds);
/* GLib's GThreadPool, max_threads 2; exclusive or shared threads. */
double peer_glib_run(size_t n, bench_work_fn work, void *arg, bool exclusive);
double peer_glib_run_from(size_t n, int submitters, bench_work_fn work,
                          void *arg, bool exclusive);
/* libuv's uv_queue_work with UV_THREADPOOL_SIZE=2 (set by
 * peer_uv_setup, which must run before any other libuv call). */
void peer_uv_setup(void);
double peer_uv_run(size_t n, bench_work_fn work, void *arg);

bool peer_have_glib(void);
bool peer_have_uv(void);

#endif
