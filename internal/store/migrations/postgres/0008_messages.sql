-- Secure email API and delivery engine (delivery issue).

-- Sending domains. A domain belongs to an account once verified by DNS
-- (or registered by an operator); its DKIM private keys (RSA-2048 and
-- Ed25519) are sealed by the account's data key.
CREATE TABLE sending_domains (
    account_id       TEXT NOT NULL REFERENCES accounts(id),
    domain           TEXT NOT NULL,               -- ASCII (A-labels), lower case
    status           TEXT NOT NULL,               -- pending | verified
    dkim_selector    TEXT NOT NULL,               -- selectors are <selector>r (RSA) and <selector>e (Ed25519)
    dkim_rsa_public  TEXT NOT NULL,               -- base64 DER SubjectPublicKeyInfo, the p= of the DNS record
    dkim_ed_public   TEXT NOT NULL,               -- base64 raw Ed25519 public key
    dkim_keys_sealed BYTEA NOT NULL,
    created_at       BIGINT NOT NULL,
    verified_at      BIGINT,
    checked_at       BIGINT,
    check_result     TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (account_id, domain)
);

-- Accepted messages. The composed RFC 5322 message (subject, bodies,
-- attachments: PHI) is sealed; envelope and status stay readable.
CREATE TABLE messages (
    id             TEXT PRIMARY KEY,
    account_id     TEXT NOT NULL REFERENCES accounts(id),
    actor_kind     TEXT NOT NULL,
    actor_id       TEXT NOT NULL,
    from_addr      TEXT NOT NULL,
    from_domain    TEXT NOT NULL,
    header_id      TEXT NOT NULL,                 -- the Message-ID header, without <>
    kind           TEXT NOT NULL,                 -- transactional | marketing
    tags           TEXT NOT NULL,                 -- JSON array
    metadata       TEXT NOT NULL,                 -- JSON object of strings
    options        TEXT NOT NULL,                 -- JSON: encryption, tracking
    body_sealed    BYTEA,                            -- NULL once shredded
    size           BIGINT NOT NULL,
    smtputf8       BOOLEAN NOT NULL,
    send_at        BIGINT NOT NULL,
    created_at     BIGINT NOT NULL,
    cancelled_at   BIGINT
);
CREATE INDEX messages_account_created ON messages(account_id, created_at, id);

-- One row per recipient: the delivery state machine and its evidence.
CREATE TABLE message_recipients (
    message_id      TEXT NOT NULL REFERENCES messages(id),
    rcpt_index      INTEGER NOT NULL,
    account_id      TEXT NOT NULL,
    address         TEXT NOT NULL,
    domain          TEXT NOT NULL,
    kind            TEXT NOT NULL,                -- to | cc | bcc
    state           TEXT NOT NULL,                -- queued | deferred | delivered | bounced | suppressed | failed | cancelled
    priority        INTEGER NOT NULL,             -- 1 transactional, 2 marketing
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    lease_until     BIGINT NOT NULL DEFAULT 0,
    lease_owner     TEXT NOT NULL DEFAULT '',        -- the claim holding the lease
    expires_at      BIGINT NOT NULL,                  -- bounce when still undelivered then
    updated_at      BIGINT NOT NULL,
    remote_host     TEXT NOT NULL DEFAULT '',
    tls_version     TEXT NOT NULL DEFAULT '',
    tls_cipher      TEXT NOT NULL DEFAULT '',
    smtp_code       INTEGER NOT NULL DEFAULT 0,
    smtp_reply      TEXT NOT NULL DEFAULT '',
    delivered_at    BIGINT,
    PRIMARY KEY (message_id, rcpt_index)
);
CREATE INDEX message_recipients_due ON message_recipients(domain, priority, next_attempt_at) WHERE state IN ('queued', 'deferred');
CREATE INDEX message_recipients_next ON message_recipients(next_attempt_at) WHERE state IN ('queued', 'deferred');
CREATE INDEX message_recipients_lease ON message_recipients(lease_owner) WHERE lease_owner <> '';

-- Status history per recipient (also what webhooks will carry).
CREATE TABLE message_events (
    id          TEXT PRIMARY KEY,
    account_id  TEXT NOT NULL,
    message_id  TEXT NOT NULL,
    rcpt_index  INTEGER NOT NULL,
    type        TEXT NOT NULL,
    time        BIGINT NOT NULL,
    details     TEXT NOT NULL
);
CREATE INDEX message_events_message ON message_events(message_id, time);

-- Addresses an account no longer sends to.
CREATE TABLE suppressions (
    account_id  TEXT NOT NULL REFERENCES accounts(id),
    address     TEXT NOT NULL,
    reason      TEXT NOT NULL,                    -- hard_bounce | complaint | unsubscribe | manual
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (account_id, address)
);

-- Idempotency-Key: the first answer to a key, for 24 hours.
CREATE TABLE idempotency_keys (
    account_id    TEXT NOT NULL,
    key           TEXT NOT NULL,
    request_hash  BYTEA NOT NULL,
    status        INTEGER NOT NULL,
    response      TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (account_id, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys(created_at);
