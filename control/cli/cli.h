/* SPDX-License-Identifier: MIT */
/*
 * taskpool-control, the command-line client of the control server. Always
 * speaks the JSON response mode on the wire, so that it knows whether each
 * command succeeded, and prints what the server's text mode would print
 * (or the raw JSON with --json).
 */
#ifndef TP_CLI_H
#define TP_CLI_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

/* Longest response line the CLI accepts (a get-group-ids of millions of
 * tasks); a longer one counts as a broken connection. */
#define CLI_MAX_LINE ((size_t)64 << 20)

/* A connection to a control server. */
typedef struct cli_conn {
    int fd;
    char *pool_name; /* from the handshake */
    char *buf;       /* bytes read but not yet returned (owned) */
    size_t len, cap;
    char *line; /* the last line read (owned) */
} cli_conn;

/* Connects; on failure prints why (prefixed by "taskpool-control: ") and
 * returns NULL. */
cli_conn *cli_connect_tcp(const char *host, const char *port);
cli_conn *cli_connect_unix(const char *path);

/* Sends the handshake (JSON mode, the terminal width, the token if not
 * NULL) and reads the pool name. false (after printing why) on refusal. */
bool cli_handshake(cli_conn *c, const char *token);

/* Sends one request line and reads the response line. Returns the parsed
 * response (free with cJSON_Delete) or NULL if the connection broke (after
 * printing why). *raw points at the raw line until the next call. */
cJSON *cli_request(cli_conn *c, const char *line, const char **raw);

void cli_close(cli_conn *c);

/* Prints a response as the server's text mode would: the result on out, or
 * the error message on err. Returns true for success. */
bool cli_print(const char *request, const cJSON *resp, FILE *out, FILE *err);

/* The interactive loop (libedit). Returns the exit status. */
int cli_interactive(cli_conn *c, bool json);

#endif
