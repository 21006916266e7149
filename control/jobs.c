/* SPDX-License-Identifier: MIT */
/*
 * Commands on helper threads: a session hands a blocking or offloaded
 * request line to tp__ctl_job_start, which copies it and gives it to a
 * helper thread (tp-ctl-job). The helper parses and runs it, posts the job
 * on ctl->done under ctl->mu and wakes the control thread, which delivers
 * the reply (server.c, collect_jobs). See the DESIGN block in server.c.
 *
 * Helpers are kept for the next job: one that finishes a job waits, idle,
 * for another while fewer than IDLE_HELPERS others do; otherwise it
 * retires, and the control thread joins it when it collects its last job.
 * So a blocking command costs a thread creation only when more of them run
 * at once than ever before, and at most IDLE_HELPERS threads wait unused.
 * ctl->mu guards the idle list and each idle helper's hand-over (job,
 * stop); tp__ctl_jobs_stop joins the idle helpers once no job runs.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"

enum { IDLE_HELPERS = 4 };

struct tp__ctl_helper {
    pthread_t thread;
    pthread_cond_t cv; /* with ctl->mu: a job was handed over, or stop */
    tp__ctl_job *job;  /* the job to run next, or NULL */
    bool stop;
    struct tp__ctl_helper *next; /* on ctl->idle */
};

static void run_job(tp__ctl_job *job)
{
    const tp__ctl_command *cmd;
    tp__ctl_args args;
    if (tp__ctl_parse(&job->ctx, job->line, &cmd, &args, &job->reply)) {
        cmd->run(&job->ctx, &args, &job->reply);
        job->reply.cmd = cmd->name;
        tp__ctl_args_free(&args);
    }
    free(job->line);
    job->line = NULL;
}

static void *helper_main(void *arg)
{
    tp__ctl_helper *h = arg;
    tp__ctl_job *job = h->job;
    tp_control *ctl = job->ctl;
    pthread_setname_np(pthread_self(), "tp-ctl-job");
    while (job) {
        run_job(job);
        /* Posting the job and going idle are one step, so a session whose
         * reply was delivered finds this helper ready for its next job. */
        pthread_mutex_lock(&ctl->mu);
        bool stay = ctl->n_idle < IDLE_HELPERS;
        h->job = NULL;
        job->retired = stay ? NULL : h;
        job->next = ctl->done;
        ctl->done = job;
        if (stay) {
            h->next = ctl->idle;
            ctl->idle = h;
            ctl->n_idle++;
        }
        pthread_mutex_unlock(&ctl->mu);
        tp__ctl_wake(ctl);
        if (!stay)
            return NULL; /* collect_jobs joins and frees h */
        pthread_mutex_lock(&ctl->mu);
        while (!h->job && !h->stop)
            pthread_cond_wait(&h->cv, &ctl->mu);
        job = h->job;
        pthread_mutex_unlock(&ctl->mu);
    }
    return NULL; /* stopped: tp__ctl_jobs_stop joins and frees h */
}

static void helper_free(tp__ctl_helper *h)
{
    pthread_cond_destroy(&h->cv);
    free(h);
}

/* A new helper thread that runs job first; NULL with errno set. */
static tp__ctl_helper *helper_new(tp__ctl_job *job)
{
    tp__ctl_helper *h = calloc(1, sizeof *h);
    if (!h) {
        errno = ENOMEM;
        return NULL;
    }
    pthread_cond_init(&h->cv, NULL);
    h->job = job;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    int rc = pthread_create(&h->thread, &attr, helper_main, h);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        helper_free(h);
        errno = rc;
        return NULL;
    }
    return h;
}

int tp__ctl_job_start(tp_control *ctl, uint64_t id, const tp__ctl_ctx *ctx,
                      const char *line, size_t len)
{
    tp__ctl_job *job = calloc(1, sizeof *job);
    char *copy = malloc(len + 1);
    if (!job || !copy) {
        free(job);
        free(copy);
        return TP_ENOMEM;
    }
    memcpy(copy, line, len);
    copy[len] = '\0';
    job->ctl = ctl;
    job->session_id = id;
    job->ctx = *ctx;
    job->line = copy;
    pthread_mutex_lock(&ctl->mu);
    tp__ctl_helper *h = ctl->idle;
    if (h) {
        ctl->idle = h->next;
        ctl->n_idle--;
        h->job = job;
    }
    pthread_mutex_unlock(&ctl->mu);
    /* Signalled unlocked, so the helper does not wake to find ctl->mu
     * still held. It stays until this thread joins it (it is neither idle
     * nor stopped now), so h is valid here. */
    if (h)
        pthread_cond_signal(&h->cv);
    if (!h && !helper_new(job)) {
        int rc = errno == ENOMEM ? TP_ENOMEM : TP_ESYS;
        free(job->line);
        free(job);
        return rc;
    }
    ctl->jobs_running++;
    return TP_OK;
}

void tp__ctl_job_collected(tp__ctl_job *job)
{
    if (job->retired) {
        pthread_join(job->retired->thread, NULL);
        helper_free(job->retired);
    }
    tp__ctl_reply_clear(&job->reply);
    free(job);
}

void tp__ctl_jobs_stop(tp_control *ctl)
{
    pthread_mutex_lock(&ctl->mu);
    tp__ctl_helper *idle = ctl->idle;
    ctl->idle = NULL;
    ctl->n_idle = 0;
    for (tp__ctl_helper *h = idle; h; h = h->next) {
        h->stop = true;
        pthread_cond_signal(&h->cv);
    }
    pthread_mutex_unlock(&ctl->mu);
    for (tp__ctl_helper *h = idle, *next; h; h = next) {
        next = h->next;
        pthread_join(h->thread, NULL);
        helper_free(h);
    }
}
