-- Per-account authentication policy (identity issue). No row means the
-- defaults: every scheme allowed, any source address, no MFA requirement,
-- 15-minute access tokens.
CREATE TABLE account_auth_policy (
    account_id        TEXT PRIMARY KEY REFERENCES accounts(id),
    allow_api_key     BOOLEAN NOT NULL,
    allow_basic       BOOLEAN NOT NULL,
    allow_hmac        BOOLEAN NOT NULL,
    ip_allowlist      TEXT NOT NULL,     -- space-separated CIDR prefixes; empty = any
    mfa_required      BOOLEAN NOT NULL,
    token_ttl_seconds INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL
);
