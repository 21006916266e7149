/* SPDX-License-Identifier: MIT */
/*
 * The command table: one row per command, read by the dispatcher
 * (session.c), by "-h" and "CMD -h" (args.c) and by the CLI's completion.
 * Handlers turn parsed arguments into engine calls and typed results; the
 * blocking ones (flush, gather-and-close, until-closed) run on a helper
 * thread and use only ctx->pool and ctx->stopping.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ctl.h"

/* ------------------------------------------------------------------------ */
/* Results                                                                  */
/* ------------------------------------------------------------------------ */

static void result_size(tp__ctl_reply *r, size_t n)
{
    /* A double holds every integer up to 2^53 exactly; larger ones (a pool
     * size of 2^63 - 1, say) go out as their exact decimal digits, which
     * are a JSON number all the same. */
    if (n == TP_UNLIMITED) {
        tp__ctl_reply_result(r, cJSON_CreateNull());
    } else if (n <= (size_t)1 << 53) {
        tp__ctl_reply_result(r, cJSON_CreateNumber((double)n));
    } else {
        char digits[32];
        snprintf(digits, sizeof digits, "%zu", n);
        tp__ctl_reply_result(r, cJSON_CreateRaw(digits));
    }
}

static void result_bool(tp__ctl_reply *r, bool b)
{
    tp__ctl_reply_result(r, cJSON_CreateBool(b));
}

static void result_ids(tp__ctl_reply *r, tp_ids *ids)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; a && i < ids->len; i++)
        cJSON_AddItemToArray(a, cJSON_CreateNumber((double)ids->v[i]));
    tp_ids_free(ids);
    tp__ctl_reply_result(r, a);
}

/* A result, or the error of rc. */
static void result_rc(tp__ctl_reply *r, tp_pool *pool, int rc, cJSON *ok)
{
    if (rc == TP_OK) {
        tp__ctl_reply_result(r, ok);
    } else {
        cJSON_Delete(ok);
        tp__ctl_reply_tp_error(r, pool, rc);
    }
}

/* The value of the argument whose spec's dest is `dest`, or NULL if a's
 * command has no such argument. */
static tp__ctl_value *find_arg(tp__ctl_args *a, const char *dest)
{
    for (size_t i = 0; a->cmd && i < a->cmd->nargs; i++)
        if (strcmp(a->cmd->args[i].dest, dest) == 0)
            return &a->v[i];
    return NULL;
}

/* The value of a's argument `dest`, which its command's specs have. */
static tp__ctl_value *arg(tp__ctl_args *a, const char *dest)
{
    tp__ctl_value *v = find_arg(a, dest);
    if (!v)
        abort(); /* a handler asking for an argument its command lacks */
    return v;
}

/* Rejects a negative count with a sentence naming the argument. */
static bool count_ok(tp__ctl_reply *r, const tp__ctl_value *v, const char *name,
                     bool positive)
{
    if (v->i < 0 || (positive && v->i == 0)) {
        tp__ctl_reply_error(r, tp_err_name(TP_EINVAL),
                            "`%s` must be a %s integer.", name,
                            positive ? "positive" : "non-negative");
        return false;
    }
    return true;
}

/* ------------------------------------------------------------------------ */
/* Handlers: both kinds                                                     */
/* ------------------------------------------------------------------------ */

static void h_cancel(tp__ctl_ctx *ctx, tp__ctl_args *a, tp__ctl_reply *r)
{
    const tp__ctl_value *v = arg(a, "task_ids");
    tp_id *ids = calloc(v->n ? v->n : 1, sizeof *ids);
    if (!ids) {
        tp__ctl_reply_tp_error(r, ctx->pool, TP_ENOMEM);
        return;
    }
    for (size_t i = 0; i < v->n; i++)
        ids[i] = (tp_id)v->ints[i];
    int rc = tp_cancel(ctx->pool, ids, v->n);
    free(ids);
    if (rc == TP_OK) {
        tp__ctl_reply_result(r, NULL);
        return;
    }
    /* As the reference, name the first id that cannot be cancelled. */
    long long bad = v->ints[0];
    for (size_t i = 0; i < v->n; i++) {
        if (tp_task_status(ctx->pool, (tp_id)v->ints[i]) != TP_OK) {
            bad = v->ints[i];
            break;
        }
    }
    const char *pool = tp_pool_name(ctx->pool);
    const char *name = tp_err_name(rc);
    if (rc == TP_ENOTASK)
        tp__ctl_reply_error(r, name, "No task with ID %lld found in %s", bad,
                            pool);
    else if (rc == TP_EALREADY_CANCELLED)
        tp__ctl_reply_error(r, name, "'%s_Task-%lld' has been cancelled", pool,
                            bad);
    else if (rc == TP_EALREADY_ENDED)
        tp__ctl_reply_error(r, name, "'%s_Task-%lld' has finished running",
                            pool, bad);
    else
        tp__ctl_reply_tp_error(r, ctx->pool, rc);
}

static void h_cancel_all(tp__ctl_ctx *ctx, tp__ctl_args *a, tp__ctl_reply *r)
{
    (void)a;
    tp_cancel_all(ctx->pool);
    tp__ctl_reply_result(r, NULL);
}

static void group_error(tp__ctl_reply *r, tp_pool *pool, int rc,
                        const char *group)
{
    if (rc == TP_ENOGROUP)
        tp__ctl_reply_error(r, tp_err_name(rc),
                            "No task group named %s exists in this pool.",
                            group);
    else if (rc == TP_EGROUP_EXISTS)
        tp__ctl_reply_error(r, tp_err_name(rc),
                            "Group named %s already exists!", group);
    else
        tp__ctl_reply_tp_error(r, pool, rc);
}

static void h_cancel_group(tp__ctl_ctx *ctx, tp__ctl_args *a, tp__ctl_reply *r)
{
    const char *group = arg(a, "group_name")->str;
    int rc = tp_cancel_group(ctx->pool, group);
    if (rc == TP_OK)
        tp__ctl_reply_result(r, NULL);
    else
        group_error(r, ctx->pool, rc, group);
}

static void h_flush(tp__ctl_ctx *ctx, tp__ctl_args *a, tp__ctl_reply *r)
{
    (void)a;
    result_rc(r, ctx->pool, tp_flush(ctx->pool), NULL);
}

static void h_gather_and_close(tp__ctl_ctx *ctx, tp__ctl_args *a,
                               tp__ctl_reply *r)
{
    (void)a;
    result_rc(r, ctx->pool, tp_gather_and_close(ctx->pool), NULL);
}

static void h_until_closed(tp__ctl_ctx *ctx, tp__ctl_args *a, tp__ctl_reply *r)
{
    (void)a;
    /* Short slices, so that stopping the server or the client hanging up
     * ends the wait (else each such client would leave a helper thread
     * waiting, possibly forever). */
    int rc;
    do
        rc = tp_until_closed(ctx->pool, 0.05);
    while (rc == TP_ETIMEDOUT && !*ctx->stopping &&
           !(ctx->abandoned && *ctx->abandoned));
    if (rc == TP_ETIMEDOUT && *ctx->stopping)
        tp__ctl_reply_error(r, "TP_ECANCELED",
                            "The control server is stopping.");
    else if (rc == TP_ETIMEDOUT)
        tp__ctl_reply_error(r, "TP_ECANCELED",
                            "until-closed gave up: the client's input ended "
                            "(it closed the connection or shut down its "
                            "writing side).");
    else
        result_rc(r, ctx->pool, rc, cJSON_CreateTrue());
}

typedef struct named {
    const char *name;
    size_t i;
} named;

static int by_name_then_index(const void *x, const void *y)
{
    const named *a = x, *b = y;
    int c = strcmp(a->name, b->name);
    return c ? c : a->i < b->i ? -1 : a->i > b->i;
}

/* Drops repeated names from names[0..*n), keeping the first mention of
 * each in order. The engine copies a group's ids once per mention before
 * it drops duplicates, so "get-group-ids g g g ..." (thousands of mentions
 * fit a line) would cost memory and time in proportion to the product.
 * false if out of memory. */
static bool drop_repeats(const char **names, size_t *n)
{
    named *v = malloc(*n * sizeof *v);
    bool *keep = calloc(*n, sizeof *keep);
    if (!v || !keep) {
        free(v);
        free(keep);
        return false;
    }
    for (size_t i = 0; i < *n; i++)
        v[i] = (named){names[i], i};
    qsort(v, *n, sizeof *v, by_name_then_index);
    for (size_t i = 0; i < *n; i++)
        if (i == 0 || strcmp(v[i - 1].name, v[i].name) != 0)
            keep[v[i].i] = true;
    size_t kept = 0;
    for (size_t i = 0; i < *n; i++)
        if (keep[i])
            names[kept++] = names[i];
    *n = kept;
    free(v);
    free(keep);
    return true;
}

static void h_get_group_ids(tp__ctl_ctx *ctx, tp__ctl_args *a, tp__ctl_reply *r)
{
    const tp__ctl_value *v = arg(a, "group_names");
    tp_ids ids = {0};
    size_t n = v->n;
    const char **names = malloc((n ? n : 1) * sizeof *names);
    if (!names) {
        tp__ctl_reply_tp_error(r, ctx->pool, TP_ENOMEM);
        return;
    }
    if (n)
        memcpy(names, v->strs, n * sizeof *names);
    if (!drop_repeats(names, &n)) {
        free(names);
        tp__ctl_reply_tp_error(r, ctx->pool, TP_ENOMEM);
        return;
    }
    /* No names: the empty set, without asking the engine. */
    int rc = n ? tp_get_group_ids(ctx->pool, names, n, &ids) : TP_OK;
    if (rc == TP_OK) {
        free(names);
        result_ids(r, &ids);
        return;
    }
    /* Name the first unknown group, as the reference does. */
    const char *bad = n ? names[0] : "";
    for (size_t i = 0; rc == TP_ENOGROUP && i < n; i++) {
        tp_ids one = {0};
        if (tp_get_group_ids(ctx->pool, &names[i], 1, &one) == TP_ENOGROUP) {
            bad = names[i];
            break;
        }
        tp_ids_free(&one);
    }
    group_error(r, ctx->pool, rc, bad);
    free(names);
}

/* Runs on a helper thread (the listing costs O(groups)), and renders the
 * response there too: a million groups make ~130 MB of text, which the
 * control thread then only queues. */
static void h_groups(tp__ctl_ctx *ctx, tp__ctl_args *a, tp__ctl_reply *r)
{
    (void)a;
    tp_groups g = {0};
    int rc = tp_get_groups(ctx->pool, &g);
    if (rc != TP_OK) {
        tp__ctl_reply_tp_error(r, ctx->pool, rc);
        return;
    }
    size_t len = 0;
    char *wire = tp__ctl_groups_render(&g, ctx->json, &len);
    tp_groups_free(&g);
    if (!wire) {
        tp__ctl_reply_tp_error(r, ctx->pool, TP_ENOMEM);
        return;
    }
    tp__ctl_reply_result(r, NULL);
    r->wire = wire;
    r->wire_len = len;
}

static void h_is_full(tp__ctl_ctx *ctx, tp__ctl_args *a, tp__ctl_reply *r)
{
    (void)a;
    result_bool(r, tp_is_full(ctx->pool));
}

static void h_is_locked(tp__ctl_ctx *ctx, tp__ctl_args *a, tp__ctl_reply *r)
{
    (void)a;
    result_bool(r, tp_is_locked(ctx->pool));
}

static void h_lock(tp__ctl_ctx *ctx, tp__ctl_args *a, tp__ctl_reply *r)
{
    (void)a;
    tp_lock(ctx->pool);
    tp__ctl_reply_result(r, NULL);
}

static void h_unlock(tp__ctl_ctx *ctx, tp__ctl_args *a, tp__ctl_reply *r)
{
    (void)a;
    tp_unlock(ctx->pool);
    tp__ctl_reply_result(r, NULL);
}

static void h_num_cancelled(tp__ctl_ctx *ctx, tp__ctl_args *a, tp__ctl_reply *r)
{
    (void)a;
    result_size(r, tp_num_cancelled(ctx->pool));
}

static void h_num_ended(tp__ctl_ctx *ctx, tp__ctl_args *a, tp__ctl_reply *r)
{
    (void)a;
    result_size(r, tp_num_ended(ctx->pool));
}

static void h_num_running(tp__ctl_ctx *ctx, tp__ctl_args *a, tp__ctl_reply *r)
{
    (void)a;
    result_size(r, tp_num_running(ctx->pool));
}

static void h_pool_size(tp__ctl_ctx *ctx, tp__ctl_args *a, tp__ctl_reply *r)
{
    const tp__ctl_value *v = arg(a, "pool_size");
    if (!v->set) {
        result_size(r, tp_pool_size(ctx->pool));
        return;
    }
    if (v->size != TP_UNLIMITED && v->i < 0) {
        tp__ctl_reply_error(r, tp_err_name(TP_EINVAL),
                            "Pool size can not be less than 0");
        return;
    }
    int rc = tp_set_pool_size(ctx->pool, v->size);
    /* TP_ESYS still sets the size; the waiting starts run later. */
    result_rc(r, ctx->pool, rc == TP_ESYS ? TP_OK : rc, NULL);
}

static void h_stats(tp__ctl_ctx *ctx, tp__ctl_args *a, tp__ctl_reply *r)
{
    (void)a;
    tp_stats s;
    int rc = tp_get_stats(ctx->pool, &s);
    if (rc != TP_OK) {
        tp__ctl_reply_tp_error(r, ctx->pool, rc);
        return;
    }
    cJSON *o = tp__ctl_stats_object(&s, ctx->reg->gauges, ctx->reg->ngauges);
    if (!o)
        tp__ctl_reply_tp_error(r, ctx->pool, TP_ENOMEM);
    else
        tp__ctl_reply_result(r, o);
}

static void h_metrics(tp__ctl_ctx *ctx, tp__ctl_args *a, tp__ctl_reply *r)
{
    (void)a;
    /* Printed verbatim, like a help text: the exposition, then a blank
     * line that ends the response. */
    tp__ctl_reply_help(r, tp__ctl_metrics_text(ctx->pool, ctx->reg->gauges,
                                               ctx->reg->ngauges));
}

static void h_help(tp__ctl_ctx *ctx, tp__ctl_args *a, tp__ctl_reply *r)
{
    char *text = NULL;
    const tp__ctl_value *name = arg(a, "command");
    if (name->set) {
        const tp__ctl_command *c = tp__ctl_command_find(name->str, ctx->simple);
        if (!c) {
            tp__ctl_reply_error(r, TP__CTL_EUSAGE, "No command named %s.",
                                name->str);
            return;
        }
        text = tp__ctl_help(ctx->help, tp__ctl_commands, tp__ctl_ncommands, c,
                            ctx->simple, ctx->width);
    } else {
        text = tp__ctl_help(ctx->help, tp__ctl_commands, tp__ctl_ncommands,
                            NULL, ctx->simple, ctx->width);
    }
    tp__ctl_reply_help(r, text);
}

static void h_exit(tp__ctl_ctx *ctx, tp__ctl_args *a, tp__ctl_reply *r)
{
    (void)ctx;
    (void)a;
    tp__ctl_reply_result(r, NULL);
    r->close_after = true;
}

/* ------------------------------------------------------------------------ */
/* Handlers: SimpleTaskPool                                                 */
/* ------------------------------------------------------------------------ */

static void h_start(tp__ctl_ctx *ctx, tp__ctl_args *a, tp__ctl_reply *r)
{
    const tp__ctl_value *num = arg(a, "num");
    if (!count_ok(r, num, "num", true))
        return;
    char group[TP_NAME_MAX];
    int rc = tp_start(ctx->pool, (size_t)num->i, group);
    result_rc(r, ctx->pool, rc, rc == TP_OK ? cJSON_CreateString(group) : NULL);
}

static void h_stop(tp__ctl_ctx *ctx, tp__ctl_args *a, tp__ctl_reply *r)
{
    const tp__ctl_value *num = arg(a, "num");
    if (!count_ok(r, num, "num", false))
        return;
    tp_ids ids = {0};
    int rc = tp_stop(ctx->pool, (size_t)num->i, &ids);
    if (rc == TP_OK)
        result_ids(r, &ids);
    else
        tp__ctl_reply_tp_error(r, ctx->pool, rc);
}

static void h_stop_all(tp__ctl_ctx *ctx, tp__ctl_args *a, tp__ctl_reply *r)
{
    (void)a;
    tp_ids ids = {0};
    int rc = tp_stop_all(ctx->pool, &ids);
    if (rc == TP_OK)
        result_ids(r, &ids);
    else
        tp__ctl_reply_tp_error(r, ctx->pool, rc);
}

static void h_func_name(tp__ctl_ctx *ctx, tp__ctl_args *a, tp__ctl_reply *r)
{
    (void)a;
    const char *name = tp_func_name(ctx->pool);
    tp__ctl_reply_result(r, cJSON_CreateString(name ? name : ""));
}

/* ------------------------------------------------------------------------ */
/* Handlers: TaskPool                                                       */
/* ------------------------------------------------------------------------ */

/* The spawning commands share their specs' dest names (POS_FUNC,
 * OPT_GROUP, OPT_END, OPT_CANCEL below); they differ in the name of the
 * JSON argument and of the count. */
static void spawn(tp__ctl_ctx *ctx, tp__ctl_args *a, tp__ctl_reply *r,
                  tp__ctl_spawn_kind kind, const char *json_dest,
                  const char *num_dest)
{
    tp__ctl_value *json = arg(a, json_dest), *num = arg(a, num_dest);
    tp__ctl_value *kwargs = find_arg(a, "kwargs"); /* apply only */
    const tp__ctl_value *group = arg(a, "group_name"),
                        *end = arg(a, "end_callback"),
                        *cancel = arg(a, "cancel_callback");
    if (num->set && !count_ok(r, num, num_dest, true))
        return;
    tp__ctl_spawn_req req = {
        .kind = kind,
        .func = arg(a, "func")->entry,
        .args = json->json,
        .kwargs = kwargs ? kwargs->json : NULL,
        .num = num->set ? (size_t)num->i : 1,
        .group_name = group->set ? group->str : NULL,
        .end_cb = end->set ? end->entry : NULL,
        .cancel_cb = cancel->set ? cancel->entry : NULL,
    };
    /* The parsed JSON moves into the spawn group. */
    json->json = NULL;
    if (kwargs)
        kwargs->json = NULL;
    if (req.group_name && strlen(req.group_name) >= TP_NAME_MAX) {
        cJSON_Delete(req.args);
        cJSON_Delete(req.kwargs);
        tp__ctl_reply_error(r, tp_err_name(TP_EINVAL),
                            "The group name is too long (at most %d bytes).",
                            TP_NAME_MAX - 1);
        return;
    }
    char name[TP_NAME_MAX];
    int rc = tp__ctl_spawn(ctx->pool, &req, name);
    if (rc == TP_OK)
        tp__ctl_reply_result(r, cJSON_CreateString(name));
    else
        group_error(r, ctx->pool, rc, req.group_name ? req.group_name : "");
}

static void h_apply(tp__ctl_ctx *ctx, tp__ctl_args *a, tp__ctl_reply *r)
{
    spawn(ctx, a, r, TP__CTL_APPLY, "args", "num");
}

static void h_map(tp__ctl_ctx *ctx, tp__ctl_args *a, tp__ctl_reply *r)
{
    spawn(ctx, a, r, TP__CTL_MAP, "arg_iter", "num_concurrent");
}

static void h_starmap(tp__ctl_ctx *ctx, tp__ctl_args *a, tp__ctl_reply *r)
{
    spawn(ctx, a, r, TP__CTL_STARMAP, "args_iter", "num_concurrent");
}

static void h_doublestarmap(tp__ctl_ctx *ctx, tp__ctl_args *a, tp__ctl_reply *r)
{
    spawn(ctx, a, r, TP__CTL_DOUBLESTARMAP, "kwargs_iter", "num_concurrent");
}

/* ------------------------------------------------------------------------ */
/* Argument specs                                                           */
/* ------------------------------------------------------------------------ */

#define OPT_GROUP                                                              \
    {                                                                          \
        "-g", "--group-name", "group_name", TP__CTL_T_STR, TP__CTL_ONE,        \
            "string", "generated"                                              \
    }
#define OPT_END                                                                \
    {                                                                          \
        "-e", "--end-callback", "end_callback", TP__CTL_T_CALLBACK,            \
            TP__CTL_ONE, "callback name", "none"                               \
    }
#define OPT_CANCEL                                                             \
    {                                                                          \
        "-c", "--cancel-callback", "cancel_callback", TP__CTL_T_CALLBACK,      \
            TP__CTL_ONE, "callback name", "none"                               \
    }
#define OPT_NUM_CONCURRENT                                                     \
    {                                                                          \
        "-n", "--num-concurrent", "num_concurrent", TP__CTL_T_COUNT,           \
            TP__CTL_ONE, "int", "1"                                            \
    }
#define POS_FUNC                                                               \
    {                                                                          \
        NULL, NULL, "func", TP__CTL_T_FUNC, TP__CTL_ONE,                       \
            "name of a registered function", NULL                              \
    }
#define OPT_RETURN_EXC                                                         \
    {                                                                          \
        "-r", "--return-exceptions", "return_exceptions", TP__CTL_T_FLAG,      \
            TP__CTL_ONE,                                                       \
            "accepted for compatibility; C tasks raise no exceptions", "False" \
    }

/* Handlers find their values by these dest names (find_arg), so the
 * order of the specs is only the order of the help. */
static const tp__ctl_argspec apply_args[] = {
    POS_FUNC,
    {"-a", "--args", "args", TP__CTL_T_ARRAY, TP__CTL_ONE, "JSON array", "[]"},
    {"-k", "--kwargs", "kwargs", TP__CTL_T_OBJECT, TP__CTL_ONE, "JSON object",
     "{}"},
    {"-n", "--num", "num", TP__CTL_T_SPAWN, TP__CTL_ONE, "int", "1"},
    OPT_GROUP,
    OPT_END,
    OPT_CANCEL,
};
static const tp__ctl_argspec map_args[] = {
    POS_FUNC,
    {NULL, NULL, "arg_iter", TP__CTL_T_ARRAY, TP__CTL_ONE,
     "JSON array (one task per element)", NULL},
    OPT_NUM_CONCURRENT,
    OPT_GROUP,
    OPT_END,
    OPT_CANCEL,
};
static const tp__ctl_argspec starmap_args[] = {
    POS_FUNC,
    {NULL, NULL, "args_iter", TP__CTL_T_ARRAYS, TP__CTL_ONE,
     "JSON array of arrays (one task per array)", NULL},
    OPT_NUM_CONCURRENT,
    OPT_GROUP,
    OPT_END,
    OPT_CANCEL,
};
static const tp__ctl_argspec doublestarmap_args[] = {
    POS_FUNC,
    {NULL, NULL, "kwargs_iter", TP__CTL_T_OBJECTS, TP__CTL_ONE,
     "JSON array of objects (one task per object)", NULL},
    OPT_NUM_CONCURRENT,
    OPT_GROUP,
    OPT_END,
    OPT_CANCEL,
};
static const tp__ctl_argspec cancel_args[] = {
    {NULL, NULL, "task_ids", TP__CTL_T_INT, TP__CTL_STAR, "int", NULL},
};
static const tp__ctl_argspec group_name_args[] = {
    {NULL, NULL, "group_name", TP__CTL_T_STR, TP__CTL_ONE, "string", NULL},
};
static const tp__ctl_argspec group_names_args[] = {
    {NULL, NULL, "group_names", TP__CTL_T_STR, TP__CTL_STAR, "string", NULL},
};
static const tp__ctl_argspec return_exc_args[] = {OPT_RETURN_EXC};
static const tp__ctl_argspec num_args[] = {
    {NULL, NULL, "num", TP__CTL_T_COUNT, TP__CTL_ONE, "int", NULL},
};
static const tp__ctl_argspec start_args[] = {
    {NULL, NULL, "num", TP__CTL_T_SPAWN, TP__CTL_ONE, "int", NULL},
};
static const tp__ctl_argspec pool_size_args[] = {
    {NULL, NULL, "pool_size", TP__CTL_T_SIZE, TP__CTL_OPT,
     "If given: sets the maximum number of tasks running at once (an int, "
     "or inf for no limit). If omitted: shows it.",
     NULL},
};
static const tp__ctl_argspec help_args[] = {
    {NULL, NULL, "command", TP__CTL_T_STR, TP__CTL_OPT,
     "show the help of this command", NULL},
};

#define ARGS(a) a, sizeof a / sizeof a[0]
#define NOARGS NULL, 0

/* Sorted by name: "-h" lists commands in this order. */
const tp__ctl_command tp__ctl_commands[] = {
    {"apply",
     "Starts tasks running a registered function with the given "
     "arguments, as a new group.",
     "Starts NUM tasks running FUNC, a function the program registered, as "
     "a new group, and prints the group's name. Each task receives the JSON "
     "object {\"args\": ARGS, \"kwargs\": KWARGS}.",
     ARGS(apply_args), TP__CTL_GENERAL, h_apply},
    {"cancel", "Cancels the tasks with the given IDs.",
     "Cancels the tasks with the given IDs; if one of them is not running, "
     "cancels none.",
     ARGS(cancel_args), 0, h_cancel},
    {"cancel-all", "Cancels every task and every pending start in the pool.",
     NULL, NOARGS, TP__CTL_OFFLOAD, h_cancel_all},
    {"cancel-group", "Cancels a group: its pending starts and its tasks.", NULL,
     ARGS(group_name_args), TP__CTL_OFFLOAD, h_cancel_group},
    {"doublestarmap",
     "Starts one task per JSON object of the array, at most NUM_CONCURRENT "
     "at once, as a new group.",
     "Starts one task running FUNC per element of KWARGS_ITER (each a JSON "
     "object, passed to the task as is), at most NUM_CONCURRENT at once, as "
     "a new group, and prints the group's name.",
     ARGS(doublestarmap_args), TP__CTL_GENERAL | TP__CTL_OFFLOAD,
     h_doublestarmap},
    {"exit", "Ends this control session.", NULL, NOARGS, TP__CTL_EXTRA, h_exit},
    {"flush",
     "Waits for ended and cancelled tasks to finish, then forgets "
     "them.",
     NULL, ARGS(return_exc_args), TP__CTL_BLOCKING, h_flush},
    {"func-name", "Name of the function the pool runs.", NULL, NOARGS,
     TP__CTL_SIMPLE, h_func_name},
    {"gather-and-close",
     "Waits for **all** tasks and pending starts of the pool, then closes "
     "it.",
     NULL, ARGS(return_exc_args), TP__CTL_BLOCKING, h_gather_and_close},
    {"get-group-ids",
     "Prints the set of IDs of the tasks in the given "
     "groups.",
     NULL, ARGS(group_names_args), 0, h_get_group_ids},
    {"groups",
     "Lists every group: its name, running, cancelled, ended and pending "
     "counts, and num_concurrent.",
     "Lists every group the pool knows, newest first, one line per group: "
     "NAME running=R cancelled=C ended=E pending=P num_concurrent=N (inf: "
     "no limit), then a blank line.",
     NOARGS, TP__CTL_EXTRA | TP__CTL_OFFLOAD, h_groups},
    {"help", "Shows this help, or the help of one command.", NULL,
     ARGS(help_args), TP__CTL_EXTRA, h_help},
    {"is-full", "`True` if no more task can start right now.", NULL, NOARGS, 0,
     h_is_full},
    {"is-locked", "`True` if the pool is locked (see lock).", NULL, NOARGS, 0,
     h_is_locked},
    {"lock", "Refuses new tasks until unlocked; queued starts still happen.",
     NULL, NOARGS, 0, h_lock},
    {"map",
     "Starts one task per element of a JSON array, at most NUM_CONCURRENT "
     "at once, as a new group.",
     "Starts one task running FUNC per element of ARG_ITER (a JSON array; "
     "each task receives its element), at most NUM_CONCURRENT at once, as a "
     "new group, and prints the group's name.",
     ARGS(map_args), TP__CTL_GENERAL | TP__CTL_OFFLOAD, h_map},
    {"metrics",
     "Shows the pool's counters and gauges in the Prometheus text format.",
     NULL, NOARGS, TP__CTL_EXTRA, h_metrics},
    {"num-cancelled", "Number of tasks cancelled that have not yet ended.",
     NULL, NOARGS, 0, h_num_cancelled},
    {"num-ended", "Number of tasks that ended and are not yet flushed.", NULL,
     NOARGS, 0, h_num_ended},
    {"num-running", "Number of tasks still running.", NULL, NOARGS, 0,
     h_num_running},
    {"pool-size", "Gets or sets the pool size (inf: no limit).", NULL,
     ARGS(pool_size_args), 0, h_pool_size},
    {"starmap",
     "Starts one task per JSON array of the array, at most NUM_CONCURRENT "
     "at once, as a new group.",
     "Starts one task running FUNC per element of ARGS_ITER (each a JSON "
     "array, passed to the task as is), at most NUM_CONCURRENT at once, as a "
     "new group, and prints the group's name.",
     ARGS(starmap_args), TP__CTL_GENERAL | TP__CTL_OFFLOAD, h_starmap},
    {"start", "Starts the given number of new tasks as a new group.", NULL,
     ARGS(start_args), TP__CTL_SIMPLE, h_start},
    {"stats", "Shows all counters of the pool, including lifetime totals.",
     NULL, NOARGS, TP__CTL_EXTRA, h_stats},
    {"stop",
     "Cancels the given number of tasks, most recent first, and "
     "prints their IDs.",
     NULL, ARGS(num_args), TP__CTL_SIMPLE, h_stop},
    {"stop-all", "Cancels all running tasks and prints their IDs.", NULL,
     NOARGS, TP__CTL_SIMPLE, h_stop_all},
    {"unlock", "Allows new tasks again.", NULL, NOARGS, 0, h_unlock},
    {"until-closed",
     "Waits until the pool is closed (this does **not** "
     "close it), then prints True.",
     NULL, NOARGS, TP__CTL_BLOCKING, h_until_closed},
};
const size_t tp__ctl_ncommands =
    sizeof tp__ctl_commands / sizeof tp__ctl_commands[0];

const tp__ctl_command *tp__ctl_command_find(const char *name, bool simple)
{
    /* The table is sorted by name (lower case), so by strcasecmp too. */
    size_t lo = 0, hi = tp__ctl_ncommands;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcasecmp(tp__ctl_commands[mid].name, name);
        if (c == 0)
            return tp__ctl_command_applies(&tp__ctl_commands[mid], simple)
                       ? &tp__ctl_commands[mid]
                       : NULL;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}
