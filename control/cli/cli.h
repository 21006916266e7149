/* SPDX-License-Identifier: MIT */
/*
 * taskpool-control, the command-line client of the control server. Always
 * speaks the JSON response mode on the wire, so that it knows whether each
 * command succeeded, and prints what the server's text mode would print
 * (or the raw JSON with --json).
 *
 * Files and their jobs:
 *  - main.c        options (getopt_long) and the choice of mode
 *  - conn.c        connecting, the handshake, line framing, interruptible
 *                  waits for a response
 *  - response.c    what the CLI makes of a response: the text rendering,
 *                  the stats and groups results, the unknown-command check
 *  - run.c         commands from -c and from a non-terminal stdin (batch)
 *  - interactive.c the libedit session: prompt, history file, Ctrl+C
 *  - complete.c    Tab completion: commands, options, group names
 *  - stat.c        --stat, a line of counters per interval
 */
#ifndef TP_CLI_H
#define TP_CLI_H

#include <cjson/cJSON.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Longest response line the CLI accepts (a get-group-ids of millions of
 * tasks); a longer one counts as a broken connection. */
#define CLI_MAX_LINE ((size_t)64 << 20)

/* Exit statuses. */
enum {
    CLI_EXIT_OK = 0,     /* every command succeeded */
    CLI_EXIT_FAILED = 1, /* a command failed, or the connection broke */
    CLI_EXIT_USAGE = 2   /* bad usage, or no connection or handshake */
};

/* How the connection was made, kept to connect again after Ctrl+C. */
typedef struct cli_target {
    const char *host, *port; /* TCP, or */
    const char *path;        /* a Unix socket */
    const char *token;       /* or NULL */
} cli_target;

/* A connection to a control server. */
typedef struct cli_conn {
    int fd;
    char *pool_name; /* from the handshake (owned) */
    bool simple;     /* the pool is a SimpleTaskPool */
    char *buf;       /* bytes read (owned); buf[off..len) not yet returned */
    size_t off, len, cap;
    char *line; /* the last line read, in buf, until the next read */
    FILE *diag; /* where connection errors are reported (stderr) */
    const volatile sig_atomic_t *stop; /* if set (non-zero) a wait ends */
} cli_conn;

/* Connects to t and completes the handshake. NULL (after printing why on
 * stderr) if that fails. */
cli_conn *cli_open(const cli_target *t);

/* A connection over an already connected socket (owned from now on); for
 * the fuzz target and cli_open. NULL if out of memory (fd closed). */
cli_conn *cli_conn_from_fd(int fd, FILE *diag);

/* Sends the handshake (JSON mode, the terminal width, the token if not
 * NULL) and reads the pool name. false (after printing why) on refusal. */
bool cli_handshake(cli_conn *c, const char *token);

/* Sends one request line (without its newline). false if the connection
 * broke. */
bool cli_send(cli_conn *c, const char *line);

/* Result of waiting for a response line. */
typedef enum {
    CLI_READ_OK,         /* c->line holds the line */
    CLI_READ_CLOSED,     /* end of stream, error, or an over-long line */
    CLI_READ_INTERRUPTED /* *c->stop became non-zero while waiting */
} cli_read_status;

/* Waits for one line; c->line then points at it (without the newline,
 * NUL-terminated) until the next read (NULL if none). While it waits,
 * SIGINT is unblocked (see cli_block_sigint) and ends the wait if c->stop
 * is set by its handler. */
cli_read_status cli_read_line(cli_conn *c);

/* Sends a request and reads its response. Returns the parsed response
 * (free with cJSON_Delete; a line that is not a JSON object becomes a
 * TP_EPROTO failure holding the line) or NULL if the connection broke
 * (after printing why) or the wait was interrupted (*interrupted set).
 * *raw points at the raw line until the next call. */
cJSON *cli_request(cli_conn *c, const char *line, const char **raw,
                   bool *interrupted);

/* Parses a response line as cli_request does; never NULL except when out
 * of memory. */
cJSON *cli_parse_response(const char *line);

/* Closes the connection; NULL is a no-op. */
void cli_close(cli_conn *c);

/* Blocks SIGINT and installs a handler that sets *flag; the waits of
 * cli_read_line unblock it while they wait. */
void cli_block_sigint(volatile sig_atomic_t *flag);

/* Forgets a Ctrl+C typed since the last wait (a pending SIGINT and the
 * flag), so that it does not interrupt the next command. */
void cli_clear_sigint(void);

/* Waits up to `seconds` for the connection to become readable (the server
 * went away or sent something unasked) or for *c->stop. Returns 1 if
 * readable, 0 on timeout, -1 if stopped. */
int cli_wait_readable(cli_conn *c, double seconds);

/* --- response.c ----------------------------------------------------- */

/* Prints a response as the server's text mode would: the result on out, or
 * the error message on err. Returns true for success. */
bool cli_print(const char *request, const cJSON *resp, FILE *out, FILE *err);

/* True if resp is {"ok":true,...}. */
bool cli_ok(const cJSON *resp);

/* If the first word of line names no command of this kind of pool, writes
 * "unknown command 'NAME' (try 'help')" into msg and returns false. Lines
 * starting with an option ("-h") are left to the server. */
bool cli_known_command(const char *line, bool simple, char *msg,
                       size_t msg_size);

/* The counters --stat shows, from a stats response. */
typedef struct cli_stats {
    double running, pending, cancelled, ended, threads;
    double total_started, total_ended, total_failed;
} cli_stats;

/* Fills *s from a successful stats response; false if it is not one (a
 * field missing or not a number). */
bool cli_parse_stats(const cJSON *resp, cli_stats *s);

/* The names of the groups in a successful groups response
 * ({"ok":true,"result":[{"name":"g1",...},...]}), in order, as pointers
 * into resp; malloc'd array, *n set. NULL with *n = 0 for an error
 * response, another shape, or no groups. */
const char **cli_group_names(const cJSON *resp, size_t *n);

/* --- run.c ---------------------------------------------------------- */

/* Strips leading and trailing blanks (and a trailing CR/LF) in place;
 * returns the start of what is left. */
char *cli_trim(char *s);

/* Runs the commands of text (one per line; blank lines are skipped):
 * results on stdout (raw JSON lines with json), errors on stderr. Sets
 * *failed if one failed. Returns false if the connection broke. */
bool cli_run_lines(cli_conn *c, const char *text, bool json, bool *failed);

/* Batch mode: runs every line of in until its end or an "exit" line.
 * Returns the exit status. */
int cli_batch(cli_conn *c, FILE *in, bool json);

/* Handles one trimmed, non-empty request line: the unknown-command check,
 * the request, the rendering. Results go to out, errors to err. Returns
 * 1 on success, 0 if the command failed, -1 if the connection broke, -2
 * if the wait was interrupted. */
int cli_run_one(cli_conn *c, const char *line, bool json, FILE *out, FILE *err);

/* --- interactive.c -------------------------------------------------- */

/* The interactive loop (libedit). May reconnect to t after Ctrl+C; *cp is
 * then the new connection. Returns the exit status. */
int cli_interactive(cli_conn **cp, const cli_target *t, bool json);

/* --- complete.c ----------------------------------------------------- */

/* The candidates for completing the word that ends at offset `cursor` of
 * line: command names for the first word, the command's options for a
 * word starting with '-', group names (asked from the server with the
 * groups command when c is not NULL) for an argument that names groups,
 * command names for help's argument. *word_len is set to the length of
 * the word being completed. Returns a malloc'd array of malloc'd strings
 * (free with cli_free_candidates), NULL with *n = 0 for none. */
char **cli_candidates(cli_conn *c, bool simple, const char *line, size_t cursor,
                      size_t *word_len, size_t *n);
void cli_free_candidates(char **v, size_t n);

/* --- stat.c --------------------------------------------------------- */

/* --stat: a line of counters every `interval` seconds until *c->stop
 * (Ctrl+C; exit status 0) or the server goes away (status 1). */
int cli_stat(cli_conn *c, double interval, FILE *out);

#endif
