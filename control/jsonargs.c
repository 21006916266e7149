/* SPDX-License-Identifier: MIT */
/*
 * apply, map, starmap and doublestarmap with JSON arguments, for functions
 * registered by name.
 *
 * What a registered function receives (its `void *arg` is a const cJSON *):
 *  - apply:         the object {"args": [...], "kwargs": {...}} (defaults
 *                   [] and {}), the same object for all `num` tasks;
 *  - map:           one element of the JSON array (any JSON value);
 *  - starmap:       one element, itself an array;
 *  - doublestarmap: one element, itself an object.
 *
 * Lifetime: one heap "spawn group" per command owns the parsed JSON. Its
 * reference count starts at the number of starts the command asked for;
 * every task's end callback and every discarded start drops one reference,
 * and the last one frees the JSON. The group copies the function and
 * callbacks so that it needs nothing from the server: it may outlive it.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

typedef struct spawn_group spawn_group;

/* What one start receives: its group and its JSON value. */
typedef struct slot {
    spawn_group *group;
    const cJSON *json;
} slot;

struct spawn_group {
    atomic_size_t refs;
    bool shared; /* apply: one argument for every start */
    tp_fn fn;
    tp_callback end_cb, cancel_cb;
    void *end_arg, *cancel_arg;
    cJSON *root;
    slot *slots;
    void **slot_ptrs; /* starmap: argv arrays of one element each */
    tp_args *star;
    tp_kwarg *kw; /* doublestarmap: one kwarg each */
    tp_kwargs *kws;
};

static void group_free(spawn_group *g)
{
    cJSON_Delete(g->root);
    free(g->slots);
    free(g->slot_ptrs);
    free(g->star);
    free(g->kw);
    free(g->kws);
    free(g);
}

static void group_unref(spawn_group *g)
{
    if (atomic_fetch_sub(&g->refs, 1) == 1)
        group_free(g);
}

static void on_end(tp_pool *pool, tp_id id, void *arg)
{
    spawn_group *g = arg;
    if (g->end_cb)
        g->end_cb(pool, id, g->end_arg);
    group_unref(g);
}

static void on_cancel(tp_pool *pool, tp_id id, void *arg)
{
    spawn_group *g = arg;
    if (g->cancel_cb)
        g->cancel_cb(pool, id, g->cancel_arg);
}

static void on_discard(void *arg, void *callback_arg)
{
    spawn_group *g = callback_arg;
    (void)arg;
    /* For apply the engine discards the shared argument once, after the
     * group's last task ended: every reference left is a dropped start. */
    if (g->shared)
        group_free(g);
    else
        group_unref(g);
}

static int run_slot(tp_task *task, void *arg)
{
    slot *s = arg;
    return s->group->fn(task, (void *)s->json);
}

static int run_star(tp_task *task, size_t argc, void *const argv[])
{
    return argc == 1 ? run_slot(task, argv[0]) : -1;
}

static int run_kw(tp_task *task, const tp_kwargs *kwargs)
{
    slot *s = tp_kwargs_get(kwargs, "arg", NULL);
    return s ? run_slot(task, s) : -1;
}

/* Builds apply's {"args":..., "kwargs":...}; takes args and kwargs. */
static cJSON *apply_object(cJSON *args, cJSON *kwargs)
{
    cJSON *o = cJSON_CreateObject();
    if (!args)
        args = cJSON_CreateArray();
    if (!kwargs)
        kwargs = cJSON_CreateObject();
    if (!o || !args || !kwargs) {
        cJSON_Delete(o);
        cJSON_Delete(args);
        cJSON_Delete(kwargs);
        return NULL;
    }
    cJSON_AddItemToObject(o, "args", args);
    cJSON_AddItemToObject(o, "kwargs", kwargs);
    return o;
}

/* Allocates the per-start arrays of a map-family group of n starts. */
static bool alloc_slots(spawn_group *g, tp__ctl_spawn_kind kind, size_t n)
{
    size_t m = n ? n : 1;
    g->slots = calloc(m, sizeof *g->slots);
    if (!g->slots)
        return false;
    const cJSON *e = g->root->child;
    for (size_t i = 0; i < n; i++, e = e->next)
        g->slots[i] = (slot){g, e};
    if (kind == TP__CTL_STARMAP) {
        g->slot_ptrs = calloc(m, sizeof *g->slot_ptrs);
        g->star = calloc(m, sizeof *g->star);
        if (!g->slot_ptrs || !g->star)
            return false;
        for (size_t i = 0; i < n; i++) {
            g->slot_ptrs[i] = &g->slots[i];
            g->star[i] = (tp_args){1, &g->slot_ptrs[i]};
        }
    } else if (kind == TP__CTL_DOUBLESTARMAP) {
        g->kw = calloc(m, sizeof *g->kw);
        g->kws = calloc(m, sizeof *g->kws);
        if (!g->kw || !g->kws)
            return false;
        for (size_t i = 0; i < n; i++) {
            g->kw[i] = (tp_kwarg){"arg", &g->slots[i]};
            g->kws[i] = (tp_kwargs){1, &g->kw[i]};
        }
    } else {
        g->slot_ptrs = calloc(m, sizeof *g->slot_ptrs);
        if (!g->slot_ptrs)
            return false;
        for (size_t i = 0; i < n; i++)
            g->slot_ptrs[i] = &g->slots[i];
    }
    return true;
}

int tp__ctl_spawn(tp_pool *pool, tp__ctl_spawn_req *req,
                  char group_out[TP_NAME_MAX])
{
    spawn_group *g = calloc(1, sizeof *g);
    if (!g) {
        cJSON_Delete(req->args);
        cJSON_Delete(req->kwargs);
        req->args = req->kwargs = NULL;
        return TP_ENOMEM;
    }
    g->fn = req->func->fn;
    if (req->end_cb) {
        g->end_cb = req->end_cb->cb;
        g->end_arg = req->end_cb->cb_arg;
    }
    if (req->cancel_cb) {
        g->cancel_cb = req->cancel_cb->cb;
        g->cancel_arg = req->cancel_cb->cb_arg;
    }
    tp_opts opts = {
        .group_name = req->group_name,
        .func_name = req->func_name ? req->func_name : req->func->name,
        .end_callback = on_end,
        .cancel_callback = on_cancel,
        .discard = on_discard,
        .callback_arg = g,
    };
    size_t starts;
    if (req->kind == TP__CTL_APPLY) {
        g->root = apply_object(req->args, req->kwargs);
        g->shared = true;
        req->args = req->kwargs = NULL;
        starts = req->num;
        if (g->root)
            g->slots = calloc(1, sizeof *g->slots);
        if (!g->root || !g->slots) {
            group_free(g);
            return TP_ENOMEM;
        }
        g->slots[0] = (slot){g, g->root};
    } else {
        g->root = req->args;
        req->args = NULL;
        cJSON_Delete(req->kwargs);
        req->kwargs = NULL;
        starts = (size_t)cJSON_GetArraySize(g->root);
        if (!alloc_slots(g, req->kind, starts)) {
            group_free(g);
            return TP_ENOMEM;
        }
    }
    /* Every start takes a reference before any can end. */
    atomic_store(&g->refs, starts);
    int rc;
    switch (req->kind) {
    case TP__CTL_APPLY:
        rc = tp_apply(pool, run_slot, &g->slots[0], req->num, &opts, group_out);
        break;
    case TP__CTL_MAP:
        rc = tp_map(pool, run_slot, g->slot_ptrs, starts, req->num, &opts,
                    group_out);
        break;
    case TP__CTL_STARMAP:
        rc = tp_starmap(pool, run_star, g->star, starts, req->num, &opts,
                        group_out);
        break;
    default:
        rc = tp_doublestarmap(pool, run_kw, g->kws, starts, req->num, &opts,
                              group_out);
        break;
    }
    /* On error no callback ran or will run; with no starts none will. */
    if (rc != TP_OK || starts == 0)
        group_free(g);
    return rc;
}
