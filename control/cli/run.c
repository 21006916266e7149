/* SPDX-License-Identifier: MIT */
/*
 * Running commands without a person: the lines of -c arguments and of a
 * standard input that is not a terminal (batch mode). Results go to
 * stdout, errors to stderr; a failed command makes the exit status 1. The
 * server answers one response per non-blank line and nothing to a blank
 * one, so blank lines are never sent (the CLI would wait forever, or print
 * responses against the wrong commands).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

char *cli_trim(char *s)
{
    s += strspn(s, " \t");
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' ||
                 s[n - 1] == '\n'))
        s[--n] = '\0';
    return s;
}

int cli_run_one(cli_conn *c, const char *line, bool json, FILE *out, FILE *err)
{
    char msg[128];
    if (!cli_known_command(line, c->simple, msg, sizeof msg)) {
        if (json) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddFalseToObject(o, "ok");
            cJSON_AddStringToObject(o, "error", "TP_EUSAGE");
            cJSON_AddStringToObject(o, "message", msg);
            char *s = cJSON_PrintUnformatted(o);
            fprintf(out, "%s\n", s ? s : "");
            cJSON_free(s);
            cJSON_Delete(o);
        } else {
            fprintf(err, "%s\n", msg);
        }
        fflush(out);
        return 0;
    }
    const char *raw;
    bool interrupted;
    cJSON *resp = cli_request(c, line, &raw, &interrupted);
    if (!resp)
        return interrupted ? -2 : -1;
    bool ok;
    if (json) {
        fprintf(out, "%s\n", raw);
        ok = cli_ok(resp);
    } else {
        ok = cli_print(line, resp, out, err);
    }
    fflush(out);
    fflush(err);
    cJSON_Delete(resp);
    return ok ? 1 : 0;
}

bool cli_run_lines(cli_conn *c, const char *text, bool json, bool *failed)
{
    char *copy = strdup(text);
    if (!copy) {
        fprintf(stderr, "taskpool-control: out of memory\n");
        *failed = true;
        return false;
    }
    bool alive = true;
    for (char *line = copy, *next; alive && line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        char *cmd = cli_trim(line);
        if (!*cmd)
            continue;
        int r = cli_run_one(c, cmd, json, stdout, stderr);
        if (r <= 0)
            *failed = true;
        if (r < 0)
            alive = false;
    }
    free(copy);
    return alive;
}

int cli_batch(cli_conn *c, FILE *in, bool json)
{
    char *buf = NULL;
    size_t cap = 0;
    bool failed = false;
    while (getline(&buf, &cap, in) >= 0) {
        char *cmd = cli_trim(buf);
        if (!*cmd)
            continue;
        if (strcmp(cmd, "exit") == 0)
            break;
        int r = cli_run_one(c, cmd, json, stdout, stderr);
        if (r <= 0)
            failed = true;
        if (r < 0)
            break;
    }
    free(buf);
    return failed ? CLI_EXIT_FAILED : CLI_EXIT_OK;
}
