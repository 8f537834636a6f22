-- A maintenance can be called off before it starts: `cancelled` joins the
-- statuses an incident may have.
ALTER TABLE incidents DROP CONSTRAINT incidents_status_check;
ALTER TABLE incidents ADD CONSTRAINT incidents_status_check CHECK (status IN ('investigating', 'identified', 'monitoring', 'resolved', 'scheduled', 'in_progress', 'completed', 'cancelled'));
-- Open maintenances are looked at every planning pass (their start and
-- end move them); closed incidents pile up and are never looked at again.
CREATE INDEX incidents_open_maintenance ON incidents (starts_at) WHERE kind = 'maintenance' AND resolved_at IS NULL;
