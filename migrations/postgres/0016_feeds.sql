-- Messages and responses are read page by page (`GET /api/v1/messages`,
-- `GET /api/v1/responses`) in the order they were committed, so a reader
-- who keeps the last position neither skips nor repeats a row while new
-- ones arrive. As for signals, `seq` is drawn when a row is written and
-- `tx` is the writing transaction: a page reads only rows of
-- transactions older than every one still running, ordered by (tx, seq).
-- Rows already here are all committed: their `tx` is 0, and they are
-- numbered in the order they were written (as on SQLite).
ALTER TABLE messages ADD COLUMN seq BIGINT;
UPDATE messages SET seq = o.n
FROM (SELECT id, row_number() OVER (ORDER BY created_at, id) AS n FROM messages) o
WHERE messages.id = o.id;
ALTER TABLE messages ALTER COLUMN seq SET NOT NULL;
ALTER TABLE messages ALTER COLUMN seq ADD GENERATED ALWAYS AS IDENTITY;
SELECT setval(pg_get_serial_sequence('messages', 'seq'), (SELECT COALESCE(max(seq), 0) + 1 FROM messages), false);
ALTER TABLE messages ADD COLUMN tx BIGINT NOT NULL DEFAULT 0;
ALTER TABLE messages ALTER COLUMN tx SET DEFAULT (pg_current_xact_id()::text::bigint);
CREATE UNIQUE INDEX messages_in_commit_order ON messages (tx, seq);

ALTER TABLE responses ADD COLUMN seq BIGINT;
UPDATE responses SET seq = o.n
FROM (SELECT id, row_number() OVER (ORDER BY received_at, id) AS n FROM responses) o
WHERE responses.id = o.id;
ALTER TABLE responses ALTER COLUMN seq SET NOT NULL;
ALTER TABLE responses ALTER COLUMN seq ADD GENERATED ALWAYS AS IDENTITY;
SELECT setval(pg_get_serial_sequence('responses', 'seq'), (SELECT COALESCE(max(seq), 0) + 1 FROM responses), false);
ALTER TABLE responses ADD COLUMN tx BIGINT NOT NULL DEFAULT 0;
ALTER TABLE responses ALTER COLUMN tx SET DEFAULT (pg_current_xact_id()::text::bigint);
CREATE UNIQUE INDEX responses_in_commit_order ON responses (tx, seq);

-- A suppression lifted by a person (`DELETE /api/v1/suppressions/{id}`,
-- `tend suppressions lift`): what it was, who lifted it, when and why.
CREATE TABLE suppression_lifts (
    seq            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id    TEXT NOT NULL,
    category       TEXT NOT NULL,
    reason         TEXT NOT NULL,
    source         TEXT NOT NULL,
    suppressed_at  TIMESTAMPTZ NOT NULL,
    lifted_at      TIMESTAMPTZ NOT NULL,
    lifted_by      TEXT NOT NULL,
    why            TEXT NOT NULL
);
CREATE INDEX suppression_lifts_by_customer ON suppression_lifts (customer_id);
