#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Checks a man page tree (MANDIR/man1, man3, man7): every page renders with
# man -l without a warning, every function in FUNCTIONS (one name per line,
# first field) opens through `man NAME` on a page that documents it, and
# the pages taskpool(3), taskpool(7) and taskpool-control(1) exist; and
# doc/build-man.sh recorded no problem (problems.txt beside FUNCTIONS).
#   scripts/check-man.sh MANDIR [FUNCTIONS]
set -eu
mandir=$1
functions=${2:-}
status=0
for p in man3/taskpool.3 man7/taskpool.7 man1/taskpool-control.1; do
  [ -e "$mandir/$p" ] || [ -e "$mandir/$p.gz" ] || {
    echo "check-man: $mandir/$p is missing" >&2
    status=1
  }
done
n=0
for page in "$mandir"/man[137]/*; do
  n=$((n + 1))
  # .so links resolve relative to the top of the man tree.
  if ! out=$(cd "$mandir" && MANWIDTH=80 man -l --warnings=w "${page#"$mandir"/}" 2>&1 >/dev/null); then
    echo "check-man: man -l $page failed: $out" >&2
    status=1
  elif [ -n "$out" ]; then
    echo "check-man: man -l $page warns: $out" >&2
    status=1
  fi
done
problems=$(dirname "${functions:-/nonexistent/x}")/problems.txt
if [ -s "$problems" ]; then
  sed 's/^/check-man: /' "$problems" >&2
  status=1
fi
if [ -n "$functions" ]; then
  for f in $(cut -d' ' -f1 "$functions"); do
    if ! MANPATH="$mandir" MANWIDTH=200 man 3 "$f" 2>/dev/null | grep -q "^   $f\$"; then
      echo "check-man: man 3 $f does not open a page documenting $f" >&2
      status=1
    fi
  done
fi
[ $status -eq 0 ] && echo "check-man: $n pages render cleanly${functions:+, every function has its page}"
exit $status
