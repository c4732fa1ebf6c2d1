/* commands.c - the command table: every subcommand with the options it
 * takes, its help, the engine call that runs it and its two printers.  A
 * new command is one entry here (and its printers); main.c, options.c and
 * help.c read only the table. */
#include <string.h>

#include "cmd.h"

#define PATCH_TARGET_OPTIONS                                                          \
	(PROCESS_OPTIONS | OPTION_BIT(OPTION_TIMEOUT) | OPTION_BIT(OPTION_UNRELIABLE) |   \
	 OPTION_BIT(OPTION_ALLOW_SUSPENDED))
#define PATCH_FILE_OPTIONS                                                            \
	(OPTION_BIT(OPTION_REQUIRE_SIGNATURE) | OPTION_BIT(OPTION_DEBUG_DIR) |             \
	 OPTION_BIT(OPTION_DEBUG_FILE) | OPTION_BIT(OPTION_EXCLUDE))
/* --diff or --fix: options.c checks that one of the two is given. */
#define BUILD_NEEDS                                                                   \
	(OPTION_BIT(OPTION_SOURCE) | OPTION_BIT(OPTION_BINARY) | OPTION_BIT(OPTION_OUTPUT))
#define BUILD_TAKES                                                                   \
	(BUILD_NEEDS | OPTION_BIT(OPTION_DIFF) | OPTION_BIT(OPTION_FIX) |                  \
	 OPTION_BIT(OPTION_COMPILE) | OPTION_BIT(OPTION_COMPILE_COMMANDS) |                \
	 OPTION_BIT(OPTION_OBJECT) | OPTION_BIT(OPTION_NAME) |                             \
	 OPTION_BIT(OPTION_DESCRIPTION) | OPTION_BIT(OPTION_ID) | OPTION_BIT(OPTION_CUMULATIVE))

int exit_code_for(int status)
{
	return status >= HP_MISFIT && status <= HP_OK ? -status : 1;
}

/* apply, revert, list and check: the audit record around the engine call. */
static int run_engine(const struct invocation *invocation, struct outcome *outcome,
		      struct hp_error *error)
{
	const struct command *command = invocation->command;
	struct audit_target target = { 0 };
	int status;

	/* Before the engine: the process may be gone afterwards. */
	if (command->audited) {
		audit_target_read(invocation->request.pid, &target);
		audit_started(command->name, &invocation->request, &target);
	}
	status = command->engine(&invocation->request, &outcome->engine, error);
	/* The record before any output, so that a closed stdout cannot lose it. */
	if (command->audited)
		audit_command(command->name, &invocation->request, &target, &outcome->engine,
			      error, exit_code_for(status));
	return status;
}

static int run_keygen(const struct invocation *invocation, struct outcome *outcome,
		      struct hp_error *error)
{
	return hp_keygen(invocation->out, &outcome->signing, error);
}

static int run_sign(const struct invocation *invocation, struct outcome *outcome,
		    struct hp_error *error)
{
	return hp_sign(invocation->key, invocation->argument, &outcome->signing, error);
}

static int run_build(const struct invocation *invocation, struct outcome *outcome,
		     struct hp_error *error)
{
	return hp_build(&invocation->build, &outcome->build, error);
}

const struct command commands[] = {
	{ .name = "apply", .engine = hp_apply,
	  .synopsis = "(--pid PID... | --exe PATH | --object PATH) [--timeout SECONDS] [--allow-unreliable-stacks] [--allow-suspended] "
		     "[--stop-all | --gates] [--require-signature] [--debug-dir DIR]... [--debug-file FILE]... "
		     "[--exclude ID]... [--json] PATCH.so",
	  .summary = "load PATCH.so into the process and redirect the functions it replaces",
	  .description = "Loads PATCH.so into the process, waits until no thread is in a "
			 "function it replaces, and redirects those functions to the patch, "
			 "all at once or not at all.",
	  .takes = PATCH_TARGET_OPTIONS | PATCH_FILE_OPTIONS | OPTION_BIT(OPTION_STOP_ALL) |
		   OPTION_BIT(OPTION_GATES),
	  .needs = OPTION_BIT(OPTION_PID),
	  .min_arguments = 1, .max_arguments = 1, .argument = "a patch file", .audited = true,
	  .run = run_engine, .print_text = print_change_text, .print_json = print_change_json },
	{ .name = "revert", .engine = hp_revert,
	  .synopsis = "(--pid PID... | --exe PATH | --object PATH) [--timeout SECONDS] [--allow-unreliable-stacks] [--allow-suspended] [--sequence N] "
		     "[--stop-all | --gates] [--json] [PATCH]",
	  .summary = "take back PATCH (default: the most recently applied patch), or the "
		     "patch of sequence number N (as list shows it: one copy of a patch)",
	  .description = "Restores the original code of the functions PATCH replaced, once no "
			 "thread is in them, and unloads the patch.  PATCH is a name as list "
			 "shows it; without one, the most recently applied patch.",
	  .takes = PATCH_TARGET_OPTIONS | OPTION_BIT(OPTION_SEQUENCE) | OPTION_BIT(OPTION_STOP_ALL) |
		   OPTION_BIT(OPTION_GATES),
	  .needs = OPTION_BIT(OPTION_PID),
	  .min_arguments = 0, .max_arguments = 1, .argument_is_name = true, .audited = true,
	  .run = run_engine, .print_text = print_change_text, .print_json = print_change_json },
	{ .name = "list", .engine = hp_list,
	  .synopsis = "(--pid PID... | --exe PATH | --object PATH) [--json]",
	  .summary = "show the applied patches, newest first, also while another command is "
		     "at work on the process",
	  .description = "Shows the patches applied to the process, newest first, and what "
			 "killed hotpatch commands left in it.  Stops nothing and takes no "
			 "lock: while another command is at work, it shows the state as it "
			 "was before that command and says which command it is.",
	  .takes = PROCESS_OPTIONS,
	  .needs = OPTION_BIT(OPTION_PID),
	  .run = run_engine, .print_text = print_list_text, .print_json = print_list_json },
	{ .name = "check", .engine = hp_check,
	  .synopsis = "(--pid PID... | --exe PATH | --object PATH) [--timeout SECONDS] [--allow-unreliable-stacks] [--allow-suspended] "
		     "[--require-signature] [--debug-dir DIR]... [--debug-file FILE]... "
		     "[--exclude ID]... [--json] PATCH.so",
	  .summary = "run every check of apply without changing the process",
	  .description = "Does everything apply does short of changing the process: reads and "
			 "trusts the file, finds every function and symbol, plans every jump "
			 "and checks every thread's stack once.",
	  .takes = PATCH_TARGET_OPTIONS | PATCH_FILE_OPTIONS,
	  .needs = OPTION_BIT(OPTION_PID),
	  .min_arguments = 1, .max_arguments = 1, .argument = "a patch file",
	  .run = run_engine, .print_text = print_check_text, .print_json = print_change_json },
	{ .name = "install",
	  .synopsis = "[--timeout SECONDS] [--exclude ID]... [--json] PATCH.so",
	  .summary = "keep PATCH.so in the store and apply it to every running process it fits",
	  .description = "Checks PATCH.so as apply does, refuses it unless it pins the build-id "
			 "of every object it patches, copies it into the store (/var/lib/hotpatch "
			 "or HOTPATCH_STORE) and applies it to every running process whose "
			 "objects have the pinned build-ids.  The same patch again changes "
			 "nothing.  Processes started later are not patched yet.",
	  .takes = OPTION_BIT(OPTION_TIMEOUT) | OPTION_BIT(OPTION_EXCLUDE),
	  .min_arguments = 1, .max_arguments = 1, .argument = "a patch file",
	  .run = run_install, .print_text = print_install_text, .print_json = print_install_json },
	{ .name = "uninstall",
	  .synopsis = "[--json] NAME",
	  .summary = "revert the installed patch NAME in every process and remove it from the store",
	  .description = "Reverts the installed patch NAME in every process where it is applied "
			 "and, once every revert succeeded, removes it from the store.",
	  .min_arguments = 1, .max_arguments = 1, .argument = "an installed patch's name",
	  .argument_is_name = true,
	  .run = run_uninstall, .print_text = print_install_text, .print_json = print_install_json },
	{ .name = "status",
	  .synopsis = "[--json]",
	  .summary = "show the installed patches and where each is applied",
	  .description = "Shows what the store holds and every process an installed patch fits "
			 "or a patch is applied to, with each patch applied or not.  Stops "
			 "nothing, takes no lock.  Exits 0 when every process an installed patch "
			 "fits has it applied, 1 otherwise.",
	  .run = run_status, .print_text = print_status_text, .print_json = print_status_json },
	{ .name = "startup",
	  .synopsis = "(enable | disable | status) [--root DIR] [--loader PATH] [--json]",
	  .summary = "add the loader that patches processes as they start to /etc/ld.so.preload, "
		     "take it out, or show whether it is there",
	  .description = "enable lists the loader in /etc/ld.so.preload, so that every process "
			 "started later gets the installed patches that fit it before main "
			 "runs; disable takes it out again; status shows whether it is listed.  "
			 "The file is replaced atomically, every other line kept, and its text "
			 "from before the first change kept in "
			 "/etc/ld.so.preload.hotpatch-backup; a file that disable leaves empty "
			 "is removed.  enable refuses (exit 4) a loader that is missing or that "
			 "anyone but root could have changed.",
	  .takes = OPTION_BIT(OPTION_ROOT) | OPTION_BIT(OPTION_LOADER),
	  .min_arguments = 1, .max_arguments = 1, .argument = "enable, disable or status",
	  .run = run_startup, .print_text = print_startup_text, .print_json = print_startup_json },
	{ .name = "keygen",
	  .synopsis = "--out PREFIX [--json]",
	  .summary = "make a signing key pair: PREFIX.key (secret) and PREFIX.pub",
	  .description = "Makes an Ed25519 key pair.  Install PREFIX.pub in /etc/hotpatch/keys/ "
			 "where patches are applied; keep PREFIX.key private.",
	  .takes = OPTION_BIT(OPTION_OUT),
	  .needs = OPTION_BIT(OPTION_OUT),
	  .run = run_keygen, .print_text = print_signing_text, .print_json = print_signing_json },
	{ .name = "sign",
	  .synopsis = "--key PREFIX.key [--json] PATCH.so",
	  .summary = "sign PATCH.so, writing PATCH.so.sig beside it",
	  .description = "Signs PATCH.so with a secret key made by keygen.",
	  .takes = OPTION_BIT(OPTION_KEY),
	  .needs = OPTION_BIT(OPTION_KEY),
	  .min_arguments = 1, .max_arguments = 1, .argument = "a patch file",
	  .run = run_sign, .print_text = print_signing_text, .print_json = print_signing_json },
	{ .name = "build",
	  .synopsis = "--source DIR (--diff FIX.diff [--id ID]... | --fix ID=FIX.diff...) "
		     "(--compile 'CC FLAGS...' | --compile-commands FILE) --binary PROGRAM "
		     "-o OUT.so [--object LIBNAME] [--name NAME] [--description TEXT] "
		     "[--cumulative]",
	  .summary = "make a patch from a source diff",
	  .description = "Makes a patch object from the source tree PROGRAM was built from and "
			 "a diff of the fix: the functions whose code the fix changes, "
			 "referring to PROGRAM's own variables and functions.  Never touches a "
			 "process.",
	  .takes = BUILD_TAKES,
	  .needs = BUILD_NEEDS,
	  .run = run_build, .print_text = print_build_text, .print_json = print_build_json },
};

const size_t command_count = sizeof(commands) / sizeof(commands[0]);

const struct command *command_find(const char *name)
{
	for (size_t i = 0; i < command_count; i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}
