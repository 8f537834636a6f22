-- Finding people and accounts in the console by how their name or address
-- begins: the words a search may start with, lower-cased, kept beside
-- the records by triggers. A person's: their name, its last word, and
-- their address; an account's: its name and its last word. (Each term
-- is a row of an index every import writes at a random place, so there
-- are few: about 10 µs a term per customer imported.) Terms compare
-- byte by byte ("C"), so a range over the key is a prefix search. The
-- triggers on changes fire only when a name or address changes:
-- planning, which rewrites customers' rows at every pass, touches
-- neither; an import's insert adds its rows' terms in one statement,
-- without ON CONFLICT's speculative insertion (a new row has no terms
-- yet: a removed one's went with it).
CREATE TABLE search_terms (
    kind TEXT NOT NULL, -- 'customer' or 'account'
    term TEXT COLLATE "C" NOT NULL,
    id   TEXT NOT NULL,
    PRIMARY KEY (kind, term, id)
);

-- Each term is cut at 200 characters: a key of an index is limited (a
-- name of kilobytes would fail its import), and a search longer than
-- that is cut alike.
CREATE FUNCTION name_terms(name TEXT) RETURNS TEXT[] LANGUAGE sql IMMUTABLE AS $$
    SELECT ARRAY[left(lower(name), 200), left(lower(substring(name from '[^ ]*$')), 200)]
$$;
CREATE FUNCTION customer_terms(name TEXT, email TEXT) RETURNS TEXT[] LANGUAGE sql IMMUTABLE AS $$
    SELECT name_terms(name) || left(lower(email), 200)
$$;

CREATE FUNCTION customers_searchable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO search_terms (kind, term, id)
        SELECT DISTINCT 'customer', t, n.id
        FROM added n, unnest(customer_terms(n.name, n.email)) AS t
        WHERE n.erased_at IS NULL AND t <> '';
    RETURN NULL;
END
$$;
CREATE TRIGGER customers_searchable AFTER INSERT ON customers
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION customers_searchable();

CREATE FUNCTION customer_searched_again() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM search_terms WHERE kind = 'customer' AND id = OLD.id
        AND term = ANY (customer_terms(OLD.name, OLD.email));
    IF TG_OP = 'UPDATE' AND NEW.erased_at IS NULL THEN
        INSERT INTO search_terms (kind, term, id)
            SELECT DISTINCT 'customer', t, NEW.id
            FROM unnest(customer_terms(NEW.name, NEW.email)) AS t WHERE t <> ''
            ON CONFLICT DO NOTHING;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER customer_renamed AFTER UPDATE OF name, email, erased_at ON customers
    FOR EACH ROW WHEN (OLD.name IS DISTINCT FROM NEW.name OR OLD.email IS DISTINCT FROM NEW.email
        OR OLD.erased_at IS DISTINCT FROM NEW.erased_at)
    EXECUTE FUNCTION customer_searched_again();
CREATE TRIGGER customer_gone AFTER DELETE ON customers
    FOR EACH ROW EXECUTE FUNCTION customer_searched_again();

CREATE FUNCTION accounts_searchable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO search_terms (kind, term, id)
        SELECT DISTINCT 'account', t, n.id
        FROM added n, unnest(name_terms(n.name)) AS t WHERE t <> '';
    RETURN NULL;
END
$$;
CREATE TRIGGER accounts_searchable AFTER INSERT ON accounts
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION accounts_searchable();

CREATE FUNCTION account_searched_again() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM search_terms WHERE kind = 'account' AND id = OLD.id
        AND term = ANY (name_terms(OLD.name));
    IF TG_OP = 'UPDATE' THEN
        INSERT INTO search_terms (kind, term, id)
            SELECT DISTINCT 'account', t, NEW.id
            FROM unnest(name_terms(NEW.name)) AS t WHERE t <> ''
            ON CONFLICT DO NOTHING;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER account_renamed AFTER UPDATE OF name ON accounts
    FOR EACH ROW WHEN (OLD.name IS DISTINCT FROM NEW.name)
    EXECUTE FUNCTION account_searched_again();
CREATE TRIGGER account_gone AFTER DELETE ON accounts
    FOR EACH ROW EXECUTE FUNCTION account_searched_again();

INSERT INTO search_terms (kind, term, id)
    SELECT DISTINCT 'customer', t, c.id
    FROM customers c, unnest(customer_terms(c.name, c.email)) AS t
    WHERE c.erased_at IS NULL AND t <> '';
INSERT INTO search_terms (kind, term, id)
    SELECT DISTINCT 'account', t, a.id
    FROM accounts a, unnest(name_terms(a.name)) AS t WHERE t <> '';
