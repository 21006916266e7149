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

/* Options; a zero-initialised field means "the default". */
typedef struct tp_control_opts {
    /* If set, clients must present it as "token" in the handshake. */
    const char *token;
    /* Most sessions at once; further clients are refused; 0: 64. */
    size_t max_clients;
    /* Longest accepted line in bytes; 0: 64 KiB. */
    size_t max_line;
    /* Seconds a silent session may stay open; 0: forever. */
    double idle_timeout;
} tp_control_opts;

/* Creates a server for pool on a TCP address (host may be a name or an
 * address; port "0" asks for an ephemeral port). Nothing is bound until
 * tp_control_start. The pool must outlive the server. NULL on bad
 * arguments or out of memory. */
TP_API tp_control *tp_control_new_tcp(tp_pool *pool, const char *host,
                                      const char *port,
                                      const tp_control_opts *opts);

/* Creates a server for pool on a Unix socket path (created mode 0600; a
 * stale socket file is replaced only if nothing listens on it). */
TP_API tp_control *tp_control_new_unix(tp_pool *pool, const char *path,
                                       const tp_control_opts *opts);

/* Registers fn under name so that clients may start it with apply, map,
 * starmap and doublestarmap. fn's arg is a `const cJSON *` holding the
 * task's arguments, owned by the library until the task ends. Must be called
 * before tp_control_start. Errors: TP_EINVAL, TP_EGROUP_EXISTS (the name is
 * taken), TP_ENOMEM. */
TP_API int tp_control_register(tp_control *ctl, const char *name, tp_fn fn);

/* Binds and listens; the socket is ready when this returns, and a control
 * thread serves it. Errors: TP_EINVAL (already started), TP_ESYS (bind or
 * listen failed; errno tells why). */
TP_API int tp_control_start(tp_control *ctl);

/* The bound TCP port, or -1 if not a started TCP server. */
TP_API int tp_control_port(const tp_control *ctl);

TP_API bool tp_control_is_serving(const tp_control *ctl);

/* Stops accepting, ends every session, joins the control thread and removes
 * the Unix socket file. Idempotent. */
TP_API int tp_control_stop(tp_control *ctl);

/* Stops the server if needed and frees it. NULL is a no-op. */
TP_API void tp_control_free(tp_control *ctl);

#ifdef __cplusplus
}
#endif

#endif /* TASKPOOL_CONTROL_H */
