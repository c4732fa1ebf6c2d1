/* syscall_code.c - the arm64 code around system calls that the engine
 * looks for in a target: `svc #0` itself, the kernel's signal-return code
 * (the vDSO's __kernel_rt_sigreturn: glibc has none of its own on arm64)
 * and what libc's syscall() does after its `svc`.  Pure: it compares bytes
 * handed in.  Words are little-endian, as arm64 Linux runs. */
#include <string.h>

#include "arch/arch.h"

static const unsigned char svc[HP_SYSCALL_INSTRUCTION_SIZE] = { 0x01, 0x00, 0x00, 0xd4 };

bool code_is_syscall(const unsigned char bytes[HP_SYSCALL_INSTRUCTION_SIZE])
{
	return memcmp(bytes, svc, sizeof(svc)) == 0;
}

/* mov x8, #139 (rt_sigreturn); svc #0 */
size_t code_signal_return(const unsigned char **bytes)
{
	static const unsigned char sigreturn[] = { 0x68, 0x11, 0x80, 0xd2, 0x01, 0x00, 0x00, 0xd4 };

	*bytes = sigreturn;
	return sizeof(sigreturn);
}

/* cmn x0, #4095; b.cs +8; ret (glibc 2.36's syscall()) */
size_t code_syscall_return(const unsigned char **bytes)
{
	static const unsigned char after_svc[] = { 0x1f, 0xfc, 0x3f, 0xb1, 0x42, 0x00, 0x00, 0x54,
						   0xc0, 0x03, 0x5f, 0xd6 };

	*bytes = after_svc;
	return sizeof(after_svc);
}
