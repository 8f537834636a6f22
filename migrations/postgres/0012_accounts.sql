-- Accounts: the companies that buy. A customer naming one is a contact of
-- it; a customer naming none is their own account, so every existing row
-- keeps its meaning. Roles are the names a contact holds, joined by
-- commas (names are declared in the config and cannot contain one).
CREATE TABLE accounts (
    id               TEXT PRIMARY KEY NOT NULL,
    name             TEXT NOT NULL DEFAULT '',
    plan             TEXT NOT NULL DEFAULT '',
    renewal_at       TIMESTAMPTZ,
    health           SMALLINT CHECK (health BETWEEN 0 AND 100),
    owner            TEXT,
    attributes       JSONB NOT NULL DEFAULT '{}',
    -- Derived by the account lifecycle rules; kept when re-imported.
    stage            TEXT,
    stage_entered_at TIMESTAMPTZ,
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL
);
ALTER TABLE customers ADD COLUMN account_id TEXT REFERENCES accounts (id) ON DELETE SET NULL;
ALTER TABLE customers ADD COLUMN roles TEXT NOT NULL DEFAULT '';
-- An account's contacts: its page, and re-planning them when it changes.
CREATE INDEX customers_by_account ON customers (account_id) WHERE account_id IS NOT NULL;
