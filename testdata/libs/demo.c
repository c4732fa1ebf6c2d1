/* demo.c - libdemo.so, the shared library the with_lib target calls into, so
 * that patches of a library function (HOTPATCH_REPLACE_IN) can be tested. */
unsigned long demo_calls;

/* Never read here: the lib_symbols patch reads it, which proves that a
 * patch reaches a library's file-local variables. */
static __attribute__((used)) int demo_extra = 13;

__attribute__((noipa)) int demo_value(int value)
{
	demo_calls++;
	return value + 7;
}
