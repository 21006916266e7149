/* SPDX-License-Identifier: MIT */
/*
 * taskpool control server: lets an operator start, stop and inspect a
 * running pool from outside the process, over TCP or a Unix socket, with the
 * line protocol of asyncio-taskpool's control server (so its CLI works
 * against ours) and an optional JSON response mode. See README.md for the
 * protocol and the `taskpool-control` CLI.
 *
 * Thread safety: every function may be called from any thread, but one
 * server must not be freed while another thread still uses it.
 */
#ifndef TASKPOOL_CONTROL_H
#define TASKPOOL_CONTROL_H

#include "taskpool.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tp_control tp_control;

/* Options; a zero-initialised field means "the default".
 *
 * Places. max_clients counts sessions (connections past their handshake);
 * connections still in their handshake have max_handshakes places of
 * their own, so clients that never complete a handshake cannot take the
 * places of those that do: when every handshake place is taken, the
 * oldest unfinished handshake is closed to make room (one accepted in the
 * same turn of the control thread is never closed early). A client
 * arriving while max_clients sessions exist gets the line
 * "error: too many clients (at most N)" and is disconnected; so does one
 * whose handshake completes then. A client that left while a flush or
 * gather-and-close ran for it keeps its place until that command ends.
 *
 * Deadlines. A connection that has not completed its handshake within
 * handshake_timeout seconds of connecting is closed (the bytes it sends do
 * not extend the deadline). A refused handshake (wrong or missing token)
 * gets its error only after half a second, during which the connection
 * holds no handshake place. At most 4 * max_handshakes refused
 * connections wait at once; while that many do, no new connection is
 * accepted (clients wait in the listen backlog). So a guesser gets at
 * most 5 * max_handshakes answers per half second however many
 * connections it opens, a client with the right token waits at most
 * behind the connections queued before its own, and a waiting refusal
 * costs a descriptor and no thread. Use a long random token. A line longer
 * than max_line gets an error response and is skipped; a session silent
 * for idle_timeout seconds (not counting a blocking command that runs for
 * it) is closed. */
typedef struct tp_control_opts {
    /* If set, clients must present it as "token" in the handshake; it is
     * compared in constant time. */
    const char *token;
    /* Most sessions at once; further clients are refused; 0: 64. */
    size_t max_clients;
    /* Longest accepted line in bytes; 0: 64 KiB. */
    size_t max_line;
    /* Seconds a silent session may stay open; 0: forever. */
    double idle_timeout;
    /* Seconds a connection may take to complete its handshake; 0: 5. */
    double handshake_timeout;
    /* Most connections at once still in their handshake; 0: 16, or
     * max_clients if that is smaller. */
    size_t max_handshakes;
    /* Largest number of starts one apply -n or start N asks for (a larger
     * one is a usage error); 0: 1,000,000. */
    size_t max_spawn;
} tp_control_opts;

/* Creates a server for pool on a TCP address (host may be a name or an
 * address; port "0" asks for an ephemeral port, see tp_control_port).
 * Nothing is bound until tp_control_start. host, port and opts->token are
 * copied. The pool must outlive the server; several servers may serve one
 * pool. Returns NULL if pool, host or port is NULL, port is a number
 * beyond 65535 or malformed (errno EINVAL; a service name such as "http"
 * is resolved at start), or memory is exhausted.
 * Thread safety: any thread. */
TP_API tp_control *tp_control_new_tcp(tp_pool *pool, const char *host,
                                      const char *port,
                                      const tp_control_opts *opts);

/* Creates a server for pool on a Unix socket path (copied). On start the
 * socket file is created with mode 0600 (it is bound in a private
 * directory and renamed into place, so no other user can ever connect); a
 * stale socket file at path is replaced only if nothing listens on it. On
 * stop the file is removed unless something else replaced it meanwhile.
 * Returns NULL if pool or path is NULL, path is empty (errno EINVAL), path
 * or the private directory beside it does not fit a socket address (path
 * under 108 bytes, its directory part under 92; errno ENAMETOOLONG), or
 * memory is exhausted. Thread safety: any thread. */
TP_API tp_control *tp_control_new_unix(tp_pool *pool, const char *path,
                                       const tp_control_opts *opts);

/* Registers fn under name (copied) so that clients may start it with
 * apply, map, starmap and doublestarmap. fn's `void *arg` is a
 * `const cJSON *`, owned by the library until the task ends (do not free
 * or modify it):
 *   apply         the object {"args": [...], "kwargs": {...}}, shared by
 *                 all tasks of the command (defaults [] and {});
 *   map           one element of the JSON array (any JSON value);
 *   starmap       one element, a JSON array;
 *   doublestarmap one element, a JSON object.
 * Requests name functions exactly, or case-insensitively if only one name
 * matches that way (the reference's CLI lower-cases every line).
 * Errors: TP_EINVAL (NULL argument, empty name, a name with whitespace or of
 * TP_NAME_MAX bytes or more, or the server already started),
 * TP_EGROUP_EXISTS (a function with that name exists), TP_ENOMEM.
 * Thread safety: any thread, before tp_control_start. */
TP_API int tp_control_register(tp_control *ctl, const char *name, tp_fn fn);

/* Registers cb under name (copied) for the -e/--end-callback and
 * -c/--cancel-callback options of apply and the map family. cb is called as
 * the engine calls end and cancel callbacks (on the task's worker thread,
 * no library lock held) with arg as its third argument. Functions and
 * callbacks have separate name spaces. Errors as tp_control_register.
 * Thread safety: any thread, before tp_control_start. */
TP_API int tp_control_register_callback(tp_control *ctl, const char *name,
                                        tp_callback cb, void *arg);

/* Registers an application value (a queue's backlog, say) under name
 * (copied), shown by `stats` as name=VALUE and by `metrics` (and an HTTP
 * scrape of the port) as the gauge taskpool_<name>{pool="..."}. fn(arg) is
 * called on the control thread, no library lock held, each time one of
 * those is answered: it must be quick, must not block, and must be safe
 * to call concurrently with the application's own threads (read an
 * atomic, or take a short lock of the application's). It must not call
 * tp_control_stop or tp_control_free of this server.
 * Errors: TP_EINVAL (NULL ctl or fn, a name not matching
 * [A-Za-z_][A-Za-z0-9_]* or of 64 bytes or more, a name of a built-in
 * stats key or metric, or the server already started), TP_EGROUP_EXISTS
 * (a gauge with that name exists), TP_ENOMEM.
 * Thread safety: any thread, before tp_control_start. */
TP_API int tp_control_register_gauge(tp_control *ctl, const char *name,
                                     double (*fn)(void *arg), void *arg);

/* Binds and listens; the socket accepts connections when this returns, and
 * a control thread serves it. A server starts at most once. Errors:
 * TP_EINVAL (NULL, or already started), TP_ESYS (the address could not be
 * resolved or bound, a live socket or a non-socket file is at the Unix path
 * (errno EADDRINUSE or EEXIST), or a thread could not be created; errno
 * tells why). Thread safety: any thread. */
TP_API int tp_control_start(tp_control *ctl);

/* The bound TCP port while serving, or -1 (not started, stopped, a Unix
 * socket server, or NULL). Cannot fail. Thread safety: any thread. */
TP_API int tp_control_port(const tp_control *ctl);

/* True from a successful tp_control_start until tp_control_stop; false for
 * NULL. Cannot fail. Thread safety: any thread. */
TP_API bool tp_control_is_serving(const tp_control *ctl);

/* Stops accepting, closes every session (a reply in progress is dropped),
 * waits for blocking commands in progress (until-closed is abandoned at
 * once; flush and gather-and-close are waited for, as they end when the
 * pool's tasks do), joins the control thread and removes the Unix socket
 * file. Idempotent; TP_OK also when never started. TP_EINVAL for NULL.
 * Thread safety: any thread, including tasks and callbacks of the pool
 * (but then not while that task is what a flush or gather-and-close in
 * progress waits for). */
TP_API int tp_control_stop(tp_control *ctl);

/* Stops the server if needed and frees it. Tasks started through it keep
 * their arguments, which are freed when they end. NULL is a no-op. Cannot
 * fail. Thread safety: any thread, once no other thread uses ctl. */
TP_API void tp_control_free(tp_control *ctl);

#ifdef __cplusplus
}
#endif

#endif /* TASKPOOL_CONTROL_H */
