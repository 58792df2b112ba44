#!/bin/sh
# test_symbols.sh SHARED_LIB STATIC_LIB HEADER
#
# The libraries export only the public API (issue 2, item 1):
#  - every defined dynamic symbol of libckpt.so is ckpt_* / CKPT_* (or the
#    version node of libckpt.map), and every function the header declares is
#    among them, versioned;
#  - the SONAME is versioned (libckpt.so.N) and the build made the
#    libckpt.so -> libckpt.so.N links a linker and the loader use;
#  - every global symbol libckpt.a defines is ckpt_* too (internals are
#    localized, so a static link cannot collide with a program's names).
set -eu

lib=${1:?usage: test_symbols.sh SHARED_LIB STATIC_LIB HEADER}
alib=${2:?usage: test_symbols.sh SHARED_LIB STATIC_LIB HEADER}
header=${3:?usage: test_symbols.sh SHARED_LIB STATIC_LIB HEADER}
fail=0
bad() { echo "FAIL: $*"; fail=1; }

[ -f "$lib" ] || { echo "FAIL: no shared library $lib"; exit 1; }
[ -f "$alib" ] || { echo "FAIL: no static library $alib"; exit 1; }

# -- dynamic symbol table ------------------------------------------------------
exported=$(nm -D --defined-only "$lib" | awk 'NF >= 3 { print $3 }' | sed 's/@.*//' | sort -u)
[ -n "$exported" ] || bad "$lib exports nothing"
for s in $exported; do
	case $s in
	ckpt_*|CKPT_*) ;;
	LIBCKPT_[0-9]*) ;;      # the version node itself (an absolute symbol)
	*) bad "$lib exports non-API symbol: $s" ;;
	esac
done

# every function the header declares is exported, with a version
declared=$(sed -n 's/^[^#/ ].*[ *]\(ckpt_[a-z_0-9]*\)(.*/\1/p' "$header" | sort -u)
[ -n "$declared" ] || bad "found no ckpt_ functions in $header"
versioned=$(nm -D --defined-only --with-symbol-versions "$lib" 2>/dev/null | awk '{ print $3 }')
for f in $declared; do
	echo "$exported" | grep -qx "$f" || bad "$f is declared in $(basename "$header") but not exported"
	echo "$versioned" | grep -q "^$f@@LIBCKPT_" || bad "$f is exported without a LIBCKPT_ version"
done
# and nothing exported that the header does not declare (functions)
for s in $(nm -D --defined-only "$lib" | awk '$2 == "T" { print $3 }' | sed 's/@.*//'); do
	echo "$declared" | grep -qx "$s" || bad "$s is exported but not declared in the header"
done

# -- SONAME --------------------------------------------------------------------
soname=$(readelf -d "$lib" | sed -n 's/.*(SONAME).*\[\(.*\)\].*/\1/p')
case $soname in
libckpt.so.[0-9]*) ;;
*) bad "SONAME is '$soname', want libckpt.so.<major>" ;;
esac
dir=$(dirname "$lib")
[ -e "$dir/$soname" ] || bad "no $dir/$soname for the loader"
[ -L "$dir/libckpt.so" ] || bad "no libckpt.so link for the linker in $dir"
[ "$(readlink -f "$dir/libckpt.so")" = "$(readlink -f "$lib")" ] ||
	bad "libckpt.so does not point at $lib"
# a library that needs its own symbols resolved elsewhere would be broken
readelf -d "$lib" | grep -q '(NEEDED).*libpmem' || bad "libckpt.so does not record libpmem as NEEDED"

# -- static library ------------------------------------------------------------
for s in $(nm -g --defined-only "$alib" 2>/dev/null | awk 'NF >= 3 { print $3 }' | sort -u); do
	case $s in
	ckpt_*|CKPT_*) ;;
	*) bad "$alib defines global non-API symbol: $s" ;;
	esac
done
nm -g --defined-only "$alib" | grep -q ' T ckpt_create$' || bad "$alib lacks ckpt_create"

if [ $fail -ne 0 ]; then
	exit 1
fi
echo "ok: $(echo "$exported" | wc -l) symbols, SONAME $soname, static library clean"
