/* SPDX-License-Identifier: MIT */
/*
 * --stat: one line of counters per interval, like redis-cli --stat, from
 * the stats command's JSON result; the rates come from the lifetime
 * totals of two samples and the time between them. A header line starts
 * every 20 lines.
 */
#include <stdio.h>
#include <time.h>

#include "cli.h"

#define HEADER_EVERY 20

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void rate(FILE *out, double cur, double prev, double dt, bool first)
{
    if (first || dt <= 0)
        fprintf(out, " %10s", "-");
    else
        fprintf(out, " %10.1f", (cur - prev) / dt);
}

int cli_stat(cli_conn *c, double interval, FILE *out)
{
    cli_stats prev = {0};
    double prev_t = 0;
    for (unsigned long line = 0;; line++) {
        const char *raw;
        bool interrupted;
        cJSON *resp = cli_request(c, "stats", &raw, &interrupted);
        if (!resp)
            return interrupted ? CLI_EXIT_OK : CLI_EXIT_FAILED;
        double t = now();
        cli_stats s;
        if (!cli_parse_stats(resp, &s)) {
            const char *msg =
                cJSON_GetStringValue(cJSON_GetObjectItem(resp, "message"));
            fprintf(c->diag, "taskpool-control: no stats: %s\n",
                    msg ? msg : raw);
            cJSON_Delete(resp);
            return CLI_EXIT_FAILED;
        }
        cJSON_Delete(resp);
        if (line % HEADER_EVERY == 0)
            fprintf(out, "%10s %10s %10s %10s %10s %10s %10s %10s\n", "running",
                    "pending", "cancelled", "ended", "threads", "started/s",
                    "ended/s", "failed/s");
        fprintf(out, "%10.0f %10.0f %10.0f %10.0f %10.0f", s.running, s.pending,
                s.cancelled, s.ended, s.threads);
        bool first = line == 0;
        rate(out, s.total_started, prev.total_started, t - prev_t, first);
        rate(out, s.total_ended, prev.total_ended, t - prev_t, first);
        rate(out, s.total_failed, prev.total_failed, t - prev_t, first);
        fputc('\n', out);
        fflush(out);
        prev = s;
        prev_t = t;
        int r = cli_wait_readable(c, interval);
        if (r < 0)
            return CLI_EXIT_OK; /* Ctrl+C */
        if (r > 0) {
            /* Nothing is asked: the server closed the connection, or
             * broke the protocol. */
            fprintf(c->diag, "taskpool-control: %s\n",
                    cli_read_line(c) == CLI_READ_CLOSED
                        ? "lost the connection to the server"
                        : "unexpected data from the server");
            return CLI_EXIT_FAILED;
        }
    }
}
