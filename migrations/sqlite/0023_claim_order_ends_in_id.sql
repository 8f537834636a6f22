-- Delivery claims each priority's due messages in (not_before, id) order,
-- and a pass starts each claim after the last row its previous claim read.
-- With the id in the claim index that place is an index bound: a claim no
-- longer reads again past the rows the pass has claimed and not yet sent.
DROP INDEX messages_claim;
CREATE INDEX messages_claim ON messages (priority, not_before, id)
    WHERE status IN ('planned', 'deferred');
