/* SPDX-License-Identifier: MIT */
/*
 * A consumer of the installed library, built by tests/consumer/run.sh with
 * CMake's find_package(taskpool) (shared and static), with pkg-config, and
 * against the unpacked Debian packages. It checks that the headers and the
 * library agree on the version and that a pool runs tasks.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <taskpool.h>

#if TP_VERSION_NUMBER < 100
#error "taskpool.h too old"
#endif

static atomic_long sum;

static int add(tp_task *task, void *arg)
{
    (void)task;
    atomic_fetch_add(&sum, (long)(intptr_t)arg);
    return 0;
}

int main(void)
{
    if (strcmp(tp_version(), TP_VERSION_STRING) != 0) {
        fprintf(stderr, "consumer: library %s, header %s\n", tp_version(),
                TP_VERSION_STRING);
        return 1;
    }
    tp_pool *pool = tp_pool_new(&(tp_pool_opts){.pool_size = 2});
    if (!pool)
        return 1;
    void *args[10];
    for (int i = 0; i < 10; i++)
        args[i] = (void *)(intptr_t)(i + 1);
    char group[TP_NAME_MAX];
    int rc =
        tp_map(pool, add, args, 10, 3, &(tp_opts){.func_name = "add"}, group);
    if (rc == TP_OK)
        rc = tp_gather_and_close(pool);
    tp_pool_free(pool);
    if (rc != TP_OK || atomic_load(&sum) != 55) {
        fprintf(stderr, "consumer: %s, sum %ld\n", tp_err_name(rc),
                atomic_load(&sum));
        return 1;
    }
    printf("consumer: taskpool %s, %s summed to 55\n", tp_version(), group);
    return 0;
}
