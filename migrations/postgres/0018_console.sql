-- The console's sign-in. A team member's password is kept as an argon2id
-- hash (PHC string). A session is kept by the SHA-256 of its cookie's
-- token, never the token itself, with the CSRF token its forms carry. The
-- audit records who signed in, failed to, signed out or changed what, when
-- and from which address; the limit on failed sign-ins counts its rows.
CREATE TABLE team_passwords (
    member_id TEXT PRIMARY KEY NOT NULL,
    hash      TEXT NOT NULL,
    set_at    TIMESTAMPTZ NOT NULL
);
CREATE TABLE console_sessions (
    token_hash TEXT PRIMARY KEY NOT NULL,
    member_id  TEXT NOT NULL,
    csrf       TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX console_sessions_by_expiry ON console_sessions (expires_at);
CREATE TABLE console_audit (
    seq       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    member_id TEXT NOT NULL,
    action    TEXT NOT NULL,
    detail    TEXT NOT NULL DEFAULT '',
    address   TEXT NOT NULL DEFAULT '',
    at        TIMESTAMPTZ NOT NULL
);
CREATE INDEX console_audit_by_action ON console_audit (action, at);
