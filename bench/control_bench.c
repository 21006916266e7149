/* SPDX-License-Identifier: MIT */
/*
 * control_bench: request/response throughput and latency of the control
 * server over a Unix socket, with 1 and with 64 concurrent clients, each
 * sending one request and waiting for its response (no pipelining).
 *
 *     control_bench [REQUESTS_PER_CLIENT_FOR_ONE_CLIENT]
 *     control_bench --worst
 *
 * Prints a table: clients, requests, commands/s, p50 and p99 latency in
 * microseconds, for a cheap getter (num-running, text mode), the same in
 * JSON mode, a spawning command (apply of a no-op task); then, with the
 * pool knowing 1,000 groups, `metrics`, `groups` (text and JSON) and
 * num-running again, and redis-benchmark -t ping (one client, Unix socket)
 * as the peer of num-running with one client, in the same run.
 * Target: at least 20,000 commands/s for one client.
 *
 * --worst sends the heaviest commands we could construct (64 KiB lines of
 * JSON, thousands of ids or groups, millions of pending starts to cancel)
 * and prints, for each, its reply time and the longest round trip another
 * client's num-running had meanwhile: how long the control thread was
 * kept from other sessions.
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
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

/* Reads one response: until a newline, or with `block` until a blank line
 * (the end of a multi-line response such as metrics, groups in text mode). */
static int read_response(int fd, char *buf, size_t size, bool block)
{
    size_t len = 0;
    while (len + 1 < size) {
        ssize_t r = read(fd, buf + len, size - 1 - len);
        if (r <= 0)
            return -1;
        len += (size_t)r;
        if (buf[len - 1] == '\n' &&
            (!block || (len >= 2 && buf[len - 2] == '\n')))
            return 0;
    }
    return -1;
}

static int read_line(int fd, char *buf, size_t size)
{
    return read_response(fd, buf, size, false);
}

static void *client(void *arg)
{
    run *r = arg;
    /* One line each; groups in JSON mode is ~110 KB with 1,000 groups. */
    size_t size = 1 << 20;
    char *buf = malloc(size);
    int fd = buf ? connect_unix(r->path) : -1;
    size_t rl = strlen(r->request);
    if (fd < 0 || write(fd, r->hello, strlen(r->hello)) < 0 ||
        read_line(fd, buf, size) != 0) {
        r->failed = 1;
        if (fd >= 0)
            close(fd);
        free(buf);
        return NULL;
    }
    for (size_t i = 0; i < r->n; i++) {
        double t0 = now();
        if (write(fd, r->request, rl) != (ssize_t)rl ||
            read_line(fd, buf, size) != 0) {
            r->failed = 1;
            break;
        }
        r->lat[i] = now() - t0;
    }
    close(fd);
    free(buf);
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

/* A command with a multi-line response (metrics, groups in text mode), one
 * client reading until the blank line. */
static void measure_block(const char *label, const char *path,
                          const char *request, size_t n)
{
    static char buf[1 << 20];
    size_t rl = strlen(request);
    double *lat = calloc(n ? n : 1, sizeof *lat);
    int fd = connect_unix(path);
    if (!lat || fd < 0 || write(fd, "{}\n", 3) != 3 ||
        read_line(fd, buf, sizeof buf) != 0) {
        fprintf(stderr, "%s: cannot connect\n", label);
        exit(1);
    }
    int failed = 0;
    double t0 = now();
    for (size_t i = 0; i < n; i++) {
        double t = now();
        if (write(fd, request, rl) != (ssize_t)rl ||
            read_response(fd, buf, sizeof buf, true) != 0) {
            failed = 1;
            break;
        }
        lat[i] = now() - t;
    }
    double elapsed = now() - t0;
    close(fd);
    qsort(lat, n, sizeof *lat, by_double);
    printf("| %-22s | %7d | %8zu | %10.0f | %8.1f | %8.1f |%s\n", label, 1, n,
           (double)n / elapsed, lat[n / 2] * 1e6,
           lat[(size_t)((double)n * 0.99)] * 1e6, failed ? " (errors)" : "");
    free(lat);
}

/* The peer of num-running with one client: redis-benchmark -t ping over a
 * Unix socket, in the same run (skipped if redis is not installed). */
static void redis_peer(size_t n)
{
    if (system("command -v redis-server >/dev/null 2>&1 && "
               "command -v redis-benchmark >/dev/null 2>&1") != 0) {
        printf("| %-22s | (redis-server or redis-benchmark not installed)\n",
               "redis PING");
        return;
    }
    char dir[] = "/tmp/tp-bench-redis-XXXXXX";
    if (!mkdtemp(dir))
        return;
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "redis-server --port 0 --unixsocket %s/r.sock --save '' "
             "--appendonly no --daemonize yes --pidfile %s/r.pid "
             "--logfile %s/r.log --dir %s >/dev/null 2>&1 && "
             "for i in $(seq 100); do [ -S %s/r.sock ] && break; "
             "sleep 0.05; done",
             dir, dir, dir, dir, dir);
    if (system(cmd) == 0) {
        snprintf(cmd, sizeof cmd,
                 "redis-benchmark -s %s/r.sock -c 1 -n %zu -t ping -q "
                 "2>/dev/null | tr '\\r' '\\n' | grep -E 'requests per "
                 "second' | tail -2",
                 dir, n);
        FILE *f = popen(cmd, "r");
        char line[256];
        while (f && fgets(line, sizeof line, f)) {
            char name[64];
            double rps;
            if (sscanf(line, "%63[^:]: %lf requests per second", name, &rps) ==
                2)
                printf("| redis %-16s | %7d | %8zu | %10.0f | %8s | %8s |\n",
                       name, 1, n, rps, "", "");
        }
        if (f)
            pclose(f);
    }
    snprintf(cmd, sizeof cmd,
             "[ -f %s/r.pid ] && kill $(cat %s/r.pid); "
             "for i in $(seq 100); do [ -S %s/r.sock ] || break; "
             "sleep 0.05; done; rm -rf %s",
             dir, dir, dir, dir);
    if (system(cmd) != 0) {
        /* Best effort. */
    }
}

static int noop(tp_task *task, void *arg)
{
    (void)task, (void)arg;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* --worst: how long the heaviest commands occupy the control thread        */
/* ------------------------------------------------------------------------ */

typedef struct prober {
    const char *path;
    const char *request; /* one-line response */
    atomic_int stop;
    double max_lat; /* longest num-running round trip while probing */
    int failed;
} prober;

/* Another client asking the same thing in a loop, one request in flight:
 * its longest round trip is how long it was kept waiting. */
static void *probe(void *arg)
{
    prober *p = arg;
    char buf[4096];
    int fd = connect_unix(p->path);
    const char *hello = "{}\n";
    if (fd < 0 || write(fd, hello, strlen(hello)) < 0 ||
        read_line(fd, buf, sizeof buf) != 0) {
        p->failed = 1;
        return NULL;
    }
    while (!atomic_load(&p->stop)) {
        double t0 = now();
        size_t rl = strlen(p->request);
        if (write(fd, p->request, rl) != (ssize_t)rl ||
            read_line(fd, buf, sizeof buf) != 0) {
            p->failed = 1;
            break;
        }
        double lat = now() - t0;
        if (lat > p->max_lat)
            p->max_lat = lat;
    }
    close(fd);
    return NULL;
}

/* CPU time of the control thread (named "tp-control") in seconds, from
 * /proc/self/task/TID/schedstat (nanoseconds on the CPU); -1 if absent. */
static double control_cpu(void)
{
    DIR *d = opendir("/proc/self/task");
    struct dirent *e;
    double cpu = -1;
    while (d && (e = readdir(d)) != NULL) {
        char p[300], name[64] = "";
        snprintf(p, sizeof p, "/proc/self/task/%s/comm", e->d_name);
        FILE *f = fopen(p, "r");
        if (!f)
            continue;
        if (!fgets(name, sizeof name, f))
            name[0] = '\0';
        fclose(f);
        if (strcmp(name, "tp-control\n") != 0)
            continue;
        snprintf(p, sizeof p, "/proc/self/task/%s/schedstat", e->d_name);
        f = fopen(p, "r");
        unsigned long long ns;
        if (f && fscanf(f, "%llu", &ns) == 1)
            cpu = (double)ns / 1e9;
        if (f)
            fclose(f);
        break;
    }
    if (d)
        closedir(d);
    return cpu;
}

/* Sends line on fd (a session) and waits for its one-line response;
 * returns the seconds it took, or -1. */
static double timed(int fd, const char *line)
{
    /* One line each; a groups listing of 100,000 groups is ~11 MB. */
    static char buf[32 << 20];
    size_t len = strlen(line), off = 0;
    double t0 = now();
    while (off < len) {
        ssize_t w = write(fd, line + off, len - off);
        if (w <= 0)
            return -1;
        off += (size_t)w;
    }
    if (read_line(fd, buf, sizeof buf) != 0)
        return -1;
    return now() - t0;
}

/* A line "prefix item,item,...,item suffix\n" of about size bytes. */
static char *repeated(const char *prefix, const char *item, const char *sep,
                      const char *suffix, size_t size)
{
    char *line = malloc(size + 64);
    size_t len = (size_t)sprintf(line, "%s", prefix);
    size_t il = strlen(item), sl = strlen(sep);
    bool first = true;
    while (len + il + sl + strlen(suffix) + 2 < size) {
        if (!first) {
            memcpy(line + len, sep, sl);
            len += sl;
        }
        memcpy(line + len, item, il);
        len += il;
        first = false;
    }
    sprintf(line + len, "%s\n", suffix);
    return line;
}

/* Runs line with the probers, then alone; the setup lines (NULL-ended,
 * or NULL) run before each. */
static void worst_setup(const char *path, int fd, const char *label,
                        const char *line, const char *const *setup)
{
    for (size_t i = 0; setup && setup[i]; i++)
        timed(fd, setup[i]);
    /* "help exit" needs the control thread only (a cached text, no engine
     * call); "num-running" also needs the pool's lock. */
    prober p = {.path = path, .request = "num-running\n"};
    prober q = {.path = path, .request = "help exit\n"};
    atomic_init(&p.stop, 0);
    atomic_init(&q.stop, 0);
    pthread_t th, tq;
    pthread_create(&th, NULL, probe, &p);
    pthread_create(&tq, NULL, probe, &q);
    /* Let the probers get going. */
    struct timespec ms = {0, 20 * 1000 * 1000};
    nanosleep(&ms, NULL);
    double probed = timed(fd, line);
    nanosleep(&ms, NULL);
    atomic_store(&p.stop, 1);
    atomic_store(&q.stop, 1);
    pthread_join(th, NULL);
    pthread_join(tq, NULL);
    /* Alone: the control thread's CPU time for this command. */
    for (size_t i = 0; setup && setup[i]; i++)
        timed(fd, setup[i]);
    double cpu0 = control_cpu();
    double t = timed(fd, line);
    double cpu = control_cpu() - cpu0;
    printf("| %-52s | %8.2f | %8.2f | %8.2f | %8.2f |%s\n", label, t * 1e3,
           cpu * 1e3, q.max_lat * 1e3, p.max_lat * 1e3,
           t < 0 || probed < 0 || p.failed || q.failed ? " (errors)" : "");
}

static void worst_one(const char *path, int fd, const char *label,
                      const char *line)
{
    worst_setup(path, fd, label, line, NULL);
}

static int worst(void)
{
    char path[108];
    snprintf(path, sizeof path, "/tmp/taskpool-control-worst-%d.sock",
             (int)getpid());
    tp_pool_opts po = {.pool_size = 1};
    tp_pool *pool = tp_pool_new(&po);
    tp_set_pool_size(pool, 0); /* nothing starts: every start stays pending */
    tp_control *ctl = tp_control_new_unix(pool, path, NULL);
    if (!pool || !ctl || tp_control_register(ctl, "noop", noop) != TP_OK ||
        tp_control_start(ctl) != TP_OK) {
        fprintf(stderr, "cannot start the control server\n");
        return 1;
    }
    int fd = connect_unix(path);
    char buf[4096];
    if (fd < 0 || write(fd, "{}\n", 3) != 3 ||
        read_line(fd, buf, sizeof buf) != 0)
        return 1;
    const size_t max_line = 64 * 1024 - 1; /* the default max_line */
    printf("the heaviest commands, pool size 0 (every start stays pending), "
           "default limits;\nwhile each runs, two other clients loop: "
           "'help exit' (needs the control thread\nonly) and 'num-running' "
           "(also the pool's lock); their longest round trips. Then the\n"
           "command again, alone: its reply time and the control thread's "
           "CPU time (ms)\n\n");
    printf("| %-52s | %8s | %8s | %8s | %8s |\n", "command", "reply ms",
           "ctl cpu", "help ms", "query ms");
    printf("|%s|%s|%s|%s|%s|\n",
           "------------------------------------------------------",
           "----------", "----------", "----------", "----------");
    char *l = repeated("map noop [", "1", ",", "]", max_line);
    worst_one(path, fd, "map, 32k elements (64 KiB line)", l);
    free(l);
    l = repeated("starmap noop [", "[1]", ",", "]", max_line);
    worst_one(path, fd, "starmap, 16k arrays (64 KiB line)", l);
    free(l);
    l = repeated("doublestarmap noop [", "{\"a\":1}", ",", "]", max_line);
    worst_one(path, fd, "doublestarmap, 8k objects (64 KiB line)", l);
    free(l);
    l = repeated("map noop [", "[[[[[[[[1]]]]]]]]", ",", "]", max_line);
    worst_one(path, fd, "map, 3.6k nested arrays (64 KiB line)", l);
    free(l);
    const char *const drop_big[] = {"cancel-group big\n", NULL};
    worst_setup(path, fd, "apply -n 1000000 (max_spawn)",
                "apply noop -n 1000000 -g big\n", drop_big);
    l = repeated("cancel ", "123456789", " ", "", max_line);
    worst_one(path, fd, "cancel, 4095 unknown ids (64 KiB line)", l);
    free(l);
    for (int i = 0; i < 4000; i++) {
        char cmd[64];
        snprintf(cmd, sizeof cmd, "apply noop -g g%d\n", i);
        if (timed(fd, cmd) < 0)
            return 1;
    }
    char *names = malloc(max_line + 64);
    size_t len = (size_t)sprintf(names, "get-group-ids");
    for (int i = 0; i < 4000 && len + 16 < max_line; i++)
        len += (size_t)sprintf(names + len, " g%d", i);
    sprintf(names + len, "\n");
    worst_one(path, fd, "get-group-ids, 4000 groups (one line)", names);
    free(names);
    l = repeated("get-group-ids ", "g1", " ", "", max_line);
    worst_one(path, fd, "get-group-ids, one name 21k times", l);
    free(l);
    /* 100,000 groups more, listed in JSON mode (one line). */
    for (int i = 0; i < 100000; i++)
        if (tp_apply(pool, noop, NULL, 1, NULL, NULL) != TP_OK)
            return 1;
    int jfd = connect_unix(path);
    const char *jhello = "{\"format\": \"json\"}\n";
    if (jfd < 0 || write(jfd, jhello, strlen(jhello)) < 0 ||
        read_line(jfd, buf, sizeof buf) != 0)
        return 1;
    worst_one(path, jfd, "groups, 104,000 groups (json, ~11 MB)", "groups\n");
    close(jfd);
    worst_one(path, fd, "stats", "stats\n");
    worst_one(path, fd, "-h", "-h\n");
    const char *const make_big[] = {"apply noop -n 1000000 -g big\n", NULL};
    worst_setup(path, fd, "cancel-group (1,000,000 pending)",
                "cancel-group big\n", make_big);
    static char lines[15][64];
    const char *make_many[16];
    for (int i = 0; i < 15; i++) {
        snprintf(lines[i], sizeof lines[i], "apply noop -n 1000000 -g c%d\n",
                 i);
        make_many[i] = lines[i];
    }
    make_many[15] = NULL;
    worst_setup(path, fd, "cancel-all (15 x 1,000,000 pending, 4,000 groups)",
                "cancel-all\n", make_many);
    close(fd);
    tp_control_free(ctl);
    tp_pool_free(pool);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--worst") == 0)
        return worst();
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
    /* A pool knowing 1,000 groups (each a pending start: the pool size is
     * 0 meanwhile) for metrics and groups, both multi-line responses. */
    while (tp_num_running(pool) > 0) /* the last apply noop tasks */
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    tp_flush(pool);
    tp_set_pool_size(pool, 0);
    for (int i = 0; i < 1000; i++)
        if (tp_apply(pool, noop, NULL, 1, NULL, NULL) != TP_OK) {
            fprintf(stderr, "cannot make 1,000 groups\n");
            return 1;
        }
    tp_stats st;
    tp_get_stats(pool, &st);
    printf("|%s| (a pool of %zu groups from here on) |\n",
           "------------------------", st.groups);
    measure_block("metrics (text)", path, "metrics\n", n1 / 10);
    measure_block("groups (text)", path, "groups\n", n1 / 50);
    measure("groups (json)", path, json, "groups\n", 1, n1 / 50);
    measure("num-running (text)", path, text, "num-running\n", 1, n1);
    redis_peer(n1);
    tp_set_pool_size(pool, TP_UNLIMITED);
    tp_control_free(ctl);
    tp_gather_and_close(pool);
    tp_pool_free(pool);
    return 0;
}
