/* demo_fix.c - the patch `make demo` applies to demo_server: find_record()
 * with the bounds check it should have had ("GET 4" no longer reads past the
 * table).  It uses only its arguments and libc, nothing static of the target.
 *
 *     cc -shared -fPIC -O2 -I lib/include -o demo_fix.so demo_fix.c */
#include <stdio.h>

#include <hotpatch.h>

#define RECORD_COUNT 4
#define RECORD_SIZE 48

/* Must match struct store in testdata/targets/demo_server.c. */
struct store {
	char records[RECORD_COUNT][RECORD_SIZE];
	char admin_token[RECORD_SIZE];
	unsigned long lookups;
};

static int find_record_fixed(struct store *records, long n, char *out,
			     size_t size)
{
	records->lookups++;
	if (n < 0 || n >= RECORD_COUNT) {
		snprintf(out, size, "ERR no such record");
		return -1;
	}
	snprintf(out, size, "OK %s", records->records[n]);
	return 0;
}

HOTPATCH_REPLACE(find_record, find_record_fixed);
HOTPATCH_NAME("demo-fix");
HOTPATCH_META("description", "find_record: refuse n == RECORD_COUNT (out-of-bounds read)");
