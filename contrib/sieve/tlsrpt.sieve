# tlsrpt.sieve - hand TLS-RPT report mail to tlsrpt-ingest from Dovecot
# (Pigeonhole's vnd.dovecot.pipe), for a mailbox that also receives other mail.
#
# Dovecot (conf.d/90-sieve.conf and 90-sieve-extprograms.conf):
#   plugin {
#     sieve_plugins = sieve_extprograms
#     sieve_global_extensions = +vnd.dovecot.pipe
#     sieve_pipe_bin_dir = /usr/local/lib/dovecot/sieve-pipe
#   }
# and a wrapper there (the directory holds the only programs Sieve may run):
#   /usr/local/lib/dovecot/sieve-pipe/tlsrpt-ingest:
#     #!/bin/sh
#     exec /usr/local/bin/tlsrpt-ingest -d 'dbname=tlsrpt user=tlsrpt_writer'
#
# tlsrpt-ingest exits 0 once the report is stored (or kept in tlsrpt.rejected)
# and 75 when it could not store it now. With "pipe" (not "pipe :try") a
# failure makes the Sieve script fail, and Dovecot then keeps the message in
# INBOX: nothing is lost, though it is not retried; store it later with
# "tlsrpt-ingest FILE" from the mailbox. An MTA transport (README: Postfix
# pipe) retries by itself and is the better place when you can choose.

require ["vnd.dovecot.pipe", "fileinto", "mailbox"];

# TLS-RPT mail (RFC 8460 section 5.3): the TLS-Report-Domain header, or
# multipart/report with report-type=tlsrpt.
if anyof (exists "TLS-Report-Domain",
          header :contains "Content-Type" "report-type=tlsrpt") {
    pipe "tlsrpt-ingest";
    # keep a copy for a while; remove this to discard stored reports
    fileinto :create "TLS-RPT";
    stop;
}
