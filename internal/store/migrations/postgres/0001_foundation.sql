-- Foundation schema (PostgreSQL). Times are BIGINT microseconds since the
-- Unix epoch (UTC) on both dialects so ordering, hashing and comparisons are
-- identical; see docs/decisions/0002-store-conventions.md.

-- Accounts and principals -------------------------------------------------
CREATE TABLE accounts (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    status      TEXT NOT NULL DEFAULT 'active',
    created_at  BIGINT NOT NULL
);

CREATE TABLE roles (
    name        TEXT PRIMARY KEY,
    scopes      TEXT NOT NULL,
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
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
CREATE INDEX users_account ON users(account_id);

CREATE TABLE api_clients (
    id           TEXT PRIMARY KEY,
    account_id   TEXT NOT NULL REFERENCES accounts(id),
    name         TEXT NOT NULL,
    secret_hash  BYTEA NOT NULL,
    role         TEXT NOT NULL REFERENCES roles(name),
    scopes       TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    revoked_at   BIGINT
);
CREATE INDEX api_clients_account ON api_clients(account_id);

-- Vault -------------------------------------------------------------------
CREATE TABLE account_keys (
    account_id   TEXT PRIMARY KEY REFERENCES accounts(id),
    keyset       BYTEA,
    version      INTEGER NOT NULL,
    created_at   BIGINT NOT NULL,
    rotated_at   BIGINT NOT NULL,
    destroyed_at BIGINT
);


-- Audit log ---------------------------------------------------------------
CREATE TABLE audit_events (
    account_id  TEXT NOT NULL,
    seq         BIGINT NOT NULL,
    id          TEXT NOT NULL UNIQUE,
    time        BIGINT NOT NULL,
    actor_kind  TEXT NOT NULL,
    actor_id    TEXT NOT NULL,
    action      TEXT NOT NULL,
    target      TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    source_ip   TEXT NOT NULL,
    request_id  TEXT NOT NULL,
    details     TEXT NOT NULL,
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL,
    PRIMARY KEY (account_id, seq)
);
CREATE INDEX audit_events_time ON audit_events(account_id, time);
CREATE INDEX audit_events_action ON audit_events(account_id, action, seq);
CREATE INDEX audit_events_actor ON audit_events(account_id, actor_id, seq);

CREATE TABLE audit_heads (
    account_id  TEXT PRIMARY KEY,
    seq         BIGINT NOT NULL,
    hash        TEXT NOT NULL
);

CREATE FUNCTION audit_events_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER audit_events_no_update BEFORE UPDATE OR DELETE ON audit_events
FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
