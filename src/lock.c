/* SPDX-License-Identifier: MIT */
/*
 * The pool lock and what waits with it: the one file every other engine
 * file may call and that calls none of them but log.c (a leaf of the
 * engine).
 *
 * DESIGN
 *
 * One mutex per pool, pool->mu, guards all of the pool's state: its groups
 * and their name index, the FIFO of pending starts (sem.c), the live tasks
 * and the counters, and the worker lists. It is held only for bookkeeping:
 * no user code (task, iterator, callback, log handler) and no blocking
 * system call runs under it; thread creation and joins happen with it
 * released. Lock order: pool->mu, then a task's task->wmu (wait.c), then
 * the user's mutex only ever *tried* by a canceller; the log turn lock
 * (log.c) and a queue's lock are leaves.
 *
 * Outside the lock, and each with one writer or a lock-free protocol of
 * its own: the ring of per-call submissions (ring.c) and the flags a
 * submitter reads to decide who sees its entry (inbox.c, which explains
 * them), the flag a spinning worker watches (sem.c), and each worker's
 * timing histograms (hist.c). Every API call enters the pool through
 * tp__enter (inbox.c: this lock, then the ring's new entries seen), so the
 * lock's state always includes every submission that returned before.
 *
 * Taking the lock (tp__lock): try it; if it is held, spin for it up to
 * SPIN_NS, unless this thread found it held the last SATURATED times it
 * took it: then sleep in pthread_mutex_lock at once. A worker that ended
 * a task of a microsecond finds the other worker's critical section under
 * way now and then, and spinning for that fraction of a microsecond is
 * cheaper than a sleep and a wake-up (a sleeping waiter added 0.2 us per
 * task to W3). But while every acquisition is contended (empty tasks, a
 * per-call stream), spinning only hands the lock back and forth between
 * the cores, each critical section pulling the pool's lines from the
 * other, and takes the CPU a submitter needs; a sleeping waiter lets the
 * holder run alone for a while. glibc's adaptive mutex spins in both
 * cases (W1 batch 0.13 us/task against 0.11, tp_map 0.22 against 0.17,
 * W1-call x4 0.29 against 0.25 on the project VM).
 *
 * Debug builds keep, per thread, which pool's lock it holds, so that every
 * "caller holds pool->mu" helper asserts it (TP_ASSERT_HELD).
 *
 * Messages about rare errors found under the lock are stored and written
 * by tp__unlock once the lock is released (tp__log_locked), so that the
 * log handler never runs under the lock.
 */
#include "internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#ifndef NDEBUG
static _Thread_local const tp_pool *held_pool;
static _Thread_local int held_depth;
bool tp__held(tp_pool *pool)
{
    return held_pool == pool && held_depth > 0;
}
#endif

enum { SPIN_NS = 2000, SATURATED = 3 };

/* Tells the CPU that this is a spin-wait loop. */
static void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Consecutive acquisitions by this thread that found a lock held: per
 * thread, not per pool (a worker serves one pool; a thread calling into
 * several only blurs a hint). */
static _Thread_local unsigned contended;

static bool spin_for(pthread_mutex_t *mu)
{
    uint64_t deadline = 0;
    for (unsigned i = 1;; i++) {
        for (int k = 0; k < 4; k++)
            cpu_relax();
        if (pthread_mutex_trylock(mu) == 0)
            return true;
        if (i % 8 == 0) {
            uint64_t now = tp__now_ns();
            if (!deadline)
                deadline = now + SPIN_NS;
            else if (now > deadline)
                return false;
        }
    }
}

bool tp__lock_saturated(void)
{
    return contended >= SATURATED;
}

void tp__lock(tp_pool *pool)
{
    if (pthread_mutex_trylock(&pool->mu) == 0) {
        contended = 0;
    } else {
        bool got = contended < SATURATED && spin_for(&pool->mu);
        contended += contended < SATURATED;
        if (!got)
            pthread_mutex_lock(&pool->mu);
    }
#ifndef NDEBUG
    held_pool = pool;
    held_depth++;
#endif
}

void tp__unlock(tp_pool *pool)
{
#ifndef NDEBUG
    if (--held_depth == 0)
        held_pool = NULL;
#endif
    int level = pool->deferred_level;
    char message[sizeof pool->deferred_log];
    if (level >= 0) {
        memcpy(message, pool->deferred_log, sizeof message);
        pool->deferred_level = -1;
    }
    pthread_mutex_unlock(&pool->mu);
    if (level >= 0)
        tp__log_write((tp_log_level)level, "%s", message);
}

void tp__log_locked(tp_pool *pool, tp_log_level level, const char *fmt, ...)
{
    TP_ASSERT_HELD(pool);
    if (!tp__log_on(level))
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pool->deferred_log, sizeof pool->deferred_log, fmt, ap);
    va_end(ap);
    pool->deferred_level = (int)level;
}

void tp__changed(tp_pool *pool)
{
    TP_ASSERT_HELD(pool);
    if (pool->waiters) {
        pool->wakeups++;
        pthread_cond_broadcast(&pool->changed);
    }
}

bool tp__wait(tp_pool *pool, pthread_cond_t *cv,
              const struct timespec *deadline)
{
    TP_ASSERT_HELD(pool);
    if (deadline) {
        /* A deadline already passed (a timeout of 0 polls) needs no sleep:
         * the kernel would still switch away to learn it. */
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (!tp__before(&now, deadline))
            return false;
    }
    int rc = 0;
#ifndef NDEBUG
    int depth = held_depth;
    held_depth = 0;
    held_pool = NULL;
#endif
    if (deadline)
        rc = pthread_cond_timedwait(cv, &pool->mu, deadline);
    else
        pthread_cond_wait(cv, &pool->mu);
#ifndef NDEBUG
    held_pool = pool;
    held_depth = depth;
#endif
    return rc != ETIMEDOUT;
}

bool tp__wait_changed(tp_pool *pool, const struct timespec *deadline)
{
    pool->waiters++;
    bool ok = tp__wait(pool, &pool->changed, deadline);
    pool->waiters--;
    return ok;
}

int tp__cond_init(pthread_cond_t *cv)
{
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(cv, &attr);
    pthread_condattr_destroy(&attr);
    return rc;
}
