-- One-time sign-in links mailed to team members. A link is kept by the
-- SHA-256 of its token, never the token itself; it works once (used_at)
-- and until expires_at.
CREATE TABLE console_links (
    token_hash TEXT PRIMARY KEY NOT NULL,
    member_id  TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    used_at    TIMESTAMPTZ
);
CREATE INDEX console_links_by_expiry ON console_links (expires_at);
