/* hotpatch.h - what a patch author needs to write a hotpatch patch object.
 * The macros only emit fixed-size records into dedicated ELF sections; the
 * hotpatch tool reads them from the file before it touches any process.
 * This header depends on <stdint.h> only and works from C and C++. */
#ifndef HOTPATCH_H
#define HOTPATCH_H

#include <stdint.h>

#define HOTPATCH_ABI_VERSION 1

/* Longest object or function name, including the terminating NUL. */
#define HOTPATCH_NAME_MAX 128
/* Longest metadata value, including the terminating NUL. */
#define HOTPATCH_META_MAX 224

/* One replaced function.  `object` is empty for the main executable, else the
 * file name (or soname) of a library the target has loaded. */
struct hotpatch_replacement {
	uint32_t abi_version;
	uint32_t record_size;
	char object[HOTPATCH_NAME_MAX];
	char function[HOTPATCH_NAME_MAX];
	void (*replacement)(void);
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

#define HOTPATCH_CONCAT2_(a, b) a##b
#define HOTPATCH_CONCAT_(a, b) HOTPATCH_CONCAT2_(a, b)
#define HOTPATCH_UNIQUE_(prefix) HOTPATCH_CONCAT_(prefix, __LINE__)

/* Replace `function` of the library `object` ("libfoo.so.1"; "" for the
 * main executable) with `replacement`, a function of this patch with the same
 * signature.  `function` is a bare name: it is turned into a string. */
#define HOTPATCH_REPLACE_IN(object, function, replacement)                     \
	HOTPATCH_STATIC_ASSERT_(sizeof(object) <= HOTPATCH_NAME_MAX,           \
				"hotpatch: object name too long");             \
	HOTPATCH_STATIC_ASSERT_(sizeof(#function) <= HOTPATCH_NAME_MAX,        \
				"hotpatch: function name too long");           \
	__attribute__((used, section(".hotpatch"), aligned(8)))                \
	static const struct hotpatch_replacement HOTPATCH_UNIQUE_(             \
		hotpatch_replacement_) = {                                     \
		HOTPATCH_ABI_VERSION, sizeof(struct hotpatch_replacement),     \
		object, #function, (void (*)(void))(replacement)               \
	}

/* Replace `function` of the main executable. */
#define HOTPATCH_REPLACE(function, replacement)                                \
	HOTPATCH_REPLACE_IN("", function, replacement)

/* Describe the patch; `key` and `value` are string literals. */
#define HOTPATCH_META(key, value)                                              \
	HOTPATCH_STATIC_ASSERT_(sizeof(key) <= 32, "hotpatch: key too long");  \
	HOTPATCH_STATIC_ASSERT_(sizeof(value) <= HOTPATCH_META_MAX,            \
				"hotpatch: value too long");                   \
	__attribute__((used, section(".hotpatch.meta"), aligned(8)))           \
	static const struct hotpatch_meta HOTPATCH_UNIQUE_(hotpatch_meta_) = { \
		HOTPATCH_ABI_VERSION, sizeof(struct hotpatch_meta), key, value \
	}

/* The name `list` and `revert` know the patch by (default: the file name
 * without ".so"). Letters, digits, '.', '_' and '-'; at most 63 characters. */
#define HOTPATCH_NAME(name) HOTPATCH_META("name", name)

#endif /* HOTPATCH_H */
