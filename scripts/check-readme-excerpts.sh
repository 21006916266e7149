#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Checks that every code block of README.md announced by a line
#   <!-- verbatim: PATH -->
# appears, exactly and in one piece, in PATH, so that the README shows
# code that compiles (PATH is built and run by the tests).
#   scripts/check-readme-excerpts.sh README.md
set -eu
readme=$1
root=$(dirname "$readme")
awk -v root="$root" '
  function slurp(f,    s, l) {
    s = ""
    while ((getline l < f) > 0)
      s = s l "\n"
    close(f)
    return s
  }
  /^<!-- verbatim: .* -->$/ {
    path = $3
    want = 1
    next
  }
  want && /^```/ && !inblock { inblock = 1; block = ""; start = FNR; next }
  inblock && /^```$/ {
    inblock = 0
    want = 0
    n++
    if (index(slurp(root "/" path), block) == 0) {
      printf "check-readme-excerpts: %s:%d: this block is not verbatim in %s\n",
        FILENAME, start, path > "/dev/stderr"
      bad = 1
    }
    next
  }
  inblock { block = block $0 "\n" }
  END {
    if (n == 0) {
      print "check-readme-excerpts: no verbatim block in " FILENAME > "/dev/stderr"
      exit 1
    }
    if (!bad)
      printf "check-readme-excerpts: %d blocks verbatim in their files\n", n
    exit bad
  }' "$readme"
