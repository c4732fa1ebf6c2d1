/* build_header.c - the text of <hotpatch.h> as this hotpatch was built with
 * it, kept inside the program.  `hotpatch build` compiles its records with
 * this very copy, so a generated patch always has the record layout (ABI)
 * of the hotpatch that made it, whatever header is installed, and the build
 * works from the source tree and after `make install` alike.  The assembler
 * reads the file at compile time; the Makefile compiles from the top of the
 * tree, where this path is valid. */
#include "build/build.h"

__asm__(".section .rodata\n"
	".globl build_header_text\n"
	".hidden build_header_text\n"
	".type build_header_text, @object\n"
	"build_header_text:\n"
	".incbin \"lib/include/hotpatch.h\"\n"
	".byte 0\n"
	".size build_header_text, . - build_header_text\n"
	".previous\n");
