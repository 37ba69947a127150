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
#include "schema.h"
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
	const char *noun;            /* what the progress line counts: "messages", "rows" */
	struct backfill_tally redo;  /* a fed run (reprocess.c): what became of the rows */
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
		run->redo.rejected_new += res->rejected_new;
		run->redo.deleted += res->redo_deleted;
		run->redo.kept += res->redo_kept;
		run->redo.reason_changed += res->redo_reason_changed;
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

/* A message split: handed to the pipeline (which owns d now). Returns an exit status, 0 to go on. */
static int
backfill_send(struct backfill *run, struct delivery *d)
{
	struct error e = {ERR_NONE, ""};
	struct backfill_pending *p = xmalloc(sizeof *p);

	*p = (struct backfill_pending){run, d, now_ms()};
	if (pipeline_add(run->pipeline, d, p, &e) < 0) /* d is the pipeline's now */
		return backfill_stopped(run, &e);
	return 0;
}

/* One message: split, then printed (--dry-run) or handed to the pipeline.
 * Returns an exit status, 0 to go on. */
static int
backfill_message(struct backfill *run, const struct deliver_input *in)
{
	struct delivery *d = NULL;
	struct error e = {ERR_NONE, ""};
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
		status = backfill_send(run, d);
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
		n = snprintf(line, sizeof line, "\r%zu of %zu %s (%.0f%%)", run->done, run->total,
			     run->noun ? run->noun : "messages", 100.0 * (double)run->done / (double)run->total);
	else
		n = snprintf(line, sizeof line, "\r%zu %s", run->done, run->noun ? run->noun : "messages");
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
	/* on a partitioned schema, the parents' statistics after many new rows */
	if (status == 0 && !dry_run && run.reports_new > 0) {
		alarm(cfg->deadline);
		schema_analyze_partitioned(store_conn(run.store), cfg);
	}
	alarm(0);
	pipeline_free(run.pipeline);
	store_close(run.store);
	run.unreadable += run.walked.unreadable;
	if (status == 0 && run.unreadable > 0)
		status = exits_fail(ERR_NOINPUT, "%zu input file(s) could not be read", run.unreadable);
	return status;
}

/* ---- a run fed by another source (reprocess.c) ---- */

struct backfill *
backfill_feed_begin(const struct config *cfg, size_t total, bool verbose, int *status)
{
	struct backfill *run = xcalloc(1, sizeof *run);

	run->cfg = cfg;
	run->noun = "rows";
	if ((*status = backfill_start(run, NULL, 0, verbose)) == 0)
		run->total = total;
	return run;
}

int
backfill_feed(struct backfill *run, struct delivery *d)
{
	int status;

	alarm(run->cfg->deadline);
	run->inputs++;
	status = backfill_send(run, d);
	alarm(0);
	backfill_progress(run, false);
	return status;
}

int
backfill_feed_end(struct backfill *run, int status, struct backfill_tally *t)
{
	if (status == 0)
		status = backfill_finish(run);
	if (status == 0 && run->reports_new > 0) {
		alarm(run->cfg->deadline);
		schema_analyze_partitioned(store_conn(run->store), run->cfg);
	}
	backfill_progress_clear();
	alarm(0);
	*t = run->redo;
	t->inputs = run->inputs;
	t->reports_new = run->reports_new;
	t->reports_dup = run->reports_dup;
	t->secs = (double)(now_ms() - run->t_start) / 1000.0;
	if (status == 0)
		log_info("done: %zu rows reprocessed, %zu reports stored, %zu already stored, %zu rows deleted, "
			 "%zu kept", t->inputs, t->reports_new, t->reports_dup, t->deleted, t->kept);
	pipeline_free(run->pipeline);
	store_close(run->store);
	free(run);
	return status;
}
