/* gate_rewind.c - threads stopped in the gates of a patch applied without a
 * global stop (transition.c), before any of their function ran, put back
 * at the function's entry, for any command that stops threads: a gate's
 * caller is in no function yet, and the gates may be taken out from under
 * it.  Those past that point, running the function's moved prologue, are
 * stepped on into the function itself; those on a punned jump's landing
 * (transition.c) are put back at its entry too.  It reads the records of
 * the state, never changes them. */
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
		    pc >= record->pages[0] + patch_state_code_length(record, 0))
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
			    uint64_t entries[HP_GATE_FUNCTIONS_MAX])
{
	size_t count = record->function_count;

	if (count > HP_GATE_FUNCTIONS_MAX)
		count = HP_GATE_FUNCTIONS_MAX;
	for (size_t i = 0; i < count; i++)
		entries[i] = record->functions[i].jump_address;
	return count;
}

/* The stopped thread given `registers`, at its function's entry; *seen
 * looks at it from its caller, for it is in no function yet. */
static int put_at_entry(struct hp_session *session, struct hp_thread *thread,
			struct hp_registers *registers, struct hp_thread *seen,
			struct hp_error *error)
{
	struct hp_error ignored = { 0 };
	uint64_t sp = registers_sp(registers), back = 0;

	registers_forget_syscall(registers);
	if (registers_write(thread->tid, registers) != 0) {
		error->tid = thread->tid;
		return hp_fail_errno(error, HP_FAILED, "cannot set the registers of thread %d",
				     (int)thread->tid);
	}
	thread->regs = *registers;
	*seen = *thread;
	if (target_memory_read(&session->memory, sp, &back, sizeof(back), &ignored) == HP_OK) {
		registers_set_pc(&seen->regs, back);
		registers_set_sp(&seen->regs, sp + sizeof(back));
	}
	return HP_OK;
}

/* A thread stopped in a gate before any of its function ran goes back to
 * the function's entry. */
static int rewind_to_entry(struct hp_session *session, const struct hp_state_patch *record,
			   const uint64_t *entries, size_t count, struct hp_thread *thread,
			   struct hp_thread *seen, struct hp_error *error)
{
	uint64_t words[HP_GATE_REWIND_WORDS], sp = registers_sp(&thread->regs);
	struct hp_registers registers = thread->regs;
	struct hp_error ignored = { 0 };

	if (target_memory_read(&session->memory, sp - HP_GATE_REWIND_BELOW, words, sizeof(words),
			       &ignored) != HP_OK ||
	    !gate_rewind(record->pages[0], entries, count, words, &registers))
		return HP_OK;	/* in the way, for now */
	return put_at_entry(session, thread, &registers, seen, error);
}

/* The entry whose punned jump lands at `pc` (a page of a gated record
 * beside its gates), or 0. */
static uint64_t landing_entry(struct hp_session *session, uint64_t pc)
{
	for (size_t i = 0; i < session->state.patch_count; i++) {
		const struct hp_state_patch *record = session->state.patches[i];
		bool on_page = false;

		for (uint32_t p = 1; record->gate_pages && p < record->page_count; p++)
			on_page = on_page || (pc >= record->pages[p] &&
					      pc < record->pages[p] + HP_PAGE_SIZE);
		for (uint32_t f = 0; on_page && f < record->function_count; f++) {
			const struct hp_state_function *function = &record->functions[f];
			unsigned char jump[HP_JUMP_SIZE];
			struct hp_error ignored = { 0 };
			uint64_t to = 0;

			if (function->length != 1)
				continue;
			if (target_memory_read(&session->memory, function->jump_address, jump,
					       sizeof(jump), &ignored) != HP_OK) {
				hp_error_release(&ignored);
				continue;
			}
			if (code_decode_jump(function->jump_address, jump, &to) && to == pc)
				return function->jump_address;
		}
	}
	return 0;
}

/* A thread on a landing ran nothing of its function: back to its entry. */
static int rewind_from_landing(struct hp_session *session, uint64_t entry,
			       struct hp_thread *thread, struct hp_thread *seen,
			       struct hp_error *error)
{
	struct hp_registers registers = thread->regs;

	registers_set_pc(&registers, entry);
	return put_at_entry(session, thread, &registers, seen, error);
}

int gates_rewind(struct hp_session *session, pid_t tid, struct hp_thread *seen,
		 struct hp_error *error)
{
	uint64_t entries[HP_GATE_FUNCTIONS_MAX], start = 0, end = 0;
	struct hp_thread *thread = threads_find(&session->threads, tid);
	const struct hp_state_patch *record = NULL;
	size_t count;
	int status;

	memset(seen, 0, sizeof(*seen));
	if (!thread)
		return HP_OK;
	*seen = *thread;
	record = gates_at(session, registers_pc(&thread->regs));
	if (!record) {
		uint64_t entry = landing_entry(session, registers_pc(&thread->regs));

		return entry ? rewind_from_landing(session, entry, thread, seen, error) : HP_OK;
	}
	count = gated_entries(record, entries);
	if (!gate_running_on(record->pages[0], count, registers_pc(&thread->regs), &start, &end))
		return rewind_to_entry(session, record, entries, count, thread, seen, error);
	/* Running a moved prologue on: a few steps take it into its function,
	 * where it can be looked at (and moved) as any other thread. */
	status = thread_step_out(&session->threads, tid, start, end, HP_GATE_STEPS,
				 session->deadline + 1, error);
	thread = threads_find(&session->threads, tid);
	memset(seen, 0, sizeof(*seen));
	if (thread)
		*seen = *thread;
	return status;
}
