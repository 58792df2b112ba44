/*
 * sums_avx2.c -- XXH3-64 for CPUs with AVX2: the page sums' hash at the
 * speed of the machine's vector unit.
 *
 * Debian's libxxhash is built for the x86-64 baseline, so its XXH3 runs on
 * SSE2: 51-61 ms per GiB of 4 KiB pages on the project's machine, where the
 * same library code built for AVX2 takes 14-16 ms (an ad-hoc loop, 2026-12-
 * 04; the hash values are the same, as XXH3 defines them independently of
 * the vector width). A lazy restart hashes every page before the program
 * sees it (engine/lazy.c), so this is a share of the restart's full read.
 *
 * This file is compiled with -mavx2 (libckpt/CMakeLists.txt) and holds
 * nothing but xxHash's own XXH3 in its header-only mode (XXH_INLINE_ALL,
 * with XXH_VECTOR chosen for AVX2): no hashing code of ours. sums.c calls
 * it only after glibc said AVX2 is usable (CPU_FEATURE_ACTIVE; libgcc's
 * __builtin_cpu_supports where glibc is older), and the library's
 * XXH3_64bits otherwise. Libxxhash also exports a dispatcher of
 * its own (XXH3_64bits_dispatch), but only from its shared library, and
 * libckpt.a must link against the static one too.
 */
#include <stddef.h>
#include <stdint.h>

#if defined(__x86_64__) && defined(__AVX2__)
#define XXH_INLINE_ALL
#define XXH_VECTOR XXH_AVX2
#include <xxhash.h>

#include "sums.h"

uint64_t
sums_xxh3_avx2(const void *data, size_t len)
{
	return XXH3_64bits(data, len);
}
#endif
