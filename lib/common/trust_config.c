/* trust_config.c - where the policy on patches lives: /etc/hotpatch, with
 * the trusted public keys in keys/ and the system-wide switch
 * require-signature.  Only the test build (-DHP_FAULT_INJECTION) lets
 * HOTPATCH_CONFIG_DIR move it; the release build never reads the
 * environment here, so no caller can loosen the policy. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "common/trusted_files.h"
#include "common/base.h"

const char *trust_config_directory(void)
{
#ifdef HP_FAULT_INJECTION
	const char *moved = getenv("HOTPATCH_CONFIG_DIR");

	if (moved && moved[0] == '/')
		return moved;
#endif
	return HP_CONFIG_DIR;
}

int trust_policy_requires_signature(bool *required, struct hp_error *error)
{
	struct trust_directory directory = { .fd = -1 };
	struct trust_owners root;
	struct stat info;
	int status;

	*required = false;
	trust_owners_root(&root);
	/* Whoever could write here could remove the switch: root's only. */
	status = trust_open_directory(trust_config_directory(), "configuration directory", &root,
				      &directory, error);
	if (status != HP_OK || directory.fd < 0)
		return status;
	if (fstatat(directory.fd, "require-signature", &info, AT_SYMLINK_NOFOLLOW) == 0)
		*required = true;
	else if (errno != ENOENT)
		status = hp_fail_errno(error, HP_FAILED,
				       "cannot tell whether %s/require-signature exists",
				       directory.path);
	trust_directory_close(&directory);
	return status;
}
