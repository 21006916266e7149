/* SPDX-License-Identifier: MIT */
/*
 * taskpool-control: connect to a pool's control server and run commands,
 * interactively, from the command line (-c), from a non-terminal standard
 * input (batch mode), or watch its counters (--stat).
 *
 *   taskpool-control [OPTIONS] tcp HOST PORT
 *   taskpool-control [OPTIONS] unix PATH
 *
 * Exit status: 0 if every command succeeded (and for --stat ended by
 * Ctrl+C); 1 if one failed or the connection broke; 2 for bad usage or
 * when the connection or handshake failed.
 */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "taskpool.h"

static const char synopsis[] =
    "usage: taskpool-control [OPTIONS] tcp HOST PORT\n"
    "       taskpool-control [OPTIONS] unix PATH\n";

static void usage(FILE *f)
{
    fprintf(f,
            "%s\n"
            "Connects to a taskpool control server. On a terminal, reads "
            "commands\ninteractively (type '-h' for the server's help, 'exit' "
            "or Ctrl+D to leave);\nfrom any other standard input, runs its "
            "lines as a batch.\n\n"
            "options:\n"
            "  -c CMD, -cCMD     run CMD and exit (repeatable; each line of "
            "CMD is a command)\n"
            "  --json            print the server's raw JSON responses\n"
            "  --token=TOKEN     the server's token (default: "
            "$TASKPOOL_CONTROL_TOKEN)\n"
            "  --stat[=SECONDS]  print the pool's counters every SECONDS "
            "(default 1) until\n"
            "                    Ctrl+C\n"
            "  -h, --help        show this help and exit\n"
            "  --version         show the version and exit\n\n"
            "Exit status: 0 if every command succeeded, 1 if one failed or "
            "the connection\nbroke, 2 for bad usage or when the connection "
            "or handshake failed.\n",
            synopsis);
}

static int usage_error(const char *fmt, const char *arg)
{
    if (fmt) {
        fputs("taskpool-control: ", stderr);
        fprintf(stderr, fmt, arg);
        fputc('\n', stderr);
    }
    fprintf(stderr, "%sTry 'taskpool-control --help' for more.\n", synopsis);
    return CLI_EXIT_USAGE;
}

enum { OPT_JSON = 256, OPT_TOKEN, OPT_STAT, OPT_VERSION };

static const struct option long_options[] = {
    {"json", no_argument, NULL, OPT_JSON},
    {"token", required_argument, NULL, OPT_TOKEN},
    {"stat", optional_argument, NULL, OPT_STAT},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0},
};

/* Runs what the options ask on an open connection; returns the status. */
static int run(cli_conn **cp, const cli_target *t, const char **cmds,
               size_t ncmds, bool json, double stat)
{
    static volatile sig_atomic_t sigint;
    if (stat > 0) {
        cli_block_sigint(&sigint);
        (*cp)->stop = &sigint;
        return cli_stat(*cp, stat, stdout);
    }
    if (ncmds > 0) {
        bool failed = false;
        for (size_t i = 0; i < ncmds; i++)
            if (!cli_run_lines(*cp, cmds[i], json, &failed))
                break;
        return failed ? CLI_EXIT_FAILED : CLI_EXIT_OK;
    }
    if (isatty(STDIN_FILENO))
        return cli_interactive(cp, t, json);
    return cli_batch(*cp, stdin, json);
}

int main(int argc, char **argv)
{
    const char **cmds = calloc((size_t)argc, sizeof *cmds);
    size_t ncmds = 0;
    bool json = false;
    double stat = 0;
    cli_target t = {.token = getenv("TASKPOOL_CONTROL_TOKEN")};
    int status = CLI_EXIT_USAGE;
    if (!cmds)
        return status;
    int opt;
    while ((opt = getopt_long(argc, argv, "c:h", long_options, NULL)) != -1) {
        switch (opt) {
        case 'c':
            cmds[ncmds++] = optarg;
            break;
        case OPT_JSON:
            json = true;
            break;
        case OPT_TOKEN:
            t.token = optarg;
            break;
        case OPT_STAT: {
            char *end = NULL;
            stat = optarg ? strtod(optarg, &end) : 1.0;
            if (optarg && (end == optarg || *end || !isfinite(stat) ||
                           stat <= 0 || stat > 86400)) {
                status = usage_error("--stat: not a number of seconds "
                                     "(0 < SECONDS <= 86400): %s",
                                     optarg);
                goto out;
            }
            break;
        }
        case 'h':
            usage(stdout);
            status = CLI_EXIT_OK;
            goto out;
        case OPT_VERSION:
            printf("taskpool-control %s\n", tp_version());
            status = CLI_EXIT_OK;
            goto out;
        default: /* getopt_long said what is wrong */
            status = usage_error(NULL, NULL);
            goto out;
        }
    }
    int npos = argc - optind;
    char **pos = argv + optind;
    if (npos == 3 && strcmp(pos[0], "tcp") == 0) {
        t.host = pos[1];
        t.port = pos[2];
    } else if (npos == 2 && strcmp(pos[0], "unix") == 0) {
        t.path = pos[1];
    } else {
        status = usage_error(NULL, NULL);
        goto out;
    }
    if (stat > 0 && ncmds > 0) {
        status = usage_error("%s", "--stat and -c exclude each other");
        goto out;
    }
    cli_conn *c = cli_open(&t);
    if (c) {
        status = run(&c, &t, cmds, ncmds, json, stat);
        cli_close(c);
    }
out:
    free(cmds);
    return status;
}
