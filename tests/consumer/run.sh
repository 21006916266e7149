#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The library as its users get it, tested from the outside:
#   1. `cmake --install BUILD --prefix P` into a scratch prefix; consumers
#      built with CMake's find_package(taskpool) (shared and static) and
#      with `pkg-config --cflags --libs taskpool`, and run; the installed
#      headers compiled as C89 to C17 and C++; every installed man page
#      rendered with man -l, every function opened with man.
#   2. The Debian packages built with dpkg-buildpackage -us -uc -b from a
#      copy of the tree, checked with lintian (an error fails; warnings are
#      printed), their Depends checked, unpacked with dpkg -x into a
#      scratch root (nothing is installed), and the consumers built and run
#      against that root.
# Everything happens under BUILD/consumer, inside the repository.
#   tests/consumer/run.sh BUILD      (BUILD: a configured and built tree)
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "$1" && pwd)
here=$src/tests/consumer
work=$build/consumer
rm -rf "$work" && mkdir -p "$work"
jobs=$(nproc)
step() { echo "--- consumer: $*"; }
die() {
  echo "consumer: FAILED: $*" >&2
  exit 1
}

# Builds and runs the consumers against a prefix: CMake shared, CMake
# static, pkg-config. $1 prefix, $2 libdir, $3 a name for the build dirs.
consumers() {
  local prefix=$1 libdir=$2 name=$3 dir
  for kind in shared static; do
    dir=$work/$name-cmake-$kind
    step "$name: find_package(taskpool), $kind"
    cmake -S "$here" -B "$dir" -DCMAKE_PREFIX_PATH="$prefix" \
      -DCONSUMER_STATIC=$([ $kind = static ] && echo ON || echo OFF) \
      -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$dir.log" 2>&1 ||
      { cat "$dir.log"; die "cmake configure ($name, $kind)"; }
    cmake --build "$dir" -j"$jobs" >>"$dir.log" 2>&1 ||
      { cat "$dir.log"; die "cmake build ($name, $kind)"; }
    if [ $kind = shared ]; then
      # (Outputs are captured before grep -q, which would otherwise end
      # the pipe early and fail it under pipefail.)
      dyn=$(readelf -d "$dir/consumer")
      grep -q 'NEEDED.*libtaskpool\.so\.0' <<<"$dyn" ||
        die "$dir/consumer does not link libtaskpool.so.0"
      # The build tree's RPATH names the library in the prefix.
      loaded=$(ldd "$dir/consumer")
      grep -q "$libdir/libtaskpool\.so\.0" <<<"$loaded" ||
        die "$dir/consumer does not load $libdir/libtaskpool.so.0"
    else
      dyn=$(readelf -d "$dir/consumer")
      ! grep -q 'NEEDED.*libtaskpool' <<<"$dyn" ||
        die "$dir/consumer links libtaskpool dynamically"
    fi
    "$dir/consumer"
    "$dir/consumer_control" "$dir/ctl.sock"
  done

  step "$name: pkg-config --cflags --libs taskpool"
  dir=$work/$name-pkgconfig
  mkdir -p "$dir"
  export PKG_CONFIG_PATH=$libdir/pkgconfig
  [ "$(pkg-config --modversion taskpool)" = "$version" ] ||
    die "pkg-config --modversion taskpool is $(pkg-config --modversion taskpool), not $version"
  # shellcheck disable=SC2046
  cc -Wall -Wextra -Werror -o "$dir/consumer" "$here/main.c" \
    $(pkg-config --cflags --libs taskpool)
  # shellcheck disable=SC2046
  cc -Wall -Wextra -Werror -o "$dir/consumer_control" "$here/control.c" \
    $(pkg-config --cflags --libs taskpool libcjson)
  unset PKG_CONFIG_PATH
  LD_LIBRARY_PATH=$libdir "$dir/consumer"
  LD_LIBRARY_PATH=$libdir "$dir/consumer_control" "$dir/ctl.sock"
}

version=$(sed -n 's/^#define TP_VERSION_STRING "\(.*\)"$/\1/p' "$src/include/taskpool.h")

# 1. cmake --install --prefix
step "cmake --install --prefix"
prefix=$work/prefix
cmake --install "$build" --prefix "$prefix" >"$work/install.log"
libdir=$(dirname "$(find "$prefix" -name taskpool.pc -path '*/pkgconfig/*')")
libdir=${libdir%/pkgconfig}
grep -q '^prefix=${pcfiledir}/' "$libdir/pkgconfig/taskpool.pc" ||
  die "taskpool.pc is not relocatable: $(grep ^prefix= "$libdir/pkgconfig/taskpool.pc")"
step "the installed headers: C89 to C17 and C++11 with -pedantic-errors, clang -Weverything"
hdr='#include <taskpool_control.h>'
for std in c89 c99 c11 c17; do
  echo "$hdr" | cc -std=$std -pedantic-errors -Wall -Wextra -Werror \
    -fsyntax-only -I"$prefix/include" -x c - || die "the headers with -std=$std"
done
echo "$hdr" | c++ -std=c++11 -pedantic-errors -Wall -Wextra -Werror \
  -fsyntax-only -I"$prefix/include" -x c++ - || die "the headers as C++11"
if command -v clang >/dev/null; then
  echo "$hdr" | clang -Weverything -Werror -fsyntax-only -I"$prefix/include" \
    -x c - || die "the headers with clang -Weverything"
fi
consumers "$prefix" "$libdir" prefix
step "man -l every installed page"
sh "$src/scripts/check-man.sh" "$prefix/share/man" "$build/man/functions.txt"

# 2. Debian packages
step "dpkg-buildpackage -us -uc -b (from a copy of the tree)"
deb=$work/deb
mkdir -p "$deb/taskpool-$version"
if git -C "$src" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  (cd "$src" && git ls-files -co --exclude-standard -z |
    tar --null -cf - -T -) | tar -xf - -C "$deb/taskpool-$version"
else
  (cd "$src" && tar --exclude='./build*' -cf - .) |
    tar -xf - -C "$deb/taskpool-$version"
fi
(cd "$deb/taskpool-$version" &&
  DEB_BUILD_OPTIONS="nocheck parallel=$jobs" dpkg-buildpackage -us -uc -b \
    >"$deb/build.log" 2>&1) || { tail -40 "$deb/build.log"; die "dpkg-buildpackage"; }
for p in libtaskpool0 libtaskpool-dev taskpool-control; do
  [ -f "$deb/${p}_${version}_$(dpkg --print-architecture).deb" ] ||
    die "no $p package"
done
arch=$(dpkg --print-architecture)
depends() { dpkg-deb -f "$deb/${1}_${version}_$arch.deb" Depends; }
grep -q 'libcjson1' <<<"$(depends libtaskpool0)" ||
  die "libtaskpool0 does not depend on libcjson1"
grep -q "libtaskpool0 (= $version)" <<<"$(depends libtaskpool-dev)" ||
  die "libtaskpool-dev does not depend on libtaskpool0 (= $version)"
grep -q 'libedit2' <<<"$(depends taskpool-control)" ||
  die "taskpool-control does not depend on libedit2"

step "lintian"
lintian --tag-display-limit 0 "$deb/taskpool_${version}_$arch.changes" \
  >"$deb/lintian.log" 2>&1 || true
grep -v '^running with root privileges' "$deb/lintian.log" >"$deb/lintian.tags" || true
if [ -s "$deb/lintian.tags" ]; then
  sed 's/^/    /' "$deb/lintian.tags"
else
  echo "    (no errors, no warnings)"
fi
! grep -q '^E: ' "$deb/lintian.tags" || die "lintian reports errors"

step "dpkg -x into a scratch root"
root=$work/root
for p in libtaskpool0 libtaskpool-dev taskpool-control; do
  dpkg -x "$deb/${p}_${version}_$arch.deb" "$root"
done
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
consumers "$root/usr" "$root/usr/lib/$multiarch" deb
"$root/usr/bin/taskpool-control" --help >/dev/null
step "man -l every packaged page"
sh "$src/scripts/check-man.sh" "$root/usr/share/man" "$build/man/functions.txt"
echo "--- consumer: all passed"
