-- Claims (leases on messages waiting to go) live in a small table of their
-- own. Delivery claims in due order, which need not be the order rows were
-- written in, so every write to a claimed outbox row dirties a page of its
-- own; a claim written into the outbox made that three writes a message
-- (claim, `sending`, outcome). Here the outbox row is written twice, and
-- the claim rows, few and short-lived, share a handful of pages.
-- A message marked `sending` carries its lease in the outbox row again
-- (lease_owner, lease_until), where recovery after a stop finds it.
CREATE TABLE claims (
    message_id TEXT PRIMARY KEY NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    owner      TEXT NOT NULL,
    until      TIMESTAMPTZ NOT NULL
);
-- Claims taken before this migration move across.
INSERT INTO claims (message_id, owner, until)
    SELECT id, lease_owner, lease_until FROM messages
    WHERE status IN ('planned', 'deferred') AND lease_owner IS NOT NULL AND lease_until IS NOT NULL;
UPDATE messages SET lease_owner = NULL, lease_until = NULL
    WHERE status IN ('planned', 'deferred') AND lease_owner IS NOT NULL;
