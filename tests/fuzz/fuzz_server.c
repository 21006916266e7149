// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for the whole control server: one session, driven
 * through a real socket and the control loop's own turns (tp__ctl_manual_*,
 * on the fuzzing thread), against a real pool whose tasks run. It covers
 * what fuzz_control (the parsers alone) cannot: the handshake state
 * machine and the token check, line framing and the skipping of over-long
 * lines, output buffering and back-pressure against a client that reads
 * little or nothing, half-close and hang-up, the blocking commands on their
 * helper threads (flush, gather-and-close, until-closed) and the offloaded
 * ones (cancel-all, cancel-group), the SimpleTaskPool commands against a
 * simple pool, and tasks that run and end, so that the JSON arguments are
 * freed at task end (LeakSanitizer checks that they are).
 *
 * Input: byte 0 chooses the setting, the rest is what the client sends.
 *   bit 0     a SimpleTaskPool (else a TaskPool with registered functions)
 *   bit 1     the server requires the token "tok"
 *   bits 2-3  how the client reads: 0 everything after each chunk, 1 at most
 *             64 bytes, 2 nothing until its input is sent (back-pressure),
 *             3 every other chunk
 *   bit 4     at the end the client closes (hang-up) instead of shutting
 *             down its writing side and reading every response
 *   bits 5-7  chunk size: the input is sent in chunks of 8, 16 ... 1024
 *             bytes (larger if that would take more than MAX_CHUNKS
 *             chunks), with one turn of the control loop after each
 *
 * Warm state. One pool and one server per kind of pool live across inputs
 * (creating and joining their threads was most of an input's cost): each
 * input gets a new session on a new socket pair and ends with the pool as
 * it found it: the pool locked while the session ends, everything
 * cancelled, the session freed, every task forgotten (tp_flush), the pool
 * unlocked and at size 2 again; the token is switched per input. So an
 * input frees what it allocated, apart from the engine's and the server's
 * one-time growth (the help cache, idle helper threads), and libFuzzer's
 * leak check (it runs an input again, then LeakSanitizer, when the input
 * left more allocations than frees) stays meaningful. An input with a line
 * that may close the pool (gather-and-close) or wait for its close
 * (until-closed: until the close, or 50 ms after the client hung up) gets
 * a pool of its own, made and freed in that input; a second server per
 * kind of pool serves those inputs, the input's pool swapped in, so that
 * its helper threads are not made again for each.
 *
 * Cost bound: inputs are cut at MAX_INPUT bytes, MAX_LINES lines and
 * before the MAX_JOBS + 1st line that runs on a helper thread; a command
 * starts at most MAX_SPAWN tasks, every task ends by itself within NAP
 * seconds (or at once when cancelled), and at the end
 * the harness cancels everything (and closes a pool of the input's own),
 * so blocking commands end. A session that does not end within MAX_TURNS
 * turns after that aborts (a hang is a finding).
 *
 * Oracle: besides the sanitizers, every byte the server sends is valid
 * UTF-8 without NUL, and in JSON mode every line after the handshake is a
 * JSON object with a boolean "ok".
 *
 *   ./tests/fuzz/fuzz_server -max_total_time=30 NEW_DIR \
 *       tests/fuzz/corpus_server
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "server.h"

#define MAX_INPUT 4096
#define MAX_SPAWN 8
#define MAX_LINE 256
#define NAP 0.00005
#define MAX_TURNS 200000
#define MAX_OUTPUT (8 << 20)
/* Per input: lines sent (the rest is cut off), lines that run on a
 * helper thread (the input is cut before the next one),
 * and rounds of send-and-turn (longer inputs get bigger chunks). */
#define MAX_LINES 32
#define MAX_JOBS 4
#define MAX_CHUNKS 16

static int nap(tp_task *task, void *arg)
{
    (void)arg;
    tp_sleep(task, NAP);
    return 0;
}

/* Reads every part of its JSON argument, which must still be alive. */
static int echo(tp_task *task, void *arg)
{
    (void)task;
    char *s = cJSON_PrintUnformatted((const cJSON *)arg);
    free(s);
    return 0;
}

static void on_end(tp_pool *pool, tp_id id, void *arg)
{
    (void)pool, (void)id, (void)arg;
}

typedef struct out {
    char *p;
    size_t len, cap;
    bool overflow; /* more than MAX_OUTPUT: not checked */
} out;

/* Reads up to max bytes (0: all there is) from the client's socket. */
static void drain(int fd, out *o, size_t max)
{
    char buf[16384];
    size_t got = 0;
    while (max == 0 || got < max) {
        size_t want = sizeof buf;
        if (max && max - got < want)
            want = max - got;
        ssize_t n = recv(fd, buf, want, MSG_DONTWAIT);
        if (n <= 0)
            return;
        got += (size_t)n;
        if (o->len + (size_t)n > o->cap && o->cap < MAX_OUTPUT) {
            size_t cap = o->cap ? o->cap * 2 : 65536;
            while (cap < o->len + (size_t)n)
                cap *= 2;
            char *p = realloc(o->p, cap);
            if (!p)
                abort();
            o->p = p;
            o->cap = cap;
        }
        if (o->len + (size_t)n <= o->cap) {
            memcpy(o->p + o->len, buf, (size_t)n);
            o->len += (size_t)n;
        } else {
            o->overflow = true;
        }
        /* A stream socket's recv copies all it holds up to want: a short
         * read emptied it (saves the recv that would say EAGAIN). */
        if ((size_t)n < want)
            return;
    }
}

static void check_output(const out *o, bool json_mode)
{
    if (o->overflow)
        return;
    if (!tp__ctl_utf8_valid(o->p ? o->p : "", o->len))
        abort();
    if (!json_mode)
        return;
    /* After the handshake's reply, every line is one JSON response. */
    const char *p = o->p, *end = o->p + o->len;
    bool first = true;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl)
            break; /* a hang-up may cut the last one */
        if (!first) {
            cJSON *j = cJSON_ParseWithLength(p, (size_t)(nl - p));
            if (!cJSON_IsObject(j) ||
                !cJSON_IsBool(cJSON_GetObjectItemCaseSensitive(j, "ok")))
                abort();
            cJSON_Delete(j);
        }
        first = false;
        p = nl + 1;
    }
}

/* Whether the input's handshake line asks for JSON and would be accepted;
 * only then is the output checked line by line. */
static bool wants_json(const uint8_t *data, size_t size, bool token)
{
    const uint8_t *nl = memchr(data, '\n', size);
    if (!nl || (size_t)(nl - data) > MAX_LINE)
        return false;
    char *line = strndup((const char *)data, (size_t)(nl - data));
    if (!line)
        abort();
    /* The server strips surrounding blanks and a CR as it frames lines. */
    size_t len = strlen(line);
    if (len != (size_t)(nl - data)) {
        free(line);
        return false;
    }
    tp__ctl_hello h;
    const char *why;
    char *p = line;
    while (*p == ' ' || *p == '\t')
        p++;
    len = strlen(p);
    while (len &&
           (p[len - 1] == ' ' || p[len - 1] == '\t' || p[len - 1] == '\r'))
        p[--len] = '\0';
    bool ok = tp__ctl_parse_hello(p, len, &h, &why);
    bool json =
        ok && h.json && (!token || (h.token && strcmp(h.token, "tok") == 0));
    if (ok)
        free(h.token);
    free(line);
    return json;
}

/* The command a line names, as the server reads its first word (any
 * isspace() byte ends it), or NULL. */
static const tp__ctl_command *line_command(const char *p, const char *e,
                                           bool simple)
{
    while (p < e && isspace((unsigned char)*p))
        p++;
    size_t n = 0;
    while (p + n < e && !isspace((unsigned char)p[n]))
        n++;
    char name[32];
    if (n == 0 || n >= sizeof name)
        return NULL;
    memcpy(name, p, n);
    name[n] = '\0';
    return tp__ctl_command_find(name, simple);
}

/* Cuts the input to its first MAX_LINES lines, before the line that would
 * be the MAX_JOBS + 1st to run on a helper thread (a blocking or offloaded
 * command); *closes: a line kept may close the pool or wait for its close
 * (gather-and-close, until-closed). Returns the length kept. */
static size_t bounded(const uint8_t *data, size_t size, bool simple,
                      bool *closes)
{
    const char *p = (const char *)data, *end = p + size;
    int lines = 0, jobs = 0;
    *closes = false;
    while (p < end && lines < MAX_LINES) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const tp__ctl_command *c = line_command(p, nl ? nl : end, simple);
        if (c && (c->flags & (TP__CTL_BLOCKING | TP__CTL_OFFLOAD))) {
            if (++jobs > MAX_JOBS)
                break;
            if (strcmp(c->name, "gather-and-close") == 0 ||
                strcmp(c->name, "until-closed") == 0)
                *closes = true;
        }
        lines++;
        p = nl ? nl + 1 : end;
    }
    return (size_t)(p - (const char *)data);
}

/* A pool and its server, made by hand-driving (tp__ctl_manual_open). */
typedef struct warm {
    tp_pool *pool;
    tp_control *ctl;
    char *token; /* the server's copy of "tok", set per input */
} warm;

/* [simple]: the warm pools, and the servers of inputs that close their
 * pool (each such input swaps a new pool in). */
static warm warms[2], colds[2];

static tp_pool *pool_make(bool simple)
{
    tp_pool_opts po = {.name = "fuzz", .pool_size = 2};
    tp_opts o = {.func_name = "nap"};
    tp_pool *pool =
        simple ? tp_simple_pool_new(nap, NULL, &po, &o) : tp_pool_new(&po);
    if (!pool)
        abort();
    return pool;
}

static void warm_make(warm *w, bool simple)
{
    w->pool = pool_make(simple);
    tp_control_opts opts = {
        .token = "tok",
        .max_line = MAX_LINE,
        .max_spawn = MAX_SPAWN,
    };
    w->ctl = tp_control_new_tcp(w->pool, "127.0.0.1", "0", &opts);
    if (!w->ctl)
        abort();
    w->token = w->ctl->token;
    w->ctl->refuse_delay = 0; /* no half-second wait per wrong token */
    w->ctl->out_high = 16384; /* back-pressure within a few responses */
    if (!simple) {
        tp_control_register(w->ctl, "nap", nap);
        tp_control_register(w->ctl, "echo", echo);
        tp_control_register_callback(w->ctl, "on_end", on_end, NULL);
    }
    if (tp__ctl_manual_open(w->ctl) != TP_OK)
        abort();
}

static void warm_free(warm *w)
{
    w->ctl->token = w->token;
    tp_control_free(w->ctl);
    tp_pool_free(w->pool);
    *w = (warm){0};
}

/* After the session ended: the pool as the next input expects it. Tasks
 * that a helper started before the pool was locked are cancelled too;
 * tp_flush waits for every cancelled task and forgets them all. A pool
 * closed all the same (by a line bounded did not see) is made again. */
static void warm_reset(warm *w, bool simple)
{
    tp_cancel_all(w->pool);
    tp_flush(w->pool);
    if (tp_until_closed(w->pool, 0) == TP_OK) {
        warm_free(w);
        warm_make(w, simple);
        return;
    }
    tp_unlock(w->pool);
    tp_set_pool_size(w->pool, 2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned cfg = data[0];
    data++;
    size--;
    if (size > MAX_INPUT)
        size = MAX_INPUT;
    bool simple = cfg & 1, token = cfg & 2, hangup = cfg & 16;
    unsigned reading = (cfg >> 2) & 3;
    bool cold; /* the input may close its pool: it gets a pool of its own */
    size = bounded(data, size, simple, &cold);
    size_t chunk = (size_t)8 << ((cfg >> 5) & 7);
    if (chunk < (size + MAX_CHUNKS - 1) / MAX_CHUNKS)
        chunk = (size + MAX_CHUNKS - 1) / MAX_CHUNKS;

    warm *wm = cold ? &colds[simple] : &warms[simple];
    if (!wm->ctl)
        warm_make(wm, simple);
    else if (!wm->pool) /* a cold server: a new pool for this input */
        wm->pool = wm->ctl->pool = pool_make(simple);
    tp_pool *pool = wm->pool;
    tp_control *ctl = wm->ctl;
    ctl->token = token ? wm->token : NULL;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
                   sv) != 0 ||
        tp__ctl_manual_adopt(ctl, sv[0]) != TP_OK)
        abort();

    out o = {0};
    size_t sent = 0, nchunk = 0;
    long turns = 0;
    while (sent < size) {
        size_t n = size - sent < chunk ? size - sent : chunk;
        ssize_t w = send(sv[1], data + sent, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0)
            sent += (size_t)w;
        else if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
            break; /* the server closed the session */
        tp__ctl_manual_turn(ctl, 0);
        if (tp__ctl_manual_idle(ctl))
            break;
        bool blocked = w < 0;
        switch (reading) {
        case 0:
            drain(sv[1], &o, 0);
            break;
        case 1:
            drain(sv[1], &o, 64);
            break;
        case 2:
            break;
        default:
            if (nchunk % 2)
                drain(sv[1], &o, 0);
            break;
        }
        /* A client that does not read stops the server reading it; it
         * reads once it cannot send (else both would wait for ever). */
        if (blocked)
            drain(sv[1], &o, 0);
        nchunk++;
        if (++turns > MAX_TURNS)
            abort();
    }
    if (hangup) {
        close(sv[1]);
        sv[1] = -1;
    } else {
        shutdown(sv[1], SHUT_WR);
    }
    /* Every task ends, and nothing new starts; a pool of its own closes
     * (until-closed waits for that): blocking commands return. */
    tp_lock(pool);
    tp_cancel_all(pool);
    if (cold)
        tp_gather_and_close(pool);
    for (turns = 0; !tp__ctl_manual_idle(ctl); turns++) {
        if (turns > MAX_TURNS)
            abort();
        /* Read first: a turn that finds the socket full of unread
         * responses would wait its whole 10 ms for room. */
        if (sv[1] >= 0)
            drain(sv[1], &o, 0);
        tp__ctl_manual_turn(ctl, 10);
    }
    if (sv[1] >= 0) {
        drain(sv[1], &o, 0);
        check_output(&o, wants_json(data, size, token));
        close(sv[1]);
    }
    free(o.p);
    if (cold) {
        tp_pool_free(wm->pool); /* its server has no session left */
        wm->pool = wm->ctl->pool = NULL;
    } else {
        warm_reset(wm, simple);
    }
    return 0;
}
