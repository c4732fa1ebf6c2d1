/* gate_rewind.c - threads stopped in the gates of a patch applied without a
 * global stop (transition.c), before any of their function ran, put back
 * at the function's entry, for any command that stops threads: a gate's
 * caller is in no function yet, and the gates may be taken out from under
 * it.  Those past that point, running the function's moved prologue, are
 * stepped on into the function itself.  It reads the records of the
 * state, never changes them. */
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

/* A thread stopped in a gate before any of its function ran goes back to
 * the function's entry; *seen looks at it from its caller. */
static int rewind_to_entry(struct hp_session *session, const struct hp_state_patch *record,
			   const uint64_t *entries, size_t count, struct hp_thread *thread,
			   struct hp_thread *seen, struct hp_error *error)
{
	uint64_t words[HP_GATE_REWIND_WORDS], sp = registers_sp(&thread->regs), back = 0;
	struct hp_registers registers = thread->regs;
	struct hp_error ignored = { 0 };

	if (target_memory_read(&session->memory, sp - HP_GATE_REWIND_BELOW, words, sizeof(words),
			       &ignored) != HP_OK ||
	    !gate_rewind(record->pages[0], entries, count, words, &registers))
		return HP_OK;	/* in the way, for now */
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
	if (!record)
		return HP_OK;
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
