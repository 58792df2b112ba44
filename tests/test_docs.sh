#!/bin/sh
# test_docs.sh SOURCE_DIR BUILD_DIR
#
# The documentation stands alone and matches the header (issue 16):
#   1. every man page source (docs/man/*.[13], docs/ckpt-inspect.1) is clean
#      under `groff -man -ww -z` and, where mandoc is installed, under
#      `mandoc -Tlint` (warnings and up); every .TH names the project's
#      version;
#   2. every function declared in include/libckpt.h has an installed man page
#      in BUILD_DIR/man/man3 (its family's page or a .so link to it), is named
#      in that page's NAME section, and has a section in docs/API.md; every
#      macro and config field of the header is in docs/API.md;
#   3. nothing a user reads (README.md, docs/, include/, samples/, the
#      tools' sources and help texts, packaging/, scripts/, cmake/) points
#      outside the repository (../shared, absolute /work paths), and
#      every relative Markdown link of README.md and docs/*.md resolves;
#   4. docs/DESIGN.md's layer table names every source file of libckpt/ and
#      no file that does not exist;
#   5. each tool's --help prints its usage text on stdout and exits 0;
#      every option of each tool's usage text (ckpt-inspect, ckpt-run,
#      ckpt-remote, kvstore, where built) is in its man page (kvstore: its
#      README), every option of a man page's SYNOPSIS is in the usage text,
#      and the README's synopsis and option list of a tool name the same
#      options as its usage text;
#   6. the README's dependency table lists exactly the packages
#      scripts/deps.sh installs;
#   7. the heap and pool format versions that docs/HEAP.md, docs/FORMAT.md
#      and docs/API.md state are those of libckpt/heap/types.h and
#      libckpt/format.h;
#   8. docs/HEAP.md's Files table names every file of libckpt/heap/;
#   9. every CKPT_ environment variable the code reads is documented, and
#      those ckpt_create and ckpt_open read are in libckpt(3).
#  10. no Markdown table of README.md, docs/*.md or samples/*/README.md is
#      cut by a blank line.
set -eu

src=${1:?usage: test_docs.sh SOURCE_DIR BUILD_DIR}
build=${2:?usage: test_docs.sh SOURCE_DIR BUILD_DIR}
fails=0
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }
header=$src/include/libckpt.h
api=$src/docs/API.md
pages="$src/docs/ckpt-inspect.1 $(ls "$src"/docs/man/*.1 "$src"/docs/man/*.3)"

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
user_docs="$src/README.md $src/docs $src/include $src/samples $src/tools $src/packaging $src/scripts $src/cmake"
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

# -- 4. DESIGN.md's layer table ------------------------------------------------------------
# A row's first cell names files (`open.c`) or directories (`heap/`); a
# directory's files are named, in backquotes, anywhere in its row, and so
# may a top-level file be in a row of top-level files (`inspect.c`'s).
layers=$(sed -n '/^## Layers/,/^## [^L]/p' "$src/docs/DESIGN.md" | grep '^| `' || true)
[ -n "$layers" ] || bad "DESIGN.md: no layer table under \"## Layers\""
for f in $(cd "$src/libckpt" && find . -name '*.c' | sed 's|^\./||' | sort); do
	d=$(dirname "$f")
	b=$(basename "$f")
	if [ "$d" = . ]; then
		# in a row's first cell, or anywhere in a row of top-level files
		{ echo "$layers" | cut -d'|' -f2 | grep -q "\`$b\`" ||
			echo "$layers" | grep -v '^| [^|]*/`' | grep -q "\`$b\`"; } ||
			bad "DESIGN.md layer table: libckpt/$f has no row"
	else
		echo "$layers" | grep "^| [^|]*\`$d/\`" | grep -q "\`$b\`" ||
			bad "DESIGN.md layer table: libckpt/$f is not named in the $d/ row"
	fi
done
echo "$layers" | while IFS= read -r row; do
	dirs=$(echo "$row" | cut -d'|' -f2 | grep -o '`[a-z]*/`' | tr -d '`' || true)
	for n in $(echo "$row" | grep -o '`[a-z_0-9]*\.[ch]`' | tr -d '`' | sort -u); do
		found=0
		for d in "" $dirs; do
			[ -e "$src/libckpt/$d$n" ] && found=1
		done
		[ "$found" = 1 ] || echo "DESIGN.md layer table names $n, which is not in libckpt/${dirs:+ or }$dirs"
	done
done > "$build/test_docs.layers"
while IFS= read -r l; do bad "$l"; done < "$build/test_docs.layers"
rm -f "$build/test_docs.layers"

# -- 5. options: usage texts against man pages and the README -----------------------------
# Options are the words --x-y (and -x) of a text; in roff, "\-" is "-".
opts() { grep -oE -- '(^|[^a-zA-Z0-9_-])--?[a-z][a-z-]*[a-z]' | grep -oE -- '--?[a-z][a-z-]*' | sort -u; }
roff() { sed 's/\\-/-/g; s/\\f[BIRP]//g' "$1"; }
# the README's text about a tool: its backquoted synopsis `TOOL [...]`, and
# the sentence of its section that begins "Options:"
readme_synopsis() {
	tr '\n' ' ' < "$src/README.md" | grep -o "\`$1 \[[^\`]*\`" || true
}
readme_options() {
	awk -v sec="$2" '/^## /{on = index($0, sec) > 0} on && /Options:/{p = 1}
		p{print} p && (/^$/ || /Exit status/){exit}' "$src/README.md" |
		sed 's/.*Options://; s/Exit status.*//'
}
check_tool() {   # check_tool NAME BINARY DOC README-SECTION
	[ -x "$2" ] || { echo "$1 not built: its options not checked"; return 0; }
	# --help is an answer, not a mistake: the usage text on stdout, exit 0
	hs=0
	"$2" --help > "$T/help.out" 2> "$T/help.err" || hs=$?
	[ "$hs" = 0 ] || bad "$1 --help: exit $hs, not 0"
	[ -s "$T/help.out" ] || bad "$1 --help: nothing on stdout"
	[ ! -s "$T/help.err" ] || bad "$1 --help: wrote to stderr"
	usage=$("$2" --help 2>&1 | opts | grep -vx -e --help -e -h || true)
	[ -n "$usage" ] || { bad "$1 --help: no options found"; return 0; }
	case $3 in
	*.md) doc=$(cat "$3") ;;
	*) doc=$(roff "$3") ;;
	esac
	docopts=$(echo "$doc" | opts)
	for o in $usage; do
		echo "$docopts" | grep -qx -- "$o" || bad "$1: option $o is not in $(basename "$3")"
	done
	case $3 in
	*.md) ;;
	*) for o in $(echo "$doc" | sed -n '/^\.SH SYNOPSIS/,/^\.SH /p' | opts); do
		echo "$usage" | grep -qx -- "$o" ||
			bad "$1: $(basename "$3") SYNOPSIS has $o, which $1 --help does not"
	done ;;
	esac
	for text in "$(readme_synopsis "$1")" "$(readme_options "$1" "$4")"; do
		[ -n "$text" ] || continue
		ro=$(echo "$text" | opts | grep -vx -e --help -e -h || true)
		[ "$ro" = "$usage" ] ||
			bad "$1: README.md names options [$(echo "$ro" | tr "\n" " ")], its usage text [$(echo "$usage" | tr "\n" " ")]: \"$(echo "$text" | tr -s "\n\t " "   " | cut -c1-60)...\""
	done
}
check_tool ckpt-inspect "$build/tools/ckpt-inspect" "$src/docs/ckpt-inspect.1" "## Tools"
check_tool ckpt-run "$build/tools/ckpt-run" "$src/docs/man/ckpt-run.1" "## Unmodified programs"
check_tool ckpt-remote "$build/tools/ckpt-remote" "$src/docs/man/ckpt-remote.1" "## Off-machine"
check_tool kvstore "$build/samples/kvstore" "$src/samples/kvstore/README.md" "## The kvstore sample"

# -- 6. dependencies ------------------------------------------------------------------------
deps=$(sed -n '/^pkgs="/,/"$/p' "$src/scripts/deps.sh" | sed 's/pkgs="//; s/"//' | tr -s ' \t' '\n' | grep . | sort -u)
table=$(sed -n '/^## Dependencies/,/^## /p' "$src/README.md" | grep '^| `' | cut -d'|' -f2 |
	grep -o '`[^`]*`' | tr -d '`' | sort -u)
[ -n "$deps" ] || bad "no package list found in scripts/deps.sh"
for p in $deps; do
	echo "$table" | grep -qx -- "$p" || bad "scripts/deps.sh installs $p: not in README.md's Dependencies table"
done
for p in $table; do
	echo "$deps" | grep -qx -- "$p" || bad "README.md's Dependencies table lists $p: scripts/deps.sh does not install it"
done

# -- 7. format versions ---------------------------------------------------------------------
hv=$(sed -n 's/^#define HEAP_VERSION \([0-9]*\)u.*/\1/p' "$src/libckpt/heap/types.h")
grep -q "^Format version: \*\*$hv\*\*" "$src/docs/HEAP.md" || bad "HEAP.md: \"Format version: **$hv**\" missing"
grep -q "^| 8 | \`version\` u32 | $hv " "$src/docs/HEAP.md" ||
	bad "HEAP.md: the heap_hdr table's version field does not say $hv"
grep -q "(HEAP.md: version $hv;" "$src/docs/FORMAT.md" || bad "FORMAT.md: \"(HEAP.md: version $hv;\" missing"
pmaj=$(sed -n 's/^#define POOL_FORMAT_MAJOR \([0-9]*\).*/\1/p' "$src/libckpt/format.h")
pmin=$(sed -n 's/^#define POOL_FORMAT_MINOR \([0-9]*\).*/\1/p' "$src/libckpt/format.h")
grep -q "^# libckpt pool file format, version $pmaj\.$pmin\$" "$src/docs/FORMAT.md" ||
	bad "FORMAT.md: the title does not say version $pmaj.$pmin"
grep -q "^| 8 | 4 | major | format major version, $pmaj |" "$src/docs/FORMAT.md" ||
	bad "FORMAT.md: the header table's major is not $pmaj"
grep -q "^| 12 | 4 | minor | format minor version, $pmin;" "$src/docs/FORMAT.md" ||
	bad "FORMAT.md: the header table's minor is not $pmin"
tr '\n' ' ' < "$src/docs/API.md" | grep -q "own format version ($pmaj\.$pmin, FORMAT.md; the heap inside a segment has its own, $hv," ||
	bad "API.md: \"Pool files carry their own format version\" does not say $pmaj.$pmin and heap $hv"

# -- 8. HEAP.md's Files table names every file of libckpt/heap/ ---------------------------
for f in $(cd "$src/libckpt/heap" && ls); do
	sed -n '/^## Files/,/^## [^F]/p' "$src/docs/HEAP.md" | grep -q "\`heap/$f\`" ||
		bad "HEAP.md: the Files table does not name heap/$f"
done

# -- 9. environment variables ------------------------------------------------------------
# every CKPT_ variable the code reads is in docs/API.md's Environment table
# or in a section 1 page's ENVIRONMENT; every one of that table that
# ckpt_create or ckpt_open reads is in libckpt(3)'s ENVIRONMENT.
envtab=$(sed -n '/^## Environment/,/^## [^E]/p' "$api" | grep '^| `')
man1env=$(for p in "$src"/docs/man/*.1 "$src"/docs/ckpt-inspect.1; do
	sed -n '/^\.SH ENVIRONMENT/,/^\.SH [^E]/p' "$p"; done)
for v in $(grep -rohE '(getenv|env_unsigned)\("CKPT_[A-Z_0-9]*"' "$src/libckpt" "$src/preload" "$src/tools" |
		sed 's/.*("//; s/"//' | sort -u); do
	echo "$envtab" | grep -q "\`$v\`" || echo "$man1env" | grep -qw "$v" ||
		bad "environment variable $v: neither in docs/API.md's Environment table nor in a man page's ENVIRONMENT"
done
libenv=$(sed -n '/^\.SH ENVIRONMENT/,/^\.SH [^E]/p' "$src/docs/man/libckpt.3")
for v in $(echo "$envtab" | awk -F'|' '$3 ~ /ckpt_(create|open)/ {print $2}' | grep -o 'CKPT_[A-Z_0-9]*'); do
	echo "$libenv" | grep -qw "$v" ||
		bad "environment variable $v (read by ckpt_create/ckpt_open, docs/API.md): not in libckpt(3)'s ENVIRONMENT"
done

# -- 10. Markdown tables are whole ---------------------------------------------------------
# A row that follows a blank line starts a table, so a header separator
# (| --- |) must come next: a blank line inside a table leaves the rows
# after it as plain text.
for md in "$src"/README.md "$src"/docs/*.md "$src"/samples/*/README.md; do
	[ -f "$md" ] || continue
	awk -v f="$(basename "$md")" '
		prev_blank && /^\|/ { hdr = NR }
		hdr && NR == hdr + 1 {
			if ($0 !~ /^\| *:?-+/)
				print f ":" hdr ": a table row after a blank line, without a header (a blank line inside a table?)"
			hdr = 0
		}
		/^```/ { code = !code }
		{ prev_blank = ($0 ~ /^[ \t]*$/) && !code }' "$md"
done > "$build/test_docs.tables"
while IFS= read -r l; do bad "$l"; done < "$build/test_docs.tables"
rm -f "$build/test_docs.tables"

if [ "$fails" -ne 0 ]; then
	echo "FAIL: $fails problem(s)"
	exit 1
fi
echo "PASS: $(echo "$pages" | wc -w) man pages lint clean; $(echo "$funcs" | wc -w) functions documented in man pages and docs/API.md; no links outside the repository; layer and heap file tables, tool options, dependencies, environment and format versions match the code; tables whole"
