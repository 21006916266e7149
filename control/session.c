/* SPDX-License-Identifier: MIT */
/*
 * One control session: a connection's input and output buffers, the
 * handshake, line framing and the dispatch of each request line. Runs on
 * the control thread only (see the DESIGN block in server.c).
 *
 * Framing. The input buffer holds at most max_line bytes plus the newline;
 * a longer line gets one error response and is skipped up to its newline,
 * so memory never grows with the input. Output is buffered and written
 * without blocking, the answers to a batch of lines in one send; while
 * more than ctl->out_high bytes (1 MiB) wait for a slow reader, the
 * session stops reading requests. One turn of the control thread answers
 * at most BATCH_LINES lines of a session (the rest in the next turns), so
 * a client pipelining cheap requests cannot hold the thread that serves
 * the others. At the end of the client's input (it
 * may shut down only its writing side and read afterwards) every complete
 * line is still answered and every response written before the session
 * closes; a line cut off by the end is dropped.
 */
#include <ctype.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "server.h"

#define DEFAULT_WIDTH 80
/* Most request lines answered per session in one turn (see process_input). */
#define BATCH_LINES 256

typedef enum {
    S_HANDSHAKE, /* waiting for the client's JSON line */
    S_HTTP,      /* "GET /metrics HTTP/1.x" came instead: reading headers */
    S_REFUSED,   /* wrong token: the error waits out ctl->refuse_delay */
    S_READY,     /* serving requests */
    S_BUSY,      /* a blocking command runs for this session */
    S_CLOSING,   /* write what is left, then close */
    S_DEAD       /* to be freed */
} state;

struct tp__ctl_session {
    tp_control *ctl;
    uint64_t id;
    int fd;
    state st;
    bool json;
    int width;
    bool discarding; /* skipping the rest of an over-long line */
    bool eof;        /* the client sent all it will send */
    bool batching;   /* process_input: queued output waits for its flush */
    bool backlog;    /* complete lines wait for the next batch */
    /* Byte queues, not tp__ctl_buf: they are consumed from the front while
     * the socket takes or gives bytes (an offset and memmove), the input
     * one never grows (max_line + 1, fixed), and a failed allocation of
     * the output one must end the session at once rather than turn later
     * appends into no-ops. Responses are built in tp__ctl_buf (reply.c)
     * and then queued here, or adopted whole (queue_text). */
    char *in;
    size_t in_len, in_cap;
    char *out;
    size_t out_off, out_len, out_cap;
    double born;          /* when accepted */
    double last_active;   /* when the client last sent bytes */
    double close_by;      /* refused: when to answer; closing: when to give
                           * up on a client that does not read; else 0 */
    uint64_t turn;        /* the control thread's turn that accepted it */
    bool fin_seen;        /* the input ended while a job ran */
    char job_line[104];   /* the job's request, for the log (if on) */
    bool http_found;      /* S_HTTP: the path is /metrics */
    bool http_authed;     /* S_HTTP: the Authorization header holds the token */
    bool job;             /* a command runs for this session on a helper */
    atomic_int abandoned; /* the client is gone; read by the job's helper */
};

/* ------------------------------------------------------------------------ */
/* Handshake (a pure function, fuzzed)                       */
/* ------------------------------------------------------------------------ */

bool tp__ctl_parse_hello(const char *line, size_t len, tp__ctl_hello *out,
                         const char **why)
{
    memset(out, 0, sizeof *out);
    out->width = DEFAULT_WIDTH;
    if (!tp__ctl_utf8_valid(line, len)) {
        *why = "the handshake is not valid UTF-8 text";
        return false;
    }
    (void)len; /* line is NUL-terminated; trailing junk is an error */
    cJSON *j = cJSON_ParseWithOpts(line, NULL, true);
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        *why = "the handshake must be one JSON object, e.g. "
               "{\"terminal_width\": 80}";
        return false;
    }
    bool ok = false;
    const cJSON *w = cJSON_GetObjectItemCaseSensitive(j, "terminal_width");
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(j, "format");
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "token");
    if (w && !cJSON_IsNumber(w)) {
        *why = "\"terminal_width\" must be a number";
    } else if (f &&
               !(cJSON_IsString(f) && (strcmp(f->valuestring, "json") == 0 ||
                                       strcmp(f->valuestring, "text") == 0))) {
        *why = "\"format\" must be \"text\" or \"json\"";
    } else if (t && !cJSON_IsString(t)) {
        *why = "\"token\" must be a string";
    } else {
        ok = true;
        if (w) {
            double d = w->valuedouble;
            out->width = d < 20 ? 20 : d > 1000 ? 1000 : (int)d;
        }
        out->json = f && strcmp(f->valuestring, "json") == 0;
        if (t && !(out->token = strdup(t->valuestring))) {
            *why = "out of memory";
            ok = false;
        }
    }
    cJSON_Delete(j);
    return ok;
}

bool tp__ctl_token_equal(const char *secret, const char *given)
{
    size_t ls = strlen(secret), lg = strlen(given);
    /* Every byte of given is compared, with the secret's NUL beyond its
     * end: the time depends on the length of what the client sent only. */
    volatile unsigned char diff = (unsigned char)(ls != lg);
    for (size_t i = 0; i < lg; i++) {
        size_t j = i < ls ? i : ls;
        diff |= (unsigned char)(secret[j] ^ given[i]);
    }
    return diff == 0;
}

/* Whether the session reads lines now. */
static bool reading(const tp__ctl_session *s)
{
    return s->st == S_READY || s->st == S_HANDSHAKE || s->st == S_HTTP;
}

/* ------------------------------------------------------------------------ */
/* Output                                                                   */
/* ------------------------------------------------------------------------ */

static void flush_out(tp__ctl_session *s)
{
    if (s->st == S_REFUSED)
        return; /* the error waits out the delay */
    while (s->out_off < s->out_len) {
        ssize_t n = send(s->fd, s->out + s->out_off, s->out_len - s->out_off,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            s->out_off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        s->st = S_DEAD; /* the client went away */
        return;
    }
    s->out_off = s->out_len = 0;
    if (s->out_cap > ((size_t)1 << 20)) {
        /* A big response (groups) is out: give its memory back. */
        free(s->out);
        s->out = NULL;
        s->out_cap = 0;
    }
    if (s->st == S_CLOSING)
        s->st = S_DEAD;
}

static void queue_out(tp__ctl_session *s, const char *data, size_t len)
{
    if (s->st == S_DEAD)
        return;
    if (s->out_off > 0 && s->out_off == s->out_len)
        s->out_off = s->out_len = 0;
    if (s->out_len + len > s->out_cap) {
        if (s->out_off > 0) {
            memmove(s->out, s->out + s->out_off, s->out_len - s->out_off);
            s->out_len -= s->out_off;
            s->out_off = 0;
        }
        size_t cap = s->out_cap ? s->out_cap : 4096;
        while (cap < s->out_len + len)
            cap *= 2;
        if (cap != s->out_cap) {
            char *p = realloc(s->out, cap);
            if (!p) {
                s->st = S_DEAD;
                return;
            }
            s->out = p;
            s->out_cap = cap;
        }
    }
    memcpy(s->out + s->out_len, data, len);
    s->out_len += len;
    if (!s->batching)
        flush_out(s);
}

/* queue_out for a malloc'd text, which it takes: when nothing waits to be
 * written the text becomes the output queue itself, so that a big response
 * (groups) is not copied on the control thread. */
static void queue_text(tp__ctl_session *s, char *text, size_t len)
{
    if (s->st == S_DEAD || s->out_off < s->out_len || len < 65536) {
        queue_out(s, text, len);
        free(text);
        return;
    }
    free(s->out);
    s->out = text;
    s->out_off = 0;
    s->out_len = s->out_cap = len;
    if (!s->batching)
        flush_out(s);
}

static void send_reply(tp__ctl_session *s, tp__ctl_reply *r)
{
    size_t len = r->wire_len;
    char *text = r->wire;
    r->wire = NULL;
    if (!text)
        text = tp__ctl_reply_render(r, s->json, &len);
    if (!text) {
        static const char oom[] = "error: out of memory\n";
        queue_out(s, oom, sizeof oom - 1);
    } else {
        queue_text(s, text, len);
    }
    if (r->close_after && s->st != S_DEAD) {
        s->st = S_CLOSING;
        flush_out(s);
    }
}

/* Writes what is queued, then closes; a client that does not read gets
 * `grace` seconds (0: the idle timeout applies). */
static void close_after_output(tp__ctl_session *s, double grace)
{
    if (s->st == S_DEAD)
        return;
    s->st = S_CLOSING;
    s->close_by = grace > 0 ? tp__ctl_now() + grace : 0;
    flush_out(s);
}

/* "TCPControlClient-3": how the log names a session (the reference logs
 * its client class). */
static const char *who(const tp__ctl_session *s, char *buf, size_t size)
{
    snprintf(buf, size, "%sControlClient-%llu",
             s->ctl->is_unix ? "Unix" : "TCP", (unsigned long long)s->id);
    return buf;
}

/* Logs the outcome of a request: the reference's words for usage errors
 * and help, else the command (cut short) and ok or the error's name. */
static void log_outcome(const tp__ctl_session *s, const char *line,
                        const tp__ctl_reply *r)
{
    if (!tp__ctl_log_on())
        return;
    char name[64];
    who(s, name, sizeof name);
    if (r->is_usage)
        tp__ctl_log("%s got an ArgumentError: '%.100s'", name, line);
    else if (r->is_help && !(r->cmd && strcmp(r->cmd, "metrics") == 0))
        tp__ctl_log("%s received usage help", name);
    else
        tp__ctl_log("%s: '%.100s' -> %s", name, line,
                    r->ok      ? "ok"
                    : r->error ? r->error
                               : "error");
}

/* A protocol error reply outside of any command. */
static void send_error(tp__ctl_session *s, const char *name, const char *msg)
{
    tp__ctl_reply r = {0};
    tp__ctl_reply_error(&r, name, "error: %s", msg);
    send_reply(s, &r);
    tp__ctl_reply_clear(&r);
}

/* Answers with an error, then closes the session once the client has had
 * the handshake grace to read it: the end of every refused connection. */
static void close_with_error(tp__ctl_session *s, const char *name,
                             const char *msg)
{
    send_error(s, name, msg);
    close_after_output(s, s->ctl->handshake_timeout);
}

/* ------------------------------------------------------------------------ */
/* Requests                                                                 */
/* ------------------------------------------------------------------------ */

static void handshake(tp__ctl_session *s, char *line, size_t len)
{
    tp__ctl_hello h;
    const char *why = NULL;
    bool ok = tp__ctl_parse_hello(line, len, &h, &why);
    s->json = ok && h.json;
    s->width = h.width;
    const char *token = s->ctl->token;
    bool token_ok = !token || (h.token && tp__ctl_token_equal(token, h.token));
    bool had_token = h.token != NULL;
    free(h.token);
    char name[64];
    if (tp__ctl_log_on()) {
        who(s, name, sizeof name);
        if (ok && !token_ok)
            tp__ctl_log("%s refused: %s", name,
                        had_token ? "wrong token" : "no token");
        else if (!ok)
            tp__ctl_log("%s refused: %s", name, why);
    }
    if (ok && !token_ok) {
        /* The error waits out the delay, without a handshake place (see
         * tp_control_opts and accept_clients in server.c). */
        s->st = S_REFUSED;
        s->close_by = tp__ctl_now() + s->ctl->refuse_delay;
        send_error(s, TP__CTL_ETOKEN,
                   had_token ? "wrong token" : "this server requires a token");
        return;
    }
    if (!ok) {
        close_with_error(s, TP__CTL_EPROTO, why);
        return;
    }
    size_t ready, hs, refused;
    tp__ctl_count_places(s->ctl, &ready, &hs, &refused);
    if (ready >= s->ctl->max_clients) {
        char msg[64];
        snprintf(msg, sizeof msg, "too many clients (at most %zu)",
                 s->ctl->max_clients);
        tp__ctl_log("%s refused: %s", who(s, name, sizeof name), msg);
        close_with_error(s, TP__CTL_EBUSY, msg);
        return;
    }
    s->st = S_READY;
    const char *pool = tp_pool_name(s->ctl->pool);
    tp__ctl_log("%s connected (%s, %s format)", who(s, name, sizeof name), pool,
                s->json ? "json" : "text");
    if (s->json) {
        tp__ctl_reply r = {0};
        tp__ctl_reply_result(&r, cJSON_CreateString(pool));
        send_reply(s, &r);
        tp__ctl_reply_clear(&r);
    } else {
        char buf[TP_NAME_MAX + 1];
        int n = snprintf(buf, sizeof buf, "%s\n", pool);
        queue_out(s, buf, (size_t)n);
    }
}

/* The command line names, if it runs on a helper thread: blocking ones
 * (they wait for the pool) and those whose cost has no bound (dropping
 * pending starts, spawning from 64 KiB of JSON); NULL for the others. Its
 * parsing runs on the helper too, so the control thread only copies the
 * line. */
static const tp__ctl_command *helper_command(const tp__ctl_ctx *ctx,
                                             const char *line)
{
    /* The command's name as the tokenizer reads it: any isspace() byte
     * ends it (a vertical tab after "until-closed" used to hide it here,
     * and the parser then ran it on the control thread). */
    char name[32];
    while (isspace((unsigned char)*line))
        line++;
    size_t n = 0;
    while (line[n] && !isspace((unsigned char)line[n]))
        n++;
    if (n == 0 || n >= sizeof name)
        return NULL;
    memcpy(name, line, n);
    name[n] = '\0';
    const tp__ctl_command *cmd = tp__ctl_command_find(name, ctx->simple);
    return cmd && (cmd->flags & (TP__CTL_BLOCKING | TP__CTL_OFFLOAD)) ? cmd
                                                                      : NULL;
}

static void request(tp__ctl_session *s, char *line, size_t len)
{
    tp__ctl_ctx ctx = {
        .pool = s->ctl->pool,
        .simple = s->ctl->simple,
        .reg = &s->ctl->reg,
        .stopping = &s->ctl->stopping,
        .width = s->width,
        .json = s->json,
        .max_spawn = s->ctl->max_spawn,
        .help = &s->ctl->help,
    };
    const tp__ctl_command *cmd, *job_cmd = helper_command(&ctx, line);
    tp__ctl_args args;
    tp__ctl_reply r = {0};
    /* The parser cuts the line into tokens: the log needs a copy. */
    char shown[104] = "";
    if (tp__ctl_log_on())
        snprintf(shown, sizeof shown, "%s", line);
    if (job_cmd) {
        /* A client whose input already ended is not waited for. */
        atomic_store(&s->abandoned, s->fin_seen);
        ctx.abandoned = &s->abandoned;
        ctx.help = NULL;
        int rc = tp__ctl_job_start(s->ctl, s->id, &ctx, line, len);
        if (rc == TP_OK) {
            s->job = true;
            s->st = S_BUSY;
            snprintf(s->job_line, sizeof s->job_line, "%s", shown);
            return;
        }
        tp__ctl_reply_tp_error(&r, s->ctl->pool, rc);
    } else if (tp__ctl_parse(&ctx, line, &cmd, &args, &r)) {
        cmd->run(&ctx, &args, &r);
        tp__ctl_args_free(&args);
        r.cmd = cmd->name;
    }
    log_outcome(s, shown, &r);
    send_reply(s, &r);
    tp__ctl_reply_clear(&r);
}

/* ------------------------------------------------------------------------ */
/* HTTP: GET /metrics instead of a handshake, so Prometheus scrapes the port */
/* ------------------------------------------------------------------------ */

/* True (and S_HTTP entered) if the first line is an HTTP/1.x GET. */
static bool http_start(tp__ctl_session *s, const char *line, size_t len)
{
    if (len < 14 || strncmp(line, "GET ", 4) != 0 ||
        (strcmp(line + len - 9, " HTTP/1.1") != 0 &&
         strcmp(line + len - 9, " HTTP/1.0") != 0))
        return false;
    size_t plen = len - 13;
    const char *path = line + 4;
    s->http_found = plen >= 8 && strncmp(path, "/metrics", 8) == 0 &&
                    (plen == 8 || path[8] == '?');
    s->http_authed = s->ctl->token == NULL;
    s->st = S_HTTP;
    return true;
}

static void http_respond(tp__ctl_session *s, const char *status,
                         const char *extra, const char *body)
{
    char head[256];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %s\r\nContent-Type: %s\r\n%s"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                     status,
                     strncmp(status, "200", 3) == 0
                         ? "text/plain; version=0.0.4; charset=utf-8"
                         : "text/plain; charset=utf-8",
                     extra, strlen(body));
    queue_out(s, head, (size_t)n);
    queue_out(s, body, strlen(body));
}

/* One header line of a GET (len 0: the end of the headers). */
static void http_line(tp__ctl_session *s, const char *line, size_t len)
{
    static const char auth[] = "authorization:";
    if (len > 0) {
        if (strncasecmp(line, auth, sizeof auth - 1) == 0 && s->ctl->token) {
            const char *v = line + sizeof auth - 1;
            while (*v == ' ' || *v == '\t')
                v++;
            s->http_authed = strncasecmp(v, "Bearer ", 7) == 0 &&
                             tp__ctl_token_equal(s->ctl->token, v + 7);
        }
        return;
    }
    char name[64];
    who(s, name, sizeof name);
    if (!s->http_found) {
        tp__ctl_log("%s: HTTP GET of an unknown path", name);
        http_respond(s, "404 Not Found", "", "Only /metrics is served.\n");
    } else if (!s->http_authed) {
        /* Like a wrong token in a handshake: answered after the delay. */
        tp__ctl_log("%s refused: HTTP GET without the token", name);
        s->st = S_REFUSED;
        s->close_by = tp__ctl_now() + s->ctl->refuse_delay;
        http_respond(s, "401 Unauthorized",
                     "WWW-Authenticate: Bearer realm=\"taskpool\"\r\n",
                     "This server requires Authorization: Bearer TOKEN.\n");
        return;
    } else {
        char *text = tp__ctl_metrics_text(s->ctl->pool, s->ctl->reg.gauges,
                                          s->ctl->reg.ngauges);
        tp__ctl_log("%s: HTTP GET /metrics -> %s", name, text ? "200" : "500");
        if (text)
            http_respond(s, "200 OK", "", text);
        else
            http_respond(s, "500 Internal Server Error", "", "out of memory\n");
        free(text);
    }
    close_after_output(s, s->ctl->handshake_timeout);
}

/* Handles one line without its newline (s->in[0..len)). */
static void line(tp__ctl_session *s, char *p, size_t len)
{
    /* Strip surrounding whitespace, as the reference does. */
    while (len &&
           (p[len - 1] == '\r' || p[len - 1] == ' ' || p[len - 1] == '\t'))
        len--;
    while (len && (*p == ' ' || *p == '\t')) {
        p++;
        len--;
    }
    p[len] = '\0';
    if (s->st == S_HTTP) {
        http_line(s, p, len);
        return;
    }
    if (s->st == S_HANDSHAKE) {
        if (!http_start(s, p, len))
            handshake(s, p, len);
        return;
    }
    if (len == 0)
        return; /* blank lines get no response */
    if (!tp__ctl_utf8_valid(p, len)) {
        send_error(s, TP__CTL_EPROTO,
                   "the request is not valid UTF-8 text (or holds a NUL "
                   "byte)");
        return;
    }
    request(s, p, len);
}

/* Answers the complete lines in the input buffer while the session is
 * ready for them: one batch per call, so that a client pipelining cheap
 * requests and reading as fast cannot hold the control thread (answering
 * a whole read's 21,845 "-h" lines took half a second). */
static void process_input(tp__ctl_session *s)
{
    size_t start = 0;
    /* The responses to the lines of a batch go out in one send, not one
     * each. A batch ends at BATCH_LINES lines or once what is queued
     * reaches out_high; complete lines left over set `backlog`, which asks
     * poll for POLLOUT, so the next turn continues (or, while out_high
     * bytes wait, once the client reads). */
    s->batching = true;
    for (size_t n = 0; n < BATCH_LINES && reading(s) &&
                       s->out_len - s->out_off < s->ctl->out_high;
         n++) {
        char *nl = memchr(s->in + start, '\n', s->in_len - start);
        if (!nl)
            break;
        size_t len = (size_t)(nl - (s->in + start));
        if (s->discarding)
            s->discarding = false;
        else
            line(s, s->in + start, len);
        start += len + 1;
    }
    s->batching = false;
    flush_out(s);
    if (start > 0) {
        memmove(s->in, s->in + start, s->in_len - start);
        s->in_len -= start;
    }
    s->backlog = memchr(s->in, '\n', s->in_len) != NULL;
    if (s->eof && reading(s) && !s->backlog) {
        /* Every line answered: write what is left, then close. */
        s->st = S_CLOSING;
        flush_out(s);
        return;
    }
    if (s->in_len == s->in_cap && reading(s) && !s->backlog) {
        /* A full buffer without a newline: the line is too long. */
        if (!s->discarding) {
            char msg[96];
            snprintf(msg, sizeof msg, "the line is longer than %zu bytes",
                     s->ctl->max_line);
            bool was_handshake = s->st != S_READY;
            send_error(s, TP__CTL_ETOOLONG, msg);
            if (was_handshake)
                close_after_output(s, s->ctl->handshake_timeout);
        }
        s->discarding = true;
        s->in_len = 0;
    }
}

static void read_input(tp__ctl_session *s)
{
    ssize_t n;
    do
        n = recv(s->fd, s->in + s->in_len, s->in_cap - s->in_len, MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return;
    if (n < 0) {
        s->st = S_DEAD;
        return;
    }
    if (n == 0) {
        /* Once at the end, POLLIN is no longer asked for: being here again
         * means a hang-up or an error, so nobody reads the responses. */
        if (s->eof) {
            s->st = S_DEAD;
            return;
        }
        s->eof = true;
        process_input(s);
        return;
    }
    s->last_active = tp__ctl_now();
    size_t old = s->in_len;
    s->in_len += (size_t)n;
    if (s->discarding) {
        /* Drop everything up to the end of the over-long line. */
        char *nl = memchr(s->in + old, '\n', s->in_len - old);
        if (!nl) {
            s->in_len = 0;
            return;
        }
        size_t skip = (size_t)(nl - s->in) + 1;
        memmove(s->in, s->in + skip, s->in_len - skip);
        s->in_len -= skip;
        s->discarding = false;
    }
    process_input(s);
}

/* ------------------------------------------------------------------------ */
/* Session API for server.c                                                 */
/* ------------------------------------------------------------------------ */

tp__ctl_session *tp__ctl_session_new(tp_control *ctl, int fd, uint64_t id,
                                     double now)
{
    tp__ctl_session *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->in_cap = ctl->max_line + 1;
    s->in = malloc(s->in_cap);
    if (!s->in) {
        free(s);
        return NULL;
    }
    s->ctl = ctl;
    s->fd = fd;
    s->id = id;
    s->st = S_HANDSHAKE;
    s->width = DEFAULT_WIDTH;
    s->born = s->last_active = now;
    s->turn = ctl->turn;
    atomic_init(&s->abandoned, 0);
    return s;
}

void tp__ctl_session_free(tp__ctl_session *s)
{
    if (!s)
        return;
    char name[64];
    tp__ctl_log("%s disconnected", who(s, name, sizeof name));
    if (s->fd >= 0)
        close(s->fd);
    free(s->in);
    free(s->out);
    free(s);
}

uint64_t tp__ctl_session_id(const tp__ctl_session *s)
{
    return s->id;
}

int tp__ctl_session_fd(const tp__ctl_session *s)
{
    return s->fd;
}

short tp__ctl_session_events(const tp__ctl_session *s)
{
    short ev = 0;
    /* A refused connection's error waits out the delay (its deadline
     * wakes the loop): asking POLLOUT for it would spin the loop. */
    bool pending = s->out_off < s->out_len && s->st != S_REFUSED;
    /* Lines left for the next batch: a writable socket resumes them. */
    if (pending || (s->backlog && reading(s)))
        ev |= POLLOUT;
    if (reading(s) && !s->eof && s->out_len - s->out_off < s->ctl->out_high &&
        s->in_len < s->in_cap)
        ev |= POLLIN;
    /* While busy, only the end of the client's input matters: a TCP FIN
     * (the client closed, or shut down its writing side) or a hang-up
     * (which poll reports anyway). */
    if (s->st == S_BUSY && !s->fin_seen)
        ev |= POLLRDHUP;
    return ev;
}

void tp__ctl_session_io(tp__ctl_session *s, short revents)
{
    if (revents & POLLOUT) {
        flush_out(s);
        process_input(s);
    }
    if (s->st == S_DEAD)
        return;
    if (revents & (POLLHUP | POLLERR) &&
        (s->st == S_BUSY || s->st == S_CLOSING || s->st == S_REFUSED)) {
        s->st = S_DEAD; /* not reading: only a hang-up matters */
        return;
    }
    if (s->st == S_BUSY && (revents & POLLRDHUP)) {
        /* The input ended while a command runs: over TCP a client that
         * closed is indistinguishable from one that only shut down its
         * writing side, so the command is abandoned (until-closed gives
         * up at once) but its reply, and those of the complete lines
         * still unread, are written for a client that still reads. */
        s->fin_seen = true;
        atomic_store(&s->abandoned, 1);
        return;
    }
    if ((revents & (POLLIN | POLLHUP | POLLERR)) && reading(s))
        read_input(s);
}

static bool holds_place(const tp__ctl_session *s)
{
    return !tp__ctl_session_dead(s) || tp__ctl_session_has_job(s);
}

void tp__ctl_count_places(const tp_control *ctl, size_t *ready, size_t *hs,
                          size_t *refused)
{
    *ready = *hs = *refused = 0;
    for (size_t i = 0; i < ctl->nsessions; i++) {
        const tp__ctl_session *s = ctl->sessions[i];
        if (!holds_place(s))
            continue;
        if (s->st == S_REFUSED)
            ++*refused;
        else if (tp__ctl_session_handshaking(s))
            ++*hs;
        else
            ++*ready;
    }
}

void tp__ctl_session_job_done(tp__ctl_session *s, tp__ctl_reply *r)
{
    s->job = false;
    if (s->st != S_BUSY)
        return;
    s->st = S_READY;
    s->last_active = tp__ctl_now();
    log_outcome(s, s->job_line, r);
    send_reply(s, r);
    process_input(s);
}

bool tp__ctl_session_dead(const tp__ctl_session *s)
{
    return s->st == S_DEAD;
}

bool tp__ctl_session_has_job(const tp__ctl_session *s)
{
    return s->job;
}

void tp__ctl_session_orphan(tp__ctl_session *s)
{
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
    s->st = S_DEAD;
    atomic_store(&s->abandoned, 1);
}

double tp__ctl_session_deadline(const tp__ctl_session *s)
{
    double idle = s->ctl->idle_timeout;
    double idle_dl = idle > 0 ? s->last_active + idle : 0;
    switch (s->st) {
    case S_HANDSHAKE:
    case S_HTTP: {
        double dl = s->born + s->ctl->handshake_timeout;
        return idle_dl > 0 && idle_dl < dl ? idle_dl : dl;
    }
    case S_REFUSED:
        return s->close_by;
    case S_READY:
        return idle_dl;
    case S_CLOSING:
        return s->close_by > 0 ? s->close_by : idle_dl;
    default:
        return 0;
    }
}

void tp__ctl_session_expire(tp__ctl_session *s)
{
    double idle = s->ctl->idle_timeout;
    bool idle_first =
        idle > 0 && s->last_active + idle < s->born + s->ctl->handshake_timeout;
    char name[64];
    if ((s->st == S_HANDSHAKE || s->st == S_HTTP) && !idle_first) {
        char msg[96];
        snprintf(msg, sizeof msg, "no handshake within %g seconds",
                 s->ctl->handshake_timeout);
        tp__ctl_log("%s closed: %s", who(s, name, sizeof name), msg);
        close_with_error(s, TP__CTL_EPROTO, msg);
        if (s->st == S_CLOSING && s->out_off < s->out_len)
            return; /* the client gets until close_by to read it */
    } else if (s->st == S_REFUSED) {
        s->st = S_HANDSHAKE; /* lets flush_out write */
        close_after_output(s, s->ctl->handshake_timeout);
        return;
    } else if (reading(s)) {
        tp__ctl_log("%s closed: silent for %g seconds",
                    who(s, name, sizeof name), idle);
    }
    s->st = S_DEAD;
}

bool tp__ctl_session_handshaking(const tp__ctl_session *s)
{
    return s->st == S_HANDSHAKE || s->st == S_HTTP ||
           (s->st == S_CLOSING && s->close_by > 0);
}

bool tp__ctl_session_evictable(const tp__ctl_session *s)
{
    return (s->st == S_HANDSHAKE || s->st == S_HTTP ||
            (s->st == S_CLOSING && s->close_by > 0)) &&
           s->turn != s->ctl->turn;
}

uint64_t tp__ctl_session_turn(const tp__ctl_session *s)
{
    return s->turn;
}
