-- One index write fewer per planned message. The outbox's unique key
-- (customer_id, playbook, step, occurrence) already leads with the
-- customer, so lookups of a customer's messages use it; the separate
-- per-customer index only cost a write for every message planned.
DROP INDEX messages_by_customer;
