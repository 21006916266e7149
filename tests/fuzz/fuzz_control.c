/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the control protocol's parsing: the handshake line
 * and request lines (tokenizer, argparse-like parser, JSON arguments, help
 * and usage texts, text and JSON renderings).
 *
 * Input: the first line is a handshake, every further line a request (at
 * most MAX_REQUESTS of them). The requests run against a TaskPool whose
 * size is 0, so spawning commands only queue starts (no task ever runs;
 * the fuzzer stays deterministic);
 * after each input every group is cancelled, which hands the queued JSON
 * arguments back to be freed, and LeakSanitizer checks that they are.
 * Commands that would block or change the pool size only get parsed.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

/* The server's max_spawn (the usage error above it is what is fuzzed
 * here; dropping the pending starts costs nothing per start). */
#define MAX_SPAWN 64
/* Requests per input (the rest is ignored): the cost of an input stays
 * bounded as the corpus grows towards libFuzzer's 4 KiB inputs. */
#define MAX_REQUESTS 32

static tp_pool *pool;
static tp__ctl_registry reg;
/* Help texts, as the server keeps them (one cache per kind of pool; its
 * slot for the top-level help is not keyed by the kind). Kept across
 * inputs, as fuzz_server keeps them: a text is built the first time an
 * input asks for it (one-time growth, which libFuzzer's leak check does
 * not count), and the renderers carry no coverage, so an input's features
 * do not depend on whether it built the text. */
static tp__ctl_help_cache help[2];

static int noop(tp_task *task, void *arg)
{
    (void)task, (void)arg;
    return 0;
}

static void cb(tp_pool *p, tp_id id, void *arg)
{
    (void)p, (void)id, (void)arg;
}

static void init(void)
{
    tp_pool_opts po = {.name = "fuzz"};
    pool = tp_pool_new(&po);
    tp_set_pool_size(pool, 0);
    tp__ctl_registry_add(&reg, "work", noop, NULL, NULL);
    tp__ctl_registry_add(&reg, "Other.Func", noop, NULL, NULL);
    tp__ctl_registry_add(&reg, "on_end", NULL, cb, NULL);
}

static bool runnable(const tp__ctl_command *cmd)
{
    return !(cmd->flags & TP__CTL_BLOCKING) &&
           strcmp(cmd->name, "pool-size") != 0;
}

/* Runs line[0..len) against both kinds of pool; copy has room for it
 * (the parser cuts its line into tokens). */
static void request(const char *line, size_t len, char *copy, int width,
                    bool json)
{
    if (!tp__ctl_utf8_valid(line, len))
        return;
    for (int simple = 0; simple < 2; simple++) {
        memcpy(copy, line, len + 1);
        tp__ctl_ctx ctx = {.pool = pool,
                           .simple = simple,
                           .reg = &reg,
                           .width = width,
                           .max_spawn = MAX_SPAWN,
                           .help = &help[simple]};
        const tp__ctl_command *cmd;
        tp__ctl_args args;
        tp__ctl_reply r = {0};
        if (tp__ctl_parse(&ctx, copy, &cmd, &args, &r)) {
            if (!simple && runnable(cmd)) {
                cmd->run(&ctx, &args, &r);
                r.cmd = cmd->name;
            }
            tp__ctl_args_free(&args);
        }
        size_t n;
        free(tp__ctl_reply_render(&r, json, &n));
        free(tp__ctl_reply_render(&r, !json, &n));
        tp__ctl_reply_clear(&r);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!pool)
        init();
    char *buf = malloc(size + 1), *copy = malloc(size + 1);
    if (!buf || !copy) {
        free(buf);
        free(copy);
        return 0;
    }
    memcpy(buf, data, size);
    buf[size] = '\0';
    char *end = buf + size, *p = buf;
    char *nl = memchr(p, '\n', size);
    size_t hl = nl ? (size_t)(nl - p) : size;
    tp__ctl_hello h;
    const char *why;
    p[hl] = '\0';
    bool ok = tp__ctl_parse_hello(p, hl, &h, &why);
    int width = ok ? h.width : 80;
    bool json = ok && h.json;
    if (ok)
        free(h.token);
    p += hl + (nl ? 1 : 0);
    for (int n = 0; p < end && n < MAX_REQUESTS; n++) {
        nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        p[len] = '\0';
        request(p, len, copy, width, json);
        p += len + 1;
    }
    tp_cancel_all(pool);
    tp_unlock(pool);
    tp_flush(pool); /* forget the groups: the pool stays small */
    free(buf);
    free(copy);
    return 0;
}
