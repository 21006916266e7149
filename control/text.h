/* SPDX-License-Identifier: MIT */
/*
 * Text utilities of the control server (text.c): UTF-8 checks and repair,
 * escaping for JSON strings and for lines of text. Depends on buf.h only.
 */
#ifndef TP_CTL_TEXT_H
#define TP_CTL_TEXT_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

/* True if s[0..len) is valid UTF-8 without NUL bytes. */
bool tp__ctl_utf8_valid(const char *s, size_t len);

/* Replaces each byte of s[0..len) that does not begin a valid UTF-8
 * sequence (a NUL byte included) by '?', in place. Cannot fail. */
void tp__ctl_scrub_utf8(char *s, size_t len);

/* Appends s as a JSON string (quotes, escapes; bytes that are not valid
 * UTF-8 become '?'). */
void tp__ctl_buf_add_json_string(tp__ctl_buf *b, const char *s);

/* Appends s with control characters (newlines included) and bytes that are
 * not valid UTF-8 replaced by '?', so it stays within one line of text. */
void tp__ctl_buf_add_printable(tp__ctl_buf *b, const char *s);

#endif
