#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds everything (library, CLI, examples, benchmarks) and runs the main
# example. Installs missing Debian packages first.
set -euo pipefail
cd "$(dirname "$0")"
scripts/deps.sh --bench
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTP_SANITIZE= \
  -DTP_WITH_CONTROL=ON -DTP_BUILD_USAGE=ON -DTP_BUILD_BENCH=ON \
  -DTP_BUILD_TESTS=ON >/dev/null
cmake --build build -j"$(nproc)"
exec build/advanced "$@"
