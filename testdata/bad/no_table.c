/* no_table.c - an ordinary shared object without any HOTPATCH_ record: the
 * tool must refuse it as a patch (exit 4).  Built as patches/no_table.so. */
int no_table_compute(int value);

int no_table_compute(int value)
{
	return 3 * value;
}
