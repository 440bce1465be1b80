-- Webhooks: per-account endpoints that receive message events, and the
-- log of every event's delivery to each endpoint (webhooks issue).

-- An endpoint. Its signing secret is sealed by the account's data key
-- (the server needs the secret itself to sign, so it cannot be hashed).
-- After a rotation the previous secret keeps signing until
-- previous_secret_until, so receivers can switch without losing events.
CREATE TABLE webhooks (
    id                     TEXT PRIMARY KEY,
    account_id             TEXT NOT NULL REFERENCES accounts(id),
    url                    TEXT NOT NULL,
    enabled                BOOLEAN NOT NULL,
    secret_sealed          BLOB NOT NULL,
    previous_secret_sealed BLOB,
    previous_secret_until  INTEGER NOT NULL DEFAULT 0,
    created_at             INTEGER NOT NULL,
    updated_at             INTEGER NOT NULL
);
CREATE INDEX webhooks_account ON webhooks(account_id, id);

-- The event types an endpoint receives, one row per type, so the fan-out
-- is one join.
CREATE TABLE webhook_subscriptions (
    webhook_id  TEXT NOT NULL REFERENCES webhooks(id),
    account_id  TEXT NOT NULL,
    event_type  TEXT NOT NULL,
    PRIMARY KEY (webhook_id, event_type)
);
CREATE INDEX webhook_subscriptions_account ON webhook_subscriptions(account_id, event_type);

-- How far the dispatcher has read each account's message_events (ids are
-- UUIDv7, so they sort by time): the outbox cursor.
CREATE TABLE webhook_cursors (
    account_id     TEXT PRIMARY KEY,
    last_event_id  TEXT NOT NULL,
    updated_at     INTEGER NOT NULL
);

-- One row per (endpoint, event): the delivery state machine and the
-- evidence of its last attempt. A delivery is named by its event's id.
-- Test pings have event_type 'ping' and no message_events row.
CREATE TABLE webhook_deliveries (
    webhook_id        TEXT NOT NULL,
    event_id          TEXT NOT NULL,
    account_id        TEXT NOT NULL,
    event_type        TEXT NOT NULL,
    event_time        INTEGER NOT NULL,
    status            TEXT NOT NULL,               -- pending | retrying | succeeded | failed
    attempts          INTEGER NOT NULL DEFAULT 0,
    next_attempt_at   INTEGER NOT NULL,
    give_up_at        INTEGER NOT NULL,
    lease_until       INTEGER NOT NULL DEFAULT 0,
    lease_owner       TEXT NOT NULL DEFAULT '',
    last_attempt_at   INTEGER NOT NULL DEFAULT 0,
    last_status_code  INTEGER NOT NULL DEFAULT 0,  -- HTTP status of the last attempt, 0 when none came
    last_error        TEXT NOT NULL DEFAULT '',    -- sanitised, short
    last_response     TEXT NOT NULL DEFAULT '',    -- the first bytes of the response body, sanitised
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    PRIMARY KEY (webhook_id, event_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries(next_attempt_at) WHERE status IN ('pending', 'retrying');
CREATE INDEX webhook_deliveries_log ON webhook_deliveries(account_id, webhook_id, event_id);
CREATE INDEX webhook_deliveries_done ON webhook_deliveries(updated_at) WHERE status IN ('succeeded', 'failed');

-- The dispatcher reads an account's events in id order after its cursor.
CREATE INDEX message_events_account_id ON message_events(account_id, id);
