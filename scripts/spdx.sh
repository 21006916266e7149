#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Puts an "SPDX-License-Identifier: MIT" line atop every source, header,
# script and CMake file of the repository that lacks one (after the #! line
# of a script). Idempotent: a file that has the line within its first three
# lines is left alone.
#   scripts/spdx.sh           add the line where it is missing
#   scripts/spdx.sh --check   change nothing; name every file that lacks
#                             it and exit 1 if any does
# Covered: *.c *.h (/* ... */), and with # comments: *.sh *.awk *.py
# *.cmake *.in CMakeLists.txt and any other file starting with #!.
# Not covered: documentation, data (the fuzz corpus), and debian/ files
# other than debian/rules (debian/copyright states their licence).
set -eu
cd "$(dirname "$0")/.."
mode=${1:-fix}
tag="SPDX-License-Identifier: MIT"

files() {
  if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git ls-files -co --exclude-standard
  else
    # Not a git checkout (a copy, or a Debian build tree): skip build trees
    # and debian/'s build products.
    find . \( -path './build*' -o -path './obj-*' -o -path ./.git \
      -o -path ./debian \) -prune -o -type f -print | sed 's|^\./||'
    [ -f debian/rules ] && echo debian/rules
  fi
}

# The comment style of a file: c, hash, or nothing (not covered).
style() {
  case $1 in
  tests/fuzz/corpus/*) return ;;
  *.c | *.h) echo c ;;
  *.sh | *.awk | *.py | *.cmake | *.in | CMakeLists.txt | */CMakeLists.txt) echo hash ;;
  debian/rules) echo hash ;;
  debian/* | *.md | *.scd | *.txt) return ;;
  *) head -c 2 "$1" 2>/dev/null | grep -q '^#!' && echo hash ;;
  esac
}

missing=0
for f in $(files); do
  [ -f "$f" ] || continue
  s=$(style "$f" || true)
  [ -n "$s" ] || continue
  if head -n 3 "$f" | grep -q "SPDX-License-Identifier:"; then
    if ! head -n 3 "$f" | grep -q "$tag"; then
      echo "spdx: $f has an SPDX line that is not MIT; left alone" >&2
      missing=1
    fi
    continue
  fi
  if [ "$mode" = --check ]; then
    echo "spdx: $f lacks '$tag' in its first lines (run scripts/spdx.sh)" >&2
    missing=1
    continue
  fi
  tmp="$f.spdx.$$"
  if [ "$s" = c ]; then
    { echo "/* $tag */"; cat "$f"; } >"$tmp"
  elif head -c 2 "$f" | grep -q '^#!'; then
    { head -n 1 "$f"; echo "# $tag"; tail -n +2 "$f"; } >"$tmp"
  else
    { echo "# $tag"; cat "$f"; } >"$tmp"
  fi
  chmod --reference="$f" "$tmp"
  mv "$tmp" "$f"
  echo "spdx: added to $f"
done
[ "$mode" = --check ] && [ $missing -eq 0 ] && echo "spdx: every covered file has '$tag'"
exit $missing
