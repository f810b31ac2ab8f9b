/* SPDX-License-Identifier: Apache-2.0 */
/*
 * exaid: the libexai service. For now it proves the wiring that workspaces will use: it reads
 * its configuration, creates the libexai context (process hardened), owns the state
 * directory, tells systemd it is ready (Type=notify), keeps the watchdog fed, reloads its
 * configuration on SIGHUP and stops cleanly on SIGTERM or SIGINT. See exaid(8).
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <exai/exai.h>

#include "conf.h"
#include "sd-notify.h"

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

/* Logging: the library's callback and exaid's own messages go the same way. Set before the
 * context exists and changed only on SIGHUP, from the one thread exaid has. */
static struct {
	int level;
	bool journal;
} logcfg = { EXAI_LOG_INFO, false };

static const char own[] = "exaid";

/* @userdata is &own for exaid's own messages, NULL for the library's. */
static void log_line(void *userdata, int level, const char *module, const char *message)
{
	char line[1200];
	int n;
	if (level > logcfg.level)
		return;
	/* exaid's own messages carry no module name; the library's do ("core: ..."). */
	const char *mod = userdata ? "" : module, *sep = userdata ? "" : ": ";
	if (logcfg.journal) /* sd-daemon(3) prefixes: journald reads the level from "<N>" */
		n = snprintf(line, sizeof(line), "<%d>%s%s%s\n", level, mod, sep, message);
	else
		n = snprintf(line, sizeof(line), "exaid: %s: %s%s%s\n", exai_log_level_name(level), mod, sep, message);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line)) {
		n = sizeof(line) - 1;
		line[n - 1] = '\n';
	}
	/* One write per line, so that lines from several threads do not interleave. */
	ssize_t w = write(STDERR_FILENO, line, (size_t)n);
	(void)w;
}

__attribute__((format(printf, 2, 3))) static void logf_(int level, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_line((void *)own, level, own, msg);
}

/* Whether stderr is the journal: systemd sets JOURNAL_STREAM to "DEV:INODE" of that stream. */
static bool stderr_is_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;
	if (!js || sscanf(js, "%llu:%llu", &dev, &ino) != 2 || fstat(STDERR_FILENO, &st) < 0)
		return false;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

static void apply_log(const struct exaid_conf *conf)
{
	logcfg.level = conf->log_level;
	logcfg.journal = conf->log_target == EXAID_LOG_JOURNAL ||
			 (conf->log_target == EXAID_LOG_AUTO && stderr_is_journal());
}

static void notify(const char *state)
{
	int r = sd_notify_send(state);
	if (r < 0)
		logf_(EXAI_LOG_WARNING, "cannot notify systemd at $NOTIFY_SOCKET: %s", strerror(-r));
}

static void notify_ready(exai_ctx *ctx, const char *note)
{
	char msg[4300];
	snprintf(msg, sizeof(msg), "READY=1\nSTATUS=Running; state directory %s%s", exai_ctx_state_dir(ctx), note);
	notify(msg);
}

static const char usage[] =
	"Usage: exaid [--config FILE] [--state-dir DIR] [--check-config]\n"
	"\n"
	"The libexai service: owns the state directory and (later) the workspaces of this host.\n"
	"\n"
	"  -c, --config FILE   configuration file (default: " EXAID_DEFAULT_CONFIG ";\n"
	"                      a missing default file means all defaults)\n"
	"  -s, --state-dir DIR state directory, overriding state_dir of the file\n"
	"      --check-config  check the configuration, print the settings in effect, exit\n"
	"      --version       print the version and exit\n"
	"  -h, --help          print this help and exit\n"
	"\n"
	"Signals: SIGTERM or SIGINT stop it, SIGHUP reloads the configuration.\n"
	"Exit status: 0 stopped cleanly, 1 failure, 2 usage or configuration error.\n";

struct opts {
	const char *config;
	bool config_explicit;
	const char *state_dir; /* --state-dir */
	bool check;
};

static int load(struct exaid_conf *conf, const struct opts *o)
{
	char err[1024];
	int r = exaid_conf_load(conf, o->config, !o->config_explicit, err, sizeof(err));
	if (r < 0) {
		logf_(EXAI_LOG_ERROR, "%s", err);
		return r;
	}
	if (o->state_dir) {
		if (o->state_dir[0] != '/') {
			logf_(EXAI_LOG_ERROR, "--state-dir: '%s' is not an absolute path", o->state_dir);
			exaid_conf_free(conf);
			return -EINVAL;
		}
		free(conf->state_dir);
		free(conf->state_dir_from);
		conf->state_dir = strdup(o->state_dir);
		conf->state_dir_from = strdup("--state-dir");
		if (!conf->state_dir || !conf->state_dir_from) {
			exaid_conf_free(conf);
			return -ENOMEM;
		}
	}
	return 0;
}

static int make_ctx(exai_ctx **ret, const struct exaid_conf *conf, uint32_t flags)
{
	EXAI_OPTS(exai_ctx_opts, co, .state_dir = conf->state_dir, .log_fn = log_line,
		  .log_level = conf->log_level, .flags = flags);
	int r = exai_ctx_new(ret, &co);
	if (r < 0)
		logf_(EXAI_LOG_ERROR, "cannot create the libexai context: %s", exai_errmsg());
	return r;
}

/* The state directory must be a directory exaid can write; it is created (0700) when its
 * parent exists (systemd's StateDirectory= normally creates it). */
static int ensure_state_dir(const char *dir)
{
	struct stat st;
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		logf_(EXAI_LOG_ERROR, "state directory %s: cannot create: %s", dir, strerror(errno));
		return -errno;
	}
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		logf_(EXAI_LOG_ERROR, "state directory %s: not a directory", dir);
		return -ENOTDIR;
	}
	if (access(dir, R_OK | W_OK | X_OK) < 0) {
		logf_(EXAI_LOG_ERROR, "state directory %s: not writable: %s", dir, strerror(errno));
		return -errno;
	}
	if (st.st_mode & 0077)
		logf_(EXAI_LOG_WARNING, "state directory %s: mode %04o lets others in; 0700 is expected", dir,
		      (unsigned)(st.st_mode & 07777));
	return 0;
}

static int check_config(const struct opts *o)
{
	struct exaid_conf conf;
	exai_ctx *ctx = NULL;
	if (load(&conf, o) < 0)
		return EXIT_USAGE;
	/* The library checks what it owns (the state directory, $EXAI_STATE_DIR). */
	if (make_ctx(&ctx, &conf, 0) < 0) {
		exaid_conf_free(&conf);
		return EXIT_USAGE;
	}
	printf("# %s: %s\n", o->config, access(o->config, F_OK) == 0 ? "ok" : "absent, defaults apply");
	printf("state_dir = %s\n", exai_ctx_state_dir(ctx));
	printf("log_level = %s\n", exai_log_level_name(conf.log_level));
	printf("log_target = %s\n", exaid_log_target_name(conf.log_target));
	exai_ctx_unref(ctx);
	exaid_conf_free(&conf);
	return EXIT_OK;
}

/* SIGHUP: read the file again; a bad file leaves everything as it was. */
static void reload(struct exaid_conf *conf, const struct opts *o, exai_ctx *ctx)
{
	struct exaid_conf next;
	struct timespec ts;
	char msg[64];
	clock_gettime(CLOCK_MONOTONIC, &ts);
	snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%llu",
		 (unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000);
	notify(msg);
	if (load(&next, o) < 0) {
		logf_(EXAI_LOG_ERROR, "configuration not reloaded; the previous one stays in effect");
		notify_ready(ctx, "; the last reload failed (see the log)");
		return;
	}
	const char *old_dir = exai_ctx_state_dir(ctx);
	if (next.state_dir && strcmp(next.state_dir, old_dir) != 0)
		logf_(EXAI_LOG_WARNING, "state_dir changed to %s (%s): takes effect at the next start; %s stays in use",
		      next.state_dir, next.state_dir_from, old_dir);
	apply_log(&next);
	exai_ctx_set_log(ctx, log_line, NULL, next.log_level);
	exaid_conf_free(conf);
	*conf = next;
	logf_(EXAI_LOG_NOTICE, "configuration reloaded from %s (log_level %s)", o->config,
	      exai_log_level_name(conf->log_level));
	notify_ready(ctx, "");
}

static int run(const struct opts *o)
{
	struct exaid_conf conf;
	exai_ctx *ctx = NULL;
	int sfd = -1, tfd = -1, status = EXIT_FAIL;

	if (load(&conf, o) < 0)
		return EXIT_USAGE;
	apply_log(&conf);

	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0 || (sfd = signalfd(-1, &mask, SFD_CLOEXEC)) < 0) {
		logf_(EXAI_LOG_ERROR, "signalfd: %s", strerror(errno));
		goto out;
	}
	int64_t wd = sd_watchdog_usec();
	if (wd < 0) {
		logf_(EXAI_LOG_ERROR, "WATCHDOG_USEC='%s' is not a positive number of microseconds",
		      getenv("WATCHDOG_USEC"));
		goto out;
	}
	if (wd > 0) {
		/* Ping at half the interval, as sd_watchdog_enabled(3) advises. */
		int64_t half = wd / 2;
		struct itimerspec its = { .it_interval = { half / 1000000, (half % 1000000) * 1000 } };
		its.it_value = its.it_interval;
		tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
		if (tfd < 0 || timerfd_settime(tfd, 0, &its, NULL) < 0) {
			logf_(EXAI_LOG_ERROR, "timerfd: %s", strerror(errno));
			goto out;
		}
	}

	if (make_ctx(&ctx, &conf, EXAI_CTX_HARDEN_PROCESS) < 0 || ensure_state_dir(exai_ctx_state_dir(ctx)) < 0)
		goto out;

	notify_ready(ctx, "");
	logf_(EXAI_LOG_NOTICE, "libexai %s ready; state directory %s%s", exai_version(), exai_ctx_state_dir(ctx),
	      wd > 0 ? "; watchdog on" : "");

	for (;;) {
		struct pollfd fds[2] = { { .fd = sfd, .events = POLLIN }, { .fd = tfd, .events = POLLIN } };
		if (poll(fds, tfd >= 0 ? 2 : 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			logf_(EXAI_LOG_ERROR, "poll: %s", strerror(errno));
			break;
		}
		if (tfd >= 0 && (fds[1].revents & POLLIN)) {
			uint64_t expirations;
			if (read(tfd, &expirations, sizeof(expirations)) == sizeof(expirations))
				notify("WATCHDOG=1");
		}
		if (fds[0].revents & POLLIN) {
			struct signalfd_siginfo si;
			if (read(sfd, &si, sizeof(si)) != sizeof(si))
				continue;
			if (si.ssi_signo == SIGHUP) {
				reload(&conf, o, ctx);
				continue;
			}
			logf_(EXAI_LOG_NOTICE, "SIG%s received, stopping", sigabbrev_np((int)si.ssi_signo));
			status = EXIT_OK;
			break;
		}
	}
	notify("STOPPING=1\nSTATUS=Stopping");
out:
	exai_ctx_unref(ctx);
	if (sfd >= 0)
		close(sfd);
	if (tfd >= 0)
		close(tfd);
	exaid_conf_free(&conf);
	if (status == EXIT_OK)
		logf_(EXAI_LOG_INFO, "stopped");
	return status;
}

int main(int argc, char **argv)
{
	enum { OPT_CHECK = 256, OPT_VERSION };
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "state-dir", required_argument, NULL, 's' },
		{ "check-config", no_argument, NULL, OPT_CHECK },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct opts o = { .config = EXAID_DEFAULT_CONFIG };
	int c;

	/* Until the configuration says otherwise: "<N>" prefixes when stderr is the journal. */
	logcfg.journal = stderr_is_journal();

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":c:s:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			o.config = optarg;
			o.config_explicit = true;
			break;
		case 's':
			o.state_dir = optarg;
			break;
		case OPT_CHECK:
			o.check = true;
			break;
		case OPT_VERSION:
			printf("exaid %s (libexai %s)\n", EXAID_VERSION, exai_version());
			return EXIT_OK;
		case 'h':
			fputs(usage, stdout);
			return EXIT_OK;
		case ':':
			fprintf(stderr, "exaid: option '%s' needs a value\nTry 'exaid --help'.\n", argv[optind - 1]);
			return EXIT_USAGE;
		default:
			if (optopt)
				fprintf(stderr, "exaid: unknown option '-%c'\nTry 'exaid --help'.\n", optopt);
			else
				fprintf(stderr, "exaid: unknown option '%s'\nTry 'exaid --help'.\n", argv[optind - 1]);
			return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "exaid: unexpected argument '%s'\nTry 'exaid --help'.\n", argv[optind]);
		return EXIT_USAGE;
	}
	return o.check ? check_config(&o) : run(&o);
}
