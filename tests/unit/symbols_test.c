/* symbols_test.c - finding objects, functions and exports in this very
 * process, plus the ELF readers' refusals of non-ELF bytes. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "runtime/target.h"

static __attribute__((noinline, used)) int unit_local_function(int value)
{
	return value * 3 + 1;
}

static void test_main_executable(struct hp_target *t)
{
	struct hp_error error = { 0 };
	struct hp_object *obj = NULL;
	uint64_t address = 0, size = 0;

	CHECK(target_find_object(t, "", &obj, &error) == HP_OK, "main executable found");
	if (!obj) {
		fprintf(stderr, "  %s\n", error.message);
		return;
	}
	CHECK(obj->is_main && obj->loaded, "main object is main and loaded");
	CHECK(target_object_at(t, (uint64_t)(uintptr_t)&unit_local_function) == obj,
	      "object_at finds the main object for our function");
	CHECK(target_find_function(t, obj, "unit_local_function", "", &address, &size, &error) ==
		      HP_OK,
	      "static function found");
	CHECK(address == (uint64_t)(uintptr_t)&unit_local_function, "static function address");
	CHECK(size > 0, "static function size");
	CHECK(unit_local_function(2) == 7, "function works");

	memset(&error, 0, sizeof(error));
	CHECK(target_find_function(t, obj, "no_such_function_here", "", &address, &size, &error) ==
		      HP_MISFIT,
	      "missing function is HP_MISFIT");
	CHECK(strstr(error.message, "no_such_function_here") != NULL, "message names it");
}

static void test_libc(struct hp_target *t)
{
	struct hp_error error = { 0 };
	struct hp_object *obj = NULL;
	uint64_t address = 0;
	void *libc, *expected;

	CHECK(target_find_object(t, "libc.so.6", &obj, &error) == HP_OK, "libc.so.6 found");
	CHECK(obj && !obj->is_main && obj->loaded, "libc loaded, not main");
	if (obj)
		CHECK(obj->elf.soname && strcmp(obj->elf.soname, "libc.so.6") == 0, "libc soname");
	obj = NULL;
	CHECK(target_find_object(t, "libc.so", &obj, &error) == HP_OK, "libc.so prefix found");

	CHECK(target_find_export(t, "dlopen", &address, &error) == HP_OK, "dlopen export found");
	/* Sanitizers interpose dlopen, so RTLD_DEFAULT may name their wrapper;
	 * ask libc itself for the reference address. */
	libc = dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
	expected = libc ? dlsym(libc, "dlopen") : NULL;
	CHECK(expected && address == (uint64_t)(uintptr_t)expected, "dlopen address matches libc's");
	if (dlsym(RTLD_DEFAULT, "dlopen") != expected)
		fprintf(stderr, "  note: RTLD_DEFAULT dlopen is interposed (%p vs libc %p)\n",
			dlsym(RTLD_DEFAULT, "dlopen"), expected);
	if (libc)
		dlclose(libc);

	CHECK(target_find_export(t, "getpid", &address, &error) == HP_OK &&
		      address == (uint64_t)(uintptr_t)dlsym(RTLD_NEXT, "getpid"),
	      "getpid export matches");

	memset(&error, 0, sizeof(error));
	CHECK(target_find_export(t, "no_such_export_xyz", &address, &error) == HP_MISFIT,
	      "missing export is HP_MISFIT");

	memset(&error, 0, sizeof(error));
	obj = NULL;
	CHECK(target_find_object(t, "libnotloaded.so.9", &obj, &error) == HP_MISFIT,
	      "unloaded library is HP_MISFIT");
	CHECK(obj == NULL, "unloaded library: no object");
}

static void test_not_elf(void)
{
	static const unsigned char junk[256] = "this is certainly not an ELF object";
	struct hp_elf_info info = { 0 };
	struct hp_error error = { 0 };
	struct hp_patch_file patch = { 0 };

	CHECK(elf_info_read_memory(junk, sizeof(junk), "junk", &info, &error) == HP_MISFIT,
	      "non-ELF bytes are HP_MISFIT");
	elf_info_release(&info);

	memset(&error, 0, sizeof(error));
	hp_copy_string(patch.path, sizeof(patch.path), "junk.so");
	patch.size = sizeof(junk);
	patch.bytes = malloc(patch.size);
	if (patch.bytes)
		memcpy(patch.bytes, junk, patch.size);
	CHECK(patch.bytes && patch_file_parse(&patch, &error) == HP_MISFIT,
	      "patch_file_parse of non-ELF bytes is HP_MISFIT");
	CHECK(strstr(error.message, "not an ELF") != NULL, "patch message says not an ELF");
	patch_file_release(&patch);
}

int main(void)
{
	struct hp_target t = { 0 };
	struct hp_error error = { 0 };

	CHECK(target_map_open(getpid(), &t, &error) == HP_OK, "own process mapped");
	if (error.message[0])
		fprintf(stderr, "  %s\n", error.message);
	if (t.object_count > 0) {
		test_main_executable(&t);
		test_libc(&t);
	}
	target_map_release(&t);
	test_not_elf();
	return check_report();
}
