/* SPDX-License-Identifier: MIT */
/* Clock, statistics, memory and a calibrated CPU spin for the benchmarks. */
#include "bench.h"

#include <sys/resource.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double bench_median(double *v, size_t n)
{
    if (n == 0)
        return 0;
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

double bench_percentile(double *v, size_t n, double p)
{
    if (n == 0)
        return 0;
    qsort(v, n, sizeof *v, cmp_double);
    size_t rank = (size_t)(p * (double)n + 0.999999);
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    return v[rank - 1];
}

static double status_mib(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    char line[256];
    size_t klen = strlen(key);
    double mib = -1;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
            mib = atof(line + klen + 1) / 1024.0; /* the value is in kB */
            break;
        }
    }
    fclose(f);
    return mib;
}

double bench_rss_mib(void)
{
    return status_mib("VmRSS");
}

double bench_hwm_mib(void)
{
    return status_mib("VmHWM");
}

/* The loop's accumulator goes through an empty asm so that the compiler
 * can neither remove nor vectorise the loop. */
volatile uint64_t bench_spin_sink;

void bench_spin(uint64_t iters)
{
    uint64_t x = 0;
    for (uint64_t i = 0; i < iters; i++) {
        x += i;
        __asm__ volatile("" : "+r"(x));
    }
    bench_spin_sink = x;
}

uint64_t bench_spin_calibrate(void)
{
    const uint64_t probe = 20000000;
    double best = 1e9;
    bench_spin(probe); /* warm up the clock frequency */
    for (int i = 0; i < 7; i++) {
        double t0 = bench_now();
        bench_spin(probe);
        double t = bench_now() - t0;
        if (t < best)
            best = t;
    }
    uint64_t per_us = (uint64_t)((double)probe / (best * 1e6) + 0.5);
    return per_us ? per_us : 1;
}

double bench_cpu_seconds(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return -1;
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}
