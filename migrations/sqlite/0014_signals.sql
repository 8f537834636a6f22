-- What other systems and people hear about. Each signal (a message sent, a
-- response, a stage entered, an incident changed) is written in the same
-- transaction as what it tells of, so none is lost and none is told of a
-- change that was rolled back. `tx` orders signals as PostgreSQL commits
-- them; SQLite has one writer, so `seq` alone is commit order and `tx` is 0.
CREATE TABLE signals (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    tx           INTEGER NOT NULL DEFAULT 0,
    id           TEXT NOT NULL UNIQUE,
    type         TEXT NOT NULL,
    customer_id  TEXT,
    payload      TEXT NOT NULL,
    occurred_at  INTEGER NOT NULL
);
CREATE INDEX signals_by_customer ON signals (customer_id) WHERE customer_id IS NOT NULL;

-- Each signal's deliveries: an alert by email, a webhook POST. One row per
-- (signal, target), never two; a target's rows go out in `seq` order.
CREATE TABLE notifications (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    id           TEXT NOT NULL UNIQUE,
    signal_id    TEXT NOT NULL,
    target       TEXT NOT NULL,
    channel      TEXT NOT NULL CHECK (channel IN ('email', 'webhook', 'slack')),
    recipient    TEXT NOT NULL,
    subject      TEXT,
    reply_to     TEXT,
    body         TEXT NOT NULL,
    customer_id  TEXT,
    status       TEXT NOT NULL CHECK (status IN ('pending', 'sending', 'sent', 'failed', 'unknown', 'dropped')),
    reason       TEXT,
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_at      INTEGER NOT NULL,
    lease_owner  TEXT,
    lease_until  INTEGER,
    created_at   INTEGER NOT NULL,
    settled_at   INTEGER,
    UNIQUE (signal_id, target)
);
CREATE INDEX notifications_open ON notifications (target, seq) WHERE status IN ('pending', 'sending');
CREATE INDEX notifications_by_target ON notifications (target, status);
CREATE INDEX notifications_by_customer ON notifications (customer_id) WHERE customer_id IS NOT NULL;
CREATE INDEX signals_in_commit_order ON signals (tx, seq);
