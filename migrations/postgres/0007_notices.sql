-- An incident or maintenance notice carries what its template shows (the
-- incident as it was when the notice was made: its title, status and the
-- update being announced) and the Message-ID of the first notice it
-- follows up, so later notices arrive in the same thread.
ALTER TABLE messages ADD COLUMN notice TEXT;
CREATE INDEX messages_by_incident ON messages (incident_id, step) WHERE incident_id IS NOT NULL;
