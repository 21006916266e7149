/* SPDX-License-Identifier: MIT */
/* The allocation-failure suite (issue 8): malloc, calloc, realloc,
 * aligned_alloc and strdup are wrapped at link time (tests/CMakeLists.txt, -Wl,--wrap), and
 * a workload of every spawning call, the simple pool and the queue runs
 * once for every N with the Nth allocation failing. Each run is a child
 * process with an alarm, so that a hang or a crash fails the case with
 * its N. Checked: every call either fails with TP_ENOMEM (or TP_ESYS for
 * a thread) and starts nothing, or returns TP_OK and then every start it
 * reported runs or is discarded, exactly once. */
#include "support.h"

#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- the wrappers ---- */

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
void *__real_aligned_alloc(size_t align, size_t n);
char *__real_strdup(const char *s);

static atomic_long n_allocs;
static long fail_at; /* 1-based; 0: never */

static bool fail_now(void)
{
    long k = atomic_fetch_add(&n_allocs, 1) + 1;
    return k == fail_at;
}

void *__wrap_malloc(size_t n)
{
    return fail_now() ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t size)
{
    return fail_now() ? NULL : __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t n)
{
    return fail_now() ? NULL : __real_realloc(p, n);
}

void *__wrap_aligned_alloc(size_t align, size_t n)
{
    return fail_now() ? NULL : __real_aligned_alloc(align, n);
}

char *__wrap_strdup(const char *s)
{
    return fail_now() ? NULL : __real_strdup(s);
}

/* ---- the books ---- */

enum { MAXARGS = 64, MAXCALLS = 32 };

/* One argument of the map family: it must run or be discarded once. */
typedef struct slot {
    atomic_int ran, discarded;
} slot;

/* One apply/start call: num starts sharing one argument. */
typedef struct call {
    long num;
    atomic_long ran;
    atomic_int discards;
    long dropped;
} call;

static slot slots[MAXARGS];
static int n_slots;
static call calls[MAXCALLS];
static int n_calls;
static atomic_long simple_ended;
static int bad; /* a line number that found something wrong */

#define EXPECT(cond)                                                           \
    do {                                                                       \
        if (!(cond) && !bad)                                                   \
            bad = __LINE__;                                                    \
    } while (0)

static int run_slot(tp_task *task, void *arg)
{
    (void)task;
    atomic_fetch_add(&((slot *)arg)->ran, 1);
    return 0;
}

static int run_star(tp_task *task, size_t argc, void *const argv[])
{
    (void)task;
    if (argc == 1)
        atomic_fetch_add(&((slot *)argv[0])->ran, 1);
    return 0;
}

static int run_kw(tp_task *task, const tp_kwargs *kw)
{
    (void)task;
    slot *s = tp_kwargs_get(kw, "slot", NULL);
    if (s)
        atomic_fetch_add(&s->ran, 1);
    return 0;
}

static int run_call(tp_task *task, void *arg)
{
    (void)task;
    atomic_fetch_add(&((call *)arg)->ran, 1);
    return 0;
}

static void discard_slot(void *arg, void *cb)
{
    (void)cb;
    atomic_fetch_add(&((slot *)arg)->discarded, 1);
}

static void discard_star(void *arg, void *cb)
{
    (void)cb;
    const tp_args *a = arg;
    atomic_fetch_add(&((slot *)a->argv[0])->discarded, 1);
}

static void discard_kw(void *arg, void *cb)
{
    (void)cb;
    slot *s = tp_kwargs_get(arg, "slot", NULL);
    atomic_fetch_add(&s->discarded, 1);
}

static void discard_call(void *arg, void *cb)
{
    call *c = arg;
    (void)cb;
    c->dropped = c->num - atomic_load(&c->ran);
    atomic_fetch_add(&c->discards, 1);
}

static void simple_end(tp_pool *pool, tp_id id, void *arg)
{
    (void)pool, (void)id, (void)arg;
    atomic_fetch_add(&simple_ended, 1);
}

/* rc of a spawning call: TP_OK, or a clean failure. */
static bool spawned(int rc)
{
    EXPECT(rc == TP_OK || rc == TP_ENOMEM || rc == TP_ESYS);
    return rc == TP_OK;
}

static slot *new_slot(void)
{
    return &slots[n_slots++];
}

/* The slots [from, n_slots) of a call that failed must not be touched;
 * of one that succeeded, each must run or be discarded exactly once. */
static void expect_slots(int from, int to, bool ok)
{
    for (int i = from; i < to; i++) {
        int r = atomic_load(&slots[i].ran),
            d = atomic_load(&slots[i].discarded);
        EXPECT(ok ? r + d == 1 : r + d == 0);
    }
}

static call *apply_call(tp_pool *p, long num, const char *group)
{
    call *c = &calls[n_calls++];
    c->num = num;
    tp_opts opts = {.discard = discard_call, .group_name = group};
    if (!spawned(tp_apply(p, run_call, c, (size_t)num, &opts, NULL)))
        c->num = 0;
    return c;
}

typedef struct iter_state {
    int left, first;
    atomic_int done;
} iter_state;

static int iter_next(void *state, void **arg)
{
    iter_state *it = state;
    if (it->left == 0)
        return 0;
    it->left--;
    *arg = &slots[it->first++];
    return 1;
}

static void iter_done(void *state)
{
    atomic_fetch_add(&((iter_state *)state)->done, 1);
}

/* Every spawning call on a TaskPool, with drops and a flush. */
static void taskpool_workload(void)
{
    tp_pool *p = tp_pool_new(&(tp_pool_opts){.pool_size = 2});
    if (!p)
        return;
    apply_call(p, 5, NULL);
    for (int i = 0; i < 3; i++)
        apply_call(p, 1, NULL);

    int from = n_slots;
    void *args[6];
    for (int i = 0; i < 6; i++)
        args[i] = new_slot();
    tp_opts mopts = {.discard = discard_slot};
    bool ok = spawned(tp_map(p, run_slot, args, 6, 2, &mopts, NULL));
    int map_to = n_slots;

    int iter_from = n_slots;
    for (int i = 0; i < 5; i++)
        new_slot();
    iter_state it = {.left = 5, .first = iter_from};
    bool iter_ok = spawned(tp_map_iter(
        p, run_slot, (tp_iter){iter_next, iter_done, &it}, 2, &mopts, NULL));

    int star_from = n_slots;
    tp_args sargs[3];
    void *svals[3];
    for (int i = 0; i < 3; i++) {
        svals[i] = new_slot();
        sargs[i] = (tp_args){1, &svals[i]};
    }
    tp_opts sopts = {.discard = discard_star};
    bool star_ok = spawned(tp_starmap(p, run_star, sargs, 3, 2, &sopts, NULL));

    int kw_from = n_slots;
    tp_kwarg items[3];
    tp_kwargs kws[3];
    for (int i = 0; i < 3; i++) {
        items[i] = (tp_kwarg){"slot", new_slot()};
        kws[i] = (tp_kwargs){1, &items[i]};
    }
    tp_opts kopts = {.discard = discard_kw};
    bool kw_ok = spawned(tp_doublestarmap(p, run_kw, kws, 3, 1, &kopts, NULL));

    /* Paused: these wait, and cancelling drops them. */
    int rc = tp_set_pool_size(p, 0);
    EXPECT(rc == TP_OK || rc == TP_ENOMEM || rc == TP_ESYS);
    call *dropped = apply_call(p, 4, "dropme");
    /* Per-call applies of a function applied before, on a full (paused)
     * pool: the lock-free path (src/inbox.c), drained by the cancel. */
    for (int i = 0; i < 3; i++)
        apply_call(p, 1, NULL);
    /* Those pass a discard, so they take the lock; these pass none: the
     * first makes the fast path's counter, the others are pushed into the
     * ring, and listing the groups gives them theirs. */
    call *fast = &calls[n_calls++];
    tp_opts fopts = {.func_name = "fast"};
    for (int i = 0; i < 4; i++)
        fast->num += spawned(tp_apply(p, run_call, fast, 1, &fopts, NULL));
    tp_groups gs;
    rc = tp_get_groups(p, &gs);
    EXPECT(rc == TP_OK || rc == TP_ENOMEM);
    if (rc == TP_OK)
        tp_groups_free(&gs);
    int drop_from = n_slots;
    void *dargs[3];
    for (int i = 0; i < 3; i++)
        dargs[i] = new_slot();
    tp_opts dopts = {.discard = discard_slot, .group_name = "dropmap"};
    bool drop_ok = spawned(tp_map(p, run_slot, dargs, 3, 1, &dopts, NULL));
    if (dropped->num)
        EXPECT(tp_cancel_group(p, "dropme") == TP_OK);
    if (drop_ok)
        EXPECT(tp_cancel_group(p, "dropmap") == TP_OK);
    rc = tp_set_pool_size(p, 2);
    EXPECT(rc == TP_OK || rc == TP_ENOMEM || rc == TP_ESYS);

    rc = tp_flush(p);
    EXPECT(rc == TP_OK || rc == TP_ENOMEM);
    tp_ids ids;
    const char *names[] = {"dropme"};
    rc = tp_get_group_ids(p, names, 1, &ids);
    EXPECT(rc == TP_ENOGROUP || rc == TP_ENOMEM);
    tp_stats st;
    EXPECT(tp_get_stats(p, &st) == TP_OK);
    EXPECT(tp_gather_and_close(p) == TP_OK);
    tp_pool_free(p);

    expect_slots(from, map_to, ok);
    expect_slots(iter_from, iter_from + (5 - it.left), iter_ok);
    EXPECT(atomic_load(&it.done) == 1);
    expect_slots(star_from, star_from + 3, star_ok);
    expect_slots(kw_from, kw_from + 3, kw_ok);
    expect_slots(drop_from, drop_from + 3, drop_ok);
    for (int i = 0; i < n_calls; i++) {
        call *c = &calls[i];
        long r = atomic_load(&c->ran);
        int d = atomic_load(&c->discards);
        EXPECT(d <= 1);
        EXPECT(r + (d ? c->dropped : 0) == c->num);
    }
}

static int simple_fn(tp_task *task, void *arg)
{
    (void)task, (void)arg;
    return 0;
}

static void simple_workload(void)
{
    tp_opts opts = {.end_callback = simple_end};
    tp_pool *p = tp_simple_pool_new(simple_fn, NULL, NULL, &opts);
    if (!p)
        return;
    long started = 0;
    for (int i = 0; i < 3; i++)
        if (spawned(tp_start(p, 2, NULL)))
            started += 2;
    for (int i = 0; i < 3; i++) /* one-task starts: the fast path */
        started += spawned(tp_start(p, 1, NULL));
    tp_ids stopped;
    int rc = tp_stop(p, 1, &stopped);
    EXPECT(rc == TP_OK || rc == TP_ENOMEM);
    if (rc == TP_OK)
        tp_ids_free(&stopped);
    EXPECT(tp_gather_and_close(p) == TP_OK);
    tp_pool_free(p);
    EXPECT(atomic_load(&simple_ended) == started);
}

static int queue_task(tp_task *task, void *arg)
{
    tp_queue *q = arg;
    void *item;
    if (tp_queue_put(q, task, q) != TP_OK)
        return 1;
    return tp_queue_get(q, task, &item) == TP_OK ? 0 : 1;
}

static void queue_workload(void)
{
    tp_queue *q = tp_queue_new(0);
    if (!q)
        return;
    for (int i = 0; i < 40; i++) {
        int rc = tp_queue_put_nowait(q, q);
        EXPECT(rc == TP_OK || rc == TP_ENOMEM);
    }
    void *item;
    while (tp_queue_get_nowait(q, &item) == TP_OK)
        EXPECT(item == q);
    tp_pool *p = tp_pool_new(NULL);
    if (p) {
        tp_opts opts = {0};
        (void)spawned(tp_apply(p, queue_task, q, 8, &opts, NULL));
        EXPECT(tp_gather_and_close(p) == TP_OK);
        tp_pool_free(p);
    }
    EXPECT(tp_queue_size(q) == 0);
    tp_queue_free(q);
}

static void workload(void)
{
    taskpool_workload();
    simple_workload();
    queue_workload();
}

/* Runs the workload with allocation n failing, in a child; returns its
 * wait status, and the number of allocations it made in *made. */
static int run_child(long n, long *made)
{
    int pipefd[2];
    ck_assert_int_eq(pipe(pipefd), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close(pipefd[0]);
        /* Check's own SIGALRM handler would kill the whole test. */
        signal(SIGALRM, SIG_DFL);
        alarm((unsigned)(10 * time_multiplier()));
        fail_at = n;
        atomic_store(&n_allocs, 0);
        workload();
        long count = atomic_load(&n_allocs);
        ssize_t w = write(pipefd[1], &count, sizeof count);
        (void)w;
        if (bad)
            fprintf(stderr, "allocation %ld failing: check at line %d\n", n,
                    bad);
        _exit(bad ? 3 : 0);
    }
    close(pipefd[1]);
    *made = -1;
    ssize_t r = read(pipefd[0], made, sizeof *made);
    (void)r;
    close(pipefd[0]);
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    return status;
}

START_TEST(every_allocation_may_fail)
{
    long total;
    int status = run_child(0, &total);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "the workload fails without any failing allocation");
    ck_assert_int_gt(total, 20);
    /* A failure changes the path, so sweep a margin beyond the count. */
    for (long n = 1; n <= total + 20; n++) {
        long made;
        status = run_child(n, &made);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                      "allocation %ld of %ld failing: %s %d", n, total,
                      WIFSIGNALED(status) ? "signal" : "exit",
                      WIFSIGNALED(status) ? WTERMSIG(status)
                                          : WEXITSTATUS(status));
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("alloc");
    TCase *tc = tcase_create("fail");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, every_allocation_may_fail);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
