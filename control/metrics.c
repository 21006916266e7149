// SPDX-License-Identifier: MIT
/*
 * The pool's numbers for operators: the `stats` object and the `metrics`
 * text (Prometheus text exposition format 0.0.4), both from one table of
 * tp_get_stats fields plus the gauges the application registered.
 *
 * Adding a family: a row in `stat_fields` (a gauge or a counter read from
 * tp_stats), or a row in `hist_fields` (a tp_timings histogram, exposed
 * with cumulative _bucket samples labelled le, "+Inf" last, then _sum and
 * _count).
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
    TOTAL_FIELD(total_refused, "spawns_refused_total",
                "Spawning calls refused (pool locked or closed)."),
    TOTAL_FIELD(total_dropped, "starts_dropped_total",
                "Starts that never happened (their group or pool was "
                "cancelled or freed)."),
};
#define NFIELDS (sizeof stat_fields / sizeof stat_fields[0])

typedef struct hist_field {
    const char *metric; /* taskpool_<metric> */
    const char *help;
    size_t offset; /* of a tp_histogram in tp_timings */
} hist_field;

static const hist_field hist_fields[] = {
    {"task_wait_seconds",
     "Time from a start's admission into the pool's queue to its task's "
     "start.",
     offsetof(tp_timings, wait)},
    {"task_run_seconds", "Time from a task's start to its function's return.",
     offsetof(tp_timings, run)},
};
#define NHISTS (sizeof hist_fields / sizeof hist_fields[0])

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
    for (size_t i = 0; i < NHISTS; i++)
        if (strncmp(name, hist_fields[i].metric,
                    strlen(hist_fields[i].metric)) == 0)
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

/* A sample value: integers exactly, +Inf and NaN by their names. */
static void add_value(tp__ctl_buf *b, double v)
{
    if (isinf(v))
        tp__ctl_buf_add(b, v > 0 ? "+Inf" : "-Inf");
    else if (isnan(v))
        tp__ctl_buf_add(b, "NaN");
    else if (v > -1e15 && v < 1e15 && v == (double)(long long)v)
        tp__ctl_buf_addf(b, "%.0f", v);
    else
        tp__ctl_buf_addf(b, "%.17g", v);
}

/* taskpool_<name><suffix>{pool="<pool>"[,le="<le>"]} <v> */
static void emit_sample_le(tp__ctl_buf *b, const char *name, const char *suffix,
                           const char *pool, double le, double v)
{
    tp__ctl_buf_addf(b, "taskpool_%s%s{pool=\"", name, suffix);
    add_label(b, pool);
    if (isnan(le)) {
        tp__ctl_buf_add(b, "\"} ");
    } else {
        tp__ctl_buf_add(b, "\",le=\"");
        if (isinf(le))
            tp__ctl_buf_add(b, "+Inf");
        else
            tp__ctl_buf_addf(b, "%g", le);
        tp__ctl_buf_add(b, "\"} ");
    }
    add_value(b, v);
    tp__ctl_buf_add(b, "\n");
}

static void emit_sample(tp__ctl_buf *b, const char *name, const char *pool,
                        double v)
{
    emit_sample_le(b, name, "", pool, NAN, v);
}

/* A histogram family: the engine's buckets summed into Prometheus'
 * cumulative ones, the last (+Inf) equal to _count. */
static void emit_histogram(tp__ctl_buf *b, const hist_field *f,
                           const char *pool, const tp_histogram *h)
{
    const double *bounds = tp_hist_bounds();
    emit_family(b, f->metric, "histogram", f->help);
    uint64_t cum = 0;
    for (size_t i = 0; i < TP_HIST_BUCKETS; i++) {
        cum += h->buckets[i];
        emit_sample_le(b, f->metric, "_bucket", pool, bounds[i], (double)cum);
    }
    emit_sample_le(b, f->metric, "_sum", pool, NAN, h->sum);
    emit_sample_le(b, f->metric, "_count", pool, NAN, (double)h->count);
}

char *tp__ctl_metrics_text(tp_pool *pool, const tp__ctl_gauge *g, size_t ng)
{
    tp_stats st;
    tp_timings t;
    if (tp_get_stats(pool, &st) != TP_OK || tp_get_timings(pool, &t) != TP_OK)
        return NULL;
    const tp_stats *s = &st;
    const char *name = tp_pool_name(pool);
    tp__ctl_buf b = {0};
    emit_family(&b, "pool_size", "gauge",
                "Most tasks running at once (+Inf: no limit).");
    emit_sample(&b, "pool_size", name,
                s->pool_size == TP_UNLIMITED ? INFINITY : (double)s->pool_size);
    for (size_t i = 0; i < NFIELDS; i++) {
        const stat_field *f = &stat_fields[i];
        emit_family(&b, f->metric, f->type, f->help);
        emit_sample(&b, f->metric, name, field_value(s, f));
    }
    for (size_t i = 0; i < NHISTS; i++) {
        const hist_field *f = &hist_fields[i];
        emit_histogram(
            &b, f, name,
            (const tp_histogram *)(const void *)((const char *)&t + f->offset));
    }
    for (size_t i = 0; i < ng; i++) {
        emit_family(&b, g[i].name, "gauge",
                    "A value the application registered.");
        emit_sample(&b, g[i].name, name, g[i].fn(g[i].arg));
    }
    return tp__ctl_buf_done(&b);
}
