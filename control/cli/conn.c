/* SPDX-License-Identifier: MIT */
/*
 * Connecting, the handshake, and the line framing of responses. Waits for a
 * response can be ended by Ctrl+C: SIGINT stays blocked except inside the
 * ppoll of a wait, so a signal that arrives between two checks of the flag
 * is delivered in the next wait instead of being lost.
 */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

/* The read buffer starts small and doubles with the longest response. */
#define READ_MIN 4096

static volatile sig_atomic_t *sigint_flag;
static sigset_t wait_mask; /* the mask during a wait: SIGINT unblocked */
static bool have_wait_mask;

static void on_sigint(int sig)
{
    (void)sig;
    if (sigint_flag)
        *sigint_flag = 1;
}

void cli_block_sigint(volatile sig_atomic_t *flag)
{
    sigint_flag = flag;
    struct sigaction sa = {.sa_handler = on_sigint};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigprocmask(SIG_BLOCK, &set, &wait_mask);
    sigdelset(&wait_mask, SIGINT);
    have_wait_mask = true;
}

void cli_clear_sigint(void)
{
    if (!have_wait_mask)
        return;
    sigset_t set, pending;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    while (sigpending(&pending) == 0 && sigismember(&pending, SIGINT))
        sigtimedwait(&set, NULL, &(struct timespec){0, 0});
    if (sigint_flag)
        *sigint_flag = 0;
}

cli_conn *cli_conn_from_fd(int fd, FILE *diag)
{
    cli_conn *c = calloc(1, sizeof *c);
    if (!c) {
        close(fd);
        fprintf(diag, "taskpool-control: out of memory\n");
        return NULL;
    }
    c->fd = fd;
    c->diag = diag;
    return c;
}

static int connect_tcp(const char *host, const char *port)
{
    struct addrinfo hints = {0}, *res;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int gai = getaddrinfo(host, port, &hints, &res);
    if (gai != 0) {
        fprintf(stderr, "taskpool-control: cannot resolve %s port %s: %s\n",
                host, port, gai_strerror(gai));
        return -1;
    }
    int fd = -1, err = 0;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
                    ai->ai_protocol);
        if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        err = errno;
        if (fd >= 0)
            close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0)
        fprintf(stderr, "taskpool-control: cannot connect to %s port %s: %s\n",
                host, port, strerror(err));
    return fd;
}

static int connect_unix(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof sa.sun_path) {
        fprintf(stderr, "taskpool-control: socket path too long: %s\n", path);
        return -1;
    }
    strcpy(sa.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        fprintf(stderr, "taskpool-control: cannot connect to %s: %s\n", path,
                strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

cli_conn *cli_open(const cli_target *t)
{
    int fd = t->path ? connect_unix(t->path) : connect_tcp(t->host, t->port);
    if (fd < 0)
        return NULL;
    cli_conn *c = cli_conn_from_fd(fd, stderr);
    if (c && !cli_handshake(c, t->token)) {
        cli_close(c);
        c = NULL;
    }
    return c;
}

static bool send_all(cli_conn *c, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = send(c->fd, data, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        data += n;
        len -= (size_t)n;
    }
    return true;
}

bool cli_send(cli_conn *c, const char *line)
{
    /* One send with the newline: two would be two TCP segments, and Nagle
     * would hold the second until the first is acknowledged. */
    char small[512];
    size_t len = strlen(line);
    char *msg = len < sizeof small ? small : malloc(len + 1);
    if (!msg)
        return false;
    memcpy(msg, line, len);
    msg[len] = '\n';
    bool ok = send_all(c, msg, len + 1);
    if (msg != small)
        free(msg);
    return ok;
}

static bool stopped(const cli_conn *c)
{
    return c->stop && *c->stop;
}

/* Waits until fd is readable, the timeout (ms, -1: none) passes, or a stop.
 * Returns 1, 0, -1 like cli_wait_readable. */
static int wait_fd(cli_conn *c, int timeout_ms)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    if (timeout_ms >= 0) {
        until.tv_sec += timeout_ms / 1000;
        until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
    }
    for (;;) {
        if (stopped(c))
            return -1;
        struct timespec left, *tp = NULL;
        if (timeout_ms >= 0) {
            struct timespec now;
            clock_gettime(CLOCK_MONOTONIC, &now);
            left.tv_sec = until.tv_sec - now.tv_sec;
            left.tv_nsec = until.tv_nsec - now.tv_nsec;
            if (left.tv_nsec < 0) {
                left.tv_sec--;
                left.tv_nsec += 1000000000L;
            }
            if (left.tv_sec < 0)
                return 0;
            tp = &left;
        }
        struct pollfd pf = {c->fd, POLLIN, 0};
        int r =
            ppoll(&pf, 1, tp, c->stop && have_wait_mask ? &wait_mask : NULL);
        if (r > 0)
            return 1;
        if (r == 0)
            return 0;
        if (errno != EINTR)
            return 1; /* let the read report the error */
    }
}

int cli_wait_readable(cli_conn *c, double seconds)
{
    return wait_fd(c, seconds < 0 ? -1 : (int)(seconds * 1000 + 0.5));
}

cli_read_status cli_read_line(cli_conn *c)
{
    c->line = NULL;
    size_t scanned = c->off;
    for (;;) {
        char *nl = c->len > scanned
                       ? memchr(c->buf + scanned, '\n', c->len - scanned)
                       : NULL;
        if (nl) {
            /* The line stays in the buffer, which moves only in the next
             * read: one copy per read, not one per line. */
            *nl = '\0';
            c->line = c->buf + c->off;
            c->off = (size_t)(nl - c->buf) + 1;
            return CLI_READ_OK;
        }
        if (c->off > 0) {
            memmove(c->buf, c->buf + c->off, c->len - c->off);
            c->len -= c->off;
            c->off = 0;
        }
        scanned = c->len;
        if (c->len == c->cap) {
            if (c->cap >= CLI_MAX_LINE)
                return CLI_READ_CLOSED; /* longer than any sane response */
            size_t cap = c->cap ? c->cap * 2 : READ_MIN;
            char *p = realloc(c->buf, cap);
            if (!p)
                return CLI_READ_CLOSED;
            c->buf = p;
            c->cap = cap;
        }
        if (wait_fd(c, -1) < 0)
            return CLI_READ_INTERRUPTED;
        ssize_t n = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return CLI_READ_CLOSED;
        c->len += (size_t)n;
    }
}

static int terminal_width(void)
{
    struct winsize ws;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
        return ws.ws_col;
    const char *cols = getenv("COLUMNS");
    return cols && atoi(cols) > 0 ? atoi(cols) : 80;
}

bool cli_handshake(cli_conn *c, const char *token)
{
    cJSON *hello = cJSON_CreateObject();
    cJSON_AddNumberToObject(hello, "terminal_width", terminal_width());
    cJSON_AddStringToObject(hello, "format", "json");
    if (token)
        cJSON_AddStringToObject(hello, "token", token);
    char *text = cJSON_PrintUnformatted(hello);
    cJSON_Delete(hello);
    bool ok = text && cli_send(c, text);
    cJSON_free(text);
    if (!ok || cli_read_line(c) != CLI_READ_OK) {
        fprintf(c->diag, "taskpool-control: the server closed the "
                         "connection during the handshake\n");
        return false;
    }
    cJSON *resp = cJSON_Parse(c->line);
    const char *name =
        cJSON_GetStringValue(cJSON_GetObjectItem(resp, "result"));
    if (cli_ok(resp) && name) {
        c->pool_name = strdup(name);
        c->simple = strncmp(name, "SimpleTaskPool-", 15) == 0;
        cJSON_Delete(resp);
        return c->pool_name != NULL;
    }
    const char *msg =
        cJSON_GetStringValue(cJSON_GetObjectItem(resp, "message"));
    fprintf(c->diag, "taskpool-control: refused: %s\n", msg ? msg : c->line);
    cJSON_Delete(resp);
    return false;
}

cJSON *cli_parse_response(const char *line)
{
    cJSON *resp = cJSON_Parse(line);
    if (cJSON_IsObject(resp))
        return resp;
    /* A text error line (e.g. "error: ..."): turn it into a failure. The
     * keys are constants, not copied. */
    cJSON_Delete(resp);
    resp = cJSON_CreateObject();
    cJSON *ok = cJSON_CreateFalse();
    cJSON *err = cJSON_CreateStringReference("TP_EPROTO");
    cJSON *msg = cJSON_CreateString(line);
    if (!resp || !ok || !err || !msg) {
        cJSON_Delete(ok);
        cJSON_Delete(err);
        cJSON_Delete(msg);
        cJSON_Delete(resp);
        return NULL;
    }
    cJSON_AddItemToObjectCS(resp, "ok", ok);
    cJSON_AddItemToObjectCS(resp, "error", err);
    cJSON_AddItemToObjectCS(resp, "message", msg);
    return resp;
}

cJSON *cli_request(cli_conn *c, const char *line, const char **raw,
                   bool *interrupted)
{
    *raw = NULL;
    *interrupted = false;
    cli_read_status st = cli_send(c, line) ? cli_read_line(c) : CLI_READ_CLOSED;
    if (st == CLI_READ_INTERRUPTED) {
        *interrupted = true;
        return NULL;
    }
    cJSON *resp = st == CLI_READ_OK ? cli_parse_response(c->line) : NULL;
    if (!resp) {
        fprintf(c->diag, "taskpool-control: lost the connection to the "
                         "server\n");
        return NULL;
    }
    *raw = c->line;
    return resp;
}

void cli_close(cli_conn *c)
{
    if (!c)
        return;
    close(c->fd);
    free(c->pool_name);
    free(c->buf);
    free(c);
}
