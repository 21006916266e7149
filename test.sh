#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds and runs the whole test suite three times: plain, under
# ThreadSanitizer, and under AddressSanitizer + UndefinedBehaviorSanitizer;
# then runs the libFuzzer targets on the control server and the CLI for a
# short while (TP_FUZZ_SECONDS each, default 30). After the plain suite, the
# packaging step (tests/consumer/run.sh) installs to a scratch prefix, builds
# the Debian packages, and builds and runs consumers against both. Installs
# missing Debian packages first.
set -euo pipefail
cd "$(dirname "$0")"
scripts/deps.sh --test
jobs=$(nproc)

# TSan cannot map its shadow memory with the high ASLR entropy of recent
# kernels; running without randomisation is the documented workaround.
norandom=""
if setarch "$(uname -m)" -R true 2>/dev/null; then
  norandom="setarch $(uname -m) -R"
fi

suite() {
  local name=$1 type=$2 sanitize=$3
  echo "=== $name build ==="
  cmake -S . -B "build-$name" -DCMAKE_BUILD_TYPE="$type" \
    -DTP_SANITIZE="$sanitize" -DTP_WITH_CONTROL=ON -DTP_BUILD_USAGE=ON \
    -DTP_BUILD_TESTS=ON -DTP_BUILD_BENCH=OFF -DTP_BUILD_MAN=ON >/dev/null
  cmake --build "build-$name" -j"$jobs"
  (cd "build-$name" &&
    TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
    ASAN_OPTIONS="detect_leaks=1:abort_on_error=0" \
    UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
    $norandom ctest --output-on-failure -j"$jobs")
}

suite plain RelWithDebInfo ""
echo "=== packaging and consumers ==="
pkg_start=$SECONDS
tests/consumer/run.sh build-plain
echo "packaging and consumers: $((SECONDS - pkg_start)) s"
suite tsan Debug thread
suite asan Debug "address,undefined"

echo "=== fuzz (clang, libFuzzer) ==="
CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DTP_SANITIZE= -DTP_WITH_CONTROL=ON -DTP_BUILD_TESTS=ON \
  -DTP_BUILD_BENCH=OFF -DTP_BUILD_USAGE=OFF >/dev/null
# Each target runs TP_FUZZ_SECONDS (default 30) from its committed seeds
# (corpus for fuzz_control, corpus_<name> for the others); new inputs go to
# a scratch directory. Every input is bounded in cost (well under a second
# here), so -timeout=10 leaves room for a slow or loaded machine.
fuzz_targets="fuzz_control fuzz_server fuzz_cli"
cmake --build build-fuzz -j"$jobs" --target $fuzz_targets
for t in $fuzz_targets; do
  seeds=tests/fuzz/corpus_${t#fuzz_}
  [ "$t" = fuzz_control ] && seeds=tests/fuzz/corpus
  rm -rf "build-fuzz/corpus-$t" && mkdir -p "build-fuzz/corpus-$t"
  if ! "build-fuzz/tests/fuzz/$t" -max_total_time="${TP_FUZZ_SECONDS:-30}" \
    -timeout=10 -dict=tests/fuzz/control.dict -print_final_stats=1 \
    "build-fuzz/corpus-$t" "$seeds" >"build-fuzz/$t.log" 2>&1; then
    tail -60 "build-fuzz/$t.log"
    exit 1
  fi
  echo "$t: $(grep -E '^stat::number_of_executed_units' "build-fuzz/$t.log")"
done
echo "All tests passed."
