/* SPDX-License-Identifier: MIT */
/* The taskpool-control CLI: -c scripting with exit statuses, --json,
 * --token, connection failures, and an interactive session driven through
 * a pseudo-terminal like a person would (banner, commands, history recall,
 * Ctrl+C, completion, Ctrl+D). The server runs in the test process. */
#include "test_control_util.h"

#include <fcntl.h>
#include <pthread.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>

#include "taskpool_control.h"

static char cli_path[4096];
static char sock[108];
static tp_pool *pool;
static tp_control *ctl;

static int noop(tp_task *task, void *arg)
{
    (void)task, (void)arg;
    return 0;
}

static void start_server(const char *token)
{
    const char *dir = getenv("TP_BUILD_DIR");
    snprintf(cli_path, sizeof cli_path, "%s/taskpool-control", dir ? dir : ".");
    ck_assert_msg(access(cli_path, X_OK) == 0,
                  "%s not built (set TP_BUILD_DIR)", cli_path);
    snprintf(sock, sizeof sock, "/tmp/tpctl-cli-%d.sock", (int)getpid());
    pool = tp_pool_new(&(tp_pool_opts){.name = "demo", .pool_size = 3});
    tp_control_opts o = {.token = token};
    ctl = tp_control_new_unix(pool, sock, &o);
    ck_assert_int_eq(tp_control_register(ctl, "noop", noop), TP_OK);
    ck_assert_int_eq(tp_control_start(ctl), TP_OK);
}

static void stop_server(void)
{
    tp_control_free(ctl);
    tp_pool_free(pool);
}

/* Starts the CLI with args; its stdin reads `input` (NULL: nothing) from a
 * pipe. *out and *err get the read ends of its stdout and stderr. */
static pid_t spawn_cli(const char *const *args, const char *input, int *out,
                       int *err)
{
    int po[2], pe[2], pi[2];
    ck_assert_int_eq(pipe(po), 0);
    ck_assert_int_eq(pipe(pe), 0);
    ck_assert_int_eq(pipe(pi), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dup2(pi[0], 0);
        dup2(po[1], 1);
        dup2(pe[1], 2);
        close(pi[1]);
        close(po[0]);
        close(pe[0]);
        const char *argv[32] = {cli_path};
        size_t n = 1;
        for (; args[n - 1] && n < 31; n++)
            argv[n] = args[n - 1];
        argv[n] = NULL;
        execv(cli_path, (char *const *)argv);
        _exit(127);
    }
    close(pi[0]);
    close(po[1]);
    close(pe[1]);
    /* Small inputs: the pipe holds them whole. */
    size_t len = input ? strlen(input) : 0;
    ck_assert_uint_lt(len, 4096);
    ck_assert_int_eq(write(pi[1], input ? input : "", len), (ssize_t)len);
    close(pi[1]);
    *out = po[0];
    *err = pe[0];
    return pid;
}

/* The exit status of pid (which must exit, not be killed). */
static int exit_status(pid_t pid)
{
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status), "the CLI was killed by signal %d",
                  WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    return WEXITSTATUS(status);
}

/* Runs the CLI with args and input on its stdin, collects stdout and
 * stderr; returns the exit status. */
static int run_cli_in(const char *const *args, const char *input, char *out,
                      size_t out_size, char *err, size_t err_size)
{
    int fo, fe;
    pid_t pid = spawn_cli(args, input, &fo, &fe);
    size_t lo = 0, le = 0;
    struct pollfd pf[2] = {{fo, POLLIN, 0}, {fe, POLLIN, 0}};
    int open_fds = 2;
    while (open_fds > 0) {
        ck_assert_int_gt(poll(pf, 2, (int)(10000 * time_multiplier())), 0);
        for (int i = 0; i < 2; i++) {
            if (!pf[i].revents)
                continue;
            char *buf = i ? err : out;
            size_t *len = i ? &le : &lo;
            size_t size = i ? err_size : out_size;
            ssize_t r = read(pf[i].fd, buf + *len, size - 1 - *len);
            if (r <= 0) {
                close(pf[i].fd);
                pf[i].fd = -1;
                open_fds--;
            } else {
                *len += (size_t)r;
            }
        }
    }
    out[lo] = '\0';
    err[le] = '\0';
    return exit_status(pid);
}

static int run_cli(const char *const *args, char *out, size_t out_size,
                   char *err, size_t err_size)
{
    return run_cli_in(args, NULL, out, out_size, err, err_size);
}

START_TEST(script_mode_prints_text_and_exits_zero)
{
    start_server(NULL);
    char out[8192], err[4096];
    const char *args[] = {"-c",   "pool-size", "-c", "pool-size 5",
                          "-c",   "pool-size", "-c", "apply noop -n 2",
                          "-c",   "is-locked", "-c", "get-group-ids",
                          "unix", sock,        NULL};
    ck_assert_int_eq(run_cli(args, out, sizeof out, err, sizeof err), 0);
    ck_assert_str_eq(out, "3\nok\n5\napply-noop-group-0\nFalse\n{}\n");
    ck_assert_str_eq(err, "");
    stop_server();
}
END_TEST

START_TEST(script_mode_exits_one_when_a_command_fails)
{
    start_server(NULL);
    char out[8192], err[4096];
    const char *args[] = {"-c", "cancel 99", "-c", "lock", "unix", sock, NULL};
    ck_assert_int_eq(run_cli(args, out, sizeof out, err, sizeof err), 1);
    ck_assert_str_eq(out, "ok\n");
    ck_assert_str_eq(err, "No task with ID 99 found in TaskPool-demo\n");
    const char *usage[] = {"-c", "apply", "unix", sock, NULL};
    ck_assert_int_eq(run_cli(usage, out, sizeof out, err, sizeof err), 1);
    ck_assert_ptr_nonnull(strstr(err, "apply: error: the following "
                                      "arguments are required: func\n"));
    stop_server();
}
END_TEST

START_TEST(json_flag_prints_raw_responses)
{
    start_server(NULL);
    char out[8192], err[4096];
    const char *args[] = {"--json",   "-c",   "pool-size", "-c",
                          "cancel 7", "unix", sock,        NULL};
    ck_assert_int_eq(run_cli(args, out, sizeof out, err, sizeof err), 1);
    ck_assert_str_eq(out, "{\"ok\":true,\"result\":3}\n{\"ok\":false,"
                          "\"error\":\"TP_ENOTASK\",\"message\":\"No task "
                          "with ID 7 found in TaskPool-demo\"}\n");
    stop_server();
}
END_TEST

START_TEST(script_mode_keeps_requests_and_responses_in_step)
{
    /* The server answers one response per non-blank line and nothing to a
     * blank one: "-c ''" used to wait forever for a response, and a
     * command of two lines shifted every later response onto the wrong
     * command. */
    start_server(NULL);
    char out[8192], err[4096];
    const char *args[] = {
        "-c", "",          "-c",   "  ", "-c", "lock\nis-locked\n",
        "-c", "pool-size", "unix", sock, NULL};
    ck_assert_int_eq(run_cli(args, out, sizeof out, err, sizeof err), 0);
    ck_assert_str_eq(out, "ok\nTrue\n3\n");
    ck_assert_str_eq(err, "");
    stop_server();
}
END_TEST

static bool all_ended(void *arg)
{
    return tp_num_ended(pool) == *(size_t *)arg;
}

START_TEST(script_mode_reads_responses_over_64k)
{
    /* 15000 ended tasks make a get-group-ids response of about 80 KB on
     * the wire; the CLI used to give up on any response longer than its
     * 64 KiB buffer ("lost the connection to the server"). */
    start_server(NULL);
    size_t n = 15000;
    tp_opts o = {.group_name = "big"};
    ck_assert_int_eq(tp_apply(pool, noop, NULL, n, &o, NULL), TP_OK);
    ck_assert(wait_until(all_ended, &n));
    size_t size = 1 << 20;
    char *out = malloc(size), err[4096];
    ck_assert_ptr_nonnull(out);
    const char *args[] = {"-c", "get-group-ids big", "unix", sock, NULL};
    ck_assert_int_eq(run_cli(args, out, size, err, sizeof err), 0);
    ck_assert_str_eq(err, "");
    size_t len = strlen(out);
    ck_assert_uint_gt(len, 65536);
    ck_assert(strncmp(out, "{0, 1, 2, ", 10) == 0);
    ck_assert_str_eq(out + len - 14, "14998, 14999}\n");
    free(out);
    stop_server();
}
END_TEST

START_TEST(script_mode_prints_upper_case_commands_like_the_server)
{
    /* Command names are case-insensitive (the reference's CLI lower-cases
     * every line); the renderings that depend on the command (inf for the
     * pool-size getter, a set for get-group-ids) must not. */
    start_server(NULL);
    char out[8192], err[4096];
    const char *args[] = {"-c", "pool-size inf", "-c",   "POOL-SIZE",
                          "-c", "Get-Group-Ids", "unix", sock,
                          NULL};
    ck_assert_int_eq(run_cli(args, out, sizeof out, err, sizeof err), 0);
    ck_assert_str_eq(out, "ok\ninf\n{}\n");
    stop_server();
}
END_TEST

START_TEST(connection_failure_exits_two)
{
    start_server(NULL);
    char out[8192], err[4096];
    const char *args[] = {"-c", "lock", "unix", "/nonexistent/tp.sock", NULL};
    ck_assert_int_eq(run_cli(args, out, sizeof out, err, sizeof err), 2);
    ck_assert_str_eq(err, "taskpool-control: cannot connect to "
                          "/nonexistent/tp.sock: No such file or directory\n");
    const char *bad[] = {"tcp", "127.0.0.1", NULL};
    ck_assert_int_eq(run_cli(bad, out, sizeof out, err, sizeof err), 2);
    ck_assert_ptr_nonnull(strstr(err, "usage: taskpool-control"));
    stop_server();
}
END_TEST

START_TEST(token_option_is_sent)
{
    start_server("tok");
    char out[8192], err[4096];
    const char *good[] = {"--token", "tok", "-c", "is-full",
                          "unix",    sock,  NULL};
    ck_assert_int_eq(run_cli(good, out, sizeof out, err, sizeof err), 0);
    ck_assert_str_eq(out, "False\n");
    const char *bad[] = {"--token", "tik", "-c", "is-full", "unix", sock, NULL};
    ck_assert_int_eq(run_cli(bad, out, sizeof out, err, sizeof err), 2);
    ck_assert_str_eq(err, "taskpool-control: refused: error: wrong token\n");
    stop_server();
}
END_TEST

START_TEST(getopt_spellings)
{
    /* --token=T, -cCMD, "--" before the positionals, and options after
     * them (getopt_long permutes): all used to be "unknown option". */
    start_server("tok");
    char out[8192], err[4096];
    const char *a[] = {"--token=tok", "-cis-full", "-c", "pool-size",
                       "--",          "unix",      sock, NULL};
    ck_assert_int_eq(run_cli(a, out, sizeof out, err, sizeof err), 0);
    ck_assert_str_eq(out, "False\n3\n");
    ck_assert_str_eq(err, "");
    const char *b[] = {"unix", sock, "--token", "tok", "-clock", NULL};
    ck_assert_int_eq(run_cli(b, out, sizeof out, err, sizeof err), 0);
    ck_assert_str_eq(out, "ok\n");
    ck_assert(tp_is_locked(pool));
    stop_server();
}
END_TEST

START_TEST(version_help_and_usage_errors)
{
    start_server(NULL);
    char out[8192], err[4096];
    const char *v[] = {"--version", NULL};
    ck_assert_int_eq(run_cli(v, out, sizeof out, err, sizeof err), 0);
    unsigned maj, min, pat;
    char nl;
    ck_assert_msg(sscanf(out, "taskpool-control %u.%u.%u%c", &maj, &min, &pat,
                         &nl) == 4 &&
                      nl == '\n',
                  "version: %s", out);
    const char *h[] = {"--help", NULL};
    ck_assert_int_eq(run_cli(h, out, sizeof out, err, sizeof err), 0);
    ck_assert(strncmp(out, "usage: taskpool-control", 23) == 0);
    ck_assert_ptr_nonnull(strstr(out, "--stat[=SECONDS]"));
    const char *bad[][6] = {
        {"--bogus", "unix", sock, NULL},
        {"--stat=abc", "unix", sock, NULL},
        {"--stat=0", "unix", sock, NULL},
        {"--stat", "-c", "lock", "unix", sock, NULL},
        {"-c", NULL},
        {"unix", sock, "extra", NULL},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_int_eq(run_cli(bad[i], out, sizeof out, err, sizeof err), 2);
        ck_assert_str_eq(out, "");
        ck_assert_ptr_nonnull(strstr(err, "usage: taskpool-control"));
    }
    ck_assert(!tp_is_locked(pool));
    stop_server();
}
END_TEST

START_TEST(batch_mode_separates_results_and_errors)
{
    /* A non-terminal stdin is a batch: no banner, results on stdout,
     * errors on stderr, exit status 1 if any command failed. It used to
     * print the banner and every error on stdout and exit 0. */
    start_server(NULL);
    char out[8192], err[4096];
    const char *a[] = {"unix", sock, NULL};
    const char *in = "num-running\ncancel 99\n\n  lock  \nclear\nis-locked\n";
    ck_assert_int_eq(run_cli_in(a, in, out, sizeof out, err, sizeof err), 1);
    ck_assert_str_eq(out, "0\nok\nTrue\n");
    ck_assert_str_eq(err, "No task with ID 99 found in TaskPool-demo\n"
                          "unknown command 'clear' (try 'help')\n");
    /* All good: 0. "exit" ends the batch (unlock is not run). */
    ck_assert_int_eq(run_cli_in(a, "is-locked\nexit\nunlock\n", out, sizeof out,
                                err, sizeof err),
                     0);
    ck_assert_str_eq(out, "True\n");
    ck_assert_str_eq(err, "");
    ck_assert(tp_is_locked(pool));
    /* An empty batch is fine too. */
    ck_assert_int_eq(run_cli_in(a, "", out, sizeof out, err, sizeof err), 0);
    ck_assert_str_eq(out, "");
    /* --json: every response as it came, failures included. */
    const char *j[] = {"--json", "unix", sock, NULL};
    ck_assert_int_eq(
        run_cli_in(j, "pool-size\nclear\n", out, sizeof out, err, sizeof err),
        1);
    ck_assert_str_eq(out, "{\"ok\":true,\"result\":3}\n"
                          "{\"ok\":false,\"error\":\"TP_EUSAGE\",\"message\":"
                          "\"unknown command 'clear' (try 'help')\"}\n");
    stop_server();
}
END_TEST

START_TEST(unknown_command_is_ours_and_not_sent)
{
    /* The server's text protocol answers argparse's sentence; the CLI
     * checks the name against the command table first. A command of the
     * other kind of pool is unknown too. */
    start_server(NULL);
    char out[8192], err[4096];
    const char *a[] = {"-c",         "clear", "-c", "start 2", "-c",
                       "CANCEL-ALL", "unix",  sock, NULL};
    ck_assert_int_eq(run_cli(a, out, sizeof out, err, sizeof err), 1);
    ck_assert_str_eq(out, "ok\n");
    ck_assert_str_eq(err, "unknown command 'clear' (try 'help')\n"
                          "unknown command 'start' (try 'help')\n");
    stop_server();
}
END_TEST

/* --stat against a pool held in a known state: 5 tasks blocked at a gate
 * with room for 3. */
static gate hold;

static bool three_running(void *arg)
{
    (void)arg;
    tp_stats st;
    return tp_get_stats(pool, &st) == TP_OK && st.running == 3 &&
           st.pending == 2;
}

/* Reads from fd until it holds `lines` newlines (or fails the test). */
static size_t read_lines(int fd, char *buf, size_t size, size_t lines)
{
    size_t len = 0, seen = 0;
    while (seen < lines) {
        struct pollfd pf = {fd, POLLIN, 0};
        ck_assert_int_gt(poll(&pf, 1, (int)(10000 * time_multiplier())), 0);
        ssize_t r = read(fd, buf + len, size - 1 - len);
        ck_assert_int_gt(r, 0);
        for (ssize_t i = 0; i < r; i++)
            seen += buf[len + (size_t)i] == '\n';
        len += (size_t)r;
    }
    buf[len] = '\0';
    return len;
}

START_TEST(stat_prints_lines_and_headers)
{
    start_server(NULL);
    gate_init(&hold);
    ck_assert_int_eq(tp_apply(pool, pass_gate_arg, &hold, 5, NULL, NULL),
                     TP_OK);
    ck_assert(wait_until(three_running, NULL));
    const char *a[] = {"--stat=0.01", "unix", sock, NULL};
    int fo, fe;
    pid_t pid = spawn_cli(a, NULL, &fo, &fe);
    static char out[65536];
    read_lines(fo, out, sizeof out, 22);
    /* Ctrl+C ends it cleanly. */
    ck_assert_int_eq(kill(pid, SIGINT), 0);
    ck_assert_int_eq(exit_status(pid), 0);
    const char *header = "   running    pending  cancelled      ended    "
                         "threads  started/s    ended/s   failed/s";
    char *save, *line = strtok_r(out, "\n", &save);
    for (int i = 0; i < 22; i++, line = strtok_r(NULL, "\n", &save)) {
        ck_assert_ptr_nonnull(line);
        if (i % 21 == 0) {
            ck_assert_str_eq(line, header);
            continue;
        }
        double v[5];
        char r[3][16];
        ck_assert_int_eq(sscanf(line, "%lf %lf %lf %lf %lf %15s %15s %15s",
                                &v[0], &v[1], &v[2], &v[3], &v[4], r[0], r[1],
                                r[2]),
                         8);
        ck_assert(v[0] == 3 && v[1] == 2 && v[2] == 0 && v[3] == 0);
        ck_assert(v[4] >= 3); /* threads: at least the running tasks' */
        for (int k = 0; k < 3; k++)
            ck_assert_str_eq(r[k], i == 1 ? "-" : "0.0");
    }
    char err[256];
    ssize_t n = read(fe, err, sizeof err - 1);
    ck_assert_int_eq(n, 0); /* nothing on stderr */
    close(fo);
    close(fe);
    gate_open(&hold);
    stop_server();
    gate_destroy(&hold);
}
END_TEST

START_TEST(stat_ends_when_the_server_goes)
{
    start_server(NULL);
    const char *a[] = {"--stat", "unix", sock, NULL};
    int fo, fe;
    pid_t pid = spawn_cli(a, NULL, &fo, &fe);
    char out[4096];
    read_lines(fo, out, sizeof out, 2); /* the header and a first line */
    ck_assert_int_eq(tp_control_stop(ctl), TP_OK);
    ck_assert_int_eq(exit_status(pid), 1);
    char err[512];
    read_lines(fe, err, sizeof err, 1);
    ck_assert_str_eq(err, "taskpool-control: lost the connection to the "
                          "server\n");
    close(fo);
    close(fe);
    stop_server();
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Interactive, through a pseudo-terminal                                   */
/* ------------------------------------------------------------------------ */

typedef struct term {
    int fd;
    pid_t pid;
    char buf[65536];
    size_t len;
    char log[65536]; /* everything read, for failure messages */
    size_t log_len;
} term;

/* Reads from the terminal until `want` appears after the previous match;
 * consumes through it. */
static bool expect(term *t, const char *want)
{
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    double limit = 10 * time_multiplier();
    for (;;) {
        t->buf[t->len] = '\0';
        char *hit = strstr(t->buf, want);
        if (hit) {
            size_t n = (size_t)(hit - t->buf) + strlen(want);
            memmove(t->buf, t->buf + n, t->len - n);
            t->len -= n;
            return true;
        }
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        double left = limit - (double)(now.tv_sec - t0.tv_sec) -
                      (double)(now.tv_nsec - t0.tv_nsec) / 1e9;
        if (left <= 0 || t->len + 1 >= sizeof t->buf)
            return false;
        struct pollfd pf = {t->fd, POLLIN, 0};
        if (poll(&pf, 1, (int)(left * 1000) + 1) <= 0)
            return false;
        ssize_t r = read(t->fd, t->buf + t->len, sizeof t->buf - 1 - t->len);
        if (r <= 0)
            return false;
        if (t->log_len + (size_t)r < sizeof t->log) {
            memcpy(t->log + t->log_len, t->buf + t->len, (size_t)r);
            t->log_len += (size_t)r;
            t->log[t->log_len] = '\0';
        }
        t->len += (size_t)r;
    }
}

/* libedit edits in raw mode and reads whole lines in cooked mode between
 * two prompts; keys typed before it switched would be cooked by the tty. */
static bool editing(void *arg)
{
    struct termios tio;
    return tcgetattr(((term *)arg)->fd, &tio) == 0 && !(tio.c_lflag & ICANON);
}

static void type(term *t, const char *keys)
{
    ck_assert(wait_until(editing, t));
    ck_assert_int_eq(write(t->fd, keys, strlen(keys)), (ssize_t)strlen(keys));
}

#define EXPECT(t, s)                                                           \
    ck_assert_msg(expect((t), (s)), "no \"%s\" in: %s", (s), (t)->log)

START_TEST(interactive_session_like_a_person)
{
    start_server(NULL);
    term t = {0};
    struct winsize ws = {.ws_row = 24, .ws_col = 100};
    t.pid = forkpty(&t.fd, NULL, NULL, &ws);
    ck_assert_int_ge(t.pid, 0);
    if (t.pid == 0) {
        setenv("TERM", "dumb", 1);
        setenv("HOME", "/nonexistent", 1); /* no ~/.editrc */
        execl(cli_path, cli_path, "unix", sock, (char *)NULL);
        _exit(127);
    }
    EXPECT(&t, "Connected to TaskPool-demo");
    EXPECT(&t, "> ");
    type(&t, "num-running\r");
    EXPECT(&t, "\n0\r\n");
    EXPECT(&t, "> ");
    type(&t, "lock\r");
    EXPECT(&t, "ok\r\n");
    EXPECT(&t, "> ");
    /* History: up twice recalls num-running. */
    type(&t, "\x1b[A\x1b[A\r");
    EXPECT(&t, "\n0\r\n");
    EXPECT(&t, "> ");
    /* Ctrl+C drops the half-typed line. */
    type(&t, "bogus stuff\x03");
    EXPECT(&t, "> ");
    type(&t, "is-locked\r");
    EXPECT(&t, "True\r\n");
    ck_assert_ptr_null(strstr(t.buf, "invalid choice"));
    EXPECT(&t, "> ");
    /* Tab completes a command name. */
    type(&t, "is-f\t\r");
    EXPECT(&t, "False\r\n");
    EXPECT(&t, "> ");
    /* Ctrl+D leaves. */
    type(&t, "\x04");
    EXPECT(&t, "Disconnected from TaskPool-demo.");
    int status;
    ck_assert_int_eq(waitpid(t.pid, &status, 0), t.pid);
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 0);
    close(t.fd);
    ck_assert(tp_is_locked(pool));
    stop_server();
}
END_TEST

START_TEST(interactive_exit_command_leaves)
{
    start_server(NULL);
    term t = {0};
    t.pid = forkpty(&t.fd, NULL, NULL, NULL);
    ck_assert_int_ge(t.pid, 0);
    if (t.pid == 0) {
        setenv("HOME", "/nonexistent", 1);
        execl(cli_path, cli_path, "--json", "unix", sock, (char *)NULL);
        _exit(127);
    }
    EXPECT(&t, "> ");
    type(&t, "is-full\r");
    EXPECT(&t, "{\"ok\":true,\"result\":false}");
    EXPECT(&t, "> ");
    type(&t, "exit\r");
    EXPECT(&t, "Disconnected");
    int status;
    ck_assert_int_eq(waitpid(t.pid, &status, 0), t.pid);
    ck_assert_int_eq(WEXITSTATUS(status), 0);
    close(t.fd);
    stop_server();
}
END_TEST

/* Starts the CLI on a pseudo-terminal with HOME set to home. */
static void spawn_term(term *t, const char *home, const char *const *args)
{
    struct winsize ws = {.ws_row = 24, .ws_col = 100};
    t->pid = forkpty(&t->fd, NULL, NULL, &ws);
    ck_assert_int_ge(t->pid, 0);
    if (t->pid == 0) {
        setenv("TERM", "dumb", 1);
        setenv("HOME", home, 1);
        const char *argv[16] = {cli_path};
        size_t n = 1;
        for (; args[n - 1] && n < 15; n++)
            argv[n] = args[n - 1];
        argv[n] = NULL;
        execv(cli_path, (char *const *)argv);
        _exit(127);
    }
}

static void end_term(term *t)
{
    type(t, "\x04");
    EXPECT(t, "Disconnected from ");
    ck_assert_int_eq(exit_status(t->pid), 0);
    close(t->fd);
}

START_TEST(interactive_history_is_kept_between_sessions)
{
    start_server(NULL);
    char home[] = "/tmp/tpctl-home-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(home));
    const char *a[] = {"unix", sock, NULL};
    term t = {0};
    spawn_term(&t, home, a);
    EXPECT(&t, "> ");
    type(&t, "pool-size 7\r");
    EXPECT(&t, "ok\r\n");
    EXPECT(&t, "> ");
    end_term(&t);
    char path[256];
    snprintf(path, sizeof path, "%s/.taskpool_control_history", home);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    char text[4096];
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    fclose(f);
    ck_assert_ptr_nonnull(strstr(text, "pool-size"));
    /* The next session recalls it with the up arrow. */
    ck_assert_int_eq(tp_set_pool_size(pool, 2), TP_OK);
    term u = {0};
    spawn_term(&u, home, a);
    EXPECT(&u, "> ");
    type(&u, "\x1b[A\r");
    EXPECT(&u, "ok\r\n");
    EXPECT(&u, "> ");
    end_term(&u);
    ck_assert_uint_eq(tp_pool_size(pool), 7);
    unlink(path);
    rmdir(home);
    stop_server();
}
END_TEST

/* The CLI waits for a response: libedit gave the terminal back. */
static bool waiting(void *arg)
{
    return !editing(arg);
}

START_TEST(interactive_ctrl_c_abandons_a_waiting_command)
{
    /* Ctrl+C during until-closed used to kill the CLI (exit 130). Now it
     * returns to the prompt, the next command answers at once, and the
     * late response (True once the pool closes) is never printed. */
    start_server(NULL);
    const char *a[] = {"unix", sock, NULL};
    term t = {0};
    spawn_term(&t, "/nonexistent", a);
    EXPECT(&t, "> ");
    type(&t, "until-closed\r");
    ck_assert(wait_until(waiting, &t));
    ck_assert_int_eq(write(t.fd, "\x03", 1), 1); /* SIGINT from the tty */
    EXPECT(&t, "> ");
    ck_assert_int_eq(tp_gather_and_close(pool), TP_OK);
    type(&t, "num-running\r");
    EXPECT(&t, "0\r\n");
    EXPECT(&t, "> ");
    type(&t, "is-full\r");
    EXPECT(&t, "False\r\n");
    EXPECT(&t, "> ");
    end_term(&t);
    ck_assert_ptr_null(strstr(t.log, "True"));
    stop_server();
}
END_TEST

START_TEST(interactive_unknown_command_and_option_completion)
{
    start_server(NULL);
    const char *a[] = {"unix", sock, NULL};
    term t = {0};
    spawn_term(&t, "/nonexistent", a);
    EXPECT(&t, "> ");
    type(&t, "clear\r");
    EXPECT(&t, "unknown command 'clear' (try 'help')\r\n");
    EXPECT(&t, "> ");
    /* Tab completes an option of the command being typed. */
    type(&t, "apply noop --gr\tmine\r");
    EXPECT(&t, "mine\r\n");
    EXPECT(&t, "> ");
    ck_assert_ptr_null(strstr(t.log, "invalid choice"));
    end_term(&t);
    const char *groups[] = {"mine"};
    tp_ids ids;
    ck_assert_int_eq(tp_get_group_ids(pool, groups, 1, &ids), TP_OK);
    tp_ids_free(&ids);
    stop_server();
}
END_TEST

/* A fake control server for group completion: answers the handshake
 * with a pool name, "groups" with the shape the server's JSON mode gives,
 * anything else with null; records every request line. */
typedef struct fake {
    int lfd;
    pthread_t thread;
    pthread_mutex_t mu;
    char lines[4096];
    size_t len;
} fake;

static void *fake_serve(void *arg)
{
    fake *f = arg;
    int fd = accept(f->lfd, NULL, NULL);
    if (fd < 0)
        return NULL;
    char buf[4096];
    size_t len = 0;
    bool hello = true;
    for (;;) {
        ssize_t r = read(fd, buf + len, sizeof buf - len);
        if (r <= 0)
            break;
        len += (size_t)r;
        char *nl;
        while ((nl = memchr(buf, '\n', len))) {
            *nl = '\0';
            const char *reply =
                hello ? "{\"ok\":true,\"result\":\"TaskPool-fake\"}\n"
                : strcmp(buf, "groups") == 0
                    ? "{\"ok\":true,\"result\":[{\"name\":\"alpha-1\","
                      "\"running\":1,\"cancelled\":0,\"ended\":0,\"pending\":"
                      "2,\"num_concurrent\":2},{\"name\":\"alpha-2\","
                      "\"running\":0,\"cancelled\":0,\"ended\":1,\"pending\":"
                      "0,\"num_concurrent\":1},{\"name\":\"beta\",\"running\":"
                      "0,\"cancelled\":0,\"ended\":0,\"pending\":0,"
                      "\"num_concurrent\":1}]}\n"
                    : "{\"ok\":true,\"result\":null}\n";
            if (!hello) {
                pthread_mutex_lock(&f->mu);
                size_t n = strlen(buf);
                if (f->len + n + 2 < sizeof f->lines) {
                    memcpy(f->lines + f->len, buf, n);
                    f->len += n;
                    f->lines[f->len++] = '\n';
                    f->lines[f->len] = '\0';
                }
                pthread_mutex_unlock(&f->mu);
            }
            hello = false;
            if (write(fd, reply, strlen(reply)) < 0)
                break;
            size_t used = (size_t)(nl - buf) + 1;
            memmove(buf, nl + 1, len - used);
            len -= used;
        }
    }
    close(fd);
    return NULL;
}

static bool fake_got(void *arg)
{
    fake *f = ((void **)arg)[0];
    const char *want = ((void **)arg)[1];
    pthread_mutex_lock(&f->mu);
    bool got = strstr(f->lines, want) != NULL;
    pthread_mutex_unlock(&f->mu);
    return got;
}

START_TEST(interactive_completes_group_names)
{
    fake f = {.mu = PTHREAD_MUTEX_INITIALIZER};
    const char *dir = getenv("TP_BUILD_DIR");
    snprintf(cli_path, sizeof cli_path, "%s/taskpool-control", dir ? dir : ".");
    snprintf(sock, sizeof sock, "/tmp/tpctl-fake-%d.sock", (int)getpid());
    unlink(sock);
    f.lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    strcpy(sa.sun_path, sock);
    ck_assert_int_eq(bind(f.lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    ck_assert_int_eq(listen(f.lfd, 1), 0);
    ck_assert_int_eq(pthread_create(&f.thread, NULL, fake_serve, &f), 0);
    const char *a[] = {"unix", sock, NULL};
    term t = {0};
    spawn_term(&t, "/nonexistent", a);
    EXPECT(&t, "Connected to TaskPool-fake");
    EXPECT(&t, "> ");
    /* One match: completed with a space. */
    type(&t, "cancel-group b\t\r");
    void *want1[] = {&f, "groups\ncancel-group beta\n"};
    ck_assert(wait_until(fake_got, want1));
    EXPECT(&t, "ok\r\n");
    EXPECT(&t, "> ");
    /* Several: the common prefix, then the rest typed. */
    type(&t, "get-group-ids beta al\t2\r");
    void *want2[] = {&f, "get-group-ids beta alpha-2\n"};
    ck_assert(wait_until(fake_got, want2));
    EXPECT(&t, "ok\r\n");
    EXPECT(&t, "> ");
    end_term(&t);
    pthread_join(f.thread, NULL);
    close(f.lfd);
    unlink(sock);
}
END_TEST

/* The real server: Tab completes a group name from its `groups`, and the
 * CLI prints `groups` the way the server's text mode does. */
START_TEST(interactive_completes_a_real_group_name)
{
    start_server(NULL);
    ck_assert_int_eq(tp_set_pool_size(pool, 0), TP_OK); /* nothing starts */
    tp_opts o = {.group_name = "zeta-real"};
    ck_assert_int_eq(tp_apply(pool, noop, NULL, 2, &o, NULL), TP_OK);
    char out[4096], err[4096];
    const char *args[] = {"-c", "groups", "unix", sock, NULL};
    ck_assert_int_eq(run_cli(args, out, sizeof out, err, sizeof err), 0);
    ck_assert_str_eq(out, "zeta-real running=0 cancelled=0 ended=0 "
                          "pending=2 num_concurrent=inf\n");
    const char *a[] = {"unix", sock, NULL};
    term t = {0};
    spawn_term(&t, "/nonexistent", a);
    EXPECT(&t, "> ");
    type(&t, "cancel-group ze\t\r");
    EXPECT(&t, "ok\r\n");
    EXPECT(&t, "> ");
    end_term(&t);
    const char *groups[] = {"zeta-real"};
    tp_ids ids;
    ck_assert_int_eq(tp_get_group_ids(pool, groups, 1, &ids), TP_ENOGROUP);
    /* No group left: groups prints nothing. */
    ck_assert_int_eq(run_cli(args, out, sizeof out, err, sizeof err), 0);
    ck_assert_str_eq(out, "");
    stop_server();
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("control_cli");
    TCase *tc = tcase_create("cli");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, script_mode_prints_text_and_exits_zero);
    tcase_add_test(tc, script_mode_exits_one_when_a_command_fails);
    tcase_add_test(tc, json_flag_prints_raw_responses);
    tcase_add_test(tc, script_mode_keeps_requests_and_responses_in_step);
    tcase_add_test(tc, script_mode_reads_responses_over_64k);
    tcase_add_test(tc, script_mode_prints_upper_case_commands_like_the_server);
    tcase_add_test(tc, connection_failure_exits_two);
    tcase_add_test(tc, token_option_is_sent);
    tcase_add_test(tc, interactive_session_like_a_person);
    tcase_add_test(tc, interactive_exit_command_leaves);
    tcase_add_test(tc, getopt_spellings);
    tcase_add_test(tc, version_help_and_usage_errors);
    tcase_add_test(tc, batch_mode_separates_results_and_errors);
    tcase_add_test(tc, unknown_command_is_ours_and_not_sent);
    tcase_add_test(tc, stat_prints_lines_and_headers);
    tcase_add_test(tc, stat_ends_when_the_server_goes);
    tcase_add_test(tc, interactive_history_is_kept_between_sessions);
    tcase_add_test(tc, interactive_ctrl_c_abandons_a_waiting_command);
    tcase_add_test(tc, interactive_unknown_command_and_option_completion);
    tcase_add_test(tc, interactive_completes_group_names);
    tcase_add_test(tc, interactive_completes_a_real_group_name);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    return run_suite(suite());
}
