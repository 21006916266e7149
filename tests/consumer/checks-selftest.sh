#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Proves that the shipping checks can fail: each is given a defect and must
# name it. (check-api-docs.sh, check-symbols.sh, check-cli-man.sh,
# check-readme-excerpts.sh, spdx.sh --check, and that spdx.sh adds its line once however often it
# runs.)
#   tests/consumer/checks-selftest.sh LIBTASKPOOL.so
set -eu
lib=$1
src=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
status=0
expect() { # what, pattern, file
  if grep -q "$2" "$3"; then
    echo "checks-selftest: $1: detected"
  else
    echo "checks-selftest: $1: NOT detected; output was:" >&2
    cat "$3" >&2
    status=1
  fi
}

# A function without a comment, and one whose comment names no error.
printf '/* Frobs. */\nTP_API int tp_quiet(void);\n' >"$tmp/quiet.h"
printf 'TP_API int tp_bare(void);\n' >"$tmp/bare.h"
! sh "$src/scripts/check-api-docs.sh" "$lib" "$tmp/quiet.h" >"$tmp/out" 2>&1 || status=1
expect "undocumented errors" "the comment above tp_quiet names no error" "$tmp/out"
expect "declared, not exported" "tp_quiet is declared TP_API in a header but" "$tmp/out"
expect "exported, not declared" "tp_apply is exported by .* but no public header" "$tmp/out"
! sh "$src/scripts/check-api-docs.sh" "$lib" "$tmp/bare.h" >"$tmp/out" 2>&1 || status=1
expect "no comment" "function tp_bare has no comment block right above it" "$tmp/out"
# A function in a header section that no man page is mapped to.
printf '/* ---------- */\n/* Gadgets */\n/* ---------- */\n\n/* Cannot fail. */\nTP_API int tp_gadget(void);\n' >"$tmp/gadget.h"
! sh "$src/scripts/check-api-docs.sh" "$lib" "$tmp/gadget.h" >"$tmp/out" 2>&1 || status=1
expect "unmapped section" "function tp_gadget is in section 'Gadgets', which has no man page" "$tmp/out"

# A symbols file that misses an export and lists a function that is none.
grep -v ' tp_version@' "$src/debian/libtaskpool0.symbols" >"$tmp/symbols"
echo ' tp_gone@Base 0.1.0' >>"$tmp/symbols"
! sh "$src/scripts/check-symbols.sh" "$lib" "$tmp/symbols" >"$tmp/out" 2>&1 || status=1
expect "symbol missing" "tp_version is exported but missing from" "$tmp/out"
expect "symbol extra" "tp_gone is listed in .* but not exported" "$tmp/out"

# A CLI whose --help lists an option the man page lacks.
printf '#!/bin/sh\necho "usage: x"\necho "  --json      raw"\necho "  --frob[=N]  frobs"\n' >"$tmp/cli"
chmod +x "$tmp/cli"
! sh "$src/scripts/check-cli-man.sh" "$tmp/cli" "$src/doc/taskpool-control.1.scd" >"$tmp/out" 2>&1 || status=1
expect "undocumented CLI option" "does not document --frob" "$tmp/out"

# A README whose verbatim excerpt differs from its file.
mkdir -p "$tmp/readme/usage"
cp "$src/usage/queue.c" "$tmp/readme/usage/"
sed 's/tp_queue_item_processed(w->q);/tp_queue_item_processed(q);/' \
  "$src/README.md" >"$tmp/readme/README.md"
! sh "$src/scripts/check-readme-excerpts.sh" "$tmp/readme/README.md" >"$tmp/out" 2>&1 || status=1
expect "README excerpt drifted" "this block is not verbatim in usage/queue.c" "$tmp/out"

# A tree with a C file and a script lacking the SPDX line.
mkdir -p "$tmp/tree/scripts"
cp "$src/scripts/spdx.sh" "$tmp/tree/scripts/"
printf 'int x;\n' >"$tmp/tree/a.c"
printf '#!/bin/sh\necho hi\n' >"$tmp/tree/tool"
! sh "$tmp/tree/scripts/spdx.sh" --check >"$tmp/out" 2>&1 || status=1
expect "spdx missing (C)" "a.c lacks" "$tmp/out"
expect "spdx missing (script)" "tool lacks" "$tmp/out"
sh "$tmp/tree/scripts/spdx.sh" >/dev/null
sh "$tmp/tree/scripts/spdx.sh" >/dev/null
if [ "$(grep -c SPDX "$tmp/tree/a.c")" != 1 ] ||
  [ "$(head -n 1 "$tmp/tree/tool")" != "#!/bin/sh" ] ||
  [ "$(grep -c SPDX "$tmp/tree/tool")" != 1 ] ||
  ! sh "$tmp/tree/scripts/spdx.sh" --check >/dev/null 2>&1; then
  echo "checks-selftest: spdx.sh is not idempotent or misplaces the line" >&2
  status=1
else
  echo "checks-selftest: spdx.sh: added once, after #!"
fi
exit $status
