-- tend's whole store on PostgreSQL: the same tables as on SQLite, with
-- TIMESTAMPTZ instants and JSONB documents.

-- Customers, keyed by the company's own id.
CREATE TABLE customers (
    id               TEXT PRIMARY KEY NOT NULL,
    email            TEXT NOT NULL,
    name             TEXT NOT NULL DEFAULT '',
    timezone         TEXT NOT NULL,
    locale           TEXT NOT NULL,
    plan             TEXT NOT NULL DEFAULT '',
    signup_at        TIMESTAMPTZ,
    renewal_at       TIMESTAMPTZ,
    last_seen_at     TIMESTAMPTZ,
    health           SMALLINT CHECK (health BETWEEN 0 AND 100),
    attributes       JSONB NOT NULL DEFAULT '{}',
    -- Derived by the lifecycle rules; kept when a record is re-imported.
    stage            TEXT,
    stage_entered_at TIMESTAMPTZ,
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL
);
CREATE INDEX customers_email ON customers (email);

-- Events, with an optional idempotency key.
CREATE TABLE events (
    seq          BIGSERIAL PRIMARY KEY,
    id           TEXT UNIQUE,
    customer_id  TEXT NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    occurred_at  TIMESTAMPTZ NOT NULL,
    properties   JSONB NOT NULL DEFAULT '{}',
    received_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX events_by_customer ON events (customer_id, name, occurred_at);

-- Every change of lifecycle stage, so `stage:NAME` anchors fire once per entry.
CREATE TABLE stage_changes (
    seq          BIGSERIAL PRIMARY KEY,
    customer_id  TEXT NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    from_stage   TEXT,
    to_stage     TEXT,
    changed_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX stage_changes_by_customer ON stage_changes (customer_id, to_stage, changed_at);

-- The planner's index: when each (customer, playbook, step) is next worth
-- looking at, so a tick costs what is due, not what is stored.
CREATE TABLE schedules (
    customer_id  TEXT NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    playbook     TEXT NOT NULL,
    step         TEXT NOT NULL,
    next_due_at  TIMESTAMPTZ,
    updated_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (customer_id, playbook, step)
);
CREATE INDEX schedules_due ON schedules (next_due_at) WHERE next_due_at IS NOT NULL;

-- Incidents and scheduled maintenance.
CREATE TABLE incidents (
    id           TEXT PRIMARY KEY NOT NULL,
    kind         TEXT NOT NULL DEFAULT 'incident' CHECK (kind IN ('incident', 'maintenance')),
    title        TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('investigating', 'identified', 'monitoring', 'resolved', 'scheduled', 'in_progress', 'completed')),
    affects      TEXT NOT NULL,
    template     TEXT,
    message      TEXT NOT NULL DEFAULT '',
    starts_at    TIMESTAMPTZ,
    ends_at      TIMESTAMPTZ,
    opened_at    TIMESTAMPTZ NOT NULL,
    resolved_at  TIMESTAMPTZ,
    updated_at   TIMESTAMPTZ NOT NULL
);

CREATE TABLE incident_updates (
    seq          BIGSERIAL PRIMARY KEY,
    incident_id  TEXT NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    status       TEXT NOT NULL,
    message      TEXT NOT NULL,
    notify       BOOLEAN NOT NULL DEFAULT FALSE,
    created_at   TIMESTAMPTZ NOT NULL
);

-- Who an incident affects, fixed when it opens; the resolution goes to
-- exactly those who got the opening notice.
CREATE TABLE incident_customers (
    incident_id  TEXT NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    customer_id  TEXT NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    notified     BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (incident_id, customer_id)
);
CREATE INDEX incident_customers_by_customer ON incident_customers (customer_id);

-- The outbox and delivery ledger: one row per (customer, playbook, step,
-- occurrence), never two.
CREATE TABLE messages (
    id             TEXT PRIMARY KEY NOT NULL,
    customer_id    TEXT NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    playbook       TEXT NOT NULL,
    step           TEXT NOT NULL,
    occurrence     TEXT NOT NULL,
    kind           TEXT NOT NULL CHECK (kind IN ('checkin', 'tip', 'reminder', 'incident')),
    category       TEXT NOT NULL,
    template       TEXT NOT NULL,
    survey         TEXT CHECK (survey IN ('nps', 'csat', 'ces', 'yesno')),
    incident_id    TEXT REFERENCES incidents (id),
    urgent         BOOLEAN NOT NULL DEFAULT FALSE,
    priority       INTEGER NOT NULL DEFAULT 0,
    status         TEXT NOT NULL CHECK (status IN ('planned', 'sending', 'sent', 'deferred', 'failed', 'suppressed', 'expired', 'unknown')),
    reason         TEXT,
    to_address     TEXT,
    subject        TEXT,
    message_id     TEXT UNIQUE,
    due_at         TIMESTAMPTZ NOT NULL,
    not_before     TIMESTAMPTZ NOT NULL,
    expires_at     TIMESTAMPTZ,
    sent_at        TIMESTAMPTZ,
    attempts       INTEGER NOT NULL DEFAULT 0,
    lease_owner    TEXT,
    lease_until    TIMESTAMPTZ,
    created_at     TIMESTAMPTZ NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL,
    UNIQUE (customer_id, playbook, step, occurrence)
);
CREATE INDEX messages_due ON messages (not_before) WHERE status IN ('planned', 'deferred');
CREATE INDEX messages_in_flight ON messages (lease_until) WHERE status = 'sending';
CREATE INDEX messages_by_customer ON messages (customer_id, sent_at);
CREATE INDEX messages_by_status ON messages (status);

-- Each delivery attempt with the server's answer.
CREATE TABLE attempts (
    seq          BIGSERIAL PRIMARY KEY,
    message_id   TEXT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    started_at   TIMESTAMPTZ NOT NULL,
    finished_at  TIMESTAMPTZ,
    outcome      TEXT NOT NULL CHECK (outcome IN ('sent', 'transient', 'permanent', 'unknown')),
    smtp_code    INTEGER,
    detail       TEXT NOT NULL DEFAULT ''
);
CREATE INDEX attempts_by_message ON attempts (message_id);

-- Inbound mail as received, matched or not, so nothing is lost.
CREATE TABLE inbound_mail (
    id              TEXT PRIMARY KEY NOT NULL,
    source          TEXT NOT NULL,
    received_at     TIMESTAMPTZ NOT NULL,
    header_message_id TEXT,
    classification  TEXT NOT NULL,
    message_id      TEXT REFERENCES messages (id) ON DELETE SET NULL,
    raw             BYTEA NOT NULL
);
CREATE UNIQUE INDEX inbound_mail_header ON inbound_mail (source, header_message_id) WHERE header_message_id IS NOT NULL;

-- Everything that comes back.
CREATE TABLE responses (
    id           TEXT PRIMARY KEY NOT NULL,
    message_id   TEXT REFERENCES messages (id) ON DELETE SET NULL,
    customer_id  TEXT REFERENCES customers (id) ON DELETE CASCADE,
    kind         TEXT NOT NULL CHECK (kind IN ('survey', 'click', 'reply', 'auto_reply', 'unsubscribe', 'bounce', 'complaint')),
    value        TEXT,
    comment      TEXT,
    received_at  TIMESTAMPTZ NOT NULL,
    source       TEXT NOT NULL,
    inbound_id   TEXT REFERENCES inbound_mail (id) ON DELETE SET NULL
);
CREATE INDEX responses_by_time ON responses (received_at);
CREATE INDEX responses_by_message ON responses (message_id, kind);

-- Who must not be written to, for a category or ('*') for all mail.
CREATE TABLE suppressions (
    customer_id  TEXT NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    category     TEXT NOT NULL,
    reason       TEXT NOT NULL,
    source       TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (customer_id, category)
);
