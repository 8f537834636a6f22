-- No query looks customers up by address: replies and bounces find their
-- customer through the message they answer, and an audience selector on
-- `customer.email` reads the table once when an incident opens. The index
-- only cost a write for every customer imported (PostgreSQL also wrote it
-- at every planning pass; the two stores keep the same schema).
DROP INDEX customers_email;
