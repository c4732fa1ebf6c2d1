/* trust_keys.c - Ed25519 keys (libsodium): making a pair (hp_keygen), the
 * two text files they live in, reading one's own secret key, and the
 * trusted public keys of CONFIG/keys.  Formats, one line each besides '#'
 * comments:
 *     PREFIX.key  hotpatch-secret-key-v1 ed25519 <128 hex: seed, public key>
 *     PREFIX.pub  hotpatch-public-key-v1 ed25519 <64 hex: public key>
 * A key's id is the first 8 bytes of its public key in hex.  It never signs
 * or verifies (trust_signature.c). */
#include <dirent.h>
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

#define PUBLIC_TAG "hotpatch-public-key-v1"
#define SECRET_TAG "hotpatch-secret-key-v1"
#define KEY_FILE_MAX 4096
#define TRUSTED_KEYS_MAX 1024

int trust_crypto_init(struct hp_error *error)
{
	if (sodium_init() < 0)
		return hp_fail(error, HP_FAILED, "libsodium cannot be initialised");
	return HP_OK;
}

void trust_key_id(const unsigned char public_key[32], char id[HP_KEY_ID_SIZE])
{
	sodium_bin2hex(id, HP_KEY_ID_SIZE, public_key, (HP_KEY_ID_SIZE - 1) / 2);
}

bool trust_text_fields(const char *text, size_t size, const char *tag, char fields[][160],
		       size_t count)
{
	const char *line = text, *end = text + size;
	bool found = false;

	if (memchr(text, '\0', size))
		return false;
	while (line < end) {
		const char *stop = memchr(line, '\n', (size_t)(end - line));
		char copy[1024], *token, *state = NULL;
		size_t length = (size_t)((stop ? stop : end) - line), n = 0;

		if (length >= sizeof(copy))
			return false;
		memcpy(copy, line, length);
		copy[length] = '\0';
		line += length + 1;
		token = strtok_r(copy, " \t\r", &state);
		if (!token || token[0] == '#')
			continue;
		if (found || strcmp(token, tag) != 0)
			return false;
		found = true;
		while ((token = strtok_r(NULL, " \t\r", &state)) != NULL) {
			if (n == count || strlen(token) >= sizeof(fields[0]))
				return false;
			hp_copy_string(fields[n++], sizeof(fields[0]), token);
		}
		if (n != count)
			return false;
	}
	return found;
}

/* Exactly 2 * size hex digits. */
static bool decode_hex(const char *hex, unsigned char *bytes, size_t size)
{
	size_t decoded = 0;
	const char *end = NULL;

	return strlen(hex) == 2 * size &&
	       sodium_hex2bin(bytes, size, hex, 2 * size, NULL, &decoded, &end) == 0 &&
	       decoded == size && end == hex + 2 * size;
}

static bool parse_public_key(const char *text, size_t size, unsigned char key[32])
{
	char fields[2][160];

	return trust_text_fields(text, size, PUBLIC_TAG, fields, 2) &&
	       strcmp(fields[0], "ed25519") == 0 && decode_hex(fields[1], key, 32);
}

static int compare_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names of the .pub files of `directory`, sorted; *names is malloc'd. */
static int list_key_files(const struct trust_directory *directory, char ***names, size_t *count,
			  struct hp_error *error)
{
	int fd = openat(directory->fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *listing = fd >= 0 ? fdopendir(fd) : NULL;
	const struct dirent *entry;
	int status = HP_OK;

	*names = NULL;
	*count = 0;
	if (!listing) {
		if (fd >= 0)
			close(fd);
		return hp_fail_errno(error, HP_FAILED, "cannot list %s", directory->path);
	}
	while (status == HP_OK && (entry = readdir(listing)) != NULL) {
		size_t length = strlen(entry->d_name);
		char **grown;

		if (entry->d_name[0] == '.' || length < 5 ||
		    strcmp(entry->d_name + length - 4, ".pub") != 0)
			continue;
		if (*count == TRUSTED_KEYS_MAX) {
			status = hp_fail(error, HP_MISFIT, "%s holds more than %d keys",
					 directory->path, TRUSTED_KEYS_MAX);
			break;
		}
		grown = realloc(*names, (*count + 1) * sizeof(**names));
		if (!grown || !(grown[*count] = strdup(entry->d_name))) {
			if (grown)
				*names = grown;
			status = hp_fail(error, HP_FAILED, "out of memory");
			break;
		}
		*names = grown;
		(*count)++;
	}
	closedir(listing);
	if (*count > 1)
		qsort(*names, *count, sizeof(**names), compare_names);
	return status;
}

static int read_trusted_key(const struct trust_directory *directory, const char *name,
			    const struct trust_owners *root, struct trust_public_key *key,
			    bool *present, struct hp_error *error)
{
	struct trust_file file = TRUST_FILE_INIT;
	unsigned char *text = NULL;
	size_t size = 0;
	int status = trust_open_at(directory, name, "trusted key", root, &file, error);

	*present = status == HP_OK && file.fd >= 0;
	if (*present)
		status = trust_read(&file, "trusted key", KEY_FILE_MAX, &text, &size, error);
	if (*present && status == HP_OK) {
		if (parse_public_key((const char *)text, size, key->key)) {
			trust_key_id(key->key, key->id);
			hp_copy_string(key->file, sizeof(key->file), file.path);
		} else {
			hp_error_file(error, file.path);
			hp_hint(error, "each .pub file holds one line: %s ed25519 <64 hex digits>",
				PUBLIC_TAG);
			status = hp_fail(error, HP_MISFIT, "trusted key %s is damaged", file.path);
		}
	}
	free(text);
	trust_close(&file);
	return status;
}

int trust_keys_load(struct trust_public_key **keys, size_t *count, char *directory_path,
		    size_t directory_size, struct hp_error *error)
{
	struct trust_directory directory = { .fd = -1 };
	struct trust_owners root;
	char path[HP_PATH_MAX], **names = NULL;
	size_t name_count = 0;
	int status;

	*keys = NULL;
	*count = 0;
	trust_owners_root(&root);
	snprintf(path, sizeof(path), "%s/keys", trust_config_directory());
	hp_copy_string(directory_path, directory_size, path);
	status = trust_open_directory(path, "trusted key directory", &root, &directory, error);
	if (status != HP_OK || directory.fd < 0)
		return status;
	status = list_key_files(&directory, &names, &name_count, error);
	if (status == HP_OK && name_count > 0 && !(*keys = calloc(name_count, sizeof(**keys))))
		status = hp_fail(error, HP_FAILED, "out of memory");
	for (size_t i = 0; status == HP_OK && i < name_count; i++) {
		bool present = false;

		status = read_trusted_key(&directory, names[i], &root, &(*keys)[*count], &present,
					  error);
		if (status == HP_OK && present)
			(*count)++;
	}
	for (size_t i = 0; i < name_count; i++)
		free(names[i]);
	free(names);
	trust_directory_close(&directory);
	if (status != HP_OK) {
		free(*keys);
		*keys = NULL;
		*count = 0;
	}
	return status;
}

int trust_secret_key_read(const char *path, unsigned char secret_key[64], struct hp_error *error)
{
	unsigned char public_key[32], check_public[32], check_secret[64], *text = NULL;
	struct trust_file file = TRUST_FILE_INIT;
	char fields[2][160];
	struct stat info;
	size_t size = 0;
	int status = HP_OK;

	hp_error_file(error, path);
	file.fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	hp_copy_string(file.path, sizeof(file.path), path);
	if (file.fd < 0)
		return hp_fail_errno(error, errno == ENOENT ? HP_USAGE : HP_FAILED,
				     "cannot open secret key %s", path);
	if (fstat(file.fd, &info) != 0) {
		status = hp_fail_errno(error, HP_FAILED, "cannot inspect %s", path);
	} else if (!S_ISREG(info.st_mode)) {
		status = hp_fail(error, HP_USAGE, "secret key %s is not a regular file", path);
	} else if (info.st_uid != geteuid() || (info.st_mode & 077)) {
		hp_hint(error, "keep it yours and private: chmod 600 %s", path);
		status = hp_fail(error, HP_FAILED, "secret key %s is %s", path,
				 info.st_uid != geteuid() ? "not yours"
							  : "open to group or others");
	} else {
		file.size = (uint64_t)info.st_size;
		status = trust_read(&file, "secret key", KEY_FILE_MAX, &text, &size, error);
	}
	if (status == HP_OK &&
	    !(trust_text_fields((const char *)text, size, SECRET_TAG, fields, 2) &&
	      strcmp(fields[0], "ed25519") == 0 && decode_hex(fields[1], secret_key, 64))) {
		hp_hint(error, "make a key pair with: hotpatch keygen --out PREFIX");
		status = hp_fail(error, HP_USAGE, "%s is not a hotpatch secret key", path);
	}
	/* The seed must give the public half stored with it. */
	if (status == HP_OK) {
		memcpy(public_key, secret_key + 32, sizeof(public_key));
		crypto_sign_seed_keypair(check_public, check_secret, secret_key);
		if (memcmp(check_public, public_key, sizeof(public_key)) != 0)
			status = hp_fail(error, HP_USAGE, "secret key %s is damaged", path);
	}
	if (text)
		sodium_memzero(text, size);
	sodium_memzero(check_secret, sizeof(check_secret));
	sodium_memzero(fields, sizeof(fields));
	free(text);
	close(file.fd);
	return status;
}

/* Creates `path` (never over anything) with `mode` and writes `text`. */
static int write_new_file(const char *path, mode_t mode, const char *text, struct hp_error *error)
{
	size_t length = strlen(text), written = 0;
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);

	if (fd < 0)
		return hp_fail_errno(error, errno == EEXIST ? HP_USAGE : HP_FAILED,
				     "cannot create %s", path);
	written = trust_write_all(fd, text, length);
	if (written < length || fchmod(fd, mode) != 0 || fsync(fd) != 0) {
		int status = hp_fail_errno(error, HP_FAILED, "cannot write %s", path);

		close(fd);
		unlink(path);
		return status;
	}
	close(fd);
	return HP_OK;
}

int hp_keygen(const char *prefix, struct hp_signing *result, struct hp_error *error)
{
	unsigned char public_key[32], secret_key[64];
	char public_hex[65], secret_hex[129], text[512];
	struct stat info;
	int status;

	memset(result, 0, sizeof(*result));
	status = trust_crypto_init(error);
	if (status != HP_OK)
		return status;
	if (!prefix[0] || snprintf(result->secret_key, sizeof(result->secret_key), "%s.key",
				   prefix) >= (int)sizeof(result->secret_key) ||
	    snprintf(result->public_key, sizeof(result->public_key), "%s.pub", prefix) >=
		    (int)sizeof(result->public_key))
		return hp_fail(error, HP_USAGE, "--out wants a path prefix shorter than %d bytes",
			       HP_TEXT_MAX - 5);
	for (int i = 0; i < 2; i++) {
		const char *path = i == 0 ? result->secret_key : result->public_key;

		if (lstat(path, &info) == 0) {
			hp_error_file(error, path);
			hp_hint(error, "choose another --out PREFIX, or move the old key away");
			return hp_fail(error, HP_USAGE, "%s exists already; keygen never overwrites "
							"a key", path);
		}
	}
	crypto_sign_keypair(public_key, secret_key);
	trust_key_id(public_key, result->key_id);
	sodium_bin2hex(public_hex, sizeof(public_hex), public_key, sizeof(public_key));
	sodium_bin2hex(secret_hex, sizeof(secret_hex), secret_key, sizeof(secret_key));
	snprintf(text, sizeof(text),
		 "# hotpatch secret key %s: signs patches (hotpatch sign --key); keep it private\n"
		 "%s ed25519 %s\n",
		 result->key_id, SECRET_TAG, secret_hex);
	status = write_new_file(result->secret_key, 0600, text, error);
	if (status == HP_OK) {
		snprintf(text, sizeof(text),
			 "# hotpatch public key %s: trusted where it is in %s/keys/\n"
			 "%s ed25519 %s\n",
			 result->key_id, HP_CONFIG_DIR, PUBLIC_TAG, public_hex);
		status = write_new_file(result->public_key, 0644, text, error);
		if (status != HP_OK)
			unlink(result->secret_key);
	}
	sodium_memzero(secret_key, sizeof(secret_key));
	sodium_memzero(secret_hex, sizeof(secret_hex));
	sodium_memzero(text, sizeof(text));
	return status;
}
