/* SPDX-License-Identifier: MIT */
/*
 * A control server to attack (the Python scripts beside it): a pool with the function
 * "f" (sleeps its JSON "args"[0] seconds, default 0.01) and, for the
 * simple-pool attacks, nothing else. Serves until SIGTERM/SIGINT, or for
 * at most LIMIT seconds (default 120), then stops and frees everything.
 *
 *   attack_server tcp HOST PORT|unix PATH [token=T] [max_clients=N]
 *                 [idle=S] [hs_timeout=S] [max_handshakes=N] [limit=S]
 *
 * Prints "port N" (TCP) or "ready" on stdout once it serves.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "taskpool.h"
#include "taskpool_control.h"

static int f(tp_task *task, void *arg)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(arg, "args");
    const cJSON *first = cJSON_IsArray(a) ? cJSON_GetArrayItem(a, 0) : NULL;
    double secs = cJSON_IsNumber(first) ? first->valuedouble : 0.01;
    return tp_sleep(task, secs);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: see the comment in attack_server.c\n");
        return 2;
    }
    tp_control_opts o = {0};
    double limit = 120;
    int first_opt = strcmp(argv[1], "tcp") == 0 ? 4 : 3;
    for (int i = first_opt; i < argc; i++) {
        const char *v = strchr(argv[i], '=');
        if (!v)
            continue;
        v++;
        if (strncmp(argv[i], "token=", 6) == 0)
            o.token = v;
        else if (strncmp(argv[i], "max_clients=", 12) == 0)
            o.max_clients = strtoul(v, NULL, 10);
        else if (strncmp(argv[i], "max_handshakes=", 15) == 0)
            o.max_handshakes = strtoul(v, NULL, 10);
        else if (strncmp(argv[i], "idle=", 5) == 0)
            o.idle_timeout = atof(v);
        else if (strncmp(argv[i], "hs_timeout=", 11) == 0)
            o.handshake_timeout = atof(v);
        else if (strncmp(argv[i], "limit=", 6) == 0)
            limit = atof(v);
    }
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    tp_pool *pool = tp_pool_new(NULL);
    tp_control *ctl =
        strcmp(argv[1], "tcp") == 0 && argc > 3
            ? tp_control_new_tcp(pool, argv[2], argv[3], &o)
            : tp_control_new_unix(pool, argv[2], &o);
    if (!pool || !ctl || tp_control_register(ctl, "f", f) != TP_OK ||
        tp_control_start(ctl) != TP_OK) {
        perror("attack_server: cannot start");
        tp_control_free(ctl);
        tp_pool_free(pool);
        return 1;
    }
    if (strcmp(argv[1], "tcp") == 0)
        printf("port %d\n", tp_control_port(ctl));
    else
        printf("ready\n");
    fflush(stdout);
    struct timespec ts = {(time_t)limit, 0};
    sigtimedwait(&set, NULL, &ts);
    tp_control_stop(ctl);
    tp_cancel_all(pool);
    tp_gather_and_close(pool);
    tp_control_free(ctl);
    tp_pool_free(pool);
    return 0;
}
