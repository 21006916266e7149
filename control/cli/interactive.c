/* SPDX-License-Identifier: MIT */
/*
 * The interactive session: libedit line editing, history kept in
 * $HOME/.taskpool_control_history, Tab completion (complete.c), Ctrl+C
 * clears the line while editing and abandons a command that waits, Ctrl+D
 * or "exit" leaves.
 *
 * Ctrl+C while a command waits (until-closed, gather-and-close, flush):
 * the CLI closes the connection and opens a new one. The server answers a
 * session's requests in order and reads nothing more from it while a
 * blocking command runs for it, so on the same connection the next command
 * would wait behind the abandoned one; a new connection answers at once,
 * the late response can never be taken for another command's, and the
 * server notices the closed session and stops waiting for it.
 */
#include <histedit.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

/* Lines kept in the history file. */
#define HISTORY_SIZE 1000

typedef struct session {
    cli_conn *conn;
    bool interrupted; /* Ctrl+C ended the current line */
} session;

static volatile sig_atomic_t sigint;

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

/* Ctrl+C while editing: drop the line being edited and start a new one. */
static unsigned char on_interrupt(EditLine *el, int ch)
{
    (void)ch;
    get_session(el)->interrupted = true;
    return CC_NEWLINE;
}

/* Tab: complete the word before the cursor (see cli_candidates). */
static unsigned char on_complete(EditLine *el, int ch)
{
    (void)ch;
    session *s = get_session(el);
    const LineInfo *li = el_line(el);
    char *line = strndup(li->buffer, (size_t)(li->lastchar - li->buffer));
    if (!line)
        return CC_ERROR;
    size_t len, n;
    char **match = cli_candidates(s->conn, s->conn->simple, line,
                                  (size_t)(li->cursor - li->buffer), &len, &n);
    free(line);
    unsigned char ret = CC_ERROR;
    if (n == 1) {
        char *rest = malloc(strlen(match[0]) - len + 2);
        if (rest) {
            sprintf(rest, "%s ", match[0] + len);
            el_insertstr(el, rest);
            free(rest);
            ret = CC_REFRESH;
        }
    } else if (n > 1) {
        /* Several: extend to their common prefix, or list them. */
        size_t common = strlen(match[0]);
        for (size_t i = 1; i < n; i++) {
            size_t k = 0;
            while (k < common && match[i][k] == match[0][k])
                k++;
            common = k;
        }
        if (common > len) {
            char *add = strndup(match[0] + len, common - len);
            if (add) {
                el_insertstr(el, add);
                free(add);
                ret = CC_REFRESH;
            }
        } else {
            fputc('\n', stdout);
            for (size_t i = 0; i < n; i++)
                printf("%s%s", match[i], i + 1 < n ? "  " : "\n");
            fflush(stdout);
            ret = CC_REDISPLAY;
        }
    }
    cli_free_candidates(match, n);
    return ret;
}

/* $HOME/.taskpool_control_history, or NULL without HOME. */
static char *history_path(void)
{
    const char *home = getenv("HOME");
    if (!home || !*home)
        return NULL;
    const char *name = "/.taskpool_control_history";
    char *p = malloc(strlen(home) + strlen(name) + 1);
    if (p)
        sprintf(p, "%s%s", home, name);
    return p;
}

int cli_interactive(cli_conn **cp, const cli_target *t, bool json)
{
    session s = {*cp, false};
    printf("Connected to %s\n"
           "Type '-h' for help on all commands; 'exit' or Ctrl+D leaves.\n\n",
           s.conn->pool_name);
    fflush(stdout);
    EditLine *el = el_init("taskpool-control", stdin, stdout, stderr);
    History *hist = history_init();
    HistEvent ev;
    char *hist_file = history_path();
    if (!el || !hist) {
        fprintf(stderr, "taskpool-control: cannot start line editing\n");
        if (el)
            el_end(el);
        if (hist)
            history_end(hist);
        free(hist_file);
        return CLI_EXIT_FAILED;
    }
    history(hist, &ev, H_SETSIZE, HISTORY_SIZE);
    history(hist, &ev, H_SETUNIQUE, 1);
    if (hist_file)
        history(hist, &ev, H_LOAD, hist_file); /* none yet is fine */
    el_set(el, EL_CLIENTDATA, &s);
    el_set(el, EL_EDITOR, "emacs");
    el_set(el, EL_PROMPT, prompt);
    el_set(el, EL_HIST, history, hist);
    /* Ctrl+C reaches us as a key, not as SIGINT, while editing; while a
     * command waits it is SIGINT (see cli_block_sigint). */
    el_set(el, EL_SETTY, "-d", "-isig", NULL);
    /* The wide EL_ADDFN keeps our static strings; the narrow one copies
     * them and never frees the copies. */
    el_wset(el, EL_ADDFN, L"tp-interrupt", L"Clear the line", on_interrupt);
    el_set(el, EL_BIND, "^C", "tp-interrupt", NULL);
    el_wset(el, EL_ADDFN, L"tp-complete", L"Complete a word", on_complete);
    el_set(el, EL_BIND, "^I", "tp-complete", NULL);
    el_source(el, NULL); /* the user's ~/.editrc, if any */
    cli_block_sigint(&sigint);
    s.conn->stop = &sigint;

    int status = CLI_EXIT_OK;
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
        char *copy = strdup(raw);
        if (!copy)
            break;
        char *line = cli_trim(copy);
        if (!*line) {
            free(copy);
            continue;
        }
        history(hist, &ev, H_ENTER, line);
        if (strcmp(line, "exit") == 0) {
            free(copy);
            break;
        }
        cli_clear_sigint();
        int r = cli_run_one(s.conn, line, json, stdout, stdout);
        free(copy);
        if (r == -2) {
            /* The terminal echoed ^C; abandon the command (see above). */
            fputc('\n', stdout);
            fflush(stdout);
            cli_close(s.conn);
            s.conn = *cp = cli_open(t);
            if (!s.conn) {
                status = CLI_EXIT_FAILED;
                break;
            }
            s.conn->stop = &sigint;
        } else if (r < 0) {
            status = CLI_EXIT_FAILED;
            break;
        }
    }
    if (s.conn)
        printf("\nDisconnected from %s.\n", s.conn->pool_name);
    fflush(stdout);
    if (hist_file)
        history(hist, &ev, H_SAVE, hist_file);
    free(hist_file);
    el_end(el);
    history_end(hist);
    return status;
}
