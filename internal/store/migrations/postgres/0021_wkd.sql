-- Web Key Directory (package wkd, draft-koch-openpgp-webkey-service):
-- recipients' OpenPGP keys discovered over HTTPS, cached per account. The
-- lookup itself tells who the account writes to, so the cache is tenant
-- data like mail_keys, never shared between accounts.
CREATE TABLE wkd_keys (
    account_id TEXT NOT NULL REFERENCES accounts(id),
    address    TEXT NOT NULL,    -- lower-cased address (IDN as A-labels)
    result     TEXT NOT NULL,    -- key | none (no usable key) | error (the directory could not be asked)
    material   TEXT,             -- result key: the validated key, armored; NULL otherwise
    fetched_at BIGINT  NOT NULL, -- microseconds
    expires_at BIGINT  NOT NULL, -- asked again after this: key 24 h, none 1 h, error 5 min
    PRIMARY KEY (account_id, address)
);
-- The sweep deletes expired entries without reading the others.
CREATE INDEX wkd_keys_expiry ON wkd_keys(expires_at);

-- The account's opt-in to WKD lookups (off by default: a lookup reaches
-- the recipient's domain from this server).
ALTER TABLE secureline_settings ADD COLUMN wkd_enabled BOOLEAN NOT NULL DEFAULT FALSE;
