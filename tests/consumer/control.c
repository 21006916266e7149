/* SPDX-License-Identifier: MIT */
/*
 * A consumer that registers a control function. The function receives a
 * const cJSON *, so this program uses cJSON itself and must link libcjson
 * (`pkg-config --cflags --libs taskpool libcjson`, or PkgConfig::CJSON in
 * CMake): the point README.md makes. It serves a pool on a Unix socket,
 * sends "apply sum -a [2, 3]" to itself as a client would, and checks that
 * the function saw 2 + 3.
 */
#include <cjson/cJSON.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <taskpool_control.h>

static atomic_int result = -1;

static int sum(tp_task *task, void *arg)
{
    (void)task;
    const cJSON *args = cJSON_GetObjectItemCaseSensitive(arg, "args");
    int s = 0;
    for (int i = 0; i < cJSON_GetArraySize(args); i++)
        s += cJSON_GetArrayItem(args, i)->valueint;
    atomic_store(&result, s);
    return 0;
}

/* Sends line and reads one response line into buf. */
static int request(int fd, const char *line, char *buf, size_t size)
{
    if (write(fd, line, strlen(line)) != (ssize_t)strlen(line))
        return -1;
    size_t n = 0;
    while (n + 1 < size) {
        ssize_t r = read(fd, buf + n, 1);
        if (r <= 0)
            return -1;
        if (buf[n] == '\n')
            break;
        n++;
    }
    buf[n] = '\0';
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: consumer_control SOCKET_PATH\n");
        return 2;
    }
    tp_pool *pool = tp_pool_new(NULL);
    tp_control *ctl = tp_control_new_unix(pool, argv[1], NULL);
    if (!pool || !ctl || tp_control_register(ctl, "sum", sum) != TP_OK ||
        tp_control_start(ctl) != TP_OK) {
        fprintf(stderr, "consumer_control: cannot serve %s\n", argv[1]);
        return 1;
    }
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", argv[1]);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    char name[256], group[256];
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        request(fd, "{\"terminal_width\": 80}\n", name, sizeof name) != 0 ||
        request(fd, "apply sum -a [2, 3]\n", group, sizeof group) != 0) {
        perror("consumer_control: client");
        return 1;
    }
    close(fd);
    int rc = tp_gather_and_close(pool);
    tp_control_free(ctl);
    tp_pool_free(pool);
    if (rc != TP_OK || atomic_load(&result) != 5) {
        fprintf(stderr, "consumer_control: %s answered '%s', sum saw %d\n",
                name, group, atomic_load(&result));
        return 1;
    }
    printf("consumer_control: %s ran %s: 2 + 3 = 5\n", name, group);
    return 0;
}
