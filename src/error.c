/* SPDX-License-Identifier: MIT */
/* Error codes: their sentences and names. */
#include "internal.h"

static const struct {
    const char *name, *text;
} errors[] = {
    {"TP_OK", "Success."},
    {"TP_EINVAL", "Invalid argument."},
    {"TP_ENOMEM", "Out of memory."},
    {"TP_ECLOSED", "The pool is closed; you must use another pool."},
    {"TP_ELOCKED", "The pool is locked; cannot start new tasks."},
    {"TP_ENOTASK", "No task with that id is known to the pool."},
    {"TP_EALREADY_CANCELLED", "The task has already been cancelled."},
    {"TP_EALREADY_ENDED", "The task has already ended."},
    {"TP_ENOGROUP", "No task group with that name exists in the pool."},
    {"TP_EGROUP_EXISTS", "A task group with that name already exists."},
    {"TP_EWRONG_POOL", "Not possible with this kind of pool."},
    {"TP_EDEADLK", "The call would wait for the calling task itself."},
    {"TP_ECANCELED", "The task was cancelled."},
    {"TP_ETIMEDOUT", "The timeout expired."},
    {"TP_ESYS", "A system call failed."},
    {"TP_EAGAIN", "Nothing available right now."},
};

static int slot(int err)
{
    int i = -err;
    return i >= 0 && i < (int)(sizeof errors / sizeof errors[0]) ? i : -1;
}

const char *tp_strerror(int err)
{
    int i = slot(err);
    return i < 0 ? "Unknown error." : errors[i].text;
}

const char *tp_err_name(int err)
{
    int i = slot(err);
    return i < 0 ? "TP_UNKNOWN" : errors[i].name;
}
