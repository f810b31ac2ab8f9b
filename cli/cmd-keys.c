/* SPDX-License-Identifier: Apache-2.0 */
/* cmd-keys.c: exaictl key {init,rotate,revoke,status,retire}, encrypt, decrypt, sign, verify,
 * keygen. Secrets (PINs, passwords, raw keys) come from files or the environment, never argv. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

#define MAX_PAIRS 64
#define IO_CHUNK (256u * 1024u)

/* ---- helpers ---------------------------------------------------------------------------- */

/* Reads a small secret file (mode must not give group/others access) into locked memory. */
static int read_secret(const char *path, size_t max, char **ret, size_t *retlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (st.st_mode & 077)) {
		close(fd);
		return -EACCES;
	}
	char *buf = exai_secure_alloc(max + 1);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	size_t n = 0;
	ssize_t got;
	while ((got = read(fd, buf + n, max + 1 - n)) > 0 && n + (size_t)got <= max)
		n += (size_t)got;
	close(fd);
	if (got < 0 || got > 0) {
		exai_secure_free(buf);
		return got < 0 ? -EIO : -EFBIG;
	}
	buf[n] = '\0';
	*ret = buf;
	*retlen = n;
	return 0;
}

static int secret_error(struct cli *cli, const char *what, const char *path, int r)
{
	fprintf(stderr, "%s: %s %s: %s\n", cli->path, what, path,
		r == -EACCES ? "not a regular file private to its owner (want mode 0600)"
		: r == -EFBIG ? "too large" : strerror(-r));
	return EXIT_FAIL;
}

/* A password from --password-file (first line) or $EXAI_SIGN_PASSWORD; NULL when neither. */
static int get_password(struct cli *cli, const char *file, char **ret)
{
	*ret = NULL;
	if (file) {
		size_t n;
		int r = read_secret(file, 1024, ret, &n);
		if (r < 0)
			return secret_error(cli, "password file", file, r);
		(*ret)[strcspn(*ret, "\r\n")] = '\0';
		return -1;
	}
	const char *env = getenv("EXAI_SIGN_PASSWORD");
	if (env && *env) {
		*ret = exai_secure_alloc(strlen(env) + 1);
		if (!*ret)
			return cli_fail(cli, -ENOMEM, "password");
		strcpy(*ret, env);
	}
	return -1;
}

static int add_pair(struct cli *cli, const char **pairs, size_t *n, char *kv)
{
	char *eq = strchr(kv, '=');
	if (!eq || eq == kv)
		return cli_usage_error(cli, "--context wants KEY=VALUE, not '%s'", kv);
	if (*n + 2 >= MAX_PAIRS * 2)
		return cli_usage_error(cli, "at most %d --context pairs", MAX_PAIRS);
	*eq = '\0';
	pairs[(*n)++] = kv;
	pairs[(*n)++] = eq + 1;
	pairs[*n] = NULL;
	return -1;
}

/* ---- exaictl key ... -------------------------------------------------------------------- */

struct key_args {
	const char *tenant, *kms, *module, *token, *pin_file;
	uint32_t min_gen;
};

static int key_parse(struct cli *cli, int argc, char **argv, struct key_args *a, bool init, bool retire)
{
	static const struct option opts[] = {
		{ "tenant", required_argument, NULL, 't' },
		{ "kms", required_argument, NULL, 'k' },
		{ "pkcs11-module", required_argument, NULL, 'm' },
		{ "pkcs11-token", required_argument, NULL, 'T' },
		{ "pkcs11-pin-file", required_argument, NULL, 'p' },
		{ "min-generation", required_argument, NULL, 'g' },
		{ "json", no_argument, NULL, 'j' },
		{ 0 },
	};
	int c;
	optind = 0;
	while ((c = cli_getopt(cli, argc, argv, ":", opts)) != -1) {
		switch (c) {
		case 't': a->tenant = optarg; break;
		case 'j': cli->json = true; break;
		case 'k': case 'm': case 'T': case 'p':
			if (!init)
				return cli_usage_error(cli, "option '%s' is only for key init", argv[optind - 1]);
			if (c == 'k') a->kms = optarg;
			else if (c == 'm') a->module = optarg;
			else if (c == 'T') a->token = optarg;
			else a->pin_file = optarg;
			break;
		case 'g': {
			char *end;
			unsigned long v = strtoul(optarg, &end, 10);
			if (!retire || *end || v == 0 || v > UINT32_MAX)
				return cli_usage_error(cli, "--min-generation wants a generation number (key retire only)");
			a->min_gen = (uint32_t)v;
			break;
		}
		default: return EXIT_USAGE;
		}
	}
	if (optind < argc)
		return cli_usage_error(cli, "unexpected argument '%s'", argv[optind]);
	return -1;
}

/* Opens (or with @init creates) the tenant's keyring. */
static int keyring_get(struct cli *cli, const struct key_args *a, bool init, exai_keyring **ret)
{
	exai_ctx *ctx = cli_ctx(cli);
	if (!ctx)
		return EXIT_FAIL;
	int r;
	if (!init) {
		r = exai_keyring_open(ret, ctx, a->tenant, NULL);
		return r < 0 ? cli_fail(cli, r, a->tenant) : -1;
	}
	struct exai_kms_provider kms;
	EXAI_OPTS(exai_kms_pkcs11_opts, po, .module = a->module, .token_label = a->token, .pin_file = a->pin_file);
	EXAI_OPTS(exai_keyring_opts, ko);
	if (a->kms && strcmp(a->kms, "pkcs11") == 0) {
		if (!a->module || !a->token)
			return cli_usage_error(cli, "--kms pkcs11 needs --pkcs11-module and --pkcs11-token");
		r = exai_kms_pkcs11_provider(&kms, ctx, &po);
		if (r < 0)
			return cli_fail(cli, r, "PKCS#11");
		ko.kms = &kms;
		ko.pkcs11 = &po;
	} else if (a->kms && strcmp(a->kms, "file") != 0) {
		return cli_usage_error(cli, "--kms wants file or pkcs11, not '%s'", a->kms);
	} else if (a->module || a->token || a->pin_file) {
		return cli_usage_error(cli, "the --pkcs11-* options need --kms pkcs11");
	}
	r = exai_keyring_init(ret, ctx, a->tenant, &ko);
	return r < 0 ? cli_fail(cli, r, a->tenant) : -1;
}

static int print_status(struct cli *cli, exai_keyring *kr)
{
	char *js = NULL;
	int r = exai_keyring_status(&js, kr);
	if (r < 0)
		return cli_fail(cli, r, "status");
	json_t *st = json_loads(js, 0, NULL);
	exai_free(js);
	if (!st)
		return cli_fail(cli, -ENOMEM, "status");
	if (cli->json)
		return cli_print_json(st) ? EXIT_FAIL : EXIT_OK;
	json_t *en = json_object_get(st, "kek_enabled");
	time_t due = (time_t)json_integer_value(json_object_get(st, "rotation_due"));
	char duebuf[32];
	struct tm tm;
	strftime(duebuf, sizeof(duebuf), "%Y-%m-%d", gmtime_r(&due, &tm));
	printf("tenant %s: kms %s, KEK version %lld (%s), DEK generation %lld (min %lld)%s, rotation due %s\n",
	       json_string_value(json_object_get(st, "tenant")),
	       json_string_value(json_object_get(json_object_get(st, "kms"), "provider")),
	       (long long)json_integer_value(json_object_get(st, "kek_version")),
	       json_is_true(en) ? "enabled" : json_is_false(en) ? "DISABLED" : "state unknown",
	       (long long)json_integer_value(json_object_get(st, "current_generation")),
	       (long long)json_integer_value(json_object_get(st, "min_decryption_generation")),
	       json_is_true(json_object_get(st, "revoked")) ? ", REVOKED" : "", duebuf);
	json_decref(st);
	return EXIT_OK;
}

static int run_key_verb(struct cli *cli, int argc, char **argv, int verb)
{
	struct key_args a = { 0 };
	int r = key_parse(cli, argc, argv, &a, verb == 0, verb == 4);
	if (r >= 0)
		return r;
	if (!a.tenant)
		return cli_usage_error(cli, "--tenant is required");
	if (verb == 4 && !a.min_gen)
		return cli_usage_error(cli, "--min-generation is required");
	exai_keyring *kr = NULL;
	r = keyring_get(cli, &a, verb == 0, &kr);
	if (r >= 0)
		return r;
	switch (verb) {
	case 1: r = exai_keyring_rotate(kr); break;
	case 2: r = exai_keyring_revoke(kr); break;
	case 4: r = exai_keyring_set_min_generation(kr, a.min_gen); break;
	default: r = 0; break;
	}
	int rc = r < 0 ? cli_fail(cli, r, a.tenant) : print_status(cli, kr);
	exai_keyring_unref(kr);
	return rc;
}

static int run_key_init(struct cli *cli, int argc, char **argv) { return run_key_verb(cli, argc, argv, 0); }
static int run_key_rotate(struct cli *cli, int argc, char **argv) { return run_key_verb(cli, argc, argv, 1); }
static int run_key_revoke(struct cli *cli, int argc, char **argv) { return run_key_verb(cli, argc, argv, 2); }
static int run_key_retire(struct cli *cli, int argc, char **argv) { return run_key_verb(cli, argc, argv, 4); }

static int run_key_status(struct cli *cli, int argc, char **argv)
{
	struct key_args a = { 0 };
	int r = key_parse(cli, argc, argv, &a, false, false);
	if (r >= 0)
		return r;
	if (a.tenant)
		return run_key_verb(cli, argc, argv, 3);
	/* Every tenant with a keyring in the state directory. */
	exai_ctx *ctx = cli_ctx(cli);
	if (!ctx)
		return EXIT_FAIL;
	char dir[4096];
	snprintf(dir, sizeof(dir), "%s/keys", exai_ctx_state_dir(ctx));
	DIR *d = opendir(dir);
	if (!d) {
		if (errno != ENOENT)
			return fprintf(stderr, "%s: %s: %s\n", cli->path, dir, strerror(errno)), EXIT_FAIL;
		if (cli->json)
			return cli_print_json(json_array()) ? EXIT_FAIL : EXIT_OK;
		return EXIT_OK;
	}
	struct dirent *de;
	int rc = EXIT_OK;
	json_t *all = json_array();
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		exai_keyring *kr = NULL;
		r = exai_keyring_open(&kr, ctx, de->d_name, NULL);
		if (r < 0) {
			rc = cli_fail(cli, r, de->d_name);
			continue;
		}
		char *js = NULL;
		if (cli->json) {
			if (exai_keyring_status(&js, kr) == 0)
				json_array_append_new(all, json_loads(js, 0, NULL));
			exai_free(js);
		} else {
			print_status(cli, kr);
		}
		exai_keyring_unref(kr);
	}
	closedir(d);
	if (cli->json)
		return cli_print_json(all) ? EXIT_FAIL : rc;
	json_decref(all);
	return rc;
}

static const struct cli_cmd key_init = {
	.name = "init",
	.summary = "Create a tenant's KEK in the KMS and its first DEK generation",
	.usage = "--tenant T [--kms file|pkcs11 --pkcs11-module PATH --pkcs11-token LABEL\n"
		 "       [--pkcs11-pin-file F]] [--json]\n\n"
		 "The PKCS#11 PIN comes from --pkcs11-pin-file (mode 0600) or $EXAI_PKCS11_PIN.",
	.run = run_key_init,
};
static const struct cli_cmd key_rotate = {
	.name = "rotate",
	.summary = "New KEK version and DEK generation; re-wrap retained generations",
	.usage = "--tenant T [--json]",
	.run = run_key_rotate,
};
static const struct cli_cmd key_revoke = {
	.name = "revoke",
	.summary = "Disable the tenant's KEK in the KMS: its artefacts no longer decrypt",
	.usage = "--tenant T [--json]",
	.run = run_key_revoke,
};
static const struct cli_cmd key_retire = {
	.name = "retire",
	.summary = "Set min_decryption_generation: older artefacts no longer decrypt",
	.usage = "--tenant T --min-generation N [--json]",
	.run = run_key_retire,
};
static const struct cli_cmd key_status = {
	.name = "status",
	.summary = "Show keyrings: KMS, KEK state, generations, rotation due",
	.usage = "[--tenant T] [--json]",
	.run = run_key_status,
};
static const struct cli_cmd *const key_subs[] = { &key_init, &key_rotate, &key_revoke, &key_retire, &key_status, NULL };

const struct cli_cmd cli_cmd_key = {
	.name = "key",
	.summary = "Tenant keys: KEK in a KMS or HSM, DEK generations, rotation, revocation",
	.subs = key_subs,
};

/* ---- exaictl encrypt / decrypt ---------------------------------------------------------- */

struct out_file {
	FILE *f;
};

static int out_write(void *ud, const void *data, size_t len)
{
	struct out_file *o = ud;
	return fwrite(data, 1, len, o->f) == len ? 0 : -EIO;
}

static int run_crypt(struct cli *cli, int argc, char **argv, bool encrypt)
{
	static const struct option opts[] = {
		{ "tenant", required_argument, NULL, 't' },
		{ "context", required_argument, NULL, 'c' },
		{ "purpose", required_argument, NULL, 'P' },
		{ "object", required_argument, NULL, 'O' },
		{ "frame-size", required_argument, NULL, 'f' },
		{ "output", required_argument, NULL, 'o' },
		{ "raw-aes-key", required_argument, NULL, 'k' },
		{ "key-namespace", required_argument, NULL, 'n' },
		{ "key-name", required_argument, NULL, 'N' },
		{ 0 },
	};
	const char *tenant = NULL, *purpose = NULL, *object = NULL, *output = NULL, *keyfile = NULL, *ns = NULL, *name = NULL;
	const char *pairs[MAX_PAIRS * 2 + 1] = { NULL };
	size_t np = 0;
	uint32_t frame = 0;
	int c, r;
	optind = 0;
	while ((c = cli_getopt(cli, argc, argv, ":o:", opts)) != -1) {
		switch (c) {
		case 't': tenant = optarg; break;
		case 'c':
			if ((r = add_pair(cli, pairs, &np, optarg)) >= 0)
				return r;
			break;
		case 'P': purpose = optarg; break;
		case 'O': object = optarg; break;
		case 'o': output = optarg; break;
		case 'k': keyfile = optarg; break;
		case 'n': ns = optarg; break;
		case 'N': name = optarg; break;
		case 'f': {
			char *end;
			unsigned long v = strtoul(optarg, &end, 10);
			if (!encrypt || *end || v == 0 || v > (16ul << 20))
				return cli_usage_error(cli, "--frame-size wants 1 to 16777216 bytes (encrypt only)");
			frame = (uint32_t)v;
			break;
		}
		default: return EXIT_USAGE;
		}
	}
	if (argc - optind > 1)
		return cli_usage_error(cli, "unexpected argument '%s'", argv[optind + 1]);
	bool raw = keyfile || ns || name;
	if (raw && (!keyfile || !ns || !name))
		return cli_usage_error(cli, "--raw-aes-key, --key-namespace and --key-name go together");
	if (raw == !!tenant)
		return cli_usage_error(cli, "give either --tenant or --raw-aes-key with --key-namespace and --key-name");
	if ((purpose || object) && !tenant)
		return cli_usage_error(cli, "--purpose and --object go with --tenant (use --context otherwise)");
	const char *in = optind < argc ? argv[optind] : "-";

	FILE *fin = strcmp(in, "-") == 0 ? stdin : fopen(in, "rbe");
	if (!fin)
		return fprintf(stderr, "%s: %s: %s\n", cli->path, in, strerror(errno)), EXIT_FAIL;
	/* A named output is written beside and renamed when the stream ends well, so that a
	 * failed decrypt never leaves partial plaintext under the name. */
	char *tmp = NULL;
	struct out_file o = { stdout };
	if (output && strcmp(output, "-") != 0) {
		if (asprintf(&tmp, "%s.tmp.%d", output, (int)getpid()) < 0 || !(o.f = fopen(tmp, "wbxe"))) {
			fprintf(stderr, "%s: %s: %s\n", cli->path, tmp ? tmp : output, strerror(errno));
			free(tmp);
			if (fin != stdin)
				fclose(fin);
			return EXIT_FAIL;
		}
		fchmod(fileno(o.f), 0600);
	}
	exai_keyring *kr = NULL;
	exai_envelope *env = NULL;
	char *key = NULL;
	size_t keylen = 0;
	int rc = EXIT_OK;
	EXAI_OPTS(exai_envelope_opts, eo, .write = out_write, .write_data = &o, .frame_length = frame,
		  .context = np ? pairs : NULL);
	if (raw) {
		r = read_secret(keyfile, 64, &key, &keylen);
		if (r < 0) {
			rc = secret_error(cli, "raw AES key", keyfile, r);
			goto out;
		}
		if (keylen != 32) {
			fprintf(stderr, "%s: raw AES key %s: holds %zu bytes, want exactly 32\n", cli->path, keyfile, keylen);
			rc = EXIT_FAIL;
			goto out;
		}
		r = encrypt ? exai_envelope_encrypt_raw(&env, (const uint8_t *)key, ns, name, &eo)
			    : exai_envelope_decrypt_raw(&env, (const uint8_t *)key, ns, name, &eo);
	} else {
		exai_ctx *ctx = cli_ctx(cli);
		if (!ctx) {
			rc = EXIT_FAIL;
			goto out;
		}
		r = exai_keyring_open(&kr, ctx, tenant, NULL);
		if (r == 0)
			r = encrypt ? exai_keyring_encrypt(&env, kr, purpose, object, &eo) : exai_keyring_decrypt(&env, kr, &eo);
	}
	uint8_t *buf = malloc(IO_CHUNK);
	if (r == 0 && !buf)
		r = -ENOMEM;
	while (r == 0) {
		size_t n = fread(buf, 1, IO_CHUNK, fin);
		if (n)
			r = exai_envelope_update(env, buf, n);
		if (n < IO_CHUNK) {
			if (ferror(fin)) {
				fprintf(stderr, "%s: %s: read error\n", cli->path, in);
				rc = EXIT_FAIL;
			}
			break;
		}
	}
	free(buf);
	if (r == 0 && rc == EXIT_OK)
		r = exai_envelope_final(env);
	if (r < 0)
		rc = cli_fail(cli, r, encrypt ? "encrypt" : "decrypt");
	if (rc == EXIT_OK && fflush(o.f) != 0) {
		fprintf(stderr, "%s: write error: %s\n", cli->path, strerror(errno));
		rc = EXIT_FAIL;
	}
	if (rc == EXIT_OK && tmp && (fsync(fileno(o.f)) != 0 || rename(tmp, output) != 0)) {
		fprintf(stderr, "%s: %s: %s\n", cli->path, output, strerror(errno));
		rc = EXIT_FAIL;
	}
out:
	exai_envelope_free(env);
	exai_keyring_unref(kr);
	exai_secure_free(key);
	if (fin != stdin)
		fclose(fin);
	if (tmp) {
		fclose(o.f);
		if (rc != EXIT_OK)
			unlink(tmp);
		free(tmp);
	}
	return rc;
}

static int run_encrypt(struct cli *cli, int argc, char **argv) { return run_crypt(cli, argc, argv, true); }
static int run_decrypt(struct cli *cli, int argc, char **argv) { return run_crypt(cli, argc, argv, false); }

const struct cli_cmd cli_cmd_encrypt = {
	.name = "encrypt",
	.summary = "Encrypt into an AWS Encryption SDK message (v2, suite 0x0478)",
	.usage = "(--tenant T [--purpose P] [--object ID] | --raw-aes-key FILE --key-namespace NS --key-name NAME)\n"
		 "       [--context KEY=VALUE]... [--frame-size N] [IN|-] [-o OUT|-]\n\n"
		 "--raw-aes-key: a 0600 file of 32 bytes; the message is exactly what the SDK's raw AES\n"
		 "keyring (AES-256-GCM) with that key, namespace and name would write.",
	.run = run_encrypt,
};

const struct cli_cmd cli_cmd_decrypt = {
	.name = "decrypt",
	.summary = "Decrypt an AWS Encryption SDK message (v2, suite 0x0478)",
	.usage = "(--tenant T | --raw-aes-key FILE --key-namespace NS --key-name NAME)\n"
		 "       [--context KEY=VALUE]... [IN|-] [-o OUT|-]\n\n"
		 "--context pairs must be in the message with these values. With -o OUT the plaintext\n"
		 "appears under OUT only when the whole message authenticated; on standard output\n"
		 "frames are written as they authenticate and a failure is reported at the end.",
	.run = run_decrypt,
};

/* ---- exaictl sign / verify / keygen ----------------------------------------------------- */

static int run_sign(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "secret-key", required_argument, NULL, 's' },
		{ "trusted-comment", required_argument, NULL, 't' },
		{ "password-file", required_argument, NULL, 'p' },
		{ "output", required_argument, NULL, 'o' },
		{ 0 },
	};
	const char *sk = NULL, *tc = NULL, *pwfile = NULL, *output = NULL;
	int c;
	optind = 0;
	while ((c = cli_getopt(cli, argc, argv, ":o:t:", opts)) != -1) {
		switch (c) {
		case 's': sk = optarg; break;
		case 't': tc = optarg; break;
		case 'p': pwfile = optarg; break;
		case 'o': output = optarg; break;
		default: return EXIT_USAGE;
		}
	}
	if (!sk || argc - optind != 1)
		return cli_usage_error(cli, "want --secret-key SK and one FILE");
	const char *file = argv[optind];
	char *pw = NULL, *sigpath = NULL, *sig = NULL;
	int r = get_password(cli, pwfile, &pw);
	if (r >= 0)
		return r;
	exai_sign_key *key = NULL;
	size_t len;
	r = exai_sign_key_load(&key, sk, pw);
	exai_secure_free(pw);
	if (r < 0)
		return cli_fail(cli, r, sk);
	r = exai_sign_file(&sig, &len, key, file, tc, NULL);
	exai_sign_key_free(key);
	if (r < 0)
		return cli_fail(cli, r, file);
	if (!output && asprintf(&sigpath, "%s.minisig", file) < 0)
		sigpath = NULL;
	const char *dst = output ? output : sigpath;
	FILE *f = dst ? fopen(dst, "we") : NULL;
	int rc = EXIT_OK;
	if (!f || fwrite(sig, 1, len, f) != len || fclose(f) != 0) {
		fprintf(stderr, "%s: %s: %s\n", cli->path, dst ? dst : file, strerror(errno));
		rc = EXIT_FAIL;
	}
	exai_free(sig);
	free(sigpath);
	return rc;
}

static int run_verify(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "public-key", required_argument, NULL, 'p' },
		{ "prehashed-only", no_argument, NULL, 'H' },
		{ "quiet", no_argument, NULL, 'q' },
		{ 0 },
	};
	const char *pk = NULL;
	bool quiet = false;
	uint32_t flags = 0;
	int c;
	optind = 0;
	while ((c = cli_getopt(cli, argc, argv, ":q", opts)) != -1) {
		switch (c) {
		case 'p': pk = optarg; break;
		case 'H': flags |= EXAI_SIGN_REQUIRE_PREHASHED; break;
		case 'q': quiet = true; break;
		default: return EXIT_USAGE;
		}
	}
	if (!pk || argc - optind < 1 || argc - optind > 2)
		return cli_usage_error(cli, "want --public-key PK, FILE and optionally SIG");
	const char *file = argv[optind];
	char *sigpath = NULL;
	if (argc - optind == 2)
		sigpath = strdup(argv[optind + 1]);
	else if (asprintf(&sigpath, "%s.minisig", file) < 0)
		sigpath = NULL;
	if (!sigpath)
		return cli_fail(cli, -ENOMEM, file);
	exai_sign_pubkey *pub = NULL;
	char *sig = NULL, *tc = NULL;
	size_t siglen;
	int rc = EXIT_OK;
	int r = exai_sign_pubkey_load(&pub, pk);
	if (r < 0) {
		rc = cli_fail(cli, r, pk);
		goto out;
	}
	r = cli_read_input(sigpath, 16384, &sig, &siglen);
	if (r < 0) {
		fprintf(stderr, "%s: %s: %s\n", cli->path, sigpath, strerror(-r));
		rc = EXIT_FAIL;
		goto out;
	}
	r = exai_sign_verify_file(&tc, pub, file, sig, siglen, flags);
	if (r < 0) {
		rc = cli_fail(cli, r, file);
		goto out;
	}
	if (cli->json)
		rc = cli_print_json(json_pack("{s:b, s:s}", "verified", 1, "trusted_comment", tc)) ? EXIT_FAIL : EXIT_OK;
	else if (!quiet)
		printf("Signature and comment signature verified\nTrusted comment: %s\n", tc);
out:
	exai_free(tc);
	free(sig);
	free(sigpath);
	exai_sign_pubkey_free(pub);
	return rc;
}

static int run_keygen(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "sign", no_argument, NULL, 'S' },
		{ "secret-key", required_argument, NULL, 's' },
		{ "public-key", required_argument, NULL, 'p' },
		{ "password-file", required_argument, NULL, 'w' },
		{ "unencrypted", no_argument, NULL, 'W' },
		{ 0 },
	};
	const char *sk = "minisign.key", *pk = "minisign.pub", *pwfile = NULL;
	bool sign = false, unencrypted = false;
	int c;
	optind = 0;
	while ((c = cli_getopt(cli, argc, argv, ":", opts)) != -1) {
		switch (c) {
		case 'S': sign = true; break;
		case 's': sk = optarg; break;
		case 'p': pk = optarg; break;
		case 'w': pwfile = optarg; break;
		case 'W': unencrypted = true; break;
		default: return EXIT_USAGE;
		}
	}
	if (!sign)
		return cli_usage_error(cli, "say which kind of key: --sign (a minisign Ed25519 key pair)");
	if (optind < argc)
		return cli_usage_error(cli, "unexpected argument '%s'", argv[optind]);
	char *pw = NULL;
	int r = unencrypted ? -1 : get_password(cli, pwfile, &pw);
	if (r >= 0)
		return r;
	if (!unencrypted && !pw)
		return cli_usage_error(cli, "give --password-file F or $EXAI_SIGN_PASSWORD, or --unencrypted");
	exai_sign_key *key = NULL;
	r = exai_sign_keygen(&key);
	if (r == 0)
		r = exai_sign_key_save(key, sk, pk, pw);
	exai_secure_free(pw);
	int rc = r < 0 ? cli_fail(cli, r, sk) : EXIT_OK;
	if (r == 0) {
		exai_sign_pubkey *pub = NULL;
		char *b64 = NULL, id[17];
		if (exai_sign_key_public(&pub, key) == 0 && exai_sign_pubkey_base64(&b64, pub) == 0) {
			exai_sign_pubkey_id(pub, id);
			if (cli->json)
				cli_print_json(json_pack("{s:s, s:s, s:s, s:s}", "key_id", id, "public_key", b64,
							 "secret_key_file", sk, "public_key_file", pk));
			else
				printf("key id %s\npublic key %s\nwritten: %s (secret, %s), %s\n", id, b64, sk,
				       unencrypted ? "unencrypted" : "encrypted", pk);
		}
		exai_free(b64);
		exai_sign_pubkey_free(pub);
	}
	exai_sign_key_free(key);
	return rc;
}

const struct cli_cmd cli_cmd_sign = {
	.name = "sign",
	.summary = "Sign a file in the minisign format (writes FILE.minisig)",
	.usage = "--secret-key SK [-t|--trusted-comment C] [--password-file F] [-o SIG] FILE\n\n"
		 "An encrypted secret key's password comes from --password-file or $EXAI_SIGN_PASSWORD.",
	.run = run_sign,
};

const struct cli_cmd cli_cmd_verify = {
	.name = "verify",
	.summary = "Verify a minisign signature and print its trusted comment",
	.usage = "--public-key PK [--prehashed-only] [-q] [--json] FILE [SIG]\n\nSIG defaults to FILE.minisig.",
	.run = run_verify,
};

const struct cli_cmd cli_cmd_keygen = {
	.name = "keygen",
	.summary = "Generate a key pair (--sign: minisign Ed25519)",
	.usage = "--sign [--secret-key SK] [--public-key PK] [--password-file F | --unencrypted] [--json]\n\n"
		 "Defaults: minisign.key and minisign.pub in the current directory. The secret key is\n"
		 "encrypted as minisign does (scrypt) with the password from --password-file or\n"
		 "$EXAI_SIGN_PASSWORD, or stored unencrypted as `minisign -G -W` would.",
	.run = run_keygen,
};
