/* config.c - defaults, the "key = value" file and -o overrides, from one table. */
#include "autoconf.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "util.h"

enum key_type { KEY_STRING, KEY_SIZE, KEY_UINT, KEY_TRUST, KEY_POLICY };

struct key_def {
	const char *name;
	enum key_type type;
	size_t offset;
	unsigned long long min, max; /* for KEY_SIZE and KEY_UINT */
};

#define LIM(f) (offsetof(struct config, limits) + offsetof(struct limits, f))
#define CFG(f) offsetof(struct config, f)

static const struct key_def keys[] = {
	{"database", KEY_STRING, CFG(database), 0, 0},
	{"deadline", KEY_UINT, CFG(deadline), 1, 86400},
	{"connect_timeout", KEY_UINT, CFG(connect_timeout), 2, 3600},
	{"statement_timeout", KEY_UINT, CFG(statement_timeout), 1, 86400},
	{"lock_timeout", KEY_UINT, CFG(lock_timeout), 1, 86400},
	{"published_sts_policy", KEY_STRING, CFG(published_sts_policy), 0, 0},
	{"backfill_jobs", KEY_UINT, CFG(backfill_jobs), 1, 8},
	{"max_message_size", KEY_SIZE, LIM(max_message_size), 1024, (size_t)1 << 32},
	{"max_inflated_size", KEY_SIZE, LIM(max_inflated_size), 1024, (size_t)1 << 32},
	{"max_inflate_ratio", KEY_UINT, LIM(max_inflate_ratio), 2, 100000},
	{"max_json_depth", KEY_UINT, LIM(max_json_depth), 4, 1000},
	{"max_json_size", KEY_SIZE, LIM(max_json_size), 64, (size_t)1 << 30},
	{"max_json_values", KEY_SIZE, LIM(max_json_values), 16, (size_t)1 << 30},
	{"max_policies", KEY_SIZE, LIM(max_policies), 1, 1000000},
	{"max_failures_per_policy", KEY_SIZE, LIM(max_failures_per_policy), 1, 10000000},
	{"max_string_length", KEY_SIZE, LIM(max_string_length), 16, (size_t)1 << 30},
	{"max_report_parts", KEY_SIZE, LIM(max_report_parts), 1, 100000},
	{"max_rejected_raw", KEY_SIZE, LIM(max_rejected_raw), 0, (size_t)1 << 30},
	{"max_header_size", KEY_SIZE, LIM(max_header_size), 1024, (size_t)1 << 30},
	{"max_header_params", KEY_SIZE, LIM(max_header_params), 4, 1000000},
	{"max_mime_parts", KEY_SIZE, LIM(max_mime_parts), 2, 10000000},
	{"max_mime_depth", KEY_UINT, LIM(max_mime_depth), 2, 1000},
	{"max_message_inflated", KEY_SIZE, LIM(max_message_inflated), 1024, (size_t)1 << 34},
	{"max_message_json_values", KEY_SIZE, LIM(max_message_json_values), 16, (size_t)1 << 32},
	{"max_message_rows", KEY_SIZE, LIM(max_message_rows), 1, (size_t)1 << 32},
	{"max_parse_time", KEY_UINT, LIM(max_parse_time), 1, 86400},
	{"max_rejected_raw_per_source_day", KEY_SIZE, LIM(max_rejected_raw_per_source_day), 0, (size_t)1 << 40},
	{"max_rejected_raw_per_day", KEY_SIZE, LIM(max_rejected_raw_per_day), 0, (size_t)1 << 40},
	{"trust", KEY_TRUST, LIM(trust.mode), 0, 0},
	{"authserv_id", KEY_STRING, LIM(trust.authserv_id), 0, 0},
	{"dkim_policy", KEY_POLICY, LIM(trust.policy), 0, 0},
	{"our_domains", KEY_STRING, LIM(trust.our_domains), 0, 0},
	{"dkim_key_file", KEY_STRING, LIM(trust.dkim_key_file), 0, 0},
};

static const char *const trust_names[] = {"none", "authentication-results", "dkim-verify"};
static const char *const policy_names[] = {"accept", "require"};

void
config_defaults(struct config *c)
{
	memset(c, 0, sizeof *c);
	c->deadline = 60;
	c->connect_timeout = 10;
	c->statement_timeout = 30;
	c->lock_timeout = 10;
	c->backfill_jobs = 2;
	c->limits.max_message_size = (size_t)32 << 20;
	c->limits.max_inflated_size = (size_t)64 << 20;
	c->limits.max_inflate_ratio = 200;
	c->limits.max_json_depth = 32;
	c->limits.max_json_size = (size_t)64 << 20;
	c->limits.max_json_values = 400000;
	c->limits.max_policies = 1000;
	c->limits.max_failures_per_policy = 100000;
	c->limits.max_string_length = (size_t)64 << 10;
	c->limits.max_report_parts = 100;
	c->limits.max_rejected_raw = (size_t)1 << 20;
	c->limits.max_header_size = (size_t)256 << 10;
	c->limits.max_header_params = 64;
	c->limits.max_mime_parts = 1000;
	c->limits.max_mime_depth = 16;
	c->limits.max_message_inflated = (size_t)128 << 20;
	c->limits.max_message_json_values = 1000000;
	c->limits.max_message_rows = 50000;
	c->limits.max_parse_time = 20;
	c->limits.max_rejected_raw_per_source_day = (size_t)10 << 20;
	c->limits.max_rejected_raw_per_day = (size_t)1 << 30;
}

void
config_free(struct config *c)
{
	free(c->database);
	c->database = NULL;
	free(c->published_sts_policy);
	c->published_sts_policy = NULL;
	free(c->limits.trust.authserv_id);
	free(c->limits.trust.our_domains);
	free(c->limits.trust.dkim_key_file);
	c->limits.trust.authserv_id = c->limits.trust.our_domains = c->limits.trust.dkim_key_file = NULL;
}

int
config_set(struct config *c, const char *key, const char *value, struct error *e)
{
	unsigned long long v;
	size_t sz;

	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
		const struct key_def *k = &keys[i];
		char *field = (char *)c + k->offset;

		if (strcmp(k->name, key) != 0)
			continue;
		switch (k->type) {
		case KEY_STRING:
			free(*(char **)field);
			*(char **)field = *value ? xstrdup(value) : NULL;
			return 0;
		case KEY_TRUST:
			for (int t = 0; t < 3; t++)
				if (strcmp(value, trust_names[t]) == 0) {
					*(enum trust_mode *)field = (enum trust_mode)t;
					return 0;
				}
			error_set(e, ERR_CONFIG, "%s: \"%s\" is not none, authentication-results or dkim-verify",
				  key, value);
			return -1;
		case KEY_POLICY:
			for (int t = 0; t < 2; t++)
				if (strcmp(value, policy_names[t]) == 0) {
					*(enum dkim_policy *)field = (enum dkim_policy)t;
					return 0;
				}
			error_set(e, ERR_CONFIG, "%s: \"%s\" is not accept or require", key, value);
			return -1;
		case KEY_SIZE:
			if (!parse_size(value, &sz) || sz < k->min || sz > k->max) {
				error_set(e, ERR_CONFIG, "%s: \"%s\" is not a size from %llu to %llu bytes (k, M, G allowed)",
					  key, value, k->min, k->max);
				return -1;
			}
			*(size_t *)field = sz;
			return 0;
		case KEY_UINT:
			if (!parse_uint(value, k->max, &v) || v < k->min) {
				error_set(e, ERR_CONFIG, "%s: \"%s\" is not a number from %llu to %llu",
					  key, value, k->min, k->max);
				return -1;
			}
			*(unsigned *)field = (unsigned)v;
			return 0;
		}
	}
	error_set(e, ERR_CONFIG, "unknown setting \"%s\"", key);
	return -1;
}

static char *
trim(char *s)
{
	char *end;

	while (isspace((unsigned char)*s))
		s++;
	end = s + strlen(s);
	while (end > s && isspace((unsigned char)end[-1]))
		*--end = '\0';
	return s;
}

/* libpq's own rule for .pgpass: a secret must not be readable by others. */
static bool
holds_password(const char *conninfo)
{
	const char *scheme, *at, *colon;

	if (conninfo == NULL)
		return false;
	if (strstr(conninfo, "password") != NULL)
		return true;
	if ((scheme = strstr(conninfo, "://")) == NULL)
		return false;
	at = strchr(scheme + 3, '@');
	colon = strchr(scheme + 3, ':');
	return at != NULL && colon != NULL && colon < at; /* postgresql://user:secret@host */
}

int
config_load(struct config *c, const char *path, bool must_exist, struct error *e)
{
	char line[4096];
	struct stat st;
	unsigned lineno = 0;
	FILE *fp;
	int fd;

	/* O_NONBLOCK: a FIFO (or a device) must not block us before the deadline
	 * is armed; it is refused below */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0) {
		if (errno == ENOENT && !must_exist)
			return 0;
		error_set(e, ERR_CONFIG, "cannot read %s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		error_set(e, ERR_CONFIG, "%s: not a regular file", path);
		return -1;
	}
	if (st.st_mode & S_IWOTH) {
		close(fd);
		error_set(e, ERR_CONFIG, "%s is writable by anyone (it names the database and the limits); "
			  "chmod o-w it", path);
		return -1;
	}
	(void)fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	if ((fp = fdopen(fd, "r")) == NULL) {
		close(fd);
		error_set(e, ERR_TEMP, "%s: %s", path, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof line, fp)) {
		char *key, *value, *eq, *hash;

		lineno++;
		if (strchr(line, '\n') == NULL && !feof(fp)) {
			error_set(e, ERR_CONFIG, "%s:%u: line too long", path, lineno);
			goto fail;
		}
		if ((hash = strchr(line, '#')) != NULL && (hash == line || isspace((unsigned char)hash[-1])))
			*hash = '\0';
		key = trim(line);
		if (*key == '\0')
			continue;
		if ((eq = strchr(key, '=')) == NULL) {
			error_set(e, ERR_CONFIG, "%s:%u: expected \"key = value\"", path, lineno);
			goto fail;
		}
		*eq = '\0';
		key = trim(key);
		value = trim(eq + 1);
		if (config_set(c, key, value, e) < 0) {
			char msg[sizeof e->msg];

			snprintf(msg, sizeof msg, "%s", e->msg);
			error_clear(e);
			error_set(e, ERR_CONFIG, "%s:%u: %s", path, lineno, msg);
			goto fail;
		}
	}
	if (ferror(fp)) {
		error_set(e, ERR_CONFIG, "cannot read %s", path);
		goto fail;
	}
	if (holds_password(c->database) && (st.st_mode & (S_IRWXG | S_IRWXO))) {
		error_set(e, ERR_CONFIG,
			  "%s holds a password and is readable by group or others; chmod 0600 it",
			  path);
		goto fail;
	}
	fclose(fp);
	return 0;
fail:
	fclose(fp);
	return -1;
}

void
config_warn_password(const char *conninfo, const char *where)
{
	if (holds_password(conninfo))
		log_warn("a password given with %s is visible to every user of this host (ps); "
			 "use ~/.pgpass, PGPASSFILE or a 0600 configuration file", where);
}
