/* SPDX-License-Identifier: MIT */
/*
 * The registry of a control server: the functions and callbacks that
 * apply, map, -e and -c name, and the application's gauges. Filled before
 * the server starts (under the server's stop_mu), read-only afterwards, so
 * it needs no lock of its own.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ctl.h"

const tp__ctl_entry *tp__ctl_registry_find(const tp__ctl_registry *reg,
                                           const char *name, bool fn)
{
    const tp__ctl_entry *fold = NULL;
    size_t nfold = 0;
    for (size_t i = 0; i < reg->len; i++) {
        const tp__ctl_entry *e = &reg->v[i];
        if ((fn ? e->fn == NULL : e->cb == NULL))
            continue;
        if (strcmp(e->name, name) == 0)
            return e;
        if (strcasecmp(e->name, name) == 0) {
            fold = e;
            nfold++;
        }
    }
    return nfold == 1 ? fold : NULL;
}

int tp__ctl_registry_add(tp__ctl_registry *reg, const char *name, tp_fn fn,
                         tp_callback cb, void *cb_arg)
{
    for (size_t i = 0; i < reg->len; i++)
        if ((fn ? reg->v[i].fn != NULL : reg->v[i].cb != NULL) &&
            strcmp(reg->v[i].name, name) == 0)
            return TP_EGROUP_EXISTS;
    if (reg->len == reg->cap) {
        size_t cap = reg->cap ? reg->cap * 2 : 8;
        tp__ctl_entry *v = realloc(reg->v, cap * sizeof *v);
        if (!v)
            return TP_ENOMEM;
        reg->v = v;
        reg->cap = cap;
    }
    char *copy = strdup(name);
    if (!copy)
        return TP_ENOMEM;
    reg->v[reg->len++] = (tp__ctl_entry){copy, fn, cb, cb_arg};
    return TP_OK;
}

void tp__ctl_registry_free(tp__ctl_registry *reg)
{
    for (size_t i = 0; i < reg->len; i++)
        free(reg->v[i].name);
    free(reg->v);
    for (size_t i = 0; i < reg->ngauges; i++)
        free(reg->gauges[i].name);
    free(reg->gauges);
    memset(reg, 0, sizeof *reg);
}

int tp__ctl_registry_add_gauge(tp__ctl_registry *reg, const char *name,
                               double (*fn)(void *arg), void *arg)
{
    if (!fn || !tp__ctl_gauge_name_ok(name))
        return TP_EINVAL;
    for (size_t i = 0; i < reg->ngauges; i++)
        if (strcmp(reg->gauges[i].name, name) == 0)
            return TP_EGROUP_EXISTS;
    tp__ctl_gauge *v =
        realloc(reg->gauges, (reg->ngauges + 1) * sizeof *reg->gauges);
    if (!v)
        return TP_ENOMEM;
    reg->gauges = v;
    char *copy = strdup(name);
    if (!copy)
        return TP_ENOMEM;
    reg->gauges[reg->ngauges++] = (tp__ctl_gauge){copy, fn, arg};
    return TP_OK;
}
