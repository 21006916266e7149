/* SPDX-License-Identifier: MIT */
/*
 * taskpool: dynamically managed pools of tasks on OS threads.
 *
 * A C port of the Python library asyncio-taskpool. A pool runs tasks (plain C
 * functions) on worker threads; every spawning call creates a named group;
 * groups and single tasks can be cancelled; the pool size can change while
 * tasks run; and a control server (taskpool_control.h) lets an operator do all
 * of that from a shell.
 *
 * Conventions
 *  - Errors are negative integers (TP_E*); TP_OK is 0. tp_strerror() gives a
 *    sentence, tp_err_name() the constant's name.
 *  - A spawning call that returns an error starts nothing and calls no
 *    callback (not even `discard`).
 *  - Thread safety: every function may be called from any thread, including
 *    from inside tasks and callbacks, unless its comment says otherwise. A
 *    waiting call that would deadlock (waiting for the pool from one of its
 *    own tasks or callbacks) returns TP_EDEADLK instead of hanging.
 *  - No callback (task, iterator, end/cancel/discard callback, log handler)
 *    is ever called while a library lock is held, so callbacks may call any
 *    function of this API.
 *  - Names passed in are copied. Destructors accept NULL.
 */
#ifndef TASKPOOL_H
#define TASKPOOL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if defined(TP_BUILDING) && defined(__GNUC__)
#define TP_API __attribute__((visibility("default")))
#else
#define TP_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Version                                                                  */
/* ------------------------------------------------------------------------ */

/* The version of these headers. CMake's project(VERSION) is the one source:
 * configuring fails if these lines disagree with it. TP_VERSION_NUMBER is
 * MAJOR * 10000 + MINOR * 100 + PATCH, for #if comparisons. */
#define TP_VERSION_MAJOR 0
#define TP_VERSION_MINOR 1
#define TP_VERSION_PATCH 0
#define TP_VERSION_STRING "0.1.0"
#define TP_VERSION_NUMBER                                                      \
    (TP_VERSION_MAJOR * 10000 + TP_VERSION_MINOR * 100 + TP_VERSION_PATCH)

/* The version of the library the program runs with, "MAJOR.MINOR.PATCH";
 * it may be newer than the TP_VERSION_STRING the program was compiled with.
 * Cannot fail. Thread safety: any thread. */
TP_API const char *tp_version(void);

/* ------------------------------------------------------------------------ */
/* Types                                                                    */
/* ------------------------------------------------------------------------ */

/* A pool of tasks. Opaque; created by tp_pool_new or tp_simple_pool_new. */
typedef struct tp_pool tp_pool;

/* What a running task sees of itself. Valid from the moment the task
 * function is called until it returns; it must not be used afterwards. */
typedef struct tp_task tp_task;

/* A task id: >= 0, unique within its pool, given in start order, never
 * reused. */
typedef int64_t tp_id;

/* A task function. Runs on a worker thread with no library lock held.
 * Returning non-zero marks the task as failed (counted in
 * tp_stats.total_failed); it is not otherwise special. */
typedef int (*tp_fn)(tp_task *task, void *arg);

/* An end or cancel callback: called on the task's worker thread, once per
 * task, with the task's id and tp_opts.callback_arg, no library lock held.
 * The order when a task's function returns is the reference's: if it was
 * cancelled, "Cancelled" is logged and the cancel callback runs (the task
 * still counts as cancelled); then the task counts as ended, "Ended" is
 * logged, its pool slot is freed, and the end callback runs. */
typedef void (*tp_callback)(tp_pool *pool, tp_id id, void *arg);

/* Error codes. All negative; TP_OK is 0. */
enum {
    TP_OK = 0,
    TP_EINVAL = -1,             /* an argument is invalid */
    TP_ENOMEM = -2,             /* out of memory */
    TP_ECLOSED = -3,            /* the pool is closed */
    TP_ELOCKED = -4,            /* the pool is locked */
    TP_ENOTASK = -5,            /* no task with that id is known */
    TP_EALREADY_CANCELLED = -6, /* the task has been cancelled */
    TP_EALREADY_ENDED = -7,     /* the task has ended */
    TP_ENOGROUP = -8,           /* no group with that name exists */
    TP_EGROUP_EXISTS = -9,      /* a group with that name exists */
    TP_EWRONG_POOL = -10,       /* not possible with this kind of pool */
    TP_EDEADLK = -11,           /* the call would wait for itself */
    TP_ECANCELED = -12,         /* the calling task was cancelled */
    TP_ETIMEDOUT = -13,         /* the timeout expired */
    TP_ESYS = -14,              /* a system call failed (see errno) */
    TP_EAGAIN = -15             /* nothing available right now (_nowait) */
};

/* A sentence describing err ("No such task."); never NULL. Cannot fail.
 * Thread safety: any thread. */
TP_API const char *tp_strerror(int err);

/* The constant's name ("TP_ENOTASK"); "TP_UNKNOWN" for other values.
 * Cannot fail. */
TP_API const char *tp_err_name(int err);

/* A pool size meaning "no limit". */
#define TP_UNLIMITED SIZE_MAX

/* Longest group or pool name, including the terminating NUL. */
#define TP_NAME_MAX 256

/* Options for a pool. A zero-initialised field means "the default". */
typedef struct tp_pool_opts {
    /* Maximum number of tasks running at once; 0 means TP_UNLIMITED. To
     * create a paused pool, call tp_set_pool_size(pool, 0) afterwards. */
    size_t pool_size;
    /* The pool is named "TaskPool-<name>" (or "SimpleTaskPool-<name>");
     * NULL names it after a process-wide index shared by all pools. */
    const char *name;
    /* Stack size of worker threads in bytes; 0 means 256 KiB. */
    size_t stack_size;
    /* Seconds a parked worker thread waits for work before it exits;
     * 0 means 10 s; negative means forever. */
    double idle_timeout;
    /* For long-running services: each task is forgotten as soon as its end
     * callback returned, with no tp_flush needed. Its id is then unknown
     * (TP_ENOTASK), it never counts in tp_num_ended, and its group is
     * forgotten with its last task; tp_get_stats' lifetime totals still
     * count it. false (the default) keeps the reference's behaviour: ended
     * tasks are known until tp_flush or tp_gather_and_close. */
    bool forget_ended;
    /* Skips the clock reads behind tp_get_timings (one or two per task,
     * one per admission or per-call submission; tp_get_timings then
     * reports empty histograms). They cost about 35 ns each. */
    bool no_timings;
} tp_pool_opts;

/* Options for every spawning call. A zero-initialised field means "the
 * default"; NULL options mean all defaults. */
typedef struct tp_opts {
    /* Group name; NULL generates "<prefix>-<func_name>-group-<i>". */
    const char *group_name;
    /* Function name used in generated group names; NULL means "func". */
    const char *func_name;
    /* Called once per task after it ended (after cancel_callback). */
    tp_callback end_callback;
    /* Called once per cancelled task, after its function returned. */
    tp_callback cancel_callback;
    /* Called for arguments whose start will never happen (the group was
     * cancelled, or the pool freed), so that the caller can free them:
     *  - map family: once per dropped argument, on the thread that dropped
     *    it;
     *  - tp_apply and tp_start (one shared argument): at most once per
     *    group, whatever the number of dropped starts (dropping costs
     *    O(1)), after the group's last running task ended, on the thread
     *    that dropped the starts or that ran that last task.
     * No library lock is held. */
    void (*discard)(void *arg, void *callback_arg);
    /* Passed to the callbacks above. */
    void *callback_arg;
} tp_opts;

/* ------------------------------------------------------------------------ */
/* Pools                                                                    */
/* ------------------------------------------------------------------------ */

/* Creates a general pool (the reference's TaskPool). opts may be NULL.
 * Returns NULL if opts are invalid (a name of TP_NAME_MAX or more bytes with
 * its prefix, or a NaN idle_timeout) or memory or a system resource (a mutex
 * or condition variable) is exhausted; errno is not meaningful. Options that
 * pass those two checks leave only exhaustion as the cause. Logs
 * "TaskPool-<n> initialized". */
TP_API tp_pool *tp_pool_new(const tp_pool_opts *opts);

/* Creates a pool that runs only fn(task, arg) (the reference's
 * SimpleTaskPool). fn, arg and the callbacks in opts are fixed for the
 * pool's life; tp_start and tp_stop control how many run. opts->group_name is
 * ignored; opts->func_name is what tp_func_name reports. arg is not copied
 * or freed by the pool: it must stay valid until tp_pool_free returned
 * (opts->discard, if set, receives it for starts that never happen, as for
 * tp_apply). Returns NULL if fn is NULL, func_name has TP_NAME_MAX or more
 * bytes, or as tp_pool_new. */
TP_API tp_pool *tp_simple_pool_new(tp_fn fn, void *arg,
                                   const tp_pool_opts *popts,
                                   const tp_opts *opts);

/* Locks the pool, drops every pending start (calling `discard`), cancels
 * every task, waits for all tasks and callbacks to finish, stops the worker
 * threads and frees the pool. Like tp_gather_and_close it waits for tasks
 * that ignore cancellation. NULL is a no-op. Cannot fail, but must not be
 * called from a task or callback of the same pool (it logs an error and
 * returns without freeing). */
TP_API void tp_pool_free(tp_pool *pool);

/* "TaskPool-0", "SimpleTaskPool-demo"; valid until the pool is freed.
 * NULL for a NULL pool. Cannot fail. */
TP_API const char *tp_pool_name(const tp_pool *pool);

/* The pool size: the maximum number of tasks running at once (not the
 * remaining room). TP_UNLIMITED if there is no limit; 0 for a NULL pool.
 * Cannot fail. */
TP_API size_t tp_pool_size(const tp_pool *pool);

/* Changes the pool size. Raising it starts waiting tasks at once; lowering
 * it never touches running tasks (new starts wait until enough have ended);
 * 0 pauses all new starts. Returns TP_OK, TP_EINVAL (NULL pool), or TP_ESYS
 * if waiting starts could not be given a thread now (the size is set all the
 * same and those starts run as soon as a worker is free). */
TP_API int tp_set_pool_size(tp_pool *pool, size_t size);

/* After tp_lock, spawning calls fail with TP_ELOCKED. Starts already queued
 * by earlier calls still happen. Logs "<pool> is locked!" unless it already
 * was. NULL is a no-op. Cannot fail. */
TP_API void tp_lock(tp_pool *pool);

/* Allows spawning calls again (unless the pool is closed). Logs
 * "<pool> was unlocked." unless it was not locked. NULL is a no-op. Cannot
 * fail. */
TP_API void tp_unlock(tp_pool *pool);

/* True if the pool is locked: from tp_lock (or tp_gather_and_close, which
 * locks it) until tp_unlock. False for a NULL pool. Cannot fail. */
TP_API bool tp_is_locked(const tp_pool *pool);

/* True if no more task can start right now: the tasks whose functions have
 * not yet returned fill the pool size. False for a NULL pool. Cannot fail. */
TP_API bool tp_is_full(const tp_pool *pool);

/* Tasks that started and were neither cancelled nor have ended. 0 for a
 * NULL pool. Cannot fail. */
TP_API size_t tp_num_running(const tp_pool *pool);

/* Tasks cancelled whose end callback has not yet begun. 0 for a NULL pool.
 * Cannot fail. */
TP_API size_t tp_num_cancelled(const tp_pool *pool);

/* Tasks that ended and have not been forgotten by tp_flush or
 * tp_gather_and_close. 0 for a NULL pool. Cannot fail. */
TP_API size_t tp_num_ended(const tp_pool *pool);

/* ------------------------------------------------------------------------ */
/* Spawning (general pools)                                                 */
/* ------------------------------------------------------------------------ */
/*
 * Every spawning call creates a group and returns at once: it never waits
 * for room in the pool. Starts that find no room wait, first in first out
 * across the whole pool, and start as soon as room appears. On success the
 * group's name is copied to group_out unless it is NULL.
 *
 * Common errors: TP_EINVAL (NULL pool or function, num or num_concurrent 0,
 * a group or function name too long), TP_ECLOSED, TP_ELOCKED,
 * TP_EWRONG_POOL (on a simple pool), TP_EGROUP_EXISTS, TP_ENOMEM, TP_ESYS
 * (no worker thread could be created; nothing started).
 */

/* Starts num tasks, each running fn(task, arg). Group prefix "apply". The
 * same arg is shared by all of them and must stay valid until they ended;
 * if some of them never start, `discard(arg)` is called once, after the
 * last of them that ran has ended. Errors as for every spawning call
 * (above). */
TP_API int tp_apply(tp_pool *pool, tp_fn fn, void *arg, size_t num,
                    const tp_opts *opts, char group_out[TP_NAME_MAX]);

/* Starts one task fn(task, args[i]) per argument, at most num_concurrent of
 * them running at once: when one ends, the next argument is taken. Group
 * prefix "map". The array is copied; the arguments it points to must stay
 * valid until their task ended or they were passed to `discard`. Errors as
 * for every spawning call (above). */
TP_API int tp_map(tp_pool *pool, tp_fn fn, void *const args[], size_t nargs,
                  size_t num_concurrent, const tp_opts *opts,
                  char group_out[TP_NAME_MAX]);

/* A lazy, possibly endless, source of arguments. */
typedef struct tp_iter {
    /* Produces the next argument: returns 1 and sets *arg, 0 when exhausted,
     * negative on error (treated as exhausted, and logged). Called on a
     * worker thread, never concurrently with itself, never under a library
     * lock, and never again once the group is cancelled or exhausted. */
    int (*next)(void *state, void **arg);
    /* Called exactly once, when the iterator is no longer needed (exhausted,
     * group cancelled, pool freed, or the spawning call failed). May be
     * NULL. */
    void (*done)(void *state);
    void *state;
} tp_iter;

/* Like tp_map, with arguments taken from iter as tasks start (never ahead
 * of time). Group prefix "map". tp_gather_and_close waits for an endless
 * iterator forever: cancel its group first. Errors as for every spawning
 * call (above); if the call fails, iter.done is called before it returns. */
TP_API int tp_map_iter(tp_pool *pool, tp_fn fn, tp_iter iter,
                       size_t num_concurrent, const tp_opts *opts,
                       char group_out[TP_NAME_MAX]);

/* Positional arguments for one task of tp_starmap. */
typedef struct tp_args {
    size_t argc;
    void *const *argv;
} tp_args;

/* The task function of tp_starmap: argv holds the argc values of one
 * element of its args (a copy owned by the library, valid until the
 * function returns). Called as a tp_fn is; non-zero return means failed. */
typedef int (*tp_star_fn)(tp_task *task, size_t argc, void *const argv[]);

/* Like tp_map, running fn(task, args[i].argc, args[i].argv). Group prefix
 * "starmap". The args array and every argv array are copied; the values
 * they point to must stay valid until their task ended or was discarded.
 * `discard` receives a pointer to the (copied) tp_args of the start. Errors
 * as for every spawning call (above). */
TP_API int tp_starmap(tp_pool *pool, tp_star_fn fn, const tp_args args[],
                      size_t n, size_t num_concurrent, const tp_opts *opts,
                      char group_out[TP_NAME_MAX]);

/* Keyword arguments for one task of tp_doublestarmap. */
typedef struct tp_kwarg {
    const char *key;
    void *value;
} tp_kwarg;

typedef struct tp_kwargs {
    size_t n;
    const tp_kwarg *items;
} tp_kwargs;

/* The task function of tp_doublestarmap: kwargs is one element of its
 * kwargs (a copy owned by the library, valid until the function returns;
 * read it with tp_kwargs_get). Called as a tp_fn is. */
typedef int (*tp_kw_fn)(tp_task *task, const tp_kwargs *kwargs);

/* The value of key in kw (the first match), or fallback if absent or if kw
 * or key is NULL. Cannot fail. */
TP_API void *tp_kwargs_get(const tp_kwargs *kw, const char *key,
                           void *fallback);

/* Like tp_map, running fn(task, &kwargs[i]). Group prefix "doublestarmap".
 * The kwargs array, every items array and every key are copied; the values
 * must stay valid until their task ended or was discarded. `discard`
 * receives a pointer to the (copied) tp_kwargs of the start. A NULL key is
 * TP_EINVAL; other errors as for every spawning call (above). */
TP_API int tp_doublestarmap(tp_pool *pool, tp_kw_fn fn,
                            const tp_kwargs kwargs[], size_t n,
                            size_t num_concurrent, const tp_opts *opts,
                            char group_out[TP_NAME_MAX]);

/* ------------------------------------------------------------------------ */
/* Simple pools                                                             */
/* ------------------------------------------------------------------------ */

/* A list of task ids; free with tp_ids_free. */
typedef struct tp_ids {
    size_t len;
    tp_id *v;
} tp_ids;

/* Frees ids->v and zeroes *ids. NULL is a no-op. Cannot fail. */
TP_API void tp_ids_free(tp_ids *ids);

/* Starts num more tasks of a simple pool as a new group "start-group-<i>".
 * Errors as for spawning calls (TP_EWRONG_POOL on a general pool). */
TP_API int tp_start(tp_pool *pool, size_t num, char group_out[TP_NAME_MAX]);

/* Cancels up to num running tasks, most recently started first, and (if
 * stopped is not NULL) returns their ids in that order; the caller frees
 * them with tp_ids_free. Stopping more than run stops all; 0 stops none.
 * Errors: TP_EINVAL, TP_EWRONG_POOL, TP_ENOMEM (nothing cancelled). */
TP_API int tp_stop(tp_pool *pool, size_t num, tp_ids *stopped);

/* tp_stop(pool, tp_num_running(pool), stopped), atomically. Errors as
 * tp_stop. */
TP_API int tp_stop_all(tp_pool *pool, tp_ids *stopped);

/* The function name of a simple pool (opts->func_name, default "func");
 * NULL for a general pool or a NULL pool. Cannot fail. */
TP_API const char *tp_func_name(const tp_pool *pool);

/* ------------------------------------------------------------------------ */
/* Both kinds                                                               */
/* ------------------------------------------------------------------------ */

/* Cancels the tasks with the given ids. All-or-nothing: every id is checked
 * first and the first bad one is returned (TP_ENOTASK, TP_EALREADY_CANCELLED,
 * TP_EALREADY_ENDED) with nothing cancelled. As in the reference, the task
 * logs "Cancelling <task> ..." and "Cancelled <task>" once its function
 * returned, then "Ended <task>". */
TP_API int tp_cancel(tp_pool *pool, const tp_id ids[], size_t n);

/* What tp_cancel would say of id alone, without cancelling anything:
 * TP_OK if its task is running, else TP_EALREADY_CANCELLED,
 * TP_EALREADY_ENDED or TP_ENOTASK (TP_EINVAL for a NULL pool). A snapshot:
 * the task may change state right after. Use it to tell which id made
 * tp_cancel fail. */
TP_API int tp_task_status(tp_pool *pool, tp_id id);

/* Cancels a group: first drops its pending starts (they never start;
 * `discard` is called as tp_opts says; an iterator's `done` is called),
 * then cancels its running tasks. Costs O(1) plus the group's own running
 * tasks (and, for the map family, its dropped arguments), whatever the
 * number of groups or of dropped starts; per-call submissions that have
 * not started yet are first given their groups, once each (O(1) per
 * submission, amortised). The group is then forgotten: its name is free
 * and tp_get_group_ids no longer knows it. Errors: TP_ENOGROUP,
 * TP_EINVAL (NULL pool or group), TP_ENOMEM (the name may be a per-call
 * submission's that could not be given its group). */
TP_API int tp_cancel_group(tp_pool *pool, const char *group);

/* tp_cancel_group for every group. Logs "<pool> cancelling all tasks!".
 * NULL is a no-op. Cannot fail. */
TP_API void tp_cancel_all(tp_pool *pool);

/* The ids of every known task (running, cancelled or ended and not yet
 * forgotten) in the named groups, sorted ascending, into *out (free with
 * tp_ids_free). Errors: TP_ENOGROUP (the first unknown name; *out empty),
 * TP_EINVAL, TP_ENOMEM. */
TP_API int tp_get_group_ids(tp_pool *pool, const char *const groups[], size_t n,
                            tp_ids *out);

/* Waits until every task that was cancelled or ended when it was called has
 * finished its callbacks (a cancelled task must return first), then forgets
 * every ended task: their ids become unknown, num_ended drops, and groups
 * left without tasks or pending starts are forgotten. TP_EDEADLK from a task
 * or callback of the same pool. */
TP_API int tp_flush(tp_pool *pool);

/* Locks the pool, waits for every pending start and every task (including
 * an endless tp_map_iter: cancel it first), forgets every task and group,
 * and closes the pool for good. TP_EDEADLK from a task or callback of the
 * same pool; TP_ECLOSED if already closed. */
TP_API int tp_gather_and_close(tp_pool *pool);

/* Waits until the pool is closed or timeout seconds passed (negative: no
 * timeout; 0 only looks, without waiting). TP_OK, TP_ETIMEDOUT, TP_EDEADLK
 * (from a task or callback of the same pool). */
TP_API int tp_until_closed(tp_pool *pool, double timeout);

/* A snapshot of the pool's counters, taken atomically. */
typedef struct tp_stats {
    size_t pool_size;    /* as tp_pool_size */
    size_t running;      /* as tp_num_running */
    size_t cancelled;    /* as tp_num_cancelled */
    size_t ended;        /* as tp_num_ended */
    size_t pending;      /* starts waiting for room or for their group;
                            an iterator group counts the starts it has
                            admitted, not its unknown length */
    size_t groups;       /* groups the pool knows */
    size_t threads;      /* worker threads alive */
    size_t idle_threads; /* of which parked, waiting for work */
    uint64_t total_started, total_ended, total_cancelled, total_failed;
    uint64_t total_refused; /* spawning calls refused: locked or closed */
    uint64_t total_dropped; /* starts that never happened (cancel_group,
                               cancel_all, tp_pool_free) */
} tp_stats;

/* Fills *out. Errors: TP_EINVAL. Thread safety: any thread. */
TP_API int tp_get_stats(const tp_pool *pool, tp_stats *out);

/* One group as tp_get_groups reports it. */
typedef struct tp_group_info {
    const char *name;      /* inside the tp_groups allocation */
    size_t running;        /* its tasks running, not cancelled */
    size_t cancelled;      /* its tasks cancelled, end callback not yet begun */
    size_t ended;          /* its ended tasks the pool still knows */
    size_t pending;        /* its starts waiting (as tp_stats.pending) */
    size_t num_concurrent; /* TP_UNLIMITED for apply and start groups */
} tp_group_info;

typedef struct tp_groups {
    size_t len;
    tp_group_info *v; /* one allocation with the names; tp_groups_free */
} tp_groups;

/* Lists every group the pool knows by name (those tp_cancel_group and
 * tp_get_group_ids accept), newest first, into *out, which the caller
 * frees with tp_groups_free. A snapshot: groups may change right after.
 * Cost: O(groups + live tasks) with the pool lock held (copying counts,
 * about 30 ns per group); generated names are formatted after the lock is
 * released. A pool that knows a million groups is listed in tens of
 * milliseconds and a ~100 MB allocation: flush, or use forget_ended.
 * Errors: TP_EINVAL (NULL pool or out), TP_ENOMEM (out is then empty).
 * Thread safety: any thread. */
TP_API int tp_get_groups(tp_pool *pool, tp_groups *out);

/* Frees what tp_get_groups filled in and empties *groups; NULL and an
 * empty list are no-ops. Cannot fail. Thread safety: any thread. */
TP_API void tp_groups_free(tp_groups *groups);

/* Timings: per pool, two histograms over fixed buckets. `wait` is the time
 * from a start's admission into the pool's FIFO (when its group let it
 * queue) to its task's start; `run` is the time from the start to the
 * return of the task function (callbacks excluded). Starts that never
 * happen are not observed. buckets[i] counts observations of at most
 * tp_hist_bounds()[i] seconds and more than bounds[i - 1]; the last bucket
 * (bound +INFINITY) counts the rest. The bounds are 1 us to 100 s, three
 * per decade (1, 2.5, 5, 10, 25, 50, ... us). Counts are not cumulative;
 * a Prometheus exporter sums them. sum is in seconds. */
#define TP_HIST_BUCKETS 26
typedef struct tp_histogram {
    uint64_t count;
    double sum;
    uint64_t buckets[TP_HIST_BUCKETS];
} tp_histogram;

typedef struct tp_timings {
    tp_histogram wait; /* admission to start */
    tp_histogram run;  /* start to function return */
} tp_timings;

/* Fills *out with the pool's timings since it was created: every task
 * whose end callback began is in them (read without stopping the workers,
 * a task ending meanwhile may show in one histogram before the other; a
 * histogram's count is always its buckets' sum). Errors: TP_EINVAL.
 * Thread safety: any thread. */
TP_API int tp_get_timings(const tp_pool *pool, tp_timings *out);

/* The TP_HIST_BUCKETS upper bounds in seconds, ascending, the last one
 * +INFINITY. Static storage. Cannot fail. Thread safety: any thread. */
TP_API const double *tp_hist_bounds(void);

/* ------------------------------------------------------------------------ */
/* Inside a task                                                            */
/* ------------------------------------------------------------------------ */
/*
 * Cancellation is cooperative. tp_cancel sets the task's flag and wakes the
 * task if it waits in one of the functions below; they then return
 * TP_ECANCELED and the task should return. A task that never waits and
 * never checks tp_cancelled runs to completion. A task cancelled before its
 * function was called is never called. The waiting functions take the
 * calling task (from tp_current_task or the task function's parameter); a
 * NULL task waits without cancellation. They must be called by the task's
 * own thread.
 */

/* The task's id, as tp_cancel takes it; -1 for a NULL task. Cannot fail. */
TP_API tp_id tp_task_id(const tp_task *task);

/* The pool the task runs in; NULL for a NULL task. Cannot fail. */
TP_API tp_pool *tp_task_pool(const tp_task *task);

/* The task running on the calling thread, or NULL outside a task. Cannot
 * fail. */
TP_API tp_task *tp_current_task(void);

/* True once the task has been cancelled; false for a NULL task.
 * Lock-free. Cannot fail. */
TP_API bool tp_cancelled(const tp_task *task);

/* Sleeps. TP_OK, TP_ECANCELED (at once if already cancelled), TP_EINVAL
 * (negative or NaN seconds). */
TP_API int tp_sleep(tp_task *task, double seconds);

/* pthread_cond_wait with cancellation and a timeout (negative: none). The
 * caller holds mutex, which is held again when this returns. Returns TP_OK
 * when woken, TP_ETIMEDOUT, or TP_ECANCELED (at once when the task is
 * cancelled). TP_OK may be spurious: a task's wait also returns after at
 * most a second, so always re-check the predicate in a loop, and pass the
 * remaining time if you need an overall deadline. A thread that cancels the
 * task while holding mutex itself is delayed by up to 5 ms. cond must use
 * CLOCK_REALTIME (the default). */
TP_API int tp_cond_wait(tp_task *task, pthread_cond_t *cond,
                        pthread_mutex_t *mutex, double timeout);

/* Waits until fd has any of events (POLLIN, POLLOUT, ...) or timeout seconds
 * (negative: none). Returns the revents (> 0), TP_ETIMEDOUT, TP_ECANCELED,
 * TP_EINVAL (fd negative or not an open descriptor, timeout NaN) or
 * TP_ESYS. */
TP_API int tp_wait_fd(tp_task *task, int fd, short events, double timeout);

/* A file descriptor that becomes readable once the task is cancelled, for
 * the task's own poll/epoll set. Owned by the library; valid until the task
 * function returns; do not read it or close it. Returns the fd or TP_ESYS. */
TP_API int tp_cancel_fd(tp_task *task);

/* ------------------------------------------------------------------------ */
/* Queue (the reference's Queue with item_processed)                        */
/* ------------------------------------------------------------------------ */
/*
 * A FIFO of void pointers, bounded or not. Waiting operations take the
 * calling task (or NULL) and return TP_ECANCELED when it is cancelled.
 * Thread safety: any thread. The queue does not own its items.
 */
typedef struct tp_queue tp_queue;

/* capacity 0: unbounded. NULL on out of memory. */
TP_API tp_queue *tp_queue_new(size_t capacity);

/* Appends item, waiting while the queue is full. TP_OK, TP_ECANCELED,
 * TP_ENOMEM (the ring could not grow; nothing added), TP_EINVAL (NULL q). */
TP_API int tp_queue_put(tp_queue *q, tp_task *task_or_null, void *item);

/* Appends item if there is room: TP_OK, TP_EAGAIN (full), TP_ENOMEM,
 * TP_EINVAL (NULL q). */
TP_API int tp_queue_put_nowait(tp_queue *q, void *item);

/* Removes the oldest item into *item, waiting while empty. TP_OK,
 * TP_ECANCELED (nothing taken), TP_EINVAL (NULL q or item). */
TP_API int tp_queue_get(tp_queue *q, tp_task *task_or_null, void **item);

/* Removes the oldest item if any: TP_OK, TP_EAGAIN (empty), TP_EINVAL
 * (NULL q or item). */
TP_API int tp_queue_get_nowait(tp_queue *q, void **item);

/* Marks one item taken by get as fully processed (the reference's
 * task_done/item_processed). Calling it more often than items were put is a
 * no-op, and so is a NULL q. Cannot fail. */
TP_API void tp_queue_item_processed(tp_queue *q);

/* Waits until every item ever put has been marked processed. TP_OK,
 * TP_ECANCELED, TP_EINVAL (NULL q). */
TP_API int tp_queue_join(tp_queue *q, tp_task *task_or_null);

/* Items currently in the queue; 0 for a NULL q. Cannot fail. */
TP_API size_t tp_queue_size(const tp_queue *q);

/* Frees the queue (not its items). No thread may be using it. NULL: no-op.
 * Cannot fail. */
TP_API void tp_queue_free(tp_queue *q);

/* ------------------------------------------------------------------------ */
/* Logging                                                                  */
/* ------------------------------------------------------------------------ */

typedef enum {
    TP_LOG_DEBUG,
    TP_LOG_INFO,
    TP_LOG_WARNING,
    TP_LOG_ERROR
} tp_log_level;

/* A log handler: called on whichever thread logs, no library lock held. */
typedef void (*tp_log_fn)(tp_log_level level, const char *message, void *arg);

/* Sets the process-wide log handler and the lowest level passed to it; a
 * NULL fn silences logging. Until the first call, logging is silent unless
 * the environment variable TASKPOOL_LOG names a level (debug, info, warning,
 * error): then messages of that level and above go to stderr. Messages
 * mirror the reference: "TaskPool-0 initialized", "Started TaskPool-0_Task-3",
 * "Cancelling TaskPool-0_Task-3 ...", "Cancelled ...", "Ended ...",
 * "TaskPool-0 is locked!". A handler may still be called once by a thread
 * that was already logging when this returns. Cannot fail. */
TP_API void tp_log_set(tp_log_fn fn, void *arg, tp_log_level min_level);

#ifdef __cplusplus
}
#endif

#endif /* TASKPOOL_H */
