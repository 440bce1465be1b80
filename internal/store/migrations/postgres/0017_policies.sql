-- DLP policies and quarantine (issue 5 item 2).

-- An account's DLP rules, evaluated in position order; the first enabled
-- rule whose conditions all hold decides (package policy). No rows: the
-- account default applies (PHI requires verified TLS, else allow).
CREATE TABLE dlp_rules (
    account_id     TEXT NOT NULL REFERENCES accounts(id),
    id             TEXT NOT NULL,
    position       BIGINT NOT NULL,               -- 0, 1, 2 ... in evaluation order
    name           TEXT NOT NULL,
    description    TEXT NOT NULL,
    enabled        BOOLEAN NOT NULL,
    conditions     TEXT NOT NULL,                 -- JSON object, see docs/policies.md
    action         TEXT NOT NULL,                 -- allow | require_encryption | force_portal | quarantine | block
    min_encryption TEXT NOT NULL,                 -- '' | tls | end_to_end | portal
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    PRIMARY KEY (account_id, id),
    UNIQUE (account_id, position)
);

-- When each account last replaced its rules (absent: never).
CREATE TABLE dlp_policies (
    account_id  TEXT PRIMARY KEY REFERENCES accounts(id),
    updated_at  BIGINT NOT NULL
);

-- Messages held for human review by a quarantine rule. The sealed content
-- stays with the message (the send path's); this is the review state.
-- reasons hold finding types and counts, never matched text.
CREATE TABLE dlp_quarantine (
    account_id     TEXT NOT NULL REFERENCES accounts(id),
    message_id     TEXT NOT NULL,
    rule_id        TEXT NOT NULL,
    reasons        TEXT NOT NULL,                 -- JSON array of strings
    status         TEXT NOT NULL,                 -- pending | released | rejected
    reviewer_kind  TEXT NOT NULL DEFAULT '',
    reviewer_id    TEXT NOT NULL DEFAULT '',
    created_at     BIGINT NOT NULL,
    reviewed_at    BIGINT,
    PRIMARY KEY (account_id, message_id)
);
CREATE INDEX dlp_quarantine_list ON dlp_quarantine(account_id, created_at, message_id);
CREATE INDEX dlp_quarantine_status ON dlp_quarantine(account_id, status, created_at, message_id);
