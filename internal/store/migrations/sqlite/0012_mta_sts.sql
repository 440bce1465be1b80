-- MTA-STS (RFC 8461) policies of destination domains, cached so that a
-- restart keeps them (RFC 8461 §5.1: a cached, unexpired policy applies
-- when a fresh one cannot be fetched). A policy is public data about the
-- recipient domain, the same for every account, so this table has no
-- account_id: no tenant data is stored here.
CREATE TABLE mta_sts_policies (
    domain     TEXT PRIMARY KEY,          -- ASCII (A-labels), lower case
    policy_id  TEXT NOT NULL,             -- the id= of the _mta-sts TXT record
    policy     TEXT NOT NULL,             -- the policy file as fetched
    fetched_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL           -- fetched_at + max_age
);
