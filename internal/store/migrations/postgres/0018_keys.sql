-- The key management API (package keys): recipients' OpenPGP public keys
-- and S/MIME certificates, and senders' S/MIME certificates with their
-- private keys sealed by the vault. Public material is stored as
-- uploaded and validated again at every lookup; the private key is
-- stored only sealed (associated data: account, key id) and never
-- returned.
CREATE TABLE mail_keys (
    id             TEXT PRIMARY KEY,
    account_id     TEXT NOT NULL REFERENCES accounts(id),
    kind           TEXT NOT NULL,            -- pgp | smime | smime_sender
    address        TEXT NOT NULL,            -- lookup key: lower-cased address (IDN as A-labels), or a bare domain for smime_sender
    validated_as   TEXT NOT NULL,            -- the address form the key or certificate holds and was validated for
    fingerprint    TEXT NOT NULL,            -- OpenPGP primary key fingerprint, or SHA-256 of the certificate (upper-case hex)
    material       TEXT NOT NULL,            -- armored public key, or PEM certificate chain (leaf first)
    private_sealed BYTEA,                    -- smime_sender: the PKCS #8 private key, sealed; NULL otherwise
    expires_at     BIGINT  NOT NULL,         -- microseconds; 0: does not expire
    created_at     BIGINT  NOT NULL,
    updated_at     BIGINT  NOT NULL,
    actor_kind     TEXT NOT NULL,            -- who uploaded it
    actor_id       TEXT NOT NULL,
    UNIQUE (account_id, kind, address, fingerprint)
);
CREATE INDEX mail_keys_lookup ON mail_keys(account_id, kind, address, created_at);
CREATE INDEX mail_keys_list ON mail_keys(account_id, kind, id);
