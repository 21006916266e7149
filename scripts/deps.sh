#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs the Debian packages taskpool needs, if any are missing.
#   scripts/deps.sh          build dependencies
#   scripts/deps.sh --test   also clang and its runtimes, for the fuzz target,
#                            and the Debian packaging tools (build-essential,
#                            dpkg-dev, debhelper, lintian, man-db) for the
#                            consumer tests; promtool (prometheus) and curl
#                            for the metrics tests
#   scripts/deps.sh --bench  also the optional benchmark peers (GLib, libuv)
set -euo pipefail
pkgs="cmake make gcc pkg-config check libcjson-dev libedit-dev scdoc"
case "${1:-}" in
  --test) pkgs="$pkgs clang libclang-rt-14-dev build-essential dpkg-dev debhelper lintian man-db fakeroot prometheus curl" ;;
  --bench) pkgs="$pkgs libglib2.0-dev libuv1-dev" ;;
esac
missing=""
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
    missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "Installing:$missing"
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# shellcheck disable=SC2086
$sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
