-- Inbound mail is taken once, whichever door it came through (IMAP, the
-- webhook, a file): keyed by its Message-ID, or a digest of its bytes when
-- it has none.
DROP INDEX inbound_mail_header;
CREATE UNIQUE INDEX inbound_mail_once ON inbound_mail (header_message_id);
-- Reports count soft bounces per customer, and list responses by customer.
CREATE INDEX responses_by_customer ON responses (customer_id, kind, received_at);
