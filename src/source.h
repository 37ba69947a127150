/* source.h - the inputs of a run, walked one message at a time: a file that
 * is one message (.eml, .json, .json.gz), an mbox file (recognized by its
 * content: a "From " first line and more than one message), a Maildir (cur/
 * and new/, and Maildir++ sub-folders) or a plain directory (recursively).
 * Nothing here knows about reports or databases. */
#ifndef TLSRPT_SOURCE_H
#define TLSRPT_SOURCE_H

#include <stdbool.h>
#include <stddef.h>

struct source_msg {
	const char *file;          /* the file it came from; "-" for standard input */
	size_t number;             /* 1-based position in an mbox; 0 when the file is one message */
	const char *label;         /* "FILE" or "FILE#N", for logs and the delivery's source */
	const unsigned char *data; /* the message, at most cap + 1 bytes of it; valid during the call */
	size_t len;                /* bytes at data */
	size_t size;               /* the whole message; size > len when it was cut at the cap */
};

/* Returns 0 to go on; anything else stops the walk and is returned by source_walk. */
typedef int (*source_fn)(void *arg, const struct source_msg *m);

struct source_stats {
	size_t files;      /* files opened */
	size_t messages;   /* messages handed to the callback (or counted) */
	size_t unreadable; /* files or directories that could not be read (logged) */
	size_t containers; /* mbox files, Maildirs and directories met */
};

/* Walks path ("-": standard input, one message) in a stable order (names
 * sorted bytewise), calling fn for every message. Messages are cut at cap + 1
 * bytes (m->size tells the real size). Unreadable files are logged, counted in
 * st and skipped. Returns 0, or the first non-zero value fn returned. */
int source_walk(const char *path, size_t cap, source_fn fn, void *arg, struct source_stats *st);

/* Counts the messages under path as source_walk would hand them out, without
 * parsing any (an mbox is scanned for its "From " lines). Cheap next to the
 * work itself; used for the progress line. Standard input counts as one. */
size_t source_count(const char *path);

/* Reads fd until want bytes (SIZE_MAX: the end), keeping at most cap + 1 of
 * them in b; *total counts all that was read. -1 with errno on a read error. */
struct buf;
int source_read(int fd, size_t want, size_t cap, struct buf *b, size_t *total);

/* True when data holds an mbox of more than one message. */
bool source_is_mbox(const unsigned char *data, size_t len);

#endif
