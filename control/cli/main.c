/* SPDX-License-Identifier: MIT */
/*
 * taskpool-control: connect to a pool's control server and run commands,
 * interactively or from the command line.
 *
 *   taskpool-control [--json] [--token TOKEN] [-c CMD]... tcp HOST PORT
 *   taskpool-control [--json] [--token TOKEN] [-c CMD]... unix PATH
 *
 * Exit status: 0 if every command succeeded; 1 if one failed or the
 * connection broke; 2 for bad usage or when the connection or handshake
 * failed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: taskpool-control [--json] [--token TOKEN] [-c CMD]... "
               "tcp HOST PORT\n"
               "       taskpool-control [--json] [--token TOKEN] [-c CMD]... "
               "unix PATH\n\n"
               "Connects to a taskpool control server. Without -c, reads "
               "commands interactively\n(type '-h' for the server's help, "
               "'exit' or Ctrl+D to leave).\n\n"
               "options:\n"
               "  -c CMD         run CMD and exit (repeatable; each line of "
               "CMD is a command);\n"
               "                 exit status 0 only if every command "
               "succeeded\n"
               "  --json         print the server's raw JSON responses\n"
               "  --token TOKEN  the server's token (default: "
               "$TASKPOOL_CONTROL_TOKEN)\n"
               "  -h, --help     show this help and exit\n");
}

/* Runs one -c argument. The server answers each line with one response
 * and a blank line with none, so each line of cmd is sent as a request of
 * its own and blank ones are not sent (else the CLI would wait forever for
 * a response, or print responses against the wrong commands). Sets *status
 * to 1 if a command failed; returns false if the connection broke. */
static bool run_command(cli_conn *c, const char *cmd, bool json, int *status)
{
    char *copy = strdup(cmd);
    if (!copy) {
        fprintf(stderr, "taskpool-control: out of memory\n");
        *status = 1;
        return false;
    }
    bool alive = true;
    for (char *line = copy, *next; alive && line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        /* Trimmed as the server trims a request. */
        while (*line == ' ' || *line == '\t')
            line++;
        size_t n = strlen(line);
        while (n && (line[n - 1] == ' ' || line[n - 1] == '\t' ||
                     line[n - 1] == '\r'))
            line[--n] = '\0';
        if (n == 0)
            continue;
        const char *raw;
        cJSON *resp = cli_request(c, line, &raw);
        if (!resp) {
            *status = 1;
            alive = false;
            break;
        }
        if (json) {
            puts(raw);
            if (!cJSON_IsTrue(cJSON_GetObjectItem(resp, "ok")))
                *status = 1;
        } else if (!cli_print(line, resp, stdout, stderr)) {
            *status = 1;
        }
        cJSON_Delete(resp);
    }
    free(copy);
    return alive;
}

int main(int argc, char **argv)
{
    const char **cmds = calloc((size_t)argc, sizeof *cmds);
    const char *pos[4] = {0};
    size_t ncmds = 0, npos = 0;
    bool json = false;
    const char *token = getenv("TASKPOOL_CONTROL_TOKEN");
    if (!cmds)
        return 2;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            free(cmds);
            return 0;
        } else if (strcmp(a, "--json") == 0) {
            json = true;
        } else if ((strcmp(a, "-c") == 0 || strcmp(a, "--token") == 0) &&
                   i + 1 < argc) {
            if (a[1] == 'c')
                cmds[ncmds++] = argv[++i];
            else
                token = argv[++i];
        } else if (a[0] == '-' && a[1] != '\0') {
            fprintf(stderr, "taskpool-control: unknown option %s\n", a);
            usage(stderr);
            free(cmds);
            return 2;
        } else if (npos < 4) {
            pos[npos++] = a;
        } else {
            npos++;
        }
    }
    bool tcp = npos == 3 && strcmp(pos[0], "tcp") == 0;
    bool unx = npos == 2 && strcmp(pos[0], "unix") == 0;
    if (!tcp && !unx) {
        usage(stderr);
        free(cmds);
        return 2;
    }
    cli_conn *c =
        tcp ? cli_connect_tcp(pos[1], pos[2]) : cli_connect_unix(pos[1]);
    if (!c || !cli_handshake(c, token)) {
        cli_close(c);
        free(cmds);
        return 2;
    }
    int status = 0;
    if (ncmds == 0) {
        status = cli_interactive(c, json);
    } else {
        for (size_t i = 0; i < ncmds; i++)
            if (!run_command(c, cmds[i], json, &status))
                break;
    }
    cli_close(c);
    free(cmds);
    return status;
}
