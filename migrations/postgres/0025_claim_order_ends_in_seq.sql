-- Delivery claims each priority's due messages in (not_before, seq) order,
-- and a pass starts each claim after the last row its previous claim read.
-- With `seq` (drawn when a message is written, never changed) in the claim
-- index that place is an index bound: a claim no longer reads again past
-- the thousands of rows the pass has claimed and not yet sent, each an
-- index entry, an outbox row and a claim to look up. Messages due at one
-- instant keep going in the order they were written, which is the order
-- they lie in the table, so a burst reads and writes the outbox page by
-- page.
DROP INDEX messages_claim;
CREATE INDEX messages_claim ON messages (priority, not_before, seq)
    WHERE status IN ('planned', 'deferred');
