/* SPDX-License-Identifier: MIT */
/*
 * Worker threads: claiming starts, running tasks, ending them, parking and
 * retiring. Locking as in pool.c: a worker holds pool->mu only between
 * running things.
 *
 * A worker loops: claim the head of the pool FIFO (if the pool has room),
 * run the task without the lock, then under the lock record its end and
 * claim the next start in the same critical section. With nothing to claim
 * it parks on its own condition variable on the pool's idle stack (most
 * recently parked first, so warm threads are reused) and retires after the
 * idle timeout. A worker that finds the lock saturated while the others
 * keep up stands by for a moment instead of claiming (stand_by).
 * tp__dispatch wakes parked workers, or creates threads, for
 * starts that have room and no worker heading for them (pool->waking
 * counts workers woken or created but not yet back at the FIFO); new
 * workers create further ones, so creation fans out off the caller.
 *
 * A retiring worker becomes pool->zombie and joins the previous zombie, so
 * at most one exited thread awaits a join; tp_pool_free joins the last.
 */
#include "internal.h"

#include <inttypes.h>
#include <limits.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <unistd.h>

_Thread_local tp__worker *tp__self;
atomic_int tp__fail_thread_create;
void (*tp__create_hook)(tp_pool *pool);
void (*tp__spin_hook)(void);
atomic_int tp__force_standby;

static void worker_free(tp__worker *w)
{
    free(w->rec);
    pthread_cond_destroy(&w->park);
    pthread_cond_destroy(&w->task.wcv);
    pthread_mutex_destroy(&w->task.wmu);
    if (w->task.efd >= 0)
        close(w->task.efd);
    free(w);
}

static void join_free(tp__worker *w)
{
    if (w) {
        pthread_join(w->thread, NULL);
        worker_free(w);
    }
}

void tp__reap(tp_pool *pool)
{
    join_free(pool->zombie);
    pool->zombie = NULL;
}

static void *worker_main(void *arg);

/* Since Linux 6.16 a process starts with a small private futex hash, sized
 * by its CPU count; with thousands of threads blocked in futexes every
 * wake-up walks long chains (cancelling 10,000 sleeping tasks took 4-6
 * times longer). The first time a pool grows past 256 threads, ask for a
 * larger hash for the process. Older kernels refuse the call: harmless. */
static void grow_futex_hash(void)
{
    enum { PR_FUTEX_HASH_ = 78, SET_SLOTS = 1, SLOTS = 16384 };
    static atomic_bool done;
    if (!atomic_exchange(&done, true))
        (void)prctl(PR_FUTEX_HASH_, SET_SLOTS, SLOTS, 0, 0);
}

/* Creates a worker thread, which starts counted in threads and waking.
 * Called without the lock. */
static int spawn_thread(tp_pool *pool)
{
    int fail = atomic_load(&tp__fail_thread_create);
    while (fail > 0)
        if (atomic_compare_exchange_weak(&tp__fail_thread_create, &fail,
                                         fail - 1))
            return TP_ESYS;
    tp__worker *w = calloc(1, sizeof *w);
    if (w && !(w->rec = tp__rec_full_new())) {
        free(w);
        w = NULL;
    }
    if (!w)
        return TP_ENOMEM;
    w->pool = pool;
    w->wake = true;
    tp__list_init(&w->idle_node);
    tp__list_init(&w->task.live_node);
    tp__list_init(&w->task.group_node);
    w->task.pool = pool;
    w->task.worker = w;
    w->task.efd = -1;
    pthread_mutex_init(&w->task.wmu, NULL);
    tp__cond_init(&w->task.wcv);
    tp__cond_init(&w->park);

    pthread_attr_t attr;
    pthread_attr_init(&attr);
    size_t stack = pool->stack_size;
    if (stack < (size_t)PTHREAD_STACK_MIN)
        stack = PTHREAD_STACK_MIN;
    pthread_attr_setstacksize(&attr, stack);
    pthread_t thread;
    int rc = pthread_create(&thread, &attr, worker_main, w);
    pthread_attr_destroy(&attr);
    if (rc) {
        worker_free(w);
        return TP_ESYS;
    }
    return TP_OK;
}

int tp__dispatch(tp_pool *pool)
{
    TP_ASSERT_HELD(pool);
    /* Per-call pushes count among the starts to find workers for: a push
     * onto a full pool was left to the worker that frees a slot, and that
     * worker dispatches here before its end callback (end_task). */
    tp__inbox_drain(pool, false);
    /* Thread creation fans out: a caller creates at most one thread, and
     * every worker that claims a start creates up to two more while starts
     * still lack a worker. So no API call spends long creating threads.
     * At most one creation per CPU runs at a time: more only contend for
     * the kernel's mmap lock and glibc's stack cache (W2 started 10,000
     * threads 1.4-1.8 times slower than one thread creating them all).
     * A thread that finds them all busy hands its creations over
     * (pool->owed), and a worker that used up its own takes one of those
     * before it stops, so the total stays what the fan-out gives (each
     * new worker dispatches again when it claims its start). */
    bool from_worker = tp__self && tp__self->pool == pool;
    int creations = from_worker ? 2 : 1;
    int err = TP_OK;
    while (!pool->freeing) {
        size_t room = tp__sem_room(pool);
        size_t want = room < pool->queued_total ? room : pool->queued_total;
        if (want <= pool->waking) {
            pool->owed = 0; /* nothing lacks a worker */
            break;
        }
        tp__list *idle = tp__list_first(&pool->idle);
        if (idle) {
            tp__worker *w = tp__container(idle, tp__worker, idle_node);
            tp__list_remove(idle);
            pool->n_idle--;
            w->wake = true;
            pool->waking++;
            pthread_cond_signal(&w->park);
            continue;
        }
        if (creations == 0)
            break;
        if (pool->creating >= pool->spin_threads / 4) {
            pool->owed += (size_t)creations;
            break;
        }
        creations--;
        /* Every thread may hold a live task: the id map must have room
         * for all of them before the thread exists, so that claiming a
         * start never allocates there. */
        if (tp__idmap_reserve(&pool->live, pool->threads + 1)) {
            err = TP_ENOMEM;
            break;
        }
        pool->waking++;
        if (++pool->threads == 257)
            grow_futex_hash();
        tp__worker *zombie = pool->zombie;
        pool->zombie = NULL;
        pool->creating++;
        tp__unlock(pool);
        join_free(zombie);
        if (tp__create_hook)
            tp__create_hook(pool);
        int rc = spawn_thread(pool);
        tp__lock(pool);
        pool->creating--;
        if (rc) {
            pool->waking--;
            pool->threads--;
            tp__changed(pool);
            err = rc;
            break;
        }
        if (creations == 0 && pool->owed && from_worker) {
            pool->owed--;
            creations = 1;
        }
    }
    return err;
}

/* Starts the task on worker w: gives it the next id and makes it live.
 * The claim reserved everything this needs (tp__group_reserve). */
static tp_task *begin(tp_pool *pool, tp__worker *w, tp__group *g, void *arg,
                      uint64_t admitted_ns)
{
    TP_ASSERT_HELD(pool);
    tp_task *t = &w->task;
    t->admitted_ns = admitted_ns;
    t->id = pool->next_id++;
    t->group = g;
    t->arg = arg;
    t->state = TP__RUNNING;
    t->log_ticket = tp__logq_turn(&pool->logq, TP_LOG_INFO);
    atomic_store_explicit(&t->cancelled, false, memory_order_relaxed);
    tp__idmap_put(&pool->live, t->id, t);
    tp__list_push_back(&pool->tasks, &t->live_node);
    tp__list_push_back(&g->tasks, &t->group_node);
    pool->n_running++;
    pool->total_started++;
    g->live++;
    g->refs++;
    tp__group_add_id(g, t->id);
    return t;
}

/* Takes the next argument of an iterator group for a claimed start. Returns
 * true with *arg set, or false with the claim undone. May unlock. */
static bool iter_fetch(tp_pool *pool, tp__group *g, void **arg)
{
    TP_ASSERT_HELD(pool);
    g->from.iter.claims++;
    g->refs++;
    while (g->from.iter.busy && !g->from.iter.over)
        tp__wait_changed(pool, NULL);
    int rc = 0;
    bool got = false, done = false;
    if (!g->from.iter.over) {
        g->from.iter.busy = true;
        tp__unlock(pool);
        rc = g->from.iter.it.next(g->from.iter.it.state, arg);
        tp__lock(pool);
        g->from.iter.busy = false;
        got = rc == 1 && !g->from.iter.over;
        if (rc != 1) {
            g->from.iter.over = true;
            tp__fifo_remove_group(pool, g);
        }
        done = g->from.iter.over && !g->from.iter.done_called;
        g->from.iter.done_called |= done;
        tp__changed(pool);
    }
    if (!got) {
        tp__sem_release(pool);
        tp__sem_publish(pool);
        g->active--;
        /* Still counted in claims, so the group stays pending (and gather
         * waits) until these calls are done. */
        if (rc == 1 || rc < 0 || done) {
            tp__unlock(pool);
            if (rc < 0 && tp__log_on(TP_LOG_ERROR)) {
                char name[TP_NAME_MAX];
                tp__group_format(g, name);
                tp__log_write(TP_LOG_ERROR,
                              "%s: the iterator of %s failed (%d)", pool->name,
                              name, rc);
            }
            if (rc == 1 && g->discard)
                g->discard(*arg, g->cb_arg);
            if (done && g->from.iter.it.done)
                g->from.iter.it.done(g->from.iter.it.state);
            tp__lock(pool);
        }
    }
    g->from.iter.claims--;
    if (!got) {
        tp__group_retire_if_empty(pool, g);
        tp__changed(pool);
    }
    return got;
}

/* Claims the start at the head of the FIFO if the pool has room and starts
 * it as a task of w. NULL if there is nothing to claim, or (with *nomem
 * set) if the memory the start needs cannot be had now: then nothing was
 * claimed and the start waits at the head of the FIFO for a retry. May
 * unlock (for an iterator's next): then *clock_ns, the caller's last clock
 * reading (see run()), is stale and set to 0. */
static tp_task *claim(tp_pool *pool, tp__worker *w, bool *nomem,
                      uint64_t *clock_ns)
{
    TP_ASSERT_HELD(pool);
    for (;;) {
        tp__inbox_drain(pool, false);
        tp__run *run;
        if (tp__fifo_next(pool, &run)) {
            /* A per-call submission: its group is made now. */
            uint64_t admitted;
            tp__group *g = tp__inbox_claim(pool, &admitted, &w->rec);
            if (!g) {
                *nomem = true;
                return NULL;
            }
            pool->pending_args--;
            return begin(pool, w, g, tp__group_arg(g, g->next_arg++), admitted);
        }
        /* A slot this worker freed shows now; a submitter that saw the
         * pool full until then left its push to us. */
        if (!run && tp__sem_publish(pool) && tp__inbox_waiting(pool))
            continue;
        if (!run)
            return NULL;
        tp__group *g = run->group;
        if (!tp__group_reserve(g, run->count == 1)) {
            *nomem = true;
            return NULL;
        }
        uint64_t admitted = run->admitted_ns; /* run may go in take */
        tp__fifo_take(pool, run);
        if (g->src != TP__SRC_ITER) {
            pool->pending_args--;
            return begin(pool, w, g, tp__group_arg(g, g->next_arg++), admitted);
        }
        void *arg = NULL;
        *clock_ns = 0;
        bool got = iter_fetch(pool, g, &arg);
        tp_task *t = got ? begin(pool, w, g, arg, admitted) : NULL;
        tp__group_unref(pool, g);
        if (t)
            return t;
    }
}

/* Writes a task message in its turn (see tp__logq). */
static void log_in_turn(tp_pool *pool, uint64_t turn, tp_log_level level,
                        const char *what, tp_id id)
{
    tp__logq_wait(&pool->logq, turn);
    tp__log(level, "%s %s_Task-%" PRId64 "%s", what, pool->name, id,
            strcmp(what, "Cancelling") == 0 ? " ..." : "");
    tp__logq_done(&pool->logq, turn);
}

/* Runs t; clock_ns is the worker's last clock reading if nothing ran
 * since (the end of its previous task, claimed right after), or 0. */
static int run(tp_pool *pool, tp_task *t, uint64_t clock_ns)
{
    /* Timings read the clock unlocked. The last reading serves only if
     * the start was admitted before it: a start admitted after the
     * previous task's end (a map's next argument, admitted as that task
     * was unlived; a spawn that took the lock first) would otherwise wait
     * a negative time, which wraps in tp__timing_add. */
    if (pool->timings_on)
        t->started_ns =
            clock_ns && clock_ns >= t->admitted_ns ? clock_ns : tp__now_ns();
    if (t->log_ticket != UINT64_MAX)
        log_in_turn(pool, t->log_ticket, TP_LOG_INFO, "Started", t->id);
    if (atomic_load(&t->cancelled))
        return 0; /* cancelled before it started: never called */
    tp__group *g = t->group;
    int rc = 0;
    tp__current = t;
    switch (g->call) {
    case TP__CALL_FN:
        rc = g->f.fn(t, t->arg);
        break;
    case TP__CALL_STAR: {
        const tp_args *a = t->arg;
        rc = g->f.star(t, a->argc, a->argv);
        break;
    }
    case TP__CALL_KW:
        rc = g->f.kw(t, t->arg);
        break;
    }
    tp__current = NULL;
    return rc;
}

/* t's function returned rc: t ends now, counted with its failure (in
 * the same critical section, so totals never show more failed tasks than
 * ended ones). */
static void mark_ended(tp_pool *pool, tp_task *t, int rc)
{
    pool->total_failed += rc != 0;
    if (t->state == TP__CANCELLED)
        pool->n_cancelled--;
    else
        pool->n_running--;
    if (!pool->forget_ended)
        pool->n_ended++;
    pool->total_ended++;
    t->state = TP__ENDED;
}

/* Ends t, whose function returned rc, in the reference's order: a task
 * that was not cancelled has ended at once; a cancelled one logs
 * "Cancelling"/"Cancelled" and runs its cancel callback, then ends. Then
 * "Ended" is logged (its turn taken as the slot is freed, so before any
 * Started that the slot allows) and the end callback runs. Callbacks and
 * logging run unlocked. */
static void end_task(tp_pool *pool, tp_task *t, int rc)
{
    TP_ASSERT_HELD(pool);
    tp__group *g = t->group;
    if (t->state == TP__CANCELLED) {
        uint64_t turn = tp__logq_turn(&pool->logq, TP_LOG_DEBUG);
        if (turn != UINT64_MAX || g->cancel_cb) {
            tp__unlock(pool);
            if (turn != UINT64_MAX) {
                tp__logq_wait(&pool->logq, turn);
                tp__log(TP_LOG_DEBUG, "Cancelling %s_Task-%" PRId64 " ...",
                        pool->name, t->id);
                tp__log(TP_LOG_DEBUG, "Cancelled %s_Task-%" PRId64, pool->name,
                        t->id);
                tp__logq_done(&pool->logq, turn);
            }
            if (g->cancel_cb)
                g->cancel_cb(pool, t->id, g->cb_arg);
            tp__lock(pool);
        }
    }
    mark_ended(pool, t, rc);
    tp__sem_release(pool);
    uint64_t turn = tp__logq_turn(&pool->logq, TP_LOG_INFO);
    if (turn == UINT64_MAX && !g->end_cb)
        return;
    /* Let another worker use the slot during the callback. */
    tp__sem_publish(pool);
    if (g->end_cb)
        tp__dispatch(pool);
    tp__unlock(pool);
    if (turn != UINT64_MAX)
        log_in_turn(pool, turn, TP_LOG_INFO, "Ended", t->id);
    if (g->end_cb)
        g->end_cb(pool, t->id, g->cb_arg);
    tp__lock(pool);
}

/* Forgets t as a live task once its callbacks returned: its group may
 * admit its next start, and a discard owed to the group may be due. */
static void unlive_task(tp_pool *pool, tp_task *t)
{
    TP_ASSERT_HELD(pool);
    tp__group *g = t->group;
    /* Pins come only with a cancel of a running task, and t stopped
     * running when its function returned; wait for the wakes already
     * promised to it (rare: a canceller between marking and waking), so
     * that none lands on the worker's next task. t stays live meanwhile:
     * a flush or gather that took the lock in this window saw it gone
     * from the live tasks with its id still in its group, and counted it
     * as an ended task the pool kept (num_ended wrapped below zero under
     * forget_ended; tests/test_percall.c). */
    if (atomic_load_explicit(&t->worker->pins, memory_order_acquire)) {
        tp__sem_publish(pool); /* before unlocking: see tp__sem_release */
        tp__unlock(pool);
        while (atomic_load_explicit(&t->worker->pins, memory_order_acquire))
            sched_yield();
        tp__lock(pool);
    }
    tp__idmap_del(&pool->live, t->id);
    tp__list_remove(&t->live_node);
    tp__list_remove(&t->group_node);
    if (t->efd >= 0) { /* made by this thread, in tp_cancel_fd */
        pthread_mutex_lock(&t->wmu);
        if (t->efd_signalled) {
            uint64_t count;
            ssize_t n = read(t->efd, &count, sizeof count);
            (void)n;
            t->efd_signalled = false;
        }
        pthread_mutex_unlock(&t->wmu);
    }
    g->live--;
    g->active--;
    /* The per-call submissions that returned before this end come before
     * the start it admits (a per-call group admits none). */
    if (tp__group_admits(g))
        tp__inbox_drain(pool, false);
    tp__group_admit(pool, g);
    tp__group_settle(pool, g);
    if (pool->forget_ended) {
        tp__group_del_id(g, t->id);
        tp__group_retire_if_empty(pool, g);
    }
    /* A finished per-call group that only the pool's lists still hold
     * shrinks to its name and id. */
    bool only_listed = tp__list_linked(&g->node) && g->refs == 2;
    t->group = NULL;
    tp__group *rec = tp__group_unref_record(pool, g); /* forgotten */
    if (only_listed)
        rec = tp__group_compact(pool, g);
    /* Its record is the worker's for its next per-call group. */
    t->worker->garbage = tp__rec_full_put(pool, rec, &t->worker->rec);
    /* Only these ends can satisfy a waiter (flush, gather, free): a
     * gather cannot be while starts wait in the FIFO, and waking it after
     * every task of a pool with one worker made it contend for the lock
     * once per task. */
    if ((pool->live.len == 0 && pool->queued_total == 0) || t->flush_wait) {
        t->flush_wait = false;
        tp__changed(pool);
    }
}

/* Before parking, one worker at a time spins for up to SPIN_NS watching
 * pool->claimable without the lock: a service that submits one task per
 * call then finds this worker awake (it counts in pool->waking, so no
 * submission signals anyone) instead of paying a futex wake and a context
 * switch per task. True if a start became claimable. */
enum { SPIN_NS = 20000 };

static bool spin_for_work(tp_pool *pool, tp__worker *w)
{
    TP_ASSERT_HELD(pool);
    /* With many more threads than CPUs a spinner only takes a CPU from the
     * threads that are ending their tasks: then park at once. */
    if (pool->spinning || pool->freeing || pool->threads > pool->spin_threads)
        return false;
    pool->spinning = true;
    pool->waking++;
    atomic_store(&pool->watching, true); /* per-call pushes are ours */
    tp__unlock(pool);
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    bool seen = false;
    for (unsigned i = 1; !seen; i++) {
        seen = atomic_load_explicit(&pool->claimable, memory_order_relaxed) ||
               tp__inbox_news(pool);
        if (seen || i % 64)
            continue;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if ((now.tv_sec - start.tv_sec) * 1000000000L +
                (now.tv_nsec - start.tv_nsec) >
            SPIN_NS)
            break;
        /* On a machine with fewer CPUs than busy threads, the submitter
         * this worker waits for may be waiting for this CPU. */
        sched_yield();
    }
    if (tp__spin_hook)
        tp__spin_hook();
    tp__lock(pool);
    pool->spinning = false;
    pool->waking--;
    /* Having seen work, it keeps watching through its claim (worker_main
     * stops), so that a push meanwhile needs no dispatch of its own. */
    if (seen) {
        w->watching = true;
        return true;
    }
    /* A push from now on is seen by its submitter, or by this worker
     * below: pushes before this store are in the ring when it looks. */
    atomic_store(&pool->watching, false);
    /* Exact under the lock: a start queued after the spin gave up was
     * left to this worker (it counted in waking), so it must not park. */
    return atomic_load_explicit(&pool->claimable, memory_order_relaxed) ||
           tp__inbox_waiting(pool);
}

/* Parks w until it is woken for work (true) or should retire (false). */
static bool park(tp_pool *pool, tp__worker *w)
{
    TP_ASSERT_HELD(pool);
    if (pool->freeing)
        return false;
    tp__list_push_front(&pool->idle, &w->idle_node);
    pool->n_idle++;
    struct timespec deadline =
        tp__deadline(CLOCK_MONOTONIC, pool->idle_timeout);
    bool timed_out = false;
    while (tp__list_linked(&w->idle_node) && !pool->freeing && !timed_out)
        timed_out = !tp__wait(pool, &w->park,
                              pool->idle_timeout < 0 ? NULL : &deadline);
    if (tp__list_linked(&w->idle_node)) {
        tp__list_remove(&w->idle_node);
        pool->n_idle--;
    }
    return w->wake;
}

/* Stepping aside. Starts wait and the lock is saturated (this worker
 * found it held the last few times: lock.c), and while this worker's
 * last task ran the others started more than STREAMED tasks: they keep
 * up, and more workers at the lock only hand it, and the pool's cache
 * lines, from core to core for every task (one worker does empty tasks
 * faster than two), and take the CPU that submitters need. Then the
 * worker stands by for STANDBY_NS instead of claiming, counted in
 * pool->waking as heading for a start, so that nobody is woken for the
 * starts it leaves to the others; it claims when it is back. A start may
 * so wait up to STANDBY_NS (and the timer's slack) for a free slot to be
 * used while the others' tasks turn long. The worker with the latest
 * claim never stands by (nobody started a task since), so some worker
 * always comes back to claim without waiting. Short, because a worker
 * that was merely preempted while the others ran also meets the test:
 * standing by 100 us then cost W3 (tasks of 1 us) 0.03 us per task. */
enum { STANDBY_NS = 20000, STREAMED = 4 };

static bool step_aside_due(tp_pool *pool, tp_id last_id)
{
    TP_ASSERT_HELD(pool);
    int forced = atomic_load_explicit(&tp__force_standby, memory_order_relaxed);
    bool due = forced > 0 ||
               (tp__lock_saturated() && pool->next_id - last_id > STREAMED);
    /* The cheap tests first: the ring's tail is the submitters' line. */
    if (!due || pool->freeing || pool->occupied == 0 ||
        (pool->queued_total == 0 && !tp__inbox_waiting(pool)))
        return false;
    while (forced > 0 && !atomic_compare_exchange_weak(&tp__force_standby,
                                                       &forced, forced - 1))
        ;
    return true;
}

static void stand_by(tp_pool *pool, tp__worker *w)
{
    TP_ASSERT_HELD(pool);
    w->wake = true; /* worker_main uncounts it when it is back */
    pool->waking++;
    tp__sem_publish(pool); /* the slot it freed, before unlocking */
    struct timespec deadline =
        tp__deadline(CLOCK_MONOTONIC, STANDBY_NS * 1e-9);
    /* Nobody signals w->park meanwhile (it is not on the idle stack):
     * a wake-up before the deadline is spurious. */
    while (!pool->freeing && tp__wait(pool, &w->park, &deadline))
        ;
}

static void *worker_main(void *arg)
{
    tp__worker *w = arg;
    tp_pool *pool = w->pool;
    w->thread = pthread_self();
    tp__self = w;
    uint64_t clock_ns = 0; /* see run() */
    tp__lock(pool);
    w->shard = tp__shard_take(pool);
    for (;;) {
        if (w->wake) {
            w->wake = false;
            pool->waking--;
        }
        bool nomem = false;
        tp_task *t = claim(pool, w, &nomem, &clock_ns);
        if (w->watching) {
            /* The spin ended: pushes from now on are seen by their
             * submitters, and those before the store by this look (the
             * dispatch below finds workers for them). */
            w->watching = false;
            atomic_store(&pool->watching, false);
            tp__inbox_drain(pool, false);
            if (!t && !nomem)
                continue;
        }
        if (!t && nomem) {
            clock_ns = 0;
            /* The start stays first in the FIFO; try again shortly. */
            tp__log_locked(pool, TP_LOG_ERROR,
                           "%s: out of memory starting a task; retrying",
                           pool->name);
            tp__sem_publish(pool); /* the slot it freed, before unlocking */
            tp__unlock(pool);
            struct timespec pause = {0, 1000000};
            nanosleep(&pause, NULL);
            tp__lock(pool);
            continue;
        }
        if (!t && w->garbage) {
            /* Going idle: free what the last task left before waiting,
             * not when the next task comes (which may be much later). */
            void *garbage = w->garbage;
            w->garbage = NULL;
            clock_ns = 0;
            tp__unlock(pool);
            free(garbage);
            tp__lock(pool);
            continue;
        }
        if (!t) {
            clock_ns = 0;
            if (spin_for_work(pool, w) || park(pool, w))
                continue;
            break;
        }
        if (pool->queued_total > pool->waking && tp__dispatch(pool) != TP_OK)
            tp__log_locked(pool, TP_LOG_ERROR,
                           "%s: no thread for waiting starts; they wait for "
                           "a running task to end",
                           pool->name);
        /* Compacting its groups will need records: make them now. */
        size_t slab = tp__rec_slab_due(pool);
        struct tp__slab *made = NULL;
        tp__unlock(pool);
        free(w->garbage);
        w->garbage = NULL;
        int rc = run(pool, t, clock_ns);
        clock_ns = 0;
        if (pool->timings_on) {
            uint64_t ended = tp__now_ns();
            tp__timing_add(&pool->timings[w->shard], w->shard != 0,
                           t->admitted_ns, t->started_ns, ended);
            /* The end is the next task's start if the worker claims it
             * right away, with no callback or message in between. */
            tp__group *g = t->group;
            if (!g->end_cb && !g->cancel_cb && !g->discard &&
                t->log_ticket == UINT64_MAX)
                clock_ns = ended;
        }
        if (slab) { /* after the task: not to delay it, nor its timings */
            made = tp__rec_slab_make(slab);
            clock_ns = 0;
        }
        tp__lock(pool);
        if (slab)
            tp__rec_slab_add(pool, made);
        bool quiet = t->state == TP__RUNNING;
        tp_id id = t->id;
        end_task(pool, t, rc);
        unlive_task(pool, t);
        if (!quiet) /* its cancel was logged or called back */
            clock_ns = 0;
        if (step_aside_due(pool, id)) {
            clock_ns = 0;
            stand_by(pool, w);
        }
    }
    free(w->garbage); /* under the lock, once per thread */
    w->garbage = NULL;
    w->rec = tp__rec_full_put(pool, w->rec, NULL);
    free(w->rec);
    w->rec = NULL;
    tp__shard_give(pool, w->shard);
    pool->threads--;
    tp__worker *prev = pool->zombie;
    pool->zombie = w;
    tp__changed(pool);
    tp__unlock(pool);
    join_free(prev);
    tp__self = NULL;
    return NULL;
}
