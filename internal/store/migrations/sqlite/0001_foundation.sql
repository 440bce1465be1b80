-- Foundation schema (SQLite). Times are INTEGER microseconds since the Unix
-- epoch (UTC) on both dialects so ordering, hashing and comparisons are
-- identical; see docs/decisions/0002-store-conventions.md.

-- Accounts and principals -------------------------------------------------
CREATE TABLE accounts (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    status      TEXT NOT NULL DEFAULT 'active',
    created_at  INTEGER NOT NULL
);

CREATE TABLE roles (
    name        TEXT PRIMARY KEY,
    scopes      TEXT NOT NULL,          -- space-separated
    description TEXT NOT NULL
);

INSERT INTO roles (name, scopes, description) VALUES
    ('owner',    'admin audit:read messages:send messages:read contacts:write workflows:write', 'Everything, including credentials and policy'),
    ('admin',    'admin audit:read messages:send messages:read contacts:write workflows:write', 'Administers the account'),
    ('sender',   'messages:send messages:read', 'Sends and reads messages'),
    ('marketer', 'contacts:write workflows:write messages:read', 'Contacts, campaigns and workflows'),
    ('auditor',  'audit:read', 'Reads the audit log, nothing else');

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    account_id    TEXT NOT NULL REFERENCES accounts(id),
    email         TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL REFERENCES roles(name),
    disabled      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);
CREATE INDEX users_account ON users(account_id);

CREATE TABLE api_clients (
    id           TEXT PRIMARY KEY,       -- the public client_id
    account_id   TEXT NOT NULL REFERENCES accounts(id),
    name         TEXT NOT NULL,
    secret_hash  BLOB NOT NULL,          -- SHA-256 of the 256-bit random secret
    role         TEXT NOT NULL REFERENCES roles(name),
    scopes       TEXT NOT NULL,          -- space-separated, bounded by role
    created_at   INTEGER NOT NULL,
    revoked_at   INTEGER
);
CREATE INDEX api_clients_account ON api_clients(account_id);

-- Vault: one wrapped data keyset per account ------------------------------
CREATE TABLE account_keys (
    account_id   TEXT PRIMARY KEY REFERENCES accounts(id),
    keyset       BLOB,                   -- tink keyset wrapped by the master key; NULL once shredded
    version      INTEGER NOT NULL,       -- bumped by every rotation
    created_at   INTEGER NOT NULL,
    rotated_at   INTEGER NOT NULL,
    destroyed_at INTEGER
);


-- Audit log: append-only, hash-chained per account -------------------------
CREATE TABLE audit_events (
    account_id  TEXT NOT NULL,           -- '' for platform events
    seq         INTEGER NOT NULL,
    id          TEXT NOT NULL UNIQUE,
    time        INTEGER NOT NULL,
    actor_kind  TEXT NOT NULL,
    actor_id    TEXT NOT NULL,
    action      TEXT NOT NULL,
    target      TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    source_ip   TEXT NOT NULL,
    request_id  TEXT NOT NULL,
    details     TEXT NOT NULL,           -- canonical JSON object of strings
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL,
    PRIMARY KEY (account_id, seq)
);
CREATE INDEX audit_events_time ON audit_events(account_id, time);
CREATE INDEX audit_events_action ON audit_events(account_id, action, seq);
CREATE INDEX audit_events_actor ON audit_events(account_id, actor_id, seq);

CREATE TABLE audit_heads (
    account_id  TEXT PRIMARY KEY,
    seq         INTEGER NOT NULL,
    hash        TEXT NOT NULL
);

-- Append-only: the database itself refuses edits and deletes of events.
CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END;
