/* SPDX-License-Identifier: MIT */
/*
 * control_bench: request/response throughput and latency of the control
 * server over a Unix socket, with 1 and with 64 concurrent clients, each
 * sending one request and waiting for its response (no pipelining).
 *
 *     control_bench [REQUESTS_PER_CLIENT_FOR_ONE_CLIENT]
 *
 * Prints a table: clients, requests, commands/s, p50 and p99 latency in
 * microseconds, for a cheap getter (num-running, text mode), the same in
 * JSON mode, and a spawning command (apply of a no-op task).
 * Target: at least 20,000 commands/s for one client.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "taskpool.h"
#include "taskpool_control.h"

typedef struct run {
    const char *path;
    const char *hello;
    const char *request;
    size_t n;    /* requests */
    double *lat; /* latencies in seconds, n of them */
    int failed;
} run;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int connect_unix(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Reads until a newline; every response of these requests is one line. */
static int read_line(int fd, char *buf, size_t size)
{
    size_t len = 0;
    while (len + 1 < size) {
        ssize_t r = read(fd, buf + len, size - 1 - len);
        if (r <= 0)
            return -1;
        len += (size_t)r;
        if (buf[len - 1] == '\n')
            return 0;
    }
    return -1;
}

static void *client(void *arg)
{
    run *r = arg;
    char buf[4096];
    int fd = connect_unix(r->path);
    size_t rl = strlen(r->request);
    if (fd < 0 || write(fd, r->hello, strlen(r->hello)) < 0 ||
        read_line(fd, buf, sizeof buf) != 0) {
        r->failed = 1;
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    for (size_t i = 0; i < r->n; i++) {
        double t0 = now();
        if (write(fd, r->request, rl) != (ssize_t)rl ||
            read_line(fd, buf, sizeof buf) != 0) {
            r->failed = 1;
            break;
        }
        r->lat[i] = now() - t0;
    }
    close(fd);
    return NULL;
}

static int by_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void measure(const char *label, const char *path, const char *hello,
                    const char *request, int clients, size_t per_client)
{
    run *runs = calloc((size_t)clients, sizeof *runs);
    pthread_t *th = calloc((size_t)clients, sizeof *th);
    double *all = calloc((size_t)clients * per_client, sizeof *all);
    if (!runs || !th || !all) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    for (int i = 0; i < clients; i++)
        runs[i] = (run){
            path, hello, request, per_client, all + (size_t)i * per_client, 0};
    double t0 = now();
    for (int i = 0; i < clients; i++)
        pthread_create(&th[i], NULL, client, &runs[i]);
    int failed = 0;
    for (int i = 0; i < clients; i++) {
        pthread_join(th[i], NULL);
        failed |= runs[i].failed;
    }
    double elapsed = now() - t0;
    size_t total = (size_t)clients * per_client;
    qsort(all, total, sizeof *all, by_double);
    printf("| %-22s | %7d | %8zu | %10.0f | %8.1f | %8.1f |%s\n", label,
           clients, total, (double)total / elapsed, all[total / 2] * 1e6,
           all[(size_t)((double)total * 0.99)] * 1e6,
           failed ? " (errors)" : "");
    free(runs);
    free(th);
    free(all);
}

static int noop(tp_task *task, void *arg)
{
    (void)task, (void)arg;
    return 0;
}

int main(int argc, char **argv)
{
    size_t n1 = argc > 1 ? (size_t)atol(argv[1]) : 50000;
    size_t n64 = n1 / 20 ? n1 / 20 : 1;
    char path[108];
    snprintf(path, sizeof path, "/tmp/taskpool-control-bench-%d.sock",
             (int)getpid());
    tp_pool *pool = tp_pool_new(NULL);
    tp_control_opts o = {.max_clients = 128};
    tp_control *ctl = tp_control_new_unix(pool, path, &o);
    if (!pool || !ctl || tp_control_register(ctl, "noop", noop) != TP_OK ||
        tp_control_start(ctl) != TP_OK) {
        fprintf(stderr, "cannot start the control server: %s\n",
                strerror(errno));
        return 1;
    }
    const char *text = "{\"terminal_width\": 80}\n";
    const char *json = "{\"terminal_width\": 80, \"format\": \"json\"}\n";
    printf("control server over a Unix socket, one request in flight per "
           "client\n\n");
    printf("| %-22s | %7s | %8s | %10s | %8s | %8s |\n", "command", "clients",
           "requests", "cmds/s", "p50 us", "p99 us");
    printf("|%s|%s|%s|%s|%s|%s|\n", "------------------------", "---------",
           "----------", "------------", "----------", "----------");
    measure("num-running (text)", path, text, "num-running\n", 1, n1);
    measure("num-running (text)", path, text, "num-running\n", 64, n64);
    measure("num-running (json)", path, json, "num-running\n", 1, n1);
    measure("num-running (json)", path, json, "num-running\n", 64, n64);
    measure("apply noop (text)", path, text, "apply noop\n", 1, n1 / 5);
    measure("apply noop (text)", path, text, "apply noop\n", 64, n64 / 5);
    tp_control_free(ctl);
    tp_gather_and_close(pool);
    tp_pool_free(pool);
    return 0;
}
