/* SPDX-License-Identifier: MIT */
/*
 * taskpool_bench: the engine's benchmarks, side by side with the peers
 * (bench/peers.c) in the same run, printed as a table with the targets.
 *
 *   W1  1,000,000 empty tasks, pool size 2: per call (W1-call: one
 *       tp_apply(num=1) per task, from one thread, then from four: W1-call
 *       x4) and batched (one tp_apply, one tp_map with num_concurrent 2),
 *       then tp_gather_and_close; us per task. Peers push one task per
 *       call. W1-mem: RSS growth per ended task over 1,000,000 per-call
 *       applies never flushed, and over 10,000,000 with forget_ended.
 *   W2  10,000 tasks blocked in tp_sleep: time until all run, RSS, and
 *       time for tp_cancel_all + tp_gather_and_close; start time and RSS
 *       growth also as ratios to the floor's (10,000 plain threads with
 *       the same stack, each blocked until released) in the same run.
 *   W3  200,000 tasks of ~1 us of CPU through tp_map, pool size 2: the
 *       overhead per task over the ideal (the same work done serially,
 *       halved for 2 cores), and the CPU time per task (all threads).
 *   W4  cancel latency from tp_cancel to the start of the end callback, for
 *       a task blocked in tp_sleep and one blocked in tp_wait_fd: p50, p99.
 *
 * Usage: taskpool_bench [--quick] [--runs N] [--only W1,W2,W3,W4]
 *                       [--no-peers] [--futex-slots N]
 * --no-peers measures taskpool alone (for profiling). --futex-slots N is a
 * diagnostic: it sets the process's private futex hash to N slots (Linux
 * >= 6.16, prctl PR_FUTEX_HASH; 0: the global hash) before any thread
 * exists, to show how much of W2 is the kernel's small default (16 slots
 * on a 2-CPU machine).
 * Every figure is the median of the runs; [min..max] follows. --quick uses
 * fewer tasks and runs, for a smoke test; its figures are indicative only.
 * Exit status: 0 unless a call failed (targets missed are reported, not
 * failed: a benchmark is not a test).
 */
#include "bench.h"
#include "taskpool.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MAX_RUNS 50

/* ------------------------------------------------------------------------ */
/* Configuration and reporting                                              */
/* ------------------------------------------------------------------------ */

static struct config {
    bool quick;
    bool no_peers;    /* taskpool only: for profiling */
    long futex_slots; /* < 0: leave the kernel's default */
    int runs;
    bool only[5]; /* only[0]: no filter */
    size_t w1_tasks, w2_tasks, w3_tasks, w4_cancels;
} cfg;

#define CHECK(call)                                                            \
    do {                                                                       \
        int rc_ = (call);                                                      \
        if (rc_ != TP_OK) {                                                    \
            fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #call,      \
                    tp_err_name(rc_));                                         \
            exit(2);                                                           \
        }                                                                      \
    } while (0)

/* A series of measurements of one metric. */
typedef struct series {
    double v[MAX_RUNS];
    int n;
} series;

static void add(series *s, double x)
{
    if (s->n < MAX_RUNS)
        s->v[s->n++] = x;
}

static double median_of(const series *s)
{
    double tmp[MAX_RUNS];
    memcpy(tmp, s->v, sizeof tmp);
    return bench_median(tmp, (size_t)s->n);
}

static void min_max(const series *s, double *lo, double *hi)
{
    *lo = *hi = s->n ? s->v[0] : 0;
    for (int i = 1; i < s->n; i++) {
        if (s->v[i] < *lo)
            *lo = s->v[i];
        if (s->v[i] > *hi)
            *hi = s->v[i];
    }
}

static void header(const char *title)
{
    printf("\n%s\n", title);
    printf("  %-28s %-16s %10s  %-21s %-10s %s\n", "implementation", "metric",
           "median", "[min .. max]", "target", "met");
}

/* One row. target <= 0 means none; the row is "met" if the median is at
 * most the target. */
static void row(const char *impl, const char *metric, const series *s,
                double target, const char *fmt_target)
{
    if (s->n == 0) {
        printf("  %-28s %-16s %10s\n", impl, metric, "n/a");
        return;
    }
    double med = median_of(s), lo, hi;
    min_max(s, &lo, &hi);
    char range[64], tgt[32] = "";
    snprintf(range, sizeof range, "[%.3f .. %.3f]", lo, hi);
    if (target > 0)
        snprintf(tgt, sizeof tgt, fmt_target ? fmt_target : "<= %.2f", target);
    printf("  %-28s %-16s %10.3f  %-21s %-10s %s\n", impl, metric, med, range,
           tgt, target > 0 ? (med <= target ? "yes" : "NO") : "");
}

/* "below every peer" line: taskpool's median against each peer's. */
static void compare(const char *what, const series *tp, const series *peers[],
                    const char *names[], size_t npeers)
{
    double mine = median_of(tp);
    bool below = true, any = false;
    for (size_t i = 0; i < npeers; i++)
        any |= peers[i]->n > 0;
    if (!any)
        return;
    printf("  %s below every peer:", what);
    for (size_t i = 0; i < npeers; i++) {
        if (peers[i]->n == 0)
            continue;
        double theirs = median_of(peers[i]);
        printf(" %s %.3f%s", names[i], theirs, mine < theirs ? "" : " (!)");
        below &= mine < theirs;
    }
    printf(" -> %s\n", below ? "yes" : "NO");
}

static bool selected(int w)
{
    return cfg.only[0] || cfg.only[w];
}

/* ------------------------------------------------------------------------ */
/* Task functions                                                           */
/* ------------------------------------------------------------------------ */

static int empty_task(tp_task *task, void *arg)
{
    (void)task;
    (void)arg;
    return 0;
}

static void empty_work(void *arg)
{
    (void)arg;
}

static uint64_t spin_iters; /* iterations for ~1 us */

static int spin_task(tp_task *task, void *arg)
{
    (void)task;
    (void)arg;
    bench_spin(spin_iters);
    return 0;
}

static void spin_work(void *arg)
{
    (void)arg;
    bench_spin(spin_iters);
}

/* ------------------------------------------------------------------------ */
/* W1: empty tasks                                                          */
/* ------------------------------------------------------------------------ */

static double tp_w1_apply(size_t n, bool no_timings)
{
    tp_pool_opts po = {.pool_size = 2, .no_timings = no_timings};
    tp_pool *pool = tp_pool_new(&po);
    if (!pool)
        exit(2);
    double t0 = bench_now();
    CHECK(tp_apply(pool, empty_task, NULL, n, NULL, NULL));
    CHECK(tp_gather_and_close(pool));
    double t = bench_now() - t0;
    tp_pool_free(pool);
    return t;
}

/* W1-call: n tasks, one tp_apply(num=1) each, the way a service submits
 * one task per request. */
static double tp_w1_call(size_t n)
{
    tp_pool_opts po = {.pool_size = 2};
    tp_pool *pool = tp_pool_new(&po);
    if (!pool)
        exit(2);
    double t0 = bench_now();
    for (size_t i = 0; i < n; i++)
        CHECK(tp_apply(pool, empty_task, NULL, 1, NULL, NULL));
    CHECK(tp_gather_and_close(pool));
    double t = bench_now() - t0;
    tp_pool_free(pool);
    return t;
}

typedef struct submitter {
    tp_pool *pool;
    size_t count;
} submitter;

static void *submit_calls(void *arg)
{
    submitter *s = arg;
    for (size_t i = 0; i < s->count; i++)
        CHECK(tp_apply(s->pool, empty_task, NULL, 1, NULL, NULL));
    return NULL;
}

/* W1-call x k: n per-call applies split between k submitting threads. */
static double tp_w1_call_from(size_t n, int k)
{
    tp_pool_opts po = {.pool_size = 2};
    tp_pool *pool = tp_pool_new(&po);
    if (!pool)
        exit(2);
    pthread_t th[8];
    submitter subs[8];
    double t0 = bench_now();
    for (int i = 0; i < k; i++) {
        subs[i] = (submitter){pool, n / (size_t)k};
        if (pthread_create(&th[i], NULL, submit_calls, &subs[i]) != 0)
            exit(2);
    }
    for (int i = 0; i < k; i++)
        pthread_join(th[i], NULL);
    CHECK(tp_gather_and_close(pool));
    double t = bench_now() - t0;
    tp_pool_free(pool);
    return t;
}

static bool pool_idle(tp_pool *pool)
{
    tp_stats st;
    tp_get_stats(pool, &st);
    return st.running + st.cancelled + st.pending == 0;
}

/* The heap's bytes in use, with its mmapped blocks (a large name index). */
static size_t heap_bytes(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

static atomic_size_t mem_ended;

static int counted_task(tp_task *task, void *arg)
{
    (void)task, (void)arg;
    atomic_fetch_add_explicit(&mem_ended, 1, memory_order_relaxed);
    return 0;
}

/* W1-mem: RSS growth over n per-call applies on a pool that keeps ended
 * tasks (never flushed) or forgets them (forget_ended). With a backlog
 * limit, the submitter waits while more than that many of its tasks have
 * not ended, as a service with bounded requests in flight does; without
 * one it submits in a tight loop, and the pending starts it piles up
 * count too (*peak: the most seen). */
static double tp_w1_mem(size_t n, bool forget, size_t *heap, size_t backlog,
                        size_t *peak)
{
    tp_pool_opts po = {.pool_size = 2, .forget_ended = forget};
    tp_pool *pool = tp_pool_new(&po);
    if (!pool)
        exit(2);
    /* Warm up threads and the allocator, then measure from there. */
    for (int i = 0; i < 1000; i++)
        CHECK(tp_apply(pool, empty_task, NULL, 1, NULL, NULL));
    while (!pool_idle(pool))
        sched_yield();
    CHECK(tp_flush(pool));
    atomic_store(&mem_ended, 0);
    double before = bench_rss_mib();
    size_t most = 0;
    for (size_t i = 0; i < n; i++) {
        CHECK(tp_apply(pool, counted_task, NULL, 1, NULL, NULL));
        size_t behind = i + 1 - atomic_load_explicit(&mem_ended,
                                                     memory_order_relaxed);
        most = behind > most ? behind : most;
        while (backlog && behind > backlog) {
            sched_yield();
            behind = i + 1 - atomic_load(&mem_ended);
        }
    }
    while (!pool_idle(pool))
        sched_yield();
    double grown = bench_rss_mib() - before;
    if (heap) /* in: the count before the pool existed; out: the growth */
        *heap = heap_bytes() - *heap;
    if (peak)
        *peak = most;
    tp_pool_free(pool);
    return grown;
}

static double tp_w_map(size_t n, tp_fn fn, void *const *args)
{
    tp_pool_opts po = {.pool_size = 2};
    tp_pool *pool = tp_pool_new(&po);
    if (!pool)
        exit(2);
    double t0 = bench_now();
    CHECK(tp_map(pool, fn, args, n, 2, NULL, NULL));
    CHECK(tp_gather_and_close(pool));
    double t = bench_now() - t0;
    tp_pool_free(pool);
    return t;
}

/* W1-mem runs first, in a fresh heap, so that RSS growth is the memory
 * the ended tasks keep, not heap left over by other workloads; the heap's
 * own count of bytes in use (mallinfo2) is printed beside it. */
static void run_w1mem(void)
{
    size_t n = cfg.w1_tasks;
    char title[128];
    series kept = {0}, heap = {0}, kept_loose = {0};
    series forgot = {0}, fheap = {0}, loose = {0};
    size_t nf = n * 10, peak = 0, peak_kept = 0;
    enum { BACKLOG = 10000 };
    /* RSS only means something in the first run: later ones reuse the
     * heap that the previous pool freed. The heap's count is exact. */
    for (int r = 0; r < (cfg.runs < 3 ? cfg.runs : 3); r++) {
        size_t h0 = heap_bytes();
        double grown = tp_w1_mem(n, false, &h0, BACKLOG, NULL);
        if (r == 0)
            add(&kept, grown * 1048576.0 / (double)n);
        add(&heap, (double)h0 / (double)n);
    }
    size_t h0 = heap_bytes();
    add(&forgot, tp_w1_mem(nf, true, &h0, BACKLOG, NULL));
    add(&fheap, (double)h0 / 1048576.0);
    /* Tight loops last: their backlog's memory stays in the heap. */
    add(&kept_loose,
        tp_w1_mem(n, false, NULL, 0, &peak_kept) * 1048576.0 / (double)n);
    add(&loose, tp_w1_mem(nf, true, NULL, 0, &peak));
    snprintf(title, sizeof title,
             "W1-mem: per-call applies, at most %d in flight unless said",
             BACKLOG);
    header(title);
    char metric[64];
    snprintf(metric, sizeof metric, "RSS B/ended (%zu)", n);
    row("kept until flush (default)", metric, &kept, 64, "<= %.0f");
    row("  same, heap bytes in use", "heap B/ended", &heap, 64, "<= %.0f");
    row("  same, tight loop", metric, &kept_loose, 0, NULL);
    snprintf(metric, sizeof metric, "RSS MiB growth (%zu)", nf);
    row("forget_ended", metric, &forgot, 8, "<= %.0f");
    row("  same, heap in use after", "heap MiB growth", &fheap, 8, "<= %.0f");
    row("  same, tight loop", metric, &loose, 0, NULL);
    printf("  (a tight loop's RSS holds its peak backlog of pending starts, "
           "32 B each in the ring: %zu and %zu tasks submitted and not yet "
           "ended at most)\n",
           peak_kept, peak);
}

static void run_w1(void)
{
    size_t n = cfg.w1_tasks;
    void **args = calloc(n, sizeof *args);
    if (!args)
        exit(2);
    series apply = {0}, map = {0}, flr = {0}, gsh = {0}, gex = {0}, uv = {0};
    series call = {0}, apply_nt = {0};
    double us = 1e6 / (double)n;
    for (int r = 0; r < cfg.runs; r++) {
        add(&call, tp_w1_call(n) * us);
        add(&apply, tp_w1_apply(n, false) * us);
        add(&apply_nt, tp_w1_apply(n, true) * us);
        add(&map, tp_w_map(n, empty_task, args) * us);
        if (cfg.no_peers)
            continue;
        add(&flr, peer_floor_run(n, empty_work, NULL) * us);
        if (peer_have_glib()) {
            add(&gsh, peer_glib_run(n, empty_work, NULL, false) * us);
            add(&gex, peer_glib_run(n, empty_work, NULL, true) * us);
        }
        if (peer_have_uv())
            add(&uv, peer_uv_run(n, empty_work, NULL) * us);
    }
    free(args);

    /* Four submitting threads, per call. */
    series call4 = {0}, flr4 = {0}, gsh4 = {0}, gex4 = {0};
    for (int r = 0; r < cfg.runs; r++) {
        add(&call4, tp_w1_call_from(n, 4) * us);
        if (cfg.no_peers)
            continue;
        add(&flr4, peer_floor_run_from(n, 4, empty_work, NULL) * us);
        if (peer_have_glib()) {
            add(&gsh4, peer_glib_run_from(n, 4, empty_work, NULL, false) * us);
            add(&gex4, peer_glib_run_from(n, 4, empty_work, NULL, true) * us);
        }
    }

    char title[128];
    snprintf(title, sizeof title,
             "W1: %zu empty tasks on 2 threads (us/task, lower is better)", n);
    header(title);
    row("taskpool tp_apply(num=1) per call", "us/task", &call, 0.25, NULL);
    row("taskpool tp_apply batch", "us/task", &apply, 0.30, NULL);
    row("  same, no_timings", "us/task", &apply_nt, 0.30, NULL);
    row("taskpool tp_map batch (conc. 2)", "us/task", &map, 0.30, NULL);
    row("floor: mutex+condvar queue", "us/task", &flr, 0, NULL);
    row("GLib GThreadPool (shared)", "us/task", &gsh, 0, NULL);
    row("GLib GThreadPool (exclusive)", "us/task", &gex, 0, NULL);
    row("libuv uv_queue_work", "us/task", &uv, 0, NULL);
    const series *peers[] = {&gsh, &gex, &uv};
    const char *names[] = {"glib-shared", "glib-excl", "libuv"};
    compare("tp_apply(num=1) per call", &call, peers, names, 3);
    compare("tp_apply batch", &apply, peers, names, 3);
    compare("tp_map batch", &map, peers, names, 3);

    snprintf(title, sizeof title,
             "W1-call x4: %zu empty tasks, 4 submitting threads, one call "
             "each (us/task)",
             n);
    header(title);
    row("taskpool tp_apply(num=1) per call", "us/task", &call4, 0, NULL);
    row("floor: mutex+condvar queue", "us/task", &flr4, 0, NULL);
    row("GLib GThreadPool (shared)", "us/task", &gsh4, 0, NULL);
    row("GLib GThreadPool (exclusive)", "us/task", &gex4, 0, NULL);
    const series *peers4[] = {&gsh4, &gex4};
    compare("tp_apply(num=1) x4", &call4, peers4, names, 2);
}

/* ------------------------------------------------------------------------ */
/* W2: many blocked tasks                                                   */
/* ------------------------------------------------------------------------ */

/* Counts tasks that reached their sleep; the last one wakes the main
 * thread (so that 10,000 tasks do not all take a lock). */
typedef struct latch {
    atomic_size_t count;
    size_t target;
    pthread_mutex_t mu;
    pthread_cond_t cv;
} latch;

static void latch_init(latch *l, size_t target)
{
    atomic_init(&l->count, 0);
    l->target = target;
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cv, NULL);
}

static void latch_destroy(latch *l)
{
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->cv);
}

static void latch_arrive(latch *l)
{
    if (atomic_fetch_add(&l->count, 1) + 1 == l->target) {
        pthread_mutex_lock(&l->mu);
        pthread_cond_broadcast(&l->cv);
        pthread_mutex_unlock(&l->mu);
    }
}

static void latch_wait(latch *l)
{
    pthread_mutex_lock(&l->mu);
    while (atomic_load(&l->count) < l->target)
        pthread_cond_wait(&l->cv, &l->mu);
    pthread_mutex_unlock(&l->mu);
}

static int sleeper_task(tp_task *task, void *arg)
{
    latch_arrive(arg);
    (void)tp_sleep(task, 3600);
    return 0;
}

/* Taskpool's default worker stack (tp_pool_opts.stack_size 0), given to
 * the pool and to the floor alike. */
#define W2_STACK (256 * 1024)

typedef struct w2_run {
    double start, rss, drss, cancel, free;
} w2_run;

/* One taskpool run of W2: n tasks blocked in tp_sleep on a default pool. */
static w2_run tp_w2(size_t n)
{
    w2_run m;
    malloc_trim(0); /* both sides start from a trimmed heap */
    double base = bench_rss_mib();
    tp_pool *pool = tp_pool_new(&(tp_pool_opts){.stack_size = W2_STACK});
    if (!pool)
        exit(2);
    latch l;
    latch_init(&l, n);
    double t0 = bench_now();
    CHECK(tp_apply(pool, sleeper_task, &l, n, NULL, NULL));
    latch_wait(&l);
    double t1 = bench_now();
    m.rss = bench_rss_mib();
    tp_cancel_all(pool);
    CHECK(tp_gather_and_close(pool));
    double t2 = bench_now();
    tp_pool_free(pool);
    m.free = bench_now() - t2;
    latch_destroy(&l);
    m.start = t1 - t0;
    m.drss = m.rss - base;
    m.cancel = t2 - t1;
    return m;
}

/* W2 and its floor (peers.c: one plain thread per task, created from the
 * calling thread, each blocked in sem_wait) in the same run, in turns
 * (taskpool first in even runs, so that the first run also sizes the
 * process's futex hash before the floor's threads block); start time and
 * RSS growth as ratios of each pair. */
static void run_w2(void)
{
    size_t n = cfg.w2_tasks;
    series start = {0}, rss = {0}, drss = {0}, cancel = {0}, freet = {0};
    series fstart = {0}, fdrss = {0}, frelease = {0}, rstart = {0}, rrss = {0};
    int runs = cfg.runs < 3 ? cfg.runs : 3; /* each run is heavy */
    for (int r = 0; r < runs; r++) {
        w2_run m = {0};
        double fs = -1, fd = 0, fr = 0;
        for (int side = 0; side < 2; side++) {
            if ((side == 0) == (r % 2 == 0)) {
                m = tp_w2(n);
            } else if (!cfg.no_peers) {
                malloc_trim(0);
                fs = peer_floor_blocked(n, W2_STACK, &fd, &fr);
            }
        }
        add(&start, m.start);
        add(&rss, m.rss);
        add(&drss, m.drss);
        add(&cancel, m.cancel);
        add(&freet, m.free);
        if (fs > 0) {
            add(&fstart, fs);
            add(&fdrss, fd);
            add(&frelease, fr);
            add(&rstart, m.start / fs);
            if (fd > 0)
                add(&rrss, m.drss / fd);
        }
    }
    char title[128];
    snprintf(title, sizeof title,
             "W2: %zu tasks blocked in tp_sleep (default pool, %d KiB "
             "stacks), the floor in the same runs",
             n, W2_STACK / 1024);
    header(title);
    row("taskpool: all running", "seconds", &start, 0, NULL);
    row("floor: 1 pthread per task", "seconds", &fstart, 0, NULL);
    row("  taskpool / floor", "start ratio", &rstart, 1.1, NULL);
    row("taskpool: VmRSS then", "MiB", &rss, 0, NULL);
    row("taskpool: VmRSS growth", "MiB", &drss, 0, NULL);
    row("floor: VmRSS growth", "MiB", &fdrss, 0, NULL);
    row("  taskpool / floor", "RSS ratio", &rrss, 1.1, NULL);
    row("taskpool: cancel_all+gather", "seconds", &cancel, 0.15, NULL);
    row("floor: release + join", "seconds", &frelease, 0, NULL);
    row("taskpool: tp_pool_free", "seconds", &freet, 0, NULL);
    printf("  VmHWM (peak of the whole process so far): %.1f MiB\n",
           bench_hwm_mib());
}

/* ------------------------------------------------------------------------ */
/* W3: ~1 us of CPU per task                                                */
/* ------------------------------------------------------------------------ */

static double serial_run(size_t n)
{
    double t0 = bench_now();
    for (size_t i = 0; i < n; i++)
        spin_work(NULL);
    return bench_now() - t0;
}

static void run_w3(void)
{
    size_t n = cfg.w3_tasks;
    void **args = calloc(n, sizeof *args);
    if (!args)
        exit(2);
    series work = {0}, map = {0}, flr = {0}, gsh = {0}, gex = {0}, uv = {0};
    series cmap = {0}, cflr = {0}, cgsh = {0}, cgex = {0}, cuv = {0};
    double per = 1e6 / (double)n;
    double c0;
#define CPU_START() (c0 = bench_cpu_seconds())
#define CPU_ADD(s) add(&(s), (bench_cpu_seconds() - c0) * per)
    for (int r = 0; r < cfg.runs; r++) {
        /* The ideal of this run: the same calls serially, on 2 cores. */
        double serial = serial_run(n);
        double ideal = serial / 2;
        add(&work, serial * per);
        CPU_START();
        add(&map, (tp_w_map(n, spin_task, args) - ideal) * per);
        CPU_ADD(cmap);
        if (cfg.no_peers)
            continue;
        CPU_START();
        add(&flr, (peer_floor_run(n, spin_work, NULL) - ideal) * per);
        CPU_ADD(cflr);
        if (peer_have_glib()) {
            CPU_START();
            add(&gsh, (peer_glib_run(n, spin_work, NULL, false) - ideal) * per);
            CPU_ADD(cgsh);
            CPU_START();
            add(&gex, (peer_glib_run(n, spin_work, NULL, true) - ideal) * per);
            CPU_ADD(cgex);
        }
        if (peer_have_uv()) {
            CPU_START();
            add(&uv, (peer_uv_run(n, spin_work, NULL) - ideal) * per);
            CPU_ADD(cuv);
        }
    }
#undef CPU_START
#undef CPU_ADD
    free(args);
    char title[160];
    snprintf(title, sizeof title,
             "W3: %zu tasks of ~1 us CPU on 2 threads (overhead us/task over "
             "serial/2)",
             n);
    header(title);
    row("work per task (serial)", "us", &work, 0, NULL);
    row("taskpool tp_map (conc. 2)", "overhead us", &map, 0.25, NULL);
    row("floor: mutex+condvar queue", "overhead us", &flr, 0, NULL);
    row("GLib GThreadPool (shared)", "overhead us", &gsh, 0, NULL);
    row("GLib GThreadPool (exclusive)", "overhead us", &gex, 0, NULL);
    row("libuv uv_queue_work", "overhead us", &uv, 0, NULL);
    const series *peers[] = {&gsh, &gex, &uv};
    const char *names[] = {"glib-shared", "glib-excl", "libuv"};
    compare("tp_map", &map, peers, names, 3);
    /* CPU time is what the wall-clock overhead hides on a loaded VM. */
    header("W3 CPU: user+system CPU per task, all threads (us/task)");
    row("taskpool tp_map (conc. 2)", "CPU us", &cmap, 0, NULL);
    row("floor: mutex+condvar queue", "CPU us", &cflr, 0, NULL);
    row("GLib GThreadPool (shared)", "CPU us", &cgsh, 0, NULL);
    row("GLib GThreadPool (exclusive)", "CPU us", &cgex, 0, NULL);
    row("libuv uv_queue_work", "CPU us", &cuv, 0, NULL);
    const series *cpeers[] = {&cgsh, &cgex, &cuv};
    compare("tp_map CPU", &cmap, cpeers, names, 3);
}

/* ------------------------------------------------------------------------ */
/* W4: cancel latency                                                       */
/* ------------------------------------------------------------------------ */

typedef struct w4 {
    int fd;          /* -1: tp_sleep; else tp_wait_fd on it */
    atomic_int tid;  /* the task's thread, once about to block */
    atomic_llong id; /* the task's id */
    double t_end;    /* when the end callback began */
    bool ended;
    pthread_mutex_t mu;
    pthread_cond_t cv;
} w4;

static int w4_task(tp_task *task, void *arg)
{
    w4 *s = arg;
    atomic_store(&s->id, (long long)tp_task_id(task));
    atomic_store(&s->tid, (int)syscall(SYS_gettid));
    if (s->fd < 0)
        (void)tp_sleep(task, 3600);
    else
        (void)tp_wait_fd(task, s->fd, POLLIN, -1);
    return 0;
}

static void w4_end(tp_pool *pool, tp_id id, void *arg)
{
    double t = bench_now();
    (void)pool;
    (void)id;
    w4 *s = arg;
    pthread_mutex_lock(&s->mu);
    s->t_end = t;
    s->ended = true;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

/* True once thread tid sleeps in the kernel (state S in its stat). */
static bool thread_sleeping(int tid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", tid);
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return false;
    ssize_t len = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (len <= 0)
        return false;
    buf[len] = '\0';
    const char *p = strrchr(buf, ')'); /* the name may hold spaces */
    return p && p[1] == ' ' && p[2] == 'S';
}

/* Latencies in microseconds of n cancels of a task blocked as fd says. */
static void cancel_latencies(int fd, size_t n, double *out)
{
    tp_pool *pool = tp_pool_new(NULL);
    if (!pool)
        exit(2);
    w4 s = {.fd = fd};
    pthread_mutex_init(&s.mu, NULL);
    pthread_cond_init(&s.cv, NULL);
    tp_opts opts = {.end_callback = w4_end, .callback_arg = &s};
    for (size_t i = 0; i < n; i++) {
        atomic_store(&s.tid, 0);
        s.ended = false;
        CHECK(tp_apply(pool, w4_task, &s, 1, &opts, NULL));
        int tid;
        while ((tid = atomic_load(&s.tid)) == 0)
            sched_yield();
        /* Cancel only once the task really blocks, not on its way in. */
        while (!thread_sleeping(tid))
            sched_yield();
        tp_id id = (tp_id)atomic_load(&s.id);
        double t0 = bench_now();
        CHECK(tp_cancel(pool, &id, 1));
        pthread_mutex_lock(&s.mu);
        while (!s.ended)
            pthread_cond_wait(&s.cv, &s.mu);
        out[i] = (s.t_end - t0) * 1e6;
        pthread_mutex_unlock(&s.mu);
        if (i % 64 == 63)
            CHECK(tp_flush(pool));
    }
    CHECK(tp_gather_and_close(pool));
    tp_pool_free(pool);
    pthread_mutex_destroy(&s.mu);
    pthread_cond_destroy(&s.cv);
}

static void run_w4(void)
{
    size_t n = cfg.w4_cancels;
    double *lat = malloc(n * sizeof *lat);
    int pfd[2];
    if (!lat || pipe(pfd) != 0)
        exit(2);
    series sp50 = {0}, sp99 = {0}, fp50 = {0}, fp99 = {0};
    int runs = cfg.runs < 3 ? cfg.runs : 3;
    for (int r = 0; r < runs; r++) {
        cancel_latencies(-1, n, lat);
        add(&sp50, bench_percentile(lat, n, 0.50));
        add(&sp99, bench_percentile(lat, n, 0.99));
        cancel_latencies(pfd[0], n, lat);
        add(&fp50, bench_percentile(lat, n, 0.50));
        add(&fp99, bench_percentile(lat, n, 0.99));
    }
    close(pfd[0]);
    close(pfd[1]);
    free(lat);
    char title[128];
    snprintf(title, sizeof title,
             "W4: tp_cancel -> end callback, %zu cancels per run (us)", n);
    header(title);
    row("blocked in tp_sleep", "p50 us", &sp50, 0, NULL);
    row("blocked in tp_sleep", "p99 us", &sp99, 100, "<= %.0f");
    row("blocked in tp_wait_fd", "p50 us", &fp50, 0, NULL);
    row("blocked in tp_wait_fd", "p99 us", &fp99, 100, "<= %.0f");
}

/* ------------------------------------------------------------------------ */
/* main                                                                     */
/* ------------------------------------------------------------------------ */

static void usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s [--quick] [--runs N] [--only W1,W2,W3,W4] "
            "[--no-peers] [--futex-slots N]\n",
            argv0);
    exit(1);
}

int main(int argc, char **argv)
{
    peer_uv_setup();
    cfg.runs = -1;
    cfg.futex_slots = -1;
    cfg.only[0] = true;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            cfg.quick = true;
        } else if (strcmp(argv[i], "--no-peers") == 0) {
            cfg.no_peers = true;
        } else if (strcmp(argv[i], "--futex-slots") == 0 && i + 1 < argc) {
            cfg.futex_slots = atol(argv[++i]);
            if (cfg.futex_slots < 0)
                usage(argv[0]);
        } else if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc) {
            cfg.runs = atoi(argv[++i]);
            if (cfg.runs < 1 || cfg.runs > MAX_RUNS)
                usage(argv[0]);
        } else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc) {
            cfg.only[0] = false;
            for (const char *p = argv[++i]; *p; p++)
                if ((*p == 'W' || *p == 'w') && p[1] >= '1' && p[1] <= '4')
                    cfg.only[p[1] - '0'] = true;
        } else {
            usage(argv[0]);
        }
    }
    if (cfg.quick) {
        cfg.w1_tasks = 100000;
        cfg.w2_tasks = 2000;
        cfg.w3_tasks = 20000;
        cfg.w4_cancels = 200;
        if (cfg.runs < 0)
            cfg.runs = 2;
    } else {
        cfg.w1_tasks = 1000000;
        cfg.w2_tasks = 10000;
        cfg.w3_tasks = 200000;
        cfg.w4_cancels = 1000;
        if (cfg.runs < 0)
            cfg.runs = 5;
    }

    if (cfg.futex_slots >= 0) {
        /* PR_FUTEX_HASH, PR_FUTEX_HASH_SET_SLOTS; not in older headers. */
        int rc = prctl(78, 1, (unsigned long)cfg.futex_slots, 0, 0);
        printf("diagnostic: private futex hash set to %ld slots: %s\n",
               cfg.futex_slots, rc == 0 ? "ok" : strerror(errno));
    }
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    printf("taskpool_bench%s: %ld CPUs online, %d runs; medians "
           "[min .. max]\n",
           cfg.quick ? " --quick (indicative only)" : "", ncpu, cfg.runs);
    printf("peers: floor yes, GLib %s, libuv %s\n",
           peer_have_glib() ? "yes" : "no (not built)",
           peer_have_uv() ? "yes" : "no (not built)");
    fflush(stdout);

    if (selected(1)) {
        run_w1mem();
        fflush(stdout);
    }
    /* W2 next, so that its RSS is not inflated by what other workloads
     * allocated. */
    if (selected(2)) {
        run_w2();
        fflush(stdout);
    }
    if (selected(4)) {
        run_w4();
        fflush(stdout);
    }
    if (selected(1)) {
        run_w1();
        fflush(stdout);
    }
    if (selected(3)) {
        spin_iters = bench_spin_calibrate();
        printf("\n(calibrated: %llu spin iterations per us)\n",
               (unsigned long long)spin_iters);
        run_w3();
        fflush(stdout);
    }
    return 0;
}
