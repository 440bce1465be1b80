-- The recipient portal (package portal): secure messages read on the web
-- by recipients who cannot receive encrypted mail.

-- Per-account look of the portal and how long its messages stay
-- readable. No row: the defaults (the account's name, no logo, the
-- platform colour, portal.retention).
CREATE TABLE portal_settings (
    account_id      TEXT PRIMARY KEY REFERENCES accounts(id),
    display_name    TEXT NOT NULL DEFAULT '',     -- '' : the account's name
    logo_url        TEXT NOT NULL DEFAULT '',     -- https URL or ''
    primary_color   TEXT NOT NULL DEFAULT '',     -- #rrggbb or ''
    retention_hours INTEGER NOT NULL DEFAULT 0,   -- 0 : portal.retention
    updated_at      INTEGER NOT NULL
);

-- One row per deposited message and recipient. The content (subject,
-- bodies, attachments) is sealed with the account's data key and set to
-- NULL when it expires or is recalled (crypto-shredding of this copy;
-- the metadata stays for reporting). Only hashes of the link token and
-- of the one-time code are kept.
CREATE TABLE portal_messages (
    id              TEXT PRIMARY KEY,
    account_id      TEXT NOT NULL REFERENCES accounts(id),
    message_id      TEXT NOT NULL,                -- the message it carries ('' until an API deposit's notice is sent)
    rcpt_index      INTEGER NOT NULL,
    recipient       TEXT NOT NULL,
    sender          TEXT NOT NULL,
    token_hash      BLOB NOT NULL UNIQUE,        -- SHA-256 of the link token
    content_sealed  BLOB,                        -- NULL once shredded
    attachments     INTEGER NOT NULL,
    size            INTEGER NOT NULL,
    challenge_kind  TEXT NOT NULL DEFAULT '',     -- '' | passphrase | dob
    challenge_hash  TEXT NOT NULL DEFAULT '',     -- argon2id PHC string
    challenge_hint  TEXT NOT NULL DEFAULT '',
    notify_sealed   BLOB,                        -- the link token, sealed, until the notice is accepted
    notified_at     INTEGER,
    code_hash       BLOB,                        -- HMAC of the current one-time code
    code_expires_at INTEGER NOT NULL DEFAULT 0,
    code_sent_at    INTEGER NOT NULL DEFAULT 0,
    failed_attempts INTEGER NOT NULL DEFAULT 0,
    locked_until    INTEGER NOT NULL DEFAULT 0,
    first_viewed_at INTEGER,
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    recalled_at     INTEGER,
    shredded_at     INTEGER
);
CREATE INDEX portal_messages_account ON portal_messages(account_id, created_at, id);
CREATE INDEX portal_messages_expiry ON portal_messages(expires_at) WHERE shredded_at IS NULL;

-- A recipient's signed-in session on one portal message (cookie token
-- hashed).
CREATE TABLE portal_sessions (
    id                TEXT PRIMARY KEY,
    token_hash        BLOB NOT NULL UNIQUE,
    account_id        TEXT NOT NULL,
    portal_message_id TEXT NOT NULL REFERENCES portal_messages(id),
    created_at        INTEGER NOT NULL,
    last_seen_at      INTEGER NOT NULL,
    expires_at        INTEGER NOT NULL,
    revoked_at        INTEGER
);
CREATE INDEX portal_sessions_message ON portal_sessions(portal_message_id);

-- Secure replies of recipients, sealed; forwarded to the sender through
-- the messages pipeline.
CREATE TABLE portal_replies (
    id                TEXT PRIMARY KEY,
    account_id        TEXT NOT NULL,
    portal_message_id TEXT NOT NULL REFERENCES portal_messages(id),
    body_sealed       BLOB,                      -- NULL once shredded
    attachments       INTEGER NOT NULL,
    created_at        INTEGER NOT NULL,
    forwarded_id      TEXT NOT NULL DEFAULT ''    -- the message that carried it to the sender
);
CREATE INDEX portal_replies_message ON portal_replies(account_id, portal_message_id, created_at);
