/* SPDX-License-Identifier: MIT */
/* Control server over real sockets: handshake, every command for both pool
 * kinds in text and JSON mode, help texts and errors, limits, security,
 * concurrency and stopping. */
#include "test_control_util.h"

#include <fcntl.h>
#include <poll.h>
#include <stdatomic.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

#include "ctl.h"
#include "server.h"
#include "taskpool_control.h"

/* ------------------------------------------------------------------------ */
/* Fixtures                                                                 */
/* ------------------------------------------------------------------------ */

static gate release;       /* gated tasks wait for it (cancellably) */
static gate stubborn_gate; /* stubborn tasks wait for it (not cancellably) */
static counter started, ended, cb_end, cb_cancel;
static pthread_mutex_t seen_mu = PTHREAD_MUTEX_INITIALIZER;
static char seen[16][256]; /* JSON each "record" task received */
static int nseen;

static void setup(void)
{
    gate_init(&release);
    gate_init(&stubborn_gate);
    counter_init(&started);
    counter_init(&ended);
    counter_init(&cb_end);
    counter_init(&cb_cancel);
    nseen = 0;
}

static void teardown(void)
{
    gate_destroy(&release);
    gate_destroy(&stubborn_gate);
    counter_destroy(&started);
    counter_destroy(&ended);
    counter_destroy(&cb_end);
    counter_destroy(&cb_cancel);
}

static int worker(tp_task *task, void *arg)
{
    (void)arg;
    counter_add(&started, 1);
    gate_pass(&release, task);
    return 0;
}

/* A registered function: records its JSON argument, then waits. */
static int record(tp_task *task, void *arg)
{
    char *s = cJSON_PrintUnformatted((const cJSON *)arg);
    pthread_mutex_lock(&seen_mu);
    if (nseen < 16)
        snprintf(seen[nseen++], sizeof seen[0], "%s", s);
    pthread_mutex_unlock(&seen_mu);
    free(s);
    counter_add(&started, 1);
    gate_pass(&release, task);
    return 0;
}

static int stubborn(tp_task *task, void *arg)
{
    (void)task, (void)arg;
    counter_add(&started, 1);
    gate_pass(&stubborn_gate, NULL);
    return 0;
}

static void on_end(tp_pool *pool, tp_id id, void *arg)
{
    (void)pool, (void)id;
    counter_add(arg, 1);
}

static void on_end_count(tp_pool *pool, tp_id id, void *arg)
{
    (void)pool, (void)id, (void)arg;
    counter_add(&ended, 1);
}

static bool seen_has(const char *json)
{
    bool found = false;
    pthread_mutex_lock(&seen_mu);
    for (int i = 0; i < nseen; i++)
        if (strcmp(seen[i], json) == 0)
            found = true;
    pthread_mutex_unlock(&seen_mu);
    return found;
}

static tp_pool *simple_pool(void)
{
    tp_pool_opts po = {.name = "0"};
    tp_opts o = {.func_name = "worker", .end_callback = on_end_count};
    tp_pool *p = tp_simple_pool_new(worker, NULL, &po, &o);
    ck_assert_ptr_nonnull(p);
    return p;
}

static tp_pool *general_pool(size_t size)
{
    tp_pool_opts po = {.name = "demo", .pool_size = size};
    tp_pool *p = tp_pool_new(&po);
    ck_assert_ptr_nonnull(p);
    return p;
}

static tp_control *tcp_server(tp_pool *p, const tp_control_opts *o)
{
    tp_control *c = tp_control_new_tcp(p, "127.0.0.1", "0", o);
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(tp_control_register(c, "sleep", record), TP_OK);
    ck_assert_int_eq(tp_control_register(c, "stubborn", stubborn), TP_OK);
    ck_assert_int_eq(tp_control_register_callback(c, "on_end", on_end, &cb_end),
                     TP_OK);
    ck_assert_int_eq(
        tp_control_register_callback(c, "on_cancel", on_end, &cb_cancel),
        TP_OK);
    ck_assert_int_eq(tp_control_start(c), TP_OK);
    ck_assert(tp_control_is_serving(c));
    ck_assert_int_gt(tp_control_port(c), 0);
    return c;
}

static void sock_path(char *out, size_t size, const char *tag)
{
    snprintf(out, size, "/tmp/tpctl-test-%d-%s.sock", (int)getpid(), tag);
    unlink(out);
}

static client *text_client(tp_control *c, const char *pool_name)
{
    client *cl = client_tcp(tp_control_port(c));
    client_hello(cl, "{\"terminal_width\": 100}", pool_name);
    return cl;
}

static client *json_client(tp_control *c)
{
    client *cl = client_tcp(tp_control_port(c));
    client_send_line(cl, "{\"terminal_width\": 100, \"format\": \"json\"}");
    char *l = client_line(cl);
    ck_assert_ptr_nonnull(l);
    ck_assert_msg(strncmp(l, "{\"ok\":true,\"result\":", 20) == 0, "%s", l);
    free(l);
    return cl;
}

static bool ended_is_1(void *p)
{
    return tp_num_ended(p) == 1;
}

static void finish(tp_control *c, tp_pool *p)
{
    gate_open(&release);
    gate_open(&stubborn_gate);
    tp_control_free(c);
    tp_pool_free(p);
}

/* ------------------------------------------------------------------------ */
/* Handshake                                                                */
/* ------------------------------------------------------------------------ */

START_TEST(handshake_text_answers_pool_name)
{
    tp_pool *p = simple_pool();
    tp_control *c = tcp_server(p, NULL);
    client *cl = text_client(c, "SimpleTaskPool-0");
    CMD_IS(cl, "num-running", "0");
    client_close(cl);
    finish(c, p);
}
END_TEST

START_TEST(handshake_json_answers_json)
{
    tp_pool *p = general_pool(3);
    tp_control *c = tcp_server(p, NULL);
    client *cl = client_tcp(tp_control_port(c));
    client_hello(cl, "{\"terminal_width\": 80, \"format\": \"json\"}",
                 "{\"ok\":true,\"result\":\"TaskPool-demo\"}");
    client_close(cl);
    finish(c, p);
}
END_TEST

START_TEST(handshake_without_width_uses_default)
{
    tp_pool *p = general_pool(3);
    tp_control *c = tcp_server(p, NULL);
    client *cl = client_tcp(tp_control_port(c));
    client_hello(cl, "{}", "TaskPool-demo");
    client_close(cl);
    finish(c, p);
}
END_TEST

static void bad_hello(const char *hello, const char *expect)
{
    tp_pool *p = general_pool(3);
    tp_control *c = tcp_server(p, NULL);
    client *cl = client_tcp(tp_control_port(c));
    client_hello(cl, hello, expect);
    ck_assert(client_eof(cl));
    client_close(cl);
    /* The server still serves others. */
    cl = text_client(c, "TaskPool-demo");
    client_close(cl);
    finish(c, p);
}

START_TEST(handshake_not_json_is_refused)
{
    bad_hello("hello", "error: the handshake must be one JSON object, e.g. "
                       "{\"terminal_width\": 80}");
}
END_TEST

START_TEST(handshake_json_array_is_refused)
{
    bad_hello("[80]", "error: the handshake must be one JSON object, e.g. "
                      "{\"terminal_width\": 80}");
}
END_TEST

START_TEST(handshake_bad_width_is_refused)
{
    bad_hello("{\"terminal_width\": \"wide\"}",
              "error: \"terminal_width\" must be a number");
}
END_TEST

START_TEST(handshake_bad_format_is_refused)
{
    bad_hello("{\"format\": \"xml\"}",
              "error: \"format\" must be \"text\" or \"json\"");
}
END_TEST

START_TEST(handshake_binary_is_refused)
{
    bad_hello("\xff\xfe{", "error: the handshake is not valid UTF-8 text");
}
END_TEST

START_TEST(token_accepted)
{
    tp_pool *p = general_pool(3);
    tp_control_opts o = {.token = "s3cret"};
    tp_control *c = tcp_server(p, &o);
    client *cl = client_tcp(tp_control_port(c));
    client_hello(cl, "{\"terminal_width\": 80, \"token\": \"s3cret\"}",
                 "TaskPool-demo");
    CMD_IS(cl, "is-locked", "False");
    client_close(cl);
    finish(c, p);
}
END_TEST

START_TEST(token_wrong_is_refused)
{
    tp_pool *p = general_pool(3);
    tp_control_opts o = {.token = "s3cret"};
    tp_control *c = tcp_server(p, &o);
    client *cl = client_tcp(tp_control_port(c));
    client_hello(cl, "{\"terminal_width\": 80, \"token\": \"s3crex\"}",
                 "error: wrong token");
    ck_assert(client_eof(cl));
    client_close(cl);
    cl = client_tcp(tp_control_port(c));
    client_hello(cl, "{\"format\": \"json\", \"token\": \"\"}",
                 "{\"ok\":false,\"error\":\"TP_ETOKEN\",\"message\":\"error: "
                 "wrong token\"}");
    client_close(cl);
    finish(c, p);
}
END_TEST

START_TEST(token_missing_is_refused)
{
    tp_pool *p = general_pool(3);
    tp_control_opts o = {.token = "s3cret"};
    tp_control *c = tcp_server(p, &o);
    client *cl = client_tcp(tp_control_port(c));
    client_hello(cl, "{\"terminal_width\": 80}",
                 "error: this server requires a token");
    ck_assert(client_eof(cl));
    client_close(cl);
    finish(c, p);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* SimpleTaskPool, text mode: the reference transcript                      */
/* ------------------------------------------------------------------------ */

START_TEST(simple_pool_transcript)
{
    tp_pool *p = simple_pool();
    char g[TP_NAME_MAX];
    ck_assert_int_eq(tp_start(p, 3, g), TP_OK);
    ck_assert(counter_wait(&started, 3));
    tp_control *c = tcp_server(p, NULL);
    client *cl = text_client(c, "SimpleTaskPool-0");
    CMD_IS(cl, "num-running", "3");
    CMD_IS(cl, "pool-size", "inf");
    CMD_IS(cl, "start 2", "start-group-1");
    ck_assert(counter_wait(&started, 5));
    CMD_IS(cl, "num-running", "5");
    CMD_IS(cl, "stop 1", "[4]");
    CMD_IS(cl, "is-locked", "False");
    CMD_IS(cl, "cancel 99", "No task with ID 99 found in SimpleTaskPool-0");
    CMD_IS(cl, "get-group-ids start-group-0", "{0, 1, 2}");
    CMD_IS(cl, "get-group-ids nope",
           "No task group named nope exists in this pool.");
    CMD_IS(cl, "func-name", "worker");
    CMD_IS(cl, "is-full", "False");
    ck_assert(counter_wait(&ended, 1));
    ck_assert(wait_until(ended_is_1, p));
    CMD_IS(cl, "num-ended", "1");
    CMD_IS(cl, "pool-size 10", "ok");
    CMD_IS(cl, "pool-size", "10");
    CMD_BLOCK_IS(cl, "bogus",
                 "usage: [-h] [command] ...\n: error: argument (A command "
                 "followed by '-h' or '--help' will show command-specific "
                 "help.): invalid choice: 'bogus' (choose from 'cancel', "
                 "'cancel-all', 'cancel-group', 'exit', 'flush', "
                 "'func-name', 'gather-and-close', 'get-group-ids', 'groups', "
                 "'help', "
                 "'is-full', 'is-locked', 'lock', 'metrics', "
                 "'num-cancelled', "
                 "'num-ended', 'num-running', 'pool-size', 'start', "
                 "'stats', 'stop', 'stop-all', 'unlock', 'until-closed')\n\n");
    CMD_BLOCK_IS(cl, "stop",
                 "usage: stop [-h] num\nstop: error: the following arguments "
                 "are required: num\n\n");
    CMD_BLOCK_IS(cl, "start -h",
                 "usage: start [-h] num\n\nStarts the given number of new "
                 "tasks as a new group.\n\npositional arguments:\n  num      "
                 "   int\n\noptions:\n  -h, --help  show this help message "
                 "and exit\n\n");
    CMD_IS(cl, "stop-all", "[3, 2, 1, 0]");
    CMD_IS(cl, "cancel-group start-group-0", "ok");
    CMD_IS(cl, "lock", "ok");
    CMD_IS(cl, "is-locked", "True");
    CMD_IS(cl, "start 1", "Cannot start new tasks");
    CMD_IS(cl, "unlock", "ok");
    CMD_IS(cl, "flush", "ok");
    CMD_IS(cl, "num-ended", "0");
    CMD_IS(cl, "cancel-group start-group-0",
           "No task group named start-group-0 exists in this pool.");
    client_close(cl);
    finish(c, p);
}
END_TEST

START_TEST(simple_pool_rejects_general_commands)
{
    tp_pool *p = simple_pool();
    tp_control *c = tcp_server(p, NULL);
    client *cl = text_client(c, "SimpleTaskPool-0");
    client_send_line(cl, "apply sleep");
    char *r = client_read_until(cl, "\n\n");
    ck_assert_ptr_nonnull(r);
    ck_assert_ptr_nonnull(strstr(r, "invalid choice: 'apply'"));
    free(r);
    client_close(cl);
    finish(c, p);
}
END_TEST

START_TEST(simple_pool_counts_and_errors)
{
    tp_pool *p = simple_pool();
    tp_control *c = tcp_server(p, NULL);
    client *cl = text_client(c, "SimpleTaskPool-0");
    CMD_IS(cl, "start 0", "`num` must be a positive integer.");
    CMD_IS(cl, "stop -1", "`num` must be a non-negative integer.");
    CMD_BLOCK_IS(cl, "stop x",
                 "usage: stop [-h] num\nstop: error: argument num: invalid "
                 "int value: 'x'\n\n");
    CMD_BLOCK_IS(cl, "stop 1 2",
                 "usage: [-h] [command] ...\n: error: unrecognized arguments: "
                 "2\n\n");
    CMD_IS(cl, "stop 3", "[]");
    CMD_IS(cl, "get-group-ids", "{}");
    CMD_IS(cl, "pool-size -1", "Pool size can not be less than 0");
    CMD_IS(cl, "pool-size 0", "ok");
    CMD_IS(cl, "is-full", "True");
    CMD_IS(cl, "pool-size inf", "ok");
    CMD_IS(cl, "pool-size", "inf");
    CMD_BLOCK_IS(cl, "pool-size big",
                 "usage: pool-size [-h] [pool_size]\npool-size: error: "
                 "argument pool_size: invalid int value (or 'inf'): "
                 "'big'\n\n");
    client_close(cl);
    finish(c, p);
}
END_TEST

START_TEST(cancel_reports_cancelled_and_ended_tasks)
{
    tp_pool *p = simple_pool();
    tp_control *c = tcp_server(p, NULL);
    client *cl = text_client(c, "SimpleTaskPool-0");
    /* A stubborn pool would be needed to see "has been cancelled" stay;
     * after its end the task reports "has finished running". */
    CMD_IS(cl, "start 2", "start-group-0");
    ck_assert(counter_wait(&started, 2));
    CMD_IS(cl, "cancel 0", "ok");
    ck_assert(counter_wait(&ended, 1));
    ck_assert(wait_until(ended_is_1, p));
    CMD_IS(cl, "cancel 0", "'SimpleTaskPool-0_Task-0' has finished running");
    /* All or nothing, and the message names the id that failed. */
    CMD_IS(cl, "cancel 1 99", "No task with ID 99 found in SimpleTaskPool-0");
    CMD_IS(cl, "cancel 1 0", "'SimpleTaskPool-0_Task-0' has finished running");
    CMD_IS(cl, "num-running", "1");
    client_close(cl);
    finish(c, p);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* TaskPool, text mode                                                      */
/* ------------------------------------------------------------------------ */

START_TEST(general_pool_transcript)
{
    tp_pool *p = general_pool(3);
    tp_control *c = tcp_server(p, NULL);
    client *cl = text_client(c, "TaskPool-demo");
    CMD_BLOCK_IS(
        cl, "apply -h",
        "usage: apply [-h] [-a ARGS] [-k KWARGS] [-n NUM] [-g GROUP_NAME] "
        "[-e END_CALLBACK]\n             [-c CANCEL_CALLBACK]\n             "
        "func\n\nStarts NUM tasks running FUNC, a function the program "
        "registered, as a new group, and prints the\ngroup's name. Each task "
        "receives the JSON object {\"args\": ARGS, \"kwargs\": KWARGS}.\n\n"
        "positional arguments:\n  func                  name of a registered "
        "function\n\noptions:\n  -h, --help            show this help "
        "message and exit\n  -a ARGS, --args ARGS  JSON array (default: "
        "[])\n  -k KWARGS, --kwargs KWARGS\n                        JSON "
        "object (default: {})\n  -n NUM, --num NUM     int (default: 1)\n"
        "  -g GROUP_NAME, --group-name GROUP_NAME\n                        "
        "string (default: generated)\n  -e END_CALLBACK, --end-callback "
        "END_CALLBACK\n                        callback name (default: "
        "none)\n  -c CANCEL_CALLBACK, --cancel-callback CANCEL_CALLBACK\n   "
        "                     callback name (default: none)\n\n");
    client_send_line(cl, "map -h");
    char *r = client_read_until(cl, "callback name (default: none)\n\n");
    ck_assert_ptr_nonnull(r);
    ck_assert_msg(strncmp(r,
                          "usage: map [-h] [-n NUM_CONCURRENT] [-g "
                          "GROUP_NAME] [-e END_CALLBACK] [-c "
                          "CANCEL_CALLBACK]\n           func arg_iter\n\n",
                          strlen("usage: map [-h] [-n NUM_CONCURRENT] [-g "
                                 "GROUP_NAME] [-e END_CALLBACK] [-c "
                                 "CANCEL_CALLBACK]\n           func "
                                 "arg_iter\n\n")) == 0,
                  "%s", r);
    free(r);
    CMD_IS(cl, "apply sleep -a [5] -n 2", "apply-sleep-group-0");
    ck_assert(counter_wait(&started, 2));
    CMD_IS(cl, "num-running", "2");
    CMD_IS(cl, "map sleep [1,2,3,4] -n 2", "map-sleep-group-0");
    ck_assert(counter_wait(&started, 3));
    CMD_IS(cl, "num-running", "3");
    CMD_IS(cl, "pool-size", "3");
    CMD_IS(cl, "is-full", "True");
    CMD_IS(cl, "get-group-ids apply-sleep-group-0", "{0, 1}");
    CMD_BLOCK_IS(
        cl, "apply nosuch.func",
        "usage: apply [-h] [-a ARGS] [-k KWARGS] [-n NUM] [-g GROUP_NAME] "
        "[-e END_CALLBACK]\n             [-c CANCEL_CALLBACK]\n             "
        "func\napply: error: argument func: no function registered as "
        "'nosuch.func'\n\n");
    CMD_IS(cl, "apply sleep -a [1] -g apply-sleep-group-0",
           "Group named apply-sleep-group-0 already exists!");
    CMD_IS(cl, "cancel-all", "ok");
    CMD_IS(cl, "gather-and-close", "ok");
    CMD_IS(cl, "apply sleep", "You must use another pool");
    CMD_IS(cl, "until-closed", "True");
    client_close(cl);
    finish(c, p);
}
END_TEST

START_TEST(general_pool_help_lists_its_commands)
{
    tp_pool *p = general_pool(3);
    tp_control *c = tcp_server(p, NULL);
    client *cl = text_client(c, "TaskPool-demo");
    client_send_line(cl, "-h");
    /* Read up to the last command, then to the end of its help. */
    char *r = client_read_until(cl, "\n    until-closed");
    char *tail = client_read_until(cl, "\n\n");
    ck_assert_ptr_nonnull(tail);
    ck_assert_int_eq(cl->len, 0);
    free(tail);
    ck_assert_ptr_nonnull(r);
    const char *head =
        "usage: [-h] [command] ...\n\noptions:\n  -h, --help            show "
        "this help message and exit\n\nCommands:\n  (A command followed by "
        "'-h' or '--help' will show command-specific help.)\n    apply      "
        "         Starts tasks running a registered function with the given "
        "arguments, as a\n                        new group.\n    cancel    "
        "          Cancels the tasks with the given IDs.\n";
    ck_assert_msg(strncmp(r, head, strlen(head)) == 0, "%s", r);
    ck_assert_ptr_nonnull(strstr(r, "\n    doublestarmap       "));
    ck_assert_ptr_null(strstr(r, "\n    start "));
    ck_assert_ptr_null(strstr(r, "\n    func-name "));
    free(r);
    /* "help" and "help CMD" say the same as "-h" and "CMD -h". */
    const char *want = "usage: cancel-group [-h] group_name\n\nCancels a "
                       "group: its pending starts and its tasks.\n\n"
                       "positional arguments:\n  group_name  string\n\n"
                       "options:\n  -h, --help  show this help message and "
                       "exit\n\n";
    CMD_BLOCK_IS(cl, "help cancel-group", want);
    CMD_BLOCK_IS(cl, "cancel-group --help", want);
    client_close(cl);
    finish(c, p);
}
END_TEST

START_TEST(help_wraps_to_terminal_width)
{
    tp_pool *p = general_pool(3);
    tp_control *c = tcp_server(p, NULL);
    client *cl = client_tcp(tp_control_port(c));
    client_hello(cl, "{\"terminal_width\": 40}", "TaskPool-demo");
    CMD_BLOCK_IS(cl, "cancel -h",
                 "usage: cancel [-h] [task_ids ...]\n\nCancels the tasks "
                 "with the given IDs; if\none of them is not running, "
                 "cancels\nnone.\n\npositional arguments:\n  task_ids    "
                 "int\n\noptions:\n  -h, --help  show this help message and\n"
                 "              exit\n\n");
    client_close(cl);
    finish(c, p);
}
END_TEST

START_TEST(spawn_commands_pass_json_arguments)
{
    tp_pool *p = general_pool(0);
    tp_control *c = tcp_server(p, NULL);
    client *cl = text_client(c, "TaskPool-demo");
    CMD_IS(cl, "apply sleep -a [1, \"a b\"] -k {\"x\": {\"y\": null}}",
           "apply-sleep-group-0");
    CMD_IS(cl, "map sleep [7,\"s\",{\"k\":[]}] -n 3 -g mine", "mine");
    CMD_IS(cl, "starmap sleep [[1,2],[]] --num-concurrent=2",
           "starmap-sleep-group-0");
    CMD_IS(cl, "doublestarmap sleep [{\"a\":1}]",
           "doublestarmap-sleep-group-0");
    CMD_IS(cl, "apply sleep -n2", "apply-sleep-group-1");
    ck_assert(counter_wait(&started, 9));
    ck_assert(
        seen_has("{\"args\":[1,\"a b\"],\"kwargs\":{\"x\":{\"y\":null}}}"));
    ck_assert(seen_has("7"));
    ck_assert(seen_has("\"s\""));
    ck_assert(seen_has("{\"k\":[]}"));
    ck_assert(seen_has("[1,2]"));
    ck_assert(seen_has("[]"));
    ck_assert(seen_has("{\"a\":1}"));
    ck_assert(seen_has("{\"args\":[],\"kwargs\":{}}"));
    client_send_line(cl, "get-group-ids mine");
    char *ids = client_line(cl);
    int a, b, d;
    ck_assert_int_eq(sscanf(ids, "{%d, %d, %d}", &a, &b, &d), 3);
    ck_assert(a < b && b < d);
    free(ids);
    client_close(cl);
    finish(c, p);
}
END_TEST

START_TEST(spawn_commands_reject_bad_json)
{
    tp_pool *p = general_pool(0);
    tp_control *c = tcp_server(p, NULL);
    client *cl = text_client(c, "TaskPool-demo");
    client_send_line(cl, "apply sleep -a [1,");
    char *r = client_read_until(cl, "\n\n");
    ck_assert_ptr_nonnull(
        strstr(r, "apply: error: argument -a/--args: invalid JSON array value: "
                  "'[1,'\n\n"));
    free(r);
    client_send_line(cl, "apply sleep -k [1]");
    r = client_read_until(cl, "\n\n");
    ck_assert_ptr_nonnull(
        strstr(r, "argument -k/--kwargs: invalid JSON object value: '[1]'"));
    free(r);
    client_send_line(cl, "starmap sleep [[1],2]");
    r = client_read_until(cl, "\n\n");
    ck_assert_ptr_nonnull(
        strstr(r, "argument args_iter: invalid JSON array of arrays value"));
    free(r);
    client_send_line(cl, "doublestarmap sleep [[1]]");
    r = client_read_until(cl, "\n\n");
    ck_assert_ptr_nonnull(
        strstr(r, "argument kwargs_iter: invalid JSON array of objects value"));
    free(r);
    client_send_line(cl, "map sleep");
    r = client_read_until(cl, "\n\n");
    ck_assert_ptr_nonnull(
        strstr(r, "map: error: the following arguments are required: "
                  "arg_iter\n\n"));
    free(r);
    client_send_line(cl, "apply sleep -n");
    r = client_read_until(cl, "\n\n");
    ck_assert_ptr_nonnull(
        strstr(r, "apply: error: argument -n/--num: expected one argument"));
    free(r);
    client_send_line(cl, "apply sleep -e nope");
    r = client_read_until(cl, "\n\n");
    ck_assert_ptr_nonnull(strstr(
        r, "argument -e/--end-callback: no callback registered as 'nope'"));
    free(r);
    CMD_IS(cl, "map sleep [1] -n 0",
           "`num_concurrent` must be a positive integer.");
    CMD_IS(cl, "stats",
           "pool_size=inf running=0 cancelled=0 ended=0 "
           "pending=0 groups=0 threads=0 idle_threads=0 "
           "total_started=0 total_ended=0 total_cancelled=0 "
           "total_failed=0 total_refused=0 total_dropped=0");
    client_close(cl);
    finish(c, p);
}
END_TEST

START_TEST(callbacks_by_name_run)
{
    tp_pool *p = general_pool(0);
    tp_control *c = tcp_server(p, NULL);
    client *cl = text_client(c, "TaskPool-demo");
    CMD_IS(cl, "map sleep [1,2,3] -n 3 -e on_end -c on_cancel",
           "map-sleep-group-0");
    CMD_IS(cl, "pool-size 3", "ok");
    ck_assert(counter_wait(&started, 3));
    CMD_IS(cl, "cancel 0", "ok");
    ck_assert(counter_wait(&cb_cancel, 1));
    gate_open(&release);
    ck_assert(counter_wait(&cb_end, 3));
    ck_assert_int_eq(counter_get(&cb_cancel), 1);
    client_close(cl);
    finish(c, p);
}
END_TEST

START_TEST(cancel_group_discards_pending_json_arguments)
{
    /* Pool size 0: nothing starts; cancelling the group discards every
     * start, and LeakSanitizer checks that the JSON is freed. */
    tp_pool *p = general_pool(0);
    tp_control *c = tcp_server(p, NULL);
    client *cl = text_client(c, "TaskPool-demo");
    CMD_IS(cl, "pool-size 0", "ok");
    CMD_IS(cl, "map sleep [[1],[2],[3]] -g m", "m");
    CMD_IS(cl, "apply sleep -a [{\"deep\":[1]}] -n 4 -g a", "a");
    CMD_IS(cl, "cancel-group m", "ok");
    CMD_IS(cl, "cancel-group a", "ok");
    CMD_IS(cl, "get-group-ids m", "No task group named m exists in this pool.");
    ck_assert_int_eq(counter_get(&started), 0);
    client_close(cl);
    finish(c, p);
}
END_TEST

START_TEST(function_names_match_lowercased_requests)
{
    tp_pool *p = general_pool(0);
    tp_control *c = tp_control_new_tcp(p, "127.0.0.1", "0", NULL);
    ck_assert_int_eq(tp_control_register(c, "FetchURL", record), TP_OK);
    ck_assert_int_eq(tp_control_register(c, "FetchURL", record),
                     TP_EGROUP_EXISTS);
    ck_assert_int_eq(tp_control_register(c, "bad name", record), TP_EINVAL);
    ck_assert_int_eq(tp_control_start(c), TP_OK);
    ck_assert_int_eq(tp_control_register(c, "late", record), TP_EINVAL);
    ck_assert_int_eq(tp_control_start(c), TP_EINVAL);
    client *cl = text_client(c, "TaskPool-demo");
    CMD_IS(cl, "apply fetchurl", "apply-FetchURL-group-0");
    CMD_IS(cl, "APPLY FetchURL", "apply-FetchURL-group-1");
    client_close(cl);
    finish(c, p);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* JSON mode                                                                */
/* ------------------------------------------------------------------------ */

static void json_is(client *cl, const char *cmd, const char *expect)
{
    client_send_line(cl, cmd);
    char *l = client_line(cl);
    ck_assert_msg(l != NULL, "no response to %s", cmd);
    ck_assert_str_eq(l, expect);
    free(l);
}

START_TEST(json_mode_types_results)
{
    tp_pool *p = simple_pool();
    tp_control *c = tcp_server(p, NULL);
    client *cl = json_client(c);
    json_is(cl, "start 2", "{\"ok\":true,\"result\":\"start-group-0\"}");
    ck_assert(counter_wait(&started, 2));
    json_is(cl, "num-running", "{\"ok\":true,\"result\":2}");
    json_is(cl, "pool-size", "{\"ok\":true,\"result\":null}");
    json_is(cl, "pool-size 4", "{\"ok\":true,\"result\":null}");
    json_is(cl, "pool-size", "{\"ok\":true,\"result\":4}");
    json_is(cl, "is-locked", "{\"ok\":true,\"result\":false}");
    json_is(cl, "get-group-ids start-group-0",
            "{\"ok\":true,\"result\":[0,1]}");
    json_is(cl, "stop 1", "{\"ok\":true,\"result\":[1]}");
    json_is(cl, "cancel 99",
            "{\"ok\":false,\"error\":\"TP_ENOTASK\",\"message\":\"No task "
            "with ID 99 found in SimpleTaskPool-0\"}");
    json_is(cl, "get-group-ids x",
            "{\"ok\":false,\"error\":\"TP_ENOGROUP\",\"message\":\"No task "
            "group named x exists in this pool.\"}");
    json_is(cl, "stop",
            "{\"ok\":false,\"error\":\"TP_EUSAGE\",\"message\":\"usage: stop "
            "[-h] num\\nstop: error: the following arguments are required: "
            "num\"}");
    json_is(cl, "lock", "{\"ok\":true,\"result\":null}");
    json_is(cl, "start 1",
            "{\"ok\":false,\"error\":\"TP_ELOCKED\",\"message\":\"Cannot "
            "start new tasks\"}");
    cJSON *j = client_json(cl, "start -h");
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(j, "ok")));
    const char *help = cJSON_GetStringValue(cJSON_GetObjectItem(j, "result"));
    ck_assert_ptr_nonnull(help);
    ck_assert_msg(strncmp(help, "usage: start [-h] num\n\n", 23) == 0, "%s",
                  help);
    cJSON_Delete(j);
    j = client_json(cl, "stats");
    cJSON *res = cJSON_GetObjectItem(j, "result");
    ck_assert(cJSON_IsObject(res));
    ck_assert_int_eq(cJSON_GetObjectItem(res, "pool_size")->valueint, 4);
    ck_assert(cJSON_IsNumber(cJSON_GetObjectItem(res, "total_started")));
    cJSON_Delete(j);
    json_is(cl, "\xc3\x28",
            "{\"ok\":false,\"error\":\"TP_EPROTO\",\"message\":\"error: the "
            "request is not valid UTF-8 text (or holds a NUL byte)\"}");
    client_close(cl);
    finish(c, p);
}
END_TEST

START_TEST(huge_pool_size_is_shown_exactly)
{
    /* 2^63 - 1 does not fit a double: it used to come back as
     * "9.22337e+18", through an out-of-range (undefined) conversion. */
    tp_pool *p = simple_pool();
    tp_control *c = tcp_server(p, NULL);
    client *cl = text_client(c, "SimpleTaskPool-0");
    CMD_IS(cl, "pool-size 9223372036854775807", "ok");
    CMD_IS(cl, "pool-size", "9223372036854775807");
    client_close(cl);
    cl = json_client(c);
    json_is(cl, "pool-size", "{\"ok\":true,\"result\":9223372036854775807}");
    json_is(cl, "pool-size 9007199254740993", "{\"ok\":true,\"result\":null}");
    json_is(cl, "pool-size", "{\"ok\":true,\"result\":9007199254740993}");
    client_close(cl);
    finish(c, p);
}
END_TEST

/* Sends cmd, reads its response up to end and checks that it is UTF-8. */
static void response_is_utf8(client *cl, const char *cmd, const char *end)
{
    client_send_line(cl, cmd);
    char *r = client_read_until(cl, end);
    ck_assert_ptr_nonnull(r);
    ck_assert_msg(tp__ctl_utf8_valid(r, strlen(r)), "not UTF-8: %s", r);
    free(r);
}

START_TEST(echoed_requests_cut_short_stay_utf8)
{
    /* Error messages quote at most 77 bytes of a long token; cutting an
     * "\xc3\xa9" (e acute) in half made the response invalid UTF-8, which
     * JSON forbids and the reference's CLI cannot decode. */
    tp_pool *p = general_pool(3);
    tp_control *c = tcp_server(p, NULL);
    char e41[83] = "", cmd[200];
    for (int i = 0; i < 41; i++)
        strcat(e41, "\xc3\xa9");
    client *cl = text_client(c, "TaskPool-demo");
    response_is_utf8(cl, e41, "\n\n"); /* invalid choice: '...' */
    snprintf(cmd, sizeof cmd, "apply sleep -n %s", e41);
    response_is_utf8(cl, cmd, "\n\n"); /* invalid int value: '...' */
    snprintf(cmd, sizeof cmd, "apply sleep -a [\"%s", e41);
    response_is_utf8(cl, cmd, "\n\n"); /* invalid JSON array value */
    client_close(cl);
    cl = json_client(c);
    response_is_utf8(cl, e41, "\n");
    client_close(cl);
    finish(c, p);
}
END_TEST

static int quick(tp_task *task, void *arg)
{
    (void)task, (void)arg;
    return 0;
}

static bool ended_is_4000(void *p)
{
    return tp_num_ended(p) == 4000;
}

static long max_rss_kib(void)
{
    struct rusage ru;
    ck_assert_int_eq(getrusage(RUSAGE_SELF, &ru), 0);
    return ru.ru_maxrss;
}

START_TEST(repeated_group_names_cost_nothing_extra)
{
    /* The engine copies a group's ids once per mention before dropping
     * duplicates: "get-group-ids big big ..." (4000 mentions of a group of
     * 4000 tasks, a 16 KB line) used to allocate and sort 16 million ids
     * (128 MB) on the control thread, stalling every session. */
    tp_pool *p = general_pool(3);
    tp_opts o = {.group_name = "big"};
    ck_assert_int_eq(tp_apply(p, quick, NULL, 4000, &o, NULL), TP_OK);
    ck_assert(wait_until(ended_is_4000, p));
    tp_control *c = tcp_server(p, NULL);
    client *cl = json_client(c);
    size_t size = 16 + 4 * 4000 + 8;
    char *line = malloc(size);
    strcpy(line, "get-group-ids");
    for (int i = 0; i < 4000; i++)
        strcat(line + 13 + 4 * i, " big");
    strcat(line, " big nope");
    long rss0 = max_rss_kib();
    cJSON *j = client_json(cl, line);
    ck_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(j, "message")),
                     "No task group named nope exists in this pool.");
    cJSON_Delete(j);
    line[13 + 4 * 4000] = '\0'; /* drop " big nope" */
    j = client_json(cl, line);
    cJSON *ids = cJSON_GetObjectItem(j, "result");
    ck_assert_int_eq(cJSON_GetArraySize(ids), 4000);
    ck_assert_int_eq(cJSON_GetArrayItem(ids, 3999)->valueint, 3999);
    cJSON_Delete(j);
    long grown = max_rss_kib() - rss0;
    ck_assert_msg(grown < 40 * 1024, "peak memory grew by %ld KiB", grown);
    free(line);
    client_close(cl);
    finish(c, p);
}
END_TEST

START_TEST(nesting_bombs_and_huge_numbers_get_clear_errors)
{
    /* Regression guard for hostile input that is already handled: cJSON
     * refuses nesting beyond 1000 levels, and numbers beyond long long are
     * usage errors, not wrapped values. */
    tp_pool *p = general_pool(0);
    tp_control *c = tcp_server(p, NULL);
    enum { DEPTH = 10000 };
    char *bomb = malloc(32 + 2 * DEPTH);
    strcpy(bomb, "map sleep ");
    size_t off = strlen(bomb);
    memset(bomb + off, '[', DEPTH);
    memset(bomb + off + DEPTH, ']', DEPTH);
    bomb[off + 2 * DEPTH] = '\0';
    client *cl = text_client(c, "TaskPool-demo");
    client_send_line(cl, bomb);
    char *r = client_read_until(cl, "\n\n");
    ck_assert_ptr_nonnull(strstr(r, "argument arg_iter: invalid JSON array"));
    free(r);
    client_send_line(cl, "apply sleep -n 99999999999999999999");
    r = client_read_until(cl, "\n\n");
    ck_assert_ptr_nonnull(strstr(r, "argument -n/--num: invalid int value: "
                                    "'99999999999999999999'"));
    free(r);
    client_send_line(cl, "cancel -99999999999999999999");
    r = client_read_until(cl, "\n\n");
    ck_assert_ptr_nonnull(strstr(r, "invalid int value"));
    free(r);
    CMD_IS(cl, "apply sleep -n 0", "`num` must be a positive integer.");
    CMD_IS(cl, "num-running", "0");
    client_close(cl);
    /* The same bomb as a handshake. */
    cl = client_tcp(tp_control_port(c));
    client_hello(cl, bomb + off,
                 "error: the handshake must be one JSON object, e.g. "
                 "{\"terminal_width\": 80}");
    ck_assert(client_eof(cl));
    client_close(cl);
    free(bomb);
    finish(c, p);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Limits and junk                                                          */
/* ------------------------------------------------------------------------ */

START_TEST(overlong_line_gets_error_and_is_skipped)
{
    tp_pool *p = general_pool(3);
    tp_control_opts o = {.max_line = 1024};
    tp_control *c = tcp_server(p, &o);
    client *cl = text_client(c, "TaskPool-demo");
    char *big = malloc(5000);
    memset(big, 'a', 4999);
    big[4999] = '\0';
    client_send(cl, big, 4999);
    char *l = client_line(cl);
    ck_assert_str_eq(l, "error: the line is longer than 1024 bytes");
    free(l);
    /* The rest of the long line is dropped, the next one answered. */
    client_send(cl, big, 3000);
    client_send_line(cl, "\nnum-running");
    l = client_line(cl);
    ck_assert_str_eq(l, "0");
    free(l);
    /* A line of exactly max_line bytes is fine. */
    memcpy(big, "get-group-ids ", 14);
    big[1024] = '\0';
    client_send_line(cl, big);
    l = client_line(cl);
    char want[1100];
    snprintf(want, sizeof want, "No task group named %s exists in this pool.",
             big + 14);
    ck_assert_str_eq(l, want);
    free(l);
    free(big);
    client_close(cl);
    finish(c, p);
}
END_TEST

START_TEST(overlong_handshake_is_refused)
{
    tp_pool *p = general_pool(3);
    tp_control_opts o = {.max_line = 256};
    tp_control *c = tcp_server(p, &o);
    client *cl = client_tcp(tp_control_port(c));
    char big[600];
    memset(big, ' ', sizeof big);
    client_send(cl, big, sizeof big);
    char *l = client_line(cl);
    ck_assert_str_eq(l, "error: the line is longer than 256 bytes");
    free(l);
    ck_assert(client_eof(cl));
    client_close(cl);
    finish(c, p);
}
END_TEST

START_TEST(option_spellings)
{
    tp_pool *p = general_pool(0);
    tp_control *c = tcp_server(p, NULL);
    client *cl = text_client(c, "TaskPool-demo");
    CMD_IS(cl, "apply sleep --num 2 --group-name=g1", "g1");
    CMD_IS(cl, "apply sleep --gr g2 -n1", "g2");
    CMD_IS(cl, "apply -- sleep", "apply-sleep-group-0");
    /* A unique prefix of a long option is that option, as in argparse. */
    CMD_IS(cl, "apply sleep --n 2", "apply-sleep-group-1");
    CMD_BLOCK_IS(cl, "apply sleep --bogus",
                 "usage: [-h] [command] ...\n: error: unrecognized "
                 "arguments: --bogus\n\n");
    CMD_BLOCK_IS(cl, "flush -r=1",
                 "usage: flush [-h] [-r]\nflush: error: argument "
                 "-r/--return-exceptions: ignored explicit argument "
                 "'1'\n\n");
    CMD_IS(cl, "flush --return-exceptions", "ok");
    /* After "--" a "-h" is a positional, as in argparse (it asked for help
     * before parse_command was split). */
    CMD_IS(cl, "get-group-ids -- -h",
           "No task group named -h exists in this pool.");
    client_close(cl);
    finish(c, p);
}
END_TEST

START_TEST(binary_junk_gets_errors_not_a_crash)
{
    tp_pool *p = general_pool(3);
    tp_control *c = tcp_server(p, NULL);
    client *cl = text_client(c, "TaskPool-demo");
    const char junk[] = "\x00\x01\x02\xff\n\x80\x80\n";
    client_send(cl, junk, sizeof junk - 1);
    for (int i = 0; i < 2; i++) {
        char *l = client_line(cl);
        ck_assert_str_eq(l, "error: the request is not valid UTF-8 text (or "
                            "holds a NUL byte)");
        free(l);
    }
    /* Tokens that look like JSON but are not, and odd quoting. */
    client_send_line(cl, "cancel-group \"unterminated [ {");
    char *l = client_line(cl);
    ck_assert_str_eq(l, "No task group named \"unterminated [ { exists in "
                        "this pool.");
    free(l);
    CMD_IS(cl, "num-running", "0");
    client_close(cl);
    finish(c, p);
}
END_TEST

START_TEST(blank_lines_get_no_response)
{
    tp_pool *p = general_pool(3);
    tp_control *c = tcp_server(p, NULL);
    client *cl = text_client(c, "TaskPool-demo");
    client_send(cl, "\n  \r\n\t\nnum-ended\r\n", 19);
    char *l = client_line(cl);
    ck_assert_str_eq(l, "0");
    free(l);
    client_close(cl);
    finish(c, p);
}
END_TEST

START_TEST(pipelined_requests_answer_in_order)
{
    tp_pool *p = simple_pool();
    tp_control *c = tcp_server(p, NULL);
    client *cl = text_client(c, "SimpleTaskPool-0");
    client_send(cl, "lock\nis-locked\nunlock\nis-locked\nflush\nnum-ended\n",
                48);
    const char *want[] = {"ok", "True", "ok", "False", "ok", "0"};
    for (int i = 0; i < 6; i++) {
        char *l = client_line(cl);
        ck_assert_str_eq(l, want[i]);
        free(l);
    }
    client_close(cl);
    finish(c, p);
}
END_TEST

/* Reads exactly n bytes from cl (what client_line buffered first). */
static char *read_exactly(client *cl, size_t n)
{
    char *buf = malloc(n);
    size_t got = cl->len < n ? cl->len : n;
    memcpy(buf, cl->buf, got);
    memmove(cl->buf, cl->buf + got, cl->len - got);
    cl->len -= got;
    while (got < n) {
        ssize_t r = recv(cl->fd, buf + got, n - got, 0);
        ck_assert_msg(r > 0, "after %zu of %zu bytes: %s", got, n,
                      r < 0 ? strerror(errno) : "EOF");
        got += (size_t)r;
    }
    return buf;
}

START_TEST(pipelined_answers_beyond_the_output_limit_all_arrive)
{
    /* Answers to the lines of one read are sent together; once they reach
     * the 1 MiB output limit the server stops reading lines until they are
     * sent. A batch the socket took whole must not leave the rest of the
     * read's lines unanswered with nothing left to wake the session. */
    tp_pool *p = general_pool(3);
    tp_control *c = tcp_server(p, NULL);
    client *cl = text_client(c, "TaskPool-demo");
    client_send_line(cl, "-h");
    client_send_line(cl, "num-running");
    char *help = client_read_until(cl, "\n0\n");
    ck_assert_ptr_nonnull(help);
    size_t h = strlen(help) - 2; /* one -h answer */
    free(help);
    enum { N = 2000 };
    char *req = malloc(N * 3 + 13);
    for (int i = 0; i < N; i++)
        memcpy(req + 3 * i, "-h\n", 3);
    memcpy(req + 3 * N, "num-running\n", 12);
    client_send(cl, req, 3 * N + 12);
    free(req);
    ck_assert_uint_gt(N * h, 1 << 20);
    char *all = read_exactly(cl, N * h + 2);
    ck_assert(memcmp(all + N * h, "0\n", 2) == 0);
    free(all);
    client_close(cl);
    finish(c, p);
}
END_TEST

/* Newlines waiting to be read on a non-blocking socket. */
static size_t lines_available(int fd)
{
    size_t n = 0;
    char buf[65536];
    ssize_t got;
    while ((got = recv(fd, buf, sizeof buf, MSG_DONTWAIT)) > 0)
        for (ssize_t i = 0; i < got; i++)
            n += buf[i] == '\n';
    return n;
}

START_TEST(one_turn_answers_a_bounded_share_of_pipelined_lines)
{
    /* A client that pipelines cheap requests and reads as fast as they are
     * answered used to have the whole of each read (up to max_line bytes
     * of lines: 5,000 here, 21,845 with "-h") answered in one go, however
     * long that took, while every other session waited: two clients
     * flooding -h and help held another's num-running for about a second.
     * One turn of the control thread now answers at most one batch per
     * session, and the rest follows in the next turns without new input. */
    enum { N = 5000 };
    tp_pool *p = general_pool(3);
    tp_control *c = tp_control_new_tcp(p, "127.0.0.1", "0", NULL);
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(tp__ctl_manual_open(c), TP_OK);
    int a[2], b[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, a), 0);
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, b), 0);
    ck_assert_int_eq(tp__ctl_manual_adopt(c, a[0]), TP_OK);
    ck_assert_int_eq(tp__ctl_manual_adopt(c, b[0]), TP_OK);
    size_t len = 3 + 12 * N;
    char *req = malloc(len);
    ck_assert_ptr_nonnull(req);
    memcpy(req, "{}\n", 3);
    for (int i = 0; i < N; i++)
        memcpy(req + 3 + 12 * i, "num-running\n", 12);
    ck_assert_int_eq(send(a[1], req, len, 0), (ssize_t)len);
    free(req);
    ck_assert_int_eq(send(b[1], "{}\nnum-running\n", 15, 0), 15);
    tp__ctl_manual_turn(c, 1000);
    /* Both handshakes and b's request are answered in that turn; a got a
     * share of its answers only. */
    ck_assert_uint_eq(lines_available(b[1]), 2);
    size_t got = lines_available(a[1]);
    ck_assert_uint_ge(got, 2);
    ck_assert_msg(got < N / 2, "one turn answered %zu of %d + 1 lines", got, N);
    /* The rest arrives without further input: every turn finds work (a
     * lost wake-up would leave turns timing out with nothing answered). */
    for (int turns = 0; got < N + 1 && turns < N; turns++) {
        tp__ctl_manual_turn(c, 1000);
        got += lines_available(a[1]);
    }
    ck_assert_uint_eq(got, N + 1);
    close(a[1]);
    close(b[1]);
    tp_control_free(c);
    tp_pool_free(p);
}
END_TEST

START_TEST(client_vanishing_mid_line_costs_nothing)
{
    tp_pool *p = general_pool(3);
    tp_control *c = tcp_server(p, NULL);
    client *cl = text_client(c, "TaskPool-demo");
    client_send(cl, "num-runn", 8);
    client_close(cl);
    cl = client_tcp(tp_control_port(c));
    client_send(cl, "{\"terminal_wi", 13);
    client_close(cl);
    cl = text_client(c, "TaskPool-demo");
    CMD_IS(cl, "num-running", "0");
    client_close(cl);
    finish(c, p);
}
END_TEST

START_TEST(half_closed_client_gets_every_response)
{
    /* A client may send its requests, shut down its writing side (as
     * "nc -N" does) and only then read. The server used to close the
     * session at the end of input, dropping every response still waiting
     * to be written: 49 of 300 help texts arrived. */
    char path[108];
    sock_path(path, sizeof path, "half");
    tp_pool *p = general_pool(3);
    tp_control *c = tp_control_new_unix(p, path, NULL);
    ck_assert_int_eq(tp_control_start(c), TP_OK);
    client *a = client_unix(path);
    client *b = client_unix(path);
    client_hello(b, "{}", "TaskPool-demo");
    enum { N = 300 }; /* about 650 KB of help, more than a socket holds */
    char *req = malloc(3 + 3 * N + 1);
    strcpy(req, "{}\n");
    for (int i = 0; i < N; i++)
        strcat(req + 3 + 3 * i, "-h\n");
    client_send(a, req, strlen(req));
    free(req);
    ck_assert_int_eq(shutdown(a->fd, SHUT_WR), 0);
    /* Once b is answered, the server has seen the end of a's input (a is
     * polled first, and a Unix socket's shutdown is visible at once). */
    CMD_IS(b, "num-running", "0");
    char *l = client_line(a);
    ck_assert_str_eq(l, "TaskPool-demo");
    free(l);
    /* Each response is the help text and a blank line. */
    char *help =
        tp__ctl_help_top(tp__ctl_commands, tp__ctl_ncommands, false, 80);
    ck_assert_ptr_nonnull(help);
    size_t len = strlen(help) + 1;
    for (int i = 0; i < N; i++) {
        char *r = client_read_n(a, len);
        ck_assert_msg(strlen(r) == len, "response %d of %d cut short", i + 1,
                      N);
        ck_assert_msg(strncmp(r, help, len - 1) == 0 && r[len - 1] == '\n',
                      "response %d: %.60s", i + 1, r);
        free(r);
    }
    free(help);
    ck_assert(client_eof(a)); /* then the server closes */
    client_close(a);
    client_close(b);
    finish(c, p);
}
END_TEST

START_TEST(exit_closes_the_session)
{
    tp_pool *p = general_pool(3);
    tp_control *c = tcp_server(p, NULL);
    client *cl = text_client(c, "TaskPool-demo");
    CMD_IS(cl, "exit", "ok");
    ck_assert(client_eof(cl));
    client_close(cl);
    finish(c, p);
}
END_TEST

START_TEST(max_clients_refuses_extra_clients)
{
    tp_pool *p = general_pool(3);
    tp_control_opts o = {.max_clients = 2};
    tp_control *c = tcp_server(p, &o);
    client *a = text_client(c, "TaskPool-demo");
    client *b = text_client(c, "TaskPool-demo");
    client *x = client_tcp(tp_control_port(c));
    char *l = client_line(x);
    ck_assert_str_eq(l, "error: too many clients (at most 2)");
    free(l);
    ck_assert(client_eof(x));
    client_close(x);
    client_close(a);
    /* A slot is free again once the server noticed a's departure. */
    CMD_IS(b, "num-running", "0");
    client *d = NULL;
    for (int i = 0; i < 1000 && !d; i++) {
        d = client_tcp(tp_control_port(c));
        client_send_line(d, "{}");
        l = client_line(d);
        if (strcmp(l, "TaskPool-demo") != 0) {
            client_close(d);
            d = NULL;
        }
        free(l);
    }
    ck_assert_ptr_nonnull(d);
    client_close(d);
    client_close(b);
    finish(c, p);
}
END_TEST

START_TEST(idle_sessions_are_closed)
{
    tp_pool *p = general_pool(3);
    tp_control_opts o = {.idle_timeout = 0.2};
    tp_control *c = tcp_server(p, &o);
    client *cl = text_client(c, "TaskPool-demo");
    ck_assert(client_eof(cl));
    client_close(cl);
    finish(c, p);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Unix sockets                                                             */
/* ------------------------------------------------------------------------ */

START_TEST(unix_socket_is_private_and_removed)
{
    char path[108];
    sock_path(path, sizeof path, "perm");
    tp_pool *p = simple_pool();
    tp_control *c = tp_control_new_unix(p, path, NULL);
    ck_assert_int_eq(tp_control_start(c), TP_OK);
    ck_assert_int_eq(tp_control_port(c), -1);
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert(S_ISSOCK(st.st_mode));
    ck_assert_int_eq(st.st_mode & 0777, 0600);
    client *cl = client_unix(path);
    client_hello(cl, "{\"terminal_width\": 80}", "SimpleTaskPool-0");
    CMD_IS(cl, "start 1", "start-group-0");
    client_close(cl);
    ck_assert_int_eq(tp_control_stop(c), TP_OK);
    ck_assert(!tp_control_is_serving(c));
    ck_assert_int_ne(stat(path, &st), 0);
    ck_assert_int_eq(tp_control_stop(c), TP_OK);
    finish(c, p);
}
END_TEST

START_TEST(unix_stale_socket_is_replaced)
{
    char path[108];
    sock_path(path, sizeof path, "stale");
    /* A socket file that nobody listens on. */
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    close(fd);
    tp_pool *p = general_pool(3);
    tp_control *c = tp_control_new_unix(p, path, NULL);
    ck_assert_int_eq(tp_control_start(c), TP_OK);
    client *cl = client_unix(path);
    client_hello(cl, "{}", "TaskPool-demo");
    client_close(cl);
    finish(c, p);
}
END_TEST

START_TEST(unix_live_socket_is_not_replaced)
{
    char path[108];
    sock_path(path, sizeof path, "live");
    tp_pool *p = general_pool(3);
    tp_control *c = tp_control_new_unix(p, path, NULL);
    ck_assert_int_eq(tp_control_start(c), TP_OK);
    tp_control *c2 = tp_control_new_unix(p, path, NULL);
    ck_assert_int_eq(tp_control_start(c2), TP_ESYS);
    ck_assert_int_eq(errno, EADDRINUSE);
    ck_assert(!tp_control_is_serving(c2));
    tp_control_free(c2);
    /* The first server still owns its socket. */
    client *cl = client_unix(path);
    client_hello(cl, "{}", "TaskPool-demo");
    client_close(cl);
    finish(c, p);
}
END_TEST

START_TEST(unix_regular_file_is_not_replaced)
{
    char path[108];
    sock_path(path, sizeof path, "file");
    FILE *f = fopen(path, "w");
    fputs("precious", f);
    fclose(f);
    tp_pool *p = general_pool(3);
    tp_control *c = tp_control_new_unix(p, path, NULL);
    ck_assert_int_eq(tp_control_start(c), TP_ESYS);
    ck_assert_int_eq(errno, EEXIST);
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert(S_ISREG(st.st_mode));
    unlink(path);
    finish(c, p);
}
END_TEST

START_TEST(bad_arguments_are_refused)
{
    tp_pool *p = general_pool(3);
    ck_assert_ptr_null(tp_control_new_tcp(NULL, "127.0.0.1", "0", NULL));
    ck_assert_ptr_null(tp_control_new_tcp(p, NULL, "0", NULL));
    ck_assert_ptr_null(tp_control_new_unix(p, "", NULL));
    char longpath[200];
    memset(longpath, 'x', sizeof longpath - 1);
    longpath[sizeof longpath - 1] = '\0';
    ck_assert_ptr_null(tp_control_new_unix(p, longpath, NULL));
    tp_control *c = tp_control_new_tcp(p, "127.0.0.1", "no-such-service", NULL);
    ck_assert_int_eq(tp_control_start(c), TP_ESYS);
    tp_control_free(c);
    tp_control_free(NULL);
    ck_assert_int_eq(tp_control_stop(NULL), TP_EINVAL);
    ck_assert_int_eq(tp_control_start(NULL), TP_EINVAL);
    ck_assert(!tp_control_is_serving(NULL));
    tp_pool_free(p);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Concurrency                                                              */
/* ------------------------------------------------------------------------ */

START_TEST(two_hundred_concurrent_clients)
{
    tp_pool *p = simple_pool();
    tp_control_opts o = {.max_clients = 256};
    tp_control *c = tcp_server(p, &o);
    enum { N = 200 };
    client **cl = calloc(N, sizeof *cl);
    for (int i = 0; i < N; i++) {
        cl[i] = client_tcp(tp_control_port(c));
        client_send_line(cl[i], "{\"terminal_width\": 80}");
    }
    for (int i = 0; i < N; i++) {
        char *l = client_line(cl[i]);
        ck_assert_str_eq(l, "SimpleTaskPool-0");
        free(l);
        client_send_line(cl[i], i % 2 ? "func-name" : "num-running");
    }
    for (int i = 0; i < N; i++) {
        char *l = client_line(cl[i]);
        ck_assert_str_eq(l, i % 2 ? "worker" : "0");
        free(l);
    }
    for (int i = 0; i < N; i++)
        client_close(cl[i]);
    free(cl);
    finish(c, p);
}
END_TEST

START_TEST(blocking_flush_does_not_stall_other_sessions)
{
    tp_pool *p = general_pool(3);
    tp_control *c = tcp_server(p, NULL);
    client *a = text_client(c, "TaskPool-demo");
    client *b = text_client(c, "TaskPool-demo");
    CMD_IS(a, "apply stubborn", "apply-stubborn-group-0");
    ck_assert(counter_wait(&started, 1));
    CMD_IS(a, "cancel 0", "ok");
    /* flush waits for the cancelled task, which ignores cancellation. */
    client_send_line(a, "flush");
    client_send_line(a, "num-cancelled"); /* queued behind flush */
    CMD_IS(b, "num-cancelled", "1");
    CMD_IS(b, "is-locked", "False");
    struct pollfd pf = {a->fd, POLLIN, 0};
    ck_assert_int_eq(poll(&pf, 1, 0), 0); /* flush has not answered */
    gate_open(&stubborn_gate);
    char *l = client_line(a);
    ck_assert_str_eq(l, "ok");
    free(l);
    l = client_line(a);
    ck_assert_str_eq(l, "0");
    free(l);
    client_close(a);
    client_close(b);
    finish(c, p);
}
END_TEST

START_TEST(helper_commands_after_any_blank_stay_off_the_control_thread)
{
    /* The tokenizer ends a word at any isspace() byte, the check for a
     * command that runs on a helper thread only at a space or tab:
     * "until-closed" followed by a vertical tab (or after a form feed) ran
     * on the control thread, which then waited for the pool to close and
     * answered nobody (found by fuzz_server). */
    tp_pool *p = general_pool(3);
    tp_control *c = tcp_server(p, NULL);
    client *a = text_client(c, "TaskPool-demo");
    client *b = text_client(c, "TaskPool-demo");
    client *d = text_client(c, "TaskPool-demo");
    client_send_line(a, "until-closed\v");
    client_send_line(d, "\f\runtil-closed");
    CMD_IS(b, "num-running", "0");
    CMD_IS(b, "is-locked", "False");
    client_close(a);
    client_close(d);
    client_close(b);
    finish(c, p);
}
END_TEST

/* Threads of this process, from /proc/self/status. */
static long thread_count(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    ck_assert_ptr_nonnull(f);
    char line[256];
    long n = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "Threads: %ld", &n) == 1)
            break;
    fclose(f);
    return n;
}

static long want_threads;

static bool threads_are_wanted(void *arg)
{
    (void)arg;
    return thread_count() == want_threads;
}

/* cl if its handshake is accepted; else closes it and returns NULL (a
 * refused client may find the socket closed before it sends). */
static client *admit(client *cl)
{
    bool in = send(cl->fd, "{}\n", 3, MSG_NOSIGNAL) == 3;
    char *l = in ? client_line(cl) : NULL;
    in = l && strcmp(l, "TaskPool-demo") == 0;
    free(l);
    if (in)
        return cl;
    client_close(cl);
    return NULL;
}

typedef struct admission {
    const char *path; /* the Unix socket, or NULL: c's TCP port */
    tp_control *c;
    client *cl;
} admission;

static bool admitted_now(void *arg)
{
    admission *a = arg;
    a->cl = admit(a->path ? client_unix(a->path)
                          : client_tcp(tp_control_port(a->c)));
    return a->cl != NULL;
}

/* A client of the server at path (or c's TCP port), once a place is
 * free; each refused attempt is retried a millisecond later. */
static client *admitted_to(const char *path, tp_control *c)
{
    admission a = {path, c, NULL};
    ck_assert_msg(wait_until(admitted_now, &a), "no place became free");
    return a.cl;
}

static client *admitted_unix(const char *path)
{
    return admitted_to(path, NULL);
}

START_TEST(vanished_client_does_not_leave_its_blocking_command_running)
{
    /* A blocking command runs on a helper thread. A client that sent
     * until-closed and hung up used to leave its helper waiting until the
     * pool closed: one thread more per such client, without bound. */
    char path[108];
    sock_path(path, sizeof path, "vanish");
    tp_pool *p = general_pool(3);
    tp_control_opts o = {.max_clients = 1};
    tp_control *c = tp_control_new_unix(p, path, &o);
    ck_assert_int_eq(tp_control_start(c), TP_OK);
    long base = thread_count();
    for (int i = 0; i < 5; i++) {
        /* The one place is free once the last round's job was collected,
         * and its helper then waits for the next job: one helper serves
         * every round. A helper still stuck in until-closed would keep the
         * place, and a new helper would make two. */
        client *cl = admitted_unix(path);
        client_send_line(cl, "until-closed");
        want_threads = base + 1;
        ck_assert_msg(wait_until(threads_are_wanted, NULL),
                      "round %d: %ld threads, want %ld", i, thread_count(),
                      base + 1);
        client_close(cl);
    }
    /* The server still serves, and the pool was never closed. */
    client *cl = admitted_unix(path);
    CMD_IS(cl, "is-locked", "False");
    client_close(cl);
    tp_control_free(c); /* joins the idle helper */
    /* The control thread and the helper are gone (counted from base, not
     * from before the server started: ThreadSanitizer starts a thread of
     * its own with the process's first pthread_create). A joined thread
     * may still be listed for a moment: the kernel wakes its joiner before
     * it has quite gone. */
    want_threads = base - 1;
    ck_assert_msg(wait_until(threads_are_wanted, NULL), "%ld threads, want %ld",
                  thread_count(), base - 1);
    tp_pool_free(p);
}
END_TEST

static double clock_seconds(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

START_TEST(out_of_descriptors_pauses_accepting_and_resumes)
{
    /* Check's fork mode runs this in a process of its own, so lowering the
     * descriptor limit affects nothing else. Clients and server share the
     * process: a session costs two descriptors. */
    tp_pool *p = general_pool(3);
    tp_control *c = tcp_server(p, NULL);
    client *a = text_client(c, "TaskPool-demo");
    /* Leave exactly three descriptors free below the limit: the two ends
     * of session b and the client end of x, so that the server has none
     * left to accept x with. */
    struct rlimit rl;
    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    int free_fds = 0, limit = 0;
    while (free_fds < 3) {
        if (fcntl(limit, F_GETFD) < 0 && errno == EBADF)
            free_fds++;
        limit++;
    }
    ck_assert_uint_le((rlim_t)limit, rl.rlim_max);
    rl.rlim_cur = (rlim_t)limit;
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
    client *b = text_client(c, "TaskPool-demo");
    client *x = client_tcp(tp_control_port(c));
    client_send_line(x, "{}");
    /* The process is out of descriptors: x waits in the backlog. */
    ck_assert_int_eq(socket(AF_UNIX, SOCK_STREAM, 0), -1);
    ck_assert_int_eq(errno, EMFILE);
    /* Existing sessions keep answering meanwhile... */
    CMD_IS(a, "num-running", "0");
    CMD_IS(b, "is-locked", "False");
    /* ...and the control thread does not spin on the readable listener:
     * over a quarter of a second the process uses far less than a core. */
    double cpu0 = clock_seconds(CLOCK_PROCESS_CPUTIME_ID);
    double wall0 = clock_seconds(CLOCK_MONOTONIC);
    struct pollfd pf = {x->fd, POLLIN, 0};
    ck_assert_int_eq(poll(&pf, 1, 250), 0); /* x is not served */
    double cpu = clock_seconds(CLOCK_PROCESS_CPUTIME_ID) - cpu0;
    double wall = clock_seconds(CLOCK_MONOTONIC) - wall0;
    ck_assert_msg(cpu < 0.5 * wall, "%.3f s of CPU in %.3f s", cpu, wall);
    CMD_IS(b, "num-running", "0");
    /* Once a leaves, its descriptors are free again and x is served. */
    client_close(a);
    char *l = client_line(x);
    ck_assert_ptr_nonnull(l);
    ck_assert_str_eq(l, "TaskPool-demo");
    free(l);
    CMD_IS(x, "is-full", "False");
    CMD_IS(b, "num-running", "0");
    client_close(x);
    client_close(b);
    finish(c, p);
}
END_TEST

START_TEST(stop_with_clients_connected)
{
    tp_pool *p = general_pool(3);
    tp_control *c = tcp_server(p, NULL);
    client *a = text_client(c, "TaskPool-demo");
    client *b = text_client(c, "TaskPool-demo");
    client *h = client_tcp(tp_control_port(c)); /* mid-handshake */
    client_send_line(b, "until-closed");        /* a blocking command */
    CMD_IS(a, "num-running", "0");
    ck_assert_int_eq(tp_control_stop(c), TP_OK);
    ck_assert(!tp_control_is_serving(c));
    ck_assert_int_eq(tp_control_port(c), -1);
    ck_assert(client_eof(a));
    ck_assert(client_eof(b));
    ck_assert(client_eof(h));
    client_close(a);
    client_close(b);
    client_close(h);
    finish(c, p);
}
END_TEST

START_TEST(two_servers_serve_one_pool)
{
    char path[108];
    sock_path(path, sizeof path, "two");
    tp_pool *p = simple_pool();
    tp_control *t = tcp_server(p, NULL);
    tp_control *u = tp_control_new_unix(p, path, NULL);
    ck_assert_int_eq(tp_control_start(u), TP_OK);
    client *a = text_client(t, "SimpleTaskPool-0");
    client *b = client_unix(path);
    client_hello(b, "{}", "SimpleTaskPool-0");
    CMD_IS(a, "start 2", "start-group-0");
    ck_assert(counter_wait(&started, 2));
    CMD_IS(b, "num-running", "2");
    client_close(a);
    client_close(b);
    tp_control_free(u);
    finish(t, p);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Hardening (issue 7): each test failed before its fix                     */
/* ------------------------------------------------------------------------ */

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* True if fd has something to read (or an end) within ms milliseconds. */
static bool readable_within(int fd, int ms)
{
    struct pollfd pf = {fd, POLLIN, 0};
    return poll(&pf, 1, (int)(ms * time_multiplier())) == 1;
}

/* A text client, retried while the server still counts a session that
 * just left (it notices the departure on its next turn). */
static client *admitted(tp_control *c)
{
    return admitted_to(NULL, c);
}

START_TEST(tcp_fin_during_until_closed_frees_place_and_helper)
{
    /* A TCP client that closed normally while until-closed ran for it kept
     * its place and its helper thread until the pool closed: with
     * max_clients 1, every later client was refused. */
    tp_pool *p = general_pool(3);
    tp_control_opts o = {.max_clients = 1};
    tp_control *c = tcp_server(p, &o);
    long base = thread_count();
    for (int i = 0; i < 3; i++) {
        /* Admitted once the last round's job was collected; its helper
         * then serves this round too (see the Unix-socket test above). */
        client *cl = admitted(c);
        client_send_line(cl, "until-closed");
        want_threads = base + 1;
        ck_assert_msg(wait_until(threads_are_wanted, NULL),
                      "round %d: %ld threads, want %ld", i, thread_count(),
                      base + 1);
        client_close(cl); /* a FIN, no RST: nothing unread */
    }
    /* The place is free again (before the fix, never). */
    client *cl = admitted(c);
    CMD_IS(cl, "is-locked", "False");
    client_close(cl);
    tp_control_free(c); /* joins the idle helper */
    /* The control thread and the helper are gone (counted from base, not
     * from before the server started: ThreadSanitizer starts a thread of
     * its own with the process's first pthread_create). A joined thread
     * may still be listed for a moment: the kernel wakes its joiner before
     * it has quite gone. */
    want_threads = base - 1;
    ck_assert_msg(wait_until(threads_are_wanted, NULL), "%ld threads, want %ld",
                  thread_count(), base - 1);
    tp_pool_free(p);
}
END_TEST

START_TEST(tcp_half_close_during_flush_abandons_later_until_closed)
{
    /* The input ends (FIN) while flush waits: flush's reply is still
     * written for a client that reads, and an until-closed queued behind
     * it gives up at once instead of waiting for a client that has said
     * all it will (it used to start after flush and wait forever). */
    tp_pool *p = general_pool(3);
    tp_control *c = tcp_server(p, NULL);
    client *cl = text_client(c, "TaskPool-demo");
    CMD_IS(cl, "apply stubborn", "apply-stubborn-group-0");
    ck_assert(counter_wait(&started, 1));
    CMD_IS(cl, "cancel 0", "ok");
    long base = thread_count();
    client_send_line(cl, "flush");
    want_threads = base + 1;
    ck_assert(wait_until(threads_are_wanted, NULL));
    client_send_line(cl, "until-closed");
    client_send_line(cl, "num-running");
    ck_assert_int_eq(shutdown(cl->fd, SHUT_WR), 0);
    ck_assert(!readable_within(cl->fd, 50)); /* flush still waits */
    gate_open(&stubborn_gate);
    char *l = client_line(cl);
    ck_assert_str_eq(l, "ok");
    free(l);
    l = client_line(cl);
    ck_assert_str_eq(l, "until-closed gave up: the client's input ended (it "
                        "closed the connection or shut down its writing "
                        "side).");
    free(l);
    l = client_line(cl);
    ck_assert_str_eq(l, "0");
    free(l);
    ck_assert(client_eof(cl));
    client_close(cl);
    finish(c, p);
}
END_TEST

START_TEST(tcp_fin_during_gather_and_close_is_answered_then_closed)
{
    tp_pool *p = general_pool(3);
    tp_control *c = tcp_server(p, NULL);
    client *cl = text_client(c, "TaskPool-demo");
    CMD_IS(cl, "apply stubborn", "apply-stubborn-group-0");
    ck_assert(counter_wait(&started, 1));
    client_send_line(cl, "gather-and-close");
    client_send_line(cl, "is-locked");
    ck_assert_int_eq(shutdown(cl->fd, SHUT_WR), 0);
    ck_assert(!readable_within(cl->fd, 50));
    gate_open(&stubborn_gate);
    char *l = client_line(cl);
    ck_assert_str_eq(l, "ok");
    free(l);
    l = client_line(cl);
    ck_assert_str_eq(l, "True");
    free(l);
    ck_assert(client_eof(cl));
    client_close(cl);
    finish(c, p);
}
END_TEST

static gate discard_gate;
static counter discarded;

static void slow_discard(void *arg, void *cb_arg)
{
    (void)arg, (void)cb_arg;
    counter_add(&discarded, 1);
    gate_pass(&discard_gate, NULL);
}

static int noop_task(tp_task *task, void *arg)
{
    (void)task, (void)arg;
    return 0;
}

/* Runs cmd while dropping the first pending start blocks: other sessions
 * must be served meanwhile. */
static void cancel_off_the_control_thread(const char *cmd)
{
    gate_init(&discard_gate);
    counter_init(&discarded);
    tp_pool *p = general_pool(1);
    ck_assert_int_eq(tp_set_pool_size(p, 0), TP_OK); /* nothing starts */
    tp_opts o = {.group_name = "g", .discard = slow_discard};
    ck_assert_int_eq(tp_apply(p, noop_task, NULL, 3, &o, NULL), TP_OK);
    tp_control *c = tcp_server(p, NULL);
    client *a = text_client(c, "TaskPool-demo");
    client *b = text_client(c, "TaskPool-demo");
    client_send_line(a, cmd);
    ck_assert(counter_wait(&discarded, 1));
    /* The control thread still answers while the cancel is stuck. */
    client_send_line(b, "num-running");
    ck_assert_msg(readable_within(b->fd, 2000),
                  "the control thread is busy with %s", cmd);
    char *l = client_line(b);
    ck_assert_str_eq(l, "0");
    free(l);
    ck_assert(!readable_within(a->fd, 0));
    gate_open(&discard_gate);
    l = client_line(a);
    ck_assert_str_eq(l, "ok");
    free(l);
    client_close(a);
    client_close(b);
    finish(c, p);
    gate_destroy(&discard_gate);
    counter_destroy(&discarded);
}

START_TEST(cancel_all_runs_off_the_control_thread)
{
    cancel_off_the_control_thread("cancel-all");
}
END_TEST

START_TEST(cancel_group_runs_off_the_control_thread)
{
    cancel_off_the_control_thread("cancel-group g");
}
END_TEST

START_TEST(spawn_counts_above_max_spawn_are_usage_errors)
{
    tp_pool *p = general_pool(0);
    tp_control *c = tcp_server(p, NULL);
    client *cl = text_client(c, "TaskPool-demo");
    /* The default: a million. */
    CMD_IS(cl, "pool-size 0", "ok");
    const char *huge[] = {"apply sleep -n 1000001",
                          "apply sleep --num=9223372036854775807"};
    for (int i = 0; i < 2; i++) {
        client_send_line(cl, huge[i]);
        char *t = client_read_until(cl, "\n\n");
        ck_assert_ptr_nonnull(t);
        ck_assert_msg(strncmp(t, "usage: apply [-h]", 17) == 0, "%s", t);
        ck_assert_msg(strstr(t, "\napply: error: argument -n/--num: at most "
                                "1000000 tasks per command (the server's "
                                "max_spawn), not ") != NULL,
                      "%s", t);
        free(t);
    }
    CMD_IS(cl, "apply sleep -n 1000000 -g big", "big");
    CMD_IS(cl, "cancel-all", "ok");
    client_close(cl);
    tp_control_free(c);
    /* A server's own limit, for start too. */
    tp_pool *sp = simple_pool();
    tp_control_opts o = {.max_spawn = 10};
    c = tcp_server(sp, &o);
    cl = text_client(c, "SimpleTaskPool-0");
    CMD_BLOCK_IS(cl, "start 11",
                 "usage: start [-h] num\nstart: error: argument num: at most "
                 "10 tasks per command (the server's max_spawn), not 11\n\n");
    CMD_IS(cl, "start 10", "start-group-0");
    ck_assert(counter_wait(&started, 10));
    client_close(cl);
    finish(c, sp);
    tp_pool_free(p);
}
END_TEST

START_TEST(handshake_deadline_is_not_extended_by_bytes)
{
    /* A client trickling bytes into its handshake used to keep it open for
     * ever (every byte reset the idle timer). */
    tp_pool *p = general_pool(3);
    tp_control_opts o = {.handshake_timeout = 0.3, .idle_timeout = 2};
    tp_control *c = tcp_server(p, &o);
    client *cl = client_tcp(tp_control_port(c));
    double t0 = mono();
    bool closed = false;
    while (!closed && mono() - t0 < 10 * time_multiplier()) {
        if (send(cl->fd, " ", 1, MSG_NOSIGNAL) != 1)
            break;
        closed = readable_within(cl->fd, 50);
    }
    char *l = client_line(cl);
    ck_assert_ptr_nonnull(l);
    ck_assert_str_eq(l, "error: no handshake within 0.3 seconds");
    free(l);
    ck_assert(client_eof(cl));
    ck_assert_msg(mono() - t0 < 1.5 * time_multiplier(), "closed after %.2f s",
                  mono() - t0);
    client_close(cl);
    /* A session past its handshake is not subject to it: open after more
     * than the handshake's 0.3 s (and less than the idle 2 s). */
    cl = text_client(c, "TaskPool-demo");
    struct pollfd pf = {cl->fd, POLLIN, 0};
    ck_assert_int_eq(poll(&pf, 1, 500), 0);
    CMD_IS(cl, "num-running", "0");
    client_close(cl);
    finish(c, p);
}
END_TEST

START_TEST(unfinished_handshakes_do_not_lock_out_a_client_with_the_token)
{
    /* Connections that never complete a handshake used to take the places
     * of sessions: with max_clients 2, two of them locked everybody out. */
    tp_pool *p = general_pool(3);
    tp_control_opts o = {
        .token = "s3cret", .max_clients = 2, .max_handshakes = 4};
    tp_control *c = tcp_server(p, &o);
    enum { N = 12 };
    client *junk[N];
    for (int i = 0; i < N; i++) {
        junk[i] = client_tcp(tp_control_port(c));
        client_send(junk[i], "{\"terminal_width\"", 17);
    }
    for (int round = 0; round < 2; round++) {
        client *cl = client_tcp(tp_control_port(c));
        client_hello(cl, "{\"token\": \"s3cret\"}", "TaskPool-demo");
        CMD_IS(cl, "num-running", "0");
        for (int i = 0; i < N; i++) /* they keep trickling */
            (void)send(junk[i]->fd, " ", 1, MSG_NOSIGNAL);
        client_close(cl);
    }
    /* Two sessions may exist; a third completing client is refused. */
    client *a = client_tcp(tp_control_port(c));
    client_hello(a, "{\"token\": \"s3cret\"}", "TaskPool-demo");
    client *b = client_tcp(tp_control_port(c));
    client_hello(b, "{\"token\": \"s3cret\"}", "TaskPool-demo");
    client *x = client_tcp(tp_control_port(c));
    char *l = client_line(x);
    ck_assert_str_eq(l, "error: too many clients (at most 2)");
    free(l);
    client_close(x);
    for (int i = 0; i < N; i++)
        client_close(junk[i]);
    client_close(a);
    client_close(b);
    finish(c, p);
}
END_TEST

START_TEST(refused_token_is_answered_after_a_delay)
{
    /* A wrong token used to be answered at once: 2,000 guesses took half a
     * second. The answer now waits half a second, without stalling the
     * control thread. */
    tp_pool *p = general_pool(3);
    tp_control_opts o = {.token = "s3cret"};
    tp_control *c = tcp_server(p, &o);
    client *good = client_tcp(tp_control_port(c));
    client_hello(good, "{\"token\": \"s3cret\"}", "TaskPool-demo");
    client *bad = client_tcp(tp_control_port(c));
    double t0 = mono();
    client_send_line(bad, "{\"token\": \"s3crex\"}");
    CMD_IS(good, "num-running", "0"); /* served meanwhile */
    ck_assert(!readable_within(bad->fd, 0));
    char *l = client_line(bad);
    double waited = mono() - t0;
    ck_assert_str_eq(l, "error: wrong token");
    free(l);
    ck_assert_msg(waited >= 0.45, "answered after %.3f s", waited);
    ck_assert(client_eof(bad));
    client_close(bad);
    client_close(good);
    finish(c, p);
}
END_TEST

/* RFC 3629's grammar of one UTF-8 character, as byte ranges (a second,
 * independent statement of what text.c decodes bit by bit): the length of
 * the character at p[0..len), 0 if none begins there (NUL excluded). */
static size_t rfc3629_char(const unsigned char *p, size_t len)
{
    static const struct {
        unsigned char lo[4], hi[4];
    } forms[] = {
        {{0x01}, {0x7F}},
        {{0xC2, 0x80}, {0xDF, 0xBF}},
        {{0xE0, 0xA0, 0x80}, {0xE0, 0xBF, 0xBF}},
        {{0xE1, 0x80, 0x80}, {0xEC, 0xBF, 0xBF}},
        {{0xED, 0x80, 0x80}, {0xED, 0x9F, 0xBF}},
        {{0xEE, 0x80, 0x80}, {0xEF, 0xBF, 0xBF}},
        {{0xF0, 0x90, 0x80, 0x80}, {0xF0, 0xBF, 0xBF, 0xBF}},
        {{0xF1, 0x80, 0x80, 0x80}, {0xF3, 0xBF, 0xBF, 0xBF}},
        {{0xF4, 0x80, 0x80, 0x80}, {0xF4, 0x8F, 0xBF, 0xBF}},
    };
    for (size_t f = 0; f < sizeof forms / sizeof forms[0]; f++) {
        size_t n = f == 0 ? 1 : f == 1 ? 2 : f < 6 ? 3 : 4;
        size_t k = 0;
        while (k < n && k < len && p[k] >= forms[f].lo[k] &&
               p[k] <= forms[f].hi[k])
            k++;
        if (k == n)
            return n;
    }
    return 0;
}

START_TEST(utf8_check_and_scrub_match_rfc3629)
{
    /* text.c checks ASCII 8 bytes at a time and decodes the rest inline:
     * both functions are compared with the byte-range grammar on strings
     * of every length up to 40 drawn from the bytes where the rules
     * change, mostly ASCII so that runs cross the 8-byte steps. */
    static const unsigned char alphabet[] = {
        'a',  'a',  'a',  'a',  'a',  'a',  'a',  'a',  0x00, 0x7F, 0x80,
        0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF, 0xE0, 0xE1,
        0xEC, 0xED, 0xEE, 0xEF, 0xF0, 0xF1, 0xF3, 0xF4, 0xF5, 0xF8, 0xFF};
    uint32_t x = 12345;
    for (int round = 0; round < 200000; round++) {
        unsigned char s[41], want[41];
        size_t len = (size_t)round % 41;
        for (size_t i = 0; i < len; i++) {
            x = x * 1103515245u + 12345u;
            s[i] = alphabet[(x >> 16) % sizeof alphabet];
        }
        bool valid = true;
        for (size_t i = 0; i < len;) {
            size_t n = rfc3629_char(s + i, len - i);
            if (n) {
                memcpy(want + i, s + i, n);
                i += n;
            } else {
                valid = false;
                want[i++] = '?';
            }
        }
        ck_assert_int_eq(tp__ctl_utf8_valid((const char *)s, len), valid);
        tp__ctl_scrub_utf8((char *)s, len);
        ck_assert_msg(memcmp(s, want, len) == 0, "round %d", round);
        ck_assert(tp__ctl_utf8_valid((const char *)s, len));
    }
}
END_TEST

START_TEST(token_comparison)
{
    ck_assert(tp__ctl_token_equal("s3cret", "s3cret"));
    ck_assert(!tp__ctl_token_equal("s3cret", "s3cre"));
    ck_assert(!tp__ctl_token_equal("s3cret", "s3cret!"));
    ck_assert(!tp__ctl_token_equal("s3cret", "S3cret"));
    ck_assert(!tp__ctl_token_equal("s3cret", ""));
    ck_assert(!tp__ctl_token_equal("", "x"));
    ck_assert(tp__ctl_token_equal("", ""));
}
END_TEST

START_TEST(unix_path_too_long_is_refused_at_creation)
{
    /* The socket is bound as DIR/.tpctl-XXXXXX/s before it is renamed to
     * DIR/NAME: a DIR of 92 bytes or more used to pass creation and fail
     * at start with "File name too long". */
    tp_pool *p = general_pool(3);
    char dir[128], path[160];
    int n = snprintf(dir, sizeof dir, "/tmp/tpctl-%d-", (int)getpid());
    memset(dir + n, 'd', (size_t)(91 - n));
    dir[91] = '\0';
    snprintf(path, sizeof path, "%s/s", dir);
    ck_assert_int_eq(mkdir(dir, 0700), 0);
    tp_control *c = tp_control_new_unix(p, path, NULL);
    ck_assert_ptr_nonnull(c); /* 91 bytes: fits, and starts */
    ck_assert_int_eq(tp_control_start(c), TP_OK);
    client *cl = client_unix(path);
    client_hello(cl, "{}", "TaskPool-demo");
    client_close(cl);
    tp_control_free(c);
    ck_assert_int_eq(rmdir(dir), 0);
    char longer[160];
    snprintf(longer, sizeof longer, "%sd/s", dir); /* 92 */
    errno = 0;
    ck_assert_ptr_null(tp_control_new_unix(p, longer, NULL));
    ck_assert_int_eq(errno, ENAMETOOLONG);
    char flat[160]; /* no slash: the directory is "." */
    memset(flat, 'f', 108);
    flat[108] = '\0';
    ck_assert_ptr_null(tp_control_new_unix(p, flat, NULL));
    flat[100] = '\0';
    c = tp_control_new_unix(p, flat, NULL);
    ck_assert_ptr_nonnull(c);
    tp_control_free(c);
    tp_pool_free(p);
}
END_TEST

START_TEST(tcp_port_is_validated_at_creation)
{
    /* "99999" used to start and bind port 34463. */
    tp_pool *p = general_pool(3);
    const char *bad[] = {"99999", "65536", "-1", "+80", "80x", "", "1e3"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        errno = 0;
        ck_assert_msg(tp_control_new_tcp(p, "127.0.0.1", bad[i], NULL) == NULL,
                      "port '%s' accepted", bad[i]);
        ck_assert_int_eq(errno, EINVAL);
    }
    const char *good[] = {"0", "65535", "8080", "http"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        tp_control *c = tp_control_new_tcp(p, "127.0.0.1", good[i], NULL);
        ck_assert_msg(c != NULL, "port '%s' refused", good[i]);
        tp_control_free(c);
    }
    tp_pool_free(p);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Logging (issue 9, item 5)                                                */
/* ------------------------------------------------------------------------ */

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static char log_text[16384];

static void capture(tp_log_level level, const char *message, void *arg)
{
    (void)arg;
    if (level != TP_LOG_DEBUG)
        return;
    pthread_mutex_lock(&log_mu);
    size_t n = strlen(log_text);
    snprintf(log_text + n, sizeof log_text - n, "%s\n", message);
    pthread_mutex_unlock(&log_mu);
}

static bool logged(const char *text)
{
    pthread_mutex_lock(&log_mu);
    bool found = strstr(log_text, text) != NULL;
    pthread_mutex_unlock(&log_mu);
    return found;
}

static bool logged_pred(void *text)
{
    return logged(text);
}

START_TEST(server_logs_sessions_and_commands)
{
    log_text[0] = '\0';
    tp_log_set(capture, NULL, TP_LOG_DEBUG);
    tp_pool *p = general_pool(3);
    tp_control_opts o = {.token = "s3cret", .max_clients = 1};
    tp_control *c = tcp_server(p, &o);
    char opened[64];
    snprintf(opened, sizeof opened, "Opened socket at 127.0.0.1:%d",
             tp_control_port(c));
    ck_assert(logged(opened));
    client *cl = client_tcp(tp_control_port(c));
    client_hello(cl, "{\"token\": \"s3cret\", \"format\": \"json\"}",
                 "{\"ok\":true,\"result\":\"TaskPool-demo\"}");
    cJSON_Delete(client_json(cl, "num-running"));
    cJSON_Delete(client_json(cl, "cancel 99"));
    cJSON_Delete(client_json(cl, "stop"));
    cJSON_Delete(client_json(cl, "-h"));
    cJSON_Delete(client_json(cl, "flush"));
    client *x = client_tcp(tp_control_port(c));
    free(client_line(x)); /* too many clients */
    client_close(x);
    client_close(cl);
    ck_assert(wait_until(logged_pred, "TCPControlClient-0 disconnected"));
    client *bad = client_tcp(tp_control_port(c));
    client_hello(bad, "{\"token\": \"nope\"}", "error: wrong token");
    client_close(bad);
    tp_control_free(c);
    tp_log_set(NULL, NULL, TP_LOG_DEBUG);
    const char *want[] = {
        "TCPControlClient-0 connected (TaskPool-demo, json format)",
        "TCPControlClient-0: 'num-running' -> ok",
        "TCPControlClient-0: 'cancel 99' -> TP_ENOTASK",
        "TCPControlClient-0 got an ArgumentError: 'stop'",
        "TCPControlClient-0 received usage help",
        "TCPControlClient-0: 'flush' -> ok",
        "Refused a client: too many clients (at most 1)",
        "TCPControlClient-1 refused: wrong token",
        "TCPControlClient-0 disconnected",
        "Closed socket at 127.0.0.1:",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        ck_assert_msg(logged(want[i]), "not logged: %s\nlog:\n%s", want[i],
                      log_text);
    tp_pool_free(p);
}
END_TEST

/* A TCP server that requires the token "s3cret", with max_handshakes
 * places for handshakes and a refusal delay of delay seconds, logging to
 * capture; then n guessers, each refused (and logged) before the next
 * connects, so their refusals end in order. */
static tp_control *refusing_server(tp_pool *p, size_t max_handshakes,
                                   double delay, client **bad, int n)
{
    log_text[0] = '\0';
    tp_log_set(capture, NULL, TP_LOG_DEBUG);
    tp_control_opts o = {.token = "s3cret", .max_handshakes = max_handshakes};
    tp_control *c = tp_control_new_tcp(p, "127.0.0.1", "0", &o);
    ck_assert_ptr_nonnull(c);
    c->refuse_delay = delay; /* before the control thread exists */
    ck_assert_int_eq(tp_control_start(c), TP_OK);
    for (int i = 0; i < n; i++) {
        bad[i] = client_tcp(tp_control_port(c));
        client_send_line(bad[i], "{\"token\": \"nope\"}");
        char want[64];
        snprintf(want, sizeof want, "TCPControlClient-%d refused: wrong token",
                 i);
        ck_assert_msg(wait_until(logged_pred, want), "not logged: %s", want);
    }
    return c;
}

/* A client that completed its handshake with refusing_server's token. */
static client *right_token_client(tp_control *c)
{
    client *good = client_tcp(tp_control_port(c));
    client_hello(good, "{\"token\": \"s3cret\"}", "TaskPool-demo");
    return good;
}

/* Closes refusing_server's guessers and client, the server and pool. */
static void refusing_server_done(tp_control *c, tp_pool *p, client **bad,
                                 int n, client *good)
{
    for (int i = 0; i < n; i++)
        client_close(bad[i]);
    client_close(good);
    finish(c, p);
    tp_log_set(NULL, NULL, TP_LOG_DEBUG);
}

START_TEST(refused_clients_do_not_keep_out_the_right_token)
{
    /* A refused connection waiting out its delay held a handshake place:
     * 200 wrong-token clients reconnecting kept a client with the right
     * token waiting 6 s. Refused connections now have 4 * max_handshakes
     * places of their own. The delay is an hour here: before the fix the
     * third guesser was never even read. */
    tp_pool *p = general_pool(3);
    enum { BAD = 7 }; /* one refusal place stays free */
    client *bad[BAD];
    tp_control *c = refusing_server(p, 2, 3600, bad, BAD);
    client *good = right_token_client(c);
    CMD_IS(good, "num-running", "0");
    for (int i = 0; i < BAD; i++) /* every refusal waits out its delay */
        ck_assert_msg(!readable_within(bad[i]->fd, 0), "guesser %d answered",
                      i);
    refusing_server_done(c, p, bad, BAD, good);
}
END_TEST

START_TEST(full_refusal_places_hold_new_connections_back)
{
    /* While 4 * max_handshakes refused connections wait, no connection is
     * accepted, so every refusal waits out its delay and guesses stay
     * bounded however many connections a guesser opens (a version that
     * answered the earliest refusal at once instead let 100 connections
     * guess 7,000 times a second). Here the fifth connection, with the
     * right token, is served only after the first refusal was answered. */
    tp_pool *p = general_pool(3);
    enum { BAD = 4 }; /* every refusal place */
    client *bad[BAD];
    tp_control *c = refusing_server(p, 1, 1.0, bad, BAD);
    client *good = right_token_client(c);
    ck_assert_msg(readable_within(bad[0]->fd, 0),
                  "served before any refusal was answered");
    char *l = client_line(bad[0]);
    ck_assert_str_eq(l, "error: wrong token");
    free(l);
    refusing_server_done(c, p, bad, BAD, good);
}
END_TEST

START_TEST(refused_clients_wait_without_waking_the_control_thread)
{
    /* A refused connection's error waits in its output queue, and the
     * session asked poll for POLLOUT meanwhile: its socket was writable,
     * so every poll returned at once and the control thread spun for the
     * whole delay (1.9 s of CPU in 2 s with one guesser waiting). A turn
     * with only refused connections waiting now sleeps out its timeout. */
    tp_pool *p = general_pool(1);
    tp_control_opts o = {.token = "s3cret"};
    tp_control *c = tp_control_new_tcp(p, "127.0.0.1", "0", &o);
    ck_assert_ptr_nonnull(c);
    c->refuse_delay = 3600;
    ck_assert_int_eq(tp__ctl_manual_open(c), TP_OK);
    int a[2], b[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, a), 0);
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, b), 0);
    ck_assert_int_eq(tp__ctl_manual_adopt(c, a[0]), TP_OK);
    ck_assert_int_eq(tp__ctl_manual_adopt(c, b[0]), TP_OK);
    static const char hello[] = "{\"token\": \"nope\"}\n";
    static const char get[] = "GET /metrics HTTP/1.1\r\n\r\n";
    ck_assert_int_eq(send(a[1], hello, sizeof hello - 1, 0),
                     (ssize_t)sizeof hello - 1);
    ck_assert_int_eq(send(b[1], get, sizeof get - 1, 0),
                     (ssize_t)sizeof get - 1);
    tp__ctl_manual_turn(c, 1000); /* both refused, answers held back */
    size_t ready, hs, refused;
    tp__ctl_count_places(c, &ready, &hs, &refused);
    ck_assert_uint_eq(refused, 2);
    double t0 = mono();
    tp__ctl_manual_turn(c, 300);
    double waited = mono() - t0;
    ck_assert_msg(waited >= 0.25, "a turn returned after %.6f s", waited);
    ck_assert(!readable_within(a[1], 0));
    ck_assert(!readable_within(b[1], 0));
    close(a[1]);
    close(b[1]);
    tp_control_free(c);
    tp_pool_free(p);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Gauges and metrics (issue 9, items 2 and 4)                              */
/* ------------------------------------------------------------------------ */

static atomic_int backlog;

static double read_backlog(void *arg)
{
    return (double)atomic_load((atomic_int *)arg);
}

/* Runs a shell command with the text on its standard input; its exit
 * status. */
static int pipe_to(const char *cmd, const char *text)
{
    FILE *f = popen(cmd, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    return pclose(f);
}

/* The whole output of a shell command (malloc'd). */
static char *run_cmd(const char *cmd)
{
    FILE *f = popen(cmd, "r");
    ck_assert_ptr_nonnull(f);
    size_t cap = 1 << 16, len = 0;
    char *out = malloc(cap);
    size_t n;
    while ((n = fread(out + len, 1, cap - 1 - len, f)) > 0)
        len += n;
    out[len] = '\0';
    pclose(f);
    return out;
}

START_TEST(gauges_are_validated_and_shown_in_stats)
{
    tp_pool *p = general_pool(3);
    tp_control *c = tp_control_new_tcp(p, "127.0.0.1", "0", NULL);
    ck_assert_int_eq(
        tp_control_register_gauge(c, "queue_backlog", read_backlog, &backlog),
        TP_OK);
    ck_assert_int_eq(
        tp_control_register_gauge(c, "queue_backlog", read_backlog, &backlog),
        TP_EGROUP_EXISTS);
    const char *bad[] = {"",
                         "1x",
                         "a-b",
                         "a b",
                         "running",
                         "pool_size",
                         "tasks_running",
                         "threads_extra",
                         "total_refused",
                         "task_wait_seconds_x",
                         "task_run_seconds"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(tp_control_register_gauge(c, bad[i], read_backlog,
                                                &backlog) == TP_EINVAL,
                      "gauge '%s' accepted", bad[i]);
    ck_assert_int_eq(tp_control_register_gauge(c, "x", NULL, NULL), TP_EINVAL);
    ck_assert_int_eq(tp_control_start(c), TP_OK);
    ck_assert_int_eq(tp_control_register_gauge(c, "late", read_backlog, NULL),
                     TP_EINVAL);
    atomic_store(&backlog, 42);
    client *cl = text_client(c, "TaskPool-demo");
    CMD_IS(cl, "stats",
           "pool_size=3 running=0 cancelled=0 ended=0 pending=0 groups=0 "
           "threads=0 idle_threads=0 total_started=0 total_ended=0 "
           "total_cancelled=0 total_failed=0 total_refused=0 total_dropped=0 "
           "queue_backlog=42");
    client_close(cl);
    finish(c, p);
}
END_TEST

static bool five_ended(void *p)
{
    tp_stats s;
    return tp_get_stats(p, &s) == TP_OK && s.total_ended == 5 &&
           s.running == 2 && s.cancelled == 0;
}

static bool four_ended(void *p)
{
    tp_stats s;
    return tp_get_stats(p, &s) == TP_OK && s.total_ended >= 4;
}

/* The value of the sample `name{pool="TaskPool-demo"<labels>}`; fails the
 * test if it is missing. */
static double sample_with(const char *text, const char *name,
                          const char *labels)
{
    char want[256];
    snprintf(want, sizeof want, "\n%s{pool=\"TaskPool-demo\"%s} ", name,
             labels);
    const char *at = strstr(text, want);
    ck_assert_msg(at != NULL, "no %s in:\n%s", want + 1, text);
    return strtod(at + strlen(want), NULL);
}

static double sample(const char *text, const char *name)
{
    return sample_with(text, name, "");
}

/* Buckets cumulative and ascending, one per tp_hist_bounds bound, the
 * +Inf one equal to _count, at least `min` observations, _sum >= 0. */
static void histogram_is_consistent(const char *text, const char *name,
                                    double min)
{
    char bucket[128], le[64];
    snprintf(bucket, sizeof bucket, "%s_bucket", name);
    const double *bounds = tp_hist_bounds();
    double prev = 0;
    for (size_t i = 0; i + 1 < TP_HIST_BUCKETS; i++) {
        snprintf(le, sizeof le, ",le=\"%g\"", bounds[i]);
        double v = sample_with(text, bucket, le);
        ck_assert_double_ge(v, prev);
        prev = v;
    }
    double inf = sample_with(text, bucket, ",le=\"+Inf\"");
    ck_assert_double_ge(inf, prev);
    char count[128], sum[128];
    snprintf(count, sizeof count, "%s_count", name);
    snprintf(sum, sizeof sum, "%s_sum", name);
    ck_assert_double_eq(inf, sample(text, count));
    ck_assert_double_ge(inf, min);
    ck_assert_double_ge(sample(text, sum), 0);
}

START_TEST(metrics_pass_promtool_over_the_protocol_and_http)
{
    tp_pool *p = general_pool(3);
    tp_control_opts o = {.token = "s3cret"};
    tp_control *c = tp_control_new_tcp(p, "127.0.0.1", "0", &o);
    ck_assert_int_eq(tp_control_register(c, "sleep", record), TP_OK);
    ck_assert_int_eq(tp_control_register(c, "noop", noop_task), TP_OK);
    ck_assert_int_eq(
        tp_control_register_gauge(c, "queue_backlog", read_backlog, &backlog),
        TP_OK);
    ck_assert_int_eq(tp_control_start(c), TP_OK);
    atomic_store(&backlog, 7);
    client *cl = client_tcp(tp_control_port(c));
    client_hello(cl, "{\"token\": \"s3cret\"}", "TaskPool-demo");
    CMD_IS(cl, "apply sleep -n 2", "apply-sleep-group-0");
    ck_assert(counter_wait(&started, 2));
    /* Four tasks that end (timed), a refused spawn, a dropped start. */
    CMD_IS(cl, "apply noop -n 4 -g quick", "quick");
    ck_assert(wait_until(four_ended, p));
    CMD_IS(cl, "lock", "ok");
    CMD_IS(cl, "apply noop", "Cannot start new tasks");
    CMD_IS(cl, "unlock", "ok");
    CMD_IS(cl, "apply sleep -n 2 -g d", "d");
    ck_assert(counter_wait(&started, 3));
    CMD_IS(cl, "cancel-group d", "ok");
    /* Settled: the protocol and HTTP texts below must be equal. */
    ck_assert(wait_until(five_ended, p));
    client_send_line(cl, "metrics");
    char *text = client_read_until(cl, "\n\n");
    ck_assert_ptr_nonnull(text);
    text[strlen(text) - 1] = '\0'; /* the blank line ends the response */
    ck_assert_msg(strstr(text, "# TYPE taskpool_tasks_running gauge\n"
                               "taskpool_tasks_running{pool=\"TaskPool-demo\"}"
                               " 2\n") != NULL,
                  "%s", text);
    ck_assert_double_eq(sample(text, "taskpool_tasks_started_total"), 7);
    ck_assert(strstr(text, "taskpool_queue_backlog{pool=\"TaskPool-demo\"} "
                           "7\n") != NULL);
    ck_assert(strstr(text, "taskpool_pool_size{pool=\"TaskPool-demo\"} 3\n") !=
              NULL);
    ck_assert_double_eq(sample(text, "taskpool_spawns_refused_total"), 1);
    ck_assert_double_eq(sample(text, "taskpool_starts_dropped_total"), 1);
    ck_assert(strstr(text, "# TYPE taskpool_task_wait_seconds histogram\n"));
    ck_assert(strstr(text, "# TYPE taskpool_task_run_seconds histogram\n"));
    histogram_is_consistent(text, "taskpool_task_wait_seconds", 4);
    histogram_is_consistent(text, "taskpool_task_run_seconds", 4);
    if (system("command -v promtool >/dev/null 2>&1") == 0)
        ck_assert_int_eq(pipe_to("promtool check metrics", text), 0);
    else
        ck_assert_msg(getenv("TP_NO_PROMTOOL"),
                      "promtool is missing (scripts/deps.sh --test)");
    /* The same text over HTTP, as Prometheus scrapes it. */
    char cmd[256];
    snprintf(cmd, sizeof cmd,
             "curl -s -H 'Authorization: Bearer s3cret' "
             "http://127.0.0.1:%d/metrics",
             tp_control_port(c));
    char *body = run_cmd(cmd);
    ck_assert_str_eq(body, text);
    free(body);
    snprintf(cmd, sizeof cmd,
             "curl -s -o /dev/null -w '%%{http_code}' "
             "http://127.0.0.1:%d/metrics",
             tp_control_port(c));
    body = run_cmd(cmd);
    ck_assert_str_eq(body, "401");
    free(body);
    snprintf(cmd, sizeof cmd,
             "curl -s -o /dev/null -w '%%{http_code}' "
             "-H 'Authorization: Bearer s3cret' http://127.0.0.1:%d/other",
             tp_control_port(c));
    body = run_cmd(cmd);
    ck_assert_str_eq(body, "404");
    free(body);
    free(text);
    /* JSON mode: the text as a string. */
    client *j = client_tcp(tp_control_port(c));
    client_hello(j, "{\"token\": \"s3cret\", \"format\": \"json\"}",
                 "{\"ok\":true,\"result\":\"TaskPool-demo\"}");
    cJSON *r = client_json(j, "metrics");
    const cJSON *res = cJSON_GetObjectItemCaseSensitive(r, "result");
    ck_assert(cJSON_IsString(res));
    ck_assert(strncmp(res->valuestring, "# HELP taskpool_pool_size ", 26) == 0);
    cJSON_Delete(r);
    client_close(j);
    client_close(cl);
    finish(c, p);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* groups                                                                   */
/* ------------------------------------------------------------------------ */

/* A pool of size 1 holding: "a" (apply, its task running), "m" (a map of
 * 3 at most 2 at once: its 3 starts pending), and a name with a
 * quote and a newline (apply, 1 pending). Newest first. */
static tp_pool *groups_pool(void)
{
    tp_pool *p = general_pool(1);
    tp_opts o = {.group_name = "a"};
    ck_assert_int_eq(tp_apply(p, worker, NULL, 1, &o, NULL), TP_OK);
    ck_assert(counter_wait(&started, 1));
    void *args[3] = {NULL, NULL, NULL};
    o.group_name = "m";
    ck_assert_int_eq(tp_map(p, worker, args, 3, 2, &o, NULL), TP_OK);
    o.group_name = "we\"ird\n";
    ck_assert_int_eq(tp_apply(p, worker, NULL, 1, &o, NULL), TP_OK);
    return p;
}

static const char groups_text_want[] =
    "we\"ird? running=0 cancelled=0 ended=0 pending=1 num_concurrent=inf\n"
    "m running=0 cancelled=0 ended=0 pending=3 num_concurrent=2\n"
    "a running=1 cancelled=0 ended=0 pending=0 num_concurrent=inf\n\n";

static const char groups_json_want[] =
    "{\"ok\":true,\"result\":["
    "{\"name\":\"we\\\"ird\\n\",\"running\":0,\"cancelled\":0,"
    "\"ended\":0,\"pending\":1,\"num_concurrent\":null},"
    "{\"name\":\"m\",\"running\":0,\"cancelled\":0,\"ended\":0,"
    "\"pending\":3,\"num_concurrent\":2},"
    "{\"name\":\"a\",\"running\":1,\"cancelled\":0,\"ended\":0,"
    "\"pending\":0,\"num_concurrent\":null}]}";

static void groups_check(client *text, client *json)
{
    client_send_line(text, "groups");
    char *t = client_read_until(text, "\n\n");
    ck_assert_ptr_nonnull(t);
    ck_assert_str_eq(t, groups_text_want);
    free(t);
    json_is(json, "groups", groups_json_want);
    /* The JSON parses, and the name comes back exactly. */
    cJSON *r = client_json(json, "groups");
    const cJSON *first =
        cJSON_GetArrayItem(cJSON_GetObjectItem(r, "result"), 0);
    ck_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(first, "name")),
                     "we\"ird\n");
    cJSON_Delete(r);
}

START_TEST(groups_lists_every_group_over_tcp)
{
    tp_pool *p = groups_pool();
    tp_control *c = tcp_server(p, NULL);
    client *t = text_client(c, "TaskPool-demo");
    client *j = json_client(c);
    groups_check(t, j);
    /* Its help is there; it runs off the control thread. */
    const tp__ctl_command *cmd = tp__ctl_command_find("groups", false);
    ck_assert_ptr_nonnull(cmd);
    ck_assert(cmd->flags & TP__CTL_OFFLOAD);
    ck_assert_ptr_eq(tp__ctl_command_find("groups", true), cmd);
    client_close(t);
    client_close(j);
    finish(c, p);
}
END_TEST

START_TEST(groups_lists_every_group_over_unix)
{
    char path[108];
    sock_path(path, sizeof path, "groups");
    tp_pool *p = groups_pool();
    tp_control *c = tp_control_new_unix(p, path, NULL);
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(tp_control_start(c), TP_OK);
    client *t = client_unix(path);
    client_hello(t, "{}", "TaskPool-demo");
    client *j = client_unix(path);
    client_hello(j, "{\"format\": \"json\"}",
                 "{\"ok\":true,\"result\":\"TaskPool-demo\"}");
    groups_check(t, j);
    client_close(t);
    client_close(j);
    finish(c, p);
}
END_TEST

START_TEST(groups_of_a_simple_pool_and_of_none)
{
    tp_pool *p = simple_pool();
    tp_control *c = tcp_server(p, NULL);
    client *t = text_client(c, "SimpleTaskPool-0");
    client *j = json_client(c);
    /* No group: the blank line alone, and an empty array. */
    CMD_IS(t, "groups", "");
    json_is(j, "groups", "{\"ok\":true,\"result\":[]}");
    CMD_IS(t, "start 2", "start-group-0");
    ck_assert(counter_wait(&started, 2));
    CMD_IS(t, "stop 1", "[1]");
    client_send_line(t, "groups");
    char *l = client_read_until(t, "\n\n");
    ck_assert_ptr_nonnull(l);
    ck_assert_msg(strcmp(l, "start-group-0 running=1 cancelled=1 ended=0 "
                            "pending=0 num_concurrent=inf\n\n") == 0 ||
                      strcmp(l,
                             "start-group-0 running=1 cancelled=0 "
                             "ended=1 pending=0 num_concurrent=inf\n\n") == 0,
                  "%s", l);
    free(l);
    client_close(t);
    client_close(j);
    finish(c, p);
}
END_TEST

/* A listing bigger than the client's buffer and the session's output
 * watermark: every line arrives, in order, and the session goes on. */
START_TEST(groups_lists_twenty_thousand_groups)
{
    enum { N = 20000 };
    tp_pool *p = general_pool(1);
    ck_assert_int_eq(tp_set_pool_size(p, 0), TP_OK); /* nothing starts */
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(tp_apply(p, noop_task, NULL, 1, NULL, NULL), TP_OK);
    tp_control *c = tcp_server(p, NULL);
    client *t = text_client(c, "TaskPool-demo");
    client_send_line(t, "groups");
    for (int i = N - 1; i >= 0; i--) {
        char *l = client_line(t);
        ck_assert_ptr_nonnull(l);
        char want[128];
        snprintf(want, sizeof want,
                 "apply-func-group-%d running=0 cancelled=0 ended=0 "
                 "pending=1 num_concurrent=inf",
                 i);
        ck_assert_str_eq(l, want);
        free(l);
    }
    CMD_IS(t, "", "");
    CMD_IS(t, "num-running", "0");
    client_close(t);
    finish(c, p);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("control");
    TCase *tc = tcase_create("server");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, handshake_text_answers_pool_name);
    tcase_add_test(tc, handshake_json_answers_json);
    tcase_add_test(tc, handshake_without_width_uses_default);
    tcase_add_test(tc, handshake_not_json_is_refused);
    tcase_add_test(tc, handshake_json_array_is_refused);
    tcase_add_test(tc, handshake_bad_width_is_refused);
    tcase_add_test(tc, handshake_bad_format_is_refused);
    tcase_add_test(tc, handshake_binary_is_refused);
    tcase_add_test(tc, token_accepted);
    tcase_add_test(tc, token_wrong_is_refused);
    tcase_add_test(tc, token_missing_is_refused);
    tcase_add_test(tc, simple_pool_transcript);
    tcase_add_test(tc, simple_pool_rejects_general_commands);
    tcase_add_test(tc, simple_pool_counts_and_errors);
    tcase_add_test(tc, cancel_reports_cancelled_and_ended_tasks);
    tcase_add_test(tc, general_pool_transcript);
    tcase_add_test(tc, general_pool_help_lists_its_commands);
    tcase_add_test(tc, help_wraps_to_terminal_width);
    tcase_add_test(tc, spawn_commands_pass_json_arguments);
    tcase_add_test(tc, spawn_commands_reject_bad_json);
    tcase_add_test(tc, callbacks_by_name_run);
    tcase_add_test(tc, cancel_group_discards_pending_json_arguments);
    tcase_add_test(tc, function_names_match_lowercased_requests);
    tcase_add_test(tc, json_mode_types_results);
    tcase_add_test(tc, huge_pool_size_is_shown_exactly);
    tcase_add_test(tc, echoed_requests_cut_short_stay_utf8);
    tcase_add_test(tc, repeated_group_names_cost_nothing_extra);
    tcase_add_test(tc, nesting_bombs_and_huge_numbers_get_clear_errors);
    tcase_add_test(tc, overlong_line_gets_error_and_is_skipped);
    tcase_add_test(tc, overlong_handshake_is_refused);
    tcase_add_test(tc, option_spellings);
    tcase_add_test(tc, binary_junk_gets_errors_not_a_crash);
    tcase_add_test(tc, blank_lines_get_no_response);
    tcase_add_test(tc, pipelined_requests_answer_in_order);
    tcase_add_test(tc, pipelined_answers_beyond_the_output_limit_all_arrive);
    tcase_add_test(tc, one_turn_answers_a_bounded_share_of_pipelined_lines);
    tcase_add_test(tc, client_vanishing_mid_line_costs_nothing);
    tcase_add_test(tc, half_closed_client_gets_every_response);
    tcase_add_test(tc, exit_closes_the_session);
    tcase_add_test(tc, max_clients_refuses_extra_clients);
    tcase_add_test(tc, idle_sessions_are_closed);
    tcase_add_test(tc, unix_socket_is_private_and_removed);
    tcase_add_test(tc, unix_stale_socket_is_replaced);
    tcase_add_test(tc, unix_live_socket_is_not_replaced);
    tcase_add_test(tc, unix_regular_file_is_not_replaced);
    tcase_add_test(tc, bad_arguments_are_refused);
    tcase_add_test(tc, two_hundred_concurrent_clients);
    tcase_add_test(tc, blocking_flush_does_not_stall_other_sessions);
    tcase_add_test(tc,
                   helper_commands_after_any_blank_stay_off_the_control_thread);
    tcase_add_test(tc,
                   vanished_client_does_not_leave_its_blocking_command_running);
    tcase_add_test(tc, out_of_descriptors_pauses_accepting_and_resumes);
    tcase_add_test(tc, stop_with_clients_connected);
    tcase_add_test(tc, two_servers_serve_one_pool);
    tcase_add_test(tc, tcp_fin_during_until_closed_frees_place_and_helper);
    tcase_add_test(tc, tcp_half_close_during_flush_abandons_later_until_closed);
    tcase_add_test(tc, tcp_fin_during_gather_and_close_is_answered_then_closed);
    tcase_add_test(tc, cancel_all_runs_off_the_control_thread);
    tcase_add_test(tc, cancel_group_runs_off_the_control_thread);
    tcase_add_test(tc, spawn_counts_above_max_spawn_are_usage_errors);
    tcase_add_test(tc, handshake_deadline_is_not_extended_by_bytes);
    tcase_add_test(
        tc, unfinished_handshakes_do_not_lock_out_a_client_with_the_token);
    tcase_add_test(tc, refused_token_is_answered_after_a_delay);
    tcase_add_test(tc, token_comparison);
    tcase_add_test(tc, utf8_check_and_scrub_match_rfc3629);
    tcase_add_test(tc, unix_path_too_long_is_refused_at_creation);
    tcase_add_test(tc, tcp_port_is_validated_at_creation);
    tcase_add_test(tc, server_logs_sessions_and_commands);
    tcase_add_test(tc, refused_clients_do_not_keep_out_the_right_token);
    tcase_add_test(tc, full_refusal_places_hold_new_connections_back);
    tcase_add_test(tc, refused_clients_wait_without_waking_the_control_thread);
    tcase_add_test(tc, gauges_are_validated_and_shown_in_stats);
    tcase_add_test(tc, metrics_pass_promtool_over_the_protocol_and_http);
    tcase_add_test(tc, groups_lists_every_group_over_tcp);
    tcase_add_test(tc, groups_lists_every_group_over_unix);
    tcase_add_test(tc, groups_of_a_simple_pool_and_of_none);
    tcase_add_test(tc, groups_lists_twenty_thousand_groups);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(suite());
}
