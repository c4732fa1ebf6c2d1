/* debug_download.c - a debug file fetched from the debuginfod servers
 * DEBUGINFOD_URLS names (libdebuginfod), bounded by the command's deadline
 * and Ctrl-C.  Its own file because the in-process loader is built without
 * it (loader/no_download.c): a process starting never waits on the network,
 * and never loads libdebuginfod's many libraries. */
#include <elfutils/debuginfod.h>
#include <errno.h>

#include "symbols/symbols.h"
#include "common/base.h"

struct download_clock {
	double deadline;
	volatile const int *interrupted;
	bool stopped;
};

/* libdebuginfod calls this while it waits (at least once a second). */
static int download_progress(debuginfod_client *client, long done, long total)
{
	struct download_clock *clock = debuginfod_get_user_data(client);

	(void)done;
	(void)total;
	if ((clock->interrupted && *clock->interrupted) ||
	    (clock->deadline > 0 && hp_now() >= clock->deadline))
		clock->stopped = true;
	return clock->stopped;
}

int debug_download(const unsigned char *build_id, size_t size, double deadline,
		   volatile const int *interrupted, char **path, bool *stopped)
{
	struct download_clock clock = { .deadline = deadline, .interrupted = interrupted };
	debuginfod_client *client = debuginfod_begin();
	int fd;

	if (!client)
		return -ENOMEM;
	debuginfod_set_user_data(client, &clock);
	debuginfod_set_progressfn(client, download_progress);
	fd = debuginfod_find_debuginfo(client, build_id, (int)size, path);
	debuginfod_end(client);
	*stopped = clock.stopped;
	return fd;
}
