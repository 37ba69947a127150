/* source.c - walking the inputs of a run: single-message files, mbox files,
 * Maildirs and directories, one message at a time.
 * Regular files are mapped, not read, so an mbox of several gigabytes costs
 * address space, not memory; a message is handed out as a pointer into the
 * mapping, cut at the size cap. */
#include "autoconf.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "source.h"
#include "util.h"

#define MAX_DEPTH 64

struct walk {
	size_t cap;
	source_fn fn; /* NULL: count only */
	void *arg;
	struct source_stats *st;
};

/* A From_ line: "From " and then something that is not a blank. */
static bool
from_line_at(const unsigned char *p, size_t left)
{
	return left > 5 && memcmp(p, "From ", 5) == 0 && p[5] != ' ' && p[5] != '\t' && p[5] != '\r' &&
	       p[5] != '\n';
}

/* The start of the next From_ line after position pos (which is at a line
 * start), or len. */
static size_t
next_from(const unsigned char *data, size_t len, size_t pos)
{
	const unsigned char *p = data + pos, *end = data + len;

	while (p < end) {
		const unsigned char *hit = memmem(p, (size_t)(end - p), "\nFrom ", 6);

		if (hit == NULL)
			return len;
		p = hit + 1;
		if (from_line_at(p, (size_t)(end - p)))
			return (size_t)(p - data);
	}
	return len;
}

bool
source_is_mbox(const unsigned char *data, size_t len)
{
	return from_line_at(data, len) && next_from(data, len, 0) < len;
}

static int
deliver(struct walk *w, const char *file, size_t number, const char *label, const unsigned char *data,
	size_t size)
{
	struct source_msg m;

	w->st->messages++;
	if (w->fn == NULL)
		return 0;
	m.file = file;
	m.number = number;
	m.label = label;
	m.data = data;
	m.size = size;
	m.len = size > w->cap ? w->cap + 1 : size;
	return w->fn(w->arg, &m);
}

static int
walk_mbox(struct walk *w, const char *path, const unsigned char *data, size_t len)
{
	size_t start = 0, number = 0;
	int rc = 0;

	w->st->containers++;
	while (start < len && rc == 0) {
		size_t end = next_from(data, len, start);
		char *label;

		size_t mlen = end - start;

		number++;
		/* the blank line before the next "From " separates; it is not the message's */
		if (end < len && mlen >= 2 && data[start + mlen - 1] == '\n' && data[start + mlen - 2] == '\n')
			mlen--;
		else if (end < len && mlen >= 4 && memcmp(data + start + mlen - 4, "\r\n\r\n", 4) == 0)
			mlen -= 2;
		if (w->fn == NULL) {
			w->st->messages++;
		} else {
			label = xasprintf("%s#%zu", path, number);
			rc = deliver(w, path, number, label, data + start, mlen);
			free(label);
		}
		start = end;
	}
	return rc;
}

int
source_read(int fd, size_t want, size_t cap, struct buf *b, size_t *total)
{
	unsigned char scratch[65536];

	*total = 0;
	while (*total < want) {
		size_t room = b->len <= cap ? cap + 1 - b->len : 0;
		size_t ask = room > sizeof scratch ? sizeof scratch : room;
		ssize_t n;

		if (ask > want - *total)
			ask = want - *total;
		if (ask > 0) {
			buf_reserve(b, ask);
			n = read(fd, b->data + b->len, ask);
		} else {
			/* drain the rest, so the writer is not cut off */
			n = read(fd, scratch, want - *total < sizeof scratch ? want - *total : sizeof scratch);
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		if (ask > 0)
			b->len += (size_t)n;
		*total += (size_t)n;
	}
	buf_cstr(b);
	return 0;
}

static void
unreadable(struct walk *w, const char *path, int err)
{
	if (w->fn != NULL) /* counting says nothing: the walk will */
		log_error("cannot read %s: %s", path, strerror(err));
	w->st->unreadable++;
}

/* One file: a message, or an mbox when may_be_mbox and its content says so. */
static int
walk_file(struct walk *w, const char *path, bool may_be_mbox)
{
	struct stat sb;
	int fd, rc = 0;

	if (strcmp(path, "-") == 0)
		fd = dup(STDIN_FILENO);
	else
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0 || fstat(fd, &sb) < 0) {
		unreadable(w, path, errno);
		if (fd >= 0)
			close(fd);
		return 0;
	}
	w->st->files++;
	if (S_ISREG(sb.st_mode) && sb.st_size > 0 && strcmp(path, "-") != 0) {
		size_t len = (size_t)sb.st_size;
		unsigned char *map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);

		close(fd);
		if (map == MAP_FAILED) {
			unreadable(w, path, errno);
			return 0;
		}
		if (may_be_mbox && source_is_mbox(map, len)) {
			madvise(map, len, MADV_SEQUENTIAL);
			rc = walk_mbox(w, path, map, len);
		} else if (w->fn == NULL) {
			w->st->messages++;
		} else {
			/* only what is handed out needs to be read in */
			rc = deliver(w, path, 0, path, map, len);
		}
		munmap(map, len);
		return rc;
	}
	if (w->fn == NULL) {
		close(fd);
		w->st->messages++;
		return 0;
	}
	{
		struct buf b = {0};
		size_t total;
		int flags = fcntl(fd, F_GETFL);

		if (flags >= 0)
			fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
		if (source_read(fd, SIZE_MAX, w->cap, &b, &total) < 0) {
			unreadable(w, path, errno);
			close(fd);
			buf_free(&b);
			return 0;
		}
		close(fd);
		buf_cstr(&b);
		w->st->messages++;
		if (w->fn != NULL) {
			struct source_msg m = {path, 0, strcmp(path, "-") == 0 ? "stdin" : path, b.data, b.len, total};

			rc = w->fn(w->arg, &m);
		}
		buf_free(&b);
		return rc;
	}
}

static int
by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

static bool
is_dir(const char *path)
{
	struct stat sb;

	return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static bool
is_maildir(const char *path)
{
	char *cur = xasprintf("%s/cur", path), *new = xasprintf("%s/new", path);
	bool yes = is_dir(cur) && is_dir(new);

	free(cur);
	free(new);
	return yes;
}

static char *
join(const char *dir, const char *name)
{
	size_t n = strlen(dir);

	return n > 0 && dir[n - 1] == '/' ? xasprintf("%s%s", dir, name) : xasprintf("%s/%s", dir, name);
}

static int walk_dir(struct walk *w, const char *path, int depth);

/* One directory entry; symbolic links to directories are not followed. */
static int
walk_entry(struct walk *w, const char *path, int depth, bool maildir_files)
{
	struct stat sb;

	if (lstat(path, &sb) < 0) {
		unreadable(w, path, errno);
		return 0;
	}
	if (S_ISLNK(sb.st_mode) && stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
		return 0;
	if (S_ISDIR(sb.st_mode))
		return maildir_files ? 0 : walk_dir(w, path, depth + 1);
	if (S_ISREG(sb.st_mode))
		return walk_file(w, path, !maildir_files);
	return 0; /* sockets, fifos, devices found in a tree are not inputs */
}

/* The files of one directory, sorted; names starting with '.' are skipped. */
static int
walk_files_in(struct walk *w, const char *path, int depth, bool maildir_files)
{
	struct dirent **list;
	int n = scandir(path, &list, NULL, by_name), rc = 0;

	if (n < 0) {
		unreadable(w, path, errno);
		return 0;
	}
	for (int i = 0; i < n; i++) {
		if (rc == 0 && list[i]->d_name[0] != '.') {
			char *child = join(path, list[i]->d_name);

			rc = walk_entry(w, child, depth, maildir_files);
			free(child);
		}
		free(list[i]);
	}
	free(list);
	return rc;
}

static int
walk_maildir(struct walk *w, const char *path, int depth)
{
	static const char *const subdirs[] = {"cur", "new"};
	struct dirent **list;
	int n, rc = 0;

	w->st->containers++;
	for (size_t i = 0; i < 2 && rc == 0; i++) {
		char *sub = join(path, subdirs[i]);

		rc = walk_files_in(w, sub, depth, true);
		free(sub);
	}
	/* Maildir++ folders: .Name directories that are Maildirs themselves */
	if (rc != 0 || depth >= MAX_DEPTH || (n = scandir(path, &list, NULL, by_name)) < 0)
		return rc;
	for (int i = 0; i < n; i++) {
		const char *name = list[i]->d_name;

		if (rc == 0 && name[0] == '.' && strcmp(name, ".") != 0 && strcmp(name, "..") != 0) {
			char *child = join(path, name);
			struct stat sb;

			if (lstat(child, &sb) == 0 && S_ISDIR(sb.st_mode) && is_maildir(child))
				rc = walk_maildir(w, child, depth + 1);
			free(child);
		}
		free(list[i]);
	}
	free(list);
	return rc;
}

static int
walk_dir(struct walk *w, const char *path, int depth)
{
	if (depth > MAX_DEPTH) {
		log_warn("%s: more than %d directories deep, not read", path, MAX_DEPTH);
		return 0;
	}
	if (is_maildir(path))
		return walk_maildir(w, path, depth);
	w->st->containers++;
	return walk_files_in(w, path, depth, false);
}

static int
walk_top(struct walk *w, const char *path)
{
	struct stat sb;

	if (strcmp(path, "-") != 0 && stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
		return walk_dir(w, path, 0);
	return walk_file(w, path, true);
}

int
source_walk(const char *path, size_t cap, source_fn fn, void *arg, struct source_stats *st)
{
	struct walk w = {cap, fn, arg, st};

	return walk_top(&w, path);
}

size_t
source_count(const char *path)
{
	struct source_stats counted = {0};
	struct walk w = {0, NULL, NULL, &counted};

	if (strcmp(path, "-") == 0)
		return 1;
	walk_top(&w, path); /* unreadable files: the walk itself will say so */
	return counted.messages;
}
