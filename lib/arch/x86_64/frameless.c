/* frameless.c - x86-64 needs no frameless code: the vDSO and the PLT carry
 * unwind information, and a return address is always on the stack, where
 * the unwinder finds it through that information. */
#include "arch/arch.h"

bool code_frameless(const unsigned char *code, size_t size, uint64_t address)
{
	(void)code;
	(void)size;
	(void)address;
	return false;
}

bool code_is_call_stub(const unsigned char bytes[HP_CALL_STUB_SIZE])
{
	(void)bytes;
	return false;
}
