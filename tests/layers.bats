#!/usr/bin/env bats
# layers.bats - the engine's subsystems (docs/ARCHITECTURE.md) depend on each
# other in one direction only: a file includes the headers of its own folder
# and of the folders below it, never above; cmd/ sees engine.h alone.  It
# reads the sources; it runs nothing.
bats_require_minimum_version 1.5.0

setup() {
	HP_SOURCE=${HP_SOURCE:-$(cd "$BATS_TEST_DIRNAME/.." && pwd)}
	cd "$HP_SOURCE"
}

# The folders each folder may include from (besides itself and engine.h).
allowed() {
	case $1 in
	common) echo "" ;;
	arch) echo "common" ;;
	symbols) echo "common arch" ;;
	patch) echo "common arch symbols" ;;
	trust) echo "common arch symbols patch" ;;
	runtime) echo "common arch symbols patch trust" ;;
	machine) echo "common arch symbols patch trust runtime" ;;
	build) echo "common arch symbols patch" ;;
	*) echo "UNKNOWN" ;;
	esac
}

@test "every engine file lives in a subsystem folder" {
	run -0 find lib -maxdepth 1 -name '*.c'
	[[ -z $output ]] || { echo "files outside the subsystems: $output"; false; }
	for folder in lib/*/; do
		folder=$(basename "$folder")
		[[ $folder == include ]] && continue
		[[ $(allowed "$folder") != UNKNOWN ]] || { echo "lib/$folder is not in the layer table"; false; }
	done
}

@test "no subsystem includes a header of a subsystem above it" {
	local file folder included target bad=""
	while IFS= read -r file; do
		folder=${file#lib/}
		folder=${folder%%/*}
		while IFS= read -r included; do
			target=${included%%/*}
			[[ $included == */* ]] || continue	# engine.h, hotpatch.h, system headers
			[[ $target == "$folder" ]] && continue
			[[ " $(allowed "$folder") " == *" $target "* ]] ||
				bad+="$file includes $included"$'\n'
		done < <(sed -nE 's/^#include "([^"]+)".*/\1/p' "$file")
	done < <(find lib -path lib/include -prune -o \( -name '*.c' -o -name '*.h' \) -print)
	[[ -z $bad ]] || { printf '%s' "$bad"; false; }
}

# What names one processor: its relocation types, libunwind's and capstone's
# names for it, its register file and the ptrace requests bound to it.
@test "only lib/arch/ speaks the processor" {
	local names='R_X86_64_|UNW_X86_64_|user_regs_struct|CS_ARCH_X86|CS_MODE_64|orig_rax|PTRACE_GETREGS\b|PTRACE_SETREGS\b|EM_X86_64|NT_X86_XSTATE|sys/user\.h|_Ux86_64_|X86_(OP|GRP|INS|REG)_'
	names+='|R_AARCH64_|UNW_AARCH64_|user_pt_regs|user_fpsimd_state|CS_ARCH_ARM64|orig_x0|EM_AARCH64|NT_ARM_|NT_PRFPREG|asm/ptrace\.h|_Uaarch64_|ARM64_(OP|GRP|INS|REG)_'
	run grep -rnE "$names" lib --exclude-dir=arch
	[[ $status -eq 1 ]] || { echo "outside lib/arch/: $output"; false; }
}

@test "the loader: its preloaded half includes only the outcome table's layout, its working half engine.h alone" {
	# preload.c links libc alone: the one header of ours it may take is a
	# layout of plain types that itself includes nothing of ours.
	run -0 grep -hE '^#include "' loader/preload.c
	[[ $output == '#include "common/loader_outcomes.h"' ]] || { echo "loader/preload.c includes: $output"; false; }
	run grep -hE '^#include "' lib/common/loader_outcomes.h
	[[ $status -eq 1 ]] || { echo "lib/common/loader_outcomes.h includes: $output"; false; }
	run -0 grep -hE '^#include "' loader/in_process.c
	[[ $output == '#include "engine.h"' ]] || { echo "loader/in_process.c includes: $output"; false; }
}

@test "the front end includes engine.h and its own header, nothing of the engine's inside" {
	run -0 grep -hE '^#include "' cmd/*.c cmd/*.h
	bad=$(grep -vE '"(engine|cmd)\.h"' <<<"$output" || true)
	[[ -z $bad ]] || { echo "cmd/ includes: $bad"; false; }
}

# lib/runtime/'s headers stack: each file's functions are declared in one of
# them (a "---- FILE.c: ... ----" section) and it includes none above that.
@test "inside lib/runtime/, no file includes a header above the one that declares it" {
	local layers=(target threads state session) bad="" file level above header
	for level in "${!layers[@]}"; do
		for file in $(sed -nE 's/^\/\* ---- ([a-z_0-9]+\.c):.*/\1/p' \
			"lib/runtime/${layers[level]}.h"); do
			[[ -f lib/runtime/$file ]] || { bad+="${layers[level]}.h names $file, not in lib/runtime/"$'\n'; continue; }
			for above in "${layers[@]:level+1}"; do
				grep -q "^#include \"runtime/$above.h\"" "lib/runtime/$file" &&
					bad+="lib/runtime/$file (${layers[level]}.h) includes runtime/$above.h"$'\n'
			done
		done
	done
	[[ -z $bad ]] || { printf '%s' "$bad"; false; }
}

# No two files of lib/ call each other, even through others: what both need
# lives in the lower one or in a file of its own (scripts/check-cycles).
@test "no file of the engine calls a file that calls it back" {
	run -0 scripts/check-cycles
	[[ -z $output ]]
}

@test "check-cycles finds a call cycle between two files" {
	local tree=$BATS_TEST_TMPDIR/tree
	mkdir -p "$tree/lib/one"
	printf 'int lower(void);\nint upper(void)\n{\n\treturn lower();\n}\n' >"$tree/lib/one/upper.c"
	printf 'int upper(void);\nint lower(void)\n{\n\treturn 1;\n}\n' >"$tree/lib/one/lower.c"
	run -0 scripts/check-cycles "$tree"
	printf 'int upper(void);\nint lower(void)\n{\n\treturn upper() + 1;\n}\n' >"$tree/lib/one/lower.c"
	run -1 scripts/check-cycles "$tree"
	[[ $output == *"lib/one/lower.c -> lib/one/upper.c (upper)"* ]]
	[[ $output == *"lib/one/upper.c -> lib/one/lower.c (lower)"* ]]
}
