-- People erased at their request. What was sent to them and what they
-- answered stays, so every figure stays true, under a stand-in customer
-- that has no name, no address and no history (`erased_at` set: never
-- planned, never selected); the address they had is kept only as a hash,
-- so an import that brings it back is refused and they are never mailed
-- again.
ALTER TABLE customers ADD COLUMN erased_at INTEGER;
CREATE TABLE erased_addresses (
    hash       TEXT PRIMARY KEY NOT NULL,
    erased_at  INTEGER NOT NULL
) WITHOUT ROWID;
