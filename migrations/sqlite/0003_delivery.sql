-- When a message was first tried, so retries stop at delivery.max_retry_age.
ALTER TABLE messages ADD COLUMN first_attempt_at INTEGER;
-- The delivery worker claims by priority, then by when each became sendable.
CREATE INDEX messages_claim ON messages (priority, not_before) WHERE status IN ('planned', 'deferred');
