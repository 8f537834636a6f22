-- Fewer index writes per delivered message. Delivery updates messages in
-- due order, scattered across the table, and every index entry a status
-- change moves dirties another page: the status index (nothing reads by
-- status alone often enough to pay for it), the old due index (claims use
-- messages_claim), and sent_at in the per-customer index (lookups by
-- customer read that customer's few rows anyway) are dropped or narrowed.
DROP INDEX messages_by_status;
DROP INDEX messages_due;
DROP INDEX messages_by_customer;
CREATE INDEX messages_by_customer ON messages (customer_id);
