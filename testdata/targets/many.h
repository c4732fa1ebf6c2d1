/* many.h - the body shared by the 64 functions of the many target and by
 * the many_fix patch that replaces them all: the patch returns one more. */
#ifndef MANY_H
#define MANY_H

#define MANY_COUNT 64

/* Two 64-bit constants and a multiply: the compiler starts each function
 * with a 10-byte movabs, which a gate's 5-byte jump replaces whole. */
static inline unsigned long many_mix(unsigned long x, unsigned long n)
{
	x ^= 0x9e3779b97f4a7c15UL * (n + 1);
	x *= 0xbf58476d1ce4e5b9UL;
	x ^= x >> 31;
	return x + n;
}

#endif /* MANY_H */
