-- Asynchronous bounces and complaints (internal/bounce, issue 4 item 5).

-- Reports already applied, one row per recipient and report content, so
-- that a DSN or complaint delivered twice changes nothing the second time.
-- digest is the hex SHA-256 of the fields that identify the report for
-- that recipient (kind, action, status, diagnostic, dates).
CREATE TABLE bounce_reports (
    account_id   TEXT NOT NULL,
    message_id   TEXT NOT NULL,
    rcpt_index   INTEGER NOT NULL,
    digest       TEXT NOT NULL,
    kind         TEXT NOT NULL,                 -- bounced | delayed | complaint
    received_at  INTEGER NOT NULL,
    PRIMARY KEY (message_id, rcpt_index, digest)
);
CREATE INDEX bounce_reports_account ON bounce_reports(account_id, received_at);
