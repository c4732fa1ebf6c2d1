/* twofiles_part.c - the second source file of testdata/targets/twofiles.c,
 * with file-local functions whose names that file uses too. */

/* Never called here: the part_scale patch calls it. */
static __attribute__((noipa, used)) int scale(int value)
{
	return 5 * value;
}

static int step_calls;

static __attribute__((noipa)) int step(int value)
{
	step_calls++;
	return value + 1;
}

__attribute__((noipa)) int part_adjust(int value)
{
	return step(value);
}
