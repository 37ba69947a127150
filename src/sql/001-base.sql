-- tlsrpt-ingest schema version 1: reports, policies, failures, rejected mail.
CREATE TABLE tlsrpt.report (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    organization_name text,
    contact_info      text,
    report_id         text,
    date_start        timestamptz,
    date_end          timestamptz,
    report_domain     text,
    submitter         text,
    message_id        text,
    filename          text,
    source            text NOT NULL DEFAULT 'mail' CHECK (source IN ('mail', 'file', 'https')),
    received_at       timestamptz NOT NULL DEFAULT now(),
    notes             text[],
    raw               jsonb NOT NULL,
    -- A report without a report-id is told apart by its content: a sender that
    -- omits the id may send several reports for one day (one per domain).
    content_key       text GENERATED ALWAYS AS (
                          CASE WHEN report_id IS NULL THEN md5(raw::text) END) STORED,
    CONSTRAINT report_identity UNIQUE NULLS NOT DISTINCT
        (organization_name, report_id, date_start, date_end, content_key)
);
CREATE INDEX report_date_start_idx ON tlsrpt.report (date_start);
CREATE INDEX report_received_at_idx ON tlsrpt.report (received_at);
CREATE INDEX report_organization_idx ON tlsrpt.report (organization_name, date_start);

CREATE TABLE tlsrpt.policy (
    id                             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    report                         bigint NOT NULL REFERENCES tlsrpt.report (id) ON DELETE CASCADE,
    policy_type                    text,
    policy_domain                  text,
    policy_string                  text[],
    mx_host                        text[],
    total_successful_session_count bigint,
    total_failure_session_count    bigint
);
CREATE INDEX policy_report_idx ON tlsrpt.policy (report);
CREATE INDEX policy_domain_idx ON tlsrpt.policy (policy_domain);

CREATE TABLE tlsrpt.failure (
    id                     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    policy                 bigint NOT NULL REFERENCES tlsrpt.policy (id) ON DELETE CASCADE,
    result_type            text,
    sending_mta_ip         inet,
    receiving_mx_hostname  text,
    receiving_mx_helo      text,
    receiving_ip           inet,
    failed_session_count   bigint,
    additional_information text,
    failure_reason_code    text
);
CREATE INDEX failure_policy_idx ON tlsrpt.failure (policy);
CREATE INDEX failure_result_type_idx ON tlsrpt.failure (result_type);
CREATE INDEX failure_receiving_mx_idx ON tlsrpt.failure (receiving_mx_hostname);

CREATE TABLE tlsrpt.rejected (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at   timestamptz NOT NULL DEFAULT now(),
    message_id    text,
    sender        text,
    subject       text,
    filename      text,
    source        text NOT NULL DEFAULT 'mail' CHECK (source IN ('mail', 'file', 'https')),
    reason        text NOT NULL,
    raw           bytea NOT NULL,
    raw_size      bigint NOT NULL,
    raw_truncated boolean GENERATED ALWAYS AS (octet_length(raw) < raw_size) STORED,
    digest        text NOT NULL,
    CONSTRAINT rejected_digest UNIQUE (digest)
);
CREATE INDEX rejected_received_at_idx ON tlsrpt.rejected (received_at);
