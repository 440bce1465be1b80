-- HMAC-signed sessions (identity issue). A session belongs to an API
-- client; its secret is sealed by the account's data key (the server must
-- know it to verify signatures). Nonces are kept for the timestamp window.
ALTER TABLE api_clients ADD COLUMN secret_rotated_at INTEGER NOT NULL DEFAULT 0;

CREATE TABLE hmac_sessions (
    id            TEXT PRIMARY KEY,
    account_id    TEXT NOT NULL REFERENCES accounts(id),
    client_id     TEXT NOT NULL REFERENCES api_clients(id),
    secret_sealed BLOB NOT NULL,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    revoked_at    INTEGER
);
CREATE INDEX hmac_sessions_client ON hmac_sessions(account_id, client_id);
CREATE INDEX hmac_sessions_expiry ON hmac_sessions(expires_at);

CREATE TABLE hmac_nonces (
    session_id TEXT NOT NULL,
    nonce      TEXT NOT NULL,
    seen_at    INTEGER NOT NULL,
    PRIMARY KEY (session_id, nonce)
);
CREATE INDEX hmac_nonces_seen ON hmac_nonces(seen_at);
