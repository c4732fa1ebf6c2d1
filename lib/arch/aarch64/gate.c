/* gate.c - arm64 has no gates yet (an apply without a global stop): with
 * HP_HAVE_GATES 0, transition.c never maps any, so every function here
 * answers "no" and nothing of a gate is ever written.  A port would need a
 * single-copy-atomic store of the entry's branch (one aligned 32-bit word,
 * which arm64 gives for a lone `b`) and a choose routine reading the thread
 * id with `svc` (gettid) as x86-64's does. */
#include <string.h>

#include "arch/arch.h"

void gate_page_code(uint64_t code_length, uint64_t limit, unsigned char code[HP_GATE_FIRST])
{
	(void)code_length, (void)limit;
	memset(code, 0, HP_GATE_FIRST);
}

uint64_t gate_phase(uint64_t page)
{
	return page;
}

uint64_t gate_table(uint64_t page, uint64_t code_length)
{
	return page + code_length;
}

bool gate_encode(uint64_t page, uint64_t gate, uint64_t replacement, const unsigned char *displaced,
		 size_t displaced_length, uint64_t site, unsigned char code[HP_GATE_SIZE])
{
	(void)page, (void)gate, (void)replacement, (void)displaced, (void)displaced_length,
		(void)site;
	memset(code, 0, HP_GATE_SIZE);
	return false;
}

bool gate_displaceable(const unsigned char *code, size_t length, uint64_t address,
		       size_t *displaced)
{
	(void)code, (void)length, (void)address;
	*displaced = 0;
	return false;
}

bool gate_entry_whole(const unsigned char *code, size_t length, uint64_t address)
{
	(void)code, (void)length, (void)address;
	return false;
}

bool gate_pun(const unsigned char *code, size_t length, uint64_t site, size_t *displaced,
	      uint64_t *landing)
{
	(void)code, (void)length, (void)site;
	*displaced = 0;
	*landing = 0;
	return false;
}

void gate_landing_encode(uint64_t gate, unsigned char code[HP_LANDING_SIZE])
{
	(void)gate;
	memset(code, 0, HP_LANDING_SIZE);
}

bool gate_landing_page_is_ours(const unsigned char page[HP_PAGE_SIZE])
{
	(void)page;
	return false;
}

bool gate_page_is_gate(const unsigned char bytes[HP_GATE_FIRST])
{
	(void)bytes;
	return false;
}

bool gate_rewind(uint64_t page, const uint64_t *entries, size_t count,
		 const uint64_t words[HP_GATE_REWIND_WORDS], struct hp_registers *registers)
{
	(void)page, (void)entries, (void)count, (void)words, (void)registers;
	return false;
}

bool gate_running_on(uint64_t page, size_t count, uint64_t pc, uint64_t *start, uint64_t *end)
{
	(void)page, (void)count, (void)pc, (void)start, (void)end;
	return false;
}
