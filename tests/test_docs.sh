#!/bin/sh
# test_docs.sh SOURCE_DIR BUILD_DIR
#
# The documentation stands alone and matches the header (issue 16):
#   1. every man page source (docs/man/*.3, docs/ckpt-inspect.1) is clean
#      under `groff -man -ww -z` and, where mandoc is installed, under
#      `mandoc -Tlint` (warnings and up); every .TH names the project's
#      version;
#   2. every function declared in include/libckpt.h has an installed man page
#      in BUILD_DIR/man/man3 (its family's page or a .so link to it), is named
#      in that page's NAME section, and has a section in docs/API.md; every
#      macro and config field of the header is in docs/API.md;
#   3. nothing a user reads (README.md, docs/, include/, samples' READMEs)
#      points outside the repository (../shared, absolute /work paths), and
#      every relative Markdown link of README.md and docs/*.md resolves.
set -eu

src=${1:?usage: test_docs.sh SOURCE_DIR BUILD_DIR}
build=${2:?usage: test_docs.sh SOURCE_DIR BUILD_DIR}
fails=0
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }
header=$src/include/libckpt.h
api=$src/docs/API.md
pages="$src/docs/ckpt-inspect.1 $src/docs/man/ckpt-remote.1 $(ls "$src"/docs/man/*.3)"

# -- 1. lint -------------------------------------------------------------------------
version=$(sed -n 's/^project(libckpt VERSION \([0-9]*\.[0-9]*\).*/\1/p' "$src/CMakeLists.txt")
for p in $pages; do
	out=$(groff -man -ww -z "$p" 2>&1) || bad "groff $p failed"
	[ -z "$out" ] || bad "groff -ww $(basename "$p"): $out"
	if command -v mandoc >/dev/null 2>&1; then
		out=$(mandoc -Tlint -W warning "$p" 2>&1) || true
		[ -z "$out" ] || bad "mandoc -Tlint $(basename "$p"): $out"
	fi
	grep -q "^\.TH .*\"libckpt $version\"" "$p" ||
		bad "$(basename "$p"): .TH does not say \"libckpt $version\""
done
command -v mandoc >/dev/null 2>&1 || echo "mandoc not installed: linted with groff only"

# -- 2. coverage ----------------------------------------------------------------------
funcs=$(sed -n 's/^[^#/ ].*[ *]\(ckpt_[a-z_0-9]*\)(.*/\1/p' "$header")
[ -n "$funcs" ] || bad "no functions found in $header"
for f in $funcs; do
	gz=$build/man/man3/$f.3.gz
	if [ ! -f "$gz" ]; then
		bad "$f has no man page (cmake/Manpages.cmake)"
		continue
	fi
	target=$(zcat "$gz" | sed -n 's|^\.so man3/\(.*\)\.3$|\1|p')
	page=$src/docs/man/${target:-$f}.3
	[ -f "$page" ] || { bad "$f: man page source $page missing"; continue; }
	# the NAME section (up to .SH SYNOPSIS) names the function
	sed -n '/^\.SH NAME/,/^\.SH SYNOPSIS/p' "$page" | grep -q "\b$f\b" ||
		bad "$f: not in the NAME section of $(basename "$page")"
	grep -q "[ *]$f(" "$api" || bad "$f: not declared in docs/API.md"
done
for m in $(sed -n 's/^#define \(CKPT_[A-Z_]*\).*/\1/p' "$header"); do
	grep -q "$m" "$api" || bad "macro $m: not in docs/API.md"
done
for fld in $(sed -n '/^struct ckpt_config {/,/^};/s/^\t[a-z][a-z_ ]*[ *]\([a-z_]*\);.*/\1/p' "$header"); do
	grep -q "^| \`$fld\` |" "$api" || bad "ckpt_config.$fld: no row in docs/API.md"
done
for m in $(sed -n 's/^\t\(CKPT_FORK_[A-Z]*\).*/\1/p' "$header"); do
	grep -q "^| \`$m\`" "$api" || bad "fork mode $m: no row in docs/API.md"
done

# -- 3. self-contained -------------------------------------------------------------------
user_docs="$src/README.md $src/docs $src/include $(ls "$src"/samples/*/README.md 2>/dev/null || true)"
# shellcheck disable=SC2086
hits=$(grep -rn -e '\.\./shared' -e '/work/' -e 'shared/API\.md' -e 'BENCHMARKING\.md' $user_docs || true)
[ -z "$hits" ] || bad "user documentation points outside the repository:
$hits"
for md in "$src"/README.md "$src"/docs/*.md; do
	dir=$(dirname "$md")
	for link in $(grep -o '](\([^)#: ]*\)[)#]' "$md" | sed 's/^](//; s/[)#]$//' | sort -u); do
		[ -n "$link" ] || continue
		[ -e "$dir/$link" ] || bad "$(basename "$md"): link to $link does not resolve"
	done
done

if [ "$fails" -ne 0 ]; then
	echo "FAIL: $fails problem(s)"
	exit 1
fi
echo "PASS: $(echo "$pages" | wc -w) man pages lint clean; $(echo "$funcs" | wc -w) functions documented in man pages and docs/API.md; no links outside the repository"
