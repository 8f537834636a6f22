-- Planning costs what is due, not what is stored: each customer carries the
-- next instant the planner must look at them (the epoch = as soon as
-- possible: new, changed, or sent an event), and a tick reads only customers
-- whose time has come. This replaces the per-step schedules table, which
-- was never used.
ALTER TABLE customers ADD COLUMN plan_at TIMESTAMPTZ NOT NULL DEFAULT 'epoch';
-- (plan_at, id): pages of due customers come off the index in order, even
-- when a million share one plan_at after an import.
CREATE INDEX customers_plan_at ON customers (plan_at, id);
DROP TABLE schedules;

-- What the planner last planned with (a fingerprint of the playbooks and
-- lifecycle rules): when it changes, every customer is looked at again.
CREATE TABLE planner_state (
    key    TEXT PRIMARY KEY NOT NULL,
    value  TEXT NOT NULL
);
