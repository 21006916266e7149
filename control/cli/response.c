/* SPDX-License-Identifier: MIT */
/*
 * What the CLI makes of a response: the text the server's text mode would
 * print, the counters of a stats result, the names in a groups result; and
 * the check of a command name against the command table before a request
 * is sent. Pure functions (fuzzed by tests/fuzz/fuzz_cli.c).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli.h"
#include "ctl.h"

bool cli_ok(const cJSON *resp)
{
    return cJSON_IsTrue(cJSON_GetObjectItem(resp, "ok"));
}

bool cli_print(const char *request, const cJSON *resp, FILE *out, FILE *err)
{
    if (!cli_ok(resp)) {
        const char *msg =
            cJSON_GetStringValue(cJSON_GetObjectItem(resp, "message"));
        fprintf(err, "%s\n", msg ? msg : "error");
        return false;
    }
    const cJSON *result = cJSON_GetObjectItem(resp, "result");
    /* The command name decides a few renderings; JSON null is "inf" for
     * the pool-size getter (no argument) and "ok" for everything else. */
    char cmd[32] = "";
    const char *word = request + strspn(request, " \t");
    size_t len = strcspn(word, " \t");
    if (len < sizeof cmd)
        memcpy(cmd, word, len), cmd[len] = '\0';
    bool getter = strcasecmp(cmd, "pool-size") == 0 &&
                  word[len + strspn(word + len, " \t")] == '\0';
    if (cJSON_IsNull(result) && !getter)
        result = NULL;
    char *text = tp__ctl_result_text(cmd, result);
    /* groups prints a line per group, so none when there is none. */
    if (!(text && !*text && strcasecmp(cmd, "groups") == 0))
        fprintf(out, "%s\n", text ? text : "");
    free(text);
    return true;
}

bool cli_known_command(const char *line, bool simple, char *msg,
                       size_t msg_size)
{
    size_t skip = strspn(line, " \t");
    size_t len = strcspn(line + skip, " \t");
    const char *name = line + skip;
    if (len == 0 || name[0] == '-')
        return true;
    for (size_t i = 0; i < tp__ctl_ncommands; i++) {
        const tp__ctl_command *c = &tp__ctl_commands[i];
        if (tolower((unsigned char)c->name[0]) ==
                tolower((unsigned char)name[0]) &&
            strlen(c->name) == len && strncasecmp(c->name, name, len) == 0 &&
            tp__ctl_command_applies(c, simple))
            return true;
    }
    snprintf(msg, msg_size, "unknown command '%.*s' (try 'help')",
             len > 64 ? 64 : (int)len, name);
    return false;
}

static bool number(const cJSON *o, const char *key, double *v)
{
    const cJSON *e = cJSON_GetObjectItem(o, key);
    if (!cJSON_IsNumber(e))
        return false;
    *v = e->valuedouble;
    return true;
}

bool cli_parse_stats(const cJSON *resp, cli_stats *s)
{
    const cJSON *r = cJSON_GetObjectItem(resp, "result");
    return cli_ok(resp) && cJSON_IsObject(r) &&
           number(r, "running", &s->running) &&
           number(r, "pending", &s->pending) &&
           number(r, "cancelled", &s->cancelled) &&
           number(r, "ended", &s->ended) && number(r, "threads", &s->threads) &&
           number(r, "total_started", &s->total_started) &&
           number(r, "total_ended", &s->total_ended) &&
           number(r, "total_failed", &s->total_failed);
}

const char **cli_group_names(const cJSON *resp, size_t *n)
{
    *n = 0;
    const cJSON *r = cJSON_GetObjectItem(resp, "result");
    if (!cli_ok(resp) || !cJSON_IsArray(r))
        return NULL;
    size_t count = (size_t)cJSON_GetArraySize(r);
    const char **v = count ? malloc(count * sizeof *v) : NULL;
    if (!v)
        return NULL;
    const cJSON *e;
    cJSON_ArrayForEach(e, r)
    {
        const char *name = cJSON_GetStringValue(cJSON_GetObjectItem(e, "name"));
        if (name)
            v[(*n)++] = name;
    }
    if (*n == 0) {
        free(v);
        v = NULL;
    }
    return v;
}
