/* deliver.c - one message through the stages: ingest it, store it in one
 * transaction, say what became of it in one log line. */
#include "autoconf.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "deliver.h"
#include "exits.h"
#include "log.h"
#include "pipeline.h"
#include "source.h"
#include "util.h"

/* A body posted over HTTPS that is neither gzip nor JSON: kept as rejected, with the reason. */
static struct delivery *
deliver_not_a_report(const struct deliver_input *in, const struct limits *lim)
{
	char *reason = in->len == 0 ? xstrdup("https: empty body")
				    : xasprintf("https: a %s body that is neither gzip nor JSON", in->http_type);
	struct delivery *d = delivery_rejected(in->data, in->len, in->len, in->source, reason, lim);

	free(reason);
	return d;
}

int
deliver_prepare(const struct deliver_input *in, const struct limits *lim, struct delivery **out, struct error *e)
{
	*out = NULL;
	if (in->size > lim->max_message_size) {
		log_warn("%s: %zu bytes, over max_message_size (%zu)", in->source, in->size, lim->max_message_size);
		return ingest_oversized(in->data, in->len, in->size, in->source, lim, out);
	}
	if (in->http_type != NULL && ingest_sniff(in->data, in->len) == INPUT_MAIL) {
		*out = deliver_not_a_report(in, lim);
		return 0;
	}
	return ingest_bytes(in->data, in->len, in->source, lim, out, e);
}

static enum deliver_outcome
deliver_outcome(const struct store_result *res)
{
	return res->reports_new > 0 ? DELIVER_STORED : res->reports_duplicate > 0 ? DELIVER_DUPLICATE
										: DELIVER_REJECTED;
}

static const char *const deliver_outcome_names[] = {"stored", "duplicate", "rejected"};

static void
deliver_log_head(struct buf *line, const char *what, const char *source, const char *remote,
		 const char *message_id)
{
	buf_printf(line, "%s: source=", what);
	log_token(line, source);
	if (remote != NULL) {
		buf_puts(line, " remote=");
		log_token(line, remote);
	}
	buf_puts(line, " message-id=<");
	if (message_id)
		log_token(line, message_id);
	buf_puts(line, ">");
}

void
deliver_log_outcome(const struct delivery *d, const char *remote, const struct store_result *res, long long ms)
{
	struct buf line = {0};

	deliver_log_head(&line, deliver_outcome_names[deliver_outcome(res)], d->source, remote, d->message_id);
	for (size_t i = 0; i < d->n_reports; i++) {
		const struct report *r = d->reports[i].report;
		const char *domain = r->n_policies ? r->policies[0].policy_domain : NULL;

		buf_puts(&line, " org=");
		log_quote(&line, r->organization_name);
		buf_puts(&line, " report-id=");
		log_quote(&line, r->report_id);
		buf_puts(&line, " domain=");
		log_token(&line, domain);
	}
	buf_printf(&line, " reports=%zu new=%zu duplicate=%zu policies=%zu failures=%zu", d->n_reports,
		   res->reports_new, res->reports_duplicate, delivery_policies(d), delivery_failures(d));
	for (size_t i = 0; i < d->n_rejections; i++) {
		buf_puts(&line, " rejected=");
		log_quote(&line, d->rejections[i].reason);
	}
	if (res->rejected_duplicate)
		buf_printf(&line, " rejected-already-kept=%zu", res->rejected_duplicate);
	buf_printf(&line, " time=%lldms", ms);
	log_info("%s", buf_cstr(&line));
	buf_free(&line);
}

void
deliver_log_deferred(const char *source, const char *remote, const char *message_id, const char *reason)
{
	struct buf line = {0};

	deliver_log_head(&line, "deferred", source, remote, message_id);
	buf_puts(&line, " reason=");
	log_quote(&line, reason);
	log_info("%s", buf_cstr(&line));
	buf_free(&line);
}

static void
deliver_fill_result(const struct delivery *d, const struct store_result *res, struct deliver_result *out)
{
	memset(out, 0, sizeof *out);
	out->outcome = deliver_outcome(res);
	out->stored = *res;
	out->n_reports = d->n_reports;
	if (d->n_rejections > 0)
		snprintf(out->reason, sizeof out->reason, "%s", d->rejections[0].reason);
}

int
deliver_one(struct store **store, const struct config *cfg, const struct deliver_input *in,
	    const struct store_via *via, struct deliver_result *out, struct error *e)
{
	struct delivery *d = NULL;
	struct store_result res = {0};
	long long t0 = now_ms();
	int rc = -1;

	memset(out, 0, sizeof *out);
	if (deliver_prepare(in, &cfg->limits, &d, e) < 0) {
		char msg[sizeof e->msg + 256];

		snprintf(msg, sizeof msg, "%s: %s", in->source, e->msg);
		memcpy(e->msg, msg, sizeof e->msg - 1);
		e->msg[sizeof e->msg - 1] = '\0';
		deliver_log_deferred(in->source, in->remote, NULL, e->msg);
		return -1;
	}
	if ((*store == NULL && store_open(store, cfg, e) < 0) || store_ready(*store, cfg, e) < 0 ||
	    pipeline_deliver_one(*store, d, via, &res, e) < 0) {
		deliver_log_deferred(in->source, in->remote, d->message_id, e->msg);
		out->stored_failed = true;
		goto out;
	}
	deliver_log_outcome(d, in->remote, &res, now_ms() - t0);
	deliver_fill_result(d, &res, out);
	rc = 0;
out:
	delivery_free(d);
	return rc;
}

int
deliver_stdin(const struct config *cfg)
{
	const struct store_via via = {STORE_CHANNEL_MAIL, NULL};
	struct deliver_input in = {.source = "stdin"};
	struct deliver_result out;
	struct error e = {ERR_NONE, ""};
	struct store *store = NULL;
	struct buf msg = {0};
	int status = 0;

	alarm(cfg->deadline); /* one deadline for all of it, the connection included */
	/* the server starts the session while we read and parse the message */
	if (store_open_start(&store, cfg, &e) < 0)
		return exits_fail_error(&e);
	if (source_read(STDIN_FILENO, SIZE_MAX, cfg->limits.max_message_size, &msg, &in.size) < 0) {
		status = exits_fail(ERR_TEMP, "reading the message: %s", strerror(errno));
		goto out;
	}
	in.data = msg.data;
	in.len = msg.len;
	if (deliver_one(&store, cfg, &in, &via, &out, &e) < 0)
		status = exits_fail_error(&e);
out:
	alarm(0);
	buf_free(&msg);
	store_close(store);
	return status;
}
