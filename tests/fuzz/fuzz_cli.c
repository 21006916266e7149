/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the CLI's side of the protocol: everything the
 * server sends back. The input is what a server would send: the first
 * line answers the handshake, every further line answers one request. It
 * is written into one end of a socket pair whose writing side is then
 * shut down, so the CLI's own framing (conn.c: buffer growth, lines cut by
 * the end of the stream) reads it exactly as from a server.
 *
 * The CLI then acts in turn, each action reading what it reads in the real
 * program: a command through cli_run_one (the unknown-command check, the
 * request, the text or JSON rendering) -- every command of the table in
 * turn, from a place that depends on the input's size, so that over the
 * corpus each renders every kind of result --, a Tab completion of group
 * names (which asks `groups`), a --stat sample; and, for three actions in
 * eight, only what cli_run_one does after sending its request (the send
 * is the same every time, and costs more than the rest of the action).
 * The input ends after eight actions in a row that read nothing, or after
 * MAX_ACTIONS: its cost is linear in its size, and bounded.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli.h"
#include "ctl.h"

#define MAX_INPUT (64 * 1024)
/* Actions per input: every kind four times; the lines after them are not
 * read, so that an input costs at most this many responses. */
#define MAX_ACTIONS 32

/* Output goes to a stream that discards it without a system call (the
 * CLI flushes after each response). */
static FILE *devnull;

static ssize_t discard(void *cookie, const char *buf, size_t size)
{
    (void)cookie, (void)buf;
    return (ssize_t)size;
}

/* Requests beside the table's bare command names: the renderings that
 * depend on the arguments, help, and group listings. */
static const char *const extra[] = {
    "pool-size 4", "get-group-ids a b", "stop 2",    "-h",
    "groups",      "apply f -n 2",      "POOL-SIZE", "no-such-command x",
};
#define NEXTRA (sizeof extra / sizeof extra[0])

/* The i-th request: every command of the table in turn, then the extras. */
static const char *request(size_t i)
{
    i %= tp__ctl_ncommands + NEXTRA;
    return i < tp__ctl_ncommands ? tp__ctl_commands[i].name
                                 : extra[i - tp__ctl_ncommands];
}

/* One action of the CLI; returns false once the connection broke. */
static bool act(cli_conn *c, bool simple, size_t i, size_t *next)
{
    switch (i % 8) {
    case 3: { /* Tab after "cancel-group ": asks the server for groups */
        size_t len, n;
        const char *line = i % 16 == 3 ? "cancel-group " : "get-group-ids x ";
        char **v = cli_candidates(c, simple, line, strlen(line), &len, &n);
        cli_free_candidates(v, n);
        return true;
    }
    case 6: /* one --stat sample; the next line counts as unasked data */
        cli_stat(c, 0, devnull);
        return true;
    case 1:
    case 4:
    case 5: { /* what cli_run_one does after its send (a send costs more
               * than all the rest, and is the same every time) */
        if (cli_read_line(c) != CLI_READ_OK)
            return false;
        cJSON *resp = cli_parse_response(c->line);
        if (resp)
            cli_print(request((*next)++), resp, devnull, devnull);
        cJSON_Delete(resp);
        return true;
    }
    default: /* a command, rendered as text, or as JSON (--json) */
        return cli_run_one(c, request((*next)++), i % 8 == 7, devnull,
                           devnull) >= 0;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!devnull &&
        !(devnull = fopencookie(NULL, "w",
                                (cookie_io_functions_t){.write = discard})))
        abort();
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        abort();
    /* The socket's buffer holds the input whole (about 200 KiB); a longer
     * one (a large -max_len) is cut, as a server may cut its output. */
    if (size > MAX_INPUT)
        size = MAX_INPUT;
    for (size_t off = 0; off < size;) {
        ssize_t w = write(sv[1], data + off, size - off);
        if (w <= 0)
            abort();
        off += (size_t)w;
    }
    shutdown(sv[1], SHUT_WR);
    cli_conn *c = cli_conn_from_fd(sv[0], devnull);
    if (!c)
        abort();
    bool simple = cli_handshake(c, size % 2 ? "token" : NULL) && c->simple;
    /* Ends when a whole round of actions read nothing: the end of the
     * input (some actions, such as a command the table does not know,
     * read nothing by design). */
    size_t next = size; /* where in request()'s list this input starts */
    for (size_t i = 0, idle = 0; idle < 8 && i < MAX_ACTIONS; i++) {
        c->line = NULL;
        bool alive = act(c, simple, i, &next);
        /* Read the requests, as a server would, before they fill the
         * socket's buffer (each small send takes about 1 KiB of it). */
        char sink[4096];
        while (i % 16 == 15 && recv(sv[1], sink, sizeof sink, MSG_DONTWAIT) > 0)
            ;
        if (!alive)
            break;
        idle = c->line ? 0 : idle + 1;
    }
    cli_close(c);
    close(sv[1]);
    return 0;
}
