-- Ids and the outbox's key compare byte by byte. In a database created in
-- a language's collation (en_US.UTF-8, as initdb picks up on a machine set
-- to English, or an ICU locale), every comparison of two ids in an index
-- went through that language's rules: a delivery burst cost the server
-- about twice the CPU it costs with byte comparisons. In C.UTF-8, which
-- orders by code point, the gain is within noise. SQLite compares ids
-- byte by byte already, so both stores now also list ids in one order.
--
-- Every column holding one of these ids changes together: a comparison of
-- a "C" column with a column in the default collation runs in "C", and an
-- index in the other collation could not serve it. No row is rewritten;
-- the indexes on these columns are rebuilt.
ALTER TABLE customers ALTER COLUMN id TYPE TEXT COLLATE "C",
    ALTER COLUMN account_id TYPE TEXT COLLATE "C";
ALTER TABLE accounts ALTER COLUMN id TYPE TEXT COLLATE "C";
ALTER TABLE account_stage_changes ALTER COLUMN account_id TYPE TEXT COLLATE "C";
ALTER TABLE messages ALTER COLUMN id TYPE TEXT COLLATE "C",
    ALTER COLUMN customer_id TYPE TEXT COLLATE "C",
    ALTER COLUMN playbook TYPE TEXT COLLATE "C",
    ALTER COLUMN step TYPE TEXT COLLATE "C",
    ALTER COLUMN occurrence TYPE TEXT COLLATE "C",
    ALTER COLUMN message_id TYPE TEXT COLLATE "C",
    ALTER COLUMN incident_id TYPE TEXT COLLATE "C",
    ALTER COLUMN account_id TYPE TEXT COLLATE "C";
ALTER TABLE claims ALTER COLUMN message_id TYPE TEXT COLLATE "C",
    ALTER COLUMN owner TYPE TEXT COLLATE "C";
ALTER TABLE attempts ALTER COLUMN message_id TYPE TEXT COLLATE "C";
ALTER TABLE inbound_mail ALTER COLUMN id TYPE TEXT COLLATE "C",
    ALTER COLUMN message_id TYPE TEXT COLLATE "C",
    ALTER COLUMN header_message_id TYPE TEXT COLLATE "C";
ALTER TABLE responses ALTER COLUMN id TYPE TEXT COLLATE "C",
    ALTER COLUMN customer_id TYPE TEXT COLLATE "C",
    ALTER COLUMN message_id TYPE TEXT COLLATE "C",
    ALTER COLUMN inbound_id TYPE TEXT COLLATE "C";
ALTER TABLE events ALTER COLUMN id TYPE TEXT COLLATE "C",
    ALTER COLUMN customer_id TYPE TEXT COLLATE "C";
ALTER TABLE stage_changes ALTER COLUMN customer_id TYPE TEXT COLLATE "C";
ALTER TABLE suppressions ALTER COLUMN customer_id TYPE TEXT COLLATE "C";
ALTER TABLE suppression_lifts ALTER COLUMN customer_id TYPE TEXT COLLATE "C";
ALTER TABLE incidents ALTER COLUMN id TYPE TEXT COLLATE "C";
ALTER TABLE incident_customers ALTER COLUMN incident_id TYPE TEXT COLLATE "C",
    ALTER COLUMN customer_id TYPE TEXT COLLATE "C";
ALTER TABLE incident_updates ALTER COLUMN incident_id TYPE TEXT COLLATE "C";
ALTER TABLE signals ALTER COLUMN id TYPE TEXT COLLATE "C",
    ALTER COLUMN customer_id TYPE TEXT COLLATE "C";
ALTER TABLE notifications ALTER COLUMN id TYPE TEXT COLLATE "C",
    ALTER COLUMN signal_id TYPE TEXT COLLATE "C",
    ALTER COLUMN customer_id TYPE TEXT COLLATE "C";
ALTER TABLE search_queue ALTER COLUMN id TYPE TEXT COLLATE "C";
