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
               "  -c CMD         run CMD and exit (repeatable); exit status 0 "
               "only if every\n"
               "                 command succeeded\n"
               "  --json         print the server's raw JSON responses\n"
               "  --token TOKEN  the server's token (default: "
               "$TASKPOOL_CONTROL_TOKEN)\n"
               "  -h, --help     show this help and exit\n");
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
        for (size_t i = 0; i < ncmds; i++) {
            const char *raw;
            cJSON *resp = cli_request(c, cmds[i], &raw);
            if (!resp) {
                status = 1;
                break;
            }
            if (json) {
                puts(raw);
                if (!cJSON_IsTrue(cJSON_GetObjectItem(resp, "ok")))
                    status = 1;
            } else if (!cli_print(cmds[i], resp, stdout, stderr)) {
                status = 1;
            }
            cJSON_Delete(resp);
        }
    }
    cli_close(c);
    free(cmds);
    return status;
}
