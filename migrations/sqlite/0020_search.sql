-- Finding people and accounts in the console by how their name or address
-- begins: the words a search may start with, lower-cased, kept beside
-- the records by triggers. A person's: their name, the rest of it after
-- the first word, its last word, their address, and its domain; an
-- account's: its name, and the rest after the first word. The triggers
-- fire only when a name or address changes: planning, which rewrites
-- customers' rows at every pass, touches neither.
CREATE TABLE search_terms (
    kind TEXT NOT NULL, -- 'customer' or 'account'
    term TEXT NOT NULL,
    id   TEXT NOT NULL,
    PRIMARY KEY (kind, term, id)
) WITHOUT ROWID;

-- The terms, once: the triggers and the first filling read them here.
-- The last word is what follows the last space: rtrim strips every
-- character but spaces from the right, leaving the name up to it.
CREATE VIEW customer_terms (id, term) AS
    SELECT id, lower(name) FROM customers WHERE erased_at IS NULL
    UNION ALL SELECT id, lower(substr(name, instr(name, ' ') + 1))
        FROM customers WHERE erased_at IS NULL
    UNION ALL SELECT id, lower(substr(name, length(rtrim(name, replace(name, ' ', ''))) + 1))
        FROM customers WHERE erased_at IS NULL
    UNION ALL SELECT id, lower(email) FROM customers WHERE erased_at IS NULL
    UNION ALL SELECT id, lower(substr(email, instr(email, '@') + 1))
        FROM customers WHERE erased_at IS NULL;
CREATE VIEW account_terms (id, term) AS
    SELECT id, lower(name) FROM accounts
    UNION ALL SELECT id, lower(substr(name, instr(name, ' ') + 1)) FROM accounts;

-- DISTINCT, not only OR IGNORE: an upsert that fires a trigger imposes
-- its own conflict handling on the trigger's statements.
CREATE TRIGGER customer_searchable AFTER INSERT ON customers
BEGIN
    INSERT OR IGNORE INTO search_terms (kind, term, id)
        SELECT DISTINCT 'customer', term, id FROM customer_terms WHERE id = NEW.id AND term <> '';
END;
CREATE TRIGGER customer_renamed_before BEFORE UPDATE OF name, email, erased_at ON customers
    WHEN OLD.name IS NOT NEW.name OR OLD.email IS NOT NEW.email
        OR OLD.erased_at IS NOT NEW.erased_at
BEGIN
    DELETE FROM search_terms WHERE kind = 'customer' AND id = OLD.id
        AND term IN (SELECT term FROM customer_terms WHERE id = OLD.id);
END;
CREATE TRIGGER customer_renamed AFTER UPDATE OF name, email, erased_at ON customers
    WHEN OLD.name IS NOT NEW.name OR OLD.email IS NOT NEW.email
        OR OLD.erased_at IS NOT NEW.erased_at
BEGIN
    INSERT OR IGNORE INTO search_terms (kind, term, id)
        SELECT DISTINCT 'customer', term, id FROM customer_terms WHERE id = NEW.id AND term <> '';
END;
CREATE TRIGGER customer_gone BEFORE DELETE ON customers
BEGIN
    DELETE FROM search_terms WHERE kind = 'customer' AND id = OLD.id
        AND term IN (SELECT term FROM customer_terms WHERE id = OLD.id);
END;

CREATE TRIGGER account_searchable AFTER INSERT ON accounts
BEGIN
    INSERT OR IGNORE INTO search_terms (kind, term, id)
        SELECT DISTINCT 'account', term, id FROM account_terms WHERE id = NEW.id AND term <> '';
END;
CREATE TRIGGER account_renamed_before BEFORE UPDATE OF name ON accounts
    WHEN OLD.name IS NOT NEW.name
BEGIN
    DELETE FROM search_terms WHERE kind = 'account' AND id = OLD.id
        AND term IN (SELECT term FROM account_terms WHERE id = OLD.id);
END;
CREATE TRIGGER account_renamed AFTER UPDATE OF name ON accounts
    WHEN OLD.name IS NOT NEW.name
BEGIN
    INSERT OR IGNORE INTO search_terms (kind, term, id)
        SELECT DISTINCT 'account', term, id FROM account_terms WHERE id = NEW.id AND term <> '';
END;
CREATE TRIGGER account_gone BEFORE DELETE ON accounts
BEGIN
    DELETE FROM search_terms WHERE kind = 'account' AND id = OLD.id
        AND term IN (SELECT term FROM account_terms WHERE id = OLD.id);
END;

INSERT OR IGNORE INTO search_terms (kind, term, id)
    SELECT 'customer', term, id FROM customer_terms WHERE term <> '';
INSERT OR IGNORE INTO search_terms (kind, term, id)
    SELECT 'account', term, id FROM account_terms WHERE term <> '';
