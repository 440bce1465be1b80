-- Stored, versioned templates and per-recipient bodies (package templates).

-- A template of an account. Its versions are immutable; active_version
-- names the one a send uses when it names none. Template sources are
-- not PHI by themselves (the data rendered into them is, and rendered
-- messages are sealed like every message).
CREATE TABLE templates (
    id                TEXT PRIMARY KEY,
    account_id        TEXT NOT NULL REFERENCES accounts(id),
    name              TEXT NOT NULL,
    missing_variables TEXT NOT NULL,              -- error | empty
    active_version    INTEGER NOT NULL,
    latest_version    INTEGER NOT NULL,
    created_at        BIGINT  NOT NULL,
    updated_at        BIGINT  NOT NULL
);
CREATE UNIQUE INDEX templates_account_name ON templates(account_id, name);
CREATE INDEX templates_account_created ON templates(account_id, created_at, id);

-- One immutable version of a template.
CREATE TABLE template_versions (
    template_id  TEXT NOT NULL REFERENCES templates(id) ON DELETE CASCADE,
    version      INTEGER NOT NULL,
    account_id   TEXT NOT NULL,
    subject      TEXT NOT NULL,
    text_body    TEXT NOT NULL,
    html_body    TEXT NOT NULL,
    created_at   BIGINT  NOT NULL,
    PRIMARY KEY (template_id, version)
);

-- A recipient with content of its own (personalised template data, and
-- later tracking links) has its own composed message, sealed by the
-- account's data key under messages.RecipientBodyAD; NULL: the message's
-- body.
ALTER TABLE message_recipients ADD COLUMN body_sealed BYTEA;
