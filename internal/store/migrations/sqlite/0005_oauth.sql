-- OAuth 2.0 tokens (identity issue). Tokens are opaque; only fosite's HMAC
-- signature of each token is stored (a hash: the token cannot be rebuilt
-- from it). platform_secrets holds node-shared secrets sealed by the
-- master key (the HMAC key of the token strategy).
CREATE TABLE oauth_tokens (
    signature      TEXT PRIMARY KEY,
    kind           TEXT NOT NULL,            -- access | refresh
    request_id     TEXT NOT NULL,
    account_id     TEXT NOT NULL REFERENCES accounts(id),
    client_id      TEXT NOT NULL,
    requested_at   INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    scopes         TEXT NOT NULL,            -- requested, space-separated
    granted_scopes TEXT NOT NULL,
    subject        TEXT NOT NULL,
    active         BOOLEAN NOT NULL
);
CREATE INDEX oauth_tokens_request ON oauth_tokens(request_id);
CREATE INDEX oauth_tokens_expiry ON oauth_tokens(expires_at);

CREATE TABLE platform_secrets (
    name   TEXT PRIMARY KEY,
    sealed BLOB NOT NULL
);
