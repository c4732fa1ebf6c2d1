/* gate_rewind.c - threads stopped in the gates of a patch applied without a
 * global stop (transition.c), before any of their function ran, put back
 * at the function's entry, for any command that stops threads: a gate's
 * caller is in no function yet, and the gates may be taken out from under
 * it.  It reads the records of the state, never changes them. */
#include <string.h>

#include "runtime/session.h"
#include "arch/arch.h"
#include "common/base.h"

/* The gated record whose gate page holds `pc`, checked to be a gate page. */
static const struct hp_state_patch *gates_at(struct hp_session *session, uint64_t pc)
{
	unsigned char bytes[HP_GATE_FIRST];
	struct hp_error ignored = { 0 };

	for (size_t i = 0; i < session->state.patch_count; i++) {
		const struct hp_state_patch *record = session->state.patches[i];

		if (!record->gate_pages || !record->page_count || pc < record->pages[0] ||
		    pc >= record->pages[0] + HP_PAGE_SIZE)
			continue;
		if (target_memory_read(&session->memory, record->pages[0], bytes, sizeof(bytes),
				       &ignored) != HP_OK ||
		    !gate_page_is_gate(bytes))
			return NULL;
		return record;
	}
	return NULL;
}

/* Where a record's functions are entered, one per gate. */
static size_t gated_entries(const struct hp_state_patch *record,
			    uint64_t entries[(HP_PAGE_SIZE - HP_GATE_FIRST) / HP_GATE_SIZE])
{
	size_t count = record->function_count;

	if (count > (HP_PAGE_SIZE - HP_GATE_FIRST) / HP_GATE_SIZE)
		count = (HP_PAGE_SIZE - HP_GATE_FIRST) / HP_GATE_SIZE;
	for (size_t i = 0; i < count; i++)
		entries[i] = record->functions[i].jump_address;
	return count;
}

int gates_rewind(struct hp_session *session, struct hp_thread *thread, struct hp_thread *seen,
		 struct hp_error *error)
{
	uint64_t entries[(HP_PAGE_SIZE - HP_GATE_FIRST) / HP_GATE_SIZE], words[HP_GATE_REWIND_WORDS];
	uint64_t sp = registers_sp(&thread->regs), back = 0;
	const struct hp_state_patch *record = gates_at(session, registers_pc(&thread->regs));
	struct hp_registers registers = thread->regs;
	struct hp_error ignored = { 0 };
	size_t count;

	*seen = *thread;
	if (!record)
		return HP_OK;
	count = gated_entries(record, entries);
	if (target_memory_read(&session->memory, sp - HP_GATE_REWIND_BELOW, words, sizeof(words),
			       &ignored) != HP_OK ||
	    !gate_rewind(record->pages[0], entries, count, words, &registers))
		return HP_OK;	/* running on: in the way, for now */
	registers_forget_syscall(&registers);
	if (registers_write(thread->tid, &registers) != 0) {
		error->tid = thread->tid;
		return hp_fail_errno(error, HP_FAILED, "cannot set the registers of thread %d",
				     (int)thread->tid);
	}
	thread->regs = registers;
	*seen = *thread;
	/* At its function's entry it is in no function yet: seen from its caller. */
	sp = registers_sp(&registers);
	if (target_memory_read(&session->memory, sp, &back, sizeof(back), &ignored) == HP_OK) {
		registers_set_pc(&seen->regs, back);
		registers_set_sp(&seen->regs, sp + sizeof(back));
	}
	return HP_OK;
}
