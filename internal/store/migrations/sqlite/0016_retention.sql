-- Retention and crypto-shredding (issue 5 item 6).

-- Per-account retention, in days. No row: the defaults of package
-- retention (30 days each).
CREATE TABLE retention_policies (
    account_id          TEXT PRIMARY KEY REFERENCES accounts(id),
    message_body_days   INTEGER NOT NULL,   -- after the last recipient reached a final state
    portal_message_days INTEGER NOT NULL,   -- after the portal message was stored
    quarantine_days     INTEGER NOT NULL,   -- after the message was quarantined
    updated_at          INTEGER NOT NULL
);

-- When the sweeper deleted the message's sealed bodies (messages and
-- message_recipients body_sealed); NULL while they are kept. The row and
-- its recipients and events stay for reporting.
ALTER TABLE messages ADD COLUMN body_shredded_at INTEGER;

-- The sweeper walks only messages that still hold a body, oldest first:
-- once shredded a message leaves this index, so a sweep never rereads
-- history it already shredded.
CREATE INDEX messages_retention_due ON messages(account_id, created_at, id) WHERE body_shredded_at IS NULL;
