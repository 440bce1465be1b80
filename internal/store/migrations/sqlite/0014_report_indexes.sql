-- Indexes for reports and the scheduled-message list: scheduled messages
-- are found by send_at without reading an account's whole history, and
-- the per-recipient event lookups (deferred at least once, engagement)
-- go by message and type.
CREATE INDEX messages_account_send_at ON messages(account_id, send_at);
CREATE INDEX message_events_message_type ON message_events(message_id, type, rcpt_index);
