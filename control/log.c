// SPDX-License-Identifier: MIT
/*
 * The control server's logging: debug messages through the engine's log
 * (tp_log_set), so that one handler sees the pool's and the server's
 * messages. The only file of control/ that includes the engine's internal
 * header.
 */
#include <stdarg.h>
#include <stdio.h>

#include "ctl.h"
#include "internal.h"

bool tp__ctl_log_on(void)
{
    return tp__log_on(TP_LOG_DEBUG);
}

void tp__ctl_log(const char *fmt, ...)
{
    if (!tp__log_on(TP_LOG_DEBUG))
        return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    tp__log_write(TP_LOG_DEBUG, "%s", msg);
}
