#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Builds the man pages into OUT/man1, OUT/man3, OUT/man7:
#   doc/build-man.sh OUT DOCDIR HEADER...
# Each DOCDIR/<page>.<section>.scd is a page; in the section-3 pages the
# lines @NAMES@, @INTRO@ and @ITEMS@ are replaced with what header2scd.awk
# took from the headers (the functions' names for the NAME line, the
# sections' prose, every function and type with its header comment). Every
# function and type also gets a page "<name>.3" holding ".so man3/<page>.3",
# so that `man tp_apply` opens the page that documents it.
#
# A function without a comment, or in a header section that no page is
# mapped to, is reported on standard error and in OUT/problems.txt (the
# api_docs and man_pages tests fail on it; the build goes on). Fails if a
# page documents nothing or the headers feed a page that has no template.
set -eu
out=$1
docdir=$2
shift 2
scdoc=${SCDOC:-scdoc}

tmp="$out/.gen"
rm -rf "$out" && mkdir -p "$tmp" "$out/man1" "$out/man3" "$out/man7"
awk -v out="$tmp" -f "$docdir/header2scd.awk" "$@"

# Every page the headers feed must have a template.
for items in "$tmp"/*.items.scd; do
  page=$(basename "$items" .items.scd)
  if [ ! -f "$docdir/$page.3.scd" ]; then
    echo "build-man: the headers document $(awk -v p="$page" \
      '$2 == p { printf "%s ", $1 }' "$tmp/names.txt")on page $page," \
      "but $docdir/$page.3.scd is missing" >&2
    exit 1
  fi
done

for src in "$docdir"/*.scd; do
  base=$(basename "$src" .scd) # taskpool-spawn.3
  page=${base%.*}
  sec=${base##*.}
  case $sec in 1 | 3 | 7) ;; *)
    echo "build-man: $src: section must be 1, 3 or 7" >&2
    exit 1
    ;;
  esac
  if grep -q '^@ITEMS@$' "$src" && [ ! -s "$tmp/$page.items.scd" ]; then
    echo "build-man: $src documents no function: no header section maps to" \
      "page $page (see page_of_section in $docdir/header2scd.awk)" >&2
    exit 1
  fi
  names=$(awk -v p="$page" '$2 == p && $3 == "function" { printf "%s%s",
    (n++ ? ", " : ""), $1 }' "$tmp/names.txt")
  awk -v names="$names" -v intro="$tmp/$page.intro.scd" \
    -v items="$tmp/$page.items.scd" '
    function cat(f,    l) {
      while ((getline l < f) > 0)
        print l
      close(f)
    }
    index($0, "@NAMES@") {
      # Escape scdoc underlines without relying on gsub replacement rules.
      e = ""
      for (i = 1; i <= length(names); i++) {
        c = substr(names, i, 1)
        e = e (c == "_" ? "\\_" : c)
      }
      i = index($0, "@NAMES@")
      print substr($0, 1, i - 1) e substr($0, i + 7)
      next
    }
    $0 == "@INTRO@" { cat(intro); next }
    $0 == "@ITEMS@" { cat(items); next }
    { print }' "$src" >"$tmp/$base.scd"
  "$scdoc" <"$tmp/$base.scd" >"$out/man$sec/$base"
done

while read -r name page _kind; do
  printf '.so man3/%s.3\n' "$page" >"$out/man3/$name.3"
done <"$tmp/names.txt"
cp "$tmp/functions.txt" "$out/functions.txt"
# The tests (api_docs, man_pages) fail on these; the build goes on.
[ ! -f "$tmp/problems.txt" ] || cp "$tmp/problems.txt" "$out/problems.txt"
rm -rf "$tmp"
