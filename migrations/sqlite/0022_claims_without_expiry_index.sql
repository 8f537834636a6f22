-- The claims' expiry index goes. Every claim, renewal and settle wrote an
-- entry in it: about a seventh of what a delivery burst wrote. What reads
-- by expiry (whether any claim ran out, the sends a stopped instance left)
-- reads the whole table, which holds only the claims in flight.
DROP INDEX claims_by_until;
