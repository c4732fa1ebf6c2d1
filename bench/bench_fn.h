/* bench_fn.h - the body shared by the benchmark's generated functions and
 * by the patches that replace them, so a patched function returns exactly
 * what the original did and the target keeps running correctly.  Included
 * by bench_target.c, the generated bench_functions.c and patch_N.c. */
#ifndef BENCH_FN_H
#define BENCH_FN_H

/* bench_fn_0000 .. bench_fn_0999 exist in the target. */
#define BENCH_FUNCTION_COUNT 1000

typedef unsigned long (*bench_fn_t)(unsigned long);

/* Mixes the argument with a per-function constant: two 64-bit immediates
 * and a multiply make every function about 40 bytes of distinct code, so
 * each holds a 5-byte jump and the linker or compiler cannot merge them. */
static inline unsigned long bench_mix(unsigned long x, unsigned long n)
{
	x ^= 0x9e3779b97f4a7c15UL * (n + 1);
	x *= 0xbf58476d1ce4e5b9UL;
	x ^= x >> 31;
	return x + n;
}

/* Defined in the generated bench_functions.c of the target. */
extern const bench_fn_t bench_functions[BENCH_FUNCTION_COUNT];
unsigned long bench_fn_0000(unsigned long x);

#endif /* BENCH_FN_H */
