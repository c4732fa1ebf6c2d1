/* syscall_code.c - the x86-64 code around system calls that the engine
 * looks for in a target: the syscall instruction itself, libc's
 * __restore_rt and what libc's syscall() does after its syscall.  Pure:
 * it compares bytes handed in. */
#include <string.h>

#include "arch/arch.h"

static const unsigned char syscall_instruction[HP_SYSCALL_INSTRUCTION_SIZE] = { 0x0f, 0x05 };

bool code_is_syscall(const unsigned char bytes[HP_SYSCALL_INSTRUCTION_SIZE])
{
	return memcmp(bytes, syscall_instruction, sizeof(syscall_instruction)) == 0;
}

/* mov $15,%rax; syscall (rt_sigreturn) */
size_t code_signal_return(const unsigned char **bytes)
{
	static const unsigned char restore_rt[] = { 0x48, 0xc7, 0xc0, 0x0f, 0x00, 0x00, 0x00, 0x0f, 0x05 };

	*bytes = restore_rt;
	return sizeof(restore_rt);
}

/* cmp $-4095,%rax; jae +1; ret */
size_t code_syscall_return(const unsigned char **bytes)
{
	static const unsigned char after_syscall[] = { 0x48, 0x3d, 0x01, 0xf0, 0xff, 0xff, 0x73, 0x01, 0xc3 };

	*bytes = after_syscall;
	return sizeof(after_syscall);
}
