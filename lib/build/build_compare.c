/* build_compare.c - what a fix changes, by meaning.  Two compiles of a
 * file are compared function by function (each in its own section thanks to
 * -ffunction-sections): equal bytes and relocations that point at the same
 * thing.  Names are compared as names; anonymous constants (strings, switch
 * tables, jump tables) by their bytes, since their offsets move between
 * compiles.  Changes a function-level patch cannot carry are refused here. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "build/build.h"

#define DESCRIBE_DEPTH 3
#define ANONYMOUS_MAX (64u << 10)
/* How far past its addend a PC-relative reference may point: the rest of
 * its 4-byte field and an immediate of up to 4 bytes after it. */
#define PC_RELATIVE_REACH 8u
/* The most zeros a compiler puts between two constants (64-byte alignment). */
#define PADDING_MAX 63u

/* A growing string; `failed` once memory ran out (then it compares unequal). */
struct text {
	char *data;
	size_t length, capacity;
	bool failed;
};

static void add(struct text *text, const char *format, ...) HP_PRINTF(2, 3);

static void add(struct text *text, const char *format, ...)
{
	va_list arguments;
	int needed;

	for (int round = 0; round < 2 && !text->failed; round++) {
		size_t room = text->capacity - text->length;

		va_start(arguments, format);
		needed = vsnprintf(text->data ? text->data + text->length : NULL, room, format,
				   arguments);
		va_end(arguments);
		if (needed < 0) {
			text->failed = true;
		} else if ((size_t)needed < room) {
			text->length += (size_t)needed;
			return;
		} else {
			size_t capacity = (text->capacity + (size_t)needed + 1) * 2;
			char *larger = realloc(text->data, capacity);

			if (!larger)
				text->failed = true;
			else
				text->data = larger, text->capacity = capacity;
		}
	}
}

/* Bytes in hex; a long run (a large table) as its length and FNV-1a digest,
 * which differ whenever the bytes might. */
static void add_bytes(struct text *text, const unsigned char *bytes, size_t size)
{
	uint64_t digest = 0xcbf29ce484222325u;

	if (size <= ANONYMOUS_MAX) {
		for (size_t i = 0; i < size && !text->failed; i++)
			add(text, "%02x", bytes[i]);
		return;
	}
	for (size_t i = 0; i < size; i++)
		digest = (digest ^ bytes[i]) * 0x100000001b3u;
	add(text, "#%zu:%016" PRIx64, size, digest);
}

static void describe_range(const struct build_object *object, size_t section, uint64_t start,
			   uint64_t size, unsigned depth, struct text *text);

static bool is_static_local(const struct build_symbol *symbol)
{
	char base[HP_TEXT_MAX];

	build_base_name(symbol->name, base, sizeof(base));
	return GELF_ST_BIND(symbol->sym.st_info) == STB_LOCAL && strcmp(base, symbol->name) != 0;
}

static bool is_constant_section(const struct build_section *section)
{
	return (section->header.sh_flags & (SHF_ALLOC | SHF_WRITE | SHF_EXECINSTR)) == SHF_ALLOC;
}

/* Constants in code outside every function: arm64's literal pools, which
 * -mcmodel=large puts after each function and loads every address from.
 * Described as a piece of their own, like a read-only section's constants:
 * the whole section refers to itself and would describe nothing beyond
 * DESCRIBE_DEPTH (not what the literals point at). */
static bool is_code_section(const struct build_section *section)
{
	return (section->header.sh_flags & (SHF_ALLOC | SHF_WRITE | SHF_EXECINSTR)) ==
	       (SHF_ALLOC | SHF_EXECINSTR);
}

/* Where [start, end) ends without a string's NUL and the zeros that may
 * pad it to the next constant's alignment (fewer than `end` is aligned to,
 * at most 63): a longer string after it may start 8 bytes later instead of
 * 1.  Never before a relocation's field. */
static uint64_t without_padding(const struct build_section *section, uint64_t start, uint64_t end)
{
	uint64_t alignment = end & (~end + 1), floor = start;

	if (!section->bytes)
		return end;
	if (alignment == 0 || alignment > PADDING_MAX + 1)
		alignment = PADDING_MAX + 1;
	if (end - start > alignment)
		floor = end - alignment;
	for (size_t i = 0; i < section->reloc_count; i++) {
		uint64_t field = section->relocs[i].offset;

		if (field >= start && field < end && floor < field + 8)
			floor = field + 8 < end ? field + 8 : end;
	}
	while (end > floor && section->bytes[end - 1] == '\0')
		end--;
	return end;
}

/* A constant of a read-only section that holds several (every string at
 * -O0): its own bytes and relocations, and where in it the reference
 * points.  Not the section's: another constant of it that grew or shrank
 * moves this one without changing what it means. */
static void describe_piece(const struct build_object *object, size_t index, uint64_t offset,
			   uint64_t reach, unsigned depth, struct text *text)
{
	uint64_t start, end, used;

	build_object_piece(object, index, offset, reach, &start, &end);
	used = without_padding(&object->sections[index], start, end);
	add(text, "[ro%" PRIx64 ":", (uint64_t)object->sections[index].header.sh_flags);
	if (used > start)
		describe_range(object, index, start, used - start, depth + 1, text);
	/* Zeros after it (a string's NUL, alignment) by their presence only. */
	add(text, "%s@%" PRIu64 "]", used < end ? "+0" : "", offset - start);
}

static void describe_anonymous(const struct build_object *object, size_t index, int64_t offset,
			       uint64_t reach, unsigned depth, struct text *text)
{
	const struct build_section *section = &object->sections[index];
	uint64_t size = section->header.sh_size, entry = section->header.sh_entsize;

	if (!section->bytes || offset < 0 || (uint64_t)offset > size) {
		add(text, "[%s+%" PRId64 "]", section->name, offset);
	} else if ((section->header.sh_flags & (SHF_MERGE | SHF_STRINGS)) ==
		   (SHF_MERGE | SHF_STRINGS)) {
		const unsigned char *start = section->bytes + offset;
		const unsigned char *end = memchr(start, '\0', size - (uint64_t)offset);

		add(text, "[str:");
		add_bytes(text, start, end ? (size_t)(end - start) : size - (uint64_t)offset);
		add(text, "]");
	} else if ((section->header.sh_flags & SHF_MERGE) && entry && entry <= 64) {
		uint64_t first = (uint64_t)offset / entry * entry;

		add(text, "[cst%" PRIu64 ":", entry);
		add_bytes(text, section->bytes + first, first + entry <= size ? entry : size - first);
		add(text, "+%" PRIu64 "]", (uint64_t)offset - first);
	} else if (depth < DESCRIBE_DEPTH &&
		   (is_constant_section(section) || is_code_section(section))) {
		describe_piece(object, index, (uint64_t)offset, reach, depth, text);
	} else if (depth < DESCRIBE_DEPTH && size <= ANONYMOUS_MAX) {
		add(text, "[anon:%" PRIx64 ":", (uint64_t)section->header.sh_flags);
		describe_range(object, index, 0, size, depth + 1, text);
		add(text, "@%" PRId64 "]", offset);
	} else {
		add(text, "[deep:%s+%" PRId64 "]", section->name, offset);
	}
}

static void describe_target(const struct build_object *object, const struct build_reloc *reloc,
			    unsigned depth, struct text *text)
{
	struct build_target target;
	const struct build_symbol *symbol;
	char base[HP_TEXT_MAX];

	build_object_target(object, reloc->symbol, reloc->addend, &target);
	if (target.symbol < 0) {
		describe_anonymous(object, target.section, target.offset,
				   build_reloc_is_absolute(reloc->type) ? 0 : PC_RELATIVE_REACH,
				   depth, text);
		return;
	}
	symbol = &object->symbols[target.symbol];
	if (build_symbol_is_function(symbol) && build_symbol_defined(symbol) &&
	    build_name_is_clone(symbol->name) && depth < DESCRIBE_DEPTH) {
		/* Clones are compared by content: their numbers are arbitrary. */
		add(text, "[clone:%.*s:", (int)strcspn(symbol->name, "."), symbol->name);
		describe_range(object, symbol->sym.st_shndx, symbol->sym.st_value,
			       symbol->sym.st_size, depth + 1, text);
		add(text, "+%" PRId64 "]", target.offset);
		return;
	}
	/* Static locals (count.3) by base name: the number may shift. */
	build_base_name(symbol->name, base, sizeof(base));
	add(text, "[%s+%" PRId64 "]", is_static_local(symbol) ? base : symbol->name,
	    target.offset);
}

/* Bytes and relocations of [start, start + size) of a section. */
static void describe_range(const struct build_object *object, size_t index, uint64_t start,
			   uint64_t size, unsigned depth, struct text *text)
{
	const struct build_section *section = &object->sections[index];
	uint64_t end;

	if (index == 0 || index >= object->section_count)
		return;
	if (size == 0 || start + size > section->header.sh_size)
		size = section->header.sh_size > start ? section->header.sh_size - start : 0;
	end = start + size;
	add(text, "%c%" PRIu64 ":", section->header.sh_type == SHT_NOBITS ? 'z' : 'b', size);
	if (section->bytes)
		add_bytes(text, section->bytes + start, size);
	for (size_t i = 0; i < section->reloc_count && !text->failed; i++) {
		const struct build_reloc *reloc = &section->relocs[i];

		if (reloc->offset < start || reloc->offset >= end)
			continue;
		add(text, " r%" PRIu64 ":%u", reloc->offset - start, reloc->type);
		describe_target(object, reloc, depth, text);
	}
}

static void describe_symbol(const struct build_object *object, size_t symbol, struct text *text)
{
	const struct build_symbol *s = &object->symbols[symbol];

	describe_range(object, s->sym.st_shndx, s->sym.st_value, s->sym.st_size, 0, text);
}

static bool same_description(const struct text *a, const struct text *b)
{
	return !a->failed && !b->failed && a->length == b->length &&
	       (a->length == 0 || memcmp(a->data, b->data, a->length) == 0);
}

bool build_functions_equal(const struct build_object *a, size_t a_symbol,
			   const struct build_object *b, size_t b_symbol)
{
	struct text one = { 0 }, two = { 0 };
	bool equal;

	describe_symbol(a, a_symbol, &one);
	describe_symbol(b, b_symbol, &two);
	equal = same_description(&one, &two);
	free(one.data);
	free(two.data);
	return equal;
}

static long find_function(const struct build_object *object, const char *name)
{
	for (size_t i = 1; i < object->symbol_count; i++)
		if (build_symbol_is_function(&object->symbols[i]) &&
		    build_symbol_defined(&object->symbols[i]) &&
		    strcmp(object->symbols[i].name, name) == 0)
			return (long)i;
	return -1;
}

/* The first function whose code refers to `symbol`: a static local's owner. */
static const char *user_of(const struct build_object *object, size_t symbol)
{
	for (size_t i = 1; i < object->symbol_count; i++) {
		const struct build_symbol *f = &object->symbols[i];
		const struct build_section *section;

		if (!build_symbol_is_function(f) || !build_symbol_defined(f))
			continue;
		section = &object->sections[f->sym.st_shndx];
		for (size_t r = 0; r < section->reloc_count; r++) {
			struct build_target target;

			build_object_target(object, section->relocs[r].symbol,
					    section->relocs[r].addend, &target);
			if (target.symbol == (long)symbol)
				return f->name;
		}
	}
	return "";
}

/* The same variable in the other compile: by name, and for static locals
 * (count.3) by base name and the function that uses it. */
long build_find_variable(const struct build_object *object, const struct build_object *from,
			 size_t symbol)
{
	const struct build_symbol *wanted = &from->symbols[symbol];
	char base[HP_TEXT_MAX], other[HP_TEXT_MAX];

	build_base_name(wanted->name, base, sizeof(base));
	for (size_t i = 1; i < object->symbol_count; i++) {
		const struct build_symbol *s = &object->symbols[i];

		if (!build_symbol_is_variable(s) || !build_symbol_defined(s))
			continue;
		if (!is_static_local(wanted)) {
			if (strcmp(s->name, wanted->name) == 0 && !is_static_local(s))
				return (long)i;
			continue;
		}
		build_base_name(s->name, other, sizeof(other));
		if (is_static_local(s) && strcmp(base, other) == 0 &&
		    strcmp(user_of(object, i), user_of(from, symbol)) == 0)
			return (long)i;
	}
	return -1;
}

static void describe_variable(const struct build_object *object, size_t symbol,
			      struct text *text)
{
	const struct build_symbol *s = &object->symbols[symbol];
	const GElf_Shdr *header = &object->sections[s->sym.st_shndx].header;

	add(text, "%c%c%" PRIu64 ":", header->sh_flags & SHF_WRITE ? 'w' : 'r',
	    header->sh_flags & SHF_TLS ? 't' : '-', (uint64_t)s->sym.st_size);
	describe_symbol(object, symbol, text);
}

/* "<before>static local 'calls' in 'lookup' (table.c)<after>" and the like. */
static int refuse_variable(const struct build_object *fixed, size_t symbol, const char *before,
			   const char *after, struct hp_error *error)
{
	const struct build_symbol *s = &fixed->symbols[symbol];
	char base[HP_TEXT_MAX];

	build_base_name(s->name, base, sizeof(base));
	hp_error_function(error, base);
	hp_error_file(error, fixed->source);
	hp_hint(error, "a patch replaces code only: keep the data as it is, or restart the program");
	if (is_static_local(s))
		return hp_fail(error, HP_MISFIT, "%sstatic local '%s' in '%s' (%s)%s", before, base,
			       user_of(fixed, symbol), fixed->source, after);
	return hp_fail(error, HP_MISFIT, "%s'%s' (%s)%s", before, base, fixed->source, after);
}

static int compare_variable(const struct build_object *orig, const struct build_object *fixed,
			    size_t symbol, struct hp_error *error)
{
	const struct build_symbol *s = &fixed->symbols[symbol];
	long before = orig ? build_find_variable(orig, fixed, symbol) : -1;
	struct text one = { 0 }, two = { 0 };
	int status = HP_OK;

	if (before < 0) {
		/* A new variable has no old state to keep: the patch holds it, as
		 * initialised, from its load on (build_plan.c checks that the
		 * binary has no variable of that name, moved state).  A new
		 * thread-local one would need a TLS block of the patch's own,
		 * which code compiled for an executable cannot reach. */
		if (fixed->sections[s->sym.st_shndx].header.sh_flags & SHF_TLS)
			status = refuse_variable(fixed, symbol,
						 is_static_local(s) ? "the fix adds a new thread-local "
								    : "the fix adds a new thread-local "
								      "variable ",
						 ", which a patch cannot allocate for every thread",
						 error);
		return status;
	}
	describe_variable(orig, (size_t)before, &one);
	describe_variable(fixed, symbol, &two);
	if (orig->symbols[before].sym.st_size != s->sym.st_size)
		status = refuse_variable(fixed, symbol, "the size of ", " changed", error);
	else if (!same_description(&one, &two))
		status = refuse_variable(fixed, symbol, "the initial value of ", " changed", error);
	free(one.data);
	free(two.data);
	return status;
}

static void describe_constructors(const struct build_object *object, struct text *text)
{
	for (size_t i = 1; object && i < object->section_count; i++)
		if (build_section_is_constructor(&object->sections[i])) {
			add(text, "%s:", object->sections[i].name);
			describe_range(object, i, 0, object->sections[i].header.sh_size, 0, text);
		}
}

/* A changed function that a constructor calls already ran: refused. */
static int check_constructors(const struct build_object *orig, const struct build_object *fixed,
			      const unsigned char *fate, struct hp_error *error)
{
	struct text one = { 0 }, two = { 0 };
	int status = HP_OK;

	describe_constructors(orig, &one);
	describe_constructors(fixed, &two);
	if (!same_description(&one, &two) && (one.length || two.length)) {
		hp_error_file(error, fixed->source);
		hp_hint(error, "constructors and destructors ran when the program started; restart it");
		status = hp_fail(error, HP_MISFIT,
				 "the fix changes the constructors or destructors of %s",
				 fixed->source);
	}
	for (size_t i = 1; status == HP_OK && i < fixed->section_count; i++) {
		const struct build_section *section = &fixed->sections[i];

		if (!build_section_is_constructor(section))
			continue;
		for (size_t r = 0; status == HP_OK && r < section->reloc_count; r++) {
			struct build_target target;

			build_object_target(fixed, section->relocs[r].symbol,
					    section->relocs[r].addend, &target);
			if (target.symbol < 0 || fate[target.symbol] != BUILD_CHANGED)
				continue;
			hp_error_function(error, fixed->symbols[target.symbol].name);
			hp_error_file(error, fixed->source);
			hp_hint(error, "it already ran when the program started; restart it");
			status = hp_fail(error, HP_MISFIT, "'%s' (%s) changed and is a constructor "
							   "or destructor",
					 fixed->symbols[target.symbol].name, fixed->source);
		}
	}
	free(one.data);
	free(two.data);
	return status;
}

int build_compare(const struct build_object *orig, const struct build_object *fixed,
		  unsigned char *fate, struct hp_error *error)
{
	int status = HP_OK;

	for (size_t i = 1; i < fixed->symbol_count; i++) {
		const struct build_symbol *s = &fixed->symbols[i];
		long before;

		fate[i] = BUILD_OTHER;
		if (!build_symbol_is_function(s) || !build_symbol_defined(s) ||
		    build_name_is_clone(s->name))
			continue;
		before = orig ? find_function(orig, s->name) : -1;
		if (before < 0)
			fate[i] = BUILD_NEW;
		else if (build_functions_equal(orig, (size_t)before, fixed, i))
			fate[i] = BUILD_UNCHANGED;
		else
			fate[i] = BUILD_CHANGED;
	}
	for (size_t i = 1; status == HP_OK && i < fixed->symbol_count; i++)
		if (build_symbol_is_variable(&fixed->symbols[i]) &&
		    build_symbol_defined(&fixed->symbols[i]))
			status = compare_variable(orig, fixed, i, error);
	if (status == HP_OK)
		status = check_constructors(orig, fixed, fate, error);
	return status;
}
