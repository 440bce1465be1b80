-- Portal retention joins the account's retention policy (issue 5 item 6):
-- a portal message is readable for the policy's portal_message_days,
-- counted from created_at with the policy in force at each use, and the
-- retention sweeper shreds it then. portal_settings.retention_hours goes.

-- An account that had set retention_hours keeps that period, rounded up
-- to whole days (so no message goes before the time its notice
-- announced), unless its policy already holds a shorter portal period.
INSERT INTO retention_policies (account_id, message_body_days, portal_message_days, quarantine_days, updated_at)
SELECT account_id, 30, (retention_hours + 23) / 24, 30, updated_at FROM portal_settings WHERE retention_hours > 0
ON CONFLICT (account_id) DO UPDATE SET
    portal_message_days = MIN(retention_policies.portal_message_days, excluded.portal_message_days);

ALTER TABLE portal_settings DROP COLUMN retention_hours;

-- The sweep no longer reads expires_at (the deposit-time expiry the
-- notice announced, kept for display); it walks each account's messages
-- that still hold content, oldest first. A shredded message leaves this
-- index, so a sweep never rereads history it already shredded.
DROP INDEX portal_messages_expiry;
CREATE INDEX portal_messages_unshredded ON portal_messages(account_id, created_at, id) WHERE shredded_at IS NULL;
