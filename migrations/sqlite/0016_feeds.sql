-- no-transaction
-- Messages and responses are read page by page (`GET /api/v1/messages`,
-- `GET /api/v1/responses`) in the order they were written, so a reader
-- who keeps the last position neither skips nor repeats a row while new
-- ones arrive. SQLite has one writer, so an AUTOINCREMENT key is that
-- order: it is never reused (a rowid is, once the highest row is deleted,
-- as a replaced survey answer is) and VACUUM never renumbers it.
--
-- The key of a table cannot be changed in place: each is rebuilt, with
-- foreign keys off so that dropping the old table does not cascade to
-- the rows that refer to it (the statements that refer to `messages` by
-- name find the new table once it takes the name). The rebuild is one
-- transaction.
PRAGMA foreign_keys = OFF;
BEGIN IMMEDIATE;

CREATE TABLE messages_in_order (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    id             TEXT NOT NULL UNIQUE,
    customer_id    TEXT NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    playbook       TEXT NOT NULL,
    step           TEXT NOT NULL,
    occurrence     TEXT NOT NULL,
    kind           TEXT NOT NULL CHECK (kind IN ('checkin', 'tip', 'reminder', 'incident')),
    category       TEXT NOT NULL,
    template       TEXT NOT NULL,
    survey         TEXT CHECK (survey IN ('nps', 'csat', 'ces', 'yesno')),
    incident_id    TEXT REFERENCES incidents (id),
    urgent         INTEGER NOT NULL DEFAULT 0,
    priority       INTEGER NOT NULL DEFAULT 0,
    status         TEXT NOT NULL CHECK (status IN ('planned', 'sending', 'sent', 'deferred', 'failed', 'suppressed', 'expired', 'unknown')),
    reason         TEXT,
    to_address     TEXT,
    subject        TEXT,
    message_id     TEXT UNIQUE,
    due_at         INTEGER NOT NULL,
    not_before     INTEGER NOT NULL,
    expires_at     INTEGER,
    sent_at        INTEGER,
    attempts       INTEGER NOT NULL DEFAULT 0,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    first_attempt_at INTEGER,
    notice         TEXT,
    account_id     TEXT,
    UNIQUE (customer_id, playbook, step, occurrence)
);
INSERT INTO messages_in_order (id, customer_id, playbook, step, occurrence, kind, category,
    template, survey, incident_id, urgent, priority, status, reason, to_address, subject,
    message_id, due_at, not_before, expires_at, sent_at, attempts, created_at, updated_at,
    first_attempt_at, notice, account_id)
SELECT id, customer_id, playbook, step, occurrence, kind, category,
    template, survey, incident_id, urgent, priority, status, reason, to_address, subject,
    message_id, due_at, not_before, expires_at, sent_at, attempts, created_at, updated_at,
    first_attempt_at, notice, account_id
FROM messages ORDER BY created_at, id;
DROP TABLE messages;
ALTER TABLE messages_in_order RENAME TO messages;
CREATE INDEX messages_claim ON messages (priority, not_before) WHERE status IN ('planned', 'deferred');
CREATE INDEX messages_by_incident ON messages (incident_id, step) WHERE incident_id IS NOT NULL;
CREATE INDEX messages_by_account ON messages (account_id) WHERE account_id IS NOT NULL;

CREATE TABLE responses_in_order (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    id           TEXT NOT NULL UNIQUE,
    message_id   TEXT REFERENCES messages (id) ON DELETE SET NULL,
    customer_id  TEXT REFERENCES customers (id) ON DELETE CASCADE,
    kind         TEXT NOT NULL CHECK (kind IN ('survey', 'click', 'reply', 'auto_reply', 'unsubscribe', 'bounce', 'complaint')),
    value        TEXT,
    comment      TEXT,
    received_at  INTEGER NOT NULL,
    source       TEXT NOT NULL,
    inbound_id   TEXT REFERENCES inbound_mail (id) ON DELETE SET NULL
);
INSERT INTO responses_in_order (id, message_id, customer_id, kind, value, comment,
    received_at, source, inbound_id)
SELECT id, message_id, customer_id, kind, value, comment, received_at, source, inbound_id
FROM responses ORDER BY received_at, id;
DROP TABLE responses;
ALTER TABLE responses_in_order RENAME TO responses;
CREATE INDEX responses_by_time ON responses (received_at);
CREATE INDEX responses_by_message ON responses (message_id, kind);
CREATE INDEX responses_by_customer ON responses (customer_id, kind, received_at);

-- A suppression lifted by a person (`DELETE /api/v1/suppressions/{id}`,
-- `tend suppressions lift`): what it was, who lifted it, when and why.
CREATE TABLE suppression_lifts (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    customer_id    TEXT NOT NULL,
    category       TEXT NOT NULL,
    reason         TEXT NOT NULL,
    source         TEXT NOT NULL,
    suppressed_at  INTEGER NOT NULL,
    lifted_at      INTEGER NOT NULL,
    lifted_by      TEXT NOT NULL,
    why            TEXT NOT NULL
);
CREATE INDEX suppression_lifts_by_customer ON suppression_lifts (customer_id);

COMMIT;
PRAGMA foreign_keys = ON;
