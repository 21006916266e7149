/* SPDX-License-Identifier: MIT */
/*
 * Text utilities of the control server: UTF-8 validation and repair, and
 * the escaping of arbitrary strings (group names) for a JSON string or a
 * line of text. Pure functions over the buffer type (buf.h); a leaf of
 * control/: it calls nothing else there but buf.c.
 */
#include <stdio.h>
#include <string.h>

#include "text.h"

bool tp__ctl_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        unsigned char c = p[i];
        size_t n;
        unsigned int cp;
        if (c == 0)
            return false;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            n = 1;
            cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            n = 2;
            cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            n = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        for (size_t k = 1; k <= n; k++) {
            if (i + k >= len || (p[i + k] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (p[i + k] & 0x3F);
        }
        /* Overlong forms, surrogates and values beyond U+10FFFF. */
        if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) ||
            (n == 3 && cp < 0x10000) || cp > 0x10FFFF ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += n + 1;
    }
    return true;
}

/* Replaces each byte that does not begin a valid UTF-8 sequence by '?'.
 * Requests are valid UTF-8, but a message quoting a token cut at a byte
 * count may end in half a character, and responses must stay UTF-8 text
 * (JSON requires it; the reference's CLI decodes every line). */
void tp__ctl_scrub_utf8(char *s)
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

/* The length of the valid UTF-8 sequence at s[0..len) (1 to 4), or 0 if
 * s does not begin with one. */
static size_t utf8_seq(const char *s, size_t len)
{
    unsigned char c = (unsigned char)s[0];
    size_t n = c < 0x80             ? 1
               : (c & 0xE0) == 0xC0 ? 2
               : (c & 0xF0) == 0xE0 ? 3
               : (c & 0xF8) == 0xF0 ? 4
                                    : 0;
    return n && n <= len && tp__ctl_utf8_valid(s, n) ? n : 0;
}

void tp__ctl_buf_add_json_string(tp__ctl_buf *b, const char *s)
{
    size_t len = strlen(s);
    tp__ctl_buf_addn(b, "\"", 1);
    for (size_t i = 0; i < len;) {
        unsigned char c = (unsigned char)s[i];
        size_t n = utf8_seq(s + i, len - i);
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            tp__ctl_buf_addn(b, esc, 2);
        } else if (c < 0x20 || c == 0x7F) {
            tp__ctl_buf_addf(b, "\\u%04x", c);
        } else if (n) {
            tp__ctl_buf_addn(b, s + i, n);
            i += n;
            continue;
        } else {
            tp__ctl_buf_addn(b, "?", 1);
        }
        i++;
    }
    tp__ctl_buf_addn(b, "\"", 1);
}

void tp__ctl_buf_add_printable(tp__ctl_buf *b, const char *s)
{
    size_t len = strlen(s);
    for (size_t i = 0; i < len;) {
        unsigned char c = (unsigned char)s[i];
        size_t n = c < 0x20 || c == 0x7F ? 0 : utf8_seq(s + i, len - i);
        tp__ctl_buf_addn(b, n ? s + i : "?", n ? n : 1);
        i += n ? n : 1;
    }
}
