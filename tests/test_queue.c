/* SPDX-License-Identifier: MIT */
/* The queue suite: FIFO order, bounds, the _nowait variants, join and
 * item_processed, cancellation of tasks blocked in put/get/join, and
 * multi-producer/multi-consumer stress with exact-delivery invariants.
 *
 * Tests never sleep to synchronise: they wait until the queue reports a
 * blocked thread (tp__queue_counts) or on counters. */
#include "support.h"

#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Test hook from src/queue.c (static library only). */
void tp__queue_counts(const tp_queue *q, size_t *getters, size_t *putters,
                      size_t *joiners, size_t *unfinished);

#define ITEM(i) ((void *)(uintptr_t)(i))
#define VAL(p) ((uintptr_t)(p))

static size_t getters_of(tp_queue *q)
{
    size_t n;
    tp__queue_counts(q, &n, NULL, NULL, NULL);
    return n;
}

static size_t putters_of(tp_queue *q)
{
    size_t n;
    tp__queue_counts(q, NULL, &n, NULL, NULL);
    return n;
}

static size_t joiners_of(tp_queue *q)
{
    size_t n;
    tp__queue_counts(q, NULL, NULL, &n, NULL);
    return n;
}

static size_t unfinished_of(tp_queue *q)
{
    size_t n;
    tp__queue_counts(q, NULL, NULL, NULL, &n);
    return n;
}

/* wait_until predicates: "at least n threads block in ..." */
typedef struct blocked {
    tp_queue *q;
    size_t n;
} blocked;

static bool getters_at_least(void *arg)
{
    blocked *b = arg;
    return getters_of(b->q) >= b->n;
}

static bool putters_at_least(void *arg)
{
    blocked *b = arg;
    return putters_of(b->q) >= b->n;
}

static bool joiners_at_least(void *arg)
{
    blocked *b = arg;
    return joiners_of(b->q) >= b->n;
}

static bool full_with_putters(void *arg)
{
    blocked *b = arg;
    return tp_queue_size(b->q) == 16 && putters_of(b->q) >= b->n;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- queue-1: basics ---- */

/* queue-1.1: items come out in the order they went in, across the ring's
 * growth (also while wrapped) and shrinking. */
START_TEST(fifo_order)
{
    tp_queue *q = tp_queue_new(0);
    ck_assert_ptr_nonnull(q);
    ck_assert_uint_eq(tp_queue_size(q), 0);

    /* Wrap the ring first, then grow it while wrapped. */
    uintptr_t in = 1, out = 1;
    for (int i = 0; i < 10; i++)
        ck_assert_int_eq(tp_queue_put(q, NULL, ITEM(in++)), TP_OK);
    for (int i = 0; i < 8; i++) {
        void *p;
        ck_assert_int_eq(tp_queue_get(q, NULL, &p), TP_OK);
        ck_assert_uint_eq(VAL(p), out++);
    }
    for (int i = 0; i < 5000; i++)
        ck_assert_int_eq(tp_queue_put_nowait(q, ITEM(in++)), TP_OK);
    ck_assert_uint_eq(tp_queue_size(q), in - out);
    /* Drain in an interleaved pattern so that shrinking happens while
     * items remain. */
    while (out < in) {
        void *p;
        ck_assert_int_eq(tp_queue_get_nowait(q, &p), TP_OK);
        ck_assert_uint_eq(VAL(p), out++);
        if (out % 7 == 0 && in < 8000)
            ck_assert_int_eq(tp_queue_put(q, NULL, ITEM(in++)), TP_OK);
    }
    ck_assert_uint_eq(tp_queue_size(q), 0);
    void *p = ITEM(42);
    ck_assert_int_eq(tp_queue_get_nowait(q, &p), TP_EAGAIN);
    ck_assert_ptr_eq(p, ITEM(42)); /* untouched on failure */
    tp_queue_free(q);
}
END_TEST

/* queue-1.2: NULL is an ordinary item. */
START_TEST(null_item)
{
    tp_queue *q = tp_queue_new(1);
    ck_assert_int_eq(tp_queue_put(q, NULL, NULL), TP_OK);
    void *p = ITEM(1);
    ck_assert_int_eq(tp_queue_get(q, NULL, &p), TP_OK);
    ck_assert_ptr_null(p);
    tp_queue_free(q);
}
END_TEST

/* queue-1.3: the _nowait variants never wait: TP_EAGAIN when full or
 * empty; bad arguments are TP_EINVAL; free(NULL) is a no-op. */
START_TEST(nowait_variants)
{
    tp_queue *q = tp_queue_new(2);
    void *p;
    ck_assert_int_eq(tp_queue_get_nowait(q, &p), TP_EAGAIN);
    ck_assert_int_eq(tp_queue_put_nowait(q, ITEM(1)), TP_OK);
    ck_assert_int_eq(tp_queue_put_nowait(q, ITEM(2)), TP_OK);
    ck_assert_int_eq(tp_queue_put_nowait(q, ITEM(3)), TP_EAGAIN);
    ck_assert_uint_eq(tp_queue_size(q), 2);
    ck_assert_int_eq(tp_queue_get_nowait(q, &p), TP_OK);
    ck_assert_uint_eq(VAL(p), 1);
    ck_assert_int_eq(tp_queue_put_nowait(q, ITEM(3)), TP_OK);
    ck_assert_int_eq(tp_queue_get_nowait(q, &p), TP_OK);
    ck_assert_uint_eq(VAL(p), 2);
    ck_assert_int_eq(tp_queue_get_nowait(q, &p), TP_OK);
    ck_assert_uint_eq(VAL(p), 3);
    ck_assert_int_eq(tp_queue_get_nowait(q, &p), TP_EAGAIN);

    ck_assert_int_eq(tp_queue_put(NULL, NULL, ITEM(1)), TP_EINVAL);
    ck_assert_int_eq(tp_queue_put_nowait(NULL, ITEM(1)), TP_EINVAL);
    ck_assert_int_eq(tp_queue_get(NULL, NULL, &p), TP_EINVAL);
    ck_assert_int_eq(tp_queue_get(q, NULL, NULL), TP_EINVAL);
    ck_assert_int_eq(tp_queue_get_nowait(NULL, &p), TP_EINVAL);
    ck_assert_int_eq(tp_queue_get_nowait(q, NULL), TP_EINVAL);
    ck_assert_int_eq(tp_queue_join(NULL, NULL), TP_EINVAL);
    ck_assert_uint_eq(tp_queue_size(NULL), 0);
    tp_queue_item_processed(NULL);
    tp_queue_free(q);
    tp_queue_free(NULL);
}
END_TEST

/* A plain thread doing one blocking put or get. */
typedef struct op {
    tp_queue *q;
    void *item;
    int rc;
    counter done;
} op;

static void *put_thread(void *arg)
{
    op *o = arg;
    o->rc = tp_queue_put(o->q, NULL, o->item);
    counter_add(&o->done, 1);
    return NULL;
}

static void *get_thread(void *arg)
{
    op *o = arg;
    o->rc = tp_queue_get(o->q, NULL, &o->item);
    counter_add(&o->done, 1);
    return NULL;
}

/* queue-1.4: put on a full bounded queue blocks until a get makes room;
 * then the waiting item goes in behind the others. */
START_TEST(bounded_put_blocks)
{
    tp_queue *q = tp_queue_new(2);
    ck_assert_int_eq(tp_queue_put(q, NULL, ITEM(1)), TP_OK);
    ck_assert_int_eq(tp_queue_put(q, NULL, ITEM(2)), TP_OK);

    op o = {.q = q, .item = ITEM(3)};
    counter_init(&o.done);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, put_thread, &o), 0);
    blocked b = {q, 1};
    ck_assert(wait_until(putters_at_least, &b));
    ck_assert_int_eq(counter_get(&o.done), 0);
    ck_assert_uint_eq(tp_queue_size(q), 2);

    void *p;
    ck_assert_int_eq(tp_queue_get(q, NULL, &p), TP_OK);
    ck_assert_uint_eq(VAL(p), 1);
    ck_assert(counter_wait(&o.done, 1));
    pthread_join(th, NULL);
    ck_assert_int_eq(o.rc, TP_OK);
    ck_assert_uint_eq(tp_queue_size(q), 2);
    ck_assert_int_eq(tp_queue_get(q, NULL, &p), TP_OK);
    ck_assert_uint_eq(VAL(p), 2);
    ck_assert_int_eq(tp_queue_get(q, NULL, &p), TP_OK);
    ck_assert_uint_eq(VAL(p), 3);
    counter_destroy(&o.done);
    tp_queue_free(q);
}
END_TEST

/* queue-1.5: get on an empty queue blocks until a put. */
START_TEST(get_blocks_until_put)
{
    tp_queue *q = tp_queue_new(0);
    op o = {.q = q};
    counter_init(&o.done);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, get_thread, &o), 0);
    blocked b = {q, 1};
    ck_assert(wait_until(getters_at_least, &b));
    ck_assert_int_eq(counter_get(&o.done), 0);
    ck_assert_int_eq(tp_queue_put_nowait(q, ITEM(7)), TP_OK);
    ck_assert(counter_wait(&o.done, 1));
    pthread_join(th, NULL);
    ck_assert_int_eq(o.rc, TP_OK);
    ck_assert_uint_eq(VAL(o.item), 7);
    ck_assert_uint_eq(tp_queue_size(q), 0);
    counter_destroy(&o.done);
    tp_queue_free(q);
}
END_TEST

/* ---- queue-2: join and item_processed ---- */

typedef struct join_ctx {
    tp_queue *q;
    counter processed; /* items marked processed by consumers */
    counter joined;    /* joins that returned TP_OK */
} join_ctx;

static void *join_thread(void *arg)
{
    join_ctx *c = arg;
    if (tp_queue_join(c->q, NULL) == TP_OK)
        counter_add(&c->joined, 1);
    return NULL;
}

static void *consume_n(void *arg)
{
    join_ctx *c = arg;
    for (;;) {
        void *p;
        if (tp_queue_get(c->q, NULL, &p) != TP_OK)
            break;
        if (p == NULL) { /* sentinel: stop, and count it processed */
            tp_queue_item_processed(c->q);
            break;
        }
        counter_add(&c->processed, 1);
        tp_queue_item_processed(c->q);
    }
    return NULL;
}

/* queue-2.1: join on a queue with nothing unfinished returns at once;
 * join blocks while items are unfinished -- even after they were all got
 * -- and returns once each is marked processed. */
START_TEST(join_waits_for_processed)
{
    tp_queue *q = tp_queue_new(0);
    ck_assert_int_eq(tp_queue_join(q, NULL), TP_OK);

    join_ctx c = {.q = q};
    counter_init(&c.processed);
    counter_init(&c.joined);
    for (uintptr_t i = 1; i <= 3; i++)
        ck_assert_int_eq(tp_queue_put(q, NULL, ITEM(i)), TP_OK);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, join_thread, &c), 0);
    blocked b = {q, 1};
    ck_assert(wait_until(joiners_at_least, &b));

    void *p;
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(tp_queue_get(q, NULL, &p), TP_OK);
    ck_assert_uint_eq(tp_queue_size(q), 0);
    ck_assert_uint_eq(unfinished_of(q), 3);
    tp_queue_item_processed(q);
    tp_queue_item_processed(q);
    ck_assert_uint_eq(unfinished_of(q), 1);
    ck_assert_int_eq(counter_get(&c.joined), 0);
    ck_assert_uint_eq(joiners_of(q), 1);
    tp_queue_item_processed(q);
    ck_assert(counter_wait(&c.joined, 1));
    pthread_join(th, NULL);
    counter_destroy(&c.processed);
    counter_destroy(&c.joined);
    tp_queue_free(q);
}
END_TEST

/* queue-2.2: extra item_processed calls are a no-op: they do not bank
 * credit against items put later. */
START_TEST(extra_processed_is_noop)
{
    tp_queue *q = tp_queue_new(0);
    tp_queue_item_processed(q);
    tp_queue_item_processed(q);
    ck_assert_uint_eq(unfinished_of(q), 0);
    ck_assert_int_eq(tp_queue_put(q, NULL, ITEM(1)), TP_OK);
    ck_assert_uint_eq(unfinished_of(q), 1);
    void *p;
    ck_assert_int_eq(tp_queue_get(q, NULL, &p), TP_OK);
    tp_queue_item_processed(q);
    tp_queue_item_processed(q);
    ck_assert_uint_eq(unfinished_of(q), 0);
    ck_assert_int_eq(tp_queue_join(q, NULL), TP_OK);
    tp_queue_free(q);
}
END_TEST

/* queue-2.3: with several consumers and joiners, join returns only when
 * every item put has been processed, and then all of them had been. */
START_TEST(join_many_consumers)
{
    enum { ITEMS = 20000, CONSUMERS = 3, JOINERS = 2 };
    tp_queue *q = tp_queue_new(64);
    join_ctx c = {.q = q};
    counter_init(&c.processed);
    counter_init(&c.joined);
    pthread_t cons[CONSUMERS], joins[JOINERS];
    for (int i = 0; i < CONSUMERS; i++)
        ck_assert_int_eq(pthread_create(&cons[i], NULL, consume_n, &c), 0);
    for (uintptr_t i = 1; i <= ITEMS; i++)
        ck_assert_int_eq(tp_queue_put(q, NULL, ITEM(i)), TP_OK);
    for (int i = 0; i < JOINERS; i++)
        ck_assert_int_eq(pthread_create(&joins[i], NULL, join_thread, &c), 0);
    ck_assert_int_eq(tp_queue_join(q, NULL), TP_OK);
    ck_assert_int_eq(counter_get(&c.processed), ITEMS);
    ck_assert(counter_wait(&c.joined, JOINERS));
    for (int i = 0; i < JOINERS; i++)
        pthread_join(joins[i], NULL);
    for (int i = 0; i < CONSUMERS; i++)
        ck_assert_int_eq(tp_queue_put(q, NULL, NULL), TP_OK);
    for (int i = 0; i < CONSUMERS; i++)
        pthread_join(cons[i], NULL);
    ck_assert_int_eq(tp_queue_join(q, NULL), TP_OK);
    ck_assert_uint_eq(tp_queue_size(q), 0);
    counter_destroy(&c.processed);
    counter_destroy(&c.joined);
    tp_queue_free(q);
}
END_TEST

/* ---- queue-3: cancellation ---- */

enum { OP_GET, OP_PUT, OP_JOIN };

typedef struct qtask_ctx {
    tp_queue *q;
    int op;
    counter entered;   /* tasks about to block */
    counter cancelled; /* queue calls that returned TP_ECANCELED */
    counter other;     /* queue calls that returned anything else */
    counter ended;     /* end callbacks */
    double t_cancel;   /* when the test cancelled */
    double t_last_end; /* when the last end callback ran */
    pthread_mutex_t mu;
} qtask_ctx;

static void qctx_init(qtask_ctx *c, tp_queue *q, int op)
{
    memset(c, 0, sizeof *c);
    c->q = q;
    c->op = op;
    counter_init(&c->entered);
    counter_init(&c->cancelled);
    counter_init(&c->other);
    counter_init(&c->ended);
    pthread_mutex_init(&c->mu, NULL);
}

static void qctx_destroy(qtask_ctx *c)
{
    counter_destroy(&c->entered);
    counter_destroy(&c->cancelled);
    counter_destroy(&c->other);
    counter_destroy(&c->ended);
    pthread_mutex_destroy(&c->mu);
}

static int queue_task(tp_task *task, void *arg)
{
    qtask_ctx *c = arg;
    counter_add(&c->entered, 1);
    int rc;
    void *p;
    switch (c->op) {
    case OP_GET:
        rc = tp_queue_get(c->q, task, &p);
        break;
    case OP_PUT:
        rc = tp_queue_put(c->q, task, ITEM(99));
        break;
    default:
        rc = tp_queue_join(c->q, task);
        break;
    }
    counter_add(rc == TP_ECANCELED ? &c->cancelled : &c->other, 1);
    return 0;
}

static void on_end(tp_pool *pool, tp_id id, void *arg)
{
    (void)pool;
    (void)id;
    qtask_ctx *c = arg;
    pthread_mutex_lock(&c->mu);
    c->t_last_end = now_s();
    pthread_mutex_unlock(&c->mu);
    counter_add(&c->ended, 1);
}

/* Starts n tasks doing c->op in a new group, waits until all of them
 * block in the queue, cancels the group (or, if by_id, each task by id),
 * and checks that every one returned TP_ECANCELED promptly. */
static void cancel_blocked(tp_queue *q, int op, size_t n, bool by_id)
{
    qtask_ctx c;
    qctx_init(&c, q, op);
    tp_pool *pool = tp_pool_new(NULL);
    ck_assert_ptr_nonnull(pool);
    tp_opts opts = {.end_callback = on_end, .callback_arg = &c};
    char group[TP_NAME_MAX];
    ck_assert_int_eq(tp_apply(pool, queue_task, &c, n, &opts, group), TP_OK);

    blocked b = {q, n};
    bool (*pred)(void *) = op == OP_GET   ? getters_at_least
                           : op == OP_PUT ? putters_at_least
                                          : joiners_at_least;
    ck_assert(wait_until(pred, &b));
    ck_assert_int_eq(counter_get(&c.ended), 0);

    c.t_cancel = now_s();
    if (by_id) {
        tp_ids ids;
        const char *groups[] = {group};
        ck_assert_int_eq(tp_get_group_ids(pool, groups, 1, &ids), TP_OK);
        ck_assert_uint_eq(ids.len, n);
        ck_assert_int_eq(tp_cancel(pool, ids.v, ids.len), TP_OK);
        tp_ids_free(&ids);
    } else {
        ck_assert_int_eq(tp_cancel_group(pool, group), TP_OK);
    }
    ck_assert(counter_wait(&c.ended, (long)n));
    ck_assert_int_eq(counter_get(&c.cancelled), (long)n);
    ck_assert_int_eq(counter_get(&c.other), 0);
    pthread_mutex_lock(&c.mu);
    double latency = c.t_last_end - c.t_cancel;
    pthread_mutex_unlock(&c.mu);
    /* "Promptly": far below any timeout; the engine's worst case for a
     * busy mutex is 20 ms. Generous for loaded and sanitizer builds. */
    ck_assert_msg(latency < 1.0 * time_multiplier(), "cancel took %.3f s",
                  latency);
    ck_assert_uint_eq(getters_of(q) + putters_of(q) + joiners_of(q), 0);
    ck_assert_int_eq(tp_gather_and_close(pool), TP_OK);
    tp_pool_free(pool);
    qctx_destroy(&c);
}

/* queue-3.1: tasks blocked in get on an empty queue return TP_ECANCELED
 * promptly after tp_cancel_group, and take nothing. */
START_TEST(cancel_getters_by_group)
{
    tp_queue *q = tp_queue_new(0);
    cancel_blocked(q, OP_GET, 4, false);
    ck_assert_uint_eq(tp_queue_size(q), 0);
    tp_queue_free(q);
}
END_TEST

/* queue-3.2: tasks blocked in put on a full queue return TP_ECANCELED
 * promptly after tp_cancel (by id), and add nothing. */
START_TEST(cancel_putters_by_id)
{
    tp_queue *q = tp_queue_new(1);
    ck_assert_int_eq(tp_queue_put(q, NULL, ITEM(1)), TP_OK);
    cancel_blocked(q, OP_PUT, 3, true);
    ck_assert_uint_eq(tp_queue_size(q), 1);
    void *p;
    ck_assert_int_eq(tp_queue_get_nowait(q, &p), TP_OK);
    ck_assert_uint_eq(VAL(p), 1);
    tp_queue_free(q);
}
END_TEST

/* queue-3.3: tasks blocked in join return TP_ECANCELED after
 * tp_cancel_group; the unfinished count is untouched. */
START_TEST(cancel_joiners)
{
    tp_queue *q = tp_queue_new(0);
    ck_assert_int_eq(tp_queue_put(q, NULL, ITEM(1)), TP_OK);
    cancel_blocked(q, OP_JOIN, 2, false);
    ck_assert_uint_eq(unfinished_of(q), 1);
    tp_queue_free(q);
}
END_TEST

/* queue-3.4: a task cancelled before it calls the queue gets
 * TP_ECANCELED at once, even when the queue could serve it, and leaves
 * the queue unchanged. */
typedef struct precancel {
    tp_queue *q;
    gate g;
    counter at_gate;
    int rc_get, rc_put, rc_join;
    counter done;
} precancel;

static int precancel_task(tp_task *task, void *arg)
{
    precancel *c = arg;
    counter_add(&c->at_gate, 1);
    (void)gate_pass(&c->g, task); /* returns once cancelled */
    void *p;
    c->rc_get = tp_queue_get(c->q, task, &p);
    c->rc_put = tp_queue_put(c->q, task, ITEM(2));
    c->rc_join = tp_queue_join(c->q, task);
    counter_add(&c->done, 1);
    return 0;
}

START_TEST(already_cancelled)
{
    precancel c = {0};
    c.q = tp_queue_new(0);
    gate_init(&c.g);
    counter_init(&c.at_gate);
    counter_init(&c.done);
    ck_assert_int_eq(tp_queue_put(c.q, NULL, ITEM(1)), TP_OK);
    tp_pool *pool = tp_pool_new(NULL);
    char group[TP_NAME_MAX];
    ck_assert_int_eq(tp_apply(pool, precancel_task, &c, 1, NULL, group), TP_OK);
    ck_assert(counter_wait(&c.at_gate, 1));
    ck_assert_int_eq(tp_cancel_group(pool, group), TP_OK);
    ck_assert(counter_wait(&c.done, 1));
    ck_assert_int_eq(c.rc_get, TP_ECANCELED);
    ck_assert_int_eq(c.rc_put, TP_ECANCELED);
    ck_assert_int_eq(c.rc_join, TP_ECANCELED);
    ck_assert_uint_eq(tp_queue_size(c.q), 1);
    ck_assert_uint_eq(unfinished_of(c.q), 1);
    ck_assert_int_eq(tp_gather_and_close(pool), TP_OK);
    tp_pool_free(pool);
    gate_destroy(&c.g);
    counter_destroy(&c.at_gate);
    counter_destroy(&c.done);
    tp_queue_free(c.q);
}
END_TEST

/* queue-3.5: a getter cancelled at the instant an item arrives never
 * loses it: either the cancelled task took it (TP_OK) or another waiting
 * getter does. Repeated to hit the race from both sides. */
typedef struct race {
    tp_queue *q;
    counter entered;
    void *task_item;
    int task_rc;
    counter done;
} race;

static int race_getter(tp_task *task, void *arg)
{
    race *r = arg;
    counter_add(&r->entered, 1);
    r->task_rc = tp_queue_get(r->q, task, &r->task_item);
    counter_add(&r->done, 1);
    return 0;
}

START_TEST(cancelled_getter_passes_item_on)
{
    tp_pool *pool = tp_pool_new(NULL);
    int rounds = 200;
    for (int i = 0; i < rounds; i++) {
        race r = {0};
        r.q = tp_queue_new(0);
        counter_init(&r.entered);
        counter_init(&r.done);
        op o = {.q = r.q};
        counter_init(&o.done);
        pthread_t th;
        ck_assert_int_eq(pthread_create(&th, NULL, get_thread, &o), 0);
        char group[TP_NAME_MAX];
        ck_assert_int_eq(tp_apply(pool, race_getter, &r, 1, NULL, group),
                         TP_OK);
        blocked b = {r.q, 2};
        ck_assert(wait_until(getters_at_least, &b));
        /* One item, and the task cancelled at about the same time. */
        if (i % 2)
            ck_assert_int_eq(tp_queue_put(r.q, NULL, ITEM(5)), TP_OK);
        ck_assert_int_eq(tp_cancel_group(pool, group), TP_OK);
        if (i % 2 == 0)
            ck_assert_int_eq(tp_queue_put(r.q, NULL, ITEM(5)), TP_OK);
        ck_assert(counter_wait(&r.done, 1));
        if (r.task_rc == TP_OK) {
            /* The task got it; release the thread with a second item. */
            ck_assert_uint_eq(VAL(r.task_item), 5);
            ck_assert_int_eq(tp_queue_put(r.q, NULL, ITEM(6)), TP_OK);
            ck_assert(counter_wait(&o.done, 1));
            ck_assert_uint_eq(VAL(o.item), 6);
        } else {
            ck_assert_int_eq(r.task_rc, TP_ECANCELED);
            ck_assert(counter_wait(&o.done, 1));
            ck_assert_uint_eq(VAL(o.item), 5);
        }
        pthread_join(th, NULL);
        ck_assert_int_eq(o.rc, TP_OK);
        ck_assert_uint_eq(tp_queue_size(r.q), 0);
        counter_destroy(&o.done);
        counter_destroy(&r.entered);
        counter_destroy(&r.done);
        tp_queue_free(r.q);
    }
    ck_assert_int_eq(tp_gather_and_close(pool), TP_OK);
    tp_pool_free(pool);
}
END_TEST

/* ---- queue-4: stress ---- */

enum { PRODUCERS = 4, CONSUMERS = 4 };
#define SENTINEL ((void *)(uintptr_t)UINTPTR_MAX)

typedef struct stress {
    tp_queue *q;
    size_t per_producer;
    unsigned char *seen; /* PRODUCERS * per_producer marks */
    pthread_mutex_t mu;
    bool order_ok;
    long dup;
} stress;

typedef struct stress_worker {
    stress *s;
    uintptr_t id;
} stress_worker;

static void *stress_producer(void *arg)
{
    stress_worker *w = arg;
    stress *s = w->s;
    for (uintptr_t i = 0; i < s->per_producer; i++) {
        void *item = ITEM((w->id << 24) | i);
        int rc = (i % 3 == 0) ? tp_queue_put_nowait(s->q, item) : TP_EAGAIN;
        if (rc == TP_EAGAIN)
            rc = tp_queue_put(s->q, NULL, item);
        if (rc != TP_OK)
            abort();
    }
    return NULL;
}

static void *stress_consumer(void *arg)
{
    stress_worker *w = arg;
    stress *s = w->s;
    uintptr_t last[PRODUCERS];
    for (int i = 0; i < PRODUCERS; i++)
        last[i] = UINTPTR_MAX;
    bool order_ok = true;
    long dup = 0;
    for (;;) {
        void *p;
        int rc = tp_queue_get_nowait(s->q, &p);
        if (rc == TP_EAGAIN)
            rc = tp_queue_get(s->q, NULL, &p);
        if (rc != TP_OK)
            abort();
        tp_queue_item_processed(s->q);
        if (p == SENTINEL)
            break;
        uintptr_t prod = VAL(p) >> 24, i = VAL(p) & 0xffffff;
        /* FIFO: each consumer sees each producer's items in order. */
        if (last[prod] != UINTPTR_MAX && i <= last[prod])
            order_ok = false;
        last[prod] = i;
        pthread_mutex_lock(&s->mu);
        if (s->seen[prod * s->per_producer + i]++)
            dup++;
        pthread_mutex_unlock(&s->mu);
    }
    pthread_mutex_lock(&s->mu);
    s->order_ok &= order_ok;
    s->dup += dup;
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

static void run_stress(size_t capacity)
{
    stress s = {0};
    s.q = tp_queue_new(capacity);
    s.per_producer = time_multiplier() > 1 ? 20000 : 100000;
    s.seen = calloc(PRODUCERS * s.per_producer, 1);
    s.order_ok = true;
    pthread_mutex_init(&s.mu, NULL);
    pthread_t prod[PRODUCERS], cons[CONSUMERS];
    stress_worker pw[PRODUCERS], cw[CONSUMERS];
    for (int i = 0; i < CONSUMERS; i++) {
        cw[i] = (stress_worker){&s, (uintptr_t)i};
        ck_assert_int_eq(
            pthread_create(&cons[i], NULL, stress_consumer, &cw[i]), 0);
    }
    for (int i = 0; i < PRODUCERS; i++) {
        pw[i] = (stress_worker){&s, (uintptr_t)i};
        ck_assert_int_eq(
            pthread_create(&prod[i], NULL, stress_producer, &pw[i]), 0);
    }
    for (int i = 0; i < PRODUCERS; i++)
        pthread_join(prod[i], NULL);
    ck_assert_int_eq(tp_queue_join(s.q, NULL), TP_OK);
    for (int i = 0; i < CONSUMERS; i++)
        ck_assert_int_eq(tp_queue_put(s.q, NULL, SENTINEL), TP_OK);
    for (int i = 0; i < CONSUMERS; i++)
        pthread_join(cons[i], NULL);

    ck_assert_int_eq(s.dup, 0);
    ck_assert(s.order_ok);
    size_t missing = 0;
    for (size_t i = 0; i < PRODUCERS * s.per_producer; i++)
        missing += s.seen[i] != 1;
    ck_assert_uint_eq(missing, 0);
    ck_assert_uint_eq(tp_queue_size(s.q), 0);
    ck_assert_uint_eq(unfinished_of(s.q), 0);
    free(s.seen);
    pthread_mutex_destroy(&s.mu);
    tp_queue_free(s.q);
}

/* queue-4.1: 4 producers and 4 consumers through a small bounded queue
 * (both sides block often): every item is got exactly once, in each
 * producer's order, and join then returns. */
START_TEST(mpmc_bounded)
{
    run_stress(8);
}
END_TEST

/* queue-4.2: the same through an unbounded queue (growth and shrinking
 * under contention). */
START_TEST(mpmc_unbounded)
{
    run_stress(0);
}
END_TEST

/* queue-4.3: producer and consumer tasks in a pool, cancelled in the
 * middle of the traffic: every put that returned TP_OK is either got by a
 * get that returned TP_OK or still in the queue; no item is lost or
 * duplicated, and every task ends. */
typedef struct pc {
    tp_queue *q;
    atomic_long next_item; /* items are 1.. */
    atomic_long put_ok, got_ok;
    atomic_long cancelled;
    unsigned char *seen;
    long max_items;
    pthread_mutex_t mu;
    long dup;
    counter started, ended;
} pc;

static int pc_producer(tp_task *task, void *arg)
{
    pc *c = arg;
    counter_add(&c->started, 1);
    for (;;) {
        long i = atomic_fetch_add(&c->next_item, 1) + 1;
        if (i > c->max_items)
            i = 0; /* keep the traffic going with a don't-care item */
        int rc = tp_queue_put(c->q, task, ITEM(i));
        if (rc == TP_ECANCELED) {
            atomic_fetch_add(&c->cancelled, 1);
            return 0;
        }
        if (rc != TP_OK)
            abort();
        atomic_fetch_add(&c->put_ok, 1);
    }
}

static int pc_consumer(tp_task *task, void *arg)
{
    pc *c = arg;
    counter_add(&c->started, 1);
    for (;;) {
        void *p;
        int rc = tp_queue_get(c->q, task, &p);
        if (rc == TP_ECANCELED) {
            atomic_fetch_add(&c->cancelled, 1);
            return 0;
        }
        if (rc != TP_OK)
            abort();
        atomic_fetch_add(&c->got_ok, 1);
        tp_queue_item_processed(c->q);
        long i = (long)VAL(p);
        if (i > 0) {
            pthread_mutex_lock(&c->mu);
            if (c->seen[i]++)
                c->dup++;
            pthread_mutex_unlock(&c->mu);
        }
    }
}

static void pc_end(tp_pool *pool, tp_id id, void *arg)
{
    (void)pool;
    (void)id;
    counter_add(&((pc *)arg)->ended, 1);
}

START_TEST(pool_producers_consumers_cancelled)
{
    pc c = {0};
    c.q = tp_queue_new(16);
    c.max_items = 200000;
    c.seen = calloc((size_t)c.max_items + 1, 1);
    pthread_mutex_init(&c.mu, NULL);
    counter_init(&c.started);
    counter_init(&c.ended);
    tp_pool *pool = tp_pool_new(NULL);
    tp_opts opts = {.end_callback = pc_end, .callback_arg = &c};
    char pg[TP_NAME_MAX], cg[TP_NAME_MAX];
    ck_assert_int_eq(tp_apply(pool, pc_producer, &c, 3, &opts, pg), TP_OK);
    ck_assert_int_eq(tp_apply(pool, pc_consumer, &c, 3, &opts, cg), TP_OK);
    ck_assert(counter_wait(&c.started, 6));
    /* Let real traffic flow: wait for a few thousand items to pass. */
    while (atomic_load(&c.got_ok) < 5000)
        sched_yield();
    /* Cancel the consumers first: the producers then fill the queue and
     * block in put, which the second cancel interrupts. (A producer can
     * be in put's wait with the queue not full: woken, not yet running.
     * So wait for both.) */
    ck_assert_int_eq(tp_cancel_group(pool, cg), TP_OK);
    blocked b = {c.q, 3};
    ck_assert(wait_until(full_with_putters, &b));
    ck_assert_int_eq(tp_cancel_group(pool, pg), TP_OK);
    ck_assert(counter_wait(&c.ended, 6));
    ck_assert_int_eq(atomic_load(&c.cancelled), 6);
    ck_assert_int_eq(tp_gather_and_close(pool), TP_OK);

    long put_ok = atomic_load(&c.put_ok), got_ok = atomic_load(&c.got_ok);
    ck_assert_int_eq(put_ok, got_ok + (long)tp_queue_size(c.q));
    ck_assert_uint_eq(tp_queue_size(c.q), 16);
    ck_assert_uint_eq(unfinished_of(c.q), 16);
    /* Drain: together with what consumers saw, each real item is seen
     * once. */
    void *p;
    while (tp_queue_get_nowait(c.q, &p) == TP_OK) {
        long i = (long)VAL(p);
        if (i > 0 && c.seen[i]++)
            c.dup++;
    }
    ck_assert_int_eq(c.dup, 0);
    long last = atomic_load(&c.next_item);
    if (last > c.max_items)
        last = c.max_items;
    long seen = 0;
    for (long i = 1; i <= c.max_items; i++)
        seen += c.seen[i];
    /* The only items missing are those handed out whose put was then
     * cancelled: each producer ends in exactly one such put. */
    ck_assert_int_eq(last - seen, 3);

    tp_pool_free(pool);
    counter_destroy(&c.started);
    counter_destroy(&c.ended);
    pthread_mutex_destroy(&c.mu);
    free(c.seen);
    tp_queue_free(c.q);
}
END_TEST

static Suite *queue_suite(void)
{
    Suite *s = suite_create("queue");
    double m = time_multiplier();

    TCase *basic = tcase_create("basic");
    tcase_set_timeout(basic, 10 * m);
    tcase_add_test(basic, fifo_order);
    tcase_add_test(basic, null_item);
    tcase_add_test(basic, nowait_variants);
    tcase_add_test(basic, bounded_put_blocks);
    tcase_add_test(basic, get_blocks_until_put);
    suite_add_tcase(s, basic);

    TCase *join = tcase_create("join");
    tcase_set_timeout(join, 20 * m);
    tcase_add_test(join, join_waits_for_processed);
    tcase_add_test(join, extra_processed_is_noop);
    tcase_add_test(join, join_many_consumers);
    suite_add_tcase(s, join);

    TCase *cancel = tcase_create("cancel");
    tcase_set_timeout(cancel, 20 * m);
    tcase_add_test(cancel, cancel_getters_by_group);
    tcase_add_test(cancel, cancel_putters_by_id);
    tcase_add_test(cancel, cancel_joiners);
    tcase_add_test(cancel, already_cancelled);
    tcase_add_test(cancel, cancelled_getter_passes_item_on);
    suite_add_tcase(s, cancel);

    TCase *stress = tcase_create("stress");
    tcase_set_timeout(stress, 60 * m);
    tcase_add_test(stress, mpmc_bounded);
    tcase_add_test(stress, mpmc_unbounded);
    tcase_add_test(stress, pool_producers_consumers_cancelled);
    suite_add_tcase(s, stress);
    return s;
}

int main(void)
{
    return run_suite(queue_suite());
}
