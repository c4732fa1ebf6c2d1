/* no_download.c - debug_download for the in-process loader's engine,
 * built without libdebuginfod (lib/symbols/debug_download.c): a process
 * starting never waits on the network, nor loads a download client's
 * libraries.  A stripped object's debug file still comes from disk. */
#include <errno.h>

#include "symbols/symbols.h"

int debug_download(const unsigned char *build_id, size_t size, double deadline,
		   volatile const int *interrupted, char **path, bool *stopped)
{
	(void)build_id;
	(void)size;
	(void)deadline;
	(void)interrupted;
	*path = NULL;
	*stopped = false;
	return -ENOTSUP;
}
