/* SPDX-License-Identifier: MIT */
/*
 * Text utilities of the control server: UTF-8 validation and repair, and
 * the escaping of arbitrary strings (group names) for a JSON string or a
 * line of text. Pure functions over the buffer type (buf.h); a leaf of
 * control/: it calls nothing else there but buf.c.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "text.h"

/* The number of bytes at p[0..len) that are ASCII without NUL, counted 8
 * at a time (the caller then decodes the next sequence): requests and
 * messages are mostly ASCII, and the server checks every request line. */
static size_t ascii_run(const unsigned char *p, size_t len)
{
    const uint64_t high = 0x8080808080808080u, ones = 0x0101010101010101u;
    size_t i = 0;
    while (len - i >= 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        /* A byte >= 0x80, or a zero byte ((w - ones) & ~w & high is
         * nonzero exactly when one of w's bytes is 0). */
        if ((w & high) || ((w - ones) & ~w & high))
            break;
        i += 8;
    }
    return i;
}

/* The length of the valid UTF-8 sequence at p[0..len) (len >= 1): 1 to 4,
 * or 0 for a NUL byte, a byte that begins no sequence, a sequence cut
 * short, an overlong form, a surrogate or a value beyond U+10FFFF. */
static inline size_t utf8_seq(const unsigned char *p, size_t len)
{
    unsigned char c = p[0];
    size_t n;
    unsigned int cp;
    if (c < 0x80)
        return c ? 1 : 0;
    if ((c & 0xE0) == 0xC0) {
        n = 2;
        cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
        n = 3;
        cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (n > len)
        return 0;
    for (size_t k = 1; k < n; k++) {
        if ((p[k] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[k] & 0x3F);
    }
    if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) ||
        (n == 4 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

bool tp__ctl_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        i += ascii_run(p + i, len - i);
        if (i == len)
            break;
        size_t n = utf8_seq(p + i, len - i);
        if (!n)
            return false;
        i += n;
    }
    return true;
}

/* One pass: ASCII runs are skipped 8 bytes at a time, every other byte
 * begins a sequence that is kept whole or is replaced. Requests are valid
 * UTF-8, but a message quoting a token cut at a byte count may end in half
 * a character, and responses must stay UTF-8 text (JSON requires it; the
 * reference's CLI decodes every line). */
void tp__ctl_scrub_utf8(char *s, size_t len)
{
    unsigned char *p = (unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        i += ascii_run(p + i, len - i);
        if (i == len)
            break;
        size_t n = utf8_seq(p + i, len - i);
        if (n)
            i += n;
        else
            p[i++] = '?';
    }
}

void tp__ctl_buf_add_json_string(tp__ctl_buf *b, const char *s)
{
    /* Escaped as cJSON escapes (short forms for the common controls), in
     * runs: what needs no escape is copied a run at a time. */
    static const char shorts[] = "btn\0fr"; /* \b \t \n - \f \r */
    const unsigned char *p = (const unsigned char *)s;
    size_t len = strlen(s);
    tp__ctl_buf_addn(b, "\"", 1);
    for (size_t i = 0; i < len;) {
        size_t run = 0, n;
        while (i + run < len && p[i + run] >= 0x20 && p[i + run] != '"' &&
               p[i + run] != '\\' && p[i + run] != 0x7F &&
               (n = utf8_seq(p + i + run, len - i - run)) != 0)
            run += n;
        tp__ctl_buf_addn(b, s + i, run);
        i += run;
        if (i == len)
            break;
        unsigned char c = p[i++];
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            tp__ctl_buf_addn(b, esc, 2);
        } else if (c >= 8 && c <= 13 && c != 11) {
            char esc[2] = {'\\', shorts[c - 8]};
            tp__ctl_buf_addn(b, esc, 2);
        } else if (c < 0x20 || c == 0x7F) {
            tp__ctl_buf_addf(b, "\\u%04x", c);
        } else {
            tp__ctl_buf_addn(b, "?", 1); /* not UTF-8 */
        }
    }
    tp__ctl_buf_addn(b, "\"", 1);
}

void tp__ctl_buf_add_printable(tp__ctl_buf *b, const char *s)
{
    size_t len = strlen(s);
    for (size_t i = 0; i < len;) {
        unsigned char c = (unsigned char)s[i];
        size_t n = c < 0x20 || c == 0x7F
                       ? 0
                       : utf8_seq((const unsigned char *)s + i, len - i);
        tp__ctl_buf_addn(b, n ? s + i : "?", n ? n : 1);
        i += n ? n : 1;
    }
}
