// SPDX-License-Identifier: MIT
/* The growable text buffer (see buf.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

static bool reserve(tp__ctl_buf *b, size_t more)
{
    if (b->oom)
        return false;
    if (b->len + more + 1 <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap * 2 : 1024;
    while (cap < b->len + more + 1)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->oom = true;
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

void tp__ctl_buf_addn(tp__ctl_buf *b, const char *s, size_t n)
{
    if (!reserve(b, n))
        return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void tp__ctl_buf_add(tp__ctl_buf *b, const char *s)
{
    tp__ctl_buf_addn(b, s, strlen(s));
}

void tp__ctl_buf_addf(tp__ctl_buf *b, const char *fmt, ...)
{
    /* Formatted straight into the room left, and a second time only if
     * it did not fit (most pieces are short). */
    if (!reserve(b, 64))
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->p[b->len] = '\0';
        return;
    }
    if ((size_t)n >= b->cap - b->len) {
        if (!reserve(b, (size_t)n)) {
            b->p[b->len] = '\0';
            return;
        }
        va_start(ap, fmt);
        vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    b->len += (size_t)n;
}

char *tp__ctl_buf_done(tp__ctl_buf *b)
{
    if (!b->p && !b->oom)
        tp__ctl_buf_addn(b, "", 0);
    char *p = b->oom ? NULL : b->p;
    if (b->oom)
        free(b->p);
    *b = (tp__ctl_buf){0};
    return p;
}

void tp__ctl_buf_free(tp__ctl_buf *b)
{
    free(b->p);
    *b = (tp__ctl_buf){0};
}
