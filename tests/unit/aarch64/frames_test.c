/* frames_test.c - arm64's stub page, return trampolines, self-restore and
 * signal frames, saved contexts, relocation kinds and the build's thunk, on
 * any host: the pure files of lib/arch/aarch64/ are linked in directly. */
#include <capstone/capstone.h>
#include <elf.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "arch/arch.h"

#define STUB ((uint64_t)0x7f0000000000)

static uint32_t word_at(const unsigned char *bytes, size_t offset)
{
	uint32_t word;

	memcpy(&word, bytes + offset, 4);
	return word;
}

static uint64_t quad_at(const unsigned char *bytes, size_t offset)
{
	uint64_t word;

	memcpy(&word, bytes + offset, 8);
	return word;
}

/* The mnemonic and operands capstone reads at `offset`, as "mnemonic ops". */
static const char *disassemble(const unsigned char *code, size_t offset, uint64_t address,
			       char *text, size_t size)
{
	cs_insn *instruction = NULL;
	csh handle;

	text[0] = '\0';
	if (code_disassembler(&handle) != CS_ERR_OK)
		return text;
	if (cs_disasm(handle, code + offset, 4, address + offset, 1, &instruction) == 1)
		snprintf(text, size, "%s %s", instruction->mnemonic, instruction->op_str);
	cs_free(instruction, 1);
	return text;
}

static void test_stub_code(void)
{
	unsigned char code[HP_STUB_CODE_SIZE];
	char text[256];

	stub_code_bytes(code);
	CHECK(!strcmp(disassemble(code, HP_STUB_CALL, STUB, text, sizeof(text)), "blr x16"),
	      "the call stub calls x16");
	CHECK(word_at(code, HP_STUB_CALL_SYNC - 4) == 0xd4000001 &&
		      word_at(code, HP_STUB_CALL_SYNC - 8) == 0xd2801588,
	      "its sync is getpid's svc, just before the sync point");
	CHECK(!strcmp(disassemble(code, HP_STUB_CALL + 4, STUB, text, sizeof(text)), "mov x19, x0"),
	      "the result is kept in x19");
	CHECK(word_at(code, HP_STUB_SYSCALL) == 0xd4000001, "the system-call stub starts with svc");
	CHECK(word_at(code, HP_STUB_SYSCALL_SYNC - 4) == 0xd4000001, "and syncs");
	CHECK(!strcmp(disassemble(code, HP_STUB_CALL_SYNC, STUB, text, sizeof(text)), "b #0x7f0000000040") &&
		      !strcmp(disassemble(code, HP_STUB_SYSCALL_SYNC, STUB, text, sizeof(text)),
			      "b #0x7f0000000040"),
	      "both go on to the restore code");
	CHECK(word_at(code, HP_STUB_RESTORE) == 0xd2801168 &&
		      word_at(code, HP_STUB_RESTORE + 4) == 0xd4000001,
	      "which is rt_sigreturn");
	CHECK(word_at(code, HP_STUB_RESTORE + 8) == 0xd4200000, "the rest is brk");
}

static void test_return_trampoline(void)
{
	uint64_t trampoline = STUB + 0xc00, slot = STUB + 0xe00;
	unsigned char code[0x20];
	char text[256], expected[64];
	struct hp_registers registers;
	const uint64_t pushed[HP_RETURN_TRAMPOLINE_PUSHED] = { 0x1111, 0x8888 };

	stub_return_trampoline(trampoline, slot, code, sizeof(code));
	CHECK(word_at(code, 0) == 0xa9bf23e0, "stp x0, x8, [sp, #-16]!");
	CHECK(word_at(code, HP_RETURN_TRAMPOLINE_SYNC - 4) == 0xd4000001 &&
		      word_at(code, HP_RETURN_TRAMPOLINE_SYNC - 8) == 0xd2801588,
	      "getpid's svc just before the sync point");
	CHECK(word_at(code, 0x0c) == 0xa8c123e0, "ldp x0, x8, [sp], #16");
	snprintf(expected, sizeof(expected), "ldr x16, #0x%llx", (unsigned long long)slot);
	CHECK(!strcmp(disassemble(code, 0x10, trampoline, text, sizeof(text)), expected),
	      "the literal load reads slot k");
	CHECK(word_at(code, 0x14) == 0xd65f0200, "ret x16: no BTI landing pad needed");
	CHECK(word_at(code, HP_RETURN_TRAMPOLINE_LENGTH) == 0xd4200000, "brk after it");
	CHECK(stub_return_trampoline_pushed_words(0) == 0 &&
		      stub_return_trampoline_pushed_words(4) == 2 &&
		      stub_return_trampoline_pushed_words(HP_RETURN_TRAMPOLINE_SYNC) == 2 &&
		      stub_return_trampoline_pushed_words(0x10) == 0 &&
		      stub_return_trampoline_pushed_words(HP_RETURN_TRAMPOLINE_LENGTH) == -1,
	      "two words pushed from the stp until the ldp");
	memset(&registers, 0, sizeof(registers));
	registers.user.regs[0] = 39;	/* getpid's result */
	stub_return_trampoline_land(&registers, HP_RETURN_TRAMPOLINE_SYNC, pushed);
	CHECK(registers.user.regs[0] == 0x1111 && registers.user.regs[8] == 0x8888,
	      "landing at the sync takes x0 and x8 back from the stack");
	stub_return_trampoline(trampoline, trampoline + (2u << 20), code, sizeof(code));
	CHECK(word_at(code, 0) == 0xd4200000, "a slot out of ldr's reach: brk all through");
}

static void test_frames(void)
{
	unsigned char fpsimd[HP_FPSIMD_SIZE];
	struct hp_registers registers;
	struct hp_extended_state extended = { fpsimd, sizeof(fpsimd), NULL, 0 };
	struct hp_thread_image thread = { &registers, &extended, 0x4000 };
	struct hp_frame_image frame = { 0 }, below = { 0 };
	bool out_of_memory = true;
	uint32_t fpsr = 0x08000010, fpcr = 0x00c00000;

	memset(&registers, 0, sizeof(registers));
	for (unsigned i = 0; i < 31; i++)
		registers.user.regs[i] = 0x1000 + i;
	registers.user.sp = 0x7ffff0001238;
	registers.user.pc = 0x400abc;
	registers.user.pstate = 0x60000000;
	for (unsigned i = 0; i < 512; i++)
		fpsimd[i] = (unsigned char)i;
	memcpy(fpsimd + 512, &fpsr, 4);
	memcpy(fpsimd + 516, &fpcr, 4);
	CHECK(restore_frame_build(&thread, 0, &frame, &out_of_memory) && !out_of_memory,
	      "a restore frame is built");
	CHECK(frame.address % 16 == 0 && frame.address + frame.length <= registers.user.sp - 128,
	      "16-aligned, below the SP and a margin");
	CHECK(frame.length == 4688, "a whole struct rt_sigframe");
	CHECK(quad_at(frame.bytes, 168) == 0x4000, "the signal mask in uc_sigmask");
	CHECK(quad_at(frame.bytes, 312) == 0x1000 && quad_at(frame.bytes, 312 + 30 * 8) == 0x101e,
	      "x0-x30 in the sigcontext");
	CHECK(quad_at(frame.bytes, 560) == registers.user.sp && quad_at(frame.bytes, 568) == 0x400abc &&
		      quad_at(frame.bytes, 576) == 0x60000000,
	      "sp, pc, pstate");
	CHECK(word_at(frame.bytes, 592) == 0x46508001 && word_at(frame.bytes, 596) == 528,
	      "an fpsimd_context record");
	CHECK(word_at(frame.bytes, 600) == fpsr && word_at(frame.bytes, 604) == fpcr,
	      "fpsr and fpcr");
	CHECK(memcmp(frame.bytes + 608, fpsimd, 512) == 0, "v0-v31");
	CHECK(quad_at(frame.bytes, 1120) == 0, "the end record");
	CHECK(word_at(frame.bytes, 152) == 3, "an ss_flags rt_sigreturn ignores");
	CHECK(restore_frame_build(&thread, frame.address, &below, &out_of_memory) &&
		      below.address + below.length <= frame.address,
	      "a frame below another");
	free(below.bytes);
	below.bytes = NULL;
	CHECK(!signal_frame_build(&thread, 0, &below, &out_of_memory) && !out_of_memory,
	      "no signal frame without a restorer");
	CHECK(signal_frame_build(&thread, 0x7fff00001000, &below, &out_of_memory) &&
		      below.length == frame.length && below.address == frame.address &&
		      memcmp(below.bytes, frame.bytes, frame.length) == 0,
	      "the signal frame is the same frame");
	free(below.bytes);
	free(frame.bytes);
	extended.size = 0;
	CHECK(!restore_frame_build(&thread, 0, &frame, &out_of_memory) && !out_of_memory,
	      "no frame without the FP/SIMD state");
}

static void test_saved_context(void)
{
	unsigned char head[HP_CONTEXT_HEAD] = { 0 };
	struct hp_saved_context context;
	uint64_t stack = 0x7f1234560000, size = 65536, sp = 0x7f123456fe00, pc = 0x401234;
	uint32_t mark[2] = { 0x46508001, 528 };

	memcpy(head + 16, &stack, 8);
	memcpy(head + 32, &size, 8);
	memcpy(head + 432, &sp, 8);
	memcpy(head + 440, &pc, 8);
	CHECK(!saved_context_read(head, 0x1000, &context), "no fpsimd record, no context");
	memcpy(head + HP_CONTEXT_MARK, mark, sizeof(mark));
	CHECK(saved_context_read(head, 0x1000, &context), "getcontext's fpsimd record marks it");
	CHECK(context.pc == pc && context.sp == sp, "pc and sp");
	CHECK(context.stack == stack && context.stack_size == size, "the stack makecontext gave");
	CHECK(saved_context_is_mark(0x0000021046508001, 0) && !saved_context_is_mark(0x46508001, 0),
	      "the mark is the magic and the size");
}

static void test_relocations(void)
{
	unsigned char field[8];

	CHECK(relocation_kind(R_AARCH64_RELATIVE) == HP_RELOCATION_RELATIVE, "RELATIVE");
	CHECK(relocation_kind(R_AARCH64_ABS64) == HP_RELOCATION_ABSOLUTE64, "ABS64");
	CHECK(relocation_kind(R_AARCH64_ABS32) == HP_RELOCATION_ABSOLUTE32, "ABS32");
	CHECK(relocation_kind(R_AARCH64_GLOB_DAT) == HP_RELOCATION_GLOBAL_DATA, "GLOB_DAT");
	CHECK(relocation_kind(R_AARCH64_JUMP_SLOT) == HP_RELOCATION_JUMP_SLOT, "JUMP_SLOT");
	CHECK(relocation_kind(R_AARCH64_TLS_DTPMOD) == HP_RELOCATION_TLS_MODULE, "TLS_DTPMOD");
	CHECK(relocation_kind(R_AARCH64_TLS_DTPREL) == HP_RELOCATION_TLS_OFFSET, "TLS_DTPREL");
	CHECK(relocation_kind(R_AARCH64_TLS_TPREL) == HP_RELOCATION_TLS_STATIC, "TLS_TPREL");
	CHECK(relocation_kind(R_AARCH64_TLSIE_ADR_GOTTPREL_PAGE21) ==
			      HP_RELOCATION_TLS_STATIC_GOT &&
		      relocation_kind(R_AARCH64_TLSIE_LD64_GOTTPREL_LO12_NC) ==
			      HP_RELOCATION_TLS_STATIC_GOT,
	      "initial-exec goes through a GOT entry");
	CHECK(relocation_kind(R_AARCH64_TLSLE_ADD_TPREL_HI12) == HP_RELOCATION_OTHER,
	      "local-exec is refused");
	CHECK(relocation_kind(R_AARCH64_NONE) == HP_RELOCATION_NONE, "NONE");
	CHECK(relocation_kind(R_AARCH64_CALL26) == HP_RELOCATION_CALL &&
		      relocation_kind(R_AARCH64_JUMP26) == HP_RELOCATION_CALL,
	      "bl and b are calls, which the patch link sends through its PLT");
	CHECK(relocation_type(HP_RELOCATION_ABSOLUTE64) == R_AARCH64_ABS64 &&
		      relocation_type(HP_RELOCATION_NONE) == R_AARCH64_NONE,
	      "the types the build writes");
	CHECK(relocation_tls_static_value(0x10, 0x20) == 0x30,
	      "variant I: the block above the thread pointer");
	CHECK(relocation_field_size(R_AARCH64_TLSLE_ADD_TPREL_HI12) == 0 &&
		      !relocation_tls_static_field(R_AARCH64_TLSLE_ADD_TPREL_HI12, 0x10, field),
	      "no field to fill");
}

static void test_thunk(void)
{
	char *text = NULL;
	size_t size = 0;
	FILE *file = open_memstream(&text, &size);

	if (!file) {
		CHECK(false, "a memory stream");
		return;
	}
	code_write_thunk(file, "fixed_thunk", "fixed_code", HP_RESULT_INTEGER);
	fclose(file);
	CHECK(strstr(text, "fixed_thunk:") && strstr(text, "hint #34"), "a bti c landing pad");
	CHECK(strstr(text, "bl fixed_code"), "it calls the fixed code");
	CHECK(strstr(text, "str x1, ") && strstr(text, "str x18, ") && strstr(text, "ldr x17, "),
	      "x1-x18 kept");
	CHECK(!strstr(text, "str x0, ") && !strstr(text, "ldr x0, "), "not the result's x0");
	CHECK(strstr(text, "str q0, ") && strstr(text, "str q31, ") && !strstr(text, "str q8, "),
	      "q0-q7 and q16-q31 kept, not q8-q15");
	CHECK(strstr(text, ".cfi_def_cfa_register 29"), "unwindable");
	free(text);
}

int main(void)
{
	test_stub_code();
	test_return_trampoline();
	test_frames();
	test_saved_context();
	test_relocations();
	test_thunk();
	return check_report();
}
