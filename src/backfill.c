/* backfill.c - FILE runs: the walk, the pipeline, the progress line, the
 * closing summary. Each message goes through deliver.c's stages; its
 * transaction through pipeline.c, many in flight, each still all or nothing.
 *
 * Lanes: a run of many messages is shared by up to backfill_jobs processes,
 * each with its own connection and pipeline, so that the server stores with
 * as many backends (a message's statements cost the server more CPU than the
 * parsing costs us). Every process walks the same inputs in the same order;
 * message k (counted from 0 over all of them) is lane k % lanes's. The first
 * process is lane 0; it shows the progress, waits for the others and says
 * what became of the run. Each lane hands its messages back in order, so when
 * lanes stop, every message before the earliest one not stored is stored:
 * that one is named in the one line a stop prints, as with a single lane. */
#include "autoconf.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <unistd.h>

#include "backfill.h"
#include "deliver.h"
#include "exits.h"
#include "log.h"
#include "pipeline.h"
#include "schema.h"
#include "source.h"
#include "util.h"

#define BACKFILL_LANES_MAX 8
#define BACKFILL_MESSAGES_PER_LANE 64 /* fewer messages than this per lane: fewer lanes */

/* Why a lane stopped, for lane 0 to tell. */
struct backfill_stop {
	size_t seq;        /* the lane's first message not stored (SIZE_MAX: it did not stop) */
	bool lost;         /* a message handed back not stored ("stopped at SOURCE: MSG ...") */
	enum err_class cls;
	char source[256];
	char msg[sizeof ((struct error *)0)->msg];
};

/* What a run has stored (messages committed, their answers read): a single
 * lane's own, or in the mapping its lanes share. */
struct backfill_counts {
	atomic_size_t done, reports_new, reports_dup, rejected;
};

/* What the lanes of a run share: one mapping, made before they fork. */
struct backfill_shared {
	struct backfill_counts counts;
	struct backfill_stop stop[BACKFILL_LANES_MAX];
};

struct backfill {
	const struct config *cfg;
	unsigned lane, lanes;        /* this process's lane of how many (lanes 1: no sharing) */
	unsigned own;                /* the lanes whose messages this process stores (a bit each) */
	size_t seq;                  /* messages walked so far, every lane's */
	struct backfill_shared *shared; /* lanes > 1 */
	bool dry_run;
	struct store *store;
	struct pipeline *pipeline;   /* NULL once it stopped or finished */
	struct store_via via;
	struct backfill_counts own_counts;
	struct backfill_counts *counts; /* &own_counts, or the lanes' shared ones */
	size_t inputs, unreadable;
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
	size_t seq;
};

/* A stop, told at once by a single lane, kept for lane 0 by the others. */
static int
backfill_stop_at(struct backfill *run, size_t seq, bool lost, const char *source, const struct error *e)
{
	struct backfill_stop *st;

	if (run->shared == NULL) {
		if (source == NULL)
			return exits_fail_error(e);
		if (!lost)
			return exits_fail(e->cls, "%s: %s", source, e->msg);
		return exits_fail(e->cls, "stopped at %s: %s; the %zu message(s) before it are stored"
				  " (%zu reports, %zu already there, %zu rejected); run the same command"
				  " again to go on", source, e->msg, atomic_load(&run->counts->done),
				  atomic_load(&run->counts->reports_new), atomic_load(&run->counts->reports_dup),
				  atomic_load(&run->counts->rejected));
	}
	st = &run->shared->stop[run->lane];
	if (st->seq <= seq)
		return exits_answer(e->cls)->status;
	st->seq = seq;
	st->lost = lost;
	st->cls = e->cls;
	snprintf(st->source, sizeof st->source, "%s", source ? source : "");
	snprintf(st->msg, sizeof st->msg, "%s", e->msg);
	return exits_answer(e->cls)->status;
}

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
		atomic_fetch_add(&run->counts->done, 1);
		atomic_fetch_add(&run->counts->reports_new, res->reports_new);
		atomic_fetch_add(&run->counts->reports_dup, res->reports_duplicate);
		atomic_fetch_add(&run->counts->rejected, d->n_rejections);
		run->redo.rejected_new += res->rejected_new;
		run->redo.deleted += res->redo_deleted;
		run->redo.kept += res->redo_kept;
		run->redo.reason_changed += res->redo_reason_changed;
		deliver_log_outcome(d, NULL, res, now_ms() - p->t0);
		alarm(run->cfg->deadline); /* it moves: the deadline runs from here */
	} else if (e != NULL) {
		deliver_log_deferred(d->source, NULL, d->message_id, e->msg);
		run->stop_status = backfill_stop_at(run, p->seq, true, d->source, e);
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
	return run->stop_status ? run->stop_status : backfill_stop_at(run, run->seq ? run->seq - 1 : 0, false, NULL, e);
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
backfill_send(struct backfill *run, struct delivery *d, size_t seq)
{
	struct error e = {ERR_NONE, ""};
	struct backfill_pending *p = xmalloc(sizeof *p);

	*p = (struct backfill_pending){run, d, now_ms(), seq};
	if (pipeline_add(run->pipeline, d, p, &e) < 0) /* d is the pipeline's now */
		return backfill_stopped(run, &e);
	return 0;
}

/* One message: split, then printed (--dry-run) or handed to the pipeline.
 * Returns an exit status, 0 to go on. */
static int
backfill_message(struct backfill *run, const struct deliver_input *in, size_t seq)
{
	struct delivery *d = NULL;
	struct error e = {ERR_NONE, ""};
	int status = 0;

	alarm(run->cfg->deadline);
	run->inputs++;
	if (deliver_prepare(in, &run->cfg->limits, &d, &e) < 0) {
		if ((status = backfill_finish(run)) == 0) /* what came before it first */
			status = backfill_stop_at(run, seq, false, in->source, &e);
	} else if (run->dry_run) {
		backfill_print_json(d);
		delivery_free(d);
	} else {
		status = backfill_send(run, d, seq);
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

	size_t done = atomic_load(&run->counts->done), stored = atomic_load(&run->counts->reports_new);
	size_t dup = atomic_load(&run->counts->reports_dup), rejected = atomic_load(&run->counts->rejected);

	if (!run->progress || run->lane != 0 || (!force && now - run->t_shown < 250))
		return;
	run->t_shown = now;
	if (run->total > 0)
		n = snprintf(line, sizeof line, "\r%zu of %zu %s (%.0f%%)", done, run->total,
			     run->noun ? run->noun : "messages", 100.0 * (double)done / (double)run->total);
	else
		n = snprintf(line, sizeof line, "\r%zu %s", done, run->noun ? run->noun : "messages");
	snprintf(line + n, sizeof line - (size_t)n, ", %.0f/s: %zu stored, %zu duplicates, %zu rejected\033[K",
		 secs > 0 ? (double)done / secs : 0.0, stored, dup, rejected);
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

	size_t inputs = run->shared != NULL ? run->seq : run->inputs;
	size_t stored = atomic_load(&run->counts->reports_new), dup = atomic_load(&run->counts->reports_dup);
	size_t rejected = atomic_load(&run->counts->rejected);

	log_info("done: %zu inputs, %zu reports stored, %zu already stored, %zu rejected, %zu unreadable",
		 inputs, stored, dup, rejected, unreadable);
	backfill_progress_clear();
	if (!run->progress && run->walked.containers == 0)
		return;
	printf("tlsrpt-ingest: %zu message(s) from %zu file(s): %zu report(s) stored, %zu already stored, "
	       "%zu rejected", inputs, run->walked.files, stored, dup, rejected);
	if (unreadable > 0)
		printf(", %zu unreadable (see the mail log)", unreadable);
	printf("; %.1f s, %.0f messages/s\n", secs, secs > 0 ? (double)inputs / secs : 0.0);
}

static int
backfill_walked(void *arg, const struct source_msg *m)
{
	struct backfill *run = arg;
	const struct deliver_input in = {.source = m->label, .data = m->data, .len = m->len, .size = m->size};
	size_t seq = run->seq++;
	int status;

	if ((run->own & (1u << (seq % run->lanes))) == 0)
		return 0; /* another lane's */
	status = backfill_message(run, &in, seq);

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
	status = backfill_message(run, &in, 0);
	buf_free(&msg);
	return status;
}

/* Connects and starts the pipeline; counts the messages first for a progress line. */
static int
backfill_start(struct backfill *run, char *const *paths, size_t n, bool verbose)
{
	struct error e = {ERR_NONE, ""};

	if (store_open(&run->store, run->cfg, &e) < 0)
		return backfill_stop_at(run, run->lane, false, NULL, &e);
	run->t_start = now_ms();
	run->progress = !verbose && isatty(STDERR_FILENO);
	for (size_t i = 0; run->progress && run->total == 0 && i < n; i++)
		run->total += source_count(paths[i]);
	run->via = (struct store_via){STORE_CHANNEL_FILE, NULL};
	if ((run->pipeline = pipeline_begin(run->store, &run->via, backfill_done, run, &e)) == NULL)
		return backfill_stop_at(run, run->lane, false, NULL, &e);
	pipeline_group_commit(run->pipeline); /* a message counts as stored after a durable COMMIT */
	return 0;
}

/* Up to backfill_jobs lanes (fewer for few messages): forks the other
 * lanes' processes, which return here as lane 1, 2...; a lane that cannot be
 * forked is lane 0's too (run->own). One lane when the mapping cannot be made. */
static void
backfill_lanes(struct backfill *run, char *const *paths, size_t n, pid_t *pids)
{
	unsigned lanes = run->cfg->backfill_jobs < BACKFILL_LANES_MAX ? run->cfg->backfill_jobs : BACKFILL_LANES_MAX;
	pid_t parent = getpid();

	if (lanes <= 1)
		return;
	for (size_t i = 0; i < n; i++)
		run->total += source_count(paths[i]);
	while (lanes > 1 && run->total < (size_t)lanes * BACKFILL_MESSAGES_PER_LANE)
		lanes--;
	if (lanes <= 1)
		return;
	run->shared = mmap(NULL, sizeof *run->shared, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (run->shared == MAP_FAILED) {
		run->shared = NULL;
		return;
	}
	for (unsigned l = 0; l < BACKFILL_LANES_MAX; l++)
		run->shared->stop[l].seq = SIZE_MAX;
	run->lanes = lanes;
	run->counts = &run->shared->counts;
	fflush(NULL);
	for (unsigned l = 1; l < lanes; l++) {
		pid_t pid = fork();

		if (pid == 0) {
			/* a lane ends with the run's first process (a signal, the deadline) */
			if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || getppid() != parent)
				_exit(EX_TEMPFAIL);
			exits_quiet();
			run->lane = l;
			run->own = 1u << l;
			return;
		}
		if (pid < 0)
			run->own |= 1u << l;
		pids[l] = pid;
	}
}

/* Lane 0, once its own part is done: waits for the other lanes, then tells
 * the earliest stop of any (the messages before it are stored), or that a
 * lane ended without saying why. 0 or an exit status. */
static int
backfill_join(struct backfill *run, const pid_t *pids)
{
	const struct backfill_stop *first = NULL;
	int ended = 0;

	for (unsigned l = 1; l < run->lanes; l++) {
		int ws;

		if (pids[l] <= 0)
			continue;
		while (waitpid(pids[l], &ws, 0) < 0 && errno == EINTR)
			;
		if ((!WIFEXITED(ws) || WEXITSTATUS(ws) != 0) && run->shared->stop[l].seq == SIZE_MAX && ended == 0)
			ended = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
	}
	for (unsigned l = 0; l < run->lanes; l++)
		if (run->shared->stop[l].seq != SIZE_MAX && (first == NULL || run->shared->stop[l].seq < first->seq))
			first = &run->shared->stop[l];
	if (ended != 0)
		return exits_fail(ERR_TEMP, "a backfill process ended early (status %d: a deadline or a signal); what"
			      " it committed stays stored, run the same command again to go on", ended);
	if (first == NULL)
		return 0;
	if (first->source[0] == '\0')
		return exits_fail(first->cls, "%s", first->msg);
	if (!first->lost)
		return exits_fail(first->cls, "%s: %s", first->source, first->msg);
	return exits_fail(first->cls, "stopped at %s: %s; the %zu message(s) before it are stored (%zu reports,"
			  " %zu already there, %zu rejected in all); run the same command again to go on",
			  first->source, first->msg, first->seq, atomic_load(&run->counts->reports_new),
			  atomic_load(&run->counts->reports_dup), atomic_load(&run->counts->rejected));
}

int
backfill_run(const struct config *cfg, char *const *paths, size_t n, bool dry_run, bool verbose)
{
	struct backfill run = {.cfg = cfg, .dry_run = dry_run, .lanes = 1, .own = 1};
	pid_t pids[BACKFILL_LANES_MAX] = {0};
	int status = 0;

	run.counts = &run.own_counts;
	if (!dry_run)
		backfill_lanes(&run, paths, n, pids);
	if (!dry_run)
		status = backfill_start(&run, paths, n, verbose);
	if (status == 0 && dry_run && n == 0)
		status = backfill_stdin(&run);
	for (size_t i = 0; i < n && status == 0; i++)
		status = source_walk(paths[i], cfg->limits.max_message_size, backfill_walked, &run, &run.walked);
	if (status == 0)
		status = backfill_finish(&run);
	alarm(0);
	if (run.lane != 0) { /* lane 0 tells */
		pipeline_free(run.pipeline);
		store_close(run.store);
		_exit(status);
	}
	if (run.shared != NULL)
		status = backfill_join(&run, pids);
	if (status == 0 && !dry_run)
		backfill_summary(&run);
	/* on a partitioned schema, the parents' statistics after many new rows (once, by lane 0) */
	if (status == 0 && !dry_run &&
	    atomic_load(&run.counts->reports_new) > 0) {
		alarm(cfg->deadline);
		schema_analyze_partitioned(store_conn(run.store), cfg);
	}
	alarm(0);
	pipeline_free(run.pipeline);
	store_close(run.store);
	if (run.shared != NULL)
		munmap(run.shared, sizeof *run.shared);
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
	run->counts = &run->own_counts;
	run->lanes = 1;
	run->own = 1;
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
	status = backfill_send(run, d, run->inputs++);
	alarm(0);
	backfill_progress(run, false);
	return status;
}

int
backfill_feed_end(struct backfill *run, int status, struct backfill_tally *t)
{
	if (status == 0)
		status = backfill_finish(run);
	if (status == 0 && atomic_load(&run->counts->reports_new) > 0) {
		alarm(run->cfg->deadline);
		schema_analyze_partitioned(store_conn(run->store), run->cfg);
	}
	backfill_progress_clear();
	alarm(0);
	*t = run->redo;
	t->inputs = run->inputs;
	t->reports_new = atomic_load(&run->counts->reports_new);
	t->reports_dup = atomic_load(&run->counts->reports_dup);
	t->secs = (double)(now_ms() - run->t_start) / 1000.0;
	if (status == 0)
		log_info("done: %zu rows reprocessed, %zu reports stored, %zu already stored, %zu rows deleted, "
			 "%zu kept", t->inputs, t->reports_new, t->reports_dup, t->deleted, t->kept);
	pipeline_free(run->pipeline);
	store_close(run->store);
	free(run);
	return status;
}
