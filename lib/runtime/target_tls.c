/* target_tls.c - where an object's thread-local storage lives in the
 * target: its module id and, when the dynamic linker put it in the static
 * TLS block (the executable and the libraries loaded at start), its offset
 * from every thread's pointer.  Both are fields of the object's link_map
 * that glibc keeps private; their offsets come from the descriptors libc
 * exports for libthread_db (_thread_db_link_map_l_tls_modid, ..._offset),
 * as debuggers read them.  It reads the target's memory, never writes. */
#include <string.h>

#include "runtime/target.h"
#include "common/base.h"

#define LINK_MAPS_MAX 65536u
/* struct link_map's public head (<link.h>): l_addr, l_name, l_ld, l_next. */
#define LINK_MAP_ADDR 0
#define LINK_MAP_NEXT 24
/* struct r_debug: int r_version, then struct link_map *r_map. */
#define R_DEBUG_MAP 8
/* glibc's marks for "no static offset" (NO_TLS_OFFSET, FORCED_DYNAMIC_TLS_OFFSET). */
#define TLS_NO_OFFSET 0
#define TLS_FORCED_DYNAMIC ((uint64_t)-1)

/* An exported variable of any loaded object, and its runtime address. */
static bool find_variable(struct hp_target *target, const char *name, uint64_t *address)
{
	for (size_t i = 0; i < target->object_count; i++) {
		struct hp_object *object = &target->objects[i];
		struct hp_error ignored;

		if (target_load_object(target, object, &ignored) != HP_OK)
			continue;
		for (size_t s = 0; s < object->elf.symbol_count; s++) {
			const struct hp_symbol *symbol = &object->elf.symbols[s];

			if (symbol->dynamic && symbol->type == STT_OBJECT && !symbol->absolute &&
			    symbol->bind != STB_LOCAL && strcmp(symbol->name, name) == 0) {
				*address = object->bias + symbol->value;
				return true;
			}
		}
	}
	return false;
}

/* A libthread_db field descriptor: { size in bits, count, byte offset }. */
static int field_offset(struct hp_target *target, struct hp_memory *memory, const char *name,
			uint32_t *offset, struct hp_error *error)
{
	uint32_t descriptor[3];
	uint64_t address;
	int status;

	if (!find_variable(target, name, &address)) {
		hp_hint(error, "hotpatch reads thread-local storage as libthread_db does, from "
			       "glibc's descriptors");
		return hp_fail(error, HP_MISFIT, "pid %d has no %s: its C library does not say "
						 "where it keeps thread-local storage",
			       (int)target->pid, name);
	}
	status = target_memory_read(memory, address, descriptor, sizeof(descriptor), error);
	if (status != HP_OK)
		return status;
	if (descriptor[0] != 64 || descriptor[1] != 1 || descriptor[2] > 4096 ||
	    descriptor[2] % 8 != 0)
		return hp_fail(error, HP_MISFIT, "%s of pid %d is not a descriptor hotpatch knows",
			       name, (int)target->pid);
	*offset = descriptor[2];
	return HP_OK;
}

/* The link_map of `object`: the first one is the executable's; a library's
 * has its load bias as l_addr. */
static int find_link_map(struct hp_target *target, struct hp_memory *memory,
			 const struct hp_object *object, uint64_t *map, struct hp_error *error)
{
	uint64_t debug, next = 0;
	int status;

	if (!find_variable(target, "_r_debug", &debug))
		return hp_fail(error, HP_MISFIT, "pid %d has no _r_debug: no dynamic linker to ask "
						 "about thread-local storage", (int)target->pid);
	status = target_memory_read(memory, debug + R_DEBUG_MAP, &next, sizeof(next), error);
	for (unsigned count = 0; status == HP_OK && next && count < LINK_MAPS_MAX; count++) {
		uint64_t address = 0;

		status = target_memory_read(memory, next + LINK_MAP_ADDR, &address, sizeof(address),
					    error);
		if (status == HP_OK && ((object->is_main && count == 0) ||
					(!object->is_main && count > 0 && address == object->bias))) {
			*map = next;
			return HP_OK;
		}
		if (status == HP_OK)
			status = target_memory_read(memory, next + LINK_MAP_NEXT, &next, sizeof(next),
						    error);
	}
	if (status != HP_OK)
		return status;
	return hp_fail(error, HP_MISFIT, "the dynamic linker of pid %d does not list %s",
		       (int)target->pid, object->path);
}

int target_tls_module(struct hp_target *target, struct hp_memory *memory,
		      struct hp_object *object, struct hp_tls_module *module,
		      struct hp_error *error)
{
	uint32_t id_field = 0, offset_field = 0;
	uint64_t map = 0, offset = 0;
	int status = field_offset(target, memory, "_thread_db_link_map_l_tls_modid", &id_field,
				  error);

	if (status == HP_OK)
		status = field_offset(target, memory, "_thread_db_link_map_l_tls_offset",
				      &offset_field, error);
	if (status == HP_OK)
		status = find_link_map(target, memory, object, &map, error);
	if (status == HP_OK)
		status = target_memory_read(memory, map + id_field, &module->id, sizeof(module->id),
					    error);
	if (status == HP_OK)
		status = target_memory_read(memory, map + offset_field, &offset, sizeof(offset),
					    error);
	if (status != HP_OK)
		return status;
	if (module->id == 0)
		return hp_fail(error, HP_MISFIT, "%s in pid %d has no thread-local storage",
			       object->path, (int)target->pid);
	module->in_static_block = offset != TLS_NO_OFFSET && offset != TLS_FORCED_DYNAMIC;
	module->static_offset = module->in_static_block ? offset : 0;
	return HP_OK;
}
