-- Ids and the outbox's key compare byte by byte. In the database's own
-- collation every comparison of two ids in an index went through the C
-- library's strcoll (with a copy of both strings to end them with a zero).
-- In a delivery burst an eighth of the server's time went to comparing
-- text (`perf`), under every message's claim, `sending` mark, outcome and
-- attempt, on a database in C.UTF-8; more in a language's collation. Nothing
-- sorts ids for people to read, and SQLite compares them byte by byte
-- already, so both stores now order them the same way.
--
-- A column's collation must match every column it is compared with, so
-- every column holding one of these ids changes together. No row is
-- rewritten; the indexes on these columns are rebuilt.
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
