/* SPDX-License-Identifier: MIT */
/* The taskpool-control CLI: -c scripting with exit statuses, --json,
 * --token, connection failures, and an interactive session driven through
 * a pseudo-terminal like a person would (banner, commands, history recall,
 * Ctrl+C, completion, Ctrl+D). The server runs in the test process. */
#include "test_control_util.h"

#include <fcntl.h>
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

/* Runs the CLI with argv, collects stdout and stderr; returns the exit
 * status. */
static int run_cli(const char *const *args, char *out, size_t out_size,
                   char *err, size_t err_size)
{
    int po[2], pe[2];
    ck_assert_int_eq(pipe(po), 0);
    ck_assert_int_eq(pipe(pe), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dup2(po[1], 1);
        dup2(pe[1], 2);
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
    close(po[1]);
    close(pe[1]);
    size_t lo = 0, le = 0;
    struct pollfd pf[2] = {{po[0], POLLIN, 0}, {pe[0], POLLIN, 0}};
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
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status));
    return WEXITSTATUS(status);
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
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    return run_suite(suite());
}
