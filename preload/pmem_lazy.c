/*
 * pmem_lazy.c -- libpmem for the preload library, loaded only when a pool
 * can be persistent memory.
 *
 * libpmem.so pulls in libndctl, libdaxctl, libkmod, libudev, libcrypto,
 * libzstd and liblzma: loading and relocating them costs every process
 * image under ckpt-run milliseconds (a bash loop or a gcc build starts
 * hundreds). libckpt calls five libpmem functions; this file defines them
 * for the preload library (libckpt.so itself links libpmem as before):
 *  - pmem_msync is libpmem's: msync(MS_SYNC) of the page-aligned range;
 *  - pmem_is_pmem, which map.c asks only of a mapping that MAP_SYNC refused
 *    (not DAX), is 0 unless PMEM_IS_PMEM_FORCE asks otherwise or the
 *    machine has NVDIMM devices (/sys/bus/nd/devices not empty), in which
 *    cases libpmem answers;
 *  - pmem_persist, pmem_memcpy_nodrain and pmem_drain are only reached on
 *    pmem (a MAP_SYNC mapping, or a forced one) and go to libpmem.
 * libpmem is opened with dlopen on first need; if it cannot be, the
 * process says why and exits with 127 (it cannot keep pmem data durable).
 */
#include <dirent.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "preload.h"

#define PMEM_SONAME "libpmem.so.1"

static struct {
	int (*is_pmem)(const void *, size_t);
	void (*persist)(const void *, size_t);
	void *(*memcpy_nodrain)(void *, const void *, size_t);
	void (*drain)(void);
} real;
static pthread_once_t real_once = PTHREAD_ONCE_INIT;

/* load_real -- dlopen libpmem and find the four functions */
static void
load_real(void)
{
	int was = preload_in_lib;
	preload_in_lib = 1;     /* dlopen allocates: not from the pool */
	void *h = dlopen(PMEM_SONAME, RTLD_NOW | RTLD_LOCAL);
	if (h) {
		real.is_pmem = (int (*)(const void *, size_t))dlsym(h, "pmem_is_pmem");
		real.persist = (void (*)(const void *, size_t))dlsym(h, "pmem_persist");
		real.memcpy_nodrain = (void *(*)(void *, const void *, size_t))
			dlsym(h, "pmem_memcpy_nodrain");
		real.drain = (void (*)(void))dlsym(h, "pmem_drain");
	}
	preload_in_lib = was;
	if (!real.is_pmem || !real.persist || !real.memcpy_nodrain || !real.drain) {
		static const char m[] = "libckpt-preload: the pool is on persistent memory "
			"but " PMEM_SONAME " cannot be loaded\n";
		if (write(2, m, sizeof(m) - 1) < 0) {
			/* nothing more to say */
		}
		_exit(127);
	}
}

static void
need_real(void)
{
	pthread_once(&real_once, load_real);
}

/* nvdimms -- 1 if the machine has NVDIMM bus devices */
static int
nvdimms(void)
{
	DIR *d = opendir("/sys/bus/nd/devices");
	if (!d)
		return 0;
	int any = 0;
	struct dirent *e;
	while (!any && (e = readdir(d)) != NULL)
		any = e->d_name[0] != '.';
	closedir(d);
	return any;
}

int
pmem_is_pmem(const void *addr, size_t len)
{
	const char *f = getenv("PMEM_IS_PMEM_FORCE");
	if ((!f || !*f) && !nvdimms())
		return 0;
	need_real();
	return real.is_pmem(addr, len);
}

int
pmem_msync(const void *addr, size_t len)
{
	uintptr_t a = (uintptr_t)addr & ~(uintptr_t)4095;
	return msync((void *)a, len + ((uintptr_t)addr & 4095), MS_SYNC);
}

void
pmem_persist(const void *addr, size_t len)
{
	need_real();
	real.persist(addr, len);
}

void *
pmem_memcpy_nodrain(void *dst, const void *src, size_t len)
{
	need_real();
	return real.memcpy_nodrain(dst, src, len);
}

void
pmem_drain(void)
{
	need_real();
	real.drain();
}
