#!/bin/sh
# test.sh -- the whole test suite, as CI runs it: a normal build with every
# test (valgrind runs and the benchmark smokes included: they are ctest
# tests), then an ASan+UBSan build with every test except the valgrind runs,
# then a clang build of the libFuzzer harness and its seconds-long smoke.
#
# --long: the runs too long for CI, which an engineer runs before calling an
# issue done (an hour or more on 2 cores): the normal build's tests with
# CKPT_TEST_LONG=1 (4 x 750 kill -9s in test_cow_crash, 400 in
# test_readme_snippet, the long programs of test_preload), the
# power-loss crash states in their long mode (tests/crash/run.sh --long:
# every prefix of every epoch, docs/CRASH-STATES.md), and the libFuzzer
# harness for CKPT_FUZZ_SECONDS (default 1800) on a corpus kept in
# build-fuzz/long-corpus (a crash leaves build-fuzz/long-corpus/crash-*).
#
# usage: scripts/test.sh [--long]   (from the source tree, after scripts/deps.sh)
set -eu
cd "$(dirname "$0")/.."
jobs=$(nproc)
long=0
case "${1:-}" in
"") ;;
--long) long=1 ;;
*) sed -n '2,/^set -eu/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
esac

echo "== build (RelWithDebInfo)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$jobs"

if [ "$long" = 1 ]; then
	echo "== tests, long mode (CKPT_TEST_LONG=1)"
	CKPT_TEST_LONG=1 ctest --test-dir build --output-on-failure -j"$jobs" --timeout 7200
	echo "== crash states, long mode"
	tests/crash/run.sh --long -j "$jobs" build
	echo "== build (clang, libFuzzer harness)"
	CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DCKPT_FUZZ=ON \
		-DCKPT_BUILD_BENCH=OFF >/dev/null
	cmake --build build-fuzz -j"$jobs" --target fuzz_inspect
	secs=${CKPT_FUZZ_SECONDS:-1800}
	echo "== libFuzzer, $secs s"
	mkdir -p build-fuzz/long-corpus
	build-fuzz/tests/fuzz/fuzz_inspect -max_total_time="$secs" -max_len=512 \
		-artifact_prefix=build-fuzz/long-corpus/ build-fuzz/long-corpus
	echo "== long mode passed"
	exit 0
fi

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
