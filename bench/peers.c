/* SPDX-License-Identifier: MIT */
/* The peers the benchmarks compare taskpool with, each running n calls of
 * the same work function on 2 threads: a plain mutex + condition variable
 * queue (the floor: the least any thread pool can do), GLib's GThreadPool
 * and libuv's uv_queue_work; and W2's floor, one plain thread per blocked
 * task. GLib and libuv are optional (HAVE_GLIB,
 * HAVE_UV, set by bench/CMakeLists.txt when pkg-config finds them). */
#include "bench.h"

#include <limits.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdlib.h>

#ifdef HAVE_GLIB
#include <glib.h>
#endif
#ifdef HAVE_UV
#include <uv.h>
#endif

/* ---- the floor ---- */

/* The queue holds n slots, so a push never grows it; the mutex guards
 * head, tail, waiting and stop. Workers count completions with an atomic
 * and the last one wakes the submitter. */
typedef struct floor_q {
    pthread_mutex_t mu;
    pthread_cond_t work_cv, done_cv;
    void **slots;
    size_t head, tail;
    int waiting; /* workers blocked on work_cv */
    bool stop;
    atomic_size_t remaining;
    bench_work_fn work;
} floor_q;

static void *floor_worker(void *arg)
{
    floor_q *q = arg;
    for (;;) {
        pthread_mutex_lock(&q->mu);
        while (q->head == q->tail && !q->stop) {
            q->waiting++;
            pthread_cond_wait(&q->work_cv, &q->mu);
            q->waiting--;
        }
        if (q->head == q->tail) {
            pthread_mutex_unlock(&q->mu);
            return NULL;
        }
        void *job = q->slots[q->head++];
        pthread_mutex_unlock(&q->mu);
        q->work(job);
        if (atomic_fetch_sub(&q->remaining, 1) == 1) {
            pthread_mutex_lock(&q->mu);
            pthread_cond_signal(&q->done_cv);
            pthread_mutex_unlock(&q->mu);
        }
    }
}

typedef struct floor_sub {
    floor_q *q;
    size_t count;
    void *arg;
} floor_sub;

static void floor_push(floor_q *q, void *job)
{
    pthread_mutex_lock(&q->mu);
    q->slots[q->tail++] = job;
    if (q->waiting)
        pthread_cond_signal(&q->work_cv);
    pthread_mutex_unlock(&q->mu);
}

static void *floor_submitter(void *arg)
{
    floor_sub *s = arg;
    for (size_t i = 0; i < s->count; i++)
        floor_push(s->q, s->arg);
    return NULL;
}

double peer_floor_run_from(size_t n, int submitters, bench_work_fn work,
                           void *arg)
{
    floor_q q = {.work = work};
    q.slots = malloc(n * sizeof *q.slots);
    if (!q.slots || submitters < 1 || submitters > 64)
        return -1;
    pthread_mutex_init(&q.mu, NULL);
    pthread_cond_init(&q.work_cv, NULL);
    pthread_cond_init(&q.done_cv, NULL);
    atomic_init(&q.remaining, n);
    double t0 = bench_now();
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        if (pthread_create(&th[i], NULL, floor_worker, &q) != 0)
            abort();
    if (submitters == 1) {
        for (size_t i = 0; i < n; i++)
            floor_push(&q, arg);
    } else {
        pthread_t sub[64];
        floor_sub subs[64];
        for (int i = 0; i < submitters; i++) {
            subs[i] = (floor_sub){&q, n / (size_t)submitters, arg};
            if (i == 0)
                subs[i].count += n % (size_t)submitters;
            if (pthread_create(&sub[i], NULL, floor_submitter, &subs[i]) != 0)
                abort();
        }
        for (int i = 0; i < submitters; i++)
            pthread_join(sub[i], NULL);
    }
    pthread_mutex_lock(&q.mu);
    while (atomic_load(&q.remaining) > 0)
        pthread_cond_wait(&q.done_cv, &q.mu);
    double t = bench_now() - t0;
    q.stop = true;
    pthread_cond_broadcast(&q.work_cv);
    pthread_mutex_unlock(&q.mu);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    pthread_mutex_destroy(&q.mu);
    pthread_cond_destroy(&q.work_cv);
    pthread_cond_destroy(&q.done_cv);
    free(q.slots);
    return t;
}

double peer_floor_run(size_t n, bench_work_fn work, void *arg)
{
    return peer_floor_run_from(n, 1, work, arg);
}

/* ---- W2's floor: one plain thread per blocked task ---- */

/* Each thread counts itself in (the last one wakes the creator) and blocks
 * in sem_wait until released: one futex wait, no shared lock. */
typedef struct blocked_floor {
    sem_t release, all_in;
    atomic_size_t in;
    size_t n;
} blocked_floor;

static void *blocked_thread(void *arg)
{
    blocked_floor *f = arg;
    if (atomic_fetch_add(&f->in, 1) + 1 == f->n)
        sem_post(&f->all_in);
    while (sem_wait(&f->release) != 0)
        ; /* EINTR */
    return NULL;
}

double peer_floor_blocked(size_t n, size_t stack_size, double *rss_growth_mib,
                          double *release_seconds)
{
    blocked_floor f = {.n = n};
    atomic_init(&f.in, 0);
    pthread_t *th = malloc(n * sizeof *th);
    pthread_attr_t attr;
    if (!th || n == 0 || sem_init(&f.release, 0, 0) != 0 ||
        sem_init(&f.all_in, 0, 0) != 0 || pthread_attr_init(&attr) != 0) {
        free(th);
        return -1;
    }
    if (stack_size < (size_t)PTHREAD_STACK_MIN)
        stack_size = PTHREAD_STACK_MIN;
    pthread_attr_setstacksize(&attr, stack_size);
    double base = bench_rss_mib();
    double t0 = bench_now();
    for (size_t i = 0; i < n; i++)
        if (pthread_create(&th[i], &attr, blocked_thread, &f) != 0)
            abort();
    while (sem_wait(&f.all_in) != 0)
        ;
    double t = bench_now() - t0;
    *rss_growth_mib = bench_rss_mib() - base;
    double t1 = bench_now();
    for (size_t i = 0; i < n; i++)
        sem_post(&f.release);
    for (size_t i = 0; i < n; i++)
        pthread_join(th[i], NULL);
    *release_seconds = bench_now() - t1;
    pthread_attr_destroy(&attr);
    sem_destroy(&f.release);
    sem_destroy(&f.all_in);
    free(th);
    return t;
}

/* ---- GLib ---- */

#ifdef HAVE_GLIB
static void glib_func(gpointer data, gpointer user_data)
{
    ((bench_work_fn)user_data)(data);
}
#endif

bool peer_have_glib(void)
{
#ifdef HAVE_GLIB
    return true;
#else
    return false;
#endif
}

#ifdef HAVE_GLIB
typedef struct glib_sub {
    GThreadPool *pool;
    size_t count;
    void *data;
} glib_sub;

static void *glib_submitter(void *arg)
{
    glib_sub *s = arg;
    for (size_t i = 0; i < s->count; i++)
        g_thread_pool_push(s->pool, s->data, NULL);
    return NULL;
}
#endif

double peer_glib_run_from(size_t n, int submitters, bench_work_fn work,
                          void *arg, bool exclusive)
{
#ifdef HAVE_GLIB
    /* GThreadPool refuses NULL data. */
    static char nonnull;
    void *data = arg ? arg : &nonnull;
    /* A function pointer travels as user_data; POSIX allows the cast. */
    gpointer ud;
    _Static_assert(sizeof ud == sizeof work, "function pointer size");
    __builtin_memcpy(&ud, &work, sizeof ud);
    if (submitters < 1 || submitters > 64)
        return -1;
    double t0 = bench_now();
    GThreadPool *pool = g_thread_pool_new(glib_func, ud, 2, exclusive, NULL);
    if (!pool)
        return -1;
    if (submitters == 1) {
        for (size_t i = 0; i < n; i++)
            g_thread_pool_push(pool, data, NULL);
    } else {
        pthread_t sub[64];
        glib_sub subs[64];
        for (int i = 0; i < submitters; i++) {
            subs[i] = (glib_sub){pool, n / (size_t)submitters, data};
            if (i == 0)
                subs[i].count += n % (size_t)submitters;
            if (pthread_create(&sub[i], NULL, glib_submitter, &subs[i]) != 0)
                abort();
        }
        for (int i = 0; i < submitters; i++)
            pthread_join(sub[i], NULL);
    }
    g_thread_pool_free(pool, FALSE, TRUE); /* waits for every task */
    return bench_now() - t0;
#else
    (void)n;
    (void)submitters;
    (void)work;
    (void)arg;
    (void)exclusive;
    return -1;
#endif
}

double peer_glib_run(size_t n, bench_work_fn work, void *arg, bool exclusive)
{
    return peer_glib_run_from(n, 1, work, arg, exclusive);
}

/* ---- libuv ---- */

#ifdef HAVE_UV
typedef struct uv_ctx {
    bench_work_fn work;
    void *arg;
} uv_ctx;

static void uv_work(uv_work_t *req)
{
    uv_ctx *c = req->data;
    c->work(c->arg);
}

static void uv_after(uv_work_t *req, int status)
{
    (void)req;
    (void)status;
}
#endif

bool peer_have_uv(void)
{
#ifdef HAVE_UV
    return true;
#else
    return false;
#endif
}

void peer_uv_setup(void)
{
#ifdef HAVE_UV
    setenv("UV_THREADPOOL_SIZE", "2", 1);
#endif
}

double peer_uv_run(size_t n, bench_work_fn work, void *arg)
{
#ifdef HAVE_UV
    uv_ctx c = {work, arg};
    uv_work_t *reqs = malloc(n * sizeof *reqs);
    if (!reqs)
        return -1;
    uv_loop_t loop;
    if (uv_loop_init(&loop) != 0) {
        free(reqs);
        return -1;
    }
    double t0 = bench_now();
    for (size_t i = 0; i < n; i++) {
        reqs[i].data = &c;
        if (uv_queue_work(&loop, &reqs[i], uv_work, uv_after) != 0)
            abort();
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    double t = bench_now() - t0;
    uv_loop_close(&loop);
    free(reqs);
    return t;
#else
    (void)n;
    (void)work;
    (void)arg;
    return -1;
#endif
}
