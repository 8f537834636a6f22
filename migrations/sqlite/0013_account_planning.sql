-- Account-scope playbooks are planned per account: when each account is
-- next worth looking at (as customers.plan_at), the stages it entered (so
-- `stage:NAME` anchors fire once per entry), and which account each
-- account-scope message was for (its history, whoever its contacts are).
ALTER TABLE accounts ADD COLUMN plan_at INTEGER NOT NULL DEFAULT 0;
CREATE INDEX accounts_plan_at ON accounts (plan_at, id);
CREATE TABLE account_stage_changes (
    account_id   TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    from_stage   TEXT,
    to_stage     TEXT,
    changed_at   INTEGER NOT NULL
);
CREATE INDEX account_stage_changes_by_account ON account_stage_changes (account_id, changed_at);
ALTER TABLE messages ADD COLUMN account_id TEXT;
CREATE INDEX messages_by_account ON messages (account_id) WHERE account_id IS NOT NULL;
