/* SPDX-License-Identifier: MIT */
/*
 * Tab completion candidates, from the command table (command names, each
 * command's options) and from the server (group names, by the groups
 * command). Knows nothing of libedit; interactive.c inserts the result.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli.h"
#include "ctl.h"

/* At most this many words before the cursor are looked at. */
#define MAX_WORDS 64

typedef struct cands {
    char **v;
    size_t n, cap;
    bool failed;
} cands;

static void add(cands *c, const char *s, const char *prefix, size_t len)
{
    /* No search for duplicates: each source has none (and a server's
     * thousands of groups would make it quadratic). */
    if (c->failed || strncmp(s, prefix, len) != 0)
        return;
    if (c->n == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 16;
        char **v = realloc(c->v, cap * sizeof *v);
        if (!v) {
            c->failed = true;
            return;
        }
        c->v = v;
        c->cap = cap;
    }
    if (!(c->v[c->n] = strdup(s))) {
        c->failed = true;
        return;
    }
    c->n++;
}

void cli_free_candidates(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static const tp__ctl_command *find_command(const char *name, bool simple)
{
    for (size_t i = 0; i < tp__ctl_ncommands; i++)
        if (strcasecmp(tp__ctl_commands[i].name, name) == 0 &&
            tp__ctl_command_applies(&tp__ctl_commands[i], simple))
            return &tp__ctl_commands[i];
    return NULL;
}

static const tp__ctl_argspec *find_option(const tp__ctl_command *cmd,
                                          const char *word)
{
    for (size_t i = 0; i < cmd->nargs; i++) {
        const tp__ctl_argspec *a = &cmd->args[i];
        if ((a->short_opt && strcmp(a->short_opt, word) == 0) ||
            (a->long_opt && strcmp(a->long_opt, word) == 0))
            return a;
    }
    return NULL;
}

/* The argument that the word after words[1..n) fills: the value of an
 * option that takes one, or the next positional. NULL if none. */
static const tp__ctl_argspec *argument_at(const tp__ctl_command *cmd,
                                          char **words, size_t n)
{
    size_t positional = 0;
    for (size_t i = 1; i < n; i++) {
        if (words[i][0] == '-' && words[i][1] != '\0') {
            const tp__ctl_argspec *o = find_option(cmd, words[i]);
            if (o && o->type != TP__CTL_T_FLAG) {
                if (i + 1 == n)
                    return o; /* the word is this option's value */
                i++;
            }
        } else {
            positional++;
        }
    }
    for (size_t i = 0; i < cmd->nargs; i++) {
        const tp__ctl_argspec *a = &cmd->args[i];
        if (a->long_opt || a->short_opt)
            continue;
        if (a->nargs == TP__CTL_STAR || positional == 0)
            return a;
        positional--;
    }
    return NULL;
}

static void add_groups(cands *out, cli_conn *c, const char *word, size_t len)
{
    if (!c)
        return;
    const char *raw;
    bool interrupted;
    cJSON *resp = cli_request(c, "groups", &raw, &interrupted);
    size_t n;
    const char **names = cli_group_names(resp, &n);
    for (size_t i = 0; i < n; i++)
        add(out, names[i], word, len);
    free(names);
    cJSON_Delete(resp);
}

char **cli_candidates(cli_conn *c, bool simple, const char *line, size_t cursor,
                      size_t *word_len, size_t *n)
{
    cands out = {0};
    *n = 0;
    size_t start = cursor;
    while (start > 0 && line[start - 1] != ' ' && line[start - 1] != '\t')
        start--;
    const char *word = line + start;
    size_t len = cursor - start;
    *word_len = len;
    char *before = strndup(line, start);
    if (!before)
        return NULL;
    char *words[MAX_WORDS];
    size_t nw = tp__ctl_tokenize(before, words, MAX_WORDS);
    const tp__ctl_command *cmd = NULL;
    if (nw == 0) {
        for (size_t i = 0; i < tp__ctl_ncommands; i++)
            if (tp__ctl_command_applies(&tp__ctl_commands[i], simple))
                add(&out, tp__ctl_commands[i].name, word, len);
    } else if (nw <= MAX_WORDS && (cmd = find_command(words[0], simple))) {
        const tp__ctl_argspec *a = argument_at(cmd, words, nw);
        if (len > 0 && word[0] == '-') {
            add(&out, "-h", word, len);
            add(&out, "--help", word, len);
            for (size_t i = 0; i < cmd->nargs; i++) {
                if (cmd->args[i].short_opt)
                    add(&out, cmd->args[i].short_opt, word, len);
                if (cmd->args[i].long_opt)
                    add(&out, cmd->args[i].long_opt, word, len);
            }
        } else if (a && !a->long_opt && a->dest &&
                   strncmp(a->dest, "group_name", 10) == 0) {
            add_groups(&out, c, word, len);
        } else if (a && a->dest && strcmp(a->dest, "command") == 0) {
            for (size_t i = 0; i < tp__ctl_ncommands; i++)
                if (tp__ctl_command_applies(&tp__ctl_commands[i], simple))
                    add(&out, tp__ctl_commands[i].name, word, len);
        }
    }
    free(before);
    if (out.failed || out.n == 0) {
        cli_free_candidates(out.v, out.n);
        return NULL;
    }
    *n = out.n;
    return out.v;
}
