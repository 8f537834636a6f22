-- No query looks customers up by address: replies and bounces find their
-- customer through the message they answer, and an audience selector on
-- `customer.email` reads the table once when an incident opens. The index
-- cost a write at a random place for every customer at every planning
-- pass (an update of `plan_at` writes every index of a row again): about
-- a tenth of a full pass at 1,000,000 customers.
DROP INDEX customers_email;
