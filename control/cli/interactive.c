/* SPDX-License-Identifier: MIT */
/*
 * The interactive session: libedit line editing and history, completion of
 * command names from the server's command table, Ctrl+C clears the line,
 * Ctrl+D or "exit" leaves.
 */
#include <histedit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "ctl.h"

typedef struct session {
    cli_conn *conn;
    bool simple;      /* the pool is a SimpleTaskPool */
    bool interrupted; /* Ctrl+C ended the current line */
} session;

static char *prompt(EditLine *el)
{
    (void)el;
    return (char *)"> ";
}

static session *get_session(EditLine *el)
{
    session *s = NULL;
    el_get(el, EL_CLIENTDATA, &s);
    return s;
}

/* Ctrl+C: drop the line being edited and start a new one. */
static unsigned char on_interrupt(EditLine *el, int ch)
{
    (void)ch;
    get_session(el)->interrupted = true;
    return CC_NEWLINE;
}

/* Tab: complete the command name (the first word) from the command table. */
static unsigned char on_complete(EditLine *el, int ch)
{
    (void)ch;
    session *s = get_session(el);
    const LineInfo *li = el_line(el);
    const char *start = li->buffer;
    while (start < li->cursor && (*start == ' ' || *start == '\t'))
        start++;
    for (const char *p = start; p < li->cursor; p++)
        if (*p == ' ' || *p == '\t')
            return CC_ERROR; /* only command names complete */
    size_t len = (size_t)(li->cursor - start);
    const char *match[64];
    size_t n = 0;
    for (size_t i = 0; i < tp__ctl_ncommands && n < 64; i++) {
        const tp__ctl_command *c = &tp__ctl_commands[i];
        if (tp__ctl_command_applies(c, s->simple) &&
            strncmp(c->name, start, len) == 0)
            match[n++] = c->name;
    }
    if (n == 0)
        return CC_ERROR;
    if (n == 1) {
        char rest[64];
        snprintf(rest, sizeof rest, "%s ", match[0] + len);
        el_insertstr(el, rest);
        return CC_REFRESH;
    }
    /* Several: extend to their common prefix, or list them. */
    size_t common = strlen(match[0]);
    for (size_t i = 1; i < n; i++) {
        size_t k = 0;
        while (k < common && match[i][k] == match[0][k])
            k++;
        common = k;
    }
    if (common > len) {
        char add[64];
        snprintf(add, sizeof add, "%.*s", (int)(common - len), match[0] + len);
        el_insertstr(el, add);
        return CC_REFRESH;
    }
    fputc('\n', stdout);
    for (size_t i = 0; i < n; i++)
        printf("%s%s", match[i], i + 1 < n ? "  " : "\n");
    fflush(stdout);
    return CC_REDISPLAY;
}

static char *trimmed(const char *line)
{
    while (*line == ' ' || *line == '\t')
        line++;
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r' ||
                 line[n - 1] == ' ' || line[n - 1] == '\t'))
        n--;
    return strndup(line, n);
}

int cli_interactive(cli_conn *c, bool json)
{
    session s = {c, strncmp(c->pool_name, "SimpleTaskPool-", 15) == 0, false};
    printf("Connected to %s\n"
           "Type '-h' for help on all commands; 'exit' or Ctrl+D leaves.\n\n",
           c->pool_name);
    fflush(stdout);
    EditLine *el = el_init("taskpool-control", stdin, stdout, stderr);
    History *hist = history_init();
    HistEvent ev;
    if (!el || !hist) {
        fprintf(stderr, "taskpool-control: cannot start line editing\n");
        if (el)
            el_end(el);
        if (hist)
            history_end(hist);
        return 1;
    }
    history(hist, &ev, H_SETSIZE, 1000);
    history(hist, &ev, H_SETUNIQUE, 1);
    el_set(el, EL_CLIENTDATA, &s);
    el_set(el, EL_EDITOR, "emacs");
    el_set(el, EL_PROMPT, prompt);
    el_set(el, EL_HIST, history, hist);
    /* Ctrl+C reaches us as a key, not as SIGINT, while editing. */
    el_set(el, EL_SETTY, "-d", "-isig", NULL);
    /* The wide EL_ADDFN keeps our static strings; the narrow one copies
     * them and never frees the copies. */
    el_wset(el, EL_ADDFN, L"tp-interrupt", L"Clear the line", on_interrupt);
    el_set(el, EL_BIND, "^C", "tp-interrupt", NULL);
    el_wset(el, EL_ADDFN, L"tp-complete", L"Complete a command", on_complete);
    el_set(el, EL_BIND, "^I", "tp-complete", NULL);
    el_source(el, NULL); /* the user's ~/.editrc, if any */

    int status = 0;
    for (;;) {
        int count;
        s.interrupted = false;
        const char *raw = el_gets(el, &count);
        if (!raw || count <= 0)
            break; /* Ctrl+D on an empty line, or end of input */
        if (s.interrupted) {
            fputs("^C\n", stdout); /* the dropped line stays visible */
            fflush(stdout);
            continue;
        }
        char *line = trimmed(raw);
        if (!line)
            break;
        if (!*line) {
            free(line);
            continue;
        }
        history(hist, &ev, H_ENTER, line);
        if (strcmp(line, "exit") == 0) {
            free(line);
            break;
        }
        const char *resp_raw;
        cJSON *resp = cli_request(c, line, &resp_raw);
        if (!resp) {
            free(line);
            status = 1;
            break;
        }
        if (json)
            puts(resp_raw);
        else
            cli_print(line, resp, stdout, stdout);
        fflush(stdout);
        cJSON_Delete(resp);
        free(line);
    }
    printf("\nDisconnected from %s.\n", c->pool_name);
    el_end(el);
    history_end(hist);
    return status;
}
