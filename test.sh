#!/usr/bin/env bash
# Builds and runs the whole test suite three times: plain, under
# ThreadSanitizer, and under AddressSanitizer + UndefinedBehaviorSanitizer;
# then, if clang is installed, runs each fuzz target briefly.
# Installs missing Debian packages first.
set -euo pipefail
cd "$(dirname "$0")"
scripts/deps.sh
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
    -DTP_BUILD_TESTS=ON -DTP_BUILD_BENCH=OFF >/dev/null
  cmake --build "build-$name" -j"$jobs"
  (cd "build-$name" &&
    TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
    ASAN_OPTIONS="detect_leaks=1:abort_on_error=0" \
    UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
    $norandom ctest --output-on-failure -j"$jobs")
}

suite plain RelWithDebInfo ""
suite tsan Debug thread
suite asan Debug "address,undefined"

if command -v clang >/dev/null && [ -f tests/fuzz/CMakeLists.txt ]; then
  echo "=== fuzz (clang, libFuzzer) ==="
  CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug \
    -DTP_BUILD_BENCH=OFF -DTP_BUILD_USAGE=OFF >/dev/null
  cmake --build build-fuzz -j"$jobs" --target tp_fuzz_targets
  for f in build-fuzz/tests/fuzz/fuzz_*; do
    [ -x "$f" ] || continue
    corpus="tests/fuzz/corpus/$(basename "$f")"
    "$f" -max_total_time="${TP_FUZZ_SECONDS:-20}" -timeout=5 \
      ${corpus:+$( [ -d "$corpus" ] && echo "$corpus")} 2>&1 | tail -3
  done
fi
echo "All tests passed."
