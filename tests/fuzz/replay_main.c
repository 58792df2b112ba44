/*
 * replay_main -- drive fuzz_inspect.c without libFuzzer (any compiler):
 *   fuzz_inspect_replay FILE...   run each file as one input (crash repro)
 *   fuzz_inspect_replay           run CKPT_FUZZ_RUNS (default 1500) pseudo-random
 *                                 inputs from seed CKPT_FUZZ_SEED (default 1)
 * The test suite runs the second form as a smoke test in every build.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t rng;

static uint64_t
next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

int
main(int argc, char **argv)
{
	LLVMFuzzerInitialize(&argc, &argv);
	if (argc > 1) {
		for (int i = 1; i < argc; i++) {
			FILE *f = fopen(argv[i], "rb");
			if (!f) {
				perror(argv[i]);
				return 2;
			}
			static uint8_t buf[1 << 20];
			size_t n = fread(buf, 1, sizeof(buf), f);
			fclose(f);
			LLVMFuzzerTestOneInput(buf, n);
			printf("ran %s (%zu bytes)\n", argv[i], n);
		}
		return 0;
	}
	const char *s = getenv("CKPT_FUZZ_SEED"), *r = getenv("CKPT_FUZZ_RUNS");
	rng = s ? strtoull(s, NULL, 0) : 1;
	if (!rng)
		rng = 1;
	long runs = r ? atol(r) : 1500;
	uint8_t buf[256];
	for (long i = 0; i < runs; i++) {
		size_t n = 1 + next() % sizeof(buf);
		for (size_t k = 0; k < n; k++)
			buf[k] = (uint8_t)next();
		/* small values and all-ones are where bounds checks break */
		for (size_t k = 1; k < n; k++) {
			unsigned m = (unsigned)(next() % 8);
			if (m == 0)
				buf[k] = 0;
			else if (m == 1)
				buf[k] = 0xff;
		}
		buf[0] = (uint8_t)i;  /* cycle through every mode combination */
		LLVMFuzzerTestOneInput(buf, n);
	}
	printf("fuzz_inspect_replay: %ld inputs, no crash\n", runs);
	return 0;
}
