// SPDX-License-Identifier: MIT
/*
 * The pool's numbers for operators: the `stats` object and the `metrics`
 * text (Prometheus text exposition format 0.0.4), both from one table of
 * tp_get_stats fields plus the gauges the application registered.
 *
 * Adding a family: a row in `stat_fields` (a gauge or a counter read from
 * tp_stats), or, for a histogram, a call of emit_family(..., "histogram")
 * followed by one sample per bucket (label le, cumulative), _sum and
 * _count, the way emit_stat writes one sample.
 */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "ctl.h"

typedef struct stat_field {
    const char *key;    /* in `stats` */
    const char *metric; /* taskpool_<metric> */
    const char *type;   /* "gauge" or "counter" */
    const char *help;
    size_t offset; /* in tp_stats; a size_t, or a uint64_t for counters */
} stat_field;

#define SIZE_FIELD(k, m, h)                                                    \
    {                                                                          \
#k, m, "gauge", h, offsetof(tp_stats, k)                               \
    }
#define TOTAL_FIELD(k, m, h)                                                   \
    {                                                                          \
#k, m, "counter", h, offsetof(tp_stats, k)                             \
    }

static const stat_field stat_fields[] = {
    SIZE_FIELD(running, "tasks_running", "Tasks running now."),
    SIZE_FIELD(cancelled, "tasks_cancelling",
               "Tasks cancelled that have not ended yet."),
    SIZE_FIELD(ended, "tasks_ended_unflushed",
               "Tasks that ended and were not flushed yet."),
    SIZE_FIELD(pending, "starts_pending",
               "Starts waiting for room or for their group."),
    SIZE_FIELD(groups, "groups", "Groups the pool knows."),
    SIZE_FIELD(threads, "threads", "Worker threads alive."),
    SIZE_FIELD(idle_threads, "threads_idle",
               "Worker threads parked, waiting for work."),
    TOTAL_FIELD(total_started, "tasks_started_total",
                "Tasks started since the pool was created."),
    TOTAL_FIELD(total_ended, "tasks_ended_total",
                "Tasks ended since the pool was created."),
    TOTAL_FIELD(total_cancelled, "tasks_cancelled_total",
                "Tasks cancelled since the pool was created."),
    TOTAL_FIELD(total_failed, "tasks_failed_total",
                "Tasks that returned non-zero since the pool was created."),
};
#define NFIELDS (sizeof stat_fields / sizeof stat_fields[0])

static double field_value(const tp_stats *s, const stat_field *f)
{
    const char *base = (const char *)s + f->offset;
    if (strcmp(f->type, "counter") == 0)
        return (double)*(const uint64_t *)(const void *)base;
    return (double)*(const size_t *)(const void *)base;
}

bool tp__ctl_gauge_name_ok(const char *name)
{
    if (!name || !*name || strlen(name) >= 64 ||
        !strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_",
                name[0]))
        return false;
    for (const char *p = name; *p; p++)
        if (!strchr("abcdefghijklmnopqrstuvwxyz"
                    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_",
                    *p))
            return false;
    /* Neither a stats key nor a metric of the table. */
    if (strcmp(name, "pool_size") == 0)
        return false;
    for (size_t i = 0; i < NFIELDS; i++)
        if (strcmp(name, stat_fields[i].key) == 0 ||
            strncmp(name, stat_fields[i].metric,
                    strlen(stat_fields[i].metric)) == 0)
            return false;
    return true;
}

cJSON *tp__ctl_stats_object(const tp_stats *s, const tp__ctl_gauge *g,
                            size_t ng)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    if (s->pool_size == TP_UNLIMITED)
        cJSON_AddNullToObject(o, "pool_size");
    else
        cJSON_AddNumberToObject(o, "pool_size", (double)s->pool_size);
    for (size_t i = 0; i < NFIELDS; i++)
        cJSON_AddNumberToObject(o, stat_fields[i].key,
                                field_value(s, &stat_fields[i]));
    for (size_t i = 0; i < ng; i++)
        cJSON_AddNumberToObject(o, g[i].name, g[i].fn(g[i].arg));
    return o;
}

/* A label value: backslash, double quote and newline escaped. */
static void add_label(tp__ctl_buf *b, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\')
            tp__ctl_buf_add(b, "\\\\");
        else if (*v == '"')
            tp__ctl_buf_add(b, "\\\"");
        else if (*v == '\n')
            tp__ctl_buf_add(b, "\\n");
        else
            tp__ctl_buf_addn(b, v, 1);
    }
}

static void emit_family(tp__ctl_buf *b, const char *name, const char *type,
                        const char *help)
{
    tp__ctl_buf_addf(b, "# HELP taskpool_%s %s\n# TYPE taskpool_%s %s\n", name,
                     help, name, type);
}

static void emit_sample(tp__ctl_buf *b, const char *name, const char *pool,
                        double v)
{
    tp__ctl_buf_addf(b, "taskpool_%s{pool=\"", name);
    add_label(b, pool);
    if (isinf(v))
        tp__ctl_buf_add(b, "\"} +Inf\n");
    else if (isnan(v))
        tp__ctl_buf_add(b, "\"} NaN\n");
    else if (v > -1e15 && v < 1e15 && v == (double)(long long)v)
        tp__ctl_buf_addf(b, "\"} %.0f\n", v);
    else
        tp__ctl_buf_addf(b, "\"} %.17g\n", v);
}

char *tp__ctl_metrics_text(const char *pool, const tp_stats *s,
                           const tp__ctl_gauge *g, size_t ng)
{
    tp__ctl_buf b = {0};
    emit_family(&b, "pool_size", "gauge",
                "Most tasks running at once (+Inf: no limit).");
    emit_sample(&b, "pool_size", pool,
                s->pool_size == TP_UNLIMITED ? INFINITY : (double)s->pool_size);
    for (size_t i = 0; i < NFIELDS; i++) {
        const stat_field *f = &stat_fields[i];
        emit_family(&b, f->metric, f->type, f->help);
        emit_sample(&b, f->metric, pool, field_value(s, f));
    }
    for (size_t i = 0; i < ng; i++) {
        emit_family(&b, g[i].name, "gauge",
                    "A value the application registered.");
        emit_sample(&b, g[i].name, pool, g[i].fn(g[i].arg));
    }
    return tp__ctl_buf_done(&b);
}
