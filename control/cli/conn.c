/* SPDX-License-Identifier: MIT */
/* Connecting, the handshake, and one request/response exchange. */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "cli.h"
#include "ctl.h"

static cli_conn *conn_new(int fd)
{
    cli_conn *c = calloc(1, sizeof *c);
    if (!c) {
        close(fd);
        fprintf(stderr, "taskpool-control: out of memory\n");
        return NULL;
    }
    c->fd = fd;
    return c;
}

cli_conn *cli_connect_tcp(const char *host, const char *port)
{
    struct addrinfo hints = {0}, *res;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int gai = getaddrinfo(host, port, &hints, &res);
    if (gai != 0) {
        fprintf(stderr, "taskpool-control: cannot resolve %s port %s: %s\n",
                host, port, gai_strerror(gai));
        return NULL;
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
    if (fd < 0) {
        fprintf(stderr, "taskpool-control: cannot connect to %s port %s: %s\n",
                host, port, strerror(err));
        return NULL;
    }
    return conn_new(fd);
}

cli_conn *cli_connect_unix(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof sa.sun_path) {
        fprintf(stderr, "taskpool-control: socket path too long: %s\n", path);
        return NULL;
    }
    strcpy(sa.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        fprintf(stderr, "taskpool-control: cannot connect to %s: %s\n", path,
                strerror(errno));
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    return conn_new(fd);
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

/* Reads one line into c->line (without the newline); false on EOF, out of
 * memory, or a line longer than CLI_MAX_LINE. The buffer grows with the
 * longest response (a get-group-ids of many tasks is long). */
static bool read_line(cli_conn *c)
{
    free(c->line);
    c->line = NULL;
    size_t scanned = 0;
    for (;;) {
        char *nl =
            c->len ? memchr(c->buf + scanned, '\n', c->len - scanned) : NULL;
        if (nl) {
            size_t n = (size_t)(nl - c->buf);
            c->line = strndup(c->buf, n);
            memmove(c->buf, nl + 1, c->len - n - 1);
            c->len -= n + 1;
            return c->line != NULL;
        }
        scanned = c->len;
        if (c->len == c->cap) {
            if (c->cap >= CLI_MAX_LINE)
                return false; /* longer than any sane response */
            size_t cap = c->cap ? c->cap * 2 : 1 << 16;
            char *p = realloc(c->buf, cap);
            if (!p)
                return false;
            c->buf = p;
            c->cap = cap;
        }
        ssize_t n = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
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
    bool ok = text && send_all(c, text, strlen(text)) && send_all(c, "\n", 1);
    cJSON_free(text);
    if (!ok || !read_line(c)) {
        fprintf(stderr, "taskpool-control: the server closed the "
                        "connection during the handshake\n");
        return false;
    }
    cJSON *resp = cJSON_Parse(c->line);
    const char *name =
        cJSON_GetStringValue(cJSON_GetObjectItem(resp, "result"));
    if (cJSON_IsTrue(cJSON_GetObjectItem(resp, "ok")) && name) {
        c->pool_name = strdup(name);
        cJSON_Delete(resp);
        return c->pool_name != NULL;
    }
    const char *msg =
        cJSON_GetStringValue(cJSON_GetObjectItem(resp, "message"));
    fprintf(stderr, "taskpool-control: refused: %s\n", msg ? msg : c->line);
    cJSON_Delete(resp);
    return false;
}

cJSON *cli_request(cli_conn *c, const char *line, const char **raw)
{
    *raw = NULL;
    if (!send_all(c, line, strlen(line)) || !send_all(c, "\n", 1) ||
        !read_line(c)) {
        fprintf(stderr, "taskpool-control: lost the connection to the "
                        "server\n");
        return NULL;
    }
    *raw = c->line;
    cJSON *resp = cJSON_Parse(c->line);
    if (!cJSON_IsObject(resp)) {
        /* A text error line (e.g. "error: ..."): turn it into a failure. */
        cJSON_Delete(resp);
        resp = cJSON_CreateObject();
        cJSON_AddFalseToObject(resp, "ok");
        cJSON_AddStringToObject(resp, "error", "TP_EPROTO");
        cJSON_AddStringToObject(resp, "message", c->line);
    }
    return resp;
}

bool cli_print(const char *request, const cJSON *resp, FILE *out, FILE *err)
{
    if (!cJSON_IsTrue(cJSON_GetObjectItem(resp, "ok"))) {
        const char *msg =
            cJSON_GetStringValue(cJSON_GetObjectItem(resp, "message"));
        fprintf(err, "%s\n", msg ? msg : "error");
        return false;
    }
    const cJSON *result = cJSON_GetObjectItem(resp, "result");
    /* The command name decides a few renderings; JSON null is "inf" for
     * the pool-size getter and "ok" for everything else. */
    char *copy = strdup(request);
    char *tok[3] = {0};
    size_t n = copy ? tp__ctl_tokenize(copy, tok, 3) : 0;
    const char *cmd = n ? tok[0] : "";
    bool getter = n == 1 && strcasecmp(cmd, "pool-size") == 0;
    if (cJSON_IsNull(result) && !getter)
        result = NULL;
    char *text = tp__ctl_result_text(cmd, result);
    fprintf(out, "%s\n", text ? text : "");
    free(text);
    free(copy);
    return true;
}

void cli_close(cli_conn *c)
{
    if (!c)
        return;
    close(c->fd);
    free(c->pool_name);
    free(c->buf);
    free(c->line);
    free(c);
}
