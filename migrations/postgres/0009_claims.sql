-- Leases on messages (claimed to be sent, then in flight) live in a small
-- table of their own instead of in the outbox row. Delivery claims in due
-- order, which need not be the order rows were written in, so each write to
-- a claimed outbox row dirties a page of its own, and a write that made the
-- row longer (an owner where there was none) could split that page. The
-- outbox row is now written twice a message (`sending`, the outcome), the
-- first time without growing; the lease rows, few and short-lived, share a
-- handful of pages, and their expiry index is where recovery after a stop
-- looks for interrupted sends.
CREATE TABLE claims (
    message_id TEXT PRIMARY KEY NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    owner      TEXT NOT NULL,
    until      TIMESTAMPTZ NOT NULL
);
CREATE INDEX claims_by_until ON claims (until);
-- Leases taken before this migration move across.
INSERT INTO claims (message_id, owner, until)
    SELECT id, lease_owner, lease_until FROM messages
    WHERE status IN ('planned', 'deferred', 'sending')
    AND lease_owner IS NOT NULL AND lease_until IS NOT NULL;
DROP INDEX messages_in_flight;
ALTER TABLE messages DROP COLUMN lease_owner;
ALTER TABLE messages DROP COLUMN lease_until;
