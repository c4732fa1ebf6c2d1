/* proc_maps_test.c - parsing /proc/PID/maps text and finding addresses. */
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "common/proc_maps.h"

static const char sample[] =
	"555555554000-555555556000 r-xp 00001000 08:01 1234567 /usr/bin/my program\n"
	"555555560000-555555581000 rw-p 00000000 00:00 0 [heap]\n"
	"7f0000000000-7f0000021000 rw-p 00000000 00:00 0 \n"
	"7f0000100000-7f0000101000 r--s 0000a000 fd:03 42 /tmp/old lib.so (deleted)\n"
	"7ffc00000000-7ffc00021000 rw-p 00000000 00:00 0                          [stack]\n";

static void test_parse(void)
{
	struct hp_maps maps = { 0 };
	struct hp_error error = { 0 };
	const struct hp_mapping *m;

	CHECK(proc_maps_parse(sample, strlen(sample), &maps, &error) == HP_OK, "sample parses");
	CHECK(maps.count == 5, "five mappings");
	if (maps.count != 5) {
		proc_maps_release(&maps);
		return;
	}
	m = &maps.items[0];
	CHECK(m->start == 0x555555554000 && m->end == 0x555555556000, "file: start and end");
	CHECK(m->readable && !m->writable && m->executable && !m->shared, "file: r-xp");
	CHECK(m->offset == 0x1000, "file: offset");
	CHECK(m->dev_major == 8 && m->dev_minor == 1, "file: dev 08:01");
	CHECK(m->inode == 1234567, "file: inode");
	CHECK(strcmp(m->path, "/usr/bin/my program") == 0, "file: path with a space");

	m = &maps.items[1];
	CHECK(strcmp(m->path, "[heap]") == 0, "heap: path");
	CHECK(m->readable && m->writable && !m->executable && !m->shared, "heap: rw-p");
	CHECK(m->inode == 0 && m->dev_major == 0 && m->dev_minor == 0, "heap: no device");

	m = &maps.items[2];
	CHECK(m->path != NULL && strcmp(m->path, "") == 0, "anonymous: empty path");
	CHECK(m->start == 0x7f0000000000 && m->end == 0x7f0000021000, "anonymous: range");

	m = &maps.items[3];
	CHECK(strcmp(m->path, "/tmp/old lib.so (deleted)") == 0, "deleted: path kept whole");
	CHECK(m->readable && !m->writable && !m->executable && m->shared, "deleted: r--s");
	CHECK(m->offset == 0xa000, "deleted: offset");
	CHECK(m->dev_major == 0xfd && m->dev_minor == 3, "deleted: dev fd:03 is hex");
	CHECK(m->inode == 42, "deleted: inode");

	m = &maps.items[4];
	CHECK(strcmp(m->path, "[stack]") == 0, "stack: padding before path skipped");

	CHECK(proc_maps_find(&maps, 0x555555554000) == &maps.items[0], "find: first byte");
	CHECK(proc_maps_find(&maps, 0x555555555fff) == &maps.items[0], "find: last byte");
	CHECK(proc_maps_find(&maps, 0x555555556000) == NULL, "find: end is exclusive");
	CHECK(proc_maps_find(&maps, 0x555555570000) == &maps.items[1], "find: heap");
	CHECK(proc_maps_find(&maps, 0x7f0000100800) == &maps.items[3], "find: deleted");
	CHECK(proc_maps_find(&maps, 0x1000) == NULL, "find: below everything");
	CHECK(proc_maps_find(&maps, 0xffffffffffffffff) == NULL, "find: above everything");
	proc_maps_release(&maps);
	CHECK(maps.count == 0 && maps.items == NULL, "release clears");
}

static void test_no_trailing_newline(void)
{
	static const char text[] = "1000-2000 r--p 00000000 00:00 0";
	struct hp_maps maps = { 0 };
	struct hp_error error = { 0 };

	CHECK(proc_maps_parse(text, strlen(text), &maps, &error) == HP_OK,
	      "last line without newline parses");
	CHECK(maps.count == 1 && strcmp(maps.items[0].path, "") == 0,
	      "last line without newline: anonymous");
	proc_maps_release(&maps);
}

static void test_stack_growth(void)
{
	static const char text[] = "555555554000-555555556000 r-xp 00000000 08:01 1 /bin/x\n"
				   "7ffff7fc0000-7ffff7fc2000 r-xp 00000000 08:01 2 /lib/ld.so\n"
				   "7ffffffde000-7ffffffff000 rw-p 00000000 00:00 0 [stack]\n"
				   "ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0 [vsyscall]\n";
	static const char no_stack[] = "1000-2000 r--p 00000000 00:00 0\n";
	struct hp_maps maps = { 0 };
	struct hp_error error = { 0 };

	CHECK(proc_maps_parse(text, strlen(text), &maps, &error) == HP_OK, "maps with a stack parse");
	CHECK(proc_maps_in_stack_growth(&maps, 0x7ffffff00000ull),
	      "just below the stack: where it grows");
	CHECK(proc_maps_in_stack_growth(&maps, 0x7ffff7fc2000ull),
	      "right above the highest mapping under it: where it grows");
	CHECK(!proc_maps_in_stack_growth(&maps, 0x7ffff7fbf000ull), "below that mapping: not");
	CHECK(!proc_maps_in_stack_growth(&maps, 0x600000000000ull), "far below: not");
	CHECK(!proc_maps_in_stack_growth(&maps, 0x7ffffffff000ull), "above the stack: not");
	proc_maps_release(&maps);
	CHECK(proc_maps_parse(no_stack, strlen(no_stack), &maps, &error) == HP_OK &&
		      !proc_maps_in_stack_growth(&maps, 0x3000),
	      "no stack: nowhere");
	proc_maps_release(&maps);
}

static void test_errors(void)
{
	static const char garbage[] = "1000-2000 r-xp 00000000 00:00 0 /ok\nthis is not a maps line\n";
	static const char reversed[] = "2000-1000 r-xp 00000000 00:00 0 /bad\n";
	static const char short_perms[] = "1000-2000 rx 00000000 00:00 0 /bad\n";
	struct hp_maps maps = { 0 };
	struct hp_error error = { 0 };

	CHECK(proc_maps_parse(garbage, strlen(garbage), &maps, &error) != HP_OK,
	      "garbage line is an error");
	CHECK(error.status != HP_OK && error.message[0] != '\0', "error is filled");
	CHECK(maps.count == 0 && maps.items == NULL, "nothing kept after an error");
	proc_maps_release(&maps);

	memset(&error, 0, sizeof(error));
	CHECK(proc_maps_parse(reversed, strlen(reversed), &maps, &error) != HP_OK,
	      "end before start is an error");
	proc_maps_release(&maps);
	CHECK(proc_maps_parse(short_perms, strlen(short_perms), &maps, &error) != HP_OK,
	      "short perms is an error");
	proc_maps_release(&maps);

	CHECK(proc_maps_parse("", 0, &maps, &error) == HP_OK, "empty text parses");
	CHECK(maps.count == 0, "empty text: no mappings");
	proc_maps_release(&maps);
	CHECK(proc_maps_parse("\n\n", 2, &maps, &error) == HP_OK && maps.count == 0,
	      "blank lines: no mappings");
	proc_maps_release(&maps);
}

static void test_read_self(void)
{
	struct hp_maps maps = { 0 };
	struct hp_error error = { 0 };

	CHECK(proc_maps_read(getpid(), &maps, &error) == HP_OK, "own maps read");
	CHECK(maps.count > 0, "own maps not empty");
	CHECK(proc_maps_find(&maps, (uint64_t)(uintptr_t)&test_read_self) != NULL,
	      "own code is mapped");
	proc_maps_release(&maps);
	CHECK(proc_maps_read(-1, &maps, &error) == HP_FAILED, "bad pid fails");
	proc_maps_release(&maps);
}

int main(void)
{
	test_parse();
	test_no_trailing_newline();
	test_stack_growth();
	test_errors();
	test_read_self();
	return check_report();
}
