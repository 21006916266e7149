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
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for p in man3/taskpool.3 man7/taskpool.7 man1/taskpool-control.1; do
  [ -e "$mandir/$p" ] || [ -e "$mandir/$p.gz" ] || {
    echo "check-man: $mandir/$p is missing" >&2
    status=1
  }
done
n=0
links=0
for page in "$mandir"/man[137]/*; do
  # A link page (".so man3/x.3", or a symlink as Debian makes them) is
  # only followed: its target must exist; `man NAME` below opens it.
  if [ -L "$page" ]; then
    [ -e "$page" ] || { echo "check-man: $page is a dangling link" >&2; status=1; }
    links=$((links + 1))
    continue
  fi
  so=$( (zcat -f "$page" | sed -n '1s/^\.so //p') 2>/dev/null)
  if [ -n "$so" ]; then
    [ -e "$mandir/$so" ] || [ -e "$mandir/$so.gz" ] ||
      { echo "check-man: $page links to $so, which is missing" >&2; status=1; }
    links=$((links + 1))
    continue
  fi
  n=$((n + 1))
  # The text of each page is kept to look functions up in below.
  text="$tmp/$(basename "$page").txt"
  if ! out=$(cd "$mandir" && MANWIDTH=200 man -l --warnings=w "${page#"$mandir"/}" 2>&1 >"$text"); then
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
    # man -w names the page `man 3 f` opens, with links followed.
    target=$(MANPATH="$mandir" man -w 3 "$f" 2>/dev/null) || target=none
    if ! grep -q "^   $f\$" "$tmp/$(basename "$target").txt" 2>/dev/null; then
      echo "check-man: man 3 $f does not open a page documenting $f (it opens $target)" >&2
      status=1
    fi
  done
fi
[ $status -eq 0 ] && echo "check-man: $n pages render cleanly, $links link pages resolve${functions:+, every function opens its page}"
exit $status
