/* SPDX-License-Identifier: MIT */
/*
 * Help and usage texts shaped like Python's argparse: the usage line
 * wrapped to the client's terminal width, the "positional arguments:" and
 * "options:" sections with C wording for the types, the top help listing
 * a command table, and a per-width cache. Formats the table it is given
 * (it reads no command table of its own), so it depends on buf.c only.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

/* Text is built in the control server's one buffer type (buf.h). */

static void s_spaces(tp__ctl_buf *s, size_t n)
{
    static const char spaces[] = "                                ";
    while (n > 0) {
        size_t k = n < sizeof spaces - 1 ? n : sizeof spaces - 1;
        tp__ctl_buf_addn(s, spaces, k);
        n -= k;
    }
}

/* ------------------------------------------------------------------------ */
/* Usage and help                                                           */
/* ------------------------------------------------------------------------ */

static bool is_positional(const tp__ctl_argspec *a)
{
    return a->long_opt == NULL && a->short_opt == NULL;
}

static void metavar(const tp__ctl_argspec *a, char *out, size_t size)
{
    size_t i = 0;
    for (; a->dest[i] && i + 1 < size; i++)
        out[i] = (char)toupper((unsigned char)a->dest[i]);
    out[i] = '\0';
}

/* One usage part of an argument: "[-n NUM]", "num", "[x ...]". */
static void usage_part(const tp__ctl_argspec *a, tp__ctl_buf *s)
{
    if (is_positional(a)) {
        if (a->nargs == TP__CTL_ONE) {
            tp__ctl_buf_add(s, a->dest);
        } else {
            tp__ctl_buf_add(s, "[");
            tp__ctl_buf_add(s, a->dest);
            tp__ctl_buf_add(s, a->nargs == TP__CTL_STAR ? " ...]" : "]");
        }
        return;
    }
    tp__ctl_buf_add(s, "[");
    tp__ctl_buf_add(s, a->short_opt ? a->short_opt : a->long_opt);
    if (a->type != TP__CTL_T_FLAG) {
        char mv[64];
        metavar(a, mv, sizeof mv);
        tp__ctl_buf_add(s, " ");
        tp__ctl_buf_add(s, mv);
    }
    tp__ctl_buf_add(s, "]");
}

/* argparse's get_lines: packs parts into lines of at most width columns. */
static void wrap_parts(tp__ctl_buf *out, char **parts, size_t n, size_t indent,
                       size_t first_len, size_t width, bool first)
{
    size_t line_len = first ? first_len : indent - 1;
    bool empty = true;
    for (size_t i = 0; i < n; i++) {
        size_t pl = strlen(parts[i]);
        if (line_len + 1 + pl > width && !empty) {
            tp__ctl_buf_add(out, "\n");
            s_spaces(out, indent);
            line_len = indent - 1;
            empty = true;
        }
        if (!empty)
            tp__ctl_buf_add(out, " ");
        tp__ctl_buf_add(out, parts[i]);
        line_len += pl + 1;
        empty = false;
    }
}

/* "usage: prog [-h] ..." without the trailing newline. */
static void usage_line(const tp__ctl_command *cmd, int width, tp__ctl_buf *out)
{
    if (!cmd) {
        tp__ctl_buf_add(out, "usage: " TP__CTL_TOP_USAGE);
        return;
    }
    char *opt[TP__CTL_MAX_ARGS + 2], *pos[TP__CTL_MAX_ARGS];
    size_t nopt = 0, npos = 0;
    opt[nopt++] = strdup(cmd->name);
    opt[nopt++] = strdup("[-h]");
    for (size_t i = 0; i < cmd->nargs; i++) {
        tp__ctl_buf part = {0};
        usage_part(&cmd->args[i], &part);
        char *p = tp__ctl_buf_done(&part);
        if (is_positional(&cmd->args[i]))
            pos[npos++] = p;
        else
            opt[nopt++] = p;
    }
    for (size_t i = 0; i < nopt; i++)
        if (!opt[i])
            out->oom = true;
    for (size_t i = 0; i < npos; i++)
        if (!pos[i])
            out->oom = true;
    if (!out->oom) {
        size_t total = strlen("usage: ");
        for (size_t i = 0; i < nopt; i++)
            total += strlen(opt[i]) + (i ? 1 : 0);
        for (size_t i = 0; i < npos; i++)
            total += strlen(pos[i]) + 1;
        tp__ctl_buf_add(out, "usage: ");
        size_t w = (size_t)width;
        size_t indent = strlen("usage: ") + strlen(cmd->name) + 1;
        if (total <= w) {
            for (size_t i = 0; i < nopt; i++) {
                if (i)
                    tp__ctl_buf_add(out, " ");
                tp__ctl_buf_add(out, opt[i]);
            }
            for (size_t i = 0; i < npos; i++) {
                tp__ctl_buf_add(out, " ");
                tp__ctl_buf_add(out, pos[i]);
            }
        } else if (indent - 1 <= 0.75 * (double)w) {
            wrap_parts(out, opt, nopt, indent, strlen("usage: ") - 1, w, true);
            if (npos) {
                tp__ctl_buf_add(out, "\n");
                s_spaces(out, indent);
                wrap_parts(out, pos, npos, indent, 0, w, false);
            }
        } else {
            /* A long prog: everything on lines of its own. */
            tp__ctl_buf_add(out, cmd->name);
            indent = strlen("usage: ");
            tp__ctl_buf_add(out, "\n");
            s_spaces(out, indent);
            wrap_parts(out, opt + 1, nopt - 1, indent, 0, w, false);
            if (npos) {
                tp__ctl_buf_add(out, "\n");
                s_spaces(out, indent);
                wrap_parts(out, pos, npos, indent, 0, w, false);
            }
        }
    }
    for (size_t i = 0; i < nopt; i++)
        free(opt[i]);
    for (size_t i = 0; i < npos; i++)
        free(pos[i]);
}

/* Wraps text at whitespace into lines of at most width columns, the first
 * starting at column first_col (already written), the others indented by
 * indent. */
static void wrap_text(tp__ctl_buf *out, const char *text, size_t width,
                      size_t indent)
{
    size_t col = 0;
    const char *p = text;
    bool line_empty = true;
    while (*p) {
        while (*p && isspace((unsigned char)*p))
            p++;
        if (!*p)
            break;
        const char *w = p;
        while (*p && !isspace((unsigned char)*p))
            p++;
        size_t wl = (size_t)(p - w);
        if (!line_empty && col + 1 + wl > width) {
            tp__ctl_buf_add(out, "\n");
            s_spaces(out, indent);
            col = 0;
            line_empty = true;
        }
        if (!line_empty) {
            tp__ctl_buf_add(out, " ");
            col++;
        }
        tp__ctl_buf_addn(out, w, wl);
        col += wl;
        line_empty = false;
    }
}

typedef struct help_item {
    char *invocation;
    const char *help;
    char *help_owned;
    size_t indent;
} help_item;

/* argparse's format_action for one item. */
static void help_line(tp__ctl_buf *out, const help_item *it, size_t help_pos,
                      size_t width)
{
    size_t action_width =
        help_pos > it->indent + 2 ? help_pos - it->indent - 2 : 0;
    size_t help_width = width > help_pos + 11 ? width - help_pos : 11;
    const char *help = it->help_owned ? it->help_owned : it->help;
    s_spaces(out, it->indent);
    tp__ctl_buf_add(out, it->invocation);
    size_t il = strlen(it->invocation);
    if (!help) {
        tp__ctl_buf_add(out, "\n");
        return;
    }
    if (il <= action_width) {
        s_spaces(out, action_width - il + 2);
    } else {
        tp__ctl_buf_add(out, "\n");
        s_spaces(out, help_pos);
    }
    wrap_text(out, help, help_width, help_pos);
    tp__ctl_buf_add(out, "\n");
}

static size_t help_position(const help_item *items, size_t n, size_t width)
{
    size_t max_len = 0;
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(items[i].invocation) + items[i].indent;
        if (l > max_len)
            max_len = l;
    }
    size_t max_pos = width > 20 ? width - 20 : 0;
    if (max_pos < 4)
        max_pos = 4;
    if (max_pos > 24)
        max_pos = 24;
    return max_len + 2 < max_pos ? max_len + 2 : max_pos;
}

static char *invocation(const tp__ctl_argspec *a)
{
    tp__ctl_buf s = {0};
    if (is_positional(a)) {
        tp__ctl_buf_add(&s, a->dest);
        return tp__ctl_buf_done(&s);
    }
    char mv[64];
    metavar(a, mv, sizeof mv);
    const char *opts[2] = {a->short_opt, a->long_opt};
    bool first = true;
    for (int i = 0; i < 2; i++) {
        if (!opts[i])
            continue;
        if (!first)
            tp__ctl_buf_add(&s, ", ");
        first = false;
        tp__ctl_buf_add(&s, opts[i]);
        if (a->type != TP__CTL_T_FLAG) {
            tp__ctl_buf_add(&s, " ");
            tp__ctl_buf_add(&s, mv);
        }
    }
    return tp__ctl_buf_done(&s);
}

static int clamp_width(int width)
{
    if (width < 20)
        return 20;
    if (width > 1000)
        return 1000;
    return width;
}

char *tp__ctl_help_command(const tp__ctl_command *cmd, int width)
{
    width = clamp_width(width);
    size_t w = (size_t)width;
    help_item items[TP__CTL_MAX_ARGS + 1];
    size_t n = 0;
    items[n++] = (help_item){strdup("-h, --help"),
                             "show this help message and exit", NULL, 2};
    for (size_t i = 0; i < cmd->nargs; i++) {
        const tp__ctl_argspec *a = &cmd->args[i];
        help_item it = {invocation(a), a->help, NULL, 2};
        if (a->deflt &&
            asprintf(&it.help_owned, "%s (default: %s)", a->help, a->deflt) < 0)
            it.help_owned = NULL;
        items[n++] = it;
    }
    size_t pos = help_position(items, n, w);
    tp__ctl_buf out = {0};
    usage_line(cmd, width, &out);
    tp__ctl_buf_add(&out, "\n\n");
    wrap_text(&out, cmd->description ? cmd->description : cmd->summary, w, 0);
    tp__ctl_buf_add(&out, "\n");
    bool any_pos = false;
    for (size_t i = 1; i < n; i++) {
        if (is_positional(&cmd->args[i - 1])) {
            if (!any_pos)
                tp__ctl_buf_add(&out, "\npositional arguments:\n");
            any_pos = true;
            help_line(&out, &items[i], pos, w);
        }
    }
    tp__ctl_buf_add(&out, "\noptions:\n");
    help_line(&out, &items[0], pos, w);
    for (size_t i = 1; i < n; i++)
        if (!is_positional(&cmd->args[i - 1]))
            help_line(&out, &items[i], pos, w);
    for (size_t i = 0; i < n; i++) {
        free(items[i].invocation);
        free(items[i].help_owned);
    }
    return tp__ctl_buf_done(&out);
}

char *tp__ctl_help_top(const tp__ctl_command *cmds, size_t ncmds, bool simple,
                       int width)
{
    width = clamp_width(width);
    size_t w = (size_t)width;
    help_item items[64];
    size_t n = 0;
    items[n++] = (help_item){(char *)"-h, --help",
                             "show this help message and exit", NULL, 2};
    items[n++] = (help_item){(char *)TP__CTL_TOP_METAVAR, NULL, NULL, 2};
    for (size_t i = 0; i < ncmds && n < 64; i++) {
        const tp__ctl_command *c = &cmds[i];
        if (tp__ctl_command_applies(c, simple))
            items[n++] = (help_item){(char *)c->name, c->summary, NULL, 4};
    }
    size_t pos = help_position(items, n, w);
    tp__ctl_buf out = {0};
    tp__ctl_buf_add(&out, "usage: " TP__CTL_TOP_USAGE "\n\noptions:\n");
    help_line(&out, &items[0], pos, w);
    tp__ctl_buf_add(&out, "\nCommands:\n");
    for (size_t i = 1; i < n; i++)
        help_line(&out, &items[i], pos, w);
    return tp__ctl_buf_done(&out);
}

char *tp__ctl_help(tp__ctl_help_cache *cache, const tp__ctl_command *cmds,
                   size_t ncmds, const tp__ctl_command *cmd, bool simple,
                   int width)
{
    width = clamp_width(width);
    size_t slot = cmd ? 1 + (size_t)(cmd - cmds) : 0;
    if (!cache || slot >= TP__CTL_HELP_SLOTS)
        return cmd ? tp__ctl_help_command(cmd, width)
                   : tp__ctl_help_top(cmds, ncmds, simple, width);
    if (!cache->text[slot] || cache->width[slot] != width) {
        char *text = cmd ? tp__ctl_help_command(cmd, width)
                         : tp__ctl_help_top(cmds, ncmds, simple, width);
        if (!text)
            return NULL;
        free(cache->text[slot]);
        cache->text[slot] = text;
        cache->width[slot] = width;
    }
    return strdup(cache->text[slot]);
}

void tp__ctl_help_cache_free(tp__ctl_help_cache *cache)
{
    for (size_t i = 0; i < TP__CTL_HELP_SLOTS; i++)
        free(cache->text[i]);
    memset(cache, 0, sizeof *cache);
}

void tp__ctl_usage_line(const tp__ctl_command *cmd, int width, tp__ctl_buf *out)
{
    usage_line(cmd, clamp_width(width), out);
}
