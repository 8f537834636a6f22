-- When a person or a whole account can be written to: the `[[holidays]]`
-- calendar of their country or region (none: their account's, else
-- `delivery.holidays`), and a quiet period (their own launch, a
-- migration) until which only operational notices reach them. Both are
-- part of the imported record; times are milliseconds since the epoch.
ALTER TABLE customers ADD COLUMN holidays TEXT;
ALTER TABLE customers ADD COLUMN quiet_until INTEGER;
ALTER TABLE accounts ADD COLUMN holidays TEXT;
ALTER TABLE accounts ADD COLUMN quiet_until INTEGER;
