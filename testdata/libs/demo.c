/* demo.c - libdemo.so, the shared library the with_lib target calls into, so
 * that patches of a library function (HOTPATCH_REPLACE_IN) can be tested. */
unsigned long demo_calls;

__attribute__((noipa)) int demo_value(int value)
{
	demo_calls++;
	return value + 7;
}
