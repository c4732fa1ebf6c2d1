/* hotpatch.h - what a patch author needs to write a hotpatch patch object.
 * The macros only emit fixed-size records into dedicated ELF sections; the
 * hotpatch tool reads them from the file before it touches any process.
 * This header depends on <stdint.h> only and works from C and C++. */
#ifndef HOTPATCH_H
#define HOTPATCH_H

#include <stdint.h>

#define HOTPATCH_ABI_VERSION 2

/* Longest object or function name, including the terminating NUL. */
#define HOTPATCH_NAME_MAX 128
/* Longest metadata value, including the terminating NUL. */
#define HOTPATCH_META_MAX 224

/* Longest build-id in hex, including the terminating NUL. */
#define HOTPATCH_BUILD_ID_MAX 136

/* One replaced function.  `object` is empty for the main executable, else the
 * file name (or soname) of a library the target has loaded.  `file`, when
 * not empty, is the source file that defines `function`, for a file-local
 * name that more than one source file uses. */
struct hotpatch_replacement {
	uint32_t abi_version;
	uint32_t record_size;
	char object[HOTPATCH_NAME_MAX];
	char function[HOTPATCH_NAME_MAX];
	void (*replacement)(void);
	char file[HOTPATCH_NAME_MAX];
};

/* One variable or function of the target that the patch uses: `symbol` of
 * `object` (and of the source file `file`, when not empty).  `alias` is the
 * undefined symbol of the patch that stands for it ("": `symbol` itself). */
struct hotpatch_symbol {
	uint32_t abi_version;
	uint32_t record_size;
	char object[HOTPATCH_NAME_MAX];
	char file[HOTPATCH_NAME_MAX];
	char symbol[HOTPATCH_NAME_MAX];
	char alias[HOTPATCH_NAME_MAX];
};

/* A relocation of the patch's own code that no shared object can carry,
 * left for hotpatch to apply after loading the patch, before any jump:
 * `place` (the address of the field in the patch's code) gets what the
 * processor's relocation `type` computes for the target's symbol that
 * `alias` stands for (a HOTPATCH_SYMBOL_ALIAS record), plus `addend`.
 * hotpatch build writes these (section .hotpatch.relocations) for code
 * that reaches a thread-local variable of the target at its offset from
 * the thread pointer (local-exec code: on x86-64 its TPOFF32 fields); no
 * macro makes them, since the place is a field inside compiled code. */
struct hotpatch_relocation {
	uint32_t abi_version;
	uint32_t record_size;
	void *place;
	int64_t addend;
	uint32_t type;
	uint32_t reserved;	/* 0 */
	char alias[HOTPATCH_NAME_MAX];
};

/* The build-id (lower-case hex) `object` must have for the patch to apply. */
struct hotpatch_build_id {
	uint32_t abi_version;
	uint32_t record_size;
	char object[HOTPATCH_NAME_MAX];
	char build_id[HOTPATCH_BUILD_ID_MAX];
};

/* Longest fix id, including the terminating NUL. */
#define HOTPATCH_FIX_MAX 64

/* `function` of `object` (and of the source file `file`, when not empty)
 * was changed by the fix `fix` ("CVE-2026-12345"): a replaced function, or
 * one the fix added.  A function several fixes changed has a record for
 * each.  `hotpatch apply --exclude FIX` leaves out the replacements that
 * only excluded fixes changed. */
struct hotpatch_fix {
	uint32_t abi_version;
	uint32_t record_size;
	char object[HOTPATCH_NAME_MAX];
	char file[HOTPATCH_NAME_MAX];
	char function[HOTPATCH_NAME_MAX];
	char fix[HOTPATCH_FIX_MAX];
};

/* One key/value pair describing the patch, for example its name. */
struct hotpatch_meta {
	uint32_t abi_version;
	uint32_t record_size;
	char key[32];
	char value[HOTPATCH_META_MAX];
};

#ifdef __cplusplus
#define HOTPATCH_STATIC_ASSERT_ static_assert
#define HOTPATCH_EXTERN_C_ extern "C"
#else
#define HOTPATCH_STATIC_ASSERT_ _Static_assert
#define HOTPATCH_EXTERN_C_
#endif

/* Records survive the linker's --gc-sections where the toolchain can say so. */
#if defined(__has_attribute)
#if __has_attribute(retain)
#define HOTPATCH_RETAIN_ retain,
#endif
#endif
#ifndef HOTPATCH_RETAIN_
#define HOTPATCH_RETAIN_
#endif

#define HOTPATCH_CONCAT2_(a, b) a##b
#define HOTPATCH_CONCAT_(a, b) HOTPATCH_CONCAT2_(a, b)
#define HOTPATCH_UNIQUE_(prefix) HOTPATCH_CONCAT_(prefix, __LINE__)

/* Replace `function` of the library `object` ("libfoo.so.1"; "" for the
 * main executable) with `replacement`, a function of this patch with the same
 * signature.  `function` is a bare name: it is turned into a string. */
#define HOTPATCH_REPLACE_IN(object, function, replacement)                     \
	HOTPATCH_REPLACE_FROM(object, "", function, replacement)

/* The same for a file-local (static) `function` whose name more than one
 * source file of `object` uses: `file` is the one that defines it
 * ("parser.c"; compared with the symbol table's file names, directories
 * ignored). */
#define HOTPATCH_REPLACE_FROM(object, file, function, replacement)             \
	HOTPATCH_STATIC_ASSERT_(sizeof(object) <= HOTPATCH_NAME_MAX,           \
				"hotpatch: object name too long");             \
	HOTPATCH_STATIC_ASSERT_(sizeof(file) <= HOTPATCH_NAME_MAX,             \
				"hotpatch: file name too long");               \
	HOTPATCH_STATIC_ASSERT_(sizeof(#function) <= HOTPATCH_NAME_MAX,        \
				"hotpatch: function name too long");           \
	__attribute__((used, HOTPATCH_RETAIN_ section(".hotpatch"), aligned(8)))                \
	static const struct hotpatch_replacement HOTPATCH_UNIQUE_(             \
		hotpatch_replacement_) = {                                     \
		HOTPATCH_ABI_VERSION, sizeof(struct hotpatch_replacement),     \
		object, #function, (void (*)(void))(replacement), file         \
	}

/* Replace `function` of the main executable. */
#define HOTPATCH_REPLACE(function, replacement)                                \
	HOTPATCH_REPLACE_IN("", function, replacement)

/* Use `symbol`, a variable or function of the target's main executable
 * (exported or static), as if the patch were part of that file: declare it
 * as usual (`extern int counter;`, `int helper(int);`), then name it here.
 * Reads and writes reach the target's own storage, calls its own code.
 * hotpatch finds it in the executable's symbol table (or in its debug file,
 * /usr/lib/debug/.build-id/, when the executable is stripped) and fills in
 * the patch's references before any jump is written.  The declaration is
 * made weak so that loading the patch does not look for it elsewhere. */
#define HOTPATCH_SYMBOL(symbol) HOTPATCH_SYMBOL_FROM("", "", symbol)

/* The same for `symbol` of the loaded library `object` ("libfoo.so.1"). */
#define HOTPATCH_SYMBOL_IN(object, symbol) HOTPATCH_SYMBOL_FROM(object, "", symbol)

/* The same for a file-local `symbol` whose name more than one source file
 * of `object` uses: `file` is the one that defines it ("parser.c"). */
#define HOTPATCH_SYMBOL_FROM(object, file, symbol)                             \
	extern __typeof__(symbol) symbol __attribute__((weak));                \
	HOTPATCH_SYMBOL_ALIAS(object, file, #symbol, "")

/* The same for a thread-local (__thread, _Thread_local) `symbol` of the
 * target, declared as such (`extern __thread int depth;`): the patch,
 * built with -fPIC, reads and writes the calling thread's own copy, in
 * every thread, including threads started after the patch is applied.
 * hotpatch fills in the module id and offset that __tls_get_addr takes
 * (and, with -ftls-model=initial-exec, the offset from the thread pointer,
 * for an object whose storage is in the static TLS block). */
#define HOTPATCH_THREAD_SYMBOL(symbol) HOTPATCH_THREAD_SYMBOL_FROM("", "", symbol)
#define HOTPATCH_THREAD_SYMBOL_IN(object, symbol) HOTPATCH_THREAD_SYMBOL_FROM(object, "", symbol)
#define HOTPATCH_THREAD_SYMBOL_FROM(object, file, symbol)                      \
	extern __thread __typeof__(symbol) symbol __attribute__((weak));       \
	HOTPATCH_SYMBOL_ALIAS(object, file, #symbol, "")

/* The record alone, for generated patches: the patch's undefined (weak)
 * symbol `alias` stands for `symbol` of `object` and `file` (all four are
 * string literals). */
#define HOTPATCH_SYMBOL_ALIAS(object, file, symbol, alias)                     \
	HOTPATCH_STATIC_ASSERT_(sizeof(object) <= HOTPATCH_NAME_MAX,           \
				"hotpatch: object name too long");             \
	HOTPATCH_STATIC_ASSERT_(sizeof(file) <= HOTPATCH_NAME_MAX,             \
				"hotpatch: file name too long");               \
	HOTPATCH_STATIC_ASSERT_(sizeof(symbol) <= HOTPATCH_NAME_MAX,           \
				"hotpatch: symbol name too long");             \
	HOTPATCH_STATIC_ASSERT_(sizeof(alias) <= HOTPATCH_NAME_MAX,            \
				"hotpatch: alias too long");                   \
	__attribute__((used, HOTPATCH_RETAIN_ section(".hotpatch.symbols"), aligned(8)))        \
	static const struct hotpatch_symbol HOTPATCH_UNIQUE_(hotpatch_symbol_) = { \
		HOTPATCH_ABI_VERSION, sizeof(struct hotpatch_symbol),          \
		object, file, symbol, alias                                    \
	}

/* Refuse the patch unless `object` ("" for the main executable) has this
 * build-id, a string of lower-case hex digits as `readelf -n` shows it. */
#define HOTPATCH_BUILD_ID(object, build_id)                                    \
	HOTPATCH_STATIC_ASSERT_(sizeof(object) <= HOTPATCH_NAME_MAX,           \
				"hotpatch: object name too long");             \
	HOTPATCH_STATIC_ASSERT_(sizeof(build_id) <= HOTPATCH_BUILD_ID_MAX,     \
				"hotpatch: build-id too long");                \
	__attribute__((used, HOTPATCH_RETAIN_ section(".hotpatch.build_id"), aligned(8)))       \
	static const struct hotpatch_build_id HOTPATCH_UNIQUE_(hotpatch_build_id_) = { \
		HOTPATCH_ABI_VERSION, sizeof(struct hotpatch_build_id),        \
		object, build_id                                               \
	}

/* Tag `function` (a bare name) of the main executable as changed by the
 * fix `fix` (a string literal: letters, digits and punctuation, no space or
 * '='); repeat it for each fix that changed it. */
#define HOTPATCH_FIX(function, fix) HOTPATCH_FIX_RECORD("", "", #function, fix)
/* The same for `function` of the library `object`. */
#define HOTPATCH_FIX_IN(object, function, fix) HOTPATCH_FIX_RECORD(object, "", #function, fix)
/* The same for a file-local `function` of the source file `file`. */
#define HOTPATCH_FIX_FROM(object, file, function, fix) HOTPATCH_FIX_RECORD(object, file, #function, fix)

/* The record alone, all four string literals (hotpatch build writes it). */
#define HOTPATCH_FIX_RECORD(object, file, function, fix)                       \
	HOTPATCH_STATIC_ASSERT_(sizeof(object) <= HOTPATCH_NAME_MAX,           \
				"hotpatch: object name too long");             \
	HOTPATCH_STATIC_ASSERT_(sizeof(file) <= HOTPATCH_NAME_MAX,             \
				"hotpatch: file name too long");               \
	HOTPATCH_STATIC_ASSERT_(sizeof(function) <= HOTPATCH_NAME_MAX,         \
				"hotpatch: function name too long");           \
	HOTPATCH_STATIC_ASSERT_(sizeof(fix) <= HOTPATCH_FIX_MAX,               \
				"hotpatch: fix id too long");                  \
	__attribute__((used, HOTPATCH_RETAIN_ section(".hotpatch.fixes"), aligned(8)))          \
	static const struct hotpatch_fix HOTPATCH_UNIQUE_(hotpatch_fix_) = {   \
		HOTPATCH_ABI_VERSION, sizeof(struct hotpatch_fix),             \
		object, file, function, fix                                    \
	}

/* Functions of the patch that hotpatch runs in the target at four moments,
 * on one thread it borrows (every other thread keeps running), with every
 * signal blocked, for at most 5 seconds each: `int hook(void)`, declared
 * with the macros below, at most one of each kind.
 *   pre-apply    loaded, its references filled, before any jump: a result
 *                other than 0 cancels the apply, which unloads the patch
 *                and changes nothing else (exit status 4)
 *   post-apply   once every jump is in (other threads may already run the
 *                replacements: they must cope with what the hook prepares
 *                not being ready yet)
 *   pre-revert   before the jumps are taken out: other than 0 refuses the
 *                revert (exit status 4)
 *   post-revert  once the original code is back, before the patch is
 *                unloaded
 * A post hook's result other than 0 is a warning.  A cumulative patch's
 * takeover runs none of the older patches' revert hooks. */
#define HOTPATCH_HOOK_PRE_APPLY 1
#define HOTPATCH_HOOK_POST_APPLY 2
#define HOTPATCH_HOOK_PRE_REVERT 3
#define HOTPATCH_HOOK_POST_REVERT 4

struct hotpatch_hook {
	uint32_t abi_version;
	uint32_t record_size;
	uint32_t when;		/* HOTPATCH_HOOK_... */
	uint32_t reserved;
	int (*function)(void);
};

#define HOTPATCH_HOOK_(when, function)                                         \
	__attribute__((used, HOTPATCH_RETAIN_ section(".hotpatch.hooks"), aligned(8)))          \
	static const struct hotpatch_hook HOTPATCH_UNIQUE_(hotpatch_hook_) = { \
		HOTPATCH_ABI_VERSION, sizeof(struct hotpatch_hook), when, 0,   \
		function                                                       \
	}
#define HOTPATCH_PRE_APPLY(function) HOTPATCH_HOOK_(HOTPATCH_HOOK_PRE_APPLY, function)
#define HOTPATCH_POST_APPLY(function) HOTPATCH_HOOK_(HOTPATCH_HOOK_POST_APPLY, function)
#define HOTPATCH_PRE_REVERT(function) HOTPATCH_HOOK_(HOTPATCH_HOOK_PRE_REVERT, function)
#define HOTPATCH_POST_REVERT(function) HOTPATCH_HOOK_(HOTPATCH_HOOK_POST_REVERT, function)

/* Describe the patch; `key` and `value` are string literals. */
#define HOTPATCH_META(key, value)                                              \
	HOTPATCH_STATIC_ASSERT_(sizeof(key) <= 32, "hotpatch: key too long");  \
	HOTPATCH_STATIC_ASSERT_(sizeof(value) <= HOTPATCH_META_MAX,            \
				"hotpatch: value too long");                   \
	__attribute__((used, HOTPATCH_RETAIN_ section(".hotpatch.meta"), aligned(8)))           \
	static const struct hotpatch_meta HOTPATCH_UNIQUE_(hotpatch_meta_) = { \
		HOTPATCH_ABI_VERSION, sizeof(struct hotpatch_meta), key, value \
	}

/* The name `list` and `revert` know the patch by (default: the file name
 * without ".so"). Letters, digits, '.', '_' and '-'; at most 63 characters. */
#define HOTPATCH_NAME(name) HOTPATCH_META("name", name)

/* One line that `list` shows under the name. */
#define HOTPATCH_DESCRIPTION(text) HOTPATCH_META("description", text)

/* An identifier of what the patch fixes ("CVE-2026-12345"); repeatable. */
#define HOTPATCH_ID(id) HOTPATCH_META("id", id)

/* A cumulative patch: applied, it takes over every patch applied to the
 * process before it, in the same stop.  A function both replace goes from
 * the older replacement straight to this one; a function only older
 * patches replace gets its original code back; the older patches are then
 * unloaded, and reverting this one restores the original code of every
 * function it replaces.  `hotpatch build --cumulative` declares it. */
#define HOTPATCH_CUMULATIVE() HOTPATCH_META("cumulative", "yes")

#endif /* HOTPATCH_H */
