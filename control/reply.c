/* SPDX-License-Identifier: MIT */
/*
 * Responses of the control server: a typed result (a cJSON value) or an
 * error, rendered either as the reference prints it (text mode) or as one
 * JSON object per line. The CLI renders JSON results with the same function
 * as the server's text mode, so both print the same thing.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "ctl.h"
#include "text.h"

/* Text is built in the control server's one buffer type (buf.h). */

static void sb_num(tp__ctl_buf *b, double d)
{
    /* Converting a double beyond the range of long long is undefined, so
     * only small ones are cast; from 1e18 on every double is an integer,
     * and "%.0f" prints all its digits (at most 309). */
    char tmp[320];
    if (d > -1e18 && d < 1e18 && d == (double)(long long)d)
        snprintf(tmp, sizeof tmp, "%lld", (long long)d);
    else if (isfinite(d) && (d <= -1e18 || d >= 1e18))
        snprintf(tmp, sizeof tmp, "%.0f", d);
    else
        snprintf(tmp, sizeof tmp, "%g", d);
    tp__ctl_buf_add(b, tmp);
}

void tp__ctl_reply_clear(tp__ctl_reply *r)
{
    cJSON_Delete(r->result);
    free(r->message);
    free(r->wire);
    memset(r, 0, sizeof *r);
}

void tp__ctl_reply_result(tp__ctl_reply *r, cJSON *result)
{
    r->ok = true;
    r->result = result;
}

void tp__ctl_reply_error(tp__ctl_reply *r, const char *error, const char *fmt,
                         ...)
{
    /* Formatted once into a stack buffer that holds most messages, then
     * copied at its exact size; a longer one is formatted again into its
     * own allocation. Then scrubbed in one pass. */
    char small[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    char *msg = n < 0 ? NULL : malloc((size_t)n + 1);
    if (msg && (size_t)n < sizeof small) {
        memcpy(msg, small, (size_t)n + 1);
    } else if (msg) {
        va_start(ap, fmt);
        vsnprintf(msg, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    if (msg)
        tp__ctl_scrub_utf8(msg, (size_t)n);
    cJSON_Delete(r->result);
    r->result = NULL;
    free(r->message);
    r->ok = false;
    r->error = error;
    r->message = msg;
}

void tp__ctl_reply_tp_error(tp__ctl_reply *r, tp_pool *pool, int err)
{
    (void)pool;
    /* The reference's sentences where it has one for this condition. */
    switch (err) {
    case TP_ELOCKED:
        tp__ctl_reply_error(r, tp_err_name(err), "Cannot start new tasks");
        break;
    case TP_ECLOSED:
        tp__ctl_reply_error(r, tp_err_name(err), "You must use another pool");
        break;
    default:
        tp__ctl_reply_error(r, tp_err_name(err), "%s", tp_strerror(err));
        break;
    }
}

static void render_value(tp__ctl_buf *b, const cJSON *v)
{
    if (cJSON_IsNull(v))
        tp__ctl_buf_add(b, "inf");
    else if (cJSON_IsTrue(v))
        tp__ctl_buf_add(b, "True");
    else if (cJSON_IsFalse(v))
        tp__ctl_buf_add(b, "False");
    else if (cJSON_IsNumber(v))
        sb_num(b, v->valuedouble);
    else if (cJSON_IsString(v))
        tp__ctl_buf_add(b, v->valuestring);
    else {
        char *s = cJSON_PrintUnformatted(v);
        if (s) {
            tp__ctl_buf_add(b, s);
            cJSON_free(s);
        } else {
            b->oom = true;
        }
    }
}

void tp__ctl_group_line(tp__ctl_buf *b, const tp_group_info *g)
{
    tp__ctl_buf_add_printable(b, g->name);
    tp__ctl_buf_addf(b, " running=%zu cancelled=%zu ended=%zu pending=%zu",
                     g->running, g->cancelled, g->ended, g->pending);
    if (g->num_concurrent == TP_UNLIMITED)
        tp__ctl_buf_add(b, " num_concurrent=inf");
    else
        tp__ctl_buf_addf(b, " num_concurrent=%zu", g->num_concurrent);
}

char *tp__ctl_groups_render(const tp_groups *g, bool json, size_t *len)
{
    tp__ctl_buf b = {0};
    if (json)
        tp__ctl_buf_add(&b, "{\"ok\":true,\"result\":[");
    for (size_t i = 0; i < g->len && !b.oom; i++) {
        const tp_group_info *e = &g->v[i];
        if (!json) {
            tp__ctl_group_line(&b, e);
            tp__ctl_buf_add(&b, "\n");
            continue;
        }
        tp__ctl_buf_add(&b, i ? ",{\"name\":" : "{\"name\":");
        tp__ctl_buf_add_json_string(&b, e->name);
        tp__ctl_buf_addf(&b,
                         ",\"running\":%zu,\"cancelled\":%zu,\"ended\":%zu,"
                         "\"pending\":%zu,\"num_concurrent\":",
                         e->running, e->cancelled, e->ended, e->pending);
        if (e->num_concurrent == TP_UNLIMITED)
            tp__ctl_buf_add(&b, "null}");
        else
            tp__ctl_buf_addf(&b, "%zu}", e->num_concurrent);
    }
    tp__ctl_buf_add(&b, json ? "]}\n" : "\n");
    size_t n = b.len;
    char *out = tp__ctl_buf_done(&b);
    if (out)
        *len = n;
    return out;
}

/* A count of a groups result as the CLI received it (JSON numbers). */
static size_t json_count(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0))
        return v && cJSON_IsNull(v) ? TP_UNLIMITED : 0;
    return v->valuedouble >= 1.8e19 ? TP_UNLIMITED : (size_t)v->valuedouble;
}

/* The text of a groups result: one tp__ctl_group_line per element, joined
 * by newlines (the server's text mode without its blank line). */
static void groups_text(tp__ctl_buf *b, const cJSON *result)
{
    const cJSON *e;
    bool first = true;
    cJSON_ArrayForEach(e, result)
    {
        const char *name =
            cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "name"));
        tp_group_info g = {
            .name = name ? name : "?",
            .running = json_count(e, "running"),
            .cancelled = json_count(e, "cancelled"),
            .ended = json_count(e, "ended"),
            .pending = json_count(e, "pending"),
            .num_concurrent = json_count(e, "num_concurrent"),
        };
        if (!first)
            tp__ctl_buf_add(b, "\n");
        first = false;
        tp__ctl_group_line(b, &g);
    }
}

char *tp__ctl_result_text(const char *cmd, const cJSON *result)
{
    tp__ctl_buf b = {0};
    if (cmd && strcasecmp(cmd, "groups") == 0 && cJSON_IsArray(result)) {
        groups_text(&b, result);
    } else if (!result) {
        tp__ctl_buf_add(&b, "ok");
    } else if (cJSON_IsArray(result)) {
        /* get-group-ids returns a set in the reference, stop a list. */
        bool set = cmd && strcasecmp(cmd, "get-group-ids") == 0;
        tp__ctl_buf_add(&b, set ? "{" : "[");
        const cJSON *e;
        bool first = true;
        cJSON_ArrayForEach(e, result)
        {
            if (!first)
                tp__ctl_buf_add(&b, ", ");
            first = false;
            render_value(&b, e);
        }
        tp__ctl_buf_add(&b, set ? "}" : "]");
    } else if (cJSON_IsObject(result)) {
        const cJSON *e;
        bool first = true;
        cJSON_ArrayForEach(e, result)
        {
            if (!first)
                tp__ctl_buf_add(&b, " ");
            first = false;
            tp__ctl_buf_add(&b, e->string);
            tp__ctl_buf_add(&b, "=");
            render_value(&b, e);
        }
    } else {
        render_value(&b, result);
    }
    return tp__ctl_buf_done(&b);
}

char *tp__ctl_reply_render(const tp__ctl_reply *r, bool json, size_t *len)
{
    tp__ctl_buf b = {0};
    if (r->wire) {
        tp__ctl_buf_addn(&b, r->wire, r->wire_len);
    } else if (json && r->ok) {
        /* {"ok":true,"result":...}, as cJSON would print the object,
         * without building one around the result. */
        char *s = r->result ? cJSON_PrintUnformatted(r->result) : NULL;
        if (r->result && !s)
            return NULL;
        tp__ctl_buf_add(&b, "{\"ok\":true,\"result\":");
        tp__ctl_buf_add(&b, s ? s : "null");
        tp__ctl_buf_add(&b, "}\n");
        cJSON_free(s);
    } else if (json) {
        tp__ctl_buf_add(&b, "{\"ok\":false,\"error\":");
        tp__ctl_buf_add_json_string(&b, r->error ? r->error : "");
        tp__ctl_buf_add(&b, ",\"message\":");
        tp__ctl_buf_add_json_string(&b, r->message ? r->message : "");
        tp__ctl_buf_add(&b, "}\n");
    } else if (r->ok && r->is_help) {
        tp__ctl_buf_add(&b, cJSON_IsString(r->result) ? r->result->valuestring
                                                      : "");
        tp__ctl_buf_add(&b, "\n\n");
    } else if (r->ok) {
        char *s = tp__ctl_result_text(r->cmd, r->result);
        if (!s)
            return NULL;
        tp__ctl_buf_add(&b, s);
        free(s);
        tp__ctl_buf_add(&b, "\n");
    } else {
        tp__ctl_buf_add(&b, r->message ? r->message : "error");
        tp__ctl_buf_add(&b, r->is_usage ? "\n\n" : "\n");
    }
    size_t n = b.len;
    char *out = tp__ctl_buf_done(&b);
    if (out && len)
        *len = n;
    return out;
}

void tp__ctl_reply_help(tp__ctl_reply *r, char *text)
{
    if (!text) {
        tp__ctl_reply_tp_error(r, NULL, TP_ENOMEM);
        return;
    }
    /* Help texts are kept without their final newline. */
    size_t n = strlen(text);
    if (n && text[n - 1] == '\n')
        text[n - 1] = '\0';
    tp__ctl_reply_result(r, cJSON_CreateString(text));
    r->is_help = true;
    free(text);
}
