/* SPDX-License-Identifier: MIT */
/* A tiny blocking client for the control server tests: connect, handshake,
 * send a line, read a line or a response ending in a blank line. Every read
 * has a receive timeout (10 s times the sanitizer multiplier) so that a
 * missing response fails the test instead of hanging it. */
#ifndef TP_TEST_CONTROL_UTIL_H
#define TP_TEST_CONTROL_UTIL_H

#include <arpa/inet.h>
#include <check.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "support.h"

typedef struct client {
    int fd;
    char buf[1 << 17];
    size_t len;
} client;

static inline void client_timeouts(int fd)
{
    double s = 10 * time_multiplier();
    struct timeval tv = {(time_t)s, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

static inline client *client_tcp(int port)
{
    client *c = calloc(1, sizeof *c);
    ck_assert_ptr_nonnull(c);
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(c->fd, 0);
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(connect(c->fd, (struct sockaddr *)&sa, sizeof sa), 0);
    client_timeouts(c->fd);
    return c;
}

/* Connects to a Unix socket; NULL (with errno) if that fails. */
static inline client *client_unix_try(const char *path)
{
    client *c = calloc(1, sizeof *c);
    ck_assert_ptr_nonnull(c);
    c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(c->fd, 0);
    struct sockaddr_un sa = {0};
    sa.sun_family = AF_UNIX;
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        int err = errno;
        close(c->fd);
        free(c);
        errno = err;
        return NULL;
    }
    client_timeouts(c->fd);
    return c;
}

static inline client *client_unix(const char *path)
{
    client *c = client_unix_try(path);
    ck_assert_msg(c != NULL, "connect %s: %s", path, strerror(errno));
    return c;
}

static inline void client_close(client *c)
{
    if (c) {
        close(c->fd);
        free(c);
    }
}

static inline void client_send(client *c, const char *data, size_t len)
{
    size_t off = 0;
    while (off < len) {
        ssize_t n = send(c->fd, data + off, len - off, MSG_NOSIGNAL);
        ck_assert_msg(n > 0, "send: %s", strerror(errno));
        off += (size_t)n;
    }
}

static inline void client_send_line(client *c, const char *line)
{
    client_send(c, line, strlen(line));
    client_send(c, "\n", 1);
}

/* Reads until the buffer ends with `end` (or EOF/timeout); returns the
 * text read (malloc'd), or NULL on EOF/timeout with nothing read. */
static inline char *client_read_until(client *c, const char *end)
{
    size_t el = strlen(end);
    for (;;) {
        char *hit = NULL;
        if (c->len >= el) {
            /* The first occurrence of end in the buffer. */
            for (size_t i = 0; i + el <= c->len; i++)
                if (memcmp(c->buf + i, end, el) == 0) {
                    hit = c->buf + i;
                    break;
                }
        }
        if (hit) {
            size_t n = (size_t)(hit - c->buf) + el;
            char *out = malloc(n + 1);
            memcpy(out, c->buf, n);
            out[n] = '\0';
            memmove(c->buf, c->buf + n, c->len - n);
            c->len -= n;
            return out;
        }
        if (c->len == sizeof c->buf)
            return NULL;
        ssize_t r = recv(c->fd, c->buf + c->len, sizeof c->buf - c->len, 0);
        if (r <= 0) {
            if (c->len == 0)
                return NULL;
            char *out = malloc(c->len + 1);
            memcpy(out, c->buf, c->len);
            out[c->len] = '\0';
            c->len = 0;
            return out;
        }
        c->len += (size_t)r;
    }
}

/* One line without its newline (malloc'd), NULL on EOF. */
static inline char *client_line(client *c)
{
    char *s = client_read_until(c, "\n");
    if (s && *s && s[strlen(s) - 1] == '\n')
        s[strlen(s) - 1] = '\0';
    return s;
}

/* True once the server closed the connection (no more data). */
static inline bool client_eof(client *c)
{
    char tmp[256];
    for (;;) {
        ssize_t r = recv(c->fd, tmp, sizeof tmp, 0);
        if (r == 0 || (r < 0 && errno == ECONNRESET))
            return true;
        if (r < 0)
            return false; /* timeout */
    }
}

static inline void client_hello(client *c, const char *json, const char *expect)
{
    client_send_line(c, json);
    char *l = client_line(c);
    ck_assert_ptr_nonnull(l);
    ck_assert_str_eq(l, expect);
    free(l);
}

/* Sends a command, checks a one-line response. */
#define CMD_IS(c, cmd, expect)                                                 \
    do {                                                                       \
        client_send_line((c), (cmd));                                          \
        char *l_ = client_line(c);                                             \
        ck_assert_msg(l_ != NULL, "no response to %s", (cmd));                 \
        ck_assert_str_eq(l_, (expect));                                        \
        free(l_);                                                              \
    } while (0)

/* Reads exactly n bytes (fewer on EOF or timeout); malloc'd. */
static inline char *client_read_n(client *c, size_t n)
{
    while (c->len < n && c->len < sizeof c->buf) {
        ssize_t r = recv(c->fd, c->buf + c->len, sizeof c->buf - c->len, 0);
        if (r <= 0)
            break;
        c->len += (size_t)r;
    }
    size_t k = c->len < n ? c->len : n;
    char *out = malloc(k + 1);
    memcpy(out, c->buf, k);
    out[k] = '\0';
    memmove(c->buf, c->buf + k, c->len - k);
    c->len -= k;
    return out;
}

/* Sends a command, checks a multi-line response (help, usage errors). */
#define CMD_BLOCK_IS(c, cmd, expect)                                           \
    do {                                                                       \
        client_send_line((c), (cmd));                                          \
        char *l_ = client_read_n((c), strlen(expect));                         \
        ck_assert_msg(l_ != NULL, "no response to %s", (cmd));                 \
        ck_assert_str_eq(l_, (expect));                                        \
        free(l_);                                                              \
    } while (0)

/* Sends a command, returns the parsed JSON response. */
static inline cJSON *client_json(client *c, const char *cmd)
{
    client_send_line(c, cmd);
    char *l = client_line(c);
    ck_assert_msg(l != NULL, "no response to %s", cmd);
    cJSON *j = cJSON_Parse(l);
    ck_assert_msg(j != NULL, "not JSON: %s", l);
    free(l);
    return j;
}

#endif
