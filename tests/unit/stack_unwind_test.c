/* stack_unwind_test.c - the consistency check's parts on a real process: the
 * sorted, merged ranges, and unwinding a stopped child through our own
 * libunwind accessors, down to which frame is in a range and where the
 * outermost such frame returns. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "common/proc_maps.h"
#include "runtime/threads.h"

/* Each level calls the next; the last one sleeps for ever.  The volatile
 * counters keep the calls from becoming tail calls. */
static volatile int depth;

__attribute__((noipa)) static void level_one(void)
{
	depth = 1;
	for (;;)
		pause();
}

__attribute__((noipa)) static void level_two(void)
{
	level_one();
	depth = 2;
}

__attribute__((noipa)) static void level_three(void)
{
	level_two();
	depth = 3;
}

/* Reads the clock for ever: nearly all its time is in the vDSO. */
__attribute__((noipa)) static void read_the_clock(void)
{
	struct timespec now;

	for (;;)
		clock_gettime(CLOCK_MONOTONIC, &now);
}

static void test_ranges(void);
static pid_t start_child(void);

/* A function's extent: up to the next of the functions we know (their
 * order in memory is the compiler's), at most 4 KiB. */
static struct hp_range extent(uint64_t start, const char *label)
{
	const uint64_t known[] = {
		(uint64_t)(uintptr_t)level_one,	  (uint64_t)(uintptr_t)level_two,
		(uint64_t)(uintptr_t)level_three, (uint64_t)(uintptr_t)test_ranges,
		(uint64_t)(uintptr_t)start_child, (uint64_t)(uintptr_t)extent,
		(uint64_t)(uintptr_t)read_the_clock,
	};
	uint64_t end = start + 4096;

	for (size_t i = 0; i < HP_ARRAY_SIZE(known); i++)
		if (known[i] > start && known[i] < end)
			end = known[i];
	return (struct hp_range){ start, end, label };
}

static bool inside(uint64_t address, uint64_t function)
{
	struct hp_range range = extent(function, "");

	return address >= range.start && address < range.end;
}

static void test_ranges(void)
{
	struct hp_stack_checker *checker = NULL;
	struct hp_error error = { 0 };
	const struct hp_range ranges[] = {
		{ 0x5000, 0x5100, "e" }, { 0x1000, 0x1100, "a" }, { 0x1080, 0x1200, "b" },
		{ 0x3000, 0x3010, "c" }, { 0x3010, 0x3020, "d" },
	};

	CHECK(stack_checker_create(getpid(), &checker, &error) == HP_OK, "checker for ourselves");
	if (!checker)
		return;
	CHECK(stack_checker_set_ranges(checker, ranges, HP_ARRAY_SIZE(ranges), &error) == HP_OK,
	      "ranges accepted");
	CHECK(stack_checker_range_at(checker, 0x0fff) == NULL, "below the first range");
	CHECK(stack_checker_range_at(checker, 0x1000) != NULL, "start of a range is in it");
	CHECK(stack_checker_range_at(checker, 0x11ff) != NULL, "overlapping ranges merge");
	CHECK(stack_checker_range_at(checker, 0x1200) == NULL, "the end is outside");
	CHECK(stack_checker_range_at(checker, 0x3015) != NULL &&
		      strcmp(stack_checker_range_at(checker, 0x3015)->label, "d") == 0,
	      "touching ranges keep their own labels");
	CHECK(stack_checker_range_at(checker, 0x50ff) != NULL, "unsorted input is sorted");
	CHECK(stack_checker_range_at(checker, 0x4000) == NULL, "a gap between ranges");
	stack_checker_release(checker);
}

static pid_t start_child(void)
{
	pid_t child = fork();

	if (child == 0) {
		level_three();
		_exit(0);
	}
	usleep(50 * 1000);
	return child;
}

static void test_unwind_child(void)
{
	struct hp_stack_checker *checker = NULL;
	struct hp_error error = { 0 };
	struct hp_thread thread = { 0 };
	const struct hp_stack *stack;
	struct hp_blocker blocker;
	struct hp_range ranges[2];
	bool saw_one = false, saw_three = false;
	int status;
	pid_t child = start_child();

	CHECK(child > 0, "child started");
	if (child <= 0)
		return;
	CHECK(ptrace(PTRACE_SEIZE, child, NULL, NULL) == 0, "seized the child");
	CHECK(ptrace(PTRACE_INTERRUPT, child, NULL, NULL) == 0, "interrupted it");
	CHECK(waitpid(child, &status, __WALL) == child && WIFSTOPPED(status), "it stopped");
	thread.tid = child;
	thread.stopped = true;
	CHECK(registers_read(child, &thread.regs) == 0, "read its registers");
	CHECK(stack_checker_create(child, &checker, &error) == HP_OK, "checker for the child");
	if (!checker)
		goto out;
	stack_checker_new_stop(checker);
	stack = stack_checker_unwind(checker, &thread);
	CHECK(stack->complete, "the stack unwinds to its end");
	CHECK(stack->count >= 5, "pause, level_one, level_two, level_three, main at least");
	for (size_t i = 1; i < stack->count; i++) {
		uint64_t call = stack->frames[i].ip - 1;

		saw_one |= inside(call, (uint64_t)(uintptr_t)level_one);
		saw_three |= inside(call, (uint64_t)(uintptr_t)level_three);
	}
	CHECK(saw_one && saw_three, "frames in level_one and level_three");

	/* level_one and level_two are "being replaced": the thread is in the
	 * way, and the outermost frame in them returns into level_three. */
	ranges[0] = extent((uint64_t)(uintptr_t)level_one, "level_one");
	ranges[1] = extent((uint64_t)(uintptr_t)level_two, "level_two");
	CHECK(stack_checker_set_ranges(checker, ranges, 2, &error) == HP_OK, "ranges set");
	CHECK(stack_check_thread(checker, &thread, false, &blocker), "the thread is in the way");
	CHECK(blocker.range && strcmp(blocker.range->label, "level_one") == 0,
	      "named by its innermost replaced frame");
	CHECK(inside(blocker.return_ip - 1, (uint64_t)(uintptr_t)level_three),
	      "the outermost replaced frame returns into level_three");
	CHECK(blocker.return_sp > registers_sp(&thread.regs), "and with a higher stack pointer");
	errno = 0;
	CHECK(blocker.return_slot &&
		      (uint64_t)ptrace(PTRACE_PEEKDATA, child, (void *)(uintptr_t)blocker.return_slot,
				       NULL) == blocker.return_ip && errno == 0,
	      "the return address is stored where the unwinder says (a thread is moved there)");
	CHECK(!blocker.unreliable, "a complete stack is reliable");

	ranges[0] = extent((uint64_t)(uintptr_t)test_ranges, "unrelated");
	CHECK(stack_checker_set_ranges(checker, ranges, 1, &error) == HP_OK, "other ranges set");
	CHECK(!stack_check_thread(checker, &thread, false, &blocker), "not in the way of others");
	stack_checker_release(checker);
out:
	kill(child, SIGKILL);
	waitpid(child, &status, __WALL);
}

/* Where a clock reader may stand without unwind information: in the
 * vDSO (every processor), in a PLT entry (arm64 only: x86-64's has it). */
enum clock_place { IN_VDSO, IN_CALL_STUB };

static bool stands_in(pid_t child, enum clock_place place, uint64_t pc,
		      const struct hp_mapping *vdso)
{
	unsigned char bytes[HP_CALL_STUB_SIZE];
	struct iovec local = { bytes, sizeof(bytes) };
	struct iovec remote = { (void *)(uintptr_t)(pc & ~(uint64_t)(HP_CALL_STUB_SIZE - 1)),
				sizeof(bytes) };

	if (place == IN_VDSO)
		return pc >= vdso->start && pc < vdso->end;
	return process_vm_readv(child, &local, 1, &remote, 1, 0) == (ssize_t)sizeof(bytes) &&
	       code_is_call_stub(bytes);
}

/* Stops the child until it stands in `place`, at most `tries` times; the
 * vDSO's mapping in *vdso.  False if it never did. */
static bool stop_in(pid_t child, enum clock_place place, struct hp_thread *thread,
		    struct hp_mapping *vdso, int tries)
{
	struct hp_maps maps = { 0 };
	struct hp_error error = { 0 };
	const struct hp_mapping *found = NULL;
	int status;

	if (proc_maps_read(child, &maps, &error) != HP_OK)
		return false;
	for (size_t i = 0; i < maps.count && !found; i++)
		if (strcmp(maps.items[i].path, "[vdso]") == 0 && maps.items[i].executable)
			found = &maps.items[i];
	if (found)
		*vdso = *found;
	proc_maps_release(&maps);
	for (int i = 0; found && i < tries; i++) {
		if (ptrace(PTRACE_INTERRUPT, child, NULL, NULL) != 0 ||
		    waitpid(child, &status, __WALL) != child || registers_read(child, &thread->regs) != 0)
			return false;
		if (stands_in(child, place, registers_pc(&thread->regs), vdso))
			return true;
		if (ptrace(PTRACE_CONT, child, NULL, NULL) != 0)
			return false;
		usleep(200);
	}
	return false;
}

/* A thread stopped where there is no unwind information unwinds through
 * it to the function reading the clock: x86-64's vDSO has unwind
 * information; arm64's vDSO and PLT entries have none and are unwound by
 * hand (frameless.c), the signed x30 stripped. */
static void test_unwind_clock_reader(enum clock_place place, const char *where)
{
	struct hp_stack_checker *checker = NULL;
	struct hp_error error = { 0 };
	struct hp_thread thread = { 0 };
	struct hp_mapping vdso = { 0 };
	const struct hp_stack *stack;
	bool saw_clock_reader = false;
	int status;
	pid_t child = fork();

	if (child == 0) {
		read_the_clock();
		_exit(0);
	}
	CHECK(child > 0, "clock-reading child started");
	if (child <= 0)
		return;
	CHECK(ptrace(PTRACE_SEIZE, child, NULL, NULL) == 0, "seized the clock reader");
	CHECK(stop_in(child, place, &thread, &vdso, 20000), where);
	thread.tid = child;
	thread.stopped = true;
	if (stack_checker_create(child, &checker, &error) != HP_OK)
		goto out;
	stack_checker_new_stop(checker);
	stack = stack_checker_unwind(checker, &thread);
	CHECK(stack->complete, "a stack through code without unwind information unwinds to its end");
	CHECK(stack->count >= 3 && stands_in(child, place, stack->frames[0].ip, &vdso),
	      "its innermost frame is there");
	for (size_t i = 1; i < stack->count; i++)
		saw_clock_reader |= inside(stack->frames[i].ip - 1, (uint64_t)(uintptr_t)read_the_clock);
	CHECK(saw_clock_reader, "and an outer one in the function that reads the clock");
	stack_checker_release(checker);
out:
	kill(child, SIGKILL);
	waitpid(child, &status, __WALL);
}

int main(void)
{
	test_ranges();
	test_unwind_child();
	test_unwind_clock_reader(IN_VDSO, "stopped it inside the vDSO");
#if defined(__aarch64__)
	test_unwind_clock_reader(IN_CALL_STUB, "stopped it in a PLT entry");
#endif
	return check_report();
}
