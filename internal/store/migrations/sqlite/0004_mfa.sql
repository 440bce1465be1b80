-- TOTP MFA (identity issue). The secret is sealed by the account's data
-- key; totp_last_step is the last RFC 6238 time-step accepted for the
-- user, advanced with a compare-and-set so each code (and every code of an
-- earlier or equal step) works once.
ALTER TABLE users ADD COLUMN totp_secret_sealed BLOB;
ALTER TABLE users ADD COLUMN totp_confirmed_at INTEGER;
ALTER TABLE users ADD COLUMN totp_last_step INTEGER NOT NULL DEFAULT 0;

CREATE TABLE recovery_codes (
    account_id TEXT NOT NULL,
    user_id    TEXT NOT NULL REFERENCES users(id),
    code_hash  BLOB NOT NULL,            -- SHA-256 of a 80-bit random code
    used_at    INTEGER,
    PRIMARY KEY (user_id, code_hash)
);
