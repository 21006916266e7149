/* SPDX-License-Identifier: MIT */
/*
 * Internal structures of the pool engine, shared by the files in src/.
 * Internal functions are prefixed tp__; everything here is hidden from the
 * shared library. The lock discipline is described at the top of lock.c.
 */
#ifndef TP_INTERNAL_H
#define TP_INTERNAL_H

#include "list.h"
#include "taskpool.h"

#include <assert.h>
#include <stddef.h>
#include <stdatomic.h>
#include <time.h>

/* ---- ids of live tasks: an open-addressing map id -> task (idmap.c) ---- */

struct tp__idslot {
    tp_id id; /* -1: empty */
    tp_task *task;
};

typedef struct tp__idmap {
    struct tp__idslot *slots;
    size_t cap; /* a power of two, or 0 */
    size_t len;
} tp__idmap;

void tp__idmap_free(tp__idmap *m);
/* Makes room for n entries in all: 0, or -1 if out of memory. */
int tp__idmap_reserve(tp__idmap *m, size_t n);
/* Inserts; the map must have room (tp__idmap_reserve). */
void tp__idmap_put(tp__idmap *m, tp_id id, tp_task *task);
tp_task *tp__idmap_get(const tp__idmap *m, tp_id id);
void tp__idmap_del(tp__idmap *m, tp_id id);

/* ---- the ring of per-call submissions (ring.c) ---- */

enum { TP__RING_BLOCK = 1024, TP__RING_DIR = 4096 };
#define TP__RING_SHUT ((uint64_t)1 << 63)
enum { TP__RING_PUSHED, TP__RING_FULL, TP__RING_SHUT_NOW };

/* One per-call submission: a pending start of a one-task group that has
 * no record yet. */
typedef struct tp__entry {
    _Atomic(tp_fn) fn; /* NULL until published */
    void *arg;
    uint64_t born_ns; /* CLOCK_MONOTONIC at submission, if timed */
    size_t index;     /* its generated name's index, given under pool->mu
                         when the pool first sees it (inbox.c) */
} tp__entry;

typedef struct tp__ring {
    _Alignas(64) _Atomic uint64_t tail; /* next position; TP__RING_SHUT */
    _Atomic uint64_t limit;            /* positions below have a block */
    tp__entry **dir; /* TP__RING_DIR blocks; slots written under pool->mu */
    /* Under pool->mu: */
    tp__entry *spare; /* a released block kept for the next growth */
    uint64_t freed;  /* the blocks below were released */
} tp__ring;

/* Reserves the next position and writes the entry: TP__RING_PUSHED, or
 * TP__RING_FULL (no block for it: tp__ring_grow under the lock, then try
 * again) or TP__RING_SHUT_NOW (take the lock instead); *pos is the
 * position once pushed. No lock held. */
int tp__ring_push(tp__ring *r, tp_fn fn, void *arg, uint64_t born_ns,
                  uint64_t *pos);
/* Positions reserved so far (some may not be published yet). */
uint64_t tp__ring_reserved(const tp__ring *r);
/* The entry at pos, a position below the limit not yet released. */
tp__entry *tp__ring_at(const tp__ring *r, uint64_t pos);
/* Adds a block: TP_OK, TP_ENOMEM, or TP__RING_FULL if RING_DIR blocks
 * are in use. With pool->mu held. */
int tp__ring_grow(tp__ring *r);
/* Gives back the blocks wholly below first_needed. With pool->mu held. */
void tp__ring_release(tp__ring *r, uint64_t first_needed);
void tp__ring_free(tp__ring *r);
/* Test hook, NULL in use: called by a producer between reserving its
 * position and writing its entry, to widen that window. */
extern void (*tp__ring_push_hook)(void);

/* ---- tasks and workers ---- */

enum tp__task_state {
    TP__RUNNING,   /* started, not cancelled, function not returned */
    TP__CANCELLED, /* cancelled; until its end callback begins */
    TP__ENDED      /* ended, end callback running: still "live" */
};

/* A task is embedded in the worker that runs it, so its memory lives as
 * long as the worker; it is "live" (in pool->live) from its start until its
 * end callback returned. Fields are guarded by pool->mu unless noted. */
struct tp_task {
    tp_id id;
    tp_pool *pool;
    struct tp__group *group;
    struct tp__worker *worker;
    void *arg;
    int state;
    atomic_bool cancelled; /* written under pool->mu, read anywhere */
    tp__list live_node;    /* pool->tasks: live tasks in start order */
    tp__list group_node;   /* group->tasks: the group's live tasks */
    uint64_t log_ticket;   /* its Started line's turn (tp__logq), or
                              UINT64_MAX if none was taken */
    uint64_t admitted_ns;  /* CLOCK_MONOTONIC: its start queued (timings) */
    uint64_t started_ns;   /* its function about to be called */

    /* The waiter: what the task blocks in, so that a cancel can wake it.
     * Guarded by wmu; lock order pool->mu -> wmu. */
    pthread_mutex_t wmu;
    pthread_cond_t wcv;    /* CLOCK_MONOTONIC; tp_sleep, and the end of
                              a canceller's wake-up (waking) */
    pthread_cond_t *ucond; /* the user's cond in tp_cond_wait, or NULL */
    pthread_mutex_t *umutex;
    bool waking;        /* a canceller uses ucond/umutex: keep them */
    tp_task *wake_next; /* on a canceller's list of wakes (tp__wakes) */
    bool flush_wait;    /* a tp_flush waits for this task to end */
    int efd;            /* eventfd for tp_cancel_fd/tp_wait_fd, or -1 */
    bool efd_signalled; /* efd holds a count to drain */
};

/* Timing histograms (hist.c) recorded by workers with no lock held: each
 * pool has TP__SHARDS of them and a worker records into its own shard's
 * (the only writer of all but shard 0, hist.c), so that no critical
 * section touches them; tp_get_timings sums the shards. */
enum { TP__SHARDS = 8 };
typedef struct tp__hist {
    _Atomic uint64_t buckets[TP_HIST_BUCKETS];
    _Atomic uint64_t sum_ns;
} tp__hist;
typedef struct tp__timings {
    _Alignas(64) tp__hist wait;
    tp__hist run;
} tp__timings;

typedef struct tp__worker {
    tp_pool *pool;
    pthread_t thread;
    unsigned shard; /* its pool->timings shard: its own unless 0 */
    pthread_cond_t park; /* CLOCK_MONOTONIC; waited on with pool->mu */
    tp__list idle_node;  /* on pool->idle (linked) while parked */
    bool wake;           /* counted in pool->waking */
    bool watching;       /* it set pool->watching and still must clear it */
    atomic_int pins;     /* deferred cancel wake-ups not yet delivered */
    void *garbage;       /* to free once unlocked (a compacted group) */
    struct tp__group *rec; /* its record for the next per-call group it
                              claims (records.c) */
    tp_task task;
} tp__worker;

/* ---- groups (group.c) ---- */

enum tp__src { TP__SRC_APPLY, TP__SRC_ARRAY, TP__SRC_ITER };
/* A group's drop, in order: never dropped; dropped with its discard owed
 * until its last live task ends (APPLY: the running tasks still use the
 * shared argument); discard/done calls under way, unlocked (the group
 * counts as pending meanwhile); dropped and settled. */
enum tp__drop { TP__UNDROPPED, TP__DISCARD_DUE, TP__DROPPING, TP__DROPPED };
enum tp__call { TP__CALL_FN, TP__CALL_STAR, TP__CALL_KW };

/* A run of consecutive starts of one group in the pool's FIFO (sem.c).
 * Nodes belong to their group: an emptied run goes back to the group's
 * spares, so admitting a start when a task ends never allocates. */
typedef struct tp__run {
    tp__list fifo;     /* pool->fifo */
    tp__list in_group; /* group->runs, oldest first */
    struct tp__group *group;
    size_t count;
    uint64_t admitted_ns; /* CLOCK_MONOTONIC when its first start queued */
    uint64_t ring_pos; /* the ring entries before it are those below this
                          position (sem.c) */
} tp__run;

typedef struct tp__group {
    /* ---- The compact prefix: all that a finished one-task group keeps.
     * Once such a group has no pending start, no live task and no other
     * reference, it is shrunk to this prefix (tp__group_compact, group.c)
     * and only these fields may be read (check `compact` first). ---- */
    /* The name: explicit (xname) or generated, "<counter key>-group-<index>",
     * formatted only when asked (tp__group_format). */
    struct tp__counter *counter; /* generated names: whose index */
    size_t index;
    struct tp__group *hnext; /* name index chain */
    tp__list node;           /* pool->groups while listed */
    tp_id id0;      /* the only id of a one-task group (see tp__group_ids) */
    int refs;       /* listed + live tasks + in-flight claims + drops */
    bool indexed;   /* findable by name */
    bool lookalike; /* explicit, but reads like a generated name */
    bool compact;   /* shrunk to this prefix */
    bool has_id;    /* compact: id0 is known (see tp__group_nids) */

    /* ---- The rest: only while not compact. ---- */
    size_t nids; /* known task ids (the first field not kept compact) */
    tp_id *ids;  /* known task ids, ascending (&id0 while at most one) */
    size_t idcap;
    tp__list runs;  /* its runs in the pool FIFO */
    tp__list tasks; /* its live tasks, in start order */
    tp__run *spare; /* free run nodes, linked through fifo.next */
    size_t n_spare;
    tp__run run0; /* the first admission's node, never freed alone */

    int call;
    union {
        tp_fn fn;
        tp_star_fn star;
        tp_kw_fn kw;
    } f;
    tp_callback end_cb, cancel_cb;
    void (*discard)(void *arg, void *callback_arg);
    void *cb_arg;

    /* Where its arguments come from: one of these, as src says. */
    int src;
    union {
        void *arg; /* APPLY: the one argument every start shares */
        struct {   /* ARRAY: argument i, owned copies behind them */
            void **args;
            void *block;
        } array;
        struct { /* ITER */
            tp_iter it;
            size_t claims;    /* claimed, waiting for next() */
            bool over;        /* exhausted or cancelled: no next() again */
            bool busy;        /* a worker is inside next() */
            bool done_called; /* it.done called, or about to be */
        } iter;
    } from;
    size_t nargs;    /* APPLY, ARRAY: how many starts in all */
    size_t next_arg; /* APPLY, ARRAY: starts claimed so far */
    uint64_t born_ns; /* a per-call group: when it was pushed, or 0 */
    uint64_t ring_from; /* made for the ring entry at this position - 1
                           while it waits in the FIFO (sem.c), or 0 */

    size_t limit;  /* num_concurrent */
    size_t active; /* queued + claimed + live tasks, at most limit */
    size_t queued; /* starts waiting in the pool FIFO */
    size_t live;   /* tasks started and not fully ended */

    /* Dropping its pending starts (tp__group_drop), at most once: */
    int drop; /* enum tp__drop */
    /* The discard/done calls still to be made after unlocking. */
    size_t drop_from, drop_to;
    bool drop_done;
    struct tp__group *drop_next;
    char xname[]; /* an explicit name, or "" */
} tp__group;

/* Ordered emission of a pool's task messages (log.c): a turn is taken
 * under pool->mu together with the event it reports, and the message is
 * written, with no engine lock held, once every earlier turn is done. */
typedef struct tp__logq {
    uint64_t next;      /* the next turn to give; under pool->mu */
    pthread_mutex_t mu; /* leaf lock: guards served, waiters */
    pthread_cond_t cv;
    uint64_t served; /* turns done */
    size_t waiters;
} tp__logq;

/* ---- the pool (pool.c) ---- */

enum tp__kind { TP__GENERAL, TP__SIMPLE };

/* The counter of generated names for one prefix and function: its key is
 * "<prefix>-<func>" (or "<prefix>" without a function). */
typedef struct tp__counter {
    const char *prefix; /* a string literal of spawn.c */
    char *func;         /* owned copy, or NULL */
    size_t key_len;
    struct tp__counter *link;
    /* Taken under pool->mu for every group named, on a line of its own:
     * per-call submitters read the key above on every call (spawn.c). */
    _Alignas(64) size_t next;
} tp__counter;

struct tp_pool {
    /* ---- What starting and ending a task touch under the lock, packed
     * into few cache lines: each critical section pulls them from the
     * core that ran the last one. ---- */
    pthread_mutex_t mu;
    size_t size;     /* pool size (capacity); set with tp__sem_resize */
    size_t occupied; /* claimed starts whose function has not returned */
    size_t queued_total; /* starts in the FIFO, ring entries included */
    /* The pending ring entries are the positions [ring_head, ring_seen)
     * (sem.c); ring_seen is also read by a spinning worker. */
    uint64_t ring_head;
    _Atomic uint64_t ring_seen;
    _Atomic uint64_t ring_stuck; /* see tp__inbox_news */
    tp_id next_id;
    size_t n_running, n_cancelled, n_ended;
    uint64_t total_started, total_ended, total_failed;
    /* What tp_get_stats reports as pending without a walk over every
     * group: the starts of APPLY and ARRAY groups not yet claimed (the sum
     * of nargs - next_arg over the listed groups), and the number of listed
     * ITER groups, whose queued starts and claims are summed by a walk only
     * when there are some. */
    size_t pending_args, n_iter_groups;
    size_t n_unsettled; /* groups dropped whose calls are not all made */
    tp__idmap live; /* live.len: tasks started and not fully ended */
    tp__list tasks; /* live tasks in start order */
    tp__list fifo;  /* runs of pending starts (sem.c) */
    tp__group **index; /* name -> group, chained */
    size_t index_cap, n_indexed;
    size_t n_lookalikes; /* indexed explicit names that read as generated */
    tp__list groups;     /* listed groups, newest first */
    /* Compact group records (tp__group_compact) come from slabs the pool
     * owns (records.c); freed records are reused (linked through hnext). */
    tp__group *compact_free;
    size_t n_compact_free;
    bool slab_making; /* a worker makes the next slab (tp__rec_slab_due) */
    /* Full records of per-call groups, kept for reuse (records.c). */
    tp__group *full_free;
    size_t n_full_free;
    size_t threads, waking;
    size_t waiters; /* threads waiting on changed */
    uint64_t wakeups; /* broadcasts on changed (tests count them) */
    int kind;
    int deferred_level; /* -1: none; see deferred_log */
    bool spinning;      /* a worker spins for work before parking */
    bool locked, closed, freeing;
    bool gathering;    /* a gather began: the pool is closing (pool.c) */
    bool forget_ended; /* tp_pool_opts.forget_ended */
    bool timings_on;   /* !tp_pool_opts.no_timings */

    /* ---- The rest: configuration and what changes rarely. ---- */
    pthread_cond_t changed; /* CLOCK_MONOTONIC; see tp__changed */
    char name[TP_NAME_MAX + 32];
    size_t stack_size;
    double idle_timeout;
    size_t spin_threads; /* spin only while the pool has at most this many
                            threads: 4 per online CPU */
    size_t creating;     /* threads being created (tp__dispatch) */
    size_t owed;         /* creations handed to those creators */
    uint64_t total_cancelled, total_refused, total_dropped;
    tp__timings timings[TP__SHARDS]; /* see tp__hist */
    unsigned shards_owned; /* bit i: a worker owns shard i (hist.c) */
    tp__counter *counters;
    struct tp__slab *slabs;
    size_t n_idle;
    tp__list idle;      /* parked workers, most recently parked first */
    tp__worker *zombie; /* the last retired worker, to be joined */
    tp__logq logq;
    /* A message logged under the lock, emitted by tp__unlock. */
    char deferred_log[200];

    /* SimpleTaskPool */
    tp_fn simple_fn;
    void *simple_arg;
    tp_opts simple_opts;
    char func_name[TP_NAME_MAX];
    size_t start_calls;

    /* ---- Read and written without the lock, last, on cache lines of
     * their own. Per-call submissions (inbox.c): ---- */
    tp__ring ring; /* on cache lines of its own */
    /* Read by every submitter and the spinning worker; written only when
     * they change. */
    _Alignas(64) _Atomic(tp__counter *) fast_counter; /* the counter of the
                     pool's first one-task apply or start: set once, it names
                     every entry of the ring */
    atomic_bool full;      /* occupied >= size, published by sem.c */
    atomic_bool watching;  /* a worker spins and will look at the ring */
    /* What the spinning worker watches (sem.c): a start may be claimed
     * now. On a line of its own, away from what every submitter reads:
     * it changes with nearly every claim and release. */
    _Alignas(64) atomic_bool claimable;
};

#ifndef NDEBUG
/* Debug builds check "caller holds pool->mu" claims (see lock.c). */
bool tp__held(tp_pool *pool);
#define TP_ASSERT_HELD(p) assert(tp__held(p))
#define TP_DEBUG_CHECKS 1 /* debug builds also recount what is kept counted */
#else
#define TP_ASSERT_HELD(p) ((void)(p))
#define TP_DEBUG_CHECKS 0
#endif
void tp__lock(tp_pool *pool);
/* True if the calling thread found a pool lock held the last few times it
 * took one (see lock.c): the lock is saturated. */
bool tp__lock_saturated(void);
/* Unlocks, then emits a message tp__log_locked stored meanwhile. */
void tp__unlock(tp_pool *pool);
/* Logs from under pool->mu: the handler (user code) runs only once the
 * lock is released. For rare errors; a second message before the unlock
 * replaces the first. */
void tp__log_locked(tp_pool *pool, tp_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Wakes threads waiting for a change of state (flush, gather, free). */
void tp__changed(tp_pool *pool);
/* Waits on cv (a CLOCK_MONOTONIC cond) with pool->mu held; deadline NULL:
 * none. Returns false on timeout. */
bool tp__wait(tp_pool *pool, pthread_cond_t *cv,
              const struct timespec *deadline);
/* tp__wait on pool->changed, counted in pool->waiters. */
bool tp__wait_changed(tp_pool *pool, const struct timespec *deadline);
/* Initialises a cond that waits on CLOCK_MONOTONIC. */
int tp__cond_init(pthread_cond_t *cv);
/* True if the calling thread is a worker of pool (in a task or callback). */
bool tp__in_pool(const tp_pool *pool);
/* The worker running on this thread, if any (worker.c). */
extern _Thread_local tp__worker *tp__self;
/* The task running on this thread, if any (wait.c). */
extern _Thread_local tp_task *tp__current;

/* group.c */
/* A new group (callbacks from opts, which may be NULL), with the explicit
 * name opts->group_name if there is one (its length checked by the
 * caller) and unnamed otherwise. */
tp__group *tp__group_new(int call, int src, size_t limit, const tp_opts *opts);
/* Writes g's name. Safe without the lock: a name never changes. */
void tp__group_format(const tp__group *g, char out[TP_NAME_MAX]);
tp__group *tp__group_find(tp_pool *pool, const char *name);
/* Checks g's explicit name is free, or gives g the next generated name of
 * (prefix, func); makes room in the index so that tp__group_attach cannot
 * fail. TP_EGROUP_EXISTS, TP_EINVAL (generated name too long), TP_ENOMEM. */
int tp__group_name(tp_pool *pool, tp__group *g, const char *prefix,
                   const char *func);
/* The counter of generated names for (prefix, func), made if new; NULL if
 * out of memory. */
tp__counter *tp__group_counter(tp_pool *pool, const char *prefix,
                               const char *func);
/* The next index of c's generated names; cannot fail (the caller checked
 * that the longest index fits in a name). */
size_t tp__counter_take(tp_pool *pool, tp__counter *c);
/* Makes g, a zeroed record (tp__rec_full_get), the one-task group of the
 * per-call submission c, named by the pool's fast counter and c->index,
 * and attaches it: findable, listed, its start pending (counted in
 * pool->pending_args) but in no run. The name index grows if it can, and
 * otherwise its chains grow. */
void tp__group_percall(tp_pool *pool, tp__group *g, const tp__entry *c);
void tp__group_attach(tp_pool *pool, tp__group *g);
void tp__group_unref(tp_pool *pool, tp__group *g);
/* tp__group_unref, but returns the record of a full group whose last
 * reference went (all it owned freed) for the caller to reuse or free,
 * and NULL otherwise. */
tp__group *tp__group_unref_record(tp_pool *pool, tp__group *g);
/* Frees a group that is not compact (compact ones go back to the pool's
 * slabs when their last reference goes, tp__group_unref). Without the
 * lock. */
void tp__group_free(tp__group *g);
void tp__group_admit(tp_pool *pool, tp__group *g);
/* True if tp__group_admit would admit a start of g now. */
bool tp__group_admits(const tp__group *g);
bool tp__group_pending(const tp__group *g);
void tp__group_retire_if_empty(tp_pool *pool, tp__group *g);
void tp__group_unindex(tp_pool *pool, tp__group *g);
/* Drops g's pending starts (they will never start) and pushes g onto
 * *drops; tp__drops_run then makes the discard and done calls after the
 * caller unlocked. */
void tp__group_drop(tp_pool *pool, tp__group *g, tp__group **drops);
/* Withdraws g's pending starts as if the call that made them had never
 * been made (no discard, not counted dropped): for a spawning call that
 * could have no thread and answers an error. */
void tp__group_withdraw(tp_pool *pool, tp__group *g);
void tp__drops_run(tp_pool *pool, tp__group *drops);
/* Makes sure that claiming one more start of g needs no allocation later:
 * room for its id, and for a group that admits starts as its tasks end, a
 * spare run node for each claimed or live task (run_frees: the claim
 * empties a run, whose node comes back). False if out of memory; then
 * nothing is claimed and the caller retries later. */
bool tp__group_reserve(tp__group *g, bool run_frees);
void tp__group_add_id(tp__group *g, tp_id id);
/* Starts of g claimed and waiting for its iterator's next(). */
static inline size_t tp__group_claims(const tp__group *g)
{
    return g->src == TP__SRC_ITER ? g->from.iter.claims : 0;
}
/* The bytes a compact group keeps. */
#define TP__COMPACT_SIZE offsetof(tp__group, nids)
/* How many ids g knows; valid while compact too. */
static inline size_t tp__group_nids(const tp__group *g)
{
    return g->compact ? g->has_id : g->nids;
}
/* g's known ids, ascending (tp__group_nids of them). */
static inline const tp_id *tp__group_ids(const tp__group *g)
{
    return g->compact ? &g->id0 : g->ids;
}
/* Fills info's counts for g (not its name). */
void tp__group_counts(const tp__group *g, tp_group_info *info);
/* The length of g's name, without formatting it. */
size_t tp__group_name_len(const tp__group *g);
/* Shrinks a finished one-task group to a compact copy if nothing but the
 * pool's lists refers to it. Returns the full record it replaced, for the
 * caller to free once it has unlocked, or NULL if g stays as it is. */
tp__group *tp__group_compact(tp_pool *pool, tp__group *g);
/* Forgets one of g's ids (forget_ended pools). */
void tp__group_del_id(tp__group *g, tp_id id);
bool tp__group_has_id(const tp__group *g, tp_id id);
void *tp__group_arg(const tp__group *g, size_t i);
/* Called by the worker whose task was g's last live one: makes a discard
 * owed by a drop (TP__DISCARD_DUE), unlocking for it. */
void tp__group_settle(tp_pool *pool, tp__group *g);

/* sem.c: the pool-size semaphore (pool->size, pool->occupied) and its FIFO
 * of pending starts (pool->fifo, pool->queued_total, group->runs). All
 * with pool->mu held. */
/* Room left: how many more starts may be claimed now. */
size_t tp__sem_room(const tp_pool *pool);
/* Sets the pool size. */
void tp__sem_resize(tp_pool *pool, size_t size);
/* Appends count starts of g; uses a spare node of g unless it extends the
 * FIFO's last run. g must have a spare node (tp__group_reserve). */
void tp__fifo_push(tp_pool *pool, tp__group *g, size_t count);
/* Claims one start of the head run (from tp__fifo_next): occupies a slot. */
void tp__fifo_take(tp_pool *pool, tp__run *run);
/* Frees the slot of a claimed start. pool->full shows it only once
 * tp__sem_publish is called: the caller does so before it unlocks or
 * stops claiming, and looks at the inbox again if it returns true. */
void tp__sem_release(tp_pool *pool);
/* Publishes pool->full (and claimable); true if the pool just stopped
 * being full. */
bool tp__sem_publish(tp_pool *pool);
/* Removes every queued start of g from the FIFO: O(runs of g). */
void tp__fifo_remove_group(tp_pool *pool, tp__group *g);
/* The ring entries below seen are published and indexed: they join the
 * FIFO after everything queued so far. */
void tp__fifo_ring_seen(tp_pool *pool, uint64_t seen);
/* What the next claim takes if the pool has room: the ring's first
 * pending entry (true) or the head run (false, *run set; NULL if none). */
bool tp__fifo_next(const tp_pool *pool, tp__run **run);
/* Claims the ring's first pending entry: occupies a slot. */
void tp__fifo_ring_take(tp_pool *pool);
/* Replaces the ring's first pending entry by the one start of g, a new
 * group made for it, in the same place in the FIFO. */
void tp__fifo_ring_place(tp_pool *pool, tp__group *g);
/* Drops every pending ring entry: how many there were. */
size_t tp__fifo_ring_drop(tp_pool *pool);
/* The group tp__fifo_ring_place made for the ring entry at pos if its
 * start still waits in the FIFO, or NULL: O(runs queued after it). */
tp__group *tp__fifo_ring_group(const tp_pool *pool, uint64_t pos);
static inline size_t tp__fifo_ring_pending(const tp_pool *pool)
{
    return (size_t)(atomic_load_explicit(&((tp_pool *)pool)->ring_seen,
                                         memory_order_relaxed) -
                    pool->ring_head);
}

/* inbox.c: per-call submissions that skip the lock. A one-task apply or
 * start without a name to return and without callbacks of its own is
 * written into the pool's ring by its caller; the next thread to take the
 * lock through tp__enter "sees" what the ring holds, in submission order:
 * names' indices given, joined to the FIFO, counted pending. */
/* Pushes a start of fn(arg), submitted at born_ns: false if the fast
 * path is shut (the pool is locked, closed or being freed) or the ring
 * cannot grow: then use the lock. *pos is its position once pushed. No
 * lock held. */
bool tp__inbox_push(tp_pool *pool, tp_fn fn, void *arg, uint64_t born_ns,
                    uint64_t *pos);
/* Withdraws the start pushed at pos, for a submitter whose dispatch could
 * not have a thread: true if it had not started (then it never will, and
 * is not counted), false if it started or its group could not be made
 * (out of memory: it stays pending). With pool->mu held. */
bool tp__inbox_withdraw(tp_pool *pool, uint64_t pos);
/* True if submissions wait unseen in the ring (read without the lock). */
bool tp__inbox_waiting(const tp_pool *pool);
/* Sees the ring's new submissions: all reserved so far (waiting for the
 * producers still writing theirs), or, unless all, those published before
 * the first that is not. With pool->mu held. */
void tp__inbox_drain(tp_pool *pool, bool all);
/* What a spinning worker watches (seq_cst, as tp__inbox_waiting): true if
 * submissions wait unseen, unless a worker's drain stopped at an entry
 * not yet published and nothing was reserved since (then its producer,
 * publishing, leaves it to the spinner, which takes the lock when its
 * spin ends). */
bool tp__inbox_news(const tp_pool *pool);
/* Claims the first pending ring entry (tp__fifo_next said it is next):
 * gives it its group and occupies a slot. Returns the group, with
 * *admitted_ns the entry's submission time; NULL if out of memory (then
 * nothing is claimed). Its record is *mine, the worker's own, if set
 * (tp__rec_full_get). With pool->mu held. */
tp__group *tp__inbox_claim(tp_pool *pool, uint64_t *admitted_ns,
                           tp__group **mine);
/* Drops every pending ring entry (they have no callbacks to call): how
 * many. With pool->mu held. */
size_t tp__inbox_drop(tp_pool *pool);
/* Shuts the fast path (TP_OK from now on only under the lock) or opens
 * it, then drains. With pool->mu held. */
void tp__inbox_shut(tp_pool *pool, bool shut);
/* Takes pool->mu and drains: how every API call and worker enters the
 * pool, so that they all see the submissions that returned before. */
void tp__enter(tp_pool *pool);
/* tp__enter, then gives every pending ring entry its group, for the calls
 * that look at groups. False if out of memory: then the entries left have
 * no group yet (they still start in their turn). */
bool tp__enter_groups(tp_pool *pool);

/* records.c: memory for compact group records. */
/* If the free compact records run low and no worker makes a slab yet:
 * the size of the next, which the caller makes with tp__rec_slab_make
 * once unlocked and adds with tp__rec_slab_add once locked again (it must
 * do so, even with NULL: out of memory). Otherwise 0. With pool->mu held. */
size_t tp__rec_slab_due(tp_pool *pool);
/* A slab of n compact records, or NULL; without the lock. */
struct tp__slab *tp__rec_slab_make(size_t n);
void tp__rec_slab_add(tp_pool *pool, struct tp__slab *slab);
/* A compact record; NULL if out of memory. With pool->mu held. */
tp__group *tp__rec_compact_get(tp_pool *pool);
void tp__rec_compact_put(tp_pool *pool, tp__group *r);
/* A new zeroed full record for a per-call group; NULL if out of memory. */
tp__group *tp__rec_full_new(void);
/* A zeroed full record for a per-call group (no explicit name): *mine
 * (a worker's own, then NULL) if set, else one the pool kept, else new;
 * NULL if out of memory. */
tp__group *tp__rec_full_get(tp_pool *pool, tp__group **mine);
/* Keeps r, the full record of a group no longer used, for
 * tp__rec_full_get: in *mine if mine and *mine is empty, else in the
 * pool; returns it instead if the pool keeps enough or r has a name of
 * its own (the caller frees it, once unlocked). NULL is a no-op. */
tp__group *tp__rec_full_put(tp_pool *pool, tp__group *r, tp__group **mine);
/* Frees what the pool keeps for records (tp_pool_free). */
void tp__rec_pool_free(tp_pool *pool);

/* worker.c */
/* Sees the ring's published entries, then wakes parked workers, or creates threads (at
 * most one from an API call, two from a worker), for claimable starts no
 * worker heads for. May unlock. TP_ENOMEM/TP_ESYS if a thread could not
 * be had. */
int tp__dispatch(tp_pool *pool);
/* Joins the last retired worker (tp_pool_free). */
void tp__reap(tp_pool *pool);

/* wait.c */
/* Marks a running task cancelled (true) or does nothing (false). */
bool tp__mark_cancelled(tp_pool *pool, tp_task *t);
/* Wakes a cancelled task from whatever taskpool wait it is in. Called
 * with no library lock held (it may wait up to 5 ms for the mutex of a
 * tp_cond_wait), and with a pin on the task's worker. */
void tp__wake(tp_task *t);

/* Cancelling marks tasks under pool->mu but wakes them after
 * releasing it, so that the woken tasks do not convoy on pool->mu. Each
 * deferred wake pins the task's worker (worker->pins), which then neither
 * reuses nor frees the task until the wake is delivered (worker.c). The
 * list runs through the tasks (a task is marked cancelled only once), so
 * deferring never allocates. */
typedef struct tp__wakes {
    tp_task *head;
} tp__wakes;
/* Marks t cancelled and pins it for a later wake; false if it was not
 * running. */
bool tp__cancel_later(tp_pool *pool, tp_task *t, tp__wakes *w);
/* Delivers the deferred wakes and unpins. Called without the lock. */
void tp__wake_all(tp__wakes *w);

/* spawn.c */
int tp__spawn(tp_pool *pool, tp__group *g, const tp_opts *opts,
              const char *prefix, char group_out[TP_NAME_MAX]);

/* log.c */
extern atomic_int tp__log_min;
int tp__log_init(void);
static inline bool tp__log_on(tp_log_level level)
{
    int min = atomic_load_explicit(&tp__log_min, memory_order_relaxed);
    if (min < 0)
        min = tp__log_init();
    return (int)level >= min;
}
void tp__log_write(tp_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Logs if the level is enabled; a disabled message costs one load. */
#define tp__log(level, ...)                                                    \
    do {                                                                       \
        if (tp__log_on(level))                                                 \
            tp__log_write(level, __VA_ARGS__);                                 \
    } while (0)

/* Task messages in event order (see tp__logq). tp__logq_turn is called
 * with pool->mu held and returns UINT64_MAX if level is disabled; every
 * other turn must be passed to tp__logq_wait and then tp__logq_done, with
 * no engine lock held, by the thread that took it. */
void tp__logq_init(tp__logq *q);
void tp__logq_destroy(tp__logq *q);
uint64_t tp__logq_turn(tp__logq *q, tp_log_level level);
void tp__logq_wait(tp__logq *q, uint64_t turn);
void tp__logq_done(tp__logq *q, uint64_t turn);

/* Fault injection for tests: the next n worker thread creations fail. */
extern atomic_int tp__fail_thread_create;
/* Test hook, NULL in use: called by tp__dispatch, unlocked, before it
 * creates a thread, to widen that window. */
extern void (*tp__create_hook)(tp_pool *pool);
/* Test hook, NULL in use: called by a worker whose spin for work ended,
 * before it takes the lock again, to widen that window. */
extern void (*tp__spin_hook)(void);
/* Tests: the next n task ends that could stand by (worker.c) do, whether
 * or not the lock is saturated. */
extern atomic_int tp__force_standby;

/* The longest a task's tp_cond_wait waits before it returns (as a spurious
 * wake-up), in seconds (default 1): the bound on how late a cancel is
 * noticed in the one case the canceller cannot rule out a lost wake-up
 * (the waiter preempted for more than 5 ms between checking its flag and
 * blocking). Tests raise it to make a lost wake-up hang. */
extern double tp__cond_slice;
/* Test hook, NULL in use: called by tp_cond_wait between checking the
 * cancel flag and blocking, to widen that window. */
extern void (*tp__cond_window_hook)(void);

/* ---- time ---- */

static inline uint64_t tp__now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A shard of pool->timings for a new worker: its own (1 to TP__SHARDS - 1)
 * while one is free, else 0, the shared one. With pool->mu held. */
unsigned tp__shard_take(tp_pool *pool);
/* Gives back what tp__shard_take gave, as the worker retires. */
void tp__shard_give(tp_pool *pool, unsigned shard);
/* Adds a task's two observations to a shard, with no lock held: own if
 * the caller is the shard's only writer (see hist.c). */
void tp__timing_add(tp__timings *shard, bool own, uint64_t admitted_ns,
                    uint64_t started_ns, uint64_t ended_ns);
/* Adds what a shard recorded to *out. */
void tp__timings_sum(tp_timings *out, const tp__timings *shard);

static inline struct timespec tp__deadline(clockid_t clock, double seconds)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    if (seconds > 1e9)
        seconds = 1e9;
    time_t whole = (time_t)seconds;
    ts.tv_sec += whole;
    ts.tv_nsec += (long)((seconds - (double)whole) * 1e9);
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

static inline bool tp__before(const struct timespec *a,
                              const struct timespec *b)
{
    return a->tv_sec < b->tv_sec ||
           (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

#endif
