/* SPDX-License-Identifier: MIT */
/*
 * Internal interface of the control server, shared by control/ (*.c) and the
 * taskpool-control CLI. Nothing here is public API.
 *
 * Files and their jobs:
 *  - server.c   the tp_control object, listener, control thread, jobs
 *  - session.c  one connection: buffers, handshake, line framing, dispatch
 *  - jobs.c     helper threads for blocking and offloaded commands
 *  - args.c     the tokenizer and argparse-like parsing of a request
 *  - help.c     help and usage texts (argparse's layout), their cache
 *  - commands.c the command table and the handlers
 *  - jsonargs.c apply/map/starmap/doublestarmap with JSON arguments
 *  - registry.c functions, callbacks and gauges registered by name
 *  - metrics.c  the stats object and the Prometheus text
 *  - reply.c    responses: typed results, text and JSON renderings
 *  - text.c     UTF-8 checks, escaping for JSON and lines of text
 *  - buf.c      the one growable text buffer
 *  - log.c      debug messages through the engine's log
 * Calls go one way, roughly down this list (README-control.md has every
 * arrow), never back up: python3 /work/shared/tools/file-circles.py build
 * control finds no circle.
 */
#ifndef TP_CTL_H
#define TP_CTL_H

#include <cjson/cJSON.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "taskpool.h"
#include "taskpool_control.h"
#include "text.h"

/* ------------------------------------------------------------------------ */
/* Replies                                                                  */
/* ------------------------------------------------------------------------ */

/* Error names of the protocol, beside the engine's tp_err_name values. */
#define TP__CTL_EUSAGE "TP_EUSAGE"     /* argparse-like usage error */
#define TP__CTL_EPROTO "TP_EPROTO"     /* malformed handshake or line */
#define TP__CTL_ETOKEN "TP_ETOKEN"     /* token missing or wrong */
#define TP__CTL_ETOOLONG "TP_ETOOLONG" /* line longer than max_line */
#define TP__CTL_EBUSY "TP_EBUSY"       /* too many clients */

/* One response. On success `result` holds the typed result (NULL means
 * "nothing": text "ok", JSON null) and `cmd` names the command, which
 * decides a few text renderings (pool-size's null is "inf", get-group-ids
 * prints a set). On failure `error` is a TP_* name and `message` the text
 * (for usage errors and help, several lines). Owns result and message. */
typedef struct tp__ctl_reply {
    bool ok;
    bool is_help;      /* result is a help text (printed verbatim) */
    bool is_usage;     /* message is a usage error (ends in a blank line) */
    bool close_after;  /* close the session once the reply is written */
    const char *cmd;   /* static command name, or NULL */
    cJSON *result;     /* owned; may be NULL */
    const char *error; /* static TP_* name */
    char *message;     /* owned */
    /* A response rendered by the handler itself, for results too big for
     * a cJSON tree (groups): sent as is; owned. */
    char *wire;
    size_t wire_len;
} tp__ctl_reply;

void tp__ctl_reply_clear(tp__ctl_reply *r);
void tp__ctl_reply_result(tp__ctl_reply *r, cJSON *result);
void tp__ctl_reply_error(tp__ctl_reply *r, const char *error, const char *fmt,
                         ...) __attribute__((format(printf, 3, 4)));
/* An engine error with the reference's sentence for it. */
void tp__ctl_reply_tp_error(tp__ctl_reply *r, tp_pool *pool, int err);

/* Renders a typed result as the reference prints it ("ok", "True", "inf",
 * "[3, 2]", "{0, 1}"); malloc'd, no trailing newline. NULL on ENOMEM. */
char *tp__ctl_result_text(const char *cmd, const cJSON *result);

/* One group as a line of text, without the newline: its name (control
 * characters as '?'), then running=R cancelled=C ended=E pending=P
 * num_concurrent=N ("inf" when unlimited). */
void tp__ctl_group_line(tp__ctl_buf *b, const tp_group_info *g);

/* The wire response of a groups command: JSON mode one object per line,
 * {"ok":true,"result":[{"name",...,"num_concurrent"},...]}; text mode one
 * tp__ctl_group_line per group, then a blank line (no groups: the blank
 * line only). malloc'd, *len set; NULL on ENOMEM. */
char *tp__ctl_groups_render(const tp_groups *g, bool json, size_t *len);

/* Renders r as one wire response ending in '\n' (r->wire if set: a copy);
 * malloc'd, *len set. */
char *tp__ctl_reply_render(const tp__ctl_reply *r, bool json, size_t *len);

/* ------------------------------------------------------------------------ */
/* Registry of functions, callbacks and gauges by name (registry.c)        */
/* ------------------------------------------------------------------------ */

typedef struct tp__ctl_entry {
    char *name;
    tp_fn fn;       /* a function, or */
    tp_callback cb; /* a callback, with */
    void *cb_arg;   /* its argument */
} tp__ctl_entry;

/* An application value registered with tp_control_register_gauge. */
typedef struct tp__ctl_gauge {
    char *name;
    double (*fn)(void *arg);
    void *arg;
} tp__ctl_gauge;

typedef struct tp__ctl_registry {
    tp__ctl_entry *v; /* functions and callbacks */
    size_t len, cap;
    tp__ctl_gauge *gauges;
    size_t ngauges;
} tp__ctl_registry;

/* The function (fn true) or callback registered as name: the exact name
 * first, then a unique case-insensitive match (the reference's CLI
 * lower-cases every line). NULL if none. */
const tp__ctl_entry *tp__ctl_registry_find(const tp__ctl_registry *reg,
                                           const char *name, bool fn);
/* Adds an entry (name copied). TP_OK, TP_EGROUP_EXISTS, TP_ENOMEM. */
int tp__ctl_registry_add(tp__ctl_registry *reg, const char *name, tp_fn fn,
                         tp_callback cb, void *cb_arg);
/* Adds a gauge (name copied). TP_OK, TP_EINVAL (fn NULL or a name
 * tp__ctl_gauge_name_ok refuses), TP_EGROUP_EXISTS, TP_ENOMEM. */
int tp__ctl_registry_add_gauge(tp__ctl_registry *reg, const char *name,
                               double (*fn)(void *arg), void *arg);
/* Frees every entry and gauge and empties *reg. */
void tp__ctl_registry_free(tp__ctl_registry *reg);

/* ------------------------------------------------------------------------ */
/* Gauges, stats and metrics (metrics.c)                                    */
/* ------------------------------------------------------------------------ */

/* A gauge name: [A-Za-z_][A-Za-z0-9_]*, under 64 bytes, and neither a
 * `stats` key nor the start of a built-in metric's name. */
bool tp__ctl_gauge_name_ok(const char *name);
/* The `stats` object: pool_size (null: unlimited), every tp_stats field,
 * then the gauges (their callbacks are called). NULL on ENOMEM. */
cJSON *tp__ctl_stats_object(const tp_stats *s, const tp__ctl_gauge *g,
                            size_t ng);
/* The Prometheus text exposition of the pool's stats, its two timing
 * histograms (tp_get_timings) and the gauges, every sample labelled
 * pool="<pool name>"; malloc'd, NULL on ENOMEM. */
char *tp__ctl_metrics_text(tp_pool *pool, const tp__ctl_gauge *g, size_t ng);

/* ------------------------------------------------------------------------ */
/* Command table and argument parsing                                       */
/* ------------------------------------------------------------------------ */

typedef enum {
    TP__CTL_T_FLAG,  /* option without value */
    TP__CTL_T_INT,   /* any integer */
    TP__CTL_T_COUNT, /* integer >= 0 (checked by the handler) */
    TP__CTL_T_SPAWN, /* a number of starts: integer <= ctx->max_spawn */
    TP__CTL_T_SIZE,  /* integer or "inf" */
    TP__CTL_T_STR,
    TP__CTL_T_FUNC,     /* registered function name */
    TP__CTL_T_CALLBACK, /* registered callback name */
    TP__CTL_T_ARRAY,    /* JSON array */
    TP__CTL_T_OBJECT,   /* JSON object */
    TP__CTL_T_ARRAYS,   /* JSON array of arrays */
    TP__CTL_T_OBJECTS   /* JSON array of objects */
} tp__ctl_type;

typedef enum {
    TP__CTL_ONE, /* exactly one value */
    TP__CTL_OPT, /* positional: zero or one ("[x]") */
    TP__CTL_STAR /* positional: any number ("[x ...]") */
} tp__ctl_nargs;

/* One argument of a command. Positionals have no option strings. */
typedef struct tp__ctl_argspec {
    const char *short_opt; /* "-n" or NULL */
    const char *long_opt;  /* "--num" or NULL (then positional) */
    const char *dest;      /* "num"; the metavar is its upper case */
    tp__ctl_type type;
    tp__ctl_nargs nargs;
    const char *help;  /* the C type, as the reference shows a type */
    const char *deflt; /* "(default: ...)" text, or NULL */
} tp__ctl_argspec;

#define TP__CTL_MAX_ARGS 8

/* A parsed value. Scalars fill one field according to the type; STAR
 * arguments fill n/strs (and ints for integer types). */
typedef struct tp__ctl_value {
    bool set;
    const char *str;
    long long i;
    size_t size;
    cJSON *json;                /* owned by tp__ctl_args */
    const tp__ctl_entry *entry; /* FUNC or CALLBACK */
    size_t n;
    const char **strs; /* owned array; strings in the line */
    long long *ints;   /* owned array */
} tp__ctl_value;

/* A parsed request: v[i] is the value of cmd->args[i]. Handlers look their
 * values up by the spec's dest (commands.c), never by position. */
typedef struct tp__ctl_args {
    const struct tp__ctl_command *cmd;
    tp__ctl_value v[TP__CTL_MAX_ARGS];
} tp__ctl_args;

void tp__ctl_args_free(tp__ctl_args *a);

/* Command flags. */
enum {
    TP__CTL_SIMPLE = 1,   /* only for a SimpleTaskPool */
    TP__CTL_GENERAL = 2,  /* only for a TaskPool */
    TP__CTL_BLOCKING = 4, /* runs on a helper thread */
    TP__CTL_EXTRA = 8,    /* not in the reference (stats, help, exit) */
    TP__CTL_OFFLOAD = 16  /* quick to answer, but its cost has no bound
                           * (cancel-all): runs on a helper thread too */
};

struct tp__ctl_ctx;
/* A command's handler: fills r from a, whose JSON values it may take
 * (setting them NULL); a is freed after it returns. */
typedef void (*tp__ctl_handler)(struct tp__ctl_ctx *ctx, tp__ctl_args *a,
                                tp__ctl_reply *r);

typedef struct tp__ctl_command {
    const char *name;
    const char *summary;     /* one line for "-h" */
    const char *description; /* for "CMD -h"; NULL: the summary */
    const tp__ctl_argspec *args;
    size_t nargs;
    unsigned flags;
    tp__ctl_handler run;
} tp__ctl_command;

/* The table, sorted by name, and its length. */
extern const tp__ctl_command tp__ctl_commands[];
extern const size_t tp__ctl_ncommands;

/* Whether cmd exists for this kind of pool. */
static inline bool tp__ctl_command_applies(const tp__ctl_command *cmd,
                                           bool simple)
{
    if (cmd->flags & TP__CTL_SIMPLE)
        return simple;
    if (cmd->flags & TP__CTL_GENERAL)
        return !simple;
    return true;
}
const tp__ctl_command *tp__ctl_command_find(const char *name, bool simple);

/* What a handler may use. On a helper thread only pool, stopping and
 * abandoned are used, and the handler's arguments. */
typedef struct tp__ctl_ctx {
    tp_pool *pool;
    bool simple; /* a SimpleTaskPool */
    const tp__ctl_registry *reg;
    const atomic_int *stopping;      /* set when the server stops */
    int width;                       /* the client's terminal width */
    bool json;                       /* the client's format */
    size_t max_spawn;                /* largest apply -n / start N */
    struct tp__ctl_help_cache *help; /* or NULL; control thread only */
    /* Blocking commands only (else NULL): set once the client that asked
     * is gone, so that nobody waits for the reply. */
    const atomic_int *abandoned;
} tp__ctl_ctx;

/* Parses one request line (modified in place) into *cmd and *a. On a usage
 * error, help request, or parse failure fills r and returns false (*a is
 * then empty). On success r is untouched. */
bool tp__ctl_parse(const tp__ctl_ctx *ctx, char *line,
                   const tp__ctl_command **cmd, tp__ctl_args *a,
                   tp__ctl_reply *r);

/* Makes r a help reply with text (malloc'd; taken and freed; NULL means
 * out of memory). In reply.c. */
void tp__ctl_reply_help(tp__ctl_reply *r, char *text);

/* ------------------------------------------------------------------------ */
/* Help and usage texts (help.c)                                            */
/* ------------------------------------------------------------------------ */

/* The top-level parser's usage and the metavar of its command argument,
 * as argparse prints them in the reference. */
#define TP__CTL_TOP_USAGE "[-h] [command] ..."
#define TP__CTL_TOP_METAVAR                                                    \
    "(A command followed by '-h' or '--help' will show command-specific "      \
    "help.)"

/* "-h" for the whole pool, listing the commands of cmds[0..ncmds) that
 * apply to this kind of pool, and "CMD -h"; malloc'd, ending in '\n';
 * NULL on ENOMEM. */
char *tp__ctl_help_top(const tp__ctl_command *cmds, size_t ncmds, bool simple,
                       int width);
char *tp__ctl_help_command(const tp__ctl_command *cmd, int width);

/* Appends "usage: ..." for cmd (NULL: the top-level parser), wrapped to
 * width (clamped to 20..1000), without a final newline. */
void tp__ctl_usage_line(const tp__ctl_command *cmd, int width,
                        tp__ctl_buf *out);

/* Help texts built once per terminal width, for one server (so for one
 * kind of pool); used by one thread at a time (the control thread). */
#define TP__CTL_HELP_SLOTS 48
typedef struct tp__ctl_help_cache {
    int width[TP__CTL_HELP_SLOTS];
    char *text[TP__CTL_HELP_SLOTS]; /* [0]: the top help, [1 + i]: command i */
} tp__ctl_help_cache;

/* The top help (cmd NULL) or that of cmd, an element of cmds[0..ncmds),
 * as the two functions above build it (a malloc'd copy), taken from cache
 * if it holds it for this width; cache may be NULL. NULL if out of
 * memory. */
char *tp__ctl_help(tp__ctl_help_cache *cache, const tp__ctl_command *cmds,
                   size_t ncmds, const tp__ctl_command *cmd, bool simple,
                   int width);
void tp__ctl_help_cache_free(tp__ctl_help_cache *cache);

/* ------------------------------------------------------------------------ */
/* Tokens (args.c)                                                          */
/* ------------------------------------------------------------------------ */

/* Splits line into whitespace-separated tokens, keeping [..], {..} and
 * "..." together so that JSON arguments may contain spaces. Writes NULs
 * into line; stores at most max tokens and returns how many there are
 * (possibly more than max). */
size_t tp__ctl_tokenize(char *line, char **tok, size_t max);

/* ------------------------------------------------------------------------ */
/* Spawning with JSON arguments (jsonargs.c) */
/* ------------------------------------------------------------------------ */

typedef enum {
    TP__CTL_APPLY,
    TP__CTL_MAP,
    TP__CTL_STARMAP,
    TP__CTL_DOUBLESTARMAP
} tp__ctl_spawn_kind;

typedef struct tp__ctl_spawn_req {
    tp__ctl_spawn_kind kind;
    const tp__ctl_entry *func;
    const char *func_name;  /* as typed, used in group names */
    cJSON *args;            /* apply: array or NULL; map: the list */
    cJSON *kwargs;          /* apply: object or NULL */
    size_t num;             /* apply: num; map: num_concurrent */
    const char *group_name; /* or NULL */
    const tp__ctl_entry *end_cb, *cancel_cb;
} tp__ctl_spawn_req;

/* Spawns the tasks; takes ownership of req->args and req->kwargs (they are
 * freed when the last task ended or was discarded, or at once on error).
 * Returns TP_OK and the group name, or an engine error. */
int tp__ctl_spawn(tp_pool *pool, tp__ctl_spawn_req *req,
                  char group_out[TP_NAME_MAX]);

/* ------------------------------------------------------------------------ */
/* Handshake (session.c), exposed for the fuzz target and tests             */
/* ------------------------------------------------------------------------ */

typedef struct tp__ctl_hello {
    int width;
    bool json;
    char *token; /* malloc'd or NULL */
} tp__ctl_hello;

/* Parses a handshake line. false with a reason in *why (static text). */
bool tp__ctl_parse_hello(const char *line, size_t len, tp__ctl_hello *out,
                         const char **why);

/* ------------------------------------------------------------------------ */
/* Logging (log.c)                                                          */
/* ------------------------------------------------------------------------ */

/* Whether debug messages are wanted (one atomic load). */
bool tp__ctl_log_on(void);
/* A debug message through the engine's log handler (cut at 511 bytes). */
void tp__ctl_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Compares a client's token with the secret in constant time (the time
 * depends on the length of given only). */
bool tp__ctl_token_equal(const char *secret, const char *given);

#endif
