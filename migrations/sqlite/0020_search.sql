-- Finding people and accounts in the console by how their name or address
-- begins: the words a search may start with, lower-cased, kept beside
-- the records by triggers. A person's: their name, its last word, and
-- their address; an account's: its name and its last word. (Each term
-- is a row of an index every import writes at a random place, so there
-- are few: about 10 µs a term per customer imported.) The triggers
-- fire only when a name or address changes: planning, which rewrites
-- customers' rows at every pass, touches neither.
--
-- SQLite has no functions of its own making, so each trigger spells the
-- terms out over NEW or OLD (a view over the table would be read whole
-- for every row). The last word is what follows the last space: rtrim
-- strips every character but spaces from the right, leaving the name up
-- to it. Terms are cut at 200 characters, as on PostgreSQL, whose index
-- keys are limited. DISTINCT, not OR IGNORE alone: an upsert that fires a trigger
-- imposes its own conflict handling on the trigger's statements.
CREATE TABLE search_terms (
    kind TEXT NOT NULL, -- 'customer' or 'account'
    term TEXT NOT NULL,
    id   TEXT NOT NULL,
    PRIMARY KEY (kind, term, id)
) WITHOUT ROWID;

CREATE TRIGGER customer_searchable AFTER INSERT ON customers WHEN NEW.erased_at IS NULL
BEGIN
    INSERT OR IGNORE INTO search_terms (kind, term, id)
        SELECT DISTINCT 'customer', column1, NEW.id FROM (VALUES
            (substr(lower(NEW.name), 1, 200)),
            (substr(lower(substr(NEW.name, length(rtrim(NEW.name, replace(NEW.name, ' ', ''))) + 1)), 1, 200)),
            (substr(lower(NEW.email), 1, 200)))
        WHERE column1 <> '';
END;
CREATE TRIGGER customer_renamed_before BEFORE UPDATE OF name, email, erased_at ON customers
    WHEN OLD.name IS NOT NEW.name OR OLD.email IS NOT NEW.email
        OR OLD.erased_at IS NOT NEW.erased_at
BEGIN
    DELETE FROM search_terms WHERE kind = 'customer' AND id = OLD.id AND term IN (
        substr(lower(OLD.name), 1, 200),
        substr(lower(substr(OLD.name, length(rtrim(OLD.name, replace(OLD.name, ' ', ''))) + 1)), 1, 200),
        substr(lower(OLD.email), 1, 200));
END;
CREATE TRIGGER customer_renamed AFTER UPDATE OF name, email, erased_at ON customers
    WHEN (OLD.name IS NOT NEW.name OR OLD.email IS NOT NEW.email
        OR OLD.erased_at IS NOT NEW.erased_at) AND NEW.erased_at IS NULL
BEGIN
    INSERT OR IGNORE INTO search_terms (kind, term, id)
        SELECT DISTINCT 'customer', column1, NEW.id FROM (VALUES
            (substr(lower(NEW.name), 1, 200)),
            (substr(lower(substr(NEW.name, length(rtrim(NEW.name, replace(NEW.name, ' ', ''))) + 1)), 1, 200)),
            (substr(lower(NEW.email), 1, 200)))
        WHERE column1 <> '';
END;
CREATE TRIGGER customer_gone BEFORE DELETE ON customers
BEGIN
    DELETE FROM search_terms WHERE kind = 'customer' AND id = OLD.id AND term IN (
        substr(lower(OLD.name), 1, 200),
        substr(lower(substr(OLD.name, length(rtrim(OLD.name, replace(OLD.name, ' ', ''))) + 1)), 1, 200),
        substr(lower(OLD.email), 1, 200));
END;

CREATE TRIGGER account_searchable AFTER INSERT ON accounts
BEGIN
    INSERT OR IGNORE INTO search_terms (kind, term, id)
        SELECT DISTINCT 'account', column1, NEW.id FROM (VALUES
            (substr(lower(NEW.name), 1, 200)),
            (substr(lower(substr(NEW.name, length(rtrim(NEW.name, replace(NEW.name, ' ', ''))) + 1)), 1, 200)))
        WHERE column1 <> '';
END;
CREATE TRIGGER account_renamed_before BEFORE UPDATE OF name ON accounts
    WHEN OLD.name IS NOT NEW.name
BEGIN
    DELETE FROM search_terms WHERE kind = 'account' AND id = OLD.id AND term IN (
        substr(lower(OLD.name), 1, 200),
        substr(lower(substr(OLD.name, length(rtrim(OLD.name, replace(OLD.name, ' ', ''))) + 1)), 1, 200));
END;
CREATE TRIGGER account_renamed AFTER UPDATE OF name ON accounts
    WHEN OLD.name IS NOT NEW.name
BEGIN
    INSERT OR IGNORE INTO search_terms (kind, term, id)
        SELECT DISTINCT 'account', column1, NEW.id FROM (VALUES
            (substr(lower(NEW.name), 1, 200)),
            (substr(lower(substr(NEW.name, length(rtrim(NEW.name, replace(NEW.name, ' ', ''))) + 1)), 1, 200)))
        WHERE column1 <> '';
END;
CREATE TRIGGER account_gone BEFORE DELETE ON accounts
BEGIN
    DELETE FROM search_terms WHERE kind = 'account' AND id = OLD.id AND term IN (
        substr(lower(OLD.name), 1, 200),
        substr(lower(substr(OLD.name, length(rtrim(OLD.name, replace(OLD.name, ' ', ''))) + 1)), 1, 200));
END;

-- The records stored before: every term of each, once.
INSERT OR IGNORE INTO search_terms (kind, term, id)
    SELECT 'customer', term, id FROM (
        SELECT id, substr(lower(name), 1, 200) AS term FROM customers WHERE erased_at IS NULL
        UNION SELECT id, substr(lower(substr(name, length(rtrim(name, replace(name, ' ', ''))) + 1)), 1, 200)
            FROM customers WHERE erased_at IS NULL
        UNION SELECT id, substr(lower(email), 1, 200) FROM customers WHERE erased_at IS NULL)
    WHERE term <> '';
INSERT OR IGNORE INTO search_terms (kind, term, id)
    SELECT 'account', term, id FROM (
        SELECT id, substr(lower(name), 1, 200) AS term FROM accounts
        UNION SELECT id, substr(lower(substr(name, length(rtrim(name, replace(name, ' ', ''))) + 1)), 1, 200)
            FROM accounts)
    WHERE term <> '';
