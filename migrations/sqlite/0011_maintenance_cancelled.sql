-- no-transaction
-- A maintenance can be called off before it starts: `cancelled` joins the
-- statuses an incident may have. SQLite cannot change a CHECK constraint in
-- place, so the table is rebuilt (its documented procedure): foreign keys
-- are off while the old table goes, or dropping it would delete every
-- incident's history through ON DELETE CASCADE, and the rebuild is one
-- transaction.
PRAGMA foreign_keys = OFF;
BEGIN IMMEDIATE;
CREATE TABLE incidents_rebuilt (
    id           TEXT PRIMARY KEY NOT NULL,
    kind         TEXT NOT NULL DEFAULT 'incident' CHECK (kind IN ('incident', 'maintenance')),
    title        TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('investigating', 'identified', 'monitoring', 'resolved', 'scheduled', 'in_progress', 'completed', 'cancelled')),
    affects      TEXT NOT NULL,
    template     TEXT,
    message      TEXT NOT NULL DEFAULT '',
    starts_at    INTEGER,
    ends_at      INTEGER,
    opened_at    INTEGER NOT NULL,
    resolved_at  INTEGER,
    updated_at   INTEGER NOT NULL
);
INSERT INTO incidents_rebuilt (id, kind, title, status, affects, template, message, starts_at,
    ends_at, opened_at, resolved_at, updated_at)
SELECT id, kind, title, status, affects, template, message, starts_at, ends_at, opened_at,
    resolved_at, updated_at FROM incidents;
DROP TABLE incidents;
ALTER TABLE incidents_rebuilt RENAME TO incidents;
-- Open maintenances are looked at every planning pass (their start and
-- end move them); closed incidents pile up and are never looked at again.
CREATE INDEX incidents_open_maintenance ON incidents (starts_at) WHERE kind = 'maintenance' AND resolved_at IS NULL;
COMMIT;
PRAGMA foreign_keys = ON;
