/* trust_patch.c - whether a patch file may be loaded at all, before its
 * bytes are parsed: opened with the owner and permission checks of
 * trust_open.c, read once, hashed, its signature checked under the policy
 * (--require-signature, or CONFIG/require-signature), then parsed by
 * patch_file.c.  Those very bytes are what is later handed to the target.
 * It never touches the target. */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "trust/trust.h"
#include "common/base.h"
#include "common/trusted_files.h"
#include "patch/patch.h"

/* Who asks for signatures, for the refusal; NULL when nobody does. */
static int signature_policy(const struct hp_request *request, char *text, size_t size,
			    const char **required_by, struct hp_error *error)
{
	bool system_wide = false;
	int status = trust_policy_requires_signature(&system_wide, error);

	*required_by = NULL;
	if (status != HP_OK)
		return status;
	if (system_wide) {
		snprintf(text, size, "%s/require-signature", trust_config_directory());
		*required_by = text;
	} else if (request->require_signature) {
		snprintf(text, size, "--require-signature");
		*required_by = text;
	}
	return HP_OK;
}

int patch_file_read(const struct hp_request *request, struct hp_patch_file *patch,
		    struct hp_patch_identity *identity, struct hp_error *error)
{
	struct trust_file file = TRUST_FILE_INIT;
	struct trust_owners owners;
	unsigned char digest[crypto_hash_sha256_BYTES];
	char policy[HP_PATH_MAX];
	const char *required_by = NULL;
	int status;

	memset(patch, 0, sizeof(*patch));
	memset(identity, 0, sizeof(*identity));
	hp_copy_string(patch->path, sizeof(patch->path), request->patch_path);
	hp_error_file(error, request->patch_path);
	trust_owners_of_target(request->pid, &owners);
	status = trust_crypto_init(error);
	if (status == HP_OK)
		status = trust_open(request->patch_path, "patch", &owners, &file, error);
	/* Where the file really is, as opened (no link, "." or ".."): what
	 * list shows, whatever directory the command was run from. */
	if (status == HP_OK)
		hp_copy_string(patch->absolute_path, sizeof(patch->absolute_path), file.path);
	if (status == HP_OK && (file.size == 0 || file.size > HP_PATCH_SIZE_MAX))
		status = hp_fail_as(error, HP_KIND_BAD_PATCH, "patch %s is %s", patch->path,
				 file.size == 0 ? "empty" : "larger than 256 MiB");
	if (status == HP_OK)
		status = trust_read(&file, "patch", HP_PATCH_SIZE_MAX, &patch->bytes, &patch->size,
				    error);
	if (status == HP_OK) {
		crypto_hash_sha256(digest, patch->bytes, patch->size);
		memcpy(patch->sha256, digest, sizeof(patch->sha256));
		sodium_bin2hex(identity->sha256, sizeof(identity->sha256), digest, sizeof(digest));
		status = signature_policy(request, policy, sizeof(policy), &required_by, error);
	}
	/* Before parsing: under the policy, unsigned bytes are not even parsed. */
	if (status == HP_OK)
		status = trust_check_signature(&file, patch->bytes, patch->size, &owners,
					       required_by, identity->signer, error);
	if (status == HP_OK) {
		hp_error_file(error, patch->path);
		status = patch_file_parse(patch, error);
	}
	if (status == HP_OK) {
		hp_copy_string(identity->name, sizeof(identity->name), patch->name);
		/* Named for a failure of this step only: later ones concern others. */
		memset(error->function, 0, sizeof(error->function));
		memset(error->file, 0, sizeof(error->file));
	}
	/* What the reading and parsing did not name is about trusting the file. */
	if (status != HP_OK)
		hp_error_classify(error, HP_KIND_UNTRUSTED);
	trust_close(&file);
	return status;
}
