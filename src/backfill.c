/* backfill.c - FILE runs: the walk, the pipeline, the progress line, the
 * closing summary. Each message goes through deliver.c's stages; its
 * transaction through pipeline.c, many in flight, each still all or nothing. */
#include "autoconf.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backfill.h"
#include "deliver.h"
#include "exits.h"
#include "log.h"
#include "pipeline.h"
#include "source.h"
#include "util.h"

struct backfill {
	const struct config *cfg;
	bool dry_run;
	struct store *store;
	struct pipeline *pipeline;   /* NULL once it stopped or finished */
	struct store_via via;
	size_t inputs, reports_new, reports_dup, rejected, unreadable;
	size_t done;                 /* messages committed (their answers read) */
	int stop_status;             /* set where the pipeline stopped */
	struct source_stats walked;  /* what the FILE arguments held */
	size_t total;                /* messages to do, when counted first; 0: unknown */
	bool progress;               /* a progress line on stderr (a terminal) */
	long long t_start, t_shown;
};

/* A message handed to the pipeline, until it hands it back. */
struct backfill_pending {
	struct backfill *run;
	struct delivery *d;
	long long t0;
};

static bool backfill_progress_shown;

void
backfill_progress_clear(void)
{
	if (backfill_progress_shown)
		fputs("\r\033[K", stderr);
	backfill_progress_shown = false;
}

/* The pipeline hands back every message once, in order: stored (res), or not
 * stored, the first of those with the reason the run stops (e). */
static void
backfill_done(void *arg, void *tag, const struct store_result *res, const struct error *e)
{
	struct backfill *run = arg;
	struct backfill_pending *p = tag;
	const struct delivery *d = p->d;

	if (res != NULL) {
		run->done++;
		run->reports_new += res->reports_new;
		run->reports_dup += res->reports_duplicate;
		run->rejected += d->n_rejections;
		deliver_log_outcome(d, NULL, res, now_ms() - p->t0);
		alarm(run->cfg->deadline); /* it moves: the deadline runs from here */
	} else if (e != NULL) {
		deliver_log_deferred(d->source, NULL, d->message_id, e->msg);
		run->stop_status = exits_fail(e->cls, "stopped at %s: %s; the %zu message(s) before it are stored"
					     " (%zu reports, %zu already there, %zu rejected); run the same command"
					     " again to go on", d->source, e->msg, run->done, run->reports_new,
					     run->reports_dup, run->rejected);
	}
	delivery_free(p->d);
	free(p);
}

/* The pipeline stopped: the status its first lost message set, or e's. */
static int
backfill_stopped(struct backfill *run, const struct error *e)
{
	pipeline_free(run->pipeline);
	run->pipeline = NULL;
	return run->stop_status ? run->stop_status : exits_fail_error(e);
}

/* Commits what is in flight and ends the pipeline. 0 or an exit status. */
static int
backfill_finish(struct backfill *run)
{
	struct error e = {ERR_NONE, ""};
	int status = 0;

	if (run->pipeline == NULL)
		return 0;
	alarm(run->cfg->deadline);
	if (pipeline_finish(run->pipeline, &e) < 0)
		status = backfill_stopped(run, &e);
	pipeline_free(run->pipeline);
	run->pipeline = NULL;
	alarm(0);
	return status;
}

static void
backfill_print_json(const struct delivery *d)
{
	struct buf json = {0};

	delivery_print_json(d, &json);
	fwrite(json.data, 1, json.len, stdout);
	buf_free(&json);
}

/* One message: split, then printed (--dry-run) or handed to the pipeline.
 * Returns an exit status, 0 to go on. */
static int
backfill_message(struct backfill *run, const struct deliver_input *in)
{
	struct delivery *d = NULL;
	struct error e = {ERR_NONE, ""};
	struct backfill_pending *p;
	int status = 0;

	alarm(run->cfg->deadline);
	run->inputs++;
	if (deliver_prepare(in, &run->cfg->limits, &d, &e) < 0) {
		if ((status = backfill_finish(run)) == 0) /* what came before it first */
			status = exits_fail(e.cls, "%s: %s", in->source, e.msg);
	} else if (run->dry_run) {
		backfill_print_json(d);
		delivery_free(d);
	} else {
		p = xmalloc(sizeof *p);
		*p = (struct backfill_pending){run, d, now_ms()};
		if (pipeline_add(run->pipeline, d, p, &e) < 0) /* d is the pipeline's now */
			status = backfill_stopped(run, &e);
	}
	alarm(0);
	return status;
}

static void
backfill_progress(struct backfill *run, bool force)
{
	long long now = now_ms();
	double secs = (double)(now - run->t_start) / 1000.0;
	char line[256];
	int n;

	if (!run->progress || (!force && now - run->t_shown < 250))
		return;
	run->t_shown = now;
	if (run->total > 0)
		n = snprintf(line, sizeof line, "\r%zu of %zu messages (%.0f%%)", run->done, run->total,
			     100.0 * (double)run->done / (double)run->total);
	else
		n = snprintf(line, sizeof line, "\r%zu messages", run->done);
	snprintf(line + n, sizeof line - (size_t)n, ", %.0f/s: %zu stored, %zu duplicates, %zu rejected\033[K",
		 secs > 0 ? (double)run->done / secs : 0.0, run->reports_new, run->reports_dup, run->rejected);
	fputs(line, stderr);
	fflush(stderr);
	backfill_progress_shown = true;
}

/* The summary of a FILE run: on a terminal, or after a backfill (an mbox, a
 * Maildir, a directory); a few single files from a script stay quiet. */
static void
backfill_summary(struct backfill *run)
{
	double secs = (double)(now_ms() - run->t_start) / 1000.0;
	size_t unreadable = run->unreadable + run->walked.unreadable;

	log_info("done: %zu inputs, %zu reports stored, %zu already stored, %zu rejected, %zu unreadable",
		 run->inputs, run->reports_new, run->reports_dup, run->rejected, unreadable);
	backfill_progress_clear();
	if (!run->progress && run->walked.containers == 0)
		return;
	printf("tlsrpt-ingest: %zu message(s) from %zu file(s): %zu report(s) stored, %zu already stored, "
	       "%zu rejected", run->inputs, run->walked.files, run->reports_new, run->reports_dup, run->rejected);
	if (unreadable > 0)
		printf(", %zu unreadable (see the mail log)", unreadable);
	printf("; %.1f s, %.0f messages/s\n", secs, secs > 0 ? (double)run->inputs / secs : 0.0);
}

static int
backfill_walked(void *arg, const struct source_msg *m)
{
	struct backfill *run = arg;
	const struct deliver_input in = {.source = m->label, .data = m->data, .len = m->len, .size = m->size};
	int status = backfill_message(run, &in);

	backfill_progress(run, false);
	return status;
}

/* --dry-run without FILE: standard input, one message. */
static int
backfill_stdin(struct backfill *run)
{
	struct deliver_input in = {.source = "stdin"};
	struct buf msg = {0};
	int status;

	alarm(run->cfg->deadline);
	if (source_read(STDIN_FILENO, SIZE_MAX, run->cfg->limits.max_message_size, &msg, &in.size) < 0) {
		log_error("cannot read standard input: %s", strerror(errno));
		buf_free(&msg);
		run->unreadable++;
		return 0;
	}
	in.data = msg.data;
	in.len = msg.len;
	status = backfill_message(run, &in);
	buf_free(&msg);
	return status;
}

/* Connects and starts the pipeline; counts the messages first for a progress line. */
static int
backfill_start(struct backfill *run, char *const *paths, size_t n, bool verbose)
{
	struct error e = {ERR_NONE, ""};

	if (store_open(&run->store, run->cfg, &e) < 0)
		return exits_fail_error(&e);
	run->t_start = now_ms();
	run->progress = !verbose && isatty(STDERR_FILENO);
	for (size_t i = 0; run->progress && i < n; i++)
		run->total += source_count(paths[i]);
	run->via = (struct store_via){STORE_CHANNEL_FILE, NULL};
	if ((run->pipeline = pipeline_begin(run->store, &run->via, backfill_done, run, &e)) == NULL)
		return exits_fail_error(&e);
	pipeline_group_commit(run->pipeline); /* a message counts as stored after a durable COMMIT */
	return 0;
}

int
backfill_run(const struct config *cfg, char *const *paths, size_t n, bool dry_run, bool verbose)
{
	struct backfill run = {.cfg = cfg, .dry_run = dry_run};
	int status = 0;

	if (!dry_run)
		status = backfill_start(&run, paths, n, verbose);
	if (status == 0 && dry_run && n == 0)
		status = backfill_stdin(&run);
	for (size_t i = 0; i < n && status == 0; i++)
		status = source_walk(paths[i], cfg->limits.max_message_size, backfill_walked, &run, &run.walked);
	if (status == 0)
		status = backfill_finish(&run);
	if (status == 0 && !dry_run)
		backfill_summary(&run);
	alarm(0);
	pipeline_free(run.pipeline);
	store_close(run.store);
	run.unreadable += run.walked.unreadable;
	if (status == 0 && run.unreadable > 0)
		status = exits_fail(ERR_NOINPUT, "%zu input file(s) could not be read", run.unreadable);
	return status;
}
