/* SPDX-License-Identifier: MIT */
/*
 * Request parsing shaped like Python's argparse, as the reference's control
 * server uses it: the tokenizer, then a command chosen from the command
 * table, then options (-n 2, --num 2, --num=2, -n2) and positionals in any
 * order, converted to C values. Usage errors follow argparse's layout
 * ("usage: ..." from help.c, then "prog: error: ...").
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "ctl.h"

#define MAX_TOKENS 4096

/* ------------------------------------------------------------------------ */
/* Tokens                                                                   */
/* ------------------------------------------------------------------------ */

size_t tp__ctl_tokenize(char *line, char **tok, size_t max)
{
    size_t n = 0;
    char *p = line;
    while (*p) {
        while (*p && isspace((unsigned char)*p))
            p++;
        if (!*p)
            break;
        char *start = p;
        int depth = 0;
        bool in_str = false;
        while (*p) {
            char c = *p;
            if (in_str) {
                if (c == '\\' && p[1])
                    p++;
                else if (c == '"')
                    in_str = false;
            } else if (c == '"') {
                in_str = true;
            } else if (c == '[' || c == '{') {
                depth++;
            } else if ((c == ']' || c == '}') && depth > 0) {
                depth--;
            } else if (depth == 0 && isspace((unsigned char)c)) {
                break;
            }
            p++;
        }
        if (*p)
            *p++ = '\0';
        if (n < max)
            tok[n] = start;
        n++;
    }
    return n;
}

/* ------------------------------------------------------------------------ */
/* Parsing                                                                  */
/* ------------------------------------------------------------------------ */

void tp__ctl_args_free(tp__ctl_args *a)
{
    for (size_t i = 0; i < TP__CTL_MAX_ARGS; i++) {
        cJSON_Delete(a->v[i].json);
        free(a->v[i].strs);
        free(a->v[i].ints);
    }
    memset(a, 0, sizeof *a);
}

static bool is_positional(const tp__ctl_argspec *a)
{
    return a->long_opt == NULL && a->short_opt == NULL;
}

/* Fills r with "usage: ...\nprog: error: msg". */
static void usage_error(tp__ctl_reply *r, const tp__ctl_command *cmd, int width,
                        const char *msg)
{
    tp__ctl_buf s = {0};
    tp__ctl_usage_line(cmd, width, &s);
    tp__ctl_buf_add(&s, "\n");
    tp__ctl_buf_add(&s, cmd ? cmd->name : "");
    tp__ctl_buf_add(&s, ": error: ");
    tp__ctl_buf_add(&s, msg);
    char *text = tp__ctl_buf_done(&s);
    tp__ctl_reply_error(r, TP__CTL_EUSAGE, "%s", text ? text : msg);
    r->is_usage = true;
    free(text);
}

static bool looks_negative(const char *t)
{
    if (t[0] != '-' || !t[1])
        return false;
    char *end;
    errno = 0;
    (void)strtod(t, &end);
    return *end == '\0';
}

static bool is_option_token(const char *t)
{
    return t[0] == '-' && t[1] != '\0' && !looks_negative(t);
}

/* The argument's name in messages: "num" or "-n/--num". */
static void arg_name(const tp__ctl_argspec *a, char *out, size_t size)
{
    if (is_positional(a))
        snprintf(out, size, "%s", a->dest);
    else if (a->short_opt && a->long_opt)
        snprintf(out, size, "%s/%s", a->short_opt, a->long_opt);
    else
        snprintf(out, size, "%s", a->short_opt ? a->short_opt : a->long_opt);
}

static bool parse_int(const char *t, long long *out)
{
    char *end;
    errno = 0;
    while (isspace((unsigned char)*t))
        t++;
    if (!*t)
        return false;
    long long v = strtoll(t, &end, 10);
    if (errno || end == t)
        return false;
    while (isspace((unsigned char)*end))
        end++;
    if (*end)
        return false;
    *out = v;
    return true;
}

/* Converts one token; on failure writes the argparse-like reason. */
static bool convert(const tp__ctl_ctx *ctx, const tp__ctl_argspec *a,
                    const char *t, tp__ctl_value *v, char *why, size_t size)
{
    char shown[96];
    size_t tl = strlen(t);
    if (tl > 80)
        snprintf(shown, sizeof shown, "%.77s...", t);
    else
        snprintf(shown, sizeof shown, "%s", t);
    v->str = t;
    switch (a->type) {
    case TP__CTL_T_FLAG:
    case TP__CTL_T_STR:
        return true;
    case TP__CTL_T_INT:
    case TP__CTL_T_COUNT:
    case TP__CTL_T_SPAWN:
        if (!parse_int(t, &v->i)) {
            snprintf(why, size, "invalid int value: '%s'", shown);
            return false;
        }
        /* Negative counts get the handler's sentence. */
        if (a->type == TP__CTL_T_SPAWN && v->i > 0 &&
            (unsigned long long)v->i > ctx->max_spawn) {
            snprintf(why, size,
                     "at most %zu tasks per command (the server's "
                     "max_spawn), not %lld",
                     ctx->max_spawn, v->i);
            return false;
        }
        return true;
    case TP__CTL_T_SIZE:
        if (strcasecmp(t, "inf") == 0 || strcasecmp(t, "unlimited") == 0) {
            v->size = TP_UNLIMITED;
            v->i = -2;
            return true;
        }
        if (parse_int(t, &v->i)) {
            v->size = v->i >= 0 ? (size_t)v->i : 0;
            return true;
        }
        snprintf(why, size, "invalid int value (or 'inf'): '%s'", shown);
        return false;
    case TP__CTL_T_FUNC:
    case TP__CTL_T_CALLBACK: {
        bool want_fn = a->type == TP__CTL_T_FUNC;
        const tp__ctl_entry *e = tp__ctl_registry_find(ctx->reg, t, want_fn);
        if (e) {
            v->entry = e;
            return true;
        }
        snprintf(why, size, "no %s registered as '%s'",
                 want_fn ? "function" : "callback", shown);
        return false;
    }
    default:
        break;
    }
    /* The JSON types. */
    const char *what = "JSON array";
    cJSON *j = cJSON_ParseWithOpts(t, NULL, true);
    bool ok = j != NULL;
    switch (a->type) {
    case TP__CTL_T_ARRAY:
        ok = ok && cJSON_IsArray(j);
        break;
    case TP__CTL_T_OBJECT:
        what = "JSON object";
        ok = ok && cJSON_IsObject(j);
        break;
    case TP__CTL_T_ARRAYS:
    case TP__CTL_T_OBJECTS: {
        bool arrays = a->type == TP__CTL_T_ARRAYS;
        what = arrays ? "JSON array of arrays" : "JSON array of objects";
        ok = ok && cJSON_IsArray(j);
        const cJSON *e;
        if (ok)
            cJSON_ArrayForEach(e, j)
            {
                if (arrays ? !cJSON_IsArray(e) : !cJSON_IsObject(e))
                    ok = false;
            }
        break;
    }
    default:
        ok = false;
        break;
    }
    if (!ok) {
        cJSON_Delete(j);
        snprintf(why, size, "invalid %s value: '%s'", what, shown);
        return false;
    }
    cJSON_Delete(v->json);
    v->json = j;
    return true;
}

/* Finds the option spec for token t ("-n", "--num", "--nu" as a unique
 * prefix); *value is set for "--num=2" and "-n2". NULL if unknown; sets
 * *ambiguous if a prefix matched several. */
static int find_option(const tp__ctl_command *cmd, char *t, char **value,
                       bool *ambiguous)
{
    *value = NULL;
    *ambiguous = false;
    if (t[1] == '-') {
        char *eq = strchr(t, '=');
        if (eq) {
            *eq = '\0';
            *value = eq + 1;
        }
        int found = -1, matches = 0;
        for (size_t i = 0; i < cmd->nargs; i++) {
            const char *lo = cmd->args[i].long_opt;
            if (!lo)
                continue;
            if (strcmp(lo, t) == 0)
                return (int)i;
            if (strncmp(lo, t, strlen(t)) == 0) {
                found = (int)i;
                matches++;
            }
        }
        if (matches > 1)
            *ambiguous = true;
        if (matches != 1 && eq)
            *eq = '=';
        return matches == 1 ? found : -1;
    }
    for (size_t i = 0; i < cmd->nargs; i++) {
        const char *so = cmd->args[i].short_opt;
        if (so && strncmp(so, t, 2) == 0) {
            if (t[2] == '\0')
                return (int)i;
            if (t[2] == '=') { /* "-n=2", as argparse reads it */
                *value = t + 3;
                return (int)i;
            }
            if (cmd->args[i].type != TP__CTL_T_FLAG) {
                *value = t + 2;
                return (int)i;
            }
        }
    }
    return -1;
}

static void join_tokens(char **tok, size_t n, char *out, size_t size)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n && used + 1 < size; i++) {
        int w = snprintf(out + used, size - used, "%s%s", i ? " " : "", tok[i]);
        if (w < 0)
            break;
        used += (size_t)w;
    }
    if (used >= size - 1 && size > 4)
        memcpy(out + size - 4, "...", 4);
}

/* scratch holds 2 * cap pointers, cap >= ntok. */
/* Why a parse failed: a usage error (`why`, reported by the parser of
 * `cmd`, NULL: the top-level one) or, if oom, an allocation. */
typedef struct failure {
    const tp__ctl_command *cmd;
    bool oom;
    char why[512];
} failure;

static bool fail_usage(failure *f, const tp__ctl_command *cmd, const char *fmt,
                       ...) __attribute__((format(printf, 3, 4)));
static bool fail_usage(failure *f, const tp__ctl_command *cmd, const char *fmt,
                       ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->why, sizeof f->why, fmt, ap);
    va_end(ap);
    f->cmd = cmd;
    return false;
}

/* Options of cmd in tok[0..ntok), into a; the other tokens go to pos (in
 * order, "--" ends the options) or, for unknown options, to extra. */
static bool take_options(const tp__ctl_ctx *ctx, const tp__ctl_command *cmd,
                         char **tok, size_t ntok, char **pos, size_t *npos,
                         char **extra, size_t *nextra, tp__ctl_args *a,
                         failure *f)
{
    char name[96], reason[192];
    bool dashdash = false;
    for (size_t i = 0; i < ntok; i++) {
        char *t = tok[i];
        if (dashdash || !is_option_token(t)) {
            pos[(*npos)++] = t;
            continue;
        }
        if (strcmp(t, "--") == 0) {
            dashdash = true;
            continue;
        }
        char *value;
        bool ambiguous;
        int k = find_option(cmd, t, &value, &ambiguous);
        if (k < 0 && ambiguous)
            return fail_usage(f, cmd, "ambiguous option: %s", t);
        if (k < 0) {
            extra[(*nextra)++] = t;
            continue;
        }
        const tp__ctl_argspec *spec = &cmd->args[k];
        tp__ctl_value *v = &a->v[k];
        arg_name(spec, name, sizeof name);
        if (spec->type == TP__CTL_T_FLAG && value)
            return fail_usage(f, cmd,
                              "argument %s: ignored explicit argument '%s'",
                              name, value);
        if (spec->type != TP__CTL_T_FLAG && !value) {
            if (i + 1 >= ntok || is_option_token(tok[i + 1]))
                return fail_usage(f, cmd, "argument %s: expected one argument",
                                  name);
            value = tok[++i];
        }
        if (spec->type != TP__CTL_T_FLAG &&
            !convert(ctx, spec, value, v, reason, sizeof reason))
            return fail_usage(f, cmd, "argument %s: %s", name, reason);
        v->set = true;
    }
    return true;
}

/* The positionals of cmd from pos[0..npos), in order, into a; *next is
 * the first one left over. */
static bool take_positionals(const tp__ctl_ctx *ctx, const tp__ctl_command *cmd,
                             char **pos, size_t npos, size_t *next,
                             tp__ctl_args *a, failure *f)
{
    char missing[256] = "", reason[192];
    for (size_t k = 0; k < cmd->nargs; k++) {
        const tp__ctl_argspec *spec = &cmd->args[k];
        if (!is_positional(spec))
            continue;
        tp__ctl_value *v = &a->v[k];
        size_t want = spec->nargs == TP__CTL_STAR  ? npos - *next
                      : spec->nargs == TP__CTL_OPT ? (*next < npos ? 1 : 0)
                                                   : 1;
        if (spec->nargs == TP__CTL_ONE && *next >= npos) {
            size_t ml = strlen(missing);
            snprintf(missing + ml, sizeof missing - ml, "%s%s", ml ? ", " : "",
                     spec->dest);
            continue;
        }
        if (spec->nargs == TP__CTL_STAR) {
            v->strs = calloc(want ? want : 1, sizeof *v->strs);
            v->ints = calloc(want ? want : 1, sizeof *v->ints);
            if (!v->strs || !v->ints) {
                f->oom = true;
                return false;
            }
        }
        for (size_t j = 0; j < want; j++) {
            tp__ctl_value one = {0};
            if (!convert(ctx, spec, pos[*next], &one, reason, sizeof reason))
                return fail_usage(f, cmd, "argument %s: %s", spec->dest,
                                  reason);
            if (spec->nargs == TP__CTL_STAR) {
                v->strs[v->n] = one.str;
                v->ints[v->n] = one.i;
                v->n++;
            } else {
                one.n = 1;
                *v = one;
            }
            ++*next;
        }
        v->set = want > 0 || spec->nargs == TP__CTL_STAR;
    }
    if (missing[0])
        return fail_usage(f, cmd, "the following arguments are required: %s",
                          missing);
    return true;
}

/* Parses cmd's arguments tok[0..ntok) into a (empty on entry). scratch
 * holds 2 * cap pointers, cap >= ntok. A help request or a failure fills r
 * and returns false, with a empty again. */
static bool parse_command(const tp__ctl_ctx *ctx, const tp__ctl_command *cmd,
                          char **tok, size_t ntok, char **scratch, size_t cap,
                          tp__ctl_args *a, tp__ctl_reply *r)
{
    for (size_t i = 0; i < ntok && strcmp(tok[i], "--") != 0; i++) {
        if (strcmp(tok[i], "-h") == 0 || strcmp(tok[i], "--help") == 0) {
            tp__ctl_reply_help(r, tp__ctl_help(ctx->help, tp__ctl_commands,
                                               tp__ctl_ncommands, cmd, false,
                                               ctx->width));
            return false;
        }
    }
    char **pos = scratch, **extra = scratch + cap;
    size_t npos = 0, nextra = 0, next = 0;
    failure f = {0};
    if (!take_options(ctx, cmd, tok, ntok, pos, &npos, extra, &nextra, a, &f) ||
        !take_positionals(ctx, cmd, pos, npos, &next, a, &f))
        goto fail;
    while (next < npos)
        extra[nextra++] = pos[next++];
    if (nextra) {
        /* argparse reports these from the top-level parser. */
        char list[200];
        join_tokens(extra, nextra, list, sizeof list);
        fail_usage(&f, NULL, "unrecognized arguments: %s", list);
        goto fail;
    }
    return true;
fail:
    tp__ctl_args_free(a);
    if (f.oom)
        tp__ctl_reply_tp_error(r, ctx->pool, TP_ENOMEM);
    else
        usage_error(r, f.cmd, ctx->width, f.why);
    return false;
}

bool tp__ctl_parse(const tp__ctl_ctx *ctx, char *line,
                   const tp__ctl_command **cmd, tp__ctl_args *a,
                   tp__ctl_reply *r)
{
    /* Tokens, then room for parse_command's positionals and extras. k
     * tokens take at least 2k - 1 bytes, so a short line needs few. */
    size_t cap = strlen(line) / 2 + 2;
    if (cap > MAX_TOKENS)
        cap = MAX_TOKENS;
    char **toks = malloc(3 * cap * sizeof *toks);
    memset(a, 0, sizeof *a);
    *cmd = NULL;
    if (!toks) {
        tp__ctl_reply_tp_error(r, ctx->pool, TP_ENOMEM);
        return false;
    }
    size_t n = tp__ctl_tokenize(line, toks, cap);
    bool ok = false;
    char why[2048];
    if (n == 0 || strcmp(toks[0], "-h") == 0 ||
        strcmp(toks[0], "--help") == 0) {
        tp__ctl_reply_help(r, tp__ctl_help(ctx->help, tp__ctl_commands,
                                           tp__ctl_ncommands, NULL, ctx->simple,
                                           ctx->width));
    } else if (n > cap) { /* cap is MAX_TOKENS then */
        snprintf(why, sizeof why, "too many arguments (at most %d)",
                 MAX_TOKENS - 1);
        usage_error(r, NULL, ctx->width, why);
    } else if (toks[0][0] == '-') {
        snprintf(why, sizeof why, "unrecognized arguments: %.100s", toks[0]);
        usage_error(r, NULL, ctx->width, why);
    } else if (!(*cmd = tp__ctl_command_find(toks[0], ctx->simple))) {
        char shown[96];
        snprintf(shown, sizeof shown, "%s", toks[0]);
        if (strlen(toks[0]) > 80)
            memcpy(shown + 77, "...", 4);
        int w = snprintf(why, sizeof why,
                         "argument " TP__CTL_TOP_METAVAR
                         ": invalid choice: '%s' (choose from ",
                         shown);
        size_t used = w > 0 ? (size_t)w : 0;
        bool first = true;
        for (size_t i = 0; i < tp__ctl_ncommands && used < sizeof why; i++) {
            const tp__ctl_command *c = &tp__ctl_commands[i];
            if (!tp__ctl_command_applies(c, ctx->simple))
                continue;
            w = snprintf(why + used, sizeof why - used, "%s'%s'",
                         first ? "" : ", ", c->name);
            used += w > 0 ? (size_t)w : 0;
            first = false;
        }
        if (used < sizeof why)
            snprintf(why + used, sizeof why - used, ")");
        usage_error(r, NULL, ctx->width, why);
    } else {
        a->cmd = *cmd;
        ok = parse_command(ctx, *cmd, toks + 1, n - 1, toks + cap, cap, a, r);
    }
    free(toks);
    return ok;
}
