#!/bin/sh
# test.sh -- the whole test suite, as CI runs it: a normal build with every
# test (valgrind runs and the benchmark smokes included: they are ctest
# tests), then an ASan+UBSan build with every test except the valgrind runs,
# then a clang build of the libFuzzer harness and its seconds-long smoke.
# usage: scripts/test.sh        (from the source tree, after scripts/deps.sh)
set -eu
cd "$(dirname "$0")/.."
jobs=$(nproc)

echo "== build (RelWithDebInfo)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$jobs"
echo "== tests"
ctest --test-dir build --output-on-failure -j"$jobs" --timeout 900

echo "== build (ASan+UBSan)"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DCKPT_SANITIZE=ON \
	-DCKPT_BUILD_BENCH=OFF >/dev/null
cmake --build build-asan -j"$jobs"
echo "== tests under ASan+UBSan"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
	ctest --test-dir build-asan --output-on-failure -j"$jobs" -LE valgrind --timeout 900

echo "== build (clang, libFuzzer harness)"
CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DCKPT_FUZZ=ON \
	-DCKPT_BUILD_BENCH=OFF >/dev/null
cmake --build build-fuzz -j"$jobs" --target fuzz_inspect
echo "== libFuzzer smoke"
ctest --test-dir build-fuzz --output-on-failure -R '^fuzz_inspect_smoke$' --timeout 120
