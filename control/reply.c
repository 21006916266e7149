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
    memset(r, 0, sizeof *r);
}

void tp__ctl_reply_result(tp__ctl_reply *r, cJSON *result)
{
    r->ok = true;
    r->result = result;
}

/* Replaces each byte that does not begin a valid UTF-8 sequence by '?'.
 * Requests are valid UTF-8, but a message quoting a token cut at a byte
 * count may end in half a character, and responses must stay UTF-8 text
 * (JSON requires it; the reference's CLI decodes every line). */
static void scrub_utf8(char *s)
{
    size_t len = strlen(s);
    for (size_t i = 0; i < len;) {
        unsigned char c = (unsigned char)s[i];
        size_t n = c < 0x80             ? 1
                   : (c & 0xE0) == 0xC0 ? 2
                   : (c & 0xF0) == 0xE0 ? 3
                   : (c & 0xF8) == 0xF0 ? 4
                                        : 0;
        if (n && n <= len - i && tp__ctl_utf8_valid(s + i, n))
            i += n;
        else
            s[i++] = '?';
    }
}

void tp__ctl_reply_error(tp__ctl_reply *r, const char *error, const char *fmt,
                         ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = NULL;
    if (vasprintf(&msg, fmt, ap) < 0)
        msg = NULL;
    va_end(ap);
    if (msg)
        scrub_utf8(msg);
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

char *tp__ctl_result_text(const char *cmd, const cJSON *result)
{
    tp__ctl_buf b = {0};
    if (!result) {
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
    if (json) {
        cJSON *o = cJSON_CreateObject();
        if (!o)
            return NULL;
        cJSON_AddBoolToObject(o, "ok", r->ok);
        if (r->ok) {
            /* A reference item: deleting o leaves r->result alone. */
            if (r->result)
                cJSON_AddItemReferenceToObject(o, "result", r->result);
            else
                cJSON_AddNullToObject(o, "result");
        } else {
            cJSON_AddStringToObject(o, "error", r->error ? r->error : "");
            cJSON_AddStringToObject(o, "message", r->message ? r->message : "");
        }
        char *s = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
        if (!s)
            return NULL;
        tp__ctl_buf_add(&b, s);
        cJSON_free(s);
        tp__ctl_buf_add(&b, "\n");
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
