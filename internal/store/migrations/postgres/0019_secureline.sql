-- SecureLine: per-account encryption mode and the per-recipient decision
-- (issue 5 item 3).

-- The account's encryption mode and relay subject tag. No row: the
-- defaults of package secureline (forced_tls, "[secure]").
CREATE TABLE secureline_settings (
    account_id  TEXT PRIMARY KEY REFERENCES accounts(id),
    mode        TEXT NOT NULL,      -- opportunistic | forced_tls | tls_exclusive | portal_always
    subject_tag TEXT NOT NULL,      -- e.g. [secure]; matched case-insensitively
    updated_at  BIGINT NOT NULL
);

-- The method SecureLine chose for each recipient and why, in order (a
-- JSON array of strings that never carry PHI). Empty until decided.
ALTER TABLE message_recipients ADD COLUMN enc_method TEXT NOT NULL DEFAULT '';
ALTER TABLE message_recipients ADD COLUMN enc_reasons TEXT NOT NULL DEFAULT '';
