-- The claims' expiry index goes. Every claim, renewal and settle wrote an
-- entry in it, and a renewal that moves a claim's expiry could not stay on
-- its page (heap-only) while an index named the column. What reads by
-- expiry (whether any claim ran out, the sends a stopped instance left)
-- reads the whole table, which holds only the claims in flight and is
-- vacuumed after every large pass.
DROP INDEX claims_by_until;
