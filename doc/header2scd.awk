# SPDX-License-Identifier: MIT
#
# Turns the public headers into the function sections of the man pages, so
# that the pages say exactly what the header comments say (the header is the
# manual; the pages are generated from it at build time and cannot drift).
#
#   awk -v out=DIR -f header2scd.awk include/taskpool.h include/taskpool_control.h
#
# A header is read as a sequence of items: a comment block directly above a
# declaration (a TP_API function, a typedef, an enum, or a run of #define
# lines) documents it. A banner comment
#   /* ----- */ /* Name */ /* ----- */
# opens a section, and each section belongs to one man page (the table in
# page_of_section below); a comment followed by a blank line is prose of its
# section, and a file's opening comment is prose of the file's first page.
# A few names go to another page than their section's (page_of_name).
#
# Writes, in DIR:
#   <page>.items.scd   the items of each page, in header order, in scdoc
#   <page>.intro.scd   the prose of each page's sections
#   names.txt          "<name> <page> <kind>" for every function and type
#                      (kind: function or type), for the .so link pages
#   functions.txt      "<name> errors" for every TP_API function whose
#                      comment documents its errors, "<name> NO-ERRORS" else
#   problems.txt       a line for each TP_API function without a comment
#                      right above it, or in a section no page is mapped to
#                      (see problem() below); absent if there is none

function page_of_section(file, name) {
    if (file ~ /taskpool_control\.h$/)
        return "taskpool-server"
    if (name == "" || name == "Version" || name == "Types")
        return "taskpool"
    if (name == "Pools")
        return "taskpool-pools"
    if (name ~ /^Spawning/)
        return "taskpool-spawn"
    if (name == "Simple pools")
        return "taskpool-simple"
    if (name == "Both kinds")
        return "taskpool-cancel"
    if (name == "Inside a task")
        return "taskpool-task"
    if (name ~ /^Queue/)
        return "taskpool-queue"
    if (name == "Logging")
        return "taskpool-log"
    return ""
}

function page_of_name(name, code) {
    if (name ~ /^tp_(strerror|err_name)$/ || code ~ /TP_OK = 0/)
        return "taskpool-log"
    return ""
}

# Records a defect of the headers' documentation in problems.txt and on
# standard error. The pages are still written (a function without a
# comment appears without text, a section without a page goes to
# taskpool(3)) so that the build goes on; the api_docs and man_pages tests
# fail, listing every problem.
function problem(msg) {
    printf "header2scd: %s:%d: %s\n", FILENAME, FNR, msg > "/dev/stderr"
    printf "%s:%d: %s\n", FILENAME, FNR, msg > (out "/problems.txt")
}

# scdoc formatting characters in prose: \ * _ (and a leading #).
# (A loop, because awks differ in how gsub treats backslashes.)
function esc(s,    r, i, c) {
    r = ""
    for (i = 1; i <= length(s); i++) {
        c = substr(s, i, 1)
        r = r (c == "\\" || c == "*" || c == "_" ? "\\" : "") c
    }
    return r
}

# Backslashes in preformatted text (scdoc reads escapes there too).
function bs(s,    r, i, c) {
    r = ""
    for (i = 1; i <= length(s); i++) {
        c = substr(s, i, 1)
        r = r (c == "\\" ? "\\" : "") c
    }
    return r
}

function trim(s) {
    sub(/^[ \t]+/, "", s)
    sub(/[ \t]+$/, "", s)
    return s
}

# Writes comment text (lines separated by \n) as scdoc: paragraphs split at
# blank lines; a paragraph whose lines are indented unevenly or that holds a
# "- " list is kept as it is (a preformatted block), others are reflowed.
function prose(text, file,    lines, n, i, j, para, np, literal, base, ind, s) {
    n = split(text, lines, "\n")
    i = 1
    while (i <= n) {
        while (i <= n && trim(lines[i]) == "")
            i++
        if (i > n)
            break
        np = 0
        while (i <= n && trim(lines[i]) != "")
            para[++np] = lines[i++]
        literal = 0
        match(para[1], /^ */)
        base = RLENGTH
        for (j = 1; j <= np; j++) {
            match(para[j], /^ */)
            ind = RLENGTH
            if (ind != base || para[j] ~ /^ *- /)
                literal = 1
        }
        if (literal) {
            print "```" > file
            for (j = 1; j <= np; j++)
                print bs(para[j]) > file
            print "```" > file
        } else {
            s = ""
            for (j = 1; j <= np; j++)
                s = s (j > 1 ? " " : "") trim(para[j])
            print esc(s) > file
        }
        print "" > file
    }
}

function item_name(code,    c, m) {
    c = code
    gsub(/\n/, " ", c)
    if (c ~ /^#define/) {
        split(c, m, /[ (]+/)
        return m[2]
    }
    if (c ~ /TP_OK = 0/)
        return "errors"
    if (c ~ /^TP_API/) {
        if (match(c, /[A-Za-z_0-9]+ *\(/)) {
            m[1] = substr(c, RSTART, RLENGTH)
            sub(/ *\($/, "", m[1])
            return m[1]
        }
    }
    if (c ~ /^typedef/) {
        if (match(c, /[A-Za-z_0-9]+ *;[ ]*$/) && c !~ /\) *;[ ]*$/) {
            m[1] = substr(c, RSTART, RLENGTH)
            sub(/ *;[ ]*$/, "", m[1])
            return m[1]
        }
        if (match(c, /\(\*[A-Za-z_0-9]+\)/))
            return substr(c, RSTART + 2, RLENGTH - 3)
    }
    return ""
}

function flush_item(    page, name, file, kind, c) {
    if (code == "")
        return
    name = item_name(code)
    page = page_of_name(name, code)
    if (page == "")
        page = cur_page
    kind = code ~ /^TP_API/ ? "function" : "type"
    if (kind == "function" && doc == "")
        problem("function " name " has no comment block right above it")
    if (kind == "function" && unmapped)
        problem("function " name " is in section '" section "', which " \
                "has no man page of its own (it is shown on taskpool(3)): " \
                "map the section in page_of_section in doc/header2scd.awk")
    if (kind == "function")
        print name, (doc ~ ERRORS_DOCUMENTED ? "errors" : "NO-ERRORS") \
            > (out "/functions.txt")
    file = out "/" page ".items.scd"
    c = code
    if (c ~ /^TP_API /) {
        # Drop the export macro and keep continuation lines aligned.
        sub(/^TP_API /, "", c)
        gsub(/\n       /, "\n", c)
    }
    if (name == "errors") {
        print "## Error codes" > file
        print "" > file
    }
    if (name != "" && name != "errors" && code !~ /^#define/) {
        print "## " esc(name) > file
        print "" > file
        print name, page, kind > (out "/names.txt")
    }
    print "```" > file
    print bs(c) > file
    print "```" > file
    print "" > file
    if (doc != "")
        prose(doc, file)
    code = ""
    doc = ""
}

function start_file() {
    section = ""
    cur_page = page_of_section(FILENAME, "")
    in_comment = in_code = comment_done = defines = banner = define_cont = 0
    unmapped = 0
    comment = code = doc = ""
}

# What a function's comment must contain: the errors it returns (TP_E...),
# its failure value ("NULL if ..."), a reference to another list of errors
# ("Errors as tp_stop"), or the words "cannot fail".
BEGIN {
    ERRORS_DOCUMENTED = "TP_E[A-Z_]+|[Cc]annot[ \n]+fail|NULL[ \n]+(if|on|when)|rrors[ \n]+as[ \n]"
}

FNR == 1 {
    if (NR > 1) {
        pending_prose()
        flush_item()
    }
    start_file()
}

# Inside a comment block.
in_comment {
    line = $0
    if (line ~ /\*\//) {
        sub(/ *\*\/.*$/, "", line)
        sub(/^ *\* ?/, "", line)
        sub(/^\/\* ?/, "", line)
        if (trim(line) != "")
            comment = comment (comment == "" ? "" : "\n") line
        in_comment = 0
        comment_done = 1
        next
    }
    sub(/^ \* ?/, "", line)
    sub(/^ \*$/, "", line)
    comment = comment (comment == "" ? "" : "\n") line
    next
}

# The continuation lines of a #define.
define_cont {
    code = code "\n" $0
    define_cont = $0 ~ /\\$/
    next
}

# Inside a declaration: collect until ';' at brace depth 0.
in_code {
    code = code "\n" $0
    depth += gsub(/\{/, "{") - gsub(/\}/, "}")
    if (depth == 0 && $0 ~ /;[ \t]*(\/\*.*\*\/)?[ \t]*$/) {
        in_code = 0
        flush_item()
    }
    next
}

# A banner: /* ---- */ then /* Name */ then /* ---- */.
/^\/\* -+ \*\/$/ {
    if (banner == 1) {
        banner = 0
        next
    }
    getline nameline
    name = nameline
    sub(/^\/\* */, "", name)
    sub(/ *\*\/$/, "", name)
    section = trim(name)
    cur_page = page_of_section(FILENAME, section)
    unmapped = cur_page == ""
    if (unmapped)
        cur_page = "taskpool"
    banner = 1
    next
}

# A comment starts. One-line comments end on the same line.
/^\/\*/ {
    pending_prose()
    comment = ""
    line = $0
    if (line ~ /\*\/[ \t]*$/) {
        sub(/^\/\* ?/, "", line)
        sub(/ *\*\/[ \t]*$/, "", line)
        comment = line
        comment_done = 1
        next
    }
    sub(/^\/\* ?/, "", line)
    comment = trim(line)
    in_comment = 1
    next
}

# A blank line after a comment: the comment is prose.
/^[ \t]*$/ {
    pending_prose()
    next
}

/^#define/ && !/^#define (TP_API|TASKPOOL)/ {
    take_comment()
    if (code != "" && code !~ /^#define/)
        flush_item()
    code = code (code == "" ? "" : "\n") $0
    defines = 1
    define_cont = $0 ~ /\\$/
    next
}

/^#|^extern "C"|^}$/ {
    pending_prose()
    next
}

# A declaration starts.
{
    if (defines) {
        flush_item()
        defines = 0
    }
    take_comment()
    code = $0
    depth = gsub(/\{/, "{") - gsub(/\}/, "}")
    if (depth == 0 && $0 ~ /;[ \t]*(\/\*.*\*\/)?[ \t]*$/)
        flush_item()
    else
        in_code = 1
}

function take_comment() {
    if (comment_done) {
        doc = comment
        comment = ""
        comment_done = 0
    }
}

# A finished comment not followed by a declaration is prose; a run of
# #define lines ends at the first line that is not one.
function pending_prose(    file) {
    if (defines) {
        flush_item()
        defines = 0
    }
    if (!comment_done)
        return
    comment_done = 0
    if (comment ~ /^SPDX-License-Identifier/ || comment ~ /^TASKPOOL/) {
        comment = ""
        return
    }
    if (cur_page == "")
        return
    file = out "/" cur_page ".intro.scd"
    if (section != "")
        print "## " esc(section) > file
    else
        print "## " esc(FILENAME ~ /control/ ? "taskpool_control.h" : \
                        "taskpool.h") > file
    print "" > file
    prose(comment, file)
    comment = ""
}

END {
    pending_prose()
    flush_item()
}
