#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Checks that taskpool-control(1) documents every option the CLI's --help
# lists, naming each one missing, so that the page follows the CLI.
#   scripts/check-cli-man.sh TASKPOOL-CONTROL doc/taskpool-control.1.scd
set -eu
cli=$1
page=$2
help=$("$cli" --help)
# Options are the words starting with - in the help's option lines.
opts=$(printf '%s\n' "$help" | awk '/^ +-/ {
  for (i = 1; i <= NF; i++) {
    w = $i
    sub(/[,=[].*$/, "", w)
    if (w ~ /^--?[A-Za-z][-A-Za-z]*$/)
      print w
    else
      break
  }
}' | sort -u)
if [ -z "$opts" ]; then
  echo "check-cli-man: found no option in $cli --help" >&2
  exit 1
fi
status=0
for o in $opts; do
  # In scdoc the page writes an option in bold: *--json*.
  if ! grep -q -- "\*$o\*" "$page" && ! grep -q -- "\*$o\[" "$page"; then
    echo "check-cli-man: $page does not document $o (listed by $cli --help)" >&2
    status=1
  fi
done
[ $status -eq 0 ] && echo "check-cli-man: $page documents every option of --help:" $opts
exit $status
