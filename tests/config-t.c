/* config-t.c - config.c: the defaults, one key set from text, the file
 * (comments, white space, errors with their line), and the rule that a file
 * holding a password must not be readable by others. */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "status.h"

#include "tap.h"

static char dir[] = "/tmp/config-t.XXXXXX";

/* Writes text to dir/name with mode; returns the path (static). */
static const char *
write_conf(const char *name, const char *text, mode_t mode)
{
	static char path[256];
	FILE *fp;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	if ((fp = fopen(path, "w")) == NULL || fputs(text, fp) < 0 || fclose(fp) != 0)
		bail("cannot write %s", path);
	chmod(path, mode);
	return path;
}

static void
test_set(void)
{
	struct config c;
	struct error e = {ERR_NONE, ""};

	config_defaults(&c);
	ok(config_set(&c, "max_message_size", "2M", &e) == 0 && c.limits.max_message_size == (size_t)2 << 20,
	   "a size key takes a unit (2M)");
	ok(config_set(&c, "deadline", "0", &e) < 0 && e.cls == ERR_CONFIG, "a number under its range is a config error");
	error_clear(&e);
	ok(config_set(&c, "no_such_key", "1", &e) < 0 && strstr(e.msg, "no_such_key") != NULL,
	   "an unknown key is refused, by name");
	error_clear(&e);
	ok(config_set(&c, "trust", "dkim-verify", &e) == 0 && c.limits.trust.mode == TRUST_DKIM_VERIFY,
	   "trust takes its names");
	ok(config_set(&c, "dkim_policy", "sometimes", &e) < 0, "dkim_policy refuses a word it does not know");
	error_clear(&e);
	ok(config_set(&c, "database", "dbname=a", &e) == 0 && config_set(&c, "database", "dbname=b", &e) == 0 &&
	   strcmp(c.database, "dbname=b") == 0, "a string key set twice keeps the last value");
	config_free(&c);
}

static void
test_file(void)
{
	struct config c;
	struct error e = {ERR_NONE, ""};
	const char *p;

	config_defaults(&c);
	p = write_conf("good.conf", "# a comment\n\n  deadline = 30  # seconds\nmax_policies=5\n", 0644);
	ok(config_load(&c, p, true, &e) == 0, "a file with comments and white space loads (%s)", e.msg);
	ok(c.deadline == 30 && c.limits.max_policies == 5, "its values are set, the trailing comment dropped");
	p = write_conf("bad.conf", "deadline = 30\nthis line has no equals sign\n", 0644);
	ok(config_load(&c, p, true, &e) < 0 && strstr(e.msg, "bad.conf:2:") != NULL, "an error names the file and line 2");
	error_clear(&e);
	ok(config_load(&c, "/nonexistent/tlsrpt.conf", false, &e) == 0, "a missing file is fine when not asked for");
	ok(config_load(&c, "/nonexistent/tlsrpt.conf", true, &e) < 0 && e.cls == ERR_CONFIG,
	   "a missing file named with -c is a config error");
	error_clear(&e);
	p = write_conf("secret.conf", "database = host=db password=hunter2\n", 0644);
	ok(config_load(&c, p, true, &e) < 0 && strstr(e.msg, "chmod 0600") != NULL,
	   "a password readable by others is refused");
	error_clear(&e);
	p = write_conf("secret-uri.conf", "database = postgresql://u:hunter2@db/x\n", 0640);
	ok(config_load(&c, p, true, &e) < 0, "a password in a URI readable by the group is refused");
	error_clear(&e);
	p = write_conf("secret-ok.conf", "database = host=db password=hunter2\n", 0600);
	ok(config_load(&c, p, true, &e) == 0, "a password only its owner can read is accepted");
	config_free(&c);
}

int
main(void)
{
	char cmd[64];

	if (mkdtemp(dir) == NULL)
		bail("mkdtemp failed");
	plan_lazy();
	test_set();
	test_file();
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	(void)!system(cmd);
	return 0;
}
