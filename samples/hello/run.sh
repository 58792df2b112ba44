#!/bin/sh
# run.sh -- the hello sample as a test: run it three times on a pool in a
# temporary directory (each run restarts from the previous run's
# checkpoint), then show what the pool holds.
# usage: samples/hello/run.sh BUILD_DIR
set -eu
build=${1:-build}
dir=$(mktemp -d /var/tmp/ckpt-hello.XXXXXX)
trap 'rm -rf "$dir"' EXIT
pool=$dir/hello.pool
for run in 1 2 3; do
	echo "== run $run: $build/samples/hello $pool"
	"$build/samples/hello" "$pool"
done
echo "== ckpt-inspect info $pool"
"$build/tools/ckpt-inspect" info "$pool"
echo "== ckpt-inspect list $pool"
"$build/tools/ckpt-inspect" list "$pool"
