/* trust/trust.h - only authorised patches load: keys, signatures, the patch file read and checked. */
#ifndef HOTPATCH_TRUST_TRUST_H
#define HOTPATCH_TRUST_TRUST_H

#include "common/trusted_files.h"
#include "patch/patch.h"

#define HP_PATCH_SIZE_MAX (256u << 20)
#define HP_KEY_ID_SIZE 17	/* 16 hex digits and a NUL */

/* trust_keys.c: Ed25519 key files and the trusted keys in CONFIG/keys. */
struct trust_public_key {
	unsigned char key[32];
	char id[HP_KEY_ID_SIZE];
	char file[HP_PATH_MAX];	/* where it was read */
};

/* libsodium, made ready once. */
int trust_crypto_init(struct hp_error *error) HP_MUST_CHECK;
void trust_key_id(const unsigned char public_key[32], char id[HP_KEY_ID_SIZE]);
/* Every trusted key (the .pub files in CONFIG/keys, owned by root); *keys
 * is malloc'd.  No directory is no key.  `directory` receives its path. */
int trust_keys_load(struct trust_public_key **keys, size_t *count, char *directory,
		    size_t directory_size, struct hp_error *error) HP_MUST_CHECK;
/* Reads a secret key file (PREFIX.key: a regular file of ours, mode 0600). */
int trust_secret_key_read(const char *path, unsigned char secret_key[64],
			  struct hp_error *error) HP_MUST_CHECK;
/* Parses "TAG ed25519 HEX...": one line, besides '#' comments and blank
 * lines, of `count` fields after the tag; false when it is not that. */
bool trust_text_fields(const char *text, size_t size, const char *tag, char fields[][160],
		       size_t count);

/* trust_signature.c: PATCH.sig, checked against the trusted keys. */
/* Checks the signature beside `patch` over `bytes`: a present one must be
 * by a trusted key and match, whether or not one is `required`.  `signer`
 * receives the key id ("" when unsigned). */
int trust_check_signature(const struct trust_file *patch, const unsigned char *bytes,
			  size_t size, const struct trust_owners *owners, const char *required_by,
			  char signer[HP_KEY_ID_SIZE], struct hp_error *error) HP_MUST_CHECK;

/* trust_patch.c: the patch file read, hashed, its signature checked, parsed. */
int patch_file_read(const struct hp_request *request, struct hp_patch_file *patch,
		    struct hp_patch_identity *identity, struct hp_error *error) HP_MUST_CHECK;

#endif
