#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Checks that every function the shared library exports is declared in a
# public header with a comment block right above it that names its errors
# (TP_E..., "NULL if ...", "Errors as ...") or says it cannot fail, and that
# every function the headers declare is exported.
#   scripts/check-api-docs.sh LIBTASKPOOL.so HEADER...
# The headers are read by doc/header2scd.awk, the same reader that makes the
# man pages, so a function the check accepts is a function the pages show.
set -eu
lib=$1
shift
here=$(dirname "$0")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

awk -v out="$tmp" -f "$here/../doc/header2scd.awk" "$@" 2>/dev/null
nm -D --defined-only "$lib" | awk '$2 == "T" { print $3 }' | sort >"$tmp/exported"
if [ ! -s "$tmp/exported" ]; then
  echo "check-api-docs: $lib exports no function" >&2
  exit 1
fi
cut -d' ' -f1 "$tmp/functions.txt" | sort >"$tmp/declared"

status=0
if [ -s "$tmp/problems.txt" ]; then
  sed 's/^/check-api-docs: /' "$tmp/problems.txt" >&2
  status=1
fi
for f in $(comm -23 "$tmp/exported" "$tmp/declared"); do
  echo "check-api-docs: $f is exported by $lib but no public header declares it with TP_API" >&2
  status=1
done
for f in $(comm -13 "$tmp/exported" "$tmp/declared"); do
  echo "check-api-docs: $f is declared TP_API in a header but $lib does not export it" >&2
  status=1
done
for f in $(awk '$2 == "NO-ERRORS" { print $1 }' "$tmp/functions.txt"); do
  echo "check-api-docs: the comment above $f names no error: list them (TP_E...), say \"Returns NULL if ...\" or \"Errors as <function>\", or say it \"Cannot fail.\"" >&2
  status=1
done
[ $status -eq 0 ] && echo "check-api-docs: $(wc -l <"$tmp/exported") exported functions, each declared and documented"
exit $status
