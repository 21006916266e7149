// SPDX-License-Identifier: MIT
/*
 * The control server's one growable text buffer: every text it builds
 * (help and usage texts, responses, metrics) is appended to one of these.
 * A failed allocation sets oom; later appends do nothing, and
 * tp__ctl_buf_done then frees the text and returns NULL. Depends on
 * nothing else in control/.
 */
#ifndef TP_CTL_BUF_H
#define TP_CTL_BUF_H

#include <stdbool.h>
#include <stddef.h>

typedef struct tp__ctl_buf {
    char *p; /* NUL-terminated once anything was added; owned */
    size_t len, cap;
    bool oom;
} tp__ctl_buf;

void tp__ctl_buf_addn(tp__ctl_buf *b, const char *s, size_t n);
void tp__ctl_buf_add(tp__ctl_buf *b, const char *s);
void tp__ctl_buf_addf(tp__ctl_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The text (malloc'd, the caller frees it; "" if nothing was added), or
 * NULL if an allocation failed. The buffer is empty afterwards. */
char *tp__ctl_buf_done(tp__ctl_buf *b);
/* Drops the text. */
void tp__ctl_buf_free(tp__ctl_buf *b);

#endif
