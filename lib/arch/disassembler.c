/* disassembler.c - capstone for this processor (arch_types.h names it),
 * one handle for the whole process: a new handle costs about 8 us at its
 * first instruction with details on (capstone builds its instruction-id
 * cache then), and an apply of a thousand functions opened six thousand.
 * Its users never close it; the engine runs on one thread at a time. */
#include "arch/arch.h"

cs_err code_disassembler(csh *handle)
{
	static csh shared;
	static cs_err opened = CS_ERR_OK;

	if (!shared && opened == CS_ERR_OK) {
		opened = cs_open(HP_CAPSTONE_ARCH, HP_CAPSTONE_MODE, &shared);
		if (opened == CS_ERR_OK)
			opened = cs_option(shared, CS_OPT_DETAIL, CS_OPT_ON);
		if (opened != CS_ERR_OK && shared)
			cs_close(&shared);
	}
	*handle = shared;
	return shared ? CS_ERR_OK : opened;
}
