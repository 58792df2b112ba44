#!/bin/sh
# demo.sh -- the README's first command ends here: run the hello sample three
# times on a pool in a temporary directory (each run restarts from the
# previous run's checkpoint), then show what the pool holds.
# usage: samples/demo.sh BUILD_DIR
set -eu
build=${1:-build}
dir=$(mktemp -d /var/tmp/ckpt-demo.XXXXXX)
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
