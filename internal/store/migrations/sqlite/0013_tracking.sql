-- Open and click tracking, one-click unsubscribe (package tracking).

-- Click targets of a message, one row per distinct URL (shared by all
-- its recipients). A target URL may carry PHI-ish query strings, so it
-- is sealed with the account's data key; the click token names only
-- (message, link_index).
CREATE TABLE tracking_links (
    message_id     TEXT NOT NULL,
    link_index     INTEGER NOT NULL,
    account_id     TEXT NOT NULL,
    target_sealed  BLOB NOT NULL,
    PRIMARY KEY (message_id, link_index)
);

-- Per-recipient one-time events: the first open and the unsubscribe.
-- The primary key makes recording them idempotent across nodes.
CREATE TABLE tracking_firsts (
    message_id  TEXT NOT NULL,
    rcpt_index  INTEGER NOT NULL,
    type        TEXT NOT NULL,                -- opened | unsubscribed
    account_id  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (message_id, rcpt_index, type)
);

-- Account defaults per message kind; a message's own tracking options
-- win. No row: transactional untracked, marketing tracked.
CREATE TABLE tracking_settings (
    account_id  TEXT NOT NULL REFERENCES accounts(id),
    kind        TEXT NOT NULL,                -- transactional | marketing
    opens       BOOLEAN NOT NULL,
    clicks      BOOLEAN NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (account_id, kind)
);
