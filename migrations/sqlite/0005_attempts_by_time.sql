-- Housekeeping deletes attempts older than delivery.keep_attempts.
CREATE INDEX attempts_by_time ON attempts (started_at);
