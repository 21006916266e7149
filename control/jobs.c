/* SPDX-License-Identifier: MIT */
/*
 * Commands on helper threads: a session hands a blocking or offloaded
 * request line to tp__ctl_job_start, which copies it and starts a thread
 * (tp-ctl-job) that parses and runs it, posts the job on ctl->done under
 * ctl->mu and wakes the control thread. The control thread joins the
 * thread and delivers the reply (server.c, collect_jobs). See the DESIGN
 * block in server.c.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"

static void *job_main(void *arg)
{
    tp__ctl_job *job = arg;
    pthread_setname_np(pthread_self(), "tp-ctl-job");
    const tp__ctl_command *cmd;
    tp__ctl_args args;
    if (tp__ctl_parse(&job->ctx, job->line, &cmd, &args, &job->reply)) {
        cmd->run(&job->ctx, &args, &job->reply);
        job->reply.cmd = cmd->name;
        tp__ctl_args_free(&args);
    }
    free(job->line);
    job->line = NULL;
    tp_control *ctl = job->ctl;
    pthread_mutex_lock(&ctl->mu);
    job->next = ctl->done;
    ctl->done = job;
    pthread_mutex_unlock(&ctl->mu);
    tp__ctl_wake(ctl);
    return NULL;
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
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    int rc = pthread_create(&job->thread, &attr, job_main, job);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        free(job->line);
        free(job);
        errno = rc;
        return TP_ESYS;
    }
    ctl->jobs_running++;
    return TP_OK;
}
