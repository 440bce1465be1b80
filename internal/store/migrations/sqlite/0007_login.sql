-- Web login and the OAuth password grant (identity issue).
--
-- users.failed_logins counts consecutive failed logins (password or second
-- factor); locked_until holds progressive delays and, at the NIST SP
-- 800-63B §5.2.2 limit of 100, the lock an administrator lifts.
ALTER TABLE users ADD COLUMN failed_logins INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN locked_until INTEGER;
ALTER TABLE users ADD COLUMN last_login_at INTEGER;

-- The password grant (RFC 6749 §4.3) is off unless the account turns it on,
-- and then only for clients marked first-party.
ALTER TABLE account_auth_policy ADD COLUMN allow_password_grant BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE api_clients ADD COLUMN first_party BOOLEAN NOT NULL DEFAULT FALSE;

-- Tokens of the password grant carry the user; refresh tokens are rotated
-- (rotated_at) and a whole family (request_id) can be revoked.
ALTER TABLE oauth_tokens ADD COLUMN user_id TEXT NOT NULL DEFAULT '';
ALTER TABLE oauth_tokens ADD COLUMN rotated_at INTEGER;
ALTER TABLE oauth_tokens ADD COLUMN revoked BOOLEAN NOT NULL DEFAULT FALSE;

-- Console sessions. Only the SHA-256 of the cookie's token is stored.
-- stage is 'mfa' (password accepted, second factor pending), 'enrol'
-- (the policy requires MFA and the user must enrol first) or 'full'.
CREATE TABLE web_sessions (
    id           TEXT PRIMARY KEY,
    token_hash   BLOB NOT NULL UNIQUE,
    account_id   TEXT NOT NULL REFERENCES accounts(id),
    user_id      TEXT NOT NULL REFERENCES users(id),
    stage        TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    source_ip    TEXT NOT NULL,
    user_agent   TEXT NOT NULL,
    revoked_at   INTEGER
);
CREATE INDEX web_sessions_user ON web_sessions(account_id, user_id);
CREATE INDEX web_sessions_expiry ON web_sessions(expires_at);
