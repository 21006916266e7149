/* SPDX-License-Identifier: MIT */
/*
 * DESIGN
 *
 * Threads. One control thread per started server runs control_loop(): it
 * polls the listening socket, the wake pipe and every session, accepts
 * clients, reads request lines, runs quick commands inline (they are plain
 * engine calls that never block) and writes the responses. A blocking
 * command (flush, gather-and-close, until-closed) runs on a helper thread
 * (jobs.c), so that it never stalls the other sessions: the helper calls the
 * engine, fills the job's reply, appends the job to ctl->done under ctl->mu
 * and writes a byte to the wake pipe. The control thread then hands the
 * reply to its session (dropped if the client left); the helper waits for
 * the next job, or retires and is joined.
 * While a job runs, its session reads no further requests, so responses keep
 * the order of the requests. A session whose client goes away while its job
 * runs is "orphaned": its socket is closed at once, but the session stays
 * (and counts against max_clients) until the job is collected, because the
 * helper reads its `abandoned` flag (until-closed then gives up). So at most
 * max_clients helpers run jobs, and at most four more wait idle.
 *
 * Locks. ctl->mu guards ctl->done and the idle helpers. ctl->stop_mu serialises start, stop
 * and free. The two are never held together, and neither is held while
 * calling the engine. Sessions, the session array and jobs_running belong
 * to the control thread alone.
 *
 * Stopping. tp_control_stop sets `stopping`, wakes the control thread and
 * joins it. The control thread closes every session, then waits for its
 * helper jobs: until-closed notices `stopping` within 50 ms; flush and
 * gather-and-close are waited for (they end when the pool's tasks do).
 *
 * Functions and callbacks registered by name are fixed once the server
 * starts, so the control thread reads the registry without a lock.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "server.h"

#define DEFAULT_MAX_CLIENTS 64
#define DEFAULT_MAX_HANDSHAKES 16
#define DEFAULT_MAX_LINE (64 * 1024)
#define DEFAULT_MAX_SPAWN 1000000
#define DEFAULT_HANDSHAKE_TIMEOUT 5.0
#define REFUSE_DELAY 0.5
/* Refused connections waiting out REFUSE_DELAY at once, per handshake
 * place (see accept_clients). */
#define REFUSED_PER_HANDSHAKE 4
#define OUT_HIGH (1024 * 1024)
#define ACCEPT_BURST 64
/* The private directory a Unix socket is bound in, beside its path. */
#define PRIVATE_DIR "/.tpctl-XXXXXX"
#define PRIVATE_SOCK "/s"

/* ------------------------------------------------------------------------ */
/* Helpers                                                                  */
/* ------------------------------------------------------------------------ */

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* ------------------------------------------------------------------------ */
/* Commands on helper threads                                               */
/* ------------------------------------------------------------------------ */

static tp__ctl_session *find_session(tp_control *ctl, uint64_t id)
{
    for (size_t i = 0; i < ctl->nsessions; i++)
        if (tp__ctl_session_id(ctl->sessions[i]) == id)
            return ctl->sessions[i];
    return NULL;
}

/* Delivers the replies of finished jobs (and joins retired helpers). */
static void collect_jobs(tp_control *ctl)
{
    char buf[256];
    while (read(ctl->wake[0], buf, sizeof buf) > 0)
        ;
    pthread_mutex_lock(&ctl->mu);
    tp__ctl_job *job = ctl->done;
    ctl->done = NULL;
    pthread_mutex_unlock(&ctl->mu);
    while (job) {
        tp__ctl_job *next = job->next;
        ctl->jobs_running--;
        tp__ctl_session *s = find_session(ctl, job->session_id);
        if (s)
            tp__ctl_session_job_done(s, &job->reply);
        tp__ctl_job_collected(job);
        job = next;
    }
}

/* ------------------------------------------------------------------------ */
/* The control thread                                                       */
/* ------------------------------------------------------------------------ */

static void refuse(tp_control *ctl, int fd)
{
    char msg[96];
    int n = snprintf(msg, sizeof msg, "error: too many clients (at most %zu)\n",
                     ctl->max_clients);
    tp__ctl_log("Refused a client: too many clients (at most %zu)",
                ctl->max_clients);
    if (send(fd, msg, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
        /* Nothing to do: the client is gone or not reading. */
    }
    close(fd);
}

/* Makes room for one more connection in its handshake by closing the
 * oldest one that had a turn to speak and still has not completed it.
 * false if every handshake place is taken by a connection accepted in this
 * turn. */
static bool evict_handshake(tp_control *ctl)
{
    size_t victim = ctl->nsessions;
    for (size_t i = 0; i < ctl->nsessions; i++) {
        tp__ctl_session *s = ctl->sessions[i];
        if (tp__ctl_session_evictable(s) &&
            (victim == ctl->nsessions ||
             tp__ctl_session_id(s) < tp__ctl_session_id(ctl->sessions[victim])))
            victim = i;
    }
    if (victim == ctl->nsessions)
        return false;
    tp__ctl_log("Closing the oldest unfinished handshake (client %llu) to "
                "make room",
                (unsigned long long)tp__ctl_session_id(ctl->sessions[victim]));
    tp__ctl_session_free(ctl->sessions[victim]);
    ctl->sessions[victim] = ctl->sessions[--ctl->nsessions];
    return true;
}

static bool add_session(tp_control *ctl, int fd, double now)
{
    if (ctl->nsessions == ctl->cap_sessions) {
        size_t cap = ctl->cap_sessions ? ctl->cap_sessions * 2 : 16;
        tp__ctl_session **v =
            realloc(ctl->sessions, cap * sizeof *ctl->sessions);
        if (!v)
            return false;
        ctl->sessions = v;
        ctl->cap_sessions = cap;
    }
    tp__ctl_session *s = tp__ctl_session_new(ctl, fd, ctl->next_id++, now);
    if (!s)
        return false;
    ctl->sessions[ctl->nsessions++] = s;
    return true;
}

/* Accepts waiting clients. Sessions take max_clients places, connections
 * in their handshake max_handshakes others; when those are full, the
 * oldest unfinished handshake makes room, so that clients trickling bytes
 * into handshakes never lock out one that completes its own at once.
 *
 * Refused connections (a wrong or missing token) wait out their delay in
 * max_refused places of their own, so that guessers never hold the
 * handshake places a client with the right token needs. While those are
 * full, no connection is accepted: new ones wait in the listen backlog
 * until a refusal has been answered. So every refused client waits out
 * the whole delay, and guesses are bounded to (max_refused +
 * max_handshakes) per delay however many connections a guesser opens
 * (the handshakes already accepted may be refused meanwhile). */
static void accept_clients(tp_control *ctl, double now)
{
    size_t ready, hs, refused;
    tp__ctl_count_places(ctl, &ready, &hs, &refused);
    if (refused >= ctl->max_refused) {
        ctl->accept_paused = true;
        return;
    }
    for (int i = 0; i < ACCEPT_BURST; i++) {
        if (ready < ctl->max_clients && hs >= ctl->max_handshakes) {
            if (!evict_handshake(ctl)) {
                /* Retry after the next turn, when those spoke. */
                ctl->accept_paused = true;
                return;
            }
            hs--;
        }
        int fd =
            accept4(ctl->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            /* Out of descriptors or memory: the listener stays readable,
             * so stop polling it for a while instead of spinning. */
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
                errno == ENOMEM)
                ctl->accept_paused = true;
            return; /* else EAGAIN, or a client that vanished meanwhile */
        }
        if (ready >= ctl->max_clients) {
            refuse(ctl, fd);
            continue;
        }
        if (!add_session(ctl, fd, now)) {
            close(fd);
            continue;
        }
        hs++;
    }
}

static void reap_sessions(tp_control *ctl, double now)
{
    size_t j = 0;
    for (size_t i = 0; i < ctl->nsessions; i++) {
        tp__ctl_session *s = ctl->sessions[i];
        double dl = tp__ctl_session_deadline(s);
        if (dl > 0 && now >= dl)
            tp__ctl_session_expire(s);
        if (tp__ctl_session_dead(s)) {
            if (tp__ctl_session_has_job(s)) {
                tp__ctl_session_orphan(s);
                ctl->sessions[j++] = s;
            } else {
                tp__ctl_session_free(s);
            }
        } else {
            ctl->sessions[j++] = s;
        }
    }
    ctl->nsessions = j;
}

static int poll_timeout(tp_control *ctl, double now)
{
    double first = 0;
    for (size_t i = 0; i < ctl->nsessions; i++) {
        double dl = tp__ctl_session_deadline(ctl->sessions[i]);
        if (dl > 0 && (first == 0 || dl < first))
            first = dl;
    }
    if (first == 0)
        return -1;
    double ms = (first - now) * 1000.0 + 1.0;
    return ms < 0 ? 0 : ms > 60000 ? 60000 : (int)ms;
}

/* One turn: waits (at most max_wait ms unless negative) for the wake pipe,
 * the listener or a session, then serves what is ready. false if poll
 * failed. */
static bool turn(tp_control *ctl, int max_wait)
{
    size_t need = ctl->nsessions + 2;
    if (need > ctl->pfd_cap) {
        struct pollfd *p = realloc(ctl->pfd, need * 2 * sizeof *p);
        if (p) {
            ctl->pfd = p;
            ctl->pfd_cap = need * 2;
        } else if (ctl->pfd_cap < 2) {
            return false;
        }
    }
    struct pollfd *pfd = ctl->pfd;
    pfd[0] = (struct pollfd){ctl->wake[0], POLLIN, 0};
    pfd[1] =
        (struct pollfd){ctl->listen_fd, ctl->accept_paused ? 0 : POLLIN, 0};
    size_t n = 2;
    for (size_t i = 0; i < ctl->nsessions && n < ctl->pfd_cap; i++) {
        tp__ctl_session *s = ctl->sessions[i];
        pfd[n++] = (struct pollfd){tp__ctl_session_fd(s),
                                   tp__ctl_session_events(s), 0};
    }
    int timeout = poll_timeout(ctl, tp__ctl_now());
    if (ctl->accept_paused && (timeout < 0 || timeout > 100))
        timeout = 100;
    if (max_wait >= 0 && (timeout < 0 || timeout > max_wait))
        timeout = max_wait;
    ctl->accept_paused = false; /* retry after this poll */
    ctl->turn++;
    int rc = poll(pfd, n, timeout);
    if (rc < 0 && errno != EINTR)
        return false;
    if (rc > 0 && pfd[0].revents)
        collect_jobs(ctl);
    /* Sessions first: their pollfd slots match their indexes now. */
    size_t count = n - 2;
    for (size_t i = 0; rc > 0 && i < count; i++)
        if (pfd[i + 2].revents)
            tp__ctl_session_io(ctl->sessions[i], pfd[i + 2].revents);
    if (rc > 0 && pfd[1].revents)
        accept_clients(ctl, tp__ctl_now());
    reap_sessions(ctl, tp__ctl_now());
    return true;
}

/* Closes every session; those whose job runs stay until it is collected,
 * and their replies drop. */
static void close_all(tp_control *ctl)
{
    for (size_t i = 0; i < ctl->nsessions; i++)
        tp__ctl_session_orphan(ctl->sessions[i]);
    while (ctl->jobs_running > 0) {
        struct pollfd w = {ctl->wake[0], POLLIN, 0};
        if (poll(&w, 1, -1) > 0)
            collect_jobs(ctl);
    }
    tp__ctl_jobs_stop(ctl);
    for (size_t i = 0; i < ctl->nsessions; i++)
        tp__ctl_session_free(ctl->sessions[i]);
    ctl->nsessions = 0;
}

static void *control_loop(void *arg)
{
    tp_control *ctl = arg;
    /* Named for top -H, gdb and control_bench --worst (which reads its CPU
     * time); helpers are "tp-ctl-job". */
    pthread_setname_np(pthread_self(), "tp-control");
    while (!atomic_load(&ctl->stopping))
        if (!turn(ctl, -1))
            break;
    close_all(ctl);
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* Driving the loop by hand (the whole-server fuzz target)                  */
/* ------------------------------------------------------------------------ */

int tp__ctl_manual_open(tp_control *ctl)
{
    if (ctl->started || ctl->wake[0] >= 0)
        return TP_EINVAL;
    return pipe2(ctl->wake, O_NONBLOCK | O_CLOEXEC) == 0 ? TP_OK : TP_ESYS;
}

int tp__ctl_manual_adopt(tp_control *ctl, int fd)
{
    return add_session(ctl, fd, tp__ctl_now()) ? TP_OK : TP_ENOMEM;
}

void tp__ctl_manual_turn(tp_control *ctl, int timeout_ms)
{
    turn(ctl, timeout_ms);
}

bool tp__ctl_manual_idle(const tp_control *ctl)
{
    return ctl->nsessions == 0 && ctl->jobs_running == 0;
}

void tp__ctl_manual_close(tp_control *ctl)
{
    close_all(ctl);
    if (ctl->wake[0] >= 0) {
        close(ctl->wake[0]);
        close(ctl->wake[1]);
    }
    ctl->wake[0] = ctl->wake[1] = -1;
}

/* ------------------------------------------------------------------------ */
/* Sockets                                                                  */
/* ------------------------------------------------------------------------ */

static int listen_tcp(tp_control *ctl)
{
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    int gai = getaddrinfo(ctl->host, ctl->port, &hints, &res);
    if (gai != 0) {
        errno = gai == EAI_SYSTEM ? errno : EADDRNOTAVAIL;
        return TP_ESYS;
    }
    int fd = -1, err = EADDRNOTAVAIL;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family,
                    ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    ai->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
            listen(fd, SOMAXCONN) == 0)
            break;
        err = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        errno = err;
        return TP_ESYS;
    }
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET)
            ctl->bound_port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        else if (ss.ss_family == AF_INET6)
            ctl->bound_port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    }
    ctl->listen_fd = fd;
    return TP_OK;
}

static bool fill_sun(struct sockaddr_un *sa, const char *path)
{
    memset(sa, 0, sizeof *sa);
    sa->sun_family = AF_UNIX;
    if (strlen(path) >= sizeof sa->sun_path)
        return false;
    strcpy(sa->sun_path, path);
    return true;
}

/* Removes a socket file nobody listens on; fails on a live socket or on a
 * file that is not a socket. */
static int clear_stale(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return errno == ENOENT ? TP_OK : TP_ESYS;
    if (!S_ISSOCK(st.st_mode)) {
        errno = EEXIST;
        return TP_ESYS;
    }
    struct sockaddr_un sa;
    fill_sun(&sa, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return TP_ESYS;
    int rc = connect(fd, (struct sockaddr *)&sa, sizeof sa);
    int err = errno;
    close(fd);
    if (rc == 0) {
        errno = EADDRINUSE;
        return TP_ESYS;
    }
    if (err != ECONNREFUSED) {
        errno = err;
        return TP_ESYS;
    }
    return unlink(path) == 0 || errno == ENOENT ? TP_OK : TP_ESYS;
}

/* Binds fd to path with mode 0600 and no window in which another user
 * could connect: the socket is created in a fresh 0700 directory beside
 * path, made 0600, then renamed into place. */
static int bind_private(int fd, const char *path)
{
    struct sockaddr_un sa;
    char *dir = strdup(path);
    if (!dir)
        return TP_ENOMEM;
    char *slash = strrchr(dir, '/');
    const char *parent = slash ? (slash == dir ? "/" : dir) : ".";
    if (slash && slash != dir)
        *slash = '\0';
    char tmp[sizeof sa.sun_path + 32];
    snprintf(tmp, sizeof tmp, "%s" PRIVATE_DIR, parent);
    free(dir);
    char sock[sizeof tmp + 4];
    int rc = TP_ESYS;
    if (mkdtemp(tmp) == NULL)
        return TP_ESYS;
    snprintf(sock, sizeof sock, "%s" PRIVATE_SOCK, tmp);
    if (!fill_sun(&sa, sock)) {
        errno = ENAMETOOLONG;
        rmdir(tmp);
        return TP_ESYS;
    }
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
        chmod(sock, 0600) == 0 && rename(sock, path) == 0)
        rc = TP_OK;
    int err = errno;
    unlink(sock);
    rmdir(tmp);
    errno = err;
    return rc;
}

static int listen_unix(tp_control *ctl)
{
    struct sockaddr_un sa;
    if (!fill_sun(&sa, ctl->path)) {
        errno = ENAMETOOLONG;
        return TP_ESYS;
    }
    int rc = clear_stale(ctl->path);
    if (rc != TP_OK)
        return rc;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return TP_ESYS;
    rc = bind_private(fd, ctl->path);
    if (rc == TP_OK && listen(fd, SOMAXCONN) != 0)
        rc = TP_ESYS;
    struct stat st;
    if (rc == TP_OK && stat(ctl->path, &st) == 0) {
        ctl->sock_dev = st.st_dev;
        ctl->sock_ino = st.st_ino;
    }
    if (rc != TP_OK) {
        int err = errno;
        close(fd);
        errno = err;
        return rc;
    }
    ctl->listen_fd = fd;
    return TP_OK;
}

/* Removes our socket file, unless someone replaced it meanwhile. */
static void unlink_ours(tp_control *ctl)
{
    struct stat st;
    if (ctl->is_unix && stat(ctl->path, &st) == 0 &&
        st.st_dev == ctl->sock_dev && st.st_ino == ctl->sock_ino)
        unlink(ctl->path);
}

/* ------------------------------------------------------------------------ */
/* Public API                                                               */
/* ------------------------------------------------------------------------ */

static tp_control *new_common(tp_pool *pool, const tp_control_opts *opts)
{
    if (!pool)
        return NULL;
    tp_control *ctl = calloc(1, sizeof *ctl);
    if (!ctl)
        return NULL;
    ctl->pool = pool;
    ctl->simple = tp_func_name(pool) != NULL;
    ctl->listen_fd = -1;
    ctl->wake[0] = ctl->wake[1] = -1;
    ctl->bound_port = -1;
    ctl->max_clients = DEFAULT_MAX_CLIENTS;
    ctl->max_line = DEFAULT_MAX_LINE;
    ctl->max_spawn = DEFAULT_MAX_SPAWN;
    ctl->handshake_timeout = DEFAULT_HANDSHAKE_TIMEOUT;
    ctl->refuse_delay = REFUSE_DELAY;
    ctl->out_high = OUT_HIGH;
    if (opts) {
        if (opts->max_clients)
            ctl->max_clients = opts->max_clients;
        if (opts->max_line)
            ctl->max_line = opts->max_line;
        if (opts->max_spawn)
            ctl->max_spawn = opts->max_spawn;
        ctl->max_handshakes = opts->max_handshakes;
        ctl->idle_timeout = opts->idle_timeout > 0 ? opts->idle_timeout : 0;
        if (opts->handshake_timeout > 0)
            ctl->handshake_timeout = opts->handshake_timeout;
        if (opts->token && !(ctl->token = strdup(opts->token))) {
            free(ctl);
            return NULL;
        }
    }
    if (!ctl->max_handshakes)
        ctl->max_handshakes = ctl->max_clients < DEFAULT_MAX_HANDSHAKES
                                  ? ctl->max_clients
                                  : DEFAULT_MAX_HANDSHAKES;
    ctl->max_refused = ctl->max_handshakes > SIZE_MAX / REFUSED_PER_HANDSHAKE
                           ? SIZE_MAX
                           : REFUSED_PER_HANDSHAKE * ctl->max_handshakes;
    pthread_mutex_init(&ctl->mu, NULL);
    pthread_mutex_init(&ctl->stop_mu, NULL);
    return ctl;
}

/* A port is a service name (resolved at start) or a decimal number up to
 * 65535; getaddrinfo would take "99999" modulo 65536. */
static bool port_valid(const char *port)
{
    if (!*port)
        return false;
    if (!strchr("+-0123456789", port[0]))
        return true;
    unsigned long v = 0;
    for (const char *p = port; *p; p++) {
        if (*p < '0' || *p > '9' || (v = v * 10 + (unsigned)(*p - '0')) > 65535)
            return false;
    }
    return true;
}

TP_API tp_control *tp_control_new_tcp(tp_pool *pool, const char *host,
                                      const char *port,
                                      const tp_control_opts *opts)
{
    if (!host || !port || !port_valid(port)) {
        errno = EINVAL;
        return NULL;
    }
    tp_control *ctl = new_common(pool, opts);
    if (!ctl)
        return NULL;
    ctl->host = strdup(host);
    ctl->port = strdup(port);
    if (!ctl->host || !ctl->port) {
        tp_control_free(ctl);
        return NULL;
    }
    return ctl;
}

/* Whether path, and the private socket bind_private creates beside it,
 * fit a socket address. */
static bool unix_path_fits(const char *path)
{
    struct sockaddr_un sa;
    size_t len = strlen(path);
    const char *slash = strrchr(path, '/');
    size_t parent = !slash ? 1 : slash == path ? 1 : (size_t)(slash - path);
    return len < sizeof sa.sun_path &&
           parent + strlen(PRIVATE_DIR PRIVATE_SOCK) < sizeof sa.sun_path;
}

TP_API tp_control *tp_control_new_unix(tp_pool *pool, const char *path,
                                       const tp_control_opts *opts)
{
    if (!path || !*path) {
        errno = EINVAL;
        return NULL;
    }
    if (!unix_path_fits(path)) {
        errno = ENAMETOOLONG;
        return NULL;
    }
    tp_control *ctl = new_common(pool, opts);
    if (!ctl)
        return NULL;
    ctl->is_unix = true;
    if (!(ctl->path = dup_or_null(path))) {
        tp_control_free(ctl);
        return NULL;
    }
    return ctl;
}

static int check_name(const char *name)
{
    return name && *name && strlen(name) < TP_NAME_MAX &&
                   !strpbrk(name, " \t\r\n")
               ? TP_OK
               : TP_EINVAL;
}

TP_API int tp_control_register(tp_control *ctl, const char *name, tp_fn fn)
{
    if (!ctl || !fn || check_name(name) != TP_OK)
        return TP_EINVAL;
    pthread_mutex_lock(&ctl->stop_mu);
    int rc = ctl->started
                 ? TP_EINVAL
                 : tp__ctl_registry_add(&ctl->reg, name, fn, NULL, NULL);
    pthread_mutex_unlock(&ctl->stop_mu);
    return rc;
}

TP_API int tp_control_register_callback(tp_control *ctl, const char *name,
                                        tp_callback cb, void *arg)
{
    if (!ctl || !cb || check_name(name) != TP_OK)
        return TP_EINVAL;
    pthread_mutex_lock(&ctl->stop_mu);
    int rc = ctl->started
                 ? TP_EINVAL
                 : tp__ctl_registry_add(&ctl->reg, name, NULL, cb, arg);
    pthread_mutex_unlock(&ctl->stop_mu);
    return rc;
}

TP_API int tp_control_register_gauge(tp_control *ctl, const char *name,
                                     double (*fn)(void *arg), void *arg)
{
    if (!ctl || !fn)
        return TP_EINVAL;
    pthread_mutex_lock(&ctl->stop_mu);
    int rc = ctl->started
                 ? TP_EINVAL
                 : tp__ctl_registry_add_gauge(&ctl->reg, name, fn, arg);
    pthread_mutex_unlock(&ctl->stop_mu);
    return rc;
}

TP_API int tp_control_start(tp_control *ctl)
{
    if (!ctl)
        return TP_EINVAL;
    pthread_mutex_lock(&ctl->stop_mu);
    if (ctl->started) {
        pthread_mutex_unlock(&ctl->stop_mu);
        return TP_EINVAL;
    }
    int rc = pipe2(ctl->wake, O_NONBLOCK | O_CLOEXEC) == 0 ? TP_OK : TP_ESYS;
    if (rc == TP_OK)
        rc = ctl->is_unix ? listen_unix(ctl) : listen_tcp(ctl);
    if (rc == TP_OK) {
        int err = pthread_create(&ctl->thread, NULL, control_loop, ctl);
        if (err != 0) {
            errno = err;
            rc = TP_ESYS;
            unlink_ours(ctl);
        }
    }
    if (rc != TP_OK) {
        int err = errno;
        if (ctl->listen_fd >= 0)
            close(ctl->listen_fd);
        if (ctl->wake[0] >= 0) {
            close(ctl->wake[0]);
            close(ctl->wake[1]);
        }
        ctl->listen_fd = ctl->wake[0] = ctl->wake[1] = -1;
        ctl->bound_port = -1;
        errno = err;
    } else {
        ctl->started = true;
        atomic_store(&ctl->serving, 1);
        if (ctl->is_unix)
            tp__ctl_log("Opened socket '%s'", ctl->path);
        else
            tp__ctl_log("Opened socket at %s:%d", ctl->host, ctl->bound_port);
    }
    pthread_mutex_unlock(&ctl->stop_mu);
    return rc;
}

TP_API int tp_control_port(const tp_control *ctl)
{
    if (!ctl || ctl->is_unix || !atomic_load(&ctl->serving))
        return -1;
    return ctl->bound_port;
}

TP_API bool tp_control_is_serving(const tp_control *ctl)
{
    return ctl && atomic_load(&ctl->serving);
}

TP_API int tp_control_stop(tp_control *ctl)
{
    if (!ctl)
        return TP_EINVAL;
    pthread_mutex_lock(&ctl->stop_mu);
    if (!atomic_load(&ctl->serving)) {
        pthread_mutex_unlock(&ctl->stop_mu);
        return TP_OK;
    }
    if (pthread_equal(pthread_self(), ctl->thread)) {
        pthread_mutex_unlock(&ctl->stop_mu);
        return TP_EDEADLK;
    }
    atomic_store(&ctl->stopping, 1);
    tp__ctl_wake(ctl);
    pthread_join(ctl->thread, NULL);
    close(ctl->listen_fd);
    ctl->listen_fd = -1;
    unlink_ours(ctl);
    if (ctl->is_unix)
        tp__ctl_log("Removed socket '%s'", ctl->path);
    else
        tp__ctl_log("Closed socket at %s:%d", ctl->host, ctl->bound_port);
    close(ctl->wake[0]);
    close(ctl->wake[1]);
    ctl->wake[0] = ctl->wake[1] = -1;
    atomic_store(&ctl->serving, 0);
    pthread_mutex_unlock(&ctl->stop_mu);
    return TP_OK;
}

TP_API void tp_control_free(tp_control *ctl)
{
    if (!ctl)
        return;
    tp_control_stop(ctl);
    if (ctl->wake[0] >= 0) /* opened by hand (tp__ctl_manual_open) */
        tp__ctl_manual_close(ctl);
    free(ctl->sessions);
    free(ctl->pfd);
    tp__ctl_help_cache_free(&ctl->help);
    tp__ctl_registry_free(&ctl->reg);
    free(ctl->host);
    free(ctl->port);
    free(ctl->path);
    free(ctl->token);
    pthread_mutex_destroy(&ctl->mu);
    pthread_mutex_destroy(&ctl->stop_mu);
    free(ctl);
}
