/* source-t.c - source.c without a database: a file, an mbox, a Maildir and a
 * directory walked in a stable order with their labels; the count matches the
 * walk; a message over the cap is cut but its size told; reading a pipe. */
#include "autoconf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "source.h"
#include "util.h"

#include "tap.h"

static char dir[] = "/tmp/source-t.XXXXXX";

static void
put(const char *name, const char *text)
{
	char path[512];
	FILE *fp;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	if ((fp = fopen(path, "w")) == NULL || fputs(text, fp) < 0 || fclose(fp) != 0)
		bail("cannot write %s", path);
}

static void
sub(const char *name)
{
	char path[512];

	snprintf(path, sizeof path, "%s/%s", dir, name);
	if (mkdir(path, 0755) < 0)
		bail("cannot mkdir %s", path);
}

/* Every message as "LABEL:size;" after dir/. */
struct seen {
	struct buf line;
	size_t cut;
};

static int
note(void *arg, const struct source_msg *m)
{
	struct seen *s = arg;

	buf_printf(&s->line, "%s:%zu;", m->label + strlen(dir) + 1, m->size);
	if (m->len < m->size)
		s->cut++;
	return 0;
}

static const char *
walk(const char *name, size_t cap, struct seen *s, struct source_stats *st)
{
	char path[512];

	snprintf(path, sizeof path, "%s/%s", dir, name);
	buf_free(&s->line);
	s->cut = 0;
	memset(st, 0, sizeof *st);
	buf_puts(&s->line, "");
	source_walk(path, cap, note, s, st);
	return buf_cstr(&s->line);
}

static size_t
count(const char *name)
{
	char path[512];

	snprintf(path, sizeof path, "%s/%s", dir, name);
	return source_count(path);
}

int
main(void)
{
	struct seen s = {{0}, 0};
	struct source_stats st;
	char cmd[64];

	if (mkdtemp(dir) == NULL)
		bail("mkdtemp failed");
	plan_lazy();
	put("one.eml", "Subject: one\n\nbody\n");
	put("box.mbox", "From a@b Mon Jan  1 00:00:00 2024\nSubject: 1\n\nx\n"
			"From a@b Mon Jan  1 00:00:01 2024\nSubject: 2\n\nyy\n"
			"From a@b Mon Jan  1 00:00:02 2024\nSubject: 3\n\n>From quoted\n");
	sub("md"); sub("md/cur"); sub("md/new"); sub("md/tmp");
	put("md/new/2.host", "Subject: new\n\n");
	put("md/cur/1.host:2,S", "Subject: cur\n\n");
	put("md/tmp/0.host", "Subject: being written\n\n");
	sub("tree"); sub("tree/b"); put("tree/b/z.json", "{}"); put("tree/a.json", "{\"a\":1}");

	is_string("one.eml:19;", walk("one.eml", 1 << 20, &s, &st), "a single file is one message, labelled by its name");
	is_int(0, (long long)st.containers, "a single file is no container");
	{
		const char *got = walk("box.mbox", 1 << 20, &s, &st);

		ok(strncmp(got, "box.mbox#1:", 11) == 0 && strstr(got, "box.mbox#2:") && strstr(got, "box.mbox#3:") &&
		   strstr(got, "#4") == NULL, "an mbox is its three messages, labelled FILE#N (%s)", got);
	}
	is_int(1, (long long)st.containers, "an mbox counts as a container");
	is_int(3, (long long)count("box.mbox"), "source_count finds the mbox's three messages");
	ok(strstr(walk("md", 1 << 20, &s, &st), "tmp") == NULL, "a Maildir's tmp/ is left alone");
	is_int(2, (long long)st.messages, "a Maildir is the messages of cur/ and new/");
	is_int(2, (long long)count("md"), "source_count agrees with the Maildir walk");
	is_string("tree/a.json:7;tree/b/z.json:2;", walk("tree", 1 << 20, &s, &st),
		  "a directory is walked recursively, names sorted bytewise");
	walk("one.eml", 4, &s, &st);
	is_int(1, (long long)s.cut, "a message over the cap is cut, its real size still told");
	walk("nonexistent", 1 << 20, &s, &st);
	is_int(1, (long long)st.unreadable, "a path that cannot be read is counted as unreadable");
	ok(source_is_mbox((const unsigned char *)"From a Mon\n\nx\nFrom b Tue\n\ny\n", 26), "two From lines: an mbox");
	ok(!source_is_mbox((const unsigned char *)"From a Mon\n\nx\n", 14), "one From line: one message, not an mbox");
	{
		int fds[2];
		struct buf b = {0};
		size_t total = 0;

		if (pipe(fds) < 0)
			bail("pipe failed");
		(void)!write(fds[1], "0123456789", 10);
		close(fds[1]);
		ok(source_read(fds[0], SIZE_MAX, 4, &b, &total) == 0 && b.len == 5 && total == 10,
		   "source_read keeps cap + 1 bytes and counts all of them (%zu of %zu)", b.len, total);
		close(fds[0]);
		buf_free(&b);
	}
	buf_free(&s.line);
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	(void)!system(cmd);
	return 0;
}
