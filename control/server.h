/* SPDX-License-Identifier: MIT */
/*
 * The control server's internal state, shared by server.c (listener,
 * control thread), jobs.c (helper threads for blocking and offloaded
 * commands) and session.c (one connection each). See the DESIGN block in
 * server.c.
 */
#ifndef TP_CTL_SERVER_H
#define TP_CTL_SERVER_H

#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <errno.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"

typedef struct tp__ctl_session tp__ctl_session;

typedef struct tp__ctl_helper tp__ctl_helper; /* jobs.c */

/* A blocking or offloaded command running on a helper thread (jobs.c).
 * Created and collected by the control thread; the helper parses and runs
 * the request, fills `reply` and then posts the job on ctl->done. */
typedef struct tp__ctl_job {
    struct tp__ctl_job *next;
    tp_control *ctl;
    uint64_t session_id;
    tp__ctl_ctx ctx;
    char *line; /* owned copy of the request */
    tp__ctl_reply reply;
    tp__ctl_helper *retired; /* its helper, to join once collected */
} tp__ctl_job;

struct tp_control {
    /* Fixed at creation. */
    tp_pool *pool;
    bool simple;
    bool is_unix;
    char *host, *port, *path;
    char *token;
    size_t max_clients, max_line, max_handshakes, max_spawn;
    double idle_timeout, handshake_timeout;
    double refuse_delay; /* seconds before a refused handshake's error */
    size_t max_refused;  /* refused ones waiting out that delay at once */
    size_t out_high;     /* pending output that stops reading requests */
    /* Written only before start (registration), read-only afterwards. */
    tp__ctl_registry reg; /* functions, callbacks, gauges */
    bool started;

    /* Set by start, read-only while serving. */
    int listen_fd;
    int bound_port;
    int wake[2]; /* pipe: helper jobs done, stop requested */
    pthread_t thread;
    dev_t sock_dev; /* the Unix socket file we created */
    ino_t sock_ino;

    atomic_int serving;
    atomic_int stopping;

    /* mu guards done (posted by helper threads) and the idle helpers
     * (jobs.c). stop_mu serialises tp_control_start/stop/free. Never held
     * together. */
    pthread_mutex_t mu;
    pthread_mutex_t stop_mu;
    tp__ctl_job *done;
    tp__ctl_helper *idle;
    size_t n_idle;

    /* Owned by the control thread. */
    tp__ctl_session **sessions;
    size_t nsessions, cap_sessions;
    struct pollfd *pfd; /* the poll array, kept between turns */
    tp__ctl_help_cache help;
    size_t pfd_cap;
    size_t jobs_running;
    uint64_t next_id;
    uint64_t turn;      /* counts the control thread's poll turns */
    bool accept_paused; /* listener not polled during the next turn */
};

/* Session life (session.c); all called on the control thread only. */
tp__ctl_session *tp__ctl_session_new(tp_control *ctl, int fd, uint64_t id,
                                     double now);
void tp__ctl_session_free(tp__ctl_session *s);
uint64_t tp__ctl_session_id(const tp__ctl_session *s);
int tp__ctl_session_fd(const tp__ctl_session *s);
/* The poll events the session waits for (0 while a job runs for it). */
short tp__ctl_session_events(const tp__ctl_session *s);
/* Reads and writes as revents allow, answers complete lines. */
void tp__ctl_session_io(tp__ctl_session *s, short revents);
/* Delivers a blocking command's reply (takes it) and resumes the session;
 * a dead session only notes that its job ended. */
void tp__ctl_session_job_done(tp__ctl_session *s, tp__ctl_reply *r);
/* True once the session should be closed and freed. */
bool tp__ctl_session_dead(const tp__ctl_session *s);
/* True while a blocking command runs for the session: its helper may read
 * the session's abandoned flag, so the session must not be freed yet. */
bool tp__ctl_session_has_job(const tp__ctl_session *s);
/* Ends a session whose job still runs: closes its socket (poll then skips
 * it), marks it dead and its job abandoned. It is freed once the job is
 * collected. Idempotent. */
void tp__ctl_session_orphan(tp__ctl_session *s);
/* Monotonic time at which tp__ctl_session_expire is due (the handshake
 * deadline, the end of a refusal's delay, the idle timeout); 0: never. */
double tp__ctl_session_deadline(const tp__ctl_session *s);
/* Acts on a deadline that passed: a handshake not completed in time or an
 * idle session is closed, a refused client gets its error and is closed. */
void tp__ctl_session_expire(tp__ctl_session *s);
/* True while the connection has not completed its handshake (a refused
 * one waiting out its delay aside): it holds one of max_handshakes places,
 * not one of max_clients. */
bool tp__ctl_session_handshaking(const tp__ctl_session *s);
/* True if the session may be closed to make room for a new connection:
 * still in its handshake (not refused) and accepted before this turn. */
bool tp__ctl_session_evictable(const tp__ctl_session *s);
/* The control thread's turn in which the session was accepted. */
uint64_t tp__ctl_session_turn(const tp__ctl_session *s);
/* The places ctl's sessions hold (session.c): *ready past their handshake
 * (one of max_clients each), *hs in it (one of max_handshakes each),
 * *refused waiting out their delay (one of max_refused each). A
 * session holds its place until it is freed; an orphan whose job runs
 * keeps it until the job is collected. */
void tp__ctl_count_places(const tp_control *ctl, size_t *ready, size_t *hs,
                          size_t *refused);

/* Parses and runs the request line[0..len] (copied) on a helper thread
 * for session id (jobs.c), which posts the finished job on ctl->done and
 * wakes the control thread; ctx->help must be NULL (the cache belongs to
 * the control thread). TP_OK or TP_ESYS/TP_ENOMEM (then the caller
 * answers with the error). */
int tp__ctl_job_start(tp_control *ctl, uint64_t id, const tp__ctl_ctx *ctx,
                      const char *line, size_t len);
/* Frees a job taken from ctl->done, joining its helper if it retired. */
void tp__ctl_job_collected(tp__ctl_job *job);
/* Ends the idle helpers; called once no job runs. */
void tp__ctl_jobs_stop(tp_control *ctl);

/* Driving the control loop by hand, for the whole-server fuzz target: open
 * makes a server that was never started ready to serve without a thread or
 * listener, adopt hands it a connected socket as a new client, turn runs
 * one turn of the loop (waiting at most timeout_ms, -1: until something
 * happens), idle tells whether no session or job is left, and close ends
 * every session, waits for the jobs and frees the sessions. */
int tp__ctl_manual_open(tp_control *ctl);
int tp__ctl_manual_adopt(tp_control *ctl, int fd);
void tp__ctl_manual_turn(tp_control *ctl, int timeout_ms);
bool tp__ctl_manual_idle(const tp_control *ctl);
void tp__ctl_manual_close(tp_control *ctl);

/* Seconds on CLOCK_MONOTONIC. */
static inline double tp__ctl_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Wakes the control thread from its poll (a byte on the wake pipe; a full
 * pipe wakes it anyway). Any thread. */
static inline void tp__ctl_wake(tp_control *ctl)
{
    char c = 1;
    ssize_t n;
    do
        n = write(ctl->wake[1], &c, 1);
    while (n < 0 && errno == EINTR);
}

#endif
