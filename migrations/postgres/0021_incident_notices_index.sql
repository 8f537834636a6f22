-- Who got an incident's notices, read in customer order: counting them
-- (`tend incident list`, the console's list and each incident's page)
-- reads this index alone, and the console's sample of the first hundred
-- stops after them instead of sorting every notice. Step and status are
-- carried (INCLUDE), not keyed: a condition on a list of statuses over a
-- key column would cost the scan its order. Only incident notices are in
-- it (it is partial), so other mail writes nothing more.
DROP INDEX messages_by_incident;
CREATE INDEX messages_by_incident ON messages (incident_id, customer_id) INCLUDE (step, status)
    WHERE incident_id IS NOT NULL;
-- Erased people's stand-ins, few: "not an erased person" is a look-up
-- here instead of a scan of every customer.
CREATE INDEX customers_erased ON customers (id) WHERE erased_at IS NOT NULL;
