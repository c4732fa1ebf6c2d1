/* trust_signature.c - detached Ed25519 signatures of patch files: making
 * one (hp_sign) and checking the one beside a patch against the trusted
 * keys.  The signature covers the exact bytes of the file, the very bytes
 * that are then checked and loaded.  Format of PATCH.so.sig, one line:
 *     hotpatch-signature-v1 ed25519 <key id: 16 hex> <signature: 128 hex>
 * It never reads key files itself (trust_keys.c). */
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "trust/trust.h"
#include "common/base.h"
#include "common/trusted_files.h"
#include "patch/patch.h"

#define SIGNATURE_TAG "hotpatch-signature-v1"
#define SIGNATURE_FILE_MAX 4096

static bool parse_signature(const char *text, size_t size, char key_id[HP_KEY_ID_SIZE],
			    unsigned char signature[crypto_sign_BYTES])
{
	char fields[3][160];
	size_t decoded = 0;
	const char *end = NULL;

	if (!trust_text_fields(text, size, SIGNATURE_TAG, fields, 3) ||
	    strcmp(fields[0], "ed25519") != 0 || strlen(fields[1]) != HP_KEY_ID_SIZE - 1 ||
	    strspn(fields[1], "0123456789abcdef") != HP_KEY_ID_SIZE - 1 ||
	    strlen(fields[2]) != 2 * crypto_sign_BYTES)
		return false;
	hp_copy_string(key_id, HP_KEY_ID_SIZE, fields[1]);
	return sodium_hex2bin(signature, crypto_sign_BYTES, fields[2], 2 * crypto_sign_BYTES, NULL,
			      &decoded, &end) == 0 &&
	       decoded == crypto_sign_BYTES && end == fields[2] + 2 * crypto_sign_BYTES;
}

/* Finds a trusted key `key_id` under which `signature` matches `bytes`. */
static int verify(const char *patch_path, const char *signature_path, const char *key_id,
		  const unsigned char *signature, const unsigned char *bytes, size_t size,
		  struct hp_error *error)
{
	struct trust_public_key *keys = NULL;
	char directory[HP_PATH_MAX];
	size_t count = 0;
	bool known = false, valid = false;
	int status = trust_keys_load(&keys, &count, directory, sizeof(directory), error);

	for (size_t i = 0; status == HP_OK && !valid && i < count; i++) {
		if (strcmp(keys[i].id, key_id) != 0)
			continue;
		known = true;
		valid = crypto_sign_verify_detached(signature, bytes, size, keys[i].key) == 0;
	}
	free(keys);
	if (status != HP_OK || valid)
		return status;
	hp_error_file(error, patch_path);
	if (!known) {
		hp_hint(error, "install the public key %s.pub in %s, or sign it with a trusted key",
			key_id, directory);
		return hp_fail(error, HP_MISFIT,
			       "patch %s is not signed by a trusted key: %s is by key %s, which is "
			       "not in %s", patch_path, signature_path, key_id, directory);
	}
	hp_hint(error, "sign it again if it was rebuilt: hotpatch sign --key KEY.key %s",
		patch_path);
	return hp_fail(error, HP_MISFIT,
		       "patch %s does not match its signature %s: it was changed after it was "
		       "signed", patch_path, signature_path);
}

int trust_check_signature(const struct trust_file *patch, const unsigned char *bytes,
			  size_t size, const struct trust_owners *owners, const char *required_by,
			  char signer[HP_KEY_ID_SIZE], struct hp_error *error)
{
	unsigned char signature[crypto_sign_BYTES], *text = NULL;
	struct trust_file file = TRUST_FILE_INIT;
	char name[HP_PATH_MAX], key_id[HP_KEY_ID_SIZE];
	size_t text_size = 0;
	int status = trust_crypto_init(error);

	signer[0] = '\0';
	if (status == HP_OK && snprintf(name, sizeof(name), "%s.sig",
					hp_base_name(patch->path)) >= (int)sizeof(name))
		status = hp_fail(error, HP_USAGE, "the path of patch %s is too long", patch->path);
	/* The same care as for the patch: its directory, its owners. */
	if (status == HP_OK)
		status = trust_open_at(&patch->directory, name, "signature", owners, &file, error);
	if (status == HP_OK && file.fd < 0) {
		if (!required_by)
			return HP_OK;
		hp_error_file(error, patch->path);
		hp_hint(error, "sign it with: hotpatch sign --key KEY.key %s, and install KEY.pub "
			       "in %s/keys", patch->path, trust_config_directory());
		return hp_fail(error, HP_MISFIT, "patch %s is not signed by a trusted key (%s)",
			       patch->path, required_by);
	}
	if (status == HP_OK)
		status = trust_read(&file, "signature", SIGNATURE_FILE_MAX, &text, &text_size,
				    error);
	if (status == HP_OK && !parse_signature((const char *)text, text_size, key_id, signature)) {
		hp_error_file(error, file.path);
		hp_hint(error, "sign the patch again: hotpatch sign --key KEY.key %s", patch->path);
		status = hp_fail(error, HP_MISFIT, "signature %s is damaged: it is not one line "
						   "\"%s ed25519 KEYID SIGNATURE\"",
				 file.path, SIGNATURE_TAG);
	}
	if (status == HP_OK)
		status = verify(patch->path, file.path, key_id, signature, bytes, size, error);
	if (status == HP_OK)
		hp_copy_string(signer, HP_KEY_ID_SIZE, key_id);
	free(text);
	trust_close(&file);
	return status;
}

/* Writes `text` to `path` through a new file beside it renamed over it, so
 * a reader sees the old signature or the new one, never half of one. */
static int replace_file(const char *path, const char *text, struct hp_error *error)
{
	char temporary[HP_PATH_MAX + 16];
	size_t length = strlen(text), written = 0;
	int fd, status = HP_OK;

	snprintf(temporary, sizeof(temporary), "%s.XXXXXX", path);
	fd = mkostemp(temporary, O_CLOEXEC);
	if (fd < 0)
		return hp_fail_errno(error, HP_FAILED, "cannot create a file beside %s", path);
	written = trust_write_all(fd, text, length);
	if (written < length || fchmod(fd, 0644) != 0 || fsync(fd) != 0)
		status = hp_fail_errno(error, HP_FAILED, "cannot write %s", temporary);
	close(fd);
	if (status == HP_OK && rename(temporary, path) != 0)
		status = hp_fail_errno(error, HP_FAILED, "cannot write %s", path);
	if (status != HP_OK)
		unlink(temporary);
	return status;
}

/* Reads the patch to sign once, whole; it must be a regular file. */
static int read_patch(const char *path, struct hp_patch_file *patch, struct hp_error *error)
{
	struct trust_file file = TRUST_FILE_INIT;
	struct stat info;
	int status = HP_OK;

	hp_copy_string(file.path, sizeof(file.path), path);
	file.fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (file.fd < 0)
		return hp_fail_errno(error, errno == ENOENT ? HP_USAGE : HP_FAILED,
				     "cannot open patch %s", path);
	if (fstat(file.fd, &info) != 0)
		status = hp_fail_errno(error, HP_FAILED, "cannot inspect patch %s", path);
	else if (!S_ISREG(info.st_mode))
		status = hp_fail(error, HP_MISFIT, "patch %s is not a regular file", path);
	file.size = (uint64_t)info.st_size;
	if (status == HP_OK)
		status = trust_read(&file, "patch", HP_PATCH_SIZE_MAX, &patch->bytes, &patch->size,
				    error);
	close(file.fd);
	return status;
}

int hp_sign(const char *key_path, const char *patch_path, struct hp_signing *result,
	    struct hp_error *error)
{
	unsigned char secret_key[64], signature[crypto_sign_BYTES], digest[crypto_hash_sha256_BYTES];
	char signature_hex[2 * crypto_sign_BYTES + 1], text[512], *resolved = NULL;
	struct hp_patch_file patch = { 0 };
	int status;

	memset(result, 0, sizeof(*result));
	status = trust_crypto_init(error);
	if (status == HP_OK)
		status = trust_secret_key_read(key_path, secret_key, error);
	if (status != HP_OK)
		return status;
	hp_copy_string(patch.path, sizeof(patch.path), patch_path);
	hp_error_file(error, patch_path);
	status = read_patch(patch_path, &patch, error);
	/* Refuse to sign what hotpatch would not load as a patch anyway. */
	if (status == HP_OK)
		status = patch_file_parse(&patch, error);
	if (status == HP_OK && !(resolved = realpath(patch_path, NULL)))
		status = hp_fail_errno(error, HP_FAILED, "cannot resolve %s", patch_path);
	if (status == HP_OK && snprintf(result->signature, sizeof(result->signature), "%s.sig",
					resolved) >= (int)sizeof(result->signature))
		status = hp_fail(error, HP_USAGE, "the path of patch %s is too long", patch_path);
	if (status == HP_OK) {
		crypto_sign_detached(signature, NULL, patch.bytes, patch.size, secret_key);
		crypto_hash_sha256(digest, patch.bytes, patch.size);
		trust_key_id(secret_key + 32, result->key_id);
		sodium_bin2hex(result->patch.sha256, sizeof(result->patch.sha256), digest,
			       sizeof(digest));
		sodium_bin2hex(signature_hex, sizeof(signature_hex), signature, sizeof(signature));
		hp_copy_string(result->patch.name, sizeof(result->patch.name), patch.name);
		hp_copy_string(result->patch.signer, sizeof(result->patch.signer), result->key_id);
		snprintf(text, sizeof(text), "%s ed25519 %s %s\n", SIGNATURE_TAG, result->key_id,
			 signature_hex);
		status = replace_file(result->signature, text, error);
	}
	sodium_memzero(secret_key, sizeof(secret_key));
	free(resolved);
	patch_file_release(&patch);
	if (status == HP_OK)
		memset(error->function, 0, sizeof(error->function));
	return status;
}
