#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Checks that the Debian symbols file lists exactly the functions the shared
# library exports, naming each one missing or extra.
#   scripts/check-symbols.sh LIBTASKPOOL.so debian/libtaskpool0.symbols
set -eu
lib=$1
symbols=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

nm -D --defined-only "$lib" | awk '$2 == "T" { print $3 }' | sort >"$tmp/exported"
awk '/^ / { sub(/@.*/, "", $1); print $1 }' "$symbols" | sort >"$tmp/listed"
status=0
for f in $(comm -23 "$tmp/exported" "$tmp/listed"); do
  echo "check-symbols: $f is exported but missing from $symbols: add \" $f@Base $(sed -n 's/^taskpool (\([^)-]*\).*/\1/p;q' "$(dirname "$symbols")/changelog" 2>/dev/null)\"" >&2
  status=1
done
for f in $(comm -13 "$tmp/exported" "$tmp/listed"); do
  echo "check-symbols: $f is listed in $symbols but not exported (an ABI break: bump the SONAME)" >&2
  status=1
done
[ $status -eq 0 ] && echo "check-symbols: $symbols lists the $(wc -l <"$tmp/exported") exported functions"
exit $status
